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

struct rebuild_opts g_rebuild_opts = {1024, 0, 1000000};

struct spare {
	char name[URAID_BDEV_NAME_MAX];
	struct uraid_bdev_desc *desc;
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
	int status;
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
		return a->l.member_blocks / a->l.strip_blocks;
	return layout_array_blocks(&a->l) / a->l.strip_blocks;
}

uint64_t
raid_units_to_member_strips(const struct raid_array *a, unsigned member, uint64_t done)
{
	uint64_t x;

	if (a->parity || a->l.level == URAID_RAID1)
		return done;
	/* raid10: array strips [0, done) fill device slots [0, done * copies); member strip j of
	 * member t is slot j * n + t. */
	x = done * a->l.copies;
	return x > member ? (x - member + a->l.n - 1) / a->l.n : 0;
}

static uint64_t
member_strips_to_units(const struct raid_array *a, uint64_t strips)
{
	if (a->parity || a->l.level == URAID_RAID1)
		return strips;
	return strips * a->l.n / a->l.copies; /* a lower bound: redoing a little is harmless */
}

static bool
unit_has_target(struct rebuild *rb, uint64_t unit)
{
	struct raid_array *a = rb->a;

	if (a->l.level != URAID_RAID10)
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

static void
rebuild_progress(struct rebuild *rb)
{
	struct raid_array *a = rb->a;

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

static void
rebuild_part_done(struct stripe_part *part, int status)
{
	struct rebuild *rb = part->ctx;
	uint64_t unit = part->stripe;

	free(part);
	rb->inflight--;
	if (status != 0 && rb->status == 0) {
		rb->status = status;
		rb->stop = true;
	}
	rb->done_map[unit % rb->window] = true;
	while (rb->done_upto < rb->next && rb->done_map[rb->done_upto % rb->window]) {
		rb->done_map[rb->done_upto % rb->window] = false;
		rb->done_upto++;
	}
	rebuild_progress(rb);
	rebuild_issue(rb);
}

static bool
targets_alive(struct rebuild *rb)
{
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
	while (!rb->stop && rb->inflight < rb->window && rb->next < rb->units &&
	       rb->next < rb->done_upto + rb->window) {
		struct stripe_part *part;

		if (g_rebuild_opts.max_bw_mb_sec != 0) {
			if (rb->tokens < (double)rb->unit_bytes)
				return; /* the poller refills */
			rb->tokens -= (double)rb->unit_bytes;
		}
		if (!unit_has_target(rb, rb->next)) {
			rb->done_map[rb->next % rb->window] = true;
			rb->next++;
			continue;
		}
		part = calloc(1, sizeof(*part));
		if (part == NULL)
			return; /* the poller retries */
		part->a = a;
		part->kind = PART_REBUILD;
		part->stripe = rb->next++;
		part->num_blocks = layout_stripe_data_blocks(&a->l);
		part->origin = uraid_reactor_self();
		part->done = rebuild_part_done;
		part->ctx = rb;
		rb->inflight++;
		stripe_submit(part);
	}
	/* Units skipped above count as done too. */
	while (rb->done_upto < rb->next && rb->done_map[rb->done_upto % rb->window]) {
		rb->done_map[rb->done_upto % rb->window] = false;
		rb->done_upto++;
	}
	if (rb->inflight == 0 && (rb->stop || rb->done_upto == rb->units))
		rebuild_end(rb);
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
	if (now - rb->last_ckpt_us >= g_rebuild_opts.checkpoint_us) {
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
rebuild_end(struct rebuild *rb)
{
	struct raid_array *a = rb->a;
	bool complete = rb->done_upto == rb->units && rb->status == 0 && targets_alive(rb);
	void (*on_stopped)(struct raid_array * a) = rb->on_stopped;
	uint64_t targets = rb->targets;

	uraid_poller_unregister(&rb->poller);
	a->rb = NULL;
	if (rb->status != 0)
		LOG_ERR("%s: rebuild stopped: %s", a->bdev.name, strerror(-rb->status));
	free(rb);
	if (on_stopped) {
		on_stopped(a);
		return;
	}
	if (complete) {
		if (a->has_sb) {
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

static void
rebuild_start(struct raid_array *a)
{
	struct rebuild *rb;
	uint64_t targets = 0, from = UINT64_MAX;

	for (unsigned i = 0; i < a->l.n; i++) {
		if (atomic_load(&a->members[i].state) == URAID_MEMBER_REBUILDING) {
			uint64_t u = member_strips_to_units(a, atomic_load(&a->members[i].rebuilt));

			targets |= 1ull << i;
			if (u < from)
				from = u;
		}
	}
	if (targets == 0 || a->rb != NULL)
		return;
	rb = calloc(1, sizeof(*rb));
	if (rb == NULL)
		return;
	rb->a = a;
	rb->units = raid_rebuild_units(a);
	rb->targets = targets;
	rb->next = rb->done_upto = from < rb->units ? from : rb->units;
	rb->unit_bytes = a->l.strip_blocks * a->bdev.block_size;
	rb->window = (unsigned)(g_rebuild_opts.window_kb * 1024 / rb->unit_bytes);
	if (rb->window < 1)
		rb->window = 1;
	if (rb->window > MAX_WINDOW)
		rb->window = MAX_WINDOW;
	rb->last_refill_us = rb->last_ckpt_us = uraid_now_us();
	rb->poller = uraid_poller_register(rebuild_poll, rb, 1000);
	a->rb = rb;
	atomic_store(&a->rb_total_blocks,
		     raid_units_to_member_strips(a, 0, rb->units) * a->l.strip_blocks);
	atomic_store(&a->rb_start_us, uraid_now_us());
	atomic_store(&a->rb_targets, targets);
	rebuild_progress(rb);
	LOG_NOTE("%s: rebuilding slot mask 0x%lx from unit %lu of %lu", a->bdev.name,
		 (unsigned long)targets, (unsigned long)rb->done_upto, (unsigned long)rb->units);
	rebuild_issue(rb);
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

void
raid_rebuild_free(struct raid_array *a)
{
	struct spare *s;

	while ((s = a->spares) != NULL) {
		a->spares = s->next;
		atomic_fetch_sub(&a->nspares, 1);
		uraid_bdev_close(s->desc);
		free(s);
	}
}

/* --- member swaps: every reactor's channel takes the new member's channel --- */

struct swap {
	struct raid_array *a;
	unsigned slot;
	struct uraid_bdev_desc *old_desc, *new_desc;
	char new_name[URAID_BDEV_NAME_MAX];
	void (*done)(struct swap *sw);
	void *ctx;
	_Atomic bool finished;
};

static bool g_swapping; /* reactor 0 */

static void
swap_visit(struct uraid_channel_iter *it)
{
	struct swap *sw = uraid_channel_iter_get_ctx(it);
	struct raid_channel *rch = uraid_io_channel_get_ctx(uraid_channel_iter_get_channel(it));

	uraid_put_io_channel(rch->mch[sw->slot]);
	rch->mch[sw->slot] = sw->new_desc ? uraid_bdev_get_io_channel(sw->new_desc) : NULL;
	rch->outstanding[sw->slot] = 0;
	uraid_for_each_channel_continue(it, 0);
}

static void
swap_walked(struct uraid_channel_iter *it, int status UNUSED)
{
	struct swap *sw = uraid_channel_iter_get_ctx(it);
	struct raid_array *a = sw->a;

	if (sw->old_desc)
		uraid_bdev_close(sw->old_desc);
	a->members[sw->slot].desc = sw->new_desc;
	snprintf(a->members[sw->slot].name, sizeof(a->members[sw->slot].name), "%s", sw->new_name);
	g_swapping = false;
	sw->done(sw);
}

static void
swap_start(struct swap *sw)
{
	g_swapping = true;
	sw->old_desc = sw->a->members[sw->slot].desc;
	uraid_for_each_channel(&sw->a->ch_dev, swap_visit, sw, swap_walked);
}

static void
spare_taken_recorded(struct raid_array *a, int status)
{
	if (status != 0)
		LOG_WARNING("%s: could not record the spare in the superblocks: %s", a->bdev.name,
			    strerror(-status));
	rebuild_start(a);
}

static void
spare_swapped(struct swap *sw)
{
	struct raid_array *a = sw->a;
	unsigned t = sw->slot;

	uraid_uuid_generate(a->slot_uuid[t]);
	atomic_store(&a->members[t].rebuilt, 0);
	atomic_store_explicit(&a->members[t].state, URAID_MEMBER_REBUILDING, memory_order_release);
	LOG_NOTE("%s: spare %s takes slot %u; rebuilding", a->bdev.name, sw->new_name, t);
	free(sw);
	/* The next spare and failed slot, if any, before the rebuild starts: one pass then
	 * rebuilds them together. */
	raid_rebuild_kick(a);
	if (g_swapping)
		return;
	if (a->has_sb)
		raid_sb_update(a, spare_taken_recorded);
	else
		rebuild_start(a);
}

void
raid_rebuild_kick(struct raid_array *a)
{
	struct spare *s;
	struct swap *sw;
	int slot = -1;

	if (a->stopping || g_swapping || a->rb != NULL || a->rebuild_finishing)
		return;
	for (unsigned i = 0; i < a->l.n && a->spares; i++) {
		if (atomic_load(&a->members[i].state) == URAID_MEMBER_FAILED) {
			slot = (int)i;
			break;
		}
	}
	if (slot < 0) {
		rebuild_start(a); /* resume (e.g. after assembly), if anything is rebuilding */
		return;
	}
	s = a->spares;
	sw = calloc(1, sizeof(*sw));
	if (sw == NULL)
		return;
	a->spares = s->next;
	atomic_fetch_sub(&a->nspares, 1);
	sw->a = a;
	sw->slot = (unsigned)slot;
	sw->new_desc = s->desc;
	snprintf(sw->new_name, sizeof(sw->new_name), "%s", s->name);
	sw->done = spare_swapped;
	free(s);
	swap_start(sw);
}

static void
kick_msg(void *arg)
{
	raid_rebuild_kick(arg);
}

/* --- control path --- */

struct spare_add {
	struct raid_array *a;
	struct spare *s;
	_Atomic bool done;
};

static void
spare_add_msg(void *arg)
{
	struct spare_add *sa = arg;

	struct spare **tail = &sa->a->spares;

	/* First added, first used. */
	while (*tail != NULL)
		tail = &(*tail)->next;
	sa->s->next = NULL;
	*tail = sa->s;
	atomic_fetch_add(&sa->a->nspares, 1);
	raid_rebuild_kick(sa->a);
	atomic_store_explicit(&sa->done, true, memory_order_release);
}

int
uraid_array_add_spare(struct uraid_bdev *array, const char *name, char *err, size_t err_len)
{
	struct spare_add sa = {0};
	struct raid_array *a;
	struct uraid_bdev *b = uraid_bdev_get_by_name(name);
	uint64_t need;
	int rc;

	if (!uraid_bdev_is_array(array)) {
		err_set(err, err_len, "not an array");
		return -EINVAL;
	}
	a = raid_from_bdev(array);
	if (!(a->parity || a->mirrored)) {
		err_set(err, err_len, "%s has no redundancy to rebuild a member from",
			uraid_raid_level_name(a->l.level));
		return -EINVAL;
	}
	if (b == NULL) {
		err_set(err, err_len, "no bdev named '%s'", name);
		return -ENODEV;
	}
	if (uraid_bdev_get_block_size(b) != a->bdev.block_size) {
		err_set(err, err_len, "'%s' has %u-byte blocks, the array %u", name,
			uraid_bdev_get_block_size(b), a->bdev.block_size);
		return -EINVAL;
	}
	need = a->data_offset_blocks + a->l.member_blocks;
	if (uraid_bdev_get_num_blocks(b) < need) {
		err_set(err, err_len, "'%s' is too small: %lu blocks, the array needs %lu", name,
			(unsigned long)uraid_bdev_get_num_blocks(b), (unsigned long)need);
		return -ENOSPC;
	}
	sa.a = a;
	sa.s = calloc(1, sizeof(*sa.s));
	if (sa.s == NULL)
		return -ENOMEM;
	snprintf(sa.s->name, sizeof(sa.s->name), "%s", name);
	rc = uraid_bdev_open(name, true, NULL, NULL, &sa.s->desc);
	if (rc == 0)
		rc = uraid_bdev_claim(sa.s->desc, a->bdev.name);
	if (rc != 0) {
		const char *by = uraid_bdev_claimed_by(b);

		if (sa.s->desc)
			uraid_bdev_close(sa.s->desc);
		free(sa.s);
		err_set(err, err_len, "'%s' is in use%s%s", name, by ? " by " : "", by ? by : "");
		return -EBUSY;
	}
	uraid_reactor_send(uraid_reactor_get(0), spare_add_msg, &sa);
	uraid_runtime_wait(&sa.done);
	return 0;
}

struct remove {
	struct raid_array *a;
	unsigned slot;
	_Atomic bool done;
};

static void
removed(struct swap *sw)
{
	struct remove *rm = sw->ctx;
	struct raid_array *a = sw->a;

	free(sw);
	if (a->has_sb)
		raid_sb_update(a, NULL);
	atomic_store_explicit(&rm->done, true, memory_order_release);
	raid_rebuild_kick(a);
}

static void
remove_msg(void *arg)
{
	struct remove *rm = arg;
	struct swap *sw = calloc(1, sizeof(*sw));

	if (g_swapping || sw == NULL) {
		/* Another swap is walking the channels: try again shortly. */
		free(sw);
		uraid_reactor_send(uraid_reactor_self(), remove_msg, rm);
		return;
	}
	sw->a = rm->a;
	sw->slot = rm->slot;
	sw->done = removed;
	sw->ctx = rm;
	swap_start(sw);
}

int
uraid_array_remove_member(struct uraid_bdev *array, const char *name, char *err, size_t err_len)
{
	struct remove rm = {0};
	struct raid_array *a;
	int slot = -1;

	if (!uraid_bdev_is_array(array)) {
		err_set(err, err_len, "not an array");
		return -EINVAL;
	}
	a = raid_from_bdev(array);
	for (unsigned i = 0; i < a->l.n; i++) {
		if (a->members[i].desc && strcmp(a->members[i].name, name) == 0)
			slot = (int)i;
	}
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
raid_rebuild_notify(struct raid_array *a)
{
	uraid_reactor_send(uraid_reactor_get(0), kick_msg, a);
}
