/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uraid/bdev.h and uraid/bdev_module.h over SPDK's bdev layer.
 *
 * Members are SPDK bdevs: a descriptor is an spdk_bdev_desc, a channel an SPDK bdev channel,
 * I/O goes through spdk_bdev_readv_blocks and friends. core sees an SPDK bdev that is not one
 * of our arrays through a proxy struct uraid_bdev (one per name, kept for the module's life)
 * whose fields are refreshed whenever the bdev is looked up by name.
 *
 * Arrays are SPDK bdevs of the module "uraid": uraid_bdev_register wraps core's struct
 * uraid_bdev in an spdk_bdev whose fn_table hands each spdk_bdev_io to core as the
 * struct uraid_bdev_io in its driver context.
 *
 * SPDK's bdev calls that take its locks run on SPDK threads only; from the control thread they
 * are run on the app thread (port_run_on).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <spdk/bdev.h>
#include <spdk/bdev_module.h>
#include <spdk/env.h>
#include <spdk/thread.h>

#include "spdk_priv.h"

/* Room for core's per-I/O context (struct raid_io); checked when an array registers. */
#define PORT_DRIVER_CTX_MAX 1024

struct proxy {
	struct uraid_bdev b;
	TAILQ_ENTRY(proxy) link;
};

struct array_wrap {
	struct spdk_bdev sb;
	struct uraid_bdev *ub;
	uraid_bdev_unregister_cb unregister_cb;
	void *unregister_cb_arg;
};

struct uraid_bdev_desc {
	struct spdk_bdev_desc *sd;
	struct uraid_bdev *bdev;
	struct spdk_thread *thread; /* opened there: closed there */
	bool claimed;
	uraid_bdev_event_cb event_cb;
	void *event_ctx;
};

static pthread_mutex_t g_proxy_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, proxy) g_proxies = TAILQ_HEAD_INITIALIZER(g_proxies);

size_t
port_bdev_io_ctx_size(void)
{
	return sizeof(struct uraid_bdev_io) + PORT_DRIVER_CTX_MAX + 16;
}

static bool
on_spdk_thread(void)
{
	return spdk_get_thread() != NULL;
}

static struct spdk_thread *
app_thread(void)
{
	return spdk_thread_get_app_thread();
}

/* --- bdevs: ours (arrays) and proxies of everyone else's --- */

static struct spdk_bdev *
sbdev_of(const struct uraid_bdev *b)
{
	if (b->internal != NULL)
		return &((struct array_wrap *)(void *)b->internal)->sb;
	return b->ctx;
}

struct uraid_bdev *
port_array_of(struct spdk_bdev *sb)
{
	return sb->module == &g_uraid_module ? ((struct array_wrap *)sb->ctxt)->ub : NULL;
}

/* On an SPDK thread: the uraid bdev for sb, a proxy unless it is one of our arrays. */
static struct uraid_bdev *
bdev_of(struct spdk_bdev *sb)
{
	struct uraid_bdev *a = port_array_of(sb);
	const char *name = spdk_bdev_get_name(sb);
	struct proxy *p;

	if (a != NULL)
		return a;
	pthread_mutex_lock(&g_proxy_lock);
	TAILQ_FOREACH(p, &g_proxies, link) {
		if (strcmp(p->b.name, name) == 0)
			break;
	}
	if (p == NULL) {
		p = calloc(1, sizeof(*p));
		if (p == NULL) {
			pthread_mutex_unlock(&g_proxy_lock);
			return NULL;
		}
		snprintf(p->b.name, sizeof(p->b.name), "%s", name);
		TAILQ_INSERT_TAIL(&g_proxies, p, link);
	}
	p->b.ctx = sb;
	p->b.product = spdk_bdev_get_product_name(sb);
	memcpy(p->b.uuid, spdk_bdev_get_uuid(sb), 16);
	p->b.block_size = spdk_bdev_get_block_size(sb);
	p->b.num_blocks = spdk_bdev_get_num_blocks(sb);
	p->b.write_cache = spdk_bdev_has_write_cache(sb);
	pthread_mutex_unlock(&g_proxy_lock);
	return &p->b;
}

struct lookup {
	const char *name;
	struct uraid_bdev *b;
};

static void
lookup_msg(void *arg)
{
	struct lookup *l = arg;
	struct spdk_bdev *sb = spdk_bdev_get_by_name(l->name);

	l->b = sb ? bdev_of(sb) : NULL;
}

