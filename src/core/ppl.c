/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The partial parity log (consistency policy ppl): md's PPL idea for every parity level; and
 * the journal (policy journal), which is the same log carrying the update's data too.
 *
 * Theory of operation.
 *
 * The hole. A stripe update writes data and parity to several members; a power cut can leave
 * some of them new and some old, so parity no longer matches data. Nothing is wrong until a
 * member is lost: then blocks rebuilt from that parity are garbage, including blocks nobody
 * was writing. The log records, before a stripe is touched, what is needed to make its parity
 * match whatever the members hold after a cut.
 *
 * The entry. A write of stripe s changes data columns T over rows [lo_i, hi_i) each; parity j
 * (P, Q, ...) over rows [r0, r1) becomes P_j = pp_j + sum_{i in T} G[j][i] * D_i, where the
 * partial parity pp_j gathers every column the write does not touch (untouched rows of T
 * columns included) and, with a member missing, the lost columns' data too, which now lives
 * in parity alone. pp_j = P_j(new) + sum_{i in T} G[j][i] * new_i, computed from the new
 * parity the write is about to store. The entry (a header block with s, j, the rows, T and
 * its ranges, then pp_j) goes to parity j's own member with FUA before any data or parity
 * write of the stripe; when T is every column over every row, pp_j is zero and only the
 * header is written.
 *
 * Recovery. After an unclean shutdown, before the array goes online, the live entries of the
 * last run are gathered from every member and grouped per stripe: the entries of one update
 * (one per parity it logged, tied by an update number) over the same rows. pp_j is parity j of
 * the stripe with the written rows of T zeroed; so with those rows zeroed, the readable data
 * columns and the logged pp_j as parity columns, the columns missing now decode to what the
 * update held for them (a missing column's data lives in parity alone). Then every parity is
 * encoded afresh from the data on disk plus the decoded columns, whether each block of T holds
 * old or new data: parities agree with the data and with each other, also when the power went
 * before every entry of the update was written. Rows where a written column is on a member
 * missing now are left alone and reported: what the update wrote there is nowhere else (md's
 * PPL has the same limit; only a journal closes it). A write that sees a member fail is
 * planned again, degraded, and logged again; a write whose parity member failed waits until
 * the superblocks record the failure, so that member cannot come back as current after a
 * crash, its parity stale: also when a spare takes that parity (a distributed spare being
 * filled, a spare being rebuilt), since the entry is then on the spare, where recovery does
 * not look while the superblocks put the column on the failed member.
 *
 * Rings. Each member's log area (between the bitmap area and the data) is split into one
 * ring per reactor; a stripe's entries are written by its owner reactor, so rings have one
 * writer and no locks. An entry lives until its operation is done and a later flush of every
 * member has made the stripe's writes durable; then it retires (its stripe may take its next
 * update) and its space is reused once every older entry of the ring retired too. A member
 * that failed since is not flushed, and its data may still sit in its volatile cache: if the
 * superblocks do not say it failed when the power goes, it comes back as current at assembly,
 * so entries retire only once the superblocks record every failure known when the flush came
 * back. Each header carries the ring's floor: the oldest entry whose space is not free yet;
 * recovery ignores entries below it. A second update of a stripe waits until the first one's
 * entries retired, so of the entries of a stripe at or above the floors the newest update is
 * the one to apply (an older one there was made durable before it started). Flushes run when
 * a write waits (for its stripe or for space) or a ring is half full; one at a time per
 * reactor. A write waiting for its stripe is tried again when one of the stripe's entries
 * retires, one waiting for space whenever a round or an anchor may have freed some. The work
 * of a round is in the entries it covers: released entries wait on the channel's fresh list,
 * a round moves them to its covered list, and retirement takes that list's head, so nothing
 * walks the entries still in use, however many updates write-back keeps in flight.
 *
 * The journal. Under policy journal an entry also carries the new data of every column the
 * update writes (lost ones included), and one more entry, the data alone, goes to a data
 * member, so the update outlives the loss of all its parity members. Recovery then redoes the
 * update whole: the columns missing now are decoded as above, the logged data is laid over
 * the written columns and written home where their members are readable, and the parities
 * are encoded from that. Nothing is left unmended, and since an entry lives until a flush
 * after the update's writes, a write is durable once acknowledged. In write-back mode the
 * data goes first, alone, to the parity members and a data member, and the write is answered
 * then (stripe.c, op_intent); the partial parities follow in entries of the same update,
 * reserved with the data's so an update never holds log space while waiting for more. With
 * only the data found, nothing of the update was home yet: the stripe on disk is whole, and
 * the missing columns are decoded from it.
 *
 * Anchors. Entry headers carry their ring's floor, but a ring's newest entries are the first
 * whose space is reused, and a write into that space that the power tears destroys the
 * floors they held: older, retired entries would then look live. Applying one is harmless
 * while every column is readable, not when a column is lost at the cut: it decodes that
 * column from a partial parity older than the data written since. So each ring begins with
 * two anchor blocks, written in turn (FUA) with the ring's floor, and a retired entry's
 * space is reused only once an anchor says the floor passed it. Under the journal its
 * stripe waits for that too before its next update: replaying a dead entry's data would
 * write old data over newer.
 *
 * Trust. Entries are read from the disk at assembly and checked before use: magic, array
 * uuid, the epoch of the last run (raised at every start), the slot and place it was found
 * at, every range, and CRC32C of header and partial parity.
 */
#include <isa-l/crc.h>

#include "core.h"

#define PPL_MAGIC 0x314c505044494155ull /* "UAIDPPL1" little-endian */

enum {
	P_MAGIC = 0,
	P_UUID = 8,
	P_EPOCH = 24,
	P_SEQ = 32,
	P_FLOOR = 40,
	P_STRIPE = 48,
	P_CRC = 56,
	P_SLOT = 60,
	P_RING = 64,
	P_NRINGS = 68,
	P_POS = 72,
	P_PARITY = 76,
	P_R0 = 80,
	P_R1 = 84,
	P_PP_BLOCKS = 88,
	P_K = 92,
	P_TMASK = 96,
	P_PP_CRC = 104,
	P_DATA_CRC = 108,
	P_RANGES = 112, /* lo, hi (u32 each) per data column */
	P_OP = P_RANGES + 8 * RAID_MAX_MEMBERS,
	P_DATA_BLOCKS = P_OP + 8,
	P_END = P_DATA_BLOCKS + 4,
};

struct ppl_entry {
	TAILQ_ENTRY(ppl_entry) link;  /* the ring's live entries, in ring order */
	TAILQ_ENTRY(ppl_entry) flink; /* the channel's fresh or covered ones */
	uint64_t stripe;
	uint64_t op; /* the update it belongs to (per reactor) */
	uint64_t seq;
	uint64_t pos; /* block within the ring */
	uint64_t end; /* ring position after it (monotonic) */
	uint64_t flush_gen;
	bool done;
	bool retired; /* a flush covered it; its space waits for the older ones' */
	unsigned member;
};

struct ppl_ring {
	uint64_t start, size; /* blocks within the area (after the anchors) */
	uint64_t head, tail;  /* monotonic positions */
	uint64_t seq;
	TAILQ_HEAD(, ppl_entry) live;
	/* every live entry before this one retired (NULL: every one did) */
	struct ppl_entry *scan;
	/* the ring's floor as its anchor blocks hold it (entries below it may be
	 * overwritten), and the anchor write in flight */
	uint64_t floor_durable, floor_writing, anchor_gen;
	bool anchor_busy;
	uint8_t *anchor_buf;
};

struct ppl_chan {
	struct ppl_ring ring[RAID_MAX_MEMBERS];
	uint64_t ops; /* updates logged */
	uint64_t gen_started, gen_done;
	uint64_t gen_flushed; /* rounds back from the members, not yet retired */
	uint64_t retire_need; /* ... until the superblocks record failures up to this */
	unsigned flushes_pending;
	bool again;	  /* flush again when this round is back */
	bool short_round; /* a member could not be flushed in this round */
	struct obj_pool entries;
	/* Entries done and not covered by a round yet (in release order), and those covered
	 * and not retired yet (in round order): a round and a retirement walk only these. */
	TAILQ_HEAD(ppl_entry_list, ppl_entry) fresh, covered;
};

