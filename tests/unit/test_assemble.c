/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Superblocks and assembly: an array comes back after a clean shutdown with its data; members
 * in another order, a damaged primary superblock (the backup is used), a stale member (left
 * out), a member from another array (never mixed in), too few members (a refusal naming
 * them), a dirty degraded array (only with force), create over used members (only with force),
 * and the data offset. With a bitmap, a member that left and comes back (at assembly, or
 * re-added while the array runs) catches up on the regions written meanwhile only, and an
 * older copy of it is refused that shortcut.
 */
#include <stdlib.h>

#include "bdev_util.h"
#include "bdev/bdev_priv.h"
#include "core/core.h"
#include "uraid/array.h"

#define BS    4096
#define MBLKS 1024 /* 4 MiB members */

static void
make_rams(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct uraid_bdev *b;
		char name[16];

		snprintf(name, sizeof(name), "m%u", i);
		CHECK_EQ(ram_bdev_create(name, MBLKS, BS, NULL, &b), 0);
	}
}

static enum uraid_consistency_policy g_policy; /* for create() */
static uint32_t g_region_kb;		       /* for create(): bitmap region, 0 = default */

static int
create(const char *name, const char *level, unsigned n, const char *const *members, bool force)
{
	struct uraid_array_opts o = {0};
	struct uraid_bdev *b;
	char err[256] = "";
	int rc;

	o.name = name;
	CHECK_EQ(uraid_raid_level_parse(level, &o.level, &o.raid5_layout), 0);
	o.strip_size_kb = 16;
	o.members = members;
	o.num_members = n;
	o.superblock = true;
	o.force = force;
	o.policy = g_policy;
	o.bitmap_region_kb = g_region_kb;
	rc = uraid_array_create(&o, &b, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "  create %s: %s\n", name, err);
	return rc;
}

static const char *const g_m[] = {"m0", "m1", "m2", "m3", "m4", "m5"};

static uint8_t *
fill(const char *array, uint64_t *blocks_out, uint8_t seed)
{
	struct uraid_bdev_desc *d;
	uint64_t blocks;
	uint8_t *data;

	if (uraid_bdev_open(array, true, NULL, NULL, &d) != 0)
		return NULL;
	blocks = uraid_bdev_get_num_blocks(uraid_bdev_desc_get_bdev(d));
	data = aligned_alloc(4096, blocks * BS);
	for (uint64_t i = 0; i < blocks * BS; i += 8) {
		uint64_t v = test_rand() ^ seed;

		memcpy(data + i, &v, 8);
	}
	for (uint64_t lba = 0; lba < blocks; lba += 64) {
		uint64_t n = blocks - lba < 64 ? blocks - lba : 64;

		CHECK_EQ(uraid_bdev_io_sync(d, URAID_IO_WRITE, data + lba * BS, lba, n), 0);
	}
	uraid_bdev_close(d);
	*blocks_out = blocks;
	return data;
}

static bool
same(const char *array, const uint8_t *data, uint64_t blocks)
{
	struct uraid_bdev_desc *d;
	uint8_t *buf = aligned_alloc(4096, 64 * BS);
	bool ok = true;

	if (uraid_bdev_open(array, false, NULL, NULL, &d) != 0) {
		free(buf);
		return false;
	}
	if (uraid_bdev_get_num_blocks(uraid_bdev_desc_get_bdev(d)) != blocks)
		ok = false;
	for (uint64_t lba = 0; ok && lba < blocks; lba += 64) {
		uint64_t n = blocks - lba < 64 ? blocks - lba : 64;

		ok = uraid_bdev_io_sync(d, URAID_IO_READ, buf, lba, n) == 0 &&
		     memcmp(buf, data + lba * BS, n * BS) == 0;
	}
	uraid_bdev_close(d);
	free(buf);
	return ok;
}

static int
del(const char *name, bool clear)
{
	_Atomic int got = 0;
	struct uraid_bdev *b = uraid_bdev_get_by_name(name);

	if (b == NULL)
		return -ENODEV;
	if (uraid_bdev_is_array(b)) {
		uraid_array_delete(b, clear, (uraid_bdev_unregister_cb)NULL, NULL);
		/* wait until the name is free and the members are released */
		for (int i = 0; i < 100000 && uraid_bdev_get_by_name(name); i++)
			uraid_runtime_poll_until_idle(10);
		uraid_runtime_poll_until_idle(1000);
		return uraid_bdev_get_by_name(name) ? -ETIMEDOUT : 0;
	}
	(void)got;
	return test_delete_bdev(name);
}

