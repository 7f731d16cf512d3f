#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# uraid bench end to end: SPDK-style configs and flags, JSON output, --verify catching a
# corrupted block, and one clear line plus a non-zero exit for every kind of bad input.
. "$(dirname "$0")/lib.sh"

ram='{"method":"bdev_malloc_create","params":{"name":"Malloc0","num_blocks":8192,"block_size":4096}}'
null='{"method":"bdev_null_create","params":{"name":"Null0","num_blocks":8192,"block_size":4096}}'
t_cfg "$T_DIR/ram_null.json" "$ram" "$null"

# expect NAME RC PATTERN ARGS...: run uraid bench ARGS; pass if it exits RC and its output
# (stdout and stderr) matches every |-free ERE in PATTERN, patterns separated by " && ".
expect() {
	local name=$1 want=$2 pats=$3 out rc p ok=1; shift 3
	out=$("$URAID" bench "$@" 2>&1)
	rc=$?
	[ $rc -eq "$want" ] || ok=0
	while [ -n "$pats" ]; do
		p=${pats%% && *}
		[ "$p" = "$pats" ] && pats="" || pats=${pats#* && }
		echo "$out" | grep -qE -- "$p" || ok=0
	done
	if [ $ok -eq 1 ]; then t_pass "$name"; else t_fail "$name" "rc=$rc: $out"; fi
}

# 1. null and ram, randread and randwrite at QD128 on one reactor.
for w in randread randwrite; do
	expect "bench $w on null and ram" 0 '^Null0 +0 +[0-9]{4,} && ^Malloc0 +0 +[0-9]{4,} && ^Total' \
		--json "$T_DIR/ram_null.json" -q 128 -o 4096 -w $w -t 0.5
done

# 2. JSON output.
expect "--output json" 0 '"iops" && "p99_us" && "workload": "randrw"' \
	--json "$T_DIR/ram_null.json" -T Malloc0 -q 8 -o 8k -w randrw -M 70 -t 0.3 --output json

# 3. --verify passes on a healthy bdev, on two reactors, and reports what it checked.
expect "--verify on a healthy bdev" 0 'verify: [1-9][0-9]* blocks checked, 0 miscompares' \
	--json "$T_DIR/ram_null.json" -T Malloc0 -q 16 -o 16k -w randwrite -t 0.5 --verify -m 0x3

# 4. --verify catches a block corrupted on its way back (SPDK's corrupt_data injection) ...
# (The range keeps the first 8 KiB out of it: the end of every config load examines each
# unclaimed bdev for superblocks, and that read would use up a one-shot injection.)
t_cfg "$T_DIR/corrupt.json" "$ram" \
	'{"method":"bdev_error_create","params":{"base_name":"Malloc0"}}' \
	'{"method":"bdev_fault_inject","params":{"name":"EE_Malloc0","io_type":"read","error_type":"corrupt_data","num":1,"corrupt_offset":1000,"corrupt_value":4,"offset_blocks":2,"num_blocks":8190}}'
expect "--verify catches a corrupted block" 1 'verify FAILED: 1 blocks && contents corrupted' \
	--json "$T_DIR/corrupt.json" -T EE_Malloc0 -q 4 -o 4096 -w randwrite -t 0.5 --verify
# ... and names a block that landed in the wrong place (its address field corrupted on write).
t_cfg "$T_DIR/corrupt_w.json" "$ram" \
	'{"method":"bdev_error_create","params":{"base_name":"Malloc0"}}' \
	'{"method":"bdev_error_inject_error","params":{"name":"EE_Malloc0","io_type":"write","error_type":"corrupt_data","num":1,"corrupt_offset":8,"corrupt_value":1}}'
expect "--verify names a misplaced block" 1 'expected generation 1, found block [0-9]+ generation 1' \
	--json "$T_DIR/corrupt_w.json" -T EE_Malloc0 -q 1 -o 4096 -w randwrite -t 0.3 --verify

# 5. File members through io_uring, with verify.
t_cfg "$T_DIR/file.json" \
	"{\"method\":\"bdev_uring_create\",\"params\":{\"name\":\"F0\",\"filename\":\"$T_DIR/f0.img\",\"size_mb\":16}}"
expect "file bdev with --verify" 0 'verify: [1-9][0-9]* blocks checked, 0 miscompares' \
	--json "$T_DIR/file.json" -q 32 -o 4096 -w randwrite -t 0.5 --verify

# 6. --xor: the encoder's limit for full-stripe writes, in text and JSON.
expect "--xor 3 prints a stripe rate" 0 '^xor 3 x 65536 bytes into one, 32 stripes in turn: [1-9][0-9]*\.[0-9] stripes/s' \
	--xor 3 -o 192k -q 32 -t 0.2
expect "--xor --output json" 0 '"columns":4 && "column_bytes":16384 && "stripes_per_s":[1-9]' \
	--xor 4 -o 64k -t 0.2 --output json
# --stripe: the same with the member copies (the memory's limit for full stripes over ram).
expect "--stripe 3 prints a stripe rate" 0 '^stripe 3 x 65536 bytes and their parity to 4 areas, 32 stripes in turn: [1-9][0-9]*\.[0-9] stripes/s' \
	--stripe 3 -o 192k -q 32 -t 0.2
expect "--stripe --output json" 0 '"stripe": && "columns":4 && "column_bytes":16384 && "stripes_per_s":[1-9]' \
	--stripe 4 -o 64k -t 0.2 --output json
# --memcpy -w randwrite: the limit of small writes over ram members (a mirror's: --copies 2).
expect "--memcpy -w randwrite --copies 2" 0 '^memcpy 4096 bytes to random places, 2 copies: [1-9][0-9]*\.[0-9] pieces/s, [1-9][0-9.]* MiB/s' \
	--memcpy -o 4k -w randwrite --copies 2 -q 8 -t 0.2
# ... -w randread: of small reads; --ahead: each place's first lines started early (as ram).
expect "--memcpy -w randread" 0 '^memcpy 4096 bytes from random places: [1-9][0-9]*\.[0-9] pieces/s' \
	--memcpy -o 4k -w randread -q 8 -t 0.2
expect "--memcpy -w randwrite --ahead 4" 0 '^memcpy 4096 bytes to random places, 2 copies, 2 lines started 4 pieces ahead: [1-9][0-9]*\.[0-9] pieces/s' \
	--memcpy -o 4k -w randwrite --copies 2 --ahead 4 -q 8 -t 0.2
expect "--memcpy -w randread --ahead 1" 0 '^memcpy 4096 bytes from random places, 2 lines started 1 piece ahead: [1-9][0-9]*\.[0-9] pieces/s' \
	--memcpy -o 4k -w randread --ahead 1 -q 8 -t 0.2

# 7. Bad input: exit 2 (not a crash), and exactly one line that says what is wrong.
printf '{"subsystems": [ {"subsystem": "bdev", ' >"$T_DIR/malformed.json"
t_cfg "$T_DIR/unknown.json" '{"method":"bdev_teleport_create","params":{}}'
t_cfg "$T_DIR/badparam.json" \
	'{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":16,"block_size":4000}}'
truncate -s 5000 "$T_DIR/odd.img"
t_cfg "$T_DIR/oddsize.json" \
	"{\"method\":\"bdev_uring_create\",\"params\":{\"name\":\"F\",\"filename\":\"$T_DIR/odd.img\"}}"
t_cfg "$T_DIR/missing.json" \
	"{\"method\":\"bdev_uring_create\",\"params\":{\"name\":\"F\",\"filename\":\"$T_DIR/nope.img\"}}"
t_cfg "$T_DIR/tiny.json" \
	'{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":4,"block_size":4096}}'

bad() { # name expected-regex args...
	local name=$1 want=$2; shift 2
	local err rc lines
	err=$("$URAID" bench "$@" 2>&1 >/dev/null)
	rc=$?
	lines=$(printf '%s\n' "$err" | grep -c .)
	if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && echo "$err" | grep -qE -- "$want"; then
		t_pass "bad input: $name"
	else
		t_fail "bad input: $name" "rc=$rc lines=$lines: $err"
	fi
}
std=(-q 1 -o 4096 -w randread -t 0.1)
bad "config file missing" "$T_DIR/none.json" --json "$T_DIR/none.json" "${std[@]}"
bad "malformed JSON" "malformed.json:1:[0-9]+: malformed JSON" --json "$T_DIR/malformed.json" "${std[@]}"
bad "unknown method" "unknown method 'bdev_teleport_create'" --json "$T_DIR/unknown.json" "${std[@]}"
bad "bad block size" "'block_size' is 4000" --json "$T_DIR/badparam.json" "${std[@]}"
bad "file size not a multiple" "not a non-zero multiple of the block size" --json "$T_DIR/oddsize.json" "${std[@]}"
bad "file missing" "nope.img: No such file" --json "$T_DIR/missing.json" "${std[@]}"
bad "I/O beyond the end" "smaller than one I/O" --json "$T_DIR/tiny.json" -q 1 -o 1m -w randread -t 0.1
bad "I/O size not a block multiple" "not a multiple of M's block size" --json "$T_DIR/tiny.json" -q 1 -o 1000 -w randread -t 0.1
bad "unknown target" "-T nope: no such bdev" --json "$T_DIR/tiny.json" -T nope "${std[@]}"
bad "unknown workload" "-w sideways" --json "$T_DIR/tiny.json" -q 1 -o 4096 -w sideways -t 0.1
bad "queue depth 0" "-q 0" --json "$T_DIR/tiny.json" -q 0 -o 4096 -w read -t 0.1
bad "missing flags" "are required" --json "$T_DIR/tiny.json"
bad "bad core mask" "core mask" --json "$T_DIR/tiny.json" -m zz "${std[@]}"
bad "--xor of one column" "--xor 1: columns must be 2..64" --xor 1 -o 64k -t 0.1
bad "--xor stripe not 64 bytes a column" "-o must be a multiple of 192" --xor 3 -o 64k -t 0.1
bad "--xor without -t" "--xor needs -o and -t" --xor 3 -o 192k
bad "--stripe of one column" "--stripe 1: columns must be 2..64" --stripe 1 -o 64k -t 0.1
bad "--stripe column over an area" "at most 128 MiB a column" --stripe 2 -o 512m -t 0.1
bad "--stripe without -t" "--stripe needs -o and -t" --stripe 3 -o 192k
bad "--copies without --memcpy -w randwrite" "--copies goes with --memcpy -w randwrite" --memcpy -o 4k --copies 2 -t 0.1
bad "--copies with --xor" "--copies goes with --memcpy -w randwrite" --xor 3 -o 192k --copies 2 -t 0.1
bad "--copies out of range" "--copies 9: 1 to 8" --memcpy -o 4k -w randwrite --copies 9 -t 0.1
bad "--memcpy of sequential reads" "--memcpy takes -w write, randwrite or randread" --memcpy -o 4k -w read -t 0.1
bad "--memcpy -w randread over an area" "--memcpy -w randread: -o is at most 128 MiB" --memcpy -o 256m -w randread -t 0.1
bad "--ahead without a random --memcpy" "--ahead goes with --memcpy -w randread or randwrite" --memcpy -o 4k -w write --ahead 2 -t 0.1
bad "--ahead with a run" "--ahead goes with --memcpy -w randread or randwrite" --json "$T_DIR/tiny.json" --ahead 2 "${std[@]}"
bad "--ahead out of range" "--ahead 17: 1 to 16" --memcpy -o 4k -w randread --ahead 17 -t 0.1
bad "--ahead 0" "--ahead 0: 1 to 16" --memcpy -o 4k -w randread --ahead 0 -t 0.1
bad "offline core" "not online" --json "$T_DIR/tiny.json" -m 0x8000000000000000 "${std[@]}"

t_done
