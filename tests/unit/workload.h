/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A random workload for array tests, driven from the test thread over REACTORS manual-poll
 * reactors: writes of random size with FUA now and then, reads checked against a model of
 * what was written, flushes, unmap and zeroes; scattered and misaligned iovecs; ops in flight
 * never overlap, so the model is exact. Define REACTORS before including.
 */
#ifndef URAID_TEST_WORKLOAD_H
#define URAID_TEST_WORKLOAD_H

#include <stdlib.h>

#include "bdev_util.h"

struct wl;

struct wl_op {
	struct wl *wl;
	unsigned reactor;
	enum sync_op type;
	uint64_t lba, num;
	uint8_t *buf;
	struct iovec iov[3];
	int iovcnt;
};

struct wl {
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch[REACTORS];
	uint32_t bs;
	uint64_t blocks;
	uint8_t *model;
	uint8_t *busy;
	unsigned inflight;
	uint64_t done, errors, mismatches;
	bool zeroes_ok;
	int expect_status; /* 0, or -EIO when the array is expected to fail I/O */
	unsigned pin;	   /* 0: ops on random reactors; else all on reactor pin - 1 */
};

static inline void
wl_done(void *arg, int status)
{
	struct wl_op *op = arg;
	struct wl *wl = op->wl;
	uint64_t len = op->num * wl->bs;

	if (status != wl->expect_status) {
		if (wl->errors++ < 5)
			fprintf(stderr, "op %d at %lu+%lu: status %d, expected %d\n", op->type,
				(unsigned long)op->lba, (unsigned long)op->num, status,
				wl->expect_status);
	} else if (status == 0) {
		if (op->type == SYNC_WRITE)
			memcpy(wl->model + op->lba * wl->bs, op->buf, len);
		else if (op->type == SYNC_ZEROES || op->type == SYNC_UNMAP)
			memset(wl->model + op->lba * wl->bs, 0, len);
		else if (op->type == SYNC_READ &&
			 memcmp(wl->model + op->lba * wl->bs, op->buf, len)) {
			if (wl->mismatches++ < 5) {
				uint64_t b = 0;

				while (memcmp(wl->model + (op->lba + b) * wl->bs,
					      op->buf + b * wl->bs, wl->bs) == 0)
					b++;
				fprintf(stderr,
					"read at %lu+%lu differs from the model at block %lu\n",
					(unsigned long)op->lba, (unsigned long)op->num,
					(unsigned long)(op->lba + b));
			}
		}
	}
	if (op->type != SYNC_FLUSH)
		memset(wl->busy + op->lba, 0, op->num);
	wl->done++;
	wl->inflight--;
	free(op->buf);
	free(op);
}

static inline void
wl_submit_msg(void *arg)
{
	struct wl_op *op = arg;
	struct wl *wl = op->wl;
	struct uraid_io_channel *ch = wl->ch[op->reactor];
	int rc = -EINVAL;

	switch (op->type) {
	case SYNC_READ:
		rc = uraid_bdev_readv(wl->desc, ch, op->iov, op->iovcnt, op->lba, op->num, wl_done,
				      op);
		break;
	case SYNC_WRITE:
		rc = uraid_bdev_writev(wl->desc, ch, op->iov, op->iovcnt, op->lba, op->num,
				       test_rand_below(10) == 0 ? URAID_IO_FUA : 0, wl_done, op);
		break;
	case SYNC_FLUSH:
		rc = uraid_bdev_flush(wl->desc, ch, wl_done, op);
		break;
	case SYNC_ZEROES:
		rc = uraid_bdev_write_zeroes(wl->desc, ch, op->lba, op->num, wl_done, op);
		break;
	case SYNC_UNMAP:
		rc = uraid_bdev_unmap(wl->desc, ch, op->lba, op->num, wl_done, op);
		break;
	default:
		break;
	}
	if (rc != 0) {
		fprintf(stderr, "submit failed: %d\n", rc);
		wl->errors++;
		wl->inflight--;
		if (op->type != SYNC_FLUSH)
			memset(wl->busy + op->lba, 0, op->num);
		free(op->buf);
		free(op);
	}
}

