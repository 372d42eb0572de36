/* isle — MIT licensed. */
/*
 * TCP on the io thread's libuv loop (see include/isle/io.h for the API).
 *
 * Connections live in a table mapped once (pages commit as used) and are
 * named like actors: (generation << 32) | (index + 1). The io thread alone
 * opens, reads, writes and closes them; other threads only validate a
 * handle and post a command. Two fields are shared, both atomics:
 *   xgen     the occupant's generation; a writer checks its handle against
 *            it, and the io thread checks again when the command arrives
 *            (the slot may have been reused in between: then the write is
 *            dropped, as a write into a reset connection is);
 *   xqueued  bytes accepted by isle_tcp_write and not yet written or
 *            dropped: added by the writer, subtracted by the io thread;
 *            never reset, so a late command from an old occupant still
 *            balances it.
 * Reads go straight into a message (the DATA header is the first 16 bytes
 * of its payload), sent to the owner; a full owner mailbox pauses reading
 * and a 1 ms timer retries the delivery.
 *
 * Every open listener and connection holds the runtime (pending work for
 * quiescence) until it is closed.
 *
 * Threads: the public functions from any thread; the rest on the io
 * thread.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <uv.h>

#include "internal.h"
#include "isle/heap.h"
#include "isle/io.h"

#define MAX_CONNS_TOTAL (UINT32_C(1) << 20) /* table size, virtual */
#define MAX_LISTENERS 64
#define DATA_HEADER 16 /* conn handle, padded to keep payload alignment */
#define DEFAULT_READ (16 * 1024)
#define DEFAULT_OUTPUT (1024 * 1024)
#define DEFAULT_MAX_CONNS 10000
#define RETRY_MS 1

typedef struct listener_s {
  uv_tcp_t tcp;
  isle_listener_t self;
  isle_ref_t acceptor;
  isle_tcp_opts_t opts; /* defaults filled in; host not kept */
  uint32_t open;        /* connections from it still open */
  bool closing;         /* uv_close called */
  bool closed;          /* ... and done: freed once `open` is 0 too */
} listener_t;

typedef struct conn_s {
  _Atomic uint32_t xgen;
  _Atomic uint32_t xwant_drain; /* a write was refused: DRAINED is due */
  _Atomic uint64_t xqueued;
  _Atomic uint64_t xmax_output; /* the listener's, set before xgen */
  _Atomic uint32_t xstarted;    /* the generation isle_tcp_start took */
  /* io thread only: */
  uv_tcp_t *tcp;      /* NULL when the slot is free */
  uv_timer_t *timer;  /* idle timeout, and retrying a refused delivery */
  isle_msg_t *parked; /* a DATA message the owner's mailbox refused */
  listener_t *listener;
  isle_ref_t owner;
  isle_conn_t handle; /* as accepted: xgen moves on when it closes */
  uint32_t next_free; /* free list: index + 1 */
  int reason;         /* for CLOSED */
  bool reading, closing, eof;
} conn_t;

struct isle__io_s {
  conn_t *conns; /* MAX_CONNS_TOTAL, mapped */
  uint32_t used, free_top;
  listener_t *listeners[MAX_LISTENERS];
  uint32_t listener_gen[MAX_LISTENERS];
  /* The handle open in each slot, 0 if none: what isle_tcp_unlisten
   * checks on the caller's thread. */
  _Atomic uint64_t xlistening[MAX_LISTENERS];
  struct shutdown_cmd_s *shutdowns; /* deadlines pending */
  bool quitting;
};

typedef struct io_cmd_s {
  isle__cmd_t base;
  isle_conn_t conn;
  isle_ref_t owner;
  isle_msg_t *msg;
  size_t offset; /* writes: where the bytes start in the payload */
  bool graceful;
  uv_write_t req; /* writes */
  uv_buf_t buf;
} io_cmd_t;

static inline uint32_t handle_index(uint64_t h) {
  return (uint32_t)h - 1;
}
static inline uint32_t handle_gen(uint64_t h) {
  return (uint32_t)(h >> 32);
}

/* ===== Helpers (io thread) ============================================= */

static isle_runtime_t *loop_rt(uv_loop_t *uv) {
  return ((isle__loop_t *)uv->data)->rt;
}

