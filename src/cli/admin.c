/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The operator's commands, each a thin layer over one or two JSON-RPC methods of a running
 * daemon: create, status, stats, add-spare, fail, replace, scrub, delete, export. --json prints the
 * daemon's answer as it is (for scripts); errors are one line on stderr, exit status 1 (2 for
 * usage).
 */
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "common/common.h"
#include "uraid/bdev.h"

struct admin {
	const char *cmd;
	const char *socket;
	bool json;
	bool flag; /* the command's own switch: --superblock, --repair, --clear-superblocks, --pool
		    */
	bool force;
	const char *strip_kb;
	const char *policy;
	const char *journal_mode;
	const char *journal_bdev;
	const char *size; /* --size: a member file to create */
	int argc;	  /* positional arguments */
	char **argv;
};

static int fail(const struct admin *ad, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(const struct admin *ad, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uraid %s: ", ad->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Call and report: the result (a new reference) or NULL after printing the error. */
static json_t *
call(const struct admin *ad, const char *method, json_t *params)
{
	json_t *result = NULL;
	char err[512];
	int rc =
		cli_rpc_call(cli_rpc_socket(ad->socket), method, params, &result, err, sizeof(err));

	json_decref(params);
	if (rc != 0) {
		fail(ad, "%s", err);
		return NULL;
	}
	return result;
}

static int
print_result(const struct admin *ad, json_t *result, const char *done_text)
{
	if (result == NULL)
		return 1;
	if (ad->json) {
		json_dumpf(result, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
		putchar('\n');
	} else if (done_text != NULL) {
		puts(done_text);
	}
	json_decref(result);
	return 0;
}

/* --- status --- */

static const char *
human_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

static void
print_progress(const char *what, const char *target, json_t *proc)
{
	json_t *prog = json_object_get(proc, "progress");
	long long pct = json_integer_value(json_object_get(prog, "percent"));
	long long rate = json_integer_value(json_object_get(proc, "rate_kib_s"));
	long long eta = json_integer_value(json_object_get(proc, "eta_s"));
	char bar[31];
	int fill = (int)(pct * 30 / 100);

	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	printf("  %-8s [%s] %3lld%%  -> %s  %lld MiB/s  ETA %lldm%02llds\n", what, bar, pct,
	       target ? target : "?", rate / 1024, eta / 60, eta % 60);
}

static void
print_array(const struct admin *ad, json_t *arr)
{
	const char *name = json_string_value(json_object_get(arr, "name"));
	json_t *bdevs, *b, *members = json_object_get(arr, "base_bdevs_list"), *m, *proc, *bm;
	uint64_t size = 0;
	char sz[32];
	size_t i;

	bdevs = call(ad, "bdev_get_bdevs", json_pack("{s:s}", "name", name));
	b = json_array_get(bdevs, 0);
	if (b != NULL)
		size = (uint64_t)json_integer_value(json_object_get(b, "num_blocks")) *
		       (uint64_t)json_integer_value(json_object_get(b, "block_size"));
	json_decref(bdevs);
	printf("%s  %s  %s  %s, strip %lld KiB, %lld of %lld members operational", name,
	       json_string_value(json_object_get(arr, "raid_level")),
	       human_bytes(size, sz, sizeof(sz)), json_string_value(json_object_get(arr, "state")),
	       json_integer_value(json_object_get(arr, "strip_size_kb")),
	       json_integer_value(json_object_get(arr, "num_base_bdevs_operational")),
	       json_integer_value(json_object_get(arr, "num_base_bdevs")));
	if (json_integer_value(json_object_get(arr, "num_spares")) > 0)
		printf(", %lld spare(s)", json_integer_value(json_object_get(arr, "num_spares")));
	printf(", consistency %s", json_string_value(json_object_get(arr, "consistency_policy")));
	if (json_object_get(arr, "journal_mode") != NULL)
		printf(" (%s)", json_string_value(json_object_get(arr, "journal_mode")));
	if (json_object_get(arr, "journal_bdev") != NULL)
		printf(" on %s", json_string_value(json_object_get(arr, "journal_bdev")));
	putchar('\n');
	if (json_object_get(arr, "distributed_spare_state") != NULL) {
		json_t *d;

		printf("  draid %lld+%lld, distributed spares:",
		       json_integer_value(json_object_get(arr, "data_chunks")),
		       json_integer_value(json_object_get(arr, "parity_chunks")));
		json_array_foreach(json_object_get(arr, "distributed_spare_state"), i, d)
		{
			const char *st = json_string_value(json_object_get(d, "state"));

			printf(" %zu %s", i, st ? st : "?");
			if (json_integer_value(json_object_get(d, "slot")) >= 0)
				printf(" (slot %lld)",
				       json_integer_value(json_object_get(d, "slot")));
		}
		putchar('\n');
	}
	bm = json_object_get(arr, "bitmap");
	if (bm != NULL)
		printf("  bitmap: %lld regions of %lld KiB, %lld dirty, %lld to resync\n",
		       json_integer_value(json_object_get(bm, "regions")),
		       json_integer_value(json_object_get(bm, "region_kb")),
		       json_integer_value(json_object_get(bm, "dirty")),
		       json_integer_value(json_object_get(bm, "resync_left")));
	printf("  %-4s %-24s %-11s %s\n", "slot", "member", "state", "note");
	json_array_foreach(members, i, m)
	{
		const char *repl = json_string_value(json_object_get(m, "replacement"));
		const char *by = json_string_value(json_object_get(m, "failed_by"));
		const char *path = json_string_value(json_object_get(m, "path"));
		char note[600] = "";

		if (by != NULL)
			snprintf(note, sizeof(note), "%s",
				 strcmp(by, "request") == 0 ? "(by request) " : "(I/O error) ");
		if (repl != NULL)
			snprintf(note + strlen(note), sizeof(note) - strlen(note),
				 "replacing with %s ", repl);
		if (path != NULL)
			snprintf(note + strlen(note), sizeof(note) - strlen(note), "%s", path);
		printf("  %-4zu %-24s %-11s %s\n", i, json_string_value(json_object_get(m, "name")),
		       json_string_value(json_object_get(m, "state")), note);
	}
	json_array_foreach(json_object_get(arr, "spares"), i, m)
	{
		const char *path = json_string_value(json_object_get(m, "path"));

		printf("  %-4s %-24s %-11s %s\n", "-",
		       json_string_value(json_object_get(m, "name")), "spare", path ? path : "");
	}
	if (json_object_get(arr, "journal_bdev") != NULL) {
		const char *path = json_string_value(json_object_get(arr, "journal_bdev_path"));

		printf("  %-4s %-24s %-11s %s\n", "-",
		       json_string_value(json_object_get(arr, "journal_bdev")), "journal",
		       path ? path : "");
	}
	proc = json_object_get(arr, "process");
	if (proc != NULL)
		print_progress(json_string_value(json_object_get(proc, "type")),
			       json_string_value(json_object_get(proc, "target")), proc);
}

static int
cmd_status(const struct admin *ad)
{
	json_t *arrays, *arr;
	unsigned shown = 0;
	size_t i;

	if (ad->argc > 1)
		return fail(ad, "give at most one array name");
	arrays = call(ad, "bdev_raid_get_bdevs", json_pack("{s:s}", "category", "all"));
	if (arrays == NULL)
		return 1;
	if (ad->json)
		return print_result(ad, arrays, NULL);
	json_array_foreach(arrays, i, arr)
	{
		if (ad->argc == 1 &&
		    strcmp(json_string_value(json_object_get(arr, "name")), ad->argv[0]) != 0)
			continue;
		if (shown++)
			putchar('\n');
		print_array(ad, arr);
	}
	json_decref(arrays);
	if (ad->argc == 1 && shown == 0)
		return fail(ad, "no array named '%s' ('uraid status' lists them)", ad->argv[0]);
	if (shown == 0)
		puts("no arrays");
	return 0;
}

/* --- members named by path --- */

/* Size as --size takes it: a number of MiB, or with a suffix K, M, G, T (binary). */
static int
parse_size_mb(const char *text, uint64_t *mb)
{
	char *end;
	double v = strtod(text, &end);
	double mul = 1.0 / 1024 / 1024;

	switch (*end) {
	case 'k':
	case 'K':
		mul = 1.0 / 1024;
		end++;
		break;
	case 'm':
	case 'M':
	case '\0':
		mul = 1;
		end += *end != '\0';
		break;
	case 'g':
	case 'G':
		mul = 1024;
		end++;
		break;
	case 't':
	case 'T':
		mul = 1024.0 * 1024;
		end++;
		break;
	default:
		return -1;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	if (*end != '\0' || v <= 0 || v * mul < 1 || v * mul > 1e12)
		return -1;
	*mb = (uint64_t)(v * mul);
	return 0;
}

/*
 * A member argument: a bdev name as it is; a path (it has a '/') becomes the file bdev that
 * serves it: the one already open on that file, or a new one named after the file (var/m6.img:
 * m6), created sparse with --size if the file does not exist. name gets the bdev's name.
 */
static int
member_arg(const struct admin *ad, const char *arg, char *name, size_t len)
{
	char path[PATH_MAX], base[PATH_MAX], *dot;
	json_t *bdevs, *b, *params, *r;
	uint64_t mb = 0;
	size_t i;

	if (strchr(arg, '/') == NULL) {
		snprintf(name, len, "%s", arg);
		return 0;
	}
	if (realpath(arg, path) == NULL) {
		char dir[PATH_MAX];

		if (errno != ENOENT || ad->size == NULL)
			return fail(ad, "%s: %s%s", arg, strerror(errno),
				    errno == ENOENT ? " (give --size SIZE to create it)" : "");
		/* A new file: its directory must exist. */
		snprintf(base, sizeof(base), "%s", arg);
		snprintf(dir, sizeof(dir), "%s", dirname(base));
		if (realpath(dir, path) == NULL)
			return fail(ad, "%s: %s", dir, strerror(errno));
		snprintf(base, sizeof(base), "%s", arg);
		if (strlen(path) + strlen(basename(base)) + 2 > sizeof(path))
			return fail(ad, "%s: path too long", arg);
		strcat(path, "/");
		strcat(path, basename(base));
		if (parse_size_mb(ad->size, &mb) != 0)
			return fail(ad,
				    "--size %s: give a size such as 1G or 512M (at least 1 MiB)",
				    ad->size);
	}
	bdevs = call(ad, "bdev_get_bdevs", NULL);
	json_array_foreach(bdevs, i, b)
	{
		const char *f = json_string_value(json_object_get(
			json_object_get(json_object_get(b, "driver_specific"), "uring"),
			"filename"));
		char fr[PATH_MAX];

		if (f != NULL && realpath(f, fr) != NULL && strcmp(fr, path) == 0) {
			snprintf(name, len, "%s", json_string_value(json_object_get(b, "name")));
			json_decref(bdevs);
			return 0;
		}
	}
	json_decref(bdevs);
	snprintf(base, sizeof(base), "%s", path);
	snprintf(name, len, "%s", basename(base));
	dot = strrchr(name, '.');
	if (dot != NULL && dot != name)
		*dot = '\0';
	params = json_pack("{s:s, s:s}", "name", name, "filename", path);
	if (mb != 0)
		json_object_set_new(params, "size_mb", json_integer((json_int_t)mb));
	r = call(ad, "bdev_uring_create", params);
	if (r == NULL)
		return 1;
	json_decref(r);
	return 0;
}

/* --- the others --- */

static int
cmd_create(const struct admin *ad)
{
	json_t *params, *members;
	char *end;

	if (ad->argc < 3)
		return fail(
			ad,
			"usage: uraid create NAME LEVEL BDEV|PATH... [--size SIZE] [-z STRIP_KB] "
			"[--superblock] [--policy none|bitmap|ppl|journal] "
			"[--journal-mode write-through|write-back] [--journal-bdev BDEV] "
			"[--force]");
	members = json_array();
	for (int i = 2; i < ad->argc; i++) {
		char name[URAID_BDEV_NAME_MAX];

		if (member_arg(ad, ad->argv[i], name, sizeof(name)) != 0) {
			json_decref(members);
			return 1;
		}
		json_array_append_new(members, json_string(name));
	}
	params = json_pack("{s:s, s:s, s:o, s:b, s:b}", "name", ad->argv[0], "raid_level",
			   ad->argv[1], "base_bdevs", members, "superblock", ad->flag, "force",
			   ad->force);
	if (ad->strip_kb != NULL) {
		unsigned long kb = strtoul(ad->strip_kb, &end, 10);

		if (*end != '\0' || kb == 0) {
			json_decref(params);
			return fail(ad, "-z takes the strip size in KiB, e.g. 64");
		}
		json_object_set_new(params, "strip_size_kb", json_integer((json_int_t)kb));
	}
	if (ad->policy != NULL)
		json_object_set_new(params, "consistency_policy", json_string(ad->policy));
	if (ad->journal_mode != NULL)
		json_object_set_new(params, "journal_mode", json_string(ad->journal_mode));
	if (ad->journal_bdev != NULL)
		json_object_set_new(params, "journal_bdev", json_string(ad->journal_bdev));
	return print_result(ad, call(ad, "bdev_raid_create", params), "created");
}

static int
cmd_add_spare(const struct admin *ad)
{
	char name[URAID_BDEV_NAME_MAX];

	if (ad->flag ? ad->argc != 1 : ad->argc != 2)
		return fail(ad, "usage: uraid add-spare ARRAY BDEV|PATH [--size SIZE] | uraid "
				"add-spare --pool BDEV|PATH");
	if (member_arg(ad, ad->argv[ad->flag ? 0 : 1], name, sizeof(name)) != 0)
		return 1;
	if (ad->flag)
		return print_result(
			ad, call(ad, "bdev_raid_add_spare", json_pack("{s:s}", "base_bdev", name)),
			"added to the spare pool");
	return print_result(
		ad,
		call(ad, "bdev_raid_add_spare",
		     json_pack("{s:s, s:s}", "raid_bdev", ad->argv[0], "base_bdev", name)),
		"added");
}

static int
cmd_fail(const struct admin *ad)
{
	if (ad->argc != 1)
		return fail(ad, "usage: uraid fail MEMBER");
	return print_result(
		ad, call(ad, "bdev_raid_fail_base_bdev", json_pack("{s:s}", "name", ad->argv[0])),
		"failed; a spare takes its slot if the array has one");
}

static int
cmd_replace(const struct admin *ad)
{
	json_t *params;

	if (ad->argc != 2 && ad->argc != 3)
		return fail(ad, "usage: uraid replace ARRAY MEMBER [NEW_BDEV]  (default: a spare)");
	params = json_pack("{s:s, s:s}", "name", ad->argv[0], "base_bdev", ad->argv[1]);
	if (ad->argc == 3)
		json_object_set_new(params, "new_base_bdev", json_string(ad->argv[2]));
	return print_result(ad, call(ad, "bdev_raid_replace_base_bdev", params),
			    "replacing; 'uraid status' shows the progress");
}

static int
cmd_scrub(const struct admin *ad)
{
	json_t *r;

	if (ad->argc != 1)
		return fail(ad, "usage: uraid scrub ARRAY [--repair]");
	r = call(ad, "bdev_raid_scrub",
		 json_pack("{s:s, s:b}", "name", ad->argv[0], "repair", ad->flag));
	if (r == NULL || ad->json)
		return print_result(ad, r, NULL);
	printf("%lld stripes checked, %lld mismatched, %lld unreadable, %lld repaired\n",
	       json_integer_value(json_object_get(r, "stripes_checked")),
	       json_integer_value(json_object_get(r, "mismatches")),
	       json_integer_value(json_object_get(r, "unreadable")),
	       json_integer_value(json_object_get(r, "repaired")));
	json_decref(r);
	return 0;
}

static int
cmd_delete(const struct admin *ad)
{
	if (ad->argc != 1)
		return fail(ad, "usage: uraid delete ARRAY [--clear-superblocks]");
	return print_result(
		ad,
		call(ad, "bdev_raid_delete",
		     json_pack("{s:s, s:b}", "name", ad->argv[0], "clear_superblocks", ad->flag)),
		"deleted");
}

/* --- stats --- */

static double
num(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

static int
cmd_stats(const struct admin *ad)
{
	json_t *r, *io, *sw, *iv;
	double secs = 1.0;
	char *end;

	if (ad->argc == 2) {
		secs = strtod(ad->argv[1], &end);
		if (*end != '\0' || secs < 0 || secs > 60)
			return fail(ad, "%s: give the interval in seconds, 0 to 60", ad->argv[1]);
	}
	if (ad->argc != 1 && ad->argc != 2)
		return fail(ad,
			    "usage: uraid stats ARRAY [SECONDS]  (rates over SECONDS, default 1)");
	r = call(ad, "bdev_raid_get_stats",
		 json_pack("{s:s, s:I}", "name", ad->argv[0], "interval_ms",
			   (json_int_t)(secs * 1000)));
	if (r == NULL || ad->json)
		return print_result(ad, r, NULL);
	io = json_object_get(r, "io");
	sw = json_object_get(r, "stripe_writes");
	iv = json_object_get(r, "interval");
	printf("%s  %s  %s", json_string_value(json_object_get(r, "name")),
	       json_string_value(json_object_get(r, "raid_level")),
	       json_string_value(json_object_get(r, "state")));
	if (json_object_get(r, "process") != NULL)
		printf("  (%s %lld%%)",
		       json_string_value(json_object_get(json_object_get(r, "process"), "type")),
		       json_integer_value(json_object_get(
			       json_object_get(json_object_get(r, "process"), "progress"),
			       "percent")));
	putchar('\n');
	if (iv != NULL)
		printf("  last %.1f s: read %.0f IOPS %.1f MiB/s %.1f us, write %.0f IOPS %.1f "
		       "MiB/s "
		       "%.1f us\n",
		       num(iv, "ms") / 1000, num(iv, "read_iops"), num(iv, "read_mib_s"),
		       num(iv, "read_latency_us_mean"), num(iv, "write_iops"),
		       num(iv, "write_mib_s"), num(iv, "write_latency_us_mean"));
	printf("  total: %.0f reads, %.0f writes, %.0f errors, queue depth now %.0f\n",
	       num(io, "num_read_ops"), num(io, "num_write_ops"), num(io, "io_errors"),
	       num(io, "queue_depth"));
	printf("  stripe writes: %.0f full, %.0f read-modify-write, %.0f reconstruct, %.0f "
	       "degraded; full-stripe ratio %.2f\n",
	       num(sw, "full_stripe"), num(sw, "read_modify_write"), num(sw, "reconstruct_write"),
	       num(sw, "degraded"), num(sw, "full_stripe_ratio"));
	json_decref(r);
	return 0;
}

/* --- export --- */

/* An NBD URI a client can use for the export on device. */
static void
export_uri(const char *bdev, const char *device, char *uri, size_t len)
{
	if (device[0] == '/')
		snprintf(uri, len, "nbd+unix:///%s?socket=%s", bdev, device);
	else if (strchr(device, ':') != NULL && device[0] != ':')
		snprintf(uri, len, "nbd://%s/%s", device, bdev);
	else
		snprintf(uri, len, "nbd://127.0.0.1:%s/%s", device[0] == ':' ? device + 1 : device,
			 bdev);
}

static int
export_list(const struct admin *ad)
{
	json_t *r = call(ad, "nbd_get_disks", NULL), *e;
	char uri[512];
	size_t i;

	if (r == NULL || ad->json)
		return print_result(ad, r, NULL);
	if (json_array_size(r) == 0)
		puts("no exports; start one with 'uraid export BDEV SOCKET_PATH|HOST:PORT'");
	json_array_foreach(r, i, e)
	{
		const char *bdev = json_string_value(json_object_get(e, "bdev_name"));
		const char *dev = json_string_value(json_object_get(e, "nbd_device"));

		export_uri(bdev ? bdev : "", dev ? dev : "", uri, sizeof(uri));
		printf("%-12s %-40s %3lld connection(s)  %s\n", bdev, dev,
		       json_integer_value(json_object_get(e, "connections")), uri);
	}
	json_decref(r);
	return 0;
}

static int
cmd_export(const struct admin *ad)
{
	char path[4096], uri[4400];
	int rc = 0;

	if (ad->flag) {
		if (ad->argc != 1)
			return fail(ad, "usage: uraid export --stop SOCKET_PATH|HOST:PORT");
		return print_result(
			ad,
			call(ad, "nbd_stop_disk", json_pack("{s:s}", "nbd_device", ad->argv[0])),
			"stopped");
	}
	if (ad->argc == 0)
		return export_list(ad);
	if (ad->argc < 2)
		return fail(ad, "usage: uraid export BDEV SOCKET_PATH|HOST:PORT... (or no "
				"arguments to list, --stop DEVICE to stop)");
	for (int i = 1; i < ad->argc && rc == 0; i++) {
		const char *dev = ad->argv[i];
		json_t *r;

		/* A relative socket path means the caller's directory, not the daemon's. */
		if (dev[0] != '/' && strchr(dev, ':') == NULL &&
		    strspn(dev, "0123456789") != strlen(dev)) {
			char cwd[2048];

			if (getcwd(cwd, sizeof(cwd)) == NULL)
				return fail(ad, "getcwd: %s", strerror(errno));
			snprintf(path, sizeof(path), "%s/%s", cwd, dev);
			dev = path;
		}
		r = call(ad, "nbd_start_disk",
			 json_pack("{s:s, s:s}", "bdev_name", ad->argv[0], "nbd_device", dev));
		if (r == NULL)
			return 1;
		export_uri(ad->argv[0], dev, uri, sizeof(uri));
		if (!ad->json)
			printf("exported %s on %s: %s\n", ad->argv[0], dev, uri);
		rc = print_result(ad, r, NULL);
	}
	return rc;
}

static const struct {
	const char *name;
	int (*fn)(const struct admin *ad);
	const char *flag; /* the command's own long option, or NULL */
} g_cmds[] = {
	{"create", cmd_create, "superblock"},
	{"status", cmd_status, NULL},
	{"add-spare", cmd_add_spare, "pool"},
	{"fail", cmd_fail, NULL},
	{"replace", cmd_replace, NULL},
	{"scrub", cmd_scrub, "repair"},
	{"delete", cmd_delete, "clear-superblocks"},
	{"export", cmd_export, "stop"},
	{"stats", cmd_stats, NULL},
};

bool
admin_is_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(g_cmds); i++) {
		if (strcmp(g_cmds[i].name, name) == 0)
			return true;
	}
	return false;
}

int
admin_main(int argc, char **argv)
{
	struct admin ad = {.cmd = argv[0]};
	struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"force", no_argument, NULL, 'f'},
		{"policy", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{"journal-mode", required_argument, NULL, 'J'},
		{"", no_argument, NULL, 'F'}, /* the command's own flag, named below */
		{"journal-bdev", required_argument, NULL, 'B'},
		{"size", required_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	int (*fn)(const struct admin *ad) = NULL;
	int c;

	for (size_t i = 0; i < ARRAY_SIZE(g_cmds); i++) {
		if (strcmp(g_cmds[i].name, argv[0]) == 0) {
			fn = g_cmds[i].fn;
			longopts[6].name = g_cmds[i].flag ? g_cmds[i].flag : "-";
		}
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:z:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			ad.socket = optarg;
			break;
		case 'z':
			ad.strip_kb = optarg;
			break;
		case 'j':
			ad.json = true;
			break;
		case 'f':
			ad.force = true;
			break;
		case 'F':
			ad.flag = true;
			break;
		case 'P':
			ad.policy = optarg;
			break;
		case 'J':
			ad.journal_mode = optarg;
			break;
		case 'B':
			ad.journal_bdev = optarg;
			break;
		case 'S':
			ad.size = optarg;
			break;
		case 'h':
			printf("uraid %s: see 'uraid help'; every command takes -s SOCKET and "
			       "--json\n",
			       ad.cmd);
			return 0;
		default:
			fprintf(stderr, "uraid %s: run 'uraid help' for the usage\n", ad.cmd);
			return 2;
		}
	}
	ad.argc = argc - optind;
	ad.argv = argv + optind;
	return fn ? fn(&ad) : 2;
}
