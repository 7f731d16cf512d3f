/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Consistency policies and the write-intent bitmap: which policy an array gets and the
 * refusals; a write waits until its region's bit is on every member; bits are cleared once a
 * region is quiet; after a crash only the dirty regions are resynced (a stripe left bad in a
 * clean region is not touched, one in a dirty region is fixed), online; the policy and the
 * bitmap geometry survive reassembly.
 */
#include <stdlib.h>

#include "bdev/bdev_priv.h"
#include "core/core.h"
#include "uraid/array.h"

#define REACTORS 2
#include "workload.h"

#define BS	   512
#define MEMBER_BLK 8192 /* 4 MiB: 1 MiB of metadata, 3 MiB of data */
#define STRIP	   8	/* blocks (4 KiB strips) */
#define REGION_KB  64

static struct uraid_bdev *
create(const char *level, unsigned n, bool sb, enum uraid_consistency_policy policy,
       uint32_t region_kb, int *rc, char *err, size_t err_len)
{
	struct uraid_array_opts o = {0};
	struct uraid_bdev *b = NULL;

	o.name = "a";
	CHECK_EQ(uraid_raid_level_parse(level, &o.level, &o.raid5_layout), 0);
	o.strip_size_kb = 4;
	o.members = g_fault_ptrs;
	o.num_members = n;
	o.superblock = sb;
	o.policy = policy;
	o.bitmap_region_kb = region_kb;
	o.force = true;
	*rc = uraid_array_create(&o, &b, err, err_len);
	return b;
}

static struct uraid_bdev *
create_ok(const char *level, unsigned n, enum uraid_consistency_policy policy)
{
	char err[256];
	int rc;
	struct uraid_bdev *b = create(level, n, true, policy, REGION_KB, &rc, err, sizeof(err));

	if (rc != 0)
		fprintf(stderr, "create: %s\n", err);
	CHECK_EQ(rc, 0);
	return b;
}

static void
test_policy_choice(void)
{
	static const struct {
		const char *level;
		unsigned n;
		bool sb;
		enum uraid_consistency_policy asked, got;
		int rc;
	} cases[] = {
		{"raid1", 2, true, URAID_POLICY_DEFAULT, URAID_POLICY_BITMAP, 0},
		{"raid10", 4, true, URAID_POLICY_DEFAULT, URAID_POLICY_BITMAP, 0},
		{"raid5", 3, true, URAID_POLICY_DEFAULT, URAID_POLICY_PPL, 0},
		{"raid6", 4, true, URAID_POLICY_DEFAULT, URAID_POLICY_PPL, 0},
		{"raid5", 3, true, URAID_POLICY_BITMAP, URAID_POLICY_BITMAP, 0},
		{"raid0", 2, true, URAID_POLICY_DEFAULT, URAID_POLICY_NONE, 0},
		{"raid5", 3, false, URAID_POLICY_DEFAULT, URAID_POLICY_NONE, 0},
		{"raid6", 4, true, URAID_POLICY_NONE, URAID_POLICY_NONE, 0},
		{"raid6", 4, true, URAID_POLICY_BITMAP, URAID_POLICY_BITMAP, 0},
		{"raid0", 2, true, URAID_POLICY_BITMAP, 0, -EINVAL},
		{"concat", 2, true, URAID_POLICY_BITMAP, 0, -EINVAL},
		{"raid5", 3, false, URAID_POLICY_BITMAP, 0, -EINVAL},
		{"raid1", 2, true, URAID_POLICY_PPL, 0, -EINVAL},
		{"raid1", 2, true, URAID_POLICY_JOURNAL, 0, -EINVAL},
		{"raid5", 3, true, URAID_POLICY_JOURNAL, URAID_POLICY_JOURNAL, 0},
		{"raid6", 4, true, URAID_POLICY_JOURNAL, URAID_POLICY_JOURNAL, 0},
		{"raid5", 3, false, URAID_POLICY_JOURNAL, 0, -EINVAL},
		{"raid1", 2, true, (enum uraid_consistency_policy)9, 0, -EINVAL},
	};
	char err[256];
	int rc;

	REQUIRE(start_manual(REACTORS) == 0);
	fault_members_create(4, MEMBER_BLK, BS);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct uraid_bdev *b = create(cases[i].level, cases[i].n, cases[i].sb,
					      cases[i].asked, 0, &rc, err, sizeof(err));

		CHECK_EQ(rc, cases[i].rc);
		if (rc != 0) {
			CHECK(strstr(err, "policy") != NULL || strstr(err, "redundancy") != NULL);
			continue;
		}
		CHECK_EQ(info_of(b).policy, cases[i].got);
		if (cases[i].got == URAID_POLICY_BITMAP) {
			/* 64 MiB regions: the 3 MiB of each member is one region. */
			CHECK_EQ(info_of(b).bitmap.regions, 1);
		}
		CHECK_EQ(test_delete_bdev("a"), 0);
		uraid_runtime_poll_until_idle(1000);
	}
	/* Region sizes: a power of two. */
	CHECK(create("raid1", 2, true, URAID_POLICY_BITMAP, 48, &rc, err, sizeof(err)) == NULL);
	CHECK_EQ(rc, -EINVAL);
	CHECK(strstr(err, "power of two") != NULL);
	/* Names. */
	{
		enum uraid_consistency_policy p;

		CHECK_EQ(uraid_policy_parse("ppl", &p), 0);
		CHECK_EQ(p, URAID_POLICY_PPL);
		CHECK_EQ(uraid_policy_parse("journal", &p), 0);
		CHECK_EQ(uraid_policy_parse("bitmaps", &p), -EINVAL);
		CHECK(strcmp(uraid_policy_name(URAID_POLICY_BITMAP), "bitmap") == 0);
	}
	fault_members_delete(4);
	uraid_runtime_stop();
}

