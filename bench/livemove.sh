#!/usr/bin/env bash
# livemove.sh BUILD: zova's live migration against `virsh migrate --live
# --p2p` of an identical guest between the same two libvirt daemons, in
# three modes: pre-copy on shared storage, block migration, post-copy.
# `bench/run.sh` runs it as its step "livemove" (BENCH_LIVEMOVE=0 skips
# it, BENCH_ONLY=livemove runs it alone); it also runs alone, as root:
# `bash bench/livemove.sh build`.
#
# Set-up, as tests/e2e/test_live_migration.sh makes it: the test guest
# (scripts/build-test-guest.sh, ZV_GUEST_DIR or /var/tmp/zova-test-guest),
# two pairs of libvirt hosts (scripts/two-hosts.sh): "sa"/"sb" on one
# shared instances directory, "a"/"b" on separate ones; a cluster of
# conductor, scheduler, api and one `zovad compute` per host, each with
# libvirt.live_migration_peer_uri and _inbound_addr its own host's; the
# guest's kernel, ramdisk and qcow2 disk registered as the test registers
# them, flavor 1 vCPU / 128 MiB / 1 GiB.  Only the pair a mode uses is
# enabled while it runs (the other pair's computes are disabled), so the
# scheduler's choice is the other host of the pair.
#
# Each mode boots one zova server, then makes the raw guest from it: its
# running domain's XML (`virsh dumpxml --migratable`) defined under another
# name and uuid, with a copy of its instance directory (the qcow2 overlay
# over the same cached base image, kernel and ramdisk), its serial console
# on another port, no MAC address.  One warm-up move each (untimed: the
# destination's image cache, the page cache), then BENCH_LIVEMOVE_RUNS (3)
# moves of each, zova and virsh alternating, each back where the last one
# came from:
#   shared   zova server migrate --live-migration --shared-migration --wait
#            virsh migrate --live --p2p --persistent --undefinesource --unsafe
#   block    zova server migrate --live-migration --block-migration --wait
#            virsh migrate ... --copy-storage-inc, into an overlay made on
#            the destination beforehand over its cached base image (what
#            zova's pre_live makes; qemu-img's time is printed, not counted)
#   postcopy the shared pair, both computes restarted with
#            live_migration_permit_post_copy = true; both sides held to
#            BENCH_LIVEMOVE_POSTCOPY_BW (8) MiB/s so that the switch lands
#            while memory is moving.  The same watcher polls `virsh
#            domjobinfo` on the source every 50 ms for both; once memory is
#            moving it runs `zova server migration force complete SERVER
#            ID` (the id read while the job was being prepared) or `virsh
#            migrate-postcopy DOMAIN`.
# virsh gets --xml and --persistent-xml as zova's source passes them (the
# source's migratable XML, the destination's paths), taken outside its
# clock.  Each clock runs from just before the command to its return.
#
# The job's figures come from libvirt's own record of it, the source's
# job-completed event: a `virsh event --all --loop --timestamp` on each
# daemon for the whole run.  `virsh domjobinfo --completed` on the source
# cannot serve: with --undefinesource (zova's VIR_MIGRATE_UNDEFINE_SOURCE)
# the domain is gone from the source when the call returns, and its record
# with it; the destination keeps an "Incoming migration" record after a
# pre-copy job (read with --keep-completed as a cross-check: the same
# downtime) but none after post-copy.  The event carries the source's
# record whatever the mode.  Events also time the job from outside: the
# destination's "Started Migrated" (its QEMU started for the incoming job)
# and the source's "Stopped Migrated" (the job confirmed), for both sides,
# so a run splits into before the job, the job, after the job.
#
# zova's phases: each zovad's log lines are stamped with the wall clock in
# ms as they are written; the computes log each phase's start and end, the
# conductor the completion, so a zova run splits further into prepare,
# check_source, pre_live, live, post, cleanup_source, the conductor's hops
# between them, and the CLI's last wait (completion to return: --wait polls
# a live migration every ZOVA_LIVE_POLL_MS, cmd/zova/moves.c).  zova's own
# time is a run's total less its live phase (whose libvirt call is what
# the virsh side times); the net ratio is (virsh total + zova's own) /
# virsh total, without libvirt's run-to-run swings.
#
# Prints "name: value" figures (medians of the runs) and a table; progress
# on stderr.  A figure that could not be measured prints "failed" and the
# exit status is then 1.  Everything lives in one temporary directory;
# every process is stopped by PID, both pairs by two-hosts.sh stop.  Knobs:
# BENCH_LIVEMOVE_RUNS (3), BENCH_LIVEMOVE_MODES ("shared block postcopy"),
# BENCH_LIVEMOVE_POSTCOPY_BW (MiB/s, 8), BENCH_LIVEMOVE_COMPUTE_OPTS (more
# section.key=value settings for every compute), BENCH_LIVEMOVE_REAPER=0,
# BENCH_KEEP=1, ZV_GUEST_DIR.
# docs/PERFORMANCE.md ("Moves: live migration against virsh") explains
# every figure.