struct uraid_bdev *
uraid_bdev_get_by_name(const char *name)
{
	struct lookup l = {name, NULL};

	if (on_spdk_thread())
		lookup_msg(&l);
	else
		port_run_on(app_thread(), lookup_msg, &l);
	return l.b;
}

struct names {
	char (*v)[URAID_BDEV_NAME_MAX];
	unsigned n, cap;
};

static void
names_msg(void *arg)
{
	struct names *ns = arg;

	for (struct spdk_bdev *sb = spdk_bdev_first(); sb != NULL; sb = spdk_bdev_next(sb)) {
		if (ns->n == ns->cap) {
			unsigned cap = ns->cap ? 2 * ns->cap : 64;
			void *v = realloc(ns->v, cap * sizeof(*ns->v));

			if (v == NULL)
				return;
			ns->v = v;
			ns->cap = cap;
		}
		snprintf(ns->v[ns->n++], URAID_BDEV_NAME_MAX, "%s", spdk_bdev_get_name(sb));
	}
}

int
uraid_bdev_foreach(int (*fn)(struct uraid_bdev *bdev, void *ctx), void *ctx)
{
	struct names ns = {NULL, 0, 0};
	int rc = 0;

	/* By name, so that fn may open, claim or register bdevs as it goes. */
	if (on_spdk_thread())
		names_msg(&ns);
	else
		port_run_on(app_thread(), names_msg, &ns);
	for (unsigned i = 0; i < ns.n && rc == 0; i++) {
		struct uraid_bdev *b = uraid_bdev_get_by_name(ns.v[i]);

		if (b != NULL)
			rc = fn(b, ctx);
	}
	free(ns.v);
	return rc;
}

const char *
uraid_bdev_get_path(const struct uraid_bdev *bdev UNUSED)
{
	return NULL;
}

static enum spdk_bdev_io_type
io_type_to_spdk(enum uraid_io_type type)
{
	switch (type) {
	case URAID_IO_READ:
		return SPDK_BDEV_IO_TYPE_READ;
	case URAID_IO_WRITE:
		return SPDK_BDEV_IO_TYPE_WRITE;
	case URAID_IO_FLUSH:
		return SPDK_BDEV_IO_TYPE_FLUSH;
	case URAID_IO_UNMAP:
		return SPDK_BDEV_IO_TYPE_UNMAP;
	case URAID_IO_WRITE_ZEROES:
		return SPDK_BDEV_IO_TYPE_WRITE_ZEROES;
	case URAID_IO_ZONE_APPEND:
		return SPDK_BDEV_IO_TYPE_ZONE_APPEND;
	case URAID_IO_ZONE_MANAGEMENT:
		return SPDK_BDEV_IO_TYPE_ZONE_MANAGEMENT;
	case URAID_IO_GET_ZONE_INFO:
		return SPDK_BDEV_IO_TYPE_GET_ZONE_INFO;
	case URAID_IO_RESET:
	case URAID_IO_NUM_TYPES:
		break;
	}
	return SPDK_BDEV_IO_TYPE_RESET;
}

bool
uraid_bdev_io_type_supported(const struct uraid_bdev *bdev, enum uraid_io_type type)
{
	return spdk_bdev_io_type_supported(sbdev_of(bdev), io_type_to_spdk(type));
}

const char *
uraid_bdev_claimed_by(const struct uraid_bdev *bdev)
{
	const struct spdk_bdev *sb = sbdev_of(bdev);

	switch (sb->internal.claim_type) {
	case SPDK_BDEV_CLAIM_NONE:
		return NULL;
	case SPDK_BDEV_CLAIM_EXCL_WRITE:
		if (sb->internal.claim.v1.module != NULL)
			return sb->internal.claim.v1.module->name;
		break;
	default:
		break;
	}
	return "another SPDK module";
}

/* --- descriptors --- */

static void
desc_event(enum spdk_bdev_event_type type, struct spdk_bdev *sb UNUSED, void *ctx)
{
	struct uraid_bdev_desc *d = ctx;

	if (type == SPDK_BDEV_EVENT_REMOVE && d->event_cb != NULL)
		d->event_cb(URAID_BDEV_EVENT_REMOVE, d->bdev, d->event_ctx);
}

struct open_args {
	const char *name;
	bool write;
	struct uraid_bdev_desc *d;
	int rc;
};

