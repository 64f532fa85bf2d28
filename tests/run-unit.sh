#!/usr/bin/env bash
# run-unit.sh [--valgrind] BIN...: run unit-test binaries from the repo root.
# Prints one line per binary and a closing "N passed, N failed" line.
set -u
cd "$(dirname "$0")/.."
wrap=()
if [ "${1:-}" = "--valgrind" ]; then
    shift
    wrap=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect
          --errors-for-leak-kinds=definite,indirect --error-exitcode=99)
fi
passed=0 failed=0
for bin in "$@"; do
    name=$(basename "$bin")
    log=$(mktemp)
    if "${wrap[@]}" "$bin" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "PASS unit $name: $(grep -E 'PASSED|tests? run' "$log" | tail -1 | sed 's/^\[[^]]*\] *//')"
    else
        failed=$((failed + 1))
        echo "FAIL unit $name"
        tail -40 "$log"
    fi
    rm -f "$log"
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
