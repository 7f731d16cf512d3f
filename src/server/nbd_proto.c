/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NBD protocol, without sockets or bdevs: a session turns received bytes into option
 * replies and validated requests, and completed requests into replies. nbd.c moves the bytes
 * and runs the requests; the fuzz target drives this file alone.
 *
 * Handshake: fixed newstyle only. The server greets with NBDMAGIC, IHAVEOPT and its handshake
 * flags; the client answers with its flags; then options until NBD_OPT_GO or
 * NBD_OPT_EXPORT_NAME starts transmission. Options served: EXPORT_NAME, ABORT, LIST, INFO, GO,
 * STRUCTURED_REPLY, STARTTLS; any other option is answered NBD_REP_ERR_UNSUP, so a client can
 * go on. STARTTLS (when the server has TLS set up) is acknowledged and the session then parses
 * nothing until the connection has run the TLS handshake (NBD_S_STARTTLS); when TLS is
 * required, every option before it but ABORT is refused with NBD_REP_ERR_TLS_REQD (and
 * EXPORT_NAME, which cannot be refused, closes), so nothing about the exports is seen in the
 * clear.
 *
 * Transmission: requests are parsed back to back (pipelined) and validated here: range,
 * alignment to the export's block size, payload limits, flags allowed for the command. A
 * refused WRITE's payload is consumed so the stream stays in step. Replies are simple, except
 * READ once structured replies are negotiated (one OFFSET_DATA chunk, or an ERROR chunk).
 *
 * Anything that breaks the protocol's framing (a bad magic, unknown client flags, an export
 * that EXPORT_NAME cannot serve) puts the session in NBD_S_CLOSE: that connection closes, and
 * nothing else is affected. All numbers on the wire are big-endian.
 */
#include <endian.h>
#include <stdlib.h>

#include "rpc.h"

#define NBD_MAGIC	   0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_IHAVEOPT	   0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_REP_MAGIC	   0x0003e889045565a9ull
#define NBD_REQUEST_MAGIC  0x25609513u
#define NBD_SIMPLE_MAGIC   0x67446698u
#define NBD_STRUCTURED_MAG 0x668e33efu

#define NBD_FLAG_FIXED_NEWSTYLE	  (1u << 0)
#define NBD_FLAG_NO_ZEROES	  (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES	  (1u << 1)

#define NBD_FLAG_HAS_FLAGS	   (1u << 0)
#define NBD_FLAG_READ_ONLY	   (1u << 1)
#define NBD_FLAG_SEND_FLUSH	   (1u << 2)
#define NBD_FLAG_SEND_FUA	   (1u << 3)
#define NBD_FLAG_SEND_TRIM	   (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF	   (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN	   (1u << 8)

enum {
	NBD_OPT_EXPORT_NAME = 1,
	NBD_OPT_ABORT = 2,
	NBD_OPT_LIST = 3,
	NBD_OPT_STARTTLS = 5,
	NBD_OPT_INFO = 6,
	NBD_OPT_GO = 7,
	NBD_OPT_STRUCTURED_REPLY = 8,
};

#define NBD_REP_ACK	     1u
#define NBD_REP_SERVER	     2u
#define NBD_REP_INFO	     3u
#define NBD_REP_ERR(n)	     ((1u << 31) | (n))
#define NBD_REP_ERR_UNSUP    NBD_REP_ERR(1)
#define NBD_REP_ERR_TLS_REQD NBD_REP_ERR(5)
#define NBD_REP_ERR_INVALID  NBD_REP_ERR(3)
#define NBD_REP_ERR_UNKNOWN  NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN NBD_REP_ERR(7)
#define NBD_REP_ERR_TOO_BIG  NBD_REP_ERR(9)

#define NBD_INFO_EXPORT	    0
#define NBD_INFO_NAME	    1
#define NBD_INFO_BLOCK_SIZE 3

#define NBD_REPLY_FLAG_DONE	   (1u << 0)
#define NBD_REPLY_TYPE_OFFSET_DATA 1u
#define NBD_REPLY_TYPE_ERROR	   ((1u << 15) | 1u)

/* Option data beyond this is consumed and refused with NBD_REP_ERR_TOO_BIG (names are at most
 * 4096 bytes, so no valid option comes near it). */
#define NBD_OPT_MAX  8192
#define NBD_NAME_MAX 4096
/* Output queued beyond this stops input until the client reads its replies. */
#define NBD_OUT_LIMIT (64u << 20)

