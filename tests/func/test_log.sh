#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Log-structured arrays through the daemon: a raid5 with consistency_policy log over files,
# its capacity and space in bdev_raid_get_bdevs, written whole twice over NBD (more than its
# physical space: stripes freed by overwrites are used again) and read back; the same after a clean restart, and after the daemon is
# killed (the records after the last checkpoint replayed); uraid examine shows the tree's
# area; bad parameters answered with errors.
. "$(dirname "$0")/lib.sh"
SOCK=$T_DIR/uraid.sock
trap 'stop_daemon; t_cleanup' EXIT

need_nbd_tools "log arrays over NBD"

lg='{"method":"bdev_raid_create","params":{"name":"lg","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["F0","F1","F2","F3","F4"],"superblock":true,"consistency_policy":"log","overprovision_percent":20,"log_cleaner":"cost-benefit"}}'
t_cfg "$T_DIR/cfg.json" "$(t_files "$T_DIR" 24 0 1 2 3 4)" "$lg"
if ! start_daemon "$T_DIR/cfg.json" --no-save-config; then
	t_fail "daemon starts with a log array" "$(tail -5 "$T_DIR/serve.log")"
	t_done
	exit
fi
export URAID_RPC_SOCKET=$SOCK
info() { # the log object of lg, as "key=value ..."
	rpc bdev_raid_get_bdevs '{"category":"all"}' | python3 -c '
import json, sys
for b in json.load(sys.stdin):
    if b["name"] == "lg":
        print(b["consistency_policy"], " ".join("%s=%s" % kv for kv in sorted(b["log"].items())))'
}
val() { info | tr ' ' '\n' | sed -n "s/^$1=//p"; }
cap=$(val capacity_bytes)
phys=$(val physical_bytes)
if info | grep -q '^log ' && [ -n "$cap" ] && [ "$cap" -le $((phys * 81 / 100)) ] &&
	[ "$cap" -ge $((phys * 79 / 100)) ] &&
	[ "$(val mapped_bytes)" = 0 ] && [ "$(val free_bytes)" = "$phys" ] &&
	[ "$(val cleaner)" = cost-benefit ]; then
	t_pass "bdev_raid_get_bdevs: policy log, capacity $cap of $phys bytes (20% kept free), empty, cost-benefit cleaner"
else
	t_fail "bdev_raid_get_bdevs" "$(info)"
fi
"$URAID" export lg "$T_DIR/lg.nbd" >/dev/null || t_fail "export lg" "refused"
uri="nbd+unix:///lg?socket=$T_DIR/lg.nbd"
check "the export has the array's capacity" 0 "^$cap\$" nbdinfo --size "$uri"

nbd_write_twice "$uri" "$cap"
sleep 0.5
# Twice the capacity written into a physical space smaller than that: stripes were freed by
# the overwrites and used again.
if [ "$(val mapped_bytes)" = "$cap" ] && [ "$(val user_bytes_written)" = $((2 * cap)) ] &&
	[ $((2 * cap)) -gt "$phys" ] && [ "$(val commits)" -gt 0 ] &&
	[ "$(val free_bytes)" -ge $((phys - cap - phys / 50)) ]; then
	t_pass "full: every block mapped, stripes freed by overwrites and reused ($(val commits) commits)"
else
	t_fail "space after two passes" "$(info)"
fi
stop_daemon

# restarted_holds FILE: the daemon starts again, exports lg, and it reads back as FILE.
restarted_holds() {
	start_daemon "$T_DIR/cfg.json" --no-save-config &&
		"$URAID" export lg "$T_DIR/lg.nbd" >/dev/null && nbdcopy "$uri" - | cmp -s - "$1"
}
if restarted_holds "$T_DIR/b.bin"; then
	t_pass "after a clean restart the array holds the second pass"
else
	t_fail "clean restart" "$(tail -5 "$T_DIR/serve.log")"
fi

# Half of a third pass, flushed; then the daemon dies without shutting down.
head -c $((cap / 2)) /dev/urandom >"$T_DIR/c.bin"
cp "$T_DIR/b.bin" "$T_DIR/want.bin"
dd if="$T_DIR/c.bin" of="$T_DIR/want.bin" conv=notrunc status=none
nbdcopy --flush "$T_DIR/want.bin" "$uri" && kill_daemon "$T_DIR/f0.img" "$T_DIR/f4.img"
if restarted_holds "$T_DIR/want.bin"; then
	t_pass "killed after a flushed write: started again from its records, nothing lost"
else
	t_fail "restart after SIGKILL" "$(tail -5 "$T_DIR/serve.log")"
fi
check "the start after the kill replayed the tree's records" 0 "stripe tree loaded" \
	grep "lg: stripe tree loaded" "$T_DIR/serve.log"
check "uraid examine shows the stripe tree's area" 0 "consistency +log" \
	"$URAID" examine "$T_DIR/f2.img"

bad() { refused bdev_raid_create "$@"; } # WHAT PATTERN PARAMS
for i in 0 1 2; do rpc bdev_malloc_create "{\"name\":\"x$i\",\"num_blocks\":4096,\"block_size\":4096}" >/dev/null; done
bad "log on concat" "concat" \
	'{"name":"x","raid_level":"concat","strip_size_kb":64,"base_bdevs":["x0","x1","x2"],"superblock":true,"consistency_policy":"log"}'
bad "log without superblocks" "superblocks" \
	'{"name":"x","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["x0","x1","x2"],"consistency_policy":"log"}'
bad "over-provisioning above 50%" "over-provisioning" \
	'{"name":"x","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["x0","x1","x2"],"superblock":true,"consistency_policy":"log","overprovision_percent":60}'
bad "an unknown cleaner" "greedy or cost-benefit" \
	'{"name":"x","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["x0","x1","x2"],"superblock":true,"consistency_policy":"log","log_cleaner":"lazy"}'
bad "over-provisioning without the log" "log only" \
	'{"name":"x","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["x0","x1","x2"],"superblock":true,"overprovision_percent":20}'
bad "an unknown policy names log" "journal or log" \
	'{"name":"x","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["x0","x1","x2"],"consistency_policy":"lgo"}'
stop_daemon
t_done