/* --- the header --- */

void
ppl_header_encode(uint8_t *buf, uint32_t bs, const struct ppl_header *h)
{
	memset(buf, 0, bs);
	le_put64(buf + P_MAGIC, PPL_MAGIC);
	memcpy(buf + P_UUID, h->uuid, 16);
	le_put64(buf + P_EPOCH, h->epoch);
	le_put64(buf + P_SEQ, h->seq);
	le_put64(buf + P_FLOOR, h->floor);
	le_put64(buf + P_STRIPE, h->stripe);
	le_put32(buf + P_SLOT, h->slot);
	le_put32(buf + P_RING, h->ring);
	le_put32(buf + P_NRINGS, h->nrings);
	le_put32(buf + P_POS, h->pos);
	le_put32(buf + P_PARITY, h->parity);
	le_put32(buf + P_R0, h->r0);
	le_put32(buf + P_R1, h->r1);
	le_put32(buf + P_PP_BLOCKS, h->pp_blocks);
	le_put32(buf + P_K, h->k);
	le_put64(buf + P_TMASK, h->tmask);
	le_put32(buf + P_PP_CRC, h->pp_crc);
	for (unsigned i = 0; i < h->k && i < RAID_MAX_MEMBERS; i++) {
		le_put32(buf + P_RANGES + 8 * i, h->lo[i]);
		le_put32(buf + P_RANGES + 8 * i + 4, h->hi[i]);
	}
	le_put64(buf + P_OP, h->op);
	le_put32(buf + P_DATA_BLOCKS, h->data_blocks);
	le_put32(buf + P_DATA_CRC, h->data_crc);
	le_put32(buf + P_CRC, crc32c(buf, bs));
}

uint32_t
ppl_written_blocks(const struct ppl_header *h)
{
	uint32_t n = 0;

	for (unsigned i = 0; i < h->k && i < RAID_MAX_MEMBERS; i++) {
		if (h->tmask & (1ull << i))
			n += h->hi[i] - h->lo[i];
	}
	return n;
}

/* A block of the log area (an entry header or an anchor) whose fields end at `end`: its
 * magic, its CRC32C over the whole block with its own field (at crc_off) zero, and zeros
 * after the fields. 0, or -EBADMSG with the reason, naming the block `what`. */
static int
block_check(const uint8_t *buf, uint32_t bs, uint64_t magic, uint32_t crc_off, uint32_t end,
	    const char *what, char *err, size_t err_len)
{
	const char *why = NULL;
	uint8_t copy[P_END];
	uint32_t crc;

	if (bs < end)
		return decode_bad(err, err_len, "block too small");
	if (le_get64(buf) != magic) {
		why = "no magic";
	} else {
		memcpy(copy, buf, end);
		le_put32(copy + crc_off, 0);
		crc = crc32_iscsi(copy, (int)end, 0xffffffffu);
		crc = crc32_iscsi((unsigned char *)buf + end, (int)(bs - end), crc) ^ 0xffffffffu;
		if (crc != le_get32(buf + crc_off))
			why = "CRC mismatch";
		for (uint32_t i = end; i < bs && why == NULL; i++) {
			if (buf[i] != 0)
				why = "bytes after the fields are not zero";
		}
	}
	if (why == NULL)
		return 0;
	err_set(err, err_len, "%s: %s", what, why);
	return -EBADMSG;
}

int
ppl_header_decode(const uint8_t *buf, uint32_t bs, struct ppl_header *h, char *err, size_t err_len)
{
	int rc = block_check(buf, bs, PPL_MAGIC, P_CRC, P_END, "entry", err, err_len);

	if (rc != 0)
		return rc;
	memset(h, 0, sizeof(*h));
	memcpy(h->uuid, buf + P_UUID, 16);
	h->epoch = le_get64(buf + P_EPOCH);
	h->seq = le_get64(buf + P_SEQ);
	h->floor = le_get64(buf + P_FLOOR);
	h->stripe = le_get64(buf + P_STRIPE);
	h->slot = le_get32(buf + P_SLOT);
	h->ring = le_get32(buf + P_RING);
	h->nrings = le_get32(buf + P_NRINGS);
	h->pos = le_get32(buf + P_POS);
	h->parity = le_get32(buf + P_PARITY);
	h->r0 = le_get32(buf + P_R0);
	h->r1 = le_get32(buf + P_R1);
	h->pp_blocks = le_get32(buf + P_PP_BLOCKS);
	h->k = le_get32(buf + P_K);
	h->tmask = le_get64(buf + P_TMASK);
	h->pp_crc = le_get32(buf + P_PP_CRC);
	h->op = le_get64(buf + P_OP);
	h->data_blocks = le_get32(buf + P_DATA_BLOCKS);
	h->data_crc = le_get32(buf + P_DATA_CRC);
	if (h->op == 0)
		return decode_bad(err, err_len, "no update number");
	if (h->k == 0 || h->k > RAID_MAX_MEMBERS)
		return decode_bad(err, err_len, "bad column count");
	if (h->nrings == 0 || h->ring >= h->nrings)
		return decode_bad(err, err_len, "bad ring");
	if (h->floor > h->seq)
		return decode_bad(err, err_len, "floor above the sequence number");
	if (h->r0 >= h->r1)
		return decode_bad(err, err_len, "empty row range");
	if (h->pp_blocks != 0 && h->pp_blocks != h->r1 - h->r0)
		return decode_bad(err, err_len, "partial parity does not cover the rows");
	if (h->tmask >> h->k)
		return decode_bad(err, err_len, "written columns beyond the column count");
	for (unsigned i = 0; i < h->k; i++) {
		h->lo[i] = le_get32(buf + P_RANGES + 8 * i);
		h->hi[i] = le_get32(buf + P_RANGES + 8 * i + 4);
		if (!(h->tmask & (1ull << i))) {
			if (h->lo[i] || h->hi[i])
				return decode_bad(err, err_len, "range for an unwritten column");
			continue;
		}
		if (h->lo[i] < h->r0 || h->lo[i] >= h->hi[i] || h->hi[i] > h->r1)
			return decode_bad(err, err_len, "column range outside the rows");
	}
	for (unsigned i = h->k; i < RAID_MAX_MEMBERS; i++) {
		if (le_get64(buf + P_RANGES + 8 * i) != 0)
			return decode_bad(err, err_len, "ranges beyond the column count");
	}
	if (h->data_blocks != 0 && h->data_blocks != ppl_written_blocks(h))
		return decode_bad(err, err_len, "data does not cover the written ranges");
	if (h->data_blocks == 0 && h->data_crc != 0)
		return decode_bad(err, err_len, "data CRC without data");
	return 0;
}

/* --- the anchors --- */

#define ANCHOR_MAGIC 0x4b4c505044494155ull /* "UAIDPPLK" little-endian */

enum {
	K_MAGIC = 0,
	K_UUID = 8,
	K_EPOCH = 24,
	K_GEN = 32,
	K_FLOOR = 40,
	K_SLOT = 48,
	K_RING = 52,
	K_NRINGS = 56,
	K_CRC = 60,
	K_END = 64,
};

void
ppl_anchor_encode(uint8_t *buf, uint32_t bs, const struct ppl_anchor *k)
{
	memset(buf, 0, bs);
	le_put64(buf + K_MAGIC, ANCHOR_MAGIC);
	memcpy(buf + K_UUID, k->uuid, 16);
	le_put64(buf + K_EPOCH, k->epoch);
	le_put64(buf + K_GEN, k->gen);
	le_put64(buf + K_FLOOR, k->floor);
	le_put32(buf + K_SLOT, k->slot);
	le_put32(buf + K_RING, k->ring);
	le_put32(buf + K_NRINGS, k->nrings);
	le_put32(buf + K_CRC, crc32c(buf, bs));
}

