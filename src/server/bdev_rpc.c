/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Methods that create, inspect and delete bdevs. Names and parameters follow SPDK's where SPDK
 * has the method (bdev_malloc_create, bdev_null_create, bdev_aio_create, bdev_uring_create,
 * bdev_error_create, bdev_error_inject_error, bdev_get_bdevs); uraid's own are bdev_fault_*.
 */
#include <stdio.h>
#include <stdlib.h>

#include "rpc.h"
#include "bdev/bdev_priv.h"
#include "uraid/array.h"

static bool
check_name(struct rpc_request *req, const char *name)
{
	if (name == NULL || name[0] == '\0' || strlen(name) >= URAID_BDEV_NAME_MAX) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: parameter 'name' must be 1 to %d characters", req->method,
			  URAID_BDEV_NAME_MAX - 1);
		return false;
	}
	if (uraid_bdev_get_by_name(name) != NULL) {
		rpc_error(req, -EEXIST, "%s: a bdev named '%s' exists already", req->method, name);
		return false;
	}
	return true;
}

static bool
check_block_size(struct rpc_request *req, uint32_t block_size)
{
	if (block_size != 512 && block_size != 4096) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: parameter 'block_size' is %u; it must be 512 or 4096", req->method,
			  block_size);
		return false;
	}
	return true;
}

static const uint8_t *
uuid_or_null(const uint8_t uuid[16])
{
	static const uint8_t zero[16];

	return memcmp(uuid, zero, 16) ? uuid : NULL;
}

/* --- ram / null --- */

struct mem_params {
	const char *name;
	uint64_t num_blocks;
	uint32_t block_size;
	uint8_t uuid[16];
};

static const struct param_spec mem_spec[] = {
	PARAM(struct mem_params, name, PT_STRING, false),
	PARAM(struct mem_params, num_blocks, PT_U64, true),
	PARAM(struct mem_params, block_size, PT_U32, true),
	PARAM(struct mem_params, uuid, PT_UUID, false),
	PARAM_SPDK_ZERO("optimal_io_boundary"),
	PARAM_SPDK_ZERO("md_size"),
	PARAM_SPDK_ZERO("md_interleave"),
	PARAM_SPDK_ZERO("dif_type"),
	PARAM_SPDK_ZERO("dif_is_head_of_md"),
	PARAM_SPDK_ZERO("dif_pi_format"),
	PARAM_SPDK_ZERO("physical_block_size"),
};

static void
mem_create(struct rpc_request *req, const json_t *params, bool null)
{
	struct mem_params p = {0};
	struct uraid_bdev *bdev;
	char auto_name[32];
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(mem_spec), &p) != 0)
		return;
	if (p.name == NULL && !null) {
		/* As SPDK: an unnamed malloc bdev is MallocN, the first free N. */
		for (int i = 0; i < 100000; i++) {
			snprintf(auto_name, sizeof(auto_name), "Malloc%d", i);
			if (uraid_bdev_get_by_name(auto_name) == NULL)
				break;
		}
		p.name = auto_name;
	}
	if (p.name == NULL) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: missing required parameter 'name'",
			  req->method);
		return;
	}
	if (!check_name(req, p.name) || !check_block_size(req, p.block_size))
		return;
	if (p.num_blocks == 0 || p.num_blocks > (UINT64_MAX / 2) / p.block_size) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: parameter 'num_blocks' must be 1 to %lu",
			  req->method, (unsigned long)((UINT64_MAX / 2) / p.block_size));
		return;
	}
	rc = null ? null_bdev_create(p.name, p.num_blocks, p.block_size, uuid_or_null(p.uuid),
				     &bdev)
		  : ram_bdev_create(p.name, p.num_blocks, p.block_size, uuid_or_null(p.uuid),
				    &bdev);
	if (rc != 0) {
		rpc_error_errno(req, rc, "%s: cannot create '%s'", req->method, p.name);
		return;
	}
	rpc_result(req, json_string(p.name));
}

static void
rpc_bdev_malloc_create(struct rpc_request *req, const json_t *params)
{
	mem_create(req, params, false);
}

static void
rpc_bdev_null_create(struct rpc_request *req, const json_t *params)
{
	mem_create(req, params, true);
}

/* --- delete, shared by every backend --- */

struct delete_params {
	const char *name;
};

static const struct param_spec delete_spec[] = {
	PARAM(struct delete_params, name, PT_STRING, true),
};

