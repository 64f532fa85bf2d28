#!/usr/bin/env bash
# test_console: a real guest's consoles through zova's console proxy, end to end.
#
# Starts its own libvirtd (scripts/libvirtd-test.sh) unless ZV_LIBVIRT_URI
# names one, the tiny test guest (scripts/build-test-guest.sh, cached in
# ZV_GUEST_DIR, default /var/tmp/zova-test-guest), and `zovad all` with its
# console proxy on a free port, and boots two guests at once:
#
#   vm-a  the bzImage kernel (vmlinuz) with "console=tty0 console=ttyS0",
#         without "quiet": the kernel writes its messages on the VGA text
#         screen as well as the serial line.  (The uncompressed vmlinux
#         boots faster, but through its PVH entry the kernel learns of no
#         VGA text mode and uses a dummy console: the screen stays black.)
#   vm-b  the usual fast guest (vmlinux, quiet): the second half of the 51
#         clients below, since QEMU's VNC server serves at most 32 clients
#         at a time (its connections= option, 32 by default, which libvirt
#         does not expose), and the guest whose token must die with it.
#
# Then, on vm-a unless said:
#   - a headless Chromium (Debian's chromium; its own empty profile under
#     the test's directory; driven over the DevTools protocol by
#     tests/console/browser.js with playwright-core) opens the URL of
#     `zova console url show --novnc`: noVNC says "Connected" and its canvas
#     holds the kernel's text (pixels read in the page); the page's
#     screenshot stays in the test's directory (novnc.png);
#   - `zova console log show --lines 20` ends with the guest's banner;
#     `zova server screenshot --file` writes a PNG of the screen's size
#     (the size noVNC's canvas had) that is not blank (decoded here);
#   - the serial console over WebSocket (`console url show --serial`): a
#     command sent to the guest's login-less shell is answered;
#   - refusals, none of which may open a TCP connection to the compute
#     host: a bad token (closed with 1008, on both paths), a token past its
#     ttl (1008), a token of a deleted instance (vm-b, 1008; the same token
#     served before the delete), a foreign Origin (the handshake fails);
#     an Origin in allowed_origins is served.  "No connection" is counted,
#     not assumed: an iptables chain of this test's own counts the SYNs
#     sent to the guests' console ports (both VNC ports and both serial
#     ports), read before and after each attempt; a valid token in the
#     same test must raise it;
#   - 51 WebSocket clients at once on the VNC path (tests/console/flood.js,
#     26 on vm-a, 25 on vm-b; opened one after another, since QEMU's VNC
#     listener has a backlog of 1), each looping full-screen raw
#     FramebufferUpdateRequests; one stops reading for 8 s while it goes on
#     asking; every other one must keep getting whole updates through the
#     stall (in its second half too, when every buffer toward the stalled
#     one is full: a relay that blocks on the stalled reader, tried by hand,
#     gave the others none there), and the stalled one is served again
#     afterwards.
#
# npm packages (tests/console/package.json) are installed by
# tests/console/node-deps.sh into ZV_NODE_DIR (default
# /var/tmp/zova-test-node), outside the repository, and reused.
# A machine without QEMU, Chromium, Node.js or iptables fails this test
# loudly: it never passes by skipping.
. "$(dirname "$0")/lib.sh"

GUEST=${ZV_GUEST_DIR:-/var/tmp/zova-test-guest}
CHROMIUM=${ZV_CHROMIUM:-/usr/bin/chromium}
NOVNC=/usr/share/novnc
LV="$T_DIR/libvirt"
URI=${ZV_LIBVIRT_URI:-}
OWN_LIBVIRTD=
CHROME_PID=
CHAIN="ZOVA_T_$$"
CHAIN_MADE=
CHAIN_RULE=
TOKEN_TTL=15
T_TIMEOUT=30

