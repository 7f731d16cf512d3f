/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD exports served by the reactors.
 *
 * Theory of operation. An export is one bdev behind one listening socket (a Unix path or a
 * TCP host:port), created by nbd_start_disk on the control thread. Its listening socket lives
 * on reactor 0, which accepts and hands each connection to a reactor in turn; from then on
 * the connection belongs to that reactor alone: its socket, its protocol session
 * (nbd_proto.c), its bdev channel and every request it has in flight. There is no thread per
 * connection and no lock on the data path.
 *
 * Each reactor that serves connections has an nbd channel: an epoll set of its sockets and a
 * poller that reads what is ready, feeds the sessions, submits the requests they produce and
 * sends the replies that completed since the last round, one sendmsg per connection per
 * round. The epoll fd is a wake fd of the reactor, so an idle reactor sleeps until a client
 * sends something.
 *
 * Flow control: a session stops taking input beyond NBD_MAX_INFLIGHT requests or a bound of
 * queued output; the connection then stops reading its socket (EPOLLIN off) until replies
 * drain, so a client that pipelines without limit costs bounded memory.
 *
 * Stopping an export (nbd_stop_disk, bdev hot-remove, daemon shutdown): mark it stopping,
 * close its listening socket on reactor 0, then walk the reactors closing its connections.
 * A connection closes at once but is freed only when its last request in flight completes.
 * The export holds a reference per connection; the last one closes the bdev descriptor and
 * answers whoever asked for the stop.
 */
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rpc.h"
#include "uraid/array.h"
#include "uraid/thread.h"

#define NBD_INBUF_BYTES (256u << 10)
#define NBD_MAX_CONNS	1024 /* per export */
#define NBD_DEVICE_MAX	256
#define NBD_EPOLL_BATCH 64
#define NBD_SEND_IOV	64

struct nbd_handle {
	bool listener;
};

struct nbd_export {
	struct nbd_handle h; /* first: epoll data of the listening socket */
	TAILQ_ENTRY(nbd_export) link;
	char bdev_name[URAID_BDEV_NAME_MAX];
	char device[NBD_DEVICE_MAX];
	bool is_unix;
	int listen_fd;
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *listen_ch; /* reactor 0's nbd channel, held by the listener */
	struct nbd_export_info info;
	bool can_flush;
	_Atomic int refs;  /* the export itself + one per connection */
	_Atomic int conns; /* open connections */
	_Atomic bool stopping;
	unsigned next_reactor; /* reactor 0 only */
	void (*stopped_cb)(void *arg);
	void *stopped_arg;
};

struct nbd_reactor {
	int epfd;
	struct uraid_poller *poller;
	TAILQ_HEAD(, nbd_conn) conns;
	TAILQ_HEAD(, nbd_conn) dirty; /* to service this round */
};

struct nbd_conn {
	struct nbd_handle h; /* first: epoll data */
	TAILQ_ENTRY(nbd_conn) link;
	TAILQ_ENTRY(nbd_conn) dirty_link;
	bool is_dirty;
	bool closing; /* socket closed; freed when submitted == 0 */
	bool eof;     /* the client closed its side */
	uint32_t events;
	int fd;
	struct nbd_export *exp;
	struct nbd_reactor *nr;
	struct uraid_io_channel *nch;	 /* the reactor's nbd channel */
	struct uraid_io_channel *bch;	 /* the bdev's */
	unsigned submitted;		 /* requests at the bdev */
	TAILQ_HEAD(, nbd_request) retry; /* submits refused with -ENOMEM/-EAGAIN */
	struct nbd_session s;
	size_t ilen;
	uint8_t *ibuf;
	gnutls_session_t tls; /* after STARTTLS: every byte goes through it */
	bool handshaking;
};

static int g_nbd_device; /* the io_device of the per-reactor nbd channels */
static bool g_registered;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, nbd_export) g_exports = TAILQ_HEAD_INITIALIZER(g_exports);

static void conn_service(struct nbd_conn *c);
static void conn_set_events(struct nbd_conn *c, uint32_t events);

/* --- exports: references --- */

static void
export_unref(struct nbd_export *exp)
{
	if (atomic_fetch_sub(&exp->refs, 1) != 1)
		return;
	LOG_NOTE("nbd: stopped exporting %s on %s", exp->bdev_name, exp->device);
	uraid_bdev_close(exp->desc);
	if (exp->stopped_cb != NULL)
		exp->stopped_cb(exp->stopped_arg);
	free(exp);
}

/* --- TLS (NBD_OPT_STARTTLS) ---
 *
 * One set of credentials for every export of the daemon, as nbdkit and qemu-nbd have it: either
 * pre-shared keys in GnuTLS's psktool format (--tls-psk: a line "identity:hex-key" each) or
 * an x509 certificate and key (--tls-certs DIR), with client certificates checked against
 * DIR/ca-cert.pem when asked (--tls-verify-peer). After the session has acknowledged STARTTLS and
 * that reply has gone out in the clear, the connection runs a non-blocking server handshake on its
 * socket (bytes the client sent early are in ibuf already, and are handed to GnuTLS first); then
 * every read and write of the connection goes through the TLS session. */