static void
put16(uint8_t *p, uint16_t v)
{
	v = htobe16(v);
	memcpy(p, &v, 2);
}

static void
put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static void
put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static uint16_t
get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return be16toh(v);
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static void
session_fail(struct nbd_session *s, const char *why)
{
	s->state = NBD_S_CLOSE;
	snprintf(s->why, sizeof(s->why), "%s", why);
}

static void
queue_out(struct nbd_session *s, struct nbd_out *out)
{
	STAILQ_INSERT_TAIL(&s->out, out, link);
	s->out_bytes += out->iov[0].iov_len + out->iov[1].iov_len;
}

static void
free_block(struct nbd_out *out)
{
	free(out);
}

/* Queue len bytes (copied) as one piece of output; returns where they were copied to. */
static uint8_t *
queue_bytes(struct nbd_session *s, const void *data, size_t len)
{
	struct nbd_out *out = malloc(sizeof(*out) + len);

	if (out == NULL) {
		session_fail(s, "out of memory");
		return NULL;
	}
	memset(out, 0, sizeof(*out));
	if (data != NULL)
		memcpy(out + 1, data, len);
	out->iov[0].iov_base = out + 1;
	out->iov[0].iov_len = len;
	out->free_fn = free_block;
	queue_out(s, out);
	return (uint8_t *)(out + 1);
}

static void
opt_reply(struct nbd_session *s, uint32_t type, const void *data, size_t len)
{
	uint8_t *p = queue_bytes(s, NULL, 20 + len);

	if (p == NULL)
		return;
	put64(p, NBD_REP_MAGIC);
	put32(p + 8, s->opt);
	put32(p + 12, type);
	put32(p + 16, (uint32_t)len);
	if (len != 0)
		memcpy(p + 20, data, len);
}

/* An error reply carrying a message for the person at the client. */
static void
opt_error(struct nbd_session *s, uint32_t type, const char *msg)
{
	opt_reply(s, type, msg, strlen(msg));
}

static uint16_t
transmission_flags(const struct nbd_session *s)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		     NBD_FLAG_CAN_MULTI_CONN;

	if (s->info.read_only)
		f |= NBD_FLAG_READ_ONLY;
	if (s->info.can_trim)
		f |= NBD_FLAG_SEND_TRIM;
	if (s->info.can_zeroes)
		f |= NBD_FLAG_SEND_WRITE_ZEROES;
	if (s->structured)
		f |= NBD_FLAG_SEND_DF; /* a READ is always one chunk */
	return f;
}

/* "" names the default export; otherwise the name must be the export's. */
static bool
name_matches(const struct nbd_session *s, const uint8_t *name, uint32_t len)
{
	return len == 0 || (len == strlen(s->info.name) && memcmp(name, s->info.name, len) == 0);
}

static void
start_transmission(struct nbd_session *s)
{
	s->state = NBD_S_REQUEST;
	s->hdr_fill = 0;
}

static void
opt_export_name(struct nbd_session *s)
{
	uint8_t reply[8 + 2 + 124] = {0};

	if (!name_matches(s, s->opt_data, s->opt_len)) {
		session_fail(s, "NBD_OPT_EXPORT_NAME names an export that is not served here");
		return;
	}
	if (s->ops->attach(s->ctx) != 0) {
		session_fail(s, "the export is going away");
		return;
	}
	put64(reply, s->info.size);
	put16(reply + 8, transmission_flags(s));
	queue_bytes(s, reply, s->no_zeroes ? 10 : sizeof(reply));
	start_transmission(s);
}

