/* SPDX-License-Identifier: BSD-3-Clause */
/* Runtime: message rings (incl. a multi-threaded stress), reactors, pollers, timers, channels. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bdev_util.h"
#include "runtime/runtime.h"

static void
nop_msg(void *arg UNUSED)
{
}

static void
test_ring_basic(void)
{
	struct msg_ring ring;
	uraid_msg_fn fn;
	void *arg;

	CHECK_EQ(msg_ring_init(&ring, 3), -EINVAL);
	REQUIRE(msg_ring_init(&ring, 8) == 0);
	CHECK(msg_ring_empty(&ring));
	CHECK(!msg_ring_dequeue(&ring, &fn, &arg));
	/* Several laps around the ring, with the ring filled to the brim each lap. */
	for (uintptr_t lap = 0; lap < 5; lap++) {
		for (uintptr_t i = 0; i < 8; i++)
			CHECK_EQ(msg_ring_enqueue(&ring, nop_msg, (void *)(lap * 100 + i)), 0);
		CHECK_EQ(msg_ring_enqueue(&ring, nop_msg, NULL), -EAGAIN);
		for (uintptr_t i = 0; i < 8; i++) {
			REQUIRE(msg_ring_dequeue(&ring, &fn, &arg));
			CHECK(fn == nop_msg);
			CHECK_EQ((uintptr_t)arg, lap * 100 + i);
		}
		CHECK(msg_ring_empty(&ring));
	}
	msg_ring_fini(&ring);
}

#define STRESS_PRODUCERS 4
#define STRESS_MSGS	 200000

struct stress {
	struct msg_ring ring;
	_Atomic int started;
};

struct producer {
	struct stress *st;
	uintptr_t id;
	uint64_t full;
};

static void *
producer_main(void *arg)
{
	struct producer *p = arg;

	atomic_fetch_add(&p->st->started, 1);
	for (uintptr_t i = 0; i < STRESS_MSGS; i++) {
		while (msg_ring_enqueue(&p->st->ring, nop_msg, (void *)((p->id << 32) | i)) != 0)
			p->full++;
	}
	return NULL;
}

/* Producers on other threads, one consumer: nothing lost or duplicated, and each producer's
 * messages arrive in the order sent. Run under TSAN=1 this also checks the ring's ordering. */
