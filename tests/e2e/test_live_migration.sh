#!/usr/bin/env bash
# test_live_migration.sh: real QEMU guests (TCG) moved live between two real
# libvirt hosts on this machine (scripts/two-hosts.sh), through the CLI, on
# a cluster of one conductor, scheduler and api and one compute process per
# host.
#
#   - block migration (separate instances directories, hosts a and b) and
#     shared storage (one directory, hosts sa and sb): the guest's uptime
#     and a counter loop inside it go on across the move (it was not
#     rebooted), a file written before is there after, the domain is on
#     the destination only, nothing of the server is left on the source;
#   - a guest dirtying its memory while the job is held to a low bandwidth:
#     abort (the guest runs on at the source, untouched, the migration
#     "cancelled"); force complete with post-copy permitted (it completes);
#     the completion timeout with each action (abort, force_complete, the
#     latter pausing the guest, which runs again at the destination);
#   - kill -9 of the source compute, of the destination compute and of the
#     conductor during the job: after the restart one running copy, the
#     move completed, records and usage consistent;
#   - refusals: its own host, a disabled host, shared-storage migration
#     without shared storage, a destination whose CPU cannot run the guest
#     (its compute configured with cpu_mode custom and cpu_models qemu32).
#
# A machine that cannot run QEMU fails this test loudly: it never passes by
# skipping.

source "$(dirname "$0")/lib.sh"

GUEST=${ZV_GUEST_DIR:-/var/tmp/zova-test-guest}
TWO="$ZV_ROOT/scripts/two-hosts.sh"
PAIR_SEP="$T_DIR/separate"
PAIR_SHARED="$T_DIR/shared"
T_TIMEOUT=30
unset ZOVA_CONFIG

s_cleanup () {
    local pid
    for pid in "${T_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    sleep 1
    bash "$TWO" stop "$PAIR_SEP" >/dev/null 2>&1
    bash "$TWO" stop "$PAIR_SHARED" >/dev/null 2>&1
    t_cleanup
}
trap s_cleanup EXIT

s_abort () { t_fail "$*"; echo "$T_NAME: QEMU GUESTS CANNOT RUN HERE: $*"; t_done; exit 1; }

# --- the guest, two pairs of hosts ---------------------------------------------
command -v qemu-system-x86_64 >/dev/null || s_abort "qemu-system-x86_64 is missing (scripts/deps.sh --guest)"
bash "$ZV_ROOT/scripts/build-test-guest.sh" "$GUEST" 2>"$T_DIR/build-guest.log" \
    || s_abort "build-test-guest.sh failed: $(tail -5 "$T_DIR/build-guest.log")"
export LIBVIRTD_TEST_CAPS_CACHE="$GUEST/libvirt-cache"
eval "$(bash "$TWO" start "$PAIR_SEP" 2>"$T_DIR/two-hosts-separate.log")" \
    || s_abort "two-hosts.sh start (separate): $(tail -5 "$T_DIR/two-hosts-separate.log")"
declare -A URI=([a]=$A_URI [b]=$B_URI) P2P=([a]=$A_P2P_URI [b]=$B_P2P_URI)
declare -A ADDR=([a]=$A_MIGRATION_ADDR [b]=$B_MIGRATION_ADDR) INST=([a]=$A_INSTANCES [b]=$B_INSTANCES)
eval "$(bash "$TWO" start "$PAIR_SHARED" --shared 2>"$T_DIR/two-hosts-shared.log")" \
    || s_abort "two-hosts.sh start (shared): $(tail -5 "$T_DIR/two-hosts-shared.log")"
URI+=([sa]=$A_URI [sb]=$B_URI); P2P+=([sa]=$A_P2P_URI [sb]=$B_P2P_URI)
ADDR+=([sa]=$A_MIGRATION_ADDR [sb]=$B_MIGRATION_ADDR); INST+=([sa]=$A_INSTANCES [sb]=$B_INSTANCES)

