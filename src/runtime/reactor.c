/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reactors: one loop per core running messages and pollers to completion.
 *
 * Theory of operation. A reactor iteration runs (1) up to a batch of messages from its MPSC
 * ring, (2) every period-0 poller, (3) every timed poller that is due. An iteration that did
 * anything is "busy"; once no iteration has been busy for IDLE_SPIN_US the reactor sleeps in
 * ppoll() on its eventfd, with a timeout of the next timer, so an idle process costs no CPU.
 * The spin is bounded in time, not in iterations: a poller that makes a system call each
 * round (epoll_wait for the NBD sockets) would otherwise spin for milliseconds, taking the
 * core from the clients that share the machine, while 50 us still covers the gap between
 * requests of a client waiting on each answer.
 *
 * Sleep/wake handshake (no lost wake-ups), with sequentially consistent atomics only:
 *
 *     sender                              reactor
 *     enqueue(msg)                        sleeping = 1                      (R1)
 *     notified = 1                (S1)    if (exchange(notified, 0)) skip   (R2)
 *     if (sleeping) write(eventfd) (S2)   else ppoll(eventfd)
 *
 * In the single order of seq_cst operations either S1 comes before R2 (the reactor sees the
 * notice and does not sleep) or R2 before S1, and then R1 < S2, so the sender sees
 * sleeping == 1 and writes the eventfd. S1 also publishes the message: R2 reading it
 * synchronizes with the sender.
 *
 * When a ring is full the message goes to a mutex-protected overflow list, so a send never
 * fails for lack of ring space. To keep per-sender order, once the overflow list is non-empty
 * all senders use it, and the reactor drains it only when the ring is empty.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define MSG_BATCH	  64
#define IDLE_SPIN_US	  50
#define DEFAULT_RING_SIZE 65536

struct uraid_poller {
	uraid_poller_fn fn;
	void *arg;
	uint64_t period_us;
	uint64_t next_us;
	bool dead;
	struct uraid_reactor *reactor;
	TAILQ_ENTRY(uraid_poller) link;
};
TAILQ_HEAD(poller_list, uraid_poller);

struct ovf_msg {
	uraid_msg_fn fn;
	void *arg;
	struct ovf_msg *next;
};

struct uraid_reactor {
	struct msg_ring ring;
	unsigned index;
	int cpu;
	int efd;
	pthread_t thread;
	bool has_thread;
	_Atomic bool stop;
	/* Written by senders on every message (notified) and read by them (sleeping): a line of
	 * their own, not the one the loop reads every round (stop) or the ring's. */
	_Alignas(CACHE_LINE_BYTES) _Atomic int sleeping;
	_Atomic int notified;

	_Alignas(CACHE_LINE_BYTES) pthread_mutex_t ovf_lock;
	struct ovf_msg *ovf_head, *ovf_tail;
	_Atomic uint64_t ovf_count;

	struct poller_list active;
	struct poller_list timed;	  /* sorted by next_us */
	int wake_fds[URAID_MAX_WAKE_FDS]; /* also end a sleep when readable (sockets) */
	unsigned num_wake_fds;
	struct channel_list channels;
	uint64_t ticks; /* uraid_reactor_ticks */
};

struct runtime {
	unsigned num_reactors;
	bool manual;
	_Atomic uint64_t manual_clock_us;
	struct uraid_reactor *reactors[URAID_MAX_REACTORS];
};

static struct runtime *g_rt;
static __thread struct uraid_reactor *t_self;

uint64_t
uraid_now_us(void)
{
	if (g_rt != NULL && g_rt->manual)
		return atomic_load_explicit(&g_rt->manual_clock_us, memory_order_relaxed);
	return mono_ns() / 1000u;
}

void
uraid_runtime_advance_us(uint64_t us)
{
	if (g_rt != NULL && g_rt->manual)
		atomic_fetch_add_explicit(&g_rt->manual_clock_us, us, memory_order_relaxed);
}

unsigned
uraid_reactor_count(void)
{
	return g_rt ? g_rt->num_reactors : 0;
}

unsigned
uraid_owner_count(void)
{
	return uraid_reactor_count();
}

void *
uraid_dma_alloc(size_t align, size_t size)
{
	/* aligned_alloc wants a size that is a multiple of the alignment. */
	return aligned_alloc(align, (size + align - 1) & ~(align - 1));
}

void
uraid_dma_free(void *buf)
{
	free(buf);
}

bool
uraid_runtime_is_manual(void)
{
	return g_rt != NULL && g_rt->manual;
}

