/* isle — MIT licensed. */
/*
 * actors/spawn: a 10-ary tree of actors, the root at depth 0 and the leaves
 * at depth 6: 1,111,111 actors. Leaves reply a number, parents sum upward,
 * the root checks the total. Reports ns/actor (the whole build and sum,
 * divided by the number of actors), peak rss_kb, and bytes_per_actor =
 * (peak RSS - RSS before the first spawn) / actors, which bench/run turns
 * into its own line (bench=spawn_mem unit=bytes/actor).
 *
 * Every node sends itself START in its init (the idiom for "act once
 * scheduled": init runs on the spawning thread, inside isle_ctx_spawn). On
 * START an inner node spawns its 10 children; a leaf sends its parent
 * RESULT(1, leaf number), the leaf number being its position 0..10^6-1
 * among the leaves. An inner node adds up its children's RESULTs and, when
 * all 10 are in, sends RESULT(subtree size, leaf-number sum) to its parent;
 * the root records the total. No actor stops: at the end all 1,111,111 are
 * alive and idle (the memory figure is per idle actor), and
 * isle_runtime_free ends them after the measurement.
 *
 * Checks: the root's total is 1,111,111 actors and a leaf-number sum of
 * L(L-1)/2 (L = 10^6 leaves), the runtime spawned 1,111,111 actors and
 * counted 2 x 1,111,111 - 1 messages, no actor failed, no dead letters.
 * --scale X makes the tree depth 6 + round(log10 X) (--quick: depth 5,
 * 111,111 actors).
 *
 * Timing: from the root's START to its last RESULT, inside the root.
 */
#include "actors_common.h"

#define FANOUT 10u
#define DEPTH 6

enum { MSG_START = 1, MSG_RESULT };

typedef struct result_s {
  uint64_t t0, t1;
  uint64_t count, sum;
} result_t;

/* Read-only during the run. */
static unsigned max_depth;
static result_t res;

typedef struct node_args_s {
  isle_ref_t parent; /* ISLE_REF_NONE for the root */
  uint32_t index;    /* position among the nodes of its depth */
  uint32_t depth;
} node_args_t;

typedef struct node_s {
  isle_ref_t parent;
  uint32_t index;
  uint16_t depth;
  uint16_t replies;
  uint64_t count, sum;
} node_t;

static const isle_actor_type_t node_type;

static int node_init(isle_ctx_t *ctx, void *state, const void *arg) {
  const node_args_t *a = arg;
  node_t *n = state;
  n->parent = a->parent;
  n->index = a->index;
  n->depth = (uint16_t)a->depth;
  actors_send(ctx, isle_ctx_self(ctx), actors_msg(MSG_START, 0, NULL));
  return 0;
}

static int node_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  node_t *n = state;
  switch (isle_msg_type(msg)) {
  case MSG_START:
    if (n->parent == ISLE_REF_NONE)
      res.t0 = bench_now_ns();
    if (n->depth == max_depth) {
      uint64_t w[2] = {1, n->index};
      actors_send(ctx, n->parent, actors_msg(MSG_RESULT, 2, w));
      return ISLE_CONTINUE;
    }
    for (uint32_t i = 0; i < FANOUT; i++) {
      node_args_t a = {.parent = isle_ctx_self(ctx),
                       .index = n->index * FANOUT + i,
                       .depth = n->depth + 1u};
      int rc = isle_ctx_spawn(ctx, &node_type, &a, NULL);
      if (rc)
        bench_fail("isle_ctx_spawn at depth %u: %s", n->depth + 1u,
                   isle_strerror(rc));
    }
    return ISLE_CONTINUE;
  case MSG_RESULT:
    n->count += actors_word(msg, 0);
    n->sum += actors_word(msg, 1);
    if (++n->replies < FANOUT)
      return ISLE_CONTINUE;
    if (n->parent == ISLE_REF_NONE) {
      res.t1 = bench_now_ns();
      res.count = n->count + 1;
      res.sum = n->sum;
    } else {
      uint64_t w[2] = {n->count + 1, n->sum};
      actors_send(ctx, n->parent, actors_msg(MSG_RESULT, 2, w));
    }
    return ISLE_CONTINUE;
  default:
    bench_fail("node: unexpected message type %u", isle_msg_type(msg));
    return ISLE_EPROTO;
  }
}

static const isle_actor_type_t node_type = {
    .name = "tree-node",
    .state_size = sizeof(node_t),
    .init = node_init,
    .receive = node_receive,
};

int main(int argc, char **argv) {
  actors_args_t args = actors_parse_args(argc, argv);
  long d = DEPTH + lround(log10(args.scale));
  max_depth = (unsigned)(d < 1 ? 1 : d > 7 ? 7 : d);
  uint64_t leaves = 1, actors = 0;
  for (unsigned i = 0; i <= max_depth; i++) {
    actors += leaves;
    if (i < max_depth)
      leaves *= FANOUT;
  }

  isle_runtime_t *rt = actors_runtime(args.workers);
  long base_kb = bench_rss_kb();
  node_args_t root = {.parent = ISLE_REF_NONE, .index = 0, .depth = 0};
  actors_spawn(rt, &node_type, &root);
  isle_runtime_stats_t st = actors_run(rt);
  long peak_kb = bench_peak_rss_kb();

  if (res.count != actors || res.sum != leaves * (leaves - 1) / 2)
    bench_fail("root total: %llu actors, leaf sum %llu; expected %llu and "
               "%llu",
               (unsigned long long)res.count, (unsigned long long)res.sum,
               (unsigned long long)actors,
               (unsigned long long)(leaves * (leaves - 1) / 2));
  if (st.spawned != actors || st.actors_live != actors ||
      st.messages != 2 * actors - 1)
    bench_fail(
        "runtime: %llu spawned, %llu live, %llu messages; expected "
        "%llu, %llu, %llu",
        (unsigned long long)st.spawned, (unsigned long long)st.actors_live,
        (unsigned long long)st.messages, (unsigned long long)actors,
        (unsigned long long)actors, (unsigned long long)(2 * actors - 1));
  actors_describe("spawn", &st);
  isle_runtime_free(rt);
  /* VmHWM can lag behind the real peak (per-thread RSS counters are folded
   * in lazily): the larger of the readings after the run and after the
   * free (which unmaps, and so folds the counters in). */
  long peak2 = bench_peak_rss_kb();
  if (peak2 > peak_kb)
    peak_kb = peak2;
  double per_actor = (double)(peak_kb - base_kb) * 1024.0 / (double)actors;
  fprintf(stderr,
          "isle spawn: depth %u, %llu actors alive and idle at the end; RSS "
          "%ld kB before the first spawn, peak %ld kB: %.1f bytes/actor, of "
          "which %zu are the actor's own state\n",
          max_depth, (unsigned long long)actors, base_kb, peak_kb, per_actor,
          sizeof(node_t));
  printf("value=%.6g unit=ns/actor rss_kb=%ld bytes_per_actor=%.1f\n",
         (double)(res.t1 - res.t0) / (double)actors, peak_kb, per_actor);
  fflush(stdout);
  return 0;
}
