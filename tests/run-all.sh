#!/usr/bin/env bash
# run-all.sh BUILD: every unit test, then every end-to-end test, against the
# binaries in BUILD (make test passes build-san: ASan + UBSan).  The last
# line is the total, "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
build=${1:-build-san}
unit_bins=()
for src in tests/unit/test_*.c; do
    unit_bins+=("$build/tests/$(basename "$src" .c)")
done
out=$(mktemp)
bash tests/run-unit.sh "${unit_bins[@]}" | tee "$out"
bash tests/run-e2e.sh "$build" | tee -a "$out"
passed=$(grep -cE '^PASS ' "$out")
failed=$(grep -cE '^FAIL ' "$out")
rm -f "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
