/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Remote members over NBD (bdev_nbd_attach): a bdev whose blocks are an NBD export on another
 * host (or in another process), reached through libnbd's asynchronous API from the reactors.
 *
 * Theory of operation.
 *
 * Connections. An export is reached over C connections (C = `connections`, capped at the
 * number of reactors, and 1 unless the server advertises multi-conn, under which a flush on
 * one connection covers writes completed on every other). Connection i belongs to reactor i:
 * its libnbd handle is only ever used there, so nothing is locked. A channel on reactor r
 * sends its requests to connection r % C: on its own reactor it issues them at once, from
 * another reactor by message, and the answer goes back the same way.
 *
 * Requests. A READ or WRITE becomes one NBD command per piece of at most the server's maximum
 * request size, into the caller's buffer when it is one iovec and through a bounce buffer
 * otherwise (libnbd takes flat buffers). FUA goes through when the server takes it, else a
 * flush follows the write; FLUSH, UNMAP (trim) and WRITE_ZEROES map to their commands.
 * libnbd calls a command's completion from inside its state machine, where the handle may not
 * be used again: the completion only records the result and the connection's poller answers
 * the request once libnbd has returned.
 *
 * Failure. A request not answered within timeout_ms fails with -ETIMEDOUT; so does every
 * other request on that connection, whose handle is closed first (libnbd then touches no
 * buffer of ours again). A connection the server closes or breaks (bad magic, a reply with
 * a wrong handle or length: libnbd's checks) fails its requests with -EIO. While a connection
 * is down, requests fail at once with -ENOTCONN: an array marks the member failed and goes
 * on degraded. The poller tries to connect again every reconnect_delay_ms, in the
 * background; a connection that comes back must see an export of the same size and block
 * size, or it is dropped again with the reason logged. A connection given up on is reset, not
 * closed, so that requests still queued in its socket never reach the server later. When
 * every connection has been up again for timeout_ms after any was lost (time for the server
 * to apply what it had already received on the lost ones), the daemon's hook
 * (remote_bdev_set_back_hook) is told, so that an array
 * this bdev is a member of takes it back: a mirror or parity array with a write-intent bitmap
 * then rebuilds only the regions written while it was away (uraid_member_back).
 *
 * Connecting the first time happens at attach, on the control thread (it may block for up to
 * timeout_ms); names in URIs are resolved there and at every reconnect, so numeric addresses
 * keep the reactors from waiting on a resolver.
 */
#include <libnbd.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>

#include "bdev_priv.h"

#define REMOTE_MAX_CONNS    16
#define REMOTE_MAX_REQUEST  (32u << 20) /* bytes in one command unless the server says less */
#define REMOTE_MAX_TRIM	    (1u << 30)
#define REMOTE_IDLE_PERIOD  20000 /* us: how often an idle connection is looked at */
#define REMOTE_MAX_COMMANDS 64	  /* pieces of one request; larger ones are refused */

enum conn_state { CONN_UP, CONN_CONNECTING, CONN_DOWN, CONN_GONE };

struct remote_bdev;
struct remote_io;

struct remote_conn {
	struct remote_bdev *rb;
	unsigned index;
	struct uraid_reactor *reactor;
	struct nbd_handle *h;
	enum conn_state state;
	bool closing;	      /* inside nbd_close: completions are ignored */
	bool broken;	      /* a command could not be issued: the poller brings it down */
	uint64_t deadline_us; /* CONN_CONNECTING: give up then; CONN_DOWN: retry then */
	uint64_t back_due_us; /* the bdev is declared back then, if all stayed up; 0: no */
	TAILQ_HEAD(, remote_io) inflight; /* oldest first */
	struct remote_io *done;		  /* answered by libnbd, not yet by us */
	struct uraid_poller *busy_poller, *idle_poller;
	char why[160]; /* the last failure, logged once per change */
};

struct remote_bdev {
	struct uraid_bdev bdev;
	char ch_dev;
	char *uri;
	unsigned nconns;
	uint32_t timeout_ms, reconnect_delay_ms;
	uint32_t max_request; /* bytes */
	bool can_fua, can_flush, can_trim, can_zero;
	_Atomic unsigned down; /* connections not up */
	_Atomic bool was_down; /* a connection was lost since the last time all were up */
	_Atomic unsigned closing;
	struct remote_conn conns[REMOTE_MAX_CONNS];
};

struct remote_io {
	struct uraid_bdev_io *io;
	struct remote_conn *conn;
	struct uraid_reactor *origin;
	void *bounce;
	uint64_t start_us;
	unsigned pending; /* commands out */
	int status;
	bool queued;	  /* in conn->inflight */
	bool flush_after; /* FUA on a server without it: a flush once the write is answered */
	TAILQ_ENTRY(remote_io) link;
	struct remote_io *done_next;
};

struct remote_channel {
	struct remote_conn *conn;
};

static void (*g_back_hook)(const char *name);

void
remote_bdev_set_back_hook(void (*fn)(const char *name))
{
	g_back_hook = fn;
}

static inline struct remote_io *
rio_of(struct uraid_bdev_io *io)
{
	return (struct remote_io *)io->driver_ctx;
}

/* A handle for our URIs: TLS settings may name key files (tls-psk-file=), which the
 * operator gave us through the RPC socket. */
static struct nbd_handle *
new_handle(void)
{
	struct nbd_handle *h = nbd_create();

	if (h != NULL)
		nbd_set_uri_allow_local_file(h, true);
	return h;
}

static const char *
nbd_why(void)
{
	const char *e = nbd_get_error();

	return e != NULL && e[0] != '\0' ? e : "connection failed";
}

/* --- answers --- */

static void
answer_msg(void *arg)
{
	struct uraid_bdev_io *io = arg;

	uraid_bdev_io_complete(io, rio_of(io)->status);
}

static void
answer(struct remote_io *r, int status)
{
	struct uraid_bdev_io *io = r->io;

	if (r->queued) {
		TAILQ_REMOVE(&r->conn->inflight, r, link);
		r->queued = false;
	}
	if (r->status == 0)
		r->status = status;
	if (r->status == 0 && io->type == URAID_IO_READ && r->bounce != NULL)
		uraid_iov_from_buf(io->iov, io->iovcnt, 0, r->bounce,
				   io->num_blocks * io->bdev->block_size);
	free(r->bounce);
	r->bounce = NULL;
	if (r->origin == uraid_reactor_self())
		uraid_bdev_io_complete(io, r->status);
	else
		uraid_reactor_send(r->origin, answer_msg, io);
}

/* libnbd's completion, inside its state machine: record, answer later (conn_reap). */
static int
command_done(void *user_data, int *error)
{
	struct remote_io *r = user_data;
	struct remote_conn *c = r->conn;

	if (c->closing)
		return 1; /* conn_down answers it */
	if (*error != 0 && r->status == 0)
		r->status = *error == ENOTCONN || *error == ESHUTDOWN ? -EIO : -*error;
	if (--r->pending == 0) {
		r->done_next = c->done;
		c->done = r;
	}
	return 1;
}

static void issue_failed(struct remote_conn *c, struct remote_io *r, unsigned count);

static bool
conn_reap(struct remote_conn *c)
{
	struct remote_io *r = c->done;

	if (r == NULL)
		return false;
	c->done = NULL;
	while (r != NULL) {
		struct remote_io *next = r->done_next;

		if (r->flush_after && r->status == 0 && c->h != NULL) {
			nbd_completion_callback cb = {.callback = command_done, .user_data = r};

			r->flush_after = false;
			r->pending = 1;
			if (nbd_aio_flush(c->h, cb, 0) == -1)
				issue_failed(c, r, 1);
		} else {
			answer(r, 0);
		}
		r = next;
	}
	return true;
}

/* --- connection state --- */

static void
conn_close_handle(struct remote_conn *c, bool abort)
{
	if (c->h == NULL)
		return;
	if (abort) {
		/* Reset, not closed: writes still in the socket's send queue must never reach
		 * the server once the link is back (they would land after the member's
		 * catch-up, over newer data). */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		int fd = nbd_aio_get_fd(c->h);

		if (fd >= 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	c->closing = true;
	nbd_close(c->h);
	c->h = NULL;
	c->closing = false;
}

/* The connection is lost: every request on it fails with status; retried after the delay.
 * why may not point into c. */
static void
conn_down(struct remote_conn *c, int status, const char *why)
{
	struct remote_bdev *rb = c->rb;
	struct remote_io *r;
	bool was_up = c->state == CONN_UP;

	conn_reap(c); /* answered before it broke: those stand */
	conn_close_handle(c, true);
	while ((r = TAILQ_FIRST(&c->inflight)) != NULL)
		answer(r, status);
	c->done = NULL;
	if (was_up || strcmp(c->why, why) != 0)
		LOG_WARNING("%s: connection %u to %s %s: %s; trying again every %u ms",
			    rb->bdev.name, c->index, rb->uri, was_up ? "lost" : "not made", why,
			    rb->reconnect_delay_ms);
	snprintf(c->why, sizeof(c->why), "%s", why);
	c->broken = false;
	if (was_up) {
		atomic_fetch_add(&rb->down, 1);
		atomic_store(&rb->was_down, true);
	}
	c->state = CONN_DOWN;
	c->deadline_us = uraid_now_us() + (uint64_t)rb->reconnect_delay_ms * 1000;
}

/* conn_down with libnbd's reason (copied: closing the handle may change it). */
static void
conn_lost(struct remote_conn *c, int status)
{
	char why[160];

	snprintf(why, sizeof(why), "%s", nbd_why());
	conn_down(c, status, why);
}

/* Move h's state machine on by what its socket allows, waiting up to wait_ms for it: 1 if the
 * socket was ready, 0 if not, -1 if the connection broke. */
static int
handle_pump(struct nbd_handle *h, int wait_ms)
{
	unsigned dir = nbd_aio_get_direction(h);
	struct pollfd pfd = {.fd = nbd_aio_get_fd(h)};

	if (pfd.fd < 0 || nbd_aio_is_dead(h) || nbd_aio_is_closed(h))
		return -1;
	if (dir & LIBNBD_AIO_DIRECTION_READ)
		pfd.events |= POLLIN;
	if (dir & LIBNBD_AIO_DIRECTION_WRITE)
		pfd.events |= POLLOUT;
	if (pfd.events == 0 || poll(&pfd, 1, wait_ms) <= 0)
		return 0;
	if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && nbd_aio_notify_read(h) == -1)
		return -1;
	if ((pfd.revents & POLLOUT) && nbd_aio_notify_write(h) == -1)
		return -1;
	return nbd_aio_is_dead(h) || nbd_aio_is_closed(h) ? -1 : 1;
}

/* Is this handle's export the one attached? "" if so, else why not. */
static const char *
export_differs(struct remote_bdev *rb, struct nbd_handle *h, char *buf, size_t len)
{
	int64_t size = nbd_get_size(h);
	int64_t min = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);

	if (size < 0)
		return nbd_why();
	if ((uint64_t)size != rb->bdev.num_blocks * rb->bdev.block_size) {
		snprintf(buf, len, "the export is now %lld bytes, not %llu", (long long)size,
			 (unsigned long long)(rb->bdev.num_blocks * rb->bdev.block_size));
		return buf;
	}
	if (min > (int64_t)rb->bdev.block_size) {
		snprintf(buf, len, "the export now needs %lld-byte blocks", (long long)min);
		return buf;
	}
	if (nbd_is_read_only(h) == 1)
		return "the export is now read-only";
	return "";
}

static void
conn_connect_start(struct remote_conn *c)
{
	struct remote_bdev *rb = c->rb;

	c->h = new_handle();
	if (c->h == NULL || nbd_aio_connect_uri(c->h, rb->uri) == -1) {
		conn_lost(c, -ENOTCONN);
		return;
	}
	c->state = CONN_CONNECTING;
	c->deadline_us = uraid_now_us() + (uint64_t)rb->timeout_ms * 1000;
}

static void
conn_connecting(struct remote_conn *c)
{
	struct remote_bdev *rb = c->rb;
	char buf[160];
	const char *why;

	if (handle_pump(c->h, 0) < 0) {
		conn_lost(c, -ENOTCONN);
		return;
	}
	if (!nbd_aio_is_ready(c->h)) {
		if (uraid_now_us() >= c->deadline_us)
			conn_down(c, -ENOTCONN, "no answer within the timeout");
		return;
	}
	why = export_differs(rb, c->h, buf, sizeof(buf));
	if (why[0] != '\0') {
		snprintf(c->why, sizeof(c->why), "%s", why); /* logged once, below */
		LOG_ERR("%s: connection %u to %s refused: %s", rb->bdev.name, c->index, rb->uri,
			why);
		conn_close_handle(c, false);
		c->state = CONN_DOWN;
		c->deadline_us = uraid_now_us() + (uint64_t)rb->reconnect_delay_ms * 1000;
		return;
	}
	c->state = CONN_UP;
	c->why[0] = '\0';
	LOG_NOTE("%s: connection %u to %s is back", rb->bdev.name, c->index, rb->uri);
	/* The last one back: the member is declared back once all have stayed up a timeout's
	 * length, so that whatever the server still had of the lost connections is applied
	 * before the member catches up. */
	if (atomic_fetch_sub(&rb->down, 1) == 1)
		c->back_due_us = uraid_now_us() + (uint64_t)rb->timeout_ms * 1000;
}

static void
conn_back_due(struct remote_conn *c)
{
	struct remote_bdev *rb = c->rb;

	if (c->back_due_us == 0 || uraid_now_us() < c->back_due_us)
		return;
	c->back_due_us = 0;
	if (atomic_load(&rb->down) == 0 && atomic_exchange(&rb->was_down, false) &&
	    g_back_hook != NULL)
		g_back_hook(rb->bdev.name);
}

/* Every reactor iteration while requests are out: move them, answer them, time them out. */
static int
conn_busy_poll(void *arg)
{
	struct remote_conn *c = arg;
	struct remote_io *oldest;
	int rc = 0;

	if (c->state != CONN_UP || (TAILQ_EMPTY(&c->inflight) && c->done == NULL))
		return URAID_POLLER_IDLE;
	if (c->broken) {
		char why[160];

		snprintf(why, sizeof(why), "%s", c->why);
		conn_down(c, -EIO, why);
		return URAID_POLLER_BUSY;
	}
	/* As long as the socket has more: a large reply comes in many reads. */
	for (int i = 0; i < 64 && (rc = handle_pump(c->h, 0)) > 0; i++)
		;
	if (rc < 0) {
		conn_lost(c, -EIO);
		return URAID_POLLER_BUSY;
	}
	conn_reap(c);
	oldest = TAILQ_FIRST(&c->inflight);
	if (oldest != NULL &&
	    uraid_now_us() - oldest->start_us >= (uint64_t)c->rb->timeout_ms * 1000) {
		char why[64];

		snprintf(why, sizeof(why), "no answer within %u ms", c->rb->timeout_ms);
		conn_down(c, -ETIMEDOUT, why);
	}
	/* Busy while anything is out: the answer comes on a socket the reactor does not sleep
	 * on. */
	return URAID_POLLER_BUSY;
}

/* Now and then: an idle connection the server closed, connecting, reconnecting. */
static int
conn_idle_poll(void *arg)
{
	struct remote_conn *c = arg;

	switch (c->state) {
	case CONN_UP:
		if (TAILQ_EMPTY(&c->inflight) && handle_pump(c->h, 0) < 0) {
			conn_lost(c, -EIO);
			return URAID_POLLER_BUSY;
		}
		conn_back_due(c);
		return URAID_POLLER_IDLE;
	case CONN_CONNECTING:
		conn_connecting(c);
		return URAID_POLLER_BUSY;
	case CONN_DOWN:
		if (uraid_now_us() >= c->deadline_us)
			conn_connect_start(c);
		return URAID_POLLER_IDLE;
	default:
		return URAID_POLLER_IDLE;
	}
}

/* --- requests --- */

/* count commands of r were not issued: their completions will not come. */
static void
issue_failed(struct remote_conn *c, struct remote_io *r, unsigned count)
{
	char why[160];

	snprintf(why, sizeof(why), "%s", nbd_why());
	r->pending -= count;
	if (r->status == 0)
		r->status = -EIO;
	r->flush_after = false;
	if (r->pending == 0) {
		r->done_next = c->done;
		c->done = r;
	}
	if (nbd_aio_is_dead(c->h) || nbd_aio_is_closed(c->h)) {
		c->broken = true;
		snprintf(c->why, sizeof(c->why), "%s", why);
	}
}

/* Issue r's commands on c (c's reactor). 0, or what to answer with at once (1: success). */
static int
conn_issue(struct remote_conn *c, struct remote_io *r)
{
	struct remote_bdev *rb = c->rb;
	struct uraid_bdev_io *io = r->io;
	uint64_t off = io->offset_blocks * rb->bdev.block_size;
	uint64_t len = io->num_blocks * rb->bdev.block_size;
	uint64_t piece = io->type == URAID_IO_READ || io->type == URAID_IO_WRITE ? rb->max_request
										 : REMOTE_MAX_TRIM;
	unsigned n = io->type == URAID_IO_FLUSH ? 1 : (unsigned)((len + piece - 1) / piece);
	uint8_t *buf = NULL;

	if (c->state != CONN_UP)
		return -ENOTCONN;
	if (n == 0 || n > REMOTE_MAX_COMMANDS)
		return -EINVAL;
	if (io->type == URAID_IO_FLUSH && !rb->can_flush)
		return 1; /* no volatile cache on the server: nothing to do */
	/* A server without FUA: a flush once the write is answered (NBD orders nothing, and a
	 * flush covers only the writes answered before it arrives). */
	r->flush_after = io->type == URAID_IO_WRITE && (io->flags & URAID_IO_FUA) && !rb->can_fua &&
			 rb->can_flush;
	if (io->type == URAID_IO_READ || io->type == URAID_IO_WRITE) {
		if (io->iovcnt == 1) {
			buf = io->iov[0].iov_base;
		} else {
			r->bounce = malloc(len);
			if (r->bounce == NULL)
				return -ENOMEM;
			if (io->type == URAID_IO_WRITE)
				uraid_iov_to_buf(r->bounce, io->iov, io->iovcnt, 0, len);
			buf = r->bounce;
		}
	}
	r->conn = c;
	r->pending = n;
	r->start_us = uraid_now_us();
	r->queued = true;
	TAILQ_INSERT_TAIL(&c->inflight, r, link);
	for (unsigned i = 0; i < n; i++) {
		nbd_completion_callback cb = {.callback = command_done, .user_data = r};
		uint64_t at = off + (uint64_t)i * piece;
		uint64_t count =
			len - (uint64_t)i * piece < piece ? len - (uint64_t)i * piece : piece;
		uint32_t fl = (io->flags & URAID_IO_FUA) && rb->can_fua ? LIBNBD_CMD_FLAG_FUA : 0;
		int64_t rc;

		switch (io->type) {
		case URAID_IO_READ:
			rc = nbd_aio_pread(c->h, buf + (at - off), count, at, cb, 0);
			break;
		case URAID_IO_WRITE:
			rc = nbd_aio_pwrite(c->h, buf + (at - off), count, at, cb, fl);
			break;
		case URAID_IO_FLUSH:
			rc = nbd_aio_flush(c->h, cb, 0);
			break;
		case URAID_IO_UNMAP:
			rc = nbd_aio_trim(c->h, count, at, cb, 0);
			break;
		default: /* WRITE_ZEROES */
			rc = nbd_aio_zero(c->h, count, at, cb, 0);
			break;
		}
		if (rc == -1) {
			issue_failed(c, r, n - i);
			return 0;
		}
	}
	return 0;
}

static void
issue_msg(void *arg)
{
	struct remote_io *r = arg;
	int rc = conn_issue(r->conn, r);

	if (rc != 0)
		answer(r, rc > 0 ? 0 : rc);
}

static int
remote_submit(void *ch_ctx, struct uraid_bdev_io *io)
{
	struct remote_channel *ch = ch_ctx;
	struct remote_io *r = rio_of(io);

	if (io->type > URAID_IO_WRITE_ZEROES || io->type == URAID_IO_RESET)
		return -ENOTSUP;
	memset(r, 0, sizeof(*r));
	r->io = io;
	r->conn = ch->conn;
	r->origin = uraid_reactor_self();
	/* By message also on the connection's own reactor: never answered inside submit. */
	uraid_reactor_send(ch->conn->reactor, issue_msg, r);
	return 0;
}

/* --- channels, lifetime --- */

static int
remote_channel_create(void *io_device, void *ctx)
{
	struct remote_bdev *rb = container_of((char *)io_device, struct remote_bdev, ch_dev);
	struct remote_channel *ch = ctx;

	ch->conn = &rb->conns[uraid_reactor_index(uraid_reactor_self()) % rb->nconns];
	return 0;
}

static void
remote_channel_destroy(void *io_device UNUSED, void *ctx UNUSED)
{
}

static bool
remote_io_type_supported(struct uraid_bdev *bdev, enum uraid_io_type type)
{
	struct remote_bdev *rb = bdev->ctx;

	switch (type) {
	case URAID_IO_READ:
	case URAID_IO_WRITE:
	case URAID_IO_FLUSH:
		return true;
	case URAID_IO_UNMAP:
		return rb->can_trim;
	case URAID_IO_WRITE_ZEROES:
		return rb->can_zero;
	default:
		return false;
	}
}

static void
remote_free(struct remote_bdev *rb)
{
	for (unsigned i = 0; i < REMOTE_MAX_CONNS; i++) {
		if (rb->conns[i].h != NULL)
			nbd_close(rb->conns[i].h);
	}
	free(rb->uri);
	free(rb);
}

static void
conn_pollers_stop(struct remote_conn *c)
{
	uraid_poller_unregister(&c->busy_poller);
	uraid_poller_unregister(&c->idle_poller);
}

/* On a connection's reactor: its pollers stop and its handle closes; the last one frees. */
static void
conn_stop_msg(void *arg)
{
	struct remote_conn *c = arg;
	struct remote_bdev *rb = c->rb;

	conn_pollers_stop(c);
	conn_reap(c);
	conn_close_handle(c, false);
	c->state = CONN_GONE;
	if (atomic_fetch_sub(&rb->closing, 1) == 1) {
		uraid_io_device_unregister(&rb->ch_dev, NULL);
		uraid_bdev_destruct_done(&rb->bdev);
		remote_free(rb);
	}
}

static int
remote_destruct(struct uraid_bdev *bdev)
{
	struct remote_bdev *rb = bdev->ctx;
	struct uraid_reactor *on[REMOTE_MAX_CONNS];
	struct remote_conn *c[REMOTE_MAX_CONNS];
	unsigned n = rb->nconns;

	/* The last stop frees rb, maybe before this loop ends: nothing of it is read after the
	 * first message. */
	for (unsigned i = 0; i < n; i++) {
		on[i] = rb->conns[i].reactor;
		c[i] = &rb->conns[i];
	}
	atomic_store(&rb->closing, n);
	for (unsigned i = 0; i < n; i++)
		uraid_reactor_send(on[i], conn_stop_msg, c[i]);
	return 1;
}

static const struct uraid_bdev_fn_table remote_fn = {
	.submit_request = remote_submit,
	.io_type_supported = remote_io_type_supported,
	.destruct = remote_destruct,
};

struct conn_start {
	struct remote_conn *c;
	int rc;
	_Atomic bool done;
};

static void
conn_stop_sync_msg(void *arg)
{
	struct conn_start *cs = arg;

	conn_pollers_stop(cs->c);
	atomic_store_explicit(&cs->done, true, memory_order_release);
}

static void
conn_start_msg(void *arg)
{
	struct conn_start *cs = arg;
	struct remote_conn *c = cs->c;

	c->busy_poller = uraid_poller_register(conn_busy_poll, c, 0);
	c->idle_poller = uraid_poller_register(conn_idle_poll, c, REMOTE_IDLE_PERIOD);
	cs->rc = c->busy_poller && c->idle_poller ? 0 : -ENOMEM;
	if (cs->rc != 0)
		conn_pollers_stop(c);
	atomic_store_explicit(&cs->done, true, memory_order_release);
}

/* Connect h to uri within timeout_ms, on the calling (control) thread. */
static int
connect_wait(struct nbd_handle *h, const char *uri, uint32_t timeout_ms, char *err, size_t err_len)
{
	uint64_t deadline = uraid_now_us() + (uint64_t)timeout_ms * 1000;

	if (nbd_aio_connect_uri(h, uri) == -1) {
		err_set(err, err_len, "%s", nbd_why());
		return nbd_get_errno() == ENOTSUP ? -EINVAL : -ENOTCONN;
	}
	while (!nbd_aio_is_ready(h)) {
		uint64_t now = uraid_now_us();

		if (now >= deadline) {
			err_set(err, err_len, "no answer within %u ms", timeout_ms);
			return -ETIMEDOUT;
		}
		if (handle_pump(h, (int)((deadline - now + 999) / 1000)) < 0) {
			err_set(err, err_len, "%s", nbd_why());
			return -ENOTCONN;
		}
	}
	return 0;
}

/* What the first connection learned: size, block size, what the server takes. */
static int
remote_probe(struct remote_bdev *rb, const struct remote_bdev_opts *o, struct nbd_handle *h,
	     char *err, size_t err_len)
{
	int64_t size = nbd_get_size(h);
	int64_t min = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
	int64_t pref = nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED);
	int64_t max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
	uint32_t bs = o->block_size;

	if (size < 0) {
		err_set(err, err_len, "%s", nbd_why());
		return -EIO;
	}
	if (nbd_is_read_only(h) == 1) {
		err_set(err, err_len, "the export is read-only; a member must take writes");
		return -EROFS;
	}
	if (bs == 0)
		bs = min > 512 || pref >= 4096 || size % 4096 == 0 ? 4096 : 512;
	if (min > (int64_t)bs) {
		err_set(err, err_len, "the export needs %lld-byte blocks; block_size is %u",
			(long long)min, bs);
		return -EINVAL;
	}
	if (size == 0 || size % bs != 0) {
		err_set(err, err_len,
			"the export's %lld bytes are not a whole number of %u-byte blocks",
			(long long)size, bs);
		return -EINVAL;
	}
	rb->bdev.block_size = bs;
	rb->bdev.num_blocks = (uint64_t)size / bs;
	rb->max_request = REMOTE_MAX_REQUEST;
	if (max > 0 && max < (int64_t)rb->max_request)
		rb->max_request = (uint32_t)max / bs * bs;
	if (rb->max_request < bs) {
		err_set(err, err_len, "the export takes requests of at most %lld bytes",
			(long long)max);
		return -EINVAL;
	}
	rb->can_flush = nbd_can_flush(h) == 1;
	rb->can_fua = nbd_can_fua(h) == 1;
	rb->can_trim = nbd_can_trim(h) == 1;
	rb->can_zero = nbd_can_zero(h) == 1;
	return 0;
}

