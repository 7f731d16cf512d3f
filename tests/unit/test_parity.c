/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Parity and layout: ISA-L fast paths against the byte-at-a-time references over many shapes,
 * lengths and alignments; every combination of lost columns rebuilt; every k-subset of the ec
 * generator invertible (the code is MDS); layouts against hand-drawn tables.
 */
#include <isa-l/erasure_code.h>
#include <stdlib.h>

#include "harness.h"
#include "core/core.h"

static void
test_gf_reference(void)
{
	/* The reference field agrees with ISA-L's on every product and inverse. */
	for (unsigned a = 0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			if (gf_mul_ref((uint8_t)a, (uint8_t)b) != gf_mul((uint8_t)a, (uint8_t)b)) {
				CHECK_EQ(gf_mul_ref((uint8_t)a, (uint8_t)b),
					 gf_mul((uint8_t)a, (uint8_t)b));
				return;
			}
		}
		if (a)
			CHECK_EQ(gf_mul_ref((uint8_t)a, gf_inv_ref((uint8_t)a)), 1);
	}
	CHECK_EQ(gf_mul_ref(0x80, 2), 0x1d); /* the polynomial is 0x11d */
}

struct shape {
	enum code_kind kind;
	unsigned k, m;
};

static const struct shape g_shapes[] = {
	{CODE_XOR, 1, 1},     {CODE_XOR, 2, 1},	   {CODE_XOR, 4, 1},	{CODE_XOR, 7, 1},
	{CODE_XOR, 31, 1},    {CODE_PQ, 1, 2},	   {CODE_PQ, 2, 2},	{CODE_PQ, 4, 2},
	{CODE_PQ, 6, 2},      {CODE_PQ, 30, 2},	   {CODE_CAUCHY, 1, 1}, {CODE_CAUCHY, 2, 2},
	{CODE_CAUCHY, 4, 2},  {CODE_CAUCHY, 8, 3}, {CODE_CAUCHY, 5, 4}, {CODE_CAUCHY, 12, 4},
	{CODE_CAUCHY, 28, 4},
};

static uint8_t *
rand_buf(size_t len)
{
	uint8_t *p = aligned_alloc(64, align_up_u64(len + 64, 64));

	for (size_t i = 0; i < len + 64; i++)
		p[i] = (uint8_t)test_rand();
	return p;
}

/* ISA-L encode equals the reference for every shape, several lengths, aligned or not. */
static void
test_encode_matches_reference(void)
{
	static const size_t lens[] = {32, 64, 512, 4096, 4096 + 32, 65536, 17, 100};

	for (size_t s = 0; s < ARRAY_SIZE(g_shapes); s++) {
		struct code c;

		REQUIRE(code_init(&c, g_shapes[s].kind, g_shapes[s].k, g_shapes[s].m) == 0);
		for (size_t li = 0; li < ARRAY_SIZE(lens); li++) {
			for (unsigned misalign = 0; misalign < 2; misalign++) {
				size_t len = lens[li];
				uint8_t *mem[64], *data[32], *par[4], *ref[4];
				unsigned nb = 0;
				bool ok = true;

				for (unsigned i = 0; i < c.k; i++) {
					mem[nb] = rand_buf(len);
					data[i] = mem[nb++] + misalign * (1 + i % 7);
				}
				for (unsigned j = 0; j < c.m; j++) {
					mem[nb] = rand_buf(len);
					par[j] = mem[nb++] + misalign * 3;
					mem[nb] = rand_buf(len);
					ref[j] = mem[nb++];
				}
				code_encode(&c, len, data, par);
				code_encode_ref(&c, len, data, ref);
				for (unsigned j = 0; j < c.m; j++)
					ok &= memcmp(par[j], ref[j], len) == 0;
				if (!ok)
					fprintf(stderr, "kind %d k %u m %u len %zu misalign %u\n",
						c.kind, c.k, c.m, len, misalign);
				CHECK(ok);
				for (unsigned i = 0; i < nb; i++)
					free(mem[i]);
			}
		}
	}
	/* md's P+Q: Q is sum of g^i D_i. */
	{
		struct code c;

		REQUIRE(code_init(&c, CODE_PQ, 3, 2) == 0);
		CHECK_EQ(c.matrix[4 * 3 + 0], 1);
		CHECK_EQ(c.matrix[4 * 3 + 1], 2);
		CHECK_EQ(c.matrix[4 * 3 + 2], 4);
	}
	{
		struct code c;

		CHECK_EQ(code_init(&c, CODE_XOR, 4, 2), -EINVAL);
		CHECK_EQ(code_init(&c, CODE_CAUCHY, 30, 4), -EINVAL); /* 34 columns */
		CHECK_EQ(code_init(&c, CODE_CAUCHY, 4, 5), -EINVAL);
	}
}

