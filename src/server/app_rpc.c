/* SPDX-License-Identifier: BSD-3-Clause */
/* Methods about the service itself: version, log level, and SPDK's framework methods that
 * scripts/rpc.py relies on (init state, subsystems and their configs, kill_instance). */
#include <signal.h>
#include <unistd.h>

#include "rpc.h"

/* SPDK's spdk_get_version, under our name, in SPDK's shape. */
static void
rpc_uraid_get_version(struct rpc_request *req, const json_t *params UNUSED)
{
	rpc_result(req,
		   json_pack("{s:s, s:{s:i, s:i, s:i, s:s}}", "version", "uraid v" URAID_VERSION,
			     "fields", "major", URAID_VERSION_MAJOR, "minor", URAID_VERSION_MINOR,
			     "patch", URAID_VERSION_PATCH, "suffix", ""));
}

/* SPDK's framework_wait_init and framework_start_init: the daemon is initialized once it
 * answers (its config loaded, arrays assembled), so both say true at once. */
static void
rpc_framework_init(struct rpc_request *req, const json_t *params)
{
	if (rpc_decode(req, params, NULL, 0, NULL) != 0)
		return;
	rpc_result_bool(req, true);
}

/* The subsystems save_config writes, in SPDK's dependency order. */
static const char *const g_subsystems[] = {"bdev", "nbd"};

static void
rpc_framework_get_subsystems(struct rpc_request *req, const json_t *params)
{
	json_t *arr = json_array();

	if (rpc_decode(req, params, NULL, 0, NULL) != 0) {
		json_decref(arr);
		return;
	}
	json_array_append_new(arr, json_pack("{s:s, s:[]}", "subsystem", "bdev", "depends_on"));
	json_array_append_new(arr,
			      json_pack("{s:s, s:[s]}", "subsystem", "nbd", "depends_on", "bdev"));
	rpc_result(req, arr);
}

struct get_config_params {
	const char *name;
};

static const struct param_spec get_config_spec[] = {
	PARAM(struct get_config_params, name, PT_STRING, true),
};

/* SPDK's framework_get_config: one subsystem's part of save_config (its "config" array). */
static void
rpc_framework_get_config(struct rpc_request *req, const json_t *params)
{
	struct get_config_params p = {0};
	json_t *cur, *sub;
	size_t i;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(get_config_spec), &p) != 0)
		return;
	cur = config_current();
	json_array_foreach(json_object_get(cur, "subsystems"), i, sub)
	{
		if (strcmp(json_string_value(json_object_get(sub, "subsystem")), p.name) == 0) {
			rpc_result(req, json_incref(json_object_get(sub, "config")));
			json_decref(cur);
			return;
		}
	}
	json_decref(cur);
	rpc_error(req, RPC_INVALID_PARAMS, "%s: no subsystem named '%s' (there are %s and %s)",
		  req->method, p.name, g_subsystems[0], g_subsystems[1]);
}

struct kill_params {
	const char *sig_name;
};

static const struct param_spec kill_spec[] = {
	PARAM(struct kill_params, sig_name, PT_STRING, true),
};

/* SPDK's spdk_kill_instance: the daemon signals itself. SIGINT and SIGTERM stop it cleanly
 * (arrays marked clean, members released) after this answer goes out; SIGKILL kills it. */
static void
rpc_spdk_kill_instance(struct rpc_request *req, const json_t *params)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {{"SIGINT", SIGINT}, {"SIGTERM", SIGTERM}, {"SIGKILL", SIGKILL}};
	struct kill_params p = {0};

	if (rpc_decode(req, params, ARRAY_AND_SIZE(kill_spec), &p) != 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		if (strcmp(p.sig_name, sigs[i].name) == 0 ||
		    strcmp(p.sig_name, sigs[i].name + 3) == 0) {
			LOG_NOTE("%s: %s asked for", req->method, sigs[i].name);
			rpc_result_bool(req, true);
			kill(getpid(), sigs[i].sig);
			return;
		}
	}
	rpc_error(req, RPC_INVALID_PARAMS, "%s: 'sig_name' is '%s'; use SIGINT, SIGTERM or SIGKILL",
		  req->method, p.sig_name);
}

struct level_params {
	const char *level;
};

static const struct param_spec level_spec[] = {
	PARAM(struct level_params, level, PT_STRING, true),
};

/* SPDK's log_set_level / log_set_print_level: error, warning, notice, info, debug. */
static void
rpc_log_set_level(struct rpc_request *req, const json_t *params)
{
	struct level_params p = {0};
	enum log_level level;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(level_spec), &p) != 0)
		return;
	if (log_parse_level(p.level, &level) != 0) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: 'level' must be error, warning, notice, info or debug", req->method);
		return;
	}
	log_set_level(level);
	rpc_result_bool(req, true);
}

static void
rpc_log_get_level(struct rpc_request *req, const json_t *params UNUSED)
{
	rpc_result(req, json_string(log_level_name(log_get_level())));
}

const struct rpc_method app_rpc_methods[] = {
	{"uraid_get_version", rpc_uraid_get_version, "the version, in spdk_get_version's shape"},
	{"spdk_get_version", rpc_uraid_get_version, "the same, under SPDK's name"},
	{"framework_wait_init", rpc_framework_init, "true once the daemon is up (it is)"},
	{"framework_start_init", rpc_framework_init,
	 "SPDK's start from the startup state; the daemon is always started"},
	{"framework_get_subsystems", rpc_framework_get_subsystems,
	 "the subsystems save_config writes (bdev, nbd) and their dependencies"},
	{"framework_get_config", rpc_framework_get_config,
	 "one subsystem's configuration, as in save_config"},
	{"spdk_kill_instance", rpc_spdk_kill_instance,
	 "signal the daemon: SIGINT or SIGTERM stop it cleanly, SIGKILL kills it"},
	{"log_set_level", rpc_log_set_level, "log messages at this level and above"},
	{"log_set_print_level", rpc_log_set_level, "the same (SPDK's name for the printed level)"},
	{"log_get_level", rpc_log_get_level, "the current log level"},
	{"log_get_print_level", rpc_log_get_level, "the same"},
};
const size_t app_rpc_num_methods = ARRAY_SIZE(app_rpc_methods);
