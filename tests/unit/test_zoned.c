/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The zoned backend (bdev_zone_block_create): geometry, the write-pointer rule for WRITE and
 * ZONE_APPEND (and the LBA an append reports), zone states and the open/active limits, reset
 * and finish, reads past the capacity refused, report zones; write pointers kept across a
 * clean restart, rolled back to the last flush by a power cut on the base (ZNS semantics),
 * open zones back closed; a base with another geometry refused; a torn newest table copy
 * passed over for the older one, and both copies damaged refused rather than reset.
 */
#include <stdlib.h>

#include "bdev_util.h"
#include "bdev/bdev_priv.h"

struct zop {
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	enum uraid_io_type type;
	uint8_t *buf;
	uint64_t lba, n;
	enum uraid_zone_action action;
	struct uraid_zone_info *info;
	uint64_t out_lba;
	int submit_rc;
	struct waiter w;
};

static void
zop_msg(void *arg)
{
	struct zop *z = arg;
	struct iovec iov = {z->buf, z->n * 4096};

	z->w.in_submit = true;
	switch (z->type) {
	case URAID_IO_ZONE_APPEND:
		z->submit_rc = uraid_bdev_zone_appendv(z->desc, z->ch, &iov, 1, z->lba, z->n, 0,
						       &z->out_lba, waiter_cb, &z->w);
		break;
	case URAID_IO_ZONE_MANAGEMENT:
		z->submit_rc = uraid_bdev_zone_management(z->desc, z->ch, z->lba, z->action,
							  waiter_cb, &z->w);
		break;
	case URAID_IO_GET_ZONE_INFO:
		z->submit_rc = uraid_bdev_get_zone_info(z->desc, z->ch, z->lba, (uint32_t)z->n,
							z->info, waiter_cb, &z->w);
		break;
	default:
		z->submit_rc = -EINVAL;
		break;
	}
	z->w.in_submit = false;
}

static int
zop_run(struct zop *z)
{
	memset(&z->w, 0, sizeof(z->w));
	uraid_reactor_send(uraid_reactor_get(0), zop_msg, z);
	uraid_reactor_poll(uraid_reactor_get(0));
	if (z->submit_rc != 0) {
		uraid_runtime_poll_until_idle(100);
		CHECK_EQ(z->w.calls, 0);
		return z->submit_rc;
	}
	CHECK(waiter_wait(&z->w));
	CHECK(!z->w.called_inside);
	uraid_runtime_poll_until_idle(100);
	return z->w.status;
}

static struct uraid_bdev_desc *g_desc;
static struct uraid_io_channel *g_ch;
static uint8_t *g_buf;

/* Append n blocks of a pattern to the zone at zone_id: the status, the LBA in *lba. */
static int
append(uint64_t zone_id, uint64_t n, uint64_t *lba)
{
	struct zop z = {.desc = g_desc,
			.ch = g_ch,
			.type = URAID_IO_ZONE_APPEND,
			.buf = g_buf,
			.lba = zone_id,
			.n = n};
	int rc;

	for (uint64_t i = 0; i < n * 4096; i++)
		g_buf[i] = (uint8_t)(zone_id + i / 4096 + 7);
	rc = zop_run(&z);
	if (lba)
		*lba = z.out_lba;
	return rc;
}

static int
mgmt(uint64_t zone_id, enum uraid_zone_action a)
{
	struct zop z = {.desc = g_desc,
			.ch = g_ch,
			.type = URAID_IO_ZONE_MANAGEMENT,
			.lba = zone_id,
			.action = a};

	return zop_run(&z);
}

static struct uraid_zone_info
info(uint64_t zone_id)
{
	struct uraid_zone_info i = {0};
	struct zop z = {.desc = g_desc,
			.ch = g_ch,
			.type = URAID_IO_GET_ZONE_INFO,
			.lba = zone_id,
			.n = 1,
			.info = &i};

	CHECK_EQ(zop_run(&z), 0);
	return i;
}

static void
open_zoned(const char *name)
{
	REQUIRE(uraid_bdev_open(name, true, NULL, NULL, &g_desc) == 0);
	g_ch = test_get_channel(g_desc);
	REQUIRE(g_ch != NULL);
}

