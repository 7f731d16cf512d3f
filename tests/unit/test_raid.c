/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Arrays: every level x several member counts x strip sizes x 512/4096 blocks, driven by a
 * random workload from several reactors (manual-poll), checked against a model of what was
 * written, with members failed before and during the run; overlapping concurrent writes
 * followed by a parity check; the raid5f/raid5/raid6 member contents computed independently;
 * member failure, offline arrays and bad configurations.
 */
#include <stdlib.h>

#include "bdev_util.h"
#include "bdev/bdev_priv.h"
#include "core/core.h"
#include "uraid/array.h"

#define REACTORS 3
#include "workload.h"

struct cfg {
	const char *level;
	unsigned n;
	unsigned k, m;	 /* ec */
	unsigned copies; /* raid10; draid: its distributed spares */
	uint32_t strip_kb;
	uint32_t bs;
	uint64_t member_blocks;
	bool uneven; /* concat: members of different sizes */
};

/* Members are fault bdevs "f<i>" over ram bdevs "m<i>", so tests can make them fail. */
static bool
make_members(const struct cfg *c)
{
	for (unsigned i = 0; i < c->n; i++) {
		struct fault_bdev_opts fo = {0};
		struct uraid_bdev *b;
		char ram[16];
		uint64_t blocks =
			c->member_blocks + (c->uneven ? i * 8 * c->strip_kb * 1024 / c->bs : 0);

		snprintf(ram, sizeof(ram), "m%u", i);
		snprintf(g_fault_names[i], sizeof(g_fault_names[i]), "f%u", i);
		fo.name = g_fault_names[i];
		fo.base_name = ram;
		fo.seed = test_seed() + i; /* (each member draws its own faults) */
		if (ram_bdev_create(ram, blocks, c->bs, NULL, &b) != 0 ||
		    fault_bdev_create(&fo, &b) != 0)
			return false;
		g_fault_ptrs[i] = g_fault_names[i];
	}
	return true;
}

static void
delete_members(unsigned n)
{
	fault_members_delete(n);
}

static int
create_array_bm(const struct cfg *c, bool bitmap, char *err, size_t len)
{
	struct uraid_array_opts o = {0};
	struct uraid_bdev *b;

	o.name = "a";
	CHECK_EQ(uraid_raid_level_parse(c->level, &o.level, &o.raid5_layout), 0);
	o.strip_size_kb = c->strip_kb;
	o.members = g_fault_ptrs;
	o.num_members = c->n;
	o.data_chunks = c->k;
	o.parity_chunks = c->m;
	if (bitmap) {
		o.superblock = true;
		o.policy = URAID_POLICY_BITMAP;
		o.force = true;
	}
	if (o.level == URAID_DRAID)
		o.spares = c->copies;
	else
		o.copies = c->copies;
	return uraid_array_create(&o, &b, err, len);
}

static int
create_array(const struct cfg *c, char *err, size_t len)
{
	return create_array_bm(c, false, err, len);
}

struct check_out {
	bool done;
	int status;
	struct uraid_array_check_result r;
};

static void
check_cb(void *arg, int status, const struct uraid_array_check_result *r)
{
	struct check_out *c = arg;

	c->done = true;
	c->status = status;
	c->r = *r;
}

static void
check_msg(void *arg)
{
	CHECK_EQ(uraid_array_check(uraid_bdev_get_by_name("a"), check_cb, arg), 0);
}

static struct uraid_array_check_result
run_check(void)
{
	struct check_out c = {0};

	uraid_reactor_send(uraid_reactor_get(1), check_msg, &c);
	for (int i = 0; i < 1000000 && !c.done; i++)
		uraid_runtime_poll_until_idle(1);
	CHECK(c.done);
	CHECK_EQ(c.status, 0);
	return c.r;
}

static unsigned g_fail_member;

static void
fail_by_io_error(void)
{
	/* Every I/O to the member fails from now on: the array finds out by itself. */
	struct fault_rule_opts r = {.io_type_mask = (1u << URAID_IO_NUM_TYPES) - 1,
				    .kind = FAULT_FAILURE,
				    .count = -1,
				    .probability_ppm = 1000000};

	CHECK_EQ(fault_inject(g_fault_names[g_fail_member], &r), 0);
}

static unsigned
tolerance(const struct cfg *c)
{
	if (strcmp(c->level, "raid1") == 0)
		return c->n - 1;
	if (strcmp(c->level, "raid10") == 0)
		return 1; /* failing member 0 (and only it) keeps every group alive */
	if (strcmp(c->level, "raid5") == 0 || strcmp(c->level, "raid5f") == 0)
		return 1;
	if (strcmp(c->level, "raid6") == 0)
		return 2;
	if (strcmp(c->level, "ec") == 0 || strcmp(c->level, "draid") == 0)
		return c->m;
	return 0;
}

/* One configuration: fail `before` members up front and one more (by I/O errors) during the
 * run if `during`; the model must hold throughout. */
static void
model_case(const struct cfg *c, unsigned before, bool during)
{
	struct uraid_bdev *a;
	struct wl wl;
	char err[256];
	struct uraid_array_stats st;
	uint64_t max_blocks;

	REQUIRE(start_manual(REACTORS) == 0);
	REQUIRE(make_members(c));
	if (create_array(c, err, sizeof(err)) != 0) {
		fprintf(stderr, "create %s n=%u: %s\n", c->level, c->n, err);
		CHECK(!"array create failed");
		goto out_members;
	}
	a = uraid_bdev_get_by_name("a");
	for (unsigned i = 0; i < before; i++)
		CHECK_EQ(uraid_array_fail_member(a, i), 0);
	REQUIRE(wl_open(&wl, "a"));
	g_fail_member = before;
	max_blocks = layout_stripe_data_blocks(&((struct raid_array *)a->ctx)->l) * 2 + 3;
	wl_run(&wl, 500, 12, max_blocks, during ? 150 : 0, during ? fail_by_io_error : NULL);
	wl_verify_all(&wl);
	if (wl.errors || wl.mismatches)
		fprintf(stderr, "  case %s n=%u k=%u m=%u strip=%uK bs=%u before=%u during=%d\n",
			c->level, c->n, c->k, c->m, c->strip_kb, c->bs, before, during);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	if (before + during == 0) {
		struct uraid_array_check_result r = run_check();
		bool redundant = tolerance(c) > 0;

		CHECK_EQ(r.bad_stripes, 0);
		CHECK_EQ(r.unreadable, 0);
		CHECK(!redundant || r.stripes_checked > 0);
	}
	uraid_array_get_stats(a, &st);
	if (strcmp(c->level, "draid") == 0 && c->copies > 0 && before + during > 0) {
		struct uraid_array_info info;

		/* A distributed spare takes the first failed slot at once (and is rebuilt
		 * into, or it is still being: I/O may or may not have had to decode). */
		CHECK_EQ(uraid_array_get_info(a, &info), 0);
		CHECK(strcmp(info.draid_spare[0].state, "free") != 0);
		CHECK(st.rebuild_units > 0 || st.degraded_reads + st.degraded_writes > 0);
	} else if (strcmp(c->level, "raid5") == 0 || strcmp(c->level, "raid6") == 0 ||
		   strcmp(c->level, "ec") == 0 || strcmp(c->level, "draid") == 0) {
		/* Random sizes exercise every write path. */
		if (!(before + during == 0
			      ? st.rmw_writes + st.rcw_writes > 0 && st.full_stripe_writes > 0
			      : st.degraded_writes > 0 && st.degraded_reads > 0))
			fprintf(stderr,
				"  %s n=%u: full %lu rmw %lu rcw %lu degraded w %lu r %lu merged "
				"%lu\n",
				c->level, c->n, (unsigned long)st.full_stripe_writes,
				(unsigned long)st.rmw_writes, (unsigned long)st.rcw_writes,
				(unsigned long)st.degraded_writes, (unsigned long)st.degraded_reads,
				(unsigned long)st.merged_writes);
		if (before + during == 0)
			CHECK(st.rmw_writes + st.rcw_writes > 0 && st.full_stripe_writes > 0);
		else
			CHECK(st.degraded_writes > 0 && st.degraded_reads > 0);
	}
	wl_close(&wl);
	CHECK_EQ(test_delete_bdev("a"), 0);
out_members:
	delete_members(c->n);
	uraid_runtime_stop();
}

