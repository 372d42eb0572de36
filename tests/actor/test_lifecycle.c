/* isle — MIT licensed. */
/*
 * Exits, monitors, links and names (include/isle/lifecycle.h): every
 * function and every error it documents; the ways an actor ends and how
 * they are counted; DOWN delivered exactly once (also for an actor already
 * gone, never after a demonitor, to many watchers); link propagation,
 * trapping, unlinking, spawn_link; names freed when their actor ends; and
 * the races with death (monitors, links and names made while their target
 * dies on another worker).
 *
 * Most tests drive "agents": actors that run commands sent to them (monitor
 * this, link that, fail with this reason, tell another agent to ...) and
 * record what they see in an agent_log_t the test owns. A command an agent
 * sends to another agent travels in order with its own monitor and link
 * requests, which makes the outcome of a scenario deterministic. Callbacks
 * check with WORKER_CHECK; the test asserts after the run, which joins
 * the workers (so plain fields of the logs are safe to read then). Every
 * test ends with the heap as it began (support_assert_heap_quiet).
 */
#define _GNU_SOURCE /* pthread, nanosleep under -std=c11 */

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

static int agent_init(isle_ctx_t *ctx, void *state, const void *arg) {
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

static void agent_finalize(isle_ctx_t *ctx, void *state) {
  (void)ctx;
  atomic_fetch_add(&(*(agent_log_t **)state)->finalized, 1);
}

static int agent_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg);

static const isle_actor_type_t agent_type = {
    .name = "agent",
    .state_size = sizeof(agent_log_t *),
    .init = agent_init,
    .receive = agent_receive,
    .finalize = agent_finalize,
};

static isle_msg_t *cmd_msg(uint32_t cmd, uint64_t a, uint64_t b, uint64_t c,
                           uint64_t d) {
  isle_msg_t *m = support_msg(cmd, a, b);
  if (m) {
    support_payload(m)->c = c;
    support_payload(m)->d = d;
  }
  return m;
}

static void rec(agent_log_t *log, int rc) {
  if (WORKER_CHECK(log->nrc < LOG_MAX))
    log->rc[log->nrc++] = rc;
}

static uint64_t ended_count(isle_runtime_t *rt) {
  isle_runtime_stats_t s;
  isle_runtime_stats(rt, &s);
  return s.stopped + s.failed;
}

static int agent_do(isle_ctx_t *ctx, agent_log_t *log, uint32_t cmd, uint64_t a,
                    uint64_t b, uint64_t c, uint64_t d) {
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

static int agent_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
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

static isle_ref_t spawn_agent(isle_runtime_t *rt, agent_log_t *log) {
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &agent_type, log, &ref), 0);
  assert_int_not_equal(ref, ISLE_REF_NONE);
  return ref;
}

static void cmd(isle_runtime_t *rt, isle_ref_t to, uint32_t c, uint64_t a,
                int64_t b) {
  isle_msg_t *m = cmd_msg(c, a, (uint64_t)b, 0, 0);
  assert_non_null(m);
  int rc = isle_runtime_send(rt, to, m);
  if (rc)
    isle_msg_free(m);
  assert_int_equal(rc, 0);
}

/* Has `via` send `to` the command c with (d, d). */
static void tell(isle_runtime_t *rt, isle_ref_t via, isle_ref_t to, uint32_t c,
                 int64_t d) {
  isle_msg_t *m = cmd_msg(CMD_TELL, to, 0, c, (uint64_t)d);
  assert_non_null(m);
  int rc = isle_runtime_send(rt, via, m);
  if (rc)
    isle_msg_free(m);
  assert_int_equal(rc, 0);
}

static void run_ok(isle_runtime_t *rt) {
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
}

/* Whether `ref` is alive: a send to it is accepted (then run to handle). */
static bool alive(isle_runtime_t *rt, isle_ref_t ref) {
  isle_msg_t *m = cmd_msg(CMD_PING, 0, 0, 0, 0);
  assert_non_null(m);
  int rc = isle_runtime_send(rt, ref, m);
  if (rc)
    isle_msg_free(m);
  assert_true(rc == 0 || rc == ISLE_EDEAD);
  return rc == 0;
}

static agent_log_t *logs_new(size_t n) {
  agent_log_t *l = calloc(n, sizeof *l);
  assert_non_null(l);
  return l;
}

/* A handle no spawn gave out: a high generation on slot 1. */
static const isle_ref_t BAD_REF = ((uint64_t)0x7ffffff0 << 32) | 1;

/* ===== Exits ============================================================ */

/* Each way to end counts once, as stopped (normal) or failed (error), and
 * reaches a monitor with its reason. */
static void test_lifecycle_exit_reasons_are_counted_and_reported(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  enum { N = 7 };
  agent_log_t *logs = logs_new(N + 1);
  agent_log_t *wl = &logs[N];
  isle_ref_t w = spawn_agent(rt, wl);
  isle_ref_t v[N];
  for (int i = 0; i < N; i++) {
    v[i] = spawn_agent(rt, &logs[i]);
    cmd(rt, w, CMD_MONITOR, v[i], 0);
  }
  run_ok(rt); /* every monitor in place */
  tell(rt, w, v[0], CMD_STOP, 0);
  tell(rt, w, v[1], CMD_FAIL, ISLE_EIO);
  tell(rt, w, v[2], CMD_EXIT_SELF, 0);
  tell(rt, w, v[3], CMD_EXIT_SELF, ISLE_EPROTO);
  tell(rt, w, v[4], CMD_CTX_STOP, 0);
  cmd(rt, w, CMD_EXIT, v[5], ISLE_ESTATE); /* isle_exit on another */
  assert_int_equal(isle_runtime_exit(rt, v[6], ISLE_EXIT_NORMAL), 0);
  run_ok(rt);

  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.stopped, 4); /* v0, v2, v4, v6 */
  assert_int_equal(s.failed, 3);  /* v1, v3, v5 */
  assert_int_equal(s.actors_live, 1);
  int want[N] = {0, ISLE_EIO, 0, ISLE_EPROTO, 0, ISLE_ESTATE, 0};
  assert_int_equal(wl->ndown, N);
  for (unsigned k = 0; k < wl->ndown; k++) {
    int i = 0;
    while (i < N && v[i] != wl->down[k].ref)
      i++;
    assert_true(i < N);
    assert_int_equal(wl->down[k].reason, want[i]);
    assert_int_equal(wl->down[k].monitor, wl->id[i]);
    assert_int_equal(atomic_load(&logs[i].finalized), 1);
  }
  /* The isle_exit calls returned 0, and were counted as results. */
  for (unsigned k = 0; k < wl->nrc; k++)
    assert_int_equal(wl->rc[k], 0);
  assert_int_equal(logs[2].rc[0], 0);
  assert_int_equal(logs[3].rc[0], 0);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* An exit request is a message: what was queued before it is handled
 * first, what comes after is a dead letter. */
