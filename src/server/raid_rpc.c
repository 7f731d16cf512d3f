/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Array methods with SPDK's names and parameters: bdev_raid_create, bdev_raid_delete,
 * bdev_raid_get_bdevs. uraid's levels and parameters extend SPDK's (raid5, raid6, raid10,
 * ec with data_chunks/parity_chunks, copies).
 */
#include <stdio.h>
#include <stdlib.h>

#include "bdev/bdev_priv.h"
#include "rpc.h"
#include "uraid/array.h"
#include "uraid/bdev_module.h"

struct raid_create_params {
	const char *name;
	const char *raid_level;
	uint32_t strip_size_kb;
	const json_t *base_bdevs;
	uint8_t uuid[16];
	bool superblock;
	uint32_t data_chunks;
	uint32_t parity_chunks;
	uint32_t distributed_spares;
	uint32_t copies;
	bool force;
	const char *consistency_policy;
	uint32_t bitmap_region_kb;
	const char *journal_mode;
	const char *journal_bdev;
	uint32_t overprovision_percent;
	const char *log_cleaner;
};

static const struct param_spec raid_create_spec[] = {
	PARAM(struct raid_create_params, name, PT_STRING, true),
	PARAM(struct raid_create_params, raid_level, PT_STRING, true),
	PARAM(struct raid_create_params, strip_size_kb, PT_U32, false),
	PARAM(struct raid_create_params, base_bdevs, PT_STRINGS, true),
	PARAM(struct raid_create_params, uuid, PT_UUID, false),
	PARAM(struct raid_create_params, superblock, PT_BOOL, false),
	PARAM(struct raid_create_params, data_chunks, PT_U32, false),
	PARAM(struct raid_create_params, parity_chunks, PT_U32, false),
	PARAM(struct raid_create_params, distributed_spares, PT_U32, false),
	PARAM(struct raid_create_params, copies, PT_U32, false),
	PARAM(struct raid_create_params, force, PT_BOOL, false),
	PARAM(struct raid_create_params, consistency_policy, PT_STRING, false),
	PARAM(struct raid_create_params, bitmap_region_kb, PT_U32, false),
	PARAM(struct raid_create_params, journal_mode, PT_STRING, false),
	PARAM(struct raid_create_params, journal_bdev, PT_STRING, false),
	PARAM(struct raid_create_params, overprovision_percent, PT_U32, false),
	PARAM(struct raid_create_params, log_cleaner, PT_STRING, false),
};

/* draid: what each distributed spare holds. */
static json_t *
ds_state_json(const struct uraid_array_info *info)
{
	json_t *ds = json_array();

	for (unsigned j = 0; j < info->distributed_spares && j < ARRAY_SIZE(info->draid_spare); j++)
		json_array_append_new(ds, json_pack("{s:s, s:i, s:I}", "state",
						    info->draid_spare[j].state, "slot",
						    info->draid_spare[j].slot, "done_stripes",
						    (json_int_t)info->draid_spare[j].done_stripes));
	return ds;
}

static void
rpc_bdev_raid_create(struct rpc_request *req, const json_t *params)
{
	static const uint8_t zero[16];
	struct raid_create_params p = {0};
	struct uraid_array_opts o = {0};
	const char *members[64];
	struct uraid_bdev *bdev;
	char err[256];
	size_t i;
	json_t *e;
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(raid_create_spec), &p) != 0)
		return;
	if (uraid_raid_level_parse(p.raid_level, &o.level, &o.raid5_layout) != 0) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: parameter 'raid_level' is '%s'; use raid0, raid1, raid10, concat, "
			  "raid5, raid5f, raid6, ec or draid",
			  req->method, p.raid_level);
		return;
	}
	if (p.consistency_policy != NULL &&
	    uraid_policy_parse(p.consistency_policy, &o.policy) != 0) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: parameter 'consistency_policy' is '%s'; use none, bitmap, ppl, "
			  "journal or log",
			  req->method, p.consistency_policy);
		return;
	}
	if (p.journal_mode != NULL && strcmp(p.journal_mode, "write-through") != 0 &&
	    strcmp(p.journal_mode, "write-back") != 0) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: parameter 'journal_mode' is '%s'; use write-through or write-back",
			  req->method, p.journal_mode);
		return;
	}
	o.journal_write_back = p.journal_mode != NULL && strcmp(p.journal_mode, "write-back") == 0;
	if (json_array_size(p.base_bdevs) > ARRAY_SIZE(members)) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: too many base_bdevs", req->method);
		return;
	}
	json_array_foreach(p.base_bdevs, i, e) members[i] = json_string_value(e);
	o.name = p.name;
	o.strip_size_kb = p.strip_size_kb;
	o.members = members;
	o.num_members = (unsigned)json_array_size(p.base_bdevs);
	o.copies = p.copies;
	o.data_chunks = p.data_chunks;
	o.parity_chunks = p.parity_chunks;
	o.spares = p.distributed_spares;
	o.uuid = memcmp(p.uuid, zero, 16) ? p.uuid : NULL;
	o.superblock = p.superblock;
	o.force = p.force;
	o.bitmap_region_kb = p.bitmap_region_kb;
	o.journal_bdev = p.journal_bdev;
	o.overprovision_pct = p.overprovision_percent;
	if ((p.overprovision_percent || p.log_cleaner) && o.policy != URAID_POLICY_LOG) {
		rpc_error(
			req, RPC_INVALID_PARAMS,
			"%s: overprovision_percent and log_cleaner are for consistency_policy log "
			"only",
			req->method);
		return;
	}
	if (p.log_cleaner != NULL && strcmp(p.log_cleaner, "greedy") != 0 &&
	    strcmp(p.log_cleaner, "cost-benefit") != 0) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: parameter 'log_cleaner' is '%s'; use greedy or cost-benefit",
			  req->method, p.log_cleaner);
		return;
	}
	o.log_cost_benefit = p.log_cleaner != NULL && strcmp(p.log_cleaner, "cost-benefit") == 0;
	if (o.level != URAID_EC && o.level != URAID_DRAID && (p.data_chunks || p.parity_chunks)) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: data_chunks and parity_chunks are for raid_level ec and draid only",
			  req->method);
		return;
	}
	if (o.level != URAID_DRAID && p.distributed_spares) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: distributed_spares is for raid_level draid only", req->method);
		return;
	}
	if (o.level != URAID_RAID10 && p.copies) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: copies is for raid_level raid10 only",
			  req->method);
		return;
	}
	rc = uraid_array_create(&o, &bdev, err, sizeof(err));
	if (rc != 0) {
		rpc_error(req, rc, "%s: cannot create '%s': %s", req->method, p.name, err);
		return;
	}
	rpc_result_bool(req, true);
}

