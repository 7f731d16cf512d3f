/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The journal's data path, where timing decides: a stripe's next update waits for the log
 * entries of its last one, and entries give their space back in ring order, so a waiter
 * depends on the flush round that retires an older update of another stripe. That round
 * must be started when the older update lets its entries go, even when nothing else is in
 * flight.
 */
#include <stdlib.h>

#include "bdev_util.h"
#include "bdev/bdev_priv.h"
#include "core/core.h"
#include "uraid/array.h"

#define REACTORS 2
#include "workload.h"

#define BS 512

struct async_write {
	struct sync_io s;
	uint8_t *buf;
};

static void
write_start(struct async_write *w, struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
	    uint64_t lba, uint64_t blocks, uint8_t fill)
{
	memset(w, 0, sizeof(*w));
	w->buf = test_alloc(blocks * BS);
	memset(w->buf, fill, blocks * BS);
	w->s.desc = desc;
	w->s.ch = ch;
	w->s.op = SYNC_WRITE;
	w->s.buf = w->buf;
	w->s.offset_blocks = lba;
	w->s.num_blocks = blocks;
	uraid_reactor_send(uraid_reactor_get(0), sync_submit_msg, &w->s);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(w->s.submit_rc, 0);
}

/* raid5 x4 "a" over four fault members, strip 4 KiB, under journal write-back: the log on
 * the members, or on a ram journal device "jd" of jd_blocks; the home writes of stripe 4
 * (member strip 4 of every member) take a second. *arr stays NULL if it could not be made. */
static void
wb_array_create(uint64_t jd_blocks, struct uraid_bdev **arr)
{
	struct uraid_array_opts o = {0};
	struct uraid_array_info info;
	struct uraid_bdev *jb;
	const char *names[4];
	char err[256];

	*arr = NULL;
	REQUIRE(start_manual(REACTORS) == 0);
	fault_members_create(4, 8192, BS);
	for (unsigned i = 0; i < 4; i++)
		names[i] = g_fault_names[i];
	if (jd_blocks != 0)
		CHECK_EQ(ram_bdev_create("jd", jd_blocks, BS, NULL, &jb), 0);
	o.name = "a";
	CHECK_EQ(uraid_raid_level_parse("raid5", &o.level, &o.raid5_layout), 0);
	o.strip_size_kb = 4;
	o.members = names;
	o.num_members = 4;
	o.superblock = true;
	o.policy = URAID_POLICY_JOURNAL;
	o.journal_write_back = true;
	o.journal_bdev = jd_blocks != 0 ? "jd" : NULL;
	CHECK_EQ(uraid_array_create(&o, arr, err, sizeof(err)), 0);
	REQUIRE(*arr != NULL);
	CHECK_EQ(uraid_array_get_info(*arr, &info), 0);
	fault_members_slow(4, info.data_offset_blocks + 4 * 4096 / BS, 4096 / BS, 1000000);
}

/* ... and gone again, with its journal device if it had one, and the runtime stopped. */
static void
wb_array_delete(bool jd)
{
	CHECK_EQ(test_delete_bdev("a"), 0);
	uraid_runtime_poll_until_idle(1000);
	fault_members_delete(4);
	if (jd)
		CHECK_EQ(test_delete_bdev("jd"), 0);
	uraid_runtime_stop();
}

/*
 * raid5 x4 under journal write-back (on the members, then on a journal device). Stripes 0
 * and 4 have the same owner and the same parity and data members, so their entries share
 * rings. B (stripe 4) is logged first and its home writes are slowed down; A (stripe 0) goes
 * home and lets its entries go; A' (stripe 0 again) waits for them, and they retire only
 * after B's, in ring order. When B is home, A' must go on without any other I/O.
 *
 * Meanwhile writes to other stripes of the same rings come and go, each followed by a flush
 * round: A' waits for its stripe's entries alone and is not tried again at those rounds (the
 * waits counter counts each time a write parks).
 */
