/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The superblock, on-disk format v1: encoded and decoded field by field, little-endian, with a
 * CRC32C over the block. The byte table is docs/format.md; this file and that table change
 * together.
 *
 * Theory of operation. Every member carries the same array description plus a table of slots
 * (one per member position) and its own slot number. A primary copy sits at member byte 0 and
 * a backup at byte 4096; the array's data starts at each slot's data_offset_blocks. Every state
 * change is written to every present member with generation + 1 before it takes effect; on
 * assembly the copy with the highest valid generation wins, and a member whose own copy is
 * older is stale. The decoder trusts nothing: each field is range-checked and checked against
 * the others, so a fuzzer cannot reach undefined behaviour through it.
 */
#include <isa-l/crc.h>
#include <stdio.h>

#include "core.h"

enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 8,
	OFF_HEADER_BYTES = 12,
	OFF_GENERATION = 16,
	OFF_ARRAY_UUID = 24,
	OFF_NAME = 40,
	OFF_LEVEL = 104,
	OFF_R5_LAYOUT = 108,
	OFF_STRIP_KB = 112,
	OFF_BLOCK_SIZE = 116,
	OFF_K = 120,
	OFF_M = 124,
	OFF_COPIES = 128,
	OFF_NUM_SLOTS = 132,
	OFF_ARRAY_BLOCKS = 136,
	OFF_POLICY = 144,
	OFF_FLAGS = 148,
	OFF_THIS_SLOT = 152,
	OFF_RESERVED1 = 156,
	OFF_BITMAP_OFFSET = 160,
	OFF_BITMAP_BLOCKS = 168,
	OFF_RESERVED2 = 172,
	OFF_BITMAP_REGION = 176,
	OFF_PPL_OFFSET = 184,
	OFF_PPL_BLOCKS = 192,
	OFF_RESERVED3 = 196,
	OFF_LOG_EPOCH = 200,
	OFF_JOURNAL_UUID = 208,
	OFF_LOG_RING = 224,
	OFF_RESERVED4 = 228,
	OFF_LOG_BLOCKS = 232,
	OFF_LOG_ZONE = 240,
	OFF_LOG_ZONE_CAP = 248,
	OFF_SLOTS = 256,
	SLOT_BYTES = 48,
	SLOT_UUID = 0,
	SLOT_STATE = 16,
	SLOT_FLAGS = 20,
	SLOT_DATA_OFFSET = 24,
	SLOT_DATA_BLOCKS = 32,
	SLOT_CHECKPOINT = 40,
	OFF_LEFT_GEN = OFF_SLOTS + RAID_MAX_MEMBERS * SLOT_BYTES, /* 8 bytes a slot */
	OFF_DRAID_SPARES = OFF_LEFT_GEN + RAID_MAX_MEMBERS * 8,
	OFF_DRAID_BASES = OFF_DRAID_SPARES + 4,
	OFF_DRAID_SEED = OFF_DRAID_BASES + 4,
	OFF_DRAID_DS = OFF_DRAID_SEED + 8, /* 16 bytes a distributed spare: state, slot, done */
	OFF_DRAID_END = OFF_DRAID_DS + DRAID_MAX_SPARES * 16,
	OFF_CRC = SB_BYTES - 4,
};

_Static_assert(OFF_DRAID_SPARES == 2048, "the byte table in docs/format.md");
_Static_assert(OFF_DRAID_END <= OFF_CRC, "slot tables fit");

