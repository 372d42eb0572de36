/* isle — MIT licensed. */
/*
 * actors/counting: one producer actor sends 10,000,000 increments to one
 * counter actor, then asks for the total. Reports msgs/s (increments per
 * second).
 *
 * The producer sends in chunks of CHUNK (1,000) INC messages per receive
 * and, between chunks, re-sends itself a CONTINUE message, so that a
 * receive never runs for long and the counter (on this worker, with one
 * worker) gets to run between chunks; the pattern of samples/counter.c.
 * With two or more workers the counter runs on another worker meanwhile.
 * After the last chunk the producer sends GET; the counter replies TOTAL
 * (count, sum of the payloads) and the producer checks it.
 *
 * Each INC carries its sequence number i (0..N-1). Checks: the counter saw
 * exactly N increments in the producer's order, TOTAL's count is N and its
 * sum N(N-1)/2, the runtime counted N + ceil(N/CHUNK) + 2 messages, no
 * actor failed, no dead letters.
 *
 * Timing: from the producer's first CONTINUE (sent to itself during init)
 * to its receipt of TOTAL, inside the producer.
 */
#include "actors_common.h"

#define INCREMENTS 10000000ULL
#define CHUNK 1000u

enum { MSG_INC = 1, MSG_GET, MSG_TOTAL, MSG_CONTINUE };

typedef struct result_s {
  uint64_t t0, t1;
  uint64_t count, sum; /* from TOTAL */
  uint64_t continues;
} result_t;

/* ----- counter ----------------------------------------------------------- */

typedef struct counter_s {
  uint64_t count, sum;
} counter_t;

static int counter_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  counter_t *c = state;
  switch (isle_msg_type(msg)) {
  case MSG_INC: {
    uint64_t v = actors_word(msg, 0);
    if (v != c->count)
      bench_fail("counter: increment %llu arrived as number %llu",
                 (unsigned long long)v, (unsigned long long)c->count);
    c->count++;
    c->sum += v;
    return ISLE_CONTINUE;
  }
  case MSG_GET: {
    uint64_t w[2] = {c->count, c->sum};
    actors_reply(ctx, actors_msg(MSG_TOTAL, 2, w));
    return ISLE_STOP;
  }
  default:
    bench_fail("counter: unexpected message type %u", isle_msg_type(msg));
    return ISLE_EPROTO;
  }
}

static const isle_actor_type_t counter_type = {
    .name = "counter",
    .state_size = sizeof(counter_t),
    .receive = counter_receive,
};

/* ----- producer ---------------------------------------------------------- */

typedef struct producer_args_s {
  uint64_t n;
  result_t *res;
} producer_args_t;

typedef struct producer_s {
  producer_args_t a;
  isle_ref_t counter;
  uint64_t sent;
} producer_t;

static int producer_init(isle_ctx_t *ctx, void *state, const void *arg) {
  producer_t *p = state;
  p->a = *(const producer_args_t *)arg;
  int rc = isle_ctx_spawn(ctx, &counter_type, NULL, &p->counter);
  if (rc)
    return rc;
  actors_send1(ctx, isle_ctx_self(ctx), MSG_CONTINUE, 0);
  return 0;
}

static int producer_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  producer_t *p = state;
  switch (isle_msg_type(msg)) {
  case MSG_CONTINUE: {
    if (p->sent == 0)
      p->a.res->t0 = bench_now_ns();
    p->a.res->continues++;
    uint64_t end = p->sent + CHUNK < p->a.n ? p->sent + CHUNK : p->a.n;
    for (; p->sent < end; p->sent++)
      actors_send1(ctx, p->counter, MSG_INC, p->sent);
    if (p->sent < p->a.n)
      actors_send1(ctx, isle_ctx_self(ctx), MSG_CONTINUE, 0);
    else
      actors_send(ctx, p->counter, actors_msg(MSG_GET, 0, NULL));
    return ISLE_CONTINUE;
  }
  case MSG_TOTAL:
    p->a.res->t1 = bench_now_ns();
    p->a.res->count = actors_word(msg, 0);
    p->a.res->sum = actors_word(msg, 1);
    return ISLE_STOP;
  default:
    bench_fail("producer: unexpected message type %u", isle_msg_type(msg));
    return ISLE_EPROTO;
  }
}

static const isle_actor_type_t producer_type = {
    .name = "producer",
    .state_size = sizeof(producer_t),
    .init = producer_init,
    .receive = producer_receive,
};

int main(int argc, char **argv) {
  actors_args_t args = actors_parse_args(argc, argv);
  const uint64_t n = bench_scaled(INCREMENTS, args.scale);
  static result_t res;

  isle_runtime_t *rt = actors_runtime(args.workers);
  producer_args_t pa = {.n = n, .res = &res};
  actors_spawn(rt, &producer_type, &pa);
  isle_runtime_stats_t st = actors_run(rt);

  if (res.count != n || res.sum != n * (n - 1) / 2)
    bench_fail("TOTAL: count %llu sum %llu, expected %llu and %llu",
               (unsigned long long)res.count, (unsigned long long)res.sum,
               (unsigned long long)n, (unsigned long long)(n * (n - 1) / 2));
  uint64_t chunks = (n + CHUNK - 1) / CHUNK;
  /* n INC, `chunks` CONTINUE, GET, TOTAL. */
  if (res.continues != chunks || st.messages != n + chunks + 2)
    bench_fail("%llu chunks and %llu messages, expected %llu and %llu",
               (unsigned long long)res.continues,
               (unsigned long long)st.messages, (unsigned long long)chunks,
               (unsigned long long)(n + chunks + 2));
  actors_describe("counting", &st);
  fprintf(stderr,
          "isle counting: %llu increments in chunks of %u, the producer "
          "re-sending itself CONTINUE between chunks\n",
          (unsigned long long)n, CHUNK);
  isle_runtime_free(rt);
  bench_report((double)n / ((double)(res.t1 - res.t0) * 1e-9), "msgs/s", "");
  return 0;
}
