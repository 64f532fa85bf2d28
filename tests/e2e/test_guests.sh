#!/usr/bin/env bash
# test_guests: real QEMU guests (TCG) through zova, end to end.
#
# Starts its own libvirtd (scripts/libvirtd-test.sh: own config, socket and
# pid files under the test's directory) unless ZV_LIBVIRT_URI names one,
# builds the tiny test guest (scripts/build-test-guest.sh, reused from
# ZV_GUEST_DIR, default /var/tmp/zova-test-guest, while its stamp matches),
# registers it as images (kernel, ramdisks, a qcow2 root disk whose
# properties boot it, as Glance's kernel_id/ramdisk_id do), and drives two
# guests at once through zovad all: build to ACTIVE with the agent
# answering, soft and hard reboot, stop/start, pause/unpause,
# suspend/resume (the guest's uptime shows RAM was kept), rescue/unrescue
# (the original disk is read inside the rescue guest), set root password,
# QEMU killed from outside, the guest powering itself off, libvirtd
# restarting (the host is degraded, then reconciled), and delete (nothing
# left in instances_path or libvirt).  Then one cluster case: separate
# conductor, api, scheduler and compute processes over tcp.
#
# A machine that cannot run QEMU fails this test loudly: it never passes by
# skipping.
. "$(dirname "$0")/lib.sh"

GUEST=${ZV_GUEST_DIR:-/var/tmp/zova-test-guest}
LV="$T_DIR/libvirt"
URI=${ZV_LIBVIRT_URI:-}
OWN_LIBVIRTD=
T_TIMEOUT=30

s_cleanup () {
    local pid
    for pid in "${T_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    t_libvirt_cleanup "$URI" "$LV" "$OWN_LIBVIRTD"
    t_cleanup
}
trap s_cleanup EXIT

s_abort () { t_fail "$*"; echo "$T_NAME: QEMU GUESTS CANNOT RUN HERE: $*"; t_done; exit 1; }

now_ms () { echo $(( $(date +%s%N) / 1000000 )); }
v () { virsh -q -c "$URI" "$@"; }
agent () { virsh -c "$URI" qemu-agent-command --timeout 10 "$@"; }

# guest_sh DOMAIN SCRIPT: run a shell script in the guest (guest-exec);
# prints its stdout, returns its exit code.
guest_sh () {
    local dom=$1 script=$2 req pid out
    req=$(python3 -c 'import json,sys; print(json.dumps({"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c",sys.argv[1]],"capture-output":True}}))' "$script")
    pid=$(agent "$dom" "$req" 2>/dev/null | t_json 'd["return"]["pid"]') || return 99
    for _ in $(seq 150); do
        out=$(agent "$dom" "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}" 2>/dev/null) || return 99
        if [ "$(echo "$out" | t_json 'd["return"]["exited"]')" = True ]; then
            echo "$out" | t_json '__import__("base64").b64decode(d["return"].get("out-data","")).decode()'
            return "$(echo "$out" | t_json 'd["return"].get("exitcode", 98)')"
        fi
        sleep 0.1
    done
    return 97
}

show () { t_zova server show "$1" -f json; }
field () { show "$1" | t_json "$2"; }
states () { field "$1" '"%s %s %s %s" % (d["status"], d["vm_state"], d["task_state"], d["power_state"])'; }
uuid_of () { field "$1" 'd["id"]'; }
dom_of () { echo "zova-$(uuid_of "$1")"; }
uptime_of () { guest_sh "$1" 'cut -d" " -f1 /proc/uptime' | cut -d. -f1; }

# agent_up NAME: the guest agent answered and zova recorded it on the server.
agent_up () { [ "$(field "$1" 'bool((d.get("guest") or {}).get("os") or (d.get("guest") or {}).get("hostname"))')" = True ]; }
has_ip () { [ "$(field "$1" 'any(a["address"].startswith("10.0.2.") for a in (d.get("guest") or {}).get("ip_addresses") or [])')" = True ]; }
ping_ok () { agent "$1" '{"execute":"guest-ping"}' >/dev/null 2>&1; }

