/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uraid torture: crash an array again and again and check what survives.
 *
 * Everything runs in this process on manual-poll reactors driven from one thread, over
 * members that are fault bdevs with a volatile write cache on ram bdevs, so a seed replays
 * exactly. A cycle:
 *
 *   1. a random workload (writes of random size and alignment, some with FUA, zeroes,
 *      flushes, reads checked against the model), up to a random point, then power is cut on
 *      every device at once: each unflushed write lands, is lost or is torn. With load
 *      failures (the default under ppl and on mirrors), in half the cycles a random member
 *      fails during the load, and in half of those a spare is added and rebuilt while the
 *      load goes on, in a quarter the member itself comes back (under a bitmap it catches
 *      up on the regions written meanwhile), so the cut finds the array degraded or
 *      rebuilding. A member left failed comes back at assembly (and catches up) if it can. With
 * --crash-point the cut comes instead when the load passes that named point (common.h) for a random
 *      count-th time, from inside the operation, and members fail in every cycle;
 *   2. the array is dropped (nothing more reaches the members) and power restored; the
 *      members are examined and the array assembled, running its recovery; resync and
 *      rebuild are waited for (a degraded array is checked first as it is, then a spare is
 *      rebuilt and it is checked again);
 *   3. every block is read and must hold either its durable contents (acknowledged before a
 *      completed flush, or written with FUA; under the journal, acknowledged at all) or a
 *      version written since; never anything else,
 *      except a block not durable in rows the ppl recovery reported it could not mend (a
 *      member failed as the power went while the block was being written: what it held is
 *      nowhere else); such a block is written afresh;
 *   4. a parity check must find no bad stripe;
 *   5. a random member is failed and every block read again: it must not change (this is
 *      where the write hole shows: a stripe whose parity disagrees with its data rebuilds
 *      garbage);
 *   6. a new member is added as a spare and rebuilt.
 *
 * With --no-cut there is no power cut: the load runs to its end and is drained, and every
 * block must then hold exactly the last version written to it, degraded, rebuilt and with a
 * member lost again, and the parity must check (what policy none, whose hole is only a cut's,
 * promises; and a check of the data path alone under member failures on every policy).
 *
 * The model keeps, per block, its durable version and the versions written since (each block
 * of a write holds its address and the write's version, so a block read back names the version
 * it holds). The exit status is 0 when no cycle broke the rules (with --expect-hole: when one
 * did, which is what policy none is for).
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bdev/bdev_priv.h"
#include "cli.h"
#include "core/core.h"
#include "uraid/array.h"

#define REACTORS    2
#define BS	    512
#define MAX_QD	    32
#define MAX_MEMBERS 16
/* Wall time after which I/Os not back mean the engine lost them (a cycle takes milliseconds). */
#define HANG_NS (60 * 1000000000ull)

struct bver {
	uint32_t v;
	uint32_t ack; /* 0: in flight; else the acknowledgement's sequence number */
};

struct block {
	uint32_t durable, cur;
	uint16_t n, cap;
	struct bver *c; /* versions since durable, oldest first */
};

struct torture {
	/* options */
	const char *level;
	unsigned n, k, m;
	unsigned spares; /* draid: distributed spares */
	enum uraid_consistency_policy policy;
	enum uraid_consistency_policy policy_used; /* the array's (the level's default resolved) */
	unsigned cycles, ops;
	uint64_t seconds; /* run for this long instead of a number of cycles */
	uint64_t seed;
	uint64_t member_kb;
	bool expect_hole, verbose;
	bool ack_durable;  /* journal: an acknowledged write is durable */
	bool write_back;   /* journal in write-back mode */
	bool journal_dev;  /* journal on a device of its own (a fault member too) */
	bool zoned;	   /* members are zoned bdevs over the fault bdevs (policy log) */
	int load_failures; /* -1: where the policy can keep the rules (ppl, mirrors) */
	int crash_at;	   /* a named crash point to cut the power at, or -1 */
	bool no_cut;	   /* no power cuts: every write answered must read back exactly */

	struct prng rng;
	uint64_t blocks, stripe_blocks;
	struct block *b;
	uint8_t *busy;
	uint32_t next_version, ack_seq;
	struct uraid_bdev_desc *desc;
	struct uraid_io_channel *ch[REACTORS];
	unsigned inflight;
	bool cutting;
	unsigned next_member; /* names tm<i>/tf<i> */
	char members[MAX_MEMBERS][16];
	char journal[16];
	uint64_t violations, io_errors, cycles_done, reads_checked, blocks_checked;
	uint64_t cut_records, cut_torn, cut_dropped;
	uint64_t hole_blocks;		 /* not vouched for by the log recovery, as it reported */
	uint64_t caught_up, passed_over; /* units of members come back: rebuilt, skipped */
	uint64_t claimed;		 /* writes run by a reactor not owning their stripe */
	bool point_hit;			 /* the crash point was reached in this cycle */
	uint64_t point_cuts;		 /* cycles cut at the crash point */
};

static struct torture *g_t;

/* --- block contents --- */

static uint64_t
mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void
fill_block(uint8_t *p, uint64_t lba, uint32_t v)
{
	uint64_t *w = (uint64_t *)p;

	if (v == 0) {
		memset(p, 0, BS);
		return;
	}
	w[0] = lba;
	w[1] = v;
	for (unsigned i = 2; i < BS / 8; i++)
		w[i] = mix(lba << 32 ^ (uint64_t)v << 8 ^ i);
}

/* The version block lba holds, or -1 for anything that is no version of it. */
static int64_t
identify(const uint8_t *p, uint64_t lba)
{
	const uint64_t *w = (const uint64_t *)p;
	uint64_t v = w[1];

	if (w[0] == 0 && w[1] == 0) {
		for (unsigned i = 2; i < BS / 8; i++) {
			if (w[i] != 0)
				return -1;
		}
		return 0;
	}
	if (w[0] != lba || v == 0 || v > UINT32_MAX)
		return -1;
	for (unsigned i = 2; i < BS / 8; i++) {
		if (w[i] != mix(lba << 32 ^ v << 8 ^ i))
			return -1;
	}
	return (int64_t)v;
}