static enum nbd_tls_mode g_tls_mode;
static gnutls_psk_server_credentials_t g_psk;
static gnutls_certificate_credentials_t g_x509;
static bool g_verify_peer, g_tls_init;

/* GnuTLS reads the key file at each handshake and says nothing at load: check its lines now
 * ("identity:hex-key", blank lines allowed), so a wrong file is an error at start. */
static int
psk_file_check(const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	unsigned n = 0, keys = 0;

	if (f == NULL) {
		err_set(err, err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':');
		size_t hex;

		n++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		hex = colon ? strspn(colon + 1, "0123456789abcdefABCDEF") : 0;
		if (colon == NULL || colon == line || hex == 0 || hex % 2 != 0 ||
		    colon[1 + hex] != '\0') {
			fclose(f);
			err_set(err, err_len, "%s: line %u: not identity:hex-key", path, n);
			return -EINVAL;
		}
		keys++;
	}
	fclose(f);
	if (keys == 0) {
		err_set(err, err_len, "%s: no keys", path);
		return -EINVAL;
	}
	return 0;
}

/* x509: DIR/server-cert.pem and DIR/server-key.pem (qemu-nbd's and nbdkit's layout), and
 * with verify_peer DIR/ca-cert.pem, which client certificates must chain to. */
static int
x509_setup(const char *dir, bool verify_peer, char *err, size_t err_len)
{
	char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	int rc;

	snprintf(cert, sizeof(cert), "%s/server-cert.pem", dir);
	snprintf(key, sizeof(key), "%s/server-key.pem", dir);
	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", dir);
	rc = gnutls_certificate_allocate_credentials(&g_x509);
	if (rc == GNUTLS_E_SUCCESS)
		rc = gnutls_certificate_set_x509_key_file(g_x509, cert, key, GNUTLS_X509_FMT_PEM);
	if (rc != GNUTLS_E_SUCCESS) {
		err_set(err, err_len, "%s, %s: %s", cert, key, gnutls_strerror(rc));
		return -EINVAL;
	}
	if (verify_peer) {
		rc = gnutls_certificate_set_x509_trust_file(g_x509, ca, GNUTLS_X509_FMT_PEM);
		if (rc <= 0) {
			err_set(err, err_len, "%s: %s", ca,
				rc == 0 ? "no certificate in it" : gnutls_strerror(rc));
			return -EINVAL;
		}
	}
	g_verify_peer = verify_peer;
	return 0;
}

int
nbd_tls_setup(const struct nbd_tls_opts *o, char *err, size_t err_len)
{
	int rc;

	if (o->psk_file == NULL && o->certs_dir == NULL) {
		if (o->require || o->verify_peer) {
			err_set(err, err_len,
				"TLS needs keys (--tls-psk FILE) or certificates "
				"(--tls-certs DIR)");
			return -EINVAL;
		}
		return 0;
	}
	if (o->psk_file != NULL && o->certs_dir != NULL) {
		err_set(err, err_len, "give --tls-psk or --tls-certs, not both");
		return -EINVAL;
	}
	if (o->verify_peer && o->certs_dir == NULL) {
		err_set(err, err_len, "verifying clients' certificates needs --tls-certs DIR");
		return -EINVAL;
	}
	if (o->psk_file != NULL) {
		rc = psk_file_check(o->psk_file, err, err_len);
		if (rc != 0)
			return rc;
	}
	rc = gnutls_global_init();
	if (rc != GNUTLS_E_SUCCESS) {
		err_set(err, err_len, "GnuTLS: %s", gnutls_strerror(rc));
		return -EINVAL;
	}
	g_tls_init = true;
	if (o->certs_dir != NULL) {
		rc = x509_setup(o->certs_dir, o->verify_peer, err, err_len);
	} else {
		rc = gnutls_psk_allocate_server_credentials(&g_psk);
		if (rc == GNUTLS_E_SUCCESS)
			rc = gnutls_psk_set_server_credentials_file(g_psk, o->psk_file);
		if (rc != GNUTLS_E_SUCCESS)
			err_set(err, err_len, "%s: %s", o->psk_file, gnutls_strerror(rc));
		rc = rc == GNUTLS_E_SUCCESS ? 0 : -EINVAL;
	}
	if (rc != 0) {
		nbd_tls_cleanup();
		return rc;
	}
	g_tls_mode = o->require ? NBD_TLS_REQUIRE : NBD_TLS_ON;
	return 0;
}

void
nbd_tls_cleanup(void)
{
	if (g_psk != NULL)
		gnutls_psk_free_server_credentials(g_psk);
	if (g_x509 != NULL)
		gnutls_certificate_free_credentials(g_x509);
	g_psk = NULL;
	g_x509 = NULL;
	if (g_tls_init)
		gnutls_global_deinit();
	g_tls_init = false;
	g_verify_peer = false;
	g_tls_mode = NBD_TLS_OFF;
}

