#!/usr/bin/env bash
# two_hosts.sh: scripts/two-hosts.sh, and a live guest moved between its two
# hosts with libvirt alone, three ways, timed.
#
# Not part of `make test`: it needs root, QEMU and 3-5 minutes of TCG.
#   1. --shared: both hosts on one instances directory; live, peer-to-peer,
#      A to B (--unsafe: libvirt cannot prove a local path shared).
#   2. the same guest back, B to A, in post-copy: --postcopy, then
#      `virsh migrate-postcopy` once the memory copy runs (its pre-copy pass
#      is held at MOVE_POSTCOPY_BW MiB/s so the switch lands inside it).
#   3. separate instances directories: a second pair, a fresh guest moved A
#      to B with --copy-storage-all into an empty qcow2 of the same size,
#      the destination XML's paths rewritten to B's directory.
# After each move: the source lists no such domain, the destination has it
# running and persistent, its agent answers guest-ping, and a marker
# written in the guest's memory before the move reads back (after 3, a
# file read past dropped caches, from the copied disk, too).  Then a
# libvirtd killed with QEMU still running, and stop cleans up; a second
# stop is harmless; no namespace or veth is left.
#
# Figures: the whole `virsh migrate` call, and from `virsh domjobinfo
# --completed` the migration job and the guest's downtime.  Post-copy's
# come from the source's record, kept because that move leaves the source's
# definition (undefined right after); the destination keeps none after a
# post-copy migration.
#
# Uses scripts/build-test-guest.sh (into ZV_GUEST_DIR when set, reused;
# else the temporary directory); ZV_KEEP=1 keeps the logs.
# Prints a table of figures and, last, "N passed, N failed".

source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

GUEST=${ZV_GUEST_DIR:-$T_DIR/guest}
TWO="$ZV_ROOT/scripts/two-hosts.sh"
HOSTS_SHARED="$T_DIR/shared"
HOSTS_SEP="$T_DIR/separate"
POSTCOPY_BW=${MOVE_POSTCOPY_BW:-8}
FIGURES=()

s_ok () { T_CHECKS=$((T_CHECKS + 1)); echo "  ok: $*"; }
s_bad () { T_CHECKS=$((T_CHECKS + 1)); t_fail "$*"; }

s_cleanup () {
    bash "$TWO" stop "$HOSTS_SHARED" >/dev/null 2>&1
    bash "$TWO" stop "$HOSTS_SEP" >/dev/null 2>&1
    t_cleanup
}
trap s_cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "two_hosts.sh: run as root" >&2; exit 1; }

now_ms () { echo $(( $(date +%s%N) / 1000000 )); }
secs () { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }

agent () { virsh -c "$1" qemu-agent-command --timeout 10 "$2" "$3"; }
ping_on () { agent "$1" "$2" '{"execute":"guest-ping"}' 2>/dev/null | grep -q '"return"'; }

wait_for () {
    local seconds=$1 deadline; shift
    deadline=$(( $(now_ms) + seconds * 1000 ))
    until "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -lt $deadline ] || return 1
        sleep 0.2
    done
}

# guest_sh URI DOMAIN SCRIPT: run SCRIPT in the guest (guest-exec), print its stdout.
guest_sh () {
    local uri=$1 dom=$2 req pid out
    req=$(python3 -c 'import json,sys; print(json.dumps({"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c",sys.argv[1]],"capture-output":True}}))' "$3")
    pid=$(agent "$uri" "$dom" "$req" | t_json 'd["return"]["pid"]') || return 99
    for _ in $(seq 100); do
        out=$(agent "$uri" "$dom" "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}") || return 99
        if [ "$(echo "$out" | t_json 'd["return"]["exited"]')" = True ]; then
            echo "$out" | t_json '__import__("base64").b64decode(d["return"].get("out-data","")).decode().strip()'
            return 0
        fi
        sleep 0.1
    done
    return 97
}