/* --- the model --- */

static void
cand_add(struct block *b, uint32_t v)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 4;
		b->c = realloc(b->c, b->cap * sizeof(*b->c));
	}
	b->c[b->n++] = (struct bver){v, 0};
}

/* Versions up to and including index i are no longer possible: c[i] is durable. */
static void
cand_settle(struct block *b, unsigned i)
{
	b->durable = b->c[i].v;
	memmove(b->c, b->c + i + 1, (b->n - i - 1) * sizeof(*b->c));
	b->n = (uint16_t)(b->n - i - 1);
}

static bool
allowed(const struct block *b, uint32_t v)
{
	if (v == b->durable)
		return true;
	for (unsigned i = 0; i < b->n; i++) {
		if (b->c[i].v == v)
			return true;
	}
	return false;
}

static void
model_reset(struct torture *t, uint64_t lba, uint32_t v)
{
	t->b[lba].durable = t->b[lba].cur = v;
	t->b[lba].n = 0;
}

static void violation(struct torture *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
violation(struct torture *t, const char *fmt, ...)
{
	va_list ap;

	if (t->violations++ < 8) {
		fprintf(stderr, "torture: cycle %" PRIu64 ": ", t->cycles_done + 1);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
}

/* The command that replays this run up to and including cycle `cycles`. */
static void
print_replay(const struct torture *t, uint64_t cycles)
{
	char chunks[96] = "";

	if (t->k != 0)
		snprintf(chunks, sizeof(chunks), " --data-chunks %u --parity-chunks %u%s", t->k,
			 t->m, strcmp(t->level, "draid") == 0 ? " --distributed-spares " : "");
	if (strcmp(t->level, "draid") == 0)
		snprintf(chunks + strlen(chunks), sizeof(chunks) - strlen(chunks), "%u", t->spares);
	printf("torture: replay with: uraid torture --level %s --members %u%s --policy %s "
	       "--ops %u --member-kb %" PRIu64 " --seed %" PRIu64 " --cycles %" PRIu64
	       "%s%s%s%s%s%s%s%s\n",
	       t->level, t->n, chunks, uraid_policy_name(t->policy_used), t->ops, t->member_kb,
	       t->seed, cycles, t->load_failures ? " --load-failures" : " --no-load-failures",
	       t->ack_durable ? " --ack-durable" : "", t->crash_at >= 0 ? " --crash-point " : "",
	       t->crash_at >= 0 ? crash_point_name((enum crash_point)t->crash_at) : "",
	       t->write_back ? " --write-back" : "", t->journal_dev ? " --journal-bdev" : "",
	       t->zoned ? " --zoned" : "", t->no_cut ? " --no-cut" : "");
	fflush(stdout);
}

static void fatal(struct torture *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* The run cannot go on (the engine hung or refused to start again): a broken rule too, with
 * the command that replays it. */
static void
fatal(struct torture *t, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "torture: cycle %" PRIu64 ": ", t->cycles_done + 1);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	printf("cycle %" PRIu64 ": RULES BROKEN\n", t->cycles_done + 1);
	print_replay(t, t->cycles_done + 1);
	exit(1);
}

/* --- I/O --- */

enum op_type { OP_READ, OP_WRITE, OP_ZEROES, OP_FLUSH };

struct op {
	struct torture *t;
	enum op_type type;
	uint64_t lba, num;
	uint32_t v;
	uint32_t snap; /* flush: acknowledgements before it */
	bool fua;
	unsigned reactor;
	uint8_t *buf;
};

static void
op_done(void *arg, int status)
{
	struct op *op = arg;
	struct torture *t = op->t;

	t->inflight--;
	if (status != 0) {
		if (!t->cutting) {
			t->io_errors++;
			violation(t, "%s at %" PRIu64 "+%" PRIu64 " failed: %s",
				  op->type == OP_READ	 ? "read"
				  : op->type == OP_FLUSH ? "flush"
							 : "write",
				  op->lba, op->num, strerror(-status));
		}
	} else if (op->type == OP_WRITE || op->type == OP_ZEROES) {
		uint32_t seq = ++t->ack_seq;

		for (uint64_t i = 0; i < op->num; i++) {
			struct block *b = &t->b[op->lba + i];

			for (unsigned c = b->n; c-- > 0;) {
				if (b->c[c].v != op->v || b->c[c].ack != 0)
					continue;
				b->c[c].ack = seq;
				if (op->fua || t->ack_durable)
					cand_settle(b, c);
				break;
			}
			b->cur = op->v;
		}
	} else if (op->type == OP_FLUSH) {
		for (uint64_t l = 0; l < t->blocks; l++) {
			struct block *b = &t->b[l];

			for (unsigned c = b->n; c-- > 0;) {
				if (b->c[c].ack != 0 && b->c[c].ack <= op->snap) {
					cand_settle(b, c);
					break;
				}
			}
		}
	} else {
		for (uint64_t i = 0; i < op->num; i++) {
			int64_t got = identify(op->buf + i * BS, op->lba + i);

			t->blocks_checked++;
			if (got != (int64_t)t->b[op->lba + i].cur)
				violation(t,
					  "read of block %" PRIu64 " gave version %" PRId64
					  ", expected %u",
					  op->lba + i, got, t->b[op->lba + i].cur);
		}
		t->reads_checked++;
	}
	if (op->type != OP_FLUSH)
		memset(t->busy + op->lba, 0, op->num);
	free(op->buf);
	free(op);
}

static void
op_submit_msg(void *arg)
{
	struct op *op = arg;
	struct torture *t = op->t;
	struct uraid_io_channel *ch = t->ch[op->reactor];
	int rc = -EINVAL;

	switch (op->type) {
	case OP_READ:
		rc = uraid_bdev_read(t->desc, ch, op->buf, op->lba, op->num, op_done, op);
		break;
	case OP_WRITE:
		rc = uraid_bdev_write(t->desc, ch, op->buf, op->lba, op->num,
				      op->fua ? URAID_IO_FUA : 0, op_done, op);
		break;
	case OP_ZEROES:
		rc = uraid_bdev_write_zeroes(t->desc, ch, op->lba, op->num, op_done, op);
		break;
	case OP_FLUSH:
		rc = uraid_bdev_flush(t->desc, ch, op_done, op);
		break;
	}
	if (rc != 0) {
		t->inflight++; /* op_done takes it back */
		op_done(op, rc);
		t->inflight--;
	}
}

static void
submit(struct torture *t, struct op *op)
{
	t->inflight++;
	uraid_reactor_send(uraid_reactor_get(op->reactor), op_submit_msg, op);
}

/* One random operation on a free range; false if the range chosen was busy. */
static bool
issue_random(struct torture *t)
{
	uint64_t r = prng_below(&t->rng, 100), max = 2 * t->stripe_blocks + 3;
	struct op *op = calloc(1, sizeof(*op));

	op->t = t;
	op->reactor = (unsigned)prng_below(&t->rng, REACTORS);
	op->type = r < 60 ? OP_WRITE : r < 85 ? OP_READ : r < 92 ? OP_ZEROES : OP_FLUSH;
	if (op->type == OP_FLUSH) {
		op->snap = t->ack_seq;
		submit(t, op);
		return true;
	}
	op->num = 1 + prng_below(&t->rng, max);
	op->lba = prng_below(&t->rng, t->blocks - op->num + 1);
	for (uint64_t i = 0; i < op->num; i++) {
		if (t->busy[op->lba + i]) {
			free(op);
			return false;
		}
	}
	memset(t->busy + op->lba, 1, op->num);
	op->buf = aligned_alloc(4096, align_up_u64(op->num * BS, 4096));
	if (op->type == OP_WRITE) {
		op->v = ++t->next_version;
		op->fua = prng_below(&t->rng, 8) == 0;
		for (uint64_t i = 0; i < op->num; i++)
			fill_block(op->buf + i * BS, op->lba + i, op->v);
	}
	if (op->type == OP_WRITE || op->type == OP_ZEROES) {
		for (uint64_t i = 0; i < op->num; i++)
			cand_add(&t->b[op->lba + i], op->v);
	}
	submit(t, op);
	return true;
}

static void
poll_idle(void)
{
	uraid_runtime_poll_until_idle(1000);
}

/* Poll until every I/O is back, for at most a minute of wall time (an I/O the engine
 * never completes is a broken rule, not a hang of the harness). */
static void
drain(struct torture *t)
{
	uint64_t deadline_ns = mono_ns() + HANG_NS;

	for (unsigned i = 0; t->inflight > 0; i++) {
		uraid_runtime_poll_until_idle(1);
		if ((i & 1023) == 0 && mono_ns() > deadline_ns)
			break;
	}
}

/* --- bdevs --- */

static void
done_flag(void *arg, int status UNUSED)
{
	atomic_store((_Atomic bool *)arg, true);
}

static int
delete_bdev(const char *name)
{
	struct uraid_bdev *bdev = uraid_bdev_get_by_name(name);
	_Atomic bool done = false;

	if (bdev == NULL)
		return -ENODEV;
	uraid_bdev_unregister(bdev, done_flag, (void *)&done);
	for (int i = 0; i < 100000 && !atomic_load(&done); i++) {
		uraid_runtime_advance_us(100);
		uraid_runtime_poll_until_idle(10);
	}
	return atomic_load(&done) ? 0 : -ETIMEDOUT;
}

/* Zoned members: zones of 8 strips (6 writable) over fault bdev tf<i>, the first 1 MiB
 * conventional (superblock and stripe tree), at most 3 open: a log array keeps 2 groups
 * open and one zone for a rebuild. Recreated after every cut, from the zone table the
 * fault bdev kept (write pointers as of the last flush, reset or finish). */
static void
zoned_member(unsigned i)
{
	char f[16], z[16], err[256];
	uint64_t strip = 4096 / BS; /* create_array's 4 KiB */
	struct zoned_bdev_opts zo = {.zone_capacity = 6 * strip,
				     .zone_size = 8 * strip,
				     .optimal_open_zones = 1,
				     .max_open_zones = 3,
				     .conventional_zones = (1u << 20) / BS / (8 * strip)};
	struct uraid_bdev *b;

	snprintf(f, sizeof(f), "tf%u", i);
	snprintf(z, sizeof(z), "tz%u", i);
	zo.name = z;
	zo.base_bdev = f;
	/* (Creating it runs the reactors: a crash point may cut the power meanwhile, and then
	 * it is created when the power is back.) */
	if (zoned_bdev_create(&zo, &b, err, sizeof(err)) != 0 && !g_t->cutting)
		fatal(g_t, "cannot create zoned member %s: %s", z, err);
}

/* A new member: ram bdev tm<i> under fault bdev tf<i> (under zoned bdev tz<i> with
 * --zoned); returns its name. */
static const char *
new_member(struct torture *t, char *name, size_t len)
{
	struct fault_bdev_opts fo = {0};
	struct uraid_bdev *b;
	char ram[16];
	unsigned i = t->next_member++;

	snprintf(ram, sizeof(ram), "tm%u", i);
	snprintf(name, len, "tf%u", i);
	fo.name = name;
	fo.base_name = ram;
	fo.volatile_cache = true;
	fo.seed = mix(t->seed ^ i);
	if (ram_bdev_create(ram, t->member_kb * 1024 / BS, BS, NULL, &b) != 0 ||
	    fault_bdev_create(&fo, &b) != 0) {
		fprintf(stderr, "torture: cannot create member %s\n", name);
		exit(1);
	}
	if (t->zoned) {
		zoned_member(i);
		snprintf(name, len, "tz%u", i);
	}
	return name;
}

/* Delete members no array holds any more. */
static void
drop_free_members(struct torture *t)
{
	for (unsigned i = 0; i < t->next_member; i++) {
		char f[16], ram[16], z[16];
		struct uraid_bdev *b;

		snprintf(f, sizeof(f), "tf%u", i);
		snprintf(ram, sizeof(ram), "tm%u", i);
		snprintf(z, sizeof(z), "tz%u", i);
		b = uraid_bdev_get_by_name(t->zoned ? z : f);
		if (b == NULL || uraid_bdev_claimed_by(b) != NULL)
			continue;
		if (t->zoned)
			delete_bdev(z);
		delete_bdev(f);
		delete_bdev(ram);
	}
}

static void
get_ch_msg(void *arg)
{
	struct torture *t = arg;

	t->ch[uraid_reactor_index(uraid_reactor_self())] = uraid_bdev_get_io_channel(t->desc);
}

static void
put_ch_msg(void *arg)
{
	struct torture *t = arg;
	unsigned r = uraid_reactor_index(uraid_reactor_self());

	uraid_put_io_channel(t->ch[r]);
	t->ch[r] = NULL;
}

static int
array_open(struct torture *t)
{
	if (uraid_bdev_open("t", true, NULL, NULL, &t->desc) != 0)
		return -ENODEV;
	for (unsigned r = 0; r < REACTORS; r++)
		uraid_reactor_send(uraid_reactor_get(r), get_ch_msg, t);
	poll_idle();
	return t->ch[0] && t->ch[1] ? 0 : -ENOMEM;
}

static void
array_close(struct torture *t)
{
	for (unsigned r = 0; r < REACTORS; r++)
		uraid_reactor_send(uraid_reactor_get(r), put_ch_msg, t);
	poll_idle();
	uraid_bdev_close(t->desc);
	t->desc = NULL;
}

static struct uraid_array_info
info_now(void)
{
	struct uraid_array_info info;

	memset(&info, 0, sizeof(info));
	uraid_array_get_info(uraid_bdev_get_by_name("t"), &info);
	return info;
}

/* Let resync and rebuild finish (the clock moves, so rate limits and sweeps run). */
static bool
settle(void)
{
	for (int i = 0; i < 200000; i++) {
		struct uraid_array_info info = info_now();

		if (!info.rebuild.active && info.bitmap.resync_left == 0 &&
		    info.failed_members == 0)
			return true;
		uraid_runtime_advance_us(1000);
		uraid_runtime_poll_until_idle(10);
	}
	return false;
}

/* --- the checks --- */

struct read_ctx {
	_Atomic bool done;
	int status;
};

static void
read_done(void *arg, int status)
{
	struct read_ctx *rc = arg;

	rc->status = status;
	atomic_store(&rc->done, true);
}

struct read_req {
	struct torture *t;
	uint8_t *buf;
	uint64_t lba, num;
	struct read_ctx *ctx;
};

static void
read_msg(void *arg)
{
	struct read_req *rq = arg;
	int rc = uraid_bdev_read(rq->t->desc, rq->t->ch[0], rq->buf, rq->lba, rq->num, read_done,
				 rq->ctx);

	if (rc != 0)
		read_done(rq->ctx, rc);
}

/* The log recovery reports the rows it could not mend: an update was writing a column whose
 * member is missing now (it failed as the power went), and what it wrote is nowhere else. */
static bool
in_hole(uint64_t lba)
{
	const struct ppl_hole *h;
	size_t n = raid_ppl_holes(uraid_bdev_get_by_name("t"), &h);

	for (size_t i = 0; i < n; i++) {
		if (lba >= h[i].lba && lba < h[i].lba + h[i].blocks)
			return true;
	}
	return false;
}

/* Give a block a known state again: a new version, with FUA. */
static void
rewrite_block(struct torture *t, uint64_t lba)
{
	struct op *op = calloc(1, sizeof(*op));

	op->t = t;
	op->type = OP_WRITE;
	op->lba = lba;
	op->num = 1;
	op->v = ++t->next_version;
	op->fua = true;
	op->buf = aligned_alloc(4096, 4096);
	fill_block(op->buf, lba, op->v);
	cand_add(&t->b[lba], op->v);
	t->busy[lba] = 1;
	submit(t, op);
	drain(t);
}

/* Read the whole array. after_crash: each block must be allowed by the model, and becomes its
 * new durable state; otherwise each must be what it was (cur). */
static void
verify_all(struct torture *t, bool after_crash, const char *when)
{
	uint64_t chunk = 64, before = t->violations, nredo = 0;
	uint8_t *buf = aligned_alloc(4096, chunk * BS);
	uint64_t *redo = NULL;

	for (uint64_t lba = 0; lba < t->blocks; lba += chunk) {
		uint64_t num = lba + chunk > t->blocks ? t->blocks - lba : chunk;
		struct read_ctx ctx = {false, 0};
		struct read_req rq = {t, buf, lba, num, &ctx};

		uraid_reactor_send(uraid_reactor_get(0), read_msg, &rq);
		while (!atomic_load(&ctx.done))
			uraid_runtime_poll_until_idle(10);
		if (ctx.status != 0) {
			violation(t, "%s: read at %" PRIu64 " failed: %s", when, lba,
				  strerror(-ctx.status));
			continue;
		}
		for (uint64_t i = 0; i < num; i++) {
			struct block *b = &t->b[lba + i];
			int64_t got = identify(buf + i * BS, lba + i);

			t->blocks_checked++;
			if (after_crash) {
				bool ok = got >= 0 && allowed(b, (uint32_t)got);

				if (!ok && b->n > 0 && in_hole(lba + i)) {
					/* Not durable, and in rows the recovery said it could
					 * not mend: allowed, and written afresh below. */
					t->hole_blocks++;
					redo = realloc(redo, (nredo + 1) * sizeof(*redo));
					redo[nredo++] = lba + i;
					model_reset(t, lba + i, b->durable);
				} else if (!ok) {
					violation(t,
						  "%s: block %" PRIu64 " holds %s%" PRId64
						  " (durable %u, %u newer versions possible)",
						  when, lba + i, got < 0 ? "garbage " : "version ",
						  got, b->durable, b->n);
					got = got < 0 ? 0 : got;
				}
				model_reset(t, lba + i, (uint32_t)got);
			} else if (got != (int64_t)b->cur) {
				violation(t, "%s: block %" PRIu64 " holds %" PRId64 ", expected %u",
					  when, lba + i, got, b->cur);
			}
		}
	}
	free(buf);
	for (uint64_t i = 0; i < nredo; i++)
		rewrite_block(t, redo[i]);
	free(redo);
	if (t->verbose && t->violations == before)
		printf("  %s: %" PRIu64 " blocks as the model allows%s\n", when, t->blocks,
		       nredo ? " (some in rows the log recovery reported)" : "");
}

struct check_ctx {
	_Atomic bool done;
	int status;
	struct uraid_array_check_result r;
};

static void
check_done(void *arg, int status, const struct uraid_array_check_result *r)
{
	struct check_ctx *c = arg;

	c->status = status;
	c->r = *r;
	atomic_store(&c->done, true);
}

static void
check_msg(void *arg)
{
	if (uraid_array_check(uraid_bdev_get_by_name("t"), check_done, arg) != 0)
		check_done(arg, -EINVAL, &((struct check_ctx *)arg)->r);
}

static void
parity_check(struct torture *t)
{
	struct check_ctx c = {0};

	uraid_reactor_send(uraid_reactor_get(0), check_msg, &c);
	while (!atomic_load(&c.done))
		uraid_runtime_poll_until_idle(10);
	if (c.status != 0 || c.r.bad_stripes != 0 || c.r.unreadable != 0)
		violation(t,
			  "parity check: %" PRIu64 " bad stripes (first %" PRIu64 "), %" PRIu64
			  " unreadable, status %d",
			  c.r.bad_stripes, c.r.bad_stripes ? c.r.bad[0] : 0, c.r.unreadable,
			  c.status);
	else if (t->verbose)
		printf("  parity check: %" PRIu64 " stripes, none bad\n", c.r.stripes_checked);
}

/* --- a cycle --- */

static void
cut_done(void *arg, int status, const struct fault_cut_stats *st)
{
	struct torture *t = g_t;

	(void)arg;
	if (status == 0) {
		t->cut_records += st->records;
		t->cut_torn += st->torn;
		t->cut_dropped += st->dropped;
	}
}

/* The whole machine loses power: members, failed members and spares alike. */
static void
power_cut(struct torture *t)
{
	char name[16];

	t->cutting = true;
	for (unsigned i = 0; i < t->next_member; i++) {
		snprintf(name, sizeof(name), "tf%u", i);
		if (uraid_bdev_get_by_name(name) != NULL)
			fault_power_cut(name, mix(t->seed ^ t->cycles_done ^ i), cut_done, t);
	}
}

/* The armed crash point was reached: the power goes right there. */
static void
point_reached(void *arg, enum crash_point p)
{
	struct torture *t = arg;

	(void)p;
	t->point_hit = true;
	t->point_cuts++;
	power_cut(t);
}

static int
create_array(struct torture *t)
{
	struct uraid_array_opts o = {0};
	const char *names[MAX_MEMBERS];
	struct uraid_bdev *b;
	char err[256];

	for (unsigned i = 0; i < t->n; i++)
		names[i] = new_member(t, t->members[i], sizeof(t->members[i]));
	o.name = "t";
	if (uraid_raid_level_parse(t->level, &o.level, &o.raid5_layout) != 0) {
		fprintf(stderr, "torture: unknown level '%s'\n", t->level);
		return -EINVAL;
	}
	o.strip_size_kb = 4;
	o.members = names;
	o.num_members = t->n;
	o.data_chunks = t->k;
	o.parity_chunks = t->m;
	o.spares = t->spares;
	o.superblock = true;
	o.policy = t->policy;
	o.bitmap_region_kb = 64;
	o.journal_write_back = t->write_back;
	if (t->journal_dev)
		o.journal_bdev = new_member(t, t->journal, sizeof(t->journal));
	if (uraid_array_create(&o, &b, err, sizeof(err)) != 0) {
		fprintf(stderr, "torture: cannot create the array: %s\n", err);
		return -EINVAL;
	}
	t->blocks = uraid_bdev_get_num_blocks(b);
	return 0;
}

static void
add_spare(struct torture *t)
{
	char err[256], name[16];

	if (t->zoned && t->cutting)
		return; /* a zoned member cannot be set up (its zone table written) without power */
	new_member(t, name, sizeof(name));
	if (t->zoned && t->cutting)
		return; /* the power went while it was set up */
	if (uraid_array_add_spare(uraid_bdev_get_by_name("t"), name, err, sizeof(err)) != 0) {
		fatal(t, "add spare: %s", err);
	}
}

/* A member fails under the load (it is marked failed, as by the admin or an I/O error);
 * perhaps a spare takes its place, or the member itself comes back (under a bitmap it then
 * catches up on what it missed), and is rebuilt while the load goes on. */
static void
load_failure(struct torture *t)
{
	unsigned victim = (unsigned)prng_below(&t->rng, t->n);
	unsigned what = (unsigned)prng_below(&t->rng, 4);
	struct uraid_array_info info = info_now();
	char err[256];

	uraid_array_fail_member(uraid_bdev_get_by_name("t"), victim);
	if (what < 2)
		add_spare(t);
	else if (what == 2 &&
		 uraid_array_add_spare(uraid_bdev_get_by_name("t"), info.members[victim].name, err,
				       sizeof(err)) != 0)
		violation(t, "the failed member %s could not come back: %s",
			  info.members[victim].name, err);
	if (t->verbose)
		fprintf(stderr, "cycle %" PRIu64 ": slot %u failed under the load%s\n",
			t->cycles_done + 1, victim,
			what < 2    ? ", a spare added"
			: what == 2 ? ", and came back"
				    : "");
}

/* What this array object did for members that came back: counted before it goes. */
static void
count_catch_up(struct torture *t)
{
	struct uraid_array_stats st;

	if (uraid_array_get_stats(uraid_bdev_get_by_name("t"), &st) != 0)
		return;
	t->claimed += st.claimed_writes;
	if (st.rebuild_units_skipped > 0) {
		t->caught_up += st.rebuild_units;
		t->passed_over += st.rebuild_units_skipped;
	}
}

/* A cycle's end: fail a random member, read everything again (from the others), rebuild a
 * spare; then time passes (the bitmap clears what went quiet). */
static void
cycle_end(struct torture *t)
{
	unsigned victim = (unsigned)prng_below(&t->rng, t->n);

	uraid_array_fail_member(uraid_bdev_get_by_name("t"), victim);
	poll_idle();
	verify_all(t, false, "with a member failed");
	add_spare(t);
	if (!settle())
		violation(t, "rebuild onto the spare did not finish");
	drop_free_members(t);
	uraid_runtime_advance_us(3000000);
	poll_idle();
	t->cycles_done++;
}

/* The load: ops I/Os at queue depth qd from both reactors, a member failing under it at the
 * fail_at-th; it stops early where an armed crash point is reached. */
static void
run_load(struct torture *t, unsigned qd, unsigned ops, unsigned fail_at)
{
	uint64_t deadline_ns = mono_ns() + HANG_NS;
	unsigned issued = 0;

	for (unsigned spins = 0; issued < ops && !t->point_hit; spins++) {
		if (issued == fail_at) {
			load_failure(t);
			fail_at = UINT_MAX;
		}
		if (t->inflight < qd && issue_random(t)) {
			issued++;
			continue;
		}
		uraid_runtime_poll_until_idle(1);
		/* The load takes milliseconds: a minute means an I/O the engine never completes. */
		if ((spins & 1023) == 0 && mono_ns() > deadline_ns)
			fatal(t, "%u I/Os never completed during the load (%u of %u issued)",
			      t->inflight, issued, ops);
	}
}

/* --no-cut: the load runs to its end (members failing under it as usual) and is drained;
 * nothing is lost, so every block must hold exactly the last version written to it, with
 * the array degraded, rebuilt and after it loses a member again; the parity must check. This
 * is what policy none promises (its hole is only a cut's). */
static void
cycle_no_cut(struct torture *t, unsigned qd, unsigned fail_at)
{
	struct uraid_array_info info;

	run_load(t, qd, t->ops, fail_at);
	drain(t);
	poll_idle();
	if (t->inflight > 0)
		fatal(t, "%u I/Os never completed", t->inflight);
	info = info_now();
	if (info.failed_members > 0 && !info.rebuild.active) {
		verify_all(t, false, "degraded after the load");
		add_spare(t);
	}
	if (!settle())
		violation(t, "resync or rebuild did not finish");
	verify_all(t, false, "after the load");
	for (uint64_t lba = 0; lba < t->blocks; lba++)
		model_reset(t, lba, t->b[lba].cur);
	parity_check(t);
	cycle_end(t);
}

static void
cycle(struct torture *t)
{
	unsigned cut_at = t->ops / 4 + (unsigned)prng_below(&t->rng, t->ops - t->ops / 4 + 1);
	unsigned qd = 1 + (unsigned)prng_below(&t->rng, MAX_QD);
	unsigned fail_at = t->load_failures && (t->crash_at >= 0 || prng_below(&t->rng, 2) == 0)
				   ? (unsigned)prng_below(&t->rng, cut_at)
				   : UINT_MAX;
	struct uraid_array_info info;
	char report[1024], name[16];
	int rc;

	if (t->no_cut) {
		cycle_no_cut(t, qd, fail_at);
		return;
	}
	/* 1. Load, then cut the power in the middle of it: at a random point, or where the
	 * crash point is passed for the count-th time (if it is before the load's end). */
	t->point_hit = false;
	if (t->crash_at >= 0)
		crash_point_arm((enum crash_point)t->crash_at, 1 + (unsigned)prng_below(&t->rng, 8),
				point_reached, t);
	run_load(t, qd, cut_at, fail_at);
	crash_point_disarm();
	if (!t->point_hit)
		power_cut(t);
	drain(t);
	poll_idle();
	if (t->inflight > 0) {
		fatal(t, "%u I/Os never completed after the cut", t->inflight);
	}

	/* 2. The process dies: the array goes without a word to its members. Power comes
	 * back and the members are assembled. */
	count_catch_up(t);
	array_close(t);
	if (delete_bdev("t") != 0) {
		fatal(t, "the array did not go away after the cut");
	}
	for (unsigned i = 0; i < t->next_member; i++) {
		/* A zoned bdev's write pointers are in memory: they go with the power, and
		 * come back from its table on the fault bdev. */
		snprintf(name, sizeof(name), "tz%u", i);
		if (t->zoned && uraid_bdev_get_by_name(name) != NULL && delete_bdev(name) != 0)
			fatal(t, "zoned member %s did not go away after the cut", name);
		snprintf(name, sizeof(name), "tf%u", i);
		fault_power_on(name);
		if (t->zoned && uraid_bdev_get_by_name(name) != NULL)
			zoned_member(i);
	}
	t->cutting = false;
	rc = uraid_array_examine(false, report, sizeof(report));
	if (rc != 1) {
		violation(t, "assembly after the cut: %s", report);
		rc = uraid_array_examine(true, report, sizeof(report));
		if (rc != 1) {
			fatal(t, "cannot start the array again: %s", report);
		}
	}
	if (t->verbose)
		printf("  assembled: %s\n", report);
	if (array_open(t) != 0) {
		fatal(t, "cannot open the array");
	}
	info = info_now();
	if (info.failed_members > 0 && !info.rebuild.active) {
		/* Degraded: the missing member's blocks come from parity, which is where a
		 * hole would show. Then a spare is rebuilt and everything read again. */
		verify_all(t, true, "degraded after the cut");
		add_spare(t);
		if (!settle())
			violation(t, "rebuild after the cut did not finish");
		verify_all(t, false, "rebuilt after the cut");
	} else {
		if (!settle())
			violation(t, "resync or rebuild did not finish");
		/* 3. Every block old or new. */
		verify_all(t, true, "after the cut");
	}
	/* 4. Parity consistent. */
	parity_check(t);

	/* 5. Lose a member: reconstruction must give the same blocks. 6. A new member takes its
	 * place. */
	cycle_end(t);
}

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: uraid torture [--level L] [--members N] [--data-chunks K --parity-chunks "
		"M]\n"
		"                     [--distributed-spares S]  (draid; default k = N - 3, m = 2, "
		"S = 1)\n"
		"                     [--policy none|bitmap|ppl|journal|log] [--cycles N | "
		"--minutes "
		"N | --seconds N]\n"
		"                     [--ops N] [--member-kb N] [--seed S] [--expect-hole] "
		"[--verbose]\n"
		"                     [--load-failures | --no-load-failures] [--ack-durable]\n"
		"                     [--write-back]  (journal: write-back mode)\n"
		"                     [--journal-bdev]  (journal: on a device of its own)\n"
		"                     [--zoned]  (log: zoned members over the fault bdevs)\n"
		"                     [--no-cut]  (no power cuts: every answered write exact)\n"
		"                     [--crash-point sb-flushed|sb-primary|rebuild-unit|\n"
		"                      log-written|journal-acked|stripe-writing|log-flushed|\n"
		"                      tree-flushed|tree-recorded|tree-pages]\n"
		"Power cuts at random points under a random workload on fault-backend members;\n"
		"after each: reassemble, recover, check every block and the parity, fail a "
		"member,\n"
		"check again, rebuild. With load failures members also fail (and spares\n"
		"rebuild) during the load: the default under ppl and on mirrors; parity levels\n"
		"under bitmap or none need force to start dirty and degraded (their hole).\n"
		"Under the journal (or with --ack-durable) every acknowledged write must\n"
		"survive a cut, not only those a flush or FUA covered. With --crash-point the\n"
		"power goes when the load passes that point a random 1..8 times (members fail\n"
		"in every cycle, so that the superblock and rebuild points are reached).\n"
		"Defaults: raid5, 4 members, the level's default policy, 10 cycles of up to\n"
		"400 operations, 2048 KiB members, a random seed (printed).\n"
		"Exit 0 when nothing broke the rules (with --expect-hole: when something did).\n");
}

int
torture_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"level", required_argument, NULL, 'l'},
		{"members", required_argument, NULL, 'n'},
		{"data-chunks", required_argument, NULL, 'k'},
		{"parity-chunks", required_argument, NULL, 'm'},
		{"distributed-spares", required_argument, NULL, 'D'},
		{"policy", required_argument, NULL, 'p'},
		{"cycles", required_argument, NULL, 'c'},
		{"minutes", required_argument, NULL, 'M'},
		{"seconds", required_argument, NULL, 'S'},
		{"ops", required_argument, NULL, 'o'},
		{"member-kb", required_argument, NULL, 'K'},
		{"seed", required_argument, NULL, 's'},
		{"expect-hole", no_argument, NULL, 'E'},
		{"verbose", no_argument, NULL, 'v'},
		{"load-failures", no_argument, NULL, 'F'},
		{"ack-durable", no_argument, NULL, 'A'},
		{"crash-point", required_argument, NULL, 'P'},
		{"write-back", no_argument, NULL, 'W'},
		{"journal-bdev", no_argument, NULL, 'J'},
		{"zoned", no_argument, NULL, 'Z'},
		{"no-load-failures", no_argument, NULL, 'N'},
		{"no-cut", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct torture t = {.level = "raid5",
			    .n = 4,
			    .cycles = 10,
			    .ops = 400,
			    .member_kb = 2048,
			    .load_failures = -1,
			    .crash_at = -1};
	struct uraid_runtime_opts ro = {.num_reactors = REACTORS, .manual_poll = true};
	uint64_t start_ns, deadline_ns = 0;
	bool seeded = false, draid_spares_set = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "l:n:k:m:D:p:c:M:S:o:K:s:EvFNCAP:WJZh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'l':
			t.level = optarg;
			break;
		case 'n':
			t.n = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'k':
			t.k = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'm':
			t.m = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'D':
			t.spares = (unsigned)strtoul(optarg, NULL, 0);
			draid_spares_set = true;
			break;
		case 'p':
			if (uraid_policy_parse(optarg, &t.policy) != 0) {
				fprintf(stderr, "uraid torture: unknown policy '%s'\n", optarg);
				return 2;
			}
			break;
		case 'c':
			t.cycles = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'M':
			t.seconds = strtoull(optarg, NULL, 0) * 60;
			t.cycles = 0;
			break;
		case 'S':
			t.seconds = strtoull(optarg, NULL, 0);
			t.cycles = 0;
			break;
		case 'o':
			t.ops = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'K':
			t.member_kb = strtoull(optarg, NULL, 0);
			break;
		case 's':
			t.seed = strtoull(optarg, NULL, 0);
			seeded = true;
			break;
		case 'E':
			t.expect_hole = true;
			break;
		case 'v':
			t.verbose = true;
			break;
		case 'F':
			t.load_failures = 1;
			break;
		case 'A':
			t.ack_durable = true;
			break;
		case 'W':
			t.write_back = true;
			break;
		case 'J':
			t.journal_dev = true;
			break;
		case 'Z':
			t.zoned = true;
			break;
		case 'P': {
			enum crash_point p;

			if (crash_point_parse(optarg, &p) != 0) {
				fprintf(stderr,
					"uraid torture: unknown crash point '%s'; known:", optarg);
				for (unsigned i = 0; i < CRASH_POINT_COUNT; i++)
					fprintf(stderr, " %s",
						crash_point_name((enum crash_point)i));
				fputc('\n', stderr);
				return 2;
			}
			t.crash_at = (int)p;
			break;
		}
		case 'N':
			t.load_failures = 0;
			break;
		case 'C':
			t.no_cut = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (t.n < 2 || t.n > MAX_MEMBERS || t.ops < 4 || t.member_kb < 1280 ||
	    t.member_kb > 1024 * 1024 || (t.cycles == 0 && t.seconds == 0) ||
	    t.seconds > 7 * 24 * 3600) {
		fprintf(stderr,
			"uraid torture: members 2..%d, ops >= 4, member-kb 1280..1048576, "
			"cycles or a time > 0 (at most a week)\n",
			MAX_MEMBERS);
		return 2;
	}
	if (t.no_cut && (t.crash_at >= 0 || t.expect_hole)) {
		fprintf(stderr, "uraid torture: --no-cut takes neither --crash-point nor "
				"--expect-hole\n");
		return 2;
	}
	if (t.zoned && t.policy != URAID_POLICY_LOG) {
		fprintf(stderr, "uraid torture: --zoned members need --policy log\n");
		return 2;
	}
	if (t.k == 0 && t.m == 0 && strcmp(t.level, "ec") == 0) {
		t.m = 2;
		t.k = t.n - 2;
	}
	if (strcmp(t.level, "draid") == 0) {
		if (!draid_spares_set)
			t.spares = 1;
		if (t.k == 0 && t.m == 0 && t.n > 3 + t.spares) {
			t.m = 2;
			t.k = t.n - 2 - t.spares - 1; /* a stripe narrower than a row */
		}
	}
	/* Member failures at every cut are the point here: the engine's own log only with
	 * --verbose. */
	log_set_level(t.verbose ? LOG_NOTICE : LOG_OFF);
	if (!seeded)
		t.seed = mix((uint64_t)time(NULL) ^ (uint64_t)getpid() << 20);
	prng_seed(&t.rng, t.seed);
	g_t = &t;
	if (uraid_runtime_start(&ro) != 0) {
		fprintf(stderr, "uraid torture: cannot start the runtime\n");
		return 1;
	}
	if (create_array(&t) != 0) {
		uraid_runtime_stop();
		return 2;
	}
	{
		struct uraid_array_info info = info_now();

		t.stripe_blocks = 4096 / BS * info.data_chunks;
		/* A crash on a degraded array is what the bitmap cannot mend on parity levels
		 * (md's neither: such an array needs force to start); ppl can, and mirrors have
		 * no hole. */
		t.policy_used = info.policy;
		t.ack_durable |=
			info.policy == URAID_POLICY_JOURNAL || info.policy == URAID_POLICY_LOG;
		if (t.load_failures < 0)
			t.load_failures =
				t.no_cut || info.policy == URAID_POLICY_PPL ||
				info.policy == URAID_POLICY_JOURNAL ||
				(info.policy == URAID_POLICY_LOG && info.level != URAID_RAID0) ||
				info.level == URAID_RAID1 || info.level == URAID_RAID10;
		printf("torture: seed %" PRIu64 ", %s over %u members, policy %s%s%s, %" PRIu64
		       " blocks%s\n",
		       t.seed, t.level, t.n, uraid_policy_name(info.policy),
		       info.journal_write_back ? " (write-back)" : "",
		       info.journal_bdev[0] ? " on a journal device" : "", t.blocks,
		       t.load_failures ? ", members failing under the load" : "");
	}
	fflush(stdout);
	t.b = calloc(t.blocks, sizeof(*t.b));
	t.busy = calloc(t.blocks, 1);
	if (array_open(&t) != 0) {
		fprintf(stderr, "uraid torture: cannot open the array\n");
		return 1;
	}
	start_ns = mono_ns();
	if (t.seconds)
		deadline_ns = start_ns + t.seconds * 1000000000ull;
	while (t.seconds ? mono_ns() < deadline_ns : t.cycles_done < t.cycles) {
		uint64_t before = t.violations;

		cycle(&t);
		if (t.verbose || t.violations != before)
			printf("cycle %" PRIu64 ": %s\n", t.cycles_done,
			       t.violations != before ? "RULES BROKEN" : "ok");
		if (t.violations && t.expect_hole)
			break;
	}
	printf("torture: seed %" PRIu64 ": %" PRIu64 " cycles, %" PRIu64 " blocks checked, "
	       "%" PRIu64 " unflushed member writes at the cuts (%" PRIu64 " torn, %" PRIu64
	       " lost), %" PRIu64 " violations (%.0f s)\n",
	       t.seed, t.cycles_done, t.blocks_checked, t.cut_records, t.cut_torn, t.cut_dropped,
	       t.violations, (double)(mono_ns() - start_ns) / 1e9);
	if (t.crash_at >= 0)
		printf("torture: crash point %s: the power went there in %" PRIu64 " of %" PRIu64
		       " cycles (elsewhere in the others)\n",
		       crash_point_name((enum crash_point)t.crash_at), t.point_cuts, t.cycles_done);
	if (t.hole_blocks)
		printf("torture: %" PRIu64 " unflushed blocks in rows the log recovery reported "
		       "it could not mend (a member lost as the power went)\n",
		       t.hole_blocks);
	count_catch_up(&t);
	if (t.passed_over)
		printf("torture: members came back and caught up: %" PRIu64 " units rebuilt, "
		       "%" PRIu64 " clean ones passed over\n",
		       t.caught_up, t.passed_over);
	if (t.claimed)
		printf("torture: %" PRIu64 " writes claimed (run by the reactor that did not own "
		       "their stripe)\n",
		       t.claimed);
	if (t.violations)
		print_replay(&t, t.cycles_done);
	array_close(&t);
	delete_bdev("t");
	poll_idle();
	drop_free_members(&t);
	for (uint64_t l = 0; l < t.blocks; l++)
		free(t.b[l].c);
	free(t.b);
	free(t.busy);
	uraid_runtime_stop();
	return t.expect_hole ? (t.violations ? 0 : 1) : (t.violations ? 1 : 0);
}
