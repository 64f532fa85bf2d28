#!/usr/bin/env bash
# test_scheduling.sh: where servers land, on a cluster of simulated hosts.
#
# A conductor, a scheduler, an api and four compute processes (c1..c4, the
# libvirt test driver on node files of 8 CPUs and 16 GiB each) run on
# 127.0.0.1; a fifth, cfail, joins for the reschedule case.  Everything is
# driven through the CLI and judged from its JSON: placement's view of
# each host, aggregates and availability zones, flavor extra specs, server
# groups and host hints, disabled and down hosts, 200 boots racing for a
# host with room for exactly 7, a reschedule after a failed build, and the
# bad input that must be refused without changing anything.
#
# The scheduler refreshes its view of hosts and aggregates every 200 ms;
# after an admin change (aggregate, inventory, service) the test gives it
# s_refresh, the one short sleep, since that view is not observable.

source "$(dirname "$0")/lib.sh"

unset ZOVA_CONFIG
API_PORT=$(t_port)
CONDUCTOR_PORT=$(t_port)
export ZOVA_ENDPOINT="tcp://127.0.0.1:$API_PORT"
CONDUCTOR_EP="tcp://127.0.0.1:$CONDUCTOR_PORT"
HOSTS=(c1 c2 c3 c4)
NO_VALID_HOST="No valid host was found"
# Every filter this test relies on; inih reads lines of at most 199 bytes,
# so the list goes on over an indented line, as the sample config says.
FILTERS_1="ComputeFilter,AvailabilityZoneFilter,PlacementFilter,AggregateInstanceExtraSpecsFilter,"
FILTERS_2="ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter"

# s_node_file HOST MEMORY_MB: a simulated hypervisor of 8 CPUs.
s_node_file () {
    cat >"$T_DIR/$1.xml" <<EOF
<node><cpu><mhz>2400</mhz><model>x86_64</model><active>8</active><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads></cpu><memory>$(( $2 * 1024 ))</memory></node>
EOF
}

# s_compute HOST MEMORY_MB [section.key=value ...]: configure and start a compute host.
s_compute () {
    local host=$1 memory_mb=$2; shift 2
    s_node_file "$host" "$memory_mb"
    t_config "$T_DIR/$host.conf" DEFAULT.host="$host" conductor.endpoint="$CONDUCTOR_EP" \
        compute.local_gb=100 libvirt.connection_uri="test://$T_DIR/$host.xml" "$@"
    t_start "$host" compute "$T_DIR/$host.conf"
}

# s_refresh: let the scheduler's 200 ms host refresh see an admin change.
s_refresh () { sleep 0.6; }

# s_hypervisors_up HOST...: each is listed by hypervisor list and up.
s_hypervisors_up () {
    t_zova -f json hypervisor list | python3 -c '
import json, sys
up = {h["host"] for h in json.load(sys.stdin) if h["state"] == "up"}
sys.exit(0 if set(sys.argv[1:]) <= up else 1)' "$@"
}

# s_servers: the server list, as JSON in $T_DIR/servers.json.
s_servers () { t_zova -f json server list >"$T_DIR/servers.json"; }

# s_count: how many servers there are.
s_count () { t_zova -f json server list | t_json 'len(d)'; }

# s_hosts PREFIX: "STATUS@HOST" of every server named PREFIX-*, sorted.
s_hosts () {
    s_servers
    t_json "' '.join(sorted(s['status'] + '@' + str(s['host']) for s in d if s['name'].startswith('$1-')))" \
        <"$T_DIR/servers.json"
}

# s_host_set PREFIX: the distinct hosts of servers named PREFIX-*, sorted.
s_host_set () {
    s_servers
    t_json "','.join(sorted({str(s['host']) for s in d if s['name'].startswith('$1-')}))" <"$T_DIR/servers.json"
}

# s_id REF: a server's uuid.
s_id () { t_zova -f json server show "$1" | t_json 'd["id"]'; }

# s_host_of REF: a server's host.
s_host_of () { t_zova -f json server show "$1" | t_json 'd["host"]'; }

# s_delete_all: delete every server and wait until they are gone.
s_delete_all () {
    local ids
    ids=$(t_zova -f json server list | t_json '" ".join(s["id"] for s in d)')
    [ -z "$ids" ] && return 0
    # shellcheck disable=SC2086
    T_TIMEOUT=30 t_zova server delete --wait --wait-timeout 60 $ids >/dev/null
}

# s_no_leak: no provider holds an allocation or a usage, and the
# hypervisors agree.  Prints what it finds when it does not hold.
s_no_leak () {
    local rp
    for rp in $(t_zova -f json resource provider list | t_json '" ".join(r["name"] for r in d)'); do
        t_zova -f json resource provider show --allocations "$rp" | python3 -c '
import json, sys
d = json.load(sys.stdin)
used = {k: v for k, v in d["usages"].items() if v}
used.update({k: i["used"] for k, i in d["inventories"].items() if i["used"]})
if d.get("allocations") or used:
    print(d["name"], "allocations", d.get("allocations"), "usages", used)
    sys.exit(1)' || return 1
    done
    t_zova -f json hypervisor list | python3 -c '
import json, sys
busy = [(h["host"], h["vcpus_used"], h["memory_mb_used"], h["local_gb_used"])
        for h in json.load(sys.stdin) if h["vcpus_used"] or h["memory_mb_used"] or h["local_gb_used"]]
if busy:
    print("hypervisors still used:", busy)
    sys.exit(1)'
}

