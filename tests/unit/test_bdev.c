/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The bdev layer and the ram, null and file backends: data integrity against a model with
 * scattered iovecs, bounds and malformed requests (-EINVAL, never a callback), the submit
 * contract, UNMAP/WRITE_ZEROES, FLUSH/FUA, RESET, claims and hot-remove.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdev_util.h"
#include "bdev/bdev_priv.h"

/* Random writes and reads, split into random iovecs, compared with a model buffer. */
static void
integrity_run(const char *name, uint64_t ops)
{
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	struct uraid_bdev *bdev;
	uint8_t *model, *buf;
	uint32_t bs;
	uint64_t nblocks;

	REQUIRE(uraid_bdev_open(name, true, NULL, NULL, &desc) == 0);
	bdev = uraid_bdev_desc_get_bdev(desc);
	bs = uraid_bdev_get_block_size(bdev);
	nblocks = uraid_bdev_get_num_blocks(bdev);
	ch = test_get_channel(desc);
	REQUIRE(ch != NULL);
	model = calloc(nblocks, bs);
	buf = test_alloc(64 * (size_t)bs + 64);
	REQUIRE(model && buf);
	/* Start from a known state: zero the whole device. */
	CHECK_EQ(sync_rw(desc, ch, SYNC_ZEROES, NULL, 0, nblocks, 0), 0);

	for (uint64_t op = 0; op < ops; op++) {
		uint64_t n = 1 + test_rand_below(64 < nblocks ? 64 : nblocks);
		uint64_t off = test_rand_below(nblocks - n + 1);
		uint64_t len = n * bs;
		/* Misalign the buffer sometimes, so the file backend's bounce path runs too. */
		uint8_t *base = buf + (test_rand_below(4) == 0 ? 8 : 0);
		struct iovec iov[8];
		int iovcnt = 0;
		uint64_t left = len, pos = 0;
		struct sync_io s = {.desc = desc, .ch = ch, .offset_blocks = off, .num_blocks = n};

		while (left > 0) {
			uint64_t piece = iovcnt == 7 ? left : 1 + test_rand_below(left);

			iov[iovcnt].iov_base = base + pos;
			iov[iovcnt].iov_len = piece;
			iovcnt++;
			pos += piece;
			left -= piece;
		}
		s.iov = iov;
		s.iovcnt = iovcnt;
		if (test_rand_below(2) == 0) {
			for (uint64_t i = 0; i < len; i++)
				base[i] = (uint8_t)test_rand();
			s.op = SYNC_WRITE;
			s.flags = test_rand_below(8) == 0 ? URAID_IO_FUA : 0;
			CHECK_EQ(sync_io(&s), 0);
			memcpy(model + off * bs, base, len);
		} else {
			memset(base, 0xa5, len);
			s.op = SYNC_READ;
			CHECK_EQ(sync_io(&s), 0);
			if (memcmp(model + off * bs, base, len) != 0) {
				CHECK(!"read data differs from the model");
				break;
			}
		}
	}
	/* Zeroes and unmap read back as zeroes. */
	CHECK_EQ(sync_rw(desc, ch, SYNC_ZEROES, NULL, 1, 3, 0), 0);
	CHECK_EQ(sync_rw(desc, ch, SYNC_UNMAP, NULL, 5, 2, 0), 0);
	CHECK_EQ(sync_rw(desc, ch, SYNC_FLUSH, NULL, 0, 0, 0), 0);
	memset(model + 1 * bs, 0, 3 * (size_t)bs);
	memset(model + 5 * bs, 0, 2 * (size_t)bs);
	CHECK_EQ(sync_rw(desc, ch, SYNC_READ, buf, 0, 8, 0), 0);
	CHECK(memcmp(buf, model, 8 * (size_t)bs) == 0);

	free(model);
	free(buf);
	test_put_channel(ch);
	uraid_bdev_close(desc);
}

