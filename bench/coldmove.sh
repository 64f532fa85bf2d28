#!/usr/bin/env bash
# coldmove.sh BUILD: a cold migration of a server whose 1 GiB root disk
# holds 1 GiB of data, between two libvirt hosts on this machine, against
# cp + fsync of the same file in the same run.  `bench/run.sh` runs it as
# its step 9 (BENCH_COLDMOVE=0 skips it, BENCH_ONLY=coldmove runs it
# alone); it also runs alone: `bash bench/coldmove.sh build`.  Needs root
# (scripts/two-hosts.sh: network namespaces, privileged libvirtds).
#
# Set-up, as tests/e2e/test_moves_guests.sh does it: two private libvirtds,
# hosts a and b (scripts/two-hosts.sh, separate instances directories under
# this run's directory, on the file system of /tmp), a cluster of one
# conductor, scheduler and api and one `zovad compute` per host, the tiny
# test guest (scripts/build-test-guest.sh, ZV_GUEST_DIR, default
# /var/tmp/zova-test-guest) registered as kernel, ramdisk and a 64 MiB
# qcow2 root disk, and a flavor of 1 vCPU, 128 MiB and a 1 GiB root disk.
#
# The server boots on host a, is stopped (`zova server stop --wait`), and
# its overlay gets 960 MiB of random bytes past the guest's 64 MiB root
# file system with qemu-io (`write -s FILE 64M 960M`): the file a move
# carries is then ~1 GiB allocated (checked with qemu-img info), of data no
# link could compress.  The server stays stopped: a stopped server is
# moved stopped, so the clocks hold the disk and the move's own steps, not
# a TCG guest's shutdown and boot.
#
# BENCH_COLDMOVE_RUNS (3) rounds, a -> b, b -> a, a -> b, ...; each:
#   move      `zova server migrate --wait` timed, request to VERIFY_RESIZE
#             (the CLI polls every 250 ms): schedule, prepare, the source's
#             power off and manifest (the sha256 of every file), the
#             destination's pull and its domain;
#   transfer  the destination's own clock, from its log line "N files in
#             place (B bytes), P bytes pulled in T ms": every file asked
#             for in 1 MiB chunks through the conductor, written, read back
#             for its sha256, fsynced and renamed into place;
#   cp        the limit: `cp` of the source's copy of the overlay (set
#             aside as <uuid>_resize/disk) into the destination's instances
#             directory, then `sync FILE` (an fsync of the copy), timed;
#             the same bytes, the same file systems, the same page cache
#             (the source's file was just read by the move);
#   sha256    `openssl dgst -sha256` of that file: the check each end
#             makes, with the same library (OpenSSL's EVP) zova hashes with;
#   confirm   `zova server resize confirm --wait`, timed;
#   CPU       user + system CPU of the conductor and of the source's and
#             the destination's compute during the move (/proc/PID/stat,
#             every thread), and of cp + sync (bash's time).
# The first round's prepare also fetches the three images into host b's
# cache, as a first move onto a host does.
# coldmove_transfer_ratio = transfer MiB/s / cp + fsync MiB/s (medians);
# the goal is at least 0.8.
#
# Prints "name: value" lines (progress on stderr); a figure that could not
# be measured prints "failed" and the exit status is then 1.  Everything
# lives in one temporary directory; the zovad processes are stopped by PID
# and the two hosts by `two-hosts.sh stop` (which destroys every domain).
# Knobs: BENCH_COLDMOVE_RUNS (3), BENCH_COLDMOVE_MB (960: MiB of random
# bytes written at 64 MiB), BENCH_COLDMOVE_PERF=1 (perf record -g of the
# conductor and both computes during the first round's move, reports kept
# in the directory), BENCH_KEEP=1 (keep the directory and logs), ZV_GUEST_DIR.
# docs/PERFORMANCE.md ("Moves: a cold migration of a 1 GiB disk") explains
# every figure.

set -u -o pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ZOVAD="$BUILD/zovad"
ZOVA_BIN="$BUILD/zova"
RUNS=${BENCH_COLDMOVE_RUNS:-3}
FILL_MB=${BENCH_COLDMOVE_MB:-960}
PERF=${BENCH_COLDMOVE_PERF:-}
GUEST=${ZV_GUEST_DIR:-/var/tmp/zova-test-guest}
TWO="$ROOT/scripts/two-hosts.sh"
MOVE_TIMEOUT_S=600