static void
open_msg(void *arg)
{
	struct open_args *oa = arg;
	struct uraid_bdev_desc *d = oa->d;

	oa->rc = spdk_bdev_open_ext(oa->name, oa->write, desc_event, d, &d->sd);
	if (oa->rc != 0)
		return;
	d->thread = spdk_get_thread();
	d->bdev = bdev_of(spdk_bdev_desc_get_bdev(d->sd));
	if (d->bdev == NULL) {
		spdk_bdev_close(d->sd);
		oa->rc = -ENOMEM;
	}
}

int
uraid_bdev_open(const char *name, bool write, uraid_bdev_event_cb event_cb, void *event_ctx,
		struct uraid_bdev_desc **desc)
{
	struct uraid_bdev_desc *d = calloc(1, sizeof(*d));
	struct open_args oa = {name, write, d, 0};

	if (d == NULL)
		return -ENOMEM;
	d->event_cb = event_cb;
	d->event_ctx = event_ctx;
	if (on_spdk_thread())
		open_msg(&oa);
	else
		port_run_on(app_thread(), open_msg, &oa);
	if (oa.rc != 0) {
		free(d);
		return oa.rc;
	}
	*desc = d;
	return 0;
}

static void
claim_msg(void *arg)
{
	struct open_args *oa = arg;
	struct uraid_bdev_desc *d = oa->d;

	oa->rc =
		spdk_bdev_module_claim_bdev(spdk_bdev_desc_get_bdev(d->sd), d->sd, &g_uraid_module);
	if (oa->rc == 0)
		d->claimed = true;
	else
		oa->rc = -EPERM;
}

int
uraid_bdev_claim(struct uraid_bdev_desc *desc, const char *owner UNUSED)
{
	struct open_args oa = {NULL, true, desc, 0};

	if (on_spdk_thread())
		claim_msg(&oa);
	else
		port_run_on(app_thread(), claim_msg, &oa);
	return oa.rc;
}

static void
close_msg(void *arg)
{
	struct uraid_bdev_desc *d = arg;

	if (d->claimed)
		spdk_bdev_module_release_bdev(spdk_bdev_desc_get_bdev(d->sd));
	spdk_bdev_close(d->sd);
	free(d);
}

void
uraid_bdev_close(struct uraid_bdev_desc *desc)
{
	if (spdk_get_thread() == desc->thread)
		close_msg(desc);
	else if (!on_spdk_thread())
		port_run_on(desc->thread, close_msg, desc);
	else if (spdk_thread_send_msg(desc->thread, close_msg, desc) != 0)
		LOG_ERR("%s: could not close a descriptor (no message memory)", desc->bdev->name);
}

struct uraid_bdev *
uraid_bdev_desc_get_bdev(struct uraid_bdev_desc *desc)
{
	return desc->bdev;
}

struct uraid_io_channel *
uraid_bdev_get_io_channel(struct uraid_bdev_desc *desc)
{
	return (struct uraid_io_channel *)spdk_bdev_get_io_channel(desc->sd);
}

/* --- member I/O --- */

/* What a member I/O needs back at completion; a free list per OS thread (SPDK threads on one
 * OS thread run one at a time, so nothing is shared). */
struct io_ctx {
	uraid_bdev_io_cb cb;
	void *cb_arg;
	struct uraid_bdev_desc *desc;
	struct spdk_io_channel *ch;
	uint64_t offset_blocks, num_blocks;
	struct io_ctx *next;
};

static PORT_TLS struct io_ctx *tl_free_ctx;

static struct io_ctx *
ctx_get(uraid_bdev_io_cb cb, void *cb_arg)
{
	struct io_ctx *c = tl_free_ctx;

	if (c != NULL)
		tl_free_ctx = c->next;
	else if ((c = malloc(sizeof(*c))) == NULL)
		return NULL;
	c->cb = cb;
	c->cb_arg = cb_arg;
	return c;
}

static void
ctx_put(struct io_ctx *c)
{
	c->next = tl_free_ctx;
	tl_free_ctx = c;
}

static void
io_done(struct spdk_bdev_io *bio, bool success, void *arg)
{
	struct io_ctx *c = arg;
	uraid_bdev_io_cb cb = c->cb;
	void *cb_arg = c->cb_arg;

	spdk_bdev_free_io(bio);
	ctx_put(c);
	cb(cb_arg, success ? 0 : -EIO);
}