struct delete_params {
	const char *name;
	bool clear_superblocks;
};

static const struct param_spec delete_spec[] = {
	PARAM(struct delete_params, name, PT_STRING, true),
	PARAM(struct delete_params, clear_superblocks, PT_BOOL, false),
};

static void
raid_delete_done(void *cb_arg, int status)
{
	struct rpc_request *req = cb_arg;

	if (status != 0)
		rpc_error_errno(req, status, "%s: delete failed", req->method);
	else
		rpc_result_bool(req, true);
}

static struct uraid_bdev *
find_array(struct rpc_request *req, const char *name)
{
	struct uraid_bdev *b = uraid_bdev_get_by_name(name);

	if (b == NULL || !uraid_bdev_is_array(b)) {
		rpc_error(req, -ENODEV, "%s: no array named '%s'", req->method, name);
		return NULL;
	}
	return b;
}

static void
rpc_bdev_raid_delete(struct rpc_request *req, const json_t *params)
{
	struct delete_params p = {0};
	struct uraid_bdev *bdev;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(delete_spec), &p) != 0)
		return;
	bdev = find_array(req, p.name);
	if (bdev == NULL)
		return;
	if (uraid_bdev_claimed_by(bdev) != NULL) {
		rpc_delete_bdev(req, bdev); /* answers the in-use error */
		return;
	}
	uraid_array_delete(bdev, p.clear_superblocks, raid_delete_done, req);
}

struct examine_params {
	bool force;
};

static const struct param_spec examine_spec[] = {
	PARAM(struct examine_params, force, PT_BOOL, false),
};

/* Split the report into lines for JSON and the log. */
static json_t *
report_lines(char *report)
{
	json_t *arr = json_array();

	for (char *line = strtok(report, "\n"); line; line = strtok(NULL, "\n")) {
		LOG_NOTE("examine: %s", line);
		json_array_append_new(arr, json_string(line));
	}
	return arr;
}

static void
rpc_bdev_raid_examine(struct rpc_request *req, const json_t *params)
{
	struct examine_params p = {0};
	char report[8192];
	json_t *res;
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(examine_spec), &p) != 0)
		return;
	rc = uraid_array_examine(p.force, report, sizeof(report));
	if (rc < 0) {
		rpc_error_errno(req, rc, "%s", req->method);
		return;
	}
	res = json_object();
	json_object_set_new(res, "started", json_integer(rc));
	json_object_set_new(res, "report", report_lines(report));
	rpc_result(req, res);
}

/* SPDK's bdev_wait_for_examine: in uraid, examining is this call (and the end of every config
 * load), so it runs the examination now. */
static void
rpc_bdev_wait_for_examine(struct rpc_request *req, const json_t *params UNUSED)
{
	char report[8192];
	json_t *lines;

	if (uraid_array_examine(false, report, sizeof(report)) >= 0) {
		lines = report_lines(report);
		json_decref(lines);
	}
	rpc_result_bool(req, true);
}

static const char *
raid_level_text(const struct uraid_array_info *info)
{
	return info->level == URAID_RAID5 && info->raid5_layout == URAID_R5_LEFT_ASYMMETRIC
		       ? "raid5f"
		       : uraid_raid_level_name(info->level);
}

