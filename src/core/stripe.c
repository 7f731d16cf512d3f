/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The owner side of arrays: every operation that must see a stripe consistently runs on the
 * stripe's owner reactor, one at a time per stripe, in arrival order. No locks.
 *
 * Theory of operation.
 *
 * Ownership. Stripe s (for mirrors: strip s) belongs to reactor s mod R. Parts of user I/O
 * are sent there by message; the owner keeps a queue per busy stripe (a hash table of
 * stripe heads in its channel) and runs the head operation to completion before the next.
 * Two writes to one stripe from different reactors are therefore applied one after the
 * other on every member, so parity always matches data and copies always match each other.
 *
 * A parity write is a state machine:
 *
 *     PLAN --(reads needed)--> READ --> COMPUTE --> WRITE --> DONE
 *       \------(full stripe)----------^      ^
 *     READ --(a read failed: member marked failed)--> PLAN (now degraded)
 *
 * PLAN takes the rows r0..r1 (blocks within the strip) the write touches and picks, as md
 * does, the cheaper of
 *   - full stripe: every data strip is rewritten; parity from the new data alone, no reads;
 *   - read-modify-write (RMW): read old data of the touched strips and old parity, then
 *     parity' = parity + G[parity][i] * (old_i + new_i);
 *   - reconstruct-write (RCW): read the untouched data rows, then encode parity afresh;
 * by counting member reads (RMW: touched strips + m; RCW: strips not fully rewritten). With a
 * member missing it uses reconstruct-write over all survivors: read every surviving column,
 * decode the missing ones, lay the new data over them, encode, and write the surviving
 * columns; data for a missing member lives on in parity. A full stripe needs none of that
 * (unless a rebuilding member takes the write, or a log policy records the columns): it is
 * encoded from the new data and written to the members there are.
 *
 * Merging: when the queue holds writes that do not overlap and together cover the whole
 * stripe, they run as one full-stripe write (no reads), counted in stats as merged.
 *
 * Degraded reads read every surviving column over the rows wanted, decode, and copy out.
 * Mirror writes write every usable copy; one whose strip is idle on the owner runs without an
 * operation or a head (stripe_mirror_direct, below), its bucket holding the strip, and on any
 * other reactor likewise under a claim on the strip's slot (claims, below). Parity writes
 * and degraded reads of an array without a log run on another reactor under such a claim
 * too, with a head of their own there. Checks read a stripe whole and compare.
 *
 * Journal write-back: a write first logs its data (INTENT, see op_intent) and is answered;
 * the operation goes on with private copies of the data and keeps the stripe until its
 * update is home. Reads of such an array pass through the stripe's owner as gates (parts
 * answered as soon as no operation holds the stripe) before going to the members, so a read
 * issued after a write was answered sees it.
 *
 * Buffers: new data is used in place when a column's rows sit in one 32-byte-aligned iovec
 * and member writes go straight from the user's iovecs; strip-sized scratch from the
 * channel's pool holds old data, parity and anything that had to be assembled.
 */
#include <stdlib.h>

#include "core.h"

#define BUCKETS	  4096
#define MAX_MERGE 64
#define MAX_COLS  (RAID_MAX_MEMBERS + RAID_MAX_PARITY)

struct stripe_op;

struct stripe_head {
	uint64_t stripe;
	TAILQ_HEAD(, stripe_part) queue;
	struct stripe_op *active;
	struct stripe_head *next;
	unsigned ppl_live;	      /* log entries of this stripe not retired yet */
	struct stripe_op *ppl_waiter; /* the operation waiting for them to retire */
	_Atomic uint32_t *claim;      /* a claimant's head: the owner's slot it holds (else NULL) */
	bool bm_held; /* a claimant's head counted into its bitmap region's writes */
};

struct stripe_bucket {
	struct stripe_head *heads;
	struct mirror_run *direct; /* mirrored writes running without a head */
};

/* A claim slot's word (claims, below): FREE, OWNER, a claimant (its reactor + 1 in the
 * bits of CLAIM_BY, its writes out in those of CLAIM_COUNT), or GIVEN; and the WAIT mark. */
#define CLAIM_FREE     0u
#define CLAIM_COUNT    0xffffu
#define CLAIM_BY_SHIFT 16
#define CLAIM_BY       (0xffu << CLAIM_BY_SHIFT)
#define CLAIM_OWNER    (1u << 29)
#define CLAIM_GIVEN    (1u << 30)
#define CLAIM_WAIT     (1u << 31)
/* A bucket's hold on its slot (rch->claim_state, while the channel is claiming): none (the
 * bucket is empty), held, or waiting for a claimant. */
enum bucket_claim { B_NONE, B_HELD, B_WAIT };

enum op_state { OP_INTENT, OP_PLAN, OP_READ, OP_COMPUTE, OP_LOG, OP_WRITE, OP_DONE };
enum op_mode { MODE_FULL, MODE_RMW, MODE_RCW, MODE_DEGRADED };

struct stripe_op {
	struct raid_channel *rch;
	struct raid_array *a;
	struct stripe_head *sh;
	enum part_kind kind;
	unsigned nparts;
	enum op_state state;
	enum op_mode mode;
	unsigned pending;
	int status;
	bool restart;
	bool to_repl;	  /* member I/Os go to the member's replacement */
	bool scattered;	  /* MODE_FULL from one part: parity straight from its iovecs */
	bool encode_late; /* MODE_FULL: parity encoded between the data and parity writes */
	uint32_t flags;
	bool bm_held; /* counted into its bitmap region's writes */
	TAILQ_ENTRY(stripe_op) wait_link;
	uint64_t r0, r1;
	uint64_t lost;	      /* columns that cannot be read here */
	uint64_t targets;     /* ... of which these are written (rebuilding members) */
	uint64_t copyback;    /* draid drain: columns read from the spare, written to the slot */
	uint64_t both;	      /* ... a fresh row's columns read there, written to both places */
	uint64_t col_set;     /* columns whose col[] is set */
	uint64_t col_scratch; /* ... and of those, which hold pool buffers */
	uint64_t old_set;
	/* ppl: this operation's log entries (ppl_n of them), their header blocks and the
	 * partial parity they carry */
	struct ppl_entry **ppl_ents;
	unsigned ppl_n;
	uint64_t ppl_t; /* the data columns its entries name as written */
	uint8_t *ppl_hdr;
	bool ppl_hdr_pooled; /* ppl_hdr is one of the channel's strip buffers */
	uint8_t *pp[RAID_MAX_PARITY];
	uint64_t log_op; /* its update's number in the log (0: none yet) */
	/* journal write-back (op_intent): the user's parts (wb_user, below) are acknowledged
	 * once their data was logged; parts[] then holds private copies. wb_n entries carry
	 * that data. */
	bool wb_copied, wb_acked, wb_short;
	unsigned wb_n;				   /* wb_ents[0, wb_n) */
	struct ppl_entry *wb_pre[RAID_MAX_PARITY]; /* parity j's entry, taken with the data's */
	bool ppl_borrowed;			   /* ppl_ents[] are wb_pre's */
	uint8_t *wb_hdr, *wb_img;		   /* one allocation, wb_hdr first */
	/* Not reset when an operation starts (stripe_run_next clears what is above, per
	 * operation): each of these is written before it is read. */
	uint8_t *col[MAX_COLS];
	uint8_t *old[RAID_MAX_MEMBERS];
	struct ppl_entry *ppl_ents_in[RAID_MAX_PARITY + 1]; /* ppl_ents when they fit */
	struct ppl_entry *wb_ents[2 * RAID_MAX_PARITY + 1];
	struct stripe_part *wb_user[MAX_MERGE]; /* set while wb_copied */
	struct stripe_part *parts[MAX_MERGE];	/* [0, nparts): take_parts */
	/* new rows of data column i < k: op_map_parts (or whole, for checks and rebuilds);
	 * mirrors and copies never look */
	uint64_t lo[RAID_MAX_MEMBERS], hi[RAID_MAX_MEMBERS];
};

static void op_advance(struct stripe_op *op);

unsigned
stripe_owner(struct raid_array *a UNUSED, uint64_t stripe)
{
	unsigned n = uraid_owner_count();

	return n == 1 ? 0 : (unsigned)(stripe % n);
}

/* --- stripe table --- */

void
stripe_pool_init(struct raid_channel *rch)
{
	rch->ops = (struct obj_pool){NULL, sizeof(struct stripe_op), 0};
	rch->heads = (struct obj_pool){NULL, sizeof(struct stripe_head), 0};
}

static int claims_start(struct raid_channel *rch);

int
stripe_channel_init(struct raid_channel *rch)
{
	struct raid_array *a = rch->a;

	rch->buckets = calloc(BUCKETS, sizeof(*rch->buckets));
	rch->bucket_mask = BUCKETS - 1;
	if (rch->buckets == NULL)
		return -ENOMEM;
	/* An owner channel made again (after it was put) holds its slots from the start. */
	if (a->claims != NULL && rch->reactor < uraid_owner_count() &&
	    atomic_load_explicit(&a->claims_on[rch->reactor], memory_order_relaxed))
		return claims_start(rch);
	return 0;
}

void
stripe_channel_fini(struct raid_channel *rch)
{
	/* Heads that outlived their operations: stripes whose log entries never retired (the
	 * array went offline with a write answered and not home; the next start applies it). */
	for (size_t b = 0; rch->buckets != NULL && b <= rch->bucket_mask; b++) {
		struct stripe_head *sh, *next;

		for (sh = rch->buckets[b].heads; sh != NULL; sh = next) {
			next = sh->next;
			pool_put(&rch->heads, sh);
		}
	}
	free(rch->buckets);
	rch->buckets = NULL;
	free(rch->claim_wait);
	free(rch->claim_state);
	free(rch->claim_runs);
	free(rch->claim_heads);
	rch->claim_runs = NULL;
	rch->claim_heads = NULL;
	rch->claim_wait = NULL;
	rch->claim_state = NULL;
	pool_fini(&rch->heads);
}

static inline size_t
bucket_index(uint64_t stripe)
{
	return (stripe * 0x9e3779b97f4a7c15ull >> 40) & (BUCKETS - 1);
}

static inline struct stripe_bucket *
bucket_of(struct raid_channel *rch, uint64_t stripe)
{
	return &rch->buckets[bucket_index(stripe)];
}

/* The head of stripe in list (a bucket's, or a claimant's slot's), or NULL. Inline: a
 * mirrored write asks at its start and its end, and nearly always the bucket has no head. */
static inline struct stripe_head *
sh_find(struct stripe_head *list, uint64_t stripe)
{
	struct stripe_head *sh;

	for (sh = list; sh != NULL; sh = sh->next) {
		if (sh->stripe == stripe)
			return sh;
	}
	return NULL;
}

/* A mirrored write in list on strip, over blocks [start, +num) (num 0: any blocks). */
static inline bool
runs_overlap(const struct mirror_run *r, uint64_t strip, uint64_t start, uint64_t num)
{
	for (; r != NULL; r = r->next) {
		if (r->strip == strip &&
		    (num == 0 || (r->start < start + num && start < r->start + r->num)))
			return true;
	}
	return false;
}

static bool bucket_hold(struct raid_channel *rch, struct stripe_bucket *b, bool wait);
static void bucket_let_go(struct raid_channel *rch, struct stripe_bucket *b);

/* A new head of stripe at the front of list, holding claim (NULL: an owner's head); NULL when
 * none can be made. */
static struct stripe_head *
sh_new(struct raid_channel *rch, struct stripe_head **list, uint64_t stripe,
       _Atomic uint32_t *claim)
{
	struct stripe_head *sh = pool_get(&rch->heads);

	if (sh == NULL)
		return NULL;
	sh->active = NULL;
	sh->stripe = stripe;
	sh->ppl_live = 0;
	sh->ppl_waiter = NULL;
	sh->claim = claim;
	sh->bm_held = false;
	TAILQ_INIT(&sh->queue);
	sh->next = *list;
	*list = sh;
	return sh;
}

/* The head of stripe, made if it has none; NULL when none can be made. */
static struct stripe_head *
sh_get(struct raid_channel *rch, uint64_t stripe)
{
	struct stripe_bucket *b = bucket_of(rch, stripe);
	struct stripe_head *sh = sh_find(b->heads, stripe);

	if (sh != NULL)
		return sh;
	if ((sh = sh_new(rch, &b->heads, stripe, NULL)) != NULL && rch->claiming)
		bucket_hold(rch, b, true); /* (stripe_run_next waits until it holds) */
	return sh;
}

static void slot_unclaim(_Atomic uint32_t *slot);

/* Head sh done with: out of its list, and its bucket's (or claimant's) hold let go. */
static void
sh_remove(struct raid_channel *rch, struct stripe_head *sh)
{
	_Atomic uint32_t *claim = sh->claim;
	struct stripe_bucket *b = bucket_of(rch, sh->stripe);
	struct stripe_head **pp =
		claim != NULL ? &rch->claim_heads[bucket_index(sh->stripe)] : &b->heads;

	while (*pp != sh)
		pp = &(*pp)->next;
	*pp = sh->next;
	if (sh->bm_held)
		bitmap_exit(rch->a, rch->reactor, sh->stripe);
	pool_put(&rch->heads, sh);
	if (claim != NULL)
		slot_unclaim(claim);
	else if (rch->claiming)
		bucket_let_go(rch, b);
}

