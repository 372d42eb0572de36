/* isle — MIT licensed. */
/*
 * Helpers shared by the TCP suites (tests/io/test_io*.c), on top of
 * tests/actor/support.h: the probe (what the actors saw, logged under a lock
 * the test waits on), the probe actor types, blocking loopback clients with
 * receive timeouts, a byte pattern, and the rig (a runtime, its probe actor
 * and a listener, running on a thread of its own).
 *
 * The clients are plain blocking POSIX sockets on the test's thread, with
 * receive timeouts so that a missing byte fails the test instead of
 * hanging it. The actors log every event they receive into a probe_t the
 * test reads under its lock (waiting on its condition variable, never
 * sleeping); callbacks check with WORKER_CHECK only. Every run must end by
 * quiescence (isle_runtime_run returns once every listener and connection
 * is closed: their holds are balanced), and every test ends with the heap
 * as it began (support_assert_heap_quiet, in rig_finish).
 *
 * Everything here is static inline (or static const) so that each suite
 * compiles only what it uses. Each including file defines _GNU_SOURCE
 * first (pthread, nanosleep, timed waits under -std=c11).
 */
#ifndef ISLE_TESTS_IO_SUPPORT_H
#define ISLE_TESTS_IO_SUPPORT_H

#include <arpa/inet.h>  /* inet_pton, htons */
#include <netinet/in.h> /* sockaddr_in */
#include <signal.h>     /* SIGPIPE ignored: a write to a reset peer */
#include <sys/socket.h> /* the clients */
#include <unistd.h>     /* close */

#include "../actor/support.h"

#include "isle/io.h"

#if defined(SUPPORT_UNDER_TSAN) || defined(SUPPORT_UNDER_ASAN)
#define LATE_MS 2000u /* how late a timeout may fire, at most */
#else
#define LATE_MS 500u
#endif
#define WAIT_MS 10000u /* how long any expected event may take */

/* ===== The probe: what the actors saw ==================================== */

enum { MAX_EVENTS = 4096 };

typedef struct ev_s {
  uint32_t type;
  isle_conn_t conn;
  isle_listener_t listener;
  int reason; /* CLOSED's reason; ACCEPT: what isle_tcp_start returned */
  size_t len; /* DATA: bytes */
} ev_t;

/* Shared by the actors of one test and the test's thread. The settings
 * are written before the actors are spawned and only read after. */
typedef struct probe_s {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  ev_t ev[MAX_EVENTS];
  size_t nev;
  char *bytes; /* every DATA payload in order (malloc) */
  size_t nbytes, cap;
  /* Settings. */
  isle_runtime_t *rt;
  bool start;         /* ACCEPT: isle_tcp_start(conn, owner or self) */
  isle_ref_t owner;   /* ... this owner, if set */
  bool echo;          /* DATA: write the message itself back */
  unsigned sleep_ms;  /* DATA: a slow owner */
  size_t max_payload; /* DATA over this is a worker failure (0: none) */
} probe_t;

static inline void probe_init(probe_t *p, isle_runtime_t *rt) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->cond, NULL);
  p->rt = rt;
}

static inline void probe_deinit(probe_t *p) {
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->cond);
  free(p->bytes);
}

/* Worker side: logs an event (and DATA's bytes). */
static inline void probe_log(probe_t *p, const ev_t *e, const char *data) {
  pthread_mutex_lock(&p->lock);
  if (WORKER_CHECK(p->nev < MAX_EVENTS))
    p->ev[p->nev++] = *e;
  if (data && e->len) {
    if (p->nbytes + e->len > p->cap) {
      size_t cap = p->cap ? p->cap : 4096;
      while (cap < p->nbytes + e->len)
        cap *= 2;
      char *b = realloc(p->bytes, cap);
      if (WORKER_CHECK(b != NULL)) {
        p->bytes = b;
        p->cap = cap;
      }
    }
    if (p->nbytes + e->len <= p->cap) {
      memcpy(p->bytes + p->nbytes, data, e->len);
      p->nbytes += e->len;
    }
  }
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->lock);
}

/* Waits until `cond(p, arg)` holds under the lock, at most `ms`. */
static inline bool probe_wait_until(probe_t *p,
                                    bool (*cond)(probe_t *, const void *),
                                    const void *arg, unsigned ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&p->lock);
  bool ok;
  while (!(ok = cond(p, arg)))
    if (pthread_cond_timedwait(&p->cond, &p->lock, &until) != 0) {
      ok = cond(p, arg);
      break;
    }
  pthread_mutex_unlock(&p->lock);
  return ok;
}

