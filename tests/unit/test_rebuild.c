/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Rebuild onto spares, under load: fail members (by I/O errors) while a workload runs, add
 * spares, keep the workload going while they are rebuilt, then check every block against the
 * model, run the parity check, and fail other members so that reads must use the rebuilt
 * ones. Also: two (and three) failures rebuilt in one pass, a rebuild that resumes from its
 * superblock checkpoint, a target that fails mid-rebuild, and bad spares.
 */
#include <stdlib.h>

#include "bdev/bdev_priv.h"
#include "core/core.h"
#include "uraid/array.h"

#define REACTORS 2
#include "workload.h"

#define BS 512

struct rcfg {
	const char *level;
	unsigned n, k, m, copies;
	unsigned fail; /* members failed at once */
};

static void
make_members(unsigned n, uint64_t blocks)
{
	fault_members_create(n, blocks, BS);
}

static void
make_spares(unsigned n, uint64_t blocks)
{
	for (unsigned i = 0; i < n; i++) {
		struct uraid_bdev *b;
		char name[16];

		snprintf(name, sizeof(name), "s%u", i);
		CHECK_EQ(ram_bdev_create(name, blocks, BS, NULL, &b), 0);
	}
}

static void
fail_member(unsigned i)
{
	struct fault_rule_opts r = {.io_type_mask = (1u << URAID_IO_NUM_TYPES) - 1,
				    .kind = FAULT_FAILURE,
				    .count = -1,
				    .probability_ppm = 1000000};

	CHECK_EQ(fault_inject(g_fault_names[i], &r), 0);
}

static struct uraid_bdev *
create(const struct rcfg *c, bool sb)
{
	return fault_array_create("a", c->level, 0, c->n, c->k, c->m, c->copies, sb);
}

static struct uraid_array_check_result
run_check(void)
{
	return run_scrub("a", false, 1);
}

static void
teardown(unsigned n, unsigned spares)
{
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	fault_members_delete(n);
	for (unsigned i = 0; i < spares; i++) {
		char name[16];

		snprintf(name, sizeof(name), "s%u", i);
		if (uraid_bdev_get_by_name(name))
			CHECK_EQ(test_delete_bdev(name), 0);
	}
}

static void
rebuild_case(const struct rcfg *c)
{
	struct uraid_array_check_result r;
	struct uraid_array_info info;
	struct uraid_bdev *a;
	struct wl wl;
	char err[256];
	unsigned rounds = 0;

	REQUIRE(start_manual(REACTORS) == 0);
	uraid_raid_set_options(8, 0); /* a small window: the rebuild interleaves with the load */
	make_members(c->n, 2048);
	make_spares(c->fail, 2048);
	a = create(c, false);
	REQUIRE(a != NULL);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 300, 8, 40, 0, NULL);
	for (unsigned f = 0; f < c->fail; f++)
		fail_member(f * 2 % c->n); /* spread out: members 0, 2, 4 ... */
	wl_run(&wl, 300, 8, 40, 0, NULL);  /* the array finds out, and goes on degraded */
	info = info_of(a);
	CHECK_EQ(info.failed_members, c->fail);
	for (unsigned f = 0; f < c->fail; f++) {
		char name[16];

		snprintf(name, sizeof(name), "s%u", f);
		CHECK_EQ(uraid_array_add_spare(a, name, err, sizeof(err)), 0);
	}
	/* Keep writing and reading while the rebuild runs. */
	do {
		wl_run(&wl, 50, 8, 40, 0, NULL);
		info = info_of(a);
	} while ((info.rebuild.active || info.failed_members) && ++rounds < 2000);
	CHECK(rounds > 1); /* it did run under load */
	CHECK_EQ(info.failed_members, 0);
	CHECK(!info.rebuild.active);
	for (unsigned f = 0; f < c->fail; f++) {
		char name[16];

		snprintf(name, sizeof(name), "s%u", f);
		CHECK(strcmp(info.members[f * 2 % c->n].name, name) == 0);
		CHECK_EQ(info.members[f * 2 % c->n].state, URAID_MEMBER_ACTIVE);
	}
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	r = run_check();
	CHECK_EQ(r.bad_stripes, 0);
	CHECK_EQ(r.unreadable, 0);
	/* Now lose members that were never replaced: reads must come from the rebuilt ones. */
	for (unsigned f = 0, failed = 0; failed < c->fail && f < c->n; f++) {
		if (f % 2 == 1 || f >= 2 * c->fail) {
			CHECK_EQ(uraid_array_fail_member(a, f), 0);
			failed++;
		}
	}
	wl_verify_all(&wl);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	if (wl.errors || wl.mismatches)
		fprintf(stderr, "  case %s n=%u fail=%u\n", c->level, c->n, c->fail);
	wl_close(&wl);
	teardown(c->n, c->fail);
	uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
	uraid_runtime_stop();
}

static void
test_rebuild_under_load(void)
{
	static const struct rcfg cfgs[] = {
		{"raid1", 2, 0, 0, 0, 1}, {"raid1", 3, 0, 0, 0, 2},  {"raid10", 4, 0, 0, 2, 1},
		{"raid5", 4, 0, 0, 0, 1}, {"raid5f", 5, 0, 0, 0, 1}, {"raid6", 5, 0, 0, 0, 2},
		{"ec", 7, 4, 3, 0, 3},	  {"draid", 8, 4, 2, 1, 2},  {"draid", 7, 3, 1, 0, 1},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cfgs); i++)
		rebuild_case(&cfgs[i]);
}

