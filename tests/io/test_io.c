/* isle — MIT licensed. */
/*
 * TCP as actor messages (include/isle/io.h) against real loopback sockets,
 * the connection's ordinary life: listening (port 0 and a given port, an
 * address in use, bad arguments), accepting and starting, DATA with the
 * right bytes and handle, writes of fresh and of received messages, and
 * the output limit (ISLE_EFULL, then DRAINED when the peer reads).
 * Closing is in test_io_close.c, limits and abuse in test_io_limits.c; the
 * probe, the clients and the rig in support.h.
 */
#define _GNU_SOURCE /* pthread, nanosleep, timed waits under -std=c11 */

#include "support.h"

/* ===== Listening ========================================================= */

static void test_io_listen_on_port_zero_reports_the_port_it_got(void **state) {
  rig_t r;
  rig_new(&r);
  r.probe.start = true; /* CLOSED goes to the owner */
  isle_tcp_opts_t o = {0};
  rig_spawn_and_listen(&r, &o);
  int fd;
  isle_conn_t conn = rig_connect(&r, &fd, 1);
  assert_int_not_equal(conn, 0);
  /* The port is ours: listening on it again fails, bind refused. */
  isle_tcp_opts_t again = {.port = r.port};
  isle_listener_t l2 = 0;
  assert_int_equal(isle_tcp_listen(r.rt, &again, r.actor, &l2, NULL), ISLE_EIO);
  assert_int_equal(l2, 0); /* untouched on error */
  assert_int_equal(isle_tcp_close(r.rt, conn, false), 0);
  probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1);
  close(fd);
  rig_finish(&r);
}

static void test_io_listen_on_a_given_port_after_unlisten(void **state) {
  rig_t r;
  rig_new(&r);
  r.probe.start = true; /* CLOSED goes to the owner */
  isle_tcp_opts_t o = {.host = "127.0.0.1"};
  rig_spawn_and_listen(&r, &o);
  uint16_t port = r.port;
  assert_int_equal(isle_tcp_unlisten(r.rt, r.listener), 0);
  /* The same port by number, now that it is free (the unlisten command
   * runs before the listen command on the io thread). */
  isle_tcp_opts_t given = {.port = port};
  uint16_t got = 0;
  assert_int_equal(isle_tcp_listen(r.rt, &given, r.actor, &r.listener, &got),
                   0);
  assert_int_equal(got, port);
  int fd;
  isle_conn_t conn = rig_connect(&r, &fd, 1);
  assert_int_equal(isle_tcp_close(r.rt, conn, false), 0);
  probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1);
  close(fd);
  rig_finish(&r);
}

