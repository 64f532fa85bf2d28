#!/usr/bin/env bash
# test_restart: restarts lose nothing and leave nothing half-done.
#   1. kill -9 the conductor in the middle of a burst of boots, start it
#      again: settled servers, flavors and images are exactly as before;
#      every burst instance ends ACTIVE or ERROR (never stuck in a task
#      state); usage and running domains agree with the ACTIVE ones.
#   2. kill -9 the conductor right after a burst of deletes: every delete
#      is finished after the restart and every claim released.
#   3. kill -9 compute: its (test driver) domains vanish with it; after the
#      restart the sync reports them as Nova's power-state sync would
#      (power nostate, vm_state stopped, SHUTOFF).
. "$(dirname "$0")/lib.sh"

API="tcp://127.0.0.1:$(t_port)"
COND="tcp://127.0.0.1:$(t_port)"
export ZOVA_ENDPOINT=$API
cat >"$T_DIR/node.xml" <<XML
<node><cpu><mhz>2400</mhz><model>x86_64</model><active>64</active><nodes>1</nodes>
<sockets>1</sockets><cores>64</cores><threads>1</threads></cpu><memory>67108864</memory></node>
XML
COMMON=("api.endpoint=$API" "api.request_timeout=5" "conductor.endpoint=$COND"
        "conductor.build_timeout=8" "conductor.housekeeping_interval=1" "conductor.rpc_timeout=5"
        "scheduler.host_refresh_interval_ms=200")
t_config "$T_DIR/zova.conf" "${COMMON[@]}"
t_config "$T_DIR/compute.conf" "${COMMON[@]}" "libvirt.connection_uri=test://$T_DIR/node.xml"
sed -i "s/^\[DEFAULT\]/[DEFAULT]\nhost = node1/" "$T_DIR/compute.conf"

t_start conductor conductor "$T_DIR/zova.conf"
t_start scheduler scheduler "$T_DIR/zova.conf"
t_start compute compute "$T_DIR/compute.conf"
t_start api api "$T_DIR/zova.conf"
t_wait_api 30 || exit 1
t_wait_for "compute up" 20 bash -c "\"$ZOVA\" hypervisor list -f json | grep -q node1"

t_check "flavor" t_zova flavor create --vcpus 1 --ram 64 --disk 1 tiny
head -c 100000 /dev/urandom >"$T_DIR/img"
t_check "image" t_zova image create --file "$T_DIR/img" img
t_check "settled servers" t_zova server create --flavor tiny --image img --min 5 --max 5 --wait settled
snapshot () {
    t_zova server list -f json | python3 -c '
import json,sys
d=json.load(sys.stdin)
for s in sorted(d, key=lambda s: s["id"]):
    if s["name"].startswith("settled"):
        print(s["id"], s["name"], s["status"], s["vm_state"], s["task_state"], s["power_state"], s["host"], s["launched_at"])'
}
SETTLED=$(snapshot)
FLAVORS=$(t_zova flavor list -f json | t_json 'sorted((f["id"], f["name"], f["ram_mb"]) for f in d)')
IMAGES=$(t_zova image list -f json | t_json 'sorted((i["id"], i["name"], i["checksum"], i["status"]) for i in d)')

# 1. kill -9 the conductor mid-burst.
CLIENTS=()
for n in 1 2 3 4; do
    "$ZOVA" --timeout 5 server create --flavor tiny --image img --min 20 --max 20 "burst$n" >/dev/null 2>&1 &
    CLIENTS+=($!)
done
for n in $(seq 10); do
    "$ZOVA" --timeout 5 server create --flavor tiny --image img "one$n" >/dev/null 2>&1 &
    CLIENTS+=($!)
done
#  Kill as soon as the first instances exist: the burst is then in flight.
T_WAIT_PAUSE_MAX=1 t_wait_for "the burst has begun" 10 bash -c "[ \"\$(\"$ZOVA\" server list -f json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')\" -gt 5 ]"
t_kill9 conductor
wait "${CLIENTS[@]}" 2>/dev/null
t_start conductor conductor "$T_DIR/zova.conf"
t_wait_api 30

