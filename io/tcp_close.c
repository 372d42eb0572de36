/* isle — MIT licensed. */
/*
 * Closing TCP connections (tcp.h: the table and its atomics). A graceful
 * close (uv_shutdown) stops new work at once and is bounded by the
 * connection's timer (idle_ms, else LINGER_MS); that timer, the shutdown
 * deadline and teardown end it with a reset. A hard close (uv_close)
 * happens once per connection, whatever asked for it, and cancels a
 * pending shutdown request with it; its callback is tcp_conn.c's
 * isle__tcp_conn_closed. isle_io_shutdown closes the listeners, tells
 * every connection's owner EOF and, at its deadline, ends what is left;
 * the last connection to close ends the deadlines early.
 *
 * Threads: isle_tcp_close and isle_io_shutdown from any thread; the
 * shutdown deadlines on the io thread; the rest on the connection's loop
 * thread.
 */
#define _GNU_SOURCE
#include <linux/sockios.h> /* SIOCOUTQ: output the kernel still holds */
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h> /* TCP_USER_TIMEOUT: bounds a FIN behind output */
#include <sys/socket.h>  /* SO_LINGER: a graceful close given up is reset */
#include <uv.h>

#include "tcp.h"

/* How long a graceful close may take when the listener has no idle_ms
 * (with one, idle_ms): then the connection is reset (docs/io.md). */
#define LINGER_MS 10000

/* ===== Closing ========================================================= */

/* Closes now, once; pending writes complete with ECANCELED (and are
 * freed), and so does a graceful close's shutdown request: this also ends
 * a graceful close in progress. */
void isle__tcp_conn_close(conn_t *c, int reason) {
  if (uv_is_closing((uv_handle_t *)c->tcp))
    return;
  c->closing = true;
  c->draining = false;
  c->reason = reason;
  /* An even generation at once: writers see the handle dead from here. */
  gen_close(c);
  ISLE__CHAOS("io.close"); /* a writer that passed its check before */
  uv_close((uv_handle_t *)c->timer, isle__tcp_free_closed);
  c->timer = NULL;
  uv_close((uv_handle_t *)c->tcp, isle__tcp_conn_closed);
}

/* Closes with a reset (SO_LINGER 0, as uv_tcp_close_reset, which libuv
 * refuses while a shutdown is pending): the kernel drops the output it
 * still holds and sends RST. Without it, a peer that never reads kept the
 * closed socket in FIN-WAIT-1 with its output queued, advertised a zero
 * window and so never got the RST, its own sends blocking for minutes. */
static void conn_reset(conn_t *c, int reason) {
  uv_os_fd_t fd;
  struct linger lg = {1, 0};
  if (!uv_is_closing((uv_handle_t *)c->tcp) &&
      uv_fileno((uv_handle_t *)c->tcp, &fd) == 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  isle__tcp_conn_close(c, reason);
}

/* A hard close: with output still queued (ours or the kernel's), a reset
 * that drops it; with none, an ordinary close (FIN). */
static void conn_drop(conn_t *c, int reason) {
  uv_os_fd_t fd;
  int unsent = 0;
  if (atomic_load_explicit(&c->xqueued, memory_order_relaxed) != 0 ||
      (uv_fileno((uv_handle_t *)c->tcp, &fd) == 0 &&
       ioctl(fd, SIOCOUTQ, &unsent) == 0 && unsent > 0))
    conn_reset(c, reason);
  else
    isle__tcp_conn_close(c, reason);
}

/* Ends the connection because time ran out (idle_ms, a graceful close's
 * bound, the shutdown deadline) or the runtime ends. A graceful close in
 * progress is given up with a reset, and so is a connection with output
 * still in our queue (the kernel's send buffer is full: the peer has not
 * read a whole buffer's worth). Otherwise FIN: output the kernel holds
 * still reaches a peer that reads late (200 clients read in turn by one
 * thread lost answers to resets under TSan); the kernel's hold on that
 * output is bounded below. */
void isle__tcp_conn_end(conn_t *c, int reason) {
  if (c->draining || atomic_load_explicit(&c->xqueued, memory_order_relaxed)) {
    conn_reset(c, reason);
    return;
  }
  /* The FIN waits behind the output the kernel holds. A peer that never
   * reads may never send again either: its view of our window can stay
   * at zero (the segments that would reopen it lie beyond its own closed
   * window and are dropped), so no send of its reaches the closed socket
   * to draw the reset, and the orphan would sit in FIN-WAIT-1 for
   * minutes. Bound it: the kernel gives up on output not taken within
   * LINGER_MS, and the peer's next probe gets the reset. */
  uv_os_fd_t fd;
  int unsent = 0;
  unsigned bound = LINGER_MS;
  if (uv_fileno((uv_handle_t *)c->tcp, &fd) == 0 &&
      ioctl(fd, SIOCOUTQ, &unsent) == 0 && unsent > 0)
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &bound, sizeof bound);
  isle__tcp_conn_close(c, reason);
}

