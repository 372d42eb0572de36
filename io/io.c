/* isle — MIT licensed. */
/*
 * The io layer as a whole: attaching it to a runtime, its configuration,
 * its statistics and its teardown.
 *
 * A runtime that never uses I/O or time has none of this: no loop, no
 * thread, its workers sleep on futexes. The first timer, listener or
 * isle_io_config attaches the layer (isle__upper_attach): with
 * ISLE_IO_WORKERS (the default) a libuv loop per worker, in which that
 * worker then sleeps, so its connections' events wake it; the io
 * thread's loop (timers, listeners) starts when first needed.
 *
 * Threads: any; the teardown on the thread freeing the runtime.
 */
#include <string.h>

#include "internal.h"
#include "isle/heap.h"

/* The public structs keep their size across 0.x releases that add fields
 * (they take from reserved_, docs/guide.md, ABI): a field added without
 * taking from it changes the size and fails here. LP64 sizes. */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(isle_io_config_t) == 64,
               "isle_io_config_t: keep the size, take from reserved_");
_Static_assert(sizeof(isle_io_stats_t) == 128,
               "isle_io_stats_t: keep the size, take from reserved_");
_Static_assert(sizeof(isle_tcp_opts_t) == 128,
               "isle_tcp_opts_t: keep the size, take from reserved_");
_Static_assert(sizeof(isle_sup_spec_t) == 64,
               "isle_sup_spec_t: keep the size, take from reserved_");
_Static_assert(sizeof(isle_child_spec_t) == 64,
               "isle_child_spec_t: keep the size, take from reserved_");
#endif

/* isle_runtime_free: the io thread first (no timer or connection
 * delivers into what ends next), then the workers' loops, then tables. */
static void io_free(isle_runtime_t *rt, void *state) {
  (void)rt;
  isle__io_t *io = state;
  isle__loop_free(io);
  for (unsigned i = 0; io->worker_loops && i < io->rt->nworkers; i++)
    isle__loop_close_worker(&io->worker_loops[i]);
  isle_free(io->worker_loops);
  isle__timers_free(io);
  isle__tcp_free(io);
  pthread_mutex_destroy(&io->loop_lock);
  pthread_mutex_destroy(&io->timers_lock);
  isle_free(io);
}

/* ISLE_IO_WORKERS: workers poll and sleep in their own loops. */
static const isle__upper_ops_t workers_ops = {
    .poll = isle__loop_poll,
    .sleep = isle__loop_sleep,
    .wake = isle__loop_wake,
    .free = io_free,
};
/* ISLE_IO_THREAD: the io thread runs everything; workers keep their
 * futexes. */
static const isle__upper_ops_t thread_ops = {.free = io_free};

/* Creates the state for mode *(isle_io_mode_t *)arg (under the attach
 * lock). */
static void *io_create(isle_runtime_t *rt, void *arg) {
  isle__io_t *io = isle_aligned_alloc(ISLE__CACHE, sizeof *io);
  if (!io)
    return NULL;
  memset(io, 0, sizeof *io);
  io->rt = rt;
  io->mode = *(isle_io_mode_t *)arg;
  pthread_mutex_init(&io->loop_lock, NULL);
  pthread_mutex_init(&io->timers_lock, NULL);
  unsigned loops = 0;
  bool ok = true;
  if (io->mode == ISLE_IO_WORKERS) {
    io->worker_loops = isle_aligned_alloc(
        ISLE__CACHE, sizeof *io->worker_loops * rt->nworkers);
    for (; io->worker_loops && loops < rt->nworkers; loops++)
      if (isle__loop_init(&io->worker_loops[loops], io, &rt->workers[loops]) !=
          0)
        break;
    ok = loops == rt->nworkers;
  }
  /* Last: a hook cannot be taken back, so it is added only once nothing
   * else can fail (a failed attach leaves no hook behind). */
  ok = ok && isle__timers_init(io) == 0;
  if (!ok) {
    for (unsigned i = 0; i < loops; i++)
      isle__loop_close_worker(&io->worker_loops[i]);
    isle_free(io->worker_loops);
    pthread_mutex_destroy(&io->loop_lock);
    pthread_mutex_destroy(&io->timers_lock);
    isle_free(io);
    return NULL;
  }
  return io;
}

static isle__io_t *attach(isle_runtime_t *rt, isle_io_mode_t mode) {
  return isle__upper_attach(rt, io_create, &mode,
                            mode == ISLE_IO_WORKERS ? &workers_ops
                                                    : &thread_ops);
}

isle__io_t *isle__io_get(isle_runtime_t *rt) {
  isle__io_t *io = isle__io_peek(rt);
  return io ? io : attach(rt, ISLE_IO_WORKERS);
}

/* ===== Public functions ================================================ */

void isle_io_config_init(isle_io_config_t *cfg) {
  if (cfg)
    memset(cfg, 0, sizeof *cfg);
}

int isle_io_config(isle_runtime_t *rt, const isle_io_config_t *cfg) {
  if (!rt)
    return ISLE_EINVAL;
  isle_io_mode_t mode = cfg ? cfg->mode : ISLE_IO_DEFAULT;
  if ((unsigned)mode > ISLE_IO_THREAD)
    return ISLE_EINVAL;
  if (mode == ISLE_IO_DEFAULT)
    mode = ISLE_IO_WORKERS;
  isle__io_t *io = isle__io_peek(rt);
  if (!io && !(io = attach(rt, mode)))
    return isle__upper_closed(rt) ? ISLE_ESTATE : ISLE_ENOMEM;
  /* Attached before, by a first use or another call: the same mode is
   * fine, another cannot be had any more. */
  return io->mode == mode ? 0 : ISLE_ESTATE;
}

int isle_io_stats(isle_runtime_t *rt, isle_io_stats_t *out) {
  if (!rt || !out)
    return ISLE_EINVAL;
  memset(out, 0, sizeof *out);
  isle__io_t *io = isle__io_peek(rt);
  if (!io)
    return 0;
  out->mode = io->mode;
  out->timers_fired =
      atomic_load_explicit(&io->xtimers_fired, memory_order_relaxed);
  out->timers_dropped =
      atomic_load_explicit(&io->xtimers_dropped, memory_order_relaxed);
  out->tcp_accepted =
      atomic_load_explicit(&io->xtcp_accepted, memory_order_relaxed);
  out->tcp_refused =
      atomic_load_explicit(&io->xtcp_refused, memory_order_relaxed);
  out->tcp_open = atomic_load_explicit(&io->xtcp_open, memory_order_relaxed);
  return 0;
}
