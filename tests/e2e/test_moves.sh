#!/usr/bin/env bash
# test_moves.sh: moving servers on the simulated path (libvirt's test
# driver), through the CLI, on a cluster of one conductor, scheduler and
# api and three compute hosts, each with a private test:///node.xml
# hypervisor (so a domain defined on one host is not on another).
#
# Cold migration to VERIFY_RESIZE and confirm; resize and revert (the old
# flavor back on the source); a stopped server stays stopped; --host and
# its refusals; evacuate off a host forced down (one server, then a whole
# host); and at every end, placement's usage is what the servers use.
# Real guests between two real libvirtds are test_moves_guests.sh's.

source "$(dirname "$0")/lib.sh"

unset ZOVA_CONFIG
API_PORT=$(t_port)
export ZOVA_ENDPOINT="tcp://127.0.0.1:$API_PORT"
CONDUCTOR_EP="tcp://127.0.0.1:$(t_port)"
HOSTS=(m1 m2 m3)

s_node_file () {
    cat >"$T_DIR/$1.xml" <<EOF
<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><active>8</active><nodes>1</nodes>
       <sockets>1</sockets><cores>8</cores><threads>1</threads></cpu>
  <memory>$(( 16384 * 1024 ))</memory>
</node>
EOF
}

t_config "$T_DIR/conductor.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    conductor.housekeeping_interval=1
t_config "$T_DIR/scheduler.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    scheduler.host_refresh_interval_ms=200
t_config "$T_DIR/api.conf" DEFAULT.host=controller api.endpoint="$ZOVA_ENDPOINT" conductor.endpoint="$CONDUCTOR_EP"
for host in "${HOSTS[@]}"; do
    s_node_file "$host"
    t_config "$T_DIR/$host.conf" DEFAULT.host="$host" conductor.endpoint="$CONDUCTOR_EP" \
        compute.local_gb=100 libvirt.connection_uri="test://$T_DIR/$host.xml"
done
t_start conductor conductor "$T_DIR/conductor.conf"
t_start scheduler scheduler "$T_DIR/scheduler.conf"
for host in "${HOSTS[@]}"; do t_start "$host" compute "$T_DIR/$host.conf"; done
t_start api api "$T_DIR/api.conf"
t_wait_api 20
s_hypervisors_up () { [ "$(t_zova -f json hypervisor list | t_json 'sum(1 for h in d if h["state"] == "up")')" = 3 ]; }
t_wait_for "3 hypervisors up" 20 s_hypervisors_up

t_check "flavor tiny" t_zova flavor create --vcpus 1 --ram 512 --disk 1 tiny
t_check "flavor small" t_zova flavor create --vcpus 2 --ram 1024 --disk 2 small
t_check "flavor tinier (less disk)" t_zova flavor create --vcpus 1 --ram 256 --disk 0 tinier
head -c 65536 /dev/urandom >"$T_DIR/image.raw"
t_check "image create" t_zova image create --file "$T_DIR/image.raw" cirros

# show SERVER FIELD...: the fields of server show, space-separated.
show () {
    local server=$1; shift
    t_zova -f json server show "$server" | python3 -c '
import json, sys
d = json.load(sys.stdin)
out = []
for k in sys.argv[1:]:
    v = d
    for part in k.split("."):
        v = v.get(part) if isinstance(v, dict) else None
    out.append(str(v))
print(" ".join(out))' "$@"
}

# s_usage_matches: each host's usage is the sum of the flavors of the live
# servers on it, and of the moves waiting on it (VERIFY_RESIZE holds both
# hosts, as Nova's migration-based allocations do).
s_usage_matches () {
    t_zova -f json server list >"$T_DIR/servers.json" || return 1
    t_zova -f json hypervisor list >"$T_DIR/hypervisors.json" || return 1
    t_zova -f json migration list --status finished >"$T_DIR/waiting.json" || return 1
    python3 - "$T_DIR/servers.json" "$T_DIR/hypervisors.json" "$T_DIR/waiting.json" <<'EOF'
import json, sys
servers = json.load(open(sys.argv[1]))
hypervisors = json.load(open(sys.argv[2]))
waiting = json.load(open(sys.argv[3]))
want = {h["host"]: 0 for h in hypervisors}
ram = {"tiny": 512, "small": 1024, "tinier": 256}
for s in servers:
    if s.get("host"):
        want[s["host"]] += ram[s["flavor"]]
for m in waiting:
    want[m["source_host"]] += m["old_flavor"]["ram_mb"]
have = {h["host"]: h["memory_mb_used"] for h in hypervisors}
if want != have:
    print("want", want, "have", have)
    sys.exit(1)
EOF
}