static const struct cfg g_cfgs[] = {
	{"raid0", 1, 0, 0, 0, 4, 512, 256, false},
	{"raid0", 3, 0, 0, 0, 16, 4096, 64, false},
	{"concat", 3, 0, 0, 0, 8, 512, 128, true},
	{"raid1", 2, 0, 0, 0, 4, 4096, 64, false},
	{"raid1", 3, 0, 0, 0, 64, 512, 512, false},
	{"raid10", 2, 0, 0, 2, 4, 512, 128, false},
	{"raid10", 3, 0, 0, 2, 8, 4096, 64, false},
	{"raid10", 4, 0, 0, 3, 4, 512, 128, false},
	{"raid5", 3, 0, 0, 0, 4, 512, 128, false},
	{"raid5", 5, 0, 0, 0, 16, 4096, 64, false},
	{"raid5f", 4, 0, 0, 0, 8, 512, 256, false},
	{"raid6", 4, 0, 0, 0, 4, 4096, 32, false},
	{"raid6", 6, 0, 0, 0, 8, 512, 128, false},
	{"ec", 6, 4, 2, 0, 4, 512, 64, false},
	{"ec", 11, 8, 3, 0, 4, 4096, 16, false},
	{"ec", 9, 5, 4, 0, 16, 512, 320, false},
	{"ec", 3, 1, 2, 0, 16, 4096, 32, false},
	/* draid: k, m and s over more members; member sizes hold a few periods of the table */
	{"draid", 7, 3, 1, 1, 4, 512, 192, false},
	{"draid", 12, 4, 2, 1, 8, 4096, 96, false},
	{"draid", 10, 5, 3, 2, 4, 512, 256, false},
	{"draid", 9, 4, 2, 0, 4, 512, 160, false},
};

static void
test_model_healthy(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(g_cfgs); i++)
		model_case(&g_cfgs[i], 0, false);
}

static void
test_model_degraded(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(g_cfgs); i++) {
		unsigned t = tolerance(&g_cfgs[i]);

		if (t == 0)
			continue;
		model_case(&g_cfgs[i], t, false); /* every tolerated member gone up front */
		model_case(&g_cfgs[i], 0, true);  /* one fails under load */
		if (t >= 2)
			model_case(&g_cfgs[i], t - 1, true); /* the last tolerated one under load */
	}
}

/* Writes that overlap, from three reactors at once, on a few stripes: afterwards every
 * stripe's parity matches its data and every mirror matches its twin. A third of the member
 * writes are slow and land after writes submitted later (the members reorder their queues),
 * so only the array's own ordering of overlapping writes keeps the copies alike. */
static void
test_overlapping_writes(void)
{
	struct fault_rule_opts slow = {.io_type_mask = 1u << URAID_IO_WRITE,
				       .kind = FAULT_LATENCY,
				       .count = -1,
				       .probability_ppm = 330000,
				       .latency_us = 300};

	static const struct cfg cfgs[] = {
		{"raid5", 4, 0, 0, 0, 4, 512, 64, false},  {"raid6", 5, 0, 0, 0, 4, 512, 64, false},
		{"ec", 7, 4, 3, 0, 4, 512, 64, false},	   {"raid1", 2, 0, 0, 0, 4, 512, 64, false},
		{"raid10", 3, 0, 0, 2, 4, 512, 64, false},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cfgs); i++) {
		struct uraid_array_check_result r;
		struct uraid_array_stats st;
		uint64_t bad;
		struct wl wl;
		char err[256];

		REQUIRE(start_manual(REACTORS) == 0);
		REQUIRE(make_members(&cfgs[i]));
		REQUIRE(create_array(&cfgs[i], err, sizeof(err)) == 0);
		for (unsigned m = 0; m < cfgs[i].n; m++)
			CHECK_EQ(fault_inject(g_fault_names[m], &slow), 0);
		REQUIRE(wl_open(&wl, "a"));
		/* No model: overlapping writes in flight together may land in either order. */
		wl.expect_status = 0;
		bad = 0;
		for (unsigned op = 0; op < 600; op++) {
			struct wl_op *o = calloc(1, sizeof(*o));
			uint64_t stripe_blocks = 8 * (cfgs[i].n - 1);

			o->wl = &wl;
			o->reactor = op % REACTORS;
			o->type = SYNC_WRITE;
			o->num = 1 + test_rand_below(stripe_blocks + 4);
			o->lba = test_rand_below(3 * stripe_blocks);
			o->buf = aligned_alloc(64, align_up_u64(o->num * 512, 64));
			for (uint64_t b = 0; b < o->num * 512; b++)
				o->buf[b] = (uint8_t)test_rand();
			o->iov[0] = (struct iovec){o->buf, o->num * 512};
			o->iovcnt = 1;
			wl.inflight++;
			uraid_reactor_send(uraid_reactor_get(o->reactor), wl_submit_msg, o);
			if (op % 40 == 39) {
				uraid_runtime_poll_until_idle(3);
				uraid_runtime_advance_us(test_rand_below(400));
			}
			if (op % 40 != 39)
				continue;
			/* Every 40 writes, all of them home: the copies and the parity agree
			 * (the last overlapping pair decides, so look often). */
			for (int w = 0; w < 10000 && wl.inflight; w++) {
				uraid_runtime_advance_us(100);
				uraid_runtime_poll_until_idle(1000);
			}
			wl_drain(&wl);
			r = run_check();
			bad += r.bad_stripes;
			CHECK(r.stripes_checked > 0);
		}
		for (unsigned m = 0; m < cfgs[i].n; m++)
			CHECK_EQ(fault_clear(g_fault_names[m]), 0);
		CHECK_EQ(wl.errors, 0);
		CHECK_EQ(bad, 0);
		uraid_array_get_stats(uraid_bdev_get_by_name("a"), &st);
		if (i == 0)
			CHECK(st.merged_writes > 0); /* queued writes that covered a stripe */
		wl_close(&wl);
		CHECK_EQ(test_delete_bdev("a"), 0);
		delete_members(cfgs[i].n);
		uraid_runtime_stop();
	}
}

