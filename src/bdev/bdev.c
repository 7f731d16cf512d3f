/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The generic bdev layer: registry, descriptors and claims, per-reactor bdev channels with
 * request pools, request validation, deferred completion, RESET and hot-remove.
 *
 * A bdev is an io_device; its channel (struct bdev_channel) holds the module's channel, a pool
 * of struct uraid_bdev_io with the module's driver context behind each, and counters. Requests
 * are validated here so modules see only well-formed I/O.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "bdev_priv.h"

#define IO_CHUNK 64
#define IO_MAX	 65536

struct uraid_bdev_desc {
	struct uraid_bdev *bdev;
	bool write;
	uraid_bdev_event_cb event_cb;
	void *event_ctx;
	struct uraid_reactor *reactor;
	TAILQ_ENTRY(uraid_bdev_desc) link;
};

struct bdev_internal {
	struct uraid_bdev *bdev;
	TAILQ_HEAD(, uraid_bdev_desc) descs;
	struct uraid_bdev_desc *claim_desc;
	char claim_owner[URAID_BDEV_NAME_MAX];
	bool removing;
	uraid_bdev_unregister_cb unregister_cb;
	void *unregister_cb_arg;
	TAILQ_ENTRY(bdev_internal) link;
	struct uraid_bdev_io_stats retired; /* of channels gone (g_stats_lock) */
};

STAILQ_HEAD(io_list, uraid_bdev_io);

struct mgr_channel {
	struct io_list deferred; /* for the next poll */
	struct io_list follow;	 /* deferred by completions of this poll, run in it */
	unsigned depth;		 /* what the running completion defers is at this depth */
	struct uraid_poller *poller;
};

/* Levels of a chain of deferred completions one poll runs (see mgr_poll). */
#define DEFER_DEPTH_MAX 2

struct bdev_channel {
	struct uraid_bdev *bdev;
	struct uraid_io_channel *module_ch;
	void *module_ctx;
	struct uraid_io_channel *mgr_ch;
	struct mgr_channel *mgr;
	struct io_list free_ios;
	size_t io_bytes;
	unsigned num_ios;
	unsigned num_chunks;
	void **chunks;
	uint64_t inflight;
	uint64_t resets_waiting;
	struct io_list resets;
	struct uraid_bdev_io_stats stats;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_stats_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, bdev_internal) g_bdevs = TAILQ_HEAD_INITIALIZER(g_bdevs);
static pthread_once_t g_mgr_once = PTHREAD_ONCE_INIT;
static int g_bdev_mgr; /* its address is the deferred-completion io_device */

/* --- deferred completion: one queue and poller per reactor --- */

static int
mgr_poll(void *arg)
{
	struct mgr_channel *mgr = arg;
	struct io_list batch;
	struct uraid_bdev_io *io;

	if (STAILQ_EMPTY(&mgr->deferred))
		return URAID_POLLER_IDLE;
	/* Take the whole queue first: callbacks may defer more I/O, which then waits for the next
	 * iteration instead of starving everything else. But not all of it: what a completion
	 * defers (over a ram member, a stripe operation's next member I/O; the user's next
	 * request) completes right after it, while its data is still in this core's caches,
	 * where a whole round of other I/O would run in between (raid5 4 KiB writes at QD128:
	 * +14%, docs/bench.md §2). Up to DEFER_DEPTH_MAX levels a poll: a chain (a rebuild's units,
	 * a user's requests one after the other) goes on at the next poll, and takes no more of
	 * this one than the I/O around it. What a module completes with
	 * uraid_bdev_io_complete_later (ram's bulk copies) is never in a chain. */
	STAILQ_INIT(&batch);
	STAILQ_CONCAT(&batch, &mgr->deferred);
	for (;;) {
		if ((io = STAILQ_FIRST(&mgr->follow)) != NULL) {
			STAILQ_REMOVE_HEAD(&mgr->follow, link);
			mgr->depth = io->defer_depth + 1;
		} else if ((io = STAILQ_FIRST(&batch)) != NULL) {
			STAILQ_REMOVE_HEAD(&batch, link);
			mgr->depth = 1;
		} else {
			break;
		}
		if (io->defer_fn != NULL) {
			void (*fn)(struct uraid_bdev_io *) = io->defer_fn;

			io->defer_fn = NULL;
			fn(io);
			continue;
		}
		uraid_bdev_io_complete(io, io->status);
	}
	mgr->depth = 0;
	return URAID_POLLER_BUSY;
}

