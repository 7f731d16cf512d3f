/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uraid bench: runs a workload on bdevs from a JSON config, one job per (bdev, reactor), and
 * reports IOPS, bandwidth and latency percentiles. Its flags are bdevperf's, so SPDK command
 * lines carry over; --verify stamps every written block with its address and a generation,
 * reads it back and checks it.
 *
 * Each job owns a disjoint slice of its bdev (so jobs never race), keeps queue_depth I/Os in
 * flight, and picks offsets aligned to the I/O size, as bdevperf does. Latency is measured
 * with the TSC (calibrated against CLOCK_MONOTONIC) into a log-linear histogram.
 */
#include <getopt.h>
#include <inttypes.h>
#include <isa-l/raid.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "cli.h"
#include "server/rpc.h"
#include "uraid/array.h"
#include "uraid/bdev.h"

/* A member's area in --stripe (stripe_reference). */
#define STRIPE_AREA_BYTES (128ull << 20)
/* --copies: at most this many areas; --ahead: at most this many pieces. */
#define REF_COPIES_MAX 8u
#define REF_AHEAD_MAX  16u

enum workload { WL_READ, WL_WRITE, WL_RANDREAD, WL_RANDWRITE, WL_RW, WL_RANDRW };
static const char *const wl_names[] = {"read", "write", "randread", "randwrite", "rw", "randrw"};

struct bench_opts {
	const char *config;
	const char *target;
	unsigned queue_depth;
	uint64_t io_size;
	enum workload workload;
	int read_pct;
	double seconds;
	uint64_t core_mask;
	bool verify;
	bool json;
	bool memcpy_ref;
	unsigned copies; /* --copies N: --memcpy -w randwrite's places a piece goes to (0: 1) */
	unsigned ahead;	 /* --ahead N: ... random places started N pieces before their copy */
	unsigned xor_k;	 /* --xor K: the parity reference instead of a run (0: not asked) */
	bool stripe_ref; /* --stripe K: ... with the member copies (xor_k = K) */
	uint64_t seed;
	unsigned fill_pct; /* written sequentially before the run (percent of each target) */
	unsigned span_pct; /* I/Os only in this first share of each target (percent) */
};

/* --- time --- */

static double g_ns_per_tick = 1.0;

static void
calibrate_ticks(void)
{
	g_ns_per_tick = 1e9 / (double)ticks_hz();
}

/* --- latency histogram: 16 linear sub-buckets per power of two (~6% resolution) --- */
#define HIST_BUCKETS 1024

struct hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t n, sum, min, max;
};

static inline unsigned
hist_index(uint64_t v)
{
	unsigned msb;

	if (v < 16)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	return (msb - 3) * 16 + (unsigned)((v >> (msb - 4)) & 15);
}

static double
hist_value(unsigned idx)
{
	unsigned msb, sub;

	if (idx < 16)
		return idx;
	msb = idx / 16 + 3;
	sub = idx % 16;
	return ldexp(16 + sub + 0.5, (int)msb - 4);
}

static inline void
hist_add(struct hist *h, uint64_t v)
{
	h->count[hist_index(v)]++;
	h->n++;
	h->sum += v;
	if (v < h->min || h->n == 1)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

static void
hist_merge(struct hist *into, const struct hist *h)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->count[i] += h->count[i];
	if (h->n && (into->n == 0 || h->min < into->min))
		into->min = h->min;
	if (h->max > into->max)
		into->max = h->max;
	into->n += h->n;
	into->sum += h->sum;
}

/* Percentile in microseconds. */
static double
hist_pct_us(const struct hist *h, double pct)
{
	uint64_t want, seen = 0;

	if (h->n == 0)
		return 0;
	want = (uint64_t)ceil(pct / 100.0 * (double)h->n);
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= want && want > 0)
			return hist_value(i) * g_ns_per_tick / 1000.0;
	}
	return (double)h->max * g_ns_per_tick / 1000.0;
}

/* --- jobs --- */

enum slot_phase { PH_READ, PH_WRITE, PH_VERIFY_READ };

struct job;

struct slot {
	struct job *job;
	uint8_t *buf;
	uint64_t unit;
	uint64_t start;
	uint64_t next_start; /* a completion's clock, the start of the slot's next I/O (or 0) */
	uint32_t gen;
	enum slot_phase phase;
	STAILQ_ENTRY(slot) link;
};

/* Each job is written on every I/O by its reactor alone: a cache line boundary of its own, or
 * the end of one job (its histogram's totals) and the start of the next would bounce between
 * the reactors on every I/O. */
struct job {
	_Alignas(CACHE_LINE_BYTES) const struct bench_opts *o;
	struct uraid_bdev_desc *desc;
	const char *name;
	unsigned reactor;
	struct uraid_io_channel *ch;
	uint32_t block_size;
	uint64_t io_blocks;
	uint64_t first_block;
	uint64_t num_units;
	unsigned queue_depth;
	struct slot *slots;
	uint8_t *bufs; /* the slots' buffers, one after the other */
	struct prng rng;
	uint64_t seq_unit;
	uint64_t end_tick;
	uint64_t start_ns, end_ns;
	bool stopping;
	unsigned outstanding;
	STAILQ_HEAD(, slot) retry;
	struct uraid_poller *poller;
	uint32_t *gen; /* verify: generation written to each unit (0 = never) */
	uint8_t *busy; /* verify: unit has an I/O in flight */
	uint32_t next_gen;
	_Atomic uint64_t ios; /* read by the progress printer */
	uint64_t bytes;
	uint64_t errors;
	uint64_t miscompares;
	uint64_t verified_blocks;
	struct hist hist;
	_Atomic bool done;
};

static void slot_start(struct slot *s);

static bool
wl_is_random(enum workload w)
{
	return w == WL_RANDREAD || w == WL_RANDWRITE || w == WL_RANDRW;
}

static void
job_finish_if_idle(struct job *j)
{
	if (!j->stopping || j->outstanding != 0)
		return;
	j->end_ns = mono_ns();
	uraid_poller_unregister(&j->poller);
	uraid_put_io_channel(j->ch);
	j->ch = NULL;
	atomic_store_explicit(&j->done, true, memory_order_release);
}

/* The slot's I/O is over: start its next one, or retire the slot if the job is stopping. */
static void
slot_release(struct slot *s)
{
	struct job *j = s->job;

	if (j->busy)
		j->busy[s->unit] = 0;
	if (!j->stopping) {
		slot_start(s);
		return;
	}
	j->outstanding--;
	job_finish_if_idle(j);
}

/* A unit this run has not written: a block that carries a stamp from an earlier run with the
 * same --seed must be whole and at its own address (blocks never stamped are skipped). This
 * is how data written before a restart is checked after it. */
