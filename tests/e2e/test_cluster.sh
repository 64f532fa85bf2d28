#!/usr/bin/env bash
# test_cluster.sh: a cluster of api, conductor, scheduler and three compute
# processes on 127.0.0.1 behaves as zovad all does.
#
# Each compute host runs the libvirt test driver on a node file of its own
# (written here, in three sizes), so placement is visible: the RAM weigher
# prefers the biggest host until it fills, and a host that stops must drop
# out of placement once its service is down.  Then scripts/cluster.sh, the
# ready-made loopback cluster of config/cluster/, is started, pinged,
# inspected and stopped in a directory and on ports of the test's own.

source "$(dirname "$0")/lib.sh"

unset ZOVA_CONFIG
API_PORT=$(t_port)
CONDUCTOR_PORT=$(t_port)
export ZOVA_ENDPOINT="tcp://127.0.0.1:$API_PORT"
CONDUCTOR_EP="tcp://127.0.0.1:$CONDUCTOR_PORT"
COMPUTES=(compute1 compute2 compute3)
declare -A VCPUS=([compute1]=8 [compute2]=16 [compute3]=4)
declare -A MEMORY_MB=([compute1]=16384 [compute2]=32768 [compute3]=8192)

# s_node_file HOST: the host's private hypervisor, sized from VCPUS/MEMORY_MB.
s_node_file () {
    local host=$1 cpus=${VCPUS[$1]}
    cat >"$T_DIR/$host.xml" <<EOF
<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><active>$cpus</active><nodes>1</nodes>
       <sockets>1</sockets><cores>$cpus</cores><threads>1</threads></cpu>
  <memory>$(( ${MEMORY_MB[$host]} * 1024 ))</memory>
</node>
EOF
}

# s_services_up BINARY:HOST...: every named service is listed and up.
s_services_up () {
    t_zova -f json compute service list | python3 -c '
import json, sys
up = {(s["binary"], s["host"]) for s in json.load(sys.stdin) if s["state"] == "up"}
sys.exit(0 if all(tuple(w.split(":")) in up for w in sys.argv[1:]) else 1)' "$@"
}

# s_service_state HOST: the state of HOST's compute service.
s_service_state () {
    t_zova -f json compute service list --service compute | t_json \
        "[s['state'] for s in d if s['host'] == '$1']"
}

# s_usage_matches: every hypervisor's usage is what its live servers claim,
# running_vms included (that one comes with the next heartbeat).
s_usage_matches () {
    t_zova -f json server list >"$T_DIR/servers.json" || return 1
    t_zova -f json hypervisor list >"$T_DIR/hypervisors.json" || return 1
    python3 - "$T_DIR/servers.json" "$T_DIR/hypervisors.json" <<'EOF'
import json, sys
servers = json.load(open(sys.argv[1]))
flavor = {"vcpus": 2, "ram_mb": 4096}
for hv in json.load(open(sys.argv[2])):
    mine = [s for s in servers if s["host"] == hv["host"] and s["status"] == "ACTIVE"]
    want = (2 * len(mine), 4096 * len(mine), len(mine))
    have = (hv["vcpus_used"], hv["memory_mb_used"], hv["running_vms"])
    if want != have:
        print(hv["host"], "want", want, "have", have)
        sys.exit(1)
EOF
}

# s_free_port_pair: a free port whose successor is free too (cluster.sh's block).
s_free_port_pair () {
    python3 -c '
import socket
for _ in range(50):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); port = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", port + 1))
    except OSError:
        a.close(); continue
    a.close(); b.close(); print(port); break'
}

CLUSTER_DIR="$T_DIR/cluster-sh"
s_cleanup () {
    [ -d "$CLUSTER_DIR" ] && ZOVA_CLUSTER_DIR="$CLUSTER_DIR" bash "$ZV_ROOT/scripts/cluster.sh" stop >/dev/null 2>&1
    t_cleanup
}
trap s_cleanup EXIT

echo "== the cluster: api, conductor, scheduler, 3 computes =="
t_config "$T_DIR/conductor.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP"
t_config "$T_DIR/scheduler.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    scheduler.host_refresh_interval_ms=200
t_config "$T_DIR/api.conf" DEFAULT.host=controller api.endpoint="$ZOVA_ENDPOINT" \
    conductor.endpoint="$CONDUCTOR_EP"
for host in "${COMPUTES[@]}"; do
    s_node_file "$host"
    t_config "$T_DIR/$host.conf" DEFAULT.host="$host" conductor.endpoint="$CONDUCTOR_EP" \
        compute.local_gb=100 libvirt.connection_uri="test://$T_DIR/$host.xml"
done
t_start conductor conductor "$T_DIR/conductor.conf"
t_start scheduler scheduler "$T_DIR/scheduler.conf"
for host in "${COMPUTES[@]}"; do t_start "$host" compute "$T_DIR/$host.conf"; done
t_start api api "$T_DIR/api.conf"
t_wait_api 20
t_wait_for "every service up" 20 s_services_up api:controller conductor:controller scheduler:controller \
    compute:compute1 compute:compute2 compute:compute3