void
sb_encode(const struct sb *sb, uint8_t *buf)
{
	memset(buf, 0, SB_BYTES);
	le_put64(buf + OFF_MAGIC, SB_MAGIC);
	le_put32(buf + OFF_VERSION, SB_VERSION);
	le_put32(buf + OFF_HEADER_BYTES, SB_BYTES);
	le_put64(buf + OFF_GENERATION, sb->generation);
	memcpy(buf + OFF_ARRAY_UUID, sb->array_uuid, 16);
	memcpy(buf + OFF_NAME, sb->name, strnlen(sb->name, 63)); /* zero-padded, terminated */
	le_put32(buf + OFF_LEVEL, sb->level);
	le_put32(buf + OFF_R5_LAYOUT, sb->raid5_layout);
	le_put32(buf + OFF_STRIP_KB, sb->strip_size_kb);
	le_put32(buf + OFF_BLOCK_SIZE, sb->block_size);
	le_put32(buf + OFF_K, sb->k);
	le_put32(buf + OFF_M, sb->m);
	le_put32(buf + OFF_COPIES, sb->copies);
	le_put32(buf + OFF_NUM_SLOTS, sb->num_slots);
	le_put64(buf + OFF_ARRAY_BLOCKS, sb->array_blocks);
	le_put32(buf + OFF_POLICY, sb->consistency_policy);
	le_put32(buf + OFF_FLAGS, sb->flags);
	le_put32(buf + OFF_THIS_SLOT, sb->this_slot);
	le_put64(buf + OFF_BITMAP_OFFSET, sb->bitmap_offset_blocks);
	le_put32(buf + OFF_BITMAP_BLOCKS, sb->bitmap_blocks);
	le_put64(buf + OFF_BITMAP_REGION, sb->bitmap_region_units);
	le_put64(buf + OFF_PPL_OFFSET, sb->ppl_offset_blocks);
	le_put32(buf + OFF_PPL_BLOCKS, sb->ppl_blocks);
	le_put64(buf + OFF_LOG_EPOCH, sb->log_epoch);
	memcpy(buf + OFF_JOURNAL_UUID, sb->journal_uuid, 16);
	le_put32(buf + OFF_LOG_RING, sb->log_ring_blocks);
	le_put64(buf + OFF_LOG_BLOCKS, sb->log_array_blocks);
	le_put64(buf + OFF_LOG_ZONE, sb->log_zone_blocks);
	le_put64(buf + OFF_LOG_ZONE_CAP, sb->log_zone_capacity);
	for (uint32_t i = 0; i < sb->num_slots && i < RAID_MAX_MEMBERS; i++) {
		uint8_t *s = buf + OFF_SLOTS + i * SLOT_BYTES;

		memcpy(s + SLOT_UUID, sb->slots[i].uuid, 16);
		le_put32(s + SLOT_STATE, sb->slots[i].state);
		le_put32(s + SLOT_FLAGS, sb->slots[i].flags);
		le_put64(s + SLOT_DATA_OFFSET, sb->slots[i].data_offset_blocks);
		le_put64(s + SLOT_DATA_BLOCKS, sb->slots[i].data_blocks);
		le_put64(s + SLOT_CHECKPOINT, sb->slots[i].rebuild_checkpoint_blocks);
		le_put64(buf + OFF_LEFT_GEN + 8 * i, sb->slots[i].left_generation);
	}
	le_put32(buf + OFF_DRAID_SPARES, sb->draid_spares);
	le_put32(buf + OFF_DRAID_BASES, sb->draid_bases);
	le_put64(buf + OFF_DRAID_SEED, sb->draid_seed);
	for (unsigned j = 0; j < DRAID_MAX_SPARES; j++) {
		le_put32(buf + OFF_DRAID_DS + 16 * j, sb->draid_ds[j].state);
		le_put32(buf + OFF_DRAID_DS + 16 * j + 4, sb->draid_ds[j].slot);
		le_put64(buf + OFF_DRAID_DS + 16 * j + 8, sb->draid_ds[j].done);
	}
	le_put32(buf + OFF_CRC, crc32c(buf, OFF_CRC));
}

static int check_meta(const struct sb *sb, char *err, size_t err_len);

/* draid's distributed spares: each free (all zero), or holding one slot no other holds, of
 * the array's spares only, its position within the stripes; filling or full for a slot that
 * failed, draining (at most one) for a slot whose new member is active. */