/* One read-modify-write of bytes [lo, lo + n) of a random column of a random stripe of shape
 * g_shapes[s], by code_update (from the delta) or code_update_from (from the old and the new
 * data): the parity must be the reference encoding of the new data. */
static void
check_update(size_t s, size_t lo, size_t n, bool from_old)
{
	const size_t len = 4096;
	struct code c;
	uint8_t *data[32], *par[4], *want[4], *p[4], *old = rand_buf(len);
	unsigned col;

	REQUIRE(code_init(&c, g_shapes[s].kind, g_shapes[s].k, g_shapes[s].m) == 0);
	for (unsigned i = 0; i < c.k; i++)
		data[i] = rand_buf(len);
	for (unsigned j = 0; j < c.m; j++) {
		par[j] = rand_buf(len);
		want[j] = rand_buf(len);
		p[j] = par[j] + lo;
	}
	code_encode(&c, len, data, par);
	col = (unsigned)test_rand_below(c.k);
	memcpy(old, data[col], len);
	for (size_t b = lo; b < lo + n; b++)
		data[col][b] = (uint8_t)test_rand();
	if (from_old) {
		code_update_from(&c, n, col, old + lo, data[col] + lo, p);
	} else {
		for (size_t b = lo; b < lo + n; b++)
			old[b] ^= data[col][b]; /* the delta */
		code_update(&c, n, col, old + lo, p);
	}
	code_encode_ref(&c, len, data, want);
	for (unsigned j = 0; j < c.m; j++)
		CHECK(memcmp(par[j], want[j], len) == 0);
	for (unsigned i = 0; i < c.k; i++)
		free(data[i]);
	for (unsigned j = 0; j < c.m; j++) {
		free(par[j]);
		free(want[j]);
	}
	free(old);
}

/* Read-modify-write updates give the same parity as encoding the new data. */
static void
test_update_matches_encode(void)
{
	for (size_t s = 0; s < ARRAY_SIZE(g_shapes); s++)
		check_update(s, 0, 4096, false);
}

/* So do updates from a column's old and new contents (read-modify-write without a delta
 * buffer): on a whole column, on rows 1024..3072 only, and 8 bytes off 32-byte alignment. */
static void
test_update_from_matches_encode(void)
{
	for (size_t s = 0; s < ARRAY_SIZE(g_shapes); s++) {
		check_update(s, 0, 4096, true);
		check_update(s, 1024, 2048, true);
		check_update(s, 8, 4096 - 8, true);
	}
}

/* code_xor_into: byte for byte what a plain loop gives, aligned (the vector path) or not, and
 * in place over the destination only. */
static void
test_xor_into(void)
{
	static const struct {
		size_t doff, soff, len;
	} cases[] = {{0, 0, 4096}, {0, 0, 32},	{64, 128, 512},
		     {1, 0, 4096}, {0, 3, 100}, {5, 9, 7}};

	for (size_t t = 0; t < ARRAY_SIZE(cases); t++) {
		size_t len = cases[t].len;
		uint8_t *d = rand_buf(len + 256), *s = rand_buf(len + 256),
			*want = malloc(len + 256);

		REQUIRE(want != NULL);
		memcpy(want, d, len + 256);
		for (size_t b = 0; b < len; b++)
			want[cases[t].doff + b] ^= s[cases[t].soff + b];
		code_xor_into(d + cases[t].doff, s + cases[t].soff, len);
		CHECK(memcmp(d, want, len + 256) == 0);
		free(d);
		free(s);
		free(want);
	}
}

static bool
next_combination(unsigned *idx, unsigned r, unsigned n)
{
	int i = (int)r - 1;

	while (i >= 0 && idx[i] == n - r + (unsigned)i)
		i--;
	if (i < 0)
		return false;
	idx[i]++;
	for (unsigned j = (unsigned)i + 1; j < r; j++)
		idx[j] = idx[j - 1] + 1;
	return true;
}