t_zova -f json compute service list >"$T_DIR/services.json"
t_eq "compute service list: 6 services, all up" "6 up" \
    "$(t_json '"%d %s" % (len(d), ",".join(sorted({s["state"] for s in d})))' <"$T_DIR/services.json")"
t_eq "compute service list: binaries and hosts" \
    "api@controller compute@compute1 compute@compute2 compute@compute3 conductor@controller scheduler@controller" \
    "$(t_json '" ".join(sorted(s["binary"] + "@" + s["host"] for s in d))' <"$T_DIR/services.json")"

echo "== hypervisors: one per host, sized by its node file =="
s_hypervisors_up () {
    [ "$(t_zova -f json hypervisor list | t_json '",".join(sorted(h["host"] + ":" + h["state"] for h in d))')" \
        = "compute1:up,compute2:up,compute3:up" ]
}
t_wait_for "3 hypervisors up" 10 s_hypervisors_up
t_zova -f json hypervisor list >"$T_DIR/hypervisors.json"
for host in "${COMPUTES[@]}"; do
    t_eq "hypervisor $host: vcpus memory_mb used" "${VCPUS[$host]} ${MEMORY_MB[$host]} 0 0 0" \
        "$(t_json "' '.join(str(h[k]) for h in d if h['host'] == '$host' for k in ('vcpus', 'memory_mb', 'vcpus_used', 'memory_mb_used', 'running_vms'))" <"$T_DIR/hypervisors.json")"
done

echo "== flavors and images =="
t_check "flavor create m1.medium" t_zova -f json flavor create --vcpus 2 --ram 4096 --disk 10 m1.medium
t_check "flavor create huge" t_zova flavor create --vcpus 1 --ram 65536 --disk 1 huge
t_eq "flavor list" "huge m1.medium" \
    "$(t_zova -f json flavor list | t_json '" ".join(sorted(f["name"] for f in d))')"
t_eq "flavor show m1.medium" "2 4096 10" \
    "$(t_zova -f json flavor show m1.medium | t_json '"%d %d %d" % (d["vcpus"], d["ram_mb"], d["disk_gb"])')"
head -c 1048577 /dev/urandom >"$T_DIR/image.raw"
SHA=$(sha256sum "$T_DIR/image.raw" | cut -d' ' -f1)
t_check "image create from a file" t_zova -f json image create --file "$T_DIR/image.raw" cirros
t_eq "image size and checksum" "active 1048577 $SHA" \
    "$(t_zova -f json image show cirros | t_json '"%s %d %s" % (d["status"], d["size"], d["checksum"])')"

echo "== 6 servers at once, spread by the scheduler =="
t_check "server create --min 6 --max 6 --wait" \
    t_zova -f json server create --flavor m1.medium --image cirros --min 6 --max 6 --wait web
t_zova -f json server list >"$T_DIR/servers.json"
t_eq "6 servers ACTIVE, named web-1..web-6" "web-1 web-2 web-3 web-4 web-5 web-6 ACTIVE" \
    "$(t_json '" ".join(sorted(s["name"] for s in d)) + " " + ",".join(sorted({s["status"] for s in d}))' <"$T_DIR/servers.json")"
HOSTS=$(t_json '",".join(sorted({s["host"] for s in d}))' <"$T_DIR/servers.json")
T_CHECKS=$((T_CHECKS + 1))
case "$HOSTS" in
    *,*) t_log "ok: spread over more than one host ($HOSTS)" ;;
    *)   t_fail "6 servers all on one host ($HOSTS)" ;;
esac
t_wait_for "hypervisor usage matches the servers on each host" 10 s_usage_matches
t_check "hypervisor usage matches the servers on each host" s_usage_matches
t_eq "server event list web-1" "create Success" \
    "$(t_zova -f json server event list web-1 | t_json '" ".join(e["action"] + " " + str(e["result"]) for e in d)')"

echo "== a server no host can hold =="
t_check_fails "server create --wait of a too big server fails" "No valid host was found" \
    t_zova server create --flavor huge --image cirros --wait big
t_eq "too big server is ERROR with its fault" "ERROR True" \
    "$(t_zova -f json server show big | t_json 'd["status"] + " " + str("No valid host was found" in (d["fault"] or ""))')"
t_eq "server event list big" "create Error" \
    "$(t_zova -f json server event list big | t_json '" ".join(e["action"] + " " + str(e["result"]) for e in d)')"
t_check "usage unchanged by the failed build" s_usage_matches

echo "== delete all =="
t_check "server delete --wait" t_zova server delete --wait web-1 web-2 web-3 web-4 web-5 web-6 big
t_eq "server list is empty" "0" "$(t_zova -f json server list | t_json 'len(d)')"
t_eq "server list --deleted shows them DELETED" "big web-1 web-2 web-3 web-4 web-5 web-6 DELETED" \
    "$(t_zova -f json server list --deleted | t_json '" ".join(sorted(s["name"] for s in d)) + " " + ",".join(sorted({s["status"] for s in d}))')"
t_wait_for "hypervisors back to 0 used" 10 s_usage_matches
t_eq "hypervisor usage back to 0" "0 0 0" \
    "$(t_zova -f json hypervisor list | t_json '" ".join(str(sum(h[k] for h in d)) for k in ("vcpus_used", "memory_mb_used", "running_vms"))')"