static void
verify_earlier(struct job *j, struct slot *s, uint64_t lba)
{
	for (uint64_t b = 0; b < j->io_blocks; b++) {
		const uint8_t *blk = s->buf + b * j->block_size;
		uint64_t magic, found_lba, found_gen, seed;

		memcpy(&magic, blk, 8);
		if (magic != STAMP_MAGIC)
			continue;
		memcpy(&seed, blk + 24, 8);
		if (seed != j->o->seed)
			continue; /* another run's data */
		memcpy(&found_gen, blk + 16, 8);
		if (stamp_check(blk, j->block_size, lba + b, found_gen, j->o->seed, &found_lba,
				&found_gen) == 0) {
			j->verified_blocks++;
			continue;
		}
		if (j->miscompares++ < 10)
			fprintf(stderr,
				"verify: %s: block %" PRIu64
				": an earlier run's block is damaged or "
				"misplaced (found block %" PRIu64 ")\n",
				j->name, lba + b, found_lba);
	}
}

static void
verify_check(struct slot *s)
{
	struct job *j = s->job;
	uint32_t gen = j->gen[s->unit];
	uint64_t lba = j->first_block + s->unit * j->io_blocks;

	if (gen == 0) {
		verify_earlier(j, s, lba);
		return;
	}
	for (uint64_t b = 0; b < j->io_blocks; b++) {
		uint64_t found_lba, found_gen;

		if (stamp_check(s->buf + b * j->block_size, j->block_size, lba + b, gen, j->o->seed,
				&found_lba, &found_gen) == 0) {
			j->verified_blocks++;
			continue;
		}
		if (j->miscompares++ < 10) {
			if (found_lba == UINT64_MAX)
				fprintf(stderr,
					"verify: %s: block %" PRIu64
					": expected generation %u, found "
					"no stamp\n",
					j->name, lba + b, gen);
			else if (found_lba == lba + b && found_gen == gen)
				fprintf(stderr,
					"verify: %s: block %" PRIu64 ": header right, contents "
					"corrupted\n",
					j->name, lba + b);
			else
				fprintf(stderr,
					"verify: %s: block %" PRIu64
					": expected generation %u, found "
					"block %" PRIu64 " generation %" PRIu64 "\n",
					j->name, lba + b, gen, found_lba, found_gen);
		}
	}
}