/* A write submitted on one reactor, answered there. */
struct cw {
	struct wl *wl;
	unsigned reactor;
	uint64_t lba, num;
	uint8_t *buf;
	struct iovec iov;
	int status;
	unsigned seq; /* its place in the order the writes were answered (from 1) */
	bool read;    /* a read into buf instead */
};

static unsigned g_cw_seq;

static void
cw_done(void *arg, int status)
{
	struct cw *w = arg;

	w->status = status;
	w->seq = ++g_cw_seq;
}

static void
cw_submit_msg(void *arg)
{
	struct cw *w = arg;

	if (w->read)
		CHECK_EQ(uraid_bdev_readv(w->wl->desc, w->wl->ch[w->reactor], &w->iov, 1, w->lba,
					  w->num, cw_done, w),
			 0);
	else
		CHECK_EQ(uraid_bdev_writev(w->wl->desc, w->wl->ch[w->reactor], &w->iov, 1, w->lba,
					   w->num, 0, cw_done, w),
			 0);
}

/* Queue a read (or, with read false, a write of byte v) of num blocks at lba on reactor r. */
static void
cw_queue(struct cw *w, struct wl *wl, unsigned r, uint64_t lba, uint64_t num, bool read, uint8_t v)
{
	memset(w, 0, sizeof(*w));
	w->wl = wl;
	w->reactor = r;
	w->lba = lba;
	w->num = num;
	w->read = read;
	w->buf = aligned_alloc(64, num * 512);
	memset(w->buf, v, num * 512);
	w->iov = (struct iovec){w->buf, num * 512};
	uraid_reactor_send(uraid_reactor_get(r), cw_submit_msg, w);
}

/* Queue a write of num blocks at lba on reactor r, filled with byte v. */
static void
cw_send_n(struct cw *w, struct wl *wl, unsigned r, uint64_t lba, uint64_t num, uint8_t v)
{
	cw_queue(w, wl, r, lba, num, false, v);
}

/* ... of one whole 8-block strip */
static void
cw_send(struct cw *w, struct wl *wl, unsigned r, uint64_t lba, uint8_t v)
{
	cw_send_n(w, wl, r, lba, 8, v);
}

static void
poll_reactor(unsigned r, unsigned times)
{
	for (unsigned i = 0; i < times; i++)
		uraid_reactor_poll(uraid_reactor_get(r));
}

/* Member writes of all n members slow (1 ms), or back to normal. */
static void
members_slow(unsigned n, bool slow)
{
	fault_members_slow(n, 0, 0, slow ? 1000 : 0);
}

/* Reactor 1 writes lba1, then lba2, both owned by reactor 0: the first goes by message (the
 * owner holds no slots yet), the second is claimed, and written from the channel it came in
 * on (reactor 1 holds no channel of the array's own, which would outlive a thread that is no
 * owner). */
static void
first_claim(struct wl *wl, uint64_t lba1, uint64_t lba2)
{
	struct uraid_array_stats st;
	struct cw w;

	for (int i = 0; i < 2; i++) {
		cw_send(&w, wl, 1, i == 0 ? lba1 : lba2, (uint8_t)(0x11 * (i + 1)));
		uraid_runtime_poll_until_idle(1000);
		CHECK_EQ(w.status, 0);
		uraid_array_get_stats(uraid_bdev_get_by_name("a"), &st);
		CHECK_EQ(st.claimed_writes, (uint64_t)i);
		free(w.buf);
	}
	CHECK(raid_from_bdev(uraid_bdev_get_by_name("a"))->owner_ch[1] == NULL);
}

/* On reactor r, blocks 24..27 and 28..31 written at once (slow at the members), then 26..29
 * (fast): the third waits for both, and the strip ends as the three were submitted. Bytes
 * v + 1, v + 2, v + 3. */
static void
side_by_side(struct wl *wl, unsigned members, unsigned r, uint8_t v)
{
	uint8_t back[8 * 512];
	struct cw w1, w2, w3;

	members_slow(members, true);
	g_cw_seq = 0;
	cw_send_n(&w1, wl, r, 24, 4, v + 1);
	cw_send_n(&w2, wl, r, 28, 4, v + 2);
	poll_reactor(r, 4);
	members_slow(members, false);
	cw_send_n(&w3, wl, r, 26, 4, v + 3);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(w1.seq + w2.seq + w3.seq, 0);
	uraid_runtime_advance_us(1500);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(w3.seq, 3);
	CHECK_EQ(w1.status + w2.status + w3.status, 0);
	CHECK_EQ(sync_rw(wl->desc, wl->ch[0], SYNC_READ, back, 24, 8, 0), 0);
	CHECK(back[0] == v + 1 && back[2 * 512] == v + 3 && back[6 * 512 - 1] == v + 3 &&
	      back[6 * 512] == v + 2);
	CHECK_EQ(run_check().bad_stripes, 0);
	free(w1.buf);
	free(w2.buf);
	free(w3.buf);
}

/* Mirrored writes from a reactor that does not own their strip: the first comes to the owner
 * by message, the next ones claim the strip and write the copies where they were submitted.
 * A claim excludes the owner: a write the owner takes while a claimed write is out waits for
 * it, and a write submitted elsewhere after the claim was let go queues behind the owner's
 * (the slot is handed to the waiting owner, not to the next claimant). One claimant's writes
 * to a strip that do not overlap are claimed together; one that overlaps goes to the owner
 * and waits. On the owner likewise. The copies stay identical, and the last write submitted
 * is what the strip holds. */
