/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Log-structured arrays (consistency policy "log"): a write never updates a stripe in place.
 *
 * Theory of operation. The array's members are laid out exactly as an in-place array of the
 * same level: that is the physical space, and a row is one of its stripes (parity levels),
 * strips (raid1, raid10) or rows of strips (raid0). Every write lands in a fresh row and the
 * RAID stripe tree (rst.c) maps array blocks to physical blocks:
 *
 *   write -> packed into an open row (column after column): reactor 0's, or the lane's
 *           of the reactor it came in on (see below)
 *        -> the row is sealed when full, when nothing else is being written, or after
 *           LSA_FILL_US -> one write of the row through the in-place engine (a full-stripe
 *           write when full; else reconstruct-write over the rows it fills, never
 *           read-modify-write: the row's old contents are dead)
 *        -> commit on reactor 0 (the log owner), in order, a batch of written rows at a
 *           time: flush the members (the data is durable), write the batch's records to
 *           every member's ring (FUA), apply them to the map, answer the writes (a lane's
 *           on its own reactor).
 *
 * So an acknowledged write is durable (its data and its record are on stable media); a FLUSH
 * has nothing left to do. A row that held data is never written again until nothing in the
 * map points into it; a crash therefore finds every row the records name intact, and the
 * stripes it was writing belong to nobody: there is no write hole to close and no resync.
 *
 * Lanes. Over conventional members every reactor but 0 places its own writes: reactor 0
 * grants it free rows (two in stock, asked for before the last is taken, preferring rows whose
 * stripe that reactor owns), and it packs, seals and writes them through its own channel;
 * only the written row travels to reactor 0, and back once committed. Rows granted are busy
 * to reactor 0 as its own open row is; a lane's unused rows go back when the array stops.
 * Writes from different reactors are not ordered against each other until acknowledged, so
 * the map changes in commit order, whichever reactor filled the row: a write acknowledged
 * before another is submitted is committed before it. The cleaner, unmaps and the zoned
 * members' groups stay on reactor 0.
 *
 * Reads look the map up and read the physical blocks through the in-place engine, which also
 * reconstructs them when a member is missing. On reactor 0 a row is pinned while reads of it
 * are out. Every other reactor reads on its own, without a message: map entries are stored
 * atomically, and a row nothing maps into waits (limbo) before it is reused until no read on
 * another reactor that could have found it there is still out (grace periods, see rg_* in
 * struct lsa). Unmapped blocks read as zeroes; UNMAP and WRITE_ZEROES unmap.
 *
 * The cleaner (greedy: the row with the fewest live blocks) reads a row's live blocks and
 * writes them again through the open row as moves, which apply only to the blocks that still
 * live where they were read (a user write in between wins). Over-provisioning keeps free
 * space: the array exposes (100 - overprovision_pct)% of its physical space, and user writes
 * leave the last LSA_CLEAN_RESERVE free rows to the cleaner.
 *
 * Rebuild and scrub walk only rows that hold data (lsa_unit_live): a rebuilt member skips
 * free rows, whose next write recomputes their parity from what the members hold.
 *
 * Memory: 4 bytes per array block (the map) and 4 per physical block (the reverse map, for
 * the cleaner), about 2 GiB per TiB at 4 KiB blocks, plus 21 bytes per row; arrays are
 * limited to 2^32 - 1 blocks of each.
 *
 * Everything here runs on reactor 0 except lsa_create (control thread, before the array is
 * registered), lsa_submit's hand-off, the reads of other reactors (read_remote) and the lanes
 * (lane_*, each on its reactor).
 */
#include <stdlib.h>

#include "core.h"

#define LSA_FILL_US	     200 /* an open row waits this long for more writes */
#define LSA_MIN_RESERVE_ROWS 8	 /* over-provisioning is at least this many rows */
#define LSA_CLEAN_RESERVE    2	 /* free rows user writes leave to the cleaner */
#define LSA_CLEAN_LOW	     6	 /* the cleaner runs below this many free rows */
#define LSA_CHUNK_BYTES	     (1u << 20)
#define LSA_CANDIDATES	     32 /* victims one scan of the rows keeps */
#define LSA_OPEN_MAX	     4	/* zoned members: groups open for new rows at once */
#define LANE_STOCK	     4	/* rows one grant hands a lane, at most */

/* ROW_CLEANED: used, and its live blocks are being moved (no longer a victim). ROW_LIMBO:
 * nothing maps into it, but a read from another reactor may still be out (see rg_*). */
enum row_state { ROW_FREE, ROW_BUSY, ROW_USED, ROW_CLEANED, ROW_LIMBO };

/* Zoned members: a group is the rows of one zone on every member, written in order from its
 * start, reset whole. GRP_OPEN: rows are handed out from it; GRP_FULL: all were. */
enum group_state { GRP_FREE, GRP_OPEN, GRP_FULL, GRP_RESETTING };

struct lsa_row;

struct lsa_group {
	uint32_t alloc;	   /* rows handed out, from the first */
	uint32_t dead;	   /* of those, free again (nothing maps into them) */
	uint32_t inflight; /* of those, not committed yet */
	uint32_t born;	   /* the commit count when it filled (its age) */
	uint64_t live;	   /* live blocks */
	uint8_t state;
	bool zopen; /* its zones may be open on the members: until its last row is written */
	bool busy;  /* a row write is out: the next waits for it */
	struct lsa_row *wait, *wait_tail; /* sealed rows behind it, in order */
	_Atomic uint32_t epoch;		  /* when it was last opened (lsa_zoned_fresh) */
};

/* The cleaner's copy of one victim's live blocks, kept until every move is written. The
 * data is aligned as user buffers are, so the encoder and the member copies take their fast
 * paths for moves too. */
struct clean_buf {
	unsigned refs;
	_Alignas(CACHE_LINE_BYTES) uint8_t data[];
};

struct lsa;

/* One user I/O, on reactor 0 or on the lane of the reactor it came in on. */
struct lsa_req {
	struct stripe_part *part;
	struct lsa *ls;
	struct obj_pool *pool; /* its reactor's, where it goes back */
	unsigned pending;      /* pieces (or reads) not done, +1 while placing */
	int status;
	uint64_t placed; /* write: blocks placed in rows so far */
	TAILQ_ENTRY(lsa_req) link;
};

struct lsa_piece {
	uint64_t lba;
	uint32_t len;
	uint32_t off; /* data block within the row */
	uint32_t src; /* a move: the physical block it was read from; else RST_UNMAPPED */
	struct lsa_req *req;
	struct clean_buf *cb; /* a move's data */
};

struct lsa_row {
	struct lsa *ls;
	struct lsa_lane *lane; /* the lane that filled it; NULL: reactor 0 */
	TAILQ_ENTRY(lsa_row) link;
	uint64_t row; /* UINT64_MAX: an unmap (pieces without data) */
	uint64_t used;
	uint64_t opened_us;
	bool has_user; /* holds user writes (not only the cleaner's moves) */
	bool written;
	int status;
	struct lsa_piece *pc;
	unsigned npc, cpc;
	struct iovec *iov;
	int iovcnt, ciov;
	struct lsa_row *znext; /* zoned: the next row waiting for the group */
	struct raid_io rio;
	struct uraid_bdev_io fio; /* last: it ends in a flexible array */
};

struct lsa_read {
	struct lsa *ls;
	struct lsa_req *req;	/* a request from another reactor, or */
	struct raid_io *parent; /* a read on its own reactor */
	struct raid_channel *rch;
	bool remote; /* not on reactor 0: counted in rg, not in readers */
	unsigned rg; /* ... under this parity of rg_epoch */
	uint64_t row;
	struct raid_io rio;
	struct uraid_bdev_io fio;
};

/* A reactor other than 0 writing to an array over conventional members places its writes in
 * rows of its own: its lane. Reactor 0 grants it free rows (a few at a time, asked for before
 * the last is opened), the lane packs its writes into them and writes them through its own
 * channel, preferring rows whose stripe it owns; a written row goes to reactor 0 to be
 * committed with the others, and comes back to have its writes answered. Everything here is
 * the lane reactor's, but grant[] and ngrant, which reactor 0 fills (or, when rows go back,
 * reads) before the message that hands them over: the message orders them. */
struct lsa_lane {
	_Alignas(CACHE_LINE_BYTES) struct lsa *ls;
	unsigned reactor;
	bool ready, asking, failed; /* failed: reactor 0 could not grant (offline) */
	struct raid_channel *rch;
	struct uraid_poller *poller;
	struct lsa_row *open;
	uint64_t stock[LANE_STOCK];
	unsigned nstock;
	unsigned want;		    /* rows the ask is for */
	unsigned inflight;	    /* rows sealed and not back from their commit */
	TAILQ_HEAD(, lsa_req) wait; /* writes waiting for a row */
	struct obj_pool reqs;
	uint64_t grant[LANE_STOCK];
	unsigned ngrant;
};

/* A metadata block written to every member that takes writes. */
struct lsa_mw {
	struct lsa *ls;
	unsigned pending;
	int status;
	void (*cb)(struct lsa *ls, void *ctx, int status);
	void *ctx;
};

struct lsa {
	struct raid_array *a;
	struct raid_channel *rch; /* reactor 0's */
	uint64_t unit;		  /* data blocks per row */
	uint64_t rows, phys, logical;
	uint32_t *map;	/* array block -> physical block + 1 (0: unmapped) */
	uint32_t *rmap; /* physical block -> array block + 1 (0: dead or free) */
	uint32_t *live; /* per row */
	uint32_t *readers;
	uint32_t *born; /* per row: the commit count when it was last written (its age) */
	uint8_t *state;
	bool cost_benefit; /* the cleaner's victim: best (1 - u) age / (1 + u), not fewest live */
	uint64_t cand[LSA_CANDIDATES]; /* the next victims, best last */
	double cand_score[LSA_CANDIDATES];
	unsigned ncand;
	uint64_t nfree, cursor, mapped;
	uint64_t reserve, clean_low; /* free rows user writes leave; below which the cleaner runs */

	/* Zoned members (zoned): rows are handed out in groups, see struct lsa_group. */
	bool zoned;
	uint64_t zone_blocks; /* member blocks per zone */
	uint64_t zrows;	      /* strips per zone on a member */
	uint32_t gunits;      /* rows per group */
	uint32_t gusable;     /* ... below the zones' capacity */
	uint64_t ngroups;
	struct lsa_group *grp;
	uint64_t gopen[LSA_OPEN_MAX];
	unsigned kopen, nopen, rr;
	unsigned nzopen; /* groups zopen: at most kopen (the members' open-zone limit) */
	uint64_t gcursor;
	uint32_t epoch_next;
	unsigned zresets; /* group resets in flight */
	bool zretry;	  /* a reset could not be issued: the poller tries again */
	uint64_t zvictim; /* the group the cleaner empties */
	uint8_t *zero;	  /* padding for rows sealed before they fill */
	/* A rebuild onto members of such an array: its walk writes their zones in order, so
	 * while it runs writes reach them only in groups opened after it began (zr_epoch). */
	_Atomic uint32_t zr_epoch; /* UINT32_MAX: none */
	int zr_state;		   /* ZR_* */
	uint64_t zr_targets;
	uint64_t zr_pin;  /* the group the walk is in: not reset under it */
	uint64_t zr_next; /* the next group whose zones the setup resets on the targets */
	unsigned zr_pending;

	/* The metadata area on every member (member blocks). */
	uint32_t mb; /* member blocks per metadata block */
	unsigned meta_copies;
	uint64_t meta_off;
	uint32_t ring, npages;
	uint8_t *page_dirty, *page_slot;
	uint64_t ndirty;
	uint64_t seq;	    /* the next record's */
	uint64_t applied;   /* records up to this one are in the map */
	uint64_t ckpt_upto; /* ... and up to this one in the pages on disk */
	uint64_t ckpt_gen;

	struct lsa_row *open;
	TAILQ_HEAD(, lsa_row) fifo; /* sealed, in seal order */
	unsigned writing;
	bool committing, checkpointing;
	TAILQ_HEAD(lsa_wait, lsa_req) wait; /* writes waiting for a free row */
	unsigned reads;

	/* Reads on other reactors look the map up themselves (its entries are stored
	 * atomically) and pin no row; each counts itself in rg[its reactor].n[rg_epoch & 1]
	 * before it looks. A row nothing maps into any more waits in limbo until no such read
	 * can still be reading it: right away if every count is 0; else two grace periods,
	 * each a flip of rg_epoch and then the old parity's counts all reaching 0 (two, so that
	 * a read that took the parity just before a flip is waited for too). */
	_Atomic uint32_t rg_epoch;
	struct rg_count {
		_Alignas(CACHE_LINE_BYTES) _Atomic uint64_t n[2];
	} * rg;
	bool rg_waiting;  /* a flip is out */
	uint32_t rg_done; /* grace periods completed */
	uint32_t *limbo;  /* rows in limbo, in the order they died (a ring of rows entries);
			   * born[] holds the rg_done each one waits for */
	uint64_t limbo_head, limbo_n;
	uint64_t deferred; /* rows that went through limbo */

	/* Lanes (reactors 1 and up, conventional members): see struct lsa_lane. Reactor 0 keeps
	 * which ones asked for rows, a cursor each for picking their rows, and the count of rows
	 * granted and not back (as written rows or unused); a lane counts itself in lane_pollers
	 * while its poller runs, so that the array stops only after every lane has. */
	struct lsa_lane *lanes; /* URAID_MAX_REACTORS; NULL over zoned members */
	bool *lane_asked;
	unsigned lane_asks; /* of lane_asked, true */
	uint64_t *lane_cursor;
	uint64_t leased;
	unsigned lane_keep; /* rows a lane keeps in stock: 2, 1 in small arrays */
	_Atomic unsigned lane_pollers;
	_Atomic bool lanes_stop;

	/* The cleaner. */
	bool cl_active, cl_reading;
	uint64_t cl_victim;
	struct clean_buf *cl_buf;
	/* Buffers of victims whose moves are all written, kept for the next ones (a new one
	 * of a row's size would be a fresh mapping, faulted in page by page). */
	struct obj_pool cl_bufs;
	unsigned cl_pending; /* reads not back */
	uint64_t cl_next;    /* next block of the victim to place */
	int cl_status;

	struct uraid_poller *poller;
	bool stopping, ckpt_failed;
	/* lsa_checkpoint_all: every page goes into the next checkpoint, then full_then(a) */
	void (*full_then)(struct raid_array *a);
	bool full_asked;
	void (*on_stopped)(struct raid_array *a);

	uint64_t user_blocks, moved_blocks, rows_cleaned, commits, checkpoints, zone_resets;
	uint64_t lane_rows;
	struct obj_pool reqs, rds; /* reactor 0's free lists */
	/* The cleaner's share of the bandwidth cap (process_max_bandwidth_mb_sec), in bytes. */
	double cl_tokens;
	uint64_t cl_last_us;
	/* What lsa_get_info reports (any thread), copied by the poller. */
	struct {
		_Atomic uint64_t mapped, nfree, user, moved, cleaned, commits, ckpts, seq, resets;
		_Atomic uint64_t deferred, lane_rows;
		_Atomic uint32_t nopen;
	} pub;
};

enum { ZR_NONE, ZR_RESET, ZR_READY }; /* lsa.zr_state */

static void commit_kick(struct lsa *ls);
static void group_maybe_reset(struct lsa *ls, uint64_t g);
static void group_maybe_finish(struct lsa *ls, uint64_t g);
static void publish(struct lsa *ls);
static void ckpt_kick(struct lsa *ls);
static void clean_kick(struct lsa *ls);
static void place_waiting(struct lsa *ls);
static void lane_serve(struct lsa *ls);
static struct lsa_row *lane_row_open(struct lsa_lane *ln);
static void lane_seal(struct lsa_lane *ln);
static void lane_ask(struct lsa_lane *ln);

/* --- geometry --- */

/* The ring holds twice the map pages, so that a checkpoint (which may write every page) comes
 * at most once per as many records: 64 to 16384 blocks. */
static uint32_t
ring_blocks(uint64_t logical_blocks)
{
	uint64_t want = 2ull * rst_page_count(logical_blocks);
	uint32_t r = 64;

	while (r < want && r < 16384)
		r *= 2;
	return r;
}