echo "== a cold migration, then confirm =="
t_check "server create vm1 on m1" t_zova server create --flavor tiny --image cirros --availability-zone nova:m1 --wait vm1
t_eq "vm1 ACTIVE on m1" "ACTIVE m1" "$(show vm1 status host)"
t_check "server migrate --wait vm1" t_zova server migrate --wait vm1
t_eq "vm1 waits in VERIFY_RESIZE elsewhere" "VERIFY_RESIZE None" "$(show vm1 status task_state)"
DEST=$(show vm1 host)
t_eq "vm1 left m1" "yes" "$([ "$DEST" != m1 ] && [ -n "$DEST" ] && echo yes)"
t_zova -f json server migration list vm1 >"$T_DIR/mig.json"
t_eq "one migration record: kind, hosts, status" "migration m1 $DEST finished" \
    "$(t_json '"%s %s %s %s" % (d[0]["kind"], d[0]["source_host"], d[0]["dest_host"], d[0]["status"])' <"$T_DIR/mig.json")"
t_check "usage while it waits: both hosts hold it" s_usage_matches
t_check "server resize confirm --wait vm1" t_zova server resize confirm --wait vm1
t_eq "vm1 ACTIVE on its new host" "ACTIVE $DEST running" "$(show vm1 status host power_state)"
t_eq "migration confirmed" "confirmed" "$(t_zova -f json server migration list vm1 | t_json 'd[0]["status"]')"
t_check "usage after confirm" s_usage_matches
t_eq "the action log" "create migrate confirmResize" \
    "$(t_zova -f json server event list vm1 | t_json '" ".join(e["action"] for e in d)')"

echo "== a resize, then revert =="
SRC=$(show vm1 host)
t_check "server resize --flavor small --wait vm1" t_zova server resize --flavor small --wait vm1
t_eq "vm1 in VERIFY_RESIZE with flavor small" "VERIFY_RESIZE small" "$(show vm1 status flavor)"
t_check "usage while it waits" s_usage_matches
t_check "server resize revert --wait vm1" t_zova server resize revert --wait vm1
t_eq "vm1 back where it was, flavor tiny" "ACTIVE $SRC tiny" "$(show vm1 status host flavor)"
t_eq "migration reverted, kind resize" "resize reverted" \
    "$(t_zova -f json server migration list vm1 | t_json '"%s %s" % (d[0]["kind"], d[0]["status"])')"
t_check "usage after revert" s_usage_matches

echo "== a stopped server stays stopped =="
t_check "server create vm2" t_zova server create --flavor tiny --image cirros --wait vm2
t_check "server stop --wait vm2" t_zova server stop --wait vm2
VM2_SRC=$(show vm2 host)
t_check "server migrate --wait vm2" t_zova server migrate --wait vm2
t_check "server resize confirm --wait vm2" t_zova server resize confirm --wait vm2
t_eq "vm2 SHUTOFF on another host" "SHUTOFF yes" \
    "$(echo "$(show vm2 status) $([ "$(show vm2 host)" != "$VM2_SRC" ] && echo yes)")"

echo "== --host, and what is refused =="
HERE=$(show vm1 host)
THERE=$(for h in "${HOSTS[@]}"; do [ "$h" != "$HERE" ] && echo "$h" && break; done)
t_check "server migrate --host $THERE --wait vm1" t_zova server migrate --host "$THERE" --wait vm1
t_eq "vm1 went where it was told" "$THERE" "$(show vm1 host)"
t_check "confirm" t_zova server resize confirm --wait vm1
t_eq "migrate to its own host is refused, Nova's words" "yes" \
    "$(t_zova server migrate --host "$THERE" vm1 2>&1 | grep -q "to current host ($THERE)" && echo yes)"
t_eq "migrate to an unknown host is refused" "yes" \
    "$(t_zova server migrate --host nowhere vm1 2>&1 | grep -q 'Compute host nowhere could not be found' && echo yes)"
OTHER=$(for h in "${HOSTS[@]}"; do [ "$h" != "$THERE" ] && echo "$h" && break; done)
t_check "disable $OTHER" t_zova compute service set --disable --reason maint "$OTHER"
t_eq "migrate to a disabled host is refused" "yes" \
    "$(t_zova server migrate --host "$OTHER" vm1 2>&1 | grep -q "Compute service of $OTHER is unavailable" && echo yes)"
t_check "enable $OTHER" t_zova compute service set --enable "$OTHER"
t_eq "resize to the same flavor is refused" "yes" \
    "$(t_zova server resize --flavor tiny vm1 2>&1 | grep -q 'must change flavor' && echo yes)"
t_eq "resize to a smaller disk is refused" "yes" \
    "$(t_zova server resize --flavor tinier vm1 2>&1 | grep -q 'smaller disk flavor is not allowed' && echo yes)"
t_eq "confirm with no resize pending is refused" "yes" \
    "$(t_zova server resize confirm vm1 2>&1 | grep -q 'no resize waiting' && echo yes)"
t_eq "evacuate off a host that is up is refused" "yes" \
    "$(t_zova server evacuate vm1 2>&1 | grep -q "Compute service of $THERE is still in use" && echo yes)"