# s_check_clean WHAT: delete everything, then assert nothing is left claimed.
s_check_clean () {
    t_check "$1: delete every server --wait" s_delete_all
    t_eq "$1: server list empty" "0" "$(s_count)"
    t_check "$1: no allocation or usage left on any provider" s_no_leak
}

# s_usage HOST: "VCPU MEMORY_MB DISK_GB" placement holds on HOST.
s_usage () {
    t_zova -f json resource provider show "$1" |
        t_json '" ".join(str(d["usages"].get(c, 0)) for c in ("VCPU", "MEMORY_MB", "DISK_GB"))'
}

# s_service FIELD HOST: one field of HOST's compute service.
s_service () {
    t_zova -f json compute service list --service compute | t_json \
        "' '.join(str(s['$1']) for s in d if s['host'] == '$2')"
}

# s_boot_concurrently PREFIX N SECONDS ARGS...: N "server create ARGS
# PREFIX-i" clients at once, waited for with a deadline (stragglers are
# killed); prints how many clients failed.  S_WHILE_BOOTING, when set,
# names a command run between polls.  The clients run at nice 19: 200
# sanitized CLI processes starting at once on a small machine would
# otherwise starve the daemons of CPU for seconds, past the 3 missed
# heartbeats (report_interval 1) after which every link is rebuilt; the
# race under test is the conductor's, not the host's CPU scheduler's.
# For the same reason the deadlines are generous: with other tests beside
# this one (run-e2e.sh's lanes), clients at nice 19 may wait long for a core.
s_boot_concurrently () {
    local prefix=$1 count=$2 seconds=$3 i pid alive failed=0; shift 3
    local pids=()
    mkdir -p "$T_DIR/$prefix"
    for i in $(seq "$count"); do
        nice -n 19 "$ZOVA" --timeout 60 server create "$@" "$prefix-$i" >/dev/null 2>"$T_DIR/$prefix/$i.err" &
        pids+=($!)
    done
    local deadline=$(( $(date +%s) + seconds ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
        [ "$alive" -eq 0 ] && break
        [ -n "${S_WHILE_BOOTING:-}" ] && $S_WHILE_BOOTING
        sleep 0.2
    done
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        wait "$pid" || failed=$((failed + 1))
    done
    echo "$failed"
}

# s_settled: no server is in BUILD; the list is left in $T_DIR/servers.json.
s_settled () {
    [ -n "${S_WHILE_BOOTING:-}" ] && $S_WHILE_BOOTING
    s_servers || return 1
    [ "$(t_json 'sum(1 for s in d if s["status"] == "BUILD")' <"$T_DIR/servers.json")" = "0" ]
}

echo "== the cluster: conductor, scheduler, api, computes c1..c4 =="
t_config "$T_DIR/conductor.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    conductor.housekeeping_interval=1 conductor.build_timeout=20
t_config "$T_DIR/scheduler.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    scheduler.host_refresh_interval_ms=200
printf '[filter_scheduler]\nenabled_filters = %s\n    %s\n' "$FILTERS_1" "$FILTERS_2" >>"$T_DIR/scheduler.conf"
t_config "$T_DIR/api.conf" DEFAULT.host=controller api.endpoint="$ZOVA_ENDPOINT" \
    conductor.endpoint="$CONDUCTOR_EP"
t_start conductor conductor "$T_DIR/conductor.conf"
t_start scheduler scheduler "$T_DIR/scheduler.conf"
for host in "${HOSTS[@]}"; do s_compute "$host" 16384; done
t_start api api "$T_DIR/api.conf"
t_wait_api 20
t_wait_for "c1..c4 up in hypervisor list" 20 s_hypervisors_up "${HOSTS[@]}"
s_scheduler_up () {
    [ "$(t_zova -f json compute service list --service scheduler | t_json '[s["state"] for s in d]')" = "['up']" ]
}
t_wait_for "scheduler service up" 10 s_scheduler_up
s_refresh

t_check "flavor create small (1 VCPU, 1024 MB, 1 GB)" t_zova flavor create --vcpus 1 --ram 1024 --disk 1 small
t_check "flavor create six (6 VCPU)" t_zova flavor create --vcpus 6 --ram 1024 --disk 1 six
t_check "flavor create fastflavor" t_zova flavor create --vcpus 1 --ram 1024 --disk 1 fastflavor
t_check "flavor create race (1 VCPU, 2048 MB, 1 GB)" t_zova flavor create --vcpus 1 --ram 2048 --disk 1 race
head -c 65536 /dev/urandom >"$T_DIR/image.raw"
t_check "image create cirros" t_zova image create --file "$T_DIR/image.raw" cirros
BOOT=(--image cirros --wait --wait-timeout 30)

echo "== 1. placement: each host a resource provider =="
t_zova -f json resource provider list >"$T_DIR/rp.json"
t_eq "resource provider list: every host, empty, capacity (total - reserved) x ratio" \
    "c1:0/32:0/15872:0/100 c2:0/32:0/15872:0/100 c3:0/32:0/15872:0/100 c4:0/32:0/15872:0/100" \
    "$(t_json '" ".join(sorted("%s:%s:%s:%s" % (r["name"], r["VCPU"], r["MEMORY_MB"], r["DISK_GB"]) for r in d))' <"$T_DIR/rp.json")"
for host in "${HOSTS[@]}"; do
    t_eq "resource provider show $host: total/reserved/allocation_ratio per class" \
        "VCPU:8/0/4.0 MEMORY_MB:16384/512/1.0 DISK_GB:100/0/1.0" \
        "$(t_zova -f json resource provider show "$host" | t_json '" ".join("%s:%d/%d/%.1f" % (c, d["inventories"][c]["total"], d["inventories"][c]["reserved"], d["inventories"][c]["allocation_ratio"]) for c in ("VCPU", "MEMORY_MB", "DISK_GB"))')"
done

t_check "server v-1 (six) forced onto c1" t_zova server create --flavor six --availability-zone nova:c1 "${BOOT[@]}" v-1
t_eq "v-1 ACTIVE on c1" "ACTIVE@c1" "$(s_hosts v)"
t_check "inventory set VCPU:allocation_ratio=1.0 c1" \
    t_zova resource provider inventory set --resource VCPU:allocation_ratio=1.0 c1
t_eq "c1 VCPU capacity now 8, 6 used" "1.0 8 6" \
    "$(t_zova -f json resource provider show c1 | t_json '"%.1f %d %d" % (d["inventories"]["VCPU"]["allocation_ratio"], d["inventories"]["VCPU"]["capacity"], d["inventories"]["VCPU"]["used"])')"
t_eq "resource provider list shows c1 VCPU 6/8" "6/8" \
    "$(t_zova -f json resource provider list | t_json '[r["VCPU"] for r in d if r["name"] == "c1"][0]')"
s_refresh
t_check_fails "a second six on c1 needs 12 of 8 VCPU: no valid host" "$NO_VALID_HOST" \
    t_zova server create --flavor six --availability-zone nova:c1 "${BOOT[@]}" v-2
t_eq "v-2 ERROR with no host, v-1 still on c1" "ACTIVE@c1 ERROR@None" "$(s_hosts v)"
t_eq "c1 usage still only v-1's" "6 1024 1" "$(s_usage c1)"
t_check "inventory set VCPU:allocation_ratio=4.0 c1 (back)" \
    t_zova resource provider inventory set --resource VCPU:allocation_ratio=4.0 c1
t_eq "c1 VCPU capacity back to 32" "4.0 32" \
    "$(t_zova -f json resource provider show c1 | t_json '"%.1f %d" % (d["inventories"]["VCPU"]["allocation_ratio"], d["inventories"]["VCPU"]["capacity"])')"
s_refresh
t_check "the same six on c1 now fits" t_zova server create --flavor six --availability-zone nova:c1 "${BOOT[@]}" v-3
t_eq "v-1, v-3 ACTIVE on c1; v-2 ERROR" "ACTIVE@c1 ACTIVE@c1 ERROR@None" "$(s_hosts v)"
t_check "server w-1 (small) anywhere" t_zova server create --flavor small "${BOOT[@]}" w-1
s_running_vms () {
    [ "$(t_zova -f json hypervisor show "$1" | t_json 'd["running_vms"]')" = "$2" ]
}
t_wait_for "hypervisor c1 counts 2 running VMs" 10 s_running_vms c1 2
# hypervisor show and resource provider show read the same claims.
s_agree () {
    t_zova -f json hypervisor show "$1" >"$T_DIR/hv.json" || return 1
    t_zova -f json resource provider show --allocations "$1" >"$T_DIR/rp.json" || return 1
    python3 - "$T_DIR/hv.json" "$T_DIR/rp.json" <<'EOF'
import json, sys
hv, rp = (json.load(open(f)) for f in sys.argv[1:])
u = rp["usages"]
want = (u.get("VCPU", 0), u.get("MEMORY_MB", 0), u.get("DISK_GB", 0), len(rp.get("allocations", {})))
have = (hv["vcpus_used"], hv["memory_mb_used"], hv["local_gb_used"], hv["running_vms"])
print(hv["host"], "hypervisor", have, "provider", want)
sys.exit(0 if want == have else 1)
EOF
}
for host in "${HOSTS[@]}"; do
    t_wait_for "hypervisor $host running_vms caught up" 10 s_agree "$host"
    t_check "hypervisor show $host agrees with resource provider show $host" s_agree "$host"
done
t_eq "c1 holds v-1 and v-3 (12 VCPU, 2048 MB, 2 GB)" "12 2048 2" "$(s_usage c1)"
V1=$(s_id v-1); V3=$(s_id v-3)
t_eq "c1's allocations are v-1's and v-3's" "$(printf '%s\n' "$V1" "$V3" | sort | tr '\n' ' ')" \
    "$(t_zova -f json resource provider show --allocations c1 | t_json '" ".join(sorted(d["allocations"])) + " "')"
t_check "inventory set MEMORY_MB:reserved=1024 c2" \
    t_zova resource provider inventory set --resource MEMORY_MB:reserved=1024 c2
# c2 reports its own inventory (reserved 512) with each heartbeat; the
# admin's override must survive those reports.
s_updated_after () { [ "$(s_service updated_at c2)" \> "$1" ]; }
C2_SEEN=$(s_service updated_at c2)
t_wait_for "a c2 heartbeat after the override" 10 s_updated_after "$C2_SEEN"
C2_SEEN=$(s_service updated_at c2)
t_wait_for "another c2 heartbeat" 10 s_updated_after "$C2_SEEN"
t_eq "c2 MEMORY_MB reserved 1024, capacity 15360, after heartbeats" "1024 15360" \
    "$(t_zova -f json resource provider show c2 | t_json '"%d %d" % (d["inventories"]["MEMORY_MB"]["reserved"], d["inventories"]["MEMORY_MB"]["capacity"])')"
t_check "inventory set MEMORY_MB:reserved=512 c2 (back)" \
    t_zova resource provider inventory set --resource MEMORY_MB:reserved=512 c2
t_check_fails "inventory set on an unknown provider" "could not be found" \
    t_zova resource provider inventory set --resource VCPU:allocation_ratio=1.0 nosuchhost
t_check_fails "inventory set of an unknown class" "no inventory of FOO" \
    t_zova resource provider inventory set --resource FOO:allocation_ratio=2.0 c1
t_eq "c1 inventory unchanged by the refused sets" "VCPU:4.0 FOO:False" \
    "$(t_zova -f json resource provider show c1 | t_json '"VCPU:%.1f FOO:%s" % (d["inventories"]["VCPU"]["allocation_ratio"], "FOO" in d["inventories"])')"
s_check_clean "placement"

echo "== 2. aggregates and availability zones =="
t_check "aggregate create --zone az1 fast" t_zova aggregate create --zone az1 fast
t_check "aggregate add host fast c1" t_zova aggregate add host fast c1
t_check "aggregate add host fast c2" t_zova aggregate add host fast c2
t_eq "aggregate show fast: az1 with c1, c2" "az1 c1,c2" \
    "$(t_zova -f json aggregate show fast | t_json 'd["availability_zone"] + " " + ",".join(sorted(d["hosts"]))')"
t_eq "availability zone list: az1 and nova" "az1 nova" \
    "$(t_zova -f json availability zone list | t_json '" ".join(sorted(z["zone_name"] for z in d))')"
t_eq "compute service list Zone: az1 for c1, c2; nova for c3, c4" "az1 az1 nova nova" \
    "$(for h in "${HOSTS[@]}"; do s_service zone "$h"; done | tr '\n' ' ' | sed 's/ $//')"
s_refresh
t_check "4 servers in az1" t_zova server create --flavor small --availability-zone az1 --min 4 --max 4 "${BOOT[@]}" z
t_eq "every az1 server ACTIVE on c1 or c2, both used" "ACTIVE@c1 ACTIVE@c1 ACTIVE@c2 ACTIVE@c2" "$(s_hosts z)"
t_eq "server show: availability_zone az1" "az1" "$(t_zova -f json server show z-1 | t_json 'd["availability_zone"]')"
t_check "2 servers forced to az1:c2" \
    t_zova server create --flavor small --availability-zone az1:c2 --min 2 --max 2 "${BOOT[@]}" zf
t_eq "forced servers both on c2" "ACTIVE@c2 ACTIVE@c2" "$(s_hosts zf)"
BEFORE=$(s_count)
t_check_fails "an unknown zone is refused" "availability zone is not available" \
    t_zova server create --flavor small --image cirros --availability-zone nosuchzone nz
t_check_fails "an unknown zone with a host is refused" "availability zone is not available" \
    t_zova server create --flavor small --image cirros --availability-zone nosuchzone:c1 nz
t_eq "unknown zones created nothing" "$BEFORE" "$(s_count)"
t_check "aggregate create --zone az2 other" t_zova aggregate create --zone az2 other
# As in Nova (availability_zones.get_availability_zones), a zone is its
# hosts' services: an aggregate's zone with no host is neither listed nor
# bootable into.
t_eq "availability zone list: az2 has no host, so still az1 and nova" "az1 nova" \
    "$(t_zova -f json availability zone list | t_json '" ".join(sorted(z["zone_name"] for z in d))')"
t_check_fails "a zone with no host is refused like an unknown one" "availability zone is not available" \
    t_zova server create --flavor small --image cirros --availability-zone az2 nz
t_eq "the zone with no host created nothing" "$BEFORE" "$(s_count)"
t_check_fails "c1 into a second zone is refused" "already in availability zone" \
    t_zova aggregate add host other c1
t_eq "aggregate other still empty; fast still c1, c2" "[] c1,c2" \
    "$(t_zova -f json aggregate show other | t_json 'str(d["hosts"])') $(t_zova -f json aggregate show fast | t_json '",".join(sorted(d["hosts"]))')"
# Nova's API refuses a zone name with ':' (AZ:HOST would split it).
t_check_fails "a zone name with ':' is refused" "zone" t_zova aggregate create --zone bad:zone colon
t_check "aggregate create scratch" t_zova aggregate create scratch
t_check_fails "aggregate set --zone with ':' is refused" "zone" t_zova aggregate set --zone bad:zone scratch
t_eq "aggregate list: no 'colon', and no zone with ':'" "fast other scratch False" \
    "$(t_zova -f json aggregate list | t_json '" ".join(sorted(a["name"] for a in d)) + " " + str(any(":" in (a.get("availability_zone") or "") for a in d))')"
t_check "aggregate delete scratch" t_zova aggregate delete scratch
t_check "aggregate delete colon, if it was made" sh -c "'$ZOVA' aggregate delete colon >/dev/null 2>&1; true"
t_check "aggregate create plain (no zone)" t_zova aggregate create plain
t_check_fails "adding an unknown host is refused" "could not be found" t_zova aggregate add host fast nosuchhost
t_check_fails "adding a host twice is refused" "already a member" t_zova aggregate add host fast c1
t_eq "aggregate fast still c1, c2" "c1,c2" "$(t_zova -f json aggregate show fast | t_json '",".join(sorted(d["hosts"]))')"
t_check "c1 may join a zoneless aggregate" t_zova aggregate add host plain c1
t_check_fails "giving that aggregate a second zone for c1 is refused" "availability zone" \
    t_zova aggregate set --zone az2 plain
t_eq "aggregate plain keeps no zone" "None" "$(t_zova -f json aggregate show plain | t_json 'd["availability_zone"]')"
t_eq "c1 still in az1 only" "az1" "$(s_service zone c1)"
t_check "aggregate create ssd" t_zova aggregate create ssd
t_check "aggregate set --property ssd=true ssd" t_zova aggregate set --property ssd=true ssd
t_check "aggregate add host ssd c3" t_zova aggregate add host ssd c3
t_eq "aggregate ssd: metadata and host" "true c3" \
    "$(t_zova -f json aggregate show ssd | t_json 'd["metadata"]["ssd"] + " " + ",".join(d["hosts"])')"
t_check "flavor set --property aggregate_instance_extra_specs:ssd=true fastflavor" \
    t_zova flavor set --property aggregate_instance_extra_specs:ssd=true fastflavor
t_eq "flavor show fastflavor: extra spec" "{'aggregate_instance_extra_specs:ssd': 'true'}" \
    "$(t_zova -f json flavor show fastflavor | t_json 'd["extra_specs"]')"
s_refresh
t_check "3 servers of fastflavor" t_zova server create --flavor fastflavor --min 3 --max 3 "${BOOT[@]}" ssd
t_eq "every fastflavor server on c3, the ssd host" "ACTIVE@c3 ACTIVE@c3 ACTIVE@c3" "$(s_hosts ssd)"
t_check "aggregate remove host plain c1" t_zova aggregate remove host plain c1
s_check_clean "zones"

echo "== 3. server groups and host hints =="
t_check "server group create --policy anti-affinity spread" \
    t_zova server group create --policy anti-affinity spread
SPREAD=$(t_zova -f json server group show spread | t_json 'd["id"]')
t_check "3 servers in spread" \
    t_zova server create --flavor small --min 3 --max 3 --hint group="$SPREAD" "${BOOT[@]}" spread
t_eq "spread: 3 ACTIVE on 3 distinct hosts" "3 3 ACTIVE" \
    "$(s_servers; t_json '"%d %d %s" % (len([s for s in d if s["name"].startswith("spread-")]), len({s["host"] for s in d if s["name"].startswith("spread-")}), ",".join({s["status"] for s in d if s["name"].startswith("spread-")}))' <"$T_DIR/servers.json")"
t_eq "server group show spread: the 3 members" \
    "$(s_servers; t_json '" ".join(sorted(s["id"] for s in d if s["name"].startswith("spread-")))' <"$T_DIR/servers.json")" \
    "$(t_zova -f json server group show spread | t_json '" ".join(sorted(d["members"]))')"
t_check "server group create --policy affinity pack" t_zova server group create --policy affinity pack
PACK=$(t_zova -f json server group show pack | t_json 'd["id"]')
t_check "3 servers in pack" t_zova server create --flavor small --min 3 --max 3 --hint group="$PACK" "${BOOT[@]}" pack
PACK_HOST=$(s_host_of pack-1)
t_eq "pack: 3 ACTIVE on one host" "ACTIVE@$PACK_HOST ACTIVE@$PACK_HOST ACTIVE@$PACK_HOST" "$(s_hosts pack)"
t_check "server group create --policy anti-affinity toomany" \
    t_zova server group create --policy anti-affinity toomany
TOOMANY=$(t_zova -f json server group show toomany | t_json 'd["id"]')
t_check_fails "5 anti-affine servers on 4 hosts: no valid host" "$NO_VALID_HOST" \
    t_zova server create --flavor small --min 5 --max 5 --hint group="$TOOMANY" "${BOOT[@]}" toomany
t_eq "toomany: all 5 ERROR, none placed" "ERROR@None ERROR@None ERROR@None ERROR@None ERROR@None" "$(s_hosts toomany)"
t_eq "toomany: every fault is No valid host" "True" \
    "$(s_servers; t_json 'all("No valid host" in (s["fault"] or "") for s in d if s["name"].startswith("toomany-"))' <"$T_DIR/servers.json")"
s_claimed_count () {
    local host total=0 n
    for host in "${HOSTS[@]}"; do
        n=$(t_zova -f json resource provider show --allocations "$host" | t_json 'len(d["allocations"])')
        total=$((total + n))
    done
    echo "$total"
}
t_eq "nothing claimed for toomany: allocations are the 6 ACTIVE servers'" "6" "$(s_claimed_count)"
# Concurrent boots into fresh groups: the claim's late check is the judge.
t_check "server group create --policy anti-affinity aarace" \
    t_zova server group create --policy anti-affinity aarace
t_check "server group create --policy affinity afrace" t_zova server group create --policy affinity afrace
t_eq "8 concurrent boots into aarace and 8 into afrace accepted" "0 0" \
    "$(s_boot_concurrently aarace 8 120 --flavor small --image cirros --hint group=aarace) $(s_boot_concurrently afrace 8 120 --flavor small --image cirros --hint group=afrace)"
t_wait_for "no group race server left in BUILD" 60 s_settled
t_eq "aarace: every ACTIVE member on a host of its own (1..4 of them), the rest No valid host" "distinct ok ok" \
    "$(t_json '"%s %s %s" % (
        "distinct" if len({s["host"] for s in d if s["name"].startswith("aarace-") and s["status"] == "ACTIVE"}) == sum(1 for s in d if s["name"].startswith("aarace-") and s["status"] == "ACTIVE") else "SHARED",
        "ok" if 1 <= sum(1 for s in d if s["name"].startswith("aarace-") and s["status"] == "ACTIVE") <= 4 else "count",
        "ok" if all("No valid host" in (s["fault"] or "") for s in d if s["name"].startswith("aarace-") and s["status"] != "ACTIVE") else "faults")' <"$T_DIR/servers.json")"
t_eq "afrace: every ACTIVE member on one host, the rest No valid host" "1 ok" \
    "$(t_json '"%d %s" % (
        len({s["host"] for s in d if s["name"].startswith("afrace-") and s["status"] == "ACTIVE"}),
        "ok" if all("No valid host" in (s["fault"] or "") for s in d if s["name"].startswith("afrace-") and s["status"] != "ACTIVE") else "faults")' <"$T_DIR/servers.json")"
