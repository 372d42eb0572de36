/* isle — MIT licensed. */
/*
 * The body shared by the mailbox workloads (spsc.c, mpsc.c): producers
 * allocate a message, fill its payload and push it onto one queue; the one
 * consumer pops, checks and frees every message. Each workload defines
 *
 *   MB_PRODUCERS        producer threads (1 or 2)
 *   MB_PER_PRODUCER     messages each producer sends (scaled by --scale)
 *
 * and includes this file, which defines main(). The queue is chosen at
 * compile time, so one source measures every implementation:
 *
 *   -DBENCH_Q_ISLE   isle_msg_new + isle_mailbox_push_mpsc; the consumer
 *                    takes up to MB_BATCH messages per
 *                    isle_mailbox_pop_batch_local and frees each with
 *                    isle_msg_free, a remote free into the producer's heap.
 *   -DBENCH_Q_CK     Concurrency Kit's ck_fifo_mpmc: the payload and the
 *                    queue entry are two malloc'd blocks (glibc); the
 *                    consumer frees the payload and the entry that
 *                    ck_fifo_mpmc_dequeue hands back as garbage (the old
 *                    stub: ck's queue always keeps one entry as its head).
 *   -DBENCH_Q_MUTEX  an intrusive singly linked queue (head, tail) guarded by
 *                    one pthread mutex; nodes malloc'd (glibc); the consumer
 *                    detaches the whole list per lock hold (head = tail =
 *                    NULL), then checks and frees outside the lock. (Taking
 *                    up to 64 nodes by walking them under the lock measured
 *                    slower than one node per hold: 210 vs 164 ns/msg on
 *                    spsc; the whole list is the strongest simple variant.)
 *
 * `--pop one` (a diagnostic, not used by bench/run) makes the isle and
 * mutex consumers take one message per call (isle_mailbox_pop_local / one
 * node per lock hold) instead of a batch; ck always dequeues one at a time.
 *
 * The payload is { producer id, sequence number, checksum word }. The
 * consumer checks for every message that the producer id is valid, that
 * the sequence number is exactly the next one from that producer (per-
 * producer FIFO order, nothing lost or duplicated) and that the checksum
 * matches; at the end, that each producer's count and sequence sum are
 * complete. Any mismatch exits non-zero.
 *
 * Timing: wall time from the start barrier (all threads) to the consumer's
 * last free, divided by the total number of messages: ns/msg. The
 * mailboxes are unbounded (capacity 0 for isle); producers never wait.
 *
 * Threads and placement (two CPUs): producer i is pinned to CPU i % 2 and
 * the consumer to CPU 1 (bench_pin_thread). spsc: producer on CPU 0,
 * consumer on CPU 1, one thread per CPU. mpsc: producer 0 alone on CPU 0,
 * producer 1 and the consumer share CPU 1 (two producers, one per core, as
 * docs/benchmarks.md asks; the consumer has to share with one of them). An
 * empty queue makes the consumer spin briefly, then sched_yield
 * (bench_wait_step), which on a shared CPU hands it to the producer there.
 */
#ifndef BENCH_MAILBOX_BENCH_H
#define BENCH_MAILBOX_BENCH_H

#include <pthread.h> /* threads, the mutex queue */
#include <sched.h>   /* sched_getcpu */

#ifdef BENCH_Q_ISLE
#define BENCH_ISLE /* alloc_shim: isle heap checks */
#endif
#include "../heap/alloc_shim.h"
#include "../heap/bench_common.h"

#if defined(BENCH_Q_ISLE) + defined(BENCH_Q_CK) + defined(BENCH_Q_MUTEX) != 1
#error "define exactly one of BENCH_Q_ISLE, BENCH_Q_CK, BENCH_Q_MUTEX"
#endif

#ifndef MB_PRODUCERS
#error "MB_PRODUCERS not defined"
#endif
#ifndef MB_PER_PRODUCER
#error "MB_PER_PRODUCER not defined"
#endif

/* Messages taken per batch pop (isle, mutex). */
#define MB_BATCH 64
/* A consumer that sees no message for this long fails the run (a lost
 * message would otherwise hang it until bench/run's timeout). */
#define MB_STALL_NS (60ULL * 1000000000ULL)

