/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * I/O devices and per-reactor channels.
 *
 * An io_device is any pointer registered with a channel constructor. A reactor's first
 * uraid_get_io_channel() builds the channel there; later calls on that reactor share it by
 * reference count. Channels live on their reactor's list and are only touched by that reactor.
 * The device registry is control-plane state behind a mutex; the data path never looks at it.
 *
 * Device lifetime: the device holds one reference for its registration and one per channel.
 * Unregistering drops the first; whoever drops the last reference runs the unregister callback,
 * so "unregister waits until all channels are gone" needs no polling.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime.h"

struct io_device {
	void *io_device;
	uraid_channel_create_cb create_cb;
	uraid_channel_destroy_cb destroy_cb;
	size_t ctx_size;
	char name[64];
	_Atomic int refs;
	uraid_io_device_unregister_cb unregister_cb;
	struct uraid_reactor *unregister_reactor;
	TAILQ_ENTRY(io_device) link;
};

struct uraid_io_channel {
	struct io_device *dev;
	struct uraid_reactor *reactor;
	int refs;
	bool destroy_pending;
	TAILQ_ENTRY(uraid_io_channel) link;
	uint8_t ctx[] __attribute__((aligned(CACHE_LINE_BYTES)));
};

struct uraid_channel_iter {
	void *io_device;
	uraid_channel_msg fn;
	void *ctx;
	uraid_channel_for_each_cpl cpl;
	struct uraid_reactor *origin;
	unsigned index;
	struct uraid_io_channel *ch;
	int status;
};

static pthread_mutex_t g_dev_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, io_device) g_devs = TAILQ_HEAD_INITIALIZER(g_devs);

static struct io_device *
dev_find_locked(void *io_device)
{
	struct io_device *dev;

	TAILQ_FOREACH(dev, &g_devs, link) {
		if (dev->io_device == io_device)
			return dev;
	}
	return NULL;
}

void
uraid_io_device_register(void *io_device, uraid_channel_create_cb create_cb,
			 uraid_channel_destroy_cb destroy_cb, size_t ctx_size, const char *name)
{
	struct io_device *dev = calloc(1, sizeof(*dev));

	/* Registration happens at object creation on the control path; running out of memory
	 * for 150 bytes there leaves nothing sensible to unwind to. */
	if (dev == NULL)
		abort();
	dev->io_device = io_device;
	dev->create_cb = create_cb;
	dev->destroy_cb = destroy_cb;
	dev->ctx_size = ctx_size;
	snprintf(dev->name, sizeof(dev->name), "%s", name ? name : "?");
	atomic_init(&dev->refs, 1);
	pthread_mutex_lock(&g_dev_lock);
	if (dev_find_locked(io_device) != NULL) {
		pthread_mutex_unlock(&g_dev_lock);
		LOG_ERR("io_device %s registered twice", dev->name);
		abort();
	}
	TAILQ_INSERT_TAIL(&g_devs, dev, link);
	pthread_mutex_unlock(&g_dev_lock);
}

static void
dev_unregister_done(void *arg)
{
	struct io_device *dev = arg;

	if (dev->unregister_cb)
		dev->unregister_cb(dev->io_device);
	free(dev);
}

static void
dev_put(struct io_device *dev)
{
	struct uraid_reactor *target;

	if (atomic_fetch_sub_explicit(&dev->refs, 1, memory_order_acq_rel) != 1)
		return;
	target = dev->unregister_reactor;
	if (target != NULL && target != uraid_reactor_self())
		uraid_reactor_send(target, dev_unregister_done, dev);
	else
		dev_unregister_done(dev);
}

static void
dev_put_msg(void *arg)
{
	dev_put(arg);
}

void
uraid_io_device_unregister(void *io_device, uraid_io_device_unregister_cb unregister_cb)
{
	struct io_device *dev;
	struct uraid_reactor *self = uraid_reactor_self();

	pthread_mutex_lock(&g_dev_lock);
	dev = dev_find_locked(io_device);
	if (dev != NULL)
		TAILQ_REMOVE(&g_devs, dev, link);
	pthread_mutex_unlock(&g_dev_lock);
	if (dev == NULL) {
		LOG_ERR("unregistering an io_device that is not registered");
		return;
	}
	dev->unregister_cb = unregister_cb;
	dev->unregister_reactor = self;
	if (self != NULL) {
		/* Defer, so the callback never runs inside this call; the message also holds the
		 * registration reference until it runs. */
		uraid_reactor_send(self, dev_put_msg, dev);
		return;
	}
	dev_put(dev);
}

static struct uraid_io_channel *
channel_find(struct uraid_reactor *r, void *io_device)
{
	struct uraid_io_channel *ch;

	TAILQ_FOREACH(ch, reactor_channels(r), link) {
		if (ch->dev->io_device == io_device)
			return ch;
	}
	return NULL;
}