static void
close_zoned(const char *name)
{
	test_put_channel(g_ch);
	uraid_bdev_close(g_desc);
	CHECK_EQ(test_delete_bdev(name), 0);
}

static int
make_zoned_conv(const char *name, const char *base, uint64_t cap, uint32_t max_open,
		uint32_t max_active, uint64_t conv)
{
	struct zoned_bdev_opts o = {.name = name,
				    .base_bdev = base,
				    .zone_capacity = cap,
				    .optimal_open_zones = 1,
				    .max_open_zones = max_open,
				    .max_active_zones = max_active,
				    .conventional_zones = conv};
	struct uraid_bdev *b;
	char err[256] = "";
	int rc = zoned_bdev_create(&o, &b, err, sizeof(err));

	if (rc != 0)
		printf("  zoned_bdev_create: %s\n", err);
	return rc;
}

static int
make_zoned(const char *name, const char *base, uint64_t cap, uint32_t max_open, uint32_t max_active)
{
	return make_zoned_conv(name, base, cap, max_open, max_active, 0);
}

static void
test_zone_rules(void)
{
	struct uraid_bdev *base, *zb;
	struct uraid_zone_info zi;
	uint64_t lba;
	uint8_t *rd;

	REQUIRE(start_manual(2) == 0);
	g_buf = test_alloc(64 * 4096);
	rd = test_alloc(64 * 4096);
	REQUIRE(ram_bdev_create("base", 1024, 4096, NULL, &base) == 0);
	/* Bad geometry is refused with a reason. */
	CHECK_EQ(make_zoned("z", "base", 0, 0, 0), -EINVAL);
	CHECK_EQ(make_zoned("z", "nobase", 48, 0, 0), -ENODEV);
	REQUIRE(make_zoned("z", "base", 48, 2, 3) == 0);
	zb = uraid_bdev_get_by_name("z");
	REQUIRE(zb != NULL);
	CHECK(uraid_bdev_is_zoned(zb));
	CHECK_EQ(uraid_bdev_get_zone_size(zb), 64);
	CHECK_EQ(uraid_bdev_get_zone_capacity(zb), 48);
	CHECK_EQ(uraid_bdev_get_num_blocks(zb) % 64, 0);
	CHECK(uraid_bdev_get_num_blocks(zb) >= 14 * 64); /* the table takes a few blocks */
	CHECK(!uraid_bdev_io_type_supported(zb, URAID_IO_UNMAP));
	CHECK(uraid_bdev_io_type_supported(zb, URAID_IO_ZONE_APPEND));
	CHECK(!uraid_bdev_io_type_supported(base, URAID_IO_ZONE_APPEND));
	open_zoned("z");

	zi = info(0);
	CHECK_EQ(zi.state, URAID_ZONE_EMPTY);
	CHECK_EQ(zi.write_pointer, 0);
	CHECK_EQ(zi.capacity, 48);
	/* Appends go to the write pointer and say where. */
	CHECK_EQ(append(0, 3, &lba), 0);
	CHECK_EQ(lba, 0);
	CHECK_EQ(append(0, 5, &lba), 0);
	CHECK_EQ(lba, 3);
	zi = info(0);
	CHECK_EQ(zi.write_pointer, 8);
	CHECK_EQ(zi.state, URAID_ZONE_IMPLICIT_OPEN);
	/* A WRITE must start at the write pointer and stay below the capacity. */
	memset(g_buf, 0x5a, 4096);
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_WRITE, g_buf, 8, 1, 0), 0);
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_WRITE, g_buf, 20, 1, 0), -EINVAL);
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_WRITE, g_buf, 9, 40, 0), -EINVAL);
	/* Reads see what was written; past the capacity they are refused. */
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_READ, rd, 3, 6, 0), 0);
	CHECK_EQ(rd[0], (uint8_t)(0 + 0 + 7));
	CHECK_EQ(rd[4 * 4096], (uint8_t)(0 + 4 + 7));
	CHECK_EQ(rd[5 * 4096], 0x5a);
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_READ, rd, 47, 2, 0), -EINVAL);
	/* Malformed zone requests are refused at submit. */
	CHECK_EQ(append(5, 1, NULL), -EINVAL);	 /* not a zone's first block */
	CHECK_EQ(append(64, 49, NULL), -EINVAL); /* more than a zone holds */

	/* Open limit 2, active limit 3. */
	CHECK_EQ(append(64, 1, NULL), 0);
	CHECK_EQ(append(128, 1, NULL), -EBUSY);
	CHECK_EQ(mgmt(0, URAID_ZONE_CLOSE), 0);
	CHECK_EQ(info(0).state, URAID_ZONE_CLOSED);
	CHECK_EQ(append(128, 1, NULL), 0);
	CHECK_EQ(mgmt(128, URAID_ZONE_CLOSE), 0);
	CHECK_EQ(append(192, 1, NULL), -EBUSY); /* three active: 0 and 128 closed, 64 open */
	CHECK_EQ(mgmt(0, URAID_ZONE_FINISH), 0);
	zi = info(0);
	CHECK_EQ(zi.state, URAID_ZONE_FULL);
	CHECK_EQ(zi.write_pointer, 48);
	CHECK_EQ(append(0, 1, NULL), -EINVAL); /* full */
	CHECK_EQ(append(192, 1, NULL), 0);
	/* Filling a zone makes it full; a reset empties it. */
	CHECK_EQ(append(64, 47, &lba), 0);
	CHECK_EQ(lba, 65);
	CHECK_EQ(info(64).state, URAID_ZONE_FULL);
	CHECK_EQ(append(64, 1, NULL), -EINVAL);
	CHECK_EQ(mgmt(64, URAID_ZONE_RESET), 0);
	zi = info(64);
	CHECK_EQ(zi.state, URAID_ZONE_EMPTY);
	CHECK_EQ(zi.write_pointer, 64);
	CHECK_EQ(append(64, 2, &lba), 0);
	CHECK_EQ(lba, 64);
	/* An explicitly opened empty zone closed is empty again. */
	CHECK_EQ(mgmt(256, URAID_ZONE_OPEN), -EBUSY); /* two open: 64 and 192 */
	CHECK_EQ(mgmt(192, URAID_ZONE_CLOSE), 0);
	CHECK_EQ(mgmt(256, URAID_ZONE_OPEN), -EBUSY); /* active: 128, 192 closed, 64 open */
	CHECK_EQ(mgmt(128, URAID_ZONE_RESET), 0);
	CHECK_EQ(mgmt(256, URAID_ZONE_OPEN), 0);
	CHECK_EQ(info(256).state, URAID_ZONE_EXPLICIT_OPEN);
	CHECK_EQ(mgmt(256, URAID_ZONE_CLOSE), 0);
	CHECK_EQ(info(256).state, URAID_ZONE_EMPTY);

	close_zoned("z");
	CHECK_EQ(test_delete_bdev("base"), 0);
	uraid_runtime_stop();
	free(g_buf);
	free(rd);
}