t_eq "group races: allocations are exactly the ACTIVE servers'" \
    "$(t_json 'sum(1 for s in d if s["status"] == "ACTIVE")' <"$T_DIR/servers.json")" "$(s_claimed_count)"
PACK1=$(s_id pack-1)
t_check "--hint same_host=pack-1" t_zova server create --flavor small --hint same_host="$PACK1" "${BOOT[@]}" same-1
t_eq "same_host: lands with pack-1" "ACTIVE@$PACK_HOST" "$(s_hosts same)"
SPREAD1=$(s_id spread-1); SPREAD1_HOST=$(s_host_of spread-1)
t_check "--hint different_host=spread-1, 4 servers" \
    t_zova server create --flavor small --min 4 --max 4 --hint different_host="$SPREAD1" "${BOOT[@]}" diff
t_eq "different_host: none on spread-1's host $SPREAD1_HOST" "False" \
    "$(s_servers; t_json "any(s['host'] == '$SPREAD1_HOST' for s in d if s['name'].startswith('diff-'))" <"$T_DIR/servers.json")"
t_eq "different_host: all 4 ACTIVE" "ACTIVE" \
    "$(s_servers; t_json '",".join({s["status"] for s in d if s["name"].startswith("diff-")})' <"$T_DIR/servers.json")"
