/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD: the protocol session byte for byte (handshake, options, requests, validation, replies,
 * flow control), then the server in reactor threads over a Unix socket with a raw client:
 * pipelined writes and reads, garbage on one connection closes only that one, stopping an
 * export or deleting its bdev closes its connections, and the RPCs refuse bad requests.
 */
#include <endian.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bdev_util.h"
#include "server/rpc.h"

#define IHAVEOPT 0x49484156454f5054ull

/* --- building client bytes --- */
struct bytes {
	uint8_t b[1 << 16];
	size_t n;
};

static void
b16(struct bytes *x, uint16_t v)
{
	v = htobe16(v);
	memcpy(x->b + x->n, &v, 2);
	x->n += 2;
}

static void
b32(struct bytes *x, uint32_t v)
{
	v = htobe32(v);
	memcpy(x->b + x->n, &v, 4);
	x->n += 4;
}

static void
b64(struct bytes *x, uint64_t v)
{
	v = htobe64(v);
	memcpy(x->b + x->n, &v, 8);
	x->n += 8;
}

static void
bmem(struct bytes *x, const void *p, size_t len)
{
	if (len != 0)
		memcpy(x->b + x->n, p, len);
	x->n += len;
}

static void
opt(struct bytes *x, uint32_t o, const void *data, uint32_t len)
{
	b64(x, IHAVEOPT);
	b32(x, o);
	b32(x, len);
	bmem(x, data, len);
}

static void
opt_go(struct bytes *x, uint32_t o, const char *name, bool want_name)
{
	struct bytes d = {.n = 0};

	b32(&d, (uint32_t)strlen(name));
	bmem(&d, name, strlen(name));
	b16(&d, want_name ? 1 : 0);
	if (want_name)
		b16(&d, 1); /* NBD_INFO_NAME */
	opt(x, o, d.b, (uint32_t)d.n);
}

static void
request(struct bytes *x, uint16_t type, uint16_t flags, uint64_t cookie, uint64_t off, uint32_t len)
{
	b32(x, 0x25609513);
	b16(x, flags);
	b16(x, type);
	b64(x, cookie);
	b64(x, off);
	b32(x, len);
}

static uint16_t
g16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
g32(const uint8_t *p)
{
	return (uint32_t)g16(p) << 16 | g16(p + 2);
}

static uint64_t
g64(const uint8_t *p)
{
	return (uint64_t)g32(p) << 32 | g32(p + 4);
}

/* --- the protocol session, with a fake export --- */
struct fake {
	int attached;
	struct nbd_request *reqs[NBD_MAX_INFLIGHT + 8];
	unsigned nreqs;
};

static int
fake_attach(void *ctx)
{
	((struct fake *)ctx)->attached++;
	return 0;
}

static void
fake_request(void *ctx, struct nbd_request *req)
{
	struct fake *f = ctx;

	f->reqs[f->nreqs++] = req;
}

static const struct nbd_session_ops g_fake_ops = {.attach = fake_attach, .request = fake_request};

static const struct nbd_export_info g_info = {.name = "vol",
					      .size = 1u << 20,
					      .block_size = 512,
					      .pref_block_size = 65536,
					      .can_trim = true,
					      .can_zeroes = true};

/* Concatenate (and release) everything queued: what the socket would carry. */
static size_t
drain(struct nbd_session *s, uint8_t *out, size_t cap)
{
	struct nbd_out *o;
	size_t n = 0;

	while ((o = STAILQ_FIRST(&s->out)) != NULL) {
		for (int i = 0; i < 2; i++) {
			if (o->iov[i].iov_len != 0 && n + o->iov[i].iov_len <= cap)
				memcpy(out + n, o->iov[i].iov_base, o->iov[i].iov_len);
			n += o->iov[i].iov_len;
		}
		nbd_session_sent(s, o->iov[0].iov_len + o->iov[1].iov_len);
	}
	return n;
}

/* Feed x one byte at a time when bytewise, else at once; returns bytes consumed. */
static size_t
feed(struct nbd_session *s, const struct bytes *x, bool bytewise)
{
	size_t used = 0;

	if (!bytewise)
		return nbd_session_input(s, x->b, x->n);
	for (size_t i = 0; i < x->n; i++)
		used += nbd_session_input(s, x->b + i, 1);
	return used;
}