static void
test_wb_waiter_wakes(void)
{
	for (int dev = 0; dev < 2; dev++) {
		struct async_write b, a1, a2, c[5];
		struct uraid_array_stats st;
		uint64_t waits, sdata = 3 * 4096 / BS;
		struct uraid_bdev_desc *desc;
		struct uraid_io_channel *ch;
		struct uraid_bdev *arr;

		wb_array_create(dev ? 8192 : 0, &arr); /* B's home writes take a second */
		REQUIRE(arr != NULL);
		CHECK_EQ(uraid_bdev_open("a", true, NULL, NULL, &desc), 0);
		ch = test_get_channel(desc);

		write_start(&b, desc, ch, 4 * sdata, sdata, 0xb0);
		CHECK(b.s.w.done); /* acknowledged once logged (write-back) */
		write_start(&a1, desc, ch, 0, sdata, 0xa1);
		CHECK(a1.s.w.done);
		write_start(&a2, desc, ch, 0, sdata, 0xa2);
		CHECK(!a2.s.w.done); /* waits for A's entries, which wait for B's */
		CHECK_EQ(uraid_array_get_stats(arr, &st), 0);
		waits = st.ppl_waits;
		CHECK(waits >= 1);
		for (unsigned i = 0; i < ARRAY_SIZE(c); i++) {
			/* stripes 8, 12, ...: the same owner and members as 0 and 4 */
			write_start(&c[i], desc, ch, (8 + 4 * i) * sdata, sdata,
				    (uint8_t)(0xc0 + i));
			CHECK(c[i].s.w.done);
			CHECK_EQ(c[i].s.w.status, 0);
		}
		CHECK(!a2.s.w.done);
		CHECK_EQ(uraid_array_get_stats(arr, &st), 0);
		CHECK(st.ppl_flushes >= ARRAY_SIZE(c));
		CHECK_EQ(st.ppl_waits, waits);
		for (int i = 0; i < 20 && !a2.s.w.done; i++) {
			uraid_runtime_advance_us(200000);
			uraid_runtime_poll_until_idle(1000);
		}
		CHECK(a2.s.w.done);
		CHECK_EQ(a2.s.w.status, 0);
		fault_members_slow(4, 0, 0, 0);
		{
			uint8_t *rd = test_alloc(sdata * BS);

			CHECK_EQ(sync_rw(desc, ch, SYNC_READ, rd, 0, sdata, 0), 0);
			CHECK(memcmp(rd, a2.buf, sdata * BS) == 0);
			CHECK_EQ(sync_rw(desc, ch, SYNC_READ, rd, 4 * sdata, sdata, 0), 0);
			CHECK(memcmp(rd, b.buf, sdata * BS) == 0);
			for (unsigned i = 0; i < ARRAY_SIZE(c); i++) {
				CHECK_EQ(sync_rw(desc, ch, SYNC_READ, rd, (8 + 4 * i) * sdata,
						 sdata, 0),
					 0);
				CHECK(memcmp(rd, c[i].buf, sdata * BS) == 0);
				free(c[i].buf);
			}
			free(rd);
		}
		free(b.buf);
		free(a1.buf);
		free(a2.buf);
		test_put_channel(ch);
		uraid_bdev_close(desc);
		wb_array_delete(dev);
	}
}

/*
 * A write waiting for ring space. raid5 x4 under journal write-back with the log on a journal
 * device so small that one update of three strips fills a ring (256 blocks of superblocks and
 * bitmap, then 80 a slot: two rings of 38 blocks after their anchors, one update's entries
 * on its parity member 25 + 9). B (stripe 4) is logged and its home writes slowed down; C
 * (stripe 8: same owner, same parity member, so the same ring) finds no room and waits,
 * however many rounds and anchors come, until B is home and its entries leave the ring; then
 * it goes on with no other I/O.
 */
static void
test_wb_space_waiter_wakes(void)
{
	struct uraid_array_stats st;
	struct async_write b, c;
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	struct uraid_bdev *arr;
	uint64_t sdata = 3 * 4096 / BS, waits;
	uint8_t *rd;

	wb_array_create(256 + 4 * 80, &arr);
	REQUIRE(arr != NULL);
	CHECK_EQ(uraid_bdev_open("a", true, NULL, NULL, &desc), 0);
	ch = test_get_channel(desc);
	write_start(&b, desc, ch, 4 * sdata, sdata, 0xb0);
	CHECK(b.s.w.done); /* acknowledged once logged */
	CHECK_EQ(uraid_array_get_stats(arr, &st), 0);
	waits = st.ppl_waits;
	write_start(&c, desc, ch, 8 * sdata, sdata, 0xc0);
	CHECK(!c.s.w.done); /* no room in the ring */
	CHECK_EQ(uraid_array_get_stats(arr, &st), 0);
	CHECK(st.ppl_waits > waits);
	uraid_runtime_advance_us(100000);
	uraid_runtime_poll_until_idle(1000);
	CHECK(!c.s.w.done); /* B is not home yet */
	for (int i = 0; i < 20 && !c.s.w.done; i++) {
		uraid_runtime_advance_us(200000);
		uraid_runtime_poll_until_idle(1000);
	}
	CHECK(c.s.w.done);
	CHECK_EQ(c.s.w.status, 0);
	fault_members_slow(4, 0, 0, 0);
	rd = test_alloc(sdata * BS);
	CHECK_EQ(sync_rw(desc, ch, SYNC_READ, rd, 4 * sdata, sdata, 0), 0);
	CHECK(memcmp(rd, b.buf, sdata * BS) == 0);
	CHECK_EQ(sync_rw(desc, ch, SYNC_READ, rd, 8 * sdata, sdata, 0), 0);
	CHECK(memcmp(rd, c.buf, sdata * BS) == 0);
	free(rd);
	free(b.buf);
	free(c.buf);
	test_put_channel(ch);
	uraid_bdev_close(desc);
	wb_array_delete(true);
}

TEST_MAIN(TEST(test_wb_waiter_wakes), TEST(test_wb_space_waiter_wakes))
