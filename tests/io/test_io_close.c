/* isle — MIT licensed. */
/*
 * TCP as actor messages (include/isle/io.h): how connections and runs end.
 * EOF, the reasons of CLOSED (isle_tcp_close, the idle timeout, a reset),
 * a graceful close that writes everything queued first, ISLE_EDEAD after
 * CLOSED, isle_tcp_unlisten, isle_io_shutdown (listeners closed, EOF to
 * owners, stragglers closed at the deadline, then the run returns) and a
 * runtime freed with connections still open; and issue 12's regressions:
 * a graceful close to a peer that never reads ended by idle_ms, by the
 * shutdown deadline and by teardown. Those that loop over `modes` run once
 * with ISLE_IO_WORKERS and once with ISLE_IO_THREAD (rig_new_mode).
 */
#define _GNU_SOURCE /* pthread, nanosleep, timed waits under -std=c11 */

#include "support.h"

/* ===== EOF and the reasons of CLOSED ===================================== */

static void test_io_eof_when_the_peer_shuts_down_its_side(void **state) {
  rig_t r;
  rig_new(&r);
  r.probe.start = true;
  isle_tcp_opts_t o = {0};
  rig_spawn_and_listen(&r, &o);
  int fd;
  isle_conn_t conn = rig_connect(&r, &fd, 1);
  client_send(fd, "last words", 10);
  assert_int_equal(shutdown(fd, SHUT_WR), 0);
  ev_t e = probe_expect(&r.probe, ISLE_MSG_TCP_EOF, conn, 1);
  assert_int_equal(e.reason, 0);
  assert_int_equal(e.listener, r.listener);
  /* The data came before the EOF. */
  assert_int_equal(r.probe.nbytes, 10);
  /* Half-closed: the owner may still answer, then close. */
  assert_int_equal(isle_tcp_write(r.rt, conn, bytes_msg("reply", 5)), 0);
  assert_int_equal(isle_tcp_close(r.rt, conn, true), 0);
  char buf[8];
  client_recv(fd, buf, 5);
  assert_memory_equal(buf, "reply", 5);
  assert_int_equal(client_recv_end(fd, NULL), 0);
  ev_t c = probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1);
  assert_int_equal(c.reason, 0);
  close(fd);
  rig_finish(&r);
}

static void test_io_closed_with_eshutdown_after_idle_ms(void **state) {
  rig_t r;
  rig_new(&r);
  r.probe.start = true;
  const uint32_t idle = 200;
  isle_tcp_opts_t o = {.idle_ms = idle};
  rig_spawn_and_listen(&r, &o);
  uint64_t t0 = support_now_ns();
  int fd;
  isle_conn_t conn = rig_connect(&r, &fd, 1);
  ev_t c = probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1);
  uint64_t ms = (support_now_ns() - t0) / 1000000u;
  assert_int_equal(c.reason, ISLE_ESHUTDOWN);
  /* Never early; late by a bounded amount. */
  assert_true(ms + 5 >= idle);
  assert_true(ms <= idle + LATE_MS);
  assert_int_equal(client_recv_end(fd, NULL), 0);
  close(fd);
  rig_finish(&r);
}

static void test_io_closed_with_eio_after_a_reset(void **state) {
  rig_t r;
  rig_new(&r);
  r.probe.start = true;
  isle_tcp_opts_t o = {0};
  rig_spawn_and_listen(&r, &o);
  int fd;
  isle_conn_t conn = rig_connect(&r, &fd, 1);
  client_send(fd, "partial requ", 12);
  probe_expect_bytes(&r.probe, 12);
  client_reset(fd);
  ev_t c = probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1);
  assert_int_equal(c.reason, ISLE_EIO);
  assert_int_equal(probe_count(&r.probe, ISLE_MSG_TCP_EOF, conn), 0);
  rig_finish(&r);
}