struct uraid_reactor *
uraid_reactor_get(unsigned index)
{
	if (g_rt == NULL || index >= g_rt->num_reactors)
		return NULL;
	return g_rt->reactors[index];
}

struct uraid_reactor *
uraid_reactor_self(void)
{
	return t_self;
}

uint64_t
uraid_reactor_ticks(void)
{
	return t_self != NULL ? t_self->ticks : ticks_now();
}

unsigned
uraid_reactor_index(const struct uraid_reactor *reactor)
{
	return reactor->index;
}

bool
uraid_reactor_shares_core(const struct uraid_reactor *reactor)
{
	/* One thread per reactor (manual mode too counts them apart, as its tests mean). */
	return reactor == uraid_reactor_self();
}

struct channel_list *
reactor_channels(struct uraid_reactor *reactor)
{
	return &reactor->channels;
}

static void
reactor_wake(struct uraid_reactor *r)
{
	uint64_t one = 1;

	/* S1 and S2 of the theory of operation. */
	atomic_store_explicit(&r->notified, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&r->sleeping, memory_order_seq_cst)) {
		if (write(r->efd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is saturated, so the reactor is awake anyway. */
		}
	}
}

int
uraid_reactor_send(struct uraid_reactor *r, uraid_msg_fn fn, void *arg)
{
	struct ovf_msg *m;

	if (atomic_load_explicit(&r->ovf_count, memory_order_acquire) == 0 &&
	    msg_ring_enqueue(&r->ring, fn, arg) == 0) {
		reactor_wake(r);
		return 0;
	}
	m = malloc(sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->fn = fn;
	m->arg = arg;
	m->next = NULL;
	pthread_mutex_lock(&r->ovf_lock);
	if (r->ovf_tail)
		r->ovf_tail->next = m;
	else
		r->ovf_head = m;
	r->ovf_tail = m;
	atomic_fetch_add_explicit(&r->ovf_count, 1, memory_order_release);
	pthread_mutex_unlock(&r->ovf_lock);
	reactor_wake(r);
	return 0;
}

static int
reactor_run_overflow(struct uraid_reactor *r)
{
	struct ovf_msg *m, *next;
	int n = 0;

	pthread_mutex_lock(&r->ovf_lock);
	m = r->ovf_head;
	r->ovf_head = r->ovf_tail = NULL;
	atomic_store_explicit(&r->ovf_count, 0, memory_order_release);
	pthread_mutex_unlock(&r->ovf_lock);
	for (; m != NULL; m = next, n++) {
		next = m->next;
		m->fn(m->arg);
		free(m);
	}
	return n;
}

static void
timed_insert(struct uraid_reactor *r, struct uraid_poller *p)
{
	struct uraid_poller *it;

	TAILQ_FOREACH(it, &r->timed, link) {
		if (it->next_us > p->next_us) {
			TAILQ_INSERT_BEFORE(it, p, link);
			return;
		}
	}
	TAILQ_INSERT_TAIL(&r->timed, p, link);
}

struct uraid_poller *
uraid_poller_register(uraid_poller_fn fn, void *arg, uint64_t period_us)
{
	struct uraid_reactor *r = t_self;
	struct uraid_poller *p;

	if (r == NULL)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->fn = fn;
	p->arg = arg;
	p->period_us = period_us;
	p->reactor = r;
	if (period_us == 0) {
		TAILQ_INSERT_TAIL(&r->active, p, link);
	} else {
		p->next_us = uraid_now_us() + period_us;
		timed_insert(r, p);
	}
	return p;
}

int
uraid_reactor_add_wake_fd(int fd)
{
	struct uraid_reactor *r = t_self;

	if (r == NULL)
		return -EINVAL;
	if (r->num_wake_fds == URAID_MAX_WAKE_FDS)
		return -ENOSPC;
	r->wake_fds[r->num_wake_fds++] = fd;
	return 0;
}

void
uraid_reactor_remove_wake_fd(int fd)
{
	struct uraid_reactor *r = t_self;

	if (r == NULL)
		return;
	for (unsigned i = 0; i < r->num_wake_fds; i++) {
		if (r->wake_fds[i] == fd) {
			r->wake_fds[i] = r->wake_fds[--r->num_wake_fds];
			return;
		}
	}
}

void
uraid_poller_unregister(struct uraid_poller **pp)
{
	struct uraid_poller *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	/* Only marked here: the reactor may be iterating the list that holds p. It is unlinked
	 * and freed at the end of the iteration. */
	p->dead = true;
}

static void
reactor_reap_pollers(struct uraid_reactor *r)
{
	struct uraid_poller *p, *tmp;

	TAILQ_FOREACH_SAFE(p, &r->active, link, tmp) {
		if (p->dead) {
			TAILQ_REMOVE(&r->active, p, link);
			free(p);
		}
	}
	TAILQ_FOREACH_SAFE(p, &r->timed, link, tmp) {
		if (p->dead) {
			TAILQ_REMOVE(&r->timed, p, link);
			free(p);
		}
	}
}

static int
reactor_run_once(struct uraid_reactor *r)
{
	struct uraid_poller *p, *tmp;
	uraid_msg_fn fn;
	void *arg;
	int events = 0;
	bool reap = false;

	r->ticks = ticks_now();
	for (int i = 0; i < MSG_BATCH && msg_ring_dequeue(&r->ring, &fn, &arg); i++) {
		fn(arg);
		events++;
	}
	if (events == 0 && atomic_load_explicit(&r->ovf_count, memory_order_acquire) != 0)
		events += reactor_run_overflow(r);
	if (events != 0)
		r->ticks = ticks_now();

	TAILQ_FOREACH_SAFE(p, &r->active, link, tmp) {
		if (p->dead) {
			reap = true;
			continue;
		}
		if (p->fn(p->arg) != URAID_POLLER_IDLE)
			events++;
	}

	if (!TAILQ_EMPTY(&r->timed)) {
		uint64_t now = uraid_now_us();

		while ((p = TAILQ_FIRST(&r->timed)) != NULL && p->next_us <= now) {
			TAILQ_REMOVE(&r->timed, p, link);
			if (p->dead) {
				free(p);
				continue;
			}
			p->next_us = now + p->period_us;
			timed_insert(r, p);
			p->fn(p->arg);
			events++;
		}
	}
	if (reap || events)
		reactor_reap_pollers(r);
	return events;
}

int
uraid_reactor_poll(struct uraid_reactor *r)
{
	struct uraid_reactor *prev = t_self;
	int events;

	t_self = r;
	events = reactor_run_once(r);
	t_self = prev;
	return events;
}

unsigned
uraid_runtime_poll_until_idle(unsigned max_iterations)
{
	unsigned round;

	for (round = 0; round < max_iterations; round++) {
		int events = 0;

		for (unsigned i = 0; i < g_rt->num_reactors; i++)
			events += uraid_reactor_poll(g_rt->reactors[i]);
		if (events == 0)
			break;
	}
	return round;
}

void
uraid_runtime_wait(const _Atomic bool *flag)
{
	struct timespec ts = {0, 50000};

	while (!atomic_load_explicit(flag, memory_order_acquire)) {
		if (g_rt != NULL && g_rt->manual)
			uraid_runtime_poll_until_idle(1);
		else
			nanosleep(&ts, NULL);
	}
}

static void
reactor_sleep(struct uraid_reactor *r)
{
	struct timespec ts, *tsp = NULL;
	struct pollfd pfd[1 + URAID_MAX_WAKE_FDS] = {{.fd = r->efd, .events = POLLIN}};
	struct uraid_poller *first = TAILQ_FIRST(&r->timed);
	uint64_t val;

	/* R1 and R2 of the theory of operation. */
	atomic_store_explicit(&r->sleeping, 1, memory_order_seq_cst);
	if (atomic_exchange_explicit(&r->notified, 0, memory_order_seq_cst) ||
	    !msg_ring_empty(&r->ring) ||
	    atomic_load_explicit(&r->ovf_count, memory_order_relaxed) != 0 ||
	    atomic_load_explicit(&r->stop, memory_order_relaxed))
		goto out;
	if (first != NULL) {
		uint64_t now = uraid_now_us();
		uint64_t wait_us = first->next_us > now ? first->next_us - now : 0;

		ts.tv_sec = (time_t)(wait_us / 1000000u);
		ts.tv_nsec = (long)(wait_us % 1000000u) * 1000;
		tsp = &ts;
	}
	for (unsigned i = 0; i < r->num_wake_fds; i++)
		pfd[1 + i] = (struct pollfd){.fd = r->wake_fds[i], .events = POLLIN};
	if (ppoll(pfd, 1 + r->num_wake_fds, tsp, NULL) > 0 && (pfd[0].revents & POLLIN)) {
		if (read(r->efd, &val, sizeof(val)) < 0) {
			/* EAGAIN: another wake-up already drained it. */
		}
	}
out:
	atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
}

static void *
reactor_thread(void *arg)
{
	struct uraid_reactor *r = arg;
	uint64_t idle_since = 0; /* ns: the first idle round since the last busy one; 0: busy */

	t_self = r;
	if (r->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(r->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
			LOG_WARNING("reactor %u: cannot pin to cpu %d; running unpinned", r->index,
				    r->cpu);
	}
	while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
		uint64_t now;

		if (reactor_run_once(r) != 0) {
			idle_since = 0;
			continue;
		}
		/* (The clock only in idle rounds, and no tick rate to calibrate at start.) */
		now = mono_ns();
		if (idle_since == 0)
			idle_since = now;
		if (now - idle_since < IDLE_SPIN_US * 1000u)
			continue;
		reactor_sleep(r);
		idle_since = 0;
	}
	/* Run what was queued before the stop. */
	while (reactor_run_once(r) != 0)
		;
	return NULL;
}

static void
reactor_free(struct uraid_reactor *r)
{
	struct uraid_poller *p;

	if (r == NULL)
		return;
	channel_reactor_fini(r);
	reactor_reap_pollers(r);
	while ((p = TAILQ_FIRST(&r->active)) != NULL) {
		TAILQ_REMOVE(&r->active, p, link);
		free(p);
	}
	while ((p = TAILQ_FIRST(&r->timed)) != NULL) {
		TAILQ_REMOVE(&r->timed, p, link);
		free(p);
	}
	if (r->efd >= 0)
		close(r->efd);
	pthread_mutex_destroy(&r->ovf_lock);
	msg_ring_fini(&r->ring);
	free(r);
}

static int
reactor_create(unsigned index, int cpu, unsigned ring_entries, struct uraid_reactor **out)
{
	struct uraid_reactor *r =
		aligned_alloc(CACHE_LINE_BYTES, align_up_u64(sizeof(*r), CACHE_LINE_BYTES));
	int rc;

	if (r == NULL)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->index = index;
	r->cpu = cpu;
	TAILQ_INIT(&r->active);
	TAILQ_INIT(&r->timed);
	TAILQ_INIT(&r->channels);
	pthread_mutex_init(&r->ovf_lock, NULL);
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0) {
		rc = -errno;
		goto err_eventfd;
	}
	rc = msg_ring_init(&r->ring, ring_entries);
	if (rc != 0)
		goto err_ring;
	*out = r;
	return 0;

err_ring:
	close(r->efd);
err_eventfd:
	pthread_mutex_destroy(&r->ovf_lock);
	free(r);
	return rc;
}