int
ppl_anchor_decode(const uint8_t *buf, uint32_t bs, struct ppl_anchor *k, char *err, size_t err_len)
{
	int rc = block_check(buf, bs, ANCHOR_MAGIC, K_CRC, K_END, "anchor", err, err_len);

	if (rc != 0)
		return rc;
	memset(k, 0, sizeof(*k));
	memcpy(k->uuid, buf + K_UUID, 16);
	k->epoch = le_get64(buf + K_EPOCH);
	k->gen = le_get64(buf + K_GEN);
	k->floor = le_get64(buf + K_FLOOR);
	k->slot = le_get32(buf + K_SLOT);
	k->ring = le_get32(buf + K_RING);
	k->nrings = le_get32(buf + K_NRINGS);
	if (k->gen == 0)
		return decode_bad(err, err_len, "no anchor generation");
	if (k->nrings == 0 || k->ring >= k->nrings)
		return decode_bad(err, err_len, "bad ring");
	return 0;
}

/* --- rings (owner reactor) --- */

/* Blocks of one ring: the area is shared by the reactors of this run. */
static uint64_t
ring_blocks(const struct raid_array *a)
{
	return a->ppl_blocks / uraid_owner_count();
}

/* Every ring starts with two anchor blocks (see ppl_anchor_encode). */
static uint64_t
ring_anchors(const struct raid_array *a)
{
	return raid_logged(a) ? 2 : 0;
}

int
ppl_geometry(struct raid_array *a, const struct sb *from, char *err, size_t err_len)
{
	uint64_t jblocks =
		a->jdesc ? uraid_bdev_get_num_blocks(uraid_bdev_desc_get_bdev(a->jdesc)) : 0;

	if (from != NULL) {
		a->ppl_offset_blocks = from->ppl_offset_blocks;
		a->ppl_blocks = from->ppl_blocks;
	} else if (a->jdesc != NULL) {
		/* The journal device past its superblocks (and room for a bitmap's worth), split
		 * evenly between the slots. */
		uint64_t per;

		a->ppl_offset_blocks = META_PPL_OFFSET / a->bdev.block_size;
		per = jblocks > a->ppl_offset_blocks ? (jblocks - a->ppl_offset_blocks) / a->l.n
						     : 0;
		a->ppl_blocks = (uint32_t)(per < UINT32_MAX ? per : UINT32_MAX);
	} else {
		a->ppl_offset_blocks = META_PPL_OFFSET / a->bdev.block_size;
		a->ppl_blocks = (uint32_t)(a->data_offset_blocks - a->ppl_offset_blocks);
	}
	if (a->jdesc != NULL && jblocks < a->ppl_offset_blocks + (uint64_t)a->ppl_blocks * a->l.n) {
		err_set(err, err_len, "journal device %s (%lu blocks) is smaller than its log",
			a->jname, (unsigned long)jblocks);
		return -EINVAL;
	}
	/* A ring holds at least two entries of a header and one row; under the journal, every
	 * entry one stripe update puts on a member. */
	if (ring_blocks(a) < ring_anchors(a) + 4 ||
	    (a->policy == SB_POLICY_JOURNAL &&
	     ring_blocks(a) < ring_anchors(a) + ppl_journal_need(a->l.k, a->l.strip_blocks))) {
		err_set(err, err_len,
			"the log area (%u blocks) is too small for %u reactors (a ring of %lu "
			"blocks; the journal needs %lu)",
			a->ppl_blocks, uraid_owner_count(), (unsigned long)ring_blocks(a),
			(unsigned long)(ring_anchors(a) +
					ppl_journal_need(a->l.k, a->l.strip_blocks)));
		return -EINVAL;
	}
	return 0;
}

uint64_t
ppl_journal_need(unsigned k, uint64_t strip_blocks)
{
	/* write-back's data (a header and k columns) and partial parity (a header and one
	 * column) on one parity member; write-through's entry is one block less. */
	return 2 + (k + 1) * strip_blocks;
}

/* Rows one entry may span: under the partial parity log at most half a ring (a header and
 * the partial parity); the journal's entries span the stripe's rows (the area is sized for
 * them, ppl_journal_need) so that one update's entries are taken all at once. */
uint64_t
ppl_max_rows(const struct raid_channel *rch)
{
	const struct raid_array *a = rch->a;
	uint64_t cap = (ring_blocks(a) - ring_anchors(a)) / 2 - 1;

	if (a->policy == SB_POLICY_JOURNAL || cap > a->l.strip_blocks)
		return a->l.strip_blocks;
	return cap;
}

int
ppl_channel_init(struct raid_channel *rch)
{
	struct raid_array *a = rch->a;
	struct ppl_chan *pc;
	uint64_t size = ring_blocks(a);

	/* Only stripe owners log; other reactors' channels never write an entry. */
	if (!raid_logged(a) || rch->reactor >= uraid_owner_count())
		return 0;
	pc = calloc(1, sizeof(*pc));
	if (pc == NULL)
		return -ENOMEM;
	pc->entries = (struct obj_pool){NULL, sizeof(struct ppl_entry), 0};
	TAILQ_INIT(&pc->fresh);
	TAILQ_INIT(&pc->covered);
	for (unsigned i = 0; i < a->l.n; i++) {
		struct ppl_ring *r = &pc->ring[i];

		r->start = rch->reactor * size + ring_anchors(a);
		r->size = size - ring_anchors(a);
		r->seq = 1;
		TAILQ_INIT(&r->live);
		if (ring_anchors(a) != 0) {
			r->anchor_buf = uraid_dma_alloc(CACHE_LINE_BYTES, a->bdev.block_size);
			if (r->anchor_buf == NULL) {
				rch->ppl = pc;
				ppl_channel_fini(rch);
				return -ENOMEM;
			}
		}
	}
	rch->ppl = pc;
	return 0;
}

void
ppl_channel_fini(struct raid_channel *rch)
{
	struct ppl_chan *pc = rch->ppl;

	if (pc == NULL)
		return;
	for (unsigned i = 0; i < RAID_MAX_MEMBERS; i++) {
		struct ppl_entry *e;

		while ((e = TAILQ_FIRST(&pc->ring[i].live)) != NULL) {
			TAILQ_REMOVE(&pc->ring[i].live, e, link);
			free(e);
		}
		uraid_dma_free(pc->ring[i].anchor_buf);
	}
	pool_fini(&pc->entries);
	free(pc);
	rch->ppl = NULL;
}

/* Where an entry of `blocks` would go in ring r: the padding to skip first (an entry never
 * wraps), or -1 if the ring has no room now. */
static int64_t
ring_fit(const struct ppl_ring *r, uint64_t head, uint64_t blocks)
{
	uint64_t phys = head % r->size;
	uint64_t pad = phys + blocks > r->size ? r->size - phys : 0;

	if (head + pad + blocks - r->tail > r->size)
		return -1;
	return (int64_t)pad;
}

/* An empty ring starts over at its beginning: no padding before a first entry, so whatever
 * fits the ring fits an empty one. */
static void
ring_rewind(struct ppl_ring *r)
{
	if (TAILQ_EMPTY(&r->live) && r->head % r->size != 0)
		r->head = r->tail = r->head + r->size - r->head % r->size;
}

/* Take an entry of `blocks` at the ring's head (room was checked). */
static struct ppl_entry *
ring_take(struct ppl_chan *pc, unsigned member, uint32_t blocks, uint64_t stripe, uint64_t op)
{
	struct ppl_ring *r = &pc->ring[member];
	struct ppl_entry *ent = pool_get(&pc->entries);
	uint64_t pad;

	if (ent == NULL)
		return NULL;
	pad = (uint64_t)ring_fit(r, r->head, blocks);
	ent->stripe = stripe;
	ent->op = op;
	ent->seq = r->seq++;
	ent->pos = (r->head + pad) % r->size;
	ent->end = r->head + pad + blocks;
	ent->flush_gen = 0;
	ent->done = false;
	ent->retired = false;
	ent->member = member;
	r->head = ent->end;
	TAILQ_INSERT_TAIL(&r->live, ent, link);
	if (r->scan == NULL)
		r->scan = ent;
	return ent;
}

bool
ppl_fits_list(struct raid_channel *rch, const unsigned *members, const uint32_t *sizes, unsigned n)
{
	struct ppl_chan *pc = rch->ppl;
	uint64_t head[RAID_MAX_MEMBERS] = {0};

	for (unsigned x = 0; x < n; x++) {
		ring_rewind(&pc->ring[members[x]]);
		head[members[x]] = pc->ring[members[x]].head;
	}
	for (unsigned x = 0; x < n; x++) {
		int64_t pad = ring_fit(&pc->ring[members[x]], head[members[x]], sizes[x]);

		if (pad < 0)
			return false;
		head[members[x]] += (uint64_t)pad + sizes[x];
	}
	return true;
}