static ssize_t
tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	struct nbd_conn *c = ptr;
	ssize_t n;

	if (c->ilen > 0) {
		/* Sent right behind STARTTLS, before we read the option: the handshake's. */
		size_t k = c->ilen < len ? c->ilen : len;

		memcpy(buf, c->ibuf, k);
		memmove(c->ibuf, c->ibuf + k, c->ilen - k);
		c->ilen -= k;
		return (ssize_t)k;
	}
	n = recv(c->fd, buf, len, 0);
	if (n < 0)
		gnutls_transport_set_errno(c->tls, errno);
	return n;
}

static ssize_t
tls_push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
	struct nbd_conn *c = ptr;
	ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0)
		gnutls_transport_set_errno(c->tls, errno);
	return n;
}

/* One step of the handshake: 1 done, 0 not yet (waiting on the socket), -1 failed. */
static int
tls_handshake(struct nbd_conn *c)
{
	int rc = gnutls_handshake(c->tls);

	if (rc == GNUTLS_E_SUCCESS) {
		const char *who = g_psk ? gnutls_psk_server_get_username(c->tls) : NULL;

		c->handshaking = false;
		nbd_session_tls_started(&c->s);
		LOG_INFO("nbd: %s: TLS on (%s)", c->exp->bdev_name,
			 who		 ? who
			 : g_verify_peer ? "client certificate verified"
					 : "x509");
		return 1;
	}
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
		conn_set_events(c, gnutls_record_get_direction(c->tls) ? EPOLLOUT : EPOLLIN);
		return 0;
	}
	snprintf(c->s.why, sizeof(c->s.why), "TLS handshake failed: %s", gnutls_strerror(rc));
	return -1;
}

static int
tls_start(struct nbd_conn *c)
{
	int rc = gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK);

	if (rc == GNUTLS_E_SUCCESS)
		rc = gnutls_priority_set_direct(
			c->tls,
			g_psk ? "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK:-VERS-TLS1.0:-VERS-TLS1.1"
			      : "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1",
			NULL);
	if (rc == GNUTLS_E_SUCCESS)
		rc = g_psk ? gnutls_credentials_set(c->tls, GNUTLS_CRD_PSK, g_psk)
			   : gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, g_x509);
	if (rc == GNUTLS_E_SUCCESS && g_verify_peer) {
		/* The handshake fails unless the client's certificate chains to the CA. */
		gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_cert(c->tls, NULL, 0);
	}
	if (rc != GNUTLS_E_SUCCESS) {
		snprintf(c->s.why, sizeof(c->s.why), "cannot start TLS: %s", gnutls_strerror(rc));
		return -1;
	}
	gnutls_transport_set_ptr(c->tls, c);
	gnutls_transport_set_pull_function(c->tls, tls_pull);
	gnutls_transport_set_push_function(c->tls, tls_push);
	gnutls_handshake_set_timeout(c->tls, 0);
	c->handshaking = true;
	return tls_handshake(c) < 0 ? -1 : 0;
}

/* --- connections --- */

static void
conn_mark_dirty(struct nbd_conn *c)
{
	if (!c->is_dirty) {
		c->is_dirty = true;
		TAILQ_INSERT_TAIL(&c->nr->dirty, c, dirty_link);
	}
}

