/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The drive model (drive.c) on the manual clock: a request is answered only once the drive
 * has had time to move its bytes at the set bandwidth, or its IOPS allow it, plus the set
 * latency; requests given together queue behind each other; reads and writes share the
 * drive; the data passes through unchanged; bad parameters are refused with a reason.
 */
#include <stdlib.h>

#include "bdev_util.h"
#include "bdev/bdev_priv.h"

static struct uraid_bdev_desc *g_desc;
static struct uraid_io_channel *g_ch;

/* Start an I/O on reactor 0 without waiting for it. */
static void
start(struct sync_io *s, enum sync_op op, void *buf, uint64_t lba, uint64_t n)
{
	memset(s, 0, sizeof(*s));
	s->desc = g_desc;
	s->ch = g_ch;
	s->op = op;
	s->buf = buf;
	s->offset_blocks = lba;
	s->num_blocks = n;
	uraid_reactor_send(uraid_reactor_get(0), sync_submit_msg, s);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(s->submit_rc, 0);
}

/* Move the clock by us and run everything that falls due. */
static void
tick(uint64_t us)
{
	uraid_runtime_advance_us(us);
	uraid_runtime_poll_until_idle(100);
}

static unsigned
done_count(const struct sync_io *s, unsigned n)
{
	unsigned d = 0;

	for (unsigned i = 0; i < n; i++)
		d += s[i].w.done;
	return d;
}

static int
make_drive(const char *name, const char *base, uint32_t rmb, uint32_t wmb, uint32_t riops,
	   uint32_t wiops, uint32_t rlat, uint32_t wlat)
{
	struct drive_bdev_opts o = {.name = name,
				    .base_bdev = base,
				    .read_mb_s = rmb,
				    .write_mb_s = wmb,
				    .read_iops = riops,
				    .write_iops = wiops,
				    .read_latency_us = rlat,
				    .write_latency_us = wlat};
	struct uraid_bdev *b;
	char err[256] = "";
	int rc = drive_bdev_create(&o, &b, err, sizeof(err));

	if (rc != 0)
		CHECK(err[0] != '\0'); /* a reason with every refusal */
	return rc;
}

static void
open_drive(const char *name)
{
	REQUIRE(uraid_bdev_open(name, true, NULL, NULL, &g_desc) == 0);
	g_ch = test_get_channel(g_desc);
	REQUIRE(g_ch != NULL);
}

static void
close_drive(void)
{
	test_put_channel(g_ch);
	uraid_bdev_close(g_desc);
}

static void
test_bandwidth_and_latency(void)
{
	struct uraid_bdev *base;
	struct sync_io s[4];
	uint8_t *wr = test_alloc(1 << 20), *rd = test_alloc(1 << 20);

	REQUIRE(start_manual(1) == 0);
	REQUIRE(ram_bdev_create("base", 4096, 4096, NULL, &base) == 0);
	/* 100 MB/s writes, 200 MB/s reads with 100 us latency. */
	REQUIRE(make_drive("d", "base", 200, 100, 0, 0, 100, 0) == 0);
	open_drive("d");
	for (size_t i = 0; i < (1 << 20); i++)
		wr[i] = (uint8_t)(i * 7 + 3);

	/* 1 MiB at 100 MB/s: 10486 us. */
	start(&s[0], SYNC_WRITE, wr, 0, 256);
	tick(10000);
	CHECK(!s[0].w.done);
	tick(600);
	CHECK(s[0].w.done);
	CHECK_EQ(s[0].w.status, 0);

	/* Read back at 200 MB/s plus 100 us: 5343 us. */
	tick(100000); /* the drive idle: no credit is saved up */
	start(&s[0], SYNC_READ, rd, 0, 256);
	tick(5300);
	CHECK(!s[0].w.done);
	tick(100);
	CHECK(s[0].w.done);
	CHECK_EQ(s[0].w.status, 0);
	CHECK(memcmp(rd, wr, 1 << 20) == 0);

	/* Four 64 KiB writes given at once queue: 655 us each. */
	tick(100000);
	for (int i = 0; i < 4; i++)
		start(&s[i], SYNC_WRITE, wr + i * 65536, 512 + i * 16, 16);
	tick(600);
	CHECK_EQ(done_count(s, 4), 0);
	tick(800); /* 1400 us: two */
	CHECK_EQ(done_count(s, 4), 2);
	tick(1300); /* 2700 us: all four */
	CHECK_EQ(done_count(s, 4), 4);

	/* A read behind a write waits for it: one drive for both. */
	tick(100000);
	start(&s[0], SYNC_WRITE, wr, 1024, 256); /* 10486 us */
	start(&s[1], SYNC_READ, rd, 0, 16);	 /* then 328 us + 100 us */
	tick(10600);
	CHECK(s[0].w.done);
	CHECK(!s[1].w.done);
	tick(400);
	CHECK(s[1].w.done);

	close_drive();
	CHECK_EQ(test_delete_bdev("d"), 0);
	CHECK_EQ(test_delete_bdev("base"), 0);
	free(wr);
	free(rd);
	uraid_runtime_stop();
}