settled_all () {
    t_zova server list -f json | python3 -c '
import json,sys
d=json.load(sys.stdin)
bad=[s for s in d if s["task_state"] is not None or s["status"] not in ("ACTIVE","ERROR")]
sys.exit(1 if bad else 0)'
}
t_wait_for "every instance ACTIVE or ERROR, none in a task state" 40 settled_all
t_eq "settled servers unchanged" "$SETTLED" "$(snapshot)"
t_eq "flavors unchanged" "$FLAVORS" "$(t_zova flavor list -f json | t_json 'sorted((f["id"], f["name"], f["ram_mb"]) for f in d)')"
t_eq "images unchanged" "$IMAGES" "$(t_zova image list -f json | t_json 'sorted((i["id"], i["name"], i["checksum"], i["status"]) for i in d)')"
ACTIVE=$(t_zova server list -f json | t_json 'len([s for s in d if s["status"]=="ACTIVE"])')
ERRORS=$(t_zova server list -f json | t_json 'len([s for s in d if s["status"]=="ERROR"])')
t_log "after the restart: $ACTIVE ACTIVE, $ERRORS ERROR (of a burst of up to 90)"
t_eq "every ERROR has a fault" "True" "$(t_zova server list -f json | t_json 'all(s["fault"] for s in d if s["status"]=="ERROR")')"
t_eq "usage = ACTIVE servers (no leaked claim)" "$ACTIVE $((ACTIVE * 64))" \
    "$(t_zova hypervisor show node1 -f json | t_json '"%d %d" % (d["vcpus_used"], d["memory_mb_used"])')"
t_wait_for "running domains = ACTIVE servers" 15 bash -c \
    "\"$ZOVA\" hypervisor show node1 -f json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)[\"running_vms\"]==$ACTIVE else 1)'"

# 2. kill -9 the conductor right after deletes.
IDS=$(t_zova server list -f json | t_json '" ".join(s["id"] for s in d)')
CLIENTS=()
for id in $IDS; do "$ZOVA" --timeout 5 server delete "$id" >/dev/null 2>&1 & CLIENTS+=($!); done
sleep 0.2
t_kill9 conductor
wait "${CLIENTS[@]}" 2>/dev/null
t_start conductor conductor "$T_DIR/zova.conf"
t_wait_api 30
for id in $IDS; do "$ZOVA" --timeout 5 server delete "$id" >/dev/null 2>&1; done   # the ones that never arrived
t_wait_for "every server deleted" 90 bash -c "[ \"\$(\"$ZOVA\" server list -f json)\" = '[]' ]"
t_eq "all claims released" "0 0" \
    "$(t_zova hypervisor show node1 -f json | t_json '"%d %d" % (d["vcpus_used"], d["memory_mb_used"])')"
t_wait_for "no domain left on the host" 15 bash -c \
    "\"$ZOVA\" hypervisor show node1 -f json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)[\"running_vms\"]==0 else 1)'"
t_eq "every delete action finished" "True" "$(t_zova server list --deleted -f json | t_json 'all(s["status"]=="DELETED" for s in d)')"

# 3. kill -9 compute: its domains vanish.
t_check "two servers" t_zova server create --flavor tiny --image img --min 2 --max 2 --wait keep
t_kill9 compute
t_start compute compute "$T_DIR/compute.conf"
vanished () {
    t_zova server list -f json | python3 -c '
import json,sys
d=json.load(sys.stdin)
sys.exit(0 if d and all(s["status"]=="SHUTOFF" and s["power_state"]=="nostate" for s in d) else 1)'
}
t_wait_for "vanished domains reported SHUTOFF / nostate" 20 vanished
t_check "delete them" t_zova server delete --wait keep-1 keep-2

t_stop api
t_stop compute
t_stop scheduler
t_stop conductor
t_done
