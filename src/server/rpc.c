/* SPDX-License-Identifier: BSD-3-Clause */
/* The method table, request answers, and declarative parameter decoding. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "rpc.h"
#include "uraid/bdev_module.h"
#include "uraid/thread.h"

void
rpc_result(struct rpc_request *req, json_t *result)
{
	if (req->saved_params != NULL) {
		if (json_is_string(result))
			config_record(req->method, req->saved_params, json_string_value(result));
		else
			json_decref(req->saved_params);
		req->saved_params = NULL;
	}
	req->result = result;
	req->err_code = 0;
	req->done = true;
	if (req->done_cb)
		req->done_cb(req, req->done_ctx);
}

void
rpc_result_bool(struct rpc_request *req, bool value)
{
	rpc_result(req, json_boolean(value));
}

static void __attribute__((format(printf, 3, 0)))
rpc_verror(struct rpc_request *req, int code, const char *fmt, va_list ap)
{
	vsnprintf(req->err_msg, sizeof(req->err_msg), fmt, ap);
	json_decref(req->saved_params);
	req->saved_params = NULL;
	req->err_code = code;
	req->done = true;
	if (req->done_cb)
		req->done_cb(req, req->done_ctx);
}

void
rpc_error(struct rpc_request *req, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rpc_verror(req, code, fmt, ap);
	va_end(ap);
}

void
rpc_error_errno(struct rpc_request *req, int neg_errno, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rpc_error(req, neg_errno, "%s: %s", msg, strerror(-neg_errno));
}

static void
delete_done(void *cb_arg, int status)
{
	struct rpc_request *req = cb_arg;

	if (status != 0)
		rpc_error_errno(req, status, "%s: delete failed", req->method);
	else
		rpc_result_bool(req, true);
}

void
rpc_delete_bdev(struct rpc_request *req, struct uraid_bdev *bdev)
{
	const char *owner = uraid_bdev_claimed_by(bdev);

	if (owner != NULL) {
		rpc_error(req, -EBUSY, "%s: '%s' is in use by '%s'; delete that first", req->method,
			  uraid_bdev_get_name(bdev), owner);
		return;
	}
	uraid_bdev_unregister(bdev, delete_done, req);
}

/* The method table: one section per file of methods. */
static const struct {
	const struct rpc_method *methods;
	const size_t *count;
} g_tables[] = {
	{app_rpc_methods, &app_rpc_num_methods},       {bdev_rpc_methods, &bdev_rpc_num_methods},
	{raid_rpc_methods, &raid_rpc_num_methods},     {nbd_rpc_methods, &nbd_rpc_num_methods},
	{config_rpc_methods, &config_rpc_num_methods}, {scan_rpc_methods, &scan_rpc_num_methods},
};

const struct rpc_method *
rpc_method_find(const char *name)
{
	for (size_t t = 0; t < ARRAY_SIZE(g_tables); t++) {
		for (size_t i = 0; i < *g_tables[t].count; i++) {
			if (strcmp(g_tables[t].methods[i].name, name) == 0)
				return &g_tables[t].methods[i];
		}
	}
	return NULL;
}

void
rpc_method_foreach(void (*fn)(const struct rpc_method *m, void *ctx), void *ctx)
{
	for (size_t t = 0; t < ARRAY_SIZE(g_tables); t++) {
		for (size_t i = 0; i < *g_tables[t].count; i++)
			fn(&g_tables[t].methods[i], ctx);
	}
}

void
rpc_call(struct rpc_request *req, const char *method, const json_t *params)
{
	const struct rpc_method *m = rpc_method_find(method);

	req->method = method;
	if (m == NULL) {
		rpc_error(req, RPC_METHOD_NOT_FOUND, "unknown method '%s'", method);
		return;
	}
	if (params != NULL && !json_is_object(params) && !json_is_null(params)) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: params must be an object", method);
		return;
	}
	if (config_method_saved(method))
		req->saved_params = params ? json_deep_copy(params) : json_object();
	m->handler(req, json_is_null(params) ? NULL : params);
}

