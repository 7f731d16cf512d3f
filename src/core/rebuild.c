/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Spares, member swaps and rebuild.
 *
 * Theory of operation.
 *
 * A replacement member is REBUILDING: every write goes to it (so what is rebuilt stays
 * current), and reads may use it only below its `rebuilt` position (member strips already
 * filled in). The rebuild walks the array's units (stripes; for mirrors, strips) in order from
 * reactor 0, a window of them in flight, each as a part run by its stripe's owner: read what
 * can be read, rebuild the missing columns (decode, or copy a mirror), write the target ones.
 * Because the owner runs one operation per stripe, a user write to a stripe is never mixed
 * with its rebuild. `rebuilt` advances over the contiguous prefix of completed units, with
 * release ordering so a reader that sees the position also sees the data.
 *
 *     units:  [ rebuilt prefix | in flight (window) | not yet ]
 *                              ^done_upto           ^next
 *
 * The superblock records each target's position every checkpoint interval, so a restart
 * resumes from there; finishing writes the targets as active in a superblock before they are
 * treated as such. A bandwidth cap is a token bucket refilled by a 1 ms poller. All rebuild
 * and spare state is reactor 0's; member channels are swapped on every reactor with a
 * for-each-channel walk.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core.h"

#define MAX_WINDOW 256

struct rebuild_opts g_rebuild_opts = {URAID_RAID_DEFAULT_WINDOW_KB, 0, 1000000};

struct spare {
	char name[URAID_BDEV_NAME_MAX];
	struct uraid_bdev_desc *desc;
	struct sb *own; /* the superblock found on it (this array's: a member come back), or NULL */
	struct spare *next;
};

struct rebuild {
	struct raid_array *a;
	uint64_t units, next, done_upto;
	bool done_map[MAX_WINDOW];
	unsigned window, inflight;
	uint64_t targets;
	uint64_t unit_bytes;
	double tokens;
	uint64_t last_refill_us, last_ckpt_us;
	struct uraid_poller *poller;
	bool stop;
	bool issuing; /* in rebuild_issue: a part done inline must not re-enter it */
	int status;
	int repl_slot; /* >= 0: a replacement copy of this slot, unit = member strip */
	bool catch_up; /* every target is a returning member: units the bitmap holds clean are
			* current on them already */
	uint64_t issued, skipped; /* units rebuilt, and passed over by the catch-up */
	/* draid: the distributed spares being filled (or the one drained back onto its slot's
	 * new member); units are stripes */
	uint32_t ds_mask;
	bool drain;
	void (*on_stopped)(struct raid_array *a);
};

int
uraid_raid_set_options(uint64_t window_kb, uint64_t max_bw_mb_sec)
{
	if (window_kb == 0 || window_kb > (1u << 30))
		return -EINVAL;
	g_rebuild_opts.window_kb = window_kb;
	g_rebuild_opts.max_bw_mb_sec = max_bw_mb_sec;
	return 0;
}

void
uraid_raid_get_options(uint64_t *window_kb, uint64_t *max_bw_mb_sec)
{
	*window_kb = g_rebuild_opts.window_kb;
	*max_bw_mb_sec = g_rebuild_opts.max_bw_mb_sec;
}

uint64_t
raid_rebuild_units(const struct raid_array *a)
{
	if (a->parity)
		return layout_strips_to_stripes(&a->l, a->l.member_blocks / a->l.strip_blocks);
	return layout_array_blocks(&a->l) / a->l.strip_blocks;
}

uint64_t
raid_units_to_member_strips(const struct raid_array *a, unsigned member, uint64_t done)
{
	uint64_t x;

	if (a->parity || a->l.level == URAID_RAID1)
		return layout_stripes_to_strips(&a->l, done);
	/* raid10: array strips [0, done) fill device slots [0, done * copies); member strip j of
	 * member t is slot j * n + t. */
	x = done * a->l.copies;
	return x > member ? (x - member + a->l.n - 1) / a->l.n : 0;
}

static uint64_t
member_strips_to_units(const struct raid_array *a, uint64_t strips)
{
	if (a->parity || a->l.level == URAID_RAID1)
		return layout_strips_to_stripes(&a->l, strips);
	return strips * a->l.n / a->l.copies; /* a lower bound: redoing a little is harmless */
}

/*
 * A distributed spare's strips of one period of draid's table are all on one member (the
 * period's spare position), so a walk in stripe order would write one member at a time. Its
 * fill and drain walk blocks of DS_PERIODS periods instead, taking the periods of a block in
 * turn (unit i of a block is stripe i / W of its period i mod W): the writes in flight land on
 * as many members as the window holds stripes. Progress counts whole blocks.
 */
#define DS_PERIODS 32

static uint64_t
ds_block(const struct raid_array *a)
{
	return (uint64_t)DS_PERIODS * a->draid->groups;
}

static uint64_t
unit_stripe(const struct rebuild *rb, uint64_t unit)
{
	uint64_t g, base, i, w;

	if (rb->ds_mask == 0)
		return unit;
	g = rb->a->draid->groups;
	base = unit / ds_block(rb->a) * ds_block(rb->a);
	i = unit - base;
	w = (rb->units - base) / g; /* periods left: the last block may hold fewer */
	if (w > DS_PERIODS)
		w = DS_PERIODS;
	return base + i % w * g + i / w;
}

/* Stripes [0, result) are done once units [0, done) are. */
static uint64_t
ds_done_stripes(const struct rebuild *rb, uint64_t done)
{
	return done == rb->units ? done : done / ds_block(rb->a) * ds_block(rb->a);
}

static bool
unit_has_target(struct rebuild *rb, uint64_t unit)
{
	struct raid_array *a = rb->a;

	if (a->l.level == URAID_DRAID && rb->repl_slot < 0) {
		/* A column of the stripe is on a target now, or passes a spare being filled or
		 * drained. */
		for (unsigned c = 0; c < a->l.k + a->l.m; c++) {
			struct col_loc loc;

			raid_col_locate(a, unit_stripe(rb, unit), c, &loc);
			if (rb->ds_mask ? (loc.via & rb->ds_mask) != 0
					: (rb->targets & (1ull << loc.member)) != 0)
				return true;
		}
		return false;
	}
	if (a->l.level != URAID_RAID10 || rb->repl_slot >= 0)
		return true;
	for (unsigned c = 0; c < a->l.copies; c++) {
		if (rb->targets & (1ull << ((unit * a->l.copies + c) % a->l.n)))
			return true;
	}
	return false;
}

/* --- the driver (reactor 0) --- */

static void rebuild_issue(struct rebuild *rb);
static void rebuild_end(struct rebuild *rb);
static void rebuild_start(struct raid_array *a);
static void spare_taken_recorded(struct raid_array *a, int status);
static void replace_ended(struct raid_array *a, unsigned slot, bool complete);

/* The owner unit (stripe, or array strip for mirrors) holding member strip j of slot. */
static uint64_t
copy_key(const struct raid_array *a, unsigned slot, uint64_t j)
{
	uint64_t stripe;
	unsigned col;

	if (a->l.level == URAID_RAID10)
		return (j * a->l.n + slot) / a->l.copies;
	if (a->l.level == URAID_DRAID) {
		/* A spare strip holds the column a distributed spare moved there: that of the
		 * strip the spare stands in for, in the same row (itself perhaps a spare strip
		 * of another); a free one nothing (any stripe of its period will do). */
		for (unsigned hop = 0; hop <= a->draid->s; hop++) {
			if (draid_at(a->l.dm, slot, j, &stripe, &col) ||
			    atomic_load(&a->ds[col].state) == DS_FREE)
				break;
			slot = atomic_load(&a->ds[col].slot);
		}
		return stripe;
	}
	return j;
}

static void
rebuild_progress(struct rebuild *rb)
{
	struct raid_array *a = rb->a;

	if (rb->repl_slot >= 0) {
		atomic_store(&a->members[rb->repl_slot].repl_copied, rb->done_upto);
		atomic_store(&a->rb_done_blocks, rb->done_upto * a->l.strip_blocks);
		return;
	}
	if (rb->ds_mask) {
		/* Release: the stripes' writes are complete before readers may use them. */
		for (uint32_t m = rb->ds_mask; m; m &= m - 1)
			atomic_store_explicit(&a->ds[__builtin_ctz(m)].done,
					      ds_done_stripes(rb, rb->done_upto),
					      memory_order_release);
		atomic_store(&a->rb_done_blocks,
			     raid_units_to_member_strips(a, 0, rb->done_upto) * a->l.strip_blocks);
		return;
	}

	for (uint64_t m = rb->targets; m; m &= m - 1) {
		unsigned t = (unsigned)__builtin_ctzll(m);

		/* Release: the unit's writes are complete before readers may use them. */
		atomic_store_explicit(&a->members[t].rebuilt,
				      raid_units_to_member_strips(a, t, rb->done_upto),
				      memory_order_release);
	}
	atomic_store(&a->rb_done_blocks,
		     raid_units_to_member_strips(a, 0, rb->done_upto) * a->l.strip_blocks);
}

