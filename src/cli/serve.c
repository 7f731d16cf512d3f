/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uraid serve: the daemon. Starts the reactors, loads the config (arrays found on its bdevs
 * are assembled), answers JSON-RPC on a Unix socket until SIGINT or SIGTERM, then shuts down
 * cleanly: arrays are deleted first (their superblocks marked clean), then their members.
 */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
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
		"usage: uraid serve [--config FILE [--no-save-config]] [--scan PATH]...\n"
		"                   [--rpc-socket PATH] [-m MASK | --reactors N] [--log LEVEL]\n"
		"                   [--tls-psk FILE | --tls-certs DIR [--tls-verify-peer]]\n"
		"                   [--tls-require]\n"
		"\n"
		"  -c, --config FILE      SPDK-style JSON config to load at start, and kept "
		"current:\n"
		"                         rewritten (atomically, the previous one kept as "
		"FILE.bak)\n"
		"                         after every change save_config would show. A missing\n"
		"                         FILE starts empty (or from FILE.bak) and is created\n"
		"      --no-save-config   load FILE but never write it\n"
		"  -s, --scan PATH        open the member files and devices under PATH (a file, a\n"
		"                         directory of them, a block device) and start every\n"
		"                         complete array found on them; may be repeated\n"
		"  -r, --rpc-socket PATH  JSON-RPC Unix socket (default $URAID_RPC_SOCKET, else\n"
		"                         " DEFAULT_RPC_SOCKET ")\n"
		"  -m MASK                reactor cores: 0x3 or [0,1] (one pinned reactor each)\n"
		"      --reactors N       N reactors, not pinned (default 1)\n"
		"      --log LEVEL        error, warning, notice (default), info, debug\n"
		"      --tls-psk FILE     offer TLS on every NBD export (NBD_OPT_STARTTLS), with\n"
		"                         the pre-shared keys in FILE (psktool's "
		"identity:hex-key)\n"
		"      --tls-certs DIR    offer TLS with the x509 certificate DIR/server-cert.pem\n"
		"                         and its key DIR/server-key.pem\n"
		"      --tls-verify-peer  with --tls-certs: clients must present a certificate\n"
		"                         signed by DIR/ca-cert.pem\n"
		"      --tls-require      refuse clients that do not start TLS, before they learn\n"
		"                         anything about the exports\n"
		"\n"
		"Stops cleanly on SIGINT or SIGTERM.\n");
}

#define MAX_SCAN 16

struct serve_opts {
	const char *config;
	bool no_save;
	const char *scan[MAX_SCAN];
	unsigned nscan;
	const char *socket;
	uint64_t mask;
	unsigned reactors;
	struct nbd_tls_opts tls;
};

static int
parse_args(int argc, char **argv, struct serve_opts *o)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"no-save-config", no_argument, NULL, 'N'},
		{"scan", required_argument, NULL, 's'},
		{"rpc-socket", required_argument, NULL, 'r'},
		{"reactors", required_argument, NULL, 'R'},
		{"log", required_argument, NULL, 'L'},
		{"tls-psk", required_argument, NULL, 'P'},
		{"tls-certs", required_argument, NULL, 'X'},
		{"tls-verify-peer", no_argument, NULL, 'V'},
		{"tls-require", no_argument, NULL, 'Q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum log_level level;
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:s:r:m:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'N':
			o->no_save = true;
			break;
		case 's':
			if (o->nscan == MAX_SCAN) {
				fprintf(stderr, "uraid serve: at most %d --scan paths\n", MAX_SCAN);
				return -1;
			}
			o->scan[o->nscan++] = optarg;
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
		case 'P':
			o->tls.psk_file = optarg;
			break;
		case 'X':
			o->tls.certs_dir = optarg;
			break;
		case 'V':
			o->tls.verify_peer = true;
			break;
		case 'Q':
			o->tls.require = true;
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
	if (o->no_save && o->config == NULL) {
		fprintf(stderr, "uraid serve: --no-save-config goes with --config FILE\n");
		return -1;
	}
	if (o->mask && o->reactors) {
		fprintf(stderr, "uraid serve: give -m or --reactors, not both\n");
		return -1;
	}
	if ((o->tls.require || o->tls.verify_peer) && o->tls.psk_file == NULL &&
	    o->tls.certs_dir == NULL) {
		fprintf(stderr,
			"uraid serve: --tls-require and --tls-verify-peer go with --tls-psk "
			"FILE or --tls-certs DIR\n");
		return -1;
	}
	return 0;
}

/* The config file must be writable where it is kept (its directory: the new version is
 * renamed over it), or the daemon says so now rather than at the first change. */
