/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The null backend: every request succeeds and nothing is stored or read (buffers are left
 * untouched). Benchmarks on it measure the cost of uraid's own layers per I/O.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bdev_priv.h"

static int
null_submit(void *ch_ctx UNUSED, struct uraid_bdev_io *io)
{
	uraid_bdev_io_complete_deferred(io, 0);
	return 0;
}

static bool
null_io_type_supported(struct uraid_bdev *bdev UNUSED, enum uraid_io_type type UNUSED)
{
	return true;
}

static int
null_destruct(struct uraid_bdev *bdev)
{
	free(bdev);
	return 0;
}

static const struct uraid_bdev_fn_table null_fn = {
	.submit_request = null_submit,
	.io_type_supported = null_io_type_supported,
	.destruct = null_destruct,
};

int
null_bdev_create(const char *name, uint64_t num_blocks, uint32_t block_size, const uint8_t *uuid,
		 struct uraid_bdev **out)
{
	struct uraid_bdev *bdev;
	uint64_t size;
	int rc;

	if ((block_size != 512 && block_size != 4096) || num_blocks == 0 ||
	    ck_mul_u64(num_blocks, block_size, &size) != 0)
		return -EINVAL;
	if (strlen(name) == 0 || strlen(name) >= URAID_BDEV_NAME_MAX)
		return -EINVAL;
	bdev = calloc(1, sizeof(*bdev));
	if (bdev == NULL)
		return -ENOMEM;
	snprintf(bdev->name, sizeof(bdev->name), "%s", name);
	bdev->product = "Null disk";
	bdev->block_size = block_size;
	bdev->num_blocks = num_blocks;
	bdev->fn = &null_fn;
	bdev->ctx = bdev;
	if (uuid)
		memcpy(bdev->uuid, uuid, 16);
	rc = uraid_bdev_register(bdev);
	if (rc != 0) {
		free(bdev);
		return rc;
	}
	*out = bdev;
	return 0;
}