static void
cut_cb(void *arg, int status, const struct fault_cut_stats *st UNUSED)
{
	*(int *)arg = status + 1000;
}

static void
test_zone_restart(void)
{
	struct uraid_bdev *base, *f;
	struct fault_bdev_opts fo = {.name = "f", .base_name = "base", .volatile_cache = true};
	uint64_t lba;
	int cut = 0;
	uint8_t *rd;

	REQUIRE(start_manual(1) == 0);
	g_buf = test_alloc(64 * 4096);
	rd = test_alloc(64 * 4096);
	REQUIRE(ram_bdev_create("base", 1024, 4096, NULL, &base) == 0);
	REQUIRE(fault_bdev_create(&fo, &f) == 0);
	REQUIRE(make_zoned("z", "f", 64, 0, 0) == 0);
	open_zoned("z");
	CHECK_EQ(append(0, 10, NULL), 0);
	CHECK_EQ(append(64, 4, NULL), 0);
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_FLUSH, NULL, 0, 0, 0), 0);
	CHECK_EQ(append(0, 6, &lba), 0); /* not flushed */
	CHECK_EQ(lba, 10);
	close_zoned("z");
	/* A clean end keeps every write pointer; the open zones come back closed. */
	REQUIRE(make_zoned("z", "f", 64, 0, 0) == 0);
	open_zoned("z");
	CHECK_EQ(info(0).write_pointer, 16);
	CHECK_EQ(info(0).state, URAID_ZONE_CLOSED);
	CHECK_EQ(info(64).write_pointer, 68);
	/* The base out of requests for a while: the append waits and lands, not fails. */
	{
		struct fault_rule_opts r = {.io_type_mask = 1u << URAID_IO_WRITE,
					    .kind = FAULT_NOMEM,
					    .count = 3,
					    .probability_ppm = 1000000};

		REQUIRE(fault_inject("f", &r) == 0);
	}
	CHECK_EQ(append(0, 2, &lba), 0);
	CHECK_EQ(lba, 16);
	CHECK_EQ(info(0).write_pointer, 18);
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_FLUSH, NULL, 0, 0, 0), 0);
	CHECK_EQ(append(0, 5, NULL), 0);
	CHECK_EQ(mgmt(128, URAID_ZONE_OPEN), 0);
	CHECK_EQ(append(128, 3, NULL), 0);
	/* The power goes: what was not flushed may be lost; the pointers are the last flush's. */
	REQUIRE(fault_power_cut("f", 42, cut_cb, &cut) == 0);
	uraid_runtime_poll_until_idle(1000);
	CHECK_EQ(cut, 1000);
	close_zoned("z");
	CHECK_EQ(fault_power_on("f"), 0);
	REQUIRE(make_zoned("z", "f", 64, 0, 0) == 0);
	open_zoned("z");
	CHECK_EQ(info(0).write_pointer, 18);
	CHECK_EQ(info(128).write_pointer, 128);
	CHECK_EQ(info(128).state, URAID_ZONE_EMPTY);
	/* What was flushed is there. */
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_READ, rd, 0, 18, 0), 0);
	CHECK_EQ(rd[0], 7);
	CHECK_EQ(rd[9 * 4096], 7 + 9);
	CHECK_EQ(rd[10 * 4096], 7);	/* the append after the first flush, at block 10 */
	CHECK_EQ(rd[17 * 4096], 7 + 1); /* the append after the restart */
	close_zoned("z");
	/* Another geometry over the same base is refused, not a silent reformat. */
	CHECK_EQ(make_zoned("z", "f", 32, 0, 0), -EINVAL);
	CHECK_EQ(test_delete_bdev("f"), 0);
	CHECK_EQ(test_delete_bdev("base"), 0);
	uraid_runtime_stop();
	free(g_buf);
	free(rd);
}