# --- zova: a cluster of four compute hosts ----------------------------------------
API_PORT=$(t_port)
export ZOVA_ENDPOINT="tcp://127.0.0.1:$API_PORT"
CONDUCTOR_EP="tcp://127.0.0.1:$(t_port)"
t_config "$T_DIR/conductor.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    conductor.housekeeping_interval=1
t_config "$T_DIR/scheduler.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    scheduler.host_refresh_interval_ms=200
t_config "$T_DIR/api.conf" DEFAULT.host=controller api.endpoint="$ZOVA_ENDPOINT" conductor.endpoint="$CONDUCTOR_EP"
declare -A PORTS
for host in a b sa sb; do PORTS[$host]=$(t_port_range 10); done
# compute_config HOST [KEY=VALUE...]: HOST's config, with its live
# migration addresses, and the extra keys given.
compute_config () {
    local host=$1 low=${PORTS[$1]}; shift
    t_config "$T_DIR/$host.conf" DEFAULT.host="$host" conductor.endpoint="$CONDUCTOR_EP" \
        DEFAULT.shutdown_timeout=15 compute.instances_path="${INST[$host]}" \
        compute.sync_power_state_interval=5 compute.reserved_host_memory_mb=0 compute.ram_allocation_ratio=4.0 \
        libvirt.connection_uri="${URI[$host]}" libvirt.virt_type=qemu \
        libvirt.live_migration_peer_uri="${P2P[$host]}" libvirt.live_migration_inbound_addr="${ADDR[$host]}" \
        serial_console.port_range="$low:$(( low + 9 ))" "$@"
}
start () {
    case $1 in
        conductor|scheduler|api) t_start "$1" "$1" "$T_DIR/$1.conf" ;;
        *) t_start "$1" compute "$T_DIR/$1.conf" ;;
    esac
}
up_count () { t_zova -f json hypervisor list | t_json 'sum(1 for h in d if h["state"] == "up")'; }
s_all_up () { [ "$(up_count)" = 4 ]; }
# restart_compute HOST [KEY=VALUE...]: HOST's compute again, with these keys.
restart_compute () {
    local host=$1; shift
    t_stop "$host"
    compute_config "$host" "$@"
    start "$host"
    t_wait_for "$host up again" 60 s_all_up
}
for host in a b sa sb; do compute_config "$host"; done
for name in conductor scheduler a b sa sb api; do start "$name"; done
t_wait_api 30
t_wait_for "four hosts up" 60 s_all_up

CMDLINE=$(cat "$GUEST/cmdline")
t_check "kernel image" t_zova image create --file "$GUEST/vmlinux" --disk-format aki guest-kernel
t_check "ramdisk image" t_zova image create --file "$GUEST/initrd-boot.img" --disk-format ari guest-ramdisk
KERNEL=$(t_zova image show guest-kernel -f json | t_json 'd["id"]')
RAMDISK=$(t_zova image show guest-ramdisk -f json | t_json 'd["id"]')
t_check "qcow2 root disk image" t_zova image create --file "$GUEST/disk.qcow2" --disk-format qcow2 \
    --property "kernel_id=$KERNEL" --property "ramdisk_id=$RAMDISK" \
    --property "os_command_line=$CMDLINE root=/dev/vda" guest-disk
t_check "flavor g.small (128 MiB, 1 GiB)" t_zova flavor create --vcpus 1 --ram 128 --disk 1 g.small

# --- helpers --------------------------------------------------------------------
show () { t_zova -f json server show "$1"; }
field () { show "$1" | t_json "$2"; }
states () { field "$1" '"%s %s %s %s" % (d["status"], d["host"], d["task_state"], d["power_state"])'; }
uuid_of () { field "$1" 'd["id"]'; }
host_of () { field "$1" 'd["host"]'; }
agent () { virsh -c "$1" qemu-agent-command --timeout 10 "$2" "$3"; }
ping_on () { agent "$1" "$2" '{"execute":"guest-ping"}' >/dev/null 2>&1; }
defined_on () { virsh -q -c "$1" dominfo "$2" >/dev/null 2>&1; }
not_defined_on () { ! defined_on "$@"; }
running_on () { [ "$(virsh -q -c "$1" domstate "$2" 2>/dev/null | head -1)" = running ]; }
mig () { t_zova -f json server migration list "$1" | t_json "d[0]$2"; }

guest_sh () {
    local uri=$1 dom=$2 script=$3 req pid out
    req=$(python3 -c 'import json,sys; print(json.dumps({"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c",sys.argv[1]],"capture-output":True}}))' "$script")
    pid=$(agent "$uri" "$dom" "$req" 2>/dev/null | t_json 'd["return"]["pid"]') || return 99
    for _ in $(seq 150); do
        out=$(agent "$uri" "$dom" "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}" 2>/dev/null) || return 99
        if [ "$(echo "$out" | t_json 'd["return"]["exited"]')" = True ]; then
            echo "$out" | t_json '__import__("base64").b64decode(d["return"].get("out-data","")).decode()'
            return "$(echo "$out" | t_json 'd["return"].get("exitcode", 98)')"
        fi
        sleep 0.1
    done
    return 97
}
uptime_of () { guest_sh "$1" "$2" 'cut -d" " -f1 /proc/uptime' | cut -d. -f1; }
counter_of () { guest_sh "$1" "$2" 'cat /run/counter'; }
# A loop in the guest counting, detached from the agent.
start_counter () {
    guest_sh "$1" "$2" 'setsid sh -c "i=0; while true; do i=\$((i+1)); echo \$i >/run/counter; sleep 0.2; done" </dev/null >/dev/null 2>&1 &'
}
# A loop in the guest dirtying 16 MiB of its memory over and over.
start_dirtying () {
    guest_sh "$1" "$2" 'setsid sh -c "while true; do dd if=/dev/zero of=/run/dirty bs=1M count=16 2>/dev/null; done" </dev/null >/dev/null 2>&1 &'
}

