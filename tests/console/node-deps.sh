#!/usr/bin/env bash
# node-deps.sh [DIR]: install the console clients' npm packages
# (tests/console/package.json: playwright-core, ws) into DIR, outside the
# repository (default ZV_NODE_DIR or /var/tmp/zova-test-node), and print
# DIR/node_modules for NODE_PATH.
#
# DIR is reused while its package.json equals ours and the packages are
# there: npm runs only the first time or after package.json changed.
# Concurrent callers (a test and a bench) serialise on DIR/.lock.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${1:-${ZV_NODE_DIR:-/var/tmp/zova-test-node}}

command -v node >/dev/null || { echo "node-deps: node is missing (scripts/deps.sh)" >&2; exit 1; }
command -v npm >/dev/null || { echo "node-deps: npm is missing (scripts/deps.sh)" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || { echo "node-deps: node $(node --version) is too old (playwright-core 1.49 needs 18, as Debian 12 has)" >&2; exit 1; }

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
fresh () {
    cmp -s "$HERE/package.json" "$DIR/package.json" || return 1
    local p
    for p in $(node -e 'console.log(Object.keys(require(process.argv[1]).dependencies).join(" "))' "$HERE/package.json"); do
        [ -f "$DIR/node_modules/$p/package.json" ] || return 1
    done
}
if ! fresh; then
    cp "$HERE/package.json" "$DIR/package.json"
    (cd "$DIR" && npm install --no-audit --no-fund --loglevel=error >&2) \
        || { echo "node-deps: npm install failed in $DIR" >&2; exit 1; }
    fresh || { echo "node-deps: packages still missing in $DIR after npm install" >&2; exit 1; }
fi
echo "$DIR/node_modules"