static void
conn_set_events(struct nbd_conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = &c->h};

	if (c->closing || events == c->events)
		return;
	if (epoll_ctl(c->nr->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = events;
}

/* Give back what a connection holds (also for one that never started). */
static void
conn_release(struct nbd_conn *c)
{
	struct nbd_export *exp = c->exp;

	if (c->bch != NULL)
		uraid_put_io_channel(c->bch);
	if (c->nch != NULL)
		uraid_put_io_channel(c->nch);
	free(c->ibuf);
	free(c);
	atomic_fetch_sub(&exp->conns, 1);
	export_unref(exp);
}

static void
conn_free(struct nbd_conn *c)
{
	if (c->is_dirty)
		TAILQ_REMOVE(&c->nr->dirty, c, dirty_link);
	TAILQ_REMOVE(&c->nr->conns, c, link);
	nbd_session_fini(&c->s);
	if (c->tls != NULL)
		gnutls_deinit(c->tls);
	conn_release(c);
}

/* Close the socket now; free once nothing is in flight at the bdev. */
static void
conn_close(struct nbd_conn *c, const char *why)
{
	struct nbd_request *req;

	if (!c->closing) {
		LOG_INFO("nbd: %s: connection closed: %s", c->exp->bdev_name, why);
		epoll_ctl(c->nr->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
		c->closing = true;
		while ((req = TAILQ_FIRST(&c->retry)) != NULL) {
			TAILQ_REMOVE(&c->retry, req, link);
			nbd_request_done(req, -ESHUTDOWN);
		}
	}
	if (c->submitted == 0)
		conn_free(c);
}

static void conn_io_done(void *arg, int status);

/* 0, or the submit error. */
static int
conn_submit(struct nbd_conn *c, struct nbd_request *req)
{
	struct uraid_bdev_desc *d = c->exp->desc;
	uint32_t bs = c->exp->info.block_size;
	uint64_t off = req->offset / bs, num = req->length / bs;

	/* step 1: the flush that makes a TRIM or WRITE_ZEROES with FUA durable. */
	if (req->step == 1 || req->type == NBD_CMD_FLUSH)
		return uraid_bdev_flush(d, c->bch, conn_io_done, req);
	switch (req->type) {
	case NBD_CMD_READ:
		return uraid_bdev_read(d, c->bch, req->data, off, num, conn_io_done, req);
	case NBD_CMD_WRITE:
		return uraid_bdev_write(d, c->bch, req->data, off, num,
					(req->flags & NBD_CMD_FLAG_FUA) ? URAID_IO_FUA : 0,
					conn_io_done, req);
	case NBD_CMD_TRIM:
		return uraid_bdev_unmap(d, c->bch, off, num, conn_io_done, req);
	case NBD_CMD_WRITE_ZEROES:
		return uraid_bdev_write_zeroes(d, c->bch, off, num, conn_io_done, req);
	default:
		return -EINVAL;
	}
}

static bool
out_of_slots(int rc)
{
	return rc == -ENOMEM || rc == -EAGAIN;
}

/* Submit req: the submit error (out_of_slots: the caller queues it for a retry; any other
 * error has answered it). */
static int
conn_issue(struct nbd_conn *c, struct nbd_request *req)
{
	int rc = conn_submit(c, req);

	if (rc == 0)
		c->submitted++;
	else if (!out_of_slots(rc))
		nbd_request_done(req, rc);
	return rc;
}

static void
conn_run(struct nbd_conn *c, struct nbd_request *req)
{
	int rc;

	if (c->closing) {
		nbd_request_done(req, -ESHUTDOWN);
		return;
	}
	if ((req->type == NBD_CMD_FLUSH || req->step == 1) && !c->exp->can_flush) {
		nbd_request_done(req, 0); /* no volatile cache: nothing to flush */
		conn_mark_dirty(c);
		return;
	}
	rc = conn_issue(c, req);
	if (out_of_slots(rc))
		TAILQ_INSERT_TAIL(&c->retry, req, link);
	if (rc != 0)
		conn_mark_dirty(c);
}

static void
conn_io_done(void *arg, int status)
{
	struct nbd_request *req = arg;
	struct nbd_conn *c = req->session->ctx;

	c->submitted--;
	if (status == 0 && req->step == 0 && (req->flags & NBD_CMD_FLAG_FUA) &&
	    (req->type == NBD_CMD_TRIM || req->type == NBD_CMD_WRITE_ZEROES)) {
		req->step = 1;
		conn_run(c, req);
		return;
	}
	nbd_request_done(req, status);
	if (c->closing)
		conn_close(c, "");
	else
		conn_mark_dirty(c);
}

static int
session_attach(void *ctx)
{
	struct nbd_conn *c = ctx;

	return atomic_load(&c->exp->stopping) ? -ESHUTDOWN : 0;
}

static void
session_request(void *ctx, struct nbd_request *req)
{
	conn_run(ctx, req);
}

static const struct nbd_session_ops g_session_ops = {
	.attach = session_attach,
	.request = session_request,
};

/* Send what the session has queued, as far as the socket takes it. */
static int
conn_flush_tls(struct nbd_conn *c)
{
	struct nbd_out *out;

	/* A record a piece. After GNUTLS_E_AGAIN the same piece is offered again, as GnuTLS
	 * wants: it stays at the head of the queue until sent. */
	while ((out = STAILQ_FIRST(&c->s.out)) != NULL) {
		struct iovec *v = out->iov[0].iov_len != 0 ? &out->iov[0] : &out->iov[1];
		ssize_t n = gnutls_record_send(c->tls, v->iov_base, v->iov_len);

		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			conn_set_events(c, c->events | EPOLLOUT);
			return 0;
		}
		if (n < 0)
			return -EIO;
		nbd_session_sent(&c->s, (size_t)n);
	}
	if (c->events & EPOLLOUT)
		conn_set_events(c, c->events & ~(uint32_t)EPOLLOUT);
	return 0;
}

static int
conn_flush(struct nbd_conn *c)
{
	if (c->tls != NULL)
		return conn_flush_tls(c);
	while (!STAILQ_EMPTY(&c->s.out)) {
		struct iovec iov[NBD_SEND_IOV];
		struct msghdr msg = {.msg_iov = iov};
		struct nbd_out *out;
		ssize_t n;

		STAILQ_FOREACH(out, &c->s.out, link) {
			for (int i = 0; i < 2 && msg.msg_iovlen < NBD_SEND_IOV; i++)
				if (out->iov[i].iov_len != 0)
					iov[msg.msg_iovlen++] = out->iov[i];
			if (msg.msg_iovlen >= NBD_SEND_IOV - 1)
				break;
		}
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_set_events(c, c->events | EPOLLOUT);
				return 0;
			}
			return -errno;
		}
		nbd_session_sent(&c->s, (size_t)n);
	}
	if (c->events & EPOLLOUT)
		conn_set_events(c, c->events & ~(uint32_t)EPOLLOUT);
	return 0;
}