static void
cleanup(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%u", i);
		if (uraid_bdev_get_by_name(name))
			CHECK_EQ(test_delete_bdev(name), 0);
	}
	for (unsigned i = 0; i < n; i++) {
		if (uraid_bdev_get_by_name(g_m[i]))
			CHECK_EQ(test_delete_bdev(g_m[i]), 0);
	}
}

static int
examine(bool force, char *report, size_t len)
{
	int rc = uraid_array_examine(force, report, len);

	uraid_runtime_poll_until_idle(1000);
	return rc;
}

static void
test_clean_restart(void)
{
	struct uraid_array_info info;
	char report[1024];
	uint64_t blocks;
	uint8_t *data;

	REQUIRE(start_manual(2) == 0);
	make_rams(4);
	REQUIRE(create("r", "raid5", 4, g_m, false) == 0);
	data = fill("r", &blocks, 1);
	REQUIRE(data != NULL);
	CHECK_EQ(blocks, (MBLKS - 256) / 4 * 4 * 3); /* 1 MiB data offset, strip 16 KiB */
	CHECK_EQ(del("r", false), 0);
	CHECK(uraid_bdev_claimed_by(uraid_bdev_get_by_name("m0")) == NULL);
	CHECK_EQ(examine(false, report, sizeof(report)), 1);
	CHECK(strstr(report, "r: started, raid5, 4 of 4 members") != NULL);
	CHECK(same("r", data, blocks));
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("r"), &info), 0);
	CHECK(info.superblock && info.data_offset_blocks == 256 && info.failed_members == 0);
	/* A second examine finds it running. */
	CHECK_EQ(examine(false, report, sizeof(report)), 0);
	CHECK_EQ(del("r", false), 0);

	/* Members in another order, behind other bdevs, one with a damaged primary copy. */
	memset(ram_bdev_memory(uraid_bdev_get_by_name("m1")) + 100, 0x5a, 16);
	for (int i = 3; i >= 0; i--) {
		struct fault_bdev_opts fo = {0};
		struct uraid_bdev *b;
		char name[8];

		snprintf(name, sizeof(name), "f%d", i);
		fo.name = name;
		fo.base_name = g_m[i];
		CHECK_EQ(fault_bdev_create(&fo, &b), 0);
	}
	CHECK_EQ(examine(false, report, sizeof(report)), 1);
	CHECK(same("r", data, blocks));
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("r"), &info), 0);
	CHECK(strcmp(info.members[0].name, "f0") == 0 && strcmp(info.members[3].name, "f3") == 0);
	CHECK_EQ(del("r", false), 0);
	free(data);
	cleanup(4);
	uraid_runtime_stop();
}

static void
test_stale_member(void)
{
	struct uraid_array_info info;
	char report[1024];
	uint64_t blocks;
	uint8_t *data, *newer;

	REQUIRE(start_manual(2) == 0);
	make_rams(3);
	g_policy = URAID_POLICY_NONE; /* no bitmap: a member that missed writes is rebuilt */
	REQUIRE(create("r", "raid1", 3, g_m, false) == 0);
	g_policy = URAID_POLICY_DEFAULT;
	data = fill("r", &blocks, 1);
	/* m2 fails; its superblock is not updated, the others record the failure. */
	CHECK_EQ(uraid_array_fail_member(uraid_bdev_get_by_name("r"), 2), 0);
	uraid_runtime_poll_until_idle(1000);
	newer = fill("r", &blocks, 2);
	CHECK_EQ(del("r", false), 0);
	CHECK_EQ(examine(false, report, sizeof(report)), 1);
	CHECK(strstr(report, "2 of 3 members") && strstr(report, "slot 2 stale (m2"));
	CHECK(same("r", newer, blocks));
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("r"), &info), 0);
	CHECK_EQ(info.failed_members, 1);
	CHECK(uraid_bdev_claimed_by(uraid_bdev_get_by_name("m2")) == NULL); /* never read */
	CHECK_EQ(del("r", false), 0);
	free(data);
	free(newer);
	cleanup(3);
	uraid_runtime_stop();
}