/* done_upto over the units done (in order). */
static void
done_advance(struct rebuild *rb)
{
	while (rb->done_upto < rb->next && rb->done_map[rb->done_upto % MAX_WINDOW]) {
		rb->done_map[rb->done_upto % MAX_WINDOW] = false;
		rb->done_upto++;
	}
}

static void
rebuild_part_done(struct stripe_part *part, int status)
{
	struct rebuild *rb = part->ctx;
	uint64_t unit = part->unit;

	free(part);
	rb->inflight--;
	if (status != 0 && rb->status == 0) {
		rb->status = status;
		rb->stop = true;
	}
	rb->done_map[unit % MAX_WINDOW] = true;
	if (status == 0)
		crash_point(CRASH_REBUILD_UNIT);
	done_advance(rb);
	rebuild_progress(rb);
	if (!rb->issuing)
		rebuild_issue(rb); /* else the loop that submitted it goes on */
}

static bool
targets_alive(struct rebuild *rb)
{
	if (rb->repl_slot >= 0) {
		struct raid_member *mb = &rb->a->members[rb->repl_slot];

		return atomic_load(&mb->state) == URAID_MEMBER_ACTIVE &&
		       atomic_load(&mb->repl_state) == REPL_COPYING;
	}
	if (rb->ds_mask) {
		for (uint32_t m = rb->ds_mask; m; m &= m - 1) {
			if (atomic_load(&rb->a->ds[__builtin_ctz(m)].state) !=
			    (rb->drain ? DS_DRAINING : DS_FILLING))
				rb->ds_mask &= ~(m & -m);
		}
		return rb->ds_mask != 0;
	}
	for (uint64_t m = rb->targets; m; m &= m - 1) {
		if (atomic_load(&rb->a->members[__builtin_ctzll(m)].state) !=
		    URAID_MEMBER_REBUILDING)
			rb->targets &= ~(m & -m);
	}
	return rb->targets != 0;
}

static void
rebuild_issue(struct rebuild *rb)
{
	struct raid_array *a = rb->a;

	if (a->stopping || !targets_alive(rb))
		rb->stop = true;
	if (!rb->stop && rb->repl_slot < 0 && !lsa_rebuild_ready(a))
		return; /* zoned targets: their zones are being reset (the poller comes back) */
	rb->issuing = true;
	/* The window is what is in flight; units with nothing to write (a draid stripe without
	 * a column of the target, say) pass at once and do not count, as far as done_map
	 * reaches. */
	while (!rb->stop && rb->inflight < rb->window && rb->next < rb->units &&
	       rb->next < rb->done_upto + MAX_WINDOW) {
		struct stripe_part *part;
		bool target = unit_has_target(rb, rb->next);
		int walk = target && rb->repl_slot < 0
				   ? lsa_unit_rebuild(a, unit_stripe(rb, rb->next))
				   : 1;

		if (walk == -EAGAIN)
			break; /* a zone still being written: raid_rebuild_resume comes back */
		if (!target || (rb->catch_up && !bitmap_unit_dirty(a, rb->next)) || walk == 0) {
			/* Nothing to write here: done at once, and the window moves on. */
			if (target && rb->catch_up) {
				raid_stat_add(a, 0, RS_CAUGHT_UP, 1);
				rb->skipped++;
			}
			rb->done_map[rb->next % MAX_WINDOW] = true;
			rb->next++;
			done_advance(rb);
			continue;
		}
		if (g_rebuild_opts.max_bw_mb_sec != 0) {
			if (rb->tokens < (double)rb->unit_bytes)
				break; /* the poller refills */
			rb->tokens -= (double)rb->unit_bytes;
		}
		part = calloc(1, sizeof(*part));
		if (part == NULL)
			break; /* the poller retries */
		raid_stat_add(a, 0, RS_REBUILT, 1);
		rb->issued++;
		part->a = a;
		part->unit = rb->next++;
		if (rb->repl_slot >= 0) {
			part->kind = PART_COPY;
			part->slot = (unsigned)rb->repl_slot;
			part->stripe = copy_key(a, part->slot, part->unit);
		} else {
			part->kind = PART_REBUILD;
			part->stripe = unit_stripe(rb, part->unit);
			part->drain = rb->drain;
		}
		part->num_blocks = layout_stripe_data_blocks(&a->l);
		part->origin = uraid_reactor_self();
		part->done = rebuild_part_done;
		part->ctx = rb;
		rb->inflight++;
		stripe_submit(part); /* may complete inline (the member failed meanwhile) */
	}
	rb->issuing = false;
	rebuild_progress(rb);
	if (rb->inflight == 0 && (rb->stop || rb->done_upto == rb->units))
		rebuild_end(rb);
}

void
raid_rebuild_resume(struct raid_array *a)
{
	if (a->rb != NULL && !a->rb->issuing)
		rebuild_issue(a->rb);
}

static int
rebuild_poll(void *arg)
{
	struct rebuild *rb = arg;
	uint64_t now = uraid_now_us();

	if (g_rebuild_opts.max_bw_mb_sec != 0) {
		double rate = (double)g_rebuild_opts.max_bw_mb_sec * 1e6 / 1e6; /* bytes/us */

		rb->tokens += (double)(now - rb->last_refill_us) * rate;
		/* At most a window's worth of burst. */
		if (rb->tokens > (double)rb->unit_bytes * rb->window)
			rb->tokens = (double)rb->unit_bytes * rb->window;
	}
	rb->last_refill_us = now;
	if (rb->repl_slot < 0 && now - rb->last_ckpt_us >= g_rebuild_opts.checkpoint_us) {
		rb->last_ckpt_us = now;
		if (rb->a->has_sb)
			raid_sb_update(rb->a, NULL); /* records every target's position */
	}
	rebuild_issue(rb);
	return URAID_POLLER_IDLE;
}

static void
rebuild_finished(struct raid_array *a, int status)
{
	uint64_t done = a->rebuild_finishing;

	a->rebuild_finishing = 0;
	for (uint64_t m = done; m; m &= m - 1) {
		unsigned t = (unsigned)__builtin_ctzll(m);
		int expected = URAID_MEMBER_REBUILDING;

		if (atomic_compare_exchange_strong(&a->members[t].state, &expected,
						   URAID_MEMBER_ACTIVE)) {
			a->members[t].catch_up = false;
			atomic_fetch_sub(&a->failed, 1);
			LOG_NOTE("%s: rebuild of %s (slot %u) finished", a->bdev.name,
				 a->members[t].name, t);
		}
	}
	if (status != 0)
		LOG_WARNING("%s: the superblock recording the rebuild could not be written (%s)",
			    a->bdev.name, strerror(-status));
	atomic_store(&a->rb_targets, 0);
	raid_rebuild_kick(a); /* another failed slot and spare, perhaps */
}

static void
rebuild_tree_written(struct raid_array *a)
{
	raid_sb_update(a, rebuild_finished);
}

/* --- distributed spares (draid) --- */

static const char *const g_ds_state_names[] = {"free", "filling", "full", "draining"};

const char *
raid_ds_state_name(int state)
{
	return (unsigned)state < DS_NUM_STATES ? g_ds_state_names[state] : "?";
}

static void
ds_drained(struct raid_array *a, int status)
{
	for (unsigned j = 0; j < a->draid->s; j++) {
		int st = DS_DRAINING;

		/* Done (and recorded so): the slot's member holds every strip; the spare is
		 * free again. */
		if (status == 0 && atomic_load(&a->ds[j].done) == raid_rebuild_units(a) &&
		    atomic_compare_exchange_strong(&a->ds[j].state, &st, DS_FREE)) {
			atomic_fetch_sub(&a->ds_used, 1);
			LOG_NOTE("%s: slot %u is back on %s; distributed spare %u is free",
				 a->bdev.name, atomic_load(&a->ds[j].slot),
				 a->members[atomic_load(&a->ds[j].slot)].name, j);
		}
	}
	if (a->has_sb)
		raid_sb_update(a, NULL);
	raid_rebuild_kick(a);
}

static void
ds_rebuild_end(struct raid_array *a, uint32_t mask, bool drain, bool complete)
{
	for (uint32_t m = complete && !drain ? mask : 0; m; m &= m - 1) {
		unsigned j = (unsigned)__builtin_ctz(m);
		int st = DS_FILLING;

		if (atomic_compare_exchange_strong(&a->ds[j].state, &st, DS_FULL))
			LOG_NOTE("%s: slot %u rebuilt into distributed spare %u: redundant again",
				 a->bdev.name, atomic_load(&a->ds[j].slot), j);
	}
	if (complete && drain) {
		/* Every stripe is on the new member: recorded before the spare is let go. */
		if (a->has_sb)
			raid_sb_update(a, ds_drained);
		else
			ds_drained(a, 0);
		return;
	}
	if (a->has_sb)
		raid_sb_update(a, NULL);
	if (!a->stopping)
		raid_rebuild_kick(a);
}