static void
slot_done(void *arg, int status)
{
	struct slot *s = arg;
	struct job *j = s->job;
	uint64_t now = ticks_now();

	hist_add(&j->hist, now - s->start);
	atomic_store_explicit(&j->ios, atomic_load_explicit(&j->ios, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	j->bytes += j->io_blocks * j->block_size;
	if (now >= j->end_tick)
		j->stopping = true;
	if (status != 0) {
		if (j->errors++ < 10)
			fprintf(stderr, "bench: %s: %s at block %" PRIu64 " failed: %s\n", j->name,
				s->phase == PH_WRITE ? "write" : "read",
				j->first_block + s->unit * j->io_blocks, strerror(-status));
		if (j->o->verify)
			j->stopping = true;
		slot_release(s);
		return;
	}
	if (j->o->verify) {
		if (s->phase == PH_WRITE) {
			j->gen[s->unit] = s->gen;
			s->phase = PH_VERIFY_READ;
			for (uint64_t b = 0; b < j->io_blocks; b++)
				memset(s->buf + b * j->block_size, 0, 32);
			s->start = ticks_now();
			if (uraid_bdev_read(j->desc, j->ch, s->buf,
					    j->first_block + s->unit * j->io_blocks, j->io_blocks,
					    slot_done, s) != 0)
				STAILQ_INSERT_TAIL(&j->retry, s, link);
			return;
		}
		verify_check(s);
		slot_release(s);
		return;
	}
	/* The slot's next I/O is submitted now: its start is this completion's clock (one read
	 * of the TSC per I/O, not two; the few instructions between count against us). Nothing
	 * here touches the job or the slot after slot_release: the job may end there, and the
	 * main thread frees it once it has. */
	s->next_start = now;
	slot_release(s);
}

static bool
slot_pick(struct slot *s)
{
	struct job *j = s->job;
	uint64_t u;

	if (wl_is_random(j->o->workload))
		u = prng_below(&j->rng, j->num_units);
	else
		u = j->seq_unit++ % j->num_units;
	if (j->busy) {
		/* Verify: never two I/Os on one unit at once; probe for a free one. */
		for (uint64_t i = 0; i < j->num_units && j->busy[u]; i++)
			u = (u + 1) % j->num_units;
		if (j->busy[u])
			return false;
		j->busy[u] = 1;
	}
	s->unit = u;
	return true;
}

static bool
slot_is_read(struct job *j)
{
	switch (j->o->workload) {
	case WL_READ:
	case WL_RANDREAD:
		return true;
	case WL_WRITE:
	case WL_RANDWRITE:
		return false;
	default:
		return prng_below(&j->rng, 100) < (uint64_t)j->o->read_pct;
	}
}

static void
slot_submit(struct slot *s)
{
	struct job *j = s->job;
	uint64_t lba = j->first_block + s->unit * j->io_blocks;
	int rc;

	s->start = s->next_start != 0 ? s->next_start : ticks_now();
	s->next_start = 0;
	if (s->phase == PH_WRITE)
		rc = uraid_bdev_write(j->desc, j->ch, s->buf, lba, j->io_blocks, 0, slot_done, s);
	else
		rc = uraid_bdev_read(j->desc, j->ch, s->buf, lba, j->io_blocks, slot_done, s);
	if (rc == -ENOMEM || rc == -EAGAIN) {
		STAILQ_INSERT_TAIL(&j->retry, s, link);
	} else if (rc != 0) {
		fprintf(stderr, "bench: %s: submit failed: %s\n", j->name, strerror(-rc));
		j->errors++;
		j->stopping = true;
		slot_release(s);
	}
}

static void
slot_start(struct slot *s)
{
	struct job *j = s->job;

	if (!slot_pick(s)) {
		j->outstanding--;
		job_finish_if_idle(j);
		return;
	}
	s->phase = slot_is_read(j) ? PH_READ : PH_WRITE;
	if (s->phase == PH_WRITE && j->o->verify) {
		uint64_t lba = j->first_block + s->unit * j->io_blocks;

		s->gen = ++j->next_gen;
		for (uint64_t b = 0; b < j->io_blocks; b++)
			stamp_fill(s->buf + b * j->block_size, j->block_size, lba + b, s->gen,
				   j->o->seed);
	}
	slot_submit(s);
}

static int
job_poll(void *arg)
{
	struct job *j = arg;
	struct slot *s;
	int did = 0;

	if (!j->stopping && ticks_now() >= j->end_tick)
		j->stopping = true;
	while ((s = STAILQ_FIRST(&j->retry)) != NULL) {
		STAILQ_REMOVE_HEAD(&j->retry, link);
		slot_submit(s);
		did = 1;
		if (STAILQ_FIRST(&j->retry) == s)
			break;
	}
	return did ? URAID_POLLER_BUSY : URAID_POLLER_IDLE;
}

static void
job_start(void *arg)
{
	struct job *j = arg;

	j->ch = uraid_bdev_get_io_channel(j->desc);
	j->poller = uraid_poller_register(job_poll, j, 0);
	if (j->ch == NULL || j->poller == NULL) {
		fprintf(stderr, "bench: %s: cannot get an I/O channel on reactor %u\n", j->name,
			j->reactor);
		j->errors++;
		j->stopping = true;
		uraid_poller_unregister(&j->poller);
		uraid_put_io_channel(j->ch);
		atomic_store_explicit(&j->done, true, memory_order_release);
		return;
	}
	j->start_ns = mono_ns();
	j->end_tick = ticks_now() + (uint64_t)(j->o->seconds * 1e9 / g_ns_per_tick);
	j->outstanding = j->queue_depth;
	for (unsigned i = 0; i < j->queue_depth; i++)
		slot_start(&j->slots[i]);
}

/* --- setup and report --- */

static void
bench_usage(FILE *out)
{
	fprintf(out,
		"usage: uraid bench --json CONFIG [-T BDEV] -q DEPTH -o SIZE -w WORKLOAD -t "
		"SECONDS\n"
		"                   [-M READ_PCT] [-m MASK] [--verify] [--seed N] [--output json]\n"
		"\n"
		"  --json CONFIG   SPDK-style JSON config that creates the bdevs\n"
		"  -T BDEV         run on this bdev only (default: every bdev nobody claims)\n"
		"  -q DEPTH        I/Os in flight per job (one job per bdev and reactor)\n"
		"  -o SIZE         I/O size in bytes (suffixes k, m), a multiple of the block "
		"size\n"
		"  -w WORKLOAD     read, write, randread, randwrite, rw, randrw\n"
		"  -M READ_PCT     share of reads in rw/randrw (default 50)\n"
		"  -t SECONDS      run time\n"
		"  -m, -c MASK     reactor core mask: 0x3 or [0,1] (default 0x1)\n"
		"  --verify        stamp written blocks, read them back and check them\n"
		"  --seed N        PRNG seed (default: from the clock, printed)\n"
		"  --output json   print results as JSON\n"
		"  --fill PCT      first write PCT%% of each target sequentially (not measured)\n"
		"  --span PCT      keep the I/Os in the first PCT%% of each target\n"
		"  --memcpy        instead: single-core memcpy bandwidth in -o sized copies\n"
		"                  through 1 GiB (the reference for full-stripe writes); with\n"
		"                  -w randwrite, to random places of 128 MiB areas, --copies N\n"
		"                  of them (the limit of small writes over ram members); with\n"
		"                  -w randread, from random places of one such area\n"
		"  --ahead N       with --memcpy -w randread or randwrite: start fetching the\n"
		"                  first lines of each random place N pieces before its copy\n"
		"                  (as ram members do at submit)\n"
		"  --xor K         instead: single-core XOR parity (ISA-L xor_gen) of K columns\n"
		"                  of -o/K bytes each, over -q stripes' data in turn (the\n"
		"                  encoder's limit for -o sized full-stripe writes at QD -q)\n"
		"  --stripe K      instead: the same, each column first copied to a member's\n"
		"                  area (K + 1 areas of 128 MiB) and the parity after it (the\n"
		"                  memory's limit for raid5 full-stripe writes over ram "
		"members)\n");
}

static int
parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s)
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end != '\0' || v == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

int
cli_parse_mask(const char *s, uint64_t *mask)
{
	char *end;

	*mask = 0;
	if (s[0] == '[') {
		const char *p = s + 1;

		while (*p && *p != ']') {
			unsigned long a = strtoul(p, &end, 10), b;

			if (end == p || a >= 64)
				return -EINVAL;
			b = a;
			if (*end == '-') {
				p = end + 1;
				b = strtoul(p, &end, 10);
				if (end == p || b >= 64 || b < a)
					return -EINVAL;
			}
			for (unsigned long i = a; i <= b; i++)
				*mask |= 1ull << i;
			p = end;
			if (*p == ',')
				p++;
		}
		return (*p == ']' && p[1] == '\0' && *mask) ? 0 : -EINVAL;
	}
	*mask = strtoull(s, &end, 16);
	return (end != s && *end == '\0' && *mask) ? 0 : -EINVAL;
}

struct target_list {
	const char *names[256];
	unsigned n;
};

static int
add_unclaimed(struct uraid_bdev *bdev, void *ctx)
{
	struct target_list *t = ctx;

	if (uraid_bdev_claimed_by(bdev) == NULL && t->n < ARRAY_SIZE(t->names))
		t->names[t->n++] = uraid_bdev_get_name(bdev);
	return 0;
}

static int
collect_all(struct uraid_bdev *bdev, void *ctx)
{
	struct target_list *t = ctx;

	if (t->n < ARRAY_SIZE(t->names))
		t->names[t->n++] = uraid_bdev_get_name(bdev);
	return 0;
}

static void
unregister_done(void *arg, int status UNUSED)
{
	atomic_store((_Atomic bool *)arg, true);
}

/* Wait for an unregistration to finish, however long it takes: an array still stopping
 * (writing its checkpoint, its clean superblocks) holds its members, and taking them away
 * under it would record them as failed. */
static void
wait_unregistered(const char *name, const _Atomic bool *done)
{
	struct timespec ts = {0, 1000000};

	for (unsigned ms = 1; !atomic_load(done); ms++) {
		nanosleep(&ts, NULL);
		if (ms % 5000 == 0)
			LOG_NOTE("waiting for %s to stop (%u s)", name, ms / 1000);
	}
}

/* Delete every bdev: those nobody claims first (arrays before their members, stacked bdevs
 * before their bases), pass after pass, each gone before the next; whatever is left (a claim
 * that never goes away) is then removed newest first. */
void
delete_all_bdevs(void)
{
	for (int pass = 0; pass < 2; pass++) {
		for (;;) {
			struct target_list all = {0};
			unsigned deleted = 0;

			uraid_bdev_foreach(collect_all, &all);
			if (all.n == 0)
				return;
			for (unsigned i = all.n; i-- > 0;) {
				struct uraid_bdev *bdev = uraid_bdev_get_by_name(all.names[i]);
				_Atomic bool done = false;
				char name[URAID_BDEV_NAME_MAX];

				if (bdev == NULL || (pass == 0 && uraid_bdev_claimed_by(bdev)))
					continue;
				snprintf(name, sizeof(name), "%s", all.names[i]);
				uraid_bdev_unregister(bdev, unregister_done, &done);
				wait_unregistered(name, &done);
				deleted++;
			}
			if (deleted == 0 || pass == 1)
				break;
		}
	}
}

struct totals {
	double iops, mibps;
	uint64_t errors, miscompares, verified;
	struct hist hist;
};

static json_t *
job_json(const char *name, int reactor, double secs, double iops, double mibps,
	 const struct hist *h, uint64_t errors)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(name));
	if (reactor >= 0)
		json_object_set_new(o, "reactor", json_integer(reactor));
	json_object_set_new(o, "runtime_s", json_real(secs));
	json_object_set_new(o, "iops", json_real(iops));
	json_object_set_new(o, "mibps", json_real(mibps));
	json_object_set_new(
		o, "mean_us",
		json_real(h->n ? (double)h->sum / (double)h->n * g_ns_per_tick / 1000 : 0));
	json_object_set_new(o, "p50_us", json_real(hist_pct_us(h, 50)));
	json_object_set_new(o, "p99_us", json_real(hist_pct_us(h, 99)));
	json_object_set_new(o, "p999_us", json_real(hist_pct_us(h, 99.9)));
	json_object_set_new(o, "errors", json_integer((json_int_t)errors));
	return o;
}