static void
test_foreign_and_too_few(void)
{
	const char *a_members[] = {"m0", "m1"}, *b_members[] = {"m2", "m3"};
	struct uraid_array_info ia, ib;
	char report[1024];
	uint64_t blocks;
	uint8_t *da, *db;

	REQUIRE(start_manual(2) == 0);
	make_rams(6);
	REQUIRE(create("A", "raid1", 2, a_members, false) == 0);
	REQUIRE(create("B", "raid1", 2, b_members, false) == 0);
	da = fill("A", &blocks, 1);
	db = fill("B", &blocks, 2);
	CHECK_EQ(del("A", false), 0);
	CHECK_EQ(del("B", false), 0);
	CHECK_EQ(test_delete_bdev("m1"), 0); /* A loses a member; B's are all there */
	CHECK_EQ(examine(false, report, sizeof(report)), 2);
	CHECK(same("A", da, blocks) && same("B", db, blocks));
	uraid_array_get_info(uraid_bdev_get_by_name("A"), &ia);
	uraid_array_get_info(uraid_bdev_get_by_name("B"), &ib);
	CHECK(strcmp(ia.members[0].name, "m0") == 0 && ia.members[1].name[0] == '\0');
	CHECK(strcmp(ib.members[0].name, "m2") == 0 && strcmp(ib.members[1].name, "m3") == 0);
	CHECK_EQ(del("A", false), 0);
	CHECK_EQ(del("B", false), 0);

	/* raid6 over m2..m5 is fine with two gone, not with three: a clear refusal. */
	{
		const char *r6[] = {"m2", "m3", "m4", "m5"};

		REQUIRE(create("C", "raid6", 4, r6, true) == 0); /* m2, m3 carry B's superblock */
		CHECK_EQ(del("C", false), 0);
	}
	CHECK_EQ(test_delete_bdev("m3"), 0);
	CHECK_EQ(test_delete_bdev("m4"), 0);
	CHECK_EQ(test_delete_bdev("m5"), 0);
	CHECK_EQ(examine(false, report, sizeof(report)), 1); /* only A (degraded) */
	CHECK(strstr(report, "C: not started") != NULL);
	CHECK(strstr(report, "slot 1 missing") && strstr(report, "slot 3 missing"));
	CHECK(uraid_bdev_get_by_name("C") == NULL);
	CHECK_EQ(del("A", false), 0);
	free(da);
	free(db);
	cleanup(6);
	uraid_runtime_stop();
}

/* Rewrite every member's superblock copies as if the array had crashed (not clean). */
static void
make_dirty(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t *mem = ram_bdev_memory(uraid_bdev_get_by_name(g_m[i]));
		struct sb sb;
		char err[128];

		REQUIRE(sb_decode(mem, SB_BYTES, &sb, err, sizeof(err)) == 0);
		sb.flags &= ~SB_FLAG_CLEAN;
		sb_encode(&sb, mem);
		memcpy(mem + SB_BYTES, mem, SB_BYTES);
	}
}

static void
test_dirty_degraded_needs_force(void)
{
	char report[1024];
	uint64_t blocks;
	uint8_t *data;

	REQUIRE(start_manual(2) == 0);
	make_rams(4);
	g_policy = URAID_POLICY_BITMAP; /* ppl needs no force: see below */
	REQUIRE(create("r", "raid5", 4, g_m, false) == 0);
	g_policy = URAID_POLICY_DEFAULT;
	data = fill("r", &blocks, 3);
	CHECK_EQ(del("r", false), 0);
	make_dirty(4);
	/* Dirty but complete: starts (with a warning to scrub). */
	CHECK_EQ(examine(false, report, sizeof(report)), 1);
	CHECK(same("r", data, blocks));
	CHECK_EQ(del("r", false), 0);
	make_dirty(4);
	CHECK_EQ(test_delete_bdev("m2"), 0);
	CHECK_EQ(examine(false, report, sizeof(report)), 0);
	CHECK(strstr(report, "not shut down cleanly and is degraded") && strstr(report, "force"));
	CHECK(uraid_bdev_get_by_name("r") == NULL);
	CHECK_EQ(examine(true, report, sizeof(report)), 1);
	CHECK(same("r", data, blocks));
	CHECK_EQ(del("r", false), 0);
	free(data);
	cleanup(4);
	uraid_runtime_stop();
}

/* A dirty, degraded array starts without force under ppl (the parity default: the log is
 * applied first, so parity matches the data the missing member's blocks are rebuilt from),
 * and on mirrors, which have no write hole (the copies left agree after the bitmap resync). */