static int
mgr_channel_create(void *io_device UNUSED, void *ctx)
{
	struct mgr_channel *mgr = ctx;

	STAILQ_INIT(&mgr->deferred);
	STAILQ_INIT(&mgr->follow);
	mgr->depth = 0;
	mgr->poller = uraid_poller_register(mgr_poll, mgr, 0);
	return mgr->poller ? 0 : -ENOMEM;
}

static void
mgr_channel_destroy(void *io_device UNUSED, void *ctx)
{
	struct mgr_channel *mgr = ctx;

	uraid_poller_unregister(&mgr->poller);
}

static void
mgr_register(void)
{
	uraid_io_device_register(&g_bdev_mgr, mgr_channel_create, mgr_channel_destroy,
				 sizeof(struct mgr_channel), "bdev_mgr");
}

void
uraid_bdev_io_complete_later(struct uraid_bdev_io *io, int status)
{
	io->status = status;
	STAILQ_INSERT_TAIL(&io->bch->mgr->deferred, io, link);
}

void
uraid_bdev_io_complete_deferred(struct uraid_bdev_io *io, int status)
{
	struct mgr_channel *mgr = io->bch->mgr;

	io->status = status;
	if (mgr->depth != 0 && mgr->depth <= DEFER_DEPTH_MAX) {
		io->defer_depth = mgr->depth;
		STAILQ_INSERT_TAIL(&mgr->follow, io, link);
		return;
	}
	uraid_bdev_io_complete_later(io, status);
}

void
uraid_bdev_io_defer(struct uraid_bdev_io *io, void (*fn)(struct uraid_bdev_io *io))
{
	io->defer_fn = fn;
	uraid_bdev_io_complete_deferred(io, 0);
}

/* --- bdev channels --- */

static int
bch_grow(struct bdev_channel *bch)
{
	void **chunks;
	uint8_t *mem;

	if (bch->num_ios >= IO_MAX)
		return -ENOMEM;
	chunks = realloc(bch->chunks, (bch->num_chunks + 1) * sizeof(*chunks));
	if (chunks == NULL)
		return -ENOMEM;
	bch->chunks = chunks;
	mem = aligned_alloc(CACHE_LINE_BYTES, bch->io_bytes * IO_CHUNK);
	if (mem == NULL)
		return -ENOMEM;
	memset(mem, 0, bch->io_bytes * IO_CHUNK);
	bch->chunks[bch->num_chunks++] = mem;
	for (unsigned i = 0; i < IO_CHUNK; i++) {
		struct uraid_bdev_io *io = (struct uraid_bdev_io *)(mem + i * bch->io_bytes);

		io->bch = bch;
		io->bdev = bch->bdev;
		STAILQ_INSERT_TAIL(&bch->free_ios, io, link);
	}
	bch->num_ios += IO_CHUNK;
	return 0;
}

static int
bch_create(void *io_device, void *ctx)
{
	struct uraid_bdev *bdev = io_device;
	struct bdev_channel *bch = ctx;
	int rc = -ENOMEM;

	bch->bdev = bdev;
	STAILQ_INIT(&bch->free_ios);
	STAILQ_INIT(&bch->resets);
	bch->io_bytes = align_up_u64(sizeof(struct uraid_bdev_io) + bdev->driver_ctx_size,
				     CACHE_LINE_BYTES);
	bch->mgr_ch = uraid_get_io_channel(&g_bdev_mgr);
	if (bch->mgr_ch == NULL)
		goto err_mgr;
	bch->mgr = uraid_io_channel_get_ctx(bch->mgr_ch);
	if (bdev->io_device != NULL) {
		bch->module_ch = uraid_get_io_channel(bdev->io_device);
		if (bch->module_ch == NULL) {
			rc = -ENODEV;
			goto err_module;
		}
		bch->module_ctx = uraid_io_channel_get_ctx(bch->module_ch);
	}
	rc = bch_grow(bch);
	if (rc != 0)
		goto err_pool;
	return 0;

err_pool:
	uraid_put_io_channel(bch->module_ch);
err_module:
	uraid_put_io_channel(bch->mgr_ch);
err_mgr:
	LOG_ERR("%s: cannot create an I/O channel: %s", bdev->name, strerror(-rc));
	return rc;
}

static void
stats_add(struct uraid_bdev_io_stats *sum, const struct uraid_bdev_io_stats *st)
{
	for (int t = 0; t < URAID_IO_NUM_TYPES; t++) {
		sum->ops[t] += st->ops[t];
		sum->blocks[t] += st->blocks[t];
		sum->latency_ticks[t] += st->latency_ticks[t];
	}
	sum->errors += st->errors;
}