/* How an array target wrote: the stripe write kinds and, under ppl, the log's work. */
static void
print_array_kinds(const char *target)
{
	struct uraid_bdev *b = target ? uraid_bdev_get_by_name(target) : NULL;
	struct uraid_array_stats st;
	struct uraid_array_info info;

	if (b == NULL || !uraid_bdev_is_array(b) || uraid_array_get_stats(b, &st) != 0)
		return;
	if (st.full_stripe_writes + st.rmw_writes + st.rcw_writes + st.degraded_writes == 0)
		return;
	printf("%s: stripe writes: %" PRIu64 " full, %" PRIu64 " read-modify-write, %" PRIu64
	       " reconstruct, %" PRIu64 " degraded, %" PRIu64 " merged\n",
	       target, st.full_stripe_writes, st.rmw_writes, st.rcw_writes, st.degraded_writes,
	       st.merged_writes);
	if (st.ppl_entries)
		printf("%s: partial parity log: %" PRIu64 " entries, %" PRIu64 " blocks, %" PRIu64
		       " flush rounds, %" PRIu64 " writes waited\n",
		       target, st.ppl_entries, st.ppl_blocks, st.ppl_flushes, st.ppl_waits);
	if (uraid_array_get_info(b, &info) == 0 && info.policy == URAID_POLICY_LOG)
		printf("%s: log: %" PRIu64 " blocks written, %" PRIu64
		       " moved by the cleaner (write amplification %.2f), %" PRIu64
		       " stripes cleaned, %" PRIu64 " commits, %" PRIu64 " checkpoints, %" PRIu64
		       " of %" PRIu64 " blocks mapped\n",
		       target, info.log.user_blocks, info.log.moved_blocks,
		       info.log.user_blocks
			       ? (double)(info.log.user_blocks + info.log.moved_blocks) /
					 (double)info.log.user_blocks
			       : 0.0,
		       info.log.rows_cleaned, info.log.commits, info.log.checkpoints,
		       info.log.mapped_blocks, uraid_bdev_get_num_blocks(b));
}

static void
print_row(const char *name, const char *reactor, double iops, double mibps, const struct hist *h,
	  uint64_t errors)
{
	printf("%-16s %-7s %12.1f %10.2f %9.2f %9.2f %9.2f %9.2f %7" PRIu64 "\n", name, reactor,
	       iops, mibps, h->n ? (double)h->sum / (double)h->n * g_ns_per_tick / 1000 : 0.0,
	       hist_pct_us(h, 50), hist_pct_us(h, 99), hist_pct_us(h, 99.9), errors);
}

