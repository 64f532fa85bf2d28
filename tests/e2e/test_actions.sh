#!/usr/bin/env bash
# test_actions: server actions on libvirt's test driver, through separate
# conductor, api, scheduler and compute processes: every operation the test
# driver supports works as on QEMU (reboot soft and hard, stop/start,
# pause/unpause, suspend/resume through a managed save, rescue/unrescue, set
# password), each refused in Nova's words where the transition table says
# so, each leaving an action record.  Then the dead peer: an action cast to
# a killed compute is reverted with the reason; a restarted compute (whose
# test-driver domains are gone) reconciles, and start defines the domain
# again from the record.
. "$(dirname "$0")/lib.sh"

API="tcp://127.0.0.1:$(t_port)"
COND="tcp://127.0.0.1:$(t_port)"
export ZOVA_ENDPOINT=$API
t_config "$T_DIR/zova.conf" "api.endpoint=$API" "conductor.endpoint=$COND" \
    "conductor.housekeeping_interval=1" "scheduler.host_refresh_interval_ms=200" \
    "compute.sync_power_state_interval=2" "DEFAULT.shutdown_timeout=5"
for role in conductor api scheduler compute; do t_start "$role" "$role" "$T_DIR/zova.conf"; done
t_wait_api 30 || exit 1
t_wait_for "compute up" 20 bash -c "\"$ZOVA\" hypervisor list -f json | grep -q '\"state\": *\"up\"'"

states () { t_zova server show "$1" -f json | t_json '"%s %s %s %s" % (d["status"], d["vm_state"], d["task_state"], d["power_state"])'; }
results () { t_zova server event list "$1" -f json | t_json '" ".join(e["action"]+":"+str(e["result"]) for e in d)'; }

t_check "flavor" t_zova flavor create --vcpus 1 --ram 64 --disk 1 m1.tiny
head -c 100000 /dev/urandom >"$T_DIR/disk.img"
t_check "image" t_zova image create --file "$T_DIR/disk.img" cirros
t_check "boot two" t_zova server create --flavor m1.tiny --image cirros --min 2 --max 2 --wait vm
UUID=$(t_zova server show vm-1 -f json | t_json 'd["id"]')

t_check "soft reboot" t_zova server reboot --wait vm-1
t_eq "after soft reboot" "ACTIVE active None running" "$(states vm-1)"
t_check "hard reboot" t_zova server reboot --hard --wait vm-1
t_eq "after hard reboot" "ACTIVE active None running" "$(states vm-1)"
t_check "stop" t_zova server stop --wait vm-1
t_eq "after stop" "SHUTOFF stopped None shutdown" "$(states vm-1)"
t_check_fails "reboot (soft) of a stopped server refused" "Cannot 'reboot' instance $UUID while it is in vm_state stopped" \
    t_zova server reboot vm-1
t_check_fails "pause of a stopped server refused" "Cannot 'pause' instance $UUID while it is in vm_state stopped" \
    t_zova server pause vm-1
t_check "start" t_zova server start --wait vm-1
t_eq "after start" "ACTIVE active None running" "$(states vm-1)"
t_check_fails "start of an active server refused" "Cannot 'start' instance $UUID while it is in vm_state active" \
    t_zova server start vm-1
t_check "pause" t_zova server pause --wait vm-1
t_eq "after pause" "PAUSED paused None paused" "$(states vm-1)"
t_check_fails "suspend of a paused server refused" "Cannot 'suspend'" t_zova server suspend vm-1
t_check "unpause" t_zova server unpause --wait vm-1
t_eq "after unpause" "ACTIVE active None running" "$(states vm-1)"
t_check "suspend" t_zova server suspend --wait vm-1
t_eq "after suspend" "SUSPENDED suspended None shutdown" "$(states vm-1)"
t_check "resume" t_zova server resume --wait vm-1
t_eq "after resume" "ACTIVE active None running" "$(states vm-1)"
t_check "rescue" t_zova server rescue --wait vm-1
t_eq "after rescue" "RESCUE rescued None running" "$(states vm-1)"
t_check_fails "rescue with an unknown image refused" "Image nope could not be found" \
    t_zova server rescue --image nope vm-2
