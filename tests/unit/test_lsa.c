/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Log-structured arrays (consistency policy log) and the RAID stripe tree: the record and
 * map page formats (round trips, byte positions of docs/format.md, each kind of damage
 * rejected); every level written, overwritten several times over (the cleaner reclaiming
 * space), unmapped and read back against a model, with writes only ever as fresh stripes;
 * restart after a clean shutdown and from a copy of the members taken mid-run (the records
 * after the last checkpoint replayed); UNMAP of everything freeing every stripe; degraded reads, a
 * rebuild that covers only stripes holding data, then the rebuilt member serving reads; and bad
 * parameters refused.
 */
#include <stdlib.h>

#include "bdev_util.h"
#include "bdev/bdev_priv.h"
#include "core/core.h"
#include "uraid/array.h"

#define BS    4096
#define MBLKS 2048 /* 8 MiB members */

#define REACTORS 2
#include "workload.h"

static const char *const g_m[] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"};

/* --- the format --- */

static const uint8_t g_uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void
sample(struct rst_record *r)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->uuid, g_uuid, 16);
	r->type = RST_REC_MAP;
	r->seq = 77;
	r->count = 3;
	r->ent[0] = (struct rst_extent){10, 4, 200, RST_UNMAPPED};
	r->ent[1] = (struct rst_extent){900, 1, RST_UNMAPPED, RST_UNMAPPED};
	r->ent[2] = (struct rst_extent){50, 2, 300, 120};
}

static void
reseal(uint8_t *buf)
{
	le_put32(buf + RST_BLOCK - 4, crc32c(buf, RST_BLOCK - 4));
}

static void
test_format(void)
{
	static uint8_t buf[RST_BLOCK], again[RST_BLOCK];
	static uint32_t map[2500], out[RST_PAGE_ENTRIES];
	static const struct {
		const char *what;
		size_t off;
		unsigned width;
		uint64_t value;
		const char *why;
	} cases[] = {
		{"magic", 0, 8, 5, "magic"},
		{"version", 8, 4, 2, "version"},
		{"type", 12, 4, 3, "record type"},
		{"seq 0", 32, 8, 0, "sequence 0"},
		{"upto in a map record", 40, 8, 5, "without entries"},
		{"no entries", 48, 4, 0, "without entries"},
		{"too many entries", 48, 4, RST_RECORD_ENTRIES + 1, "too many"},
		{"reserved", 52, 4, 1, "reserved"},
		{"extent beyond the array", 64, 8, 999, "outside the array"},
		{"empty extent", 72, 4, 0, "outside the array"},
		{"extent beyond the members", 76, 4, 4095, "outside the members"},
		{"move without a target", 76 + 48, 4, RST_UNMAPPED, "move outside"},
		{"entry padding", 84, 4, 1, "reserved record entry"},
		{"byte after the entries", 64 + 3 * 24, 1, 1, "after the record entries"},
	};
	struct rst_record r, o;
	char err[128];
	uint64_t gen;

	sample(&r);
	rst_record_encode(buf, &r);
	CHECK_EQ(rst_record_decode(buf, RST_BLOCK, g_uuid, 1000, 4096, &o, err, sizeof(err)), 0);
	CHECK_EQ(o.seq, 77);
	CHECK_EQ(o.count, 3);
	CHECK(memcmp(o.ent, r.ent, 3 * sizeof(r.ent[0])) == 0);
	rst_record_encode(again, &o);
	CHECK(memcmp(buf, again, RST_BLOCK) == 0);
	/* Positions from docs/format.md. */
	CHECK_EQ(le_get64(buf), 0x3153524449415255ull);
	CHECK_EQ(le_get32(buf + 12), RST_REC_MAP);
	CHECK_EQ(le_get64(buf + 32), 77);
	CHECK_EQ(le_get64(buf + 64 + 48), 50); /* third entry: lba, len, phys, src */
	CHECK_EQ(le_get32(buf + 64 + 56), 2);
	CHECK_EQ(le_get32(buf + 64 + 60), 300);
	CHECK_EQ(le_get32(buf + 64 + 64), 120);
	/* Another array's record, and one cut short. */
	CHECK_EQ(rst_record_decode(buf, RST_BLOCK, (const uint8_t *)"0123456789abcdef", 1000, 4096,
				   &o, err, sizeof(err)),
		 -EBADMSG);
	CHECK(strstr(err, "another array") != NULL);
	CHECK_EQ(rst_record_decode(buf, 512, g_uuid, 1000, 4096, &o, err, sizeof(err)), -EBADMSG);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		sample(&r);
		rst_record_encode(buf, &r);
		if (cases[i].width == 8)
			le_put64(buf + cases[i].off, cases[i].value);
		else if (cases[i].width == 4)
			le_put32(buf + cases[i].off, (uint32_t)cases[i].value);
		else
			buf[cases[i].off] = (uint8_t)cases[i].value;
		if (cases[i].off != 0)
			reseal(buf);
		err[0] = '\0';
		if (rst_record_decode(buf, RST_BLOCK, g_uuid, 1000, 4096, &o, err, sizeof(err)) !=
			    -EBADMSG ||
		    strstr(err, cases[i].why) == NULL) {
			fprintf(stderr, "%s: accepted or wrong reason '%s'\n", cases[i].what, err);
			CHECK(!"damage not rejected as it should be");
		}
	}
	/* A checkpoint record (seq: the checkpoint's generation) carries no entries. */
	memset(&r, 0, sizeof(r));
	memcpy(r.uuid, g_uuid, 16);
	r.type = RST_REC_CHECKPOINT;
	r.seq = 9;
	r.upto = 1234;
	rst_record_encode(buf, &r);
	CHECK_EQ(rst_record_decode(buf, RST_BLOCK, g_uuid, 1000, 4096, &o, err, sizeof(err)), 0);
	CHECK_EQ(o.upto, 1234);
	le_put32(buf + 48, 1);
	reseal(buf);
	CHECK_EQ(rst_record_decode(buf, RST_BLOCK, g_uuid, 1000, 4096, &o, err, sizeof(err)),
		 -EBADMSG);
	/* Any flipped bit fails the CRC. */
	for (size_t off = 0; off < RST_BLOCK; off += 61) {
		sample(&r);
		rst_record_encode(buf, &r);
		buf[off] ^= 0x10;
		CHECK_EQ(
			rst_record_decode(buf, RST_BLOCK, g_uuid, 1000, 4096, &o, err, sizeof(err)),
			-EBADMSG);
	}

	/* Map pages: the last one is short; entries beyond the members are refused. */
	for (uint32_t i = 0; i < ARRAY_SIZE(map); i++)
		map[i] = (i * 7) % 3000;
	CHECK_EQ(rst_page_count(2500), 3);
	rst_page_encode(buf, g_uuid, 2, 5, 2500, map);
	CHECK_EQ(le_get32(buf + 40), 500);
	CHECK_EQ(
		rst_page_decode(buf, RST_BLOCK, g_uuid, 2, 2500, 4096, &gen, out, err, sizeof(err)),
		0);
	CHECK_EQ(gen, 5);
	CHECK(memcmp(out, map + 2000, 500 * 4) == 0);
	CHECK_EQ(
		rst_page_decode(buf, RST_BLOCK, g_uuid, 1, 2500, 4096, &gen, out, err, sizeof(err)),
		-EBADMSG); /* in the wrong place */
	CHECK_EQ(
		rst_page_decode(buf, RST_BLOCK, g_uuid, 2, 2600, 4096, &gen, out, err, sizeof(err)),
		-EBADMSG); /* an array of another size */
	CHECK_EQ(
		rst_page_decode(buf, RST_BLOCK, g_uuid, 2, 2500, 2000, &gen, out, err, sizeof(err)),
		-EBADMSG);
	CHECK(strstr(err, "outside the members") != NULL);
	le_put64(buf + 32, 0);
	reseal(buf);
	CHECK_EQ(
		rst_page_decode(buf, RST_BLOCK, g_uuid, 2, 2500, 4096, &gen, out, err, sizeof(err)),
		-EBADMSG);
}

