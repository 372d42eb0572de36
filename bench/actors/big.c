/* isle — MIT licensed. */
/*
 * actors/big: 1,000 actors; each sends 2,000 PINGs, one at a time, to
 * actors picked at random among the others, and waits for the PONG before
 * sending the next (Savina's "big"). Reports roundtrips/s (2,000,000 round
 * trips over the time from the start to the last actor's DONE).
 *
 * A sink actor gets START from outside, sends START to the 1,000 actors
 * and counts their DONE messages. An actor answers every PING with a new
 * PONG (isle_ctx_reply) at any time; when its own 2,000th PONG arrives it
 * sends DONE to the sink (and keeps answering PINGs). Each actor draws its
 * targets from its own xorshift stream, seeded by its index, so every
 * implementation picks the same targets.
 *
 * Checks: each PONG comes from the actor that was pinged, the sink gets
 * exactly 1,000 DONEs, the PINGs answered add up to 2,000,000, the runtime
 * counted 4,000,000 + 2,001 messages, no actor failed, no dead letters.
 * --scale scales the pings per actor; there are always 1,000 actors.
 *
 * Timing: from the sink's START to its 1,000th DONE, inside the sink.
 */
#include "actors_common.h"

#define ACTORS 1000u
#define PINGS 2000ULL

enum { MSG_START = 1, MSG_PING, MSG_PONG, MSG_DONE };

typedef struct result_s {
  uint64_t t0, t1;
  uint64_t dones;
} result_t;

/* ----- the actors -------------------------------------------------------- */

typedef struct big_args_s {
  uint32_t index;
  uint64_t pings;
  const isle_ref_t *refs; /* all ACTORS, filled by main before the run */
  isle_ref_t sink;
  uint64_t *answered; /* this actor's count of PINGs answered */
} big_args_t;

typedef struct big_s {
  big_args_t a;
  uint64_t got;
  isle_ref_t target;
  bench_rng_t rng;
} big_t;

static int big_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  big_t *b = state;
  b->a = *(const big_args_t *)arg;
  bench_rng_seed(&b->rng, BENCH_SEED + b->a.index);
  return 0;
}

static void big_ping_next(isle_ctx_t *ctx, big_t *b) {
  uint32_t t = bench_rng_below(&b->rng, ACTORS - 1);
  if (t >= b->a.index)
    t++; /* anyone but itself */
  b->target = b->a.refs[t];
  actors_send(ctx, b->target, actors_msg(MSG_PING, 0, NULL));
}

static int big_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  big_t *b = state;
  switch (isle_msg_type(msg)) {
  case MSG_PING:
    (*b->a.answered)++;
    actors_reply(ctx, actors_msg(MSG_PONG, 0, NULL));
    return ISLE_CONTINUE;
  case MSG_PONG:
    if (isle_msg_sender(msg) != b->target)
      bench_fail("actor %u: PONG from %llx, pinged %llx", b->a.index,
                 (unsigned long long)isle_msg_sender(msg),
                 (unsigned long long)b->target);
    if (++b->got == b->a.pings)
      actors_send(ctx, b->a.sink, actors_msg(MSG_DONE, 0, NULL));
    else
      big_ping_next(ctx, b);
    return ISLE_CONTINUE;
  case MSG_START:
    big_ping_next(ctx, b);
    return ISLE_CONTINUE;
  default:
    bench_fail("actor %u: unexpected message type %u", b->a.index,
               isle_msg_type(msg));
    return ISLE_EPROTO;
  }
}

static const isle_actor_type_t big_type = {
    .name = "big",
    .state_size = sizeof(big_t),
    .init = big_init,
    .receive = big_receive,
};

/* ----- the sink ---------------------------------------------------------- */

typedef struct sink_s {
  const isle_ref_t *refs;
  result_t *res;
} sink_t;

typedef struct sink_args_s {
  const isle_ref_t *refs;
  result_t *res;
} sink_args_t;

static int sink_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  const sink_args_t *a = arg;
  sink_t *s = state;
  s->refs = a->refs;
  s->res = a->res;
  return 0;
}

static int sink_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  sink_t *s = state;
  switch (isle_msg_type(msg)) {
  case MSG_START:
    s->res->t0 = bench_now_ns();
    for (uint32_t i = 0; i < ACTORS; i++)
      actors_send(ctx, s->refs[i], actors_msg(MSG_START, 0, NULL));
    return ISLE_CONTINUE;
  case MSG_DONE:
    if (++s->res->dones == ACTORS) {
      s->res->t1 = bench_now_ns();
      return ISLE_STOP;
    }
    return ISLE_CONTINUE;
  default:
    bench_fail("sink: unexpected message type %u", isle_msg_type(msg));
    return ISLE_EPROTO;
  }
}

static const isle_actor_type_t sink_type = {
    .name = "big-sink",
    .state_size = sizeof(sink_t),
    .init = sink_init,
    .receive = sink_receive,
};

int main(int argc, char **argv) {
  actors_args_t args = actors_parse_args(argc, argv);
  const uint64_t pings = bench_scaled(PINGS, args.scale);
  const uint64_t total = pings * ACTORS;
  static result_t res;
  isle_ref_t *refs = bench_map(sizeof(isle_ref_t) * ACTORS);
  uint64_t *answered = bench_map(sizeof(uint64_t) * ACTORS);

  isle_runtime_t *rt = actors_runtime(args.workers);
  sink_args_t sa = {.refs = refs, .res = &res};
  isle_ref_t sink = actors_spawn(rt, &sink_type, &sa);
  for (uint32_t i = 0; i < ACTORS; i++) {
    big_args_t ba = {.index = i,
                     .pings = pings,
                     .refs = refs,
                     .sink = sink,
                     .answered = &answered[i]};
    refs[i] = actors_spawn(rt, &big_type, &ba);
  }
  actors_send_outside(rt, sink, MSG_START, 0);
  isle_runtime_stats_t st = actors_run(rt);

  uint64_t sum = 0;
  for (uint32_t i = 0; i < ACTORS; i++)
    sum += answered[i];
  /* START to the sink, ACTORS STARTs, a PING and a PONG per round trip,
   * ACTORS DONEs. */
  uint64_t expect_msgs = 1 + ACTORS + 2 * total + ACTORS;
  if (res.dones != ACTORS || sum != total || st.messages != expect_msgs)
    bench_fail("%llu DONE, %llu PINGs answered, %llu messages; expected %u, "
               "%llu, %llu",
               (unsigned long long)res.dones, (unsigned long long)sum,
               (unsigned long long)st.messages, ACTORS,
               (unsigned long long)total, (unsigned long long)expect_msgs);
  actors_describe("big", &st);
  fprintf(stderr, "isle big: %u actors x %llu pings to random others\n", ACTORS,
          (unsigned long long)pings);
  isle_runtime_free(rt);
  bench_report((double)total / ((double)(res.t1 - res.t0) * 1e-9),
               "roundtrips/s", "");
  return 0;
}