s_chromium_stop () {
    [ -n "$CHROME_PID" ] || return 0
    # Its own session (setsid): the renderers and helpers are in its group.
    kill -TERM -- "-$CHROME_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$CHROME_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$CHROME_PID" 2>/dev/null
    wait "$CHROME_PID" 2>/dev/null
    CHROME_PID=
}

s_cleanup () {
    local pid
    s_chromium_stop
    [ -n "$CHAIN_RULE" ] && iptables -D OUTPUT $CHAIN_RULE 2>/dev/null
    if [ -n "$CHAIN_MADE" ]; then
        iptables -F "$CHAIN" 2>/dev/null
        iptables -X "$CHAIN" 2>/dev/null
    fi
    for pid in "${T_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    t_libvirt_cleanup "$URI" "$LV" "$OWN_LIBVIRTD"
    t_cleanup
}
trap s_cleanup EXIT

s_abort () { t_fail "$*"; echo "$T_NAME: CONSOLES CANNOT BE TESTED HERE: $*"; t_done; exit 1; }

now_ms () { echo $(( $(date +%s%N) / 1000000 )); }
js () { node "$ZV_ROOT/tests/console/$1" "${@:2}"; }
field () { t_zova server show "$1" -f json | t_json "$2"; }

# console_ports DOMAIN: the TCP ports of the domain's VNC server and serial
# console, from its live XML.
console_ports () {
    virsh -c "$URI" dumpxml "$1" | python3 -c '
import sys, xml.etree.ElementTree as ET
d = ET.fromstring(sys.stdin.read())
ports = [g.get("port") for g in d.iter("graphics") if g.get("type") == "vnc"]
ports += [s.get("service") for c in d.find("devices").findall("serial") if c.get("type") == "tcp" for s in c.findall("source")]
print(" ".join(p for p in ports if p and p != "-1"))'
}

# syns: SYNs sent so far to the guests' console ports (the chain's RETURN rule).
syns () { iptables -L "$CHAIN" -v -n -x | awk '$3 == "RETURN" { print $1 }'; }

# url KIND REF: a fresh console URL (novnc or serial).
url () { t_zova console url show "--$1" "$2" -f json | t_json 'd["url"]' 2>/dev/null; }
# ws_url_of NOVNC_URL: the WebSocket URL noVNC derives from the page's path=.
ws_url_of () {
    python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); q = u.parse_qs(p.query)
print("ws://%s/%s" % (p.netloc, q["path"][0]))' "$1" 2>/dev/null
}

# probe LABEL URL [ARGS...]: ws_probe.js's JSON into $T_DIR/probe-LABEL.json,
# with the SYN count before and after in S0/S1.  The after count is read
# 200 ms after the probe ended: a connection that should not exist may be
# started just after the refusal reached the client, and only time shows
# its absence.
probe () {
    local label=$1; shift
    S0=$(syns)
    js ws_probe.js "$@" >"$T_DIR/probe-$label.json" 2>"$T_DIR/probe-$label.err"
    sleep 0.2
    S1=$(syns)
    t_log "$label: $(head -c 300 "$T_DIR/probe-$label.json") (SYNs $S0 -> $S1)"
}
pj () { t_json "$1" <"$T_DIR/probe-$2.json" 2>/dev/null; }

# refused_1008 LABEL: the probe's WebSocket opened and was closed with 1008,
# before any byte of a console, and no SYN went to a console port.
refused_1008 () {
    t_eq "$1: closed with 1008 (policy violation), no console byte" "ok True 1008 0" \
        "$(pj '"%s %s %s %s" % (d["handshake"], d["closed"], d["code"], d["bytes"])' "$1")"
    t_eq "$1: no TCP connection to the compute host" "$S0" "$S1"
}

