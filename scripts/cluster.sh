#!/usr/bin/env bash
# cluster.sh: start, stop and inspect the 6-process loopback cluster.
#
#     scripts/cluster.sh start|stop|status|restart
#
# The templates in config/cluster/ (one config per process: conductor,
# scheduler, api and three compute hosts, plus each compute's libvirt test
# node file) cannot know the checkout path, which test:/// URIs need
# absolute, nor which ports are free, so `start` writes the runtime configs
# into the state directory with the placeholders substituted, starts each
# process in the background with its log and PID file there, waits until the
# api answers and all three compute services are up, and prints the line to
# give the zova CLI:
#
#     eval "$(scripts/cluster.sh start)"     # export ZOVA_ENDPOINT=...
#
# Progress goes to stderr, the export line alone to stdout.  `stop` sends
# SIGTERM to each process by its PID file (the conductor last, as zovad all
# does) and waits; `status` says which process runs and which endpoint to
# use, and exits 0 when all six run, 3 otherwise.
#
# Environment:
#   ZOVA_CLUSTER_DIR        state directory (default <checkout>/var/cluster)
#   ZOVA_CLUSTER_PORT_BASE  api port; the conductor takes the next one (5784)
#   ZOVA_CLUSTER_LOG_LEVEL  log_level of every process (info)
#   ZOVA_CLUSTER_TIMEOUT    seconds to wait for start or stop (30)
#   ZV_BUILD                build directory holding zovad and zova (build)

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEMPLATES="$ROOT/config/cluster"
BUILD=${ZV_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ZOVAD="$BUILD/zovad"
ZOVA="$BUILD/zova"
STATE=${ZOVA_CLUSTER_DIR:-$ROOT/var/cluster}
PORT_BASE=${ZOVA_CLUSTER_PORT_BASE:-5784}
LOG_LEVEL=${ZOVA_CLUSTER_LOG_LEVEL:-info}
TIMEOUT=${ZOVA_CLUSTER_TIMEOUT:-30}
# One spelling of the state directory, so PID checks match the command lines.
[ -d "$STATE" ] && STATE=$(cd "$STATE" && pwd)

# Start order; stop runs it backwards, so the conductor goes last.
PROCS=(conductor scheduler compute1 compute2 compute3 api)
COMPUTES=(compute1 compute2 compute3)

say () { echo "cluster: $*" >&2; }
die () { say "$*"; exit 1; }

s_role () { echo "${1%%[0-9]*}"; }

s_now_ms () { echo $(( $(date +%s%N) / 1000000 )); }

# The pid of NAME if its PID file names a live zovad of this cluster.  A
# stale file (a reused pid, a process of another cluster) does not count.
s_pid () {
    local name=$1 pid
    [ -r "$STATE/$name.pid" ] || return 1
    read -r pid <"$STATE/$name.pid" 2>/dev/null || return 1
    case "$pid" in ''|*[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--config $STATE/$name.conf" || return 1
    echo "$pid"
}

# The api endpoint that the running configs name (empty before any start).
s_endpoint () {
    [ -r "$STATE/api.conf" ] || return 0
    sed -n '/^\[api\]/,/^\[/s/^endpoint *= *//p' "$STATE/api.conf" | head -1
}

s_port_busy () {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

s_generate () {
    case "$PORT_BASE" in ''|*[!0-9]*) die "ZOVA_CLUSTER_PORT_BASE must be a port number, not '$PORT_BASE'" ;; esac
    local api_port=$PORT_BASE conductor_port=$((PORT_BASE + 1)) name port
    [ "$PORT_BASE" -ge 1 ] && [ "$conductor_port" -le 65535 ] || die "ZOVA_CLUSTER_PORT_BASE $PORT_BASE is out of range"
    for port in "$api_port" "$conductor_port"; do
        s_port_busy "$port" && die "port $port on 127.0.0.1 is in use (set ZOVA_CLUSTER_PORT_BASE)"
    done
    mkdir -p "$STATE" || die "cannot create $STATE"
    STATE=$(cd "$STATE" && pwd)
    for name in "${PROCS[@]}"; do
        sed -e "s|@STATE@|$STATE|g" \
            -e "s|@LOG_LEVEL@|$LOG_LEVEL|g" \
            -e "s|@API_ENDPOINT@|tcp://127.0.0.1:$api_port|g" \
            -e "s|@CONDUCTOR_ENDPOINT@|tcp://127.0.0.1:$conductor_port|g" \
            "$TEMPLATES/$name.conf" >"$STATE/$name.conf.tmp" || die "cannot write $STATE/$name.conf"
        mv "$STATE/$name.conf.tmp" "$STATE/$name.conf"
    done
    for name in "${COMPUTES[@]}"; do
        cp "$TEMPLATES/$name.xml" "$STATE/$name.xml" || die "cannot copy $name.xml"
    done
}

# Until the api answers and every compute service is up, or the deadline.
s_wait_ready () {
    local endpoint=$1 deadline=$(( $(s_now_ms) + TIMEOUT * 1000 )) name missing
    while [ "$(s_now_ms)" -lt "$deadline" ]; do
        for name in "${PROCS[@]}"; do
            if ! s_pid "$name" >/dev/null; then
                say "$name exited during start; the end of $STATE/$name.log:"
                tail -5 "$STATE/$name.log" >&2
                return 1
            fi
        done
        missing=$("$ZOVA" --endpoint "$endpoint" --timeout 2 -f json compute service list 2>/dev/null |
            python3 -c '
import json, sys
up = {s.get("host") for s in json.load(sys.stdin)
      if s.get("binary") == "compute" and s.get("state") == "up"}
print(" ".join(h for h in sys.argv[1:] if h not in up))' "${COMPUTES[@]}" 2>/dev/null) &&
            [ -z "$missing" ] && return 0
        sleep 0.2
    done
    if ! "$ZOVA" --endpoint "$endpoint" --timeout 2 ping >/dev/null 2>&1; then
        say "the api at $endpoint did not answer within ${TIMEOUT}s"
    else
        say "compute services not up within ${TIMEOUT}s: ${missing:-unknown}"
    fi
    return 1
}

# SIGTERM the given processes and wait for them; 0 when all have exited.
s_terminate () {
    local name pid rc=0 deadline
    declare -A pids=()
    for name in "$@"; do
        if pid=$(s_pid "$name"); then
            kill -TERM "$pid" 2>/dev/null
            pids[$name]=$pid
        else
            rm -f "$STATE/$name.pid"
        fi
    done
    deadline=$(( $(s_now_ms) + TIMEOUT * 1000 ))
    for name in "$@"; do
        [ -n "${pids[$name]:-}" ] || continue
        pid=${pids[$name]}
        while kill -0 "$pid" 2>/dev/null && [ "$(s_now_ms)" -lt "$deadline" ]; do
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name (pid $pid) did not stop within ${TIMEOUT}s; see $STATE/$name.log"
            rc=1
        else
            say "stopped $name (pid $pid)"
            rm -f "$STATE/$name.pid"
        fi
    done
    return $rc
}

s_reversed () {
    local index
    for ((index = $# ; index > 0 ; index--)); do echo "${!index}"; done
}

cmd_start () {
    [ -x "$ZOVAD" ] && [ -x "$ZOVA" ] || die "no $ZOVAD or $ZOVA: run make first (or set ZV_BUILD)"
    local name running=() started=() endpoint pid
    for name in "${PROCS[@]}"; do
        s_pid "$name" >/dev/null && running+=("$name")
    done
    if [ ${#running[@]} -eq ${#PROCS[@]} ]; then
        endpoint=$(s_endpoint)
        say "already running in $STATE"
        echo "export ZOVA_ENDPOINT=$endpoint"
        return 0
    fi
    if [ ${#running[@]} -gt 0 ]; then
        # Keep the configs those processes run with; start the others.
        say "already running: ${running[*]}; starting the rest with the configs in $STATE"
    else
        s_generate
    fi
    STATE=$(cd "$STATE" && pwd)
    endpoint=$(s_endpoint)
    for name in "${PROCS[@]}"; do
        s_pid "$name" >/dev/null && continue
        mkdir -p "$STATE/var/$name"
        nohup "$ZOVAD" "$(s_role "$name")" --config "$STATE/$name.conf" \
            >>"$STATE/$name.log" 2>&1 </dev/null &
        echo $! >"$STATE/$name.pid"
        started+=("$name")
    done
    say "started ${started[*]} (logs in $STATE)"
    if ! s_wait_ready "$endpoint"; then
        say "start failed; stopping what this start began"
        local reversed
        mapfile -t reversed < <(s_reversed "${started[@]}")
        s_terminate "${reversed[@]}"
        return 1
    fi
    say "ready: api $endpoint, computes ${COMPUTES[*]} up"
    echo "export ZOVA_ENDPOINT=$endpoint"
}

cmd_stop () {
    local name any=0
    for name in "${PROCS[@]}"; do
        s_pid "$name" >/dev/null && any=1
    done
    if [ "$any" -eq 0 ]; then
        for name in "${PROCS[@]}"; do rm -f "$STATE/$name.pid"; done
        say "not running (state $STATE)"
        return 0
    fi
    local reversed
    mapfile -t reversed < <(s_reversed "${PROCS[@]}")
    s_terminate "${reversed[@]}"
}

cmd_status () {
    local name pid count=0
    for name in "${PROCS[@]}"; do
        if pid=$(s_pid "$name"); then
            printf '%-10s running (pid %s)\n' "$name" "$pid"
            count=$((count + 1))
        elif [ -e "$STATE/$name.pid" ]; then
            printf '%-10s stopped (stale pid file)\n' "$name"
        else
            printf '%-10s stopped\n' "$name"
        fi
    done
    local endpoint
    endpoint=$(s_endpoint)
    echo "state     $STATE"
    echo "endpoint  ${endpoint:-(none: never started)}"
    [ "$count" -eq ${#PROCS[@]} ]  || return 3
    echo "export ZOVA_ENDPOINT=$endpoint"
}

case "${1:-}" in
    start)   cmd_start ;;
    stop)    cmd_stop ;;
    status)  cmd_status ;;
    restart) cmd_stop && cmd_start ;;
    -h|--help|help)
        sed -n '2,/^$/s/^# \{0,1\}//p' "$0" ;;
    *)
        echo "usage: $0 start|stop|status|restart" >&2
        exit 2 ;;
esac
