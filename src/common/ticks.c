/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ticks for latency accounting on the data path: the TSC on x86-64 (a few cycles to read,
 * constant-rate on every CPU this runs on), nanoseconds elsewhere. The rate is measured once
 * against CLOCK_MONOTONIC.
 */
#include <pthread.h>
#include <time.h>

#include "common.h"

static uint64_t g_hz;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
calibrate(void)
{
#if defined(__x86_64__)
	struct timespec pause = {0, 20000000};
	uint64_t n0 = mono_ns(), t0 = ticks_now(), n1, t1;

	nanosleep(&pause, NULL);
	n1 = mono_ns();
	t1 = ticks_now();
	g_hz = n1 > n0 ? (uint64_t)((double)(t1 - t0) * 1e9 / (double)(n1 - n0)) : 1000000000u;
#else
	g_hz = 1000000000u;
#endif
}

uint64_t
ticks_hz(void)
{
	pthread_once(&g_once, calibrate);
	return g_hz;
}

#if !defined(__x86_64__)
uint64_t
ticks_now(void)
{
	return mono_ns();
}
#endif
