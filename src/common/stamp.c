/* SPDX-License-Identifier: BSD-3-Clause */
/* Verification stamps: block contents that name their own address and generation. */
#include "common.h"

struct stamp_hdr {
	uint64_t magic;
	uint64_t lba;
	uint64_t gen;
	uint64_t seed;
};

static inline uint64_t
stamp_key(uint64_t lba, uint64_t gen, uint64_t seed)
{
	uint64_t x = lba * 0x9e3779b97f4a7c15ull ^ gen * 0xc2b2ae3d27d4eb4full ^ seed;

	return splitmix64(&x);
}

void
stamp_fill(void *buf, uint32_t block_size, uint64_t lba, uint64_t gen, uint64_t seed)
{
	struct stamp_hdr hdr = {STAMP_MAGIC, lba, gen, seed};
	uint64_t *w = buf;

	uint64_t key = stamp_key(lba, gen, seed);

	memcpy(buf, &hdr, sizeof(hdr));
	/* Every word is covered, so a flip anywhere shows; the per-word mix is one multiply so a
	 * fill costs about what a memset does. */
	for (uint64_t i = sizeof(hdr) / 8; i < block_size / 8; i++)
		w[i] = key ^ (i * 0xff51afd7ed558ccdull);
}

int
stamp_check(const void *buf, uint32_t block_size, uint64_t lba, uint64_t gen, uint64_t seed,
	    uint64_t *found_lba, uint64_t *found_gen)
{
	struct stamp_hdr hdr;
	const uint64_t *w = buf;

	memcpy(&hdr, buf, sizeof(hdr));
	*found_lba = hdr.magic == STAMP_MAGIC ? hdr.lba : UINT64_MAX;
	*found_gen = hdr.magic == STAMP_MAGIC ? hdr.gen : UINT64_MAX;
	if (hdr.magic != STAMP_MAGIC || hdr.lba != lba || hdr.gen != gen || hdr.seed != seed)
		return -EBADMSG;
	uint64_t key = stamp_key(lba, gen, seed);

	for (uint64_t i = sizeof(hdr) / 8; i < block_size / 8; i++) {
		if (w[i] != (key ^ (i * 0xff51afd7ed558ccdull)))
			return -EBADMSG;
	}
	return 0;
}
