/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fault backend: wraps any bdev and injects errors, corruption, latency and power cuts.
 *
 * Theory of operation.
 *
 * Error rules (SPDK's error bdev, extended): up to FAULT_MAX_RULES rules, each matching I/O
 * types, an LBA range, a count and a probability. A matching I/O fails with -EIO, is refused
 * with -ENOMEM, gets a byte corrupted, or is delayed (a delayed read or write reaches the
 * medium at the end of its delay, so later I/O may overtake it). Rules are written on the
 * control path and read by every channel; their fields are atomics, so a reader sees a rule
 * either whole-active or inactive.
 *
 * Volatile write cache (power-cut model, after SQLite's test6.c). With volatile_cache on, a
 * WRITE is not sent to the base bdev: its data is copied into a record appended to the cache
 * and the write completes. Records reach the base ("write back") strictly oldest first, one at
 * a time: when a FLUSH or FUA write needs them, or when the cache is over its size limit (a
 * real drive also writes back on its own). So at any moment
 *
 *     base = durable state = old contents + records[0 .. k) applied in order
 *     view = base + records[k .. n) applied in order         (what reads return)
 *
 * A FLUSH submitted when the newest record has sequence s completes once every record <= s is
 * in the base and a base FLUSH issued after that has completed. A FUA write is a record plus
 * the same wait for its own sequence.
 *
 * At a power cut, every record still in the cache is, by the seeded PRNG, applied whole,
 * dropped whole, or torn (each of its blocks applied or not, independently; a block itself is
 * atomic, as NVMe guarantees for a logical block). Survivors are written to the base in record
 * order, so a block ends up holding its durable contents or one of the versions written to it
 * since, never anything else. Then every I/O fails with -EIO until power is restored.
 *
 * Reads and write-backs to overlapping ranges never run at the same time (a read that meets
 * an in-flight write-back waits for it, and a write-back waits for overlapping reads), so a
 * read's base contents plus the cache overlay at its completion is always the current view.
 *
 * The cache is shared by all channels of the bdev and kept behind a mutex: this is a test
 * device that simulates hardware, not part of uraid's data path.
 *
 * Over a zoned bdev the fault bdev is zoned too (without a volatile cache): zone appends,
 * zone management and zone reports pass through, and a corruption rule on ZONE_APPEND
 * reports the append corrupt_value blocks away from where it went (a drive that misplaces
 * appends, or says so).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "bdev_priv.h"

#define FAULT_MAX_RULES	  16
#define DEFAULT_CACHE_MAX (64ull << 20)

enum power_state { POWER_ON, POWER_CUTTING, POWER_OFF };

struct fault_rule {
	_Atomic bool active;
	_Atomic uint32_t io_type_mask;
	_Atomic int kind;
	_Atomic uint64_t offset_blocks;
	_Atomic uint64_t num_blocks;
	_Atomic int64_t remaining; /* < 0: unlimited */
	_Atomic uint32_t probability_ppm;
	_Atomic uint32_t latency_us;
	_Atomic uint32_t corrupt_offset;
	_Atomic uint8_t corrupt_value;
};

struct cache_rec {
	uint64_t seq;
	uint64_t offset_blocks;
	uint64_t num_blocks;
	uint8_t *data; /* NULL: zeroes (UNMAP, WRITE_ZEROES) */
	TAILQ_ENTRY(cache_rec) link;
};
TAILQ_HEAD(rec_list, cache_rec);

struct fault_io;
TAILQ_HEAD(fio_list, fault_io);

struct cut_run {
	uint64_t offset_blocks;
	uint64_t num_blocks;
	const uint8_t *data; /* NULL: zeroes */
};

struct fault_bdev {
	struct uraid_bdev bdev;
	char ch_dev;
	struct uraid_bdev_desc *base_desc;
	struct fault_rule rules[FAULT_MAX_RULES];
	uint64_t seed;
	bool volatile_cache;
	_Atomic int power;

	pthread_mutex_t lock; /* everything below */
	struct rec_list recs;
	uint64_t next_seq;    /* sequence of the newest record */
	uint64_t flushed_seq; /* every record <= this is durable in the base */
	uint64_t cache_bytes;
	uint64_t cache_max;
	struct cache_rec *wb; /* record being written back */
	bool base_flush_busy;
	uint64_t base_flush_seq;
	struct fio_list waiters; /* FLUSH and FUA writes: done when flushed_seq >= target */
	struct fio_list blocked; /* reads waiting for an overlapping write-back */
	struct fio_list reads;	 /* reads in flight on the base */
	unsigned base_busy;	 /* write-back + base flush + reads in flight */
	struct prng cut_rng;

	/* power cut in progress (runs on cut_reactor) */
	struct uraid_reactor *cut_reactor;
	struct uraid_io_channel *cut_ch;
	struct cut_run *runs;
	size_t num_runs, next_run;
	struct rec_list cut_recs;
	struct fault_cut_stats cut_stats;
	void (*cut_cb)(void *cb_arg, int status, const struct fault_cut_stats *st);
	void *cut_cb_arg;
};

struct fault_channel {
	struct uraid_io_channel *base_ch;
	struct prng rng;
};

struct fault_io {
	struct uraid_bdev_io *io;
	struct fault_channel *fch;
	struct uraid_reactor *origin;
	uint64_t target_seq;
	uint32_t latency_us;
	bool corrupt;
	uint32_t corrupt_offset;
	uint8_t corrupt_value;
	int status;
	uint64_t append_lba; /* ZONE_APPEND: where the base put it */
	struct uraid_poller *delay;
	TAILQ_ENTRY(fault_io) link;
};

static inline struct fault_io *
fio_of(struct uraid_bdev_io *io)
{
	return (struct fault_io *)io->driver_ctx;
}

static void cache_kick_locked(struct fault_bdev *fb, struct fault_channel *fch);
static void cut_maybe_continue_locked(struct fault_bdev *fb);

/* --- completion --- */

static int
delay_done(void *arg)
{
	struct fault_io *f = arg;

	uraid_poller_unregister(&f->delay);
	uraid_bdev_io_complete(f->io, f->status);
	return URAID_POLLER_BUSY;
}

static void
corrupt_io(struct fault_io *f)
{
	struct uraid_bdev_io *io = f->io;
	uint64_t len = io->num_blocks * io->bdev->block_size;
	uint8_t b;

	if (!f->corrupt || io->iov == NULL || f->corrupt_offset >= len)
		return;
	uraid_iov_to_buf(&b, io->iov, io->iovcnt, f->corrupt_offset, 1);
	b ^= f->corrupt_value;
	uraid_iov_from_buf(io->iov, io->iovcnt, f->corrupt_offset, &b, 1);
}

/* On the I/O's own reactor, not from inside its submit. */
static void
fault_finish(struct fault_io *f, int status)
{
	if (status == 0 && f->io->type == URAID_IO_READ)
		corrupt_io(f);
	if (f->latency_us) {
		f->status = status;
		f->delay = uraid_poller_register(delay_done, f, f->latency_us);
		if (f->delay != NULL)
			return;
	}
	uraid_bdev_io_complete(f->io, status);
}

static void
finish_msg(void *arg)
{
	struct fault_io *f = arg;

	fault_finish(f, f->status);
}

/* From any reactor, always later: the I/O's callback never runs inside someone's submit. */
static void
finish_on_origin(struct fault_io *f, int status)
{
	f->status = status;
	uraid_reactor_send(f->origin, finish_msg, f);
}

/* --- error rules --- */

static bool
rule_match(struct fault_rule *r, struct fault_channel *fch, struct uraid_bdev_io *io)
{
	uint64_t num = atomic_load_explicit(&r->num_blocks, memory_order_relaxed);
	uint32_t ppm = atomic_load_explicit(&r->probability_ppm, memory_order_relaxed);
	int64_t left;

	if (!atomic_load_explicit(&r->active, memory_order_acquire))
		return false;
	if (!(atomic_load_explicit(&r->io_type_mask, memory_order_relaxed) & (1u << io->type)))
		return false;
	if (num != 0 && io->num_blocks != 0) {
		uint64_t off = atomic_load_explicit(&r->offset_blocks, memory_order_relaxed);

		if (io->offset_blocks + io->num_blocks <= off || io->offset_blocks >= off + num)
			return false;
	}
	if (ppm < 1000000 && prng_below(&fch->rng, 1000000) >= ppm)
		return false;
	left = atomic_load_explicit(&r->remaining, memory_order_relaxed);
	if (left < 0)
		return true;
	/* Counted rules: take one hit if any is left. */
	while (left > 0) {
		if (atomic_compare_exchange_weak_explicit(&r->remaining, &left, left - 1,
							  memory_order_relaxed,
							  memory_order_relaxed))
			return true;
	}
	return false;
}

/* Returns 0 to go on, 1 if the I/O was completed (failed), or -ENOMEM to refuse it. */
static int
apply_rules(struct fault_bdev *fb, struct fault_channel *fch, struct fault_io *f)
{
	struct uraid_bdev_io *io = f->io;

	for (int i = 0; i < FAULT_MAX_RULES; i++) {
		struct fault_rule *r = &fb->rules[i];

		if (!rule_match(r, fch, io))
			continue;
		switch (atomic_load_explicit(&r->kind, memory_order_relaxed)) {
		case FAULT_FAILURE:
			uraid_bdev_io_complete_deferred(io, -EIO);
			return 1;
		case FAULT_NOMEM:
			return -ENOMEM;
		case FAULT_LATENCY:
			f->latency_us = atomic_load_explicit(&r->latency_us, memory_order_relaxed);
			break;
		case FAULT_CORRUPT:
			f->corrupt = true;
			f->corrupt_offset =
				atomic_load_explicit(&r->corrupt_offset, memory_order_relaxed);
			f->corrupt_value =
				atomic_load_explicit(&r->corrupt_value, memory_order_relaxed);
			break;
		}
	}
	return 0;
}

/* --- pass-through path --- */

static void
base_done(void *arg, int status)
{
	fault_finish(arg, status);
}

static void
append_done(void *arg, int status)
{
	struct fault_io *f = arg;

	if (status == 0)
		*f->io->append_lba =
			f->append_lba +
			(f->corrupt ? (f->corrupt_value ? f->corrupt_value : 0xff) : 0);
	fault_finish(f, status);
}

static int
passthrough(struct fault_bdev *fb, struct fault_channel *fch, struct fault_io *f)
{
	struct uraid_bdev_io *io = f->io;

	switch (io->type) {
	case URAID_IO_ZONE_APPEND:
		return uraid_bdev_zone_appendv(fb->base_desc, fch->base_ch, io->iov, io->iovcnt,
					       io->offset_blocks, io->num_blocks, io->flags,
					       &f->append_lba, append_done, f);
	case URAID_IO_ZONE_MANAGEMENT:
		return uraid_bdev_zone_management(fb->base_desc, fch->base_ch, io->offset_blocks,
						  io->zone_action, base_done, f);
	case URAID_IO_GET_ZONE_INFO:
		return uraid_bdev_get_zone_info(fb->base_desc, fch->base_ch, io->offset_blocks,
						(uint32_t)io->num_blocks, io->zone_info, base_done,
						f);
	case URAID_IO_READ:
		return uraid_bdev_readv(fb->base_desc, fch->base_ch, io->iov, io->iovcnt,
					io->offset_blocks, io->num_blocks, base_done, f);
	case URAID_IO_WRITE:
		return uraid_bdev_writev(fb->base_desc, fch->base_ch, io->iov, io->iovcnt,
					 io->offset_blocks, io->num_blocks, io->flags, base_done,
					 f);
	case URAID_IO_FLUSH:
		return uraid_bdev_flush(fb->base_desc, fch->base_ch, base_done, f);
	case URAID_IO_UNMAP:
		return uraid_bdev_unmap(fb->base_desc, fch->base_ch, io->offset_blocks,
					io->num_blocks, base_done, f);
	case URAID_IO_WRITE_ZEROES:
		return uraid_bdev_write_zeroes(fb->base_desc, fch->base_ch, io->offset_blocks,
					       io->num_blocks, base_done, f);
	default:
		return -EINVAL;
	}
}

static int
io_later(void *arg)
{
	struct fault_io *f = arg;
	int rc;

	uraid_poller_unregister(&f->delay);
	f->latency_us = 0;
	rc = passthrough(f->io->bdev->ctx, f->fch, f);
	if (rc != 0)
		uraid_bdev_io_complete(f->io, rc);
	return URAID_POLLER_BUSY;
}

/* --- volatile cache --- */

static bool
overlaps(uint64_t a_off, uint64_t a_num, uint64_t b_off, uint64_t b_num)
{
	return a_off < b_off + b_num && b_off < a_off + a_num;
}

static uint64_t
in_base_seq_locked(struct fault_bdev *fb)
{
	struct cache_rec *first = TAILQ_FIRST(&fb->recs);

	return first ? first->seq - 1 : fb->next_seq;
}

static void
overlay_locked(struct fault_bdev *fb, struct uraid_bdev_io *io)
{
	uint32_t bs = fb->bdev.block_size;
	struct cache_rec *rec;

	TAILQ_FOREACH(rec, &fb->recs, link) {
		uint64_t start, end;

		if (!overlaps(rec->offset_blocks, rec->num_blocks, io->offset_blocks,
			      io->num_blocks))
			continue;
		start = rec->offset_blocks > io->offset_blocks ? rec->offset_blocks
							       : io->offset_blocks;
		end = rec->offset_blocks + rec->num_blocks < io->offset_blocks + io->num_blocks
			      ? rec->offset_blocks + rec->num_blocks
			      : io->offset_blocks + io->num_blocks;
		for (uint64_t b = start; b < end; b++) {
			static const uint8_t zero[4096];
			const uint8_t *src =
				rec->data ? rec->data + (b - rec->offset_blocks) * bs : zero;

			uraid_iov_from_buf(io->iov, io->iovcnt, (b - io->offset_blocks) * bs, src,
					   bs);
		}
	}
}

static void wb_done(void *arg, int status);
static void base_flush_done(void *arg, int status);

struct base_op {
	struct fault_bdev *fb;
	struct fault_channel *fch;
	struct cache_rec *rec;
	uint64_t seq;
};

/* A base operation that was not issued, or is over: free it and release its channel. */
static void
op_drop(struct base_op *op)
{
	uraid_put_io_channel(uraid_io_channel_from_ctx(op->fch));
	free(op);
}

static bool
read_overlaps_locked(struct fault_bdev *fb, struct cache_rec *rec)
{
	struct fault_io *f;

	TAILQ_FOREACH(f, &fb->reads, link) {
		if (overlaps(rec->offset_blocks, rec->num_blocks, f->io->offset_blocks,
			     f->io->num_blocks))
			return true;
	}
	return false;
}

/* Start the next write-back or base flush if one is needed and none is running. */
static void
cache_kick_locked(struct fault_bdev *fb, struct fault_channel *fch)
{
	struct cache_rec *rec = TAILQ_FIRST(&fb->recs);
	uint64_t target = 0;
	struct fault_io *w;
	struct base_op *op;
	int rc;

	if (atomic_load(&fb->power) != POWER_ON || fb->wb != NULL || fb->base_flush_busy)
		return;
	TAILQ_FOREACH(w, &fb->waiters, link) {
		if (w->target_seq > target)
			target = w->target_seq;
	}
	op = malloc(sizeof(*op));
	if (op == NULL)
		return;
	op->fb = fb;
	op->fch = fch;
	/* The channel outlives the base I/O issued on it (the array may put it meanwhile):
	 * its completion kicks the next write-back on it, then lets it go. */
	uraid_io_channel_hold(uraid_io_channel_from_ctx(fch));
	if (rec != NULL && (rec->seq <= target || fb->cache_bytes > fb->cache_max)) {
		if (read_overlaps_locked(fb, rec)) {
			op_drop(op); /* the read's completion kicks again */
			return;
		}
		op->rec = rec;
		fb->wb = rec;
		fb->base_busy++;
		if (rec->data)
			rc = uraid_bdev_write(fb->base_desc, fch->base_ch, rec->data,
					      rec->offset_blocks, rec->num_blocks, 0, wb_done, op);
		else
			rc = uraid_bdev_write_zeroes(fb->base_desc, fch->base_ch,
						     rec->offset_blocks, rec->num_blocks, wb_done,
						     op);
		if (rc != 0) {
			LOG_ERR("%s: write-back refused by %s: %s", fb->bdev.name,
				uraid_bdev_get_name(uraid_bdev_desc_get_bdev(fb->base_desc)),
				strerror(-rc));
			fb->wb = NULL;
			fb->base_busy--;
			op_drop(op);
		}
		return;
	}
	if (target > fb->flushed_seq && in_base_seq_locked(fb) >= target) {
		op->seq = in_base_seq_locked(fb);
		fb->base_flush_busy = true;
		fb->base_busy++;
		rc = uraid_bdev_flush(fb->base_desc, fch->base_ch, base_flush_done, op);
		if (rc != 0) {
			fb->base_flush_busy = false;
			fb->base_busy--;
			op_drop(op);
		}
		return;
	}
	op_drop(op);
}

static void read_submit_locked(struct fault_bdev *fb, struct fault_channel *fch,
			       struct fault_io *f);

static void
read_retry_msg(void *arg)
{
	struct fault_io *f = arg;
	struct fault_bdev *fb = f->io->bdev->ctx;

	pthread_mutex_lock(&fb->lock);
	if (atomic_load(&fb->power) != POWER_ON)
		finish_on_origin(f, -EIO);
	else
		read_submit_locked(fb, f->fch, f);
	pthread_mutex_unlock(&fb->lock);
}

static void
wb_done(void *arg, int status)
{
	struct base_op *op = arg;
	struct fault_bdev *fb = op->fb;
	struct cache_rec *rec = op->rec;
	struct fault_io *f, *tmp;

	pthread_mutex_lock(&fb->lock);
	fb->wb = NULL;
	fb->base_busy--;
	if (status == 0) {
		TAILQ_REMOVE(&fb->recs, rec, link);
		fb->cache_bytes -= rec->num_blocks * fb->bdev.block_size;
		free(rec->data);
		free(rec);
	} else {
		LOG_ERR("%s: write-back failed: %s", fb->bdev.name, strerror(-status));
	}
	TAILQ_FOREACH_SAFE(f, &fb->blocked, link, tmp) {
		TAILQ_REMOVE(&fb->blocked, f, link);
		uraid_reactor_send(f->origin, read_retry_msg, f);
	}
	if (atomic_load(&fb->power) == POWER_CUTTING)
		cut_maybe_continue_locked(fb);
	else if (status == 0)
		cache_kick_locked(fb, op->fch);
	pthread_mutex_unlock(&fb->lock);
	op_drop(op);
}

static void
base_flush_done(void *arg, int status)
{
	struct base_op *op = arg;
	struct fault_bdev *fb = op->fb;
	struct fault_io *f, *tmp;

	pthread_mutex_lock(&fb->lock);
	fb->base_flush_busy = false;
	fb->base_busy--;
	if (status == 0 && op->seq > fb->flushed_seq)
		fb->flushed_seq = op->seq;
	TAILQ_FOREACH_SAFE(f, &fb->waiters, link, tmp) {
		if (status != 0 || f->target_seq <= fb->flushed_seq) {
			TAILQ_REMOVE(&fb->waiters, f, link);
			finish_on_origin(f, status == 0 ? 0 : -EIO);
		}
	}
	if (atomic_load(&fb->power) == POWER_CUTTING)
		cut_maybe_continue_locked(fb);
	else
		cache_kick_locked(fb, op->fch);
	pthread_mutex_unlock(&fb->lock);
	op_drop(op);
}

static void
read_done(void *arg, int status)
{
	struct fault_io *f = arg;
	struct fault_bdev *fb = f->io->bdev->ctx;

	pthread_mutex_lock(&fb->lock);
	TAILQ_REMOVE(&fb->reads, f, link);
	fb->base_busy--;
	if (status == 0)
		overlay_locked(fb, f->io);
	if (atomic_load(&fb->power) == POWER_CUTTING) {
		status = -EIO;
		cut_maybe_continue_locked(fb);
	} else {
		cache_kick_locked(fb, f->fch);
	}
	pthread_mutex_unlock(&fb->lock);
	fault_finish(f, status);
}

static void
read_submit_locked(struct fault_bdev *fb, struct fault_channel *fch, struct fault_io *f)
{
	struct uraid_bdev_io *io = f->io;
	int rc;

	if (fb->wb != NULL && overlaps(fb->wb->offset_blocks, fb->wb->num_blocks, io->offset_blocks,
				       io->num_blocks)) {
		TAILQ_INSERT_TAIL(&fb->blocked, f, link);
		return;
	}
	TAILQ_INSERT_TAIL(&fb->reads, f, link);
	fb->base_busy++;
	rc = uraid_bdev_readv(fb->base_desc, fch->base_ch, io->iov, io->iovcnt, io->offset_blocks,
			      io->num_blocks, read_done, f);
	if (rc != 0) {
		TAILQ_REMOVE(&fb->reads, f, link);
		fb->base_busy--;
		finish_on_origin(f, -EIO);
	}
}

static int
cache_submit(struct fault_bdev *fb, struct fault_channel *fch, struct fault_io *f)
{
	struct uraid_bdev_io *io = f->io;
	uint64_t len = io->num_blocks * fb->bdev.block_size;
	struct cache_rec *rec = NULL;
	bool fua = io->type == URAID_IO_WRITE && (io->flags & URAID_IO_FUA);

	if (io->type == URAID_IO_WRITE || io->type == URAID_IO_UNMAP ||
	    io->type == URAID_IO_WRITE_ZEROES) {
		rec = calloc(1, sizeof(*rec));
		if (rec == NULL)
			return -ENOMEM;
		if (io->type == URAID_IO_WRITE) {
			rec->data = malloc(len);
			if (rec->data == NULL) {
				free(rec);
				return -ENOMEM;
			}
			uraid_iov_to_buf(rec->data, io->iov, io->iovcnt, 0, len);
			if (f->corrupt && f->corrupt_offset < len)
				rec->data[f->corrupt_offset] ^= f->corrupt_value;
		}
		rec->offset_blocks = io->offset_blocks;
		rec->num_blocks = io->num_blocks;
	}

	pthread_mutex_lock(&fb->lock);
	if (atomic_load(&fb->power) != POWER_ON) {
		pthread_mutex_unlock(&fb->lock);
		if (rec)
			free(rec->data);
		free(rec);
		uraid_bdev_io_complete_deferred(io, -EIO);
		return 0;
	}
	switch (io->type) {
	case URAID_IO_READ:
		read_submit_locked(fb, fch, f);
		break;
	case URAID_IO_FLUSH:
		f->target_seq = fb->next_seq;
		if (fb->flushed_seq >= f->target_seq) {
			uraid_bdev_io_complete_deferred(io, 0);
			break;
		}
		TAILQ_INSERT_TAIL(&fb->waiters, f, link);
		break;
	default:
		rec->seq = ++fb->next_seq;
		TAILQ_INSERT_TAIL(&fb->recs, rec, link);
		fb->cache_bytes += len;
		if (fua) {
			f->target_seq = rec->seq;
			TAILQ_INSERT_TAIL(&fb->waiters, f, link);
		} else {
			uraid_bdev_io_complete_deferred(io, 0);
		}
		break;
	}
	cache_kick_locked(fb, fch);
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

/* --- submit --- */

static int
fault_submit(void *ch_ctx, struct uraid_bdev_io *io)
{
	struct fault_bdev *fb = io->bdev->ctx;
	struct fault_channel *fch = ch_ctx;
	struct fault_io *f = fio_of(io);
	int rc;

	memset(f, 0, sizeof(*f));
	f->io = io;
	f->fch = fch;
	f->origin = uraid_reactor_self();
	if (atomic_load(&fb->power) != POWER_ON) {
		uraid_bdev_io_complete_deferred(io, -EIO);
		return 0;
	}
	rc = apply_rules(fb, fch, f);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (fb->volatile_cache)
		return cache_submit(fb, fch, f);
	if (f->corrupt && io->type == URAID_IO_WRITE) {
		/* As SPDK's error bdev: the write's own buffer is corrupted on its way down. */
		corrupt_io(f);
	}
	if (f->latency_us && (io->type == URAID_IO_READ || io->type == URAID_IO_WRITE)) {
		/* A slow read takes its data at the end of its latency, not the start: what it
		 * returns may be anything written meanwhile, as on a drive with a deep queue.
		 * A slow write reaches the medium then too, so a write submitted after it may
		 * land first: the drive reorders its queue, as NVMe drives may. */
		f->delay = uraid_poller_register(io_later, f, f->latency_us);
		if (f->delay != NULL)
			return 0;
	}
	return passthrough(fb, fch, f);
}

/* --- power cut --- */

static void cut_write_next(void *arg);

static void
cut_run_done(void *arg, int status)
{
	struct fault_bdev *fb = arg;

	if (status != 0)
		LOG_ERR("%s: applying a surviving write at power cut failed: %s", fb->bdev.name,
			strerror(-status));
	fb->next_run++;
	cut_write_next(fb);
}

static void
cut_finish(void *arg, int status)
{
	struct fault_bdev *fb = arg;
	struct cache_rec *rec;

	while ((rec = TAILQ_FIRST(&fb->cut_recs)) != NULL) {
		TAILQ_REMOVE(&fb->cut_recs, rec, link);
		free(rec->data);
		free(rec);
	}
	free(fb->runs);
	fb->runs = NULL;
	uraid_put_io_channel(fb->cut_ch);
	fb->cut_ch = NULL;
	atomic_store(&fb->power, POWER_OFF);
	if (fb->cut_cb)
		fb->cut_cb(fb->cut_cb_arg, status, &fb->cut_stats);
}

/* Survivors go to the base one run at a time, in record order. */
static void
cut_write_next(void *arg)
{
	struct fault_bdev *fb = arg;
	struct cut_run *run;
	int rc;

	if (fb->next_run >= fb->num_runs) {
		rc = uraid_bdev_flush(fb->base_desc, fb->cut_ch, cut_finish, fb);
		if (rc != 0)
			cut_finish(fb, rc);
		return;
	}
	run = &fb->runs[fb->next_run];
	if (run->data)
		rc = uraid_bdev_write(fb->base_desc, fb->cut_ch, (void *)run->data,
				      run->offset_blocks, run->num_blocks, 0, cut_run_done, fb);
	else
		rc = uraid_bdev_write_zeroes(fb->base_desc, fb->cut_ch, run->offset_blocks,
					     run->num_blocks, cut_run_done, fb);
	if (rc != 0)
		cut_run_done(fb, rc);
}

static int
cut_add_run(struct fault_bdev *fb, size_t *cap, uint64_t off, uint64_t num, const uint8_t *data)
{
	if (fb->num_runs == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct cut_run *n = realloc(fb->runs, ncap * sizeof(*n));

		if (n == NULL)
			return -ENOMEM;
		fb->runs = n;
		*cap = ncap;
	}
	fb->runs[fb->num_runs++] = (struct cut_run){off, num, data};
	return 0;
}

/* Decide the fate of every cached record (apply, drop, tear) and write the survivors. */
static void
cut_apply(void *arg)
{
	struct fault_bdev *fb = arg;
	uint32_t bs = fb->bdev.block_size;
	struct cache_rec *rec;
	size_t cap = 0;

	pthread_mutex_lock(&fb->lock);
	TAILQ_INIT(&fb->cut_recs);
	TAILQ_CONCAT(&fb->cut_recs, &fb->recs, link);
	fb->cache_bytes = 0;
	pthread_mutex_unlock(&fb->lock);

	fb->cut_ch = uraid_bdev_get_io_channel(fb->base_desc);
	fb->num_runs = fb->next_run = 0;
	TAILQ_FOREACH(rec, &fb->cut_recs, link) {
		uint64_t fate = prng_below(&fb->cut_rng, 3);

		fb->cut_stats.records++;
		if (fate == 0) {
			fb->cut_stats.dropped++;
			continue;
		}
		if (fate == 1) {
			fb->cut_stats.applied++;
			cut_add_run(fb, &cap, rec->offset_blocks, rec->num_blocks, rec->data);
			continue;
		}
		fb->cut_stats.torn++;
		for (uint64_t b = 0; b < rec->num_blocks;) {
			uint64_t n = 0;

			while (b + n < rec->num_blocks && prng_below(&fb->cut_rng, 2) == 1)
				n++;
			if (n > 0)
				cut_add_run(fb, &cap, rec->offset_blocks + b, n,
					    rec->data ? rec->data + b * bs : NULL);
			b += n + 1; /* the block that ended the run is dropped */
		}
	}
	if (fb->cut_ch == NULL) {
		cut_finish(fb, -ENOMEM);
		return;
	}
	cut_write_next(fb);
}

static void
cut_maybe_continue_locked(struct fault_bdev *fb)
{
	if (fb->base_busy == 0 && fb->cut_reactor != NULL)
		uraid_reactor_send(fb->cut_reactor, cut_apply, fb);
}

static void
cut_start(void *arg)
{
	struct fault_bdev *fb = arg;
	struct fault_io *f, *tmp;

	pthread_mutex_lock(&fb->lock);
	/* Waiting flushes, FUA writes and blocked reads never complete successfully now. */
	TAILQ_FOREACH_SAFE(f, &fb->waiters, link, tmp) {
		TAILQ_REMOVE(&fb->waiters, f, link);
		finish_on_origin(f, -EIO);
	}
	TAILQ_FOREACH_SAFE(f, &fb->blocked, link, tmp) {
		TAILQ_REMOVE(&fb->blocked, f, link);
		finish_on_origin(f, -EIO);
	}
	fb->cut_reactor = uraid_reactor_self();
	/* In-flight base I/O lands first (it is already on its way to the medium). */
	cut_maybe_continue_locked(fb);
	pthread_mutex_unlock(&fb->lock);
}

static struct fault_bdev *
fault_find(const char *name)
{
	struct uraid_bdev *bdev = uraid_bdev_get_by_name(name);

	if (bdev == NULL || bdev->fn->submit_request != fault_submit)
		return NULL;
	return bdev->ctx;
}

int
fault_power_cut(const char *name, uint64_t seed,
		void (*cb)(void *cb_arg, int status, const struct fault_cut_stats *st),
		void *cb_arg)
{
	struct fault_bdev *fb = fault_find(name);
	int expected = POWER_ON;
	struct uraid_reactor *r = uraid_reactor_self();

	if (fb == NULL)
		return -ENODEV;
	if (!atomic_compare_exchange_strong(&fb->power, &expected, POWER_CUTTING))
		return -EALREADY;
	if (seed != 0)
		prng_seed(&fb->cut_rng, seed);
	memset(&fb->cut_stats, 0, sizeof(fb->cut_stats));
	fb->cut_cb = cb;
	fb->cut_cb_arg = cb_arg;
	fb->cut_reactor = NULL;
	return uraid_reactor_send(r ? r : uraid_reactor_get(0), cut_start, fb);
}

int
fault_power_on(const char *name)
{
	struct fault_bdev *fb = fault_find(name);
	int expected = POWER_OFF;

	if (fb == NULL)
		return -ENODEV;
	pthread_mutex_lock(&fb->lock);
	if (atomic_load(&fb->power) != POWER_OFF) {
		/* On already (its cache is live), or a cut still in progress. */
		expected = atomic_load(&fb->power);
		pthread_mutex_unlock(&fb->lock);
		return expected == POWER_ON ? 0 : -EBUSY;
	}
	fb->next_seq = fb->flushed_seq = 0;
	fb->cut_reactor = NULL;
	atomic_store(&fb->power, POWER_ON);
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

/* --- rules (control path) --- */

int
fault_inject(const char *name, const struct fault_rule_opts *o)
{
	struct fault_bdev *fb = fault_find(name);

	if (fb == NULL)
		return -ENODEV;
	if (o->io_type_mask == 0 || o->probability_ppm > 1000000 || o->count == 0)
		return -EINVAL;
	for (int i = 0; i < FAULT_MAX_RULES; i++) {
		struct fault_rule *r = &fb->rules[i];

		if (atomic_load(&r->active))
			continue;
		atomic_store(&r->io_type_mask, o->io_type_mask);
		atomic_store(&r->kind, (int)o->kind);
		atomic_store(&r->offset_blocks, o->offset_blocks);
		atomic_store(&r->num_blocks, o->num_blocks);
		atomic_store(&r->remaining, o->count);
		atomic_store(&r->probability_ppm, o->probability_ppm);
		atomic_store(&r->latency_us, o->latency_us);
		atomic_store(&r->corrupt_offset, o->corrupt_offset);
		atomic_store(&r->corrupt_value, o->corrupt_value ? o->corrupt_value : 0xff);
		/* Release: a reader that sees the rule active sees every field above. */
		atomic_store_explicit(&r->active, true, memory_order_release);
		return 0;
	}
	return -ENOSPC;
}

int
fault_clear(const char *name)
{
	struct fault_bdev *fb = fault_find(name);

	if (fb == NULL)
		return -ENODEV;
	for (int i = 0; i < FAULT_MAX_RULES; i++)
		atomic_store(&fb->rules[i].active, false);
	return 0;
}

/* --- lifecycle --- */

static int
fault_channel_create(void *io_device, void *ctx)
{
	struct fault_bdev *fb = container_of((char *)io_device, struct fault_bdev, ch_dev);
	struct fault_channel *fch = ctx;

	fch->base_ch = uraid_bdev_get_io_channel(fb->base_desc);
	if (fch->base_ch == NULL)
		return -ENOMEM;
	prng_seed(&fch->rng,
		  fb->seed ^ (0x9e37ull * (uraid_reactor_index(uraid_reactor_self()) + 1)));
	return 0;
}

static void
fault_channel_destroy(void *io_device UNUSED, void *ctx)
{
	struct fault_channel *fch = ctx;

	uraid_put_io_channel(fch->base_ch);
}

static bool
fault_io_type_supported(struct uraid_bdev *bdev, enum uraid_io_type type)
{
	struct fault_bdev *fb = bdev->ctx;

	return uraid_bdev_io_type_supported(uraid_bdev_desc_get_bdev(fb->base_desc), type);
}

static int
fault_destruct(struct uraid_bdev *bdev)
{
	struct fault_bdev *fb = bdev->ctx;
	struct cache_rec *rec;

	uraid_io_device_unregister(&fb->ch_dev, NULL);
	uraid_bdev_close(fb->base_desc);
	while ((rec = TAILQ_FIRST(&fb->recs)) != NULL) {
		TAILQ_REMOVE(&fb->recs, rec, link);
		free(rec->data);
		free(rec);
	}
	pthread_mutex_destroy(&fb->lock);
	free(fb);
	return 0;
}

static const struct uraid_bdev_fn_table fault_fn = {
	.submit_request = fault_submit,
	.io_type_supported = fault_io_type_supported,
	.destruct = fault_destruct,
};

static void
base_event(enum uraid_bdev_event event, struct uraid_bdev *base UNUSED, void *ctx)
{
	struct fault_bdev *fb = ctx;

	if (event == URAID_BDEV_EVENT_REMOVE)
		uraid_bdev_unregister(&fb->bdev, NULL, NULL);
}

int
fault_bdev_create(const struct fault_bdev_opts *o, struct uraid_bdev **out)
{
	struct fault_bdev *fb;
	struct uraid_bdev *base;
	int rc;

	if (strlen(o->name) == 0 || strlen(o->name) >= URAID_BDEV_NAME_MAX)
		return -EINVAL;
	fb = calloc(1, sizeof(*fb));
	if (fb == NULL)
		return -ENOMEM;
	rc = uraid_bdev_open(o->base_name, true, base_event, fb, &fb->base_desc);
	if (rc != 0)
		goto err_open;
	rc = uraid_bdev_claim(fb->base_desc, o->name);
	if (rc != 0)
		goto err_claim;
	base = uraid_bdev_desc_get_bdev(fb->base_desc);
	if (uraid_bdev_is_zoned(base) && o->volatile_cache) {
		rc = -EINVAL; /* the cache model writes anywhere; zones do not take that */
		goto err_claim;
	}
	pthread_mutex_init(&fb->lock, NULL);
	TAILQ_INIT(&fb->recs);
	TAILQ_INIT(&fb->waiters);
	TAILQ_INIT(&fb->blocked);
	TAILQ_INIT(&fb->reads);
	fb->seed = o->seed;
	prng_seed(&fb->cut_rng, o->seed);
	fb->volatile_cache = o->volatile_cache;
	fb->cache_max = o->cache_max_bytes ? o->cache_max_bytes : DEFAULT_CACHE_MAX;
	atomic_init(&fb->power, POWER_ON);
	snprintf(fb->bdev.name, sizeof(fb->bdev.name), "%s", o->name);
	fb->bdev.product = "Fault injection disk";
	fb->bdev.block_size = uraid_bdev_get_block_size(base);
	fb->bdev.num_blocks = uraid_bdev_get_num_blocks(base);
	fb->bdev.write_cache = o->volatile_cache || uraid_bdev_has_write_cache(base);
	fb->bdev.zone_size = uraid_bdev_get_zone_size(base);
	fb->bdev.zone_capacity = uraid_bdev_get_zone_capacity(base);
	fb->bdev.max_open_zones = uraid_bdev_get_max_open_zones(base);
	fb->bdev.max_active_zones = uraid_bdev_get_max_active_zones(base);
	fb->bdev.optimal_open_zones = uraid_bdev_get_optimal_open_zones(base);
	fb->bdev.conventional_zones = uraid_bdev_get_conventional_zones(base);
	fb->bdev.driver_ctx_size = sizeof(struct fault_io);
	fb->bdev.io_device = &fb->ch_dev;
	fb->bdev.fn = &fault_fn;
	fb->bdev.ctx = fb;
	if (o->uuid)
		memcpy(fb->bdev.uuid, o->uuid, 16);
	uraid_io_device_register(&fb->ch_dev, fault_channel_create, fault_channel_destroy,
				 sizeof(struct fault_channel), o->name);
	rc = uraid_bdev_register(&fb->bdev);
	if (rc != 0)
		goto err_register;
	*out = &fb->bdev;
	return 0;

err_register:
	uraid_io_device_unregister(&fb->ch_dev, NULL);
	pthread_mutex_destroy(&fb->lock);
err_claim:
	uraid_bdev_close(fb->base_desc);
err_open:
	free(fb);
	return rc;
}