static void
test_ring_mpsc_stress(void)
{
	struct stress st = {0};
	struct producer prod[STRESS_PRODUCERS];
	pthread_t th[STRESS_PRODUCERS];
	uint64_t next[STRESS_PRODUCERS] = {0};
	uint64_t total = 0;
	uraid_msg_fn fn;
	void *arg;

	REQUIRE(msg_ring_init(&st.ring, 1024) == 0);
	for (int i = 0; i < STRESS_PRODUCERS; i++) {
		prod[i] = (struct producer){&st, (uintptr_t)i, 0};
		pthread_create(&th[i], NULL, producer_main, &prod[i]);
	}
	while (total < (uint64_t)STRESS_PRODUCERS * STRESS_MSGS) {
		if (!msg_ring_dequeue(&st.ring, &fn, &arg))
			continue;
		uintptr_t v = (uintptr_t)arg;
		uint64_t id = v >> 32, seq = v & 0xffffffffu;

		if (id >= STRESS_PRODUCERS || seq != next[id]) {
			CHECK(id < STRESS_PRODUCERS && seq == next[id]);
			break;
		}
		next[id]++;
		total++;
	}
	for (int i = 0; i < STRESS_PRODUCERS; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(total, (uint64_t)STRESS_PRODUCERS * STRESS_MSGS);
	CHECK(!msg_ring_dequeue(&st.ring, &fn, &arg));
	msg_ring_fini(&st.ring);
}

struct order_log {
	int seen[1000];
	int n;
	bool inside_send;
	bool ran_inside;
};

static struct order_log g_log;

static void
log_msg_fn(void *arg)
{
	if (g_log.inside_send)
		g_log.ran_inside = true;
	g_log.seen[g_log.n++] = (int)(uintptr_t)arg;
}

static void
send_from_reactor(void *arg UNUSED)
{
	g_log.inside_send = true;
	uraid_reactor_send(uraid_reactor_self(), log_msg_fn, (void *)1);
	g_log.inside_send = false;
}

/* A message to one's own reactor runs later, never inside the send; order is kept, also
 * through the overflow list when the ring is full. */
static void
test_reactor_messages(void)
{
	struct uraid_runtime_opts o = {
		.num_reactors = 2, .manual_poll = true, .msg_ring_entries = 4};

	memset(&g_log, 0, sizeof(g_log));
	REQUIRE(uraid_runtime_start(&o) == 0);
	CHECK_EQ(uraid_reactor_count(), 2);
	CHECK(uraid_reactor_self() == NULL);
	CHECK_EQ(uraid_runtime_start(&o), -EBUSY);
	uraid_reactor_send(uraid_reactor_get(0), send_from_reactor, NULL);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(g_log.n, 1);
	CHECK(!g_log.ran_inside);

	g_log.n = 0;
	for (uintptr_t i = 0; i < 100; i++)
		CHECK_EQ(uraid_reactor_send(uraid_reactor_get(1), log_msg_fn, (void *)i), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(g_log.n, 100);
	for (int i = 0; i < g_log.n; i++)
		CHECK_EQ(g_log.seen[i], i);
	uraid_runtime_stop();
	CHECK_EQ(uraid_reactor_count(), 0);
}

struct poll_ctx {
	int runs;
	int stop_after;
	struct uraid_poller *self;
};

static int
counting_poller(void *arg)
{
	struct poll_ctx *c = arg;

	if (++c->runs == c->stop_after)
		uraid_poller_unregister(&c->self);
	return URAID_POLLER_BUSY;
}

static void
register_pollers(void *arg)
{
	struct poll_ctx *c = arg;

	c[0].self = uraid_poller_register(counting_poller, &c[0], 0);
	c[1].self = uraid_poller_register(counting_poller, &c[1], 1000);
}

/* Pollers: period 0 runs every iteration; timed pollers run when the (manual) clock says so;
 * a poller may unregister itself. */
static void
test_pollers_and_timers(void)
{
	struct poll_ctx c[2] = {{0, 5, NULL}, {0, 3, NULL}};

	REQUIRE(start_manual(1) == 0);
	CHECK(uraid_poller_register(counting_poller, &c[0], 0) == NULL); /* not on a reactor */
	uraid_reactor_send(uraid_reactor_get(0), register_pollers, c);
	uraid_reactor_poll(uraid_reactor_get(0));
	for (int i = 0; i < 20; i++)
		uraid_reactor_poll(uraid_reactor_get(0));
	CHECK_EQ(c[0].runs, 5); /* unregistered itself at 5 */
	CHECK_EQ(c[1].runs, 0); /* clock has not moved */
	uraid_runtime_advance_us(999);
	uraid_reactor_poll(uraid_reactor_get(0));
	CHECK_EQ(c[1].runs, 0);
	uraid_runtime_advance_us(1);
	uraid_reactor_poll(uraid_reactor_get(0));
	uraid_reactor_poll(uraid_reactor_get(0));
	CHECK_EQ(c[1].runs, 1);
	for (int i = 0; i < 10; i++) {
		uraid_runtime_advance_us(1000);
		uraid_reactor_poll(uraid_reactor_get(0));
	}
	CHECK_EQ(c[1].runs, 3);
	uraid_runtime_stop();
}

/* --- channels --- */

static int g_dev;
static int g_creates, g_destroys, g_unregistered;

struct chan_ctx {
	int reactor;
	int visits;
};

static int
chan_create(void *dev, void *ctx)
{
	struct chan_ctx *c = ctx;

	CHECK(dev == &g_dev);
	c->reactor = (int)uraid_reactor_index(uraid_reactor_self());
	g_creates++;
	return 0;
}

static void
chan_destroy(void *dev UNUSED, void *ctx UNUSED)
{
	g_destroys++;
}

static struct uraid_io_channel *g_ch[2];
static int g_iter_order[8], g_iter_n, g_cpl_status = 99, g_cpl_reactor = -1;

static void
get_ch_msg(void *arg)
{
	int i = (int)(uintptr_t)arg;

	g_ch[i] = uraid_get_io_channel(&g_dev);
	/* A second get on the same reactor shares the channel. */
	struct uraid_io_channel *again = uraid_get_io_channel(&g_dev);

	CHECK(again == g_ch[i]);
	uraid_put_io_channel(again);
}

static void
put_ch_msg(void *arg)
{
	int i = (int)(uintptr_t)arg;

	uraid_put_io_channel(g_ch[i]);
}

static void
visit(struct uraid_channel_iter *it)
{
	struct chan_ctx *c = uraid_io_channel_get_ctx(uraid_channel_iter_get_channel(it));

	CHECK_EQ(c->reactor, (int)uraid_reactor_index(uraid_reactor_self()));
	c->visits++;
	g_iter_order[g_iter_n++] = c->reactor;
	uraid_for_each_channel_continue(it, *(int *)uraid_channel_iter_get_ctx(it));
}

static void
visit_cpl(struct uraid_channel_iter *it UNUSED, int status)
{
	g_cpl_status = status;
	g_cpl_reactor = (int)uraid_reactor_index(uraid_reactor_self());
}

static void
start_walk(void *arg)
{
	uraid_for_each_channel(&g_dev, visit, arg, visit_cpl);
}

static void
on_unregistered(void *dev)
{
	CHECK(dev == &g_dev);
	g_unregistered++;
}

static void
test_channels(void)
{
	int status = 0;

	g_creates = g_destroys = g_unregistered = 0;
	REQUIRE(start_manual(3) == 0);
	uraid_io_device_register(&g_dev, chan_create, chan_destroy, sizeof(struct chan_ctx), "dev");
	CHECK(uraid_get_io_channel(&g_dev) == NULL); /* not on a reactor */
	uraid_reactor_send(uraid_reactor_get(0), get_ch_msg, (void *)0);
	uraid_reactor_send(uraid_reactor_get(2), get_ch_msg, (void *)1);
	uraid_runtime_poll_until_idle(100);
	REQUIRE(g_ch[0] && g_ch[1]);
	CHECK_EQ(g_creates, 2);
	CHECK(uraid_io_channel_get_reactor(g_ch[1]) == uraid_reactor_get(2));
	CHECK(uraid_io_channel_from_ctx(uraid_io_channel_get_ctx(g_ch[0])) == g_ch[0]);

	/* The walk visits reactors 0 and 2 (1 has no channel), completes on the origin. */
	g_iter_n = 0;
	uraid_reactor_send(uraid_reactor_get(1), start_walk, &status);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(g_iter_n, 2);
	CHECK_EQ(g_iter_order[0], 0);
	CHECK_EQ(g_iter_order[1], 2);
	CHECK_EQ(g_cpl_status, 0);
	CHECK_EQ(g_cpl_reactor, 1);

	/* A non-zero status stops the walk. */
	status = -5;
	g_iter_n = 0;
	uraid_reactor_send(uraid_reactor_get(1), start_walk, &status);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(g_iter_n, 1);
	CHECK_EQ(g_cpl_status, -5);

	/* Unregister waits for the channels. */
	uraid_io_device_unregister(&g_dev, on_unregistered);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(g_unregistered, 0);
	uraid_reactor_send(uraid_reactor_get(0), put_ch_msg, (void *)0);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(g_destroys, 1);
	CHECK_EQ(g_unregistered, 0);
	uraid_reactor_send(uraid_reactor_get(2), put_ch_msg, (void *)1);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(g_destroys, 2);
	CHECK_EQ(g_unregistered, 1);
	uraid_runtime_stop();
}

/* --- threads --- */

struct ping {
	_Atomic int count;
	int reactor_seen;
};

static void
ping_msg(void *arg)
{
	struct ping *p = arg;

	p->reactor_seen = (int)uraid_reactor_index(uraid_reactor_self());
	atomic_fetch_add(&p->count, 1);
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Real threads: messages reach sleeping reactors (eventfd wake-up), and idle reactors use
 * (almost) no CPU. */
static void
test_threads_wake_and_idle(void)
{
	struct uraid_runtime_opts o = {.num_reactors = 2};
	struct ping p = {0};
	struct timespec ts = {0, 300000000};
	double cpu0, cpu1;

	REQUIRE(uraid_runtime_start(&o) == 0);
	nanosleep(&ts, NULL); /* let both reactors fall asleep */
	cpu0 = cpu_seconds();
	nanosleep(&ts, NULL);
	cpu1 = cpu_seconds();
	/* 0.3 s of two idle reactors: a spinning one would burn ~0.6 s of CPU. */
	CHECK(cpu1 - cpu0 < 0.05);
	for (int round = 0; round < 50; round++) {
		int want = round + 1;

		uraid_reactor_send(uraid_reactor_get((unsigned)round % 2), ping_msg, &p);
		for (int i = 0; i < 100000 && atomic_load(&p.count) < want; i++) {
			struct timespec t = {0, 10000};

			nanosleep(&t, NULL);
		}
		CHECK_EQ(atomic_load(&p.count), want);
		if (round == 0)
			nanosleep(&ts, NULL); /* once more from deep sleep */
	}
	uraid_runtime_stop();
}

/* Send fn(arg) to reactor 0, then wait up to 1 s for it to set *setup (set) or clear it
 * (!set); *setup's value then. */
static int
on_reactor0(uraid_msg_fn fn, void *arg, _Atomic int *setup, bool set)
{
	uraid_reactor_send(uraid_reactor_get(0), fn, arg);
	for (int i = 0; i < 1000 && (atomic_load(setup) != 0) != set; i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	return atomic_load(setup);
}

/* A sleeping reactor wakes when a registered fd becomes readable, and its poller reads it;
 * without the registration it would sleep on (no message, no timer). */
struct wake_fd_state {
	int fds[2];
	struct uraid_poller *poller;
	_Atomic int bytes;
	_Atomic int setup; /* 1 = registered, -1 = failed */
};

static int
wake_fd_poll(void *arg)
{
	struct wake_fd_state *w = arg;
	char buf[16];
	ssize_t n = read(w->fds[0], buf, sizeof(buf));

	if (n <= 0)
		return URAID_POLLER_IDLE;
	atomic_fetch_add(&w->bytes, (int)n);
	return URAID_POLLER_BUSY;
}

static void
wake_fd_setup(void *arg)
{
	struct wake_fd_state *w = arg;

	w->poller = uraid_poller_register(wake_fd_poll, w, 0);
	atomic_store(&w->setup,
		     w->poller != NULL && uraid_reactor_add_wake_fd(w->fds[0]) == 0 ? 1 : -1);
}

static void
wake_fd_teardown(void *arg)
{
	struct wake_fd_state *w = arg;

	uraid_reactor_remove_wake_fd(w->fds[0]);
	uraid_poller_unregister(&w->poller);
	atomic_store(&w->setup, 0);
}

static void
test_threads_wake_fd(void)
{
	struct uraid_runtime_opts o = {.num_reactors = 1};
	struct wake_fd_state w = {0};
	struct timespec ts = {0, 200000000};

	CHECK_EQ(uraid_reactor_add_wake_fd(0), -EINVAL); /* not a reactor */
	REQUIRE(pipe2(w.fds, O_NONBLOCK | O_CLOEXEC) == 0);
	REQUIRE(uraid_runtime_start(&o) == 0);
	CHECK_EQ(on_reactor0(wake_fd_setup, &w, &w.setup, true), 1);
	for (int round = 1; round <= 5; round++) {
		nanosleep(&ts, NULL); /* asleep by now */
		CHECK_EQ(write(w.fds[1], "x", 1), 1);
		for (int i = 0; i < 2000 && atomic_load(&w.bytes) < round; i++)
			nanosleep(&(struct timespec){0, 1000000}, NULL);
		CHECK_EQ(atomic_load(&w.bytes), round);
	}
	on_reactor0(wake_fd_teardown, &w, &w.setup, false);
	uraid_runtime_stop();
	close(w.fds[0]);
	close(w.fds[1]);
}

/* An idle reactor stops spinning after a bounded time, not a count of rounds: a poller whose
 * every call costs a system call's worth of time (epoll_wait on NBD sockets) must not keep a
 * core busy for thousands of rounds after each request. */
struct slow_idle_state {
	struct uraid_poller *poller;
	_Atomic int calls;
	_Atomic int setup;
};

static int
slow_idle_poll(void *arg)
{
	struct slow_idle_state *st = arg;
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do /* 10 us of work that finds nothing */
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 10000);
	atomic_fetch_add(&st->calls, 1);
	return URAID_POLLER_IDLE;
}

static void
slow_idle_setup(void *arg)
{
	struct slow_idle_state *st = arg;

	st->poller = uraid_poller_register(slow_idle_poll, st, 0);
	atomic_store(&st->setup, st->poller != NULL ? 1 : -1);
}

static void
slow_idle_teardown(void *arg)
{
	struct slow_idle_state *st = arg;

	uraid_poller_unregister(&st->poller);
	atomic_store(&st->setup, 0);
}

static void
test_threads_spin_bounded_in_time(void)
{
	struct uraid_runtime_opts o = {.num_reactors = 1};
	struct slow_idle_state st = {0};
	struct ping p = {0};
	int most = 0;

	REQUIRE(uraid_runtime_start(&o) == 0);
	REQUIRE(on_reactor0(slow_idle_setup, &st, &st.setup, true) == 1);
	for (int round = 1; round <= 10; round++) {
		int before;

		nanosleep(&(struct timespec){0, 30000000}, NULL); /* asleep by now */
		before = atomic_load(&st.calls);
		uraid_reactor_send(uraid_reactor_get(0), ping_msg, &p);
		nanosleep(&(struct timespec){0, 30000000}, NULL);
		CHECK_EQ(atomic_load(&p.count), round);
		if (atomic_load(&st.calls) - before > most)
			most = atomic_load(&st.calls) - before;
	}
	/* A 50 us spin is ~5 calls; a spin of 2048 rounds would be 2048 (20 ms). Preemption
	 * only makes fewer calls fit, so the bound holds on a loaded machine. */
	CHECK(most >= 1);
	CHECK(most <= 100);
	on_reactor0(slow_idle_teardown, &st, &st.setup, false);
	uraid_runtime_stop();
}

TEST_MAIN(TEST(test_ring_basic), TEST(test_ring_mpsc_stress), TEST(test_reactor_messages),
	  TEST(test_pollers_and_timers), TEST(test_channels), TEST(test_threads_wake_and_idle),
	  TEST(test_threads_wake_fd), TEST(test_threads_spin_bounded_in_time))