DIR=$(mktemp -d /tmp/zova-bench-coldmove.XXXXXX)
HOSTS="$DIR/hosts"
HOSTS_STARTED=
PIDS=()
CHILD=
FAILED=0

# The zovad processes and the two hosts stop at the same time: bench/run.sh
# gives this script a few seconds after its SIGTERM, and the hosts' stop,
# once started, finishes even if this shell is killed (stopping the
# daemons destroys every domain of this run).
cleanup () {
    local pid stopper=
    trap '' INT TERM PIPE
    [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    if [ -n "$HOSTS_STARTED" ]; then
        bash "$TWO" stop "$HOSTS" >/dev/null 2>>"$DIR/two-hosts.log" &
        stopper=$!
    fi
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    [ -n "$stopper" ] && wait "$stopper"
    if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$DIR"; else echo "bench: kept $DIR" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 141' PIPE

# long COMMAND...: a child that may take seconds, run in the background
# and waited for, so that a SIGTERM runs cleanup at once.
long () {
    local rc
    "$@" &
    CHILD=$!
    wait "$CHILD"
    rc=$?
    CHILD=
    return $rc
}

note () { echo "bench: coldmove: $*" >&2; }
figure () { echo "$1: $2"; }
us_now () { NOW_US=${EPOCHREALTIME//[.,]/}; }
calc () { python3 -c "v=$1; print(('%.0f' if abs(v) >= 100 else '%.3g') % v)"; }
# fig NAME VALUE: a figure, "failed" when VALUE is empty.
fig () {
    if [ -n "$2" ]; then figure "$1" "$(calc "$2")"; else figure "$1" failed; FAILED=1; fi
}
# ratio NAME A B: A / B when both were measured.
ratio () {
    if [ -n "$2" ] && [ -n "$3" ]; then figure "$1" "$(calc "$2 / $3")"; else figure "$1" failed; FAILED=1; fi
}
# median COLUMN: the median of a column of $DIR/runs (empty if none).
median () {
    python3 -c '
import statistics, sys
v = [float(line.split()[int(sys.argv[2])]) for line in open(sys.argv[1]) if line.strip()]
if v: print(statistics.median(v))' "$DIR/runs" "$1" 2>/dev/null
}
port () { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
zova () { "$ZOVA_BIN" --timeout 60 "$@"; }
json_field () { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

wait_for () {
    local seconds=$1; shift
    local deadline=$(( SECONDS + seconds ))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

# state: "status host power_state" of the server.
state () {
    zova server show -f json "$UUID" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["status"], d["host"], d["power_state"])'
}

hosts_up () {
    [ "$(zova -f json hypervisor list | python3 -c 'import json,sys; print(sum(h["state"] == "up" for h in json.load(sys.stdin)))')" = 2 ]
}

# --- prerequisites -------------------------------------------------------
[ "$(id -u)" -eq 0 ] || { note "needs root (scripts/two-hosts.sh)"; exit 1; }
for bin in "$ZOVAD" "$ZOVA_BIN"; do
    [ -x "$bin" ] || { note "$bin missing (run make)"; exit 1; }
done
for tool in qemu-system-x86_64 qemu-img qemu-io virsh libvirtd openssl; do
    command -v "$tool" >/dev/null || { note "$tool missing (scripts/deps.sh --guest)"; exit 1; }
done
if [ -n "$PERF" ] && ! command -v perf >/dev/null; then note "perf missing"; exit 1; fi
note "test guest in $GUEST"
long bash "$ROOT/scripts/build-test-guest.sh" "$GUEST" 2>"$DIR/build-guest.log" \
    || { note "build-test-guest.sh failed: $(tail -3 "$DIR/build-guest.log")"; exit 1; }
export LIBVIRTD_TEST_CAPS_CACHE="$GUEST/libvirt-cache"
HOSTS_STARTED=1
eval "$(bash "$TWO" start "$HOSTS" 2>"$DIR/two-hosts.log")" \
    || { note "two-hosts.sh start failed: $(tail -3 "$DIR/two-hosts.log")"; exit 1; }
declare -A URI=([a]=$A_URI [b]=$B_URI)
declare -A INST=([a]=$A_INSTANCES [b]=$B_INSTANCES)

# --- the cluster: conductor, scheduler, api, one compute per host ----------
export ZOVA_ENDPOINT="tcp://127.0.0.1:$(port)"
CONDUCTOR_EP="tcp://127.0.0.1:$(port)"
# config NAME [section.key=value ...]
config () {
    local name=$1 kv section key value current=DEFAULT; shift
    {
        echo "[DEFAULT]"
        echo "state_path = $DIR/var"
        echo "report_interval = 1"
        echo "service_down_time = 10"
        echo "log_level = info"
        echo "[conductor]"
        echo "endpoint = $CONDUCTOR_EP"
        current=conductor
        for kv in "$@"; do
            section=${kv%%.*}; key=${kv#*.}; value=${key#*=}; key=${key%%=*}
            if [ "$section" != "$current" ]; then echo "[$section]"; current=$section; fi
            echo "$key = $value"
        done
    } >"$DIR/$name.conf"
}
config conductor DEFAULT.host=controller
config scheduler DEFAULT.host=controller scheduler.host_refresh_interval_ms=200
config api DEFAULT.host=controller api.endpoint="$ZOVA_ENDPOINT"
for host in a b; do
    config "$host" DEFAULT.host="$host" compute.instances_path="${INST[$host]}" compute.reserved_host_memory_mb=0 \
        compute.ram_allocation_ratio=4.0 libvirt.connection_uri="${URI[$host]}" libvirt.virt_type=qemu
done
declare -A PID
for name in conductor scheduler a b api; do
    role=$name
    case $name in a|b) role=compute ;; esac
    "$ZOVAD" "$role" --config "$DIR/$name.conf" >>"$DIR/$name.log" 2>&1 &
    PIDS+=("$!")
    PID[$name]=$!
done
wait_for 30 zova ping || { note "api does not answer (logs in $DIR)"; BENCH_KEEP=1; exit 1; }
wait_for 60 hosts_up || { note "the two computes did not come up (logs in $DIR)"; BENCH_KEEP=1; exit 1; }

# --- images, flavor, the server and its data --------------------------------
zova image create --file "$GUEST/vmlinux" --disk-format aki bench-kernel >/dev/null || exit 1
zova image create --file "$GUEST/initrd-boot.img" --disk-format ari bench-ramdisk >/dev/null || exit 1
KERNEL=$(zova image show bench-kernel -f json | json_field id)
RAMDISK=$(zova image show bench-ramdisk -f json | json_field id)
zova image create --file "$GUEST/disk.qcow2" --disk-format qcow2 --property "kernel_id=$KERNEL" \
    --property "ramdisk_id=$RAMDISK" --property "os_command_line=$(cat "$GUEST/cmdline") root=/dev/vda" \
    bench-disk >/dev/null || exit 1
zova flavor create --vcpus 1 --ram 128 --disk 1 bench.cold >/dev/null || exit 1

note "server on host a, stopped, $FILL_MB MiB of random bytes written into its overlay"
long "$ZOVA_BIN" --timeout 60 server create --flavor bench.cold --image bench-disk --availability-zone nova:a \
    --wait --wait-timeout 300 bench-cold >/dev/null 2>"$DIR/create.err" \
    || { note "boot failed: $(head -c 300 "$DIR/create.err")"; BENCH_KEEP=1; exit 1; }
UUID=$(zova server show bench-cold -f json | json_field id)
long "$ZOVA_BIN" --timeout 60 server stop --wait bench-cold >/dev/null 2>"$DIR/stop.err" \
    || { note "stop failed: $(head -c 300 "$DIR/stop.err")"; BENCH_KEEP=1; exit 1; }
[ "$(state)" = "SHUTOFF a shutdown" ] || { note "not stopped on a: $(state)"; BENCH_KEEP=1; exit 1; }
long head -c "$(( FILL_MB * 1048576 ))" /dev/urandom >"$DIR/fill.bin" || exit 1
long qemu-io -f qcow2 -c "write -q -s $DIR/fill.bin 64M ${FILL_MB}M" "${INST[a]}/$UUID/disk" \
    || { note "qemu-io write failed"; exit 1; }
rm -f "$DIR/fill.bin"
long sync -f "${INST[a]}/$UUID/disk"
DISK_BYTES=$(stat -c %s "${INST[a]}/$UUID/disk")
ALLOCATED=$(qemu-img info -U --output=json "${INST[a]}/$UUID/disk" | json_field actual-size)
note "overlay: $(( DISK_BYTES / 1048576 )) MiB long, $(( ALLOCATED / 1048576 )) MiB allocated"
[ "$ALLOCATED" -ge $(( FILL_MB * 1048576 )) ] || { note "the overlay holds less than written"; exit 1; }

# --- rounds ---------------------------------------------------------------
# pulled_line HOST: the destination's last "files in place" line for UUID:
# "bytes_pulled ms".
pulled_line () {
    sed -n "s/.*instance $UUID: [0-9]* files in place ([0-9]* bytes), \([0-9]*\) bytes pulled in \([0-9]*\) ms.*/\1 \2/p" \
        "$DIR/$1.log" | tail -1
}

# perf_start: perf record -g of the conductor and both computes, in the
# background (PERF_PIDS); perf_stop ends them and writes the reports.
PERF_PIDS=()
perf_start () {
    local name
    for name in conductor a b; do
        perf record -g -o "$DIR/perf.$name.data" -p "${PID[$name]}" >/dev/null 2>"$DIR/perf.$name.err" &
        PERF_PIDS+=("$!")
    done
    PIDS+=("${PERF_PIDS[@]}")
    sleep 1
}
perf_stop () {
    local pid name
    for pid in "${PERF_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null; done
    for pid in "${PERF_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    for name in conductor a b; do
        perf report -i "$DIR/perf.$name.data" --no-children --stdio --percent-limit 2 \
            >"$DIR/perf.$name.txt" 2>/dev/null
    done
    note "perf reports in $DIR/perf.{conductor,a,b}.txt"
}

# cpu_ms NAME: user + system CPU milliseconds a zovad has used so far
# (every thread: the loop, ZeroMQ's I/O thread, the workers).
cpu_ms () { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/${PID[$1]}/stat"; }

# round N SRC DST: one move, its limit and its confirm; a row of $DIR/runs:
#   move_ms transfer_ms pulled_bytes cp_ms cp_sync_ms sha_ms confirm_ms
#   cpu_ms_conductor cpu_ms_source cpu_ms_destination (during the move)
#   cpu_ms_cp (cp + sync)
round () {
    local n=$1 src=$2 dst=$3 t0 move_ms confirm_ms pulled cp_ms sync_ms sha_ms line c0 s0 d0 cpu cpu_cp
    local TIMEFORMAT='%3U %3S'
    local copy="${INST[$dst]}/bench-copy.disk" from="${INST[$src]}/${UUID}_resize/disk"
    note "round $n/$RUNS: $src -> $dst"
    [ -n "$PERF" ] && [ "$n" = 1 ] && perf_start
    c0=$(cpu_ms conductor) s0=$(cpu_ms "$src") d0=$(cpu_ms "$dst")
    us_now; t0=$NOW_US
    long "$ZOVA_BIN" --timeout 60 server migrate --wait --wait-timeout "$MOVE_TIMEOUT_S" "$UUID" \
        >"$DIR/migrate.$n.out" 2>"$DIR/migrate.$n.err" || { note "migrate failed: $(head -c 300 "$DIR/migrate.$n.err")"; return 1; }
    us_now
    move_ms=$(( (NOW_US - t0) / 1000 ))
    cpu="$(( $(cpu_ms conductor) - c0 )) $(( $(cpu_ms "$src") - s0 )) $(( $(cpu_ms "$dst") - d0 ))"
    [ -n "$PERF" ] && [ "$n" = 1 ] && perf_stop
    [ "$(state)" = "VERIFY_RESIZE $dst shutdown" ] || { note "after the move: $(state)"; return 1; }
    line=$(pulled_line "$dst")
    [ -n "$line" ] || { note "no 'files in place' line for $UUID in $dst's log"; return 1; }
    pulled=${line% *}
    [ "$pulled" -ge "$DISK_BYTES" ] || { note "only $pulled bytes pulled"; return 1; }
    # The limit: the same file, source to destination, then its fsync.
    us_now; t0=$NOW_US
    { time long cp "$from" "$copy"; } 2>"$DIR/cp.cpu" || return 1
    us_now; cp_ms=$(( (NOW_US - t0) / 1000 ))
    { time long sync "$copy"; } 2>>"$DIR/cp.cpu" || return 1
    us_now; sync_ms=$(( (NOW_US - t0) / 1000 ))
    # CPU ms of cp and sync (bash's time of the children it waited for).
    cpu_cp=$(awk '{ s += ($1 + $2) * 1000 } END { printf "%d", s }' "$DIR/cp.cpu")
    rm -f "$copy"
    us_now; t0=$NOW_US
    long openssl dgst -sha256 "$from" >/dev/null || return 1
    us_now; sha_ms=$(( (NOW_US - t0) / 1000 ))
    us_now; t0=$NOW_US
    long "$ZOVA_BIN" --timeout 60 server resize confirm --wait "$UUID" >/dev/null 2>"$DIR/confirm.$n.err" \
        || { note "confirm failed: $(head -c 300 "$DIR/confirm.$n.err")"; return 1; }
    us_now
    confirm_ms=$(( (NOW_US - t0) / 1000 ))
    [ "$(state)" = "SHUTOFF $dst shutdown" ] || { note "after the confirm: $(state)"; return 1; }
    [ ! -e "${INST[$src]}/${UUID}_resize" ] || { note "the source's copy is still there after the confirm"; return 1; }
    note "  move ${move_ms} ms, transfer ${line#* } ms ($pulled bytes), cp ${cp_ms} ms + fsync $(( sync_ms - cp_ms )) ms, confirm ${confirm_ms} ms"
    note "  CPU ms during the move (conductor, source, destination): $cpu; cp + sync: $cpu_cp"
    echo "$move_ms ${line#* } $pulled $cp_ms $sync_ms $sha_ms $confirm_ms $cpu $cpu_cp" >>"$DIR/runs"
}

SRC=a DST=b
for n in $(seq "$RUNS"); do
    round "$n" "$SRC" "$DST" || { FAILED=1; BENCH_KEEP=1; break; }
    SRC=$DST; DST=$([ "$SRC" = a ] && echo b || echo a)
done

# --- figures ------------------------------------------------------------------
# MiB/s of BYTES over the median of a column of ms.
mib_s () {
    local ms
    ms=$(median "$2")
    [ -n "$ms" ] && python3 -c "print($1 / 1048576 / ($ms / 1000))"
}
PULLED=$(median 2)
TRANSFER_MIB_S=
[ -n "$PULLED" ] && TRANSFER_MIB_S=$(mib_s "$PULLED" 1)
COPY_MIB_S=$(mib_s "$DISK_BYTES" 4)
figure coldmove_runs "$(wc -l <"$DIR/runs" 2>/dev/null || echo 0)"
fig coldmove_disk_mib "$(python3 -c "print($DISK_BYTES / 1048576)")"
fig coldmove_disk_allocated_mib "$(python3 -c "print($ALLOCATED / 1048576)")"
fig coldmove_move_s "$(median 0 | awk 'NF { print $1 / 1000 }')"
fig coldmove_transfer_s "$(median 1 | awk 'NF { print $1 / 1000 }')"
fig coldmove_transfer_mib_s "$TRANSFER_MIB_S"
fig coldmove_local_copy_mib_s "$COPY_MIB_S"
ratio coldmove_transfer_ratio "$TRANSFER_MIB_S" "$COPY_MIB_S"
fig coldmove_local_copy_nosync_mib_s "$(mib_s "$DISK_BYTES" 3)"
# The fsync after cp alone: the rate the disk takes the bytes at.
fig coldmove_local_fsync_mib_s "$(python3 -c '
import statistics, sys
v = [float(r.split()[4]) - float(r.split()[3]) for r in open(sys.argv[1]) if r.strip()]
if v: print(float(sys.argv[2]) / 1048576 / (statistics.median(v) / 1000))' "$DIR/runs" "$DISK_BYTES" 2>/dev/null)"
fig coldmove_local_sha256_mib_s "$(mib_s "$DISK_BYTES" 5)"
fig coldmove_move_outside_transfer_s "$(python3 -c '
import statistics, sys
v = [(float(r.split()[0]) - float(r.split()[1])) / 1000 for r in open(sys.argv[1]) if r.strip()]
if v: print(statistics.median(v))' "$DIR/runs" 2>/dev/null)"
fig coldmove_confirm_ms "$(median 6)"
# CPU seconds each process used during the whole move (medians).
fig coldmove_move_cpu_s_conductor "$(median 7 | awk 'NF { print $1 / 1000 }')"
fig coldmove_move_cpu_s_source "$(median 8 | awk 'NF { print $1 / 1000 }')"
fig coldmove_move_cpu_s_destination "$(median 9 | awk 'NF { print $1 / 1000 }')"
fig coldmove_local_copy_cpu_s "$(median 10 | awk 'NF { print $1 / 1000 }')"
exit "$FAILED"
