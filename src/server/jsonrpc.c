/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The JSON-RPC 2.0 server: a Unix socket served by the control thread.
 *
 * Theory of operation. One poll() loop owns the listening socket, every connection and an
 * eventfd. A connection's bytes are parsed as a stream of JSON values (objects, or arrays for
 * batches) with nothing required between them, as SPDK's server reads them; a value cut off
 * by the end of the bytes received so far waits for more. Each request runs its method
 * through the same table as the config loader. A method may answer at once or later from a
 * reactor: answers are queued under a mutex and the eventfd wakes the loop, which writes the
 * response (in request order per connection is not promised; ids tell them apart). Malformed
 * JSON gets a parse error and the connection is closed, since the stream cannot be resynced;
 * anything else wrong with a request gets an error response and the connection stays. A
 * connection that goes away with requests in flight is freed once they have answered.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rpc.h"

#define MAX_CLIENTS	 64
#define MAX_INPUT_BYTES	 (4u << 20)
#define MAX_BATCH	 256
#define READ_CHUNK_BYTES 65536

struct client {
	int fd;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_cap;
	unsigned pending; /* requests not yet answered */
	bool closing;	  /* no more input: close once answered and written */
	struct client *next;
};

struct batch {
	struct client *c;
	json_t *responses;
	unsigned remaining;
};

struct call {
	struct rpc_request req;
	struct client *c;
	struct batch *batch;
	json_t *id; /* NULL: a notification (no response) */
	char method[128];
	struct call *next_done;
};

struct jsonrpc_server {
	int listen_fd;
	int event_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct client *clients;
	unsigned nclients;
	pthread_mutex_t lock;
	struct call *done; /* answered, not yet sent (under lock) */
};

/* --- output --- */

static void collect_done(struct jsonrpc_server *s);

