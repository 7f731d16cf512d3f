/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The RAID stripe tree of log-structured arrays, on-disk format v1: record blocks and map
 * pages, encoded and decoded field by field (the byte tables are in docs/format.md, "RAID
 * stripe tree v1"; this file and that section change together).
 *
 * Theory of operation. A log-structured array places every write in fresh space and keeps
 * where it went in a map from array (logical) blocks to physical blocks. The map lives in
 * memory; on the members it is
 *   - a ring of record blocks: each says "these logical extents now live at these physical
 *     blocks" (or are unmapped), numbered by a sequence that only grows. A record is written
 *     only after the data it points at is durable; an array write is acknowledged only after
 *     its record is durable too.
 *   - map pages, two slots each: a checkpoint writes every page changed since the last one
 *     (to the slot not holding its newest copy), then a checkpoint record (numbered by the
 *     checkpoint's generation, in one of two anchor blocks) naming the last record the pages
 *     contain; ring space up to it may then be reused.
 * Recovery takes the newest valid copy of every page, then replays the records after the
 * newest checkpoint in sequence order, stopping at the first missing one.
 *
 * The decoders trust nothing: every field is range-checked against the array's geometry,
 * and the fuzzer (tests/fuzz/fuzz_rst.c) feeds them arbitrary blocks.
 */
#include <isa-l/crc.h>

#include "core.h"

enum {
	R_MAGIC = 0,
	R_VERSION = 8,
	R_TYPE = 12,
	R_UUID = 16,
	R_SEQ = 32,
	R_UPTO = 40,
	R_COUNT = 48,
	R_RESERVED = 52, /* 12 bytes */
	R_ENTRIES = 64,
	R_ENTRY_BYTES = 24,
	P_MAGIC = 0,
	P_VERSION = 8,
	P_INDEX = 12,
	P_UUID = 16,
	P_GEN = 32,
	P_COUNT = 40,
	P_RESERVED = 44, /* 20 bytes */
	P_ENTRIES = 64,
	META_CRC = RST_BLOCK - 4,
};

_Static_assert(R_ENTRIES + RST_RECORD_ENTRIES * R_ENTRY_BYTES <= META_CRC, "record fits");
_Static_assert(P_ENTRIES + RST_PAGE_ENTRIES * 4 <= META_CRC, "page fits");

static const uint64_t g_record_magic = 0x3153524449415255ull; /* "URAIDRS1" */
static const uint64_t g_page_magic = 0x31504d4449415255ull;   /* "URAIDMP1" */

void
rst_record_encode(uint8_t *buf, const struct rst_record *r)
{
	memset(buf, 0, RST_BLOCK);
	le_put64(buf + R_MAGIC, g_record_magic);
	le_put32(buf + R_VERSION, RST_VERSION);
	le_put32(buf + R_TYPE, r->type);
	memcpy(buf + R_UUID, r->uuid, 16);
	le_put64(buf + R_SEQ, r->seq);
	le_put64(buf + R_UPTO, r->upto);
	le_put32(buf + R_COUNT, r->count);
	for (uint32_t i = 0; i < r->count && i < RST_RECORD_ENTRIES; i++) {
		uint8_t *e = buf + R_ENTRIES + i * R_ENTRY_BYTES;

		le_put64(e, r->ent[i].lba);
		le_put32(e + 8, r->ent[i].len);
		le_put32(e + 12, r->ent[i].phys);
		le_put32(e + 16, r->ent[i].src);
	}
	le_put32(buf + META_CRC, crc32c(buf, META_CRC));
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != 0)
			return false;
	}
	return true;
}

