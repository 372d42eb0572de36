/* isle — MIT licensed. */
/*
 * TCP on libuv loops (see include/isle/io.h for the API). Listeners live
 * on the io thread's loop; connections on the loop of the worker they were
 * handed to (ISLE_IO_WORKERS, the default: accepted sockets are dealt to
 * the workers in turn) or on the io thread's too (ISLE_IO_THREAD). "The
 * connection's loop thread" below is whichever runs it.
 *
 * Connections live in a table mapped once (pages commit as used) and are
 * named like actors: (generation << 32) | (index + 1). A connection's loop
 * thread alone reads, writes and closes it; other threads only validate a
 * handle and post a command to that loop (an actor running on the worker
 * that owns the connection calls straight in: no command, no wake-up).
 * Three fields are shared, all atomics:
 *   xgen     the occupant's generation, odd while it is open; a writer
 *            checks its handle against it, and the loop checks again when
 *            the command arrives (the slot may have been reused in
 *            between: then the write is dropped, as a write into a reset
 *            connection is);
 *   xloop    the occupant's loop, set before the generation is published
 *            and cleared when the connection has closed fully: a caller
 *            that passed its check and then reads NULL has a dead handle;
 *   xqueued  bytes accepted by isle_tcp_write and not yet written or
 *            dropped: added by the writer, subtracted by the loop;
 *            never reset, so a late command from an old occupant still
 *            balances it.
 * Reads go straight into a message (the DATA header is the first 16 bytes
 * of its payload), sent to the owner; a full owner mailbox pauses reading
 * and a 1 ms timer retries the delivery. An EOF waits for that DATA, and a
 * close delivers it (past the capacity) before EOF and CLOSED.
 *
 * Closing: a graceful close (uv_shutdown) stops new work at once and is
 * bounded by the connection's timer (idle_ms, else LINGER_MS); that
 * timer, the shutdown deadline and teardown end it with a reset. A hard
 * close (uv_close) happens once per connection, whatever asked for it,
 * and cancels a pending shutdown request with it.
 *
 * The slot table's free list is under a mutex (a connection opens and
 * closes once; requests never touch it). Listeners and their counters
 * are shared by the loops their connections live on: counted references.
 *
 * Every open listener and connection holds the runtime (pending work for
 * quiescence) until it is closed.
 *
 * Threads: the public functions from any thread; the rest on the loop
 * thread of the handle they are given.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <linux/sockios.h> /* SIOCOUTQ: output the kernel still holds */
#include <sys/ioctl.h>
#include <sys/socket.h> /* SO_LINGER: a graceful close given up is reset */
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
/* How long a graceful close may take when the listener has no idle_ms
 * (with one, idle_ms): then the connection is reset (docs/io.md). */
#define LINGER_MS 10000

typedef struct listener_s {
  uv_tcp_t tcp;
  isle_listener_t self;
  isle_ref_t acceptor;
  isle_tcp_opts_t opts;   /* defaults filled in; host not kept */
  _Atomic uint32_t xopen; /* its connections still open */
  _Atomic uint32_t xrefs; /* its handle + its open connections */
  unsigned next_worker;   /* ISLE_IO_WORKERS: who gets the next one */
  bool closing;           /* uv_close called (io thread) */
} listener_t;

typedef struct conn_s {
  _Atomic uint32_t xgen;
  _Atomic uint32_t xwant_drain; /* a write was refused: DRAINED is due */
  _Atomic uint64_t xqueued;
  _Atomic uint64_t xmax_output;  /* the listener's, set before xgen */
  _Atomic uint32_t xstarted;     /* the generation isle_tcp_start took */
  _Atomic(isle__loop_t *) xloop; /* set before xgen */
  /* The loop's thread only: */
  uv_tcp_t *tcp;      /* NULL when the slot is free */
  uv_timer_t *timer;  /* idle timeout, and retrying a refused delivery */
  isle_msg_t *parked; /* a DATA message the owner's mailbox refused */
  listener_t *listener;
  isle_ref_t owner;
  isle_conn_t handle; /* as accepted: xgen moves on when it closes */
  uint32_t next_free; /* free list: index + 1 */
  int reason;         /* for CLOSED */
  bool reading;
  /* closing: the connection takes no more work (its generation is even):
   * a graceful or a hard close has begun. draining: a graceful close's
   * shutdown request is pending. A hard close (conn_close) ends either:
   * uv_is_closing(tcp) from then on. eof_due: an EOF waits for the
   * parked DATA (the owner gets its bytes in order, then EOF). */
  bool closing, draining, eof, eof_due;
} conn_t;

