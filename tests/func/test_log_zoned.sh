#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A log array over zoned members through the daemon: raid5 over five zoned bdevs (files under
# bdev_zone_block_create, the first zones conventional for the superblock and stripe tree),
# its zone groups in bdev_raid_get_bdevs, written whole twice over NBD (zones reset and used
# again) and read back; after the daemon is killed; a member failed and a zoned spare rebuilt
# zone by zone; a repairing scrub and an online replacement refused with the reason; zone
# geometries the array cannot use refused at creation.
. "$(dirname "$0")/lib.sh"
SOCK=$T_DIR/uraid.sock
trap 'stop_daemon; t_cleanup' EXIT

need_nbd_tools "zoned log arrays over NBD"

# zone NAME BASE CAPACITY CONVENTIONAL: zones of 1 MiB (256 blocks of 4 KiB), at most 6 open.
zone() {
	echo "{\"method\":\"bdev_zone_block_create\",\"params\":{\"name\":\"$1\",\"base_bdev\":\"$2\",\"zone_capacity\":$3,\"zone_size\":256,\"optimal_open_zones\":2,\"max_open_zones\":6,\"conventional_zones\":$4}}"
}
zones=()
for i in 0 1 2 3 4 5; do zones+=("$(zone Z$i F$i 192 2)"); done
lg='{"method":"bdev_raid_create","params":{"name":"lg","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["Z0","Z1","Z2","Z3","Z4"],"superblock":true,"consistency_policy":"log","overprovision_percent":25}}'
t_cfg "$T_DIR/cfg.json" "$(t_files "$T_DIR" 32 0 1 2 3 4 5)" "$(IFS=,; echo "${zones[*]}")" "$lg"
if ! start_daemon "$T_DIR/cfg.json" --no-save-config; then
	t_fail "daemon starts with a log array over zoned members" "$(tail -5 "$T_DIR/serve.log")"
	t_done
	exit
fi
export URAID_RPC_SOCKET=$SOCK
info() { # "capacity physical resets groups per_group open state..." of lg
	rpc bdev_raid_get_bdevs '{"category":"all"}' | python3 -c '
import json, sys
for b in json.load(sys.stdin):
    if b["name"] == "lg":
        l, z = b["log"], b["log"]["zones"]
        print(l["capacity_bytes"], l["physical_bytes"], z["resets"], z["groups"],
              z["stripes_per_group"], z["open_groups"], b["state"],
              " ".join(m["state"] for m in b["base_bdevs_list"]))'
}
read -r cap phys resets groups per open _ <<<"$(info)"
# 29 data zones (31 fit, 2 conventional) of 12 stripes each: 768 KiB of every 1 MiB zone
# is writable, 12 strips of 64 KiB.
if [ "$groups" = 29 ] && [ "$per" = 12 ] && [ "$resets" = 0 ] &&
	[ "$phys" = $((29 * 12 * 4 * 65536)) ] && [ "$cap" -le $((phys * 3 / 4)) ]; then
	t_pass "bdev_raid_get_bdevs: $groups zone groups of $per stripes, capacity $cap of $phys bytes"
else
	t_fail "bdev_raid_get_bdevs" "$(info)"
fi
"$URAID" export lg "$T_DIR/lg.nbd" >/dev/null || t_fail "export lg" "refused"
uri="nbd+unix:///lg?socket=$T_DIR/lg.nbd"
nbd_write_twice "$uri" "$cap"
read -r _ _ resets _ _ _ state members <<<"$(info)"
if [ "$resets" -gt 0 ] && [ "$state" = online ] && [ "$members" = "active active active active active" ]; then
	t_pass "zone groups reset and used again ($resets resets), every member in place"
else
	t_fail "zone resets" "$(info)"
