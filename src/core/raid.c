/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Arrays as bdevs: creation and validation, per-reactor channels, the healthy data path, and
 * member failure. The owner side (parity writes, degraded reads, mirror writes) is stripe.c.
 *
 * Data path on the reactor that receives an I/O:
 *   READ          split at strip boundaries into member reads, straight from the user's
 *                 buffers; mirrors pick the copy with the fewest I/Os outstanding. A chunk
 *                 whose member is missing, or whose read fails, goes to its stripe's owner
 *                 as a degraded read (mirrors retry another copy instead).
 *   WRITE         raid0/concat: split into member writes here. raid1/raid10: each strip's
 *                 share goes to that strip's owner (so all copies get the same data in the
 *                 same order). raid5/6/ec: each stripe's share goes to its owner.
 *   UNMAP/ZEROES  as WRITE; parity levels write zeroes with matching parity.
 *   FLUSH         every usable member.
 * Parts complete back on this reactor; the user's I/O completes when its last part does,
 * with the first error seen.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core.h"

static const struct {
	const char *name;
	enum uraid_raid_level level;
	enum uraid_raid5_layout layout;
} g_level_names[] = {
	{"raid0", URAID_RAID0, 0},
	{"0", URAID_RAID0, 0},
	{"raid1", URAID_RAID1, 0},
	{"1", URAID_RAID1, 0},
	{"raid10", URAID_RAID10, 0},
	{"10", URAID_RAID10, 0},
	{"concat", URAID_CONCAT, 0},
	{"raid5", URAID_RAID5, URAID_R5_LEFT_SYMMETRIC},
	{"5", URAID_RAID5, URAID_R5_LEFT_SYMMETRIC},
	{"raid5f", URAID_RAID5, URAID_R5_LEFT_ASYMMETRIC},
	{"5f", URAID_RAID5, URAID_R5_LEFT_ASYMMETRIC},
	{"raid6", URAID_RAID6, 0},
	{"6", URAID_RAID6, 0},
	{"ec", URAID_EC, 0},
	{"draid", URAID_DRAID, 0},
};

int
uraid_raid_level_parse(const char *name, enum uraid_raid_level *level,
		       enum uraid_raid5_layout *layout)
{
	for (size_t i = 0; i < ARRAY_SIZE(g_level_names); i++) {
		if (strcmp(name, g_level_names[i].name) == 0) {
			*level = g_level_names[i].level;
			*layout = g_level_names[i].layout;
			return 0;
		}
	}
	return -EINVAL;
}

const char *
uraid_raid_level_name(enum uraid_raid_level level)
{
	static const char *const names[] = {"raid0", "raid1", "raid10", "concat",
					    "raid5", "raid6", "ec",	"draid"};

	return (unsigned)level < ARRAY_SIZE(names) ? names[level] : "?";
}

static const char *const g_policy_names[] = {"default", "none", "bitmap", "ppl", "journal", "log"};

