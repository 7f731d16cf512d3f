/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private interface of the server layer: the method table shared by the config loader and the
 * JSON-RPC server, parameter decoding, and the config loader. Sectioned by file.
 */
#ifndef URAID_RPC_H
#define URAID_RPC_H

#include <jansson.h>

#include <sys/uio.h>

#include "common/common.h"
#include "uraid/bdev.h"

struct uraid_array_info;

/* JSON-RPC 2.0 error codes. */
#define RPC_PARSE_ERROR	     -32700
#define RPC_INVALID_REQUEST  -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS   -32602
#define RPC_INTERNAL_ERROR   -32603

/* --- rpc_req.c: answers and parameter decoding; rpc.c: the method table --- */
struct rpc_request;
typedef void (*rpc_done_cb)(struct rpc_request *req, void *ctx);

struct rpc_request {
	const char *method;
	json_t *result; /* success: owned by the request */
	int err_code;	/* 0 = success */
	char err_msg[512];
	bool done;
	rpc_done_cb done_cb;
	void *done_ctx;
	json_t *saved_params; /* a copy of the params of a method save_config repeats */
	/* Called with saved_params (stolen) when the method answers a bdev name. */
	void (*record)(const char *method, json_t *params, const char *bdev_name);
};

/* A handler answers exactly once, now or later, with rpc_result() or rpc_error(). */
typedef void (*rpc_handler)(struct rpc_request *req, const json_t *params);

struct rpc_method {
	const char *name;
	rpc_handler handler;
	const char *summary;
};

