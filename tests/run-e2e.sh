#!/usr/bin/env bash
# run-e2e.sh BUILD [TEST...]: run end-to-end tests (tests/e2e/test_*.sh) against
# the binaries in BUILD, one after another, each in its own temp dir.
set -u
cd "$(dirname "$0")/.."
export ZV_BUILD=${1:-build}
shift || true
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/e2e/test_*.sh)
passed=0 failed=0
for test in "${tests[@]}"; do
    name=$(basename "$test" .sh)
    start=$(date +%s)
    log=$(mktemp)
    if timeout 600 bash "$test" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "PASS e2e $name ($(( $(date +%s) - start )) s): $(tail -1 "$log")"
    else
        failed=$((failed + 1))
        echo "FAIL e2e $name ($(( $(date +%s) - start )) s)"
        cat "$log"
    fi
    rm -f "$log"
done
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
