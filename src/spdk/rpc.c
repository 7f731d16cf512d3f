/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The module's JSON-RPC methods: bdev_uraid_X is the daemon's bdev_raid_X (same parameters,
 * same checks, same answers), named so that it lives beside SPDK's own raid module. SPDK calls
 * the method on its app thread; the parameters are copied into jansson there, the daemon's
 * handler runs on the control thread (where core's control functions may wait), and the answer
 * is written back on the app thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <spdk/json.h>
#include <spdk/jsonrpc.h>
#include <spdk/rpc.h>
#include <spdk/thread.h>

#include "spdk_priv.h"

#include "server/rpc.h"

/* --- JSON between SPDK's parsed values and jansson --- */

static json_t *json_from_val(const struct spdk_json_val *v);

/* The value after v at its level: a container holds v->len values between its ends. */
static const struct spdk_json_val *
val_skip(const struct spdk_json_val *v)
{
	if (v->type == SPDK_JSON_VAL_ARRAY_BEGIN || v->type == SPDK_JSON_VAL_OBJECT_BEGIN)
		return v + v->len + 2;
	return v + 1;
}

static json_t *
number_from_val(const struct spdk_json_val *v)
{
	char text[64], *end;

	if (v->len == 0 || v->len >= sizeof(text))
		return NULL;
	memcpy(text, v->start, v->len);
	text[v->len] = '\0';
	if (strpbrk(text, ".eE") == NULL) {
		long long x;

		errno = 0;
		x = strtoll(text, &end, 10);
		if (errno == 0 && *end == '\0')
			return json_integer(x);
		return NULL; /* beyond int64: the handlers take nothing that large */
	}
	return json_real(strtod(text, NULL));
}

static json_t *
json_from_val(const struct spdk_json_val *v)
{
	switch (v->type) {
	case SPDK_JSON_VAL_STRING: {
		char *s = spdk_json_strdup(v);
		json_t *j = s ? json_string(s) : NULL;

		free(s);
		return j;
	}
	case SPDK_JSON_VAL_NUMBER:
		return number_from_val(v);
	case SPDK_JSON_VAL_TRUE:
		return json_true();
	case SPDK_JSON_VAL_FALSE:
		return json_false();
	case SPDK_JSON_VAL_NULL:
		return json_null();
	case SPDK_JSON_VAL_ARRAY_BEGIN: {
		json_t *a = json_array();
		const struct spdk_json_val *e = v + 1, *end = v + v->len + 1;

		while (a != NULL && e < end) {
			json_t *x = json_from_val(e);

			if (x == NULL || json_array_append_new(a, x) != 0) {
				json_decref(a);
				return NULL;
			}
			e = val_skip(e);
		}
		return a;
	}
	case SPDK_JSON_VAL_OBJECT_BEGIN: {
		json_t *o = json_object();
		const struct spdk_json_val *e = v + 1, *end = v + v->len + 1;

		while (o != NULL && e < end && e->type == SPDK_JSON_VAL_NAME) {
			char *key = spdk_json_strdup(e);
			json_t *x = key ? json_from_val(e + 1) : NULL;

			if (x == NULL || json_object_set_new(o, key, x) != 0) {
				free(key);
				json_decref(o);
				return NULL;
			}
			free(key);
			e = val_skip(e + 1);
		}
		return o;
	}
	default:
		return NULL;
	}
}

void
port_json_write(struct spdk_json_write_ctx *w, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *x;

		spdk_json_write_object_begin(w);
		json_object_foreach((json_t *)v, key, x)
		{
			spdk_json_write_name(w, key);
			port_json_write(w, x);
		}
		spdk_json_write_object_end(w);
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *x;

		spdk_json_write_array_begin(w);
		json_array_foreach(v, i, x) port_json_write(w, x);
		spdk_json_write_array_end(w);
		break;
	}
	case JSON_STRING:
		spdk_json_write_string(w, json_string_value(v));
		break;
	case JSON_INTEGER:
		spdk_json_write_int64(w, json_integer_value(v));
		break;
	case JSON_REAL:
		spdk_json_write_double(w, json_real_value(v));
		break;
	case JSON_TRUE:
		spdk_json_write_bool(w, true);
		break;
	case JSON_FALSE:
		spdk_json_write_bool(w, false);
		break;
	case JSON_NULL:
		spdk_json_write_null(w);
		break;
	}
}