static void
test_claimed_mirror_writes(void)
{
	static const struct cfg c = {"raid1", 2, 0, 0, 0, 4, 512, 1024, false};
	struct uraid_array_stats st;
	struct cw w1, w2, w3;
	uint8_t back[8 * 512];
	struct wl wl;
	char err[256];

	REQUIRE(start_manual(REACTORS) == 0);
	REQUIRE(make_members(&c));
	REQUIRE(create_array(&c, err, sizeof(err)) == 0);
	REQUIRE(wl_open(&wl, "a"));
	/* Strip 3 (blocks 24..31) belongs to reactor 0 (3 mod 3). */
	first_claim(&wl, 24, 24);

	/* Reactor 1's claimed write is slow at the members; the owner takes one meanwhile (fast
	 * at the members): it waits until the claimed one is answered. */
	members_slow(c.n, true);
	g_cw_seq = 0;
	cw_send(&w1, &wl, 1, 24, 0xa1);
	poll_reactor(1, 4);
	members_slow(c.n, false);
	cw_send(&w2, &wl, 0, 24, 0xb2);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(w1.seq + w2.seq, 0);
	uraid_array_get_stats(uraid_bdev_get_by_name("a"), &st);
	CHECK_EQ(st.claimed_writes, 2);
	/* w1 is answered (on reactor 1 alone): the slot goes to the waiting owner, so a write
	 * submitted on reactor 2 now may not claim it. */
	uraid_runtime_advance_us(1500);
	for (int i = 0; i < 100 && w1.seq == 0; i++)
		poll_reactor(1, 1);
	CHECK_EQ(w1.seq, 1);
	cw_send(&w3, &wl, 2, 24, 0xc3);
	poll_reactor(2, 4);
	uraid_array_get_stats(uraid_bdev_get_by_name("a"), &st);
	CHECK_EQ(st.claimed_writes, 2);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(w2.seq, 2);
	CHECK_EQ(w3.seq, 3);
	CHECK_EQ(w1.status + w2.status + w3.status, 0);
	CHECK_EQ(sync_rw(wl.desc, wl.ch[0], SYNC_READ, back, 24, 8, 0), 0);
	CHECK(back[0] == 0xc3 && back[8 * 512 - 1] == 0xc3);
	CHECK_EQ(run_check().bad_stripes, 0);
	free(w1.buf);
	free(w2.buf);
	free(w3.buf);

	/* One claimant, one strip: writes that do not overlap are claimed side by side; one that
	 * overlaps a write out goes to the owner, which waits for both. */
	side_by_side(&wl, c.n, 1, 0xd0);
	uraid_array_get_stats(uraid_bdev_get_by_name("a"), &st);
	CHECK_EQ(st.claimed_writes, 4);
	/* The same on the owner: writes that do not overlap run side by side without a head;
	 * one that overlaps waits for both. */
	side_by_side(&wl, c.n, 0, 0xf0);
	wl_close(&wl);
	CHECK_EQ(test_delete_bdev("a"), 0);
	delete_members(c.n);
	uraid_runtime_stop();
}

/* Parity writes from a reactor that does not own their stripe: the first comes to the owner
 * by message, the next ones claim the stripe and run where they were submitted. A second write
 * of the claimant's own to the stripe queues behind its first, on the claimant; a write the
 * owner takes meanwhile, to another strip of the stripe, waits for both (they share the
 * parity), and the slot is handed to it; a write the claimant submits once the owner waits
 * goes to the owner and queues behind it. Parity stays consistent. With a member failed, a
 * degraded read submitted on reactor 1 runs there too. */
static void
test_claimed_parity_writes(void)
{
	static const struct cfg c = {"raid5", 4, 0, 0, 0, 4, 512, 1024, false};
	struct uraid_array_stats st;
	struct cw w1, w2, w3, w4;
	uint8_t back[24 * 512];
	struct wl wl;
	char err[256];

	REQUIRE(start_manual(REACTORS) == 0);
	REQUIRE(make_members(&c));
	REQUIRE(create_array(&c, err, sizeof(err)) == 0);
	REQUIRE(wl_open(&wl, "a"));
	/* Stripe 3 (blocks 72..95, three strips of 8) belongs to reactor 0 (3 mod 3). */
	first_claim(&wl, 72, 80);

	members_slow(c.n, true);
	g_cw_seq = 0;
	cw_send(&w1, &wl, 1, 72, 0xa1);
	poll_reactor(1, 4);
	cw_send(&w2, &wl, 1, 88, 0xa2);
	poll_reactor(1, 4);
	members_slow(c.n, false);
	cw_send(&w3, &wl, 0, 80, 0xb3);
	poll_reactor(0, 4);
	cw_send(&w4, &wl, 1, 88, 0xc4);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(w1.seq + w2.seq + w3.seq + w4.seq, 0);
	uraid_array_get_stats(uraid_bdev_get_by_name("a"), &st);
	CHECK_EQ(st.claimed_writes, 3); /* w1, w2; not w4: the owner waits for the slot */
	uraid_runtime_advance_us(1500);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(w1.seq, 1);
	CHECK_EQ(w2.seq, 2);
	CHECK_EQ(w3.seq, 3);
	CHECK_EQ(w4.seq, 4);
	CHECK_EQ(w1.status + w2.status + w3.status + w4.status, 0);
	CHECK_EQ(sync_rw(wl.desc, wl.ch[0], SYNC_READ, back, 72, 24, 0), 0);
	CHECK(back[0] == 0xa1 && back[8 * 512 - 1] == 0xa1 && back[8 * 512] == 0xb3 &&
	      back[16 * 512 - 1] == 0xb3 && back[16 * 512] == 0xc4 && back[24 * 512 - 1] == 0xc4);
	CHECK_EQ(run_check().bad_stripes, 0);
	free(w1.buf);
	free(w2.buf);
	free(w3.buf);
	free(w4.buf);

	/* Degraded: one of stripe 3's strips is on the failed member; reactor 1 decodes it. */
	uraid_array_fail_member(uraid_bdev_get_by_name("a"), 1);
	uraid_runtime_poll_until_idle(1000);
	cw_queue(&w1, &wl, 1, 72, 24, true, 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(w1.status, 0);
	CHECK(w1.buf[0] == 0xa1 && w1.buf[8 * 512] == 0xb3 && w1.buf[24 * 512 - 1] == 0xc4);
	{
		struct raid_array *a = raid_from_bdev(uraid_bdev_get_by_name("a"));

		CHECK_EQ(atomic_load(&a->stats[1].v[RS_DEGRADED_R]), 1);
		CHECK_EQ(atomic_load(&a->stats[0].v[RS_DEGRADED_R]), 0);
	}
	free(w1.buf);
	wl_close(&wl);
	CHECK_EQ(test_delete_bdev("a"), 0);
	delete_members(c.n);
	uraid_runtime_stop();
}

/* The parity check finds a stripe whose parity was changed behind the array's back. */
static void
test_check_finds_corruption(void)
{
	struct cfg c = {"raid6", 5, 0, 0, 0, 4, 512, 64, false};
	struct uraid_array_check_result r;
	struct wl wl;
	char err[256];
	uint8_t junk[512];

	REQUIRE(start_manual(REACTORS) == 0);
	REQUIRE(make_members(&c));
	REQUIRE(create_array(&c, err, sizeof(err)) == 0);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 200, 8, 40, 0, NULL);
	r = run_check();
	CHECK_EQ(r.bad_stripes, 0);
	/* Scribble on member m2 (the ram bdev under f2) in stripe 5, behind the array. */
	memset(junk, 0xab, sizeof(junk));
	memcpy(ram_bdev_memory(uraid_bdev_get_by_name("m2")) + (5 * 8 + 3) * 512, junk,
	       sizeof(junk));
	r = run_check();
	CHECK_EQ(r.bad_stripes, 1);
	CHECK_EQ(r.bad[0], 5);
	wl_close(&wl);
	CHECK_EQ(test_delete_bdev("a"), 0);
	delete_members(c.n);
	uraid_runtime_stop();
}

/* --- member contents computed independently of layout.c --- */

static uint8_t
gf2(uint8_t x)
{
	return (uint8_t)((x << 1) ^ ((x & 0x80) ? 0x1d : 0));
}

