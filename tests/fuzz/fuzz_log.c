/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target for the decoders of the consistency metadata read back from members after a
 * crash: the log entry header (partial parity log and journal), the journal's ring anchor
 * and the write-intent bitmap header. The first byte picks the decoder (bit 0: bitmap header,
 * else bit 1: anchor, else log entry); the rest is the block (entries and anchors are decoded
 * only at a block size, 512 or 4096 bytes). Built with clang's
 * libFuzzer by `make fuzz`; built with gcc and fuzz_main.c by `make check`, which replays the
 * corpus in tests/fuzz/corpus/log. Anything that decodes must re-encode to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
log_entry(const uint8_t *block, size_t size)
{
	uint8_t again[4096];
	struct ppl_header h;
	char err[128];

	if (size != 512 && size != 4096)
		return;
	if (ppl_header_decode(block, (uint32_t)size, &h, err, sizeof(err)) != 0)
		return;
	if (h.k == 0 || h.k > RAID_MAX_MEMBERS || h.r0 >= h.r1 || h.op == 0 || h.floor > h.seq ||
	    h.ring >= h.nrings)
		abort(); /* accepted what the format forbids */
	ppl_header_encode(again, (uint32_t)size, &h);
	if (memcmp(again, block, size) != 0)
		abort(); /* a decoded entry must survive a round trip */
}

static void
anchor(const uint8_t *block, size_t size)
{
	uint8_t again[4096];
	struct ppl_anchor k;
	char err[128];

	if (size != 512 && size != 4096)
		return;
	if (ppl_anchor_decode(block, (uint32_t)size, &k, err, sizeof(err)) != 0)
		return;
	if (k.gen == 0 || k.ring >= k.nrings)
		abort(); /* accepted what the format forbids */
	ppl_anchor_encode(again, (uint32_t)size, &k);
	if (memcmp(again, block, size) != 0)
		abort(); /* a decoded anchor must survive a round trip */
}

static void
bitmap_header(const uint8_t *block, size_t size)
{
	uint8_t *again;
	char err[128];
	uint64_t units, bits;

	if (size < 48 || size > 4096)
		return;
	/* The superblock's view: what the header claims, so that only the header is tested. */
	units = le_get64(block + 32);
	bits = le_get64(block + 40);
	if (bitmap_header_decode(block, size, block + 16, units, bits, err, sizeof(err)) != 0)
		return;
	again = malloc(size);
	if (again == NULL)
		return;
	bitmap_header_encode(again, size, block + 16, units, bits);
	if (memcmp(again, block, size) != 0)
		abort(); /* a decoded header must survive a round trip */
	free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		bitmap_header(data + 1, size - 1);
	else if (data[0] & 2)
		anchor(data + 1, size - 1);
	else
		log_entry(data + 1, size - 1);
	return 0;
}
