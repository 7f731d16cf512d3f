/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Named crash points: names parse back to their points, an armed point runs its hook on
 * exactly the count-th pass and then disarms itself, other points never run it.
 */
#include "harness.h"
#include "common/common.h"

static unsigned g_calls;
static enum crash_point g_seen;

static void
hook(void *arg, enum crash_point p)
{
	CHECK(arg == &g_calls);
	g_calls++;
	g_seen = p;
}

static void
test_names(void)
{
	for (unsigned i = 0; i < CRASH_POINT_COUNT; i++) {
		enum crash_point p;

		CHECK_EQ(crash_point_parse(crash_point_name((enum crash_point)i), &p), 0);
		CHECK_EQ((unsigned)p, i);
	}
	{
		enum crash_point p;

		CHECK_EQ(crash_point_parse("no-such-point", &p), -EINVAL);
		CHECK_EQ(crash_point_parse("", &p), -EINVAL);
	}
}

static void
test_count_and_disarm(void)
{
	uint64_t before = crash_point_passed(CRASH_LOG_WRITTEN);

	g_calls = 0;
	crash_point_arm(CRASH_LOG_WRITTEN, 3, hook, &g_calls);
	crash_point(CRASH_STRIPE_WRITING); /* another point: nothing */
	crash_point(CRASH_LOG_WRITTEN);
	crash_point(CRASH_LOG_WRITTEN);
	CHECK_EQ(g_calls, 0);
	crash_point(CRASH_LOG_WRITTEN);
	CHECK_EQ(g_calls, 1);
	CHECK_EQ((unsigned)g_seen, (unsigned)CRASH_LOG_WRITTEN);
	crash_point(CRASH_LOG_WRITTEN); /* disarmed after its hook */
	CHECK_EQ(g_calls, 1);
	CHECK_EQ(crash_point_passed(CRASH_LOG_WRITTEN) - before, 3);
	/* Disarmed before the count: never. */
	crash_point_arm(CRASH_SB_PRIMARY, 1, hook, &g_calls);
	crash_point_disarm();
	crash_point(CRASH_SB_PRIMARY);
	CHECK_EQ(g_calls, 1);
	/* Count 0 means the next pass. */
	crash_point_arm(CRASH_SB_FLUSHED, 0, hook, &g_calls);
	crash_point(CRASH_SB_FLUSHED);
	CHECK_EQ(g_calls, 2);
}

TEST_MAIN(TEST(test_names), TEST(test_count_and_disarm))