json_t *
raid_info_json(struct uraid_bdev *bdev)
{
	struct uraid_array_info info;
	json_t *o = json_object(), *list = json_array();
	const char *path;
	char uuid[37];
	unsigned ok = 0;

	uraid_array_get_info(bdev, &info);
	uraid_uuid_format(uraid_bdev_get_uuid(bdev), uuid);
	for (unsigned i = 0; i < info.num_members; i++) {
		struct uraid_bdev *mb = uraid_bdev_get_by_name(info.members[i].name);
		bool active = info.members[i].state == URAID_MEMBER_ACTIVE;
		json_t *m = json_object();
		char muuid[37] = "";

		if (mb)
			uraid_uuid_format(uraid_bdev_get_uuid(mb), muuid);
		ok += active;
		json_object_set_new(m, "name", json_string(info.members[i].name));
		json_object_set_new(m, "uuid", json_string(muuid));
		json_object_set_new(m, "is_configured", json_boolean(active));
		json_object_set_new(m, "state",
				    json_string(active ? "active"
						: info.members[i].state == URAID_MEMBER_REBUILDING
							? "rebuilding"
						: mb ? "failed"
						     : "missing"));
		json_object_set_new(m, "data_offset",
				    json_integer((json_int_t)info.data_offset_blocks));
		if (info.members[i].state == URAID_MEMBER_FAILED && mb != NULL)
			json_object_set_new(m, "failed_by",
					    json_string(info.members[i].failed_by_request
								? "request"
								: "error"));
		path = uraid_bdev_get_path(mb);
		if (path != NULL)
			json_object_set_new(m, "path", json_string(path));
		if (info.members[i].replacement[0])
			json_object_set_new(m, "replacement",
					    json_string(info.members[i].replacement));
		json_array_append_new(list, m);
	}
	json_object_set_new(o, "name", json_string(uraid_bdev_get_name(bdev)));
	json_object_set_new(o, "uuid", json_string(uuid));
	json_object_set_new(o, "strip_size_kb", json_integer(info.strip_size_kb));
	json_object_set_new(o, "state", json_string(info.online ? "online" : "offline"));
	json_object_set_new(o, "raid_level", json_string(raid_level_text(&info)));
	json_object_set_new(o, "superblock", json_boolean(info.superblock));
	json_object_set_new(o, "consistency_policy", json_string(uraid_policy_name(info.policy)));
	if (info.policy == URAID_POLICY_JOURNAL)
		json_object_set_new(
			o, "journal_mode",
			json_string(info.journal_write_back ? "write-back" : "write-through"));
	if (info.journal_bdev[0])
		json_object_set_new(o, "journal_bdev", json_string(info.journal_bdev));
	if (info.policy == URAID_POLICY_LOG) {
		json_t *lg = json_object();
		uint32_t bs = uraid_bdev_get_block_size(bdev);

		json_object_set_new(
			lg, "capacity_bytes",
			json_integer((json_int_t)(uraid_bdev_get_num_blocks(bdev) * bs)));
		json_object_set_new(lg, "physical_bytes",
				    json_integer((json_int_t)(info.log.physical_blocks * bs)));
		json_object_set_new(lg, "mapped_bytes",
				    json_integer((json_int_t)(info.log.mapped_blocks * bs)));
		json_object_set_new(lg, "free_bytes",
				    json_integer((json_int_t)(info.log.free_blocks * bs)));
		json_object_set_new(lg, "stripes", json_integer((json_int_t)info.log.rows));
		json_object_set_new(lg, "free_stripes",
				    json_integer((json_int_t)info.log.free_rows));
		json_object_set_new(lg, "user_bytes_written",
				    json_integer((json_int_t)(info.log.user_blocks * bs)));
		json_object_set_new(lg, "cleaner_bytes_moved",
				    json_integer((json_int_t)(info.log.moved_blocks * bs)));
		json_object_set_new(lg, "stripes_cleaned",
				    json_integer((json_int_t)info.log.rows_cleaned));
		json_object_set_new(lg, "stripes_deferred",
				    json_integer((json_int_t)info.log.rows_deferred));
		json_object_set_new(lg, "lane_stripes",
				    json_integer((json_int_t)info.log.lane_rows));
		json_object_set_new(lg, "commits", json_integer((json_int_t)info.log.commits));
		json_object_set_new(lg, "checkpoints",
				    json_integer((json_int_t)info.log.checkpoints));
		json_object_set_new(lg, "tree_memory_bytes",
				    json_integer((json_int_t)info.log.map_bytes));
		json_object_set_new(lg, "cleaner",
				    json_string(info.log.cost_benefit ? "cost-benefit" : "greedy"));
		if (info.log.zone_groups != 0) {
			json_t *z = json_object();

			json_object_set_new(z, "groups",
					    json_integer((json_int_t)info.log.zone_groups));
			json_object_set_new(z, "stripes_per_group",
					    json_integer((json_int_t)info.log.zone_group_stripes));
			json_object_set_new(z, "open_groups",
					    json_integer(info.log.open_zone_groups));
			json_object_set_new(z, "resets",
					    json_integer((json_int_t)info.log.zone_resets));
			json_object_set_new(lg, "zones", z);
		}
		json_object_set_new(o, "log", lg);
	}
	if (info.policy == URAID_POLICY_BITMAP) {
		json_t *bm = json_object();

		json_object_set_new(bm, "region_kb",
				    json_integer((json_int_t)info.bitmap.region_kb));
		json_object_set_new(bm, "regions", json_integer((json_int_t)info.bitmap.regions));
		json_object_set_new(bm, "dirty", json_integer((json_int_t)info.bitmap.dirty));
		json_object_set_new(bm, "resync_left",
				    json_integer((json_int_t)info.bitmap.resync_left));
		json_object_set_new(bm, "sets", json_integer((json_int_t)info.bitmap.sets));
		json_object_set_new(bm, "clears", json_integer((json_int_t)info.bitmap.clears));
		json_object_set_new(o, "bitmap", bm);
	}
	json_object_set_new(o, "num_base_bdevs", json_integer(info.num_members));
	json_object_set_new(o, "num_base_bdevs_discovered", json_integer(info.num_members));
	json_object_set_new(o, "num_base_bdevs_operational", json_integer(ok));
	if (info.level == URAID_EC || info.level == URAID_DRAID) {
		json_object_set_new(o, "data_chunks", json_integer(info.data_chunks));
		json_object_set_new(o, "parity_chunks", json_integer(info.parity_chunks));
	}
	if (info.level == URAID_DRAID) {
		char seed[17];

		snprintf(seed, sizeof(seed), "%016lx", (unsigned long)info.draid_seed);
		json_object_set_new(o, "distributed_spares", json_integer(info.distributed_spares));
		json_object_set_new(
			o, "draid_table",
			json_pack("{s:i, s:s}", "bases", (int)info.draid_bases, "seed", seed));
		json_object_set_new(o, "distributed_spare_state", ds_state_json(&info));
	}
	if (info.level == URAID_RAID10)
		json_object_set_new(o, "copies", json_integer(info.copies));
	json_object_set_new(o, "base_bdevs_list", list);
	json_object_set_new(o, "num_spares", json_integer(info.spares));
	{
		char names[64][URAID_BDEV_NAME_MAX];
		unsigned n = uraid_spare_names(bdev, names, ARRAY_SIZE(names));
		json_t *spares = json_array();

		for (unsigned i = 0; i < n && i < ARRAY_SIZE(names); i++) {
			path = uraid_bdev_get_path(uraid_bdev_get_by_name(names[i]));
			json_t *sp = json_pack("{s:s}", "name", names[i]);

			if (path != NULL)
				json_object_set_new(sp, "path", json_string(path));
			json_array_append_new(spares, sp);
		}
		json_object_set_new(o, "spares", spares);
	}
	path = info.journal_bdev[0] ? uraid_bdev_get_path(uraid_bdev_get_by_name(info.journal_bdev))
				    : NULL;
	if (path != NULL)
		json_object_set_new(o, "journal_bdev_path", json_string(path));
	if (info.rebuild.active) {
		unsigned t = (unsigned)__builtin_ctz(info.rebuild.target_mask);
		json_t *proc = json_object(), *prog = json_object();

		json_object_set_new(proc, "type",
				    json_string(info.rebuild.replace ? "replace" : "rebuild"));
		json_object_set_new(proc, "target",
				    json_string(info.rebuild.replace ? info.members[t].replacement
								     : info.members[t].name));
		if (info.rebuild.replace)
			json_object_set_new(proc, "source", json_string(info.members[t].name));
		if (info.rebuild.catch_up)
			json_object_set_new(proc, "catch_up", json_true());
		json_object_set_new(prog, "blocks",
				    json_integer((json_int_t)info.rebuild.done_blocks));
		json_object_set_new(
			prog, "percent",
			json_integer(info.rebuild.total_blocks
					     ? (json_int_t)(info.rebuild.done_blocks * 100 /
							    info.rebuild.total_blocks)
					     : 0));
		json_object_set_new(proc, "progress", prog);
		json_object_set_new(proc, "rate_kib_s",
				    json_integer((json_int_t)info.rebuild.rate_kib_s));
		json_object_set_new(proc, "eta_s", json_integer((json_int_t)info.rebuild.eta_s));
		json_object_set_new(o, "process", proc);
	}
	return o;
}