static void
bdev_delete(struct rpc_request *req, const json_t *params, const char *product)
{
	struct delete_params p = {0};
	struct uraid_bdev *bdev;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(delete_spec), &p) != 0)
		return;
	bdev = uraid_bdev_get_by_name(p.name);
	if (bdev == NULL) {
		rpc_error(req, -ENODEV, "%s: no bdev named '%s'", req->method, p.name);
		return;
	}
	if (strcmp(uraid_bdev_get_product(bdev), product) != 0) {
		rpc_error(req, -EINVAL, "%s: '%s' is a %s, not a %s", req->method, p.name,
			  uraid_bdev_get_product(bdev), product);
		return;
	}
	rpc_delete_bdev(req, bdev);
}

static void
rpc_bdev_malloc_delete(struct rpc_request *req, const json_t *params)
{
	bdev_delete(req, params, "Malloc disk");
}

static void
rpc_bdev_null_delete(struct rpc_request *req, const json_t *params)
{
	bdev_delete(req, params, "Null disk");
}

static void
rpc_bdev_file_delete(struct rpc_request *req, const json_t *params)
{
	bdev_delete(req, params, "io_uring file");
}

static void
rpc_bdev_fault_delete(struct rpc_request *req, const json_t *params)
{
	bdev_delete(req, params, "Fault injection disk");
}

/* --- zoned (SPDK's bdev_zone_block) --- */

struct zone_params {
	const char *name;
	const char *base_bdev;
	uint64_t zone_capacity;
	uint64_t zone_size;
	uint32_t optimal_open_zones;
	uint32_t max_open_zones;
	uint32_t max_active_zones;
	uint64_t conventional_zones;
	uint8_t uuid[16];
};

static const struct param_spec zone_spec[] = {
	PARAM(struct zone_params, name, PT_STRING, true),
	PARAM(struct zone_params, base_bdev, PT_STRING, true),
	PARAM(struct zone_params, zone_capacity, PT_U64, true),
	PARAM(struct zone_params, optimal_open_zones, PT_U32, true),
	PARAM(struct zone_params, zone_size, PT_U64, false),
	PARAM(struct zone_params, max_open_zones, PT_U32, false),
	PARAM(struct zone_params, max_active_zones, PT_U32, false),
	PARAM(struct zone_params, conventional_zones, PT_U64, false),
	PARAM(struct zone_params, uuid, PT_UUID, false),
};

static void
rpc_bdev_zone_block_create(struct rpc_request *req, const json_t *params)
{
	struct zone_params p = {0};
	struct zoned_bdev_opts o = {0};
	struct uraid_bdev *bdev;
	char err[256];
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(zone_spec), &p) != 0 || !check_name(req, p.name))
		return;
	if (p.optimal_open_zones == 0) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: optimal_open_zones must be at least 1",
			  req->method);
		return;
	}
	o.name = p.name;
	o.base_bdev = p.base_bdev;
	o.zone_capacity = p.zone_capacity;
	o.zone_size = p.zone_size;
	o.optimal_open_zones = p.optimal_open_zones;
	o.max_open_zones = p.max_open_zones;
	o.max_active_zones = p.max_active_zones;
	o.conventional_zones = p.conventional_zones;
	o.uuid = uuid_or_null(p.uuid);
	rc = zoned_bdev_create(&o, &bdev, err, sizeof(err));
	if (rc != 0) {
		rpc_error(req, rc, "%s: cannot create '%s': %s", req->method, p.name, err);
		return;
	}
	rpc_result(req, json_string(p.name));
}

static void
rpc_bdev_zone_block_delete(struct rpc_request *req, const json_t *params)
{
	bdev_delete(req, params, "Zone block device");
}

/* --- drive model (ours: SPDK's bdev_delay_create has latency only) --- */

struct drive_params {
	const char *name;
	const char *base_bdev_name;
	uint32_t read_mb_s, write_mb_s, read_iops, write_iops;
	uint32_t read_latency_us, write_latency_us;
	uint8_t uuid[16];
};

