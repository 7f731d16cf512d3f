/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uraid/thread.h over SPDK: reactors are SPDK threads, messages are spdk_thread_send_msg,
 * pollers are spdk_pollers, io_devices and channels are SPDK's own. See spdk_priv.h for which
 * SPDK threads are reactors, and for the control thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <spdk/cpuset.h>
#include <spdk/env.h>
#include <spdk/thread.h>

#include "spdk_priv.h"

/* A message SPDK's pool had no room for: kept by a module reactor's drain poller and sent
 * (or run) from there, in order. */
struct overflow_msg {
	struct uraid_reactor *target;
	uraid_msg_fn fn;
	void *arg;
	STAILQ_ENTRY(overflow_msg) link;
};
STAILQ_HEAD(overflow_list, overflow_msg);

struct uraid_reactor {
	struct spdk_thread *thread;
	uint64_t thread_id;
	unsigned index;
	int core;	   /* the one CPU core its thread may run on, or -1 */
	bool started_here; /* an SPDK thread this module created (reactors 1..owners-1) */
	/* Owners only: overflowed messages for this reactor or, on reactor 0, for others. */
	pthread_mutex_t lock;
	_Atomic unsigned overflow_n;
	struct overflow_list overflow;
	struct spdk_poller *drain;
};

static struct uraid_reactor *g_reactors[URAID_MAX_REACTORS];
static _Atomic unsigned g_count;
static unsigned g_owners;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_ticks_per_us;
static bool g_full_logged;

static PORT_TLS struct spdk_thread *tl_thread;
static PORT_TLS struct uraid_reactor *tl_reactor;
static PORT_TLS bool tl_control;

/* --- the control thread --- */

struct ctl_job {
	uraid_msg_fn fn;
	void *arg;
	STAILQ_ENTRY(ctl_job) link;
};

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	STAILQ_HEAD(, ctl_job) jobs;
	bool running, stop;
} g_ctl = {.lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *
ctl_main(void *arg UNUSED)
{
	tl_control = true;
	pthread_mutex_lock(&g_ctl.lock);
	for (;;) {
		struct ctl_job *j;

		while (STAILQ_EMPTY(&g_ctl.jobs) && !g_ctl.stop)
			pthread_cond_wait(&g_ctl.cv, &g_ctl.lock);
		j = STAILQ_FIRST(&g_ctl.jobs);
		if (j == NULL)
			break;
		STAILQ_REMOVE_HEAD(&g_ctl.jobs, link);
		pthread_mutex_unlock(&g_ctl.lock);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&g_ctl.lock);
	}
	pthread_mutex_unlock(&g_ctl.lock);
	return NULL;
}

int
port_control_post(uraid_msg_fn fn, void *arg)
{
	struct ctl_job *j = malloc(sizeof(*j));

	if (j == NULL)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	pthread_mutex_lock(&g_ctl.lock);
	STAILQ_INSERT_TAIL(&g_ctl.jobs, j, link);
	pthread_cond_signal(&g_ctl.cv);
	pthread_mutex_unlock(&g_ctl.lock);
	return 0;
}

bool
port_on_control_thread(void)
{
	return tl_control;
}

/* --- reactors --- */

static struct uraid_reactor *
reactor_lookup(struct spdk_thread *t)
{
	unsigned n = atomic_load_explicit(&g_count, memory_order_acquire);

	for (unsigned i = 0; i < n; i++) {
		if (g_reactors[i]->thread == t)
			return g_reactors[i];
	}
	return NULL;
}

static struct uraid_reactor *reactor_new(struct spdk_thread *t, int core, bool started_here);

/* The one core thread t's mask allows, or -1 (SPDK pins threads made for one core: bdevperf's
 * jobs, NVMe-oF's poll groups). */
static int
thread_core(struct spdk_thread *t)
{
	const struct spdk_cpuset *mask = spdk_thread_get_cpumask(t);
	uint32_t core;
	int found = -1;

	SPDK_ENV_FOREACH_CORE(core)
	{
		if (!spdk_cpuset_get_cpu(mask, core))
			continue;
		if (found >= 0)
			return -1;
		found = (int)core;
	}
	return found;
}