set -u -o pipefail
export LC_ALL=C

# The daemons libvirtd-test.sh starts, and their QEMUs, are orphans: the
# machine's init reaps them, and on this one (a VM whose PID 1 is no
# systemd) a QEMU that exited stays a zombie 1-2 s.  libvirt's source
# checks every 200 ms whether the QEMU it stopped is gone, and a zombie
# is not, so that wait landed in every move, of both sides, in 200 ms
# steps from 1.2 to 2.2 s: noise as large as what is measured.  The
# script runs under a parent that is their subreaper and reaps at once,
# as a host's init does (BENCH_LIVEMOVE_REAPER=0: not).
if [ "${BENCH_LIVEMOVE_REAPER:-1}" != 0 ] && [ -z "${ZV_LIVEMOVE_REAPER:-}" ]; then
    export ZV_LIVEMOVE_REAPER=1
    exec python3 -c '
import ctypes, os, signal, sys
script = ["bash"] + sys.argv[1:]
if ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) != 0:        # PR_SET_CHILD_SUBREAPER
    os.execvp("bash", script)
child = os.fork()
if child == 0:
    os.execvp("bash", script)
def forward(signum, frame):
    try:
        os.kill(child, signum)
    except ProcessLookupError:
        pass
for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(signum, forward)
while True:
    pid, status = os.wait()
    if pid == child:
        sys.exit(os.waitstatus_to_exitcode(status) % 256)' "$0" "$@"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ZOVAD="$BUILD/zovad"
ZOVA_BIN="$BUILD/zova"
TWO="$ROOT/scripts/two-hosts.sh"
RUNS=${BENCH_LIVEMOVE_RUNS:-3}
MODES=${BENCH_LIVEMOVE_MODES:-shared block postcopy}
PC_BW=${BENCH_LIVEMOVE_POSTCOPY_BW:-8}
# More section.key=value settings for every compute, space-separated (an
# experiment's: e.g. libvirt.live_migration_downtime=1200).
COMPUTE_OPTS=${BENCH_LIVEMOVE_COMPUTE_OPTS:-}
GUEST=${ZV_GUEST_DIR:-/var/tmp/zova-test-guest}
MOVE_TIMEOUT_S=300

DIR=$(mktemp -d /tmp/zova-bench-livemove.XXXXXX)
PIDS=()                         # zovad processes and event listeners
PAIRS=()                        # two-hosts.sh directories started
CHILD=
FAILED=0

