/* isle — MIT licensed. */
/*
 * Helpers shared by the isle versions of the actors workloads
 * (bench/actors/<name>.c; the CAF versions in caf/ have their own,
 * caf/caf_common.hpp, with the same arguments and output).
 *
 *   prog [--scale X] [--workers N]
 *
 * --scale X multiplies the workload's counts (0.1 for bench/run --quick);
 * --workers N is the runtime's worker threads, 0 (the default) one per
 * online CPU (isle_runtime_config_t.workers = 0).
 *
 * Besides the argument parsing: message helpers (a message of a few
 * uint64_t words), sends that fail the run on any error (a benchmark has no
 * use for a lost message), the runtime-level checks every workload makes
 * after its run (no actor failed, no dead letters), and the one result line
 * of ../heap/bench_common.h (value=... unit=... rss_kb=...).
 *
 * Only <isle.h> from isle; the rest is libc.
 */
#ifndef BENCH_ACTORS_COMMON_H
#define BENCH_ACTORS_COMMON_H

#include <isle.h>

#include "../heap/bench_common.h"

/* ===== Arguments ======================================================= */

typedef struct actors_args_s {
  double scale;
  unsigned workers; /* 0: one per CPU */
} actors_args_t;

static inline actors_args_t actors_parse_args(int argc, char **argv) {
  actors_args_t a = {.scale = 1.0, .workers = 0};
  for (int i = 1; i < argc; i++) {
    char *end;
    if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      a.scale = strtod(argv[++i], &end);
      if (*end != '\0' || !(a.scale > 0.0) || a.scale > 100.0)
        bench_fail("bad --scale value '%s'", argv[i]);
    } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
      unsigned long w = strtoul(argv[++i], &end, 10);
      if (*end != '\0' || w > 1024)
        bench_fail("bad --workers value '%s'", argv[i]);
      a.workers = (unsigned)w;
    } else {
      fprintf(stderr, "usage: %s [--scale X] [--workers N]\n", argv[0]);
      exit(2);
    }
  }
  return a;
}

/* A runtime with `workers` workers (0: one per CPU) and defaults else. */
static inline isle_runtime_t *actors_runtime(unsigned workers) {
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = workers;
  isle_runtime_t *rt;
  int rc = isle_runtime_new(&cfg, &rt);
  if (rc)
    bench_fail("isle_runtime_new: %s", isle_strerror(rc));
  return rt;
}

/* ===== Messages ======================================================== */

/* A message of `type` carrying `n` words (n <= 4). */
static inline isle_msg_t *actors_msg(uint32_t type, unsigned n,
                                     const uint64_t *words) {
  isle_msg_t *m = isle_msg_new(type, n * sizeof(uint64_t));
  if (m == NULL)
    bench_fail("isle_msg_new(%u, %u words): out of memory", type, n);
  if (n)
    memcpy(isle_msg_data(m), words, n * sizeof(uint64_t));
  return m;
}

/* Word i of a message's payload. */
static inline uint64_t actors_word(isle_msg_t *m, unsigned i) {
  uint64_t v;
  memcpy(&v, (const char *)isle_msg_data(m) + i * sizeof v, sizeof v);
  return v;
}

/* Sends from inside an actor; any error fails the run. */
static inline void actors_send(isle_ctx_t *ctx, isle_ref_t to, isle_msg_t *m) {
  int rc = isle_ctx_send(ctx, to, m);
  if (rc)
    bench_fail("isle_ctx_send (type %u): %s", isle_msg_type(m),
               isle_strerror(rc));
}

static inline void actors_reply(isle_ctx_t *ctx, isle_msg_t *m) {
  int rc = isle_ctx_reply(ctx, m);
  if (rc)
    bench_fail("isle_ctx_reply (type %u): %s", isle_msg_type(m),
               isle_strerror(rc));
}

/* A message of one word (or none), sent from inside. */
static inline void actors_send1(isle_ctx_t *ctx, isle_ref_t to, uint32_t type,
                                uint64_t w) {
  actors_send(ctx, to, actors_msg(type, 1, &w));
}

/* A message of one word, sent from outside the runtime. */
static inline void actors_send_outside(isle_runtime_t *rt, isle_ref_t to,
                                       uint32_t type, uint64_t w) {
  isle_msg_t *m = actors_msg(type, 1, &w);
  int rc = isle_runtime_send(rt, to, m);
  if (rc)
    bench_fail("isle_runtime_send (type %u): %s", type, isle_strerror(rc));
}

static inline isle_ref_t actors_spawn(isle_runtime_t *rt,
                                      const isle_actor_type_t *type,
                                      const void *arg) {
  isle_ref_t ref;
  int rc = isle_runtime_spawn(rt, type, arg, &ref);
  if (rc)
    bench_fail("isle_runtime_spawn(%s): %s", type->name, isle_strerror(rc));
  return ref;
}

/* ===== After the run =================================================== */

/* Runs the runtime to quiescence and returns its statistics; fails the run
 * if an actor ended with an error or a message went to a dead actor. */
static inline isle_runtime_stats_t actors_run(isle_runtime_t *rt) {
  int rc = isle_runtime_run(rt);
  if (rc)
    bench_fail("isle_runtime_run: %s", isle_strerror(rc));
  isle_runtime_stats_t st;
  isle_runtime_stats(rt, &st);
  if (st.failed != 0 || st.dead_letters != 0)
    bench_fail("runtime: %llu actor(s) failed, %llu dead letter(s)",
               (unsigned long long)st.failed,
               (unsigned long long)st.dead_letters);
  return st;
}

/* The workers a run used, and its counters, on stderr. */
static inline void actors_describe(const char *what,
                                   const isle_runtime_stats_t *st) {
  fprintf(stderr,
          "isle %s: %u worker(s); %llu actors spawned, %llu messages, %llu "
          "turns, %llu steals, %llu parks\n",
          what, st->workers, (unsigned long long)st->spawned,
          (unsigned long long)st->messages, (unsigned long long)st->turns,
          (unsigned long long)st->steals, (unsigned long long)st->parks);
}

#endif /* BENCH_ACTORS_COMMON_H */
