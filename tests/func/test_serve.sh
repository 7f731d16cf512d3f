#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The daemon: `uraid serve` with file members, driven through its JSON-RPC socket by
# `uraid rpc`: methods answer, bad input gets errors and leaves the daemon serving, a second
# instance is refused, SIGTERM shuts down cleanly (superblocks clean) and the next start
# assembles the array again. Requests are also sent exactly as SPDK's rpc.py sends them.
. "$(dirname "$0")/lib.sh"

SOCK=$T_DIR/uraid.sock
trap 'stop_daemon; t_cleanup' EXIT

files() { t_files "$T_DIR" 16 0 1 2; }
t_cfg "$T_DIR/create.json" "$(files)" \
	'{"method":"bdev_raid_create","params":{"name":"r5","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["F0","F1","F2"],"superblock":true}}'
t_cfg "$T_DIR/members.json" "$(files)"

if start_daemon "$T_DIR/create.json"; then
	t_pass "serve starts and answers on its socket"
else
	t_fail "serve starts and answers on its socket" "$(tail -n 5 "$T_DIR/serve.log")"
fi
check "the socket is 0600" 0 '^600$' stat -c %a "$SOCK"
check "the array is there" 0 '"state": "online"' rpc bdev_raid_get_bdevs '{"category":"all"}'
check "a second instance on the socket is refused" 1 'another uraid is serving' \
	"$URAID" serve --rpc-socket "$SOCK"
check "a second instance on the members is refused" 1 'in use by another process' \
	"$URAID" serve --config "$T_DIR/members.json" --rpc-socket "$T_DIR/other.sock"

# Bad input: an error each, and the daemon goes on.
check "unknown method" 1 'unknown method .* \(code -32601\)' rpc bdev_nope
check "wrong parameter type" 1 'num_blocks' rpc bdev_malloc_create '{"num_blocks":"many","block_size":512}'
check "malformed JSON: parse error" 0 '"code":-32700' \
	sh -c "printf '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":' | '$URAID' rpc -s '$SOCK' --raw"
check "garbage bytes: parse error" 0 '"code":-32700' \
	sh -c "head -c 3000 /dev/urandom | '$URAID' rpc -s '$SOCK' --raw"
check "not JSON-RPC 2.0" 0 '"code":-32600' \
	sh -c "printf '{\"id\":1,\"method\":\"rpc_get_methods\"}' | '$URAID' rpc -s '$SOCK' --raw"
check "params not an object" 0 '"code":-32602' \
	sh -c "printf '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"bdev_get_bdevs\",\"params\":[1]}' | '$URAID' rpc -s '$SOCK' --raw"
check "pipelined requests and a batch on one connection" 0 '"id":3.*"id":4' \
	sh -c "printf '{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"log_get_level\"}[{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"log_get_level\"},{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"log_get_level\"}]' | '$URAID' rpc -s '$SOCK' --raw"
if alive; then t_pass "the daemon survives bad input"; else t_fail "the daemon survives bad input" "no answer"; fi

# As SPDK's scripts/rpc.py sends them (indented, one id each): bdev_malloc_create for three
# members, then `rpc.py bdev_raid_create -n r -z 64 -r 5f -b "m0 m1 m2"`.
spdk_req() { # ID METHOD PARAMS
	printf '{\n  "jsonrpc": "2.0",\n  "method": "%s",\n  "id": %s,\n  "params": %b\n}' "$2" "$1" "$3"
}
{
	for i in 0 1 2; do
		spdk_req $((i + 10)) bdev_malloc_create "{\n    \"num_blocks\": 16384,\n    \"block_size\": 512,\n    \"name\": \"m$i\"\n  }"
	done
	spdk_req 13 bdev_raid_create '{\n    "name": "r",\n    "raid_level": "5f",\n    "base_bdevs": [\n      "m0",\n      "m1",\n      "m2"\n    ],\n    "superblock": false,\n    "strip_size_kb": 64\n  }'
} >"$T_DIR/spdk.json"
check "rpc.py's bdev_raid_create works" 0 '"id":13,"result":true' \
	sh -c "'$URAID' rpc -s '$SOCK' --raw <'$T_DIR/spdk.json'"
check "the raid5f array from rpc.py is online" 0 '"raid_level": "raid5f"' rpc bdev_raid_get_bdevs '{"category":"online"}'
check "log level set and read back" 0 '"info"' sh -c "'$URAID' rpc -s '$SOCK' log_set_level '{\"level\":\"info\"}' && '$URAID' rpc -s '$SOCK' log_get_level"

