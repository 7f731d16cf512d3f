/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers for unit tests that drive bdevs on a manual-poll runtime from the test thread. */
#ifndef URAID_TEST_BDEV_UTIL_H
#define URAID_TEST_BDEV_UTIL_H

#include <time.h>

#include "harness.h"
#include "uraid/array.h"
#include "uraid/bdev_module.h"

struct waiter {
	bool done;
	int status;
	bool in_submit; /* set while the submit call runs: a callback then breaks the contract */
	bool called_inside;
	int calls;
};

static inline void
waiter_cb(void *arg, int status)
{
	struct waiter *w = arg;

	w->calls++;
	w->done = true;
	w->status = status;
	if (w->in_submit)
		w->called_inside = true;
}

/* Poll every reactor until w is done (file I/O completes asynchronously, so sleep a little
 * between idle rounds). Returns false after ~10 s. */
static inline bool
waiter_wait(struct waiter *w)
{
	time_t deadline = time(NULL) + 10;

	while (!w->done && time(NULL) < deadline) {
		if (uraid_runtime_poll_until_idle(1) == 0) {
			struct timespec ts = {0, 20000};

			nanosleep(&ts, NULL);
		}
	}
	return w->done;
}

/* Run fn(arg) on reactor 0 and poll until the runtime is idle. */
static inline void
run_on_reactor(uraid_msg_fn fn, void *arg)
{
	uraid_reactor_send(uraid_reactor_get(0), fn, arg);
	uraid_runtime_poll_until_idle(100000);
}

static inline int
start_manual(unsigned n)
{
	struct uraid_runtime_opts o = {.num_reactors = n, .manual_poll = true};

	return uraid_runtime_start(&o);
}

/* Synchronous I/O on reactor 0, for tests. The test thread acts as reactor 0 between polls:
 * calls are made from inside a message so uraid_reactor_self() is reactor 0. */
enum sync_op { SYNC_READ, SYNC_WRITE, SYNC_FLUSH, SYNC_UNMAP, SYNC_ZEROES, SYNC_RESET };

struct sync_io {
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	enum sync_op op;
	void *buf;
	struct iovec *iov;
	int iovcnt;
	uint64_t offset_blocks, num_blocks;
	uint32_t flags;
	int submit_rc;
	struct waiter w;
};

static inline void
sync_submit_msg(void *arg)
{
	struct sync_io *s = arg;
	uint32_t bs = uraid_bdev_get_block_size(uraid_bdev_desc_get_bdev(s->desc));
	struct iovec one = {s->buf, s->num_blocks * bs};
	struct iovec *iov = s->iov ? s->iov : &one;
	int iovcnt = s->iov ? s->iovcnt : 1;

	s->w.in_submit = true;
	switch (s->op) {
	case SYNC_READ:
		s->submit_rc = uraid_bdev_readv(s->desc, s->ch, iov, iovcnt, s->offset_blocks,
						s->num_blocks, waiter_cb, &s->w);
		break;
	case SYNC_WRITE:
		s->submit_rc = uraid_bdev_writev(s->desc, s->ch, iov, iovcnt, s->offset_blocks,
						 s->num_blocks, s->flags, waiter_cb, &s->w);
		break;
	case SYNC_FLUSH:
		s->submit_rc = uraid_bdev_flush(s->desc, s->ch, waiter_cb, &s->w);
		break;
	case SYNC_UNMAP:
		s->submit_rc = uraid_bdev_unmap(s->desc, s->ch, s->offset_blocks, s->num_blocks,
						waiter_cb, &s->w);
		break;
	case SYNC_ZEROES:
		s->submit_rc = uraid_bdev_write_zeroes(s->desc, s->ch, s->offset_blocks,
						       s->num_blocks, waiter_cb, &s->w);
		break;
	case SYNC_RESET:
		s->submit_rc = uraid_bdev_reset(s->desc, s->ch, waiter_cb, &s->w);
		break;
	}
	s->w.in_submit = false;
}

/* Returns the submit error, or the completion status; CHECKs the submit contract. */
static inline int
sync_io(struct sync_io *s)
{
	memset(&s->w, 0, sizeof(s->w));
	uraid_reactor_send(uraid_reactor_get(0), sync_submit_msg, s);
	uraid_reactor_poll(uraid_reactor_get(0));
	if (s->submit_rc != 0) {
		uraid_runtime_poll_until_idle(100);
		CHECK_EQ(s->w.calls, 0); /* an error return never calls back */
		return s->submit_rc;
	}
	CHECK(waiter_wait(&s->w));
	CHECK(!s->w.called_inside);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(s->w.calls, 1);
	return s->w.status;
}

static inline int
sync_rw(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, enum sync_op op, void *buf,
	uint64_t offset_blocks, uint64_t num_blocks, uint32_t flags)
{
	struct sync_io s = {.desc = desc,
			    .ch = ch,
			    .op = op,
			    .buf = buf,
			    .offset_blocks = offset_blocks,
			    .num_blocks = num_blocks,
			    .flags = flags};

	return sync_io(&s);
}

struct chan_req {
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
};

static inline void
get_chan_msg(void *arg)
{
	struct chan_req *r = arg;

	r->ch = uraid_bdev_get_io_channel(r->desc);
}

static inline void
put_chan_msg(void *arg)
{
	struct chan_req *r = arg;

	uraid_put_io_channel(r->ch);
	r->ch = NULL;
}

static inline struct uraid_io_channel *
test_get_channel(struct uraid_bdev_desc *desc)
{
	struct chan_req r = {desc, NULL};

	run_on_reactor(get_chan_msg, &r);
	return r.ch;
}

static inline void
test_put_channel(struct uraid_io_channel *ch)
{
	struct chan_req r = {NULL, ch};

	run_on_reactor(put_chan_msg, &r);
}

static inline void
unreg_cb(void *arg, int status)
{
	*(int *)arg = status + 1000;
}

/* Unregister a bdev and wait for it to be gone. */
static inline int
test_delete_bdev(const char *name)
{
	struct uraid_bdev *bdev = uraid_bdev_get_by_name(name);
	int got = 0;

	if (bdev == NULL)
		return -ENODEV;
	uraid_bdev_unregister(bdev, unreg_cb, &got);
	for (int i = 0; i < 100000 && got == 0; i++)
		uraid_runtime_poll_until_idle(10);
	return got ? got - 1000 : -ETIMEDOUT;
}

static inline void *
test_alloc(size_t len)
{
	void *p = aligned_alloc(4096, align_up_u64(len, 4096));

	if (p)
		memset(p, 0, len);
	return p;
}

/* Advance the clock and poll until array a runs no rebuild and has no failed member (at most
 * `rounds` milliseconds of its clock); CHECKs that it got there. The array's stats. */
static inline struct uraid_array_stats
wait_rebuilt(struct uraid_bdev *a, int rounds)
{
	struct uraid_array_stats st;
	struct uraid_array_info info;

	for (int i = 0; i < rounds; i++) {
		uraid_runtime_advance_us(1000);
		uraid_runtime_poll_until_idle(100);
		CHECK_EQ(uraid_array_get_info(a, &info), 0);
		if (!info.rebuild.active && info.failed_members == 0)
			break;
	}
	CHECK(!info.rebuild.active);
	CHECK_EQ(info.failed_members, 0);
	CHECK_EQ(uraid_array_get_stats(a, &st), 0);
	return st;
}

#endif