static void
fua_flush(void *arg)
{
	struct io_ctx *c = arg;
	uraid_bdev_io_cb cb = c->cb;
	void *cb_arg = c->cb_arg;
	int rc;

	rc = spdk_bdev_flush_blocks(c->desc->sd, c->ch, c->offset_blocks, c->num_blocks, io_done,
				    c);
	/* Out of bdev_ios: try again on the thread's next round. */
	if (rc == 0 ||
	    (rc == -ENOMEM && spdk_thread_send_msg(spdk_get_thread(), fua_flush, c) == 0))
		return;
	ctx_put(c);
	cb(cb_arg, rc);
}

static void
fua_write_done(struct spdk_bdev_io *bio, bool success, void *arg)
{
	struct io_ctx *c = arg;
	uraid_bdev_io_cb cb = c->cb;
	void *cb_arg = c->cb_arg;

	spdk_bdev_free_io(bio);
	/* A write with FUA is durable when it completes: flush what it wrote first. */
	if (success) {
		fua_flush(c);
		return;
	}
	ctx_put(c);
	cb(cb_arg, -EIO);
}

static int
submit_done(struct io_ctx *c, int rc)
{
	if (rc != 0)
		ctx_put(c);
	return rc;
}

int
uraid_bdev_readv(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, const struct iovec *iov,
		 int iovcnt, uint64_t offset_blocks, uint64_t num_blocks, uraid_bdev_io_cb cb,
		 void *cb_arg)
{
	struct io_ctx *c = ctx_get(cb, cb_arg);

	if (c == NULL)
		return -ENOMEM;
	return submit_done(c, spdk_bdev_readv_blocks(desc->sd, (struct spdk_io_channel *)ch,
						     (struct iovec *)iov, iovcnt, offset_blocks,
						     num_blocks, io_done, c));
}

int
uraid_bdev_writev(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
		  const struct iovec *iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks,
		  uint32_t flags, uraid_bdev_io_cb cb, void *cb_arg)
{
	struct io_ctx *c = ctx_get(cb, cb_arg);
	spdk_bdev_io_completion_cb done = io_done;

	if (c == NULL)
		return -ENOMEM;
	if ((flags & URAID_IO_FUA) && desc->bdev->write_cache) {
		c->desc = desc;
		c->ch = (struct spdk_io_channel *)ch;
		c->offset_blocks = offset_blocks;
		c->num_blocks = num_blocks;
		done = fua_write_done;
	}
	return submit_done(c, spdk_bdev_writev_blocks(desc->sd, (struct spdk_io_channel *)ch,
						      (struct iovec *)iov, iovcnt, offset_blocks,
						      num_blocks, done, c));
}

int
uraid_bdev_read(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, void *buf,
		uint64_t offset_blocks, uint64_t num_blocks, uraid_bdev_io_cb cb, void *cb_arg)
{
	struct iovec iov = {buf, num_blocks * desc->bdev->block_size};

	/* SPDK copies the iovec array into its bdev_io before returning. */
	return uraid_bdev_readv(desc, ch, &iov, 1, offset_blocks, num_blocks, cb, cb_arg);
}

int
uraid_bdev_write(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, void *buf,
		 uint64_t offset_blocks, uint64_t num_blocks, uint32_t flags, uraid_bdev_io_cb cb,
		 void *cb_arg)
{
	struct iovec iov = {buf, num_blocks * desc->bdev->block_size};

	return uraid_bdev_writev(desc, ch, &iov, 1, offset_blocks, num_blocks, flags, cb, cb_arg);
}

int
uraid_bdev_flush(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, uraid_bdev_io_cb cb,
		 void *cb_arg)
{
	struct io_ctx *c = ctx_get(cb, cb_arg);

	if (c == NULL)
		return -ENOMEM;
	return submit_done(c, spdk_bdev_flush_blocks(desc->sd, (struct spdk_io_channel *)ch, 0,
						     desc->bdev->num_blocks, io_done, c));
}

int
uraid_bdev_unmap(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, uint64_t offset_blocks,
		 uint64_t num_blocks, uraid_bdev_io_cb cb, void *cb_arg)
{
	struct io_ctx *c = ctx_get(cb, cb_arg);

	if (c == NULL)
		return -ENOMEM;
	return submit_done(c, spdk_bdev_unmap_blocks(desc->sd, (struct spdk_io_channel *)ch,
						     offset_blocks, num_blocks, io_done, c));
}

int
uraid_bdev_write_zeroes(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
			uint64_t offset_blocks, uint64_t num_blocks, uraid_bdev_io_cb cb,
			void *cb_arg)
{
	struct io_ctx *c = ctx_get(cb, cb_arg);

	if (c == NULL)
		return -ENOMEM;
	return submit_done(c, spdk_bdev_write_zeroes_blocks(desc->sd, (struct spdk_io_channel *)ch,
							    offset_blocks, num_blocks, io_done, c));
}