static void
test_dirty_degraded_starts(void)
{
	static const struct {
		const char *level;
		unsigned n;
		const char *gone;
		enum uraid_consistency_policy policy; /* the level's default */
	} cases[] = {{"raid5", 4, "m2", URAID_POLICY_PPL},
		     {"raid1", 2, "m1", URAID_POLICY_BITMAP},
		     {"raid10", 4, "m3", URAID_POLICY_BITMAP}};
	struct uraid_array_info info;
	char report[1024];
	uint64_t blocks;
	uint8_t *data;

	REQUIRE(start_manual(2) == 0);
	for (unsigned c = 0; c < ARRAY_SIZE(cases); c++) {
		make_rams(cases[c].n);
		REQUIRE(create("r", cases[c].level, cases[c].n, g_m, false) == 0);
		uraid_array_get_info(uraid_bdev_get_by_name("r"), &info);
		CHECK_EQ(info.policy, cases[c].policy);
		data = fill("r", &blocks, (uint8_t)(5 + c));
		CHECK_EQ(del("r", false), 0);
		make_dirty(cases[c].n);
		CHECK_EQ(test_delete_bdev(cases[c].gone), 0);
		CHECK_EQ(examine(false, report, sizeof(report)), 1);
		CHECK(strstr(report, "degraded") != NULL);
		CHECK(same("r", data, blocks));
		CHECK_EQ(del("r", false), 0);
		free(data);
		cleanup(cases[c].n);
	}
	uraid_runtime_stop();
}

static void
test_create_over_used_members(void)
{
	struct uraid_array_opts o = {
		.name = "x", .level = URAID_RAID1, .members = g_m, .num_members = 2};
	struct uraid_bdev *b;
	char err[256];
	uint64_t blocks;
	uint8_t *data, *mem;

	REQUIRE(start_manual(1) == 0);
	make_rams(2);
	REQUIRE(create("r", "raid1", 2, g_m, false) == 0);
	data = fill("r", &blocks, 4);
	/* Data starts 1 MiB into each member. */
	mem = ram_bdev_memory(uraid_bdev_get_by_name("m1"));
	CHECK(memcmp(mem + (1 << 20), data, blocks * BS) == 0);
	CHECK_EQ(del("r", false), 0);
	CHECK_EQ(create("r2", "raid1", 2, g_m, false), -EEXIST);
	CHECK_EQ(uraid_array_create(&o, &b, err, sizeof(err)), -EEXIST); /* even without sb */
	CHECK(strstr(err, "carries a superblock of array 'r'") != NULL);
	REQUIRE(create("r2", "raid1", 2, g_m, true) == 0);
	CHECK_EQ(del("r2", true), 0); /* and its superblocks erased */
	REQUIRE(create("r3", "raid1", 2, g_m, false) == 0);
	CHECK_EQ(del("r3", true), 0);
	CHECK_EQ(uraid_array_create(&o, &b, err, sizeof(err)), 0);
	CHECK_EQ(del("x", false), 0);
	free(data);
	cleanup(2);
	uraid_runtime_stop();
}

struct held_write {
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	uint8_t *buf;
	uint64_t lba;
	struct waiter w;
};

static void
held_write_msg(void *arg)
{
	struct held_write *h = arg;

	if (h->ch == NULL)
		h->ch = uraid_bdev_get_io_channel(h->desc);
	CHECK_EQ(uraid_bdev_write(h->desc, h->ch, h->buf, h->lba, 1, 0, waiter_cb, &h->w), 0);
}

static void
put_msg(void *arg)
{
	uraid_put_io_channel(arg);
}

/* A write that completes after a member failed is acknowledged only once the superblocks
 * record the failure: stripe 1 (a mirror's strip 1) belongs to reactor 1, the superblock
 * writer is reactor 0, and polling only reactor 1 must not complete the write. The mirrors'
 * write runs without a stripe operation (its region's bit is set by a first write). */
