/* isle — MIT licensed. */
/*
 * The io layer and its runtime (io/io.c): a runtime has none of it until
 * its first timer, listener or isle_io_config; isle_io_config's errors and
 * modes; isle_io_stats before and after; and a layer attached while the
 * workers sleep on their futexes, which must move them into their loops
 * (a connection dealt to a worker that stayed on its futex would never be
 * read).
 */
#define _GNU_SOURCE /* pthread, nanosleep, timed waits under -std=c11 */

#include <dirent.h>

#include "support.h"
#include "actor/internal.h" /* end-of-actor hooks, to use them all up */

/* Threads of this process named `name` (/proc/self/task/<tid>/comm). */
static unsigned threads_named(const char *name) {
  DIR *d = opendir("/proc/self/task");
  assert_non_null(d);
  unsigned n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.')
      continue;
    char path[300], comm[32] = {0};
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue; /* ended meanwhile */
    if (fgets(comm, sizeof comm, f)) {
      comm[strcspn(comm, "\n")] = 0;
      n += strcmp(comm, name) == 0;
    }
    fclose(f);
  }
  closedir(d);
  return n;
}

static int sink_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)msg;
  atomic_fetch_add((_Atomic uint64_t *)*(void **)state, 1);
  return ISLE_CONTINUE;
}

static int sink_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(const void **)state = arg;
  return 0;
}

static const isle_actor_type_t sink_type = {
    .name = "sink",
    .state_size = sizeof(void *),
    .init = sink_init,
    .receive = sink_receive,
};

static void test_io_config_arguments_and_modes(void **state) {
  isle_io_config_init(NULL); /* ignored */
  isle_io_config_t cfg;
  memset(&cfg, 0x5a, sizeof cfg);
  isle_io_config_init(&cfg);
  assert_int_equal(cfg.mode, ISLE_IO_DEFAULT);
  assert_int_equal(isle_io_config(NULL, &cfg), ISLE_EINVAL);
  isle_runtime_t *rt = support_runtime(2, 0);
  isle_io_stats_t st;
  assert_int_equal(isle_io_stats(NULL, &st), ISLE_EINVAL);
  assert_int_equal(isle_io_stats(rt, NULL), ISLE_EINVAL);
  /* Nothing of the layer yet: zeros, no mode. */
  st = support_io_stats(rt);
  assert_int_equal(st.mode, ISLE_IO_DEFAULT);
  assert_int_equal(st.timers_fired + st.timers_dropped + st.tcp_accepted +
                       st.tcp_refused + st.tcp_open,
                   0);
  cfg.mode = (isle_io_mode_t)99;
  assert_int_equal(isle_io_config(rt, &cfg), ISLE_EINVAL);
  assert_int_equal(support_io_stats(rt).mode, ISLE_IO_DEFAULT); /* untouched */
  cfg.mode = ISLE_IO_THREAD;
  assert_int_equal(isle_io_config(rt, &cfg), 0);
  assert_int_equal(isle_io_config(rt, &cfg), 0); /* the same mode again */
  assert_int_equal(support_io_stats(rt).mode, ISLE_IO_THREAD);
  cfg.mode = ISLE_IO_WORKERS;
  assert_int_equal(isle_io_config(rt, &cfg), ISLE_ESTATE); /* too late */
  assert_int_equal(isle_io_config(rt, NULL), ISLE_ESTATE); /* the default */
  assert_int_equal(support_io_stats(rt).mode, ISLE_IO_THREAD);
  assert_int_equal(isle_runtime_free(rt), 0);
  /* NULL: the defaults, which are ISLE_IO_WORKERS. */
  rt = support_runtime(1, 0);
  assert_int_equal(isle_io_config(rt, NULL), 0);
  assert_int_equal(support_io_stats(rt).mode, ISLE_IO_WORKERS);
  cfg.mode = ISLE_IO_DEFAULT;
  assert_int_equal(isle_io_config(rt, &cfg), 0);
  assert_int_equal(isle_runtime_free(rt), 0);
  support_assert_heap_quiet();
}

/* A runtime of actors alone never makes the io thread; its first timer
 * attaches the layer with the default mode and starts the thread. */
static void test_io_attached_by_first_use_only(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  _Atomic uint64_t got = 0;
  isle_ref_t a;
  assert_int_equal(isle_runtime_spawn(rt, &sink_type, (void *)&got, &a), 0);
  for (unsigned i = 0; i < 100; i++)
    support_send(rt, a, 1, i, 0);
  assert_int_equal(isle_runtime_run(rt), 0);
  assert_int_equal(atomic_load(&got), 100);
  assert_int_equal(support_io_stats(rt).mode, ISLE_IO_DEFAULT);
  assert_int_equal(threads_named("io"), 0);
  /* A timer: the layer is there now, the io thread too. */
  assert_int_equal(isle_timer_start(rt, a, support_msg(2, 0, 0), 1, 0, NULL),
                   0);
  assert_int_equal(support_io_stats(rt).mode, ISLE_IO_WORKERS);
  /* It names itself once it runs. */
  uint64_t deadline = support_now_ns() + (uint64_t)WAIT_MS * 1000000u;
  while (threads_named("io") == 0 && support_now_ns() < deadline)
    support_sleep_ms(1);
  assert_int_equal(threads_named("io"), 1);
  isle_io_config_t cfg;
  isle_io_config_init(&cfg);
  cfg.mode = ISLE_IO_THREAD;
  assert_int_equal(isle_io_config(rt, &cfg), ISLE_ESTATE);
  assert_int_equal(isle_runtime_run(rt), 0); /* until the timer fired */
  assert_int_equal(atomic_load(&got), 101);
  assert_int_equal(support_io_stats(rt).timers_fired, 1);
  assert_int_equal(isle_runtime_free(rt), 0);
  assert_int_equal(threads_named("io"), 0);
  support_assert_heap_quiet();
}

