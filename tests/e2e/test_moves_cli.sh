#!/usr/bin/env bash
# test_moves_cli: the zova commands that move servers (server migrate,
# resize with confirm and revert, server and host evacuate, migration list
# and show, compute service set --down/--up), on the CLI's side.
#
# 1. help lists them; bad syntax is exit 2 with the usage line, refused
#    before anything is sent.
# 2. Against one `zovad all`: every request reaches the conductor with a
#    body the api's catalogue accepts (an over-long field shows what a
#    refused body looks like).  Until the conductor serves a type it
#    answers "is not served by the conductor"; once it does, any answer of
#    its own passes here, and the moves themselves are tested where the
#    conductor's side is.
# 3. Against tests/tools/zv_fakemoves, a stand-in api with scripted moves:
#    the bodies sent, and what --wait makes of moves that succeed, fail,
#    put the server in ERROR or never end; tables and JSON.
. "$(dirname "$0")/lib.sh"

API="tcp://127.0.0.1:$(t_port)"
FAKE="tcp://127.0.0.1:$(t_port)"
NOBODY="tcp://127.0.0.1:$(t_port)"
HOST=$(hostname)

# t_exit DESCRIPTION STATUS PATTERN COMMAND...: expect that exit status and
# PATTERN on stderr.
t_exit () {
    local what=$1 want=$2 pattern=$3; shift 3
    local status=0
    "$@" >"$T_DIR/last.out" 2>"$T_DIR/last.err" || status=$?
    T_CHECKS=$((T_CHECKS + 1))
    if [ "$status" -ne "$want" ]; then
        t_fail "$what: exit $status, expected $want: $(head -c 600 "$T_DIR/last.err")"
    elif ! grep -q -- "$pattern" "$T_DIR/last.err"; then
        t_fail "$what: stderr lacks '$pattern': $(head -c 600 "$T_DIR/last.err")"
    else
        echo "  ok: $what"
    fi
}

# --- 1. help and usage -----------------------------------------------------

for words in "server migrate" "server resize" "server resize confirm" "server resize revert" \
             "server evacuate" "host evacuate" "server migration list" "server migration show" \
             "migration list"; do
    T_CHECKS=$((T_CHECKS + 1))
    if "$ZOVA" help | grep -q "^  zova $words \(\[\|--\|[A-Z]\)"; then echo "  ok: help lists $words"
    else t_fail "help lacks $words"; fi
done
T_CHECKS=$((T_CHECKS + 1))
if "$ZOVA" help | grep -q "zova compute service set .*\[--down\] \[--up\]"; then echo "  ok: help lists service set --down/--up"
else t_fail "help lacks service set --down/--up"; fi
t_check "help server resize confirm" "$ZOVA" help server resize confirm
t_eq "help server resize confirm is its own usage" \
    "usage: zova server resize confirm [--wait] [--wait-timeout SECONDS] SERVER" "$(head -1 "$T_DIR/last.out")"

# Nobody listens at NOBODY: a request sent would be exit 1 (no answer).
export ZOVA_ENDPOINT=$NOBODY
z () { "$ZOVA" --timeout 2 "$@"; }
t_exit "migrate without SERVER" 2 "usage: zova server migrate " z server migrate
t_exit "resize without --flavor" 2 "missing --flavor" z server resize vm
t_exit "resize without --flavor: usage" 2 "usage: zova server resize --flavor FLAVOR" z server resize vm
t_exit "resize confirm without SERVER" 2 "usage: zova server resize confirm " z server resize confirm
t_exit "resize revert with two servers" 2 "too many arguments" z server resize revert a b
t_exit "evacuate, unknown option" 2 "usage: zova server evacuate " z server evacuate --nope vm
t_exit "migrate --target is not migrate's" 2 "usage: zova server migrate " z server migrate --target h vm
t_exit "--block-migration needs --live-migration" 2 "is for --live-migration" \
    z server migrate --block-migration vm
t_exit "--block- and --shared-migration" 2 "exclude each other" \
    z server migrate --live-migration --block-migration --shared-migration vm
t_exit "host evacuate without a host" 2 "usage: zova host evacuate " z host evacuate
t_exit "migration show without ID" 2 "usage: zova server migration show " z server migration show vm
t_exit "migration list SERVER is the server's" 2 "too many arguments" z migration list vm
t_exit "migration list --kind checked" 2 "--kind must be one of" z migration list --kind cold
t_exit "migrate --wait-timeout checked" 2 "--wait-timeout expects" z server migrate --wait-timeout 0 vm
t_exit "service set --down --up" 2 "not both" z compute service set --down --up h
t_exit "service set with nothing to set" 2 "--down or --up" z compute service set h
t_exit "service set --enable --disable (as before)" 2 "exactly one of --enable and --disable" \
    z compute service set --enable --disable h

