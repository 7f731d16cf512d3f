/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The block-device interface. Every backend (ram, null, file, fault) and every array is a
 * uraid_bdev; users open a descriptor, take a per-reactor channel and submit I/O on it.
 *
 * Units: offsets and lengths are in blocks (block_size bytes: 512 or 4096). Buffers are iovecs
 * whose total length must equal num_blocks * block_size; any alignment is accepted (backends
 * that need aligned memory bounce).
 *
 * Submit contract (DESIGN.md §2):
 *  - A submit that returns 0 calls cb exactly once, later, on the submitting reactor, and never
 *    from inside the submit call.
 *  - A submit that returns an error never calls cb. -EINVAL: the request is malformed (out of
 *    range, wrong length, descriptor is read-only); -ENOTSUP: the bdev does not do that type of
 *    I/O. -ENOMEM / -EAGAIN: out of
 *    request slots right now; queue the I/O and retry later, never fail the user's I/O for it.
 *  - cb's status is 0 or a negative errno (-EIO for a device error).
 *  - Submit on the reactor that owns ch (the one that called uraid_bdev_get_io_channel).
 *
 * Ordering: none between I/Os in flight at the same time. A FLUSH makes durable every write
 * that completed before the FLUSH was submitted. A WRITE with URAID_IO_FUA is durable when it
 * completes.
 */
#ifndef URAID_BDEV_H
#define URAID_BDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "uraid/thread.h"