static void
test_nbd_handshake(void)
{
	static uint8_t out[1 << 16];
	struct nbd_session s;
	struct fake f = {0};
	struct bytes x = {.n = 0};
	size_t n, at;

	nbd_session_init(&s, &g_info, &g_fake_ops, &f);
	n = drain(&s, out, sizeof(out));
	REQUIRE(n == 18);
	CHECK(memcmp(out, "NBDMAGICIHAVEOPT", 16) == 0);
	CHECK_EQ(g16(out + 16), 3); /* fixed newstyle, no zeroes */

	b32(&x, 3);
	opt(&x, 8, NULL, 0);	      /* STRUCTURED_REPLY */
	opt(&x, 3, NULL, 0);	      /* LIST */
	opt(&x, 42, NULL, 0);	      /* unknown: ERR_UNSUP, and we go on */
	opt_go(&x, 6, "nope", false); /* INFO on a name not served */
	opt_go(&x, 7, "vol", true);   /* GO */
	CHECK_EQ(feed(&s, &x, true), x.n);
	CHECK_EQ(s.state, NBD_S_REQUEST);
	CHECK_EQ(f.attached, 1);
	CHECK(s.structured);
	n = drain(&s, out, sizeof(out));
	/* ACK to STRUCTURED_REPLY */
	CHECK_EQ(g64(out), 0x3e889045565a9ull);
	CHECK_EQ(g32(out + 8), 8);
	CHECK_EQ(g32(out + 12), 1);
	at = 20;
	/* LIST: one SERVER reply naming "vol", then ACK */
	CHECK_EQ(g32(out + at + 12), 2);
	CHECK_EQ(g32(out + at + 20), 3);
	CHECK(memcmp(out + at + 24, "vol", 3) == 0);
	at += 27;
	CHECK_EQ(g32(out + at + 12), 1);
	at += 20;
	CHECK_EQ(g32(out + at + 8), 42);
	CHECK_EQ(g32(out + at + 12), 0x80000001u); /* ERR_UNSUP */
	at += 20;
	CHECK_EQ(g32(out + at + 12), 0x80000006u); /* ERR_UNKNOWN, with a message */
	at += 20 + g32(out + at + 16);
	/* GO: INFO_EXPORT (size, flags), INFO_NAME, INFO_BLOCK_SIZE, ACK */
	CHECK_EQ(g32(out + at + 12), 3);
	CHECK_EQ(g16(out + at + 20), 0);
	CHECK_EQ(g64(out + at + 22), 1u << 20);
	CHECK(g16(out + at + 30) & (1u << 8)); /* multi-conn */
	CHECK(g16(out + at + 30) & (1u << 7)); /* DF, since structured */
	at += 32;
	CHECK_EQ(g16(out + at + 20), 1);
	CHECK(memcmp(out + at + 22, "vol", 3) == 0);
	at += 25;
	CHECK_EQ(g16(out + at + 20), 3);
	CHECK_EQ(g32(out + at + 22), 512);
	CHECK_EQ(g32(out + at + 26), 65536);
	CHECK_EQ(g32(out + at + 30), NBD_MAX_PAYLOAD);
	at += 34;
	CHECK_EQ(g32(out + at + 12), 1);
	CHECK_EQ(n, at + 20);
	nbd_session_fini(&s);

	/* EXPORT_NAME "" (the default export), with and without the 124 zero bytes. */
	for (int nz = 0; nz < 2; nz++) {
		nbd_session_init(&s, &g_info, &g_fake_ops, &f);
		drain(&s, out, sizeof(out));
		x.n = 0;
		b32(&x, nz ? 3 : 1);
		opt(&x, 1, NULL, 0);
		feed(&s, &x, false);
		CHECK_EQ(s.state, NBD_S_REQUEST);
		n = drain(&s, out, sizeof(out));
		CHECK_EQ(n, nz ? 10 : 134);
		CHECK_EQ(g64(out), 1u << 20);
		nbd_session_fini(&s);
	}
	/* What closes the connection: unknown client flags, EXPORT_NAME of another export, a
	 * bad option magic. ABORT is answered, then closes. */
	for (int k = 0; k < 4; k++) {
		nbd_session_init(&s, &g_info, &g_fake_ops, &f);
		drain(&s, out, sizeof(out));
		x.n = 0;
		b32(&x, k == 0 ? 0x10 : 1);
		if (k == 1)
			opt(&x, 1, "other", 5);
		if (k == 2) {
			b64(&x, 0x1234);
			b64(&x, 0);
		}
		if (k == 3)
			opt(&x, 2, NULL, 0);
		feed(&s, &x, false);
		CHECK_EQ(s.state, k == 3 ? NBD_S_CLOSE_AFTER : NBD_S_CLOSE);
		CHECK(nbd_session_busy(&s));
		n = drain(&s, out, sizeof(out));
		CHECK_EQ(n, k == 3 ? 20 : 0);
		nbd_session_fini(&s);
	}
}