/* --- arrays --- */

/* Members: ram bdevs, or with g_zone_cap zoned bdevs over ram bases (zones of 64 blocks,
 * 4 conventional ones first for the superblock and tree; g_zone_open open zones at most). */
static const char *const g_base[] = {"b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"};
static uint64_t g_zone_cap, g_zone_conv = 4;
static uint32_t g_zone_open;

/* Member i: zoned (capacity cap, g_zone_open, g_zone_conv) over a ram base of blocks. */
static void
make_zoned(unsigned i, uint64_t blocks, uint64_t cap)
{
	struct zoned_bdev_opts zo = {.name = g_m[i],
				     .base_bdev = g_base[i],
				     .zone_capacity = cap,
				     .zone_size = 64,
				     .optimal_open_zones = 1,
				     .max_open_zones = g_zone_open,
				     .conventional_zones = g_zone_conv};
	struct uraid_bdev *b;
	char err[256] = "";

	CHECK_EQ(ram_bdev_create(g_base[i], blocks, BS, NULL, &b), 0);
	CHECK_EQ(zoned_bdev_create(&zo, &b, err, sizeof(err)), 0);
}

static void
make_rams(unsigned n, uint64_t blocks)
{
	for (unsigned i = 0; i < n; i++) {
		struct uraid_bdev *b;

		if (g_zone_cap != 0)
			make_zoned(i, blocks, g_zone_cap);
		else
			CHECK_EQ(ram_bdev_create(g_m[i], blocks, BS, NULL, &b), 0);
	}
}

static void
drop_rams(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (uraid_bdev_get_by_name(g_m[i]))
			CHECK_EQ(test_delete_bdev(g_m[i]), 0);
		if (uraid_bdev_get_by_name(g_base[i]))
			CHECK_EQ(test_delete_bdev(g_base[i]), 0);
	}
}

struct shape {
	const char *level;
	unsigned n, k, m, copies;
	bool cost_benefit;
};

/* Array "lg" of shape s over the bdevs named members. */
static int
create_on(const struct shape *s, const char *const *members, unsigned pct, char *err, size_t len)
{
	struct uraid_array_opts o = {0};
	struct uraid_bdev *b;

	o.name = "lg";
	CHECK_EQ(uraid_raid_level_parse(s->level, &o.level, &o.raid5_layout), 0);
	o.strip_size_kb = 16;
	o.members = (const char **)members;
	o.num_members = s->n;
	o.data_chunks = s->k;
	o.parity_chunks = s->m;
	if (o.level == URAID_DRAID)
		o.spares = s->copies; /* draid: its distributed spares */
	else
		o.copies = s->copies;
	o.superblock = true;
	o.policy = URAID_POLICY_LOG;
	o.overprovision_pct = pct;
	o.log_cost_benefit = s->cost_benefit;
	return uraid_array_create(&o, &b, err, len);
}

/* ... over the ram (or zoned) members m0.. */
static int
create(const struct shape *s, unsigned pct, char *err, size_t len)
{
	return create_on(s, g_m, pct, err, len);
}

static int
del(bool clear)
{
	struct uraid_bdev *b = uraid_bdev_get_by_name("lg");

	if (b == NULL)
		return -ENODEV;
	uraid_array_delete(b, clear, (uraid_bdev_unregister_cb)NULL, NULL);
	for (int i = 0; i < 100000 && uraid_bdev_get_by_name("lg"); i++)
		uraid_runtime_poll_until_idle(10);
	uraid_runtime_poll_until_idle(1000);
	return uraid_bdev_get_by_name("lg") ? -ETIMEDOUT : 0;
}

static uint64_t
array_blocks(void)
{
	return uraid_bdev_get_num_blocks(uraid_bdev_get_by_name("lg"));
}

/* Write [lba, +n) with contents derived from (lba, version) into the array and the model. */
static int
put(struct uraid_bdev_desc *d, uint8_t *model, uint64_t lba, uint64_t n, uint32_t version)
{
	for (uint64_t b = lba; b < lba + n; b++) {
		uint8_t *p = model + b * BS;

		for (unsigned i = 0; i < BS; i += 8) {
			uint64_t v = (b << 32) ^ ((uint64_t)version << 8) ^ i;

			memcpy(p + i, &v, 8);
		}
	}
	return uraid_bdev_io_sync(d, URAID_IO_WRITE, model + lba * BS, lba, n);
}

static bool
same(const uint8_t *model, uint64_t blocks)
{
	struct uraid_bdev_desc *d;
	uint8_t *buf = aligned_alloc(4096, 64 * BS);
	bool ok = true;

	if (uraid_bdev_open("lg", false, NULL, NULL, &d) != 0) {
		free(buf);
		return false;
	}
	for (uint64_t lba = 0; ok && lba < blocks; lba += 64) {
		uint64_t n = blocks - lba < 64 ? blocks - lba : 64;

		ok = uraid_bdev_io_sync(d, URAID_IO_READ, buf, lba, n) == 0 &&
		     memcmp(buf, model + lba * BS, n * BS) == 0;
		if (!ok)
			fprintf(stderr, "  differs in blocks %lu..%lu\n", (unsigned long)lba,
				(unsigned long)(lba + n - 1));
	}
	uraid_bdev_close(d);
	free(buf);
	return ok;
}

/* Random writes of 1..40 blocks over [0, span), `rounds` times the span, plus unmaps. */
static void
churn(uint8_t *model, uint64_t span, unsigned rounds, uint32_t *version)
{
	struct uraid_bdev_desc *d;
	uint64_t written = 0;

	REQUIRE(uraid_bdev_open("lg", true, NULL, NULL, &d) == 0);
	while (written < rounds * span) {
		uint64_t n = 1 + test_rand() % 40, lba = test_rand() % span;

		if (lba + n > span)
			n = span - lba;
		if (test_rand() % 16 == 0) {
			CHECK_EQ(uraid_bdev_io_sync(d,
						    test_rand() % 2 ? URAID_IO_UNMAP
								    : URAID_IO_WRITE_ZEROES,
						    NULL, lba, n),
				 0);
			memset(model + lba * BS, 0, n * BS);
			continue;
		}
		CHECK_EQ(put(d, model, lba, n, ++*version), 0);
		written += n;
	}
	uraid_bdev_close(d);
}

/* Every block once, one at a time in a scattered order: each lands in a stripe of its own
 * (nothing else is being written), so the stripes run out long before the array is full and
 * the cleaner must pack them. */
static void
fill_scattered(uint8_t *model, uint64_t blocks, uint32_t *version)
{
	struct uraid_bdev_desc *d;
	uint64_t stride = 7919; /* prime: visits every block */

	REQUIRE(uraid_bdev_open("lg", true, NULL, NULL, &d) == 0);
	while (blocks % stride == 0)
		stride += 2;
	for (uint64_t i = 0, lba = 0; i < blocks; i++, lba = (lba + stride) % blocks)
		CHECK_EQ(put(d, model, lba, 1, ++*version), 0);
	uraid_bdev_close(d);
}