static void
test_lifecycle_exit_request_comes_after_the_queued_backlog(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(2);
  isle_ref_t w = spawn_agent(rt, &logs[0]);
  isle_ref_t v = spawn_agent(rt, &logs[1]);
  cmd(rt, w, CMD_MONITOR, v, 0);
  run_ok(rt);
  for (int i = 0; i < 10; i++)
    cmd(rt, v, CMD_PING, 0, 0);
  assert_int_equal(isle_runtime_exit(rt, v, ISLE_EIO), 0);
  for (int i = 0; i < 3; i++)
    cmd(rt, v, CMD_PING, 0, 0);
  isle_runtime_stats_t before = support_stats(rt);
  run_ok(rt);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(atomic_load(&logs[1].pings), 10);
  assert_int_equal(s.dead_letters - before.dead_letters, 3);
  assert_int_equal(s.failed, 1);
  assert_int_equal(logs[0].ndown, 1);
  assert_int_equal(logs[0].down[0].reason, ISLE_EIO);

  /* The same from inside an actor (isle_exit on another), and the target
   * already gone: ISLE_EDEAD. */
  isle_ref_t v2 = spawn_agent(rt, &logs[1]);
  for (int i = 0; i < 5; i++)
    tell(rt, w, v2, CMD_PING, 0);
  cmd(rt, w, CMD_EXIT, v2, ISLE_EPROTO);
  run_ok(rt);
  assert_int_equal(atomic_load(&logs[1].pings), 15);
  cmd(rt, w, CMD_EXIT, v2, ISLE_EPROTO);
  run_ok(rt);
  assert_int_equal(logs[0].nrc, 8);
  assert_int_equal(logs[0].rc[6], 0);
  assert_int_equal(logs[0].rc[7], ISLE_EDEAD);
  assert_int_equal(support_stats(rt).failed, 2);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* isle_exit and isle_runtime_exit refuse positive reasons, bad handles and
 * a missing ctx or runtime; a gone actor is ISLE_EDEAD. */
static void test_lifecycle_exit_errors(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  agent_log_t *logs = logs_new(2);
  isle_ref_t a = spawn_agent(rt, &logs[0]);
  isle_ref_t b = spawn_agent(rt, &logs[1]);
  assert_int_equal(isle_runtime_exit(NULL, a, 0), ISLE_EINVAL);
  assert_int_equal(isle_runtime_exit(rt, a, ISLE_STOP), ISLE_EINVAL);
  assert_int_equal(isle_runtime_exit(rt, ISLE_REF_NONE, 0), ISLE_EINVAL);
  assert_int_equal(isle_runtime_exit(rt, BAD_REF, 0), ISLE_EINVAL);
  assert_int_equal(isle_exit(NULL, a, 0), ISLE_EINVAL);
  cmd(rt, a, CMD_EXIT, b, 1);              /* positive */
  cmd(rt, a, CMD_EXIT, BAD_REF, ISLE_EIO); /* never given out */
  cmd(rt, b, CMD_STOP, 0, 0);
  run_ok(rt);
  assert_int_equal(isle_runtime_exit(rt, b, ISLE_EIO), ISLE_EDEAD);
  cmd(rt, a, CMD_EXIT, b, ISLE_EIO);
  run_ok(rt);
  assert_int_equal(logs[0].nrc, 3);
  assert_int_equal(logs[0].rc[0], ISLE_EINVAL);
  assert_int_equal(logs[0].rc[1], ISLE_EINVAL);
  assert_int_equal(logs[0].rc[2], ISLE_EDEAD);
  assert_true(alive(rt, a));
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* An actor that traps exits gets an exit request as ISLE_MSG_EXIT (ended
 * false, from the caller) and lives; ISLE_EKILLED ends it anyway. */
static void test_lifecycle_exit_request_to_a_trapping_actor(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(2);
  isle_ref_t a = spawn_agent(rt, &logs[0]);
  isle_ref_t t = spawn_agent(rt, &logs[1]);
  cmd(rt, t, CMD_TRAP, 1, 0);
  cmd(rt, a, CMD_MONITOR, t, 0);
  cmd(rt, a, CMD_EXIT, t, ISLE_EIO);
  run_ok(rt);
  assert_int_equal(logs[1].nexit, 1);
  assert_int_equal(logs[1].exit[0].from, a);
  assert_int_equal(logs[1].exit[0].reason, ISLE_EIO);
  assert_false(logs[1].exit[0].ended);
  assert_int_equal(isle_runtime_exit(rt, t, ISLE_ESTATE), 0);
  run_ok(rt);
  assert_int_equal(logs[1].nexit, 2);
  assert_int_equal(logs[1].exit[1].from, ISLE_REF_NONE);
  assert_int_equal(logs[0].ndown, 0);
  assert_int_equal(isle_runtime_exit(rt, t, ISLE_EKILLED), 0);
  run_ok(rt);
  assert_int_equal(logs[0].ndown, 1);
  assert_int_equal(logs[0].down[0].reason, ISLE_EKILLED);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* ===== Monitors ========================================================= */

/* One DOWN, with the handle, the id isle_monitor gave and the reason;
 * isle_msg_down and isle_msg_exit tell the runtime's messages apart. */
static void test_lifecycle_monitor_delivers_one_down(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(2);
  isle_ref_t w = spawn_agent(rt, &logs[0]);
  isle_ref_t v = spawn_agent(rt, &logs[1]);
  cmd(rt, w, CMD_MONITOR, v, 0);
  tell(rt, w, v, CMD_FAIL, ISLE_EPROTO); /* after the monitor request */
  run_ok(rt);
  assert_int_equal(logs[0].rc[0], 0);
  assert_int_not_equal(logs[0].id[0], 0);
  assert_int_equal(logs[0].ndown, 1);
  assert_int_equal(logs[0].down[0].ref, v);
  assert_int_equal(logs[0].down[0].monitor, logs[0].id[0]);
  assert_int_equal(logs[0].down[0].reason, ISLE_EPROTO);
  /* Delivered: a demonitor now finds nothing. */
  cmd(rt, w, CMD_DEMONITOR, logs[0].id[0], 0);
  run_ok(rt);
  assert_int_equal(logs[0].rc[2], ISLE_ENOENT);
  assert_int_equal(logs[0].ndown, 1);

  isle_msg_t *m = support_msg(ISLE_MSG_DOWN, 0, 0);
  assert_null(isle_msg_exit(m));
  assert_non_null(isle_msg_down(m));
  isle_msg_free(m);
  m = isle_msg_new(ISLE_MSG_DOWN, 4); /* too short to be one */
  assert_null(isle_msg_down(m));
  isle_msg_free(m);
  m = support_msg(ISLE_MSG_EXIT, 0, 0);
  assert_null(isle_msg_down(m));
  assert_non_null(isle_msg_exit(m));
  isle_msg_free(m);
  m = support_msg(7, 0, 0);
  assert_null(isle_msg_down(m));
  assert_null(isle_msg_exit(m));
  isle_msg_free(m);
  assert_null(isle_msg_down(NULL));
  assert_null(isle_msg_exit(NULL));
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* Monitoring an actor already gone: DOWN at once, reason ISLE_EDEAD. */
static void test_lifecycle_monitor_of_a_dead_actor_gets_edead(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(2);
  isle_ref_t w = spawn_agent(rt, &logs[0]);
  isle_ref_t v = spawn_agent(rt, &logs[1]);
  cmd(rt, v, CMD_FAIL, 0, ISLE_EIO);
  run_ok(rt);
  cmd(rt, w, CMD_MONITOR, v, 0);
  cmd(rt, w, CMD_MONITOR, v, 0);
  run_ok(rt);
  assert_int_equal(logs[0].rc[0], 0);
  assert_int_equal(logs[0].rc[1], 0);
  assert_int_not_equal(logs[0].id[0], logs[0].id[1]);
  assert_int_equal(logs[0].ndown, 2);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(logs[0].down[i].ref, v);
    assert_int_equal(logs[0].down[i].monitor, logs[0].id[i]);
    assert_int_equal(logs[0].down[i].reason, ISLE_EDEAD);
  }
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* Demonitor before the end: no DOWN. Demonitor of a DOWN already queued
 * (the target ended while the watcher was busy): no DOWN either, and 0. */
static void test_lifecycle_demonitor_before_and_after_the_end(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(3);
  isle_ref_t w = spawn_agent(rt, &logs[0]);
  isle_ref_t v = spawn_agent(rt, &logs[1]);
  cmd(rt, w, CMD_MONITOR, v, 0);
  cmd(rt, w, CMD_DEMONITOR, 0, 0);
  tell(rt, w, v, CMD_FAIL, ISLE_EIO);
  run_ok(rt);
  assert_int_equal(logs[0].rc[0], 0);
  assert_int_equal(logs[0].rc[1], 0);
  assert_int_equal(logs[0].ndown, 0);
  assert_int_equal(support_stats(rt).failed, 1);

  /* After: the monitor is in place once v has answered a ping sent behind
   * it; then w busies itself until v has ended (its DOWN is queued behind
   * the wait) and demonitors. */
  isle_ref_t v2 = spawn_agent(rt, &logs[2]);
  cmd(rt, w, CMD_MONITOR, v2, 0);
  tell(rt, w, v2, CMD_PING, 0);
  support_runner_t r;
  isle_runtime_hold(rt);
  support_runner_start(&r, rt);
  while (atomic_load(&logs[2].pings) < 1)
    support_sleep_ms(1);
  isle_msg_t *m = cmd_msg(CMD_WAIT_ENDS, 2, 0, CMD_DEMONITOR, 0);
  assert_int_equal(isle_runtime_send(rt, w, m), 0);
  while (!atomic_load(&logs[0].waiting))
    support_sleep_ms(1);
  assert_int_equal(isle_runtime_exit(rt, v2, ISLE_EPROTO), 0);
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  assert_int_equal(support_stats(rt).failed, 2);
  assert_int_equal(logs[0].nrc, 6);
  assert_int_equal(logs[0].rc[5], 0); /* the demonitor */
  assert_int_equal(logs[0].ndown, 0);
  /* And a second time: nothing left to cancel. */
  cmd(rt, w, CMD_DEMONITOR, logs[0].id[1], 0);
  cmd(rt, w, CMD_DEMONITOR, 12345678, 0);
  run_ok(rt);
  assert_int_equal(logs[0].rc[6], ISLE_ENOENT);
  assert_int_equal(logs[0].rc[7], ISLE_ENOENT);
  assert_int_equal(isle_demonitor(NULL, 1), ISLE_EINVAL);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* isle_monitor refuses a missing ctx and bad handles. */
static void test_lifecycle_monitor_errors(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  agent_log_t *logs = logs_new(1);
  isle_ref_t w = spawn_agent(rt, &logs[0]);
  uint64_t id = 99;
  assert_int_equal(isle_monitor(NULL, w, &id), ISLE_EINVAL);
  assert_int_equal(id, 99);
  cmd(rt, w, CMD_MONITOR, ISLE_REF_NONE, 0);
  cmd(rt, w, CMD_MONITOR, BAD_REF, 0);
  run_ok(rt);
  assert_int_equal(logs[0].rc[0], ISLE_EINVAL);
  assert_int_equal(logs[0].rc[1], ISLE_EINVAL);
  assert_int_equal(logs[0].ndown, 0);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* Many watchers of one target: one DOWN each, every one with its own id. */
static void test_lifecycle_many_watchers_of_one_target(void **state) {
  enum { W = 40 };
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(W + 1);
  isle_ref_t v = spawn_agent(rt, &logs[W]);
  isle_ref_t w[W];
  for (int i = 0; i < W; i++) {
    w[i] = spawn_agent(rt, &logs[i]);
    cmd(rt, w[i], CMD_MONITOR, v, 0);
    cmd(rt, w[i], CMD_MONITOR, v, 0); /* two monitors: two DOWNs */
    tell(rt, w[i], v, CMD_PING, 0);
  }
  run_ok(rt);
  assert_int_equal(atomic_load(&logs[W].pings), W);
  assert_int_equal(isle_runtime_exit(rt, v, ISLE_EIO), 0);
  run_ok(rt);
  for (int i = 0; i < W; i++) {
    assert_int_equal(logs[i].ndown, 2);
    for (int k = 0; k < 2; k++) {
      assert_int_equal(logs[i].down[k].ref, v);
      assert_int_equal(logs[i].down[k].reason, ISLE_EIO);
    }
    assert_true((logs[i].down[0].monitor == logs[i].id[0] &&
                 logs[i].down[1].monitor == logs[i].id[1]) ||
                (logs[i].down[0].monitor == logs[i].id[1] &&
                 logs[i].down[1].monitor == logs[i].id[0]));
  }
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* ----- The monitor race ------------------------------------------------- */

/*
 * Targets die while watchers monitor them, on two workers: some by an
 * outside isle_runtime_exit racing the monitor requests, some by a command
 * a watcher sends behind its own monitor. Every watcher that did not
 * demonitor gets exactly one DOWN (the real reason if its request got in
 * before the end, ISLE_EDEAD if not); those that demonitored at once get
 * none. A lost DOWN, a second one or one after a demonitor fails here.
 */
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

static int race_watcher_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(watcher_t **)state = (watcher_t *)arg;
  return 0;
}

static int race_watcher_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
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

static int victim_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)state;
  return isle_msg_type(msg) == V_DIE ? ISLE_EPROTO : ISLE_CONTINUE;
}

static const isle_actor_type_t victim_type = {
    .name = "victim",
    .receive = victim_receive,
};

static void test_lifecycle_monitor_race_delivers_each_down_once(void **state) {
  size_t targets = support_iters(10000);
  isle_runtime_t *rt = support_runtime(2, 0);
  race_t race;
  memset(&race, 0, sizeof race);
  watcher_t *ws = calloc(targets * RACE_K, sizeof *ws);
  isle_ref_t *wrefs = calloc(targets * RACE_K, sizeof *wrefs);
  assert_non_null(ws);
  assert_non_null(wrefs);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  for (size_t t = 0; t < targets; t++) {
    isle_ref_t v;
    assert_int_equal(isle_runtime_spawn(rt, &victim_type, NULL, &v), 0);
    for (unsigned k = 0; k < RACE_K; k++) {
      size_t i = t * RACE_K + k;
      ws[i].race = &race;
      ws[i].target = v;
      ws[i].index = (unsigned)i;
      assert_int_equal(
          isle_runtime_spawn(rt, &race_watcher_type, &ws[i], &wrefs[i]), 0);
      support_send(rt, wrefs[i], W_START, 0, 0);
    }
    if (t % 2 == 0) /* racing the monitors from here */
      assert_int_equal(isle_runtime_exit(rt, v, ISLE_EPROTO), 0);
  }
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  uint64_t want = 0;
  for (size_t i = 0; i < targets * RACE_K; i++) {
    uint64_t expect = ws[i].index % RACE_K == 3 ? 0 : 1;
    assert_int_equal(atomic_load(&ws[i].got), expect);
    want += expect;
  }
  assert_int_equal(atomic_load(&race.monitors), targets * RACE_K);
  assert_int_equal(atomic_load(&race.downs), want);
  assert_int_equal(atomic_load(&race.real) + atomic_load(&race.edead), want);
  assert_int_equal(support_stats(rt).failed, targets);
  print_message("monitor race: %" PRIu64 " DOWNs, %" PRIu64
                " with the reason, %" PRIu64 " ISLE_EDEAD\n",
                atomic_load(&race.downs), atomic_load(&race.real),
                atomic_load(&race.edead));
  isle_runtime_free(rt);
  free(ws);
  free(wrefs);
  support_assert_heap_quiet();
}

/* A watcher that monitors its target in init and ends at its first
 * message, never seeing a DOWN. */
static int brief_watcher_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)state;
  return isle_monitor(ctx, *(const isle_ref_t *)arg, NULL);
}

static int brief_watcher_receive(isle_ctx_t *ctx, void *state,
                                 isle_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return ISLE_STOP;
}

static const isle_actor_type_t brief_watcher_type = {
    .name = "brief-watcher",
    .init = brief_watcher_init,
    .receive = brief_watcher_receive,
};

/* Watchers that end before their target forget it: a long-lived actor
 * monitored by many short-lived ones keeps no DOWN for each of them. Two
 * rounds of N watchers; the second must leave the heap where the first
 * did (before the fix it held N more blocks: a DOWN per dead watcher). */
static void
test_lifecycle_watchers_that_end_leave_nothing_behind(void **state) {
  const size_t n = support_iters(2000);
  isle_runtime_t *rt = support_runtime(2, 0);
  isle_ref_t target;
  assert_int_equal(isle_runtime_spawn(rt, &victim_type, NULL, &target), 0);
  uint64_t level[2];
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < n; i++) {
      isle_ref_t w;
      assert_int_equal(isle_runtime_spawn(rt, &brief_watcher_type, &target, &w),
                       0);
      support_send(rt, w, 1, 0, 0);
    }
    run_ok(rt);
    isle_heap_collect();
    level[round] = support_heap_level(false).live_objects;
  }
  assert_true(alive(rt, target));
  print_message("live objects after %zu and %zu watchers: %" PRIu64 ", %" PRIu64
                "\n",
                n, 2 * n, level[0], level[1]);
  assert_true(level[1] <= level[0] + 16);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== Links ============================================================ */

/* a - b - c linked; c fails: b and a end with c's reason. */
static void
test_lifecycle_link_propagates_an_abnormal_exit_down_a_chain(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(4);
  isle_ref_t w = spawn_agent(rt, &logs[3]);
  isle_ref_t a = spawn_agent(rt, &logs[0]);
  isle_ref_t b = spawn_agent(rt, &logs[1]);
  isle_ref_t c = spawn_agent(rt, &logs[2]);
  cmd(rt, a, CMD_LINK, b, 0);
  cmd(rt, a, CMD_LINK, b, 0); /* twice is once */
  cmd(rt, b, CMD_LINK, c, 0);
  cmd(rt, w, CMD_MONITOR, a, 0);
  cmd(rt, w, CMD_MONITOR, b, 0);
  cmd(rt, w, CMD_MONITOR, c, 0);
  run_ok(rt);
  assert_int_equal(logs[0].rc[0], 0);
  assert_int_equal(logs[0].rc[1], 0);
  assert_int_equal(logs[1].rc[0], 0);
  cmd(rt, c, CMD_FAIL, 0, ISLE_EPROTO);
  run_ok(rt);
  assert_int_equal(logs[3].ndown, 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(logs[3].down[i].reason, ISLE_EPROTO);
  assert_int_equal(support_stats(rt).failed, 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(logs[i].nexit, 0); /* none trapped */
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* A normal exit ends no linked actor; a trapping one hears of it. */
static void test_lifecycle_link_normal_exit_ends_no_one(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(3);
  isle_ref_t a = spawn_agent(rt, &logs[0]);
  isle_ref_t b = spawn_agent(rt, &logs[1]);
  isle_ref_t t = spawn_agent(rt, &logs[2]);
  cmd(rt, t, CMD_TRAP, 1, 0);
  cmd(rt, a, CMD_LINK, b, 0);
  cmd(rt, t, CMD_LINK, b, 0);
  run_ok(rt);
  cmd(rt, b, CMD_STOP, 0, 0);
  run_ok(rt);
  assert_true(alive(rt, a));
  assert_true(alive(rt, t));
  run_ok(rt);
  assert_int_equal(logs[0].nexit, 0);
  assert_int_equal(logs[2].nexit, 1);
  assert_int_equal(logs[2].exit[0].from, b);
  assert_int_equal(logs[2].exit[0].reason, ISLE_EXIT_NORMAL);
  assert_true(logs[2].exit[0].ended);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.stopped, 1);
  assert_int_equal(s.failed, 0);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* A trapping actor gets ISLE_MSG_EXIT for an abnormal exit and lives; one
 * that stops trapping ends with the next. */
static void test_lifecycle_trap_exits_turns_exits_into_messages(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(3);
  isle_ref_t t = spawn_agent(rt, &logs[0]);
  isle_ref_t b = spawn_agent(rt, &logs[1]);
  isle_ref_t c = spawn_agent(rt, &logs[2]);
  cmd(rt, t, CMD_TRAP, 1, 0);
  cmd(rt, t, CMD_LINK, b, 0);
  tell(rt, t, b, CMD_FAIL, ISLE_EIO);
  run_ok(rt);
  assert_int_equal(logs[0].nexit, 1);
  assert_int_equal(logs[0].exit[0].from, b);
  assert_int_equal(logs[0].exit[0].reason, ISLE_EIO);
  assert_true(logs[0].exit[0].ended);
  assert_true(alive(rt, t));
  cmd(rt, t, CMD_TRAP, 0, 0);
  cmd(rt, t, CMD_LINK, c, 0);
  tell(rt, t, c, CMD_FAIL, ISLE_ESTATE);
  run_ok(rt);
  assert_int_equal(logs[0].nexit, 1);
  assert_int_equal(atomic_load(&logs[0].finalized), 1);
  assert_int_equal(support_stats(rt).failed, 3);
  assert_int_equal(isle_trap_exits(NULL, true), ISLE_EINVAL);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* After unlink nothing propagates, either way; an EXIT already queued when
 * the unlink runs is dropped. */
static void test_lifecycle_unlink_stops_propagation(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(4);
  isle_ref_t a = spawn_agent(rt, &logs[0]);
  isle_ref_t b = spawn_agent(rt, &logs[1]);
  isle_ref_t c = spawn_agent(rt, &logs[2]);
  cmd(rt, a, CMD_LINK, b, 0);
  cmd(rt, a, CMD_UNLINK, b, 0);
  cmd(rt, a, CMD_UNLINK, b, 0); /* not linked any more */
  cmd(rt, a, CMD_UNLINK, c, 0); /* never linked */
  tell(rt, a, b, CMD_FAIL, ISLE_EIO);
  run_ok(rt);
  assert_int_equal(logs[0].rc[0], 0);
  assert_int_equal(logs[0].rc[1], 0);
  assert_int_equal(logs[0].rc[2], ISLE_ENOENT);
  assert_int_equal(logs[0].rc[3], ISLE_ENOENT);
  assert_true(alive(rt, a));
  /* The other way: c unlinks a, then a fails; c lives. */
  cmd(rt, c, CMD_LINK, a, 0);
  cmd(rt, c, CMD_UNLINK, a, 0);
  tell(rt, c, a, CMD_FAIL, ISLE_EIO);
  run_ok(rt);
  assert_true(alive(rt, c));
  run_ok(rt);
  assert_int_equal(support_stats(rt).failed, 2);

  /* Queued already: t traps and links d; once d answered a ping (linked),
   * t waits until d has ended, so d's EXIT is queued behind, then
   * unlinks: 0, and the EXIT never shows. */
  isle_ref_t t = spawn_agent(rt, &logs[3]);
  cmd(rt, t, CMD_TRAP, 1, 0);
  cmd(rt, t, CMD_LINK, c, 0);
  tell(rt, t, c, CMD_PING, 0);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  while (atomic_load(&logs[2].pings) < 2) /* one from alive() above */
    support_sleep_ms(1);
  isle_msg_t *m = cmd_msg(CMD_WAIT_ENDS, 3, 0, CMD_UNLINK, c);
  assert_int_equal(isle_runtime_send(rt, t, m), 0);
  while (!atomic_load(&logs[3].waiting))
    support_sleep_ms(1);
  assert_int_equal(isle_runtime_exit(rt, c, ISLE_EPROTO), 0);
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  assert_int_equal(logs[3].nrc, 4);
  assert_int_equal(logs[3].rc[3], 0);
  assert_int_equal(logs[3].nexit, 0);
  assert_int_equal(isle_unlink(NULL, c), ISLE_EINVAL);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* isle_link: itself, bad handles and no ctx are ISLE_EINVAL; an actor
 * already gone is ISLE_EDEAD and makes no link. */
static void test_lifecycle_link_errors(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  agent_log_t *logs = logs_new(2);
  isle_ref_t a = spawn_agent(rt, &logs[0]);
  isle_ref_t b = spawn_agent(rt, &logs[1]);
  assert_int_equal(isle_link(NULL, b), ISLE_EINVAL);
  cmd(rt, a, CMD_LINK, a, 0);
  cmd(rt, a, CMD_LINK, ISLE_REF_NONE, 0);
  cmd(rt, a, CMD_LINK, BAD_REF, 0);
  cmd(rt, b, CMD_FAIL, 0, ISLE_EIO);
  run_ok(rt);
  cmd(rt, a, CMD_LINK, b, 0);
  cmd(rt, a, CMD_UNLINK, b, 0);
  run_ok(rt);
  assert_int_equal(logs[0].nrc, 5);
  assert_int_equal(logs[0].rc[0], ISLE_EINVAL);
  assert_int_equal(logs[0].rc[1], ISLE_EINVAL);
  assert_int_equal(logs[0].rc[2], ISLE_EINVAL);
  assert_int_equal(logs[0].rc[3], ISLE_EDEAD);
  assert_int_equal(logs[0].rc[4], ISLE_ENOENT); /* no link was made */
  assert_true(alive(rt, a));
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* spawn_link: linked before the child runs; its abnormal end reaches the
 * parent; errors as spawn. */
static void test_lifecycle_spawn_link(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(4);
  isle_ref_t p = spawn_agent(rt, &logs[0]);
  cmd(rt, p, CMD_TRAP, 1, 0);
  cmd(rt, p, CMD_SPAWN_LINK, (uint64_t)(uintptr_t)&logs[1], 0);
  run_ok(rt);
  assert_int_equal(logs[0].rc[1], 0);
  isle_ref_t c = logs[0].spawned;
  assert_int_not_equal(c, ISLE_REF_NONE);
  cmd(rt, c, CMD_FAIL, 0, ISLE_EPROTO);
  run_ok(rt);
  assert_int_equal(logs[0].nexit, 1);
  assert_int_equal(logs[0].exit[0].from, c);
  assert_int_equal(logs[0].exit[0].reason, ISLE_EPROTO);

  /* A child whose init fails: the spawn fails with its error. */
  logs[2].init_rc = ISLE_EIO;
  cmd(rt, p, CMD_SPAWN_LINK, (uint64_t)(uintptr_t)&logs[2], 0);
  run_ok(rt);
  assert_int_equal(logs[0].rc[2], ISLE_EIO);
  assert_int_equal(logs[0].nexit, 1);
  assert_int_equal(isle_ctx_spawn_link(NULL, &agent_type, &logs[3], NULL),
                   ISLE_EINVAL);
  assert_int_equal(support_stats(rt).actors_live, 1);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* A child that ends itself in init (isle_exit on itself, isle_ctx_stop):
 * "on itself, the actor ends when the current callback returns", and
 * spawn_link makes the link first, so the parent sees that end. */
static void
test_lifecycle_spawn_link_sees_an_init_that_ends_at_once(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(3);
  isle_ref_t p = spawn_agent(rt, &logs[0]);
  logs[1].init_exit = ISLE_EPROTO;
  logs[2].init_ctx_stop = true;
  cmd(rt, p, CMD_TRAP, 1, 0);
  cmd(rt, p, CMD_SPAWN_LINK, (uint64_t)(uintptr_t)&logs[1], 0);
  cmd(rt, p, CMD_SPAWN_LINK, (uint64_t)(uintptr_t)&logs[2], 0);
  run_ok(rt);
  assert_int_equal(logs[0].rc[1], 0);
  assert_int_equal(logs[0].rc[2], 0);
  assert_int_equal(logs[1].rc[0], 0);
  assert_int_equal(logs[0].nexit, 2);
  assert_int_equal(logs[0].exit[0].reason, ISLE_EPROTO);
  assert_int_equal(logs[0].exit[1].reason, ISLE_EXIT_NORMAL);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.actors_live, 1);
  assert_int_equal(s.failed, 1);
  assert_int_equal(s.stopped, 1);
  assert_int_equal(atomic_load(&logs[1].finalized), 1);
  assert_int_equal(atomic_load(&logs[2].finalized), 1);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* An actor that links in init and then fails its init ends abnormally
 * with init's error: the linked actor hears of it like of any exit. */
static void
test_lifecycle_init_failure_reaches_a_link_made_in_init(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(3);
  isle_ref_t t = spawn_agent(rt, &logs[0]);
  isle_ref_t a = spawn_agent(rt, &logs[1]);
  cmd(rt, t, CMD_TRAP, 1, 0);
  run_ok(rt);
  logs[2].init_link = t;
  logs[2].init_rc = ISLE_EPROTO;
  isle_ref_t x = 99;
  assert_int_equal(isle_runtime_spawn(rt, &agent_type, &logs[2], &x),
                   ISLE_EPROTO);
  assert_int_equal(x, 99);
  logs[2].init_link = a; /* a does not trap: it ends too */
  logs[2].nrc = 0;
  assert_int_equal(isle_runtime_spawn(rt, &agent_type, &logs[2], NULL),
                   ISLE_EPROTO);
  run_ok(rt);
  assert_int_equal(logs[0].nexit, 1);
  assert_int_equal(logs[0].exit[0].reason, ISLE_EPROTO);
  assert_true(logs[0].exit[0].ended);
  assert_int_equal(atomic_load(&logs[1].finalized), 1);
  assert_int_equal(support_stats(rt).actors_live, 1);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* ----- The link race ---------------------------------------------------- */

/*
 * Linkers link to targets that an outside thread ends meanwhile. A link
 * that returned 0 must bring its linker the target's end: an EXIT for a
 * trapping linker, its own end for one that does not trap; one refused
 * with ISLE_EDEAD brings nothing. A link made while its target drained its
 * mailbox and never answered would hang or miss here.
 */
static int race_linker_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  watcher_t *w = *(watcher_t **)state;
  const isle_exit_t *e = isle_msg_exit(msg);
  if (e) {
    WORKER_CHECK(w->trap && w->link_rc == 0);
    WORKER_CHECK(e->from == w->target && e->reason == ISLE_EPROTO);
    atomic_fetch_add(&w->got, 1);
    atomic_fetch_add(&w->race->exits, 1);
    return ISLE_CONTINUE;
  }
  if (isle_msg_type(msg) != W_START)
    return ISLE_CONTINUE;
  if (w->trap)
    WORKER_CHECK(isle_trap_exits(ctx, true) == 0);
  w->link_rc = isle_link(ctx, w->target);
  WORKER_CHECK(w->link_rc == 0 || w->link_rc == ISLE_EDEAD);
  atomic_fetch_add(w->link_rc == 0 ? &w->race->link_ok : &w->race->link_dead,
                   1);
  return ISLE_CONTINUE;
}

static void race_linker_finalize(isle_ctx_t *ctx, void *state) {
  (void)ctx;
  watcher_t *w = *(watcher_t **)state;
  atomic_fetch_add(&w->got, 100); /* ended */
}

static const isle_actor_type_t race_linker_type = {
    .name = "race-linker",
    .state_size = sizeof(watcher_t *),
    .init = race_watcher_init,
    .receive = race_linker_receive,
    .finalize = race_linker_finalize,
};

static void test_lifecycle_link_race_with_a_dying_target(void **state) {
  size_t n = support_iters(20000);
  isle_runtime_t *rt = support_runtime(2, 0);
  race_t race;
  memset(&race, 0, sizeof race);
  watcher_t *ws = calloc(n, sizeof *ws);
  assert_non_null(ws);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  for (size_t i = 0; i < n; i++) {
    isle_ref_t v, l;
    assert_int_equal(isle_runtime_spawn(rt, &victim_type, NULL, &v), 0);
    ws[i].race = &race;
    ws[i].target = v;
    ws[i].trap = i % 2 == 0;
    assert_int_equal(isle_runtime_spawn(rt, &race_linker_type, &ws[i], &l), 0);
    support_send(rt, l, W_START, 0, 0);
    assert_int_equal(isle_runtime_exit(rt, v, ISLE_EPROTO), 0);
  }
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  for (size_t i = 0; i < n; i++) {
    uint64_t got = atomic_load(&ws[i].got);
    if (ws[i].link_rc != 0)
      assert_int_equal(got, 0); /* alive, nothing heard */
    else if (ws[i].trap)
      assert_int_equal(got, 1); /* alive, one EXIT */
    else
      assert_int_equal(got, 100); /* ended with the target */
  }
  assert_int_equal(atomic_load(&race.link_ok) + atomic_load(&race.link_dead),
                   n);
  print_message("link race: %" PRIu64 " links made, %" PRIu64
                " refused (ISLE_EDEAD)\n",
                atomic_load(&race.link_ok), atomic_load(&race.link_dead));
  isle_runtime_free(rt);
  free(ws);
  support_assert_heap_quiet();
}

/* ===== Names ============================================================ */

static void test_lifecycle_names_register_lookup_unregister(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  agent_log_t *logs = logs_new(2);
  isle_ref_t a = spawn_agent(rt, &logs[0]);
  isle_ref_t b = spawn_agent(rt, &logs[1]);
  isle_ref_t out = 0;
  assert_int_equal(isle_name_lookup(rt, "a", &out), ISLE_ENOENT);
  assert_int_equal(isle_name_unregister(rt, "a"), ISLE_ENOENT);
  assert_int_equal(isle_name_register(rt, "a", a), 0);
  assert_int_equal(isle_name_lookup(rt, "a", &out), 0);
  assert_int_equal(out, a);
  /* Taken, and one name per actor. */
  assert_int_equal(isle_name_register(rt, "a", b), ISLE_EBUSY);
  assert_int_equal(isle_name_register(rt, "a", a), ISLE_EBUSY);
  assert_int_equal(isle_name_register(rt, "a2", a), ISLE_EBUSY);
  assert_int_equal(isle_name_register(rt, "b", b), 0);
  assert_int_equal(isle_name_lookup(rt, "b", &out), 0);
  assert_int_equal(out, b);
  assert_int_equal(isle_name_unregister(rt, "a"), 0);
  assert_int_equal(isle_name_lookup(rt, "a", &out), ISLE_ENOENT);
  assert_int_equal(isle_name_unregister(rt, "a"), ISLE_ENOENT);
  /* Unregistered: a may take another name, b's stays. */
  assert_int_equal(isle_name_register(rt, "a2", a), 0);
  assert_int_equal(isle_name_lookup(rt, "a2", &out), 0);
  assert_int_equal(out, a);
  /* Many names: the table grows and keeps them all. */
  enum { MANY = 300 };
  isle_ref_t refs[MANY];
  char name[32];
  for (int i = 0; i < MANY; i++) {
    refs[i] = spawn_agent(rt, &logs[1]);
    snprintf(name, sizeof name, "many-%d", i);
    assert_int_equal(isle_name_register(rt, name, refs[i]), 0);
  }
  for (int i = 0; i < MANY; i++) {
    snprintf(name, sizeof name, "many-%d", i);
    assert_int_equal(isle_name_lookup(rt, name, &out), 0);
    assert_int_equal(out, refs[i]);
    if (i % 2)
      assert_int_equal(isle_name_unregister(rt, name), 0);
  }
  for (int i = 0; i < MANY; i++) {
    snprintf(name, sizeof name, "many-%d", i);
    assert_int_equal(isle_name_lookup(rt, name, &out), i % 2 ? ISLE_ENOENT : 0);
  }
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

static void test_lifecycle_names_errors(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  agent_log_t *logs = logs_new(2);
  isle_ref_t a = spawn_agent(rt, &logs[0]);
  isle_ref_t b = spawn_agent(rt, &logs[1]);
  isle_ref_t out = 0;
  char longest[ISLE_NAME_MAX], too_long[ISLE_NAME_MAX + 1];
  memset(longest, 'x', sizeof longest - 1);
  longest[sizeof longest - 1] = '\0';
  memset(too_long, 'y', sizeof too_long - 1);
  too_long[sizeof too_long - 1] = '\0';
  assert_int_equal(isle_name_register(NULL, "a", a), ISLE_EINVAL);
  assert_int_equal(isle_name_register(rt, NULL, a), ISLE_EINVAL);
  assert_int_equal(isle_name_register(rt, "", a), ISLE_EINVAL);
  assert_int_equal(isle_name_register(rt, too_long, a), ISLE_EINVAL);
  assert_int_equal(isle_name_register(rt, "a", ISLE_REF_NONE), ISLE_EINVAL);
  assert_int_equal(isle_name_register(rt, "a", BAD_REF), ISLE_EINVAL);
  assert_int_equal(isle_name_register(rt, longest, a), 0);
  assert_int_equal(isle_name_lookup(rt, longest, &out), 0);
  assert_int_equal(out, a);
  assert_int_equal(isle_name_lookup(NULL, "a", &out), ISLE_EINVAL);
  assert_int_equal(isle_name_lookup(rt, NULL, &out), ISLE_EINVAL);
  assert_int_equal(isle_name_lookup(rt, "", &out), ISLE_EINVAL);
  assert_int_equal(isle_name_lookup(rt, too_long, &out), ISLE_EINVAL);
  assert_int_equal(isle_name_lookup(rt, longest, NULL), ISLE_EINVAL);
  assert_int_equal(isle_name_unregister(NULL, longest), ISLE_EINVAL);
  assert_int_equal(isle_name_unregister(rt, NULL), ISLE_EINVAL);
  assert_int_equal(isle_name_unregister(rt, ""), ISLE_EINVAL);
  assert_int_equal(isle_name_unregister(rt, too_long), ISLE_EINVAL);
  /* A dead actor: ISLE_EDEAD, and the name stays free. */
  cmd(rt, b, CMD_STOP, 0, 0);
  run_ok(rt);
  assert_int_equal(isle_name_register(rt, "b", b), ISLE_EDEAD);
  assert_int_equal(isle_name_lookup(rt, "b", &out), ISLE_ENOENT);
  /* The slot's next occupant is not the dead handle's. */
  isle_ref_t b2 = spawn_agent(rt, &logs[1]);
  assert_int_equal(isle_name_register(rt, "b", b), ISLE_EDEAD);
  assert_int_equal(isle_name_register(rt, "b", b2), 0);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* A name is freed when its actor ends, before its monitors hear of it;
 * then another actor may take it. */
static void test_lifecycle_name_is_freed_when_its_actor_ends(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  agent_log_t *logs = logs_new(3);
  isle_ref_t w = spawn_agent(rt, &logs[0]);
  isle_ref_t a = spawn_agent(rt, &logs[1]);
  logs[0].lookup_on_down = "svc";
  assert_int_equal(isle_name_register(rt, "svc", a), 0);
  cmd(rt, w, CMD_MONITOR, a, 0);
  tell(rt, w, a, CMD_FAIL, ISLE_EIO);
  run_ok(rt);
  assert_int_equal(logs[0].ndown, 1);
  assert_int_equal(logs[0].nrc, 3);
  assert_int_equal(logs[0].rc[2], ISLE_ENOENT); /* looked up at the DOWN */
  isle_ref_t out;
  assert_int_equal(isle_name_lookup(rt, "svc", &out), ISLE_ENOENT);
  isle_ref_t b = spawn_agent(rt, &logs[2]);
  assert_int_equal(isle_name_register(rt, "svc", b), 0);
  assert_int_equal(isle_name_lookup(rt, "svc", &out), 0);
  assert_int_equal(out, b);
  /* A normal end frees it too. */
  cmd(rt, b, CMD_STOP, 0, 0);
  run_ok(rt);
  assert_int_equal(isle_name_lookup(rt, "svc", &out), ISLE_ENOENT);
  /* And the runtime's end frees what is left. */
  isle_ref_t c = spawn_agent(rt, &logs[2]);
  assert_int_equal(isle_name_register(rt, "svc", c), 0);
  isle_runtime_free(rt);
  free(logs);
  support_assert_heap_quiet();
}

/* ----- The names race --------------------------------------------------- */

/*
 * Actors end while names are registered for them, from this thread
 * (racing an outside isle_runtime_exit) and from inside (an actor that
 * registers its own name in its last receive). Each register returns 0 or
 * ISLE_EDEAD; either way, once the run is over no name is left: a name
 * registered after the end's look at the registry would stay here stale.
 */
enum { N_REGISTER_AND_DIE = 1 };

static int namer_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)state;
  if (isle_msg_type(msg) != N_REGISTER_AND_DIE)
    return ISLE_CONTINUE;
  char name[32];
  snprintf(name, sizeof name, "self-%" PRIu64, support_payload(msg)->a);
  WORKER_CHECK(
      isle_name_register(isle_ctx_runtime(ctx), name, isle_ctx_self(ctx)) == 0);
  return ISLE_EIO;
}

static const isle_actor_type_t namer_type = {
    .name = "namer",
    .receive = namer_receive,
};

static void test_lifecycle_names_race_leaves_no_stale_name(void **state) {
  size_t n = support_iters(20000);
  isle_runtime_t *rt = support_runtime(2, 0);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  uint64_t ok = 0, dead = 0;
  char name[32];
  for (size_t i = 0; i < n; i++) {
    isle_ref_t a;
    assert_int_equal(isle_runtime_spawn(rt, &namer_type, NULL, &a), 0);
    if (i % 2) {
      support_send(rt, a, N_REGISTER_AND_DIE, i, 0);
      continue;
    }
    assert_int_equal(isle_runtime_exit(rt, a, ISLE_EIO), 0);
    snprintf(name, sizeof name, "out-%zu", i);
    int rc = isle_name_register(rt, name, a);
    assert_true(rc == 0 || rc == ISLE_EDEAD);
    if (rc == 0)
      ok++;
    else
      dead++;
  }
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  assert_int_equal(support_stats(rt).actors_live, 0);
  isle_ref_t out;
  for (size_t i = 0; i < n; i++) {
    snprintf(name, sizeof name, i % 2 ? "self-%zu" : "out-%zu", i);
    assert_int_equal(isle_name_lookup(rt, name, &out), ISLE_ENOENT);
  }
  /* And every name is free for the taking again. */
  isle_ref_t a;
  assert_int_equal(isle_runtime_spawn(rt, &namer_type, NULL, &a), 0);
  for (size_t i = 0; i < n; i++) {
    snprintf(name, sizeof name, i % 2 ? "self-%zu" : "out-%zu", i);
    assert_int_equal(isle_name_register(rt, name, a), 0);
    assert_int_equal(isle_name_unregister(rt, name), 0);
  }
  print_message("names race: %" PRIu64 " registered before the end, %" PRIu64
                " refused (ISLE_EDEAD)\n",
                ok, dead);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_lifecycle_exit_reasons_are_counted_and_reported),
      T(test_lifecycle_exit_request_comes_after_the_queued_backlog),
      T(test_lifecycle_exit_errors),
      T(test_lifecycle_exit_request_to_a_trapping_actor),
      T(test_lifecycle_monitor_delivers_one_down),
      T(test_lifecycle_monitor_of_a_dead_actor_gets_edead),
      T(test_lifecycle_demonitor_before_and_after_the_end),
      T(test_lifecycle_monitor_errors),
      T(test_lifecycle_many_watchers_of_one_target),
      T(test_lifecycle_watchers_that_end_leave_nothing_behind),
      T(test_lifecycle_monitor_race_delivers_each_down_once),
      T(test_lifecycle_link_propagates_an_abnormal_exit_down_a_chain),
      T(test_lifecycle_link_normal_exit_ends_no_one),
      T(test_lifecycle_trap_exits_turns_exits_into_messages),
      T(test_lifecycle_unlink_stops_propagation),
      T(test_lifecycle_link_errors),
      T(test_lifecycle_spawn_link),
      T(test_lifecycle_spawn_link_sees_an_init_that_ends_at_once),
      T(test_lifecycle_init_failure_reaches_a_link_made_in_init),
      T(test_lifecycle_link_race_with_a_dying_target),
      T(test_lifecycle_names_register_lookup_unregister),
      T(test_lifecycle_names_errors),
      T(test_lifecycle_name_is_freed_when_its_actor_ends),
      T(test_lifecycle_names_race_leaves_no_stale_name),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
