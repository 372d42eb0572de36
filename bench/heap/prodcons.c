/* isle — MIT licensed. */
/*
 * heap/prodcons: thread A allocates a block of 16..256 B, writes a few bytes
 * and passes the pointer through an SPSC ring to thread B, which reads the
 * bytes and frees the block; 20,000,000 blocks. Reports ns/msg (wall time
 * from the start barrier to B's last free, divided by the block count).
 *
 * This is the remote-free path: every block is freed by a thread other than
 * the one that allocated it. A message holds its sequence number (bytes
 * 0..7), its size (8..11) and a byte derived from the sequence number in its
 * last byte; B checks all three, in order, and the count and sum at the end.
 *
 * Threads: A and B are both created for the run; they float on both CPUs.
 */
#include <pthread.h> /* the two threads */

#include "alloc_shim.h"
#include "bench_common.h"

#define BLOCKS 20000000ULL
#define MIN_SIZE 16
#define MAX_SIZE 256

static bench_ring_t ring;
static bench_barrier_t start;
static uint64_t blocks;
/* Each written by one thread, read by main after the joins. */
static uint64_t t_start, t_end;
static uint64_t received, seq_sum;

static void *producer(void *arg) {
  (void)arg;
  bench_pin_thread(0);
  unsigned sense = 0, spins = 0;
  bench_rng_t rng;
  bench_rng_seed(&rng, BENCH_SEED);
  bench_barrier_wait(&start, &sense);
  t_start = bench_now_ns();
  for (uint64_t i = 0; i < blocks; i++) {
    uint32_t sz = bench_rng_range(&rng, MIN_SIZE, MAX_SIZE);
    unsigned char *p = BENCH_MALLOC(sz);
    if (p == NULL)
      bench_fail("allocation %llu failed", (unsigned long long)i);
    memcpy(p, &i, sizeof i);
    memcpy(p + 8, &sz, sizeof sz);
    p[sz - 1] = bench_tail_byte(i);
    while (!bench_ring_push_spsc(&ring, p))
      bench_wait_step(&spins);
    spins = 0;
  }
  bench_thread_done();
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  bench_pin_thread(1);
  unsigned sense = 0, spins = 0;
  uint64_t sum = 0;
  bench_barrier_wait(&start, &sense);
  for (uint64_t i = 0; i < blocks; i++) {
    unsigned char *p;
    while ((p = bench_ring_pop_spsc(&ring)) == NULL)
      bench_wait_step(&spins);
    spins = 0;
    uint64_t seq;
    uint32_t sz;
    memcpy(&seq, p, sizeof seq);
    memcpy(&sz, p + 8, sizeof sz);
    if (seq != i || sz < MIN_SIZE || sz > MAX_SIZE ||
        p[sz - 1] != bench_tail_byte(seq))
      bench_fail("message %llu corrupt (seq %llu, size %u)",
                 (unsigned long long)i, (unsigned long long)seq, sz);
    sum += seq;
    BENCH_FREE(p);
  }
  t_end = bench_now_ns();
  received = blocks;
  seq_sum = sum;
  bench_thread_done();
  return NULL;
}

int main(int argc, char **argv) {
  blocks = bench_scaled(BLOCKS, bench_parse_scale(argc, argv));
  bench_impl_check();

  pthread_t a, b;
  if (pthread_create(&b, NULL, consumer, NULL) != 0 ||
      pthread_create(&a, NULL, producer, NULL) != 0)
    bench_fail("pthread_create");
  pthread_join(a, NULL);
  pthread_join(b, NULL);

  if (received != blocks || seq_sum != blocks * (blocks - 1) / 2)
    bench_fail("received %llu blocks with sequence sum %llu",
               (unsigned long long)received, (unsigned long long)seq_sum);
  bench_check_all_freed();
  bench_report((double)(t_end - t_start) / (double)blocks, "ns/msg", "");
  return 0;
}