static void
bch_destroy(void *io_device UNUSED, void *ctx)
{
	struct bdev_channel *bch = ctx;

	/* The counters outlive the channel: a bdev's totals include its channels gone. */
	pthread_mutex_lock(&g_stats_lock);
	stats_add(&bch->bdev->internal->retired, &bch->stats);
	pthread_mutex_unlock(&g_stats_lock);

	if (bch->inflight != 0)
		LOG_ERR("%s: channel destroyed with %lu I/O in flight", bch->bdev->name,
			(unsigned long)bch->inflight);
	uraid_put_io_channel(bch->module_ch);
	uraid_put_io_channel(bch->mgr_ch);
	for (unsigned i = 0; i < bch->num_chunks; i++)
		free(bch->chunks[i]);
	free(bch->chunks);
}

void
uraid_bdev_get_channel_stats(struct uraid_io_channel *ch, struct uraid_bdev_io_stats *st)
{
	struct bdev_channel *bch = uraid_io_channel_get_ctx(ch);

	*st = bch->stats;
}

uint64_t
uraid_bdev_tick_rate(void)
{
	return ticks_hz();
}

struct collect_ctx {
	char name[URAID_BDEV_NAME_MAX];
	struct uraid_bdev_desc *desc;
	struct uraid_bdev_io_stats sum;
	void (*cb)(void *arg, const struct uraid_bdev_io_stats *st);
	void *arg;
};

static void
collect_channel(struct uraid_channel_iter *iter)
{
	struct collect_ctx *cc = uraid_channel_iter_get_ctx(iter);
	struct bdev_channel *bch = uraid_io_channel_get_ctx(uraid_channel_iter_get_channel(iter));

	stats_add(&cc->sum, &bch->stats);
	cc->sum.queue_depth += bch->inflight;
	uraid_for_each_channel_continue(iter, 0);
}

static void
collect_done(struct uraid_channel_iter *iter, int status UNUSED)
{
	struct collect_ctx *cc = uraid_channel_iter_get_ctx(iter);

	pthread_mutex_lock(&g_stats_lock);
	stats_add(&cc->sum, &cc->desc->bdev->internal->retired);
	pthread_mutex_unlock(&g_stats_lock);
	cc->cb(cc->arg, &cc->sum);
	uraid_bdev_close(cc->desc);
	free(cc);
}

static void
collect_start(void *arg)
{
	struct collect_ctx *cc = arg;

	/* A read-only descriptor keeps the bdev (and its channels) while the walk runs. */
	if (uraid_bdev_open(cc->name, false, NULL, NULL, &cc->desc) != 0) {
		cc->cb(cc->arg, NULL);
		free(cc);
		return;
	}
	uraid_for_each_channel(cc->desc->bdev, collect_channel, cc, collect_done);
}

int
uraid_bdev_collect_stats(const char *name,
			 void (*cb)(void *arg, const struct uraid_bdev_io_stats *st), void *arg)
{
	struct collect_ctx *cc = calloc(1, sizeof(*cc));

	if (cc == NULL)
		return -ENOMEM;
	snprintf(cc->name, sizeof(cc->name), "%s", name);
	cc->cb = cb;
	cc->arg = arg;
	return uraid_reactor_send(uraid_reactor_get(0), collect_start, cc);
}

/* --- registry --- */

int
uraid_bdev_register(struct uraid_bdev *bdev)
{
	struct bdev_internal *in, *it;

	if (bdev->name[0] == '\0' || bdev->fn == NULL || bdev->fn->submit_request == NULL ||
	    (bdev->block_size != 512 && bdev->block_size != 4096) || bdev->num_blocks == 0)
		return -EINVAL;
	pthread_once(&g_mgr_once, mgr_register);
	in = calloc(1, sizeof(*in));
	if (in == NULL)
		return -ENOMEM;
	in->bdev = bdev;
	TAILQ_INIT(&in->descs);
	{
		static const uint8_t zero[16];

		if (memcmp(bdev->uuid, zero, 16) == 0)
			uraid_uuid_generate(bdev->uuid);
	}
	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(it, &g_bdevs, link) {
		if (strcmp(it->bdev->name, bdev->name) == 0) {
			pthread_mutex_unlock(&g_lock);
			free(in);
			return -EEXIST;
		}
	}
	bdev->internal = in;
	TAILQ_INSERT_TAIL(&g_bdevs, in, link);
	pthread_mutex_unlock(&g_lock);
	uraid_io_device_register(bdev, bch_create, bch_destroy, sizeof(struct bdev_channel),
				 bdev->name);
	return 0;
}

