/* SPDX-License-Identifier: BSD-3-Clause */
/* Private interface of the core layer (arrays), sectioned by file. */
#ifndef URAID_CORE_H
#define URAID_CORE_H

#include <endian.h>
#include <pthread.h>
#include <stdio.h>

#include "common/common.h"
#include "uraid/array.h"

#define RAID_MAX_MEMBERS 32
#define RAID_MAX_PARITY	 4

/* --- layout.c: where every block lives (pure functions, no I/O) --- */

struct layout {
	enum uraid_raid_level level;
	enum uraid_raid5_layout r5_layout;
	unsigned n;		/* members */
	unsigned k;		/* data strips per stripe (raid0: n; raid1: 1; raid10: see below) */
	unsigned m;		/* parity strips per stripe (raid5: 1, raid6: 2, ec: m) */
	unsigned copies;	/* raid1: n; raid10: near copies */
	uint64_t strip_blocks;	/* power of two */
	uint64_t member_blocks; /* usable data blocks per member (a multiple of strip_blocks) */
	uint64_t concat_start[RAID_MAX_MEMBERS + 1]; /* concat: first array block of member i */
	const struct draid_map *dm;		     /* draid: the placement table */
};

/* One piece of a mapped range: blocks [offset_blocks, +num_blocks) of member `member`
 * hold array blocks starting at the range's current position. */
struct layout_chunk {
	unsigned member;
	uint64_t member_offset_blocks;
	uint64_t num_blocks;
};

/* Declustered placement (draid.c): stripes of w = k + m strips and s spare strips per row
 * spread over n members by a seeded table of `bases` base permutations. */
#define DRAID_MAX_BASES 64
struct draid_map {
	unsigned n, k, m, s;
	unsigned w;	 /* k + m */
	unsigned d;	 /* n - s: column positions in a row */
	unsigned rows;	 /* rows per period */
	unsigned groups; /* stripes per period */
	unsigned bases;
	uint64_t seed;
	uint8_t pi[DRAID_MAX_BASES][RAID_MAX_MEMBERS];	    /* members, by position */
	uint8_t psi[DRAID_MAX_BASES][RAID_MAX_MEMBERS];	    /* positions, by slot */
	uint8_t pi_inv[DRAID_MAX_BASES][RAID_MAX_MEMBERS];  /* positions, by member */
	uint8_t psi_inv[DRAID_MAX_BASES][RAID_MAX_MEMBERS]; /* slots, by position */
};
int draid_map_init(struct draid_map *dm, unsigned n, unsigned k, unsigned m, unsigned s,
		   unsigned bases, uint64_t seed, char *err, size_t err_len);
/* Periods in the table (after which placement repeats): bases * n. */
uint64_t draid_table_periods(const struct draid_map *dm);
/* Column col (data 0..k-1, then parity) of stripe: its member and row (member strip). */
void draid_locate(const struct draid_map *dm, uint64_t stripe, unsigned col, unsigned *member,
		  uint64_t *row);
/* The member holding spare strip j (0..s-1) of row. */
unsigned draid_spare_member(const struct draid_map *dm, uint64_t row, unsigned j);
/* Inverse: what member strip `row` of member holds: column *col of *stripe (true), or spare
 * strip *col of its row (false). */
bool draid_at(const struct draid_map *dm, unsigned member, uint64_t row, uint64_t *stripe,
	      unsigned *col);
/* Distributed spares an array may have (each holds one failed slot's strips). */
#define DRAID_MAX_SPARES 8
/* What a distributed spare holds: nothing; a failed slot's strips being rebuilt into it (up
 * to stripe `done`); all of them; or all of them while they are copied back onto the slot's
 * new member (up to `done`). */
enum draid_spare_state { DS_FREE, DS_FILLING, DS_FULL, DS_DRAINING, DS_NUM_STATES };
/* The table's size for a new array: bases enough that a period of the table spreads a
 * member's partners over all others (at most DRAID_MAX_BASES). */
#define DRAID_DEFAULT_BASES 32

/* Blocks the array exposes. */
uint64_t layout_array_blocks(const struct layout *l);
/* Blocks of data one stripe (parity levels) or one ownership unit (others) holds. */
uint64_t layout_stripe_data_blocks(const struct layout *l);

/* raid0/concat: the member chunk holding array block lba, up to the end of its strip (or of
 * num_blocks). raid1/raid10: copy `copy` of it. */
void layout_map(const struct layout *l, uint64_t lba, uint64_t num_blocks, unsigned copy,
		struct layout_chunk *out);

/* Parity levels: the member holding data strip `data_idx` (0..k-1), or parity `j` (0..m-1:
 * P, Q, ...) of stripe. */
unsigned layout_data_member(const struct layout *l, uint64_t stripe, unsigned data_idx);
unsigned layout_parity_member(const struct layout *l, uint64_t stripe, unsigned j);
/* Inverse, raid5/raid6/ec: which column (0..k-1 data, k..k+m-1 parity) member holds in
 * stripe (a draid stripe spans k + m of its members: see raid_col_locate). */
unsigned layout_member_column(const struct layout *l, uint64_t stripe, unsigned member);
/* Parity levels: the member strip holding column col (as above) of stripe. Every column of
 * a raid5/raid6/ec stripe is at member strip `stripe`; a draid stripe's are at its rows. */
uint64_t layout_column_strip(const struct layout *l, uint64_t stripe, unsigned col);
/* Member strips [0, strips) of every member are covered once stripes [0, stripes) are, and
 * the reverse (both rounded down): the same number except for draid, whose stripes fill
 * whole periods of rows. */
uint64_t layout_stripes_to_strips(const struct layout *l, uint64_t stripes);
uint64_t layout_strips_to_stripes(const struct layout *l, uint64_t strips);

/* --- parity.c: erasure coding over GF(2^8) behind one interface --- */

/*
 * A code of k data and m parity columns, described by its (k+m) x k generator matrix whose
 * top k rows are the identity. raid5: one row of ones (XOR). raid6: P = ones, Q = g^i (md's
 * coefficients, g = 2 in GF(2^8) with polynomial 0x11d). ec: a Cauchy matrix.
 */
enum code_kind { CODE_XOR, CODE_PQ, CODE_CAUCHY };

struct code {
	enum code_kind kind;
	unsigned k, m;
	uint8_t matrix[(RAID_MAX_MEMBERS + RAID_MAX_PARITY) * RAID_MAX_MEMBERS];
	uint8_t enc_tables[RAID_MAX_PARITY * RAID_MAX_MEMBERS * 32]; /* ISA-L expanded tables */
};

/* Decoding tables for one pattern of lost columns, kept per channel. */
struct code_decoder {
	uint64_t lost_mask; /* 0: empty */
	unsigned src[RAID_MAX_MEMBERS];
	uint8_t tables[RAID_MAX_PARITY * RAID_MAX_MEMBERS * 32];
	uint8_t rows[RAID_MAX_PARITY * RAID_MAX_MEMBERS];
};

