#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Declustered parity through the daemon and across restarts: a draid 4+2 with one distributed
# spare over 10 file members is created with superblocks and written with verify stamps;
# `uraid examine` shows its code and table; a later run assembles it from the member files
# alone (in another order; with two missing, degraded, the distributed spare taking one of
# them; then a third missing too; four is refused) and verifies what the first run wrote. Over the RPC: bdev_raid_get_bdevs reports its shape, save_config
# gives back the parameters that make the same array again, two failed members fill the two
# distributed spares in turn and spare bdevs then take the slots back, and bad shapes are
# refused with the reason.
. "$(dirname "$0")/lib.sh"
SOCK=$T_DIR/uraid.sock
trap 'stop_daemon; t_cleanup' EXIT

files() { t_files "$T_DIR" 24 "$@"; }
draid='{"method":"bdev_raid_create","params":{"name":"d","raid_level":"draid","data_chunks":4,"parity_chunks":2,"distributed_spares":1,"strip_size_kb":16,"base_bdevs":["F0","F1","F2","F3","F4","F5","F6","F7","F8","F9"],"superblock":true}}'
t_cfg "$T_DIR/create.json" "$(files 0 1 2 3 4 5 6 7 8 9)" "$draid"
check "create draid 4+2+1 over 10 members, write with stamps" 0 \
	'verify: [1-9][0-9]* blocks checked, 0 miscompares' \
	"$URAID" bench --json "$T_DIR/create.json" -T d -q 16 -o 24k -w randwrite -t 1 --verify --seed 11
check "uraid examine: the code" 0 'code +4 data \+ 2 parity, 1 distributed spares' \
	"$URAID" examine "$T_DIR/f3.img"
check "uraid examine: the table" 0 'draid table +32 bases, seed [0-9a-f]{16}' \
	"$URAID" examine "$T_DIR/f3.img"

t_cfg "$T_DIR/members.json" "$(files 9 3 1 0 2 8 4 7 6 5)"
check "assembled from the files alone, data verified" 0 \
	'verify: [1-9][0-9]* blocks checked, 0 miscompares' \
	"$URAID" bench --json "$T_DIR/members.json" -T d -q 16 -o 24k -w read -t 1 --verify --seed 11
t_cfg "$T_DIR/two.json" "$(files 0 1 2 4 5 6 8 9)"
check "two members missing: degraded, data verified" 0 \
	'verify: [1-9][0-9]* blocks checked, 0 miscompares' \
	"$URAID" bench --json "$T_DIR/two.json" -T d -q 16 -o 24k -w read -t 1 --verify --seed 11
# That run rebuilt slot 3 into the distributed spare: the array then takes a third loss.
check "uraid examine: slot 3 in the distributed spare" 0 'spare 0 +full, slot 3' \
	"$URAID" examine "$T_DIR/f0.img"
t_cfg "$T_DIR/three.json" "$(files 0 1 2 4 6 8 9)"
check "three missing, one of them in the spare: data verified" 0 \
	'verify: [1-9][0-9]* blocks checked, 0 miscompares' \
	"$URAID" bench --json "$T_DIR/three.json" -T d -q 16 -o 24k -w read -t 1 --verify --seed 11
t_cfg "$T_DIR/four.json" "$(files 0 1 2 4 8 9)"
check "four members missing: refused" 2 'more missing than draid tolerates' \
	"$URAID" bench --json "$T_DIR/four.json" -T d -q 16 -o 24k -w read -t 0.3

# Through the daemon, over memory members: what it reports, what it saves, what it refuses.
mem() {
	local out=() i
	for i in $(seq 0 $(($1 - 1))); do
		out+=("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"m$i\",\"num_blocks\":4096,\"block_size\":4096}}")
	done
	local IFS=,
	echo "${out[*]}"
}
t_cfg "$T_DIR/mem.json" "$(mem 14)" \
	'{"method":"bdev_raid_create","params":{"name":"r","raid_level":"draid","data_chunks":3,"parity_chunks":3,"distributed_spares":2,"base_bdevs":["m0","m1","m2","m3","m4","m5","m6","m7","m8","m9","m10"]}}'
if start_daemon "$T_DIR/mem.json" --no-save-config; then
	t_pass "daemon starts a draid array from its config"
else
	t_fail "daemon start" "$(tail -5 "$T_DIR/serve.log")"
	t_done
	exit