/*
 * --- claims ---
 *
 * A mirrored write of one strip submitted on a reactor that does not own the strip takes a
 * claim and writes the copies from there: no message to the owner and none back. So does a
 * parity write (or zeroes, or a degraded read) of one stripe of an array of policy none or
 * bitmap (the logs keep their state on the owners), as a whole operation: the claimant
 * keeps a head for the stripe in its own table (rch->claim_heads, one hold on the slot per
 * head); its writes of the stripe that come while it holds one queue there, as on an owner,
 * unless the slot is marked WAIT (then they go to the owner, which runs them after the slot
 * is handed back). A claimed operation excludes the owner's of the stripe as a mirrored
 * write does, and there is one claimant at a time, so a stripe's parity is always updated by
 * one operation at a time, wherever it runs. Under the bitmap a write is claimed only where
 * its region's bit is on disk already (bitmap_try_enter; setting a bit is the owner's to wait
 * for), and the claimant's head counts itself into the region's writes until it goes, so
 * the region is not cleared under any of the operations queued on it. A parity part is not
 * claimed from a thread on the owner's own core (inside SPDK: a bdevperf job on the app
 * thread's core): nothing runs in parallel there, and such claims measured 17% slower at
 * QD128 than the message (perf: the operations' buffers and member requests missed the
 * cache more often).
 *
 * Each owner has a table of claim slots (a->claims, BUCKETS words per owner), slot i
 * standing for the strips of its bucket i. A slot is FREE; held by the OWNER; held by one
 * claimant reactor, with the number of its claimed writes (or heads) out; or GIVEN (a
 * claimant let go to the waiting owner). An owner waiting for a claimant marks it WAIT.
 *
 *  - The owner holds bucket i's slot while the bucket has a head or a direct write, so a
 *    claimed write excludes everything the owner runs on the strip (queued writes, rebuilds,
 *    copies, checks) and the other way round.
 *  - A claimant takes a FREE slot with one compare-and-swap. A slot it holds already it takes
 *    again (a plain store: no one else changes a held slot but for the WAIT mark) unless a
 *    mirrored write of its own out on the same strip overlaps (rch->claim_runs lists them).
 *    Else, and whenever the slot is marked WAIT, its write goes to the owner as a part.
 *    Overlapping writes thus reach every copy in one order, and the copies stay identical.
 *  - Letting go of its last write on a slot marked WAIT, a claimant hands it to the owner
 *    (GIVEN), never to the next claimant, so the owner is not starved.
 *  - An owner bucket that finds its slot held marks it WAIT and waits; the channel's poller
 *    (stripe_claims_poll) takes it once it is FREE or GIVEN and runs the bucket's heads. (A
 *    mark a claimant's plain store overwrites costs only that hand-over: the poller takes the
 *    slot once it is FREE.)
 *
 * An owner holds slots only from the first write that reaches it from another reactor (that
 * write came by message, as claims_on[owner] was still false): until then its buckets cost no
 * atomics, which is the case of one reactor. A slot passes between owner and claimant with
 * release and acquire, so one side's member writes have been answered before the other's are
 * issued.
 */
static inline _Atomic uint32_t *
claim_slot(struct raid_array *a, unsigned owner, size_t i)
{
	return &a->claims[(size_t)owner * BUCKETS + i];
}

int
stripe_claims_init(struct raid_array *a)
{
	a->claims = calloc((size_t)uraid_owner_count() * BUCKETS, sizeof(*a->claims));
	return a->claims != NULL ? 0 : -ENOMEM;
}

/* Owner: take a FREE or GIVEN slot; one a claimant holds is marked WAIT if wait. */
static bool
slot_take(_Atomic uint32_t *slot, bool wait)
{
	uint32_t v = atomic_load_explicit(slot, memory_order_relaxed);

	for (;;) {
		if (v == CLAIM_FREE || v == CLAIM_GIVEN) {
			if (atomic_compare_exchange_weak_explicit(slot, &v, CLAIM_OWNER,
								  memory_order_acquire,
								  memory_order_relaxed))
				return true;
		} else if (!wait || (v & CLAIM_WAIT)) {
			return false;
		} else if (atomic_compare_exchange_weak_explicit(slot, &v, v | CLAIM_WAIT,
								 memory_order_relaxed,
								 memory_order_relaxed)) {
			return false;
		}
	}
}

/* Owner, claiming: bucket b is to hold its slot. False: it does not; if wait, it is listed
 * for the poller (its heads wait). */
static bool
bucket_hold(struct raid_channel *rch, struct stripe_bucket *b, bool wait)
{
	size_t i = (size_t)(b - rch->buckets);
	uint8_t *state = &rch->claim_state[i];

	if (*state != B_NONE)
		return *state == B_HELD;
	if (slot_take(claim_slot(rch->a, rch->reactor, i), wait)) {
		*state = B_HELD;
		return true;
	}
	if (wait) {
		*state = B_WAIT;
		rch->claim_wait[rch->claim_waits++] = (uint16_t)i;
	}
	return false;
}

/* Owner, claiming: bucket b has neither a head nor a direct write any more: its slot is
 * free. */
static void
bucket_let_go(struct raid_channel *rch, struct stripe_bucket *b)
{
	size_t i = (size_t)(b - rch->buckets);

	if (rch->claim_state[i] != B_HELD || b->heads != NULL || b->direct != NULL)
		return;
	rch->claim_state[i] = B_NONE;
	atomic_store_explicit(claim_slot(rch->a, rch->reactor, i), CLAIM_FREE,
			      memory_order_release);
}

/* Owner: from now on its buckets hold their slots (those busy now take them at once: no
 * claimant can hold one before claims_on says so). */
static int
claims_start(struct raid_channel *rch)
{
	struct raid_array *a = rch->a;

	rch->claim_wait = calloc(BUCKETS, sizeof(*rch->claim_wait));
	rch->claim_state = calloc(BUCKETS, sizeof(*rch->claim_state));
	if (rch->claim_wait == NULL || rch->claim_state == NULL) {
		free(rch->claim_wait);
		free(rch->claim_state);
		rch->claim_wait = NULL;
		rch->claim_state = NULL;
		return -ENOMEM;
	}
	rch->claim_waits = 0;
	for (size_t i = 0; i < BUCKETS; i++) {
		struct stripe_bucket *b = &rch->buckets[i];

		if (b->heads == NULL && b->direct == NULL)
			continue;
		rch->claim_state[i] = B_HELD;
		atomic_store_explicit(claim_slot(a, rch->reactor, i), CLAIM_OWNER,
				      memory_order_relaxed);
	}
	rch->claiming = true;
	atomic_store_explicit(&a->claims_on[rch->reactor], true, memory_order_release);
	return 0;
}

/* Claimant rch: take slot, FREE or held by rch already (then a plain store: no one else
 * changes a held slot but for the WAIT mark, and a slot so marked is not taken). */
static bool
slot_claim(struct raid_channel *rch, _Atomic uint32_t *slot)
{
	uint32_t me = (rch->reactor + 1) << CLAIM_BY_SHIFT;
	uint32_t v = atomic_load_explicit(slot, memory_order_relaxed);

	if (v == CLAIM_FREE)
		return atomic_compare_exchange_strong_explicit(
			slot, &v, me | 1, memory_order_acquire, memory_order_relaxed);
	if ((v & (CLAIM_WAIT | CLAIM_OWNER | CLAIM_GIVEN | CLAIM_BY)) != me ||
	    (v & CLAIM_COUNT) == CLAIM_COUNT)
		return false;
	atomic_store_explicit(slot, v + 1, memory_order_relaxed);
	return true;
}

/* Claimant: one hold on slot less; the last goes to a waiting owner (GIVEN) or frees it. */
static void
slot_unclaim(_Atomic uint32_t *slot)
{
	uint32_t v = atomic_load_explicit(slot, memory_order_relaxed);

	if ((v & CLAIM_COUNT) > 1)
		atomic_store_explicit(slot, v - 1, memory_order_relaxed);
	else
		atomic_store_explicit(slot, (v & CLAIM_WAIT) ? CLAIM_GIVEN : CLAIM_FREE,
				      memory_order_release);
}

/* Claimant: mr's strip (and blocks [start, +num) of it) claimed in its owner's table: the
 * slot, or NULL if it is not to be had (or a write of rch's own out there overlaps: such a
 * write is listed only while rch holds the slot). */
static _Atomic uint32_t *
claim_take(struct raid_channel *rch, unsigned owner, struct mirror_run *mr)
{
	size_t i = bucket_index(mr->strip);
	_Atomic uint32_t *slot = claim_slot(rch->a, owner, i);

	if (rch->claim_runs == NULL) {
		rch->claim_runs = calloc(BUCKETS, sizeof(*rch->claim_runs));
		if (rch->claim_runs == NULL)
			return NULL;
	}
	if (runs_overlap(rch->claim_runs[i], mr->strip, mr->start, mr->num) ||
	    !slot_claim(rch, slot))
		return NULL;
	mr->next = rch->claim_runs[i];
	rch->claim_runs[i] = mr;
	return slot;
}

static void
claim_let_go(struct mirror_run *mr)
{
	struct mirror_run **pp = &mr->rch->claim_runs[bucket_index(mr->strip)];

	while (*pp != mr)
		pp = &(*pp)->next;
	*pp = mr->next;
	slot_unclaim(mr->claim);
}

/* A parity array whose writes may be claimed: policy none or bitmap (the logs and a
 * log-structured array keep their state on the owners). */
static inline bool
parity_claimable(const struct raid_array *a)
{
	return a->parity && (a->policy == SB_POLICY_NONE || a->policy == SB_POLICY_BITMAP) &&
	       a->claims != NULL;
}

/* A part that may run under a claim between this reactor and other (the stripe's owner, or
 * the part's origin): a parity write, zeroes, or a degraded read of an array whose writes may
 * be claimed, with other on another core (not from the owner's own core: see claims). */
static inline bool
part_claimable(const struct stripe_part *part, const struct uraid_reactor *other)
{
	return (part->kind == PART_WRITE || part->kind == PART_ZEROES || part->kind == PART_READ) &&
	       parity_claimable(part->a) && !uraid_reactor_shares_core(other);
}

static void stripe_run_next(struct raid_channel *rch, struct stripe_head *sh);

/* Claimant here: a parity write (or zeroes, or a degraded read) of a stripe that owner owns,
 * run here. The stripe's head lives in here->claim_heads while it holds the slot (one hold
 * per head); parts of the stripe that come meanwhile queue on it, as on an owner. False: not
 * taken (no slot, or the slot is marked WAIT: the owner is not starved), the part goes to the
 * owner. */
static bool
stripe_claim_part(struct raid_channel *here, unsigned owner, struct stripe_part *part)
{
	size_t i = bucket_index(part->stripe);
	_Atomic uint32_t *slot = claim_slot(here->a, owner, i);
	struct stripe_head *sh;

	if (here->claim_heads == NULL) {
		here->claim_heads = calloc(BUCKETS, sizeof(*here->claim_heads));
		if (here->claim_heads == NULL)
			return false;
	}
	if ((sh = sh_find(here->claim_heads[i], part->stripe)) != NULL) {
		if (atomic_load_explicit(slot, memory_order_relaxed) & CLAIM_WAIT)
			return false;
	} else {
		if (!slot_claim(here, slot))
			return false;
		if ((sh = sh_new(here, &here->claim_heads[i], part->stripe, slot)) == NULL) {
			slot_unclaim(slot);
			return false;
		}
	}
	if (part->kind != PART_READ && here->a->bm != NULL && !sh->bm_held) {
		/* A write only where the region's bit is on disk already (a bit to be set is the
		 * owner's to wait for); the head keeps the region dirty until it goes. */
		if (!bitmap_try_enter(here->a, here->reactor, part->stripe)) {
			if (sh->active == NULL && TAILQ_EMPTY(&sh->queue))
				sh_remove(here, sh);
			return false;
		}
		sh->bm_held = true;
	}
	if (part->kind != PART_READ)
		raid_stat_add(here->a, here->reactor, RS_CLAIMED, 1);
	TAILQ_INSERT_TAIL(&sh->queue, part, link);
	stripe_run_next(here, sh);
	return true;
}

/* Owner: bucket b got its slot: start its heads (found again after each start, which may
 * remove heads). */
static void
bucket_run(struct raid_channel *rch, struct stripe_bucket *b)
{
	uint64_t strips[16];
	unsigned n;

	do {
		struct stripe_head *sh;

		n = 0;
		for (sh = b->heads; sh != NULL && n < ARRAY_SIZE(strips); sh = sh->next) {
			if (sh->active == NULL && !TAILQ_EMPTY(&sh->queue) &&
			    !runs_overlap(b->direct, sh->stripe, 0, 0))
				strips[n++] = sh->stripe;
		}
		for (unsigned k = 0; k < n; k++) {
			if ((sh = sh_find(b->heads, strips[k])) != NULL)
				stripe_run_next(rch, sh);
		}
	} while (n == ARRAY_SIZE(strips));
	bucket_let_go(rch, b);
}

bool
stripe_claims_poll(struct raid_channel *rch)
{
	bool took = false;
	unsigned w = 0;

	/* (bucket_run may list more waiting buckets: they are tried in this pass too) */
	while (w < rch->claim_waits) {
		size_t i = rch->claim_wait[w];

		if (!slot_take(claim_slot(rch->a, rch->reactor, i), true)) {
			w++;
			continue;
		}
		rch->claim_wait[w] = rch->claim_wait[--rch->claim_waits];
		rch->claim_state[i] = B_HELD;
		bucket_run(rch, &rch->buckets[i]);
		took = true;
	}
	return took;
}

/* --- part completion --- */

static void
part_done_msg(void *arg)
{
	struct stripe_part *part = arg;

	part->done(part, part->status);
}

void
stripe_part_finish(struct stripe_part *part, int status)
{
	part->status = status;
	if (part->origin == uraid_reactor_self())
		part->done(part, status);
	else
		uraid_reactor_send(part->origin, part_done_msg, part);
}

/* --- helpers --- */

