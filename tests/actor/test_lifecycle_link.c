/* isle — MIT licensed. */
/*
 * Links (include/isle/lifecycle.h): every function and every error they
 * document; propagation of an abnormal exit, a normal exit that ends no
 * one, trapping, unlinking, spawn_link (also with an init that ends at
 * once or fails), and a link made while its target dies on another worker.
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

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_lifecycle_link_propagates_an_abnormal_exit_down_a_chain),
      T(test_lifecycle_link_normal_exit_ends_no_one),
      T(test_lifecycle_trap_exits_turns_exits_into_messages),
      T(test_lifecycle_unlink_stops_propagation),
      T(test_lifecycle_link_errors),
      T(test_lifecycle_spawn_link),
      T(test_lifecycle_spawn_link_sees_an_init_that_ends_at_once),
      T(test_lifecycle_init_failure_reaches_a_link_made_in_init),
      T(test_lifecycle_link_race_with_a_dying_target),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
