/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uraid bench-rebuild: how fast an array rebuilds and scrubs. Loads a config, fills the array,
 * measures what the spare alone absorbs (sequential 1 MiB writes), then fails a member, adds
 * the spare and times the rebuild, idle or under a 4 KiB random-read load whose IOPS are
 * compared with the same load before; finally times a scrub (check only). A draid array with
 * distributed spares is redundant again once the failed member is rebuilt into them: that is
 * timed (no spare needed), then the copy back onto the spare added afterwards.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "server/rpc.h"
#include "uraid/array.h"

#define FILL_IO (1u << 20)

struct load {
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch;
	uint64_t blocks, io_blocks;
	bool write; /* sequential writes (fill, spare rate) instead of random reads */
	uint64_t next;
	struct prng rng;
	unsigned qd, inflight;
	_Atomic bool stop;
	_Atomic bool done;
	_Atomic uint64_t ios;
	struct load_slot {
		struct load *l;
		uint8_t *buf;
	} slots[64];
	int status;
};

static void load_next(struct load *l, struct load_slot *slot);

static void
load_cb(void *arg, int status)
{
	struct load_slot *slot = arg;
	struct load *l = slot->l;

	l->inflight--;
	if (status != 0 && l->status == 0)
		l->status = status;
	atomic_fetch_add_explicit(&l->ios, 1, memory_order_relaxed);
	load_next(l, slot);
}

static void
load_next(struct load *l, struct load_slot *slot)
{
	uint64_t lba;
	int rc;

	if (atomic_load(&l->stop) || l->status != 0 || (l->write && l->next >= l->blocks)) {
		if (l->inflight == 0) {
			uraid_put_io_channel(l->ch);
			atomic_store(&l->done, true);
		}
		return;
	}
	if (l->write) {
		lba = l->next;
		l->next += l->io_blocks;
	} else {
		lba = prng_below(&l->rng, l->blocks / l->io_blocks) * l->io_blocks;
	}
	l->inflight++;
	rc = l->write
		     ? uraid_bdev_write(l->desc, l->ch, slot->buf, lba, l->io_blocks, 0, load_cb,
					slot)
		     : uraid_bdev_read(l->desc, l->ch, slot->buf, lba, l->io_blocks, load_cb, slot);
	if (rc != 0) {
		l->inflight--;
		l->status = rc;
		load_next(l, slot);
	}
}

