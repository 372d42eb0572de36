/* isle — MIT licensed. */
/*
 * Exits and names (include/isle/lifecycle.h): every function and every
 * error they document; the ways an actor ends and how they are counted, an
 * exit request behind a queued backlog and to a trapping actor; names
 * registered, looked up and unregistered, freed when their actor ends, and
 * a name made while its actor dies on another worker. Monitors are in
 * test_lifecycle_monitor.c, links in test_lifecycle_link.c.
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
      T(test_lifecycle_names_register_lookup_unregister),
      T(test_lifecycle_names_errors),
      T(test_lifecycle_name_is_freed_when_its_actor_ends),
      T(test_lifecycle_names_race_leaves_no_stale_name),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