/* Every combination of up to m lost columns (data and parity) is rebuilt exactly. */
static void
test_decode_every_loss(void)
{
	const size_t len = 512;
	uint64_t patterns = 0;

	for (size_t s = 0; s < ARRAY_SIZE(g_shapes); s++) {
		unsigned k = g_shapes[s].k, m = g_shapes[s].m, n = k + m;
		struct code c;
		struct code_decoder d = {0};
		uint8_t *orig[36], *cols[36];

		if (n > 16 && m > 2)
			continue; /* 28+4 has its MDS proof below; its decode sampled there */
		REQUIRE(code_init(&c, g_shapes[s].kind, k, m) == 0);
		for (unsigned i = 0; i < n; i++) {
			orig[i] = rand_buf(len);
			cols[i] = rand_buf(len);
		}
		code_encode(&c, len, orig, orig + k);
		for (unsigned r = 1; r <= m; r++) {
			unsigned idx[RAID_MAX_PARITY];

			for (unsigned i = 0; i < r; i++)
				idx[i] = i;
			do {
				uint64_t mask = 0;
				bool ok = true;

				for (unsigned i = 0; i < r; i++)
					mask |= 1ull << idx[i];
				for (unsigned i = 0; i < n; i++) {
					if (mask & (1ull << i))
						memset(cols[i], 0xee, len);
					else
						memcpy(cols[i], orig[i], len);
				}
				CHECK_EQ(code_decode(&c, &d, len, cols, mask), 0);
				for (unsigned i = 0; i < n; i++)
					ok &= memcmp(cols[i], orig[i], len) == 0;
				if (!ok) {
					fprintf(stderr,
						"kind %d k %u m %u lost 0x%lx not rebuilt\n",
						c.kind, k, m, (unsigned long)mask);
					CHECK(ok);
					break;
				}
				patterns++;
			} while (next_combination(idx, r, n));
		}
		/* More losses than parity: refused. */
		if (m < n) {
			uint64_t too_many = (1ull << (m + 1)) - 1;

			CHECK_EQ(code_decode(&c, &d, len, cols, too_many), -EINVAL);
		}
		for (unsigned i = 0; i < n; i++) {
			free(orig[i]);
			free(cols[i]);
		}
	}
	CHECK(patterns > 3500); /* every shape above: 3690 patterns */
}

/* MDS: every choice of k surviving rows of an ec generator matrix is invertible. Checked
 * exhaustively for every k+m <= 16 with m = 1..4, and for 28+4 (C(32,4) = 35960 subsets). */
static void
test_ec_every_subset_invertible(void)
{
	uint64_t subsets = 0;

	for (unsigned m = 1; m <= 4; m++) {
		for (unsigned k = 1; k + m <= 16 || (m == 4 && k <= 28); k++) {
			unsigned n, idx[32];
			struct code c;

			if (k + m > 16)
				k = 28; /* past 16 columns, only the largest shape */
			n = k + m;
			REQUIRE(code_init(&c, CODE_CAUCHY, k, m) == 0);
			for (unsigned i = 0; i < k; i++)
				idx[i] = i;
			do {
				uint8_t sub[32 * 32], inv[32 * 32];
				int rc;

				for (unsigned r = 0; r < k; r++)
					memcpy(&sub[r * k], &c.matrix[idx[r] * k], k);
				/* The reference inversion for small k; ISA-L's for 28x28, which
				 * test_decode_every_loss has already cross-checked. */
				rc = k <= 16 ? gf_invert_ref(sub, inv, k)
					     : gf_invert_matrix(sub, inv, (int)k);
				if (rc != 0) {
					fprintf(stderr, "ec %u+%u: a k-subset is singular\n", k, m);
					CHECK(rc == 0);
					return;
				}
				subsets++;
			} while (next_combination(idx, k, n));
			if (k == 28)
				break;
		}
	}
	CHECK(subsets > 35960);
}

static struct layout
mk_layout(enum uraid_raid_level level, enum uraid_raid5_layout r5, unsigned n, unsigned m)
{
	struct layout l = {.level = level,
			   .r5_layout = r5,
			   .n = n,
			   .m = m,
			   .k = n - m,
			   .strip_blocks = 8,
			   .member_blocks = 8 * 100,
			   .copies = 2};

	return l;
}

