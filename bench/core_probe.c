/* isle — MIT licensed. */
/*
 * core_probe: the time for one cache line to go from CPU 0 to CPU 1 and
 * back (ns per round trip, one integer on stdout). bench/run prints it
 * with the actors suite: this machine's two vCPUs sometimes share a core
 * complex and sometimes not, and a line crossing between them then costs
 * several times more. Every workload whose actors talk across workers
 * (big, spawn, fjthrput) follows that cost, which the speed probe (one
 * thread) does not see.
 *
 * Two threads pinned to the first two allowed CPUs take turns incrementing
 * one counter: each waits for the other's value, then writes its own. The
 * best of a few repetitions is taken. Without two CPUs it prints 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define ROUND_TRIPS 20000
#define REPEATS 5

static _Alignas(64) _Atomic uint64_t ball;
static int cpus[2];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* The second player: answers every odd value with the next even one. */
static void *player(void *arg) {
  (void)arg;
  pin(cpus[1]);
  for (uint64_t v = 1; v < 2 * ROUND_TRIPS * REPEATS; v += 2) {
    while (atomic_load_explicit(&ball, memory_order_acquire) != v)
      ;
    atomic_store_explicit(&ball, v + 1, memory_order_release);
  }
  return NULL;
}

int main(void) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
    return 1;
  int n = 0;
  for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
    if (CPU_ISSET(c, &allowed))
      cpus[n++] = c;
  if (n < 2) {
    printf("0\n");
    return 0;
  }
  pin(cpus[0]);
  pthread_t t;
  if (pthread_create(&t, NULL, player, NULL) != 0)
    return 1;
  uint64_t best = UINT64_MAX, v = 0;
  for (int r = 0; r < REPEATS; r++) {
    uint64_t t0 = now_ns();
    for (int i = 0; i < ROUND_TRIPS; i++) {
      atomic_store_explicit(&ball, v + 1, memory_order_release);
      while (atomic_load_explicit(&ball, memory_order_acquire) != v + 2)
        ;
      v += 2;
    }
    uint64_t dt = now_ns() - t0;
    if (dt < best)
      best = dt;
  }
  pthread_join(t, NULL);
  printf("%llu\n", (unsigned long long)(best / ROUND_TRIPS));
  return 0;
}
