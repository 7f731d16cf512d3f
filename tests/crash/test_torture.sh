#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Crash torture (uraid torture): power cuts at random points under a random workload on
# fault-backend members, each followed by reassembly, recovery, a check of every block against
# the model and of the parity, a member failure and a second check. Under ppl and on mirrors
# members also fail, and spares rebuild (or the failed member comes back and, under the bitmap,
# catches up), during the load, so cuts find arrays degraded or rebuilding. A bounded number of cycles per level under policies bitmap, ppl and journal must
# break no rule (the journal's rule is stricter: every acknowledged write survives); under
# policy none the harness must catch the write hole (so it is known to be able to fail), and
# without power cuts (--no-cut) lose nothing at all; a seed replays exactly.
# URAID_TORTURE_CYCLES sets the cycles per level (default 150).
. "$(dirname "$0")/../func/lib.sh"

cycles=${URAID_TORTURE_CYCLES:-150}
# CI runs a fixed seed (the same run every time); elsewhere each run tries a new one.
if [ "${CI:-}" = true ]; then
	seed=${URAID_TEST_SEED:-20261203}
else
	seed=${URAID_TEST_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
fi
echo "seed $seed (URAID_TEST_SEED replays it)"

# torture NAME EXPECTED_RC ARGS...
torture() {
	local name=$1 want=$2 rc; shift 2
	"$URAID" torture --seed "$seed" "$@" >"$T_DIR/$name.out" 2>&1
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		t_pass "$name: $(grep -E '^torture: seed [0-9]+:' "$T_DIR/$name.out")"
	else
		t_fail "$name" "exit $rc, expected $want"
		sed 's/^/    /' "$T_DIR/$name.out" | tail -n 15
	fi
}

# at_point NAME POINT ARGS...: a torture row with the power going at a named crash point,
# which must be reached.
at_point() {
	local name=$1 point=$2; shift 2
	torture "$name" 0 "$@" --crash-point "$point" --cycles 40
	if grep -q "crash point $point: the power went there in [1-9]" "$T_DIR/$name.out"; then
		t_pass "$name: $(grep -o 'the power went there in [0-9]* of [0-9]* cycles' \
			"$T_DIR/$name.out")"
	else
		t_fail "$name" "the crash point was never reached"
	fi
}

# parity_levels SUFFIX ARGS...: every parity level (raid5, raid5f, raid6 over 5 and over 4
# members, ec 4+2) under the same options.
parity_levels() {
	local suffix=$1; shift
	torture "raid5-$suffix" 0 --level raid5 --members 4 "$@" --cycles "$cycles"
	torture "raid5f-$suffix" 0 --level raid5f --members 3 "$@" --cycles "$cycles"
	torture "raid6-$suffix" 0 --level raid6 --members 5 "$@" --cycles "$cycles"
	torture "raid6-4-$suffix" 0 --level raid6 --members 4 "$@" --cycles "$cycles"
	torture "ec-$suffix" 0 --level ec --members 6 --data-chunks 4 --parity-chunks 2 "$@" \
		--cycles "$cycles"
}

# Every redundant level under the bitmap: nothing acknowledged and flushed is lost, nothing
# else turns to garbage, parity and copies agree, a member can then be lost.
torture raid1-bitmap 0 --level raid1 --members 2 --policy bitmap --cycles "$cycles"
torture raid10-bitmap 0 --level raid10 --members 4 --policy bitmap --cycles "$cycles"
# ... where members failed under the load come back (then, or at the next assembly) and
# catch up on what they missed instead of a full rebuild.
for name in raid1-bitmap raid10-bitmap; do
	if grep -q '^torture: members came back and caught up: [0-9]* units rebuilt, [1-9]' \
		"$T_DIR/$name.out"; then
		t_pass "$name: $(grep '^torture: members came back' "$T_DIR/$name.out")"
	else
		t_fail "$name: no member came back and caught up"
	fi
done
# Regressions: seeds that broke a rule once, replayed exactly (each names its cause).
# regression NAME ARGS...: must exit 0 with 0 violations.
regression() {
	local name=$1; shift
	"$URAID" torture "$@" >"$T_DIR/$name.out" 2>&1
	if [ $? -eq 0 ] && grep -qE '^torture: seed [0-9]+: [0-9]+ cycles, .* 0 violations' \
		"$T_DIR/$name.out"; then
		t_pass "regression $name: $(grep -E '^torture: seed [0-9]+:' "$T_DIR/$name.out")"
	else
		t_fail "regression $name" "a rule broken"
		grep -E '^torture' "$T_DIR/$name.out" | tail -n 10 | sed 's/^/    /'
	fi
}
# ppl: a full-stripe write over a member being rebuilt (a column its entry cannot name as
# written) logged a partial parity taken from a parity buffer not encoded yet; recovery wrote
# parity from it, and blocks read through that parity came back as garbage (raid5 x4,
# cycle 22).
regression raid5-ppl-partial-before-encode --level raid5 --members 4 --policy ppl --ops 400 \
	--member-kb 2048 --seed 2253676758067706760 --cycles 23 --load-failures
# A spare that failed as the power went, while being rebuilt, came back trusted below its
# checkpoint, and raid10's resync copied its stale copy over a write acknowledged with FUA.
regression raid10-spare-failed-unrecorded --level raid10 --members 6 --policy bitmap \
	--ops 400 --member-kb 2048 --seed 777003 --cycles 1530 --load-failures
# The power went inside a catch-up's unit with the array beyond its tolerance: the catch-up
# stopped on -EIO and started again at once, forever (the cut's I/Os never drained).
regression raid10-offline-rebuild-spin --level raid10 --members 5 --policy bitmap \
	--seed 2700970087756235394 --cycles 125 --load-failures --crash-point rebuild-unit
# The power went as a journal flush came back; the array went offline from member failures
# with a write-back write parked for log space, and nothing woke it.
regression raid6-offline-parked-write --level raid6 --members 4 --policy journal \
	--write-back --seed 1296083391862930663 --cycles 140 --load-failures \
	--crash-point log-flushed
# A slot let go (its failed member released) has no device: asking the array which I/O types
# it takes read that slot's NULL descriptor and crashed.
regression raid1-slot-without-device --level raid1 --members 2 --policy bitmap \
	--seed 14985318362054489387 --cycles 2030 --load-failures --crash-point sb-flushed
# Under journal write-back a stripe's next update waited for log entries that retire in ring
# order after another stripe's, and the flush that retires those was never started: a write
# hung with nothing else in flight (no power cut needed; about two minutes to reach).
regression raid5f-wb-waiter-never-woken --level raid5f --members 3 --policy journal \
	--journal-bdev --write-back --seed 1135132192201170382 --cycles 6090 --load-failures
# Log arrays wrote each stripe tree block to copies members on raid10, which survives a lost
# member in each group of copies: two failures took both copies of the last records, and
# writes acknowledged before the cut came back old.
regression raid10-log-tree-copies --level raid10 --members 4 --policy log --ops 400 \
	--member-kb 2048 --seed 6475206410175667582 --cycles 167 --load-failures --ack-durable
# Checkpoint records took numbers in the log array's ring: a replaced member took the only
# copy left of one, and the replay after the next checkpoint stopped at that gap, before
# the records of writes acknowledged since (checkpoints now live in two anchor blocks).
regression raid5-log-checkpoint-in-chain --level raid5 --members 4 --policy log --ops 400 \
	--member-kb 2048 --seed 18212291234198592801 --cycles 5 --load-failures --ack-durable \
	--crash-point tree-recorded
# The log cleaner's moves waited in an open row for it to fill; with every other row full of
# live data, or being cleaned into that row, no victim was left, writes waited for space and
# nothing sealed the row (raid1 x2, a hang at cycle 596; the row now goes then).
regression raid1-log-moves-never-sealed --level raid1 --members 2 --policy log --ops 400 \
	--member-kb 2048 --seed 537669423983903695 --cycles 596 --load-failures --ack-durable
# Zoned log arrays: a rebuild reset its target's zones before the superblocks said it was
# being rebuilt; the power went, the member came back as active, and acknowledged blocks
# read as zeroes (raid5 x4, cycle 28, the power going inside a checkpoint).
regression raid5-log-zoned-reset-before-recorded --level raid5 --members 4 --policy log \
	--zoned --ops 400 --member-kb 2048 --seed 11820267681132201992 --cycles 40 \
	--crash-point tree-pages
# ... a crash left every zone group holding some live data and the open ones finished: no
# free row for the cleaner to start from, and writes waited for ever (raid10 x4, cycle 5).
regression raid10-log-zoned-no-free-row --level raid10 --members 4 --policy log --zoned \
	--ops 400 --member-kb 2048 --seed 11669856183344883870 --cycles 5 --load-failures \
	--ack-durable
# A member failed and added back as a spare (same slot, same run) kept its ppl entries from
# its first stay; with nothing newer on that ring a recovery took one for live and decoded a
# column lost at the cut from a partial parity older than the data (about half a minute).
regression ec-ppl-stale-entries-of-returned-member --level ec --members 6 --data-chunks 4 \
	--parity-chunks 2 --policy ppl --ops 400 --member-kb 2048 --seed 7862885809341578762 \
	--cycles 1288 --load-failures
# The power tore an entry written into reused ring space, and the newer headers that held the
# ring's floor with it: an older, retired entry of a stripe looked live and decoded a column
# lost at the cut from a stale partial parity (ppl rings now have the journal's anchors).
regression ec-ppl-floor-lost-to-a-torn-write --level ec --members 5 --data-chunks 4 \
	--parity-chunks 1 --policy ppl --ops 400 --member-kb 2048 --seed 12455968562084948043 \
	--cycles 1457 --load-failures
# draid: the power went after a copy back onto a new member was recorded done but before
# the round that freed its distributed spare; assembled, the spare stayed draining for ever,
# and a later fill into the other spare decoded its columns as lost too (two lost, m = 1:
# the fill failed and started again without end).
regression draid-drained-spare-never-freed --level draid --members 7 --data-chunks 3 \
	--parity-chunks 1 --distributed-spares 2 --policy journal --ops 400 --member-kb 2048 \
	--seed 7965703004492634727 --cycles 24 --load-failures --ack-durable
# draid, ppl: a copy back finished and was recorded, the power went before the round that
# frees the spare, and a write torn by the cut had logged its parity on the spare's member;
# assembly freed the spare before the recovery, which then refused that entry (its column
# was back on the slot) and left the stripe's parity wrong.
regression draid-drained-spare-freed-before-recovery --level draid --members 7 \
	--data-chunks 3 --parity-chunks 1 --distributed-spares 2 --policy ppl --ops 400 \
	--member-kb 2048 --seed 7655194373640357893 --cycles 710 --load-failures
# draid, a journal device: the log areas of a failed slot stay on the journal device, but the
# anchors that move a ring's floor were skipped for a failed member; the slot's member came
# back (a copy back from the distributed spare), and a recovery took a retired update there
# for live and wrote its old data over an acknowledged write (cycle 46). Cycle 3 of the same
# seed: a newer update's header below its ring's floor was dropped, where it proves that an
# older update of the stripe on another ring retired.
regression draid-journal-dev-returned-slot-floor --level draid --members 7 --data-chunks 3 \
	--parity-chunks 1 --distributed-spares 2 --policy journal --journal-bdev --ops 400 \
	--member-kb 2048 --seed 1531015699754113960 --cycles 46 --load-failures --ack-durable
# draid, journal write-back: a write's partial-parity entry, taken in its parity member's
# ring with the data's, was written to the distributed spare that took that parity when the
# member failed mid-update, at the same place: over a live copy of another write's data in
# the spare's own ring. With the first copy on the failed member, that write (acknowledged)
# was lost at the cut (cycle 54).
regression draid-wb-entry-in-another-ring --level draid --members 7 --data-chunks 3 \
	--parity-chunks 1 --distributed-spares 2 --policy journal --write-back --ops 400 \
	--member-kb 2048 --seed 13 --cycles 54 --load-failures --ack-durable \
	--crash-point sb-primary
# draid, ppl: a member failed and a distributed spare was to take its slot; a kick for
# something else (the member itself back as a spare) started filling the spare before the
# superblocks said so. Writes to the stripes filled logged the slot's parity on the spare's
# member; the power went inside that round, the slot came back as current with its parity
# stale (cycle 587; a rebuild now starts only once its targets are recorded).
regression draid-fill-before-recorded --level draid --members 7 --data-chunks 3 \
	--parity-chunks 1 --distributed-spares 2 --policy ppl --ops 400 --member-kb 2048 \
	--seed 13679748299160313574 --cycles 587 --load-failures --crash-point sb-flushed
parity_levels bitmap --policy bitmap
# The parity levels under the partial parity log (their default): the same rules, with parity
# made to match the data by the log recovery at assembly instead of a resync afterwards, and
# members failing under the load (the bitmap rows above fail members only on mirrors: a dirty,
# degraded parity array under the bitmap needs force to start, its documented hole).
parity_levels ppl --policy ppl
# The journal: every acknowledged write survives the cut (not only the flushed ones), with
# members failing and rebuilding under the load; recovery redoes the logged updates whole.
parity_levels journal --policy journal
# ... and in write-back mode, where a write is acknowledged once its data is logged, before it
# goes home (reads are checked against the model all along: they must see it).
parity_levels journal-wb --policy journal --write-back
# ... and with the log on a journal device of its own (power cut with the members), in both
# modes, and with the power going inside its writes and checkpoints.
parity_levels journal-dev --policy journal --journal-bdev
parity_levels journal-dev-wb --policy journal --journal-bdev --write-back
# Log-structured arrays: nothing is written over a stripe that holds data, so every
# acknowledged write survives (as under the journal) with members failing and spares
# rebuilding under the load and the cleaner moving blocks; mirrors too.
parity_levels log --policy log
torture raid1-log 0 --level raid1 --members 2 --policy log --cycles "$cycles"
torture raid10-log 0 --level raid10 --members 5 --policy log --cycles "$cycles"
# ... with the power going between a commit's flush, records and map, and between a
# checkpoint's pages and its anchor.
for point in tree-flushed tree-recorded tree-pages; do
	at_point "point-$point-raid6-log" "$point" --level raid6 --members 5 --policy log
done
# ... over zoned members (zones written only in order, reset whole; power cuts lose or tear
# the appends after the last flush): the same promise, with spares rebuilt zone by zone.
parity_levels log-zoned --policy log --zoned
torture raid1-log-zoned 0 --level raid1 --members 2 --policy log --zoned --cycles "$cycles"
torture raid10-log-zoned 0 --level raid10 --members 4 --policy log --zoned --cycles "$cycles"
# Declustered parity: failed members rebuilt into distributed spare space and copied back onto
# spare members, under ppl, the journal and as a log array, with power cuts during both.
for p in ppl journal log; do
	torture "draid-$p" 0 --level draid --members 8 --data-chunks 4 --parity-chunks 2 \
		--distributed-spares 1 --policy "$p" --cycles "$cycles"
done
torture draid-3+1+2-journal-wb 0 --level draid --members 7 --data-chunks 3 --parity-chunks 1 \
	--distributed-spares 2 --policy journal --write-back --cycles "$cycles"
torture draid-3+1+2-journal-dev 0 --level draid --members 7 --data-chunks 3 --parity-chunks 1 \
	--distributed-spares 2 --policy journal --journal-bdev --cycles "$cycles"
for point in tree-pages rebuild-unit sb-flushed; do
	at_point "point-$point-raid6-log-zoned" "$point" --level raid6 --members 5 --policy log \
		--zoned
done
for point in sb-primary log-written journal-acked log-flushed; do
	at_point "point-$point-raid5-journal-dev-wb" "$point" --level raid5 --members 4 \
		--policy journal --journal-bdev --write-back
done
# ... a promise the partial parity log does not make, and the harness can tell.
torture raid5-ppl-ack-not-durable 0 --level raid5 --members 4 --policy ppl --ack-durable \
	--cycles 30 --expect-hole
# Named crash points: the power goes exactly inside a superblock update, a rebuild window, a
# log write, a stripe update or a log checkpoint; each must be reached, and nothing may break.
for point in sb-flushed sb-primary rebuild-unit log-written journal-acked stripe-writing \
	log-flushed; do
	for cfg in "raid5 4 journal" "raid6 5 ppl" "raid6 4 journal --write-back"; do
		set -- $cfg
		# Only write-back acknowledges before the update goes on.
		[ "$point" = journal-acked ] && [ "${4:-}" != --write-back ] && continue
		at_point "point-$point-$1-$3${4:+-wb}" "$point" --level "$1" --members "$2" \
			--policy "$3" ${4:+"$4"}
	done
done
# draid with one parity: a member fails, a distributed spare takes its slot, and the power
# goes inside the superblock round that would say so. A write had logged the failed slot's
# parity on the spare's member, where recovery does not look while the superblocks still put
# the column on the slot: the stripe's parity stayed stale (such writes now wait for it).
for point in sb-flushed sb-primary; do
	for cfg in ppl journal "journal --write-back"; do
		set -- $cfg
		at_point "point-$point-draid-3+1+2-$1${2:+-wb}" "$point" --level draid \
			--members 7 --data-chunks 3 --parity-chunks 1 --distributed-spares 2 \
			--policy "$1" ${2:+"$2"}
	done
done
torture point-sb-primary-raid1-bitmap 0 --level raid1 --members 2 --policy bitmap \
	--crash-point sb-primary --cycles 20
# Parity levels under the bitmap, members failing under the load: a cut on a degraded array
# is refused without force (reported as a broken rule, exit 1), as documented.
torture raid5-bitmap-degraded-refused 1 --level raid5 --members 4 --policy bitmap \
	--load-failures --cycles 40
if grep -q 'not shut down cleanly and is degraded' "$T_DIR/raid5-bitmap-degraded-refused.out"; then
	t_pass "raid5 under the bitmap: a dirty degraded start needs force"
else
	t_fail "raid5-bitmap-degraded" "no refusal reported"
fi
# Policy none leaves the write hole open, and the harness shows it (stops at the first cycle
# that breaks a rule; exit 0 then).
torture raid5-none-hole 0 --level raid5 --members 4 --policy none --cycles 30 --expect-hole
torture raid6-none-hole 0 --level raid6 --members 5 --policy none --cycles 30 --expect-hole
torture raid1-none-hole 0 --level raid1 --members 2 --policy none --cycles 30 --expect-hole
# Without power cuts policy none loses nothing: every answered write reads back exactly, with
# members failing and spares rebuilding under the load, and the parity checks. Writes from the
# reactor that does not own their stripe run there under a claim on it (each must show some).
parity_levels none-no-cut --policy none --no-cut
torture draid-none-no-cut 0 --level draid --members 8 --data-chunks 4 --parity-chunks 2 \
	--distributed-spares 1 --policy none --no-cut --cycles "$cycles"
torture raid10-none-no-cut 0 --level raid10 --members 4 --policy none --no-cut \
	--cycles "$cycles"
# ... and so do writes under the bitmap where their region's bit is on disk already, with
# members failing under the load (the rows under power cuts above claim them too).
torture raid5-bitmap-no-cut 0 --level raid5 --members 4 --policy bitmap --no-cut \
	--cycles "$cycles"
torture raid6-bitmap-no-cut 0 --level raid6 --members 5 --policy bitmap --no-cut \
	--cycles "$cycles"
for name in raid5-none-no-cut raid6-none-no-cut ec-none-no-cut draid-none-no-cut \
	raid10-none-no-cut raid5-bitmap-no-cut raid6-bitmap-no-cut raid5-bitmap raid6-bitmap \
	ec-bitmap; do
	if grep -q '^torture: [1-9][0-9]* writes claimed' "$T_DIR/$name.out"; then
		t_pass "$name: $(grep '^torture: [0-9]* writes claimed' "$T_DIR/$name.out")"
	else
		t_fail "$name: no write was claimed"
	fi
done
# ... and without --expect-hole the same run fails.
torture raid5-none-fails 1 --level raid5 --members 4 --policy none --cycles 3
if grep -q 'replay with: uraid torture' "$T_DIR/raid5-none-fails.out" &&
	grep -q 'parity check: [1-9][0-9]* bad stripes\|holds garbage\|with a member failed' \
		"$T_DIR/raid5-none-fails.out"; then
	t_pass "a broken rule is reported with the block or stripe and the replay command"
else
	t_fail "report" "no replay line or no detail"
fi

# The same seed gives the same run.
"$URAID" torture --seed 4242 --cycles 3 --level raid6 --members 4 --policy bitmap |
	grep -E '^torture: seed 4242:' | sed 's/ ([0-9]* s)$//' >"$T_DIR/a"
"$URAID" torture --seed 4242 --cycles 3 --level raid6 --members 4 --policy bitmap |
	grep -E '^torture: seed 4242:' | sed 's/ ([0-9]* s)$//' >"$T_DIR/b"
if [ -s "$T_DIR/a" ] && cmp -s "$T_DIR/a" "$T_DIR/b"; then
	t_pass "seed 4242 replays exactly: $(cat "$T_DIR/a")"
else
	t_fail "replay" "two runs of one seed differ: $(cat "$T_DIR/a") / $(cat "$T_DIR/b")"
fi

# Bad arguments are refused with a usage line.
for args in "--members 1" "--policy sometimes" "--member-kb 10" "--cycles 0" "--level raid7"; do
	# shellcheck disable=SC2086
	"$URAID" torture $args >"$T_DIR/bad.out" 2>&1
	rc=$?
	if [ "$rc" -eq 2 ]; then
		t_pass "torture $args refused"
	else
		t_fail "torture $args" "exit $rc, expected 2"
	fi
done
t_done
