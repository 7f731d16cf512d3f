/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The config loader: SPDK's JSON config format,
 *
 *   {"subsystems": [{"subsystem": "bdev",
 *                    "config": [{"method": "bdev_malloc_create", "params": {...}}, ...]}]}
 *
 * The "bdev" subsystem's methods run in order through the same method table as JSON-RPC,
 * then arrays found on those bdevs are assembled, then the "nbd" subsystem's methods
 * (nbd_start_disk) run, so exports can name assembled arrays. Other subsystems of an SPDK
 * config (accel, iobuf, sock, ...) configure SPDK internals that uraid does not have; they
 * are skipped with a notice.
 */
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include <pthread.h>
#include <stdlib.h>

#include "rpc.h"
#include "uraid/bdev.h"
#include "uraid/thread.h"

/* Run one subsystem's "config" array of method calls, in order. */
static int
run_subsystem(const json_t *config, const char *name, const char *origin, char *err, size_t err_len)
{
	json_t *entry;
	size_t j;

	if (json_is_null(config) || config == NULL)
		return 0;
	if (!json_is_array(config)) {
		snprintf(err, err_len, "%s: subsystem %s: \"config\" must be an array", origin,
			 name);
		return -EINVAL;
	}
	json_array_foreach(config, j, entry)
	{
		const char *method = json_string_value(json_object_get(entry, "method"));
		char why[sizeof(((struct rpc_request *)0)->err_msg)];
		int rc;

		if (!json_is_object(entry) || method == NULL) {
			snprintf(err, err_len, "%s: %s config[%zu] needs a \"method\" string",
				 origin, name, j);
			return -EINVAL;
		}
		if (strcmp(method, "bdev_raid_add_spare") == 0) {
			const char *array = json_string_value(
				json_object_get(json_object_get(entry, "params"), "raid_bdev"));

			if (array != NULL && uraid_bdev_get_by_name(array) == NULL) {
				/* Its array did not start (examine said why): the spare waits. */
				LOG_WARNING(
					"%s: %s config[%zu]: array %s is not running; spare not "
					"added",
					origin, name, j, array);
				continue;
			}
		}
		rc = rpc_call_sync(method, json_object_get(entry, "params"), NULL, why,
				   sizeof(why));
		if (rc != 0) {
			snprintf(err, err_len, "%s: %s config[%zu]: %s", origin, name, j, why);
			return rc;
		}
	}
	return 0;
}

int
config_load_json(const json_t *root, const char *origin, char *err, size_t err_len)
{
	json_t *subsystems, *sub, *nbd = NULL;
	size_t i;
	int rc;

	if (!json_is_object(root)) {
		snprintf(err, err_len, "%s: the top level must be an object with \"subsystems\"",
			 origin);
		return -EINVAL;
	}
	subsystems = json_object_get(root, "subsystems");
	if (!json_is_array(subsystems)) {
		snprintf(err, err_len, "%s: \"subsystems\" must be an array", origin);
		return -EINVAL;
	}
	json_array_foreach(subsystems, i, sub)
	{
		const char *name = json_string_value(json_object_get(sub, "subsystem"));

		if (name == NULL) {
			snprintf(err, err_len, "%s: subsystems[%zu] has no \"subsystem\" name",
				 origin, i);
			return -EINVAL;
		}
		if (strcmp(name, "nbd") == 0) {
			nbd = json_object_get(sub, "config"); /* once the arrays are up */
			continue;
		}
		if (strcmp(name, "bdev") != 0) {
			LOG_NOTE(
				"%s: skipping SPDK subsystem '%s' (nothing in it applies to uraid)",
				origin, name);
			continue;
		}
		rc = run_subsystem(json_object_get(sub, "config"), name, origin, err, err_len);
		if (rc != 0)
			return rc;
	}
	/* As SPDK examines every new bdev: arrays whose members are now all registered start. */
	(void)rpc_call_sync("bdev_wait_for_examine", NULL, NULL, err, err_len);
	/* Exports last, so they can name the arrays just assembled. */
	return run_subsystem(nbd, "nbd", origin, err, err_len);
}

int
config_load_file(const char *path, char *err, size_t err_len)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (jerr.line <= 0)
			snprintf(err, err_len, "%s: %s", path, jerr.text);
		else
			snprintf(err, err_len, "%s:%d:%d: malformed JSON: %s", path, jerr.line,
				 jerr.column, jerr.text);
		return -EINVAL;
	}
	rc = config_load_json(root, path, err, err_len);
	json_decref(root);
	return rc;
}

/* --- save_config: the calls that rebuild what is running --- */

struct saved_call {
	TAILQ_ENTRY(saved_call) link;
	char bdev[URAID_BDEV_NAME_MAX];
	const char *method; /* from the method table */
	json_t *params;
};

static const char *const g_saved_methods[] = {
	"bdev_malloc_create",	  "bdev_null_create",  "bdev_aio_create",
	"bdev_uring_create",	  "bdev_error_create", "bdev_fault_create",
	"bdev_zone_block_create", "bdev_drive_create", "bdev_nbd_attach",
};

bool
config_method_saved(const char *method)
{
	for (size_t i = 0; i < ARRAY_SIZE(g_saved_methods); i++) {
		if (strcmp(g_saved_methods[i], method) == 0)
			return true;
	}
	return false;
}

static pthread_mutex_t g_saved_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, saved_call) g_saved = TAILQ_HEAD_INITIALIZER(g_saved);

static void
saved_free(struct saved_call *c)
{
	TAILQ_REMOVE(&g_saved, c, link);
	json_decref(c->params);
	free(c);
}