/* draid, reactor 0: a failed slot no distributed spare holds takes a free one and is rebuilt
 * into it at once. true if it did. */
static bool
ds_take(struct raid_array *a)
{
	int free_j = -1;
	uint64_t held = 0;

	if (a->draid == NULL || a->draid->s == 0)
		return false;
	for (unsigned j = 0; j < a->draid->s; j++) {
		if (atomic_load(&a->ds[j].state) == DS_FREE)
			free_j = free_j < 0 ? (int)j : free_j;
		else
			held |= 1ull << atomic_load(&a->ds[j].slot);
	}
	if (free_j < 0)
		return false;
	for (unsigned i = 0; i < a->l.n; i++) {
		struct draid_spare *ds = &a->ds[free_j];

		if (atomic_load(&a->members[i].state) != URAID_MEMBER_FAILED ||
		    (held & (1ull << i)))
			continue;
		atomic_store(&ds->slot, i);
		atomic_store(&ds->done, 0);
		atomic_store(&ds->durable, 0);
		atomic_fetch_add(&a->ds_used, 1);
		atomic_store_explicit(&ds->state, DS_FILLING, memory_order_release);
		LOG_NOTE("%s: slot %u (%s) is rebuilt into distributed spare %u, on every member",
			 a->bdev.name, i, a->members[i].name, free_j);
		if (a->has_sb)
			raid_sb_update(a, spare_taken_recorded);
		else
			rebuild_start(a);
		return true;
	}
	return false;
}

static bool
ds_draining(const struct raid_array *a)
{
	for (unsigned j = 0; a->draid != NULL && j < a->draid->s; j++) {
		if (atomic_load(&a->ds[j].state) == DS_DRAINING)
			return true;
	}
	return false;
}

/* draid: the distributed spare in `state` holding slot, or -1 (a slot has one at most). */
static int
ds_holding(const struct raid_array *a, unsigned slot, int state)
{
	int st, j = raid_ds_holder(a, slot, 0, &st);

	return j >= 0 && st == state ? j : -1;
}

static void
rebuild_end(struct rebuild *rb)
{
	struct raid_array *a = rb->a;
	bool complete = rb->done_upto == rb->units && rb->status == 0 && targets_alive(rb);
	void (*on_stopped)(struct raid_array * a) = rb->on_stopped;
	uint64_t targets = rb->targets;
	uint32_t ds_mask = rb->ds_mask;
	bool drain = rb->drain;

	int repl_slot = rb->repl_slot;

	uraid_poller_unregister(&rb->poller);
	a->rb = NULL;
	if (repl_slot < 0)
		lsa_rebuild_end(a);
	if (rb->status != 0)
		LOG_ERR("%s: %s stopped: %s", a->bdev.name,
			repl_slot >= 0 ? "replacement" : "rebuild", strerror(-rb->status));
	if (complete && rb->catch_up)
		LOG_NOTE("%s: caught up: %lu units rebuilt, %lu clean ones passed over",
			 a->bdev.name, (unsigned long)rb->issued, (unsigned long)rb->skipped);
	free(rb);
	if (repl_slot >= 0) {
		atomic_store(&a->rb_targets, 0);
		replace_ended(a, (unsigned)repl_slot, complete && on_stopped == NULL);
		if (on_stopped)
			on_stopped(a);
		return;
	}
	if (on_stopped) {
		on_stopped(a);
		return;
	}
	if (ds_mask) {
		atomic_store(&a->rb_targets, 0);
		ds_rebuild_end(a, ds_mask, drain, complete);
		return;
	}
	if (complete) {
		if (a->lsa != NULL) {
			/* A log array's tree blocks that had a copy on the member replaced are
			 * written again (a whole checkpoint) before the rebuilt one counts. */
			a->rebuild_finishing = targets;
			lsa_checkpoint_all(a, rebuild_tree_written);
		} else if (a->has_sb) {
			/* Recorded before the targets count as active. */
			a->rebuild_finishing = targets;
			raid_sb_update(a, rebuild_finished);
		} else {
			a->rebuild_finishing = targets;
			rebuild_finished(a, 0);
		}
		return;
	}
	atomic_store(&a->rb_targets, 0);
	if (!a->stopping)
		raid_rebuild_kick(a); /* e.g. the target failed: another spare */
}

/* draid: the distributed spares a rebuild takes now: those being filled; else, with no
 * member being rebuilt, one being drained (*drain). Their slots join *targets, and *from is
 * where the least advanced one is (whole blocks: see unit_stripe). */
static uint32_t
ds_next(struct raid_array *a, bool *drain, uint64_t *targets, uint64_t *from)
{
	uint32_t mask = 0;

	*drain = false;
	if (a->draid == NULL)
		return 0;
	for (unsigned j = 0; j < a->draid->s; j++) {
		if (atomic_load(&a->ds[j].state) == DS_FILLING)
			mask |= 1u << j;
	}
	if (mask == 0) {
		for (unsigned i = 0; i < a->l.n; i++) {
			if (atomic_load(&a->members[i].state) == URAID_MEMBER_REBUILDING)
				return 0; /* members first */
		}
		for (unsigned j = 0; j < a->draid->s && mask == 0; j++) {
			/* (A drained one waits for the round that frees it.) */
			if (atomic_load(&a->ds[j].state) == DS_DRAINING &&
			    atomic_load(&a->ds[j].done) != raid_rebuild_units(a))
				mask = 1u << j;
		}
		*drain = mask != 0;
	}
	for (uint32_t m = mask; m; m &= m - 1) {
		struct draid_spare *ds = &a->ds[__builtin_ctz(m)];
		uint64_t at = atomic_load(&ds->done) / ds_block(a) * ds_block(a);

		*targets |= 1ull << atomic_load(&ds->slot);
		if (at < *from)
			*from = at;
	}
	return mask;
}

/* The superblocks on disk say what a rebuild of targets (or of the distributed spares in
 * ds_mask) writes: each member as being rebuilt in its slot, each spare as holding its slot
 * (filled, or drained onto the slot's new member). Until they do, a crash brings back the
 * state before, where nothing the rebuild wrote is looked at: nor are the log entries of the
 * writes that went where it had passed (a parity on a distributed spare, say, its entry on
 * the spare's member) while the column's old place comes back stale. */
static bool
rebuild_recorded(const struct raid_array *a, uint64_t targets, uint32_t ds_mask)
{
	const struct sb *sb = &a->sb;

	if (!a->has_sb)
		return true;
	for (uint32_t m = ds_mask; m; m &= m - 1) {
		unsigned j = (unsigned)__builtin_ctz(m), slot = atomic_load(&a->ds[j].slot);
		int st = atomic_load(&a->ds[j].state);

		if (sb->draid_ds[j].state != (uint32_t)st || sb->draid_ds[j].slot != slot ||
		    (st == DS_DRAINING && memcmp(sb->slots[slot].uuid, a->slot_uuid[slot], 16)))
			return false;
	}
	for (uint64_t m = ds_mask ? 0 : targets; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctzll(m);

		if (sb->slots[i].state != SB_SLOT_REBUILDING ||
		    memcmp(sb->slots[i].uuid, a->slot_uuid[i], 16) != 0)
			return false;
	}
	return true;
}

