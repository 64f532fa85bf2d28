#!/usr/bin/env bash
# test_allinone: the whole foundation flow through the zova CLI against one
# `zovad all` process on libvirt's test driver: flavors, images (bytes and
# checksum, save with its sha256 checked, set and unset of name and
# properties), multi-create with --wait, list/show/json, no valid host, the
# action log, delete and --deleted, services and hypervisors, SIGTERM.
# Then the built-in defaults: `zovad all` with no config, `zova server list`
# with no endpoint.
. "$(dirname "$0")/lib.sh"

API="tcp://127.0.0.1:$(t_port)"
export ZOVA_ENDPOINT=$API
# Without ImagePropertiesFilter, so that an image no host can run reaches
# libvirt, whose refusal is what the test checks.
t_config "$T_DIR/zova.conf" "api.endpoint=$API" "scheduler.host_refresh_interval_ms=200" \
    "conductor.housekeeping_interval=1" "filter_scheduler.enabled_filters=ComputeFilter,PlacementFilter"
t_start aio all "$T_DIR/zova.conf"
t_wait_api 30 || { tail -20 "$T_DIR/aio.log"; exit 1; }
HOST=$(hostname)

# Flavors.
t_check "flavor create" t_zova flavor create --vcpus 1 --ram 128 --disk 1 m1.tiny
t_check "flavor create with ephemeral and swap" t_zova flavor create --vcpus 2 --ram 256 --disk 2 --ephemeral 1 --swap 512 m1.small
t_check_fails "duplicate flavor refused" "already exists" t_zova flavor create --vcpus 1 --ram 1 --disk 1 m1.tiny
t_eq "flavor list has both" "m1.small m1.tiny" "$(t_zova flavor list -f json | t_json '" ".join(sorted(f["name"] for f in d))')"
t_eq "flavor show" "256 1 512" "$(t_zova flavor show m1.small -f json | t_json '"%d %d %d" % (d["ram_mb"], d["ephemeral_gb"], d["swap_mb"])')"
t_check_fails "bad flavor value refused" "vcpus" t_zova flavor create --vcpus 0 --ram 1 --disk 1 zero

# Images: bytes stored with size and checksum.
head -c 2500000 /dev/urandom >"$T_DIR/disk.img"
t_check "image create" t_zova image create --file "$T_DIR/disk.img" --disk-format raw cirros
SUM=$(sha256sum "$T_DIR/disk.img" | cut -d' ' -f1)
t_eq "image checksum is the file's sha256" "$SUM active 2500000" \
    "$(t_zova image show cirros -f json | t_json '"%s %s %d" % (d["checksum"], d["status"], d["size"])')"
IMAGE_ID=$(t_zova image show cirros -f json | t_json 'd["id"]')
t_eq "image bytes stored on the controller" "$SUM" "$(sha256sum "$T_DIR/var/images/$IMAGE_ID" | cut -d' ' -f1)"
t_check_fails "missing image file refused" "cannot read" t_zova image create --file "$T_DIR/nope" ghost
t_check_fails "unknown disk format refused" "disk.format" t_zova image create --file "$T_DIR/disk.img" --disk-format vhdx bad

# Image save (Glance's download): the bytes come back in chunks, several in
# flight, and the file is kept only when its sha256 is the image's.
t_check "image save" t_zova image save --file "$T_DIR/saved.img" cirros
t_eq "the saved file is the uploaded one (sha256)" "$SUM" "$(sha256sum "$T_DIR/saved.img" | cut -d' ' -f1)"
head -c $((6 * 1048576 + 17)) /dev/urandom >"$T_DIR/chunks.img"
t_check "image create of 6 MiB and a bit" t_zova image create --file "$T_DIR/chunks.img" chunks
t_check "image save of it (7 chunks, the last short)" t_zova image save --file "$T_DIR/chunks.out" chunks
t_eq "the saved file is the uploaded one (sha256)" "$(sha256sum "$T_DIR/chunks.img" | cut -d' ' -f1)" \
    "$(sha256sum "$T_DIR/chunks.out" | cut -d' ' -f1)"
