#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# uraid arrays in spdk_tgt, driven by SPDK's rpc.py with our plug-in: create/get/delete, bad
# parameters answered with JSON-RPC errors (spdk_tgt keeps running), a member hot-removed,
# save_config and a restart from it, and an array with superblocks over bdev_aio files that
# reassembles after spdk_tgt restarts with its data intact (written and read by spdk_dd).
. "$(dirname "$0")/lib.sh"
spdk_need 19

jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

tgt_start || { t_fail "spdk_tgt" "did not start"; t_done; exit 1; }
for i in $(seq 0 11); do rpc bdev_malloc_create -b "m$i" 32 4096 >/dev/null; done

# Created through the plug-in, shown by its get_bdevs and by SPDK's bdev_get_bdevs.
if rpc bdev_uraid_create -n r6 -r raid6 -z 64 -b "m0 m1 m2 m3 m4 m5" >/dev/null &&
	[ "$(rpc bdev_uraid_get_bdevs | jq_py 'd[0]["name"], d[0]["raid_level"], d[0]["state"]')" = "r6 raid6 online" ] &&
	[ "$(rpc bdev_get_bdevs -b r6 | jq_py 'd[0]["driver_specific"]["uraid"]["num_base_bdevs"]')" = 6 ]; then
	t_pass "rpc.py --plugin uraid_rpc bdev_uraid_create raid6; get_bdevs and bdev_get_bdevs show it"
else
	t_fail "create through the plug-in" "$(rpc bdev_uraid_get_bdevs 2>&1 | head -5)"
fi
# The members are claimed by the module: SPDK's own raid cannot take one.
if ! rpc bdev_raid_create -n s0 -r raid0 -z 64 -b "m0 m6" >/dev/null 2>&1 &&
	[ "$(rpc bdev_get_bdevs -b m0 | jq_py 'd[0]["claimed"]')" = True ]; then
	t_pass "members are claimed: SPDK's raid cannot use m0"
else
	t_fail "claim" "SPDK's raid took a member of r6"
fi

# Bad parameters: each a JSON-RPC error with a reason; spdk_tgt runs on.
bad() { # WHAT EXPECT_IN_MESSAGE PARAMS_JSON
	local out
	out=$(rpc_raw bdev_uraid_create "$3")
	if [[ "$out" == *'"error"'* ]] && [[ "$out" == *"$2"* ]] && tgt_alive; then
		t_pass "bad create ($1): $(jq_py 'd["error"]["message"]' <<<"$out")"
	else
		t_fail "bad create ($1)" "$out"
	fi
}
bad "unknown level" "raid7" '{"name":"x","raid_level":"raid7","base_bdevs":["m6"]}'
bad "missing member" "nope" '{"name":"x","raid_level":"raid1","base_bdevs":["m6","nope"]}'
bad "member of another array" "m0" '{"name":"x","raid_level":"raid1","base_bdevs":["m6","m0"]}'
rpc bdev_raid_create -n s1 -r raid1 -z 0 -b "m11" >/dev/null 2>&1 ||
	rpc bdev_raid_create -n s1 -r raid0 -z 64 -b "m11" >/dev/null
bad "member claimed by SPDK's raid" "in use by raid" \
	'{"name":"x","raid_level":"raid1","base_bdevs":["m6","m11"]}'
bad "strip size not a power of two" "strip" \
	'{"name":"x","raid_level":"raid0","strip_size_kb":48,"base_bdevs":["m6"]}'
bad "unknown parameter" "colour" '{"name":"x","raid_level":"raid0","colour":1,"base_bdevs":["m6"]}'
bad "wrong type" "base_bdevs" '{"name":"x","raid_level":"raid0","base_bdevs":"m6"}'

# Hot remove: deleting a member bdev fails that member; the array serves on degraded.
rpc bdev_malloc_delete m5 >/dev/null 2>&1
for _ in $(seq 50); do
	st=$(rpc bdev_uraid_get_bdevs | jq_py '"%s %d" % (d[0]["state"], d[0]["num_base_bdevs_operational"])')
	[ "$st" = "online 5" ] && break
	sleep 0.1