int
ppl_reserve_list(struct raid_channel *rch, const unsigned *members, const uint32_t *sizes,
		 unsigned n, uint64_t stripe, uint64_t *opno, struct ppl_entry **out)
{
	struct ppl_chan *pc = rch->ppl;
	uint64_t op = *opno ? *opno : pc->ops + 1;

	for (unsigned x = 0; x < n; x++) {
		out[x] = ring_take(pc, members[x], sizes[x], stripe, op);
		if (out[x] == NULL) {
			/* Give back what this call took: nothing was written yet. */
			for (unsigned y = 0; y < x; y++)
				ppl_release(rch, out[y]);
			return -ENOMEM;
		}
	}
	if (*opno == 0)
		pc->ops = op;
	*opno = op;
	return 0;
}

int
ppl_reserve(struct raid_channel *rch, const unsigned *members, unsigned nmem, const uint32_t *sizes,
	    unsigned nent, uint64_t stripe, uint64_t *opno, struct ppl_entry **out)
{
	struct ppl_chan *pc = rch->ppl;
	uint64_t op = *opno ? *opno : pc->ops + 1;

	for (unsigned m = 0; m < nmem; m++) {
		struct ppl_ring *r = &pc->ring[members[m]];
		uint64_t head;

		ring_rewind(r);
		head = r->head;
		for (unsigned e = 0; e < nent; e++) {
			int64_t pad = ring_fit(r, head, sizes[e]);

			if (pad < 0)
				return -EAGAIN;
			head += (uint64_t)pad + sizes[e];
		}
	}
	for (unsigned m = 0; m < nmem; m++) {
		for (unsigned e = 0; e < nent; e++) {
			out[m * nent + e] = ring_take(pc, members[m], sizes[e], stripe, op);
			if (out[m * nent + e] == NULL) {
				for (unsigned x = 0; x < m * nent + e; x++)
					ppl_release(rch, out[x]);
				return -ENOMEM;
			}
		}
	}
	if (*opno == 0)
		pc->ops = op;
	*opno = op;
	return 0;
}

void
ppl_entry_header(struct raid_channel *rch, const struct ppl_entry *e, struct ppl_header *h,
		 uint64_t *offset_blocks)
{
	struct raid_array *a = rch->a;
	struct ppl_ring *r = &rch->ppl->ring[e->member];

	memcpy(h->uuid, a->bdev.uuid, 16);
	h->epoch = a->log_epoch;
	h->seq = e->seq;
	h->op = e->op;
	h->floor = TAILQ_FIRST(&r->live)->seq;
	h->stripe = e->stripe;
	h->slot = e->member;
	h->ring = rch->reactor;
	h->nrings = uraid_owner_count();
	h->pos = (uint32_t)(r->start + e->pos);
	*offset_blocks = a->ppl_offset_blocks + r->start + e->pos;
}

unsigned
ppl_entry_member(const struct ppl_entry *e)
{
	return e->member;
}

static uint64_t
ring_used(const struct ppl_ring *r)
{
	return r->head - r->tail;
}

void
ppl_release(struct raid_channel *rch, struct ppl_entry *e)
{
	struct ppl_ring *r = &rch->ppl->ring[e->member];

	if (!e->done) {
		e->done = true;
		TAILQ_INSERT_TAIL(&rch->ppl->fresh, e, flink);
	}
	if (ring_used(r) * 2 > r->size)
		ppl_flush_kick(rch);
}

/* Retire the entries a completed flush covered: their stripes may take their next update at
 * once. Space comes back in ring order, so a ring's floor never passes an entry still in
 * use, and a later update of a stripe (same rings) is never reused before an earlier one. */
static void anchor_write(struct raid_channel *rch, unsigned member);

/* Give back the space of retired entries in ring order, only below the floor its anchors
 * hold: the entries written there carry the floors a recovery goes by, and once one is
 * overwritten (torn, if the power goes during the write) only the anchors say which older
 * entries are dead. Under the journal their stripes wait for that too: a recovery that took
 * an entry for live would write its data over newer data. */
static void
ring_pop(struct raid_channel *rch, unsigned member)
{
	struct ppl_ring *r = &rch->ppl->ring[member];
	bool journal = rch->a->policy == SB_POLICY_JOURNAL;
	struct ppl_entry *e;

	while ((e = TAILQ_FIRST(&r->live)) != NULL && e->retired && e->seq < r->floor_durable) {
		TAILQ_REMOVE(&r->live, e, link);
		if (r->scan == e)
			r->scan = TAILQ_NEXT(e, link);
		r->tail = e->end;
		if (journal)
			stripe_ppl_retired(rch, e->stripe);
		pool_put(&rch->ppl->entries, e);
	}
	if (TAILQ_EMPTY(&r->live))
		r->tail = r->head;
	anchor_write(rch, member);
}

static void
ppl_retire(struct raid_channel *rch)
{
	struct ppl_chan *pc = rch->ppl;
	struct ppl_entry *e;

	while ((e = TAILQ_FIRST(&pc->covered)) != NULL && e->flush_gen <= pc->gen_done) {
		TAILQ_REMOVE(&pc->covered, e, flink);
		e->retired = true;
		if (rch->a->policy != SB_POLICY_JOURNAL)
			stripe_ppl_retired(rch, e->stripe);
	}
	for (unsigned i = 0; i < rch->a->l.n; i++)
		ring_pop(rch, i);
}

/* --- the journal's anchors --- */

/* The ring's floor as it may be written now: the oldest entry not retired (or the next).
 * Entries only ever become retired, so the walk goes on from where the last one stopped. */
static uint64_t
ring_floor(struct ppl_ring *r)
{
	struct ppl_entry *e = r->scan;

	while (e != NULL && e->retired)
		e = TAILQ_NEXT(e, link);
	r->scan = e;
	return e != NULL ? e->seq : r->seq;
}

static void
anchor_done(struct member_io *mio, int status)
{
	struct raid_channel *rch = mio->rch;
	unsigned member = mio->member;
	struct ppl_ring *r = &rch->ppl->ring[member];

	if (status != 0 && !mio_on_journal(mio))
		raid_member_failed(rch->a, member, status);
	/* Written, or the member (or the journal device, and the array with it) failed: its
	 * log is not read back, the floor holds. */
	r->anchor_busy = false;
	if (r->floor_writing > r->floor_durable)
		r->floor_durable = r->floor_writing;
	mio_free(mio);
	ring_pop(rch, member);
	stripe_ppl_ready(rch);
}

/* Write the ring's floor to its next anchor block (FUA), if it moved past the one on disk
 * and retired entries wait for it. One write per ring at a time. */
static void
anchor_write(struct raid_channel *rch, unsigned member)
{
	struct raid_array *a = rch->a;
	struct ppl_ring *r = &rch->ppl->ring[member];
	struct ppl_entry *first = TAILQ_FIRST(&r->live);
	uint64_t floor = ring_floor(r);
	struct ppl_anchor k = {0};
	struct member_io *mio;
	bool gone;

	if (r->anchor_busy || first == NULL || !first->retired || floor <= r->floor_durable)
		return;
	r->anchor_busy = true;
	r->floor_writing = floor;
	/* A member that failed: nothing reads its log back, unless the log is on the journal
	 * device, which keeps the slot's rings for the device that takes the slot next: its
	 * floor goes on moving there, or the entries retired meanwhile would look live then. */
	gone = a->jdesc == NULL && !raid_member_usable(rch, member);
	if (gone || (mio = mio_alloc(rch, member, 1)) == NULL) {
		/* (No memory: try again at the next retirement; the failed state below is not
		 * taken.) */
		r->anchor_busy = false;
		if (gone) {
			r->floor_durable = floor;
			ring_pop(rch, member);
		}
		return;
	}
	memcpy(k.uuid, a->bdev.uuid, 16);
	k.epoch = a->log_epoch;
	k.gen = ++r->anchor_gen;
	k.floor = floor;
	k.slot = member;
	k.ring = rch->reactor;
	k.nrings = uraid_owner_count();
	ppl_anchor_encode(r->anchor_buf, a->bdev.block_size, &k);
	mio->type = URAID_IO_WRITE;
	mio->flags = URAID_IO_FUA;
	mio->meta = true;
	mio->log = true;
	mio->offset_blocks = a->ppl_offset_blocks + r->start - ring_anchors(a) + (k.gen & 1);
	mio->num_blocks = 1;
	mio->iov[0] = (struct iovec){r->anchor_buf, a->bdev.block_size};
	mio->iovcnt = 1;
	mio->done = anchor_done;
	mio->ctx = NULL;
	if (mio_submit(mio) != 0) {
		mio_free(mio);
		r->anchor_busy = false;
		r->floor_durable = floor; /* the member went away */
		ring_pop(rch, member);
	}
}