static const struct param_spec drive_spec[] = {
	PARAM(struct drive_params, name, PT_STRING, true),
	PARAM(struct drive_params, base_bdev_name, PT_STRING, true),
	PARAM(struct drive_params, read_mb_s, PT_U32, false),
	PARAM(struct drive_params, write_mb_s, PT_U32, false),
	PARAM(struct drive_params, read_iops, PT_U32, false),
	PARAM(struct drive_params, write_iops, PT_U32, false),
	PARAM(struct drive_params, read_latency_us, PT_U32, false),
	PARAM(struct drive_params, write_latency_us, PT_U32, false),
	PARAM(struct drive_params, uuid, PT_UUID, false),
};

static void
rpc_bdev_drive_create(struct rpc_request *req, const json_t *params)
{
	struct drive_params p = {0};
	struct drive_bdev_opts o = {0};
	struct uraid_bdev *bdev;
	char err[256];
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(drive_spec), &p) != 0 ||
	    !check_name(req, p.name))
		return;
	o.name = p.name;
	o.base_bdev = p.base_bdev_name;
	o.read_mb_s = p.read_mb_s;
	o.write_mb_s = p.write_mb_s;
	o.read_iops = p.read_iops;
	o.write_iops = p.write_iops;
	o.read_latency_us = p.read_latency_us;
	o.write_latency_us = p.write_latency_us;
	o.uuid = uuid_or_null(p.uuid);
	rc = drive_bdev_create(&o, &bdev, err, sizeof(err));
	if (rc != 0) {
		rpc_error(req, rc, "%s: cannot create '%s': %s", req->method, p.name, err);
		return;
	}
	rpc_result(req, json_string(p.name));
}

static void
rpc_bdev_drive_delete(struct rpc_request *req, const json_t *params)
{
	bdev_delete(req, params, "Drive model");
}

/* --- file (io_uring) --- */

struct file_params {
	const char *name;
	const char *filename;
	uint32_t block_size;
	bool readonly;
	uint64_t size_mb;
	uint8_t uuid[16];
};

static const struct param_spec aio_spec[] = {
	PARAM(struct file_params, name, PT_STRING, true),
	PARAM(struct file_params, filename, PT_STRING, true),
	PARAM(struct file_params, block_size, PT_U32, false),
	PARAM(struct file_params, readonly, PT_BOOL, false),
	PARAM(struct file_params, uuid, PT_UUID, false),
	PARAM(struct file_params, size_mb, PT_U64, false),
	PARAM_SPDK_ZERO("fallocate"),
};

static void
rpc_bdev_file_create(struct rpc_request *req, const json_t *params)
{
	struct file_params p = {0};
	struct file_bdev_opts o = {0};
	struct uraid_bdev *bdev;
	char err[256];
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(aio_spec), &p) != 0)
		return;
	if (!check_name(req, p.name))
		return;
	if (p.block_size != 0 && !check_block_size(req, p.block_size))
		return;
	if (p.size_mb > (1ull << 40)) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: parameter 'size_mb' is too large",
			  req->method);
		return;
	}
	o.name = p.name;
	o.filename = p.filename;
	o.block_size = p.block_size;
	o.readonly = p.readonly;
	o.create_bytes = p.size_mb << 20;
	o.uuid = uuid_or_null(p.uuid);
	rc = file_bdev_create(&o, &bdev, err, sizeof(err));
	if (rc != 0) {
		rpc_error(req, rc, "%s: cannot create '%s': %s", req->method, p.name, err);
		return;
	}
	rpc_result(req, json_string(p.name));
}

/* --- error / fault --- */

struct error_create_params {
	const char *base_name;
	uint8_t uuid[16];
};

static const struct param_spec error_create_spec[] = {
	PARAM(struct error_create_params, base_name, PT_STRING, true),
	PARAM(struct error_create_params, uuid, PT_UUID, false),
};

static void
fault_create_common(struct rpc_request *req, const struct fault_bdev_opts *o)
{
	struct uraid_bdev *bdev;
	int rc;

	if (!check_name(req, o->name))
		return;
	if (uraid_bdev_get_by_name(o->base_name) == NULL) {
		rpc_error(req, -ENODEV, "%s: no base bdev named '%s'", req->method, o->base_name);
		return;
	}
	rc = fault_bdev_create(o, &bdev);
	if (rc == -EPERM) {
		rpc_error(req, rc, "%s: base bdev '%s' is already claimed by '%s'", req->method,
			  o->base_name,
			  uraid_bdev_claimed_by(uraid_bdev_get_by_name(o->base_name))
				  ?: "a writer");
		return;
	}
	if (rc != 0) {
		rpc_error_errno(req, rc, "%s: cannot create '%s'", req->method, o->name);
		return;
	}
	rpc_result(req, json_string(o->name));
}