/* Members inside SPDK are never zoned here (zone_size stays 0), so the core asks for no zone
 * appends or zone management; an asking caller is refused. */
int
uraid_bdev_zone_appendv(struct uraid_bdev_desc *desc UNUSED, struct uraid_io_channel *ch UNUSED,
			const struct iovec *iov UNUSED, int iovcnt UNUSED, uint64_t zone_id UNUSED,
			uint64_t num_blocks UNUSED, uint32_t flags UNUSED, uint64_t *lba UNUSED,
			uraid_bdev_io_cb cb UNUSED, void *cb_arg UNUSED)
{
	return -ENOTSUP;
}

int
uraid_bdev_zone_management(struct uraid_bdev_desc *desc UNUSED, struct uraid_io_channel *ch UNUSED,
			   uint64_t zone_id UNUSED, enum uraid_zone_action action UNUSED,
			   uraid_bdev_io_cb cb UNUSED, void *cb_arg UNUSED)
{
	return -ENOTSUP;
}

int
uraid_bdev_reset(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, uraid_bdev_io_cb cb,
		 void *cb_arg)
{
	struct io_ctx *c = ctx_get(cb, cb_arg);

	if (c == NULL)
		return -ENOMEM;
	return submit_done(c, spdk_bdev_reset(desc->sd, (struct spdk_io_channel *)ch, io_done, c));
}

/* --- synchronous I/O for the control thread --- */

struct sync_req {
	struct uraid_bdev_desc *desc;
	enum uraid_io_type type;
	void *buf;
	uint64_t offset_blocks, num_blocks;
	struct spdk_io_channel *ch;
	int status;
	_Atomic bool done;
};

static void
sync_done(void *arg, int status)
{
	struct sync_req *r = arg;

	spdk_put_io_channel(r->ch);
	r->status = status;
	atomic_store_explicit(&r->done, true, memory_order_release);
}

static void
sync_start(void *arg)
{
	struct sync_req *r = arg;
	struct uraid_io_channel *ch;
	int rc = -EINVAL;

	if (r->ch == NULL)
		r->ch = spdk_bdev_get_io_channel(r->desc->sd);
	if (r->ch == NULL) {
		r->status = -ENOMEM;
		atomic_store_explicit(&r->done, true, memory_order_release);
		return;
	}
	ch = (struct uraid_io_channel *)r->ch;
	switch (r->type) {
	case URAID_IO_READ:
		rc = uraid_bdev_read(r->desc, ch, r->buf, r->offset_blocks, r->num_blocks,
				     sync_done, r);
		break;
	case URAID_IO_WRITE:
		rc = uraid_bdev_write(r->desc, ch, r->buf, r->offset_blocks, r->num_blocks,
				      URAID_IO_FUA, sync_done, r);
		break;
	case URAID_IO_FLUSH:
		rc = uraid_bdev_flush(r->desc, ch, sync_done, r);
		break;
	default:
		break;
	}
	if (rc == -ENOMEM && spdk_thread_send_msg(spdk_get_thread(), sync_start, r) == 0)
		return; /* out of bdev_ios: try again on the next round */
	if (rc != 0) {
		spdk_put_io_channel(r->ch);
		r->status = rc;
		atomic_store_explicit(&r->done, true, memory_order_release);
	}
}

int
uraid_bdev_io_sync(struct uraid_bdev_desc *desc, enum uraid_io_type type, void *buf,
		   uint64_t offset_blocks, uint64_t num_blocks)
{
	struct sync_req r = {desc, type, buf, offset_blocks, num_blocks, NULL, 0, false};

	if (on_spdk_thread())
		return -EINVAL;
	while (spdk_thread_send_msg(app_thread(), sync_start, &r) != 0)
		;
	uraid_runtime_wait(&r.done);
	return r.status;
}

/* --- statistics: SPDK keeps them for every bdev --- */

struct stats_req {
	void (*cb)(void *arg, const struct uraid_bdev_io_stats *st);
	void *arg;
	char name[URAID_BDEV_NAME_MAX];
	struct spdk_bdev_io_stat stat;
};