/* One random op on a free range; false if the chosen range was busy. */
static inline bool
wl_issue(struct wl *wl, uint64_t max_blocks)
{
	struct wl_op *op = calloc(1, sizeof(*op));
	uint64_t r = test_rand_below(100);

	op->wl = wl;
	op->reactor = wl->pin ? wl->pin - 1 : (unsigned)test_rand_below(REACTORS);
	op->type = r < 45   ? SYNC_WRITE
		   : r < 88 ? SYNC_READ
		   : r < 92 ? SYNC_FLUSH
		   : r < 96 ? SYNC_ZEROES
			    : SYNC_UNMAP;
	if (!wl->zeroes_ok && (op->type == SYNC_ZEROES || op->type == SYNC_UNMAP))
		op->type = SYNC_WRITE;
	if (op->type != SYNC_FLUSH) {
		op->num = 1 + test_rand_below(max_blocks < wl->blocks ? max_blocks : wl->blocks);
		op->lba = test_rand_below(wl->blocks - op->num + 1);
		for (uint64_t b = 0; b < op->num; b++) {
			if (wl->busy[op->lba + b]) {
				free(op);
				return false;
			}
		}
		memset(wl->busy + op->lba, 1, op->num);
	}
	if (op->type == SYNC_READ || op->type == SYNC_WRITE) {
		uint64_t len = op->num * wl->bs, cut1, cut2;
		/* Sometimes misaligned, and split in up to three iovecs at block-unaligned points.
		 */
		unsigned shift = test_rand_below(4) == 0 ? 8 : 0;

		op->buf = aligned_alloc(64, align_up_u64(len + 64, 64));
		cut1 = test_rand_below(len + 1);
		cut2 = cut1 + test_rand_below(len - cut1 + 1);
		op->iov[0] = (struct iovec){op->buf + shift, cut1};
		op->iov[1] = (struct iovec){op->buf + shift + cut1, cut2 - cut1};
		op->iov[2] = (struct iovec){op->buf + shift + cut2, len - cut2};
		op->iovcnt = 3;
		if (shift) {
			/* keep the model's view simple: data lives at op->buf */
			op->iov[0] = (struct iovec){op->buf, len};
			op->iovcnt = 1;
		}
		if (op->iov[0].iov_len == 0 || op->iov[1].iov_len == 0 || op->iov[2].iov_len == 0) {
			op->iov[0] = (struct iovec){op->buf, len};
			op->iovcnt = 1;
		}
		if (op->type == SYNC_WRITE) {
			for (uint64_t i = 0; i < len; i += 8) {
				uint64_t v = test_rand();

				memcpy(op->buf + i, &v, 8);
			}
		} else {
			memset(op->buf, 0x5c, len);
		}
	}
	wl->inflight++;
	uraid_reactor_send(uraid_reactor_get(op->reactor), wl_submit_msg, op);
	return true;
}

static inline void
get_channel_msg(void *arg)
{
	struct wl *wl = arg;
	unsigned r = uraid_reactor_index(uraid_reactor_self());

	wl->ch[r] = uraid_bdev_get_io_channel(wl->desc);
}

static inline void
put_channel_msg(void *arg)
{
	struct wl *wl = arg;
	unsigned r = uraid_reactor_index(uraid_reactor_self());

	uraid_put_io_channel(wl->ch[r]);
	wl->ch[r] = NULL;
}

static inline bool
wl_open(struct wl *wl, const char *name)
{
	struct uraid_bdev *b;

	memset(wl, 0, sizeof(*wl));
	if (uraid_bdev_open(name, true, NULL, NULL, &wl->desc) != 0)
		return false;
	b = uraid_bdev_desc_get_bdev(wl->desc);
	wl->bs = uraid_bdev_get_block_size(b);
	wl->blocks = uraid_bdev_get_num_blocks(b);
	wl->model = calloc(wl->blocks, wl->bs);
	wl->busy = calloc(wl->blocks, 1);
	wl->zeroes_ok = uraid_bdev_io_type_supported(b, URAID_IO_WRITE_ZEROES) &&
			uraid_bdev_io_type_supported(b, URAID_IO_UNMAP);
	for (unsigned r = 0; r < REACTORS; r++)
		uraid_reactor_send(uraid_reactor_get(r), get_channel_msg, wl);
	uraid_runtime_poll_until_idle(1000);
	for (unsigned r = 0; r < REACTORS; r++) {
		if (wl->ch[r] == NULL)
			return false;
	}
	return true;
}