/* A rebuild stopped half way (the array shut down) resumes from its checkpoint. */
static void
test_resume_from_checkpoint(void)
{
	struct rcfg c = {"raid5", 4, 0, 0, 0, 1};
	struct uraid_array_info info;
	struct uraid_bdev *a;
	struct wl wl;
	char err[256], report[1024];
	uint64_t at_stop, total;
	uint8_t *saved_model;

	REQUIRE(start_manual(REACTORS) == 0);
	make_members(c.n, 4096);
	make_spares(1, 4096);
	a = create(&c, true);
	REQUIRE(a != NULL);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 400, 8, 40, 0, NULL);
	fail_member(1);
	wl_run(&wl, 100, 8, 40, 0, NULL);
	/* 1 MB/s and a 1 ms checkpoint: the manual clock decides how far it gets. */
	uraid_raid_set_options(4, 1);
	g_rebuild_opts.checkpoint_us = 1000;
	CHECK_EQ(uraid_array_add_spare(a, "s0", err, sizeof(err)), 0);
	for (int i = 0; i < 40; i++) {
		uraid_runtime_advance_us(5000);
		uraid_runtime_poll_until_idle(100);
	}
	info = info_of(a);
	CHECK(info.rebuild.active);
	at_stop = info.rebuild.done_blocks;
	total = info.rebuild.total_blocks;
	CHECK(at_stop > 0 && at_stop < total);
	saved_model = malloc(wl.blocks * wl.bs);
	memcpy(saved_model, wl.model, wl.blocks * wl.bs);
	wl_close(&wl);
	/* Shut down mid-rebuild; the superblocks keep the checkpoint. */
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(fault_clear("f1"), 0); /* the old member is readable again, but stale */
	CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
	CHECK(strstr(report, "rebuilding (s0, from block") != NULL);
	CHECK(strstr(report, "slot 1 ") != NULL);
	a = uraid_bdev_get_by_name("a");
	REQUIRE(a != NULL);
	uraid_runtime_poll_until_idle(10);
	info = info_of(a);
	CHECK(info.rebuild.active);
	/* Resumed near where it stopped, not from zero (the last checkpoint may trail a bit). */
	CHECK(info.rebuild.done_blocks > 0);
	CHECK(info.rebuild.done_blocks + 64 >= at_stop);
	uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
	for (int i = 0; i < 1000 && info_of(a).rebuild.active; i++) {
		uraid_runtime_advance_us(5000);
		uraid_runtime_poll_until_idle(100);
	}
	info = info_of(a);
	CHECK(!info.rebuild.active);
	CHECK_EQ(info.failed_members, 0);
	REQUIRE(wl_open(&wl, "a"));
	memcpy(wl.model, saved_model, wl.blocks * wl.bs);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	CHECK_EQ(run_check().bad_stripes, 0);
	wl_close(&wl);
	free(saved_model);
	g_rebuild_opts.checkpoint_us = 1000000;
	teardown(c.n, 1);
	uraid_runtime_stop();
}

/* The spare fails while it is being rebuilt: the rebuild stops, the next spare takes over. */
static void
test_target_fails(void)
{
	struct rcfg c = {"raid6", 5, 0, 0, 0, 1};
	struct uraid_array_info info;
	struct fault_bdev_opts fo = {.name = "fs", .base_name = "s0"};
	struct uraid_bdev *a, *b;
	struct wl wl;
	char err[256];

	REQUIRE(start_manual(REACTORS) == 0);
	make_members(c.n, 2048);
	make_spares(2, 2048);
	CHECK_EQ(fault_bdev_create(&fo, &b), 0);
	a = create(&c, false);
	REQUIRE(a != NULL && wl_open(&wl, "a"));
	wl_run(&wl, 300, 8, 40, 0, NULL);
	CHECK_EQ(uraid_array_fail_member(a, 3), 0);
	uraid_raid_set_options(4, 1);
	CHECK_EQ(uraid_array_add_spare(a, "fs", err, sizeof(err)), 0);
	for (int i = 0; i < 10; i++) {
		uraid_runtime_advance_us(2000);
		uraid_runtime_poll_until_idle(100);
	}
	CHECK(info_of(a).rebuild.active);
	{
		struct fault_rule_opts r = {.io_type_mask = 1u << URAID_IO_WRITE,
					    .kind = FAULT_FAILURE,
					    .count = -1,
					    .probability_ppm = 1000000};

		CHECK_EQ(fault_inject("fs", &r), 0);
	}
	CHECK_EQ(uraid_array_add_spare(a, "s1", err, sizeof(err)), 0);
	uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
	for (int i = 0; i < 2000 && (info_of(a).rebuild.active || info_of(a).failed_members); i++) {
		uraid_runtime_advance_us(2000);
		wl_run(&wl, 10, 4, 20, 0, NULL);
	}
	info = info_of(a);
	CHECK_EQ(info.failed_members, 0);
	CHECK(strcmp(info.members[3].name, "s1") == 0);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	CHECK_EQ(run_check().bad_stripes, 0);
	wl_close(&wl);
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(test_delete_bdev("fs"), 0);
	fault_members_delete(c.n);
	CHECK_EQ(test_delete_bdev("s0"), 0);
	CHECK_EQ(test_delete_bdev("s1"), 0);
	uraid_runtime_stop();
}

