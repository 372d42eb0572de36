/* isle — MIT licensed. */
/*
 * actors/pingpong: two actors exchange 1,000,000 round trips. Reports
 * ns/roundtrip.
 *
 * `ping` sends PING(seq) to `pong`, which replies PONG(seq) with a new
 * message (isle_ctx_reply); ping checks the sequence number, and sends the
 * next PING when the PONG arrives. Every message is a new one: a round trip
 * is two isle_msg_new, two sends, two receives and two frees.
 *
 * Timing: from ping's START (sent from outside before the run) to its last
 * PONG, both taken inside ping. Checks: every PONG carries the expected
 * sequence number, pong saw exactly N PINGs in order, the runtime counted
 * 2N + 1 messages, no actor failed, no dead letters.
 */
#include "actors_common.h"

#define ROUNDTRIPS 1000000ULL

enum { MSG_START = 1, MSG_PING, MSG_PONG };

typedef struct result_s {
  uint64_t t0, t1;
  uint64_t pongs_seen; /* by ping */
  uint64_t pings_seen; /* by pong */
} result_t;

/* ----- pong -------------------------------------------------------------- */

typedef struct pong_s {
  uint64_t expect;
  result_t *res;
} pong_t;

static int pong_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((pong_t *)state)->res = (result_t *)arg;
  return 0;
}

static int pong_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  pong_t *p = state;
  uint64_t seq = actors_word(msg, 0);
  if (isle_msg_type(msg) != MSG_PING || seq != p->expect)
    bench_fail("pong: message type %u seq %llu, expected PING %llu",
               isle_msg_type(msg), (unsigned long long)seq,
               (unsigned long long)p->expect);
  p->res->pings_seen = ++p->expect;
  actors_reply(ctx, actors_msg(MSG_PONG, 1, &seq));
  return ISLE_CONTINUE;
}

static const isle_actor_type_t pong_type = {
    .name = "pong",
    .state_size = sizeof(pong_t),
    .init = pong_init,
    .receive = pong_receive,
};

/* ----- ping -------------------------------------------------------------- */

typedef struct ping_args_s {
  isle_ref_t pong;
  uint64_t n;
  result_t *res;
} ping_args_t;

typedef struct ping_s {
  ping_args_t a;
  uint64_t got;
} ping_t;

static int ping_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((ping_t *)state)->a = *(const ping_args_t *)arg;
  return 0;
}

static int ping_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  ping_t *p = state;
  switch (isle_msg_type(msg)) {
  case MSG_START:
    p->a.res->t0 = bench_now_ns();
    actors_send1(ctx, p->a.pong, MSG_PING, 0);
    return ISLE_CONTINUE;
  case MSG_PONG: {
    uint64_t seq = actors_word(msg, 0);
    if (seq != p->got)
      bench_fail("ping: PONG %llu, expected %llu", (unsigned long long)seq,
                 (unsigned long long)p->got);
    if (++p->got == p->a.n) {
      p->a.res->t1 = bench_now_ns();
      p->a.res->pongs_seen = p->got;
      return ISLE_STOP;
    }
    actors_send1(ctx, p->a.pong, MSG_PING, p->got);
    return ISLE_CONTINUE;
  }
  default:
    bench_fail("ping: unexpected message type %u", isle_msg_type(msg));
    return ISLE_EPROTO;
  }
}

static const isle_actor_type_t ping_type = {
    .name = "ping",
    .state_size = sizeof(ping_t),
    .init = ping_init,
    .receive = ping_receive,
};

int main(int argc, char **argv) {
  actors_args_t args = actors_parse_args(argc, argv);
  const uint64_t n = bench_scaled(ROUNDTRIPS, args.scale);
  static result_t res;

  isle_runtime_t *rt = actors_runtime(args.workers);
  ping_args_t pa = {
      .pong = actors_spawn(rt, &pong_type, &res), .n = n, .res = &res};
  isle_ref_t ping = actors_spawn(rt, &ping_type, &pa);
  actors_send_outside(rt, ping, MSG_START, 0);
  isle_runtime_stats_t st = actors_run(rt);

  if (res.pongs_seen != n || res.pings_seen != n)
    bench_fail("ping saw %llu PONGs, pong %llu PINGs, expected %llu each",
               (unsigned long long)res.pongs_seen,
               (unsigned long long)res.pings_seen, (unsigned long long)n);
  if (st.messages != 2 * n + 1)
    bench_fail("runtime counted %llu messages, expected %llu",
               (unsigned long long)st.messages,
               (unsigned long long)(2 * n + 1));
  actors_describe("pingpong", &st);
  fprintf(stderr, "isle pingpong: %llu round trips, new message each way\n",
          (unsigned long long)n);
  isle_runtime_free(rt);
  bench_report((double)(res.t1 - res.t0) / (double)n, "ns/roundtrip", "");
  return 0;
}