static void
level_case(const struct shape *s)
{
	struct uraid_array_stats st;
	struct uraid_array_info info;
	char err[256] = "", report[1024];
	uint32_t version = 0;
	uint64_t blocks;
	uint8_t *model;

	make_rams(s->n, MBLKS);
	REQUIRE(create(s, 0, err, sizeof(err)) == 0);
	blocks = array_blocks();
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("lg"), &info), 0);
	CHECK_EQ(info.policy, URAID_POLICY_LOG);
	CHECK_EQ(info.log.cost_benefit, s->cost_benefit);
	/* 10% over-provisioning (or at least 8 stripes). */
	CHECK(blocks <= info.log.physical_blocks - info.log.physical_blocks / 10);
	CHECK(blocks + 8 * (info.log.physical_blocks / info.log.rows) <= info.log.physical_blocks);
	model = calloc(blocks, BS);
	CHECK(same(model, blocks)); /* nothing written reads as zeroes */
	fill_scattered(model, blocks, &version);
	CHECK(same(model, blocks));
	churn(model, blocks, 3, &version);
	CHECK(same(model, blocks));
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("lg"), &info), 0);
	CHECK_EQ(uraid_array_get_stats(uraid_bdev_get_by_name("lg"), &st), 0);
	CHECK(info.log.rows_cleaned > 0);
	CHECK(info.log.moved_blocks > 0);
	CHECK(info.log.user_blocks >= 4 * blocks);
	CHECK(info.log.commits > 0 && info.log.checkpoints > 0);
	CHECK_EQ(st.rmw_writes, 0); /* never an update in place */
	/* Over zoned members every stripe goes down as zone appends (each checked to have
	 * landed where the stripe is); over conventional ones as plain writes. */
	if (g_zone_cap != 0)
		CHECK(st.zone_appends >= info.log.rows_cleaned);
	else
		CHECK_EQ(st.zone_appends, 0);
	for (unsigned i = 0; i < info.num_members; i++)
		CHECK_EQ(info.members[i].state, URAID_MEMBER_ACTIVE); /* no write refused */
	if (info.parity_chunks)
		CHECK(st.full_stripe_writes > 0);
	/* A clean restart: assembled from the superblocks, the tree from its pages. */
	CHECK_EQ(del(false), 0);
	CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
	uraid_runtime_poll_until_idle(1000);
	REQUIRE(uraid_bdev_get_by_name("lg") != NULL);
	CHECK_EQ(array_blocks(), blocks);
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("lg"), &info), 0);
	CHECK_EQ(info.log.cost_benefit, s->cost_benefit); /* kept in the superblock */
	CHECK(same(model, blocks));
	churn(model, blocks, 1, &version);
	CHECK(same(model, blocks));
	/* UNMAP of everything frees every stripe (but one the cleaner may hold open), and the
	 * array takes writes again. */
	{
		struct uraid_bdev_desc *d;

		REQUIRE(uraid_bdev_open("lg", true, NULL, NULL, &d) == 0);
		CHECK_EQ(uraid_bdev_io_sync(d, URAID_IO_UNMAP, NULL, 0, blocks), 0);
		memset(model, 0, blocks * BS);
		uraid_runtime_poll_until_idle(1000);
		CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("lg"), &info), 0);
		CHECK_EQ(info.log.mapped_blocks, 0);
		/* (Over zones: but the rows handed out of the groups still open.) */
		CHECK(info.log.free_rows + 1 +
			      info.log.open_zone_groups * info.log.zone_group_stripes >=
		      info.log.rows);
		if (g_zone_cap != 0)
			CHECK(info.log.zone_resets > 0);
		CHECK(same(model, blocks));
		CHECK_EQ(put(d, model, blocks / 2, 8, ++version), 0);
		uraid_bdev_close(d);
	}
	CHECK(same(model, blocks));
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("lg"), &info), 0);
	for (unsigned i = 0; i < info.num_members; i++)
		CHECK_EQ(info.members[i].state, URAID_MEMBER_ACTIVE);
	CHECK_EQ(del(true), 0);
	free(model);
	drop_rams(s->n);
}

static void
test_levels(void)
{
	static const struct shape shapes[] = {
		{"raid0", 3, 0, 0, 0, false},  {"raid1", 2, 0, 0, 0, false},
		{"raid10", 4, 0, 0, 2, false}, {"raid5", 5, 0, 0, 0, false},
		{"raid6", 6, 0, 0, 0, false},  {"ec", 6, 4, 2, 0, false},
		{"raid5", 4, 0, 0, 0, true},   {"draid", 8, 4, 2, 1, false},
	};

	REQUIRE(start_manual(2) == 0);
	for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
		int before = h_case_failures;
		uint64_t window, bw;

		/* The cost-benefit case runs under a bandwidth cap of 1 MB/s for background work:
		 * the cleaner still keeps up when writes wait for space. */
		uraid_raid_get_options(&window, &bw);
		if (shapes[i].cost_benefit)
			CHECK_EQ(uraid_raid_set_options(window, 1), 0);
		level_case(&shapes[i]);
		CHECK_EQ(uraid_raid_set_options(window, bw), 0);
		if (h_case_failures != before)
			fprintf(stderr, "  case %s x%u%s\n", shapes[i].level, shapes[i].n,
				shapes[i].cost_benefit ? " (cost-benefit)" : "");
	}
	uraid_runtime_stop();
}

/*
 * The members copied mid-run stand for a power cut there (ram members have no cache: every
 * acknowledged write is on them). Started from the copy, the array must hold exactly what
 * was acknowledged by then: the pages of the last checkpoint plus the records after it.
 */
static void
test_restart_from_copy(void)
{
	static const struct shape s = {"raid6", 5, 0, 0, 0, false};
	uint8_t *copy[5], *model, *model_then;
	uint32_t version = 0;
	char err[256] = "", report[1024];
	struct uraid_array_info info;
	uint64_t blocks;

	REQUIRE(start_manual(2) == 0);
	make_rams(s.n, MBLKS);
	REQUIRE(create(&s, 20, err, sizeof(err)) == 0);
	blocks = array_blocks();
	model = calloc(blocks, BS);
	model_then = malloc(blocks * BS);
	churn(model, blocks, 2, &version);
	/* Some records after the last checkpoint, then the copy. */
	churn(model, blocks / 8, 1, &version);
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("lg"), &info), 0);
	for (unsigned i = 0; i < s.n; i++) {
		copy[i] = malloc((size_t)MBLKS * BS);
		memcpy(copy[i], ram_bdev_memory(uraid_bdev_get_by_name(g_m[i])),
		       (size_t)MBLKS * BS);
	}
	memcpy(model_then, model, blocks * BS);
	churn(model, blocks, 1, &version); /* lost with the "power" */
	CHECK_EQ(del(false), 0);
	for (unsigned i = 0; i < s.n; i++) {
		memcpy(ram_bdev_memory(uraid_bdev_get_by_name(g_m[i])), copy[i],
		       (size_t)MBLKS * BS);
		free(copy[i]);
	}
	CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
	uraid_runtime_poll_until_idle(1000);
	REQUIRE(uraid_bdev_get_by_name("lg") != NULL);
	CHECK(same(model_then, blocks));
	/* ... and goes on from there, across another restart. */
	memcpy(model, model_then, blocks * BS);
	churn(model, blocks, 1, &version);
	CHECK_EQ(del(false), 0);
	CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
	uraid_runtime_poll_until_idle(1000);
	CHECK(same(model, blocks));
	CHECK_EQ(del(true), 0);
	free(model);
	free(model_then);
	drop_rams(s.n);
	uraid_runtime_stop();
}

/* Every map page's newest copy must be on at least `want` of the array's current members
 * (read straight from the ram members' stripe tree areas). */
static bool
pages_redundant(struct uraid_bdev *a, unsigned want)
{
	struct uraid_array_info info;
	const uint8_t *mem[RAID_MAX_MEMBERS] = {0};
	struct sb sb;
	char err[128];
	bool ok = true;
	uint64_t phys;
	uint32_t npages;

	if (uraid_array_get_info(a, &info) != 0)
		return false;
	for (unsigned i = 0; i < info.num_members; i++) {
		struct uraid_bdev *b = uraid_bdev_get_by_name(info.members[i].name);

		if (b != NULL && info.members[i].state == URAID_MEMBER_ACTIVE)
			mem[i] = ram_bdev_memory(b);
	}
	if (mem[0] == NULL || sb_decode(mem[0], SB_BYTES, &sb, err, sizeof(err)) != 0)
		return false;
	phys = sb.array_blocks;
	npages = rst_page_count(sb.log_array_blocks);
	for (uint32_t p = 0; p < npages; p++) {
		uint64_t best = 0;
		unsigned have = 0;

		for (int pass = 0; pass < 2; pass++) {
			for (unsigned i = 0; i < info.num_members; i++) {
				bool here = false;

				for (unsigned slot = 0; slot < 2 && mem[i] != NULL; slot++) {
					const uint8_t *blk = mem[i] + (sb.ppl_offset_blocks * BS) +
							     ((uint64_t)RST_ANCHORS +
							      sb.log_ring_blocks + 2ull * p +
							      slot) * RST_BLOCK;
					uint64_t gen;

					if (rst_page_decode(blk, RST_BLOCK, sb.array_uuid, p,
							    sb.log_array_blocks, phys, &gen, NULL,
							    err, sizeof(err)) != 0)
						continue;
					if (pass == 0 && gen > best)
						best = gen;
					here |= pass == 1 && gen == best;
				}
				have += here;
			}
		}
		if (best != 0 && have < want) {
			fprintf(stderr, "  map page %u: newest copy (gen %lu) on %u members\n", p,
				(unsigned long)best, have);
			ok = false;
		}
	}
	return ok;
}