int
remote_bdev_create(const struct remote_bdev_opts *o, struct uraid_bdev **out, char *err,
		   size_t err_len)
{
	unsigned want = o->connections ? o->connections : 1;
	unsigned nreactors = uraid_reactor_count();
	struct remote_bdev *rb;
	int rc;

	if (o->name == NULL || o->name[0] == '\0' || strlen(o->name) >= URAID_BDEV_NAME_MAX) {
		err_set(err, err_len, "name must be 1 to %d characters", URAID_BDEV_NAME_MAX - 1);
		return -EINVAL;
	}
	if (o->uri == NULL || o->uri[0] == '\0') {
		err_set(err, err_len, "uri is empty");
		return -EINVAL;
	}
	if (want > REMOTE_MAX_CONNS) {
		err_set(err, err_len, "connections: 1 to %d", REMOTE_MAX_CONNS);
		return -EINVAL;
	}
	if (o->block_size != 0 && o->block_size != 512 && o->block_size != 4096) {
		err_set(err, err_len, "block_size %u: must be 512 or 4096", o->block_size);
		return -EINVAL;
	}
	if (o->timeout_ms < 10 || o->timeout_ms > 3600000 || o->reconnect_delay_ms < 10 ||
	    o->reconnect_delay_ms > 3600000) {
		err_set(err, err_len, "timeout_ms and reconnect_delay_ms: 10 to 3600000");
		return -EINVAL;
	}
	if (nreactors == 0) {
		err_set(err, err_len, "no reactors");
		return -EINVAL;
	}
	rb = calloc(1, sizeof(*rb));
	if (rb == NULL)
		return -ENOMEM;
	rb->uri = strdup(o->uri);
	rb->timeout_ms = o->timeout_ms;
	rb->reconnect_delay_ms = o->reconnect_delay_ms;
	snprintf(rb->bdev.name, sizeof(rb->bdev.name), "%s", o->name);
	rb->conns[0].h = new_handle();
	if (rb->uri == NULL || rb->conns[0].h == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	rc = connect_wait(rb->conns[0].h, o->uri, o->timeout_ms, err, err_len);
	if (rc == 0)
		rc = remote_probe(rb, o, rb->conns[0].h, err, err_len);
	if (rc != 0)
		goto err;
	if (want > nreactors)
		want = nreactors;
	if (want > 1 && nbd_can_multi_conn(rb->conns[0].h) != 1) {
		LOG_NOTE("%s: %s does not advertise multi-conn: one connection", o->name, o->uri);
		want = 1;
	}
	rb->nconns = want;
	for (unsigned i = 0; i < want; i++) {
		struct remote_conn *c = &rb->conns[i];

		c->rb = rb;
		c->index = i;
		c->reactor = uraid_reactor_get(i);
		c->state = CONN_UP;
		TAILQ_INIT(&c->inflight);
		if (i > 0) {
			c->h = new_handle();
			if (c->h == NULL) {
				rc = -ENOMEM;
				goto err;
			}
			rc = connect_wait(c->h, o->uri, o->timeout_ms, err, err_len);
			if (rc != 0)
				goto err;
		}
	}
	rb->bdev.product = "NBD export";
	rb->bdev.write_cache = rb->can_flush;
	rb->bdev.driver_ctx_size = sizeof(struct remote_io);
	rb->bdev.io_device = &rb->ch_dev;
	rb->bdev.fn = &remote_fn;
	rb->bdev.ctx = rb;
	if (o->uuid)
		memcpy(rb->bdev.uuid, o->uuid, 16);
	for (unsigned i = 0; i < want; i++) {
		struct conn_start cs = {.c = &rb->conns[i]};

		uraid_reactor_send(rb->conns[i].reactor, conn_start_msg, &cs);
		uraid_runtime_wait(&cs.done);
		if (cs.rc != 0) {
			rb->nconns = i;
			rc = cs.rc;
			goto err_stop;
		}
	}
	uraid_io_device_register(&rb->ch_dev, remote_channel_create, remote_channel_destroy,
				 sizeof(struct remote_channel), o->name);
	rc = uraid_bdev_register(&rb->bdev);
	if (rc != 0) {
		err_set(err, err_len, "%s", rc == -EEXIST ? "name taken" : strerror(-rc));
		uraid_io_device_unregister(&rb->ch_dev, NULL);
		goto err_stop;
	}
	LOG_NOTE("%s: %s, %llu blocks of %u bytes, %u connection%s%s%s", o->name, o->uri,
		 (unsigned long long)rb->bdev.num_blocks, rb->bdev.block_size, want,
		 want == 1 ? "" : "s", rb->can_flush ? ", flush" : "", rb->can_fua ? ", FUA" : "");
	*out = &rb->bdev;
	return 0;

err_stop:
	/* Pollers already started stop on their reactors before anything is freed. */
	for (unsigned i = 0; i < rb->nconns; i++) {
		struct conn_start cs = {.c = &rb->conns[i]};

		uraid_reactor_send(rb->conns[i].reactor, conn_stop_sync_msg, &cs);
		uraid_runtime_wait(&cs.done);
	}
err:
	remote_free(rb);
	return rc;
}

const char *
remote_bdev_uri(const struct uraid_bdev *bdev)
{
	return bdev != NULL && bdev->fn == &remote_fn ? ((struct remote_bdev *)bdev->ctx)->uri
						      : NULL;
}

unsigned
remote_bdev_connections(const struct uraid_bdev *bdev, bool up)
{
	const struct remote_bdev *rb = bdev->ctx;

	if (bdev->fn != &remote_fn)
		return 0;
	return up ? rb->nconns - atomic_load(&rb->down) : rb->nconns;
}
