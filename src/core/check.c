/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Check and scrub: every stripe (for mirrors, every strip) is read whole by its owner and its
 * parity or copies compared, a window of stripes at a time, while I/O goes on. A scrub with
 * repair also fixes what it finds (see op_plan_repair in stripe.c): a single bad column
 * located with two or more parities is rewritten, otherwise parity is recomputed from the
 * data; mirrors take the first copy. The rate shares the rebuild's bandwidth cap.
 */
#include <stdlib.h>

#include "core.h"

#define CHECK_WINDOW 8

struct check_run {
	struct raid_array *a;
	uint64_t units;
	uint64_t next;
	unsigned inflight;
	int status;
	bool repair;
	uint64_t unit_bytes;
	double tokens;
	uint64_t last_us;
	struct uraid_poller *poller;
	struct uraid_array_check_result res;
	uraid_array_check_cb cb;
	void *cb_arg;
};

static void check_issue(struct check_run *cr);

static void
check_part_done(struct stripe_part *part, int status)
{
	struct check_run *cr = part->ctx;

	cr->inflight--;
	cr->res.stripes_checked++;
	if (status != 0 && cr->status == 0 && status != -EIO)
		cr->status = status;
	if (part->unreadable || status == -EIO) {
		cr->res.unreadable++;
	} else if (part->bad) {
		if (cr->res.bad_stripes < URAID_CHECK_MAX_REPORTED)
			cr->res.bad[cr->res.bad_stripes] = part->stripe;
		cr->res.bad_stripes++;
		cr->res.repaired += part->repaired && status == 0;
		cr->res.located += part->bad_column >= 0;
	}
	atomic_store(&cr->a->scrub_done, cr->res.stripes_checked);
	free(part);
	check_issue(cr);
}

static void
check_issue(struct check_run *cr)
{
	while (cr->inflight < CHECK_WINDOW && cr->next < cr->units && cr->status == 0 &&
	       !cr->a->stopping) {
		struct stripe_part *part;
		uint64_t blocks;

		if (g_rebuild_opts.max_bw_mb_sec != 0) {
			if (cr->tokens < (double)cr->unit_bytes)
				return; /* the poller refills */
			cr->tokens -= (double)cr->unit_bytes;
		}
		blocks = lsa_unit_check_blocks(cr->a, cr->next);
		if (blocks == 0) {
			/* A log array's stripe that holds nothing: nothing in it to check. */
			cr->next++;
			cr->res.stripes_checked++;
			continue;
		}
		part = calloc(1, sizeof(*part));
		if (part == NULL) {
			cr->status = -ENOMEM;
			break;
		}
		part->a = cr->a;
		part->kind = PART_CHECK;
		part->stripe = cr->next++;
		part->num_blocks = blocks;
		part->origin = uraid_reactor_self();
		part->done = check_part_done;
		part->ctx = cr;
		part->repair = cr->repair;
		part->bad_column = -1;
		cr->inflight++;
		stripe_submit(part);
	}
	if (cr->inflight == 0) {
		uraid_poller_unregister(&cr->poller);
		atomic_store(&cr->a->scrub_total, 0);
		cr->cb(cr->cb_arg, cr->status, &cr->res);
		free(cr);
	}
}

static int
check_poll(void *arg)
{
	struct check_run *cr = arg;
	uint64_t now = uraid_now_us();

	if (g_rebuild_opts.max_bw_mb_sec != 0) {
		cr->tokens += (double)(now - cr->last_us) * (double)g_rebuild_opts.max_bw_mb_sec;
		if (cr->tokens > (double)cr->unit_bytes * CHECK_WINDOW)
			cr->tokens = (double)cr->unit_bytes * CHECK_WINDOW;
	}
	cr->last_us = now;
	if (cr->inflight == 0 && cr->next < cr->units)
		check_issue(cr);
	return URAID_POLLER_IDLE;
}

static void
check_start(void *arg)
{
	struct check_run *cr = arg;

	cr->last_us = uraid_now_us();
	cr->poller = uraid_poller_register(check_poll, cr, 1000);
	check_issue(cr);
}

int
uraid_array_check(struct uraid_bdev *bdev, uraid_array_check_cb cb, void *cb_arg)
{
	return uraid_array_scrub(bdev, false, cb, cb_arg);
}

int
uraid_array_scrub(struct uraid_bdev *bdev, bool repair, uraid_array_check_cb cb, void *cb_arg)
{
	struct check_run *cr;
	struct raid_array *a;

	if (!uraid_bdev_is_array(bdev) || uraid_reactor_self() == NULL)
		return -EINVAL;
	a = raid_from_bdev(bdev);
	if (repair && a->sb_zone_blocks != 0)
		return -EOPNOTSUPP; /* a repair writes in place; zones take writes in order only */
	cr = calloc(1, sizeof(*cr));
	if (cr == NULL)
		return -ENOMEM;
	cr->a = a;
	cr->cb = cb;
	cr->cb_arg = cb_arg;
	cr->repair = repair;
	cr->unit_bytes = a->l.strip_blocks * a->bdev.block_size * a->l.n;
	if (a->parity)
		cr->units = layout_strips_to_stripes(&a->l, a->l.member_blocks / a->l.strip_blocks);
	else if (a->mirrored)
		cr->units = layout_array_blocks(&a->l) / a->l.strip_blocks;
	atomic_store(&a->scrub_done, 0);
	atomic_store(&a->scrub_total, cr->units);
	/* raid0 and concat have nothing to compare: units stays 0. Start from a message so
	 * cb never runs inside this call. */
	uraid_reactor_send(uraid_reactor_self(), check_start, cr);
	return 0;
}
