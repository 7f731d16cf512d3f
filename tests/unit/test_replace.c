/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Planned replacement: a member is copied to a new one while it keeps serving and a workload
 * runs; redundancy must never drop (no member counted failed at any point), the new member
 * must take the slot with every block right (checked by failing other members so reads need
 * it), and the superblocks must name it (checked by reassembling). Also: the old member
 * failing mid-copy (the new one takes the slot and is rebuilt), the new one failing mid-copy
 * (abandoned, the old one stays), replacing from the spare list, and bad requests.
 */
#include <stdlib.h>

#include "bdev/bdev_priv.h"
#include "core/core.h"
#include "uraid/array.h"

#define REACTORS 2
#include "workload.h"

#define BS 512

enum mode { OK, OLD_FAILS, NEW_FAILS };

struct rcfg {
	const char *level;
	unsigned n, k, m, copies;
	unsigned tolerance; /* members that may fail */
};

static struct uraid_bdev *
create(const struct rcfg *c, bool sb)
{
	return fault_array_create("a", c->level, 0, c->n, c->k, c->m, c->copies, sb);
}

static void
inject_failure(const char *name)
{
	struct fault_rule_opts r = {.io_type_mask = (1u << URAID_IO_NUM_TYPES) - 1,
				    .kind = FAULT_FAILURE,
				    .count = -1,
				    .probability_ppm = 1000000};

	CHECK_EQ(fault_inject(name, &r), 0);
}

static void
replace_case(const struct rcfg *c, enum mode mode)
{
	const char *repl = g_fault_names[c->n]; /* one more fault member than the array uses */
	struct uraid_array_info info;
	struct uraid_bdev *a;
	struct wl wl;
	char err[256], report[1024];
	unsigned rounds = 0, seen_copying = 0, max_failed = 0;
	bool sb = mode == OK;

	REQUIRE(start_manual(REACTORS) == 0);
	uraid_raid_set_options(8, 0); /* a small window: the copy interleaves with the load */
	fault_members_create(c->n + 1, 4096, BS);
	a = create(c, sb);
	REQUIRE(a != NULL);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 300, 8, 40, 0, NULL);
	CHECK_EQ(uraid_array_replace_member(a, "f1", repl, err, sizeof(err)), 0);
	do {
		wl_run(&wl, 30, 8, 40, 0, NULL);
		info = info_of(a);
		if (info.rebuild.active && info.rebuild.replace &&
		    strcmp(info.members[1].replacement, repl) == 0)
			seen_copying++;
		if (info.failed_members > max_failed)
			max_failed = info.failed_members;
		if (rounds == 1 && mode == OLD_FAILS)
			inject_failure("f1");
		if (rounds == 1 && mode == NEW_FAILS)
			inject_failure(repl);
	} while ((info.rebuild.active || info.failed_members || info.replacing >= 0) &&
		 ++rounds < 3000);
	CHECK(seen_copying > 0); /* it ran under load, and said so */
	CHECK(rounds < 3000);
	if (mode == OK)
		CHECK_EQ(max_failed, 0); /* redundancy never dropped */
	CHECK_EQ(info.failed_members, 0);
	CHECK_EQ(info.members[1].state, URAID_MEMBER_ACTIVE);
	CHECK(strcmp(info.members[1].name, mode == NEW_FAILS ? "f1" : repl) == 0);
	CHECK_EQ(info.members[1].replacement[0], '\0');
	CHECK_EQ(info.replacing, -1);
	/* The one let go is free for other uses. */
	CHECK(uraid_bdev_claimed_by(uraid_bdev_get_by_name(mode == NEW_FAILS ? repl : "f1")) ==
	      NULL);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	CHECK_EQ(run_scrub("a", false, 1).bad_stripes, 0);

	if (sb) {
		/* The superblocks name the new member: reassembled without the old one (which
		 * still carries an older superblock naming slot 1). */
		uint8_t *saved = malloc(wl.blocks * wl.bs);

		memcpy(saved, wl.model, wl.blocks * wl.bs);
		wl_close(&wl);
		CHECK_EQ(test_delete_bdev("a"), 0);
		uraid_runtime_poll_until_idle(1000);
		CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
		a = uraid_bdev_get_by_name("a");
		REQUIRE(a != NULL);
		info = info_of(a);
		CHECK_EQ(info.failed_members, 0);
		CHECK(strcmp(info.members[1].name, repl) == 0);
		CHECK(uraid_bdev_claimed_by(uraid_bdev_get_by_name("f1")) == NULL);
		REQUIRE(wl_open(&wl, "a"));
		memcpy(wl.model, saved, wl.blocks * wl.bs);
		free(saved);
	}
	/* Lose every other member the level can lose: reads now need slot 1's new device. */
	for (unsigned f = 0, failed = 0; f < c->n && failed < c->tolerance; f++) {
		if (f == 1 || (c->copies == 2 && f != 0))
			continue; /* raid10: member 0 is slot 1's partner */
		CHECK_EQ(uraid_array_fail_member(a, f), 0);
		failed++;
	}
	wl_verify_all(&wl);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	if (wl.errors || wl.mismatches)
		fprintf(stderr, "  case %s n=%u mode %d\n", c->level, c->n, mode);
	wl_close(&wl);
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	fault_members_delete(c->n + 1);
	uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
	uraid_runtime_stop();
}

static const struct rcfg g_cfgs[] = {
	{"raid1", 2, 0, 0, 0, 1}, {"raid10", 4, 0, 0, 2, 1}, {"raid5", 4, 0, 0, 0, 1},
	{"raid6", 5, 0, 0, 0, 2}, {"ec", 6, 3, 3, 0, 3},     {"draid", 9, 4, 2, 1, 2},
};