int
uraid_policy_parse(const char *name, enum uraid_consistency_policy *policy)
{
	for (size_t i = 0; i < ARRAY_SIZE(g_policy_names); i++) {
		if (strcmp(name, g_policy_names[i]) == 0) {
			*policy = (enum uraid_consistency_policy)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *
uraid_policy_name(enum uraid_consistency_policy policy)
{
	return (unsigned)policy < ARRAY_SIZE(g_policy_names) ? g_policy_names[policy] : "?";
}

/* --- member I/O --- */

struct member_io *
mio_alloc(struct raid_channel *rch, unsigned member, int iovcnt)
{
	struct member_io *mio = pool_get(&rch->mios);

	if (mio == NULL)
		return NULL;
	/* Field by field: cheaper than clearing the header (a string store) on every I/O. */
	mio->rch = rch;
	mio->member = member;
	mio->type = URAID_IO_READ;
	mio->flags = 0;
	mio->offset_blocks = 0;
	mio->num_blocks = 0;
	mio->iov = mio->iov_inline;
	mio->iovcnt = 0;
	mio->done = NULL;
	mio->ctx = NULL;
	mio->tag = 0;
	mio->to_repl = false;
	mio->meta = false;
	mio->log = false;
	mio->legs = 0;
	mio->append_lba = 0;
	mio->status = 0;
	if (iovcnt > (int)ARRAY_SIZE(mio->iov_inline)) {
		mio->iov = malloc((size_t)iovcnt * sizeof(struct iovec));
		if (mio->iov == NULL) {
			pool_put(&rch->mios, mio);
			return NULL;
		}
	}
	return mio;
}

void
mio_free(struct member_io *mio)
{
	if (mio->iov != mio->iov_inline)
		free(mio->iov);
	pool_put(&mio->rch->mios, mio);
}

int
mio_set_iov(struct member_io *mio, const struct iovec *iov, int iovcnt, uint64_t byte_off,
	    uint64_t len)
{
	int need;

	if (iovcnt == 1 && len > 0 && byte_off + len <= iov[0].iov_len) { /* one buffer */
		mio->iov[0] = (struct iovec){(uint8_t *)iov[0].iov_base + byte_off, len};
		mio->iovcnt = 1;
		return 0;
	}
	need = uraid_iov_slice(iov, iovcnt, byte_off, len, NULL, 0);

	/* The slice may need more iovecs than the inline ones. */
	if (need > (int)ARRAY_SIZE(mio->iov_inline)) {
		if (mio->iov != mio->iov_inline)
			free(mio->iov);
		mio->iov = malloc((size_t)need * sizeof(*mio->iov));
		if (mio->iov == NULL) {
			mio->iov = mio->iov_inline;
			return -ENOMEM;
		}
	}
	mio->iovcnt = uraid_iov_slice(iov, iovcnt, byte_off, len, mio->iov, need);
	return 0;
}

/*
 * Writes to a member that has a replacement being copied to go to both (two legs); the I/O
 * completes once both have, with the member's status, and a failed replacement leg only ends
 * the replacement. With the member gone, the replacement leg is the only one.
 */
static void
mio_leg_done(struct member_io *mio)
{
	if (--mio->legs == 0)
		mio->done(mio, mio->status);
}

static void
mio_complete_cb(void *arg, int status)
{
	struct member_io *mio = arg;

	mio->rch->outstanding[mio->member]--;
	if (status != 0 && mio_on_journal(mio))
		raid_journal_failed(mio->rch->a, status);
	if (mio->legs == 0) {
		mio->done(mio, status);
		return;
	}
	mio->status = status;
	mio_leg_done(mio);
}

/* A zone append: it must have gone where the array put its stripe (each zone of a log array
 * has one stripe write out at a time, so the write pointer is that place); anywhere else, the
 * member does not hold the zone as the array does, and it is failed. */
static void
mio_append_cb(void *arg, int status)
{
	struct member_io *mio = arg;
	struct raid_array *a = mio->rch->a;
	uint64_t want = mio->offset_blocks + a->data_offset_blocks;

	if (status == 0 && mio->append_lba != want) {
		LOG_ERR("%s: member %s put a zone append at block %lu, not at %lu where the "
			"array's stripe is",
			a->bdev.name, a->members[mio->member].name, (unsigned long)mio->append_lba,
			(unsigned long)want);
		status = -EIO;
	}
	if (status == 0)
		raid_stat_add(a, mio->rch->reactor, RS_APPENDS, 1);
	mio_complete_cb(mio, status);
}

static void
repl_leg_done(struct member_io *leg, int status)
{
	struct member_io *parent = leg->ctx;

	if (status != 0)
		raid_replacement_failed(leg->rch->a, leg->member, status);
	mio_free(leg);
	mio_leg_done(parent);
}

static int
mio_issue(struct member_io *mio)
{
	struct raid_channel *rch = mio->rch;
	struct uraid_bdev_desc *desc =
		mio->to_repl ? rch->rdesc[mio->member] : rch->mdesc[mio->member];
	struct uraid_io_channel *ch =
		mio->to_repl ? rch->repl_ch[mio->member] : rch->mch[mio->member];
	/* Member block numbers are relative to the data area, after the superblocks, except
	 * for the metadata areas'. */
	uint64_t offset = mio->offset_blocks + (mio->meta ? 0 : rch->a->data_offset_blocks);

	if (mio_on_journal(mio)) {
		/* The member's log area is its slot's on the journal device. */
		desc = rch->a->jdesc;
		ch = rch->jch;
		offset += (uint64_t)mio->member * rch->a->ppl_blocks;
	}

	switch (mio->type) {
	case URAID_IO_READ:
		return uraid_bdev_readv(desc, ch, mio->iov, mio->iovcnt, offset, mio->num_blocks,
					mio_complete_cb, mio);
	case URAID_IO_WRITE:
		if (rch->a->sb_zone_blocks != 0 && !mio->meta && !mio_on_journal(mio)) {
			/* Zoned members hold only whole stripes written in zone order: the
			 * stripe goes down as an append to its zone, and the member says where
			 * it went (mio_append_cb checks it). */
			return uraid_bdev_zone_appendv(desc, ch, mio->iov, mio->iovcnt,
						       offset - offset % rch->a->sb_zone_blocks,
						       mio->num_blocks, mio->flags,
						       &mio->append_lba, mio_append_cb, mio);
		}
		return uraid_bdev_writev(desc, ch, mio->iov, mio->iovcnt, offset, mio->num_blocks,
					 mio->flags, mio_complete_cb, mio);
	case URAID_IO_FLUSH:
		return uraid_bdev_flush(desc, ch, mio_complete_cb, mio);
	case URAID_IO_UNMAP:
		return uraid_bdev_unmap(desc, ch, offset, mio->num_blocks, mio_complete_cb, mio);
	case URAID_IO_WRITE_ZEROES:
		return uraid_bdev_write_zeroes(desc, ch, offset, mio->num_blocks, mio_complete_cb,
					       mio);
	case URAID_IO_ZONE_MANAGEMENT:
		/* A zoned member's zone at offset; num_blocks is the action. */
		return uraid_bdev_zone_management(desc, ch, offset,
						  (enum uraid_zone_action)mio->num_blocks,
						  mio_complete_cb, mio);
	default:
		return -EINVAL;
	}
}

/*
 * A channel created while its slot was failed has no member channel; once the slot holds a
 * member again (a spare took it: desc is set before the state says so), the channel takes
 * one on first use. Swap walks only reach the channels that exist when they run.
 */
static bool
member_channel_ready(struct raid_channel *rch, unsigned member)
{
	struct uraid_bdev_desc *desc;

	if (rch->mch[member] != NULL)
		return true;
	desc = __atomic_load_n(&rch->a->members[member].desc, __ATOMIC_ACQUIRE);
	if (desc == NULL)
		return false;
	rch->mch[member] = uraid_bdev_get_io_channel(desc);
	rch->mdesc[member] = rch->mch[member] ? desc : NULL;
	return rch->mch[member] != NULL;
}

bool
raid_member_usable(struct raid_channel *rch, unsigned member)
{
	int st = atomic_load_explicit(&rch->a->members[member].state, memory_order_acquire);

	return (st == URAID_MEMBER_ACTIVE || st == URAID_MEMBER_REBUILDING) &&
	       member_channel_ready(rch, member);
}

static bool
repl_usable(struct raid_channel *rch, unsigned member)
{
	return rch->repl_ch[member] != NULL &&
	       atomic_load_explicit(&rch->a->members[member].repl_state, memory_order_acquire) ==
		       REPL_COPYING;
}

bool
raid_member_writable(struct raid_channel *rch, unsigned member)
{
	return raid_member_usable(rch, member) || repl_usable(rch, member);
}

static bool
mio_usable(struct member_io *mio)
{
	if (mio_on_journal(mio))
		return mio->rch->jch != NULL; /* (a slot's log area, whatever its member) */
	return mio->to_repl ? repl_usable(mio->rch, mio->member)
			    : raid_member_usable(mio->rch, mio->member);
}

/* A rebuilding member holds unit (a stripe, or a strip of it for mirrors) when its rebuild
 * passed it, or, in a log array over zoned members, when the unit's zone was opened since the
 * rebuild began (every row of it went to the member too). */
static bool
rebuilding_holds(struct raid_array *a, struct raid_member *mb, uint64_t unit)
{
	/* Acquire: the rebuild's writes below this position happen before we see it. */
	return unit < atomic_load_explicit(&mb->rebuilt, memory_order_acquire) ||
	       (a->sb_zone_blocks != 0 && lsa_zoned_fresh(a, unit));
}

bool
raid_member_readable(struct raid_channel *rch, unsigned member, uint64_t unit)
{
	struct raid_member *mb;
	int st;

	if (member >= rch->a->l.n)
		return false; /* (a strip that is nowhere yet, see draid_read_loc) */
	mb = &rch->a->members[member];
	st = atomic_load_explicit(&mb->state, memory_order_acquire);
	if (st != URAID_MEMBER_ACTIVE &&
	    !(st == URAID_MEMBER_REBUILDING && rebuilding_holds(rch->a, mb, unit)))
		return false;
	return member_channel_ready(rch, member);
}

bool
raid_member_takes_write(struct raid_channel *rch, unsigned member, uint64_t unit)
{
	struct raid_member *mb = &rch->a->members[member];

	/* Its zones are written in order by its rebuild, from the start of each. */
	return rch->a->sb_zone_blocks == 0 ||
	       atomic_load_explicit(&mb->state, memory_order_acquire) != URAID_MEMBER_REBUILDING ||
	       rebuilding_holds(rch->a, mb, unit);
}

static int mio_submit_usable(struct member_io *mio);

static int
mio_submit_one(struct member_io *mio)
{
	return mio_usable(mio) ? mio_submit_usable(mio) : -ENODEV;
}

/* The replacement's leg of a write: a copy of mio aimed at the replacement. */
static int
mio_submit_leg(struct member_io *mio)
{
	struct member_io *leg = mio_alloc(mio->rch, mio->member, mio->iovcnt);

	if (leg == NULL) {
		raid_replacement_failed(mio->rch->a, mio->member, -ENOMEM);
		return -ENOMEM;
	}
	leg->type = mio->type;
	leg->flags = mio->flags;
	leg->offset_blocks = mio->offset_blocks;
	leg->num_blocks = mio->num_blocks;
	leg->meta = mio->meta;
	memcpy(leg->iov, mio->iov, (size_t)mio->iovcnt * sizeof(*mio->iov));
	leg->iovcnt = mio->iovcnt;
	leg->to_repl = true;
	leg->done = repl_leg_done;
	leg->ctx = mio;
	if (mio_submit_one(leg) != 0) {
		mio_free(leg);
		raid_replacement_failed(mio->rch->a, mio->member, -ENODEV);
		return -ENODEV;
	}
	return 0;
}

int
mio_submit(struct member_io *mio)
{
	bool usable = mio_usable(mio); /* (the member's, or the replacement's for to_repl) */
	bool leg = !mio->to_repl && mio->type != URAID_IO_READ && !mio_on_journal(mio) &&
		   repl_usable(mio->rch, mio->member);

	if (!leg)
		return usable ? mio_submit_usable(mio) : -ENODEV;
	/* A leg for the replacement, one for the member (if it is there), and a guard. The
	 * status is the member's; without it the replacement holds the slot's writes. */
	mio->legs = 2; /* counted before each submit, so no completion can find it short */
	mio->status = 0;
	if (mio_submit_leg(mio) != 0)
		mio->legs--;
	if (usable) {
		mio->legs++;
		if (mio_submit_usable(mio) != 0) {
			mio->legs--;
			mio->status = -EIO;
		}
	}
	if (mio->legs == 1) {
		/* Nothing was issued: refused now, as for a single device. */
		mio->legs = 0;
		return -ENODEV;
	}
	mio_leg_done(mio);
	return 0;
}

/* Issue mio, its member (or replacement) found usable. */
static int
mio_submit_usable(struct member_io *mio)
{
	struct raid_channel *rch = mio->rch;
	int rc;

	rch->outstanding[mio->member]++;
	if (!STAILQ_EMPTY(&rch->retry)) {
		STAILQ_INSERT_TAIL(&rch->retry, mio, link);
		return 0;
	}
	rc = mio_issue(mio);
	if (rc == -ENOMEM || rc == -EAGAIN) {
		/* Back-pressure from the member: retried by the channel's poller. */
		STAILQ_INSERT_TAIL(&rch->retry, mio, link);
		return 0;
	}
	if (rc != 0) {
		rch->outstanding[mio->member]--;
		LOG_ERR("%s: member %s refused an I/O: %s", rch->a->bdev.name,
			rch->a->members[mio->member].name, strerror(-rc));
		return -ENODEV;
	}
	return 0;
}

static int
raid_poll(void *arg)
{
	struct raid_channel *rch = arg;
	struct member_io *mio;
	struct stripe_part *part;
	int did = 0;

	while ((part = TAILQ_FIRST(&rch->held)) != NULL &&
	       atomic_load_explicit(&rch->a->sb_done, memory_order_acquire) >= part->held_until) {
		TAILQ_REMOVE(&rch->held, part, link);
		stripe_part_release(part);
		did = 1;
	}
	if (ppl_poll(rch))
		did = 1;
	/* Buckets waiting for a claimant keep the reactor polling: letting go is a store, which
	 * does not wake a sleeping reactor. */
	if (rch->claim_waits != 0) {
		stripe_claims_poll(rch);
		did = 1;
	}

	while ((mio = STAILQ_FIRST(&rch->retry)) != NULL) {
		int rc = mio_usable(mio) ? mio_issue(mio) : -ENODEV;

		if (rc == -ENOMEM || rc == -EAGAIN)
			break;
		STAILQ_REMOVE_HEAD(&rch->retry, link);
		did = 1;
		if (rc != 0)
			mio_complete_cb(mio, -EIO);
	}
	return did ? URAID_POLLER_BUSY : URAID_POLLER_IDLE;
}

/* --- member failure --- */

/* Operations parked for log space or for a stripe's entries wake up and fail: with the array
 * offline no flush round or anchor may free space any more (the members or the journal device
 * that would take them are gone), so nothing else would wake them. */
static void
offline_wake_msg(void *arg)
{
	struct raid_array *a = arg;
	unsigned r = uraid_reactor_index(uraid_reactor_self());

	if (a->owner_ch[r] != NULL)
		stripe_ppl_ready(uraid_io_channel_get_ctx(a->owner_ch[r]));
}

/* The array goes offline (for good: until it is assembled again). Any thread. */
static void
raid_set_offline(struct raid_array *a)
{
	if (!atomic_exchange(&a->online, false))
		return;
	for (unsigned r = 0; r < uraid_reactor_count(); r++)
		uraid_reactor_send(uraid_reactor_get(r), offline_wake_msg, a);
}

static bool
raid10_has_lost_group(struct raid_array *a)
{
	/* The copies of strip L sit on members (L*c + j) mod n; the pattern repeats every n
	 * strips, so checking L = 0..n-1 covers every group. */
	for (unsigned L = 0; L < a->l.n; L++) {
		unsigned alive = 0;

		for (unsigned j = 0; j < a->l.copies; j++) {
			unsigned mb = (L * a->l.copies + j) % a->l.n;

			alive += atomic_load(&a->members[mb].state) == URAID_MEMBER_ACTIVE;
		}
		if (alive == 0)
			return true;
	}
	return false;
}

static bool
raid_beyond_tolerance(struct raid_array *a)
{
	unsigned failed = atomic_load(&a->failed);

	switch (a->l.level) {
	case URAID_RAID0:
	case URAID_CONCAT:
		return failed > 0;
	case URAID_RAID1:
		return failed >= a->l.n;
	case URAID_RAID10:
		return raid10_has_lost_group(a);
	case URAID_DRAID:
		return failed - raid_ds_covered(a) > a->l.m;
	default:
		return failed > a->l.m;
	}
}

unsigned
raid_ds_covered(const struct raid_array *a)
{
	unsigned n = 0;

	for (unsigned j = 0; a->draid != NULL && j < a->draid->s; j++)
		n += atomic_load_explicit(&a->ds[j].state, memory_order_acquire) == DS_FULL;
	return n;
}

int
raid_ds_holder(const struct raid_array *a, unsigned slot, uint32_t skip, int *state)
{
	for (unsigned j = 0; a->draid != NULL && j < a->draid->s; j++) {
		int st = atomic_load_explicit(&a->ds[j].state, memory_order_acquire);

		if (st != DS_FREE && !(skip & (1u << j)) &&
		    atomic_load_explicit(&a->ds[j].slot, memory_order_relaxed) == slot) {
			*state = st;
			return (int)j;
		}
	}
	return -1;
}

/*
 * The column's home (draid.c's table); then, while the member it is on is a slot that a
 * distributed spare holds, that spare's strip in the same row (another member: the spare
 * positions of a row hold no column of it). A spare strip may be on a slot another spare
 * holds, hence the walk, each spare at most once. A spare still filling has the column only
 * below its `done`; one draining keeps both places written and reads the slot's new member
 * below its `done`.
 */
void
raid_col_locate(const struct raid_array *a, uint64_t stripe, unsigned col, struct col_loc *loc)
{
	const struct layout *l = &a->l;
	uint32_t alt_via = 0;
	int j, st;

	loc->alt = -1;
	loc->ready = loc->durable = true;
	loc->via = 0;
	if (l->level != URAID_DRAID) {
		loc->member = col < l->k ? layout_data_member(l, stripe, col)
					 : layout_parity_member(l, stripe, col - l->k);
		loc->row = stripe;
		return;
	}
	draid_locate(l->dm, stripe, col, &loc->member, &loc->row);
	if (atomic_load_explicit(&a->ds_used, memory_order_acquire) == 0)
		return;
	while ((j = raid_ds_holder(a, loc->member, loc->via, &st)) >= 0) {
		const struct draid_spare *ds = &a->ds[j];
		unsigned spare = draid_spare_member(l->dm, loc->row, (unsigned)j);
		uint64_t done = atomic_load_explicit(&ds->done, memory_order_acquire);

		loc->via |= 1u << j;
		if (st == DS_DRAINING) {
			alt_via = loc->via;
			if (stripe < done) {
				loc->alt =
					(int)spare; /* back on the slot; the spare kept current */
				break;
			}
			loc->alt = (int)loc->member;
		} else if (st == DS_FILLING) {
			if (stripe >= done)
				loc->ready = false;
			if (stripe >= atomic_load_explicit(&ds->durable, memory_order_acquire))
				loc->durable = false;
		}
		loc->member = spare;
	}
	/* The second place walks on from where it is, as the first does. */
	while (loc->alt >= 0 && (j = raid_ds_holder(a, (unsigned)loc->alt, alt_via, &st)) >= 0) {
		alt_via |= 1u << j;
		loc->alt = (int)draid_spare_member(l->dm, loc->row, (unsigned)j);
	}
}

/* draid: the member of slot `member` failed while a distributed spare's strips were copied
 * back onto it: the spare, written all along, holds the slot again. */
static void
ds_drain_failed(struct raid_array *a, unsigned member)
{
	for (unsigned j = 0; a->draid != NULL && j < a->draid->s; j++) {
		int st = DS_DRAINING;

		if (atomic_load(&a->ds[j].slot) == member &&
		    atomic_compare_exchange_strong(&a->ds[j].state, &st, DS_FULL))
			LOG_WARNING("%s: slot %u failed while its distributed spare %u was copied "
				    "back; the spare holds it again",
				    a->bdev.name, member, j);
	}
}

/* A copy of a member's name, for a reactor that may not be reactor 0 (see names_lock). */
static void
member_name_copy(struct raid_array *a, unsigned member, char *buf, size_t len)
{
	pthread_mutex_lock(&a->names_lock);
	snprintf(buf, len, "%s", a->members[member].name);
	pthread_mutex_unlock(&a->names_lock);
}

void
raid_member_failed(struct raid_array *a, unsigned member, int status)
{
	int expected = URAID_MEMBER_ACTIVE;
	struct uraid_reactor *self = uraid_reactor_self();
	char name[URAID_BDEV_NAME_MAX];

	if (self)
		raid_stat_add(a, uraid_reactor_index(self), RS_MEMBER_ERR, 1);
	if (!atomic_compare_exchange_strong(&a->members[member].state, &expected,
					    URAID_MEMBER_FAILED)) {
		/* A replacement that fails while being rebuilt was never counted as good (the
		 * slot is already in `failed`), but it is trusted all the same: the superblocks
		 * on disk say it holds good data below its checkpoint. A write that skips it
		 * from now on must wait for the superblocks to say it failed, exactly as for an
		 * active member (sb_need), or a crash before that round brings it back as
		 * rebuilt up to the checkpoint, missing an acknowledged write there: a mirror's
		 * resync or read then takes its stale copy over the good one, a parity level
		 * decodes from a stale column. */
		if (expected == URAID_MEMBER_REBUILDING &&
		    atomic_compare_exchange_strong(&a->members[member].state, &expected,
						   URAID_MEMBER_FAILED)) {
			member_name_copy(a, member, name, sizeof(name));
			LOG_ERR("%s: replacement %s (slot %u) failed during its rebuild (%s)",
				a->bdev.name, name, member, strerror(-status));
			if (a->has_sb) {
				atomic_fetch_add(&a->sb_need, 1);
				raid_sb_update(a, NULL);
			}
			raid_rebuild_notify(a);
		}
		return;
	}
	atomic_fetch_add(&a->failed, 1);
	ds_drain_failed(a, member);
	if (a->has_sb)
		atomic_fetch_add(&a->sb_need, 1);
	member_name_copy(a, member, name, sizeof(name));
	if (a->members[member].failed_by_request)
		LOG_WARNING("%s: member %s (slot %u) failed by request; the array continues %s",
			    a->bdev.name, name, member,
			    raid_beyond_tolerance(a) ? "OFFLINE" : "degraded");
	else
		LOG_ERR("%s: member %s (slot %u) failed (%s); the array continues %s", a->bdev.name,
			name, member, strerror(-status),
			raid_beyond_tolerance(a) ? "OFFLINE" : "degraded");
	if (a->has_sb)
		raid_sb_update(a, NULL); /* the failure outlives a restart */
	if (raid_beyond_tolerance(a)) {
		raid_set_offline(a);
		LOG_ERR("%s: more members failed than %s tolerates; all I/O fails with EIO until "
			"members are restored",
			a->bdev.name, uraid_raid_level_name(a->l.level));
	} else if (a->parity || a->mirrored) {
		raid_rebuild_notify(a); /* a spare, if there is one, takes the slot */
	}
}

void
raid_journal_failed(struct raid_array *a, int status)
{
	if (atomic_exchange(&a->jfailed, true))
		return;
	raid_set_offline(a);
	LOG_ERR("%s: the journal device %s failed (%s): the array is OFFLINE, all I/O fails with "
		"EIO (its members are kept as they are; give the journal redundancy, e.g. a raid1 "
		"array)",
		a->bdev.name, a->jname, strerror(-status));
}

int
raid_open_claimed(const char *what, const char *name, const char *owner,
		  uraid_bdev_event_cb event_cb, void *event_ctx, struct uraid_bdev_desc **desc,
		  char *err, size_t err_len)
{
	struct uraid_bdev *bdev;
	const char *by;
	int rc;

	*desc = NULL;
	rc = uraid_bdev_open(name, true, event_cb, event_ctx, desc);
	if (rc == 0)
		rc = uraid_bdev_claim(*desc, owner);
	if (rc == 0)
		return 0;
	if (*desc != NULL)
		uraid_bdev_close(*desc);
	*desc = NULL;
	bdev = uraid_bdev_get_by_name(name);
	if (bdev == NULL) {
		err_set(err, err_len, "%s'%s': no such bdev", what, name);
		return -ENODEV;
	}
	by = uraid_bdev_claimed_by(bdev);
	err_set(err, err_len, "%s'%s' is in use%s%s", what, name, by ? " by " : "",
		by ? by : " (open for writing)");
	return rc;
}

int
uraid_array_fail_member(struct uraid_bdev *bdev, unsigned member)
{
	struct raid_array *a;

	if (!uraid_bdev_is_array(bdev))
		return -EINVAL;
	a = raid_from_bdev(bdev);
	if (member >= a->l.n || atomic_load(&a->members[member].state) != URAID_MEMBER_ACTIVE)
		return -EINVAL;
	a->members[member].failed_by_request = true;
	raid_member_failed(a, member, -EIO);
	return 0;
}

/* --- parent I/O --- */

/* A parent I/O with its submit guard; done NULL: it completes io. */
static void
raid_io_init(struct raid_io *rio, struct raid_channel *rch, struct uraid_bdev_io *io,
	     void (*done)(struct raid_io *rio, int status), void *ctx, bool fresh)
{
	rio->io = io;
	rio->rch = rch;
	rio->status = 0;
	rio->remaining = 1; /* the submit guard */
	rio->done = done;
	rio->ctx = ctx;
	rio->fresh = fresh;
}

void
raid_io_part_done(struct raid_io *rio, int status)
{
	if (status != 0 && rio->status == 0)
		rio->status = status;
	if (--rio->remaining != 0)
		return;
	if (rio->done != NULL)
		rio->done(rio, rio->status);
	else
		uraid_bdev_io_complete(rio->io, rio->status);
}

/* Drop the submit guard; the I/O completes later even if every part already has. */
static void
raid_io_submitted(struct raid_io *rio)
{
	if (--rio->remaining != 0)
		return;
	if (rio->done != NULL)
		rio->done(rio, rio->status);
	else
		uraid_bdev_io_complete_deferred(rio->io, rio->status);
}

static void
part_done_on_origin(struct stripe_part *part, int status)
{
	struct raid_io *rio = part->ctx;

	pool_put(&rio->rch->parts, part);
	raid_io_part_done(rio, status);
}

/* A part of the parent's I/O for the stripe's owner (counted in the parent), or NULL with
 * the parent failed for want of memory. */
struct stripe_part *
raid_part_make(struct raid_io *rio, enum part_kind kind, uint64_t stripe, uint64_t start,
	       uint64_t num, uint64_t byte_off)
{
	struct uraid_bdev_io *io = rio->io;
	struct stripe_part *part = pool_get(&rio->rch->parts);

	if (part == NULL) {
		if (rio->status == 0)
			rio->status = -ENOMEM;
		return NULL;
	}
	memset(part, 0, sizeof(*part));
	part->a = raid_from_bdev(io->bdev);
	part->kind = kind;
	part->mirror_type = io->type;
	part->flags = io->flags;
	part->stripe = stripe;
	part->start_blocks = start;
	part->num_blocks = num;
	part->iov = io->iov;
	part->iovcnt = io->iovcnt;
	part->byte_off = byte_off;
	part->origin = uraid_reactor_self();
	part->done = part_done_on_origin;
	part->ctx = rio;
	part->fresh = rio->fresh;
	rio->remaining++;
	return part;
}

static void
send_part(struct raid_io *rio, enum part_kind kind, uint64_t stripe, uint64_t start, uint64_t num,
	  uint64_t byte_off)
{
	struct stripe_part *part = raid_part_make(rio, kind, stripe, start, num, byte_off);

	if (part != NULL)
		stripe_submit_on(part, rio->rch);
}

/* --- healthy reads --- */

static void read_chunk_done(struct member_io *mio, int status);

static int
pick_copy(struct raid_channel *rch, uint64_t lba, uint64_t num, struct layout_chunk *out)
{
	struct raid_array *a = rch->a;
	uint32_t best = UINT32_MAX;
	int found = -1;
	/* Copies may differ where a crash left a write half done: until the resync makes them
	 * agree, read the copy the resync will keep (the first readable one). */
	bool first = bitmap_in_resync(a, lba / a->l.strip_blocks);

	for (unsigned c = 0; c < a->l.copies; c++) {
		struct layout_chunk ch;

		layout_map(&a->l, lba, num, c, &ch);
		if (raid_member_readable(rch, ch.member,
					 ch.member_offset_blocks / a->l.strip_blocks) &&
		    rch->outstanding[ch.member] < best) {
			best = rch->outstanding[ch.member];
			*out = ch;
			found = 0;
			if (first)
				break;
		}
	}
	return found;
}

/* draid with distributed spares in use: where the data strip holding lba is now (a strip
 * still being filled into a spare reads as unreadable: the owner decodes it). */
static void
draid_read_loc(struct raid_array *a, uint64_t lba, struct layout_chunk *ch)
{
	uint64_t strip = lba / a->l.strip_blocks;
	struct col_loc loc;

	raid_col_locate(a, strip / a->l.k, (unsigned)(strip % a->l.k), &loc);
	ch->member = loc.ready ? loc.member : a->l.n; /* n: readable nowhere */
	ch->member_offset_blocks = loc.row * a->l.strip_blocks + lba % a->l.strip_blocks;
}

/* Read [lba, +num) of the array into the parent's buffers at byte_off: one member read per
 * strip chunk, or a degraded read through the owner. */
static void
read_range(struct raid_io *rio, uint64_t lba, uint64_t num, uint64_t byte_off)
{
	struct raid_channel *rch = rio->rch;
	struct raid_array *a = rch->a;
	uint32_t bs = a->bdev.block_size;

	while (num > 0) {
		struct layout_chunk ch;
		struct member_io *mio;
		bool ok;

		if (a->mirrored) {
			layout_map(&a->l, lba, num, 0, &ch);
			ok = pick_copy(rch, lba, ch.num_blocks, &ch) == 0;
		} else {
			layout_map(&a->l, lba, num, 0, &ch);
			if (a->draid != NULL &&
			    atomic_load_explicit(&a->ds_used, memory_order_relaxed))
				draid_read_loc(a, lba, &ch);
			ok = raid_member_readable(rch, ch.member,
						  ch.member_offset_blocks / a->l.strip_blocks);
		}
		if (!ok && a->parity) {
			uint64_t sdata = layout_stripe_data_blocks(&a->l);

			send_part(rio, PART_READ, lba / sdata, lba % sdata, ch.num_blocks,
				  byte_off);
			goto next;
		}
		if (!ok) {
			if (rio->status == 0)
				rio->status = -EIO;
			goto next;
		}
		mio = mio_alloc(rch, ch.member, 0);
		if (mio == NULL || mio_set_iov(mio, rio->io->iov, rio->io->iovcnt, byte_off,
					       ch.num_blocks * bs) != 0) {
			if (mio)
				mio_free(mio);
			rio->status = -ENOMEM;
			goto next;
		}
		mio->type = URAID_IO_READ;
		mio->offset_blocks = ch.member_offset_blocks;
		mio->num_blocks = ch.num_blocks;
		mio->done = read_chunk_done;
		mio->ctx = rio;
		mio->tag = lba;
		rio->remaining++;
		if (mio_submit(mio) != 0) {
			/* Became unusable between the check and now: retry this chunk. */
			rio->remaining--;
			mio_free(mio);
			continue;
		}
	next:
		lba += ch.num_blocks;
		num -= ch.num_blocks;
		byte_off += ch.num_blocks * bs;
	}
}

/* Journal write-back: a write is acknowledged before it is home, so a read of its stripe
 * waits at the owner until no write of the stripe is in flight (a gate), then reads the
 * members as usual. */
static void
gate_done(struct stripe_part *part, int status)
{
	struct raid_io *rio = part->ctx;
	struct raid_array *a = rio->rch->a;
	uint64_t lba = part->stripe * layout_stripe_data_blocks(&a->l) + part->start_blocks;

	if (status == 0)
		read_range(rio, lba, part->num_blocks, part->byte_off);
	pool_put(&rio->rch->parts, part);
	raid_io_part_done(rio, status);
}

static void owner_parts(struct raid_io *rio, enum part_kind kind,
			void (*done)(struct stripe_part *part, int status));

static void
read_chunk_done(struct member_io *mio, int status)
{
	struct raid_io *rio = mio->ctx;
	struct raid_array *a = mio->rch->a;
	uint64_t lba = mio->tag, num = mio->num_blocks, unit;
	unsigned member = mio->member;

	if (status == 0 || !(a->mirrored || a->parity)) {
		if (status != 0)
			raid_member_failed(a, member, status);
		mio_free(mio);
		raid_io_part_done(rio, status ? -EIO : 0);
		return;
	}
	/* A redundant array serves the read from the other members, through the stripe's
	 * owner, which also writes the data back to the member that failed the read (md's
	 * read-error correction); the member is failed only if that write fails too. */
	mio_free(mio);
	unit = layout_stripe_data_blocks(&a->l);
	{
		struct stripe_part *part =
			raid_part_make(rio, PART_READ, lba / unit, lba % unit, num,
				       (lba - rio->io->offset_blocks) * a->bdev.block_size);

		if (part != NULL) {
			part->exclude = member + 1;
			stripe_submit_on(part, rio->rch);
		}
	}
	raid_io_part_done(rio, 0); /* this chunk's share is now the part's (or the failure) */
}

/* --- raid0/concat writes and pass-through types --- */

static void
plain_chunk_done(struct member_io *mio, int status)
{
	struct raid_io *rio = mio->ctx;

	if (status != 0)
		raid_member_failed(mio->rch->a, mio->member, status);
	mio_free(mio);
	raid_io_part_done(rio, status ? -EIO : 0);
}

static void
plain_range(struct raid_io *rio)
{
	struct uraid_bdev_io *io = rio->io;
	struct raid_channel *rch = rio->rch;
	struct raid_array *a = rch->a;
	uint64_t lba = io->offset_blocks, num = io->num_blocks, byte_off = 0;

	while (num > 0) {
		struct layout_chunk ch;
		struct member_io *mio;

		layout_map(&a->l, lba, num, 0, &ch);
		mio = mio_alloc(rch, ch.member, 0);
		if (mio == NULL || (io->type == URAID_IO_WRITE &&
				    mio_set_iov(mio, io->iov, io->iovcnt, byte_off,
						ch.num_blocks * a->bdev.block_size) != 0)) {
			if (mio)
				mio_free(mio);
			rio->status = -ENOMEM;
			break;
		}
		mio->type = io->type;
		mio->flags = io->flags;
		mio->offset_blocks = ch.member_offset_blocks;
		mio->num_blocks = ch.num_blocks;
		mio->done = plain_chunk_done;
		mio->ctx = rio;
		rio->remaining++;
		if (mio_submit(mio) != 0) {
			rio->remaining--;
			rio->status = -EIO;
			mio_free(mio);
		}
		lba += ch.num_blocks;
		num -= ch.num_blocks;
		byte_off += ch.num_blocks * a->bdev.block_size;
	}
}

static void
held_flush_done(struct stripe_part *held, int status)
{
	struct raid_io *rio = held->ctx;

	free(held);
	raid_io_part_done(rio, status);
}

/* A member that fails a flush is failed; the flush is good while the array is online and
 * the failure is recorded. */
static void
flush_chunk_done(struct member_io *mio, int status)
{
	struct raid_io *rio = mio->ctx;
	struct raid_channel *rch = mio->rch;
	struct raid_array *a = rch->a;
	unsigned member = mio->member;
	struct stripe_part *held;

	mio_free(mio);
	if (status != 0)
		raid_member_failed(a, member, status);
	if (status == 0 && (!a->has_sb || raid_failures_recorded(a))) {
		raid_io_part_done(rio, atomic_load(&a->online) ? 0 : -EIO);
		return;
	}
	/* The data a failed member (this one, or one that failed before and was not flushed)
	 * did not make durable is only safe once the superblocks say it failed (else it comes
	 * back after a crash as if current, and a resync copies it over what this flush made
	 * durable): answer then. */
	held = a->has_sb ? calloc(1, sizeof(*held)) : NULL;
	if (held == NULL) {
		raid_io_part_done(rio, a->has_sb || !atomic_load(&a->online) ? -EIO : 0);
		return;
	}
	held->a = a;
	held->origin = uraid_reactor_self();
	held->done = held_flush_done;
	held->ctx = rio;
	stripe_part_hold(rch, held, atomic_load_explicit(&a->sb_need, memory_order_acquire));
}

static void
flush_all(struct raid_io *rio)
{
	struct raid_channel *rch = rio->rch;

	for (unsigned i = 0; i < rch->a->l.n; i++) {
		struct member_io *mio;

		if (!raid_member_writable(rch, i))
			continue;
		mio = mio_alloc(rch, i, 0);
		if (mio == NULL) {
			rio->status = -ENOMEM;
			return;
		}
		mio->type = URAID_IO_FLUSH;
		mio->done = flush_chunk_done;
		mio->ctx = rio;
		rio->remaining++;
		if (mio_submit(mio) != 0) {
			rio->remaining--;
			mio_free(mio);
		}
	}
}

/* The mirrored write run without a part answered (see stripe_mirror_direct). */
static void
rio_direct_done(struct mirror_run *mr, int status, uint64_t hold_until)
{
	struct raid_io *rio = container_of(mr, struct raid_io, mr);

	if (hold_until != 0) {
		/* A member failure is not in the superblocks yet: a part waits for it on the
		 * channel that ran the write, and answers the write then. */
		struct uraid_bdev_io *io = rio->io;
		uint64_t unit = layout_stripe_data_blocks(&rio->rch->a->l);
		struct stripe_part *part =
			raid_part_make(rio, PART_MIRROR, mr->strip,
				       io->offset_blocks - mr->strip * unit, io->num_blocks, 0);

		if (part != NULL)
			stripe_part_hold(mr->rch, part, hold_until);
		status = 0;
	}
	raid_io_part_done(rio, status);
}

/* Writes (and unmap/zeroes) on redundant levels, and write-back's read gates: one part per
 * stripe (or per strip for mirrors), each run by its owner; done (if not NULL) answers them. */
static void
owner_parts(struct raid_io *rio, enum part_kind kind,
	    void (*done)(struct stripe_part *part, int status))
{
	struct uraid_bdev_io *io = rio->io;
	struct raid_array *a = rio->rch->a;
	uint64_t unit = layout_stripe_data_blocks(&a->l);
	uint64_t lba = io->offset_blocks, num = io->num_blocks, byte_off = 0;

	if (kind == PART_MIRROR && (lba & (unit - 1)) + num <= unit) {
		/* One strip (a power of two blocks): if it is idle, and this reactor owns it or
		 * may claim it, the copies are written now, without a part. */
		rio->mr.done = rio_direct_done;
		rio->remaining++;
		if (stripe_mirror_direct(&rio->mr, rio->rch, lba >> __builtin_ctzll(unit),
					 lba & (unit - 1), num, io->type, io->flags, io->iov,
					 io->iovcnt, 0))
			return;
		rio->remaining--;
	}
	while (num > 0) {
		uint64_t start = lba % unit;
		uint64_t n = unit - start < num ? unit - start : num;
		struct stripe_part *part =
			raid_part_make(rio, kind, lba / unit, start, n, byte_off);

		if (part == NULL)
			return;
		if (done != NULL)
			part->done = done;
		stripe_submit_on(part, rio->rch);
		lba += n;
		num -= n;
		byte_off += n * a->bdev.block_size;
	}
}

static int
raid_submit(void *ch_ctx, struct uraid_bdev_io *io)
{
	struct raid_channel *rch = ch_ctx;
	struct raid_array *a = rch->a;
	struct raid_io *rio = (struct raid_io *)io->driver_ctx;

	raid_io_init(rio, rch, io, NULL, NULL, false);
	if (!atomic_load_explicit(&a->online, memory_order_relaxed)) {
		uraid_bdev_io_complete_deferred(io, -EIO);
		return 0;
	}
	if (a->lsa != NULL) {
		lsa_submit(rio);
		raid_io_submitted(rio);
		return 0;
	}
	switch (io->type) {
	case URAID_IO_READ:
		if (a->journal_wb)
			owner_parts(rio, PART_GATE, gate_done);
		else
			read_range(rio, io->offset_blocks, io->num_blocks, 0);
		break;
	case URAID_IO_FLUSH:
		flush_all(rio);
		break;
	default:
		if (a->parity || a->mirrored)
			owner_parts(rio,
				    a->mirrored			 ? PART_MIRROR
				    : io->type == URAID_IO_WRITE ? PART_WRITE
								 : PART_ZEROES,
				    NULL);
		else
			plain_range(rio);
		break;
	}
	raid_io_submitted(rio);
	return 0;
}

void
raid_phys_read(struct raid_io *rio, struct raid_channel *rch, struct uraid_bdev_io *fio,
	       uint64_t phys, uint64_t num, uint64_t byte_off,
	       void (*done)(struct raid_io *rio, int status), void *ctx)
{
	raid_io_init(rio, rch, fio, done, ctx, true);
	/* A degraded retry finds its buffer offset as (block - offset_blocks) * block size. */
	fio->offset_blocks = phys - byte_off / rch->a->bdev.block_size;
	fio->num_blocks = num;
	read_range(rio, phys, num, byte_off);
	raid_io_submitted(rio);
}

void
raid_phys_io(struct raid_io *rio, struct raid_channel *rch, struct uraid_bdev_io *fio,
	     void (*done)(struct raid_io *rio, int status), void *ctx)
{
	struct raid_array *a = rch->a;

	raid_io_init(rio, rch, fio, done, ctx, true);
	if (fio->type == URAID_IO_FLUSH)
		flush_all(rio);
	else if (a->parity || a->mirrored)
		owner_parts(rio, a->mirrored ? PART_MIRROR : PART_WRITE, NULL);
	else
		plain_range(rio);
	raid_io_submitted(rio);
}

/* --- channels --- */

struct raid_channel *
raid_owner_channel(struct raid_array *a)
{
	unsigned r = uraid_reactor_index(uraid_reactor_self());

	if (a->owner_ch[r] == NULL)
		a->owner_ch[r] = uraid_get_io_channel(&a->ch_dev);
	return a->owner_ch[r] ? uraid_io_channel_get_ctx(a->owner_ch[r]) : NULL;
}

void *
raid_buf_get(struct raid_channel *rch)
{
	return pool_get(&rch->bufs);
}

void
raid_buf_put(struct raid_channel *rch, void *buf)
{
	pool_put(&rch->bufs, buf);
}

static int
raid_channel_create(void *io_device, void *ctx)
{
	struct raid_array *a = container_of((char *)io_device, struct raid_array, ch_dev);
	struct raid_channel *rch = ctx;

	rch->a = a;
	rch->reactor = uraid_reactor_index(uraid_reactor_self());
	rch->buf_bytes = a->l.strip_blocks * a->bdev.block_size;
	rch->bufs = (struct obj_pool){NULL, rch->buf_bytes, CACHE_LINE_BYTES};
	rch->mios = (struct obj_pool){NULL, sizeof(struct member_io), 0};
	rch->parts = (struct obj_pool){NULL, sizeof(struct stripe_part), 0};
	TAILQ_INIT(&rch->held);
	TAILQ_INIT(&rch->bm_wait);
	TAILQ_INIT(&rch->ppl_wait);
	TAILQ_INIT(&rch->ppl_stripe_wait);
	TAILQ_INIT(&rch->ppl_sb_wait);
	stripe_pool_init(rch);
	lsa_channel_init(rch);
	STAILQ_INIT(&rch->retry);
	for (unsigned i = 0; i < a->l.n; i++) {
		if (atomic_load(&a->members[i].state) != URAID_MEMBER_ACTIVE)
			continue;
		rch->mdesc[i] = a->members[i].desc;
		rch->mch[i] = uraid_bdev_get_io_channel(rch->mdesc[i]);
		if (rch->mch[i] == NULL)
			goto err;
	}
	for (unsigned i = 0; i < a->l.n; i++) {
		/* Reactor 0 sets repl_desc before it walks the channels to add the replacement;
		 * the walk skips channels that have it already. */
		struct uraid_bdev_desc *rd = atomic_load(&a->members[i].repl_desc);

		if (rd != NULL && atomic_load(&a->members[i].repl_state) == REPL_COPYING) {
			rch->rdesc[i] = rd;
			rch->repl_ch[i] = uraid_bdev_get_io_channel(rd);
		}
	}
	if (a->jdesc != NULL && (rch->jch = uraid_bdev_get_io_channel(a->jdesc)) == NULL)
		goto err;
	rch->zeroes = uraid_dma_alloc(CACHE_LINE_BYTES, rch->buf_bytes);
	rch->poller = uraid_poller_register(raid_poll, rch, 0);
	if (rch->zeroes == NULL || rch->poller == NULL || stripe_channel_init(rch) != 0 ||
	    ppl_channel_init(rch) != 0)
		goto err;
	memset(rch->zeroes, 0, rch->buf_bytes);
	return 0;
err:
	stripe_channel_fini(rch);
	uraid_poller_unregister(&rch->poller);
	uraid_dma_free(rch->zeroes);
	for (unsigned i = 0; i < a->l.n; i++) {
		uraid_put_io_channel(rch->mch[i]);
		uraid_put_io_channel(rch->repl_ch[i]);
	}
	uraid_put_io_channel(rch->jch);
	return -ENOMEM;
}

static void
raid_channel_destroy(void *io_device UNUSED, void *ctx)
{
	struct raid_channel *rch = ctx;

	ppl_channel_fini(rch);
	stripe_channel_fini(rch);
	uraid_poller_unregister(&rch->poller);
	for (unsigned i = 0; i < rch->a->l.n; i++) {
		uraid_put_io_channel(rch->mch[i]);
		uraid_put_io_channel(rch->repl_ch[i]);
	}
	uraid_put_io_channel(rch->jch);
	pool_fini(&rch->bufs);
	pool_fini(&rch->mios);
	pool_fini(&rch->parts);
	pool_fini(&rch->ops);
	pool_fini(&rch->lsa_reads);
	uraid_dma_free(rch->zeroes);
}

/* --- lifecycle --- */

static bool
raid_io_type_supported(struct uraid_bdev *bdev, enum uraid_io_type type)
{
	struct raid_array *a = raid_from_bdev(bdev);

	if (a->parity || a->lsa != NULL)
		return true; /* unmap and zeroes are written as zeroes with their parity, or
			      * unmapped (log arrays) */
	for (unsigned i = 0; i < a->l.n; i++) {
		/* Any thread, while member swaps may run: a slot whose member failed and was let
		 * go has no device (NULL) and restricts nothing. */
		struct uraid_bdev_desc *desc =
			__atomic_load_n(&a->members[i].desc, __ATOMIC_ACQUIRE);

		if (desc != NULL &&
		    !uraid_bdev_io_type_supported(uraid_bdev_desc_get_bdev(desc), type))
			return false;
	}
	return true;
}

static void
raid_free(void *io_device)
{
	struct raid_array *a = container_of((char *)io_device, struct raid_array, ch_dev);

	for (unsigned i = 0; i < a->l.n; i++) {
		if (a->members[i].desc)
			uraid_bdev_close(a->members[i].desc);
		if (a->members[i].repl_desc)
			uraid_bdev_close(a->members[i].repl_desc);
	}
	if (a->jdesc)
		uraid_bdev_close(a->jdesc);
	raid_sb_writer_free(a);
	bitmap_free(a);
	lsa_free(a);
	free(a->ppl_holes);
	uraid_bdev_destruct_done(&a->bdev);
	free(a->claims);
	free(a->draid);
	pthread_mutex_destroy(&a->names_lock);
	free(a);
}

static void raid_release(struct raid_array *a);

static void
put_owner_channel(void *arg)
{
	struct raid_array *a = arg;
	unsigned r = uraid_reactor_index(uraid_reactor_self());

	if (ppl_busy(uraid_io_channel_get_ctx(a->owner_ch[r]))) {
		/* A log flush is still out on this channel: come back when it is in. */
		uraid_reactor_send(uraid_reactor_self(), put_owner_channel, a);
		return;
	}
	uraid_put_io_channel(a->owner_ch[r]);
	a->owner_ch[r] = NULL;
}

static void
raid_release_msg(void *arg)
{
	raid_release(arg);
}

static void
raid_release(struct raid_array *a)
{
	if (raid_sb_writer_busy(a)) {
		/* One more round started after the last one asked for (a member failed meanwhile):
		 * it needs the array until it is done. */
		uraid_reactor_send(uraid_reactor_self(), raid_release_msg, a);
		return;
	}
	a->sb_closed = true;
	/* Owner channels are put on their own reactors; the channel device is then gone once
	 * the last one is, and raid_free runs. */
	for (unsigned r = 0; r < uraid_reactor_count(); r++) {
		if (a->owner_ch[r] != NULL)
			uraid_reactor_send(uraid_reactor_get(r), put_owner_channel, a);
	}
	uraid_io_device_unregister(&a->ch_dev, raid_free);
}

static void
clean_sb_written(struct raid_array *a, int status)
{
	if (status != 0)
		LOG_ERR("%s: could not mark the superblocks clean (%s); the next start will "
			"treat the array as not shut down cleanly",
			a->bdev.name, strerror(-status));
	raid_release(a);
}

static void
destruct_continue(struct raid_array *a)
{
	if (a->bm != NULL && !a->bm_stopped) {
		a->bm_stopped = true;
		bitmap_stop(a, destruct_continue);
		return;
	}
	raid_rebuild_free(a);
	if (a->has_sb) {
		/* A clean shutdown: say so on the members before letting them go. */
		if (!a->sb_wipe)
			a->sb_clean = true;
		raid_sb_update(a, clean_sb_written);
	} else {
		raid_release(a);
	}
}

static void destruct_on_reactor0(void *arg);

static void
destruct_on_reactor0_cb(struct raid_array *a)
{
	destruct_on_reactor0(a);
}

static void
destruct_on_reactor0(void *arg)
{
	struct raid_array *a = arg;

	if (a->lsa != NULL && !a->lsa_stopped) {
		/* Writes in flight are committed and the tree checkpointed first. */
		a->lsa_stopped = true;
		lsa_stop(a, destruct_on_reactor0_cb);
		return;
	}
	/* Stop the rebuild (its parts run on the owners' channels) before anything goes. */
	a->stopping = true;
	if (a->log_clearing) {
		/* A device coming in is being cleared; it lets go once that is done. */
		uraid_reactor_send(uraid_reactor_self(), destruct_on_reactor0, a);
		return;
	}
	if (a->rb != NULL)
		raid_rebuild_stop(a, destruct_continue);
	else
		destruct_continue(a);
}

static int
raid_destruct(struct uraid_bdev *bdev)
{
	struct raid_array *a = raid_from_bdev(bdev);

	uraid_reactor_send(uraid_reactor_get(0), destruct_on_reactor0, a);
	return 1; /* finished in raid_free, once the members are closed */
}

static const struct uraid_bdev_fn_table raid_fn = {
	.submit_request = raid_submit,
	.io_type_supported = raid_io_type_supported,
	.destruct = raid_destruct,
};

size_t
raid_ppl_holes(struct uraid_bdev *bdev, const struct ppl_hole **holes)
{
	struct raid_array *a = uraid_bdev_is_array(bdev) ? raid_from_bdev(bdev) : NULL;

	*holes = a ? a->ppl_holes : NULL;
	return a ? a->ppl_nholes : 0;
}

bool
uraid_bdev_is_array(const struct uraid_bdev *bdev)
{
	return bdev != NULL && bdev->fn == &raid_fn;
}

static void
member_event(enum uraid_bdev_event event, struct uraid_bdev *bdev, void *ctx)
{
	struct raid_array *a = ctx;

	if (event != URAID_BDEV_EVENT_REMOVE)
		return;
	/* The device is going: fail its slot, then let it go (its channels and descriptor),
	 * so that its removal can finish while the array serves on. */
	for (unsigned i = 0; i < a->l.n; i++) {
		if (a->members[i].desc && uraid_bdev_desc_get_bdev(a->members[i].desc) == bdev) {
			raid_member_failed(a, i, -ENODEV);
			raid_member_release(a, i);
		}
	}
	if (a->jdesc && uraid_bdev_desc_get_bdev(a->jdesc) == bdev)
		raid_journal_failed(a, -ENODEV);
}

/* The journal device (o->journal_bdev, or the one the superblock names, found by assembly):
 * opened and claimed, its block size the array's. */
static int
journal_open(struct raid_array *a, const struct uraid_array_opts *o, const struct sb *from,
	     uint32_t bs, char *err, size_t err_len)
{
	bool want = from ? (from->flags & SB_FLAG_JOURNAL_DEV) != 0 : o->journal_bdev != NULL;
	uint32_t jbs;
	int rc;

	if (!want)
		return 0;
	if (o->journal_bdev == NULL) {
		err_set(err, err_len, "its journal device is missing");
		return -ENODEV;
	}
	if (from == NULL && (o->policy != URAID_POLICY_JOURNAL || !o->superblock)) {
		err_set(err, err_len,
			"a journal device needs consistency policy journal and superblocks");
		return -EINVAL;
	}
	rc = raid_open_claimed("journal device ", o->journal_bdev, o->name, member_event, a,
			       &a->jdesc, err, err_len);
	if (rc != 0)
		return rc;
	snprintf(a->jname, sizeof(a->jname), "%s", o->journal_bdev);
	jbs = uraid_bdev_get_block_size(uraid_bdev_desc_get_bdev(a->jdesc));
	if (jbs != bs) {
		err_set(err, err_len, "journal device %s has %u-byte blocks, the members %u",
			o->journal_bdev, jbs, bs);
		return -EINVAL;
	}
	if (from != NULL)
		memcpy(a->journal_uuid, from->journal_uuid, 16);
	else
		uraid_uuid_generate(a->journal_uuid);
	return 0;
}

/* draid: what the distributed spares hold, as the superblock says. A spare that was being
 * copied back onto a slot whose member is not here now holds that slot again (it took every
 * write while it was drained). */
static void
ds_load(struct raid_array *a, const struct sb *from)
{
	for (unsigned j = 0; j < a->draid->s; j++) {
		const struct sb_dspare *d = &from->draid_ds[j];
		int st = (int)d->state;

		if (st == DS_FREE)
			continue;
		if (st == DS_DRAINING &&
		    atomic_load(&a->members[d->slot].state) != URAID_MEMBER_ACTIVE)
			st = DS_FULL;
		atomic_init(&a->ds[j].slot, d->slot);
		atomic_init(&a->ds[j].done, d->done);
		atomic_init(&a->ds[j].durable, d->done);
		atomic_init(&a->ds[j].state, st);
		a->ds_used++;
	}
}

/* draid, after the log recovery: a spare drained whole is free (the round that freed it was
 * lost). The recovery still saw it draining: an entry of the last run may be on either
 * place of a column it held. */
static void
ds_settle(struct raid_array *a)
{
	for (unsigned j = 0; a->draid != NULL && j < a->draid->s; j++) {
		if (atomic_load(&a->ds[j].state) == DS_DRAINING &&
		    atomic_load(&a->ds[j].done) == raid_rebuild_units(a)) {
			atomic_store(&a->ds[j].state, DS_FREE);
			atomic_store(&a->ds[j].slot, 0);
			atomic_store(&a->ds[j].done, 0);
			atomic_store(&a->ds[j].durable, 0);
			a->ds_used--;
		}
	}
}

/* draid: the placement table, from the superblock or new. */
static int
draid_setup(struct raid_array *a, const struct uraid_array_opts *o, const struct sb *from,
	    char *err, size_t err_len)
{
	uint64_t seed;
	unsigned bases = DRAID_DEFAULT_BASES, s = o->spares;
	int rc;

	a->draid = malloc(sizeof(*a->draid));
	if (a->draid == NULL)
		return -ENOMEM;
	if (from != NULL) {
		seed = from->draid_seed;
		bases = from->draid_bases;
		s = from->draid_spares;
	} else {
		/* Fixed by the shape: the same parameters give the same placement, with a
		 * superblock or without (an array without one is created again from its
		 * parameters). */
		seed = 0x7572616964000000ull ^
		       ((uint64_t)a->l.n << 24 | a->l.k << 16 | a->l.m << 8 | s);
	}
	rc = draid_map_init(a->draid, a->l.n, a->l.k, a->l.m, s, bases, seed, err, err_len);
	if (rc != 0)
		return rc;
	a->l.dm = a->draid;
	return 0;
}

static int
check_shape(const struct uraid_array_opts *o, unsigned *k, unsigned *m, char *err, size_t len)
{
	unsigned n = o->num_members;
	const char *lv = uraid_raid_level_name(o->level);

	switch (o->level) {
	case URAID_RAID0:
	case URAID_CONCAT:
		*k = n;
		*m = 0;
		if (n < 1)
			goto too_few;
		return 0;
	case URAID_RAID1:
		*k = 1;
		*m = 0;
		if (n < 2)
			goto too_few;
		return 0;
	case URAID_RAID10: {
		unsigned c = o->copies ? o->copies : 2;

		if (c < 2 || c > n) {
			err_set(err, len,
				"raid10 with %u members cannot keep %u copies (2 <= copies "
				"<= members)",
				n, c);
			return -EINVAL;
		}
		*k = 1;
		*m = 0;
		return 0;
	}
	case URAID_RAID5:
		*k = n - 1;
		*m = 1;
		if (n < 3)
			goto too_few;
		return 0;
	case URAID_RAID6:
		*k = n - 2;
		*m = 2;
		if (n < 4)
			goto too_few;
		return 0;
	case URAID_EC:
		*k = o->data_chunks;
		*m = o->parity_chunks;
		if (*k < 1 || *m < 1 || *m > RAID_MAX_PARITY) {
			err_set(err, len, "ec needs data_chunks >= 1 and parity_chunks 1..%d",
				RAID_MAX_PARITY);
			return -EINVAL;
		}
		if (*k + *m != n) {
			err_set(err, len, "ec %u+%u needs %u members, got %u", *k, *m, *k + *m, n);
			return -EINVAL;
		}
		return 0;
	case URAID_DRAID: {
		struct draid_map *dm = malloc(sizeof(*dm));
		int rc;

		if (dm == NULL)
			return -ENOMEM;
		*k = o->data_chunks;
		*m = o->parity_chunks;
		rc = draid_map_init(dm, n, *k, *m, o->spares, 1, 0, err, len);
		free(dm);
		if (rc == 0 && o->spares > DRAID_MAX_SPARES) {
			err_set(err, len, "draid takes up to %u distributed spares, got %u",
				DRAID_MAX_SPARES, o->spares);
			rc = -EINVAL;
		}
		return rc;
	}
	}
	err_set(err, len, "unknown level");
	return -EINVAL;
too_few:
	err_set(err, len, "%s needs at least %u members, got %u", lv,
		o->level == URAID_RAID6	  ? 4
		: o->level == URAID_RAID5 ? 3
		: o->level == URAID_RAID1 ? 2
					  : 1,
		n);
	return -EINVAL;
}

/* Sizes per member: without a superblock the whole member is data; with one, data starts at
 * SB_DATA_OFFSET_BYTES (or where the superblock says). The journal's area (after the bitmap's)
 * holds, per reactor of this run, rings of four stripe updates' entries: data starts later
 * (at a MiB boundary) when SB_DATA_OFFSET_BYTES leaves too little room. */
static int
member_geometry(const struct uraid_array_opts *o, const struct sb *from, uint32_t bs, unsigned k,
		uint32_t strip_kb, uint64_t *data_offset, char *err, size_t err_len)
{
	if (from != NULL) {
		*data_offset = from->slots[0].data_offset_blocks;
		for (unsigned i = 1; i < from->num_slots; i++) {
			if (from->slots[i].data_offset_blocks != *data_offset) {
				err_set(err, err_len, "members' data offsets differ");
				return -EINVAL;
			}
		}
		return 0;
	}
	*data_offset = o->superblock ? SB_DATA_OFFSET_BYTES / bs : 0;
	if (o->superblock && o->policy == URAID_POLICY_JOURNAL && o->journal_bdev == NULL) {
		uint64_t mib = (1u << 20) / bs;
		uint64_t need = META_PPL_OFFSET / bs +
				4 * uraid_owner_count() *
					ppl_journal_need(k, (uint64_t)strip_kb * 1024 / bs);

		need = (need + mib - 1) / mib * mib;
		if (need > *data_offset)
			*data_offset = need;
	}
	return 0;
}

/* The consistency policy and its metadata areas: from the superblock, or chosen (and checked)
 * for a new array. */
static int
choose_policy(struct raid_array *a, const struct uraid_array_opts *o, const struct sb *from,
	      char *err, size_t err_len)
{
	enum uraid_consistency_policy p = o->policy;

	if (from != NULL) {
		a->policy = from->consistency_policy;
		a->bm_offset_blocks = from->bitmap_offset_blocks;
		a->bm_blocks = from->bitmap_blocks;
		a->bm_region_units = from->bitmap_region_units;
		a->log_epoch = from->log_epoch + 1;
		a->journal_wb = (from->flags & SB_FLAG_WRITE_BACK) != 0;
		if (a->policy == SB_POLICY_LOG)
			return lsa_create(a, o, from, err, err_len);
		if (raid_logged(a))
			return ppl_geometry(a, from, err, err_len);
		return 0;
	}
	a->log_epoch = 1;
	if (p == URAID_POLICY_DEFAULT)
		p = !a->has_sb	  ? URAID_POLICY_NONE
		    : a->parity	  ? URAID_POLICY_PPL
		    : a->mirrored ? URAID_POLICY_BITMAP
				  : URAID_POLICY_NONE;
	if ((unsigned)p > URAID_POLICY_LOG) {
		err_set(err, err_len, "unknown consistency policy %d", (int)p);
		return -EINVAL;
	}
	if (p != URAID_POLICY_NONE && !a->has_sb) {
		err_set(err, err_len,
			"consistency policy %s keeps its state on the members: it needs "
			"superblocks",
			uraid_policy_name(p));
		return -EINVAL;
	}
	if (p == URAID_POLICY_BITMAP && !a->parity && !a->mirrored) {
		err_set(err, err_len, "%s has no redundancy to resync: use consistency policy none",
			uraid_raid_level_name(a->l.level));
		return -EINVAL;
	}
	if ((p == URAID_POLICY_PPL || p == URAID_POLICY_JOURNAL) && !a->parity) {
		err_set(err, err_len,
			"consistency policy %s is for parity levels (raid5, raid6, ec)",
			uraid_policy_name(p));
		return -EINVAL;
	}
	if (o->journal_write_back && p != URAID_POLICY_JOURNAL) {
		err_set(err, err_len, "write-back is a mode of consistency policy journal");
		return -EINVAL;
	}
	a->policy = (uint32_t)p - 1;
	a->journal_wb = o->journal_write_back;
	if (p == URAID_POLICY_BITMAP)
		return bitmap_geometry(a, o->bitmap_region_kb, a->data_offset_blocks, err, err_len);
	if (p == URAID_POLICY_PPL || p == URAID_POLICY_JOURNAL)
		return ppl_geometry(a, NULL, err, err_len);
	if (p == URAID_POLICY_LOG)
		return lsa_create(a, o, NULL, err, err_len);
	return 0;
}

/* What the zoned members of a new array share (zone_blocks 0: none is zoned). */
struct zone_geometry {
	uint64_t zone_blocks, zone_capacity;
	uint64_t conv_min, conv_max; /* blocks of conventional zones at the start */
	const char *first;	     /* the zoned member it was taken from */
};

/* A zoned member: a zoned member takes writes only at its zones' write pointers, so only a
 * log array (which never writes a stripe twice) can use it; all share one zone geometry. */
static int
zoned_member(const struct uraid_array_opts *o, const struct sb *from, struct uraid_bdev *mb,
	     struct zone_geometry *zg, char *err, size_t err_len)
{
	const char *name = uraid_bdev_get_name(mb);
	uint64_t zs = uraid_bdev_get_zone_size(mb), cap = uraid_bdev_get_zone_capacity(mb);
	uint64_t conv = uraid_bdev_get_conventional_zones(mb) * zs;
	bool log = from != NULL ? from->consistency_policy == SB_POLICY_LOG
				: o->policy == URAID_POLICY_LOG && o->superblock;

	if (!log) {
		err_set(err, err_len,
			"member '%s' is zoned: zoned members need consistency_policy log (with "
			"superblocks), which never writes a stripe in place",
			name);
		return -EINVAL;
	}
	if (o->level == URAID_DRAID) {
		/* The table leaves spare strips in every row of a member: its zones would not
		 * be written in order. */
		err_set(err, err_len,
			"member '%s' is zoned: draid keeps spare strips between the rows of every "
			"member, which a zone cannot skip (use raid5, raid6 or ec over zoned "
			"members)",
			name);
		return -EINVAL;
	}
	if (zg->zone_blocks == 0) {
		*zg = (struct zone_geometry){zs, cap, conv, conv, name};
		return 0;
	}
	if (zs != zg->zone_blocks || cap != zg->zone_capacity) {
		err_set(err, err_len,
			"zone geometries differ between members: '%s' has zones of %lu blocks "
			"(capacity %lu), '%s' of %lu (capacity %lu)",
			zg->first, (unsigned long)zg->zone_blocks, (unsigned long)zg->zone_capacity,
			name, (unsigned long)zs, (unsigned long)cap);
		return -EINVAL;
	}
	if (conv < zg->conv_min)
		zg->conv_min = conv;
	if (conv > zg->conv_max)
		zg->conv_max = conv;
	return 0;
}

/* A new log array over zoned members: the superblock and the stripe tree (need blocks, in
 * *data_offset) live in the conventional zones of every zoned member, and the data starts at
 * a zone boundary after the largest conventional area, so every data zone is sequential. */
static int
zoned_data_offset(const struct zone_geometry *zg, uint32_t strip_kb, uint32_t bs,
		  uint64_t *data_offset, char *err, size_t err_len)
{
	uint64_t strip = (uint64_t)strip_kb * 1024 / bs, zs = zg->zone_blocks;

	if (zg->zone_capacity < strip || zs % strip != 0 || zg->zone_capacity % strip != 0) {
		err_set(err, err_len,
			"zones of %lu blocks with capacity %lu do not hold whole strips of %lu "
			"blocks: the capacity must be a multiple of the strip (at least one)",
			(unsigned long)zs, (unsigned long)zg->zone_capacity, (unsigned long)strip);
		return -EINVAL;
	}
	if (zg->conv_min < *data_offset) {
		err_set(err, err_len,
			"the superblock and stripe tree need %lu blocks of conventional zones at "
			"the start of every zoned member; '%s' and others have %lu (create them "
			"with conventional_zones >= %lu)",
			(unsigned long)*data_offset, zg->first, (unsigned long)zg->conv_min,
			(unsigned long)((*data_offset + zs - 1) / zs));
		return -EINVAL;
	}
	*data_offset = zg->conv_max;
	return 0;
}

static int
raid_create(const struct uraid_array_opts *o, const struct sb *from, struct uraid_bdev **out,
	    char *err, size_t err_len)
{
	uint32_t strip_kb = o->strip_size_kb ? o->strip_size_kb : 64;
	uint32_t bs = from ? from->block_size : 0;
	uint64_t min_blocks = UINT64_MAX, data_offset = 0;
	struct zone_geometry zg = {0};
	unsigned present = 0;
	struct raid_array *a;
	unsigned k, m;
	int rc;

	if (o->name == NULL || o->name[0] == '\0' || strlen(o->name) >= URAID_BDEV_NAME_MAX) {
		err_set(err, err_len, "the name must be 1 to %d characters",
			URAID_BDEV_NAME_MAX - 1);
		return -EINVAL;
	}
	if (uraid_bdev_get_by_name(o->name) != NULL) {
		err_set(err, err_len, "a bdev named '%s' exists already", o->name);
		return -EEXIST;
	}
	if (o->num_members > RAID_MAX_MEMBERS) {
		err_set(err, err_len, "at most %d members, got %u", RAID_MAX_MEMBERS,
			o->num_members);
		return -EINVAL;
	}
	rc = check_shape(o, &k, &m, err, err_len);
	if (rc != 0)
		return rc;
	if (!is_pow2_u64(strip_kb) || strip_kb > 1024 * 1024) {
		err_set(err, err_len, "strip size %u KiB is not a power of two (up to 1 GiB)",
			strip_kb);
		return -EINVAL;
	}
	for (unsigned i = 0; i < o->num_members; i++) {
		struct uraid_bdev *mb;

		if (o->members[i] == NULL) {
			if (from == NULL) {
				err_set(err, err_len, "member %u is not named", i);
				return -EINVAL;
			}
			continue; /* assembling without this slot */
		}
		mb = uraid_bdev_get_by_name(o->members[i]);
		for (unsigned j = 0; j < i; j++) {
			if (o->members[j] && strcmp(o->members[i], o->members[j]) == 0) {
				err_set(err, err_len, "member '%s' is listed twice", o->members[i]);
				return -EINVAL;
			}
		}
		if (mb == NULL) {
			err_set(err, err_len, "member '%s' does not exist", o->members[i]);
			return -ENODEV;
		}
		if (strcmp(o->members[i], o->name) == 0) {
			err_set(err, err_len, "an array cannot be its own member");
			return -EINVAL;
		}
		if (bs == 0)
			bs = uraid_bdev_get_block_size(mb);
		if (uraid_bdev_get_block_size(mb) != bs) {
			err_set(err, err_len, "members have different block sizes (%u and %s: %u)",
				bs, o->members[i], uraid_bdev_get_block_size(mb));
			return -EINVAL;
		}
		if (uraid_bdev_get_num_blocks(mb) < min_blocks)
			min_blocks = uraid_bdev_get_num_blocks(mb);
		if (uraid_bdev_is_zoned(mb)) {
			rc = zoned_member(o, from, mb, &zg, err, err_len);
			if (rc != 0)
				return rc;
		}
		present++;
	}
	if (bs != 0 && !is_pow2_u64(bs)) {
		/* (strips are then a power of two blocks: the I/O path shifts, never divides) */
		err_set(err, err_len, "block size %u is not a power of two", bs);
		return -EINVAL;
	}
	if ((uint64_t)strip_kb * 1024 < bs) {
		err_set(err, err_len, "strip size %u KiB is smaller than the block size %u",
			strip_kb, bs);
		return -EINVAL;
	}
	rc = member_geometry(o, from, bs, k, strip_kb, &data_offset, err, err_len);
	if (rc != 0)
		return rc;
	if (from == NULL && o->superblock && o->policy == URAID_POLICY_LOG &&
	    min_blocks != UINT64_MAX) {
		uint64_t need = lsa_data_offset(bs, min_blocks, o->num_members);

		if (need > data_offset)
			data_offset = need;
		if (zg.zone_blocks != 0) {
			rc = zoned_data_offset(&zg, strip_kb, bs, &data_offset, err, err_len);
			if (rc != 0)
				return rc;
		}
	}
	if (min_blocks != UINT64_MAX && min_blocks <= data_offset) {
		err_set(err, err_len, "members are too small for a superblock area of %lu blocks",
			(unsigned long)data_offset);
		return -EINVAL;
	}

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	pthread_mutex_init(&a->names_lock, NULL);
	a->strip_size_kb = strip_kb;
	a->has_sb = from != NULL || o->superblock;
	a->data_offset_blocks = data_offset;
	a->l.level = o->level;
	a->l.r5_layout = o->level == URAID_RAID5 ? o->raid5_layout : URAID_R5_LEFT_SYMMETRIC;
	a->l.n = o->num_members;
	a->l.k = k;
	a->l.m = m;
	a->l.copies = o->level == URAID_RAID1	 ? o->num_members
		      : o->level == URAID_RAID10 ? (o->copies ? o->copies : 2)
						 : 1;
	a->l.strip_blocks = (uint64_t)strip_kb * 1024 / bs;
	if (o->level == URAID_DRAID) {
		rc = draid_setup(a, o, from, err, err_len);
		if (rc != 0)
			goto err_free;
	}
	if (from != NULL)
		a->l.member_blocks = from->slots[0].data_blocks;
	else if (zg.zone_blocks != 0)
		a->l.member_blocks = (min_blocks - data_offset) / zg.zone_blocks * zg.zone_blocks;
	else
		a->l.member_blocks =
			layout_stripes_to_strips(
				&a->l, layout_strips_to_stripes(&a->l, (min_blocks - data_offset) /
									       a->l.strip_blocks)) *
			a->l.strip_blocks;
	a->sb_zone_blocks = from != NULL ? from->log_zone_blocks : zg.zone_blocks;
	a->sb_zone_capacity = from != NULL ? from->log_zone_capacity : zg.zone_capacity;
	a->parity = m > 0;
	a->mirrored = o->level == URAID_RAID1 || o->level == URAID_RAID10;
	atomic_init(&a->online, true);
	if ((a->mirrored || a->parity) && stripe_claims_init(a) != 0) {
		err_set(err, err_len, "out of memory");
		rc = -ENOMEM;
		goto err_free;
	}
	if (o->level == URAID_CONCAT) {
		for (unsigned i = 0; i < o->num_members; i++) {
			uint64_t blocks;

			if (from != NULL) {
				blocks = from->slots[i].data_blocks;
			} else {
				blocks = uraid_bdev_get_num_blocks(
						 uraid_bdev_get_by_name(o->members[i])) -
					 data_offset;
				blocks = blocks / a->l.strip_blocks * a->l.strip_blocks;
			}
			a->l.concat_start[i + 1] = a->l.concat_start[i] + blocks;
		}
	}
	if (a->l.member_blocks == 0 || layout_array_blocks(&a->l) == 0) {
		if (o->level == URAID_DRAID)
			err_set(err, err_len,
				"members are smaller than one period of the draid table (%u strips "
				"of %u KiB)",
				a->draid->rows, strip_kb);
		else
			err_set(err, err_len, "members are smaller than one strip (%u KiB)",
				strip_kb);
		rc = -EINVAL;
		goto err_free;
	}
	if (from != NULL && layout_array_blocks(&a->l) != from->array_blocks) {
		err_set(err, err_len, "superblock size does not match its geometry");
		rc = -EINVAL;
		goto err_free;
	}
	if (a->parity) {
		rc = code_init(&a->code,
			       o->level == URAID_RAID5 || (o->level == URAID_DRAID && m == 1)
				       ? CODE_XOR
			       : o->level == URAID_RAID6 || (o->level == URAID_DRAID && m == 2)
				       ? CODE_PQ
				       : CODE_CAUCHY,
			       k, m);
		if (rc != 0) {
			err_set(err, err_len, "cannot build a %u+%u code", k, m);
			goto err_free;
		}
	}
	for (unsigned i = 0; i < o->num_members; i++) {
		if (from != NULL)
			memcpy(a->slot_uuid[i], from->slots[i].uuid, 16);
		else
			uraid_uuid_generate(a->slot_uuid[i]);
		snprintf(a->members[i].name, sizeof(a->members[i].name), "%s",
			 o->members[i] ? o->members[i] : "");
		atomic_init(&a->members[i].state, URAID_MEMBER_ACTIVE);
		if (from != NULL && o->members[i] != NULL &&
		    from->slots[i].state == SB_SLOT_REBUILDING) {
			/* Resume: good up to the checkpoint, written from here on. */
			atomic_init(&a->members[i].state, URAID_MEMBER_REBUILDING);
			atomic_init(&a->members[i].rebuilt,
				    from->slots[i].rebuild_checkpoint_blocks / a->l.strip_blocks);
			atomic_init(&a->members[i].durable,
				    from->slots[i].rebuild_checkpoint_blocks / a->l.strip_blocks);
			a->members[i].catch_up = from->slots[i].flags & SB_SLOT_FLAG_CATCH_UP;
			a->failed++;
		}
		if (o->members[i] == NULL) {
			/* Missing at assembly: counted as failed from the start. */
			atomic_init(&a->members[i].state, URAID_MEMBER_FAILED);
			a->failed++;
			continue;
		}
		rc = raid_open_claimed("member ", o->members[i], o->name, member_event, a,
				       &a->members[i].desc, err, err_len);
		if (rc != 0)
			goto err_members;
	}
	if (from != NULL && a->draid != NULL)
		ds_load(a, from);
	if (raid_beyond_tolerance(a)) {
		err_set(err, err_len, "%u of %u members present: more missing than %s tolerates",
			present, o->num_members, uraid_raid_level_name(o->level));
		rc = -ENODEV;
		goto err_members;
	}
	rc = journal_open(a, o, from, bs, err, err_len);
	if (rc != 0)
		goto err_members;
	snprintf(a->bdev.name, sizeof(a->bdev.name), "%s", o->name);
	a->bdev.product = "Raid Volume";
	a->bdev.block_size = bs;
	a->bdev.num_blocks = layout_array_blocks(&a->l);
	for (unsigned i = 0; i < o->num_members; i++) {
		if (a->members[i].desc)
			a->bdev.write_cache |= uraid_bdev_has_write_cache(
				uraid_bdev_desc_get_bdev(a->members[i].desc));
	}
	a->bdev.driver_ctx_size = sizeof(struct raid_io);
	a->bdev.io_device = &a->ch_dev;
	a->bdev.fn = &raid_fn;
	a->bdev.ctx = a;
	if (from != NULL)
		memcpy(a->bdev.uuid, from->array_uuid, 16);
	else if (o->uuid)
		memcpy(a->bdev.uuid, o->uuid, 16);
	else
		uraid_uuid_generate(a->bdev.uuid);
	if (from != NULL)
		a->sb = *from;
	rc = choose_policy(a, o, from, err, err_len);
	if (rc != 0)
		goto err_members;
	if (raid_logged(a) && from != NULL && !(from->flags & SB_FLAG_CLEAN)) {
		struct ppl_recovery rec;

		/* Before anything else is written: parity of the stripes the last run was
		 * writing is made to match their data. */
		rc = ppl_recover(a, from, &rec);
		if (rc != 0) {
			err_set(err, err_len, "log recovery failed: %s", strerror(-rc));
			goto err_members;
		}
		a->ppl_recovered = rec.applied;
		a->ppl_skipped_rows = rec.skipped_rows;
		a->ppl_holes = rec.holes;
		a->ppl_nholes = rec.nholes;
		LOG_NOTE("%s: %s: %lu entries applied, %lu rejected", o->name,
			 a->policy == SB_POLICY_JOURNAL ? "journal" : "partial parity log",
			 (unsigned long)rec.applied, (unsigned long)rec.invalid);
		for (size_t h = 0; h < rec.nholes; h++)
			LOG_WARNING("%s: blocks %lu..%lu were being written to a member missing "
				    "now when the power went: they may hold neither their old nor "
				    "their new contents",
				    o->name, (unsigned long)rec.holes[h].lba,
				    (unsigned long)(rec.holes[h].lba + rec.holes[h].blocks - 1));
	}
	ds_settle(a);
	if (a->policy == SB_POLICY_BITMAP) {
		rc = bitmap_create(a, from == NULL, from == NULL || (from->flags & SB_FLAG_CLEAN));
		if (rc != 0) {
			err_set(err, err_len, "cannot set up the bitmap: %s", strerror(-rc));
			goto err_members;
		}
	}
	uraid_io_device_register(&a->ch_dev, raid_channel_create, raid_channel_destroy,
				 sizeof(struct raid_channel), o->name);
	if (a->has_sb) {
		/* The superblock goes down (dirty: the array is in use) before anyone sees the
		 * array. */
		rc = raid_sb_write_sync(a);
		if (rc != 0) {
			err_set(err, err_len, "cannot write the superblocks: %s", strerror(-rc));
			goto err_device;
		}
	}
	rc = uraid_bdev_register(&a->bdev);
	if (rc != 0) {
		err_set(err, err_len, "cannot register '%s'", o->name);
		goto err_device;
	}
	if (a->bm != NULL)
		bitmap_start(a);
	if (a->lsa != NULL)
		lsa_start(a);
	if ((a->failed > 0 || a->ds_used > 0) && (a->parity || a->mirrored))
		raid_rebuild_notify(a); /* resume a rebuild (or a spare's fill or drain) */
	*out = &a->bdev;
	return 0;

err_device:
	raid_release_owner_channels_sync(a);
	uraid_io_device_unregister(&a->ch_dev, NULL);
err_members:
	bitmap_free(a);
	lsa_free(a);
	free(a->ppl_holes);
	for (unsigned i = 0; i < o->num_members; i++) {
		if (a->members[i].desc)
			uraid_bdev_close(a->members[i].desc);
	}
	if (a->jdesc)
		uraid_bdev_close(a->jdesc);
err_free:
	free(a->claims);
	free(a->draid);
	pthread_mutex_destroy(&a->names_lock);
	free(a);
	return rc;
}

int
uraid_array_create(const struct uraid_array_opts *o, struct uraid_bdev **out, char *err,
		   size_t err_len)
{
	int rc;

	if (!o->force) {
		/* Never overwrite another array's members by accident. */
		rc = raid_check_no_superblocks(o, err, err_len);
		if (rc < 0)
			return rc;
		/* A config that created the array, loaded again: start what its members carry. */
		if (rc > 0)
			return raid_create_or_assemble(o, out, err, err_len);
	}
	return raid_create(o, NULL, out, err, err_len);
}

int
raid_create_from_sb(const struct uraid_array_opts *o, const struct sb *from,
		    struct uraid_bdev **out, char *err, size_t err_len)
{
	return raid_create(o, from, out, err, err_len);
}

int
uraid_array_get_info(struct uraid_bdev *bdev, struct uraid_array_info *info)
{
	struct raid_array *a;

	if (!uraid_bdev_is_array(bdev))
		return -EINVAL;
	a = raid_from_bdev(bdev);
	memset(info, 0, sizeof(*info));
	info->level = a->l.level;
	info->raid5_layout = a->l.r5_layout;
	info->strip_size_kb = a->strip_size_kb;
	info->num_members = a->l.n;
	info->data_chunks = a->l.k;
	info->parity_chunks = a->l.m;
	info->policy = (enum uraid_consistency_policy)(a->policy + 1);
	info->journal_write_back = a->journal_wb;
	snprintf(info->journal_bdev, sizeof(info->journal_bdev), "%s", a->jname);
	bitmap_get_info(a, info);
	lsa_get_info(a, info);
	info->copies = a->l.copies;
	if (a->draid != NULL) {
		info->distributed_spares = a->draid->s;
		info->draid_seed = a->draid->seed;
		info->draid_bases = a->draid->bases;
		for (unsigned j = 0; j < a->draid->s; j++) {
			int st = atomic_load(&a->ds[j].state);

			snprintf(info->draid_spare[j].state, sizeof(info->draid_spare[j].state),
				 "%s", raid_ds_state_name(st));
			info->draid_spare[j].slot =
				st == DS_FREE ? -1 : (int)atomic_load(&a->ds[j].slot);
			info->draid_spare[j].done_stripes =
				st == DS_FULL ? raid_rebuild_units(a) : atomic_load(&a->ds[j].done);
		}
	}
	info->failed_members = atomic_load(&a->failed);
	info->online = atomic_load(&a->online);
	info->superblock = a->has_sb;
	info->data_offset_blocks = a->data_offset_blocks;
	info->spares = atomic_load(&a->nspares);
	info->replacing = (int)atomic_load(&a->replacing) - 1;
	info->scrub.total_stripes = atomic_load(&a->scrub_total);
	info->scrub.done_stripes = atomic_load(&a->scrub_done);
	info->scrub.active = info->scrub.total_stripes != 0;
	info->rebuild.target_mask = (uint32_t)atomic_load(&a->rb_targets);
	info->rebuild.active = info->rebuild.target_mask != 0;
	info->rebuild.catch_up = info->rebuild.active && atomic_load(&a->rb_catch_up);
	if (info->rebuild.active) {
		uint64_t done = atomic_load(&a->rb_done_blocks);
		uint64_t total = atomic_load(&a->rb_total_blocks);
		uint64_t us = uraid_now_us() - atomic_load(&a->rb_start_us);

		info->rebuild.done_blocks = done;
		info->rebuild.total_blocks = total;
		info->rebuild.rate_kib_s = us ? done * a->bdev.block_size / 1024 * 1000000 / us : 0;
		info->rebuild.eta_s = info->rebuild.rate_kib_s
					      ? (total - done) * a->bdev.block_size / 1024 /
							info->rebuild.rate_kib_s
					      : 0;
	}
	pthread_mutex_lock(&a->names_lock);
	for (unsigned i = 0; i < a->l.n; i++) {
		snprintf(info->members[i].name, sizeof(info->members[i].name), "%s",
			 a->members[i].name);
		info->members[i].state = atomic_load(&a->members[i].state);
		info->members[i].failed_by_request =
			info->members[i].state == URAID_MEMBER_FAILED &&
			a->members[i].failed_by_request;
		if (atomic_load(&a->members[i].repl_state) == REPL_COPYING) {
			snprintf(info->members[i].replacement, sizeof(info->members[i].replacement),
				 "%s", a->members[i].repl_name);
			info->rebuild.replace = info->rebuild.active;
		}
	}
	pthread_mutex_unlock(&a->names_lock);
	return 0;
}

int
uraid_array_get_stats(struct uraid_bdev *bdev, struct uraid_array_stats *st)
{
	uint64_t v[RS_NUM] = {0};
	struct raid_array *a;

	if (!uraid_bdev_is_array(bdev))
		return -EINVAL;
	a = raid_from_bdev(bdev);
	for (unsigned r = 0; r < URAID_MAX_REACTORS; r++) {
		for (unsigned s = 0; s < RS_NUM; s++)
			v[s] += atomic_load_explicit(&a->stats[r].v[s], memory_order_relaxed);
	}
	st->full_stripe_writes = v[RS_FULL];
	st->rmw_writes = v[RS_RMW];
	st->rcw_writes = v[RS_RCW];
	st->degraded_writes = v[RS_DEGRADED_W];
	st->merged_writes = v[RS_MERGED];
	st->degraded_reads = v[RS_DEGRADED_R];
	st->member_errors = v[RS_MEMBER_ERR];
	st->read_errors_repaired = v[RS_READ_REPAIRED];
	st->ppl_entries = v[RS_PPL_ENTRIES];
	st->ppl_blocks = v[RS_PPL_BLOCKS];
	st->ppl_flushes = v[RS_PPL_FLUSHES];
	st->ppl_waits = v[RS_PPL_WAITS];
	st->rebuild_units = v[RS_REBUILT];
	st->rebuild_units_skipped = v[RS_CAUGHT_UP];
	st->zone_appends = v[RS_APPENDS];
	st->claimed_writes = v[RS_CLAIMED];
	st->ppl_recovered = a->ppl_recovered;
	st->ppl_unmended_rows = a->ppl_skipped_rows;
	return 0;
}
