/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The config loader: SPDK's JSON config format,
 *
 *   {"subsystems": [{"subsystem": "bdev",
 *                    "config": [{"method": "bdev_malloc_create", "params": {...}}, ...]}]}
 *
 * The "bdev" subsystem's methods run in order through the same method table as JSON-RPC,
 * then arrays found on those bdevs are assembled, then the "nbd" subsystem's methods
 * (nbd_start_disk) run, so exports can name assembled arrays. Other subsystems of an SPDK
 * config (accel, iobuf, sock, ...) configure SPDK internals that uraid does not have; they
 * are skipped with a notice.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "rpc.h"
#include "uraid/thread.h"

static void
mark_done(struct rpc_request *req UNUSED, void *ctx)
{
	atomic_store_explicit((_Atomic bool *)ctx, true, memory_order_release);
}

/* Run one subsystem's "config" array of method calls, in order. */
static int
run_subsystem(const json_t *config, const char *name, const char *origin, char *err, size_t err_len)
{
	json_t *entry;
	size_t j;

	if (json_is_null(config) || config == NULL)
		return 0;
	if (!json_is_array(config)) {
		snprintf(err, err_len, "%s: subsystem %s: \"config\" must be an array", origin,
			 name);
		return -EINVAL;
	}
	json_array_foreach(config, j, entry)
	{
		const char *method = json_string_value(json_object_get(entry, "method"));
		struct rpc_request req = {0};
		_Atomic bool done = false;

		if (!json_is_object(entry) || method == NULL) {
			snprintf(err, err_len, "%s: %s config[%zu] needs a \"method\" string",
				 origin, name, j);
			return -EINVAL;
		}
		/* Handlers that answer later do so from a reactor: wait for it. */
		req.done_cb = mark_done;
		req.done_ctx = &done;
		rpc_call(&req, method, json_object_get(entry, "params"));
		uraid_runtime_wait(&done);
		json_decref(req.result);
		if (req.err_code != 0) {
			snprintf(err, err_len, "%s: %s config[%zu]: %s", origin, name, j,
				 req.err_msg);
			return req.err_code < 0 && req.err_code > -4096 ? req.err_code : -EINVAL;
		}
	}
	return 0;
}

int
config_load_json(const json_t *root, const char *origin, char *err, size_t err_len)
{
	json_t *subsystems, *sub, *nbd = NULL;
	size_t i;
	int rc;

	if (!json_is_object(root)) {
		snprintf(err, err_len, "%s: the top level must be an object with \"subsystems\"",
			 origin);
		return -EINVAL;
	}
	subsystems = json_object_get(root, "subsystems");
	if (!json_is_array(subsystems)) {
		snprintf(err, err_len, "%s: \"subsystems\" must be an array", origin);
		return -EINVAL;
	}
	json_array_foreach(subsystems, i, sub)
	{
		const char *name = json_string_value(json_object_get(sub, "subsystem"));

		if (name == NULL) {
			snprintf(err, err_len, "%s: subsystems[%zu] has no \"subsystem\" name",
				 origin, i);
			return -EINVAL;
		}
		if (strcmp(name, "nbd") == 0) {
			nbd = json_object_get(sub, "config"); /* once the arrays are up */
			continue;
		}
		if (strcmp(name, "bdev") != 0) {
			LOG_NOTE(
				"%s: skipping SPDK subsystem '%s' (nothing in it applies to uraid)",
				origin, name);
			continue;
		}
		rc = run_subsystem(json_object_get(sub, "config"), name, origin, err, err_len);
		if (rc != 0)
			return rc;
	}
	/* As SPDK examines every new bdev: arrays whose members are now all registered start. */
	{
		struct rpc_request req = {0};
		_Atomic bool done = false;

		req.done_cb = mark_done;
		req.done_ctx = &done;
		rpc_call(&req, "bdev_wait_for_examine", NULL);
		uraid_runtime_wait(&done);
		json_decref(req.result);
	}
	/* Exports last, so they can name the arrays just assembled. */
	return run_subsystem(nbd, "nbd", origin, err, err_len);
}

int
config_load_file(const char *path, char *err, size_t err_len)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (jerr.line <= 0)
			snprintf(err, err_len, "%s: %s", path, jerr.text);
		else
			snprintf(err, err_len, "%s:%d:%d: malformed JSON: %s", path, jerr.line,
				 jerr.column, jerr.text);
		return -EINVAL;
	}
	rc = config_load_json(root, path, err, err_len);
	json_decref(root);
	return rc;
}