/* A third of the array written: a member fails (degraded reads), a spare rebuilds only the
 * stripes that hold data, then two other members fail and the rebuilt one serves. */
/* A fresh runtime with nram ram members and array "lg" of shape s over the first s->n, open
 * for writes (*d); its size (*blocks) and a zeroed model of it (*model). false (the reason
 * on stderr, the case failed) if any step failed. */
static bool
start_lg(const struct shape *s, unsigned nram, struct uraid_bdev **a, struct uraid_bdev_desc **d,
	 uint64_t *blocks, uint8_t **model)
{
	char err[256] = "";
	bool ok;

	if (start_manual(2) != 0)
		return false;
	make_rams(nram, MBLKS);
	ok = create(s, 0, err, sizeof(err)) == 0;
	if (!ok)
		fprintf(stderr, "  create: %s\n", err);
	CHECK(ok);
	*a = uraid_bdev_get_by_name("lg");
	*blocks = array_blocks();
	*model = ok ? calloc(*blocks, BS) : NULL;
	ok = ok && *model != NULL && uraid_bdev_open("lg", true, NULL, NULL, d) == 0;
	CHECK(ok);
	return ok;
}

static void
test_degraded_rebuild(void)
{
	static const struct shape s = {"raid6", 6, 0, 0, 0, false};
	struct uraid_array_stats st;
	struct uraid_array_info info;
	struct uraid_bdev_desc *d;
	struct uraid_bdev *a;
	uint32_t version = 0;
	char err[256] = "";
	uint64_t blocks;
	uint8_t *model;

	REQUIRE(start_lg(&s, s.n + 2, &a, &d, &blocks, &model));
	for (uint64_t lba = 0; lba < blocks / 3; lba += 32)
		CHECK_EQ(put(d, model, lba, 32, ++version), 0);
	uraid_bdev_close(d);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(uraid_array_fail_member(a, 2), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK(same(model, blocks));
	churn(model, blocks / 3, 1, &version); /* degraded writes */
	CHECK(same(model, blocks));
	CHECK_EQ(uraid_array_add_spare(a, g_m[s.n], err, sizeof(err)), 0);
	st = wait_rebuilt(a, 4000);
	CHECK_EQ(uraid_array_get_info(a, &info), 0);
	/* Only stripes that hold data: about a third (and what the churn's stripes add). */
	CHECK(st.rebuild_units > 0);
	CHECK(st.rebuild_units < info.log.rows * 2 / 3);
	fprintf(stderr, "  rebuilt %lu of %lu stripes\n", (unsigned long)st.rebuild_units,
		(unsigned long)info.log.rows);
	CHECK(pages_redundant(a, 3)); /* m + 1 copies, none on the member that failed */
	CHECK(same(model, blocks));
	/* A planned replacement of slot 1 (copied while it serves), then a restart: the tree
	 * blocks that had a copy on the old member were written again before the swap. */
	CHECK_EQ(uraid_array_replace_member(a, g_m[1], g_m[s.n + 1], err, sizeof(err)), 0);
	wait_rebuilt(a, 4000);
	for (int i = 0; i < 2000; i++) {
		CHECK_EQ(uraid_array_get_info(a, &info), 0);
		if (strcmp(info.members[1].name, g_m[s.n + 1]) == 0 && info.replacing < 0)
			break;
		uraid_runtime_advance_us(1000);
		uraid_runtime_poll_until_idle(100);
	}
	CHECK(strcmp(info.members[1].name, g_m[s.n + 1]) == 0);
	CHECK(same(model, blocks));
	CHECK(pages_redundant(a, 3)); /* m + 1 copies, none on the member replaced */
	/* Two other members fail: the array reads slot 2's blocks from the rebuilt member, and
	 * restarted on the four left (the replaced member gone for good) finds its whole tree. */
	CHECK_EQ(uraid_array_fail_member(a, 0), 0);
	CHECK_EQ(uraid_array_fail_member(a, 3), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK(same(model, blocks));
	CHECK_EQ(del(false), 0);
	CHECK_EQ(test_delete_bdev(g_m[1]), 0);
	CHECK_EQ(test_delete_bdev(g_m[0]), 0);
	CHECK_EQ(test_delete_bdev(g_m[3]), 0);
	{
		char report[1024];

		CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
		uraid_runtime_poll_until_idle(1000);
	}
	REQUIRE(uraid_bdev_get_by_name("lg") != NULL);
	CHECK(same(model, blocks));
	CHECK_EQ(del(true), 0);
	free(model);
	drop_rams(s.n + 2);
	uraid_runtime_stop();
}

/* A checkpoint the power cut short: one member holds a map page it wrote (the generation
 * after the last anchor's), the anchor never came. The page may be on fewer members than the
 * array needs, so it is not taken: the page the last anchor vouches for is, with the records
 * after it replayed, and the next checkpoint writes it again on every member it needs. Here
 * the page on that one member says other things (array blocks 0 and 8 swapped): read through
 * it, the array would return one for the other. */
static void
test_unfinished_checkpoint(void)
{
	static const struct shape s = {"raid5", 4, 0, 0, 0, false};
	uint32_t map[RST_PAGE_ENTRIES], version = 0, t;
	char err[256] = "", report[1024];
	uint64_t blocks, gen = 0, newest = 0;
	struct uraid_bdev_desc *d;
	uint8_t *model, *mem, *blk[2];
	unsigned older = 0;
	struct sb sb;

	REQUIRE(start_manual(2) == 0);
	make_rams(s.n, MBLKS);
	REQUIRE(create(&s, 0, err, sizeof(err)) == 0);
	blocks = array_blocks();
	model = calloc(blocks, BS);
	REQUIRE(uraid_bdev_open("lg", true, NULL, NULL, &d) == 0);
	CHECK_EQ(put(d, model, 0, 4, ++version), 0);
	CHECK_EQ(put(d, model, 8, 4, ++version), 0);
	uraid_bdev_close(d);
	CHECK_EQ(del(false), 0); /* a last checkpoint, and its anchor */
	/* A member with a copy of map page 0 (copies rotate over the members). */
	for (unsigned i = 0; i < s.n && newest == 0; i++) {
		mem = ram_bdev_memory(uraid_bdev_get_by_name(g_m[i]));
		REQUIRE(sb_decode(mem, SB_BYTES, &sb, err, sizeof(err)) == 0);
		for (unsigned slot = 0; slot < 2; slot++) {
			blk[slot] = mem + sb.ppl_offset_blocks * BS +
				    ((uint64_t)RST_ANCHORS + sb.log_ring_blocks + slot) * RST_BLOCK;
			if (rst_page_decode(blk[slot], RST_BLOCK, sb.array_uuid, 0,
					    sb.log_array_blocks, sb.array_blocks, &gen, NULL, err,
					    sizeof(err)) == 0 &&
			    gen > newest) {
				newest = gen;
				older = !slot;
			}
		}
	}
	REQUIRE(newest != 0);
	REQUIRE(rst_page_decode(blk[!older], RST_BLOCK, sb.array_uuid, 0, sb.log_array_blocks,
				sb.array_blocks, &gen, map, err, sizeof(err)) == 0);
	CHECK(map[0] != 0 && map[8] != 0);
	t = map[0];
	map[0] = map[8];
	map[8] = t;
	/* The anchors' generations go up to at least the newest page's: one more. */
	rst_page_encode(blk[older], sb.array_uuid, 0, newest + 1, sb.log_array_blocks, map);
	CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
	uraid_runtime_poll_until_idle(1000);
	REQUIRE(uraid_bdev_get_by_name("lg") != NULL);
	CHECK(same(model, blocks));
	CHECK(pages_redundant(uraid_bdev_get_by_name("lg"), 2));
	/* ... and so after another restart. */
	CHECK_EQ(del(false), 0);
	CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
	uraid_runtime_poll_until_idle(1000);
	CHECK(same(model, blocks));
	CHECK_EQ(del(true), 0);
	free(model);
	drop_rams(s.n);
	uraid_runtime_stop();
}

/* A log array over draid 4+2 with a distributed spare: a member fails, and the stripes that
 * hold data (about a third) are rebuilt at once into the spare strips, written on every
 * survivor, no spare member needed; then two more members fail, and after a restart on the
 * five left every block still reads back. */
static void
test_draid_log_rebuild(void)
{
	static const struct shape s = {"draid", 8, 4, 2, 1, false};
	uint64_t before[8], after, rebuilt;
	struct uraid_array_stats st;
	struct uraid_array_info info;
	struct uraid_bdev_desc *d;
	struct uraid_bdev *a;
	uint32_t version = 0;
	char report[1024];
	uint64_t blocks;
	uint8_t *model;

	REQUIRE(start_lg(&s, s.n, &a, &d, &blocks, &model));
	for (uint64_t lba = 0; lba < blocks / 3; lba += 32)
		CHECK_EQ(put(d, model, lba, 32, ++version), 0);
	uraid_bdev_close(d);
	uraid_runtime_poll_until_idle(1000);
	for (unsigned i = 0; i < s.n; i++)
		before[i] = bdev_blocks_done(g_m[i], URAID_IO_WRITE);
	CHECK_EQ(uraid_array_fail_member(a, 2), 0);
	for (int i = 0; i < 20000; i++) {
		CHECK_EQ(uraid_array_get_info(a, &info), 0);
		if (strcmp(info.draid_spare[0].state, "full") == 0)
			break;
		uraid_runtime_advance_us(1000);
		uraid_runtime_poll_until_idle(100);
	}
	CHECK(strcmp(info.draid_spare[0].state, "full") == 0);
	CHECK_EQ(uraid_array_get_stats(a, &st), 0);
	rebuilt = st.rebuild_units;
	/* Only stripes that hold data (and what the tree's own writes add). */
	CHECK(rebuilt > 0);
	CHECK(rebuilt < info.log.rows * 2 / 3);
	fprintf(stderr, "  rebuilt %lu of %lu stripes into the distributed spare\n",
		(unsigned long)rebuilt, (unsigned long)info.log.rows);
	for (unsigned i = 0; i < s.n; i++) {
		if (i == 2)
			continue;
		after = bdev_blocks_done(g_m[i], URAID_IO_WRITE);
		CHECK(after > before[i]); /* every survivor took some of it */
	}
	CHECK(same(model, blocks));
	churn(model, blocks / 3, 1, &version);
	CHECK(same(model, blocks));
	CHECK_EQ(uraid_array_fail_member(a, 0), 0);
	CHECK_EQ(uraid_array_fail_member(a, 5), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK(same(model, blocks));
	CHECK_EQ(del(false), 0);
	CHECK_EQ(test_delete_bdev(g_m[0]), 0);
	CHECK_EQ(test_delete_bdev(g_m[2]), 0);
	CHECK_EQ(test_delete_bdev(g_m[5]), 0);
	CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
	uraid_runtime_poll_until_idle(1000);
	REQUIRE(uraid_bdev_get_by_name("lg") != NULL);
	CHECK(same(model, blocks));
	CHECK_EQ(del(true), 0);
	free(model);
	drop_rams(s.n);
	uraid_runtime_stop();
}

/* Until distributed spare 0 is in `state`, the clock moving; the info then. */
static struct uraid_array_info
ds_wait(struct uraid_bdev *a, const char *state)
{
	struct uraid_array_info info;

	for (int i = 0; i < 20000; i++) {
		CHECK_EQ(uraid_array_get_info(a, &info), 0);
		if (strcmp(info.draid_spare[0].state, state) == 0)
			break;
		uraid_runtime_advance_us(1000);
		uraid_runtime_poll_until_idle(100);
	}
	CHECK(strcmp(info.draid_spare[0].state, state) == 0);
	return info;
}

/* Fresh stripes written while a distributed spare drains onto a new member: the copy back
 * passed them by while they were free, so the strip of the drained slot holds one thing on
 * the spare and another on the new member (filled here with other bytes). A data column the
 * parity is computed over is read from one place; it must then be written to both, or the
 * parity holds there only: once the spare is let go, the parity check finds the stripe bad
 * and a read that decodes through it returns wrong data. The copy back is held (a bandwidth
 * cap and a stopped clock) on the first stripe holding data while one-block stripes are
 * written; then it ends, and the check, reads, and reads with two more members failed all
 * hold. */
static void
test_draid_drain_fresh_rows(void)
{
	static const struct shape s = {"draid", 8, 4, 2, 1, false};
	uint64_t bw = g_rebuild_opts.max_bw_mb_sec, blocks;
	struct uraid_array_info info;
	struct uraid_bdev_desc *d;
	struct uraid_bdev *a, *nb;
	uint32_t version = 0;
	char err[256] = "";
	uint8_t *model;

	REQUIRE(start_lg(&s, s.n, &a, &d, &blocks, &model));
	/* Stripes 0 and 1 (one a write: nothing else in flight seals each at once), then stripe
	 * 0 free again: the copy back, which takes the first stripe of each period first,
	 * passes free ones until it stops on stripe 1. */
	for (uint64_t lba = 0; lba < 16; lba += 8)
		CHECK_EQ(put(d, model, lba, 8, ++version), 0);
	CHECK_EQ(uraid_bdev_io_sync(d, URAID_IO_UNMAP, NULL, 0, 8), 0);
	memset(model, 0, 8 * BS);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(uraid_array_fail_member(a, 3), 0);
	ds_wait(a, "full");
	CHECK_EQ(ram_bdev_create("n8", MBLKS, BS, NULL, &nb), 0);
	memset(ram_bdev_memory(nb), 0x5a, (size_t)MBLKS * BS);
	g_rebuild_opts.max_bw_mb_sec = 1;
	CHECK_EQ(uraid_array_add_spare(a, "n8", err, sizeof(err)), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(uraid_array_get_info(a, &info), 0);
	CHECK(strcmp(info.draid_spare[0].state, "draining") == 0);
	for (uint64_t i = 0; i < 160; i++)
		CHECK_EQ(put(d, model, 16 + i * 3, 1, ++version), 0);
	CHECK_EQ(uraid_array_get_info(a, &info), 0);
	CHECK(strcmp(info.draid_spare[0].state, "draining") == 0);
	CHECK(info.log.rows - info.log.free_rows >= 160);
	g_rebuild_opts.max_bw_mb_sec = bw;
	ds_wait(a, "free");
	{
		struct uraid_array_check_result r = run_scrub("lg", false, 0);

		CHECK(r.stripes_checked > 0);
		CHECK_EQ(r.bad_stripes, 0);
	}
	CHECK(same(model, blocks));
	CHECK_EQ(uraid_array_fail_member(a, 1), 0);
	CHECK_EQ(uraid_array_fail_member(a, 6), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK(same(model, blocks));
	uraid_bdev_close(d);
	CHECK_EQ(del(true), 0);
	free(model);
	CHECK_EQ(test_delete_bdev("n8"), 0);
	drop_rams(s.n);
	uraid_runtime_stop();
}

/* wl_run with the clock moving (slow member reads wait on it). */
static void
run_clocked(struct wl *wl, unsigned ops, unsigned qd, uint64_t max_blocks)
{
	unsigned issued = 0;
	uint64_t idle = 0;

	while ((issued < ops || wl->inflight > 0) && idle < 1000000) {
		if (issued < ops && wl->inflight < qd && wl_issue(wl, max_blocks)) {
			issued++;
			continue;
		}
		/* (Busy is no reason to stop the clock: writes waiting for space wait for the
		 * cleaner, whose reads wait for it.) */
		if (uraid_runtime_poll_until_idle(1) == 0)
			idle++;
		uraid_runtime_advance_us(2);
	}
	CHECK_EQ(wl->inflight, 0);
}

/* Reads on reactor 1 look the map up there while reactor 0 writes, cleans and reuses
 * stripes: random writes, reads, unmaps and zeroes from both reactors over a small array
 * rewritten many times over, healthy and then degraded. Member reads take their data 20 us
 * after they are issued (fault latency), so a stripe reused too early would be read with
 * someone else's data. Every read matches the model, and reuses did wait. */
static void
test_remote_reads(void)
{
	struct fault_rule_opts slow = {.io_type_mask = 1u << URAID_IO_READ,
				       .kind = FAULT_LATENCY,
				       .count = -1,
				       .probability_ppm = 1000000,
				       .latency_us = 20};
	static const struct shape s = {"raid5", 4, 0, 0, 0, false};
	struct uraid_array_info info;
	struct uraid_bdev *b;
	char err[256] = "";
	struct wl wl;

	REQUIRE(start_manual(REACTORS) == 0);
	fault_members_create(s.n, MBLKS, BS);
	REQUIRE(create_on(&s, g_fault_ptrs, 0, err, sizeof(err)) == 0);
	b = uraid_bdev_get_by_name("lg");
	REQUIRE(wl_open(&wl, "lg"));
	wl.zeroes_ok = true;
	for (unsigned i = 0; i < s.n; i++)
		CHECK_EQ(fault_inject(g_fault_names[i], &slow), 0);
	run_clocked(&wl, 8000, 32, 24);
	CHECK_EQ(uraid_array_fail_member(b, 1), 0);
	run_clocked(&wl, 8000, 32, 24);
	for (unsigned i = 0; i < s.n; i++)
		CHECK_EQ(fault_clear(g_fault_names[i]), 0);
	for (int i = 0; i < 1000; i++) { /* member reads delayed before the rules went */
		uraid_runtime_poll_until_idle(10);
		uraid_runtime_advance_us(10);
	}
	wl_verify_all(&wl);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(uraid_array_get_info(b, &info), 0);
	fprintf(stderr, "  %lu stripes cleaned, %lu reuses waited for reads\n",
		(unsigned long)info.log.rows_cleaned, (unsigned long)info.log.rows_deferred);
	CHECK(info.log.rows_cleaned > 0);
	CHECK(info.log.rows_deferred > 0);
	CHECK(info.log.lane_rows > 0); /* reactor 1 wrote through its lane */
	wl_close(&wl);
	CHECK_EQ(del(true), 0);
	fault_members_delete(s.n);
	uraid_runtime_stop();
}

/* Writes on reactor 1 go through its own lane: rows granted by reactor 0, filled and written
 * there, committed on reactor 0. Writes of up to 9 stripes at once (more than a lane holds),
 * with unmaps, zeroes and flushes, over an array rewritten several times (the cleaner works
 * while the lane waits for rows); then the same with reactor 0 writing too. The array stops
 * with rows still granted to the lane, comes back from its superblocks with every write, and
 * writes to it while it is offline fail. */
static void
test_lanes(void)
{
	static const struct shape s = {"raid5", 4, 0, 0, 0, false};
	struct uraid_array_info info;
	char err[256] = "", report[1024];
	uint64_t blocks, lane_rows;
	uint8_t *model;
	struct wl wl;

	REQUIRE(start_manual(REACTORS) == 0);
	make_rams(s.n, MBLKS);
	REQUIRE(create(&s, 0, err, sizeof(err)) == 0);
	REQUIRE(wl_open(&wl, "lg"));
	blocks = wl.blocks;
	wl.pin = 2; /* reactor 1 */
	wl_run(&wl, 3000, 32, 108, 0, NULL);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("lg"), &info), 0);
	fprintf(stderr, "  %lu stripes from the lane, %lu of %lu cleaned\n",
		(unsigned long)info.log.lane_rows, (unsigned long)info.log.rows_cleaned,
		(unsigned long)info.log.rows);
	CHECK(info.log.lane_rows > 0);
	CHECK(info.log.rows_cleaned > 0);
	lane_rows = info.log.lane_rows;
	wl.pin = 0; /* both reactors */
	wl_run(&wl, 3000, 32, 40, 0, NULL);
	wl_verify_all(&wl);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("lg"), &info), 0);
	CHECK(info.log.lane_rows > lane_rows);
	for (unsigned i = 0; i < info.num_members; i++)
		CHECK_EQ(info.members[i].state, URAID_MEMBER_ACTIVE);
	model = malloc(blocks * BS);
	REQUIRE(model != NULL);
	memcpy(model, wl.model, blocks * BS);
	wl_close(&wl);
	/* Stopped with the lane holding rows it never used: they go back, and it stops. */
	CHECK_EQ(del(false), 0);
	CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
	uraid_runtime_poll_until_idle(1000);
	REQUIRE(uraid_bdev_get_by_name("lg") != NULL);
	CHECK(same(model, blocks));
	/* Offline (two members of a raid5 gone), a lane's writes fail and it still stops. */
	REQUIRE(wl_open(&wl, "lg"));
	memcpy(wl.model, model, blocks * BS);
	wl.pin = 2;
	wl_run(&wl, 200, 16, 20, 0, NULL);
	CHECK_EQ(wl.errors, 0);
	CHECK_EQ(wl.mismatches, 0);
	CHECK_EQ(uraid_array_fail_member(uraid_bdev_get_by_name("lg"), 0), 0);
	CHECK_EQ(uraid_array_fail_member(uraid_bdev_get_by_name("lg"), 1), 0);
	uraid_runtime_poll_until_idle(1000);
	wl.expect_status = -EIO;
	wl.zeroes_ok = false;
	wl_run(&wl, 200, 16, 20, 0, NULL);
	CHECK_EQ(wl.errors, 0);
	wl_close(&wl);
	CHECK_EQ(del(true), 0);
	free(model);
	drop_rams(s.n);
	uraid_runtime_stop();
}

static void
test_bad_input(void)
{
	static const struct shape r5 = {"raid5", 3, 0, 0, 0, false},
				  cc = {"concat", 3, 0, 0, 0, false};
	struct uraid_array_opts o = {0};
	struct uraid_bdev *b;
	char err[256] = "";

	REQUIRE(start_manual(1) == 0);
	make_rams(3, MBLKS);
	CHECK_EQ(create(&cc, 0, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "concat") != NULL);
	CHECK_EQ(create(&r5, 60, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "over-provisioning") != NULL);
	o.name = "lg";
	o.level = URAID_RAID5;
	o.members = g_m;
	o.num_members = 3;
	o.policy = URAID_POLICY_LOG;
	CHECK_EQ(uraid_array_create(&o, &b, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "superblocks") != NULL);
	drop_rams(3);
	/* Too small for 16 stripes of 1 MiB strips. */
	make_rams(3, 2048);
	o.superblock = true;
	o.strip_size_kb = 1024;
	CHECK_EQ(uraid_array_create(&o, &b, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "too small") != NULL);
	CHECK(uraid_bdev_get_by_name("lg") == NULL);
	drop_rams(3);
	uraid_runtime_stop();
}

/* Every level over zoned members (zones of 64 blocks, capacity 48: rows below it only): rows
 * written in zone order, space back by zone resets, restarts; as test_levels otherwise. */
static void
test_zoned_levels(void)
{
	static const struct shape shapes[] = {
		{"raid0", 3, 0, 0, 0, false},  {"raid1", 2, 0, 0, 0, false},
		{"raid10", 4, 0, 0, 2, false}, {"raid5", 5, 0, 0, 0, false},
		{"raid6", 6, 0, 0, 0, false},  {"ec", 6, 4, 2, 0, true},
	};

	REQUIRE(start_manual(2) == 0);
	g_zone_cap = 48;
	for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
		int before = h_case_failures;

		level_case(&shapes[i]);
		if (h_case_failures != before)
			fprintf(stderr, "  zoned case %s x%u\n", shapes[i].level, shapes[i].n);
	}
	g_zone_cap = 0;
	uraid_runtime_stop();
}

