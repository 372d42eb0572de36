/* isle — MIT licensed. */
/*
 * Helpers shared by the lifecycle suites (tests/actor/test_lifecycle*.c),
 * on top of tests/actor/support.h: agents, actors that run the commands
 * sent to them (monitor this, link that, fail with this reason, tell
 * another agent to ...) and record what they see in an agent_log_t the
 * test owns; commands sent from outside and through another agent; run_ok,
 * alive and a handle no spawn gave out; and the watchers and victims of
 * the races with death (monitors in test_lifecycle_monitor.c, links in
 * test_lifecycle_link.c). Static inline (or static const) so
 * that each suite compiles only what it uses; each including file defines
 * _GNU_SOURCE first (pthread, nanosleep under -std=c11).
 */
#ifndef ISLE_TESTS_ACTOR_SUPPORT_LIFECYCLE_H
#define ISLE_TESTS_ACTOR_SUPPORT_LIFECYCLE_H

#include "support.h"

#include "isle/lifecycle.h"

/* ===== Agents =========================================================== */

enum { LOG_MAX = 32 };

/* What one agent saw. Written only by the agent (one thread at a time,
 * ordered by its mailbox); the test reads it after the run, or the atomic
 * fields while it runs. */
typedef struct agent_log_s {
  int rc[LOG_MAX]; /* each API call's result, in order */
  unsigned nrc;
  uint64_t id[LOG_MAX]; /* monitor ids, in order */
  unsigned nid;
  isle_down_t down[LOG_MAX];
  unsigned ndown;
  isle_exit_t exit[LOG_MAX];
  unsigned nexit;
  isle_ref_t spawned;         /* the last spawn_link's handle */
  const char *lookup_on_down; /* looked up at each DOWN, rc recorded */
  int init_exit;              /* init: isle_exit(self, init_exit) if < 0 */
  bool init_ctx_stop;         /* init: isle_ctx_stop */
  isle_ref_t init_link;       /* init: isle_link to this one */
  int init_rc;                /* what init returns */
  _Atomic uint64_t pings;
  _Atomic uint64_t finalized;
  _Atomic uint64_t waiting; /* 1 while spinning in CMD_WAIT_ENDS */
} agent_log_t;

/* Commands, as message types; the payload is (a, b, c, d). */
enum {
  CMD_PING = 1,   /* count it */
  CMD_MONITOR,    /* isle_monitor(a) */
  CMD_DEMONITOR,  /* isle_demonitor(a, or the last monitor id if 0) */
  CMD_LINK,       /* isle_link(a) */
  CMD_UNLINK,     /* isle_unlink(a) */
  CMD_TRAP,       /* isle_trap_exits(a != 0) */
  CMD_EXIT,       /* isle_exit(a, reason (int)b) */
  CMD_EXIT_SELF,  /* isle_exit(self, reason (int)b) */
  CMD_STOP,       /* return ISLE_STOP */
  CMD_FAIL,       /* return (int)b */
  CMD_CTX_STOP,   /* isle_ctx_stop, return ISLE_CONTINUE */
  CMD_TELL,       /* send agent a the command c with payload (d, d) */
  CMD_SPAWN_LINK, /* spawn_link an agent with log (agent_log_t *)a */
  CMD_WAIT_ENDS,  /* spin until a actors ended, then command c with (d, d) */
};

static inline int agent_init(isle_ctx_t *ctx, void *state, const void *arg) {
  agent_log_t *log = (agent_log_t *)arg;
  *(agent_log_t **)state = log;
  if (log->init_link != ISLE_REF_NONE)
    log->rc[log->nrc++] = isle_link(ctx, log->init_link);
  if (log->init_exit < 0)
    log->rc[log->nrc++] = isle_exit(ctx, isle_ctx_self(ctx), log->init_exit);
  if (log->init_ctx_stop)
    isle_ctx_stop(ctx);
  return log->init_rc;
}

static inline void agent_finalize(isle_ctx_t *ctx, void *state) {
  (void)ctx;
  atomic_fetch_add(&(*(agent_log_t **)state)->finalized, 1);
}

static inline int agent_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg);

static const isle_actor_type_t agent_type = {
    .name = "agent",
    .state_size = sizeof(agent_log_t *),
    .init = agent_init,
    .receive = agent_receive,
    .finalize = agent_finalize,
};

static inline isle_msg_t *cmd_msg(uint32_t cmd, uint64_t a, uint64_t b,
                                  uint64_t c, uint64_t d) {
  isle_msg_t *m = support_msg(cmd, a, b);
  if (m) {
    support_payload(m)->c = c;
    support_payload(m)->d = d;
  }
  return m;
}