static void
load_start(void *arg)
{
	struct load *l = arg;

	l->ch = uraid_bdev_get_io_channel(l->desc);
	for (unsigned i = 0; i < l->qd; i++) {
		l->slots[i].l = l;
		load_next(l, &l->slots[i]);
	}
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
load_run(struct load *l, const char *name, bool write, uint64_t io_bytes, unsigned qd)
{
	struct uraid_bdev *b;

	memset(l, 0, sizeof(*l));
	if (uraid_bdev_open(name, write, NULL, NULL, &l->desc) != 0)
		return -ENODEV;
	b = uraid_bdev_desc_get_bdev(l->desc);
	l->io_blocks = io_bytes / uraid_bdev_get_block_size(b);
	l->blocks = uraid_bdev_get_num_blocks(b) / l->io_blocks * l->io_blocks;
	l->write = write;
	l->qd = qd;
	prng_seed(&l->rng, 42);
	for (unsigned i = 0; i < qd; i++) {
		l->slots[i].buf = aligned_alloc(4096, io_bytes);
		memset(l->slots[i].buf, 0x3c, io_bytes);
	}
	uraid_reactor_send(uraid_reactor_get(0), load_start, l);
	return 0;
}

static void
load_finish(struct load *l)
{
	atomic_store(&l->stop, true);
	uraid_runtime_wait(&l->done);
	uraid_bdev_close(l->desc);
	for (unsigned i = 0; i < l->qd; i++)
		free(l->slots[i].buf);
}

/* Random 4 KiB reads for `secs`; returns IOPS. */
static double
measure_load(const char *name, double secs)
{
	struct load l;
	double t0;
	struct timespec ts = {0, 10000000};

	if (load_run(&l, name, false, 4096, 32) != 0)
		return 0;
	t0 = now_s();
	while (now_s() - t0 < secs)
		nanosleep(&ts, NULL);
	load_finish(&l);
	return (double)atomic_load(&l.ios) / (now_s() - t0);
}

struct scrub_wait {
	_Atomic bool done;
	struct uraid_bdev *array;
	struct uraid_array_check_result r;
};

static void
scrub_cb(void *arg, int status UNUSED, const struct uraid_array_check_result *r)
{
	struct scrub_wait *w = arg;

	w->r = *r;
	atomic_store(&w->done, true);
}

static void
scrub_start(void *arg)
{
	struct scrub_wait *w = arg;

	if (uraid_array_scrub(w->array, false, scrub_cb, w) != 0)
		atomic_store(&w->done, true);
}

int
rebuild_bench_main(int argc, char **argv)
{
	const char *config = NULL, *target = NULL, *spare = NULL;
	unsigned fail_slot = 0;
	bool with_load = false;
	struct uraid_runtime_opts ro = {.num_reactors = 1};
	struct uraid_array_info info;
	struct uraid_bdev *arr;
	struct load l;
	char err[512];
	double t0, secs, spare_mibps, rebuild_mibps, idle_iops = 0, busy_iops = 0;
	uint64_t member_bytes;
	bool distributed;
	int c, rc = 0;
	static const struct option opts[] = {
		{"json", required_argument, NULL, 'j'}, {"spare", required_argument, NULL, 's'},
		{"fail", required_argument, NULL, 'f'}, {"load", no_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},	{NULL, 0, NULL, 0}};

	while ((c = getopt_long(argc, argv, "j:T:s:f:lh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			config = optarg;
			break;
		case 'T':
			target = optarg;
			break;
		case 's':
			spare = optarg;
			break;
		case 'f':
			fail_slot = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'l':
			with_load = true;
			break;
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"usage: uraid bench-rebuild --json CONFIG -T ARRAY --spare BDEV "
				"[--fail SLOT] [--load]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (config == NULL || target == NULL || spare == NULL) {
		fprintf(stderr, "uraid bench-rebuild: --json, -T and --spare are required\n");
		return 2;
	}
	if (uraid_runtime_start(&ro) != 0)
		return 1;
	if (config_load_file(config, err, sizeof(err)) != 0) {
		fprintf(stderr, "uraid bench-rebuild: %s\n", err);
		rc = 2;
		goto out;
	}
	arr = uraid_bdev_get_by_name(target);
	if (arr == NULL || !uraid_bdev_is_array(arr) || uraid_bdev_get_by_name(spare) == NULL) {
		fprintf(stderr, "uraid bench-rebuild: no array %s or no bdev %s\n", target, spare);
		rc = 2;
		goto out;
	}
	/* Fill the array, so reads below are of real data. */
	load_run(&l, target, true, FILL_IO, 8);
	uraid_runtime_wait(&l.done);
	uraid_bdev_close(l.desc);
	for (unsigned i = 0; i < l.qd; i++)
		free(l.slots[i].buf);
	/* What the spare absorbs on its own. */
	t0 = now_s();
	load_run(&l, spare, true, FILL_IO, 8);
	uraid_runtime_wait(&l.done);
	secs = now_s() - t0;
	spare_mibps = (double)atomic_load(&l.ios) * FILL_IO / 1048576.0 / secs;
	uraid_bdev_close(l.desc);
	for (unsigned i = 0; i < l.qd; i++)
		free(l.slots[i].buf);
	if (with_load)
		idle_iops = measure_load(target, 2.0);
	uraid_array_get_info(arr, &info);
	distributed = info.level == URAID_DRAID && info.distributed_spares > 0;
	strcpy(err, "no such slot");
	if (uraid_array_fail_member(arr, fail_slot) != 0 ||
	    (!distributed && uraid_array_add_spare(arr, spare, err, sizeof(err)) != 0)) {
		fprintf(stderr, "uraid bench-rebuild: cannot start the rebuild: %s\n", err);
		rc = 1;
		goto out;
	}
	t0 = now_s();
	if (with_load)
		load_run(&l, target, false, 4096, 32);
	/* Redundant again: the spare rebuilt, or the distributed spare full. */
	do {
		struct timespec ts = {0, 1000000};

		nanosleep(&ts, NULL);
		uraid_array_get_info(arr, &info);
	} while (distributed ? strcmp(info.draid_spare[0].state, "full") != 0
			     : info.rebuild.active || info.failed_members);
	secs = now_s() - t0;
	if (with_load) {
		load_finish(&l);
		busy_iops = (double)atomic_load(&l.ios) / secs;
	}
	uraid_array_get_info(arr, &info);
	/* What a member holds: the array's data and parity over its members (draid: each
	 * member's share, its spare strips left out). */
	member_bytes = (uint64_t)uraid_bdev_get_num_blocks(arr) * uraid_bdev_get_block_size(arr) /
		       (info.data_chunks ? info.data_chunks : 1);
	if (info.level == URAID_DRAID)
		member_bytes =
			member_bytes * (info.data_chunks + info.parity_chunks) / info.num_members;
	printf("redundant again %s: %.3f s after the failure\n", target, secs);
	rebuild_mibps = (double)member_bytes / 1048576.0 / secs;
	printf("rebuild %s: %.1f MiB in %.2f s = %.1f MiB/s; spare alone absorbs %.1f MiB/s "
	       "(ratio %.2f)\n",
	       target, (double)member_bytes / 1048576.0, secs, rebuild_mibps, spare_mibps,
	       rebuild_mibps / spare_mibps);
	if (with_load)
		printf("load during rebuild: %.0f IOPS 4 KiB randread QD32, idle %.0f (ratio "
		       "%.2f)\n",
		       busy_iops, idle_iops, idle_iops > 0 ? busy_iops / idle_iops : 0);
	if (distributed) {
		/* The new member takes the slot; the strips come back from the spare. */
		if (uraid_array_add_spare(arr, spare, err, sizeof(err)) != 0) {
			fprintf(stderr, "uraid bench-rebuild: cannot add the spare: %s\n", err);
			rc = 1;
			goto out;
		}
		t0 = now_s();
		do {
			struct timespec ts = {0, 1000000};

			nanosleep(&ts, NULL);
			uraid_array_get_info(arr, &info);
		} while (strcmp(info.draid_spare[0].state, "free") != 0 || info.failed_members);
		secs = now_s() - t0;
		printf("rebalance %s: %.1f MiB back on the new member in %.3f s = %.1f MiB/s\n",
		       target, (double)member_bytes / 1048576.0, secs,
		       (double)member_bytes / 1048576.0 / secs);
	}
	{
		struct scrub_wait w = {.array = arr};
		uint64_t bytes =
			(uint64_t)uraid_bdev_get_num_blocks(arr) * uraid_bdev_get_block_size(arr);

		t0 = now_s();
		uraid_reactor_send(uraid_reactor_get(0), scrub_start, &w);
		uraid_runtime_wait(&w.done);
		secs = now_s() - t0;
		printf("scrub %s: %" PRIu64 " stripes, %" PRIu64 " mismatches, %.1f MiB/s of array "
		       "data\n",
		       target, w.r.stripes_checked, w.r.bad_stripes,
		       (double)bytes / 1048576.0 / secs);
	}
out:
	delete_all_bdevs();
	uraid_runtime_stop();
	return rc;
}