static void
conn_feed(struct nbd_conn *c)
{
	size_t used = nbd_session_input(&c->s, c->ibuf, c->ilen);

	if (used != 0) {
		memmove(c->ibuf, c->ibuf + used, c->ilen - used);
		c->ilen -= used;
	}
}

static void
conn_read_tls(struct nbd_conn *c)
{
	for (int round = 0; round < 16 && c->ilen < NBD_INBUF_BYTES; round++) {
		ssize_t n =
			gnutls_record_recv(c->tls, c->ibuf + c->ilen, NBD_INBUF_BYTES - c->ilen);

		if (n == GNUTLS_E_AGAIN)
			break;
		if (n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0) {
			c->eof = true;
			break;
		}
		c->ilen += (size_t)n;
		conn_feed(c);
		if (nbd_session_busy(&c->s))
			break;
	}
	/* Records GnuTLS has already taken off the socket wake no epoll: come back for them. */
	if (!c->eof && gnutls_record_check_pending(c->tls) > 0)
		conn_mark_dirty(c);
}

static void
conn_read(struct nbd_conn *c)
{
	if (c->tls != NULL) {
		conn_read_tls(c);
		return;
	}
	for (int round = 0; round < 4 && c->ilen < NBD_INBUF_BYTES; round++) {
		size_t room = NBD_INBUF_BYTES - c->ilen;
		ssize_t n = recv(c->fd, c->ibuf + c->ilen, room, 0);

		if (n == 0 ||
		    (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			c->eof = true;
			break;
		}
		if (n < 0)
			break;
		c->ilen += (size_t)n;
		conn_feed(c);
		/* Less than the room: the socket is empty now, and a recv to find that out
		 * would cost a system call per round. What arrives later wakes epoll (level
		 * triggered) for the next round. */
		if ((size_t)n < room || nbd_session_busy(&c->s))
			break;
	}
}

static void
conn_service(struct nbd_conn *c)
{
	struct nbd_request *req;
	bool busy;

	if (c->closing)
		return;
	while ((req = TAILQ_FIRST(&c->retry)) != NULL) {
		TAILQ_REMOVE(&c->retry, req, link);
		if (out_of_slots(conn_issue(c, req))) {
			TAILQ_INSERT_HEAD(&c->retry, req, link);
			conn_mark_dirty(c); /* try again next round */
			break;
		}
	}
	if (c->handshaking)
		return;
	if (c->ilen != 0)
		conn_feed(c);
	if (c->tls != NULL && c->ilen < NBD_INBUF_BYTES && !nbd_session_busy(&c->s) &&
	    gnutls_record_check_pending(c->tls) > 0)
		conn_read_tls(c);
	if (conn_flush(c) != 0) {
		conn_close(c, "send failed");
		return;
	}
	if (c->s.state == NBD_S_STARTTLS && STAILQ_EMPTY(&c->s.out) && c->tls == NULL) {
		/* The acknowledgement went out in the clear: the handshake takes the socket. */
		if (tls_start(c) != 0) {
			conn_close(c, c->s.why);
			return;
		}
		if (!c->handshaking)
			conn_mark_dirty(c); /* done at once: go on with the options */
		return;
	}
	if (c->s.state == NBD_S_CLOSE) {
		conn_close(c, c->s.why);
		return;
	}
	if (c->s.state == NBD_S_CLOSE_AFTER || c->eof) {
		/* Answer what is in flight, then close (a client gone answers nobody). */
		if (c->s.inflight == 0 && STAILQ_EMPTY(&c->s.out))
			conn_close(c, c->s.why[0] ? c->s.why : "the client closed the connection");
		else if (c->eof && c->submitted == 0 && TAILQ_EMPTY(&c->retry))
			conn_close(c, "the client closed the connection");
		else
			conn_set_events(c, c->events & ~(uint32_t)EPOLLIN);
		return;
	}
	/* Flow control: read the socket only while the session takes input. */
	busy = nbd_session_busy(&c->s) || c->ilen == NBD_INBUF_BYTES;
	conn_set_events(c, busy ? (c->events & ~(uint32_t)EPOLLIN) : (c->events | EPOLLIN));
}

static void
conn_event(struct nbd_conn *c, uint32_t events)
{
	if (c->handshaking) {
		int rc = tls_handshake(c);

		if (rc < 0) {
			conn_close(c, c->s.why);
			return;
		}
		if (rc == 0)
			return;
		conn_set_events(c, EPOLLIN);
	} else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		conn_read(c);
	}
	conn_service(c);
}

/* --- the per-reactor channel and its poller --- */

static void accept_all(struct nbd_export *exp);

static int
nbd_poll(void *arg)
{
	struct nbd_reactor *nr = arg;
	struct epoll_event ev[NBD_EPOLL_BATCH];
	struct nbd_conn *c;
	int n = epoll_wait(nr->epfd, ev, NBD_EPOLL_BATCH, 0);
	bool busy = n > 0;

	for (int i = 0; i < n; i++) {
		struct nbd_handle *h = ev[i].data.ptr;

		if (h->listener)
			accept_all((struct nbd_export *)h);
		else
			conn_event((struct nbd_conn *)h, ev[i].events);
	}
	while ((c = TAILQ_FIRST(&nr->dirty)) != NULL) {
		TAILQ_REMOVE(&nr->dirty, c, dirty_link);
		c->is_dirty = false;
		conn_service(c);
		busy = true;
	}
	return busy ? URAID_POLLER_BUSY : URAID_POLLER_IDLE;
}