# --- 2. zovad all: each request reaches the conductor -----------------------

export ZOVA_ENDPOINT=$API
t_config "$T_DIR/zova.conf" "api.endpoint=$API" "scheduler.host_refresh_interval_ms=200"
t_start aio all "$T_DIR/zova.conf"
t_wait_api 30 || { tail -20 "$T_DIR/aio.log"; exit 1; }
t_wait_for "compute up" 20 sh -c "'$ZOVA' hypervisor list -f json | grep -q '\"state\": *\"up\"'"
t_check "flavor" t_zova flavor create --vcpus 1 --ram 64 --disk 1 m1
t_check "flavor m2" t_zova flavor create --vcpus 1 --ram 128 --disk 1 m2
head -c 65536 /dev/urandom >"$T_DIR/disk.img"
t_check "image" t_zova image create --file "$T_DIR/disk.img" img
t_check "server" t_zova server create --flavor m1 --image img --wait --wait-timeout 60 vm1

# t_reached DESCRIPTION TYPE COMMAND...: the api passed the request on (its
# body fits the catalogue) and the conductor answered it.
t_reached () {
    local what=$1 type=$2; shift 2
    local status=0
    "$@" >"$T_DIR/last.out" 2>"$T_DIR/last.err" || status=$?
    T_CHECKS=$((T_CHECKS + 1))
    if grep -q "'conductor.$type' is not served by the conductor" "$T_DIR/last.err"; then
        echo "  ok: $what (reached the conductor, which does not serve it yet)"
    elif grep -q "api.$type:\|conductor.$type:\|no answer\|usage:" "$T_DIR/last.err" || [ "$status" -gt 1 ]; then
        t_fail "$what: exit $status: $(head -c 600 "$T_DIR/last.err")"
    else
        echo "  ok: $what (the conductor answered, exit $status)"
    fi
}

t_reached "server migrate" server_migrate t_zova server migrate vm1
t_reached "server migrate --host" server_migrate t_zova server migrate --host "$HOST" vm1
t_reached "server migrate --live-migration --block-migration" server_migrate \
    t_zova server migrate --live-migration --block-migration --host "$HOST" vm1
t_reached "server migrate --live-migration --shared-migration" server_migrate \
    t_zova server migrate --live-migration --shared-migration vm1
t_reached "server resize" server_resize t_zova server resize --flavor m2 vm1
t_reached "server resize confirm" server_resize_confirm t_zova server resize confirm vm1
t_reached "server resize revert" server_resize_revert t_zova server resize revert vm1
t_reached "server evacuate" server_evacuate t_zova server evacuate vm1
t_reached "server evacuate --host" server_evacuate t_zova server evacuate --host "$HOST" vm1
t_reached "host evacuate" host_evacuate t_zova host evacuate "$HOST"
t_reached "host evacuate --target" host_evacuate t_zova host evacuate --target other "$HOST"
t_reached "server migration list" migration_list t_zova server migration list vm1
t_reached "server migration show" migration_show t_zova server migration show vm1 1
t_reached "migration list" migration_list t_zova migration list
t_reached "migration list --host --status --kind" migration_list \
    t_zova migration list --host "$HOST" --status finished --kind resize
t_exit "an over-long --host is refused by the api" 1 "api.server_migrate: field 'host'" \
    t_zova server migrate --host "$(printf 'h%.0s' $(seq 300))" vm1
t_check "service set --down" t_zova compute service set --down "$HOST"
t_check "service set --up --disable --reason" t_zova compute service set --up --disable --reason maint "$HOST"
t_eq "--disable still disables" "disabled maint" \
    "$(t_zova compute service list -f json | t_json '" ".join("%s %s" % (s["status"], s["disabled_reason"]) for s in d if s["binary"] == "compute")')"
t_check "service set --enable" t_zova compute service set --enable "$HOST"
t_stop aio

# --- 3. the stand-in api: bodies and --wait ---------------------------------

export ZOVA_ENDPOINT=$FAKE
"$ZV_BUILD/tools/zv_fakemoves" "$FAKE" >"$T_DIR/fake.log" 2>"$T_DIR/fake.err" &
T_PIDS+=("$!")
t_wait_api 10 || { cat "$T_DIR/fake.err"; exit 1; }

