#!/usr/bin/env bash
# test_image_cache: a host's image cache (<instances_path>/_base) cleans
# itself as Nova's image cache manager does, and an image deleted from the
# image service while a server uses it behaves as in Glance and Nova: the
# delete is allowed, the host keeps its cached copy, the server runs,
# hard reboots, is rescued and unrescued from it.
#
# One real QEMU guest (TCG) through `zovad all` on a private libvirtd
# (scripts/libvirtd-test.sh), the tiny test guest of
# scripts/build-test-guest.sh booted from its kernel and initramfs with a
# blank root disk (image X, kernel K, ramdisk R), and an image Y without a
# kernel (its domain runs the BIOS, nothing to boot: cheap).  The cleaner
# runs every 2 s with a minimum age of 3 s, so that what it removes and
# what it keeps shows within seconds; the test waits on its passes (the
# compute's log line of each), never on bare sleeps.  libvirt's test
# driver has no disks, hence no cache: this test needs QEMU, and fails
# loudly without it.
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

v () { virsh -q -c "$URI" "$@"; }
agent () { virsh -c "$URI" qemu-agent-command --timeout 10 "$@"; }
ping_ok () { agent "$1" '{"execute":"guest-ping"}' >/dev/null 2>&1; }
states () {
    t_zova server show "$1" -f json | t_json '"%s %s %s %s" % (d["status"], d["vm_state"], d["task_state"], d["power_state"])'
}
image_id () { t_zova image show "$1" -f json | t_json 'd["id"]'; }
cached () { test -f "$INST/_base/$1"; }
gone () { test ! -e "$INST/_base/$1"; }
# Seconds since a base file was last modified (touched by a pass in use).
age_of () { echo $(( $(date +%s) - $(stat -c %Y "$INST/_base/$1") )); }
# Passes of the cleaner so far (one summary line each in the log).
passes () { grep -c 'image cache: [0-9]* base files' "$T_DIR/aio.log"; }
passes_after () { [ "$(passes)" -ge "$1" ]; }
# wait_passes N: until N more passes ended.
wait_passes () { t_wait_for "$1 more cleaning passes" 60 passes_after $(( $(passes) + $1 )); }

echo "image cache (logs in $T_DIR)"

# --- QEMU, the guest, libvirtd ---------------------------------------------------
command -v qemu-system-x86_64 >/dev/null || s_abort "qemu-system-x86_64 is missing (scripts/deps.sh --guest)"
command -v qemu-img >/dev/null || s_abort "qemu-img is missing (scripts/deps.sh --guest)"
bash "$ZV_ROOT/scripts/build-test-guest.sh" "$GUEST" 2>"$T_DIR/build-guest.log" \
    || s_abort "build-test-guest.sh failed: $(tail -5 "$T_DIR/build-guest.log")"
if [ -z "$URI" ]; then
    export LIBVIRTD_TEST_CAPS_CACHE="$GUEST/libvirt-cache"
    URI=$(t_libvirtd start "$LV" 2>"$T_DIR/libvirtd-start.log") \
        || { URI=; s_abort "private libvirtd did not start: $(tail -3 "$T_DIR/libvirtd-start.log")"; }
    OWN_LIBVIRTD=1
fi
t_log "libvirt: $URI"
virsh -c "$URI" domcapabilities --virttype qemu >/dev/null 2>&1 || s_abort "libvirtd at $URI cannot run QEMU guests"

# --- zova all-in-one, its cache cleaned every 2 s ----------------------------------
API="tcp://127.0.0.1:$(t_port)"
export ZOVA_ENDPOINT=$API
INST="$T_DIR/instances"
SERIAL_LOW=$(t_port_range 4)
t_config "$T_DIR/zova.conf" "api.endpoint=$API" "DEFAULT.shutdown_timeout=5" \
    "conductor.housekeeping_interval=1" "scheduler.host_refresh_interval_ms=200" \
    "compute.instances_path=$INST" "compute.reserved_host_memory_mb=0" "compute.ram_allocation_ratio=4.0" \
    "image_cache.manager_interval=2" "image_cache.remove_unused_original_minimum_age_seconds=3" \
    "libvirt.connection_uri=$URI" "libvirt.virt_type=auto" "libvirt.wait_soft_reboot_seconds=5" \
    "serial_console.port_range=$SERIAL_LOW:$(( SERIAL_LOW + 3 ))"
t_start aio all "$T_DIR/zova.conf"
t_wait_api 30 || { tail -20 "$T_DIR/aio.log"; exit 1; }
t_wait_for "compute reports its hypervisor" 20 bash -c "\"$ZOVA\" hypervisor list -f json | grep -q QEMU"

CMDLINE=$(cat "$GUEST/cmdline")
t_check "kernel image K" t_zova image create --file "$GUEST/vmlinux" --disk-format aki guest-kernel
t_check "ramdisk image R" t_zova image create --file "$GUEST/initrd.img" --disk-format ari guest-ramdisk
K=$(image_id guest-kernel); R=$(image_id guest-ramdisk)
truncate -s 16M "$T_DIR/x.raw"
t_check "image X: a blank root disk, booted by K and R" t_zova image create --file "$T_DIR/x.raw" \
    --property "kernel_id=$K" --property "ramdisk_id=$R" --property "os_command_line=$CMDLINE" image-x