# The operator's commands.
export URAID_RPC_SOCKET=$SOCK
for i in 3 4 5 6; do
	rpc bdev_malloc_create "{\"name\":\"m$i\",\"num_blocks\":65536,\"block_size\":512}" >/dev/null
done
check "uraid create" 0 '^created$' "$URAID" create r6 raid6 m3 m4 m5 m6 -z 16
check "uraid status: a table per array" 0 'r6 +raid6 +64\.0 MiB +online.*4 of 4' "$URAID" status r6
check "uraid status --json" 0 '"raid_level": "raid6"' "$URAID" status r6 --json
check "uraid create: bad level, one line" 1 "^uraid create: .*raid_level.*use raid0" "$URAID" create x raid9 m0
check "uraid status: unknown array" 1 "no array named 'nope'" "$URAID" status nope
check "uraid fail" 0 'failed' "$URAID" fail m4
check "status shows the failed member" 0 '1 +m4 +failed' "$URAID" status r6
rpc bdev_malloc_create '{"name":"sp","num_blocks":65536,"block_size":512}' >/dev/null
check "uraid add-spare: rebuilt onto it" 0 '^added$' "$URAID" add-spare r6 sp
for _ in $(seq 100); do
	"$URAID" status r6 | grep -q '4 of 4' && break
	sleep 0.1
done
check "the spare took the slot" 0 '1 +sp +active' "$URAID" status r6
check "uraid scrub" 0 '^[0-9]+ stripes checked, 0 mismatched, 0 unreadable' "$URAID" scrub r6
check "uraid replace: a bad request, one line" 1 "^uraid replace: .*not a member" "$URAID" replace r6 m0 m4
check "uraid delete" 0 '^deleted$' "$URAID" delete r6
for i in 0 1 2; do
	rpc bdev_malloc_create "{\"name\":\"j$i\",\"num_blocks\":65536,\"block_size\":512}" >/dev/null
	rpc bdev_malloc_create "{\"name\":\"x$i\",\"num_blocks\":65536,\"block_size\":512}" >/dev/null
done
check "uraid create: a write-back journal" 0 '^created$' \
	"$URAID" create rj raid5 j0 j1 j2 -z 16 --superblock --policy journal --journal-mode write-back
check "uraid status: the journal's mode" 0 'consistency journal \(write-back\)' "$URAID" status rj
check "journal_mode: a bad value, one line" 1 "journal_mode.*use write-through or write-back" \
	"$URAID" create rx raid5 j0 j1 j2 --superblock --policy journal --journal-mode sometimes
check "write-back without the journal" 1 "write-back is a mode of consistency policy journal" \
	"$URAID" create rx raid5 x0 x1 x2 --superblock --policy ppl --journal-mode write-back
check "uraid delete (journal)" 0 '^deleted$' "$URAID" delete rj
for b in jd y0 y1 y2; do
	rpc bdev_malloc_create "{\"name\":\"$b\",\"num_blocks\":16384,\"block_size\":512}" >/dev/null
done
check "uraid create: the journal on a device of its own" 0 '^created$' \
	"$URAID" create rd raid5 y0 y1 y2 -z 16 --superblock --policy journal --journal-bdev jd
check "uraid status: names the journal device" 0 'consistency journal \(write-through\) on jd' \
	"$URAID" status rd
check "a journal device needs the journal" 1 "journal device needs consistency policy journal" \
	"$URAID" create rx raid5 x0 x1 x2 --superblock --policy ppl --journal-bdev x0
check "uraid delete (journal device)" 0 '^deleted$' "$URAID" delete rd
# The journal device with redundancy of its own: a raid1 array of two small members.
for b in z0 z1; do
	rpc bdev_malloc_create "{\"name\":\"$b\",\"num_blocks\":16384,\"block_size\":512}" >/dev/null
done
check "a raid1 array for the journal" 0 '^created$' "$URAID" create jm raid1 z0 z1
check "... holds the journal of a raid5 array" 0 '^created$' \
	"$URAID" create rd raid5 y0 y1 y2 -z 16 --superblock --policy journal --force \
	--journal-bdev jm
check "uraid status: on the raid1 array" 0 'consistency journal \(write-through\) on jm' \
	"$URAID" status rd