t_check "unrescue" t_zova server unrescue --wait vm-1
t_eq "after unrescue" "ACTIVE active None running" "$(states vm-1)"
t_check "set root password (stdin)" bash -c "echo pw | \"$ZOVA\" --timeout 10 server set --root-password --wait vm-1"
t_check_fails "set --root-password with nothing on stdin refused" "no password" \
    bash -c "\"$ZOVA\" --timeout 10 server set --root-password vm-1 </dev/null"
t_check_fails "server set without --root-password refused" "needs --root-password" t_zova server set vm-1
t_eq "every action recorded, Success" \
    "create:Success reboot:Success reboot_hard:Success stop:Success start:Success pause:Success unpause:Success suspend:Success resume:Success rescue:Success unrescue:Success changePassword:Success" \
    "$(results vm-1)"
t_check "several servers at once: stop vm-1 vm-2" t_zova server stop --wait vm-1 vm-2
t_eq "both SHUTOFF" "SHUTOFF SHUTOFF" \
    "$(t_zova server list -f json | t_json '" ".join(sorted(s["status"] for s in d))')"
t_check "start both" t_zova server start --wait vm-1 vm-2
t_check "json output of an action" bash -c "\"$ZOVA\" server pause --wait -f json vm-2 | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"status\"]==\"PAUSED\" else 1)'"
t_check "unpause vm-2" t_zova server unpause --wait vm-2

# Consoles need a hypervisor with them: the test driver has none, and says so.
t_check_fails "no noVNC console on the test driver" "has no novnc console available" t_zova console url show vm-1
t_check_fails "no serial console on the test driver" "has no serial console available" t_zova console url show --serial vm-1
t_check_fails "an unknown console kind is refused" "one of --novnc and --serial" t_zova console url show --novnc --serial vm-1
t_check_fails "no console log on the test driver (asked of its host)" "has no console log on host" t_zova console log show vm-1
t_check_fails "console log of an unknown server" "No server with a name or ID of 'nope'" t_zova console log show nope

# A screenshot: the test driver's own fixed picture (1120x832), as PNG.
t_check "server screenshot --file" t_zova server screenshot vm-1 --file "$T_DIR/shot.png"
t_eq "a PNG of libvirt's test screen" "True 1120 832" \
    "$(python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(); print(b[:8]==b"\x89PNG\r\n\x1a\n", *struct.unpack(">II", b[16:24]))' "$T_DIR/shot.png")"
t_check "stop vm-2 for the next check" t_zova server stop --wait vm-2
t_check_fails "no screenshot of a stopped server" "is not running" t_zova server screenshot vm-2 --file "$T_DIR/no.png"
t_check "start vm-2 again" t_zova server start --wait vm-2

# A dead peer: the compute is killed; an action cast to it is reverted at
# once, its record says why, and the instance is as it was.
t_kill9 compute
sleep 1
t_check "pause while the compute is dead: accepted, then reverted" t_zova server pause vm-2
t_wait_for "pausing reverted" 10 bash -c "[ \"\$(\"$ZOVA\" server show vm-2 -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"task_state\"])')\" = None ]"
t_eq "vm-2 still ACTIVE" "ACTIVE active None running" "$(states vm-2)"
t_eq "the pause record: Error, not connected" "Error True" \
    "$(t_zova server event list vm-2 -f json | t_json '"%s %s" % ([e for e in d if e["action"]=="pause"][-1]["result"], "not connected" in ([e for e in d if e["action"]=="pause"][-1]["message"] or ""))')"
t_check "the fault names the host" bash -c "\"$ZOVA\" server show vm-2 -f json | grep -q 'not connected'"

# The compute comes back with an empty test driver: both become SHUTOFF
# (domain gone), and start defines them again from their records.
t_start compute compute "$T_DIR/zova.conf"
t_wait_for "restarted compute reconciles: vm-1 SHUTOFF" 20 bash -c "[ \"\$(\"$ZOVA\" server show vm-1 -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"status\"])')\" = SHUTOFF ]"
t_eq "vm-1 after the compute restart" "SHUTOFF stopped None nostate" "$(states vm-1)"
t_check "start defines the lost domain again" t_zova server start --wait vm-1 vm-2
t_eq "vm-1 runs again" "ACTIVE active None running" "$(states vm-1)"
t_check "delete both" t_zova server delete --wait vm-1 vm-2
t_eq "hypervisor usage back to zero" "0" "$(t_zova hypervisor list -f json | t_json 'sum(h["vcpus_used"] for h in d)')"
for role in compute scheduler api conductor; do t_stop "$role"; done
t_done
