/* isle — MIT licensed. */
/*
 * heap/pingpong: two threads, each allocates blocks of 16..256 B and sends
 * them to the other through its own SPSC ring, and frees every block it
 * receives; 10,000,000 blocks per direction. Reports ns/msg: wall time from
 * the start barrier until both threads are done, divided by the messages of
 * both directions (20,000,000 at full size).
 *
 * Both threads allocate and both free remotely, so each heap receives
 * foreign frees while it is busy allocating. A thread never blocks on a
 * full ring: it keeps the block it could not send, drains its incoming ring
 * and tries again, so the two can't deadlock.
 *
 * A message holds its sequence number (bytes 0..7), its size (8..11) and a
 * byte derived from the sequence number in its last byte; the receiver
 * checks all three, in order, and the count and sum at the end.
 *
 * Threads: both are created for the run; they float on both CPUs.
 */
#include <pthread.h> /* the two threads */

#include "alloc_shim.h"
#include "bench_common.h"

#define PER_DIRECTION 10000000ULL
#define MIN_SIZE 16
#define MAX_SIZE 256

typedef struct side_s {
  int id;
  uint64_t t_start, t_end;
  uint64_t received, seq_sum;
} side_t;

static bench_ring_t rings[2]; /* rings[i]: messages sent by thread i */
static bench_barrier_t start;
static uint64_t per_direction;

static void *run_side(void *arg) {
  side_t *s = arg;
  bench_pin_thread((unsigned)s->id);
  bench_ring_t *out = &rings[s->id], *in = &rings[1 - s->id];
  unsigned sense = 0, spins = 0;
  bench_rng_t rng;
  bench_rng_seed(&rng, BENCH_SEED + (uint64_t)s->id);
  uint64_t sent = 0, received = 0, sum = 0;
  unsigned char *pending = NULL;

  bench_barrier_wait(&start, &sense);
  s->t_start = bench_now_ns();
  while (sent < per_direction || received < per_direction) {
    int progress = 0;
    if (sent < per_direction) {
      if (pending == NULL) {
        uint32_t sz = bench_rng_range(&rng, MIN_SIZE, MAX_SIZE);
        pending = BENCH_MALLOC(sz);
        if (pending == NULL)
          bench_fail("allocation %llu failed", (unsigned long long)sent);
        memcpy(pending, &sent, sizeof sent);
        memcpy(pending + 8, &sz, sizeof sz);
        pending[sz - 1] = bench_tail_byte(sent);
      }
      if (bench_ring_push_spsc(out, pending)) {
        pending = NULL;
        sent++;
        progress = 1;
      }
    }
    unsigned char *p;
    while ((p = bench_ring_pop_spsc(in)) != NULL) {
      uint64_t seq;
      uint32_t sz;
      memcpy(&seq, p, sizeof seq);
      memcpy(&sz, p + 8, sizeof sz);
      if (seq != received || sz < MIN_SIZE || sz > MAX_SIZE ||
          p[sz - 1] != bench_tail_byte(seq))
        bench_fail("thread %d: message %llu corrupt (seq %llu, size %u)", s->id,
                   (unsigned long long)received, (unsigned long long)seq, sz);
      sum += seq;
      received++;
      BENCH_FREE(p);
      progress = 1;
    }
    if (progress)
      spins = 0;
    else
      bench_wait_step(&spins);
  }
  s->t_end = bench_now_ns();
  s->received = received;
  s->seq_sum = sum;
  bench_thread_done();
  return NULL;
}

int main(int argc, char **argv) {
  per_direction = bench_scaled(PER_DIRECTION, bench_parse_scale(argc, argv));
  bench_impl_check();

  side_t side[2] = {{.id = 0}, {.id = 1}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    if (pthread_create(&th[i], NULL, run_side, &side[i]) != 0)
      bench_fail("pthread_create");
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);

  uint64_t expect = per_direction * (per_direction - 1) / 2;
  for (int i = 0; i < 2; i++)
    if (side[i].received != per_direction || side[i].seq_sum != expect)
      bench_fail("thread %d received %llu messages with sequence sum %llu", i,
                 (unsigned long long)side[i].received,
                 (unsigned long long)side[i].seq_sum);
  uint64_t t0 =
      side[0].t_start < side[1].t_start ? side[0].t_start : side[1].t_start;
  uint64_t t1 = side[0].t_end > side[1].t_end ? side[0].t_end : side[1].t_end;
  bench_check_all_freed();
  bench_report((double)(t1 - t0) / (double)(2 * per_direction), "ns/msg", "");
  return 0;
}