static void shutdown_done(uv_shutdown_t *req, int status) {
  conn_t *c = req->handle->data;
  isle_free(req);
  /* UV_ECANCELED: isle__tcp_conn_close ended the graceful close and the
   * handle is closing already (isle__tcp_conn_close does nothing).
   * Otherwise FIN is sent, or could not be (the peer reset). */
  isle__tcp_conn_close(c, status < 0 && status != UV_ECANCELED ? ISLE_EIO
                                                               : c->reason);
}

/* Writes what is queued, sends FIN, then closes; at most idle_ms (or
 * LINGER_MS) from now, when a peer that does not read is reset. */
static void conn_close_graceful(conn_t *c, int reason) {
  if (c->closing)
    return;
  uv_shutdown_t *req = isle_malloc(sizeof *req);
  if (!req || uv_shutdown(req, (uv_stream_t *)c->tcp, shutdown_done) != 0) {
    isle_free(req);
    isle__tcp_conn_close(c, reason);
    return;
  }
  c->closing = true;
  c->draining = true;
  c->reason = reason;
  gen_close(c);
  if (c->reading) {
    uv_read_stop((uv_stream_t *)c->tcp);
    c->reading = false;
  }
  /* The connection's one timer (idle, retry) now bounds the close. */
  uint32_t idle = c->listener ? c->listener->opts.idle_ms : 0;
  idle_arm(c->timer, idle ? idle : LINGER_MS);
}

static void cmd_close(isle__cmd_t *base, isle__loop_t *l) {
  io_cmd_t *s = (io_cmd_t *)base;
  conn_t *c = conn_get(l->io->tcp, s->conn);
  if (c) {
    if (s->graceful)
      conn_close_graceful(c, 0);
    else
      conn_drop(c, 0);
  }
  isle_free(s);
}

/* ===== Shutdown ======================================================== */

typedef struct shutdown_cmd_s {
  isle__cmd_t base;
  struct shutdown_cmd_s *next, **prev; /* tab->shutdowns */
  uint32_t deadline_ms;
  uv_timer_t timer;
} shutdown_cmd_t;

static void shutdown_timer_closed(uv_handle_t *h) {
  shutdown_cmd_t *s = h->data;
  *s->prev = s->next;
  if (s->next)
    s->next->prev = s->prev;
  isle_runtime_release(loop_rt(h->loop));
  isle_free(s);
}

/* Ends the pending shutdown deadlines (their holds) at once. io thread. */
static void shutdowns_done(struct isle__tcp_s *tab) {
  for (shutdown_cmd_t *s = tab->shutdowns; s; s = s->next)
    if (!uv_is_closing((uv_handle_t *)&s->timer))
      uv_close((uv_handle_t *)&s->timer, shutdown_timer_closed);
}

static void cmd_shutdowns_done(isle__cmd_t *c, isle__loop_t *l) {
  shutdowns_done(l->io->tcp);
  isle_free(c);
}

/* The last connection closed (any loop): end the deadlines early. */
void isle__tcp_shutdowns_check(isle__io_t *io) {
  isle__loop_t *io_loop =
      atomic_load_explicit(&io->xloop, memory_order_acquire);
  if (!io_loop)
    return; /* no listener was ever made: no shutdown either */
  if (isle__loop_mine(io_loop) || !io->worker_loops) {
    shutdowns_done(io->tcp); /* on the io thread already */
    return;
  }
  isle__cmd_t *c = isle_malloc(sizeof *c);
  if (c) { /* else the deadline ends them, a little later */
    c->run = cmd_shutdowns_done;
    isle__loop_post(io_loop, c);
  }
}

/* Runs fn on every loop that holds connections: the workers' (posted) or
 * the io thread's own (now, on it). */
