#!/usr/bin/env bash
# test_badinput.sh: bad input never crashes an actor nor damages the store.
#
# Two deployments: `zovad all` (its api ROUTER on tcp; the conductor is
# inproc there) and a cluster of one zovad per role, whose conductor ROUTER
# is on tcp.  Each gets a flavor, an image, an ACTIVE server and a deleted
# one, and a baseline of its listings.  zv_badinput then sends every
# malformed-frame case to both api sockets and to the cluster's conductor,
# anonymously and as its compute peer.  Afterwards every daemon must be
# alive, the apis must answer and build a new server to ACTIVE, the baseline
# records must be unchanged, the logs must carry a warning with the request
# id of a refused request, and every daemon must stop cleanly on SIGTERM
# (under the sanitized build, a leak or UB at exit is a non-zero exit).

source "$(dirname "$0")/lib.sh"
BADINPUT="$ZV_BUILD/tools/zv_badinput"
T_TIMEOUT=10
# virInitialize (through curl and libssh2) makes OpenSSL allocate per-thread
# error state on the compute actor's thread, which LeakSanitizer sometimes
# reports at exit of `zovad compute` (904 bytes from CRYPTO_zalloc, with or
# without any bad input).  zova's own use of libcrypto (zv_sha256: EVP
# contexts) frees what it allocates, as the unit tests under valgrind
# show; so that one library is suppressed, nothing of zova's.
echo "leak:libcrypto.so" >"$T_DIR/lsan.supp"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$T_DIR/lsan.supp"

echo "$T_NAME: malformed frames to the api and conductor sockets"
if [ ! -x "$BADINPUT" ]; then
    t_fail "$BADINPUT is not built (make all)"
    t_done
    exit
fi

API_A="tcp://127.0.0.1:$(t_port)"
API_B="tcp://127.0.0.1:$(t_port)"
COND_B="tcp://127.0.0.1:$(t_port)"
HOST_B=nodeb

t_config "$T_DIR/all.conf" DEFAULT.host=nodea DEFAULT.state_path="$T_DIR/var-a" \
    api.endpoint="$API_A" api.request_timeout=5 scheduler.host_refresh_interval_ms=100
t_config "$T_DIR/cluster.conf" DEFAULT.host=$HOST_B DEFAULT.state_path="$T_DIR/var-b" \
    api.endpoint="$API_B" api.request_timeout=5 conductor.endpoint="$COND_B" \
    scheduler.host_refresh_interval_ms=100

t_start all all "$T_DIR/all.conf"
t_start conductor conductor "$T_DIR/cluster.conf"
t_start scheduler scheduler "$T_DIR/cluster.conf"
t_start compute compute "$T_DIR/cluster.conf"
t_start api api "$T_DIR/cluster.conf"
DAEMONS="all conductor scheduler compute api"

za () { ZOVA_ENDPOINT=$API_A t_zova "$@"; }
zb () { ZOVA_ENDPOINT=$API_B t_zova "$@"; }

t_wait_for "api of zovad all" 20 za ping
t_wait_for "api of the cluster" 20 zb ping
# Each compute must have reported its node before a build can fit.
t_wait_for "hypervisor of zovad all" 20 bash -c "ZOVA_ENDPOINT=$API_A '$ZOVA' -f json hypervisor list | grep -q nodea"
t_wait_for "hypervisor of the cluster" 20 bash -c "ZOVA_ENDPOINT=$API_B '$ZOVA' -f json hypervisor list | grep -q $HOST_B"

head -c 65536 /dev/urandom >"$T_DIR/image.raw"

# warm Z: until Z's scheduler has seen its compute node, a build finds no
# valid host; poll with a throwaway server until one reaches ACTIVE.
warm () {
    local z=$1
    local deadline=$(( $(date +%s) + 20 ))
    while [ "$(date +%s)" -lt $deadline ]; do
        if $z server create --flavor tiny --image cirros --wait --wait-timeout 10 warm >/dev/null 2>&1; then
            $z server delete --wait --wait-timeout 10 warm >/dev/null 2>&1
            return 0
        fi
        $z server delete --wait --wait-timeout 10 warm >/dev/null 2>&1
        sleep 0.1
    done
    return 1
}