static inline void
wl_close(struct wl *wl)
{
	for (unsigned r = 0; r < REACTORS; r++)
		uraid_reactor_send(uraid_reactor_get(r), put_channel_msg, wl);
	uraid_runtime_poll_until_idle(1000);
	uraid_bdev_close(wl->desc);
	free(wl->model);
	free(wl->busy);
}

static inline void
wl_drain(struct wl *wl)
{
	for (int i = 0; i < 1000000 && wl->inflight; i++)
		uraid_runtime_poll_until_idle(1);
	CHECK_EQ(wl->inflight, 0);
}

/* ops random ops, qd in flight; at op fail_at (if any) call fail(). */
static inline void
wl_run(struct wl *wl, unsigned ops, unsigned qd, uint64_t max_blocks, unsigned fail_at,
       void (*fail)(void))
{
	unsigned issued = 0, stalls = 0;

	while (issued < ops) {
		if (fail && issued == fail_at) {
			fail();
			fail = NULL;
		}
		if (wl->inflight < qd && wl_issue(wl, max_blocks)) {
			issued++;
			continue;
		}
		if (uraid_runtime_poll_until_idle(1) == 0 && ++stalls > 100000)
			break;
	}
	wl_drain(wl);
}

/* Read the whole array back, in strip-sized and odd-sized pieces, against the model. */
static inline void
wl_verify_all(struct wl *wl)
{
	uint64_t lba = 0;

	while (lba < wl->blocks) {
		uint64_t n = 1 + test_rand_below(64);
		struct wl_op *op = calloc(1, sizeof(*op));

		if (n > wl->blocks - lba)
			n = wl->blocks - lba;
		op->wl = wl;
		op->type = SYNC_READ;
		op->lba = lba;
		op->num = n;
		op->reactor = (unsigned)test_rand_below(REACTORS);
		op->buf = aligned_alloc(64, align_up_u64(n * wl->bs, 64));
		op->iov[0] = (struct iovec){op->buf, n * wl->bs};
		op->iovcnt = 1;
		memset(wl->busy + lba, 1, n);
		wl->inflight++;
		uraid_reactor_send(uraid_reactor_get(op->reactor), wl_submit_msg, op);
		lba += n;
		while (wl->inflight >= 16)
			uraid_runtime_poll_until_idle(1);
	}
	wl_drain(wl);
}

/* --- arrays of fault bdevs "f<i>" over ram bdevs "m<i>", and scrubs from the test thread --- */

#include "bdev/bdev_priv.h"
#include "uraid/array.h"

static char g_fault_names[40][16];
static const char *g_fault_ptrs[40];

static inline void
fault_members_create(unsigned n, uint64_t blocks, uint32_t bs)
{
	for (unsigned i = 0; i < n; i++) {
		struct fault_bdev_opts fo = {0};
		struct uraid_bdev *b;
		char ram[16];

		snprintf(ram, sizeof(ram), "m%u", i);
		snprintf(g_fault_names[i], sizeof(g_fault_names[i]), "f%u", i);
		fo.name = g_fault_names[i];
		fo.base_name = ram;
		CHECK_EQ(ram_bdev_create(ram, blocks, bs, NULL, &b), 0);
		CHECK_EQ(fault_bdev_create(&fo, &b), 0);
		g_fault_ptrs[i] = g_fault_names[i];
	}
}

static inline void
fault_members_delete(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char ram[16];

		snprintf(ram, sizeof(ram), "m%u", i);
		CHECK_EQ(test_delete_bdev(g_fault_names[i]), 0);
		CHECK_EQ(test_delete_bdev(ram), 0);
	}
}

/* Writes to blocks [off, +num) (num 0: anywhere) of fault members f0..f<n-1> take us
 * microseconds each from now on; us 0: the members' rules are cleared. */
static inline void
fault_members_slow(unsigned n, uint64_t off, uint64_t num, uint64_t us)
{
	const struct fault_rule_opts o = {.io_type_mask = 1u << URAID_IO_WRITE,
					  .kind = FAULT_LATENCY,
					  .offset_blocks = off,
					  .num_blocks = num,
					  .count = -1,
					  .probability_ppm = 1000000,
					  .latency_us = us};

	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(us ? fault_inject(g_fault_names[i], &o) : fault_clear(g_fault_names[i]),
			 0);
}