t_eq "nothing changed: ACTIVE where it was" "ACTIVE $THERE None" "$(show vm1 status host task_state)"
t_eq "no migration was opened by a refusal (three moves of vm1)" "3" "$(t_zova -f json migration list | t_json 'len([m for m in d if m["instance_uuid"] == "'"$(show vm1 id)"'"])')"

echo "== evacuate: one server, then a whole host =="
VICTIM=$(show vm1 host)
t_check "server create vm3, vm4 on $VICTIM" \
    t_zova server create --flavor tiny --image cirros --availability-zone "nova:$VICTIM" --min 2 --max 2 --wait vm3
t_check "compute service set --down $VICTIM" t_zova compute service set --down "$VICTIM"
t_eq "its service shows down" "down" \
    "$(t_zova -f json compute service list | t_json '[s["state"] for s in d if s["binary"] == "compute" and s["host"] == "'"$VICTIM"'"][0]')"
t_check "server evacuate --wait vm1" t_zova server evacuate --wait vm1
t_eq "vm1 ACTIVE elsewhere" "ACTIVE yes" "$(echo "$(show vm1 status) $([ "$(show vm1 host)" != "$VICTIM" ] && echo yes)")"
t_eq "its migration: an evacuation, done" "evacuation done" \
    "$(t_zova -f json server migration list vm1 | t_json '"%s %s" % (d[0]["kind"], d[0]["status"])')"
t_check "host evacuate --wait $VICTIM" t_zova host evacuate --wait "$VICTIM"
t_eq "nothing left on $VICTIM" "0" \
    "$(t_zova -f json server list | t_json 'len([s for s in d if s["host"] == "'"$VICTIM"'"])')"
t_eq "every server ACTIVE or SHUTOFF, none in a task" "ok" \
    "$(t_zova -f json server list | t_json '"ok" if all(s["status"] in ("ACTIVE", "SHUTOFF") and not s.get("task_state") for s in d) else d')"
t_check "usage after the evacuations" s_usage_matches
t_check "compute service set --up $VICTIM" t_zova compute service set --up "$VICTIM"

echo "== live migration on the simulated path =="
t_check "server create vm5" t_zova server create --flavor tiny --image cirros --wait vm5
LSRC=$(show vm5 host)
t_check "server migrate --live-migration --wait vm5" t_zova server migrate --live-migration --wait vm5
t_eq "vm5 ACTIVE and running on another host, no task" "ACTIVE running None yes" \
    "$(echo "$(show vm5 status power_state task_state) $([ "$(show vm5 host)" != "$LSRC" ] && echo yes)")"
t_eq "its migration: live, completed, between the two hosts" "live-migration completed $LSRC $(show vm5 host)" \
    "$(t_zova -f json server migration list vm5 | t_json '"%s %s %s %s" % (d[0]["kind"], d[0]["status"], d[0]["source_host"], d[0]["dest_host"])')"
t_eq "the hosts' own exchange (domain XML, addresses) stays off the record" "no" \
    "$(t_zova -f json server migration list vm5 | t_json '"yes" if "live" in d[0] else "no"')"
t_check "usage after the live migration" s_usage_matches
LHERE=$(show vm5 host)
t_eq "live migration to its own host is refused" "yes" \
    "$(t_zova server migrate --live-migration --host "$LHERE" vm5 2>&1 | grep -q "to current host ($LHERE)" && echo yes)"
t_check "server pause --wait vm5" t_zova server pause --wait vm5
t_check "a paused server moves live" t_zova server migrate --live-migration --wait vm5
t_eq "vm5 PAUSED on another host, its domain paused there" "PAUSED paused yes" \
    "$(echo "$(show vm5 status power_state) $([ "$(show vm5 host)" != "$LHERE" ] && echo yes)")"
t_check "server unpause --wait vm5" t_zova server unpause --wait vm5
t_check "server stop --wait vm5" t_zova server stop --wait vm5
t_eq "a stopped server cannot move live (409, Nova's words)" "yes" \
    "$(t_zova server migrate --live-migration vm5 2>&1 | grep -q "Cannot 'live-migration' instance" && echo yes)"
MID=$(t_zova -f json server migration list vm5 | t_json 'd[0]["id"]')
t_eq "abort of a migration that does not run is refused" "yes" \
    "$(t_zova server migration abort vm5 "$MID" 2>&1 | grep -q 'Cannot abort while the migration is in this state' && echo yes)"
t_eq "force complete of one that does not run is refused" "yes" \
    "$(t_zova server migration force complete vm5 "$MID" 2>&1 | grep -q 'Cannot force complete' && echo yes)"
t_eq "--block-migration without --live-migration is a usage error" "yes" \
    "$(t_zova server migrate --block-migration vm5 2>&1 | grep -q 'is for --live-migration' && echo yes)"

echo "== every migration closed =="
t_eq "no migration left open" "0" \
    "$(t_zova -f json migration list | t_json 'len([m for m in d if m["status"] not in ("confirmed", "reverted", "done", "error", "failed", "completed")])')"

for name in api m1 m2 m3 scheduler conductor; do t_stop "$name"; done
t_done