# png_census FILE: "WIDTH HEIGHT NONBACKGROUND" of a PNG, decoded here
# (zlib and the five row filters): pixels that differ from the most common one.
png_census () {
    python3 - "$1" <<'PY'
import struct, sys, zlib
from collections import Counter
data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("not a PNG")
pos, idat, ihdr = 8, [], None
while pos + 8 <= len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    pos += 12 + n
    if kind == b"IHDR":
        ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat.append(body)
    elif kind == b"IEND":
        break
w, h, depth, ctype, _, _, interlace = ihdr
if depth != 8 or interlace or ctype not in (0, 2, 4, 6):
    sys.exit("unsupported PNG: depth %d, colour type %d, interlace %d" % (depth, ctype, interlace))
bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
raw = zlib.decompress(b"".join(idat))
stride = w * bpp
prev = bytearray(stride)
counts = Counter()
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        if f == 1:
            line[x] = (line[x] + a) & 255
        elif f == 2:
            line[x] = (line[x] + b) & 255
        elif f == 3:
            line[x] = (line[x] + ((a + b) >> 1)) & 255
        elif f == 4:
            c = prev[x - bpp] if x >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    counts.update(bytes(line[i:i + bpp]) for i in range(0, stride, bpp))
    prev = line
print(w, h, w * h - counts.most_common(1)[0][1])
PY
}

echo "consoles (logs in $T_DIR)"

# --- what the test needs ---------------------------------------------------------
command -v qemu-system-x86_64 >/dev/null || s_abort "qemu-system-x86_64 is missing (scripts/deps.sh)"
[ -x "$CHROMIUM" ] || s_abort "$CHROMIUM is missing (scripts/deps.sh installs Debian's chromium)"
command -v node >/dev/null || s_abort "node is missing (scripts/deps.sh)"
[ -f "$NOVNC/vnc_lite.html" ] || s_abort "noVNC is missing from $NOVNC (scripts/deps.sh installs novnc)"
iptables -S OUTPUT >/dev/null 2>&1 || s_abort "iptables does not work here (root and scripts/deps.sh's iptables needed)"
NODE_PATH=$(bash "$ZV_ROOT/tests/console/node-deps.sh" 2>"$T_DIR/node-deps.log") \
    || s_abort "npm packages: $(tail -3 "$T_DIR/node-deps.log")"
export NODE_PATH
t0=$(now_ms)
bash "$ZV_ROOT/scripts/build-test-guest.sh" "$GUEST" 2>"$T_DIR/build-guest.log" \
    || s_abort "build-test-guest.sh failed: $(tail -5 "$T_DIR/build-guest.log")"
if [ -z "$URI" ]; then
    export LIBVIRTD_TEST_CAPS_CACHE="$GUEST/libvirt-cache"
    URI=$(t_libvirtd start "$LV" 2>"$T_DIR/libvirtd-start.log") \
        || { URI=; s_abort "private libvirtd did not start: $(tail -3 "$T_DIR/libvirtd-start.log")"; }
    OWN_LIBVIRTD=1
fi
virsh -c "$URI" domcapabilities --virttype qemu >/dev/null 2>&1 || s_abort "libvirtd at $URI cannot run QEMU guests"

# --- zova all-in-one with its console proxy ------------------------------------------
API="tcp://127.0.0.1:$(t_port)"
PP=$(t_port)
# Serial ports of this run's own: compute takes the lowest free port of the
# range when it defines a domain and QEMU binds it later, so two test runs
# on one machine with the default range race for the same port.
SERIAL_LOW=$(t_port_range 20)
PROXY="127.0.0.1:$PP"
ORIGIN="http://$PROXY"
export ZOVA_ENDPOINT=$API
t_config "$T_DIR/zova.conf" "api.endpoint=$API" "DEFAULT.shutdown_timeout=15" \
    "scheduler.host_refresh_interval_ms=200" \
    "compute.instances_path=$T_DIR/instances" "compute.reserved_host_memory_mb=0" \
    "compute.ram_allocation_ratio=4.0" "libvirt.connection_uri=$URI" \
    "vnc.server_listen=127.0.0.1" "vnc.novncproxy_base_url=http://$PROXY/vnc_lite.html" \
    "serial_console.base_url=ws://$PROXY/serial" "serial_console.port_range=$SERIAL_LOW:$(( SERIAL_LOW + 19 ))" \
    "consoleauth.token_ttl=$TOKEN_TTL" \
    "consoleproxy.listen=127.0.0.1" "consoleproxy.port=$PP" \
    "consoleproxy.allowed_origins=console.zova.test"