/* Malformed requests are refused with an error and never call back. */
static void
invalid_requests(const char *name)
{
	struct uraid_bdev_desc *desc, *ro;
	struct uraid_io_channel *ch;
	struct uraid_bdev *bdev;
	uint64_t n;
	uint32_t bs;
	uint8_t *buf = test_alloc(8192);
	struct iovec short_iov = {buf, 100};
	struct sync_io s = {0};

	REQUIRE(uraid_bdev_open(name, true, NULL, NULL, &desc) == 0);
	REQUIRE(uraid_bdev_open(name, false, NULL, NULL, &ro) == 0);
	bdev = uraid_bdev_desc_get_bdev(desc);
	n = uraid_bdev_get_num_blocks(bdev);
	bs = uraid_bdev_get_block_size(bdev);
	ch = test_get_channel(desc);
	REQUIRE(ch != NULL);
	CHECK_EQ(sync_rw(desc, ch, SYNC_READ, buf, n, 1, 0), -EINVAL);	   /* past the end */
	CHECK_EQ(sync_rw(desc, ch, SYNC_READ, buf, n - 1, 2, 0), -EINVAL); /* straddles it */
	CHECK_EQ(sync_rw(desc, ch, SYNC_WRITE, buf, UINT64_MAX, 1, 0), -EINVAL);
	CHECK_EQ(sync_rw(desc, ch, SYNC_READ, buf, 0, 0, 0), -EINVAL); /* empty */
	CHECK_EQ(sync_rw(desc, ch, SYNC_UNMAP, NULL, n - 1, 2, 0), -EINVAL);
	CHECK_EQ(sync_rw(desc, ch, SYNC_WRITE, buf, 0, 1, 0x80), -EINVAL); /* unknown flag */
	s = (struct sync_io){.desc = desc,
			     .ch = ch,
			     .op = SYNC_WRITE,
			     .iov = &short_iov,
			     .iovcnt = 1,
			     .offset_blocks = 0,
			     .num_blocks = 1};
	CHECK_EQ(sync_io(&s), -EINVAL); /* iovec shorter than the blocks */
	s.iovcnt = 0;
	CHECK_EQ(sync_io(&s), -EINVAL);
	/* A read-only descriptor cannot write. */
	CHECK_EQ(sync_rw(ro, ch, SYNC_WRITE, buf, 0, 1, 0), -EINVAL);
	CHECK_EQ(sync_rw(ro, ch, SYNC_READ, buf, 0, 1, 0), 0);
	CHECK_EQ(sync_rw(desc, ch, SYNC_READ, buf, n - 1, 1, 0), 0); /* the last block is fine */
	(void)bs;
	test_put_channel(ch);
	uraid_bdev_close(ro);
	uraid_bdev_close(desc);
	free(buf);
}

static void
test_ram(void)
{
	struct uraid_bdev *bdev;

	REQUIRE(start_manual(1) == 0);
	CHECK_EQ(ram_bdev_create("r0", 0, 4096, NULL, &bdev), -EINVAL);
	CHECK_EQ(ram_bdev_create("r0", 16, 1000, NULL, &bdev), -EINVAL);
	REQUIRE(ram_bdev_create("r0", 256, 4096, NULL, &bdev) == 0);
	CHECK_EQ(ram_bdev_create("r0", 256, 4096, NULL, &bdev), -EEXIST);
	REQUIRE(ram_bdev_create("r512", 2048, 512, NULL, &bdev) == 0);
	CHECK_EQ(uraid_bdev_get_block_size(bdev), 512);
	integrity_run("r0", 400);
	integrity_run("r512", 400);
	invalid_requests("r0");
	CHECK_EQ(test_delete_bdev("r0"), 0);
	CHECK_EQ(test_delete_bdev("r512"), 0);
	CHECK(uraid_bdev_get_by_name("r0") == NULL);
	uraid_runtime_stop();
}