int code_init(struct code *c, enum code_kind kind, unsigned k, unsigned m);
/* parity[j] = row k+j of the matrix times data, len bytes each. */
void code_encode(const struct code *c, size_t len, uint8_t *const *data, uint8_t *const *parity);
/* parity[j] ^= coef(k+j, col) * delta, for one data column's change (read-modify-write). */
void code_update(const struct code *c, size_t len, unsigned col, const uint8_t *delta,
		 uint8_t *const *parity);
/* The same from column col's old and new contents: old is overwritten (XOR parity is updated
 * from both in one pass; other codes make old the delta first). */
void code_update_from(const struct code *c, size_t len, unsigned col, uint8_t *old,
		      const uint8_t *new_data, uint8_t *const *parity);
/* dst ^= src, len bytes (ISA-L's xor_gen where both are 32-byte aligned). */
void code_xor_into(uint8_t *dst, const uint8_t *src, size_t len);
/* dst ^= G[k+j][col] * src (one parity's share of one data column). */
void code_mad(const struct code *c, size_t len, unsigned j, unsigned col, const uint8_t *src,
	      uint8_t *dst);
/* cols[0..k+m): columns; those in lost_mask (at most m) are rebuilt from the others. */
int code_decode(const struct code *c, struct code_decoder *d, size_t len, uint8_t *const *cols,
		uint64_t lost_mask);

/* Plain C references used as test oracles (byte at a time, log/antilog tables). */
uint8_t gf_mul_ref(uint8_t a, uint8_t b);
uint8_t gf_inv_ref(uint8_t a);
void code_encode_ref(const struct code *c, size_t len, uint8_t *const *data,
		     uint8_t *const *parity);
/* Invert an n x n matrix over GF(2^8); -EINVAL if singular. */
int gf_invert_ref(const uint8_t *in, uint8_t *out, unsigned n);

/* A decoder's refusal: the reason in err, -EBADMSG. */
static inline int
decode_bad(char *err, size_t err_len, const char *what)
{
	err_set(err, err_len, "%s", what);
	return -EBADMSG;
}

/* --- sb.c: the superblock (on-disk format v1, see docs/format.md) --- */

#define SB_MAGIC	     0x3142534449415255ull /* "URAIDSB1" little-endian */
#define SB_VERSION	     1
#define SB_BYTES	     4096
#define SB_PRIMARY_OFFSET    0	  /* bytes from the start of the member */
#define SB_BACKUP_OFFSET     4096 /* the second copy */
#define SB_DATA_OFFSET_BYTES (1u << 20)

enum sb_slot_state {
	SB_SLOT_ACTIVE,
	SB_SLOT_FAILED,
	SB_SLOT_MISSING,
	SB_SLOT_SPARE,
	SB_SLOT_REBUILDING,
	SB_SLOT_REPLACING,
	SB_SLOT_NUM_STATES
};

#define SB_FLAG_CLEAN	   (1u << 0)
#define SB_FLAG_WRITE_BACK (1u << 1) /* journal: write-back mode */
/* journal: the log area is on a journal device (journal_uuid), not on the members */
#define SB_FLAG_JOURNAL_DEV (1u << 2)
/* this copy is the journal device's (this_slot is 0 and means nothing) */
#define SB_FLAG_THIS_JOURNAL (1u << 3)
/* log: the cleaner picks by cost-benefit instead of greedily */
#define SB_FLAG_LOG_COST_BENEFIT (1u << 4)

/* A rebuilding slot's member is a returning one: only the bitmap's dirty regions are copied. */
#define SB_SLOT_FLAG_CATCH_UP (1u << 0)

/* consistency_policy on disk */
enum sb_policy {
	SB_POLICY_NONE,
	SB_POLICY_BITMAP,
	SB_POLICY_PPL,
	SB_POLICY_JOURNAL,
	SB_POLICY_LOG
};

/* Metadata regions between the superblocks and the data (member bytes). */
#define META_BITMAP_OFFSET (2 * SB_BYTES)
#define META_BITMAP_END	   (128u << 10)
#define META_PPL_OFFSET	   META_BITMAP_END

struct sb_slot {
	uint8_t uuid[16];
	uint32_t state; /* enum sb_slot_state */
	uint32_t flags; /* SB_SLOT_FLAG_* */
	uint64_t data_offset_blocks;
	uint64_t data_blocks;
	uint64_t rebuild_checkpoint_blocks;
	/* failed or missing: the generation of the first superblock that recorded it so (0:
	 * not known); a member whose own copy is at most one older missed nothing before */
	uint64_t left_generation;
};

struct sb {
	uint64_t generation;
	uint8_t array_uuid[16];
	char name[64]; /* NUL-terminated */
	uint32_t level;
	uint32_t raid5_layout;
	uint32_t strip_size_kb;
	uint32_t block_size;
	uint32_t k, m, copies;
	uint32_t num_slots;
	uint64_t array_blocks;
	uint32_t consistency_policy; /* enum sb_policy */
	uint32_t flags;
	uint32_t this_slot;
	/* bitmap: a header block then the bits, one per bitmap_region_units units */
	uint64_t bitmap_offset_blocks;
	uint32_t bitmap_blocks;
	uint64_t bitmap_region_units;
	/* ppl: the log area */
	uint64_t ppl_offset_blocks;
	uint32_t ppl_blocks;
	/* ppl/journal: records of this run carry it; raised at every start */
	uint64_t log_epoch;
	/* SB_FLAG_JOURNAL_DEV: the journal device; slot i's log area is on it, at
	 * ppl_offset_blocks + i * ppl_blocks */
	uint8_t journal_uuid[16];
	/* log: the metadata area (ppl_offset_blocks, ppl_blocks) starts with a ring of
	 * log_ring_blocks 4 KiB record blocks; the array exposes log_array_blocks of the
	 * array_blocks it places them in (the rest is over-provisioning) */
	uint32_t log_ring_blocks;
	uint64_t log_array_blocks;
	/* log over zoned members: their zone size and capacity (0: conventional members) */
	uint64_t log_zone_blocks, log_zone_capacity;
	/* draid: spare strips per row, and the placement table's bases and seed */
	uint32_t draid_spares, draid_bases;
	uint64_t draid_seed;
	/* ... and what each distributed spare holds: state, the slot, stripes done */
	struct sb_dspare {
		uint32_t state, slot;
		uint64_t done;
	} draid_ds[DRAID_MAX_SPARES];
	struct sb_slot slots[RAID_MAX_MEMBERS];
};

/* Units (stripes of parity levels, strips of other levels) an array of this shape has. */
uint64_t sb_units(const struct sb *sb);