# boot NAME HOST: a g.small server from guest-disk on HOST, its agent up.
boot () {
    t_check "$1: boot on $2" t_zova server create --flavor g.small --image guest-disk \
        --availability-zone "nova:$2" --wait --wait-timeout 180 "$1"
    t_wait_for "$1: its agent answers on $2" 120 ping_on "${URI[$2]}" "zova-$(uuid_of "$1")"
}

# moved_live NAME FROM TO: the checks after a live migration of NAME.
moved_live () {
    local name=$1 from=$2 to=$3 uuid dom
    uuid=$(uuid_of "$name"); dom="zova-$uuid"
    t_eq "$name: ACTIVE on $to, running, no task" "ACTIVE $to None running" "$(states "$name")"
    t_check "$name: the domain runs on $to" running_on "${URI[$to]}" "$dom"
    t_check "$name: and is not on $from" not_defined_on "${URI[$from]}" "$dom"
    t_eq "$name: migration completed" "live-migration completed $from $to" \
        "$(mig "$name" '["kind"], d[0]["status"], d[0]["source_host"], d[0]["dest_host"]' | tr -d "(),'")"
}

# ============================ block migration: a -> b ===============================
for host in sa sb; do t_check "$host: disabled while a and b are tested" t_zova compute service set --disable "$host"; done
echo "== block migration =="
boot vm1 a
U1=$(uuid_of vm1); D1="zova-$U1"
MARK="zova-live-$RANDOM"
t_check "vm1: a file written in the guest" guest_sh "${URI[a]}" "$D1" "echo $MARK >/marker; sync"
t_check "vm1: a counter loop runs in the guest" start_counter "${URI[a]}" "$D1"
sleep 1
UP0=$(uptime_of "${URI[a]}" "$D1"); C0=$(counter_of "${URI[a]}" "$D1")
t_check "vm1: server migrate --live-migration --block-migration --wait" \
    t_zova server migrate --live-migration --block-migration --wait --wait-timeout 240 vm1
moved_live vm1 a b
t_eq "vm1: not rebooted: its uptime went on" "yes" \
    "$([ "$(uptime_of "${URI[b]}" "$D1")" -ge "$UP0" ] && echo yes)"
sleep 1
t_eq "vm1: the counter loop went on" "yes" "$([ "$(counter_of "${URI[b]}" "$D1")" -gt "$C0" ] && echo yes)"
t_eq "vm1: the file is there" "$MARK" "$(guest_sh "${URI[b]}" "$D1" 'cat /marker')"
t_check "vm1: nothing of it left in a's instances directory" bash -c "! test -e '${INST[a]}/$U1'"
t_eq "vm1: the migration carried its disk (block)" "yes" "$(mig vm1 '.get("disk_total_bytes", 0) > 0 and "yes"')"

echo "== refusals =="
t_eq "live migration to its own host is refused" "yes" \
    "$(t_zova server migrate --live-migration --host b vm1 2>&1 | grep -q 'to current host (b)' && echo yes)"
t_eq "to a disabled host is refused" "yes" \
    "$(t_zova server migrate --live-migration --host sa vm1 2>&1 | grep -q 'Compute service of sa is unavailable' && echo yes)"
t_eq "--shared-migration without shared storage fails, the guest runs on" "error ACTIVE b" \
    "$(t_zova server migrate --live-migration --shared-migration --wait vm1 >/dev/null 2>&1; \
       echo "$(mig vm1 '["status"]') $(field vm1 '"%s %s" % (d["status"], d["host"])')")"
t_check "vm1: still running on b" running_on "${URI[b]}" "$D1"