BEFORE=$(s_count)
t_check_fails "same_host that is not a uuid" "is not a server UUID" \
    t_zova server create --flavor small --image cirros --hint same_host=not-a-uuid bad
t_check_fails "different_host that is not a uuid" "is not a server UUID" \
    t_zova server create --flavor small --image cirros --hint different_host=12345 bad
t_check_fails "same_host of an unknown server" "could not be found" \
    t_zova server create --flavor small --image cirros --hint same_host=6f1d4c1e-2b1a-4c8e-9d6e-0a4b3c2d1e0f bad
t_check_fails "group of an unknown uuid" "could not be found" \
    t_zova server create --flavor small --image cirros --hint group=6f1d4c1e-2b1a-4c8e-9d6e-0a4b3c2d1e0f bad
t_check_fails "group of an unknown name" "could not be found" \
    t_zova server create --flavor small --image cirros --hint group=nosuchgroup bad
t_check_fails "a hint without a value" "expects KEY=VALUE" \
    t_zova server create --flavor small --image cirros --hint same_host bad
t_eq "bad hints created nothing" "$BEFORE" "$(s_count)"
t_eq "the groups' members unchanged by bad hints" "3 3 5" \
    "$(for g in spread pack toomany; do t_zova -f json server group show $g | t_json 'len(d["members"])'; done | tr '\n' ' ' | sed 's/ $//')"