static void hook_unused(isle_runtime_t *rt, isle_ref_t self) {
  (void)rt;
  (void)self;
}

/* The layer cannot attach (its timers' end hook finds no room): every
 * first use fails with ISLE_ENOMEM, leaves nothing behind, and a timer's
 * message stays with the caller. */
static void test_io_attach_failure_is_an_error_everywhere(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  uint32_t bit;
  while (isle__end_hook_add(rt, hook_unused, &bit) == 0)
    ;
  assert_int_equal(isle_io_config(rt, NULL), ISLE_ENOMEM);
  isle_ref_t a;
  _Atomic uint64_t got = 0;
  assert_int_equal(isle_runtime_spawn(rt, &sink_type, (void *)&got, &a), 0);
  isle_msg_t *m = support_msg(2, 0, 0);
  assert_int_equal(isle_timer_start(rt, a, m, 1, 0, NULL), ISLE_ENOMEM);
  isle_msg_free(m); /* still ours */
  isle_tcp_opts_t o = {0};
  isle_listener_t l = 0;
  assert_int_equal(isle_tcp_listen(rt, &o, a, &l, NULL), ISLE_ENOMEM);
  assert_int_equal(l, 0);
  assert_int_equal(support_io_stats(rt).mode, ISLE_IO_DEFAULT);
  assert_int_equal(threads_named("io"), 0);
  assert_int_equal(isle_runtime_run(rt), 0); /* nothing holds it */
  assert_int_equal(isle_runtime_free(rt), 0);
  support_assert_heap_quiet();
}

/* A finalize that isle_runtime_free runs may not attach the layer anew
 * (its loops and io thread would outlive the runtime): ISLE_ESTATE. */
static _Atomic int late_rc;

static void late_finalize(isle_ctx_t *ctx, void *state) {
  (void)state;
  atomic_store(&late_rc, isle_io_config(isle_ctx_runtime(ctx), NULL));
}

static const isle_actor_type_t late_type = {
    .name = "late", .receive = sink_receive, .finalize = late_finalize};

static void test_io_no_attach_from_a_finalize_at_teardown(void **state) {
  for (unsigned round = 0; round < 20; round++) {
    atomic_store(&late_rc, 1);
    isle_runtime_t *rt = support_runtime(2, 0);
    assert_int_equal(isle_runtime_spawn(rt, &late_type, NULL, NULL), 0);
    assert_int_equal(isle_runtime_free(rt), 0); /* runs the finalize */
    assert_int_equal(atomic_load(&late_rc), ISLE_ESTATE);
    assert_int_equal(threads_named("io"), 0);
  }
  support_assert_heap_quiet();
}

/* Waits until both workers of a held, running runtime went to sleep. */
static void wait_both_parked(isle_runtime_t *rt) {
  uint64_t deadline = support_now_ns() + (uint64_t)WAIT_MS * 1000000u;
  while (support_stats(rt).parks < 2) {
    if (support_now_ns() > deadline)
      fail_msg("the workers did not go to sleep");
    support_sleep_ms(1);
  }
  support_sleep_ms(20); /* past the announcement, into the futex wait */
}

/* The layer is attached (by a listener) while both workers sleep on their
 * futexes: each must move into its loop, where the connections dealt to
 * it wake it. Several connections, so that each worker gets some. */
static void
test_io_attached_while_workers_sleep_serves_connections(void **state) {
  for (unsigned round = 0; round < 3; round++) {
    rig_t r;
    memset(&r, 0, sizeof r);
    r.rt = support_runtime(2, 0);
    probe_init(&r.probe, r.rt);
    r.probe.start = true;
    r.probe.echo = true;
    assert_int_equal(isle_runtime_spawn(r.rt, &probe_type, &r.probe, &r.actor),
                     0);
    isle_runtime_hold(r.rt); /* the run waits for us */
    support_runner_start(&r.runner, r.rt);
    wait_both_parked(r.rt);
    assert_int_equal(support_io_stats(r.rt).mode, ISLE_IO_DEFAULT);
    isle_tcp_opts_t o = {0};
    assert_int_equal(isle_tcp_listen(r.rt, &o, r.actor, &r.listener, &r.port),
                     0);
    assert_int_equal(support_io_stats(r.rt).mode, ISLE_IO_WORKERS);
    enum { N = 4 };
    int fd[N];
    isle_conn_t conn[N];
    for (unsigned i = 0; i < N; i++)
      conn[i] = rig_connect(&r, &fd[i], i + 1);
    for (unsigned i = 0; i < N; i++) {
      char out[8], in[8];
      snprintf(out, sizeof out, "hi %u", i);
      client_send(fd[i], out, strlen(out));
      client_recv(fd[i], in, strlen(out)); /* fails the test on timeout */
      assert_memory_equal(in, out, strlen(out));
    }
    for (unsigned i = 0; i < N; i++) {
      assert_int_equal(isle_tcp_close(r.rt, conn[i], false), 0);
      probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn[i], 1);
      close(fd[i]);
    }
    assert_int_equal(isle_runtime_release(r.rt), 0);
    rig_finish(&r);
  }
}

int main(void) {
  io_main_setup();
  const struct CMUnitTest tests[] = {
      IO_TEST(test_io_config_arguments_and_modes),
      IO_TEST(test_io_attached_by_first_use_only),
      IO_TEST(test_io_attach_failure_is_an_error_everywhere),
      IO_TEST(test_io_no_attach_from_a_finalize_at_teardown),
      IO_TEST(test_io_attached_while_workers_sleep_serves_connections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