/* Rebuild every REBUILDING slot, or with repl_slot >= 0 copy that slot to its replacement. */
static void
rebuild_start_slot(struct raid_array *a, int repl_slot)
{
	struct rebuild *rb;
	uint64_t targets = 0, from = UINT64_MAX;
	uint32_t ds_mask = 0;
	bool drain = false;

	if (repl_slot >= 0) {
		targets = 1ull << repl_slot;
		from = 0;
	} else {
		ds_mask = ds_next(a, &drain, &targets, &from);
	}
	for (unsigned i = 0; i < a->l.n && repl_slot < 0 && ds_mask == 0; i++) {
		if (atomic_load(&a->members[i].state) == URAID_MEMBER_REBUILDING) {
			uint64_t u = member_strips_to_units(a, atomic_load(&a->members[i].rebuilt));

			targets |= 1ull << i;
			if (u < from)
				from = u;
		}
	}
	/* (finishing: done, the superblock saying so is on its way.) Offline, every unit some
	 * group cannot serve fails at once and nothing brings the array back online: a rebuild
	 * started then would stop with -EIO, kick the next one, and spin. */
	if (targets == 0 || a->rb != NULL || a->rebuild_finishing || !atomic_load(&a->online))
		return;
	if (repl_slot < 0 && !rebuild_recorded(a, targets, ds_mask)) {
		/* (A kick for something else, before the round that records them is done:
		 * that round's end starts it.) */
		a->rebuild_unrecorded = true;
		return;
	}
	rb = calloc(1, sizeof(*rb));
	if (rb == NULL)
		return;
	rb->a = a;
	rb->repl_slot = repl_slot;
	rb->ds_mask = ds_mask;
	rb->drain = drain;
	rb->catch_up = repl_slot < 0 && a->bm != NULL && ds_mask == 0;
	for (uint64_t m = targets; m && rb->catch_up; m &= m - 1)
		rb->catch_up = a->members[__builtin_ctzll(m)].catch_up;
	rb->units = repl_slot >= 0 ? a->l.member_blocks / a->l.strip_blocks : raid_rebuild_units(a);
	rb->targets = targets;
	rb->next = rb->done_upto = from < rb->units ? from : rb->units;
	rb->unit_bytes = a->l.strip_blocks * a->bdev.block_size;
	rb->window = (unsigned)(g_rebuild_opts.window_kb * 1024 / rb->unit_bytes);
	if (rb->window < 1)
		rb->window = 1;
	if (rb->window > MAX_WINDOW)
		rb->window = MAX_WINDOW;
	if (a->sb_zone_blocks != 0 && repl_slot < 0) {
		/* Zoned targets: their zones are reset and written in order from the first, one
		 * unit after another (each zone takes writes only at its write pointer). */
		rb->window = 1;
		rb->next = rb->done_upto = 0;
		for (uint64_t m = targets; m; m &= m - 1)
			atomic_store(&a->members[__builtin_ctzll(m)].rebuilt, 0);
		lsa_rebuild_begin(a, targets);
	}
	rb->last_refill_us = rb->last_ckpt_us = uraid_now_us();
	rb->poller = uraid_poller_register(rebuild_poll, rb, 1000);
	a->rb = rb;
	atomic_store(&a->rb_total_blocks,
		     (repl_slot >= 0 ? rb->units : raid_units_to_member_strips(a, 0, rb->units)) *
			     a->l.strip_blocks);
	atomic_store(&a->rb_start_us, uraid_now_us());
	atomic_store(&a->rb_catch_up, rb->catch_up);
	atomic_store(&a->rb_targets, targets);
	rebuild_progress(rb);
	if (repl_slot < 0)
		LOG_NOTE("%s: %s slot mask 0x%lx from unit %lu of %lu", a->bdev.name,
			 drain		? "copying back from the distributed spare"
			 : ds_mask	? "rebuilding into the distributed spare"
			 : rb->catch_up ? "catching up (dirty regions only)"
					: "rebuilding",
			 (unsigned long)targets, (unsigned long)rb->done_upto,
			 (unsigned long)rb->units);
	rebuild_issue(rb);
}

static void
rebuild_start(struct raid_array *a)
{
	rebuild_start_slot(a, -1);
}

void
raid_rebuild_stop(struct raid_array *a, void (*then)(struct raid_array *a))
{
	struct rebuild *rb = a->rb;

	rb->stop = true;
	rb->on_stopped = then;
	if (rb->inflight == 0)
		rebuild_end(rb);
}

/* Free a spare taken off its list (its bdev closed, or handed on, by the caller). */
static void
spare_free(struct spare *s)
{
	free(s->own);
	free(s);
}

/* Unlink and release the spare named name (or every one, name NULL) from list; how many. */
static unsigned
spare_unlink(struct spare **list, _Atomic unsigned *count, const char *name)
{
	unsigned n = 0;

	while (*list != NULL) {
		struct spare *s = *list;

		if (name != NULL && strcmp(s->name, name) != 0) {
			list = &s->next;
			continue;
		}
		*list = s->next;
		atomic_fetch_sub(count, 1);
		uraid_bdev_close(s->desc);
		spare_free(s);
		n++;
		if (name != NULL)
			break;
	}
	return n;
}

void
raid_rebuild_free(struct raid_array *a)
{
	spare_unlink(&a->spares, &a->nspares, NULL);
}

/* A pool spare can serve the array: same block size, room for a member. */
static bool
spare_fits(const struct raid_array *a, struct uraid_bdev_desc *desc)
{
	struct uraid_bdev *b = uraid_bdev_desc_get_bdev(desc);
	char why[160];

	return uraid_bdev_get_block_size(b) == a->bdev.block_size &&
	       uraid_bdev_get_num_blocks(b) >= a->data_offset_blocks + a->l.member_blocks &&
	       lsa_member_fits(a, b, why, sizeof(why)) == 0;
}

/* --- member swaps: every reactor's channel changes, one reactor at a time --- */

enum swap_kind {
	SWAP_MEMBER,	/* the slot takes new_desc (NULL: none) */
	SWAP_REPL_ADD,	/* the slot's writes also go to its replacement */
	SWAP_REPL_TAKE, /* the replacement takes the slot (the member failed) */
	SWAP_REPL_ROLE, /* replacement and member trade places: both still take writes */
	SWAP_REPL_DROP, /* the replacement (or, after ROLE, the old member) is let go */
};

struct swap {
	struct raid_array *a;
	enum swap_kind kind;
	unsigned slot;
	struct uraid_bdev_desc *old_desc, *new_desc;
	char new_name[URAID_BDEV_NAME_MAX];
	bool catch_up; /* SWAP_MEMBER: new_desc is the slot's own member come back */
	void (*done)(struct swap *sw);
	void *ctx;
};

static bool g_swapping; /* reactor 0 */

/* The shared pool: spares any array may take (reactor 0's; the count for any thread). */
static struct spare *g_pool;
static _Atomic unsigned g_pool_count;

static void kick_all_later(void);

/* SWAP_REPL_ROLE on one channel (once: reactor 0's may have had it already). */
static void
channel_trade_roles(struct raid_channel *rch, unsigned t, struct uraid_bdev_desc *new_main)
{
	struct uraid_io_channel *ch = rch->mch[t];
	struct uraid_bdev_desc *d = rch->mdesc[t];

	if (rch->mdesc[t] == new_main || rch->rdesc[t] != new_main)
		return;
	rch->mch[t] = rch->repl_ch[t];
	rch->mdesc[t] = rch->rdesc[t];
	rch->repl_ch[t] = ch;
	rch->rdesc[t] = d;
}

static void
swap_visit(struct uraid_channel_iter *it)
{
	struct swap *sw = uraid_channel_iter_get_ctx(it);
	struct raid_channel *rch = uraid_io_channel_get_ctx(uraid_channel_iter_get_channel(it));
	unsigned t = sw->slot;

	switch (sw->kind) {
	case SWAP_MEMBER:
		uraid_put_io_channel(rch->mch[t]);
		rch->mdesc[t] = sw->new_desc;
		rch->mch[t] = sw->new_desc ? uraid_bdev_get_io_channel(sw->new_desc) : NULL;
		break;
	case SWAP_REPL_ADD:
		if (rch->repl_ch[t] == NULL) {
			rch->rdesc[t] = sw->new_desc;
			rch->repl_ch[t] = uraid_bdev_get_io_channel(sw->new_desc);
		}
		break;
	case SWAP_REPL_TAKE:
		uraid_put_io_channel(rch->mch[t]);
		rch->mdesc[t] = sw->new_desc;
		rch->mch[t] =
			rch->repl_ch[t] ? rch->repl_ch[t] : uraid_bdev_get_io_channel(sw->new_desc);
		rch->repl_ch[t] = NULL;
		rch->rdesc[t] = NULL;
		break;
	case SWAP_REPL_ROLE:
		channel_trade_roles(rch, t, sw->new_desc);
		break;
	case SWAP_REPL_DROP:
		uraid_put_io_channel(rch->repl_ch[t]);
		rch->repl_ch[t] = NULL;
		rch->rdesc[t] = NULL;
		break;
	}
	uraid_for_each_channel_continue(it, 0);
}

static void
repl_clear(struct raid_array *a, struct raid_member *mb)
{
	atomic_store(&mb->repl_desc, NULL);
	atomic_store(&mb->repl_state, REPL_NONE);
	atomic_store(&mb->repl_copied, 0);
	pthread_mutex_lock(&a->names_lock);
	mb->repl_name[0] = '\0';
	pthread_mutex_unlock(&a->names_lock);
}

static void
swap_walked(struct uraid_channel_iter *it, int status UNUSED)
{
	struct swap *sw = uraid_channel_iter_get_ctx(it);
	struct raid_member *mb = &sw->a->members[sw->slot];

	switch (sw->kind) {
	case SWAP_MEMBER:
	case SWAP_REPL_TAKE:
		if (sw->old_desc)
			uraid_bdev_close(sw->old_desc);
		/* Release: a channel that catches up on it after the state changes sees it. */
		pthread_mutex_lock(&sw->a->names_lock);
		__atomic_store_n(&mb->desc, sw->new_desc, __ATOMIC_RELEASE);
		snprintf(mb->name, sizeof(mb->name), "%s", sw->new_name);
		pthread_mutex_unlock(&sw->a->names_lock);
		if (sw->kind == SWAP_REPL_TAKE)
			repl_clear(sw->a, mb);
		break;
	case SWAP_REPL_DROP:
		uraid_bdev_close(atomic_load(&mb->repl_desc));
		repl_clear(sw->a, mb);
		break;
	case SWAP_REPL_ADD:
	case SWAP_REPL_ROLE:
		break;
	}
	g_swapping = false;
	sw->done(sw);
	kick_all_later(); /* arrays that waited for this walk to end */
}