/* Encode into exactly SB_BYTES bytes (CRC32C included). */
void sb_encode(const struct sb *sb, uint8_t *buf);
/* 0, or -EBADMSG (with a reason in err) for anything malformed: wrong magic, version or CRC,
 * out-of-range fields, or fields that contradict each other. */
int sb_decode(const uint8_t *buf, size_t len, struct sb *sb, char *err, size_t err_len);
/* Print a decoded superblock for people (uraid examine). */
void sb_print(const struct sb *sb, FILE *out);
const char *sb_slot_state_name(uint32_t state);
/* own, the superblock on a member that truth (the array's) has as failed or missing in slot
 * s, comes from that slot's member, and the member can catch up: with a bitmap it only needs
 * the regions written while it was away (no bit is cleared while a slot is not active),
 * provided it missed nothing before it left: its own copy is at most one generation older
 * than the round that recorded the departure, and it was whole then (active, or itself
 * catching up). */
bool sb_can_catch_up(const struct sb *truth, const struct sb *own, unsigned s);

/* --- raid.c: the array object, its channels, the healthy data path --- */

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/queue.h>

#include "uraid/bdev_module.h"

enum raid_stat {
	RS_FULL,
	RS_RMW,
	RS_RCW,
	RS_DEGRADED_W,
	RS_MERGED,
	RS_DEGRADED_R,
	RS_MEMBER_ERR,
	RS_READ_REPAIRED,
	RS_PPL_ENTRIES, /* log entries written */
	RS_PPL_BLOCKS,	/* ... and their blocks */
	RS_PPL_FLUSHES, /* member flush rounds that retired entries */
	RS_PPL_WAITS,	/* writes that waited for a stripe's entries or for log space */
	RS_REBUILT,	/* units rebuilt or copied (reactor 0) */
	RS_CAUGHT_UP,	/* units a catch-up passed over: clean in the bitmap */
	RS_APPENDS,	/* member writes sent as zone appends (zoned members) */
	RS_CLAIMED,	/* mirrored writes a reactor ran under a claim on another's strip */
	RS_NUM
};

struct raid_stats_slot {
	_Alignas(CACHE_LINE_BYTES) _Atomic uint64_t v[RS_NUM]; /* one writer: its reactor */
};

struct raid_member {
	char name[URAID_BDEV_NAME_MAX];
	struct uraid_bdev_desc *desc;
	_Atomic int state; /* enum uraid_member_state */
	/* REBUILDING: member strips [0, rebuilt) hold good data and may be read; the rest are
	 * only written (writes keep them current, the rebuild fills in the past). */
	_Atomic uint64_t rebuilt;
	/* ... and [0, durable) of those per the superblocks on disk (a crash resumes there). */
	_Atomic uint64_t durable;
	/* REBUILDING, the member that left the slot come back (bitmap arrays): it missed only
	 * writes into regions the bitmap holds dirty, so only those are rebuilt. Reactor 0's. */
	bool catch_up;
	/* FAILED because the operator asked (uraid fail), not from an I/O error. */
	bool failed_by_request;
	/* A planned replacement (md's want_replacement), reactor 0's: while repl_state is
	 * REPL_COPYING it receives every write to the slot and the member's strips are copied
	 * to it below repl_copied; it then takes the slot. If the member fails first, it takes
	 * the slot as REBUILDING from repl_copied on. */
	char repl_name[URAID_BDEV_NAME_MAX];
	_Atomic(struct uraid_bdev_desc *) repl_desc;
	_Atomic int repl_state; /* enum raid_repl_state */
	_Atomic uint64_t repl_copied;
};

enum raid_repl_state { REPL_NONE, REPL_COPYING, REPL_FAILED };

struct raid_array {
	struct uraid_bdev bdev;
	char ch_dev; /* its address is the io_device of the array's channels */
	struct layout l;
	struct draid_map *draid; /* draid: l.dm */
	/* draid: the distributed spares (written on reactor 0, read anywhere; see raid_col_locate)
	 * and how many are not DS_FREE */
	struct draid_spare {
		_Atomic int state; /* enum draid_spare_state */
		_Atomic unsigned slot;
		_Atomic uint64_t done;	  /* FILLING, DRAINING: stripes [0, done) are */
		_Atomic uint64_t durable; /* ... per the superblocks on disk */
	} ds[DRAID_MAX_SPARES];
	_Atomic unsigned ds_used;
	struct code code;
	bool parity;   /* raid5/6/ec */
	bool mirrored; /* raid1/raid10 */
	uint32_t strip_size_kb;
	struct raid_member members[RAID_MAX_MEMBERS];
	/* The members' name and repl_name: reactor 0 changes them (a spare or a replacement
	 * takes a slot) under this lock, and a thread other than reactor 0 reads them under it
	 * (uraid_array_get_info, a lookup by name, the log line of a member's failure). Off the
	 * data path. */
	pthread_mutex_t names_lock;
	_Atomic unsigned failed;
	_Atomic bool online;
	/* Stripe owners hold a channel on their reactor, taken there on first use. */
	struct uraid_io_channel *owner_ch[URAID_MAX_REACTORS];
	struct raid_stats_slot stats[URAID_MAX_REACTORS];

	/* Superblocks (has_sb): member data starts at data_offset_blocks. The writer state is
	 * reactor 0's alone. */
	bool has_sb;
	uint64_t data_offset_blocks;
	uint8_t slot_uuid[RAID_MAX_MEMBERS][16];
	struct sb sb; /* as last written */
	struct sb_writer *sbw;
	bool sb_clean;	/* the next superblock write marks the array clean (shutdown) */
	bool sb_wipe;	/* ... or erases the superblocks (delete with clear_superblocks) */
	bool sb_closed; /* released: no more superblock rounds (reactor 0) */

	/* Reactor 0's: the rebuild in progress and the spares waiting. */
	struct rebuild *rb;
	uint64_t rebuild_finishing; /* slots the next superblock records as active */
	bool rebuild_unrecorded;    /* one waits for the superblocks to record its targets */
	bool log_clearing;	    /* reactor 0's: a device coming in has its log area zeroed */
	struct spare *spares;
	_Atomic unsigned
		replacing; /* slot + 1 while a replacement is added, copied or swapped in */
	bool stopping;
	/* Progress, read from any thread. */
	_Atomic uint64_t rb_done_blocks, rb_total_blocks, rb_start_us, rb_targets;
	_Atomic bool rb_catch_up; /* ... and only their dirty regions (a member come back) */
	_Atomic unsigned nspares;
	_Atomic uint64_t scrub_done, scrub_total;
	/* Member failures recorded (sb_need) and made durable (sb_done): writes that complete
	 * while sb_done < sb_need are held until it catches up, so no write that skipped a
	 * failed member is acknowledged before the superblocks say it failed. Every member the
	 * superblocks trust counts: active ones, and rebuilding ones (trusted below their
	 * checkpoint; see raid_member_failed). */
	_Atomic uint64_t sb_need, sb_done;