/* Retire what flushed rounds covered once the superblocks caught up with the failures. */
static bool
ppl_retire_flushed(struct raid_channel *rch)
{
	struct ppl_chan *pc = rch->ppl;

	if (pc->gen_flushed == pc->gen_done ||
	    atomic_load_explicit(&rch->a->sb_done, memory_order_acquire) < pc->retire_need)
		return false;
	pc->gen_done = pc->gen_flushed;
	ppl_retire(rch);
	return true;
}

/* The channel's poller: entries held for a superblock round retire when it is done. */
bool
ppl_poll(struct raid_channel *rch)
{
	if (rch->ppl == NULL)
		return false;
	if (!ppl_retire_flushed(rch) && !rch->ppl_woken &&
	    (TAILQ_EMPTY(&rch->ppl_sb_wait) || !raid_failures_recorded(rch->a)))
		return false;
	stripe_ppl_ready(rch);
	return true;
}

static void ppl_flush_start(struct raid_channel *rch);
void ppl_flush_kick(struct raid_channel *rch);

static void
ppl_flush_complete(struct raid_channel *rch)
{
	struct ppl_chan *pc = rch->ppl;
	bool again;

	if (pc->short_round) {
		/* A member was not flushed: nothing this round covered may retire. Its entries
		 * are the covered list's last; they go back to the fresh ones. */
		struct ppl_entry *e;

		while ((e = TAILQ_LAST(&pc->covered, ppl_entry_list)) != NULL &&
		       e->flush_gen == pc->gen_started) {
			TAILQ_REMOVE(&pc->covered, e, flink);
			TAILQ_INSERT_HEAD(&pc->fresh, e, flink);
		}
		pc->short_round = false;
		pc->gen_started--;
	} else {
		crash_point(CRASH_LOG_FLUSHED);
		pc->gen_flushed = pc->gen_started;
		pc->retire_need = atomic_load_explicit(&rch->a->sb_need, memory_order_acquire);
		ppl_retire_flushed(rch);
	}
	again = pc->again;
	pc->again = false;
	stripe_ppl_ready(rch); /* waiters may start the next round themselves */
	if (again)
		ppl_flush_kick(rch);
}

static void
ppl_flush_done(struct member_io *mio, int status)
{
	struct raid_channel *rch = mio->rch;

	if (status != 0)
		raid_member_failed(rch->a, mio->member, status);
	mio_free(mio);
	if (--rch->ppl->flushes_pending == 0)
		ppl_flush_complete(rch);
}

static void
ppl_flush_deferred(void *arg)
{
	struct raid_channel *rch = arg;

	if (--rch->ppl->flushes_pending == 0)
		ppl_flush_complete(rch);
}

/* Flush every member; entries done by now retire when all flushes are back. */
static void
ppl_flush_start(struct raid_channel *rch)
{
	struct ppl_chan *pc = rch->ppl;
	struct raid_array *a = rch->a;
	struct ppl_entry *e;

	if (TAILQ_EMPTY(&pc->fresh)) {
		/* Nothing new to flush; retired entries may still wait for an anchor (one that
		 * could not be written for want of memory is tried again). */
		for (unsigned i = 0; i < a->l.n; i++)
			ring_pop(rch, i);
		return;
	}
	pc->gen_started++;
	TAILQ_FOREACH(e, &pc->fresh, flink)
		e->flush_gen = pc->gen_started;
	TAILQ_CONCAT(&pc->covered, &pc->fresh, flink);
	raid_stat_add(a, rch->reactor, RS_PPL_FLUSHES, 1);
	pc->flushes_pending = 1; /* guard while issuing */
	for (unsigned i = 0; i < a->l.n; i++) {
		struct member_io *mio;

		if (!raid_member_usable(rch, i))
			continue;
		mio = mio_alloc(rch, i, 0);
		if (mio == NULL) {
			pc->short_round = true;
			continue;
		}
		mio->type = URAID_IO_FLUSH;
		mio->done = ppl_flush_done;
		pc->flushes_pending++;
		if (mio_submit(mio) != 0) {
			pc->flushes_pending--;
			mio_free(mio);
		}
	}
	if (--pc->flushes_pending == 0) {
		/* Nothing went out (no memory, or no member left): finish from the message
		 * queue, never by recursing into the waiters that kicked this round. */
		pc->flushes_pending = 1;
		uraid_reactor_send(uraid_reactor_self(), ppl_flush_deferred, rch);
	}
}

bool
ppl_busy(const struct raid_channel *rch)
{
	if (rch->ppl == NULL)
		return false;
	for (unsigned i = 0; i < rch->a->l.n; i++) {
		if (rch->ppl->ring[i].anchor_busy)
			return true;
	}
	return rch->ppl->flushes_pending != 0;
}

void
ppl_flush_kick(struct raid_channel *rch)
{
	struct ppl_chan *pc = rch->ppl;

	if (pc->flushes_pending != 0)
		pc->again = true;
	else
		ppl_flush_start(rch);
}

/* Every channel starts a flush round, so that entries naming a member that just failed retire
 * as soon as the others hold their data on stable media: a recovery could not read that
 * member back. Reactor 0; done runs there once every channel has been asked. */
struct flush_all {
	struct raid_array *a;
	void (*done)(struct raid_array *a);
};

static void
flush_all_visit(struct uraid_channel_iter *it)
{
	struct raid_channel *rch = uraid_io_channel_get_ctx(uraid_channel_iter_get_channel(it));

	if (rch->ppl != NULL)
		ppl_flush_kick(rch);
	uraid_for_each_channel_continue(it, 0);
}

static void
flush_all_walked(struct uraid_channel_iter *it, int status UNUSED)
{
	struct flush_all *fa = uraid_channel_iter_get_ctx(it);

	fa->done(fa->a);
	free(fa);
}

void
ppl_flush_all(struct raid_array *a, void (*done)(struct raid_array *a))
{
	struct flush_all *fa = malloc(sizeof(*fa));

	if (fa == NULL) {
		done(a); /* the channels flush on their own when their rings fill */
		return;
	}
	fa->a = a;
	fa->done = done;
	uraid_for_each_channel(&a->ch_dev, flush_all_visit, fa, flush_all_walked);
}

/* Read blocks [off, off + n) of member m's log area: on the member, or in its slot's area on
 * the journal device. Control thread (assembly). */
static int
log_read(struct raid_array *a, unsigned m, void *buf, uint64_t off, uint64_t n)
{
	if (a->jdesc != NULL)
		return uraid_bdev_io_sync(a->jdesc, URAID_IO_READ, buf,
					  a->ppl_offset_blocks + (uint64_t)m * a->ppl_blocks + off,
					  n);
	return uraid_bdev_io_sync(a->members[m].desc, URAID_IO_READ, buf,
				  a->ppl_offset_blocks + off, n);
}

/* --- recovery (control thread, before the array goes online) --- */

struct found_entry {
	struct ppl_header h;
	unsigned member;
	uint64_t block; /* within the area */
	/* A header of this run whose entry is not whole (its space reused, or torn), or is on a
	 * member its column is not on now: never applied, but it proves that every older
	 * update of its stripe retired (see ppl_recover). */
	bool bad;
};

