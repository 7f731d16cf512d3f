#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The drive model through the daemon and the bench: bdev_drive_create over a ram bdev, shown
# by bdev_get_bdevs with its limits, kept by save_config, deleted; bad parameters answered
# with errors; `uraid bench` over it never goes faster than the drive's bandwidth or IOPS,
# and a run that queues behind it finishes (the reactor keeps polling while answers wait).
. "$(dirname "$0")/lib.sh"
SOCK=$T_DIR/uraid.sock
trap 'stop_daemon; t_cleanup' EXIT

m='{"method":"bdev_malloc_create","params":{"name":"m0","num_blocks":16384,"block_size":4096}}'
d='{"method":"bdev_drive_create","params":{"name":"d0","base_bdev_name":"m0","read_mb_s":400,"write_mb_s":200,"write_iops":5000,"read_latency_us":80,"write_latency_us":80}}'
t_cfg "$T_DIR/cfg.json" "$m" "$d"

# The bench, on its own (no daemon): never faster than the drive (a little over its rate is
# the rounding of the run's length), and the run finishes.
bench() { # MASK WORKLOAD SIZE QD -> MiB/s IOPS
	timeout 60 "$URAID" bench --json "$T_DIR/cfg.json" -T d0 -m "$1" -q "$4" -o "$3" -w "$2" -t 1 |
		awk '$1 == "Total" { print $3, $2 }'
}
within() { # WHAT VALUE LIMIT UNIT
	if [ -n "$2" ] && awk -v v="$2" -v l="$3" 'BEGIN { exit !(v > 0 && v <= l * 1.05) }'; then
		t_pass "bench: $1 at $2 $4, within the drive's $3"
	else
		t_fail "bench over the drive ($1)" "'$2' $4, limit $3"
	fi
}
mib() { awk -v mb="$1" 'BEGIN { printf "%.1f", mb * 1e6 / 1048576 }'; }
read -r w _ <<<"$(bench 0x1 write 128k 32)"
within "128 KiB writes at QD32" "$w" "$(mib 200)" MiB/s
read -r r _ <<<"$(bench 0x1 read 128k 32)"
within "128 KiB reads at QD32" "$r" "$(mib 400)" MiB/s
read -r w2 _ <<<"$(bench 0x3 write 128k 16)" # two reactors share the one drive
within "two reactors writing together" "$w2" "$(mib 200)" MiB/s
read -r _ iops <<<"$(bench 0x1 randwrite 4k 64)"
within "4 KiB random writes" "$iops" 5000 IOPS

if start_daemon "$T_DIR/cfg.json" --no-save-config; then
	t_pass "daemon starts with a drive model in its config"
else
	t_fail "daemon start" "$(tail -5 "$T_DIR/serve.log")"
	t_done
	exit
fi
show=$(rpc bdev_get_bdevs '{"name":"d0"}' | python3 -c '
import json, sys
b = json.load(sys.stdin)[0]
d = b["driver_specific"]["drive"]
print(b["product_name"], b["num_blocks"], d["read_mb_s"], d["write_mb_s"], d["read_iops"],
      d["write_iops"], d["read_latency_us"], d["write_latency_us"])')
if [ "$show" = "Drive model 16384 400 200 0 5000 80 80" ]; then
	t_pass "bdev_get_bdevs: the drive's limits"
else
	t_fail "bdev_get_bdevs" "'$show'"
fi
if rpc save_config | grep -q '"bdev_drive_create"'; then
	t_pass "save_config repeats bdev_drive_create"
else
	t_fail "save_config" "no bdev_drive_create"
fi
rpc bdev_malloc_create '{"name":"m1","num_blocks":1024,"block_size":4096}' >/dev/null
refused bdev_drive_create "no such base" "does not exist" \
	'{"name":"d1","base_bdev_name":"nope","write_mb_s":10}'
refused bdev_drive_create "base in use" "is in use" \
	'{"name":"d1","base_bdev_name":"m0","write_mb_s":10}'
refused bdev_drive_create "a limit beyond any drive" "limits are up to" \
	'{"name":"d1","base_bdev_name":"m1","write_mb_s":5000000}'
refused bdev_drive_create "a negative limit" "read_iops" \
	'{"name":"d1","base_bdev_name":"m1","read_iops":-1}'
refused bdev_drive_create "no base_bdev_name" "base_bdev_name" '{"name":"d1"}'
refused bdev_drive_delete "not a drive model" "Drive model" '{"name":"m1"}'
if rpc bdev_drive_delete '{"name":"d0"}' >/dev/null && ! rpc bdev_get_bdevs '{"name":"d0"}' >/dev/null 2>&1 &&
	rpc bdev_drive_create '{"name":"d2","base_bdev_name":"m0","read_mb_s":100}' >/dev/null; then
	t_pass "bdev_drive_delete frees its base for another"
else
	t_fail "bdev_drive_delete" "$(rpc bdev_get_bdevs 2>&1 | head -c 300)"
fi
stop_daemon
t_done