static void
swap_start(struct swap *sw)
{
	g_swapping = true;
	sw->old_desc = sw->a->members[sw->slot].desc;
	uraid_for_each_channel(&sw->a->ch_dev, swap_visit, sw, swap_walked);
}

static struct swap *
swap_new(struct raid_array *a, enum swap_kind kind, unsigned slot, void (*done)(struct swap *sw))
{
	struct swap *sw = calloc(1, sizeof(*sw));

	if (sw == NULL) {
		LOG_ERR("%s: out of memory for a member change", a->bdev.name);
		return NULL;
	}
	sw->a = a;
	sw->kind = kind;
	sw->slot = slot;
	sw->done = done;
	return sw;
}

/*
 * A device that takes a slot may carry log entries of this very run in its log area: a
 * member that failed and comes back (to catch up, or as a spare or a replacement) held that
 * slot before, under the same epoch. Nothing newer on its rings would hide them, so a recovery
 * would take them for live and decode from partial parities older than the data. So the
 * log area of a device that comes in is zeroed and flushed before any channel sees it (a
 * journal device keeps every slot's log, and its rings go on as they were).
 */
#define LOG_CLEAR_CHUNK 256 /* blocks per write */

struct log_clear {
	struct raid_array *a;
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	uint8_t *zero;
	uint64_t at, end;
	bool flushed;
	void (*then)(void *ctx, int status);
	void *ctx;
};

static bool
log_on_members(const struct raid_array *a)
{
	return raid_logged(a) && a->jdesc == NULL && a->ppl_blocks != 0;
}

static void log_clear_next(struct log_clear *lc);

static void
log_clear_end(struct log_clear *lc, int status)
{
	void (*then)(void *ctx, int status) = lc->then;
	void *ctx = lc->ctx;

	lc->a->log_clearing = false;
	if (status != 0)
		LOG_WARNING("%s: cannot clear the log area of the device coming in: %s",
			    lc->a->bdev.name, strerror(-status));
	if (lc->ch != NULL)
		uraid_put_io_channel(lc->ch);
	uraid_dma_free(lc->zero);
	free(lc);
	then(ctx, status);
}

static void
log_clear_done(void *arg, int status)
{
	struct log_clear *lc = arg;

	if (status != 0 || lc->flushed)
		log_clear_end(lc, status);
	else
		log_clear_next(lc);
}

static void
log_clear_next(struct log_clear *lc)
{
	uint64_t n = lc->end - lc->at < LOG_CLEAR_CHUNK ? lc->end - lc->at : LOG_CLEAR_CHUNK;
	int rc;

	if (n == 0) {
		lc->flushed = true;
		rc = uraid_bdev_flush(lc->desc, lc->ch, log_clear_done, lc);
	} else {
		rc = uraid_bdev_write(lc->desc, lc->ch, lc->zero, lc->at, n, 0, log_clear_done, lc);
		lc->at += n;
	}
	if (rc != 0)
		log_clear_end(lc, rc);
}

/* Zero desc's log area for array a, then call then(ctx, status) (reactor 0). a->log_clearing
 * holds while it runs, and is false when then() is called. */
static void
log_clear(struct raid_array *a, struct uraid_bdev_desc *desc, void (*then)(void *ctx, int status),
	  void *ctx)
{
	struct log_clear *lc;

	if (!log_on_members(a)) {
		then(ctx, 0);
		return;
	}
	lc = calloc(1, sizeof(*lc));
	if (lc == NULL) {
		a->log_clearing = false;
		then(ctx, -ENOMEM);
		return;
	}
	lc->a = a;
	lc->desc = desc;
	lc->at = a->ppl_offset_blocks;
	lc->end = a->ppl_offset_blocks + a->ppl_blocks;
	lc->then = then;
	lc->ctx = ctx;
	a->log_clearing = true;
	lc->zero = uraid_dma_alloc(4096, (size_t)LOG_CLEAR_CHUNK * a->bdev.block_size);
	lc->ch = uraid_bdev_get_io_channel(desc);
	if (lc->zero == NULL || lc->ch == NULL) {
		log_clear_end(lc, -ENOMEM);
		return;
	}
	memset(lc->zero, 0, (size_t)LOG_CLEAR_CHUNK * a->bdev.block_size);
	log_clear_next(lc);
}

/* --- planned replacement --- */

static void spare_swapped(struct swap *sw);

static void
spare_swapped_repl(struct swap *sw)
{
	sw->a->replacing = 0;
	spare_swapped(sw);
}

static void rebuild_start_slot(struct raid_array *a, int repl_slot);

static void
replace_dropped(struct swap *sw)
{
	struct raid_array *a = sw->a;

	free(sw);
	a->replacing = 0;
	raid_rebuild_kick(a);
}

static void
replace_drop(struct raid_array *a, unsigned t)
{
	struct swap *sw = swap_new(a, SWAP_REPL_DROP, t, replace_dropped);

	if (sw != NULL)
		swap_start(sw);
}

static void
replace_roles_traded(struct swap *sw)
{
	struct raid_array *a = sw->a;
	unsigned t = sw->slot;

	free(sw);
	/* Every channel reads from and writes to the new member, and still writes to the old:
	 * stop that, and let the old one go. */
	atomic_store(&a->members[t].repl_state, REPL_FAILED);
	LOG_NOTE("%s: %s replaced %s in slot %u", a->bdev.name, a->members[t].name,
		 a->members[t].repl_name, t);
	replace_drop(a, t);
}

static void
replace_committed(struct raid_array *a, int status)
{
	unsigned t = a->replacing - 1;
	struct swap *sw;

	if (status != 0)
		LOG_WARNING("%s: the superblocks naming the replacement could not be written (%s)",
			    a->bdev.name, strerror(-status));
	sw = swap_new(a, SWAP_REPL_ROLE, t, replace_roles_traded);
	if (sw == NULL)
		return;
	sw->new_desc = a->members[t].desc;
	swap_start(sw);
}

/*
 * The copy is complete: the replacement holds everything and takes every write. It gets the
 * slot under a new member UUID, recorded in the superblocks before anything else (reactor 0's
 * channel, which the superblock writer uses, trades places at once; the old member keeps its
 * older generation and so is stale from here on). Then every channel trades places, and only
 * then does the old member stop receiving writes, so no reactor ever reads from a device that
 * missed a write.
 */
static void
replace_commit(struct raid_array *a, unsigned t)
{
	struct raid_member *mb = &a->members[t];
	struct uraid_bdev_desc *old = mb->desc;
	struct raid_channel *rch = raid_owner_channel(a);
	char name[URAID_BDEV_NAME_MAX];

	if (rch == NULL) {
		replace_drop(a, t);
		return;
	}
	mb->desc = atomic_load(&mb->repl_desc);
	atomic_store(&mb->repl_desc, old);
	pthread_mutex_lock(&a->names_lock);
	memcpy(name, mb->name, sizeof(name));
	memcpy(mb->name, mb->repl_name, sizeof(name));
	memcpy(mb->repl_name, name, sizeof(name));
	pthread_mutex_unlock(&a->names_lock);
	channel_trade_roles(rch, t, mb->desc);
	uraid_uuid_generate(a->slot_uuid[t]);
	if (a->has_sb)
		raid_sb_update(a, replace_committed);
	else
		replace_committed(a, 0);
}

/* The copy driver ended (reactor 0). */
static void
replace_tree_written(struct raid_array *a)
{
	if (!a->stopping)
		replace_commit(a, a->lsa_repl_slot);
}

static void
replace_ended(struct raid_array *a, unsigned t, bool complete)
{
	struct raid_member *mb = &a->members[t];
	struct swap *sw;

	if (a->stopping)
		return; /* the array's teardown closes the replacement */
	if (complete && a->lsa != NULL) {
		/* The copy covers the data, not the stripe tree's area: the tree blocks with a
		 * copy on the old member are written again first (writes to the slot reach the
		 * replacement too). */
		a->lsa_repl_slot = t;
		lsa_checkpoint_all(a, replace_tree_written);
		return;
	}
	if (complete) {
		replace_commit(a, t);
		return;
	}
	if (atomic_load(&mb->state) == URAID_MEMBER_FAILED &&
	    atomic_load(&mb->repl_state) == REPL_COPYING) {
		/* The member failed first: the replacement takes the slot, as a spare would, and
		 * is rebuilt from the others. (Writes that reached only it while the member was
		 * failing are not tracked, so the rebuild starts from the beginning.) */
		LOG_WARNING("%s: %s failed while being replaced; %s takes slot %u and is rebuilt",
			    a->bdev.name, mb->name, mb->repl_name, t);
		sw = swap_new(a, SWAP_REPL_TAKE, t, spare_swapped_repl);
		if (sw == NULL)
			return;
		sw->new_desc = atomic_load(&mb->repl_desc);
		snprintf(sw->new_name, sizeof(sw->new_name), "%s", mb->repl_name);
		swap_start(sw);
		return;
	}
	LOG_WARNING("%s: replacement of %s by %s abandoned; %s stays in slot %u", a->bdev.name,
		    mb->name, mb->repl_name, mb->name, t);
	replace_drop(a, t);
}