static void
test_write_waits_for_failure_record(void)
{
	static const struct {
		const char *level;
		unsigned n;
		uint64_t lba; /* in stripe (strip) 1: strips of 16 KiB = 4 blocks */
	} cases[] = {{"raid5", 4, 1 * 4 * 3}, {"raid1", 3, 4}, {"raid10", 4, 4}};

	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		struct held_write h = {0};
		struct sb sb;
		char err[128];

		REQUIRE(start_manual(2) == 0);
		make_rams(cases[c].n);
		REQUIRE(create("r", cases[c].level, cases[c].n, g_m, false) == 0);
		REQUIRE(uraid_bdev_open("r", true, NULL, NULL, &h.desc) == 0);
		h.buf = test_alloc(BS);
		h.lba = cases[c].lba;
		memset(h.buf, 0x77, BS);
		uraid_reactor_send(uraid_reactor_get(1), held_write_msg, &h);
		for (int i = 0; i < 1000 && !h.w.done; i++)
			uraid_runtime_poll_until_idle(1);
		CHECK(h.w.done && h.w.status == 0);
		h.w.done = false;
		CHECK_EQ(uraid_array_fail_member(uraid_bdev_get_by_name("r"), 2), 0);
		uraid_reactor_send(uraid_reactor_get(1), held_write_msg, &h);
		for (int i = 0; i < 200; i++)
			uraid_reactor_poll(uraid_reactor_get(1));
		CHECK(!h.w.done); /* held: reactor 0 has not written the superblocks */
		CHECK_EQ(sb_decode(ram_bdev_memory(uraid_bdev_get_by_name("m0")), SB_BYTES, &sb,
				   err, sizeof(err)),
			 0);
		CHECK_EQ(sb.slots[2].state, SB_SLOT_ACTIVE);
		for (int i = 0; i < 1000 && !h.w.done; i++)
			uraid_runtime_poll_until_idle(1);
		CHECK(h.w.done && h.w.status == 0);
		CHECK_EQ(sb_decode(ram_bdev_memory(uraid_bdev_get_by_name("m0")), SB_BYTES, &sb,
				   err, sizeof(err)),
			 0);
		CHECK_EQ(sb.slots[2].state, SB_SLOT_FAILED); /* recorded before the answer */
		uraid_reactor_send(uraid_reactor_get(1), put_msg, h.ch);
		uraid_runtime_poll_until_idle(100);
		uraid_bdev_close(h.desc);
		free(h.buf);
		CHECK_EQ(del("r", false), 0);
		cleanup(cases[c].n);
		uraid_runtime_stop();
	}
}

/* --- a member that comes back catches up (bitmap) --- */

/* Write `blocks` blocks of a new pattern at lba, into the array and into the model. */
static void
write_some(const char *array, uint8_t *model, uint64_t lba, uint64_t blocks, uint8_t seed)
{
	struct uraid_bdev_desc *d;

	for (uint64_t i = lba * BS; i < (lba + blocks) * BS; i++)
		model[i] = (uint8_t)(i * 7 + seed);
	REQUIRE(uraid_bdev_open(array, true, NULL, NULL, &d) == 0);
	CHECK_EQ(uraid_bdev_io_sync(d, URAID_IO_WRITE, model + lba * BS, lba, blocks), 0);
	uraid_bdev_close(d);
}

/* Advance the clock until the bitmap has cleared every quiet region. */
static void
bitmap_settle(struct uraid_bdev *a)
{
	struct uraid_array_info info;

	for (int i = 0; i < 4; i++) {
		uraid_runtime_advance_us(g_bitmap_sweep_us);
		uraid_runtime_poll_until_idle(1000);
	}
	CHECK_EQ(uraid_array_get_info(a, &info), 0);
	CHECK_EQ(info.bitmap.dirty, 0);
}

struct back_case {
	const char *level;
	unsigned n;
	bool restart; /* comes back at assembly; else re-added to the running array */
};

/*
 * A member leaves (fails), writes go on into a few regions, then it comes back: only the
 * units of the regions written meanwhile are rebuilt. Then every other member it may stand
 * in for fails, so the data must come from it.
 */