static inline uint32_t
bs_of(struct stripe_op *op)
{
	return op->a->bdev.block_size;
}

static unsigned
col_member(struct stripe_op *op, unsigned col)
{
	struct col_loc loc;

	raid_col_locate(op->a, op->sh->stripe, col, &loc);
	return loc.member;
}

/* Readable for this operation: a member excluded by a read-repair part is not. */
static bool
op_readable(struct stripe_op *op, unsigned member, uint64_t unit)
{
	if (op->parts[0]->exclude == member + 1)
		return false;
	return raid_member_readable(op->rch, member, unit);
}

/* Copy the new data of data column i, rows [x, y), into dst (which holds row r0 at 0). */
static void
op_copy_new(struct stripe_op *op, unsigned i, uint8_t *dst, uint64_t x, uint64_t y)
{
	uint64_t S = op->a->l.strip_blocks;
	uint32_t bs = bs_of(op);

	for (unsigned p = 0; p < op->nparts; p++) {
		struct stripe_part *part = op->parts[p];
		uint64_t from = i * S + x, to = i * S + y;
		uint64_t ps = part->start_blocks, pe = ps + part->num_blocks;

		if (from < ps)
			from = ps;
		if (to > pe)
			to = pe;
		if (from >= to)
			continue;
		if (part->kind == PART_ZEROES)
			memset(dst + (from - i * S - op->r0) * bs, 0, (to - from) * bs);
		else
			uraid_iov_to_buf(dst + (from - i * S - op->r0) * bs, part->iov,
					 part->iovcnt, part->byte_off + (from - ps) * bs,
					 (to - from) * bs);
	}
}

/* New data of column i over all of [r0, r1), used in place when one part holds it in one
 * aligned iovec (zero copy); NULL otherwise. */
static uint8_t *
op_direct(struct stripe_op *op, unsigned i)
{
	struct stripe_part *part = op->parts[0];
	uint64_t S = op->a->l.strip_blocks;
	uint32_t bs = bs_of(op);
	uint64_t off, len = (op->r1 - op->r0) * bs;

	if (op->nparts != 1 || op->lo[i] != op->r0 || op->hi[i] != op->r1)
		return NULL;
	if (part->kind == PART_ZEROES)
		return op->rch->zeroes;
	off = part->byte_off + (i * S + op->r0 - part->start_blocks) * bs;
	for (int v = 0; v < part->iovcnt; v++) {
		uint8_t *base = part->iov[v].iov_base;

		if (off >= part->iov[v].iov_len) {
			off -= part->iov[v].iov_len;
			continue;
		}
		if (off + len > part->iov[v].iov_len || ((uintptr_t)(base + off) & 31))
			return NULL;
		return base + off;
	}
	return NULL;
}

static uint8_t *
op_scratch(struct stripe_op *op, unsigned c)
{
	if (!(op->col_set & (1ull << c))) {
		op->col[c] = raid_buf_get(op->rch);
		if (op->col[c] == NULL)
			return NULL;
		op->col_set |= 1ull << c;
		op->col_scratch |= 1ull << c;
	}
	return op->col[c];
}

static uint8_t *
op_old(struct stripe_op *op, unsigned i)
{
	op->old[i] = raid_buf_get(op->rch);
	if (op->old[i] != NULL)
		op->old_set |= 1ull << i;
	return op->old[i];
}

static void
op_release_buffers(struct stripe_op *op)
{
	for (uint64_t m = op->col_scratch; m; m &= m - 1)
		raid_buf_put(op->rch, op->col[__builtin_ctzll(m)]);
	for (uint64_t m = op->old_set; m; m &= m - 1)
		raid_buf_put(op->rch, op->old[__builtin_ctzll(m)]);
	op->col_set = op->col_scratch = op->old_set = 0;
}

static bool
col_has(const struct stripe_op *op, unsigned c)
{
	return op->col_set & (1ull << c);
}

static void op_io_done(struct member_io *mio, int status);

/* Issue one member I/O: blocks [offset, +num) of member, to/from buf, or, for writes with
 * part != NULL, straight from the part's iovecs at part_byte_off. */
static int
op_member_io(struct stripe_op *op, unsigned member, enum uraid_io_type type, uint64_t offset,
	     uint64_t num, uint8_t *buf, const struct stripe_part *part, uint64_t part_byte_off,
	     uint32_t flags)
{
	uint64_t len = num * bs_of(op);
	struct member_io *mio = mio_alloc(op->rch, member, 0);

	if (mio == NULL)
		return -ENOMEM;
	mio->type = type;
	mio->flags = flags;
	mio->offset_blocks = offset;
	mio->num_blocks = num;
	mio->done = op_io_done;
	mio->ctx = op;
	mio->to_repl = op->to_repl;
	if (part != NULL) {
		if (mio_set_iov(mio, part->iov, part->iovcnt, part_byte_off, len) != 0) {
			mio_free(mio);
			return -ENOMEM;
		}
	} else {
		mio->iov[0].iov_base = buf;
		mio->iov[0].iov_len = len;
		mio->iovcnt = buf ? 1 : 0;
	}
	op->pending++;
	if (mio_submit(mio) != 0) {
		op->pending--;
		mio_free(mio);
		return -ENODEV;
	}
	return 0;
}

/* Column c, rows [x, y) of this stripe. */
static int
op_io(struct stripe_op *op, unsigned c, enum uraid_io_type type, uint64_t x, uint64_t y,
      uint8_t *buf, const struct stripe_part *part, uint64_t part_byte_off)
{
	uint64_t S = op->a->l.strip_blocks;
	struct col_loc loc;
	int rc;

	raid_col_locate(op->a, op->sh->stripe, c, &loc);
	rc = op_member_io(op, loc.member, type, loc.row * S + x, y - x, buf, part, part_byte_off,
			  type == URAID_IO_WRITE ? op->flags : 0);
	/* A distributed spare being copied back: both places take every write (the new
	 * member's alone when the spare strip's member failed). */
	if ((rc == 0 || rc == -ENODEV) && type == URAID_IO_WRITE && loc.alt >= 0 &&
	    raid_member_writable(op->rch, (unsigned)loc.alt)) {
		int rc_alt = op_member_io(op, (unsigned)loc.alt, type, loc.row * S + x, y - x, buf,
					  part, part_byte_off, op->flags);

		rc = rc_alt == -ENOMEM ? -ENOMEM : rc == 0 || rc_alt == 0 ? 0 : rc;
	}
	return rc;
}

static void
op_io_done(struct member_io *mio, int status)
{
	struct stripe_op *op = mio->ctx;

	if (status != 0 && (mio->to_repl || mio_on_journal(mio))) {
		if (mio->to_repl)
			raid_replacement_failed(op->a, mio->member, status);
		op->status = -EIO; /* (the journal device: the array is offline now) */
	} else if (status != 0) {
		raid_member_failed(op->a, mio->member, status);
		/* A logged write that lost a member is planned and logged again, degraded, so
		 * the log never names a column it cannot read back. */
		if (mio->type == URAID_IO_READ || op->ppl_n)
			op->restart = true;
	}
	mio_free(mio);
	if (--op->pending == 0)
		op_advance(op);
}

/* --- planning --- */

static void
op_map_parts(struct stripe_op *op)
{
	const struct layout *l = &op->a->l;
	uint64_t S = l->strip_blocks;

	op->r0 = S;
	op->r1 = 0;
	op->flags = 0;
	for (unsigned i = 0; i < l->k; i++) {
		op->lo[i] = S;
		op->hi[i] = 0;
	}
	for (unsigned p = 0; p < op->nparts; p++) {
		struct stripe_part *part = op->parts[p];
		uint64_t s = part->start_blocks, e = s + part->num_blocks;

		op->flags |= part->flags;
		for (unsigned i = (unsigned)(s / S); i < l->k && i * S < e; i++) {
			uint64_t x = s > i * S ? s - i * S : 0;
			uint64_t y = e < (i + 1) * S ? e - i * S : S;

			if (x < op->lo[i])
				op->lo[i] = x;
			if (y > op->hi[i])
				op->hi[i] = y;
		}
	}
	for (unsigned i = 0; i < l->k; i++) {
		if (op->lo[i] >= op->hi[i]) {
			op->lo[i] = op->hi[i] = 0; /* untouched */
			continue;
		}
		if (op->lo[i] < op->r0)
			op->r0 = op->lo[i];
		if (op->hi[i] > op->r1)
			op->r1 = op->hi[i];
	}
}

static bool
touched(struct stripe_op *op, unsigned i)
{
	return op->lo[i] < op->hi[i];
}

/* PLAN: choose the mode and issue the reads it needs. */
static void
op_plan(struct stripe_op *op)
{
	struct raid_array *a = op->a;
	const struct layout *l = &a->l;
	unsigned n = l->k + l->m, rmw = l->m, rcw = 0;
	uint32_t bs = bs_of(op);
	bool full = true, one_write;

	op_release_buffers(op);
	op->restart = false;
	op->lost = 0;
	op->targets = 0;
	op->copyback = 0;
	op->both = 0;
	for (unsigned c = 0; c < n; c++) {
		struct col_loc loc;

		raid_col_locate(a, op->sh->stripe, c, &loc);
		if (loc.ready && op_readable(op, loc.member, loc.row)) {
			/* A copy back onto a slot's new member: read from the spare. */
			if (op->kind == PART_REBUILD && op->parts[0]->drain && loc.alt >= 0)
				op->copyback |= 1ull << c;
			/* A fresh row (a log array's) on a draining spare: the copy back may have
			 * passed it by as free, so its two places can differ. A data column read
			 * into the parity goes to both, or the parity would hold for the place
			 * read only. */
			if (loc.alt >= 0 && c < l->k && op->parts[0]->fresh &&
			    (op->kind == PART_WRITE || op->kind == PART_ZEROES) &&
			    (op->lo[c] > op->r0 || op->hi[c] < op->r1 || !touched(op, c)))
				op->both |= 1ull << c;
		} else {
			op->lost |= 1ull << c;
			if ((raid_member_writable(op->rch, loc.member) ||
			     (loc.alt >= 0 && raid_member_writable(op->rch, (unsigned)loc.alt))) &&
			    (op->kind == PART_REBUILD ||
			     raid_member_takes_write(op->rch, loc.member, loc.row)))
				op->targets |= 1ull << c;
		}
	}
	if ((unsigned)__builtin_popcountll(op->lost) > l->m || !atomic_load(&a->online)) {
		/* Too many members gone: fail it (and let the queue behind it move). */
		op->status = -EIO;
		op->state = OP_DONE;
		op_advance(op);
		return;
	}
	for (unsigned i = 0; i < l->k; i++) {
		if (touched(op, i))
			rmw++;
		if (op->lo[i] > op->r0 || op->hi[i] < op->r1 || !touched(op, i))
			rcw++;
		if (op->lo[i] != 0 || op->hi[i] != l->strip_blocks)
			full = false;
	}
	if (op->kind == PART_READ || op->kind == PART_CHECK || op->kind == PART_REBUILD ||
	    (op->lost && !(full && op->targets == 0 && !raid_logged(a))))
		op->mode = MODE_DEGRADED;
	else if (full)
		op->mode = MODE_FULL;
	else
		op->mode = rmw < rcw && !op->parts[0]->fresh ? MODE_RMW : MODE_RCW;
	/* A full stripe of one write whose columns are spread over several iovecs (a log
	 * array's row gathers many writes): nothing reads the data columns but the encoder
	 * and the member writes, and both can take them where they are. Logged policies keep
	 * the columns for their entries. */
	one_write = op->mode == MODE_FULL && op->nparts == 1 && op->parts[0]->kind == PART_WRITE;
	op->scattered = one_write && !raid_logged(a) && op->parts[0]->iovcnt > 1;
	/* ... and its data columns go to their members before the parity is encoded: a device
	 * takes them while the encoder runs, and a copy (a ram member) reads the user's data
	 * from memory, where it streams best, and leaves it in the cache for the encoder (raid5
	 * x4 192 KiB writes over ram: +15%, docs/bench.md §2). ppl logs no parity for a full
	 * stripe whose columns it names all written (op_log: its partial parity is zero; else
	 * op_log encodes first); the journal logs it before any member write, so it is encoded
	 * first there. */
	op->encode_late = one_write && a->policy != SB_POLICY_JOURNAL && op->both == 0;

	op->state = OP_READ;
	op->pending = 1; /* guard while issuing */
	for (unsigned c = 0; c < n && op->status == 0; c++) {
		bool lost = op->lost & (1ull << c);
		bool data = c < l->k;
		int rc = 0;

		switch (op->mode) {
		case MODE_DEGRADED:
			/* Every surviving column over the rows; lost ones get a buffer to be
			 * rebuilt into. A column a read wants whole lands in (or is decoded
			 * into) the reader's buffer, with no copy out after. */
			if (op->kind == PART_READ && data &&
			    (op->col[c] = op_direct(op, c)) != NULL)
				op->col_set |= 1ull << c;
			if (op_scratch(op, c) == NULL)
				rc = -ENOMEM;
			else if (!lost)
				rc = op_io(op, c, URAID_IO_READ, op->r0, op->r1, op->col[c], NULL,
					   0);
			break;
		case MODE_FULL:
		case MODE_RCW:
			if (!data) {
				rc = op_scratch(op, c) ? 0 : -ENOMEM;
				break;
			}
			if (op->scattered)
				break; /* op_encode_scattered reads the part's iovecs */
			op->col[c] = op_direct(op, c);
			if (op->col[c] != NULL) {
				op->col_set |= 1ull << c;
				break;
			}
			if (op_scratch(op, c) == NULL)
				rc = -ENOMEM;
			else if (op->lo[c] > op->r0 || op->hi[c] < op->r1 || !touched(op, c))
				rc = op_io(op, c, URAID_IO_READ, op->r0, op->r1, op->col[c], NULL,
					   0);
			break;
		case MODE_RMW:
			if (!data) {
				if (op_scratch(op, c) == NULL)
					rc = -ENOMEM;
				else
					rc = op_io(op, c, URAID_IO_READ, op->r0, op->r1, op->col[c],
						   NULL, 0);
				break;
			}
			if (!touched(op, c))
				break;
			/* The new data where the user has it whole (the parity update reads it,
			 * the member write takes the user's part anyway), else a copy. */
			if ((op->col[c] = op_direct(op, c)) != NULL)
				op->col_set |= 1ull << c;
			if (op_old(op, c) == NULL || op_scratch(op, c) == NULL) {
				rc = -ENOMEM;
				break;
			}
			rc = op_io(op, c, URAID_IO_READ, op->lo[c], op->hi[c],
				   op->old[c] + (op->lo[c] - op->r0) * bs, NULL, 0);
			break;
		}
		if (rc == -ENODEV)
			op->restart = true; /* the member went away just now */
		else if (rc != 0)
			op->status = rc;
	}
	if (--op->pending == 0)
		op_advance(op);
}

