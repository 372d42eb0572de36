/* isle — MIT licensed. */
/*
 * supervision: a small supervision tree with a worker that fails on
 * purpose, restarted until its supervisors give up.
 *
 *   samples/supervision [workers]
 *
 *   root (one_for_one, at most 3 restarts in 5 s)
 *   ├── store  (permanent; keeps a count of ticks it was told about)
 *   └── inner  (a supervisor: rest_for_one, at most 2 restarts in 1 s)
 *       ├── flaky  (permanent; fails on its 3rd tick, every time)
 *       └── logger (permanent; started after flaky, so restarted with it)
 *
 * A driver, outside the tree, ticks every 50 ms (a periodic timer), sends
 * each tick to whoever is registered as "flaky" now, and monitors every
 * incarnation of it and the root. flaky fails every 150 ms: inner restarts
 * it (and logger, started after it) twice, then gives up; root restarts
 * inner, and so on, until root gives up as well. The driver sees root's
 * DOWN, cancels its timer and stops, and the runtime, with nothing left to
 * do, returns.
 *
 * Shows: exit reasons, monitors and DOWN messages, supervisors and
 * restart strategies, registered names across restarts, timers.
 */
#include <isle.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TICK = 1 };

/* ----- The supervised workers ------------------------------------------- */

typedef struct worker_arg_s {
  const char *name;
  unsigned fail_on_tick; /* 0: never */
  unsigned starts;       /* incarnations (one worker thread at a time) */
} worker_arg_t;

typedef struct worker_s {
  const worker_arg_t *arg;
  unsigned incarnation, ticks;
} worker_t;

static int worker_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  worker_t *w = state;
  worker_arg_t *a = (worker_arg_t *)arg;
  w->arg = a;
  /* Inits of one spec never overlap: a restart waits for the old one's
   * end, and its supervisor runs them one at a time. */
  w->incarnation = ++a->starts;
  printf("  %-6s started (incarnation %u)\n", a->name, w->incarnation);
  return 0;
}

static int worker_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  worker_t *w = state;
  if (isle_msg_type(msg) == TICK && ++w->ticks == w->arg->fail_on_tick) {
    printf("  %-6s tick %u: failing on purpose\n", w->arg->name, w->ticks);
    return ISLE_EPROTO; /* an abnormal exit with this reason */
  }
  return ISLE_CONTINUE;
}

static void worker_finalize(isle_ctx_t *ctx, void *state) {
  (void)ctx;
  worker_t *w = state;
  printf("  %-6s incarnation %u ended\n", w->arg->name, w->incarnation);
}

static const isle_actor_type_t worker_type = {
    .name = "worker",
    .state_size = sizeof(worker_t),
    .init = worker_init,
    .receive = worker_receive,
    .finalize = worker_finalize,
};

/* ----- The tree ---------------------------------------------------------- */

static worker_arg_t store_arg = {.name = "store"};
static worker_arg_t flaky_arg = {.name = "flaky", .fail_on_tick = 3};
static worker_arg_t logger_arg = {.name = "logger"};

static const isle_child_spec_t inner_children[] = {
    {.name = "flaky",
     .type = &worker_type,
     .arg = &flaky_arg,
     .restart = ISLE_PERMANENT},
    {.name = "logger",
     .type = &worker_type,
     .arg = &logger_arg,
     .restart = ISLE_PERMANENT},
};
static const isle_sup_spec_t inner_spec = {
    .strategy = ISLE_REST_FOR_ONE,
    .max_restarts = 2,
    .within_ms = 1000,
    .children = inner_children,
    .nchildren = 2,
};
static const isle_child_spec_t root_children[] = {
    {.name = "store",
     .type = &worker_type,
     .arg = &store_arg,
     .restart = ISLE_PERMANENT},
    {.name = "inner",
     .type = &isle_supervisor_type,
     .arg = &inner_spec,
     .restart = ISLE_PERMANENT},
};
static const isle_sup_spec_t root_spec = {
    .strategy = ISLE_ONE_FOR_ONE,
    .max_restarts = 3,
    .within_ms = 5000,
    .children = root_children,
    .nchildren = 2,
};