static void
replace_added(struct swap *sw)
{
	struct raid_array *a = sw->a;
	unsigned t = sw->slot;

	free(sw);
	LOG_NOTE("%s: copying %s (slot %u) to its replacement %s", a->bdev.name, a->members[t].name,
		 t, a->members[t].repl_name);
	rebuild_start_slot(a, (int)t);
	if (a->rb == NULL)
		replace_ended(a, t, false);
}

static void
spare_taken_recorded(struct raid_array *a, int status)
{
	if (status != 0)
		LOG_WARNING("%s: could not record the spare in the superblocks: %s", a->bdev.name,
			    strerror(-status));
	rebuild_start(a);
}

/* A spare took its slot: the next spare and failed slot, if any, before the rebuild starts
 * (one pass then rebuilds them together); then the rebuild, once the superblocks say so. */
static void
swapped_then_rebuild(struct raid_array *a)
{
	raid_rebuild_kick(a);
	if (g_swapping)
		return;
	if (a->has_sb)
		raid_sb_update(a, spare_taken_recorded);
	else
		rebuild_start(a);
}

static void
spare_swapped(struct swap *sw)
{
	struct raid_array *a = sw->a;
	unsigned t = sw->slot;

	int dj = ds_holding(a, t, DS_FULL);

	/* A member come back keeps its identity; a new one gets its own. */
	if (!sw->catch_up)
		uraid_uuid_generate(a->slot_uuid[t]);
	a->members[t].catch_up = sw->catch_up;
	a->members[t].failed_by_request = false;
	atomic_store(&a->members[t].rebuilt, 0);
	atomic_store(&a->members[t].durable, 0);
	if (dj >= 0) {
		/* draid: the slot's strips are in a distributed spare; they are copied back
		 * onto the new member, which takes every write from now on. Reads use it
		 * below the copy's position, the spare above it. */
		atomic_store(&a->ds[dj].done, 0);
		atomic_store(&a->ds[dj].durable, 0);
		atomic_store_explicit(&a->ds[dj].state, DS_DRAINING, memory_order_release);
		atomic_store_explicit(&a->members[t].state, URAID_MEMBER_ACTIVE,
				      memory_order_release);
		atomic_fetch_sub(&a->failed, 1);
		LOG_NOTE("%s: %s takes slot %u; its strips come back from distributed spare %d",
			 a->bdev.name, sw->new_name, t, dj);
		free(sw);
		swapped_then_rebuild(a);
		return;
	}
	atomic_store_explicit(&a->members[t].state, URAID_MEMBER_REBUILDING, memory_order_release);
	if (sw->catch_up)
		LOG_NOTE("%s: %s is back in slot %u; catching up on the regions written since it "
			 "left",
			 a->bdev.name, sw->new_name, t);
	else
		LOG_NOTE("%s: spare %s takes slot %u; rebuilding", a->bdev.name, sw->new_name, t);
	free(sw);
	swapped_then_rebuild(a);
}

/* The spare is the member of a failed slot come back, and can catch up there (see
 * sb_can_catch_up). A departure the superblocks do not record yet (its round is still being
 * written) counts as one at the next generation. */
static bool
spare_returns(struct raid_array *a, const struct spare *s)
{
	struct sb truth;
	struct sb_slot *t;
	unsigned slot;

	if (s->own == NULL || a->bm == NULL || (slot = s->own->this_slot) >= a->l.n ||
	    atomic_load(&a->members[slot].state) != URAID_MEMBER_FAILED ||
	    ds_holding(a, slot, DS_FILLING) >= 0 || ds_holding(a, slot, DS_FULL) >= 0)
		return false; /* (a distributed spare has its strips: it comes back as new) */
	truth = a->sb;
	t = &truth.slots[slot];
	if (t->state != SB_SLOT_FAILED && t->state != SB_SLOT_MISSING) {
		if (memcmp(t->uuid, a->slot_uuid[slot], 16) != 0)
			return false;
		t->state = SB_SLOT_FAILED;
		t->left_generation = truth.generation + 1;
	}
	return sb_can_catch_up(&truth, s->own, slot);
}

/* The spare's log area is clear: it takes the slot. If it could not be cleared (or the array
 * is going), it is let go. */
static void
spare_cleared(void *ctx, int status)
{
	struct swap *sw = ctx;
	struct raid_array *a = sw->a;

	if (status == 0 && !a->stopping) {
		swap_start(sw);
		return;
	}
	if (status != 0)
		LOG_WARNING("%s: spare %s let go", a->bdev.name, sw->new_name);
	uraid_bdev_close(sw->new_desc);
	free(sw);
	g_swapping = false;
	kick_all_later();
}

/*
 * The slot's failure must be on disk before its log area is cleared: until the superblocks
 * say the slot failed, a crash brings the member back as current and the recovery reads its
 * log, live entries included (a member failed and added back at once has them). One round
 * after the spare is taken records every failure known then.
 */
static struct swap *g_clear_sw; /* the spare waiting for that round (g_swapping holds others) */

static void
failure_recorded(struct raid_array *a, int status)
{
	struct swap *sw = g_clear_sw;

	g_clear_sw = NULL;
	if (status == 0 && !a->stopping && !raid_failures_recorded(a)) {
		g_clear_sw = sw; /* a failure came after the request: one more round */
		raid_sb_update(a, failure_recorded);
		return;
	}
	if (status != 0 || a->stopping) {
		a->log_clearing = false;
		spare_cleared(sw, status != 0 ? status : -ENODEV);
		return;
	}
	log_clear(a, sw->new_desc, spare_cleared, sw); /* clears log_clearing when done */
}

void
raid_rebuild_kick(struct raid_array *a)
{
	struct spare *s;
	struct swap *sw;
	int slot = -1;

	struct spare **from = &a->spares;
	bool pooled = false, back = false;

	if (a->stopping || g_swapping || a->rb != NULL || a->rebuild_finishing || a->replacing ||
	    !atomic_load(&a->online))
		return; /* offline: no spare is taken, no rebuild can succeed */
	if (ds_take(a))
		return;
	for (from = &a->spares; *from != NULL; from = &(*from)->next) {
		if (spare_returns(a, *from)) {
			back = true;
			slot = (int)(*from)->own->this_slot;
			break;
		}
	}
	for (unsigned i = 0; i < a->l.n && slot < 0; i++) {
		/* (One a distributed spare is being filled for waits; one it holds is drained
		 * onto the spare member, one at a time.) */
		if (atomic_load(&a->members[i].state) == URAID_MEMBER_FAILED &&
		    ds_holding(a, i, DS_FILLING) < 0 &&
		    (ds_holding(a, i, DS_FULL) < 0 || !ds_draining(a))) {
			slot = (int)i;
			from = &a->spares;
			break;
		}
	}
	if (slot >= 0 && a->spares == NULL) {
		/* The array's own spares first, then the first pool spare that fits. */
		pooled = true;
		for (from = &g_pool; *from != NULL; from = &(*from)->next) {
			if (spare_fits(a, (*from)->desc))
				break;
		}
	}
	if (slot < 0 || *from == NULL) {
		rebuild_start(a); /* resume (e.g. after assembly), if anything is rebuilding */
		return;
	}
	s = *from;
	sw = swap_new(a, SWAP_MEMBER, (unsigned)slot, spare_swapped);
	if (sw == NULL)
		return;
	*from = s->next;
	atomic_fetch_sub(pooled ? &g_pool_count : &a->nspares, 1);
	if (pooled)
		LOG_NOTE("%s: takes %s from the spare pool", a->bdev.name, s->name);
	sw->new_desc = s->desc;
	sw->catch_up = back;
	snprintf(sw->new_name, sizeof(sw->new_name), "%s", s->name);
	spare_free(s);
	g_swapping = true; /* no other member change until this one is through */
	if (!log_on_members(a)) {
		swap_start(sw);
		return;
	}
	a->log_clearing = true;
	g_clear_sw = sw;
	raid_sb_update(a, failure_recorded);
}

static void
kick_msg(void *arg)
{
	raid_rebuild_kick(arg);
}

static int
kick_one(struct uraid_bdev *bdev, void *ctx UNUSED)
{
	if (uraid_bdev_is_array(bdev))
		raid_rebuild_kick(raid_from_bdev(bdev));
	return 0;
}

/* Reactor 0. An array is freed only after its destruct has run here, so the arrays of the
 * snapshot stay valid while this runs. */
