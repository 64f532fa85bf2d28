#!/usr/bin/env bash
# test_policy.sh: who may do what, through the CLI and two apis of one cloud.
#
# Until zova authenticates its callers, each api acts for the project, user
# and roles of its config ([api] default_project, default_user,
# default_roles) and stamps them on every request's context.  This cluster
# has two apis on one conductor: the operator's (an admin of project
# "admin") and a tenant's (a member of project "p2").  The tenant is
# refused every admin-only request with Nova's 403 words, sees only its
# project's servers (another project's server is not there: 404), and
# still does what a member may: boot, show, stop and delete its own.  The
# operator sees both projects with --all-projects.  Nothing a refused
# request asked for exists afterwards.

source "$(dirname "$0")/lib.sh"

unset ZOVA_CONFIG
ADMIN_API="tcp://127.0.0.1:$(t_port)"
MEMBER_API="tcp://127.0.0.1:$(t_port)"
CONDUCTOR_EP="tcp://127.0.0.1:$(t_port)"
HOST=policy-node

t_config "$T_DIR/conductor.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP"
t_config "$T_DIR/scheduler.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    scheduler.host_refresh_interval_ms=200
t_config "$T_DIR/compute.conf" DEFAULT.host="$HOST" conductor.endpoint="$CONDUCTOR_EP" \
    compute.local_gb=100 libvirt.connection_uri="test:///default"
t_config "$T_DIR/admin-api.conf" DEFAULT.host=operator api.endpoint="$ADMIN_API" \
    conductor.endpoint="$CONDUCTOR_EP"
t_config "$T_DIR/member-api.conf" DEFAULT.host=tenant api.endpoint="$MEMBER_API" \
    conductor.endpoint="$CONDUCTOR_EP" api.default_project=p2 api.default_user=eve \
    api.default_roles=member,reader
t_start conductor conductor "$T_DIR/conductor.conf"
t_start scheduler scheduler "$T_DIR/scheduler.conf"
t_start compute compute "$T_DIR/compute.conf"
t_start admin_api api "$T_DIR/admin-api.conf"
t_start member_api api "$T_DIR/member-api.conf"

admin () { t_zova --endpoint "$ADMIN_API" "$@"; }
member () { t_zova --endpoint "$MEMBER_API" "$@"; }
export ZOVA_ENDPOINT=$ADMIN_API
t_wait_api 20
t_wait_for "the tenant's api answers" 20 member ping
s_hypervisor_up () { [ "$(admin -f json hypervisor list | t_json 'len(d)')" = 1 ]; }
t_wait_for "the compute host is up" 20 s_hypervisor_up

# t_refused DESCRIPTION PATTERN COMMAND...: exit 1 with PATTERN on stderr.
t_refused () {
    local what=$1 pattern=$2; shift 2
    local status=0
    "$@" >"$T_DIR/last.out" 2>"$T_DIR/last.err" || status=$?
    T_CHECKS=$((T_CHECKS + 1))
    if [ "$status" -ne 1 ]; then
        t_fail "$what: exit $status, expected 1: $(head -c 400 "$T_DIR/last.err")"
    elif ! grep -qF -- "$pattern" "$T_DIR/last.err"; then
        t_fail "$what: stderr lacks '$pattern': $(head -c 400 "$T_DIR/last.err")"
    else
        echo "  ok: $what"
    fi
}

echo "== the operator sets the cloud up and boots a server =="
t_check "admin: flavor create" admin flavor create --vcpus 1 --ram 64 --disk 1 tiny
head -c 65536 /dev/urandom >"$T_DIR/image.raw"
t_check "admin: image create" admin image create --file "$T_DIR/image.raw" cirros
t_check "admin: server create --wait" admin server create --flavor tiny --image cirros --wait ops-vm
OPS_ID=$(admin -f json server show ops-vm | t_json 'd["id"]')
t_eq "the operator's server is in project admin" "admin admin" \
    "$(admin -f json server show ops-vm | t_json '"%s %s" % (d["project_id"], d["user_id"])')"

echo "== a member: refused the admin-only requests, 403 in Nova's words =="
t_refused "member: aggregate create" \
    "Policy doesn't allow os_compute_api:os-aggregates:create to be performed." \
    member aggregate create sneaky
t_refused "member: flavor create" "os_compute_api:os-flavor-manage:create" \
    member flavor create --vcpus 64 --ram 1 --disk 1 sneaky