	/* Consistency policy (enum sb_policy) and its metadata areas (member blocks). */
	uint32_t policy;
	bool journal_wb; /* journal in write-back mode (see stripe.c) */
	uint64_t bm_offset_blocks, bm_region_units;
	uint32_t bm_blocks;
	uint64_t log_epoch;
	/* The journal device (SB_FLAG_JOURNAL_DEV): every slot's log area is on it, slot i's at
	 * ppl_offset_blocks + i * ppl_blocks; an I/O error there takes the array offline. */
	struct uraid_bdev_desc *jdesc;
	char jname[URAID_BDEV_NAME_MAX];
	uint8_t journal_uuid[16];
	_Atomic bool jfailed;
	struct bitmap *bm;
	bool bm_stopped; /* reactor 0's, at destruct */
	uint64_t ppl_offset_blocks;
	uint32_t ppl_blocks;
	uint64_t ppl_recovered, ppl_skipped_rows; /* by the log recovery at this start */
	struct ppl_hole *ppl_holes;		  /* ... and where those rows are */
	size_t ppl_nholes;
	/* Policy log: the stripe tree and its writer (reactor 0's). */
	struct lsa *lsa;
	bool lsa_stopped;			   /* reactor 0's, at destruct */
	uint32_t sb_log_ring;			   /* the superblock's log_ring_blocks */
	uint64_t sb_zone_blocks, sb_zone_capacity; /* ... log_zone_blocks, log_zone_capacity */
	bool lsa_cost_benefit;
	unsigned lsa_repl_slot; /* reactor 0's: a replacement waiting for a whole checkpoint */
	/* Mirrored and parity arrays: the claim slots (stripe.c, "claims"), one table per owner,
	 * and whether that owner holds its slots for what its buckets run (set by the owner,
	 * once). */
	_Atomic uint32_t *claims;
	_Atomic bool claims_on[URAID_MAX_REACTORS];
};

struct stripe_head;
struct stripe_bucket;

/* A free list of same-size objects, used by one reactor only (no locks). */
struct obj_pool {
	void *free;
	size_t size;
	size_t align; /* 0: malloc alignment; else DMA-safe memory (uraid_dma_alloc) */
};

static inline void *
pool_get(struct obj_pool *p)
{
	void *o = p->free;

	if (o != NULL) {
		p->free = *(void **)o;
		return o;
	}
	return p->align ? uraid_dma_alloc(p->align, p->size) : malloc(p->size);
}

static inline void
pool_put(struct obj_pool *p, void *o)
{
	if (o == NULL)
		return;
	*(void **)o = p->free;
	p->free = o;
}

static inline void
pool_fini(struct obj_pool *p)
{
	void *o;

	while ((o = p->free) != NULL) {
		p->free = *(void **)o;
		if (p->align)
			uraid_dma_free(o);
		else
			free(o);
	}
}

struct raid_channel {
	struct raid_array *a;
	unsigned reactor;
	struct uraid_io_channel *mch[RAID_MAX_MEMBERS];	    /* NULL: member failed at creation */
	struct uraid_io_channel *repl_ch[RAID_MAX_MEMBERS]; /* replacements being copied to */
	/* The descriptors these channels belong to: member swaps change them channel by
	 * channel, so a channel's I/O always names its own device. */
	struct uraid_bdev_desc *mdesc[RAID_MAX_MEMBERS], *rdesc[RAID_MAX_MEMBERS];
	uint32_t outstanding[RAID_MAX_MEMBERS];
	struct uraid_io_channel *jch; /* the journal device's, if the array has one */
	/* Owner side: stripes with queued or active operations, and in each bucket the mirrored
	 * writes running without either (stripe.c). */
	struct stripe_bucket *buckets;
	uint64_t bucket_mask;
	/* ... and, once the owner holds claim slots (stripe.c, "claims"), each bucket's hold on
	 * its slot and the buckets waiting for theirs */
	bool claiming;
	uint8_t *claim_state;
	uint16_t *claim_wait;
	unsigned claim_waits;
	/* ... and, as a claimant, its claimed mirrored writes out, and the heads of the parity
	 * stripes it claimed, by slot */
	struct mirror_run **claim_runs;
	struct stripe_head **claim_heads;
	/* Scratch strips (64-byte aligned), member I/Os, stripe parts and operations. */
	struct obj_pool bufs;
	struct obj_pool mios;
	struct obj_pool parts;
	struct obj_pool ops;
	struct obj_pool heads;
	struct obj_pool lsa_reads; /* a log array's reads from this reactor (lsa.c) */
	size_t buf_bytes;
	uint8_t *zeroes; /* one strip of zeroes */
	struct code_decoder dec;
	STAILQ_HEAD(, member_io) retry;
	struct uraid_poller *poller;
	/* Write parts (and flushes a member failed) done but held for a superblock (see
	 * sb_need). */
	TAILQ_HEAD(, stripe_part) held;
	/* Operations waiting for their bitmap region to be set on disk. */
	TAILQ_HEAD(, stripe_op) bm_wait;
	/* ppl: the rings this reactor writes, and operations waiting for them. */
	struct ppl_chan *ppl;
	TAILQ_HEAD(, stripe_op) ppl_wait;
	/* ... and operations waiting for their stripe's earlier entries to retire */
	TAILQ_HEAD(, stripe_op) ppl_stripe_wait;
	bool ppl_woken; /* one of those moved to ppl_wait: the poller runs them */
	/* ... and writes that would skip a failed member's parity, until the superblocks say
	 * it failed (sb_done reaches sb_need). */
	TAILQ_HEAD(, stripe_op) ppl_sb_wait;
};

/* One member I/O. iov points at iov_inline or a larger allocation. */
struct member_io {
	struct raid_channel *rch;
	unsigned member;
	enum uraid_io_type type;
	uint32_t flags;
	uint64_t offset_blocks;
	uint64_t num_blocks;
	struct iovec *iov;
	int iovcnt;
	void (*done)(struct member_io *mio, int status);
	void *ctx;
	uint64_t tag;	     /* caller's: e.g. the array block it maps */
	bool to_repl;	     /* to the member's replacement instead of the member */
	bool meta;	     /* offset_blocks is from the start of the member (metadata areas) */
	bool log;	     /* in the member's log area: on the journal device if there is one */
	unsigned legs;	     /* a write also goes to the replacement: completions still due */
	uint64_t append_lba; /* a zone append's: where the member put it */
	int status;	     /* the member leg's */
	STAILQ_ENTRY(member_io) link;
	/* (mio_alloc sets each field above one by one: a new field needs its line there) */
	struct iovec iov_inline[4];
};

/* A mirrored write (or unmap, or zeroes) of one strip running without a stripe operation
 * (stripe.c: stripe_mirror_direct). */
