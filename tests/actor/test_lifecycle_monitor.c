/* isle — MIT licensed. */
/*
 * Monitors (include/isle/lifecycle.h): every function and every error
 * they document; DOWN delivered exactly once, also for an actor already
 * gone, never after a demonitor, to many watchers, and while the target
 * dies on another worker; watchers that end leave nothing behind.
 *
 * Most tests drive "agents" (support_lifecycle.h): actors that run
 * commands sent to them (monitor this, link that, fail with this reason,
 * tell another agent to ...) and record what they see in an agent_log_t
 * the test owns. A command an agent sends to another agent travels in
 * order with its own monitor and link requests, which makes the outcome of
 * a scenario deterministic. Callbacks check with WORKER_CHECK; the test
 * asserts after the run, which joins the workers (so plain fields of the
 * logs are safe to read then). Every test ends with the heap as it began
 * (support_assert_heap_quiet).
 */
#define _GNU_SOURCE /* pthread, nanosleep under -std=c11 */

#include "support_lifecycle.h"

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

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_lifecycle_monitor_delivers_one_down),
      T(test_lifecycle_monitor_of_a_dead_actor_gets_edead),
      T(test_lifecycle_demonitor_before_and_after_the_end),
      T(test_lifecycle_monitor_errors),
      T(test_lifecycle_many_watchers_of_one_target),
      T(test_lifecycle_watchers_that_end_leave_nothing_behind),
      T(test_lifecycle_monitor_race_delivers_each_down_once),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