check "uraid delete (journal on raid1)" 0 '^deleted$' "$URAID" delete rd
# A mirror's member fails and comes back: under the bitmap it catches up (nothing was written
# meanwhile, so every unit is passed over) instead of a full rebuild.
check "uraid create: a mirror with a bitmap" 0 '^created$' \
	"$URAID" create rm raid1 x0 x1 -z 16 --superblock --policy bitmap
check "uraid fail (mirror)" 0 'failed' "$URAID" fail x1
check "the same member added back" 0 '^added$' "$URAID" add-spare rm x1
for _ in $(seq 100); do
	"$URAID" status rm | grep -q '2 of 2' && break
	sleep 0.1
done
check "it is active again" 0 '1 +x1 +active' "$URAID" status rm
check "it caught up: units passed over, none rebuilt" 0 '"units":0,"units_skipped":[1-9]' \
	sh -c "'$URAID' rpc -s '$SOCK' bdev_raid_get_stats '{\"name\":\"rm\"}' | tr -d ' \n'"
check "uraid delete (mirror)" 0 '^deleted$' "$URAID" delete rm
check "no daemon: says what to do" 1 "is 'uraid serve' running" "$URAID" status -s "$T_DIR/none.sock"
unset URAID_RPC_SOCKET

# SIGTERM: a clean stop, recorded on the members.
kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
if [ $rc -eq 0 ] && grep -q 'stopped cleanly' "$T_DIR/serve.log" && [ ! -e "$SOCK" ]; then
	t_pass "SIGTERM stops cleanly and removes the socket"
else
	t_fail "SIGTERM stops cleanly and removes the socket" "rc=$rc $(tail -n 3 "$T_DIR/serve.log")"
fi
check "the members say clean" 0 'state +clean' "$URAID" examine "$T_DIR/f1.img"

# The next start assembles the array from its members.
if start_daemon "$T_DIR/members.json"; then
	check "restarted: the array is assembled" 0 '"name": "r5"' rpc bdev_raid_get_bdevs '{"category":"online"}'
else
	t_fail "restarted: the array is assembled" "$(tail -n 5 "$T_DIR/serve.log")"
fi
stop_daemon

# A test stopped by run-tests.sh's timeout (TERM to its process group) still cleans up: its
# daemon is stopped and its scratch directory removed, as lib.sh's signal traps make sure.
cat >"$T_DIR/child.sh" <<'EOF_CHILD'
. "$1/lib.sh"
SOCK=$T_DIR/child.sock
trap 'stop_daemon; t_cleanup' EXIT
t_cfg "$T_DIR/c.json"
start_daemon "$T_DIR/c.json" || exit 1
echo "$T_DIR $PID" >"$2.tmp" && mv "$2.tmp" "$2"
sleep 60
EOF_CHILD
timeout -k 5 60 bash "$T_DIR/child.sh" "$(cd "$(dirname "$0")" && pwd)" "$T_DIR/child.info" \
	>"$T_DIR/child.log" 2>&1 &
TO=$!
for _ in $(seq 150); do [ -s "$T_DIR/child.info" ] && break; sleep 0.1; done
read -r cdir cpid <"$T_DIR/child.info" || cdir=
kill -TERM "$TO"
wait "$TO"
for _ in $(seq 50); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
if [ -z "$cdir" ]; then
	t_fail "a test stopped by its timeout cleans up" "it never started: $(tail -n 3 "$T_DIR/child.log")"
elif [ -e "$cdir" ] || kill -0 "$cpid" 2>/dev/null; then
	t_fail "a test stopped by its timeout cleans up" "left $(ls -d "$cdir" 2>/dev/null) daemon $(kill -0 "$cpid" 2>/dev/null && echo "$cpid running")"
	rm -rf "$cdir"
else
	t_pass "a test stopped by its timeout cleans up"
fi

# A check that fails with no reason given still counts, and the test goes on to its closing
# line (lib.sh runs under set -u).
printf '%s\n' '. "$1/lib.sh"' 't_fail "one"' 't_skip "two"' 't_pass "three"' 't_done' \
	>"$T_DIR/bare.sh"
out=$(bash "$T_DIR/bare.sh" "$(cd "$(dirname "$0")" && pwd)" 2>&1)
if [ "$out" = "$(printf 'FAIL one\nskip two\nok   three\n1 passed, 1 failed, 1 skipped')" ]; then
	t_pass "t_fail and t_skip without a reason"
else
	t_fail "t_fail and t_skip without a reason" "$out"
fi
t_done