static void
kick_all_msg(void *arg UNUSED)
{
	uraid_bdev_foreach(kick_one, NULL);
}

static void
kick_all_later(void)
{
	uraid_reactor_send(uraid_reactor_get(0), kick_all_msg, NULL);
}

/* --- control path --- */

/* The array behind bdev if it has redundancy; NULL with a reason otherwise. */
static struct raid_array *
redundant_array(struct uraid_bdev *bdev, const char *needed_for, char *err, size_t err_len)
{
	struct raid_array *a;

	if (!uraid_bdev_is_array(bdev)) {
		err_set(err, err_len, "not an array");
		return NULL;
	}
	a = raid_from_bdev(bdev);
	if (!(a->parity || a->mirrored)) {
		err_set(err, err_len, "%s has no redundancy %s", uraid_raid_level_name(a->l.level),
			needed_for);
		return NULL;
	}
	return a;
}

/* The slot of the member named name, or -1 (on any thread: see names_lock). */
static int
member_slot(struct raid_array *a, const char *name)
{
	int slot = -1;

	pthread_mutex_lock(&a->names_lock);
	for (unsigned i = 0; i < a->l.n && slot < 0; i++) {
		if (__atomic_load_n(&a->members[i].desc, __ATOMIC_ACQUIRE) != NULL &&
		    strcmp(a->members[i].name, name) == 0)
			slot = (int)i;
	}
	pthread_mutex_unlock(&a->names_lock);
	return slot;
}

/* Open, claim and size-check a bdev that is to hold a member's data. */
static int
open_new_member(struct raid_array *a, const char *name, struct uraid_bdev_desc **desc, char *err,
		size_t err_len)
{
	struct uraid_bdev *b = uraid_bdev_get_by_name(name);
	uint64_t need = a->data_offset_blocks + a->l.member_blocks;
	int rc;

	*desc = NULL;
	if (b == NULL) {
		err_set(err, err_len, "no bdev named '%s'", name);
		return -ENODEV;
	}
	if (b == &a->bdev) {
		err_set(err, err_len, "an array cannot hold its own data");
		return -EINVAL;
	}
	if (uraid_bdev_get_block_size(b) != a->bdev.block_size) {
		err_set(err, err_len, "'%s' has %u-byte blocks, the array %u", name,
			uraid_bdev_get_block_size(b), a->bdev.block_size);
		return -EINVAL;
	}
	if (uraid_bdev_get_num_blocks(b) < need) {
		err_set(err, err_len, "'%s' is too small: %lu blocks, the array needs %lu", name,
			(unsigned long)uraid_bdev_get_num_blocks(b), (unsigned long)need);
		return -ENOSPC;
	}
	rc = lsa_member_fits(a, b, err, err_len);
	if (rc != 0)
		return rc;
	rc = raid_open_claimed("", name, a->bdev.name, NULL, NULL, desc, err, err_len);
	return rc == 0 ? 0 : -EBUSY;
}

struct spare_add {
	struct raid_array *a;
	struct spare *s;
	_Atomic bool done;
};

static void
spare_add_msg(void *arg)
{
	struct spare_add *sa = arg;
	struct spare **tail = sa->a ? &sa->a->spares : &g_pool;

	/* First added, first used. */
	while (*tail != NULL)
		tail = &(*tail)->next;
	sa->s->next = NULL;
	*tail = sa->s;
	atomic_fetch_add(sa->a ? &sa->a->nspares : &g_pool_count, 1);
	if (sa->a)
		raid_rebuild_kick(sa->a);
	else
		kick_all_msg(NULL); /* any array with a failed slot may take it */
	atomic_store_explicit(&sa->done, true, memory_order_release);
}

int
uraid_spare_pool_add(const char *name, char *err, size_t err_len)
{
	struct spare_add sa = {0};
	struct uraid_bdev *b = uraid_bdev_get_by_name(name);
	int rc;

	if (b == NULL) {
		err_set(err, err_len, "no bdev named '%s'", name);
		return -ENODEV;
	}
	if (uraid_bdev_is_array(b)) {
		err_set(err, err_len, "'%s' is an array; a spare is a member-to-be", name);
		return -EINVAL;
	}
	sa.s = calloc(1, sizeof(*sa.s));
	if (sa.s == NULL)
		return -ENOMEM;
	snprintf(sa.s->name, sizeof(sa.s->name), "%s", name);
	rc = raid_open_claimed("", name, "the spare pool", NULL, NULL, &sa.s->desc, err, err_len);
	if (rc != 0) {
		free(sa.s);
		return -EBUSY;
	}
	uraid_reactor_send(uraid_reactor_get(0), spare_add_msg, &sa);
	uraid_runtime_wait(&sa.done);
	return 0;
}

unsigned
uraid_spare_pool_count(void)
{
	return atomic_load(&g_pool_count);
}

struct spare_remove {
	const char *name; /* NULL: every pool spare */
	int rc;
	_Atomic bool done;
};

static int
spare_remove_one(struct uraid_bdev *bdev, void *ctx)
{
	struct spare_remove *sr = ctx;
	struct raid_array *a;

	if (!uraid_bdev_is_array(bdev))
		return 0;
	a = raid_from_bdev(bdev);
	return spare_unlink(&a->spares, &a->nspares, sr->name) ? 1 : 0;
}

static void
spare_remove_msg(void *arg)
{
	struct spare_remove *sr = arg;

	if (spare_unlink(&g_pool, &g_pool_count, sr->name) == 0 && sr->name != NULL &&
	    uraid_bdev_foreach(spare_remove_one, sr) == 0)
		sr->rc = -ENODEV;
	atomic_store_explicit(&sr->done, true, memory_order_release);
}

int
uraid_spare_remove(const char *name)
{
	struct spare_remove sr = {.name = name};

	uraid_reactor_send(uraid_reactor_get(0), spare_remove_msg, &sr);
	uraid_runtime_wait(&sr.done);
	return sr.rc;
}

void
uraid_spare_pool_clear(void)
{
	if (uraid_reactor_count() > 0)
		uraid_spare_remove(NULL);
}

struct spare_names {
	struct raid_array *a;
	char (*names)[URAID_BDEV_NAME_MAX];
	unsigned max, n;
	_Atomic bool done;
};

static void
spare_names_msg(void *arg)
{
	struct spare_names *sn = arg;

	for (struct spare *s = sn->a ? sn->a->spares : g_pool; s != NULL; s = s->next, sn->n++) {
		if (sn->n < sn->max)
			snprintf(sn->names[sn->n], URAID_BDEV_NAME_MAX, "%s", s->name);
	}
	atomic_store_explicit(&sn->done, true, memory_order_release);
}

unsigned
uraid_spare_names(struct uraid_bdev *array, char (*names)[URAID_BDEV_NAME_MAX], unsigned max)
{
	struct spare_names sn = {.names = names, .max = max};

	if (array != NULL) {
		if (!uraid_bdev_is_array(array))
			return 0;
		sn.a = raid_from_bdev(array);
	}
	if (uraid_reactor_self() == uraid_reactor_get(0)) {
		spare_names_msg(&sn); /* the lists' own thread */
		return sn.n;
	}
	uraid_reactor_send(uraid_reactor_get(0), spare_names_msg, &sn);
	uraid_runtime_wait(&sn.done);
	return sn.n;
}

int
uraid_array_add_spare(struct uraid_bdev *array, const char *name, char *err, size_t err_len)
{
	struct spare_add sa = {0};
	struct raid_array *a = redundant_array(array, "to rebuild a member from", err, err_len);
	int slot, rc;

	if (a == NULL)
		return -EINVAL;
	slot = member_slot(a, name);
	if (slot >= 0 && atomic_load(&a->members[slot].state) != URAID_MEMBER_FAILED) {
		err_set(err, err_len, "'%s' is already a member of %s", name, a->bdev.name);
		return -EBUSY;
	}
	if (slot >= 0) {
		/* Its own failed member, back (e.g. a path restored): let go of it, then take it
		 * in again as below. */
		rc = uraid_array_remove_member(array, name, err, err_len);
		if (rc != 0)
			return rc;
	}
	sa.a = a;
	sa.s = calloc(1, sizeof(*sa.s));
	if (sa.s == NULL)
		return -ENOMEM;
	snprintf(sa.s->name, sizeof(sa.s->name), "%s", name);
	rc = open_new_member(a, name, &sa.s->desc, err, err_len);
	if (rc != 0) {
		free(sa.s);
		return rc;
	}
	if (a->has_sb && a->bm != NULL) {
		/* A member of this array come back may only need what it missed. */
		bool backup;
		char why[128];

		sa.s->own = malloc(sizeof(*sa.s->own));
		if (sa.s->own != NULL &&
		    raid_sb_read(sa.s->desc, sa.s->own, &backup, why, sizeof(why)) != 0) {
			free(sa.s->own);
			sa.s->own = NULL;
		}
	}
	uraid_reactor_send(uraid_reactor_get(0), spare_add_msg, &sa);
	uraid_runtime_wait(&sa.done);
	return 0;
}

