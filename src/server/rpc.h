/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private interface of the server layer: the method table shared by the config loader and the
 * JSON-RPC server, parameter decoding, and the config loader. Sectioned by file.
 */
#ifndef URAID_RPC_H
#define URAID_RPC_H

#include <jansson.h>

#include "common/common.h"

/* JSON-RPC 2.0 error codes. */
#define RPC_PARSE_ERROR	     -32700
#define RPC_INVALID_REQUEST  -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS   -32602
#define RPC_INTERNAL_ERROR   -32603

/* --- rpc.c: requests, the method table, parameter decoding --- */
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

#endif
