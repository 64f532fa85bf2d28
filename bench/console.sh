#!/usr/bin/env bash
# console.sh [BUILD]: the console proxy's relay against a direct TCP
# connection to the same guest's VNC server, in the same run.
#
# Set-up, as tests/e2e/test_console.sh does it: a private libvirtd
# (scripts/libvirtd-test.sh), the tiny test guest (scripts/build-test-guest.sh,
# reused from ZV_GUEST_DIR, default /var/tmp/zova-test-guest), `zovad all`
# with its console proxy on a free loopback port, one guest booted and up
# (its banner on the serial console), and the npm packages of
# tests/console (tests/console/node-deps.sh, cached in ZV_NODE_DIR, default
# /var/tmp/zova-test-node).
#
# The guest is the initramfs one with the bzImage kernel and console=tty0,
# and a loop started on its serial console (through the proxy) prints a
# line on the VGA text screen every 20 ms: QEMU sends framebuffer updates on
# a refresh timer that slows down to seconds on a still screen and comes
# back to 30 ms while it changes, so only a changing screen makes the
# relay, not the timer, the limit of the throughput figures.
#
# tests/console/rfb_bench.js measures both paths with the same client
# (rfb.js: RFB 3.8, no auth, Raw encoding), BENCH_CONSOLE_ROUNDS (3) rounds,
# direct and proxied alternating so that load drift hits both; each figure
# is the median of the rounds:
#   connect   a fresh connection to ServerInit (through the proxy: the
#             WebSocket handshake, the token checked by the conductor, the
#             TCP connection to the guest, then the RFB handshake)
#   rtt       a 1x1 non-incremental FramebufferUpdateRequest on one session
#             and QEMU's immediate ExtendedDesktopSize answer: the path's own
#             latency (pixel updates wait for QEMU's refresh timer)
#   throughput  BENCH_CONSOLE_CLIENTS (16; QEMU serves 32 at most) sessions
#             at once, each asking for the next full-screen Raw update as
#             soon as the previous one is in, for BENCH_CONSOLE_SECONDS (5)
#
# Prints "name: value" lines (progress on stderr); a figure that could not
# be measured prints "failed" and the exit status is then 1.  zovad is
# stopped by PID, the private libvirtd by its pid files (which destroys the
# guest).  BENCH_KEEP=1 keeps the directory and logs.

set -u -o pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ZOVAD="$BUILD/zovad"
ZOVA_BIN="$BUILD/zova"
ROUNDS=${BENCH_CONSOLE_ROUNDS:-3}
CLIENTS=${BENCH_CONSOLE_CLIENTS:-16}
RUN_SECONDS=${BENCH_CONSOLE_SECONDS:-5}
GUEST=${ZV_GUEST_DIR:-/var/tmp/zova-test-guest}

DIR=$(mktemp -d /tmp/zova-bench-console.XXXXXX)
LV="$DIR/libvirt"
URI=
ZOVAD_PID=
CHILD=
FAILED=0