# action NAME OP [ARGS...]: zova server OP --wait, then check the states.
expect_states () {
    t_eq "$1: $2" "$3" "$(states "$1")"
}

echo "real guests (logs in $T_DIR)"

# --- QEMU, the guest, libvirtd -------------------------------------------------
command -v qemu-system-x86_64 >/dev/null || s_abort "qemu-system-x86_64 is missing (scripts/deps.sh --guest)"
command -v qemu-img >/dev/null || s_abort "qemu-img is missing (scripts/deps.sh --guest)"
t0=$(now_ms)
bash "$ZV_ROOT/scripts/build-test-guest.sh" "$GUEST" 2>"$T_DIR/build-guest.log" \
    || s_abort "build-test-guest.sh failed: $(tail -5 "$T_DIR/build-guest.log")"
t_log "test guest in $GUEST ($(( $(now_ms) - t0 )) ms)"
if [ -z "$URI" ]; then
    export LIBVIRTD_TEST_CAPS_CACHE="$GUEST/libvirt-cache"
    URI=$(t_libvirtd start "$LV" 2>"$T_DIR/libvirtd-start.log") \
        || { URI=; s_abort "private libvirtd did not start: $(tail -3 "$T_DIR/libvirtd-start.log")"; }
    OWN_LIBVIRTD=1
fi
t_log "libvirt: $URI"
virsh -c "$URI" domcapabilities --virttype qemu >/dev/null 2>&1 || s_abort "libvirtd at $URI cannot run QEMU guests"

# --- zova all-in-one on that libvirtd -------------------------------------------
API="tcp://127.0.0.1:$(t_port)"
export ZOVA_ENDPOINT=$API
INST="$T_DIR/instances"
# Serial ports of this run's own (test_console says why), for both the
# all-in-one and the cluster's compute below.
SERIAL_LOW=$(t_port_range 20)
SERIAL_RANGE="serial_console.port_range=$SERIAL_LOW:$(( SERIAL_LOW + 19 ))"
t_config "$T_DIR/zova.conf" "api.endpoint=$API" "DEFAULT.shutdown_timeout=15" \
    "conductor.housekeeping_interval=1" "scheduler.host_refresh_interval_ms=200" \
    "compute.instances_path=$INST" "compute.sync_power_state_interval=5" \
    "compute.reserved_host_memory_mb=0" "compute.ram_allocation_ratio=4.0" \
    "libvirt.connection_uri=$URI" "libvirt.virt_type=auto" "libvirt.wait_soft_reboot_seconds=12" \
    "$SERIAL_RANGE"
t_start aio all "$T_DIR/zova.conf"
t_wait_api 30 || { tail -20 "$T_DIR/aio.log"; exit 1; }
t_eq "virt_type auto on a CPU without vmx/svm picks qemu (TCG)" "qemu" \
    "$(grep -q -E ' (vmx|svm)' /proc/cpuinfo && echo kvm || echo qemu)"
t_wait_for "compute reports its hypervisor" 20 bash -c "\"$ZOVA\" hypervisor list -f json | grep -q QEMU"

# Images: the kernel and ramdisks by themselves (aki/ari), a qcow2 root disk
# booted through its kernel_id/ramdisk_id/os_command_line, and an initramfs
# guest whose root disk is a small blank raw image.
CMDLINE=$(cat "$GUEST/cmdline")
t_check "kernel image" t_zova image create --file "$GUEST/vmlinux" --disk-format aki guest-kernel
t_check "boot ramdisk image" t_zova image create --file "$GUEST/initrd-boot.img" --disk-format ari guest-ramdisk-boot
t_check "full ramdisk image" t_zova image create --file "$GUEST/initrd.img" --disk-format ari guest-ramdisk
KERNEL=$(t_zova image show guest-kernel -f json | t_json 'd["id"]')
RD_BOOT=$(t_zova image show guest-ramdisk-boot -f json | t_json 'd["id"]')
RD_FULL=$(t_zova image show guest-ramdisk -f json | t_json 'd["id"]')
t_check "qcow2 disk image booted by kernel_id/ramdisk_id" t_zova image create --file "$GUEST/disk.qcow2" \
    --disk-format qcow2 --property "kernel_id=$KERNEL" --property "ramdisk_id=$RD_BOOT" \
    --property "os_command_line=$CMDLINE root=/dev/vda" guest-disk