typedef struct nth_s {
  uint32_t type;
  isle_conn_t conn; /* 0: any */
  size_t nth;       /* 1-based */
  ev_t *out;
} nth_t;

static inline bool has_nth(probe_t *p, const void *arg) {
  const nth_t *q = arg;
  size_t seen = 0;
  for (size_t i = 0; i < p->nev; i++)
    if (p->ev[i].type == q->type && (!q->conn || p->ev[i].conn == q->conn) &&
        ++seen == q->nth) {
      if (q->out)
        *q->out = p->ev[i];
      return true;
    }
  return false;
}

/* Asserts that the nth event of `type` (about `conn`, if not 0) arrives
 * within `ms` and gives it. */
static inline ev_t probe_expect_within(probe_t *p, uint32_t type,
                                       isle_conn_t conn, size_t nth,
                                       unsigned ms) {
  ev_t e;
  memset(&e, 0, sizeof e);
  nth_t q = {type, conn, nth, &e};
  if (!probe_wait_until(p, has_nth, &q, ms))
    fail_msg("event %#x number %zu (conn %#llx) did not arrive in %u ms", type,
             nth, (unsigned long long)conn, ms);
  return e;
}

static inline ev_t probe_expect(probe_t *p, uint32_t type, isle_conn_t conn,
                                size_t nth) {
  return probe_expect_within(p, type, conn, nth, WAIT_MS);
}

static inline size_t probe_count(probe_t *p, uint32_t type, isle_conn_t conn) {
  pthread_mutex_lock(&p->lock);
  size_t n = 0;
  for (size_t i = 0; i < p->nev; i++)
    n += p->ev[i].type == type && (!conn || p->ev[i].conn == conn);
  pthread_mutex_unlock(&p->lock);
  return n;
}

/* Where the nth event of `type` about `conn` is in the log (SIZE_MAX: not
 * there). */
static inline size_t probe_index(probe_t *p, uint32_t type, isle_conn_t conn,
                                 size_t nth) {
  pthread_mutex_lock(&p->lock);
  size_t at = SIZE_MAX, seen = 0;
  for (size_t i = 0; i < p->nev && at == SIZE_MAX; i++)
    if (p->ev[i].type == type && p->ev[i].conn == conn && ++seen == nth)
      at = i;
  pthread_mutex_unlock(&p->lock);
  return at;
}

static inline bool has_bytes(probe_t *p, const void *arg) {
  return p->nbytes >= *(const size_t *)arg;
}

static inline void probe_expect_bytes(probe_t *p, size_t n) {
  if (!probe_wait_until(p, has_bytes, &n, WAIT_MS))
    fail_msg("%zu bytes expected, %zu received", n, p->nbytes);
}

/* ===== The probe actor =================================================== */

static inline int probe_actor_init(isle_ctx_t *ctx, void *state,
                                   const void *arg) {
  (void)ctx;
  *(probe_t **)state = (probe_t *)arg;
  return 0;
}

static inline int probe_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  probe_t *p = *(probe_t **)state;
  isle_runtime_t *rt = isle_ctx_runtime(ctx);
  ev_t e;
  memset(&e, 0, sizeof e);
  e.type = isle_msg_type(msg);
  size_t len;
  isle_conn_t conn;
  char *data = isle_tcp_data(msg, &len, &conn);
  if (data) {
    WORKER_CHECK(isle_tcp_event(msg) == NULL);
    WORKER_CHECK(p->max_payload == 0 || len <= p->max_payload);
    WORKER_CHECK(len > 0);
    e.conn = conn;
    e.len = len;
    probe_log(p, &e, data);
    if (p->sleep_ms)
      support_sleep_ms(p->sleep_ms); /* a slow owner, not a wait */
    if (p->echo) {
      int rc = isle_tcp_write(rt, conn, msg);
      if (WORKER_CHECK(rc == 0))
        isle_ctx_keep(ctx); /* the io thread's now */
    }
    return ISLE_CONTINUE;
  }
  const isle_tcp_event_t *te = isle_tcp_event(msg);
  if (!WORKER_CHECK(te != NULL))
    return ISLE_CONTINUE;
  WORKER_CHECK(isle_tcp_data(msg, NULL, NULL) == NULL);
  e.conn = te->conn;
  e.listener = te->listener;
  e.reason = te->reason;
  if (e.type == ISLE_MSG_TCP_ACCEPT && p->start)
    e.reason =
        isle_tcp_start(rt, te->conn, p->owner ? p->owner : isle_ctx_self(ctx));
  probe_log(p, &e, NULL);
  return ISLE_CONTINUE;
}