static void
test_io_listen_fails_with_eio_when_the_port_is_in_use(void **state) {
  /* A plain socket holds a port. */
  int hold = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(hold >= 0);
  struct sockaddr_in a = loopback(0);
  assert_int_equal(bind(hold, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(hold, 1), 0);
  socklen_t alen = sizeof a;
  assert_int_equal(getsockname(hold, (struct sockaddr *)&a, &alen), 0);
  uint16_t port = ntohs(a.sin_port);

  isle_runtime_t *rt = support_runtime(1, 0);
  probe_t p;
  probe_init(&p, rt);
  isle_ref_t actor;
  assert_int_equal(isle_runtime_spawn(rt, &probe_type, &p, &actor), 0);
  isle_tcp_opts_t o = {.port = port};
  isle_listener_t l = 0;
  uint16_t got = 0;
  assert_int_equal(isle_tcp_listen(rt, &o, actor, &l, &got), ISLE_EIO);
  assert_int_equal(l, 0);
  assert_int_equal(got, 0);
  /* A failed listen holds nothing: the run returns at once. */
  assert_int_equal(isle_runtime_run(rt), 0);
  isle_runtime_free(rt);
  probe_deinit(&p);
  close(hold);
  support_assert_workers_ok();
  support_assert_heap_quiet();
}

static void test_io_functions_reject_bad_arguments(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  probe_t p;
  probe_init(&p, rt);
  /* Before any io: handles cannot be live. */
  isle_msg_t *m = bytes_msg("x", 1);
  assert_int_equal(isle_tcp_write(rt, (UINT64_C(1) << 32) | 1, m), ISLE_EDEAD);
  assert_int_equal(isle_tcp_close(rt, (UINT64_C(1) << 32) | 1, true),
                   ISLE_EDEAD);
  assert_int_equal(isle_tcp_unlisten(rt, (UINT64_C(1) << 32) | 1), ISLE_EDEAD);

  isle_ref_t actor;
  assert_int_equal(isle_runtime_spawn(rt, &probe_type, &p, &actor), 0);
  isle_tcp_opts_t o = {0};
  isle_listener_t l = 0;
  /* isle_tcp_listen */
  assert_int_equal(isle_tcp_listen(NULL, &o, actor, &l, NULL), ISLE_EINVAL);
  assert_int_equal(isle_tcp_listen(rt, NULL, actor, &l, NULL), ISLE_EINVAL);
  assert_int_equal(isle_tcp_listen(rt, &o, ISLE_REF_NONE, &l, NULL),
                   ISLE_EINVAL);
  assert_int_equal(isle_tcp_listen(rt, &o, actor + 1000, &l, NULL),
                   ISLE_EINVAL); /* a handle never given out */
  char host[80];
  memset(host, '1', sizeof host - 1);
  host[sizeof host - 1] = '\0';
  isle_tcp_opts_t long_host = {.host = host};
  assert_int_equal(isle_tcp_listen(rt, &long_host, actor, &l, NULL),
                   ISLE_EINVAL);
  isle_tcp_opts_t bad_host = {.host = "not an address"};
  assert_int_equal(isle_tcp_listen(rt, &bad_host, actor, &l, NULL),
                   ISLE_EINVAL);
  isle_tcp_opts_t bad_backlog = {.backlog = -1};
  assert_int_equal(isle_tcp_listen(rt, &bad_backlog, actor, &l, NULL),
                   ISLE_EINVAL);
  assert_int_equal(l, 0);

  /* Connection handles: 0 is EINVAL, one never given out is EDEAD. */
  isle_conn_t never = (UINT64_C(7) << 32) | 3;
  assert_int_equal(isle_tcp_start(NULL, never, actor), ISLE_EINVAL);
  assert_int_equal(isle_tcp_start(rt, 0, actor), ISLE_EINVAL);
  assert_int_equal(isle_tcp_start(rt, never, actor), ISLE_EDEAD);
  assert_int_equal(isle_tcp_start(rt, never, ISLE_REF_NONE), ISLE_EINVAL);
  assert_int_equal(isle_tcp_write(NULL, never, m), ISLE_EINVAL);
  assert_int_equal(isle_tcp_write(rt, never, NULL), ISLE_EINVAL);
  assert_int_equal(isle_tcp_write(rt, 0, m), ISLE_EINVAL);
  assert_int_equal(isle_tcp_write(rt, never, m), ISLE_EDEAD);
  assert_int_equal(isle_tcp_close(NULL, never, false), ISLE_EINVAL);
  assert_int_equal(isle_tcp_close(rt, 0, false), ISLE_EINVAL);
  assert_int_equal(isle_tcp_close(rt, never, false), ISLE_EDEAD);
  /* Listener handles. */
  assert_int_equal(isle_tcp_unlisten(NULL, never), ISLE_EINVAL);
  assert_int_equal(isle_tcp_unlisten(rt, 0), ISLE_EINVAL);
  assert_int_equal(isle_tcp_unlisten(rt, (UINT64_C(1) << 32) | 100000),
                   ISLE_EINVAL);
  assert_int_equal(isle_tcp_unlisten(rt, (UINT64_C(9) << 32) | 5), ISLE_EDEAD);
  assert_int_equal(isle_io_shutdown(NULL, 0), ISLE_EINVAL);
  isle_msg_free(m); /* every failed write left it ours */

  /* The accessors on messages that are not theirs. */
  assert_null(isle_tcp_data(NULL, NULL, NULL));
  assert_null(isle_tcp_event(NULL));
  isle_msg_t *plain = isle_msg_new(1, sizeof(isle_tcp_event_t));
  assert_non_null(plain);
  assert_null(isle_tcp_data(plain, NULL, NULL));
  assert_null(isle_tcp_event(plain));
  isle_msg_free(plain);

  assert_int_equal(isle_runtime_run(rt), 0); /* nothing holds it */
  isle_runtime_free(rt);
  probe_deinit(&p);
  support_assert_workers_ok();
  support_assert_heap_quiet();
}

/* ===== Accept, start, data, write ======================================== */

static void test_io_data_arrives_with_its_bytes_and_connection(void **state) {
  rig_t r;
  rig_new(&r);
  isle_tcp_opts_t o = {0};
  rig_spawn_and_listen(&r, &o);
  int fd = client_connect(r.port);
  ev_t acc = probe_expect(&r.probe, ISLE_MSG_TCP_ACCEPT, 0, 1);
  isle_conn_t conn = acc.conn;
  /* Not started: nothing is read yet, and the test starts it. */
  client_send(fd, "hello, ", 7);
  assert_int_equal(isle_tcp_start(r.rt, conn, r.actor), 0);
  /* Once only. */
  assert_int_equal(isle_tcp_start(r.rt, conn, r.actor), ISLE_ESTATE);
  client_send(fd, "world", 5);
  probe_expect_bytes(&r.probe, 12);
  assert_memory_equal(r.probe.bytes, "hello, world", 12);
  ev_t d = probe_expect(&r.probe, ISLE_MSG_TCP_DATA, 0, 1);
  assert_int_equal(d.conn, conn);
  /* No event but DATA yet. */
  assert_int_equal(probe_count(&r.probe, ISLE_MSG_TCP_EOF, 0), 0);
  assert_int_equal(probe_count(&r.probe, ISLE_MSG_TCP_CLOSED, 0), 0);
  assert_int_equal(isle_tcp_close(r.rt, conn, false), 0);
  ev_t c = probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1);
  assert_int_equal(c.reason, 0);
  assert_int_equal(c.listener, r.listener);
  close(fd);
  isle_io_stats_t s = support_io_stats(r.rt);
  assert_int_equal(s.tcp_accepted, 1);
  assert_int_equal(s.tcp_refused, 0);
  rig_finish(&r);
}