static struct uraid_bdev *
bdev_find_locked(const char *name)
{
	struct bdev_internal *in;

	TAILQ_FOREACH(in, &g_bdevs, link) {
		if (strcmp(in->bdev->name, name) == 0)
			return in->bdev;
	}
	return NULL;
}

struct uraid_bdev *
uraid_bdev_get_by_name(const char *name)
{
	struct uraid_bdev *bdev;

	pthread_mutex_lock(&g_lock);
	bdev = bdev_find_locked(name);
	pthread_mutex_unlock(&g_lock);
	return bdev;
}

int
uraid_bdev_foreach(int (*fn)(struct uraid_bdev *bdev, void *ctx), void *ctx)
{
	struct uraid_bdev *list[1024];
	struct bdev_internal *in;
	unsigned n = 0;
	int rc = 0;

	/* Snapshot under the lock, call without it: fn may open or create bdevs. */
	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(in, &g_bdevs, link) {
		if (n < ARRAY_SIZE(list))
			list[n++] = in->bdev;
	}
	pthread_mutex_unlock(&g_lock);
	for (unsigned i = 0; i < n && rc == 0; i++)
		rc = fn(list[i], ctx);
	return rc;
}

bool
uraid_bdev_io_type_supported(const struct uraid_bdev *bdev, enum uraid_io_type type)
{
	switch (type) {
	case URAID_IO_READ:
	case URAID_IO_WRITE:
	case URAID_IO_FLUSH:
	case URAID_IO_RESET:
		return true;
	case URAID_IO_UNMAP:
	case URAID_IO_WRITE_ZEROES:
		return bdev->fn->io_type_supported != NULL &&
		       bdev->fn->io_type_supported((struct uraid_bdev *)bdev, type);
	case URAID_IO_ZONE_APPEND:
	case URAID_IO_ZONE_MANAGEMENT:
	case URAID_IO_GET_ZONE_INFO:
		return bdev->zone_size != 0;
	default:
		return false;
	}
}

const char *
uraid_bdev_claimed_by(const struct uraid_bdev *bdev)
{
	const char *owner;

	pthread_mutex_lock(&g_lock);
	owner = bdev->internal->claim_desc ? bdev->internal->claim_owner : NULL;
	pthread_mutex_unlock(&g_lock);
	return owner;
}

/* --- descriptors --- */

int
uraid_bdev_open(const char *name, bool write, uraid_bdev_event_cb event_cb, void *event_ctx,
		struct uraid_bdev_desc **out)
{
	struct uraid_bdev_desc *desc;
	struct uraid_bdev *bdev;
	int rc = 0;

	desc = calloc(1, sizeof(*desc));
	if (desc == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&g_lock);
	bdev = bdev_find_locked(name);
	if (bdev == NULL || bdev->internal->removing) {
		rc = -ENODEV;
		goto out;
	}
	if (write && bdev->internal->claim_desc != NULL) {
		rc = -EPERM;
		goto out;
	}
	desc->bdev = bdev;
	desc->write = write;
	desc->event_cb = event_cb;
	desc->event_ctx = event_ctx;
	desc->reactor = uraid_reactor_self();
	TAILQ_INSERT_TAIL(&bdev->internal->descs, desc, link);
out:
	pthread_mutex_unlock(&g_lock);
	if (rc != 0) {
		free(desc);
		return rc;
	}
	*out = desc;
	return 0;
}

int
uraid_bdev_claim(struct uraid_bdev_desc *desc, const char *owner)
{
	struct bdev_internal *in = desc->bdev->internal;
	struct uraid_bdev_desc *d;
	int rc = 0;

	pthread_mutex_lock(&g_lock);
	if (in->claim_desc != NULL && in->claim_desc != desc) {
		rc = -EPERM;
		goto out;
	}
	TAILQ_FOREACH(d, &in->descs, link) {
		if (d != desc && d->write) {
			rc = -EPERM;
			goto out;
		}
	}
	in->claim_desc = desc;
	desc->write = true;
	snprintf(in->claim_owner, sizeof(in->claim_owner), "%s", owner);
out:
	pthread_mutex_unlock(&g_lock);
	return rc;
}