static void
stats_got(struct spdk_bdev *sb, struct spdk_bdev_io_stat *s, void *arg, int rc)
{
	struct stats_req *r = arg;
	struct uraid_bdev_io_stats st = {0};
	uint32_t bs = spdk_bdev_get_block_size(sb);

	if (rc != 0) {
		r->cb(r->arg, NULL);
		free(r);
		return;
	}
	st.ops[URAID_IO_READ] = s->num_read_ops;
	st.blocks[URAID_IO_READ] = s->bytes_read / bs;
	st.latency_ticks[URAID_IO_READ] = s->read_latency_ticks;
	st.ops[URAID_IO_WRITE] = s->num_write_ops;
	st.blocks[URAID_IO_WRITE] = s->bytes_written / bs;
	st.latency_ticks[URAID_IO_WRITE] = s->write_latency_ticks;
	st.ops[URAID_IO_UNMAP] = s->num_unmap_ops;
	st.blocks[URAID_IO_UNMAP] = s->bytes_unmapped / bs;
	st.latency_ticks[URAID_IO_UNMAP] = s->unmap_latency_ticks;
	/* SPDK's error counts are private to its bdev layer: errors stay 0 here. */
	r->cb(r->arg, &st);
	free(r);
}

static void
stats_start(void *arg)
{
	struct stats_req *r = arg;
	struct spdk_bdev *sb = spdk_bdev_get_by_name(r->name);

	if (sb == NULL) {
		r->cb(r->arg, NULL);
		free(r);
		return;
	}
	spdk_bdev_get_device_stat(sb, &r->stat, stats_got, r);
}

int
uraid_bdev_collect_stats(const char *name,
			 void (*cb)(void *arg, const struct uraid_bdev_io_stats *st), void *arg)
{
	struct stats_req *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return -ENOMEM;
	r->cb = cb;
	r->arg = arg;
	snprintf(r->name, sizeof(r->name), "%s", name);
	if (spdk_thread_send_msg(app_thread(), stats_start, r) != 0) {
		free(r);
		return -ENOMEM;
	}
	return 0;
}

uint64_t
uraid_bdev_tick_rate(void)
{
	return spdk_get_ticks_hz();
}

/* --- arrays as SPDK bdevs --- */

struct uraid_bdev *
port_array_of_ctx(void *ctx)
{
	return ((struct array_wrap *)ctx)->ub;
}

static struct uraid_bdev *
wrap_ub(void *ctx)
{
	return port_array_of_ctx(ctx);
}

static int
array_destruct(void *ctx)
{
	struct uraid_bdev *ub = wrap_ub(ctx);

	/* 0: done; 1: core finishes later with uraid_bdev_destruct_done. */
	return ub->fn->destruct ? ub->fn->destruct(ub) : 0;
}

void
uraid_bdev_destruct_done(struct uraid_bdev *bdev)
{
	spdk_bdev_destruct_done(sbdev_of(bdev), 0);
}

static struct spdk_bdev_io *
bio_of(struct uraid_bdev_io *io)
{
	return io->cb_arg;
}

static struct uraid_bdev_io *
io_of(struct spdk_bdev_io *bio)
{
	/* core's driver context wants 16-byte alignment: place the request there. */
	uintptr_t p = ((uintptr_t)bio->driver_ctx + 15) & ~(uintptr_t)15;

	return (struct uraid_bdev_io *)p;
}

void
uraid_bdev_io_complete(struct uraid_bdev_io *io, int status)
{
	spdk_bdev_io_complete(bio_of(io), status == 0	      ? SPDK_BDEV_IO_STATUS_SUCCESS
					  : status == -ENOMEM ? SPDK_BDEV_IO_STATUS_NOMEM
							      : SPDK_BDEV_IO_STATUS_FAILED);
}

static void
complete_msg(void *arg)
{
	struct uraid_bdev_io *io = arg;

	uraid_bdev_io_complete(io, io->status);
}

void
uraid_bdev_io_complete_deferred(struct uraid_bdev_io *io, int status)
{
	io->status = status;
	if (spdk_thread_send_msg(spdk_get_thread(), complete_msg, io) != 0)
		uraid_bdev_io_complete(io, status); /* no message memory: SPDK defers it itself */
}

static void
defer_msg(void *arg)
{
	struct uraid_bdev_io *io = arg;

	io->defer_fn(io);
}

void
uraid_bdev_io_defer(struct uraid_bdev_io *io, void (*fn)(struct uraid_bdev_io *io))
{
	io->defer_fn = fn;
	if (spdk_thread_send_msg(spdk_get_thread(), defer_msg, io) != 0)
		fn(io); /* no message memory: from inside submit, as SPDK allows */
}