t_start aio all "$T_DIR/zova.conf"
t_wait_api 30 || { tail -20 "$T_DIR/aio.log"; exit 1; }
t_wait_for "compute reports its hypervisor" 20 bash -c "\"$ZOVA\" hypervisor list -f json | grep -q QEMU"
t_wait_for "the console proxy listens on $PROXY" 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PP"

CMDLINE=$(cat "$GUEST/cmdline")
VGA_CMDLINE="console=tty0 $(echo "$CMDLINE" | sed 's/\bquiet\b//; s/  */ /g; s/ $//')"
t_check "kernel images (bzImage and vmlinux)" bash -c "
    \"$ZOVA\" image create --file '$GUEST/vmlinuz' --disk-format aki kernel-bz >/dev/null &&
    \"$ZOVA\" image create --file '$GUEST/vmlinux' --disk-format aki kernel-elf >/dev/null &&
    \"$ZOVA\" image create --file '$GUEST/initrd.img' --disk-format ari ramdisk >/dev/null"
KBZ=$(t_zova image show kernel-bz -f json | t_json 'd["id"]')
KELF=$(t_zova image show kernel-elf -f json | t_json 'd["id"]')
RD=$(t_zova image show ramdisk -f json | t_json 'd["id"]')
truncate -s 16M "$T_DIR/blank.raw"
t_check "image with a VGA console ($VGA_CMDLINE)" t_zova image create --file "$T_DIR/blank.raw" --disk-format raw \
    --property "kernel_id=$KBZ" --property "ramdisk_id=$RD" --property "os_command_line=$VGA_CMDLINE" guest-vga
t_check "image of the fast guest ($CMDLINE)" t_zova image create --file "$T_DIR/blank.raw" --disk-format raw \
    --property "kernel_id=$KELF" --property "ramdisk_id=$RD" --property "os_command_line=$CMDLINE" guest-fast
t_check "flavor" t_zova flavor create --vcpus 1 --ram 128 --disk 1 c1.tiny

# --- two guests, and Chromium starting meanwhile -----------------------------------------
t0=$(now_ms)
t_check "boot vm-a and vm-b at once" bash -c "
    \"$ZOVA\" --timeout 30 server create --flavor c1.tiny --image guest-vga --wait --wait-timeout 120 vm-a >/dev/null &
    a=\$!
    \"$ZOVA\" --timeout 30 server create --flavor c1.tiny --image guest-fast --wait --wait-timeout 120 vm-b >/dev/null &
    b=\$!
    wait \$a && wait \$b"
[ "$T_FAILS" -eq 0 ] || s_abort "the guests did not boot: $(head -c 600 "$T_DIR/last.err")"
mkdir "$T_DIR/chromium"
setsid "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$T_DIR/chromium" --remote-debugging-address=127.0.0.1 --remote-debugging-port=0 \
    about:blank >"$T_DIR/chromium.log" 2>&1 &
CHROME_PID=$!
DA="zova-$(field vm-a 'd["id"]')"
DB="zova-$(field vm-b 'd["id"]')"
t_wait_for "vm-a's banner on its serial console" 120 bash -c "\"$ZOVA\" console log show vm-a | grep -q 'zova test guest ready'" \
    || s_abort "vm-a did not come up"
t_wait_for "vm-b's banner on its serial console" 60 bash -c "\"$ZOVA\" console log show vm-b | grep -q 'zova test guest ready'" \
    || s_abort "vm-b did not come up"