cleanup () {
    local stopper=
    trap '' INT TERM
    [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null
    [ -n "$ZOVAD_PID" ] && kill -TERM "$ZOVAD_PID" 2>/dev/null
    if [ -n "$URI" ]; then
        bash "$ROOT/scripts/libvirtd-test.sh" stop "$LV" 2>/dev/null &
        stopper=$!
    fi
    if [ -n "$ZOVAD_PID" ]; then
        for _ in $(seq 100); do kill -0 "$ZOVAD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ZOVAD_PID" 2>/dev/null
        wait "$ZOVAD_PID" 2>/dev/null
    fi
    [ -n "$stopper" ] && wait "$stopper"
    if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$DIR"; else echo "bench: kept $DIR" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# long COMMAND...: a child run in the background and waited for, so that a
# signal interrupts the wait and cleanup stops the child.
long () {
    local rc
    "$@" &
    CHILD=$!
    wait "$CHILD"
    rc=$?
    CHILD=
    return $rc
}

note () { echo "bench: console: $*" >&2; }
die () { note "$*"; exit 1; }
zova () { "$ZOVA_BIN" --timeout 60 "$@"; }
json () { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
free_port () { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_for () {
    local seconds=$1; shift
    local deadline=$(( SECONDS + seconds ))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

# --- set-up ----------------------------------------------------------------------
[ -x "$ZOVAD" ] || die "no $ZOVAD (make first)"
NODE_PATH=$(bash "$ROOT/tests/console/node-deps.sh" 2>"$DIR/node-deps.log") \
    || die "npm packages: $(tail -3 "$DIR/node-deps.log")"
export NODE_PATH
long bash "$ROOT/scripts/build-test-guest.sh" "$GUEST" 2>"$DIR/build-guest.log" \
    || die "build-test-guest.sh failed: $(tail -3 "$DIR/build-guest.log")"
export LIBVIRTD_TEST_CAPS_CACHE="$GUEST/libvirt-cache"
URI=$(bash "$ROOT/scripts/libvirtd-test.sh" start "$LV" 2>"$DIR/libvirtd-start.log") \
    || { URI=; die "private libvirtd did not start: $(tail -3 "$DIR/libvirtd-start.log")"; }

API="tcp://127.0.0.1:$(free_port)"
PP=$(free_port)
export ZOVA_ENDPOINT=$API
cat >"$DIR/zova.conf" <<EOF
[DEFAULT]
state_path = $DIR/var
log_level = warning
[api]
endpoint = $API
[compute]
instances_path = $DIR/instances
reserved_host_memory_mb = 0
ram_allocation_ratio = 4.0
[libvirt]
connection_uri = $URI
[vnc]
server_listen = 127.0.0.1
novncproxy_base_url = http://127.0.0.1:$PP/vnc_lite.html
[serial_console]
base_url = ws://127.0.0.1:$PP/serial
# A range of this run's own (test_console.sh says why).
port_range = $(( 10000 + ($$ % 490) * 20 )):$(( 10019 + ($$ % 490) * 20 ))
[consoleproxy]
listen = 127.0.0.1
port = $PP
EOF
"$ZOVAD" all --config "$DIR/zova.conf" >"$DIR/zovad.log" 2>&1 &
ZOVAD_PID=$!
wait_for 30 zova ping || die "zovad did not answer: $(tail -3 "$DIR/zovad.log")"
wait_for 30 bash -c "\"$ZOVA_BIN\" hypervisor list -f json | grep -q QEMU" || die "no hypervisor"

truncate -s 16M "$DIR/blank.raw"
zova image create --file "$GUEST/vmlinuz" --disk-format aki kernel >/dev/null || die "image upload"
zova image create --file "$GUEST/initrd.img" --disk-format ari ramdisk >/dev/null || die "image upload"
KERNEL=$(zova image show kernel -f json | json 'd["id"]')
RAMDISK=$(zova image show ramdisk -f json | json 'd["id"]')
zova image create --file "$DIR/blank.raw" --disk-format raw --property "kernel_id=$KERNEL" \
    --property "ramdisk_id=$RAMDISK" --property "os_command_line=console=tty0 $(cat "$GUEST/cmdline")" guest >/dev/null \
    || die "image upload"
zova flavor create --vcpus 1 --ram 128 --disk 1 bench.console >/dev/null || die "flavor"
note "booting the guest"
long "$ZOVA_BIN" --timeout 60 server create --flavor bench.console --image guest --wait --wait-timeout 180 vm >/dev/null \
    || die "the guest did not boot"
wait_for 120 bash -c "\"$ZOVA_BIN\" console log show vm | grep -q 'zova test guest ready'" || die "no banner from the guest"
DOM="zova-$(zova server show vm -f json | json 'd["id"]')"
VNC=$(virsh -c "$URI" dumpxml "$DOM" | python3 -c '
import sys, xml.etree.ElementTree as ET
print([g.get("port") for g in ET.fromstring(sys.stdin.read()).iter("graphics") if g.get("type") == "vnc"][0])')
note "guest $DOM, VNC on 127.0.0.1:$VNC, proxy on 127.0.0.1:$PP"
SERIAL_URL=$(zova console url show --serial vm -f json | json 'd["url"]')
node "$ROOT/tests/console/ws_probe.js" "$SERIAL_URL" --origin "http://127.0.0.1:$PP" \
    --send 'while :; do echo $RANDOM; usleep 20000; done >/dev/tty0 &\necho screen-$((6*7))\n' \
    --expect 'screen-42' >"$DIR/screen-loop.json" 2>&1
grep -q '"matched":true' "$DIR/screen-loop.json" || die "could not start the screen loop: $(head -c 300 "$DIR/screen-loop.json")"

# --- the runs ----------------------------------------------------------------------
proxy_url () {
    zova console url show --novnc vm -f json | json 'd["url"]' | python3 -c '
import sys, urllib.parse as u; p = u.urlsplit(sys.stdin.read().strip())
print("ws://%s/%s" % (p.netloc, u.parse_qs(p.query)["path"][0]))'
}
run () {
    local side=$1 target=$2
    long node "$ROOT/tests/console/rfb_bench.js" "$target" --clients "$CLIENTS" --seconds "$RUN_SECONDS" \
        --origin "http://127.0.0.1:$PP" >>"$DIR/$side.json" 2>>"$DIR/$side.err" \
        || note "$side: $(tail -1 "$DIR/$side.json") $(tail -2 "$DIR/$side.err")"
    note "$side: $(tail -1 "$DIR/$side.json")"
}
for round in $(seq "$ROUNDS"); do
    note "round $round of $ROUNDS"
    run direct "tcp:127.0.0.1:$VNC"
    run proxy "$(proxy_url)"
done

# --- figures -------------------------------------------------------------------------
python3 - "$DIR/direct.json" "$DIR/proxy.json" "$CLIENTS" <<'PY' || FAILED=1
import json, statistics, sys

def rounds(path):
    out = []
    for line in open(path):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if "error" not in d:
            out.append(d)
    return out

direct, proxy = rounds(sys.argv[1]), rounds(sys.argv[2])
failed = False
def med(rs, key):
    return statistics.median(r[key] for r in rs) if rs else None
def fmt(v):
    return "failed" if v is None else ("%.0f" % v if abs(v) >= 100 else "%.3g" % v)
def fig(name, v):
    global failed
    failed |= v is None
    print("%s: %s" % (name, fmt(v)))
def ratio(a, b):
    return a / b if a is not None and b else None

c_d, c_p = med(direct, "connect_ms"), med(proxy, "connect_ms")
r_d, r_p = med(direct, "rtt_ms"), med(proxy, "rtt_ms")
p90_d, p90_p = med(direct, "rtt_p90_ms"), med(proxy, "rtt_p90_ms")
t_d, t_p = med(direct, "mb_s"), med(proxy, "mb_s")
u_d, u_p = med(direct, "updates_s"), med(proxy, "updates_s")
fig("console_connect_direct_ms", c_d)
fig("console_connect_proxy_ms", c_p)
fig("console_rfb_rtt_direct_ms", r_d)
fig("console_rfb_rtt_proxy_ms", r_p)
fig("console_rfb_rtt_added_ms", None if r_d is None or r_p is None else r_p - r_d)
fig("console_rfb_rtt_p90_direct_ms", p90_d)
fig("console_rfb_rtt_p90_proxy_ms", p90_p)
fig("console_latency_ratio", ratio(r_p, r_d))
fig("console_throughput_direct_mb_s", t_d)
fig("console_throughput_proxy_mb_s", t_p)
fig("console_throughput_ratio", ratio(t_p, t_d))
fig("console_updates_direct_per_s", u_d)
fig("console_updates_proxy_per_s", u_p)
print("console_throughput_clients: %s" % sys.argv[3])
print("console_screen: %s" % (direct or proxy or [{"screen": "failed"}])[0]["screen"])
sys.exit(1 if failed else 0)
PY
exit $FAILED
