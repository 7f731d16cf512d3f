/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The zoned backend: a ZNS-like zoned bdev emulated over any bdev (SPDK's bdev_zone_block,
 * with write pointers that survive a restart and with ZNS's open/active zone limits).
 *
 * Layout on the base bdev: two copies of the zone table (A and B, each a header block and
 * 16 bytes per zone), then the zones. A table is written whole with FUA, alternating copies,
 * each with a generation and a CRC32C, so a torn write leaves the other copy; the newest valid
 * copy wins at start. It is written by every FLUSH (with the write pointers as they are when
 * the flush arrives, which covers every write completed before it) and by every RESET and
 * FINISH before they complete. After a power cut the write pointers are those of the last
 * flush or zone reset/finish: writes and appends not flushed since may be lost or torn at the
 * tail of their zone, as on a ZNS drive; open zones come back closed.
 *
 * The first conventional_zones zones (none by default) are conventional, as on SMR drives: no
 * write pointer, read and written anywhere, never reset; the rest are sequential.
 *
 * Zone state lives on reactor 0: requests from other reactors are sent there, which then
 * writes to the base bdev and sends the completion back.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bdev_priv.h"

#define ZT_MAGIC   0x534e5a4449415255ull /* "URAIDZNS" */
#define ZT_VERSION 1
#define ZT_ENTRY   16 /* bytes a zone, in the blocks after the header */

/* Header fields (docs/format.md); the CRC32C covers the copy from ZT_VERSION_OFF on. */
enum {
	ZT_MAGIC_OFF = 0,
	ZT_CRC_OFF = 8,
	ZT_VERSION_OFF = 12,
	ZT_GEN_OFF = 16,
	ZT_ZONE_SIZE_OFF = 24,
	ZT_CAPACITY_OFF = 32,
	ZT_NZONES_OFF = 40,
	ZT_BLOCK_SIZE_OFF = 48,
	ZT_CONV_OFF = 56, /* conventional zones at the start (0 in tables written before) */
};

struct zone {
	uint64_t wp; /* blocks written from the zone's start */
	enum uraid_zone_state state;
};

struct zoned_bdev {
	struct uraid_bdev bdev;
	struct uraid_bdev_desc *base;
	struct uraid_io_channel *base_ch; /* reactor 0's */
	uint64_t copy_blocks;		  /* one table copy */
	uint64_t data_offset;		  /* first block of zone 0 on the base */
	uint64_t nzones;
	uint64_t nconv; /* zones [0, nconv) are conventional */
	struct zone *zones;
	uint32_t open, active;
	uint64_t generation;
	uint8_t *table; /* the table being written (DMA-safe) */
	bool table_busy;
	/* Flushes, resets and finishes waiting for a table write: covered by the one in flight
	 * (cur), or by the next (next), which starts when that one is done. */
	STAILQ_HEAD(, uraid_bdev_io) cur, next;
};

/* Per-request state, in the request's driver context. */
struct zio {
	struct uraid_reactor *origin;
	int status;
	uint64_t lba;
};

static struct zio *
zio_of(struct uraid_bdev_io *io)
{
	return (struct zio *)io->driver_ctx;
}

static bool
is_open(enum uraid_zone_state s)
{
	return s == URAID_ZONE_IMPLICIT_OPEN || s == URAID_ZONE_EXPLICIT_OPEN;
}

static void
finish_msg(void *arg)
{
	struct uraid_bdev_io *io = arg;

	uraid_bdev_io_complete(io, zio_of(io)->status);
}

/* On reactor 0: hand the completion back to the reactor the request came from. */
static void
zio_done(struct uraid_bdev_io *io, int status)
{
	zio_of(io)->status = status;
	if (zio_of(io)->origin == uraid_reactor_self())
		uraid_bdev_io_complete(io, status);
	else
		uraid_reactor_send(zio_of(io)->origin, finish_msg, io);
}

/* --- the zone table --- */

static void
table_encode(struct zoned_bdev *zb, uint8_t *buf)
{
	uint32_t bs = zb->bdev.block_size;
	size_t len = zb->copy_blocks * bs;

	memset(buf, 0, len);
	le_put64(buf + ZT_MAGIC_OFF, ZT_MAGIC);
	le_put32(buf + ZT_VERSION_OFF, ZT_VERSION);
	le_put64(buf + ZT_GEN_OFF, zb->generation);
	le_put64(buf + ZT_ZONE_SIZE_OFF, zb->bdev.zone_size);
	le_put64(buf + ZT_CAPACITY_OFF, zb->bdev.zone_capacity);
	le_put64(buf + ZT_NZONES_OFF, zb->nzones);
	le_put32(buf + ZT_BLOCK_SIZE_OFF, bs);
	le_put64(buf + ZT_CONV_OFF, zb->nconv);
	for (uint64_t z = 0; z < zb->nzones; z++) {
		uint8_t *e = buf + bs + z * ZT_ENTRY;

		le_put64(e, zb->zones[z].wp);
		e[8] = (uint8_t)zb->zones[z].state;
	}
	le_put32(buf + ZT_CRC_OFF, crc32c(buf + ZT_VERSION_OFF, len - ZT_VERSION_OFF));
}

/* The next generation of the table encoded into zb->table; returns the first block of the
 * copy it goes to (the generation's parity names it). */
static uint64_t
table_next(struct zoned_bdev *zb)
{
	zb->generation++;
	table_encode(zb, zb->table);
	return (zb->generation & 1) * zb->copy_blocks;
}

/* A copy's generation (> 0); 0 if it is no zone table at all (no magic); -1 if it is one but
 * damaged or of another geometry. */
static int64_t
table_check(const struct zoned_bdev *zb, const uint8_t *buf)
{
	uint32_t bs = zb->bdev.block_size;
	size_t len = zb->copy_blocks * bs;
	uint64_t gen;

	if (le_get64(buf + ZT_MAGIC_OFF) != ZT_MAGIC)
		return 0;
	if (le_get32(buf + ZT_VERSION_OFF) != ZT_VERSION ||
	    le_get64(buf + ZT_ZONE_SIZE_OFF) != zb->bdev.zone_size ||
	    le_get64(buf + ZT_CAPACITY_OFF) != zb->bdev.zone_capacity ||
	    le_get64(buf + ZT_NZONES_OFF) != zb->nzones ||
	    le_get32(buf + ZT_BLOCK_SIZE_OFF) != bs || le_get64(buf + ZT_CONV_OFF) != zb->nconv ||
	    le_get32(buf + ZT_CRC_OFF) != crc32c(buf + ZT_VERSION_OFF, len - ZT_VERSION_OFF))
		return -1;
	gen = le_get64(buf + ZT_GEN_OFF);
	return gen == 0 || gen > INT64_MAX ? -1 : (int64_t)gen;
}

static void table_write(void *arg);

static void
table_written(void *arg, int status)
{
	struct zoned_bdev *zb = arg;
	struct uraid_bdev_io *io;

	zb->table_busy = false;
	if (status != 0)
		LOG_ERR("%s: could not write its zone table (%s)", zb->bdev.name,
			strerror(-status));
	while ((io = STAILQ_FIRST(&zb->cur)) != NULL) {
		STAILQ_REMOVE_HEAD(&zb->cur, link);
		zio_done(io, status);
	}
	STAILQ_CONCAT(&zb->cur, &zb->next);
	if (!STAILQ_EMPTY(&zb->cur))
		table_write(zb);
}

static void
table_write(void *arg)
{
	struct zoned_bdev *zb = arg;
	int rc;

	zb->table_busy = true;
	rc = uraid_bdev_write(zb->base, zb->base_ch, zb->table, table_next(zb), zb->copy_blocks,
			      URAID_IO_FUA, table_written, zb);
	if (rc != 0) {
		/* Out of requests on the base: try again from the reactor's next round. */
		zb->generation--;
		uraid_reactor_send(uraid_reactor_self(), table_write, zb);
	}
}

/* The request completes once a table encoded after now is durable. */
static void
table_then_done(struct zoned_bdev *zb, struct uraid_bdev_io *io)
{
	if (zb->table_busy) {
		STAILQ_INSERT_TAIL(&zb->next, io, link);
		return;
	}
	STAILQ_INSERT_TAIL(&zb->cur, io, link);
	table_write(zb);
}

static void
table_flush_done(void *arg, int status)
{
	struct uraid_bdev_io *io = arg;

	if (status != 0)
		zio_done(io, status);
	else
		table_then_done(io->bdev->ctx, io);
}

/* --- zone state (reactor 0) --- */

/* Whether zone z may be (or is) open: -EINVAL if its state forbids it, -EBUSY if the limits
 * do not allow another open (or, for an empty zone, active) zone. */
static int
zone_open_check(const struct zoned_bdev *zb, const struct zone *z)
{
	if (is_open(z->state))
		return 0;
	if (z->state != URAID_ZONE_EMPTY && z->state != URAID_ZONE_CLOSED)
		return -EINVAL;
	if (zb->bdev.max_open_zones && zb->open >= zb->bdev.max_open_zones)
		return -EBUSY;
	if (z->state == URAID_ZONE_EMPTY && zb->bdev.max_active_zones &&
	    zb->active >= zb->bdev.max_active_zones)
		return -EBUSY;
	return 0;
}

/* Move zone z to open (a write into it, or an explicit open). */
static int
zone_open(struct zoned_bdev *zb, struct zone *z, bool explicit)
{
	int rc = zone_open_check(zb, z);

	if (rc != 0)
		return rc;
	if (!is_open(z->state)) {
		if (z->state == URAID_ZONE_EMPTY)
			zb->active++;
		zb->open++;
		z->state = URAID_ZONE_IMPLICIT_OPEN;
	}
	if (explicit)
		z->state = URAID_ZONE_EXPLICIT_OPEN;
	return 0;
}

static void
zone_leave(struct zoned_bdev *zb, struct zone *z, enum uraid_zone_state to)
{
	if (is_open(z->state))
		zb->open--;
	if ((is_open(z->state) || z->state == URAID_ZONE_CLOSED) &&
	    (to == URAID_ZONE_EMPTY || to == URAID_ZONE_FULL))
		zb->active--;
	z->state = to;
}

static void
base_done(void *arg, int status)
{
	struct uraid_bdev_io *io = arg;

	if (status == 0 && io->type == URAID_IO_ZONE_APPEND)
		*io->append_lba = zio_of(io)->lba;
	zio_done(io, status);
}

static void zoned_run(void *arg);

/* A base request that could not be submitted: out of requests is retried from the reactor's
 * next round (the contract: never fail a user's I/O for it), anything else fails it. */
static void
base_submit_failed(struct uraid_bdev_io *io, int rc)
{
	if ((rc == -ENOMEM || rc == -EAGAIN) &&
	    uraid_reactor_send(uraid_reactor_self(), zoned_run, io) == 0)
		return;
	zio_done(io, rc);
}

/* WRITE (at the write pointer) and ZONE_APPEND: the zone's state moves once the base write is
 * submitted, so a retried submission finds it as it was. */
static void
zone_write(struct zoned_bdev *zb, struct uraid_bdev_io *io)
{
	uint64_t zs = zb->bdev.zone_size, cap = zb->bdev.zone_capacity;
	uint64_t zi = io->offset_blocks / zs, lba;
	struct zone *z = &zb->zones[zi];
	int rc;

	if (zi < zb->nconv) {
		/* Conventional: anywhere inside the conventional zones, never appended to. */
		if (io->type == URAID_IO_ZONE_APPEND ||
		    io->offset_blocks + io->num_blocks > zb->nconv * zs) {
			zio_done(io, -EINVAL);
			return;
		}
		rc = uraid_bdev_writev(zb->base, zb->base_ch, io->iov, io->iovcnt,
				       zb->data_offset + io->offset_blocks, io->num_blocks,
				       io->flags, base_done, io);
		if (rc != 0)
			base_submit_failed(io, rc);
		return;
	}
	lba = zi * zs + z->wp;
	/* Full, read-only and offline zones are refused by zone_open_check. */
	if ((io->type == URAID_IO_WRITE && io->offset_blocks != lba) ||
	    z->wp + io->num_blocks > cap) {
		zio_done(io, -EINVAL);
		return;
	}
	rc = zone_open_check(zb, z);
	if (rc != 0) {
		zio_done(io, rc);
		return;
	}
	zio_of(io)->lba = lba;
	rc = uraid_bdev_writev(zb->base, zb->base_ch, io->iov, io->iovcnt, zb->data_offset + lba,
			       io->num_blocks, io->flags, base_done, io);
	if (rc != 0) {
		base_submit_failed(io, rc);
		return;
	}
	zone_open(zb, z, false);
	z->wp += io->num_blocks;
	if (z->wp == cap)
		zone_leave(zb, z, URAID_ZONE_FULL);
}

static void
zone_mgmt(struct zoned_bdev *zb, struct uraid_bdev_io *io)
{
	struct zone *z = &zb->zones[io->offset_blocks / zb->bdev.zone_size];
	int rc = 0;

	if (z->state == URAID_ZONE_OFFLINE || z->state == URAID_ZONE_READ_ONLY ||
	    z->state == URAID_ZONE_NOT_WP) {
		zio_done(io, -EINVAL);
		return;
	}
	switch (io->zone_action) {
	case URAID_ZONE_RESET:
		zone_leave(zb, z, URAID_ZONE_EMPTY);
		z->wp = 0;
		table_then_done(zb, io);
		return;
	case URAID_ZONE_FINISH:
		zone_leave(zb, z, URAID_ZONE_FULL);
		z->wp = zb->bdev.zone_capacity;
		table_then_done(zb, io);
		return;
	case URAID_ZONE_OPEN:
		rc = zone_open(zb, z, true);
		break;
	case URAID_ZONE_CLOSE:
		/* An open zone nothing was written to is empty again (and no longer active). */
		if (is_open(z->state))
			zone_leave(zb, z, z->wp == 0 ? URAID_ZONE_EMPTY : URAID_ZONE_CLOSED);
		break;
	}
	zio_done(io, rc);
}

static void
zone_info(struct zoned_bdev *zb, struct uraid_bdev_io *io)
{
	uint64_t first = io->offset_blocks / zb->bdev.zone_size;

	for (uint64_t i = 0; i < io->num_blocks; i++) {
		const struct zone *z = &zb->zones[first + i];
		uint64_t start = (first + i) * zb->bdev.zone_size;

		io->zone_info[i] = (struct uraid_zone_info){
			start, start + z->wp,
			first + i < zb->nconv ? zb->bdev.zone_size : zb->bdev.zone_capacity,
			z->state};
	}
	zio_done(io, 0);
}

static void
zoned_run(void *arg)
{
	struct uraid_bdev_io *io = arg;
	struct zoned_bdev *zb = io->bdev->ctx;
	int rc;

	if (zb->base_ch == NULL && (zb->base_ch = uraid_bdev_get_io_channel(zb->base)) == NULL) {
		zio_done(io, -ENOMEM);
		return;
	}
	switch (io->type) {
	case URAID_IO_WRITE:
	case URAID_IO_ZONE_APPEND:
		zone_write(zb, io);
		break;
	case URAID_IO_ZONE_MANAGEMENT:
		zone_mgmt(zb, io);
		break;
	case URAID_IO_GET_ZONE_INFO:
		zone_info(zb, io);
		break;
	case URAID_IO_READ:
		rc = uraid_bdev_readv(zb->base, zb->base_ch, io->iov, io->iovcnt,
				      zb->data_offset + io->offset_blocks, io->num_blocks,
				      base_done, io);
		if (rc != 0)
			base_submit_failed(io, rc);
		break;
	case URAID_IO_FLUSH:
		/* Base first (what was written is durable), then the table that says so. */
		rc = uraid_bdev_flush(zb->base, zb->base_ch, table_flush_done, io);
		if (rc != 0)
			base_submit_failed(io, rc);
		break;
	default:
		zio_done(io, -ENOTSUP);
		break;
	}
}

static int
zoned_submit(void *ch_ctx UNUSED, struct uraid_bdev_io *io)
{
	const struct uraid_bdev *b = io->bdev;
	const struct zoned_bdev *zb = b->ctx;
	bool conv = io->offset_blocks + io->num_blocks <= zb->nconv * b->zone_size;

	/* Reads and writes stay below the capacity of one sequential zone (blocks past it do not
	 * exist); the conventional zones are one range. */
	if ((io->type == URAID_IO_READ || io->type == URAID_IO_WRITE) && !conv &&
	    io->offset_blocks % b->zone_size + io->num_blocks > b->zone_capacity)
		return -EINVAL;
	zio_of(io)->origin = uraid_reactor_self();
	return uraid_reactor_send(uraid_reactor_get(0), zoned_run, io);
}

static bool
zoned_io_type_supported(struct uraid_bdev *bdev UNUSED, enum uraid_io_type type)
{
	return type != URAID_IO_UNMAP && type != URAID_IO_WRITE_ZEROES;
}

static void
zoned_free(struct zoned_bdev *zb)
{
	if (zb->base)
		uraid_bdev_close(zb->base);
	uraid_dma_free(zb->table);
	free(zb->zones);
	free(zb);
}

static void
destruct_finish(void *arg, int status)
{
	struct zoned_bdev *zb = arg;

	if (status != 0)
		LOG_WARNING("%s: its zone table could not be written at the end (%s); the next "
			    "start has the write pointers of the last flush",
			    zb->bdev.name, strerror(-status));
	uraid_put_io_channel(zb->base_ch);
	zb->base_ch = NULL;
	uraid_bdev_destruct_done(&zb->bdev);
	zoned_free(zb);
}

/* A clean end: what was written made durable, then the table as it is now, so a restart
 * keeps every write pointer. */
static void
destruct_flushed(void *arg, int status)
{
	struct zoned_bdev *zb = arg;

	if (status != 0) {
		destruct_finish(zb, status);
		return;
	}
	if (uraid_bdev_write(zb->base, zb->base_ch, zb->table, table_next(zb), zb->copy_blocks,
			     URAID_IO_FUA, destruct_finish, zb) != 0)
		destruct_finish(zb, -ENOMEM);
}

static void
destruct_msg(void *arg)
{
	struct zoned_bdev *zb = arg;

	if (uraid_bdev_flush(zb->base, zb->base_ch, destruct_flushed, zb) != 0)
		destruct_finish(zb, -ENOMEM);
}

static int
zoned_destruct(struct uraid_bdev *bdev)
{
	struct zoned_bdev *zb = bdev->ctx;

	if (zb->base_ch == NULL) {
		/* Never used since it started: the table on the base is current. */
		zoned_free(zb);
		return 0;
	}
	uraid_reactor_send(uraid_reactor_get(0), destruct_msg, zb);
	return 1;
}

static const struct uraid_bdev_fn_table zoned_fn = {
	.submit_request = zoned_submit,
	.io_type_supported = zoned_io_type_supported,
	.destruct = zoned_destruct,
};

static void
base_event(enum uraid_bdev_event event UNUSED, struct uraid_bdev *bdev UNUSED, void *ctx UNUSED)
{
}

/* Read both table copies; the newest valid one sets the zones (the other may be a write the
 * power tore). 0: loaded, or fresh when neither copy is a zone table; -EEXIST when there is a
 * table but none of them is valid for this geometry: another geometry, or both damaged. A
 * table is never reset behind the user's back. */
static int
table_load(struct zoned_bdev *zb, bool *fresh)
{
	uint32_t bs = zb->bdev.block_size;
	int64_t best = 0, g[2];
	const uint8_t *src = NULL;
	uint8_t *buf = uraid_dma_alloc(4096, 2 * zb->copy_blocks * bs);

	if (buf == NULL)
		return -ENOMEM;
	for (int c = 0; c < 2; c++) {
		g[c] = uraid_bdev_io_sync(zb->base, URAID_IO_READ, buf + c * zb->copy_blocks * bs,
					  c * zb->copy_blocks, zb->copy_blocks) == 0
			       ? table_check(zb, buf + c * zb->copy_blocks * bs)
			       : 0;
		if (g[c] > best) {
			best = g[c];
			src = buf + c * zb->copy_blocks * bs;
		}
	}
	*fresh = src == NULL && g[0] == 0 && g[1] == 0;
	if (src == NULL && !*fresh) {
		uraid_dma_free(buf);
		return -EEXIST;
	}
	for (uint64_t z = zb->nconv; src != NULL && z < zb->nzones; z++) {
		const uint8_t *e = src + bs + z * ZT_ENTRY;
		struct zone *zn = &zb->zones[z];

		zn->wp = le_get64(e);
		zn->state = (enum uraid_zone_state)e[8];
		if (zn->wp > zb->bdev.zone_capacity || zn->state > URAID_ZONE_OFFLINE)
			zn->state = URAID_ZONE_OFFLINE; /* a CRC-valid entry we cannot trust */
		else if (is_open(zn->state))
			zn->state = URAID_ZONE_CLOSED; /* open zones come back closed */
		if (zn->state == URAID_ZONE_CLOSED)
			zb->active++;
	}
	zb->generation = (uint64_t)best;
	uraid_dma_free(buf);
	return 0;
}

int
zoned_bdev_create(const struct zoned_bdev_opts *o, struct uraid_bdev **out, char *err,
		  size_t err_len)
{
	struct zoned_bdev *zb;
	struct uraid_bdev *base;
	uint64_t zs, cap = o->zone_capacity, base_blocks, copy_blocks;
	bool fresh;
	int rc;

	if (o->name == NULL || o->name[0] == '\0' || strlen(o->name) >= URAID_BDEV_NAME_MAX) {
		err_set(err, err_len, "name must be 1 to %d characters", URAID_BDEV_NAME_MAX - 1);
		return -EINVAL;
	}
	if (cap == 0) {
		err_set(err, err_len, "zone_capacity must be at least one block");
		return -EINVAL;
	}
	/* SPDK's default zone size: the capacity rounded up to a power of two. */
	zs = o->zone_size;
	for (uint64_t p = 1; zs == 0; p <<= 1)
		if (p >= cap || p == 1ull << 40)
			zs = p;
	if (o->zone_size && (o->zone_size & (o->zone_size - 1)) != 0) {
		err_set(err, err_len, "zone_size %lu is not a power of two",
			(unsigned long)o->zone_size);
		return -EINVAL;
	}
	if (cap > zs) {
		err_set(err, err_len, "zone_capacity %lu is larger than zone_size %lu",
			(unsigned long)cap, (unsigned long)zs);
		return -EINVAL;
	}
	zb = calloc(1, sizeof(*zb));
	if (zb == NULL)
		return -ENOMEM;
	STAILQ_INIT(&zb->cur);
	STAILQ_INIT(&zb->next);
	rc = uraid_bdev_open(o->base_bdev, true, base_event, zb, &zb->base);
	if (rc == 0)
		rc = uraid_bdev_claim(zb->base, o->name);
	if (rc != 0) {
		err_set(err, err_len, "base bdev '%s' %s", o->base_bdev,
			rc == -ENODEV ? "does not exist" : "is in use");
		zoned_free(zb);
		return rc;
	}
	base = uraid_bdev_desc_get_bdev(zb->base);
	if (uraid_bdev_is_zoned(base)) {
		err_set(err, err_len, "base bdev '%s' is zoned already", o->base_bdev);
		zoned_free(zb);
		return -EINVAL;
	}
	zb->bdev.block_size = uraid_bdev_get_block_size(base);
	base_blocks = uraid_bdev_get_num_blocks(base);
	/* Size the table for as many zones as could fit, then count the zones after it. */
	copy_blocks =
		1 + (base_blocks / zs * ZT_ENTRY + zb->bdev.block_size - 1) / zb->bdev.block_size;
	zb->copy_blocks = copy_blocks;
	zb->data_offset = 2 * copy_blocks;
	zb->nzones = base_blocks > zb->data_offset ? (base_blocks - zb->data_offset) / zs : 0;
	zb->nconv = o->conventional_zones;
	if (zb->nzones <= zb->nconv) {
		err_set(err, err_len,
			"base bdev '%s' (%lu blocks) holds %lu zones of %lu blocks: none "
			"sequential "
			"after %lu conventional",
			o->base_bdev, (unsigned long)base_blocks, (unsigned long)zb->nzones,
			(unsigned long)zs, (unsigned long)zb->nconv);
		zoned_free(zb);
		return -EINVAL;
	}
	snprintf(zb->bdev.name, sizeof(zb->bdev.name), "%s", o->name);
	zb->bdev.product = "Zone block device";
	zb->bdev.num_blocks = zb->nzones * zs;
	zb->bdev.write_cache = uraid_bdev_has_write_cache(base);
	zb->bdev.zone_size = zs;
	zb->bdev.zone_capacity = cap;
	zb->bdev.max_open_zones = o->max_open_zones;
	zb->bdev.max_active_zones = o->max_active_zones;
	zb->bdev.optimal_open_zones = o->optimal_open_zones;
	zb->bdev.conventional_zones = zb->nconv;
	zb->bdev.driver_ctx_size = sizeof(struct zio);
	zb->bdev.fn = &zoned_fn;
	zb->bdev.ctx = zb;
	if (o->uuid)
		memcpy(zb->bdev.uuid, o->uuid, 16);
	zb->zones = calloc(zb->nzones, sizeof(*zb->zones));
	zb->table = uraid_dma_alloc(4096, copy_blocks * zb->bdev.block_size);
	if (zb->zones == NULL || zb->table == NULL) {
		zoned_free(zb);
		return -ENOMEM;
	}
	for (uint64_t z = 0; z < zb->nconv; z++)
		zb->zones[z].state = URAID_ZONE_NOT_WP;
	rc = table_load(zb, &fresh);
	if (rc == -EEXIST) {
		err_set(err, err_len,
			"base bdev '%s' holds a zone table that does not fit: another geometry "
			"(zone size, capacity, block size, conventional zones) or both copies "
			"damaged; it is not reset",
			o->base_bdev);
		zoned_free(zb);
		return -EINVAL;
	}
	if (rc == 0 && fresh) {
		/* A new zoned device: its (empty) table goes down before anything is written,
		 * into copy A (generation 2), whose place does not depend on the geometry, so a
		 * later start with another one finds it. */
		zb->generation = 1;
		rc = uraid_bdev_io_sync(zb->base, URAID_IO_WRITE, zb->table, table_next(zb),
					copy_blocks);
	}
	if (rc == 0)
		rc = uraid_bdev_register(&zb->bdev);
	if (rc != 0) {
		err_set(err, err_len, "%s", rc == -EEXIST ? "name taken" : strerror(-rc));
		zoned_free(zb);
		return rc;
	}
	*out = &zb->bdev;
	return 0;
}
