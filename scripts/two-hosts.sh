#!/usr/bin/env bash
# two-hosts.sh start|stop|status DIR [--shared]: two libvirt hosts on one
# machine, "host A" and "host B", for moving servers between them (cold and
# live migration, resize, evacuate).
#
# Each host is a private libvirtd and virtlogd (scripts/libvirtd-test.sh on
# DIR/a and DIR/b: own host UUID, socket, config, state, cache and log dirs
# in a private mount namespace) started in a network namespace of its own.
# libvirt refuses to migrate between daemons that share a host UUID; with
# one each, and an address each, libvirt treats them as two hosts:
#
#      host network namespace: zova, virsh (through the unix sockets)
#          |                                   |
#   DIR/a/run/libvirt-sock              DIR/b/run/libvirt-sock
#          |                                   |
#   netns zova-<id>-a                   netns zova-<id>-b
#   libvirtd A, its QEMUs               libvirtd B, its QEMUs
#   zv<id>a 10.231.0.1/24 ----veth---- zv<id>b 10.231.0.2/24
#
# - A unix socket is a path in the file system, not an object of a network
#   namespace: zova's compute processes (outside both namespaces) reach each
#   daemon with `qemu:///system?socket=...`, and each daemon reaches the
#   other's socket the same way for peer-to-peer migration
#   (`qemu+unix:///system?socket=<B's socket>`).
# - Guest memory (and disks, with --copy-storage-all) travels between the
#   two QEMUs over the veth pair: `--migrateuri tcp://<B's address>`.  Always
#   give it: without it libvirt uses the destination's hostname, which is
#   this machine's for both.
# - The veth pair lives only inside the two namespaces, so its addresses
#   never meet the machine's own network; 10.231.0.0/24 is merely a range
#   a reader will not confuse with anything else.  TWO_HOSTS_ADDR_A,
#   TWO_HOSTS_ADDR_B and TWO_HOSTS_PREFIX (24) override it at start.
# - Whatever a guest listens on (VNC and a TCP serial console on
#   127.0.0.1) is inside its host's namespace, out of reach from outside:
#   a console proxy must enter the namespace (ip netns exec) to use it.
#
# qemu.conf: libvirtd-test.sh's (QEMU as root, so post-copy's userfaultfd
# works whatever vm.unprivileged_userfaultfd says; cgroup_controllers = [ ],
# no systemd and the machine's cgroups untouched) with stdio_handler =
# "file": each QEMU writes its own log, no virtlogd between (a trial with
# "logd" migrated as well; "file" is the setting known to work between
# two such daemons).  LIBVIRTD_TEST_CAPS_CACHE is passed on (both daemons
# are seeded from it; host A alone saves it back at stop).
#
# libvirtd's log shows "ethtool ioctl error on <device>" at start: /sys is
# the machine's, so it lists devices its network namespace does not have.
# Harmless; remounting /sys would also hide the cgroup tree.
#
# Instances: with --shared both hosts use DIR/shared-instances (one path,
# as NFS gives real hosts); without, DIR/a/instances and DIR/b/instances.
# Local disks both hosts reach by one path need `--unsafe` (libvirt cannot
# prove the storage shared) and `<seclabel model='dac' relabel='no'/>`.
# Separate directories have different paths, so a move with
# --copy-storage-all rewrites the disk paths in the destination XML
# (`virsh migrate --xml`), as Nova passes the destination's own instance
# path, after an empty qcow2 of the same size is made there.
#
# start prints, on stdout, one line of shell assignments per host and a
# third for the mode, for `eval "$(two-hosts.sh start DIR)"`:
#
#   A_URI='qemu:///system?socket=DIR/a/run/libvirt-sock' A_P2P_URI='qemu+unix:///system?socket=DIR/a/run/libvirt-sock' A_MIGRATION_ADDR=10.231.0.1 A_MIGRATION_URI=tcp://10.231.0.1 A_INSTANCES='DIR/a/instances' A_HOST_UUID=... A_NETNS=zova-<id>-a
#   B_URI=... (the same for B)
#   SHARED=0
#
# A second start while both run prints the same lines (and refuses to switch
# --shared).  stop destroys both daemons' guests, stops the daemons by their
# PID files, kills any QEMU they left, deletes the veth pair and both
# namespaces; it is harmless twice and cleans what a crash left.  status
# says whether each daemon answers (exit 0 when both do, 3 otherwise).
#
# A live move by hand (tests/guest/two_hosts.sh makes three, checks them and
# times them; docs/PERFORMANCE.md, "Two hosts on one machine", has figures):
#
#   eval "$(bash scripts/two-hosts.sh start /var/tmp/two --shared)"
#   virsh -c "$A_URI" define guest.xml && virsh -c "$A_URI" start guest
#   virsh -c "$A_URI" migrate --live --p2p --persistent --undefinesource --unsafe \
#       guest "$B_P2P_URI" --migrateuri "$B_MIGRATION_URI"
#   virsh -c "$B_URI" domstate guest
#   bash scripts/two-hosts.sh stop /var/tmp/two
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIBVIRTD_TEST="$HERE/libvirtd-test.sh"