/* ===== Payload and checks ============================================== */

typedef struct mb_payload_s {
  uint32_t producer;
  uint32_t zero; /* always 0; checked */
  uint64_t seq;
  uint64_t check;
} mb_payload_t;

static inline uint64_t mb_checksum(uint32_t producer, uint64_t seq) {
  uint64_t z = seq + ((uint64_t)producer << 40) + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  return z ^ (z >> 27);
}

static uint64_t per_producer; /* messages each producer sends */
static int pop_one;           /* --pop one */

/* Consumer state: the next sequence number expected from each producer. */
static uint64_t expect[MB_PRODUCERS];
static uint64_t seq_sum[MB_PRODUCERS];

static inline void mb_fill(mb_payload_t *p, uint32_t producer, uint64_t seq) {
  p->producer = producer;
  p->zero = 0;
  p->seq = seq;
  p->check = mb_checksum(producer, seq);
}

static inline void mb_consume(const mb_payload_t *p) {
  uint32_t id = p->producer;
  if (id >= MB_PRODUCERS || p->zero != 0)
    bench_fail("message with producer id %u (pad %u)", id, p->zero);
  if (p->seq != expect[id])
    bench_fail("producer %u: got sequence %llu, expected %llu (order or loss)",
               id, (unsigned long long)p->seq, (unsigned long long)expect[id]);
  if (p->check != mb_checksum(id, p->seq))
    bench_fail("producer %u sequence %llu: checksum mismatch", id,
               (unsigned long long)p->seq);
  expect[id] = p->seq + 1;
  seq_sum[id] += p->seq;
}

/* ===== The queues ====================================================== */
/*
 * Each defines:
 *   mb_setup()      main, before the threads start
 *   mb_send(id, s)  producer: allocate, fill, push
 *   mb_drain()      consumer: pop what is there (up to a batch), consume
 *                   and free each; returns how many
 *   mb_teardown()   consumer, after its last message
 */

#if defined(BENCH_Q_ISLE)
#define MB_IMPL "isle"

static isle_mailbox_t *mb;

static void mb_setup(void) {
  if (isle_mailbox_new(0, &mb) != 0)
    bench_fail("isle_mailbox_new");
}

static inline void mb_send(uint32_t id, uint64_t seq) {
  isle_msg_t *m = isle_msg_new(1, sizeof(mb_payload_t));
  if (m == NULL)
    bench_fail("isle_msg_new failed at producer %u message %llu", id,
               (unsigned long long)seq);
  mb_fill(isle_msg_data(m), id, seq);
  int rc = isle_mailbox_push_mpsc(mb, m, NULL);
  if (rc != 0)
    bench_fail("isle_mailbox_push_mpsc returned %d", rc);
}

static inline size_t mb_drain(void) {
  isle_msg_t *got[MB_BATCH];
  size_t n;
  if (pop_one) {
    got[0] = isle_mailbox_pop_local(mb, NULL);
    n = got[0] != NULL;
  } else {
    n = isle_mailbox_pop_batch_local(mb, got, MB_BATCH, NULL);
  }
  for (size_t i = 0; i < n; i++) {
    mb_consume(isle_msg_data(got[i]));
    isle_msg_free(got[i]);
  }
  return n;
}

static void mb_teardown(void) {
  if (isle_mailbox_count(mb) != 0)
    bench_fail("mailbox holds %zu messages after the last one",
               isle_mailbox_count(mb));
  isle_mailbox_free(mb);
}

#elif defined(BENCH_Q_CK)
#define MB_IMPL "ck"
#include <ck_fifo.h>

#ifndef CK_F_FIFO_MPMC
#error                                                                         \
    "ck_fifo_mpmc is not available on this platform (needs CK_F_PR_CAS_PTR_2)"
#endif

static ck_fifo_mpmc_t fifo __attribute__((aligned(BENCH_CACHE_LINE)));

static void mb_setup(void) {
  ck_fifo_mpmc_entry_t *stub = malloc(sizeof *stub);
  if (stub == NULL)
    bench_fail("malloc of the ck stub entry");
  ck_fifo_mpmc_init(&fifo, stub);
}