/* SPDK's messages never run in the poll that sent them: later is deferred. */
void
uraid_bdev_io_complete_later(struct uraid_bdev_io *io, int status)
{
	uraid_bdev_io_complete_deferred(io, status);
}

static void
array_submit_io(struct spdk_io_channel *ch, struct spdk_bdev_io *bio)
{
	struct array_wrap *w = bio->bdev->ctxt;
	struct uraid_bdev_io *io = io_of(bio);
	int rc;

	io->bdev = w->ub;
	io->flags = 0;
	io->cb_arg = bio;
	io->offset_blocks = bio->u.bdev.offset_blocks;
	io->num_blocks = bio->u.bdev.num_blocks;
	io->iov = NULL;
	io->iovcnt = 0;
	switch (bio->type) {
	case SPDK_BDEV_IO_TYPE_READ:
		io->type = URAID_IO_READ;
		io->iov = bio->u.bdev.iovs;
		io->iovcnt = bio->u.bdev.iovcnt;
		break;
	case SPDK_BDEV_IO_TYPE_WRITE:
		io->type = URAID_IO_WRITE;
		io->iov = bio->u.bdev.iovs;
		io->iovcnt = bio->u.bdev.iovcnt;
		break;
	case SPDK_BDEV_IO_TYPE_FLUSH:
		io->type = URAID_IO_FLUSH;
		io->offset_blocks = 0;
		io->num_blocks = 0;
		break;
	case SPDK_BDEV_IO_TYPE_UNMAP:
		io->type = URAID_IO_UNMAP;
		break;
	case SPDK_BDEV_IO_TYPE_WRITE_ZEROES:
		io->type = URAID_IO_WRITE_ZEROES;
		break;
	case SPDK_BDEV_IO_TYPE_RESET:
		/* SPDK drained this array's I/O before handing the reset down (the bdev's
		 * reset_io_drain_timeout): nothing of ours is left to wait for. */
		spdk_bdev_io_complete(bio, SPDK_BDEV_IO_STATUS_SUCCESS);
		return;
	default:
		spdk_bdev_io_complete(bio, SPDK_BDEV_IO_STATUS_FAILED);
		return;
	}
	rc = w->ub->fn->submit_request(spdk_io_channel_get_ctx(ch), io);
	if (rc != 0)
		spdk_bdev_io_complete(bio, rc == -ENOMEM || rc == -EAGAIN
						   ? SPDK_BDEV_IO_STATUS_NOMEM
						   : SPDK_BDEV_IO_STATUS_FAILED);
}

static void
got_buf(struct spdk_io_channel *ch, struct spdk_bdev_io *bio, bool success)
{
	if (!success) {
		spdk_bdev_io_complete(bio, SPDK_BDEV_IO_STATUS_FAILED);
		return;
	}
	array_submit_io(ch, bio);
}

static void
array_submit_request(struct spdk_io_channel *ch, struct spdk_bdev_io *bio)
{
	/* A read may come without buffers: take them from SPDK's pool. */
	if (bio->type == SPDK_BDEV_IO_TYPE_READ && bio->u.bdev.iovs[0].iov_base == NULL) {
		spdk_bdev_io_get_buf(bio, got_buf, bio->u.bdev.num_blocks * bio->bdev->blocklen);
		return;
	}
	array_submit_io(ch, bio);
}

static bool
array_io_type_supported(void *ctx, enum spdk_bdev_io_type type)
{
	struct uraid_bdev *ub = wrap_ub(ctx);

	switch (type) {
	case SPDK_BDEV_IO_TYPE_READ:
	case SPDK_BDEV_IO_TYPE_WRITE:
	case SPDK_BDEV_IO_TYPE_FLUSH:
	case SPDK_BDEV_IO_TYPE_RESET:
		return true;
	case SPDK_BDEV_IO_TYPE_UNMAP:
		return ub->fn->io_type_supported && ub->fn->io_type_supported(ub, URAID_IO_UNMAP);
	case SPDK_BDEV_IO_TYPE_WRITE_ZEROES:
		return ub->fn->io_type_supported &&
		       ub->fn->io_type_supported(ub, URAID_IO_WRITE_ZEROES);
	default:
		return false;
	}
}

static struct spdk_io_channel *
array_get_io_channel(void *ctx)
{
	return spdk_get_io_channel(wrap_ub(ctx)->io_device);
}

