/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fault backend: error rules (count, range, probability), corruption, -ENOMEM, latency,
 * and the power-cut model: after a cut, every block holds its content as of the last
 * completed FLUSH (or FUA write), or one of the versions written to it since, never anything
 * else; before the cut, reads always see the newest data.
 */
#include <stdlib.h>

#include "bdev_util.h"
#include "bdev/bdev_priv.h"

#define BS 512

struct env {
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	uint8_t *buf;
};

static bool
env_open(struct env *e, bool volatile_cache, uint64_t blocks, uint64_t cache_max)
{
	struct fault_bdev_opts o = {.name = "f",
				    .base_name = "base",
				    .volatile_cache = volatile_cache,
				    .seed = test_seed(),
				    .cache_max_bytes = cache_max};
	struct uraid_bdev *bdev;

	if (start_manual(1) != 0 || ram_bdev_create("base", blocks, BS, NULL, &bdev) != 0 ||
	    fault_bdev_create(&o, &bdev) != 0 ||
	    uraid_bdev_open("f", true, NULL, NULL, &e->desc) != 0)
		return false;
	e->ch = test_get_channel(e->desc);
	e->buf = test_alloc(64 * BS);
	return e->ch != NULL && e->buf != NULL;
}

static void
env_close(struct env *e)
{
	test_put_channel(e->ch);
	uraid_bdev_close(e->desc);
	CHECK_EQ(test_delete_bdev("f"), 0);
	CHECK_EQ(test_delete_bdev("base"), 0);
	free(e->buf);
	uraid_runtime_stop();
}

static void
test_rules(void)
{
	struct fault_rule_opts r = {0};
	struct env e;
	int fails = 0;
	struct uraid_bdev *base;

	REQUIRE(env_open(&e, false, 256, 0));
	/* The base is claimed by the fault bdev. */
	base = uraid_bdev_get_by_name("base");
	CHECK(uraid_bdev_claimed_by(base) != NULL);
	{
		struct uraid_bdev_desc *d;

		CHECK_EQ(uraid_bdev_open("base", true, NULL, NULL, &d), -EPERM);
	}
	/* Two write failures, then writes succeed; reads untouched. */
	r = (struct fault_rule_opts){.io_type_mask = 1u << URAID_IO_WRITE,
				     .kind = FAULT_FAILURE,
				     .count = 2,
				     .probability_ppm = 1000000};
	CHECK_EQ(fault_inject("f", &r), 0);
	CHECK_EQ(fault_inject("nope", &r), -ENODEV);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, 0, 1, 0), 0);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_WRITE, e.buf, 0, 1, 0), -EIO);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_WRITE, e.buf, 0, 1, 0), -EIO);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_WRITE, e.buf, 0, 1, 0), 0);

	/* A range: only I/O touching blocks 100..109 fails. */
	r = (struct fault_rule_opts){.io_type_mask = 1u << URAID_IO_READ,
				     .kind = FAULT_FAILURE,
				     .offset_blocks = 100,
				     .num_blocks = 10,
				     .count = -1,
				     .probability_ppm = 1000000};
	CHECK_EQ(fault_inject("f", &r), 0);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, 90, 10, 0), 0);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, 95, 10, 0), -EIO);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, 109, 1, 0), -EIO);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, 110, 4, 0), 0);
	CHECK_EQ(fault_clear("f"), 0);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, 100, 1, 0), 0);

	/* Probability: about half of 400 writes fail. */
	r = (struct fault_rule_opts){.io_type_mask = 1u << URAID_IO_WRITE,
				     .kind = FAULT_FAILURE,
				     .count = -1,
				     .probability_ppm = 500000};
	CHECK_EQ(fault_inject("f", &r), 0);
	for (int i = 0; i < 400; i++)
		fails += sync_rw(e.desc, e.ch, SYNC_WRITE, e.buf, 5, 1, 0) != 0;
	CHECK(fails > 120 && fails < 280);
	CHECK_EQ(fault_clear("f"), 0);

	/* -ENOMEM is back-pressure: refused at submit, no callback. */
	r = (struct fault_rule_opts){.io_type_mask = (1u << URAID_IO_NUM_TYPES) - 1,
				     .kind = FAULT_NOMEM,
				     .count = 1,
				     .probability_ppm = 1000000};
	CHECK_EQ(fault_inject("f", &r), 0);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_FLUSH, NULL, 0, 0, 0), -ENOMEM);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_FLUSH, NULL, 0, 0, 0), 0);

	/* Bad rules. */
	r.count = 0;
	CHECK_EQ(fault_inject("f", &r), -EINVAL);
	env_close(&e);
}