static int
report(struct job *jobs, unsigned njobs, const struct bench_opts *o)
{
	struct totals t = {0};
	json_t *root = NULL, *arr = NULL;

	if (o->json) {
		root = json_object();
		arr = json_array();
	} else {
		printf("\nworkload %s, queue depth %u, I/O size %" PRIu64 ", %.1f s%s\n",
		       wl_names[o->workload], o->queue_depth, o->io_size, o->seconds,
		       o->verify ? ", verify" : "");
		printf("%-16s %-7s %12s %10s %9s %9s %9s %9s %7s\n", "bdev", "reactor", "IOPS",
		       "MiB/s", "mean_us", "p50_us", "p99_us", "p99.9_us", "errors");
	}
	for (unsigned i = 0; i < njobs; i++) {
		struct job *j = &jobs[i];
		double secs = j->end_ns > j->start_ns ? (double)(j->end_ns - j->start_ns) / 1e9 : 1;
		double iops = (double)j->hist.n / secs;
		double mibps = (double)j->bytes / secs / 1048576.0;
		char rbuf[16];

		t.iops += iops;
		t.mibps += mibps;
		t.errors += j->errors;
		t.miscompares += j->miscompares;
		t.verified += j->verified_blocks;
		hist_merge(&t.hist, &j->hist);
		if (o->json) {
			json_array_append_new(arr, job_json(j->name, (int)j->reactor, secs, iops,
							    mibps, &j->hist, j->errors));
		} else {
			snprintf(rbuf, sizeof(rbuf), "%u", j->reactor);
			print_row(j->name, rbuf, iops, mibps, &j->hist, j->errors);
		}
	}
	if (o->json) {
		json_t *tot = job_json("total", -1, o->seconds, t.iops, t.mibps, &t.hist, t.errors);

		json_object_set_new(tot, "miscompares", json_integer((json_int_t)t.miscompares));
		json_object_set_new(tot, "verified_blocks", json_integer((json_int_t)t.verified));
		json_object_set_new(root, "workload", json_string(wl_names[o->workload]));
		json_object_set_new(root, "queue_depth", json_integer(o->queue_depth));
		json_object_set_new(root, "io_size", json_integer((json_int_t)o->io_size));
		json_object_set_new(root, "seed", json_integer((json_int_t)o->seed));
		json_object_set_new(root, "jobs", arr);
		json_object_set_new(root, "total", tot);
		json_dumpf(root, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(root);
	} else {
		print_row("Total", "", t.iops, t.mibps, &t.hist, t.errors);
		print_array_kinds(o->target);
		if (o->verify)
			printf("verify: %" PRIu64 " blocks checked, %" PRIu64
			       " miscompares (seed %" PRIu64 ")\n",
			       t.verified, t.miscompares, o->seed);
	}
	if (t.miscompares) {
		fprintf(stderr,
			"uraid bench: verify FAILED: %" PRIu64 " blocks did not hold what "
			"was written\n",
			t.miscompares);
		return 1;
	}
	if (t.errors) {
		fprintf(stderr, "uraid bench: %" PRIu64 " I/O errors\n", t.errors);
		return 1;
	}
	return 0;
}

static int
parse_args(int argc, char **argv, struct bench_opts *o)
{
	/* One option a line. */
	/* clang-format off */
	static const struct option longopts[] = {
		{"json", required_argument, NULL, 'j'},
		{"verify", no_argument, NULL, 'V'},
		{"seed", required_argument, NULL, 'S'},
		{"output", required_argument, NULL, 'O'},
		{"memcpy", no_argument, NULL, 'C'},
		{"xor", required_argument, NULL, 'X'},
		{"stripe", required_argument, NULL, 'Y'},
		{"copies", required_argument, NULL, 'N'},
		{"ahead", required_argument, NULL, 'A'},
		{"fill", required_argument, NULL, 'F'},
		{"span", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	/* clang-format on */
	bool have_w = false, have_q = false, have_o = false, have_t = false;
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "j:T:q:o:w:M:t:m:c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o->config = optarg;
			break;
		case 'T':
			o->target = optarg;
			break;
		case 'q': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || v == 0 || v > 65536) {
				fprintf(stderr,
					"uraid bench: -q %s: queue depth must be 1..65536\n",
					optarg);
				return -EINVAL;
			}
			o->queue_depth = (unsigned)v;
			have_q = true;
			break;
		}
		case 'o':
			if (parse_size(optarg, &o->io_size) != 0) {
				fprintf(stderr,
					"uraid bench: -o %s: not a size (e.g. 4096, 4k, 1m)\n",
					optarg);
				return -EINVAL;
			}
			have_o = true;
			break;
		case 'w': {
			size_t i;

			for (i = 0; i < ARRAY_SIZE(wl_names); i++) {
				if (strcmp(optarg, wl_names[i]) == 0)
					break;
			}
			if (strcmp(optarg, "verify") == 0) {
				/* bdevperf's -w verify: write and read back, sequentially. */
				o->workload = WL_WRITE;
				o->verify = true;
			} else if (i == ARRAY_SIZE(wl_names)) {
				fprintf(stderr,
					"uraid bench: -w %s: use read, write, randread, randwrite, "
					"rw, randrw or verify\n",
					optarg);
				return -EINVAL;
			} else {
				o->workload = (enum workload)i;
			}
			have_w = true;
			break;
		}
		case 'M': {
			long v = strtol(optarg, &end, 10);

			if (*end || v < 0 || v > 100) {
				fprintf(stderr, "uraid bench: -M %s: read share must be 0..100\n",
					optarg);
				return -EINVAL;
			}
			o->read_pct = (int)v;
			break;
		}
		case 't':
			o->seconds = strtod(optarg, &end);
			if (*end || !(o->seconds > 0 && o->seconds <= 86400)) {
				fprintf(stderr,
					"uraid bench: -t %s: seconds must be in (0, 86400]\n",
					optarg);
				return -EINVAL;
			}
			have_t = true;
			break;
		case 'm':
		case 'c':
			if (cli_parse_mask(optarg, &o->core_mask) != 0) {
				fprintf(stderr,
					"uraid bench: -%c %s: core mask must be hex (0x3) or a "
					"list ([0,1])\n",
					c, optarg);
				return -EINVAL;
			}
			break;
		case 'V':
			o->verify = true;
			break;
		case 'S':
			o->seed = strtoull(optarg, &end, 0);
			if (*end) {
				fprintf(stderr, "uraid bench: --seed %s: not a number\n", optarg);
				return -EINVAL;
			}
			break;
		case 'O':
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
				fprintf(stderr, "uraid bench: --output %s: use json or text\n",
					optarg);
				return -EINVAL;
			}
			o->json = strcmp(optarg, "json") == 0;
			break;
		case 'C':
			o->memcpy_ref = true;
			break;
		case 'X':
		case 'Y': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || v < 2 || v > 64) {
				fprintf(stderr, "uraid bench: --%s %s: columns must be 2..64\n",
					c == 'X' ? "xor" : "stripe", optarg);
				return -EINVAL;
			}
			o->xor_k = (unsigned)v;
			o->stripe_ref = c == 'Y';
			break;
		}
		case 'N': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || v < 1 || v > REF_COPIES_MAX) {
				fprintf(stderr, "uraid bench: --copies %s: 1 to %u\n", optarg,
					REF_COPIES_MAX);
				return -EINVAL;
			}
			o->copies = (unsigned)v;
			break;
		}
		case 'A': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || v < 1 || v > REF_AHEAD_MAX) {
				fprintf(stderr, "uraid bench: --ahead %s: 1 to %u\n", optarg,
					REF_AHEAD_MAX);
				return -EINVAL;
			}
			o->ahead = (unsigned)v;
			break;
		}
		case 'F':
		case 'P': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || v < 1 || v > 100) {
				fprintf(stderr, "uraid bench: --%s is a percentage, 1 to 100\n",
					c == 'F' ? "fill" : "span");
				return -EINVAL;
			}
			*(c == 'F' ? &o->fill_pct : &o->span_pct) = (unsigned)v;
			break;
		}
		case 'h':
			bench_usage(stdout);
			return 1;
		default:
			bench_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "uraid bench: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (o->copies && !(o->memcpy_ref && have_w && o->workload == WL_RANDWRITE)) {
		fprintf(stderr, "uraid bench: --copies goes with --memcpy -w randwrite\n");
		return -EINVAL;
	}
	if (o->ahead && !(o->memcpy_ref && have_w &&
			  (o->workload == WL_RANDWRITE || o->workload == WL_RANDREAD))) {
		fprintf(stderr,
			"uraid bench: --ahead goes with --memcpy -w randread or randwrite\n");
		return -EINVAL;
	}
	if (o->xor_k) {
		const char *what = o->stripe_ref ? "stripe" : "xor";
		uint64_t max_col = o->stripe_ref ? STRIPE_AREA_BYTES : 1u << 30;

		if (!have_o || !have_t) {
			fprintf(stderr, "uraid bench: --%s needs -o and -t\n", what);
			return -EINVAL;
		}
		if (o->io_size % (o->xor_k * 64u) != 0 || o->io_size / o->xor_k > max_col) {
			fprintf(stderr,
				"uraid bench: --%s %u: -o must be a multiple of %u (64 bytes a "
				"column), at most %" PRIu64 " MiB a column\n",
				what, o->xor_k, o->xor_k * 64u, max_col >> 20);
			return -EINVAL;
		}
		if (!have_q)
			o->queue_depth = 1;
		return 0;
	}
	if (o->memcpy_ref) {
		if (!have_o || !have_t) {
			fprintf(stderr, "uraid bench: --memcpy needs -o and -t\n");
			return -EINVAL;
		}
		if (have_w && o->workload != WL_WRITE && o->workload != WL_RANDWRITE &&
		    o->workload != WL_RANDREAD) {
			fprintf(stderr,
				"uraid bench: --memcpy takes -w write, randwrite or randread\n");
			return -EINVAL;
		}
		if (!have_w)
			o->workload = WL_WRITE;
		if (o->workload != WL_WRITE && o->io_size > STRIPE_AREA_BYTES) {
			fprintf(stderr, "uraid bench: --memcpy -w %s: -o is at most %llu MiB\n",
				wl_names[o->workload], STRIPE_AREA_BYTES >> 20);
			return -EINVAL;
		}
		if (!have_q)
			o->queue_depth = 1;
		return 0;
	}
	if (o->config == NULL || !have_q || !have_o || !have_w || !have_t) {
		fprintf(stderr, "uraid bench: --json, -q, -o, -w and -t are required "
				"(see 'uraid bench --help')\n");
		return -EINVAL;
	}
	return 0;
}

