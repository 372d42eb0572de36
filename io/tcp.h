/* isle — MIT licensed. */
/*
 * The TCP files' private header: the connection table and its types, the
 * handle and generation helpers each file inlines, and what one file
 * defines for the others (declared after the types, by defining file).
 * Never installed.
 *
 * The TCP files, one job each:
 *   tcp_conn.c    the connection table: making it, adopting a socket into
 *                 a slot, a closed connection's last events and its slot's
 *                 return to the free list; the events the others send
 *   tcp_stream.c  reading into messages (parked DATA, the retry timer),
 *                 the write backlog and DRAINED, the idle timer;
 *                 isle_tcp_start, isle_tcp_write, isle_tcp_data/_event
 *   tcp_close.c   hard, reset and graceful closes and the graceful close's
 *                 bound; isle_io_shutdown and its deadlines; teardown
 *                 (isle__tcp_quit); isle_tcp_close
 *   tcp_listen.c  listeners, accepting, dealing sockets to the workers'
 *                 loops; isle_tcp_listen, isle_tcp_unlisten
 *
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
#ifndef ISLE_IO_TCP_H
#define ISLE_IO_TCP_H

#include <uv.h>

#include "internal.h"
#include "isle/heap.h"
#include "isle/io.h"

#define MAX_CONNS_TOTAL (UINT32_C(1) << 20) /* table size, virtual */
#define MAX_LISTENERS 64
#define DATA_HEADER 16 /* conn handle, padded to keep payload alignment */
#define DEFAULT_READ (16 * 1024)

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
   * shutdown request is pending. A hard close (isle__tcp_conn_close) ends
   * either: uv_is_closing(tcp) from then on. eof_due: an EOF waits for the
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

/* ===== Functions one file defines for the others ======================= */

/* ----- tcp_conn.c ------------------------------------------------------ */

/* The io thread's loop, with the layer attached and the connection table
 * made, for a call from any thread; NULL without memory. */
isle__loop_t *isle__tcp_io_loop(isle_runtime_t *rt);
/* Sends an event from loop `l`'s thread; false if `to` would not take it. */
bool isle__tcp_event_send(isle__loop_t *l, isle_ref_t to, uint32_t type,
                          isle_conn_t conn, isle_listener_t ls, int reason);
/* Makes accepted socket `tcp` a connection of loop `l` (its thread). */
void isle__tcp_adopt(isle__loop_t *l, uv_tcp_t *tcp, listener_t *ls);
/* A connection's socket has closed: its last events, its slot freed. */
void isle__tcp_conn_closed(uv_handle_t *h);
/* uv_close's callback for handles in their own heap block. */
void isle__tcp_free_closed(uv_handle_t *h);
/* Calls fn on every connection of loop `l` not closed yet (its thread). */
void isle__tcp_each_conn(isle__loop_t *l, void (*fn)(isle__loop_t *, conn_t *));
/* Runs a small command about connection or listener `h` on loop `l`. */
int isle__tcp_post(isle__loop_t *l, uint64_t h,
                   void (*run)(isle__cmd_t *, isle__loop_t *), isle_ref_t owner,
                   bool graceful);

/* ----- tcp_stream.c ---------------------------------------------------- */

/* Tells the owner EOF (after parked DATA); false if the owner is gone. */
bool isle__tcp_eof_send(isle__loop_t *l, conn_t *c);
/* The connection's timer ran out: idle, or a graceful close's bound. */
void isle__tcp_on_idle(uv_timer_t *t);

/* ----- tcp_close.c ----------------------------------------------------- */

/* Closes now, once (ends a graceful close in progress too). */
void isle__tcp_conn_close(conn_t *c, int reason);
/* Ends the connection for lack of time or at teardown: a graceful close
 * in progress, or output still queued, ends with a reset. */
void isle__tcp_conn_end(conn_t *c, int reason);
/* The last connection closed (any loop): end the deadlines early. */
void isle__tcp_shutdowns_check(isle__io_t *io);

/* ----- tcp_listen.c ---------------------------------------------------- */

/* Closes listener `ls` (the io thread), once. */
void isle__tcp_listener_close(struct isle__tcp_s *tab, listener_t *ls);

/* ===== Handles and generations ========================================= */

static inline uint32_t handle_index(uint64_t h) {
  return (uint32_t)h - 1;
}
static inline uint32_t handle_gen(uint64_t h) {
  return (uint32_t)(h >> 32);
}