static void
opt_list(struct nbd_session *s)
{
	size_t len = strlen(s->info.name);
	uint8_t rep[4 + sizeof(s->info.name)];

	if (s->opt_len != 0) {
		opt_error(s, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
		return;
	}
	put32(rep, (uint32_t)len);
	memcpy(rep + 4, s->info.name, len);
	opt_reply(s, NBD_REP_SERVER, rep, 4 + len);
	opt_reply(s, NBD_REP_ACK, NULL, 0);
}

static void
opt_info_go(struct nbd_session *s)
{
	const uint8_t *d = s->opt_data;
	uint32_t name_len, nreq;
	uint8_t rep[4 + 2 + sizeof(s->info.name)];
	bool want_name = false, ok = s->opt_len >= 6;
	char msg[160];

	/* name length, name, number of info requests, the requests (16 bits each) */
	name_len = ok ? get32(d) : 0;
	ok = ok && name_len <= s->opt_len - 6;
	nreq = ok ? get16(d + 4 + name_len) : 0;
	if (!ok || 6ull + name_len + 2ull * nreq != s->opt_len) {
		opt_error(s, NBD_REP_ERR_INVALID, "malformed NBD_OPT_INFO/NBD_OPT_GO data");
		return;
	}
	if (!name_matches(s, d + 4, name_len)) {
		snprintf(msg, sizeof(msg), "no such export; this server exports '%s' (or \"\")",
			 s->info.name);
		opt_error(s, NBD_REP_ERR_UNKNOWN, msg);
		return;
	}
	for (uint32_t i = 0; i < nreq; i++)
		want_name |= get16(d + 6 + name_len + 2 * i) == NBD_INFO_NAME;
	if (s->opt == NBD_OPT_GO && s->ops->attach(s->ctx) != 0) {
		opt_error(s, NBD_REP_ERR_SHUTDOWN, "the export is going away");
		return;
	}
	put16(rep, NBD_INFO_EXPORT);
	put64(rep + 2, s->info.size);
	put16(rep + 10, transmission_flags(s));
	opt_reply(s, NBD_REP_INFO, rep, 12);
	if (want_name) {
		size_t len = strlen(s->info.name);

		put16(rep, NBD_INFO_NAME);
		memcpy(rep + 2, s->info.name, len);
		opt_reply(s, NBD_REP_INFO, rep, 2 + len);
	}
	/* Always sent: requests must be aligned to the block size. */
	put16(rep, NBD_INFO_BLOCK_SIZE);
	put32(rep + 2, s->info.block_size);
	put32(rep + 6, s->info.pref_block_size);
	put32(rep + 10, NBD_MAX_PAYLOAD);
	opt_reply(s, NBD_REP_INFO, rep, 14);
	opt_reply(s, NBD_REP_ACK, NULL, 0);
	if (s->opt == NBD_OPT_GO)
		start_transmission(s);
}

/* NBD_OPT_STARTTLS: acknowledged, then the connection takes over the socket for the TLS
 * handshake (nothing more is parsed until it is done). */
static void
opt_starttls(struct nbd_session *s)
{
	if (s->info.tls == NBD_TLS_OFF) {
		opt_error(s, NBD_REP_ERR_UNSUP, "TLS is not set up on this server");
		return;
	}
	if (s->opt_len != 0) {
		opt_error(s, NBD_REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data");
		return;
	}
	if (s->tls_active) {
		opt_error(s, NBD_REP_ERR_INVALID, "TLS is already on");
		return;
	}
	opt_reply(s, NBD_REP_ACK, NULL, 0);
	s->state = NBD_S_STARTTLS;
}

/* TLS is required and not on yet: refuse every option but STARTTLS and ABORT, telling nothing
 * about the exports, not even their names. True if this one was refused. */
static bool
refused_before_tls(struct nbd_session *s)
{
	if (s->info.tls != NBD_TLS_REQUIRE || s->tls_active || s->opt == NBD_OPT_STARTTLS ||
	    s->opt == NBD_OPT_ABORT)
		return false;
	if (s->opt == NBD_OPT_EXPORT_NAME)
		session_fail(s, "NBD_OPT_EXPORT_NAME without TLS, which this server requires");
	else
		opt_error(s, NBD_REP_ERR_TLS_REQD, "this server requires TLS");
	return true;
}

static void
serve_option(struct nbd_session *s)
{
	switch (s->opt) {
	case NBD_OPT_EXPORT_NAME:
		opt_export_name(s);
		break;
	case NBD_OPT_ABORT:
		opt_reply(s, NBD_REP_ACK, NULL, 0);
		s->state = NBD_S_CLOSE_AFTER;
		snprintf(s->why, sizeof(s->why), "the client ended the handshake");
		break;
	case NBD_OPT_LIST:
		opt_list(s);
		break;
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		opt_info_go(s);
		break;
	case NBD_OPT_STRUCTURED_REPLY:
		if (s->opt_len != 0) {
			opt_error(s, NBD_REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
			break;
		}
		s->structured = true;
		opt_reply(s, NBD_REP_ACK, NULL, 0);
		break;
	case NBD_OPT_STARTTLS:
		opt_starttls(s);
		break;
	default:
		opt_reply(s, NBD_REP_ERR_UNSUP, NULL, 0);
		break;
	}
}

static void
handle_option(struct nbd_session *s)
{
	if (!refused_before_tls(s))
		serve_option(s);
	free(s->opt_data);
	s->opt_data = NULL;
}

static void
option_header(struct nbd_session *s)
{
	s->hdr_fill = 0;
	if (get64(s->hdr) != NBD_IHAVEOPT) {
		session_fail(s, "bad option magic");
		return;
	}
	s->opt = get32(s->hdr + 8);
	s->opt_len = get32(s->hdr + 12);
	if (s->opt_len > NBD_OPT_MAX) {
		if (s->opt == NBD_OPT_EXPORT_NAME) {
			session_fail(s, "NBD_OPT_EXPORT_NAME with an oversize name");
			return;
		}
		s->discard = s->opt_len;
		s->state = NBD_S_DISCARD;
		return;
	}
	s->opt_fill = 0;
	s->opt_data = malloc(s->opt_len + 1u);
	if (s->opt_data == NULL) {
		session_fail(s, "out of memory");
		return;
	}
	s->state = NBD_S_OPTION_DATA;
	if (s->opt_len == 0) {
		s->state = NBD_S_OPTION;
		handle_option(s);
	}
}

static void
client_flags(struct nbd_session *s)
{
	uint32_t flags = get32(s->hdr);

	s->hdr_fill = 0;
	if (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
		session_fail(s, "unknown client flags");
		return;
	}
	s->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
	s->state = NBD_S_OPTION;
}

/* NBD error numbers are Linux's for the values the protocol names. */
static uint32_t
nbd_errno(int status)
{
	switch (-status) {
	case 0:
		return 0;
	case EPERM:
	case EIO:
	case ENOMEM:
	case EINVAL:
	case ENOSPC:
	case EOVERFLOW:
	case ENOTSUP:
	case ESHUTDOWN:
		return (uint32_t)-status;
	default:
		return EIO;
	}
}

/* Payload buffers: sizes rounded up to a power of two (at least 4 KiB), kept by the session
 * for the requests after (see NBD_BUF_CACHE). */
static uint32_t
buf_class(uint32_t len)
{
	uint32_t c = 4096;

	while (c < len && c < NBD_MAX_PAYLOAD)
		c <<= 1;
	return c < len ? len : c; /* (larger ones are refused before any buffer) */
}

static void *
buf_get(struct nbd_session *s, uint32_t len)
{
	uint32_t c = buf_class(len);
	void *p;

	for (unsigned i = 0; i < s->ncache; i++) {
		if (s->cache_size[i] == c) {
			p = s->cache[i];
			s->cache_bytes -= c;
			s->ncache--;
			s->cache[i] = s->cache[s->ncache];
			s->cache_size[i] = s->cache_size[s->ncache];
			return p;
		}
	}
	return posix_memalign(&p, 4096, c) == 0 ? p : NULL;
}

static void
buf_put(struct nbd_session *s, void *p, uint32_t len)
{
	uint32_t c;

	if (p == NULL)
		return;
	c = buf_class(len);
	if (s->ncache == NBD_BUF_CACHE || s->cache_bytes + c > NBD_BUF_CACHE_BYTES) {
		free(p);
		return;
	}
	s->cache[s->ncache] = p;
	s->cache_size[s->ncache++] = c;
	s->cache_bytes += c;
}

static void
request_free(struct nbd_out *out)
{
	struct nbd_request *req = container_of(out, struct nbd_request, out);

	buf_put(req->session, req->data, req->length);
	free(req);
}

void
nbd_request_done(struct nbd_request *req, int status)
{
	struct nbd_session *s = req->session;
	uint32_t err = nbd_errno(status);
	uint8_t *h = req->reply;

	memset(req->out.iov, 0, sizeof(req->out.iov));
	req->out.iov[0].iov_base = h;
	if (req->type == NBD_CMD_READ && s->structured) {
		put32(h, NBD_STRUCTURED_MAG);
		put16(h + 4, NBD_REPLY_FLAG_DONE);
		put64(h + 8, req->cookie);
		if (err == 0) {
			put16(h + 6, NBD_REPLY_TYPE_OFFSET_DATA);
			put32(h + 16, 8 + req->length);
			put64(h + 20, req->offset);
			req->out.iov[0].iov_len = 28;
		} else {
			put16(h + 6, NBD_REPLY_TYPE_ERROR);
			put32(h + 16, 6);
			put32(h + 20, err);
			put16(h + 24, 0); /* no message */
			req->out.iov[0].iov_len = 26;
		}
	} else {
		put32(h, NBD_SIMPLE_MAGIC);
		put32(h + 4, err);
		put64(h + 8, req->cookie);
		req->out.iov[0].iov_len = 16;
	}
	if (req->type == NBD_CMD_READ && err == 0) {
		req->out.iov[1].iov_base = req->data;
		req->out.iov[1].iov_len = req->length;
	}
	req->out.free_fn = request_free;
	queue_out(s, &req->out);
	s->inflight--;
}

/* 0, or the errno the request is refused with. */
static int
check_request(const struct nbd_session *s, const struct nbd_request *req)
{
	const struct nbd_export_info *info = &s->info;
	uint16_t allowed = 0;
	bool writes = false;

	switch (req->type) {
	case NBD_CMD_READ:
		allowed = s->structured ? NBD_CMD_FLAG_DF : 0;
		break;
	case NBD_CMD_WRITE:
		allowed = NBD_CMD_FLAG_FUA;
		writes = true;
		break;
	case NBD_CMD_FLUSH:
		return req->flags == 0 ? 0 : -EINVAL;
	case NBD_CMD_TRIM:
		if (!info->can_trim)
			return -EINVAL;
		allowed = NBD_CMD_FLAG_FUA;
		writes = true;
		break;
	case NBD_CMD_WRITE_ZEROES:
		if (!info->can_zeroes)
			return -EINVAL;
		allowed = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;
		writes = true;
		break;
	default:
		return -EINVAL;
	}
	if (req->flags & ~allowed)
		return -EINVAL;
	if (writes && info->read_only)
		return -EPERM;
	if (req->length == 0)
		return -EINVAL;
	if ((req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE) &&
	    req->length > NBD_MAX_PAYLOAD)
		return -EINVAL;
	if (req->offset > info->size || req->length > info->size - req->offset)
		return writes ? -ENOSPC : -EINVAL;
	if (req->offset % info->block_size != 0 || req->length % info->block_size != 0)
		return -EINVAL;
	return 0;
}

static void
request_header(struct nbd_session *s)
{
	struct nbd_request *req;
	int rc;

	s->hdr_fill = 0;
	if (get32(s->hdr) != NBD_REQUEST_MAGIC) {
		session_fail(s, "bad request magic");
		return;
	}
	if (get16(s->hdr + 6) == NBD_CMD_DISC) {
		s->state = NBD_S_CLOSE_AFTER;
		snprintf(s->why, sizeof(s->why), "the client disconnected");
		return;
	}
	req = calloc(1, sizeof(*req));
	if (req == NULL) {
		session_fail(s, "out of memory");
		return;
	}
	req->session = s;
	req->flags = get16(s->hdr + 4);
	req->type = get16(s->hdr + 6);
	req->cookie = get64(s->hdr + 8);
	req->offset = get64(s->hdr + 16);
	req->length = get32(s->hdr + 24);
	s->inflight++;
	rc = check_request(s, req);
	if (rc == 0 && (req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE) &&
	    (req->data = buf_get(s, req->length)) == NULL)
		rc = -ENOMEM;
	if (rc != 0) {
		if (req->type == NBD_CMD_WRITE && req->length != 0) {
			/* Consume the payload first, so the next header is read in step. */
			s->refused = req;
			req->step = rc;
			s->discard = req->length;
			s->state = NBD_S_DISCARD;
			return;
		}
		nbd_request_done(req, rc);
		return;
	}
	if (req->type == NBD_CMD_WRITE) {
		s->cur = req;
		s->state = NBD_S_PAYLOAD;
		return;
	}
	s->ops->request(s->ctx, req);
}

static void
discard_done(struct nbd_session *s)
{
	struct nbd_request *req = s->refused;

	if (req != NULL) {
		s->refused = NULL;
		s->state = NBD_S_REQUEST;
		nbd_request_done(req, req->step);
	} else {
		s->state = NBD_S_OPTION;
		opt_error(s, NBD_REP_ERR_TOO_BIG, "option data too long");
	}
}

/* Copy up to want - hdr_fill bytes into the header being received. */
static size_t
take_header(struct nbd_session *s, const uint8_t *p, size_t n, uint32_t want)
{
	size_t k = want - s->hdr_fill < n ? want - s->hdr_fill : n;

	memcpy(s->hdr + s->hdr_fill, p, k);
	s->hdr_fill += (uint32_t)k;
	return k;
}

bool
nbd_session_busy(const struct nbd_session *s)
{
	return s->state == NBD_S_CLOSE || s->state == NBD_S_CLOSE_AFTER ||
	       s->state == NBD_S_STARTTLS || s->inflight >= NBD_MAX_INFLIGHT ||
	       s->out_bytes >= NBD_OUT_LIMIT;
}

size_t
nbd_session_input(struct nbd_session *s, const uint8_t *buf, size_t len)
{
	size_t used = 0;

	while (used < len && !nbd_session_busy(s)) {
		const uint8_t *p = buf + used;
		size_t n = len - used, k;

		switch (s->state) {
		case NBD_S_CLIENT_FLAGS:
			used += take_header(s, p, n, 4);
			if (s->hdr_fill == 4)
				client_flags(s);
			break;
		case NBD_S_OPTION:
			used += take_header(s, p, n, 16);
			if (s->hdr_fill == 16)
				option_header(s);
			break;
		case NBD_S_OPTION_DATA:
			k = s->opt_len - s->opt_fill < n ? s->opt_len - s->opt_fill : n;
			memcpy(s->opt_data + s->opt_fill, p, k);
			s->opt_fill += (uint32_t)k;
			used += k;
			if (s->opt_fill == s->opt_len) {
				s->state = NBD_S_OPTION;
				handle_option(s);
			}
			break;
		case NBD_S_REQUEST:
			used += take_header(s, p, n, 28);
			if (s->hdr_fill == 28)
				request_header(s);
			break;
		case NBD_S_PAYLOAD: {
			struct nbd_request *req = s->cur;

			k = req->length - req->filled < n ? req->length - req->filled : n;
			memcpy(req->data + req->filled, p, k);
			req->filled += (uint32_t)k;
			used += k;
			if (req->filled == req->length) {
				s->cur = NULL;
				s->state = NBD_S_REQUEST;
				s->ops->request(s->ctx, req);
			}
			break;
		}
		case NBD_S_DISCARD:
			k = s->discard < n ? (size_t)s->discard : n;
			s->discard -= k;
			used += k;
			if (s->discard == 0)
				discard_done(s);
			break;
		case NBD_S_CLOSE_AFTER:
		case NBD_S_CLOSE:
		case NBD_S_STARTTLS:
			return used;
		}
	}
	return used;
}

static void
out_free(struct nbd_session *s, struct nbd_out *out)
{
	STAILQ_REMOVE(&s->out, out, nbd_out, link);
	s->out_bytes -= out->iov[0].iov_len + out->iov[1].iov_len;
	out->free_fn(out);
}

void
nbd_session_sent(struct nbd_session *s, size_t bytes)
{
	struct nbd_out *out;

	while (bytes > 0 && (out = STAILQ_FIRST(&s->out)) != NULL) {
		for (int i = 0; i < 2 && bytes > 0; i++) {
			size_t k = out->iov[i].iov_len < bytes ? out->iov[i].iov_len : bytes;

			out->iov[i].iov_base = (uint8_t *)out->iov[i].iov_base + k;
			out->iov[i].iov_len -= k;
			s->out_bytes -= k;
			bytes -= k;
		}
		if (out->iov[0].iov_len == 0 && out->iov[1].iov_len == 0)
			out_free(s, out);
	}
}

void
nbd_session_init(struct nbd_session *s, const struct nbd_export_info *info,
		 const struct nbd_session_ops *ops, void *ctx)
{
	uint8_t greeting[18];

	memset(s, 0, sizeof(*s));
	s->info = *info;
	s->ops = ops;
	s->ctx = ctx;
	STAILQ_INIT(&s->out);
	s->state = NBD_S_CLIENT_FLAGS;
	put64(greeting, NBD_MAGIC);
	put64(greeting + 8, NBD_IHAVEOPT);
	put16(greeting + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	queue_bytes(s, greeting, sizeof(greeting));
}

void
nbd_session_tls_started(struct nbd_session *s)
{
	s->tls_active = true;
	s->state = NBD_S_OPTION;
}

void
nbd_session_fini(struct nbd_session *s)
{
	struct nbd_out *out;

	while ((out = STAILQ_FIRST(&s->out)) != NULL)
		out_free(s, out);
	if (s->cur != NULL)
		request_free(&s->cur->out);
	if (s->refused != NULL)
		request_free(&s->refused->out);
	free(s->opt_data);
	s->cur = s->refused = NULL;
	s->opt_data = NULL;
	while (s->ncache > 0)
		free(s->cache[--s->ncache]);
	s->cache_bytes = 0;
}
