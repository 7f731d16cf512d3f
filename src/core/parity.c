/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Erasure coding over GF(2^8) (polynomial x^8 + x^4 + x^3 + x^2 + 1, 0x11d, as md and ISA-L),
 * on ISA-L, with a byte-at-a-time reference for every routine.
 *
 * Theory of operation. A code with k data and m parity columns is its (k+m) x k generator
 * matrix G whose top k rows are the identity: column c of a stripe is row c of G times the
 * data vector, byte by byte.
 *
 *   raid5 (XOR):  G = [ I ; 1 1 ... 1 ]
 *   raid6 (P+Q):  G = [ I ; 1 1 ... 1 ; g^0 g^1 ... g^(k-1) ],  g = 2   (md's P and Q)
 *   ec (Cauchy):  G = [ I ; C ],  C[i][j] = 1 / ((k + i) xor j)        (ISA-L's cauchy1)
 *
 * Every square submatrix of a Cauchy matrix is invertible, so any k rows of [I ; C] are: the
 * code is MDS, any m lost columns can be rebuilt (tests check every k-subset). For P+Q the
 * same holds for k <= 255 (the g^i are distinct).
 *
 * Decoding m' <= m lost columns: take the first k surviving columns S, invert G_S (the k x k
 * matrix of their rows); lost data column d is row d of G_S^-1 times the survivors; lost
 * parity column j is row j of G times G_S^-1 times the survivors. The rows for one pattern of
 * losses are expanded into ISA-L tables once and cached per channel.
 *
 * Read-modify-write: parity_j' = parity_j + G[k+j][c] * (old_c + new_c), "+" being XOR.
 *
 * Fast paths: XOR parity and single-loss raid5 repair use xor_gen, P+Q encode uses pq_gen,
 * when buffers are 32-byte aligned and lengths a multiple of 32 (always true for strips from
 * our pools); everything else goes through ec_encode_data, which takes any alignment.
 */
#include <isa-l/erasure_code.h>
#include <isa-l/raid.h>
#include <pthread.h>

#include "core.h"

/* --- references --- */

static uint8_t g_exp[512], g_log[256];
static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;

static void
tables_init(void)
{
	unsigned x = 1;

	for (unsigned i = 0; i < 255; i++) {
		g_exp[i] = (uint8_t)x;
		g_log[x] = (uint8_t)i;
		x <<= 1;
		if (x & 0x100)
			x ^= 0x11d;
	}
	for (unsigned i = 255; i < 512; i++)
		g_exp[i] = g_exp[i - 255];
}

uint8_t
gf_mul_ref(uint8_t a, uint8_t b)
{
	pthread_once(&g_tables_once, tables_init);
	if (a == 0 || b == 0)
		return 0;
	return g_exp[g_log[a] + g_log[b]];
}

uint8_t
gf_inv_ref(uint8_t a)
{
	pthread_once(&g_tables_once, tables_init);
	return a == 0 ? 0 : g_exp[255 - g_log[a]];
}

int
gf_invert_ref(const uint8_t *in, uint8_t *out, unsigned n)
{
	uint8_t a[RAID_MAX_MEMBERS * RAID_MAX_MEMBERS];

	memcpy(a, in, (size_t)n * n);
	memset(out, 0, (size_t)n * n);
	for (unsigned i = 0; i < n; i++)
		out[i * n + i] = 1;
	for (unsigned col = 0; col < n; col++) {
		unsigned piv = col;
		uint8_t inv;

		while (piv < n && a[piv * n + col] == 0)
			piv++;
		if (piv == n)
			return -EINVAL;
		if (piv != col) {
			for (unsigned j = 0; j < n; j++) {
				uint8_t t = a[col * n + j];

				a[col * n + j] = a[piv * n + j];
				a[piv * n + j] = t;
				t = out[col * n + j];
				out[col * n + j] = out[piv * n + j];
				out[piv * n + j] = t;
			}
		}
		inv = gf_inv_ref(a[col * n + col]);
		for (unsigned j = 0; j < n; j++) {
			a[col * n + j] = gf_mul_ref(a[col * n + j], inv);
			out[col * n + j] = gf_mul_ref(out[col * n + j], inv);
		}
		for (unsigned r = 0; r < n; r++) {
			uint8_t f = a[r * n + col];

			if (r == col || f == 0)
				continue;
			for (unsigned j = 0; j < n; j++) {
				a[r * n + j] ^= gf_mul_ref(f, a[col * n + j]);
				out[r * n + j] ^= gf_mul_ref(f, out[col * n + j]);
			}
		}
	}
	return 0;
}

void
code_encode_ref(const struct code *c, size_t len, uint8_t *const *data, uint8_t *const *parity)
{
	for (unsigned j = 0; j < c->m; j++) {
		const uint8_t *row = &c->matrix[(c->k + j) * c->k];

		for (size_t b = 0; b < len; b++) {
			uint8_t acc = 0;

			for (unsigned i = 0; i < c->k; i++)
				acc ^= gf_mul_ref(row[i], data[i][b]);
			parity[j][b] = acc;
		}
	}
}

/* --- ISA-L --- */

int
code_init(struct code *c, enum code_kind kind, unsigned k, unsigned m)
{
	uint8_t g = 1;

	if (k == 0 || m == 0 || m > RAID_MAX_PARITY || k + m > RAID_MAX_MEMBERS)
		return -EINVAL;
	if ((kind == CODE_XOR && m != 1) || (kind == CODE_PQ && m != 2))
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->k = k;
	c->m = m;
	if (kind == CODE_CAUCHY) {
		gf_gen_cauchy1_matrix(c->matrix, (int)(k + m), (int)k);
	} else {
		for (unsigned i = 0; i < k; i++) {
			c->matrix[i * k + i] = 1;
			c->matrix[k * k + i] = 1; /* P */
			if (kind == CODE_PQ) {
				c->matrix[(k + 1) * k + i] = g; /* Q: g^i */
				g = gf_mul_ref(g, 2);
			}
		}
	}
	ec_init_tables((int)k, (int)m, &c->matrix[k * k], c->enc_tables);
	return 0;
}

static bool
vec_aligned(size_t len, uint8_t *const *v, unsigned n)
{
	if (len % 32 != 0 || len > INT32_MAX)
		return false;
	for (unsigned i = 0; i < n; i++) {
		if ((uintptr_t)v[i] & 31)
			return false;
	}
	return true;
}

void
code_encode(const struct code *c, size_t len, uint8_t *const *data, uint8_t *const *parity)
{
	void *v[RAID_MAX_MEMBERS + RAID_MAX_PARITY];

	if (c->k >= 2 && c->kind != CODE_CAUCHY && vec_aligned(len, data, c->k) &&
	    vec_aligned(len, parity, c->m)) {
		for (unsigned i = 0; i < c->k; i++)
			v[i] = data[i];
		for (unsigned j = 0; j < c->m; j++)
			v[c->k + j] = parity[j];
		if (c->kind == CODE_XOR)
			xor_gen((int)(c->k + 1), (int)len, v);
		else
			pq_gen((int)(c->k + 2), (int)len, v);
		return;
	}
	ec_encode_data((int)len, (int)c->k, (int)c->m, (uint8_t *)c->enc_tables, (uint8_t **)data,
		       (uint8_t **)parity);
}

void
code_update(const struct code *c, size_t len, unsigned col, const uint8_t *delta,
	    uint8_t *const *parity)
{
	if (c->kind == CODE_XOR && vec_aligned(len, parity, 1) &&
	    vec_aligned(len, (uint8_t *const *)&delta, 1)) {
		void *v[3] = {parity[0], (void *)delta, parity[0]};

		/* P' = P + delta; xor_gen reads each source before writing the same offset. */
		xor_gen(3, (int)len, v);
		return;
	}
	ec_encode_data_update((int)len, (int)c->k, (int)c->m, (int)col, (uint8_t *)c->enc_tables,
			      (uint8_t *)delta, (uint8_t **)parity);
}

void
code_update_from(const struct code *c, size_t len, unsigned col, uint8_t *old,
		 const uint8_t *new_data, uint8_t *const *parity)
{
	if (c->kind == CODE_XOR && vec_aligned(len, parity, 1) && vec_aligned(len, &old, 1) &&
	    vec_aligned(len, (uint8_t *const *)&new_data, 1)) {
		void *v[4] = {parity[0], old, (void *)new_data, parity[0]};

		xor_gen(4, (int)len, v); /* P' = P + old + new, as code_update */
		return;
	}
	code_xor_into(old, new_data, len);
	code_update(c, len, col, old, parity);
}

void
code_xor_into(uint8_t *dst, const uint8_t *src, size_t len)
{
	if (vec_aligned(len, &dst, 1) && vec_aligned(len, (uint8_t *const *)&src, 1)) {
		void *v[3] = {dst, (void *)src, dst};

		xor_gen(3, (int)len, v); /* reads each source before writing the same offset */
		return;
	}
	for (size_t i = 0; i < len; i++)
		dst[i] ^= src[i];
}

void
code_mad(const struct code *c, size_t len, unsigned j, unsigned col, const uint8_t *src,
	 uint8_t *dst)
{
	/* Row j of the expanded tables holds the k coefficients of parity j, 32 bytes each. */
	gf_vect_mad((int)len, (int)c->k, (int)col, (unsigned char *)c->enc_tables + 32 * c->k * j,
		    (unsigned char *)src, dst);
}

static int
decoder_build(const struct code *c, struct code_decoder *d, uint64_t lost_mask)
{
	unsigned k = c->k, nlost = 0, ns = 0;
	uint8_t b[RAID_MAX_MEMBERS * RAID_MAX_MEMBERS], inv[RAID_MAX_MEMBERS * RAID_MAX_MEMBERS];

	for (unsigned col = 0; col < k + c->m && ns < k; col++) {
		if (!(lost_mask & (1ull << col))) {
			memcpy(&b[ns * k], &c->matrix[col * k], k);
			d->src[ns++] = col;
		}
	}
	if (ns < k || gf_invert_matrix(b, inv, (int)k) != 0)
		return -EINVAL;
	for (unsigned col = 0; col < k + c->m; col++) {
		uint8_t *row;

		if (!(lost_mask & (1ull << col)))
			continue;
		row = &d->rows[nlost++ * k];
		if (col < k) {
			memcpy(row, &inv[col * k], k);
			continue;
		}
		/* Parity: its generator row times the inverse. */
		for (unsigned t = 0; t < k; t++) {
			uint8_t acc = 0;

			for (unsigned i = 0; i < k; i++)
				acc ^= gf_mul(c->matrix[col * k + i], inv[i * k + t]);
			row[t] = acc;
		}
	}
	ec_init_tables((int)k, (int)nlost, d->rows, d->tables);
	d->lost_mask = lost_mask;
	return 0;
}

int
code_decode(const struct code *c, struct code_decoder *d, size_t len, uint8_t *const *cols,
	    uint64_t lost_mask)
{
	uint8_t *src[RAID_MAX_MEMBERS], *dst[RAID_MAX_PARITY];
	unsigned nlost = (unsigned)__builtin_popcountll(lost_mask);
	unsigned n = 0;
	int rc;

	if (nlost == 0)
		return 0;
	if (nlost > c->m || lost_mask >> (c->k + c->m))
		return -EINVAL;
	if (c->kind == CODE_XOR && vec_aligned(len, cols, c->k + 1)) {
		void *v[RAID_MAX_MEMBERS + 1];

		/* One lost column of k+1: the XOR of the other k. */
		for (unsigned col = 0; col <= c->k; col++) {
			if (!(lost_mask & (1ull << col)))
				v[n++] = cols[col];
		}
		v[n] = cols[__builtin_ctzll(lost_mask)];
		if (c->k == 1)
			memcpy(v[1], v[0], len);
		else
			xor_gen((int)c->k + 1, (int)len, v);
		return 0;
	}
	if (d->lost_mask != lost_mask) {
		rc = decoder_build(c, d, lost_mask);
		if (rc != 0) {
			d->lost_mask = 0;
			return rc;
		}
	}
	for (unsigned i = 0; i < c->k; i++)
		src[i] = cols[d->src[i]];
	for (unsigned col = 0; col < c->k + c->m; col++) {
		if (lost_mask & (1ull << col))
			dst[n++] = cols[col];
	}
	ec_encode_data((int)len, (int)c->k, (int)nlost, d->tables, src, dst);
	return 0;
}