static inline void rec(agent_log_t *log, int rc) {
  if (WORKER_CHECK(log->nrc < LOG_MAX))
    log->rc[log->nrc++] = rc;
}

static inline uint64_t ended_count(isle_runtime_t *rt) {
  isle_runtime_stats_t s;
  isle_runtime_stats(rt, &s);
  return s.stopped + s.failed;
}

static inline int agent_do(isle_ctx_t *ctx, agent_log_t *log, uint32_t cmd,
                           uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  switch (cmd) {
  case CMD_PING:
    atomic_fetch_add(&log->pings, 1);
    break;
  case CMD_MONITOR: {
    uint64_t id = 0;
    rec(log, isle_monitor(ctx, a, &id));
    if (WORKER_CHECK(log->nid < LOG_MAX))
      log->id[log->nid++] = id;
    break;
  }
  case CMD_DEMONITOR:
    rec(log, isle_demonitor(ctx, a ? a : log->id[log->nid - 1]));
    break;
  case CMD_LINK:
    rec(log, isle_link(ctx, a));
    break;
  case CMD_UNLINK:
    rec(log, isle_unlink(ctx, a));
    break;
  case CMD_TRAP:
    rec(log, isle_trap_exits(ctx, a != 0));
    break;
  case CMD_EXIT:
    rec(log, isle_exit(ctx, a, (int)b));
    break;
  case CMD_EXIT_SELF:
    rec(log, isle_exit(ctx, isle_ctx_self(ctx), (int)b));
    break;
  case CMD_STOP:
    return ISLE_STOP;
  case CMD_FAIL:
    return (int)b;
  case CMD_CTX_STOP:
    isle_ctx_stop(ctx);
    break;
  case CMD_TELL: {
    isle_msg_t *m = cmd_msg((uint32_t)c, d, d, 0, 0);
    int rc = m ? isle_ctx_send(ctx, a, m) : ISLE_ENOMEM;
    if (rc && m)
      isle_msg_free(m);
    rec(log, rc);
    break;
  }
  case CMD_SPAWN_LINK:
    rec(log,
        isle_ctx_spawn_link(ctx, &agent_type, (agent_log_t *)a, &log->spawned));
    break;
  case CMD_WAIT_ENDS: {
    /* Keeps this worker busy until `a` actors have ended (their DOWN and
     * EXIT notices are sent before they are counted), then runs command c:
     * the notices are queued here by then, behind this message. */
    atomic_store(&log->waiting, 1);
    uint64_t deadline = support_now_ns() + 20000000000u;
    while (ended_count(isle_ctx_runtime(ctx)) < a &&
           support_now_ns() < deadline)
      support_sleep_ms(1);
    WORKER_CHECK(ended_count(isle_ctx_runtime(ctx)) >= a);
    atomic_store(&log->waiting, 0);
    return agent_do(ctx, log, (uint32_t)c, d, d, 0, 0);
  }
  default:
    WORKER_CHECK(!"unknown command");
  }
  return ISLE_CONTINUE;
}

static inline int agent_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  agent_log_t *log = *(agent_log_t **)state;
  const isle_down_t *d = isle_msg_down(msg);
  if (d) {
    if (WORKER_CHECK(log->ndown < LOG_MAX))
      log->down[log->ndown++] = *d;
    if (log->lookup_on_down) {
      isle_ref_t r;
      rec(log,
          isle_name_lookup(isle_ctx_runtime(ctx), log->lookup_on_down, &r));
    }
    return ISLE_CONTINUE;
  }
  const isle_exit_t *e = isle_msg_exit(msg);
  if (e) {
    if (WORKER_CHECK(log->nexit < LOG_MAX))
      log->exit[log->nexit++] = *e;
    return ISLE_CONTINUE;
  }
  WORKER_CHECK(isle_msg_type(msg) < ISLE_MSG_RESERVED);
  support_payload_t *p = support_payload(msg);
  return agent_do(ctx, log, isle_msg_type(msg), p->a, p->b, p->c, p->d);
}

/* ----- The test's side --------------------------------------------------- */

static inline isle_ref_t spawn_agent(isle_runtime_t *rt, agent_log_t *log) {
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &agent_type, log, &ref), 0);
  assert_int_not_equal(ref, ISLE_REF_NONE);
  return ref;
}

static inline void cmd(isle_runtime_t *rt, isle_ref_t to, uint32_t c,
                       uint64_t a, int64_t b) {
  isle_msg_t *m = cmd_msg(c, a, (uint64_t)b, 0, 0);
  assert_non_null(m);
  int rc = isle_runtime_send(rt, to, m);
  if (rc)
    isle_msg_free(m);
  assert_int_equal(rc, 0);
}

