/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Scrub and read-error repair: corruption written behind the array's back is found; with
 * repair, a single bad column is located and rewritten when there are two or more parities
 * (the data comes back), parity is recomputed on raid5, mirrors are made equal to the first
 * copy; a read error is served from the other members and the block rewritten, the member
 * staying in the array.
 */
#include <stdlib.h>

#include "bdev/bdev_priv.h"
#include "core/core.h"
#include "uraid/array.h"

#define REACTORS 2
#include "workload.h"

#define BS    512
#define STRIP 8 /* blocks (4 KiB) */

static struct uraid_bdev *
setup(const char *level, unsigned n, unsigned k, unsigned m)
{
	fault_members_create(n, 1024, BS);
	return fault_array_create("a", level, 0, n, k, m, 0, false); /* STRIP blocks = 4 KiB */
}

static void
teardown(unsigned n)
{
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	fault_members_delete(n);
}

static struct uraid_array_check_result
scrub(bool repair)
{
	return run_scrub("a", repair, 0);
}

/* Flip bytes of member `member`'s data area, member strip `stripe`, behind the array. */
static void
corrupt(unsigned member, uint64_t stripe)
{
	ram_member_flip(member, (stripe * STRIP + 2) * BS + 100, 64, 0x5a);
}

static void
located_case(const char *level, unsigned n, unsigned k, unsigned m, unsigned member)
{
	struct uraid_array_check_result r;
	struct wl wl;

	REQUIRE(start_manual(REACTORS) == 0);
	REQUIRE(setup(level, n, k, m) != NULL);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 300, 8, 40, 0, NULL);
	r = scrub(false);
	CHECK_EQ(r.bad_stripes, 0);
	CHECK_EQ(r.repaired, 0);
	corrupt(member, 3);
	r = scrub(false); /* check only: reported, not touched */
	CHECK_EQ(r.bad_stripes, 1);
	CHECK_EQ(r.bad[0], 3);
	CHECK_EQ(r.repaired, 0);
	CHECK_EQ(scrub(false).bad_stripes, 1);
	r = scrub(true);
	CHECK_EQ(r.bad_stripes, 1);
	CHECK_EQ(r.repaired, 1);
	CHECK_EQ(r.located, 1);
	CHECK_EQ(scrub(false).bad_stripes, 0);
	/* The located column was rewritten, data columns included: everything reads back. */
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	wl_close(&wl);
	teardown(n);
	uraid_runtime_stop();
}

static void
test_scrub_locates_and_repairs(void)
{
	/* raid6 n=5, stripe 3: P on member (4 - 3) = 1, Q on 2, data on 3, 4, 0. */
	located_case("raid6", 5, 0, 0, 4); /* a data column */
	located_case("raid6", 5, 0, 0, 2); /* Q */
	located_case("ec", 7, 4, 3, 0);	   /* ec 4+3, some column */
	located_case("ec", 6, 4, 2, 5);
}

static void
test_scrub_raid5_and_mirrors(void)
{
	struct uraid_array_check_result r;
	struct wl wl;

	/* raid5: one parity cannot say which column is wrong: parity follows the data. */
	REQUIRE(start_manual(REACTORS) == 0);
	REQUIRE(setup("raid5", 4, 0, 0) != NULL);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 200, 8, 40, 0, NULL);
	corrupt(1, 5);
	r = scrub(true);
	CHECK(r.bad_stripes == 1 && r.repaired == 1 && r.located == 0);
	CHECK_EQ(scrub(false).bad_stripes, 0);
	wl_close(&wl);
	teardown(4);
	uraid_runtime_stop();

	/* raid1: the copies are made equal to the first. */
	REQUIRE(start_manual(REACTORS) == 0);
	REQUIRE(setup("raid1", 3, 0, 0) != NULL);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 200, 8, 40, 0, NULL);
	corrupt(2, 7);
	r = scrub(true);
	CHECK(r.bad_stripes == 1 && r.repaired == 1);
	CHECK_EQ(scrub(false).bad_stripes, 0);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	wl_close(&wl);
	teardown(3);
	uraid_runtime_stop();
}

static void
read_error_case(const char *level, unsigned n)
{
	struct fault_rule_opts rule = {.io_type_mask = 1u << URAID_IO_READ,
				       .kind = FAULT_FAILURE,
				       .count = 3,
				       .probability_ppm = 1000000,
				       .offset_blocks = 0,
				       .num_blocks = 1024};
	struct uraid_array_stats st;
	struct uraid_array_info info;
	struct wl wl;

	REQUIRE(start_manual(REACTORS) == 0);
	REQUIRE(setup(level, n, 0, 0) != NULL);
	REQUIRE(wl_open(&wl, "a"));
	wl_run(&wl, 200, 8, 40, 0, NULL);
	/* Member 1 fails three reads, then reads fine again (a sector remapped by the write). */
	CHECK_EQ(fault_inject("f1", &rule), 0);
	wl_verify_all(&wl);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	uraid_array_get_stats(uraid_bdev_get_by_name("a"), &st);
	CHECK_EQ(st.read_errors_repaired, 3);
	uraid_array_get_info(uraid_bdev_get_by_name("a"), &info);
	CHECK_EQ(info.failed_members, 0); /* still in the array */
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	CHECK_EQ(scrub(false).bad_stripes, 0);
	/* A member whose rewrite fails too is failed, and the data still comes back. */
	rule.io_type_mask = (1u << URAID_IO_READ) | (1u << URAID_IO_WRITE);
	rule.count = -1;
	CHECK_EQ(fault_inject("f1", &rule), 0);
	wl_verify_all(&wl);
	CHECK_EQ(wl.mismatches, 0);
	uraid_array_get_info(uraid_bdev_get_by_name("a"), &info);
	CHECK_EQ(info.failed_members, 1);
	wl_close(&wl);
	teardown(n);
	uraid_runtime_stop();
}

static void
test_read_errors_repaired(void)
{
	read_error_case("raid5", 4);
	read_error_case("raid6", 5);
	read_error_case("raid1", 2);
	read_error_case("raid10", 4);
}

TEST_MAIN(TEST(test_scrub_locates_and_repairs), TEST(test_scrub_raid5_and_mirrors),
	  TEST(test_read_errors_repaired))