static void test_io_write_of_a_message_and_echo_of_received_data(void **state) {
  rig_t r;
  rig_new(&r);
  r.probe.start = true;
  r.probe.echo = true;
  isle_tcp_opts_t o = {.read_size = 1000};
  r.probe.max_payload = 1000;
  rig_spawn_and_listen(&r, &o);
  int fd;
  isle_conn_t conn = rig_connect(&r, &fd, 1);
  /* A fresh message from outside the actors. */
  assert_int_equal(isle_tcp_write(r.rt, conn, bytes_msg("greetings\n", 10)), 0);
  char buf[16];
  client_recv(fd, buf, 10);
  assert_memory_equal(buf, "greetings\n", 10);
  /* The probe writes each DATA message back as it is. */
  const size_t n = 256 * 1024;
  char *out = malloc(n), *in = malloc(n);
  assert_non_null(out);
  assert_non_null(in);
  fill_pattern(out, 0, n);
  for (size_t off = 0; off < n; off += 8192) {
    size_t k = n - off < 8192 ? n - off : 8192;
    client_send(fd, out + off, k);
    client_recv(fd, in + off, k);
  }
  assert_int_equal(pattern_mismatch(in, 0, n), n);
  probe_expect_bytes(&r.probe, n);
  assert_int_equal(pattern_mismatch(r.probe.bytes, 0, n), n);
  free(out);
  free(in);
  assert_int_equal(isle_tcp_close(r.rt, conn, true), 0);
  probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1);
  assert_int_equal(client_recv_end(fd, NULL), 0);
  close(fd);
  rig_finish(&r);
}