# ============================ the job controls: b -> a ==============================
echo "== abort, force complete, completion timeout =="
t_check "vm1: memory dirtied in a loop" start_dirtying "${URI[b]}" "$D1"
restart_compute b libvirt.live_migration_bandwidth=2
t_check "vm1: migrate (held to 2 MiB/s)" t_zova server migrate --live-migration vm1
t_wait_for "vm1: its job runs" 60 bash -c "[ \"\$(\"$ZOVA\" -f json server migration list vm1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0][\"status\"], d[0].get(\"memory_processed_bytes\", 0) > 0)')\" = 'running True' ]"
t_check "vm1: server migration abort" t_zova server migration abort vm1 "$(mig vm1 '["id"]')"
t_wait_for "vm1: the migration is cancelled" 60 bash -c "[ \"\$(\"$ZOVA\" -f json server migration list vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"status\"])')\" = cancelled ]"
t_eq "vm1: ACTIVE on b, untouched" "ACTIVE b None running" "$(states vm1)"
t_check "vm1: running on b" running_on "${URI[b]}" "$D1"
t_check "vm1: not on a" not_defined_on "${URI[a]}" "$D1"
t_check "vm1: a cleaned what it made" bash -c "! test -e '${INST[a]}/$U1'"

restart_compute b libvirt.live_migration_bandwidth=2 libvirt.live_migration_permit_post_copy=true
t_check "vm1: migrate again (post-copy permitted)" t_zova server migrate --live-migration vm1
t_wait_for "vm1: its job runs" 60 bash -c "[ \"\$(\"$ZOVA\" -f json server migration list vm1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0][\"status\"], d[0].get(\"memory_processed_bytes\", 0) > 0)')\" = 'running True' ]"
t_check "vm1: server migration force complete" t_zova server migration force complete vm1 "$(mig vm1 '["id"]')"
t_wait_for "vm1: the migration completes (post-copy)" 120 bash -c "[ \"\$(\"$ZOVA\" -f json server migration list vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"status\"])')\" = completed ]"
moved_live vm1 b a
t_eq "vm1: the file is there" "$MARK" "$(guest_sh "${URI[a]}" "$D1" 'cat /marker')"

restart_compute a libvirt.live_migration_bandwidth=2 libvirt.live_migration_completion_timeout=3 \
    libvirt.live_migration_timeout_action=abort
t_check "vm1: migrate with a completion timeout of 3 s/GiB, action abort" \
    t_zova server migrate --live-migration vm1
t_wait_for "vm1: the timeout aborts it" 90 bash -c "[ \"\$(\"$ZOVA\" -f json server migration list vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"status\"])')\" = error ]"
t_eq "vm1: ACTIVE on a" "ACTIVE a None running" "$(states vm1)"
t_check "vm1: running on a" running_on "${URI[a]}" "$D1"

restart_compute a libvirt.live_migration_bandwidth=2 libvirt.live_migration_completion_timeout=3 \
    libvirt.live_migration_timeout_action=force_complete
t_check "vm1: migrate with the action force_complete (no post-copy: the guest pauses)" \
    t_zova server migrate --live-migration --wait --wait-timeout 240 vm1
moved_live vm1 a b
t_eq "vm1: the guest runs again at b (not left paused)" "running" \
    "$(virsh -q -c "${URI[b]}" domstate "$D1" | head -1)"

# ============================ a source killed during the job ========================
echo "== the source compute killed during the job =="
t_check "vm1: the loop dirtying its memory stopped" guest_sh "${URI[b]}" "$D1" \
    'for p in $(ps | grep "[d]d if=/dev/zero" | awk "{print \$1}") $(ps | grep "[w]hile true; do dd" | awk "{print \$1}"); do kill $p; done; true'
restart_compute b libvirt.live_migration_bandwidth=4
t_check "vm1: migrate (held to 4 MiB/s)" t_zova server migrate --live-migration vm1
t_wait_for "vm1: its job runs" 60 bash -c "[ \"\$(\"$ZOVA\" -f json server migration list vm1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0][\"status\"], d[0].get(\"memory_processed_bytes\", 0) > 0)')\" = 'running True' ]"
t_kill9 b
compute_config b
start b
t_wait_for "vm1: the move completes after b's restart" 240 bash -c "[ \"\$(\"$ZOVA\" -f json server migration list vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"status\"])')\" = completed ]"
moved_live vm1 b a
t_eq "exactly one running copy" "1" \
    "$(n=0; for h in a b sa sb; do running_on "${URI[$h]}" "$D1" && n=$((n + 1)); done; echo $n)"

job_runs () {
    [ "$(t_zova -f json server migration list "$1" | t_json '"%s %s" % (d[0]["status"], d[0].get("memory_processed_bytes", 0) > 0)')" = "running True" ]
}
migration_is () { [ "$(mig "$1" '["status"]')" = "$2" ]; }

