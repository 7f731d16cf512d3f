/* SPDX-License-Identifier: BSD-3-Clause */
/* Private interface of the core layer (arrays), sectioned by file. */
#ifndef URAID_CORE_H
#define URAID_CORE_H

#include "common/common.h"
#include "uraid/array.h"

#define RAID_MAX_MEMBERS 32
#define RAID_MAX_PARITY	 4

/* --- layout.c: where every block lives (pure functions, no I/O) --- */

struct layout {
	enum uraid_raid_level level;
	enum uraid_raid5_layout r5_layout;
	unsigned n;		  /* members */
	unsigned k;		  /* data strips per stripe (raid0: n; raid1: 1; raid10: see below) */
	unsigned m;		  /* parity strips per stripe (raid5: 1, raid6: 2, ec: m) */
	unsigned copies;	  /* raid1: n; raid10: near copies */
	uint64_t strip_blocks;	  /* power of two */
	uint64_t member_blocks;	  /* usable data blocks per member (a multiple of strip_blocks) */
	uint64_t concat_start[RAID_MAX_MEMBERS + 1]; /* concat: first array block of member i */
};

/* One piece of a mapped range: blocks [offset_blocks, +num_blocks) of member `member`
 * hold array blocks starting at the range's current position. */
struct layout_chunk {
	unsigned member;
	uint64_t member_offset_blocks;
	uint64_t num_blocks;
};

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
/* Inverse: which column (0..k-1 data, k..k+m-1 parity) member holds in stripe. */
unsigned layout_member_column(const struct layout *l, uint64_t stripe, unsigned member);

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

#endif
