/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The interface between the bdev layer and the code that implements a bdev (a backend or an
 * array). A module fills struct uraid_bdev and registers it; the layer validates every request
 * (range, length, type, access) before calling submit_request, so a module sees only
 * well-formed I/O.
 */
#ifndef URAID_BDEV_MODULE_H
#define URAID_BDEV_MODULE_H

#include <sys/queue.h>

#include "uraid/bdev.h"

#ifdef __cplusplus
extern "C" {
#endif

struct uraid_bdev_io {
	struct uraid_bdev *bdev;
	enum uraid_io_type type;
	uint32_t flags; /* URAID_IO_FUA */
	uint64_t offset_blocks;
	uint64_t num_blocks;
	struct iovec *iov; /* READ/WRITE only; owned by the submitter until completion */
	int iovcnt;
	int status; /* free for the module to stage a status before completing */
	/* Zoned bdevs: offset_blocks is the zone's first block for ZONE_APPEND,
	 * ZONE_MANAGEMENT and GET_ZONE_INFO; num_blocks is the zone count for GET_ZONE_INFO. */
	uint64_t *append_lba;		    /* ZONE_APPEND: set by the module before completing */
	struct uraid_zone_info *zone_info;  /* GET_ZONE_INFO: num_blocks entries */
	enum uraid_zone_action zone_action; /* ZONE_MANAGEMENT */
	/* Free for the module while it owns the I/O (queueing, deferred completion). */
	STAILQ_ENTRY(uraid_bdev_io) link;

	/* bdev layer private */
	uraid_bdev_io_cb cb;
	void *cb_arg;
	struct bdev_channel *bch;
	struct iovec iov_one;
	uint64_t submit_tick;
	unsigned defer_depth; /* deferred by a completion this many levels into a poll */
	void (*defer_fn)(struct uraid_bdev_io *io); /* uraid_bdev_io_defer's, else NULL */

	/* Module private, bdev->driver_ctx_size bytes, 16-byte aligned. */
	_Alignas(16) uint8_t driver_ctx[];
};

struct uraid_bdev_fn_table {
	/* Run the I/O on the module channel ch_ctx (the create_cb context of bdev->io_device,
	 * NULL when the module has none). Return 0 and later call uraid_bdev_io_complete()
	 * exactly once (never from inside this call), or return a negative errno to refuse it
	 * (-ENOMEM/-EAGAIN: retry later) and never complete it. */
	int (*submit_request)(void *ch_ctx, struct uraid_bdev_io *io);
	/* Optional: types beyond READ/WRITE/FLUSH/RESET; NULL = those four only. */
	bool (*io_type_supported)(struct uraid_bdev *bdev, enum uraid_io_type type);
	/* Free the module's state; called once no descriptor or channel is left. Return 0 when
	 * done, or 1 to finish later with uraid_bdev_destruct_done() (the unregister callback
	 * waits for it). */
	int (*destruct)(struct uraid_bdev *bdev);
};

struct uraid_bdev {
	/* Filled by the module before uraid_bdev_register(). */
	char name[URAID_BDEV_NAME_MAX];
	const char *product; /* "Malloc disk", "Null disk", ... */
	uint8_t uuid[16];    /* all zero: the layer generates one */
	uint32_t block_size;
	uint64_t num_blocks;
	bool write_cache;
	/* Zoned bdevs (see uraid/bdev.h); zone_size 0: not zoned. */
	uint64_t zone_size, zone_capacity;
	uint32_t max_open_zones, max_active_zones, optimal_open_zones; /* 0: no limit */
	uint64_t conventional_zones; /* zones at the start without a write pointer */
	size_t driver_ctx_size;
	void *io_device; /* module channel device, or NULL */
	const struct uraid_bdev_fn_table *fn;
	void *ctx;

	/* bdev layer private */
	struct bdev_internal *internal;
};

/* 0, -EEXIST (name taken), -EINVAL (bad geometry). The bdev layer registers the bdev as an
 * io_device itself; the module must not reuse the bdev pointer as its own io_device. */
int uraid_bdev_register(struct uraid_bdev *bdev);

/* An asynchronous destruct (one that returned 1) has finished; call before freeing bdev. */
void uraid_bdev_destruct_done(struct uraid_bdev *bdev);

/* Complete an I/O on the reactor it was submitted on. status: 0 or negative errno. */
void uraid_bdev_io_complete(struct uraid_bdev_io *io, int status);

/* Complete an I/O from the reactor's next iteration instead of now: for modules that finish
 * synchronously (ram, null, errors) but must not call back from inside submit. */
void uraid_bdev_io_complete_deferred(struct uraid_bdev_io *io, int status);
/* ... and never in the same iteration: a completion run by the next iteration may defer more
 * and have it run right after it (a chain, up to a bound), this one waits its turn. */
void uraid_bdev_io_complete_later(struct uraid_bdev_io *io, int status);
/* Run fn(io) where uraid_bdev_io_complete_deferred(io) would complete it, and let fn finish
 * the I/O and complete it (uraid_bdev_io_complete): for a module that starts a request at
 * submit and ends it there (ram starts fetching the memory of a small copy at submit and
 * copies there, after the requests submitted with it have started theirs). */
void uraid_bdev_io_defer(struct uraid_bdev_io *io, void (*fn)(struct uraid_bdev_io *io));

/* Total byte length of an iovec array. */
uint64_t uraid_iov_length(const struct iovec *iov, int iovcnt);
/* Copy between a flat buffer and an iovec array, starting at byte offset within the iovecs. */
void uraid_iov_to_buf(void *buf, const struct iovec *iov, int iovcnt, uint64_t offset,
		      uint64_t len);
void uraid_iov_from_buf(const struct iovec *iov, int iovcnt, uint64_t offset, const void *buf,
			uint64_t len);
void uraid_iov_memset(const struct iovec *iov, int iovcnt, int c);
/* Describe bytes [offset, +len) of an iovec array as iovecs into dst (at most dst_max).
 * Returns how many it takes (count with dst == NULL), or -ENOSPC if more than dst_max. */
int uraid_iov_slice(const struct iovec *iov, int iovcnt, uint64_t offset, uint64_t len,
		    struct iovec *dst, int dst_max);

/* Parse and format the canonical 8-4-4-4-12 UUID text. */
int uraid_uuid_parse(const char *text, uint8_t uuid[16]);
void uraid_uuid_format(const uint8_t uuid[16], char out[37]);
void uraid_uuid_generate(uint8_t uuid[16]);

#ifdef __cplusplus
}
#endif
#endif