echo "== the destination compute killed during the job =="
restart_compute a libvirt.live_migration_bandwidth=4
t_check "vm1: migrate a -> b (held to 4 MiB/s)" t_zova server migrate --live-migration vm1
t_wait_for "vm1: its job runs" 60 job_runs vm1
t_kill9 b
t_wait_for "vm1: the move completes without b's compute" 240 migration_is vm1 completed
compute_config b
start b
t_wait_for "b up again" 60 s_all_up
moved_live vm1 a b
t_eq "exactly one running copy" "1" \
    "$(n=0; for h in a b sa sb; do running_on "${URI[$h]}" "$D1" && n=$((n + 1)); done; echo $n)"

echo "== the conductor killed during the job =="
restart_compute b libvirt.live_migration_bandwidth=4
t_check "vm1: migrate b -> a (held to 4 MiB/s)" t_zova server migrate --live-migration vm1
t_wait_for "vm1: its job runs" 60 job_runs vm1
t_kill9 conductor
sleep 2
start conductor
t_wait_api 30
t_wait_for "vm1: the move completes after the conductor's restart" 240 migration_is vm1 completed
moved_live vm1 b a
t_eq "exactly one running copy" "1" \
    "$(n=0; for h in a b sa sb; do running_on "${URI[$h]}" "$D1" && n=$((n + 1)); done; echo $n)"

echo "== a destination whose CPU cannot run the guest =="
restart_compute b libvirt.cpu_mode=custom libvirt.cpu_models=qemu32
t_check_fails "vm1: to b, which offers only qemu32, fails the CPU check" "Unacceptable CPU info" \
    t_zova server migrate --live-migration --host b --wait --wait-timeout 120 vm1
t_eq "vm1: migration error, ACTIVE on a, running" "error ACTIVE a None running" \
    "$(mig vm1 '["status"]') $(states vm1)"
t_check "vm1: running on a" running_on "${URI[a]}" "$D1"
t_check "vm1: not on b" not_defined_on "${URI[b]}" "$D1"
restart_compute b

# ============================ shared storage: sa -> sb ==============================
echo "== shared storage =="
for host in sa sb; do t_check "$host: enabled" t_zova compute service set --enable "$host"; done
for host in a b; do t_check "$host: disabled" t_zova compute service set --disable "$host"; done
boot vm2 sa
U2=$(uuid_of vm2); D2="zova-$U2"
t_check "vm2: a file written in the guest" guest_sh "${URI[sa]}" "$D2" "echo $MARK >/marker; sync"
t_check "vm2: a counter loop" start_counter "${URI[sa]}" "$D2"
sleep 1
UP0=$(uptime_of "${URI[sa]}" "$D2"); C0=$(counter_of "${URI[sa]}" "$D2")
t_check "vm2: server migrate --live-migration --wait (storage shared: decided by the hosts)" \
    t_zova server migrate --live-migration --wait --wait-timeout 240 vm2
moved_live vm2 sa sb
t_eq "vm2: not rebooted" "yes" "$([ "$(uptime_of "${URI[sb]}" "$D2")" -ge "$UP0" ] && echo yes)"
sleep 1
t_eq "vm2: the counter went on" "yes" "$([ "$(counter_of "${URI[sb]}" "$D2")" -gt "$C0" ] && echo yes)"
t_eq "vm2: the file is there" "$MARK" "$(guest_sh "${URI[sb]}" "$D2" 'cat /marker')"
t_check "vm2: its shared directory stays (sb runs from it)" test -f "${INST[sb]}/$U2/disk"
t_eq "vm2: no disk was copied" "0" "$(mig vm2 '.get("disk_total_bytes", 0)')"

# --- usage, delete, stop ----------------------------------------------------------
s_usage_matches () {
    t_zova -f json server list >"$T_DIR/servers.json" && t_zova -f json hypervisor list >"$T_DIR/hv.json" || return 1
    python3 - "$T_DIR/servers.json" "$T_DIR/hv.json" <<'EOF'
import json, sys
servers = json.load(open(sys.argv[1])); hvs = json.load(open(sys.argv[2]))
want = {h["host"]: 0 for h in hvs}
for s in servers:
    want[s["host"]] += 128
have = {h["host"]: h["memory_mb_used"] for h in hvs}
sys.exit(0 if want == have else (print("want", want, "have", have) or 1))
EOF
}
t_wait_for "usage is what the servers use" 20 s_usage_matches
t_check "delete vm1" t_zova server delete --wait vm1
t_check "delete vm2" t_zova server delete --wait vm2
for name in api a b sa sb scheduler conductor; do t_stop "$name"; done
t_done
