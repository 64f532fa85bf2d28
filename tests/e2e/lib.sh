# lib.sh: what every end-to-end test shares.  Sourced, not run.
#
# Each test gets its own temporary directory (state, configs, logs) and its
# own loopback ports, starts the zovad processes it needs, records their
# PIDs, and stops them by PID on exit, whatever happens.  Waits are polls
# with deadlines, never bare sleeps.  ZV_BUILD names the build directory
# (build-san under make test).

set -u
ZV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ZV_BUILD=${ZV_BUILD:-build}
case "$ZV_BUILD" in /*) ;; *) ZV_BUILD="$ZV_ROOT/$ZV_BUILD" ;; esac
ZOVAD="$ZV_BUILD/zovad"
ZOVA="$ZV_BUILD/zova"
# Sanitized daemons: fail loudly on a leak or UB, but never on ASan's own
# dislike of czmq's signal handling.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=66}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ZV_ROOT/tests/lsan.supp:print_suppressions=0}

T_NAME=$(basename "$0" .sh)
T_DIR=$(mktemp -d "/tmp/zova-$T_NAME.XXXXXX")

# python3, as PATH finds it, but without a version manager's shim in the
# way: pyenv's is a bash script that runs `pyenv exec`, about 0.7 s of CPU
# per call against 0.05 s for the interpreter itself, and a test makes
# hundreds of calls (t_json, t_port, its own checks, in loops that poll).
# The interpreter the shim picks is found once (run-e2e.sh passes it down
# in ZV_PYTHON) and put first on PATH, for the test and all it starts.
ZV_PYTHON=${ZV_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
export ZV_PYTHON
mkdir "$T_DIR/bin"
ln -s "$ZV_PYTHON" "$T_DIR/bin/python3"
export PATH="$T_DIR/bin:$PATH"
T_PIDS=()
T_FAILS=0
T_CHECKS=0

t_cleanup () {
    local pid
    for pid in "${T_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${T_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    if [ "$T_FAILS" -eq 0 ] && [ -z "${ZV_KEEP:-}" ]; then
        rm -rf "$T_DIR"
    else
        echo "  (logs kept in $T_DIR)"
    fi
}
trap t_cleanup EXIT
# Non-interactive bash dies of SIGTERM without running its EXIT trap:
# run-e2e.sh's time limit (and ^C) must still stop what the test started.
trap 't_fail "stopped by SIGTERM"; exit 143' TERM
trap 'exit 130' INT

# Ports handed out to tests are registered machine-wide: each test's
# $T_DIR/ports lists those it holds until its directory goes, and a port
# is given only under an exclusive lock on T_PORT_LOCK, after checking
# every such list.  So two tests running at once (run-e2e.sh's lanes, or
# another worktree's run) never get the same port, though the kernel may
# hand the same just-closed port to two bind(0) calls in a row and a port
# is bound only later, by the daemon told of it.
T_PORT_LOCK=/tmp/zova-ports.lock

# s_ports_take COUNT: COUNT consecutive free, unregistered loopback ports;
# prints the first.  A single port comes from the kernel (bind to port 0);
# a range is looked for below the ephemeral range, where the kernel's own
# picks for outgoing connections do not land.
s_ports_take () {
    python3 - "$1" "$T_DIR/ports" "$T_PORT_LOCK" <<'EOF'
import fcntl, glob, random, socket, sys
count, mine, lock_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def bindable(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()

with open(lock_path, "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    taken = set()
    for path in glob.glob("/tmp/zova-*/ports"):
        try:
            taken.update(int(p) for p in open(path).read().split())
        except (OSError, ValueError):
            pass
    for _ in range(1000):
        if count == 1:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
            s.close()
        else:
            first = random.randrange(10000, 30000 - count)
        ports = range(first, first + count)
        if not taken.intersection(ports) and all(bindable(p) for p in ports):
            break
    else:
        sys.exit("no %d free port(s) found" % count)
    with open(mine, "a") as f:
        f.write("".join("%d\n" % p for p in ports))
    print(first)
EOF
}

# t_port: a free loopback TCP port, never one given to this or any other
# running test.  (Called as $(t_port), a subshell: the registry is a file.)
t_port () { s_ports_take 1; }

# t_port_range COUNT: the first of COUNT consecutive such ports (for a
# [serial_console] port_range, whose ports compute probes and QEMU binds).
t_port_range () { s_ports_take "$1"; }

t_log () { echo "  $*"; }

t_fail () {
    T_FAILS=$((T_FAILS + 1))
    echo "  FAIL: $*"
}

# t_check DESCRIPTION COMMAND...: run a command, expect success.
t_check () {
    local what=$1; shift
    T_CHECKS=$((T_CHECKS + 1))
    if "$@" >"$T_DIR/last.out" 2>"$T_DIR/last.err"; then
        echo "  ok: $what"
    else
        t_fail "$what (exit $?): $(head -c 600 "$T_DIR/last.err")"
    fi
}

# t_check_fails DESCRIPTION PATTERN COMMAND...: expect failure and PATTERN on stderr.
t_check_fails () {
    local what=$1 pattern=$2; shift 2
    T_CHECKS=$((T_CHECKS + 1))
    if "$@" >"$T_DIR/last.out" 2>"$T_DIR/last.err"; then
        t_fail "$what: succeeded, expected failure"
    elif ! grep -q -- "$pattern" "$T_DIR/last.err"; then
        t_fail "$what: stderr lacks '$pattern': $(head -c 600 "$T_DIR/last.err")"
    else
        echo "  ok: $what"
    fi
}