/*
 * A spare that fails while it is rebuilt is trusted by the superblocks on disk below its
 * checkpoint until a round records the failure. A write acknowledged before that round would
 * skip it there and be lost at a crash (the stale copy comes back as rebuilt and a mirror's
 * resync copies it over the good one). So the write waits for the round: here the round's
 * superblock writes are held back by latency on the surviving member, and the write must not
 * complete before they are done, and the superblock then says the slot failed.
 */
static void
test_target_fails_recorded_first(void)
{
	static const char *const levels[] = {"raid1", "raid10", "raid5"};

	for (unsigned li = 0; li < ARRAY_SIZE(levels); li++) {
		struct rcfg c = {levels[li], strcmp(levels[li], "raid1") ? 4 : 2, 0, 0, 0, 1};
		struct fault_bdev_opts fo = {.name = "fs", .base_name = "s0"};
		struct fault_rule_opts fail = {.io_type_mask = 1u << URAID_IO_WRITE,
					       .kind = FAULT_FAILURE,
					       .count = -1,
					       .probability_ppm = 1000000};
		struct fault_rule_opts slow = {.io_type_mask = 1u << URAID_IO_WRITE,
					       .kind = FAULT_LATENCY,
					       .offset_blocks = 0,
					       .num_blocks =
						       2 * 4096 / BS, /* both superblock copies */
					       .count = -1,
					       .probability_ppm = 1000000,
					       .latency_us = 5000000};
		struct uraid_bdev_desc *desc;
		struct uraid_io_channel *ch;
		struct uraid_bdev *a, *b;
		struct sync_io s = {0};
		uint8_t *buf;
		char err[256];
		struct sb sb;
		bool backup;

		REQUIRE(start_manual(REACTORS) == 0);
		make_members(c.n, 4096);
		make_spares(1, 4096);
		CHECK_EQ(fault_bdev_create(&fo, &b), 0);
		a = create(&c, true);
		REQUIRE(a != NULL);
		CHECK_EQ(uraid_array_fail_member(a, 1), 0);
		uraid_runtime_poll_until_idle(1000);
		/* 1 MB/s and a 1 ms checkpoint: part of the spare is rebuilt, and recorded. */
		uraid_raid_set_options(4, 1);
		g_rebuild_opts.checkpoint_us = 1000;
		CHECK_EQ(uraid_array_add_spare(a, "fs", err, sizeof(err)), 0);
		for (int i = 0; i < 40; i++) {
			uraid_runtime_advance_us(5000);
			uraid_runtime_poll_until_idle(100);
		}
		CHECK(info_of(a).rebuild.active);
		CHECK(atomic_load(&raid_from_bdev(a)->members[1].durable) > 0);
		CHECK_EQ(fault_inject("fs", &fail), 0);
		for (unsigned m = 0; m < c.n; m++) {
			if (m != 1)
				CHECK_EQ(fault_inject(g_fault_names[m], &slow), 0);
		}
		CHECK_EQ(uraid_bdev_open("a", true, NULL, NULL, &desc), 0);
		ch = test_get_channel(desc);
		buf = test_alloc(3 * 4096);
		memset(buf, 0x5a, 3 * 4096);
		/* The first strip (raid10: slot 1 holds its second copy), or raid5's first stripe
		 * whole: a write to the spare's rebuilt part. */
		s.desc = desc;
		s.ch = ch;
		s.op = SYNC_WRITE;
		s.buf = buf;
		s.offset_blocks = 0;
		s.num_blocks = (strcmp(c.level, "raid5") ? 1 : 3) * 4096 / BS;
		s.flags = URAID_IO_FUA;
		uraid_reactor_send(uraid_reactor_get(0), sync_submit_msg, &s);
		uraid_runtime_poll_until_idle(1000);
		CHECK_EQ(s.submit_rc, 0);
		CHECK(!s.w.done); /* held: the spare's failure is not in the superblocks yet */
		for (int i = 0; i < 20 && !s.w.done; i++) {
			uraid_runtime_advance_us(1000000);
			uraid_runtime_poll_until_idle(100);
		}
		CHECK(s.w.done);
		CHECK_EQ(s.w.status, 0);
		for (unsigned m = 0; m < c.n; m++)
			CHECK_EQ(fault_clear(g_fault_names[m]), 0);
		CHECK_EQ(raid_sb_read(raid_from_bdev(a)->members[0].desc, &sb, &backup, err,
				      sizeof(err)),
			 0);
		CHECK_EQ(sb.slots[1].state, SB_SLOT_FAILED);
		test_put_channel(ch);
		uraid_bdev_close(desc);
		free(buf);
		g_rebuild_opts.checkpoint_us = 1000000;
		uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
		for (int i = 0; i < 10; i++) {
			uraid_runtime_advance_us(1000000);
			uraid_runtime_poll_until_idle(100);
		}
		CHECK_EQ(test_delete_bdev("a"), 0);
		uraid_runtime_poll_until_idle(1000);
		CHECK_EQ(test_delete_bdev("fs"), 0);
		fault_members_delete(c.n);
		CHECK_EQ(test_delete_bdev("s0"), 0);
		uraid_runtime_stop();
	}
}