/* Member m can be read at member strip s during recovery. */
static bool
recover_readable(const struct raid_array *a, const struct sb *from, unsigned m, uint64_t s)
{
	if (a->members[m].desc == NULL)
		return false;
	if (from->slots[m].state == SB_SLOT_ACTIVE)
		return true;
	if (from->slots[m].state == SB_SLOT_REBUILDING)
		return s * a->l.strip_blocks < from->slots[m].rebuild_checkpoint_blocks;
	return false;
}

/* Column c of stripe: its member, whether recovery can read it, and where row r0 of it is;
 * a second member that takes its writes too (a distributed spare being drained), or -1. */
static unsigned
recover_col(const struct raid_array *a, const struct sb *from, uint64_t stripe, unsigned c,
	    uint64_t r0, bool *readable, uint64_t *at, int *alt)
{
	struct col_loc loc;

	raid_col_locate(a, stripe, c, &loc);
	*readable = loc.ready && recover_readable(a, from, loc.member, loc.row);
	*at = a->data_offset_blocks + loc.row * a->l.strip_blocks + r0;
	*alt = loc.alt >= 0 && recover_readable(a, from, (unsigned)loc.alt, loc.row) ? loc.alt : -1;
	return loc.member;
}

/* Write to member mb (and alt, if >= 0) at block `at`. */
static int
recover_write(const struct raid_array *a, unsigned mb, int alt, const uint8_t *buf, uint64_t at,
	      uint64_t blocks)
{
	int rc = uraid_bdev_io_sync(a->members[mb].desc, URAID_IO_WRITE, (void *)buf, at, blocks);

	if (rc == 0 && alt >= 0)
		rc = uraid_bdev_io_sync(a->members[alt].desc, URAID_IO_WRITE, (void *)buf, at,
					blocks);
	return rc;
}

/* Order: stripe, then newest update first, then rows, then parity. */
static int
found_cmp(const void *x, const void *y)
{
	const struct ppl_header *a = &((const struct found_entry *)x)->h;
	const struct ppl_header *b = &((const struct found_entry *)y)->h;

	if (a->stripe != b->stripe)
		return a->stripe < b->stripe ? -1 : 1;
	if (a->op != b->op)
		return a->op > b->op ? -1 : 1;
	if (a->r0 != b->r0)
		return a->r0 < b->r0 ? -1 : 1;
	return a->parity < b->parity ? -1 : a->parity > b->parity;
}

/* Entries of one update over the same rows name the same columns and ranges. */
static bool
same_update(const struct ppl_header *a, const struct ppl_header *b)
{
	if (a->stripe != b->stripe || a->op != b->op || a->r0 != b->r0 || a->r1 != b->r1 ||
	    a->tmask != b->tmask)
		return false;
	/* The journal's copies carry the data; in write-back the partial parities do not. */
	if (a->data_blocks && b->data_blocks &&
	    (a->data_blocks != b->data_blocks || a->data_crc != b->data_crc))
		return false;
	for (unsigned i = 0; i < a->k; i++) {
		if (a->lo[i] != b->lo[i] || a->hi[i] != b->hi[i])
			return false;
	}
	return true;
}

struct recover_bufs {
	uint8_t *disk[RAID_MAX_MEMBERS]; /* data columns as on disk */
	uint8_t *work[RAID_MAX_MEMBERS]; /* ... with the written rows zeroed, or decoded */
	uint8_t *par[RAID_MAX_PARITY];	 /* partial parities, then the new parities */
	uint8_t *dpar[RAID_MAX_PARITY];	 /* parities as on disk (rows left alone) */
	uint8_t *skip;			 /* rows left alone */
	uint8_t *data;			 /* journal: the new data an entry carries */
	struct code_decoder dec;
	struct ppl_hole *holes;
	size_t nholes;
};

/* Write the rows skip marks (want) or does not (!want) of every parity to its member (rows
 * [r0, +rows) of the stripe). */
static int
write_parities(struct raid_array *a, const struct sb *from, uint64_t stripe, uint64_t r0,
	       uint64_t rows, uint8_t *const *par, const uint8_t *skip, bool want)
{
	uint32_t bs = a->bdev.block_size;
	int rc;

	for (unsigned j = 0; j < a->l.m; j++) {
		uint64_t base;
		bool ok;
		int alt;
		unsigned pm = recover_col(a, from, stripe, a->l.k + j, r0, &ok, &base, &alt);

		if (!ok)
			continue;
		for (uint64_t x = 0; x < rows;) {
			uint64_t y = x;

			if ((skip[x] != 0) != want) {
				x++;
				continue;
			}
			while (y < rows && (skip[y] != 0) == want)
				y++;
			rc = recover_write(a, pm, alt, par[j] + x * bs, base + x, y - x);
			if (rc != 0)
				return rc;
			x = y;
		}
	}
	return 0;
}

/* Rows the log cannot mend still get parities that agree with each other: the missing
 * columns are decoded from as many parities on disk as needed and the others encoded again
 * (the blocks being written there may be garbage, but one garbage, not one per parity). */
static int
recover_hole_rows(struct raid_array *a, const struct sb *from, uint64_t stripe, uint64_t r0,
		  uint64_t rows, uint64_t lost, struct recover_bufs *rb)
{
	const struct layout *l = &a->l;
	uint32_t bs = a->bdev.block_size;
	unsigned need = (unsigned)__builtin_popcountll(lost), used = 0;
	uint8_t *cols[RAID_MAX_MEMBERS + RAID_MAX_PARITY];
	int rc;

	for (unsigned j = 0; j < l->m; j++) {
		uint64_t base;
		bool ok;
		int alt;
		unsigned pm = recover_col(a, from, stripe, l->k + j, r0, &ok, &base, &alt);

		cols[l->k + j] = rb->dpar[j];
		if (used == need || !ok) {
			lost |= 1ull << (l->k + j);
			continue;
		}
		rc = uraid_bdev_io_sync(a->members[pm].desc, URAID_IO_READ, rb->dpar[j], base,
					rows);
		if (rc != 0)
			return rc;
		used++;
	}
	if (used < need || used == l->m)
		return 0; /* no parity left over to disagree */
	for (unsigned i = 0; i < l->k; i++)
		cols[i] = (lost & (1ull << i)) ? rb->work[i] : rb->disk[i];
	if (code_decode(&a->code, &rb->dec, rows * bs, cols, lost) != 0)
		return 0;
	code_encode(&a->code, rows * bs, cols, rb->dpar);
	return write_parities(a, from, stripe, r0, rows, rb->dpar, rb->skip, true);
}

/* Journal: lay the new data entry f carries over the columns cols[] (rows r0..r1 of its
 * stripe) and write it home to every readable member; the update is then redone whole. */
static int
recover_data(struct raid_array *a, const struct sb *from, const struct found_entry *f,
	     uint8_t *const *cols, struct recover_bufs *rb)
{
	const struct ppl_header *h = &f->h;
	uint32_t bs = a->bdev.block_size;
	uint64_t at = 0;
	int rc;

	rc = log_read(a, f->member, rb->data, f->block + 1 + h->pp_blocks, h->data_blocks);
	if (rc != 0)
		return rc;
	if (crc32c(rb->data, (size_t)h->data_blocks * bs) != h->data_crc)
		return -EIO; /* it checked out at the scan: the member is failing */
	for (unsigned i = 0; i < a->l.k; i++) {
		uint64_t n = h->hi[i] - h->lo[i], home;
		bool ok;
		int alt;
		unsigned dm = recover_col(a, from, h->stripe, i, h->lo[i], &ok, &home, &alt);

		if (!(h->tmask & (1ull << i)))
			continue;
		memcpy(cols[i] + (h->lo[i] - h->r0) * bs, rb->data + at * bs, n * bs);
		if (ok) {
			rc = recover_write(a, dm, alt, rb->data + at * bs, home, n);
			if (rc != 0)
				return rc;
		}
		at += n;
	}
	return 0;
}

/* Journal: apply the data entry f carries to a stripe whose data and parity on disk agree
 * (its update had not begun to write): decode the columns missing now from the parities on
 * disk, lay the data over, write it home and encode every parity afresh. */