static void
client_queue(struct client *c, json_t *resp)
{
	char *text = json_dumps(resp, JSON_COMPACT);
	size_t len;

	json_decref(resp);
	if (text == NULL || c->fd < 0) {
		free(text);
		return;
	}
	len = strlen(text);
	if (c->out_len + len + 1 > c->out_cap) {
		size_t cap = (c->out_len + len + 1) * 2;
		char *p = realloc(c->out, cap);

		if (p == NULL) {
			free(text);
			c->closing = true;
			return;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, text, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	free(text);
}

static void
client_flush(struct client *c)
{
	while (c->out_len > 0 && c->fd >= 0) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			c->closing = true;
			c->out_len = 0;
			return;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
}

static json_t *
response_error(json_t *id, int code, const char *msg)
{
	return json_pack("{s:s, s:o, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
			 id ? json_incref(id) : json_null(), "error", "code", code, "message", msg);
}

static void
respond(struct client *c, struct batch *b, json_t *resp)
{
	if (b == NULL) {
		client_queue(c, resp);
		return;
	}
	json_array_append_new(b->responses, resp);
}

static void
batch_put(struct batch *b)
{
	if (--b->remaining > 0)
		return;
	/* A batch of notifications only gets no answer at all. */
	if (json_array_size(b->responses) > 0)
		client_queue(b->c, json_incref(b->responses));
	json_decref(b->responses);
	b->c->pending--;
	free(b);
}

/* --- requests --- */

static void
call_done_cb(struct rpc_request *req, void *ctx)
{
	struct call *call = (struct call *)req;
	struct jsonrpc_server *s = ctx;
	uint64_t one = 1;

	pthread_mutex_lock(&s->lock);
	call->next_done = s->done;
	s->done = call;
	pthread_mutex_unlock(&s->lock);
	if (write(s->event_fd, &one, sizeof(one)) < 0)
		LOG_ERR("rpc: cannot wake the server: %s", strerror(errno));
}

static void
call_finish(struct call *call)
{
	struct client *c = call->c;

	if (call->id != NULL) {
		json_t *resp;

		if (call->req.err_code == 0)
			resp = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", call->id,
					 "result",
					 call->req.result ? call->req.result : json_true());
		else
			resp = response_error(call->id, call->req.err_code, call->req.err_msg);
		respond(c, call->batch, resp);
	} else {
		json_decref(call->req.result);
	}
	json_decref(call->id);
	if (call->batch)
		batch_put(call->batch);
	else
		c->pending--;
	free(call);
}

static bool
valid_id(const json_t *id)
{
	return json_is_string(id) || json_is_integer(id) || json_is_real(id) || json_is_null(id);
}

/* One request object (of a batch, or alone). */
static void
handle_request(struct jsonrpc_server *s, struct client *c, struct batch *b, json_t *v)
{
	json_t *id = json_is_object(v) ? json_object_get(v, "id") : NULL;
	const char *version = json_string_value(json_object_get(v, "jsonrpc"));
	const char *method = json_string_value(json_object_get(v, "method"));
	json_t *params = json_object_get(v, "params");
	struct call *call;

	if (!json_is_object(v)) {
		respond(c, b, response_error(NULL, RPC_INVALID_REQUEST, "a request is an object"));
		return;
	}
	if (id != NULL && !valid_id(id)) {
		respond(c, b,
			response_error(NULL, RPC_INVALID_REQUEST,
				       "\"id\" must be a string, a number or null"));
		return;
	}
	if (version == NULL || strcmp(version, "2.0") != 0) {
		respond(c, b,
			response_error(id, RPC_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\""));
		return;
	}
	if (method == NULL) {
		respond(c, b,
			response_error(id, RPC_INVALID_REQUEST, "\"method\" must be a string"));
		return;
	}
	if (params != NULL && !json_is_object(params) && !json_is_null(params)) {
		respond(c, b,
			response_error(id, RPC_INVALID_PARAMS,
				       "\"params\" must be an object (named parameters)"));
		return;
	}
	call = calloc(1, sizeof(*call));
	if (call == NULL) {
		respond(c, b, response_error(id, RPC_INTERNAL_ERROR, "out of memory"));
		return;
	}
	call->c = c;
	call->batch = b;
	call->id = id ? json_incref(id) : NULL;
	snprintf(call->method, sizeof(call->method), "%s", method);
	call->req.done_cb = call_done_cb;
	call->req.done_ctx = s;
	if (b != NULL)
		b->remaining++;
	else
		c->pending++;
	rpc_call(&call->req, call->method, params);
}

static void
handle_value(struct jsonrpc_server *s, struct client *c, json_t *v)
{
	struct batch *b;
	size_t i;
	json_t *e;

	if (!json_is_array(v)) {
		handle_request(s, c, NULL, v);
		return;
	}
	if (json_array_size(v) == 0 || json_array_size(v) > MAX_BATCH) {
		client_queue(c, response_error(NULL, RPC_INVALID_REQUEST,
					       "a batch holds 1 to 256 requests"));
		return;
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL) {
		client_queue(c, response_error(NULL, RPC_INTERNAL_ERROR, "out of memory"));
		return;
	}
	b->c = c;
	b->responses = json_array();
	b->remaining = 1; /* guard */
	c->pending++;
	json_array_foreach(v, i, e) handle_request(s, c, b, e);
	batch_put(b);
}

/* The first byte at or after off that is not JSON whitespace. */
static size_t
skip_space(const struct client *c, size_t off)
{
	while (off < c->in_len && strchr(" \t\r\n", c->in[off]) != NULL)
		off++;
	return off;
}

/* Parse and run every complete value in the client's input. */
static void
client_parse(struct jsonrpc_server *s, struct client *c)
{
	size_t off = 0;

	while (!c->closing) {
		json_error_t err;
		json_t *v;

		off = skip_space(c, off);
		if (off == c->in_len)
			break;
		v = json_loadb(c->in + off, c->in_len - off, JSON_DISABLE_EOF_CHECK, &err);
		if (v == NULL) {
			char msg[300];

			if (json_error_code(&err) == json_error_premature_end_of_input &&
			    c->in_len < MAX_INPUT_BYTES)
				break;	 /* the rest has not arrived yet */
			collect_done(s); /* earlier requests answered first */
			snprintf(msg, sizeof(msg), "malformed JSON at byte %zu: %s",
				 off + (size_t)(err.position > 0 ? err.position : 0), err.text);
			client_queue(c, response_error(NULL, RPC_PARSE_ERROR, msg));
			c->closing = true; /* the stream cannot be resynced */
			off = c->in_len;
			break;
		}
		off += (size_t)err.position;
		handle_value(s, c, v);
		json_decref(v);
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void
client_read(struct jsonrpc_server *s, struct client *c)
{
	ssize_t n;

	if (c->in_cap - c->in_len < READ_CHUNK_BYTES) {
		size_t cap = c->in_cap + READ_CHUNK_BYTES * 2;
		char *p = realloc(c->in, cap);

		if (p == NULL) {
			c->closing = true;
			return;
		}
		c->in = p;
		c->in_cap = cap;
	}
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The peer is done sending: answer what is in flight; a value it left
		 * unfinished is an error. */
		if (n == 0 && skip_space(c, 0) < c->in_len) {
			collect_done(s);
			client_queue(
				c, response_error(NULL, RPC_PARSE_ERROR,
						  "malformed JSON: the input ends inside a value"));
		}
		c->in_len = 0;
		c->closing = true;
		return;
	}
	c->in_len += (size_t)n;
	client_parse(s, c);
}

static void
client_free(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* --- the server --- */

int
jsonrpc_server_create(const char *path, struct jsonrpc_server **out, char *err, size_t err_len)
{
	struct jsonrpc_server *s;
	int fd, rc;

	fd = sock_listen_unix(path, err, err_len);
	if (fd == -EADDRINUSE)
		err_set(err, err_len,
			"another uraid is serving on %s; stop it or give --rpc-socket", path);
	if (fd < 0)
		return fd;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	s->listen_fd = fd;
	s->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	snprintf(s->path, sizeof(s->path), "%s", path);
	pthread_mutex_init(&s->lock, NULL);
	if (s->event_fd < 0) {
		rc = -errno;
		jsonrpc_server_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

static void
accept_clients(struct jsonrpc_server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct client *c;

		if (fd < 0)
			return;
		if (s->nclients >= MAX_CLIENTS || (c = calloc(1, sizeof(*c))) == NULL) {
			LOG_WARNING("rpc: refusing a connection: %u already open", s->nclients);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->next = s->clients;
		s->clients = c;
		s->nclients++;
	}
}

static void
collect_done(struct jsonrpc_server *s)
{
	struct call *list, *next, *rev = NULL;
	uint64_t v;

	if (read(s->event_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		LOG_ERR("rpc: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&s->lock);
	list = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->lock);
	/* Pushed newest first: answer in the order they were answered. */
	while (list != NULL) {
		next = list->next_done;
		list->next_done = rev;
		rev = list;
		list = next;
	}
	for (list = rev; list != NULL; list = next) {
		next = list->next_done;
		call_finish(list);
	}
}

/* Close connections that are finished with; write what is queued. */
static void
sweep_clients(struct jsonrpc_server *s)
{
	struct client **pp = &s->clients;

	while (*pp != NULL) {
		struct client *c = *pp;

		client_flush(c);
		/* A peer that has sent its last request still gets every answer. */
		if (c->closing && c->fd >= 0 && c->pending == 0 && c->out_len == 0) {
			close(c->fd);
			c->fd = -1;
		}
		if (c->fd < 0 && c->pending == 0) {
			*pp = c->next;
			s->nclients--;
			client_free(c);
			continue;
		}
		pp = &c->next;
	}
}

int
jsonrpc_server_poll(struct jsonrpc_server *s, int stop_fd, int timeout_ms)
{
	struct pollfd fds[MAX_CLIENTS + 3];
	struct client *idx[MAX_CLIENTS];
	nfds_t n = 0;
	int rc;

	fds[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
	fds[n++] = (struct pollfd){.fd = s->event_fd, .events = POLLIN};
	fds[n++] = (struct pollfd){.fd = stop_fd, .events = POLLIN};
	for (struct client *c = s->clients; c != NULL; c = c->next) {
		if (c->fd < 0 || (c->closing && c->out_len == 0))
			continue; /* nothing to read or write until its answers come */
		idx[n - 3] = c;
		fds[n++] = (struct pollfd){
			.fd = c->fd,
			.events = (short)((c->closing ? 0 : POLLIN) | (c->out_len ? POLLOUT : 0))};
	}
	rc = poll(fds, n, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (fds[2].revents)
		return 1;
	if (fds[0].revents & POLLIN)
		accept_clients(s);
	if (fds[1].revents & POLLIN)
		collect_done(s);
	for (nfds_t i = 3; i < n; i++) {
		struct client *c = idx[i - 3];

		if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
			client_read(s, c);
	}
	sweep_clients(s);
	return 0;
}

void
jsonrpc_server_destroy(struct jsonrpc_server *s)
{
	struct client *c;

	if (s == NULL)
		return;
	/* Answers still to come: wait a little for them (their calls point at clients). */
	for (int i = 0; i < 500; i++) {
		unsigned pending = 0;

		collect_done(s);
		for (c = s->clients; c != NULL; c = c->next)
			pending += c->pending;
		if (pending == 0)
			break;
		usleep(10000);
	}
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
		s->listen_fd = -1;
	}
	for (c = s->clients; c != NULL; c = c->next) {
		client_flush(c);
		if (c->pending != 0) {
			/* A late answer will still refer to the server and its client: both are
			 * left allocated. */
			LOG_WARNING("rpc: shutting down with requests unanswered");
			return;
		}
	}
	while ((c = s->clients) != NULL) {
		s->clients = c->next;
		client_free(c);
	}
	if (s->event_fd >= 0)
		close(s->event_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
