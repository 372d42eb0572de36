/* isle — MIT licensed. */
/*
 * actors/ring: 1,000 actors in a ring pass one token 10,000,000 hops.
 * Reports msgs/s (hops per second).
 *
 * Each member learns its successor from a NEXT message (sent from outside
 * before the run). The token carries the hops still to go; a member that
 * gets it with hops left decrements the count and forwards the token
 * message itself to its successor (isle_ctx_send of the message being
 * received: zero-copy, no allocation). The member that gets it at 0 ends
 * the run.
 *
 * Timing: from the first member's first sight of the token to the last
 * member's, both inside the actors. Checks: the hop counts of all members
 * add up to exactly N, the token stops at member N mod 1,000, the runtime
 * counted N + 1 + 1,000 messages, no actor failed, no dead letters.
 * --scale scales the hops; the ring keeps 1,000 members.
 */
#include "actors_common.h"

#define MEMBERS 1000u
#define HOPS 10000000ULL

enum { MSG_NEXT = 1, MSG_TOKEN };

typedef struct result_s {
  uint64_t t0, t1;
  uint64_t hops;      /* the token's count at the start */
  int64_t stopped_at; /* member index where the token stopped */
} result_t;

typedef struct member_args_s {
  uint32_t index;
  uint64_t *forwards; /* this member's tally, read by main after the run */
  result_t *res;
} member_args_t;

typedef struct member_s {
  isle_ref_t next;
  member_args_t a;
} member_t;

static int member_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((member_t *)state)->a = *(const member_args_t *)arg;
  return 0;
}

static int member_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  member_t *m = state;
  if (isle_msg_type(msg) == MSG_NEXT) {
    m->next = actors_word(msg, 0);
    return ISLE_CONTINUE;
  }
  uint64_t *left = isle_msg_data(msg);
  if (*left == m->a.res->hops && m->a.res->t0 == 0)
    m->a.res->t0 = bench_now_ns();
  if (*left == 0) {
    m->a.res->t1 = bench_now_ns();
    m->a.res->stopped_at = m->a.index;
    return ISLE_CONTINUE; /* the runtime frees the token */
  }
  (*left)--;
  (*m->a.forwards)++;
  actors_send(ctx, m->next, msg); /* the token itself: zero-copy */
  return ISLE_CONTINUE;
}

static const isle_actor_type_t member_type = {
    .name = "ring-member",
    .state_size = sizeof(member_t),
    .init = member_init,
    .receive = member_receive,
};

int main(int argc, char **argv) {
  actors_args_t args = actors_parse_args(argc, argv);
  const uint64_t hops = bench_scaled(HOPS, args.scale);
  static result_t res;
  res.hops = hops;
  res.stopped_at = -1;
  uint64_t *forwards = bench_map(sizeof(uint64_t) * MEMBERS);
  isle_ref_t *refs = bench_map(sizeof(isle_ref_t) * MEMBERS);

  isle_runtime_t *rt = actors_runtime(args.workers);
  for (uint32_t i = 0; i < MEMBERS; i++) {
    member_args_t ma = {.index = i, .forwards = &forwards[i], .res = &res};
    refs[i] = actors_spawn(rt, &member_type, &ma);
  }
  for (uint32_t i = 0; i < MEMBERS; i++)
    actors_send_outside(rt, refs[i], MSG_NEXT, refs[(i + 1) % MEMBERS]);
  actors_send_outside(rt, refs[0], MSG_TOKEN, hops);
  isle_runtime_stats_t st = actors_run(rt);

  uint64_t total = 0;
  for (uint32_t i = 0; i < MEMBERS; i++)
    total += forwards[i];
  if (total != hops || res.stopped_at != (int64_t)(hops % MEMBERS))
    bench_fail("token forwarded %llu times (expected %llu), stopped at "
               "member %lld (expected %llu)",
               (unsigned long long)total, (unsigned long long)hops,
               (long long)res.stopped_at, (unsigned long long)(hops % MEMBERS));
  if (st.messages != hops + 1 + MEMBERS)
    bench_fail("runtime counted %llu messages, expected %llu",
               (unsigned long long)st.messages,
               (unsigned long long)(hops + 1 + MEMBERS));
  actors_describe("ring", &st);
  fprintf(stderr,
          "isle ring: %u members, %llu hops, token forwarded "
          "zero-copy\n",
          MEMBERS, (unsigned long long)hops);
  isle_runtime_free(rt);
  bench_report((double)hops / ((double)(res.t1 - res.t0) * 1e-9), "msgs/s", "");
  return 0;
}