void rpc_result(struct rpc_request *req, json_t *result); /* steals result */
void rpc_result_bool(struct rpc_request *req, bool value);
void rpc_error(struct rpc_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* An error from a negative errno, as SPDK reports them: code = errno, message = text. */
void rpc_error_errno(struct rpc_request *req, int neg_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Unregister bdev (unless something claims it) and answer when it is gone. */
struct uraid_bdev;
void rpc_delete_bdev(struct rpc_request *req, struct uraid_bdev *bdev);

const struct rpc_method *rpc_method_find(const char *name);
void rpc_method_foreach(void (*fn)(const struct rpc_method *m, void *ctx), void *ctx);
/* Run method with params (NULL = none); answers through req. */
void rpc_call(struct rpc_request *req, const char *method, const json_t *params);
/* Run method and wait for its answer (control thread): 0 and the result in *result (NULL: let
 * go), or -errno with the error message in err. */
int rpc_call_sync(const char *method, const json_t *params, json_t **result, char *err,
		  size_t err_len);

enum param_type {
	PT_STRING,  /* char * (borrowed from the JSON; valid while params is) */
	PT_U64,	    /* uint64_t */
	PT_U32,	    /* uint32_t */
	PT_I64,	    /* int64_t */
	PT_BOOL,    /* bool */
	PT_DOUBLE,  /* double */
	PT_UUID,    /* uint8_t[16] */
	PT_ZERO,    /* accepted for SPDK compatibility when 0/false/empty; no field */
	PT_STRINGS, /* json_t * (borrowed): an array of strings */
};

struct param_spec {
	const char *name;
	enum param_type type;
	size_t offset;
	bool required;
};

/* A param_spec array and its length, as rpc_decode takes them. */
#define ARRAY_AND_SIZE(a) a, ARRAY_SIZE(a)

#define PARAM(st, field, type, req)                    \
	{                                              \
#field, type, offsetof(st, field), req \
	}
/* Accepted for compatibility with SPDK configs when it holds 0/false/empty. */
#define PARAM_SPDK_ZERO(name)           \
	{                               \
		name, PT_ZERO, 0, false \
	}

/* Decode params (an object or NULL) into out by spec. Unknown keys, missing required keys and
 * wrong types answer req with an error naming the parameter, and return -EINVAL. */
int rpc_decode(struct rpc_request *req, const json_t *params, const struct param_spec *spec,
	       size_t num_spec, void *out);

/* --- bdev_rpc.c --- */
extern const struct rpc_method app_rpc_methods[];
extern const size_t app_rpc_num_methods;
extern const struct rpc_method bdev_rpc_methods[];
extern const size_t bdev_rpc_num_methods;
/* One bdev's counters in bdev_get_iostat's shape. */
json_t *iostat_to_json(const char *name, const struct uraid_bdev_io_stats *st, uint32_t block_size);

/* --- raid_rpc.c --- */
extern const struct rpc_method raid_rpc_methods[];
extern const size_t raid_rpc_num_methods;

/* --- config.c --- */

/* Load an SPDK-style JSON config file: run the methods of its "bdev" subsystem in order.
 * Returns 0, or -errno with a one-line message in err. Must run where the handlers may (the
 * control thread); handlers that answer later are waited for by polling reactor 0 in manual
 * mode or by sleeping otherwise. */
int config_load_file(const char *path, char *err, size_t err_len);
int config_load_json(const json_t *root, const char *origin, char *err, size_t err_len);
/* A bdev create method save_config repeats while the bdev lives. */
bool config_method_saved(const char *method);
/* A saved create method answered with the bdev's name: remember the call (steals params). */
void config_record(const char *method, json_t *params, const char *bdev_name);
extern const struct rpc_method config_rpc_methods[];
extern const size_t config_rpc_num_methods;
/* What save_config answers: the calls that rebuild what runs now. Control thread. */
json_t *config_current(void);
/* Keep the file at path current (serve --config): written now, then by config_keep_now
 * whenever what config_current says changed; atomically, the previous version kept as
 * path.bak. 0, or -errno with a one-line message. Control thread. */
int config_keep(const char *path, char *err, size_t err_len);
int config_keep_now(char *err, size_t err_len);
void config_keep_stop(void);

/* --- raid_rpc.c --- */
/* bdev_raid_create calls for the arrays a config must create (those without superblocks). */
json_t *raid_save_config(void);
/* That call for one array (NULL if it has superblocks); looks up no bdev. Any thread. */
json_t *raid_create_call(struct uraid_bdev *bdev);
/* Append to list the bdev_raid_set_options call for options that are not the defaults. */
void raid_options_call(json_t *list);
/* Append to list a bdev_raid_add_spare call for each spare of array (NULL: the pool's).
 * Control thread or reactor 0; looks up no bdev. */
void raid_spare_calls(json_t *list, struct uraid_bdev *array);
/* An array as bdev_raid_get_bdevs shows it (SPDK's shape, and ours). Control thread or
 * reactor 0. */
json_t *raid_info_json(struct uraid_bdev *bdev);
/* The array holding the bdev name as a member (a bdev is a member of one array at most), its
 * info and the member's slot; NULL if none. */
struct uraid_bdev *raid_array_holding(const char *name, struct uraid_array_info *info,
				      unsigned *slot);

/* --- scan.c: bdev_raid_scan --- */
extern const struct rpc_method scan_rpc_methods[];
extern const size_t scan_rpc_num_methods;

/* --- jsonrpc.c: the JSON-RPC 2.0 server on a Unix socket (control thread) --- */
struct jsonrpc_server;
/* Listen on path (0600). -EADDRINUSE if another process serves there; a stale socket file is
 * replaced. */
int jsonrpc_server_create(const char *path, struct jsonrpc_server **server, char *err,
			  size_t err_len);
/* Serve one round of events, waiting up to timeout_ms. 1 if stop_fd became readable (the
 * caller stops), 0 otherwise, -errno on failure. */
int jsonrpc_server_poll(struct jsonrpc_server *server, int stop_fd, int timeout_ms);
void jsonrpc_server_destroy(struct jsonrpc_server *server);

/* --- sock.c: listening sockets --- */

/* A Unix socket at path, mode 0600; a stale socket file is replaced. fd or -errno
 * (-EADDRINUSE: another process serves there). */
int sock_listen_unix(const char *path, char *err, size_t err_len);
/* "host:port", "[v6]:port", ":port" or "port" (host 127.0.0.1). 0 or -EINVAL. */
int sock_parse_tcp(const char *spec, char *host, size_t host_len, char *port, size_t port_len);
/* TCP on spec (as sock_parse_tcp). fd or -errno. */
int sock_listen_tcp(const char *spec, char *err, size_t err_len);

/* --- nbd_proto.c: the NBD protocol (fixed newstyle handshake, requests, replies); no I/O --- */

/* The largest WRITE or READ payload served; larger writes are consumed and refused. */
#define NBD_MAX_PAYLOAD (32u << 20)
/* Requests one connection may have in flight; input stops being parsed beyond this. */
#define NBD_MAX_INFLIGHT 256
/* Payload buffers a session keeps for reuse, and their bytes at most: a fresh large buffer
 * costs a mapping, a page fault per page and an unmapping (10x the copy itself). */
#define NBD_BUF_CACHE	    16
#define NBD_BUF_CACHE_BYTES (16u << 20)

enum nbd_cmd {
	NBD_CMD_READ = 0,
	NBD_CMD_WRITE = 1,
	NBD_CMD_DISC = 2,
	NBD_CMD_FLUSH = 3,
	NBD_CMD_TRIM = 4,
	NBD_CMD_CACHE = 5,
	NBD_CMD_WRITE_ZEROES = 6,
};
#define NBD_CMD_FLAG_FUA     (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF	     (1u << 2)

/* What an export offers, fixed when the session starts. */
struct nbd_export_info {
	char name[URAID_BDEV_NAME_MAX];
	uint64_t size;		  /* bytes */
	uint32_t block_size;	  /* requests must be aligned to it */
	uint32_t pref_block_size; /* preferred request size (a full stripe) */
	bool read_only;
	bool can_trim;
	bool can_zeroes;
	uint8_t tls; /* enum nbd_tls_mode: whether NBD_OPT_STARTTLS is offered or required */
};

enum nbd_tls_mode {
	NBD_TLS_OFF,	 /* STARTTLS refused (NBD_REP_ERR_UNSUP) */
	NBD_TLS_ON,	 /* offered: a client may upgrade */
	NBD_TLS_REQUIRE, /* every option but STARTTLS and ABORT refused until TLS is up */
};

/* One queued piece of output: a header and an optional payload. */
struct nbd_out {
	STAILQ_ENTRY(nbd_out) link;
	struct iovec iov[2];
	void (*free_fn)(struct nbd_out *out);
};
STAILQ_HEAD(nbd_out_list, nbd_out);

/* One transmission request, from its header to its reply. */
struct nbd_request {
	struct nbd_out out; /* the reply, queued by nbd_request_done */
	struct nbd_session *session;
	uint64_t cookie;
	uint64_t offset; /* bytes */
	uint32_t length; /* bytes */
	uint16_t type;	 /* enum nbd_cmd */
	uint16_t flags;	 /* NBD_CMD_FLAG_* */
	uint32_t filled; /* WRITE payload bytes received so far */
	uint8_t *data;	 /* READ: the buffer to fill; WRITE: the payload (length bytes) */
	int step;	 /* free for the server (multi-step commands) */
	TAILQ_ENTRY(nbd_request) link; /* free for the server (retry queues) */
	uint8_t reply[32];
};

struct nbd_session_ops {
	/* The handshake chose the export: transmission begins. 0, or -errno to refuse (the
	 * export is going away). */
	int (*attach)(void *ctx);
	/* A validated request (in range, aligned, allowed): run it, then nbd_request_done(). */
	void (*request)(void *ctx, struct nbd_request *req);
};

enum nbd_state {
	NBD_S_CLIENT_FLAGS,
	NBD_S_OPTION,	   /* an option header */
	NBD_S_OPTION_DATA, /* its data */
	NBD_S_REQUEST,	   /* request header */
	NBD_S_PAYLOAD,	   /* a WRITE's payload */
	NBD_S_DISCARD,	   /* a refused request's payload, or an oversize option's data */
	NBD_S_CLOSE_AFTER, /* send what is queued, wait for requests in flight, then close */
	NBD_S_CLOSE,	   /* a protocol violation: close now */
	NBD_S_STARTTLS,	   /* STARTTLS acknowledged: no input until the connection's TLS
			    * handshake is done (nbd_session_tls_started) */
};

struct nbd_session {
	enum nbd_state state;
	struct nbd_export_info info;
	const struct nbd_session_ops *ops;
	void *ctx;
	bool no_zeroes;
	bool structured;
	bool tls_active; /* the rest of the session runs over TLS */
	uint8_t hdr[28]; /* the header being received */
	uint32_t hdr_fill;
	uint32_t opt;	   /* option being received */
	uint32_t opt_len;  /* its data length */
	uint8_t *opt_data; /* its data (opt_len bytes) */
	uint32_t opt_fill;
	uint64_t discard;	     /* bytes left to consume in NBD_S_DISCARD */
	struct nbd_request *cur;     /* request whose payload is being received */
	struct nbd_request *refused; /* answered once its payload is consumed */
	unsigned inflight;
	struct nbd_out_list out;
	size_t out_bytes;
	char why[128]; /* why the session is closing, for the log */
	/* Payload buffers of finished requests, kept for the next ones (nbd_proto.c). */
	void *cache[NBD_BUF_CACHE];
	uint32_t cache_size[NBD_BUF_CACHE];
	unsigned ncache;
	size_t cache_bytes;
};

/* Start a session: queues the server's greeting. */
void nbd_session_init(struct nbd_session *s, const struct nbd_export_info *info,
		      const struct nbd_session_ops *ops, void *ctx);
/* Feed received bytes; returns how many were consumed (fewer while the session is busy:
 * feed the rest again later). Check s->state afterwards for the close states. */
size_t nbd_session_input(struct nbd_session *s, const uint8_t *buf, size_t len);
/* True when the session takes no more input for now (too many requests or too much output). */
bool nbd_session_busy(const struct nbd_session *s);
/* Complete a request: status 0 or a negative errno. Queues the reply. */
void nbd_request_done(struct nbd_request *req, int status);
/* The server sent the first bytes of the queued output: trim it, free what went out whole. */
void nbd_session_sent(struct nbd_session *s, size_t bytes);
/* Free queued output and partial state; requests in flight must have completed. */
void nbd_session_fini(struct nbd_session *s);
/* The connection finished the TLS handshake that NBD_S_STARTTLS waited for: options go on. */
void nbd_session_tls_started(struct nbd_session *s);

/* --- nbd.c: NBD exports served by the reactors; the nbd_* RPC methods --- */
extern const struct rpc_method nbd_rpc_methods[];
extern const size_t nbd_rpc_num_methods;
/* nbd_start_disk calls for the exports running. */
json_t *nbd_save_config(void);
/* Stop every export and wait for their connections to close (control thread). */
void nbd_stop_all(void);
/* TLS for every export started afterwards: offered with the pre-shared keys in psk_file
 * (psktool's "identity:hex-key" lines) or the x509 certificate in certs_dir
 * (server-cert.pem, server-key.pem; ca-cert.pem for verify_peer, which requires clients to
 * present a certificate it signed); required if require (plain clients then see no export).
 * Neither: no TLS (require and verify_peer are then errors). Control thread, before exports. */
struct nbd_tls_opts {
	const char *psk_file;
	const char *certs_dir;
	bool require;
	bool verify_peer;
};
int nbd_tls_setup(const struct nbd_tls_opts *opts, char *err, size_t err_len);
void nbd_tls_cleanup(void);

/* --- control.c: work posted to the control thread --- */
/* Queue fn(arg) for the control thread (any thread). 0 or -ENOMEM. */
int control_post(void (*fn)(void *arg), void *arg);
/* Run what was posted (control thread); how many ran. */
unsigned control_run(void);
/* Take the bdev name back into the array that holds it, as a member come back (control
 * thread): a failed slot takes it back (catching up under a bitmap); an active one is failed
 * and taken back, by its superblock, if the array can spare it. 1 if an array holds it. */
int member_back(const char *name);
/* Connect remote members' comebacks to member_back (at start). */
void control_init(void);

#endif