/* Write blocks [0, blocks) of desc in 256 KiB pieces, waiting for each (before the run). */
static int
fill(struct uraid_bdev_desc *desc, uint64_t blocks, uint32_t bs)
{
	uint64_t step = (256u << 10) / bs;
	uint8_t *buf = aligned_alloc(4096, step * bs);
	int rc = 0;

	if (buf == NULL)
		return -ENOMEM;
	memset(buf, 0xa5, step * bs);
	for (uint64_t lba = 0; lba < blocks && rc == 0; lba += step)
		rc = uraid_bdev_io_sync(desc, URAID_IO_WRITE, buf, lba,
					blocks - lba < step ? blocks - lba : step);
	free(buf);
	return rc;
}

/* Zeroed memory in whole cache lines of its own: what one reactor writes on every I/O must not
 * share a line with what another reads. */
static void *
zalloc_lines(size_t len)
{
	void *p;

	len = align_up_u64(len, CACHE_LINE_BYTES);
	p = aligned_alloc(CACHE_LINE_BYTES, len);
	if (p != NULL)
		memset(p, 0, len);
	return p;
}

#define HUGE_PAGE_BYTES (2u << 20)

/* The buffers of QD slots of LEN bytes each, one after the other, in one zeroed region that
 * the kernel may back with huge pages, as bdevperf's come from DPDK's huge pages: a 192 KiB
 * full-stripe write walks 48 pages of 4 KiB, and with 4 KiB pages the encoder's passes over
 * them miss the TLB (raid5f over null: +8-11% with huge pages). */
static uint8_t *
bufs_alloc(unsigned qd, size_t len)
{
	size_t total = align_up_u64((size_t)qd * align_up_u64(len, 4096), HUGE_PAGE_BYTES);
	uint8_t *p = aligned_alloc(HUGE_PAGE_BYTES, total);

	if (p == NULL)
		return NULL;
	madvise(p, total, MADV_HUGEPAGE); /* advice only: 4 KiB pages work too */
	memset(p, 0, total);
	return p;
}

static int
setup_jobs(struct bench_opts *o, struct target_list *targets, unsigned nreactors,
	   struct job **out_jobs, unsigned *out_n)
{
	struct job *jobs = zalloc_lines((size_t)targets->n * nreactors * sizeof(struct job));
	bool writes =
		o->verify || o->fill_pct || !(o->workload == WL_READ || o->workload == WL_RANDREAD);
	unsigned n = 0;
	int rc;

	if (jobs == NULL)
		return -ENOMEM;
	*out_jobs = jobs;
	for (unsigned t = 0; t < targets->n; t++) {
		struct uraid_bdev_desc *desc;
		struct uraid_bdev *bdev;
		uint32_t bs;
		uint64_t io_blocks, units;

		rc = uraid_bdev_open(targets->names[t], writes, NULL, NULL, &desc);
		if (rc != 0) {
			fprintf(stderr, "uraid bench: cannot open %s%s: %s\n", targets->names[t],
				writes ? " for writing" : "",
				rc == -EPERM ? "claimed by another bdev" : strerror(-rc));
			return rc;
		}
		bdev = uraid_bdev_desc_get_bdev(desc);
		bs = uraid_bdev_get_block_size(bdev);
		if (o->io_size % bs != 0) {
			fprintf(stderr,
				"uraid bench: -o %" PRIu64 " is not a multiple of %s's "
				"block size %u\n",
				o->io_size, targets->names[t], bs);
			uraid_bdev_close(desc);
			return -EINVAL;
		}
		io_blocks = o->io_size / bs;
		if (o->fill_pct &&
		    fill(desc, uraid_bdev_get_num_blocks(bdev) * o->fill_pct / 100, bs) != 0) {
			fprintf(stderr, "uraid bench: cannot fill %s\n", targets->names[t]);
			uraid_bdev_close(desc);
			return -EIO;
		}
		units = uraid_bdev_get_num_blocks(bdev) * (o->span_pct ? o->span_pct : 100) / 100 /
			io_blocks / nreactors;
		if (units == 0) {
			fprintf(stderr, "uraid bench: %s is smaller than one I/O per reactor\n",
				targets->names[t]);
			uraid_bdev_close(desc);
			return -EINVAL;
		}
		for (unsigned r = 0; r < nreactors; r++) {
			struct job *j = &jobs[n++];

			j->o = o;
			j->desc = desc;
			j->name = targets->names[t];
			j->reactor = r;
			j->block_size = bs;
			j->io_blocks = io_blocks;
			j->num_units = units;
			j->first_block = (uint64_t)r * units * io_blocks;
			j->queue_depth = o->queue_depth;
			if (o->verify && j->queue_depth > units)
				j->queue_depth = (unsigned)units;
			prng_seed(&j->rng, o->seed ^ (t * 7919u + r * 104729u));
			STAILQ_INIT(&j->retry);
			j->slots = zalloc_lines(j->queue_depth * sizeof(*j->slots));
			if (j->slots == NULL)
				return -ENOMEM;
			j->bufs = bufs_alloc(j->queue_depth, o->io_size);
			if (j->bufs == NULL)
				return -ENOMEM;
			for (unsigned q = 0; q < j->queue_depth; q++) {
				j->slots[q].job = j;
				j->slots[q].buf = j->bufs + q * align_up_u64(o->io_size, 4096);
			}
			if (o->verify) {
				j->gen = calloc(units, sizeof(*j->gen));
				j->busy = calloc(units, 1);
				if (j->gen == NULL || j->busy == NULL)
					return -ENOMEM;
			}
		}
	}
	*out_n = n;
	return 0;
}

static void
free_jobs(struct job *jobs, unsigned n, unsigned nreactors)
{
	for (unsigned i = 0; i < n; i++) {
		struct job *j = &jobs[i];

		free(j->bufs);
		free(j->slots);
		free(j->gen);
		free(j->busy);
		if (j->desc && j->reactor == nreactors - 1)
			uraid_bdev_close(j->desc);
	}
	free(jobs);
}