t_check "image delete chunks" t_zova image delete chunks
t_check_fails "image save of an unknown image" "No image with a name or ID of 'nope' exists" \
    t_zova image save --file "$T_DIR/nope.img" nope
t_check_fails "image save into a missing folder" "cannot write" t_zova image save --file "$T_DIR/no/such/x" cirros
t_eq "nothing written by the refused saves" "" "$(ls "$T_DIR" | grep -E '^(nope\.img|saved\.img\.|chunks\.out\.)')"

# Image set and unset (Glance's update): name and properties, never bytes.
t_check "image set --property --name" t_zova image set --property hw_machine_type=q35 --property os_distro=zova \
    --name cirros-renamed cirros
t_eq "image show has the new name and properties" "cirros-renamed q35 zova" \
    "$(t_zova image show "$IMAGE_ID" -f json | t_json '"%s %s %s" % (d["name"], d["properties"]["hw_machine_type"], d["properties"]["os_distro"])')"
t_check "image unset --property" t_zova image unset --property hw_machine_type cirros-renamed
t_check "image set --name back" t_zova image set --name cirros cirros-renamed
t_eq "image show: one property left, the old name, same bytes" "cirros {'os_distro': 'zova'} $SUM active" \
    "$(t_zova image show "$IMAGE_ID" -f json | t_json '"%s %s %s %s" % (d["name"], d["properties"], d["checksum"], d["status"])')"
t_check_fails "image set of an unknown image" "No image with a name or ID of 'nope' exists" \
    t_zova image set --property a=b nope
t_check_fails "image set of an attribute as a property" "Attribute 'status' is reserved" \
    t_zova image set --property status=killed cirros
t_check_fails "image set of a property name with a space" "Invalid property name 'a b'" \
    t_zova image set --property "a b=c" cirros
t_check_fails "image set of an empty name" "Invalid image name" t_zova image set --name " " cirros
t_check_fails "image set --property without =" "expects KEY=VALUE" t_zova image set --property novalue cirros
t_eq "the refused sets changed nothing" "cirros {'os_distro': 'zova'} active" \
    "$(t_zova image show "$IMAGE_ID" -f json | t_json '"%s %s %s" % (d["name"], d["properties"], d["status"])')"

# Boot one, then three with --wait.
t_check "server create --wait" t_zova server create --flavor m1.tiny --image cirros --wait web
t_eq "web is ACTIVE/active/running on this host" "ACTIVE active None running $HOST" \
    "$(t_zova server show web -f json | t_json '" ".join(str(d[k]) for k in ("status","vm_state","task_state","power_state","host"))')"
t_eq "web json has the documented keys" "True" \
    "$(t_zova server show web -f json | t_json 'all(k in d for k in ("id","name","status","vm_state","task_state","power_state","host","flavor","image","created","updated","fault"))')"
t_eq "launched_at set" "True" "$(t_zova server show web -f json | t_json 'd["launched_at"] is not None')"
t_check "multi-create --wait" t_zova server create --flavor m1.tiny --image cirros --min 3 --max 3 --wait app
t_eq "named NAME-1..NAME-3, all ACTIVE" "app-1:ACTIVE app-2:ACTIVE app-3:ACTIVE" \
    "$(t_zova server list -f json | t_json '" ".join(sorted(s["name"]+":"+s["status"] for s in d if s["name"].startswith("app")))')"
t_eq "server list is an array of 4" "4" "$(t_zova server list -f json | t_json 'len(d)')"
t_check "table output has a header" bash -c "t_zova() { \"$ZOVA\" \"\$@\"; }; \"$ZOVA\" server list | grep -q '| ID'"

# Hypervisor usage follows the claims.
t_wait_for "hypervisor shows 4 running vms" 10 bash -c \
    "\"$ZOVA\" hypervisor show $HOST -f json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"running_vms\"]==4 else 1)'"
t_eq "hypervisor usage = 4 x m1.tiny" "4 512 4" \
    "$(t_zova hypervisor show "$HOST" -f json | t_json '"%d %d %d" % (d["vcpus_used"], d["memory_mb_used"], d["local_gb_used"])')"
