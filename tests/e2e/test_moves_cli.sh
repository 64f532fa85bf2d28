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
# What the moves do, and what --wait shows of them, is tests/e2e/test_moves.sh's.
. "$(dirname "$0")/lib.sh"

API="tcp://127.0.0.1:$(t_port)"
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

t_done
