#!/usr/bin/env bash
# libvirtd-test.sh start|stop|restart|status DIR: a private libvirtd (and its virtlogd)
# for tests, with every file it writes under DIR.
#
# Run as root, libvirtd is "privileged" and its QEMU driver keeps state in
# fixed places (/etc/libvirt, /run/libvirt, /var/lib/libvirt,
# /var/cache/libvirt, /var/log/libvirt) that no option moves.  So the two
# daemons run in a private mount namespace where DIR/{etc,run,lib,cache,log}
# are bind-mounted over those five directories: another libvirtd on the
# machine, and its domains, never see them, and they never see it.  Outside
# the namespace the socket is DIR/run/libvirt-sock:
#
#   virsh -c 'qemu:///system?socket=DIR/run/libvirt-sock' ...
#
# (start prints that URI).  The only host change: /run/libvirt is created,
# empty, when missing, because a bind mount needs its mount point.
#
# qemu.conf choices, and why:
#   user/group = root   test dirs are mktemp'd 0700 and QEMU must read the
#                       images in them; root QEMU may also use userfaultfd
#                       (post-copy).  LIBVIRTD_TEST_QEMU_USER=libvirt-qemu
#                       restores Debian's default.
#   cgroup_controllers = [ ]   no systemd here; never touch the host's cgroups
#   security_driver = "none"   no AppArmor profile for paths under DIR
#   remember_owner = 0          no xattrs left on the test's files
#
# LIBVIRTD_TEST_NETNS=NAME (opt-in) starts both daemons, and so every QEMU,
# in the network namespace /run/netns/NAME (made beforehand with `ip netns
# add`), for a daemon that must look like another host on the network
# (scripts/two-hosts.sh).  The unix socket is a path, so clients outside the
# namespace still reach it.  The name is kept in DIR/netns for restart.
#
# LIBVIRTD_TEST_CAPS_CACHE=DIR2 (opt-in) seeds DIR/cache from DIR2 at start
# and saves it back at stop: probing QEMU's capabilities into an empty cache
# costs about 8 s, a valid cache 0.2 s (libvirt itself re-probes a stale one).
#
# stop destroys the daemon's domains, stops libvirtd then virtlogd by the PIDs
# in their pid files, and kills any QEMU still listed in DIR/run/qemu/*.pid.
set -euo pipefail

usage () { echo "usage: libvirtd-test.sh start|stop|restart|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
CMD=$1
[ "$CMD" = start ] && mkdir -p "$2"
[ -d "$2" ] || { echo "libvirtd-test: no such directory: $2" >&2; [ "$CMD" = stop ] && exit 0; exit 3; }
DIR=$(cd "$2" && pwd)
URI="qemu:///system?socket=$DIR/run/libvirt-sock"
LIBVIRTD_PID="$DIR/run/libvirtd.pid"
VIRTLOGD_PID="$DIR/run/virtlogd.pid"
DEADLINE_S=${LIBVIRTD_TEST_TIMEOUT:-30}
NETNS_FILE="$DIR/netns"

case "$DIR" in
    /etc/libvirt*|/run/libvirt*|/var/run/libvirt*|/var/lib/libvirt*|/var/cache/libvirt*|/var/log/libvirt*)
        echo "libvirtd-test: DIR must not be under a directory it hides: $DIR" >&2; exit 2 ;;
esac

now_ms () { echo $(( $(date +%s%N) / 1000000 )); }

