#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The zoned backend through the daemon: bdev_zone_block_create over a file bdev (SPDK's
# parameters and our limits), shown zoned by bdev_get_bdevs, kept by save_config, its zone
# table on the file across a restart of the daemon; bad parameters answered with errors; a
# zoned bdev refused as an array member.
. "$(dirname "$0")/lib.sh"
SOCK=$T_DIR/uraid.sock
trap 'stop_daemon; t_cleanup' EXIT

zb='{"method":"bdev_zone_block_create","params":{"name":"z0","base_bdev":"F0","zone_capacity":192,"optimal_open_zones":4,"max_open_zones":8,"max_active_zones":12}}'
t_cfg "$T_DIR/cfg.json" "$(t_files "$T_DIR" 16 0)" "$zb"
if start_daemon "$T_DIR/cfg.json" --no-save-config; then
	t_pass "daemon starts with a zone block bdev in its config"
else
	t_fail "daemon start" "$(tail -5 "$T_DIR/serve.log")"
fi
show=$(rpc bdev_get_bdevs '{"name":"z0"}' | python3 -c '
import json, sys
b = json.load(sys.stdin)[0]
print(b["zoned"], b["zone_size"], b["zone_capacity"], b["max_open_zones"], b["max_active_zones"],
      b["optimal_open_zones"], b["supported_io_types"]["zone_append"], b["num_blocks"] % 256)')
if [ "$show" = "True 256 192 8 12 4 True 0" ]; then
	t_pass "bdev_get_bdevs: zoned, zone size 256 (capacity 192 rounded up), limits, zone_append"
else
	t_fail "bdev_get_bdevs" "'$show'"
fi
if rpc save_config | grep -q '"bdev_zone_block_create"'; then
	t_pass "save_config repeats bdev_zone_block_create"
else
	t_fail "save_config" "no bdev_zone_block_create"
fi
bad() { refused bdev_zone_block_create "$@"; } # WHAT PATTERN PARAMS
rpc bdev_malloc_create '{"name":"m1","num_blocks":4096,"block_size":4096}' >/dev/null
# A zoned bdev is no member of an array that writes in place, nor of a log array without
# conventional zones for its superblock and stripe tree: refused, with the reason.
for i in 2 3; do rpc bdev_malloc_create "{\"name\":\"m$i\",\"num_blocks\":4096,\"block_size\":4096}" >/dev/null; done
out=$(rpc bdev_raid_create '{"name":"zr","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["z0","m2","m3"],"superblock":true}' 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "'z0' is zoned: zoned members need consistency_policy log"; then
	t_pass "refused: a zoned member in an in-place array"
else
	t_fail "zoned member in an array" "$out"
fi
out=$(rpc bdev_raid_create '{"name":"zr","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["z0","m2","m3"],"superblock":true,"consistency_policy":"log"}' 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "conventional_zones >="; then
	t_pass "refused: a zoned member without conventional zones in a log array"
else
	t_fail "zoned member in a log array" "$out"
fi
bad "zone capacity 0" "at least one block" \
	'{"name":"z1","base_bdev":"m1","zone_capacity":0,"optimal_open_zones":1}'
bad "zone size not a power of two" "power of two" \
	'{"name":"z1","base_bdev":"m1","zone_capacity":64,"zone_size":96,"optimal_open_zones":1}'
bad "capacity above the zone size" "larger than zone_size" \
	'{"name":"z1","base_bdev":"m1","zone_capacity":512,"zone_size":256,"optimal_open_zones":1}'
bad "base claimed by another zoned bdev" "in use" \
	'{"name":"z1","base_bdev":"F0","zone_capacity":64,"optimal_open_zones":1}'
bad "no such base" "does not exist" \
	'{"name":"z1","base_bdev":"nope","zone_capacity":64,"optimal_open_zones":1}'
bad "missing optimal_open_zones" "optimal_open_zones" \
	'{"name":"z1","base_bdev":"m1","zone_capacity":64}'
stop_daemon

# Over the same file with another capacity: refused, the table on the file names the first.
t_cfg "$T_DIR/other.json" "$(t_files "$T_DIR" 16 0)" \
	'{"method":"bdev_zone_block_create","params":{"name":"z0","base_bdev":"F0","zone_capacity":128,"optimal_open_zones":4}}'
if ! "$URAID" serve --config "$T_DIR/other.json" --rpc-socket "$T_DIR/o.sock" --no-save-config \
	>"$T_DIR/other.log" 2>&1 && grep -q "another geometry" "$T_DIR/other.log"; then
	t_pass "another geometry over the same file is refused at start"
else
	t_fail "geometry check" "$(tail -3 "$T_DIR/other.log")"
fi
if start_daemon "$T_DIR/cfg.json" --no-save-config &&
	[ "$(rpc bdev_get_bdevs '{"name":"z0"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["zoned"])')" = True ]; then
	t_pass "the same geometry starts again over its table"
else
	t_fail "restart" "$(tail -3 "$T_DIR/serve.log")"
fi
stop_daemon
t_done
