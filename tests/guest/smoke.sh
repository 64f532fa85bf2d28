#!/usr/bin/env bash
# smoke.sh: boot the tiny test guest under a private libvirtd and drive it
# through the guest agent, ACPI and managed save.
#
# Not part of `make test`: it needs QEMU, a libvirtd and 1-2 minutes.  Uses
# scripts/build-test-guest.sh (into ZV_GUEST_DIR when set, so a second run
# reuses it, else into the test's temporary directory) and
# scripts/libvirtd-test.sh (its state under the temporary directory).
# Guests are TCG (<domain type='qemu'>): /dev/kvm here cannot boot them.
# The domain has no USB controller and no NIC option ROM: under TCG these
# cost boot time (0.6-2 s together, measured paired under load) for nothing
# a test uses.
# Everything started is stopped by PID on exit; ZV_KEEP=1 keeps the logs.
#
# Prints a timing table and, last, "N passed, N failed".

source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

GUEST=${ZV_GUEST_DIR:-$T_DIR/guest}
LV="$T_DIR/libvirt"
URI=
TIMINGS=()

# Checks counted by the harness' counters; passed = checks - failed.
s_ok () { T_CHECKS=$((T_CHECKS + 1)); echo "  ok: $*"; }
s_bad () { T_CHECKS=$((T_CHECKS + 1)); t_fail "$*"; }

s_cleanup () {
    if [ -n "$URI" ]; then
        local dom
        for dom in $(virsh -c "$URI" list --all --name 2>/dev/null); do
            virsh -c "$URI" destroy "$dom" >/dev/null 2>&1
            virsh -c "$URI" undefine --managed-save "$dom" >/dev/null 2>&1
        done
    fi
    [ -d "$LV" ] && bash "$ZV_ROOT/scripts/libvirtd-test.sh" stop "$LV" 2>/dev/null
    t_cleanup
}
trap s_cleanup EXIT

now_ms () { echo $(( $(date +%s%N) / 1000000 )); }
secs () { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }
timing () { TIMINGS+=("$(printf '%-44s %8s s' "$1" "$(secs "$2")")"); }

v () { virsh -q -c "$URI" "$@"; }

agent () { virsh -c "$URI" qemu-agent-command --timeout 5 "$@"; }
ping () { agent "$1" '{"execute":"guest-ping"}' 2>/dev/null | grep -q '"return"'; }

# wait_until MS_VAR SECONDS COMMAND...: poll; store elapsed ms in MS_VAR.
wait_until () {
    local var=$1 seconds=$2; shift 2
    local t0 deadline
    t0=$(now_ms); deadline=$(( t0 + seconds * 1000 ))
    while [ "$(now_ms)" -lt $deadline ]; do
        if "$@" >/dev/null 2>&1; then eval "$var=$(( $(now_ms) - t0 ))"; return 0; fi
        sleep 0.1
    done
    eval "$var=$(( seconds * 1000 ))"
    return 1
}

state_is () { [ "$(v domstate "$1" 2>/dev/null | head -1)" = "$2" ]; }

