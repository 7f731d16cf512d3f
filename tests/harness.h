/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The in-house test harness: a case table, CHECK macros that print file, line and values, a
 * seeded PRNG whose seed is printed on failure (set URAID_TEST_SEED to replay), exit 0/1/77,
 * and the closing line "N passed, N failed, N skipped".
 */
#ifndef URAID_TEST_HARNESS_H
#define URAID_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"

struct test_case {
	const char *name;
	void (*fn)(void);
};

static int h_case_failures;
static int h_case_skipped;
static uint64_t h_seed;
static struct prng h_rng;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			h_case_failures++;                                                       \
		}                                                                                \
	} while (0)

#define CHECK_EQ(a, b)                                                                    \
	do {                                                                              \
		long long _a = (long long)(a), _b = (long long)(b);                       \
		if (_a != _b) {                                                           \
			fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
				__FILE__, __LINE__, #a, #b, _a, _b);                      \
			h_case_failures++;                                                \
		}                                                                         \
	} while (0)

/* Stop the current case if a check failed (for checks later code depends on). */
#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
			h_case_failures++;                                                         \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define SKIP(why)                                        \
	do {                                             \
		fprintf(stderr, "  skipped: %s\n", why); \
		h_case_skipped = 1;                      \
		return;                                  \
	} while (0)

static inline uint64_t
test_rand(void)
{
	return prng_next(&h_rng);
}

static inline uint64_t
test_rand_below(uint64_t bound)
{
	return prng_below(&h_rng, bound);
}

static inline uint64_t
test_seed(void)
{
	return h_seed;
}

static inline int
harness_run(const struct test_case *cases, size_t n, int argc, char **argv)
{
	const char *env = getenv("URAID_TEST_SEED");
	int passed = 0, failed = 0, skipped = 0;

	h_seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
	for (size_t i = 0; i < n; i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
			continue;
		h_case_failures = 0;
		h_case_skipped = 0;
		prng_seed(&h_rng, h_seed ^ (i * 0x9e3779b97f4a7c15ull));
		cases[i].fn();
		if (h_case_failures) {
			failed++;
			printf("FAIL %s (URAID_TEST_SEED=%" PRIu64 ")\n", cases[i].name, h_seed);
		} else if (h_case_skipped) {
			skipped++;
			printf("skip %s\n", cases[i].name);
		} else {
			passed++;
			printf("ok   %s\n", cases[i].name);
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	if (failed)
		return 1;
	return passed == 0 && skipped > 0 ? 77 : 0;
}

#define TEST_MAIN(...)                                                    \
	int main(int argc, char **argv)                                   \
	{                                                                 \
		static const struct test_case cases[] = {__VA_ARGS__};    \
		return harness_run(cases, ARRAY_SIZE(cases), argc, argv); \
	}

#define TEST(fn)        \
	{               \
#fn, fn \
	}

#endif
