/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Assembly by scan (mdadm --assemble --scan): bdev_raid_scan {"paths": [...]} looks at files,
 * directories of member files and block devices, opens as file bdevs those that carry a uraid
 * superblock (named after the file: var/m6.img becomes m6), then examines every bdev and
 * starts each complete array. No member names are needed: the superblocks say which array
 * and slot each one is. Files that carry no superblock (or a torn one) are left alone; a
 * file already served by a bdev is not opened twice. The bdevs opened are recorded like
 * bdev_uring_create calls, so save_config repeats them.
 */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdev/bdev_priv.h"
#include "rpc.h"
#include "uraid/array.h"
#include "uraid/thread.h"

struct scan_out {
	json_t *opened;	 /* bdev names */
	json_t *skipped; /* "path: why" */
};

/* A file left alone: "path: what[why]". */
static void
skip(struct scan_out *so, const char *path, const char *what, const char *why)
{
	char line[PATH_MAX + 200];

	snprintf(line, sizeof(line), "%s: %s%s", path, what, why);
	LOG_INFO("scan: %s", line);
	json_array_append_new(so->skipped, json_string(line));
}

struct served {
	const char *path; /* real path */
	const char *by;
};

static int
served_by(struct uraid_bdev *bdev, void *ctx)
{
	struct served *sv = ctx;
	const char *f = uraid_bdev_get_path(bdev);
	char rp[PATH_MAX];

	if (f != NULL && realpath(f, rp) != NULL && strcmp(rp, sv->path) == 0) {
		sv->by = uraid_bdev_get_name(bdev);
		return 1;
	}
	return 0;
}

/* A bdev name for the file: its name without the extension (m6.img: m6), made unique. */
static void
name_for(const char *path, char *name, size_t len)
{
	char copy[PATH_MAX], base[URAID_BDEV_NAME_MAX];
	char *dot;

	snprintf(copy, sizeof(copy), "%s", path);
	snprintf(base, sizeof(base), "%s", basename(copy));
	dot = strrchr(base, '.');
	if (dot != NULL && dot != base)
		*dot = '\0';
	snprintf(name, len, "%s", base);
	for (unsigned i = 1; uraid_bdev_get_by_name(name) != NULL && i < 1000; i++)
		snprintf(name, len, "%.*s-%u", (int)(URAID_BDEV_NAME_MAX - 6), base, i);
}

static void
scan_file(struct scan_out *so, const char *path, bool named)
{
	struct uraid_member_probe p;
	struct served sv = {0};
	char rp[PATH_MAX], why[512], name[URAID_BDEV_NAME_MAX];
	json_t *params;
	int rc;
	struct stat st;
	uint8_t *area;
	ssize_t got;
	int fd;

	if (realpath(path, rp) == NULL) {
		skip(so, path, "", strerror(errno));
		return;
	}
	sv.path = rp;
	if (uraid_bdev_foreach(served_by, &sv) != 0) {
		if (named)
			skip(so, path, "already open as bdev ", sv.by);
		return;
	}
	fd = open(rp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		skip(so, path, "", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(fd);
		skip(so, path, "not a file or block device", "");
		return;
	}
	area = malloc(URAID_SB_AREA_BYTES);
	got = area ? pread(fd, area, URAID_SB_AREA_BYTES, 0) : -1;
	close(fd);
	if (got < 0) {
		skip(so, path, "cannot read: ", strerror(area ? errno : ENOMEM));
		free(area);
		return;
	}
	if (uraid_probe_superblock(area, (size_t)got, &p, why, sizeof(why)) != 0) {
		free(area);
		skip(so, path, "no uraid superblock: ", why);
		return;
	}
	free(area);
	name_for(rp, name, sizeof(name));
	params = json_pack("{s:s, s:s, s:i}", "name", name, "filename", rp, "block_size",
			   (json_int_t)p.block_size);
	rc = rpc_call_sync("bdev_uring_create", params, NULL, why, sizeof(why));
	json_decref(params);
	if (rc != 0) {
		skip(so, path, "", why);
		return;
	}
	if (p.journal)
		LOG_NOTE("scan: %s: journal device of array %s, opened as %s", path, p.array, name);
	else
		LOG_NOTE("scan: %s: slot %u of array %s, opened as %s", path, p.slot, p.array,
			 name);
	json_array_append_new(so->opened, json_string(name));
}

static int
entry_filter(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static int
scan_path(struct scan_out *so, const char *path, char *err, size_t err_len)
{
	struct dirent **list;
	struct stat st;
	int n;

	if (stat(path, &st) != 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		scan_file(so, path, true);
		return 0;
	}
	n = scandir(path, &list, entry_filter, alphasort);
	if (n < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	for (int i = 0; i < n; i++) {
		char full[PATH_MAX];

		if ((size_t)snprintf(full, sizeof(full), "%s/%s", path, list[i]->d_name) <
			    sizeof(full) &&
		    stat(full, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
			scan_file(so, full, false);
		free(list[i]);
	}
	free(list);
	return 0;
}

struct scan_params {
	json_t *paths;
};

static const struct param_spec scan_spec[] = {
	PARAM(struct scan_params, paths, PT_STRINGS, true),
};

static void
rpc_bdev_raid_scan(struct rpc_request *req, const json_t *params)
{
	struct scan_params p = {0};
	struct scan_out so;
	char err[PATH_MAX + 100], report[8192];
	json_t *e, *lines, *res;
	size_t i;
	int rc;

	if (rpc_decode(req, params, ARRAY_AND_SIZE(scan_spec), &p) != 0)
		return;
	if (json_array_size(p.paths) == 0) {
		rpc_error(req, RPC_INVALID_PARAMS, "%s: 'paths' names no file or directory",
			  req->method);
		return;
	}
	so.opened = json_array();
	so.skipped = json_array();
	json_array_foreach(p.paths, i, e)
	{
		rc = scan_path(&so, json_string_value(e), err, sizeof(err));
		if (rc != 0) {
			json_decref(so.opened);
			json_decref(so.skipped);
			rpc_error_errno(req, rc, "%s: %s", req->method, err);
			return;
		}
	}
	rc = uraid_array_examine(false, report, sizeof(report));
	if (rc < 0) {
		json_decref(so.opened);
		json_decref(so.skipped);
		rpc_error_errno(req, rc, "%s: examine", req->method);
		return;
	}
	lines = json_array();
	for (char *line = strtok(report, "\n"); line; line = strtok(NULL, "\n")) {
		LOG_NOTE("scan: %s", line);
		json_array_append_new(lines, json_string(line));
	}
	res = json_pack("{s:o, s:o, s:i, s:o}", "opened", so.opened, "skipped", so.skipped,
			"started", rc, "report", lines);
	rpc_result(req, res);
}

const struct rpc_method scan_rpc_methods[] = {
	{"bdev_raid_scan", rpc_bdev_raid_scan,
	 "open the files and devices under paths that carry uraid superblocks, and start every "
	 "complete array"},
};
const size_t scan_rpc_num_methods = ARRAY_SIZE(scan_rpc_methods);
