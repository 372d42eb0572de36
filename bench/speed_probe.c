/* isle — MIT licensed. */
/*
 * speed_probe: times a fixed busy loop and prints the nanoseconds it took
 * (one integer on stdout). bench/run calls it before every measured run:
 * the host moves between a fast and a slow speed state about 2x apart, and
 * two runs whose probes differ that much were measured in different states.
 *
 * The loop is a dependent chain of integer operations (no memory, no
 * allocation), so its time follows the core's clock and the sibling
 * hyperthread's load, nothing else. The best of a few short repetitions is
 * taken, so a single preemption does not decide the result.
 */
#include <inttypes.h> /* PRIu64 */
#include <stdint.h>   /* uint64_t */
#include <stdio.h>    /* printf */
#include <time.h>     /* clock_gettime */

#define ITERATIONS 2000000
#define REPEATS 5

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int main(void) {
  uint64_t best = UINT64_MAX;
  uint64_t x = 88172645463325252ULL;
  for (int r = 0; r < REPEATS; r++) {
    uint64_t t0 = now_ns();
    for (int i = 0; i < ITERATIONS; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      __asm__ volatile("" : "+r"(x)); /* keep every step, in order */
    }
    uint64_t t = now_ns() - t0;
    if (t < best)
      best = t;
  }
  printf("%" PRIu64 "\n", best);
  return x == 0; /* x never becomes 0 from a non-zero seed */
}