/* Flip a byte of the base (through its own descriptor, the zoned bdev deleted). */
static void
poke_base(const char *base, uint64_t block, unsigned byte)
{
	struct uraid_bdev_desc *d;
	uint8_t *b = test_alloc(4096);

	REQUIRE(uraid_bdev_open(base, true, NULL, NULL, &d) == 0);
	CHECK_EQ(uraid_bdev_io_sync(d, URAID_IO_READ, b, block, 1), 0);
	b[byte] ^= 0x40;
	CHECK_EQ(uraid_bdev_io_sync(d, URAID_IO_WRITE, b, block, 1), 0);
	uraid_bdev_close(d);
	free(b);
}

static void
test_zone_table_damage(void)
{
	struct uraid_bdev *base;
	uint64_t copy = 2; /* 1 + 16 bytes x 15 zones in one block */

	REQUIRE(start_manual(1) == 0);
	g_buf = test_alloc(64 * 4096);
	REQUIRE(ram_bdev_create("base", 1024, 4096, NULL, &base) == 0);
	REQUIRE(make_zoned("z", "base", 64, 0, 0) == 0); /* table generation 2 in copy A */
	open_zoned("z");
	CHECK_EQ(append(0, 4, NULL), 0);
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_FLUSH, NULL, 0, 0, 0), 0); /* generation 3: copy B */
	CHECK_EQ(append(0, 4, NULL), 0);
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_FLUSH, NULL, 0, 0, 0), 0); /* generation 4: copy A */
	CHECK_EQ(append(0, 4, NULL), 0);
	close_zoned("z"); /* generation 5, write pointer 12: copy B */
	/* The newest copy (B) torn: the older one (A, write pointer 8) is taken. */
	poke_base("base", copy + 1, 3);
	REQUIRE(make_zoned("z", "base", 64, 0, 0) == 0);
	open_zoned("z");
	CHECK_EQ(info(0).write_pointer, 8);
	close_zoned("z"); /* rewrites copy B: whole again */
	/* Both copies damaged: refused, the table left as it is. */
	poke_base("base", 1, 0);
	poke_base("base", copy + 1, 0);
	CHECK_EQ(make_zoned("z", "base", 64, 0, 0), -EINVAL);
	CHECK_EQ(make_zoned("z", "base", 64, 0, 0), -EINVAL);
	/* Mended again by hand, it starts: nothing was reset meanwhile. */
	poke_base("base", 1, 0);
	REQUIRE(make_zoned("z", "base", 64, 0, 0) == 0);
	open_zoned("z");
	CHECK_EQ(info(0).write_pointer, 8);
	close_zoned("z");
	/* A geometry whose table is another size still finds copy A and refuses. */
	CHECK_EQ(make_zoned("z", "base", 1, 0, 0), -EINVAL); /* 1020 zones: 5-block copies */
	CHECK_EQ(test_delete_bdev("base"), 0);
	uraid_runtime_stop();
	free(g_buf);
}