static int
check_dspares(const struct sb *sb, char *err, size_t err_len)
{
	uint64_t held = 0, stripes = sb_units(sb);
	unsigned draining = 0;

	for (unsigned j = 0; j < DRAID_MAX_SPARES; j++) {
		const struct sb_dspare *d = &sb->draid_ds[j];
		uint32_t st;

		if (d->state == DS_FREE) {
			if (d->slot != 0 || d->done != 0)
				return decode_bad(err, err_len,
						  "a free distributed spare holds a slot");
			continue;
		}
		if (d->state >= DS_NUM_STATES || j >= sb->draid_spares)
			return decode_bad(err, err_len, "distributed spare state out of range");
		if (d->slot >= sb->num_slots || (held & (1ull << d->slot)))
			return decode_bad(err, err_len, "distributed spare slot out of range");
		held |= 1ull << d->slot;
		if (d->done > stripes)
			return decode_bad(err, err_len, "distributed spare beyond the array");
		st = sb->slots[d->slot].state;
		if (d->state == DS_DRAINING ? st != SB_SLOT_ACTIVE || ++draining > 1
					    : st != SB_SLOT_FAILED && st != SB_SLOT_MISSING)
			return decode_bad(err, err_len,
					  "distributed spare and slot state disagree");
	}
	return 0;
}