int
lsa_meta_check(const struct sb *sb)
{
	uint64_t mb = RST_BLOCK / sb->block_size, need;

	if (sb->log_ring_blocks < 16 || sb->log_ring_blocks > (1u << 20) ||
	    sb->log_array_blocks == 0 || sb->log_array_blocks > sb->array_blocks ||
	    sb->array_blocks >= UINT32_MAX)
		return -EBADMSG;
	need = ((uint64_t)RST_ANCHORS + sb->log_ring_blocks +
		2ull * rst_page_count(sb->log_array_blocks)) *
	       mb;
	return need <= sb->ppl_blocks ? 0 : -EBADMSG;
}

uint64_t
lsa_data_offset(uint32_t bs, uint64_t min_member_blocks, unsigned n)
{
	uint64_t mib = (1u << 20) / bs;
	uint64_t phys = min_member_blocks * n;
	uint64_t need = META_PPL_OFFSET / bs +
			((uint64_t)RST_ANCHORS + ring_blocks(phys) + 2ull * rst_page_count(phys)) *
				(RST_BLOCK / bs);

	return (need + mib - 1) / mib * mib;
}

static uint64_t
row_of(const struct lsa *ls, uint64_t phys)
{
	return phys / ls->unit;
}

static uint64_t
group_of(const struct lsa *ls, uint64_t row)
{
	return row / ls->gunits;
}

/* --- rows and space --- */

static void
row_release(struct lsa *ls, uint64_t r)
{
	ls->state[r] = ROW_FREE;
	if (ls->zoned) {
		ls->grp[group_of(ls, r)].dead++;
		group_maybe_reset(ls, group_of(ls, r));
	} else {
		ls->nfree++;
	}
}

/* No read on another reactor under parity idx (both: idx 2) is out. Map stores, these loads
 * and the reads' count-then-look are all sequentially consistent: a read this misses counted
 * itself after, so it finds the map as it is now. */
static bool
rg_quiet(struct lsa *ls, unsigned idx)
{
	unsigned nr = uraid_reactor_count();

	for (unsigned r = 1; r < nr && r < URAID_MAX_REACTORS; r++) {
		for (unsigned i = 0; i < 2; i++) {
			if ((idx == 2 || idx == i) && atomic_load(&ls->rg[r].n[i]) != 0)
				return false;
		}
	}
	return true;
}

/* Grace periods (see struct lsa): run as far as they can now; free the limbo rows whose
 * wait is over (true if any). Reactor 0's poller. */
static bool
rg_advance(struct lsa *ls)
{
	bool quiet = ls->limbo_n > 0 && rg_quiet(ls, 2);
	uint64_t before = ls->limbo_n;

	while (ls->limbo_n > 0) {
		uint32_t r = ls->limbo[ls->limbo_head];

		if (quiet || (int32_t)(ls->rg_done - ls->born[r]) >= 0) {
			ls->limbo_head = (ls->limbo_head + 1) % ls->rows;
			ls->limbo_n--;
			row_release(ls, r);
			continue;
		}
		if (!ls->rg_waiting) {
			atomic_fetch_add(&ls->rg_epoch, 1);
			ls->rg_waiting = true;
		}
		if (!rg_quiet(ls, (atomic_load(&ls->rg_epoch) - 1) & 1))
			break;
		ls->rg_waiting = false;
		ls->rg_done++;
	}
	return ls->limbo_n < before;
}

static void
row_maybe_free(struct lsa *ls, uint64_t r)
{
	if ((ls->state[r] != ROW_USED && ls->state[r] != ROW_CLEANED) || ls->live[r] != 0 ||
	    ls->readers[r] != 0)
		return;
	if (ls->limbo_n == 0 && rg_quiet(ls, 2)) {
		row_release(ls, r);
		return;
	}
	/* Two grace periods that begin after now: the one running (if any) does not count. */
	ls->state[r] = ROW_LIMBO;
	ls->deferred++;
	ls->born[r] = ls->rg_done + (ls->rg_waiting ? 3 : 2);
	ls->limbo[(ls->limbo_head + ls->limbo_n++) % ls->rows] = (uint32_t)r;
}

/* The map says array block lba is at physical block p (or nowhere: p RST_UNMAPPED). */
static void
map_set(struct lsa *ls, uint64_t lba, uint32_t p)
{
	uint32_t old = ls->map[lba];

	if (old != 0) {
		uint64_t r = row_of(ls, old - 1);

		ls->rmap[old - 1] = 0;
		ls->live[r]--;
		if (ls->zoned)
			ls->grp[group_of(ls, r)].live--;
		ls->mapped--;
		row_maybe_free(ls, r);
	}
	if (p != RST_UNMAPPED) {
		atomic_store((_Atomic uint32_t *)&ls->map[lba], p + 1);
		ls->rmap[p] = (uint32_t)lba + 1;
		ls->live[row_of(ls, p)]++;
		if (ls->zoned)
			ls->grp[group_of(ls, row_of(ls, p))].live++;
		ls->mapped++;
	} else {
		atomic_store((_Atomic uint32_t *)&ls->map[lba], 0);
	}
	if (!ls->page_dirty[lba / RST_PAGE_ENTRIES]) {
		ls->page_dirty[lba / RST_PAGE_ENTRIES] = 1;
		ls->ndirty++;
	}
}

static void
apply_extent(struct lsa *ls, const struct rst_extent *x)
{
	for (uint32_t i = 0; i < x->len; i++) {
		if (x->src != RST_UNMAPPED) {
			if (ls->map[x->lba + i] != x->src + i + 1)
				continue; /* written again since the cleaner read it */
			map_set(ls, x->lba + i, x->phys + i);
		} else {
			map_set(ls, x->lba + i,
				x->phys == RST_UNMAPPED ? RST_UNMAPPED : x->phys + i);
		}
	}
}

/* Recovery: the same on the bare map (no reverse map or counts yet). */
static void
replay_extent(struct lsa *ls, const struct rst_extent *x)
{
	for (uint32_t i = 0; i < x->len; i++) {
		uint64_t lba = x->lba + i;

		if (x->src != RST_UNMAPPED && ls->map[lba] != x->src + i + 1)
			continue;
		ls->map[lba] = x->phys == RST_UNMAPPED ? 0 : x->phys + i + 1;
		if (!ls->page_dirty[lba / RST_PAGE_ENTRIES]) {
			ls->page_dirty[lba / RST_PAGE_ENTRIES] = 1;
			ls->ndirty++;
		}
	}
}

/* --- zone groups (zoned members) --- */

/* Reactor 0's descriptor of member m is of a zoned bdev (once it takes writes). */
static bool
member_zoned(const struct lsa *ls, unsigned m)
{
	return ls->rch->mdesc[m] != NULL &&
	       uraid_bdev_is_zoned(uraid_bdev_desc_get_bdev(ls->rch->mdesc[m]));
}

/* Zone management of one group on some members. */
struct zop {
	struct lsa *ls;
	uint64_t g;
	unsigned pending;
	int status;
	void (*cb)(struct lsa *ls, struct zop *z);
};

static void
zop_put(struct zop *z)
{
	if (--z->pending == 0)
		z->cb(z->ls, z);
}

static void
zop_io_done(struct member_io *mio, int status)
{
	struct zop *z = mio->ctx;

	if (status != 0) {
		raid_member_failed(z->ls->a, mio->member, status);
		z->status = status;
	}
	mio_free(mio);
	zop_put(z);
}

/* act on zone g of every member in mask that is zoned and takes writes. */
static void
zop_issue(struct lsa *ls, struct zop *z, uint64_t mask, enum uraid_zone_action act)
{
	for (unsigned m = 0; m < ls->a->l.n; m++) {
		struct member_io *mio;

		if (!(mask & (1ull << m)) || !raid_member_writable(ls->rch, m) ||
		    !member_zoned(ls, m))
			continue;
		mio = mio_alloc(ls->rch, m, 0);
		if (mio == NULL) {
			z->status = -ENOMEM;
			continue;
		}
		mio->type = URAID_IO_ZONE_MANAGEMENT;
		mio->offset_blocks = z->g * ls->zone_blocks;
		mio->num_blocks = act;
		mio->done = zop_io_done;
		mio->ctx = z;
		z->pending++;
		if (mio_submit(mio) != 0) {
			z->pending--; /* the member went away just now */
			mio_free(mio);
		}
	}
}

/* Group g's zones are no longer open on the members (written to their end, finished or
 * reset): another group may open. */
static void
group_zones_closed(struct lsa *ls, uint64_t g)
{
	if (ls->grp[g].zopen) {
		ls->grp[g].zopen = false;
		ls->nzopen--;
	}
}

static struct zop *
zop_new(struct lsa *ls, uint64_t g, void (*cb)(struct lsa *ls, struct zop *z))
{
	struct zop *z = calloc(1, sizeof(*z));

	if (z != NULL)
		*z = (struct zop){ls, g, 1, 0, cb};
	return z;
}

static void
group_reset_done(struct lsa *ls, struct zop *z)
{
	struct lsa_group *G = &ls->grp[z->g];

	ls->zresets--;
	if (z->status == -ENOMEM) {
		/* Not every zone was reset: the group stays full; the poller tries again. */
		G->state = GRP_FULL;
		ls->zretry = true;
	} else {
		/* (A member that failed the reset is failed: its zones are reset when it is
		 * rebuilt.) */
		G->state = GRP_FREE;
		G->alloc = G->dead = 0;
		group_zones_closed(ls, z->g);
		ls->nfree += ls->gusable;
		ls->zone_resets++;
		if (ls->zvictim == z->g)
			ls->zvictim = UINT64_MAX;
	}
	free(z);
	publish(ls);
	place_waiting(ls);
}

/* A group whose rows are all handed out and dead is reset on every member, and its rows are
 * free again; not under a rebuild's walk (zr_pin). (A dead row is free: none is being
 * filled, written or committed.) */
static void
group_maybe_reset(struct lsa *ls, uint64_t g)
{
	struct lsa_group *G = &ls->grp[g];
	struct zop *z;

	if (G->state != GRP_FULL || G->dead < ls->gusable || g == ls->zr_pin)
		return;
	if ((z = zop_new(ls, g, group_reset_done)) == NULL) {
		ls->zretry = true;
		return;
	}
	G->state = GRP_RESETTING;
	ls->zresets++;
	zop_issue(ls, z, UINT64_MAX, URAID_ZONE_RESET);
	zop_put(z);
}

/* Every row of group g is handed out. */
static void
group_filled(struct lsa *ls, uint64_t g)
{
	ls->grp[g].state = GRP_FULL;
	ls->grp[g].born = (uint32_t)ls->commits;
	for (unsigned i = 0; i < ls->nopen; i++) {
		if (ls->gopen[i] == g) {
			ls->gopen[i] = ls->gopen[--ls->nopen];
			break;
		}
	}
	if (ls->rr >= ls->nopen)
		ls->rr = 0;
}

/* No more rows from open group g (a row write in it failed, so the zones' write pointers are
 * not where its next row goes; or a rebuild's walk reached it): the rest count as dead. */
static void
group_close(struct lsa *ls, uint64_t g)
{
	struct lsa_group *G = &ls->grp[g];

	if (G->state != GRP_OPEN)
		return;
	ls->nfree -= ls->gusable - G->alloc;
	G->dead += ls->gusable - G->alloc;
	G->alloc = ls->gusable;
	group_filled(ls, g);
}

static void
group_finished(struct lsa *ls, struct zop *z)
{
	group_zones_closed(ls, z->g);
	free(z);
	if (ls->zr_state == ZR_READY)
		raid_rebuild_resume(ls->a); /* the walk may wait for it */
}

/* A group closed before its end (a row write in it failed), all its rows written: its zones,
 * open on the members, are finished. */
static void
group_maybe_finish(struct lsa *ls, uint64_t g)
{
	struct lsa_group *G = &ls->grp[g];
	struct zop *z;

	if (G->state != GRP_FULL || !G->zopen || G->busy || G->wait != NULL ||
	    (ls->open != NULL && group_of(ls, ls->open->row) == g))
		return;
	if ((z = zop_new(ls, g, group_finished)) == NULL) {
		ls->zretry = true;
		return;
	}
	/* A rebuild's targets hold no rows of groups opened before it: their walk writes
	 * those zones, from the start. */
	zop_issue(ls, z,
		  ls->zr_state != ZR_NONE &&
				  atomic_load_explicit(&G->epoch, memory_order_relaxed) <=
					  atomic_load_explicit(&ls->zr_epoch, memory_order_relaxed)
			  ? ~ls->zr_targets
			  : UINT64_MAX,
		  URAID_ZONE_FINISH);
	zop_put(z);
}

/* The group the next row comes from: an open one with no row write out (so rows of several
 * groups are written at once), else a newly opened one, else any open one (the row then
 * waits for the one before it). */
static uint64_t
group_pick(struct lsa *ls)
{
	for (unsigned i = 0; i < ls->nopen; i++) {
		unsigned j = (ls->rr + i) % ls->nopen;
		uint64_t g = ls->gopen[j];

		if (!ls->grp[g].busy && ls->grp[g].wait == NULL) {
			ls->rr = (j + 1) % ls->nopen;
			return g;
		}
	}
	for (uint64_t i = 0; ls->nzopen < ls->kopen && i < ls->ngroups; i++) {
		uint64_t g = (ls->gcursor + i) % ls->ngroups;
		struct lsa_group *G = &ls->grp[g];

		if (G->state != GRP_FREE)
			continue;
		ls->gcursor = (g + 1) % ls->ngroups;
		G->state = GRP_OPEN;
		G->alloc = G->dead = 0;
		G->zopen = true;
		ls->nzopen++;
		atomic_store_explicit(&G->epoch, ++ls->epoch_next, memory_order_release);
		ls->gopen[ls->nopen++] = g;
		return g;
	}
	if (ls->nopen == 0)
		return UINT64_MAX;
	ls->rr = (ls->rr + 1) % ls->nopen;
	return ls->gopen[ls->rr];
}

static struct lsa_row *
row_new(struct lsa *ls, uint64_t row)
{
	struct lsa_row *rw = calloc(1, sizeof(*rw));

	if (rw == NULL)
		return NULL;
	rw->ls = ls;
	rw->row = row;
	rw->opened_us = uraid_now_us();
	return rw;
}

static void
row_free(struct lsa_row *rw)
{
	free(rw->pc);
	free(rw->iov);
	free(rw);
}

/* The next free row from *cursor on (conventional members, nfree > 0), the cursor moved past
 * it: the first, or with prefer a reactor's index, the first whose stripe that reactor owns
 * if one is free. */
static uint64_t
row_next_free(struct lsa *ls, uint64_t *cursor, int prefer)
{
	uint64_t any = UINT64_MAX, row = *cursor;

	for (uint64_t i = 0; i < ls->rows; i++, row = row + 1 == ls->rows ? 0 : row + 1) {
		if (ls->state[row] != ROW_FREE)
			continue;
		if (any == UINT64_MAX)
			any = row;
		if (prefer < 0 || stripe_owner(ls->a, row) == (unsigned)prefer) {
			any = row;
			break;
		}
	}
	*cursor = any + 1 == ls->rows ? 0 : any + 1;
	return any;
}

/* The open row, or a new one on a free row (user writes leave the reserve alone). */
static struct lsa_row *
row_open(struct lsa *ls, bool cleaner)
{
	struct lsa_row *rw;
	uint64_t r;

	if (ls->open != NULL)
		return ls->open;
	if (ls->nfree <= (cleaner ? 0 : ls->reserve))
		return NULL;
	rw = row_new(ls, 0);
	if (rw == NULL)
		return NULL;
	if (ls->zoned) {
		uint64_t g = group_pick(ls);

		if (g == UINT64_MAX) {
			row_free(rw);
			return NULL;
		}
		r = g * ls->gunits + ls->grp[g].alloc++;
		ls->grp[g].inflight++;
		if (ls->grp[g].alloc == ls->gusable)
			group_filled(ls, g);
	} else {
		r = row_next_free(ls, &ls->cursor, -1);
	}
	rw->row = r;
	ls->open = rw;
	ls->state[r] = ROW_BUSY;
	ls->nfree--;
	return ls->open;
}