/* An SPDK thread core meets for the first time (it submits I/O or takes a channel): a reactor
 * with the next index, or the slot of a thread that has exited. */
static struct uraid_reactor *
reactor_adopt(struct spdk_thread *t)
{
	struct uraid_reactor *r;
	unsigned n;

	pthread_mutex_lock(&g_lock);
	r = reactor_lookup(t);
	if (r != NULL)
		goto out;
	n = atomic_load(&g_count);
	if (n < URAID_MAX_REACTORS) {
		r = reactor_new(t, thread_core(t), false);
		goto out;
	}
	for (unsigned i = g_owners; i < n; i++) {
		if (spdk_thread_get_by_id(g_reactors[i]->thread_id) == NULL) {
			r = g_reactors[i];
			r->thread_id = spdk_thread_get_id(t);
			r->core = thread_core(t);
			/* Release: reactor_lookup reads it without the lock. */
			__atomic_store_n(&r->thread, t, __ATOMIC_RELEASE);
			goto out;
		}
	}
	if (!g_full_logged)
		LOG_ERR("more than %u SPDK threads use uraid arrays; %s is refused",
			URAID_MAX_REACTORS, spdk_thread_get_name(t));
	g_full_logged = true;
out:
	pthread_mutex_unlock(&g_lock);
	return r;
}

struct uraid_reactor *
uraid_reactor_self(void)
{
	struct spdk_thread *t = spdk_get_thread();
	struct uraid_reactor *r;

	if (t == NULL || g_owners == 0)
		return NULL;
	if (t == tl_thread)
		return tl_reactor;
	r = reactor_lookup(t);
	if (r == NULL)
		r = reactor_adopt(t);
	tl_thread = t;
	tl_reactor = r;
	return r;
}

unsigned
uraid_reactor_count(void)
{
	return atomic_load_explicit(&g_count, memory_order_acquire);
}

unsigned
uraid_owner_count(void)
{
	return g_owners;
}

bool
uraid_runtime_is_manual(void)
{
	return false;
}

struct uraid_reactor *
uraid_reactor_get(unsigned index)
{
	return index < uraid_reactor_count() ? g_reactors[index] : NULL;
}

unsigned
uraid_reactor_index(const struct uraid_reactor *reactor)
{
	return reactor->index;
}

bool
uraid_reactor_shares_core(const struct uraid_reactor *reactor)
{
	struct uraid_reactor *self = uraid_reactor_self();

	return self != NULL && self->core >= 0 && self->core == reactor->core;
}

static int
drain_poll(void *arg)
{
	struct uraid_reactor *r = arg;
	struct overflow_list todo = STAILQ_HEAD_INITIALIZER(todo);
	struct overflow_msg *m;

	if (atomic_load_explicit(&r->overflow_n, memory_order_acquire) == 0)
		return SPDK_POLLER_IDLE;
	pthread_mutex_lock(&r->lock);
	STAILQ_CONCAT(&todo, &r->overflow);
	atomic_store(&r->overflow_n, 0);
	pthread_mutex_unlock(&r->lock);
	while ((m = STAILQ_FIRST(&todo)) != NULL) {
		if (m->target != r && spdk_thread_send_msg(m->target->thread, m->fn, m->arg) != 0)
			break; /* still no room: the rest waits, in order */
		STAILQ_REMOVE_HEAD(&todo, link);
		if (m->target == r)
			m->fn(m->arg);
		free(m);
	}
	if (!STAILQ_EMPTY(&todo)) {
		pthread_mutex_lock(&r->lock);
		STAILQ_CONCAT(&todo, &r->overflow);
		STAILQ_SWAP(&todo, &r->overflow, overflow_msg);
		atomic_store(&r->overflow_n, 1);
		pthread_mutex_unlock(&r->lock);
	}
	return SPDK_POLLER_BUSY;
}