# setup Z: flavor, image, an ACTIVE server and a deleted one on deployment Z.
setup () {
    local z=$1
    t_check "$z: flavor create" $z flavor create --vcpus 1 --ram 64 --disk 1 tiny
    t_check "$z: image create" $z image create --file "$T_DIR/image.raw" cirros
    t_check "$z: scheduler sees the compute node" warm $z
    t_check "$z: server create --wait" $z server create --flavor tiny --image cirros --wait --wait-timeout 20 keep
    t_check "$z: doomed server create --wait" $z server create --flavor tiny --image cirros --wait --wait-timeout 20 doomed
    t_check "$z: doomed server delete --wait" $z server delete --wait --wait-timeout 20 doomed
}

# Fields that must not change, one line per record, sorted.
servers_of () { $1 -f json server list | t_json '"\n".join(sorted("%s %s %s %s %s %s %s" % (s["id"], s["name"], s["status"], s["vm_state"], s["task_state"], s["power_state"], s["host"]) for s in d))'; }
flavors_of () { $1 -f json flavor list | t_json '"\n".join(sorted("%s %s %s %s %s" % (f["id"], f["name"], f["vcpus"], f["ram_mb"], f["disk_gb"]) for f in d))'; }
images_of () { $1 -f json image list | t_json '"\n".join(sorted("%s %s %s %s %s" % (i["id"], i["name"], i["status"], i["size"], i["checksum"]) for i in d))'; }
server_id () { $1 -f json server show "$2" | t_json 'd.get("id") or d.get("uuid")'; }

setup za
setup zb
for z in za zb; do
    servers_of $z >"$T_DIR/$z.servers"
    flavors_of $z >"$T_DIR/$z.flavors"
    images_of $z >"$T_DIR/$z.images"
done
KEEP_A=$(server_id za keep)
KEEP_B=$(server_id zb keep)
# A deleted server is found by uuid only: take it from the deleted listing.
deleted_id () { $1 -f json server list --deleted | t_json '[s["id"] for s in d if s["name"] == "doomed"][0]'; }
DEL_A=$(deleted_id za)
DEL_B=$(deleted_id zb)
t_eq "baseline: one ACTIVE server on zovad all" 1 "$(grep -c " keep ACTIVE " "$T_DIR/za.servers")"
t_eq "baseline: one ACTIVE server on the cluster" 1 "$(grep -c " keep ACTIVE " "$T_DIR/zb.servers")"
t_eq "baseline: a deleted server on zovad all" 36 "${#DEL_A}"
t_eq "baseline: a deleted server on the cluster" 36 "${#DEL_B}"

# badinput LABEL ARGS...: run every case; each case line is one check.
# A reply may take 10 s (the tool's default is 3): beside another test's
# burst (run-e2e.sh's lanes) a sanitized conductor answered in over 3 s;
# a peer that hangs or dies is still caught.
badinput () {
    local label=$1; shift
    local out="$T_DIR/badinput-$label.out" rc=0
    "$BADINPUT" --timeout 10 "$@" all >"$out" 2>"$T_DIR/badinput-$label.err" || rc=$?
    local verdict case rest
    while read -r verdict case rest; do
        case $verdict in
            ok)   T_CHECKS=$((T_CHECKS + 1)); echo "  ok: $label: ${case%:} ($rest)" ;;
            skip) echo "  skip: $label: ${case%:} $rest" ;;
            *)    t_fail "$label: ${case%:} $rest" ;;
        esac
    done <"$out"
    T_CHECKS=$((T_CHECKS + 1))
    if [ ! -s "$out" ] || { [ "$rc" -ne 0 ] && ! grep -q '^FAIL' "$out"; }; then
        t_fail "$label: zv_badinput exited $rc: $(head -c 600 "$T_DIR/badinput-$label.err")"
    fi
}

badinput "api(all)" "$API_A" --service api --deleted "$DEL_A"
badinput "api(cluster)" "$API_B" --service api --deleted "$DEL_B"
badinput "conductor" "$COND_B" --service conductor --server "$KEEP_B" --deleted "$DEL_B"
# Builds still reach the compute before anyone borrows its identity.
t_check "cluster: new server reaches ACTIVE after the anonymous conductor run" \
    zb server create --flavor tiny --image cirros --wait --wait-timeout 20 between