/* --- compute --- */

/* Where byte off of an iovec array lies: iovec v, byte o within it. */
struct iov_pos {
	int v;
	size_t o;
};

static void
iov_pos_skip(const struct iovec *iov, int iovcnt, struct iov_pos *p, size_t n)
{
	p->o += n;
	while (p->v < iovcnt && p->o >= iov[p->v].iov_len) {
		p->o -= iov[p->v].iov_len;
		p->v++;
	}
}

/* MODE_FULL with op->scattered: encode parity over runs in which every data column is
 * contiguous in the part's iovecs (a whole 4 KiB block of each at least, for writes of
 * whole blocks), so no column is assembled first. */
static void
op_encode_scattered(struct stripe_op *op)
{
	const struct layout *l = &op->a->l;
	const struct stripe_part *part = op->parts[0];
	uint64_t S = l->strip_blocks;
	uint32_t bs = bs_of(op);
	size_t len = (op->r1 - op->r0) * bs;
	struct iov_pos pos[RAID_MAX_MEMBERS];
	uint8_t *d[RAID_MAX_MEMBERS], *p[RAID_MAX_PARITY];

	for (unsigned i = 0; i < l->k; i++) {
		pos[i] = (struct iov_pos){0, 0};
		iov_pos_skip(part->iov, part->iovcnt, &pos[i],
			     part->byte_off + (i * S + op->r0 - part->start_blocks) * bs);
	}
	for (size_t done = 0; done < len;) {
		size_t run = len - done;

		for (unsigned i = 0; i < l->k; i++) {
			const struct iovec *v = &part->iov[pos[i].v];

			if (v->iov_len - pos[i].o < run)
				run = v->iov_len - pos[i].o;
			d[i] = (uint8_t *)v->iov_base + pos[i].o;
		}
		for (unsigned j = 0; j < l->m; j++)
			p[j] = op->col[l->k + j] + done;
		code_encode(&op->a->code, run, d, p);
		for (unsigned i = 0; i < l->k; i++)
			iov_pos_skip(part->iov, part->iovcnt, &pos[i], run);
		done += run;
	}
}

static int
op_compute(struct stripe_op *op)
{
	struct raid_array *a = op->a;
	const struct layout *l = &a->l;
	uint32_t bs = bs_of(op);
	size_t len = (op->r1 - op->r0) * bs;
	int rc;

	switch (op->mode) {
	case MODE_DEGRADED:
		rc = code_decode(&a->code, &op->rch->dec, len, op->col, op->lost);
		if (rc != 0)
			return rc;
		if (op->kind == PART_READ || op->kind == PART_CHECK || op->kind == PART_REBUILD)
			return 0;
		for (unsigned i = 0; i < l->k; i++) {
			if (touched(op, i))
				op_copy_new(op, i, op->col[i], op->lo[i], op->hi[i]);
		}
		code_encode(&a->code, len, op->col, op->col + l->k);
		return 0;
	case MODE_FULL:
	case MODE_RCW:
		if (op->scattered) {
			op_encode_scattered(op);
			return 0;
		}
		for (unsigned i = 0; i < l->k; i++) {
			if ((op->col_scratch & (1ull << i)) && touched(op, i))
				op_copy_new(op, i, op->col[i], op->lo[i], op->hi[i]);
		}
		code_encode(&a->code, len, op->col, op->col + l->k);
		return 0;
	case MODE_RMW:
		/* Parity changes only on the rows a column's new data touches (the code is
		 * linear: elsewhere its change is zero). */
		for (unsigned i = 0; i < l->k; i++) {
			uint8_t *p[RAID_MAX_PARITY];
			size_t lo;

			if (!touched(op, i))
				continue;
			lo = (op->lo[i] - op->r0) * bs;
			if (op->col_scratch & (1ull << i))
				op_copy_new(op, i, op->col[i], op->lo[i], op->hi[i]);
			for (unsigned j = 0; j < l->m; j++)
				p[j] = op->col[l->k + j] + lo;
			code_update_from(&a->code, (op->hi[i] - op->lo[i]) * bs, i, op->old[i] + lo,
					 op->col[i] + lo, p);
		}
		return 0;
	}
	return -EINVAL;
}

/* Degraded read: copy the wanted rows out of the rebuilt columns. */
static void
op_copy_out(struct stripe_op *op)
{
	struct stripe_part *part = op->parts[0];
	uint64_t S = op->a->l.strip_blocks;
	uint32_t bs = bs_of(op);

	for (unsigned i = 0; i < op->a->l.k; i++) {
		uint64_t from, len;

		if (!touched(op, i) || !(op->col_scratch & (1ull << i)))
			continue; /* (or read into the reader's buffer itself) */
		from = i * S + op->lo[i];
		len = (op->hi[i] - op->lo[i]) * bs;
		uraid_iov_from_buf(part->iov, part->iovcnt,
				   part->byte_off + (from - part->start_blocks) * bs,
				   op->col[i] + (op->lo[i] - op->r0) * bs, len);
	}
}

/* True if columns cols (k + m of them) are consistent: parity re-encoded from the data
 * equals the parity given. */
static bool
cols_consistent(struct stripe_op *op, uint8_t *const *cols, uint8_t **scratch, size_t len)
{
	const struct layout *l = &op->a->l;

	code_encode(&op->a->code, len, cols, scratch);
	for (unsigned j = 0; j < l->m; j++) {
		if (memcmp(scratch[j], cols[l->k + j], len) != 0)
			return false;
	}
	return true;
}

/*
 * Repair a stripe whose parity disagrees with its data. With two or more parities, try each
 * column as the one bad column (rebuild it from the others, see if everything then agrees),
 * as md's raid6check does with P and Q; exactly one candidate means that column is rewritten.
 * Otherwise (one parity, or no single explanation) the parity is recomputed from the data.
 */
static void
op_plan_repair(struct stripe_op *op, uint8_t **fresh, size_t len)
{
	const struct layout *l = &op->a->l;
	struct stripe_part *part = op->parts[0];
	unsigned n = l->k + l->m, found = 0, bad = 0;
	uint8_t *cand = NULL, *cols[RAID_MAX_MEMBERS + RAID_MAX_PARITY], *tmp[RAID_MAX_PARITY];

	part->bad_column = -1;
	if (l->m >= 2 && !part->resync) {
		cand = raid_buf_get(op->rch);
		for (unsigned j = 0; j < l->m; j++)
			tmp[j] = raid_buf_get(op->rch);
		for (unsigned c = 0; cand && c < n; c++) {
			memcpy(cols, op->col, sizeof(cols[0]) * n);
			cols[c] = cand;
			if (code_decode(&op->a->code, &op->rch->dec, len, cols, 1ull << c) != 0)
				continue;
			if (cols_consistent(op, cols, tmp, len)) {
				found++;
				bad = c;
			}
		}
		if (found == 1) {
			memcpy(cols, op->col, sizeof(cols[0]) * n);
			cols[bad] = cand;
			code_decode(&op->a->code, &op->rch->dec, len, cols, 1ull << bad);
			memcpy(op->col[bad], cand, len);
			op->targets = 1ull << bad;
			part->bad_column = (int)bad;
		}
		raid_buf_put(op->rch, cand);
		for (unsigned j = 0; j < l->m; j++)
			raid_buf_put(op->rch, tmp[j]);
	}
	if (op->targets == 0) {
		for (unsigned j = 0; j < l->m; j++) {
			memcpy(op->col[l->k + j], fresh[j], len);
			op->targets |= 1ull << (l->k + j);
		}
	}
	part->repaired = true;
}

/* Check: parity recomputed from the data must equal the parity read. */
static void
op_check_parity(struct stripe_op *op)
{
	const struct layout *l = &op->a->l;
	size_t len = (op->r1 - op->r0) * bs_of(op);
	uint8_t *fresh[RAID_MAX_PARITY] = {0};

	op->parts[0]->unreadable = op->lost != 0;
	if (op->lost)
		return;
	for (unsigned j = 0; j < l->m; j++) {
		fresh[j] = raid_buf_get(op->rch);
		if (fresh[j] == NULL)
			goto out;
	}
	code_encode(&op->a->code, len, op->col, fresh);
	for (unsigned j = 0; j < l->m; j++) {
		if (memcmp(fresh[j], op->col[l->k + j], len) != 0)
			op->parts[0]->bad = true;
	}
	if (op->parts[0]->bad && op->parts[0]->repair)
		op_plan_repair(op, fresh, len);
out:
	for (unsigned j = 0; j < l->m; j++)
		raid_buf_put(op->rch, fresh[j]);
}

/* --- write --- */

static void
op_write(struct stripe_op *op)
{
	const struct layout *l = &op->a->l;
	uint64_t S = l->strip_blocks;
	uint32_t bs = bs_of(op);
	int rc = 0;

	op->state = OP_WRITE;
	op->pending = 1;
	for (unsigned i = 0; i < l->k + l->m; i++) {
		bool data = i < l->k;

		if (i == l->k && op->encode_late)
			op_compute(op); /* MODE_FULL: cannot fail */
		if (op->copyback & (1ull << i)) {
			struct col_loc loc;

			raid_col_locate(op->a, op->sh->stripe, i, &loc);
			rc = loc.alt < 0 ? -ENODEV
					 : op_member_io(op, (unsigned)loc.alt, URAID_IO_WRITE,
							loc.row * S + op->r0, op->r1 - op->r0,
							op->col[i], NULL, 0, 0);
			if (rc == -ENOMEM)
				op->status = rc;
			else if (rc != 0)
				op->status = -EIO; /* never count a unit copied that was not */
			continue;
		}
		if (op->targets & (1ull << i)) {
			/* A rebuilding member: degraded mode rebuilt the whole column over the
			 * rows, so it gets all of them. */
			rc = op_io(op, i, URAID_IO_WRITE, op->r0, op->r1, op->col[i], NULL, 0);
			if (rc == -ENOMEM)
				op->status = rc;
			else if (rc != 0 && op->kind == PART_REBUILD)
				op->status = -EIO; /* never count a unit rebuilt that was not */
			continue;
		}
		if (op->lost & (1ull << i) || op->kind == PART_REBUILD || op->kind == PART_READ ||
		    op->kind == PART_CHECK)
			continue; /* those write only their targets */
		if (op->both & (1ull << i)) {
			/* Where the column is now (the drain may have ended since PLAN): the rows
			 * read and the new data merged into them, over every row of the parity. */
			rc = op_io(op, i, URAID_IO_WRITE, op->r0, op->r1, op->col[i], NULL, 0);
			if (rc == -ENOMEM)
				op->status = rc;
			continue;
		}
		if (data && !touched(op, i))
			continue;
		if (data && op->nparts == 1 && op->parts[0]->kind == PART_WRITE) {
			struct stripe_part *part = op->parts[0];

			rc = op_io(op, i, URAID_IO_WRITE, op->lo[i], op->hi[i], NULL, part,
				   part->byte_off + (i * S + op->lo[i] - part->start_blocks) * bs);
		} else if (data) {
			rc = op_io(op, i, URAID_IO_WRITE, op->lo[i], op->hi[i],
				   op->col[i] + (op->lo[i] - op->r0) * bs, NULL, 0);
		} else {
			rc = op_io(op, i, URAID_IO_WRITE, op->r0, op->r1, op->col[i], NULL, 0);
		}
		if (rc == -ENOMEM)
			op->status = rc;
		else if (rc != 0 && op->ppl_n)
			op->restart = true; /* see op_io_done */
		/* -ENODEV: the member failed since PLAN; its data lives in parity. */
	}
	crash_point(CRASH_STRIPE_WRITING);
	if (--op->pending == 0)
		op_advance(op);
}

/* --- the partial parity log (policy ppl, see ppl.c) --- */

/* A member that the data columns the log names live on failed since they were logged. */
static bool
op_log_member_lost(struct stripe_op *op)
{
	for (uint64_t m = op->ppl_t & ~op->lost; m; m &= m - 1) {
		if (!raid_member_usable(op->rch, col_member(op, (unsigned)__builtin_ctzll(m))))
			return true;
	}
	return false;
}

/* The operation let its log entries go (they retire after the next flush). Flush now,
 * rather than when a ring is half full, if some operation waits for space or for a stripe's
 * entries: nothing else may come to start the round that retires them, and with nothing
 * else in flight the waiter would wait forever. Also if a member these entries name failed
 * since: a recovery cannot read it back, so what was written to the others must reach stable
 * media soon. Called once every entry the operation releases is released (a round covers
 * only entries released before it starts). */