/* The bdev_raid_create call that makes array again, or NULL if superblocks assemble it. Looks
 * up no bdev (SPDK's save_config calls it with its bdev list locked). */
json_t *
raid_create_call(struct uraid_bdev *bdev)
{
	struct uraid_array_info info;
	json_t *params, *members;
	char uuid[37];

	if (!uraid_bdev_is_array(bdev) || uraid_array_get_info(bdev, &info) != 0 || info.superblock)
		return NULL;
	uraid_uuid_format(uraid_bdev_get_uuid(bdev), uuid);
	/* The same names and level spelling bdev_raid_get_bdevs reports. */
	params = json_pack("{s:s, s:s, s:s, s:i}", "name", uraid_bdev_get_name(bdev), "uuid", uuid,
			   "raid_level", raid_level_text(&info), "strip_size_kb",
			   (int)info.strip_size_kb);
	if (info.level == URAID_EC || info.level == URAID_DRAID) {
		json_object_set_new(params, "data_chunks", json_integer(info.data_chunks));
		json_object_set_new(params, "parity_chunks", json_integer(info.parity_chunks));
	}
	if (info.level == URAID_DRAID)
		json_object_set_new(params, "distributed_spares",
				    json_integer(info.distributed_spares));
	if (info.level == URAID_RAID10)
		json_object_set_new(params, "copies", json_integer(info.copies));
	members = json_array();
	for (unsigned i = 0; i < info.num_members; i++)
		json_array_append_new(members, json_string(info.members[i].name));
	json_object_set_new(params, "base_bdevs", members);
	return json_pack("{s:s, s:o}", "method", "bdev_raid_create", "params", params);
}

static int
save_raid(struct uraid_bdev *bdev, void *ctx)
{
	json_t *call = raid_create_call(bdev);

	if (call != NULL)
		json_array_append_new(ctx, call);
	return 0;
}

void
raid_spare_calls(json_t *list, struct uraid_bdev *array)
{
	char names[64][URAID_BDEV_NAME_MAX];
	unsigned n = uraid_spare_names(array, names, ARRAY_SIZE(names));

	for (unsigned i = 0; i < n && i < ARRAY_SIZE(names); i++) {
		json_t *params = json_pack("{s:s}", "base_bdev", names[i]);

		if (array != NULL)
			json_object_set_new(params, "raid_bdev",
					    json_string(uraid_bdev_get_name(array)));
		json_array_append_new(list, json_pack("{s:s, s:o}", "method", "bdev_raid_add_spare",
						      "params", params));
	}
}

static int
save_array_spares(struct uraid_bdev *bdev, void *ctx)
{
	if (uraid_bdev_is_array(bdev))
		raid_spare_calls(ctx, bdev);
	return 0;
}