struct remove {
	struct raid_array *a;
	unsigned slot;
	_Atomic bool done;
	/* raid_member_release: nobody waits (freed when done), and only this device goes */
	bool async;
	struct uraid_bdev *bdev;
};

static void
removed(struct swap *sw)
{
	struct remove *rm = sw->ctx;
	struct raid_array *a = sw->a;

	free(sw);
	if (a->has_sb)
		raid_sb_update(a, NULL);
	if (rm->async)
		free(rm);
	else
		atomic_store_explicit(&rm->done, true, memory_order_release);
	raid_rebuild_kick(a);
}

static void
remove_msg(void *arg)
{
	struct remove *rm = arg;
	struct raid_member *m = &rm->a->members[rm->slot];
	struct swap *sw;

	if (rm->async && !g_swapping &&
	    (m->desc == NULL || uraid_bdev_desc_get_bdev(m->desc) != rm->bdev ||
	     atomic_load(&m->state) != URAID_MEMBER_FAILED)) {
		/* A spare took the slot meanwhile (and let the device go), or it went already. */
		free(rm);
		return;
	}
	if (g_swapping || (rm->a->replacing && rm->a->rb == NULL) ||
	    (sw = swap_new(rm->a, SWAP_MEMBER, rm->slot, removed)) == NULL) {
		/* Another swap is walking the channels, or a replacement is being swapped in:
		 * try again shortly. */
		uraid_reactor_send(uraid_reactor_self(), remove_msg, rm);
		return;
	}
	sw->ctx = rm;
	swap_start(sw);
}

void
raid_member_release(struct raid_array *a, unsigned slot)
{
	struct remove *rm = calloc(1, sizeof(*rm));

	if (rm == NULL) {
		LOG_ERR("%s: no memory to let member %s go; it stays open until the array is "
			"deleted",
			a->bdev.name, a->members[slot].name);
		return;
	}
	rm->a = a;
	rm->slot = slot;
	rm->async = true;
	rm->bdev = uraid_bdev_desc_get_bdev(a->members[slot].desc);
	uraid_reactor_send(uraid_reactor_get(0), remove_msg, rm);
}

int
uraid_array_remove_member(struct uraid_bdev *array, const char *name, char *err, size_t err_len)
{
	struct remove rm = {0};
	struct raid_array *a;
	int slot;

	if (!uraid_bdev_is_array(array)) {
		err_set(err, err_len, "not an array");
		return -EINVAL;
	}
	a = raid_from_bdev(array);
	slot = member_slot(a, name);
	if (slot < 0) {
		err_set(err, err_len, "'%s' is not a member of %s", name, a->bdev.name);
		return -ENODEV;
	}
	if (atomic_load(&a->members[slot].state) != URAID_MEMBER_FAILED)
		raid_member_failed(a, (unsigned)slot, -ENODEV);
	rm.a = a;
	rm.slot = (unsigned)slot;
	uraid_reactor_send(uraid_reactor_get(0), remove_msg, &rm);
	uraid_runtime_wait(&rm.done);
	return 0;
}

void
raid_replacement_failed(struct raid_array *a, unsigned member, int status)
{
	int expected = REPL_COPYING;

	if (!atomic_compare_exchange_strong(&a->members[member].repl_state, &expected, REPL_FAILED))
		return;
	LOG_ERR("%s: a write to the replacement for slot %u failed (%s); the replacement is "
		"abandoned",
		a->bdev.name, member, strerror(-status));
	raid_rebuild_notify(a);
}

void
raid_rebuild_notify(struct raid_array *a)
{
	uraid_reactor_send(uraid_reactor_get(0), kick_msg, a);
}

/* --- planned replacement: the control path --- */

struct replace {
	struct raid_array *a;
	unsigned slot;
	struct uraid_bdev_desc *desc; /* NULL: take a spare */
	struct swap *sw;
	char name[URAID_BDEV_NAME_MAX];
	int rc;
	char err[160];
	_Atomic bool done;
};

/* The replacement's log area is clear: writes start going to it too. */
static void
replace_cleared(void *ctx, int status)
{
	struct replace *rp = ctx;
	struct raid_array *a = rp->a;
	struct raid_member *mb = &a->members[rp->slot];
	struct swap *sw = rp->sw;

	if (status != 0 || a->stopping) {
		rp->rc = status != 0 ? status : -ENODEV;
		snprintf(rp->err, sizeof(rp->err), "%s",
			 status != 0 ? "cannot clear the log area of "
				       "the new member"
				     : "the array is going away");
		free(sw);
		a->replacing = 0;
		g_swapping = false;
		atomic_store_explicit(&rp->done, true, memory_order_release);
		kick_all_later();
		return;
	}
	pthread_mutex_lock(&a->names_lock);
	snprintf(mb->repl_name, sizeof(mb->repl_name), "%s", rp->name);
	pthread_mutex_unlock(&a->names_lock);
	atomic_store(&mb->repl_copied, 0);
	atomic_store(&mb->repl_state, REPL_COPYING);
	atomic_store(&mb->repl_desc, rp->desc); /* channels created from now on take it */
	sw->new_desc = rp->desc;
	rp->desc = NULL; /* the array's now */
	swap_start(sw);
	atomic_store_explicit(&rp->done, true, memory_order_release);
}

static void
replace_msg(void *arg)
{
	struct replace *rp = arg;
	struct raid_array *a = rp->a;
	struct raid_member *mb = &a->members[rp->slot];
	struct swap *sw = NULL;

	if (g_swapping) {
		uraid_reactor_send(uraid_reactor_self(), replace_msg, rp); /* shortly */
		return;
	}
	if (a->replacing) {
		rp->rc = -EBUSY;
		snprintf(rp->err, sizeof(rp->err), "%s is already replacing %s; wait for it",
			 a->bdev.name, a->members[a->replacing - 1].name);
	} else if (a->rb != NULL || a->rebuild_finishing) {
		rp->rc = -EBUSY;
		snprintf(rp->err, sizeof(rp->err), "%s is rebuilding; replace after it finishes",
			 a->bdev.name);
	} else if (atomic_load(&mb->state) != URAID_MEMBER_ACTIVE) {
		rp->rc = -EINVAL;
		snprintf(rp->err, sizeof(rp->err),
			 "'%s' is not an active member; a failed one is rebuilt onto a spare",
			 mb->name);
	} else if (rp->desc == NULL && a->spares == NULL) {
		rp->rc = -ENOENT;
		snprintf(rp->err, sizeof(rp->err), "%s has no spare; name the new member",
			 a->bdev.name);
	} else if ((sw = swap_new(a, SWAP_REPL_ADD, rp->slot, replace_added)) == NULL) {
		rp->rc = -ENOMEM;
		snprintf(rp->err, sizeof(rp->err), "out of memory");
	}
	if (rp->rc != 0) {
		atomic_store_explicit(&rp->done, true, memory_order_release);
		return;
	}
	if (rp->desc == NULL) {
		struct spare *s = a->spares;

		a->spares = s->next;
		atomic_fetch_sub(&a->nspares, 1);
		rp->desc = s->desc;
		snprintf(rp->name, sizeof(rp->name), "%s", s->name);
		spare_free(s);
	}
	a->replacing = rp->slot + 1;
	g_swapping = true; /* no other member change until this one is through */
	rp->sw = sw;
	log_clear(a, rp->desc, replace_cleared, rp);
}

int
uraid_array_replace_member(struct uraid_bdev *array, const char *old_name, const char *new_name,
			   char *err, size_t err_len)
{
	struct replace rp = {0};
	struct raid_array *a = redundant_array(array, "to replace a member online", err, err_len);
	int slot;

	if (a == NULL)
		return -EINVAL;
	if (a->sb_zone_blocks != 0) {
		/* The copy would be written in member order while new stripes land in zones
		 * anywhere ahead of it. */
		err_set(err, err_len,
			"%s is a log array over zoned members: a member is not replaced online; "
			"fail it and a spare is rebuilt zone by zone",
			a->bdev.name);
		return -EOPNOTSUPP;
	}
	slot = member_slot(a, old_name);
	if (slot < 0) {
		err_set(err, err_len, "'%s' is not a member of %s", old_name, a->bdev.name);
		return -ENODEV;
	}
	if (new_name != NULL) {
		int rc = open_new_member(a, new_name, &rp.desc, err, err_len);

		if (rc != 0)
			return rc;
		snprintf(rp.name, sizeof(rp.name), "%s", new_name);
	}
	rp.a = a;
	rp.slot = (unsigned)slot;
	uraid_reactor_send(uraid_reactor_get(0), replace_msg, &rp);
	uraid_runtime_wait(&rp.done);
	if (rp.rc != 0) {
		if (rp.desc)
			uraid_bdev_close(rp.desc);
		err_set(err, err_len, "%s", rp.err);
	}
	return rp.rc;
}
