/* isle — MIT licensed. */
/*
 * The chaos build's preemption (heap/chaos.h says what and why). Compiled
 * only with ISLE_CHAOS: a few arithmetic instructions when a point does
 * not act; when it does, three times in four a yield, else a 1-51 µs
 * sleep (long enough for the other CPU to run a whole path).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chaos.h"

static pthread_once_t chaos_once = PTHREAD_ONCE_INIT;
static uint64_t chaos_seed;
static uint32_t chaos_rate = 5;  /* per mille, cold points */
static uint32_t chaos_hot = 300; /* per mille, hot points */
static const char *chaos_only;
static _Atomic uint32_t chaos_threads; /* threads that reached a point */

static _Thread_local uint64_t tls_rng; /* 0: not seeded yet */

static void chaos_setup(void) {
  const char *s = getenv("ISLE_CHAOS_SEED");
  if (s && *s) {
    chaos_seed = strtoull(s, NULL, 10);
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    chaos_seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
    chaos_seed %= 1000000000u;
  }
  const char *r = getenv("ISLE_CHAOS_RATE");
  if (r && *r)
    chaos_rate = (uint32_t)strtoul(r, NULL, 10);
  const char *h = getenv("ISLE_CHAOS_HOT");
  if (h && *h)
    chaos_hot = (uint32_t)strtoul(h, NULL, 10);
  const char *o = getenv("ISLE_CHAOS_ONLY");
  if (o && *o)
    chaos_only = o;
  fprintf(stderr, "isle chaos: seed %llu (replay: ISLE_CHAOS_SEED=%llu)\n",
          (unsigned long long)chaos_seed, (unsigned long long)chaos_seed);
}

/* splitmix64: a full-period generator whose every state is usable. */
static uint64_t next_random(void) {
  uint64_t z = (tls_rng += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* 1 + whether `point` is hot for this seed (FNV-1a of its name). */
static uint32_t site_kind(const char *point) {
  uint32_t hash = 2166136261u;
  for (const char *c = point; *c; c++)
    hash = (hash ^ (uint8_t)*c) * 16777619u;
  return 1 + ((hash + chaos_seed) % 3 == 0);
}

void isle__chaos(const char *point, _Atomic uint32_t *site) {
  if (!tls_rng) {
    int saved = errno;
    pthread_once(&chaos_once, chaos_setup);
    /* Relaxed: only distinct ordinals are needed. */
    uint32_t n =
        atomic_fetch_add_explicit(&chaos_threads, 1, memory_order_relaxed);
    tls_rng = (chaos_seed + 1) * 0x2545f4914f6cdd1du + n;
    errno = saved;
  }
  /* Relaxed: every thread computes the same value. */
  uint32_t kind = atomic_load_explicit(site, memory_order_relaxed);
  if (!kind) {
    kind = site_kind(point);
    atomic_store_explicit(site, kind, memory_order_relaxed);
  }
  uint64_t r = next_random();
  if (r % 1000 >= (kind == 2 ? chaos_hot : chaos_rate))
    return;
  if (chaos_only && !strstr(point, chaos_only))
    return;
  int saved = errno;
  if ((r >> 20) % 4 != 0) {
    sched_yield();
  } else {
    struct timespec ts = {0, (long)(1000 + (r >> 32) % 50000)};
    nanosleep(&ts, NULL);
  }
  errno = saved;
}