/* ===== Output limit ====================================================== */

static void
test_io_write_fails_with_efull_then_drained_when_peer_reads(void **state) {
  rig_t r;
  rig_new(&r);
  r.probe.start = true;
  const size_t max_output = 256 * 1024, chunk = 64 * 1024;
  isle_tcp_opts_t o = {.max_output = max_output};
  rig_spawn_and_listen(&r, &o);
  int fd = client_connect_buf(r.port, 4096);
  ev_t acc = probe_expect(&r.probe, ISLE_MSG_TCP_ACCEPT, 0, 1);
  isle_conn_t conn = acc.conn;
  /* The client does not read: once the kernel's buffers are full, the
   * backlog grows to max_output and a write is refused. */
  size_t sent = 0;
  isle_msg_t *m = NULL;
  int rc = 0;
  const size_t cap = 256u << 20; /* no EFULL by then: a bug */
  while (sent < cap) {
    m = isle_msg_new(7, chunk);
    assert_non_null(m);
    fill_pattern(isle_msg_data(m), sent, chunk);
    rc = isle_tcp_write(r.rt, conn, m);
    if (rc != 0)
      break;
    sent += chunk;
  }
  assert_int_equal(rc, ISLE_EFULL);
  assert_true(sent >= max_output - chunk); /* the limit, not less */
  /* The refused message is still ours: it goes out after DRAINED. */
  size_t got = 0;
  char *buf = malloc(chunk);
  assert_non_null(buf);
  /* Read until DRAINED has come (at the latest once all is read),
   * checking every byte. */
  while (got < sent && probe_count(&r.probe, ISLE_MSG_TCP_DRAINED, conn) == 0) {
    size_t k = sent - got < chunk ? sent - got : chunk;
    ssize_t n = recv(fd, buf, k, 0);
    assert_true(n > 0);
    assert_int_equal(pattern_mismatch(buf, got, (size_t)n), (size_t)n);
    got += (size_t)n;
  }
  ev_t d = probe_expect(&r.probe, ISLE_MSG_TCP_DRAINED, conn, 1);
  assert_int_equal(d.listener, r.listener);
  assert_int_equal(isle_tcp_write(r.rt, conn, m), 0);
  sent += chunk;
  while (got < sent) {
    size_t k = sent - got < chunk ? sent - got : chunk;
    ssize_t n = recv(fd, buf, k, 0);
    assert_true(n > 0);
    assert_int_equal(pattern_mismatch(buf, got, (size_t)n), (size_t)n);
    got += (size_t)n;
  }
  free(buf);
  /* One DRAINED per refusal. */
  assert_int_equal(probe_count(&r.probe, ISLE_MSG_TCP_DRAINED, conn), 1);
  assert_int_equal(isle_tcp_close(r.rt, conn, false), 0);
  probe_expect(&r.probe, ISLE_MSG_TCP_CLOSED, conn, 1);
  close(fd);
  rig_finish(&r);
}

int main(void) {
  io_main_setup();
  const struct CMUnitTest tests[] = {
      IO_TEST(test_io_listen_on_port_zero_reports_the_port_it_got),
      IO_TEST(test_io_listen_on_a_given_port_after_unlisten),
      IO_TEST(test_io_listen_fails_with_eio_when_the_port_is_in_use),
      IO_TEST(test_io_functions_reject_bad_arguments),
      IO_TEST(test_io_data_arrives_with_its_bytes_and_connection),
      IO_TEST(test_io_write_of_a_message_and_echo_of_received_data),
      IO_TEST(test_io_write_fails_with_efull_then_drained_when_peer_reads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
