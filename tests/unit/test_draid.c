/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Declustered placement (draid.c) over its whole table for several (N, k, m, s): every member
 * holds exactly as many data, parity and spare strips as any other; the strips of a stripe and
 * the spares of its period are on different members; a failed member's stripes are read from
 * every survivor and rebuilt into spare strips on every survivor, evenly; the table is the
 * same for the same seed; bad parameters are refused with a reason.
 */
#include <stdlib.h>

#include "harness.h"
#include "core/core.h"

struct shape {
	unsigned n, k, m, s;
};

static const struct shape g_shapes[] = {
	{12, 4, 2, 1}, {24, 4, 2, 1}, {24, 8, 2, 2}, {11, 4, 1, 1},
	{16, 5, 3, 2}, {7, 4, 2, 1},  {32, 8, 4, 3}, {10, 6, 4, 0},
};

#define BASES 16

static void
test_balance(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(g_shapes); i++) {
		const struct shape *sh = &g_shapes[i];
		uint64_t data[RAID_MAX_MEMBERS] = {0}, par[RAID_MAX_MEMBERS] = {0},
			 spare[RAID_MAX_MEMBERS] = {0}, base0[RAID_MAX_MEMBERS] = {0};
		struct draid_map dm;
		char err[128];
		uint64_t stripes, rows;

		REQUIRE(draid_map_init(&dm, sh->n, sh->k, sh->m, sh->s, BASES, 42 + i, err,
				       sizeof(err)) == 0);
		stripes = draid_table_periods(&dm) * dm.groups;
		rows = draid_table_periods(&dm) * dm.rows;
		for (uint64_t st = 0; st < stripes; st++) {
			uint64_t seen = 0, row0 = UINT64_MAX;

			for (unsigned c = 0; c < dm.w; c++) {
				unsigned mb;
				uint64_t row;

				draid_locate(&dm, st, c, &mb, &row);
				CHECK(mb < sh->n);
				CHECK(!(seen & (1ull << mb))); /* w different members */
				seen |= 1ull << mb;
				if (row0 == UINT64_MAX)
					row0 = row;
				/* In its period's rows, and the next stripe's row is not before. */
				CHECK(row / dm.rows == st / dm.groups);
				(c < sh->k ? data : par)[mb]++;
				if (c < sh->k && st < (uint64_t)sh->n * dm.groups)
					base0[mb]++; /* the first base's N periods */
			}
			for (unsigned j = 0; j < sh->s; j++) /* spares: none of its members */
				CHECK(!(seen & (1ull << draid_spare_member(&dm, row0, j))));
		}
		for (uint64_t r = 0; r < rows; r++) {
			uint64_t seen = 0;

			for (unsigned j = 0; j < sh->s; j++) {
				unsigned mb = draid_spare_member(&dm, r, j);

				CHECK(!(seen & (1ull << mb)));
				seen |= 1ull << mb;
				spare[mb]++;
			}
		}
		/* Exactly even over the table: every strip of every row is one of them. */
		for (unsigned mb = 0; mb < sh->n; mb++) {
			CHECK_EQ(base0[mb], base0[0]); /* even after each base already */
			CHECK_EQ(data[mb], data[0]);
			CHECK_EQ(par[mb], par[0]);
			CHECK_EQ(spare[mb], spare[0]);
			CHECK_EQ(data[mb] + par[mb] + spare[mb], rows);
		}
		CHECK_EQ(data[0] * sh->n, stripes * sh->k);
	}
}

/* Member f fails: count the strips each survivor reads (the other columns of f's stripes) and
 * the rebuilt strips each takes into its spare space (spare 0 of the row f's strip was in). */