static void
test_null(void)
{
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	struct uraid_bdev *bdev;
	uint8_t buf[4096];

	REQUIRE(start_manual(1) == 0);
	REQUIRE(null_bdev_create("n0", 1024, 4096, NULL, &bdev) == 0);
	REQUIRE(uraid_bdev_open("n0", true, NULL, NULL, &desc) == 0);
	ch = test_get_channel(desc);
	memset(buf, 0x5a, sizeof(buf));
	CHECK_EQ(sync_rw(desc, ch, SYNC_WRITE, buf, 3, 1, 0), 0);
	CHECK_EQ(sync_rw(desc, ch, SYNC_READ, buf, 3, 1, 0), 0);
	CHECK_EQ(buf[0], 0x5a); /* untouched: null stores and returns nothing */
	CHECK_EQ(sync_rw(desc, ch, SYNC_READ, buf, 1024, 1, 0), -EINVAL);
	test_put_channel(ch);
	uraid_bdev_close(desc);
	CHECK_EQ(test_delete_bdev("n0"), 0);
	uraid_runtime_stop();
}

static char g_dir[64];

static void
make_tmpdir(void)
{
	snprintf(g_dir, sizeof(g_dir), "/tmp/uraid-test-XXXXXX");
	CHECK(mkdtemp(g_dir) != NULL);
}

static void
test_file(void)
{
	struct file_bdev_opts o = {0};
	struct uraid_bdev *bdev;
	char path[128], err[256];
	int fd;

	make_tmpdir();
	REQUIRE(start_manual(1) == 0);
	snprintf(path, sizeof(path), "%s/f0", g_dir);
	o.name = "f0";
	o.filename = path;
	/* Missing file without a size: clear error. */
	CHECK_EQ(file_bdev_create(&o, &bdev, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "No such file") != NULL);
	/* Size that is not a multiple of the block size. */
	o.create_bytes = 1000000;
	CHECK_EQ(file_bdev_create(&o, &bdev, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "multiple") != NULL);
	o.create_bytes = 4 << 20;
	REQUIRE(file_bdev_create(&o, &bdev, err, sizeof(err)) == 0);
	CHECK_EQ(uraid_bdev_get_num_blocks(bdev), 1024);
	integrity_run("f0", 300);
	invalid_requests("f0");
	CHECK_EQ(test_delete_bdev("f0"), 0);

	/* Reopen: the data written above is still there (and 512-byte blocks work). */
	o.create_bytes = 0;
	o.block_size = 512;
	o.name = "f0b";
	REQUIRE(file_bdev_create(&o, &bdev, err, sizeof(err)) == 0);
	CHECK_EQ(uraid_bdev_get_num_blocks(bdev), 8192);
	integrity_run("f0b", 200);
	CHECK_EQ(test_delete_bdev("f0b"), 0);

	/* An existing file whose size is not a multiple of the block size. */
	snprintf(path, sizeof(path), "%s/odd", g_dir);
	fd = open(path, O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 5000) == 0);
	close(fd);
	o.name = "odd";
	o.block_size = 4096;
	CHECK_EQ(file_bdev_create(&o, &bdev, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "multiple of the block size") != NULL);
	o.filename = g_dir; /* a directory */
	CHECK(file_bdev_create(&o, &bdev, err, sizeof(err)) < 0);
	uraid_runtime_stop();
	snprintf(path, sizeof(path), "rm -rf %s", g_dir);
	CHECK(system(path) == 0);
}

/* RESET completes only after the I/O the channel had in flight. */
static struct waiter g_w_write, g_w_reset;
static uint8_t g_reset_buf[4096];
static int g_order, g_write_order, g_reset_order;

static void
write_cb(void *arg, int status)
{
	g_write_order = ++g_order;
	waiter_cb(arg, status);
}

static void
reset_cb(void *arg, int status)
{
	g_reset_order = ++g_order;
	waiter_cb(arg, status);
}

static void
reset_submit_msg(void *arg)
{
	struct chan_req *r = arg;

	CHECK_EQ(uraid_bdev_write(r->desc, r->ch, g_reset_buf, 0, 1, 0, write_cb, &g_w_write), 0);
	CHECK_EQ(uraid_bdev_reset(r->desc, r->ch, reset_cb, &g_w_reset), 0);
	CHECK(!g_w_write.done && !g_w_reset.done);
}