static int
recover_from_disk(struct raid_array *a, const struct sb *from, const struct found_entry *f,
		  struct recover_bufs *rb)
{
	const struct ppl_header *h = &f->h;
	const struct layout *l = &a->l;
	uint32_t bs = a->bdev.block_size;
	uint64_t rows = h->r1 - h->r0, lost = 0;
	uint8_t *cols[RAID_MAX_MEMBERS + RAID_MAX_PARITY];
	int rc;

	memset(rb->skip, 0, rows);
	for (unsigned c = 0; c < l->k + l->m; c++) {
		uint64_t base;
		bool ok;
		int alt;
		unsigned mb = recover_col(a, from, h->stripe, c, h->r0, &ok, &base, &alt);

		cols[c] = c < l->k ? rb->disk[c] : rb->dpar[c - l->k];
		if (!ok) {
			lost |= 1ull << c;
			continue;
		}
		rc = uraid_bdev_io_sync(a->members[mb].desc, URAID_IO_READ, cols[c], base, rows);
		if (rc != 0)
			return rc;
	}
	if ((lost & ((1ull << l->k) - 1)) != 0 &&
	    code_decode(&a->code, &rb->dec, rows * bs, cols, lost) != 0)
		return -EIO; /* more members missing than the array tolerates */
	rc = recover_data(a, from, f, cols, rb);
	if (rc != 0)
		return rc;
	code_encode(&a->code, rows * bs, cols, rb->par);
	return write_parities(a, from, h->stripe, h->r0, rows, rb->par, rb->skip, false);
}

/*
 * Make the parities of rows [r0, r1) of stripe s match its data, from the entries g[0..n) of
 * one update (one per parity logged). pp_j is parity j of the stripe with the written rows of
 * T zeroed, so with those rows zeroed, the data columns readable and the partial parities as
 * parity columns, the columns missing now decode to what the update held for them. Then every
 * parity is encoded from the data on disk plus the decoded columns and written where its
 * member is readable. Rows where a written column is missing now are left alone: what it
 * held is nowhere else.
 */
static int
recover_update(struct raid_array *a, const struct sb *from, const struct found_entry *g, unsigned n,
	       struct recover_bufs *rb, uint64_t *skipped)
{
	const struct ppl_header *h = &g[0].h;
	const struct layout *l = &a->l;
	uint32_t bs = a->bdev.block_size;
	uint64_t rows = h->r1 - h->r0, S = l->strip_blocks;
	uint64_t lost = 0, have = 0, holes;
	uint8_t *cols[RAID_MAX_MEMBERS + RAID_MAX_PARITY];
	const struct found_entry *data = NULL; /* the journal: an entry with the data */
	bool journal;
	int rc;

	for (unsigned x = 0; x < n && data == NULL; x++) {
		if (g[x].h.data_blocks != 0)
			data = &g[x];
	}
	journal = data != NULL;
	memset(rb->skip, 0, rows);
	for (unsigned x = 0; x < n; x++) {
		const struct found_entry *f = &g[x];

		if (f->h.parity >= l->m)
			continue; /* a copy of the journal's data */
		have |= 1ull << f->h.parity;
		if (f->h.pp_blocks == 0) {
			memset(rb->par[f->h.parity], 0, rows * bs);
			continue;
		}
		rc = log_read(a, f->member, rb->par[f->h.parity], f->block + 1, rows);
		if (rc != 0)
			return rc;
		if (crc32c(rb->par[f->h.parity], rows * bs) != f->h.pp_crc)
			return -EIO; /* it checked out at the scan: the member is failing */
	}
	for (unsigned i = 0; i < l->k; i++) {
		uint64_t base;
		bool ok;
		int alt;
		unsigned dm = recover_col(a, from, h->stripe, i, h->r0, &ok, &base, &alt);

		cols[i] = rb->work[i];
		if (!ok) {
			lost |= 1ull << i;
			if ((h->tmask & (1ull << i)) && !journal)
				memset(rb->skip + (h->lo[i] - h->r0), 1, h->hi[i] - h->lo[i]);
			continue;
		}
		rc = uraid_bdev_io_sync(a->members[dm].desc, URAID_IO_READ, rb->disk[i], base,
					rows);
		if (rc != 0)
			return rc;
		memcpy(rb->work[i], rb->disk[i], rows * bs);
		if (h->tmask & (1ull << i))
			memset(rb->work[i] + (h->lo[i] - h->r0) * bs, 0,
			       (h->hi[i] - h->lo[i]) * bs);
	}
	if (lost != 0) {
		for (unsigned j = 0; j < l->m; j++) {
			cols[l->k + j] = rb->par[j];
			if (!(have & (1ull << j)))
				lost |= 1ull << (l->k + j);
		}
		if (code_decode(&a->code, &rb->dec, rows * bs, cols, lost) != 0) {
			/* More columns missing than partial parities found: with the array able
			 * to run, an entry is missing on a member that is present, so the update
			 * never wrote (entries go down before any data) and the stripe on disk
			 * is whole. The journal still holds data to apply (a write-back update is
			 * acknowledged before any of that). */
			return journal ? recover_from_disk(a, from, data, rb) : 0;
		}
	}
	for (unsigned i = 0; i < l->k; i++)
		cols[i] = (lost & (1ull << i)) ? rb->work[i] : rb->disk[i];
	if (journal && (rc = recover_data(a, from, data, cols, rb)) != 0)
		return rc;
	code_encode(&a->code, rows * bs, cols, rb->par);
	rc = write_parities(a, from, h->stripe, h->r0, rows, rb->par, rb->skip, false);
	if (rc != 0)
		return rc;
	holes = journal ? 0 : lost & h->tmask;
	if (holes != 0) {
		rc = recover_hole_rows(a, from, h->stripe, h->r0, rows, lost & ((1ull << l->k) - 1),
				       rb);
		if (rc != 0)
			return rc;
	}
	for (uint64_t x = 0; x < rows; x++)
		*skipped += rb->skip[x];
	for (unsigned i = 0; i < l->k && holes; i++) {
		struct ppl_hole *nh;

		if (!(holes & (1ull << i)))
			continue;
		nh = realloc(rb->holes, (rb->nholes + 1) * sizeof(*nh));
		if (nh == NULL)
			return -ENOMEM;
		rb->holes = nh;
		nh[rb->nholes].lba = (h->stripe * l->k + i) * S + h->lo[i];
		nh[rb->nholes++].blocks = h->hi[i] - h->lo[i];
	}
	return 0;
}

/* Entry h may be on member m: parity j's entries on parity j's member; under the journal, the
 * copies of the data (parity m, and m + 1 .. 2m + 1 for write-back's, no partial parity) on
 * any member of the stripe. */
static bool
entry_member_ok(const struct raid_array *a, const struct ppl_header *h, unsigned m)
{
	struct col_loc loc;

	if (h->parity < a->l.m) {
		/* (Either place of a column drained back: which one was written first depends
		 * on where the drain was then.) */
		raid_col_locate(a, h->stripe, a->l.k + h->parity, &loc);
		return loc.member == m || loc.alt == (int)m;
	}
	if (a->policy != SB_POLICY_JOURNAL || h->pp_blocks != 0 || h->parity > 2 * a->l.m + 1 ||
	    (h->data_blocks != 0) != (h->tmask != 0))
		return false;
	for (unsigned i = 0; i < a->l.k + a->l.m; i++) {
		raid_col_locate(a, h->stripe, i, &loc);
		if (loc.member == m)
			return true;
	}
	return false;
}

/* Scan member m's area: collect every entry of the last run that checks out. */
static int
recover_scan(struct raid_array *a, const struct sb *from, unsigned m, uint8_t *area,
	     struct found_entry **found, size_t *nfound, size_t *cap, struct ppl_recovery *out)
{
	uint32_t bs = a->bdev.block_size;
	uint64_t units = layout_array_blocks(&a->l) / layout_stripe_data_blocks(&a->l);
	bool journal = a->policy == SB_POLICY_JOURNAL, bad;
	size_t first = *nfound, nanchors = 0;
	struct ppl_anchor anchors[64];
	int rc;

