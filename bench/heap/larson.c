/* isle — MIT licensed. */
/*
 * heap/larson: two threads, each owns an array of 10,000 slots and replaces
 * a random slot per op (free the block there, allocate a new one), sizes
 * uniform in 16..1024 B. Every 100,000 ops the threads swap arrays (meeting
 * on a barrier), so from then on each frees blocks the other allocated;
 * 20,000,000 ops per thread. Reports ops/s over both threads (one op = one
 * free + one malloc), from the start barrier to the end barrier.
 *
 * The swap period stays 100,000 ops when --scale shrinks the run.
 *
 * Every block carries its tag in its first 8 bytes and a byte derived from
 * the tag in its last byte; both are checked before the block is freed, and
 * the sum of tags read back (over both threads, after the final frees) must
 * equal the sum written.
 *
 * Threads: both are created for the run; they float on both CPUs.
 */
#include <pthread.h> /* the two threads */

#include "alloc_shim.h"
#include "bench_common.h"

#define SLOTS 10000
#define OPS_PER_THREAD 20000000ULL
#define SWAP_EVERY 100000ULL
#define MIN_SIZE 16
#define MAX_SIZE 1024

typedef struct array_s {
  unsigned char **slot;
  uint32_t *size;
} array_t;

typedef struct worker_s {
  int id;
  uint64_t t_start, t_end;
  uint64_t sum_written, sum_read;
} worker_t;

static array_t arrays[2];
static bench_barrier_t barrier;
static uint64_t ops_per_thread;

static inline void fill(worker_t *w, array_t *a, uint32_t i, uint64_t k,
                        uint32_t sz) {
  unsigned char *p = BENCH_MALLOC(sz);
  if (p == NULL)
    bench_fail("thread %d: allocation of %u B failed", w->id, sz);
  memcpy(p, &k, sizeof k);
  p[sz - 1] = bench_tail_byte(k);
  a->slot[i] = p;
  a->size[i] = sz;
  w->sum_written += k;
}

static inline void drop(worker_t *w, array_t *a, uint32_t i) {
  unsigned char *p = a->slot[i];
  uint64_t k;
  memcpy(&k, p, sizeof k);
  if (p[a->size[i] - 1] != bench_tail_byte(k))
    bench_fail("thread %d: block in slot %u (tag %llx) was overwritten", w->id,
               i, (unsigned long long)k);
  w->sum_read += k;
  BENCH_FREE(p);
}

static void *run_worker(void *arg) {
  worker_t *w = arg;
  bench_pin_thread((unsigned)w->id);
  unsigned sense = 0;
  bench_rng_t rng;
  bench_rng_seed(&rng, BENCH_SEED + (uint64_t)w->id);
  /* Tags are unique across threads: the thread id in the top byte. */
  uint64_t k = ((uint64_t)w->id << 56) + 1;

  array_t *a = &arrays[w->id];
  for (uint32_t i = 0; i < SLOTS; i++)
    fill(w, a, i, k++, bench_rng_range(&rng, MIN_SIZE, MAX_SIZE));

  bench_barrier_wait(&barrier, &sense);
  w->t_start = bench_now_ns();
  uint64_t done = 0;
  for (uint64_t epoch = 0; done < ops_per_thread; epoch++) {
    if (epoch > 0)
      bench_barrier_wait(&barrier, &sense); /* swap point */
    a = &arrays[(w->id + epoch) & 1];
    uint64_t n = ops_per_thread - done;
    if (n > SWAP_EVERY)
      n = SWAP_EVERY;
    for (uint64_t j = 0; j < n; j++) {
      uint32_t i = bench_rng_below(&rng, SLOTS);
      drop(w, a, i);
      fill(w, a, i, k++, bench_rng_range(&rng, MIN_SIZE, MAX_SIZE));
    }
    done += n;
  }
  bench_barrier_wait(&barrier, &sense);
  w->t_end = bench_now_ns();

  /* Each thread empties the array it ended with. */
  for (uint32_t i = 0; i < SLOTS; i++)
    drop(w, a, i);
  bench_thread_done();
  return NULL;
}

int main(int argc, char **argv) {
  ops_per_thread = bench_scaled(OPS_PER_THREAD, bench_parse_scale(argc, argv));
  bench_impl_check();
  for (int t = 0; t < 2; t++) {
    arrays[t].slot = bench_map(SLOTS * sizeof *arrays[t].slot);
    arrays[t].size = bench_map(SLOTS * sizeof *arrays[t].size);
  }

  worker_t w[2] = {{.id = 0}, {.id = 1}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    if (pthread_create(&th[i], NULL, run_worker, &w[i]) != 0)
      bench_fail("pthread_create");
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);

  uint64_t written = w[0].sum_written + w[1].sum_written;
  uint64_t read = w[0].sum_read + w[1].sum_read;
  if (written != read)
    bench_fail("tags read back sum to %llx, written %llx",
               (unsigned long long)read, (unsigned long long)written);
  uint64_t t0 = w[0].t_start < w[1].t_start ? w[0].t_start : w[1].t_start;
  uint64_t t1 = w[0].t_end > w[1].t_end ? w[0].t_end : w[1].t_end;
  bench_check_all_freed();
  bench_report((double)(2 * ops_per_thread) * 1e9 / (double)(t1 - t0), "ops/s",
               "");
  return 0;
}