# dom_xml NAME KERNEL INITRD CMDLINE [DISK]
dom_xml () {
    local name=$1 kernel=$2 initrd=$3 cmdline=$4 disk=${5:-}
    cat <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$kernel</kernel>
    <initrd>$initrd</initrd>
    <cmdline>$cmdline</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <controller type='usb' model='none'/>
EOF
    [ -n "$disk" ] && cat <<EOF
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$disk'/>
      <target dev='vda' bus='virtio'/>
    </disk>
EOF
    cat <<EOF
    <interface type='user'><model type='virtio'/><rom bar='off'/></interface>
    <serial type='pty'>
      <log file='$T_DIR/$name.console.log' append='on'/>
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

# boot NAME LABEL: start a defined domain and wait for guest-ping.
boot () {
    local name=$1 label=$2 ms t0
    t0=$(now_ms)
    if ! v start "$name" >/dev/null 2>"$T_DIR/last.err"; then
        s_bad "$label: start failed: $(head -c 400 "$T_DIR/last.err")"
        return 1
    fi
    if wait_until ms 60 ping "$name"; then
        ms=$(( $(now_ms) - t0 ))
        s_ok "$label: guest-ping answers ($(secs $ms) s after start)"
        timing "$label: start to guest-ping" $ms
    else
        s_bad "$label: no guest-ping within 60 s (console: $(tail -c 300 "$T_DIR/$name.console.log" 2>/dev/null | tr -d '\r'))"
        return 1
    fi
}

# shutdown_mode NAME MODE: shutdown --mode MODE and wait for "shut off".
shutdown_mode () {
    local name=$1 mode=$2 ms t0
    t0=$(now_ms)
    if ! v shutdown "$name" --mode "$mode" >/dev/null 2>"$T_DIR/last.err"; then
        s_bad "shutdown --mode $mode: $(head -c 400 "$T_DIR/last.err")"
        return 1
    fi
    if wait_until ms 60 state_is "$name" "shut off"; then
        ms=$(( $(now_ms) - t0 ))
        s_ok "shutdown --mode $mode: shut off after $(secs $ms) s"
        timing "shutdown --mode $mode to shut off" $ms
    else
        s_bad "shutdown --mode $mode: still $(v domstate "$name" 2>&1 | head -1) after 60 s"
        return 1
    fi
}

# guest_sh NAME SCRIPT: run a shell script in the guest through guest-exec;
# prints its stdout, returns its exit code.
guest_sh () {
    local name=$1 script=$2 req pid out t
    req=$(python3 -c 'import json,sys; print(json.dumps({"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c",sys.argv[1]],"capture-output":True}}))' "$script")
    pid=$(agent "$name" "$req" | t_json 'd["return"]["pid"]') || return 99
    for t in $(seq 100); do
        out=$(agent "$name" "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}") || return 99
        if [ "$(echo "$out" | t_json 'd["return"]["exited"]')" = True ]; then
            echo "$out" | t_json '__import__("base64").b64decode(d["return"].get("out-data","")).decode()'
            return "$(echo "$out" | t_json 'd["return"].get("exitcode", 98)')"
        fi
        sleep 0.1
    done
    return 97
}

echo "guest smoke test (logs in $T_DIR)"

# --- the guest image and the daemon ------------------------------------------
t0=$(now_ms)
if bash "$ZV_ROOT/scripts/build-test-guest.sh" "$GUEST" 2>"$T_DIR/build.log"; then
    s_ok "guest image in $GUEST"
    timing "build (or reuse) the guest" $(( $(now_ms) - t0 ))
else
    s_bad "build-test-guest.sh failed: $(tail -5 "$T_DIR/build.log")"
    echo "$((T_CHECKS - T_FAILS)) passed, $T_FAILS failed"; exit 1
fi

t0=$(now_ms)
[ -n "${ZV_GUEST_DIR:-}" ] && export LIBVIRTD_TEST_CAPS_CACHE="$GUEST/libvirt-cache"
if URI=$(bash "$ZV_ROOT/scripts/libvirtd-test.sh" start "$LV" 2>"$T_DIR/libvirtd-start.log"); then
    s_ok "private libvirtd answers on $URI"
    timing "start the private libvirtd" $(( $(now_ms) - t0 ))
else
    URI=
    s_bad "libvirtd-test.sh start: $(tail -3 "$T_DIR/libvirtd-start.log")"
    echo "$((T_CHECKS - T_FAILS)) passed, $T_FAILS failed"; exit 1
fi
t_check "libvirtd-test.sh status" bash "$ZV_ROOT/scripts/libvirtd-test.sh" status "$LV"

CMDLINE=$(cat "$GUEST/cmdline")

# --- initramfs guest ---------------------------------------------------------
dom_xml zv-ramfs "$GUEST/vmlinux" "$GUEST/initrd.img" "$CMDLINE" >"$T_DIR/zv-ramfs.xml"
t0=$(now_ms)
if v define "$T_DIR/zv-ramfs.xml" >/dev/null 2>"$T_DIR/last.err"; then
    s_ok "define zv-ramfs"
    if boot zv-ramfs "initramfs guest"; then
        timing "initramfs guest: define+start to guest-ping" $(( $(now_ms) - t0 ))

        if wait_until ms 10 grep -q "zova test guest ready" "$T_DIR/zv-ramfs.console.log"; then
            s_ok "console log shows the banner: $(grep -a -m1 'zova test guest ready' "$T_DIR/zv-ramfs.console.log" | tr -d '\r')"
        else
            s_bad "console log lacks the banner"
        fi

        if wait_until ms 20 sh -c "virsh -c '$URI' domifaddr zv-ramfs --source agent | grep -q 10.0.2.15"; then
            s_ok "domifaddr --source agent: $(v domifaddr zv-ramfs --source agent | awk '$4 ~ /10\.0\.2/ { print $1, $4 }')"
        else
            s_bad "domifaddr --source agent lacks 10.0.2.15: $(v domifaddr zv-ramfs --source agent 2>&1 | head -5)"
        fi

        if v set-user-password zv-ramfs root 's3cret:pass' >/dev/null 2>"$T_DIR/last.err"; then
            # The new hash in /etc/shadow must be that of the new password.
            check='h=$(grep "^root:" /etc/shadow | cut -d: -f2); s=$(echo "$h" | cut -d"\$" -f3); [ "$(echo "s3cret:pass" | mkpasswd -m sha512 -P 0 -S "$s")" = "$h" ] && echo match'
            if [ "$(guest_sh zv-ramfs "$check")" = match ]; then
                s_ok "set-user-password: /etc/shadow holds the new password's hash"
            else
                s_bad "set-user-password: the shadow hash does not match"
            fi
        else
            s_bad "set-user-password: $(head -c 400 "$T_DIR/last.err")"
        fi

        shutdown_mode zv-ramfs agent
        if boot zv-ramfs "initramfs guest, second boot"; then
            shutdown_mode zv-ramfs acpi
        fi
    fi
else
    s_bad "define zv-ramfs: $(head -c 400 "$T_DIR/last.err")"
fi

# --- root-disk guest ---------------------------------------------------------
DISK="$T_DIR/zv-disk.qcow2"
if qemu-img create -q -f qcow2 -F qcow2 -b "$GUEST/disk.qcow2" "$DISK" 2>"$T_DIR/last.err"; then
    s_ok "qcow2 overlay on disk.qcow2"
else
    s_bad "qemu-img create overlay: $(cat "$T_DIR/last.err")"
fi
dom_xml zv-disk "$GUEST/vmlinux" "$GUEST/initrd-boot.img" "$CMDLINE root=/dev/vda rw" "$DISK" >"$T_DIR/zv-disk.xml"
t0=$(now_ms)
if v define "$T_DIR/zv-disk.xml" >/dev/null 2>"$T_DIR/last.err" && boot zv-disk "disk guest"; then
    timing "disk guest: define+start to guest-ping" $(( $(now_ms) - t0 ))
    if wait_until ms 10 grep -q "zova test guest ready.*root /dev/vda" "$T_DIR/zv-disk.console.log"; then
        s_ok "disk guest runs from /dev/vda"
    else
        s_bad "disk guest banner lacks 'root /dev/vda': $(grep -a 'guest ready' "$T_DIR/zv-disk.console.log" | tr -d '\r')"
    fi

    # Managed save and back: the guest keeps running where it was.
    guest_sh zv-disk 'echo before-save >/tmp/marker' >/dev/null
    t0=$(now_ms)
    if v managedsave zv-disk >/dev/null 2>"$T_DIR/last.err" && state_is zv-disk "shut off" \
        && v dominfo zv-disk | grep -q 'Managed save: *yes'; then
        ms=$(( $(now_ms) - t0 ))
        s_ok "managedsave: shut off with a managed save image ($(secs $ms) s)"
        timing "managedsave" $ms
        t0=$(now_ms)
        if v start zv-disk >/dev/null 2>"$T_DIR/last.err" && wait_until ms 30 ping zv-disk; then
            ms=$(( $(now_ms) - t0 ))
            s_ok "start from managed save: guest-ping answers ($(secs $ms) s)"
            timing "start from managed save to guest-ping" $ms
            t_eq "guest state survived the round trip" before-save "$(guest_sh zv-disk 'cat /tmp/marker')"
        else
            s_bad "start from managed save: $(head -c 400 "$T_DIR/last.err")"
        fi
    else
        s_bad "managedsave: $(head -c 400 "$T_DIR/last.err")"
    fi
    shutdown_mode zv-disk agent
else
    s_bad "disk guest: $(head -c 400 "$T_DIR/last.err")"
fi

# --- clean up ------------------------------------------------------------------
for dom in zv-ramfs zv-disk; do
    v destroy "$dom" >/dev/null 2>&1
    v undefine --managed-save "$dom" >/dev/null 2>&1
done
t0=$(now_ms)
if bash "$ZV_ROOT/scripts/libvirtd-test.sh" stop "$LV" 2>/dev/null \
    && ! bash "$ZV_ROOT/scripts/libvirtd-test.sh" status "$LV" >/dev/null 2>&1; then
    s_ok "private libvirtd stopped"
    timing "stop the private libvirtd" $(( $(now_ms) - t0 ))
else
    s_bad "private libvirtd still running after stop"
fi
URI=

echo "timings:"
for line in "${TIMINGS[@]}"; do echo "  $line"; done
echo "$((T_CHECKS - T_FAILS)) passed, $T_FAILS failed"
[ "$T_FAILS" -eq 0 ]