static int
row_add_piece(struct lsa_row *rw, const struct lsa_piece *pc)
{
	if (rw->npc == rw->cpc) {
		unsigned c = rw->cpc ? rw->cpc * 2 : 16;
		struct lsa_piece *n = realloc(rw->pc, c * sizeof(*n));

		if (n == NULL)
			return -ENOMEM;
		rw->pc = n;
		rw->cpc = c;
	}
	rw->pc[rw->npc++] = *pc;
	return 0;
}

static int
row_add_iov(struct lsa_row *rw, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len)
{
	int need = uraid_iov_slice(iov, iovcnt, off, len, NULL, 0);

	if (rw->iovcnt + need > rw->ciov) {
		int c = rw->ciov ? rw->ciov * 2 : 16;
		struct iovec *n;

		while (c < rw->iovcnt + need)
			c *= 2;
		n = realloc(rw->iov, (size_t)c * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		rw->iov = n;
		rw->ciov = c;
	}
	rw->iovcnt +=
		uraid_iov_slice(iov, iovcnt, off, len, rw->iov + rw->iovcnt, rw->ciov - rw->iovcnt);
	return 0;
}

static void row_written(struct raid_io *rio, int status);

/* One write of the row's blocks through the in-place engine, from rch's reactor. */
static void
row_write(struct lsa_row *rw, struct raid_channel *rch, void (*done)(struct raid_io *, int))
{
	rw->fio.bdev = &rw->ls->a->bdev;
	rw->fio.type = URAID_IO_WRITE;
	rw->fio.offset_blocks = rw->row * rw->ls->unit;
	rw->fio.num_blocks = rw->used;
	rw->fio.iov = rw->iov;
	rw->fio.iovcnt = rw->iovcnt;
	raid_phys_io(&rw->rio, rch, &rw->fio, done, rw);
}

static void
row_submit(struct lsa *ls, struct lsa_row *rw)
{
	ls->writing++;
	row_write(rw, ls->rch, row_written);
}

/* Zoned: a row sealed before it filled is written whole, the rest zeroes (unmapped), so that
 * every member's write pointer moves on by one strip a row. */
static int
row_pad(struct lsa *ls, struct lsa_row *rw)
{
	uint32_t bs = ls->a->bdev.block_size;

	while (rw->used < ls->unit) {
		uint64_t n = ls->unit - rw->used;
		struct iovec iov;

		if (n * bs > LSA_CHUNK_BYTES)
			n = LSA_CHUNK_BYTES / bs;
		iov = (struct iovec){ls->zero, n * bs};
		if (row_add_iov(rw, &iov, 1, 0, n * bs) != 0)
			return -ENOMEM;
		rw->used += n;
	}
	return 0;
}

static void
row_seal(struct lsa *ls)
{
	struct lsa_row *rw = ls->open;

	if (rw == NULL)
		return;
	ls->open = NULL;
	TAILQ_INSERT_TAIL(&ls->fifo, rw, link);
	if (ls->zoned) {
		uint64_t g = group_of(ls, rw->row);
		struct lsa_group *G = &ls->grp[g];

		if (row_pad(ls, rw) != 0)
			group_close(ls, g); /* written short: nothing may follow it in the zones */
		if (G->busy) {
			/* Each zone is written in order: after the row before it. */
			if (G->wait_tail != NULL)
				G->wait_tail->znext = rw;
			else
				G->wait = rw;
			G->wait_tail = rw;
			return;
		}
		G->busy = true;
	}
	row_submit(ls, rw);
}

static void
row_written(struct raid_io *rio, int status)
{
	struct lsa_row *rw = rio->ctx;
	struct lsa *ls = rw->ls;

	rw->written = true;
	rw->status = status;
	ls->writing--;
	for (unsigned i = 0; i < rw->npc; i++) {
		struct clean_buf *cb = rw->pc[i].cb;

		if (cb != NULL && --cb->refs == 0)
			pool_put(&ls->cl_bufs, cb);
		rw->pc[i].cb = NULL;
	}
	if (ls->zoned) {
		uint64_t g = group_of(ls, rw->row);
		struct lsa_group *G = &ls->grp[g];
		struct lsa_row *next = G->wait;

		G->busy = false;
		/* After a failed write its zones are finished once nothing is left to write. */
		if (status != 0)
			group_close(ls, g);
		else if (rw->row % ls->gunits == ls->gusable - 1 && G->zopen) {
			group_zones_closed(ls, g); /* written to the zones' capacity: full */
			if (ls->zr_state == ZR_READY)
				raid_rebuild_resume(ls->a);
		}
		if (next != NULL) {
			G->wait = next->znext;
			if (G->wait == NULL)
				G->wait_tail = NULL;
			G->busy = true;
			row_submit(ls, next);
		} else {
			group_maybe_finish(ls, g);
		}
	}
	commit_kick(ls);
}

/* Put blocks [lba, +len) whose data is iov at byte off into rows: reactor 0's (ln NULL) or
 * lane ln's. How many were placed (fewer when no row is free); -ENOMEM on allocation failure. */
static int64_t
place(struct lsa *ls, struct lsa_lane *ln, struct lsa_req *req, uint64_t lba, uint64_t len,
      const struct iovec *iov, int iovcnt, uint64_t off, uint32_t src)
{
	uint32_t bs = ls->a->bdev.block_size;
	uint64_t done = 0;

	while (done < len) {
		struct lsa_row *rw =
			ln != NULL ? lane_row_open(ln) : row_open(ls, src != RST_UNMAPPED);
		struct lsa_piece pc;
		uint64_t n;

		if (rw == NULL)
			break;
		n = ls->unit - rw->used;
		if (n > len - done)
			n = len - done;
		pc = (struct lsa_piece){lba + done,
					(uint32_t)n,
					(uint32_t)rw->used,
					src == RST_UNMAPPED ? RST_UNMAPPED : src + (uint32_t)done,
					req,
					req == NULL ? ls->cl_buf : NULL};
		if (row_add_iov(rw, iov, iovcnt, off + done * bs, n * bs) != 0 ||
		    row_add_piece(rw, &pc) != 0)
			return -ENOMEM;
		rw->has_user |= req != NULL;
		if (req != NULL)
			req->pending++;
		else
			ls->cl_buf->refs++; /* a move: its data stays until the row is written */
		rw->used += n;
		done += n;
		if (rw->used == ls->unit) {
			if (ln != NULL)
				lane_seal(ln);
			else
				row_seal(ls);
		}
	}
	return (int64_t)done;
}

/* --- user requests --- */

static void
req_put(struct lsa_req *req, int status)
{
	struct stripe_part *part = req->part;

	if (status != 0 && req->status == 0)
		req->status = status;
	if (--req->pending != 0)
		return;
	status = req->status;
	pool_put(req->pool, req);
	stripe_part_finish(part, status);
}

/* Place what is left of a user write in rows: lane ln's, or reactor 0's (ln NULL); the rest
 * waits for a row. */
static void
write_place(struct lsa *ls, struct lsa_lane *ln, struct lsa_req *req)
{
	struct stripe_part *part = req->part;
	int64_t n = place(ls, ln, req, part->stripe + req->placed, part->num_blocks - req->placed,
			  part->iov, part->iovcnt,
			  part->byte_off + req->placed * ls->a->bdev.block_size, RST_UNMAPPED);

	if (n < 0) {
		req_put(req, (int)n);
		return;
	}
	req->placed += (uint64_t)n;
	if (ln != NULL) {
		/* (Counted in user_blocks when the row is committed.) */
		if (req->placed < part->num_blocks) {
			TAILQ_INSERT_TAIL(&ln->wait, req, link);
			lane_ask(ln);
			return;
		}
	} else {
		ls->user_blocks += (uint64_t)n;
		if (req->placed < part->num_blocks) {
			TAILQ_INSERT_TAIL(&ls->wait, req, link); /* the cleaner frees rows */
			clean_kick(ls);
			return;
		}
	}
	req_put(req, 0);
}

static void
place_waiting(struct lsa *ls)
{
	struct lsa_req *req;

	if (ls->lane_asks > 0)
		lane_serve(ls);
	while ((req = TAILQ_FIRST(&ls->wait)) != NULL &&
	       (ls->nfree > ls->reserve || !atomic_load(&ls->a->online))) {
		uint64_t placed = req->placed;

		TAILQ_REMOVE(&ls->wait, req, link);
		if (!atomic_load(&ls->a->online)) {
			req_put(req, -EIO);
			continue;
		}
		write_place(ls, NULL, req);
		/* Back in the queue with nothing placed (no row to be had now): later. */
		if (TAILQ_LAST(&ls->wait, lsa_wait) == req && req->placed == placed)
			break;
	}
}

static void
unmap_queue(struct lsa *ls, struct lsa_req *req)
{
	struct stripe_part *part = req->part;
	struct lsa_row *rw = row_new(ls, UINT64_MAX);
	struct lsa_piece pc = {part->stripe, (uint32_t)part->num_blocks, 0, RST_UNMAPPED, req,
			       NULL};

	if (rw == NULL || row_add_piece(rw, &pc) != 0) {
		if (rw)
			row_free(rw);
		req_put(req, -ENOMEM);
		return;
	}
	row_seal(ls); /* writes received before it are applied before it */
	rw->written = true;
	req->pending++;
	TAILQ_INSERT_TAIL(&ls->fifo, rw, link);
	req_put(req, 0);
	commit_kick(ls);
}

/* --- lanes: writes placed on the reactor they came in on (see struct lsa_lane) --- */

static void lane_grant_msg(void *arg);

/* A free row for lane r, reactor 0: one whose stripe r owns (so that its write runs on r
 * too) if there is one, else any. nfree > 0. */
static uint64_t
lane_row_pick(struct lsa *ls, unsigned r)
{
	uint64_t row = row_next_free(ls, &ls->lane_cursor[r], (int)r);

	ls->state[row] = ROW_BUSY;
	ls->nfree--;
	ls->leased++;
	return row;
}

/* Reactor 0: answer the lanes that asked, as far as free rows go (user writes leave the
 * reserve to the cleaner, as on reactor 0); offline, with none and failed set; stopping
 * (the cleaner has stopped), with what there is, perhaps none. */
static void
lane_serve(struct lsa *ls)
{
	unsigned nr = uraid_reactor_count();
	bool online = atomic_load(&ls->a->online);

	for (unsigned r = 1; ls->lane_asks > 0 && r < nr && r < URAID_MAX_REACTORS; r++) {
		struct lsa_lane *ln = &ls->lanes[r];

		if (!ls->lane_asked[r])
			continue;
		if (online && ls->nfree <= ls->reserve && !ls->stopping) {
			clean_kick(ls);
			return;
		}
		ln->ngrant = 0;
		while (online && ln->ngrant < ln->want && ls->nfree > ls->reserve)
			ln->grant[ln->ngrant++] = lane_row_pick(ls, r);
		ln->failed = !online;
		ls->lane_asked[r] = false;
		ls->lane_asks--;
		uraid_reactor_send(uraid_reactor_get(r), lane_grant_msg, ln);
	}
}

static void
lane_ask_msg(void *arg)
{
	struct lsa_lane *ln = arg;
	struct lsa *ls = ln->ls;

	ls->lane_asked[ln->reactor] = true;
	ls->lane_asks++;
	lane_serve(ls);
}

/* Ask reactor 0 for rows, unless an ask is out: enough to keep lane_keep in stock and to
 * place what waits. */
static void
lane_ask(struct lsa_lane *ln)
{
	struct lsa *ls = ln->ls;
	uint64_t need = ls->lane_keep > ln->nstock ? ls->lane_keep - ln->nstock : 0;
	struct lsa_req *req;

	if (ln->asking)
		return;
	TAILQ_FOREACH(req, &ln->wait, link) {
		need += (req->part->num_blocks - req->placed + ls->unit - 1) / ls->unit;
		if (need >= LANE_STOCK)
			break;
	}
	if (need > LANE_STOCK - ln->nstock)
		need = LANE_STOCK - ln->nstock;
	if (need == 0)
		return;
	ln->want = (unsigned)need;
	ln->asking = true;
	uraid_reactor_send(uraid_reactor_get(0), lane_ask_msg, ln);
}

static struct lsa_row *
lane_row_open(struct lsa_lane *ln)
{
	struct lsa_row *rw;

	if (ln->open != NULL)
		return ln->open;
	if (ln->nstock == 0)
		return NULL;
	rw = row_new(ln->ls, ln->stock[0]);
	if (rw == NULL)
		return NULL;
	ln->nstock--;
	memmove(ln->stock, ln->stock + 1, ln->nstock * sizeof(ln->stock[0]));
	rw->lane = ln;
	rw->has_user = true;
	ln->open = rw;
	if (ln->nstock < ln->ls->lane_keep)
		lane_ask(ln); /* the next comes while this one fills */
	return rw;
}

static void
lane_fail_waiting(struct lsa_lane *ln, int status)
{
	struct lsa_req *req;

	while ((req = TAILQ_FIRST(&ln->wait)) != NULL) {
		TAILQ_REMOVE(&ln->wait, req, link);
		req_put(req, status);
	}
}

static void
lane_place_waiting(struct lsa_lane *ln)
{
	struct lsa_req *req;

	while ((req = TAILQ_FIRST(&ln->wait)) != NULL && (ln->open != NULL || ln->nstock > 0)) {
		uint64_t placed = req->placed;

		TAILQ_REMOVE(&ln->wait, req, link);
		write_place(ln->ls, ln, req);
		if (TAILQ_LAST(&ln->wait, lsa_wait) == req && req->placed == placed)
			break;
	}
}

/* Rows granted (or, answering rows given back or an array gone offline, none). */
static void
lane_grant_msg(void *arg)
{
	struct lsa_lane *ln = arg;
	unsigned n = ln->ngrant;

	for (unsigned i = 0; i < n; i++)
		ln->stock[ln->nstock++] = ln->grant[i];
	ln->ngrant = 0;
	ln->asking = false;
	if (ln->failed)
		lane_fail_waiting(ln, -EIO);
	lane_place_waiting(ln);
	if (!TAILQ_EMPTY(&ln->wait) && (n > 0 || !atomic_load(&ln->ls->lanes_stop)))
		lane_ask(ln);
}

/* Reactor 0: a lane's rows it did not use. */
static void
lane_return_msg(void *arg)
{
	struct lsa_lane *ln = arg;
	struct lsa *ls = ln->ls;

	for (unsigned i = 0; i < ln->ngrant; i++) {
		row_release(ls, ln->grant[i]);
		ls->leased--;
	}
	ln->ngrant = 0;
	ln->failed = false;
	uraid_reactor_send(uraid_reactor_get(ln->reactor), lane_grant_msg, ln);
	place_waiting(ls);
}

/* Reactor 0: a lane's row is written; it is committed in turn with reactor 0's. */
static void
lane_commit_msg(void *arg)
{
	struct lsa_row *rw = arg;
	struct lsa *ls = rw->ls;

	ls->leased--;
	ls->lane_rows++;
	if (rw->status == 0)
		ls->user_blocks += rw->used;
	TAILQ_INSERT_TAIL(&ls->fifo, rw, link);
	commit_kick(ls);
}

static void
lane_row_written(struct raid_io *rio, int status)
{
	struct lsa_row *rw = rio->ctx;

	rw->written = true;
	rw->status = status;
	uraid_reactor_send(uraid_reactor_get(0), lane_commit_msg, rw);
}

static void
lane_seal(struct lsa_lane *ln)
{
	struct lsa_row *rw = ln->open;

	if (rw == NULL)
		return;
	ln->open = NULL;
	ln->inflight++;
	row_write(rw, ln->rch, lane_row_written);
}

/* Its commit is done (status in the row): answer its writes. */
static void
lane_done_msg(void *arg)
{
	struct lsa_row *rw = arg;
	struct lsa_lane *ln = rw->lane;

	for (unsigned i = 0; i < rw->npc; i++)
		req_put(rw->pc[i].req, rw->status);
	ln->inflight--;
	row_free(rw);
}

static void
wake_msg(void *arg UNUSED)
{
	/* Nothing to do: the round this message starts runs reactor 0's poller. */
}

/* One lane poller (or a stop's wake-up) less. Reactor 0's poller waits for the count to
 * reach 0 before the array stops, and that reactor may be asleep: a message wakes it. The
 * message names nothing, since the array may be gone by the time it runs. */
static void
lane_poller_gone(struct lsa *ls)
{
	atomic_fetch_sub(&ls->lane_pollers, 1);
	uraid_reactor_send(uraid_reactor_get(0), wake_msg, NULL);
}

/* A row with writes goes when nothing of the lane's is in flight or it has waited
 * LSA_FILL_US (as on reactor 0). Stopping, the lane gives back its unused rows and, once
 * nothing of it is out, stops its poller. */
static int
lane_poll(void *arg)
{
	struct lsa_lane *ln = arg;
	struct lsa *ls = ln->ls;
	struct lsa_row *rw = ln->open;
	bool online = atomic_load(&ls->a->online), stop = atomic_load(&ls->lanes_stop);
	int busy = URAID_POLLER_IDLE;

	if (rw != NULL && rw->used > 0 &&
	    (ln->inflight == 0 || uraid_now_us() - rw->opened_us >= LSA_FILL_US || stop ||
	     !online)) {
		lane_seal(ln);
		busy = URAID_POLLER_BUSY;
	}
	if (!TAILQ_EMPTY(&ln->wait)) {
		if (!online)
			lane_fail_waiting(ln, -EIO);
		else
			lane_place_waiting(ln);
		busy = URAID_POLLER_BUSY;
	}
	if (ln->open != NULL && ln->open->used > 0)
		busy = URAID_POLLER_BUSY; /* its wait runs out without an event */
	if (!stop || ln->asking || ln->open != NULL || !TAILQ_EMPTY(&ln->wait))
		return busy;
	if (ln->nstock > 0) {
		memcpy(ln->grant, ln->stock, ln->nstock * sizeof(ln->stock[0]));
		ln->ngrant = ln->nstock;
		ln->nstock = 0;
		ln->asking = true; /* until reactor 0 answers, grant[] is its */
		uraid_reactor_send(uraid_reactor_get(0), lane_return_msg, ln);
		return URAID_POLLER_BUSY;
	}
	if (ln->inflight == 0) {
		uraid_poller_unregister(&ln->poller);
		ln->ready = false;
		/* After every message of this lane to reactor 0 was sent (lsa_idle). */
		lane_poller_gone(ls);
		return URAID_POLLER_BUSY;
	}
	return busy;
}

static void
lane_stop_msg(void *arg)
{
	struct lsa_lane *ln = arg;
	struct lsa *ls = ln->ls;

	if (ln->ready)
		lane_poll(ln);
	lane_poller_gone(ls);
}

/* The lane of reactor r (this one), started on its first write; NULL when the array has no
 * lanes or is stopping (its writes then go to reactor 0). */
static struct lsa_lane *
lane_get(struct lsa *ls, unsigned r)
{
	struct lsa_lane *ln = &ls->lanes[r];

	if (ln->ready)
		return ln;
	/* Counted before lanes_stop is looked at, and lsa_stop sets lanes_stop before it looks
	 * at the count (both sequentially consistent): one of the two sees the other. */
	atomic_fetch_add(&ls->lane_pollers, 1);
	if (atomic_load(&ls->lanes_stop) || (ln->rch = raid_owner_channel(ls->a)) == NULL ||
	    (ln->poller = uraid_poller_register(lane_poll, ln, 0)) == NULL) {
		lane_poller_gone(ls);
		return NULL;
	}
	ln->ready = true;
	return ln;
}

static void
lane_arrive(struct lsa_lane *ln, struct stripe_part *part)
{
	struct lsa_req *req = pool_get(&ln->reqs);

	if (req == NULL) {
		stripe_part_finish(part, -ENOMEM);
		return;
	}
	memset(req, 0, sizeof(*req));
	req->part = part;
	req->ls = ln->ls;
	req->pool = &ln->reqs;
	req->pending = 1;
	if (!atomic_load(&ln->ls->a->online)) {
		req_put(req, -EIO);
		return;
	}
	if (!TAILQ_EMPTY(&ln->wait)) {
		TAILQ_INSERT_TAIL(&ln->wait, req, link); /* after those waiting already */
		lane_ask(ln);
		return;
	}
	write_place(ln->ls, ln, req);
}

static void
read_done(struct raid_io *rio, int status)
{
	struct lsa_read *rd = rio->ctx;
	struct lsa *ls = rd->ls;

	if (rd->remote) {
		atomic_fetch_sub_explicit(&ls->rg[rd->rch->reactor].n[rd->rg], 1,
					  memory_order_release);
		raid_io_part_done(rd->parent, status);
		pool_put(&rd->rch->lsa_reads, rd);
		return;
	}
	ls->readers[rd->row]--;
	row_maybe_free(ls, rd->row);
	ls->reads--;
	if (rd->req != NULL)
		req_put(rd->req, status);
	else
		raid_io_part_done(rd->parent, status);
	pool_put(&ls->rds, rd);
}

static void
zero_fill(struct raid_channel *rch, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len)
{
	while (len > 0) {
		uint64_t n = len < rch->buf_bytes ? len : rch->buf_bytes;

		uraid_iov_from_buf(iov, iovcnt, off, rch->zeroes, n);
		off += n;
		len -= n;
	}
}

static uint32_t
map_get(const struct lsa *ls, uint64_t lba)
{
	return atomic_load((_Atomic uint32_t *)&ls->map[lba]);
}

/* Read array blocks [lba0, +num) into iov at byte_off: a member read per run of blocks that
 * sit together in one row, zeroes for unmapped ones. On reactor 0 each read pins its row and
 * is counted in req or (its own I/O) in the parent I/O; on another reactor (rg >= 0: the
 * parity it counted itself under) in the parent, and the row waits in limbo if it dies
 * meanwhile. 0 or -ENOMEM. */
static int
read_runs(struct lsa *ls, struct raid_channel *rch, int rg, uint64_t lba0, uint64_t num,
	  const struct iovec *iov, int iovcnt, uint64_t byte_off, struct lsa_req *req,
	  struct raid_io *parent)
{
	uint32_t bs = ls->a->bdev.block_size;
	uint64_t i = 0;

	while (i < num) {
		uint64_t lba = lba0 + i, n = 1;
		uint32_t p = map_get(ls, lba);
		struct lsa_read *rd;

		if (p == 0) {
			while (i + n < num && map_get(ls, lba + n) == 0)
				n++;
			zero_fill(rch, iov, iovcnt, byte_off + i * bs, n * bs);
			i += n;
			continue;
		}
		while (i + n < num && map_get(ls, lba + n) == p + n &&
		       row_of(ls, p - 1 + n) == row_of(ls, p - 1))
			n++;
		rd = pool_get(rg >= 0 ? &rch->lsa_reads : &ls->rds);
		if (rd == NULL)
			return -ENOMEM;
		memset(rd, 0, offsetof(struct lsa_read, fio));
		memset(&rd->fio, 0, sizeof(rd->fio));
		rd->ls = ls;
		rd->req = req;
		rd->parent = parent;
		rd->rch = rch;
		rd->row = row_of(ls, p - 1);
		if (rg >= 0) {
			rd->remote = true;
			rd->rg = (unsigned)rg;
			atomic_fetch_add_explicit(&ls->rg[rch->reactor].n[rg], 1,
						  memory_order_relaxed);
		} else {
			ls->readers[rd->row]++;
			ls->reads++;
		}
		if (req != NULL)
			req->pending++;
		else
			parent->remaining++;
		rd->fio.bdev = &ls->a->bdev;
		rd->fio.type = URAID_IO_READ;
		rd->fio.iov = (struct iovec *)iov;
		rd->fio.iovcnt = iovcnt;
		raid_phys_read(&rd->rio, rch, &rd->fio, p - 1, n, byte_off + i * bs, read_done, rd);
		i += n;
	}
	return 0;
}

/* A read on a reactor other than 0: counted under the current parity before the map is
 * looked at (rg_quiet's other half), and for as long as its member reads are out. */
static void
read_remote(struct lsa *ls, struct raid_io *rio)
{
	struct uraid_bdev_io *io = rio->io;
	struct raid_channel *rch = rio->rch;
	_Atomic uint64_t *guard;
	unsigned rg;
	int rc;

	if (!atomic_load(&ls->a->online)) {
		rio->status = -EIO;
		return;
	}
	/* The whole lookup runs under one count of its own, so no run's count can be the
	 * first while another's map entries are being read. */
	rg = atomic_load(&ls->rg_epoch) & 1;
	guard = &ls->rg[rch->reactor].n[rg];
	atomic_fetch_add(guard, 1);
	rc = read_runs(ls, rch, (int)rg, io->offset_blocks, io->num_blocks, io->iov, io->iovcnt, 0,
		       NULL, rio);
	atomic_fetch_sub_explicit(guard, 1, memory_order_release);
	if (rc != 0)
		rio->status = rc;
}

static void
read_start(struct lsa *ls, struct lsa_req *req)
{
	struct stripe_part *part = req->part;

	req_put(req, read_runs(ls, ls->rch, -1, part->stripe, part->num_blocks, part->iov,
			       part->iovcnt, part->byte_off, req, NULL));
}

static void
lsa_arrive(void *arg)
{
	struct stripe_part *part = arg;
	struct lsa *ls = part->a->lsa;
	struct lsa_req *req;

	if (ls->rch == NULL)
		ls->rch = raid_owner_channel(ls->a);
	req = ls->rch != NULL ? pool_get(&ls->reqs) : NULL;
	if (req == NULL) {
		stripe_part_finish(part, -ENOMEM);
		return;
	}
	memset(req, 0, sizeof(*req));
	req->part = part;
	req->ls = ls;
	req->pool = &ls->reqs;
	req->pending = 1;
	if (!atomic_load(&ls->a->online)) {
		req_put(req, -EIO);
		return;
	}
	switch (part->mirror_type) {
	case URAID_IO_READ:
		read_start(ls, req);
		break;
	case URAID_IO_WRITE:
		write_place(ls, NULL, req);
		break;
	default: /* UNMAP, WRITE_ZEROES */
		unmap_queue(ls, req);
		break;
	}
}

void
lsa_submit(struct raid_io *rio)
{
	struct uraid_bdev_io *io = rio->io;
	struct lsa *ls = rio->rch->a->lsa;
	struct stripe_part *part;

	if (io->num_blocks == 0 ||
	    (io->type != URAID_IO_READ && io->type != URAID_IO_WRITE &&
	     io->type != URAID_IO_UNMAP && io->type != URAID_IO_WRITE_ZEROES))
		return; /* FLUSH: every acknowledged write is durable already; RESET: nothing
			 * is queued that a reset could drop */
	if (io->type == URAID_IO_READ && rio->rch->reactor == 0 && ls->rch != NULL) {
		/* Reactor 0 is the log's owner: read right here. */
		int rc = read_runs(ls, ls->rch, -1, io->offset_blocks, io->num_blocks, io->iov,
				   io->iovcnt, 0, NULL, rio);

		if (rc != 0)
			rio->status = rc;
		return;
	}
	if (io->type == URAID_IO_READ && rio->rch->reactor != 0) {
		read_remote(ls, rio);
		return;
	}
	/* One part for the whole I/O; stripe is its array block here. */
	part = raid_part_make(rio, PART_WRITE, io->offset_blocks, 0, io->num_blocks, 0);
	if (part == NULL)
		return;
	if (io->type == URAID_IO_WRITE && rio->rch->reactor != 0 && ls->lanes != NULL) {
		struct lsa_lane *ln = lane_get(ls, rio->rch->reactor);

		if (ln != NULL) {
			lane_arrive(ln, part);
			return;
		}
	}
	if (part->origin == uraid_reactor_get(0))
		lsa_arrive(part);
	else
		uraid_reactor_send(uraid_reactor_get(0), lsa_arrive, part);
}

/* --- metadata writes --- */

static void
mw_io_done(struct member_io *mio, int status)
{
	struct lsa_mw *mw = mio->ctx;
	struct lsa *ls = mw->ls;

	if (status != 0)
		raid_member_failed(ls->a, mio->member, status);
	mio_free(mio);
	if (--mw->pending == 0) {
		mw->cb(ls, mw->ctx,
		       mw->status		     ? mw->status
		       : atomic_load(&ls->a->online) ? 0
						     : -EIO);
		free(mw);
	}
}

/* Write one metadata block (area block index blk) to as many members as the array survives
 * losses plus one (meta_copies), the first that take writes from member blk mod n on: the
 * copies rotate, and recovery reads every member and takes the newest. */
static void
meta_write(struct lsa *ls, uint64_t blk, void *buf, void (*cb)(struct lsa *, void *, int),
	   void *ctx)
{
	struct lsa_mw *mw = calloc(1, sizeof(*mw));
	struct raid_array *a = ls->a;

	if (mw == NULL) {
		cb(ls, ctx, -ENOMEM);
		return;
	}
	mw->ls = ls;
	mw->cb = cb;
	mw->ctx = ctx;
	mw->pending = 1;
	for (unsigned j = 0, copies = 0; j < a->l.n && copies < ls->meta_copies; j++) {
		unsigned i = (unsigned)((blk + j) % a->l.n);
		struct member_io *mio;

		if (!raid_member_writable(ls->rch, i))
			continue;
		mio = mio_alloc(ls->rch, i, 1);
		if (mio == NULL) {
			mw->status = -ENOMEM; /* one copy short: the write fails */
			break;
		}
		mio->type = URAID_IO_WRITE;
		mio->flags = URAID_IO_FUA;
		mio->meta = true;
		mio->offset_blocks = ls->meta_off + blk * ls->mb;
		mio->num_blocks = ls->mb;
		mio->iov[0].iov_base = buf;
		mio->iov[0].iov_len = RST_BLOCK;
		mio->iovcnt = 1;
		mio->done = mw_io_done;
		mio->ctx = mw;
		mw->pending++;
		if (mio_submit(mio) != 0) {
			/* The member became unusable just now: the next one takes the copy. */
			mw->pending--;
			mio_free(mio);
			continue;
		}
		copies++;
	}
	if (--mw->pending == 0) {
		cb(ls, ctx, mw->status ? mw->status : atomic_load(&a->online) ? 0 : -EIO);
		free(mw);
	}
}

/* --- commit --- */

struct commit {
	TAILQ_HEAD(, lsa_row) rows;
	struct rst_extent *ext;
	size_t n;
	uint8_t *bufs;
	unsigned blocks, pending;
	int status;
	uint64_t first_seq;
};

static void
commit_finish(struct lsa *ls, struct commit *c)
{
	struct lsa_row *rw;

	if (c->status == 0) {
		if (c->n > 0)
			crash_point(CRASH_TREE_RECORDED);
		for (size_t i = 0; i < c->n; i++)
			apply_extent(ls, &c->ext[i]);
		ls->applied = c->first_seq + c->blocks - 1;
		if (c->blocks == 0)
			ls->applied = ls->seq - 1;
		ls->commits++;
	}
	while ((rw = TAILQ_FIRST(&c->rows)) != NULL) {
		TAILQ_REMOVE(&c->rows, rw, link);
		if (rw->row != UINT64_MAX) {
			ls->state[rw->row] = ROW_USED;
			ls->born[rw->row] = (uint32_t)ls->commits;
			if (ls->zoned)
				ls->grp[group_of(ls, rw->row)].inflight--;
			/* (Over zones it resets the group once every row is dead.) */
			row_maybe_free(ls, rw->row);
		}
		if (rw->lane != NULL) {
			/* Its writes are answered on their own reactor. */
			if (c->status != 0)
				rw->status = c->status;
			uraid_reactor_send(uraid_reactor_get(rw->lane->reactor), lane_done_msg, rw);
			continue;
		}
		for (unsigned i = 0; i < rw->npc; i++) {
			if (rw->pc[i].req != NULL)
				req_put(rw->pc[i].req, c->status ? c->status : rw->status);
		}
		row_free(rw);
	}
	free(c->ext);
	uraid_dma_free(c->bufs);
	free(c);
	ls->committing = false;
	publish(ls);
	if (ls->seq - 1 - ls->ckpt_upto > ls->ring / 2)
		ckpt_kick(ls);
	place_waiting(ls);
	commit_kick(ls);
}

static void
commit_record_done(struct lsa *ls, void *ctx, int status)
{
	struct commit *c = ctx;

	if (status != 0 && c->status == 0)
		c->status = status;
	if (--c->pending == 0)
		commit_finish(ls, c);
}

static int
commit_add(struct commit *c, size_t *cap, const struct rst_extent *x)
{
	if (c->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct rst_extent *e = realloc(c->ext, nc * sizeof(*e));

		if (e == NULL)
			return -ENOMEM;
		c->ext = e;
		*cap = nc;
	}
	c->ext[c->n++] = *x;
	return 0;
}

static void
commit_flushed(struct raid_io *rio, int status)
{
	struct commit *c = rio->ctx;
	struct lsa *ls = rio->rch->a->lsa;
	struct lsa_row *rw;
	size_t cap = 0;

	free(rio);
	if (status != 0)
		c->status = status;
	else
		crash_point(CRASH_TREE_FLUSHED);
	TAILQ_FOREACH(rw, &c->rows, link) {
		if (c->status != 0 || rw->status != 0)
			continue;
		for (unsigned i = 0; i < rw->npc; i++) {
			const struct lsa_piece *pc = &rw->pc[i];
			struct rst_extent x = {pc->lba, pc->len,
					       rw->row == UINT64_MAX
						       ? RST_UNMAPPED
						       : (uint32_t)(rw->row * ls->unit + pc->off),
					       pc->src};

			if (commit_add(c, &cap, &x) != 0)
				c->status = -ENOMEM;
		}
	}
	if (c->status != 0 || c->n == 0) {
		commit_finish(ls, c);
		return;
	}
	c->blocks = (unsigned)((c->n + RST_RECORD_ENTRIES - 1) / RST_RECORD_ENTRIES);
	c->bufs = uraid_dma_alloc(RST_BLOCK, (size_t)c->blocks * RST_BLOCK);
	if (c->bufs == NULL) {
		c->status = -ENOMEM;
		c->blocks = 0;
		commit_finish(ls, c);
		return;
	}
	c->first_seq = ls->seq;
	ls->seq += c->blocks;
	c->pending = c->blocks;
	for (unsigned b = 0; b < c->blocks; b++) {
		static struct rst_record r; /* reactor 0 only */
		size_t first = (size_t)b * RST_RECORD_ENTRIES;

		memset(&r, 0, offsetof(struct rst_record, ent));
		memcpy(r.uuid, ls->a->bdev.uuid, 16);
		r.type = RST_REC_MAP;
		r.seq = c->first_seq + b;
		r.count = (uint32_t)(c->n - first < RST_RECORD_ENTRIES ? c->n - first
								       : RST_RECORD_ENTRIES);
		memcpy(r.ent, c->ext + first, r.count * sizeof(r.ent[0]));
		rst_record_encode(c->bufs + (size_t)b * RST_BLOCK, &r);
	}
	for (unsigned b = 0; b < c->blocks; b++)
		meta_write(ls, RST_ANCHORS + (c->first_seq + b) % ls->ring,
			   c->bufs + (size_t)b * RST_BLOCK, commit_record_done, c);
}

/*
 * An internal request on the physical space (raid_phys_*): the raid_io that runs it, with the
 * request after it at the request's own alignment (16 bytes: a raid_io's size is no multiple
 * of that), and extra bytes after the request; one allocation, freed as the raid_io.
 */
static struct raid_io *
phys_req_alloc(size_t extra, struct uraid_bdev_io **fio)
{
	size_t off = align_up_u64(sizeof(struct raid_io), _Alignof(struct uraid_bdev_io));
	struct raid_io *rio = calloc(1, off + sizeof(struct uraid_bdev_io) + extra);

	if (rio != NULL)
		*fio = (struct uraid_bdev_io *)((uint8_t *)rio + off);
	return rio;
}

static void
commit_kick(struct lsa *ls)
{
	uint64_t limit = (uint64_t)(ls->ring / 4) * RST_RECORD_ENTRIES, entries = 0;
	struct lsa_row *rw;
	struct commit *c;
	bool data = false;
	struct raid_io *rio;
	struct uraid_bdev_io *fio = NULL;

	if (ls->committing || (rw = TAILQ_FIRST(&ls->fifo)) == NULL || !rw->written)
		return;
	/* Room in the ring for the largest batch and a checkpoint record after it (offline,
	 * nothing is written: the batch fails). */
	if (ls->seq + ls->ring / 4 - ls->ckpt_upto > ls->ring && atomic_load(&ls->a->online)) {
		ckpt_kick(ls);
		return;
	}
	c = calloc(1, sizeof(*c));
	rio = phys_req_alloc(0, &fio);
	if (c == NULL || rio == NULL) {
		free(c);
		free(rio);
		return; /* the poller comes back */
	}
	TAILQ_INIT(&c->rows);
	ls->committing = true;
	while ((rw = TAILQ_FIRST(&ls->fifo)) != NULL && rw->written &&
	       (entries == 0 || entries + rw->npc <= limit)) {
		TAILQ_REMOVE(&ls->fifo, rw, link);
		TAILQ_INSERT_TAIL(&c->rows, rw, link);
		entries += rw->npc;
		data |= rw->row != UINT64_MAX && rw->status == 0;
	}
	if (!atomic_load(&ls->a->online)) {
		c->status = -EIO;
		data = false;
	}
	if (!data) {
		rio->rch = ls->rch;
		rio->ctx = c;
		commit_flushed(rio, 0);
		return;
	}
	fio->bdev = &ls->a->bdev;
	fio->type = URAID_IO_FLUSH;
	raid_phys_io(rio, ls->rch, fio, commit_flushed, c);
}

/* --- checkpoints --- */

struct ckpt {
	bool full; /* the checkpoint lsa_checkpoint_all asked for */
	uint64_t gen, upto;
	uint32_t *pages;
	uint8_t *slots;
	uint8_t *bufs;
	size_t n;
	unsigned pending;
	int status;
};

static void
ckpt_end(struct lsa *ls, struct ckpt *k, int status)
{
	if (status == 0) {
		for (size_t i = 0; i < k->n; i++)
			ls->page_slot[k->pages[i]] = k->slots[i];
		ls->ckpt_upto = k->upto;
		ls->checkpoints++;
	} else {
		LOG_ERR("%s: checkpoint of the stripe tree failed: %s", ls->a->bdev.name,
			strerror(-status));
		ls->ckpt_failed = ls->stopping;
		for (size_t i = 0; i < k->n; i++) {
			if (!ls->page_dirty[k->pages[i]]) {
				ls->page_dirty[k->pages[i]] = 1;
				ls->ndirty++;
			}
		}
	}
	if (k->full && ls->full_then != NULL) {
		void (*then)(struct raid_array * a) = ls->full_then;

		ls->full_then = NULL;
		then(ls->a);
	}
	free(k->pages);
	free(k->slots);
	uraid_dma_free(k->bufs);
	free(k);
	ls->checkpointing = false;
	publish(ls);
	commit_kick(ls);
}

static void
ckpt_record_done(struct lsa *ls, void *ctx, int status)
{
	ckpt_end(ls, ctx, status);
}

static void
ckpt_page_done(struct lsa *ls, void *ctx, int status)
{
	struct ckpt *k = ctx;
	struct rst_record r;

	if (status != 0 && k->status == 0)
		k->status = status;
	if (--k->pending != 0)
		return;
	if (k->status != 0) {
		ckpt_end(ls, k, k->status);
		return;
	}
	/* Every page is down: the anchor saying so may go, into the slot of the generation's
	 * parity (the other keeps the last checkpoint if this write tears). Checkpoints take no
	 * number in the ring: the records there run on without gaps. */
	crash_point(CRASH_TREE_PAGES);
	memset(&r, 0, offsetof(struct rst_record, ent));
	memcpy(r.uuid, ls->a->bdev.uuid, 16);
	r.type = RST_REC_CHECKPOINT;
	r.seq = k->gen;
	r.upto = k->upto;
	rst_record_encode(k->bufs, &r);
	meta_write(ls, k->gen % RST_ANCHORS, k->bufs, ckpt_record_done, k);
}

static void
ckpt_kick(struct lsa *ls)
{
	struct ckpt *k;
	size_t j = 0;

	if (ls->checkpointing)
		return;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return;
	k->n = ls->ndirty;
	k->pages = calloc(k->n + 1, sizeof(*k->pages));
	k->slots = calloc(k->n + 1, 1);
	k->bufs = uraid_dma_alloc(RST_BLOCK, (k->n + 1) * RST_BLOCK);
	if (k->pages == NULL || k->slots == NULL || k->bufs == NULL) {
		free(k->pages);
		free(k->slots);
		uraid_dma_free(k->bufs);
		free(k);
		return;
	}
	ls->checkpointing = true;
	k->full = ls->full_asked;
	ls->full_asked = false;
	k->gen = ++ls->ckpt_gen;
	k->upto = ls->applied;
	/* The pages as the map is now: every record up to `applied` (none is in flight
	 * unapplied below it). Slot: the one not holding the page's newest copy. */
	for (uint32_t p = 0; p < ls->npages && j < k->n; p++) {
		if (!ls->page_dirty[p])
			continue;
		ls->page_dirty[p] = 0;
		k->pages[j] = p;
		k->slots[j] = (uint8_t)!ls->page_slot[p];
		rst_page_encode(k->bufs + (j + 1) * RST_BLOCK, ls->a->bdev.uuid, p, k->gen,
				ls->logical, ls->map);
		j++;
	}
	k->n = j;
	ls->ndirty = 0;
	k->pending = 1;
	for (size_t i = 0; i < k->n; i++) {
		k->pending++;
		meta_write(ls, RST_ANCHORS + ls->ring + 2ull * k->pages[i] + k->slots[i],
			   k->bufs + (i + 1) * RST_BLOCK, ckpt_page_done, k);
	}
	ckpt_page_done(ls, k, 0);
}

/* --- the cleaner --- */

static void clean_place(struct lsa *ls);
static void clean_done(struct lsa *ls);

static void
clean_read_put(struct lsa *ls, int status)
{
	if (status != 0 && ls->cl_status == 0)
		ls->cl_status = status;
	if (--ls->cl_pending != 0)
		return;
	ls->readers[ls->cl_victim]--;
	row_maybe_free(ls, ls->cl_victim);
	ls->cl_reading = false;
	if (ls->cl_status != 0) {
		LOG_WARNING("%s: the cleaner could not read row %lu: %s", ls->a->bdev.name,
			    (unsigned long)ls->cl_victim, strerror(-ls->cl_status));
		clean_done(ls);
		return;
	}
	ls->cl_next = 0;
	clean_place(ls);
}

static void
clean_read_done(struct raid_io *rio, int status)
{
	struct lsa *ls = rio->ctx;

	free(rio);
	clean_read_put(ls, status);
}

/* The victim's blocks are all placed (or it is given up): its buffer lives on in the moves. */
static void
clean_done(struct lsa *ls)
{
	struct clean_buf *cb = ls->cl_buf;

	ls->cl_buf = NULL;
	if (--cb->refs == 0)
		pool_put(&ls->cl_bufs, cb);
	ls->cl_active = false;
	ls->rows_cleaned += ls->cl_status == 0;
	publish(ls);
	place_waiting(ls);
}

/* Place the victim's blocks that are still live, as moves; resumed by the poller when no row
 * was free. */
static void
clean_place(struct lsa *ls)
{
	uint32_t bs = ls->a->bdev.block_size;
	uint64_t base = ls->cl_victim * ls->unit;

	while (ls->cl_next < ls->unit) {
		uint64_t p = base + ls->cl_next, n = 1;
		uint32_t lba1 = ls->rmap[p];
		struct iovec iov;
		int64_t done;

		if (lba1 == 0) {
			ls->cl_next++;
			continue;
		}
		while (ls->cl_next + n < ls->unit && ls->rmap[p + n] == lba1 + n)
			n++;
		iov.iov_base = ls->cl_buf->data + ls->cl_next * bs;
		iov.iov_len = n * bs;
		done = place(ls, NULL, NULL, lba1 - 1, n, &iov, 1, 0, (uint32_t)p);
		if (done <= 0)
			return; /* no row: the poller resumes */
		ls->moved_blocks += (uint64_t)done;
		ls->cl_next += (uint64_t)done;
	}
	clean_done(ls);
}

/* A victim's worth (a row, or over zoned members a group): greedy, 1 - u; with cost-benefit,
 * (1 - u) * age / (1 + u), which leaves young ones to die by themselves (u: its live share;
 * age: commits since it was written, born the count then). */
static double
victim_score(const struct lsa *ls, double u, uint32_t born)
{
	if (!ls->cost_benefit)
		return 1 - u;
	return (1 - u) * ((double)(uint32_t)((uint32_t)ls->commits - born) + 1) / (1 + u);
}

/* Over zoned members space comes back a group at a time: the victim is a full group (fewest
 * live blocks, or best cost-benefit, scored as rows are), emptied row by row. */
static uint64_t
pick_victim_zoned(struct lsa *ls)
{
	for (int pass = 0; pass < 2; pass++) {
		uint64_t best = UINT64_MAX, base;
		double best_sc = -1;

		if (ls->zvictim != UINT64_MAX) {
			base = ls->zvictim * ls->gunits;
			for (uint64_t i = 0; i < ls->gusable; i++) {
				if (ls->state[base + i] == ROW_USED)
					return base + i;
			}
			/* Every row moved out or moving: it is reset once the moves are in. */
			ls->zvictim = UINT64_MAX;
		}
		if (pass == 1)
			break;
		for (uint64_t g = 0; g < ls->ngroups; g++) {
			const struct lsa_group *G = &ls->grp[g];
			double sc;

			/* (Only a group whose live blocks fit in the free rows: its rows come
			 * back only once every move out of it is in.) */
			if (G->state != GRP_FULL || G->inflight || G->busy || G->live == 0 ||
			    G->live >= (uint64_t)ls->gusable * ls->unit ||
			    (G->live + ls->unit - 1) / ls->unit + 1 > ls->nfree)
				continue;
			sc = victim_score(
				ls, (double)G->live / ((double)ls->gusable * (double)ls->unit),
				G->born);
			if (sc > best_sc) {
				best_sc = sc;
				best = g;
			}
		}
		if (best == UINT64_MAX)
			break;
		ls->zvictim = best;
	}
	return UINT64_MAX;
}

/* The row to clean: the best victim_score. One scan keeps the best LSA_CANDIDATES rows,
 * taken in turn while they are still worth it. */
static uint64_t
pick_victim(struct lsa *ls)
{
	if (ls->zoned)
		return pick_victim_zoned(ls);
	while (ls->ncand > 0) {
		uint64_t r = ls->cand[--ls->ncand];

		if (ls->state[r] == ROW_USED && ls->live[r] < ls->unit)
			return r;
	}
	for (uint64_t r = 0; r < ls->rows; r++) {
		double sc;
		unsigned i;

		if (ls->state[r] != ROW_USED || ls->live[r] >= ls->unit)
			continue;
		sc = victim_score(ls, (double)ls->live[r] / (double)ls->unit, ls->born[r]);
		if (ls->ncand == LSA_CANDIDATES && sc <= ls->cand_score[0])
			continue;
		/* cand[] ascending by score: the best is taken last. */
		if (ls->ncand == LSA_CANDIDATES) {
			memmove(ls->cand, ls->cand + 1, (LSA_CANDIDATES - 1) * sizeof(ls->cand[0]));
			memmove(ls->cand_score, ls->cand_score + 1,
				(LSA_CANDIDATES - 1) * sizeof(ls->cand_score[0]));
			ls->ncand--;
		}
		for (i = ls->ncand; i > 0 && ls->cand_score[i - 1] > sc; i--) {
			ls->cand[i] = ls->cand[i - 1];
			ls->cand_score[i] = ls->cand_score[i - 1];
		}
		ls->cand[i] = r;
		ls->cand_score[i] = sc;
		ls->ncand++;
	}
	return ls->ncand > 0 ? ls->cand[--ls->ncand] : UINT64_MAX;
}

/* Below LSA_CLEAN_LOW free rows, clean a victim row: read its live blocks, then place them. */
static void
clean_kick(struct lsa *ls)
{
	uint64_t best = UINT64_MAX, best_live = ls->unit;
	uint32_t bs = ls->a->bdev.block_size;

	if (ls->cl_active) {
		if (!ls->cl_reading && ls->cl_next < ls->unit)
			clean_place(ls);
		return;
	}
	if (ls->stopping || ls->nfree >= ls->clean_low)
		return;
	best = pick_victim(ls);
	if (best == UINT64_MAX) {
		/* Nothing left to move but what sits in the open row: its moves are what frees
		 * their victims, so it goes now, full or not. */
		if (ls->open != NULL && ls->open->used > 0 && !ls->open->has_user)
			row_seal(ls);
		return;
	}
	best_live = ls->live[best];
	if (g_rebuild_opts.max_bw_mb_sec != 0) {
		/* Background work shares process_max_bandwidth_mb_sec with rebuild and scrub,
		 * unless writes wait for the space. */
		uint64_t now = uraid_now_us();
		double cap = (double)ls->unit * bs * 4;

		ls->cl_tokens +=
			(double)(now - ls->cl_last_us) * (double)g_rebuild_opts.max_bw_mb_sec;
		if (ls->cl_tokens > cap)
			ls->cl_tokens = cap;
		ls->cl_last_us = now;
		if (ls->cl_tokens < (double)best_live * bs && TAILQ_EMPTY(&ls->wait) &&
		    ls->nfree > ls->reserve)
			return; /* the poller comes back */
		ls->cl_tokens -= (double)best_live * bs;
	}
	ls->cl_buf = pool_get(&ls->cl_bufs);
	if (ls->cl_buf == NULL)
		return;
	ls->cl_buf->refs = 1; /* the cleaner's, until clean_done */
	ls->cl_active = ls->cl_reading = true;
	ls->cl_victim = best;
	ls->state[best] = ROW_CLEANED;
	ls->cl_status = 0;
	ls->cl_next = 0;
	ls->readers[best]++;
	ls->cl_pending = 1; /* guard */
	for (uint64_t i = 0; i < ls->unit;) {
		uint64_t p = best * ls->unit + i, n = 1;
		struct raid_io *rio;
		struct uraid_bdev_io *fio;

		if (ls->rmap[p] == 0) {
			i++;
			continue;
		}
		while (i + n < ls->unit && ls->rmap[p + n] != 0)
			n++;
		rio = phys_req_alloc(sizeof(struct iovec), &fio);
		if (rio == NULL) {
			ls->cl_status = -ENOMEM;
			break;
		}
		fio->bdev = &ls->a->bdev;
		fio->type = URAID_IO_READ;
		fio->iov = (struct iovec *)(fio + 1);
		fio->iov[0].iov_base = ls->cl_buf->data;
		fio->iov[0].iov_len = ls->unit * bs;
		fio->iovcnt = 1;
		ls->cl_pending++;
		raid_phys_read(rio, ls->rch, fio, p, n, i * bs, clean_read_done, ls);
		i += n;
	}
	clean_read_put(ls, 0);
}

/* --- the poller and life cycle --- */

static bool
lsa_idle(const struct lsa *ls)
{
	return ls->open == NULL && TAILQ_EMPTY(&ls->fifo) && !ls->committing &&
	       !ls->checkpointing && !ls->cl_active && ls->reads == 0 && TAILQ_EMPTY(&ls->wait) &&
	       ls->zresets == 0 && ls->zr_pending == 0 && ls->limbo_n == 0 && ls->leased == 0 &&
	       ls->lane_asks == 0 && atomic_load(&ls->lane_pollers) == 0;
}

static void
publish(struct lsa *ls)
{
	atomic_store_explicit(&ls->pub.mapped, ls->mapped, memory_order_relaxed);
	atomic_store_explicit(&ls->pub.nfree, ls->nfree, memory_order_relaxed);
	atomic_store_explicit(&ls->pub.user, ls->user_blocks, memory_order_relaxed);
	atomic_store_explicit(&ls->pub.moved, ls->moved_blocks, memory_order_relaxed);
	atomic_store_explicit(&ls->pub.cleaned, ls->rows_cleaned, memory_order_relaxed);
	atomic_store_explicit(&ls->pub.commits, ls->commits, memory_order_relaxed);
	atomic_store_explicit(&ls->pub.ckpts, ls->checkpoints, memory_order_relaxed);
	atomic_store_explicit(&ls->pub.seq, ls->seq, memory_order_relaxed);
	atomic_store_explicit(&ls->pub.resets, ls->zone_resets, memory_order_relaxed);
	atomic_store_explicit(&ls->pub.deferred, ls->deferred, memory_order_relaxed);
	atomic_store_explicit(&ls->pub.lane_rows, ls->lane_rows, memory_order_relaxed);
	atomic_store_explicit(&ls->pub.nopen, ls->nopen, memory_order_relaxed);
}

/* --- rebuilds onto members of a zoned array --- */

static void zr_reset_next(struct lsa *ls);

static void
zr_reset_done(struct lsa *ls, struct zop *z)
{
	int status = z->status;

	free(z);
	ls->zr_pending--;
	if (status == -ENOMEM)
		ls->zr_next--; /* that group again, from the poller */
	else
		zr_reset_next(ls);
}

/* Reset the targets' zones one group after another; then the rebuild may walk, and groups
 * opened from now on include the targets. */
static void
zr_reset_next(struct lsa *ls)
{
	struct zop *z;

	if (ls->zr_state != ZR_RESET)
		return;
	if (ls->zr_next == 0) {
		/* Nothing of a target is reset before the superblocks say it is being rebuilt:
		 * until then a restart could take it for the member it was, whole. */
		for (uint64_t m = ls->zr_targets; m; m &= m - 1) {
			unsigned t = (unsigned)__builtin_ctzll(m);

			if (ls->a->sb.slots[t].state != SB_SLOT_REBUILDING ||
			    memcmp(ls->a->sb.slots[t].uuid, ls->a->slot_uuid[t], 16) != 0)
				return; /* the poller comes back */
		}
	}
	if (ls->zr_next >= ls->ngroups) {
		ls->zr_pin = UINT64_MAX;
		if (ls->zr_targets == 0) {
			ls->zr_state = ZR_NONE; /* the rebuild ended while this ran */
			return;
		}
		ls->zr_state = ZR_READY;
		atomic_store_explicit(&ls->zr_epoch, ls->epoch_next, memory_order_release);
		LOG_NOTE("%s: zones of slot mask 0x%lx reset; the rebuild walks %lu zone groups",
			 ls->a->bdev.name, (unsigned long)ls->zr_targets,
			 (unsigned long)ls->ngroups);
		raid_rebuild_resume(ls->a);
		return;
	}
	z = zop_new(ls, ls->zr_next++, zr_reset_done);
	if (z == NULL) {
		ls->zr_next--;
		return; /* the poller comes back */
	}
	ls->zr_pending++;
	zop_issue(ls, z, ls->zr_targets, URAID_ZONE_RESET);
	zop_put(z);
}

static void
zoned_poll(struct lsa *ls)
{
	if (ls->zretry) {
		ls->zretry = false;
		for (uint64_t g = 0; g < ls->ngroups; g++) {
			group_maybe_reset(ls, g);
			group_maybe_finish(ls, g);
		}
	}
	if (ls->zr_state == ZR_RESET && ls->zr_pending == 0)
		zr_reset_next(ls); /* after an allocation failure, or a restart of the setup */
}

void
lsa_rebuild_begin(struct raid_array *a, uint64_t targets)
{
	struct lsa *ls = a->lsa;

	if (ls == NULL || !ls->zoned)
		return;
	/* The targets take no writes until their zones are reset; groups open now (or opened
	 * meanwhile) go on without them and are walked once written to their end. */
	atomic_store_explicit(&ls->zr_epoch, UINT32_MAX, memory_order_release);
	ls->zr_targets = targets;
	ls->zr_state = ZR_RESET;
	ls->zr_pin = UINT64_MAX;
	ls->zr_next = 0;
	if (ls->zr_pending == 0)
		zr_reset_next(ls);
	/* else the reset in flight comes back to zr_reset_done, which goes on from 0 */
}

bool
lsa_rebuild_ready(struct raid_array *a)
{
	return a->lsa == NULL || !a->lsa->zoned || a->lsa->zr_state == ZR_READY;
}

void
lsa_rebuild_end(struct raid_array *a)
{
	struct lsa *ls = a->lsa;
	uint64_t pin;

	if (ls == NULL || !ls->zoned || ls->zr_state == ZR_NONE)
		return;
	ls->zr_targets = 0;
	if (ls->zr_state != ZR_READY)
		return; /* the setup ends when its reset in flight is back */
	pin = ls->zr_pin;
	ls->zr_state = ZR_NONE;
	ls->zr_pin = UINT64_MAX;
	atomic_store_explicit(&ls->zr_epoch, UINT32_MAX, memory_order_release);
	if (pin != UINT64_MAX)
		group_maybe_reset(ls, pin);
}

/* Which units a rebuild onto zoned members walks: every row below the capacity of the groups
 * opened before it began (dead ones too, so each target zone is written in order to its
 * end), once they are written to their end (else -EAGAIN: the walk waits); none of groups
 * opened since (the targets took their writes) or free. The group the walk is in is not
 * reset under it. */
int
lsa_unit_rebuild(struct raid_array *a, uint64_t unit)
{
	struct lsa *ls = a->lsa;
	const struct lsa_group *G;
	uint64_t g;

	if (ls == NULL || !ls->zoned)
		return lsa_unit_live(a, unit);
	g = group_of(ls, unit);
	if (g >= ls->ngroups)
		return 0;
	if (ls->zr_pin != g) {
		uint64_t was = ls->zr_pin;

		ls->zr_pin = g;
		if (was != UINT64_MAX)
			group_maybe_reset(ls, was);
	}
	G = &ls->grp[g];
	if (atomic_load_explicit(&G->epoch, memory_order_relaxed) >
		    atomic_load_explicit(&ls->zr_epoch, memory_order_relaxed) ||
	    G->state == GRP_FREE || G->state == GRP_RESETTING || unit % ls->gunits >= ls->gusable)
		return 0;
	if (G->zopen) {
		/* Still taking rows (without the targets): no more, so that its zones are
		 * written to their end or finished and the walk can write them in order; the
		 * row being filled in it (the cleaner's, perhaps) goes now. */
		group_close(ls, g);
		if (ls->open != NULL && group_of(ls, ls->open->row) == g)
			row_seal(ls);
		group_maybe_finish(ls, g);
	}
	return G->zopen ? -EAGAIN : 1;
}

/* Any thread: unit (a stripe, or a strip on a member for mirrors) is in a zone group opened
 * since the running rebuild began, whose rows all went to its targets too. */
bool
lsa_zoned_fresh(struct raid_array *a, uint64_t orow)
{
	struct lsa *ls = a->lsa;
	uint64_t g;
	uint32_t since;

	if (ls == NULL || !ls->zoned)
		return false;
	since = atomic_load_explicit(&ls->zr_epoch, memory_order_acquire);
	g = orow / ls->zrows;
	return since != UINT32_MAX && g < ls->ngroups &&
	       atomic_load_explicit(&ls->grp[g].epoch, memory_order_acquire) > since;
}

static int
lsa_poll(void *arg)
{
	struct lsa *ls = arg;
	struct lsa_row *rw = ls->open;
	bool busy = false;

	/* A row with user data goes when nothing is in flight (no row being written or waiting
	 * for its commit: nothing will bring more writes soon) or it has waited LSA_FILL_US;
	 * the cleaner's moves alone wait for the row to fill. */
	if (rw != NULL && rw->used > 0 &&
	    ((rw->has_user && ((ls->writing == 0 && TAILQ_EMPTY(&ls->fifo) && !ls->committing) ||
			       uraid_now_us() - rw->opened_us >= LSA_FILL_US)) ||
	     ls->stopping || !atomic_load(&ls->a->online))) {
		row_seal(ls);
		busy = true;
	}
	if (ls->limbo_n > 0 && rg_advance(ls))
		busy = true;
	if (!TAILQ_EMPTY(&ls->wait) || ls->lane_asks > 0) {
		place_waiting(ls);
		busy = true;
	}
	if (ls->nfree < ls->clean_low || ls->cl_active)
		clean_kick(ls);
	if (ls->zoned)
		zoned_poll(ls);
	commit_kick(ls);
	if (ls->stopping && ls->cl_active && !ls->cl_reading) {
		/* Stopping: the blocks not moved yet stay where they are. */
		ls->cl_next = ls->unit;
		clean_done(ls);
	}
	if (ls->full_asked && !ls->checkpointing)
		ckpt_kick(ls); /* lsa_checkpoint_all's, after the one that was in flight */
	if (ls->stopping && lsa_idle(ls)) {
		/* A last checkpoint, unless one failed while stopping (the records stay). */
		if ((ls->ndirty > 0 || ls->applied > ls->ckpt_upto) && !ls->ckpt_failed &&
		    atomic_load(&ls->a->online)) {
			ckpt_kick(ls);
			return URAID_POLLER_BUSY;
		}
		uraid_poller_unregister(&ls->poller);
		ls->on_stopped(ls->a);
		return URAID_POLLER_BUSY;
	}
	return busy ? URAID_POLLER_BUSY : URAID_POLLER_IDLE;
}

static void
lsa_start_msg(void *arg)
{
	struct lsa *ls = arg;

	if (ls->rch == NULL)
		ls->rch = raid_owner_channel(ls->a);
	ls->poller = uraid_poller_register(lsa_poll, ls, 0);
	if (ls->ndirty > 0 || ls->applied > ls->ckpt_upto)
		ckpt_kick(ls); /* what the recovery replayed goes into the pages */
}

void
lsa_start(struct raid_array *a)
{
	uraid_reactor_send(uraid_reactor_get(0), lsa_start_msg, a->lsa);
}

void
lsa_stop(struct raid_array *a, void (*then)(struct raid_array *a))
{
	struct lsa *ls = a->lsa;

	ls->stopping = true;
	atomic_store(&ls->lanes_stop, true);
	ls->on_stopped = then;
	if (ls->poller == NULL) {
		then(a);
		return;
	}
	/* A lane's reactor may be asleep: wake each, counted as a poller until it has run. */
	for (unsigned r = 1; ls->lanes != NULL && r < uraid_reactor_count(); r++) {
		atomic_fetch_add(&ls->lane_pollers, 1);
		uraid_reactor_send(uraid_reactor_get(r), lane_stop_msg, &ls->lanes[r]);
	}
}

bool
lsa_unit_live(struct raid_array *a, uint64_t unit)
{
	return a->lsa == NULL || unit >= a->lsa->rows || a->lsa->state[unit] != ROW_FREE;
}

uint64_t
lsa_unit_check_blocks(struct raid_array *a, uint64_t unit)
{
	struct lsa *ls = a->lsa;
	uint64_t base;

	if (ls == NULL)
		return layout_stripe_data_blocks(&a->l);
	if (unit >= ls->rows || (ls->state[unit] != ROW_USED && ls->state[unit] != ROW_CLEANED))
		return 0; /* free, or being written and not committed */
	base = unit * ls->unit;
	for (uint64_t b = ls->unit; b > 0; b--) {
		if (ls->rmap[base + b - 1] != 0)
			return b;
	}
	return 0;
}

void
lsa_checkpoint_all(struct raid_array *a, void (*then)(struct raid_array *a))
{
	struct lsa *ls = a->lsa;

	for (uint32_t p = 0; p < ls->npages; p++) {
		if (!ls->page_dirty[p]) {
			ls->page_dirty[p] = 1;
			ls->ndirty++;
		}
	}
	ls->full_then = then;
	ls->full_asked = true;
	ckpt_kick(ls); /* (one in flight: the poller starts it after that one) */
}

void
lsa_get_info(struct raid_array *a, struct uraid_array_info *info)
{
	struct lsa *ls = a->lsa;

	if (ls == NULL)
		return;
	/* Over zoned members only the rows below the zones' capacity count. */
	info->log.physical_blocks = ls->zoned ? ls->ngroups * ls->gusable * ls->unit : ls->phys;
	info->log.mapped_blocks = atomic_load_explicit(&ls->pub.mapped, memory_order_relaxed);
	info->log.free_rows = atomic_load_explicit(&ls->pub.nfree, memory_order_relaxed);
	info->log.free_blocks = info->log.free_rows * ls->unit;
	info->log.rows = ls->zoned ? ls->ngroups * ls->gusable : ls->rows;
	info->log.user_blocks = atomic_load_explicit(&ls->pub.user, memory_order_relaxed);
	info->log.moved_blocks = atomic_load_explicit(&ls->pub.moved, memory_order_relaxed);
	info->log.rows_cleaned = atomic_load_explicit(&ls->pub.cleaned, memory_order_relaxed);
	info->log.rows_deferred = atomic_load_explicit(&ls->pub.deferred, memory_order_relaxed);
	info->log.lane_rows = atomic_load_explicit(&ls->pub.lane_rows, memory_order_relaxed);
	info->log.commits = atomic_load_explicit(&ls->pub.commits, memory_order_relaxed);
	info->log.checkpoints = atomic_load_explicit(&ls->pub.ckpts, memory_order_relaxed);
	info->log.record_seq = atomic_load_explicit(&ls->pub.seq, memory_order_relaxed);
	info->log.map_bytes = 4 * (ls->logical + ls->phys) + 21 * ls->rows + 2ull * ls->npages;
	info->log.cost_benefit = ls->cost_benefit;
	if (ls->zoned) {
		info->log.zone_groups = ls->ngroups;
		info->log.zone_group_stripes = ls->gusable;
		info->log.zone_resets = atomic_load_explicit(&ls->pub.resets, memory_order_relaxed);
		info->log.open_zone_groups =
			atomic_load_explicit(&ls->pub.nopen, memory_order_relaxed);
		info->log.map_bytes += ls->ngroups * sizeof(*ls->grp);
	}
}

void
lsa_free(struct raid_array *a)
{
	struct lsa *ls = a->lsa;

	if (ls == NULL)
		return;
	free(ls->map);
	free(ls->rmap);
	free(ls->live);
	free(ls->readers);
	free(ls->born);
	free(ls->limbo);
	uraid_dma_free(ls->rg);
	free(ls->state);
	free(ls->page_dirty);
	free(ls->page_slot);
	free(ls->grp);
	uraid_dma_free(ls->zero);
	if (ls->cl_buf != NULL)
		uraid_dma_free(ls->cl_buf);
	pool_fini(&ls->cl_bufs);
	pool_fini(&ls->reqs);
	pool_fini(&ls->rds);
	if (ls->lanes != NULL) {
		for (unsigned r = 0; r < URAID_MAX_REACTORS; r++)
			pool_fini(&ls->lanes[r].reqs);
		uraid_dma_free(ls->lanes);
	}
	free(ls->lane_asked);
	free(ls->lane_cursor);
	free(ls);
	a->lsa = NULL;
}

/* --- creation and recovery (control thread) --- */

static int
area_zero(struct lsa *ls, struct uraid_bdev_desc *desc)
{
	uint32_t bs = ls->a->bdev.block_size;
	uint64_t total = ls->a->ppl_blocks, chunk = LSA_CHUNK_BYTES / bs;
	uint8_t *buf = uraid_dma_alloc(RST_BLOCK, LSA_CHUNK_BYTES);
	int rc = 0;

	if (buf == NULL)
		return -ENOMEM;
	memset(buf, 0, LSA_CHUNK_BYTES);
	for (uint64_t o = 0; o < total && rc == 0; o += chunk) {
		uint64_t n = total - o < chunk ? total - o : chunk;

		rc = uraid_bdev_io_sync(desc, URAID_IO_WRITE, buf, ls->meta_off + o, n);
	}
	if (rc == 0)
		rc = uraid_bdev_io_sync(desc, URAID_IO_FLUSH, NULL, 0, 0);
	uraid_dma_free(buf);
	return rc;
}

/* Read metadata blocks [first, +count) of desc's area into buf. */
static int
area_read(struct lsa *ls, struct uraid_bdev_desc *desc, uint64_t first, uint64_t count,
	  uint8_t *buf)
{
	uint64_t per = LSA_CHUNK_BYTES / RST_BLOCK;

	for (uint64_t o = 0; o < count; o += per) {
		uint64_t n = count - o < per ? count - o : per;
		int rc = uraid_bdev_io_sync(desc, URAID_IO_READ, buf + o * RST_BLOCK,
					    ls->meta_off + (first + o) * ls->mb, n * ls->mb);

		if (rc != 0)
			return rc;
	}
	return 0;
}

static int
load(struct lsa *ls, char *err, size_t err_len)
{
	struct raid_array *a = ls->a;
	uint64_t *best_seq = calloc(ls->ring, sizeof(*best_seq));
	uint64_t *page_gen = calloc(ls->npages, sizeof(*page_gen));
	uint8_t *best = uraid_dma_alloc(RST_BLOCK, (size_t)ls->ring * RST_BLOCK);
	uint8_t *buf = uraid_dma_alloc(RST_BLOCK, ((size_t)RST_ANCHORS + ls->ring) * RST_BLOCK);
	uint8_t *pbuf = uraid_dma_alloc(RST_BLOCK, LSA_CHUNK_BYTES);
	struct rst_record *r = malloc(sizeof(*r));
	uint64_t S = 0, S_gen = 0, max_seq = 0, replayed = 0, bad = 0, readable = 0;
	unsigned sources = 0;
	char why[128];
	int rc = 0;

	if (!best_seq || !page_gen || !best || !buf || !pbuf || !r) {
		rc = -ENOMEM;
		goto out;
	}
	/* The ring and the anchors of every member first: which checkpoint finished last (S and
	 * its generation) must be known before the pages are taken. */
	for (unsigned m = 0; m < a->l.n; m++) {
		struct uraid_bdev_desc *desc = a->members[m].desc;

		if (desc == NULL)
			continue;
		if (area_read(ls, desc, 0, RST_ANCHORS + ls->ring, buf) != 0) {
			LOG_WARNING("%s: cannot read the stripe tree ring of %s", a->bdev.name,
				    a->members[m].name);
			continue;
		}
		readable |= 1ull << m;
		sources++;
		for (uint32_t an = 0; an < RST_ANCHORS; an++) {
			if (rst_record_decode(buf + (size_t)an * RST_BLOCK, RST_BLOCK, a->bdev.uuid,
					      ls->logical, ls->phys, r, why, sizeof(why)) != 0 ||
			    r->type != RST_REC_CHECKPOINT || r->seq % RST_ANCHORS != an)
				continue;
			if (r->upto > S || (r->upto == S && r->seq > S_gen)) {
				S = r->upto;
				S_gen = r->seq;
			}
			if (r->seq > ls->ckpt_gen)
				ls->ckpt_gen = r->seq;
		}
		for (uint32_t pos = 0; pos < ls->ring; pos++) {
			const uint8_t *blk = buf + (size_t)(RST_ANCHORS + pos) * RST_BLOCK;

			if (rst_record_decode(blk, RST_BLOCK, a->bdev.uuid, ls->logical, ls->phys,
					      r, why, sizeof(why)) != 0 ||
			    r->type != RST_REC_MAP) {
				bad++;
				continue;
			}
			if (r->seq % ls->ring != pos) {
				bad++;
				continue;
			}
			if (r->seq > best_seq[pos]) {
				best_seq[pos] = r->seq;
				memcpy(best + (size_t)pos * RST_BLOCK, blk, RST_BLOCK);
			}
		}
	}
	/* Then the pages: for each, the newest copy a finished checkpoint wrote. A checkpoint
	 * the power cut short may have put a page on fewer members than the array needs (the
	 * rest lost with the cut): taken now, and its slot kept, it would be the only copy when
	 * the next checkpoint's anchor lets the records under it go, and lost with one more
	 * member. Its records are still in the ring (nothing moved the anchor past them), so the
	 * page is taken as S left it, they are replayed over it, and the next checkpoint writes
	 * it again with a generation above every copy found. */
	for (unsigned m = 0; m < a->l.n; m++) {
		struct uraid_bdev_desc *desc = a->members[m].desc;
		uint64_t per = LSA_CHUNK_BYTES / RST_BLOCK, total = 2ull * ls->npages;

		if (!(readable & (1ull << m)))
			continue;
		for (uint64_t o = 0; o < total; o += per) {
			uint64_t n = total - o < per ? total - o : per;

			if (area_read(ls, desc, RST_ANCHORS + ls->ring + o, n, pbuf) != 0)
				break;
			for (uint64_t j = 0; j < n; j++) {
				uint32_t page = (uint32_t)((o + j) / 2);
				uint64_t gen;

				if (rst_page_decode(pbuf + j * RST_BLOCK, RST_BLOCK, a->bdev.uuid,
						    page, ls->logical, ls->phys, &gen, NULL, why,
						    sizeof(why)) != 0)
					continue;
				/* (Numbers go on past every generation found, kept or not.) */
				if (gen > ls->ckpt_gen)
					ls->ckpt_gen = gen;
				if (gen > S_gen && !ls->page_dirty[page]) {
					/* ... and written again, above it. */
					ls->page_dirty[page] = 1;
					ls->ndirty++;
				}
				if (gen <= page_gen[page] || gen > S_gen)
					continue;
				rst_page_decode(pbuf + j * RST_BLOCK, RST_BLOCK, a->bdev.uuid, page,
						ls->logical, ls->phys, &gen,
						ls->map + (uint64_t)page * RST_PAGE_ENTRIES, why,
						sizeof(why));
				page_gen[page] = gen;
				ls->page_slot[page] = (uint8_t)((o + j) % 2);
			}
		}
	}
	if (sources == 0) {
		err_set(err, err_len, "no member's stripe tree could be read");
		rc = -EIO;
		goto out;
	}
	for (uint32_t pos = 0; pos < ls->ring; pos++) {
		if (best_seq[pos] == 0)
			continue;
		if (best_seq[pos] > max_seq)
			max_seq = best_seq[pos];
	}
	/* Replay on the bare map: until the records after S are applied it may name one
	 * physical block twice. Each page a record touches goes into the next checkpoint. */
	for (uint64_t s = S + 1;; s++) {
		uint32_t pos = (uint32_t)(s % ls->ring);

		if (best_seq[pos] != s)
			break;
		rst_record_decode(best + (size_t)pos * RST_BLOCK, RST_BLOCK, a->bdev.uuid,
				  ls->logical, ls->phys, r, why, sizeof(why));
		for (uint32_t i = 0; i < r->count; i++)
			replay_extent(ls, &r->ent[i]);
		replayed++;
	}
	/* The reverse map and the counts follow from the map. */
	for (uint64_t lba = 0; lba < ls->logical; lba++) {
		uint32_t p = ls->map[lba];

		if (p == 0)
			continue;
		if (ls->rmap[p - 1] != 0) {
			err_set(err, err_len,
				"stripe tree damaged: array blocks %lu and %lu share physical "
				"block "
				"%lu",
				(unsigned long)(ls->rmap[p - 1] - 1), (unsigned long)lba,
				(unsigned long)(p - 1));
			rc = -EBADMSG;
			goto out;
		}
		ls->rmap[p - 1] = (uint32_t)lba + 1;
		ls->live[row_of(ls, p - 1)]++;
		ls->mapped++;
	}
	/* Numbers go on after the highest found, records and checkpoints alike (so records left
	 * after a gap never join a later chain). */
	if (S > max_seq)
		max_seq = S;
	ls->seq = max_seq + 1;
	ls->applied = max_seq;
	ls->ckpt_upto = S;
	LOG_NOTE("%s: stripe tree loaded: %lu blocks mapped, %lu records replayed after "
		 "checkpoint %lu (%lu ring blocks invalid or empty)",
		 a->bdev.name, (unsigned long)ls->mapped, (unsigned long)replayed, (unsigned long)S,
		 (unsigned long)bad);
out:
	free(best_seq);
	free(page_gen);
	uraid_dma_free(best);
	uraid_dma_free(buf);
	uraid_dma_free(pbuf);
	free(r);
	return rc;
}

int
lsa_member_fits(const struct raid_array *a, struct uraid_bdev *b, char *err, size_t err_len)
{
	const char *name = uraid_bdev_get_name(b);
	uint64_t zs, cap, conv, meta_end = a->ppl_offset_blocks + a->ppl_blocks;

	if (!uraid_bdev_is_zoned(b))
		return 0; /* conventional members take any write */
	zs = uraid_bdev_get_zone_size(b);
	cap = uraid_bdev_get_zone_capacity(b);
	conv = uraid_bdev_get_conventional_zones(b) * zs;
	if (a->sb_zone_blocks == 0) {
		err_set(err, err_len,
			"'%s' is zoned: only a log array created over zoned members takes one",
			name);
		return -EINVAL;
	}
	if (zs != a->sb_zone_blocks || cap != a->sb_zone_capacity) {
		err_set(err, err_len,
			"'%s' has zones of %lu blocks (capacity %lu), the array's are of %lu "
			"(capacity %lu)",
			name, (unsigned long)zs, (unsigned long)cap,
			(unsigned long)a->sb_zone_blocks, (unsigned long)a->sb_zone_capacity);
		return -EINVAL;
	}
	if (conv < meta_end || conv > a->data_offset_blocks) {
		err_set(err, err_len,
			"'%s' has %lu blocks of conventional zones; the array keeps %lu blocks of "
			"superblock and stripe tree there and its data from block %lu",
			name, (unsigned long)conv, (unsigned long)meta_end,
			(unsigned long)a->data_offset_blocks);
		return -EINVAL;
	}
	return 0;
}

/* Rows, groups and limits over zoned members; the over-provisioning needs room for the
 * cleaner to empty a whole group. */
static int
zoned_geometry(struct lsa *ls, char *err, size_t err_len)
{
	struct raid_array *a = ls->a;
	uint64_t S = a->l.strip_blocks, upo = 1;
	uint32_t limit = UINT32_MAX;

	ls->zone_blocks = a->sb_zone_blocks;
	if (a->l.level == URAID_RAID10) {
		if (a->l.n % a->l.copies != 0) {
			err_set(err, err_len,
				"raid10 over zoned members needs a member count that is a multiple "
				"of the copies (%u members, %u copies)",
				a->l.n, a->l.copies);
			return -EINVAL;
		}
		upo = a->l.n / a->l.copies; /* rows side by side on one strip of the members */
	}
	if (ls->zone_blocks % S != 0 || a->sb_zone_capacity % S != 0 || a->sb_zone_capacity < S ||
	    a->data_offset_blocks % ls->zone_blocks != 0 ||
	    a->l.member_blocks % ls->zone_blocks != 0) {
		err_set(err, err_len,
			"zone geometry (%lu blocks, capacity %lu) does not fit the "
			"strips and data area",
			(unsigned long)ls->zone_blocks, (unsigned long)a->sb_zone_capacity);
		return -EINVAL;
	}
	ls->zrows = ls->zone_blocks / S;
	ls->gunits = (uint32_t)(ls->zrows * upo);
	ls->gusable = (uint32_t)(a->sb_zone_capacity / S * upo);
	ls->ngroups = ls->rows / ls->gunits;
	for (unsigned m = 0; m < a->l.n; m++) {
		struct uraid_bdev *b;
		uint32_t o, act;

		if (a->members[m].desc == NULL)
			continue;
		b = uraid_bdev_desc_get_bdev(a->members[m].desc);
		if (!uraid_bdev_is_zoned(b))
			continue;
		o = uraid_bdev_get_max_open_zones(b);
		act = uraid_bdev_get_max_active_zones(b);
		if (o != 0 && o < limit)
			limit = o;
		if (act != 0 && act < limit)
			limit = act;
	}
	if (limit < 2) {
		err_set(err, err_len,
			"the members allow %u open zone; a log array needs 2 (one taking new "
			"stripes, one for a rebuild to write)",
			limit);
		return -EINVAL;
	}
	ls->kopen = limit - 1 < LSA_OPEN_MAX ? limit - 1 : LSA_OPEN_MAX;
	/* (A rebuild may close a group still open: its rows not handed out are lost until
	 * it is reset.) */
	ls->reserve = 2 * ls->gusable + LSA_CLEAN_RESERVE;
	ls->clean_low = ls->reserve + ls->gusable + LSA_CLEAN_LOW;
	ls->zvictim = UINT64_MAX;
	ls->zr_pin = UINT64_MAX;
	atomic_init(&ls->zr_epoch, UINT32_MAX);
	ls->grp = calloc(ls->ngroups, sizeof(*ls->grp));
	ls->zero = uraid_dma_alloc(RST_BLOCK, LSA_CHUNK_BYTES);
	if (ls->grp == NULL || ls->zero == NULL)
		return -ENOMEM;
	memset(ls->zero, 0, LSA_CHUNK_BYTES);
	return 0;
}

/* Member m's descriptor if it is a zoned member whose zones the tree speaks for (not one
 * being rebuilt: its rebuild resets its zones). */
static struct uraid_bdev_desc *
zoned_desc(struct raid_array *a, unsigned m)
{
	struct uraid_bdev_desc *desc = a->members[m].desc;

	if (desc == NULL || !uraid_bdev_is_zoned(uraid_bdev_desc_get_bdev(desc)) ||
	    atomic_load(&a->members[m].state) == URAID_MEMBER_REBUILDING)
		return NULL;
	return desc;
}

/* Control thread: the zones of every zoned member in line with the tree. A new array resets
 * every zone that holds anything. An existing one resets the zones of groups the tree maps
 * nothing into; of the others, up to kopen with the most room left are opened again (every
 * member's zone padded with zeroes to the furthest any of them was written, whole rows: rows
 * a crash left half written are dead, and new rows follow), and the rest are finished (their
 * rows not written are lost until the group is reset). Without that, a crash could leave no
 * free row for the cleaner to start from. A member being rebuilt is left out: its rebuild
 * resets its zones. */
static int
zones_start(struct lsa *ls, bool fresh, char *err, size_t err_len)
{
	struct raid_array *a = ls->a;
	uint32_t bs = a->bdev.block_size;
	uint64_t S = a->l.strip_blocks, upo = ls->gunits / ls->zrows, capr = ls->gusable / upo;
	uint64_t ng = ls->ngroups;
	struct uraid_zone_info *zi = calloc(ng * a->l.n, sizeof(*zi));
	uint64_t *wrote = calloc(ng, sizeof(*wrote)); /* rows (of strips) written, + 1 if known */
	uint8_t *reopen = calloc(ng, 1);
	bool said = false;
	int rc = 0;

	if (zi == NULL || wrote == NULL || reopen == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t r = 0; r < ls->rows; r++)
		ls->grp[group_of(ls, r)].live += ls->live[r];
	for (unsigned m = 0; m < a->l.n && rc == 0; m++) {
		struct uraid_bdev_desc *desc = zoned_desc(a, m);
		struct uraid_zone_info *z = zi + m * ng;

		if (desc == NULL)
			continue;
		rc = uraid_bdev_io_sync(desc, URAID_IO_GET_ZONE_INFO, z, a->data_offset_blocks, ng);
		for (uint64_t g = 0; g < ng && rc == 0; g++) {
			uint64_t rows = (z[g].write_pointer - z[g].zone_id + S - 1) / S;

			if (z[g].state == URAID_ZONE_NOT_WP || z[g].state == URAID_ZONE_OFFLINE ||
			    z[g].state == URAID_ZONE_READ_ONLY) {
				err_set(err, err_len, "zone %lu of %s's data is %s",
					(unsigned long)(z[g].zone_id / ls->zone_blocks),
					a->members[m].name,
					z[g].state == URAID_ZONE_NOT_WP ? "conventional"
									: "offline or read-only");
				rc = -EINVAL;
				said = true;
			}
			if (z[g].state == URAID_ZONE_FULL)
				rows = capr;
			if (rows + 1 > wrote[g])
				wrote[g] = rows + 1;
		}
	}
	/* The groups opened again: most room left first. */
	for (unsigned k = 0; !fresh && rc == 0 && k < ls->kopen; k++) {
		uint64_t best = UINT64_MAX;

		for (uint64_t g = 0; g < ng; g++) {
			uint64_t hi = 0;

			if (reopen[g] || ls->grp[g].live == 0 || wrote[g] == 0 ||
			    wrote[g] - 1 >= capr || (best != UINT64_MAX && wrote[g] >= wrote[best]))
				continue;
			for (uint64_t i = 0; i < ls->gusable; i++)
				hi = ls->live[g * ls->gunits + i] ? i + 1 : hi;
			if ((wrote[g] - 1) * upo >= hi) /* (always, unless the tree is off) */
				best = g;
		}
		if (best == UINT64_MAX)
			break;
		reopen[best] = 1;
	}
	for (unsigned m = 0; m < a->l.n && rc == 0; m++) {
		struct uraid_bdev_desc *desc = zoned_desc(a, m);
		struct uraid_zone_info *z = zi + m * ng;

		if (desc == NULL)
			continue;
		for (uint64_t g = 0; g < ng && rc == 0; g++) {
			bool keep = !fresh && ls->grp[g].live > 0;
			uint64_t wp = z[g].write_pointer - z[g].zone_id, to = (wrote[g] - 1) * S;

			if (!keep && z[g].state != URAID_ZONE_EMPTY)
				rc = uraid_bdev_io_sync(desc, URAID_IO_ZONE_MANAGEMENT, NULL,
							z[g].zone_id, URAID_ZONE_RESET);
			else if (keep && !reopen[g] && z[g].state != URAID_ZONE_FULL)
				rc = uraid_bdev_io_sync(desc, URAID_IO_ZONE_MANAGEMENT, NULL,
							z[g].zone_id, URAID_ZONE_FINISH);
			while (keep && reopen[g] && wp < to && rc == 0) {
				uint64_t n = to - wp < LSA_CHUNK_BYTES / bs ? to - wp
									    : LSA_CHUNK_BYTES / bs;

				rc = uraid_bdev_io_sync(desc, URAID_IO_WRITE, ls->zero,
							z[g].zone_id + wp, n);
				wp += n;
			}
		}
		if (rc != 0 && !said)
			err_set(err, err_len, "cannot bring the zones of %s in line: %s",
				a->members[m].name, strerror(-rc));
	}
	for (uint64_t g = 0; g < ng && rc == 0; g++) {
		struct lsa_group *G = &ls->grp[g];

		if (G->live == 0) {
			G->state = GRP_FREE;
			ls->nfree += ls->gusable;
			continue;
		}
		G->state = GRP_FULL;
		G->alloc = ls->gusable;
		if (reopen[g]) {
			G->state = GRP_OPEN;
			G->alloc = (uint32_t)((wrote[g] - 1) * upo);
			G->zopen = true;
			ls->nzopen++;
			ls->gopen[ls->nopen++] = g;
			atomic_store(&G->epoch, ++ls->epoch_next);
			ls->nfree += ls->gusable - G->alloc;
		}
		for (uint64_t i = 0; i < G->alloc; i++)
			G->dead += ls->live[g * ls->gunits + i] == 0;
	}
out:
	free(zi);
	free(wrote);
	free(reopen);
	return rc;
}

int
lsa_create(struct raid_array *a, const struct uraid_array_opts *o, const struct sb *from, char *err,
	   size_t err_len)
{
	uint32_t bs = a->bdev.block_size;
	struct lsa *ls;
	int rc = 0;

	if (a->l.level == URAID_CONCAT) {
		err_set(err, err_len, "concat has no stripes to log into: use raid0");
		return -EINVAL;
	}
	if (!a->has_sb) {
		err_set(err, err_len,
			"consistency policy log keeps its tree on the members: it "
			"needs superblocks");
		return -EINVAL;
	}
	ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return -ENOMEM;
	a->lsa = ls;
	ls->a = a;
	ls->unit = layout_stripe_data_blocks(&a->l);
	ls->cl_bufs =
		(struct obj_pool){NULL, sizeof(struct clean_buf) + ls->unit * bs, CACHE_LINE_BYTES};
	ls->phys = layout_array_blocks(&a->l);
	ls->rows = ls->phys / ls->unit;
	ls->mb = RST_BLOCK / bs;
	/* Copies of every tree block: one more than the members the level can lose. raid10
	 * loses up to one member per group of copies, so its blocks go to every member, as
	 * raid1's. */
	ls->meta_copies = a->l.level == URAID_RAID0				    ? 1
			  : a->l.level == URAID_RAID1 || a->l.level == URAID_RAID10 ? a->l.n
										    : a->l.m + 1;
	/* draid loses one more member per distributed spare (each full one covers a slot). */
	if (a->draid != NULL)
		ls->meta_copies += a->draid->s;
	ls->meta_off = META_PPL_OFFSET / bs;
	TAILQ_INIT(&ls->fifo);
	TAILQ_INIT(&ls->wait);
	ls->reqs = (struct obj_pool){NULL, sizeof(struct lsa_req), 0};
	ls->rds = (struct obj_pool){NULL, sizeof(struct lsa_read), 0};
	if (ls->phys >= UINT32_MAX) {
		err_set(err, err_len, "a log array holds at most %u blocks (%lu here)",
			UINT32_MAX - 1, (unsigned long)ls->phys);
		rc = -EINVAL;
		goto err;
	}
	ls->reserve = LSA_CLEAN_RESERVE;
	ls->clean_low = LSA_CLEAN_LOW;
	ls->zoned = a->sb_zone_blocks != 0;
	if (ls->zoned && (rc = zoned_geometry(ls, err, err_len)) != 0)
		goto err;
	if (from != NULL) {
		ls->logical = from->log_array_blocks;
		ls->ring = from->log_ring_blocks;
		ls->cost_benefit = (from->flags & SB_FLAG_LOG_COST_BENEFIT) != 0;
	} else {
		ls->cost_benefit = o->log_cost_benefit;
		unsigned pct = o->overprovision_pct ? o->overprovision_pct : 10;
		/* Over zoned members only rows below the zones' capacity hold data, and the
		 * cleaner needs room to empty a whole group while others are open. */
		uint64_t usable = ls->zoned ? ls->ngroups * ls->gusable : ls->rows;
		uint64_t min_rows =
			ls->zoned ? ls->clean_low + ((uint64_t)ls->kopen + 1) * ls->gusable
				  : LSA_MIN_RESERVE_ROWS;
		uint64_t keep;

		if (pct > 50) {
			err_set(err, err_len, "over-provisioning is 1 to 50 percent, got %u", pct);
			rc = -EINVAL;
			goto err;
		}
		keep = usable * ls->unit * pct / 100;
		if (keep < min_rows * ls->unit)
			keep = min_rows * ls->unit;
		if (usable < 2 * min_rows) {
			err_set(err, err_len,
				"members too small for a log array: %lu stripes%s, it needs at "
				"least %lu",
				(unsigned long)usable, ls->zoned ? " in their zones" : "",
				(unsigned long)(2 * min_rows));
			rc = -EINVAL;
			goto err;
		}
		ls->logical = usable * ls->unit - keep;
		ls->ring = ring_blocks(ls->logical);
	}
	ls->npages = rst_page_count(ls->logical);
	a->sb_log_ring = ls->ring;
	a->lsa_cost_benefit = ls->cost_benefit;
	a->ppl_offset_blocks = ls->meta_off;
	a->ppl_blocks = (uint32_t)(((uint64_t)RST_ANCHORS + ls->ring + 2ull * ls->npages) * ls->mb);
	if (from == NULL && ls->meta_off + a->ppl_blocks > a->data_offset_blocks) {
		err_set(err, err_len, "the stripe tree area does not fit before the data");
		rc = -EINVAL;
		goto err;
	}
	for (unsigned m = 0; m < a->l.n && rc == 0; m++) {
		if (a->members[m].desc != NULL)
			rc = lsa_member_fits(a, uraid_bdev_desc_get_bdev(a->members[m].desc), err,
					     err_len);
	}
	if (rc != 0)
		goto err;
	ls->map = calloc(ls->logical, sizeof(*ls->map));
	ls->rmap = calloc(ls->phys, sizeof(*ls->rmap));
	ls->live = calloc(ls->rows, sizeof(*ls->live));
	ls->readers = calloc(ls->rows, sizeof(*ls->readers));
	ls->born = calloc(ls->rows, sizeof(*ls->born));
	ls->limbo = calloc(ls->rows, sizeof(*ls->limbo));
	ls->rg = uraid_dma_alloc(CACHE_LINE_BYTES, URAID_MAX_REACTORS * sizeof(*ls->rg));
	if (ls->rg != NULL)
		memset(ls->rg, 0, URAID_MAX_REACTORS * sizeof(*ls->rg));
	ls->state = calloc(ls->rows, 1);
	ls->page_dirty = calloc(ls->npages, 1);
	ls->page_slot = calloc(ls->npages, 1);
	if (!ls->map || !ls->rmap || !ls->live || !ls->readers || !ls->born || !ls->limbo ||
	    !ls->rg || !ls->state || !ls->page_dirty || !ls->page_slot) {
		rc = -ENOMEM;
		err_set(err, err_len, "no memory for the stripe tree (%lu blocks)",
			(unsigned long)ls->logical);
		goto err;
	}
	if (from == NULL) {
		/* Nothing from an earlier array on these members may look like ours. */
		for (unsigned m = 0; m < a->l.n && rc == 0; m++)
			rc = area_zero(ls, a->members[m].desc);
		if (rc != 0) {
			err_set(err, err_len, "cannot clear the stripe tree area: %s",
				strerror(-rc));
			goto err;
		}
		ls->seq = 1;
	} else {
		rc = load(ls, err, err_len);
		if (rc != 0)
			goto err;
	}
	for (uint64_t r = 0; r < ls->rows; r++) {
		ls->state[r] = ls->live[r] ? ROW_USED : ROW_FREE;
		ls->nfree += ls->live[r] == 0 && !ls->zoned;
	}
	if (ls->zoned) {
		/* A rebuild onto zoned members starts over after a restart: it resets their
		 * zones and walks from the first group. */
		for (unsigned m = 0; m < a->l.n; m++) {
			if (atomic_load(&a->members[m].state) == URAID_MEMBER_REBUILDING) {
				atomic_store(&a->members[m].rebuilt, 0);
				atomic_store(&a->members[m].durable, 0);
			}
		}
		rc = zones_start(ls, from == NULL, err, err_len);
		if (rc != 0)
			goto err;
	}
	if (!ls->zoned) {
		ls->lanes =
			uraid_dma_alloc(CACHE_LINE_BYTES, URAID_MAX_REACTORS * sizeof(*ls->lanes));
		ls->lane_asked = calloc(URAID_MAX_REACTORS, sizeof(*ls->lane_asked));
		ls->lane_cursor = calloc(URAID_MAX_REACTORS, sizeof(*ls->lane_cursor));
		if (ls->lanes == NULL || ls->lane_asked == NULL || ls->lane_cursor == NULL) {
			rc = -ENOMEM;
			err_set(err, err_len, "no memory for the array's write lanes");
			goto err;
		}
		memset(ls->lanes, 0, URAID_MAX_REACTORS * sizeof(*ls->lanes));
		for (unsigned r = 0; r < URAID_MAX_REACTORS; r++) {
			ls->lanes[r].ls = ls;
			ls->lanes[r].reactor = r;
			ls->lanes[r].reqs = (struct obj_pool){NULL, sizeof(struct lsa_req), 0};
			TAILQ_INIT(&ls->lanes[r].wait);
			ls->lane_cursor[r] = ls->rows / URAID_MAX_REACTORS * r;
		}
		ls->lane_keep = ls->rows >= 256 ? 2 : 1;
	}
	a->bdev.num_blocks = ls->logical;
	publish(ls);
	return 0;
err:
	lsa_free(a);
	return rc;
}

void
lsa_channel_init(struct raid_channel *rch)
{
	rch->lsa_reads = (struct obj_pool){NULL, sizeof(struct lsa_read), 0};
}