static void
test_io_graceful_close_writes_everything_queued_first(void **state) {
  rig_t r;
  rig_new(&r);
  r.probe.start = true;
  const size_t chunk = 32 * 1024;
  const size_t total = 4u << 20;
  isle_tcp_opts_t o = {.max_output = total + chunk};
  rig_spawn_and_listen(&r, &o);
  int fd;
  isle_conn_t conn = rig_connect(&r, &fd, 1);
  for (size_t off = 0; off < total; off += chunk) {
    isle_msg_t *m = isle_msg_new(7, chunk);
    assert_non_null(m);
    fill_pattern(isle_msg_data(m), off, chunk);
    assert_int_equal(isle_tcp_write(r.rt, conn, m), 0);
  }
  assert_int_equal(isle_tcp_close(r.rt, conn, true), 0);
  /* Everything arrives, in order, then FIN. */
  char *buf = malloc(total);
  assert_non_null(buf);
  client_recv(fd, buf, total);
  assert_int_equal(pattern_mismatch(buf, 0, total), total);
  assert_int_equal(client_recv_end(fd, NULL), 0);
  free(buf);
  ev_t c = probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1);
  assert_int_equal(c.reason, 0);
  close(fd);
  rig_finish(&r);
}

/* Issue 12, bug 1: a graceful close to a peer that never reads cannot
 * finish; it used to hold the connection (and the runtime) forever, the
 * idle timeout skipping it. It gives up after idle_ms from the close call
 * and resets the connection (CLOSED with ISLE_ESHUTDOWN). */
static void
test_io_graceful_close_to_a_peer_that_never_reads_ends_after_idle_ms(
    void **state) {
  const isle_io_mode_t modes[] = {ISLE_IO_WORKERS, ISLE_IO_THREAD};
  for (size_t k = 0; k < 2; k++) {
    rig_t r;
    rig_new_mode(&r, modes[k]);
    r.probe.start = true;
    const uint32_t idle = 300;
    const size_t total = 4u << 20; /* more than the kernel buffers take */
    isle_tcp_opts_t o = {.max_output = 2 * total, .idle_ms = idle};
    rig_spawn_and_listen(&r, &o);
    /* Filled before the connection exists: filling 4 MiB takes longer
     * than idle_ms under the sanitizers, and the connection, its output
     * stalled, would time out before the close this test times. */
    pattern_t p;
    pattern_make(&p, total);
    int fd;
    isle_conn_t conn = rig_connect_buf(&r, &fd, 1, 4096);
    rig_write_made(&r, conn, &p);
    uint64_t t0 = support_now_ns();
    assert_int_equal(isle_tcp_close(r.rt, conn, true), 0);
    ev_t c = probe_expect_within(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1,
                                 idle + LATE_MS);
    uint64_t ms = (support_now_ns() - t0) / 1000000u;
    assert_int_equal(c.reason, ISLE_ESHUTDOWN);
    assert_true(ms + 5 >= idle); /* the close had idle_ms to finish */
    int end = client_recv_end(fd, NULL);
    assert_true(end == 0 || end == -ECONNRESET);
    close(fd);
    rig_finish(&r);
  }
}

