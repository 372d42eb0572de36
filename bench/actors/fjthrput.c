/* isle — MIT licensed. */
/*
 * actors/fjthrput: a driver sends round-robin to 64 worker actors, 100,000
 * messages per worker, and each worker does a tiny computation per message
 * (Savina's fork-join throughput). Reports msgs/s (all 6,400,000 messages
 * over the time from the first send to the last worker's report).
 *
 * The driver spawns the 64 workers in its init and sends itself CONTINUE;
 * each CONTINUE sends one chunk of CHUNK (1,000) WORK messages, message k
 * to worker k mod 64 carrying k, then another CONTINUE to itself (the same
 * chunking as counting.c: no receive runs for long). A worker folds each
 * value into an accumulator with fj_step (a multiply-xorshift, a few
 * nanoseconds) and, after its last message, replies DONE(index, count,
 * accumulator) and stops.
 *
 * Checks: every worker reports exactly 100,000 messages and the
 * accumulator main computed beforehand for its share of the values (so
 * every message arrived, once, in order), each worker reports once, the
 * runtime counted N + ceil(N/CHUNK) + 64 messages, no actor failed, no
 * dead letters.
 *
 * Timing: from the driver's first CONTINUE to its 64th DONE, inside the
 * driver.
 */
#include "actors_common.h"

#define WORKERS 64u
#define PER_WORKER 100000ULL
#define CHUNK 1000u

enum { MSG_CONTINUE = 1, MSG_WORK, MSG_DONE };

/* The tiny computation: one step of a multiply-xorshift hash. */
static inline uint64_t fj_step(uint64_t acc, uint64_t v) {
  uint64_t x = acc ^ (v * 0x9E3779B97F4A7C15ULL);
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ULL;
}

typedef struct result_s {
  uint64_t t0, t1;
  uint64_t dones;
  uint64_t continues;
} result_t;

/* ----- worker ------------------------------------------------------------ */

typedef struct worker_args_s {
  uint64_t index, n;
} worker_args_t;

typedef struct worker_s {
  worker_args_t a;
  uint64_t count, acc;
} worker_t;

static int worker_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((worker_t *)state)->a = *(const worker_args_t *)arg;
  return 0;
}

static int worker_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  worker_t *w = state;
  if (isle_msg_type(msg) != MSG_WORK)
    bench_fail("worker: unexpected message type %u", isle_msg_type(msg));
  w->acc = fj_step(w->acc, actors_word(msg, 0));
  if (++w->count < w->a.n)
    return ISLE_CONTINUE;
  uint64_t words[3] = {w->a.index, w->count, w->acc};
  actors_reply(ctx, actors_msg(MSG_DONE, 3, words));
  return ISLE_STOP;
}

static const isle_actor_type_t worker_type = {
    .name = "fj-worker",
    .state_size = sizeof(worker_t),
    .init = worker_init,
    .receive = worker_receive,
};

/* ----- driver ------------------------------------------------------------ */

typedef struct driver_args_s {
  uint64_t per_worker;
  const uint64_t *expect; /* accumulator per worker, computed by main */
  result_t *res;
} driver_args_t;

typedef struct driver_s {
  driver_args_t a;
  uint64_t sent, total;
  uint64_t reported; /* bit i: worker i sent DONE */
  isle_ref_t workers[WORKERS];
} driver_t;

static int driver_init(isle_ctx_t *ctx, void *state, const void *arg) {
  driver_t *d = state;
  d->a = *(const driver_args_t *)arg;
  d->total = d->a.per_worker * WORKERS;
  for (uint64_t i = 0; i < WORKERS; i++) {
    worker_args_t wa = {.index = i, .n = d->a.per_worker};
    int rc = isle_ctx_spawn(ctx, &worker_type, &wa, &d->workers[i]);
    if (rc)
      return rc;
  }
  actors_send1(ctx, isle_ctx_self(ctx), MSG_CONTINUE, 0);
  return 0;
}

static int driver_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  driver_t *d = state;
  switch (isle_msg_type(msg)) {
  case MSG_CONTINUE: {
    if (d->sent == 0)
      d->a.res->t0 = bench_now_ns();
    d->a.res->continues++;
    uint64_t end = d->sent + CHUNK < d->total ? d->sent + CHUNK : d->total;
    for (; d->sent < end; d->sent++)
      actors_send1(ctx, d->workers[d->sent % WORKERS], MSG_WORK, d->sent);
    if (d->sent < d->total)
      actors_send1(ctx, isle_ctx_self(ctx), MSG_CONTINUE, 0);
    return ISLE_CONTINUE;
  }
  case MSG_DONE: {
    uint64_t i = actors_word(msg, 0), count = actors_word(msg, 1),
             acc = actors_word(msg, 2);
    if (i >= WORKERS || (d->reported >> i & 1) || count != d->a.per_worker ||
        acc != d->a.expect[i])
      bench_fail("DONE from worker %llu: count %llu acc %016llx (expected "
                 "%llu, %016llx; reported before: %d)",
                 (unsigned long long)i, (unsigned long long)count,
                 (unsigned long long)acc, (unsigned long long)d->a.per_worker,
                 (unsigned long long)(i < WORKERS ? d->a.expect[i] : 0),
                 i < WORKERS ? (int)(d->reported >> i & 1) : -1);
    d->reported |= 1ULL << i;
    if (++d->a.res->dones == WORKERS) {
      d->a.res->t1 = bench_now_ns();
      return ISLE_STOP;
    }
    return ISLE_CONTINUE;
  }
  default:
    bench_fail("driver: unexpected message type %u", isle_msg_type(msg));
    return ISLE_EPROTO;
  }
}

static const isle_actor_type_t driver_type = {
    .name = "fj-driver",
    .state_size = sizeof(driver_t),
    .init = driver_init,
    .receive = driver_receive,
};

int main(int argc, char **argv) {
  actors_args_t args = actors_parse_args(argc, argv);
  const uint64_t per = bench_scaled(PER_WORKER, args.scale);
  const uint64_t total = per * WORKERS;
  static result_t res;
  static uint64_t expect[WORKERS];
  for (uint64_t k = 0; k < total; k++)
    expect[k % WORKERS] = fj_step(expect[k % WORKERS], k);

  isle_runtime_t *rt = actors_runtime(args.workers);
  driver_args_t da = {.per_worker = per, .expect = expect, .res = &res};
  actors_spawn(rt, &driver_type, &da);
  isle_runtime_stats_t st = actors_run(rt);

  uint64_t chunks = (total + CHUNK - 1) / CHUNK;
  if (res.dones != WORKERS || res.continues != chunks ||
      st.messages != total + chunks + WORKERS)
    bench_fail("%llu DONE, %llu chunks, %llu messages; expected %u, %llu, "
               "%llu",
               (unsigned long long)res.dones, (unsigned long long)res.continues,
               (unsigned long long)st.messages, WORKERS,
               (unsigned long long)chunks,
               (unsigned long long)(total + chunks + WORKERS));
  actors_describe("fjthrput", &st);
  fprintf(stderr,
          "isle fjthrput: %u workers x %llu messages, round-robin in chunks "
          "of %u with a CONTINUE to itself between chunks\n",
          WORKERS, (unsigned long long)per, CHUNK);
  isle_runtime_free(rt);
  bench_report((double)total / ((double)(res.t1 - res.t0) * 1e-9), "msgs/s",
               "");
  return 0;
}