truncate -s 16M "$T_DIR/blank.raw"
t_check "initramfs image" t_zova image create --file "$T_DIR/blank.raw" --disk-format raw \
    --property "kernel_id=$KERNEL" --property "ramdisk_id=$RD_FULL" --property "os_command_line=$CMDLINE" guest-ramfs
DISK_IMAGE=$(t_zova image show guest-disk -f json | t_json 'd["id"]')
t_check "flavor with ephemeral and swap" t_zova flavor create --vcpus 1 --ram 128 --disk 1 --ephemeral 1 --swap 32 g1.tiny

# --- build: two guests at once ------------------------------------------------
t0=$(now_ms)
t_check "boot vm-disk and vm-ram at once" bash -c "
    \"$ZOVA\" --timeout 30 server create --flavor g1.tiny --image guest-disk --wait --wait-timeout 120 vm-disk >/dev/null &
    a=\$!
    \"$ZOVA\" --timeout 30 server create --flavor g1.tiny --image guest-ramfs --wait --wait-timeout 120 vm-ram >/dev/null &
    b=\$!
    wait \$a && wait \$b"
t_log "both ACTIVE after $(( $(now_ms) - t0 )) ms"
expect_states vm-disk "ACTIVE, running" "ACTIVE active None running"
expect_states vm-ram "ACTIVE, running" "ACTIVE active None running"
UD=$(uuid_of vm-disk); UR=$(uuid_of vm-ram)
DD="zova-$UD"; DR="zova-$UR"
t_eq "libvirt runs both" "running running" "$(v domstate "$DD" | head -1) $(v domstate "$DR" | head -1)"
t_check "vm-disk has disk, disk.local, disk.swap, libvirt.xml, console.log" \
    test -f "$INST/$UD/disk" -a -f "$INST/$UD/disk.local" -a -f "$INST/$UD/disk.swap" -a -f "$INST/$UD/libvirt.xml" -a -f "$INST/$UD/console.log"
t_eq "root disk is a qcow2 overlay on the cached raw image" "qcow2 $INST/_base/$DISK_IMAGE raw" \
    "$(qemu-img info --output=json -U "$INST/$UD/disk" | t_json '"%s %s %s" % (d["format"], d["backing-filename"], d.get("backing-filename-format"))')"
t_eq "the cached image is raw" "raw" "$(qemu-img info --output=json "$INST/_base/$DISK_IMAGE" | t_json 'd["format"]')"
t_eq "the kernel is cached once for both guests" "1" "$(ls "$INST/_base" | grep -c "^$KERNEL\$")"
t_check "domain XML: virtio disks, serial log, agent channel, VNC on 127.0.0.1, user NIC" bash -c "
    x=\$(virsh -c '$URI' dumpxml $DD)
    echo \"\$x\" | grep -q \"bus='virtio'\" && echo \"\$x\" | grep -q \"console.log\" &&
    echo \"\$x\" | grep -q org.qemu.guest_agent.0 && echo \"\$x\" | grep -q \"listen='127.0.0.1'\" &&
    echo \"\$x\" | grep -q \"interface type='user'\""
t_wait_for "vm-disk guest agent answers" 90 ping_ok "$DD"
t_wait_for "vm-ram guest agent answers" 90 ping_ok "$DR"
t_wait_for "zova shows vm-ram's OS from its agent" 30 agent_up vm-ram
t_wait_for "zova shows vm-ram's IPv4 address (QEMU user-mode's 10.0.2.x) from its agent" 40 has_ip vm-ram
t_check "server show (table) lists the guest's addresses and OS" bash -c \
    "\"$ZOVA\" server show vm-ram | grep -E 'addresses .*eth0=10\.0\.2\.' && \"$ZOVA\" server show vm-ram | grep -q guest_os"