#ifdef __cplusplus
extern "C" {
#endif

#define URAID_BDEV_NAME_MAX 64

struct uraid_bdev;
struct uraid_bdev_desc;

enum uraid_io_type {
	URAID_IO_READ,
	URAID_IO_WRITE,
	URAID_IO_FLUSH,
	URAID_IO_UNMAP,
	URAID_IO_WRITE_ZEROES,
	URAID_IO_RESET,
	URAID_IO_ZONE_APPEND,	  /* zoned bdevs: write at the zone's write pointer */
	URAID_IO_ZONE_MANAGEMENT, /* zoned bdevs: reset, finish, open, close a zone */
	URAID_IO_GET_ZONE_INFO,	  /* zoned bdevs: report zones */
	URAID_IO_NUM_TYPES
};

/*
 * Zoned bdevs (as SPDK's spdk_bdev_zone_*, after NVMe ZNS): the blocks are split into zones of
 * zone_size blocks (a power of two), each written only sequentially at its write pointer, up to
 * its capacity (<= zone_size; blocks past it cannot be read or written); a zone is emptied only
 * by a reset. WRITE must start exactly at the zone's write pointer; ZONE_APPEND writes there
 * and reports where. A write that breaks the rule fails with -EINVAL (not at the write
 * pointer, past the capacity, into a full or offline zone); opening more zones than the device
 * allows fails with -EBUSY.
 */
enum uraid_zone_state {
	URAID_ZONE_EMPTY,
	URAID_ZONE_IMPLICIT_OPEN,
	URAID_ZONE_EXPLICIT_OPEN,
	URAID_ZONE_CLOSED,
	URAID_ZONE_FULL,
	URAID_ZONE_READ_ONLY,
	URAID_ZONE_OFFLINE,
	URAID_ZONE_NOT_WP, /* a conventional zone: no write pointer, written anywhere */
};

enum uraid_zone_action {
	URAID_ZONE_CLOSE,
	URAID_ZONE_FINISH,
	URAID_ZONE_OPEN,
	URAID_ZONE_RESET,
};

struct uraid_zone_info {
	uint64_t zone_id;	/* first block of the zone */
	uint64_t write_pointer; /* next block to write (zone_id + capacity when full) */
	uint64_t capacity;	/* writable blocks */
	enum uraid_zone_state state;
};

/* Write flags. */
#define URAID_IO_FUA (1u << 0)

enum uraid_bdev_event {
	URAID_BDEV_EVENT_REMOVE, /* the bdev is going away: close the descriptor */
};

typedef void (*uraid_bdev_event_cb)(enum uraid_bdev_event event, struct uraid_bdev *bdev,
				    void *event_ctx);
typedef void (*uraid_bdev_io_cb)(void *cb_arg, int status);
typedef void (*uraid_bdev_unregister_cb)(void *cb_arg, int status);

/* --- lookup and properties (any thread) --- */
struct uraid_bdev *uraid_bdev_get_by_name(const char *name);
const char *uraid_bdev_get_name(const struct uraid_bdev *bdev);
const char *uraid_bdev_get_product(const struct uraid_bdev *bdev);
const uint8_t *uraid_bdev_get_uuid(const struct uraid_bdev *bdev); /* 16 bytes */
uint32_t uraid_bdev_get_block_size(const struct uraid_bdev *bdev);
uint64_t uraid_bdev_get_num_blocks(const struct uraid_bdev *bdev);
bool uraid_bdev_has_write_cache(const struct uraid_bdev *bdev);
bool uraid_bdev_io_type_supported(const struct uraid_bdev *bdev, enum uraid_io_type type);
const char *uraid_bdev_claimed_by(const struct uraid_bdev *bdev); /* NULL if unclaimed */
/* The file or block device holding the bdev's blocks, as it was given; NULL if none (ram,
 * null, arrays) or NULL bdev. */
const char *uraid_bdev_get_path(const struct uraid_bdev *bdev);
/* Call fn for every registered bdev in registration order; stops at a non-zero return. */
int uraid_bdev_foreach(int (*fn)(struct uraid_bdev *bdev, void *ctx), void *ctx);

/* --- descriptors (control path) --- */

/* Open by name. write = false opens read-only. -ENODEV: no such bdev (or it is being removed);
 * -EPERM: write requested but the bdev is claimed by someone else. event_cb is called (on the
 * opening reactor, or directly if the opener was not a reactor) when the bdev is hot-removed. */
int uraid_bdev_open(const char *name, bool write, uraid_bdev_event_cb event_cb, void *event_ctx,
		    struct uraid_bdev_desc **desc);
void uraid_bdev_close(struct uraid_bdev_desc *desc);
struct uraid_bdev *uraid_bdev_desc_get_bdev(struct uraid_bdev_desc *desc);

/* Exclusive write claim: afterwards, nobody else can open the bdev for writing, and claiming
 * fails (-EPERM) if another descriptor already has it open for writing or claimed. The claim is
 * released when desc is closed. owner names the claimer in error messages. */
int uraid_bdev_claim(struct uraid_bdev_desc *desc, const char *owner);

/* --- channels and I/O (data path, on a reactor) --- */
struct uraid_io_channel *uraid_bdev_get_io_channel(struct uraid_bdev_desc *desc);

int uraid_bdev_readv(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
		     const struct iovec *iov, int iovcnt, uint64_t offset_blocks,
		     uint64_t num_blocks, uraid_bdev_io_cb cb, void *cb_arg);
int uraid_bdev_writev(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
		      const struct iovec *iov, int iovcnt, uint64_t offset_blocks,
		      uint64_t num_blocks, uint32_t flags, uraid_bdev_io_cb cb, void *cb_arg);
int uraid_bdev_read(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, void *buf,
		    uint64_t offset_blocks, uint64_t num_blocks, uraid_bdev_io_cb cb, void *cb_arg);
int uraid_bdev_write(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, void *buf,
		     uint64_t offset_blocks, uint64_t num_blocks, uint32_t flags,
		     uraid_bdev_io_cb cb, void *cb_arg);
int uraid_bdev_flush(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, uraid_bdev_io_cb cb,
		     void *cb_arg);
int uraid_bdev_unmap(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
		     uint64_t offset_blocks, uint64_t num_blocks, uraid_bdev_io_cb cb,
		     void *cb_arg);
int uraid_bdev_write_zeroes(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
			    uint64_t offset_blocks, uint64_t num_blocks, uraid_bdev_io_cb cb,
			    void *cb_arg);
/* Completes after every I/O this channel had in flight has completed. */
int uraid_bdev_reset(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch, uraid_bdev_io_cb cb,
		     void *cb_arg);

/* --- zoned bdevs --- */
/* Write num_blocks at the write pointer of the zone starting at zone_id; when cb runs with
 * status 0, *lba holds the first block written. */
int uraid_bdev_zone_appendv(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
			    const struct iovec *iov, int iovcnt, uint64_t zone_id,
			    uint64_t num_blocks, uint32_t flags, uint64_t *lba, uraid_bdev_io_cb cb,
			    void *cb_arg);
int uraid_bdev_zone_management(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
			       uint64_t zone_id, enum uraid_zone_action action, uraid_bdev_io_cb cb,
			       void *cb_arg);
/* Fill info[0..num_zones) for the zones from zone_id on. */
int uraid_bdev_get_zone_info(struct uraid_bdev_desc *desc, struct uraid_io_channel *ch,
			     uint64_t zone_id, uint32_t num_zones, struct uraid_zone_info *info,
			     uraid_bdev_io_cb cb, void *cb_arg);
bool uraid_bdev_is_zoned(const struct uraid_bdev *bdev);
uint64_t uraid_bdev_get_zone_size(const struct uraid_bdev *bdev);
uint64_t uraid_bdev_get_zone_capacity(const struct uraid_bdev *bdev);
uint32_t uraid_bdev_get_max_open_zones(const struct uraid_bdev *bdev);
uint32_t uraid_bdev_get_max_active_zones(const struct uraid_bdev *bdev);
uint32_t uraid_bdev_get_optimal_open_zones(const struct uraid_bdev *bdev);
uint64_t uraid_bdev_get_conventional_zones(const struct uraid_bdev *bdev);

/* Control paths (not on a reactor): run one READ, WRITE (with FUA), FLUSH, UNMAP or
 * WRITE_ZEROES on reactor 0 and wait for it. Returns the submit error or the completion status.
 * Zoned bdevs: ZONE_MANAGEMENT of the zone at offset_blocks with action num_blocks (an enum
 * uraid_zone_action), GET_ZONE_INFO of num_blocks zones from offset_blocks into buf (struct
 * uraid_zone_info[]). */
int uraid_bdev_io_sync(struct uraid_bdev_desc *desc, enum uraid_io_type type, void *buf,
		       uint64_t offset_blocks, uint64_t num_blocks);

/* I/O counters of a bdev: completed operations, blocks, errors and the summed time from
 * submit to completion per type, in ticks (uraid_bdev_tick_rate() per second). */
struct uraid_bdev_io_stats {
	uint64_t ops[URAID_IO_NUM_TYPES];
	uint64_t blocks[URAID_IO_NUM_TYPES];
	uint64_t latency_ticks[URAID_IO_NUM_TYPES];
	uint64_t errors;
	uint64_t queue_depth; /* in flight now (uraid_bdev_collect_stats only) */
};
/* One channel's counters (on the channel's reactor). */
void uraid_bdev_get_channel_stats(struct uraid_io_channel *ch, struct uraid_bdev_io_stats *st);
/* Every channel's counters summed, walked on the reactors; cb(arg, st or NULL if the bdev is
 * gone) runs on reactor 0. Any thread. 0 or -ENOMEM. */
int uraid_bdev_collect_stats(const char *name,
			     void (*cb)(void *arg, const struct uraid_bdev_io_stats *st),
			     void *arg);
uint64_t uraid_bdev_tick_rate(void);

/* --- removal (control path) --- */

/* Hot-remove: tell every open descriptor (URAID_BDEV_EVENT_REMOVE), and once all are closed
 * and all channels are gone, destroy the bdev and call cb. New opens fail from now on. */
void uraid_bdev_unregister(struct uraid_bdev *bdev, uraid_bdev_unregister_cb cb, void *cb_arg);

#ifdef __cplusplus
}
#endif
#endif