static void
op_log_released(struct stripe_op *op, bool lost)
{
	if (lost || !TAILQ_EMPTY(&op->rch->ppl_wait) || !TAILQ_EMPTY(&op->rch->ppl_stripe_wait))
		ppl_flush_kick(op->rch);
}

/* Room for the operation's n log entries and their header blocks of bs bytes: in the
 * operation and a strip buffer of the channel's when they fit (one parity of one write), so
 * the common case allocates nothing. */
static int
op_ppl_alloc(struct stripe_op *op, size_t n, uint32_t bs)
{
	op->ppl_ents = n <= ARRAY_SIZE(op->ppl_ents_in) ? op->ppl_ents_in
							: malloc(n * sizeof(*op->ppl_ents));
	op->ppl_hdr_pooled = n * bs <= op->rch->buf_bytes;
	op->ppl_hdr = op->ppl_hdr_pooled ? raid_buf_get(op->rch)
					 : uraid_dma_alloc(CACHE_LINE_BYTES, n * bs);
	return op->ppl_ents != NULL && op->ppl_hdr != NULL ? 0 : -ENOMEM;
}

static void
op_ppl_free(struct stripe_op *op)
{
	if (op->ppl_ents != op->ppl_ents_in)
		free(op->ppl_ents);
	if (op->ppl_hdr_pooled)
		raid_buf_put(op->rch, op->ppl_hdr);
	else
		uraid_dma_free(op->ppl_hdr);
	op->ppl_ents = NULL;
	op->ppl_hdr = NULL;
	op->ppl_hdr_pooled = false;
}

static void
op_ppl_release(struct stripe_op *op)
{
	struct raid_channel *rch = op->rch;
	bool lost = op->ppl_n != 0 && op_log_member_lost(op);

	for (unsigned e = 0; e < op->ppl_n && !op->ppl_borrowed; e++)
		ppl_release(rch, op->ppl_ents[e]); /* (borrowed ones go with the data's) */
	op->ppl_borrowed = false;
	for (unsigned j = 0; j < RAID_MAX_PARITY; j++) {
		raid_buf_put(rch, op->pp[j]);
		op->pp[j] = NULL;
	}
	op_ppl_free(op);
	if (op->ppl_n != 0)
		op_log_released(op, lost);
	op->ppl_n = 0;
}

/* Wait for log space: tried again whenever a round or an anchor may have freed some. */
static void
op_ppl_park(struct stripe_op *op)
{
	TAILQ_INSERT_TAIL(&op->rch->ppl_wait, op, wait_link);
	raid_stat_add(op->a, op->rch->reactor, RS_PPL_WAITS, 1);
	ppl_flush_kick(op->rch);
}

/* Wait for the entries of the stripe's earlier update to retire: tried again only when one
 * of them does (stripe_ppl_retired), or when the array goes offline. */
static void
op_ppl_park_stripe(struct stripe_op *op)
{
	TAILQ_INSERT_TAIL(&op->rch->ppl_stripe_wait, op, wait_link);
	op->sh->ppl_waiter = op;
	raid_stat_add(op->a, op->rch->reactor, RS_PPL_WAITS, 1);
	ppl_flush_kick(op->rch);
}

/* Data columns the log names as written (T): touched, not lost, and not on a member being
 * rebuilt beyond what the superblocks record (after a crash that stretch is rebuilt from the
 * others, so its data must live in the partial parity like a lost column's). The journal
 * carries the new data of every column it names, so it names every touched column, lost
 * ones included: recovery writes the data home where the member can be read after the crash
 * (a rebuild may have passed the stripe since) and encodes parity from it either way. */
static uint64_t
op_written_data(struct stripe_op *op)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < op->a->l.k; i++) {
		struct col_loc loc;
		struct raid_member *mb;

		raid_col_locate(op->a, op->sh->stripe, i, &loc);
		mb = &op->a->members[loc.member];
		if (!touched(op, i))
			continue;
		if (op->a->policy == SB_POLICY_JOURNAL) {
			t |= 1ull << i;
			continue;
		}
		if (op->lost & (1ull << i) || !loc.durable)
			continue;
		if (atomic_load(&mb->state) == URAID_MEMBER_REBUILDING &&
		    loc.row >= atomic_load(&mb->durable))
			continue;
		t |= 1ull << i;
	}
	return t;
}

/* pp_j = new P_j + sum over written columns of G[j][i] * new data, on [r0, r1). */
static int
op_ppl_partial(struct stripe_op *op, uint64_t t)
{
	const struct layout *l = &op->a->l;
	uint32_t bs = bs_of(op);
	size_t len = (op->r1 - op->r0) * bs;

	for (unsigned j = 0; j < l->m; j++) {
		op->pp[j] = raid_buf_get(op->rch);
		if (op->pp[j] == NULL)
			return -ENOMEM;
		memcpy(op->pp[j], op->col[l->k + j], len);
	}
	for (uint64_t m = t; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctzll(m);
		size_t off = (op->lo[i] - op->r0) * bs;
		uint8_t *dst[RAID_MAX_PARITY];

		for (unsigned j = 0; j < l->m; j++)
			dst[j] = op->pp[j] + off;
		code_update(&op->a->code, (op->hi[i] - op->lo[i]) * bs, i, op->col[i] + off, dst);
	}
	return 0;
}

/* Blocks of new data the written columns t hold in rows [x, y). */
static uint32_t
op_data_in(const struct stripe_op *op, uint64_t t, uint64_t x, uint64_t y)
{
	uint32_t n = 0;

	for (; t; t &= t - 1) {
		unsigned i = (unsigned)__builtin_ctzll(t);
		uint64_t lo = op->lo[i] > x ? op->lo[i] : x, hi = op->hi[i] < y ? op->hi[i] : y;

		if (lo < hi)
			n += (uint32_t)(hi - lo);
	}
	return n;
}

/*
 * Write one log entry with FUA at ent's place, in its member's ring: a header (h: parity and rows
 * set; the columns t over those rows, and the rest, filled here, into hdr), then the partial parity
 * pp over the rows (NULL: none stored), then, with cols, the new data of each column (cols[i] holds
 * the operation's row r0 at 0). 0, -ENOMEM (nothing issued) or -ENODEV (the member went away).
 */
static int
op_entry_write(struct stripe_op *op, struct ppl_entry *ent, struct ppl_header *h, uint8_t *hdr,
	       uint64_t t, const uint8_t *pp, uint8_t *const *cols,
	       void (*done)(struct member_io *mio, int status))
{
	struct raid_channel *rch = op->rch;
	uint32_t bs = bs_of(op);
	struct member_io *mio;
	uint64_t off;
	int rc = 0;

	h->k = op->a->l.k;
	for (uint64_t m = t; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctzll(m);
		uint64_t lo = op->lo[i] > h->r0 ? op->lo[i] : h->r0;
		uint64_t hi = op->hi[i] < h->r1 ? op->hi[i] : h->r1;

		if (lo >= hi)
			continue;
		h->tmask |= 1ull << i;
		h->lo[i] = (uint32_t)lo;
		h->hi[i] = (uint32_t)hi;
	}
	if (pp != NULL) {
		pp += (h->r0 - op->r0) * bs;
		h->pp_blocks = h->r1 - h->r0;
		h->pp_crc = crc32c(pp, (size_t)h->pp_blocks * bs);
	}
	mio = mio_alloc(rch, ppl_entry_member(ent), 2 + __builtin_popcountll(t));
	if (mio == NULL)
		return -ENOMEM;
	mio->iovcnt = 1;
	if (pp != NULL)
		mio->iov[mio->iovcnt++] = (struct iovec){(void *)pp, (size_t)h->pp_blocks * bs};
	for (uint64_t m = cols != NULL ? h->tmask : 0; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctzll(m);
		struct iovec v = {cols[i] + (h->lo[i] - op->r0) * bs,
				  (size_t)(h->hi[i] - h->lo[i]) * bs};

		h->data_crc = crc32c_more(h->data_crc, v.iov_base, v.iov_len);
		h->data_blocks += h->hi[i] - h->lo[i];
		mio->iov[mio->iovcnt++] = v;
	}
	ppl_entry_header(rch, ent, h, &off);
	ppl_header_encode(hdr, bs, h);
	mio->iov[0] = (struct iovec){hdr, bs};
	mio->type = URAID_IO_WRITE;
	mio->flags = URAID_IO_FUA;
	mio->meta = true;
	mio->log = true;
	mio->offset_blocks = off;
	mio->num_blocks = 1 + h->pp_blocks + h->data_blocks;
	mio->done = done;
	mio->ctx = op;
	op->pending++;
	if (mio_submit(mio) != 0) {
		op->pending--;
		mio_free(mio);
		rc = -ENODEV;
	}
	raid_stat_add(op->a, rch->reactor, RS_PPL_ENTRIES, 1);
	raid_stat_add(op->a, rch->reactor, RS_PPL_BLOCKS, 1 + h->pp_blocks + h->data_blocks);
	return rc;
}

/* LOG: write the entries (FUA) to the parity members this write stores, then WRITE. Under
 * the journal an entry also carries the new data of its rows, so that recovery can redo the
 * whole update. A stripe whose earlier entries have not retired, or a ring without room,
 * waits. */
static void
op_log(struct stripe_op *op)
{
	struct raid_channel *rch = op->rch;
	struct raid_array *a = op->a;
	const struct layout *l = &a->l;
	uint32_t bs = bs_of(op);
	unsigned members[RAID_MAX_PARITY + 1], js[RAID_MAX_PARITY + 1], nmem = 0, nent;
	uint64_t t = op_written_data(op), rows = op->r1 - op->r0, chunk;
	uint32_t sizes_in[8], *sizes = NULL;
	bool zero = true, journal = a->policy == SB_POLICY_JOURNAL && op->wb_n == 0;
	int rc;

	/* Write-back: the data is in the log already (op_intent); the entries here are the
	 * partial parities alone, as under ppl, with the update's number. */
	op->state = OP_LOG;
	if (!atomic_load(&a->online)) {
		op->status = -EIO;
		op->state = OP_DONE;
		op_advance(op);
		return;
	}
	if (op->sh->ppl_live != op->wb_n) { /* entries of an earlier update */
		op_ppl_park_stripe(op);
		return;
	}
	for (unsigned c = 0; c < l->k + l->m; c++) {
		if (!(op->lost & (1ull << c)) && !raid_member_usable(rch, col_member(op, c))) {
			/* A member failed since the plan (perhaps while this waited): the entry
			 * would name a column no recovery can read back. Plan again, degraded. */
			op->state = OP_PLAN;
			op_advance(op);
			return;
		}
	}
	for (unsigned j = 0; j < l->m; j++) {
		unsigned c = l->k + j;

		if ((op->lost & (1ull << c)) && !raid_failures_recorded(a)) {
			/* Parity j's member failed, and the superblocks do not say so yet: a
			 * crash now brings it back as current, its parity stale. Recovery
			 * looks for the entry that mends it where the superblocks put the
			 * column, on that member; it would find none (no member takes parity
			 * j), or miss it on the member that does (a distributed spare being
			 * filled, a spare being rebuilt: the superblocks know neither yet).
			 * Wait. */
			TAILQ_INSERT_TAIL(&rch->ppl_sb_wait, op, wait_link);
			raid_stat_add(a, rch->reactor, RS_PPL_WAITS, 1);
			return;
		}
		if ((op->lost & (1ull << c)) && !(op->targets & (1ull << c)))
			continue; /* no parity j to log for */
		members[nmem] = col_member(op, c);
		js[nmem++] = j;
	}
	for (unsigned i = 0; journal && i < l->k; i++) {
		/* One more copy of the data, on a data member: the update survives the loss of
		 * every parity member it logged to (parity "m" names that copy). */
		if (!(op->lost & (1ull << i))) {
			members[nmem] = col_member(op, i);
			js[nmem++] = l->m;
			break;
		}
	}
	if (nmem == 0) {
		op_write(op); /* data only: nothing to keep consistent */
		return;
	}
	for (unsigned i = 0; i < l->k; i++) {
		if (!(t & (1ull << i)) || op->lo[i] != op->r0 || op->hi[i] != op->r1)
			zero = false;
	}
	if (op->encode_late && !zero) {
		/* A column the entry cannot name as written (a member being rebuilt there): the
		 * partial parity is the parity less the others' new data, so encode it now. */
		op_compute(op);
		op->encode_late = false;
	}
	/* Journal: entries of one update split its rows alike (write-back's data first). */
	chunk = zero && a->policy != SB_POLICY_JOURNAL ? rows : ppl_max_rows(rch);
	if (chunk > rows)
		chunk = rows;
	nent = (unsigned)((rows + chunk - 1) / chunk);
	sizes = nent <= ARRAY_SIZE(sizes_in) ? sizes_in : malloc(nent * sizeof(*sizes));
	if (sizes == NULL || op_ppl_alloc(op, (size_t)nmem * nent, bs) != 0) {
		rc = -ENOMEM;
		goto fail;
	}
	for (unsigned e = 0; e < nent; e++) {
		uint64_t x = op->r0 + e * chunk, y = x + chunk < op->r1 ? x + chunk : op->r1;

		sizes[e] = (uint32_t)(1 + (zero ? 0 : y - x) +
				      (journal ? op_data_in(op, t, x, y) : 0));
	}
	if (op->wb_n != 0 && nent == 1) {
		/* Write-back: the entries were taken with the data's (op_intent), each in its
		 * parity member's ring, and go there or nowhere: written to another member,
		 * an entry lands in that member's ring over whatever lives there (another
		 * update's copy of acknowledged data). A parity member without one came since
		 * (a spare), or took the column since (a distributed spare filled for the
		 * member that failed meanwhile): after a crash it is rebuilt, so its parity
		 * needs no entry. (A draining spare that takes a column back when the slot's
		 * new member fails mid-update holds it current, and recovery re-encodes it
		 * from the data logged; only a data column lost at that crash too would
		 * miss the partial parity.) */
		unsigned used = 0;

		for (unsigned x = 0; x < nmem; x++) {
			if (js[x] >= l->m || op->wb_pre[js[x]] == NULL ||
			    ppl_entry_member(op->wb_pre[js[x]]) != members[x])
				continue;
			members[used] = members[x];
			js[used] = js[x];
			op->ppl_ents[used++] = op->wb_pre[js[x]];
		}
		op->ppl_borrowed = true;
		nmem = used;
		rc = 0;
	} else {
		rc = ppl_reserve(rch, members, nmem, sizes, nent, op->sh->stripe, &op->log_op,
				 op->ppl_ents);
	}
	if (rc == -EAGAIN) {
		if (sizes != sizes_in)
			free(sizes);
		op_ppl_free(op);
		op_ppl_park(op);
		return;
	}
	if (rc != 0)
		goto fail;
	op->ppl_n = nmem * nent;
	op->ppl_t = t;
	if (!op->ppl_borrowed)
		op->sh->ppl_live += op->ppl_n;
	if (!zero && (rc = op_ppl_partial(op, t)) != 0)
		goto fail;

	op->pending = 1;
	for (unsigned x = 0; x < nmem; x++) {
		for (unsigned e = 0; e < nent; e++) {
			struct ppl_header h = {0};

			h.parity = js[x];
			h.r0 = (uint32_t)(op->r0 + e * chunk);
			h.r1 = (uint32_t)(h.r0 + chunk < op->r1 ? h.r0 + chunk : op->r1);
			rc = op_entry_write(op, op->ppl_ents[x * nent + e], &h,
					    op->ppl_hdr + (size_t)(x * nent + e) * bs, t,
					    zero || js[x] == l->m ? NULL : op->pp[js[x]],
					    journal ? op->col : NULL, op_io_done);
			if (rc == -ENOMEM)
				op->status = rc;
			else if (rc != 0)
				op->restart = true; /* the member went away: plan again */
		}
	}
	if (sizes != sizes_in)
		free(sizes);
	if (--op->pending == 0)
		op_advance(op);
	return;
fail:
	if (sizes != sizes_in)
		free(sizes);
	op->status = rc;
	op->state = OP_DONE;
	op_advance(op);
}

