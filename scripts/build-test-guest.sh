#!/usr/bin/env bash
# build-test-guest.sh OUTDIR: build the tiny real guest the libvirt tests boot.
#
# Everything comes from Debian packages (linux-image-amd64, busybox-static,
# qemu-guest-agent); nothing is downloaded.  OUTDIR receives:
#
#   vmlinuz          the Debian kernel as shipped (bzImage, XZ inside)
#   vmlinux          the same kernel uncompressed (an ELF with a PVH entry note):
#                    QEMU boots it directly, which saves the 2-4 s the kernel
#                    spends decompressing itself under TCG
#   initrd.img       gzip cpio: busybox, qemu-ga with the libraries ldd lists,
#                    the few modules a virtio guest needs, and an init
#   initrd-boot.img  gzip cpio: busybox, the modules and the init only; it
#                    mounts root=/dev/vda and switches to it (the Debian kernel
#                    has virtio and ext4 as modules, so even a disk boot needs
#                    a small initramfs)
#   disk.qcow2       the initrd.img tree on a 64 MiB ext4, as qcow2: boot it
#                    with initrd-boot.img and "root=/dev/vda"
#   cmdline          the kernel command line both variants share
#   stamp            package versions and this script's hash; OUTDIR is reused
#                    as is while they match
#
# The guest: busybox init; /init loads the modules (and switches to the disk
# root when root= is given); rcS mounts proc/sys/dev, makes the
# /dev/virtio-ports/<name> links udev would make, runs udhcpc on eth0, starts
# qemu-ga on org.qemu.guest_agent.0 and busybox acpid (power button ->
# poweroff), prints "zova test guest ready" on the serial console, and a
# login-less shell stays on the console.  Shims fill what busybox lacks for
# qemu-ga: /sbin/shutdown (guest-shutdown) and /usr/sbin/chpasswd
# (guest-set-user-password).  The root password is "zova".
#
# No loop mounts: mkfs.ext4 -d fills the file system from the tree.
# Concurrent builders of one OUTDIR serialise on OUTDIR/.lock.
set -euo pipefail

die () { echo "build-test-guest: $*" >&2; exit 1; }
log () { echo "build-test-guest: $*" >&2; }

[ $# -eq 1 ] || { echo "usage: build-test-guest.sh OUTDIR" >&2; exit 2; }
OUT=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"

# The packages and tools this needs; deps.sh installs them.
need_install=0
for p in linux-image-amd64 busybox-static qemu-guest-agent qemu-utils e2fsprogs cpio kmod python3; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || need_install=1
done
if [ $need_install -eq 1 ]; then
    log "installing guest packages (scripts/deps.sh)"
    bash "$HERE/deps.sh" >&2
fi

# The kernel package linux-image-amd64 points at, e.g. linux-image-6.1.0-56-amd64.
KPKG=$(dpkg-query -W -f='${Depends}' linux-image-amd64 | tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\).*/\1/p' | head -1)
KVER=${KPKG#linux-image-}
[ -f "/boot/vmlinuz-$KVER" ] || die "no /boot/vmlinuz-$KVER"
[ -d "/lib/modules/$KVER" ] || die "no /lib/modules/$KVER"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec 9>"$OUT/.lock"
flock 9

stamp_text () {
    for p in "$KPKG" busybox-static qemu-guest-agent; do
        echo "$p $(dpkg-query -W -f='${Version}' "$p")"
    done
    echo "builder $(sha256sum "$SELF" | cut -d' ' -f1)"
}
STAMP=$(stamp_text)
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$STAMP" ]; then
    for f in vmlinuz vmlinux initrd.img initrd-boot.img disk.qcow2 cmdline; do
        [ -s "$OUT/$f" ] || { STAMP_OK=0; break; }
    done
    if [ "${STAMP_OK:-1}" = 1 ]; then
        log "up to date in $OUT"
        exit 0
    fi
fi

t0=$(date +%s%N)
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
rm -f "$OUT/stamp"

# --- kernel -----------------------------------------------------------------
cp "/boot/vmlinuz-$KVER" "$WORK/vmlinuz"

# The bzImage carries the kernel as one compressed stream after the setup
# code; find the stream's magic and decompress from there (the approach of
# the kernel's scripts/extract-vmlinux), keeping the first result that is an
# ELF file.  Python's decompressors stop cleanly at the stream's end.
extract_vmlinux () {
    python3 - "$1" "$2" <<'PY'
import gzip, lzma, sys, zlib
img = open(sys.argv[1], "rb").read()
def unxz(b):
    return lzma.LZMADecompressor().decompress(b)
def ungz(b):
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(b)
for magic, fn in ((b"\xfd7zXZ\x00", unxz), (b"\x1f\x8b\x08", ungz)):
    off = img.find(magic)
    while off >= 0:
        try:
            out = fn(img[off:])
        except Exception:
            out = b""
        if out[:4] == b"\x7fELF":
            open(sys.argv[2], "wb").write(out)
            sys.exit(0)
        off = img.find(magic, off + 1)
sys.exit(1)
PY
}
extract_vmlinux "$WORK/vmlinuz" "$WORK/vmlinux" || die "could not extract vmlinux from vmlinuz"

# --- the guest tree ---------------------------------------------------------
TREE="$WORK/tree"
mkdir -p "$TREE"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,newroot,mnt,var/log,var/lib,etc/init.d,etc/udhcpc,etc/acpi/PWRF,lib64}
ln -s ../run "$TREE/var/run"
chmod 1777 "$TREE/tmp"
chmod 700 "$TREE/root"

cp /bin/busybox "$TREE/bin/busybox"
for applet in $(/bin/busybox --list-full); do
    case "$applet" in linuxrc|*/shutdown|*/chpasswd) continue ;; esac
    [ -e "$TREE/$applet" ] || ln -s /bin/busybox "$TREE/$applet"