s_check_clean "groups"

echo "== 4. a disabled host gets nothing =="
t_check "compute service set --disable --reason test c4" \
    t_zova compute service set --disable --reason test c4
t_eq "c4 disabled with its reason" "disabled test" "$(s_service status c4) $(s_service disabled_reason c4)"
s_refresh
t_check "6 servers with c4 disabled" t_zova server create --flavor small --min 6 --max 6 "${BOOT[@]}" dis
t_eq "none on c4, spread over the 3 others" "c1,c2,c3" "$(s_host_set dis)"
t_check "compute service set --enable c4" t_zova compute service set --enable c4
t_eq "c4 enabled again" "enabled None" "$(s_service status c4) $(s_service disabled_reason c4)"
s_refresh
t_check "one more server" t_zova server create --flavor small "${BOOT[@]}" en-1
t_eq "it goes to c4, now enabled and the emptiest" "ACTIVE@c4" "$(s_hosts en)"
s_check_clean "disabled"

echo "== 5. 200 boots race for a host with room for 7 =="
# c4 alone in zone raceaz; the race flavor's 2048 MB fits 7 times in
# c4's (16384 - 512) MB and not 8, its VCPU and disk fit far more.
K=7
N=200
t_check "aggregate create --zone raceaz race" t_zova aggregate create --zone raceaz race
t_check "aggregate add host race c4" t_zova aggregate add host race c4
t_eq "c4 capacity: MEMORY_MB 15872 fits $K race servers" "$K" \
    "$(t_zova -f json resource provider show c4 | t_json 'd["inventories"]["MEMORY_MB"]["capacity"] // 2048')"