static int
nbd_channel_create(void *io_device UNUSED, void *ctx)
{
	struct nbd_reactor *nr = ctx;

	TAILQ_INIT(&nr->conns);
	TAILQ_INIT(&nr->dirty);
	nr->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (nr->epfd < 0)
		return -errno;
	nr->poller = uraid_poller_register(nbd_poll, nr, 0);
	if (nr->poller == NULL || uraid_reactor_add_wake_fd(nr->epfd) != 0) {
		uraid_poller_unregister(&nr->poller);
		close(nr->epfd);
		return -ENOMEM;
	}
	return 0;
}

static void
nbd_channel_destroy(void *io_device UNUSED, void *ctx)
{
	struct nbd_reactor *nr = ctx;

	uraid_reactor_remove_wake_fd(nr->epfd);
	uraid_poller_unregister(&nr->poller);
	close(nr->epfd);
}

/* --- accepting: on reactor 0 --- */

static void
conn_start(void *arg)
{
	struct nbd_conn *c = arg;
	struct nbd_export *exp = c->exp;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->h};

	if (atomic_load(&exp->stopping))
		goto fail;
	c->nch = uraid_get_io_channel(&g_nbd_device);
	if (c->nch == NULL)
		goto fail;
	c->nr = uraid_io_channel_get_ctx(c->nch);
	c->bch = uraid_bdev_get_io_channel(exp->desc);
	c->ibuf = malloc(NBD_INBUF_BYTES);
	if (c->bch == NULL || c->ibuf == NULL)
		goto fail;
	c->events = EPOLLIN;
	if (epoll_ctl(c->nr->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		goto fail;
	TAILQ_INIT(&c->retry);
	TAILQ_INSERT_TAIL(&c->nr->conns, c, link);
	nbd_session_init(&c->s, &exp->info, &g_session_ops, c);
	conn_mark_dirty(c); /* send the greeting */
	return;
fail:
	close(c->fd);
	conn_release(c);
}

static void
accept_all(struct nbd_export *exp)
{
	for (;;) {
		int fd = accept4(exp->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct nbd_conn *c;
		int one = 1;

		if (fd < 0)
			return;
		if (atomic_load(&exp->stopping) || atomic_load(&exp->conns) >= NBD_MAX_CONNS ||
		    (c = calloc(1, sizeof(*c))) == NULL) {
			LOG_WARNING("nbd: %s: refusing a connection (%d open)", exp->bdev_name,
				    atomic_load(&exp->conns));
			close(fd);
			continue;
		}
		if (!exp->is_unix)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->exp = exp;
		atomic_fetch_add(&exp->refs, 1);
		atomic_fetch_add(&exp->conns, 1);
		uraid_reactor_send(uraid_reactor_get(exp->next_reactor++ % uraid_reactor_count()),
				   conn_start, c);
	}
}

static void
listener_start(void *arg)
{
	struct nbd_export *exp = arg;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &exp->h};
	struct nbd_reactor *nr;

	exp->listen_ch = uraid_get_io_channel(&g_nbd_device);
	if (exp->listen_ch == NULL) {
		LOG_ERR("nbd: %s: cannot serve %s: no nbd channel", exp->bdev_name, exp->device);
		return;
	}
	nr = uraid_io_channel_get_ctx(exp->listen_ch);
	if (epoll_ctl(nr->epfd, EPOLL_CTL_ADD, exp->listen_fd, &ev) != 0)
		LOG_ERR("nbd: %s: epoll: %s", exp->device, strerror(errno));
}

/* --- stopping --- */

static void
close_conns_on_reactor(struct uraid_channel_iter *iter)
{
	struct nbd_export *exp = uraid_channel_iter_get_ctx(iter);
	struct nbd_reactor *nr = uraid_io_channel_get_ctx(uraid_channel_iter_get_channel(iter));
	struct nbd_conn *c, *tmp;

	TAILQ_FOREACH_SAFE(c, &nr->conns, link, tmp) {
		if (c->exp == exp && !c->closing)
			conn_close(c, "the export stopped");
	}
	uraid_for_each_channel_continue(iter, 0);
}

static void
close_conns_done(struct uraid_channel_iter *iter, int status UNUSED)
{
	export_unref(uraid_channel_iter_get_ctx(iter));
}

static void
listener_stop(void *arg)
{
	struct nbd_export *exp = arg;

	if (exp->listen_ch != NULL) {
		struct nbd_reactor *nr = uraid_io_channel_get_ctx(exp->listen_ch);

		epoll_ctl(nr->epfd, EPOLL_CTL_DEL, exp->listen_fd, NULL);
	}
	close(exp->listen_fd);
	if (exp->is_unix)
		unlink(exp->device);
	if (exp->listen_ch != NULL)
		uraid_put_io_channel(exp->listen_ch);
	exp->listen_ch = NULL;
	uraid_for_each_channel(&g_nbd_device, close_conns_on_reactor, exp, close_conns_done);
}

/* Stop exp (found in g_exports; g_lock held): cb(arg) runs when its last connection is gone. */
static void
export_stop_locked(struct nbd_export *exp, void (*cb)(void *arg), void *arg)
{
	TAILQ_REMOVE(&g_exports, exp, link);
	exp->stopped_cb = cb;
	exp->stopped_arg = arg;
	atomic_store(&exp->stopping, true);
	uraid_reactor_send(uraid_reactor_get(0), listener_stop, exp);
}

static void
export_event(enum uraid_bdev_event event, struct uraid_bdev *bdev UNUSED, void *ctx)
{
	struct nbd_export *exp = ctx, *e;

	if (event != URAID_BDEV_EVENT_REMOVE)
		return;
	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(e, &g_exports, link) {
		if (e == exp) {
			LOG_NOTE("nbd: %s is going away: stopping its export on %s", exp->bdev_name,
				 exp->device);
			export_stop_locked(exp, NULL, NULL);
			break;
		}
	}
	pthread_mutex_unlock(&g_lock);
}

/* --- starting --- */

/* host:port, [v6]:port, :port or a bare port number is TCP; anything else names a Unix
 * socket (a path: absolute, ./relative, or a plain file name without a colon). */
static bool
device_is_tcp(const char *device)
{
	return device[0] != '/' && device[0] != '.' &&
	       (strchr(device, ':') != NULL || strspn(device, "0123456789") == strlen(device));
}

/* The preferred request size: the array's full stripe (rounded down to a power of two), or
 * 4 KiB, and never below the block size. */
static uint32_t
preferred_size(struct uraid_bdev *bdev, uint32_t block_size)
{
	struct uraid_array_info ai;
	uint64_t pref = 4096;

	if (uraid_array_get_info(bdev, &ai) == 0) {
		uint64_t stripe =
			(uint64_t)ai.strip_size_kb * 1024u * (ai.data_chunks ? ai.data_chunks : 1);

		while (pref * 2 <= stripe && pref * 2 <= NBD_MAX_PAYLOAD)
			pref *= 2;
	}
	return pref < block_size ? block_size : (uint32_t)pref;
}

static int
export_create(const char *bdev_name, const char *device, char *err, size_t err_len)
{
	struct nbd_export *exp, *e;
	struct uraid_bdev *bdev;
	int rc;

	if (strlen(device) == 0 || strlen(device) >= NBD_DEVICE_MAX) {
		err_set(err, err_len,
			"nbd_device must be a socket path or host:port (at most %d bytes)",
			NBD_DEVICE_MAX - 1);
		return -EINVAL;
	}
	TAILQ_FOREACH(e, &g_exports, link) {
		if (strcmp(e->device, device) == 0) {
			err_set(err, err_len, "%s already exports %s; stop it first", device,
				e->bdev_name);
			return -EEXIST;
		}
	}
	exp = calloc(1, sizeof(*exp));
	if (exp == NULL)
		return -ENOMEM;
	exp->h.listener = true;
	snprintf(exp->bdev_name, sizeof(exp->bdev_name), "%s", bdev_name);
	snprintf(exp->device, sizeof(exp->device), "%s", device);
	rc = uraid_bdev_open(bdev_name, true, export_event, exp, &exp->desc);
	if (rc != 0) {
		bdev = uraid_bdev_get_by_name(bdev_name);
		if (rc == -ENODEV)
			err_set(err, err_len, "no bdev named %s", bdev_name);
		else
			err_set(err, err_len, "%s is in use by %s; export the array instead",
				bdev_name,
				bdev && uraid_bdev_claimed_by(bdev) ? uraid_bdev_claimed_by(bdev)
								    : "another user");
		free(exp);
		return rc;
	}
	bdev = uraid_bdev_desc_get_bdev(exp->desc);
	exp->is_unix = !device_is_tcp(device);
	exp->listen_fd = exp->is_unix ? sock_listen_unix(device, err, err_len)
				      : sock_listen_tcp(device, err, err_len);
	if (exp->listen_fd < 0) {
		rc = exp->listen_fd;
		uraid_bdev_close(exp->desc);
		free(exp);
		return rc;
	}
	snprintf(exp->info.name, sizeof(exp->info.name), "%s", bdev_name);
	exp->info.block_size = uraid_bdev_get_block_size(bdev);
	exp->info.size = uraid_bdev_get_num_blocks(bdev) * exp->info.block_size;
	exp->info.pref_block_size = preferred_size(bdev, exp->info.block_size);
	exp->info.can_trim = uraid_bdev_io_type_supported(bdev, URAID_IO_UNMAP);
	exp->info.can_zeroes = uraid_bdev_io_type_supported(bdev, URAID_IO_WRITE_ZEROES);
	exp->can_flush = uraid_bdev_io_type_supported(bdev, URAID_IO_FLUSH);
	exp->info.tls = (uint8_t)g_tls_mode;
	atomic_store(&exp->refs, 1);
	if (!g_registered) {
		uraid_io_device_register(&g_nbd_device, nbd_channel_create, nbd_channel_destroy,
					 sizeof(struct nbd_reactor), "nbd");
		g_registered = true;
	}
	TAILQ_INSERT_TAIL(&g_exports, exp, link);
	uraid_reactor_send(uraid_reactor_get(0), listener_start, exp);
	LOG_NOTE("nbd: exporting %s (%" PRIu64 " bytes, %u-byte blocks) on %s", bdev_name,
		 exp->info.size, exp->info.block_size, device);
	return 0;
}

static void
wait_flag_set(void *arg)
{
	atomic_store_explicit((_Atomic bool *)arg, true, memory_order_release);
}

void
nbd_stop_all(void)
{
	struct nbd_export *exp;

	for (;;) {
		_Atomic bool done = false;

		pthread_mutex_lock(&g_lock);
		exp = TAILQ_FIRST(&g_exports);
		if (exp != NULL)
			export_stop_locked(exp, wait_flag_set, &done);
		pthread_mutex_unlock(&g_lock);
		if (exp == NULL)
			break;
		uraid_runtime_wait(&done);
	}
	if (g_registered) {
		uraid_io_device_unregister(&g_nbd_device, NULL);
		g_registered = false;
	}
}

json_t *
nbd_save_config(void)
{
	json_t *list = json_array();
	struct nbd_export *exp;

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(exp, &g_exports, link) {
		json_array_append_new(list, json_pack("{s:s, s:{s:s, s:s}}", "method",
						      "nbd_start_disk", "params", "bdev_name",
						      exp->bdev_name, "nbd_device", exp->device));
	}
	pthread_mutex_unlock(&g_lock);
	return list;
}

/* --- RPC methods --- */

struct nbd_start_params {
	char *bdev_name;
	char *nbd_device;
};

static void
rpc_nbd_start_disk(struct rpc_request *req, const json_t *params)
{
	static const struct param_spec spec[] = {
		PARAM(struct nbd_start_params, bdev_name, PT_STRING, true),
		PARAM(struct nbd_start_params, nbd_device, PT_STRING, true),
	};
	struct nbd_start_params p = {0};
	char err[256];
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(spec), &p) != 0)
		return;
	pthread_mutex_lock(&g_lock);
	rc = export_create(p.bdev_name, p.nbd_device, err, sizeof(err));
	pthread_mutex_unlock(&g_lock);
	if (rc != 0) {
		rpc_error_errno(req, rc, "%s", err);
		return;
	}
	rpc_result(req, json_string(p.nbd_device));
}