struct mirror_run {
	struct raid_channel *rch; /* the owner's channel, or the claimant's */
	uint64_t strip;		  /* listed in its bucket until every copy has answered */
	_Atomic uint32_t *claim;  /* ... or, run by another reactor, held by this claim slot */
	uint64_t start, num;	  /* the blocks of the strip it writes */
	struct mirror_run *next;  /* the next in its bucket's list, or its claimant's */
	unsigned pending;
	int status;
	bool bm_held; /* counted in its bitmap region */
	/* Answers it (owner reactor). hold_until > 0: it succeeded, but a member failure is not
	 * in the superblocks yet; it may be acknowledged once sb_done reaches hold_until. */
	void (*done)(struct mirror_run *mr, int status, uint64_t hold_until);
};

/* The parent of a split user I/O (the array bdev_io's driver context). */
struct raid_io {
	struct uraid_bdev_io *io;
	struct raid_channel *rch;
	unsigned remaining; /* parts outstanding, +1 while submitting */
	int status;
	/* Internal I/O on the physical space of a log array (raid_phys_*): answered here
	 * instead of completing io; fresh stripes are planned without read-modify-write. */
	void (*done)(struct raid_io *rio, int status);
	void *ctx;
	bool fresh;
	struct mirror_run mr; /* a mirrored write of one strip, run here (no part) */
};

/* Log arrays: read [phys, +num) of the in-place layout (the physical space) into fio's
 * buffers at byte_off, on rch (this reactor's); then done(rio). */
void raid_phys_read(struct raid_io *rio, struct raid_channel *rch, struct uraid_bdev_io *fio,
		    uint64_t phys, uint64_t num, uint64_t byte_off,
		    void (*done)(struct raid_io *rio, int status), void *ctx);
/* ... write fio (WRITE over [offset_blocks, +num_blocks) of one fresh stripe) or FLUSH the
 * members. */
void raid_phys_io(struct raid_io *rio, struct raid_channel *rch, struct uraid_bdev_io *fio,
		  void (*done)(struct raid_io *rio, int status), void *ctx);

/* The I/O goes to the journal device (log area I/O of an array that has one). */
static inline bool
mio_on_journal(const struct member_io *mio)
{
	return mio->log && mio->rch->a->jdesc != NULL;
}

/* The journal device failed (an I/O error, or it went away): the array goes offline, as with
 * more members lost than it tolerates; its members are not failed. Any thread. */
void raid_journal_failed(struct raid_array *a, int status);

/* Every member failure counted so far is in the superblocks (sb_done caught up with
 * sb_need): a failed member can no longer come back as current after a crash. */
static inline bool
raid_failures_recorded(struct raid_array *a)
{
	uint64_t need = atomic_load_explicit(&a->sb_need, memory_order_acquire);

	return atomic_load_explicit(&a->sb_done, memory_order_acquire) >= need;
}

/* The policy writes log entries before stripe updates (ppl, journal). */
static inline bool
raid_logged(const struct raid_array *a)
{
	return a->policy == SB_POLICY_PPL || a->policy == SB_POLICY_JOURNAL;
}

static inline struct raid_array *
raid_from_bdev(struct uraid_bdev *bdev)
{
	return bdev->ctx;
}