/* A slot's generation is odd while a connection is open in it, even
 * otherwise; only the loop thread that owns the slot writes it (a slot
 * changes hands under the free-list lock). Release: a writer that reads
 * the new value sees what was set up before. */
static inline void gen_open(conn_t *c) {
  uint32_t g = atomic_load_explicit(&c->xgen, memory_order_relaxed);
  atomic_store_explicit(&c->xgen, g + ((g & 1) ? 2 : 1), memory_order_release);
}

/* Closing (once, even if a graceful close ends in a plain one). */
static inline void gen_close(conn_t *c) {
  uint32_t g = atomic_load_explicit(&c->xgen, memory_order_relaxed);
  if (g & 1)
    atomic_store_explicit(&c->xgen, g + 1, memory_order_release);
}

/* The live connection `h` on this thread's loop, or NULL. A matching odd
 * generation means the occupant the handle names, open: its loop is the
 * calling one (commands go to the handle's loop). */
static inline conn_t *conn_get(struct isle__tcp_s *tab, isle_conn_t h) {
  uint32_t i = handle_index(h);
  if ((uint32_t)h == 0 || i >= MAX_CONNS_TOTAL)
    return NULL;
  conn_t *c = &tab->conns[i];
  if (atomic_load_explicit(&c->xgen, memory_order_acquire) != handle_gen(h) ||
      !c->tcp)
    return NULL;
  return c;
}

static inline isle_conn_t conn_handle(struct isle__tcp_s *tab, conn_t *c) {
  return (uint64_t)atomic_load_explicit(&c->xgen, memory_order_relaxed) << 32 |
         ((uint64_t)(c - tab->conns) + 1);
}

/* The connection table, if TCP was ever used. */
static inline struct isle__tcp_s *tcp_peek(isle_runtime_t *rt) {
  isle__io_t *io = isle__io_peek(rt);
  return io ? io->tcp : NULL;
}

/* A handle a writer may use now: its slot's generation still matches. */
static inline conn_t *conn_check(isle_runtime_t *rt, isle_conn_t h) {
  struct isle__tcp_s *tab = tcp_peek(rt);
  uint32_t i = handle_index(h);
  if (!tab || (uint32_t)h == 0 || i >= MAX_CONNS_TOTAL || handle_gen(h) == 0)
    return NULL;
  conn_t *c = &tab->conns[i];
  /* Acquire: pairs with the release increments of the loops. Odd: open. */
  uint32_t gen = atomic_load_explicit(&c->xgen, memory_order_acquire);
  return gen == handle_gen(h) && (gen & 1) ? c : NULL;
}

/* The loop of a handle conn_check accepted, or NULL when the connection
 * has closed fully since (isle__tcp_conn_closed clears it): the handle is
 * then dead. A loop read here stays valid (loops live as long as the runtime);
 * if the slot was reused meanwhile it is the new occupant's, whose loop
 * drops the command (conn_get). Acquire: pairs with the release that
 * published the generation (set after the loop). */
static inline isle__loop_t *conn_loop(conn_t *c) {
  return atomic_load_explicit(&c->xloop, memory_order_acquire);
}

/* ===== Helpers ========================================================= */

static inline isle__loop_t *loop_of(uv_loop_t *uv) {
  return uv->data;
}

static inline isle_runtime_t *loop_rt(uv_loop_t *uv) {
  return loop_of(uv)->rt;
}

static inline void listener_unref(listener_t *ls) {
  if (atomic_fetch_sub_explicit(&ls->xrefs, 1, memory_order_acq_rel) == 1)
    isle_free(ls);
}

static inline isle_listener_t listener_self(const conn_t *c) {
  return c->listener ? c->listener->self : 0;
}

/* Runs `c` on loop `l`: at once when the caller is the worker running
 * it (an actor on the connection's own worker: no command queue, no
 * wake-up), else through the loop's queue. */
static inline void run_on(isle__loop_t *l, isle__cmd_t *c) {
  if (isle__loop_mine(l)) {
    c->run(c, l);
  } else {
    ISLE__CHAOS("io.post"); /* the connection may close before it lands */
    isle__loop_post(l, c);
  }
}

/* Starts the connection's timer for `ms` of idleness from now. libuv
 * counts from the loop's cached time, which is as old as this loop
 * round: a thread preempted in between (or a turn calling straight in)
 * would make the close come early by that much. */
static inline void idle_arm(uv_timer_t *t, uint64_t ms) {
  uv_update_time(t->loop);
  uv_timer_start(t, isle__tcp_on_idle, ms, 0);
}

#endif /* ISLE_IO_TCP_H */