static void
bdev_destruct_finish(struct bdev_internal *in)
{
	uraid_bdev_unregister_cb cb = in->unregister_cb;
	void *cb_arg = in->unregister_cb_arg;

	free(in);
	if (cb)
		cb(cb_arg, 0);
}

void
uraid_bdev_destruct_done(struct uraid_bdev *bdev)
{
	bdev_destruct_finish(bdev->internal);
}

static void
bdev_unregister_done(void *io_device)
{
	struct uraid_bdev *bdev = io_device;
	struct bdev_internal *in = bdev->internal;

	/* The module may free bdev in destruct: nothing below touches it. */
	if (bdev->fn->destruct == NULL || bdev->fn->destruct(bdev) == 0)
		bdev_destruct_finish(in);
}

void
uraid_bdev_close(struct uraid_bdev_desc *desc)
{
	struct uraid_bdev *bdev = desc->bdev;
	struct bdev_internal *in = bdev->internal;
	bool last;

	pthread_mutex_lock(&g_lock);
	TAILQ_REMOVE(&in->descs, desc, link);
	if (in->claim_desc == desc)
		in->claim_desc = NULL;
	last = in->removing && TAILQ_EMPTY(&in->descs);
	pthread_mutex_unlock(&g_lock);
	free(desc);
	if (last)
		uraid_io_device_unregister(bdev, bdev_unregister_done);
}

struct uraid_bdev *
uraid_bdev_desc_get_bdev(struct uraid_bdev_desc *desc)
{
	return desc->bdev;
}

struct uraid_io_channel *
uraid_bdev_get_io_channel(struct uraid_bdev_desc *desc)
{
	return uraid_get_io_channel(desc->bdev);
}

struct remove_event {
	struct uraid_bdev_desc *desc;
	struct uraid_bdev *bdev;
};

static void
deliver_remove(void *arg)
{
	struct remove_event *ev = arg;

	if (ev->desc->event_cb)
		ev->desc->event_cb(URAID_BDEV_EVENT_REMOVE, ev->bdev, ev->desc->event_ctx);
	free(ev);
}

void
uraid_bdev_unregister(struct uraid_bdev *bdev, uraid_bdev_unregister_cb cb, void *cb_arg)
{
	struct bdev_internal *in = bdev->internal;
	struct remove_event **events = NULL;
	struct uraid_bdev_desc *d;
	unsigned n = 0, count = 0;

	pthread_mutex_lock(&g_lock);
	if (in->removing) {
		pthread_mutex_unlock(&g_lock);
		if (cb)
			cb(cb_arg, -EBUSY);
		return;
	}
	in->removing = true;
	in->unregister_cb = cb;
	in->unregister_cb_arg = cb_arg;
	TAILQ_REMOVE(&g_bdevs, in, link);
	TAILQ_FOREACH(d, &in->descs, link)
		count++;
	if (count > 0)
		events = calloc(count, sizeof(*events));
	TAILQ_FOREACH(d, &in->descs, link) {
		struct remove_event *ev = events ? malloc(sizeof(*ev)) : NULL;

		if (ev == NULL)
			continue;
		ev->desc = d;
		ev->bdev = bdev;
		events[n++] = ev;
	}
	pthread_mutex_unlock(&g_lock);

	if (count == 0) {
		uraid_io_device_unregister(bdev, bdev_unregister_done);
		return;
	}
	/* Called without the lock: holders usually close their descriptor from the callback. */
	for (unsigned i = 0; i < n; i++) {
		struct uraid_reactor *r = events[i]->desc->reactor;

		if (r != NULL)
			uraid_reactor_send(r, deliver_remove, events[i]);
		else
			deliver_remove(events[i]);
	}
	free(events);
}

/* --- I/O submission --- */

/* What the zone operations carry besides a plain request's fields. */
struct zone_args {
	uint64_t *append_lba;
	struct uraid_zone_info *info;
	enum uraid_zone_action action;
};

/* A zone request names a zone by its first block; an info request's zones must all exist. */
static bool
zone_request_ok(const struct uraid_bdev *bdev, enum uraid_io_type type, uint64_t zone_id,
		uint64_t num_blocks, const struct zone_args *z)
{
	if (bdev->zone_size == 0 || zone_id % bdev->zone_size != 0 || zone_id >= bdev->num_blocks ||
	    z == NULL)
		return false;
	switch (type) {
	case URAID_IO_ZONE_APPEND:
		return z->append_lba != NULL && num_blocks > 0 && num_blocks <= bdev->zone_capacity;
	case URAID_IO_GET_ZONE_INFO:
		return z->info != NULL && num_blocks > 0 &&
		       num_blocks <= (bdev->num_blocks - zone_id) / bdev->zone_size;
	case URAID_IO_ZONE_MANAGEMENT:
		return z->action <= URAID_ZONE_RESET;
	default:
		return false;
	}
}

