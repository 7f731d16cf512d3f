/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Layout math: array block -> (stripe, member, member block), for every level. Pure
 * functions of struct layout; no I/O, no state.
 *
 * Theory of operation. A strip is strip_blocks consecutive blocks on one member. Member
 * block numbers here are relative to the member's data area.
 *
 * raid0 (n members): array strip L lives on member L % n, member strip L / n.
 *
 *        m0  m1  m2
 *   s0:  D0  D1  D2
 *   s1:  D3  D4  D5
 *
 * concat: member i holds array blocks [concat_start[i], concat_start[i+1]), in order.
 *
 * raid1 (n members): every member holds the whole array; copy c is on member c.
 *
 * raid10, near copies (md's "n2" layout generalised to any n >= copies): the copies of array
 * strip L occupy the device slots L*copies .. L*copies+copies-1, and slot t is member t % n,
 * member strip t / n. With 3 members and 2 copies:
 *
 *        m0  m1  m2
 *   r0:  A   A   B
 *   r1:  B   C   C
 *
 * raid5/raid6/ec (k data + m parity, n = k + m members): stripe s holds k data strips and m
 * parity strips, all at member strip s. The first parity column sits on member
 * p0 = (n - 1) - (s mod n) and parity j on (p0 + j) mod n (P, then Q, ...).
 *   - left-symmetric (md's default, and our raid6/ec): data strip i is on member
 *     (p0 + m + i) mod n, i.e. data starts right after the last parity and wraps.
 *   - left-asymmetric (raid5 only; SPDK raid5f): data strip i is on member i if i < p0, else
 *     i + 1: data always fills from member 0, skipping the parity member.
 *
 *   raid5 left-symmetric, n = 4        raid5 left-asymmetric (raid5f), n = 4
 *        m0  m1  m2  m3                     m0  m1  m2  m3
 *   s0:  D0  D1  D2  P                 s0:  D0  D1  D2  P
 *   s1:  D4  D5  P   D3                s1:  D3  D4  P   D5
 *   s2:  D8  P   D6  D7                s2:  D6  P   D7  D8
 *   s3:  P   D9  D10 D11               s3:  P   D9  D10 D11
 *
 * raid6 with md's left-symmetric placement: P on p0, Q on p0 + 1, data from p0 + 2. The Q
 * coefficient of data strip i is g^i (md's ordering), see parity.c.
 *
 * draid (k data + m parity over n members, s of every row's strips spare): draid.c places
 * column c of stripe s at (member, member strip) by its table; the array uses whole periods
 * of the table's rows, so member_blocks is a multiple of a period's strips.
 */
#include "core.h"

uint64_t
layout_stripe_data_blocks(const struct layout *l)
{
	switch (l->level) {
	case URAID_RAID0:
		return l->strip_blocks * l->n;
	case URAID_RAID5:
	case URAID_RAID6:
	case URAID_EC:
	case URAID_DRAID:
		return l->strip_blocks * l->k;
	default:
		return l->strip_blocks;
	}
}

uint64_t
layout_array_blocks(const struct layout *l)
{
	switch (l->level) {
	case URAID_RAID0:
		return l->member_blocks * l->n;
	case URAID_RAID1:
		return l->member_blocks;
	case URAID_RAID10:
		/* Whole rows of strips only: n * member_strips slots, copies per array strip. */
		return (l->member_blocks / l->strip_blocks) * l->n / l->copies * l->strip_blocks;
	case URAID_CONCAT:
		return l->concat_start[l->n];
	case URAID_RAID5:
	case URAID_RAID6:
	case URAID_EC:
		return l->member_blocks * l->k;
	case URAID_DRAID:
		return layout_strips_to_stripes(l, l->member_blocks / l->strip_blocks) * l->k *
		       l->strip_blocks;
	}
	return 0;
}

uint64_t
layout_stripes_to_strips(const struct layout *l, uint64_t stripes)
{
	if (l->level != URAID_DRAID)
		return stripes;
	return stripes / l->dm->groups * l->dm->rows;
}

uint64_t
layout_strips_to_stripes(const struct layout *l, uint64_t strips)
{
	if (l->level != URAID_DRAID)
		return strips;
	return strips / l->dm->rows * l->dm->groups;
}

uint64_t
layout_column_strip(const struct layout *l, uint64_t stripe, unsigned col)
{
	unsigned member;
	uint64_t row;

	if (l->level != URAID_DRAID)
		return stripe;
	draid_locate(l->dm, stripe, col, &member, &row);
	return row;
}

static uint64_t
min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

void
layout_map(const struct layout *l, uint64_t lba, uint64_t num_blocks, unsigned copy,
	   struct layout_chunk *out)
{
	/* (strip_blocks is a power of two: no divisions on the I/O path) */
	uint64_t strip = lba >> __builtin_ctzll(l->strip_blocks);
	uint64_t in_strip = lba & (l->strip_blocks - 1);
	uint64_t slot;

	out->num_blocks = min_u64(num_blocks, l->strip_blocks - in_strip);
	switch (l->level) {
	case URAID_RAID0:
		out->member = (unsigned)(strip % l->n);
		out->member_offset_blocks = strip / l->n * l->strip_blocks + in_strip;
		break;
	case URAID_RAID1:
		out->member = copy;
		out->member_offset_blocks = lba;
		break;
	case URAID_RAID10:
		slot = strip * l->copies + copy;
		out->member = (unsigned)(slot % l->n);
		out->member_offset_blocks = slot / l->n * l->strip_blocks + in_strip;
		break;
	case URAID_CONCAT: {
		unsigned i = 0;

		while (i + 1 < l->n && lba >= l->concat_start[i + 1])
			i++;
		out->member = i;
		out->member_offset_blocks = lba - l->concat_start[i];
		out->num_blocks = min_u64(num_blocks, l->concat_start[i + 1] - lba);
		break;
	}
	default: {
		/* Parity levels: the data strip holding lba (reads on the healthy path). */
		uint64_t stripe = strip / l->k;
		unsigned data_idx = (unsigned)(strip % l->k);
		uint64_t row = stripe;

		if (l->level == URAID_DRAID)
			draid_locate(l->dm, stripe, data_idx, &out->member, &row);
		else
			out->member = layout_data_member(l, stripe, data_idx);
		out->member_offset_blocks = row * l->strip_blocks + in_strip;
		break;
	}
	}
}

static unsigned
first_parity(const struct layout *l, uint64_t stripe)
{
	return (unsigned)((l->n - 1) - stripe % l->n);
}

static unsigned
draid_member(const struct layout *l, uint64_t stripe, unsigned col)
{
	unsigned member;
	uint64_t row;

	draid_locate(l->dm, stripe, col, &member, &row);
	return member;
}

unsigned
layout_parity_member(const struct layout *l, uint64_t stripe, unsigned j)
{
	if (l->level == URAID_DRAID)
		return draid_member(l, stripe, l->k + j);
	return (first_parity(l, stripe) + j) % l->n;
}

unsigned
layout_data_member(const struct layout *l, uint64_t stripe, unsigned data_idx)
{
	unsigned p0 = first_parity(l, stripe);

	if (l->level == URAID_DRAID)
		return draid_member(l, stripe, data_idx);
	if (l->level == URAID_RAID5 && l->r5_layout == URAID_R5_LEFT_ASYMMETRIC)
		return data_idx < p0 ? data_idx : data_idx + 1;
	return (p0 + l->m + data_idx) % l->n;
}

unsigned
layout_member_column(const struct layout *l, uint64_t stripe, unsigned member)
{
	unsigned p0 = first_parity(l, stripe);
	unsigned rel = (member + l->n - p0) % l->n; /* 0..m-1: parity j */

	if (rel < l->m)
		return l->k + rel;
	if (l->level == URAID_RAID5 && l->r5_layout == URAID_R5_LEFT_ASYMMETRIC)
		return member < p0 ? member : member - 1;
	return rel - l->m;
}
