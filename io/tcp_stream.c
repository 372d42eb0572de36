/* isle — MIT licensed. */
/*
 * A TCP connection's streams (tcp.h: the table and its atomics). Reads go
 * straight into a message (the DATA header is the first 16 bytes of its
 * payload), sent to the owner; a full owner mailbox parks the DATA, pauses
 * reading and a 1 ms timer retries the delivery. An EOF waits for that
 * DATA (a close delivers it: tcp_conn.c). Writes: isle_tcp_write counts
 * the bytes into xqueued against max_output and hands the message to the
 * loop, which writes it (at once when it can) and subtracts; the first
 * completion that brings a refused writer's backlog to half sends DRAINED.
 * The connection's one timer also ends an idle connection (idle_ms).
 *
 * Threads: isle_tcp_start, isle_tcp_write, isle_tcp_data and
 * isle_tcp_event from any thread; the rest on the connection's loop
 * thread.
 */
#define _GNU_SOURCE
#include <uv.h>

#include "tcp.h"

#define RETRY_MS 1

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
      if (!isle__tcp_event_send(l, c->owner, ISLE_MSG_TCP_EOF, c->handle,
                                listener_self(c), 0)) {
        isle__tcp_conn_close(c, ISLE_EDEAD);
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
  isle__tcp_conn_close(c, ISLE_EDEAD);
}

/* Tells the owner EOF, after the parked DATA if there is one (deliver
 * sends it then: an event would pass the full mailbox and overtake the
 * bytes). False if the owner is gone. */
bool isle__tcp_eof_send(isle__loop_t *l, conn_t *c) {
  if (c->parked) {
    c->eof_due = true;
    return true;
  }
  return isle__tcp_event_send(l, c->owner, ISLE_MSG_TCP_EOF, c->handle,
                              listener_self(c), 0);
}

/* Idle for idle_ms, or a graceful close out of time. */
void isle__tcp_on_idle(uv_timer_t *t) {
  conn_t *c = t->data;
  isle__tcp_conn_end(c, ISLE_ESHUTDOWN);
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
      if (!isle__tcp_eof_send(l, c))
        isle__tcp_conn_close(c, ISLE_EDEAD);
    } else {
      isle__tcp_conn_close(c, ISLE_EIO);
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
  uint64_t half =
      atomic_load_explicit(&c->xmax_output, memory_order_relaxed) / 2;
  uint64_t left =
      atomic_fetch_sub_explicit(&c->xqueued, size, memory_order_seq_cst) - size;
  ISLE__CHAOS("io.written"); /* a refused writer sets want_drain here */
  if (!c->tcp || c->closing || !c->owner || left > half ||
      !atomic_exchange_explicit(&c->xwant_drain, 0, memory_order_seq_cst))
    return;
  /* The writer may have seen the backlog we left, filled it up again and
   * only then been refused (want_drain): DRAINED now would be a lie (the
   * chaos build's seed 2 caught an EFULL right after DRAINED). Then bytes
   * are in flight again, and the completion that brings them to half or
   * less sends it: completions of a connection run on its loop's thread
   * one after another, so none runs between this exchange and the store. */
  if (atomic_load_explicit(&c->xqueued, memory_order_seq_cst) > half) {
    atomic_store_explicit(&c->xwant_drain, 1, memory_order_seq_cst);
    return;
  }
  isle__tcp_event_send(l, c->owner, ISLE_MSG_TCP_DRAINED,
                       conn_handle(l->io->tcp, c), listener_self(c), 0);
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
    isle__tcp_conn_close(c, ISLE_EIO);
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
      isle__tcp_conn_close(c, ISLE_EIO); /* the peer reset, say */
  }
  /* Closed meanwhile (or failing): dropped, and the backlog balanced. */
  conn_t *slot = &l->io->tcp->conns[handle_index(w->conn)];
  atomic_fetch_sub_explicit(&slot->xqueued, w->buf.len, memory_order_seq_cst);
  isle_free(w->msg);
  isle_free(w);
}

/* ===== Starting ======================================================== */

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

/* ===== Public functions ================================================ */

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
  return isle__tcp_post(l, conn, cmd_start, owner, false);
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