t_check "console.log has the guest's boot banner" grep -q "zova test guest ready" "$INST/$UR/console.log"
DEVS=$(guest_sh "$DD" 'ls /sys/block | tr "\n" " "')
t_eq "vm-disk sees vda vdb vdc" "vda vdb vdc" "$(echo "$DEVS" | tr ' ' '\n' | grep '^vd' | sort | tr '\n' ' ' | sed 's/ $//')"

# --- refused transitions --------------------------------------------------------
t_check_fails "resume of an active server is refused (409)" "Cannot 'resume' instance $UR while it is in vm_state active" \
    t_zova server resume vm-ram
t_check_fails "unrescue of a server not rescued is refused" "Cannot 'unrescue'" t_zova server unrescue vm-ram
t_check_fails "unknown server" "No server with a name or ID of 'nope'" t_zova server stop nope

# --- soft and hard reboot ---------------------------------------------------------
U0=$(uptime_of "$DR")
t0=$(now_ms)
t_check "soft reboot --wait" t_zova server reboot --wait --wait-timeout 120 vm-ram
t_log "soft reboot took $(( $(now_ms) - t0 )) ms"
expect_states vm-ram "ACTIVE after soft reboot" "ACTIVE active None running"
t_wait_for "agent back after soft reboot" 90 ping_ok "$DR"
U1=$(uptime_of "$DR")
t_eq "the guest booted again (uptime $U0 s -> $U1 s)" "True" "$([ "$U1" -lt "$U0" ] || [ "$U0" -lt 3 ] && echo True || echo False)"
t_eq "the action log has the reboot, Success" "Success" \
    "$(t_zova server event list vm-ram -f json | t_json '[e["result"] for e in d if e["action"]=="reboot"][-1]')"
sleep 2
U1=$(uptime_of "$DR")
t_check "hard reboot --wait" t_zova server reboot --hard --wait --wait-timeout 120 vm-ram
expect_states vm-ram "ACTIVE after hard reboot" "ACTIVE active None running"
t_wait_for "agent back after hard reboot" 90 ping_ok "$DR"
U2=$(uptime_of "$DR")
t_eq "hard reboot restarted the guest (uptime $U1 s -> $U2 s)" "True" "$([ "$U2" -le "$U1" ] && echo True || echo False)"

# A guest that ignores the request (no agent, no acpid): the soft reboot
# falls back to hard after wait_soft_reboot_seconds, and says so.
guest_sh "$DR" '(sleep 1; killall acpid qemu-ga) >/dev/null 2>&1 &' >/dev/null
sleep 2
t_check "soft reboot of a deaf guest --wait" t_zova server reboot --wait --wait-timeout 120 vm-ram
t_eq "its record says it fell back to hard" "True" \
    "$(t_zova server event list vm-ram -f json | t_json '"rebooted hard" in ([e for e in d if e["action"]=="reboot"][-1]["message"] or "")')"
expect_states vm-ram "ACTIVE after the fallback" "ACTIVE active None running"
t_wait_for "agent back after the fallback" 90 ping_ok "$DR"

# A hard reboot makes sure the cached image files are there: one removed
# behind zova's back is fetched again.
rm -f "$INST/_base/$RD_FULL"
t_check "hard reboot with the ramdisk missing from the cache" t_zova server reboot --hard --wait --wait-timeout 120 vm-ram
t_check "the ramdisk was fetched again" test -f "$INST/_base/$RD_FULL"
t_wait_for "agent back" 90 ping_ok "$DR"

# --- stop / start ------------------------------------------------------------------
t_check "stop --wait" t_zova server stop --wait --wait-timeout 60 vm-ram
expect_states vm-ram "SHUTOFF, shutdown" "SHUTOFF stopped None shutdown"
t_eq "libvirt: shut off" "shut off" "$(v domstate "$DR" | head -1)"
t_eq "stop was a clean shutdown (no timeout note)" "" \
    "$(t_zova server event list vm-ram -f json | t_json '[e.get("message") or "" for e in d if e["action"]=="stop"][-1]')"