static void
test_bad_spares(void)
{
	struct rcfg c5 = {"raid5", 3, 0, 0, 0, 0}, c0 = {"raid0", 2, 0, 0, 0, 0};
	struct uraid_bdev *a, *b;
	char err[256];

	REQUIRE(start_manual(1) == 0);
	make_members(3, 1024);
	CHECK_EQ(ram_bdev_create("small", 512, BS, NULL, &b), 0);
	CHECK_EQ(ram_bdev_create("big4k", 1024, 4096, NULL, &b), 0);
	a = create(&c5, false);
	REQUIRE(a != NULL);
	CHECK_EQ(uraid_array_add_spare(a, "small", err, sizeof(err)), -ENOSPC);
	CHECK(strstr(err, "too small") != NULL);
	CHECK_EQ(uraid_array_add_spare(a, "big4k", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "512") != NULL);
	CHECK_EQ(uraid_array_add_spare(a, "nope", err, sizeof(err)), -ENODEV);
	CHECK_EQ(uraid_array_add_spare(a, "f0", err, sizeof(err)), -EBUSY); /* a member */
	CHECK(strstr(err, "already a member") != NULL);
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(100);
	a = create(&c0, false);
	REQUIRE(a != NULL);
	CHECK_EQ(uraid_array_add_spare(a, "small", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "no redundancy") != NULL);
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(100);
	fault_members_delete(3);
	CHECK_EQ(test_delete_bdev("small"), 0);
	CHECK_EQ(test_delete_bdev("big4k"), 0);
	uraid_runtime_stop();
}

/* Two arrays share a pool: each failure takes the first pool spare that fits it; a spare
 * added to the pool later goes at once to an array that waits for one. */
static void
test_shared_pool(void)
{
	struct uraid_bdev *r1, *r5, *b;
	struct uraid_array_info info;
	struct wl w1, w5;
	char err[256];

	REQUIRE(start_manual(REACTORS) == 0);
	make_members(5, 2048);
	r1 = fault_array_create("r1", "raid1", 0, 2, 0, 0, 0, false);
	r5 = fault_array_create("r5", "raid5", 2, 3, 0, 0, 0, false);
	REQUIRE(r1 != NULL && r5 != NULL);
	CHECK_EQ(ram_bdev_create("tiny", 1024, BS, NULL, &b), 0);
	CHECK_EQ(ram_bdev_create("s0", 2048, BS, NULL, &b), 0);
	CHECK_EQ(ram_bdev_create("s1", 2048, BS, NULL, &b), 0);
	CHECK_EQ(uraid_spare_pool_add("tiny", err, sizeof(err)), 0);
	CHECK_EQ(uraid_spare_pool_add("s0", err, sizeof(err)), 0);
	CHECK_EQ(uraid_spare_pool_add("s0", err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "spare pool") != NULL);
	CHECK_EQ(uraid_spare_pool_add("f0", err, sizeof(err)), -EBUSY); /* a member */
	CHECK_EQ(uraid_spare_pool_add("r1", err, sizeof(err)), -EINVAL);
	CHECK_EQ(uraid_spare_pool_count(), 2);
	REQUIRE(wl_open(&w1, "r1") && wl_open(&w5, "r5"));
	wl_run(&w1, 200, 8, 40, 0, NULL);
	wl_run(&w5, 200, 8, 40, 0, NULL);
	/* r5 loses a member: "tiny" is too small, s0 fits. */
	CHECK_EQ(uraid_array_fail_member(r5, 1), 0);
	for (int i = 0; i < 500 && (info_of(r5).failed_members || info_of(r5).rebuild.active); i++)
		wl_run(&w5, 20, 8, 40, 0, NULL);
	info = info_of(r5);
	CHECK_EQ(info.failed_members, 0);
	CHECK(strcmp(info.members[1].name, "s0") == 0);
	CHECK_EQ(uraid_spare_pool_count(), 1);
	/* r1 loses one: nothing in the pool fits, it waits degraded... */
	CHECK_EQ(uraid_array_fail_member(r1, 0), 0);
	wl_run(&w1, 100, 8, 40, 0, NULL);
	CHECK_EQ(info_of(r1).failed_members, 1);
	CHECK_EQ(uraid_spare_pool_count(), 1);
	/* ... until one that fits joins the pool. */
	CHECK_EQ(uraid_spare_pool_add("s1", err, sizeof(err)), 0);
	for (int i = 0; i < 500 && (info_of(r1).failed_members || info_of(r1).rebuild.active); i++)
		wl_run(&w1, 20, 8, 40, 0, NULL);
	info = info_of(r1);
	CHECK_EQ(info.failed_members, 0);
	CHECK(strcmp(info.members[0].name, "s1") == 0);
	wl_verify_all(&w1);
	wl_verify_all(&w5);
	CHECK_EQ(w1.errors + w5.errors, 0);
	CHECK_EQ(w1.mismatches + w5.mismatches, 0);
	wl_close(&w1);
	wl_close(&w5);
	/* Releasing spares: by name, then the rest of the pool. */
	CHECK_EQ(uraid_spare_remove("nope"), -ENODEV);
	CHECK_EQ(uraid_spare_remove("tiny"), 0);
	CHECK(uraid_bdev_claimed_by(uraid_bdev_get_by_name("tiny")) == NULL);
	CHECK_EQ(uraid_spare_pool_count(), 0);
	uraid_spare_pool_clear();
	CHECK_EQ(test_delete_bdev("r1"), 0);
	CHECK_EQ(test_delete_bdev("r5"), 0);
	uraid_runtime_poll_until_idle(1000);
	fault_members_delete(5);
	CHECK_EQ(test_delete_bdev("tiny"), 0);
	CHECK_EQ(test_delete_bdev("s0"), 0);
	CHECK_EQ(test_delete_bdev("s1"), 0);
	uraid_runtime_stop();
}

/* A member fails before the array has served any I/O (no channels yet): the channels made
 * later, during the rebuild, must still reach the spare, or the rebuild writes nothing. */
