/* isle — MIT licensed. */
/*
 * Private declarations of the io layer: I/O and time on libuv, above the
 * actor core. Never installed.
 *
 * Map of the layer
 *   io.c          attaching to a runtime (first use, or isle_io_config),
 *                 the workers' park operations, statistics, teardown
 *   loop.c        libuv loops and the commands other threads post to them
 *   timer.c       timers (on the io thread's loop)
 *   tcp_conn.c    TCP: the connection table, adopting a socket, a closed
 *                 connection's slot (tcp.h: what the TCP files share)
 *   tcp_stream.c  TCP: reads into messages, the write backlog, idling
 *   tcp_close.c   TCP: closing, isle_io_shutdown, teardown
 *   tcp_listen.c  TCP: listeners, accepting, dealing to the workers
 *   supervisor.c  supervisors (here, not in the core: they need timers)
 * The core (actor/) knows this layer only through isle__upper_ops_t and
 * the end-of-actor hooks; everything here may use the core's internals.
 *
 * Who touches what: a loop only on its own thread (others post commands);
 * the layer's state (isle__io_t) is created once and lives until
 * isle_runtime_free, its counters are atomics any thread adds to.
 */
#ifndef ISLE_IO_INTERNAL_H
#define ISLE_IO_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "actor/internal.h"
#include "isle/io.h"

typedef struct isle__io_s isle__io_t;
typedef struct isle__loop_s isle__loop_t;
typedef struct isle__cmd_s isle__cmd_t;

/* The layer's state, one per runtime (isle__upper). */
struct isle__io_s {
  isle_runtime_t *rt;
  isle_io_mode_t mode;
  /* ISLE_IO_WORKERS: one loop per worker, run by that worker between
   * turns and while it sleeps; NULL with ISLE_IO_THREAD. */
  isle__loop_t *worker_loops;
  /* The io thread's loop (timers, listeners; with ISLE_IO_THREAD every
   * connection): started on first use, under loop_lock. */
  pthread_mutex_t loop_lock;
  _Atomic(isle__loop_t *) xloop;
  /* Timers (timer.c): their table under timers_lock, their end hook. */
  pthread_mutex_t timers_lock;
  struct isle__timers_s *timers;
  uint32_t timers_hook;
  /* TCP (tcp_*.c): created on first use, under loop_lock. */
  struct isle__tcp_s *tcp;
  /* Counters (relaxed adds, any thread), read by isle_io_stats. */
  _Atomic uint64_t xtimers_fired;
  _Atomic uint64_t xtimers_dropped;
  _Atomic uint64_t xtcp_accepted;
  _Atomic uint64_t xtcp_refused;
  _Atomic uint64_t xtcp_open;
};

/* ----- io.c ---------------------------------------------------------- */

/* The layer's state of `rt`, attached now with the default configuration
 * if it was not; NULL without memory. Any thread. */
isle__io_t *isle__io_get(isle_runtime_t *rt);
/* The layer's state if it is attached, else NULL (nothing of it exists:
 * no timer, no connection). Any thread. */
static inline isle__io_t *isle__io_peek(isle_runtime_t *rt) {
  return isle__upper(rt);
}

/* ----- loop.c: loops and their commands ------------------------------- */

/* Work for a loop's thread: run(c, loop) runs there and owns c. */
struct isle__cmd_s {
  isle__cmd_t *next;
  void (*run)(isle__cmd_t *c, isle__loop_t *l);
};

/* A libuv loop and its command queue: the io thread's, or (with
 * ISLE_IO_WORKERS) one per worker, run by that worker between turns and
 * while it sleeps. */
struct isle__loop_s {
  isle_runtime_t *rt;
  isle__io_t *io;
  isle__worker_t *worker; /* the worker that runs it; NULL: the io thread */
  uv_loop_t uv;
  uv_async_t wake;
  pthread_t thread;
  pthread_mutex_t lock; /* the command list */
  isle__cmd_t *head, *tail;
  isle__cmd_t quit; /* posted by isle__loop_free: stopping cannot fail */
  unsigned conns;   /* open connections on it (its thread only) */
};

/* Sets up `l` for `w` (NULL: the io thread). 0 or ISLE_ENOMEM. */
int isle__loop_init(isle__loop_t *l, isle__io_t *io, isle__worker_t *w);
/* The io thread's loop, started on first use; NULL without memory or
 * threads. */
isle__loop_t *isle__loop_get(isle__io_t *io);
/* Queues `c` for the loop's thread and wakes it. Any thread. */
void isle__loop_post(isle__loop_t *l, isle__cmd_t *c);
/* Whether the calling thread is the worker that runs `l` (false for the
 * io thread's loop). */
bool isle__loop_mine(const isle__loop_t *l);
/* Stops the io thread (teardown). */
void isle__loop_free(isle__io_t *io);
/* Closes a worker's loop and what is open on it; the calling thread runs
 * it (teardown, no worker running). */
void isle__loop_close_worker(isle__loop_t *l);
/* The runtime's park operations for ISLE_IO_WORKERS (isle__upper_ops_t):
 * a worker polls and sleeps in its own loop. */
bool isle__loop_poll(isle__worker_t *w);
void isle__loop_sleep(isle__worker_t *w);
void isle__loop_wake(isle__worker_t *w);

/* ----- timer.c ---------------------------------------------------------- */

/* Registers the timers' end hook (attaching). 0 or ISLE_ENOMEM. */
int isle__timers_init(isle__io_t *io);
/* On the io thread, stopping: drops every timer (counted). */
void isle__timers_quit(isle__loop_t *l);
/* After the io thread stopped: frees the timer table. */
void isle__timers_free(isle__io_t *io);

/* ----- tcp_close.c ------------------------------------------------------ */

/* On the loop's thread, stopping: closes its listeners and connections. */
void isle__tcp_quit(isle__loop_t *l);

/* ----- tcp_conn.c ------------------------------------------------------- */

/* After the loops stopped: frees the connection table. */
void isle__tcp_free(isle__io_t *io);

#endif /* ISLE_IO_INTERNAL_H */
