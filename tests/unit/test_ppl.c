/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The log entry header (partial parity log and journal) and the bitmap header: round trips
 * at both block sizes, the byte positions of docs/format.md, and rejection of each kind of
 * damage.
 */
#include <stdlib.h>

#include "harness.h"
#include "core/core.h"

static struct ppl_header
sample(void)
{
	struct ppl_header h = {0};

	for (int i = 0; i < 16; i++)
		h.uuid[i] = (uint8_t)(0x21 + i);
	h.epoch = 3;
	h.seq = 17;
	h.floor = 12;
	h.stripe = 41;
	h.op = 9;
	h.slot = 2;
	h.ring = 1;
	h.nrings = 2;
	h.pos = 900;
	h.parity = 1;
	h.r0 = 0;
	h.r1 = 8;
	h.pp_blocks = 8;
	h.k = 3;
	h.tmask = 0x5;
	h.lo[0] = 2;
	h.hi[0] = 8;
	h.lo[2] = 0;
	h.hi[2] = 3;
	h.pp_crc = 0x1234abcd;
	h.data_blocks = 9; /* the journal's: rows 2..8 of column 0, 0..3 of column 2 */
	h.data_crc = 0x55aa0ff0;
	return h;
}

/* Re-seal a block after a test changed it, so that only the change is judged. */
static void
reseal(uint8_t *buf, uint32_t bs)
{
	le_put32(buf + 56, 0);
	le_put32(buf + 56, crc32c(buf, bs));
}

static void
reseal_anchor(uint8_t *buf, uint32_t bs)
{
	le_put32(buf + 60, 0);
	le_put32(buf + 60, crc32c(buf, bs));
}

static void
test_round_trip(void)
{
	static const uint32_t sizes[] = {512, 4096};
	static uint8_t buf[4096], again[4096];

	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		struct ppl_header h = sample(), out;
		char err[128];

		ppl_header_encode(buf, sizes[s], &h);
		CHECK_EQ(ppl_header_decode(buf, sizes[s], &out, err, sizeof(err)), 0);
		CHECK(memcmp(&h, &out, sizeof(h)) == 0);
		ppl_header_encode(again, sizes[s], &out);
		CHECK(memcmp(buf, again, sizes[s]) == 0);
		/* Positions from docs/format.md. */
		CHECK_EQ(le_get64(buf + 0), 0x314c505044494155ull);
		CHECK_EQ(le_get64(buf + 32), 17);
		CHECK_EQ(le_get64(buf + 40), 12);
		CHECK_EQ(le_get64(buf + 48), 41);
		CHECK_EQ(le_get32(buf + 76), 1);
		CHECK_EQ(le_get32(buf + 112), 2);	   /* lo of column 0 */
		CHECK_EQ(le_get32(buf + 132), 3);	   /* hi of column 2 */
		CHECK_EQ(le_get64(buf + 368), 9);	   /* op */
		CHECK_EQ(le_get32(buf + 376), 9);	   /* data_blocks */
		CHECK_EQ(le_get32(buf + 108), 0x55aa0ff0); /* data_crc */
	}
}

static void
test_rejects(void)
{
	static const struct {
		const char *what;
		size_t off;
		unsigned width;
		uint64_t value;
		const char *why;
	} cases[] = {
		{"magic", 0, 8, 1, "magic"},
		{"no column", 92, 4, 0, "column count"},
		{"too many columns", 92, 4, 33, "column count"},
		{"ring beyond rings", 64, 4, 2, "ring"},
		{"floor above seq", 40, 8, 18, "floor"},
		{"empty rows", 84, 4, 0, "row range"},
		{"partial parity short", 88, 4, 4, "partial parity"},
		{"written column beyond k", 96, 8, 0xd, "beyond the column count"},
		{"range outside rows", 116, 4, 9, "outside the rows"},
		{"range for unwritten column", 120, 4, 1, "unwritten column"},
		{"range beyond k", 140, 4, 1, "beyond the column count"},
		{"no update number", 368, 8, 0, "update number"},
		{"data short of the ranges", 376, 4, 5, "data does not cover"},
		{"data CRC without data", 376, 4, 0, "data CRC without data"},
		{"byte after the header", 400, 1, 1, "not zero"},
	};
	static uint8_t buf[512];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ppl_header h = sample(), out;
		char err[128] = "";

		ppl_header_encode(buf, sizeof(buf), &h);
		if (cases[i].width == 8)
			le_put64(buf + cases[i].off, cases[i].value);
		else if (cases[i].width == 4)
			le_put32(buf + cases[i].off, (uint32_t)cases[i].value);
		else
			buf[cases[i].off] = (uint8_t)cases[i].value;
		if (cases[i].off != 0)
			reseal(buf, sizeof(buf));
		if (ppl_header_decode(buf, sizeof(buf), &out, err, sizeof(err)) != -EBADMSG ||
		    strstr(err, cases[i].why) == NULL) {
			fprintf(stderr, "%s: accepted or wrong reason '%s'\n", cases[i].what, err);
			CHECK(!"damage not rejected as it should be");
		}
	}
	/* A flipped bit anywhere fails the CRC. */
	for (size_t off = 8; off < sizeof(buf); off += 37) {
		struct ppl_header h = sample(), out;
		char err[128];

		ppl_header_encode(buf, sizeof(buf), &h);
		buf[off] ^= 0x10;
		CHECK_EQ(ppl_header_decode(buf, sizeof(buf), &out, err, sizeof(err)), -EBADMSG);
	}
	/* Too small a block. */
	{
		struct ppl_header out;
		char err[128];

		CHECK_EQ(ppl_header_decode(buf, 256, &out, err, sizeof(err)), -EBADMSG);
	}
}