static void
test_rebuild_before_any_io(void)
{
	static const char *const levels[] = {"raid1", "raid6"};
	struct uraid_array_check_result r;
	char err[256];

	for (unsigned i = 0; i < ARRAY_SIZE(levels); i++) {
		struct uraid_bdev *a;
		struct rcfg c = {levels[i], 4, 0, 0, 0, 1};

		REQUIRE(start_manual(REACTORS) == 0);
		make_members(c.n, 2048);
		make_spares(1, 2048);
		a = create(&c, false);
		REQUIRE(a != NULL);
		CHECK_EQ(uraid_array_fail_member(a, 1), 0);
		CHECK_EQ(uraid_array_add_spare(a, "s0", err, sizeof(err)), 0);
		for (int k = 0;
		     k < 1000 && (info_of(a).rebuild.active || info_of(a).failed_members); k++) {
			uraid_runtime_advance_us(1000);
			uraid_runtime_poll_until_idle(100);
		}
		CHECK_EQ(info_of(a).failed_members, 0);
		r = run_check();
		CHECK_EQ(r.unreadable, 0);
		CHECK_EQ(r.bad_stripes, 0);
		/* And the spare really holds the slot's data: lose the others it pairs with. */
		CHECK_EQ(uraid_array_fail_member(a, 0), 0);
		CHECK_EQ(uraid_array_fail_member(a, 2), 0);
		CHECK(info_of(a).online);
		teardown(c.n, 1);
		uraid_runtime_stop();
	}
}

/*
 * Under a bitmap, a member that failed (a path lost) and is added back while the load goes on
 * catches up on the regions written meanwhile, under that same load: every block checks,
 * parity checks, and it serves its part once the others fail.
 */
/* The runtime started with a small rebuild window, members of `blocks` blocks and array "a"
 * over them with superblocks under policy (bitmap regions of region_kb; 0: the default),
 * opened in wl and written for a while. NULL if a step failed. */
static struct uraid_bdev *
start_written(const struct rcfg *c, uint64_t blocks, enum uraid_consistency_policy policy,
	      uint32_t region_kb, struct wl *wl)
{
	struct uraid_bdev *a;

	if (start_manual(REACTORS) != 0)
		return NULL;
	uraid_raid_set_options(8, 0);
	make_members(c->n, blocks);
	g_fault_policy = policy;
	g_fault_region_kb = region_kb;
	a = create(c, true);
	g_fault_policy = URAID_POLICY_DEFAULT;
	g_fault_region_kb = 0;
	if (a == NULL || !wl_open(wl, "a"))
		return NULL;
	wl_run(wl, 300, 8, 40, 0, NULL);
	return a;
}

static void
test_member_back_under_load(void)
{
	static const struct rcfg cfgs[] = {
		{"raid5", 4, 0, 0, 0, 1},
		{"raid6", 5, 0, 0, 0, 1},
		{"raid1", 2, 0, 0, 0, 1},
		{"ec", 6, 3, 3, 0, 1},
		/* (no distributed spare: with one, the slot is rebuilt into it at once, and a
		 * member that comes back is a new one, its strips copied back) */
		{"draid", 8, 3, 2, 0, 1},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cfgs); i++) {
		const struct rcfg *c = &cfgs[i];
		struct uraid_array_stats st;
		struct uraid_array_info info;
		struct uraid_bdev *a;
		struct wl wl;
		char err[256];
		unsigned rounds = 0;

		a = start_written(c, 4096, URAID_POLICY_BITMAP, 16, &wl);
		REQUIRE(a != NULL);
		for (int t = 0; t < 4; t++) { /* quiet: the bits go */
			uraid_runtime_advance_us(g_bitmap_sweep_us);
			uraid_runtime_poll_until_idle(1000);
		}
		CHECK_EQ(info_of(a).bitmap.dirty, 0);
		fail_member(1);
		wl_run(&wl, 40, 4, 16, 0, NULL); /* it fails on the first I/O; a few regions more */
		CHECK_EQ(info_of(a).failed_members, 1);
		CHECK_EQ(fault_clear("f1"), 0); /* the path is back */
		CHECK_EQ(uraid_array_add_spare(a, "f1", err, sizeof(err)), 0);
		do {
			wl_run(&wl, 20, 8, 40, 0, NULL);
			info = info_of(a);
		} while ((info.rebuild.active || info.failed_members) && ++rounds < 2000);
		CHECK_EQ(info.failed_members, 0);
		CHECK(strcmp(info.members[1].name, "f1") == 0);
		CHECK_EQ(uraid_array_get_stats(a, &st), 0);
		CHECK(st.rebuild_units_skipped > 0); /* not a full rebuild */
		CHECK_EQ(wl.errors, 0);
		wl_verify_all(&wl);
		CHECK_EQ(wl.mismatches, 0);
		CHECK_EQ(run_check().bad_stripes, 0);
		for (unsigned f = 0, lost = 0;
		     f < c->n && lost < (info.parity_chunks ? info.parity_chunks : info.copies - 1);
		     f++) {
			if (f == 1)
				continue;
			CHECK_EQ(uraid_array_fail_member(a, f), 0);
			lost++;
		}
		wl_verify_all(&wl);
		CHECK_EQ(wl.errors, 0);
		CHECK_EQ(wl.mismatches, 0);
		if (wl.errors || wl.mismatches)
			fprintf(stderr, "  case %s n=%u\n", c->level, c->n);
		wl_close(&wl);
		teardown(c->n, 0);
		uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
		uraid_runtime_stop();
	}
}