# sent TYPE: the body of the last request of that type.
sent () { grep "^api.$1 " "$T_DIR/fake.log" | tail -1 | cut -d' ' -f2-; }
out () { cat "$T_DIR/last.out"; }

t_check "migrate" t_zova server migrate vm1
t_eq "migrate sends" '{"ref":"vm1"}' "$(sent server_migrate)"
t_eq "without --wait: the server and its migration id" "RESIZE True" \
    "$(t_zova server migrate vm1 -f json | t_json '"%s %s" % (d["status"], isinstance(d["migration_id"], int))')"
t_check "live, block" t_zova server migrate --live-migration --block-migration --host h2 vm1
t_eq "live, block sends" '{"block_migration":true,"host":"h2","live":true,"ref":"vm1"}' "$(sent server_migrate)"
t_check "live, shared" t_zova server migrate --live-migration --shared-migration vm1
t_eq "live, shared sends" '{"block_migration":false,"live":true,"ref":"vm1"}' "$(sent server_migrate)"
t_check "resize" t_zova server resize --flavor m2 vm1
t_eq "resize sends" '{"flavor":"m2","ref":"vm1"}' "$(sent server_resize)"
t_check "resize confirm" t_zova server resize confirm vm1
t_eq "confirm sends" '{"ref":"vm1"}' "$(sent server_resize_confirm)"
t_check "resize revert" t_zova server resize revert vm1
t_eq "revert sends" '{"ref":"vm1"}' "$(sent server_resize_revert)"
t_exit "evacuate: the note on local storage" 0 "rebuilt from its image, and the data on its disks is lost" \
    t_zova server evacuate --host h2 ev1
t_eq "evacuate sends" '{"host":"h2","ref":"ev1"}' "$(sent server_evacuate)"
t_exit "host evacuate --target" 1 "1 of 3 servers on h1 were refused" t_zova host evacuate --target h3 h1
t_eq "host evacuate sends" '{"host":"h1","target":"h3"}' "$(sent host_evacuate)"
t_eq "host evacuate: a row per server, the refused one with its reason" \
    "h1-shared accepted|h1-local accepted|h1-refused refused Cannot 'evacuate'" \
    "$(out | awk -F' *[|] *' 'NR > 3 && NF > 5 { r = $3 " " $5; if ($6 != "") r = r " " substr($6, 1, 17); print r }' | paste -sd'|')"
t_check "server migration list" t_zova server migration list vm1
t_eq "server migration list sends" '{"ref":"vm1"}' "$(sent migration_list)"
t_check "server migration show" t_zova server migration show vm1 2
t_eq "server migration show sends" '{"id":"2","ref":"vm1"}' "$(sent migration_show)"
t_check "migration list with filters" t_zova migration list --host h1 --status done --kind evacuation
t_eq "migration list sends" '{"host":"h1","kind":"evacuation","status":"done"}' "$(sent migration_list)"
t_exit "service set --down" 1 "not served by the fake" t_zova compute service set --down h1
t_eq "--down sends" '{"forced_down":true,"host":"h1"}' "$(sent service_set)"
t_exit "service set --up --enable" 1 "not served by the fake" t_zova compute service set --up --enable h1
t_eq "--up --enable sends" '{"disabled":false,"forced_down":false,"host":"h1"}' "$(sent service_set)"
t_exit "service set --disable --reason" 1 "not served by the fake" \
    t_zova compute service set --disable --reason maint h1 nova-compute
t_eq "--disable --reason sends as before" '{"binary":"nova-compute","disabled":true,"disabled_reason":"maint","host":"h1"}' \
    "$(sent service_set)"

# --wait: a cold migration that copies 4 MiB, then its confirm.
t_exit "migrate --wait" 0 "finished (phase verify)" t_zova server migrate --wait ok1 -f json
t_eq "migrate --wait: VERIFY_RESIZE, the migration id" "VERIFY_RESIZE None dst" \
    "$(out | t_json '"%s %s %s" % (d["status"], d["task_state"], d["host"])')"
T_CHECKS=$((T_CHECKS + 1))
if grep -q "50%  ok1: post-migrating (phase finish), 2.0 of 4.0 MiB copied" "$T_DIR/last.err"; then
    echo "  ok: migrate --wait shows the bytes copied"
