/* SPDX-License-Identifier: BSD-3-Clause */
/* The uraid command: dispatches to its subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common/common.h"

static void
usage(FILE *out)
{
	fprintf(out, "usage: uraid COMMAND [ARGS]\n"
		     "\n"
		     "commands:\n"
		     "  serve     run the daemon: arrays driven over JSON-RPC\n"
		     "  rpc       call a JSON-RPC method of a running daemon\n"
		     "\n"
		     "  create NAME LEVEL MEMBER... [-z STRIP_KB] [--superblock] [--policy P]\n"
		     "         [--journal-mode write-through|write-back] [--journal-bdev BDEV]\n"
		     "         [--force]\n"
		     "  status [ARRAY]            arrays, members, rebuild/replace progress\n"
		     "  stats ARRAY [SECONDS]     IOPS, MiB/s, latency, stripe-write kinds\n"
		     "  add-spare ARRAY BDEV | add-spare --pool BDEV\n"
		     "  fail MEMBER               mark a member failed (a spare takes over)\n"
		     "  replace ARRAY MEMBER [NEW] copy a member to NEW (or a spare), then swap\n"
		     "  scrub ARRAY [--repair]    check parity and copies (and fix them)\n"
		     "  delete ARRAY [--clear-superblocks]\n"
		     "  export [BDEV SOCKET|HOST:PORT...] [--stop DEVICE]  NBD exports\n"
		     "            (these talk to 'uraid serve': -s SOCKET or $URAID_RPC_SOCKET,\n"
		     "             --json for the daemon's answer as it is)\n"
		     "\n"
		     "  bench     run a workload on bdevs from a JSON config (bdevperf flags)\n"
		     "  bench-rebuild  time a rebuild onto a spare (and a scrub)\n"
		     "  examine   print the superblock of a member file or device\n"
		     "  torture   cut power under load again and again; check what survives\n"
		     "  version   print the version\n"
		     "  help      this text\n"
		     "\n"
		     "'uraid COMMAND --help' describes a command.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "serve") == 0)
		return serve_main(argc - 1, argv + 1);
	if (admin_is_command(argv[1]))
		return admin_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "rpc") == 0)
		return rpc_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "bench") == 0)
		return bench_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "bench-rebuild") == 0)
		return rebuild_bench_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "torture") == 0)
		return torture_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "examine") == 0)
		return examine_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("uraid %s\n", URAID_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "uraid: unknown command '%s'; run 'uraid help' for the list\n", argv[1]);
	return 2;
}