/* Log entries in rows of ram member name's log area (the raw bytes under the fault bdev). */
static unsigned
log_entries_on(const char *ram, const struct raid_array *ra)
{
	const uint8_t *mem = ram_bdev_memory(uraid_bdev_get_by_name(ram));
	unsigned n = 0;

	for (uint64_t b = 0; b < ra->ppl_blocks; b++)
		n += memcmp(mem + (ra->ppl_offset_blocks + b) * BS, "UAIDPPL1", 8) == 0;
	return n;
}

/*
 * A member that failed and is added back as a spare under a log policy holds entries of this
 * run in its log area, from its first stay in the slot; nothing newer on its rings would hide
 * them from a recovery, which would decode from partial parities older than the data. The
 * spare's log area is cleared before it takes the slot.
 */
static void
test_back_under_log_cleared(void)
{
	static const struct {
		struct rcfg c;
		enum uraid_consistency_policy policy;
	} cases[] = {
		{{"raid5", 4, 0, 0, 0, 1}, URAID_POLICY_PPL},
		{{"raid6", 5, 0, 0, 0, 1}, URAID_POLICY_PPL},
		{{"ec", 6, 4, 2, 0, 1}, URAID_POLICY_PPL},
		{{"draid", 9, 4, 2, 1, 1}, URAID_POLICY_PPL},
		{{"draid", 8, 4, 1, 1, 1}, URAID_POLICY_JOURNAL},
		{{"raid5", 4, 0, 0, 0, 1}, URAID_POLICY_JOURNAL},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct rcfg *c = &cases[i].c;
		struct uraid_array_info info;
		struct raid_array *ra;
		struct uraid_bdev *a;
		struct wl wl;
		char err[256];
		unsigned rounds = 0;

		a = start_written(c, 8192, cases[i].policy, 0, &wl);
		REQUIRE(a != NULL);
		ra = raid_from_bdev(a);
		REQUIRE(log_entries_on("m1", ra) > 0); /* what is to be cleared */
		fail_member(1);
		wl_run(&wl, 40, 4, 16, 0, NULL);
		CHECK_EQ(info_of(a).failed_members, 1);
		CHECK_EQ(fault_clear("f1"), 0);
		CHECK_EQ(uraid_array_add_spare(a, "f1", err, sizeof(err)), 0);
		do {
			uraid_runtime_poll_until_idle(1000);
			info = info_of(a);
		} while ((info.rebuild.active || info.failed_members) && ++rounds < 2000);
		CHECK_EQ(info.failed_members, 0);
		CHECK(strcmp(info.members[1].name, "f1") == 0);
		/* No write since it came back: nothing of its first stay is left. */
		CHECK_EQ(log_entries_on("m1", ra), 0);
		wl_run(&wl, 100, 8, 40, 0, NULL);
		CHECK_EQ(wl.errors, 0);
		wl_verify_all(&wl);
		CHECK_EQ(wl.mismatches, 0);
		CHECK_EQ(run_check().bad_stripes, 0);
		if (wl.errors || wl.mismatches)
			fprintf(stderr, "  case %s n=%u policy %d\n", c->level, c->n,
				(int)cases[i].policy);
		wl_close(&wl);
		teardown(c->n, 0);
		uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
		uraid_runtime_stop();
	}
}

/* --- draid: distributed spares --- */

/* Blocks read and written so far on each of the fault members 0..n-1. */
static void
member_blocks(unsigned n, uint64_t *rd, uint64_t *wr)
{
	for (unsigned i = 0; i < n; i++) {
		rd[i] = bdev_blocks_done(g_fault_names[i], URAID_IO_READ);
		wr[i] = bdev_blocks_done(g_fault_names[i], URAID_IO_WRITE);
	}
}

static bool
ds_in(struct uraid_bdev *a, unsigned j, const char *state)
{
	return strcmp(info_of(a).draid_spare[j].state, state) == 0;
}

/*
 * draid 4+2 with two distributed spares over 9 members. A failed member is rebuilt at once
 * into the spare strips of the others, reading from and writing to every survivor; a second
 * failure, under load, into the second spare; with both full the array still takes a third
 * failure. Spare members added then take the failed slots: the strips come back from the
 * distributed spares (and the third slot goes through a spare first), under load, until every
 * spare is free and no slot is failed. Every block matches the model throughout, and the
 * parity check finds nothing; at the end two more members can fail.
 */