static void
wait_jobs(struct job *jobs, unsigned n, const struct bench_opts *o)
{
	uint64_t start = mono_ns(), last_print = start, last_ios = 0;
	struct timespec ts = {0, 10000000};
	bool progress = o->seconds > 3 && !o->json;

	for (;;) {
		unsigned done = 0;
		uint64_t ios = 0, now;

		for (unsigned i = 0; i < n; i++) {
			done += atomic_load_explicit(&jobs[i].done, memory_order_acquire);
			ios += atomic_load_explicit(&jobs[i].ios, memory_order_relaxed);
		}
		if (done == n)
			break;
		nanosleep(&ts, NULL);
		now = mono_ns();
		if (progress && now - last_print >= 1000000000u) {
			fprintf(stderr, "  [%5.1f s] %12.0f IOPS\n", (double)(now - start) / 1e9,
				(double)(ios - last_ios) * 1e9 / (double)(now - last_print));
			last_print = now;
			last_ios = ios;
		}
	}
}

/* --- references: what one core does alone for a row, nothing else --- */

/* What a reference's step works on. */
struct ref {
	const struct bench_opts *o;
	uint8_t *src, *dst; /* the pieces or the stripes' data, and where they go */
	uint8_t *parity;    /* --xor, --stripe: stays in cache */
	size_t stride, col; /* a piece's or stripe's place in src; a column's bytes */
	uint64_t off,
		limit; /* --memcpy, --stripe: the next place in dst (or an area), and the end */
	unsigned q, turn, n; /* the next of QD buffers; raid5's turn; areas */
	struct prng rng;
	/* --ahead: the random places chosen, n a piece, used ahead * n places later */
	uint8_t *places[REF_AHEAD_MAX * REF_COPIES_MAX];
	unsigned nplaces, next_place;
};

/* Run step for -t seconds, reading the clock every 64 steps; steps per second. */
static double
ref_rate(struct ref *r, void (*step)(struct ref *r))
{
	uint64_t start = mono_ns(), now, steps = 0;

	do {
		for (int i = 0; i < 64; i++)
			step(r);
		steps += 64;
		now = mono_ns();
	} while ((double)(now - start) < r->o->seconds * 1e9);
	/* Keep the copies: nothing reads dst, and a dead-store elimination could drop them. */
	__asm__ volatile("" : : "r"(r->dst) : "memory");
	return (double)steps * 1e9 / (double)(now - start);
}

static void
ref_next(struct ref *r)
{
	r->q = r->q + 1 == r->o->queue_depth ? 0 : r->q + 1;
}

static void
memcpy_step(struct ref *r)
{
	if (r->off + r->o->io_size > r->limit)
		r->off = 0;
	memcpy(r->dst + r->off, r->src + r->off, r->o->io_size);
	r->off += r->o->io_size;
}

/* The reference the parity benchmarks are held against: one core copying -o sized pieces
 * sequentially from one 1 GiB buffer to another, so caches do not help. */
static int
memcpy_reference(const struct bench_opts *o)
{
	struct ref r = {.o = o, .limit = 1ull << 30};
	double rate;

	r.src = aligned_alloc(4096, r.limit);
	r.dst = aligned_alloc(4096, r.limit);
	if (r.src == NULL || r.dst == NULL || o->io_size > r.limit) {
		fprintf(stderr, "uraid bench: --memcpy: cannot allocate 2 GiB\n");
		free(r.src);
		free(r.dst);
		return 1;
	}
	memset(r.src, 1, r.limit);
	memset(r.dst, 2, r.limit);
	/* Keep both fills: the destination is never read, and a dead-store elimination would
	 * leave its pages to fault inside the timed loop. */
	__asm__ volatile("" : : "r"(r.src), "r"(r.dst) : "memory");
	rate = ref_rate(&r, memcpy_step);
	printf("memcpy %" PRIu64 " bytes: %.1f MiB/s on one core\n", o->io_size,
	       rate * (double)o->io_size / 1048576.0);
	free(r.src);
	free(r.dst);
	return 0;
}

/* A random -o aligned place in area c; with --ahead, chosen that many pieces ago, and its
 * first lines fetched since (prefetch_head, as ram does), for writing or for reading. */
static uint8_t *
random_place(struct ref *r, unsigned c, bool write)
{
	uint64_t places = STRIPE_AREA_BYTES / r->o->io_size;
	uint8_t *p = r->dst + c * STRIPE_AREA_BYTES + prng_below(&r->rng, places) * r->o->io_size;
	uint8_t *due;

	if (r->nplaces == 0)
		return p;
	due = r->places[r->next_place];
	r->places[r->next_place] = p;
	r->next_place = r->next_place + 1 == r->nplaces ? 0 : r->next_place + 1;
	prefetch_head(p, write);
	return due;
}

static void
memcpy_random_step(struct ref *r)
{
	for (unsigned c = 0; c < r->n; c++)
		memcpy(random_place(r, c, true), r->src + (size_t)r->q * r->stride, r->o->io_size);
	ref_next(r);
}

static void
memcpy_random_read_step(struct ref *r)
{
	memcpy(r->src + (size_t)r->q * r->stride, random_place(r, 0, false), r->o->io_size);
	ref_next(r);
}

/* The limit of small random writes over ram members: one core copying -o sized pieces, from
 * QD buffers in huge pages taken in turn (a slot's), each to a random -o aligned place in
 * each of N areas of 128 MiB (--copies: a mirror's N members), which is what the ram members
 * do with the writes and nothing else. Most of it is waiting for the lines a piece lands on,
 * read from memory before they are written; --ahead starts that wait early, as ram does at
 * submit. -w randread: the same from random places of one area into the buffers (the limit
 * of small reads). */
static int
memcpy_random_reference(const struct bench_opts *o)
{
	bool write = o->workload == WL_RANDWRITE;
	struct ref r = {.o = o, .n = o->copies ? o->copies : 1};
	double rate;

	r.stride = align_up_u64(o->io_size, 4096);
	r.src = bufs_alloc(o->queue_depth, r.stride);
	r.dst = bufs_alloc(r.n, STRIPE_AREA_BYTES);
	if (r.src == NULL || r.dst == NULL) {
		fprintf(stderr, "uraid bench: --memcpy: cannot allocate %u areas of 128 MiB\n",
			r.n);
		free(r.src);
		free(r.dst);
		return 1;
	}
	prng_seed(&r.rng, o->seed ? o->seed : mono_ns());
	r.nplaces = o->ahead * r.n;
	for (unsigned i = 0; i < r.nplaces; i++)
		r.places[i] = r.dst;
	rate = ref_rate(&r, write ? memcpy_random_step : memcpy_random_read_step);
	if (write)
		printf("memcpy %" PRIu64 " bytes to random places, %u cop%s", o->io_size, r.n,
		       r.n == 1 ? "y" : "ies");
	else
		printf("memcpy %" PRIu64 " bytes from random places", o->io_size);
	if (o->ahead)
		printf(", %u lines started %u piece%s ahead", PREFETCH_HEAD_LINES, o->ahead,
		       o->ahead == 1 ? "" : "s");
	printf(": %.1f pieces/s, %.1f MiB/s on one core\n", rate,
	       rate * (double)o->io_size / 1048576.0);
	free(r.src);
	free(r.dst);
	return 0;
}