t_check_fails "pause of a stopped server is refused" "Cannot 'pause' instance $UR while it is in vm_state stopped" \
    t_zova server pause vm-ram
t_check "start --wait" t_zova server start --wait --wait-timeout 60 vm-ram
expect_states vm-ram "ACTIVE after start" "ACTIVE active None running"
t_wait_for "agent back after start" 90 ping_ok "$DR"

# --- pause / unpause ----------------------------------------------------------------
t_check "pause --wait" t_zova server pause --wait vm-ram
expect_states vm-ram "PAUSED" "PAUSED paused None paused"
t_eq "libvirt: paused" "paused" "$(v domstate "$DR" | head -1)"
t_check "unpause --wait" t_zova server unpause --wait vm-ram
expect_states vm-ram "ACTIVE after unpause" "ACTIVE active None running"

# --- suspend / resume: RAM kept ------------------------------------------------------
sleep 3
US=$(uptime_of "$DR")
t_check "suspend --wait" t_zova server suspend --wait --wait-timeout 60 vm-ram
expect_states vm-ram "SUSPENDED" "SUSPENDED suspended None shutdown"
t_eq "libvirt has a managed save" "yes" "$(v dominfo "$DR" | awk -F': *' '/Managed save/ {print $2}')"
t_check "resume --wait" t_zova server resume --wait --wait-timeout 60 vm-ram
expect_states vm-ram "ACTIVE after resume" "ACTIVE active None running"
t_wait_for "agent answers after resume" 30 ping_ok "$DR"
UA=$(uptime_of "$DR")
t_eq "uptime went on across suspend ($US s -> $UA s): RAM was kept" "True" "$([ "$UA" -ge "$US" ] && echo True || echo False)"
t_eq "the managed save is gone after resume" "no" "$(v dominfo "$DR" | awk -F': *' '/Managed save/ {print $2}')"

# --- set root password -------------------------------------------------------------
SH0=$(guest_sh "$DR" 'grep ^root: /etc/shadow')
t_check "server set --root-password (stdin)" bash -c "echo 's3cret-zova' | \"$ZOVA\" --timeout 30 server set --root-password --wait vm-ram"
SH1=$(guest_sh "$DR" 'grep ^root: /etc/shadow')
t_eq "the guest's root password changed" "True" "$([ -n "$SH1" ] && [ "$SH0" != "$SH1" ] && echo True || echo False)"
t_eq "the new hash is sha512 of the password" "True" \
    "$(python3 -c 'import crypt,sys; h=sys.argv[1].split(":")[1]; print(crypt.crypt("s3cret-zova", h) == h)' "$SH1" 2>/dev/null)"

# --- rescue / unrescue: the original disk inside the rescue guest --------------------
t_check "write a marker on vm-disk's root disk" guest_sh "$DD" 'echo zova-marker-$(date +%s) >/marker; sync'
MARK=$(guest_sh "$DD" 'cat /marker')
t_check "rescue --wait (from its own image)" t_zova server rescue --wait --wait-timeout 120 vm-disk
expect_states vm-disk "RESCUE" "RESCUE rescued None running"
t_check "disk.rescue was made" test -f "$INST/$UD/disk.rescue"
t_wait_for "the rescue guest's agent answers" 90 ping_ok "$DD"
t_eq "the rescue guest booted its own disk (no marker on /)" "absent" "$(guest_sh "$DD" 'test -f /marker && echo present || echo absent')"
t_eq "the original disk is vdb in the rescue guest, marker readable" "$MARK" \
    "$(guest_sh "$DD" 'mkdir -p /mnt/orig; mount -o ro /dev/vdb /mnt/orig 2>/dev/null || mount -t ext4 -o ro /dev/vdb /mnt/orig; cat /mnt/orig/marker; umount /mnt/orig')"
