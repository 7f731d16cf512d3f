#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# uraid arrays inside SPDK's bdevperf (the module preloaded): writes of any size where SPDK's
# raid5f takes full stripes only, verify on raid6 and ec 4+2, a log-structured raid5 (one core
# and two), a member failed through SPDK's error bdev with a spare rebuilding its slot while
# verify runs; raid1 and raid10 written by bdevperf's own threads under claims on the strips.
. "$(dirname "$0")/lib.sh"
spdk_need 18

# two_cores WHAT CONFIG TARGET: 4 KiB verify with a bdevperf job on each of two cores (-C).
two_cores() {
	local rc line jobs
	if [ "$(nproc)" -lt 2 ]; then
		t_skip "$1 on two cores" "this machine has one CPU"
		return
	fi
	timeout 120 env LD_PRELOAD="$MODULE" "$SPDK_DIR/build/examples/bdevperf" --json "$2" \
		-m 0x3 -u -C -T "$3" -q 32 -o 4096 -w verify -t 2 -r "$T_DIR/bp2.sock" 2>&1 |
		tr '\r' '\n' >"$T_DIR/two.out"
	rc=${PIPESTATUS[0]}
	jobs=$(grep -c 'Core Mask 0x[12], workload: verify' "$T_DIR/two.out")
	line=$(grep -E '^\s*Total\s*:' "$T_DIR/two.out" | tail -n 1)
	if [ "$rc" -eq 0 ] && [ "$jobs" -eq 2 ] && [ "$(awk '{print $5}' <<<"$line")" = 0.00 ] &&
		[ "$(awk '{print int($3)}' <<<"$line")" -gt 0 ]; then
		t_pass "$1 on two cores (-m 0x3 -C): verify clean, $(awk '{print int($3)}' <<<"$line") IOPS"
	else
		t_fail "$1 on two cores" "rc $rc, $jobs jobs, '$line'"
	fi
}

create() { # NAME LEVEL MEMBERS_JSON [EXTRA_JSON]
	echo "{\"method\":\"bdev_uraid_create\",\"params\":{\"name\":\"$1\",\"raid_level\":\"$2\",\"strip_size_kb\":64,\"base_bdevs\":[$3]${4:+,$4}}}"
}

# raid5 takes 4 KiB random writes and reads them back right.
t_cfg "$T_DIR/r5.json" "$(malloc_cfg 5 64)" "$(create r5 raid5 "$(names m 5)")"
if bdevperf "$T_DIR/r5.json" -T r5 -q 32 -o 4096 -w verify -t 2 && [ "$BP_IOPS" -gt 0 ] &&
	[ "$BP_FAILS" = 0.00 ]; then
	t_pass "raid5: 4 KiB verify ($BP_IOPS IOPS, no failure)"
else
	t_fail "raid5: 4 KiB verify" "rc $?, IOPS $BP_IOPS, Fail/s $BP_FAILS"
fi
# The same writes on SPDK's raid5f over the same members fail: it takes full stripes only.
t_cfg "$T_DIR/r5f.json" "$(malloc_cfg 4 64)" \
	"{\"method\":\"bdev_raid_create\",\"params\":{\"name\":\"s5\",\"raid_level\":\"raid5f\",\"strip_size_kb\":64,\"base_bdevs\":[$(names m 4)]}}"
bdevperf "$T_DIR/r5f.json" -T s5 -q 32 -o 4096 -w randwrite -t 1
if [ "${BP_FAILS%.*}" -gt 0 ] 2>/dev/null; then
	t_pass "SPDK raid5f refuses the 4 KiB writes uraid's raid5 takes ($BP_FAILS failed/s)"
else
	t_fail "SPDK raid5f and 4 KiB writes" "expected failures, got Fail/s '$BP_FAILS'"
fi
# uraid's raid5f (SPDK's layout) takes them too.
t_cfg "$T_DIR/u5f.json" "$(malloc_cfg 4 64)" "$(create u5f raid5f "$(names m 4)")"
if bdevperf "$T_DIR/u5f.json" -T u5f -q 32 -o 4096 -w verify -t 1 && [ "$BP_FAILS" = 0.00 ]; then
	t_pass "raid5f layout: 4 KiB verify"
else
	t_fail "raid5f layout: 4 KiB verify" "IOPS $BP_IOPS, Fail/s $BP_FAILS"
fi

# raid6 and ec 4+2 verify, odd sizes included (bdevperf -o 12 KiB crosses strips).
t_cfg "$T_DIR/r6.json" "$(malloc_cfg 6 64)" "$(create r6 raid6 "$(names m 6)")"
if bdevperf "$T_DIR/r6.json" -T r6 -q 32 -o 12288 -w verify -t 2 && [ "$BP_FAILS" = 0.00 ] &&
	[ "$BP_IOPS" -gt 0 ]; then
	t_pass "raid6: 12 KiB verify ($BP_IOPS IOPS)"