done
if [ "$st" = "online 5" ] && tgt_alive; then
	t_pass "hot-removed member m5: r6 online with 5 operational"
else
	t_fail "hot remove" "state '$st'"
fi

# The other methods through the plug-in: a bdev added takes the failed slot and is rebuilt,
# scrub finds nothing, stats answer, a planned replacement swaps a member while it serves, a
# member failed by request and removed is released, options go into save_config.
members() {
	rpc bdev_uraid_get_bdevs | jq_py '" ".join("%s:%s" % (m["name"], m["state"]) for m in d[0]["base_bdevs_list"])'
}
wait_members() { # EXPECTED
	for _ in $(seq 100); do
		[ "$(members)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
if ! rpc bdev_uraid_add_base_bdev r6 m11 >/dev/null 2>&1 && # SPDK's raid holds m11
	rpc bdev_uraid_add_base_bdev r6 m7 >/dev/null &&
	wait_members "m0:active m1:active m2:active m3:active m4:active m7:active" &&
	grep -q "rebuild of m7 (slot 5) finished" "$T_DIR/tgt.log"; then
	t_pass "bdev_uraid_add_base_bdev: m11 (SPDK's raid holds it) refused; m7 takes the failed slot and is rebuilt"
else
	t_fail "add_base_bdev" "$(members)"
fi
if [ "$(rpc bdev_uraid_scrub r6 | jq_py '"%d %d" % (d["stripes_checked"], d["mismatches"])')" = "512 0" ] &&
	[ "$(rpc bdev_uraid_get_stats r6 | jq_py 'd["state"]')" = online ]; then
	t_pass "bdev_uraid_scrub: 512 stripes, no mismatch; bdev_uraid_get_stats answers"
else
	t_fail "scrub/stats" "$(rpc bdev_uraid_scrub r6 2>&1 | head -3)"
fi
if rpc bdev_uraid_replace_base_bdev r6 m0 m8 >/dev/null &&
	wait_members "m8:active m1:active m2:active m3:active m4:active m7:active" &&
	[ "$(rpc bdev_get_bdevs -b m0 | jq_py 'd[0]["claimed"]')" = False ]; then
	t_pass "bdev_uraid_replace_base_bdev: m8 replaced m0, m0 released"
else
	t_fail "replace" "$(members)"
fi
if rpc bdev_uraid_fail_base_bdev m1 >/dev/null && rpc bdev_uraid_remove_base_bdev m1 >/dev/null &&
	[ "$(members)" = "m8:active :missing m2:active m3:active m4:active m7:active" ] &&
	[ "$(rpc bdev_get_bdevs -b m1 | jq_py 'd[0]["claimed"]')" = False ]; then
	t_pass "bdev_uraid_fail_base_bdev, bdev_uraid_remove_base_bdev: m1 failed, then released"
else
	t_fail "fail/remove" "$(members)"
fi
if rpc bdev_uraid_set_options -w 512 -b 100 >/dev/null &&
	rpc save_config | grep -A3 '"bdev_uraid_set_options"' | grep -q '"process_window_size_kb": 512'; then
	t_pass "bdev_uraid_set_options, written by save_config"
else
	t_fail "set_options" "not in save_config"
fi
rpc bdev_uraid_set_options -w 1024 -b 0 >/dev/null

# save_config, then a restart from it: the same arrays (no superblock: created again).
rpc bdev_uraid_delete r6 >/dev/null
rpc bdev_malloc_create -b m12 32 4096 >/dev/null
rpc bdev_uraid_create -n r10 -r raid10 -z 16 -b "m0 m1 m2 m3" >/dev/null
rpc bdev_uraid_create -n e42 -r ec -k 4 -m 2 -z 32 -b "m4 m6 m7 m8 m9 m10" >/dev/null
rpc bdev_uraid_add_spare m12 -r r10 >/dev/null
# A spare created after its array cannot be replayed at the array's place: left out, with a
# warning, and the saved config still loads.
rpc bdev_malloc_create -b m13 32 4096 >/dev/null
rpc bdev_uraid_add_spare m13 -r e42 >/dev/null
arrays() { # name/level/strip/members/spares of each array
	rpc bdev_uraid_get_bdevs | jq_py '" ".join("%s/%s/%s/%s/%s" % (a["name"], a["raid_level"], a["strip_size_kb"], ",".join(m["name"] for m in a["base_bdevs_list"]), ",".join(x["name"] for x in a.get("spares", []))) for a in sorted(d, key=lambda a: a["name"]))'
}
before=$(arrays)
rpc save_config >"$T_DIR/saved.json"
tgt_stop
tgt_start --json "$T_DIR/saved.json"
after=$(arrays)
if [ -n "$before" ] && [ "${before/m13/}" = "$after" ] && [[ "$before" == *m10/m13* ]] &&
	[[ "$after" == */m12* ]] && grep -q bdev_uraid_create "$T_DIR/saved.json" &&
	grep -q "spare m13 of e42 was created after the array" "$T_DIR/tgt.log"; then
	t_pass "save_config, restart from it: same arrays and spares, m13 (created after e42) left out with a warning ($after)"
else
	t_fail "save_config round trip" "before '$before', after '$after'"
fi
if rpc bdev_uraid_delete e42 >/dev/null && rpc bdev_uraid_delete r10 >/dev/null &&
	[ "$(rpc bdev_uraid_get_bdevs | jq_py 'len(d)')" = 0 ] &&
	[ "$(rpc bdev_get_bdevs -b m0 | jq_py 'd[0]["claimed"]')" = False ]; then
	t_pass "bdev_uraid_delete: arrays gone, members released"
else
	t_fail "delete" "$(rpc bdev_uraid_get_bdevs 2>&1 | head -3)"
fi
tgt_stop

# Superblocks over bdev_aio files: written by spdk_dd, read back after a restart.
aio=$(for i in 0 1 2 3 4 5; do
	truncate -s 40M "$T_DIR/a$i.img"
	printf '{"method":"bdev_aio_create","params":{"name":"a%d","filename":"%s","block_size":4096}},' "$i" "$T_DIR/a$i.img"
done)
aio=${aio%,}
t_cfg "$T_DIR/create.json" "$aio" \
	"{\"method\":\"bdev_uraid_create\",\"params\":{\"name\":\"s6\",\"raid_level\":\"raid6\",\"strip_size_kb\":64,\"superblock\":true,\"consistency_policy\":\"ppl\",\"base_bdevs\":[$(names a 6)]}}"
t_cfg "$T_DIR/members.json" "$aio"
head -c $((24 << 20)) /dev/urandom >"$T_DIR/data"
dd_run() { timeout 120 env LD_PRELOAD="$MODULE" "$SPDK_DIR/build/bin/spdk_dd" -m 0x1 -u "$@" >>"$T_DIR/dd.log" 2>&1; }
if dd_run --json "$T_DIR/create.json" --if="$T_DIR/data" --ob=s6 --bs=1048576 &&
	dd_run --json "$T_DIR/members.json" --ib=s6 --of="$T_DIR/back" --bs=1048576 --count=24 &&
	cmp -s "$T_DIR/data" "$T_DIR/back"; then
	t_pass "raid6 with superblocks over aio files: reassembled by examine after a restart, 24 MiB intact"
else
	t_fail "superblock reassembly" "$(tail -5 "$T_DIR/dd.log")"
fi
# The same in spdk_tgt with one member missing: not started until bdev_uraid_examine says so.
t_cfg "$T_DIR/five.json" "${aio%,\{*}"
tgt_start --json "$T_DIR/five.json"
n0=$(rpc bdev_uraid_get_bdevs | jq_py 'len(d)')
rpc bdev_uraid_examine >/dev/null
n1=$(rpc bdev_uraid_get_bdevs | jq_py '"%d %s" % (len(d), d[0]["state"] if d else "")')
if [ "$n0" = 0 ] && [ "$n1" = "1 online" ]; then
	t_pass "five of six members: waits; bdev_uraid_examine starts it degraded"
else
	t_fail "degraded assembly" "before examine $n0 arrays, after '$n1'"
fi
tgt_stop
t_done