static void
rpc_bdev_error_create(struct rpc_request *req, const json_t *params)
{
	struct error_create_params p = {0};
	struct fault_bdev_opts o = {0};
	char name[URAID_BDEV_NAME_MAX + 8];

	if (rpc_decode(req, params, ARRAY_AND_SIZE(error_create_spec), &p) != 0)
		return;
	/* SPDK names the error bdev after its base. */
	snprintf(name, sizeof(name), "EE_%s", p.base_name);
	o.name = name;
	o.base_name = p.base_name;
	o.uuid = uuid_or_null(p.uuid);
	fault_create_common(req, &o);
}

struct fault_create_params {
	const char *name;
	const char *base_name;
	bool volatile_cache;
	uint64_t seed;
	uint64_t cache_max_mb;
	uint8_t uuid[16];
};

static const struct param_spec fault_create_spec[] = {
	PARAM(struct fault_create_params, name, PT_STRING, true),
	PARAM(struct fault_create_params, base_name, PT_STRING, true),
	PARAM(struct fault_create_params, volatile_cache, PT_BOOL, false),
	PARAM(struct fault_create_params, seed, PT_U64, false),
	PARAM(struct fault_create_params, cache_max_mb, PT_U64, false),
	PARAM(struct fault_create_params, uuid, PT_UUID, false),
};

static void
rpc_bdev_fault_create(struct rpc_request *req, const json_t *params)
{
	struct fault_create_params p = {0};
	struct fault_bdev_opts o = {0};

	if (rpc_decode(req, params, ARRAY_AND_SIZE(fault_create_spec), &p) != 0)
		return;
	if (p.cache_max_mb > (1ull << 20)) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: parameter 'cache_max_mb' is too large",
			  req->method);
		return;
	}
	o.name = p.name;
	o.base_name = p.base_name;
	o.volatile_cache = p.volatile_cache;
	o.seed = p.seed;
	o.cache_max_bytes = p.cache_max_mb << 20;
	o.uuid = uuid_or_null(p.uuid);
	fault_create_common(req, &o);
}

static const struct {
	const char *name;
	uint32_t mask;
} io_type_names[] = {
	{"read", 1u << URAID_IO_READ},
	{"write", 1u << URAID_IO_WRITE},
	{"flush", 1u << URAID_IO_FLUSH},
	{"unmap", 1u << URAID_IO_UNMAP},
	{"write_zeroes", 1u << URAID_IO_WRITE_ZEROES},
	{"reset", 1u << URAID_IO_RESET},
	{"all", (1u << URAID_IO_NUM_TYPES) - 1},
};

static const struct {
	const char *name;
	enum fault_kind kind;
} error_type_names[] = {
	{"failure", FAULT_FAILURE},
	{"corrupt_data", FAULT_CORRUPT},
	{"nomem", FAULT_NOMEM},
	{"latency", FAULT_LATENCY},
};

struct inject_params {
	const char *name;
	const char *io_type;
	const char *error_type;
	int64_t num;
	uint32_t queue_depth;
	uint32_t corrupt_offset;
	uint32_t corrupt_value;
	uint64_t offset_blocks;
	uint64_t num_blocks;
	double probability;
	uint32_t latency_us;
};

static const struct param_spec inject_spec[] = {
	PARAM(struct inject_params, name, PT_STRING, true),
	PARAM(struct inject_params, io_type, PT_STRING, true),
	PARAM(struct inject_params, error_type, PT_STRING, false),
	PARAM(struct inject_params, num, PT_I64, false),
	PARAM(struct inject_params, queue_depth, PT_U32, false),
	PARAM(struct inject_params, corrupt_offset, PT_U32, false),
	PARAM(struct inject_params, corrupt_value, PT_U32, false),
	PARAM(struct inject_params, offset_blocks, PT_U64, false),
	PARAM(struct inject_params, num_blocks, PT_U64, false),
	PARAM(struct inject_params, probability, PT_DOUBLE, false),
	PARAM(struct inject_params, latency_us, PT_U32, false),
};

/* bdev_error_inject_error (SPDK) and bdev_fault_inject (ours, same parameters plus a range,
 * a probability and latency). io_type "clear" removes every rule, as in SPDK. */