static void
back_case(const struct back_case *c)
{
	struct uraid_array_stats st;
	struct uraid_array_info info;
	struct uraid_bdev *a;
	char report[1024], err[256];
	uint64_t blocks, units;
	uint8_t *data;
	unsigned back = 1;

	REQUIRE(start_manual(2) == 0);
	make_rams(c->n);
	g_region_kb = 64;
	REQUIRE(create("r", c->level, c->n, g_m, false) == 0);
	g_region_kb = 0;
	a = uraid_bdev_get_by_name("r");
	data = fill("r", &blocks, 3);
	bitmap_settle(a);
	CHECK_EQ(uraid_array_fail_member(a, back), 0);
	uraid_runtime_poll_until_idle(1000);
	/* 24 blocks of 4 KiB from 4 KiB before the 512 KiB mark: two or three regions. */
	write_some("r", data, 127, 24, 9);
	if (c->restart) {
		CHECK_EQ(del("r", false), 0); /* a clean shutdown, degraded: the bits stay */
		CHECK_EQ(examine(false, report, sizeof(report)), 1);
		CHECK(strstr(report, "slot 1 catching up (m1") != NULL);
		a = uraid_bdev_get_by_name("r");
		REQUIRE(a != NULL);
	} else {
		CHECK_EQ(uraid_array_add_spare(a, "m1", err, sizeof(err)), 0);
	}
	st = wait_rebuilt(a, 2000);
	CHECK_EQ(uraid_array_get_info(a, &info), 0);
	CHECK(strcmp(info.members[back].name, "m1") == 0);
	units = st.rebuild_units + st.rebuild_units_skipped;
	CHECK(st.rebuild_units > 0 && st.rebuild_units <= units / 8);
	CHECK(same("r", data, blocks));
	/* Fail as many others as the level tolerates, the first ones (raid10: its copy): it
	 * must now serve its part. */
	for (unsigned i = 0, lost = 0;
	     i < c->n && lost < (info.parity_chunks ? info.parity_chunks : info.copies - 1); i++) {
		if (i == back)
			continue;
		CHECK_EQ(uraid_array_fail_member(a, i), 0);
		lost++;
	}
	uraid_runtime_poll_until_idle(1000);
	CHECK(same("r", data, blocks));
	CHECK_EQ(del("r", true), 0);
	free(data);
	cleanup(c->n);
	uraid_runtime_stop();
}

/* A copy of a member from before it last left (an old image) missed more than the bitmap
 * covers: left out at assembly, and taken back only as a spare, rebuilt whole. */