int
uraid_reactor_send(struct uraid_reactor *reactor, uraid_msg_fn fn, void *arg)
{
	/* Messages to a guest overflow onto reactor 0, which forwards them. */
	struct uraid_reactor *keeper = reactor->index < g_owners ? reactor : g_reactors[0];
	struct overflow_msg *m;

	if (atomic_load_explicit(&keeper->overflow_n, memory_order_acquire) == 0 &&
	    spdk_thread_send_msg(reactor->thread, fn, arg) == 0)
		return 0;
	m = malloc(sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	*m = (struct overflow_msg){reactor, fn, arg, {NULL}};
	pthread_mutex_lock(&keeper->lock);
	STAILQ_INSERT_TAIL(&keeper->overflow, m, link);
	atomic_fetch_add(&keeper->overflow_n, 1);
	pthread_mutex_unlock(&keeper->lock);
	return 0;
}

int
uraid_reactor_poll(struct uraid_reactor *reactor UNUSED)
{
	return 0;
}

unsigned
uraid_runtime_poll_until_idle(unsigned max_iterations UNUSED)
{
	return 0;
}

void
uraid_runtime_wait(const _Atomic bool *flag)
{
	const struct timespec nap = {0, 50 * 1000};

	while (!atomic_load_explicit(flag, memory_order_acquire))
		nanosleep(&nap, NULL);
}

int
uraid_reactor_add_wake_fd(int fd UNUSED)
{
	return 0; /* SPDK threads poll */
}

void
uraid_reactor_remove_wake_fd(int fd UNUSED)
{
}

uint64_t
uraid_now_us(void)
{
	return spdk_get_ticks() / g_ticks_per_us;
}

void
uraid_runtime_advance_us(uint64_t us UNUSED)
{
}

void *
uraid_dma_alloc(size_t align, size_t size)
{
	return spdk_dma_malloc(size, align, NULL);
}

void
uraid_dma_free(void *buf)
{
	spdk_dma_free(buf);
}

/* --- pollers --- */

struct uraid_poller *
uraid_poller_register(uraid_poller_fn fn, void *arg, uint64_t period_us)
{
	return (struct uraid_poller *)spdk_poller_register(fn, arg, period_us);
}

void
uraid_poller_unregister(struct uraid_poller **poller)
{
	spdk_poller_unregister((struct spdk_poller **)poller);
}

/* --- running on another thread --- */

struct run_on {
	uraid_msg_fn fn;
	void *arg;
	_Atomic bool done;
};

static void
run_on_msg(void *arg)
{
	struct run_on *ro = arg;

	ro->fn(ro->arg);
	atomic_store_explicit(&ro->done, true, memory_order_release);
}

void
port_run_on(struct spdk_thread *thread, uraid_msg_fn fn, void *arg)
{
	struct run_on ro = {fn, arg, false};
	const struct timespec nap = {0, 50 * 1000};

	if (spdk_get_thread() == thread) {
		fn(arg);
		return;
	}
	while (spdk_thread_send_msg(thread, run_on_msg, &ro) != 0)
		nanosleep(&nap, NULL);
	uraid_runtime_wait(&ro.done);
}

/* --- io_devices and channels --- */

struct reg_args {
	void *io_device;
	uraid_channel_create_cb create_cb;
	uraid_channel_destroy_cb destroy_cb;
	size_t ctx_size;
	const char *name;
	uraid_io_device_unregister_cb unregister_cb;
};

static void
register_msg(void *arg)
{
	struct reg_args *ra = arg;

	spdk_io_device_register(ra->io_device, ra->create_cb, ra->destroy_cb,
				(uint32_t)ra->ctx_size, ra->name);
}

void
uraid_io_device_register(void *io_device, uraid_channel_create_cb create_cb,
			 uraid_channel_destroy_cb destroy_cb, size_t ctx_size, const char *name)
{
	struct reg_args ra = {io_device, create_cb, destroy_cb, ctx_size, name, NULL};

	/* SPDK registers io_devices from its threads only. */
	if (spdk_get_thread() != NULL)
		register_msg(&ra);
	else
		port_run_on(spdk_thread_get_app_thread(), register_msg, &ra);
}

static void
unregister_msg(void *arg)
{
	struct reg_args *ra = arg;

	spdk_io_device_unregister(ra->io_device, ra->unregister_cb);
	free(ra);
}

void
uraid_io_device_unregister(void *io_device, uraid_io_device_unregister_cb unregister_cb)
{
	struct reg_args *ra;

	if (spdk_get_thread() != NULL) {
		spdk_io_device_unregister(io_device, unregister_cb);
		return;
	}
	ra = calloc(1, sizeof(*ra));
	if (ra == NULL) {
		LOG_ERR("io_device %p: no memory to unregister it", io_device);
		return;
	}
	ra->io_device = io_device;
	ra->unregister_cb = unregister_cb;
	port_run_on(spdk_thread_get_app_thread(), unregister_msg, ra);
}

struct uraid_io_channel *
uraid_get_io_channel(void *io_device)
{
	return (struct uraid_io_channel *)spdk_get_io_channel(io_device);
}

void
uraid_put_io_channel(struct uraid_io_channel *ch)
{
	if (ch != NULL)
		spdk_put_io_channel((struct spdk_io_channel *)ch);
}

void
uraid_io_channel_hold(struct uraid_io_channel *ch)
{
	struct spdk_io_channel *sch = (struct spdk_io_channel *)ch;

	/* On the channel's own thread SPDK hands back the same channel, one reference more. */
	if (spdk_get_io_channel(spdk_io_channel_get_io_device(sch)) != sch)
		LOG_ERR("could not hold a channel of io_device %p",
			spdk_io_channel_get_io_device(sch));
}

void *
uraid_io_channel_get_ctx(struct uraid_io_channel *ch)
{
	return spdk_io_channel_get_ctx((struct spdk_io_channel *)ch);
}

struct uraid_io_channel *
uraid_io_channel_from_ctx(void *ctx)
{
	return (struct uraid_io_channel *)spdk_io_channel_from_ctx(ctx);
}

struct uraid_reactor *
uraid_io_channel_get_reactor(struct uraid_io_channel *ch)
{
	struct spdk_thread *t = spdk_io_channel_get_thread((struct spdk_io_channel *)ch);
	struct uraid_reactor *r = reactor_lookup(t);

	return r != NULL ? r : reactor_adopt(t);
}

/* A walk keeps uraid's callbacks and context beside SPDK's iterator. */
struct walk {
	void *io_device;
	uraid_channel_msg fn;
	void *ctx;
	uraid_channel_for_each_cpl cpl;
};

static struct walk *
walk_of(struct uraid_channel_iter *iter)
{
	return spdk_io_channel_iter_get_ctx((struct spdk_io_channel_iter *)iter);
}

static void
walk_one(struct spdk_io_channel_iter *i)
{
	walk_of((struct uraid_channel_iter *)i)->fn((struct uraid_channel_iter *)i);
}

static void
walk_done(struct spdk_io_channel_iter *i, int status)
{
	struct walk *w = walk_of((struct uraid_channel_iter *)i);

	if (w->cpl)
		w->cpl((struct uraid_channel_iter *)i, status);
	free(w);
}

static void
walk_start(void *arg)
{
	struct walk *w = arg;

	spdk_for_each_channel(w->io_device, walk_one, w, walk_done);
}

void
uraid_for_each_channel(void *io_device, uraid_channel_msg fn, void *ctx,
		       uraid_channel_for_each_cpl cpl)
{
	struct walk *w = malloc(sizeof(*w));

	if (w == NULL) {
		LOG_ERR("io_device %p: no memory for a channel walk", io_device);
		return;
	}
	*w = (struct walk){io_device, fn, ctx, cpl};
	if (spdk_get_thread() != NULL)
		walk_start(w);
	else if (spdk_thread_send_msg(spdk_thread_get_app_thread(), walk_start, w) != 0)
		port_run_on(spdk_thread_get_app_thread(), walk_start, w);
}

void
uraid_for_each_channel_continue(struct uraid_channel_iter *iter, int status)
{
	spdk_for_each_channel_continue((struct spdk_io_channel_iter *)iter, status);
}

struct uraid_io_channel *
uraid_channel_iter_get_channel(struct uraid_channel_iter *iter)
{
	return (struct uraid_io_channel *)spdk_io_channel_iter_get_channel(
		(struct spdk_io_channel_iter *)iter);
}

void *
uraid_channel_iter_get_ctx(struct uraid_channel_iter *iter)
{
	return walk_of(iter)->ctx;
}

void *
uraid_channel_iter_get_io_device(struct uraid_channel_iter *iter)
{
	return walk_of(iter)->io_device;
}

/* --- start and stop --- */

static struct uraid_reactor *
reactor_new(struct spdk_thread *t, int core, bool started_here)
{
	struct uraid_reactor *r = calloc(1, sizeof(*r));
	unsigned n = atomic_load(&g_count);

	if (r == NULL)
		return NULL;
	r->thread = t;
	r->thread_id = spdk_thread_get_id(t);
	r->index = n;
	r->core = core;
	r->started_here = started_here;
	pthread_mutex_init(&r->lock, NULL);
	STAILQ_INIT(&r->overflow);
	g_reactors[n] = r;
	atomic_store_explicit(&g_count, n + 1, memory_order_release);
	return r;
}

static void
drain_start(void *arg)
{
	struct uraid_reactor *r = arg;

	r->drain = spdk_poller_register(drain_poll, r, 50);
}

int
port_runtime_start(void)
{
	struct spdk_thread *app = spdk_get_thread();
	uint32_t here = spdk_env_get_current_core(), core;
	int rc;

	g_ticks_per_us = spdk_get_ticks_hz() / 1000000;
	if (g_ticks_per_us == 0)
		g_ticks_per_us = 1;
	if (reactor_new(app, (int)here, false) == NULL)
		return -ENOMEM;
	drain_start(g_reactors[0]);
	SPDK_ENV_FOREACH_CORE(core)
	{
		struct spdk_cpuset mask;
		struct spdk_thread *t;
		char name[32];

		if (core == here || uraid_reactor_count() == URAID_MAX_REACTORS)
			continue;
		spdk_cpuset_zero(&mask);
		spdk_cpuset_set_cpu(&mask, core, true);
		snprintf(name, sizeof(name), "uraid_%u", core);
		t = spdk_thread_create(name, &mask);
		if (t == NULL || reactor_new(t, (int)core, true) == NULL) {
			LOG_ERR("could not start a thread on core %u", core);
			return -ENOMEM;
		}
		spdk_thread_send_msg(t, drain_start, g_reactors[uraid_reactor_count() - 1]);
	}
	g_owners = uraid_reactor_count();
	STAILQ_INIT(&g_ctl.jobs);
	g_ctl.stop = false;
	rc = pthread_create(&g_ctl.thread, NULL, ctl_main, NULL);
	if (rc != 0)
		return -rc;
	pthread_setname_np(g_ctl.thread, "uraid_control");
	g_ctl.running = true;
	return 0;
}

static void
reactor_exit(void *arg)
{
	struct uraid_reactor *r = arg;

	spdk_poller_unregister(&r->drain);
	if (r->started_here)
		spdk_thread_exit(r->thread);
}

void
port_runtime_stop(void)
{
	if (g_ctl.running) {
		struct timespec until;

		pthread_mutex_lock(&g_ctl.lock);
		g_ctl.stop = true;
		pthread_cond_signal(&g_ctl.cv);
		pthread_mutex_unlock(&g_ctl.lock);
		/* A job still waiting on this (the app) thread would never finish: give up on it
		 * after a while rather than hang the shutdown. */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		if (pthread_timedjoin_np(g_ctl.thread, NULL, &until) != 0)
			LOG_ERR("the control thread is still busy at shutdown");
		g_ctl.running = false;
	}
	for (unsigned i = 0; i < g_owners; i++) {
		if (i == 0)
			reactor_exit(g_reactors[0]);
		else
			spdk_thread_send_msg(g_reactors[i]->thread, reactor_exit, g_reactors[i]);
	}
	g_owners = 0;
}