int
uraid_runtime_start(const struct uraid_runtime_opts *opts)
{
	unsigned entries = opts->msg_ring_entries ? opts->msg_ring_entries : DEFAULT_RING_SIZE;
	struct runtime *rt;
	int rc;

	if (g_rt != NULL)
		return -EBUSY;
	if (opts->num_reactors == 0 || opts->num_reactors > URAID_MAX_REACTORS ||
	    !is_pow2_u64(entries))
		return -EINVAL;
	rt = calloc(1, sizeof(*rt));
	if (rt == NULL)
		return -ENOMEM;
	rt->num_reactors = opts->num_reactors;
	rt->manual = opts->manual_poll;
	for (unsigned i = 0; i < rt->num_reactors; i++) {
		int cpu = opts->cpus ? opts->cpus[i] : -1;

		rc = reactor_create(i, cpu, entries, &rt->reactors[i]);
		if (rc != 0)
			goto err;
	}
	g_rt = rt;
	if (rt->manual)
		return 0;
	for (unsigned i = 0; i < rt->num_reactors; i++) {
		struct uraid_reactor *r = rt->reactors[i];

		rc = -pthread_create(&r->thread, NULL, reactor_thread, r);
		if (rc != 0)
			goto err_threads;
		r->has_thread = true;
	}
	return 0;

err_threads:
	uraid_runtime_stop();
	return rc;
err:
	for (unsigned i = 0; i < rt->num_reactors; i++)
		reactor_free(rt->reactors[i]);
	free(rt);
	return rc;
}

void
uraid_runtime_stop(void)
{
	struct runtime *rt = g_rt;

	if (rt == NULL)
		return;
	for (unsigned i = 0; i < rt->num_reactors; i++) {
		struct uraid_reactor *r = rt->reactors[i];

		atomic_store_explicit(&r->stop, true, memory_order_release);
		reactor_wake(r);
	}
	for (unsigned i = 0; i < rt->num_reactors; i++) {
		if (rt->reactors[i]->has_thread)
			pthread_join(rt->reactors[i]->thread, NULL);
	}
	if (rt->manual)
		uraid_runtime_poll_until_idle(1000);
	for (unsigned i = 0; i < rt->num_reactors; i++)
		reactor_free(rt->reactors[i]);
	g_rt = NULL;
	free(rt);
}
