/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target for the superblock decoder. Built with clang's libFuzzer by `make fuzz`; built
 * with gcc and fuzz_main.c by `make check`, which replays the corpus in tests/fuzz/corpus/sb.
 * Anything that decodes must re-encode to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t again[SB_BYTES];
	char err[128];
	struct sb sb;

	if (sb_decode(data, size, &sb, err, sizeof(err)) != 0)
		return 0;
	sb_encode(&sb, again);
	if (memcmp(again, data, SB_BYTES) != 0)
		abort(); /* a decoded superblock must survive a round trip */
	return 0;
}
