#!/usr/bin/env bash
# test_issue4_cli: the zova commands for aggregates, availability zones,
# server groups, resource providers and flavor extra specs, against one
# `zovad all`: each command's table and JSON, and its errors (a missing
# record is exit 1 with the conductor's message, bad syntax exit 2 with the
# usage line, refused before anything is sent).
. "$(dirname "$0")/lib.sh"

API="tcp://127.0.0.1:$(t_port)"
export ZOVA_ENDPOINT=$API
t_config "$T_DIR/zova.conf" "api.endpoint=$API" "scheduler.host_refresh_interval_ms=200"
t_start aio all "$T_DIR/zova.conf"
t_wait_api 30 || { tail -20 "$T_DIR/aio.log"; exit 1; }
HOST=$(hostname)

# t_exit DESCRIPTION STATUS PATTERN COMMAND...: expect that exit status and
# PATTERN on stderr.
t_exit () {
    local what=$1 want=$2 pattern=$3; shift 3
    local status=0
    "$@" >"$T_DIR/last.out" 2>"$T_DIR/last.err" || status=$?
    T_CHECKS=$((T_CHECKS + 1))
    if [ "$status" -ne "$want" ]; then
        t_fail "$what: exit $status, expected $want: $(head -c 600 "$T_DIR/last.err")"
    elif ! grep -q -- "$pattern" "$T_DIR/last.err"; then
        t_fail "$what: stderr lacks '$pattern': $(head -c 600 "$T_DIR/last.err")"
    else
        echo "  ok: $what"
    fi
}

# Help names every new command.
for words in "aggregate create" "aggregate add host" "aggregate remove host" "aggregate unset" \
             "availability zone list" "server group create" "resource provider show" \
             "resource provider inventory set" "flavor set" "flavor unset"; do
    T_CHECKS=$((T_CHECKS + 1))
    if t_zova help | grep -q "zova $words "; then echo "  ok: help lists $words"
    else t_fail "help lacks $words"; fi
done

# Aggregates and zones.
t_check "aggregate create in a zone" t_zova aggregate create --zone az1 agg1
t_check "aggregate add host" t_zova aggregate add host agg1 "$HOST"
t_check "aggregate set properties" t_zova aggregate set --property ssd=true --property gpu=no agg1
t_check "aggregate unset a property" t_zova aggregate unset --property gpu agg1
t_eq "aggregate show" "az1 $HOST ssd" \
    "$(t_zova aggregate show agg1 -f json | t_json '"%s %s %s" % (d["availability_zone"], ",".join(d["hosts"]), ",".join(k for k in d["metadata"] if k != "availability_zone"))')"
t_wait_for "list --long shows hosts and properties" 5 sh -c \
    "'$ZOVA' aggregate list --long | grep -q \"agg1 .* az1 .* $HOST .*ssd='true'\""
t_wait_for "compute service in zone az1" 10 sh -c \
    "'$ZOVA' compute service list -f json | grep -q '\"zone\": \"az1\"'"
t_eq "zone list --long: one row per service" "az1 $HOST compute" \
    "$(t_zova availability zone list --long -f json | t_json '" ".join("%s %s %s" % (r["zone_name"], r["host_name"], r["service_name"]) for r in d if r.get("host_name"))')"
t_exit "unknown aggregate is exit 1" 1 "could not be found" t_zova aggregate show nope
t_exit "unset needs --property" 2 "usage: zova aggregate unset" t_zova aggregate unset agg1

# Server groups.
t_check "server group create with a rule" \
    t_zova server group create --policy anti-affinity --rule max_server_per_host=2 grp
t_eq "the rule is an integer" "2" "$(t_zova server group show grp -f json | t_json 'd["rules"]["max_server_per_host"]')"
t_eq "server group list" "grp anti-affinity" \
    "$(t_zova server group list -f json | t_json '" ".join("%s %s" % (g["name"], g["policy"]) for g in d)')"
t_exit "bad rule value is exit 2" 2 "usage: zova server group create" \
    t_zova server group create --policy anti-affinity --rule max_server_per_host=x bad
t_exit "unknown rule is exit 2" 2 "unknown rule" \
    t_zova server group create --policy anti-affinity --rule color=red bad
t_check "server group delete" t_zova server group delete grp

# Resource providers.
t_eq "provider list" "$HOST" "$(t_zova resource provider list -f json | t_json 'd[0]["name"]')"
t_check "inventory set, two classes" t_zova resource provider inventory set \
    --resource VCPU:allocation_ratio=2.5 --resource VCPU:reserved=1 --resource MEMORY_MB:reserved=64 "$HOST"
t_eq "inventory set took" "2.5 1 64" \
    "$(t_zova resource provider show "$HOST" -f json | t_json '"%g %d %d" % (d["inventories"]["VCPU"]["allocation_ratio"], d["inventories"]["VCPU"]["reserved"], d["inventories"]["MEMORY_MB"]["reserved"])')"
t_check "provider show table" t_zova resource provider show --allocations "$HOST"
t_exit "bad --resource syntax is exit 2" 2 "CLASS:FIELD=VALUE" \
    t_zova resource provider inventory set --resource VCPU=4 "$HOST"
t_exit "unknown --resource field is exit 2" 2 "unknown field" \
    t_zova resource provider inventory set --resource VCPU:total=4 "$HOST"
t_exit "unknown provider is exit 1" 1 "could not be found" t_zova resource provider show nope

# Flavor extra specs.
t_check "flavor create" t_zova flavor create --vcpus 1 --ram 64 --disk 1 m1
t_check "flavor set" t_zova flavor set --property hw:cpu_policy=dedicated --property a=b m1
t_check "flavor unset" t_zova flavor unset --property a m1
t_eq "extra specs" "hw:cpu_policy='dedicated'" \
    "$(t_zova flavor show m1 | sed -n "s/^| extra_specs *| \(.*[^ ]\) *|$/\1/p")"

# server create: AZ:HOST passes through as given; a repeated --hint key
# becomes an array (its first, bad, value is the one refused).
head -c 65536 /dev/urandom >"$T_DIR/disk.img"
t_check "image create" t_zova image create --file "$T_DIR/disk.img" img
t_check "server create --availability-zone az1:HOST" \
    t_zova server create --flavor m1 --image img --availability-zone "az1:$HOST" --wait --wait-timeout 60 s1
S1=$(t_zova server show s1 -f json | t_json 'd["id"]')
t_exit "repeated --hint is an array" 1 "'bbb' is not a server UUID" \
    t_zova server create --flavor m1 --image img --hint same_host=bbb --hint same_host="$S1" s2
t_check "single --hint is a string" \
    t_zova server create --flavor m1 --image img --hint same_host="$S1" --wait --wait-timeout 60 s3
t_exit "unknown AZ:HOST host is exit 1" 1 "could not be found" \
    t_zova server create --flavor m1 --image img --availability-zone az1:nohost s4

t_stop aio
t_done