static const isle_actor_type_t probe_type = {
    .name = "probe",
    .state_size = sizeof(probe_t *),
    .init = probe_actor_init,
    .receive = probe_receive,
};

/* A slow owner: two messages in its mailbox at most. */
static const isle_actor_type_t slow_probe_type = {
    .name = "slow-probe",
    .state_size = sizeof(probe_t *),
    .init = probe_actor_init,
    .receive = probe_receive,
    .mailbox_capacity = 2,
};

/* ===== Clients =========================================================== */

static inline void set_timeouts(int fd, unsigned ms) {
  struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
  assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
}

static inline struct sockaddr_in loopback(uint16_t port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/* A connected client, with `rcvbuf` as its receive buffer if not 0. */
static inline int client_connect_buf(uint16_t port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  set_timeouts(fd, WAIT_MS);
  if (rcvbuf)
    assert_int_equal(
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
  struct sockaddr_in a = loopback(port);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    fail_msg("connect to port %u: %s", port, strerror(errno));
  return fd;
}

static inline int client_connect(uint16_t port) {
  return client_connect_buf(port, 0);
}

/* Whether a connection to `port` is refused (nobody listens). */
static inline bool client_refused(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = loopback(port);
  int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
  int err = errno;
  close(fd);
  return rc != 0 && err == ECONNREFUSED;
}

static inline void client_send(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      fail_msg("send: %s", k < 0 ? strerror(errno) : "0");
    p += k;
    n -= (size_t)k;
  }
}

/* Reads exactly n bytes; fails the test on EOF, error or timeout. */
static inline void client_recv(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n) {
    ssize_t k = recv(fd, p, n, 0);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      fail_msg("recv: %s with %zu bytes to go", k < 0 ? strerror(errno) : "EOF",
               n);
    p += k;
    n -= (size_t)k;
  }
}

/* Reads until the peer closes: 0 for EOF, -errno for a reset or timeout;
 * how many bytes came before goes to *got (may be NULL). */
static inline int client_recv_end(int fd, size_t *got) {
  char buf[16384];
  size_t n = 0;
  for (;;) {
    ssize_t k = recv(fd, buf, sizeof buf, 0);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      if (got)
        *got = n;
      return k == 0 ? 0 : -errno;
    }
    n += (size_t)k;
  }
}

/* Closes with a reset (SO_LINGER 0): the peer's read fails. */
static inline void client_reset(int fd) {
  struct linger lg = {1, 0};
  assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(fd);
}

/* The pattern of the bulk tests: byte i of a stream. */
static inline char pattern(size_t i) {
  return (char)((i * 7 + i / 251) & 0xff);
}

static inline void fill_pattern(char *p, size_t from, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = pattern(from + i);
}

/* The first index where p[0..n) departs from the pattern at `from`, or n. */
static inline size_t pattern_mismatch(const char *p, size_t from, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pattern(from + i))
      return i;
  return n;
}

/* ===== Runs ============================================================== */

/* A test's runtime, its probe actor and a listener, running. */
typedef struct rig_s {
  isle_runtime_t *rt;
  probe_t probe;
  isle_ref_t actor;
  isle_listener_t listener;
  uint16_t port;
  support_runner_t runner;
} rig_t;

/* Makes the runtime (two workers, loops as `mode` says) and the probe
 * (settings then apply), without a listener or a run. */
static inline void rig_new_mode(rig_t *r, isle_io_mode_t mode) {
  memset(r, 0, sizeof *r);
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = 2;
  cfg.stall_ms = UINT32_MAX; /* a loaded machine must not print reports */
  assert_int_equal(isle_runtime_new(&cfg, &r->rt), 0);
  isle_io_config_t io;
  isle_io_config_init(&io);
  io.mode = mode;
  assert_int_equal(isle_io_config(r->rt, &io), 0);
  probe_init(&r->probe, r->rt);
}

static inline void rig_new(rig_t *r) {
  rig_new_mode(r, ISLE_IO_DEFAULT);
}

static inline void rig_spawn_and_listen(rig_t *r, const isle_tcp_opts_t *opts) {
  assert_int_equal(isle_runtime_spawn(r->rt, &probe_type, &r->probe, &r->actor),
                   0);
  assert_int_equal(
      isle_tcp_listen(r->rt, opts, r->actor, &r->listener, &r->port), 0);
  assert_int_not_equal(r->listener, 0);
  assert_int_not_equal(r->port, 0);
  support_runner_start(&r->runner, r->rt);
}