static void test_io_write_and_close_fail_with_edead_after_closed(void **state) {
  rig_t r;
  rig_new(&r);
  r.probe.start = true;
  isle_tcp_opts_t o = {0};
  rig_spawn_and_listen(&r, &o);
  int fd;
  isle_conn_t conn = rig_connect(&r, &fd, 1);
  assert_int_equal(isle_tcp_close(r.rt, conn, false), 0);
  /* Dead from the moment the close is taken, at the latest at CLOSED. */
  probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1);
  isle_msg_t *m = bytes_msg("late", 4);
  assert_int_equal(isle_tcp_write(r.rt, conn, m), ISLE_EDEAD);
  isle_msg_free(m); /* still ours */
  assert_int_equal(isle_tcp_close(r.rt, conn, false), ISLE_EDEAD);
  assert_int_equal(isle_tcp_close(r.rt, conn, true), ISLE_EDEAD);
  assert_int_equal(isle_tcp_start(r.rt, conn, r.actor), ISLE_EDEAD);
  assert_int_equal(client_recv_end(fd, NULL), 0);
  close(fd);
  /* A new connection may take the slot: the old handle stays dead. */
  int fd2;
  isle_conn_t conn2 = rig_connect(&r, &fd2, 2);
  assert_int_not_equal(conn2, conn);
  m = bytes_msg("late", 4);
  assert_int_equal(isle_tcp_write(r.rt, conn, m), ISLE_EDEAD);
  isle_msg_free(m);
  assert_int_equal(isle_tcp_close(r.rt, conn, false), ISLE_EDEAD);
  assert_int_equal(isle_tcp_close(r.rt, conn2, false), 0);
  probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn2, 1);
  /* One CLOSED each, the last event. */
  assert_int_equal(probe_count(&r.probe, ISLE_MSG_TCP_CLOSED, conn), 1);
  close(fd2);
  rig_finish(&r);
}

/* ===== Unlisten and shutdown ============================================= */

static void
test_io_unlisten_stops_accepting_and_keeps_connections(void **state) {
  rig_t r;
  rig_new(&r);
  r.probe.start = true;
  r.probe.echo = true;
  isle_tcp_opts_t o = {0};
  rig_spawn_and_listen(&r, &o);
  int fd;
  isle_conn_t conn = rig_connect(&r, &fd, 1);
  assert_int_equal(isle_tcp_unlisten(r.rt, r.listener), 0);
  /* A listen waits for the io thread, which runs commands in order: the
   * unlisten is done once it returns (this one fails: a bad address). */
  isle_tcp_opts_t bad = {.host = "bad"};
  assert_int_equal(isle_tcp_listen(r.rt, &bad, r.actor, NULL, NULL),
                   ISLE_EINVAL);
  assert_true(client_refused(r.port));
  assert_int_equal(isle_tcp_unlisten(r.rt, r.listener), ISLE_EDEAD);
  /* The open connection still works. */
  client_send(fd, "still here", 10);
  char buf[10];
  client_recv(fd, buf, 10);
  assert_memory_equal(buf, "still here", 10);
  assert_int_equal(isle_tcp_close(r.rt, conn, true), 0);
  probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1);
  close(fd);
  r.listener = 0; /* rig_finish: nothing to unlisten */
  rig_finish(&r);
}

/* Three connections when the shutdown comes: one the test closes on EOF
 * (as a well-behaved owner would), one whose owner ignores EOF (closed at
 * the deadline) and one never started (no owner: closed at once). */