static void
rpc_fault_inject(struct rpc_request *req, const json_t *params)
{
	struct inject_params p = {.num = 1, .probability = 1.0};
	struct fault_rule_opts o = {0};
	size_t i;
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(inject_spec), &p) != 0)
		return;
	if (strcmp(p.io_type, "clear") == 0) {
		rc = fault_clear(p.name);
		if (rc != 0)
			rpc_error(req, rc, "%s: no fault-injection bdev named '%s'", req->method,
				  p.name);
		else
			rpc_result_bool(req, true);
		return;
	}
	for (i = 0; i < ARRAY_SIZE(io_type_names); i++) {
		if (strcmp(p.io_type, io_type_names[i].name) == 0)
			break;
	}
	if (i == ARRAY_SIZE(io_type_names)) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: parameter 'io_type' is '%s'; use read, write, flush, unmap, "
			  "write_zeroes, reset, all or clear",
			  req->method, p.io_type);
		return;
	}
	o.io_type_mask = io_type_names[i].mask;
	for (i = 0; i < ARRAY_SIZE(error_type_names); i++) {
		if (strcmp(p.error_type ? p.error_type : "failure", error_type_names[i].name) == 0)
			break;
	}
	if (i == ARRAY_SIZE(error_type_names)) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: parameter 'error_type' is '%s'; use failure, corrupt_data, nomem or "
			  "latency",
			  req->method, p.error_type);
		return;
	}
	o.kind = error_type_names[i].kind;
	if (p.num == 0 || p.num < -1) {
		rpc_error(req, RPC_INVALID_PARAMS,
			  "%s: parameter 'num' must be a count >= 1, or -1 for every I/O",
			  req->method);
		return;
	}
	if (!(p.probability > 0.0 && p.probability <= 1.0)) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: parameter 'probability' must be in (0, 1]",
			  req->method);
		return;
	}
	if (p.corrupt_value > 255) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: parameter 'corrupt_value' must be 0..255",
			  req->method);
		return;
	}
	o.count = p.num;
	o.offset_blocks = p.offset_blocks;
	o.num_blocks = p.num_blocks;
	o.probability_ppm = (uint32_t)(p.probability * 1000000.0 + 0.5);
	o.latency_us = p.latency_us;
	o.corrupt_offset = p.corrupt_offset;
	o.corrupt_value = (uint8_t)p.corrupt_value;
	rc = fault_inject(p.name, &o);
	if (rc == -ENODEV)
		rpc_error(req, rc, "%s: no fault-injection bdev named '%s'", req->method, p.name);
	else if (rc == -ENOSPC)
		rpc_error(req, rc, "%s: '%s' has its maximum of rules; clear them first",
			  req->method, p.name);
	else if (rc != 0)
		rpc_error_errno(req, rc, "%s", req->method);
	else
		rpc_result_bool(req, true);
}

/* --- remote members over NBD (ours; SPDK's equivalent is NVMe-oF) --- */

struct nbd_attach_params {
	const char *name;
	const char *uri;
	uint32_t connections, block_size, timeout_ms, reconnect_delay_ms;
	uint8_t uuid[16];
};

static const struct param_spec nbd_attach_spec[] = {
	PARAM(struct nbd_attach_params, name, PT_STRING, true),
	PARAM(struct nbd_attach_params, uri, PT_STRING, true),
	PARAM(struct nbd_attach_params, connections, PT_U32, false),
	PARAM(struct nbd_attach_params, block_size, PT_U32, false),
	PARAM(struct nbd_attach_params, timeout_ms, PT_U32, false),
	PARAM(struct nbd_attach_params, reconnect_delay_ms, PT_U32, false),
	PARAM(struct nbd_attach_params, uuid, PT_UUID, false),
};

static void
rpc_bdev_nbd_attach(struct rpc_request *req, const json_t *params)
{
	struct nbd_attach_params p = {.timeout_ms = 10000, .reconnect_delay_ms = 1000};
	struct remote_bdev_opts o = {0};
	struct uraid_bdev *bdev;
	char err[256];
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(nbd_attach_spec), &p) != 0 ||
	    !check_name(req, p.name))
		return;
	if (uraid_bdev_get_by_name(p.name) != NULL) {
		rpc_error(req, -EEXIST, "%s: a bdev named '%s' exists already", req->method,
			  p.name);
		return;
	}
	o.name = p.name;
	o.uri = p.uri;
	o.connections = p.connections;
	o.block_size = p.block_size;
	o.timeout_ms = p.timeout_ms;
	o.reconnect_delay_ms = p.reconnect_delay_ms;
	o.uuid = uuid_or_null(p.uuid);
	rc = remote_bdev_create(&o, &bdev, err, sizeof(err));
	if (rc != 0) {
		rpc_error(req, rc, "%s: cannot attach '%s': %s", req->method, p.name, err);
		return;
	}
	rpc_result(req, json_string(p.name));
}