static inline void
raid_stat_add(struct raid_array *a, unsigned reactor, enum raid_stat s, uint64_t n)
{
	_Atomic uint64_t *v = &a->stats[reactor].v[s];

	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Where column col (0..k-1 data, then parity) of a parity level's stripe is now: `member`
 * at member strip `row`, holding current data if `ready` (a distributed spare still being
 * filled is not); writes go to `alt` as well (>= 0 while a distributed spare's strips are
 * copied back onto a new member). `durable`: ready per the superblocks on disk too. A draid
 * column whose member failed moves, once a distributed spare takes that slot, to the spare
 * strip of its row, in the order of the spares. */
struct col_loc {
	unsigned member;
	uint64_t row;
	int alt;
	bool ready;
	bool durable;
	uint32_t via; /* the distributed spares it went through */
};
void raid_col_locate(const struct raid_array *a, uint64_t stripe, unsigned col,
		     struct col_loc *loc);
/* draid: the failed slots that a full distributed spare stands in for. */
unsigned raid_ds_covered(const struct raid_array *a);
/* draid: the distributed spare (not in `skip`, a mask) holding slot, and its state; or -1. */
int raid_ds_holder(const struct raid_array *a, unsigned slot, uint32_t skip, int *state);

struct member_io *mio_alloc(struct raid_channel *rch, unsigned member, int iovcnt);
void mio_free(struct member_io *mio);
/* 0: will complete through mio->done, later. -ENODEV: member unusable (not submitted). */
int mio_submit(struct member_io *mio);
/* Slice [byte_off, +len) of an iovec array into mio's iovecs. */
int mio_set_iov(struct member_io *mio, const struct iovec *iov, int iovcnt, uint64_t byte_off,
		uint64_t len);
void raid_member_failed(struct raid_array *a, unsigned member, int status);
/* Open bdev `name` for writing and claim it for owner (event_cb as uraid_bdev_open takes it).
 * 0, or the error with "<what>'name' is in use ..." in err. Control thread. */
int raid_open_claimed(const char *what, const char *name, const char *owner,
		      uraid_bdev_event_cb event_cb, void *event_ctx, struct uraid_bdev_desc **desc,
		      char *err, size_t err_len);
/* A write to the member's replacement failed: the replacement is dropped (any reactor). */
void raid_replacement_failed(struct raid_array *a, unsigned member, int status);
/* Writable: active or rebuilding, or with a replacement being copied to (which then takes
 * the writes alone). Readable at member strip `unit`: active, or rebuilding and already
 * rebuilt there. Usable: the member device itself takes writes. */
bool raid_member_writable(struct raid_channel *rch, unsigned member);
bool raid_member_usable(struct raid_channel *rch, unsigned member);
bool raid_member_readable(struct raid_channel *rch, unsigned member, uint64_t unit);
/* A write (not a rebuild's) at member strip `unit` may go to the member: false only for a
 * rebuilding member of a log array over zoned members, outside what it holds already. */
bool raid_member_takes_write(struct raid_channel *rch, unsigned member, uint64_t unit);
void raid_io_part_done(struct raid_io *rio, int status);
struct raid_channel *raid_owner_channel(struct raid_array *a);
void *raid_buf_get(struct raid_channel *rch);
void raid_buf_put(struct raid_channel *rch, void *buf);

/* --- assemble.c: superblock I/O, create checks, examine and assembly --- */

/* Write the array's superblock to every active member (generation + 1), on reactor 0; cb
 * (may be NULL) runs there when that write, or a later one, is done. Any thread. */
void raid_sb_update(struct raid_array *a, void (*cb)(struct raid_array *a, int status));
/* The same from the control thread, waiting. */
int raid_sb_write_sync(struct raid_array *a);
/* A superblock round is under way (reactor 0). */
bool raid_sb_writer_busy(const struct raid_array *a);
void raid_sb_writer_free(struct raid_array *a);
/* Put the stripe owners' channels on their reactors and wait (control thread). */
void raid_release_owner_channels_sync(struct raid_array *a);
/* -EEXIST with a reason if a named member carries a uraid superblock of another array (or,
 * without o->superblock, of any); 1 if those that carry one all carry array o's (same name,
 * or uuid when o gives one, and the shape o asks for); 0 if none does. */
int raid_check_no_superblocks(const struct uraid_array_opts *o, char *err, size_t err_len);
/* Array o is on its members already (the check above said 1): the running array of that
 * name, or the one examine starts from them; else -errno and why it cannot start. Control
 * thread. */
int raid_create_or_assemble(const struct uraid_array_opts *o, struct uraid_bdev **out, char *err,
			    size_t err_len);
int raid_create_from_sb(const struct uraid_array_opts *o, const struct sb *from,
			struct uraid_bdev **out, char *err, size_t err_len);
/* Read a member's superblock: the primary, else the backup. 0, or -EBADMSG with a reason.
 * Control thread. used_backup tells which copy answered. */
int raid_sb_read(struct uraid_bdev_desc *desc, struct sb *sb, bool *used_backup, char *err,
		 size_t err_len);

/* --- bitmap.c: the write-intent bitmap --- */

extern uint64_t g_bitmap_sweep_us; /* quiet regions are cleared this often */

/* Choose region size and area for a new array (sets a->bm_*). */
int bitmap_geometry(struct raid_array *a, uint32_t region_kb, uint64_t data_offset_blocks,
		    char *err, size_t err_len);
uint64_t bitmap_units(const struct raid_array *a);
/* Control thread, before the array is registered: set up the in-memory bitmap and write the
 * header and bits to every member. After an unclean shutdown (!fresh && !clean) the members'
 * bits are read first and their regions marked for resync; after a clean one with a slot not
 * active they are read and kept (dirty, no resync) for its member's catch-up. */
int bitmap_create(struct raid_array *a, bool fresh, bool clean);
void bitmap_free(struct raid_array *a);
/* After registration: the sweeper and any resync start on reactor 0. */
void bitmap_start(struct raid_array *a);
/* Reactor 0: stop sweeping and resyncing; then() once nothing is in flight. */
void bitmap_stop(struct raid_array *a, void (*then)(struct raid_array *a));
/* Owner reactor (index reactor), before a write into unit: true to go on (then bitmap_exit
 * when done, on the same reactor); false: the operation waits for stripe_bitmap_ready. */
bool bitmap_enter(struct raid_array *a, unsigned reactor, uint64_t unit);
/* ... true as bitmap_enter when the region is dirty already; else false, and nothing asked.
 * Any reactor. */
bool bitmap_try_enter(struct raid_array *a, unsigned reactor, uint64_t unit);
void bitmap_exit(struct raid_array *a, unsigned reactor, uint64_t unit);
/* Any reactor: unit's region may have been written since a member left (true too without a
 * bitmap). Meaningful while a slot is not active: no bit is cleared then. */
bool bitmap_unit_dirty(struct raid_array *a, uint64_t unit);
/* The unit's region still waits for its resync (mirror reads then use the first copy). */
bool bitmap_in_resync(struct raid_array *a, uint64_t unit);
void bitmap_resync_start(struct raid_array *a);
void bitmap_get_info(struct raid_array *a, struct uraid_array_info *info);
void bitmap_header_encode(uint8_t *buf, size_t len, const uint8_t *uuid, uint64_t region_units,
			  uint64_t nbits);
int bitmap_header_decode(const uint8_t *buf, size_t len, const uint8_t *uuid, uint64_t region_units,
			 uint64_t nbits, char *err, size_t err_len);

/* --- ppl.c: the partial parity log --- */

struct ppl_header {
	uint8_t uuid[16];
	uint64_t epoch, seq, floor, stripe;
	uint64_t op; /* the update: entries of one carry the same number (per ring index) */
	uint32_t slot, ring, nrings, pos; /* where it was written: slot, ring, block in area */
	uint32_t parity;		  /* j: the parity it restores */
	uint32_t r0, r1;		  /* rows of the stripe */
	uint32_t pp_blocks;		  /* r1 - r0, or 0: the partial parity is zero */
	uint32_t k;
	uint64_t tmask; /* data columns written */
	uint32_t pp_crc;
	uint32_t lo[RAID_MAX_MEMBERS], hi[RAID_MAX_MEMBERS];
	/* journal: the new data of the written columns follows the partial parity: the rows
	 * lo..hi of each column of tmask, in column order; 0 under ppl */
	uint32_t data_blocks;
	uint32_t data_crc;
};

/* The journal's ring anchor: the ring's floor, written (FUA, to one of the ring's first two
 * blocks by gen's parity) before entries below it may be overwritten. */
struct ppl_anchor {
	uint8_t uuid[16];
	uint64_t epoch, gen, floor;
	uint32_t slot, ring, nrings;
};

void ppl_anchor_encode(uint8_t *buf, uint32_t bs, const struct ppl_anchor *k);
int ppl_anchor_decode(const uint8_t *buf, uint32_t bs, struct ppl_anchor *k, char *err,
		      size_t err_len);

struct ppl_recovery {
	uint64_t applied;      /* entries applied */
	uint64_t invalid;      /* entries of this run that failed a check */
	uint64_t skipped_rows; /* rows whose written column is on a missing member */
	/* Array blocks of those rows: an update wrote them, so they may hold neither their
	 * old nor their new contents. */
	struct ppl_hole {
		uint64_t lba, blocks;
	} * holes;
	size_t nholes;
};

struct ppl_chan;
struct ppl_entry;

void ppl_header_encode(uint8_t *buf, uint32_t bs, const struct ppl_header *h);
int ppl_header_decode(const uint8_t *buf, uint32_t bs, struct ppl_header *h, char *err,
		      size_t err_len);
/* Blocks the ranges of the written columns span (a journal entry's data). */
uint32_t ppl_written_blocks(const struct ppl_header *h);
/* The log area (sets a->ppl_*): from the superblock, or chosen for a new array; checked to
 * hold a ring per reactor. */
int ppl_geometry(struct raid_array *a, const struct sb *from, char *err, size_t err_len);
int ppl_channel_init(struct raid_channel *rch);
void ppl_channel_fini(struct raid_channel *rch);
/* A flush round is in flight (the channel must stay). */
bool ppl_busy(const struct raid_channel *rch);
/* The channel's poller: retire entries a superblock round was awaited for. */
bool ppl_poll(struct raid_channel *rch);
/* Rows one entry's partial parity may span. */
uint64_t ppl_max_rows(const struct raid_channel *rch);
/* Owner reactor: room for nent entries of sizes[] blocks on each of members[] (all or
 * nothing): 0, or -EAGAIN (wait for ppl_ready) or -ENOMEM. out[m * nent + e]. The entries
 * belong to update *opno, or to a new one (*opno 0: set to its number). */
int ppl_reserve(struct raid_channel *rch, const unsigned *members, unsigned nmem,
		const uint32_t *sizes, unsigned nent, uint64_t stripe, uint64_t *opno,
		struct ppl_entry **out);
/* Owner reactor: room for n entries, entry x of sizes[x] blocks on members[x]? */
bool ppl_fits_list(struct raid_channel *rch, const unsigned *members, const uint32_t *sizes,
		   unsigned n);
/* Take them, right after ppl_fits_list found room (nothing may take any in between): 0, or
 * -ENOMEM. As ppl_reserve otherwise. */
int ppl_reserve_list(struct raid_channel *rch, const unsigned *members, const uint32_t *sizes,
		     unsigned n, uint64_t stripe, uint64_t *opno, struct ppl_entry **out);
/* Blocks of a ring the journal needs for one stripe update's entries on one member. */
uint64_t ppl_journal_need(unsigned k, uint64_t strip_blocks);
/* Fill the ring fields of h for entry e; where it goes on its member (from the start). */
void ppl_entry_header(struct raid_channel *rch, const struct ppl_entry *e, struct ppl_header *h,
		      uint64_t *offset_blocks);
/* The member whose ring holds the entry: the only place it may be written. */
unsigned ppl_entry_member(const struct ppl_entry *e);
/* The operation is done with the entry: it retires after the next flush. */
void ppl_release(struct raid_channel *rch, struct ppl_entry *e);
/* Start a flush round (or another one after the one in flight). */
void ppl_flush_kick(struct raid_channel *rch);
/* Reactor 0: every channel of a starts a flush round; then done(a) on reactor 0. */
void ppl_flush_all(struct raid_array *a, void (*done)(struct raid_array *a));
/* Control thread, at assembly after an unclean shutdown, before anything is written: apply
 * the last run's entries. */
int ppl_recover(struct raid_array *a, const struct sb *from, struct ppl_recovery *out);
/* The blocks the last recovery could not vouch for (see struct ppl_recovery). */
size_t raid_ppl_holes(struct uraid_bdev *bdev, const struct ppl_hole **holes);

/* --- rst.c: the RAID stripe tree's on-disk format (log arrays) --- */

#define RST_BLOCK	   4096 /* bytes of every record block and map page */
#define RST_VERSION	   1
#define RST_RECORD_ENTRIES 167
#define RST_PAGE_ENTRIES   1000
/* The tree's area (RST_BLOCK blocks): two anchors (checkpoint records, by generation parity),
 * the ring of map records, then two slots per map page. */
#define RST_ANCHORS  2
#define RST_UNMAPPED UINT32_MAX

enum rst_record_type { RST_REC_MAP = 1, RST_REC_CHECKPOINT = 2 };

/* Array blocks [lba, +len) live at physical blocks [phys, +len) (or are unmapped). A move
 * (the cleaner's; src not RST_UNMAPPED) applies only to the blocks still at [src, +len). */
struct rst_extent {
	uint64_t lba;
	uint32_t len;
	uint32_t phys;
	uint32_t src;
};

struct rst_record {
	uint8_t uuid[16];
	uint32_t type;
	uint64_t seq;
	uint64_t upto; /* checkpoint: the pages hold every record up to this one */
	uint32_t count;
	struct rst_extent ent[RST_RECORD_ENTRIES];
};

void rst_record_encode(uint8_t *buf, const struct rst_record *r);
int rst_record_decode(const uint8_t *buf, size_t len, const uint8_t *uuid, uint64_t logical_blocks,
		      uint64_t phys_blocks, struct rst_record *r, char *err, size_t err_len);
uint32_t rst_page_count(uint64_t logical_blocks);
/* Page index of map[] (physical block + 1 per array block; 0: unmapped). */
void rst_page_encode(uint8_t *buf, const uint8_t *uuid, uint32_t index, uint64_t gen,
		     uint64_t logical_blocks, const uint32_t *map);
/* out (may be NULL) receives the page's entries. */
int rst_page_decode(const uint8_t *buf, size_t len, const uint8_t *uuid, uint32_t index,
		    uint64_t logical_blocks, uint64_t phys_blocks, uint64_t *gen, uint32_t *out,
		    char *err, size_t err_len);

/* --- lsa.c: log-structured arrays (policy log) --- */

struct lsa;

/* 0 if the superblock's log area holds its ring and two copies of the map. */
int lsa_meta_check(const struct sb *sb);
/* A new log array: where data starts (member blocks) so the log area fits. */
uint64_t lsa_data_offset(uint32_t bs, uint64_t min_member_blocks, unsigned n);
/* Control thread, before registration: a new array's area is cleared; an existing one's
 * tree is loaded (newest pages, then the records after the last checkpoint). Sets
 * a->bdev.num_blocks. */
int lsa_create(struct raid_array *a, const struct uraid_array_opts *o, const struct sb *from,
	       char *err, size_t err_len);
/* After registration (any thread): the writer starts on reactor 0. */
void lsa_start(struct raid_array *a);
/* Reactor 0, at destruct: stop the cleaner, let writes in flight finish, write a last
 * checkpoint; then(a). */
void lsa_stop(struct raid_array *a, void (*then)(struct raid_array *a));
void lsa_free(struct raid_array *a);
/* Any reactor: a user I/O (read, write, unmap, zeroes, flush) of a log array. */
void lsa_submit(struct raid_io *rio);
void lsa_channel_init(struct raid_channel *rch);
/* Reactor 0: the stripe (strip for mirrors) holds data that a rebuild or check must cover. */
bool lsa_unit_live(struct raid_array *a, uint64_t unit);
/* Zoned members (reactor 0): a rebuild's setup (its targets' zones reset) begins; the walk
 * may start once it is ready; the units it walks; its end. */
void lsa_rebuild_begin(struct raid_array *a, uint64_t targets);
bool lsa_rebuild_ready(struct raid_array *a);
int lsa_unit_rebuild(struct raid_array *a, uint64_t unit); /* 1, 0 or -EAGAIN: wait */
void lsa_rebuild_end(struct raid_array *a);
/* Any thread: stripe (or member strip) orow is in a zone opened since the rebuild began. */
bool lsa_zoned_fresh(struct raid_array *a, uint64_t orow);
/* bdev b may be a member of a (a zoned one only of a log array over the same zones). */
int lsa_member_fits(const struct raid_array *a, struct uraid_bdev *b, char *err, size_t err_len);
/* Reactor 0: the data blocks of unit a check covers: all of them, or for a log array up to
 * its last live block (0: it holds nothing). */
uint64_t lsa_unit_check_blocks(struct raid_array *a, uint64_t unit);
void lsa_get_info(struct raid_array *a, struct uraid_array_info *info);
/* Reactor 0: write every map page (a checkpoint of the whole tree, to the members that take
 * writes now), then then(a) (also if it failed). Before a rebuilt member counts as active:
 * the copies of tree blocks that lived on the member it replaced are written again. */
void lsa_checkpoint_all(struct raid_array *a, void (*then)(struct raid_array *a));

/* --- rebuild.c: spares, member swaps, rebuild --- */

struct rebuild_opts {
	uint64_t window_kb;	/* SPDK's process_window_size_kb: data in flight */
	uint64_t max_bw_mb_sec; /* SPDK's process_max_bandwidth_mb_sec; 0 = no cap */
	uint64_t checkpoint_us; /* superblock checkpoint interval */
};
extern struct rebuild_opts g_rebuild_opts;

/* Reactor 0: a slot failed (or was found rebuilding at assembly): take a spare / resume. */
void raid_rebuild_kick(struct raid_array *a);
/* Member strips of slot `member` covered once units [0, done) of the array are rebuilt. */
uint64_t raid_units_to_member_strips(const struct raid_array *a, unsigned member, uint64_t done);
uint64_t raid_rebuild_units(const struct raid_array *a);
void raid_rebuild_free(struct raid_array *a);
/* Reactor 0: stop the rebuild; then() runs once its parts are done. */
void raid_rebuild_stop(struct raid_array *a, void (*then)(struct raid_array *a));
/* Any reactor: a member failed; reactor 0 looks for a spare. */
void raid_rebuild_notify(struct raid_array *a);
/* Reactor 0: the running rebuild's walk may go on (it waited for the log array). */
void raid_rebuild_resume(struct raid_array *a);
/* draid: a distributed spare's state, for people. */
const char *raid_ds_state_name(int state);
/* Any thread: let go of failed member slot's device (its device is being removed), on reactor
 * 0 and unless a spare has taken the slot by then. */
void raid_member_release(struct raid_array *a, unsigned slot);

/* --- stripe.c: the owner side (parity writes, degraded reads, mirror writes, checks) --- */

enum part_kind {
	PART_WRITE,
	PART_ZEROES,
	PART_READ,
	PART_MIRROR,
	PART_CHECK,
	PART_REBUILD,
	PART_COPY, /* member strip `unit` of slot `slot` copied to its replacement */
	PART_GATE  /* journal write-back: answered once no write of the stripe is in flight */
};

/* One stripe's (or, for mirrors, one strip's) share of an I/O; travels by message. */
struct stripe_part {
	struct raid_array *a;
	enum part_kind kind;
	enum uraid_io_type mirror_type; /* PART_MIRROR: WRITE, UNMAP or WRITE_ZEROES */
	uint32_t flags;
	uint64_t stripe;
	uint64_t start_blocks; /* within the stripe's data */
	uint64_t num_blocks;
	const struct iovec *iov; /* the parent's data; byte offset below */
	int iovcnt;
	uint64_t byte_off;
	struct uraid_reactor *origin;
	void (*done)(struct stripe_part *part, int status); /* called on origin */
	void *ctx;
	int status;
	/* PART_CHECK: repair what is found (else only report) */
	bool repair;
	/* PART_CHECK after a crash: data is right, parity (or the other copies) follows it */
	bool resync;
	/* PART_READ after a read error: this member (index + 1; 0 none) is not read, and gets
	 * the reconstructed data written back */
	unsigned exclude;
	/* PART_CHECK results */
	bool bad;
	bool unreadable;
	bool repaired;
	/* PART_WRITE of a log array's fresh stripe: reconstruct-write, never read-modify-write
	 * (what the stripe held before does not count) */
	bool fresh;
	int bad_column;	      /* located single bad column, or -1 */
	uint64_t held_until;  /* held write: released once sb_done reaches this */
	uint64_t unit;	      /* PART_REBUILD / PART_COPY: the driver's unit */
	bool drain;	      /* PART_REBUILD: a distributed spare's copy back (draid) */
	unsigned slot;	      /* PART_COPY */
	struct mirror_run mr; /* PART_MIRROR run without an operation */
	TAILQ_ENTRY(stripe_part) link;
};

/* A mirrored write of blocks [start, +num) of strip, come in on channel here, goes to the
 * copies at once from this reactor if nothing else holds the strip: on its owner, or under a
 * claim elsewhere (then mr->done answers it); false: not taken, it goes the usual way (as a
 * part). */
bool stripe_mirror_direct(struct mirror_run *mr, struct raid_channel *here, uint64_t strip,
			  uint64_t start, uint64_t num, enum uraid_io_type type, uint32_t flags,
			  const struct iovec *iov, int iovcnt, uint64_t byte_off);
/* A succeeded part waits on rch's held list until the superblocks record what generation
 * `until` stands for (a member failure): raid_poll then releases it. */
void stripe_part_hold(struct raid_channel *rch, struct stripe_part *part, uint64_t until);
/* Complete a held part (owner reactor): with its status, or -EIO if the array went offline
 * meanwhile. */
void stripe_part_release(struct stripe_part *part);
/* Answer part with status, on its origin reactor. */
void stripe_part_finish(struct stripe_part *part, int status);
/* raid.c: a part of the parent's I/O (counted in it; answered on this reactor), or NULL with
 * the parent failed for want of memory. */
struct stripe_part *raid_part_make(struct raid_io *rio, enum part_kind kind, uint64_t stripe,
				   uint64_t start, uint64_t num, uint64_t byte_off);

/* Reactor r: the bitmap regions some parked operations wait for may be set now. */
void stripe_bitmap_ready(struct raid_array *a);
/* ppl: a stripe's log entry retired; entries retired or space freed (owner reactor). */
void stripe_ppl_retired(struct raid_channel *rch, uint64_t stripe);
void stripe_ppl_ready(struct raid_channel *rch);
/* Mirrored and parity arrays: the claim slots (0 or -ENOMEM), and an owner's poll of its buckets
 * waiting for one (true if any got its slot; while any waits the poller is busy, as nothing
 * else wakes the reactor when a claimant lets go). */
int stripe_claims_init(struct raid_array *a);
bool stripe_claims_poll(struct raid_channel *rch);

/* Send part to its stripe's owner (any reactor). */
void stripe_submit(struct stripe_part *part);
/* ... or, a parity write or degraded read come in on channel here, run it here under a claim
 * on its stripe if one is to be had (stripe.c, "claims"). */
void stripe_submit_on(struct stripe_part *part, struct raid_channel *here);
unsigned stripe_owner(struct raid_array *a, uint64_t stripe);
int stripe_channel_init(struct raid_channel *rch);
void stripe_pool_init(struct raid_channel *rch);
void stripe_channel_fini(struct raid_channel *rch);

#endif