alive () { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_gone PID SECONDS: poll until PID has exited; 1 if it has not.
wait_gone () {
    local pid=$1 deadline=$(( $(now_ms) + $2 * 1000 ))
    while kill -0 "$pid" 2>/dev/null; do
        [ "$(now_ms)" -lt $deadline ] || return 1
        sleep 0.05
    done
}

# stop_pid PID NAME: TERM, wait, then KILL.
stop_pid () {
    local pid=$1 name=$2
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! wait_gone "$pid" 10; then
        echo "libvirtd-test: $name ($pid) ignored SIGTERM, killing" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || true
    fi
}

write_configs () {
    local qemu_user=${LIBVIRTD_TEST_QEMU_USER:-root} qemu_group
    if [ "$qemu_user" = root ]; then qemu_group=root; else qemu_group=kvm; fi
    mkdir -p "$DIR"/{etc,run,lib,cache,log}
    # A host UUID of its own, kept for the life of DIR: libvirt refuses to
    # migrate between daemons that share one.
    [ -s "$DIR/host-uuid" ] || cat /proc/sys/kernel/random/uuid >"$DIR/host-uuid"
    cat >"$DIR/etc/libvirtd.conf" <<EOF
# private test libvirtd (scripts/libvirtd-test.sh)
unix_sock_dir = "$DIR/run"
unix_sock_group = "root"
unix_sock_ro_perms = "0770"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = "$(cat "$DIR/host-uuid")"
log_outputs = "3:file:$DIR/log/libvirtd.log"
log_filters = "${LIBVIRTD_TEST_LOG_FILTERS:-}"
EOF
    cat >"$DIR/etc/virtlogd.conf" <<EOF
log_outputs = "3:file:$DIR/log/virtlogd.log"
EOF
    cat >"$DIR/etc/qemu.conf" <<EOF
# private test libvirtd (scripts/libvirtd-test.sh)
user = "$qemu_user"
group = "$qemu_group"
cgroup_controllers = [ ]
security_driver = "none"
remember_owner = 0
vnc_listen = "127.0.0.1"
stdio_handler = "${LIBVIRTD_TEST_STDIO_HANDLER:-logd}"
EOF
    # Clients inside the namespace (none today) default to this daemon.
    echo "uri_default = \"qemu:///system\"" >"$DIR/etc/libvirt.conf"
}

# in_namespace DAEMON...: start the daemons (virtlogd, libvirtd) in a new
# private mount namespace with DIR's directories over libvirt's own, inside
# the network namespace named in DIR/netns if there is one.  They fork into
# the background (-d) and keep the namespace alive after the shell that made
# it exits.
in_namespace () {
    local net=()
    [ -s "$NETNS_FILE" ] && net=(nsenter "--net=/run/netns/$(cat "$NETNS_FILE")" --)
    "${net[@]}" unshare --mount --propagation private -- /bin/sh -ec '
        d=$1; shift
        mount --bind "$d/etc" /etc/libvirt
        mount --bind "$d/run" /run/libvirt
        mount --bind "$d/lib" /var/lib/libvirt
        mount --bind "$d/cache" /var/cache/libvirt
        mount --bind "$d/log" /var/log/libvirt
        for daemon in "$@"; do
            "$daemon" -d -f "$d/etc/$daemon.conf" -p "$d/run/$daemon.pid"
        done
    ' sh "$DIR" "$@"
}

do_start () {
    if alive "$LIBVIRTD_PID"; then
        echo "$URI"
        return 0
    fi
    command -v libvirtd >/dev/null || { echo "libvirtd-test: libvirtd missing (scripts/deps.sh)" >&2; exit 1; }
    write_configs
    if [ -n "${LIBVIRTD_TEST_NETNS:-}" ]; then
        [ -e "/run/netns/$LIBVIRTD_TEST_NETNS" ] \
            || { echo "libvirtd-test: no network namespace $LIBVIRTD_TEST_NETNS (ip netns add)" >&2; exit 1; }
        command -v nsenter >/dev/null || { echo "libvirtd-test: nsenter missing (scripts/deps.sh)" >&2; exit 1; }
        echo "$LIBVIRTD_TEST_NETNS" >"$NETNS_FILE"
    else
        rm -f "$NETNS_FILE"
    fi
    if [ "${LIBVIRTD_TEST_QEMU_USER:-root}" != root ] && [ -e /dev/kvm ] \
        && [ "$(stat -c %G /dev/kvm)" != kvm ]; then
        chgrp kvm /dev/kvm && chmod 660 /dev/kvm
    fi
    [ -d /run/libvirt ] || mkdir -p /run/libvirt
    rm -f "$DIR/run/libvirt-sock" "$LIBVIRTD_PID" "$VIRTLOGD_PID"
    local caps=${LIBVIRTD_TEST_CAPS_CACHE:-}
    if [ -n "$caps" ] && [ -d "$caps/qemu/capabilities" ] && [ ! -d "$DIR/cache/qemu/capabilities" ]; then
        mkdir -p "$DIR/cache/qemu"
        cp -r "$caps/qemu/capabilities" "$DIR/cache/qemu/"
    fi

    in_namespace virtlogd libvirtd >>"$DIR/log/start.log" 2>&1 || {
        echo "libvirtd-test: start failed; see $DIR/log/start.log" >&2
        tail -5 "$DIR/log/start.log" >&2
        exit 1
    }

    local t0 deadline
    t0=$(now_ms)
    deadline=$(( t0 + DEADLINE_S * 1000 ))
    until virsh -c "$URI" version >/dev/null 2>&1; do
        if [ "$(now_ms)" -ge $deadline ]; then
            echo "libvirtd-test: not answering after ${DEADLINE_S}s; see $DIR/log/libvirtd.log" >&2
            do_stop >/dev/null 2>&1 || true
            exit 1
        fi
        sleep 0.05
    done
    echo "libvirtd-test: ready in $(( $(now_ms) - t0 )) ms (libvirtd $(cat "$LIBVIRTD_PID"), virtlogd $(cat "$VIRTLOGD_PID"))" >&2
    echo "$URI"
}

do_stop () {
    local dom pid f pids=()
    if alive "$LIBVIRTD_PID"; then
        for dom in $(virsh -c "$URI" list --name 2>/dev/null); do
            virsh -c "$URI" destroy "$dom" >/dev/null 2>&1 || true
        done
    fi
    # Both at once: each takes 1.5-2 s to exit on SIGTERM.
    alive "$LIBVIRTD_PID" && pids+=("$(cat "$LIBVIRTD_PID")")
    alive "$VIRTLOGD_PID" && pids+=("$(cat "$VIRTLOGD_PID")")
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do stop_pid "$pid" "daemon"; done
    # QEMU outlives libvirtd by design; anything the daemon did not destroy.
    for f in "$DIR"/run/qemu/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
            qemu-system-*) stop_pid "$pid" qemu ;;
        esac
        rm -f "$f"
    done
    rm -f "$LIBVIRTD_PID" "$VIRTLOGD_PID"
    local caps=${LIBVIRTD_TEST_CAPS_CACHE:-}
    if [ -n "$caps" ] && [ -d "$DIR/cache/qemu/capabilities" ]; then
        mkdir -p "$caps/qemu"
        rm -rf "$caps/qemu/capabilities.new"
        cp -r "$DIR/cache/qemu/capabilities" "$caps/qemu/capabilities.new"
        rm -rf "$caps/qemu/capabilities"
        mv "$caps/qemu/capabilities.new" "$caps/qemu/capabilities"
    fi
    echo "libvirtd-test: stopped ($DIR)" >&2
}