static void
read_member(unsigned i, uint8_t *buf, uint64_t blocks)
{
	struct uraid_bdev *m = uraid_bdev_get_by_name(g_fault_names[i]);
	struct uraid_bdev_desc *d;
	struct uraid_io_channel *ch;

	REQUIRE(uraid_bdev_open(uraid_bdev_get_name(m), false, NULL, NULL, &d) == 0);
	ch = test_get_channel(d);
	CHECK_EQ(sync_rw(d, ch, SYNC_READ, buf, 0, blocks, 0), 0);
	test_put_channel(ch);
	uraid_bdev_close(d);
}

/* Random data over the whole of array d (512-byte blocks), written in odd pieces so that
 * partial-stripe paths build the final contents; d is closed. The data, to free. */
static uint8_t *
write_random_in_pieces(struct uraid_bdev_desc *d, uint64_t blocks)
{
	uint8_t *data = malloc(blocks * 512);
	struct uraid_io_channel *ch = test_get_channel(d);

	for (uint64_t b = 0; b < blocks * 512; b++)
		data[b] = (uint8_t)test_rand();
	for (uint64_t lba = 0; lba < blocks;) {
		uint64_t num = 1 + test_rand_below(13);

		if (num > blocks - lba)
			num = blocks - lba;
		CHECK_EQ(sync_rw(d, ch, SYNC_WRITE, data + lba * 512, lba, num, 0), 0);
		lba += num;
	}
	test_put_channel(ch);
	uraid_bdev_close(d);
	return data;
}

static void
placement_case(const char *level, unsigned n)
{
	struct cfg c = {level, n, 0, 0, 0, 4, 512, 64, false};
	const uint64_t S = 8, mblocks = 64;
	unsigned m = strcmp(level, "raid6") == 0 ? 2 : 1, k = n - m;
	bool asym = strcmp(level, "raid5f") == 0;
	struct uraid_bdev_desc *d;
	uint8_t *data, *mem[8];
	uint64_t blocks;
	char err[256];

	REQUIRE(start_manual(1) == 0);
	REQUIRE(make_members(&c));
	REQUIRE(create_array(&c, err, sizeof(err)) == 0);
	REQUIRE(uraid_bdev_open("a", true, NULL, NULL, &d) == 0);
	blocks = uraid_bdev_get_num_blocks(uraid_bdev_desc_get_bdev(d));
	CHECK_EQ(blocks, mblocks * k);
	data = write_random_in_pieces(d, blocks);
	for (unsigned i = 0; i < n; i++) {
		mem[i] = malloc(mblocks * 512);
		read_member(i, mem[i], mblocks);
	}
	for (uint64_t s = 0; s < mblocks / S; s++) {
		unsigned p = (unsigned)((n - 1) - s % n);
		uint8_t P[8 * 512] = {0}, Q[8 * 512] = {0};

		for (unsigned di = 0; di < k; di++) {
			/* raid5f: data fills from member 0 skipping parity; md layouts: data starts
			 * after the parity (and Q) and wraps. */
			unsigned mb = asym ? (di < p ? di : di + 1) : (p + m + di) % n;
			const uint8_t *want = data + ((s * k + di) * S) * 512;

			CHECK(memcmp(mem[mb] + s * S * 512, want, S * 512) == 0);
			for (unsigned b = 0; b < S * 512; b++)
				P[b] ^= want[b];
		}
		/* Q = sum g^i D_i by Horner from the last data strip down. */
		for (int di = (int)k - 1; di >= 0; di--) {
			const uint8_t *dd = data + ((s * k + (unsigned)di) * S) * 512;

			for (unsigned b = 0; b < S * 512; b++)
				Q[b] = gf2(Q[b]) ^ dd[b];
		}
		CHECK(memcmp(mem[p] + s * S * 512, P, S * 512) == 0);
		if (m == 2)
			CHECK(memcmp(mem[(p + 1) % n] + s * S * 512, Q, S * 512) == 0);
	}
	for (unsigned i = 0; i < n; i++)
		free(mem[i]);
	free(data);
	CHECK_EQ(test_delete_bdev("a"), 0);
	delete_members(n);
	uraid_runtime_stop();
}

/* draid 4+2 with one distributed spare over 8 members: every data strip where the table
 * (draid.c, tested on its own) puts it, P and Q beside them as computed here, and the spare
 * strips untouched. */
static void
draid_placement_case(void)
{
	struct cfg c = {"draid", 8, 4, 2, 1, 4, 512, 64, false};
	const uint64_t S = 8;
	struct uraid_array_info info;
	struct draid_map dm;
	struct uraid_bdev_desc *d;
	uint8_t *data, *mem[8], zero[8 * 512] = {0};
	uint64_t blocks, stripes, rows;
	char err[256];

	REQUIRE(start_manual(1) == 0);
	REQUIRE(make_members(&c));
	REQUIRE(create_array(&c, err, sizeof(err)) == 0);
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("a"), &info), 0);
	CHECK_EQ(info.distributed_spares, 1);
	REQUIRE(draid_map_init(&dm, 8, 4, 2, 1, info.draid_bases, info.draid_seed, err,
			       sizeof(err)) == 0);
	/* 8 strips a member, periods of 6 rows holding 7 stripes: one period. */
	rows = 64 / S / dm.rows * dm.rows;
	stripes = rows / dm.rows * dm.groups;
	REQUIRE(uraid_bdev_open("a", true, NULL, NULL, &d) == 0);
	blocks = uraid_bdev_get_num_blocks(uraid_bdev_desc_get_bdev(d));
	CHECK_EQ(blocks, stripes * 4 * S);
	data = write_random_in_pieces(d, blocks);
	for (unsigned i = 0; i < 8; i++) {
		mem[i] = calloc(64, 512);
		read_member(i, mem[i], 64);
	}
	for (uint64_t s = 0; s < stripes; s++) {
		uint8_t P[8 * 512] = {0}, Q[8 * 512] = {0};
		unsigned mb;
		uint64_t row;

		for (unsigned di = 0; di < 4; di++) {
			const uint8_t *want = data + ((s * 4 + di) * S) * 512;

			draid_locate(&dm, s, di, &mb, &row);
			CHECK(memcmp(mem[mb] + row * S * 512, want, S * 512) == 0);
			for (unsigned b = 0; b < S * 512; b++)
				P[b] ^= want[b];
		}
		for (int di = 3; di >= 0; di--) {
			const uint8_t *dd = data + ((s * 4 + (unsigned)di) * S) * 512;

			for (unsigned b = 0; b < S * 512; b++)
				Q[b] = gf2(Q[b]) ^ dd[b];
		}
		draid_locate(&dm, s, 4, &mb, &row);
		CHECK(memcmp(mem[mb] + row * S * 512, P, S * 512) == 0);
		draid_locate(&dm, s, 5, &mb, &row);
		CHECK(memcmp(mem[mb] + row * S * 512, Q, S * 512) == 0);
	}
	for (uint64_t row = 0; row < rows; row++) {
		unsigned mb = draid_spare_member(&dm, row, 0);

		CHECK(memcmp(mem[mb] + row * S * 512, zero, S * 512) == 0);
	}
	for (unsigned i = 0; i < 8; i++)
		free(mem[i]);
	free(data);
	CHECK_EQ(test_delete_bdev("a"), 0);
	delete_members(8);
	uraid_runtime_stop();
}