/* A session in transmission (structured replies on or off). */
static void
start_session(struct nbd_session *s, struct fake *f, bool structured)
{
	static uint8_t out[4096];
	struct bytes x = {.n = 0};

	memset(f, 0, sizeof(*f));
	nbd_session_init(s, &g_info, &g_fake_ops, f);
	b32(&x, 3);
	if (structured)
		opt(&x, 8, NULL, 0);
	opt_go(&x, 7, "", false);
	feed(s, &x, false);
	drain(s, out, sizeof(out));
}

static void
check_simple(const uint8_t *p, uint32_t err, uint64_t cookie)
{
	CHECK_EQ(g32(p), 0x67446698u);
	CHECK_EQ(g32(p + 4), err);
	CHECK_EQ(g64(p + 8), cookie);
}

static void
check_error_chunk(const uint8_t *p, uint32_t err, uint64_t cookie)
{
	CHECK_EQ(g32(p), 0x668e33efu);
	CHECK_EQ(g16(p + 4), 1);      /* DONE */
	CHECK_EQ(g16(p + 6), 0x8001); /* ERROR */
	CHECK_EQ(g64(p + 8), cookie);
	CHECK_EQ(g32(p + 16), 6);
	CHECK_EQ(g32(p + 20), err);
}

static void
test_nbd_requests(void)
{
	static uint8_t out[1 << 16];
	static struct bytes x;
	struct nbd_session s;
	struct fake f;
	size_t n;

	for (int bytewise = 0; bytewise < 2; bytewise++) {
		start_session(&s, &f, true);
		x.n = 0;
		request(&x, 1, 1, 100, 4096, 1024); /* WRITE, FUA */
		memset(x.b + x.n, 0x5a, 1024);
		x.n += 1024;
		request(&x, 0, 0, 101, 4096, 512);     /* READ */
		request(&x, 0, 0, 102, 1, 512);	       /* unaligned */
		request(&x, 1, 0, 103, 1u << 20, 512); /* WRITE past the end */
		memset(x.b + x.n, 0x77, 512);	       /* ...its payload */
		x.n += 512;
		request(&x, 9, 0, 104, 0, 512);			  /* unknown command */
		request(&x, 0, 1, 105, 0, 512);			  /* FUA on a READ */
		request(&x, 1, 0, 106, 0, NBD_MAX_PAYLOAD + 512); /* oversize WRITE... */
		CHECK_EQ(feed(&s, &x, bytewise), x.n);
		CHECK_EQ(s.state, NBD_S_DISCARD); /* ...whose payload is being consumed */
		/* The refused requests were answered without reaching the server. */
		CHECK_EQ(f.nreqs, 2);
		n = drain(&s, out, sizeof(out));
		/* Refused READs get ERROR chunks (never simple replies once structured). */
		REQUIRE(n == 26 + 16 + 16 + 26);
		check_error_chunk(out, 22, 102);
		check_simple(out + 26, 28, 103); /* ENOSPC */
		check_simple(out + 42, 22, 104);
		check_error_chunk(out + 58, 22, 105);
		/* the oversize payload, then a FLUSH parses in step */
		for (uint32_t left = NBD_MAX_PAYLOAD + 512; left > 0;) {
			uint32_t k = left < sizeof(x.b) ? left : sizeof(x.b);

			memset(x.b, 0, k);
			x.n = k;
			CHECK_EQ(feed(&s, &x, false), k);
			left -= k;
		}
		x.n = 0;
		request(&x, 3, 0, 107, 0, 0);
		CHECK_EQ(feed(&s, &x, bytewise), x.n);
		n = drain(&s, out, sizeof(out));
		REQUIRE(n == 16);
		check_simple(out, 22, 106);
		REQUIRE(f.nreqs == 3);
		CHECK_EQ(f.reqs[0]->type, NBD_CMD_WRITE);
		CHECK_EQ(f.reqs[0]->flags, NBD_CMD_FLAG_FUA);
		CHECK_EQ(f.reqs[0]->offset, 4096);
		CHECK(f.reqs[0]->data[0] == 0x5a && f.reqs[0]->data[1023] == 0x5a);
		CHECK_EQ(f.reqs[2]->type, NBD_CMD_FLUSH);
		/* Complete out of order: the read (a structured chunk with its data), a failing
		 * flush (simple), the write. */
		memset(f.reqs[1]->data, 0xc3, 512);
		nbd_request_done(f.reqs[1], 0);
		nbd_request_done(f.reqs[2], -EIO);
		nbd_request_done(f.reqs[0], 0);
		n = drain(&s, out, sizeof(out));
		REQUIRE(n == 28 + 512 + 16 + 16);
		CHECK_EQ(g32(out), 0x668e33efu);
		CHECK_EQ(g16(out + 4), 1); /* DONE */
		CHECK_EQ(g16(out + 6), 1); /* OFFSET_DATA */
		CHECK_EQ(g64(out + 8), 101);
		CHECK_EQ(g32(out + 16), 8 + 512);
		CHECK_EQ(g64(out + 20), 4096);
		CHECK(out[28] == 0xc3 && out[28 + 511] == 0xc3);
		check_simple(out + 540, 5, 107);
		check_simple(out + 556, 0, 100);
		CHECK_EQ(s.inflight, 0);
		/* A failing READ is an ERROR chunk; DISC closes after what is in flight. */
		x.n = 0;
		request(&x, 0, 0, 108, 0, 512);
		request(&x, 2, 0, 0, 0, 0);
		request(&x, 0, 0, 109, 0, 512); /* after DISC: not read */
		feed(&s, &x, bytewise);
		CHECK_EQ(s.state, NBD_S_CLOSE_AFTER);
		REQUIRE(f.nreqs == 4);
		nbd_request_done(f.reqs[3], -EIO);
		n = drain(&s, out, sizeof(out));
		REQUIRE(n == 26);
		check_error_chunk(out, 5, 108);
		nbd_session_fini(&s);
	}
	/* Without structured replies a READ is a simple reply followed by the data; a bad
	 * request magic closes. */
	start_session(&s, &f, false);
	x.n = 0;
	request(&x, 0, 0, 7, 0, 512);
	feed(&s, &x, false);
	REQUIRE(f.nreqs == 1);
	nbd_request_done(f.reqs[0], 0);
	n = drain(&s, out, sizeof(out));
	CHECK_EQ(n, 16 + 512);
	check_simple(out, 0, 7);
	x.n = 0;
	b32(&x, 0xdeadbeef);
	memset(x.b + 4, 0, 24);
	x.n = 28;
	feed(&s, &x, false);
	CHECK_EQ(s.state, NBD_S_CLOSE);
	nbd_session_fini(&s);
}