int
rst_record_decode(const uint8_t *buf, size_t len, const uint8_t *uuid, uint64_t logical_blocks,
		  uint64_t phys_blocks, struct rst_record *r, char *err, size_t err_len)
{
	if (len < RST_BLOCK)
		return decode_bad(err, err_len, "shorter than a record block");
	if (le_get64(buf + R_MAGIC) != g_record_magic)
		return decode_bad(err, err_len, "no stripe tree record (magic)");
	if (le_get32(buf + R_VERSION) != RST_VERSION)
		return decode_bad(err, err_len, "unsupported record version");
	if (le_get32(buf + META_CRC) != crc32c(buf, META_CRC))
		return decode_bad(err, err_len, "record checksum mismatch");
	if (memcmp(buf + R_UUID, uuid, 16) != 0)
		return decode_bad(err, err_len, "record of another array");
	memset(r, 0, sizeof(*r));
	memcpy(r->uuid, buf + R_UUID, 16);
	r->type = le_get32(buf + R_TYPE);
	r->seq = le_get64(buf + R_SEQ);
	r->upto = le_get64(buf + R_UPTO);
	r->count = le_get32(buf + R_COUNT);
	if (r->type != RST_REC_MAP && r->type != RST_REC_CHECKPOINT)
		return decode_bad(err, err_len, "unknown record type");
	if (r->seq == 0)
		return decode_bad(err, err_len, "record sequence 0");
	if (!all_zero(buf + R_RESERVED, R_ENTRIES - R_RESERVED))
		return decode_bad(err, err_len, "reserved record fields are not zero");
	if (r->type == RST_REC_CHECKPOINT && r->count != 0)
		return decode_bad(err, err_len, "checkpoint record with entries");
	if (r->type == RST_REC_MAP && (r->upto != 0 || r->count == 0))
		return decode_bad(err, err_len, "map record without entries");
	if (r->count > RST_RECORD_ENTRIES)
		return decode_bad(err, err_len, "too many record entries");
	for (uint32_t i = 0; i < r->count; i++) {
		const uint8_t *e = buf + R_ENTRIES + i * R_ENTRY_BYTES;
		struct rst_extent *x = &r->ent[i];

		x->lba = le_get64(e);
		x->len = le_get32(e + 8);
		x->phys = le_get32(e + 12);
		x->src = le_get32(e + 16);
		if (le_get32(e + 20) != 0)
			return decode_bad(err, err_len, "reserved record entry bytes are not zero");
		if (x->src != RST_UNMAPPED && (x->phys == RST_UNMAPPED || x->src >= phys_blocks ||
					       phys_blocks - x->src < x->len))
			return decode_bad(err, err_len, "record move outside the members");
		if (x->len == 0 || x->lba >= logical_blocks || logical_blocks - x->lba < x->len)
			return decode_bad(err, err_len, "record extent outside the array");
		if (x->phys != RST_UNMAPPED &&
		    (x->phys >= phys_blocks || phys_blocks - x->phys < x->len))
			return decode_bad(err, err_len, "record extent outside the members");
	}
	if (!all_zero(buf + R_ENTRIES + r->count * R_ENTRY_BYTES,
		      META_CRC - R_ENTRIES - r->count * R_ENTRY_BYTES))
		return decode_bad(err, err_len, "bytes after the record entries are not zero");
	return 0;
}

uint32_t
rst_page_count(uint64_t logical_blocks)
{
	return (uint32_t)((logical_blocks + RST_PAGE_ENTRIES - 1) / RST_PAGE_ENTRIES);
}

static uint32_t
page_entries(uint64_t logical_blocks, uint32_t index)
{
	uint64_t first = (uint64_t)index * RST_PAGE_ENTRIES;

	return logical_blocks - first < RST_PAGE_ENTRIES ? (uint32_t)(logical_blocks - first)
							 : RST_PAGE_ENTRIES;
}

void
rst_page_encode(uint8_t *buf, const uint8_t *uuid, uint32_t index, uint64_t gen,
		uint64_t logical_blocks, const uint32_t *map)
{
	uint32_t count = page_entries(logical_blocks, index);

	memset(buf, 0, RST_BLOCK);
	le_put64(buf + P_MAGIC, g_page_magic);
	le_put32(buf + P_VERSION, RST_VERSION);
	le_put32(buf + P_INDEX, index);
	memcpy(buf + P_UUID, uuid, 16);
	le_put64(buf + P_GEN, gen);
	le_put32(buf + P_COUNT, count);
	for (uint32_t i = 0; i < count; i++)
		le_put32(buf + P_ENTRIES + 4 * i, map[(uint64_t)index * RST_PAGE_ENTRIES + i]);
	le_put32(buf + META_CRC, crc32c(buf, META_CRC));
}

int
rst_page_decode(const uint8_t *buf, size_t len, const uint8_t *uuid, uint32_t index,
		uint64_t logical_blocks, uint64_t phys_blocks, uint64_t *gen, uint32_t *out,
		char *err, size_t err_len)
{
	uint32_t count;

	if (len < RST_BLOCK)
		return decode_bad(err, err_len, "shorter than a map page");
	if (le_get64(buf + P_MAGIC) != g_page_magic)
		return decode_bad(err, err_len, "no map page (magic)");
	if (le_get32(buf + P_VERSION) != RST_VERSION)
		return decode_bad(err, err_len, "unsupported map page version");
	if (le_get32(buf + META_CRC) != crc32c(buf, META_CRC))
		return decode_bad(err, err_len, "map page checksum mismatch");
	if (memcmp(buf + P_UUID, uuid, 16) != 0)
		return decode_bad(err, err_len, "map page of another array");
	if ((uint64_t)index * RST_PAGE_ENTRIES >= logical_blocks ||
	    le_get32(buf + P_INDEX) != index)
		return decode_bad(err, err_len, "map page in the wrong place");
	count = le_get32(buf + P_COUNT);
	if (count != page_entries(logical_blocks, index))
		return decode_bad(err, err_len, "map page entry count does not match the array");
	*gen = le_get64(buf + P_GEN);
	if (*gen == 0)
		return decode_bad(err, err_len, "map page generation 0");
	if (!all_zero(buf + P_RESERVED, P_ENTRIES - P_RESERVED) ||
	    !all_zero(buf + P_ENTRIES + 4 * count, META_CRC - P_ENTRIES - 4 * count))
		return decode_bad(err, err_len, "reserved map page bytes are not zero");
	for (uint32_t i = 0; i < count; i++) {
		uint32_t v = le_get32(buf + P_ENTRIES + 4 * i);

		if (v > phys_blocks)
			return decode_bad(err, err_len, "map page entry outside the members");
		if (out != NULL)
			out[i] = v;
	}
	return 0;
}
