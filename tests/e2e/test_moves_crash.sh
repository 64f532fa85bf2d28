#!/usr/bin/env bash
# test_moves_crash.sh: a crash at every phase of a move, and the move goes
# on or rolls back by itself.
#
# A cluster of one conductor, scheduler and api and two compute hosts (a,
# b) on libvirt's test driver, each host with a private hypervisor.  The
# hosts hold the done report of each phase for a while ([DEFAULT]
# debug_move_delay_ms), which is the window a test needs to stop a
# process in the middle of a phase.  For each phase of a cold migration
# (prepare on b, source on a, finish on b, confirm on a) and of an
# evacuation (rebuild on b), the conductor, the source and the
# destination are killed (-9) in turn while the phase runs, and started
# again.  Then, within seconds: the server is in no task_state, its move
# reached VERIFY_RESIZE (and is confirmed) or ended, the server's domain
# is on exactly one host, and each host's usage is what its servers use.
# (A compute killed on the test driver loses its domains, as a host that
# crashed does: the move must cope with that too.)

source "$(dirname "$0")/lib.sh"

unset ZOVA_CONFIG
export ZOVA_ENDPOINT="tcp://127.0.0.1:$(t_port)"
CONDUCTOR_EP="tcp://127.0.0.1:$(t_port)"
DELAY_MS=2000

for host in a b; do
    cat >"$T_DIR/$host.xml" <<EOF
<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><active>8</active><nodes>1</nodes>
       <sockets>1</sockets><cores>8</cores><threads>1</threads></cpu>
  <memory>$(( 16384 * 1024 ))</memory>
</node>
EOF
    t_config "$T_DIR/$host.conf" DEFAULT.host="$host" DEFAULT.debug_move_delay_ms=$DELAY_MS \
        compute.sync_power_state_interval=2 conductor.endpoint="$CONDUCTOR_EP" compute.local_gb=100 \
        libvirt.connection_uri="test://$T_DIR/$host.xml"
done
t_config "$T_DIR/conductor.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    conductor.housekeeping_interval=1
t_config "$T_DIR/scheduler.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    scheduler.host_refresh_interval_ms=200
t_config "$T_DIR/api.conf" DEFAULT.host=controller api.endpoint="$ZOVA_ENDPOINT" conductor.endpoint="$CONDUCTOR_EP"

# start NAME: (re)start one process of the cluster with its config.
start () {
    case $1 in
        conductor|scheduler|api) t_start "$1" "$1" "$T_DIR/$1.conf" ;;
        *) t_start "$1" compute "$T_DIR/$1.conf" ;;
    esac
}
for name in conductor scheduler a b api; do start "$name"; done
t_wait_api 20
s_up () { [ "$(t_zova -f json hypervisor list | t_json 'sum(1 for h in d if h["state"] == "up")')" = 2 ]; }
t_wait_for "both hosts up" 20 s_up
t_check "flavor" t_zova flavor create --vcpus 1 --ram 512 --disk 1 tiny
head -c 65536 /dev/urandom >"$T_DIR/image.raw"
t_check "image" t_zova image create --file "$T_DIR/image.raw" cirros

# field SERVER KEY: one field of server show.
field () { t_zova -f json server show "$1" | t_json "d.get('$2')"; }
# move_of SERVER KEY: one field of the server's newest migration.
move_of () { t_zova -f json server migration list "$1" | t_json "d[0].get('$2') if d else None"; }

# at_phase SERVER PHASE SECONDS: poll (fast) until the move is in PHASE.
# runs_phase PHASE: the host a phase runs on (b is the destination).
runs_phase () { case $1 in prepare|finish|rebuild) echo b ;; source|confirm) echo a ;; esac; }

# holds_report HOST MIGRATION PHASE SECONDS: HOST's log says the phase is
# done, its report held by debug_move_delay_ms.
holds_report () {
    local deadline=$(( $(date +%s) + $4 ))
    while [ "$(date +%s)" -lt $deadline ]; do
        grep -q "migration $2 phase $3 done" "$T_DIR/$1.log" && return 0
        sleep 0.05
    done
    return 1
}