cleanup () {
    local pid stoppers=() dir
    trap '' INT TERM PIPE
    [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    # Stopping a pair destroys its guests and kills any QEMU left.
    for dir in "${PAIRS[@]}"; do
        bash "$TWO" stop "$dir" >/dev/null 2>>"$DIR/two-hosts-stop.log" &
        stoppers+=("$!")
    done
    for pid in "${stoppers[@]}"; do wait "$pid"; done
    if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$DIR"; else echo "bench: kept $DIR" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 141' PIPE

note () { echo "bench: livemove: $*" >&2; }
die () { note "$*"; BENCH_KEEP=1; exit 1; }
# Microseconds of the wall clock, without a process (bash's EPOCHREALTIME).
us_now () { NOW_US=${EPOCHREALTIME//[.,]/}; }

# long COMMAND...: a child that may take seconds, run in the background
# and waited for, so that a signal interrupts the wait and cleanup stops it.
long () {
    local rc
    "$@" &
    CHILD=$!
    wait "$CHILD"
    rc=$?
    CHILD=
    return $rc
}

zova () { "$ZOVA_BIN" --timeout 60 "$@"; }
json () { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for () {
    local seconds=$1; shift
    local deadline=$(( SECONDS + seconds ))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

port () {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# stamp: each line of stdin to stdout behind the wall clock in ms, as it
# comes (zsys stamps its lines to the second only).
stamp () {
    python3 -u -c '
import sys, time
for line in iter(sys.stdin.buffer.readline, b""):
    sys.stdout.buffer.write(b"%.3f %s" % (time.time(), line))
    sys.stdout.buffer.flush()'
}

# config FILE [section.key=value ...]
config () {
    local file=$1 kv section key value current=DEFAULT; shift
    {
        echo "[DEFAULT]"
        echo "state_path = $DIR/var-$(basename "$file" .conf)"
        echo "report_interval = 1"
        echo "service_down_time = 10"
        echo "log_level = info"
        for kv in "$@"; do
            section=${kv%%.*}; key=${kv#*.}; value=${key#*=}; key=${key%%=*}
            if [ "$section" != "$current" ]; then echo "[$section]"; current=$section; fi
            echo "$key = $value"
        done
    } >"$file"
}

# start NAME ROLE: zovad ROLE with DIR/NAME.conf, its log stamped into
# DIR/NAME.log, its PID in PID_NAME.
start () {
    "$ZOVAD" "$2" --config "$DIR/$1.conf" > >(stamp >>"$DIR/$1.log") 2>&1 &
    PIDS+=("$!")
    eval "PID_$1=$!"
}

# stop NAME: SIGTERM, wait.
stop () {
    local pid
    eval "pid=\$PID_$1"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

hosts_up () {
    [ "$(zova -f json hypervisor list | json 'sum(1 for h in d if h["state"] == "up")')" = "$1" ]
}

# --- prerequisites, the guest, the pairs --------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root (scripts/two-hosts.sh makes network namespaces and private libvirtds)"
for bin in "$ZOVAD" "$ZOVA_BIN"; do [ -x "$bin" ] || die "$bin missing (make)"; done
for tool in qemu-system-x86_64 qemu-img virsh libvirtd; do
    command -v "$tool" >/dev/null || die "$tool missing (scripts/deps.sh --guest)"
done
want_mode () { [[ " $MODES " == *" $1 "* ]]; }
for mode in $MODES; do
    case $mode in shared|block|postcopy) ;; *) die "BENCH_LIVEMOVE_MODES: no mode $mode (shared block postcopy)" ;; esac
done
note "test guest in $GUEST"
long bash "$ROOT/scripts/build-test-guest.sh" "$GUEST" 2>"$DIR/build-guest.log" \
    || die "build-test-guest.sh failed: $(tail -3 "$DIR/build-guest.log")"
export LIBVIRTD_TEST_CAPS_CACHE="$GUEST/libvirt-cache"

declare -A URI P2P MIG_ADDR INST EVENTS RAW_HOST QEMU_LOGS
HOSTS=()
# pair NAME X Y [--shared]: a pair of hosts X and Y in DIR/NAME, and a
# listener of each daemon's events.
pair () {
    local name=$1 x=$2 y=$3 lines h H; shift 3
    PAIRS+=("$DIR/$name")
    lines=$(bash "$TWO" start "$DIR/$name" "$@" 2>"$DIR/two-hosts-$name.log") \
        || die "two-hosts.sh start $name: $(tail -5 "$DIR/two-hosts-$name.log")"
    eval "$lines"
    for h in "$x" "$y"; do
        if [ "$h" = "$x" ]; then H=A; else H=B; fi
        eval "URI[$h]=\$${H}_URI P2P[$h]=\$${H}_P2P_URI MIG_ADDR[$h]=\$${H}_MIGRATION_ADDR INST[$h]=\$${H}_INSTANCES"
        EVENTS[$h]="$DIR/events.$h"
        QEMU_LOGS[$h]="$DIR/$name/$(echo "$H" | tr A-Z a-z)/log/qemu"
        virsh -c "${URI[$h]}" event --all --loop --timestamp >>"${EVENTS[$h]}" 2>&1 &
        PIDS+=("$!")
        HOSTS+=("$h")
    done
}
if want_mode shared || want_mode postcopy; then pair shared sa sb --shared; fi
if want_mode block; then pair separate a b; fi

# --- zova ------------------------------------------------------------------------------
export ZOVA_ENDPOINT="tcp://127.0.0.1:$(port)"
CONDUCTOR_EP="tcp://127.0.0.1:$(port)"
config "$DIR/conductor.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP"
config "$DIR/scheduler.conf" DEFAULT.host=controller conductor.endpoint="$CONDUCTOR_EP" \
    scheduler.host_refresh_interval_ms=200
config "$DIR/api.conf" DEFAULT.host=controller api.endpoint="$ZOVA_ENDPOINT" conductor.endpoint="$CONDUCTOR_EP"
# Serial consoles listen inside each host's network namespace: the ranges
# only need to differ between the hosts of a pair and from the raw guests'.
declare -A SERIAL=([sa]=21000 [sb]=21010 [a]=21020 [b]=21030)
RAW_SERIAL=21100
# compute_config HOST [KEY=VALUE...]
compute_config () {
    local host=$1; shift
    config "$DIR/$host.conf" DEFAULT.host="$host" conductor.endpoint="$CONDUCTOR_EP" DEFAULT.shutdown_timeout=15 \
        compute.instances_path="${INST[$host]}" compute.reserved_host_memory_mb=0 compute.ram_allocation_ratio=4.0 \
        libvirt.connection_uri="${URI[$host]}" libvirt.virt_type=qemu \
        libvirt.live_migration_peer_uri="${P2P[$host]}" libvirt.live_migration_inbound_addr="${MIG_ADDR[$host]}" \
        serial_console.port_range="${SERIAL[$host]}:$(( ${SERIAL[$host]} + 9 ))" $COMPUTE_OPTS "$@"
}
for host in "${HOSTS[@]}"; do compute_config "$host"; done
for name in conductor scheduler "${HOSTS[@]}" api; do
    case $name in conductor|scheduler|api) start "$name" "$name" ;; *) start "$name" compute ;; esac
done
wait_for 30 zova ping || die "the api does not answer (logs in $DIR)"
wait_for 60 hosts_up "${#HOSTS[@]}" || die "not all of ${HOSTS[*]} came up (logs in $DIR)"

# restart_compute HOST [KEY=VALUE...]: HOST's compute again, with these keys.
restart_compute () {
    local host=$1; shift
    stop "$host"
    compute_config "$host" "$@"
    start "$host" compute
    wait_for 60 hosts_up "${#HOSTS[@]}"
}

zova image create --file "$GUEST/vmlinux" --disk-format aki lm-kernel >/dev/null || die "kernel image"
zova image create --file "$GUEST/initrd-boot.img" --disk-format ari lm-ramdisk >/dev/null || die "ramdisk image"
KERNEL=$(zova image show lm-kernel -f json | json 'd["id"]')
RAMDISK=$(zova image show lm-ramdisk -f json | json 'd["id"]')
long "$ZOVA_BIN" --timeout 120 image create --file "$GUEST/disk.qcow2" --disk-format qcow2 \
    --property "kernel_id=$KERNEL" --property "ramdisk_id=$RAMDISK" \
    --property "os_command_line=$(cat "$GUEST/cmdline") root=/dev/vda" lm-disk >/dev/null || die "disk image"
zova flavor create --vcpus 1 --ram 128 --disk 1 lm.small >/dev/null || die "flavor"

# --- guests ---------------------------------------------------------------------------
agent_ping () { virsh -c "$1" qemu-agent-command --timeout 5 "$2" '{"execute":"guest-ping"}' >/dev/null 2>&1; }
server_field () { zova -f json server show "$1" | json "$2"; }
other () { case $1 in sa) echo sb ;; sb) echo sa ;; a) echo b ;; b) echo a ;; esac; }

# only X Y: the computes of hosts X and Y enabled, every other disabled.
only () {
    local host
    for host in "${HOSTS[@]}"; do
        if [ "$host" = "$1" ] || [ "$host" = "$2" ]; then
            zova compute service set --enable "$host" >/dev/null || return 1
        else
            zova compute service set --disable "$host" >/dev/null || return 1
        fi
    done
}

# boot_zova NAME HOST: a server booted on HOST, up to its guest agent.
boot_zova () {
    local uuid
    long "$ZOVA_BIN" --timeout 60 server create --flavor lm.small --image lm-disk --availability-zone "nova:$2" \
        --wait --wait-timeout 240 "$1" >/dev/null 2>"$DIR/boot.err" || die "$1: boot on $2: $(head -c 400 "$DIR/boot.err")"
    uuid=$(server_field "$1" 'd["id"]')
    wait_for 180 agent_ping "${URI[$2]}" "zova-$uuid" || die "$1: no guest agent on $2"
}

# make_raw ZOVA_NAME RAW_NAME: the raw guest of ZOVA_NAME, on its host:
# its running XML under another name, uuid and serial port, no MAC, and
# its instance directory: the same files, a fresh overlay over the same
# base image (what the zova guest's disk was at its boot).
make_raw () {
    local zname=$1 raw=$2 host uuid inst backing size
    host=$(server_field "$zname" 'd["host"]'); uuid=$(server_field "$zname" 'd["id"]')
    inst=${INST[$host]}
    mkdir -p "$inst/$raw"
    find "$inst/$uuid" -maxdepth 1 -type f ! -name 'disk*' ! -name 'console.log' -exec cp {} "$inst/$raw/" \;
    qemu-img info -U --output=json "$inst/$uuid/disk" >"$DIR/$raw.disk.json" || return 1
    backing=$(json 'd["full-backing-filename"]' <"$DIR/$raw.disk.json")
    size=$(json 'd["virtual-size"]' <"$DIR/$raw.disk.json")
    qemu-img create -q -f qcow2 -F "$(json 'd.get("backing-filename-format", "raw")' <"$DIR/$raw.disk.json")" \
        -b "$backing" "$inst/$raw/disk" "$size" || return 1
    virsh -c "${URI[$host]}" dumpxml --migratable "zova-$uuid" >"$DIR/$raw.zova.xml" || return 1
    python3 - "$DIR/$raw.zova.xml" "$uuid" "$inst/$uuid" "$inst/$raw" "$raw" "$RAW_SERIAL" >"$DIR/$raw.xml" <<'PY' || return 1
import re, sys, uuid
src, old, old_dir, new_dir, name, port = sys.argv[1:]
x = open(src).read().replace(old_dir + "/", new_dir + "/").replace(old, str(uuid.uuid4()))
x = re.sub(r"<name>[^<]*</name>", "<name>%s</name>" % name, x, count=1)
x = re.sub(r"\s*<mac address=[^>]*/>", "", x)
x = re.sub(r"(<source mode='bind' host='[^']*' service=')\d+'", r"\g<1>%s'" % port, x)
print(x)
PY
    virsh -q -c "${URI[$host]}" define "$DIR/$raw.xml" >/dev/null && virsh -q -c "${URI[$host]}" start "$raw" >/dev/null \
        || return 1
    RAW_HOST[$raw]=$host
    wait_for 180 agent_ping "${URI[$host]}" "$raw"
}

# --- one move, timed --------------------------------------------------------------------
moving () { virsh -c "$1" domjobinfo "$2" 2>/dev/null | grep -q 'Memory processed: *[1-9]'; }
size_of () { stat -c %s "$1" 2>/dev/null || echo 0; }

# record SIDE MODE RUN DOMAIN UUID SRC DST: the run's clocks (T0_US,
# NOW_US, SWITCH_US, PRECREATE_MS) and what libvirt and zova recorded of
# it, as one JSON line of DIR/runs.jsonl.
record () {
    virsh -c "${URI[$7]}" domjobinfo --completed --keep-completed "$4" >"$DIR/dstrec" 2>/dev/null
    python3 - "$@" "$T0_US" "$NOW_US" "${SWITCH_US:--}" "${PRECREATE_MS:--}" "${EVENTS[$6]}" "$SOFF" \
        "${EVENTS[$7]}" "$DOFF" "$DIR" "${QEMU_LOGS[$6]}/$4.log" >>"$DIR/runs.jsonl" <<'PY' \
        || note "$1 $2 run $3: no job record"
import datetime, json, re, sys, time
(side, mode, run, dom, uuid, src, dst, t0, t1, switch, precreate, sev, soff, dev, doff, d, qlog) = sys.argv[1:]
t0, t1 = int(t0) / 1000.0, int(t1) / 1000.0
EVENT = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\+0000: event '([^']+)' for domain '([^']+)':\s*(.*)")

def events(path, off):
    with open(path, "rb") as f:
        f.seek(int(off))
        text = f.read().decode(errors="replace")
    out, cur = [], None
    for line in text.splitlines():
        m = EVENT.match(line)
        if m:
            when = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
            cur = {"ms": when.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000, "type": m.group(2),
                   "dom": m.group(3), "rest": m.group(4), "params": {}}
            out.append(cur)
        elif cur is not None and line.startswith("\t") and ":" in line:
            key, value = line.strip().split(":", 1)
            cur["params"][key.strip()] = value.strip()
    return [e for e in out if e["dom"] == dom]

def first(evs, kind, rest=None):
    return next((e for e in evs if e["type"] == kind and (rest is None or e["rest"] == rest)), None)

deadline = time.time() + 20
while True:
    done = first(events(sev, soff), "job-completed")
    if done and "disk_remaining" in done["params"] or time.time() > deadline:
        break
    time.sleep(0.2)
if not done:
    sys.exit(1)
src_ev, dst_ev = events(sev, soff), events(dev, doff)
started = first(dst_ev, "lifecycle", "Started Migrated")
stopped = first(src_ev, "lifecycle", "Stopped Migrated")
p = done["params"]
row = {"side": side, "mode": mode, "run": int(run), "total_ms": t1 - t0,
       "job_ms": float(p.get("time_elapsed", "nan")), "downtime_ms": float(p.get("downtime", "nan")),
       "postcopy": first(src_ev, "lifecycle", "Suspended Post-copy") is not None,
       "postcopy_requests": int(p.get("memory_postcopy_requests", 0)),
       "memory_mib": int(p.get("memory_processed", 0)) / 1048576.0,
       "disk_mib": int(p.get("disk_processed", 0)) / 1048576.0,
       "before_job_ms": started["ms"] - t0 if started else None,
       "job_seen_ms": stopped["ms"] - started["ms"] if started and stopped else None,
       "after_job_ms": t1 - stopped["ms"] if stopped else None,
       "switch_ms": int(switch) / 1000.0 - t0 if switch != "-" else None,
       "precreate_ms": float(precreate) if precreate != "-" else None}
# The source's QEMU told to stop (its log's last SIGTERM line) to the
# job confirmed: libvirt waiting for that QEMU to be gone.
row["source_stop_ms"] = None
try:
    for line in open(qlog, errors="replace"):
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z qemu-system-\S+: terminating on signal 15", line)
        if m and stopped:
            when = datetime.datetime.strptime(m.group(1)[:26], "%Y-%m-%dT%H:%M:%S.%f")
            at = when.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
            if t0 <= at <= stopped["ms"]:
                row["source_stop_ms"] = stopped["ms"] - at
except OSError:
    pass
m = re.search(r"Total downtime:\s*(\d+)", open(d + "/dstrec").read())
row["dst_record_downtime_ms"] = int(m.group(1)) if m else None
if side == "zova":
    # Stamped log lines of this run: each phase's start and end on the
    # computes, the completion on the conductor.
    phases, completed = {}, None
    for host in (src, dst, "conductor"):
        for line in open("%s/%s.log" % (d, host), errors="replace"):
            at, _, text = line.partition(" ")
            try:
                at = float(at) * 1000
            except ValueError:
                continue
            if not (t0 - 1 <= at <= t1 + 1000) or uuid not in text:
                continue
            m = re.search(r"instance %s: migration \S+?:? phase (\w+)( done)?" % uuid, text)
            if m:
                phases.setdefault(m.group(1), {})["done" if m.group(2) else "begin"] = at
            elif re.search(r"migration \d+ of %s: completed" % uuid, text):
                completed = at
    row["phases"] = {name: {k: v - t0 for k, v in times.items()} for name, times in phases.items()}
    row["completed_ms"] = completed - t0 if completed else None
print(json.dumps(row))
PY
}

# zova_move MODE NAME RUN: one live migration through the CLI, timed.
zova_move () {
    local mode=$1 name=$2 run=$3 src dst uuid how=--shared-migration prev= id= pid deadline
    src=$(server_field "$name" 'd["host"]'); dst=$(other "$src"); uuid=$(server_field "$name" 'd["id"]')
    [ "$mode" = block ] && how=--block-migration
    [ "$mode" = postcopy ] && prev=$(zova -f json server migration list "$name" | json 'd[0]["id"] if d else ""')
    SOFF=$(size_of "${EVENTS[$src]}"); DOFF=$(size_of "${EVENTS[$dst]}"); SWITCH_US= PRECREATE_MS=
    us_now; T0_US=$NOW_US
    "$ZOVA_BIN" --timeout 60 server migrate --live-migration $how --wait --wait-timeout "$MOVE_TIMEOUT_S" \
        "$name" >"$DIR/move.out" 2>"$DIR/move.err" &
    CHILD=$!; pid=$CHILD
    if [ "$mode" = postcopy ]; then
        deadline=$(( SECONDS + 60 ))
        while [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null; do
            if [ -z "$id" ]; then
                id=$(zova -f json server migration list "$name" | json "d[0]['id'] if d and str(d[0]['id']) != '$prev' else ''")
            elif moving "${URI[$src]}" "zova-$uuid"; then
                us_now; SWITCH_US=$NOW_US
                zova server migration force complete "$name" "$id" >/dev/null 2>>"$DIR/switch.err" \
                    || note "zova force complete: $(tail -1 "$DIR/switch.err")"
                break
            fi
            sleep 0.05
        done
    fi
    wait "$pid"
    local rc=$?
    us_now
    CHILD=
    [ $rc -eq 0 ] || { note "zova $mode run $run: $src -> $dst failed: $(head -c 400 "$DIR/move.err")"; return 1; }
    [ "$(server_field "$name" 'd["host"]')" = "$dst" ] || { note "zova $mode run $run: not on $dst after the move"; return 1; }
    [ "$run" = 0 ] || record zova "$mode" "$run" "zova-$uuid" "$uuid" "$src" "$dst"
}

# raw_move MODE RAW RUN: the raw guest moved by virsh, timed.
raw_move () {
    local mode=$1 raw=$2 run=$3 src dst flags pid t
    src=${RAW_HOST[$raw]}; dst=$(other "$src")
    flags=(--live --p2p --persistent --undefinesource)
    virsh -c "${URI[$src]}" dumpxml --migratable "$raw" | python3 -c '
import sys; print(sys.stdin.read().replace(sys.argv[1] + "/", sys.argv[2] + "/"), end="")' \
        "${INST[$src]}" "${INST[$dst]}" >"$DIR/$raw.dest.xml" || return 1
    PRECREATE_MS=
    if [ "$mode" = block ]; then
        flags+=(--copy-storage-inc)
        mkdir -p "${INST[$dst]}/$raw"
        find "${INST[$src]}/$raw" -maxdepth 1 -type f ! -name 'disk*' ! -name 'console.log' \
            -exec cp {} "${INST[$dst]}/$raw/" \;
        # The overlay zova's pre_live makes: the same size, over the
        # destination's copy of the base image.
        local overlay
        read -r -a overlay < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d.get("backing-filename-format", "raw"), d["full-backing-filename"].replace(sys.argv[2] + "/", sys.argv[3] + "/", 1),
      d["virtual-size"])' "$DIR/$raw.disk.json" "${INST[$src]}" "${INST[$dst]}")
        us_now; t=$NOW_US
        qemu-img create -q -f qcow2 -F "${overlay[0]}" -b "${overlay[1]}" "${INST[$dst]}/$raw/disk" "${overlay[2]}" \
            || return 1
        us_now; PRECREATE_MS=$(( (NOW_US - t) / 1000 ))
    else
        flags+=(--unsafe)
    fi
    [ "$mode" = postcopy ] && flags+=(--postcopy --bandwidth "$PC_BW")
    SOFF=$(size_of "${EVENTS[$src]}"); DOFF=$(size_of "${EVENTS[$dst]}"); SWITCH_US=
    us_now; T0_US=$NOW_US
    virsh -c "${URI[$src]}" migrate "${flags[@]}" "$raw" "${P2P[$dst]}" --migrateuri "tcp://${MIG_ADDR[$dst]}" \
        --xml "$DIR/$raw.dest.xml" --persistent-xml "$DIR/$raw.dest.xml" >"$DIR/move.out" 2>"$DIR/move.err" &
    CHILD=$!; pid=$CHILD
    if [ "$mode" = postcopy ]; then
        local deadline=$(( SECONDS + 60 ))
        while [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null; do
            if moving "${URI[$src]}" "$raw"; then
                us_now; SWITCH_US=$NOW_US
                virsh -c "${URI[$src]}" migrate-postcopy "$raw" >/dev/null 2>>"$DIR/switch.err" \
                    || note "virsh migrate-postcopy: $(tail -1 "$DIR/switch.err")"
                break
            fi
            sleep 0.05
        done
    fi
    wait "$pid"
    local rc=$?
    us_now
    CHILD=
    [ $rc -eq 0 ] || { note "virsh $mode run $run: $src -> $dst failed: $(head -c 400 "$DIR/move.err")"; return 1; }
    RAW_HOST[$raw]=$dst
    [ "$run" = 0 ] || record virsh "$mode" "$run" "$raw" - "$src" "$dst"
    # What zova's cleanup_source does, outside the clock.
    [ "$mode" = block ] && rm -rf "${INST[$src]:?}/$raw"
    return 0
}

# mode MODE ZOVA_NAME RAW_NAME: the warm-up move of each, then RUNS of each.
mode () {
    local run
    note "$1: warm-up moves"
    zova_move "$1" "$2" 0 || return 1
    raw_move "$1" "$3" 0 || return 1
    for run in $(seq "$RUNS"); do
        note "$1: run $run of $RUNS: zova"
        zova_move "$1" "$2" "$run" || FAILED=1
        note "$1: run $run of $RUNS: virsh"
        raw_move "$1" "$3" "$run" || FAILED=1
    done
}

# --- the modes ------------------------------------------------------------------------
if want_mode shared || want_mode postcopy; then
    only sa sb || die "cannot enable sa and sb alone"
    note "shared pair: booting the zova guest and its raw copy"
    boot_zova lm-shared sa
    make_raw lm-shared raw-shared || die "raw-shared: cannot make or start it"
    if want_mode shared; then mode shared lm-shared raw-shared || FAILED=1; fi
    if want_mode postcopy; then
        note "postcopy: sa and sb restarted with post-copy permitted, $PC_BW MiB/s"
        for host in sa sb; do
            restart_compute "$host" libvirt.live_migration_permit_post_copy=true \
                libvirt.live_migration_bandwidth="$PC_BW" || die "$host did not come back"
        done
        mode postcopy lm-shared raw-shared || FAILED=1
    fi
fi
if want_mode block; then
    only a b || die "cannot enable a and b alone"
    note "separate pair: booting the zova guest and its raw copy"
    boot_zova lm-block a
    make_raw lm-block raw-block || die "raw-block: cannot make or start it"
    mode block lm-block raw-block || FAILED=1
fi

# --- figures ---------------------------------------------------------------------------
# Medians of the runs, per mode and side; then the table.
python3 - "$DIR/runs.jsonl" "$MODES" "$RUNS" <<'PY' || FAILED=1
import json, math, statistics, sys

rows = []
try:
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
except OSError:
    pass
modes, runs = sys.argv[2].split(), int(sys.argv[3])
PHASES = ["prepare", "check_source", "pre_live", "live", "post", "cleanup_source"]
missing = False

def med(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else None

def fmt(v):
    return "failed" if v is None else ("%.0f" % v if abs(v) >= 100 else "%.3g" % v)

def fig(name, value, must=True):
    global missing
    if value is None and must:
        missing = True
    print("livemove_%s: %s" % (name, fmt(value)))

table = []
for mode in modes:
    z = [r for r in rows if r["mode"] == mode and r["side"] == "zova"]
    v = [r for r in rows if r["mode"] == mode and r["side"] == "virsh"]
    col = lambda rs, key: med([r.get(key) for r in rs])
    zt, vt, zd, vd = col(z, "total_ms"), col(v, "total_ms"), col(z, "downtime_ms"), col(v, "downtime_ms")
    fig(mode + "_runs", min(len(z), len(v)))
    fig(mode + "_zova_total_ms", zt)
    fig(mode + "_virsh_total_ms", vt)
    fig(mode + "_total_ratio", zt / vt if zt and vt else None)
    fig(mode + "_zova_downtime_ms", zd)
    fig(mode + "_virsh_downtime_ms", vd)
    fig(mode + "_downtime_diff_ms", zd - vd if zd is not None and vd is not None else None)
    for side, rs in (("zova", z), ("virsh", v)):
        for key in ("job_ms", "before_job_ms", "job_seen_ms", "after_job_ms", "source_stop_ms", "memory_mib"):
            fig("%s_%s_%s" % (mode, side, key), col(rs, key))
        if mode == "block":
            fig("%s_%s_disk_mib" % (mode, side), col(rs, "disk_mib"))
        if mode == "postcopy":
            fig("%s_%s_switch_ms" % (mode, side), col(rs, "switch_ms"))
            fig("%s_%s_postcopy_runs" % (mode, side), sum(1 for r in rs if r["postcopy"]))
    if mode == "block":
        fig(mode + "_virsh_precreate_ms", col(v, "precreate_ms"))
    # zova's own time, phase by phase, and the hops between.
    for phase in PHASES:
        fig("%s_zova_phase_%s_ms" % (mode, phase),
            med([r["phases"][phase]["done"] - r["phases"][phase]["begin"]
                 for r in z if "begin" in r["phases"].get(phase, {}) and "done" in r["phases"].get(phase, {})]))
    fig(mode + "_zova_to_prepare_ms", med([r["phases"].get("prepare", {}).get("begin") for r in z]))
    fig(mode + "_zova_hops_ms", med([r["phases"]["cleanup_source"]["done"] - r["phases"]["prepare"]["begin"]
        - sum(r["phases"][p]["done"] - r["phases"][p]["begin"] for p in PHASES)
        for r in z if all(len(r["phases"].get(p, {})) == 2 for p in PHASES)]))
    fig(mode + "_zova_completed_to_return_ms", med([r["total_ms"] - r["completed_ms"] for r in z if r.get("completed_ms")]))
    live = med([r["phases"]["live"]["done"] - r["phases"]["live"]["begin"]
                for r in z if len(r["phases"].get("live", {})) == 2])
    fig(mode + "_zova_live_vs_virsh_call_ms", live - vt if live is not None and vt else None)
    # zova's own: a run's total less its live phase (whose libvirt call is
    # what the virsh side times); the net ratio adds it to virsh's total,
    # without the run-to-run swings of libvirt's own part.
    own = med([r["total_ms"] - (r["phases"]["live"]["done"] - r["phases"]["live"]["begin"])
               for r in z if len(r["phases"].get("live", {})) == 2])
    fig(mode + "_zova_before_live_ms", med([r["phases"]["live"]["begin"] for r in z if "live" in r["phases"]]))
    fig(mode + "_zova_after_live_ms", med([r["total_ms"] - r["phases"]["live"]["done"]
                                            for r in z if "done" in r["phases"].get("live", {})]))
    fig(mode + "_zova_own_ms", own)
    net = (vt + own) / vt if own is not None and vt else None
    fig(mode + "_total_ratio_net", net)
    table.append((mode, zt, vt, zt / vt if zt and vt else None, own, net, zd, vd,
                  zd - vd if zd is not None and vd is not None else None))

print()
print("per mode, medians of %d runs (ms):" % runs)
print("  %-9s %11s %11s %6s %9s %9s %14s %15s %6s" % ("mode", "zova total", "virsh total", "ratio", "zova own",
      "ratio net", "zova downtime", "virsh downtime", "diff"))
for mode, zt, vt, ratio, own, net, zd, vd, diff in table:
    print("  %-9s %11s %11s %6s %9s %9s %14s %15s %6s" % (mode, fmt(zt), fmt(vt), fmt(ratio), fmt(own), fmt(net),
          fmt(zd), fmt(vd), fmt(diff)))
print("each run (ms): side mode run total job downtime [dst record] before/job/after (libvirt events)"
      " source-stop [switch] [phases]")
for r in rows:
    extra = ""
    if r["side"] == "zova":
        extra = " " + " ".join("%s=%s" % (p, fmt(r["phases"][p]["done"] - r["phases"][p]["begin"]))
                               for p in PHASES if len(r["phases"].get(p, {})) == 2)
        extra += " completed->return=%s" % fmt(r["total_ms"] - r["completed_ms"] if r.get("completed_ms") else None)
    dst = r.get("dst_record_downtime_ms")
    print("  %-5s %-8s %d %s %s %s [%s] %s/%s/%s %s%s%s" % (r["side"], r["mode"], r["run"], fmt(r["total_ms"]),
        fmt(r["job_ms"]), fmt(r["downtime_ms"]), "-" if dst is None else fmt(dst), fmt(r["before_job_ms"]),
        fmt(r["job_seen_ms"]), fmt(r["after_job_ms"]), fmt(r.get("source_stop_ms")),
        " switch=%s%s" % (fmt(r["switch_ms"]), "" if r["postcopy"] else " (NOT post-copy)") if r["mode"] == "postcopy" else "",
        extra))
sys.exit(1 if missing else 0)
PY
exit "$FAILED"