/* --- journal write-back --- */

/* A part whose data the operation keeps after the user's part was acknowledged. */
struct wb_copy {
	struct stripe_part part;
	struct iovec iov;
};

/* Parts [0, n) back to the user's, their copies freed. */
static void
op_wb_uncopy(struct stripe_op *op, unsigned n)
{
	for (unsigned p = 0; p < n; p++) {
		struct wb_copy *c = (struct wb_copy *)op->parts[p];

		uraid_dma_free(c->iov.iov_base);
		free(c);
		op->parts[p] = op->wb_user[p];
	}
	op->wb_copied = false;
}

static void
op_wb_free_entries(struct stripe_op *op)
{
	uraid_dma_free(op->wb_hdr);
	op->wb_hdr = op->wb_img = NULL;
}

/* The operation is over: copies go; its entries retire after the next flush, unless the
 * write was acknowledged and did not get home (then they stay live, never released, and
 * the next start applies them). */
static void
op_wb_free(struct stripe_op *op)
{
	bool released = false;

	if (op->wb_copied)
		op_wb_uncopy(op, op->nparts);
	for (unsigned e = 0; e < op->wb_n && (op->status == 0 || !op->wb_acked); e++) {
		ppl_release(op->rch, op->wb_ents[e]);
		released = true;
	}
	/* (op_ppl_release ran first: the partial parities it left to these went just now.) */
	if (released)
		op_log_released(op, op_log_member_lost(op));
	op_wb_free_entries(op);
}

/* Private copies of the parts' data: the user's buffers go back with the acknowledgement. */
static int
op_wb_copy(struct stripe_op *op)
{
	uint32_t bs = bs_of(op);

	for (unsigned p = 0; p < op->nparts; p++) {
		struct stripe_part *u = op->parts[p];
		struct wb_copy *c = calloc(1, sizeof(*c));
		size_t len = u->num_blocks * bs;

		if (c != NULL && u->kind == PART_WRITE) {
			c->iov.iov_base = uraid_dma_alloc(CACHE_LINE_BYTES, len);
			c->iov.iov_len = len;
		}
		if (c == NULL || (u->kind == PART_WRITE && c->iov.iov_base == NULL)) {
			free(c);
			op_wb_uncopy(op, p);
			return -ENOMEM;
		}
		c->part = *u;
		if (u->kind == PART_WRITE) {
			uraid_iov_to_buf(c->iov.iov_base, u->iov, u->iovcnt, u->byte_off, len);
			c->part.iov = &c->iov;
			c->part.iovcnt = 1;
			c->part.byte_off = 0;
		}
		op->wb_user[p] = u;
		op->parts[p] = &c->part;
	}
	op->wb_copied = true;
	return 0;
}

/* The data is in the log on enough members: the user's parts are answered now. */
static void
op_wb_ack(struct stripe_op *op)
{
	struct raid_array *a = op->a;
	uint64_t need = atomic_load_explicit(&a->sb_need, memory_order_acquire);
	bool hold = need > atomic_load_explicit(&a->sb_done, memory_order_acquire);

	for (unsigned p = 0; p < op->nparts; p++) {
		struct stripe_part *u = op->wb_user[p];

		if (hold) {
			/* A member failure is not in the superblocks yet (see op_finish). */
			stripe_part_hold(op->rch, u, need);
			continue;
		}
		stripe_part_finish(u, 0);
	}
	op->wb_acked = true;
}

static void
op_intent_finish(struct stripe_op *op)
{
	/* Short of a copy, the write is answered the write-through way, once it is home. */
	if (!op->wb_short && atomic_load(&op->a->online)) {
		op_wb_ack(op);
		crash_point(CRASH_JOURNAL_ACKED);
	}
	op->state = OP_PLAN;
	op_advance(op);
}

static void
op_intent_done(struct member_io *mio, int status)
{
	struct stripe_op *op = mio->ctx;

	if (status != 0) {
		if (!mio_on_journal(mio))
			raid_member_failed(op->a, mio->member, status);
		op->wb_short = true;
	}
	mio_free(mio);
	if (--op->pending == 0)
		op_intent_finish(op);
}

/*
 * INTENT (write-back): before anything else, the new data goes to the log (FUA) on every
 * parity member of the stripe and one data member, m + 1 copies, as data-only entries of the
 * update (parity m + 1 + x); then the user's write is acknowledged and the update goes on as
 * under write-through, its partial parities logged later with the same update number. The
 * entries for those are taken now with the data's, all or none, so an update holding log
 * space never waits for more. Recovery applies the data whether or not the update got
 * further. A stripe whose earlier entries have not retired, or a ring without room, waits;
 * when copies cannot be made the write is answered once it is home.
 */
static void
op_intent(struct stripe_op *op)
{
	struct raid_channel *rch = op->rch;
	struct raid_array *a = op->a;
	const struct layout *l = &a->l;
	uint32_t bs = bs_of(op);
	uint64_t rows = op->r1 - op->r0, t = 0;
	unsigned members[2 * RAID_MAX_PARITY + 1], js[2 * RAID_MAX_PARITY + 1], n = 0, ncopy;
	uint32_t sizes[2 * RAID_MAX_PARITY + 1];
	uint8_t *img[RAID_MAX_MEMBERS]; /* column i of the data logged (row r0 at 0) */
	bool gather = false;
	int rc;

	op->state = OP_INTENT;
	if (!atomic_load(&a->online)) {
		op->status = -EIO;
		op->state = OP_DONE;
		op_advance(op);
		return;
	}
	if (op->sh->ppl_live != 0) {
		op_ppl_park_stripe(op);
		return;
	}
	for (unsigned i = 0; i < l->k; i++) {
		if (touched(op, i))
			t |= 1ull << i;
	}
	/* The copies of the data: the parity members and one data member. */
	for (unsigned c = l->k; c < l->k + l->m; c++) {
		if (raid_member_usable(rch, col_member(op, c)))
			members[n++] = col_member(op, c);
	}
	for (unsigned i = 0; i < l->k; i++) {
		if (raid_member_usable(rch, col_member(op, i))) {
			members[n++] = col_member(op, i);
			break;
		}
	}
	ncopy = n;
	for (unsigned x = 0; x < ncopy; x++)
		sizes[x] = 1 + op_data_in(op, t, op->r0, op->r1);
	/* The partial parities' entries, one per parity member. */
	for (unsigned j = 0; j < l->m; j++) {
		if (raid_member_usable(rch, col_member(op, l->k + j))) {
			members[n] = col_member(op, l->k + j);
			js[n] = j;
			sizes[n++] = (uint32_t)(1 + rows);
		}
	}
	if (ncopy < 2 || t == 0 || rows > ppl_max_rows(rch))
		goto through;
	if (!op->wb_copied && op_wb_copy(op) != 0)
		goto through;
	if (!ppl_fits_list(rch, members, sizes, n)) {
		op_ppl_park(op); /* (before allocating: a waiter is tried again often) */
		return;
	}
	/* A column the copy holds whole is logged from there; the others are gathered. */
	for (uint64_t m = t; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctzll(m);

		if ((img[i] = op_direct(op, i)) == NULL)
			gather = true;
	}
	op->wb_hdr = uraid_dma_alloc(CACHE_LINE_BYTES,
				     ((size_t)ncopy + (gather ? l->k * rows : 0)) * bs);
	if (op->wb_hdr == NULL)
		goto fail;
	op->wb_img = op->wb_hdr + (size_t)ncopy * bs;
	rc = ppl_reserve_list(rch, members, sizes, n, op->sh->stripe, &op->log_op, op->wb_ents);
	if (rc != 0)
		goto fail;
	op->wb_n = n;
	op->sh->ppl_live += n;
	for (unsigned x = ncopy; x < n; x++)
		op->wb_pre[js[x]] = op->wb_ents[x];
	for (uint64_t m = t; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctzll(m);

		if (img[i] != NULL)
			continue;
		img[i] = op->wb_img + (size_t)i * rows * bs;
		op_copy_new(op, i, img[i], op->lo[i], op->hi[i]);
	}
	op->pending = 1;
	for (unsigned x = 0; x < ncopy; x++) {
		struct ppl_header h = {0};

		h.parity = l->m + 1 + x;
		h.r0 = (uint32_t)op->r0;
		h.r1 = (uint32_t)op->r1;
		if (op_entry_write(op, op->wb_ents[x], &h, op->wb_hdr + (size_t)x * bs, t, NULL,
				   img, op_intent_done) != 0)
			op->wb_short = true;
	}
	if (--op->pending == 0)
		op_intent_finish(op);
	return;
fail:
	op_wb_free_entries(op);
through:
	op->state = OP_PLAN;
	op_advance(op);
}

/* --- mirrors --- */

static void
mirror_start(struct stripe_op *op)
{
	struct stripe_part *part = op->parts[0];
	struct raid_array *a = op->a;
	uint64_t lba = part->stripe * a->l.strip_blocks + part->start_blocks;
	bool write = part->mirror_type == URAID_IO_WRITE;
	unsigned issued = 0;

	op->state = OP_WRITE;
	op->pending = 1;
	for (unsigned c = 0; c < a->l.copies; c++) {
		struct layout_chunk ch;
		int rc;

		layout_map(&a->l, lba, part->num_blocks, c, &ch);
		if (write && !raid_member_takes_write(op->rch, ch.member,
						      ch.member_offset_blocks / a->l.strip_blocks))
			continue; /* its rebuild writes it */
		rc = op_member_io(op, ch.member, part->mirror_type, ch.member_offset_blocks,
				  part->num_blocks, NULL, write ? part : NULL, part->byte_off,
				  write ? part->flags : 0);
		if (rc == -ENOMEM) {
			op->status = rc;
			break;
		}
		issued += rc == 0;
	}
	if (issued == 0 && op->status == 0)
		op->status = -EIO;
	if (--op->pending == 0)
		op_advance(op);
}

/* A check covers the strip, or a log array's up to its last live block. */
static uint64_t
mirror_check_len(const struct stripe_op *op)
{
	uint64_t n = op->parts[0]->num_blocks;

	return n < op->a->l.strip_blocks ? n : op->a->l.strip_blocks;
}

static void
mirror_check_start(struct stripe_op *op)
{
	struct stripe_part *part = op->parts[0];
	struct raid_array *a = op->a;
	uint64_t lba = part->stripe * a->l.strip_blocks;
	uint64_t len = op->kind == PART_CHECK ? mirror_check_len(op) : a->l.strip_blocks;

	op_release_buffers(op);
	op->restart = false;
	op->state = OP_READ;
	op->pending = 1;
	op->r0 = 0;
	op->r1 = len;
	for (unsigned c = 0; c < a->l.copies && op->status == 0; c++) {
		struct layout_chunk ch;
		int rc;

		layout_map(&a->l, lba, len, c, &ch);
		if (!op_readable(op, ch.member, ch.member_offset_blocks / a->l.strip_blocks)) {
			part->unreadable = op->kind == PART_CHECK; /* only copies read compare */
			continue;
		}
		if (op->kind != PART_CHECK && op->col_set != 0)
			continue; /* a rebuild or a read uses one good copy */
		if (op_scratch(op, c) == NULL) {
			op->status = -ENOMEM;
			break;
		}
		rc = op_member_io(op, ch.member, URAID_IO_READ, ch.member_offset_blocks,
				  ch.num_blocks, op->col[c], NULL, 0, 0);
		if (rc == -ENOMEM)
			op->status = rc;
		else if (rc != 0)
			part->unreadable = true;
	}
	if (--op->pending == 0)
		op_advance(op);
}

