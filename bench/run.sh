#!/usr/bin/env bash
# run.sh: zova's benchmarks, each figure against the physical limit measured
# in the same run.  `make bench` runs `bash bench/run.sh build`.
#
# Prints every figure on its own line as "name: value" (progress notes go to
# stderr).  Never fails on a number: a benchmark measures, it does not judge;
# it exits non-zero only when something could not be measured at all.
#
#   1. rpc: zova's proto layer against raw ZeroMQ (bench/rpc.c)
#   2. store: durable transitions against raw synced LMDB commits (bench/store.c)
#   3. boot: a cluster of separate zovad processes on loopback (api,
#      conductor, scheduler, 3 computes on private libvirt test:/// nodes),
#      1,000 servers as one multi-create and as 1,000 concurrent requests
#      (bench/boot_client.c), deletes timed too; against raw libvirt
#      define+start of the same domains (bench/raw_libvirt.c)
#   4. list: `zova server list -f json` with 1,000 live servers (the
#      cluster's) and with 10,000 (a store seeded by bench/seed_store.c,
#      served by a fresh conductor + api)
#
# Everything lives in one temporary directory; every process started here is
# stopped by PID on exit, whatever happens.  Knobs: BENCH_SERVERS (1000),
# BENCH_LIST_BIG (10000), BENCH_WINDOW (requests in flight, 50),
# BENCH_POLL_MS (watcher poll, 100), BENCH_KEEP=1 (keep the directory and
# logs), BENCH_PERF=1 (perf-record the conductor during the concurrent boot).
# docs/PERFORMANCE.md explains every figure.

set -u -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ZOVAD="$BUILD/zovad"
ZOVA="$BUILD/zova"
BENCH="$BUILD/bench"
SERVERS=${BENCH_SERVERS:-1000}
LIST_BIG=${BENCH_LIST_BIG:-10000}
WINDOW=${BENCH_WINDOW:-50}
# The watcher's server_list polls cost the conductor a full scan each
# (server_list has no cheap form yet): 100 ms keeps that cost small and
# bounds the observation delay in each per-server time.
POLL_MS=${BENCH_POLL_MS:-100}
COMPUTES=3

DIR=$(mktemp -d /tmp/zova-bench.XXXXXX)
PIDS=()