static void
test_corrupt_and_latency(void)
{
	struct fault_rule_opts r = {0};
	struct env e;
	struct waiter w = {0};
	struct sync_io s;

	REQUIRE(env_open(&e, false, 256, 0));
	memset(e.buf, 0x11, BS);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_WRITE, e.buf, 7, 1, 0), 0);
	r = (struct fault_rule_opts){.io_type_mask = 1u << URAID_IO_READ,
				     .kind = FAULT_CORRUPT,
				     .count = 1,
				     .probability_ppm = 1000000,
				     .corrupt_offset = 300,
				     .corrupt_value = 0x80};
	CHECK_EQ(fault_inject("f", &r), 0);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, 7, 1, 0), 0);
	CHECK_EQ(e.buf[300], 0x91);
	CHECK_EQ(e.buf[299], 0x11);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, 7, 1, 0), 0);
	CHECK_EQ(e.buf[300], 0x11); /* count was 1 */

	/* Latency: the completion waits for the (manual) clock. */
	r = (struct fault_rule_opts){.io_type_mask = 1u << URAID_IO_READ,
				     .kind = FAULT_LATENCY,
				     .count = 1,
				     .probability_ppm = 1000000,
				     .latency_us = 500};
	CHECK_EQ(fault_inject("f", &r), 0);
	s = (struct sync_io){.desc = e.desc,
			     .ch = e.ch,
			     .op = SYNC_READ,
			     .buf = e.buf,
			     .offset_blocks = 0,
			     .num_blocks = 1};
	uraid_reactor_send(uraid_reactor_get(0), sync_submit_msg, &s);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(s.submit_rc, 0);
	CHECK(!s.w.done);
	uraid_runtime_advance_us(499);
	uraid_runtime_poll_until_idle(100);
	CHECK(!s.w.done);
	uraid_runtime_advance_us(1);
	uraid_runtime_poll_until_idle(100);
	CHECK(s.w.done && s.w.status == 0);
	(void)w;
	env_close(&e);
}

/* --- the power-cut model --- */

#define NBLK 96

struct block_hist {
	uint64_t gens[512]; /* versions written, oldest first; gens[0] the durable-at-start one */
	int n;
	int durable; /* index of the version as of the last durability point */
};

static struct block_hist g_hist[NBLK];

static void
fill_block(uint8_t *p, uint64_t lba, uint64_t gen)
{
	if (gen == 0)
		memset(p, 0, BS);
	else
		stamp_fill(p, BS, lba, gen, 42);
}

static uint64_t
block_gen(const uint8_t *p, uint64_t lba)
{
	uint64_t fl, fg;
	static const uint8_t zero[BS];

	if (memcmp(p, zero, BS) == 0)
		return 0;
	if (stamp_check(p, BS, lba, 0, 42, &fl, &fg) == 0)
		return 0;
	if (fl != lba || stamp_check(p, BS, lba, fg, 42, &fl, &fg) != 0)
		return UINT64_MAX; /* not a version of this block at all */
	return fg;
}

struct cut_result {
	bool done;
	int status;
	struct fault_cut_stats st;
};

static void
cut_cb(void *arg, int status, const struct fault_cut_stats *st)
{
	struct cut_result *r = arg;

	r->done = true;
	r->status = status;
	r->st = *st;
}

static void
hist_push(uint64_t lba, uint64_t gen)
{
	struct block_hist *h = &g_hist[lba];

	if (h->n == (int)ARRAY_SIZE(h->gens)) {
		/* Forget versions older than the durable one to make room. */
		memmove(h->gens, h->gens + h->durable, (size_t)(h->n - h->durable) * 8);
		h->n -= h->durable;
		h->durable = 0;
	}
	h->gens[h->n++] = gen;
}