done

# Modules in load order (modprobe resolves the dependencies on the host).
# crc32c-intel may refuse a CPU without SSE4.2; crc32c_generic covers it.
MODULES="virtio_pci virtio_net virtio_console virtio_blk crc32c_generic ext4 button evdev"
: >"$WORK/modules.order"
for m in $MODULES; do
    modprobe --show-depends -S "$KVER" "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' >"$WORK/modules.order"
mkdir -p "$TREE/lib/modules/$KVER"
while read -r ko; do
    mkdir -p "$TREE$(dirname "$ko")"
    cp "$ko" "$TREE$ko"
done <"$WORK/modules.order"
cp "$WORK/modules.order" "$TREE/etc/zova-modules"

cat >"$TREE/init" <<'EOF'
#!/bin/sh
# /init (initramfs): load the virtio and ext4 modules, then either switch to
# the disk root (root=/dev/vdX on the command line) or run busybox init here.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
while read -r ko; do insmod "$ko" 2>/dev/null; done </etc/zova-modules
root=
for arg in $(cat /proc/cmdline); do
    case "$arg" in root=*) root=${arg#root=} ;; esac
done
if [ -n "$root" ]; then
    for _ in $(seq 100); do [ -b "$root" ] && break; sleep 0.05; done
    if mount -t ext4 -o rw "$root" /newroot; then
        umount /dev /proc
        exec switch_root /newroot /sbin/init
    fi
    echo "zova guest: cannot mount root $root, staying in the initramfs" >/dev/console
fi
umount /proc
exec /sbin/init
EOF
chmod 755 "$TREE/init"

# A second, slim initramfs for the disk variant: busybox, modules, /init.
BOOT="$WORK/boot"
mkdir -p "$BOOT"
(cd "$TREE" && tar -cf - bin sbin usr/bin usr/sbin lib/modules etc/zova-modules init proc dev newroot) | tar -xf - -C "$BOOT"

# qemu-ga and the libraries it links (paths as ldd prints them).
cp /usr/sbin/qemu-ga "$TREE/usr/sbin/qemu-ga"
for lib in $(ldd /usr/sbin/qemu-ga | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'); do
    mkdir -p "$TREE$(dirname "$lib")"
    cp -L "$lib" "$TREE$lib"
done

cat >"$TREE/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS
::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
EOF

cat >"$TREE/etc/init.d/rcS" <<'EOF'
#!/bin/sh
# rcS: bring the test guest up; qemu-ga as early as it can, the banner last.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
grep -q ' /proc ' /proc/mounts 2>/dev/null || mount -t proc proc /proc
grep -q ' /sys ' /proc/mounts || mount -t sysfs sysfs /sys
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -o remount,rw / 2>/dev/null
# /init loaded the modules; this is for a root booted without it.
grep -q '^virtio_pci ' /proc/modules ||
    while read -r ko; do insmod "$ko" 2>/dev/null; done </etc/zova-modules
hostname -F /etc/hostname
ip link set lo up

# What udev would do: /dev/virtio-ports/<name> -> /dev/vportNpM.
mkdir -p /dev/virtio-ports
for port in /sys/class/virtio-ports/*; do
    [ -r "$port/name" ] || continue
    ln -sf "../$(basename "$port")" "/dev/virtio-ports/$(cat "$port/name")"
done

if [ -e /dev/virtio-ports/org.qemu.guest_agent.0 ]; then
    qemu-ga -d -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 \
        -f /run/qemu-ga.pid -t /run -l /var/log/qemu-ga.log
fi

acpid -c /etc/acpi -l /var/log/acpid.log

# After qemu-ga, so guest-ping answers while DHCP runs; -b: wait for the
# lease (instant with QEMU's user-mode network), then renew in the background.
if [ -e /sys/class/net/eth0 ]; then
    udhcpc -i eth0 -s /etc/udhcpc/default.script -b -t 10 -T 1 -p /run/udhcpc.eth0.pid >/dev/null 2>&1
fi

addr=$(ip -4 -o addr show dev eth0 2>/dev/null | awk '{ print $4 }')
echo "zova test guest ready: uptime $(cut -d' ' -f1 /proc/uptime) s, kernel $(uname -r), root $(awk '$2 == "/" { r = $1 } END { print r }' /proc/mounts), eth0 ${addr:-none}" >/dev/console
EOF
chmod 755 "$TREE/etc/init.d/rcS"

cat >"$TREE/etc/init.d/rcK" <<'EOF'
#!/bin/sh
# rcK: leave a clean file system behind when the root is a disk.
[ -f /run/qemu-ga.pid ] && kill "$(cat /run/qemu-ga.pid)" 2>/dev/null
sync
mount -o remount,ro / 2>/dev/null
EOF
chmod 755 "$TREE/etc/init.d/rcK"

# Debian's busybox udhcpc runs this on lease events.
cat >"$TREE/etc/udhcpc/default.script" <<'EOF'
#!/bin/sh
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    ;;
esac
exit 0
EOF
chmod 755 "$TREE/etc/udhcpc/default.script"

# busybox acpid maps the power button (KEY_POWER) to PWRF/00000080 under -c.
cat >"$TREE/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
exec /sbin/poweroff
EOF
chmod 755 "$TREE/etc/acpi/PWRF/00000080"

# qemu-ga runs "shutdown -h -P|-H|-r +0 MESSAGE"; busybox has no shutdown.
cat >"$TREE/sbin/shutdown" <<'EOF'
#!/bin/sh
action=poweroff
for arg; do
    case "$arg" in
    -r) action=reboot ;;
    -H) action=halt ;;
    -P) action=poweroff ;;
    esac
done
exec /bin/busybox "$action"
EOF
chmod 755 "$TREE/sbin/shutdown"

# qemu-ga's guest-set-user-password runs "chpasswd [-e]" with "user:secret"
# on stdin; busybox has no chpasswd, so hash with mkpasswd and edit shadow.
cat >"$TREE/usr/sbin/chpasswd" <<'EOF'
#!/bin/sh
crypted=0
[ "${1:-}" = "-e" ] && crypted=1
umask 077
while IFS= read -r line; do
    user=${line%%:*}
    secret=${line#*:}
    [ -n "$user" ] || continue
    grep -q "^$user:" /etc/shadow || { echo "chpasswd: unknown user '$user'" >&2; exit 1; }
    if [ $crypted -eq 1 ]; then
        hash=$secret
    else
        hash=$(printf '%s\n' "$secret" | mkpasswd -m sha512 -P 0) || exit 1
    fi
    awk -F: -v OFS=: -v u="$user" -v h="$hash" '$1 == u { $2 = h } { print }' \
        /etc/shadow >/etc/shadow.new || exit 1
    mv /etc/shadow.new /etc/shadow
done
exit 0
EOF
chmod 755 "$TREE/usr/sbin/chpasswd"

echo zova-guest >"$TREE/etc/hostname"
echo "127.0.0.1 localhost zova-guest" >"$TREE/etc/hosts"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$TREE/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$TREE/etc/group"
printf 'root:%s:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' \
    "$(/bin/busybox mkpasswd -m sha512 zova)" >"$TREE/etc/shadow"
chmod 600 "$TREE/etc/shadow"
printf 'PRETTY_NAME="zova test guest"\nNAME="zova-test-guest"\nID=zova-test-guest\nVERSION_ID=1\n' >"$TREE/etc/os-release"
printf 'export PATH=/sbin:/usr/sbin:/bin:/usr/bin\nexport PS1="zova-guest# "\n' >"$TREE/etc/profile"
ln -s /proc/mounts "$TREE/etc/mtab"
: >"$TREE/etc/resolv.conf"

# --- images -----------------------------------------------------------------
mkcpio () { (cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -6 >"$2"; }
mkcpio "$TREE" "$WORK/initrd.img"
mkcpio "$BOOT" "$WORK/initrd-boot.img"

truncate -s 64M "$WORK/disk.raw"
mkfs.ext4 -q -F -L zova-root -E root_owner=0:0 -d "$TREE" "$WORK/disk.raw"
qemu-img convert -q -f raw -O qcow2 "$WORK/disk.raw" "$WORK/disk.qcow2"

echo "console=ttyS0 quiet" >"$WORK/cmdline"

for f in vmlinuz vmlinux initrd.img initrd-boot.img disk.qcow2 cmdline; do
    mv -f "$WORK/$f" "$OUT/$f"
done
echo "$STAMP" >"$OUT/stamp"
t1=$(date +%s%N)
log "built in $OUT in $(( (t1 - t0) / 1000000 )) ms (kernel $KVER; initrd.img $(( $(stat -c %s "$OUT/initrd.img") / 1024 )) KiB)"