/* Mirror read (after a read error on another copy): the wanted blocks of the copy read. */
static void
mirror_copy_out(struct stripe_op *op)
{
	struct stripe_part *part = op->parts[0];
	uint8_t *src = op->col_set ? op->col[__builtin_ctzll(op->col_set)] : NULL;

	if (src == NULL) {
		op->status = -EIO;
		return;
	}
	uraid_iov_from_buf(part->iov, part->iovcnt, part->byte_off,
			   src + part->start_blocks * bs_of(op), part->num_blocks * bs_of(op));
}

/* Mirror rebuild: the copy read goes to every copy that is written but not yet readable. */
static void
mirror_rebuild_write(struct stripe_op *op)
{
	struct stripe_part *part = op->parts[0];
	struct raid_array *a = op->a;
	uint64_t lba = part->stripe * a->l.strip_blocks;
	uint8_t *src = op->col_set ? op->col[__builtin_ctzll(op->col_set)] : NULL;

	op->state = OP_WRITE;
	op->pending = 1;
	if (src == NULL && op->status == 0)
		op->status = -EIO; /* no readable copy */
	for (unsigned c = 0; c < a->l.copies && src != NULL && op->status == 0; c++) {
		struct layout_chunk ch;
		uint64_t unit;
		int rc;

		layout_map(&a->l, lba,
			   op->kind == PART_CHECK ? mirror_check_len(op) : a->l.strip_blocks, c,
			   &ch);
		unit = ch.member_offset_blocks / a->l.strip_blocks;
		if (!raid_member_writable(op->rch, ch.member))
			continue;
		if (op->kind == PART_CHECK) {
			/* Repair: only copies that were read and differ from the first. */
			if (!(op->col_set & (1ull << c)) ||
			    memcmp(op->col[c], src, ch.num_blocks * a->bdev.block_size) == 0)
				continue;
		} else if (op_readable(op, ch.member, unit)) {
			continue;
		}
		rc = op_member_io(op, ch.member, URAID_IO_WRITE, ch.member_offset_blocks,
				  ch.num_blocks, src, NULL, 0, 0);
		if (rc == -ENOMEM)
			op->status = -ENOMEM;
		else if (rc != 0 && op->kind == PART_REBUILD)
			op->status = -EIO; /* never count a unit rebuilt that was not */
	}
	if (--op->pending == 0)
		op_advance(op);
}

/* --- replacement copies --- */

/* PART_COPY: member strip `unit` of slot `slot` is read from the member... */
static void
copy_start(struct stripe_op *op)
{
	struct stripe_part *part = op->parts[0];
	uint64_t S = op->a->l.strip_blocks;
	uint8_t *buf = op_scratch(op, 0);

	op->state = OP_READ;
	op->pending = 1;
	if (buf == NULL)
		op->status = -ENOMEM;
	else if (!raid_member_readable(op->rch, part->slot, part->unit) ||
		 op_member_io(op, part->slot, URAID_IO_READ, part->unit * S, S, buf, NULL, 0, 0) !=
			 0)
		op->status = -EIO;
	if (--op->pending == 0)
		op_advance(op);
}

/* ... and written to its replacement. Being the stripe's one operation, it cannot overtake
 * a user write to the strip, and later writes go to the replacement as well. */
static void
copy_write(struct stripe_op *op)
{
	struct stripe_part *part = op->parts[0];
	uint64_t S = op->a->l.strip_blocks;

	op->state = OP_WRITE;
	op->pending = 1;
	op->to_repl = true;
	if (op_member_io(op, part->slot, URAID_IO_WRITE, part->unit * S, S, op->col[0], NULL, 0,
			 0) != 0)
		op->status = -EIO;
	op->to_repl = false;
	if (--op->pending == 0)
		op_advance(op);
}

/* --- the state machine --- */

static void stripe_run_next(struct raid_channel *rch, struct stripe_head *sh);

void
stripe_part_hold(struct raid_channel *rch, struct stripe_part *part, uint64_t until)
{
	part->status = 0;
	part->held_until = until;
	TAILQ_INSERT_TAIL(&rch->held, part, link);
}

void
stripe_part_release(struct stripe_part *part)
{
	/* If the superblocks could not record the failure anywhere, the array is offline and
	 * the write is not safe: it fails. */
	stripe_part_finish(part, atomic_load(&part->a->online) ? part->status : -EIO);
}

static void
op_retry_msg(void *arg)
{
	op_advance(arg);
}

static void
op_finish(struct stripe_op *op)
{
	struct raid_channel *rch = op->rch;
	struct stripe_head *sh = op->sh;
	struct raid_array *a = op->a;
	int status = op->status;
	uint64_t need = atomic_load_explicit(&a->sb_need, memory_order_acquire);
	bool hold =
		(op->kind == PART_WRITE || op->kind == PART_ZEROES || op->kind == PART_MIRROR) &&
		need > atomic_load_explicit(&a->sb_done, memory_order_acquire);

	if (status == 0 && !atomic_load(&a->online))
		status = -EIO;
	op_release_buffers(op);
	op_ppl_release(op);
	if (op->wb_acked && status != 0 && atomic_load(&a->online)) {
		/* Acknowledged, so it must get home: plan it again (from the message queue). */
		op->status = 0;
		op->state = OP_PLAN;
		uraid_reactor_send(uraid_reactor_self(), op_retry_msg, op);
		return;
	}
	op->status = status;
	op_wb_free(op);
	if (op->bm_held)
		bitmap_exit(a, rch->reactor, sh->stripe);
	for (unsigned p = 0; p < op->nparts && !op->wb_acked; p++) {
		if (hold && status == 0) {
			/* A member failure is not in the superblocks yet: acknowledge the write
			 * only once it is. */
			stripe_part_hold(rch, op->parts[p], need);
			continue;
		}
		stripe_part_finish(op->parts[p], status);
	}
	sh->active = NULL;
	pool_put(&rch->ops, op);
	stripe_run_next(rch, sh);
}

/*
 * Transitions:
 *   INTENT   -> PLAN (journal write-back: the data logged, the user answered)
 *   PLAN     -> READ (op_plan issues reads; with none, READ is passed through at once)
 *   READ     -> PLAN if a read failed (the member is now failed: plan again, degraded)
 *            -> COMPUTE
 *   COMPUTE  -> DONE for reads and checks (after copy-out / compare)
 *            -> LOG (ppl, journal: the log entries go first) -> WRITE
 *            -> WRITE
 *   LOG, WRITE -> PLAN if a member failed under a logged write
 *   WRITE    -> DONE when every member write has completed (a write answered at INTENT that
 *               failed is planned again: it must get home)
 * Mirror writes go PLAN -> WRITE -> DONE; mirror checks PLAN -> READ -> DONE; replacement
 * copies PLAN -> READ -> WRITE -> DONE.
 */
static void
op_advance(struct stripe_op *op)
{
	struct raid_array *a = op->a;

	for (;;) {
		switch (op->state) {
		case OP_INTENT:
			op_intent(op); /* comes back here as PLAN */
			return;
		case OP_PLAN:
			if (op->kind == PART_COPY) {
				copy_start(op);
				return;
			}
			if (op->kind == PART_MIRROR) {
				mirror_start(op);
				return;
			}
			if ((op->kind == PART_CHECK || op->kind == PART_REBUILD ||
			     op->kind == PART_READ) &&
			    a->mirrored) {
				mirror_check_start(op); /* reads; a rebuild then writes */
				return;
			}
			op_plan(op); /* issues reads, comes back here when they are done */
			return;
		case OP_READ:
			if (op->status != 0) {
				op->state = OP_DONE;
				break;
			}
			if (op->kind == PART_COPY) {
				if (op->restart) {
					op->status = -EIO; /* the member failed */
					op->state = OP_DONE;
					break;
				}
				copy_write(op);
				return;
			}
			if (a->mirrored && (op->kind == PART_REBUILD || op->kind == PART_READ)) {
				if (op->restart) { /* the copy read failed: read another */
					op->state = OP_PLAN;
					break;
				}
				if (op->kind == PART_READ) {
					mirror_copy_out(op);
					raid_stat_add(a, op->rch->reactor, RS_READ_REPAIRED, 1);
				}
				mirror_rebuild_write(op);
				return;
			}
			if (a->mirrored) { /* mirror check: compare every copy with the first */
				struct stripe_part *part = op->parts[0];
				int first = -1;

				for (unsigned c = 0; c < a->l.copies; c++) {
					if (!col_has(op, c))
						continue;
					if (first < 0)
						first = (int)c;
					else if (memcmp(op->col[first], op->col[c],
							mirror_check_len(op) *
								a->bdev.block_size) != 0)
						part->bad = true;
				}
				if (part->bad && part->repair) {
					/* md's way: the first copy is taken as right. */
					part->repaired = true;
					mirror_rebuild_write(op);
					return;
				}
				op->state = OP_DONE;
				break;
			}
			if (op->restart) {
				op->state = OP_PLAN;
				break;
			}
			op->state = OP_COMPUTE;
			break;
		case OP_COMPUTE:
			op->status = op->encode_late ? 0 : op_compute(op);
			if (op->status != 0) {
				op->state = OP_DONE;
				break;
			}
			if (op->kind == PART_READ) {
				op_copy_out(op);
				raid_stat_add(a, op->rch->reactor, RS_DEGRADED_R, 1);
				if (op->parts[0]->exclude && op->targets) {
					/* The member that failed the read gets the data back. */
					raid_stat_add(a, op->rch->reactor, RS_READ_REPAIRED, 1);
					op_write(op);
					return;
				}
				op->state = OP_DONE;
				break;
			}
			if (op->kind == PART_CHECK) {
				op_check_parity(op);
				if (op->targets) {
					op_write(op); /* repair */
					return;
				}
				op->state = OP_DONE;
				break;
			}
			if (op->kind == PART_REBUILD) {
				op_write(op); /* the targets only */
				return;
			}
			raid_stat_add(a, op->rch->reactor,
				      op->lost		      ? RS_DEGRADED_W
				      : op->mode == MODE_FULL ? RS_FULL
				      : op->mode == MODE_RMW  ? RS_RMW
							      : RS_RCW,
				      1);
			if (raid_logged(a)) {
				op_log(op); /* comes back here as LOG */
				return;
			}
			op_write(op); /* comes back here as WRITE */
			return;
		case OP_LOG:
		case OP_WRITE:
			if (op->restart && op->ppl_n) {
				/* A member failed under a logged write: drop these entries, plan
				 * again degraded, log again, as a new update: the dropped entries
				 * stay on disk until their ring moves past them, and a recovery
				 * applies only the newest update of a stripe (two entries of one
				 * parity in one update would be rejected, the stripe left
				 * unmended). Write-back keeps the number: its data entries, taken
				 * at the intent, pair with the partial parities by it. */
				op_ppl_release(op);
				if (op->wb_n == 0)
					op->log_op = 0;
				op->state = OP_PLAN;
				break;
			}
			if (op->state == OP_LOG && op->status == 0) {
				crash_point(CRASH_LOG_WRITTEN);
				op_write(op); /* comes back here as WRITE */
				return;
			}
			op->state = OP_DONE;
			break;
		case OP_DONE:
			op_finish(op);
			return;
		}
	}
}

/* Take the head of the queue, or several queued writes that together cover the stripe. */
static unsigned
take_parts(struct stripe_head *sh, struct stripe_op *op, uint64_t stripe_blocks)
{
	struct stripe_part *head = TAILQ_FIRST(&sh->queue), *p;
	uint64_t covered = 0;
	unsigned n = 0;

	if (head->kind == PART_WRITE || head->kind == PART_ZEROES) {
		/* Collect consecutive non-overlapping writes; merge if they cover it all. */
		for (p = head; p != NULL && n < MAX_MERGE; p = TAILQ_NEXT(p, link)) {
			bool overlap = false;

			if (p->kind != PART_WRITE && p->kind != PART_ZEROES)
				break;
			for (unsigned i = 0; i < n; i++) {
				struct stripe_part *q = op->parts[i];

				if (p->start_blocks < q->start_blocks + q->num_blocks &&
				    q->start_blocks < p->start_blocks + p->num_blocks)
					overlap = true;
			}
			if (overlap)
				break;
			op->parts[n++] = p;
			covered += p->num_blocks;
			if (covered == stripe_blocks)
				break;
		}
		if (n > 1 && covered == stripe_blocks) {
			for (unsigned i = 0; i < n; i++)
				TAILQ_REMOVE(&sh->queue, op->parts[i], link);
			return n;
		}
	}
	op->parts[0] = head;
	TAILQ_REMOVE(&sh->queue, head, link);
	return 1;
}

