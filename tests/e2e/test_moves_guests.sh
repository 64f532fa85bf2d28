#!/usr/bin/env bash
# test_moves_guests.sh: real QEMU guests (TCG) moved between two real
# libvirt hosts on this machine (scripts/two-hosts.sh), through the CLI, on
# a cluster of one conductor, scheduler and api and one compute process
# per host.
#
# Separate instances directories (hosts a and b):
#   - cold migration: a file written in the guest before the move is read
#     back after it, on the other host; the domain is on the destination
#     only; confirm leaves nothing of the server on the source;
#   - resize to a bigger flavor: the guest sees the bigger root disk and
#     the new memory; revert: back on the source with the old flavor, the
#     file intact, nothing left on the other host;
#   - evacuate off a host that died (its compute killed, its guest
#     destroyed as a power loss does, the host forced down): the server is
#     rebuilt from its image on the other host (the file is gone, as Nova
#     says); the old host, started again, does not run the guest and
#     removes its copy.
# One instances directory for both (hosts sa and sb, --shared): evacuate
# keeps the guest's disk (the file survives); the old host, started again,
# undefines its copy and keeps the disk the new host is using.
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
SEP_A_URI=$A_URI SEP_B_URI=$B_URI SEP_A_INST=$A_INSTANCES SEP_B_INST=$B_INSTANCES
eval "$(bash "$TWO" start "$PAIR_SHARED" --shared 2>"$T_DIR/two-hosts-shared.log")" \
    || s_abort "two-hosts.sh start (shared): $(tail -5 "$T_DIR/two-hosts-shared.log")"
SH_A_URI=$A_URI SH_B_URI=$B_URI SH_INST=$A_INSTANCES
t_eq "--shared: both hosts see one instances directory" "$A_INSTANCES" "$B_INSTANCES"

declare -A URI=([a]=$SEP_A_URI [b]=$SEP_B_URI [sa]=$SH_A_URI [sb]=$SH_B_URI)
declare -A INST=([a]=$SEP_A_INST [b]=$SEP_B_INST [sa]=$SH_INST [sb]=$SH_INST)

# --- zova: a cluster of four compute hosts ----------------------------------------
API_PORT=$(t_port)
export ZOVA_ENDPOINT="tcp://127.0.0.1:$API_PORT"
CONDUCTOR_EP="tcp://127.0.0.1:$(t_port)"
t_config "$T_DIR/conductor.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    conductor.housekeeping_interval=1
t_config "$T_DIR/scheduler.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    scheduler.host_refresh_interval_ms=200
t_config "$T_DIR/api.conf" DEFAULT.host=controller api.endpoint="$ZOVA_ENDPOINT" conductor.endpoint="$CONDUCTOR_EP"
for host in a b sa sb; do
    low=$(t_port_range 10)
    t_config "$T_DIR/$host.conf" DEFAULT.host="$host" conductor.endpoint="$CONDUCTOR_EP" \
        DEFAULT.shutdown_timeout=15 compute.instances_path="${INST[$host]}" \
        compute.sync_power_state_interval=5 compute.reserved_host_memory_mb=0 compute.ram_allocation_ratio=4.0 \
        libvirt.connection_uri="${URI[$host]}" libvirt.virt_type=qemu \
        serial_console.port_range="$low:$(( low + 9 ))"
done
start () {
    case $1 in
        conductor|scheduler|api) t_start "$1" "$1" "$T_DIR/$1.conf" ;;
        *) t_start "$1" compute "$T_DIR/$1.conf" ;;
    esac
}
for name in conductor scheduler a b sa sb api; do start "$name"; done
t_wait_api 30
up_count () { t_zova -f json hypervisor list | t_json 'sum(1 for h in d if h["state"] == "up")'; }
s_all_up () { [ "$(up_count)" = 4 ]; }
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
t_check "flavor g.big (192 MiB, 2 GiB)" t_zova flavor create --vcpus 1 --ram 192 --disk 2 g.big

# --- helpers --------------------------------------------------------------------
show () { t_zova -f json server show "$1"; }
field () { show "$1" | t_json "$2"; }
states () { field "$1" '"%s %s %s %s %s" % (d["status"], d["host"], d["flavor"], d["task_state"], d["power_state"])'; }
uuid_of () { field "$1" 'd["id"]'; }
host_of () { field "$1" 'd["host"]'; }
agent () { virsh -c "$1" qemu-agent-command --timeout 10 "$2" "$3"; }
ping_on () { agent "$1" "$2" '{"execute":"guest-ping"}' >/dev/null 2>&1; }
# defined_on URI DOMAIN: libvirt there knows the domain.
defined_on () { virsh -q -c "$1" dominfo "$2" >/dev/null 2>&1; }
not_defined_on () { ! defined_on "$@"; }