else t_fail "migrate --wait progress: $(head -c 600 "$T_DIR/last.err")"; fi
MIG=$(out | t_json 'd["migration_id"]')
t_exit "resize confirm --wait" 0 "confirmed (phase confirm)" t_zova server resize confirm --wait ok1
T_CHECKS=$((T_CHECKS + 1))
if grep -q "MiB" "$T_DIR/last.err"; then t_fail "confirm shows bytes: $(cat "$T_DIR/last.err")"
else echo "  ok: confirm --wait shows no bytes"; fi
t_eq "confirm --wait: ACTIVE" "ACTIVE" "$(out | sed -n 's/^| status *| \([A-Z_]*\) *|$/\1/p')"
t_check "migrate, no wait" t_zova server migrate ok2
t_check "resize revert --wait" t_zova server resize revert --wait ok2 -f json
t_eq "revert --wait: SHUTOFF (as it was)" "SHUTOFF" "$(out | t_json 'd["status"]')"
t_exit "revert without a move is the api's error" 1 "has no migration" t_zova server resize revert never-moved

# --wait: moves that end badly, or never.
t_exit "resize --wait, the migration in error" 1 \
    "server vm-bad (.*): resize failed: No valid host was found" \
    t_zova server resize --flavor m2 --wait vm-bad
t_eq "a failed move prints no record" "" "$(out)"
t_exit "migrate --wait, the server ERROR" 1 "migration failed: Disk copy failed: checksum mismatch" \
    t_zova server migrate --wait vm-err
t_exit "migrate --wait-timeout" 1 "timed out after 1 s waiting for server vm-slow (.*) to be migrated (migration [0-9]*: pre-migrating, phase schedule)" \
    t_zova server migrate --wait --wait-timeout 1 vm-slow

# --wait: evacuations say what happened to the disks.
t_exit "evacuate --wait, local storage" 0 "evacuated to dst; rebuilt from its image (local storage): the data on its disks is lost" \
    t_zova server evacuate --wait ev2
t_exit "evacuate --wait, shared storage" 0 "its disks were on shared storage and were reused" \
    t_zova server evacuate --wait ev-shared
t_exit "evacuate --wait, failed" 1 "evacuation failed: Build of the instance failed on dst: no image" \
    t_zova server evacuate --wait ev-bad
t_exit "host evacuate --wait" 1 "1 of 3 servers on h2 were refused" t_zova host evacuate --wait h2 -f json
t_eq "host evacuate --wait -f json: the reply, with the final records" "done done|h2-refused" \
    "$(out | t_json '" ".join(m["migration"]["status"] for m in d["migrations"]) + "|" + " ".join(r["server"]["name"] for r in d["refused"])')"
T_CHECKS=$((T_CHECKS + 1))
if grep -q "1 of 2 servers were rebuilt from their image" "$T_DIR/last.err" && grep -q "2/2 servers evacuated" "$T_DIR/last.err"; then
    echo "  ok: host evacuate --wait: progress, and how many were rebuilt"
else t_fail "host evacuate --wait stderr: $(head -c 600 "$T_DIR/last.err")"; fi
t_exit "host evacuate --wait, both fail" 1 "server hbad-local (.*): evacuation failed" t_zova host evacuate --wait hbad
t_eq "their reasons in the table" "2" "$(out | grep -c '| failed *| Build of the instance failed')"

# Migration records.
t_check "server migration list -f json" t_zova server migration list ok1 -f json
t_eq "as they come, newest first" "migration $MIG m1 4194304" \
    "$(out | t_json '"%s %s %s %s" % (d[0]["kind"], d[0]["id"], d[0]["old_flavor"]["name"], d[0]["bytes_total"])')"
t_check "server migration list" t_zova server migration list ok1
t_eq "openstackclient's columns" "| Id | UUID | Source Host | Dest Host | Status | Type | Old Flavor | New Flavor | Created At | Updated At |" \
    "$(out | sed -n 2p | tr -s ' ')"
t_eq "flavors by name" "confirmed migration m1 m1" \
    "$(out | sed -n 4p | awk -F' *[|] *' '{print $6, $7, $8, $9}')"
t_check "migration list" t_zova migration list
t_eq "the cloud's: which server" "Server UUID" "$(out | sed -n 2p | awk -F' *[|] *' '{print $4}')"
t_check "server migration show -f json" t_zova server migration show ok1 "$MIG" -f json
t_eq "one record, as it comes" "$MIG confirmed False" \
    "$(out | t_json '"%s %s %s" % (d["id"], d["status"], d["shared_storage"])')"
t_check "server migration show" t_zova server migration show ok1 "$MIG"
t_eq "its flavors as name (id)" "m1 (f1)" "$(out | sed -n 's/^| old_flavor *| \(.*[^ ]\) *|$/\1/p')"
t_exit "an unknown migration is exit 1" 1 "could not be found" t_zova server migration show ok1 999

t_done