/* ----- The driver -------------------------------------------------------- */

typedef struct driver_s {
  isle_ref_t root, flaky, inner;
  uint64_t root_monitor, inner_monitor, timer;
  unsigned ticks, flaky_downs, inner_downs;
} driver_t;

/* Monitors whoever holds `name` now, if that is not *seen already. */
static void watch(isle_ctx_t *ctx, const char *name, isle_ref_t *seen,
                  uint64_t *monitor) {
  isle_ref_t ref;
  if (isle_name_lookup(isle_ctx_runtime(ctx), name, &ref) == 0 &&
      ref != *seen) {
    *seen = ref;
    isle_monitor(ctx, ref, monitor); /* one DOWN per incarnation */
  }
}

static int driver_init(isle_ctx_t *ctx, void *state, const void *arg) {
  driver_t *d = state;
  d->root = *(const isle_ref_t *)arg;
  int rc = isle_monitor(ctx, d->root, &d->root_monitor);
  if (rc)
    return rc;
  isle_msg_t *tick = isle_msg_new(TICK, 0);
  if (!tick)
    return ISLE_ENOMEM;
  rc = isle_timer_start(isle_ctx_runtime(ctx), isle_ctx_self(ctx), tick, 50, 50,
                        &d->timer);
  if (rc)
    isle_msg_free(tick);
  return rc;
}

static int driver_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  driver_t *d = state;
  const isle_down_t *down = isle_msg_down(msg);
  if (down) {
    if (down->monitor == d->inner_monitor) {
      d->inner_downs++;
      printf("driver: supervisor inner went down (%s)\n",
             isle_strerror(down->reason));
    } else if (down->monitor == d->root_monitor) {
      printf("driver: supervisor root went down (%s) after %u ticks: "
             "%u flaky exits, %u inner exits\n",
             isle_strerror(down->reason), d->ticks, d->flaky_downs,
             d->inner_downs);
      isle_timer_cancel(isle_ctx_runtime(ctx), d->timer);
      return ISLE_STOP;
    } else {
      d->flaky_downs++;
      printf("driver: flaky went down (%s)\n", isle_strerror(down->reason));
    }
    return ISLE_CONTINUE;
  }
  d->ticks++;
  /* Whoever holds the names now; between an exit and the restart, nobody. */
  uint64_t unused;
  watch(ctx, "flaky", &d->flaky, &unused);
  watch(ctx, "inner", &d->inner, &d->inner_monitor);
  isle_msg_t *tick = isle_msg_new(TICK, 0);
  if (tick && isle_ctx_send(ctx, d->flaky, tick) != 0)
    isle_msg_free(tick); /* it ended just now: the next tick finds the next */
  return ISLE_CONTINUE;
}

static const isle_actor_type_t driver_type = {
    .name = "driver",
    .state_size = sizeof(driver_t),
    .init = driver_init,
    .receive = driver_receive,
};

int main(int argc, char **argv) {
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = argc > 1 ? (unsigned)atoi(argv[1]) : 0;
  isle_runtime_t *rt;
  int rc = isle_runtime_new(&cfg, &rt);
  if (rc) {
    fprintf(stderr, "supervision: %s\n", isle_strerror(rc));
    return 1;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("starting the tree\n");
  isle_ref_t root;
  rc = isle_runtime_spawn(rt, &isle_supervisor_type, &root_spec, &root);
  if (rc == 0)
    rc = isle_runtime_spawn(rt, &driver_type, &root, NULL);
  if (rc == 0)
    rc = isle_runtime_run(rt);
  isle_runtime_stats_t st;
  isle_runtime_stats(rt, &st);
  isle_io_stats_t io;
  isle_io_stats(rt, &io);
  printf("done: %llu actors spawned, %llu ended normally, %llu abnormally; "
         "%llu timer ticks\n",
         (unsigned long long)st.spawned, (unsigned long long)st.stopped,
         (unsigned long long)st.failed, (unsigned long long)io.timers_fired);
  isle_runtime_free(rt);
  if (rc) {
    fprintf(stderr, "supervision: %s\n", isle_strerror(rc));
    return 1;
  }
  return 0;
}