static void
test_power_cut_model(void)
{
	struct env e;
	uint64_t gen = 0;
	uint64_t torn = 0, dropped = 0, applied = 0;
	bool ok = true;

	/* A small cache limit makes the cache write back on its own too. */
	REQUIRE(env_open(&e, true, NBLK, 16 * BS));
	CHECK(uraid_bdev_has_write_cache(uraid_bdev_desc_get_bdev(e.desc)));
	for (int b = 0; b < NBLK; b++)
		g_hist[b] = (struct block_hist){.gens = {0}, .n = 1, .durable = 0};

	for (int cycle = 0; cycle < 40 && ok; cycle++) {
		int ops = 5 + (int)test_rand_below(60);
		struct cut_result cr = {0};

		for (int op = 0; op < ops && ok; op++) {
			uint64_t kind = test_rand_below(20);
			uint64_t n = 1 + test_rand_below(8);
			uint64_t off = test_rand_below(NBLK - n + 1);

			if (kind < 12) {
				bool fua = kind == 0;

				gen++;
				for (uint64_t i = 0; i < n; i++)
					fill_block(e.buf + i * BS, off + i, gen);
				CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_WRITE, e.buf, off, n,
						 fua ? URAID_IO_FUA : 0),
					 0);
				for (uint64_t i = 0; i < n; i++) {
					hist_push(off + i, gen);
					if (fua)
						g_hist[off + i].durable = g_hist[off + i].n - 1;
				}
			} else if (kind < 13) {
				CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_UNMAP, NULL, off, n, 0), 0);
				for (uint64_t i = 0; i < n; i++)
					hist_push(off + i, 0);
			} else if (kind < 14) {
				CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_FLUSH, NULL, 0, 0, 0), 0);
				for (int b = 0; b < NBLK; b++)
					g_hist[b].durable = g_hist[b].n - 1;
			} else {
				/* Live reads see the newest version. */
				CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, off, n, 0), 0);
				for (uint64_t i = 0; i < n; i++) {
					struct block_hist *h = &g_hist[off + i];

					if (block_gen(e.buf + i * BS, off + i) !=
					    h->gens[h->n - 1]) {
						CHECK(!"live read did not return the newest write");
						ok = false;
						break;
					}
				}
			}
		}

		CHECK_EQ(fault_power_cut("f", test_rand() | 1, cut_cb, &cr), 0);
		CHECK_EQ(fault_power_cut("f", 1, cut_cb, &cr), -EALREADY);
		for (int i = 0; i < 1000 && !cr.done; i++)
			uraid_runtime_poll_until_idle(10);
		REQUIRE(cr.done && cr.status == 0);
		torn += cr.st.torn;
		dropped += cr.st.dropped;
		applied += cr.st.applied;
		/* Dead until power returns. */
		CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, 0, 1, 0), -EIO);
		CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_WRITE, e.buf, 0, 1, 0), -EIO);
		CHECK_EQ(fault_power_on("f"), 0);

		for (uint64_t b = 0; b < NBLK && ok; b++) {
			struct block_hist *h = &g_hist[b];
			uint64_t got;
			bool allowed = false;

			CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, b, 1, 0), 0);
			got = block_gen(e.buf, b);
			for (int i = h->durable; i < h->n; i++)
				allowed |= h->gens[i] == got;
			if (!allowed) {
				fprintf(stderr,
					"cycle %d block %lu holds generation %ld; durable %lu, "
					"newest %lu\n",
					cycle, (unsigned long)b, (long)got,
					(unsigned long)h->gens[h->durable],
					(unsigned long)h->gens[h->n - 1]);
				CHECK(allowed);
				ok = false;
			}
			*h = (struct block_hist){.gens = {got}, .n = 1, .durable = 0};
		}
	}
	/* Over 40 cuts, each fate has happened. */
	CHECK(torn > 0);
	CHECK(dropped > 0);
	CHECK(applied > 0);
	env_close(&e);
}

/* After a FLUSH, a cut loses nothing. */
static void
test_flush_is_durable(void)
{
	struct env e;
	struct cut_result cr = {0};

	REQUIRE(env_open(&e, true, 64, 0));
	for (uint64_t b = 0; b < 64; b++)
		fill_block(e.buf + b * BS, b, 7);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_WRITE, e.buf, 0, 32, 0), 0);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_WRITE, e.buf + 32 * BS, 32, 32, 0), 0);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_FLUSH, NULL, 0, 0, 0), 0);
	CHECK_EQ(fault_power_cut("f", 99, cut_cb, &cr), 0);
	for (int i = 0; i < 1000 && !cr.done; i++)
		uraid_runtime_poll_until_idle(10);
	CHECK(cr.done);
	CHECK_EQ(cr.st.records, 0);
	CHECK_EQ(fault_power_on("f"), 0);
	memset(e.buf, 0, 64 * BS);
	CHECK_EQ(sync_rw(e.desc, e.ch, SYNC_READ, e.buf, 0, 64, 0), 0);
	for (uint64_t b = 0; b < 64; b++)
		CHECK_EQ(block_gen(e.buf + b * BS, b), 7);
	env_close(&e);
}

TEST_MAIN(TEST(test_rules), TEST(test_corrupt_and_latency), TEST(test_power_cut_model),
	  TEST(test_flush_is_durable))