static void
test_bitmap_header(void)
{
	static uint8_t buf[512];
	uint8_t uuid[16];
	char err[128];

	for (int i = 0; i < 16; i++)
		uuid[i] = (uint8_t)(i + 1);
	bitmap_header_encode(buf, sizeof(buf), uuid, 16, 40);
	CHECK_EQ(bitmap_header_decode(buf, sizeof(buf), uuid, 16, 40, err, sizeof(err)), 0);
	CHECK_EQ(le_get64(buf + 32), 16);
	CHECK_EQ(le_get64(buf + 40), 40);
	/* Another array's, or another geometry. */
	uuid[3] ^= 1;
	CHECK_EQ(bitmap_header_decode(buf, sizeof(buf), uuid, 16, 40, err, sizeof(err)), -EBADMSG);
	uuid[3] ^= 1;
	CHECK_EQ(bitmap_header_decode(buf, sizeof(buf), uuid, 8, 40, err, sizeof(err)), -EBADMSG);
	/* A byte after the header. */
	buf[100] = 1;
	CHECK_EQ(bitmap_header_decode(buf, sizeof(buf), uuid, 16, 40, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "not zero") != NULL);
	buf[100] = 0;
	/* A flipped bit in the header. */
	buf[20] ^= 4;
	CHECK_EQ(bitmap_header_decode(buf, sizeof(buf), uuid, 16, 40, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "CRC") != NULL);
}

/* The journal's ring anchor: round trip, byte positions, refusals. */
static void
test_anchor(void)
{
	static uint8_t buf[512], again[512];
	struct ppl_anchor k = {0}, out;
	char err[128];

	for (int i = 0; i < 16; i++)
		k.uuid[i] = (uint8_t)(0x40 + i);
	k.epoch = 6;
	k.gen = 11;
	k.floor = 345;
	k.slot = 3;
	k.ring = 1;
	k.nrings = 2;
	ppl_anchor_encode(buf, sizeof(buf), &k);
	CHECK_EQ(ppl_anchor_decode(buf, sizeof(buf), &out, err, sizeof(err)), 0);
	CHECK(memcmp(&k, &out, sizeof(k)) == 0);
	ppl_anchor_encode(again, sizeof(again), &out);
	CHECK(memcmp(buf, again, sizeof(buf)) == 0);
	CHECK_EQ(le_get64(buf + 0), 0x4b4c505044494155ull);
	CHECK_EQ(le_get64(buf + 32), 11);
	CHECK_EQ(le_get64(buf + 40), 345);
	CHECK_EQ(le_get32(buf + 52), 1);
	/* An entry header is not an anchor, nor the other way round. */
	{
		struct ppl_header h = sample();
		static uint8_t ent[512];

		ppl_header_encode(ent, sizeof(ent), &h);
		CHECK_EQ(ppl_anchor_decode(ent, sizeof(ent), &out, err, sizeof(err)), -EBADMSG);
		CHECK_EQ(ppl_header_decode(buf, sizeof(buf), &h, err, sizeof(err)), -EBADMSG);
	}
	/* No generation; a ring beyond the rings; a byte after it; a flipped bit. */
	le_put64(buf + 32, 0);
	reseal_anchor(buf, sizeof(buf));
	CHECK_EQ(ppl_anchor_decode(buf, sizeof(buf), &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "generation") != NULL);
	le_put64(buf + 32, 11);
	le_put32(buf + 52, 2);
	reseal_anchor(buf, sizeof(buf));
	CHECK_EQ(ppl_anchor_decode(buf, sizeof(buf), &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "ring") != NULL);
	le_put32(buf + 52, 1);
	buf[200] = 1;
	reseal_anchor(buf, sizeof(buf));
	CHECK_EQ(ppl_anchor_decode(buf, sizeof(buf), &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "not zero") != NULL);
	buf[200] = 0;
	reseal_anchor(buf, sizeof(buf));
	CHECK_EQ(ppl_anchor_decode(buf, sizeof(buf), &out, err, sizeof(err)), 0);
	buf[45] ^= 2;
	CHECK_EQ(ppl_anchor_decode(buf, sizeof(buf), &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "CRC") != NULL);
}

TEST_MAIN(TEST(test_round_trip), TEST(test_rejects), TEST(test_bitmap_header), TEST(test_anchor))
