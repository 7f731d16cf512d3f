/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private helpers shared by every layer: compiler hints, checked arithmetic, a seeded PRNG,
 * logging and block-stamp helpers. Sectioned by the file that implements each part.
 */
#ifndef URAID_COMMON_H
#define URAID_COMMON_H

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/queue.h>

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                                         \
	for ((var) = TAILQ_FIRST((head)); (var) && ((tvar) = TAILQ_NEXT((var), field), 1); \
	     (var) = (tvar))
#endif

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a)			(sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define CACHE_LINE_BYTES		64
#define UNUSED				__attribute__((unused))

/* The lines of cold memory a small copy waits for first, started ahead of it: a copy whose
 * first line is missing waits a whole memory latency before the hardware's stream prefetcher
 * takes over (ram starts them at submit; `uraid bench --memcpy --ahead` does what ram does).
 * More (4, 8, 16) measured no better for 4 KiB writes, and a prefetch whose line is not there
 * yet stalls the code that issues it. */
#define PREFETCH_HEAD_LINES 2

/* Start fetching the first PREFETCH_HEAD_LINES lines at p, with intent to write if write. A
 * macro: written as a static inline function, the same loop lost its prefetches to GCC 12's
 * dead-code elimination at -O2 (-fno-tree-dce kept them). */
#define prefetch_head(p, write)                                                                    \
	do {                                                                                       \
		for (unsigned prefetch_i_ = 0; prefetch_i_ < PREFETCH_HEAD_LINES; prefetch_i_++) { \
			if (write)                                                                 \
				__builtin_prefetch((p) + prefetch_i_ * CACHE_LINE_BYTES, 1);       \
			else                                                                       \
				__builtin_prefetch((p) + prefetch_i_ * CACHE_LINE_BYTES, 0);       \
		}                                                                                  \
	} while (0)

static inline bool
is_pow2_u64(uint64_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

static inline uint64_t
align_up_u64(uint64_t v, uint64_t align)
{
	return (v + align - 1) & ~(align - 1);
}

/* Checked arithmetic: 0 on success, -EOVERFLOW when the result does not fit. */
static inline int
ck_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_add_overflow(a, b, out) ? -EOVERFLOW : 0;
}

static inline int
ck_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? -EOVERFLOW : 0;
}

/* --- prng: xoshiro256** seeded through splitmix64; deterministic for a given seed. --- */
struct prng {
	uint64_t s[4];
};

static inline uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void
prng_seed(struct prng *p, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		p->s[i] = splitmix64(&seed);
}

static inline uint64_t
rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t
prng_next(struct prng *p)
{
	uint64_t *s = p->s;
	uint64_t r = rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return r;
}

/* Uniform in [0, bound); bound > 0. Lemire's multiply-shift, bias negligible for our use. */
static inline uint64_t
prng_below(struct prng *p, uint64_t bound)
{
	return (uint64_t)(((unsigned __int128)prng_next(p) * bound) >> 64);
}

#define URAID_VERSION_MAJOR 0
#define URAID_VERSION_MINOR 2
#define URAID_VERSION_PATCH 0
#define URAID_VERSION	    "0.2.0"

/* --- ticks.c: a cheap clock for latency accounting --- */
#if defined(__x86_64__)
#include <x86intrin.h>
static inline uint64_t
ticks_now(void)
{
	return __rdtsc();
}
#else
uint64_t ticks_now(void);
#endif
/* Ticks per second (measured once, on first use). */
uint64_t ticks_hz(void);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t mono_ns(void);

/* Little-endian fields at any alignment, for the on-disk formats. */
static inline void
le_put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void
le_put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static inline uint32_t
le_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t
le_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* --- crc.c --- */
uint32_t crc32c(const void *buf, size_t len);
/* The CRC32C of what gave crc, followed by buf: crc32c_more(crc32c(a), b) = crc32c(a b). */
uint32_t crc32c_more(uint32_t crc, const void *buf, size_t len);

