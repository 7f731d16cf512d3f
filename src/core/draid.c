/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Declustered placement (level draid, being built): where each strip of a stripe of k data and
 * m parity strips lives among N members that also hold s strips of distributed spare space in
 * every row. Pure functions of struct draid_map; no I/O.
 *
 * Theory of operation. A row is one strip on every member. Its first d = N - s positions hold
 * stripe columns, the last s are spare. Stripes of width w = k + m are laid over the positions
 * of consecutive rows, so a period of R = w / gcd(d, w) rows holds exactly G = d / gcd(d, w)
 * stripes (G w = R d), some of them wrapping from one row into the next. Slot x of a period
 * (0 <= x < R d) is column x mod w of the period's stripe x / w, in row x / d of the period.
 *
 * Which member a position is comes from a table of B bases, each a seeded random permutation
 * pi_b of the N members together with a seeded random permutation psi_b of the d column
 * positions. Period q uses base b and shift t (q mod B N = b N + t):
 *
 *     member of position p     = pi_b[(p + t) mod N]        (spares: p = d .. N - 1)
 *     position of slot x       = psi_b[x mod d]             (row x / d of the period)
 *
 * So within a base, over its N shifts, every member sits once at every position: over each
 * base's N periods, and so over the table's B N, every member holds exactly as many data,
 * parity and spare strips as any other. The w columns of a stripe take w
 * consecutive slots, hence w different values of x mod d (w <= d), hence w different
 * positions: w different members, none of them a spare of that period. psi_b scatters a
 * stripe's columns over the positions, so a member's partners in its stripes change with the
 * shift: the strips a failed member held are rebuilt from reads spread over all survivors and
 * into spare strips spread over all of them.
 */
#include <stdlib.h>

#include "core.h"

static unsigned
gcd_u(unsigned a, unsigned b)
{
	while (b != 0) {
		unsigned t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static void
shuffle(struct prng *r, uint8_t *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		v[i] = (uint8_t)i;
	for (unsigned i = n; i > 1; i--) {
		unsigned j = (unsigned)prng_below(r, i);
		uint8_t t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

int
draid_map_init(struct draid_map *dm, unsigned n, unsigned k, unsigned m, unsigned s, unsigned bases,
	       uint64_t seed, char *err, size_t err_len)
{
	struct prng r;

	memset(dm, 0, sizeof(*dm));
	if (k < 1 || m < 1 || m > RAID_MAX_PARITY) {
		err_set(err, err_len, "draid needs data_chunks >= 1 and parity_chunks 1 to %u",
			RAID_MAX_PARITY);
		return -EINVAL;
	}
	if (n > RAID_MAX_MEMBERS || n < k + m + s) {
		err_set(err, err_len,
			"draid with %u data, %u parity and %u spare chunks needs %u to %u members, "
			"got %u",
			k, m, s, k + m + s, RAID_MAX_MEMBERS, n);
		return -EINVAL;
	}
	if (bases < 1 || bases > DRAID_MAX_BASES) {
		err_set(err, err_len, "draid table bases are 1 to %u, got %u", DRAID_MAX_BASES,
			bases);
		return -EINVAL;
	}
	dm->n = n;
	dm->k = k;
	dm->m = m;
	dm->s = s;
	dm->w = k + m;
	dm->d = n - s;
	dm->rows = dm->w / gcd_u(dm->d, dm->w);
	dm->groups = dm->d / gcd_u(dm->d, dm->w);
	dm->bases = bases;
	dm->seed = seed;
	prng_seed(&r, seed);
	for (unsigned b = 0; b < bases; b++) {
		shuffle(&r, dm->pi[b], n);
		shuffle(&r, dm->psi[b], dm->d);
		for (unsigned i = 0; i < n; i++)
			dm->pi_inv[b][dm->pi[b][i]] = (uint8_t)i;
		for (unsigned i = 0; i < dm->d; i++)
			dm->psi_inv[b][dm->psi[b][i]] = (uint8_t)i;
	}
	return 0;
}

uint64_t
draid_table_periods(const struct draid_map *dm)
{
	return (uint64_t)dm->bases * dm->n;
}

/* The member at position p of period q. */
static unsigned
member_at(const struct draid_map *dm, uint64_t q, unsigned p)
{
	uint64_t e = q % draid_table_periods(dm);
	unsigned b = (unsigned)(e / dm->n), t = (unsigned)(e % dm->n);

	return dm->pi[b][(p + t) % dm->n];
}

void
draid_locate(const struct draid_map *dm, uint64_t stripe, unsigned col, unsigned *member,
	     uint64_t *row)
{
	uint64_t q = stripe / dm->groups;
	unsigned x = (unsigned)(stripe % dm->groups) * dm->w + col;
	unsigned b = (unsigned)(q % draid_table_periods(dm) / dm->n);

	*row = q * dm->rows + x / dm->d;
	*member = member_at(dm, q, dm->psi[b][x % dm->d]);
}

unsigned
draid_spare_member(const struct draid_map *dm, uint64_t row, unsigned j)
{
	return member_at(dm, row / dm->rows, dm->d + j);
}

bool
draid_at(const struct draid_map *dm, unsigned member, uint64_t row, uint64_t *stripe, unsigned *col)
{
	uint64_t q = row / dm->rows;
	uint64_t e = q % draid_table_periods(dm);
	unsigned b = (unsigned)(e / dm->n), t = (unsigned)(e % dm->n);
	unsigned p = (dm->pi_inv[b][member] + dm->n - t) % dm->n;
	unsigned x;

	if (p >= dm->d) {
		*stripe = q * dm->groups;
		*col = p - dm->d;
		return false;
	}
	x = (unsigned)(row % dm->rows) * dm->d + dm->psi_inv[b][p];
	*stripe = q * dm->groups + x / dm->w;
	*col = x % dm->w;
	return true;
}