t_log "both guests up after $(( $(now_ms) - t0 )) ms"
# A token that must be refused once its ttl has passed (used near the end).
EXPIRED_URL=$(ws_url_of "$(url novnc vm-a)")
EXPIRED_AT=$(( $(now_ms) + TOKEN_TTL * 1000 ))

PORTS_A=$(console_ports "$DA")
PORTS_B=$(console_ports "$DB")
t_log "console ports: vm-a $PORTS_A, vm-b $PORTS_B"
t_eq "each guest has a VNC and a TCP serial console" "2 2" "$(echo $PORTS_A | wc -w) $(echo $PORTS_B | wc -w)"
[ -n "$PORTS_A" ] && [ -n "$PORTS_B" ] || s_abort "no console ports to watch (vm-a: '$PORTS_A', vm-b: '$PORTS_B')"
iptables -N "$CHAIN" || s_abort "cannot make the iptables chain $CHAIN"
CHAIN_MADE=1
iptables -A "$CHAIN" -j RETURN
CHAIN_RULE="-p tcp --syn -m multiport --dports $(echo $PORTS_A $PORTS_B | tr ' ' ',') -j $CHAIN"
iptables -I OUTPUT $CHAIN_RULE || { CHAIN_RULE=; s_abort "cannot add the iptables rule counting SYNs"; }

# --- serial console log --------------------------------------------------------------
LOG=$(t_zova console log show --lines 20 vm-a)
echo "$LOG" >"$T_DIR/console-log.txt"
NLINES=$(echo "$LOG" | wc -l)
t_eq "console log show --lines 20: at most 20 lines (as tail -n 20; got $NLINES)" "True" \
    "$([ "$NLINES" -le 20 ] && echo True || echo False)"
t_check "console log show --lines 20: the guest's banner" grep -q "zova test guest ready" <<<"$LOG"

# --- noVNC in a headless Chromium -------------------------------------------------------
t_wait_for "Chromium's DevTools endpoint" 30 test -s "$T_DIR/chromium/DevToolsActivePort" \
    || { tail -5 "$T_DIR/chromium.log"; s_abort "Chromium did not start"; }
CDP="http://127.0.0.1:$(head -1 "$T_DIR/chromium/DevToolsActivePort")"
t_zova console url show --novnc vm-a -f json >"$T_DIR/url-novnc.json"
NOVNC_URL=$(t_json 'd["url"]' <"$T_DIR/url-novnc.json")
t_eq "console url show --novnc: type, protocol, expiry" "novnc vnc True" \
    "$(t_json '"%s %s %s" % (d["type"], d["protocol"], bool(d.get("expires_at")))' <"$T_DIR/url-novnc.json")"
t_check "the noVNC URL: [vnc] novncproxy_base_url, path=websockify?token=<64 hex>" \
    grep -qE "^http://$PROXY/vnc_lite\.html\?path=websockify%3Ftoken%3D[0-9a-f]{64}$" <<<"$NOVNC_URL"
t0=$(now_ms)
js browser.js "$CDP" "$NOVNC_URL" "$T_DIR/novnc.png" 60 >"$T_DIR/browser.json" 2>"$T_DIR/browser.err"
t_log "browser ($(( $(now_ms) - t0 )) ms): $(head -c 400 "$T_DIR/browser.json") $(head -c 300 "$T_DIR/browser.err")"
t_eq "noVNC reports Connected" "True" "$(t_json 'str(d["status"] or "").startswith("Connected")' <"$T_DIR/browser.json" 2>/dev/null)"
t_eq "noVNC's canvas shows the guest's text (over 2000 non-background pixels)" "True" \
    "$(t_json 'd["nonbackground"] > 2000 and d["colours"] >= 2' <"$T_DIR/browser.json" 2>/dev/null)"
t_check "the page's screenshot was saved" test -s "$T_DIR/novnc.png"
CANVAS=$(t_json '"%d %d" % (d["width"], d["height"])' <"$T_DIR/browser.json" 2>/dev/null)
s_chromium_stop