static void
test_draid_distributed_spares(void)
{
	struct rcfg c = {"draid", 9, 4, 2, 2, 0};
	uint64_t rd0[9], wr0[9], rd1[9], wr1[9], rmin = UINT64_MAX, rmax = 0, wmin = UINT64_MAX,
						 wmax = 0;
	struct uraid_array_check_result r;
	struct uraid_array_info info;
	struct uraid_bdev *a;
	struct wl wl;
	char err[256];
	unsigned rounds = 0;

	REQUIRE(start_manual(REACTORS) == 0);
	uraid_raid_set_options(8, 0);
	make_members(c.n, 4096);
	make_spares(3, 4096);
	a = create(&c, true);
	REQUIRE(a != NULL);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 400, 8, 40, 0, NULL);
	CHECK(ds_in(a, 0, "free") && ds_in(a, 1, "free"));

	/* 1. Member 0 fails, nothing else runs: the rebuild alone, spread over every survivor. */
	member_blocks(c.n, rd0, wr0);
	CHECK_EQ(uraid_array_fail_member(a, 0), 0);
	while (!ds_in(a, 0, "full") && ++rounds < 100000)
		uraid_runtime_poll_until_idle(1);
	CHECK(ds_in(a, 0, "full"));
	CHECK_EQ(info_of(a).draid_spare[0].slot, 0);
	member_blocks(c.n, rd1, wr1);
	for (unsigned i = 1; i < c.n; i++) {
		uint64_t dr = rd1[i] - rd0[i], dw = wr1[i] - wr0[i];

		rmin = dr < rmin ? dr : rmin;
		rmax = dr > rmax ? dr : rmax;
		wmin = dw < wmin ? dw : wmin;
		wmax = dw > wmax ? dw : wmax;
	}
	/* Every survivor reads and writes its share (the table spreads them within a few
	 * strips per period; a small array has few periods). */
	CHECK(rmin > 0 && wmin > 0);
	CHECK(rmax <= 3 * rmin);
	CHECK(wmax <= 3 * wmin);
	if (!(rmin > 0 && wmin > 0 && rmax <= 3 * rmin && wmax <= 3 * wmin))
		fprintf(stderr, "  rebuild reads %lu..%lu, writes %lu..%lu blocks a survivor\n",
			(unsigned long)rmin, (unsigned long)rmax, (unsigned long)wmin,
			(unsigned long)wmax);
	info = info_of(a);
	CHECK_EQ(info.failed_members, 1);
	CHECK(info.online);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	r = run_check();
	CHECK_EQ(r.bad_stripes, 0);
	CHECK_EQ(r.unreadable, 0);

	/* 2. A second failure, under load: into the second spare. */
	fail_member(4);
	rounds = 0;
	do {
		wl_run(&wl, 50, 8, 40, 0, NULL);
	} while (!ds_in(a, 1, "full") && ++rounds < 2000);
	CHECK(rounds > 1);
	CHECK(ds_in(a, 1, "full"));
	CHECK_EQ(info_of(a).draid_spare[1].slot, 4);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	r = run_check();
	CHECK_EQ(r.bad_stripes, 0);
	CHECK_EQ(r.unreadable, 0);

	/* 3. Both spares full: a third failure still leaves the array m = 2 short of losing
	 * data. */
	CHECK_EQ(uraid_array_fail_member(a, 7), 0);
	info = info_of(a);
	CHECK_EQ(info.failed_members, 3);
	CHECK(info.online);
	wl_run(&wl, 200, 8, 40, 0, NULL);
	wl_verify_all(&wl);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);

	/* 4. Spare members: the strips come back, under load, until all is as at the start. */
	for (unsigned i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "s%u", i);
		CHECK_EQ(uraid_array_add_spare(a, name, err, sizeof(err)), 0);
	}
	rounds = 0;
	do {
		wl_run(&wl, 50, 8, 40, 0, NULL);
		info = info_of(a);
	} while ((info.failed_members || info.rebuild.active || !ds_in(a, 0, "free") ||
		  !ds_in(a, 1, "free")) &&
		 ++rounds < 5000);
	CHECK(rounds > 2);
	CHECK_EQ(info.failed_members, 0);
	CHECK(ds_in(a, 0, "free") && ds_in(a, 1, "free"));
	CHECK(strcmp(info.members[0].name, "s0") == 0);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	r = run_check();
	CHECK_EQ(r.bad_stripes, 0);
	CHECK_EQ(r.unreadable, 0);

	/* 5. Redundant again: two more members go, every block still reads back. */
	CHECK_EQ(uraid_array_fail_member(a, 1), 0);
	CHECK_EQ(uraid_array_fail_member(a, 2), 0);
	wl_verify_all(&wl);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	wl_close(&wl);
	teardown(c.n, 3);
	uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
	uraid_runtime_stop();
}

/* Run the manual clock `rounds` steps of 5 ms, or until distributed spare 0 is in state
 * `until` (if not NULL). */
static void
clock_run(struct uraid_bdev *a, int rounds, const char *until)
{
	for (int i = 0; i < rounds && !(until && ds_in(a, 0, until)); i++) {
		uraid_runtime_advance_us(5000);
		uraid_runtime_poll_until_idle(100);
	}
}

/* Stop the array and start it again from its members' superblocks (the model carried). */
static struct uraid_bdev *
restart(struct wl *wl)
{
	uint8_t *saved = malloc(wl->blocks * wl->bs);
	char report[1024];
	struct uraid_bdev *a;

	memcpy(saved, wl->model, wl->blocks * wl->bs);
	wl_close(wl);
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
	a = uraid_bdev_get_by_name("a");
	if (a == NULL || !wl_open(wl, "a")) {
		fprintf(stderr, "restart: %s\n", report);
		abort();
	}
	uraid_runtime_poll_until_idle(10);
	memcpy(wl->model, saved, wl->blocks * wl->bs);
	free(saved);
	return a;
}

/* draid with superblocks, stopped in the middle of filling a distributed spare and again in
 * the middle of draining it onto a new member: each time the restarted array goes on from
 * its last checkpoint, not from the start, and every block reads back. */