echo "== a compute host stops =="
# compute2 is the biggest host, the one the RAM weigher prefers.
t_stop compute2
# Until its service is seen down the scheduler may still pick compute2: the
# conductor finds it unreachable and reschedules on another host.
t_check "server create --wait right after compute2 stopped" \
    t_zova server create --flavor m1.medium --image cirros --min 2 --max 2 --wait early
t_eq "early servers ACTIVE on the live hosts only" "2 ACTIVE True" \
    "$(t_zova -f json server list | t_json '"%d %s %s" % (len(d), ",".join(sorted({s["status"] for s in d})), all(s["host"] in ("compute1", "compute3") for s in d))')"
t_check "delete the early servers --wait" t_zova server delete --wait early-1 early-2
s_compute2_down () { [ "$(s_service_state compute2)" = "['down']" ]; }
t_wait_for "compute2 service down after service_down_time" 10 s_compute2_down
t_eq "compute service list: compute2 down" "['down']" "$(s_service_state compute2)"
t_eq "compute service list: the others up" "['up'] ['up']" "$(s_service_state compute1) $(s_service_state compute3)"
t_eq "hypervisor compute2 down" "down" \
    "$(t_zova -f json hypervisor list | t_json '[h["state"] for h in d if h["host"] == "compute2"][0]')"
t_check "server create --min 3 --max 3 --wait with compute2 down" \
    t_zova server create --flavor m1.medium --image cirros --min 3 --max 3 --wait after
t_zova -f json server list >"$T_DIR/servers.json"
t_eq "new servers ACTIVE on the live hosts only" "3 ACTIVE True" \
    "$(t_json '"%d %s %s" % (len(d), ",".join(sorted({s["status"] for s in d})), all(s["host"] in ("compute1", "compute3") for s in d))' <"$T_DIR/servers.json")"
t_check "delete them --wait" t_zova server delete --wait after-1 after-2 after-3

echo "== stop the rest with SIGTERM =="
for name in api compute1 compute3 scheduler conductor; do t_stop "$name"; done

echo "== scripts/cluster.sh =="
s_cluster () {
    ZOVA_CLUSTER_DIR="$CLUSTER_DIR" ZOVA_CLUSTER_PORT_BASE="$BASE" ZV_BUILD="$ZV_BUILD" \
        bash "$ZV_ROOT/scripts/cluster.sh" "$@"
}
BASE=$(s_free_port_pair)
t_check "cluster.sh start" s_cluster start
t_eq "cluster.sh start prints the endpoint" "export ZOVA_ENDPOINT=tcp://127.0.0.1:$BASE" "$(cat "$T_DIR/last.out")"
t_check "zova ping at the printed endpoint" sh -c "$(cat "$T_DIR/last.out") && '$ZOVA' --timeout 5 ping"
t_check "cluster.sh start again says it runs" s_cluster start
t_eq "second start: same endpoint" "export ZOVA_ENDPOINT=tcp://127.0.0.1:$BASE" "$(cat "$T_DIR/last.out")"
T_CHECKS=$((T_CHECKS + 1))
if grep -q "already running" "$T_DIR/last.err"; then t_log "ok: second start says already running"
else t_fail "second start does not say already running: $(cat "$T_DIR/last.err")"; fi
t_check "cluster.sh status (all running)" s_cluster status
t_eq "status: 6 processes running" "6" "$(grep -c ' running (pid ' "$T_DIR/last.out")"
t_eq "cluster hypervisors from config/cluster node files" "compute1:8:16384 compute2:16:32768 compute3:4:8192" \
    "$("$ZOVA" --endpoint "tcp://127.0.0.1:$BASE" --timeout 5 -f json hypervisor list |
        t_json '" ".join(sorted("%s:%d:%d" % (h["host"], h["vcpus"], h["memory_mb"]) for h in d))')"
t_check "cluster.sh stop" s_cluster stop
t_eq "stop: 6 processes stopped" "6" "$(grep -c '^cluster: stopped ' "$T_DIR/last.err")"
STATUS_RC=0
s_cluster status >"$T_DIR/last.out" 2>"$T_DIR/last.err" || STATUS_RC=$?
t_eq "cluster.sh status after stop exits 3 (not running)" "3" "$STATUS_RC"
t_eq "status: 6 processes stopped" "6" "$(grep -Ec '^[a-z0-9]+ +stopped$' "$T_DIR/last.out")"
t_eq "no PID files left" "" "$(compgen -G "$CLUSTER_DIR/*.pid")"
for log in "$CLUSTER_DIR"/*.log; do
    name=$(basename "$log" .log)
    T_CHECKS=$((T_CHECKS + 1))
    if grep -Eq 'Sanitizer|runtime error|an actor stopped' "$log" || ! tail -1 "$log" | grep -q 'zovad .* stopped'; then
        t_fail "cluster.sh $name did not stop cleanly: $(tail -3 "$log")"
    else
        t_log "ok: cluster.sh $name stopped cleanly"
    fi
done

t_done