die () { echo "two-hosts: $*" >&2; exit 1; }
note () { echo "two-hosts: $*" >&2; }
usage () { echo "usage: two-hosts.sh start|stop|status DIR [--shared]" >&2; exit 2; }

[ $# -ge 2 ] && [ $# -le 3 ] || usage
CMD=$1
WANT_SHARED=0
if [ $# -eq 3 ]; then
    [ "$3" = --shared ] && [ "$CMD" = start ] || usage
    WANT_SHARED=1
fi
case "$CMD" in start|stop|status) ;; *) usage ;; esac

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, a veth pair, privileged libvirtds)"

# Each tool and the Debian package (scripts/deps.sh installs them all) that has it.
TOOLS=(
    "ip iproute2"
    "nsenter util-linux"
    "unshare util-linux"
    "sha256sum coreutils"
    "libvirtd libvirt-daemon-system"
    "virtlogd libvirt-daemon-system"
    "virsh libvirt-clients"
)
for entry in "${TOOLS[@]}"; do
    read -r tool package <<<"$entry"
    command -v "$tool" >/dev/null || die "$tool missing (Debian package $package; bash scripts/deps.sh installs it)"
done

if [ "$CMD" = start ]; then
    mkdir -p "$2"
elif [ ! -d "$2" ]; then
    [ "$CMD" = stop ] && exit 0
    die "no such directory: $2"
fi
DIR=$(cd "$2" && pwd)
CONF="$DIR/two-hosts.conf"

# Names that differ per DIR, so two pairs of hosts can coexist: a veth
# name has at most 15 characters.
ID=$(printf '%s' "$DIR" | sha256sum | cut -c1-8)
NS_A="zova-$ID-a"
NS_B="zova-$ID-b"
VETH_A="zv${ID}a"
VETH_B="zv${ID}b"
ADDR_A=${TWO_HOSTS_ADDR_A:-10.231.0.1}
ADDR_B=${TWO_HOSTS_ADDR_B:-10.231.0.2}
PREFIX=${TWO_HOSTS_PREFIX:-24}
SHARED=$WANT_SHARED

# What start chose is kept in DIR/two-hosts.conf (KEY=value lines, read
# here, never sourced) for status and stop, whatever their environment.
read_conf () {
    [ -f "$CONF" ] || return 1
    local key value
    while IFS='=' read -r key value; do
        case "$key" in
            NS_A) NS_A=$value ;; NS_B) NS_B=$value ;;
            VETH_A) VETH_A=$value ;; VETH_B) VETH_B=$value ;;
            ADDR_A) ADDR_A=$value ;; ADDR_B) ADDR_B=$value ;;
            PREFIX) PREFIX=$value ;; SHARED) SHARED=$value ;;
        esac
    done <"$CONF"
}

write_conf () {
    printf '%s\n' "NS_A=$NS_A" "NS_B=$NS_B" "VETH_A=$VETH_A" "VETH_B=$VETH_B" \
        "ADDR_A=$ADDR_A" "ADDR_B=$ADDR_B" "PREFIX=$PREFIX" "SHARED=$SHARED" >"$CONF.new"
    mv "$CONF.new" "$CONF"
}

# q STRING: STRING single-quoted for eval.
q () { printf "'%s'" "${1//\'/\'\\\'\'}"; }