# --- server screenshot -------------------------------------------------------------------
t_check "server screenshot --file" t_zova server screenshot vm-a --file "$T_DIR/screen.png"
CENSUS=$(png_census "$T_DIR/screen.png" 2>"$T_DIR/png.err" || echo "0 0 0")
t_log "screen.png: $(file -b "$T_DIR/screen.png" 2>/dev/null); size and non-background pixels: $CENSUS $(tail -1 "$T_DIR/png.err")"
t_eq "the screenshot has the screen's size (noVNC's canvas)" "$CANVAS" "$(echo "$CENSUS" | cut -d' ' -f1-2)"
t_eq "the screenshot is not blank (over 2000 non-background pixels)" "True" \
    "$([ "$(echo "$CENSUS" | cut -d' ' -f3)" -gt 2000 ] && echo True || echo False)"

# --- the serial console over WebSocket -------------------------------------------------------
t_zova console url show --serial vm-a -f json >"$T_DIR/url-serial.json"
SERIAL_URL=$(t_json 'd["url"]' <"$T_DIR/url-serial.json")
t_eq "console url show --serial: type, protocol" "serial serial" \
    "$(t_json '"%s %s" % (d["type"], d["protocol"])' <"$T_DIR/url-serial.json")"
t_check "the serial URL: [serial_console] base_url?token=<64 hex>" \
    grep -qE "^ws://$PROXY/serial\?token=[0-9a-f]{64}$" <<<"$SERIAL_URL"
N=$(( RANDOM + 1000 ))
# The answer, not the echo of the command line: the shell computes N+1.
probe serial "$SERIAL_URL" --origin "$ORIGIN" --send "echo zova-serial-\$(( $N + 1 ))\n" \
    --expect "zova-serial-$(( N + 1 ))" --timeout 20000
t_eq "the guest's shell answered over the serial WebSocket" "True" "$(pj 'd["matched"]' serial)"
t_eq "the serial session reached the guest's serial port" "True" "$([ "$S1" -gt "$S0" ] && echo True || echo False)"
# Empty WebSocket data frames first: nothing to relay, the session goes on.
probe empty-frames "$(url serial vm-a)" --origin "$ORIGIN" --empty --send "echo zova-empty-\$(( $N + 2 ))\n" \
    --expect "zova-empty-$(( N + 2 ))" --timeout 20000
t_eq "empty data frames change nothing: the guest's shell still answers" "True" \
    "$(pj 'd["matched"]' empty-frames)"

# --- refusals: no TCP connection to the compute host -----------------------------------------
probe valid "$(ws_url_of "$(url novnc vm-a)")" --origin "$ORIGIN"
t_eq "valid token: the guest's VNC server speaks" "ok RFB 003.008" "$(pj '"%s %s" % (d["handshake"], d["text"].strip())' valid)"
t_eq "valid token: the counter saw the proxy's connection" "True" "$([ "$S1" -gt "$S0" ] && echo True || echo False)"
BAD=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
probe bad-vnc "ws://$PROXY/websockify?token=$BAD" --origin "$ORIGIN"
refused_1008 bad-vnc
probe bad-serial "ws://$PROXY/serial?token=$BAD" --origin "$ORIGIN"
refused_1008 bad-serial
probe foreign-origin "$(ws_url_of "$(url novnc vm-a)")" --origin "http://evil.example.com"
t_eq "foreign Origin: the WebSocket handshake fails (HTTP 4xx)" "refused True" \
    "$(pj '"%s %s" % (d["handshake"], 400 <= (d["status"] or 0) < 500)' foreign-origin)"
t_eq "foreign Origin: no TCP connection to the compute host" "$S0" "$S1"
probe allowed-origin "$(ws_url_of "$(url novnc vm-a)")" --origin "http://console.zova.test"
t_eq "an Origin in allowed_origins is served" "ok RFB 003.008" "$(pj '"%s %s" % (d["handshake"], d["text"].strip())' allowed-origin)"