/* The io state, created on first use. Under loop_lock or on the io thread
 * after it exists. */
static struct isle__io_s *io_state(isle_runtime_t *rt) {
  if (!rt->io) {
    struct isle__io_s *io = isle_calloc(1, sizeof *io);
    if (!io)
      return NULL;
    void *t =
        mmap(NULL, sizeof(conn_t) * MAX_CONNS_TOTAL, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (t == MAP_FAILED) {
      isle_free(io);
      return NULL;
    }
    io->conns = t;
    rt->io = io;
  }
  return rt->io;
}

/* The live connection `h`, or NULL. io thread. */
static conn_t *conn_get(struct isle__io_s *io, isle_conn_t h) {
  uint32_t i = handle_index(h);
  if ((uint32_t)h == 0 || i >= io->used)
    return NULL;
  conn_t *c = &io->conns[i];
  if (!c->tcp ||
      atomic_load_explicit(&c->xgen, memory_order_relaxed) != handle_gen(h))
    return NULL;
  return c;
}

static isle_conn_t conn_handle(struct isle__io_s *io, conn_t *c) {
  return (uint64_t)atomic_load_explicit(&c->xgen, memory_order_relaxed) << 32 |
         ((uint64_t)(c - io->conns) + 1);
}

/* Sends an event; false if `to` would not take it. */
static bool event_send(isle_runtime_t *rt, isle_ref_t to, uint32_t type,
                       isle_conn_t conn, isle_listener_t l, int reason) {
  isle_msg_t *m = isle_msg_new(type, sizeof(isle_tcp_event_t));
  if (!m)
    return false;
  isle_tcp_event_t *e = isle_msg_data(m);
  e->conn = conn;
  e->listener = l;
  e->reason = reason;
  /* Events must not be lost to a full mailbox: they pass its capacity. */
  m->flags |= ISLE__MSG_F_NOCAP;
  if (isle__send(rt, NULL, ISLE_REF_NONE, to, m) == 0)
    return true;
  isle_free(m);
  return false;
}

/* ===== Closing ========================================================= */

static void shutdowns_done(struct isle__io_s *io);

static void conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  isle_runtime_t *rt = loop_rt(h->loop);
  struct isle__io_s *io = rt->io;
  /* The handle the owner knows, not conn_handle: closing moved xgen on
   * (twice for a graceful close), and CLOSED named no live handle. */
  if (c->owner && !io->quitting)
    event_send(rt, c->owner, ISLE_MSG_TCP_CLOSED, c->handle,
               c->listener ? c->listener->self : 0, c->reason);
  if (c->listener && --c->listener->open == 0 && c->listener->closed)
    isle_free(c->listener); /* its handle closed earlier */
  isle_free(c->tcp);
  c->tcp = NULL;
  isle_free(c->parked);
  c->parked = NULL;
  c->owner = 0;
  c->listener = NULL;
  c->next_free = io->free_top;
  io->free_top = (uint32_t)(c - io->conns) + 1;
  if (atomic_fetch_sub_explicit(&rt->xtcp_open, 1, memory_order_relaxed) == 1)
    shutdowns_done(io); /* the last connection: no deadline to wait for */
  isle_runtime_release(rt);
}

/* For handles in their own heap block. */
static void free_closed(uv_handle_t *h) {
  isle_free(h);
}

/* Closes now; pending writes complete with ECANCELED (and are freed). */
static void conn_close(conn_t *c, int reason) {
  if (c->closing)
    return;
  c->closing = true;
  c->reason = reason;
  /* A new generation at once: writers see the handle dead from here. */
  atomic_fetch_add_explicit(&c->xgen, 1, memory_order_release);
  if (c->timer) {
    uv_close((uv_handle_t *)c->timer, free_closed);
    c->timer = NULL;
  }
  uv_close((uv_handle_t *)c->tcp, conn_closed);
}

static void shutdown_done(uv_shutdown_t *req, int status) {
  (void)status;
  conn_t *c = req->handle->data;
  isle_free(req);
  c->closing = false; /* conn_close sets it again */
  conn_close(c, c->reason);
}