/* Zoned members: a member fails, writes go on degraded, a zoned spare is rebuilt zone by zone
 * (its zones reset first, each written in order; zones opened meanwhile written to it
 * directly), then two others fail and it serves; a restart mid-way through a second rebuild
 * starts that rebuild over. Members limited to 3 open zones (2 groups open at once). */
static void
test_zoned_rebuild(void)
{
	static const struct shape s = {"raid6", 6, 0, 0, 0, false};
	struct uraid_array_stats st;
	struct uraid_array_info info;
	struct uraid_bdev_desc *d;
	struct uraid_bdev *a;
	uint32_t version = 0;
	char err[256] = "", report[1024];
	uint64_t blocks;
	uint8_t *model;

	REQUIRE(start_manual(2) == 0);
	g_zone_cap = 48;
	g_zone_open = 3;
	make_rams(s.n + 2, MBLKS);
	REQUIRE(create(&s, 0, err, sizeof(err)) == 0);
	a = uraid_bdev_get_by_name("lg");
	blocks = array_blocks();
	model = calloc(blocks, BS);
	REQUIRE(uraid_bdev_open("lg", true, NULL, NULL, &d) == 0);
	for (uint64_t lba = 0; lba < blocks / 2; lba += 32)
		CHECK_EQ(put(d, model, lba, 32, ++version), 0);
	uraid_bdev_close(d);
	churn(model, blocks / 2, 2, &version);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(uraid_array_get_info(a, &info), 0);
	/* Members allow 3 open zones: at most 2 groups take rows (one zone kept for a rebuild).
	 * None is open when the last write filled its group; the next write opens one. A write
	 * of one block takes a row of its own, which may be the last of the group open now: a
	 * second one then opens the next group. */
	CHECK(info.log.open_zone_groups <= 2);
	REQUIRE(uraid_bdev_open("lg", true, NULL, NULL, &d) == 0);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(put(d, model, (uint64_t)i, 1, ++version), 0);
		uraid_runtime_poll_until_idle(1000);
		CHECK_EQ(uraid_array_get_info(a, &info), 0);
		CHECK(info.log.open_zone_groups <= 2);
		if (info.log.open_zone_groups >= 1)
			break;
	}
	uraid_bdev_close(d);
	CHECK(info.log.open_zone_groups >= 1);
	CHECK(info.log.zone_resets > 0);
	/* Bad requests on a zoned log array: no online replacement, no repairing scrub. */
	CHECK_EQ(uraid_array_replace_member(a, g_m[1], g_m[s.n + 1], err, sizeof(err)),
		 -EOPNOTSUPP);
	CHECK(strstr(err, "zoned") != NULL);
	CHECK_EQ(uraid_array_fail_member(a, 2), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK(same(model, blocks));
	churn(model, blocks / 2, 1, &version); /* degraded writes */
	CHECK(same(model, blocks));
	CHECK_EQ(uraid_array_add_spare(a, g_m[s.n], err, sizeof(err)), 0);
	/* Writes while it rebuilds land in zones opened since, which the spare takes. */
	churn(model, blocks / 2, 1, &version);
	st = wait_rebuilt(a, 8000);
	CHECK_EQ(uraid_array_get_info(a, &info), 0);
	CHECK_EQ(info.members[2].state, URAID_MEMBER_ACTIVE);
	CHECK(st.rebuild_units > 0);
	fprintf(stderr, "  rebuilt %lu units onto the zoned spare\n",
		(unsigned long)st.rebuild_units);
	CHECK(same(model, blocks));
	CHECK_EQ(uraid_array_fail_member(a, 0), 0);
	CHECK_EQ(uraid_array_fail_member(a, 3), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK(same(model, blocks)); /* slot 2's columns from the rebuilt member */
	churn(model, blocks / 2, 1, &version);
	CHECK(same(model, blocks));
	/* Restarted with a rebuild onto slot 0 under way: it starts over and completes. */
	CHECK_EQ(uraid_array_add_spare(a, g_m[s.n + 1], err, sizeof(err)), 0);
	uraid_runtime_poll_until_idle(20);
	CHECK_EQ(del(false), 0);
	CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
	uraid_runtime_poll_until_idle(1000);
	a = uraid_bdev_get_by_name("lg");
	REQUIRE(a != NULL);
	CHECK(same(model, blocks));
	for (int i = 0; i < 8000; i++) {
		CHECK_EQ(uraid_array_get_info(a, &info), 0);
		if (info.members[0].state == URAID_MEMBER_ACTIVE && !info.rebuild.active)
			break;
		uraid_runtime_advance_us(1000);
		uraid_runtime_poll_until_idle(100);
	}
	CHECK_EQ(info.members[0].state, URAID_MEMBER_ACTIVE);
	CHECK_EQ(info.failed_members, 1); /* slot 3 */
	CHECK(same(model, blocks));
	CHECK_EQ(del(true), 0);
	free(model);
	drop_rams(s.n + 2);
	g_zone_cap = 0;
	g_zone_open = 0;
	uraid_runtime_stop();
}

/* Creating s over zoned members of capacity cap (conv conventional zones, open at most
 * open zones) is refused with a reason that says why. */
static void
refused_over_zones(const struct shape *s, uint64_t cap, uint64_t conv, uint32_t open,
		   const char *why)
{
	char err[256] = "";

	g_zone_cap = cap;
	g_zone_conv = conv;
	g_zone_open = open;
	make_rams(s->n, MBLKS);
	CHECK_EQ(create(s, 0, err, sizeof(err)), -EINVAL);
	if (strstr(err, why) == NULL)
		fprintf(stderr, "  refused with '%s', not for '%s'\n", err, why);
	CHECK(strstr(err, why) != NULL);
	drop_rams(s->n);
	g_zone_cap = 0;
	g_zone_conv = 4;
	g_zone_open = 0;
}

/* A member that reports an append somewhere other than where the array's stripe is (fault
 * bdevs over the zoned members, one append misreported by a block): that member is failed,
 * the array goes on degraded, and every block reads back. */
static void
test_zoned_append_misplaced(void)
{
	static const char *const names[] = {"fz0", "fz1", "fz2", "fz3", "fz4"};
	struct fault_rule_opts off = {.io_type_mask = 1u << URAID_IO_ZONE_APPEND,
				      .kind = FAULT_CORRUPT,
				      .count = 1,
				      .probability_ppm = 1000000,
				      .corrupt_value = 1};
	static const struct shape s = {"raid5", 5, 0, 0, 0, false};
	struct uraid_array_stats st;
	struct uraid_array_info info;
	struct uraid_bdev_desc *d;
	struct uraid_bdev *b;
	uint32_t version = 0;
	char err[256] = "";
	uint64_t blocks;
	uint8_t *model;

	REQUIRE(start_manual(2) == 0);
	for (unsigned i = 0; i < s.n; i++) {
		struct fault_bdev_opts fo = {.name = names[i], .base_name = g_m[i]};

		make_zoned(i, MBLKS, 48);
		CHECK_EQ(fault_bdev_create(&fo, &b), 0);
		CHECK(uraid_bdev_is_zoned(b));
	}
	{ /* no volatile cache over zones */
		struct fault_bdev_opts fo = {.name = "fzc", .base_name = "m5", .volatile_cache = 1};

		make_zoned(5, MBLKS, 48);
		CHECK_EQ(fault_bdev_create(&fo, &b), -EINVAL);
	}
	REQUIRE(create_on(&s, names, 0, err, sizeof(err)) == 0);
	b = uraid_bdev_get_by_name("lg");
	blocks = array_blocks();
	model = calloc(blocks, BS);
	REQUIRE(uraid_bdev_open("lg", true, NULL, NULL, &d) == 0);
	for (uint64_t lba = 0; lba < blocks / 4; lba += 24)
		CHECK_EQ(put(d, model, lba, 24, ++version), 0);
	CHECK_EQ(uraid_array_get_info(b, &info), 0);
	CHECK_EQ(info.failed_members, 0);
	CHECK_EQ(fault_inject("fz2", &off), 0);
	for (uint64_t lba = blocks / 4; lba < blocks / 2; lba += 24)
		CHECK_EQ(put(d, model, lba, 24, ++version), 0);
	uraid_bdev_close(d);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(uraid_array_get_info(b, &info), 0);
	CHECK_EQ(info.failed_members, 1);
	CHECK_EQ(info.members[2].state, URAID_MEMBER_FAILED);
	CHECK(same(model, blocks));
	CHECK_EQ(uraid_array_get_stats(b, &st), 0);
	CHECK(st.zone_appends > 0);
	CHECK_EQ(del(true), 0);
	for (unsigned i = 0; i < s.n; i++)
		CHECK_EQ(test_delete_bdev(names[i]), 0);
	drop_rams(6);
	free(model);
	uraid_runtime_stop();
}

/* Zoned members refused with a reason where they cannot work. */
static void
test_zoned_bad_input(void)
{
	static const struct shape r5 = {"raid5", 3, 0, 0, 0, false},
				  r10 = {"raid10", 3, 0, 0, 2, false};
	struct uraid_array_opts o = {0};
	struct uraid_bdev *b;
	char err[256] = "";

	REQUIRE(start_manual(1) == 0);
	g_zone_cap = 48;
	make_rams(3, MBLKS);
	/* An in-place array. */
	o.name = "lg";
	o.level = URAID_RAID5;
	o.members = g_m;
	o.num_members = 3;
	o.superblock = true;
	CHECK_EQ(uraid_array_create(&o, &b, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "consistency_policy log") != NULL);
	drop_rams(3);
	/* draid: spare strips between every member's rows. */
	{
		static const struct shape dr = {"draid", 5, 2, 1, 1, false};

		refused_over_zones(&dr, 48, 4, 0, "draid keeps spare strips");
	}
	/* raid10 whose rows do not line up in the zones. */
	refused_over_zones(&r10, 48, 4, 0, "multiple of the copies");
	/* A capacity that is not whole strips (16 KiB: 4 blocks), and one smaller than one. */
	refused_over_zones(&r5, 46, 4, 0, "whole strips");
	refused_over_zones(&r5, 2, 4, 0, "whole strips");
	/* Too few conventional zones for the superblock and tree. */
	refused_over_zones(&r5, 48, 1, 0, "conventional_zones >= 4");
	/* One open zone only. */
	refused_over_zones(&r5, 48, 4, 1, "open zone");
	/* Zone sizes that differ: member m2 with another capacity. */
	g_zone_cap = 48;
	make_rams(2, MBLKS);
	make_zoned(2, MBLKS, 32);
	CHECK_EQ(create(&r5, 0, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "zone geometries differ") != NULL);
	drop_rams(3);
	/* A zoned spare for an array of conventional members. */
	g_zone_cap = 0;
	make_rams(3, MBLKS);
	REQUIRE(create(&r5, 0, err, sizeof(err)) == 0);
	make_zoned(3, 2 * MBLKS, 48);
	CHECK_EQ(uraid_array_add_spare(uraid_bdev_get_by_name("lg"), "m3", err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "zoned") != NULL);
	CHECK_EQ(del(true), 0);
	drop_rams(4);
	g_zone_cap = 0;
	uraid_runtime_stop();
}

/* --- on reactor threads: a lane that stops last wakes reactor 0 --- */

struct thr {
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	uint8_t *buf;
	_Atomic int done;
};

static void
thr_write_cb(void *arg, int status)
{
	struct thr *t = arg;

	atomic_store(&t->done, status == 0 ? 1 : -1);
}

static void
thr_write_msg(void *arg)
{
	struct thr *t = arg;

	t->ch = uraid_bdev_get_io_channel(t->desc);
	if (t->ch == NULL ||
	    uraid_bdev_write(t->desc, t->ch, t->buf, 0, 1, 0, thr_write_cb, t) != 0)
		atomic_store(&t->done, -1);
}

static void
thr_put_msg(void *arg)
{
	struct thr *t = arg;

	uraid_put_io_channel(t->ch);
	atomic_store(&t->done, 2);
}

static void
stall_msg(void *arg UNUSED)
{
	struct timespec ts = {0, 50 * 1000000};

	nanosleep(&ts, NULL); /* a reactor descheduled for 50 ms */
}

static void
thr_unregistered(void *arg, int status UNUSED)
{
	atomic_store((_Atomic int *)arg, 1);
}

static bool
thr_wait(_Atomic int *flag, int want, int ms)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < ms && atomic_load(flag) != want; i++)
		nanosleep(&ts, NULL);
	return atomic_load(flag) == want;
}