cleanup () {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$DIR"; else echo "bench: kept $DIR" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note () { echo "bench: $*" >&2; }
figure () { echo "$1: $2"; }
ms_now () { echo $(( $(date +%s%N) / 1000000 )); }

# A free loopback TCP port.
port () {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Value of figure NAME in file FILE ("name: value" lines).
value_of () { sed -n "s/^$1: //p" "$2" | tail -1; }

# python3 arithmetic, printed like the C figures.
calc () { python3 -c "v=$1; print(('%.0f' if abs(v) >= 100 else '%.3g') % v)"; }

# A libvirt test node with room for thousands of tiny servers.
node_xml () {
    cat >"$1" <<'EOF'
<node><cpu><mhz>2400</mhz><model>x86_64</model><active>64</active><nodes>1</nodes><sockets>1</sockets><cores>64</cores><threads>1</threads></cpu><memory>268435456</memory></node>
EOF
}

# config FILE STATE_PATH [section.key=value ...]
config () {
    local file=$1 state=$2; shift 2
    {
        echo "[DEFAULT]"
        echo "state_path = $state"
        echo "report_interval = 1"
        echo "service_down_time = 10"
        local kv section key value current=DEFAULT
        for kv in "$@"; do
            section=${kv%%.*}; key=${kv#*.}; value=${key#*=}; key=${key%%=*}
            if [ "$section" != "$current" ]; then echo "[$section]"; current=$section; fi
            echo "$key = $value"
        done
    } >"$file"
}

# start NAME ROLE CONFIG: zovad in the background, PID remembered.
start () {
    "$ZOVAD" "$2" --config "$3" >>"$DIR/$1.log" 2>&1 &
    PIDS+=("$!")
    eval "PID_$1=$!"
}

# stop NAME: SIGTERM, wait for it.
stop () {
    local pid
    eval "pid=\$PID_$1"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for () {
    local seconds=$1; shift
    local deadline=$(( $(ms_now) + seconds * 1000 ))
    while [ "$(ms_now)" -lt "$deadline" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

zova () { "$ZOVA" --timeout 60 "$@"; }

# User + system clock ticks a process has used.
cpu_ticks () { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# A step's figures go to FILE; a copy goes to stderr as progress.
progress () { tee "$1" | sed 's/^/  /' >&2; }

hypervisors_up () {
    [ "$(zova -f json hypervisor list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -ge "$1" ]
}

# list_ms: median wall time of 5 runs of `zova server list -f json`, and
# that the list holds at least N servers.
list_ms () {
    local want=$1 times=() run start end count
    for run in 1 2 3 4 5 6; do
        start=$(date +%s%N)
        zova -f json server list >"$DIR/list.json" 2>"$DIR/list.err" || { note "list failed: $(head -c 300 "$DIR/list.err")"; echo "failed"; return; }
        end=$(date +%s%N)
        [ "$run" -eq 1 ] && continue            # warm-up (page cache, first connection)
        times+=("$(( (end - start) / 1000 ))")
    done
    count=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$DIR/list.json")
    if [ "$count" -lt "$want" ]; then note "list returned $count servers, expected $want"; fi
    printf '%s\n' "${times[@]}" | sort -n | sed -n 3p | awk '{ printf "%.1f\n", $1 / 1000 }'
}

for bin in "$ZOVAD" "$ZOVA" "$BENCH/rpc" "$BENCH/store" "$BENCH/sched" "$BENCH/raw_libvirt" "$BENCH/boot_client" "$BENCH/seed_store"; do
    [ -x "$bin" ] || { echo "bench: $bin missing (run make bench)" >&2; exit 1; }
done
T0=$(ms_now)
note "$(nproc) cores, $(date -u +%Y-%m-%dT%H:%M:%SZ), work dir $DIR"

# --- 1. rpc ------------------------------------------------------------
note "rpc: zova proto layer vs raw ZeroMQ (tcp loopback, one in flight)"
"$BENCH/rpc" | progress "$DIR/rpc.out" || note "step failed"

# --- 2. store ----------------------------------------------------------
note "store: zova transitions (group commit) vs raw synced LMDB commits"
"$BENCH/store" "$DIR/storebench" | progress "$DIR/store.out" || note "step failed"
rm -rf "$DIR/storebench"

# --- 2b. scheduling decisions ----------------------------------------
note "scheduler: select_destinations over 100, 1,000 and 10,000 simulated hosts"
"$BENCH/sched" | progress "$DIR/sched.out" || note "step failed"

# --- 3. boot -----------------------------------------------------------
note "raw libvirt: define+start $SERVERS domains, one thread"
node_xml "$DIR/raw-node.xml"
"$BENCH/raw_libvirt" "$DIR/raw-node.xml" "$SERVERS" | progress "$DIR/raw.out" || note "step failed"

API_PORT=$(port); COND_PORT=$(port)
export ZOVA_ENDPOINT="tcp://127.0.0.1:$API_PORT"
COMMON=("api.endpoint=tcp://127.0.0.1:$API_PORT" "conductor.endpoint=tcp://127.0.0.1:$COND_PORT")
config "$DIR/conductor.conf" "$DIR/var" "${COMMON[@]}"
config "$DIR/scheduler.conf" "$DIR/var-scheduler" "${COMMON[@]}" "scheduler.host_refresh_interval_ms=200"
config "$DIR/api.conf" "$DIR/var-api" "${COMMON[@]}"
start conductor conductor "$DIR/conductor.conf"
start scheduler scheduler "$DIR/scheduler.conf"
start api api "$DIR/api.conf"
for n in $(seq "$COMPUTES"); do
    node_xml "$DIR/node$n.xml"
    # 64 cpus x 16 and 4 TB of disk per host: room for every tiny server.
    config "$DIR/compute$n.conf" "$DIR/var-compute$n" "DEFAULT.host=bench$n" "${COMMON[@]}" \
        "libvirt.connection_uri=test://$DIR/node$n.xml" "compute.cpu_allocation_ratio=16" \
        "compute.local_gb=4096" "compute.reserved_host_memory_mb=0"
    start "compute$n" compute "$DIR/compute$n.conf"
done
wait_for 30 zova ping || { note "api does not answer (logs in $DIR)"; BENCH_KEEP=1; exit 1; }
wait_for 30 hypervisors_up "$COMPUTES" || { note "computes did not register"; BENCH_KEEP=1; exit 1; }
head -c 1048576 /dev/urandom >"$DIR/image.raw"
zova flavor create --vcpus 1 --ram 64 --disk 1 bench.tiny >/dev/null || exit 1
zova image create --file "$DIR/image.raw" bench-image >/dev/null || exit 1

note "boot: $SERVERS servers as one multi-create request"
"$BENCH/boot_client" create --endpoint "$ZOVA_ENDPOINT" --flavor bench.tiny --image bench-image \
    --count "$SERVERS" --multi --poll-ms "$POLL_MS" --label boot_multi --uuids-out "$DIR/multi.uuids" | progress "$DIR/multi.out"

note "list: $SERVERS live servers"
LIST_1000=$(list_ms "$SERVERS")

note "delete: $SERVERS servers, $WINDOW requests in flight"
"$BENCH/boot_client" delete --endpoint "$ZOVA_ENDPOINT" --uuids "$DIR/multi.uuids" \
    --window "$WINDOW" --poll-ms 50 --label delete | progress "$DIR/delete.out"

note "boot: $SERVERS servers as concurrent requests, $WINDOW in flight"
ROLES="conductor api scheduler $(seq -s ' ' -f 'compute%g' "$COMPUTES")"
for name in $ROLES; do eval "CPU0_$name=\$(cpu_ticks \$PID_$name)"; done
if [ -n "${BENCH_PERF:-}" ]; then
    perf record -g -o "$DIR/conductor.perf" -p "$PID_conductor" >/dev/null 2>&1 &
    PERF_PID=$!
fi
"$BENCH/boot_client" create --endpoint "$ZOVA_ENDPOINT" --flavor bench.tiny --image bench-image \
    --count "$SERVERS" --window "$WINDOW" --poll-ms "$POLL_MS" --label boot_concurrent --uuids-out "$DIR/concurrent.uuids" \
    | progress "$DIR/concurrent.out"
if [ -n "${BENCH_PERF:-}" ]; then
    kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null
    perf report -i "$DIR/conductor.perf" --no-children --sort dso,symbol 2>/dev/null \
        | grep '%' | grep -v '^#' | grep -v -- '--' | head -25 >&2
fi
# CPU each process spent per server booted (clock ticks -> microseconds).
HZ=$(getconf CLK_TCK)
for name in $ROLES; do
    eval "used=\$(( \$(cpu_ticks \$PID_$name) - CPU0_$name ))"
    echo "boot_cpu_us_per_server_$name: $(( used * 1000000 / HZ / SERVERS ))" >>"$DIR/concurrent.out"
done
"$BENCH/boot_client" delete --endpoint "$ZOVA_ENDPOINT" --uuids "$DIR/concurrent.uuids" \
    --window "$WINDOW" --poll-ms 50 --label delete_concurrent >"$DIR/delete2.out"

for name in conductor api scheduler $(seq -f 'compute%g' "$COMPUTES"); do stop "$name"; done

# --- 4. list of a big store ----------------------------------------------
note "list: $LIST_BIG servers (seeded store, fresh conductor + api)"
"$BENCH/seed_store" "$DIR/var-big" "$LIST_BIG" >"$DIR/seed.out" || exit 1
API2_PORT=$(port); COND2_PORT=$(port)
config "$DIR/big.conf" "$DIR/var-big" "api.endpoint=tcp://127.0.0.1:$API2_PORT" \
    "conductor.endpoint=tcp://127.0.0.1:$COND2_PORT"
start bigconductor conductor "$DIR/big.conf"
start bigapi api "$DIR/big.conf"
export ZOVA_ENDPOINT="tcp://127.0.0.1:$API2_PORT"
wait_for 30 zova ping || { note "second api does not answer"; exit 1; }
LIST_10000=$(list_ms "$LIST_BIG")
stop bigapi; stop bigconductor

# --- figures -------------------------------------------------------------
# show NAME FILE [AS]: the figure NAME of a step's output, printed as AS.
show () { local v; v=$(value_of "$1" "$2"); figure "${3:-$1}" "${v:-failed}"; }
# ratio AS A B: A / B when both were measured.
ratio () {
    if [ -n "$2" ] && [ -n "$3" ] && [ "$2" != failed ]; then figure "$1" "$(calc "$2 / $3")"
    else figure "$1" failed; fi
}
RAW_RATE=$(value_of raw_libvirt_define_start_per_s "$DIR/raw.out")
note "summary"
show boot_concurrent_rate_servers_per_s "$DIR/concurrent.out" boot_rate_servers_per_s
show boot_concurrent_p50_ms "$DIR/concurrent.out" boot_p50_ms
show boot_concurrent_p99_ms "$DIR/concurrent.out" boot_p99_ms
ratio boot_ratio_vs_raw_libvirt "$(value_of boot_concurrent_rate_servers_per_s "$DIR/concurrent.out")" "$RAW_RATE"
show boot_concurrent_rate_servers_per_s "$DIR/concurrent.out"
show boot_concurrent_errors "$DIR/concurrent.out"
show boot_multi_rate_servers_per_s "$DIR/multi.out"
show boot_multi_p50_ms "$DIR/multi.out"
show boot_multi_p99_ms "$DIR/multi.out"
show boot_multi_errors "$DIR/multi.out"
ratio boot_multi_ratio_vs_raw_libvirt "$(value_of boot_multi_rate_servers_per_s "$DIR/multi.out")" "$RAW_RATE"
show raw_libvirt_define_start_per_s "$DIR/raw.out"
show delete_rate_servers_per_s "$DIR/delete.out"
for role in $ROLES; do
    show "boot_cpu_us_per_server_$role" "$DIR/concurrent.out"
done
for name in rpc_zova_roundtrip_us rpc_raw_zmq_roundtrip_us rpc_ratio_vs_raw_zmq rpc_request_bytes rpc_reply_bytes; do
    show "$name" "$DIR/rpc.out"
done
for name in store_zova_transitions_per_s store_zova_transitions_per_s_batch1 store_raw_lmdb_commits_per_s \
            store_ratio_vs_raw_lmdb store_ratio_batch1_vs_raw_lmdb; do
    show "$name" "$DIR/store.out"
done
for count in 100 1000 10000; do
    for name in decisions_per_s p50_ms p99_ms ns_per_host; do
        show "sched_${count}_$name" "$DIR/sched.out"
    done
done
show sched_growth_10000_vs_100_per_host "$DIR/sched.out"
figure list_1000_ms "${LIST_1000:-failed}"
figure list_10000_ms "${LIST_10000:-failed}"
figure bench_seconds "$(( ($(ms_now) - T0) / 1000 ))"
