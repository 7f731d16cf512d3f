/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Named crash points: places inside multi-step operations (a superblock update between its
 * flush and its copies, a rebuild unit between its write and the checkpoint, a log entry
 * between its write and the stripe's, a log flush before its entries retire, a log array's
 * commit between flush, records and map, a checkpoint before its record) where a test
 * can make the power fail exactly.
 *
 * A test arms one point with a hook and a count: the count-th time the code passes the point
 * the hook runs, there and then, on the thread passing it (the crash harness cuts the power
 * of every fault member from it, so nothing issued after the point reaches stable media).
 * The point then disarms itself. Unarmed, passing a point costs one relaxed atomic load.
 */
#include "common.h"

/* clang-format off */
static const char *const g_names[CRASH_POINT_COUNT] = {
	[CRASH_SB_FLUSHED] = "sb-flushed",
	[CRASH_SB_PRIMARY] = "sb-primary",
	[CRASH_REBUILD_UNIT] = "rebuild-unit",
	[CRASH_LOG_WRITTEN] = "log-written",
	[CRASH_JOURNAL_ACKED] = "journal-acked",
	[CRASH_STRIPE_WRITING] = "stripe-writing",
	[CRASH_LOG_FLUSHED] = "log-flushed",
	[CRASH_TREE_FLUSHED] = "tree-flushed",
	[CRASH_TREE_RECORDED] = "tree-recorded",
	[CRASH_TREE_PAGES] = "tree-pages",
};
/* clang-format on */

_Atomic int g_crash_armed = -1;
static _Atomic unsigned g_left;
static void (*g_hook)(void *arg, enum crash_point p);
static void *g_hook_arg;
static _Atomic uint64_t g_passed[CRASH_POINT_COUNT];

const char *
crash_point_name(enum crash_point p)
{
	return (unsigned)p < CRASH_POINT_COUNT ? g_names[p] : "?";
}

int
crash_point_parse(const char *name, enum crash_point *p)
{
	for (unsigned i = 0; i < CRASH_POINT_COUNT; i++) {
		if (strcmp(name, g_names[i]) == 0) {
			*p = (enum crash_point)i;
			return 0;
		}
	}
	return -EINVAL;
}

void
crash_point_arm(enum crash_point p, unsigned count, void (*hook)(void *arg, enum crash_point p),
		void *arg)
{
	atomic_store(&g_crash_armed, -1);
	g_hook = hook;
	g_hook_arg = arg;
	atomic_store(&g_left, count ? count : 1);
	atomic_store(&g_crash_armed, (int)p);
}

void
crash_point_disarm(void)
{
	atomic_store(&g_crash_armed, -1);
}

uint64_t
crash_point_passed(enum crash_point p)
{
	return (unsigned)p < CRASH_POINT_COUNT ? atomic_load(&g_passed[p]) : 0;
}

void
crash_point_slow(enum crash_point p)
{
	int expected = (int)p;

	atomic_fetch_add_explicit(&g_passed[p], 1, memory_order_relaxed);
	if (atomic_fetch_sub(&g_left, 1) != 1)
		return;
	/* The count-th pass: disarm (once, whichever thread gets here) and run the hook. */
	if (atomic_compare_exchange_strong(&g_crash_armed, &expected, -1) && g_hook != NULL)
		g_hook(g_hook_arg, p);
}