/* Writes what is queued, sends FIN, then closes. */
static void conn_close_graceful(conn_t *c, int reason) {
  if (c->closing)
    return;
  uv_shutdown_t *req = isle_malloc(sizeof *req);
  if (!req || uv_shutdown(req, (uv_stream_t *)c->tcp, shutdown_done) != 0) {
    isle_free(req);
    conn_close(c, reason);
    return;
  }
  c->closing = true;
  c->reason = reason;
  atomic_fetch_add_explicit(&c->xgen, 1, memory_order_release);
  if (c->reading) {
    uv_read_stop((uv_stream_t *)c->tcp);
    c->reading = false;
  }
}

/* ===== Reading ========================================================= */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  conn_t *c = h->data;
  size_t size = c->listener ? c->listener->opts.read_size : DEFAULT_READ;
  isle_msg_t *m = isle_msg_new(ISLE_MSG_TCP_DATA, DATA_HEADER + size);
  /* libuv reports a NULL buffer to on_read as UV_ENOBUFS. */
  *buf = uv_buf_init(m ? (char *)isle_msg_data(m) + DATA_HEADER : NULL,
                     m ? (unsigned)size : 0);
}

static isle_msg_t *buf_msg(const uv_buf_t *buf) {
  return buf->base
             ? (isle_msg_t *)(buf->base - DATA_HEADER - ISLE_MSG_HEADER_SIZE)
             : NULL;
}

static void on_retry(uv_timer_t *t);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* Delivers c->parked; on a full mailbox, pauses reading and retries. */
static void deliver(conn_t *c, isle_runtime_t *rt) {
  int rc = isle__send(rt, NULL, ISLE_REF_NONE, c->owner, c->parked);
  if (rc == 0) {
    c->parked = NULL;
    if (!c->reading && !c->eof && !c->closing) {
      uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read);
      c->reading = true;
    }
    return;
  }
  if (rc == ISLE_EFULL) {
    if (c->reading) {
      uv_read_stop((uv_stream_t *)c->tcp);
      c->reading = false;
    }
    uv_timer_start(c->timer, on_retry, RETRY_MS, 0);
    return;
  }
  conn_close(c, ISLE_EDEAD); /* the owner is gone */
}

static void on_idle(uv_timer_t *t) {
  conn_t *c = t->data;
  conn_close(c, ISLE_ESHUTDOWN);
}

static void on_retry(uv_timer_t *t) {
  conn_t *c = t->data;
  deliver(c, loop_rt(t->loop));
  if (!c->parked && !c->closing && c->listener && c->listener->opts.idle_ms)
    uv_timer_start(c->timer, on_idle, c->listener->opts.idle_ms, 0);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = s->data;
  isle_runtime_t *rt = loop_rt(s->loop);
  isle_msg_t *m = buf_msg(buf);
  if (n <= 0) {
    isle_free(m);
    if (n == 0)
      return; /* EAGAIN */
    uv_read_stop(s);
    c->reading = false;
    if (n == UV_EOF) {
      c->eof = true;
      if (!event_send(rt, c->owner, ISLE_MSG_TCP_EOF, conn_handle(rt->io, c),
                      c->listener ? c->listener->self : 0, 0))
        conn_close(c, ISLE_EDEAD);
    } else {
      conn_close(c, ISLE_EIO);
    }
    return;
  }
  /* The bytes are in place: set the size and the header, no copy. */
  m->size = (uint32_t)(DATA_HEADER + (size_t)n);
  *(isle_conn_t *)isle_msg_data(m) = conn_handle(rt->io, c);
  c->parked = m;
  if (c->listener && c->listener->opts.idle_ms)
    uv_timer_start(c->timer, on_idle, c->listener->opts.idle_ms, 0);
  deliver(c, rt);
}

/* ===== Writing ========================================================= */

