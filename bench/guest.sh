#!/usr/bin/env bash
# guest.sh BUILD: real-guest spawn and image transfer, each against the raw
# limit measured in the same run.  `bench/run.sh` runs it as its step 6
# (BENCH_GUEST=0 skips it); it also runs alone: `bash bench/guest.sh build`.
#
# Set-up, as tests/e2e/test_guests.sh does it: a private libvirtd
# (scripts/libvirtd-test.sh, capabilities cached in the guest directory),
# the tiny test guest (scripts/build-test-guest.sh, reused from
# ZV_GUEST_DIR, default /var/tmp/zova-test-guest), `zovad all` on that
# libvirtd (instances_path in this run's directory, no reserved memory, RAM
# ratio 4), and the initramfs guest registered as three images: the kernel
# (aki), the ramdisk (ari) and a blank 16 MiB raw root disk whose
# kernel_id/ramdisk_id/os_command_line properties boot them.  One server is
# booted and deleted first, so that the image cache holds all three files.
#
# Spawn, cached image, BENCH_GUEST_RUNS (5) of each side, one guest at a
# time, zova and raw alternating so that load drift hits both:
#   zova  bench/boot_client: api.server_create as `zova server create`
#         sends it (flavor 1 vCPU, 128 MB, 1 GB), then api.server_list
#         every 20 ms on the same connection until the server is no longer
#         BUILD, and a check that it is ACTIVE.  (A `zova server show`
#         process every 20 ms, each taking 10-25 ms, would compete for the
#         two cores the QEMU start being timed needs.)
#   raw   bench/raw_spawn: virDomainDefineXML + virDomainCreate, the calls
#         compute makes, of the libvirt.xml compute wrote for the warm-up
#         server (name, uuid and instance directory changed, nothing else),
#         on a qcow2 overlay of the same cached base that qemu-img makes
#         outside the clock (compute's overlay is inside zova's).
# Each clock starts in this shell before its client starts; "running" is
# the client's exit (it returns once the domain runs); then both sides
# poll `virsh qemu-agent-command DOMAIN guest-ping` every 20 ms, the same
# way, until the guest agent answers.  Deletes and destroys are outside
# the clocks.  Two marks from libvirt's own files split each run, on both
# sides: the "starting up" line it writes in the domain's log (ms, UTC)
# when it launches QEMU, and the mtime of the domain's status file, which
# it saves when the start is complete.  Launch to started is the
# hypervisor's part (spawn_qemu_start_*_ms), and it swings by hundreds of
# ms from run to run under TCG; the rest of a run is what the side itself
# added (spawn_own_*_ms).  spawn_zova_added_ms = zova's own - raw's own, and
# spawn_running_overhead_ratio_net = (raw running + that) / raw running:
# the overhead ratio without the hypervisor's noise in it.
#
# Image transfer: a raw image of BENCH_GUEST_IMAGE_MB (256) MiB of random
# bytes, uploaded with `zova image create`, then fetched over the bus by
# compute's image cache when a server boots from it; compute logs the
# fetch ("image ID: X MB in S s (R MB/s), checksum verified": received,
# written and hashed, before the final fsync).  Against `cp` of the same
# file into the same file system plus an fsync of the copy, and against
# sha256sum of it (the fetch verifies a sha256 as it goes).
#
# Prints "name: value" lines (progress on stderr); a figure that could not
# be measured prints "failed" and the exit status is then 1.  Everything
# lives in one temporary directory; zovad is stopped by PID, the private
# libvirtd by its pid files (which destroys every domain this run made).
# Knobs: BENCH_GUEST_RUNS (5), BENCH_GUEST_IMAGE_MB (256), BENCH_KEEP=1
# (keep the directory and logs), ZV_GUEST_DIR.
# docs/PERFORMANCE.md ("Real guests") explains every figure.

set -u -o pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ZOVAD="$BUILD/zovad"
ZOVA_BIN="$BUILD/zova"
RAW_SPAWN="$BUILD/bench/raw_spawn"
BOOT_CLIENT="$BUILD/bench/boot_client"
RUNS=${BENCH_GUEST_RUNS:-5}
IMAGE_MB=${BENCH_GUEST_IMAGE_MB:-256}
GUEST=${ZV_GUEST_DIR:-/var/tmp/zova-test-guest}
POLL_S=0.02                     # guest-ping poll interval
# A guest that has not answered its agent after this long is not slow, it
# is broken: the bench says so instead of waiting.
DEADLINE_S=180