static void on_every_loop(isle__loop_t *io_loop,
                          void (*fn)(isle__cmd_t *, isle__loop_t *)) {
  isle__io_t *io = io_loop->io;
  if (!io->worker_loops) {
    isle__cmd_t *c = isle_malloc(sizeof *c);
    if (c)
      fn(c, io_loop); /* fn frees it */
    return;
  }
  for (unsigned i = 0; i < io->rt->nworkers; i++) {
    isle__cmd_t *c = isle_malloc(sizeof *c);
    if (c) {
      c->run = fn;
      isle__loop_post(&io->worker_loops[i], c);
    }
  }
}

static void eof_one(isle__loop_t *l, conn_t *c) {
  if (c->closing)
    return; /* a graceful close is under way: its owner is done */
  if (c->reading) {
    uv_read_stop((uv_stream_t *)c->tcp);
    c->reading = false;
  }
  c->eof = true; /* reading stays stopped, parked DATA or not */
  if (!c->owner || !isle__tcp_eof_send(l, c))
    isle__tcp_conn_close(c, ISLE_ESHUTDOWN);
}

static void close_one(isle__loop_t *l, conn_t *c) {
  (void)l;
  isle__tcp_conn_end(c, ISLE_ESHUTDOWN);
}

static void cmd_eof_all(isle__cmd_t *c, isle__loop_t *l) {
  isle__tcp_each_conn(l, eof_one);
  isle_free(c);
}

static void cmd_close_all(isle__cmd_t *c, isle__loop_t *l) {
  isle__tcp_each_conn(l, close_one);
  isle_free(c);
}

static void on_deadline(uv_timer_t *t) {
  on_every_loop(loop_of(t->loop), cmd_close_all);
  uv_close((uv_handle_t *)t, shutdown_timer_closed);
}

static void cmd_shutdown(isle__cmd_t *base, isle__loop_t *l) {
  shutdown_cmd_t *s = (shutdown_cmd_t *)base;
  struct isle__tcp_s *tab = l->io->tcp;
  for (uint32_t i = 0; i < MAX_LISTENERS; i++)
    if (tab->listeners[i])
      isle__tcp_listener_close(tab, tab->listeners[i]);
  on_every_loop(l, cmd_eof_all);
  /* The deadline holds the runtime until it has closed the stragglers. */
  s->next = tab->shutdowns;
  s->prev = &tab->shutdowns;
  if (s->next)
    s->next->prev = &s->next;
  tab->shutdowns = s;
  uv_timer_init(&l->uv, &s->timer);
  s->timer.data = s;
  uv_timer_start(&s->timer, on_deadline, s->deadline_ms, 0);
  if (atomic_load_explicit(&l->io->xtcp_open, memory_order_acquire) == 0)
    shutdowns_done(tab);
}

/* ===== Teardown ======================================================== */

/* On the loop's thread, stopping: closes its listeners and connections. */
void isle__tcp_quit(isle__loop_t *l) {
  struct isle__tcp_s *tab = l->io->tcp;
  if (!tab)
    return;
  atomic_store_explicit(&tab->xquitting, true, memory_order_relaxed);
  if (!l->worker) { /* the io thread's own */
    shutdowns_done(tab);
    for (uint32_t i = 0; i < MAX_LISTENERS; i++)
      if (tab->listeners[i])
        isle__tcp_listener_close(tab, tab->listeners[i]);
  }
  isle__tcp_each_conn(l, close_one);
}

/* ===== Public functions ================================================ */

int isle_tcp_close(isle_runtime_t *rt, isle_conn_t conn, bool graceful) {
  if (!rt)
    return ISLE_EINVAL;
  conn_t *c = conn_check(rt, conn);
  if (!c)
    return (uint32_t)conn == 0 ? ISLE_EINVAL : ISLE_EDEAD;
  ISLE__CHAOS("io.after_check"); /* the connection may close fully here */
  isle__loop_t *l = conn_loop(c);
  if (!l)
    return ISLE_EDEAD;
  return isle__tcp_post(l, conn, cmd_close, 0, graceful);
}

int isle_io_shutdown(isle_runtime_t *rt, uint32_t deadline_ms) {
  if (!rt)
    return ISLE_EINVAL;
  isle__loop_t *l = isle__tcp_io_loop(rt);
  shutdown_cmd_t *s = l ? isle_calloc(1, sizeof *s) : NULL;
  if (!s)
    return ISLE_ENOMEM;
  s->base.run = cmd_shutdown;
  s->deadline_ms = deadline_ms;
  isle_runtime_hold(rt); /* released when the deadline timer closes */
  isle__loop_post(l, &s->base);
  return 0;
}