static inline void mb_send(uint32_t id, uint64_t seq) {
  mb_payload_t *p = malloc(sizeof *p);
  ck_fifo_mpmc_entry_t *e = malloc(sizeof *e);
  if (p == NULL || e == NULL)
    bench_fail("malloc failed at producer %u message %llu", id,
               (unsigned long long)seq);
  mb_fill(p, id, seq);
  ck_fifo_mpmc_enqueue(&fifo, e, p);
}

static inline size_t mb_drain(void) {
  size_t n = 0;
  while (n < MB_BATCH) {
    void *v;
    ck_fifo_mpmc_entry_t *garbage;
    if (!ck_fifo_mpmc_dequeue(&fifo, &v, &garbage))
      break;
    mb_consume(v);
    free(v);
    /* The entry that was the head (stub) before this dequeue; the
     * message's own entry is the head now and comes back next time. */
    free(garbage);
    n++;
  }
  return n;
}

static void mb_teardown(void) {
  ck_fifo_mpmc_entry_t *garbage;
  void *v;
  if (ck_fifo_mpmc_dequeue(&fifo, &v, &garbage))
    bench_fail("ck fifo not empty after the last message");
  ck_fifo_mpmc_deinit(&fifo, &garbage);
  free(garbage);
}

#else /* BENCH_Q_MUTEX */
#define MB_IMPL "mutex"

typedef struct mb_node_s {
  struct mb_node_s *next;
  mb_payload_t p;
} mb_node_t;

static struct {
  _Alignas(BENCH_CACHE_LINE) pthread_mutex_t lock;
  mb_node_t *head, *tail;
} q = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void mb_setup(void) {}

static inline void mb_send(uint32_t id, uint64_t seq) {
  mb_node_t *n = malloc(sizeof *n);
  if (n == NULL)
    bench_fail("malloc failed at producer %u message %llu", id,
               (unsigned long long)seq);
  n->next = NULL;
  mb_fill(&n->p, id, seq);
  pthread_mutex_lock(&q.lock);
  if (q.tail)
    q.tail->next = n;
  else
    q.head = n;
  q.tail = n;
  pthread_mutex_unlock(&q.lock);
}

static inline size_t mb_drain(void) {
  mb_node_t *first;
  size_t n = 0;
  pthread_mutex_lock(&q.lock);
  first = q.head;
  if (pop_one) {
    /* One node per lock hold. */
    if (first) {
      q.head = first->next;
      if (q.head == NULL)
        q.tail = NULL;
      first->next = NULL;
    }
  } else {
    /* The whole list in O(1): the lock is held for two stores. */
    q.head = q.tail = NULL;
  }
  pthread_mutex_unlock(&q.lock);
  while (first) {
    mb_node_t *next = first->next; /* read before the free */
    mb_consume(&first->p);
    free(first);
    first = next;
    n++;
  }
  return n;
}

static void mb_teardown(void) {
  if (q.head != NULL)
    bench_fail("mutex queue not empty after the last message");
}
#endif

/* ===== Threads ========================================================= */

/* Sense-reversing barrier for MB_PRODUCERS + 1 threads. */
static struct {
  _Alignas(BENCH_CACHE_LINE) atomic_uint xarrived;
  atomic_uint xsense;
} start;

static void mb_barrier_wait(void) {
  unsigned sense =
      atomic_load_explicit(&start.xsense, memory_order_relaxed) ^ 1u;
  /* acq_rel: the last arriver's acquire sees every thread's setup. */
  if (atomic_fetch_add_explicit(&start.xarrived, 1, memory_order_acq_rel) ==
      MB_PRODUCERS) {
    atomic_store_explicit(&start.xarrived, 0, memory_order_relaxed);
    /* release: pairs with the waiters' acquire load. */
    atomic_store_explicit(&start.xsense, sense, memory_order_release);
  } else {
    unsigned spins = 0;
    while (atomic_load_explicit(&start.xsense, memory_order_acquire) != sense)
      bench_wait_step(&spins);
  }
}

/* Written by the consumer, read by main after the joins. */
static uint64_t t_start, t_end, received;
static int cpu_of[MB_PRODUCERS + 1]; /* [MB_PRODUCERS] = consumer */

