/* SPDX-License-Identifier: BSD-3-Clause */
/* The method table, request answers, and declarative parameter decoding. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "rpc.h"
#include "uraid/bdev_module.h"
#include "uraid/thread.h"

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
	if (config_method_saved(method)) {
		req->saved_params = params ? json_deep_copy(params) : json_object();
		req->record = config_record;
	}
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