	rc = log_read(a, m, area, 0, a->ppl_blocks);
	if (rc != 0) {
		LOG_ERR("%s: cannot read the log of %s: %s", a->bdev.name, a->members[m].name,
			strerror(-rc));
		return rc;
	}
	for (uint64_t b = 0; b < a->ppl_blocks; b++) {
		struct ppl_header h;
		uint64_t size, rstart;
		char why[64];

		if (ppl_header_decode(area + b * bs, bs, &h, why, sizeof(why)) != 0) {
			struct ppl_anchor k;

			/* The anchors: the ring's floor, at its first two blocks. */
			if (ppl_anchor_decode(area + b * bs, bs, &k, why, sizeof(why)) != 0 ||
			    memcmp(k.uuid, a->bdev.uuid, 16) != 0 || k.epoch != from->log_epoch)
				continue;
			size = a->ppl_blocks / k.nrings;
			if (k.slot != m || b != k.ring * size + (k.gen & 1) || size < 4 ||
			    nanchors == ARRAY_SIZE(anchors)) {
				out->invalid++;
				continue;
			}
			anchors[nanchors++] = k;
			continue;
		}
		if (memcmp(h.uuid, a->bdev.uuid, 16) != 0 || h.epoch != from->log_epoch)
			continue; /* another array's, or a run already recovered */
		size = a->ppl_blocks / h.nrings;
		rstart = (uint64_t)h.ring * size;
		if (size < 4 || h.slot != m || h.pos != b || b < rstart + ring_anchors(a) ||
		    b + 1 + h.pp_blocks + h.data_blocks > rstart + size || h.k != a->l.k ||
		    h.stripe >= units || h.r1 > a->l.strip_blocks ||
		    (h.data_blocks != 0 && !journal)) {
			out->invalid++;
			continue;
		}
		bad = !entry_member_ok(a, &h, m) ||
		      (h.pp_blocks &&
		       crc32c(area + (b + 1) * bs, (size_t)h.pp_blocks * bs) != h.pp_crc) ||
		      (h.data_blocks && crc32c(area + (b + 1 + h.pp_blocks) * bs,
					       (size_t)h.data_blocks * bs) != h.data_crc);
		if (bad)
			out->invalid++;
		if (*nfound == *cap) {
			size_t ncap = *cap ? *cap * 2 : 64;
			struct found_entry *nf = realloc(*found, ncap * sizeof(**found));

			if (nf == NULL)
				return -ENOMEM;
			*found = nf;
			*cap = ncap;
		}
		(*found)[*nfound].h = h;
		(*found)[*nfound].member = m;
		(*found)[*nfound].block = b;
		(*found)[*nfound].bad = bad;
		(*nfound)++;
	}
	/* Per ring, only entries at or above its newest floor (entries' and anchors') are
	 * live. One below it retired, and so did every older update of its stripe: it stays, as
	 * a header that is never applied, to prove that (ppl_recover). */
	for (size_t i = first; i < *nfound; i++) {
		uint64_t floor = 0;

		for (size_t j = first; j < *nfound; j++) {
			if ((*found)[j].h.ring == (*found)[i].h.ring &&
			    (*found)[j].h.nrings == (*found)[i].h.nrings &&
			    (*found)[j].h.floor > floor)
				floor = (*found)[j].h.floor;
		}
		for (size_t j = 0; j < nanchors; j++) {
			if (anchors[j].ring == (*found)[i].h.ring &&
			    anchors[j].nrings == (*found)[i].h.nrings && anchors[j].floor > floor)
				floor = anchors[j].floor;
		}
		if ((*found)[i].h.seq < floor)
			(*found)[i].bad = true;
	}
	return 0;
}

int
ppl_recover(struct raid_array *a, const struct sb *from, struct ppl_recovery *out)
{
	uint32_t bs = a->bdev.block_size;
	uint64_t S = a->l.strip_blocks;
	uint8_t *area = uraid_dma_alloc(4096, (uint64_t)a->ppl_blocks * bs);
	struct recover_bufs rb = {0};
	struct found_entry *found = NULL;
	size_t nfound = 0, cap = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	rb.skip = malloc(S);
	if (a->policy == SB_POLICY_JOURNAL)
		rb.data = uraid_dma_alloc(4096, S * a->l.k * bs);
	if (area == NULL || rb.skip == NULL || (a->policy == SB_POLICY_JOURNAL && rb.data == NULL))
		rc = -ENOMEM;
	for (unsigned i = 0; i < a->l.k && rc == 0; i++) {
		rb.disk[i] = uraid_dma_alloc(4096, S * bs);
		rb.work[i] = uraid_dma_alloc(4096, S * bs);
		if (rb.disk[i] == NULL || rb.work[i] == NULL)
			rc = -ENOMEM;
	}
	for (unsigned j = 0; j < a->l.m && rc == 0; j++) {
		rb.par[j] = uraid_dma_alloc(4096, S * bs);
		rb.dpar[j] = uraid_dma_alloc(4096, S * bs);
		if (rb.par[j] == NULL || rb.dpar[j] == NULL)
			rc = -ENOMEM;
	}
	for (unsigned m = 0; m < a->l.n && rc == 0; m++) {
		if (a->members[m].desc == NULL || from->slots[m].state == SB_SLOT_FAILED ||
		    from->slots[m].state == SB_SLOT_MISSING)
			continue;
		rc = recover_scan(a, from, m, area, &found, &nfound, &cap, out);
	}
	if (rc != 0)
		goto out;
	/* A stripe's live entries belong to one update (a second waits for the first to
	 * retire); should older ones show, the newest update alone is applied. Older ones can
	 * show when a newer update's entries went elsewhere: a draid column that a distributed
	 * spare took (or gave back) has its entries on another member's ring, and the old
	 * ring's floor may never have passed them. A header of a newer update, whole or not
	 * (its space reused since it retired), live or below its ring's floor, is proof enough
	 * that they retired: they are never applied. */
	if (nfound > 1) /* (found is NULL when no ring held an entry: qsort may not take it) */
		qsort(found, nfound, sizeof(*found), found_cmp);
	for (size_t i = 0; i < nfound;) {
		size_t j = i + 1, n = 0;

		while (j < nfound && found[j].h.stripe == found[i].h.stripe &&
		       found[j].h.op == found[i].h.op && found[j].h.r0 == found[i].h.r0)
			j++;
		for (size_t x = i; x < j; x++) {
			if (!found[x].bad)
				found[i + n++] = found[x];
		}
		for (size_t x = i + 1; x < i + n; x++) {
			if (!same_update(&found[i].h, &found[x].h) ||
			    found[x].h.parity == found[x - 1].h.parity)
				rc = -EBADMSG;
		}
		if (n == 0)
			rc = 0; /* nothing whole of the newest update: the stripe is as it was */
		else if (rc == 0)
			rc = recover_update(a, from, &found[i], (unsigned)n, &rb,
					    &out->skipped_rows);
		if (rc == -EBADMSG) {
			out->invalid += n; /* entries that contradict each other */
			rc = 0;
		} else if (rc != 0) {
			LOG_ERR("%s: log recovery of stripe %lu failed: %s", a->bdev.name,
				(unsigned long)found[i].h.stripe, strerror(-rc));
			goto out;
		} else {
			out->applied += n;
		}
		/* Skip older updates of the same stripe. */
		while (j < nfound && found[j].h.stripe == found[i].h.stripe &&
		       found[j].h.op != found[i].h.op)
			j++;
		i = j;
	}
	if (out->applied) {
		for (unsigned m = 0; m < a->l.n; m++) {
			if (a->members[m].desc != NULL)
				(void)uraid_bdev_io_sync(a->members[m].desc, URAID_IO_FLUSH, NULL,
							 0, 0);
		}
	}
out:
	free(found);
	uraid_dma_free(area);
	for (unsigned i = 0; i < RAID_MAX_MEMBERS; i++) {
		uraid_dma_free(rb.disk[i]);
		uraid_dma_free(rb.work[i]);
	}
	for (unsigned j = 0; j < RAID_MAX_PARITY; j++) {
		uraid_dma_free(rb.par[j]);
		uraid_dma_free(rb.dpar[j]);
	}
	free(rb.skip);
	uraid_dma_free(rb.data);
	if (rc == 0) {
		out->holes = rb.holes;
		out->nholes = rb.nholes;
	} else {
		free(rb.holes);
	}
	return rc;
}