void
raid_options_call(json_t *list)
{
	uint64_t window_kb, max_bw;

	uraid_raid_get_options(&window_kb, &max_bw);
	if (window_kb != URAID_RAID_DEFAULT_WINDOW_KB || max_bw != 0)
		json_array_append_new(
			list, json_pack("{s:s, s:{s:I, s:I}}", "method", "bdev_raid_set_options",
					"params", "process_window_size_kb", (json_int_t)window_kb,
					"process_max_bandwidth_mb_sec", (json_int_t)max_bw));
}

json_t *
raid_save_config(void)
{
	json_t *list = json_array(), *spares = json_array();

	raid_options_call(list);
	uraid_bdev_foreach(save_raid, list);
	/* Spares are not in the superblocks: they join once the arrays are assembled. */
	uraid_bdev_foreach(save_array_spares, spares);
	raid_spare_calls(spares, NULL);
	if (json_array_size(spares) > 0) {
		json_array_append_new(list, json_pack("{s:s}", "method", "bdev_wait_for_examine"));
		json_array_extend(list, spares);
	}
	json_decref(spares);
	return list;
}

/* --- bdev_raid_get_stats: I/O rates, latency, queue depth, write kinds, state --- */

struct stats_params {
	const char *name;
	uint64_t interval_ms;
};

static const struct param_spec stats_spec[] = {
	PARAM(struct stats_params, name, PT_STRING, true),
	PARAM(struct stats_params, interval_ms, PT_U64, false),
};

struct stats_ctx {
	struct rpc_request *req;
	char name[URAID_BDEV_NAME_MAX];
	uint64_t interval_ms;
	uint64_t t0;
	struct uraid_bdev_io_stats s0;
	bool have_s0;
	struct uraid_poller *timer;
};

static double
per_s(uint64_t count, uint64_t ticks)
{
	return ticks ? (double)count * (double)uraid_bdev_tick_rate() / (double)ticks : 0.0;
}

static double
mean_us(uint64_t lat_ticks, uint64_t ops)
{
	return ops ? (double)lat_ticks * 1e6 / (double)uraid_bdev_tick_rate() / (double)ops : 0.0;
}

static void
stats_answer(struct stats_ctx *c, const struct uraid_bdev_io_stats *st)
{
	struct uraid_bdev *bdev = uraid_bdev_get_by_name(c->name);
	struct uraid_array_info info;
	struct uraid_array_stats as;
	json_t *o, *r, *io;
	uint64_t writes;

	if (st == NULL || bdev == NULL || uraid_array_get_info(bdev, &info) != 0 ||
	    uraid_array_get_stats(bdev, &as) != 0) {
		rpc_error_errno(c->req, -ENODEV, "%s: array %s is gone", c->req->method, c->name);
		free(c);
		return;
	}
	o = raid_info_json(bdev);
	r = json_object();
	json_object_set(r, "name", json_object_get(o, "name"));
	json_object_set(r, "raid_level", json_object_get(o, "raid_level"));
	json_object_set_new(r, "state",
			    json_string(!info.online		   ? "offline"
					: info.failed_members != 0 ? "degraded"
								   : "online"));
	json_object_set_new(r, "failed_members", json_integer(info.failed_members));
	if (json_object_get(o, "process") != NULL)
		json_object_set(r, "process", json_object_get(o, "process"));
	json_decref(o);
	io = iostat_to_json(c->name, st, uraid_bdev_get_block_size(bdev));
	json_object_del(io, "name");
	json_object_set_new(
		io, "read_latency_us_mean",
		json_real(mean_us(st->latency_ticks[URAID_IO_READ], st->ops[URAID_IO_READ])));
	json_object_set_new(
		io, "write_latency_us_mean",
		json_real(mean_us(st->latency_ticks[URAID_IO_WRITE], st->ops[URAID_IO_WRITE])));
	json_object_set_new(r, "io", io);
	writes = as.full_stripe_writes + as.rmw_writes + as.rcw_writes;
	json_object_set_new(
		r, "stripe_writes",
		json_pack("{s:I, s:I, s:I, s:I, s:I, s:f}", "full_stripe",
			  (json_int_t)as.full_stripe_writes, "read_modify_write",
			  (json_int_t)as.rmw_writes, "reconstruct_write", (json_int_t)as.rcw_writes,
			  "degraded", (json_int_t)as.degraded_writes, "merged",
			  (json_int_t)as.merged_writes, "full_stripe_ratio",
			  writes ? (double)as.full_stripe_writes / (double)writes : 0.0));
	json_object_set_new(r, "degraded_reads", json_integer((json_int_t)as.degraded_reads));
	json_object_set_new(r, "member_errors", json_integer((json_int_t)as.member_errors));
	json_object_set_new(r, "read_errors_repaired",
			    json_integer((json_int_t)as.read_errors_repaired));
	if (info.policy == URAID_POLICY_PPL || info.policy == URAID_POLICY_JOURNAL)
		json_object_set_new(r, "ppl",
				    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "entries",
					      (json_int_t)as.ppl_entries, "blocks",
					      (json_int_t)as.ppl_blocks, "flush_rounds",
					      (json_int_t)as.ppl_flushes, "waits",
					      (json_int_t)as.ppl_waits, "recovered_entries",
					      (json_int_t)as.ppl_recovered, "unmended_rows",
					      (json_int_t)as.ppl_unmended_rows));
	if (as.zone_appends > 0)
		json_object_set_new(r, "zone_appends", json_integer((json_int_t)as.zone_appends));
	if (info.level == URAID_RAID1 || info.level == URAID_RAID10 ||
	    (info.parity_chunks > 0 &&
	     (info.policy == URAID_POLICY_NONE || info.policy == URAID_POLICY_BITMAP)))
		json_object_set_new(r, "claimed_writes",
				    json_integer((json_int_t)as.claimed_writes));
	if (info.parity_chunks > 0 || info.copies > 1)
		json_object_set_new(r, "rebuild",
				    json_pack("{s:I, s:I}", "units", (json_int_t)as.rebuild_units,
					      "units_skipped",
					      (json_int_t)as.rebuild_units_skipped));
	if (c->have_s0) {
		uint64_t dt = ticks_now() - c->t0,
			 rd = st->ops[URAID_IO_READ] - c->s0.ops[URAID_IO_READ],
			 wr = st->ops[URAID_IO_WRITE] - c->s0.ops[URAID_IO_WRITE];
		uint32_t bs = uraid_bdev_get_block_size(bdev);

		json_object_set_new(
			r, "interval",
			json_pack(
				"{s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "ms",
				(json_int_t)c->interval_ms, "read_iops", per_s(rd, dt),
				"write_iops", per_s(wr, dt), "read_mib_s",
				per_s((st->blocks[URAID_IO_READ] - c->s0.blocks[URAID_IO_READ]) *
					      bs,
				      dt) /
					1048576.0,
				"write_mib_s",
				per_s((st->blocks[URAID_IO_WRITE] - c->s0.blocks[URAID_IO_WRITE]) *
					      bs,
				      dt) /
					1048576.0,
				"read_latency_us_mean",
				mean_us(st->latency_ticks[URAID_IO_READ] -
						c->s0.latency_ticks[URAID_IO_READ],
					rd),
				"write_latency_us_mean",
				mean_us(st->latency_ticks[URAID_IO_WRITE] -
						c->s0.latency_ticks[URAID_IO_WRITE],
					wr)));
	}
	rpc_result(c->req, r);
	free(c);
}

