/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target for the RAID stripe tree decoders (record blocks and map pages of log arrays).
 * Built with clang's libFuzzer by `make fuzz`; built with gcc and fuzz_main.c by `make
 * check`, which replays the corpus in tests/fuzz/corpus/rst. The block's own UUID field is
 * taken as the array's, so that the checks behind it are reached; anything that decodes must
 * re-encode to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/core.h"

#define LOGICAL 5000
#define PHYS	8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint32_t map[LOGICAL], out[RST_PAGE_ENTRIES];
	static uint8_t again[RST_BLOCK];
	static struct rst_record r;
	uint8_t uuid[16];
	char err[128];
	uint64_t gen;
	uint32_t index;

	if (size < RST_BLOCK)
		return 0;
	memcpy(uuid, data + 16, 16);
	if (rst_record_decode(data, size, uuid, LOGICAL, PHYS, &r, err, sizeof(err)) == 0) {
		rst_record_encode(again, &r);
		if (memcmp(again, data, RST_BLOCK) != 0)
			abort(); /* a decoded record must survive a round trip */
	}
	index = le_get32(data + 12);
	if (rst_page_decode(data, size, uuid, index, LOGICAL, PHYS, &gen, out, err, sizeof(err)) ==
	    0) {
		uint32_t n = LOGICAL - index * RST_PAGE_ENTRIES;

		if (index >= rst_page_count(LOGICAL))
			abort(); /* a page index the array does not have */
		memcpy(map + (size_t)index * RST_PAGE_ENTRIES, out,
		       (n < RST_PAGE_ENTRIES ? n : RST_PAGE_ENTRIES) * sizeof(out[0]));
		rst_page_encode(again, uuid, index, gen, LOGICAL, map);
		if (memcmp(again, data, RST_BLOCK) != 0)
			abort();
	}
	return 0;
}