/* Input stops at NBD_MAX_INFLIGHT requests and resumes as they complete. */
static void
test_nbd_flow_control(void)
{
	static uint8_t out[1 << 16];
	static struct bytes x;
	struct nbd_session s;
	struct fake f;
	size_t used;

	start_session(&s, &f, true);
	x.n = 0;
	for (unsigned i = 0; i < NBD_MAX_INFLIGHT + 4; i++)
		request(&x, 3, 0, i, 0, 0);
	used = nbd_session_input(&s, x.b, x.n);
	CHECK_EQ(used, NBD_MAX_INFLIGHT * 28);
	CHECK(nbd_session_busy(&s));
	CHECK_EQ(f.nreqs, NBD_MAX_INFLIGHT);
	nbd_request_done(f.reqs[0], 0);
	CHECK(!nbd_session_busy(&s));
	used += nbd_session_input(&s, x.b + used, x.n - used);
	CHECK_EQ(used, (NBD_MAX_INFLIGHT + 1) * 28);
	for (unsigned i = 1; i < f.nreqs; i++)
		nbd_request_done(f.reqs[i], 0);
	used += nbd_session_input(&s, x.b + used, x.n - used);
	CHECK_EQ(used, x.n);
	for (unsigned i = NBD_MAX_INFLIGHT + 1; i < f.nreqs; i++)
		nbd_request_done(f.reqs[i], 0);
	CHECK_EQ(s.inflight, 0);
	CHECK_EQ(drain(&s, out, sizeof(out)), (NBD_MAX_INFLIGHT + 4) * 16);
	nbd_session_fini(&s);
}