static void stats_collected(void *arg, const struct uraid_bdev_io_stats *st);

static int
stats_timer(void *arg)
{
	struct stats_ctx *c = arg;

	uraid_poller_unregister(&c->timer);
	if (uraid_bdev_collect_stats(c->name, stats_collected, c) != 0)
		stats_answer(c, NULL);
	return URAID_POLLER_BUSY;
}

/* On reactor 0: the first sample starts the interval, the second (or the only) answers. */
static void
stats_collected(void *arg, const struct uraid_bdev_io_stats *st)
{
	struct stats_ctx *c = arg;

	if (st != NULL && c->interval_ms != 0 && !c->have_s0) {
		c->s0 = *st;
		c->have_s0 = true;
		c->t0 = ticks_now();
		c->timer = uraid_poller_register(stats_timer, c, c->interval_ms * 1000u);
		if (c->timer != NULL)
			return;
	}
	stats_answer(c, st);
}

static void
rpc_bdev_raid_get_stats(struct rpc_request *req, const json_t *params)
{
	struct stats_params p = {0};
	struct uraid_bdev *bdev;
	struct stats_ctx *c;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(stats_spec), &p) != 0)
		return;
	bdev = uraid_bdev_get_by_name(p.name);
	if (bdev == NULL || !uraid_bdev_is_array(bdev)) {
		rpc_error_errno(req, -ENODEV,
				"%s: no array named %s (bdev_raid_get_bdevs lists them)",
				req->method, p.name);
		return;
	}
	if (p.interval_ms > 60000) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: interval_ms is at most 60000", req->method);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rpc_error_errno(req, -ENOMEM, "%s", req->method);
		return;
	}
	c->req = req;
	c->interval_ms = p.interval_ms;
	snprintf(c->name, sizeof(c->name), "%s", p.name);
	if (uraid_bdev_collect_stats(c->name, stats_collected, c) != 0) {
		free(c);
		rpc_error_errno(req, -ENOMEM, "%s", req->method);
	}
}

struct get_params {
	const char *category;
};

static const struct param_spec get_spec[] = {
	PARAM(struct get_params, category, PT_STRING, false),
};

struct get_ctx {
	json_t *arr;
	const char *category;
};

static int
collect_raid(struct uraid_bdev *bdev, void *arg)
{
	struct get_ctx *c = arg;
	struct uraid_array_info info;

	if (!uraid_bdev_is_array(bdev))
		return 0;
	uraid_array_get_info(bdev, &info);
	if (strcmp(c->category, "all") == 0 ||
	    (strcmp(c->category, "online") == 0 && info.online) ||
	    (strcmp(c->category, "offline") == 0 && !info.online))
		json_array_append_new(c->arr, raid_info_json(bdev));
	return 0;
}

static void
rpc_bdev_raid_get_bdevs(struct rpc_request *req, const json_t *params)
{
	struct get_params p = {.category = "all"};
	struct get_ctx c;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(get_spec), &p) != 0)
		return;
	if (strcmp(p.category, "all") && strcmp(p.category, "online") &&
	    strcmp(p.category, "offline") && strcmp(p.category, "configuring")) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: parameter 'category' is '%s'; use all, online, configuring or "
			  "offline",
			  req->method, p.category);
		return;
	}
	c.arr = json_array();
	c.category = p.category;
	uraid_bdev_foreach(collect_raid, &c);
	rpc_result(req, c.arr);
}

struct member_params {
	const char *raid_bdev;
	const char *base_bdev;
	const char *name;
	const char *new_base_bdev;
};

static const struct param_spec add_spec[] = {
	PARAM(struct member_params, raid_bdev, PT_STRING, false),
	PARAM(struct member_params, base_bdev, PT_STRING, true),
};