/* XOR x into len bytes of ram member m<member> at byte_off, behind everyone's back. */
static inline void
ram_member_flip(unsigned member, uint64_t byte_off, unsigned len, uint8_t x)
{
	char ram[16];
	uint8_t *mem;

	snprintf(ram, sizeof(ram), "m%u", member);
	mem = ram_bdev_memory(uraid_bdev_get_by_name(ram));
	for (unsigned i = 0; i < len; i++)
		mem[byte_off + i] ^= x;
}

/* The array's info now (a failed lookup counts as a test failure). */
struct io_stats_wait {
	_Atomic bool done;
	struct uraid_bdev_io_stats st;
};

static inline void
io_stats_cb(void *arg, const struct uraid_bdev_io_stats *st)
{
	struct io_stats_wait *w = arg;

	if (st != NULL)
		w->st = *st;
	atomic_store(&w->done, true);
}

/* Blocks of I/O type `type` bdev `name` completed so far (every channel summed). */
static inline uint64_t
bdev_blocks_done(const char *name, enum uraid_io_type type)
{
	struct io_stats_wait w = {0};

	CHECK_EQ(uraid_bdev_collect_stats(name, io_stats_cb, &w), 0);
	uraid_runtime_wait(&w.done);
	return w.st.blocks[type];
}

static inline struct uraid_array_info
info_of(struct uraid_bdev *a)
{
	struct uraid_array_info info;

	CHECK_EQ(uraid_array_get_info(a, &info), 0);
	return info;
}

/* Create array `name` (level as uraid_raid_level_parse takes it) over the fault members
 * [first, first + n) with 4 KiB strips; k/m for ec, copies for raid10, sb for superblocks.
 * NULL (the reason on stderr) if refused. */
/* Policy and bitmap region of the arrays fault_array_create makes (0: the defaults). */
static enum uraid_consistency_policy g_fault_policy;
static uint32_t g_fault_region_kb;

static inline struct uraid_bdev *
fault_array_create(const char *name, const char *level, unsigned first, unsigned n, unsigned k,
		   unsigned m, unsigned copies, bool sb)
{
	struct uraid_array_opts o = {0};
	struct uraid_bdev *b = NULL;
	char err[256];

	o.name = name;
	CHECK_EQ(uraid_raid_level_parse(level, &o.level, &o.raid5_layout), 0);
	o.strip_size_kb = 4;
	o.members = g_fault_ptrs + first;
	o.num_members = n;
	o.data_chunks = k;
	o.parity_chunks = m;
	if (o.level == URAID_DRAID)
		o.spares = copies; /* draid: its distributed spares */
	else
		o.copies = copies;
	o.superblock = sb;
	o.policy = g_fault_policy;
	o.bitmap_region_kb = g_fault_region_kb;
	if (uraid_array_create(&o, &b, err, sizeof(err)) != 0)
		fprintf(stderr, "create %s: %s\n", name, err);
	return b;
}

struct scrub_out {
	_Atomic bool done;
	const char *array;
	bool repair;
	int status;
	struct uraid_array_check_result r;
};

static inline void
scrub_cb(void *arg, int status, const struct uraid_array_check_result *r)
{
	struct scrub_out *c = arg;

	c->status = status;
	c->r = *r;
	atomic_store(&c->done, true);
}

static inline void
scrub_msg(void *arg)
{
	struct scrub_out *c = arg;

	CHECK_EQ(uraid_array_scrub(uraid_bdev_get_by_name(c->array), c->repair, scrub_cb, c), 0);
}

/* Check (or repair) array on reactor `reactor` and wait for the result. */
static inline struct uraid_array_check_result
run_scrub(const char *array, bool repair, unsigned reactor)
{
	struct scrub_out c = {.array = array, .repair = repair};

	uraid_reactor_send(uraid_reactor_get(reactor), scrub_msg, &c);
	uraid_runtime_wait(&c.done);
	CHECK_EQ(c.status, 0);
	return c.r;
}

#endif