static int
check_keepable(const char *path, char *err, size_t err_len)
{
	char tmp[PATH_MAX];
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, err_len, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;

		snprintf(err, err_len,
			 "cannot keep %s current: cannot create %s: %s (give --no-save-config to "
			 "load it without saving)",
			 path, tmp, strerror(e));
		return -e;
	}
	close(fd);
	unlink(tmp);
	return 0;
}

/* Load FILE; a missing one is a first start (saving: it is created), or FILE.bak if a crash
 * left only that. */
static int
load_config(const struct serve_opts *o, char *err, size_t err_len)
{
	char bak[PATH_MAX];

	if (access(o->config, F_OK) == 0 || o->no_save)
		return config_load_file(o->config, err, err_len);
	snprintf(bak, sizeof(bak), "%s.bak", o->config);
	if (access(bak, F_OK) == 0) {
		LOG_WARNING("%s is missing; loading its previous version %s", o->config, bak);
		return config_load_file(bak, err, err_len);
	}
	LOG_NOTE("%s does not exist yet: starting empty; it is written at the first change",
		 o->config);
	return 0;
}

static int
scan(const struct serve_opts *o, char *err, size_t err_len)
{
	char why[512];
	json_t *paths, *params;
	int rc;

	if (o->nscan == 0)
		return 0;
	paths = json_array();
	for (unsigned i = 0; i < o->nscan; i++)
		json_array_append_new(paths, json_string(o->scan[i]));
	params = json_pack("{s:o}", "paths", paths);
	rc = rpc_call_sync("bdev_raid_scan", params, NULL, why, sizeof(why));
	json_decref(params);
	if (rc != 0)
		snprintf(err, err_len, "--scan: %s", why);
	return rc;
}

/* Rewrite the config if what runs changed; a failure is said once, until it works again. */
static void
keep_config(bool *failing)
{
	char err[PATH_MAX + 200];

	if (config_keep_now(err, sizeof(err)) != 0) {
		if (!*failing)
			LOG_ERR("the configuration could not be saved: %s", err);
		*failing = true;
	} else if (*failing) {
		LOG_NOTE("the configuration is saved again");
		*failing = false;
	}
}

int
serve_main(int argc, char **argv)
{
	struct serve_opts o = {.socket = cli_rpc_socket(NULL)};
	struct uraid_runtime_opts ro = {0};
	struct jsonrpc_server *server = NULL;
	int cpus[URAID_MAX_REACTORS];
	char err[PATH_MAX + 512];
	sigset_t sigs;
	bool save;
	int rc, sfd;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	save = o.config != NULL && !o.no_save;
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
	rc = nbd_tls_setup(&o.tls, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "uraid serve: TLS: %s\n", err);
		jsonrpc_server_destroy(server);
		close(sfd);
		return 1;
	}
	control_init();
	rc = uraid_runtime_start(&ro);
	if (rc != 0) {
		fprintf(stderr, "uraid serve: cannot start reactors: %s\n", strerror(-rc));
		jsonrpc_server_destroy(server);
		close(sfd);
		return 1;
	}
	if ((save && (rc = check_keepable(o.config, err, sizeof(err))) != 0) ||
	    (o.config != NULL && (rc = load_config(&o, err, sizeof(err))) != 0) ||
	    (rc = scan(&o, err, sizeof(err))) != 0 ||
	    (save && (rc = config_keep(o.config, err, sizeof(err))) != 0)) {
		fprintf(stderr, "uraid serve: %s\n", err);
		rc = 1;
	} else {
		bool failing = false;

		LOG_NOTE("serving: %u reactor%s, JSON-RPC on %s%s%s", ro.num_reactors,
			 ro.num_reactors == 1 ? "" : "s", o.socket,
			 save ? "; configuration kept in " : "", save ? o.config : "");
		while ((rc = jsonrpc_server_poll(server, sfd, 250)) == 0) {
			control_run();
			if (save)
				keep_config(&failing);
		}
		if (rc < 0)
			LOG_ERR("the RPC loop failed: %s", strerror(-rc));
		else
			LOG_NOTE("shutting down");
		rc = rc < 0 ? 1 : 0;
		if (save)
			keep_config(
				&failing); /* the last changes; what shutting down undoes is not */
	}
	config_keep_stop();
	jsonrpc_server_destroy(server);
	nbd_stop_all(); /* connections drain their requests before the bdevs go */
	uraid_spare_pool_clear();
	delete_all_bdevs(); /* arrays first: they are newer than their members */
	uraid_runtime_stop();
	nbd_tls_cleanup();
	close(sfd);
	if (rc == 0)
		LOG_NOTE("stopped cleanly");
	return rc;
}
