/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SPDK bdev module "uraid": registration, start and stop, examine (arrays with
 * superblocks assemble once all their members have appeared), and the arrays' JSON in
 * bdev_get_bdevs and save_config.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <spdk/bdev.h>
#include <spdk/bdev_module.h>
#include <spdk/env.h>
#include <spdk/json.h>
#include <spdk/thread.h>

#include "spdk_priv.h"

#include "server/rpc.h"
#include "uraid/array.h"

static int
uraid_module_init(void)
{
	int rc = port_runtime_start();

	if (rc != 0)
		LOG_ERR("uraid: could not start (%s)", strerror(-rc));
	return rc;
}

static void
uraid_module_fini(void)
{
	port_runtime_stop();
	port_bdev_fini();
}

static int
uraid_get_ctx_size(void)
{
	return (int)port_bdev_io_ctx_size();
}

/* --- examine --- */

struct exam {
	struct spdk_bdev_desc *desc;
	struct spdk_io_channel *ch;
	uint8_t *buf;
	char name[URAID_BDEV_NAME_MAX];
};

static void
exam_finish(void *arg)
{
	struct exam *e = arg;

	spdk_dma_free(e->buf);
	free(e);
	spdk_bdev_module_examine_done(&g_uraid_module);
}

static void
exam_assemble(void *arg)
{
	struct exam *e = arg;
	char report[4096];
	int n = uraid_array_examine_whole(report, sizeof(report));

	if (n > 0 || (n < 0 && n != -EAGAIN)) {
		for (char *line = strtok(report, "\n"); line != NULL; line = strtok(NULL, "\n"))
			LOG_NOTE("uraid: %s", line);
	}
	while (spdk_thread_send_msg(spdk_thread_get_app_thread(), exam_finish, e) != 0)
		;
}

static void
exam_event(enum spdk_bdev_event_type type UNUSED, struct spdk_bdev *bdev UNUSED, void *ctx UNUSED)
{
}

static void
exam_read_done(struct spdk_bdev_io *bio, bool success, void *arg)
{
	struct exam *e = arg;
	struct uraid_member_probe p;
	char err[128];

	spdk_bdev_free_io(bio);
	spdk_put_io_channel(e->ch);
	spdk_bdev_close(e->desc);
	if (success &&
	    uraid_probe_superblock(e->buf, URAID_SB_AREA_BYTES, &p, err, sizeof(err)) == 0 &&
	    port_control_post(exam_assemble, e) == 0)
		return;
	exam_finish(e);
}

static void
uraid_examine_disk(struct spdk_bdev *bdev)
{
	uint32_t bs = spdk_bdev_get_block_size(bdev);
	struct exam *e = calloc(1, sizeof(*e));

	if (e == NULL || bs == 0 || URAID_SB_AREA_BYTES % bs != 0 ||
	    spdk_bdev_get_num_blocks(bdev) * bs < URAID_SB_AREA_BYTES)
		goto skip;
	snprintf(e->name, sizeof(e->name), "%s", spdk_bdev_get_name(bdev));
	e->buf = spdk_dma_zmalloc(URAID_SB_AREA_BYTES, 4096, NULL);
	if (e->buf == NULL || spdk_bdev_open_ext(e->name, false, exam_event, NULL, &e->desc) != 0)
		goto skip;
	e->ch = spdk_bdev_get_io_channel(e->desc);
	if (e->ch == NULL) {
		spdk_bdev_close(e->desc);
		goto skip;
	}
	if (spdk_bdev_read_blocks(e->desc, e->ch, e->buf, 0, URAID_SB_AREA_BYTES / bs,
				  exam_read_done, e) == 0)
		return;
	spdk_put_io_channel(e->ch);
	spdk_bdev_close(e->desc);
skip:
	if (e != NULL)
		spdk_dma_free(e->buf);
	free(e);
	spdk_bdev_module_examine_done(&g_uraid_module);
}

/* --- JSON --- */

/* Our save_config entries as SPDK method names: bdev_raid_X becomes bdev_uraid_X. */
static void
write_call(struct spdk_json_write_ctx *w, json_t *call)
{
	const char *method = json_string_value(json_object_get(call, "method"));
	char name[64];

	if (method == NULL || strncmp(method, "bdev_raid_", 10) != 0)
		return;
	snprintf(name, sizeof(name), "bdev_uraid_%s", method + 10);
	spdk_json_write_object_begin(w);
	spdk_json_write_named_string(w, "method", name);
	spdk_json_write_name(w, "params");
	port_json_write(w, json_object_get(call, "params"));
	spdk_json_write_object_end(w);
}

static void
write_calls(struct spdk_json_write_ctx *w, json_t *calls)
{
	json_t *c;
	size_t i;

	json_array_foreach(calls, i, c) write_call(w, c);
	json_decref(calls);
}

/* The module's options come first in the bdev subsystem's config, before any bdev. */
static int
uraid_config_json(struct spdk_json_write_ctx *w)
{
	json_t *calls = json_array();

	raid_options_call(calls);
	write_calls(w, calls);
	return 0;
}

/* Whether the bdev named name comes before bdev in SPDK's list (the order save_config writes
 * and a load replays); walks the list without its lock, which our caller holds. */
static bool
registered_before(const char *name, struct spdk_bdev *bdev)
{
	for (struct spdk_bdev *b = spdk_bdev_first(); b != NULL && b != bdev; b = spdk_bdev_next(b))
		if (strcmp(spdk_bdev_get_name(b), name) == 0)
			return true;
	return false;
}

/*
 * An array without superblocks is created again by its bdev_uraid_create (after its members,
 * which SPDK registered first), then given its spares: those registered before it, since a load
 * replays the calls in this order and a later one does not exist yet at this point (it is left
 * out, with a warning). Arrays with superblocks assemble by examine. SPDK calls this with its
 * bdev list locked: nothing here may look a bdev up by name.
 */
void
port_array_write_config_json(struct spdk_bdev *bdev, struct spdk_json_write_ctx *w)
{
	struct uraid_bdev *ub = port_array_of(bdev);
	json_t *create = ub ? raid_create_call(ub) : NULL, *spares, *c;
	size_t i;

	if (create == NULL)
		return;
	write_call(w, create);
	json_decref(create);
	spares = json_array();
	raid_spare_calls(spares, ub);
	json_array_foreach(spares, i, c)
	{
		const char *name = json_string_value(
			json_object_get(json_object_get(c, "params"), "base_bdev"));

		if (registered_before(name, bdev))
			write_call(w, c);
		else
			LOG_WARNING(
				"save_config: spare %s of %s was created after the array and is "
				"left out (a load could not add it there); add it again after "
				"loading",
				name, spdk_bdev_get_name(bdev));
	}
	json_decref(spares);
}

int
port_array_dump_info_json(void *ctx, struct spdk_json_write_ctx *w)
{
	struct uraid_bdev *ub = port_array_of_ctx(ctx);
	json_t *info = ub ? raid_info_json(ub) : NULL;

	if (info != NULL) {
		spdk_json_write_name(w, "uraid");
		port_json_write(w, info);
		json_decref(info);
	}
	return 0;
}

struct spdk_bdev_module g_uraid_module = {
	.name = "uraid",
	.module_init = uraid_module_init,
	.module_fini = uraid_module_fini,
	.get_ctx_size = uraid_get_ctx_size,
	.examine_disk = uraid_examine_disk,
	.config_json = uraid_config_json,
};

SPDK_BDEV_MODULE_REGISTER(uraid, &g_uraid_module)