int
sb_decode(const uint8_t *buf, size_t len, struct sb *sb, char *err, size_t err_len)
{
	static const uint8_t zero[16];
	uint64_t min_blocks = UINT64_MAX;
	unsigned k, m, n;

	if (len < SB_BYTES)
		return decode_bad(err, err_len, "shorter than a superblock");
	if (le_get64(buf + OFF_MAGIC) != SB_MAGIC)
		return decode_bad(err, err_len, "no uraid superblock (magic)");
	if (le_get32(buf + OFF_VERSION) != SB_VERSION)
		return decode_bad(err, err_len, "unsupported superblock version");
	if (le_get32(buf + OFF_HEADER_BYTES) != SB_BYTES)
		return decode_bad(err, err_len, "wrong superblock size");
	if (le_get32(buf + OFF_CRC) != crc32c(buf, OFF_CRC))
		return decode_bad(err, err_len, "checksum mismatch");

	memset(sb, 0, sizeof(*sb));
	sb->generation = le_get64(buf + OFF_GENERATION);
	memcpy(sb->array_uuid, buf + OFF_ARRAY_UUID, 16);
	memcpy(sb->name, buf + OFF_NAME, 63);
	if (memchr(buf + OFF_NAME, 0, 64) == NULL || sb->name[0] == '\0')
		return decode_bad(err, err_len, "array name is not a terminated string");
	for (const char *c = sb->name; *c; c++) {
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			return decode_bad(err, err_len, "array name has unprintable characters");
	}
	sb->level = le_get32(buf + OFF_LEVEL);
	sb->raid5_layout = le_get32(buf + OFF_R5_LAYOUT);
	sb->strip_size_kb = le_get32(buf + OFF_STRIP_KB);
	sb->block_size = le_get32(buf + OFF_BLOCK_SIZE);
	sb->k = k = le_get32(buf + OFF_K);
	sb->m = m = le_get32(buf + OFF_M);
	sb->copies = le_get32(buf + OFF_COPIES);
	sb->num_slots = n = le_get32(buf + OFF_NUM_SLOTS);
	sb->array_blocks = le_get64(buf + OFF_ARRAY_BLOCKS);
	sb->consistency_policy = le_get32(buf + OFF_POLICY);
	sb->flags = le_get32(buf + OFF_FLAGS);
	sb->this_slot = le_get32(buf + OFF_THIS_SLOT);
	sb->bitmap_offset_blocks = le_get64(buf + OFF_BITMAP_OFFSET);
	sb->bitmap_blocks = le_get32(buf + OFF_BITMAP_BLOCKS);
	sb->bitmap_region_units = le_get64(buf + OFF_BITMAP_REGION);
	sb->ppl_offset_blocks = le_get64(buf + OFF_PPL_OFFSET);
	sb->ppl_blocks = le_get32(buf + OFF_PPL_BLOCKS);
	sb->log_epoch = le_get64(buf + OFF_LOG_EPOCH);
	memcpy(sb->journal_uuid, buf + OFF_JOURNAL_UUID, 16);
	sb->log_ring_blocks = le_get32(buf + OFF_LOG_RING);
	sb->log_array_blocks = le_get64(buf + OFF_LOG_BLOCKS);
	sb->log_zone_blocks = le_get64(buf + OFF_LOG_ZONE);
	sb->log_zone_capacity = le_get64(buf + OFF_LOG_ZONE_CAP);
	sb->draid_spares = le_get32(buf + OFF_DRAID_SPARES);
	sb->draid_bases = le_get32(buf + OFF_DRAID_BASES);
	sb->draid_seed = le_get64(buf + OFF_DRAID_SEED);
	for (unsigned j = 0; j < DRAID_MAX_SPARES; j++) {
		sb->draid_ds[j].state = le_get32(buf + OFF_DRAID_DS + 16 * j);
		sb->draid_ds[j].slot = le_get32(buf + OFF_DRAID_DS + 16 * j + 4);
		sb->draid_ds[j].done = le_get64(buf + OFF_DRAID_DS + 16 * j + 8);
	}

	if (sb->generation == 0)
		return decode_bad(err, err_len, "generation 0");
	if (memcmp(sb->array_uuid, zero, 16) == 0)
		return decode_bad(err, err_len, "array UUID is zero");
	if (sb->level > URAID_DRAID)
		return decode_bad(err, err_len, "unknown level");
	if (sb->raid5_layout > URAID_R5_LEFT_ASYMMETRIC ||
	    (sb->level != URAID_RAID5 && sb->raid5_layout != 0))
		return decode_bad(err, err_len, "unknown layout");
	if (sb->block_size != 512 && sb->block_size != 4096)
		return decode_bad(err, err_len, "block size is not 512 or 4096");
	if (!is_pow2_u64(sb->strip_size_kb) || sb->strip_size_kb > 1024 * 1024 ||
	    (uint64_t)sb->strip_size_kb * 1024 < sb->block_size)
		return decode_bad(err, err_len, "strip size out of range");
	if (n < 1 || n > RAID_MAX_MEMBERS || sb->this_slot >= n)
		return decode_bad(err, err_len, "member count or slot out of range");
	if (sb->consistency_policy > SB_POLICY_LOG)
		return decode_bad(err, err_len, "unknown consistency policy");
	if (le_get32(buf + OFF_RESERVED1) || le_get32(buf + OFF_RESERVED2) ||
	    le_get32(buf + OFF_RESERVED3) || le_get32(buf + OFF_RESERVED4))
		return decode_bad(err, err_len, "reserved fields are not zero");
	if (sb->flags & ~(SB_FLAG_CLEAN | SB_FLAG_WRITE_BACK | SB_FLAG_JOURNAL_DEV |
			  SB_FLAG_THIS_JOURNAL | SB_FLAG_LOG_COST_BENEFIT))
		return decode_bad(err, err_len, "unknown flags");
	if ((sb->flags & SB_FLAG_LOG_COST_BENEFIT) && sb->consistency_policy != SB_POLICY_LOG)
		return decode_bad(err, err_len, "a cleaner flag without the log policy");
	if ((sb->flags & (SB_FLAG_WRITE_BACK | SB_FLAG_JOURNAL_DEV)) &&
	    sb->consistency_policy != SB_POLICY_JOURNAL)
		return decode_bad(err, err_len, "write-back or a journal device without a journal");
	if (!(sb->flags & SB_FLAG_JOURNAL_DEV) != !memcmp(sb->journal_uuid, zero, 16))
		return decode_bad(err, err_len, "journal device uuid does not match the flags");
	if ((sb->flags & SB_FLAG_THIS_JOURNAL) &&
	    (!(sb->flags & SB_FLAG_JOURNAL_DEV) || sb->this_slot != 0))
		return decode_bad(err, err_len, "a journal device's copy without a journal device");
	switch (sb->level) {
	case URAID_RAID0:
	case URAID_CONCAT:
		if (k != n || m != 0 || sb->copies != 1)
			return decode_bad(err, err_len, "shape does not match the level");
		break;
	case URAID_RAID1:
		if (n < 2 || k != 1 || m != 0 || sb->copies != n)
			return decode_bad(err, err_len, "shape does not match the level");
		break;
	case URAID_RAID10:
		if (k != 1 || m != 0 || sb->copies < 2 || sb->copies > n)
			return decode_bad(err, err_len, "shape does not match the level");
		break;
	case URAID_RAID5:
	case URAID_RAID6:
	case URAID_EC:
		if (m < 1 || m > RAID_MAX_PARITY || k < 1 || k + m != n || sb->copies != 1 ||
		    (sb->level == URAID_RAID5 && (m != 1 || n < 3)) ||
		    (sb->level == URAID_RAID6 && (m != 2 || n < 4)))
			return decode_bad(err, err_len, "shape does not match the level");
		break;
	case URAID_DRAID:
		if (m < 1 || m > RAID_MAX_PARITY || k < 1 || sb->copies != 1 ||
		    (uint64_t)k + m + sb->draid_spares > n)
			return decode_bad(err, err_len, "shape does not match the level");
		if (sb->draid_bases < 1 || sb->draid_bases > DRAID_MAX_BASES)
			return decode_bad(err, err_len, "draid table size out of range");
		if (sb->draid_spares > DRAID_MAX_SPARES)
			return decode_bad(err, err_len,
					  "more distributed spares than the table holds");
		if (sb->consistency_policy == SB_POLICY_LOG && sb->log_zone_blocks != 0)
			return decode_bad(err, err_len, "a draid log array over zoned members");
		break;
	}
	if (sb->level != URAID_DRAID &&
	    (sb->draid_spares != 0 || sb->draid_bases != 0 || sb->draid_seed != 0))
		return decode_bad(err, err_len, "draid fields on another level");
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *s = buf + OFF_SLOTS + i * SLOT_BYTES;
		struct sb_slot *sl = &sb->slots[i];
		uint64_t end;

		memcpy(sl->uuid, s + SLOT_UUID, 16);
		sl->state = le_get32(s + SLOT_STATE);
		sl->data_offset_blocks = le_get64(s + SLOT_DATA_OFFSET);
		sl->data_blocks = le_get64(s + SLOT_DATA_BLOCKS);
		sl->rebuild_checkpoint_blocks = le_get64(s + SLOT_CHECKPOINT);
		sl->flags = le_get32(s + SLOT_FLAGS);
		sl->left_generation = le_get64(buf + OFF_LEFT_GEN + 8 * i);
		if (sl->state >= SB_SLOT_NUM_STATES)
			return decode_bad(err, err_len, "slot state out of range");
		if ((sl->flags & ~SB_SLOT_FLAG_CATCH_UP) ||
		    (sl->flags && (sl->state != SB_SLOT_REBUILDING ||
				   sb->consistency_policy != SB_POLICY_BITMAP)))
			return decode_bad(err, err_len, "slot flags out of range");
		if (sl->left_generation > sb->generation ||
		    (sl->left_generation != 0 && sl->state != SB_SLOT_FAILED &&
		     sl->state != SB_SLOT_MISSING))
			return decode_bad(err, err_len, "slot departure generation out of range");
		if (sl->data_blocks == 0 ||
		    ck_add_u64(sl->data_offset_blocks, sl->data_blocks, &end) != 0 ||
		    ck_mul_u64(end, sb->block_size, &end) != 0)
			return decode_bad(err, err_len, "slot data area out of range");
		if ((uint64_t)sl->data_offset_blocks * sb->block_size < 2 * SB_BYTES)
			return decode_bad(err, err_len, "slot data overlaps the superblocks");
		if (sl->rebuild_checkpoint_blocks > sl->data_blocks)
			return decode_bad(err, err_len, "rebuild checkpoint beyond the data");
		if (sl->data_blocks < min_blocks)
			min_blocks = sl->data_blocks;
	}
	if (sb->array_blocks == 0)
		return decode_bad(err, err_len, "array size is zero");
	if (sb->level != URAID_CONCAT) {
		uint64_t cap;

		/* The array must fit in the smallest member area. */
		if (ck_mul_u64(min_blocks,
			       sb->level == URAID_RAID0	  ? n
			       : sb->level == URAID_DRAID ? n - sb->draid_spares
			       : sb->level >= URAID_RAID5 ? k
							  : n,
			       &cap) != 0)
			cap = UINT64_MAX;
		if (sb->array_blocks > cap)
			return decode_bad(err, err_len, "array larger than its members");
	}
	if (check_meta(sb, err, err_len) != 0)
		return -EBADMSG;
	if (check_dspares(sb, err, err_len) != 0)
		return -EBADMSG;
	for (size_t i = OFF_SLOTS + n * SLOT_BYTES; i < OFF_CRC; i++) {
		if (i == OFF_LEFT_GEN)
			i += 8 * n; /* the departure table */
		if (i == OFF_DRAID_SPARES)
			i = OFF_DRAID_END;
		if (buf[i] != 0)
			return decode_bad(err, err_len, "bytes after the slot table are not zero");
	}
	return 0;
}