# guest_sh URI DOMAIN SCRIPT: run a shell script in the guest (guest-exec).
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
# The root disk's size in bytes and the memory the guest kernel sees, in MiB.
disk_bytes () { guest_sh "$1" "$2" 'echo $(( $(cat /sys/block/vda/size) * 512 ))'; }
mem_mib () { guest_sh "$1" "$2" "awk '/^MemTotal/ { print int(\$2 / 1024) }' /proc/meminfo"; }

# boot NAME HOST: a g.small server from guest-disk on HOST, its agent up.
boot () {
    t_check "$1: boot on $2" t_zova server create --flavor g.small --image guest-disk \
        --availability-zone "nova:$2" --wait --wait-timeout 180 "$1"
    t_wait_for "$1: its agent answers on $2" 120 ping_on "${URI[$2]}" "zova-$(uuid_of "$1")"
}

# power_loss HOST: the host dies: its compute is killed, its guests stop as
# at a power cut (destroyed, still defined), and an operator marks it down.
power_loss () {
    local host=$1 dom
    t_kill9 "$host"
    for dom in $(virsh -q -c "${URI[$host]}" list --name); do
        virsh -q -c "${URI[$host]}" destroy "$dom" >/dev/null
    done
    t_check "$host: compute service set --down" t_zova compute service set --down "$host"
}

# ============================ separate instances directories ======================
echo "== cold migration, resize, evacuate: separate instances directories =="
# The scheduler chooses among a and b alone while sa and sb are disabled.
for host in sa sb; do
    t_check "$host: disabled while a and b are tested" t_zova compute service set --disable "$host"
done
boot vm1 a
U1=$(uuid_of vm1); D1="zova-$U1"
MARK="zova-marker-$RANDOM-$(date +%s)"
t_check "vm1: a file written in the guest" guest_sh "${URI[a]}" "$D1" "echo $MARK >/marker; sync"
t_eq "vm1: g.small's root disk and memory in the guest" "1073741824 yes" \
    "$(disk_bytes "${URI[a]}" "$D1") $([ "$(mem_mib "${URI[a]}" "$D1")" -le 128 ] && echo yes || echo no)"

# Cold migration a -> b, then confirm.
t_check "vm1: server migrate --wait" t_zova server migrate --wait --wait-timeout 240 vm1
t_eq "vm1: VERIFY_RESIZE on b, same flavor, running" "VERIFY_RESIZE b g.small None running" "$(states vm1)"
t_wait_for "vm1: its agent answers on b" 120 ping_on "${URI[b]}" "$D1"
t_eq "vm1: the file is read back on b" "$MARK" "$(guest_sh "${URI[b]}" "$D1" 'cat /marker')"
t_check "vm1: the domain is not on a" not_defined_on "${URI[a]}" "$D1"
t_check "vm1: the source's directory waits aside on a" test -d "${INST[a]}/${U1}_resize"
t_check "vm1: resize confirm --wait" t_zova server resize confirm --wait vm1
t_eq "vm1: ACTIVE on b" "ACTIVE b g.small None running" "$(states vm1)"
t_check "vm1: confirm leaves nothing on a" bash -c \
    "! ls -d '${INST[a]}/$U1'* 2>/dev/null | grep -q . && ! virsh -q -c '${URI[a]}' dominfo '$D1' >/dev/null 2>&1"
t_eq "migration record: kind, hosts, status" "migration a b confirmed" \
    "$(t_zova -f json server migration list vm1 | t_json '"%s %s %s %s" % (d[0]["kind"], d[0]["source_host"], d[0]["dest_host"], d[0]["status"])')"

# Resize b -> a (not the same host: allow_resize_to_same_host is off), revert.
t_check "vm1: server resize --flavor g.big --wait" t_zova server resize --flavor g.big --wait --wait-timeout 240 vm1
t_eq "vm1: VERIFY_RESIZE on a with g.big" "VERIFY_RESIZE a g.big None running" "$(states vm1)"
t_wait_for "vm1: its agent answers on a" 120 ping_on "${URI[a]}" "$D1"
t_eq "vm1: the guest sees the 2 GiB root disk" "2147483648" "$(disk_bytes "${URI[a]}" "$D1")"
t_eq "vm1: the guest sees more memory (192 MiB flavor)" "yes" \
    "$(m=$(mem_mib "${URI[a]}" "$D1"); [ "$m" -gt 128 ] && [ "$m" -le 192 ] && echo yes || echo "no ($m MiB)")"