static void
call_done(struct rpc_request *req UNUSED, void *ctx)
{
	atomic_store_explicit((_Atomic bool *)ctx, true, memory_order_release);
}

int
rpc_call_sync(const char *method, const json_t *params, json_t **result, char *err, size_t err_len)
{
	struct rpc_request req = {0};
	_Atomic bool done = false;

	/* Handlers that answer later do so from a reactor: wait for it. */
	req.done_cb = call_done;
	req.done_ctx = &done;
	rpc_call(&req, method, params);
	uraid_runtime_wait(&done);
	if (result != NULL)
		*result = req.result;
	else
		json_decref(req.result);
	if (req.err_code != 0) {
		snprintf(err, err_len, "%s", req.err_msg);
		return req.err_code < 0 && req.err_code > -4096 ? req.err_code : -EINVAL;
	}
	return 0;
}

static const char *
type_name(enum param_type t)
{
	switch (t) {
	case PT_STRING:
		return "a string";
	case PT_U64:
	case PT_U32:
		return "an unsigned integer";
	case PT_I64:
		return "an integer";
	case PT_BOOL:
		return "true or false";
	case PT_DOUBLE:
		return "a number";
	case PT_UUID:
		return "a UUID string (8-4-4-4-12 hex)";
	case PT_ZERO:
		return "0, false or empty (not supported otherwise)";
	case PT_STRINGS:
		return "an array of strings";
	}
	return "?";
}

static bool
decode_one(const json_t *v, const struct param_spec *s, void *out)
{
	uint8_t *field = (uint8_t *)out + s->offset;

	switch (s->type) {
	case PT_STRING:
		if (!json_is_string(v))
			return false;
		*(const char **)field = json_string_value(v);
		return true;
	case PT_U64:
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return false;
		*(uint64_t *)field = (uint64_t)json_integer_value(v);
		return true;
	case PT_U32:
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > UINT32_MAX)
			return false;
		*(uint32_t *)field = (uint32_t)json_integer_value(v);
		return true;
	case PT_I64:
		if (!json_is_integer(v))
			return false;
		*(int64_t *)field = (int64_t)json_integer_value(v);
		return true;
	case PT_BOOL:
		if (!json_is_boolean(v))
			return false;
		*(bool *)field = json_is_true(v);
		return true;
	case PT_DOUBLE:
		if (!json_is_number(v))
			return false;
		*(double *)field = json_number_value(v);
		return true;
	case PT_UUID:
		return json_is_string(v) && uraid_uuid_parse(json_string_value(v), field) == 0;
	case PT_STRINGS: {
		size_t i;
		json_t *e;

		if (!json_is_array(v))
			return false;
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e))
				return false;
		}
		*(const json_t **)field = v;
		return true;
	}
	case PT_ZERO:
		return json_is_null(v) || (json_is_integer(v) && json_integer_value(v) == 0) ||
		       json_is_false(v) || (json_is_string(v) && json_string_length(v) == 0);
	}
	return false;
}

int
rpc_decode(struct rpc_request *req, const json_t *params, const struct param_spec *spec,
	   size_t num_spec, void *out)
{
	const char *key;
	json_t *v;

	if (params != NULL) {
		json_object_foreach((json_t *)params, key, v)
		{
			size_t i;

			for (i = 0; i < num_spec; i++) {
				if (strcmp(spec[i].name, key) == 0)
					break;
			}
			if (i == num_spec) {
				rpc_error(req, RPC_INVALID_PARAMS, "%s: unknown parameter '%s'",
					  req->method, key);
				return -EINVAL;
			}
			if (!decode_one(v, &spec[i], out)) {
				rpc_error(req, RPC_INVALID_PARAMS, "%s: parameter '%s' must be %s",
					  req->method, key, type_name(spec[i].type));
				return -EINVAL;
			}
		}
	}
	for (size_t i = 0; i < num_spec; i++) {
		if (spec[i].required &&
		    (params == NULL || json_object_get(params, spec[i].name) == NULL)) {
			rpc_error(req, RPC_INVALID_PARAMS, "%s: missing required parameter '%s'",
				  req->method, spec[i].name);
			return -EINVAL;
		}
	}
	return 0;
}