else
	t_fail "raid6: 12 KiB verify" "IOPS $BP_IOPS, Fail/s $BP_FAILS"
fi
t_cfg "$T_DIR/ec.json" "$(malloc_cfg 6 64)" \
	"$(create ec ec "$(names m 6)" '"data_chunks":4,"parity_chunks":2')"
if bdevperf "$T_DIR/ec.json" -T ec -q 32 -o 4096 -w verify -t 2 && [ "$BP_FAILS" = 0.00 ] &&
	[ "$BP_IOPS" -gt 0 ]; then
	t_pass "ec 4+2: 4 KiB verify ($BP_IOPS IOPS)"
else
	t_fail "ec 4+2: 4 KiB verify" "IOPS $BP_IOPS, Fail/s $BP_FAILS"
fi

# A log-structured raid5 (superblocks on the malloc members, consistency_policy log): every
# write to fresh stripes through the log owner (the app thread), read back through the tree;
# on two cores the jobs on core 1 send theirs across.
t_cfg "$T_DIR/l5.json" "$(malloc_cfg 5 64)" \
	"$(create l5 raid5 "$(names m 5)" '"superblock":true,"consistency_policy":"log"')"
if bdevperf "$T_DIR/l5.json" -T l5 -q 32 -o 4096 -w verify -t 2 && [ "$BP_FAILS" = 0.00 ] &&
	[ "$BP_IOPS" -gt 0 ]; then
	t_pass "log raid5: 4 KiB verify ($BP_IOPS IOPS)"
else
	t_fail "log raid5: 4 KiB verify" "IOPS $BP_IOPS, Fail/s $BP_FAILS"
fi
two_cores "log raid5" "$T_DIR/l5.json" l5

# Two cores: stripe owners on the app thread and the module's thread on core 1, a bdevperf job
# on each core sending writes across to them.
two_cores raid5 "$T_DIR/r5.json" r5

# bp_serve OUT CONFIG CORES BDEVPERF_ARGS...: bdevperf over the module, waiting (-z) for
# perform_tests on its own RPC socket ($SOCK set to it); its output in OUT.
bp_serve() {
	local out=$1 cfg=$2 cores=$3
	shift 3
	SOCK=$T_DIR/bp.sock
	rm -f "$SOCK"
	env LD_PRELOAD="$MODULE" "$SPDK_DIR/build/examples/bdevperf" --json "$cfg" -m "$cores" -u \
		-r "$SOCK" -z "$@" >"$out" 2>&1 &
	TGT_PID=$!
	for _ in $(seq 150); do [ -S "$SOCK" ] && rpc spdk_get_version >/dev/null 2>&1 && break; sleep 0.1; done
}
# perform: run bp_serve's jobs; prints their IOPS and failed I/Os summed, and their count.
perform() {
	timeout 60 python3 "$SPDK_DIR/examples/bdev/bdevperf/bdevperf.py" -s "$SOCK" perform_tests |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["results"]; print(sum(int(x["iops"]) for x in r), sum(x["io_failed"] for x in r), len(r))'
}

# claims WHAT CONFIG TARGET CORES [none]: verify (a bdevperf job per core, -z), then the
# array's stats. The job threads own no strips or stripes: their writes of one strip (mirrors)
# or stripe (parity, policy none or bitmap) are claimed and run from there (claimed_writes),
# and verify reads back every one. With "none": no write may be claimed (parity writes are not
# claimed from the owner's own core).
claims() {
	local out claimed claims_ok
	bp_serve "$T_DIR/bpm.out" "$2" "$4" -C -T "$3" -q 32 -o 4096 -w verify -t 2
	out=$(perform)
	claimed=$(rpc bdev_uraid_get_stats "$3" | jq_py 'd.get("claimed_writes", 0)' 2>/dev/null)
	tgt_stop
	SOCK=$T_DIR/spdk.sock
	read -r iops failed jobs <<<"$out"
	claims_ok=false
	if [ "${5:-}" = none ]; then
		[ "$claimed" = 0 ] && claims_ok=true
	else
		[ "${claimed:-0}" -gt 0 ] 2>/dev/null && claims_ok=true
	fi
	if [ "${failed:-x}" = 0 ] && [ "${iops:-0}" -gt 0 ] 2>/dev/null && $claims_ok; then
		t_pass "$1: verify clean on $jobs job(s) ($iops IOPS), $claimed writes claimed"
	else
		t_fail "$1" "out '$out', claimed '$claimed'; $(tr '\r' '\n' <"$T_DIR/bpm.out" | tail -n 3)"
	fi
}
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
t_cfg "$T_DIR/r1.json" "$(malloc_cfg 2 64)" "$(create r1 raid1 "$(names m 2)")"
claims "raid1, one core" "$T_DIR/r1.json" r1 0x1
if [ "$(nproc)" -ge 2 ]; then
	claims "raid1, two cores" "$T_DIR/r1.json" r1 0x3