static void
test_old_image_rebuilt_whole(void)
{
	struct uraid_array_stats st;
	struct uraid_bdev *a;
	char report[1024], err[256];
	uint64_t blocks;
	uint8_t *data, *old = malloc((size_t)MBLKS * BS);

	REQUIRE(start_manual(2) == 0);
	make_rams(3);
	g_policy = URAID_POLICY_BITMAP;
	g_region_kb = 64;
	REQUIRE(create("r", "raid1", 3, g_m, false) == 0);
	g_policy = URAID_POLICY_DEFAULT;
	g_region_kb = 0;
	a = uraid_bdev_get_by_name("r");
	data = fill("r", &blocks, 5);
	bitmap_settle(a);
	CHECK_EQ(del("r", false), 0);
	memcpy(old, ram_bdev_memory(uraid_bdev_get_by_name("m1")), (size_t)MBLKS * BS);
	CHECK_EQ(examine(false, report, sizeof(report)), 1);
	a = uraid_bdev_get_by_name("r");
	write_some("r", data, 300, 8, 1); /* while m1 was there: a bit set, then cleared */
	bitmap_settle(a);
	CHECK_EQ(uraid_array_fail_member(a, 1), 0);
	uraid_runtime_poll_until_idle(1000);
	write_some("r", data, 10, 8, 2);
	CHECK_EQ(del("r", false), 0);
	memcpy(ram_bdev_memory(uraid_bdev_get_by_name("m1")), old, (size_t)MBLKS * BS);
	CHECK_EQ(examine(false, report, sizeof(report)), 1);
	CHECK(strstr(report, "slot 1 stale (m1") != NULL);
	a = uraid_bdev_get_by_name("r");
	REQUIRE(a != NULL);
	CHECK(uraid_bdev_claimed_by(uraid_bdev_get_by_name("m1")) == NULL);
	CHECK(same("r", data, blocks));
	CHECK_EQ(uraid_array_add_spare(a, "m1", err, sizeof(err)), 0);
	st = wait_rebuilt(a, 2000);
	CHECK_EQ(st.rebuild_units_skipped, 0);
	CHECK_EQ(st.rebuild_units, blocks * BS / (16 * 1024));
	CHECK_EQ(uraid_array_fail_member(a, 0), 0);
	CHECK_EQ(uraid_array_fail_member(a, 2), 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK(same("r", data, blocks));
	CHECK_EQ(del("r", true), 0);
	free(data);
	free(old);
	cleanup(3);
	uraid_runtime_stop();
}

/* --- the journal on a device of its own --- */

/* raid5 NAME over members[0..3), its journal on the bdev JOURNAL. */
static int
create_journaled_as(const char *name, const char *const *members, const char *journal, char *err,
		    size_t len)
{
	struct uraid_array_opts o = {0};
	struct uraid_bdev *b;

	o.name = name;
	o.level = URAID_RAID5;
	o.strip_size_kb = 16;
	o.members = members;
	o.num_members = 3;
	o.superblock = true;
	o.policy = URAID_POLICY_JOURNAL;
	o.journal_bdev = journal;
	return uraid_array_create(&o, &b, err, len);
}

static int
create_journaled(const char *journal, char *err, size_t len)
{
	return create_journaled_as("r", g_m, journal, err, len);
}

/* The log goes to the journal device (the members keep the default data offset), the device
 * carries its own copy of the superblock, assembly finds it and refuses to start without it;
 * bad journal devices are refused at create. */
static void
test_journal_device(void)
{
	struct uraid_array_stats st;
	struct uraid_array_info info;
	struct uraid_bdev_desc *d;
	struct uraid_bdev *b;
	char err[256], report[1024];
	uint64_t blocks;
	uint8_t *data, saved[2 * BS];
	bool backup;
	struct sb sb;

	REQUIRE(start_manual(2) == 0);
	make_rams(4); /* m3: the journal */
	CHECK_EQ(ram_bdev_create("tiny", 64, BS, NULL, &b), 0);
	CHECK_EQ(ram_bdev_create("k512", 8192, 512, NULL, &b), 0);
	/* Refusals first. */
	{
		struct uraid_array_opts o = {0};

		o.name = "r";
		o.level = URAID_RAID5;
		o.members = g_m;
		o.num_members = 3;
		o.superblock = true;
		o.policy = URAID_POLICY_PPL;
		o.journal_bdev = "m3";
		CHECK_EQ(uraid_array_create(&o, &b, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "needs consistency policy journal") != NULL);
	}
	CHECK(create_journaled("nope", err, sizeof(err)) != 0);
	CHECK(strstr(err, "nope") != NULL);
	CHECK(create_journaled("tiny", err, sizeof(err)) != 0);
	CHECK(strstr(err, "smaller than its log") != NULL || strstr(err, "too small") != NULL);
	CHECK(create_journaled("k512", err, sizeof(err)) != 0);
	CHECK(strstr(err, "512-byte blocks") != NULL);
	CHECK(create_journaled("m2", err, sizeof(err)) != 0); /* a member */
	CHECK(uraid_bdev_get_by_name("r") == NULL);

	CHECK_EQ(create_journaled("m3", err, sizeof(err)), 0);
	b = uraid_bdev_get_by_name("r");
	REQUIRE(b != NULL);
	CHECK_EQ(uraid_array_get_info(b, &info), 0);
	CHECK(strcmp(info.journal_bdev, "m3") == 0);
	CHECK_EQ(info.data_offset_blocks, 256); /* 1 MiB: no log area on the members */
	data = fill("r", &blocks, 4);
	write_some("r", data, 5, 3, 7);
	CHECK_EQ(uraid_array_get_stats(b, &st), 0);
	CHECK(st.ppl_entries > 0);
	/* The device's own copy names it as the journal. */
	CHECK_EQ(del("r", false), 0);
	REQUIRE(uraid_bdev_open("m3", false, NULL, NULL, &d) == 0);
	CHECK_EQ(raid_sb_read(d, &sb, &backup, err, sizeof(err)), 0);
	uraid_bdev_close(d);
	CHECK((sb.flags & SB_FLAG_THIS_JOURNAL) && (sb.flags & SB_FLAG_JOURNAL_DEV));
	CHECK(strcmp(sb.name, "r") == 0);
	/* Assembled with it. */
	CHECK_EQ(examine(false, report, sizeof(report)), 1);
	b = uraid_bdev_get_by_name("r");
	REQUIRE(b != NULL);
	CHECK_EQ(uraid_array_get_info(b, &info), 0);
	CHECK(strcmp(info.journal_bdev, "m3") == 0);
	CHECK(same("r", data, blocks));
	CHECK_EQ(del("r", false), 0);
	/* Without it: not started. */
	memcpy(saved, ram_bdev_memory(uraid_bdev_get_by_name("m3")), 2 * BS); /* (for below) */
	CHECK_EQ(test_delete_bdev("m3"), 0);
	CHECK_EQ(examine(false, report, sizeof(report)), 0);
	CHECK(strstr(report, "journal device is missing") != NULL);
	CHECK(uraid_bdev_get_by_name("r") == NULL);
	/* A creation over a journal device of another array needs force. */
	CHECK_EQ(ram_bdev_create("m3", MBLKS, BS, NULL, &b), 0);
	memcpy(ram_bdev_memory(b), saved, 2 * BS);
	CHECK_EQ(test_delete_bdev("m0"), 0); /* (so that only the journal's copy speaks) */
	CHECK_EQ(ram_bdev_create("m0", MBLKS, BS, NULL, &b), 0);
	CHECK_EQ(ram_bdev_create("m9", MBLKS, BS, NULL, &b), 0);
	{
		const char *mm[] = {"m0", "m9", "m4"};

		CHECK_EQ(ram_bdev_create("m4", MBLKS, BS, NULL, &b), 0);
		CHECK_EQ(create_journaled_as("r2", mm, "m3", err, sizeof(err)), -EEXIST);
		CHECK(strstr(err, "journal device 'm3' carries a superblock of array 'r' (its "
				  "journal device)") != NULL);
		CHECK_EQ(test_delete_bdev("m4"), 0);
	}
	free(data);
	CHECK_EQ(test_delete_bdev("m9"), 0);
	CHECK_EQ(test_delete_bdev("tiny"), 0);
	CHECK_EQ(test_delete_bdev("k512"), 0);
	cleanup(4);
	uraid_runtime_stop();
}

/* The journal device fails: the array goes offline (writes would go unlogged) and no member
 * is failed for it. */
static void
test_journal_device_fails(void)
{
	struct fault_rule_opts rule = {.io_type_mask = (1u << URAID_IO_NUM_TYPES) - 1,
				       .kind = FAULT_FAILURE,
				       .count = -1,
				       .probability_ppm = 1000000};
	struct fault_bdev_opts fo = {0};
	struct uraid_array_info info;
	struct uraid_bdev_desc *d;
	struct uraid_bdev *b;
	char err[256];
	uint8_t *buf = aligned_alloc(4096, BS);

	REQUIRE(start_manual(2) == 0);
	make_rams(4);
	fo.name = "fj";
	fo.base_name = "m3";
	CHECK_EQ(fault_bdev_create(&fo, &b), 0);
	CHECK_EQ(create_journaled("fj", err, sizeof(err)), 0);
	REQUIRE(uraid_bdev_open("r", true, NULL, NULL, &d) == 0);
	memset(buf, 0x5a, BS);
	CHECK_EQ(uraid_bdev_io_sync(d, URAID_IO_WRITE, buf, 3, 1), 0);
	CHECK_EQ(fault_inject("fj", &rule), 0);
	CHECK(uraid_bdev_io_sync(d, URAID_IO_WRITE, buf, 9, 1) != 0);
	CHECK(uraid_bdev_io_sync(d, URAID_IO_WRITE, buf, 700, 1) != 0);
	CHECK_EQ(uraid_array_get_info(uraid_bdev_get_by_name("r"), &info), 0);
	CHECK(!info.online);
	CHECK_EQ(info.failed_members, 0);
	uraid_bdev_close(d);
	CHECK_EQ(del("r", false), 0);
	CHECK_EQ(test_delete_bdev("fj"), 0);
	free(buf);
	cleanup(4);
	uraid_runtime_stop();
}

static void
test_member_comes_back(void)
{
	static const struct back_case cases[] = {
		{"raid1", 3, true},  {"raid1", 3, false}, {"raid5", 4, true},
		{"raid5", 4, false}, {"raid6", 5, true},  {"raid10", 4, false},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int before = h_case_failures;

		g_policy = URAID_POLICY_BITMAP;
		back_case(&cases[i]);
		g_policy = URAID_POLICY_DEFAULT;
		if (h_case_failures != before)
			fprintf(stderr, "  case %s/%u %s\n", cases[i].level, cases[i].n,
				cases[i].restart ? "at assembly" : "re-added");
	}
}

TEST_MAIN(TEST(test_clean_restart), TEST(test_member_comes_back),
	  TEST(test_old_image_rebuilt_whole), TEST(test_journal_device),
	  TEST(test_journal_device_fails), TEST(test_stale_member), TEST(test_foreign_and_too_few),
	  TEST(test_dirty_degraded_needs_force), TEST(test_dirty_degraded_starts),
	  TEST(test_create_over_used_members), TEST(test_write_waits_for_failure_record))