/* A log array stops while reactor 1's lane is slow to answer: the lane gives its rows back
 * and stops its poller only after reactor 0 has gone to sleep. Its last step wakes reactor 0,
 * whose poller then finishes the stop (this stop used to wait for ever, found by the daemon's
 * shutdown under load). */
static void
test_lane_stop_wakes_reactor0(void)
{
	static const struct shape s = {"raid5", 4, 0, 0, 0, false};
	struct uraid_runtime_opts ro = {.num_reactors = 2};
	char err[256] = "";

	for (int round = 0; round < 2; round++) {
		struct thr t = {0};
		_Atomic int gone = 0;

		REQUIRE(uraid_runtime_start(&ro) == 0);
		make_rams(s.n, MBLKS);
		REQUIRE(create(&s, 0, err, sizeof(err)) == 0);
		REQUIRE(uraid_bdev_open("lg", true, NULL, NULL, &t.desc) == 0);
		t.buf = test_alloc(BS);
		memset(t.buf, 0x5a, BS);
		uraid_reactor_send(uraid_reactor_get(1), thr_write_msg, &t);
		CHECK(thr_wait(&t.done, 1, 5000)); /* through the lane: it holds rows now */
		uraid_reactor_send(uraid_reactor_get(1), thr_put_msg, &t);
		CHECK(thr_wait(&t.done, 2, 5000));
		uraid_bdev_close(t.desc);
		/* Reactor 1 stalls; the stop's wake-up queues behind; then reactor 1 stalls again
		 * after it, so the rows it gives back come home while it sleeps, and its last
		 * step comes after reactor 0 has gone idle. */
		uraid_reactor_send(uraid_reactor_get(1), stall_msg, NULL);
		uraid_array_delete(uraid_bdev_get_by_name("lg"), false, thr_unregistered,
				   (void *)&gone);
		{
			struct timespec ts = {0, 10 * 1000000};

			nanosleep(&ts, NULL);
		}
		uraid_reactor_send(uraid_reactor_get(1), stall_msg, NULL);
		CHECK(thr_wait(&gone, 1, 10000));
		for (unsigned i = 0; i < s.n; i++) {
			_Atomic int g = 0;

			uraid_bdev_unregister(uraid_bdev_get_by_name(g_m[i]), thr_unregistered,
					      (void *)&g);
			CHECK(thr_wait(&g, 1, 5000));
		}
		free(t.buf);
		uraid_runtime_stop();
	}
}

TEST_MAIN(TEST(test_format), TEST(test_levels), TEST(test_restart_from_copy),
	  TEST(test_unfinished_checkpoint), TEST(test_degraded_rebuild),
	  TEST(test_draid_log_rebuild), TEST(test_draid_drain_fresh_rows), TEST(test_remote_reads),
	  TEST(test_lanes), TEST(test_bad_input), TEST(test_zoned_levels), TEST(test_zoned_rebuild),
	  TEST(test_zoned_append_misplaced), TEST(test_zoned_bad_input),
	  TEST(test_lane_stop_wakes_reactor0))
