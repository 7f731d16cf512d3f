#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Arrays through uraid bench on two reactor threads: every level with --verify (healthy, and
# with a member failing every I/O), SPDK-shaped bdev_raid_create, and clear errors for bad
# arrays.
. "$(dirname "$0")/lib.sh"

members() { # PREFIX COUNT MB: ram bdevs PREFIX0.., 16 MiB each unless MB given
	local i out=()
	for ((i = 0; i < $2; i++)); do
		out+=("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"$1$i\",\"num_blocks\":$((${3:-16} * 256)),\"block_size\":4096}}")
	done
	local IFS=,
	echo "${out[*]}"
}
list() { # PREFIX COUNT -> "PREFIX0","PREFIX1",...
	local i out=()
	for ((i = 0; i < $2; i++)); do out+=("\"$1$i\""); done
	local IFS=,
	echo "${out[*]}"
}

run_verify() { # NAME CONFIG OSIZE
	local out rc
	out=$("$URAID" bench --json "$2" -T r -q 16 -o "$3" -w randrw -M 30 -t 1 --verify -m 0x3 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && echo "$out" | grep -qE 'verify: [1-9][0-9]* blocks checked, 0 miscompares'; then
		t_pass "$1"
	else
		t_fail "$1" "rc=$rc: $(echo "$out" | tail -n 5)"
	fi
}

while read -r level n extra; do
	cfg="$T_DIR/$level-$n.json"
	t_cfg "$cfg" "$(members m "$n")" \
		"{\"method\":\"bdev_raid_create\",\"params\":{\"name\":\"r\",\"raid_level\":\"$level\",\"strip_size_kb\":16,\"base_bdevs\":[$(list m "$n")]$extra}}"
	run_verify "$level x$n verify 4k" "$cfg" 4k
	run_verify "$level x$n verify 36k" "$cfg" 36k
done <<'EOF2'
raid0 4
concat 3
raid1 2
raid10 3 ,"copies":2
raid5 5
raid5f 4
raid6 6
ec 11 ,"data_chunks":8,"parity_chunks":3
EOF2

# Degraded: members behind error bdevs, one failing every I/O from the start.
while read -r level n fail extra; do
	cfg="$T_DIR/deg-$level.json"
	errs=() names=()
	for ((i = 0; i < n; i++)); do
		errs+=("{\"method\":\"bdev_error_create\",\"params\":{\"base_name\":\"m$i\"}}")
		names+=("\"EE_m$i\"")
	done
	inj=()
	for f in ${fail//:/ }; do
		inj+=("{\"method\":\"bdev_error_inject_error\",\"params\":{\"name\":\"EE_m$f\",\"io_type\":\"all\",\"error_type\":\"failure\",\"num\":-1}}")
	done
	IFS=, eval 'e="${errs[*]}"; nm="${names[*]}"; ij="${inj[*]}"'
	t_cfg "$cfg" "$(members m "$n")" "$e" \
		"{\"method\":\"bdev_raid_create\",\"params\":{\"name\":\"r\",\"raid_level\":\"$level\",\"strip_size_kb\":16,\"base_bdevs\":[$nm]$extra}}" "$ij"
	run_verify "$level x$n with member(s) ${fail//:/,} failing" "$cfg" 12k
done <<'EOF2'
raid1 2 0
raid10 4 1
raid5 4 2
raid6 5 0:3
ec 7 1:4:6 ,"data_chunks":4,"parity_chunks":3
EOF2

# Arrays stack: raid0 over two raid1 arrays.
t_cfg "$T_DIR/stack.json" "$(members m 4)" \
	'{"method":"bdev_raid_create","params":{"name":"a","raid_level":"raid1","base_bdevs":["m0","m1"]}}' \
	'{"method":"bdev_raid_create","params":{"name":"b","raid_level":"raid1","base_bdevs":["m2","m3"]}}' \
	'{"method":"bdev_raid_create","params":{"name":"r","raid_level":"raid0","strip_size_kb":16,"base_bdevs":["a","b"]}}'
run_verify "raid0 over two raid1 arrays" "$T_DIR/stack.json" 20k

# What SPDK's rpc.py sends for: bdev_raid_create -n r -z 64 -r 5f -b "m0 m1 m2"
t_cfg "$T_DIR/spdk.json" "$(members m 3)" \
	'{"method":"bdev_raid_create","params":{"name":"r","raid_level":"5f","strip_size_kb":64,"base_bdevs":["m0","m1","m2"],"superblock":false}}'
run_verify "SPDK-shaped raid5f create" "$T_DIR/spdk.json" 128k

bad() { # NAME REGEX PARAMS
	local err rc
	t_cfg "$T_DIR/bad.json" "$(members m 4 1)" "{\"method\":\"bdev_raid_create\",\"params\":$3}"
	err=$("$URAID" bench --json "$T_DIR/bad.json" -q 1 -o 4k -w read -t 0.1 2>&1 >/dev/null)
	rc=$?
	if [ $rc -eq 2 ] && [ "$(printf '%s\n' "$err" | grep -c .)" -eq 1 ] &&
	   echo "$err" | grep -qE -- "$2"; then
		t_pass "bad array: $1"
	else
		t_fail "bad array: $1" "rc=$rc: $err"
	fi
}
bad "too few members" "raid6 needs at least 4 members, got 3" \
	'{"name":"r","raid_level":"raid6","base_bdevs":["m0","m1","m2"]}'
bad "strip not a power of two" "strip size 48 KiB is not a power of two" \
	'{"name":"r","raid_level":"raid0","strip_size_kb":48,"base_bdevs":["m0","m1"]}'
bad "duplicate member" "'m1' is listed twice" \
	'{"name":"r","raid_level":"raid1","base_bdevs":["m1","m1"]}'
bad "unknown level" "'raid_level' is 'raid7'" \
	'{"name":"r","raid_level":"raid7","base_bdevs":["m0","m1"]}'
bad "missing member" "'m9' does not exist" \
	'{"name":"r","raid_level":"raid1","base_bdevs":["m0","m9"]}'
bad "members not strings" "'base_bdevs' must be an array of strings" \
	'{"name":"r","raid_level":"raid1","base_bdevs":[1,2]}'

t_done