static int g_events;

static void
test_claims_reset_hotremove(void)
{
	struct uraid_bdev_desc *a, *b, *c;
	struct uraid_bdev *bdev;
	struct chan_req r;
	int got = 0;

	REQUIRE(start_manual(1) == 0);
	REQUIRE(ram_bdev_create("m", 64, 4096, NULL, &bdev) == 0);
	CHECK_EQ(uraid_bdev_open("nope", false, NULL, NULL, &a), -ENODEV);
	REQUIRE(uraid_bdev_open("m", true, NULL, NULL, &a) == 0);
	REQUIRE(uraid_bdev_open("m", true, NULL, NULL, &b) == 0);
	CHECK_EQ(uraid_bdev_claim(a, "array0"), -EPERM); /* b is a writer */
	uraid_bdev_close(b);
	CHECK_EQ(uraid_bdev_claim(a, "array0"), 0);
	CHECK(uraid_bdev_claimed_by(bdev) && strcmp(uraid_bdev_claimed_by(bdev), "array0") == 0);
	CHECK_EQ(uraid_bdev_open("m", true, NULL, NULL, &b), -EPERM);
	REQUIRE(uraid_bdev_open("m", false, NULL, NULL, &b) == 0); /* readers are fine */
	CHECK_EQ(uraid_bdev_claim(b, "other"), -EPERM);
	uraid_bdev_close(b);

	memset(&g_w_write, 0, sizeof(g_w_write));
	memset(&g_w_reset, 0, sizeof(g_w_reset));
	r.desc = a;
	r.ch = test_get_channel(a);
	uraid_reactor_send(uraid_reactor_get(0), reset_submit_msg, &r);
	uraid_runtime_poll_until_idle(100);
	CHECK(g_w_write.done && g_w_reset.done);
	CHECK_EQ(g_write_order, 1);
	CHECK_EQ(g_reset_order, 2);
	CHECK_EQ(g_w_reset.status, 0);
	test_put_channel(r.ch);

	/* Unregister waits for open descriptors; new opens fail at once. */
	uraid_bdev_close(a);
	REQUIRE(uraid_bdev_open("m", false, NULL, NULL, &c) == 0);
	uraid_bdev_unregister(bdev, unreg_cb, &got);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(got, 0); /* c still open */
	CHECK(uraid_bdev_get_by_name("m") == NULL);
	CHECK_EQ(uraid_bdev_open("m", false, NULL, NULL, &b), -ENODEV);
	uraid_bdev_close(c);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(got, 1000); /* unregister_cb with status 0 */
	uraid_runtime_stop();
}

struct evt_holder {
	struct uraid_bdev_desc *desc;
};

static void
on_remove_close(enum uraid_bdev_event ev UNUSED, struct uraid_bdev *bdev UNUSED, void *ctx)
{
	struct evt_holder *h = ctx;

	g_events++;
	uraid_bdev_close(h->desc);
}

static void
test_hotremove_event(void)
{
	struct evt_holder h;
	struct uraid_bdev *bdev;
	int got = 0;

	g_events = 0;
	REQUIRE(start_manual(1) == 0);
	REQUIRE(ram_bdev_create("hr", 64, 512, NULL, &bdev) == 0);
	REQUIRE(uraid_bdev_open("hr", true, on_remove_close, &h, &h.desc) == 0);
	uraid_bdev_unregister(bdev, unreg_cb, &got);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(g_events, 1);
	CHECK_EQ(got, 1000);
	uraid_runtime_stop();
}

/* Deferred completions run depth first, within a bound: an I/O that a completion callback
 * submits completes right after it, ahead of the rest of the batch, but a chain that never
 * ends goes only two levels deep in one poll; the rest of the batch completes in that poll,
 * and the chain goes on in the next, as deep again. */
static struct {
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	uint8_t buf[32768];
	uint64_t blocks; /* per read */
	char log[64];
	unsigned n;
	bool stop;
} g_chain;

