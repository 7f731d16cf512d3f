/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The write-intent bitmap (consistency policy "bitmap"): one bit per region of units (stripes
 * of parity levels, strips of mirrors), set on disk before the first write into a clean
 * region and cleared once the region has been quiet for a while. After a crash only the
 * regions whose bit is set can hold stripes whose parity (or copies) disagree, so only those
 * are resynced, online.
 *
 * Theory of operation.
 *
 * The bits live on every member in the area the superblock names: a header block (format
 * v1, docs/format.md), then the bits, least significant bit first. Each region has three
 * shared atomics: its state (CLEAN, DIRTY = set on disk, CLEARING), the number of writes in
 * it now (pending) and a "touched" flag. An owner reactor about to write a stripe counts
 * itself into pending and then looks at the state: DIRTY means go. Otherwise it takes itself
 * out again, parks the operation and asks reactor 0 for the bit. Reactor 0 owns the on-disk
 * image and runs one bitmap write at a time:
 *
 *   set round    the bits wanted are set in the image and the changed blocks written with
 *                FUA to every usable member; then the regions are DIRTY and every reactor
 *                that parked an operation is told to retry.
 *   clear round  every sweep period a DIRTY region that was not touched during the last
 *                period and has no write in it is moved to CLEARING (then pending is looked
 *                at again: a writer that slipped in moves it back); the members are flushed,
 *                so everything written there is durable, and the image is written with the
 *                bits cleared; then the regions are CLEAN.
 *
 * A writer increments pending before it reads the state, and the sweeper moves the state
 * before it reads pending (both sequentially consistent), so one of the two always sees the
 * other: a region is never cleared under a write. pending is kept in BM_SHARDS counters per
 * region, one row of them per group of reactors (reactor index mod BM_SHARDS), each row on
 * cache lines of its own: writers on two cores would otherwise pass one line back and forth
 * twice per write. A writer enters and exits in one row: both times it names the reactor of
 * its channel (an operation, a direct mirrored write and a claimant's stripe head begin and
 * end on one channel), so each row counts its own writers, and the sweeper, which reads
 * every row, sees a writer's increment whenever it could see its decrement. Bits are not
 * cleared while a member is missing or rebuilding, or while the region waits for its
 * resync.
 *
 * Catch-up. While a slot is not active no bit is cleared, so the dirty regions cover every
 * write its member missed since it left (the superblock records the generation it left at;
 * assembly and re-adding check that the member's own copy is no older). When that member
 * comes back it is rebuilt in the dirty regions only (rebuild.c asks bitmap_unit_dirty); the
 * rest of it is still current. A clean start with a slot not active therefore keeps the
 * bits on disk instead of zeroing them.
 */
#include <stdlib.h>

#include "core.h"

#define BM_MAGIC	0x314d424449415255ull /* "URAIDBM1" */
#define BM_VERSION	1
#define BM_HDR_CRC	60
#define RESYNC_WINDOW	8
#define SWEEP_PERIOD_US 1000000
#define BM_SHARDS	4 /* rows of pending counters (a power of two) */

enum { BM_CLEAN, BM_DIRTY, BM_CLEARING };

struct bitmap {
	struct raid_array *a;
	uint32_t bs;
	uint64_t units, region_units, nbits;
	uint64_t off_blocks; /* the header; bits follow */
	uint32_t bit_blocks;
	_Atomic uint8_t *state;
	_Atomic uint32_t *pending; /* BM_SHARDS rows of pending_stride */
	uint64_t pending_stride;
	_Atomic uint8_t *touched;
	_Atomic uint8_t *resync;
	_Atomic uint64_t dirty, resync_left, sets, clears;

	/* Reactor 0's. */
	uint8_t *hdr;	/* the header block, written with every round (a spare that took a
			 * slot gets it with the first) */
	uint8_t *image; /* bit_blocks blocks: what is on disk, or being written */
	uint8_t *want;	/* regions asked for */
	uint64_t nwant;
	uint64_t waiters; /* reactors with parked operations */
	uint64_t *round;  /* regions of the round in flight */
	uint64_t nround;
	bool busy, clearing;
	bool flush_failed; /* a member failed the clear round's flush */
	unsigned inflight;
	uint64_t blk_hi; /* bit blocks [0, blk_hi) hold the round's changes */
	struct uraid_poller *sweeper;
	void (*stop_then)(struct raid_array *a);
	bool stopping;

	/* The resync after a crash, run from reactor 0. */
	uint64_t rs_region, rs_next, rs_end;
	unsigned rs_inflight;
	bool rs_active;
};

static inline uint64_t
region_of(const struct bitmap *bm, uint64_t unit)
{
	return unit / bm->region_units;
}

/* --- the header (format v1) --- */

void
bitmap_header_encode(uint8_t *buf, size_t len, const uint8_t *uuid, uint64_t region_units,
		     uint64_t nbits)
{
	memset(buf, 0, len);
	le_put64(buf, BM_MAGIC);
	le_put32(buf + 8, BM_VERSION);
	le_put32(buf + 12, BM_HDR_CRC + 4);
	memcpy(buf + 16, uuid, 16);
	le_put64(buf + 32, region_units);
	le_put64(buf + 40, nbits);
	le_put32(buf + BM_HDR_CRC, crc32c(buf, BM_HDR_CRC));
}

int
bitmap_header_decode(const uint8_t *buf, size_t len, const uint8_t *uuid, uint64_t region_units,
		     uint64_t nbits, char *err, size_t err_len)
{
	if (len < BM_HDR_CRC + 4 || le_get64(buf) != BM_MAGIC) {
		err_set(err, err_len, "no bitmap header");
		return -EBADMSG;
	}
	if (le_get32(buf + BM_HDR_CRC) != crc32c(buf, BM_HDR_CRC)) {
		err_set(err, err_len, "bitmap header CRC mismatch");
		return -EBADMSG;
	}
	if (le_get32(buf + 8) != BM_VERSION || le_get32(buf + 12) != BM_HDR_CRC + 4) {
		err_set(err, err_len, "unknown bitmap version");
		return -EBADMSG;
	}
	for (size_t i = 48; i < len; i++) {
		if (buf[i] != 0 && (i < BM_HDR_CRC || i >= BM_HDR_CRC + 4)) {
			err_set(err, err_len, "bitmap header reserved bytes are not zero");
			return -EBADMSG;
		}
	}
	if (memcmp(buf + 16, uuid, 16) != 0 || le_get64(buf + 32) != region_units ||
	    le_get64(buf + 40) != nbits) {
		err_set(err, err_len, "bitmap header does not match the superblock");
		return -EBADMSG;
	}
	return 0;
}

/* --- geometry --- */

uint64_t
bitmap_units(const struct raid_array *a)
{
	uint64_t unit = layout_stripe_data_blocks(&a->l);

	return (a->bdev.num_blocks + unit - 1) / unit;
}

int
bitmap_geometry(struct raid_array *a, uint32_t region_kb, uint64_t data_offset_blocks, char *err,
		size_t err_len)
{
	uint32_t bs = a->bdev.block_size;
	uint64_t unit_bytes = layout_stripe_data_blocks(&a->l) * bs;
	uint64_t units = bitmap_units(a), region, max_blocks;

	if (region_kb == 0)
		region_kb = 64 * 1024;
	if (!is_pow2_u64(region_kb)) {
		err_set(err, err_len, "bitmap region %u KiB is not a power of two", region_kb);
		return -EINVAL;
	}
	if (data_offset_blocks * bs < META_BITMAP_END) {
		err_set(err, err_len, "no room for a bitmap before the data");
		return -EINVAL;
	}
	region = (uint64_t)region_kb * 1024 / unit_bytes;
	if (region == 0)
		region = 1;
	max_blocks = (META_BITMAP_END - META_BITMAP_OFFSET) / bs - 1;
	/* Larger regions when the bits would not fit. */
	while ((units + region - 1) / region > max_blocks * bs * 8)
		region *= 2;
	a->bm_offset_blocks = META_BITMAP_OFFSET / bs;
	a->bm_region_units = region;
	a->bm_blocks = 1 + (uint32_t)(((units + region - 1) / region + bs * 8 - 1) / (bs * 8));
	return 0;
}

/* --- creation and recovery (control thread) --- */

static struct bitmap *
bitmap_alloc(struct raid_array *a)
{
	struct bitmap *bm = calloc(1, sizeof(*bm));

	if (bm == NULL)
		return NULL;
	bm->a = a;
	bm->bs = a->bdev.block_size;
	bm->units = bitmap_units(a);
	bm->region_units = a->bm_region_units;
	bm->nbits = (bm->units + bm->region_units - 1) / bm->region_units;
	bm->off_blocks = a->bm_offset_blocks;
	bm->bit_blocks = a->bm_blocks - 1;
	bm->state = calloc(bm->nbits, sizeof(*bm->state));
	bm->pending_stride = align_up_u64(bm->nbits, CACHE_LINE_BYTES / sizeof(*bm->pending));
	/* (plain memory: counters, never a buffer for I/O; a multiple of the alignment) */
	bm->pending = aligned_alloc(CACHE_LINE_BYTES,
				    BM_SHARDS * bm->pending_stride * sizeof(*bm->pending));
	bm->touched = calloc(bm->nbits, sizeof(*bm->touched));
	bm->resync = calloc(bm->nbits, sizeof(*bm->resync));
	bm->want = calloc(bm->nbits, 1);
	bm->round = calloc(bm->nbits, sizeof(*bm->round));
	bm->image = uraid_dma_alloc(4096, align_up_u64((uint64_t)bm->bit_blocks * bm->bs, 4096));
	bm->hdr = uraid_dma_alloc(4096, align_up_u64(bm->bs, 4096));
	if (!bm->state || !bm->pending || !bm->touched || !bm->resync || !bm->want || !bm->round ||
	    !bm->image || !bm->hdr) {
		a->bm = bm;
		bitmap_free(a);
		return NULL;
	}
	memset((void *)bm->pending, 0, BM_SHARDS * bm->pending_stride * sizeof(*bm->pending));
	memset(bm->image, 0, (size_t)bm->bit_blocks * bm->bs);
	bitmap_header_encode(bm->hdr, bm->bs, a->bdev.uuid, bm->region_units, bm->nbits);
	return bm;
}

static bool
image_bit(const struct bitmap *bm, uint64_t r)
{
	return bm->image[r / 8] & (1u << (r % 8));
}

/* Read the bits of every member that has a valid header and OR them. false if no member had
 * one (then every region counts as dirty). */
static bool
bitmap_read_members(struct raid_array *a, struct bitmap *bm, uint8_t *buf)
{
	size_t bytes = (size_t)(bm->bit_blocks + 1) * bm->bs;
	bool any = false;

	for (unsigned i = 0; i < a->l.n; i++) {
		char why[128];

		if (a->members[i].desc == NULL ||
		    atomic_load(&a->members[i].state) != URAID_MEMBER_ACTIVE)
			continue;
		if (uraid_bdev_io_sync(a->members[i].desc, URAID_IO_READ, buf, bm->off_blocks,
				       bm->bit_blocks + 1) != 0)
			continue;
		if (bitmap_header_decode(buf, bm->bs, a->bdev.uuid, bm->region_units, bm->nbits,
					 why, sizeof(why)) != 0) {
			LOG_WARNING("%s: member %s: %s; its bitmap is not used", a->bdev.name,
				    a->members[i].name, why);
			continue;
		}
		any = true;
		for (size_t b = 0; b < bytes - bm->bs; b++)
			bm->image[b] |= buf[bm->bs + b];
	}
	return any;
}

int
bitmap_create(struct raid_array *a, bool fresh, bool clean)
{
	struct bitmap *bm = bitmap_alloc(a);
	size_t bytes;
	uint8_t *buf;
	int rc = 0;

	if (bm == NULL)
		return -ENOMEM;
	a->bm = bm;
	bytes = (size_t)(bm->bit_blocks + 1) * bm->bs;
	buf = uraid_dma_alloc(4096, align_up_u64(bytes, 4096));
	if (buf == NULL)
		return -ENOMEM;
	if (!fresh && (!clean || a->failed > 0)) {
		/* Unclean: the set bits are where stripes may disagree. Clean but with a slot
		 * not active: they are where its member, when it comes back, missed writes. */
		if (!bitmap_read_members(a, bm, buf)) {
			LOG_WARNING("%s: no readable bitmap: every region counts as written",
				    a->bdev.name);
			memset(bm->image, 0xff, (size_t)bm->bit_blocks * bm->bs);
		}
		for (uint64_t r = 0; r < bm->nbits; r++) {
			if (!image_bit(bm, r))
				continue;
			atomic_store(&bm->state[r], BM_DIRTY);
			atomic_fetch_add(&bm->dirty, 1);
			if (clean)
				continue;
			atomic_store(&bm->resync[r], 1);
			atomic_fetch_add(&bm->resync_left, 1);
		}
	} else if (!fresh) {
		/* Clean: bits left set at shutdown mean nothing now. */
		memset(bm->image, 0, (size_t)bm->bit_blocks * bm->bs);
	}
	/* Header and bits as they now are, to every member. */
	memcpy(buf, bm->hdr, bm->bs);
	memcpy(buf + bm->bs, bm->image, bytes - bm->bs);
	for (unsigned i = 0; i < a->l.n; i++) {
		if (a->members[i].desc == NULL ||
		    atomic_load(&a->members[i].state) == URAID_MEMBER_FAILED)
			continue;
		rc = uraid_bdev_io_sync(a->members[i].desc, URAID_IO_WRITE, buf, bm->off_blocks,
					bm->bit_blocks + 1);
		if (rc == 0)
			rc = uraid_bdev_io_sync(a->members[i].desc, URAID_IO_FLUSH, NULL, 0, 0);
		if (rc != 0) {
			LOG_ERR("%s: cannot write the bitmap to %s: %s", a->bdev.name,
				a->members[i].name, strerror(-rc));
			break;
		}
	}
	uraid_dma_free(buf);
	if (atomic_load(&bm->resync_left))
		LOG_WARNING("%s: was not shut down cleanly: resyncing %lu of %lu regions",
			    a->bdev.name, (unsigned long)atomic_load(&bm->resync_left),
			    (unsigned long)bm->nbits);
	return rc;
}

void
bitmap_free(struct raid_array *a)
{
	struct bitmap *bm = a ? a->bm : NULL;

	if (bm == NULL)
		return;
	free(bm->state);
	free((void *)bm->pending);
	free(bm->touched);
	free(bm->resync);
	free(bm->want);
	free(bm->round);
	uraid_dma_free(bm->image);
	uraid_dma_free(bm->hdr);
	free(bm);
	a->bm = NULL;
}

/* --- the writer on reactor 0 --- */

static void bm_kick(struct bitmap *bm);
static void bitmap_stop_check(struct raid_array *a);

static void
ready_msg(void *arg)
{
	stripe_bitmap_ready(arg);
}

static void
bm_round_done(struct bitmap *bm)
{
	struct raid_array *a = bm->a;

	for (uint64_t i = 0; i < bm->nround; i++) {
		uint64_t r = bm->round[i];

		if (bm->clearing) {
			atomic_store(&bm->state[r], BM_CLEAN);
			atomic_fetch_sub(&bm->dirty, 1);
		} else {
			atomic_store(&bm->state[r], BM_DIRTY);
			atomic_fetch_add(&bm->dirty, 1);
		}
	}
	if (bm->nround > 0) /* else only waiters were woken: nothing was written */
		atomic_fetch_add(bm->clearing ? &bm->clears : &bm->sets, 1);
	bm->nround = 0;
	bm->busy = false;
	bm->clearing = false;
	if (bm->waiters) {
		for (unsigned r = 0; r < uraid_reactor_count(); r++) {
			if (bm->waiters & (1ull << r))
				uraid_reactor_send(uraid_reactor_get(r), ready_msg, a);
		}
		bm->waiters = 0;
	}
	bm_kick(bm);
}

static void
bm_io_done(struct member_io *mio, int status)
{
	struct raid_array *a = mio->rch->a;
	struct bitmap *bm = a->bm;
	unsigned member = mio->member;

	if (status != 0)
		raid_member_failed(a, member, status);
	mio_free(mio);
	if (--bm->inflight == 0)
		bm_round_done(bm);
}

static void bm_write_image(struct bitmap *bm);

/* The clear round's flush is done. If a member failed it, what it holds in these regions is
 * not known to be durable, and a crash before its failure is recorded would bring it back:
 * the bits stay. */
static void
bm_clear_flushed(struct bitmap *bm)
{
	if (!bm->flush_failed) {
		bm_write_image(bm);
		return;
	}
	for (uint64_t i = 0; i < bm->nround; i++) {
		uint64_t r = bm->round[i];

		bm->image[r / 8] |= (uint8_t)(1u << (r % 8));
		atomic_store(&bm->state[r], BM_DIRTY);
	}
	bm->nround = 0;
	bm->busy = false;
	bm->clearing = false;
	bm_kick(bm);
}

static void
bm_flush_done(struct member_io *mio, int status)
{
	struct raid_array *a = mio->rch->a;
	struct bitmap *bm = a->bm;

	if (status != 0) {
		raid_member_failed(a, mio->member, status);
		bm->flush_failed = true;
	}
	mio_free(mio);
	if (--bm->inflight == 0)
		bm_clear_flushed(bm);
}

/* One I/O to every usable member; done(mio, status) for each. */
static unsigned
bm_to_members(struct bitmap *bm, enum uraid_io_type type,
	      void (*done)(struct member_io *mio, int status))
{
	struct raid_array *a = bm->a;
	struct raid_channel *rch = raid_owner_channel(a);
	unsigned issued = 0;

	bm->inflight = 1;
	for (unsigned i = 0; i < a->l.n && rch != NULL; i++) {
		struct member_io *mio;

		if (!raid_member_usable(rch, i))
			continue;
		mio = mio_alloc(rch, i, 0);
		if (mio == NULL)
			continue;
		mio->type = type;
		mio->meta = true;
		mio->done = done;
		if (type == URAID_IO_WRITE) {
			mio->flags = URAID_IO_FUA;
			/* The header and the bits up to the last block changed. */
			mio->offset_blocks = bm->off_blocks;
			mio->num_blocks = 1 + bm->blk_hi;
			mio->iov[0] = (struct iovec){bm->hdr, bm->bs};
			mio->iov[1] = (struct iovec){bm->image, bm->blk_hi * bm->bs};
			mio->iovcnt = 2;
		}
		bm->inflight++;
		if (mio_submit(mio) != 0) {
			bm->inflight--;
			mio_free(mio);
			continue;
		}
		issued++;
	}
	return issued;
}

static void
bm_write_image(struct bitmap *bm)
{
	bm_to_members(bm, URAID_IO_WRITE, bm_io_done);
	if (--bm->inflight == 0)
		bm_round_done(bm);
}

static void
round_add(struct bitmap *bm, uint64_t r, bool set)
{
	uint64_t blk = r / 8 / bm->bs;

	if (set)
		bm->image[r / 8] |= (uint8_t)(1u << (r % 8));
	else
		bm->image[r / 8] &= (uint8_t) ~(1u << (r % 8));
	if (bm->nround == 0 || blk + 1 > bm->blk_hi)
		bm->blk_hi = blk + 1;
	bm->round[bm->nround++] = r;
}

/* Start the next round if none is running: sets first (writers wait for them). */
static void
bm_kick(struct bitmap *bm)
{
	if (bm->busy)
		return;
	if (bm->nwant > 0) {
		for (uint64_t r = 0; r < bm->nbits && bm->nwant > 0; r++) {
			int st;

			if (!bm->want[r])
				continue;
			st = atomic_load(&bm->state[r]);
			if (st == BM_CLEARING)
				continue; /* after the clear round */
			bm->want[r] = 0;
			bm->nwant--;
			if (st == BM_CLEAN)
				round_add(bm, r, true);
		}
		if (bm->nround == 0) {
			/* Everything asked for was set already: just wake the waiters. */
			bm->busy = true;
			bm_round_done(bm);
			return;
		}
		bm->busy = true;
		bm_write_image(bm);
		return;
	}
	if (bm->stopping)
		bitmap_stop_check(bm->a);
}

struct want {
	struct raid_array *a;
	uint64_t region;
	unsigned reactor;
};

static void
want_msg(void *arg)
{
	struct want *req = arg;
	struct bitmap *bm = req->a->bm;

	if (!bm->want[req->region]) {
		bm->want[req->region] = 1;
		bm->nwant++;
	}
	bm->waiters |= 1ull << req->reactor;
	free(req);
	bm_kick(bm);
}

/* Region r's pending counter in reactor's row. */
static inline _Atomic uint32_t *
pending_of(struct bitmap *bm, unsigned reactor, uint64_t r)
{
	return &bm->pending[(reactor & (BM_SHARDS - 1)) * bm->pending_stride + r];
}

/* Writes in region r now: every row's. */
static uint32_t
pending_sum(struct bitmap *bm, uint64_t r)
{
	uint32_t n = 0;

	for (unsigned row = 0; row < BM_SHARDS; row++)
		n += atomic_load(&bm->pending[row * bm->pending_stride + r]);
	return n;
}

bool
bitmap_try_enter(struct raid_array *a, unsigned reactor, uint64_t unit)
{
	struct bitmap *bm = a->bm;
	uint64_t r = region_of(bm, unit);
	_Atomic uint32_t *pending = pending_of(bm, reactor, r);

	atomic_fetch_add(pending, 1);
	if (atomic_load(&bm->state[r]) == BM_DIRTY) {
		if (!atomic_load_explicit(&bm->touched[r], memory_order_relaxed))
			atomic_store_explicit(&bm->touched[r], 1, memory_order_relaxed);
		return true;
	}
	atomic_fetch_sub(pending, 1);
	return false;
}

bool
bitmap_enter(struct raid_array *a, unsigned reactor, uint64_t unit)
{
	struct bitmap *bm = a->bm;
	struct want *req;

	if (bitmap_try_enter(a, reactor, unit))
		return true;
	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return false; /* retried at the next ready message */
	req->a = a;
	req->region = region_of(bm, unit);
	req->reactor = reactor;
	uraid_reactor_send(uraid_reactor_get(0), want_msg, req);
	return false;
}

bool
bitmap_unit_dirty(struct raid_array *a, uint64_t unit)
{
	struct bitmap *bm = a->bm;

	return bm == NULL || atomic_load(&bm->state[region_of(bm, unit)]) != BM_CLEAN;
}

void
bitmap_exit(struct raid_array *a, unsigned reactor, uint64_t unit)
{
	atomic_fetch_sub(pending_of(a->bm, reactor, region_of(a->bm, unit)), 1);
}

bool
bitmap_in_resync(struct raid_array *a, uint64_t unit)
{
	return a->bm != NULL &&
	       atomic_load_explicit(&a->bm->resync[region_of(a->bm, unit)], memory_order_relaxed);
}

/* --- lazy clearing (reactor 0's poller) --- */

static unsigned
bm_clear_candidates(struct bitmap *bm)
{
	struct raid_array *a = bm->a;

	if (atomic_load(&a->failed) > 0 || !atomic_load(&a->online))
		return 0; /* a missing member will need the bits */
	for (uint64_t r = 0; r < bm->nbits; r++) {
		uint8_t expect = BM_DIRTY;

		if (atomic_load_explicit(&bm->state[r], memory_order_relaxed) != BM_DIRTY ||
		    atomic_load(&bm->resync[r]))
			continue;
		if (atomic_exchange(&bm->touched[r], 0))
			continue; /* written during the last period */
		if (pending_sum(bm, r) != 0)
			continue;
		if (!atomic_compare_exchange_strong(&bm->state[r], &expect, BM_CLEARING))
			continue;
		if (pending_sum(bm, r) != 0) {
			atomic_store(&bm->state[r], BM_DIRTY); /* a writer came in */
			continue;
		}
		round_add(bm, r, false);
	}
	return (unsigned)bm->nround;
}

static int
bm_sweep(void *arg)
{
	struct bitmap *bm = arg;

	if (bm->busy || bm->stopping || bm->nwant > 0 || atomic_load(&bm->dirty) == 0)
		return URAID_POLLER_IDLE;
	if (bm_clear_candidates(bm) == 0)
		return URAID_POLLER_IDLE;
	bm->busy = true;
	bm->clearing = true;
	bm->flush_failed = false;
	/* What was written in these regions must be durable before their bits go. */
	bm_to_members(bm, URAID_IO_FLUSH, bm_flush_done);
	if (--bm->inflight == 0)
		bm_clear_flushed(bm);
	return URAID_POLLER_BUSY;
}

uint64_t g_bitmap_sweep_us = SWEEP_PERIOD_US;

static void
start_msg(void *arg)
{
	struct raid_array *a = arg;

	a->bm->sweeper = uraid_poller_register(bm_sweep, a->bm, g_bitmap_sweep_us);
	if (atomic_load(&a->bm->resync_left) > 0)
		bitmap_resync_start(a);
}

void
bitmap_start(struct raid_array *a)
{
	uraid_reactor_send(uraid_reactor_get(0), start_msg, a);
}

/* Reactor 0, while stopping: then() once no round is in flight or asked for and the resync
 * has no part out. */
static void
bitmap_stop_check(struct raid_array *a)
{
	struct bitmap *bm = a->bm;
	void (*then)(struct raid_array * a) = bm->stop_then;

	if (then == NULL || bm->busy || bm->nwant > 0 || bm->rs_inflight > 0)
		return;
	bm->stop_then = NULL;
	uraid_poller_unregister(&bm->sweeper);
	then(a);
}

void
bitmap_stop(struct raid_array *a, void (*then)(struct raid_array *a))
{
	struct bitmap *bm = a->bm;

	bm->stopping = true;
	bm->stop_then = then;
	bitmap_stop_check(a);
}

/* --- the resync after a crash (reactor 0) --- */

static void rs_issue(struct raid_array *a);

static void
rs_part_done(struct stripe_part *part, int status UNUSED)
{
	struct raid_array *a = part->a;

	free(part);
	a->bm->rs_inflight--;
	rs_issue(a);
}

static void
rs_issue(struct raid_array *a)
{
	struct bitmap *bm = a->bm;

	for (;;) {
		if (bm->stopping) {
			if (bm->rs_inflight == 0)
				bitmap_stop_check(a);
			return;
		}
		if (bm->rs_next >= bm->rs_end) {
			if (bm->rs_inflight > 0)
				return;
			if (bm->rs_active) {
				/* The region is done. */
				atomic_store(&bm->resync[bm->rs_region], 0);
				atomic_fetch_sub(&bm->resync_left, 1);
				bm->rs_region++;
				bm->rs_active = false;
			}
			while (bm->rs_region < bm->nbits &&
			       !atomic_load(&bm->resync[bm->rs_region]))
				bm->rs_region++;
			if (bm->rs_region >= bm->nbits) {
				LOG_NOTE("%s: resync after the crash is done", a->bdev.name);
				return;
			}
			bm->rs_active = true;
			bm->rs_next = bm->rs_region * bm->region_units;
			bm->rs_end = bm->rs_next + bm->region_units;
			if (bm->rs_end > bm->units)
				bm->rs_end = bm->units;
		}
		if (bm->rs_inflight >= RESYNC_WINDOW)
			return;
		struct stripe_part *part = calloc(1, sizeof(*part));

		if (part == NULL)
			return; /* the sweeper does not help here; a later completion retries */
		part->a = a;
		part->kind = PART_CHECK;
		part->repair = true;
		part->resync = true;
		part->stripe = bm->rs_next++;
		part->num_blocks = layout_stripe_data_blocks(&a->l);
		part->origin = uraid_reactor_self();
		part->done = rs_part_done;
		part->bad_column = -1;
		bm->rs_inflight++;
		stripe_submit(part);
	}
}

void
bitmap_resync_start(struct raid_array *a)
{
	a->bm->rs_region = 0;
	a->bm->rs_next = a->bm->rs_end = 0;
	rs_issue(a);
}

void
bitmap_get_info(struct raid_array *a, struct uraid_array_info *info)
{
	struct bitmap *bm = a->bm;

	if (bm == NULL)
		return;
	info->bitmap.region_kb =
		bm->region_units * layout_stripe_data_blocks(&a->l) * a->bdev.block_size / 1024;
	info->bitmap.regions = bm->nbits;
	info->bitmap.dirty = atomic_load(&bm->dirty);
	info->bitmap.resync_left = atomic_load(&bm->resync_left);
	info->bitmap.sets = atomic_load(&bm->sets);
	info->bitmap.clears = atomic_load(&bm->clears);
}