/* --- the bridge --- */

struct bridge {
	struct spdk_jsonrpc_request *sreq;
	const struct rpc_method *m;
	json_t *params;
	struct rpc_request req;
};

static void
bridge_answer(void *arg)
{
	struct bridge *b = arg;

	if (b->req.err_code != 0) {
		spdk_jsonrpc_send_error_response(b->sreq, b->req.err_code, b->req.err_msg);
	} else {
		struct spdk_json_write_ctx *w = spdk_jsonrpc_begin_result(b->sreq);

		port_json_write(w, b->req.result ? b->req.result : json_true());
		spdk_jsonrpc_end_result(b->sreq, w);
	}
	json_decref(b->req.result);
	json_decref(b->params);
	free(b);
}

/* The handler answered (on the control thread or a reactor): reply from the app thread. */
static void
bridge_done(struct rpc_request *req UNUSED, void *ctx)
{
	struct bridge *b = ctx;

	while (spdk_thread_send_msg(spdk_thread_get_app_thread(), bridge_answer, b) != 0)
		;
}

static void
bridge_run(void *arg)
{
	struct bridge *b = arg;

	b->m->handler(&b->req, b->params);
}

static void
bridge_call(const char *ours, const char *method, struct spdk_jsonrpc_request *sreq,
	    const struct spdk_json_val *params)
{
	struct bridge *b;
	size_t i;

	for (i = 0; i < raid_rpc_num_methods; i++) {
		if (strcmp(raid_rpc_methods[i].name, ours) == 0)
			break;
	}
	b = calloc(1, sizeof(*b));
	if (i == raid_rpc_num_methods || b == NULL) {
		free(b);
		spdk_jsonrpc_send_error_response(sreq, SPDK_JSONRPC_ERROR_INTERNAL_ERROR,
						 "out of memory");
		return;
	}
	b->sreq = sreq;
	b->m = &raid_rpc_methods[i];
	b->req.method = method;
	b->req.done_cb = bridge_done;
	b->req.done_ctx = b;
	if (params != NULL) {
		if (params->type != SPDK_JSON_VAL_OBJECT_BEGIN ||
		    (b->params = json_from_val(params)) == NULL) {
			spdk_jsonrpc_send_error_response_fmt(
				sreq, SPDK_JSONRPC_ERROR_INVALID_PARAMS,
				"%s: params must be an object of strings, numbers, booleans "
				"and arrays (integers within 64 bits)",
				method);
			free(b);
			return;
		}
	}
	if (port_control_post(bridge_run, b) != 0) {
		json_decref(b->params);
		free(b);
		spdk_jsonrpc_send_error_response(sreq, SPDK_JSONRPC_ERROR_INTERNAL_ERROR,
						 "out of memory");
	}
}

/* SPDK hands a handler no method name: one small function per method. */
#define URAID_RPC(x)                                                         \
	static void rpc_bdev_uraid_##x(struct spdk_jsonrpc_request *req,     \
				       const struct spdk_json_val *params)   \
	{                                                                    \
		bridge_call("bdev_raid_" #x, "bdev_uraid_" #x, req, params); \
	}                                                                    \
	SPDK_RPC_REGISTER("bdev_uraid_" #x, rpc_bdev_uraid_##x, SPDK_RPC_RUNTIME)

URAID_RPC(create)
URAID_RPC(delete)
URAID_RPC(get_bdevs)
URAID_RPC(get_stats)
URAID_RPC(examine)
URAID_RPC(add_base_bdev)
URAID_RPC(add_spare)
URAID_RPC(remove_base_bdev)
URAID_RPC(fail_base_bdev)
URAID_RPC(replace_base_bdev)
URAID_RPC(set_options)
URAID_RPC(scrub)