static void
test_member_placement(void)
{
	placement_case("raid5f", 4);
	placement_case("raid5f", 3);
	placement_case("raid5", 4);
	placement_case("raid6", 5);
	draid_placement_case();
}

/* --- failures and bad input --- */

static void
test_offline_and_raid0_errors(void)
{
	struct cfg c5 = {"raid5", 3, 0, 0, 0, 4, 512, 64, false};
	struct cfg c0 = {"raid0", 2, 0, 0, 0, 4, 512, 64, false};
	struct uraid_array_info info;
	struct uraid_bdev_desc *d;
	struct uraid_io_channel *ch;
	uint8_t buf[4096];
	char err[256];

	/* raid5 loses two members: offline, every I/O fails with EIO, never wrong data. */
	REQUIRE(start_manual(1) == 0);
	REQUIRE(make_members(&c5));
	REQUIRE(create_array(&c5, err, sizeof(err)) == 0);
	REQUIRE(uraid_bdev_open("a", true, NULL, NULL, &d) == 0);
	ch = test_get_channel(d);
	memset(buf, 7, sizeof(buf));
	CHECK_EQ(sync_rw(d, ch, SYNC_WRITE, buf, 0, 8, 0), 0);
	CHECK_EQ(uraid_array_fail_member(uraid_bdev_get_by_name("a"), 1), 0);
	CHECK_EQ(uraid_array_fail_member(uraid_bdev_get_by_name("a"), 1), -EINVAL);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(sync_rw(d, ch, SYNC_READ, buf, 0, 8, 0), 0);
	CHECK_EQ(buf[100], 7);
	CHECK_EQ(uraid_array_fail_member(uraid_bdev_get_by_name("a"), 2), 0);
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("a"), &info), 0);
	CHECK(!info.online);
	CHECK_EQ(info.failed_members, 2);
	CHECK_EQ(sync_rw(d, ch, SYNC_READ, buf, 0, 8, 0), -EIO);
	CHECK_EQ(sync_rw(d, ch, SYNC_WRITE, buf, 0, 8, 0), -EIO);
	test_put_channel(ch);
	uraid_bdev_close(d);
	CHECK_EQ(test_delete_bdev("a"), 0);
	delete_members(3);

	/* raid0: a member error is an EIO for the user, and the array goes offline. */
	REQUIRE(make_members(&c0));
	REQUIRE(create_array(&c0, err, sizeof(err)) == 0);
	REQUIRE(uraid_bdev_open("a", true, NULL, NULL, &d) == 0);
	ch = test_get_channel(d);
	g_fail_member = 1;
	fail_by_io_error();
	CHECK_EQ(sync_rw(d, ch, SYNC_READ, buf, 0, 8, 0), 0);	 /* strip 0: member 0 */
	CHECK_EQ(sync_rw(d, ch, SYNC_READ, buf, 8, 8, 0), -EIO); /* strip 1: member 1 */
	CHECK_EQ(sync_rw(d, ch, SYNC_READ, buf, 0, 8, 0), -EIO); /* offline now */
	test_put_channel(ch);
	uraid_bdev_close(d);
	CHECK_EQ(test_delete_bdev("a"), 0);
	delete_members(2);
	uraid_runtime_stop();
}

static void
expect_create_error(struct uraid_array_opts *o, const char *needle)
{
	struct uraid_bdev *b;
	char err[256] = "";

	CHECK(uraid_array_create(o, &b, err, sizeof(err)) < 0);
	if (strstr(err, needle) == NULL) {
		fprintf(stderr, "  error was '%s', expected '%s'\n", err, needle);
		CHECK(!"wrong error message");
	}
}

static void
test_bad_arrays(void)
{
	struct cfg c = {"raid5", 4, 0, 0, 0, 4, 512, 64, false};
	struct uraid_array_opts o = {.name = "a", .level = URAID_RAID5, .members = g_fault_ptrs};
	struct uraid_bdev *b;
	const char *dup[] = {"f0", "f1", "f0"};
	const char *mixed[] = {"f0", "f1", "x4k"};
	const char *ghost[] = {"f0", "f1", "nope"};
	char err[256];

	REQUIRE(start_manual(1) == 0);
	REQUIRE(make_members(&c));
	REQUIRE(ram_bdev_create("x4k", 64, 4096, NULL, &b) == 0);
	o.num_members = 2;
	expect_create_error(&o, "at least 3 members");
	o.num_members = 4;
	o.strip_size_kb = 12;
	expect_create_error(&o, "not a power of two");
	o.strip_size_kb = 0;
	o.members = dup;
	o.num_members = 3;
	expect_create_error(&o, "listed twice");
	o.members = mixed;
	expect_create_error(&o, "different block sizes");
	o.members = ghost;
	expect_create_error(&o, "'nope' does not exist");
	o.members = g_fault_ptrs;
	o.num_members = 4;
	o.level = URAID_EC;
	o.data_chunks = 3;
	o.parity_chunks = 2;
	expect_create_error(&o, "needs 5 members");
	o.parity_chunks = 5;
	o.data_chunks = 0;
	expect_create_error(&o, "parity_chunks 1..4");
	o.level = URAID_DRAID;
	o.data_chunks = 2;
	o.parity_chunks = 1;
	o.spares = 2;
	expect_create_error(&o, "needs 5 to 32 members, got 4");
	o.parity_chunks = 5;
	o.spares = 0;
	expect_create_error(&o, "parity_chunks 1 to 4");
	o.parity_chunks = 1;
	o.spares = 0;
	o.strip_size_kb = 16; /* members are 32 KiB: two rows; 3 strips over 4: a period is 3 */
	expect_create_error(&o, "smaller than one period of the draid table (3 strips");
	o.strip_size_kb = 0;
	o.spares = 0;
	o.level = URAID_RAID10;
	o.copies = 5;
	expect_create_error(&o, "cannot keep 5 copies");
	o.level = URAID_RAID6;
	o.strip_size_kb = 1024; /* members are 32 KiB */
	expect_create_error(&o, "smaller than one strip");
	o.strip_size_kb = 4;
	REQUIRE(uraid_array_create(&o, &b, err, sizeof(err)) == 0);
	o.name = "b";
	expect_create_error(&o, "in use by a"); /* members are claimed */
	o.name = "a";
	expect_create_error(&o, "exists already");
	CHECK_EQ(test_delete_bdev("a"), 0);
	CHECK_EQ(test_delete_bdev("x4k"), 0);
	delete_members(4);
	uraid_runtime_stop();
}

/* --- real threads --- */

struct tw {
	struct uraid_bdev_desc *desc;
	uint64_t region_blocks;
	_Atomic unsigned done_reactors;
	_Atomic uint64_t errors;
};

