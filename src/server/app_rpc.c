/* SPDX-License-Identifier: BSD-3-Clause */
/* Methods about the service itself: version and log level. */
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
	{"log_set_level", rpc_log_set_level, "log messages at this level and above"},
	{"log_set_print_level", rpc_log_set_level, "the same (SPDK's name for the printed level)"},
	{"log_get_level", rpc_log_get_level, "the current log level"},
	{"log_get_print_level", rpc_log_get_level, "the same"},
};
const size_t app_rpc_num_methods = ARRAY_SIZE(app_rpc_methods);