static int
bdev_submit_z(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, enum uraid_io_type type,
	      const struct iovec *iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks,
	      uint32_t flags, const struct zone_args *z, uraid_bdev_io_cb cb, void *cb_arg)
{
	struct uraid_bdev *bdev = desc->bdev;
	struct bdev_channel *bch = uraid_io_channel_get_ctx(ch);
	struct uraid_bdev_io *io;
	int rc;

	if (unlikely(type != URAID_IO_READ && type != URAID_IO_RESET &&
		     type != URAID_IO_GET_ZONE_INFO && !desc->write))
		return -EINVAL;
	if (unlikely(type >= URAID_IO_UNMAP && !uraid_bdev_io_type_supported(bdev, type)))
		return -ENOTSUP;
	if (type == URAID_IO_READ || type == URAID_IO_WRITE || type == URAID_IO_UNMAP ||
	    type == URAID_IO_WRITE_ZEROES) {
		if (unlikely(num_blocks == 0 || num_blocks > bdev->num_blocks ||
			     offset_blocks > bdev->num_blocks - num_blocks))
			return -EINVAL;
	}
	if (type >= URAID_IO_ZONE_APPEND &&
	    unlikely(!zone_request_ok(bdev, type, offset_blocks, num_blocks, z)))
		return -EINVAL;
	if (type == URAID_IO_READ || type == URAID_IO_WRITE || type == URAID_IO_ZONE_APPEND) {
		if (unlikely(iovcnt <= 0 || iov == NULL ||
			     (iovcnt == 1 ? iov[0].iov_len : uraid_iov_length(iov, iovcnt)) !=
				     num_blocks * bdev->block_size))
			return -EINVAL;
	}
	if (unlikely(flags & ~URAID_IO_FUA))
		return -EINVAL;

	io = STAILQ_FIRST(&bch->free_ios);
	if (unlikely(io == NULL)) {
		rc = bch_grow(bch);
		if (rc != 0)
			return rc;
		io = STAILQ_FIRST(&bch->free_ios);
	}
	STAILQ_REMOVE_HEAD(&bch->free_ios, link);
	io->type = type;
	io->flags = flags;
	io->offset_blocks = offset_blocks;
	io->num_blocks = num_blocks;
	if (iovcnt == 1) {
		/* A single iovec is copied, so callers may pass one that lives on their stack. */
		io->iov_one = iov[0];
		io->iov = &io->iov_one;
	} else {
		io->iov = (struct iovec *)iov;
	}
	io->iovcnt = iovcnt;
	io->status = 0;
	io->defer_fn = NULL;
	io->append_lba = z ? z->append_lba : NULL;
	io->zone_info = z ? z->info : NULL;
	io->zone_action = z ? z->action : URAID_ZONE_CLOSE;
	io->cb = cb;
	io->cb_arg = cb_arg;
	/* While anything is in flight the channel holds itself, so a user who puts it early
	 * cannot free the requests under their own completions. */
	if (bch->inflight++ == 0)
		uraid_io_channel_hold(ch);
	io->submit_tick = uraid_reactor_ticks(); /* (statistics: a reactor round is fine) */

	if (type == URAID_IO_RESET) {
		/* Handled here for every module: done once this channel's earlier I/O is. */
		if (bch->inflight == bch->resets_waiting + 1) {
			uraid_bdev_io_complete_deferred(io, 0);
		} else {
			bch->resets_waiting++;
			STAILQ_INSERT_TAIL(&bch->resets, io, link);
		}
		return 0;
	}
	rc = bdev->fn->submit_request(bch->module_ctx, io);
	if (unlikely(rc != 0)) {
		STAILQ_INSERT_HEAD(&bch->free_ios, io, link);
		if (--bch->inflight == 0)
			uraid_put_io_channel(ch);
	}
	return rc;
}

static int
bdev_submit(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, enum uraid_io_type type,
	    const struct iovec *iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks,
	    uint32_t flags, uraid_bdev_io_cb cb, void *cb_arg)
{
	return bdev_submit_z(desc, ch, type, iov, iovcnt, offset_blocks, num_blocks, flags, NULL,
			     cb, cb_arg);
}