void
config_record(const char *method, json_t *params, const char *bdev_name)
{
	const struct rpc_method *m = rpc_method_find(method);
	struct saved_call *c, *old, *tmp;

	if (m == NULL || strlen(bdev_name) >= URAID_BDEV_NAME_MAX ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		json_decref(params);
		return;
	}
	/* The name the bdev got (a generated one included), so a reload makes the same. */
	if (json_object_get(params, "base_name") == NULL)
		json_object_set_new(params, "name", json_string(bdev_name));
	snprintf(c->bdev, sizeof(c->bdev), "%s", bdev_name);
	c->method = m->name;
	c->params = params;
	pthread_mutex_lock(&g_saved_lock);
	TAILQ_FOREACH_SAFE(old, &g_saved, link, tmp) {
		if (strcmp(old->bdev, bdev_name) == 0)
			saved_free(old); /* a bdev of that name was deleted since */
	}
	TAILQ_INSERT_TAIL(&g_saved, c, link);
	pthread_mutex_unlock(&g_saved_lock);
}

static json_t *
subsystem(const char *name, json_t *config)
{
	return json_pack("{s:s, s:o}", "subsystem", name, "config", config);
}

/* SPDK's save_config: {"subsystems": [bdev, nbd]} that `uraid serve --config` (or SPDK's
 * loader, for the methods it shares) turns back into what runs now. Arrays with superblocks
 * are not listed: loading their members assembles them (their spares are, after a
 * bdev_wait_for_examine). */
json_t *
config_current(void)
{
	json_t *bdevs = json_array(), *raids;
	struct saved_call *c, *tmp;

	pthread_mutex_lock(&g_saved_lock);
	TAILQ_FOREACH_SAFE(c, &g_saved, link, tmp) {
		if (uraid_bdev_get_by_name(c->bdev) == NULL) {
			saved_free(c); /* deleted since */
			continue;
		}
		json_array_append_new(
			bdevs, json_pack("{s:s, s:O}", "method", c->method, "params", c->params));
	}
	pthread_mutex_unlock(&g_saved_lock);
	raids = raid_save_config();
	json_array_extend(bdevs, raids);
	json_decref(raids);
	return json_pack("{s:[o, o]}", "subsystems", subsystem("bdev", bdevs),
			 subsystem("nbd", nbd_save_config()));
}

static void
rpc_save_config(struct rpc_request *req, const json_t *params UNUSED)
{
	rpc_result(req, config_current());
}

/* --- the config file the daemon keeps current (serve --config) --- */

static char *g_keep_path;
static char *g_kept; /* the text last written */

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, rc = 0;

	if (copy == NULL)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

/*
 * Replace path with text and a newline, so that a crash at any moment leaves path whole, old or
 * new: the text goes to path.tmp (written, fsynced), the old file gets a second name path.bak (a
 * hard link: path itself never goes missing), path.tmp is renamed over path and the directory
 * fsynced.
 */
static int
write_atomic(const char *path, const char *text, char *err, size_t err_len)
{
	size_t len = strlen(path) + 8;
	char *tmp = malloc(len), *bak = malloc(len);
	const char *step = NULL, *what = path;
	int fd = -1, rc = 0;

	if (tmp == NULL || bak == NULL) {
		free(tmp);
		free(bak);
		snprintf(err, err_len, "%s: out of memory", path);
		return -ENOMEM;
	}
	snprintf(tmp, len, "%s.tmp", path);
	snprintf(bak, len, "%s.bak", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		step = "create";
		what = tmp;
	} else if (write_all(fd, text, strlen(text)) != 0 || write_all(fd, "\n", 1) != 0 ||
		   fsync(fd) != 0) {
		step = "write";
		what = tmp;
	} else if ((unlink(bak) != 0 && errno != ENOENT) ||
		   (link(path, bak) != 0 && errno != ENOENT)) {
		step = "keep the previous version as";
		what = bak;
	} else if (rename(tmp, path) != 0) {
		step = "rename the new version over";
	} else if ((rc = fsync_dir_of(path)) != 0) {
		errno = -rc;
		step = "sync the directory of";
	}
	if (step != NULL) {
		rc = errno ? -errno : -EIO;
		snprintf(err, err_len, "cannot %s %s: %s", step, what, strerror(-rc));
		if (fd >= 0 || strcmp(step, "create") != 0)
			unlink(tmp);
	}
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(bak);
	return rc;
}

int
config_keep(const char *path, char *err, size_t err_len)
{
	free(g_keep_path);
	free(g_kept);
	g_kept = NULL;
	g_keep_path = strdup(path);
	if (g_keep_path == NULL)
		return -ENOMEM;
	return config_keep_now(err, err_len);
}

int
config_keep_now(char *err, size_t err_len)
{
	json_t *cur;
	char *text;
	int rc;

	if (g_keep_path == NULL)
		return 0;
	cur = config_current();
	text = json_dumps(cur, JSON_INDENT(2));
	json_decref(cur);
	if (text == NULL) {
		snprintf(err, err_len, "%s: out of memory", g_keep_path);
		return -ENOMEM;
	}
	if (g_kept != NULL && strcmp(g_kept, text) == 0) {
		free(text);
		return 0;
	}
	rc = write_atomic(g_keep_path, text, err, err_len);
	if (rc != 0) {
		free(text);
		return rc;
	}
	free(g_kept);
	g_kept = text;
	LOG_INFO("%s: configuration saved", g_keep_path);
	return 0;
}

void
config_keep_stop(void)
{
	free(g_keep_path);
	free(g_kept);
	g_keep_path = NULL;
	g_kept = NULL;
}

const struct rpc_method config_rpc_methods[] = {
	{"save_config", rpc_save_config,
	 "the running configuration as an SPDK-style JSON config (bdev and nbd subsystems)"},
};
const size_t config_rpc_num_methods = ARRAY_SIZE(config_rpc_methods);