sleep 5   # past service_down_time (4 s): every service, the conductor too, keeps itself up
t_eq "services: api compute conductor consoleproxy scheduler, all up" "api:up compute:up conductor:up consoleproxy:up scheduler:up" \
    "$(t_zova compute service list -f json | t_json '" ".join(sorted(s["binary"]+":"+s["state"] for s in d))')"

# No valid host: too big for the test driver's 3 GiB node.
t_check "huge flavor" t_zova flavor create --vcpus 1 --ram 999999 --disk 1 huge
t_check_fails "create --wait of a too-big server exits non-zero" "No valid host was found" \
    t_zova server create --flavor huge --image cirros --wait big
t_eq "big is ERROR with NoValidHost fault" "ERROR error None" \
    "$(t_zova server show big -f json | t_json '"%s %s %s" % (d["status"], d["vm_state"], d["task_state"])')"
t_eq "fault message" "No valid host was found. There are not enough hosts available." \
    "$(t_zova server show big -f json | t_json 'd["fault"]')"
t_check_fails "unknown flavor" "Flavor nope could not be found" t_zova server create --flavor nope --image cirros x
t_check_fails "unknown image" "Image nope could not be found" t_zova server create --flavor m1.tiny --image nope x
t_check_fails "unknown server" "No server with a name or ID of 'ghost'" t_zova server show ghost

# A libvirt failure: ERROR with libvirt's own message as the fault, the
# claim released.  (The test driver refuses an unknown architecture.)
t_check "image with an architecture no host has" t_zova image create --file "$T_DIR/disk.img" \
    --property hw_architecture=bogus strange
BEFORE=$(t_zova hypervisor show "$HOST" -f json | t_json '"%d %d %d" % (d["vcpus_used"], d["memory_mb_used"], d["local_gb_used"])')
t_check_fails "create --wait of a server libvirt refuses exits non-zero" "is ERROR" \
    t_zova server create --flavor m1.tiny --image strange --wait odd
t_eq "odd is ERROR with libvirt's message" "ERROR True" \
    "$(t_zova server show odd -f json | t_json '"%s %s" % (d["status"], "Unknown architecture bogus" in d["fault"])')"
t_eq "its claim is released" "$BEFORE" \
    "$(t_zova hypervisor show "$HOST" -f json | t_json '"%d %d %d" % (d["vcpus_used"], d["memory_mb_used"], d["local_gb_used"])')"
t_eq "event list of odd: create Error" "create:Error" \
    "$(t_zova server event list odd -f json | t_json '" ".join(e["action"]+":"+str(e["result"]) for e in d)')"

# A disabled compute gets no new instances; the reason is shown.
t_check "disable the compute service" t_zova compute service set --disable --reason "disk swap" "$HOST"
t_eq "service list shows disabled and why" "disabled disk swap" \
    "$(t_zova compute service list --service compute -f json | t_json '"%s %s" % (d[0]["status"], d[0]["disabled_reason"])')"
sleep 0.5   # one scheduler refresh (200 ms here)
t_check_fails "a disabled host gets nothing" "No valid host was found" \
    t_zova server create --flavor m1.tiny --image cirros --wait shunned
t_check "enable it again" t_zova compute service set --enable "$HOST"
sleep 0.5
t_check "an enabled host builds again" t_zova server create --flavor m1.tiny --image cirros --wait welcome
t_check_fails "--enable and --disable together refused" "exactly one" t_zova compute service set --enable --disable "$HOST"
t_check_fails "unknown host refused" "could not be found" t_zova compute service set --disable nohost

# Action log.
t_eq "event list: create Success" "create:Success" \
    "$(t_zova server event list web -f json | t_json '" ".join(e["action"]+":"+str(e["result"]) for e in d)')"
t_eq "event list of big: create Error" "create:Error" \
    "$(t_zova server event list big -f json | t_json '" ".join(e["action"]+":"+str(e["result"]) for e in d)')"

