/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The drive model (bdev_drive_create): a bdev stacked on any other that gives it a drive's
 * limits, so arrays over fast memory can be measured as they would run over drives: read and
 * write bandwidth, read and write IOPS, and a fixed latency per request.
 *
 * Theory of operation. The drive is one server shared by every reactor: it keeps the time at
 * which it is next free (busy_until, on the runtime's clock). A request is served after the
 * ones before it, for max(bytes / bandwidth, 1 / IOPS) of its kind, so the drive delivers no
 * more than its bandwidth and IOPS in any interval (a token bucket without burst); it is
 * answered its latency after that. The data moves through the base bdev at once; only the
 * answer waits, on a per-channel queue that the channel's poller drains as requests fall due.
 * Nothing sleeps. Limits of 0 mean none.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bdev_priv.h"

struct drive_bdev {
	struct uraid_bdev bdev;
	struct uraid_bdev_desc *base;
	char ch_dev; /* the io_device token of its channels */
	struct drive_bdev_opts opts;
	double ns_per_byte[2]; /* [0] reads, [1] writes */
	double ns_per_io[2];
	uint64_t latency_ns[2];
	_Atomic uint64_t busy_until; /* ns: when the drive has served what it was given */
};

struct drive_channel;

struct drive_io {
	uint64_t due; /* ns */
	int status;
	TAILQ_ENTRY(drive_io) link;
	struct uraid_bdev_io *io;
	struct drive_channel *dc;
};

struct drive_channel {
	struct drive_bdev *db;
	struct uraid_io_channel *base_ch;
	struct uraid_poller *poller;
	TAILQ_HEAD(drive_due, drive_io) due; /* answered at their due time, in that order */
};

static uint64_t
now_ns(void)
{
	return uraid_now_us() * 1000;
}

static struct drive_io *
dio_of(struct uraid_bdev_io *io)
{
	return (struct drive_io *)io->driver_ctx;
}

/* When a request of this kind and size is answered: after the drive has served it. */
static uint64_t
drive_schedule(struct drive_bdev *db, enum uraid_io_type type, uint64_t bytes)
{
	unsigned w = type != URAID_IO_READ;
	double per_bytes = (double)bytes * db->ns_per_byte[w];
	uint64_t service = (uint64_t)(per_bytes > db->ns_per_io[w] ? per_bytes : db->ns_per_io[w]);
	uint64_t now = now_ns(), start, end;
	uint64_t busy = atomic_load_explicit(&db->busy_until, memory_order_relaxed);

	if (type == URAID_IO_FLUSH || type == URAID_IO_RESET)
		service = 0; /* answered after its latency */
	do {
		start = busy > now ? busy : now;
		end = start + service;
	} while (service > 0 && !atomic_compare_exchange_weak_explicit(&db->busy_until, &busy, end,
								       memory_order_relaxed,
								       memory_order_relaxed));
	return end + db->latency_ns[w];
}

static void
queue_due(struct drive_channel *dc, struct drive_io *d)
{
	struct drive_io *after = TAILQ_LAST(&dc->due, drive_due);

	/* Mostly in order already: look from the end. */
	while (after != NULL && after->due > d->due)
		after = TAILQ_PREV(after, drive_due, link);
	if (after == NULL)
		TAILQ_INSERT_HEAD(&dc->due, d, link);
	else
		TAILQ_INSERT_AFTER(&dc->due, after, d, link);
}

static void
base_done(void *arg, int status)
{
	struct uraid_bdev_io *io = arg;
	struct drive_io *d = dio_of(io);

	d->status = status;
	queue_due(d->dc, d);
}

static int
drive_poll(void *arg)
{
	struct drive_channel *dc = arg;
	struct drive_io *d;
	uint64_t now;

	if (TAILQ_EMPTY(&dc->due))
		return URAID_POLLER_IDLE;
	now = now_ns();
	while ((d = TAILQ_FIRST(&dc->due)) != NULL && d->due <= now) {
		TAILQ_REMOVE(&dc->due, d, link);
		uraid_bdev_io_complete(d->io, d->status);
	}
	/* Busy while anything waits: an idle reactor may sleep, and nothing else would wake it
	 * when the next answer falls due. */
	return URAID_POLLER_BUSY;
}

static int
drive_submit(void *ch_ctx, struct uraid_bdev_io *io)
{
	struct drive_channel *dc = ch_ctx;
	struct drive_bdev *db = dc->db;
	struct drive_io *d = dio_of(io);
	uint64_t bytes = 0;
	int rc;

	if (io->type == URAID_IO_READ || io->type == URAID_IO_WRITE ||
	    io->type == URAID_IO_WRITE_ZEROES)
		bytes = io->num_blocks * io->bdev->block_size;
	memset(d, 0, sizeof(*d));
	d->io = io;
	d->dc = dc;
	switch (io->type) {
	case URAID_IO_READ:
		rc = uraid_bdev_readv(db->base, dc->base_ch, io->iov, io->iovcnt, io->offset_blocks,
				      io->num_blocks, base_done, io);
		break;
	case URAID_IO_WRITE:
		rc = uraid_bdev_writev(db->base, dc->base_ch, io->iov, io->iovcnt,
				       io->offset_blocks, io->num_blocks, io->flags, base_done, io);
		break;
	case URAID_IO_FLUSH:
		rc = uraid_bdev_flush(db->base, dc->base_ch, base_done, io);
		break;
	case URAID_IO_UNMAP:
		rc = uraid_bdev_unmap(db->base, dc->base_ch, io->offset_blocks, io->num_blocks,
				      base_done, io);
		break;
	case URAID_IO_WRITE_ZEROES:
		rc = uraid_bdev_write_zeroes(db->base, dc->base_ch, io->offset_blocks,
					     io->num_blocks, base_done, io);
		break;
	case URAID_IO_RESET:
		rc = uraid_bdev_reset(db->base, dc->base_ch, base_done, io);
		break;
	default:
		return -ENOTSUP;
	}
	/* (Bases answer later, never inside their submit: base_done finds it set.) */
	if (rc == 0)
		d->due = drive_schedule(db, io->type, bytes);
	return rc;
}

static bool
drive_io_type_supported(struct uraid_bdev *bdev, enum uraid_io_type type)
{
	struct drive_bdev *db = bdev->ctx;

	return type <= URAID_IO_RESET &&
	       uraid_bdev_io_type_supported(uraid_bdev_desc_get_bdev(db->base), type);
}

static int
drive_channel_create(void *io_device, void *ctx)
{
	struct drive_bdev *db = container_of((char *)io_device, struct drive_bdev, ch_dev);
	struct drive_channel *dc = ctx;

	dc->db = db;
	TAILQ_INIT(&dc->due);
	dc->base_ch = uraid_bdev_get_io_channel(db->base);
	if (dc->base_ch == NULL)
		return -ENOMEM;
	dc->poller = uraid_poller_register(drive_poll, dc, 0);
	if (dc->poller == NULL) {
		uraid_put_io_channel(dc->base_ch);
		return -ENOMEM;
	}
	return 0;
}

static void
drive_channel_destroy(void *io_device UNUSED, void *ctx)
{
	struct drive_channel *dc = ctx;

	uraid_poller_unregister(&dc->poller);
	uraid_put_io_channel(dc->base_ch);
}

static int
drive_destruct(struct uraid_bdev *bdev)
{
	struct drive_bdev *db = bdev->ctx;

	uraid_io_device_unregister(&db->ch_dev, NULL);
	uraid_bdev_close(db->base);
	free(db);
	return 0;
}

static const struct uraid_bdev_fn_table drive_fn = {
	.submit_request = drive_submit,
	.io_type_supported = drive_io_type_supported,
	.destruct = drive_destruct,
};

static void
base_event(enum uraid_bdev_event event, struct uraid_bdev *base UNUSED, void *ctx)
{
	struct drive_bdev *db = ctx;

	if (event == URAID_BDEV_EVENT_REMOVE)
		uraid_bdev_unregister(&db->bdev, NULL, NULL);
}

int
drive_bdev_create(const struct drive_bdev_opts *o, struct uraid_bdev **out, char *err,
		  size_t err_len)
{
	struct drive_bdev *db;
	struct uraid_bdev *base;
	int rc;

	if (o->name == NULL || o->name[0] == '\0' || strlen(o->name) >= URAID_BDEV_NAME_MAX) {
		err_set(err, err_len, "name must be 1 to %d characters", URAID_BDEV_NAME_MAX - 1);
		return -EINVAL;
	}
	/* Limits beyond any drive are refused rather than overflowing the arithmetic. */
	if (o->read_mb_s > 1000000 || o->write_mb_s > 1000000 || o->read_iops > 1000000000 ||
	    o->write_iops > 1000000000 || o->read_latency_us > 60000000 ||
	    o->write_latency_us > 60000000) {
		err_set(err, err_len,
			"limits are up to 1000000 MB/s, 1000000000 IOPS and 60000000 us");
		return -EINVAL;
	}
	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return -ENOMEM;
	rc = uraid_bdev_open(o->base_bdev, true, base_event, db, &db->base);
	if (rc == 0)
		rc = uraid_bdev_claim(db->base, o->name);
	if (rc != 0) {
		err_set(err, err_len, "base bdev '%s' %s", o->base_bdev,
			rc == -ENODEV ? "does not exist" : "is in use");
		if (db->base)
			uraid_bdev_close(db->base);
		free(db);
		return rc;
	}
	base = uraid_bdev_desc_get_bdev(db->base);
	db->opts = *o;
	db->opts.name = db->bdev.name;
	db->opts.base_bdev = NULL;
	/* MB/s are 10^6 bytes a second, as drives are rated. */
	db->ns_per_byte[0] = o->read_mb_s ? 1000.0 / (double)o->read_mb_s : 0;
	db->ns_per_byte[1] = o->write_mb_s ? 1000.0 / (double)o->write_mb_s : 0;
	db->ns_per_io[0] = o->read_iops ? 1e9 / (double)o->read_iops : 0;
	db->ns_per_io[1] = o->write_iops ? 1e9 / (double)o->write_iops : 0;
	db->latency_ns[0] = (uint64_t)o->read_latency_us * 1000;
	db->latency_ns[1] = (uint64_t)o->write_latency_us * 1000;
	snprintf(db->bdev.name, sizeof(db->bdev.name), "%s", o->name);
	db->bdev.product = "Drive model";
	db->bdev.block_size = uraid_bdev_get_block_size(base);
	db->bdev.num_blocks = uraid_bdev_get_num_blocks(base);
	db->bdev.write_cache = uraid_bdev_has_write_cache(base);
	db->bdev.driver_ctx_size = sizeof(struct drive_io);
	db->bdev.io_device = &db->ch_dev;
	db->bdev.fn = &drive_fn;
	db->bdev.ctx = db;
	if (o->uuid)
		memcpy(db->bdev.uuid, o->uuid, 16);
	uraid_io_device_register(&db->ch_dev, drive_channel_create, drive_channel_destroy,
				 sizeof(struct drive_channel), o->name);
	rc = uraid_bdev_register(&db->bdev);
	if (rc != 0) {
		err_set(err, err_len, "%s", rc == -EEXIST ? "name taken" : strerror(-rc));
		uraid_io_device_unregister(&db->ch_dev, NULL);
		uraid_bdev_close(db->base);
		free(db);
		return rc;
	}
	*out = &db->bdev;
	return 0;
}

const struct drive_bdev_opts *
drive_bdev_get_opts(struct uraid_bdev *bdev)
{
	if (bdev->fn != &drive_fn)
		return NULL;
	return &((struct drive_bdev *)bdev->ctx)->opts;
}