/* Conventional zones at the start: written anywhere (across their zones too), never appended
 * to, reset or finished; the sequential zones after them keep the rule; the count is part of
 * the geometry a table is checked against. */
static void
test_zone_conventional(void)
{
	struct uraid_bdev *base;
	struct uraid_zone_info zi;
	uint8_t *rd;

	REQUIRE(start_manual(1) == 0);
	g_buf = test_alloc(64 * 4096);
	rd = test_alloc(64 * 4096);
	REQUIRE(ram_bdev_create("base", 1024, 4096, NULL, &base) == 0);
	CHECK_EQ(make_zoned_conv("z", "base", 64, 0, 0, 15), -EINVAL); /* none sequential */
	REQUIRE(make_zoned_conv("z", "base", 48, 1, 0, 2) == 0);
	CHECK_EQ(uraid_bdev_get_conventional_zones(uraid_bdev_get_by_name("z")), 2);
	open_zoned("z");
	zi = info(0);
	CHECK_EQ(zi.state, URAID_ZONE_NOT_WP);
	CHECK_EQ(zi.capacity, 64);
	memset(g_buf, 0x33, 64 * 4096);
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_WRITE, g_buf, 60, 8, 0), 0); /* across zones 0-1 */
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_WRITE, g_buf, 5, 1, 0), 0);	 /* again, backwards */
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_READ, rd, 60, 8, 0), 0);
	CHECK_EQ(memcmp(rd, g_buf, 8 * 4096), 0);
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_WRITE, g_buf, 126, 4, 0), -EINVAL); /* into zone 2 */
	CHECK_EQ(append(0, 1, NULL), -EINVAL);
	CHECK_EQ(mgmt(64, URAID_ZONE_RESET), -EINVAL);
	CHECK_EQ(mgmt(0, URAID_ZONE_FINISH), -EINVAL);
	CHECK_EQ(info(64).state, URAID_ZONE_NOT_WP);
	/* Sequential zones from 128 on, with the open limit of 1 (conventional writes use none). */
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_WRITE, g_buf, 130, 1, 0), -EINVAL);
	CHECK_EQ(append(128, 2, NULL), 0);
	CHECK_EQ(append(192, 1, NULL), -EBUSY);
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_WRITE, g_buf, 10, 1, 0), 0);
	close_zoned("z");
	/* The table remembers: another conventional count is another geometry. */
	CHECK_EQ(make_zoned_conv("z", "base", 48, 1, 0, 1), -EINVAL);
	REQUIRE(make_zoned_conv("z", "base", 48, 1, 0, 2) == 0);
	open_zoned("z");
	CHECK_EQ(info(128).write_pointer, 130);
	CHECK_EQ(info(0).state, URAID_ZONE_NOT_WP);
	memset(g_buf, 0x33, 8 * 4096); /* (the appends wrote their own pattern into it) */
	CHECK_EQ(sync_rw(g_desc, g_ch, SYNC_READ, rd, 60, 8, 0), 0);
	CHECK_EQ(memcmp(rd, g_buf, 8 * 4096), 0);
	close_zoned("z");
	CHECK_EQ(test_delete_bdev("base"), 0);
	uraid_runtime_stop();
	free(g_buf);
	free(rd);
}

TEST_MAIN(TEST(test_zone_rules), TEST(test_zone_restart), TEST(test_zone_table_damage),
	  TEST(test_zone_conventional))