/* Has `via` send `to` the command c with (d, d). */
static inline void tell(isle_runtime_t *rt, isle_ref_t via, isle_ref_t to,
                        uint32_t c, int64_t d) {
  isle_msg_t *m = cmd_msg(CMD_TELL, to, 0, c, (uint64_t)d);
  assert_non_null(m);
  int rc = isle_runtime_send(rt, via, m);
  if (rc)
    isle_msg_free(m);
  assert_int_equal(rc, 0);
}

static inline void run_ok(isle_runtime_t *rt) {
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
}

/* Whether `ref` is alive: a send to it is accepted (then run to handle). */
static inline bool alive(isle_runtime_t *rt, isle_ref_t ref) {
  isle_msg_t *m = cmd_msg(CMD_PING, 0, 0, 0, 0);
  assert_non_null(m);
  int rc = isle_runtime_send(rt, ref, m);
  if (rc)
    isle_msg_free(m);
  assert_true(rc == 0 || rc == ISLE_EDEAD);
  return rc == 0;
}

static inline agent_log_t *logs_new(size_t n) {
  agent_log_t *l = calloc(n, sizeof *l);
  assert_non_null(l);
  return l;
}

/* A handle no spawn gave out: a high generation on slot 1. */
static const isle_ref_t BAD_REF = ((uint64_t)0x7ffffff0 << 32) | 1;

/* ===== The races with death ============================================ */

/* Watchers (and linkers, which use the same record) of targets that die
 * meanwhile on another worker, and the counts the races add up; the
 * scenarios are written beside their tests. */
enum { RACE_K = 4 }; /* watchers per target */

typedef struct race_s {
  _Atomic uint64_t downs, real, edead, monitors, link_ok, link_dead, exits;
} race_t;

typedef struct watcher_s {
  race_t *race;
  isle_ref_t target;
  uint64_t id;
  unsigned index;
  int link_rc;
  _Atomic uint64_t got;
  bool trap;
} watcher_t;

enum { W_START = 1, V_DIE = 2 };

static inline int race_watcher_init(isle_ctx_t *ctx, void *state,
                                    const void *arg) {
  (void)ctx;
  *(watcher_t **)state = (watcher_t *)arg;
  return 0;
}

static inline int race_watcher_receive(isle_ctx_t *ctx, void *state,
                                       isle_msg_t *msg) {
  watcher_t *w = *(watcher_t **)state;
  const isle_down_t *d = isle_msg_down(msg);
  if (d) {
    WORKER_CHECK(d->ref == w->target && d->monitor == w->id);
    WORKER_CHECK(w->index % RACE_K != 3); /* never after a demonitor */
    WORKER_CHECK(d->reason == ISLE_EPROTO || d->reason == ISLE_EDEAD);
    atomic_fetch_add(&w->got, 1);
    atomic_fetch_add(&w->race->downs, 1);
    atomic_fetch_add(d->reason == ISLE_EDEAD ? &w->race->edead : &w->race->real,
                     1);
    return ISLE_CONTINUE;
  }
  if (isle_msg_type(msg) != W_START)
    return ISLE_CONTINUE;
  if (!WORKER_CHECK(isle_monitor(ctx, w->target, &w->id) == 0))
    return ISLE_CONTINUE;
  atomic_fetch_add(&w->race->monitors, 1);
  if (w->index % RACE_K == 3)
    WORKER_CHECK(isle_demonitor(ctx, w->id) == 0);
  if (w->index % RACE_K == 0 && (w->index / RACE_K) % 2 == 1) {
    isle_msg_t *m = isle_msg_new(V_DIE, 0);
    if (m && isle_ctx_send(ctx, w->target, m) != 0)
      isle_msg_free(m);
  }
  return ISLE_CONTINUE;
}

static const isle_actor_type_t race_watcher_type = {
    .name = "race-watcher",
    .state_size = sizeof(watcher_t *),
    .init = race_watcher_init,
    .receive = race_watcher_receive,
};

static inline int victim_receive(isle_ctx_t *ctx, void *state,
                                 isle_msg_t *msg) {
  (void)ctx;
  (void)state;
  return isle_msg_type(msg) == V_DIE ? ISLE_EPROTO : ISLE_CONTINUE;
}

static const isle_actor_type_t victim_type = {
    .name = "victim",
    .receive = victim_receive,
};

#endif /* ISLE_TESTS_ACTOR_SUPPORT_LIFECYCLE_H */