head -c 1048576 /dev/urandom >"$T_DIR/y.raw"
t_check "image Y: no kernel" t_zova image create --file "$T_DIR/y.raw" image-y
X=$(image_id image-x); Y=$(image_id image-y)
t_check "flavor" t_zova flavor create --vcpus 1 --ram 128 --disk 1 c1.tiny

# --- a guest from X; the host fetches Y for a server that comes and goes -------------
t_check "boot vm-x from X --wait" t_zova server create --flavor c1.tiny --image image-x --wait --wait-timeout 120 vm-x
t_eq "vm-x ACTIVE, running" "ACTIVE active None running" "$(states vm-x)"
UX=$(t_zova server show vm-x -f json | t_json 'd["id"]'); DX="zova-$UX"
t_check "X, K and R are cached" bash -c "test -f '$INST/_base/$X' -a -f '$INST/_base/$K' -a -f '$INST/_base/$R'"
t_wait_for "vm-x's guest agent answers" 120 ping_ok "$DX"
t_check "boot vm-y from Y --wait" t_zova server create --flavor c1.tiny --image image-y --wait --wait-timeout 120 vm-y
t_check "Y is cached" cached "$Y"
t_check "delete vm-y --wait" t_zova server delete --wait --wait-timeout 60 vm-y

# --- the cleaner: Y goes after its age, what vm-x uses stays ------------------------------
t_wait_for "Y's base file removed once unused and 3 s old" 60 gone "$Y"
t_wait_for "the compute logged the removal" 10 grep -q "image cache: removed $INST/_base/$Y" "$T_DIR/aio.log"
wait_passes 3
t_check "X, K and R stay (vm-x uses them)" bash -c "test -f '$INST/_base/$X' -a -f '$INST/_base/$K' -a -f '$INST/_base/$R'"
t_eq "their age restarts at each pass (touched in use)" "True" \
    "$([ "$(age_of "$X")" -le 5 ] && [ "$(age_of "$K")" -le 5 ] && [ "$(age_of "$R")" -le 5 ] && echo True || echo False)"
t_check "nothing in use was ever removed" bash -c "! grep -E 'image cache: removed .*($X|$K|$R)' '$T_DIR/aio.log'"

# --- X and K deleted from the image service while vm-x uses them -------------------------
t_check "image delete X (in use: allowed, as Glance)" t_zova image delete image-x
t_check "image delete K (vm-x's kernel)" t_zova image delete guest-kernel
t_check_fails "X is gone from the image service" "No image with a name or ID of 'image-x'" t_zova image show image-x
t_eq "vm-x runs on" "ACTIVE active None running" "$(states vm-x)"
wait_passes 3
t_check "the host keeps X and K (vm-x uses them)" bash -c "test -f '$INST/_base/$X' -a -f '$INST/_base/$K'"
t_check "hard reboot --wait (from the cached X and K)" t_zova server reboot --hard --wait --wait-timeout 120 vm-x
t_eq "vm-x ACTIVE after the hard reboot" "ACTIVE active None running" "$(states vm-x)"
t_check "the compute said it used the cached copy" grep -q "image $X is no longer in the image service" "$T_DIR/aio.log"
t_wait_for "vm-x's guest booted again (agent answers)" 120 ping_ok "$DX"
t_check_fails "rescue from its own image, now deleted: refused" "Image $X could not be found" \
    t_zova server rescue vm-x
t_eq "the refused rescue changed nothing" "ACTIVE active None running" "$(states vm-x)"

# --- rescue from Y: fetched again, kept while the rescue uses it; vm-x's own kernel K
#     (deleted from the image service: it could not come back) is kept meanwhile --------
t_check "rescue --image Y --wait" t_zova server rescue --image image-y --wait --wait-timeout 120 vm-x
t_eq "vm-x RESCUE, running" "RESCUE rescued None running" "$(states vm-x)"
t_check "Y is cached again" cached "$Y"
wait_passes 3
t_check "Y stays while the rescue uses it, and X, K, R for vm-x" bash -c \
    "test -f '$INST/_base/$Y' -a -f '$INST/_base/$X' -a -f '$INST/_base/$K' -a -f '$INST/_base/$R'"
t_check "unrescue --wait (from the kept K)" t_zova server unrescue --wait --wait-timeout 120 vm-x
t_eq "vm-x ACTIVE after unrescue" "ACTIVE active None running" "$(states vm-x)"
t_eq "libvirt runs it" "running" "$(v domstate "$DX" | head -1)"
t_wait_for "Y goes again once the rescue is over" 60 gone "$Y"

# --- vm-x deleted: nothing uses X, K, R; they go too -------------------------------------
t_check "delete vm-x --wait" t_zova server delete --wait --wait-timeout 60 vm-x
t_wait_for "X, K and R removed once unused" 60 test ! -e "$INST/_base/$X" -a ! -e "$INST/_base/$K" -a ! -e "$INST/_base/$R"
t_eq "the cache is empty" "" "$(ls "$INST/_base")"

t_stop aio
t_done