badinput "conductor as compute.$HOST_B" "$COND_B" --service conductor --identity "compute.$HOST_B" \
    --server "$KEEP_B" --deleted "$DEL_B"

# Every daemon survived all of it.
for name in $DAEMONS; do
    eval "pid=\$T_PID_$name"
    t_check "$name (pid $pid) still running" kill -0 "$pid"
done
t_check "api of zovad all answers" za ping
t_check "api of the cluster answers" zb ping

# Nothing of it reached the store: the baseline is intact ...
for z in za zb; do
    t_eq "$z: flavors unchanged" "$(cat "$T_DIR/$z.flavors")" "$(flavors_of $z)"
    t_eq "$z: images unchanged" "$(cat "$T_DIR/$z.images")" "$(images_of $z)"
    t_eq "$z: baseline servers unchanged" "$(cat "$T_DIR/$z.servers")" \
        "$(servers_of $z | grep -F -f <(cut -d' ' -f1 "$T_DIR/$z.servers"))"
    t_eq "$z: no server made of bad input" "" \
        "$($z -f json server list --deleted | t_json '" ".join(s["name"] for s in d if s["name"] not in ("keep", "doomed", "warm", "between"))')"
done
t_eq "deleted server still deleted (all)" "True DELETED" \
    "$(za -f json server show "$DEL_A" | t_json '"%s %s" % (d["deleted"], d["status"])')"
t_eq "deleted server still deleted (cluster)" "True DELETED" \
    "$(zb -f json server show "$DEL_B" | t_json '"%s %s" % (d["deleted"], d["status"])')"

# ... the cluster's compute is heard again: its identity was borrowed, so
# its link noticed the unanswered heartbeats and reconnected by itself ...
AFTER=$(date -u -d '+1 second' +%Y-%m-%dT%H:%M:%SZ)
heard_again () {
    zb -f json compute service list --service compute | python3 -c '
import json,sys
d=json.load(sys.stdin)
sys.exit(0 if any(s["host"]==sys.argv[1] and s["updated_at"]>sys.argv[2] for s in d) else 1)' "$HOST_B" "$AFTER"
}
t_wait_for "cluster: compute heartbeats arrive again" 20 heard_again && T_CHECKS=$((T_CHECKS + 1))
t_eq "cluster: compute service up" up \
    "$(zb -f json compute service list --service compute | t_json '" ".join(s["state"] for s in d if s["host"] == "'$HOST_B'")')"

# ... and both still build.
t_check "zovad all: new server reaches ACTIVE" za server create --flavor tiny --image cirros --wait --wait-timeout 20 after
t_eq "zovad all: new server status" ACTIVE "$(za -f json server show after | t_json 'd["status"]')"
t_check "cluster: new server reaches ACTIVE" zb server create --flavor tiny --image cirros --wait --wait-timeout 20 after
t_eq "cluster: new server status" ACTIVE "$(zb -f json server show after | t_json 'd["status"]')"

# A refused request left a warning with its request id in the log: one
# refused by the catalogue, one refused by the codec (a body too big to
# decode still has an envelope that names its request).
rq_of () { grep "^[a-zA-Z]* $2:" "$T_DIR/badinput-$1.out" | grep -o 'rq=req-[0-9a-f-]*' | tail -1 | cut -d= -f2; }
logged () {
    local run=$1 case=$2 log=$3 rq
    rq=$(rq_of "$run" "$case")
    t_check "$run: $case: warning logged with rq ${rq:-(none printed)}" grep -q "^W: .*rq=${rq:-none} " "$T_DIR/$log"
}
logged "api(all)" wrong_type_field all.log
logged "api(all)" oversized_string all.log
logged "api(cluster)" missing_field api.log
logged conductor wrong_type_field conductor.log
logged conductor oversized_string conductor.log

# SIGTERM: each stops cleanly, the conductor last.
for name in all api compute scheduler conductor; do
    t_stop "$name"
done
t_done