t_check "unrescue --wait" t_zova server unrescue --wait --wait-timeout 120 vm-disk
expect_states vm-disk "ACTIVE after unrescue" "ACTIVE active None running"
t_wait_for "agent back after unrescue" 90 ping_ok "$DD"
t_eq "the original root again, marker there" "$MARK" "$(guest_sh "$DD" 'cat /marker')"
t_check "disk.rescue is gone" test ! -e "$INST/$UD/disk.rescue"

# --- QEMU killed from outside; the guest powers itself off ----------------------------
QPID=$(cat "$LV/run/qemu/$DR.pid" 2>/dev/null || pgrep -f "guest=$DR" | head -1)
t_check "found vm-ram's QEMU process ($QPID)" test -n "$QPID"
kill -9 "$QPID"
t_wait_for "killed QEMU: vm-ram becomes stopped" 30 bash -c "[ \"\$(\"$ZOVA\" server show vm-ram -f json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"vm_state\"])')\" = stopped ]"
t_eq "killed QEMU: SHUTOFF, power shutdown" "SHUTOFF stopped None shutdown" "$(states vm-ram)"
t_check "start again" t_zova server start --wait --wait-timeout 60 vm-ram
t_wait_for "agent back" 90 ping_ok "$DR"
guest_sh "$DR" '(sleep 1; poweroff) >/dev/null 2>&1 &' >/dev/null
t_wait_for "guest powered itself off: vm-ram becomes stopped" 60 bash -c "[ \"\$(\"$ZOVA\" server show vm-ram -f json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"vm_state\"])')\" = stopped ]"
t_eq "self power-off: SHUTOFF" "SHUTOFF stopped None shutdown" "$(states vm-ram)"

# --- libvirtd restarts: degraded, then reconciled --------------------------------------
if [ -n "$OWN_LIBVIRTD" ]; then
    host_state () { t_zova compute service list -f json | t_json '[s["state"] for s in d if s["binary"]=="compute"][0]'; }
    LIBVIRTD_TEST_DOWN_S=4 bash "$ZV_ROOT/scripts/libvirtd-test.sh" restart "$LV" >/dev/null 2>"$T_DIR/restart.log" &
    RPID=$!
    t_wait_for "compute reports degraded while libvirtd is down" 15 bash -c "[ \"\$(\"$ZOVA\" compute service list -f json | python3 -c 'import json,sys; print([s[\"state\"] for s in json.load(sys.stdin) if s[\"binary\"]==\"compute\"][0])')\" = degraded ]"
    wait $RPID
    t_wait_for "compute up again after libvirtd is back" 30 bash -c "[ \"\$(\"$ZOVA\" compute service list -f json | python3 -c 'import json,sys; print([s[\"state\"] for s in json.load(sys.stdin) if s[\"binary\"]==\"compute\"][0])')\" = up ]"
    expect_states vm-disk "vm-disk still ACTIVE after the restart" "ACTIVE active None running"
    t_check "the restarted libvirtd still runs vm-disk" bash -c "[ \"\$(virsh -q -c '$URI' domstate $DD | head -1)\" = running ]"
    t_check "actions work on the new connection: pause + unpause" bash -c \
        "\"$ZOVA\" --timeout 30 server pause --wait vm-disk >/dev/null && \"$ZOVA\" --timeout 30 server unpause --wait vm-disk >/dev/null"
fi

# --- delete: nothing left ---------------------------------------------------------------
t_check "suspend vm-disk (delete must remove the managed save too)" t_zova server suspend --wait --wait-timeout 60 vm-disk
t_check "delete both --wait" t_zova server delete --wait --wait-timeout 60 vm-disk vm-ram
t_eq "no zova domain left in libvirt" "" "$(v list --all --name | grep '^zova-' || true)"
t_eq "instances_path holds only the image cache" "_base" "$(ls "$INST")"
t_eq "no managed-save image left" "" "$(ls "$LV/lib/qemu/save" 2>/dev/null || true)"
t_check "the image cache stays (shared)" test -f "$INST/_base/$DISK_IMAGE"

