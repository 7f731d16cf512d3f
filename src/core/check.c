/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The parity check: every stripe (for mirrors, every strip) is read whole by its owner and
 * its parity or copies compared, a window of stripes at a time, while I/O may go on.
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
	}
	free(part);
	check_issue(cr);
}

static void
check_issue(struct check_run *cr)
{
	while (cr->inflight < CHECK_WINDOW && cr->next < cr->units && cr->status == 0) {
		struct stripe_part *part = calloc(1, sizeof(*part));

		if (part == NULL) {
			cr->status = -ENOMEM;
			break;
		}
		part->a = cr->a;
		part->kind = PART_CHECK;
		part->stripe = cr->next++;
		part->num_blocks = layout_stripe_data_blocks(&cr->a->l);
		part->origin = uraid_reactor_self();
		part->done = check_part_done;
		part->ctx = cr;
		cr->inflight++;
		stripe_submit(part);
	}
	if (cr->inflight == 0) {
		cr->cb(cr->cb_arg, cr->status, &cr->res);
		free(cr);
	}
}

static void
check_start(void *arg)
{
	check_issue(arg);
}

int
uraid_array_check(struct uraid_bdev *bdev, uraid_array_check_cb cb, void *cb_arg)
{
	struct check_run *cr;
	struct raid_array *a;

	if (!uraid_bdev_is_array(bdev) || uraid_reactor_self() == NULL)
		return -EINVAL;
	a = raid_from_bdev(bdev);
	cr = calloc(1, sizeof(*cr));
	if (cr == NULL)
		return -ENOMEM;
	cr->a = a;
	cr->cb = cb;
	cr->cb_arg = cb_arg;
	if (a->parity)
		cr->units = a->l.member_blocks / a->l.strip_blocks;
	else if (a->mirrored)
		cr->units = layout_array_blocks(&a->l) / a->l.strip_blocks;
	/* raid0 and concat have nothing to compare: units stays 0. Start from a message so
	 * cb never runs inside this call. */
	uraid_reactor_send(uraid_reactor_self(), check_start, cr);
	return 0;
}