fi
show=$(rpc bdev_raid_get_bdevs '{"category":"all"}' | python3 -c '
import json, sys
r = [a for a in json.load(sys.stdin) if a["name"] == "r"][0]
print(r["raid_level"], r["data_chunks"], r["parity_chunks"], r["distributed_spares"],
      r["draid_table"]["bases"], len(r["draid_table"]["seed"]), r["num_base_bdevs"])')
if [ "$show" = "draid 3 3 2 32 16 11" ]; then
	t_pass "bdev_raid_get_bdevs: level, code, spares and table"
else
	t_fail "bdev_raid_get_bdevs" "'$show'"
fi
if rpc save_config | python3 -c '
import json, sys
c = [s for s in json.load(sys.stdin)["subsystems"] if s["subsystem"] == "bdev"][0]["config"]
p = [e["params"] for e in c if e["method"] == "bdev_raid_create"][0]
sys.exit(not (p["raid_level"] == "draid" and p["data_chunks"] == 3 and p["parity_chunks"] == 3
              and p["distributed_spares"] == 2))'; then
	t_pass "save_config gives back the draid parameters"
else
	t_fail "save_config" "$(rpc save_config | head -c 400)"
fi
# A member fails: both distributed spares fill in turn (the second failure too), with no
# spare bdev; then spare bdevs take the slots and the strips come back from the spares.
ds_state() {
	rpc bdev_raid_get_bdevs '{"category":"all"}' | python3 -c '
import json, sys
r = [a for a in json.load(sys.stdin) if a["name"] == "r"][0]
print(" ".join("%s:%d" % (d["state"], d["slot"]) for d in r["distributed_spare_state"]),
      r["num_base_bdevs_operational"])'
}
wait_ds() { # WANT: the state line, within 10 s
	local i
	for i in $(seq 100); do
		[ "$(ds_state)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
if [ "$(ds_state)" = "free:-1 free:-1 11" ]; then
	t_pass "distributed spares free at the start"
else
	t_fail "distributed_spare_state" "'$(ds_state)'"
fi
rpc bdev_raid_fail_base_bdev '{"name":"m3"}' >/dev/null
if wait_ds "full:3 free:-1 10"; then
	t_pass "a failed member is rebuilt into distributed spare 0 at once"
else
	t_fail "fill into the distributed spare" "'$(ds_state)'"
fi
check "uraid status shows the distributed spare holding slot 3" 0 \
	'draid 3\+3, distributed spares: 0 full \(slot 3\) 1 free' \
	env URAID_RPC_SOCKET="$SOCK" "$URAID" status r
rpc bdev_raid_fail_base_bdev '{"name":"m7"}' >/dev/null
if wait_ds "full:3 full:7 9"; then
	t_pass "a second failure fills distributed spare 1"
else
	t_fail "second fill" "'$(ds_state)'"
fi
rpc bdev_raid_add_spare '{"raid_bdev":"r","base_bdev":"m11"}' >/dev/null
rpc bdev_raid_add_spare '{"raid_bdev":"r","base_bdev":"m12"}' >/dev/null
if wait_ds "free:-1 free:-1 11"; then
	t_pass "spare bdevs take both slots; the distributed spares are free again"
else
	t_fail "copy back" "'$(ds_state)'"
fi
refused bdev_raid_create "fewer members than k + m + s" "needs 7 to 32 members, got 6" \
	'{"name":"x","raid_level":"draid","data_chunks":3,"parity_chunks":2,"distributed_spares":2,"base_bdevs":["m13","m3","m7","m8","m9","m10"]}'
refused bdev_raid_create "parity_chunks 5" "parity_chunks 1 to 4" \
	'{"name":"x","raid_level":"draid","data_chunks":1,"parity_chunks":5,"base_bdevs":["m13","m3","m7"]}'
refused bdev_raid_create "no data_chunks" "data_chunks >= 1" \
	'{"name":"x","raid_level":"draid","parity_chunks":1,"base_bdevs":["m13","m3","m7"]}'
rpc bdev_malloc_create '{"name":"j0","num_blocks":4096,"block_size":4096}' >/dev/null
# A journal device with distributed spares (on members of its own).
for i in 14 15 16; do
	rpc bdev_malloc_create "{\"name\":\"m$i\",\"num_blocks\":4096,\"block_size\":4096}" >/dev/null
done
if out=$(rpc bdev_raid_create '{"name":"xj","raid_level":"draid","data_chunks":1,"parity_chunks":1,"distributed_spares":1,"superblock":true,"consistency_policy":"journal","journal_bdev":"j0","base_bdevs":["m14","m15","m16"]}' 2>&1) &&
	out=$(rpc bdev_raid_get_bdevs '{"category":"all"}' 2>&1) &&
	echo "$out" | python3 -c '
import json, sys
x = [a for a in json.load(sys.stdin) if a["name"] == "xj"][0]
sys.exit(not (x["journal_bdev"] == "j0" and x["distributed_spares"] == 1))'; then
	t_pass "a draid array with distributed spares and a journal device"
else
	t_fail "a draid array with distributed spares and a journal device" "$out"
fi
refused bdev_raid_create "distributed_spares on raid5" "for raid_level draid only" \
	'{"name":"x","raid_level":"raid5","distributed_spares":1,"base_bdevs":["m13","m3","m7"]}'
if rpc bdev_raid_create '{"name":"x","raid_level":"draid","data_chunks":1,"parity_chunks":1,"distributed_spares":1,"superblock":true,"consistency_policy":"log","base_bdevs":["m13","m3","m7"]}' >/dev/null &&
	rpc bdev_raid_get_bdevs '{"category":"all"}' | grep -q '"consistency_policy": *"log"'; then
	t_pass "a log-structured draid array"
else
	t_fail "draid with the log policy" "$(rpc bdev_raid_get_bdevs '{"category":"all"}' 2>&1 | head -c 300)"
fi
stop_daemon
t_done