static void
chain_cb(void *arg, int status)
{
	char tag = (char)(uintptr_t)arg;

	CHECK_EQ(status, 0);
	if (g_chain.n < sizeof(g_chain.log) - 1)
		g_chain.log[g_chain.n++] = tag;
	if (tag == 'A' && !g_chain.stop)
		CHECK_EQ(uraid_bdev_read(g_chain.desc, g_chain.ch, g_chain.buf, 0, g_chain.blocks,
					 chain_cb, arg),
			 0);
}

static void
chain_submit_msg(void *arg UNUSED)
{
	for (const char *t = "ABCD"; *t; t++)
		CHECK_EQ(uraid_bdev_read(g_chain.desc, g_chain.ch, g_chain.buf, 0, g_chain.blocks,
					 chain_cb, (void *)(uintptr_t)*t),
			 0);
}

/* The chain's I/O on bdev name, which the test created. */
static void
chain_open(const char *name)
{
	memset(&g_chain, 0, sizeof(g_chain));
	REQUIRE(uraid_bdev_open(name, true, NULL, NULL, &g_chain.desc) == 0);
	g_chain.ch = test_get_channel(g_chain.desc);
}

/* One poll: a message submits A B C D of blocks each (A submits its next one from its
 * callback), then that poll's deferred completions run. */
static void
chain_start(uint64_t blocks)
{
	g_chain.blocks = blocks;
	g_chain.stop = false;
	g_chain.n = 0;
	memset(g_chain.log, 0, sizeof(g_chain.log));
	uraid_reactor_send(uraid_reactor_get(0), chain_submit_msg, NULL);
	uraid_reactor_poll(uraid_reactor_get(0));
}

static void
chain_stop(void)
{
	g_chain.stop = true;
	uraid_runtime_poll_until_idle(100);
}

static void
chain_close(const char *name)
{
	chain_stop();
	test_put_channel(g_chain.ch);
	uraid_bdev_close(g_chain.desc);
	CHECK_EQ(test_delete_bdev(name), 0);
	uraid_runtime_stop();
}

static void
test_deferred_depth_first(void)
{
	struct uraid_bdev *bdev;

	REQUIRE(start_manual(1) == 0);
	REQUIRE(null_bdev_create("n0", 1024, 4096, NULL, &bdev) == 0);
	chain_open("n0");
	/* A and 2 follow-ups of its chain, then B C D. */
	chain_start(1);
	CHECK(strcmp(g_chain.log, "AAABCD") == 0);
	/* The next poll: the chain's one waiting I/O and 2 follow-ups. */
	uraid_reactor_poll(uraid_reactor_get(0));
	CHECK(strcmp(g_chain.log, "AAABCDAAA") == 0);
	chain_close("n0");
}

/* ram completes a bulk copy (over 16 KiB) in the next poll, never in a chain (ram.c): the
 * chain's next read of the same buffer would copy from this core's cache. Its small requests
 * chain as any others. */
static void
test_ram_bulk_not_chained(void)
{
	struct uraid_bdev *bdev;

	REQUIRE(start_manual(1) == 0);
	REQUIRE(ram_bdev_create("rc", 64, 4096, NULL, &bdev) == 0);
	chain_open("rc");
	chain_start(1);
	CHECK(strcmp(g_chain.log, "AAABCD") == 0);
	chain_stop();
	/* 32 KiB reads: each poll completes what the last one submitted, and no more. */
	chain_start(8);
	CHECK(strcmp(g_chain.log, "ABCD") == 0);
	uraid_reactor_poll(uraid_reactor_get(0));
	CHECK(strcmp(g_chain.log, "ABCDA") == 0);
	uraid_reactor_poll(uraid_reactor_get(0));
	CHECK(strcmp(g_chain.log, "ABCDAA") == 0);
	chain_close("rc");
}

/* A small ram read or write copies where it completes (ram.c; uraid_bdev_io_defer), not at
 * submit: the buffers are untouched when submit returns, and the data is in place when the
 * callback runs, over one iovec and over two. */
static struct {
	uint8_t buf[3][8192];
	unsigned done;
} g_rcopy;