at_phase () {
    local deadline=$(( $(date +%s) + $3 ))
    while [ "$(date +%s)" -lt $deadline ]; do
        [ "$(move_of "$1" phase 2>/dev/null)" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# settled SERVER: the server is in no task and its move is waiting for
# confirmation or has ended.
settled () {
    [ "$(field "$1" task_state)" = None ] || return 1
    case $(move_of "$1" status) in
        finished|confirmed|reverted|error|done|failed) return 0 ;;
    esac
    return 1
}

# domains_on HOST: how many zova domains the host reports (its heartbeat).
domains_on () { t_zova -f json hypervisor show "$1" | t_json 'd["running_vms"]'; }

# usage_ok: each host's usage is what its servers use.
usage_ok () {
    python3 - <(t_zova -f json server list) <(t_zova -f json hypervisor list) <<'EOF'
import json, sys
servers, hypervisors = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
want = {h["host"]: 0 for h in hypervisors}
for s in servers:
    if s.get("host"):
        want[s["host"]] += 512
have = {h["host"]: h["memory_mb_used"] for h in hypervisors}
sys.exit(0 if want == have else 1)
EOF
}

# one_copy SERVER: its domain is on its host and nowhere else.
one_copy () {
    local host other
    host=$(field "$1" host)
    other=$([ "$host" = a ] && echo b || echo a)
    [ "$(domains_on "$host")" = 1 ] && [ "$(domains_on "$other")" = 0 ]
}

N=0
# crash KIND PHASE VICTIM: a server on a, its move (migrate to b, or
# evacuate off a forced down), VICTIM killed in PHASE and started again.
crash () {
    local kind=$1 phase=$2 victim=$3
    N=$((N + 1))
    local vm="crash$N"
    echo "== $kind: $victim killed in phase $phase =="
    t_check "$vm: create on a" t_zova server create --flavor tiny --image cirros --availability-zone nova:a --wait "$vm"
    if [ "$kind" = evacuate ]; then
        t_check "$vm: a forced down" t_zova compute service set --down a
        t_check "$vm: evacuate" t_zova server evacuate "$vm"
    else
        t_check "$vm: migrate" t_zova server migrate --host b "$vm"
    fi
    if [ "$phase" = confirm ]; then
        t_wait_for "$vm: VERIFY_RESIZE" 30 sh -c "[ \"\$('$ZOVA' -f json server show $vm | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"status\"])')\" = VERIFY_RESIZE ]"
        t_check "$vm: confirm" t_zova server resize confirm "$vm"
    fi
    T_CHECKS=$((T_CHECKS + 1))
    if [ "$victim" = "$(runs_phase "$phase")" ]; then
        # The host of the phase is killed while it holds its done report
        # (its log says so at once; polling the CLI could miss the hold).
        local mig
        mig=$(t_zova -f json server migration list "$vm" | t_json 'd[0]["uuid"]')
        if holds_report "$victim" "$mig" "$phase" 30; then echo "  ok: $vm: $victim holds its report of phase $phase"
        else t_fail "$vm: $victim never held a report of phase $phase (now $(move_of "$vm" phase))"; fi
    elif at_phase "$vm" "$phase" 30; then echo "  ok: $vm: in phase $phase"
    else t_fail "$vm: never in phase $phase (now $(move_of "$vm" phase))"; fi
    t_kill9 "$victim"
    start "$victim"
    [ "$victim" = api ] || [ "$victim" = conductor ] && t_wait_api 20
    t_wait_for "$vm: settled after the crash" 60 settled "$vm"
    if [ "$(move_of "$vm" status)" = finished ]; then
        t_check "$vm: confirm" t_zova server resize confirm --wait "$vm"
    fi
    t_eq "$vm: no task, one of the ends" "None yes" \
        "$(field "$vm" task_state) $(case $(move_of "$vm" status) in confirmed|reverted|error|done|failed) echo yes ;; *) move_of "$vm" status ;; esac)"
    t_wait_for "$vm: its domain on one host only" 20 one_copy "$vm"
    t_wait_for "$vm: usage is what the servers use" 10 usage_ok
    echo "  ($vm ended $(move_of "$vm" status) on $(field "$vm" host), $(field "$vm" status))"
    [ "$kind" = evacuate ] && t_check "$vm: a up again" t_zova compute service set --up a
    t_check "$vm: delete" t_zova server delete --wait "$vm"
}

for phase in prepare source finish; do
    for victim in conductor a b; do crash migrate "$phase" "$victim"; done
done
for victim in conductor a; do crash migrate confirm "$victim"; done
for victim in conductor b; do crash evacuate rebuild "$victim"; done

echo "== at the end =="
t_wait_for "no domain left on either host" 20 sh -c "[ \"\$('$ZOVA' -f json hypervisor list | python3 -c 'import json,sys; print(sum(h[\"running_vms\"] for h in json.load(sys.stdin)))')\" = 0 ]"
t_eq "every migration closed" "0" \
    "$(t_zova -f json migration list | t_json 'len([m for m in d if m["status"] not in ("confirmed", "reverted", "done", "error", "failed")])')"
t_check "usage is zero everywhere" usage_ok

for name in api a b scheduler conductor; do t_stop "$name"; done
t_done