static void
test_io_shutdown_closes_listeners_eofs_owners_then_forces(void **state) {
  rig_t r;
  rig_new(&r);
  isle_tcp_opts_t o = {0};
  rig_spawn_and_listen(&r, &o);
  int fa, fb, fc;
  isle_conn_t a = rig_connect(&r, &fa, 1);
  isle_conn_t b = rig_connect(&r, &fb, 2);
  (void)rig_connect(&r, &fc, 3);
  assert_int_equal(isle_tcp_start(r.rt, a, r.actor), 0);
  assert_int_equal(isle_tcp_start(r.rt, b, r.actor), 0);
  client_send(fa, "a", 1);
  client_send(fb, "b", 1);
  probe_expect_bytes(&r.probe, 2); /* both are reading */
  const uint32_t deadline = 400;
  uint64_t t0 = support_now_ns();
  assert_int_equal(isle_io_shutdown(r.rt, deadline), 0);
  probe_expect(&r.probe, ISLE_MSG_TCP_EOF, a, 1);
  probe_expect(&r.probe, ISLE_MSG_TCP_EOF, b, 1);
  /* The listener is closed before the EOFs are sent. */
  assert_true(client_refused(r.port));
  /* The never-started one is closed at once, without an event. */
  int end = client_recv_end(fc, NULL);
  assert_true(end == 0 || end == -ECONNRESET);
  close(fc);
  /* a finishes: its last answer goes out, then FIN. */
  assert_int_equal(isle_tcp_write(r.rt, a, bytes_msg("bye", 3)), 0);
  assert_int_equal(isle_tcp_close(r.rt, a, true), 0);
  char buf[3];
  client_recv(fa, buf, 3);
  assert_memory_equal(buf, "bye", 3);
  assert_int_equal(client_recv_end(fa, NULL), 0);
  ev_t ca = probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, a, 1);
  assert_int_equal(ca.reason, 0);
  /* b is closed at the deadline. */
  ev_t cb = probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, b, 1);
  uint64_t ms = (support_now_ns() - t0) / 1000000u;
  assert_int_equal(cb.reason, ISLE_ESHUTDOWN);
  assert_true(ms + 5 >= deadline);
  assert_true(ms <= deadline + LATE_MS);
  end = client_recv_end(fb, NULL);
  assert_true(end == 0 || end == -ECONNRESET);
  close(fa);
  close(fb);
  /* Quiescent now, with the listener already closed by the shutdown. */
  assert_int_equal(isle_tcp_unlisten(r.rt, r.listener), ISLE_EDEAD);
  r.listener = 0;
  assert_int_equal(probe_count(&r.probe, ISLE_MSG_TCP_CLOSED, 0), 2);
  rig_finish(&r);
}

/* A shutdown with nothing open: the run returns at once (the deadline
 * does not hold it). */
static void test_io_shutdown_with_nothing_open_returns_at_once(void **state) {
  rig_t r;
  rig_new(&r);
  isle_tcp_opts_t o = {0};
  rig_spawn_and_listen(&r, &o);
  uint64_t t0 = support_now_ns();
  assert_int_equal(isle_io_shutdown(r.rt, 60000), 0);
  assert_true(support_runner_wait(&r.runner, WAIT_MS));
  assert_true((support_now_ns() - t0) / 1000000u < WAIT_MS);
  assert_true(client_refused(r.port));
  r.listener = 0;
  rig_finish(&r);
}

/* Issue 12, bug 1: the shutdown deadline skipped connections already
 * closing, so a graceful close to a peer that never reads kept its hold
 * and the run never returned. A deadline is a deadline: it resets it. */
static void
test_io_shutdown_deadline_ends_a_graceful_close_in_progress(void **state) {
  const isle_io_mode_t modes[] = {ISLE_IO_WORKERS, ISLE_IO_THREAD};
  for (size_t k = 0; k < 2; k++) {
    rig_t r;
    rig_new_mode(&r, modes[k]);
    r.probe.start = true;
    const size_t total = 4u << 20;
    isle_tcp_opts_t o = {.max_output = 2 * total};
    rig_spawn_and_listen(&r, &o);
    int fd;
    isle_conn_t conn = rig_connect_buf(&r, &fd, 1, 4096);
    rig_write_pattern(&r, conn, total);
    assert_int_equal(isle_tcp_close(r.rt, conn, true), 0);
    rig_wait_closing(&r, conn);
    const uint32_t deadline = 200;
    uint64_t t0 = support_now_ns();
    assert_int_equal(isle_io_shutdown(r.rt, deadline), 0);
    ev_t c = probe_expect_within(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1,
                                 deadline + LATE_MS);
    assert_int_equal(c.reason, ISLE_ESHUTDOWN);
    /* The run returns by the deadline, give or take a timer's lateness. */
    assert_true(support_runner_wait(&r.runner, deadline + LATE_MS));
    uint64_t ms = (support_now_ns() - t0) / 1000000u;
    assert_true(ms + 5 >= deadline);
    assert_int_equal(support_io_stats(r.rt).tcp_open, 0);
    int end = client_recv_end(fd, NULL);
    assert_true(end == 0 || end == -ECONNRESET);
    close(fd);
    r.listener = 0; /* closed by the shutdown */
    rig_finish(&r);
  }
}