static const struct spdk_bdev_fn_table g_array_fn = {
	.destruct = array_destruct,
	.submit_request = array_submit_request,
	.io_type_supported = array_io_type_supported,
	.get_io_channel = array_get_io_channel,
	.dump_info_json = port_array_dump_info_json,
	.write_config_json = port_array_write_config_json,
};

struct reg_args {
	struct array_wrap *w;
	int rc;
};

static void
register_msg(void *arg)
{
	struct reg_args *ra = arg;

	ra->rc = spdk_bdev_register(&ra->w->sb);
}

int
uraid_bdev_register(struct uraid_bdev *bdev)
{
	static const uint8_t zero[16];
	struct reg_args ra = {NULL, 0};
	struct array_wrap *w;

	if (bdev->driver_ctx_size > PORT_DRIVER_CTX_MAX) {
		LOG_ERR("%s: per-I/O context of %zu bytes; the module has room for %u", bdev->name,
			bdev->driver_ctx_size, PORT_DRIVER_CTX_MAX);
		return -EINVAL;
	}
	if (bdev->block_size == 0 || bdev->num_blocks == 0)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->sb.name = strdup(bdev->name);
	if (w->sb.name == NULL) {
		free(w);
		return -ENOMEM;
	}
	if (memcmp(bdev->uuid, zero, 16) == 0)
		uraid_uuid_generate(bdev->uuid);
	w->ub = bdev;
	w->sb.product_name = (char *)(bdev->product ? bdev->product : "uraid");
	w->sb.blocklen = bdev->block_size;
	w->sb.blockcnt = bdev->num_blocks;
	w->sb.write_cache = bdev->write_cache;
	memcpy(&w->sb.uuid, bdev->uuid, 16);
	w->sb.reset_io_drain_timeout = SPDK_BDEV_RESET_IO_DRAIN_RECOMMENDED_VALUE;
	w->sb.ctxt = w;
	w->sb.fn_table = &g_array_fn;
	w->sb.module = &g_uraid_module;
	bdev->internal = (struct bdev_internal *)(void *)w;
	ra.w = w;
	if (spdk_thread_is_app_thread(NULL))
		register_msg(&ra);
	else if (!on_spdk_thread())
		port_run_on(app_thread(), register_msg, &ra);
	else
		ra.rc = -EINVAL; /* SPDK registers bdevs on its app thread only */
	if (ra.rc != 0) {
		bdev->internal = NULL;
		free(w->sb.name);
		free(w);
	}
	return ra.rc;
}

static void
unregister_done(void *arg, int status)
{
	struct array_wrap *w = arg;
	uraid_bdev_unregister_cb cb = w->unregister_cb;
	void *cb_arg = w->unregister_cb_arg;

	free(w->sb.name);
	free(w);
	if (cb)
		cb(cb_arg, status);
}

struct unreg_args {
	struct uraid_bdev *b;
	uraid_bdev_unregister_cb cb;
	void *cb_arg;
};

static void
unregister_msg(void *arg)
{
	struct unreg_args *ua = arg;
	struct uraid_bdev *b = ua->b;

	if (b->internal != NULL) {
		struct array_wrap *w = (struct array_wrap *)(void *)b->internal;

		w->unregister_cb = ua->cb;
		w->unregister_cb_arg = ua->cb_arg;
		spdk_bdev_unregister(&w->sb, unregister_done, w);
	} else {
		spdk_bdev_unregister(sbdev_of(b), ua->cb, ua->cb_arg);
	}
	free(ua);
}

void
uraid_bdev_unregister(struct uraid_bdev *bdev, uraid_bdev_unregister_cb cb, void *cb_arg)
{
	struct unreg_args *ua = malloc(sizeof(*ua));

	if (ua == NULL) {
		if (cb)
			cb(cb_arg, -ENOMEM);
		return;
	}
	*ua = (struct unreg_args){bdev, cb, cb_arg};
	if (spdk_thread_is_app_thread(NULL))
		unregister_msg(ua);
	else if (spdk_thread_send_msg(app_thread(), unregister_msg, ua) != 0) {
		free(ua);
		if (cb)
			cb(cb_arg, -ENOMEM);
	}
}

void
port_bdev_fini(void)
{
	struct proxy *p;

	pthread_mutex_lock(&g_proxy_lock);
	while ((p = TAILQ_FIRST(&g_proxies)) != NULL) {
		TAILQ_REMOVE(&g_proxies, p, link);
		free(p);
	}
	pthread_mutex_unlock(&g_proxy_lock);
}