/* A stripe's columns, the parity last. */
static void
ref_columns(struct ref *r, void **v)
{
	uint8_t *b = r->src + (size_t)r->q * r->stride;

	for (unsigned c = 0; c < r->o->xor_k; c++)
		v[c] = b + c * r->col;
	v[r->o->xor_k] = r->parity;
}

static void
xor_step(struct ref *r)
{
	void *v[65];

	ref_columns(r, v);
	xor_gen((int)r->o->xor_k + 1, (int)r->col, v);
	ref_next(r);
}

static void
stripe_step(struct ref *r)
{
	unsigned k = r->o->xor_k;
	void *v[65];

	if (r->off + r->col > STRIPE_AREA_BYTES)
		r->off = 0;
	ref_columns(r, v);
	for (unsigned c = 0; c < k; c++)
		memcpy(r->dst + (size_t)((c + r->turn) % r->n) * STRIPE_AREA_BYTES + r->off, v[c],
		       r->col);
	xor_gen((int)k + 1, (int)r->col, v);
	memcpy(r->dst + (size_t)((k + r->turn) % r->n) * STRIPE_AREA_BYTES + r->off, r->parity,
	       r->col);
	r->off += r->col;
	r->turn = r->turn + 1 == r->n ? 0 : r->turn + 1;
	ref_next(r);
}

/* The limit of a full-stripe write whose members cost nothing (null members), --xor: one
 * core encoding XOR parity over K columns of -o/K bytes, the data of QD stripes (in huge
 * pages like the benchmark's) taken in turn as a write at that queue depth takes them, into
 * one parity buffer that stays in cache (the best case for the parity: an array's encoder
 * reuses a few pool buffers).
 *
 * And over ram members, --stripe: the same with its memory work, each data column first
 * copied to a member's area (K + 1 areas of STRIPE_AREA_BYTES, as the side by side's
 * members, filled sequentially), then the parity encoded and copied to the last member, the
 * columns' places turning by one each stripe as raid5's do. The order is the array's
 * (src/core/stripe.c: the data columns go out before the parity is encoded). */
static int
parity_reference(const struct bench_opts *o)
{
	const char *name = o->stripe_ref ? "stripe" : "xor";
	struct ref r = {.o = o, .n = o->xor_k + 1};
	double rate, mibps;
	int rc = 1;

	r.col = o->io_size / o->xor_k;
	r.stride = align_up_u64(o->io_size, 4096);
	r.src = bufs_alloc(o->queue_depth, r.stride);
	r.parity = bufs_alloc(1, r.col);
	if (o->stripe_ref)
		r.dst = bufs_alloc(r.n, STRIPE_AREA_BYTES);
	if (r.src == NULL || r.parity == NULL || (o->stripe_ref && r.dst == NULL)) {
		fprintf(stderr, "uraid bench: --%s: cannot allocate %u stripes%s\n", name,
			o->queue_depth, o->stripe_ref ? " and their areas" : "");
		goto out;
	}
	rate = ref_rate(&r, o->stripe_ref ? stripe_step : xor_step);
	mibps = rate * (double)o->io_size / 1048576.0;
	if (o->json)
		printf("{\"%s\":{\"columns\":%u,\"column_bytes\":%zu,\"stripes_per_s\":%.1f,"
		       "\"data_mib_s\":%.1f}}\n",
		       name, o->xor_k, r.col, rate, mibps);
	else if (o->stripe_ref)
		printf("stripe %u x %zu bytes and their parity to %u areas, %u stripes in turn: "
		       "%.1f stripes/s, %.1f MiB/s of data on one core\n",
		       o->xor_k, r.col, r.n, o->queue_depth, rate, mibps);
	else
		printf("xor %u x %zu bytes into one, %u stripes in turn: %.1f stripes/s, "
		       "%.1f MiB/s of data on one core\n",
		       o->xor_k, r.col, o->queue_depth, rate, mibps);
	rc = 0;
out:
	free(r.src);
	free(r.parity);
	free(r.dst);
	return rc;
}

int
bench_main(int argc, char **argv)
{
	struct bench_opts o = {.read_pct = 50, .core_mask = 1};
	struct uraid_runtime_opts ro = {0};
	struct target_list targets = {0};
	struct job *jobs = NULL;
	unsigned njobs = 0, nreactors = 0;
	int cpus[URAID_MAX_REACTORS];
	char err[512];
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (o.memcpy_ref)
		return o.workload == WL_WRITE ? memcpy_reference(&o) : memcpy_random_reference(&o);
	if (o.xor_k)
		return parity_reference(&o);
	if (o.seed == 0)
		o.seed = mono_ns() ^ (uint64_t)getpid() << 32;
	for (unsigned c = 0; c < 64; c++) {
		if (o.core_mask & (1ull << c)) {
			if (c >= (unsigned)sysconf(_SC_NPROCESSORS_ONLN)) {
				fprintf(stderr,
					"uraid bench: core %u is not online (this machine has "
					"%ld)\n",
					c, sysconf(_SC_NPROCESSORS_ONLN));
				return 2;
			}
			cpus[nreactors++] = (int)c;
		}
	}
	calibrate_ticks();
	ro.num_reactors = nreactors;
	ro.cpus = cpus;
	rc = uraid_runtime_start(&ro);
	if (rc != 0) {
		fprintf(stderr, "uraid bench: cannot start reactors: %s\n", strerror(-rc));
		return 1;
	}
	rc = config_load_file(o.config, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "uraid bench: %s\n", err);
		rc = 2;
		goto out;
	}
	if (o.target != NULL) {
		if (uraid_bdev_get_by_name(o.target) == NULL) {
			fprintf(stderr, "uraid bench: -T %s: no such bdev in %s\n", o.target,
				o.config);
			rc = 2;
			goto out;
		}
		targets.names[targets.n++] = o.target;
	} else {
		uraid_bdev_foreach(add_unclaimed, &targets);
		if (targets.n == 0) {
			fprintf(stderr, "uraid bench: %s creates no bdev to run on\n", o.config);
			rc = 2;
			goto out;
		}
	}
	rc = setup_jobs(&o, &targets, nreactors, &jobs, &njobs);
	if (rc != 0) {
		if (rc == -ENOMEM)
			fprintf(stderr, "uraid bench: out of memory setting up jobs\n");
		rc = 2;
		goto out_jobs;
	}
	for (unsigned i = 0; i < njobs; i++)
		uraid_reactor_send(uraid_reactor_get(jobs[i].reactor), job_start, &jobs[i]);
	wait_jobs(jobs, njobs, &o);
	rc = report(jobs, njobs, &o);
out_jobs:
	free_jobs(jobs, njobs, nreactors);
out:
	delete_all_bdevs();
	uraid_runtime_stop();
	return rc;
}