/* Freed while connections and a listener are open (the run stopped):
 * everything is closed and freed, without events. */
static void test_io_runtime_free_with_connections_open(void **state) {
  rig_t r;
  rig_new(&r);
  r.probe.start = true;
  isle_tcp_opts_t o = {0};
  rig_spawn_and_listen(&r, &o);
  int fd[3];
  for (size_t i = 0; i < 3; i++)
    (void)rig_connect(&r, &fd[i], i + 1);
  client_send(fd[0], "unread", 6);
  probe_expect_bytes(&r.probe, 6);
  isle_runtime_stop(r.rt);
  assert_int_equal(support_runner_join(&r.runner), 0);
  assert_int_equal(support_io_stats(r.rt).tcp_open, 3);
  isle_runtime_free(r.rt);
  for (size_t i = 0; i < 3; i++) {
    int end = client_recv_end(fd[i], NULL);
    assert_true(end == 0 || end == -ECONNRESET);
    close(fd[i]);
  }
  assert_int_equal(probe_count(&r.probe, ISLE_MSG_TCP_CLOSED, 0), 0);
  probe_deinit(&r.probe);
  support_assert_workers_ok();
  support_assert_heap_quiet();
}

/* Issue 12, bug 2: freed while a graceful close waits for a peer that
 * never reads. libuv cancels the shutdown request, whose callback used to
 * close handles that teardown was already closing (libuv's assertion, or
 * a double entry on its closing list) and leak the connection. Everything
 * is freed once, without events. */
static void test_io_runtime_free_with_a_graceful_close_pending(void **state) {
  const isle_io_mode_t modes[] = {ISLE_IO_WORKERS, ISLE_IO_THREAD};
  for (size_t k = 0; k < 2; k++) {
    rig_t r;
    rig_new_mode(&r, modes[k]);
    r.probe.start = true;
    const size_t total = 4u << 20;
    isle_tcp_opts_t o = {.max_output = 2 * total};
    rig_spawn_and_listen(&r, &o);
    int fd;
    isle_conn_t conn = rig_connect_buf(&r, &fd, 1, 4096);
    rig_write_pattern(&r, conn, total);
    assert_int_equal(isle_tcp_close(r.rt, conn, true), 0);
    rig_wait_closing(&r, conn);
    isle_runtime_stop(r.rt);
    assert_int_equal(support_runner_join(&r.runner), 0);
    assert_int_equal(support_io_stats(r.rt).tcp_open, 1);
    isle_runtime_free(r.rt);
    int end = client_recv_end(fd, NULL);
    assert_true(end == 0 || end == -ECONNRESET);
    close(fd);
    assert_int_equal(probe_count(&r.probe, ISLE_MSG_TCP_CLOSED, 0), 0);
    probe_deinit(&r.probe);
    support_assert_workers_ok();
    support_assert_heap_quiet();
  }
}

int main(void) {
  io_main_setup();
  const struct CMUnitTest tests[] = {
      IO_TEST(test_io_eof_when_the_peer_shuts_down_its_side),
      IO_TEST(test_io_closed_with_eshutdown_after_idle_ms),
      IO_TEST(test_io_closed_with_eio_after_a_reset),
      IO_TEST(test_io_graceful_close_writes_everything_queued_first),
      IO_TEST(
          test_io_graceful_close_to_a_peer_that_never_reads_ends_after_idle_ms),
      IO_TEST(test_io_write_and_close_fail_with_edead_after_closed),
      IO_TEST(test_io_unlisten_stops_accepting_and_keeps_connections),
      IO_TEST(test_io_shutdown_closes_listeners_eofs_owners_then_forces),
      IO_TEST(test_io_shutdown_with_nothing_open_returns_at_once),
      IO_TEST(test_io_shutdown_deadline_ends_a_graceful_close_in_progress),
      IO_TEST(test_io_runtime_free_with_connections_open),
      IO_TEST(test_io_runtime_free_with_a_graceful_close_pending),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