static void write_done(uv_write_t *req, int status) {
  io_cmd_t *w = req->data;
  isle_runtime_t *rt = loop_rt(req->handle->loop);
  struct isle__io_s *io = rt->io;
  conn_t *c = &io->conns[handle_index(w->conn)];
  uint64_t size = w->buf.len;
  isle_free(w->msg);
  isle_free(w);
  /* acq_rel: the writer that refused on a full backlog set want_drain
   * first. */
  uint64_t left =
      atomic_fetch_sub_explicit(&c->xqueued, size, memory_order_acq_rel) - size;
  if (status < 0 && status != UV_ECANCELED && c->tcp && !c->closing) {
    conn_close(c, ISLE_EIO);
    return;
  }
  if (c->tcp && !c->closing && c->owner &&
      left <= atomic_load_explicit(&c->xmax_output, memory_order_relaxed) / 2 &&
      atomic_exchange_explicit(&c->xwant_drain, 0, memory_order_acq_rel))
    event_send(rt, c->owner, ISLE_MSG_TCP_DRAINED, conn_handle(io, c),
               c->listener ? c->listener->self : 0, 0);
}

static void cmd_write(isle__cmd_t *base, isle__loop_t *l) {
  io_cmd_t *w = (io_cmd_t *)base;
  conn_t *c = conn_get(l->rt->io, w->conn);
  w->buf = uv_buf_init((char *)isle_msg_data(w->msg) + w->offset,
                       (unsigned)(isle_msg_size(w->msg) - w->offset));
  w->req.data = w;
  if (c && !c->closing &&
      uv_write(&w->req, (uv_stream_t *)c->tcp, &w->buf, 1, write_done) == 0)
    return;
  /* Closed meanwhile: dropped, and the backlog balanced. */
  conn_t *slot = &l->rt->io->conns[handle_index(w->conn)];
  atomic_fetch_sub_explicit(&slot->xqueued, w->buf.len, memory_order_acq_rel);
  isle_free(w->msg);
  isle_free(w);
}

/* ===== Accepting ======================================================= */

static void on_connection(uv_stream_t *server, int status) {
  listener_t *ls = server->data;
  isle_runtime_t *rt = loop_rt(server->loop);
  struct isle__io_s *io = rt->io;
  if (status < 0)
    return;
  uv_tcp_t *tcp = isle_malloc(sizeof *tcp);
  if (!tcp || uv_tcp_init(server->loop, tcp) != 0) {
    isle_free(tcp);
    return;
  }
  if (uv_accept(server, (uv_stream_t *)tcp) != 0) {
    uv_close((uv_handle_t *)tcp, free_closed);
    return;
  }
  uint32_t index = io->free_top ? io->free_top - 1 : io->used;
  if (ls->open >= ls->opts.max_conns || index >= MAX_CONNS_TOTAL) {
    atomic_fetch_add_explicit(&rt->xtcp_refused, 1, memory_order_relaxed);
    uv_close((uv_handle_t *)tcp, free_closed); /* frees the block */
    return;
  }
  conn_t *c = &io->conns[index];
  if (io->free_top)
    io->free_top = c->next_free;
  else
    io->used++;
  uv_timer_t *timer = isle_malloc(sizeof *timer);
  if (!timer) {
    c->next_free = io->free_top;
    io->free_top = index + 1;
    uv_close((uv_handle_t *)tcp, free_closed);
    return;
  }
  uv_timer_init(server->loop, timer);
  timer->data = c;
  tcp->data = c;
  uv_tcp_nodelay(tcp, 1);
  c->tcp = tcp;
  c->timer = timer;
  c->listener = ls;
  c->owner = 0;
  c->reason = 0;
  c->reading = c->closing = c->eof = false;
  atomic_store_explicit(&c->xmax_output, ls->opts.max_output,
                        memory_order_relaxed);
  /* Release: a writer that reads this generation sees the slot set up. */
  atomic_fetch_add_explicit(&c->xgen, 1, memory_order_release);
  c->handle = conn_handle(io, c);
  ls->open++;
  isle_runtime_hold(rt);
  atomic_fetch_add_explicit(&rt->xtcp_accepted, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&rt->xtcp_open, 1, memory_order_relaxed);
  if (ls->opts.idle_ms)
    uv_timer_start(timer, on_idle, ls->opts.idle_ms, 0);
  if (!event_send(rt, ls->acceptor, ISLE_MSG_TCP_ACCEPT, conn_handle(io, c),
                  ls->self, 0))
    conn_close(c, ISLE_EDEAD);
}