/* SPDK's bdev_raid_add_base_bdev and uraid's bdev_raid_add_spare: the bdev joins the array as
 * a spare and takes a failed slot at once if there is one (then it is rebuilt). Without
 * raid_bdev (bdev_raid_add_spare only) it joins the shared pool. */
static void
rpc_bdev_raid_add_base_bdev(struct rpc_request *req, const json_t *params)
{
	struct member_params p = {0};
	struct uraid_bdev *b;
	char err[256];
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(add_spec), &p) != 0)
		return;
	if (p.raid_bdev == NULL && strcmp(req->method, "bdev_raid_add_spare") == 0) {
		rc = uraid_spare_pool_add(p.base_bdev, err, sizeof(err));
		if (rc != 0)
			rpc_error(req, rc, "%s: cannot add '%s' to the spare pool: %s", req->method,
				  p.base_bdev, err);
		else
			rpc_result_bool(req, true);
		return;
	}
	if (p.raid_bdev == NULL) {
		rpc_error(req, -EINVAL, "%s: missing parameter 'raid_bdev'", req->method);
		return;
	}
	b = find_array(req, p.raid_bdev);
	if (b == NULL)
		return;
	rc = uraid_array_add_spare(b, p.base_bdev, err, sizeof(err));
	if (rc != 0) {
		rpc_error(req, rc, "%s: cannot add '%s' to '%s': %s", req->method, p.base_bdev,
			  p.raid_bdev, err);
		return;
	}
	rpc_result_bool(req, true);
}

static const struct param_spec replace_spec[] = {
	PARAM(struct member_params, name, PT_STRING, true),
	PARAM(struct member_params, base_bdev, PT_STRING, true),
	PARAM(struct member_params, new_base_bdev, PT_STRING, false),
};

/* uraid's bdev_raid_replace_base_bdev {name, base_bdev, new_base_bdev}: copy base_bdev onto
 * new_base_bdev (or the array's first spare) while it keeps serving, then swap them. */
static void
rpc_bdev_raid_replace_base_bdev(struct rpc_request *req, const json_t *params)
{
	struct member_params p = {0};
	struct uraid_bdev *b;
	char err[256];
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(replace_spec), &p) != 0)
		return;
	b = find_array(req, p.name);
	if (b == NULL)
		return;
	rc = uraid_array_replace_member(b, p.base_bdev, p.new_base_bdev, err, sizeof(err));
	if (rc != 0) {
		rpc_error(req, rc, "%s: cannot replace '%s' in '%s': %s", req->method, p.base_bdev,
			  p.name, err);
		return;
	}
	rpc_result_bool(req, true);
}

static const struct param_spec remove_spec[] = {
	PARAM(struct member_params, name, PT_STRING, true),
};

struct holder {
	const char *name;
	struct uraid_bdev *array;
	struct uraid_array_info *info;
	unsigned slot;
};

static int
find_holder(struct uraid_bdev *bdev, void *ctx)
{
	struct holder *h = ctx;

	if (!uraid_bdev_is_array(bdev) || uraid_array_get_info(bdev, h->info) != 0)
		return 0;
	for (unsigned i = 0; i < h->info->num_members; i++) {
		if (strcmp(h->info->members[i].name, h->name) == 0) {
			h->array = bdev;
			h->slot = i;
			return 1;
		}
	}
	return 0;
}

struct uraid_bdev *
raid_array_holding(const char *name, struct uraid_array_info *info, unsigned *slot)
{
	struct holder h = {.name = name, .info = info};

	uraid_bdev_foreach(find_holder, &h);
	*slot = h.slot;
	return h.array;
}

/* uraid's bdev_raid_fail_base_bdev {name}: mark a member failed, as an I/O error from it would
 * (a drill, or a drive about to go): a spare takes its slot if there is one. */
static void
rpc_bdev_raid_fail_base_bdev(struct rpc_request *req, const json_t *params)
{
	struct member_params p = {0};
	struct uraid_array_info info;
	struct uraid_bdev *b;
	unsigned slot;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(remove_spec), &p) != 0)
		return;
	b = raid_array_holding(p.name, &info, &slot);
	if (b == NULL) {
		rpc_error(req, -ENODEV, "%s: '%s' is not a member of any array", req->method,
			  p.name);
		return;
	}
	if (uraid_array_fail_member(b, slot) != 0) {
		rpc_error(req, -EINVAL, "%s: '%s' is not active in '%s' (already failed?)",
			  req->method, p.name, uraid_bdev_get_name(b));
		return;
	}
	rpc_result_bool(req, true);
}

/* SPDK's bdev_raid_remove_base_bdev: the member leaves its array (which goes on degraded). */
static void
rpc_bdev_raid_remove_base_bdev(struct rpc_request *req, const json_t *params)
{
	struct member_params p = {0};
	struct uraid_array_info info;
	struct uraid_bdev *b;
	unsigned slot;
	char err[256];
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(remove_spec), &p) != 0)
		return;
	b = raid_array_holding(p.name, &info, &slot);
	if (b == NULL) {
		/* A spare (of an array or of the pool) is simply released. */
		if (uraid_spare_remove(p.name) == 0) {
			rpc_result_bool(req, true);
			return;
		}
		rpc_error(req, -ENODEV, "%s: '%s' is neither a member nor a spare of any array",
			  req->method, p.name);
		return;
	}
	rc = uraid_array_remove_member(b, p.name, err, sizeof(err));
	if (rc != 0) {
		rpc_error(req, rc, "%s: %s", req->method, err);
		return;
	}
	rpc_result_bool(req, true);
}