s_refresh
# c4's usage, sampled while the clients run and until the builds settle.
s_sample_c4 () {
    t_zova -f json resource provider show c4 2>/dev/null |
        t_json 'd["inventories"]["MEMORY_MB"]["used"]' >>"$T_DIR/c4-used" 2>/dev/null
}
S_WHILE_BOOTING=s_sample_c4
t_eq "all $N server create requests accepted" "0" \
    "$(s_boot_concurrently race "$N" 240 --flavor race --image cirros --availability-zone raceaz)"
t_wait_for "no race server left in BUILD" 120 s_settled
S_WHILE_BOOTING=
cp "$T_DIR/servers.json" "$T_DIR/race/servers.json"
t_eq "$N race servers: $K ACTIVE on c4, $((N - K)) ERROR No valid host, nothing else" \
    "$K:c4 $((N - K)):None:nohost 0" \
    "$(t_json '"%d:%s %d:%s:%s %d" % (
        sum(1 for s in d if s["status"] == "ACTIVE"),
        ",".join(sorted({s["host"] for s in d if s["status"] == "ACTIVE"})),
        sum(1 for s in d if s["status"] == "ERROR"),
        ",".join(sorted({str(s["host"]) for s in d if s["status"] == "ERROR"})),
        "nohost" if all("No valid host" in (s["fault"] or "") for s in d if s["status"] == "ERROR") else "other faults",
        sum(1 for s in d if s["status"] not in ("ACTIVE", "ERROR")))' <"$T_DIR/race/servers.json")"
