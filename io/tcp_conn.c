/* isle — MIT licensed. */
/*
 * TCP's connection table (tcp.h: its layout, handles, generations and the
 * three shared atomics): mapped once, created on first use; a slot taken
 * from its free list when a loop adopts an accepted socket and given back
 * when the socket has closed, after the owner's last events. Also what
 * the other TCP files share: the events they send (ACCEPT, EOF, DRAINED,
 * CLOSED) and the small command the public functions post.
 *
 * The free list is under a mutex (a connection opens and closes once;
 * requests never touch it); a slot's other fields belong to the loop its
 * xloop names, from adoption until that loop frees the slot.
 *
 * Threads: isle__tcp_io_loop from any thread, isle__tcp_free at teardown;
 * the rest on the loop thread of the connection they are given.
 */
#define _GNU_SOURCE
#include <sys/mman.h> /* the table: mapped once, pages commit as used */
#include <uv.h>

#include "tcp.h"

/* ===== The table ======================================================= */

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

/* The io thread's loop, with the layer attached and the connection
 * table made, for a call from any thread; NULL without memory. */
isle__loop_t *isle__tcp_io_loop(isle_runtime_t *rt) {
  isle__io_t *io = isle__io_get(rt);
  isle__loop_t *l = io ? isle__loop_get(io) : NULL;
  if (!l)
    return NULL;
  pthread_mutex_lock(&io->loop_lock);
  struct isle__tcp_s *tab = tcp_state(io);
  pthread_mutex_unlock(&io->loop_lock);
  return tab ? l : NULL;
}

/* After the loops stopped: frees the connection table. */
void isle__tcp_free(isle__io_t *io) {
  struct isle__tcp_s *tab = io->tcp;
  if (!tab)
    return;
  munmap(tab->conns, sizeof(conn_t) * MAX_CONNS_TOTAL);
  pthread_mutex_destroy(&tab->lock);
  isle_free(tab);
  io->tcp = NULL;
}

/* ===== Events ========================================================== */

/* Sends an event from loop `l`'s thread; false if `to` would not take it.
 * On a worker's loop the receiver is scheduled on that worker. */
bool isle__tcp_event_send(isle__loop_t *l, isle_ref_t to, uint32_t type,
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

/* ===== Adopting ======================================================== */

/* Makes `tcp` (initialised on loop l, this thread) a connection from
 * listener `ls`, whose reference and runtime hold it takes over, and
 * tells the acceptor. */
void isle__tcp_adopt(isle__loop_t *l, uv_tcp_t *tcp, listener_t *ls) {
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
    uv_close((uv_handle_t *)tcp, isle__tcp_free_closed);
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
  if (!isle__tcp_event_send(l, ls->acceptor, ISLE_MSG_TCP_ACCEPT,
                            conn_handle(tab, c), ls->self, 0))
    isle__tcp_conn_close(c, ISLE_EDEAD);
}

/* ===== Closed ========================================================== */

/* uv_close's callback for a connection's socket (isle__tcp_conn_close):
 * the owner's last events, then the slot back to the free list. */
void isle__tcp_conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  isle__loop_t *l = loop_of(h->loop);
  isle_runtime_t *rt = l->rt;
  struct isle__tcp_s *tab = l->io->tcp;
  if (c->owner &&
      !atomic_load_explicit(&tab->xquitting, memory_order_relaxed)) {
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
      isle__tcp_event_send(l, c->owner, ISLE_MSG_TCP_EOF, c->handle,
                           listener_self(c), 0);
    isle__tcp_event_send(l, c->owner, ISLE_MSG_TCP_CLOSED, c->handle,
                         listener_self(c), c->reason);
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
  /* No longer this loop's: isle__tcp_each_conn here must not read the
   * slot once another loop may take it from the free list (below). */
  atomic_store_explicit(&c->xloop, NULL, memory_order_relaxed);
  ISLE__CHAOS("io.closed"); /* a caller past its check now reads NULL */
  l->conns--;
  pthread_mutex_lock(&tab->lock);
  c->next_free = tab->free_top;
  tab->free_top = (uint32_t)(c - tab->conns) + 1;
  pthread_mutex_unlock(&tab->lock);
  /* The last one: no deadline to wait for. */
  if (atomic_fetch_sub_explicit(&l->io->xtcp_open, 1, memory_order_acq_rel) ==
      1)
    isle__tcp_shutdowns_check(l->io);
  isle_runtime_release(rt);
}

/* For handles in their own heap block. */
void isle__tcp_free_closed(uv_handle_t *h) {
  isle_free(h);
}

/* Calls fn on every connection of loop `l` not closed yet (its thread),
 * graceful closes in progress included. */
void isle__tcp_each_conn(isle__loop_t *l,
                         void (*fn)(isle__loop_t *, conn_t *)) {
  struct isle__tcp_s *tab = l->io->tcp;
  uint32_t used = atomic_load_explicit(&tab->xused, memory_order_acquire);
  for (uint32_t i = 0; i < used; i++) {
    conn_t *c = &tab->conns[i];
    /* A slot names a loop from its adoption until that loop frees it
     * (isle__tcp_conn_closed clears it, on this thread, before the slot
     * goes back to the free list), so one that names this loop is ours to
     * read. */
    if (atomic_load_explicit(&c->xloop, memory_order_acquire) == l && c->tcp &&
        !uv_is_closing((uv_handle_t *)c->tcp))
      fn(l, c);
  }
}

/* ===== Commands ======================================================== */

/* Sends a small command about connection or listener `h` to loop `l`. */
int isle__tcp_post(isle__loop_t *l, uint64_t h,
                   void (*run)(isle__cmd_t *, isle__loop_t *), isle_ref_t owner,
                   bool graceful) {
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