fi
appends=$(rpc bdev_raid_get_stats '{"name":"lg"}' | python3 -c '
import json, sys
d = json.load(sys.stdin)
for b in (d if isinstance(d, list) else d.get("bdevs", [d])):
    if b.get("name") == "lg":
        print(b.get("zone_appends", 0))')
if [ "${appends:-0}" -gt 0 ]; then
	t_pass "bdev_raid_get_stats: the stripes went down as $appends zone appends"
else
	t_fail "zone appends counted" "$(rpc bdev_raid_get_stats '{"name":"lg"}' | head -c 600)"
fi

# Killed after a flushed write: the zones of half-written groups are set right at start.
head -c $((cap / 2)) /dev/urandom >"$T_DIR/c.bin"
cp "$T_DIR/b.bin" "$T_DIR/want.bin"
dd if="$T_DIR/c.bin" of="$T_DIR/want.bin" conv=notrunc status=none
nbdcopy --flush "$T_DIR/c.bin" "$uri" && kill_daemon "$T_DIR/f0.img" "$T_DIR/f4.img"
if start_daemon "$T_DIR/cfg.json" --no-save-config &&
	"$URAID" export lg "$T_DIR/lg.nbd" >/dev/null && nbdcopy "$uri" - | cmp -s - "$T_DIR/want.bin"; then
	t_pass "killed after a flushed write: started again, nothing lost"
else
	t_fail "restart after SIGKILL" "$(tail -5 "$T_DIR/serve.log")"
fi

# A member fails; the zoned spare takes its slot and is rebuilt zone by zone under writes.
refused bdev_raid_scrub "a repairing scrub" "zones do not take" '{"name":"lg","repair":true}'
refused bdev_raid_replace_base_bdev "an online replacement" "not replaced online" \
	'{"name":"lg","base_bdev":"Z1","new_base_bdev":"Z5"}'
rpc bdev_raid_fail_base_bdev '{"name":"Z2"}' >/dev/null
rpc bdev_raid_add_spare '{"raid_bdev":"lg","base_bdev":"Z5"}' >/dev/null
head -c $((cap / 4)) /dev/urandom >"$T_DIR/d.bin"
dd if="$T_DIR/d.bin" of="$T_DIR/want.bin" conv=notrunc status=none
nbdcopy --flush "$T_DIR/d.bin" "$uri"
for _ in $(seq 300); do
	read -r _ _ _ _ _ _ state members <<<"$(info)"
	[ "$state" = online ] && [ "$members" = "active active active active active" ] && break
	sleep 0.1
done
if [ "$members" = "active active active active active" ] &&
	grep -q "rebuild of Z5 (slot 2) finished" "$T_DIR/serve.log" &&
	nbdcopy "$uri" - | cmp -s - "$T_DIR/want.bin"; then
	t_pass "a zoned spare rebuilt zone by zone under writes; the array reads back whole"
else
	t_fail "rebuild onto a zoned spare" "$(info); $(grep -E 'rebuild|zones of' "$T_DIR/serve.log" | tail -3)"
fi
check "scrub finds every stripe consistent" 0 '"mismatched_stripes": \[\]' \
	rpc bdev_raid_scrub '{"name":"lg"}'

# Zone geometries a log array cannot use.
bad() { refused bdev_raid_create "$@"; } # WHAT PATTERN PARAMS
for i in 0 1 2 3 4; do rpc bdev_malloc_create "{\"name\":\"x$i\",\"num_blocks\":8192,\"block_size\":4096}" >/dev/null; done
rpc bdev_zone_block_create '{"name":"y0","base_bdev":"x0","zone_capacity":100,"zone_size":256,"optimal_open_zones":1,"conventional_zones":2}' >/dev/null
rpc bdev_zone_block_create '{"name":"y4","base_bdev":"x4","zone_capacity":100,"zone_size":256,"optimal_open_zones":1,"conventional_zones":2}' >/dev/null
rpc bdev_zone_block_create '{"name":"y1","base_bdev":"x1","zone_capacity":192,"zone_size":256,"optimal_open_zones":1}' >/dev/null
rpc bdev_zone_block_create '{"name":"y2","base_bdev":"x2","zone_capacity":192,"zone_size":256,"optimal_open_zones":1,"conventional_zones":2}' >/dev/null
rpc bdev_zone_block_create '{"name":"y3","base_bdev":"x3","zone_capacity":128,"zone_size":256,"optimal_open_zones":1,"conventional_zones":2}' >/dev/null
bad "zoned members in an in-place array" "need consistency_policy log" \
	'{"name":"x","raid_level":"raid1","base_bdevs":["y2","y3"],"superblock":true}'
bad "zone capacity not whole strips" "whole strips" \
	'{"name":"x","raid_level":"raid1","strip_size_kb":64,"base_bdevs":["y0","y4"],"superblock":true,"consistency_policy":"log"}'
bad "no conventional zones for the tree" "conventional_zones >=" \
	'{"name":"x","raid_level":"raid1","strip_size_kb":64,"base_bdevs":["y1","y2"],"superblock":true,"consistency_policy":"log"}'
bad "zone geometries that differ" "zone geometries differ" \
	'{"name":"x","raid_level":"raid1","strip_size_kb":64,"base_bdevs":["y2","y3"],"superblock":true,"consistency_policy":"log"}'
stop_daemon
t_done