struct isle__tcp_s {
  conn_t *conns;          /* MAX_CONNS_TOTAL, mapped */
  pthread_mutex_t lock;   /* the free list: used, free_top */
  _Atomic uint32_t xused; /* slots ever used (written under the lock) */
  uint32_t free_top;
  listener_t *listeners[MAX_LISTENERS];
  uint32_t listener_gen[MAX_LISTENERS];
  /* The handle open in each slot, 0 if none: what isle_tcp_unlisten
   * checks on the caller's thread. */
  _Atomic uint64_t xlistening[MAX_LISTENERS];
  /* The io thread's: */
  struct shutdown_cmd_s *shutdowns; /* deadlines pending */
  _Atomic bool xquitting;
};

typedef struct io_cmd_s {
  isle__cmd_t base;
  isle_conn_t conn;
  int fd;               /* adopt: the accepted socket */
  listener_t *listener; /* adopt */
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

/* ===== Helpers ========================================================= */

static isle__loop_t *loop_of(uv_loop_t *uv) {
  return uv->data;
}

static isle_runtime_t *loop_rt(uv_loop_t *uv) {
  return loop_of(uv)->rt;
}

/* The connection table, created on first use. Under io->loop_lock. */
static struct isle__tcp_s *tcp_state(isle__io_t *io) {
  if (!io->tcp) {
    struct isle__tcp_s *tab = isle_calloc(1, sizeof *tab);
    if (!tab)
      return NULL;
    void *t =
        mmap(NULL, sizeof(conn_t) * MAX_CONNS_TOTAL, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (t == MAP_FAILED) {
      isle_free(tab);
      return NULL;
    }
    tab->conns = t;
    pthread_mutex_init(&tab->lock, NULL);
    io->tcp = tab;
  }
  return io->tcp;
}

/* The live connection `h` on this thread's loop, or NULL. A matching odd
 * generation means the occupant the handle names, open: its loop is the
 * calling one (commands go to the handle's loop). */
static conn_t *conn_get(struct isle__tcp_s *tab, isle_conn_t h) {
  uint32_t i = handle_index(h);
  if ((uint32_t)h == 0 || i >= MAX_CONNS_TOTAL)
    return NULL;
  conn_t *c = &tab->conns[i];
  if (atomic_load_explicit(&c->xgen, memory_order_acquire) != handle_gen(h) ||
      !c->tcp)
    return NULL;
  return c;
}

static isle_conn_t conn_handle(struct isle__tcp_s *tab, conn_t *c) {
  return (uint64_t)atomic_load_explicit(&c->xgen, memory_order_relaxed) << 32 |
         ((uint64_t)(c - tab->conns) + 1);
}

static void listener_unref(listener_t *ls) {
  if (atomic_fetch_sub_explicit(&ls->xrefs, 1, memory_order_acq_rel) == 1)
    isle_free(ls);
}

/* Sends an event from loop `l`'s thread; false if `to` would not take it.
 * On a worker's loop the receiver is scheduled on that worker. */
static bool event_send(isle__loop_t *l, isle_ref_t to, uint32_t type,
                       isle_conn_t conn, isle_listener_t ls, int reason) {
  isle_msg_t *m = isle_msg_new(type, sizeof(isle_tcp_event_t));
  if (!m)
    return false;
  isle_tcp_event_t *e = isle_msg_data(m);
  e->conn = conn;
  e->listener = ls;
  e->reason = reason;
  /* Events must not be lost to a full mailbox: they pass its capacity. */
  m->flags |= ISLE__MSG_F_NOCAP;
  if (isle__send(l->rt, l->worker, ISLE_REF_NONE, to, m) == 0)
    return true;
  isle_free(m);
  return false;
}

static isle_listener_t listener_self(const conn_t *c) {
  return c->listener ? c->listener->self : 0;
}

/* ===== Generations ===================================================== */

/* A slot's generation is odd while a connection is open in it, even
 * otherwise; only the loop thread that owns the slot writes it (a slot
 * changes hands under the free-list lock). Release: a writer that reads
 * the new value sees what was set up before. */
static void gen_open(conn_t *c) {
  uint32_t g = atomic_load_explicit(&c->xgen, memory_order_relaxed);
  atomic_store_explicit(&c->xgen, g + ((g & 1) ? 2 : 1), memory_order_release);
}

/* Closing (once, even if a graceful close ends in a plain one). */
static void gen_close(conn_t *c) {
  uint32_t g = atomic_load_explicit(&c->xgen, memory_order_relaxed);
  if (g & 1)
    atomic_store_explicit(&c->xgen, g + 1, memory_order_release);
}

/* ===== Closing ========================================================= */

static void shutdowns_check(isle__io_t *io);

static void conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  isle__loop_t *l = loop_of(h->loop);
  isle_runtime_t *rt = l->rt;
  struct isle__tcp_s *tab = l->io->tcp;
  if (c->owner && !atomic_load_explicit(&tab->xquitting, memory_order_relaxed)) {
    /* What the owner is still due comes first, in order: the DATA its
     * full mailbox refused (now past the capacity, like events: one
     * message of read_size at most), the EOF that waited for it, then
     * CLOSED, the last event. Handles as the owner knows them, not
     * conn_handle: closing moved xgen on, and CLOSED names no live
     * handle. */
    if (c->parked) {
      c->parked->flags |= ISLE__MSG_F_NOCAP;
      if (isle__send(rt, l->worker, ISLE_REF_NONE, c->owner, c->parked) == 0)
        c->parked = NULL;
    }
    if (c->eof_due)
      event_send(l, c->owner, ISLE_MSG_TCP_EOF, c->handle, listener_self(c), 0);
    event_send(l, c->owner, ISLE_MSG_TCP_CLOSED, c->handle, listener_self(c),
               c->reason);
  }
  if (c->listener) {
    atomic_fetch_sub_explicit(&c->listener->xopen, 1, memory_order_relaxed);
    listener_unref(c->listener);
  }
  isle_free(c->tcp);
  c->tcp = NULL;
  isle_free(c->parked);
  c->parked = NULL;
  c->owner = 0;
  c->listener = NULL;
  /* No longer this loop's: each_conn here must not read the slot once
   * another loop may take it from the free list (below). */
  atomic_store_explicit(&c->xloop, NULL, memory_order_relaxed);
  ISLE__CHAOS("io.closed"); /* a caller past its check now reads NULL */
  l->conns--;
  pthread_mutex_lock(&tab->lock);
  c->next_free = tab->free_top;
  tab->free_top = (uint32_t)(c - tab->conns) + 1;
  pthread_mutex_unlock(&tab->lock);
  if (atomic_fetch_sub_explicit(&l->io->xtcp_open, 1, memory_order_acq_rel) ==
      1)
    shutdowns_check(l->io); /* the last one: no deadline to wait for */
  isle_runtime_release(rt);
}

/* For handles in their own heap block. */
static void free_closed(uv_handle_t *h) {
  isle_free(h);
}

/* Closes now, once; pending writes complete with ECANCELED (and are
 * freed), and so does a graceful close's shutdown request: this also ends
 * a graceful close in progress. */
static void conn_close(conn_t *c, int reason) {
  if (uv_is_closing((uv_handle_t *)c->tcp))
    return;
  c->closing = true;
  c->draining = false;
  c->reason = reason;
  /* An even generation at once: writers see the handle dead from here. */
  gen_close(c);
  ISLE__CHAOS("io.close"); /* a writer that passed its check before */
  uv_close((uv_handle_t *)c->timer, free_closed);
  c->timer = NULL;
  uv_close((uv_handle_t *)c->tcp, conn_closed);
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
  conn_close(c, reason);
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
    conn_close(c, reason);
}

/* Ends the connection because time ran out (idle_ms, a graceful close's
 * bound, the shutdown deadline) or the runtime ends. A graceful close in
 * progress is given up with a reset, any other close resets when output
 * is still queued (conn_drop): a FIN behind output the peer does not take
 * would leave our socket orphaned in FIN-WAIT-1 with that output, facing
 * a peer that still sees the connection open (its sends may then block:
 * servers_echo_abuse, a never-reader that went silent for idle_ms). */
static void conn_end(conn_t *c, int reason) {
  if (c->draining)
    conn_reset(c, reason);
  else
    conn_drop(c, reason);
}

static void shutdown_done(uv_shutdown_t *req, int status) {
  conn_t *c = req->handle->data;
  isle_free(req);
  /* UV_ECANCELED: conn_close ended the graceful close and the handle is
   * closing already (conn_close does nothing). Otherwise FIN is sent, or
   * could not be (the peer reset). */
  conn_close(c, status < 0 && status != UV_ECANCELED ? ISLE_EIO : c->reason);
}

static void on_idle(uv_timer_t *t);

/* Starts the connection's timer for `ms` of idleness from now. libuv
 * counts from the loop's cached time, which is as old as this loop
 * round: a thread preempted in between (or a turn calling straight in)
 * would make the close come early by that much. */
static void idle_arm(uv_timer_t *t, uint64_t ms) {
  uv_update_time(t->loop);
  uv_timer_start(t, on_idle, ms, 0);
}

/* Writes what is queued, sends FIN, then closes; at most idle_ms (or
 * LINGER_MS) from now, when a peer that does not read is reset. */
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

/* Calls fn on every connection of loop `l` not closed yet (its thread),
 * graceful closes in progress included. */
static void each_conn(isle__loop_t *l, void (*fn)(isle__loop_t *, conn_t *)) {
  struct isle__tcp_s *tab = l->io->tcp;
  uint32_t used = atomic_load_explicit(&tab->xused, memory_order_acquire);
  for (uint32_t i = 0; i < used; i++) {
    conn_t *c = &tab->conns[i];
    /* A slot names a loop from its adoption until that loop frees it
     * (conn_closed clears it, on this thread, before the slot goes back
     * to the free list), so one that names this loop is ours to read. */
    if (atomic_load_explicit(&c->xloop, memory_order_acquire) == l && c->tcp &&
        !uv_is_closing((uv_handle_t *)c->tcp))
      fn(l, c);
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
static void deliver(isle__loop_t *l, conn_t *c) {
  int rc = isle__send(l->rt, l->worker, ISLE_REF_NONE, c->owner, c->parked);
  if (rc == 0) {
    c->parked = NULL;
    if (c->eof_due) {
      c->eof_due = false;
      if (!event_send(l, c->owner, ISLE_MSG_TCP_EOF, c->handle,
                      listener_self(c), 0)) {
        conn_close(c, ISLE_EDEAD);
        return;
      }
    }
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
  /* The owner is gone: the DATA was counted as a dead letter once. */
  isle_free(c->parked);
  c->parked = NULL;
  c->eof_due = false;
  conn_close(c, ISLE_EDEAD);
}

/* Tells the owner EOF, after the parked DATA if there is one (deliver
 * sends it then: an event would pass the full mailbox and overtake the
 * bytes). False if the owner is gone. */
static bool eof_send(isle__loop_t *l, conn_t *c) {
  if (c->parked) {
    c->eof_due = true;
    return true;
  }
  return event_send(l, c->owner, ISLE_MSG_TCP_EOF, c->handle, listener_self(c),
                    0);
}

/* Idle for idle_ms, or a graceful close out of time. */
static void on_idle(uv_timer_t *t) {
  conn_t *c = t->data;
  conn_end(c, ISLE_ESHUTDOWN);
}

static void on_retry(uv_timer_t *t) {
  conn_t *c = t->data;
  deliver(loop_of(t->loop), c);
  if (!c->parked && !c->closing && c->listener && c->listener->opts.idle_ms)
    idle_arm(c->timer, c->listener->opts.idle_ms);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = s->data;
  isle__loop_t *l = loop_of(s->loop);
  struct isle__tcp_s *tab = l->io->tcp;
  isle_msg_t *m = buf_msg(buf);
  if (n <= 0) {
    isle_free(m);
    if (n == 0)
      return; /* EAGAIN */
    uv_read_stop(s);
    c->reading = false;
    if (n == UV_EOF) {
      c->eof = true;
      if (!eof_send(l, c))
        conn_close(c, ISLE_EDEAD);
    } else {
      conn_close(c, ISLE_EIO);
    }
    return;
  }
  /* The bytes are in place: set the size and the header, no copy. */
  m->size = (uint32_t)(DATA_HEADER + (size_t)n);
  *(isle_conn_t *)isle_msg_data(m) = conn_handle(tab, c);
  c->parked = m;
  if (c->listener && c->listener->opts.idle_ms)
    idle_arm(c->timer, c->listener->opts.idle_ms);
  deliver(l, c);
}

/* ===== Writing ========================================================= */

/* `size` bytes of c's backlog are written (or dropped): the backlog
 * shrinks, and a DRAINED is sent if a refused writer asked for one. */
static void written(isle__loop_t *l, conn_t *c, uint64_t size) {
  /* seq_cst, as in isle_tcp_write: a writer refused on a full backlog
   * either sets want_drain before this subtraction is seen, or sees the
   * backlog it leaves. */
  uint64_t left =
      atomic_fetch_sub_explicit(&c->xqueued, size, memory_order_seq_cst) - size;
  ISLE__CHAOS("io.written"); /* a refused writer sets want_drain here */
  if (c->tcp && !c->closing && c->owner &&
      left <= atomic_load_explicit(&c->xmax_output, memory_order_relaxed) / 2 &&
      atomic_exchange_explicit(&c->xwant_drain, 0, memory_order_seq_cst))
    event_send(l, c->owner, ISLE_MSG_TCP_DRAINED, conn_handle(l->io->tcp, c),
               listener_self(c), 0);
}

static void write_done(uv_write_t *req, int status) {
  io_cmd_t *w = req->data;
  isle__loop_t *l = loop_of(req->handle->loop);
  conn_t *c = &l->io->tcp->conns[handle_index(w->conn)];
  uint64_t size = w->buf.len;
  isle_free(w->msg);
  isle_free(w);
  /* A failed write ends a graceful close too: libuv would not go on to
   * the writes queued behind it, nor to the shutdown. */
  if (status < 0 && status != UV_ECANCELED && c->tcp &&
      !uv_is_closing((uv_handle_t *)c->tcp)) {
    atomic_fetch_sub_explicit(&c->xqueued, size, memory_order_seq_cst);
    conn_close(c, ISLE_EIO);
    return;
  }
  written(l, c, size);
}

static void cmd_write(isle__cmd_t *base, isle__loop_t *l) {
  io_cmd_t *w = (io_cmd_t *)base;
  conn_t *c = conn_get(l->io->tcp, w->conn);
  w->buf = uv_buf_init((char *)isle_msg_data(w->msg) + w->offset,
                       (unsigned)(isle_msg_size(w->msg) - w->offset));
  w->req.data = w;
  if (c && !c->closing) {
    /* Most writes go out at once: uv_try_write needs no request and no
     * callback. (A uv_write that completes at once still feeds the
     * watcher, and the next poll re-arms it with an epoll_ctl: one
     * system call per response, measured with strace on the kv server.)
     * It writes nothing while earlier writes are queued, so order holds. */
    int n = uv_try_write((uv_stream_t *)c->tcp, &w->buf, 1);
    if (n == (int)w->buf.len) {
      isle_free(w->msg);
      isle_free(w);
      written(l, c, (uint64_t)n);
      return;
    }
    if (n > 0) {
      w->buf.base += n;
      w->buf.len -= (size_t)n;
      written(l, c, (uint64_t)n);
    }
    if ((n >= 0 || n == UV_EAGAIN) &&
        uv_write(&w->req, (uv_stream_t *)c->tcp, &w->buf, 1, write_done) == 0)
      return;
    if (n < 0 && n != UV_EAGAIN)
      conn_close(c, ISLE_EIO); /* the peer reset, say */
  }
  /* Closed meanwhile (or failing): dropped, and the backlog balanced. */
  conn_t *slot = &l->io->tcp->conns[handle_index(w->conn)];
  atomic_fetch_sub_explicit(&slot->xqueued, w->buf.len, memory_order_seq_cst);
  isle_free(w->msg);
  isle_free(w);
}

/* ===== Accepting ======================================================= */

/* Makes `tcp` (initialised on loop l, this thread) a connection from
 * listener `ls`, whose reference and runtime hold it takes over, and
 * tells the acceptor. */
static void conn_adopt(isle__loop_t *l, uv_tcp_t *tcp, listener_t *ls) {
  isle_runtime_t *rt = l->rt;
  struct isle__tcp_s *tab = l->io->tcp;
  uv_timer_t *timer = isle_malloc(sizeof *timer);
  pthread_mutex_lock(&tab->lock);
  uint32_t used = atomic_load_explicit(&tab->xused, memory_order_relaxed);
  uint32_t index = tab->free_top ? tab->free_top - 1 : used;
  bool room = timer && index < MAX_CONNS_TOTAL;
  if (room) {
    if (tab->free_top)
      tab->free_top = tab->conns[index].next_free;
    else
      atomic_store_explicit(&tab->xused, used + 1, memory_order_release);
  }
  pthread_mutex_unlock(&tab->lock);
  if (!room) {
    isle_free(timer);
    atomic_fetch_add_explicit(&l->io->xtcp_refused, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&ls->xopen, 1, memory_order_relaxed);
    listener_unref(ls);
    uv_close((uv_handle_t *)tcp, free_closed);
    isle_runtime_release(rt);
    return;
  }
  conn_t *c = &tab->conns[index];
  uv_timer_init(&l->uv, timer);
  timer->data = c;
  tcp->data = c;
  uv_tcp_nodelay(tcp, 1);
  c->tcp = tcp;
  c->timer = timer;
  c->listener = ls;
  c->owner = 0;
  c->reason = 0;
  c->parked = NULL;
  c->reading = c->closing = c->draining = c->eof = c->eof_due = false;
  atomic_store_explicit(&c->xmax_output, ls->opts.max_output,
                        memory_order_relaxed);
  atomic_store_explicit(&c->xloop, l, memory_order_relaxed);
  ISLE__CHAOS("io.adopt"); /* an old handle's caller reads the new loop */
  /* Release: a writer that reads this (odd) generation sees the slot set
   * up, its loop included. */
  gen_open(c);
  c->handle = conn_handle(tab, c);
  l->conns++;
  atomic_fetch_add_explicit(&l->io->xtcp_accepted, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&l->io->xtcp_open, 1, memory_order_relaxed);
  if (ls->opts.idle_ms)
    idle_arm(timer, ls->opts.idle_ms);
  if (!event_send(l, ls->acceptor, ISLE_MSG_TCP_ACCEPT, conn_handle(tab, c),
                  ls->self, 0))
    conn_close(c, ISLE_EDEAD);
}

/* ISLE_IO_WORKERS: a worker's loop takes over an accepted socket. */
static void cmd_adopt(isle__cmd_t *base, isle__loop_t *l) {
  io_cmd_t *a = (io_cmd_t *)base;
  uv_tcp_t *tcp = isle_malloc(sizeof *tcp);
  if (tcp && uv_tcp_init(&l->uv, tcp) == 0) {
    if (uv_tcp_open(tcp, a->fd) == 0) {
      conn_adopt(l, tcp, a->listener);
      isle_free(a);
      return;
    }
    uv_close((uv_handle_t *)tcp, free_closed); /* a->fd is still ours */
  } else {
    isle_free(tcp);
  }
  close(a->fd);
  atomic_fetch_sub_explicit(&a->listener->xopen, 1, memory_order_relaxed);
  listener_unref(a->listener);
  isle_runtime_release(l->rt);
  isle_free(a);
}

static void on_connection(uv_stream_t *server, int status) {
  listener_t *ls = server->data;
  isle__loop_t *l = loop_of(server->loop);
  isle_runtime_t *rt = l->rt;
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
  /* Counted before it is handed on, so max_conns holds across loops. */
  if (atomic_fetch_add_explicit(&ls->xopen, 1, memory_order_relaxed) >=
      ls->opts.max_conns) {
    atomic_fetch_sub_explicit(&ls->xopen, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->io->xtcp_refused, 1, memory_order_relaxed);
    uv_close((uv_handle_t *)tcp, free_closed);
    return;
  }
  atomic_fetch_add_explicit(&ls->xrefs, 1, memory_order_relaxed);
  isle_runtime_hold(rt); /* from here until the connection closes */
  if (!l->io->worker_loops) {
    conn_adopt(l, tcp, ls);
    return;
  }
  /* Deal it to the next worker: a copy of the socket goes to its loop
   * (libuv handles cannot move between loops), this handle closes. */
  isle__loop_t *to =
      &l->io->worker_loops[ls->next_worker++ % rt->nworkers];
  uv_os_fd_t fd;
  io_cmd_t *a = isle_malloc(sizeof *a);
  int dup_fd = -1;
  if (a && uv_fileno((uv_handle_t *)tcp, &fd) == 0)
    dup_fd = dup(fd);
  uv_close((uv_handle_t *)tcp, free_closed);
  if (dup_fd < 0) {
    isle_free(a);
    atomic_fetch_sub_explicit(&ls->xopen, 1, memory_order_relaxed);
    listener_unref(ls);
    isle_runtime_release(rt);
    return;
  }
  a->base.run = cmd_adopt;
  a->fd = dup_fd;
  a->listener = ls;
  ISLE__CHAOS("io.deal"); /* a shutdown's commands may reach `to` first */
  isle__loop_post(to, &a->base);
}

static void cmd_start(isle__cmd_t *base, isle__loop_t *l) {
  io_cmd_t *s = (io_cmd_t *)base;
  conn_t *c = conn_get(l->io->tcp, s->conn);
  if (c && !c->closing && !c->owner) {
    c->owner = s->owner;
    uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read);
    c->reading = true;
  }
  isle_free(s);
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
  listener_unref(ls); /* the handle's; its connections hold theirs */
}

static void listener_close(struct isle__tcp_s *tab, listener_t *ls) {
  if (ls->closing)
    return;
  ls->closing = true;
  tab->listeners[handle_index(ls->self)] = NULL;
  atomic_store_explicit(&tab->xlistening[handle_index(ls->self)], 0,
                        memory_order_relaxed);
  uv_close((uv_handle_t *)&ls->tcp, listener_closed);
}

static int listen_on(isle__loop_t *l, listen_cmd_t *cmd, listener_t **out) {
  struct isle__tcp_s *tab = l->io->tcp;
  uint32_t slot = 0;
  while (slot < MAX_LISTENERS && tab->listeners[slot])
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
  atomic_init(&ls->xrefs, 1);
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
  ls->self = (uint64_t)++tab->listener_gen[slot] << 32 | (slot + 1);
  tab->listeners[slot] = ls;
  atomic_store_explicit(&tab->xlistening[slot], ls->self, memory_order_relaxed);
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
  struct isle__tcp_s *tab = l->io->tcp;
  uint32_t slot = handle_index(s->conn);
  listener_t *ls = slot < MAX_LISTENERS ? tab->listeners[slot] : NULL;
  if (ls && ls->self == s->conn)
    listener_close(tab, ls);
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
static void shutdowns_check(isle__io_t *io) {
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
  if (!c->owner || !eof_send(l, c))
    conn_close(c, ISLE_ESHUTDOWN);
}

static void close_one(isle__loop_t *l, conn_t *c) {
  (void)l;
  conn_end(c, ISLE_ESHUTDOWN);
}

static void cmd_eof_all(isle__cmd_t *c, isle__loop_t *l) {
  each_conn(l, eof_one);
  isle_free(c);
}

static void cmd_close_all(isle__cmd_t *c, isle__loop_t *l) {
  each_conn(l, close_one);
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
      listener_close(tab, tab->listeners[i]);
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

/* ===== Internal functions ============================================== */

void isle__tcp_quit(isle__loop_t *l) {
  struct isle__tcp_s *tab = l->io->tcp;
  if (!tab)
    return;
  atomic_store_explicit(&tab->xquitting, true, memory_order_relaxed);
  if (!l->worker) { /* the io thread's own */
    shutdowns_done(tab);
    for (uint32_t i = 0; i < MAX_LISTENERS; i++)
      if (tab->listeners[i])
        listener_close(tab, tab->listeners[i]);
  }
  each_conn(l, close_one);
}

void isle__tcp_free(isle__io_t *io) {
  struct isle__tcp_s *tab = io->tcp;
  if (!tab)
    return;
  munmap(tab->conns, sizeof(conn_t) * MAX_CONNS_TOTAL);
  pthread_mutex_destroy(&tab->lock);
  isle_free(tab);
  io->tcp = NULL;
}

/* ===== Public functions ================================================ */

/* The io thread's loop, with the layer attached and the connection
 * table made, for a call from any thread; NULL without memory. */
static isle__loop_t *io_loop(isle_runtime_t *rt) {
  isle__io_t *io = isle__io_get(rt);
  isle__loop_t *l = io ? isle__loop_get(io) : NULL;
  if (!l)
    return NULL;
  pthread_mutex_lock(&io->loop_lock);
  struct isle__tcp_s *tab = tcp_state(io);
  pthread_mutex_unlock(&io->loop_lock);
  return tab ? l : NULL;
}

/* The connection table, if TCP was ever used. */
static struct isle__tcp_s *tcp_peek(isle_runtime_t *rt) {
  isle__io_t *io = isle__io_peek(rt);
  return io ? io->tcp : NULL;
}

/* A handle a writer may use now: its slot's generation still matches. */
static conn_t *conn_check(isle_runtime_t *rt, isle_conn_t h) {
  struct isle__tcp_s *tab = tcp_peek(rt);
  uint32_t i = handle_index(h);
  if (!tab || (uint32_t)h == 0 || i >= MAX_CONNS_TOTAL || handle_gen(h) == 0)
    return NULL;
  conn_t *c = &tab->conns[i];
  /* Acquire: pairs with the release increments of the loops. Odd: open. */
  uint32_t gen = atomic_load_explicit(&c->xgen, memory_order_acquire);
  return gen == handle_gen(h) && (gen & 1) ? c : NULL;
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
/* Runs `c` on loop `l`: at once when the caller is the worker running
 * it (an actor on the connection's own worker: no command queue, no
 * wake-up), else through the loop's queue. */
static void run_on(isle__loop_t *l, isle__cmd_t *c) {
  if (isle__loop_mine(l)) {
    c->run(c, l);
  } else {
    ISLE__CHAOS("io.post"); /* the connection may close before it lands */
    isle__loop_post(l, c);
  }
}

/* Sends a small command about connection or listener `h` to loop `l`. */
static int post_simple(isle__loop_t *l, uint64_t h,
                       void (*run)(isle__cmd_t *, isle__loop_t *),
                       isle_ref_t owner, bool graceful) {
  io_cmd_t *c = isle_malloc(sizeof *c);
  if (!c)
    return ISLE_ENOMEM;
  c->base.run = run;
  c->conn = h;
  c->owner = owner;
  c->graceful = graceful;
  run_on(l, &c->base);
  return 0;
}

/* The loop of a handle conn_check accepted, or NULL when the connection
 * has closed fully since (conn_closed clears it): the handle is then
 * dead. A loop read here stays valid (loops live as long as the runtime);
 * if the slot was reused meanwhile it is the new occupant's, whose loop
 * drops the command (conn_get). Acquire: pairs with the release that
 * published the generation (set after the loop). */
static isle__loop_t *conn_loop(conn_t *c) {
  return atomic_load_explicit(&c->xloop, memory_order_acquire);
}

int isle_tcp_unlisten(isle_runtime_t *rt, isle_listener_t listener) {
  if (!rt || (uint32_t)listener == 0 || handle_index(listener) >= MAX_LISTENERS)
    return ISLE_EINVAL;
  isle__io_t *io = isle__io_peek(rt);
  isle__loop_t *l =
      io ? atomic_load_explicit(&io->xloop, memory_order_acquire) : NULL;
  /* Refused here, as documented: the command alone would answer 0 for a
   * listener closed long ago. Relaxed: advisory, the io thread checks
   * again (a racing unlisten or shutdown may close it first). */
  if (!io || !io->tcp || !l ||
      atomic_load_explicit(&io->tcp->xlistening[handle_index(listener)],
                           memory_order_relaxed) != listener)
    return ISLE_EDEAD;
  ISLE__CHAOS("io.unlisten_check"); /* a shutdown may close it first */
  return post_simple(l, listener, cmd_unlisten, 0, false);
}

int isle_tcp_start(isle_runtime_t *rt, isle_conn_t conn, isle_ref_t owner) {
  if (!rt || isle__ref_check(rt, owner))
    return ISLE_EINVAL;
  conn_t *c = conn_check(rt, conn);
  if (!c)
    return (uint32_t)conn == 0 ? ISLE_EINVAL : ISLE_EDEAD;
  ISLE__CHAOS("io.after_check"); /* the connection may close fully here */
  isle__loop_t *l = conn_loop(c);
  if (!l)
    return ISLE_EDEAD;
  /* A second start was posted and silently dropped by cmd_start: refuse
   * it here. Each accept and close moves the generation on, so an old
   * occupant's value never matches. Relaxed: the exchange alone decides. */
  if (atomic_exchange_explicit(&c->xstarted, handle_gen(conn),
                               memory_order_relaxed) == handle_gen(conn))
    return ISLE_ESTATE;
  return post_simple(l, conn, cmd_start, owner, false);
}

int isle_tcp_write(isle_runtime_t *rt, isle_conn_t conn, isle_msg_t *msg) {
  if (!rt || !msg)
    return ISLE_EINVAL;
  conn_t *c = conn_check(rt, conn);
  if (!c)
    return (uint32_t)conn == 0 ? ISLE_EINVAL : ISLE_EDEAD;
  ISLE__CHAOS("io.after_check"); /* the connection may close fully here */
  isle__loop_t *l = conn_loop(c);
  if (!l)
    return ISLE_EDEAD;
  io_cmd_t *w = isle_malloc(sizeof *w);
  if (!w)
    return ISLE_ENOMEM;
  /* A stale slot (reused since the check) is caught by the loop's own
   * check; its limit is then the new occupant's, which is harmless. A
   * received DATA message can be written back as it is (echo). */
  size_t offset = isle_msg_type(msg) == ISLE_MSG_TCP_DATA &&
                          isle_msg_size(msg) >= DATA_HEADER
                      ? DATA_HEADER
                      : 0;
  size_t size = isle_msg_size(msg) - offset;
  uint64_t max = atomic_load_explicit(&c->xmax_output, memory_order_relaxed);
  for (;;) {
    uint64_t before =
        atomic_fetch_add_explicit(&c->xqueued, size, memory_order_seq_cst);
    ISLE__CHAOS("io.write_queued"); /* completions subtract meanwhile */
    if (before + size <= max || before == 0)
      break; /* accepted (one write may exceed the limit alone) */
    /* Over the limit: take the bytes back and ask for DRAINED. seq_cst,
     * like write_done's subtraction and exchange: either a completion
     * sees the request, or we see the backlog it left. While bytes are
     * in flight, the completion that brings the backlog to half or less
     * sends DRAINED. With none left, none would: take the request back
     * and try again, now on an empty backlog (if the loop took the
     * request first, its DRAINED is on the way and EFULL stands). */
    atomic_fetch_sub_explicit(&c->xqueued, size, memory_order_seq_cst);
    atomic_store_explicit(&c->xwant_drain, 1, memory_order_seq_cst);
    ISLE__CHAOS("io.want_drain"); /* the last completion may pass here */
    if (atomic_load_explicit(&c->xqueued, memory_order_seq_cst) > 0 ||
        !atomic_exchange_explicit(&c->xwant_drain, 0, memory_order_seq_cst)) {
      isle_free(w);
      return ISLE_EFULL;
    }
  }
  w->base.run = cmd_write;
  w->conn = conn;
  w->msg = msg;
  w->offset = offset;
  isle__msg_handed_on(msg); /* the loop's now, also if it is received */
  run_on(l, &w->base);
  return 0;
}

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
  return post_simple(l, conn, cmd_close, 0, graceful);
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