/* --- log.c --- */
enum log_level { LOG_OFF = -1, LOG_ERROR, LOG_WARN, LOG_NOTICE, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
const char *log_level_name(enum log_level level);
int log_parse_level(const char *name, enum log_level *level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Format a one-line error for the caller's buffer (the "err, err_len" arguments of create
 * functions). */
void err_set(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define LOG_ERR(...)	 log_msg(LOG_ERROR, __VA_ARGS__)
#define LOG_WARNING(...) log_msg(LOG_WARN, __VA_ARGS__)
#define LOG_NOTE(...)	 log_msg(LOG_NOTICE, __VA_ARGS__)
#define LOG_INFO(...)	 log_msg(LOG_INFO, __VA_ARGS__)
#define LOG_DBG(...)	 log_msg(LOG_DEBUG, __VA_ARGS__)

/* --- crashpt.c: named crash points (see there) --- */
enum crash_point {
	CRASH_SB_FLUSHED,     /* superblock round: members flushed, no copy written yet */
	CRASH_SB_PRIMARY,     /* ... primary copy written to a member, backup not yet */
	CRASH_REBUILD_UNIT,   /* rebuild: a unit written, the checkpoint not moved yet */
	CRASH_LOG_WRITTEN,    /* ppl/journal: a stripe's entries written, no data or parity */
	CRASH_JOURNAL_ACKED,  /* journal write-back: a write logged and acknowledged, the rest
			       * of its update not begun */
	CRASH_STRIPE_WRITING, /* a stripe's data and parity writes issued, none back */
	CRASH_LOG_FLUSHED,    /* ppl/journal: a flush covering entries is back, before they
			       * retire (the journal's checkpoint) */
	CRASH_TREE_FLUSHED,   /* log: rows written and flushed, their records not written */
	CRASH_TREE_RECORDED,  /* log: records durable, the map not changed, nothing answered */
	CRASH_TREE_PAGES,     /* log: a checkpoint's pages written, its record not */
	CRASH_POINT_COUNT
};

extern _Atomic int g_crash_armed; /* the armed point, or -1 */
void crash_point_slow(enum crash_point p);

/* The code passes point p. */
static inline void
crash_point(enum crash_point p)
{
	if (__builtin_expect(atomic_load_explicit(&g_crash_armed, memory_order_relaxed) == (int)p,
			     0))
		crash_point_slow(p);
}

const char *crash_point_name(enum crash_point p);
int crash_point_parse(const char *name, enum crash_point *p);
/* The count-th pass (from now) of p runs hook(arg, p) right there; then p is disarmed. One
 * point is armed at a time. */
void crash_point_arm(enum crash_point p, unsigned count,
		     void (*hook)(void *arg, enum crash_point p), void *arg);
void crash_point_disarm(void);
/* Passes of p while it was armed (for tests: was it reached). */
uint64_t crash_point_passed(enum crash_point p);

/* --- stamp.c: self-describing block contents for verification --- */

/*
 * A stamped block holds its address and a generation in a 32-byte header, and a fill derived
 * from both in the rest, so a block that landed at the wrong address, a stale generation, a
 * torn sector or a flipped bit anywhere in the block are all told apart.
 */
#define STAMP_MAGIC 0x55524149445354ull /* "URAIDST" */
/* Header layout: magic, lba, generation, seed; 8 bytes each, at offsets 0, 8, 16, 24. */

void stamp_fill(void *buf, uint32_t block_size, uint64_t lba, uint64_t gen, uint64_t seed);

/* 0 when the block holds exactly (lba, gen, seed); otherwise -EBADMSG and what it holds. */
int stamp_check(const void *buf, uint32_t block_size, uint64_t lba, uint64_t gen, uint64_t seed,
		uint64_t *found_lba, uint64_t *found_gen);

#endif
