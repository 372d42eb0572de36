/* isle — MIT licensed. */
/*
 * Helpers shared by the heap workloads: argument parsing (--scale), a
 * monotonic clock, a deterministic PRNG, peak-RSS reading, the one result
 * line, a two-thread barrier and an SPSC ring of pointers.
 *
 * Nothing here allocates through the allocator under test: the ring and the
 * barrier live in static storage, bookkeeping arrays come from mmap
 * (bench_map), so every byte the allocator is asked for is the workload's.
 *
 * Threads: the ring is single-producer single-consumer; the barrier is for
 * exactly two threads. Waiting spins with a pause instruction for a short
 * while and then yields the CPU: the machine has two vCPUs shared with other
 * work, so a waiter must not hold a core its partner needs.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <math.h>      /* llround */
#include <pthread.h>   /* pthread_setaffinity_np */
#include <sched.h>     /* sched_yield */
#include <stdarg.h>    /* va_list for bench_fail */
#include <stdatomic.h> /* ring indices, barrier */
#include <stdint.h>    /* uint64_t */
#include <stdio.h>     /* printf, fprintf */
#include <stdlib.h>    /* exit, strtod */
#include <string.h>    /* strcmp, strncmp */
#include <sys/mman.h>  /* mmap for bookkeeping arrays */
#include <time.h>      /* clock_gettime */

/* Same seed for every implementation: all of them see the same sizes and
 * the same slot choices in the same order. */
#define BENCH_SEED 0x15e1f00dULL
#define BENCH_CACHE_LINE 64

/* ===== Failure and arguments ========================================== */

static inline void bench_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

/* `prog [--scale X]`: X > 0 multiplies every count (0.1 for --quick). */
static inline double bench_parse_scale(int argc, char **argv) {
  double scale = 1.0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      char *end;
      scale = strtod(argv[++i], &end);
      if (*end != '\0' || !(scale > 0.0) || scale > 100.0)
        bench_fail("bad --scale value '%s'", argv[i]);
    } else {
      fprintf(stderr, "usage: %s [--scale X]\n", argv[0]);
      exit(2);
    }
  }
  return scale;
}

static inline uint64_t bench_scaled(uint64_t n, double scale) {
  long long v = llround((double)n * scale);
  return v < 1 ? 1 : (uint64_t)v;
}

/* ===== Time, memory ==================================================== */

static inline uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A field of /proc/self/status in kB ("VmHWM" = peak RSS, "VmRSS" = now). */
static inline long bench_status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  size_t n = strlen(field);
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, field, n) == 0 && line[n] == ':') {
      kb = strtol(line + n + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kb;
}

static inline long bench_peak_rss_kb(void) {
  return bench_status_kb("VmHWM");
}
static inline long bench_rss_kb(void) {
  return bench_status_kb("VmRSS");
}

/* Zeroed, touched bookkeeping memory that does not come from the allocator
 * under test. Never freed: the process exits. */
static inline void *bench_map(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED)
    bench_fail("mmap of %zu bytes", bytes);
  return p;
}

/* Keeps the compiler from assuming anything about *p: the stores before
 * happen, the loads after are real. */
static inline void bench_escape(void *p) {
  __asm__ volatile("" : : "r"(p) : "memory");
}

/* The one stdout line: value, unit, peak RSS, then any extra keys. */
static inline void bench_report(double value, const char *unit,
                                const char *extra) {
  printf("value=%.6g unit=%s rss_kb=%ld%s%s\n", value, unit,
         bench_peak_rss_kb(), extra[0] ? " " : "", extra);
  fflush(stdout);
}

/* ===== PRNG ============================================================ */

/* xorshift64*, seeded through splitmix64 so nearby seeds give unrelated
 * streams. Fast enough to vanish beside an allocation. */
typedef struct bench_rng_s {
  uint64_t s;
} bench_rng_t;

static inline void bench_rng_seed(bench_rng_t *r, uint64_t seed) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  r->s = z ? z : 1;
}

