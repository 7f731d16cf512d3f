/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target for the NBD protocol session (handshake, option and request parsing, replies):
 * the bytes a client could send, fed in pieces of a size taken from the first byte, to a
 * session over a 1 MiB export of 512-byte blocks. Requests complete at once or, for odd
 * cookies, after the next piece, so replies interleave with parsing. Checks the session's own
 * accounting: requests in flight, output bytes queued, and that a closed session takes no
 * more input.
 */
#include <stdint.h>
#include <stdlib.h>

#include "server/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LATER NBD_MAX_INFLIGHT

static struct nbd_request *g_later[MAX_LATER];
static unsigned g_nlater;

static int
fz_attach(void *ctx UNUSED)
{
	return 0;
}

static void
fz_request(void *ctx UNUSED, struct nbd_request *req)
{
	if (req->type == NBD_CMD_READ)
		memset(req->data, 0xa5, req->length);
	if ((req->cookie & 1) && g_nlater < MAX_LATER) {
		g_later[g_nlater++] = req;
		return;
	}
	nbd_request_done(req, (req->cookie & 2) ? -EIO : 0);
}

static const struct nbd_session_ops g_ops = {.attach = fz_attach, .request = fz_request};

static void
check_output(struct nbd_session *s)
{
	struct nbd_out *out;
	size_t bytes = 0;

	STAILQ_FOREACH(out, &s->out, link) {
		bytes += out->iov[0].iov_len + out->iov[1].iov_len;
		if (out->iov[0].iov_len == 0)
			abort(); /* every piece starts with a header */
	}
	if (bytes != s->out_bytes)
		abort();
	/* Drain as a server would once sent. */
	while ((out = STAILQ_FIRST(&s->out)) != NULL)
		nbd_session_sent(s, out->iov[0].iov_len + out->iov[1].iov_len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nbd_export_info info = {.name = "r0",
				       .size = 1u << 20,
				       .block_size = 512,
				       .pref_block_size = 4096,
				       .can_trim = true,
				       .can_zeroes = true};
	struct nbd_session s;
	size_t piece, off = 1;

	if (size == 0)
		return 0;
	piece = data[0] ? data[0] : size;
	nbd_session_init(&s, &info, &g_ops, NULL);
	while (off < size) {
		size_t n = size - off < piece ? size - off : piece;
		size_t used = nbd_session_input(&s, data + off, n);

		if (used > n)
			abort();
		if ((s.state == NBD_S_CLOSE || s.state == NBD_S_CLOSE_AFTER) &&
		    nbd_session_input(&s, data + off, n) != 0)
			abort(); /* a closing session takes nothing more */
		while (g_nlater > 0) {
			struct nbd_request *req = g_later[--g_nlater];

			nbd_request_done(req, 0);
		}
		if (s.inflight != (unsigned)(s.cur != NULL) + (unsigned)(s.refused != NULL))
			abort(); /* every request completed, but the one being received */
		check_output(&s);
		if (s.state == NBD_S_CLOSE || s.state == NBD_S_CLOSE_AFTER)
			break;
		off += used;
	}
	nbd_session_fini(&s);
	return 0;
}
