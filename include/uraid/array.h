/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Arrays: RAID bdevs built from member bdevs. An array is itself a uraid_bdev, so it is used
 * through bdev.h like any other, and can be a member of another array.
 *
 * Levels: raid0, raid1 (n-way mirror), raid10 (near copies), concat, raid5 (left-symmetric as
 * md's default, or left-asymmetric as SPDK's raid5f), raid6 (md's P+Q), ec (k data + m parity,
 * Cauchy), draid (k + m stripes declustered over more members, with distributed spare
 * space). Writes of any size and alignment; degraded reads and writes up to the level's
 * tolerance. Control functions run on the control thread (not on a reactor) unless noted.
 */
#ifndef URAID_ARRAY_H
#define URAID_ARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uraid/bdev.h"

#ifdef __cplusplus
extern "C" {
#endif

enum uraid_raid_level {
	URAID_RAID0,
	URAID_RAID1,
	URAID_RAID10,
	URAID_CONCAT,
	URAID_RAID5,
	URAID_RAID6,
	URAID_EC,
	/* declustered: stripes of k data + m parity strips and s spare strips per row spread
	 * over n >= k + m + s members by a seeded table (see DESIGN.md) */
	URAID_DRAID,
};

enum uraid_raid5_layout {
	URAID_R5_LEFT_SYMMETRIC,  /* md's default: data starts after parity and wraps */
	URAID_R5_LEFT_ASYMMETRIC, /* SPDK raid5f: data always fills from member 0 */
};

/*
 * What protects the array against a crash in the middle of a stripe update (the write hole);
 * see DESIGN.md section 5. Stored in the superblock, so it needs one (except none).
 */
enum uraid_consistency_policy {
	URAID_POLICY_DEFAULT, /* bitmap for mirrors, ppl for parity levels, none otherwise */
	URAID_POLICY_NONE,    /* nothing: after a crash parity may not match the data */
	URAID_POLICY_BITMAP,  /* write-intent bitmap: only regions written lately are resynced */
	URAID_POLICY_PPL,     /* partial parity log: logged stripes get their parity rewritten */
	URAID_POLICY_JOURNAL, /* data and parity logged before they go home */
	/* log-structured: every write goes to fresh space as whole stripes, then is mapped by
	 * the RAID stripe tree; nothing durable is overwritten */
	URAID_POLICY_LOG,
};

struct uraid_array_opts {
	const char *name;
	enum uraid_raid_level level;
	enum uraid_raid5_layout raid5_layout; /* raid5 only */
	uint32_t strip_size_kb;		      /* power of two, >= one block; 0 = 64 */
	const char *const *members;	      /* member bdev names, in slot order */
	unsigned num_members;
	unsigned copies;	/* raid10: near copies (default 2) */
	unsigned data_chunks;	/* ec, draid: k */
	unsigned parity_chunks; /* ec, draid: m (1..4) */
	unsigned spares;	/* draid: spare strips per row (distributed spare members) */
	const uint8_t *uuid;	/* NULL: generated */
	bool superblock;	/* write superblocks; data then starts 1 MiB into each member */
	bool force;		/* create even over members that carry a uraid superblock */
	enum uraid_consistency_policy policy;
	uint32_t bitmap_region_kb; /* bitmap: array data per bit, power of two; 0 = 64 MiB */
	/* journal: acknowledge a write once its data is logged and write it home afterwards
	 * (write-back); else once it is home (write-through) */
	bool journal_write_back;
	/* journal: keep the log on this bdev (e.g. a raid1 array of two small members) instead
	 * of a region of every member; it is claimed like a member and split into one area per
	 * member. NULL: on the members. */
	const char *journal_bdev;
	/* log: share of the space kept free for the cleaner, percent (0 = 10; 1..50) */
	unsigned overprovision_pct;
	/* log: the cleaner picks its victim by cost-benefit ((1 - u) age / (1 + u)) instead of
	 * the fewest live blocks */
	bool log_cost_benefit;
};

/* Create and register the array. 0, or -errno with a one-line reason in err. */
int uraid_array_create(const struct uraid_array_opts *opts, struct uraid_bdev **array, char *err,
		       size_t err_len);

/*
 * Examine every bdev nobody claims for uraid superblocks, group them by array, and start each
 * array: the highest valid generation wins, members with an older one are stale and left out
 * (to be rebuilt, never read), failed members stay failed; except, under a bitmap, a failed or
 * missing member that missed nothing before it left: it comes back and catches up (only the
 * regions written since are rebuilt onto it). An array missing more members than
 * it tolerates does not start, nor does one that was not shut down cleanly and is degraded,
 * unless force is set. One line per array found goes to report (NUL-separated lines are
 * joined with '\n'). Returns the number of arrays started, or -errno. Control thread.
 */
int uraid_array_examine(bool force, char *report, size_t report_len);
/* The same, but start only arrays whose members (and journal device) are all here; the others
 * wait quietly for more of their members (the SPDK module examines one bdev at a time as
 * they appear; bdev_uraid_examine starts what can start). Control thread. */
int uraid_array_examine_whole(char *report, size_t report_len);

/* What the uraid superblock at the start of a file or block device says (read directly, no
 * bdev needed): which array, which slot (or its journal device), the block size. */
struct uraid_member_probe {
	char array[URAID_BDEV_NAME_MAX];
	uint8_t array_uuid[16];
	unsigned slot;
	bool journal;
	uint32_t block_size;
	uint64_t generation;
	bool backup; /* the primary copy is damaged; the backup was read */
};
/* The superblock area: the first URAID_SB_AREA_BYTES of a member (primary and backup). */
#define URAID_SB_AREA_BYTES 8192u
/* Decode the superblock area read from the start of a device: 0, or -ENOENT if it carries no
 * uraid superblock (why in err). Any thread. */
int uraid_probe_superblock(const void *area, size_t len, struct uraid_member_probe *p, char *err,
			   size_t err_len);

/* Delete an array; with clear_superblocks its members' superblocks are erased first, so they
 * can be reused freely. cb runs when the array is gone. */
void uraid_array_delete(struct uraid_bdev *array, bool clear_superblocks,
			uraid_bdev_unregister_cb cb, void *cb_arg);

/* Parse a level name: raid0/0, raid1/1, raid10/10, concat, raid5/5, raid5f/5f (raid5
 * left-asymmetric), raid6/6, ec, draid. */
int uraid_raid_level_parse(const char *name, enum uraid_raid_level *level,
			   enum uraid_raid5_layout *layout);
const char *uraid_raid_level_name(enum uraid_raid_level level);
/* none, bitmap, ppl, journal (and default, parsed only). */
int uraid_policy_parse(const char *name, enum uraid_consistency_policy *policy);
const char *uraid_policy_name(enum uraid_consistency_policy policy);

/* true if bdev is an array. */
bool uraid_bdev_is_array(const struct uraid_bdev *bdev);

enum uraid_member_state {
	URAID_MEMBER_ACTIVE,
	URAID_MEMBER_FAILED,
	URAID_MEMBER_REBUILDING, /* a replacement being filled in */
};

struct uraid_array_info {
	enum uraid_raid_level level;
	enum uraid_raid5_layout raid5_layout;
	uint32_t strip_size_kb;
	unsigned num_members, data_chunks, parity_chunks, copies;
	unsigned distributed_spares; /* draid: spare strips per row */
	uint64_t draid_seed;	     /* ... and its placement table's seed and bases */
	unsigned draid_bases;
	/* ... and what each distributed spare holds: "free", "filling" (a failed slot's strips
	 * being rebuilt into it, up to done_stripes), "full", "draining" (copied back onto the
	 * slot's new member, up to done_stripes); the slot (-1 when free) */
	struct {
		char state[12];
		int slot;
		uint64_t done_stripes;
	} draid_spare[8];
	unsigned failed_members;
	bool online; /* false once more members failed than the level tolerates */
	bool superblock;
	uint64_t data_offset_blocks;
	enum uraid_consistency_policy policy;
	bool journal_write_back;
	char journal_bdev[URAID_BDEV_NAME_MAX]; /* the journal device's name; "" if none */
	struct {
		uint64_t region_kb;    /* array data per bit */
		uint64_t regions;      /* bits */
		uint64_t dirty;	       /* regions set on disk now */
		uint64_t resync_left;  /* regions still to resync after a crash */
		uint64_t sets, clears; /* bitmap writes that set / cleared bits */
	} bitmap;
	unsigned spares;
	int replacing; /* the slot being replaced (until its old member is released), or -1 */
	struct {
		bool active;
		uint64_t done_stripes, total_stripes;
	} scrub;
	/* Policy log: the stripe tree and its space (blocks of the array's block size). */
	struct {
		uint64_t physical_blocks; /* data space on the members (without redundancy) */
		uint64_t mapped_blocks;	  /* array blocks that hold data */
		uint64_t free_blocks;	  /* in stripes that hold nothing live */
		uint64_t rows, free_rows; /* stripes (strips for mirrors) */
		uint64_t user_blocks;	  /* blocks written by users, this run */
		uint64_t moved_blocks;	  /* ... and by the cleaner */
		uint64_t rows_cleaned, commits, checkpoints;
		/* stripes whose reuse waited for reads on other reactors (a grace period) */
		uint64_t rows_deferred;
		/* stripes filled and written by reactors other than 0 (their write lanes) */
		uint64_t lane_rows;
		uint64_t record_seq; /* the next record's sequence number */
		uint64_t map_bytes;  /* memory the tree takes */
		bool cost_benefit;   /* the cleaner picks by cost-benefit, else greedily */
		/* Over zoned members: zone groups (a zone on every member), their usable
		 * stripes, how many are open for new stripes, and the resets so far. */
		uint64_t zone_groups, zone_group_stripes, zone_resets;
		uint32_t open_zone_groups;
	} log;
	struct {
		bool active;
		uint32_t target_mask; /* slots being rebuilt (or copied) */
		bool replace;	      /* a replacement copy, not a rebuild */
		bool catch_up;	      /* members come back: only the bitmap's dirty regions */
		uint64_t done_blocks, total_blocks; /* per target member */
		uint64_t rate_kib_s;
		uint64_t eta_s;
	} rebuild;
	struct {
		char name[URAID_BDEV_NAME_MAX];
		enum uraid_member_state state;
		bool failed_by_request; /* FAILED by uraid_array_fail_member, not by an error */
		char replacement[URAID_BDEV_NAME_MAX]; /* being copied to; "" if none */
	} members[32];
};

struct uraid_array_stats {
	uint64_t full_stripe_writes;   /* parity computed from new data alone */
	uint64_t rmw_writes;	       /* read-modify-write */
	uint64_t rcw_writes;	       /* reconstruct-write */
	uint64_t degraded_writes;      /* a member of the stripe was missing */
	uint64_t merged_writes;	       /* queued writes merged into one full-stripe write */
	uint64_t degraded_reads;       /* reads that reconstructed data */
	uint64_t member_errors;	       /* member I/O errors seen */
	uint64_t read_errors_repaired; /* blocks rewritten from reconstruction after a read error */
	/* Policy ppl: the partial parity log. */
	uint64_t ppl_entries;	    /* entries written (one per parity an update writes) */
	uint64_t ppl_blocks;	    /* ... their blocks, headers included */
	uint64_t ppl_flushes;	    /* member flush rounds that retired entries */
	uint64_t ppl_waits;	    /* writes that waited for a stripe's entries or log space */
	uint64_t ppl_recovered;	    /* entries applied by the recovery at this start */
	uint64_t ppl_unmended_rows; /* rows it could not mend (a member lost with the power) */
	/* Rebuild, in units (stripes of parity levels, strips of mirrors): rebuilt or copied,
	 * and passed over by a returning member's catch-up (clean in the bitmap) */
	uint64_t rebuild_units;
	uint64_t rebuild_units_skipped;
	/* Zoned members (log arrays): member writes sent as zone appends */
	uint64_t zone_appends;
	/* Mirrors: writes run by a reactor that does not own their strip, under a claim */
	uint64_t claimed_writes;
};

int uraid_array_get_info(struct uraid_bdev *array, struct uraid_array_info *info);
/* Summed over reactors; any thread. */
int uraid_array_get_stats(struct uraid_bdev *array, struct uraid_array_stats *stats);

/*
 * Spares and rebuild. A spare is a bdev held (claimed) by the array; when a member fails and a
 * spare is there, the spare takes the failed slot and is rebuilt from the others, online, by
 * the stripe owners, with the rate capped by uraid_raid_set_options and the progress saved
 * in the superblock, so a restart resumes where it was. add_spare checks size and block size.
 * A bdev that is the failed slot's own member come back (by its superblock; a failed member
 * the array still holds is let go and taken back) takes that slot first and, under a bitmap,
 * catches up: only the regions written while it was away are rebuilt.
 */
int uraid_array_add_spare(struct uraid_bdev *array, const char *bdev_name, char *err,
			  size_t err_len);
/*
 * The shared spare pool: spares any array may take when a member fails and the array has
 * none of its own (the first that fits: same block size, large enough). Control thread.
 * uraid_spare_remove releases a spare from the pool or from the array holding it (-ENODEV:
 * no spare by that name); uraid_spare_pool_clear releases every pool spare.
 */
int uraid_spare_pool_add(const char *bdev_name, char *err, size_t err_len);
int uraid_spare_remove(const char *bdev_name);
unsigned uraid_spare_pool_count(void);
void uraid_spare_pool_clear(void);
/* The names of array's spares (NULL: the pool's), first to be taken first; up to max of them
 * into names, returns how many there are. Control thread or reactor 0 (not other reactors). */
unsigned uraid_spare_names(struct uraid_bdev *array, char (*names)[URAID_BDEV_NAME_MAX],
			   unsigned max);

/*
 * Planned replacement (md's want_replacement): new_name (NULL: the array's first spare) is
 * filled with a copy of old_name while old_name keeps serving and both receive every write;
 * then the new member takes the slot (recorded in the superblocks first) and old_name is
 * released. Redundancy never drops. If old_name fails meanwhile, the new member takes its
 * slot and is rebuilt; if the new one fails, the replacement is abandoned. A replacement cut
 * short by a restart is not resumed: the old member is still in place. Control thread.
 */
int uraid_array_replace_member(struct uraid_bdev *array, const char *old_name, const char *new_name,
			       char *err, size_t err_len);
/* Take a member out of the array (as if failed) and release its bdev. Control thread. */
int uraid_array_remove_member(struct uraid_bdev *array, const char *bdev_name, char *err,
			      size_t err_len);
/* SPDK's bdev_raid_set_options: window in flight (KiB, >= 1; default below) and bandwidth
 * cap (MB/s, 0 = none, the default) for every rebuild. */
#define URAID_RAID_DEFAULT_WINDOW_KB 1024
int uraid_raid_set_options(uint64_t process_window_size_kb, uint64_t process_max_bandwidth_mb_sec);
void uraid_raid_get_options(uint64_t *process_window_size_kb,
			    uint64_t *process_max_bandwidth_mb_sec);

/* Mark a member failed, as an I/O error from it would (any thread). -EINVAL if already failed
 * or out of range. The array goes offline if that exceeds its tolerance. */
int uraid_array_fail_member(struct uraid_bdev *array, unsigned member);

#define URAID_CHECK_MAX_REPORTED 16

struct uraid_array_check_result {
	uint64_t stripes_checked;
	uint64_t bad_stripes; /* parity (or a mirror copy) disagreeing with the data */
	uint64_t bad[URAID_CHECK_MAX_REPORTED]; /* the first bad stripes */
	uint64_t unreadable; /* stripes that could not be read (too many members missing) */
	uint64_t repaired;   /* scrub with repair: bad stripes rewritten */
	uint64_t located;    /* ... of which the one bad column was found (m >= 2) */
};

typedef void (*uraid_array_check_cb)(void *cb_arg, int status,
				     const struct uraid_array_check_result *result);

/* Read every stripe and report the stripes whose parity or copies disagree. Runs on the
 * calling reactor (call on a reactor), one stripe at a time through the stripe owners, so it
 * may run under load. cb is called once, on the calling reactor. */
int uraid_array_check(struct uraid_bdev *array, uraid_array_check_cb cb, void *cb_arg);
/* The same, and with repair the stripes found bad are fixed: with two or more parities a
 * single bad column is located and rewritten (md's raid6check), otherwise parity is
 * recomputed from the data; mirrors take the first copy. Capped by the rebuild bandwidth. */
int uraid_array_scrub(struct uraid_bdev *array, bool repair, uraid_array_check_cb cb, void *cb_arg);

#ifdef __cplusplus
}
#endif
#endif