t_eq "the race servers are race-1..race-$N" "$N" \
    "$(t_json 'len({s["name"] for s in d if s["name"].startswith("race-")})' <"$T_DIR/race/servers.json")"
t_eq "c4 usage exactly $K x race" "$K $((K * 2048)) $K" "$(s_usage c4)"
t_eq "c4 allocations: exactly the $K ACTIVE servers" \
    "$(t_json '" ".join(sorted(s["id"] for s in d if s["status"] == "ACTIVE"))' <"$T_DIR/race/servers.json")" \
    "$(t_zova -f json resource provider show --allocations c4 | t_json '" ".join(sorted(d["allocations"]))')"
t_eq "c4 MEMORY_MB never above capacity while racing" "ok" \
    "$(awk 'BEGIN { m = 0 } { if ($1 + 0 > m) m = $1 + 0 } END { print (m <= 15872 && NR > 0) ? "ok" : "max " m " of " NR " samples" }' "$T_DIR/c4-used")"
t_eq "no other host got a race server" "0 0 0 0 0 0" "$(s_usage c1) $(s_usage c2)"
t_wait_for "hypervisor c4 counts $K running VMs" 10 s_running_vms c4 "$K"
t_check "hypervisor show c4 agrees with resource provider show c4" s_agree c4
s_check_clean "race"
# Multi-create is all or nothing up to min_count, racing too: of 10
# requests for 3 each, exactly 2 fit in 7 places; the others leave nothing.
t_eq "10 concurrent requests for 3 servers each accepted" "0" \
    "$(s_boot_concurrently trio 10 120 --flavor race --image cirros --availability-zone raceaz --min 3 --max 3)"
t_wait_for "no trio server left in BUILD" 120 s_settled
t_eq "trios: 6 ACTIVE on c4 from 2 whole requests, 24 ERROR" "6:c4 2x3 24" \
    "$(python3 - "$T_DIR/servers.json" <<'EOF'
import collections, json, sys
d = [s for s in json.load(open(sys.argv[1])) if s["name"].startswith("trio-")]
active = [s for s in d if s["status"] == "ACTIVE"]
# A request's servers are trio-I-1..3: group the ACTIVE ones by request.
per = collections.Counter(s["name"].rsplit("-", 1)[0] for s in active)
print("%d:%s %s %d" % (len(active), ",".join(sorted({s["host"] for s in active})),
      " ".join("%dx%d" % (n, k) for k, n in sorted(collections.Counter(per.values()).items())),
      sum(1 for s in d if s["status"] == "ERROR")))
EOF
)"
t_eq "c4 usage exactly 6 x race" "6 $((6 * 2048)) 6" "$(s_usage c4)"
s_check_clean "trios"
t_check "aggregate remove host race c4" t_zova aggregate remove host race c4

echo "== 4b. a down host gets nothing =="
t_stop c3
s_c3_down () { [ "$(s_service state c3)" = "down" ]; }
t_wait_for "c3 down after service_down_time" 15 s_c3_down
t_eq "compute service list: c3 down, the others up" "down up up up" \
    "$(for h in c3 c1 c2 c4; do s_service state "$h"; done | tr '\n' ' ' | sed 's/ $//')"
t_eq "hypervisor list: c3 down" "down" \
    "$(t_zova -f json hypervisor list | t_json '[h["state"] for h in d if h["host"] == "c3"][0]')"
s_refresh
t_check "6 servers with c3 down" t_zova server create --flavor small --min 6 --max 6 "${BOOT[@]}" down
t_eq "none on c3, spread over the 3 live hosts" "c1,c2,c4" "$(s_host_set down)"
s_check_clean "down"

echo "== 6. a failed build is rescheduled and its claim moves =="
# cfail has the most free RAM, so the RAM weigher picks it first; its
# instances_path cannot be created, so every build there fails.
s_compute cfail 32768 compute.instances_path=/dev/null/instances
t_wait_for "cfail up in hypervisor list" 20 s_hypervisors_up cfail
s_refresh
t_check "server resched, no constraints" t_zova server create --flavor small "${BOOT[@]}" resched
RESCHED=$(s_id resched)
RESCHED_HOST=$(s_host_of resched)
T_CHECKS=$((T_CHECKS + 1))
case "$RESCHED_HOST" in
    c1|c2|c4) t_log "ok: resched ACTIVE on a live host ($RESCHED_HOST)" ;;
    *) t_fail "resched on '$RESCHED_HOST', expected c1, c2 or c4" ;;