/* Bit r of member i's on-disk bitmap (read behind the array). */
static bool
disk_bit(unsigned member, uint64_t r)
{
	char ram[16];
	const uint8_t *mem;

	snprintf(ram, sizeof(ram), "m%u", member);
	mem = ram_bdev_memory(uraid_bdev_get_by_name(ram));
	return mem[META_BITMAP_OFFSET + BS + r / 8] & (1u << (r % 8));
}

struct wr {
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	uint8_t *buf;
	uint64_t lba, num;
	_Atomic bool done;
	int status;
};

static void
wr_done(void *arg, int status)
{
	struct wr *w = arg;

	w->status = status;
	atomic_store(&w->done, true);
}

static void
wr_msg(void *arg)
{
	struct wr *w = arg;

	CHECK_EQ(uraid_bdev_write(w->desc, w->ch, w->buf, w->lba, w->num, 0, wr_done, w), 0);
}

/* n sweep periods go by. */
static void
sweeps(int n)
{
	for (int i = 0; i < n; i++) {
		uraid_runtime_advance_us(g_bitmap_sweep_us);
		uraid_runtime_poll_until_idle(1000);
	}
}

/* Bitmap writes to the 3 members take 50 ms (members_fast_wait ends it). */
static void
bits_slow(void)
{
	fault_members_slow(3, META_BITMAP_OFFSET / BS, (META_BITMAP_END - META_BITMAP_OFFSET) / BS,
			   50000);
}

/* The members back to normal, and w answered (time passing step_us at a time, up to 100
 * steps). */
static void
members_fast_wait(struct wr *w, uint64_t step_us)
{
	fault_members_slow(3, 0, 0, 0);
	for (int i = 0; i < 100 && !atomic_load(&w->done); i++) {
		uraid_runtime_advance_us(step_us);
		uraid_runtime_poll_until_idle(1000);
	}
	CHECK(atomic_load(&w->done));
	CHECK_EQ(w->status, 0);
}

