#!/usr/bin/env bash
# run-e2e.sh BUILD [TEST...]: run end-to-end tests (tests/e2e/test_*.sh)
# against the binaries in BUILD, each in its own temp dir with its own
# ports (tests/e2e/lib.sh), ZV_E2E_JOBS of them at a time (default 3).
#
# Most of a test's time is spent waiting (for a heartbeat, a guest's boot,
# a console's frames), so a few lanes fill two cores without starving any
# test's deadlines; the longest tests start first, so the lanes end close
# together.  A test's output goes to its own log: this script alone
# prints, one test at a time as each ends, its PASS or FAIL line and on
# FAIL the whole log, so nothing interleaves.  The last line is
# "e2e: N passed, N failed".
#
# ZV_E2E_JOBS=1 runs them one after another, as before lanes;
# ZV_E2E_TIMEOUT (default 600) bounds each test, in seconds.
set -u
cd "$(dirname "$0")/.."
export ZV_BUILD=${1:-build}
shift || true
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/e2e/test_*.sh)
jobs=${ZV_E2E_JOBS:-3}
limit=${ZV_E2E_TIMEOUT:-600}

# Seconds each test took alone on 2 cores (sanitized build): the order
# the lanes take them in, longest first.  A test not listed is taken to be
# long (it starts among the first) until it is measured and listed here.
declare -A cost=(
    [test_scheduling]=252 [test_guests]=219 [test_console]=85 [test_restart]=47
    [test_allinone]=37 [test_badinput]=34 [test_cluster]=34 [test_actions]=29
    [test_issue4_cli]=10
)
unknown_cost=300
mapfile -t tests < <(for test in "${tests[@]}"; do
    name=$(basename "$test" .sh)
    echo "${cost[$name]:-$unknown_cost} $test"
done | sort -k1,1nr -k2 | cut -d' ' -f2-)

# The python3 the tests use, found once (lib.sh says why).
ZV_PYTHON=${ZV_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
export ZV_PYTHON

out=$(mktemp -d /tmp/zova-e2e-run.XXXXXX)
trap 'rm -rf "$out"' EXIT

# s_run I: test I to its log; its exit status and seconds to I.rc.  A test
# past the limit gets SIGTERM (its whole process group), then SIGKILL 30 s
# later, so nothing it started outlives it.
s_run () {
    local i=$1 start rc=0
    start=$(date +%s)
    timeout -k 30 "$limit" bash "${tests[$i]}" >"$out/$i.log" 2>&1 || rc=$?
    echo "$rc $(( $(date +%s) - start ))" >"$out/$i.rc"
}

# s_report I: the PASS/FAIL line of test I (and its log on FAIL).
passed=0 failed=0
s_report () {
    local i=$1 name rc seconds
    name=$(basename "${tests[$i]}" .sh)
    read -r rc seconds <"$out/$i.rc"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS e2e $name ($seconds s): $(tail -1 "$out/$i.log")"
    else
        failed=$((failed + 1))
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "FAIL e2e $name ($seconds s, stopped after the ${limit} s limit)"
        else
            echo "FAIL e2e $name ($seconds s)"
        fi
        cat "$out/$i.log"
    fi
}

declare -A running=()
next=0
while [ "$next" -lt ${#tests[@]} ] || [ ${#running[@]} -gt 0 ]; do
    while [ ${#running[@]} -lt "$jobs" ] && [ "$next" -lt ${#tests[@]} ]; do
        s_run "$next" &
        running[$!]=$next
        next=$((next + 1))
    done
    done_pid=
    wait -n -p done_pid "${!running[@]}"
    [ -n "$done_pid" ] || continue
    s_report "${running[$done_pid]}"
    unset "running[$done_pid]"
done
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