DIR=$(mktemp -d /tmp/zova-bench-guest.XXXXXX)
LV="$DIR/libvirt"
INST="$DIR/instances"
URI=
ZOVAD_PID=
CHILD=
FAILED=0

# zovad and the daemons stop at the same time: bench/run.sh gives this
# script a few seconds after its SIGTERM, and the libvirtd stop, once
# started, finishes even if this shell is killed.
cleanup () {
    local stopper=
    trap '' INT TERM PIPE
    [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null
    [ -n "$ZOVAD_PID" ] && kill -TERM "$ZOVAD_PID" 2>/dev/null
    # Every domain of this run lives in the private daemon: stopping it
    # destroys them and kills any QEMU left by its pid files.
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
trap 'exit 141' PIPE

# long COMMAND...: a child that may take seconds, run in the background
# and waited for: bash runs a trap only once a foreground child has ended,
# but interrupts a wait at once, and cleanup then stops the child.
long () {
    local rc
    "$@" &
    CHILD=$!
    wait "$CHILD"
    rc=$?
    CHILD=
    return $rc
}

note () { echo "bench: guest: $*" >&2; }
figure () { echo "$1: $2"; }
# Microseconds of the wall clock, without a process (bash's EPOCHREALTIME).
us_now () { NOW_US=${EPOCHREALTIME//[.,]/}; }
calc () { python3 -c "v=$1; print(('%.0f' if abs(v) >= 100 else '%.3g') % v)"; }
# median FILE: the median of the numbers in FILE, one a line; empty if none.
median () {
    python3 -c '
import statistics, sys
v = [float(x) for x in open(sys.argv[1]) if x.strip()]
if v: print(statistics.median(v))' "$1" 2>/dev/null
}
# fig NAME VALUE: a figure, "failed" when VALUE is empty.
fig () {
    if [ -n "$2" ]; then figure "$1" "$(calc "$2")"; else figure "$1" failed; FAILED=1; fi
}
# ratio NAME A B: A / B when both were measured.
ratio () {
    if [ -n "$2" ] && [ -n "$3" ]; then figure "$1" "$(calc "$2 / $3")"; else figure "$1" failed; FAILED=1; fi
}
zova () { "$ZOVA_BIN" --timeout 60 "$@"; }
json_field () { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
virsh_ () { virsh -q -c "$URI" "$@"; }

# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for () {
    local seconds=$1; shift
    local deadline=$(( SECONDS + seconds ))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

# wait_agent DOMAIN: poll guest-ping every 20 ms until the agent answers;
# NOW_US is when the answer came back.  Each failed ping's duration goes to
# $DIR/poll_ping.us (spawn_poll_ping_ms: the granularity of that poll).
wait_agent () {
    local dom=$1 t deadline=$(( SECONDS + DEADLINE_S ))
    while true; do
        us_now; t=$NOW_US
        if virsh -c "$URI" qemu-agent-command --timeout 5 "$dom" '{"execute":"guest-ping"}' >/dev/null 2>&1; then
            us_now
            return 0
        fi
        us_now
        echo $(( NOW_US - t )) >>"$DIR/poll_ping.us"
        [ $SECONDS -lt $deadline ] || { note "$dom: no guest agent after ${DEADLINE_S}s"; return 1; }
        sleep "$POLL_S"
    done
}

# launch_ms DOMAIN T0_US: ms from T0 to the moment libvirt began to start
# QEMU, from the "starting up" line it writes (ms precision, UTC) at the
# head of each start in the domain's log.
launch_ms () {
    python3 -c '
import datetime, sys
last = None
for line in open(sys.argv[1], errors="replace"):
    if ": starting up libvirt" in line:
        last = line.split(": starting up")[0]
when = datetime.datetime.strptime(last, "%Y-%m-%d %H:%M:%S.%f%z").timestamp()
print(round(when * 1000 - int(sys.argv[2]) / 1000))' "$LV/log/qemu/$1.log" "$2" 2>/dev/null || echo -
}

# started_ms DOMAIN T0_US: ms from T0 to libvirt's last write of the
# domain's status file, which it saves when the start completes (the vCPUs
# run): when the hypervisor was done, whoever asked.
started_ms () {
    local mtime
    mtime=$(stat -c %.6Y "$LV/run/qemu/$1.xml" 2>/dev/null) || return 0
    echo $(( (${mtime//./} - $2) / 1000 ))
}

server_delete () { long "$ZOVA_BIN" --timeout 60 server delete --wait --wait-timeout 120 "$1" >/dev/null 2>>"$DIR/delete.log"; }

# boot LABEL IMAGE [FLAVOR]: boot one server through zova, timed from
# before the client starts (T0_US) to its exit (NOW_US); its uuid in
# BOOT_UUID.
# bench/boot_client sends api.server_create as the CLI does, polls
# api.server_list every 20 ms on its one connection until the server is no
# longer BUILD, and checks it is ACTIVE (an ERROR counts in LABEL_errors).
boot () {
    local label=$1 image=$2 flavor=${3:-bench.guest} rc
    rm -f "$DIR/uuid"
    BOOT_UUID=
    us_now; T0_US=$NOW_US
    "$BOOT_CLIENT" create --endpoint "$ZOVA_ENDPOINT" --flavor "$flavor" --image "$image" --count 1 \
        --poll-ms 20 --label "$label" --uuids-out "$DIR/uuid" --timeout "$DEADLINE_S" >"$DIR/boot.out" 2>"$DIR/boot.err"
    rc=$?
    us_now
    BOOT_UUID=$(cat "$DIR/uuid" 2>/dev/null)
    if [ $rc -ne 0 ] || [ "$(sed -n "s/^${label}_errors: //p" "$DIR/boot.out")" != 0 ]; then
        local fault=
        [ -n "$BOOT_UUID" ] && fault=$(zova server show "$BOOT_UUID" -f json 2>/dev/null \
            | grep -o '"message": "[^"]*"' | head -c 400)
        note "$label: boot failed: $(head -c 300 "$DIR/boot.err") $fault"
        [ -n "$BOOT_UUID" ] && server_delete "$BOOT_UUID"
        return 1
    fi
}

# A run's row in $DIR/zova.runs or $DIR/raw.runs, ms from its T0:
#   running agent launch started [define start]
# launch and started come from libvirt's files (launch_ms, started_ms);
# define and start are raw_spawn's own clocks.

# zova_spawn N: one timed spawn through zova, then its delete.
zova_spawn () {
    local running started
    boot zova bench-ramfs || return 1
    running=$(( (NOW_US - T0_US) / 1000 ))
    started=$(started_ms "zova-$BOOT_UUID" "$T0_US")
    wait_agent "zova-$BOOT_UUID" || { server_delete "$BOOT_UUID"; return 1; }
    echo "$running $(( (NOW_US - T0_US) / 1000 )) $(launch_ms "zova-$BOOT_UUID" "$T0_US") ${started:--}" >>"$DIR/zova.runs"
    server_delete "$BOOT_UUID" || note "zova spawn $1: delete failed"
}

# raw_spawn N: the same guest defined and started by hand, then destroyed.
raw_spawn () {
    local n=$1 dir="$DIR/raw/$1" t0 running started
    mkdir -p "$dir"
    qemu-img create -q -f qcow2 -F raw -b "$RAW_BASE" "$dir/disk" "$RAW_SIZE" || return 1
    python3 - "$DIR/raw/template.xml" "$TEMPLATE_UUID" "$INST/$TEMPLATE_UUID" "$dir" "bench-raw-$n" <<'EOF' || return 1
import sys, uuid
src, old, old_dir, new_dir, name = sys.argv[1:]
x = open(src).read()
x = x.replace(old_dir + "/", new_dir + "/")
x = x.replace("<name>zova-%s</name>" % old, "<name>%s</name>" % name)
x = x.replace("<uuid>%s</uuid>" % old, "<uuid>%s</uuid>" % uuid.uuid4())
assert old not in x.replace(old_dir, ""), "template still names the zova instance"
open(new_dir + "/domain.xml", "w").write(x)
EOF
    us_now; t0=$NOW_US
    if ! "$RAW_SPAWN" "$URI" "$dir/domain.xml" >"$dir/spawn.out" 2>"$dir/spawn.err"; then
        note "raw spawn $n failed: $(head -c 300 "$dir/spawn.err")"
        raw_remove "$n"
        return 1
    fi
    us_now
    running=$(( (NOW_US - t0) / 1000 ))
    started=$(started_ms "bench-raw-$n" "$t0")
    wait_agent "bench-raw-$n" || { raw_remove "$n"; return 1; }
    echo "$running $(( (NOW_US - t0) / 1000 )) $(launch_ms "bench-raw-$n" "$t0") ${started:--}" \
        "$(sed -n 's/^define_ms: //p' "$dir/spawn.out") $(sed -n 's/^start_ms: //p' "$dir/spawn.out")" >>"$DIR/raw.runs"
    raw_remove "$n"
}

raw_remove () {
    long virsh -q -c "$URI" destroy "bench-raw-$1" >/dev/null 2>&1
    virsh_ undefine "bench-raw-$1" >/dev/null 2>&1
    rm -rf "$DIR/raw/$1"
}

# attempt WHAT COMMAND...: up to 3 tries.  Another libvirtd on the machine
# (a test suite's) can take the VNC port this one's allocator just judged
# free, and QEMU then fails to start: that run is redone, not counted.
attempt () {
    local what=$1 try; shift
    for try in 1 2 3; do
        "$@" && return 0
        [ "$try" -lt 3 ] && note "$what: attempt $try failed, again"
    done
    note "$what: failed 3 times"
    return 1
}

# --- prerequisites -------------------------------------------------------
for bin in "$ZOVAD" "$ZOVA_BIN" "$RAW_SPAWN" "$BOOT_CLIENT"; do
    [ -x "$bin" ] || { note "$bin missing (run make bench)"; exit 1; }
done
for tool in qemu-system-x86_64 qemu-img virsh libvirtd; do
    command -v "$tool" >/dev/null || { note "$tool missing (scripts/deps.sh)"; exit 1; }
done
note "test guest in $GUEST"
long bash "$ROOT/scripts/build-test-guest.sh" "$GUEST" 2>"$DIR/build-guest.log" \
    || { note "build-test-guest.sh failed: $(tail -3 "$DIR/build-guest.log")"; exit 1; }
export LIBVIRTD_TEST_CAPS_CACHE="$GUEST/libvirt-cache"
URI=$(bash "$ROOT/scripts/libvirtd-test.sh" start "$LV" 2>"$DIR/libvirtd-start.log") \
    || { URI=; note "private libvirtd did not start: $(tail -3 "$DIR/libvirtd-start.log")"; exit 1; }
virsh -c "$URI" domcapabilities --virttype qemu >/dev/null 2>&1 || { note "libvirtd cannot run QEMU guests"; exit 1; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
export ZOVA_ENDPOINT="tcp://127.0.0.1:$PORT"
cat >"$DIR/zova.conf" <<EOF
[DEFAULT]
state_path = $DIR/var
report_interval = 1
service_down_time = 10
log_level = info
[api]
endpoint = $ZOVA_ENDPOINT
[scheduler]
host_refresh_interval_ms = 200
[compute]
instances_path = $INST
reserved_host_memory_mb = 0
ram_allocation_ratio = 4.0
[libvirt]
connection_uri = $URI
virt_type = auto
EOF
"$ZOVAD" all --config "$DIR/zova.conf" >>"$DIR/zovad.log" 2>&1 &
ZOVAD_PID=$!
wait_for 30 zova ping || { note "api does not answer (log: $DIR/zovad.log)"; BENCH_KEEP=1; exit 1; }
wait_for 30 bash -c "\"$ZOVA_BIN\" hypervisor list -f json | grep -q QEMU" \
    || { note "compute did not report its hypervisor"; BENCH_KEEP=1; exit 1; }

# --- images, flavor, warm-up ---------------------------------------------
zova image create --file "$GUEST/vmlinux" --disk-format aki bench-kernel >/dev/null || exit 1
zova image create --file "$GUEST/initrd.img" --disk-format ari bench-ramdisk >/dev/null || exit 1
KERNEL=$(zova image show bench-kernel -f json | json_field id)
RAMDISK=$(zova image show bench-ramdisk -f json | json_field id)
truncate -s 16M "$DIR/blank.raw"
zova image create --file "$DIR/blank.raw" --disk-format raw --property "kernel_id=$KERNEL" \
    --property "ramdisk_id=$RAMDISK" --property "os_command_line=$(cat "$GUEST/cmdline")" bench-ramfs >/dev/null || exit 1
zova flavor create --vcpus 1 --ram 128 --disk 1 bench.guest >/dev/null || exit 1
zova flavor create --vcpus 1 --ram 128 --disk $(( IMAGE_MB / 1024 + 1 )) bench.big >/dev/null || exit 1

# warm_up: the first server, from the uncached image set; it stays up
# (TEMPLATE_UUID) until its libvirt.xml and disk shape are copied.  Only a
# first attempt times an uncached spawn.
UNCACHED_RUNNING= UNCACHED_AGENT=
warm_up () {
    local first=${WARM_UP_TRIED:-1}
    WARM_UP_TRIED=0
    boot warm bench-ramfs || return 1
    TEMPLATE_UUID=$BOOT_UUID
    [ "$first" = 1 ] && UNCACHED_RUNNING=$(( (NOW_US - T0_US) / 1000 ))
    wait_agent "zova-$TEMPLATE_UUID" || { server_delete "$TEMPLATE_UUID"; return 1; }
    [ "$first" = 1 ] && UNCACHED_AGENT=$(( (NOW_US - T0_US) / 1000 ))
    return 0
}

note "warm-up: one server from the uncached image set"
attempt warm-up warm_up || { BENCH_KEEP=1; exit 1; }
# The raw side's document and disk shape: compute's own, taken while it runs.
mkdir -p "$DIR/raw"
cp "$INST/$TEMPLATE_UUID/libvirt.xml" "$DIR/raw/template.xml" || exit 1
qemu-img info -U --output=json "$INST/$TEMPLATE_UUID/disk" >"$DIR/raw/disk.json" || exit 1
RAW_BASE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["backing-filename"])' "$DIR/raw/disk.json")
RAW_SIZE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["virtual-size"])' "$DIR/raw/disk.json")
server_delete "$TEMPLATE_UUID" || note "warm-up delete failed"
rm -f "$DIR/poll_ping.us"

# --- spawn: zova and raw, alternating -------------------------------------
for n in $(seq "$RUNS"); do
    note "spawn $n/$RUNS: zova"
    attempt "zova spawn $n" zova_spawn "$n" || FAILED=1
    note "spawn $n/$RUNS: raw libvirt"
    attempt "raw spawn $n" raw_spawn "$n" || FAILED=1
done

# --- image transfer ---------------------------------------------------------
# copy_round: the limit, once: the image's bytes copied by cp into the
# image cache's file system and the copy fsynced (its "cp_us total_us" to
# copy.runs), then hashed by sha256sum (to hash.runs), the check the fetch
# makes as it goes.  Three rounds, one before the fetch and two after, and
# their medians: on this VM one cp of 256 MiB took from 0.15 s to 2 s.
copy_round () {
    local t0 t1
    us_now; t0=$NOW_US
    long cp "$DIR/big.raw" "$INST/copy.raw" || return 1
    us_now; t1=$NOW_US
    long sync "$INST/copy.raw" || return 1
    us_now
    echo "$(( t1 - t0 )) $(( NOW_US - t0 ))" >>"$DIR/copy.runs"
    rm -f "$INST/copy.raw"
    us_now; t0=$NOW_US
    long sha256sum "$DIR/big.raw" >/dev/null || return 1
    us_now
    echo $(( NOW_US - t0 )) >>"$DIR/hash.runs"
}

# mb_s FILE COLUMN: IMAGE_MB over the median of a column of microseconds.
mb_s () {
    python3 -c '
import statistics, sys
v = [float(line.split()[int(sys.argv[2])]) for line in open(sys.argv[1]) if line.strip()]
if v: print(float(sys.argv[3]) / (statistics.median(v) / 1e6))' "$1" "$2" "$IMAGE_MB" 2>/dev/null
}

note "image transfer: $IMAGE_MB MiB over the bus vs cp + fsync"
BYTES=$(( IMAGE_MB * 1048576 ))
long head -c "$BYTES" /dev/urandom >"$DIR/big.raw" && long sync -f "$DIR/big.raw"
us_now; T0=$NOW_US
long "$ZOVA_BIN" --timeout 60 image create --file "$DIR/big.raw" --disk-format raw bench-big >/dev/null || note "upload failed"
us_now
UPLOAD_MB_S=$(calc "$IMAGE_MB / (($NOW_US - $T0) / 1e6)")
BIG=$(zova image show bench-big -f json | json_field id)
copy_round
TRANSFER_MB_S= TRANSFER_SPAWN_MS=
if [ -n "$BIG" ]; then
    if boot big bench-big bench.big; then
        TRANSFER_SPAWN_MS=$(( (NOW_US - T0_US) / 1000 ))
        server_delete "$BOOT_UUID"
    fi
    # "image ID: 256.0 MB in 2.41 s (106.2 MB/s), checksum verified"
    TRANSFER_MB_S=$(sed -n "s/.*image $BIG: [0-9.]* MB in [0-9.]* s (\([0-9.]*\) MB\/s), checksum verified.*/\1/p" \
        "$DIR/zovad.log" | tail -1)
fi
copy_round
copy_round
COPY_MB_S=$(mb_s "$DIR/copy.runs" 1)
COPY_NOSYNC_MB_S=$(mb_s "$DIR/copy.runs" 0)
HASH_MB_S=$(mb_s "$DIR/hash.runs" 0)

# --- figures ------------------------------------------------------------------
figure guest_runs "$RUNS"
# spawn_*: medians over the runs of each side.  "own" is a run's time to
# running less libvirt's start of QEMU (launch to started): what the side
# itself added, without the hypervisor's run-to-run swings.
python3 - "$DIR/zova.runs" "$DIR/raw.runs" <<'EOF' || FAILED=1
import statistics, sys

def rows(path):
    try:
        return [[None if v == "-" else float(v) for v in line.split()] for line in open(path) if line.strip()]
    except OSError:
        return []

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def fmt(v):
    return "failed" if v is None else ("%.0f" % v if abs(v) >= 100 else "%.3g" % v)

def col(runs, i):
    return [r[i] if len(r) > i else None for r in runs]

def own(runs):
    return [r[0] - (r[3] - r[2]) if None not in r[:4] else None for r in runs]

def qemu(runs):
    return [r[3] - r[2] if None not in r[2:4] else None for r in runs]

zova, raw = rows(sys.argv[1]), rows(sys.argv[2])
zr, rr, za, ra = med(col(zova, 0)), med(col(raw, 0)), med(col(zova, 1)), med(col(raw, 1))
zo, ro = med(own(zova)), med(own(raw))
added = zo - ro if zo is not None and ro is not None else None
starts = [v for v in qemu(raw) if v is not None]
figures = [
    ("spawn_running_zova_ms", zr), ("spawn_running_raw_ms", rr),
    ("spawn_running_overhead_ratio", zr / rr if zr and rr else None),
    ("spawn_agent_zova_ms", za), ("spawn_agent_raw_ms", ra),
    ("spawn_agent_overhead_ratio", za / ra if za and ra else None),
    ("spawn_own_zova_ms", zo), ("spawn_own_raw_ms", ro), ("spawn_zova_added_ms", added),
    ("spawn_running_overhead_ratio_net", (rr + added) / rr if rr and added is not None else None),
    ("spawn_qemu_launch_zova_ms", med(col(zova, 2))), ("spawn_qemu_launch_raw_ms", med(col(raw, 2))),
    ("spawn_qemu_start_zova_ms", med(qemu(zova))), ("spawn_qemu_start_raw_ms", med(qemu(raw))),
    ("spawn_qemu_start_raw_min_ms", min(starts, default=None)),
    ("spawn_qemu_start_raw_max_ms", max(starts, default=None)),
    ("spawn_running_raw_define_ms", med(col(raw, 4))), ("spawn_running_raw_start_ms", med(col(raw, 5))),
]
for name, value in figures:
    print("%s: %s" % (name, fmt(value)))
sys.exit(1 if any(v is None for _, v in figures) else 0)
EOF
fig spawn_poll_ping_ms "$(median "$DIR/poll_ping.us" | awk 'NF { print $1 / 1000 }')"
fig spawn_running_uncached_ms "$UNCACHED_RUNNING"
fig spawn_agent_uncached_ms "$UNCACHED_AGENT"
figure image_mb "$IMAGE_MB"
fig image_upload_mb_s "$UPLOAD_MB_S"
fig image_transfer_mb_s "$TRANSFER_MB_S"
fig local_copy_mb_s "$COPY_MB_S"
ratio image_transfer_ratio "$TRANSFER_MB_S" "$COPY_MB_S"
fig local_copy_nosync_mb_s "$COPY_NOSYNC_MB_S"
fig local_sha256_mb_s "$HASH_MB_S"
ratio image_transfer_ratio_vs_sha256 "$TRANSFER_MB_S" "$HASH_MB_S"
fig spawn_running_image_fetch_ms "$TRANSFER_SPAWN_MS"
exit "$FAILED"