t_refused "member: compute service list" "os_compute_api:os-services:list" member compute service list
t_refused "member: compute service set --disable" "os_compute_api:os-services:update" \
    member compute service set --disable "$HOST"
t_refused "member: hypervisor list" "os_compute_api:os-hypervisors:list" member hypervisor list
t_refused "member: resource provider list" "placement:resource_providers:list" member resource provider list
t_refused "member: server list --all-projects" "os_compute_api:servers:index:get_all_tenants" \
    member server list --all-projects
t_refused "member: forced host" "os_compute_api:servers:create:forced_host" \
    member server create --flavor tiny --image cirros --availability-zone "nova:$HOST" forced

echo "== a member: another project's server is not there =="
t_eq "member: server list shows none of project admin" "0" "$(member -f json server list | t_json 'len(d)')"
t_refused "member: server show by id" "No server with a name or ID of '$OPS_ID' exists." member server show "$OPS_ID"
t_refused "member: server stop by id" "No server with a name or ID of '$OPS_ID' exists." member server stop "$OPS_ID"
t_refused "member: server delete by id" "No server with a name or ID of '$OPS_ID' exists." member server delete "$OPS_ID"
t_refused "member: console log" "No server with a name or ID of '$OPS_ID' exists." member console log show "$OPS_ID"

echo "== a member: what a member may do =="
t_check "member: flavor list" member flavor list
t_check "member: availability zone list" member availability zone list
t_check "member: server create --wait" member server create --flavor tiny --image cirros --wait tenant-vm
t_eq "the tenant's server is in project p2, user eve" "p2 eve ACTIVE" \
    "$(member -f json server show tenant-vm | t_json '"%s %s %s" % (d["project_id"], d["user_id"], d["status"])')"
t_check "member: stop its own server" member server stop --wait tenant-vm
t_eq "member: its server is SHUTOFF" "SHUTOFF" "$(member -f json server show tenant-vm | t_json 'd["status"]')"
t_refused "member: server migrate of its own server" "os_compute_api:os-migrate-server:migrate" \
    member server migrate tenant-vm
t_refused "member: live migration of its own server" "os_compute_api:os-migrate-server:migrate" \
    member server migrate --live-migration tenant-vm
t_refused "member: evacuate" "os_compute_api:os-evacuate" member server evacuate tenant-vm
t_refused "member: migration abort" "os_compute_api:servers:migrations:delete" \
    member server migration abort tenant-vm 1
t_refused "member: migration force complete" "os_compute_api:servers:migrations:force_complete" \
    member server migration force complete tenant-vm 1
t_eq "member: the refusals changed nothing (SHUTOFF, no task, no migration)" "SHUTOFF None 0" \
    "$(member -f json server show tenant-vm | t_json '"%s %s" % (d["status"], d["task_state"])') $(member -f json server migration list tenant-vm | t_json 'len(d)')"

echo "== the operator sees every project =="
t_eq "admin: server list, own project only" "ops-vm" \
    "$(admin -f json server list | t_json '" ".join(sorted(s["name"] for s in d))')"
t_eq "admin: server list --all-projects" "ops-vm tenant-vm" \
    "$(admin -f json server list --all-projects | t_json '" ".join(sorted(s["name"] for s in d))')"
TENANT_ID=$(admin -f json server list --all-projects | t_json '[s["id"] for s in d if s["name"] == "tenant-vm"][0]')
t_eq "admin: server show of the tenant's server by id" "p2 SHUTOFF" \
    "$(admin -f json server show "$TENANT_ID" | t_json '"%s %s" % (d["project_id"], d["status"])')"

echo "== nothing a refused request asked for exists =="
t_eq "no aggregate" "0" "$(admin -f json aggregate list | t_json 'len(d)')"
t_eq "one flavor" "tiny" "$(admin -f json flavor list | t_json '" ".join(f["name"] for f in d)')"
t_eq "the operator's server untouched" "ACTIVE" "$(admin -f json server show ops-vm | t_json 'd["status"]')"
t_eq "the compute service still enabled" "enabled" \
    "$(admin -f json compute service list | t_json '[s["status"] for s in d if s["binary"] == "compute"][0]')"

echo "== each deletes its own =="
t_check "member: delete its server" member server delete --wait tenant-vm
t_check "admin: delete its server" admin server delete --wait ops-vm

for name in member_api admin_api compute scheduler conductor; do t_stop "$name"; done
t_done