static void
stripe_run_next(struct raid_channel *rch, struct stripe_head *sh)
{
	struct raid_array *a = rch->a;
	struct stripe_part *p;
	struct stripe_op *op;
	struct stripe_bucket *b = bucket_of(rch, sh->stripe);

	if (sh->active != NULL)
		return;
	if (sh->claim == NULL) { /* (a claimant's head holds its slot from the start) */
		if (runs_overlap(b->direct, sh->stripe, 0, 0))
			return; /* (a mirrored write without a head runs it when it is done) */
		if (rch->claiming && rch->claim_state[b - rch->buckets] != B_HELD)
			return; /* (stripe_claims_poll runs it once the bucket holds its slot) */
	}
	while ((p = TAILQ_FIRST(&sh->queue)) != NULL && p->kind == PART_GATE) {
		/* No write of the stripe in flight: a read may go to the members now. Always
		 * by message: the reader may come straight back to this stripe. */
		TAILQ_REMOVE(&sh->queue, p, link);
		p->status = 0;
		uraid_reactor_send(p->origin, part_done_msg, p);
	}
	if (TAILQ_EMPTY(&sh->queue)) {
		if (sh->ppl_live == 0)
			sh_remove(rch, sh);
		return;
	}
	op = pool_get(&rch->ops);
	if (op == NULL) {
		p = TAILQ_FIRST(&sh->queue);
		TAILQ_REMOVE(&sh->queue, p, link);
		stripe_part_finish(p, -ENOMEM);
		stripe_run_next(rch, sh);
		return;
	}
	/* Only the header is reset: the arrays after it are written before they are read,
	 * guarded by the masks and counts. */
	memset(op, 0, offsetof(struct stripe_op, col));
	op->rch = rch;
	op->a = a;
	op->sh = sh;
	op->nparts = take_parts(sh, op, layout_stripe_data_blocks(&a->l));
	op->kind = op->parts[0]->kind;
	if (op->nparts > 1)
		raid_stat_add(a, rch->reactor, RS_MERGED, 1);
	if (a->parity && op->kind != PART_COPY) {
		if (op->kind == PART_CHECK || op->kind == PART_REBUILD) {
			/* Checks and rebuilds take the stripe whole. */
			/* (A log array's check stops after the last live block when that is in
			 * the first strip: past it no column holds data, and the parity there
			 * belongs to nothing.) */
			uint64_t r1 = op->kind == PART_CHECK &&
						      op->parts[0]->num_blocks < a->l.strip_blocks
					      ? op->parts[0]->num_blocks
					      : a->l.strip_blocks;

			for (unsigned i = 0; i < a->l.k; i++) {
				op->lo[i] = 0;
				op->hi[i] = r1;
			}
			op->r0 = 0;
			op->r1 = r1;
		} else {
			op_map_parts(op);
		}
	}
	sh->active = op;
	op->state = a->journal_wb && (op->kind == PART_WRITE || op->kind == PART_ZEROES) ? OP_INTENT
											 : OP_PLAN;
	if (a->bm != NULL && !sh->bm_held &&
	    (op->kind == PART_WRITE || op->kind == PART_ZEROES || op->kind == PART_MIRROR)) {
		/* The region's bit goes to disk before anything is written in it. */
		if (!bitmap_enter(a, rch->reactor, sh->stripe)) {
			TAILQ_INSERT_TAIL(&rch->bm_wait, op, wait_link);
			return;
		}
		op->bm_held = true;
	}
	op_advance(op);
}

void
stripe_bitmap_ready(struct raid_array *a)
{
	struct raid_channel *rch = raid_owner_channel(a);
	struct stripe_op *op, *tmp;

	if (rch == NULL)
		return;
	TAILQ_FOREACH_SAFE(op, &rch->bm_wait, wait_link, tmp) {
		if (!bitmap_enter(a, rch->reactor, op->sh->stripe))
			continue;
		TAILQ_REMOVE(&rch->bm_wait, op, wait_link);
		op->bm_held = true;
		op_advance(op);
	}
}

void
stripe_ppl_retired(struct raid_channel *rch, uint64_t stripe)
{
	struct stripe_head *sh = sh_find(bucket_of(rch, stripe)->heads, stripe);

	if (sh == NULL || sh->ppl_live == 0)
		return;
	if (sh->ppl_waiter != NULL) {
		/* Its waiter looks again at the next stripe_ppl_ready: the caller's round or
		 * anchor runs one, and else the channel's poller does. */
		TAILQ_REMOVE(&rch->ppl_stripe_wait, sh->ppl_waiter, wait_link);
		TAILQ_INSERT_TAIL(&rch->ppl_wait, sh->ppl_waiter, wait_link);
		sh->ppl_waiter = NULL;
		rch->ppl_woken = true;
	}
	if (--sh->ppl_live == 0 && sh->active == NULL && TAILQ_EMPTY(&sh->queue))
		sh_remove(rch, sh);
}

void
stripe_ppl_ready(struct raid_channel *rch)
{
	TAILQ_HEAD(, stripe_op) ready = TAILQ_HEAD_INITIALIZER(ready);
	struct stripe_op *op;

	rch->ppl_woken = false;
	TAILQ_CONCAT(&ready, &rch->ppl_wait, wait_link);
	if (raid_failures_recorded(rch->a))
		TAILQ_CONCAT(&ready, &rch->ppl_sb_wait, wait_link);
	if (!atomic_load(&rch->a->online)) {
		/* Offline: no entry retires any more; the waiters fail. */
		TAILQ_FOREACH(op, &rch->ppl_stripe_wait, wait_link)
			op->sh->ppl_waiter = NULL;
		TAILQ_CONCAT(&ready, &rch->ppl_stripe_wait, wait_link);
	}
	while ((op = TAILQ_FIRST(&ready)) != NULL) {
		TAILQ_REMOVE(&ready, op, wait_link);
		if (op->state == OP_INTENT)
			op_intent(op); /* may wait again */
		else
			op_log(op);
	}
}

/*
 * --- mirror writes without an operation ---
 *
 * A mirrored write (or unmap, or zeroes) whose strip has no head (no operation active or
 * queued) goes to the copies at once, with neither an operation nor a head: its hash bucket
 * lists it (b->direct) until every copy has answered. A write that overlaps one listed on the
 * same strip, and whatever else comes for the strip meanwhile, gets a head and queues;
 * stripe_run_next leaves the head waiting while a write on its strip is listed, and the last
 * of them, when done, runs it. Overlapping writes therefore reach every copy in the same
 * order, which is what keeps the copies identical; the member writes, failures and the hold
 * for the superblocks are mirror_start's and op_finish's. The submitting reactor runs it when
 * it owns the strip (no part is made); a part runs it when it arrives at the owner. A strip
 * with a head, a bitmap region that is not dirty yet, and zoned members go the usual way.
 */
static void
mirror_direct_finish(struct mirror_run *mr)
{
	struct raid_channel *rch = mr->rch;
	struct raid_array *a = rch->a;
	uint64_t strip = mr->strip;
	uint64_t need = atomic_load_explicit(&a->sb_need, memory_order_acquire);
	int status = mr->status;
	uint64_t hold;
	struct stripe_bucket *b;
	struct stripe_head *sh;
	struct mirror_run **pp;

	if (status == 0 && !atomic_load(&a->online))
		status = -EIO;
	if (mr->bm_held)
		bitmap_exit(a, rch->reactor, strip);
	hold = 0;
	if (status == 0 && need > atomic_load_explicit(&a->sb_done, memory_order_acquire))
		hold = need;
	if (mr->claim != NULL) {
		/* Let go first: the answer may reuse mr, and a write it submits may claim. */
		claim_let_go(mr);
		mr->done(mr, status, hold);
		return;
	}
	/* Out of the list before the answer, which may reuse mr. A write the answer submits
	 * for the strip still queues behind a head waiting there (mirror_direct). */
	b = bucket_of(rch, strip);
	for (pp = &b->direct; *pp != mr; pp = &(*pp)->next)
		;
	*pp = mr->next;
	mr->done(mr, status, hold);
	if (!runs_overlap(b->direct, strip, 0, 0) && (sh = sh_find(b->heads, strip)) != NULL)
		stripe_run_next(rch, sh);
	if (rch->claiming)
		bucket_let_go(rch, b);
}

static void
mirror_direct_done(struct member_io *mio, int status)
{
	struct mirror_run *mr = mio->ctx;

	if (status != 0)
		raid_member_failed(mio->rch->a, mio->member, status);
	mio_free(mio);
	if (--mr->pending == 0)
		mirror_direct_finish(mr);
}

/* The copies of a strip written now from rch, if nothing else holds it: on its owner its
 * bucket lists the write; elsewhere (claim) it takes a claim in owner's table. False: not
 * taken. */
static bool
mirror_direct(struct mirror_run *mr, struct raid_channel *rch, bool claim, unsigned owner,
	      uint64_t strip, uint64_t start, uint64_t num, enum uraid_io_type type, uint32_t flags,
	      const struct iovec *iov, int iovcnt, uint64_t byte_off)
{
	struct raid_array *a = rch->a;
	struct stripe_bucket *b = bucket_of(rch, strip);
	uint64_t lba = strip * a->l.strip_blocks + start;
	unsigned issued = 0;

	if (a->sb_zone_blocks != 0 || (!claim && (sh_find(b->heads, strip) != NULL ||
						  runs_overlap(b->direct, strip, start, num) ||
						  (rch->claiming && !bucket_hold(rch, b, false)))))
		return false;
	mr->rch = rch;
	mr->strip = strip;
	mr->start = start;
	mr->num = num;
	mr->claim = NULL;
	if (claim && (mr->claim = claim_take(rch, owner, mr)) == NULL)
		return false;
	if (a->bm != NULL && !bitmap_try_enter(a, rch->reactor, strip)) {
		if (claim)
			claim_let_go(mr);
		else if (rch->claiming)
			bucket_let_go(rch, b);
		return false;
	}
	if (!claim) {
		mr->next = b->direct;
		b->direct = mr;
	}
	mr->bm_held = a->bm != NULL;
	mr->status = 0;
	mr->pending = 1;
	for (unsigned c = 0; c < a->l.copies; c++) {
		struct layout_chunk ch;
		struct member_io *mio;

		layout_map(&a->l, lba, num, c, &ch);
		mio = mio_alloc(rch, ch.member, 0);
		if (mio == NULL) {
			mr->status = -ENOMEM;
			break;
		}
		mio->type = type;
		mio->offset_blocks = ch.member_offset_blocks;
		mio->num_blocks = num;
		mio->done = mirror_direct_done;
		mio->ctx = mr;
		if (type == URAID_IO_WRITE) {
			mio->flags = flags;
			if (mio_set_iov(mio, iov, iovcnt, byte_off, num * a->bdev.block_size) !=
			    0) {
				mio_free(mio);
				mr->status = -ENOMEM;
				break;
			}
		}
		mr->pending++;
		if (mio_submit(mio) != 0) {
			mr->pending--;
			mio_free(mio);
			continue;
		}
		issued++;
	}
	if (issued == 0 && mr->status == 0)
		mr->status = -EIO;
	if (--mr->pending == 0)
		mirror_direct_finish(mr);
	return true;
}

bool
stripe_mirror_direct(struct mirror_run *mr, struct raid_channel *here, uint64_t strip,
		     uint64_t start, uint64_t num, enum uraid_io_type type, uint32_t flags,
		     const struct iovec *iov, int iovcnt, uint64_t byte_off)
{
	struct raid_array *a = here->a;
	unsigned owner = stripe_owner(a, strip);
	struct raid_channel *rch;

	if (owner == here->reactor)
		return (rch = raid_owner_channel(a)) != NULL &&
		       mirror_direct(mr, rch, false, owner, strip, start, num, type, flags, iov,
				     iovcnt, byte_off);
	/* A claimant writes from the channel the write came in on: it holds no channel of
	 * its own on the array (a thread that is no owner may go away before the array). */
	if (a->claims == NULL ||
	    !atomic_load_explicit(&a->claims_on[owner], memory_order_acquire) ||
	    !mirror_direct(mr, here, true, owner, strip, start, num, type, flags, iov, iovcnt,
			   byte_off))
		return false;
	raid_stat_add(a, here->reactor, RS_CLAIMED, 1);
	return true;
}

/* A part's direct run answered. */
static void
part_direct_done(struct mirror_run *mr, int status, uint64_t hold_until)
{
	struct stripe_part *part = container_of(mr, struct stripe_part, mr);

	if (hold_until != 0)
		stripe_part_hold(mr->rch, part, hold_until);
	else
		stripe_part_finish(part, status);
}

static void
stripe_arrive(void *arg)
{
	struct stripe_part *part = arg;
	struct raid_channel *rch = raid_owner_channel(part->a);
	struct stripe_head *sh;

	if (rch != NULL && !rch->claiming && rch->a->claims != NULL &&
	    part->origin != uraid_reactor_self() &&
	    (part->kind == PART_MIRROR || part_claimable(part, part->origin)))
		/* A write from another reactor: from now on such writes may claim their strips
		 * (if the slots cannot be had, the next one tries again). Not for a parity part
		 * from this core, which does not claim (part_claimable). */
		claims_start(rch);
	if (rch != NULL && part->kind == PART_MIRROR) {
		part->mr.done = part_direct_done;
		if (mirror_direct(&part->mr, rch, false, 0, part->stripe, part->start_blocks,
				  part->num_blocks, part->mirror_type, part->flags, part->iov,
				  part->iovcnt, part->byte_off))
			return;
	}
	if (rch == NULL || (sh = sh_get(rch, part->stripe)) == NULL) {
		stripe_part_finish(part, -ENOMEM);
		return;
	}
	TAILQ_INSERT_TAIL(&sh->queue, part, link);
	stripe_run_next(rch, sh);
}

void
stripe_submit_on(struct stripe_part *part, struct raid_channel *here)
{
	struct raid_array *a = part->a;
	unsigned owner = stripe_owner(a, part->stripe);
	struct uraid_reactor *r = uraid_reactor_get(owner);

	if (r == uraid_reactor_self())
		stripe_arrive(part);
	else if (here == NULL || !part_claimable(part, r) ||
		 !atomic_load_explicit(&a->claims_on[owner], memory_order_acquire) ||
		 !stripe_claim_part(here, owner, part))
		uraid_reactor_send(r, stripe_arrive, part);
}

void
stripe_submit(struct stripe_part *part)
{
	stripe_submit_on(part, NULL);
}