esac
t_eq "resched ACTIVE" "ACTIVE" "$(t_zova -f json server show resched | t_json 'd["status"]')"
T_CHECKS=$((T_CHECKS + 1))
if grep -q "rescheduling $RESCHED (attempt 2): Build failed on cfail: .*Not a directory" "$T_DIR/conductor.log"; then
    t_log "ok: the conductor logged the reschedule from cfail"
else
    t_fail "no 'rescheduling $RESCHED ... cfail ... Not a directory' in the conductor log: $(grep -i resched "$T_DIR/conductor.log" | tail -3)"
fi
t_eq "server event list resched: create Success" "create Success" \
    "$(t_zova -f json server event list resched | t_json '" ".join(e["action"] + " " + str(e["result"]) for e in d)')"
t_eq "cfail holds no claim: allocations and usages empty" "{} 0 0 0" \
    "$(t_zova -f json resource provider show --allocations cfail | t_json 'str(d["allocations"])') $(s_usage cfail)"
t_eq "the claim moved to $RESCHED_HOST" "$RESCHED" \
    "$(t_zova -f json resource provider show --allocations "$RESCHED_HOST" | t_json '" ".join(d["allocations"])')"
t_eq "hypervisor list: cfail counts its failed build" "True" \
    "$(t_zova -f json hypervisor list | t_json '[h["failed_builds"] >= 1 for h in d if h["host"] == "cfail"][0]')"
for host in c1 c2 c4; do t_check "disable $host" t_zova compute service set --disable --reason "only cfail" "$host"; done
s_refresh
t_check_fails "with only cfail left, a build ends ERROR" "Not a directory" \
    t_zova server create --flavor small "${BOOT[@]}" doomed
t_eq "doomed ERROR on no host, its fault names the failure" "ERROR None True" \
    "$(t_zova -f json server show doomed | t_json 'd["status"] + " " + str(d["host"]) + " " + str("Not a directory" in (d["fault"] or ""))')"
t_eq "server event list doomed: create Error" "create Error" \
    "$(t_zova -f json server event list doomed | t_json '" ".join(e["action"] + " " + str(e["result"]) for e in d)')"
t_eq "cfail released doomed's claim" "{} 0 0 0" \
    "$(t_zova -f json resource provider show --allocations cfail | t_json 'str(d["allocations"])') $(s_usage cfail)"
for host in c1 c2 c4; do t_check "enable $host" t_zova compute service set --enable "$host"; done
s_check_clean "reschedule"

echo "== 7. an unknown filter is a start-up error =="
t_config "$T_DIR/badsched.conf" DEFAULT.host=badsched conductor.endpoint="tcp://127.0.0.1:$(t_port)" \
    filter_scheduler.enabled_filters=ComputeFilter,NoSuchFilter
start=$(date +%s%N)
rc=0
timeout -k 2 10 "$ZOVAD" scheduler --config "$T_DIR/badsched.conf" >"$T_DIR/badsched.log" 2>&1 || rc=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
T_CHECKS=$((T_CHECKS + 1))
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && [ "$elapsed_ms" -lt 5000 ]; then
    t_log "ok: scheduler with NoSuchFilter exits $rc in ${elapsed_ms} ms"
else
    t_fail "scheduler with NoSuchFilter: exit $rc after ${elapsed_ms} ms (want non-zero, quickly)"
fi
T_CHECKS=$((T_CHECKS + 1))
if grep -q "NoSuchFilter" "$T_DIR/badsched.log"; then
    t_log "ok: its message names NoSuchFilter: $(grep -m1 NoSuchFilter "$T_DIR/badsched.log")"
else
    t_fail "the bad scheduler's output does not name NoSuchFilter: $(head -c 400 "$T_DIR/badsched.log")"
fi
t_config "$T_DIR/badsched2.conf" DEFAULT.host=badsched conductor.endpoint="tcp://127.0.0.1:$(t_port)" \
    scheduler.enabled_filters=ComputeFilter,NoSuchFilter
rc=0
timeout -k 2 10 "$ZOVAD" scheduler --config "$T_DIR/badsched2.conf" >"$T_DIR/badsched2.log" 2>&1 || rc=$?
T_CHECKS=$((T_CHECKS + 1))
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && grep -q NoSuchFilter "$T_DIR/badsched2.log"; then
    t_log "ok: the deprecated [scheduler] enabled_filters with NoSuchFilter fails too (exit $rc)"
else
    t_fail "deprecated [scheduler] enabled_filters with NoSuchFilter: exit $rc: $(head -c 400 "$T_DIR/badsched2.log")"
fi
t_eq "the running scheduler is still the only one" "controller" \
    "$(t_zova -f json compute service list --service scheduler | t_json '" ".join(s["host"] for s in d)')"

echo "== stop everything with SIGTERM =="
for name in api c1 c2 c4 cfail scheduler conductor; do t_stop "$name"; done
for log in "$T_DIR"/*.log; do
    T_CHECKS=$((T_CHECKS + 1))
    if grep -Eq 'Sanitizer|runtime error' "$log"; then
        t_fail "$(basename "$log"): $(grep -Em1 'Sanitizer|runtime error' "$log")"
    else
        t_log "ok: $(basename "$log") free of sanitizer reports"
    fi
done

t_done