static void
rpc_bdev_nbd_detach(struct rpc_request *req, const json_t *params)
{
	bdev_delete(req, params, "NBD export");
}

/* --- bdev_get_bdevs --- */

/* SPDK's driver_specific: {"raid": ...} as bdev_raid_get_bdevs shows an array, {"uring":
 * {"filename"}} for a file. */
static json_t *
bdev_driver_json(struct uraid_bdev *bdev)
{
	const char *file = uraid_bdev_get_path(bdev);
	const struct drive_bdev_opts *d = drive_bdev_get_opts(bdev);

	if (uraid_bdev_is_array(bdev))
		return json_pack("{s:o}", "raid", raid_info_json(bdev));
	if (file != NULL)
		return json_pack("{s:{s:s}}", "uring", "filename", file);
	if (remote_bdev_uri(bdev) != NULL)
		return json_pack("{s:{s:s, s:I, s:I}}", "nbd", "uri", remote_bdev_uri(bdev),
				 "connections", (json_int_t)remote_bdev_connections(bdev, false),
				 "connections_up", (json_int_t)remote_bdev_connections(bdev, true));
	if (d != NULL)
		return json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "drive", "read_mb_s",
				 (json_int_t)d->read_mb_s, "write_mb_s", (json_int_t)d->write_mb_s,
				 "read_iops", (json_int_t)d->read_iops, "write_iops",
				 (json_int_t)d->write_iops, "read_latency_us",
				 (json_int_t)d->read_latency_us, "write_latency_us",
				 (json_int_t)d->write_latency_us);
	return json_object();
}

static json_t *
bdev_to_json(struct uraid_bdev *bdev)
{
	/* SPDK's names for them. */
	static const char *const types[URAID_IO_NUM_TYPES] = {
		"read",	 "write",	"flush",	   "unmap",	   "write_zeroes",
		"reset", "zone_append", "zone_management", "get_zone_info"};
	json_t *o = json_object(), *io = json_object();
	const char *claimer = uraid_bdev_claimed_by(bdev);
	char uuid[37];

	uraid_uuid_format(uraid_bdev_get_uuid(bdev), uuid);
	json_object_set_new(o, "name", json_string(uraid_bdev_get_name(bdev)));
	json_object_set_new(o, "aliases", json_array());
	json_object_set_new(o, "product_name", json_string(uraid_bdev_get_product(bdev)));
	json_object_set_new(o, "block_size", json_integer(uraid_bdev_get_block_size(bdev)));
	json_object_set_new(o, "num_blocks",
			    json_integer((json_int_t)uraid_bdev_get_num_blocks(bdev)));
	json_object_set_new(o, "uuid", json_string(uuid));
	json_object_set_new(o, "claimed", json_boolean(claimer != NULL));
	if (claimer)
		json_object_set_new(o, "claimed_by", json_string(claimer));
	json_object_set_new(o, "write_cache", json_boolean(uraid_bdev_has_write_cache(bdev)));
	for (int t = 0; t < URAID_IO_NUM_TYPES; t++)
		json_object_set_new(io, types[t],
				    json_boolean(uraid_bdev_io_type_supported(bdev, t)));
	json_object_set_new(o, "supported_io_types", io);
	json_object_set_new(o, "zoned", json_boolean(uraid_bdev_is_zoned(bdev)));
	if (uraid_bdev_is_zoned(bdev)) {
		json_object_set_new(o, "zone_size",
				    json_integer((json_int_t)uraid_bdev_get_zone_size(bdev)));
		json_object_set_new(o, "zone_capacity",
				    json_integer((json_int_t)uraid_bdev_get_zone_capacity(bdev)));
		json_object_set_new(o, "max_open_zones",
				    json_integer(uraid_bdev_get_max_open_zones(bdev)));
		json_object_set_new(o, "max_active_zones",
				    json_integer(uraid_bdev_get_max_active_zones(bdev)));
		json_object_set_new(o, "optimal_open_zones",
				    json_integer(uraid_bdev_get_optimal_open_zones(bdev)));
		json_object_set_new(
			o, "conventional_zones",
			json_integer((json_int_t)uraid_bdev_get_conventional_zones(bdev)));
	}
	json_object_set_new(o, "driver_specific", bdev_driver_json(bdev));
	return o;
}