struct tw_job {
	struct tw *tw;
	struct uraid_io_channel *ch;
	struct prng rng;
	unsigned left, inflight;
	uint8_t *bufs[8];
};

static void tw_next(struct tw_job *j, uint8_t *buf);

static void
tw_done(void *arg, int status)
{
	uint8_t *buf = arg;
	struct tw_job *j = *(struct tw_job **)buf;

	if (status != 0)
		atomic_fetch_add(&j->tw->errors, 1);
	j->inflight--;
	tw_next(j, buf);
}

static void
tw_next(struct tw_job *j, uint8_t *buf)
{
	if (j->left == 0) {
		if (j->inflight == 0) {
			uraid_put_io_channel(j->ch);
			atomic_fetch_add(&j->tw->done_reactors, 1);
		}
		return;
	}
	j->left--;
	{
		uint64_t num = 1 + prng_below(&j->rng, 20);
		uint64_t lba = prng_below(&j->rng, j->tw->region_blocks - num);

		for (uint64_t b = sizeof(void *); b < num * 512; b++)
			buf[b] = (uint8_t)prng_next(&j->rng);
		j->inflight++;
		if (uraid_bdev_write(j->tw->desc, j->ch, buf, lba, num, 0, tw_done, buf) != 0) {
			j->inflight--;
			atomic_fetch_add(&j->tw->errors, 1);
			j->left = 0;
		}
	}
}

static void
tw_start(void *arg)
{
	struct tw_job *j = arg;

	j->ch = uraid_bdev_get_io_channel(j->tw->desc);
	for (int i = 0; i < 8; i++) {
		*(struct tw_job **)j->bufs[i] = j;
		tw_next(j, j->bufs[i]);
	}
}

struct thr_check {
	_Atomic bool done;
	struct uraid_array_check_result r;
};

static void
thr_check_cb(void *arg, int status, const struct uraid_array_check_result *r)
{
	struct thr_check *c = arg;

	CHECK_EQ(status, 0);
	c->r = *r;
	atomic_store(&c->done, true);
}

static void
thr_check_start(void *arg)
{
	CHECK_EQ(uraid_array_check(uraid_bdev_get_by_name("a"), thr_check_cb, arg), 0);
}

static void
unreg_cb_atomic(void *arg, int status)
{
	atomic_store((_Atomic int *)arg, status + 1000);
}

/* Unregister from the test thread while reactor threads run; wait for the callback. */
static int
thr_delete(const char *name)
{
	struct timespec ts = {0, 1000000};
	_Atomic int got = 0;

	uraid_bdev_unregister(uraid_bdev_get_by_name(name), unreg_cb_atomic, &got);
	for (int w = 0; w < 30000 && atomic_load(&got) == 0; w++)
		nanosleep(&ts, NULL);
	return atomic_load(&got) - 1000;
}

/* Under reactor threads: the array "a", then its n members (fault bdevs and the ram under). */
static void
thr_delete_all(unsigned n)
{
	CHECK_EQ(thr_delete("a"), 0);
	for (unsigned i = 0; i < n; i++) {
		char ram[16];

		snprintf(ram, sizeof(ram), "m%u", i);
		CHECK_EQ(thr_delete(g_fault_names[i]), 0);
		CHECK_EQ(thr_delete(ram), 0);
	}
}

/* Two reactor threads write overlapping ranges of the same few stripes at once; the parity
 * check then finds every stripe consistent (and, under TSAN=1, no data race is reported).
 * Each thread claims the strips (mirrors) or stripes the other owns, under the bitmap too. */
static void
test_threads_overlapping(void)
{
	static const struct {
		struct cfg c;
		bool bitmap;
	} cases[] = {
		{{"raid5", 4, 0, 0, 0, 4, 512, 64, false}, false},
		{{"raid6", 6, 0, 0, 0, 4, 512, 64, false}, false},
		/* (1 MiB of metadata, then the data) */
		{{"raid5", 4, 0, 0, 0, 4, 512, 4096, false}, true},
		{{"raid10", 3, 0, 0, 2, 4, 512, 64, false}, false},
		{{"raid1", 2, 0, 0, 0, 4, 512, 64, false}, false},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct cfg *c = &cases[i].c;
		struct uraid_runtime_opts ro = {.num_reactors = 2};
		struct tw tw = {0};
		struct tw_job jobs[2];
		struct thr_check chk = {0};
		char err[256];
		struct timespec ts = {0, 1000000};

		REQUIRE(uraid_runtime_start(&ro) == 0);
		REQUIRE(make_members(c));
		REQUIRE(create_array_bm(c, cases[i].bitmap, err, sizeof(err)) == 0);
		REQUIRE(uraid_bdev_open("a", true, NULL, NULL, &tw.desc) == 0);
		tw.region_blocks = 4 * 8 * (c->n - 1);
		for (unsigned r = 0; r < 2; r++) {
			memset(&jobs[r], 0, sizeof(jobs[r]));
			jobs[r].tw = &tw;
			jobs[r].left = 3000;
			prng_seed(&jobs[r].rng, test_seed() + r);
			for (int b = 0; b < 8; b++)
				jobs[r].bufs[b] = aligned_alloc(64, 20 * 512);
			uraid_reactor_send(uraid_reactor_get(r), tw_start, &jobs[r]);
		}
		for (int w = 0; w < 30000 && atomic_load(&tw.done_reactors) < 2; w++)
			nanosleep(&ts, NULL);
		CHECK_EQ(atomic_load(&tw.done_reactors), 2);
		CHECK_EQ(atomic_load(&tw.errors), 0);
		uraid_reactor_send(uraid_reactor_get(0), thr_check_start, &chk);
		for (int w = 0; w < 30000 && !atomic_load(&chk.done); w++)
			nanosleep(&ts, NULL);
		CHECK(atomic_load(&chk.done));
		CHECK_EQ(chk.r.bad_stripes, 0);
		CHECK(chk.r.stripes_checked > 0);
		{
			struct uraid_array_stats st;

			CHECK_EQ(uraid_array_get_stats(uraid_bdev_get_by_name("a"), &st), 0);
			CHECK(st.claimed_writes > 0);
		}
		uraid_bdev_close(tw.desc);
		thr_delete_all(c->n);
		for (unsigned r = 0; r < 2; r++) {
			for (int b = 0; b < 8; b++)
				free(jobs[r].bufs[b]);
		}
		uraid_runtime_stop();
	}
}

/* One write of 8 blocks at lba from a reactor thread of its own (real threads). */
struct rt_write {
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	uint64_t lba;
	uint8_t buf[8 * 512];
	struct iovec iov;
	_Atomic int stage; /* 1: has its channel, 2: answered, 3: channel put */
	int status;
};

static void
rt_get_ch(void *arg)
{
	struct rt_write *w = arg;

	w->ch = uraid_bdev_get_io_channel(w->desc);
	atomic_store(&w->stage, 1);
}

static void
rt_done(void *arg, int status)
{
	struct rt_write *w = arg;

	w->status = status;
	atomic_store(&w->stage, 2);
}