/* --- the server, on reactor threads --- */

static void
mark_done(struct rpc_request *req UNUSED, void *ctx)
{
	atomic_store((_Atomic bool *)ctx, true);
}

/* Run an RPC to completion; its error code (0 = success). */
static int
rpc(const char *method, const char *params_text, char *msg, size_t msg_len)
{
	struct rpc_request req = {0};
	json_t *params = params_text ? json_loads(params_text, 0, NULL) : NULL;
	_Atomic bool done = false;

	req.done_cb = mark_done;
	req.done_ctx = &done;
	rpc_call(&req, method, params);
	uraid_runtime_wait(&done);
	json_decref(params);
	json_decref(req.result);
	if (msg != NULL)
		snprintf(msg, msg_len, "%s", req.err_msg);
	return req.err_code;
}

static int
connect_unix(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read exactly len bytes (5 s at most); false on EOF, error or timeout. */
static bool
read_full(int fd, void *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	size_t got = 0;

	while (got < len) {
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			return false;
		n = read(fd, (uint8_t *)buf + got, len - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* True once the server closed fd (EOF within 5 s). */
static bool
closed_by_server(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	for (;;) {
		if (poll(&p, 1, 5000) <= 0)
			return false;
		if (read(fd, &c, 1) <= 0)
			return true;
	}
}

static int
client_open(const char *path)
{
	static uint8_t greet[18 + 10];
	struct bytes x = {.n = 0};
	int fd = connect_unix(path);

	if (fd < 0)
		return -1;
	b32(&x, 3);
	opt(&x, 1, "vol", 3); /* EXPORT_NAME */
	if (!read_full(fd, greet, 18) || write(fd, x.b, x.n) != (ssize_t)x.n ||
	    !read_full(fd, greet, 10) || g64(greet) != 1u << 20) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
test_nbd_server(void)
{
	static struct bytes x;
	static uint8_t buf[64 * 4096 + 4096];
	struct uraid_runtime_opts o = {.num_reactors = 2};
	char dir[] = "/tmp/uraid-nbd-XXXXXX", sock[128], params[256], msg[512];
	int a, b;

	REQUIRE(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/nbd.sock", dir);
	REQUIRE(uraid_runtime_start(&o) == 0);
	REQUIRE(rpc("bdev_malloc_create",
		    "{\"name\":\"vol\",\"num_blocks\":2048,\"block_size\":512}", NULL, 0) == 0);
	/* Refused: no such bdev, a bad TCP port, a bdev claimed by an array. */
	CHECK(rpc("nbd_start_disk", "{\"bdev_name\":\"nope\",\"nbd_device\":\"/tmp/x.sock\"}", msg,
		  sizeof(msg)) != 0);
	CHECK(strstr(msg, "no bdev named nope") != NULL);
	CHECK(rpc("nbd_start_disk", "{\"bdev_name\":\"vol\",\"nbd_device\":\"127.0.0.1:99999\"}",
		  msg, sizeof(msg)) != 0);
	CHECK(strstr(msg, "port") != NULL);
	CHECK(rpc("nbd_start_disk", "{\"bdev_name\":3}", NULL, 0) == RPC_INVALID_PARAMS);
	snprintf(params, sizeof(params), "{\"bdev_name\":\"vol\",\"nbd_device\":\"%s\"}", sock);
	REQUIRE(rpc("nbd_start_disk", params, NULL, 0) == 0);
	CHECK(rpc("nbd_start_disk", params, msg, sizeof(msg)) != 0); /* the same device twice */
	CHECK(strstr(msg, "already exports") != NULL);

	a = client_open(sock);
	b = client_open(sock);
	REQUIRE(a >= 0 && b >= 0);
	/* 64 pipelined 4 KiB writes, then 64 reads, on connection a. */
	x.n = 0;
	for (int i = 0; i < 64; i++) {
		request(&x, 1, 0, (uint64_t)i, (uint64_t)i * 4096, 4096);
		memset(x.b + x.n, i + 1, 4096);
		x.n += 4096;
		if (x.n > sizeof(x.b) - 4200) {
			CHECK_EQ(write(a, x.b, x.n), (ssize_t)x.n);
			x.n = 0;
		}
	}
	CHECK_EQ(write(a, x.b, x.n), (ssize_t)x.n);
	for (int i = 0; i < 64; i++) {
		REQUIRE(read_full(a, buf, 16));
		CHECK_EQ(g32(buf + 4), 0);
	}
	/* Garbage on b closes b, and only b. */
	CHECK_EQ(write(b, "GET / HTTP/1.1\r\n\r\n----------", 28), 28);
	CHECK(closed_by_server(b));
	close(b);
	x.n = 0;
	for (int i = 0; i < 64; i++)
		request(&x, 0, 0, 1000u + (uint64_t)i, (uint64_t)i * 4096, 4096);
	CHECK_EQ(write(a, x.b, x.n), (ssize_t)x.n);
	for (int i = 0; i < 64; i++) {
		uint64_t cookie;

		REQUIRE(read_full(a, buf, 16 + 4096));
		CHECK_EQ(g32(buf + 4), 0);
		cookie = g64(buf + 8);
		REQUIRE(cookie >= 1000 && cookie < 1064);
		CHECK(buf[16] == (uint8_t)(cookie - 1000 + 1) && buf[16 + 4095] == buf[16]);
	}
	/* Stopping the export closes a; the socket file is gone. */
	snprintf(params, sizeof(params), "{\"nbd_device\":\"%s\"}", sock);
	CHECK_EQ(rpc("nbd_stop_disk", params, NULL, 0), 0);
	CHECK(closed_by_server(a));
	close(a);
	CHECK(access(sock, F_OK) != 0);
	CHECK(rpc("nbd_stop_disk", params, NULL, 0) != 0);
	/* Deleting an exported bdev stops its export first. */
	snprintf(params, sizeof(params), "{\"bdev_name\":\"vol\",\"nbd_device\":\"%s\"}", sock);
	REQUIRE(rpc("nbd_start_disk", params, NULL, 0) == 0);
	a = client_open(sock);
	CHECK(a >= 0);
	CHECK_EQ(rpc("bdev_malloc_delete", "{\"name\":\"vol\"}", NULL, 0), 0);
	CHECK(closed_by_server(a));
	close(a);
	CHECK(rpc("nbd_get_disks", NULL, NULL, 0) == 0);
	nbd_stop_all();
	uraid_runtime_stop();
	rmdir(dir);
}

/* Option replies in out[0, n): the reply type of the k-th (0-based). */
static uint32_t
reply_type(const uint8_t *out, size_t n, unsigned k)
{
	size_t at = 0;

	for (unsigned i = 0; at + 20 <= n; i++) {
		if (i == k)
			return g32(out + at + 12);
		at += 20 + g32(out + at + 16);
	}
	return 0;
}

static void
test_nbd_starttls(void)
{
	static uint8_t out[1 << 16];
	struct nbd_export_info info = g_info;
	struct nbd_session s;
	struct fake f = {0};
	struct bytes x = {.n = 0};
	size_t n;

	/* Not set up: STARTTLS is refused and the session goes on in the clear. */
	nbd_session_init(&s, &info, &g_fake_ops, &f);
	drain(&s, out, sizeof(out));
	b32(&x, 3);
	opt(&x, 5, NULL, 0);
	opt(&x, 3, NULL, 0);
	CHECK_EQ(feed(&s, &x, false), x.n);
	n = drain(&s, out, sizeof(out));
	CHECK_EQ(reply_type(out, n, 0), 0x80000001u); /* ERR_UNSUP */
	CHECK_EQ(reply_type(out, n, 1), 2u);	      /* LIST goes on: SERVER */
	nbd_session_fini(&s);

	/* Required: nothing but STARTTLS and ABORT before TLS. */
	info.tls = NBD_TLS_REQUIRE;
	nbd_session_init(&s, &info, &g_fake_ops, &f);
	drain(&s, out, sizeof(out));
	x.n = 0;
	b32(&x, 3);
	opt(&x, 3, NULL, 0);		     /* LIST */
	opt_go(&x, 6, "vol", false);	     /* INFO */
	opt_go(&x, 7, "vol", false);	     /* GO */
	opt(&x, 5, "x", 1);		     /* STARTTLS with data */
	opt(&x, 5, NULL, 0);		     /* STARTTLS */
	bmem(&x, "\x16\x03\x01\x00\x05", 5); /* a ClientHello's first bytes: not parsed */
	n = feed(&s, &x, true);
	CHECK_EQ(n, x.n - 5);
	CHECK_EQ(s.state, NBD_S_STARTTLS);
	CHECK(nbd_session_busy(&s));
	CHECK_EQ(f.attached, 0);
	n = drain(&s, out, sizeof(out));
	CHECK_EQ(reply_type(out, n, 0), 0x80000005u); /* ERR_TLS_REQD */
	CHECK_EQ(reply_type(out, n, 1), 0x80000005u);
	CHECK_EQ(reply_type(out, n, 2), 0x80000005u);
	CHECK_EQ(reply_type(out, n, 3), 0x80000003u); /* ERR_INVALID */
	CHECK_EQ(reply_type(out, n, 4), 1u);	      /* ACK */
	CHECK(memmem(out, n, "vol", 3) == NULL);      /* no export named in the clear */
	CHECK_EQ(nbd_session_input(&s, x.b + x.n - 5, 5), 0);

	/* The handshake done: options go on, a second STARTTLS is refused. */
	nbd_session_tls_started(&s);
	CHECK(s.tls_active);
	x.n = 0;
	opt(&x, 5, NULL, 0);
	opt_go(&x, 7, "vol", false);
	CHECK_EQ(feed(&s, &x, false), x.n);
	CHECK_EQ(s.state, NBD_S_REQUEST);
	CHECK_EQ(f.attached, 1);
	n = drain(&s, out, sizeof(out));
	CHECK_EQ(reply_type(out, n, 0), 0x80000003u);
	nbd_session_fini(&s);

	/* Required, and EXPORT_NAME (which cannot be refused) in the clear: closed. */
	nbd_session_init(&s, &info, &g_fake_ops, &f);
	drain(&s, out, sizeof(out));
	x.n = 0;
	b32(&x, 3);
	opt(&x, 1, "vol", 3);
	feed(&s, &x, false);
	CHECK_EQ(s.state, NBD_S_CLOSE);
	CHECK_EQ(f.attached, 1);
	nbd_session_fini(&s);
}

/* Payload buffers come back to the session and are handed out again, within its bounds. */
static void
test_nbd_buffer_cache(void)
{
	static uint8_t out[1 << 20];
	static struct bytes x;
	struct nbd_session s;
	struct fake f;

	start_session(&s, &f, false);
	x.n = 0;
	for (unsigned i = 0; i < 24; i++)
		request(&x, 0, 0, i, (uint64_t)i * 4096, 4096); /* READs of 4 KiB */
	CHECK_EQ(feed(&s, &x, false), x.n);
	REQUIRE(f.nreqs == 24);
	for (unsigned i = 0; i < 24; i++)
		nbd_request_done(f.reqs[i], 0);
	drain(&s, out, sizeof(out));
	CHECK_EQ(s.ncache, NBD_BUF_CACHE); /* 24 freed, 16 kept */
	CHECK_EQ(s.cache_bytes, NBD_BUF_CACHE * 4096u);
	x.n = 0;
	f.nreqs = 0;
	request(&x, 0, 0, 99, 0, 3000 & ~511u); /* same size class: a kept buffer */
	CHECK_EQ(feed(&s, &x, false), x.n);
	REQUIRE(f.nreqs == 1);
	CHECK_EQ(s.ncache, NBD_BUF_CACHE - 1);
	CHECK(f.reqs[0]->data != NULL);
	nbd_request_done(f.reqs[0], 0);
	drain(&s, out, sizeof(out));
	CHECK_EQ(s.ncache, NBD_BUF_CACHE);

	/* Large ones stay within the byte bound: 512 KiB buffers, at most 16 MiB kept. */
	x.n = 0;
	f.nreqs = 0;
	for (unsigned i = 0; i < 2; i++)
		request(&x, 0, 0, 200 + i, 0, 512u << 10);
	CHECK_EQ(feed(&s, &x, false), x.n);
	REQUIRE(f.nreqs == 2);
	for (unsigned i = 0; i < 2; i++)
		nbd_request_done(f.reqs[i], 0);
	drain(&s, out, sizeof(out));
	CHECK(s.cache_bytes <= NBD_BUF_CACHE_BYTES);
	CHECK(s.ncache <= NBD_BUF_CACHE);
	nbd_session_fini(&s); /* frees what is kept (ASan: nothing leaks) */
	CHECK_EQ(s.ncache, 0);
}

TEST_MAIN(TEST(test_nbd_handshake), TEST(test_nbd_starttls), TEST(test_nbd_buffer_cache),
	  TEST(test_nbd_requests), TEST(test_nbd_flow_control), TEST(test_nbd_server))