static void
test_iops(void)
{
	struct uraid_bdev *base;
	struct sync_io s[6];
	uint8_t *buf = test_alloc(4096);

	REQUIRE(start_manual(1) == 0);
	REQUIRE(ram_bdev_create("base", 1024, 4096, NULL, &base) == 0);
	/* 1000 write IOPS (bandwidth unlimited), 50 us write latency. */
	REQUIRE(make_drive("d", "base", 0, 0, 0, 1000, 0, 50) == 0);
	open_drive("d");
	for (int i = 0; i < 6; i++)
		start(&s[i], SYNC_WRITE, buf, (uint64_t)i, 1);
	tick(2500); /* due at 1050, 2050, 3050, ... us */
	CHECK_EQ(done_count(s, 6), 2);
	tick(4000);
	CHECK_EQ(done_count(s, 6), 6);
	/* Reads have no limit here: answered at once. */
	start(&s[0], SYNC_READ, buf, 0, 1);
	CHECK(s[0].w.done);
	close_drive();
	CHECK_EQ(test_delete_bdev("d"), 0);
	CHECK_EQ(test_delete_bdev("base"), 0);
	free(buf);
	uraid_runtime_stop();
}

static void
test_bad_input(void)
{
	struct uraid_bdev *base;

	REQUIRE(start_manual(1) == 0);
	REQUIRE(ram_bdev_create("base", 1024, 4096, NULL, &base) == 0);
	CHECK_EQ(make_drive("", "base", 1, 1, 0, 0, 0, 0), -EINVAL);
	CHECK_EQ(make_drive("d", "nobase", 1, 1, 0, 0, 0, 0), -ENODEV);
	CHECK_EQ(make_drive("d", "base", 2000000, 1, 0, 0, 0, 0), -EINVAL);
	CHECK_EQ(make_drive("d", "base", 1, 1, 0, 0, 0, 70000000), -EINVAL);
	CHECK_EQ(make_drive("d", "base", 1, 1, 0, 0, 0, 0), 0);
	CHECK_EQ(make_drive("d", "base", 1, 1, 0, 0, 0, 0), -EPERM); /* base taken */
	CHECK(drive_bdev_get_opts(uraid_bdev_get_by_name("d")) != NULL);
	CHECK(drive_bdev_get_opts(base) == NULL);
	CHECK_EQ(drive_bdev_get_opts(uraid_bdev_get_by_name("d"))->write_mb_s, 1);
	CHECK_EQ(test_delete_bdev("d"), 0);
	CHECK_EQ(test_delete_bdev("base"), 0);
	uraid_runtime_stop();
}

TEST_MAIN(TEST(test_bandwidth_and_latency), TEST(test_iops), TEST(test_bad_input))