static int
collect_bdev(struct uraid_bdev *bdev, void *ctx)
{
	json_array_append_new(ctx, bdev_to_json(bdev));
	return 0;
}

struct get_bdevs_params {
	const char *name;
	uint64_t timeout;
};

static const struct param_spec get_bdevs_spec[] = {
	PARAM(struct get_bdevs_params, name, PT_STRING, false),
	PARAM(struct get_bdevs_params, timeout, PT_U64, false),
};

static void
rpc_bdev_get_bdevs(struct rpc_request *req, const json_t *params)
{
	struct get_bdevs_params p = {0};
	json_t *arr;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(get_bdevs_spec), &p) != 0)
		return;
	arr = json_array();
	if (p.name != NULL) {
		struct uraid_bdev *bdev = uraid_bdev_get_by_name(p.name);

		if (bdev == NULL) {
			json_decref(arr);
			rpc_error(req, -ENODEV, "%s: no bdev named '%s'", req->method, p.name);
			return;
		}
		json_array_append_new(arr, bdev_to_json(bdev));
	} else {
		uraid_bdev_foreach(collect_bdev, arr);
	}
	rpc_result(req, arr);
}

/* SPDK options methods found in saved configs; nothing in them applies to uraid. */
static void
rpc_spdk_noop(struct rpc_request *req, const json_t *params UNUSED)
{
	LOG_DBG("%s: SPDK option method accepted and ignored", req->method);
	rpc_result_bool(req, true);
}

static void
add_method_name(const struct rpc_method *m, void *ctx)
{
	json_array_append_new(ctx, json_string(m->name));
}

static void
add_runtime_method_name(const struct rpc_method *m, void *ctx)
{
	if (strcmp(m->name, "framework_start_init") != 0)
		json_array_append_new(ctx, json_string(m->name));
}

struct methods_params {
	bool current;
	bool include_aliases;
};

/* SPDK's rpc_get_methods. The daemon is always past its start: with "current" the methods of
 * the startup state (framework_start_init) are left out, as SPDK does once initialized, so
 * rpc.py's load_config runs the config's methods and stops. There are no aliases. */
static void
rpc_get_methods(struct rpc_request *req, const json_t *params)
{
	static const struct param_spec spec[] = {
		PARAM(struct methods_params, current, PT_BOOL, false),
		PARAM(struct methods_params, include_aliases, PT_BOOL, false),
	};
	struct methods_params p = {0};
	json_t *arr;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(spec), &p) != 0)
		return;
	arr = json_array();
	rpc_method_foreach(p.current ? add_runtime_method_name : add_method_name, arr);
	rpc_result(req, arr);
}

/* --- bdev_get_iostat: SPDK's counters, one bdev or all --- */

struct iostat_ctx {
	struct rpc_request *req;
	json_t *names; /* still to collect */
	json_t *out;
	size_t next;
};

static void iostat_next(struct iostat_ctx *c);

static void
iostat_one(void *arg, const struct uraid_bdev_io_stats *st)
{
	struct iostat_ctx *c = arg;
	const char *name = json_string_value(json_array_get(c->names, c->next));
	struct uraid_bdev *bdev = uraid_bdev_get_by_name(name);

	if (st != NULL && bdev != NULL)
		json_array_append_new(c->out,
				      iostat_to_json(name, st, uraid_bdev_get_block_size(bdev)));
	c->next++;
	iostat_next(c);
}

static void
iostat_next(struct iostat_ctx *c)
{
	if (c->next < json_array_size(c->names) &&
	    uraid_bdev_collect_stats(json_string_value(json_array_get(c->names, c->next)),
				     iostat_one, c) == 0)
		return;
	rpc_result(c->req,
		   json_pack("{s:I, s:I, s:o}", "tick_rate", (json_int_t)uraid_bdev_tick_rate(),
			     "ticks", (json_int_t)ticks_now(), "bdevs", c->out));
	json_decref(c->names);
	free(c);
}

static int
add_name(struct uraid_bdev *bdev, void *ctx)
{
	json_array_append_new(ctx, json_string(uraid_bdev_get_name(bdev)));
	return 0;
}