# t_eq DESCRIPTION EXPECTED ACTUAL
t_eq () {
    T_CHECKS=$((T_CHECKS + 1))
    if [ "$2" = "$3" ]; then echo "  ok: $1 ($3)"; else t_fail "$1: expected '$2', got '$3'"; fi
}

# t_wait_for DESCRIPTION SECONDS COMMAND...: poll until the command succeeds.
# The pause between polls grows from 0.1 s to 0.5 s: a poll is often a
# sanitized CLI call and a python3, a quarter of a second of CPU, and a
# long wait polling flat out would take a core from the tests running
# beside it (run-e2e.sh's lanes) and from what it waits for.  A wait for a
# moment that soon passes sets T_WAIT_PAUSE_MAX=1 (tenths of a second).
t_wait_for () {
    local what=$1 seconds=$2; shift 2
    local deadline=$(( $(date +%s%N) / 1000000 + seconds * 1000 )) pause=1
    while [ $(( $(date +%s%N) / 1000000 )) -lt $deadline ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep "0.$pause"
        [ "$pause" -lt "${T_WAIT_PAUSE_MAX:-5}" ] && pause=$((pause + 1))
    done
    if "$@" >/dev/null 2>&1; then return 0; fi   # the deadline passed in a pause
    t_fail "timed out after ${seconds}s waiting for: $what"
    return 1
}

# t_config FILE [section.key=value ...]: write a config with test timings.
t_config () {
    local file=$1; shift
    {
        echo "[DEFAULT]"
        echo "state_path = $T_DIR/var"
        echo "report_interval = 1"
        echo "service_down_time = 4"
        echo "log_level = ${ZV_LOG_LEVEL:-info}"
        # Every test's console proxy on a port of its own (a key given
        # below, later in the file, wins).
        echo "[consoleproxy]"
        echo "port = $(t_port)"
        local kv section key value current=consoleproxy
        for kv in "$@"; do
            section=${kv%%.*}; key=${kv#*.}; value=${key#*=}; key=${key%%=*}
            if [ "$section" != "$current" ]; then echo "[$section]"; current=$section; fi
            echo "$key = $value"
        done
    } >"$file"
}

# t_start NAME ROLE CONFIG: start zovad, remember its PID in T_PID_<NAME>.
t_start () {
    local name=$1 role=$2 config=$3
    "$ZOVAD" "$role" --config "$config" >>"$T_DIR/$name.log" 2>&1 &
    local pid=$!
    T_PIDS+=("$pid")
    eval "T_PID_$name=$pid"
}

# t_stop NAME: SIGTERM and wait; fails the test if it does not exit cleanly.
t_stop () {
    local name=$1 pid
    eval "pid=\$T_PID_$name"
    kill -TERM "$pid" 2>/dev/null
    local status=0
    wait "$pid" || status=$?
    T_CHECKS=$((T_CHECKS + 1))
    if [ "$status" -eq 0 ]; then echo "  ok: $name stopped cleanly on SIGTERM"
    else t_fail "$name exited $status on SIGTERM (log: $T_DIR/$name.log)"; tail -5 "$T_DIR/$name.log"; fi
}

# t_kill9 NAME
t_kill9 () {
    local name=$1 pid
    eval "pid=\$T_PID_$name"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# zova with the test's endpoint and a short request timeout.
t_zova () { "$ZOVA" --timeout "${T_TIMEOUT:-10}" "$@"; }

# t_wait_api SECONDS: until the api answers ping.
t_wait_api () { t_wait_for "api ping" "${1:-20}" t_zova ping; }

# t_json EXPR: read JSON on stdin, print a python expression of it (d = the document).
t_json () { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# t_libvirtd start|stop LVDIR: scripts/libvirtd-test.sh, one start or stop
# at a time per capabilities cache: start seeds LVDIR from
# LIBVIRTD_TEST_CAPS_CACHE and stop saves it back, and two tests doing so
# at once (run-e2e.sh's lanes) would mix their copies.  (flock -o: the
# daemons started keep no hold on the lock.)
t_libvirtd () {
    local lock="${LIBVIRTD_TEST_CAPS_CACHE:-$T_DIR/libvirt-cache}.lock"
    mkdir -p "$(dirname "$lock")"
    flock -o "$lock" bash "$ZV_ROOT/scripts/libvirtd-test.sh" "$@"
}

# t_libvirt_cleanup URI LVDIR OWN: what a real-guest test leaves in libvirt
# goes: every zova domain at URI is destroyed and undefined (with its managed
# save), and the private libvirtd under LVDIR is stopped when OWN is set.
t_libvirt_cleanup () {
    local uri=$1 lv=$2 own=$3 dom
    if [ -n "$uri" ]; then
        for dom in $(virsh -c "$uri" list --all --name 2>/dev/null | grep '^zova-'); do
            virsh -c "$uri" destroy "$dom" >/dev/null 2>&1
            virsh -c "$uri" undefine --managed-save "$dom" >/dev/null 2>&1
        done
    fi
    [ -n "$own" ] && t_libvirtd stop "$lv" 2>/dev/null
    return 0
}

# t_done: the test's result line and exit code.
t_done () {
    echo "$T_NAME: $T_CHECKS checks, $T_FAILS failed"
    [ "$T_FAILS" -eq 0 ]
}