struct uraid_io_channel *
uraid_get_io_channel(void *io_device)
{
	struct uraid_reactor *r = uraid_reactor_self();
	struct uraid_io_channel *ch;
	struct io_device *dev;
	size_t size;

	if (r == NULL)
		return NULL;
	ch = channel_find(r, io_device);
	if (ch != NULL) {
		ch->refs++;
		return ch;
	}
	pthread_mutex_lock(&g_dev_lock);
	dev = dev_find_locked(io_device);
	if (dev != NULL)
		atomic_fetch_add_explicit(&dev->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&g_dev_lock);
	if (dev == NULL)
		return NULL;

	size = align_up_u64(sizeof(*ch) + dev->ctx_size, CACHE_LINE_BYTES);
	ch = aligned_alloc(CACHE_LINE_BYTES, size);
	if (ch == NULL)
		goto err_alloc;
	memset(ch, 0, size);
	ch->dev = dev;
	ch->reactor = r;
	ch->refs = 1;
	if (dev->create_cb && dev->create_cb(io_device, ch->ctx) != 0)
		goto err_create;
	TAILQ_INSERT_TAIL(reactor_channels(r), ch, link);
	return ch;

err_create:
	free(ch);
err_alloc:
	dev_put(dev);
	return NULL;
}

static void
channel_destroy(struct uraid_io_channel *ch)
{
	struct io_device *dev = ch->dev;

	TAILQ_REMOVE(reactor_channels(ch->reactor), ch, link);
	if (dev->destroy_cb)
		dev->destroy_cb(dev->io_device, ch->ctx);
	free(ch);
	dev_put(dev);
}

static void
channel_destroy_deferred(void *arg)
{
	struct uraid_io_channel *ch = arg;

	ch->destroy_pending = false;
	if (ch->refs == 0)
		channel_destroy(ch);
}

void
uraid_put_io_channel(struct uraid_io_channel *ch)
{
	if (ch == NULL)
		return;
	if (ch->reactor != uraid_reactor_self()) {
		LOG_ERR("channel of %s put from another reactor", ch->dev->name);
		abort();
	}
	if (--ch->refs > 0 || ch->destroy_pending)
		return;
	/* Destroy later: the caller may be inside a callback that still uses the context. */
	ch->destroy_pending = true;
	uraid_reactor_send(ch->reactor, channel_destroy_deferred, ch);
}

void
uraid_io_channel_hold(struct uraid_io_channel *ch)
{
	ch->refs++;
}

void *
uraid_io_channel_get_ctx(struct uraid_io_channel *ch)
{
	return ch->ctx;
}

struct uraid_io_channel *
uraid_io_channel_from_ctx(void *ctx)
{
	return container_of(ctx, struct uraid_io_channel, ctx);
}

struct uraid_reactor *
uraid_io_channel_get_reactor(struct uraid_io_channel *ch)
{
	return ch->reactor;
}

void
channel_reactor_fini(struct uraid_reactor *r)
{
	struct uraid_io_channel *ch;

	while ((ch = TAILQ_FIRST(reactor_channels(r))) != NULL) {
		LOG_WARNING("reactor %u stopped with a channel of %s still held",
			    uraid_reactor_index(r), ch->dev->name);
		channel_destroy(ch);
	}
}

/* --- for-each-channel walk --- */

static void iter_step(void *arg);

static void
iter_finish(void *arg)
{
	struct uraid_channel_iter *it = arg;

	it->ch = NULL;
	it->cpl(it, it->status);
	free(it);
}

static void
iter_step(void *arg)
{
	struct uraid_channel_iter *it = arg;
	struct uraid_io_channel *ch = channel_find(uraid_reactor_self(), it->io_device);

	if (ch == NULL || ch->refs == 0) {
		uraid_for_each_channel_continue(it, 0);
		return;
	}
	/* Hold the channel while fn works on it, possibly across messages. */
	ch->refs++;
	it->ch = ch;
	it->fn(it);
}

void
uraid_for_each_channel(void *io_device, uraid_channel_msg fn, void *ctx,
		       uraid_channel_for_each_cpl cpl)
{
	struct uraid_channel_iter *it = calloc(1, sizeof(*it));

	if (it == NULL || uraid_reactor_self() == NULL) {
		LOG_ERR("for_each_channel: %s", it ? "not called on a reactor" : "out of memory");
		abort();
	}
	it->io_device = io_device;
	it->fn = fn;
	it->ctx = ctx;
	it->cpl = cpl;
	it->origin = uraid_reactor_self();
	it->index = 0;
	uraid_reactor_send(uraid_reactor_get(0), iter_step, it);
}

void
uraid_for_each_channel_continue(struct uraid_channel_iter *it, int status)
{
	if (it->ch != NULL) {
		uraid_put_io_channel(it->ch);
		it->ch = NULL;
	}
	it->status = status;
	if (status == 0 && ++it->index < uraid_reactor_count()) {
		uraid_reactor_send(uraid_reactor_get(it->index), iter_step, it);
		return;
	}
	uraid_reactor_send(it->origin, iter_finish, it);
}

struct uraid_io_channel *
uraid_channel_iter_get_channel(struct uraid_channel_iter *it)
{
	return it->ch;
}

void *
uraid_channel_iter_get_ctx(struct uraid_channel_iter *it)
{
	return it->ctx;
}

void *
uraid_channel_iter_get_io_device(struct uraid_channel_iter *it)
{
	return it->io_device;
}