static void
stop_done(void *arg)
{
	rpc_result_bool(arg, true);
}

static void
rpc_nbd_stop_disk(struct rpc_request *req, const json_t *params)
{
	static const struct param_spec spec[] = {
		PARAM(struct nbd_start_params, nbd_device, PT_STRING, true),
	};
	struct nbd_start_params p = {0};
	struct nbd_export *exp;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(spec), &p) != 0)
		return;
	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(exp, &g_exports, link) {
		if (strcmp(exp->device, p.nbd_device) == 0)
			break;
	}
	if (exp != NULL)
		export_stop_locked(exp, stop_done, req);
	pthread_mutex_unlock(&g_lock);
	if (exp == NULL)
		rpc_error_errno(req, -ENODEV, "no export on %s (nbd_get_disks lists them)",
				p.nbd_device);
}

static void
rpc_nbd_get_disks(struct rpc_request *req, const json_t *params)
{
	static const struct param_spec spec[] = {
		PARAM(struct nbd_start_params, nbd_device, PT_STRING, false),
	};
	struct nbd_start_params p = {0};
	struct nbd_export *exp;
	json_t *list;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(spec), &p) != 0)
		return;
	list = json_array();
	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(exp, &g_exports, link) {
		if (p.nbd_device != NULL && strcmp(exp->device, p.nbd_device) != 0)
			continue;
		json_array_append_new(list, json_pack("{s:s, s:s, s:i}", "nbd_device", exp->device,
						      "bdev_name", exp->bdev_name, "connections",
						      atomic_load(&exp->conns)));
	}
	pthread_mutex_unlock(&g_lock);
	if (p.nbd_device != NULL && json_array_size(list) == 0) {
		json_decref(list);
		rpc_error_errno(req, -ENODEV, "no export on %s", p.nbd_device);
		return;
	}
	rpc_result(req, list);
}

const struct rpc_method nbd_rpc_methods[] = {
	{"nbd_start_disk", rpc_nbd_start_disk,
	 "export a bdev over NBD on a Unix socket path or host:port"},
	{"nbd_stop_disk", rpc_nbd_stop_disk, "stop an NBD export and close its connections"},
	{"nbd_get_disks", rpc_nbd_get_disks, "list the NBD exports"},
};
const size_t nbd_rpc_num_methods = ARRAY_SIZE(nbd_rpc_methods);