static void
test_rebuild_spread(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(g_shapes); i++) {
		const struct shape *sh = &g_shapes[i];
		struct draid_map dm;
		char err[128];
		uint64_t stripes;

		if (sh->s == 0)
			continue;
		REQUIRE(draid_map_init(&dm, sh->n, sh->k, sh->m, sh->s, BASES, 7 * i + 1, err,
				       sizeof(err)) == 0);
		stripes = draid_table_periods(&dm) * dm.groups;
		for (unsigned f = 0; f < sh->n; f += 3) {
			uint64_t reads[RAID_MAX_MEMBERS] = {0}, writes[RAID_MAX_MEMBERS] = {0};
			uint64_t rmin = UINT64_MAX, rmax = 0, wmin = UINT64_MAX, wmax = 0, lost = 0;

			for (uint64_t st = 0; st < stripes; st++) {
				unsigned mb[RAID_MAX_MEMBERS];
				uint64_t row[RAID_MAX_MEMBERS];
				int fc = -1;

				for (unsigned c = 0; c < dm.w; c++) {
					draid_locate(&dm, st, c, &mb[c], &row[c]);
					if (mb[c] == f)
						fc = (int)c;
				}
				if (fc < 0)
					continue;
				lost++;
				for (unsigned c = 0; c < dm.w; c++)
					if ((int)c != fc)
						reads[mb[c]]++;
				writes[draid_spare_member(&dm, row[fc], 0)]++;
			}
			CHECK(lost > 0);
			CHECK_EQ(reads[f], 0);
			CHECK_EQ(writes[f], 0);
			for (unsigned x = 0; x < sh->n; x++) {
				if (x == f)
					continue;
				rmin = reads[x] < rmin ? reads[x] : rmin;
				rmax = reads[x] > rmax ? reads[x] : rmax;
				wmin = writes[x] < wmin ? writes[x] : wmin;
				wmax = writes[x] > wmax ? writes[x] : wmax;
			}
			/* Every survivor takes part: reads within 1.5x, spare writes within 2x of
			 * the least loaded (measured: 1.0-1.3x and 1.0-1.5x). */
			CHECK(rmin > 0 && wmin > 0);
			if (f == 0 || !(2 * rmax <= 3 * rmin && wmax <= 2 * wmin))
				fprintf(stderr,
					"  n=%u k=%u m=%u s=%u failed %u: reads %lu..%lu, "
					"spare writes %lu..%lu\n",
					sh->n, sh->k, sh->m, sh->s, f, (unsigned long)rmin,
					(unsigned long)rmax, (unsigned long)wmin,
					(unsigned long)wmax);
			CHECK(2 * rmax <= 3 * rmin);
			CHECK(wmax <= 2 * wmin);
		}
	}
}

static void
test_seed_and_bad_input(void)
{
	struct draid_map a, b, c;
	char err[128] = "";
	unsigned ma, mb;
	uint64_t ra, rb;
	bool differ = false;

	REQUIRE(draid_map_init(&a, 12, 4, 2, 1, BASES, 99, err, sizeof(err)) == 0);
	REQUIRE(draid_map_init(&b, 12, 4, 2, 1, BASES, 99, err, sizeof(err)) == 0);
	REQUIRE(draid_map_init(&c, 12, 4, 2, 1, BASES, 100, err, sizeof(err)) == 0);
	for (uint64_t st = 0; st < 4000; st++) {
		for (unsigned col = 0; col < 6; col++) {
			draid_locate(&a, st, col, &ma, &ra);
			draid_locate(&b, st, col, &mb, &rb);
			CHECK(ma == mb && ra == rb);
			draid_locate(&c, st, col, &mb, &rb);
			differ |= ma != mb;
		}
	}
	CHECK(differ);
	/* Rows are used whole: stripes of a period fill its rows exactly. */
	CHECK_EQ(a.groups * a.w, a.rows * a.d);

	CHECK_EQ(draid_map_init(&a, 6, 4, 2, 1, BASES, 1, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "needs 7 to 32 members") != NULL);
	CHECK_EQ(draid_map_init(&a, 33, 4, 2, 1, BASES, 1, err, sizeof(err)), -EINVAL);
	CHECK_EQ(draid_map_init(&a, 12, 4, 5, 1, BASES, 1, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "parity_chunks 1 to 4") != NULL);
	CHECK_EQ(draid_map_init(&a, 12, 0, 2, 1, BASES, 1, err, sizeof(err)), -EINVAL);
	CHECK_EQ(draid_map_init(&a, 12, 4, 0, 1, BASES, 1, err, sizeof(err)), -EINVAL);
	CHECK_EQ(draid_map_init(&a, 12, 4, 2, 1, 0, 1, err, sizeof(err)), -EINVAL);
	CHECK_EQ(draid_map_init(&a, 12, 4, 2, 1, DRAID_MAX_BASES + 1, 1, err, sizeof(err)),
		 -EINVAL);
}

TEST_MAIN(TEST(test_balance), TEST(test_rebuild_spread), TEST(test_seed_and_bad_input))
