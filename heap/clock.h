/* isle — MIT licensed. */
/*
 * The library's clocks: monotonic, in nanoseconds. Here in the bottom
 * layer so that every layer above may include it; each function is one
 * clock_gettime, which glibc answers from the vDSO without a system call.
 *
 * isle__now_ns reads CLOCK_MONOTONIC (timers, deadlines, the sampler);
 * isle__now_coarse_ns reads CLOCK_MONOTONIC_COARSE, which costs less but
 * advances only once per kernel tick (1-4 ms), enough for the page pool's
 * purge delay. Any thread.
 */
#ifndef ISLE_HEAP_CLOCK_H
#define ISLE_HEAP_CLOCK_H

#include <stdint.h>
#include <time.h> /* clock_gettime */

static inline uint64_t isle__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t isle__now_coarse_ns(void) {
  struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* ISLE_HEAP_CLOCK_H */