struct iostat_params {
	const char *name;
	bool per_channel;
};

static const struct param_spec iostat_spec[] = {
	PARAM(struct iostat_params, name, PT_STRING, false),
	PARAM(struct iostat_params, per_channel, PT_BOOL, false),
};

static void
rpc_bdev_get_iostat(struct rpc_request *req, const json_t *params)
{
	struct iostat_params p = {0};
	struct iostat_ctx *c;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(iostat_spec), &p) != 0)
		return;
	if (p.per_channel) {
		rpc_error_errno(
			req, -ENOTSUP,
			"%s: per-channel counters are not kept (the bdev's are the sum of its "
			"channels'); leave per_channel out or false",
			req->method);
		return;
	}
	if (p.name != NULL && uraid_bdev_get_by_name(p.name) == NULL) {
		rpc_error_errno(req, -ENODEV, "%s: no bdev named %s", req->method, p.name);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rpc_error_errno(req, -ENOMEM, "%s", req->method);
		return;
	}
	c->req = req;
	c->out = json_array();
	c->names = json_array();
	if (p.name != NULL)
		json_array_append_new(c->names, json_string(p.name));
	else
		uraid_bdev_foreach(add_name, c->names);
	iostat_next(c);
}

const struct rpc_method bdev_rpc_methods[] = {
	{"bdev_get_iostat", rpc_bdev_get_iostat,
	 "I/O counters and latency per bdev (SPDK's shape: ticks at tick_rate per second)"},
	{"bdev_malloc_create", rpc_bdev_malloc_create, "create a ram bdev"},
	{"bdev_malloc_delete", rpc_bdev_malloc_delete, "delete a ram bdev"},
	{"bdev_null_create", rpc_bdev_null_create, "create a null bdev"},
	{"bdev_null_delete", rpc_bdev_null_delete, "delete a null bdev"},
	{"bdev_aio_create", rpc_bdev_file_create, "create a file bdev (io_uring)"},
	{"bdev_aio_delete", rpc_bdev_file_delete, "delete a file bdev"},
	{"bdev_uring_create", rpc_bdev_file_create, "create a file bdev (io_uring)"},
	{"bdev_uring_delete", rpc_bdev_file_delete, "delete a file bdev"},
	{"bdev_error_create", rpc_bdev_error_create, "create EE_<base>, an error-injection bdev"},
	{"bdev_zone_block_create", rpc_bdev_zone_block_create,
	 "a zoned bdev (ZNS-like) emulated over a bdev"},
	{"bdev_zone_block_delete", rpc_bdev_zone_block_delete, "delete a zone block bdev"},
	{"bdev_drive_create", rpc_bdev_drive_create,
	 "a drive's bandwidth, IOPS and latency over a bdev"},
	{"bdev_drive_delete", rpc_bdev_drive_delete, "delete a drive model bdev"},
	{"bdev_nbd_attach", rpc_bdev_nbd_attach,
	 "a remote NBD export as a bdev (a member on another host)"},
	{"bdev_nbd_detach", rpc_bdev_nbd_detach, "detach a remote NBD export"},
	{"bdev_error_delete", rpc_bdev_fault_delete, "delete an error-injection bdev"},
	{"bdev_error_inject_error", rpc_fault_inject, "inject errors into an error bdev"},
	{"bdev_fault_create", rpc_bdev_fault_create, "create a fault bdev (errors, power cuts)"},
	{"bdev_fault_delete", rpc_bdev_fault_delete, "delete a fault bdev"},
	{"bdev_fault_inject", rpc_fault_inject, "inject errors, corruption or latency"},
	{"bdev_get_bdevs", rpc_bdev_get_bdevs, "list bdevs"},
	{"bdev_set_options", rpc_spdk_noop, "SPDK option; accepted and ignored"},
	{"bdev_nvme_set_options", rpc_spdk_noop, "SPDK option; accepted and ignored"},
	{"bdev_nvme_set_hotplug", rpc_spdk_noop, "SPDK option; accepted and ignored"},
	{"bdev_iscsi_set_options", rpc_spdk_noop, "SPDK option; accepted and ignored"},
	{"rpc_get_methods", rpc_get_methods, "list methods"},
};
const size_t bdev_rpc_num_methods = ARRAY_SIZE(bdev_rpc_methods);