static void
rcopy_cb(void *arg, int status)
{
	uintptr_t which = (uintptr_t)arg;

	CHECK_EQ(status, 0);
	if (which == 0) /* the read of block 2: a single iovec */
		CHECK(memcmp(g_rcopy.buf[0], g_rcopy.buf[2], 4096) == 0);
	else if (which == 1) /* the read of blocks 0-1 over two iovecs */
		CHECK(memcmp(g_rcopy.buf[1], g_rcopy.buf[2], 8192) == 0);
	g_rcopy.done++;
}

static void
test_ram_copy_at_completion(void)
{
	struct uraid_bdev *bdev;
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	struct iovec two[2] = {{g_rcopy.buf[1], 4096}, {g_rcopy.buf[1] + 4096, 4096}};

	REQUIRE(start_manual(1) == 0);
	REQUIRE(ram_bdev_create("rq", 64, 4096, NULL, &bdev) == 0);
	REQUIRE(uraid_bdev_open("rq", true, NULL, NULL, &desc) == 0);
	ch = test_get_channel(desc);
	REQUIRE(ch != NULL);
	memset(g_rcopy.buf, 0xaa, sizeof(g_rcopy.buf));
	memset(g_rcopy.buf[2], 0x5c, 8192);
	CHECK_EQ(sync_rw(desc, ch, SYNC_WRITE, g_rcopy.buf[2], 0, 2, 0), 0);
	CHECK_EQ(sync_rw(desc, ch, SYNC_WRITE, g_rcopy.buf[2], 2, 1, 0), 0);
	g_rcopy.done = 0;
	CHECK_EQ(uraid_bdev_read(desc, ch, g_rcopy.buf[0], 2, 1, rcopy_cb, (void *)0), 0);
	CHECK_EQ(uraid_bdev_readv(desc, ch, two, 2, 0, 2, rcopy_cb, (void *)1), 0);
	CHECK_EQ(g_rcopy.buf[0][0], 0xaa);
	CHECK_EQ(g_rcopy.buf[1][8191], 0xaa);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(g_rcopy.done, 2);
	/* A write: the memory holds it once it completes. */
	memset(g_rcopy.buf[2], 0x3e, 4096);
	CHECK_EQ(uraid_bdev_write(desc, ch, g_rcopy.buf[2], 2, 1, 0, rcopy_cb, (void *)2), 0);
	uraid_runtime_poll_until_idle(100);
	CHECK_EQ(g_rcopy.done, 3);
	CHECK_EQ(sync_rw(desc, ch, SYNC_READ, g_rcopy.buf[0], 2, 1, 0), 0);
	CHECK(memcmp(g_rcopy.buf[0], g_rcopy.buf[2], 4096) == 0);
	test_put_channel(ch);
	uraid_bdev_close(desc);
	CHECK_EQ(test_delete_bdev("rq"), 0);
	uraid_runtime_stop();
}

static void
test_uuid(void)
{
	uint8_t u[16], v[16];
	char text[37];

	uraid_uuid_generate(u);
	uraid_uuid_format(u, text);
	CHECK_EQ(strlen(text), 36);
	CHECK_EQ(uraid_uuid_parse(text, v), 0);
	CHECK(memcmp(u, v, 16) == 0);
	CHECK_EQ(text[14], '4');
	CHECK_EQ(uraid_uuid_parse("not-a-uuid", v), -EINVAL);
	CHECK_EQ(uraid_uuid_parse("0123456789abcdef0123456789abcdef0123", v), -EINVAL);
	CHECK_EQ(uraid_uuid_parse("01234567-89ab-cdef-0123-456789abcdeg", v), -EINVAL);
}

TEST_MAIN(TEST(test_ram), TEST(test_null), TEST(test_file), TEST(test_claims_reset_hotremove),
	  TEST(test_hotremove_event), TEST(test_deferred_depth_first),
	  TEST(test_ram_bulk_not_chained), TEST(test_ram_copy_at_completion), TEST(test_uuid))
