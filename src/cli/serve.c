/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uraid serve: the daemon. Starts the reactors, loads the config (arrays found on its bdevs
 * are assembled), answers JSON-RPC on a Unix socket until SIGINT or SIGTERM, then shuts down
 * cleanly: arrays are deleted first (their superblocks marked clean), then their members.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "server/rpc.h"
#include "uraid/array.h"
#include "uraid/thread.h"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: uraid serve [--config FILE] [--rpc-socket PATH] [-m MASK | --reactors N]\n"
		"                   [--log LEVEL]\n"
		"\n"
		"  -c, --config FILE      SPDK-style JSON config to load at start\n"
		"  -r, --rpc-socket PATH  JSON-RPC Unix socket (default $URAID_RPC_SOCKET, else\n"
		"                         " DEFAULT_RPC_SOCKET ")\n"
		"  -m MASK                reactor cores: 0x3 or [0,1] (one pinned reactor each)\n"
		"      --reactors N       N reactors, not pinned (default 1)\n"
		"      --log LEVEL        error, warning, notice (default), info, debug\n"
		"\n"
		"Stops cleanly on SIGINT or SIGTERM.\n");
}

struct serve_opts {
	const char *config;
	const char *socket;
	uint64_t mask;
	unsigned reactors;
};

static int
parse_args(int argc, char **argv, struct serve_opts *o)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"rpc-socket", required_argument, NULL, 'r'},
		{"reactors", required_argument, NULL, 'R'},
		{"log", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum log_level level;
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:r:m:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'r':
			o->socket = optarg;
			break;
		case 'm':
			if (cli_parse_mask(optarg, &o->mask) != 0) {
				fprintf(stderr,
					"uraid serve: -m %s: give a hex mask (0x3) or a "
					"list ([0,1])\n",
					optarg);
				return -1;
			}
			break;
		case 'R':
			o->reactors = (unsigned)strtoul(optarg, &end, 10);
			if (*end != '\0' || o->reactors == 0 || o->reactors > URAID_MAX_REACTORS) {
				fprintf(stderr, "uraid serve: --reactors %s: give 1 to %d\n",
					optarg, URAID_MAX_REACTORS);
				return -1;
			}
			break;
		case 'L':
			if (log_parse_level(optarg, &level) != 0) {
				fprintf(stderr,
					"uraid serve: --log %s: give error, warning, "
					"notice, info or debug\n",
					optarg);
				return -1;
			}
			log_set_level(level);
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			fprintf(stderr, "uraid serve: run 'uraid serve --help' for the options\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "uraid serve: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->mask && o->reactors) {
		fprintf(stderr, "uraid serve: give -m or --reactors, not both\n");
		return -1;
	}
	return 0;
}

int
serve_main(int argc, char **argv)
{
	struct serve_opts o = {.socket = cli_rpc_socket(NULL)};
	struct uraid_runtime_opts ro = {0};
	struct jsonrpc_server *server = NULL;
	int cpus[URAID_MAX_REACTORS];
	char err[512];
	sigset_t sigs;
	int rc, sfd;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (o.mask) {
		long online = sysconf(_SC_NPROCESSORS_ONLN);

		for (unsigned c = 0; c < 64; c++) {
			if (!(o.mask & (1ull << c)))
				continue;
			if (c >= (unsigned)online || ro.num_reactors == URAID_MAX_REACTORS) {
				fprintf(stderr,
					"uraid serve: core %u is not online (this machine "
					"has %ld)\n",
					c, online);
				return 2;
			}
			cpus[ro.num_reactors++] = (int)c;
		}
		ro.cpus = cpus;
	} else {
		ro.num_reactors = o.reactors ? o.reactors : 1;
	}

	/* Signals are taken by the main loop alone: block them before any thread starts. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		fprintf(stderr, "uraid serve: signalfd: %s\n", strerror(errno));
		return 1;
	}
	/* The socket first: a second instance stops here, before it touches any member. */
	rc = jsonrpc_server_create(o.socket, &server, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "uraid serve: %s\n", err);
		close(sfd);
		return 1;
	}
	rc = uraid_runtime_start(&ro);
	if (rc != 0) {
		fprintf(stderr, "uraid serve: cannot start reactors: %s\n", strerror(-rc));
		jsonrpc_server_destroy(server);
		close(sfd);
		return 1;
	}
	if (o.config != NULL && (rc = config_load_file(o.config, err, sizeof(err))) != 0) {
		fprintf(stderr, "uraid serve: %s\n", err);
		rc = 1;
	} else {
		LOG_NOTE("serving: %u reactor%s, JSON-RPC on %s", ro.num_reactors,
			 ro.num_reactors == 1 ? "" : "s", o.socket);
		while ((rc = jsonrpc_server_poll(server, sfd, 1000)) == 0)
			;
		if (rc < 0)
			LOG_ERR("the RPC loop failed: %s", strerror(-rc));
		else
			LOG_NOTE("shutting down");
		rc = rc < 0 ? 1 : 0;
	}
	jsonrpc_server_destroy(server);
	nbd_stop_all(); /* connections drain their requests before the bdevs go */
	uraid_spare_pool_clear();
	delete_all_bdevs(); /* arrays first: they are newer than their members */
	uraid_runtime_stop();
	close(sfd);
	if (rc == 0)
		LOG_NOTE("stopped cleanly");
	return rc;
}