static void
test_set_before_write_and_lazy_clear(void)
{
	struct uraid_array_info info;
	struct uraid_bdev *a;
	struct wr w = {0};
	uint64_t region_blocks, lba;
	uint8_t *mem;

	REQUIRE(start_manual(REACTORS) == 0);
	fault_members_create(3, MEMBER_BLK, BS);
	a = create_ok("raid5", 3, URAID_POLICY_BITMAP);
	REQUIRE(a != NULL);
	info = info_of(a);
	CHECK_EQ(info.bitmap.region_kb, REGION_KB);		 /* 8 stripes of 8 KiB of data */
	CHECK_EQ(info.bitmap.regions, 2 * 3 * 1024 / REGION_KB); /* 6 MiB of data */
	CHECK_EQ(info.bitmap.dirty, 0);
	region_blocks = REGION_KB * 1024 / BS;
	/* A strip in region 5. */
	lba = 5 * region_blocks + 2 * 2 * STRIP;

	bits_slow();
	REQUIRE(uraid_bdev_open("a", true, NULL, NULL, &w.desc) == 0);
	w.ch = test_get_channel(w.desc);
	w.buf = test_alloc(STRIP * BS);
	memset(w.buf, 0xa7, STRIP * BS);
	w.lba = lba;
	w.num = STRIP;
	uraid_reactor_send(uraid_reactor_get(0), wr_msg, &w);
	uraid_runtime_poll_until_idle(10000);
	/* The bitmap write is held up: nothing reached the data area yet. */
	CHECK(!atomic_load(&w.done));
	for (unsigned i = 0; i < 3; i++) {
		char ram[16];

		snprintf(ram, sizeof(ram), "m%u", i);
		mem = ram_bdev_memory(uraid_bdev_get_by_name(ram));
		for (uint64_t b = 0; b < MEMBER_BLK * BS - (1u << 20); b++) {
			if (mem[(1u << 20) + b] != 0) {
				CHECK(!"data written before its bitmap bit");
				break;
			}
		}
	}
	members_fast_wait(&w, 10000);
	for (unsigned i = 0; i < 3; i++) {
		CHECK(disk_bit(i, 5));
		CHECK(!disk_bit(i, 4));
	}
	info = info_of(a);
	CHECK_EQ(info.bitmap.dirty, 1);
	CHECK(info.bitmap.sets >= 1);

	/* A second write into the same region needs no bitmap write. */
	atomic_store(&w.done, false);
	w.lba = lba + 1;
	w.num = 1;
	uraid_reactor_send(uraid_reactor_get(0), wr_msg, &w);
	uraid_runtime_poll_until_idle(10000);
	CHECK(atomic_load(&w.done));
	CHECK_EQ(info_of(a).bitmap.sets, info.bitmap.sets);

	/* Quiet for two sweep periods: the bit goes, on disk too. */
	sweeps(3);
	info = info_of(a);
	CHECK_EQ(info.bitmap.dirty, 0);
	CHECK(info.bitmap.clears >= 1);
	for (unsigned i = 0; i < 3; i++)
		CHECK(!disk_bit(i, 5));

	test_put_channel(w.ch);
	uraid_bdev_close(w.desc);
	free(w.buf);
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	fault_members_delete(3);
	uraid_runtime_stop();
}

/* Member i's data bytes of stripe s of a raid5 x3 (each member holds one strip of it) are
 * all zero. */
static bool
stripe_unwritten(unsigned n, uint64_t s)
{
	for (unsigned i = 0; i < n; i++) {
		char ram[16];
		const uint8_t *mem;

		snprintf(ram, sizeof(ram), "m%u", i);
		mem = ram_bdev_memory(uraid_bdev_get_by_name(ram)) + (1u << 20) + s * STRIP * BS;
		for (unsigned b = 0; b < STRIP * BS; b++) {
			if (mem[b] != 0)
				return false;
		}
	}
	return true;
}

/* Write w (one strip at lba) from reactor r, polled until idle. */
static void
wr_from(struct wr *w, struct wl *wl, unsigned r, uint64_t lba)
{
	atomic_store(&w->done, false);
	w->desc = wl->desc;
	w->ch = wl->ch[r];
	w->lba = lba;
	w->num = STRIP;
	uraid_reactor_send(uraid_reactor_get(r), wr_msg, w);
	uraid_runtime_poll_until_idle(10000);
}

/* Parity writes from a reactor that does not own their stripe are claimed under the bitmap
 * too, but only where the region's bit is on disk already: one into a clean region goes to
 * the owner, which sets the bit before anything is written there. A claimed write keeps its
 * region dirty while it is out, however long; once it is answered the region clears. */