uint64_t
sb_units(const struct sb *sb)
{
	uint64_t strip = (uint64_t)sb->strip_size_kb * 1024 / sb->block_size;
	uint64_t unit = strip * (sb->level >= URAID_RAID5 ? sb->k : 1);

	return (sb->array_blocks + unit - 1) / unit;
}

/* The metadata areas: present exactly when the policy needs them, between the superblocks and
 * every slot's data, not overlapping, and the bitmap large enough for its bits. */
static int
check_meta(const struct sb *sb, char *err, size_t err_len)
{
	uint64_t lo = 2 * SB_BYTES / sb->block_size, hi = UINT64_MAX;
	bool redundant = sb->level != URAID_RAID0 && sb->level != URAID_CONCAT;
	bool parity = sb->level >= URAID_RAID5;

	for (uint32_t i = 0; i < sb->num_slots; i++) {
		if (sb->slots[i].data_offset_blocks < hi)
			hi = sb->slots[i].data_offset_blocks;
	}
	bool log = sb->consistency_policy == SB_POLICY_LOG;

	if ((sb->consistency_policy == SB_POLICY_BITMAP && !redundant) ||
	    ((sb->consistency_policy == SB_POLICY_PPL ||
	      sb->consistency_policy == SB_POLICY_JOURNAL) &&
	     !parity) ||
	    (log && sb->level == URAID_CONCAT))
		return decode_bad(err, err_len, "consistency policy does not suit the level");
	if ((sb->consistency_policy == SB_POLICY_BITMAP) != (sb->bitmap_blocks != 0))
		return decode_bad(err, err_len, "bitmap area does not match the policy");
	if ((sb->consistency_policy == SB_POLICY_PPL ||
	     sb->consistency_policy == SB_POLICY_JOURNAL || log) != (sb->ppl_blocks != 0))
		return decode_bad(err, err_len, "ppl area does not match the policy");
	if (!log && (sb->log_ring_blocks != 0 || sb->log_array_blocks != 0 ||
		     sb->log_zone_blocks != 0 || sb->log_zone_capacity != 0))
		return decode_bad(err, err_len, "log fields without the log policy");
	if ((sb->log_zone_blocks == 0) != (sb->log_zone_capacity == 0) ||
	    sb->log_zone_capacity > sb->log_zone_blocks ||
	    (sb->log_zone_blocks != 0 &&
	     (!is_pow2_u64(sb->log_zone_blocks) ||
	      sb->log_zone_capacity % ((uint64_t)sb->strip_size_kb * 1024 / sb->block_size) != 0)))
		return decode_bad(err, err_len, "zone geometry out of range");
	if (log && (sb->flags & SB_FLAG_JOURNAL_DEV))
		return decode_bad(err, err_len, "a log array has no journal device");
	if (log && lsa_meta_check(sb) != 0)
		return decode_bad(err, err_len, "log area does not hold its ring and map");
	if (sb->bitmap_blocks == 0 &&
	    (sb->bitmap_offset_blocks != 0 || sb->bitmap_region_units != 0))
		return decode_bad(err, err_len, "bitmap fields without a bitmap");
	if (sb->ppl_blocks == 0 && sb->ppl_offset_blocks != 0)
		return decode_bad(err, err_len, "ppl fields without a ppl area");
	if (sb->bitmap_blocks != 0) {
		uint64_t bits;

		if (sb->bitmap_offset_blocks < lo || sb->bitmap_blocks < 2 ||
		    sb->bitmap_offset_blocks > hi ||
		    hi - sb->bitmap_offset_blocks < sb->bitmap_blocks)
			return decode_bad(err, err_len, "bitmap area out of range");
		if (sb->bitmap_region_units == 0)
			return decode_bad(err, err_len, "bitmap region size is zero");
		bits = (sb_units(sb) + sb->bitmap_region_units - 1) / sb->bitmap_region_units;
		if (bits > (uint64_t)(sb->bitmap_blocks - 1) * sb->block_size * 8)
			return decode_bad(err, err_len, "bitmap area too small for its regions");
	}
	if (sb->flags & SB_FLAG_JOURNAL_DEV) {
		uint64_t end;

		/* On the journal device, one area per slot after its superblocks. */
		if (sb->ppl_offset_blocks < lo || sb->ppl_blocks < 16 ||
		    ck_mul_u64(sb->ppl_blocks, sb->num_slots, &end) != 0 ||
		    ck_add_u64(end, sb->ppl_offset_blocks, &end) != 0 ||
		    ck_mul_u64(end, sb->block_size, &end) != 0)
			return decode_bad(err, err_len, "journal device area out of range");
		return 0;
	}
	if (sb->ppl_blocks != 0 &&
	    (sb->ppl_offset_blocks < lo || sb->ppl_blocks < 16 || sb->ppl_offset_blocks > hi ||
	     hi - sb->ppl_offset_blocks < sb->ppl_blocks))
		return decode_bad(err, err_len, "ppl area out of range");
	return 0;
}

