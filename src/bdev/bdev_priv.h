/* SPDX-License-Identifier: BSD-3-Clause */
/* Private interface of the bdev layer and its backends, sectioned by file. */
#ifndef URAID_BDEV_PRIV_H
#define URAID_BDEV_PRIV_H

#include "uraid/bdev_module.h"
#include "common/common.h"

/* --- ram.c --- */
int ram_bdev_create(const char *name, uint64_t num_blocks, uint32_t block_size, const uint8_t *uuid,
		    struct uraid_bdev **out);
/* The memory behind a ram bdev (NULL if bdev is not one): for tests that change a device
 * behind its users' backs. */
uint8_t *ram_bdev_memory(struct uraid_bdev *bdev);

/* --- null.c --- */
int null_bdev_create(const char *name, uint64_t num_blocks, uint32_t block_size,
		     const uint8_t *uuid, struct uraid_bdev **out);

/* --- file.c --- */
struct file_bdev_opts {
	const char *name;
	const char *filename;
	uint32_t block_size;   /* 0 = detect (device sector size, or 4096 for files) */
	uint64_t create_bytes; /* create a sparse file of this size if it does not exist */
	bool readonly;
	const uint8_t *uuid;
};
int file_bdev_create(const struct file_bdev_opts *opts, struct uraid_bdev **out, char *err,
		     size_t err_len);

/* --- zoned.c: a zoned bdev emulated over any bdev (SPDK's bdev_zone_block_create) --- */
struct zoned_bdev_opts {
	const char *name;
	const char *base_bdev;
	uint64_t zone_capacity;	     /* blocks; > 0 */
	uint64_t zone_size;	     /* blocks, a power of two; 0: the next one >= capacity */
	uint32_t optimal_open_zones; /* advice to writers */
	uint32_t max_open_zones;     /* 0: no limit */
	uint32_t max_active_zones;   /* 0: no limit */
	uint64_t conventional_zones; /* zones at the start without a write pointer */
	const uint8_t *uuid;
};
int zoned_bdev_create(const struct zoned_bdev_opts *opts, struct uraid_bdev **out, char *err,
		      size_t err_len);

/* --- drive.c: a drive's bandwidth, IOPS and latency over any bdev (bdev_drive_create) --- */
struct drive_bdev_opts {
	const char *name;
	const char *base_bdev;
	uint32_t read_mb_s, write_mb_s;		    /* 10^6 bytes a second; 0: no limit */
	uint32_t read_iops, write_iops;		    /* 0: no limit */
	uint32_t read_latency_us, write_latency_us; /* added to every answer */
	const uint8_t *uuid;
};
int drive_bdev_create(const struct drive_bdev_opts *opts, struct uraid_bdev **out, char *err,
		      size_t err_len);
/* Its limits (NULL if bdev is not a drive model). */
const struct drive_bdev_opts *drive_bdev_get_opts(struct uraid_bdev *bdev);

/* --- remote.c: an NBD export as a member (bdev_nbd_attach) --- */
struct remote_bdev_opts {
	const char *name;
	const char *uri;	     /* as libnbd takes it: nbd://, nbds://, nbd+unix:// */
	unsigned connections;	     /* 0 = 1; more only if the server allows multi-conn */
	uint32_t block_size;	     /* 0: 4096 unless the export needs 512 */
	uint32_t timeout_ms;	     /* a request unanswered this long fails (-ETIMEDOUT) */
	uint32_t reconnect_delay_ms; /* between attempts to connect again */
	const uint8_t *uuid;
};
int remote_bdev_create(const struct remote_bdev_opts *opts, struct uraid_bdev **out, char *err,
		       size_t err_len);
/* Its URI, or NULL if bdev is not a remote member. */
const char *remote_bdev_uri(const struct uraid_bdev *bdev);
/* Its connections, or those of them up now. */
unsigned remote_bdev_connections(const struct uraid_bdev *bdev, bool up);
/* fn(name) runs (on a reactor) when every connection of a remote bdev is up again after one
 * was lost: the daemon takes the member back into its array (uraid_member_back). */
void remote_bdev_set_back_hook(void (*fn)(const char *name));

/* --- fault.c --- */
enum fault_kind { FAULT_FAILURE, FAULT_CORRUPT, FAULT_LATENCY, FAULT_NOMEM };

struct fault_rule_opts {
	uint32_t io_type_mask; /* bit per enum uraid_io_type */
	enum fault_kind kind;
	uint64_t offset_blocks; /* range the rule applies to; num_blocks == 0: whole bdev */
	uint64_t num_blocks;
	int64_t count;		  /* how many I/Os it hits; -1: unlimited */
	uint32_t probability_ppm; /* 1000000 = always */
	uint32_t latency_us;	  /* FAULT_LATENCY */
	uint32_t corrupt_offset;  /* FAULT_CORRUPT: byte offset within the I/O's data */
	uint8_t corrupt_value;	  /* FAULT_CORRUPT: XORed into that byte (0 is taken as 0xff) */
};

struct fault_bdev_opts {
	const char *name;
	const char *base_name;
	bool volatile_cache; /* model a write cache lost at power cuts */
	uint64_t seed;
	uint64_t cache_max_bytes; /* volatile cache writes back on its own past this; 0 = 64 MiB */
	const uint8_t *uuid;
};

int fault_bdev_create(const struct fault_bdev_opts *opts, struct uraid_bdev **out);
int fault_inject(const char *name, const struct fault_rule_opts *rule);
int fault_clear(const char *name);

struct fault_cut_stats {
	uint64_t records; /* unflushed writes at the cut */
	uint64_t applied; /* landed whole */
	uint64_t dropped; /* lost whole */
	uint64_t torn;	  /* landed in part */
};

/* Cut power: every unflushed write is applied, dropped or torn (by the bdev's PRNG, reseeded
 * with seed unless it is 0), then every I/O fails with -EIO until fault_power_on(). Async:
 * cb runs on the calling reactor (or, off a reactor, on reactor 0's next poll). */
int fault_power_cut(const char *name, uint64_t seed,
		    void (*cb)(void *cb_arg, int status, const struct fault_cut_stats *st),
		    void *cb_arg);
int fault_power_on(const char *name);

#endif