else
	t_skip "raid1, two cores" "this machine has one CPU"
fi
t_cfg "$T_DIR/r10.json" "$(malloc_cfg 4 64)" \
	"$(create r10 raid10 "$(names m 4)" '"copies":2')"
claims "raid10 x4, one core" "$T_DIR/r10.json" r10 0x1
claims "raid5 x5, one core (the job on the owners' core: nothing claimed)" "$T_DIR/r5.json" \
	r5 0x1 none
# Under the bitmap a write is claimed where its region's bit is on disk already.
t_cfg "$T_DIR/r5bm.json" "$(malloc_cfg 5 64)" \
	"$(create r5 raid5 "$(names m 5)" '"superblock":true,"consistency_policy":"bitmap"')"
if [ "$(nproc)" -ge 2 ]; then
	claims "raid5 x5, two cores" "$T_DIR/r5.json" r5 0x3
	claims "raid5 x5 under the bitmap, two cores" "$T_DIR/r5bm.json" r5 0x3
else
	t_skip "raid5 x5, two cores" "this machine has one CPU"
	t_skip "raid5 x5 under the bitmap, two cores" "this machine has one CPU"
fi

# A member fails through SPDK's error bdev while verify runs: the array goes on degraded, its
# spare takes the slot and is rebuilt, and verify sees no error before or after. On one core,
# and on two (-C), where each job's writes and degraded reads of the other core's stripes are
# claimed and run on the job's thread while the member fails and the spare is rebuilt.
errs=$(for i in 0 1 2 3 4 5; do printf '{"method":"bdev_error_create","params":{"base_name":"m%d"}},' "$i"; done)
t_cfg "$T_DIR/err.json" "$(malloc_cfg 7 32)" "${errs%,}" "$(create r6 raid6 "$(names EE_m 6)")" \
	'{"method":"bdev_uraid_add_spare","params":{"raid_bdev":"r6","base_bdev":"m6"}}'
state() {
	rpc bdev_uraid_get_bdevs | python3 -c '
import json, sys
a = json.load(sys.stdin)[0]
print(a["state"], " ".join("%s:%s" % (m["name"], m.get("state")) for m in a["base_bdevs_list"]))'
}
# member_fails WHERE CORES [-C]
member_fails() {
	local where=$1 iops failed st claimed
	# shellcheck disable=SC2086
	bp_serve "$T_DIR/bp.out" "$T_DIR/err.json" "$2" ${3:-} -T r6 -q 32 -o 4096 -w verify -t 3
	rpc bdev_error_inject_error EE_m1 write failure -n 1000000 >/dev/null
	read -r iops failed _ < <(perform)
	st=$(state)
	if [ "${failed:-x}" = 0 ] && [ "${iops:-0}" -gt 0 ] && grep -q "failed" "$T_DIR/bp.out" &&
		[[ "$st" == online* ]] && [[ "$st" != *EE_m1* ]]; then
		t_pass "error bdev, $where: member EE_m1 failed under verify, no I/O failed ($iops IOPS); now: $st"
	else
		t_fail "error bdev, $where" "IOPS $iops, failed $failed, state '$st'"
	fi
	for _ in $(seq 100); do grep -q "rebuild of m6 (slot 1) finished" "$T_DIR/bp.out" && break; sleep 0.1; done
	read -r iops failed _ < <(perform)
	claimed=$(rpc bdev_uraid_get_stats r6 | jq_py 'd.get("claimed_writes", 0)' 2>/dev/null)
	if grep -q "rebuild of m6 (slot 1) finished" "$T_DIR/bp.out" && [[ "$(state)" == *m6:active* ]] &&
		[ "${failed:-x}" = 0 ] && { [ -z "${3:-}" ] || [ "${claimed:-0}" -gt 0 ]; } 2>/dev/null; then
		t_pass "$where: spare m6 rebuilt slot 1; verify clean after ($iops IOPS, $claimed writes claimed)"
	else
		t_fail "$where: spare rebuild" "state '$(state)', failed $failed, claimed '$claimed'"
		tr '\r' '\n' <"$T_DIR/bp.out" | grep uraid | tail -5
	fi
	tgt_stop
}
member_fails "one core" 0x1
if [ "$(nproc)" -ge 2 ]; then
	member_fails "two cores, claims" 0x3 -C
else
	t_skip "error bdev, two cores" "this machine has one CPU"
	t_skip "two cores: spare rebuild" "this machine has one CPU"
fi
t_done