struct options_params {
	uint64_t process_window_size_kb;
	uint64_t process_max_bandwidth_mb_sec;
};

static const struct param_spec options_spec[] = {
	PARAM(struct options_params, process_window_size_kb, PT_U64, false),
	PARAM(struct options_params, process_max_bandwidth_mb_sec, PT_U64, false),
};

static void
rpc_bdev_raid_set_options(struct rpc_request *req, const json_t *params)
{
	struct options_params p;

	uraid_raid_get_options(&p.process_window_size_kb, &p.process_max_bandwidth_mb_sec);
	if (rpc_decode(req, params, ARRAY_AND_SIZE(options_spec), &p) != 0)
		return;
	if (uraid_raid_set_options(p.process_window_size_kb, p.process_max_bandwidth_mb_sec) != 0) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: parameter 'process_window_size_kb' must be at least 1", req->method);
		return;
	}
	rpc_result_bool(req, true);
}

struct scrub_params {
	const char *name;
	bool repair;
};

static const struct param_spec scrub_spec[] = {
	PARAM(struct scrub_params, name, PT_STRING, true),
	PARAM(struct scrub_params, repair, PT_BOOL, false),
};

struct scrub_call {
	struct rpc_request *req;
	struct uraid_bdev *array;
	bool repair;
};

static void
scrub_done(void *cb_arg, int status, const struct uraid_array_check_result *r)
{
	struct scrub_call *sc = cb_arg;
	struct rpc_request *req = sc->req;
	json_t *res, *bad;

	free(sc);
	if (status != 0) {
		rpc_error_errno(req, status, "%s: scrub failed", req->method);
		return;
	}
	res = json_object();
	bad = json_array();
	for (uint64_t i = 0; i < r->bad_stripes && i < URAID_CHECK_MAX_REPORTED; i++)
		json_array_append_new(bad, json_integer((json_int_t)r->bad[i]));
	json_object_set_new(res, "stripes_checked", json_integer((json_int_t)r->stripes_checked));
	json_object_set_new(res, "mismatches", json_integer((json_int_t)r->bad_stripes));
	json_object_set_new(res, "mismatched_stripes", bad);
	json_object_set_new(res, "unreadable", json_integer((json_int_t)r->unreadable));
	json_object_set_new(res, "repaired", json_integer((json_int_t)r->repaired));
	json_object_set_new(res, "located", json_integer((json_int_t)r->located));
	rpc_result(req, res);
}

static void
scrub_start(void *arg)
{
	struct scrub_call *sc = arg;
	int rc = uraid_array_scrub(sc->array, sc->repair, scrub_done, sc);

	if (rc != 0) {
		struct rpc_request *req = sc->req;
		struct uraid_bdev *array = sc->array;

		free(sc);
		if (rc == -EOPNOTSUPP)
			rpc_error(
				req, rc,
				"%s: %s is a log array over zoned members: a repair would write "
				"stripes in place, which zones do not take; scrub without repair "
				"reports the mismatches (a failed member's rebuild rewrites them)",
				req->method, uraid_bdev_get_name(array));
		else
			rpc_error_errno(req, rc, "%s", req->method);
	}
}

/* uraid's bdev_raid_scrub: check (or repair) every stripe; answers when done. */
static void
rpc_bdev_raid_scrub(struct rpc_request *req, const json_t *params)
{
	struct scrub_params p = {0};
	struct scrub_call *sc;
	struct uraid_bdev *b;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(scrub_spec), &p) != 0)
		return;
	b = find_array(req, p.name);
	if (b == NULL)
		return;
	sc = malloc(sizeof(*sc));
	if (sc == NULL) {
		rpc_error_errno(req, -ENOMEM, "%s", req->method);
		return;
	}
	sc->req = req;
	sc->array = b;
	sc->repair = p.repair;
	uraid_reactor_send(uraid_reactor_get(0), scrub_start, sc);
}

const struct rpc_method raid_rpc_methods[] = {
	{"bdev_raid_create", rpc_bdev_raid_create, "create an array"},
	{"bdev_raid_delete", rpc_bdev_raid_delete, "delete an array"},
	{"bdev_raid_get_bdevs", rpc_bdev_raid_get_bdevs, "list arrays"},
	{"bdev_raid_get_stats", rpc_bdev_raid_get_stats,
	 "an array's I/O rates, latency, queue depth, stripe-write kinds and state"},
	{"bdev_raid_examine", rpc_bdev_raid_examine, "assemble arrays from superblocks found"},
	{"bdev_raid_add_base_bdev", rpc_bdev_raid_add_base_bdev, "add a member (or spare)"},
	{"bdev_raid_add_spare", rpc_bdev_raid_add_base_bdev, "add a hot spare"},
	{"bdev_raid_remove_base_bdev", rpc_bdev_raid_remove_base_bdev, "take a member out"},
	{"bdev_raid_fail_base_bdev", rpc_bdev_raid_fail_base_bdev,
	 "mark a member failed (a spare takes its slot)"},
	{"bdev_raid_replace_base_bdev", rpc_bdev_raid_replace_base_bdev,
	 "copy a member to a new bdev while it serves, then swap them"},
	{"bdev_raid_set_options", rpc_bdev_raid_set_options, "rebuild window and bandwidth cap"},
	{"bdev_raid_scrub", rpc_bdev_raid_scrub, "check (or repair) parity and copies"},
	{"bdev_wait_for_examine", rpc_bdev_wait_for_examine, "examine bdevs for arrays now"},
};
const size_t raid_rpc_num_methods = ARRAY_SIZE(raid_rpc_methods);