static void
test_claimed_writes_keep_their_region(void)
{
	/* raid5 x3: 16 data blocks a stripe, 8 stripes a region; stripe s is reactor s mod 2's. */
	const uint64_t region_blocks = REGION_KB * 1024 / BS, stripe_blocks = 2 * STRIP;
	struct uraid_bdev *a;
	struct uraid_array_stats st;
	struct wr w = {0};
	struct wl wl;

	REQUIRE(start_manual(REACTORS) == 0);
	fault_members_create(3, MEMBER_BLK, BS);
	a = create_ok("raid5", 3, URAID_POLICY_BITMAP);
	REQUIRE(a != NULL);
	REQUIRE(wl_open(&wl, "a"));
	w.buf = test_alloc(STRIP * BS);
	memset(w.buf, 0x5e, STRIP * BS);

	/* Reactor 1 writes stripes 40 and 42 (region 5), reactor 0's: the first goes to the
	 * owner (which sets the bit), the second is claimed. */
	wr_from(&w, &wl, 1, 5 * region_blocks);
	CHECK(atomic_load(&w.done));
	wr_from(&w, &wl, 1, 5 * region_blocks + 2 * stripe_blocks);
	CHECK(atomic_load(&w.done));
	uraid_array_get_stats(a, &st);
	CHECK_EQ(st.claimed_writes, 1);
	CHECK(disk_bit(0, 5));

	/* Stripe 24, in clean region 3: not claimed; nothing is written there before the bit
	 * is on every member. */
	bits_slow();
	wr_from(&w, &wl, 1, 3 * region_blocks);
	CHECK(!atomic_load(&w.done));
	CHECK(stripe_unwritten(3, 24));
	uraid_array_get_stats(a, &st);
	CHECK_EQ(st.claimed_writes, 1);
	members_fast_wait(&w, 10000);
	CHECK(!stripe_unwritten(3, 24));
	for (unsigned i = 0; i < 3; i++)
		CHECK(disk_bit(i, 3));

	/* A claimed write into region 5 slow at the members: three sweep periods go by, region
	 * 3 is cleared, region 5 is not. */
	fault_members_slow(3, (1u << 20) / BS, MEMBER_BLK - (1u << 20) / BS, 5 * g_bitmap_sweep_us);
	wr_from(&w, &wl, 1, 5 * region_blocks + 4 * stripe_blocks);
	sweeps(3);
	CHECK(!atomic_load(&w.done));
	uraid_array_get_stats(a, &st);
	CHECK_EQ(st.claimed_writes, 2);
	CHECK_EQ(info_of(a).bitmap.dirty, 1);
	for (unsigned i = 0; i < 3; i++) {
		CHECK(!disk_bit(i, 3));
		CHECK(disk_bit(i, 5));
	}
	/* Answered: the region is let go, and clears once quiet. */
	members_fast_wait(&w, g_bitmap_sweep_us / 10);
	sweeps(3);
	CHECK_EQ(info_of(a).bitmap.dirty, 0);
	for (unsigned i = 0; i < 3; i++)
		CHECK(!disk_bit(i, 5));
	wl_close(&wl);
	CHECK_EQ(run_scrub("a", false, 0).bad_stripes, 0);

	free(w.buf);
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	fault_members_delete(3);
	uraid_runtime_stop();
}

/* Flip bytes in member strip `stripe` of `member`, behind the array. */
static void
corrupt(unsigned member, uint64_t stripe)
{
	ram_member_flip(member, (1u << 20) + (stripe * STRIP + 1) * BS + 7, 32, 0x3c);
}

static void
cut_cb(void *arg, int status, const struct fault_cut_stats *st UNUSED)
{
	CHECK_EQ(status, 0);
	atomic_fetch_add((_Atomic unsigned *)arg, 1);
}

/* Power off every member, drop the array (nothing reaches the members, so its superblocks
 * stay dirty), power on. */
static void
crash(unsigned n)
{
	_Atomic unsigned cut = 0;

	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(fault_power_cut(g_fault_names[i], 1, cut_cb, (void *)&cut), 0);
	while (atomic_load(&cut) < n)
		uraid_runtime_poll_until_idle(10);
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(fault_power_on(g_fault_names[i]), 0);
}