static void
rt_submit(void *arg)
{
	struct rt_write *w = arg;

	w->iov = (struct iovec){w->buf, sizeof(w->buf)};
	CHECK_EQ(uraid_bdev_writev(w->desc, w->ch, &w->iov, 1, w->lba, 8, 0, rt_done, w), 0);
}

static void
rt_put_ch(void *arg)
{
	struct rt_write *w = arg;

	uraid_put_io_channel(w->ch);
	atomic_store(&w->stage, 3);
}

static bool
rt_wait(struct rt_write *w, int stage, unsigned ms)
{
	struct timespec ts = {0, 1000000};

	for (unsigned i = 0; i < ms && atomic_load(&w->stage) < stage; i++)
		nanosleep(&ts, NULL);
	return atomic_load(&w->stage) >= stage;
}

/* Reactor threads: the owner's write waits for a claimed one while the owner has nothing
 * else to do (so its thread would sleep); it runs once the claim is let go. */
static void
test_claim_wait_keeps_owner_awake(void)
{
	static const struct cfg c = {"raid1", 2, 0, 0, 0, 4, 512, 1024, false};
	struct uraid_runtime_opts ro = {.num_reactors = 2};
	struct rt_write *w1 = calloc(1, sizeof(*w1)), *w2 = calloc(1, sizeof(*w2));
	struct uraid_bdev_desc *desc;
	struct uraid_array_stats st;
	struct timespec ms = {0, 1000000};
	char err[256];

	REQUIRE(uraid_runtime_start(&ro) == 0);
	REQUIRE(make_members(&c));
	REQUIRE(create_array(&c, err, sizeof(err)) == 0);
	REQUIRE(uraid_bdev_open("a", true, NULL, NULL, &desc) == 0);
	/* Strip 2 (blocks 16..23) is reactor 0's; w1 writes it from reactor 1. */
	w1->desc = w2->desc = desc;
	w1->lba = w2->lba = 16;
	uraid_reactor_send(uraid_reactor_get(1), rt_get_ch, w1);
	uraid_reactor_send(uraid_reactor_get(0), rt_get_ch, w2);
	REQUIRE(rt_wait(w1, 1, 5000) && rt_wait(w2, 1, 5000));
	uraid_reactor_send(uraid_reactor_get(1), rt_submit, w1); /* (by message: claims start) */
	CHECK(rt_wait(w1, 2, 5000));
	atomic_store(&w1->stage, 1);
	fault_members_slow(c.n, 0, 0, 20000);
	memset(w1->buf, 0xe1, sizeof(w1->buf));
	uraid_reactor_send(uraid_reactor_get(1), rt_submit, w1);
	nanosleep(&ms, NULL);
	fault_members_slow(c.n, 0, 0, 0);
	memset(w2->buf, 0xe2, sizeof(w2->buf));
	uraid_reactor_send(uraid_reactor_get(0), rt_submit, w2);
	CHECK(rt_wait(w1, 2, 5000));
	CHECK(rt_wait(w2, 2, 5000)); /* (not answered at all if the owner's thread slept on) */
	CHECK_EQ(w1->status + w2->status, 0);
	uraid_array_get_stats(uraid_bdev_get_by_name("a"), &st);
	CHECK_EQ(st.claimed_writes, 1);
	uraid_reactor_send(uraid_reactor_get(1), rt_put_ch, w1);
	uraid_reactor_send(uraid_reactor_get(0), rt_put_ch, w2);
	CHECK(rt_wait(w1, 3, 5000) && rt_wait(w2, 3, 5000));
	uraid_bdev_close(desc);
	thr_delete_all(c.n);
	free(w1);
	free(w2);
	uraid_runtime_stop();
}

/* draid: every set of up to m failed members (s = 0, so nothing is rebuilt meanwhile), each
 * on a fresh array written in odd pieces: every block reads back, then a write of the whole
 * array degraded reads back too. */
static void
draid_loss_case(const struct cfg *c)
{
	unsigned n = c->n, m = c->m, sets = 0;

	for (uint64_t set = 1; set < (1ull << n); set++) {
		struct uraid_bdev_desc *d;
		struct uraid_io_channel *ch;
		uint8_t *data, *back;
		uint64_t blocks;
		char err[256];

		if ((unsigned)__builtin_popcountll(set) > m)
			continue;
		sets++;
		REQUIRE(start_manual(1) == 0);
		REQUIRE(make_members(c));
		REQUIRE(create_array(c, err, sizeof(err)) == 0);
		REQUIRE(uraid_bdev_open("a", true, NULL, NULL, &d) == 0);
		blocks = uraid_bdev_get_num_blocks(uraid_bdev_desc_get_bdev(d));
		data = write_random_in_pieces(d, blocks);
		for (uint64_t f = set; f; f &= f - 1)
			CHECK_EQ(uraid_array_fail_member(uraid_bdev_get_by_name("a"),
							 (unsigned)__builtin_ctzll(f)),
				 0);
		back = malloc(blocks * 512);
		REQUIRE(uraid_bdev_open("a", true, NULL, NULL, &d) == 0);
		ch = test_get_channel(d);
		CHECK_EQ(sync_rw(d, ch, SYNC_READ, back, 0, blocks, 0), 0);
		if (memcmp(back, data, blocks * 512) != 0) {
			fprintf(stderr, "  draid n=%u k=%u m=%u: members 0x%lx lost: data differ\n",
				n, c->k, m, (unsigned long)set);
			CHECK(!"a degraded read returned other data");
		}
		for (uint64_t b = 0; b < blocks * 512; b++)
			data[b] = (uint8_t)test_rand();
		CHECK_EQ(sync_rw(d, ch, SYNC_WRITE, data, 0, blocks, 0), 0);
		CHECK_EQ(sync_rw(d, ch, SYNC_READ, back, 0, blocks, 0), 0);
		CHECK(memcmp(back, data, blocks * 512) == 0);
		test_put_channel(ch);
		uraid_bdev_close(d);
		free(back);
		free(data);
		CHECK_EQ(test_delete_bdev("a"), 0);
		delete_members(n);
		uraid_runtime_stop();
	}
	CHECK(sets >= n); /* (every single loss at least) */
}

static void
test_draid_every_loss(void)
{
	static const struct cfg cfgs[] = {
		{"draid", 8, 3, 2, 0, 4, 512, 96, false},
		{"draid", 7, 2, 3, 0, 4, 512, 64, false},
		{"draid", 6, 4, 1, 0, 4, 512, 128, false},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cfgs); i++)
		draid_loss_case(&cfgs[i]);
}

TEST_MAIN(TEST(test_bad_arrays), TEST(test_member_placement), TEST(test_draid_every_loss),
	  TEST(test_model_healthy), TEST(test_model_degraded), TEST(test_overlapping_writes),
	  TEST(test_claimed_mirror_writes), TEST(test_check_finds_corruption),
	  TEST(test_offline_and_raid0_errors), TEST(test_threads_overlapping),
	  TEST(test_claimed_parity_writes), TEST(test_claim_wait_keeps_owner_awake))
