/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Answering a request and decoding its parameters: what every method handler uses, in the
 * daemon and in the SPDK module alike.
 */
#include <stdio.h>
#include <stdlib.h>

#include "rpc.h"
#include "uraid/bdev_module.h"

void
rpc_result(struct rpc_request *req, json_t *result)
{
	if (req->saved_params != NULL) {
		if (req->record != NULL && json_is_string(result))
			req->record(req->method, req->saved_params, json_string_value(result));
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

json_t *
iostat_to_json(const char *name, const struct uraid_bdev_io_stats *st, uint32_t block_size)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name",
			 name, "bytes_read", (json_int_t)(st->blocks[URAID_IO_READ] * block_size),
			 "num_read_ops", (json_int_t)st->ops[URAID_IO_READ], "bytes_written",
			 (json_int_t)(st->blocks[URAID_IO_WRITE] * block_size), "num_write_ops",
			 (json_int_t)st->ops[URAID_IO_WRITE], "bytes_unmapped",
			 (json_int_t)(st->blocks[URAID_IO_UNMAP] * block_size), "num_unmap_ops",
			 (json_int_t)st->ops[URAID_IO_UNMAP], "read_latency_ticks",
			 (json_int_t)st->latency_ticks[URAID_IO_READ], "write_latency_ticks",
			 (json_int_t)st->latency_ticks[URAID_IO_WRITE], "unmap_latency_ticks",
			 (json_int_t)st->latency_ticks[URAID_IO_UNMAP], "queue_depth",
			 (json_int_t)st->queue_depth, "io_errors", (json_int_t)st->errors);
}