void
uraid_bdev_io_complete(struct uraid_bdev_io *io, int status)
{
	struct bdev_channel *bch = io->bch;
	uraid_bdev_io_cb cb = io->cb;
	void *cb_arg = io->cb_arg;

	bch->stats.ops[io->type]++;
	bch->stats.blocks[io->type] += io->num_blocks;
	bch->stats.latency_ticks[io->type] += uraid_reactor_ticks() - io->submit_tick;
	if (status != 0)
		bch->stats.errors++;
	bch->inflight--;
	/* Back to the pool before the callback, so the callback's next submit reuses this warm
	 * request. */
	STAILQ_INSERT_HEAD(&bch->free_ios, io, link);
	if (unlikely(bch->resets_waiting != 0) && bch->inflight == bch->resets_waiting) {
		struct uraid_bdev_io *r;

		while ((r = STAILQ_FIRST(&bch->resets)) != NULL) {
			STAILQ_REMOVE_HEAD(&bch->resets, link);
			uraid_bdev_io_complete_deferred(r, 0);
		}
		bch->resets_waiting = 0;
	}
	/* Drop the in-flight hold now: a destruction it allows is deferred past the callback,
	 * and a submit from the callback takes a new one. */
	if (bch->inflight == 0)
		uraid_put_io_channel(uraid_io_channel_from_ctx(bch));
	cb(cb_arg, status);
}

int
uraid_bdev_readv(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, const struct iovec *iov,
		 int iovcnt, uint64_t offset_blocks, uint64_t num_blocks, uraid_bdev_io_cb cb,
		 void *cb_arg)
{
	return bdev_submit(desc, ch, URAID_IO_READ, iov, iovcnt, offset_blocks, num_blocks, 0, cb,
			   cb_arg);
}

int
uraid_bdev_writev(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
		  const struct iovec *iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks,
		  uint32_t flags, uraid_bdev_io_cb cb, void *cb_arg)
{
	return bdev_submit(desc, ch, URAID_IO_WRITE, iov, iovcnt, offset_blocks, num_blocks, flags,
			   cb, cb_arg);
}

/* The single-buffer forms keep their iovec in the request itself. */
static int
bdev_submit_buf(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, enum uraid_io_type type,
		void *buf, uint64_t offset_blocks, uint64_t num_blocks, uint32_t flags,
		uraid_bdev_io_cb cb, void *cb_arg)
{
	struct iovec iov;

	if (num_blocks > desc->bdev->num_blocks)
		return -EINVAL;
	iov.iov_base = buf;
	iov.iov_len = num_blocks * desc->bdev->block_size;
	return bdev_submit(desc, ch, type, &iov, 1, offset_blocks, num_blocks, flags, cb, cb_arg);
}

int
uraid_bdev_read(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, void *buf,
		uint64_t offset_blocks, uint64_t num_blocks, uraid_bdev_io_cb cb, void *cb_arg)
{
	return bdev_submit_buf(desc, ch, URAID_IO_READ, buf, offset_blocks, num_blocks, 0, cb,
			       cb_arg);
}

int
uraid_bdev_write(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, void *buf,
		 uint64_t offset_blocks, uint64_t num_blocks, uint32_t flags, uraid_bdev_io_cb cb,
		 void *cb_arg)
{
	return bdev_submit_buf(desc, ch, URAID_IO_WRITE, buf, offset_blocks, num_blocks, flags, cb,
			       cb_arg);
}

int
uraid_bdev_flush(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, uraid_bdev_io_cb cb,
		 void *cb_arg)
{
	return bdev_submit(desc, ch, URAID_IO_FLUSH, NULL, 0, 0, 0, 0, cb, cb_arg);
}

int
uraid_bdev_unmap(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, uint64_t offset_blocks,
		 uint64_t num_blocks, uraid_bdev_io_cb cb, void *cb_arg)
{
	return bdev_submit(desc, ch, URAID_IO_UNMAP, NULL, 0, offset_blocks, num_blocks, 0, cb,
			   cb_arg);
}

int
uraid_bdev_write_zeroes(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
			uint64_t offset_blocks, uint64_t num_blocks, uraid_bdev_io_cb cb,
			void *cb_arg)
{
	return bdev_submit(desc, ch, URAID_IO_WRITE_ZEROES, NULL, 0, offset_blocks, num_blocks, 0,
			   cb, cb_arg);
}

int
uraid_bdev_reset(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, uraid_bdev_io_cb cb,
		 void *cb_arg)
{
	return bdev_submit(desc, ch, URAID_IO_RESET, NULL, 0, 0, 0, 0, cb, cb_arg);
}