bool
sb_can_catch_up(const struct sb *truth, const struct sb *own, unsigned s)
{
	const struct sb_slot *t, *o;

	if (s >= truth->num_slots || own->this_slot != s || own->num_slots != truth->num_slots)
		return false;
	t = &truth->slots[s];
	o = &own->slots[s];
	return truth->consistency_policy == SB_POLICY_BITMAP &&
	       !memcmp(own->array_uuid, truth->array_uuid, 16) && !memcmp(o->uuid, t->uuid, 16) &&
	       (t->state == SB_SLOT_FAILED || t->state == SB_SLOT_MISSING) &&
	       t->left_generation != 0 && own->generation + 1 >= t->left_generation &&
	       (o->state == SB_SLOT_ACTIVE ||
		(o->state == SB_SLOT_REBUILDING && (o->flags & SB_SLOT_FLAG_CATCH_UP)));
}

const char *
sb_slot_state_name(uint32_t state)
{
	static const char *const names[] = {"active", "failed",	    "missing",
					    "spare",  "rebuilding", "replacing"};

	return state < SB_SLOT_NUM_STATES ? names[state] : "?";
}

void
sb_print(const struct sb *sb, FILE *out)
{
	char uuid[37];

	uraid_uuid_format(sb->array_uuid, uuid);
	fprintf(out, "array          %s\n", sb->name);
	fprintf(out, "array uuid     %s\n", uuid);
	fprintf(out, "level          %s%s\n", uraid_raid_level_name(sb->level),
		sb->level == URAID_RAID5 && sb->raid5_layout == URAID_R5_LEFT_ASYMMETRIC
			? " (left-asymmetric, raid5f)"
			: "");
	if (sb->level == URAID_EC)
		fprintf(out, "code           %u data + %u parity\n", sb->k, sb->m);
	if (sb->level == URAID_DRAID) {
		fprintf(out, "code           %u data + %u parity, %u distributed spares\n", sb->k,
			sb->m, sb->draid_spares);
		fprintf(out, "draid table    %u bases, seed %016lx\n", sb->draid_bases,
			(unsigned long)sb->draid_seed);
		for (unsigned j = 0; j < sb->draid_spares && j < DRAID_MAX_SPARES; j++) {
			const struct sb_dspare *d = &sb->draid_ds[j];

			fprintf(out, "spare %u        %s", j, raid_ds_state_name((int)d->state));
			if (d->state != DS_FREE)
				fprintf(out, ", slot %u", d->slot);
			if (d->state == DS_FILLING || d->state == DS_DRAINING)
				fprintf(out, ", %lu stripes done", (unsigned long)d->done);
			fputc('\n', out);
		}
	}
	if (sb->level == URAID_RAID10)
		fprintf(out, "copies         %u\n", sb->copies);
	fprintf(out, "strip size     %u KiB\n", sb->strip_size_kb);
	fprintf(out, "block size     %u\n", sb->block_size);
	fprintf(out, "array size     %lu blocks (%.1f MiB)\n", (unsigned long)sb->array_blocks,
		(double)sb->array_blocks * sb->block_size / 1048576.0);
	fprintf(out, "generation     %lu\n", (unsigned long)sb->generation);
	fprintf(out, "state          %s\n", sb->flags & SB_FLAG_CLEAN ? "clean" : "dirty");
	fprintf(out, "consistency    %s%s\n", uraid_policy_name(sb->consistency_policy + 1),
		sb->flags & SB_FLAG_WRITE_BACK ? " (write-back)" : "");
	if (sb->flags & SB_FLAG_JOURNAL_DEV) {
		uraid_uuid_format(sb->journal_uuid, uuid);
		fprintf(out, "journal device %s%s\n", uuid,
			sb->flags & SB_FLAG_THIS_JOURNAL ? "  <- this" : "");
	}
	if (sb->bitmap_blocks)
		fprintf(out, "bitmap         %u blocks at %lu, %lu units per bit\n",
			sb->bitmap_blocks, (unsigned long)sb->bitmap_offset_blocks,
			(unsigned long)sb->bitmap_region_units);
	if (sb->consistency_policy == SB_POLICY_LOG)
		fprintf(out, "log            %u blocks at %lu (ring %u), %lu blocks exposed\n",
			sb->ppl_blocks, (unsigned long)sb->ppl_offset_blocks, sb->log_ring_blocks,
			(unsigned long)sb->log_array_blocks);
	else if (sb->ppl_blocks)
		fprintf(out, "ppl            %u blocks at %lu, epoch %lu\n", sb->ppl_blocks,
			(unsigned long)sb->ppl_offset_blocks, (unsigned long)sb->log_epoch);
	if (sb->flags & SB_FLAG_THIS_JOURNAL)
		fprintf(out, "this member    the journal device\n");
	else
		fprintf(out, "this member    slot %u\n", sb->this_slot);
	fprintf(out, "slots:\n");
	for (uint32_t i = 0; i < sb->num_slots; i++) {
		const struct sb_slot *sl = &sb->slots[i];

		uraid_uuid_format(sl->uuid, uuid);
		char note[64] = "";

		if (sl->flags & SB_SLOT_FLAG_CATCH_UP)
			snprintf(note, sizeof(note), "  catching up");
		else if (sl->left_generation)
			snprintf(note, sizeof(note), "  since generation %lu",
				 (unsigned long)sl->left_generation);
		fprintf(out, "  %2u  %-10s %s  data %lu+%lu blocks%s%s\n", i,
			sb_slot_state_name(sl->state), uuid, (unsigned long)sl->data_offset_blocks,
			(unsigned long)sl->data_blocks, note,
			i == sb->this_slot ? "  <- this" : "");
	}
}