alive () { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# daemon_pid H: host H's (a or b) libvirtd PID, or nothing.
daemon_pid () { alive "$DIR/$1/run/libvirtd.pid" && cat "$DIR/$1/run/libvirtd.pid"; }

socket () { echo "$DIR/$1/run/libvirt-sock"; }

instances () {
    if [ "$SHARED" = 1 ]; then echo "$DIR/shared-instances"; else echo "$DIR/$1/instances"; fi
}

answers () { virsh -c "qemu:///system?socket=$(socket "$1")" version >/dev/null 2>&1; }

# in_netns PID NS: PID lives in network namespace NS.
in_netns () {
    [ -e "/run/netns/$2" ] \
        && [ "$(readlink "/proc/$1/ns/net" 2>/dev/null)" = "net:[$(stat -L -c %i "/run/netns/$2")]" ]
}

valid_ipv4 () {
    [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
    local i
    for i in 1 2 3 4; do [ "${BASH_REMATCH[$i]}" -le 255 ] || return 1; done
}

# ensure_net: both namespaces with loopback up, the veth pair between them,
# each end up with its address.  Makes only what is missing, so a start
# over running hosts disturbs nothing.
ensure_net () {
    local ns
    for ns in "$NS_A" "$NS_B"; do
        [ -e "/run/netns/$ns" ] || ip netns add "$ns" || die "ip netns add $ns failed"
        ip -n "$ns" link set lo up
    done
    # Deleting either end, or either namespace, deletes the pair: A's end
    # missing means there is no pair.
    if ! ip -n "$NS_A" link show "$VETH_A" >/dev/null 2>&1; then
        ip -n "$NS_B" link del "$VETH_B" 2>/dev/null || true
        ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B" \
            || die "cannot create the veth pair $VETH_A/$VETH_B"
    fi
    local side dev addr
    for side in A B; do
        if [ $side = A ]; then ns=$NS_A dev=$VETH_A addr=$ADDR_A; else ns=$NS_B dev=$VETH_B addr=$ADDR_B; fi
        if ! ip -n "$ns" -4 -o addr show dev "$dev" | grep -q " $addr/$PREFIX "; then
            ip -n "$ns" addr flush dev "$dev"
            ip -n "$ns" addr add "$addr/$PREFIX" dev "$dev"
        fi
        ip -n "$ns" link set "$dev" up
    done
}

host_line () {
    local h=$1 H addr ns
    H=$(echo "$h" | tr a-z A-Z)
    if [ "$h" = a ]; then addr=$ADDR_A ns=$NS_A; else addr=$ADDR_B ns=$NS_B; fi
    echo "${H}_URI=$(q "qemu:///system?socket=$(socket "$h")")" \
        "${H}_P2P_URI=$(q "qemu+unix:///system?socket=$(socket "$h")")" \
        "${H}_MIGRATION_ADDR=$addr ${H}_MIGRATION_URI=tcp://$addr" \
        "${H}_INSTANCES=$(q "$(instances "$h")")" \
        "${H}_HOST_UUID=$(cat "$DIR/$h/host-uuid") ${H}_NETNS=$ns"
}

print_lines () { host_line a; host_line b; echo "SHARED=$SHARED"; }

do_start () {
    local was_running=0 h pid ns
    if read_conf; then
        for h in a b; do
            pid=$(daemon_pid "$h") || continue
            was_running=1
            [ "$h" = a ] && ns=$NS_A || ns=$NS_B
            in_netns "$pid" "$ns" \
                || die "host $h's libvirtd ($pid) runs outside network namespace $ns; two-hosts.sh stop $DIR first"
        done
        if [ $was_running = 1 ]; then
            [ "$SHARED" = "$WANT_SHARED" ] \
                || die "running with SHARED=$SHARED; two-hosts.sh stop $DIR before starting the other way"
            [ -z "${TWO_HOSTS_ADDR_A:-}${TWO_HOSTS_ADDR_B:-}${TWO_HOSTS_PREFIX:-}" ] \
                || [ "${TWO_HOSTS_ADDR_A:-$ADDR_A} ${TWO_HOSTS_ADDR_B:-$ADDR_B} ${TWO_HOSTS_PREFIX:-$PREFIX}" = "$ADDR_A $ADDR_B $PREFIX" ] \
                || die "running with $ADDR_A and $ADDR_B/$PREFIX; stop first to change them"
        else
            # Stopped: this start's environment and flag decide.
            ADDR_A=${TWO_HOSTS_ADDR_A:-10.231.0.1}
            ADDR_B=${TWO_HOSTS_ADDR_B:-10.231.0.2}
            PREFIX=${TWO_HOSTS_PREFIX:-24}
            SHARED=$WANT_SHARED
        fi
    fi
    valid_ipv4 "$ADDR_A" || die "not an IPv4 address: $ADDR_A (TWO_HOSTS_ADDR_A)"
    valid_ipv4 "$ADDR_B" || die "not an IPv4 address: $ADDR_B (TWO_HOSTS_ADDR_B)"
    [ "$ADDR_A" != "$ADDR_B" ] || die "both hosts would have address $ADDR_A"
    [[ $PREFIX =~ ^[0-9]+$ ]] && [ "$PREFIX" -ge 8 ] && [ "$PREFIX" -le 30 ] \
        || die "prefix length must be 8-30: $PREFIX (TWO_HOSTS_PREFIX)"
    case "$DIR" in
        /etc/libvirt*|/run/libvirt*|/var/run/libvirt*|/var/lib/libvirt*|/var/cache/libvirt*|/var/log/libvirt*)
            die "DIR must not be under a directory the daemons hide: $DIR" ;;
    esac

    ensure_net
    write_conf
    mkdir -p "$DIR/a" "$DIR/b" "$(instances a)" "$(instances b)"

    # Both at once: with an empty capabilities cache each takes about 8 s.
    local pid_a pid_b rc_a=0 rc_b=0
    LIBVIRTD_TEST_NETNS=$NS_A LIBVIRTD_TEST_STDIO_HANDLER=file \
        bash "$LIBVIRTD_TEST" start "$DIR/a" >/dev/null 2>"$DIR/a/start.err" &
    pid_a=$!
    LIBVIRTD_TEST_NETNS=$NS_B LIBVIRTD_TEST_STDIO_HANDLER=file \
        bash "$LIBVIRTD_TEST" start "$DIR/b" >/dev/null 2>"$DIR/b/start.err" &
    pid_b=$!
    wait $pid_a || rc_a=$?
    wait $pid_b || rc_b=$?
    if [ $rc_a -ne 0 ] || [ $rc_b -ne 0 ]; then
        for h in a b; do
            [ -s "$DIR/$h/start.err" ] && sed "s/^/  host $h: /" "$DIR/$h/start.err" >&2
        done
        if [ $was_running = 0 ]; then
            note "start failed; cleaning up"
            do_stop >/dev/null 2>&1 || true
        fi
        die "start failed (host a rc $rc_a, host b rc $rc_b); logs in $DIR/{a,b}/log"
    fi
    for h in a b; do
        pid=$(daemon_pid "$h") || die "host $h's libvirtd exited after start; see $DIR/$h/log/libvirtd.log"
        [ "$h" = a ] && ns=$NS_A || ns=$NS_B
        in_netns "$pid" "$ns" || die "host $h's libvirtd ($pid) is not in $ns"
    done
    note "host A: libvirtd $(daemon_pid a) in $NS_A, $ADDR_A/$PREFIX; host B: libvirtd $(daemon_pid b) in $NS_B, $ADDR_B/$PREFIX"
    print_lines
}

do_stop () {
    read_conf || true
    # Both at once (each daemon takes 1.5-2 s to exit); B does not save the
    # capabilities cache, so the two never write it together.
    local pid_a pid_b rc=0
    bash "$LIBVIRTD_TEST" stop "$DIR/a" 2>"$DIR/a.stop.err" &
    pid_a=$!
    env -u LIBVIRTD_TEST_CAPS_CACHE bash "$LIBVIRTD_TEST" stop "$DIR/b" 2>"$DIR/b.stop.err" &
    pid_b=$!
    wait $pid_a || rc=1
    wait $pid_b || rc=1
    local h
    for h in a b; do
        if daemon_pid "$h" >/dev/null; then
            note "host $h's libvirtd ($(daemon_pid "$h")) did not stop: $(tail -2 "$DIR/$h.stop.err" 2>/dev/null)"
            rc=1
        fi
        rm -f "$DIR/$h.stop.err"
    done
    # The pair goes with either end; then the namespaces (each disappears
    # with its last process, all stopped above).
    if [ -e "/run/netns/$NS_A" ]; then
        ip -n "$NS_A" link del "$VETH_A" 2>/dev/null || true
    fi
    if [ -e "/run/netns/$NS_B" ]; then
        ip -n "$NS_B" link del "$VETH_B" 2>/dev/null || true
    fi
    local ns
    for ns in "$NS_A" "$NS_B"; do
        if [ -e "/run/netns/$ns" ]; then
            ip netns del "$ns" || { note "cannot delete network namespace $ns"; rc=1; }
        fi
    done
    [ $rc -eq 0 ] && rm -f "$CONF"
    note "stopped ($DIR)"
    return $rc
}

do_status () {
    read_conf || true
    local h H pid ns addr dev rc=0 state
    for h in a b; do
        H=$(echo "$h" | tr a-z A-Z)
        if [ "$h" = a ]; then ns=$NS_A addr=$ADDR_A dev=$VETH_A; else ns=$NS_B addr=$ADDR_B dev=$VETH_B; fi
        if ! pid=$(daemon_pid "$h"); then
            echo "host $H: stopped"; rc=3; continue
        fi
        if answers "$h"; then state=answering; else state="not answering"; rc=3; fi
        # (A daemon that is exiting has no namespace left to compare.)
        if [ -e "/proc/$pid/ns/net" ] && ! in_netns "$pid" "$ns"; then
            state="$state, outside its network namespace $ns"; rc=3
        fi
        if ip -n "$ns" -4 -o addr show dev "$dev" 2>/dev/null | grep -q " $addr/$PREFIX "; then
            state="$state, $addr/$PREFIX on $dev"
        else
            state="$state, no $addr on $dev"; rc=3
        fi
        echo "host $H: $state (libvirtd $pid, netns $ns, socket $(socket "$h"))"
    done
    echo "instances: $(instances a)$([ "$SHARED" = 1 ] && echo " (shared)" || echo ", $(instances b)")"
    return $rc
}

case "$CMD" in
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
esac