static void cmd_start(isle__cmd_t *base, isle__loop_t *l) {
  io_cmd_t *s = (io_cmd_t *)base;
  conn_t *c = conn_get(l->rt->io, s->conn);
  if (c && !c->closing && !c->owner) {
    c->owner = s->owner;
    uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read);
    c->reading = true;
  }
  isle_free(s);
}

static void cmd_close(isle__cmd_t *base, isle__loop_t *l) {
  io_cmd_t *s = (io_cmd_t *)base;
  conn_t *c = conn_get(l->rt->io, s->conn);
  if (c) {
    if (s->graceful)
      conn_close_graceful(c, 0);
    else
      conn_close(c, 0);
  }
  isle_free(s);
}

/* ===== Listening ======================================================= */

typedef struct listen_cmd_s {
  isle__cmd_t base;
  isle_tcp_opts_t opts;
  char host[64];
  isle_ref_t acceptor;
  /* The answer, under done_lock. */
  pthread_mutex_t done_lock;
  pthread_cond_t done_cond;
  bool done;
  int rc;
  isle_listener_t listener;
  uint16_t port;
} listen_cmd_t;

static void listener_closed(uv_handle_t *h) {
  listener_t *ls = h->data;
  isle_runtime_release(loop_rt(h->loop));
  ls->closed = true;
  if (ls->open == 0)
    isle_free(ls); /* else the last connection frees it */
}

static void listener_close(struct isle__io_s *io, listener_t *ls) {
  if (ls->closing)
    return;
  ls->closing = true;
  io->listeners[handle_index(ls->self)] = NULL;
  atomic_store_explicit(&io->xlistening[handle_index(ls->self)], 0,
                        memory_order_relaxed);
  uv_close((uv_handle_t *)&ls->tcp, listener_closed);
}

static int listen_on(isle__loop_t *l, listen_cmd_t *cmd, listener_t **out) {
  struct isle__io_s *io = l->rt->io;
  uint32_t slot = 0;
  while (slot < MAX_LISTENERS && io->listeners[slot])
    slot++;
  if (slot == MAX_LISTENERS)
    return ISLE_ENOMEM;
  struct sockaddr_storage addr;
  if (uv_ip4_addr(cmd->host, cmd->opts.port, (struct sockaddr_in *)&addr) &&
      uv_ip6_addr(cmd->host, cmd->opts.port, (struct sockaddr_in6 *)&addr))
    return ISLE_EINVAL;
  listener_t *ls = isle_calloc(1, sizeof *ls);
  if (!ls)
    return ISLE_ENOMEM;
  uv_tcp_init(&l->uv, &ls->tcp);
  ls->tcp.data = ls;
  if (uv_tcp_bind(&ls->tcp, (struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&ls->tcp, cmd->opts.backlog, on_connection) !=
          0) {
    ls->closing = true;
    isle_runtime_hold(l->rt); /* listener_closed releases one */
    uv_close((uv_handle_t *)&ls->tcp, listener_closed);
    return ISLE_EIO;
  }
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&ls->tcp, (struct sockaddr *)&bound, &len);
  cmd->port = ntohs(bound.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&bound)->sin6_port
                        : ((struct sockaddr_in *)&bound)->sin_port);
  ls->opts = cmd->opts;
  ls->opts.host = NULL;
  ls->acceptor = cmd->acceptor;
  ls->self = (uint64_t)++io->listener_gen[slot] << 32 | (slot + 1);
  io->listeners[slot] = ls;
  atomic_store_explicit(&io->xlistening[slot], ls->self, memory_order_relaxed);
  isle_runtime_hold(l->rt);
  *out = ls;
  return 0;
}

static void cmd_listen(isle__cmd_t *base, isle__loop_t *l) {
  listen_cmd_t *cmd = (listen_cmd_t *)base;
  listener_t *ls = NULL;
  int rc = listen_on(l, cmd, &ls);
  pthread_mutex_lock(&cmd->done_lock);
  cmd->rc = rc;
  cmd->listener = ls ? ls->self : 0;
  cmd->done = true;
  pthread_cond_signal(&cmd->done_cond);
  pthread_mutex_unlock(&cmd->done_lock);
}