static inline uint64_t bench_rng_next(bench_rng_t *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n) for n < 2^32, by multiply-shift (no division). */
static inline uint32_t bench_rng_below(bench_rng_t *r, uint32_t n) {
  return (uint32_t)(((bench_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi]. */
static inline uint32_t bench_rng_range(bench_rng_t *r, uint32_t lo,
                                       uint32_t hi) {
  return lo + bench_rng_below(r, hi - lo + 1);
}

/* The byte written at the end of a block tagged `k`. */
static inline uint8_t bench_tail_byte(uint64_t k) {
  return (uint8_t)((k * 0x9E3779B97F4A7C15ULL) >> 56);
}

/* ===== Waiting ========================================================= */

#define BENCH_SPINS_BEFORE_YIELD 128

/* One step of a wait loop: pause while `*spins` is small, yield after. */
static inline void bench_wait_step(unsigned *spins) {
  if (++*spins < BENCH_SPINS_BEFORE_YIELD) {
    __builtin_ia32_pause();
  } else {
    *spins = 0;
    sched_yield();
  }
}

/* Pins the calling thread to the index-th CPU the process may use, so that
 * the two threads of a workload each own a CPU. Left floating, the kernel
 * now and then puts both on one CPU, and every hand-off then waits for a
 * yield: the same binary measured 17 or 150 ns/msg from run to run. A
 * no-op when fewer than two CPUs are allowed. */
static inline void bench_pin_thread(unsigned index) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
    return;
  unsigned n = (unsigned)CPU_COUNT(&allowed);
  if (n < 2)
    return;
  unsigned want = index % n, seen = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, &allowed))
      continue;
    if (seen++ == want) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(c, &one);
      pthread_setaffinity_np(pthread_self(), sizeof one, &one);
      return;
    }
  }
}

/* Sense-reversing barrier for two threads. */
typedef struct bench_barrier_s {
  _Alignas(BENCH_CACHE_LINE) atomic_uint xarrived;
  atomic_uint xsense;
} bench_barrier_t;

/* `*local_sense` starts at 0 in each thread. */
static inline void bench_barrier_wait(bench_barrier_t *b,
                                      unsigned *local_sense) {
  unsigned sense = *local_sense ^ 1u;
  *local_sense = sense;
  /* acq_rel: release publishes this thread's work before the barrier; the
   * last arriver's acquire sees the other's. */
  if (atomic_fetch_add_explicit(&b->xarrived, 1, memory_order_acq_rel) == 1) {
    atomic_store_explicit(&b->xarrived, 0, memory_order_relaxed);
    /* release: pairs with the acquire load below in the waiting thread. */
    atomic_store_explicit(&b->xsense, sense, memory_order_release);
  } else {
    unsigned spins = 0;
    while (atomic_load_explicit(&b->xsense, memory_order_acquire) != sense)
      bench_wait_step(&spins);
  }
}

/* ===== SPSC ring of pointers =========================================== */

#define BENCH_RING_SIZE 1024u /* power of two */

/* Producer fields and consumer fields on separate cache lines; each side
 * caches the other's index and rereads it only when the cache says full
 * (producer) or empty (consumer). */
typedef struct bench_ring_s {
  _Alignas(BENCH_CACHE_LINE) atomic_size_t xtail; /* written by producer */
  size_t head_cache;                              /* producer's copy */
  _Alignas(BENCH_CACHE_LINE) atomic_size_t xhead; /* written by consumer */
  size_t tail_cache;                              /* consumer's copy */
  _Alignas(BENCH_CACHE_LINE) void *slot[BENCH_RING_SIZE];
} bench_ring_t;

_Static_assert(sizeof(bench_ring_t) % BENCH_CACHE_LINE == 0,
               "ring fields padded to whole cache lines");

/* Producer only. False when full. */
static inline int bench_ring_push_spsc(bench_ring_t *r, void *p) {
  size_t tail = atomic_load_explicit(&r->xtail, memory_order_relaxed);
  if (tail - r->head_cache == BENCH_RING_SIZE) {
    /* acquire: pairs with the consumer's release store of xhead, so the
     * slot it vacated is no longer being read. */
    r->head_cache = atomic_load_explicit(&r->xhead, memory_order_acquire);
    if (tail - r->head_cache == BENCH_RING_SIZE)
      return 0;
  }
  r->slot[tail & (BENCH_RING_SIZE - 1)] = p;
  /* release: the slot and the message bytes written before it are visible
   * to the consumer's acquire load of xtail. */
  atomic_store_explicit(&r->xtail, tail + 1, memory_order_release);
  return 1;
}

/* Consumer only. NULL when empty. */
static inline void *bench_ring_pop_spsc(bench_ring_t *r) {
  size_t head = atomic_load_explicit(&r->xhead, memory_order_relaxed);
  if (head == r->tail_cache) {
    /* acquire: pairs with the producer's release store of xtail. */
    r->tail_cache = atomic_load_explicit(&r->xtail, memory_order_acquire);
    if (head == r->tail_cache)
      return NULL;
  }
  void *p = r->slot[head & (BENCH_RING_SIZE - 1)];
  /* release: our read of the slot happens before the producer reuses it. */
  atomic_store_explicit(&r->xhead, head + 1, memory_order_release);
  return p;
}

#endif /* BENCH_COMMON_H */