/* draid with a distributed spare full (slot 5 failed): member 1, which holds spare strips
 * with slot 5's columns in some periods, is replaced under load; its spare strips are
 * copied under the lock of the stripes whose columns they hold. Then two more members fail
 * and every block reads back. */
static void
test_replace_draid_spare_strips(void)
{
	struct rcfg c = {"draid", 9, 4, 2, 1, 2};
	struct uraid_array_info info;
	struct uraid_bdev *a;
	struct wl wl;
	char err[256];
	unsigned rounds = 0;

	REQUIRE(start_manual(REACTORS) == 0);
	uraid_raid_set_options(8, 0);
	fault_members_create(c.n + 1, 4096, BS);
	a = create(&c, false);
	REQUIRE(a != NULL);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 300, 8, 40, 0, NULL);
	CHECK_EQ(uraid_array_fail_member(a, 5), 0);
	do {
		wl_run(&wl, 30, 8, 40, 0, NULL);
	} while (strcmp(info_of(a).draid_spare[0].state, "full") != 0 && ++rounds < 3000);
	CHECK(strcmp(info_of(a).draid_spare[0].state, "full") == 0);
	CHECK_EQ(uraid_array_replace_member(a, "f1", "f9", err, sizeof(err)), 0);
	rounds = 0;
	do {
		wl_run(&wl, 30, 8, 40, 0, NULL);
		info = info_of(a);
	} while ((info.rebuild.active || info.replacing >= 0) && ++rounds < 3000);
	CHECK(strcmp(info.members[1].name, "f9") == 0);
	CHECK_EQ(info.failed_members, 1);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	CHECK_EQ(uraid_array_fail_member(a, 0), 0);
	CHECK_EQ(uraid_array_fail_member(a, 2), 0);
	wl_verify_all(&wl);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	wl_close(&wl);
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	fault_members_delete(c.n + 1);
	uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
	uraid_runtime_stop();
}

static void
test_replace_under_load(void)
{
	for (unsigned i = 0; i < ARRAY_SIZE(g_cfgs); i++)
		replace_case(&g_cfgs[i], OK);
}

static void
test_old_member_fails(void)
{
	replace_case(&g_cfgs[0], OLD_FAILS);
	replace_case(&g_cfgs[3], OLD_FAILS);
}

static void
test_new_member_fails(void)
{
	replace_case(&g_cfgs[0], NEW_FAILS);
	replace_case(&g_cfgs[2], NEW_FAILS);
}

/* Replace from the spare list, and every request that must be refused. */
static void
test_replace_requests(void)
{
	struct rcfg c5 = {"raid5", 3, 0, 0, 0, 1}, c0 = {"raid0", 2, 0, 0, 0, 0};
	struct uraid_array_info info;
	struct uraid_bdev *a, *b;
	char err[256];

	REQUIRE(start_manual(1) == 0);
	fault_members_create(5, 1024, BS);
	CHECK_EQ(ram_bdev_create("small", 512, BS, NULL, &b), 0);
	a = create(&c5, false);
	REQUIRE(a != NULL);
	CHECK_EQ(uraid_array_replace_member(a, "nope", "f3", err, sizeof(err)), -ENODEV);
	CHECK(strstr(err, "not a member") != NULL);
	CHECK_EQ(uraid_array_replace_member(a, "f0", "small", err, sizeof(err)), -ENOSPC);
	CHECK(strstr(err, "too small") != NULL);
	CHECK_EQ(uraid_array_replace_member(a, "f0", "f2", err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "in use") != NULL);
	CHECK_EQ(uraid_array_replace_member(a, "f0", NULL, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "no spare") != NULL);
	/* From the spare list; a second request while it runs is refused. */
	uraid_raid_set_options(4, 1);
	CHECK_EQ(uraid_array_add_spare(a, "f3", err, sizeof(err)), 0);
	CHECK_EQ(uraid_array_replace_member(a, "f0", NULL, err, sizeof(err)), 0);
	CHECK_EQ(uraid_array_replace_member(a, "f1", "f4", err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "already replacing") != NULL);
	CHECK(uraid_bdev_claimed_by(uraid_bdev_get_by_name("f4")) == NULL); /* not kept */
	uraid_raid_set_options(URAID_RAID_DEFAULT_WINDOW_KB, 0);
	for (int i = 0; i < 1000 && info_of(a).replacing >= 0; i++) {
		uraid_runtime_advance_us(2000);
		uraid_runtime_poll_until_idle(100);
	}
	info = info_of(a);
	CHECK(strcmp(info.members[0].name, "f3") == 0);
	CHECK_EQ(info.spares, 0);
	CHECK_EQ(info.failed_members, 0);
	CHECK_EQ(uraid_array_fail_member(a, 2), 0);
	CHECK_EQ(uraid_array_replace_member(a, "f2", "f4", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "not an active member") != NULL);
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(100);
	a = create(&c0, false);
	REQUIRE(a != NULL);
	CHECK_EQ(uraid_array_replace_member(a, "f0", "f4", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "no redundancy") != NULL);
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(100);
	fault_members_delete(5);
	CHECK_EQ(test_delete_bdev("small"), 0);
	uraid_runtime_stop();
}

TEST_MAIN(TEST(test_replace_requests), TEST(test_replace_draid_spare_strips),
	  TEST(test_replace_under_load), TEST(test_old_member_fails), TEST(test_new_member_fails))