static void cmd_unlisten(isle__cmd_t *base, isle__loop_t *l) {
  io_cmd_t *s = (io_cmd_t *)base;
  struct isle__io_s *io = l->rt->io;
  uint32_t slot = handle_index(s->conn);
  listener_t *ls = slot < MAX_LISTENERS ? io->listeners[slot] : NULL;
  if (ls && ls->self == s->conn)
    listener_close(io, ls);
  isle_free(s);
}

/* ===== Shutdown ======================================================== */

typedef struct shutdown_cmd_s {
  isle__cmd_t base;
  struct shutdown_cmd_s *next, **prev; /* io->shutdowns */
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

/* Ends the pending shutdown deadlines (their holds) at once. */
static void shutdowns_done(struct isle__io_s *io) {
  for (shutdown_cmd_t *s = io->shutdowns; s; s = s->next)
    if (!uv_is_closing((uv_handle_t *)&s->timer))
      uv_close((uv_handle_t *)&s->timer, shutdown_timer_closed);
}

static void on_deadline(uv_timer_t *t) {
  struct isle__io_s *io = loop_rt(t->loop)->io;
  for (uint32_t i = 0; i < io->used; i++)
    if (io->conns[i].tcp && !io->conns[i].closing)
      conn_close(&io->conns[i], ISLE_ESHUTDOWN);
  uv_close((uv_handle_t *)t, shutdown_timer_closed);
}

static void cmd_shutdown(isle__cmd_t *base, isle__loop_t *l) {
  shutdown_cmd_t *s = (shutdown_cmd_t *)base;
  isle_runtime_t *rt = l->rt;
  struct isle__io_s *io = rt->io;
  for (uint32_t i = 0; i < MAX_LISTENERS; i++)
    if (io->listeners[i])
      listener_close(io, io->listeners[i]);
  for (uint32_t i = 0; i < io->used; i++) {
    conn_t *c = &io->conns[i];
    if (!c->tcp || c->closing)
      continue;
    if (c->reading) {
      uv_read_stop((uv_stream_t *)c->tcp);
      c->reading = false;
    }
    c->eof = true;
    if (!c->owner ||
        !event_send(rt, c->owner, ISLE_MSG_TCP_EOF, conn_handle(io, c),
                    c->listener ? c->listener->self : 0, 0))
      conn_close(c, ISLE_ESHUTDOWN);
  }
  /* The deadline holds the runtime until it has closed the stragglers. */
  s->next = io->shutdowns;
  s->prev = &io->shutdowns;
  if (s->next)
    s->next->prev = &s->next;
  io->shutdowns = s;
  uv_timer_init(&l->uv, &s->timer);
  s->timer.data = s;
  uv_timer_start(&s->timer, on_deadline, s->deadline_ms, 0);
  if (atomic_load_explicit(&rt->xtcp_open, memory_order_relaxed) == 0)
    shutdowns_done(io);
}

/* ===== Internal functions ============================================== */

void isle__io_quit(isle__loop_t *l) {
  struct isle__io_s *io = l->rt->io;
  if (!io)
    return;
  io->quitting = true;
  shutdowns_done(io);
  for (uint32_t i = 0; i < MAX_LISTENERS; i++)
    if (io->listeners[i])
      listener_close(io, io->listeners[i]);
  for (uint32_t i = 0; i < io->used; i++)
    if (io->conns[i].tcp)
      conn_close(&io->conns[i], ISLE_ESHUTDOWN);
}

void isle__io_free(isle_runtime_t *rt) {
  struct isle__io_s *io = rt->io;
  if (!io)
    return;
  munmap(io->conns, sizeof(conn_t) * MAX_CONNS_TOTAL);
  isle_free(io);
  rt->io = NULL;
}

/* ===== Public functions ================================================ */

/* The loop and io state for a call from any thread; NULL without memory. */
static isle__loop_t *io_loop(isle_runtime_t *rt) {
  isle__loop_t *l = isle__loop_get(rt);
  if (!l)
    return NULL;
  pthread_mutex_lock(&rt->loop_lock);
  struct isle__io_s *io = io_state(rt);
  pthread_mutex_unlock(&rt->loop_lock);
  return io ? l : NULL;
}

/* A handle a writer may use now: its slot's generation still matches. */
static conn_t *conn_check(isle_runtime_t *rt, isle_conn_t h) {
  struct isle__io_s *io = rt->io;
  uint32_t i = handle_index(h);
  if (!io || (uint32_t)h == 0 || i >= MAX_CONNS_TOTAL || handle_gen(h) == 0)
    return NULL;
  conn_t *c = &io->conns[i];
  /* Acquire: pairs with the release increments of the io thread. */
  return atomic_load_explicit(&c->xgen, memory_order_acquire) == handle_gen(h)
             ? c
             : NULL;
}

int isle_tcp_listen(isle_runtime_t *rt, const isle_tcp_opts_t *opts,
                    isle_ref_t acceptor, isle_listener_t *out,
                    uint16_t *port_out) {
  if (!rt || !opts || isle__ref_check(rt, acceptor))
    return ISLE_EINVAL;
  const char *host = opts->host ? opts->host : "127.0.0.1";
  if (strlen(host) >= 64 || opts->backlog < 0 ||
      opts->read_size > (64u << 20) || opts->max_conns > MAX_CONNS_TOTAL)
    return ISLE_EINVAL;
  isle__loop_t *l = io_loop(rt);
  if (!l)
    return ISLE_ENOMEM;
  listen_cmd_t *cmd = isle_calloc(1, sizeof *cmd);
  if (!cmd)
    return ISLE_ENOMEM;
  cmd->base.run = cmd_listen;
  cmd->opts = *opts;
  strcpy(cmd->host, host);
  if (!cmd->opts.backlog)
    cmd->opts.backlog = 511;
  if (!cmd->opts.max_conns)
    cmd->opts.max_conns = DEFAULT_MAX_CONNS;
  if (!cmd->opts.max_output)
    cmd->opts.max_output = DEFAULT_OUTPUT;
  if (!cmd->opts.read_size)
    cmd->opts.read_size = DEFAULT_READ;
  cmd->acceptor = acceptor;
  pthread_mutex_init(&cmd->done_lock, NULL);
  pthread_cond_init(&cmd->done_cond, NULL);
  isle__loop_post(l, &cmd->base);
  pthread_mutex_lock(&cmd->done_lock);
  while (!cmd->done)
    pthread_cond_wait(&cmd->done_cond, &cmd->done_lock);
  pthread_mutex_unlock(&cmd->done_lock);
  int rc = cmd->rc;
  if (rc == 0) {
    if (out)
      *out = cmd->listener;
    if (port_out)
      *port_out = cmd->port;
  }
  pthread_mutex_destroy(&cmd->done_lock);
  pthread_cond_destroy(&cmd->done_cond);
  isle_free(cmd);
  return rc;
}

/* Posts a small command about handle `h`. */
static int post_simple(isle_runtime_t *rt, uint64_t h,
                       void (*run)(isle__cmd_t *, isle__loop_t *),
                       isle_ref_t owner, bool graceful) {
  isle__loop_t *l = atomic_load_explicit(&rt->xloop, memory_order_acquire);
  io_cmd_t *c = l ? isle_malloc(sizeof *c) : NULL;
  if (!l)
    return ISLE_EDEAD;
  if (!c)
    return ISLE_ENOMEM;
  c->base.run = run;
  c->conn = h;
  c->owner = owner;
  c->graceful = graceful;
  isle__loop_post(l, &c->base);
  return 0;
}

int isle_tcp_unlisten(isle_runtime_t *rt, isle_listener_t listener) {
  if (!rt || (uint32_t)listener == 0 || handle_index(listener) >= MAX_LISTENERS)
    return ISLE_EINVAL;
  /* Refused here, as documented: the command alone would answer 0 for a
   * listener closed long ago. Relaxed: advisory, the io thread checks
   * again (a racing unlisten or shutdown may close it first). */
  if (!rt->io ||
      atomic_load_explicit(&rt->io->xlistening[handle_index(listener)],
                           memory_order_relaxed) != listener)
    return ISLE_EDEAD;
  return post_simple(rt, listener, cmd_unlisten, 0, false);
}

int isle_tcp_start(isle_runtime_t *rt, isle_conn_t conn, isle_ref_t owner) {
  if (!rt || isle__ref_check(rt, owner))
    return ISLE_EINVAL;
  conn_t *c = conn_check(rt, conn);
  if (!c)
    return (uint32_t)conn == 0 ? ISLE_EINVAL : ISLE_EDEAD;
  /* A second start was posted and silently dropped by cmd_start: refuse
   * it here. Each accept and close moves the generation on, so an old
   * occupant's value never matches. Relaxed: the exchange alone decides. */
  if (atomic_exchange_explicit(&c->xstarted, handle_gen(conn),
                               memory_order_relaxed) == handle_gen(conn))
    return ISLE_ESTATE;
  return post_simple(rt, conn, cmd_start, owner, false);
}

int isle_tcp_write(isle_runtime_t *rt, isle_conn_t conn, isle_msg_t *msg) {
  if (!rt || !msg)
    return ISLE_EINVAL;
  conn_t *c = conn_check(rt, conn);
  if (!c)
    return (uint32_t)conn == 0 ? ISLE_EINVAL : ISLE_EDEAD;
  isle__loop_t *l = atomic_load_explicit(&rt->xloop, memory_order_acquire);
  io_cmd_t *w = isle_malloc(sizeof *w);
  if (!w)
    return ISLE_ENOMEM;
  /* A stale slot (reused since the check) is caught by the io thread's
   * own check; its limit is then the new occupant's, which is harmless. */
  /* A received DATA message can be written back as it is (echo). */
  size_t offset = isle_msg_type(msg) == ISLE_MSG_TCP_DATA &&
                          isle_msg_size(msg) >= DATA_HEADER
                      ? DATA_HEADER
                      : 0;
  size_t size = isle_msg_size(msg) - offset;
  uint64_t max = atomic_load_explicit(&c->xmax_output, memory_order_relaxed);
  uint64_t before =
      atomic_fetch_add_explicit(&c->xqueued, size, memory_order_acq_rel);
  if (before + size > max && before > 0) {
    atomic_store_explicit(&c->xwant_drain, 1, memory_order_release);
    atomic_fetch_sub_explicit(&c->xqueued, size, memory_order_acq_rel);
    isle_free(w);
    return ISLE_EFULL;
  }
  w->base.run = cmd_write;
  w->conn = conn;
  w->msg = msg;
  w->offset = offset;
  isle__loop_post(l, &w->base);
  return 0;
}

int isle_tcp_close(isle_runtime_t *rt, isle_conn_t conn, bool graceful) {
  if (!rt)
    return ISLE_EINVAL;
  if (!conn_check(rt, conn))
    return (uint32_t)conn == 0 ? ISLE_EINVAL : ISLE_EDEAD;
  return post_simple(rt, conn, cmd_close, 0, graceful);
}

int isle_io_shutdown(isle_runtime_t *rt, uint32_t deadline_ms) {
  if (!rt)
    return ISLE_EINVAL;
  isle__loop_t *l = io_loop(rt);
  shutdown_cmd_t *s = l ? isle_calloc(1, sizeof *s) : NULL;
  if (!s)
    return ISLE_ENOMEM;
  s->base.run = cmd_shutdown;
  s->deadline_ms = deadline_ms;
  isle_runtime_hold(rt); /* released when the deadline timer closes */
  isle__loop_post(l, &s->base);
  return 0;
}

char *isle_tcp_data(isle_msg_t *msg, size_t *len, isle_conn_t *conn) {
  if (!msg || isle_msg_type(msg) != ISLE_MSG_TCP_DATA ||
      isle_msg_size(msg) < DATA_HEADER)
    return NULL;
  char *p = isle_msg_data(msg);
  if (len)
    *len = isle_msg_size(msg) - DATA_HEADER;
  if (conn)
    *conn = *(isle_conn_t *)p;
  return p + DATA_HEADER;
}

const isle_tcp_event_t *isle_tcp_event(isle_msg_t *msg) {
  if (!msg)
    return NULL;
  uint32_t t = isle_msg_type(msg);
  if (t < ISLE_MSG_TCP_ACCEPT || t > ISLE_MSG_TCP_CLOSED ||
      t == ISLE_MSG_TCP_DATA || isle_msg_size(msg) < sizeof(isle_tcp_event_t))
    return NULL;
  return isle_msg_data(msg);
}