static void *producer(void *arg) {
  uint32_t id = (uint32_t)(uintptr_t)arg;
  bench_pin_thread(id);
  cpu_of[id] = sched_getcpu();
  mb_barrier_wait();
  for (uint64_t s = 0; s < per_producer; s++)
    mb_send(id, s);
  bench_thread_done();
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  bench_pin_thread(1);
  cpu_of[MB_PRODUCERS] = sched_getcpu();
  const uint64_t total = per_producer * MB_PRODUCERS;
  uint64_t got = 0, idle_since = 0;
  unsigned spins = 0;
  mb_barrier_wait();
  t_start = bench_now_ns();
  while (got < total) {
    size_t n = mb_drain();
    if (n) {
      got += n;
      spins = 0;
      idle_since = 0;
      continue;
    }
    bench_wait_step(&spins);
    if (spins == 0) { /* just yielded: check for a stall */
      uint64_t now = bench_now_ns();
      if (idle_since == 0)
        idle_since = now;
      else if (now - idle_since > MB_STALL_NS)
        bench_fail("consumer stalled at %llu of %llu messages",
                   (unsigned long long)got, (unsigned long long)total);
    }
  }
  t_end = bench_now_ns();
  received = got;
  mb_teardown();
  bench_thread_done();
  return NULL;
}

static void mb_parse_args(int argc, char **argv, double *scale) {
  *scale = 1.0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      char *end;
      *scale = strtod(argv[++i], &end);
      if (*end != '\0' || !(*scale > 0.0) || *scale > 100.0)
        bench_fail("bad --scale value '%s'", argv[i]);
    } else if (strcmp(argv[i], "--pop") == 0 && i + 1 < argc) {
      i++;
      if (strcmp(argv[i], "one") == 0)
        pop_one = 1;
      else if (strcmp(argv[i], "batch") == 0)
        pop_one = 0;
      else
        bench_fail("bad --pop value '%s' (one or batch)", argv[i]);
    } else {
      fprintf(stderr, "usage: %s [--scale X] [--pop one|batch]\n", argv[0]);
      exit(2);
    }
  }
}

int main(int argc, char **argv) {
  double scale;
  mb_parse_args(argc, argv, &scale);
  per_producer = bench_scaled(MB_PER_PRODUCER, scale);
  bench_impl_check();
  mb_setup();

  pthread_t c, p[MB_PRODUCERS];
  if (pthread_create(&c, NULL, consumer, NULL) != 0)
    bench_fail("pthread_create");
  for (uintptr_t i = 0; i < MB_PRODUCERS; i++)
    if (pthread_create(&p[i], NULL, producer, (void *)i) != 0)
      bench_fail("pthread_create");
  for (int i = 0; i < MB_PRODUCERS; i++)
    pthread_join(p[i], NULL);
  pthread_join(c, NULL);

  const uint64_t total = per_producer * MB_PRODUCERS;
  if (received != total)
    bench_fail("received %llu of %llu messages", (unsigned long long)received,
               (unsigned long long)total);
  for (int i = 0; i < MB_PRODUCERS; i++)
    if (expect[i] != per_producer ||
        seq_sum[i] != per_producer * (per_producer - 1) / 2)
      bench_fail("producer %d: %llu messages, sequence sum %llu", i,
                 (unsigned long long)expect[i], (unsigned long long)seq_sum[i]);
  bench_check_all_freed();

  fprintf(stderr, "%s: %d producer(s) x %llu messages;", MB_IMPL, MB_PRODUCERS,
          (unsigned long long)per_producer);
  for (int i = 0; i < MB_PRODUCERS; i++)
    fprintf(stderr, " producer %d on CPU %d,", i, cpu_of[i]);
  fprintf(stderr, " consumer on CPU %d; consumer pops %s\n",
          cpu_of[MB_PRODUCERS],
#if defined(BENCH_Q_CK)
          "one per ck_fifo_mpmc_dequeue"
#elif defined(BENCH_Q_ISLE)
          pop_one ? "one per isle_mailbox_pop_local"
                  : "up to 64 per isle_mailbox_pop_batch_local"
#else
          pop_one ? "one per lock hold" : "the whole list per lock hold"
#endif
  );
  bench_report((double)(t_end - t_start) / (double)total, "ns/msg", "");
  return 0;
}

#endif /* BENCH_MAILBOX_BENCH_H */
