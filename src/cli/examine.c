/* SPDX-License-Identifier: BSD-3-Clause */
/* uraid examine: print the superblock a member file or device carries (offline). */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"

int
examine_main(int argc, char **argv)
{
	uint8_t buf[2 * SB_BYTES];
	char why_primary[128], why_backup[128];
	struct sb sb;
	ssize_t got;
	int fd, rc = 0;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
			"usage: uraid examine MEMBER   (a file or block device)\n");
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "uraid examine: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	got = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	if (got < (ssize_t)SB_BYTES) {
		fprintf(stderr, "uraid examine: %s: too small to hold a uraid superblock\n",
			argv[1]);
		return 1;
	}
	if (sb_decode(buf, (size_t)got, &sb, why_primary, sizeof(why_primary)) == 0) {
		printf("superblock     primary (byte 0)\n");
	} else if (got >= (ssize_t)sizeof(buf) &&
		   sb_decode(buf + SB_BYTES, SB_BYTES, &sb, why_backup, sizeof(why_backup)) == 0) {
		printf("superblock     backup (byte 4096); the primary is damaged: %s\n",
		       why_primary);
	} else {
		fprintf(stderr, "uraid examine: %s: no uraid superblock (%s)\n", argv[1],
			why_primary);
		return 1;
	}
	sb_print(&sb, stdout);
	return rc;
}