# --- a failed spawn: ERROR with the reason, nothing left, claim released ------------------
head -c 3000000 /dev/urandom >"$T_DIR/junk.qcow2"
t_check "an image that says qcow2 but is not" t_zova image create --file "$T_DIR/junk.qcow2" --disk-format qcow2 junk
t_check "boot it" t_zova server create --flavor g1.tiny --image junk vm-big
t_wait_for "vm-big ends in ERROR" 60 bash -c "[ \"\$(\"$ZOVA\" server show vm-big -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"status\"])')\" = ERROR ]"
t_check "the fault gives the real reason (qcow2)" bash -c "\"$ZOVA\" server show vm-big -f json | grep -q qcow2"
t_eq "nothing of vm-big in instances_path" "_base" "$(ls "$INST")"
t_eq "no partial file of the bad image in the cache" "" "$(ls "$INST/_base" | grep -v -E '^[0-9a-f-]{36}$' || true)"
t_eq "its claim is released" "0" "$(t_zova hypervisor list -f json | t_json 'sum(h["vcpus_used"] for h in d)')"
t_check "delete vm-big" t_zova server delete --wait vm-big
t_stop aio

# --- one cluster case: separate processes over tcp -----------------------------------------
C_API="tcp://127.0.0.1:$(t_port)"
C_COND="tcp://127.0.0.1:$(t_port)"
export ZOVA_ENDPOINT=$C_API
t_config "$T_DIR/cluster.conf" "api.endpoint=$C_API" "conductor.endpoint=$C_COND" \
    "conductor.housekeeping_interval=1" "scheduler.host_refresh_interval_ms=200" \
    "compute.instances_path=$INST" "compute.reserved_host_memory_mb=0" \
    "libvirt.connection_uri=$URI" "DEFAULT.shutdown_timeout=15" "$SERIAL_RANGE"
for role in conductor api scheduler compute; do t_start "c_$role" "$role" "$T_DIR/cluster.conf"; done
t_wait_api 30
t_wait_for "cluster compute up" 30 bash -c "\"$ZOVA\" hypervisor list -f json | grep -q QEMU"
t_check "cluster: boot from the cached image" t_zova server create --flavor g1.tiny --image guest-ramfs --wait --wait-timeout 120 c1
expect_states c1 "cluster: ACTIVE" "ACTIVE active None running"
DC=$(dom_of c1)
t_wait_for "cluster: agent answers" 90 ping_ok "$DC"
t_check "cluster: hard reboot" t_zova server reboot --hard --wait --wait-timeout 120 c1
expect_states c1 "cluster: ACTIVE after hard reboot" "ACTIVE active None running"
# A compute killed in the middle of an action: its restart ends the action
# with the reason, and the state is what the hypervisor has.
t_check "cluster: stop (not waited for)" t_zova server stop c1
t_kill9 c_compute
t_start c_compute compute "$T_DIR/cluster.conf"
t_wait_for "cluster: the interrupted stop ends" 40 bash -c "[ \"\$(\"$ZOVA\" server show c1 -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"task_state\"])')\" = None ]"
t_eq "cluster: the stop's record says the compute restart cut it off" "Error True" \
    "$(t_zova server event list c1 -f json | t_json '"%s %s" % ([e for e in d if e["action"]=="stop"][-1]["result"], "interrupted" in ([e for e in d if e["action"]=="stop"][-1]["message"] or ""))')"
LIBVIRT_STATE=$(v domstate "$DC" | head -1)
t_log "after the interrupted stop: zova says $(states c1), libvirt says $LIBVIRT_STATE"
t_wait_for "cluster: zova's state follows libvirt's" 30 bash -c "
    s=\$(\"$ZOVA\" server show c1 -f json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"vm_state\"], d[\"power_state\"])')
    l=\$(virsh -q -c '$URI' domstate $DC | head -1)
    [ \"\$s\" = 'active running' -a \"\$l\" = running ] || [ \"\$s\" = 'stopped shutdown' -a \"\$l\" = 'shut off' ]"
t_check "cluster: delete" t_zova server delete --wait c1
t_eq "cluster: no domain left" "" "$(v list --all --name | grep '^zova-' || true)"
for role in compute scheduler api conductor; do t_stop "c_$role"; done

t_done
