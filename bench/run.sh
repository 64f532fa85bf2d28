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
#   5. fleet: 100 separate computes (heartbeats every 10 s), 2,000 servers
#      booted with 100 requests in flight, their spread across hosts, all
#      deleted
#   6. guest: real QEMU guests (TCG) on a private libvirtd, bench/guest.sh:
#      spawn to running and to guest-agent ready through zova against the
#      same domain XML defined and started by hand (bench/raw_spawn.c), and
#      an image fetched over the bus against cp + fsync of the same bytes
#   7. console: the console proxy's relay against direct TCP (bench/console.sh)
#   8. moves: evacuation, 1,000 servers off a dead simulated host to 10
#      others (11 separate computes on private test:/// nodes, h0 killed and
#      forced down, `zova host evacuate h0` timed until every move ended),
#      the spread over the 10, h0's records and usage checked after; against
#      raw libvirt define+start (bench/raw_libvirt.c, step 3's figure when
#      step 3 ran)
#   9. coldmove: a cold migration of a stopped server whose 1 GiB root disk
#      holds ~1 GiB of random data, between two libvirt hosts on this
#      machine (scripts/two-hosts.sh; needs root), bench/coldmove.sh: the
#      destination's transfer rate against cp + fsync of the same file
#      (goal at least 0.8), the whole move and the confirm timed
#  10. livemove: a live migration through zova against `virsh migrate --live
#      --p2p` of an identical real guest between the same two libvirt hosts
#      (scripts/two-hosts.sh), shared storage, block and post-copy, total
#      time and downtime (bench/livemove.sh; root; BENCH_LIVEMOVE=0 skips it,
#      BENCH_LIVEMOVE_RUNS, 3)
#
# Step 2b also drives a real `zovad scheduler` with bench/sched_actor.c,
# which plays its conductor: select_destinations at 100, 1,000 and 10,000
# hosts whose inventories it wrote into a store with zv_placement_report.
#
# Everything lives in one temporary directory; every process started here is
# stopped by PID on exit, whatever happens.  Knobs: BENCH_SERVERS (1000),
# BENCH_LIST_BIG (10000), BENCH_WINDOW (requests in flight, 50),
# BENCH_POLL_MS (watcher poll, 100), BENCH_KEEP=1 (keep the directory and
# logs), BENCH_PERF=1 (perf-record the conductor during the concurrent boot),
# BENCH_SCHED_DECISIONS (timed decisions per host count, 2000),
# BENCH_FLEET=0 (skip step 5), BENCH_FLEET_HOSTS (100), BENCH_FLEET_SERVERS
# (2000), BENCH_FLEET_WINDOW (100), BENCH_GUEST=0 (skip step 6),
# BENCH_GUEST_RUNS (5), BENCH_GUEST_IMAGE_MB (256), BENCH_CONSOLE=0 (skip
# step 7: the console proxy's relay vs direct TCP, bench/console.sh),
# BENCH_MOVES=0 (skip step 8), BENCH_MOVES_SERVERS (1000), BENCH_MOVES_HOSTS
# (destinations, 10), BENCH_MOVES_POLL_MS (150), BENCH_MOVES_TIMEOUT (s, 300),
# BENCH_COLDMOVE=0 (skip step 9), BENCH_COLDMOVE_RUNS (3),
# BENCH_ONLY=STEP[,STEP...] (run only those of rpc, store, sched, boot,
# list, fleet, guest, console, moves, coldmove, livemove; e.g. BENCH_ONLY=moves).
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
SCHED_DECISIONS=${BENCH_SCHED_DECISIONS:-2000}
FLEET=${BENCH_FLEET:-1}
FLEET_HOSTS=${BENCH_FLEET_HOSTS:-100}
FLEET_SERVERS=${BENCH_FLEET_SERVERS:-2000}
FLEET_WINDOW=${BENCH_FLEET_WINDOW:-100}
GUEST=${BENCH_GUEST:-1}
CONSOLE=${BENCH_CONSOLE:-1}
MOVES=${BENCH_MOVES:-1}
MOVES_SERVERS=${BENCH_MOVES_SERVERS:-1000}
MOVES_HOSTS=${BENCH_MOVES_HOSTS:-10}
MOVES_POLL_MS=${BENCH_MOVES_POLL_MS:-150}
MOVES_TIMEOUT=${BENCH_MOVES_TIMEOUT:-300}
COLDMOVE=${BENCH_COLDMOVE:-1}
ONLY=${BENCH_ONLY:-}
STEPS="rpc store sched boot list fleet guest console moves coldmove livemove"
for step in ${ONLY//,/ }; do
    [[ " $STEPS " == *" $step "* ]] || { echo "bench: BENCH_ONLY: no step $step (steps: $STEPS)" >&2; exit 2; }
done

# want STEP: BENCH_ONLY is unset or names STEP.
want () { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

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

# config FILE STATE_PATH [section.key=value ...]; REPORT_INTERVAL and
# SERVICE_DOWN_TIME (seconds) override the quick defaults (1 and 10).
config () {
    local file=$1 state=$2; shift 2
    {
        echo "[DEFAULT]"
        echo "state_path = $state"
        echo "report_interval = ${REPORT_INTERVAL:-1}"
        echo "service_down_time = ${SERVICE_DOWN_TIME:-10}"
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

# stop_pids PID...: SIGTERM to all at once, then wait for each (a fleet
# stops in parallel; cleanup still SIGKILLs any that linger).
stop_pids () {
    local pid
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "$@"; do wait "$pid" 2>/dev/null; done
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

# hypervisors_state_up N: at least N hypervisors listed with state up.
hypervisors_state_up () {
    [ "$(zova -f json hypervisor list | python3 -c 'import json,sys; print(sum(h["state"] == "up" for h in json.load(sys.stdin)))')" -ge "$1" ]
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

for bin in "$ZOVAD" "$ZOVA" "$BENCH/rpc" "$BENCH/store" "$BENCH/sched" "$BENCH/sched_actor" "$BENCH/raw_libvirt" "$BENCH/boot_client" "$BENCH/seed_store"; do
    [ -x "$bin" ] || { echo "bench: $bin missing (run make bench)" >&2; exit 1; }
done
T0=$(ms_now)
note "$(nproc) cores, $(date -u +%Y-%m-%dT%H:%M:%SZ), work dir $DIR"

# --- 1. rpc ------------------------------------------------------------
if want rpc; then
    note "rpc: zova proto layer vs raw ZeroMQ (tcp loopback, one in flight)"
    "$BENCH/rpc" | progress "$DIR/rpc.out" || note "step failed"
fi

# --- 2. store ----------------------------------------------------------
if want store; then
    note "store: zova transitions (group commit) vs raw synced LMDB commits"
    "$BENCH/store" "$DIR/storebench" | progress "$DIR/store.out" || note "step failed"
    rm -rf "$DIR/storebench"
fi

# --- 2b. scheduling decisions ----------------------------------------
if want sched; then
    note "scheduler: select_destinations over 100, 1,000 and 10,000 simulated hosts"
    "$BENCH/sched" | progress "$DIR/sched.out" || note "step failed"

    note "scheduler actor: select_destinations through zovad scheduler, hosts from a store (100, 1,000, 10,000)"
    # The default [filter_scheduler] filters and weighers and the default
    # host_refresh_interval_ms (1000); bench/sched_actor binds the endpoint
    # this scheduler's link connects to and plays the conductor.
    SA_PORT=$(port)
    mkdir -p "$DIR/sched-actor"
    config "$DIR/sa-scheduler.conf" "$DIR/var-sa" "DEFAULT.host=bench" "conductor.endpoint=tcp://127.0.0.1:$SA_PORT"
    start sascheduler scheduler "$DIR/sa-scheduler.conf"
    SA_CPU0=$(cpu_ticks "$PID_sascheduler")
    "$BENCH/sched_actor" "tcp://127.0.0.1:$SA_PORT" "$DIR/sched-actor" "$SCHED_DECISIONS" \
        | progress "$DIR/sched_actor.out" || note "step failed"
    echo "sched_actor_scheduler_cpu_s: $(calc "($(cpu_ticks "$PID_sascheduler") - $SA_CPU0) / $(getconf CLK_TCK)")" >>"$DIR/sched_actor.out"
    stop sascheduler
    rm -rf "$DIR/sched-actor"
fi

# --- 3. boot -----------------------------------------------------------
if want boot; then
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
fi

# --- 4. list of a big store ----------------------------------------------
if want list; then
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
fi

# --- 5. fleet ------------------------------------------------------------
# FLEET_HOSTS computes, each its own process, host name and test:/// node
# (16 CPUs, 64 GiB, [compute] local_gb = 1000, the default ratios and
# reservations), heartbeats every 10 s as in service.  FLEET_SERVERS servers
# of 1 vCPU / 2 GB / 20 GB (the select_destinations spec of step 2b) with
# FLEET_WINDOW requests in flight, default filters and weighers.  Spread =
# max - min instances per host, from placement's vcpus_used (1 per server).
fleet_node_xml () {
    cat >"$1" <<'EOF'
<node><cpu><mhz>2400</mhz><model>x86_64</model><active>16</active><nodes>1</nodes><sockets>1</sockets><cores>16</cores><threads>1</threads></cpu><memory>67108864</memory></node>
EOF
}

# fleet_spread FILE: per-host figures from a `hypervisor list -f json`.
fleet_spread () {
    python3 -c '
import json, sys
per_host = [h["vcpus_used"] for h in json.load(open(sys.argv[1])) if h["host"].startswith("fleet")]
print("fleet_spread_max_minus_min: %d" % (max(per_host) - min(per_host)))
print("fleet_instances_per_host_min: %d" % min(per_host))
print("fleet_instances_per_host_max: %d" % max(per_host))
print("fleet_instances_placed: %d" % sum(per_host))' "$1"
}

fleet () {
    local n pid pids=() port_api port_cond
    port_api=$(port); port_cond=$(port)
    export ZOVA_ENDPOINT="tcp://127.0.0.1:$port_api"
    local common=("api.endpoint=tcp://127.0.0.1:$port_api" "conductor.endpoint=tcp://127.0.0.1:$port_cond")
    export REPORT_INTERVAL=10 SERVICE_DOWN_TIME=60
    mkdir -p "$DIR/fleet"
    config "$DIR/fleet/conductor.conf" "$DIR/fleet/var" "${common[@]}"
    config "$DIR/fleet/scheduler.conf" "$DIR/fleet/var-scheduler" "${common[@]}"
    config "$DIR/fleet/api.conf" "$DIR/fleet/var-api" "${common[@]}"
    start fleetconductor conductor "$DIR/fleet/conductor.conf"
    start fleetscheduler scheduler "$DIR/fleet/scheduler.conf"
    start fleetapi api "$DIR/fleet/api.conf"
    local t0; t0=$(ms_now)
    for n in $(seq "$FLEET_HOSTS"); do
        fleet_node_xml "$DIR/fleet/node$n.xml"
        config "$DIR/fleet/compute$n.conf" "$DIR/fleet/var-compute$n" "DEFAULT.host=fleet$n" "${common[@]}" \
            "libvirt.connection_uri=test://$DIR/fleet/node$n.xml" "compute.local_gb=1000"
        "$ZOVAD" compute --config "$DIR/fleet/compute$n.conf" >>"$DIR/fleet/compute$n.log" 2>&1 &
        PIDS+=("$!"); pids+=("$!")
    done
    unset REPORT_INTERVAL SERVICE_DOWN_TIME
    wait_for 30 zova ping || { note "fleet api does not answer (logs in $DIR/fleet)"; return 1; }
    wait_for 60 hypervisors_state_up "$FLEET_HOSTS" || { note "fleet: not all $FLEET_HOSTS hypervisors came up"; return 1; }
    figure fleet_hosts_up_s "$(calc "($(ms_now) - $t0) / 1000")"
    figure fleet_hosts "$(zova -f json hypervisor list | python3 -c 'import json,sys; print(sum(h["state"] == "up" for h in json.load(sys.stdin)))')"
    local rss=0
    for pid in "${pids[@]}"; do rss=$(( rss + $(awk '/VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0) )); done
    figure fleet_compute_rss_mb_each "$(calc "$rss / 1024 / ${#pids[@]}")"
    # What an idle fleet costs (heartbeats, timers): all computes' CPU
    # over 2 s, as a share of one core.
    local i0=0 i1=0
    for pid in "${pids[@]}"; do i0=$(( i0 + $(cpu_ticks "$pid") )); done
    sleep 2
    for pid in "${pids[@]}"; do i1=$(( i1 + $(cpu_ticks "$pid") )); done
    figure fleet_computes_idle_cpu_pct "$(calc "($i1 - $i0) * 100 / $(getconf CLK_TCK) / 2")"
    zova flavor create --vcpus 1 --ram 2048 --disk 20 fleet.small >/dev/null || return 1
    head -c 1048576 /dev/urandom >"$DIR/fleet/image.raw"
    zova image create --file "$DIR/fleet/image.raw" fleet-image >/dev/null || return 1

    local c0 s0 k0=0 k1=0 hz
    hz=$(getconf CLK_TCK)
    c0=$(cpu_ticks "$PID_fleetconductor"); s0=$(cpu_ticks "$PID_fleetscheduler")
    for pid in "${pids[@]}"; do k0=$(( k0 + $(cpu_ticks "$pid") )); done
    "$BENCH/boot_client" create --endpoint "$ZOVA_ENDPOINT" --flavor fleet.small --image fleet-image \
        --count "$FLEET_SERVERS" --window "$FLEET_WINDOW" --poll-ms "$POLL_MS" --label fleet_boot \
        --uuids-out "$DIR/fleet/uuids" --timeout 120
    for pid in "${pids[@]}"; do k1=$(( k1 + $(cpu_ticks "$pid") )); done
    figure fleet_cpu_us_per_server_conductor "$(( ($(cpu_ticks "$PID_fleetconductor") - c0) * 1000000 / hz / FLEET_SERVERS ))"
    figure fleet_cpu_us_per_server_scheduler "$(( ($(cpu_ticks "$PID_fleetscheduler") - s0) * 1000000 / hz / FLEET_SERVERS ))"
    figure fleet_cpu_us_per_server_computes "$(( (k1 - k0) * 1000000 / hz / FLEET_SERVERS ))"
    zova -f json hypervisor list >"$DIR/fleet/hypervisors.json" && fleet_spread "$DIR/fleet/hypervisors.json"
    "$BENCH/boot_client" delete --endpoint "$ZOVA_ENDPOINT" --uuids "$DIR/fleet/uuids" \
        --window "$FLEET_WINDOW" --poll-ms 50 --label fleet_delete --timeout 120
    stop_pids "${pids[@]}"
    stop fleetapi; stop fleetscheduler; stop fleetconductor
}
if want fleet && [ "$FLEET" != 0 ]; then
    note "fleet: $FLEET_HOSTS computes, $FLEET_SERVERS servers, $FLEET_WINDOW in flight"
    # Not in a pipe: a subshell would keep the computes' PIDs from cleanup.
    fleet >"$DIR/fleet.out" || note "fleet step failed (logs in $DIR/fleet; BENCH_KEEP=1 keeps them)"
    sed 's/^/  /' "$DIR/fleet.out" >&2
fi

# --- 6. guest --------------------------------------------------------------
# bench/guest.sh owns its own directory, libvirtd, zovad and guests, and
# stops them all whatever happens; its figures come back on stdout.
if want guest && [ "$GUEST" != 0 ]; then
    note "guest: real QEMU guests (TCG), spawn vs raw libvirt, image transfer vs cp"
    # Not in a pipe, and remembered: cleanup's SIGTERM reaches it, and its
    # own trap then stops what it started.
    bash "$ROOT/bench/guest.sh" "$BUILD" >"$DIR/guest.out" &
    GUEST_PID=$!
    PIDS+=("$GUEST_PID")
    wait "$GUEST_PID" || note "guest step failed (BENCH_KEEP=1 keeps its logs)"
    sed 's/^/  /' "$DIR/guest.out" >&2
fi

# --- 7. console --------------------------------------------------------------
# bench/console.sh: the console proxy's relay against a direct connection to
# the same guest's VNC server (its own libvirtd, zovad and guest).
if want console && [ "$CONSOLE" != 0 ]; then
    note "console: proxy relay vs direct TCP to the guest's VNC server"
    bash "$ROOT/bench/console.sh" "$BUILD" >"$DIR/console.out" &
    CONSOLE_PID=$!
    PIDS+=("$CONSOLE_PID")
    wait "$CONSOLE_PID" || note "console step failed (BENCH_KEEP=1 keeps its logs)"
    sed 's/^/  /' "$DIR/console.out" >&2
fi

# --- 8. moves ----------------------------------------------------------------
# Evacuating a host: MOVES_HOSTS + 1 computes (h0..hN), each its own process,
# host name and private test:/// node (the boot step's node and compute
# settings: 64 CPUs x 16, 256 GiB, 4 TB), MOVES_SERVERS tiny servers booted
# onto h0 as one multi-create with --availability-zone nova:h0.  Then h0
# dies (its compute killed with SIGKILL, `compute service set --down h0`)
# and `zova host evacuate h0` is timed from the request until h0's usage in
# `hypervisor list` is seen at 0, polled every MOVES_POLL_MS (a cheap call:
# a `migration list` of 1,000 records per poll took a third of the
# conductor's CPU; `host evacuate --wait` asks twice per server per round).
# Then the records are checked: the servers' hosts and spread, h0's usage,
# every migration "done".  On the test driver the destination's rebuild
# defines and starts the domain; raw_libvirt's define+start rate of the
# same run is the ceiling.
moves_wait () {
    python3 - "$ZOVA" "$1" "$2" "$3" <<'PY'
import json, subprocess, sys, time
zova, source, poll_ms, timeout_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def call(*args):
    run = subprocess.run([zova, "--timeout", "120", "-f", "json", *args], capture_output=True, text=True)
    if run.returncode:
        sys.stderr.write("bench: zova %s: %s\n" % (" ".join(args), run.stderr.strip()[:300]))
        return None
    return json.loads(run.stdout)
def source_used():
    hosts = call("hypervisor", "list") or []
    return next((h["memory_mb_used"] for h in hosts if h["host"] == source), None)
def ended(opened):
    listed = call("migration", "list", "--kind", "evacuation") or []
    return {m["uuid"]: m["status"] for m in listed
            if m["uuid"] in opened and m["status"] in ("done", "failed", "error")}
before = source_used()
start = time.monotonic()
reply = call("host", "evacuate", source)
answered = time.monotonic()
if reply is None or not before:
    sys.exit(1)
opened = {m["migration"]["uuid"] for m in reply["migrations"]}
print("moves_evacuate_request_ms: %.0f" % ((answered - start) * 1000))
print("moves_evacuate_opened: %d" % len(opened))
print("moves_evacuate_refused: %d" % len(reply["refused"]))
# The source's usage is the cheap signal: an evacuation that lands
# releases the source allocation in the transaction that makes the server
# ACTIVE on its new host, so 0 means every one landed.  One that fails
# gives it back to the server; usage that stops falling for 5 s sends one
# migration list to see whether they all ended.
half_at, polls, used, last, stalled_at = None, 0, before, before, time.monotonic()
while time.monotonic() - start < timeout_s:
    tick = time.monotonic()
    used = source_used()
    polls += 1
    seen = time.monotonic()
    if used is None:
        break
    if half_at is None and used * 2 <= before:
        half_at = seen
    if used == 0:
        break
    if used != last:
        last, stalled_at = used, seen
    elif seen - stalled_at > 5:
        if len(ended(opened)) == len(opened):
            break
        stalled_at = seen
    time.sleep(max(0.0, tick + poll_ms / 1000.0 - time.monotonic()))
end = time.monotonic()
span = end - start
closed = ended(opened)
done = sum(1 for status in closed.values() if status == "done")
print("moves_evacuate_s: %.2f" % span)
print("moves_evacuate_half_s: %.2f" % ((half_at or end) - start))
print("moves_evacuate_polls: %d" % polls)
print("moves_evacuate_rate_servers_per_s: %.0f" % (done / span))
print("moves_evacuate_failed: %d" % (len(closed) - done))
print("moves_evacuate_unfinished: %d" % (len(opened) - len(closed)))
PY
}

# moves_check SOURCE SERVERS HYPERVISORS MIGRATIONS: where the servers
# are, what placement holds on SOURCE, how every evacuation ended.
moves_check () {
    python3 - "$@" <<'PY'
import json, sys
source = sys.argv[1]
servers = json.load(open(sys.argv[2]))
hypervisors = json.load(open(sys.argv[3]))
migrations = json.load(open(sys.argv[4]))
per_host = {h["host"]: 0 for h in hypervisors if h["host"] != source}
for s in servers:
    if s.get("host") in per_host:
        per_host[s["host"]] += 1
print("moves_spread_min: %d" % min(per_host.values()))
print("moves_spread_max: %d" % max(per_host.values()))
print("moves_spread_hosts_used: %d" % sum(1 for n in per_host.values() if n))
print("moves_left_on_source: %d" % sum(1 for s in servers if s.get("host") == source))
print("moves_servers_not_active: %d" % sum(1 for s in servers if s["status"] != "ACTIVE" or s.get("task_state")))
print("moves_source_memory_mb_used: %s" % [h["memory_mb_used"] for h in hypervisors if h["host"] == source][0])
print("moves_migrations_not_done: %d" % sum(1 for m in migrations if m["status"] != "done"))
PY
}

moves () {
    local n pids=() port_api port_cond hz c0 s0 k0=0 k1=0 pid
    port_api=$(port); port_cond=$(port)
    export ZOVA_ENDPOINT="tcp://127.0.0.1:$port_api"
    local common=("api.endpoint=tcp://127.0.0.1:$port_api" "conductor.endpoint=tcp://127.0.0.1:$port_cond")
    mkdir -p "$DIR/moves"
    if [ -z "$(value_of raw_libvirt_define_start_per_s "$DIR/raw.out" 2>/dev/null)" ]; then
        note "raw libvirt: define+start $MOVES_SERVERS domains, one thread"
        node_xml "$DIR/raw-node.xml"
        "$BENCH/raw_libvirt" "$DIR/raw-node.xml" "$MOVES_SERVERS" >"$DIR/raw.out" || note "raw libvirt failed"
        sed 's/^/  /' "$DIR/raw.out" >&2
    fi
    config "$DIR/moves/conductor.conf" "$DIR/moves/var" "${common[@]}"
    config "$DIR/moves/scheduler.conf" "$DIR/moves/var-scheduler" "${common[@]}" "scheduler.host_refresh_interval_ms=200"
    config "$DIR/moves/api.conf" "$DIR/moves/var-api" "${common[@]}"
    start movesconductor conductor "$DIR/moves/conductor.conf"
    start movesscheduler scheduler "$DIR/moves/scheduler.conf"
    start movesapi api "$DIR/moves/api.conf"
    for n in $(seq 0 "$MOVES_HOSTS"); do
        node_xml "$DIR/moves/h$n.xml"
        config "$DIR/moves/h$n.conf" "$DIR/moves/var-h$n" "DEFAULT.host=h$n" "${common[@]}" \
            "libvirt.connection_uri=test://$DIR/moves/h$n.xml" "compute.cpu_allocation_ratio=16" \
            "compute.local_gb=4096" "compute.reserved_host_memory_mb=0"
        "$ZOVAD" compute --config "$DIR/moves/h$n.conf" >>"$DIR/moves/h$n.log" 2>&1 &
        PIDS+=("$!"); pids+=("$!")
    done
    wait_for 30 zova ping || { note "moves: api does not answer (logs in $DIR/moves)"; return 1; }
    wait_for 30 hypervisors_state_up $(( MOVES_HOSTS + 1 )) || { note "moves: not all computes came up"; return 1; }
    zova flavor create --vcpus 1 --ram 64 --disk 1 bench.tiny >/dev/null || return 1
    head -c 1048576 /dev/urandom >"$DIR/moves/image.raw"
    zova image create --file "$DIR/moves/image.raw" bench-image >/dev/null || return 1
    "$BENCH/boot_client" create --endpoint "$ZOVA_ENDPOINT" --flavor bench.tiny --image bench-image \
        --count "$MOVES_SERVERS" --multi --availability-zone nova:h0 --poll-ms "$POLL_MS" \
        --label moves_boot --timeout 300 >"$DIR/moves/boot.out"
    grep -E '^moves_boot_(rate_servers_per_s|errors):' "$DIR/moves/boot.out"

    # h0 dies: no SIGTERM, nothing it could tidy; an operator forces it down.
    kill -KILL "${pids[0]}"; wait "${pids[0]}" 2>/dev/null
    local keep=() one
    for one in "${PIDS[@]}"; do [ "$one" = "${pids[0]}" ] || keep+=("$one"); done
    PIDS=("${keep[@]}")                     # gone: cleanup must not signal its number again
    zova compute service set --down h0 >/dev/null || return 1

    hz=$(getconf CLK_TCK)
    c0=$(cpu_ticks "$PID_movesconductor"); s0=$(cpu_ticks "$PID_movesscheduler")
    for pid in "${pids[@]:1}"; do k0=$(( k0 + $(cpu_ticks "$pid") )); done
    if [ -n "${BENCH_PERF:-}" ]; then
        perf record -g -o "$DIR/moves/conductor.perf" -p "$PID_movesconductor" >/dev/null 2>&1 &
        MOVES_PERF_PID=$!
    fi
    moves_wait h0 "$MOVES_POLL_MS" "$MOVES_TIMEOUT" || return 1
    if [ -n "${BENCH_PERF:-}" ]; then
        kill -INT "$MOVES_PERF_PID"; wait "$MOVES_PERF_PID" 2>/dev/null
        perf report -i "$DIR/moves/conductor.perf" --no-children --sort dso,symbol 2>/dev/null \
            | grep '%' | grep -v '^#' | grep -v -- '--' | head -25 >&2
    fi
    for pid in "${pids[@]:1}"; do k1=$(( k1 + $(cpu_ticks "$pid") )); done
    figure moves_cpu_us_per_server_conductor "$(( ($(cpu_ticks "$PID_movesconductor") - c0) * 1000000 / hz / MOVES_SERVERS ))"
    figure moves_cpu_us_per_server_scheduler "$(( ($(cpu_ticks "$PID_movesscheduler") - s0) * 1000000 / hz / MOVES_SERVERS ))"
    figure moves_cpu_us_per_server_computes "$(( (k1 - k0) * 1000000 / hz / MOVES_SERVERS ))"

    zova -f json server list >"$DIR/moves/servers.json" \
    && zova -f json hypervisor list >"$DIR/moves/hypervisors.json" \
    && zova -f json migration list --kind evacuation >"$DIR/moves/migrations.json" \
    && moves_check h0 "$DIR/moves/servers.json" "$DIR/moves/hypervisors.json" "$DIR/moves/migrations.json"
    stop_pids "${pids[@]:1}"
    stop movesapi; stop movesscheduler; stop movesconductor
}
if want moves && [ "$MOVES" != 0 ]; then
    note "moves: $MOVES_SERVERS servers evacuated off a dead host to $MOVES_HOSTS others"
    # Not in a pipe: a subshell would keep the computes' PIDs from cleanup.
    moves >"$DIR/moves.out" || note "moves step failed (logs in $DIR/moves; BENCH_KEEP=1 keeps them)"
    sed 's/^/  /' "$DIR/moves.out" >&2
fi

# --- 9. coldmove ---------------------------------------------------------------
# bench/coldmove.sh owns its two libvirt hosts, zovad processes and server,
# and stops them all whatever happens; its figures come back on stdout.
if want coldmove && [ "$COLDMOVE" != 0 ]; then
    note "coldmove: a 1 GiB disk cold-migrated between two local hosts vs cp + fsync"
    bash "$ROOT/bench/coldmove.sh" "$BUILD" >"$DIR/coldmove.out" &
    COLDMOVE_PID=$!
    PIDS+=("$COLDMOVE_PID")
    wait "$COLDMOVE_PID" || note "coldmove step failed (BENCH_KEEP=1 keeps its logs)"
    sed 's/^/  /' "$DIR/coldmove.out" >&2
fi

# --- 10. livemove --------------------------------------------------------------
# bench/livemove.sh owns its hosts, zovads and guests, as guest.sh does.
if want livemove && [ "${BENCH_LIVEMOVE:-1}" != 0 ]; then
    note "livemove: live migration, zova vs virsh migrate --live --p2p (two libvirt hosts, real guests)"
    bash "$ROOT/bench/livemove.sh" "$BUILD" >"$DIR/livemove.out" &
    LIVEMOVE_PID=$!
    PIDS+=("$LIVEMOVE_PID")
    wait "$LIVEMOVE_PID" || note "livemove step failed (BENCH_KEEP=1 keeps its logs)"
    sed 's/^/  /' "$DIR/livemove.out" >&2
fi

# --- figures -------------------------------------------------------------
# show NAME FILE [AS]: the figure NAME of a step's output, printed as AS.
show () { local v; v=$(value_of "$1" "$2"); figure "${3:-$1}" "${v:-failed}"; }
# ratio AS A B: A / B when both were measured.
ratio () {
    if [ -n "$2" ] && [ -n "$3" ] && [ "$2" != failed ]; then figure "$1" "$(calc "$2 / $3")"
    else figure "$1" failed; fi
}
RAW_RATE=$(value_of raw_libvirt_define_start_per_s "$DIR/raw.out" 2>/dev/null)
note "summary"
if want boot; then
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
fi
if want rpc; then
    for name in rpc_zova_roundtrip_us rpc_raw_zmq_roundtrip_us rpc_ratio_vs_raw_zmq rpc_request_bytes rpc_reply_bytes; do
        show "$name" "$DIR/rpc.out"
    done
fi
if want store; then
    for name in store_zova_transitions_per_s store_zova_transitions_per_s_batch1 store_raw_lmdb_commits_per_s \
                store_ratio_vs_raw_lmdb store_ratio_batch1_vs_raw_lmdb; do
        show "$name" "$DIR/store.out"
    done
fi
if want sched; then
    for count in 100 1000 10000; do
        for name in decisions_per_s p50_ms p99_ms ns_per_host; do
            show "sched_${count}_$name" "$DIR/sched.out"
        done
    done
    show sched_growth_10000_vs_100_per_host "$DIR/sched.out"
    for count in 100 1000 10000; do
        for name in decisions_per_s p50_ms p99_ms us_per_host transport_p50_ms refresh_ms \
                    host_states_build_ms host_states_encode_ms host_states_decode_ms host_states_kb; do
            show "sched_actor_${count}_$name" "$DIR/sched_actor.out"
        done
    done
    for name in sched_actor_growth_10000_vs_100_per_host sched_actor_marginal_ns_per_host_100_to_1000 \
                sched_actor_marginal_ns_per_host_1000_to_10000 sched_actor_scheduler_cpu_s; do
        show "$name" "$DIR/sched_actor.out"
    done
fi
want boot && figure list_1000_ms "${LIST_1000:-failed}"
want list && figure list_10000_ms "${LIST_10000:-failed}"
if want fleet && [ "$FLEET" != 0 ]; then
    for name in fleet_boot_rate_servers_per_s fleet_boot_p50_ms fleet_boot_p99_ms fleet_boot_errors \
                fleet_spread_max_minus_min fleet_instances_per_host_min fleet_instances_per_host_max \
                fleet_hosts fleet_hosts_up_s fleet_compute_rss_mb_each fleet_computes_idle_cpu_pct \
                fleet_cpu_us_per_server_conductor \
                fleet_cpu_us_per_server_scheduler fleet_cpu_us_per_server_computes fleet_delete_rate_servers_per_s; do
        show "$name" "$DIR/fleet.out"
    done
fi
# Every figure guest.sh printed; the headline ones as failed if it printed none.
if want guest && [ "$GUEST" != 0 ]; then
    if grep -q '^spawn_' "$DIR/guest.out" 2>/dev/null; then
        grep -E '^[a-z0-9_]+: ' "$DIR/guest.out"
    else
        for name in spawn_running_overhead_ratio spawn_agent_overhead_ratio image_transfer_ratio; do
            figure "$name" failed
        done
    fi
fi
if want console && [ "$CONSOLE" != 0 ]; then
    if grep -q '^console_' "$DIR/console.out" 2>/dev/null; then
        grep -E '^[a-z0-9_]+: ' "$DIR/console.out"
    else
        for name in console_latency_ratio console_throughput_ratio; do figure "$name" failed; done
    fi
fi
if want moves && [ "$MOVES" != 0 ]; then
    for name in moves_evacuate_rate_servers_per_s moves_evacuate_s moves_evacuate_half_s moves_evacuate_request_ms \
                moves_evacuate_polls moves_evacuate_opened moves_evacuate_refused moves_evacuate_failed \
                moves_evacuate_unfinished moves_spread_min moves_spread_max moves_spread_hosts_used \
                moves_left_on_source moves_servers_not_active moves_source_memory_mb_used moves_migrations_not_done \
                moves_cpu_us_per_server_conductor moves_cpu_us_per_server_scheduler moves_cpu_us_per_server_computes \
                moves_boot_rate_servers_per_s; do
        show "$name" "$DIR/moves.out"
    done
    ratio moves_evacuate_ratio_vs_raw_libvirt "$(value_of moves_evacuate_rate_servers_per_s "$DIR/moves.out")" "$RAW_RATE"
    want boot || show raw_libvirt_define_start_per_s "$DIR/raw.out"
fi
if want coldmove && [ "$COLDMOVE" != 0 ]; then
    if grep -q '^coldmove_transfer' "$DIR/coldmove.out" 2>/dev/null; then
        grep -E '^[a-z0-9_]+: ' "$DIR/coldmove.out"
    else
        for name in coldmove_transfer_ratio coldmove_move_s; do figure "$name" failed; done
    fi
fi
if want livemove && [ "${BENCH_LIVEMOVE:-1}" != 0 ]; then
    grep -E '^livemove_[a-z0-9_]+: ' "$DIR/livemove.out" 2>/dev/null || figure livemove_shared_total_ratio failed
fi
figure bench_seconds "$(( ($(ms_now) - T0) / 1000 ))"