/* --- synchronous I/O for control paths --- */

struct sync_req {
	struct uraid_bdev_desc *desc;
	enum uraid_io_type type;
	void *buf;
	uint64_t offset_blocks, num_blocks;
	struct uraid_io_channel *ch;
	int status;
	_Atomic bool done;
};

static void
sync_done(void *arg, int status)
{
	struct sync_req *r = arg;

	r->status = status;
	uraid_put_io_channel(r->ch);
	atomic_store_explicit(&r->done, true, memory_order_release);
}

static void
sync_start(void *arg)
{
	struct sync_req *r = arg;
	int rc;

	r->ch = uraid_bdev_get_io_channel(r->desc);
	if (r->ch == NULL) {
		r->status = -ENOMEM;
		atomic_store_explicit(&r->done, true, memory_order_release);
		return;
	}
	switch (r->type) {
	case URAID_IO_READ:
		rc = uraid_bdev_read(r->desc, r->ch, r->buf, r->offset_blocks, r->num_blocks,
				     sync_done, r);
		break;
	case URAID_IO_WRITE:
		rc = uraid_bdev_write(r->desc, r->ch, r->buf, r->offset_blocks, r->num_blocks,
				      URAID_IO_FUA, sync_done, r);
		break;
	case URAID_IO_FLUSH:
		rc = uraid_bdev_flush(r->desc, r->ch, sync_done, r);
		break;
	case URAID_IO_UNMAP:
		rc = uraid_bdev_unmap(r->desc, r->ch, r->offset_blocks, r->num_blocks, sync_done,
				      r);
		break;
	case URAID_IO_WRITE_ZEROES:
		rc = uraid_bdev_write_zeroes(r->desc, r->ch, r->offset_blocks, r->num_blocks,
					     sync_done, r);
		break;
	case URAID_IO_ZONE_MANAGEMENT:
		rc = uraid_bdev_zone_management(r->desc, r->ch, r->offset_blocks,
						(enum uraid_zone_action)r->num_blocks, sync_done,
						r);
		break;
	case URAID_IO_GET_ZONE_INFO:
		rc = uraid_bdev_get_zone_info(r->desc, r->ch, r->offset_blocks,
					      (uint32_t)r->num_blocks, r->buf, sync_done, r);
		break;
	default:
		rc = -EINVAL;
		break;
	}
	if (rc != 0)
		sync_done(r, rc);
}

int
uraid_bdev_io_sync(struct uraid_bdev_desc *desc, enum uraid_io_type type, void *buf,
		   uint64_t offset_blocks, uint64_t num_blocks)
{
	struct sync_req r = {desc, type, buf, offset_blocks, num_blocks, NULL, 0, false};

	if (uraid_reactor_self() != NULL || uraid_reactor_count() == 0)
		return -EINVAL;
	uraid_reactor_send(uraid_reactor_get(0), sync_start, &r);
	uraid_runtime_wait(&r.done);
	return r.status;
}

/* --- zoned bdevs --- */

int
uraid_bdev_zone_appendv(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
			const struct iovec *iov, int iovcnt, uint64_t zone_id, uint64_t num_blocks,
			uint32_t flags, uint64_t *lba, uraid_bdev_io_cb cb, void *cb_arg)
{
	struct zone_args z = {lba, NULL, URAID_ZONE_CLOSE};

	return bdev_submit_z(desc, ch, URAID_IO_ZONE_APPEND, iov, iovcnt, zone_id, num_blocks,
			     flags, &z, cb, cb_arg);
}

int
uraid_bdev_zone_management(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
			   uint64_t zone_id, enum uraid_zone_action action, uraid_bdev_io_cb cb,
			   void *cb_arg)
{
	struct zone_args z = {NULL, NULL, action};

	return bdev_submit_z(desc, ch, URAID_IO_ZONE_MANAGEMENT, NULL, 0, zone_id, 0, 0, &z, cb,
			     cb_arg);
}

int
uraid_bdev_get_zone_info(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
			 uint64_t zone_id, uint32_t num_zones, struct uraid_zone_info *info,
			 uraid_bdev_io_cb cb, void *cb_arg)
{
	struct zone_args z = {NULL, info, URAID_ZONE_CLOSE};

	return bdev_submit_z(desc, ch, URAID_IO_GET_ZONE_INFO, NULL, 0, zone_id, num_zones, 0, &z,
			     cb, cb_arg);
}