/* Unlistens, expects the run to return by quiescence (every connection
 * must be closed by now), frees everything and checks the heap. */
static inline void rig_finish(rig_t *r) {
  if (r->listener)
    assert_int_equal(isle_tcp_unlisten(r->rt, r->listener), 0);
  assert_int_equal(support_runner_join(&r->runner), 0);
  assert_int_equal(support_io_stats(r->rt).tcp_open, 0);
  isle_runtime_free(r->rt);
  probe_deinit(&r->probe);
  support_assert_workers_ok();
  support_assert_heap_quiet();
}

/* Connects a client and waits for its ACCEPT (and start, by the probe). */
static inline isle_conn_t rig_connect(rig_t *r, int *fd, size_t nth_accept) {
  *fd = client_connect(r->port);
  ev_t e = probe_expect(&r->probe, ISLE_MSG_TCP_ACCEPT, 0, nth_accept);
  assert_int_not_equal(e.conn, 0);
  assert_int_equal(e.listener, r->listener);
  if (r->probe.start)
    assert_int_equal(e.reason, 0); /* isle_tcp_start's result */
  return e.conn;
}

/* As rig_connect, with a client whose receive buffer is `rcvbuf`. */
static inline isle_conn_t rig_connect_buf(rig_t *r, int *fd, size_t nth_accept,
                                          int rcvbuf) {
  *fd = client_connect_buf(r->port, rcvbuf);
  ev_t e = probe_expect(&r->probe, ISLE_MSG_TCP_ACCEPT, 0, nth_accept);
  assert_int_not_equal(e.conn, 0);
  if (r->probe.start)
    assert_int_equal(e.reason, 0);
  return e.conn;
}

/* `total` bytes (at most 16 MiB) of the pattern in 64 KiB messages. */
typedef struct pattern_s {
  isle_msg_t *m[256];
  size_t n;
} pattern_t;

static inline void pattern_make(pattern_t *p, size_t total) {
  const size_t chunk = 64 * 1024;
  p->n = 0;
  for (size_t off = 0; off < total; off += chunk, p->n++) {
    assert_true(p->n < 256);
    p->m[p->n] = isle_msg_new(7, chunk);
    assert_non_null(p->m[p->n]);
    fill_pattern(isle_msg_data(p->m[p->n]), off, chunk);
  }
}

/* Queues the pattern for `conn` in one burst of writes. */
static inline void rig_write_made(rig_t *r, isle_conn_t conn, pattern_t *p) {
  for (size_t i = 0; i < p->n; i++)
    assert_int_equal(isle_tcp_write(r->rt, conn, p->m[i]), 0);
}

/* Queues `total` bytes of the pattern for `conn` in 64 KiB writes. */
static inline void rig_write_pattern(rig_t *r, isle_conn_t conn, size_t total) {
  pattern_t p;
  pattern_make(&p, total);
  rig_write_made(r, conn, &p);
}

/* Waits until the connection's loop has taken a close of `conn` (the
 * handle is dead: isle_tcp_start answers ISLE_EDEAD, not ISLE_ESTATE). */
static inline void rig_wait_closing(rig_t *r, isle_conn_t conn) {
  uint64_t until = support_now_ns() + (uint64_t)WAIT_MS * 1000000u;
  while (isle_tcp_start(r->rt, conn, r->actor) == ISLE_ESTATE) {
    if (support_now_ns() > until)
      fail_msg("the close of %#llx was not taken", (unsigned long long)conn);
    support_sleep_ms(1);
  }
}

static inline isle_msg_t *bytes_msg(const void *p, size_t n) {
  isle_msg_t *m = isle_msg_new(7, n);
  assert_non_null(m);
  memcpy(isle_msg_data(m), p, n);
  return m;
}

/* ===== main ============================================================== */

/* What each suite's main does before its tests: SIGPIPE ignored (a write
 * to a reset peer), and one test alone, by name, when ISLE_TEST_FILTER is
 * set (a failed test leaves its runtime behind and can disturb the next).
 * Each test then starts from the heap baseline (IO_TEST). */
static inline void io_main_setup(void) {
  signal(SIGPIPE, SIG_IGN);
  if (getenv("ISLE_TEST_FILTER"))
    cmocka_set_test_filter(getenv("ISLE_TEST_FILTER"));
}

#define IO_TEST(fn) cmocka_unit_test_setup(fn, support_setup_baseline)

#endif /* ISLE_TESTS_IO_SUPPORT_H */