static void
test_draid_resume(void)
{
	struct rcfg c = {"draid", 8, 4, 2, 1, 0};
	struct uraid_array_info info;
	struct uraid_bdev *a;
	struct wl wl;
	char err[256];
	uint64_t at_stop, stripes;

	REQUIRE(start_manual(REACTORS) == 0);
	make_members(c.n, 8192);
	make_spares(1, 8192);
	a = create(&c, true);
	REQUIRE(a != NULL);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 400, 8, 40, 0, NULL);
	/* 1 MB/s and a 1 ms checkpoint: the manual clock decides how far it gets. */
	uraid_raid_set_options(4, 1);
	g_rebuild_opts.checkpoint_us = 1000;
	CHECK_EQ(uraid_array_fail_member(a, 1), 0);
	clock_run(a, 200, NULL); /* past the first block of periods (see rebuild.c) */
	info = info_of(a);
	at_stop = info.draid_spare[0].done_stripes;
	stripes = layout_strips_to_stripes(&((struct raid_array *)a->ctx)->l,
					   ((struct raid_array *)a->ctx)->l.member_blocks / 8);
	CHECK(strcmp(info.draid_spare[0].state, "filling") == 0);
	CHECK(at_stop > 0 && at_stop < stripes);
	a = restart(&wl);
	info = info_of(a);
	CHECK(strcmp(info.draid_spare[0].state, "filling") == 0);
	CHECK_EQ(info.draid_spare[0].slot, 1);
	CHECK(info.draid_spare[0].done_stripes > 0);
	CHECK(info.draid_spare[0].done_stripes + 16 >= at_stop);
	wl_verify_all(&wl); /* mid-fill: decoded where the spare is not filled yet */
	CHECK_EQ(wl.mismatches, 0);
	uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
	clock_run(a, 1000, "full");
	CHECK(ds_in(a, 0, "full"));

	/* Drained onto a new member, stopped halfway, resumed. */
	uraid_raid_set_options(4, 1);
	CHECK_EQ(uraid_array_add_spare(a, "s0", err, sizeof(err)), 0);
	clock_run(a, 200, NULL);
	info = info_of(a);
	at_stop = info.draid_spare[0].done_stripes;
	CHECK(strcmp(info.draid_spare[0].state, "draining") == 0);
	CHECK(at_stop > 0 && at_stop < stripes);
	a = restart(&wl);
	info = info_of(a);
	CHECK(strcmp(info.draid_spare[0].state, "draining") == 0);
	CHECK(strcmp(info.members[1].name, "s0") == 0);
	CHECK(info.draid_spare[0].done_stripes > 0);
	CHECK(info.draid_spare[0].done_stripes + 16 >= at_stop);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
	clock_run(a, 1000, "free");
	info = info_of(a);
	CHECK(strcmp(info.draid_spare[0].state, "free") == 0);
	CHECK_EQ(info.failed_members, 0);
	wl_run(&wl, 200, 8, 40, 0, NULL);
	wl_verify_all(&wl);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	CHECK_EQ(run_check().bad_stripes, 0);
	wl_close(&wl);
	g_rebuild_opts.checkpoint_us = 1000000;
	teardown(c.n, 1);
	uraid_runtime_stop();
}

/* A member fails while a distributed spare drains onto a slot's new member: where the
 * spare strip was on it, the copy back decodes the column and writes the new member alone.
 * After that every block reads back, also with m more members gone. */
static void
test_draid_drain_host_fails(void)
{
	struct rcfg c = {"draid", 8, 4, 2, 1, 0};
	struct uraid_bdev *a;
	struct wl wl;
	char err[256];

	REQUIRE(start_manual(REACTORS) == 0);
	make_members(c.n, 8192);
	make_spares(1, 8192);
	a = create(&c, false);
	REQUIRE(a != NULL);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 600, 8, 40, 0, NULL);
	CHECK_EQ(uraid_array_fail_member(a, 0), 0);
	clock_run(a, 1000, "full");
	CHECK(ds_in(a, 0, "full"));
	uraid_raid_set_options(4, 1);
	CHECK_EQ(uraid_array_add_spare(a, "s0", err, sizeof(err)), 0);
	clock_run(a, 100, NULL);
	CHECK(ds_in(a, 0, "draining"));
	CHECK_EQ(uraid_array_fail_member(a, 5), 0); /* holds spare strips of some periods */
	wl_run(&wl, 200, 8, 40, 0, NULL);
	uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
	for (int i = 0; i < 2000 && !(ds_in(a, 0, "full") && info_of(a).draid_spare[0].slot == 5);
	     i++) {
		uraid_runtime_advance_us(5000);
		uraid_runtime_poll_until_idle(100);
	}
	/* Drained onto s0, then slot 5 rebuilt into the freed spare. */
	CHECK(ds_in(a, 0, "full"));
	CHECK_EQ(info_of(a).draid_spare[0].slot, 5);
	CHECK(strcmp(info_of(a).members[0].name, "s0") == 0);
	CHECK_EQ(info_of(a).members[0].state, URAID_MEMBER_ACTIVE);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	CHECK_EQ(run_check().bad_stripes, 0);
	CHECK_EQ(uraid_array_fail_member(a, 2), 0);
	CHECK_EQ(uraid_array_fail_member(a, 3), 0);
	wl_verify_all(&wl);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	wl_close(&wl);
	teardown(c.n, 1);
	uraid_runtime_stop();
}

TEST_MAIN(TEST(test_draid_distributed_spares), TEST(test_draid_resume),
	  TEST(test_draid_drain_host_fails), TEST(test_back_under_log_cleared),
	  TEST(test_bad_spares), TEST(test_member_back_under_load),
	  TEST(test_rebuild_before_any_io), TEST(test_shared_pool), TEST(test_rebuild_under_load),
	  TEST(test_resume_from_checkpoint), TEST(test_target_fails),
	  TEST(test_target_fails_recorded_first))