# --- 51 clients, one of which stops reading ------------------------------------------------------
FA=$(ws_url_of "$(url novnc vm-a)")
FB=$(ws_url_of "$(url novnc vm-b)")
t0=$(now_ms)
js flood.js --clients 51 --warmup-ms 3000 --baseline-ms 2000 --stall-ms 8000 --after-ms 2000 \
    --origin "$ORIGIN" "$FA" "$FB" >"$T_DIR/flood.json" 2>"$T_DIR/flood.err"
t_log "51 clients ($(( $(now_ms) - t0 )) ms): $(head -c 700 "$T_DIR/flood.json") $(head -c 300 "$T_DIR/flood.err")"
fj () { t_json "$1" <"$T_DIR/flood.json" 2>/dev/null; }
# QEMU's refresh timer paces the updates (30 ms to a few hundred here) and
# 50 full screens at once are CPU-bound on two cores, so the floors are
# modest; a proxy held up by the stalled reader gives the others none at
# all once the buffers toward it are full (about 3 s at these rates).
t_eq "51 clients connected through the proxy, none closed" "51 0" "$(fj '"%s %s" % (d["connected"], d.get("closed"))')"
t_eq "before the stall every client got full updates (2+ in 2 s)" "True" "$(fj 'd["baseline"]["min"] >= 2')"
t_eq "while one client stalled, each of the 50 others got 5+ full updates in 8 s" "True" "$(fj 'd["stall"]["min"] >= 5')"
t_eq "... and 3+ in the stall's last 4 s, with the stalled one's buffers full" "True" "$(fj 'd["stall_second_half"]["min"] >= 3')"
t_eq "... at a third of the baseline's rate or better (medians)" "True" \
    "$(fj 'd["stall"]["median"] / d["stall"]["seconds"] >= d["baseline"]["median"] / d["baseline"]["seconds"] / 3')"
t_eq "the stalled client read nothing meanwhile, and over 1 MB was held back for it" "True" \
    "$(fj 'd["stalled"]["during"] <= 1 and d["stalled"]["backlog_bytes"] > 1000000')"
t_eq "the stalled client is served again once it reads" "True" "$(fj 'd["stalled"]["after"] >= 1')"

# --- a token past its ttl ------------------------------------------------------------------------
left=$(( EXPIRED_AT + 1000 - $(now_ms) ))
[ "$left" -gt 0 ] && sleep "$(( left / 1000 )).$(printf '%03d' $(( left % 1000 )))"
probe expired "$EXPIRED_URL" --origin "$ORIGIN"
refused_1008 expired

# --- a token of a deleted instance -----------------------------------------------------------------
DEL_VNC=$(ws_url_of "$(url novnc vm-b)")
DEL_SERIAL=$(url serial vm-b)
probe before-delete "$DEL_VNC" --origin "$ORIGIN"
t_eq "vm-b's token is served before the delete" "ok RFB 003.008" "$(pj '"%s %s" % (d["handshake"], d["text"].strip())' before-delete)"
t_check "delete vm-b" t_zova server delete --wait --wait-timeout 60 vm-b
probe deleted-vnc "$DEL_VNC" --origin "$ORIGIN"
refused_1008 deleted-vnc
probe deleted-serial "$DEL_SERIAL" --origin "$ORIGIN"
refused_1008 deleted-serial
t_check_fails "no console URL for a deleted server" "No server with a name or ID of 'vm-b'" t_zova console url show --novnc vm-b

# --- the end ---------------------------------------------------------------------------------------
t_check "delete vm-a" t_zova server delete --wait --wait-timeout 60 vm-a
t_eq "no zova domain left in libvirt" "" "$(virsh -q -c "$URI" list --all --name | grep '^zova-' || true)"
t_stop aio
t_done