# restart: libvirtd alone goes and comes back (virtlogd and the guests stay),
# as when an operator restarts the daemon; its clients see the connection
# drop and must reconnect.
do_restart () {
    alive "$LIBVIRTD_PID" || { echo "libvirtd-test: libvirtd is not running" >&2; exit 1; }
    stop_pid "$(cat "$LIBVIRTD_PID")" libvirtd
    rm -f "$LIBVIRTD_PID" "$DIR/run/libvirt-sock"
    sleep "${LIBVIRTD_TEST_DOWN_S:-0}"
    in_namespace libvirtd >>"$DIR/log/start.log" 2>&1 || { echo "libvirtd-test: restart failed" >&2; exit 1; }
    local deadline=$(( $(now_ms) + DEADLINE_S * 1000 ))
    until virsh -c "$URI" version >/dev/null 2>&1; do
        [ "$(now_ms)" -lt $deadline ] || { echo "libvirtd-test: not answering after restart" >&2; exit 1; }
        sleep 0.05
    done
    echo "$URI"
}

do_status () {
    local rc=0
    if alive "$LIBVIRTD_PID"; then echo "libvirtd: running, pid $(cat "$LIBVIRTD_PID")"
    else echo "libvirtd: stopped"; rc=3; fi
    if alive "$VIRTLOGD_PID"; then echo "virtlogd: running, pid $(cat "$VIRTLOGD_PID")"
    else echo "virtlogd: stopped"; rc=3; fi
    if [ $rc -eq 0 ]; then
        echo "uri: $URI"
        [ -s "$NETNS_FILE" ] && echo "network namespace: $(cat "$NETNS_FILE")"
        if virsh -c "$URI" version >/dev/null 2>&1; then
            echo "answering: yes"
            echo "domains running: $(virsh -c "$URI" list --name 2>/dev/null | grep -c . || true)"
        else
            echo "answering: no"; rc=1
        fi
    fi
    return $rc
}

case "$CMD" in
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    restart) do_restart ;;
    *) usage ;;
esac