t_eq "vm1: the file moved with the disk" "$MARK" "$(guest_sh "${URI[a]}" "$D1" 'cat /marker')"
t_check "vm1: resize revert --wait" t_zova server resize revert --wait --wait-timeout 240 vm1
t_eq "vm1: ACTIVE on b with g.small again" "ACTIVE b g.small None running" "$(states vm1)"
t_wait_for "vm1: its agent answers on b after the revert" 120 ping_on "${URI[b]}" "$D1"
t_eq "vm1: the file is intact" "$MARK" "$(guest_sh "${URI[b]}" "$D1" 'cat /marker')"
t_eq "vm1: the 1 GiB root disk again" "1073741824" "$(disk_bytes "${URI[b]}" "$D1")"
t_check "vm1: the revert leaves nothing on a" bash -c \
    "! ls -d '${INST[a]}/$U1'* 2>/dev/null | grep -q . && ! virsh -q -c '${URI[a]}' dominfo '$D1' >/dev/null 2>&1"

# b dies; evacuate to a: rebuilt from the image (local disks are lost).
t_check_fails "evacuate while b is up is refused" "is still in use" t_zova server evacuate vm1
power_loss b
t_check "vm1: server evacuate --wait" t_zova server evacuate --wait --wait-timeout 240 vm1
t_eq "vm1: ACTIVE on a" "ACTIVE a g.small None running" "$(states vm1)"
t_wait_for "vm1: its agent answers on a" 120 ping_on "${URI[a]}" "$D1"
t_eq "vm1: rebuilt from its image: the file is gone" "absent" \
    "$(guest_sh "${URI[a]}" "$D1" 'test -f /marker && echo present || echo absent')"
t_eq "evacuation record" "evacuation b a done" \
    "$(t_zova -f json server migration list vm1 | t_json '"%s %s %s %s" % (d[0]["kind"], d[0]["source_host"], d[0]["dest_host"], d[0]["status"])')"
t_check "b's copy is still there while b is dead" defined_on "${URI[b]}" "$D1"
start b
t_wait_for "b, started again, removes the evacuated copy from libvirt" 60 not_defined_on "${URI[b]}" "$D1"
t_wait_for "... and from its instances directory" 30 bash -c "! test -e '${INST[b]}/$U1'"
t_check "b: compute service set --up" t_zova compute service set --up b
t_wait_for "four hosts up again" 60 s_all_up
t_eq "vm1: still ACTIVE on a, running" "ACTIVE a g.small None running" "$(states vm1)"

# ================================ one shared directory ============================
echo "== evacuate on shared storage =="
for host in sa sb; do t_check "$host: enabled" t_zova compute service set --enable "$host"; done
boot vm2 sa
U2=$(uuid_of vm2); D2="zova-$U2"
MARK2="zova-shared-$RANDOM-$(date +%s)"
t_check "vm2: a file written in the guest" guest_sh "${URI[sa]}" "$D2" "echo $MARK2 >/marker; sync"
power_loss sa
t_check "vm2: server evacuate --host sb --wait" t_zova server evacuate --host sb --wait --wait-timeout 240 vm2
t_eq "vm2: ACTIVE on sb" "ACTIVE sb g.small None running" "$(states vm2)"
t_wait_for "vm2: its agent answers on sb" 120 ping_on "${URI[sb]}" "$D2"
t_eq "vm2: the disk was kept: the file survived" "$MARK2" "$(guest_sh "${URI[sb]}" "$D2" 'cat /marker')"
start sa
t_wait_for "sa, started again, undefines its copy" 60 not_defined_on "${URI[sa]}" "$D2"
t_check "... and keeps the shared disk sb runs on" test -f "$SH_INST/$U2/disk"
t_check "vm2: still answering on sb" ping_on "${URI[sb]}" "$D2"
t_check "sa: compute service set --up" t_zova compute service set --up sa

# --- usage, delete, stop ----------------------------------------------------------
s_usage_matches () {
    t_zova -f json server list >"$T_DIR/servers.json" && t_zova -f json hypervisor list >"$T_DIR/hv.json" || return 1
    python3 - "$T_DIR/servers.json" "$T_DIR/hv.json" <<'EOF'
import json, sys
servers = json.load(open(sys.argv[1])); hvs = json.load(open(sys.argv[2]))
ram = {"g.small": 128, "g.big": 192}
want = {h["host"]: 0 for h in hvs}
for s in servers:
    want[s["host"]] += ram[s["flavor"]]
have = {h["host"]: h["memory_mb_used"] for h in hvs}
sys.exit(0 if want == have else (print("want", want, "have", have) or 1))
EOF
}
t_wait_for "usage is what the servers use" 20 s_usage_matches
t_check "delete vm1" t_zova server delete --wait vm1
t_check "delete vm2" t_zova server delete --wait vm2
t_wait_for "no domain left on any host" 60 bash -c \
    "for u in '${URI[a]}' '${URI[b]}' '${URI[sa]}' '${URI[sb]}'; do [ -z \"\$(virsh -q -c \"\$u\" list --all --name)\" ] || exit 1; done"
for name in api a b sa sb scheduler conductor; do t_stop "$name"; done
t_done