# Delete: domain gone, resources released, record kept.
WEB_ID=$(t_zova server show web -f json | t_json 'd["id"]')
t_check "delete --wait" t_zova server delete --wait web app-1 app-2 app-3 big odd shunned welcome
t_eq "no live servers left" "0" "$(t_zova server list -f json | t_json 'len(d)')"
t_eq "--deleted shows them DELETED" "DELETED" \
    "$(t_zova server list --deleted -f json | t_json '" ".join(sorted(set(s["status"] for s in d)))')"
t_eq "deleted record keeps its state" "deleted None nostate" \
    "$(t_zova server show "$WEB_ID" -f json | t_json '"%s %s %s" % (d["vm_state"], d["task_state"], d["power_state"])')"
t_eq "event list after delete: create, delete" "create:Success delete:Success" \
    "$(t_zova server event list "$WEB_ID" -f json | t_json '" ".join(e["action"]+":"+str(e["result"]) for e in d)')"
t_eq "hypervisor usage back to zero" "0 0 0" \
    "$(t_zova hypervisor show "$HOST" -f json | t_json '"%d %d %d" % (d["vcpus_used"], d["memory_mb_used"], d["local_gb_used"])')"
t_wait_for "running_vms back to 0" 10 bash -c \
    "\"$ZOVA\" hypervisor show $HOST -f json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"running_vms\"]==0 else 1)'"
t_check_fails "deleting a deleted server is refused" "Cannot 'delete'\|could not be found\|No server" t_zova server delete "$WEB_ID"

# Delete while building: every delete wins, nothing is left behind.
t_check "burst of 10" t_zova server create --flavor m1.tiny --image cirros --min 10 --max 10 racer
for n in $(seq 10); do "$ZOVA" --timeout 10 server delete "racer-$n" >/dev/null 2>&1 & done
wait_deleted () {
    t_zova server list -f json | python3 -c 'import json,sys; sys.exit(0 if not [s for s in json.load(sys.stdin) if s["name"].startswith("racer")] else 1)'
}
t_wait_for "every racer deleted" 30 wait_deleted && T_CHECKS=$((T_CHECKS + 1))
t_eq "racers: DELETED, delete actions Success" "True" \
    "$(t_zova server list --deleted -f json | t_json 'all(s["status"]=="DELETED" for s in d if s["name"].startswith("racer"))')"
t_eq "hypervisor usage back to zero after the race" "0 0 0" \
    "$(t_zova hypervisor show "$HOST" -f json | t_json '"%d %d %d" % (d["vcpus_used"], d["memory_mb_used"], d["local_gb_used"])')"
t_wait_for "no racer domain left" 10 bash -c \
    "\"$ZOVA\" hypervisor show $HOST -f json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"running_vms\"]==0 else 1)'" && T_CHECKS=$((T_CHECKS + 1))

# Image and flavor delete.
t_check "flavor delete" t_zova flavor delete m1.small
t_check "image delete" t_zova image delete cirros
t_eq "image bytes removed" "no" "$([ -e "$T_DIR/var/images/$IMAGE_ID" ] && echo yes || echo no)"

t_stop aio
t_check_fails "api unreachable: error within the deadline" "no answer from the api" \
    "$ZOVA" --timeout 1 server list

# Built-in defaults: no config, state under ./var, the CLI's default endpoint.
if python3 -c 'import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(("127.0.0.1",5774)) else 1)'; then
    mkdir -p "$T_DIR/defaults"
    (cd "$T_DIR/defaults" && exec "$ZOVAD" all) >"$T_DIR/defaults.log" 2>&1 &
    T_PID_defaults=$!
    T_PIDS+=("$T_PID_defaults")
    unset ZOVA_ENDPOINT
    t_wait_for "default api answers" 20 "$ZOVA" --timeout 2 ping
    t_check "zova server list on the defaults" "$ZOVA" server list
    t_eq "state under ./var of the working directory" "yes" "$([ -d "$T_DIR/defaults/var/store" ] && echo yes || echo no)"
    t_stop defaults
else
    t_log "port 5774 busy: built-in defaults not checked"
fi
t_done
