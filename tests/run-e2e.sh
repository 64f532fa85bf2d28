#!/usr/bin/env bash
# run-e2e.sh BUILD [TEST...]: run end-to-end tests (tests/e2e/test_*.sh)
# against the binaries in BUILD, each in its own temp dir with its own
# ports (tests/e2e/lib.sh), ZV_E2E_JOBS of them at a time (default 2).
#
# A test keeps about one core busy (one sanitized CLI call after another,
# the daemons answering) and spends the rest waiting, so two lanes fill
# two cores.  Three were tried, on a machine others were loading too:
# the three longest tests together starved each other's daemons of the
# CPU their 1 s heartbeats need, past every deadline.  The heavy tests
# run one at a time, each beside light ones: those that boot QEMU guests
# under TCG (a busy core per guest, and timings of their own: boots, a
# console's frame rate) and test_scheduling (200 clients at once); run
# side by side, a guest of one missed its boot deadline during the
# other's burst.  The longest start first, so the lanes end close
# together.  A test's output goes to its own log:
# this script alone prints, one test at a time as each ends, its PASS or
# FAIL line and on FAIL the whole log, so nothing interleaves.  The last
# line is "e2e: N passed, N failed".
#
# ZV_E2E_JOBS=1 runs them one after another; ZV_E2E_TIMEOUT (default 600)
# bounds each test, in seconds.
set -u
cd "$(dirname "$0")/.."
export ZV_BUILD=${1:-build}
shift || true
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/e2e/test_*.sh)
jobs=${ZV_E2E_JOBS:-2}
limit=${ZV_E2E_TIMEOUT:-600}

# Seconds each test took alone on 2 cores (sanitized build): the order
# the lanes take them in, longest first.  A test not listed is taken to be
# long (it starts among the first) until it is measured and listed here.
declare -A cost=(
    [test_scheduling]=252 [test_guests]=219 [test_live_migration]=190 [test_moves_crash]=140 [test_moves_guests]=100
    [test_image_cache]=50 [test_console]=85 [test_restart]=47 [test_allinone]=37 [test_badinput]=34 [test_cluster]=34
    [test_actions]=29 [test_moves]=15 [test_issue4_cli]=10 [test_policy]=8 [test_moves_cli]=5
)
unknown_cost=300
# Tests of one group never run at the same time.
declare -A group=([test_scheduling]=heavy [test_guests]=heavy [test_console]=heavy [test_moves_guests]=heavy
                    [test_live_migration]=heavy [test_image_cache]=heavy)

mapfile -t tests < <(for test in "${tests[@]}"; do
    name=$(basename "$test" .sh)
    echo "${cost[$name]:-$unknown_cost} $test"
done | sort -k1,1nr -k2 | cut -d' ' -f2-)

# The python3 the tests use, found once (lib.sh says why).
ZV_PYTHON=${ZV_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
export ZV_PYTHON

out=$(mktemp -d /tmp/zova-e2e-run.XXXXXX)
trap 'rm -rf "$out"' EXIT

# s_name I: test I's name.
s_name () { basename "${tests[$1]}" .sh; }

# s_run I: test I to its log; its exit status and seconds to I.rc.  A test
# past the limit gets SIGTERM (its whole process group: lib.sh then stops
# what it started), then SIGKILL 30 s later, so nothing outlives it.
s_run () {
    local i=$1 start rc=0
    start=$(date +%s)
    timeout -k 30 "$limit" bash "${tests[$i]}" >"$out/$i.log" 2>&1 </dev/null || rc=$?
    echo "$rc $(( $(date +%s) - start ))" >"$out/$i.rc"
}

# s_report I: the PASS/FAIL line of test I (and its log on FAIL).
passed=0 failed=0
s_report () {
    local i=$1 name rc seconds
    name=$(s_name "$i")
    read -r rc seconds <"$out/$i.rc"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS e2e $name ($seconds s): $(tail -1 "$out/$i.log")"
    else
        failed=$((failed + 1))
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "FAIL e2e $name ($seconds s, stopped at the ${limit} s limit)"
        else
            echo "FAIL e2e $name ($seconds s)"
        fi
        cat "$out/$i.log"
    fi
}

# s_next: the first pending test whose group is not running, or nothing.
s_next () {
    local i g
    for i in "${pending[@]}"; do
        g=${group[$(s_name "$i")]:-}
        if [ -z "$g" ] || [ -z "${busy[$g]:-}" ]; then echo "$i"; return; fi
    done
}

pending=("${!tests[@]}")
declare -A running=() busy=()
while [ ${#pending[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
    while [ ${#running[@]} -lt "$jobs" ] && [ ${#pending[@]} -gt 0 ]; do
        i=$(s_next)
        [ -n "$i" ] || break
        s_run "$i" &
        running[$!]=$i
        g=${group[$(s_name "$i")]:-}
        [ -n "$g" ] && busy[$g]=1
        pending=($(for j in "${pending[@]}"; do [ "$j" = "$i" ] || echo "$j"; done))
    done
    done_pid=
    wait -n -p done_pid "${!running[@]}"
    [ -n "$done_pid" ] || continue
    i=${running[$done_pid]}
    unset "running[$done_pid]"
    g=${group[$(s_name "$i")]:-}
    [ -n "$g" ] && unset "busy[$g]"
    s_report "$i"
done
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