static void
crash_case(const char *level, unsigned n)
{
	uint64_t stripe_blocks, region_units, dirty_unit, clean_unit;
	struct uraid_array_check_result r;
	struct uraid_array_info info;
	uint64_t region_kb;
	char report[512];
	struct uraid_bdev *a;
	struct wl wl;

	REQUIRE(start_manual(REACTORS) == 0);
	fault_members_create(n, MEMBER_BLK, BS);
	a = create_ok(level, n, URAID_POLICY_BITMAP);
	REQUIRE(a != NULL);
	info = info_of(a);
	stripe_blocks = STRIP * info.data_chunks;
	region_units = REGION_KB * 1024 / BS / stripe_blocks;
	region_kb = info.bitmap.region_kb;
	REQUIRE(region_units >= 2);
	CHECK_EQ(region_kb, region_units * stripe_blocks * BS / 1024);
	/* Writes land in region 2 only. */
	REQUIRE(wl_open(&wl, "a"));
	dirty_unit = 2 * region_units + 1;
	clean_unit = 5 * region_units + 1;
	for (uint64_t u = 2 * region_units; u < 3 * region_units; u++) {
		uint8_t *buf = test_alloc(stripe_blocks * BS);

		memset(buf, (int)u, stripe_blocks * BS);
		CHECK_EQ(sync_rw(wl.desc, wl.ch[0], SYNC_WRITE, buf, u * stripe_blocks,
				 stripe_blocks, 0),
			 0);
		free(buf);
	}
	wl_close(&wl);
	CHECK_EQ(info_of(a).bitmap.dirty, 1);
	/* What a crash could leave: a stripe whose members disagree, in the dirty region. And
	 * one in a region never written (only a full check can find that one). */
	corrupt(n - 1, dirty_unit);
	corrupt(n - 1, clean_unit);
	crash(n);

	CHECK_EQ(uraid_array_examine(false, report, sizeof(report)), 1);
	a = uraid_bdev_get_by_name("a");
	REQUIRE(a != NULL);
	info = info_of(a);
	CHECK_EQ(info.policy, URAID_POLICY_BITMAP);
	CHECK_EQ(info.bitmap.region_kb, region_kb);
	for (int i = 0; i < 1000 && info_of(a).bitmap.resync_left > 0; i++)
		uraid_runtime_poll_until_idle(100);
	info = info_of(a);
	CHECK_EQ(info.bitmap.resync_left, 0);
	r = run_scrub("a", false, 0);
	CHECK_EQ(r.bad_stripes, 1); /* only the one outside the bitmap */
	CHECK_EQ(r.bad[0], clean_unit);
	/* The data the resync kept is the data written (parity followed it). */
	{
		struct uraid_bdev_desc *d;
		struct uraid_io_channel *ch;
		uint8_t *buf = test_alloc(stripe_blocks * BS),
			*want = test_alloc(stripe_blocks * BS);

		REQUIRE(uraid_bdev_open("a", false, NULL, NULL, &d) == 0);
		ch = test_get_channel(d);
		memset(want, (int)dirty_unit, stripe_blocks * BS);
		CHECK_EQ(sync_rw(d, ch, SYNC_READ, buf, dirty_unit * stripe_blocks, stripe_blocks,
				 0),
			 0);
		if (strcmp(level, "raid1") == 0) {
			/* Mirrors keep the first copy: member 0 was not touched. */
			CHECK(memcmp(buf, want, stripe_blocks * BS) == 0);
		} else {
			/* The corrupted column was parity or data; either way the stripe is
			 * consistent now, and a data column keeps what it holds. */
			CHECK_EQ(r.bad_stripes, 1);
		}
		test_put_channel(ch);
		uraid_bdev_close(d);
		free(buf);
		free(want);
	}
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	fault_members_delete(n);
	uraid_runtime_stop();
}

static void
test_crash_resyncs_dirty_regions(void)
{
	crash_case("raid5", 3);
	crash_case("raid6", 5);
	crash_case("raid1", 2);
}

TEST_MAIN(TEST(test_policy_choice), TEST(test_set_before_write_and_lazy_clear),
	  TEST(test_claimed_writes_keep_their_region), TEST(test_crash_resyncs_dirty_regions))