# dom_xml NAME DIR: the disk guest, its disk and console log in DIR.  The
# disk keeps its owner (relabel='no'): a host the guest leaves must not
# take the file back from the one it went to.
dom_xml () {
    cat <<EOF
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST/vmlinux</kernel>
    <initrd>$GUEST/initrd-boot.img</initrd>
    <cmdline>$(cat "$GUEST/cmdline") root=/dev/vda rw</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <controller type='usb' model='none'/>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$2/disk.qcow2'>
        <seclabel model='dac' relabel='no'/>
      </source>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'><model type='virtio'/><rom bar='off'/></interface>
    <serial type='pty'>
      <log file='$2/console.log' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

# boot URI NAME DIR: a copy of the guest's disk in DIR, defined and started
# at URI, up to guest-ping.
boot () {
    local uri=$1 name=$2 dir=$3 t0
    mkdir -p "$dir"
    cp "$GUEST/disk.qcow2" "$dir/disk.qcow2"
    dom_xml "$name" "$dir" >"$T_DIR/$name.xml"
    t0=$(now_ms)
    if ! virsh -q -c "$uri" define "$T_DIR/$name.xml" >/dev/null 2>"$T_DIR/last.err" \
        || ! virsh -q -c "$uri" start "$name" >/dev/null 2>>"$T_DIR/last.err"; then
        s_bad "$name: define/start: $(head -c 400 "$T_DIR/last.err")"
        return 1
    fi
    if wait_for 180 ping_on "$uri" "$name"; then
        s_ok "$name: guest-ping answers on host A ($(secs $(( $(now_ms) - t0 ))) s after start)"
    else
        s_bad "$name: no guest-ping within 180 s: $(tail -c 300 "$dir/console.log" | tr -d '\r')"
        return 1
    fi
}

# job_info URI NAME: the completed job's record, read once (libvirt drops it
# on the first read), into JOB.
job_info () { JOB=$(virsh -c "$1" domjobinfo --completed "$2" 2>/dev/null); }

# job_field FIELD: FIELD's number in JOB.
job_field () { echo "$JOB" | sed -n "s/^$1: *\([0-9.]*\).*/\1/p" | head -1; }

# figures LABEL CALL_MS URI NAME: record the call and the job's figures.
figures () {
    local label=$1 call=$2 elapsed downtime
    job_info "$3" "$4"
    echo "$JOB" >"$T_DIR/job.${label%%.*}.txt"
    elapsed=$(job_field "Time elapsed")
    downtime=$(job_field "Total downtime")
    FIGURES+=("$(printf '%-44s %9s s %9s ms %9s ms' "$label" "$(secs "$call")" "${elapsed:--}" "${downtime:--}")")
    echo "  $label: migrate call $(secs "$call") s, job ${elapsed:--} ms, downtime ${downtime:--} ms"
}

# moved FROM_URI TO_URI NAME MARKER: the guest left FROM and runs on TO, the same guest.
moved () {
    local from=$1 to=$2 name=$3 marker=$4
    if virsh -c "$from" list --all --name 2>/dev/null | grep -qx "$name"; then
        s_bad "$name still defined on the source"
    else
        s_ok "$name gone from the source"
    fi
    t_eq "$name running on the destination" running "$(virsh -c "$to" domstate "$name" 2>&1 | head -1)"
    if virsh -c "$to" dominfo "$name" 2>/dev/null | grep -q '^Persistent: *yes'; then
        s_ok "$name persistent on the destination"
    else
        s_bad "$name not persistent on the destination"
    fi
    if wait_for 60 ping_on "$to" "$name"; then
        s_ok "$name: the agent answers guest-ping on the destination"
    else
        s_bad "$name: no guest-ping on the destination"
    fi
    t_eq "$name: the guest's memory came along" "$marker" "$(guest_sh "$to" "$name" 'cat /tmp/marker')"
}

echo "two hosts test (logs in $T_DIR)"
if bash "$ZV_ROOT/scripts/build-test-guest.sh" "$GUEST" 2>"$T_DIR/build.log"; then
    s_ok "guest image in $GUEST"
else
    s_bad "build-test-guest.sh failed: $(tail -5 "$T_DIR/build.log")"; t_done; exit
fi
[ -d "$GUEST/libvirt-cache" ] && export LIBVIRTD_TEST_CAPS_CACHE="$GUEST/libvirt-cache"

# --- 1 and 2: one instances directory ----------------------------------------
t0=$(now_ms)
if ! LINES_1=$(bash "$TWO" start "$HOSTS_SHARED" --shared 2>"$T_DIR/start.err"); then
    s_bad "two-hosts.sh start --shared: $(cat "$T_DIR/start.err")"; t_done; exit
fi
s_ok "two-hosts.sh start --shared ($(secs $(( $(now_ms) - t0 ))) s)"
eval "$LINES_1"
t_eq "shared: one instances directory" "$HOSTS_SHARED/shared-instances 1" "$B_INSTANCES $SHARED"
[ "$A_HOST_UUID" != "$B_HOST_UUID" ] && s_ok "two host UUIDs" || s_bad "one host UUID for both"
t_eq "libvirt reports A's host UUID" "$A_HOST_UUID" \
    "$(virsh -c "$A_URI" capabilities | sed -n 's/.*<uuid>\(.*\)<\/uuid>.*/\1/p' | head -1)"
t_check "status: both answer" bash "$TWO" status "$HOSTS_SHARED"
if [ "$(bash "$TWO" start "$HOSTS_SHARED" --shared 2>/dev/null)" = "$LINES_1" ]; then
    s_ok "a second start prints the same lines"
else
    s_bad "a second start prints other lines"
fi
t_check_fails "a start without --shared while running shared is refused" "running with SHARED=1" \
    bash "$TWO" start "$HOSTS_SHARED"

if boot "$A_URI" mv-shared "$A_INSTANCES/mv-shared"; then
    guest_sh "$A_URI" mv-shared 'echo before-move-1 >/tmp/marker' >/dev/null
    t0=$(now_ms)
    if virsh -c "$A_URI" migrate --live --p2p --persistent --undefinesource --unsafe \
        mv-shared "$B_P2P_URI" --migrateuri "$B_MIGRATION_URI" >/dev/null 2>"$T_DIR/last.err"; then
        call=$(( $(now_ms) - t0 ))
        s_ok "live move A to B on shared storage"
        figures "1. live, shared storage, A to B" "$call" "$B_URI" mv-shared
        moved "$A_URI" "$B_URI" mv-shared before-move-1
    else
        s_bad "live move A to B: $(head -c 600 "$T_DIR/last.err")"
    fi

    # 2. Post-copy, back to A.  The source's definition stays (no
    # --undefinesource) to keep the job's record; it goes right after.
    if virsh -c "$B_URI" domstate mv-shared 2>/dev/null | grep -q running; then
        guest_sh "$B_URI" mv-shared 'echo before-move-2 >/tmp/marker' >/dev/null
        t0=$(now_ms)
        virsh -c "$B_URI" migrate --live --p2p --persistent --unsafe --postcopy --bandwidth "$POSTCOPY_BW" \
            mv-shared "$A_P2P_URI" --migrateuri "$A_MIGRATION_URI" >/dev/null 2>"$T_DIR/postcopy.err" &
        mig=$!
        if wait_for 60 sh -c "virsh -c '$B_URI' domjobinfo mv-shared | grep -q 'Memory processed: *[1-9]'"; then
            t1=$(now_ms)
            virsh -c "$B_URI" migrate-postcopy mv-shared >/dev/null 2>"$T_DIR/switch.err" \
                && s_ok "switched to post-copy" || s_bad "migrate-postcopy: $(cat "$T_DIR/switch.err")"
        else
            s_bad "the post-copy move's memory copy never started"
        fi
        if wait $mig; then
            now=$(now_ms)
            s_ok "post-copy move B to A ($(secs $(( now - t1 ))) s from the switch)"
            figures "2. post-copy, shared storage, B to A" $(( now - t0 )) "$B_URI" mv-shared
            pcr=$(job_field "Postcopy requests")
            FIGURES+=("$(printf '%-44s %9s s (%s page requests)' "   of which after the switch" "$(secs $(( now - t1 )))" "${pcr:--}")")
            virsh -q -c "$B_URI" undefine mv-shared >/dev/null 2>&1
            moved "$B_URI" "$A_URI" mv-shared before-move-2
        else
            s_bad "post-copy move: $(head -c 600 "$T_DIR/postcopy.err")"
        fi
    fi
fi
t0=$(now_ms)
if bash "$TWO" stop "$HOSTS_SHARED" 2>/dev/null; then
    s_ok "two-hosts.sh stop ($(secs $(( $(now_ms) - t0 ))) s)"
else
    s_bad "two-hosts.sh stop failed"
fi

# --- 3: separate instances directories, the disk copied ---------------------
if ! LINES_3=$(bash "$TWO" start "$HOSTS_SEP" 2>"$T_DIR/start.err"); then
    s_bad "two-hosts.sh start: $(cat "$T_DIR/start.err")"; t_done; exit
fi
eval "$LINES_3"
t_eq "separate: two instances directories" "$HOSTS_SEP/a/instances $HOSTS_SEP/b/instances 0" \
    "$A_INSTANCES $B_INSTANCES $SHARED"
if boot "$A_URI" mv-copy "$A_INSTANCES/mv-copy"; then
    sum_before=$(guest_sh "$A_URI" mv-copy 'echo before-move-3 >/tmp/marker; echo 3 >/proc/sys/vm/drop_caches; md5sum /bin/busybox')
    size=$(qemu-img info -U --output json "$A_INSTANCES/mv-copy/disk.qcow2" | t_json 'd["virtual-size"]')
    mkdir -p "$B_INSTANCES/mv-copy"
    qemu-img create -q -f qcow2 "$B_INSTANCES/mv-copy/disk.qcow2" "$size"
    virsh -c "$A_URI" dumpxml --migratable mv-copy | sed "s#$A_INSTANCES/#$B_INSTANCES/#g" >"$T_DIR/mv-copy.b.xml"
    t0=$(now_ms)
    if virsh -c "$A_URI" migrate --live --p2p --persistent --undefinesource --copy-storage-all \
        mv-copy "$B_P2P_URI" --migrateuri "$B_MIGRATION_URI" --xml "$T_DIR/mv-copy.b.xml" >/dev/null 2>"$T_DIR/last.err"; then
        call=$(( $(now_ms) - t0 ))
        s_ok "live move A to B with --copy-storage-all"
        figures "3. live, --copy-storage-all, A to B" "$call" "$B_URI" mv-copy
        moved "$A_URI" "$B_URI" mv-copy before-move-3
        t_eq "the disk came along (a file read past dropped caches)" "$(echo "$sum_before" | tail -1)" \
            "$(guest_sh "$B_URI" mv-copy 'echo 3 >/proc/sys/vm/drop_caches; md5sum /bin/busybox' | tail -1)"
        virsh -c "$B_URI" domblklist mv-copy | grep -q "$B_INSTANCES/mv-copy/disk.qcow2" \
            && s_ok "B's guest uses B's disk" || s_bad "B's guest disk: $(virsh -c "$B_URI" domblklist mv-copy)"
    else
        s_bad "copy-storage move: $(head -c 600 "$T_DIR/last.err")"
    fi
fi

# --- a crash, then stop --------------------------------------------------------
qemu_pid=$(cat "$HOSTS_SEP"/b/run/qemu/mv-copy.pid 2>/dev/null)
lv_pid=$(cat "$HOSTS_SEP/b/run/libvirtd.pid" 2>/dev/null)
if [ -n "$qemu_pid" ] && [ -n "$lv_pid" ]; then
    kill -KILL "$lv_pid"
    wait_for 10 sh -c "! kill -0 $lv_pid"
    if status=$(bash "$TWO" status "$HOSTS_SEP" 2>&1); then
        s_bad "status after B's libvirtd died exits 0: $status"
    else
        t_eq "status after B's libvirtd died" "host B: stopped" "$(echo "$status" | grep '^host B')"
    fi
    t_check "stop after the crash" bash "$TWO" stop "$HOSTS_SEP"
    if kill -0 "$qemu_pid" 2>/dev/null; then s_bad "B's QEMU ($qemu_pid) survived stop"; else s_ok "B's orphaned QEMU stopped"; fi
else
    s_bad "no QEMU or libvirtd pid file on B"
    bash "$TWO" stop "$HOSTS_SEP" 2>/dev/null
fi
t_check "a second stop is harmless" bash "$TWO" stop "$HOSTS_SEP"
# Both runs' namespaces (zova-<id>-a and -b) and veths (zv<id>a, zv<id>b)
# carry one id per directory; the veths lived only in the namespaces.
for lines in "$LINES_1" "$LINES_3"; do
    id=$(echo "$lines" | sed -n "s/.*A_NETNS=zova-\([0-9a-f]*\)-a.*/\1/p")
    if ip netns list | grep -q "zova-$id-"; then
        s_bad "a network namespace is left: $(ip netns list | grep "zova-$id-")"
    else
        s_ok "no network namespace zova-$id-a/b left"
    fi
    if ip -o link show | grep -q "zv${id}[ab]"; then s_bad "a veth zv${id} is left"; else s_ok "no veth zv${id}a/b left"; fi
done

echo "figures (TCG, 128 MiB, 1 vCPU, idle guest; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '  %-44s %11s %12s %12s\n' "move" "migrate call" "job" "downtime"
for line in "${FIGURES[@]}"; do echo "  $line"; done
echo "$((T_CHECKS - T_FAILS)) passed, $T_FAILS failed"
[ "$T_FAILS" -eq 0 ]