/* The tables drawn in layout.c's theory of operation. */
static void
test_layouts(void)
{
	/* raid5 left-symmetric n=4: [stripe][member] -> column (0..2 data, 3 = P) */
	static const unsigned ls[4][4] = {{0, 1, 2, 3}, {1, 2, 3, 0}, {2, 3, 0, 1}, {3, 0, 1, 2}};
	static const unsigned la[4][4] = {{0, 1, 2, 3}, {0, 1, 3, 2}, {0, 3, 1, 2}, {3, 0, 1, 2}};
	struct layout l = mk_layout(URAID_RAID5, URAID_R5_LEFT_SYMMETRIC, 4, 1);
	struct layout a = mk_layout(URAID_RAID5, URAID_R5_LEFT_ASYMMETRIC, 4, 1);
	struct layout_chunk ch;

	for (unsigned s = 0; s < 8; s++) {
		for (unsigned mb = 0; mb < 4; mb++) {
			CHECK_EQ(layout_member_column(&l, s, mb), ls[s % 4][mb]);
			CHECK_EQ(layout_member_column(&a, s, mb), la[s % 4][mb]);
		}
	}
	/* Inverse consistency for every parity level and shape. */
	for (unsigned n = 3; n <= 12; n++) {
		for (unsigned m = 1; m <= 4 && m < n; m++) {
			struct layout e = mk_layout(m == 1 ? URAID_RAID5 : URAID_EC,
						    URAID_R5_LEFT_SYMMETRIC, n, m);

			for (unsigned s = 0; s < 2 * n; s++) {
				uint64_t seen = 0;

				for (unsigned i = 0; i < e.k; i++) {
					unsigned mb = layout_data_member(&e, s, i);

					CHECK_EQ(layout_member_column(&e, s, mb), i);
					seen |= 1ull << mb;
				}
				for (unsigned j = 0; j < m; j++) {
					unsigned mb = layout_parity_member(&e, s, j);

					CHECK_EQ(layout_member_column(&e, s, mb), e.k + j);
					seen |= 1ull << mb;
				}
				CHECK_EQ(seen, (1ull << n) - 1);
			}
		}
	}
	/* raid6 (md): P on (n-1) - s%n, Q right after, data after Q. */
	l = mk_layout(URAID_RAID6, URAID_R5_LEFT_SYMMETRIC, 5, 2);
	CHECK_EQ(layout_parity_member(&l, 0, 0), 4);
	CHECK_EQ(layout_parity_member(&l, 0, 1), 0);
	CHECK_EQ(layout_data_member(&l, 0, 0), 1);
	CHECK_EQ(layout_parity_member(&l, 1, 0), 3);
	CHECK_EQ(layout_data_member(&l, 1, 0), 0);
	CHECK_EQ(layout_data_member(&l, 1, 2), 2);

	/* raid10, 3 members, 2 copies: A A B / B C C. */
	l = mk_layout(URAID_RAID10, 0, 3, 0);
	layout_map(&l, 0, 8, 0, &ch);
	CHECK(ch.member == 0 && ch.member_offset_blocks == 0);
	layout_map(&l, 0, 8, 1, &ch);
	CHECK(ch.member == 1 && ch.member_offset_blocks == 0);
	layout_map(&l, 8 + 3, 100, 0, &ch); /* B, block 3 */
	CHECK(ch.member == 2 && ch.member_offset_blocks == 3 && ch.num_blocks == 5);
	layout_map(&l, 8, 8, 1, &ch);
	CHECK(ch.member == 0 && ch.member_offset_blocks == 8);
	layout_map(&l, 16, 8, 0, &ch); /* C */
	CHECK(ch.member == 1 && ch.member_offset_blocks == 8);
	CHECK_EQ(layout_array_blocks(&l), 100 * 3 / 2 * 8);

	/* raid0 n=3: strip 4 is member 1, member strip 1. */
	l = mk_layout(URAID_RAID0, 0, 3, 0);
	layout_map(&l, 4 * 8 + 2, 100, 0, &ch);
	CHECK(ch.member == 1 && ch.member_offset_blocks == 8 + 2 && ch.num_blocks == 6);
}

TEST_MAIN(TEST(test_gf_reference), TEST(test_encode_matches_reference),
	  TEST(test_update_matches_encode), TEST(test_update_from_matches_encode),
	  TEST(test_xor_into), TEST(test_decode_every_loss), TEST(test_ec_every_subset_invertible),
	  TEST(test_layouts))
