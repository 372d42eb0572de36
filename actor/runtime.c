/* isle — MIT licensed. */
/*
 * The runtime: configuration, workers, parking, quiescence, stopping, the
 * stall monitor, statistics.
 *
 * A worker loops: take the next actor (sched.c), run its turn (actor.c).
 * With nothing to do it spins briefly (pause), hands its heap's pending
 * remote frees back (isle_heap_collect), then sleeps on a futex until a
 * thread queues work it could take. An idle runtime therefore burns no CPU.
 *
 * Quiescence: the worker that parks last ends the run when, in this order,
 * it reads the holds word H1 with no hold taken, finds every ring, the
 * global queue and every worker's runnext empty, finds every worker still
 * parked and, last, reads the holds word H2 equal to H1. Why that is enough: an
 * actor with a message is in a queue, in a runnext, muted (its worker
 * does not park) or running (its worker is not parked). Work can appear
 * while the workers park only from a thread that is not running a turn:
 * an outside thread, a timer, or an I/O callback that runs inside a
 * parked worker's uv_run. Each of those sends under a hold and releases
 * it after the send. If such a hold is taken after H1 is read, H2
 * differs (the word counts holds ever taken: a hold taken and released in
 * between still changes it). If its release came before H1 (H1 reads it,
 * all seq_cst), the send happened before H1, and the scan sees its actor
 * queued, or taken by a worker that unparked first, which the last look
 * at the parked count sees (runnext is cleared with a release store, so
 * a scan that reads the NULL sees that unparking). tests/models/
 * quiescence.pml checks this protocol with SPIN.
 *
 * Threads: isle_runtime_* from any thread; workers and the monitor are the
 * runtime's own. isle_runtime_stop only stores to atomics and calls futex
 * wake, both async-signal-safe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h> /* CPU_SET for pinning */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h> /* the slot table */
#include <unistd.h>

#include "internal.h"
#include "isle/heap.h"

/* The public structs keep their size across 0.x releases that add fields
 * (they take from reserved_, docs/guide.md, ABI): a field added without
 * taking from it changes the size and fails here. LP64 sizes. */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(isle_actor_type_t) == 64,
               "isle_actor_type_t: keep the size, take from reserved_");
_Static_assert(sizeof(isle_runtime_config_t) == 128,
               "isle_runtime_config_t: keep the size, take from reserved_");
_Static_assert(sizeof(isle_runtime_stats_t) == 256,
               "isle_runtime_stats_t: keep the size, take from reserved_");
#endif

#define SPINS 2000 /* looks for work before sleeping (~tens of µs) */
/* ... with connections open: epoll, not a peer, is where work comes from */
#define IO_SPINS 64

/* ===== Workers ========================================================= */

_Thread_local isle__worker_t *isle__tls_worker;

/* The layer above's operations, NULL until it is attached. Acquire:
 * pairs with the release store in isle__upper_attach, so the state its
 * operations use is seen. */
static const isle__upper_ops_t *upper_ops(isle_runtime_t *rt) {
  return atomic_load_explicit(&rt->xupper_ops, memory_order_acquire);
}

/* Runs the ready events of the layer above (I/O callbacks: reads become
 * messages to their owners, scheduled on this worker) without blocking;
 * whether w has event sources. */
static bool poll_upper(isle__worker_t *w, const isle__upper_ops_t *ops) {
  ISLE__CHAOS("park.poll_io");
  return ops && ops->poll && ops->poll(w);
}

/* One more hold, and one more ever taken. */
#define HOLD_ONE (UINT64_C(1) | UINT64_C(1) << 32)
#define HOLD_COUNT(v) ((uint32_t)(v))

/* Whether the run is over, for the worker that parked last (see
 * quiescence above; every load seq_cst, as are the holds' RMWs). */
static bool run_quiescent(isle_runtime_t *rt) {
  uint64_t h1 = atomic_load_explicit(&rt->xholds, memory_order_seq_cst);
  if (HOLD_COUNT(h1))
    return false;
  ISLE__CHAOS("park.after_holds");
  if (isle__sched_any_work(rt, true))
    return false;
  ISLE__CHAOS("park.after_scan");
  if (atomic_load_explicit(&rt->xnparked, memory_order_seq_cst) != rt->nworkers)
    return false;
  ISLE__CHAOS("park.after_recount");
  /* Last: a hold taken by a turn that ran between H1 and here changes it
   * (tests/models/quiescence.pml, H2 before the recount, is the bad case). */
  return atomic_load_explicit(&rt->xholds, memory_order_seq_cst) == h1;
}

/* Sleeps until woken; returns false when the run is over. */
static bool worker_park(isle__worker_t *w, bool events) {
  isle_runtime_t *rt = w->rt;
  unsigned spins = events ? IO_SPINS : SPINS;
  for (unsigned i = 0; i < spins; i++) {
    if (atomic_load_explicit(&rt->xdone, memory_order_acquire))
      return false;
    if (isle__sched_any_work(rt, false))
      return true;
    if (events && i % 64 == 63) {
      poll_upper(w, upper_ops(rt));
      if (isle__sched_has_runnext(w) || isle__sched_any_work(rt, false))
        return true;
    }
    isle__cpu_relax();
  }
  /* Before sleeping, hand back the blocks this worker freed for others. */
  isle_heap_collect();
  atomic_store_explicit(&w->xsleep, 1, memory_order_seq_cst);
  uint32_t parked =
      atomic_fetch_add_explicit(&rt->xnparked, 1, memory_order_seq_cst) + 1;
  ISLE__CHAOS("park.announced");
  /* Look once more, after announcing (see the waking argument, sched.c). */
  bool work = isle__sched_any_work(rt, false);
  if (!work && parked == rt->nworkers && run_quiescent(rt)) {
    /* Quiescent: end the run. */
    atomic_store_explicit(&rt->xdone, 1, memory_order_seq_cst);
    isle__futex_wake(&rt->xdone, INT32_MAX);
    isle__wake_all(rt);
  } else if (!work && !atomic_load_explicit(&rt->xdone, memory_order_seq_cst)) {
    isle__owner_add(&w->xparks, 1);
    /* seq_cst, after the store of xsleep: a waker clears xsleep, then
     * loads the operations (isle__worker_wake), and the attaching thread
     * stores them, then wakes every sleeper (isle__upper_attach). So
     * either this worker sees no operations and sleeps on its futex,
     * which every waker wakes, or it sees them, and then a waker that
     * cleared xsleep after the load below sees them too and wakes the
     * layer's sleep; one that cleared it before is seen below. */
    const isle__upper_ops_t *ops =
        atomic_load_explicit(&rt->xupper_ops, memory_order_seq_cst);
    if (ops && ops->sleep) {
      /* Sleep in the layer above (epoll): its events wake the worker as
       * well as a waker. One round: an I/O callback may have made an
       * actor runnable here. */
      ISLE__CHAOS("park.uv_run");
      if (atomic_load_explicit(&w->xsleep, memory_order_seq_cst))
        ops->sleep(w);
      ISLE__CHAOS("park.uv_run_done");
    } else {
      while (atomic_load_explicit(&w->xsleep, memory_order_seq_cst) &&
             !atomic_load_explicit(&rt->xdone, memory_order_seq_cst))
        isle__futex_wait(&w->xsleep, 1, 0);
    }
  }
  atomic_store_explicit(&w->xsleep, 0, memory_order_relaxed);
  atomic_fetch_sub_explicit(&rt->xnparked, 1, memory_order_seq_cst);
  return !atomic_load_explicit(&rt->xdone, memory_order_acquire);
}

static void *worker_main(void *arg) {
  isle__worker_t *w = arg;
  isle_runtime_t *rt = w->rt;
  char name[16];
  snprintf(name, sizeof name, "worker-%u", w->index);
  isle_heap_set_thread_name(name);
  pthread_setname_np(pthread_self(), name);
  isle__tls_worker = w;
  if (rt->cfg.pin_workers) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->index % (unsigned)(ncpu > 0 ? ncpu : 1), &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  }
  while (!atomic_load_explicit(&rt->xdone, memory_order_acquire)) {
    if (atomic_load_explicit(&rt->xstop, memory_order_acquire))
      break;
    isle__actor_t *a = isle__sched_next(w);
    const isle__upper_ops_t *ops = upper_ops(rt);
    if (a) {
      isle__actor_turn(w, a);
      /* I/O gets a look every 32 turns, so a busy worker still serves
       * its connections. */
      if (ops && ++w->io_tick % 32 == 0)
        poll_upper(w, ops);
    } else {
      bool events = poll_upper(w, ops);
      if (isle__sched_has_runnext(w) || isle__sched_any_work(rt, false))
        continue;
      if (w->nmuted) {
        /* Muted actors wait for receivers elsewhere: no sleeping. */
        isle__cpu_relax();
        continue;
      }
      if (!worker_park(w, events))
        break;
    }
  }
  /* An actor left in runnext when stopping stays scheduled: hand it to the
   * global queue so a later run finds it. */
  isle__actor_t *next = isle__sched_take_runnext(w);
  if (next)
    isle__sched_global(rt, next);
  isle__mute_release(w, true); /* muted ones too */
  isle__tls_worker = NULL;
  isle_heap_collect();
  return NULL;
}

/* ===== The stall monitor =============================================== */

static void report_stall(isle_runtime_t *rt, const char *type, unsigned worker,
                         uint64_t ms) {
  atomic_fetch_add_explicit(&rt->xstalls, 1, memory_order_relaxed);
  if (rt->cfg.on_stall)
    rt->cfg.on_stall(type, worker, ms, rt->cfg.stall_arg);
  else
    fprintf(
        stderr,
        "isle: worker %u: a receive of actor type '%s' has run for %llu ms\n",
        worker, type, (unsigned long long)ms);
}

/* Samples each worker's turn counter every quarter of the stall time; a
 * worker in a turn whose counter has not moved for the whole stall time is
 * stalled. Costs the workers nothing beyond two stores per turn. */
static void *monitor_main(void *arg) {
  isle_runtime_t *rt = arg;
  uint32_t step = rt->cfg.stall_ms / 4 ? rt->cfg.stall_ms / 4 : 1;
  uint64_t seen[ISLE__MAX_WORKERS];
  uint32_t still[ISLE__MAX_WORKERS];
  uint64_t reported[ISLE__MAX_WORKERS];
  for (unsigned i = 0; i < rt->nworkers; i++) {
    seen[i] = 0;
    still[i] = 0;
    reported[i] = UINT64_MAX;
  }
  while (!atomic_load_explicit(&rt->xdone, memory_order_acquire)) {
    isle__futex_wait(&rt->xdone, 0, step);
    for (unsigned i = 0; i < rt->nworkers; i++) {
      isle__worker_t *w = &rt->workers[i];
      uint64_t seq = atomic_load_explicit(&w->xturn_seq, memory_order_relaxed);
      const char *type =
          atomic_load_explicit(&w->xturn_type, memory_order_relaxed);
      if (!type || seq != seen[i]) {
        seen[i] = seq;
        still[i] = 0;
        continue;
      }
      uint64_t ms = (uint64_t)++still[i] * step;
      if (ms >= rt->cfg.stall_ms && reported[i] != seq) {
        reported[i] = seq;
        report_stall(rt, type, i, ms);
      }
    }
  }
  return NULL;
}

/* ===== Public functions ================================================ */

void isle_runtime_config_init(isle_runtime_config_t *cfg) {
  if (cfg)
    memset(cfg, 0, sizeof *cfg);
}

/* Frees what isle_runtime_new made before failing: the slot table, the
 * workers. */
static void new_undo(isle_runtime_t *rt) {
  munmap(rt->slots, sizeof(isle__slot_t) * (size_t)rt->cfg.max_actors);
  isle_free(rt->workers);
  isle_free(rt);
}

int isle_runtime_new(const isle_runtime_config_t *cfg, isle_runtime_t **out) {
  if (!out)
    return ISLE_EINVAL;
  isle_runtime_config_t c;
  isle_runtime_config_init(&c);
  if (cfg)
    c = *cfg;
  if (c.workers > ISLE__MAX_WORKERS || c.max_actors > (UINT32_C(1) << 30))
    return ISLE_EINVAL;
  if (c.workers == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c.workers =
        n > 0 ? (unsigned)(n < ISLE__MAX_WORKERS ? n : ISLE__MAX_WORKERS) : 1;
  }
  if (c.batch == 0)
    c.batch = ISLE__DEFAULT_BATCH;
  if (c.stall_ms == 0)
    c.stall_ms = 1000;
  if (c.max_actors == 0)
    c.max_actors = ISLE__DEFAULT_MAX_ACTORS;
  if (c.heap_limit)
    isle_heap_set_limit(c.heap_limit);

  isle_runtime_t *rt = isle_aligned_alloc(ISLE__CACHE, sizeof *rt);
  if (!rt)
    return ISLE_ENOMEM;
  memset(rt, 0, sizeof *rt);
  rt->cfg = c;
  rt->nworkers = c.workers;
  /* The workers, then each worker's watches of the others (thieves). */
  size_t workers_size = sizeof *rt->workers * c.workers;
  size_t watches_size = sizeof(isle__watch_t) * c.workers * c.workers;
  rt->workers = isle_aligned_alloc(ISLE__CACHE, workers_size + watches_size);
  size_t table = sizeof(isle__slot_t) * (size_t)c.max_actors;
  void *slots = mmap(NULL, table, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (!rt->workers || slots == MAP_FAILED) {
    if (slots != MAP_FAILED)
      munmap(slots, table);
    isle_free(rt->workers);
    isle_free(rt);
    return ISLE_ENOMEM;
  }
  rt->slots = slots;
  /* Past the first 2 MiB (32,768 slots), transparent huge pages: a large
   * table takes a fault per 2 MiB, not per 4 KiB, while a small runtime
   * touches only the first 2 MiB, which stays in small pages, so it
   * commits no more. Advice only.
   * Figures: docs/decisions/0009-slot-table-on-huge-pages.md. */
  size_t huge = (size_t)2 << 20;
  if (table > 2 * huge)
    madvise((char *)slots + huge, table - huge, MADV_HUGEPAGE);
  memset(rt->workers, 0, workers_size + watches_size);
  isle__watch_t *watches = (isle__watch_t *)(rt->workers + c.workers);
  for (unsigned i = 0; i < c.workers; i++) {
    isle__worker_t *w = &rt->workers[i];
    w->watch = watches + (size_t)i * c.workers;
    w->rt = rt;
    w->index = i;
    w->rng = 0x9e3779b97f4a7c15u * (i + 1);
    w->ctx.rt = rt;
    w->ctx.worker = w;
  }
  if (c.profile_path && !isle_profile_running()) {
    int rc = isle_profile_start(
        c.profile_path, c.profile_interval_ms ? c.profile_interval_ms : 10);
    if (rc) {
      new_undo(rt);
      return rc;
    }
    rt->profiling = true;
  }
  pthread_mutex_init(&rt->global_lock, NULL);
  pthread_mutex_init(&rt->names_lock, NULL);
  pthread_mutex_init(&rt->upper_lock, NULL);
  pthread_mutex_init(&rt->hooks_lock, NULL);
  isle__names_init(rt);
  *out = rt;
  return 0;
}

int isle_runtime_run(isle_runtime_t *rt) {
  if (!rt)
    return ISLE_EINVAL;
  uint32_t idle = 0;
  if (!atomic_compare_exchange_strong(&rt->xrunning, &idle, 1))
    return ISLE_ESTATE;
  /* A stop asked for before the run ends it at once (and is used up). */
  if (atomic_exchange(&rt->xstop, 0)) {
    atomic_store(&rt->xrunning, 0);
    return 0;
  }
  atomic_store(&rt->xdone, 0);
  atomic_store(&rt->xnparked, 0);
  unsigned started = 0;
  int rc = 0;
  for (; started < rt->nworkers; started++) {
    isle__worker_t *w = &rt->workers[started];
    atomic_store(&w->xsleep, 0);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
      rc = ISLE_ENOMEM;
      break;
    }
  }
  rt->monitor_started =
      rc == 0 && rt->cfg.stall_ms != UINT32_MAX &&
      pthread_create(&rt->monitor, NULL, monitor_main, rt) == 0;
  if (rc)
    atomic_store(&rt->xdone, 1);
  while (!atomic_load(&rt->xdone)) {
    if (atomic_load(&rt->xstop)) {
      atomic_store(&rt->xdone, 1);
      break;
    }
    isle__futex_wait(&rt->xdone, 0, 0);
  }
  isle__wake_all(rt);
  for (unsigned i = 0; i < started; i++)
    pthread_join(rt->workers[i].thread, NULL);
  if (rt->monitor_started) {
    isle__futex_wake(&rt->xdone, INT32_MAX);
    pthread_join(rt->monitor, NULL);
    rt->monitor_started = false;
  }
  atomic_store(&rt->xstop, 0);
  atomic_store(&rt->xrunning, 0);
  return rc;
}

void isle_runtime_stop(isle_runtime_t *rt) {
  if (!rt)
    return;
  atomic_store(&rt->xstop, 1);
  if (atomic_load(&rt->xrunning)) {
    atomic_store(&rt->xdone, 1);
    isle__futex_wake(&rt->xdone, INT32_MAX);
    isle__wake_all(rt);
  }
}

void isle_runtime_hold(isle_runtime_t *rt) {
  if (rt)
    atomic_fetch_add_explicit(&rt->xholds, HOLD_ONE, memory_order_seq_cst);
}

int isle_runtime_release(isle_runtime_t *rt) {
  if (!rt)
    return ISLE_EINVAL;
  uint64_t v = atomic_load_explicit(&rt->xholds, memory_order_relaxed);
  do {
    if (!HOLD_COUNT(v))
      return ISLE_ESTATE; /* no hold to release: refused, not wrapped */
    ISLE__CHAOS("release.before");
  } while (!atomic_compare_exchange_weak_explicit(
      &rt->xholds, &v, v - 1, memory_order_seq_cst, memory_order_relaxed));
  if (HOLD_COUNT(v) == 1) {
    /* The last hold: let a sleeping worker look for quiescence again. */
    isle__worker_t *w = NULL;
    for (unsigned i = 0; i < rt->nworkers && !w; i++)
      if (atomic_load(&rt->workers[i].xsleep))
        w = &rt->workers[i];
    if (w) {
      atomic_store(&w->xsleep, 0);
      isle__worker_wake(w);
    }
  }
  return 0;
}

int isle_runtime_free(isle_runtime_t *rt) {
  if (!rt)
    return 0;
  if (atomic_load(&rt->xrunning))
    return ISLE_EBUSY;
  /* The layer above first: no timer or connection delivers into what
   * ends next. Its end hooks then find no state (isle__upper: NULL), and
   * a finalize that starts a timer cannot attach a new one. */
  pthread_mutex_lock(&rt->upper_lock);
  rt->freeing = true;
  pthread_mutex_unlock(&rt->upper_lock);
  void *upper = atomic_load_explicit(&rt->xupper, memory_order_acquire);
  if (upper) {
    upper_ops(rt)->free(rt, upper);
    atomic_store_explicit(&rt->xupper, NULL, memory_order_release);
    atomic_store_explicit(&rt->xupper_ops, NULL, memory_order_release);
  }
  isle__actors_end_all(rt);
  isle__names_free(rt);
  munmap(rt->slots, sizeof(isle__slot_t) * (size_t)rt->cfg.max_actors);
  pthread_mutex_destroy(&rt->global_lock);
  pthread_mutex_destroy(&rt->names_lock);
  pthread_mutex_destroy(&rt->upper_lock);
  pthread_mutex_destroy(&rt->hooks_lock);
  bool profiling = rt->profiling;
  for (unsigned i = 0; i < rt->nworkers; i++)
    isle_free(rt->workers[i].muted);
  isle_free(rt->workers);
  isle_free(rt);
  if (profiling)
    isle_profile_stop(); /* the final snapshot, with everything freed */
  return 0;
}

int isle_runtime_stats(isle_runtime_t *rt, isle_runtime_stats_t *out) {
  if (!rt || !out)
    return ISLE_EINVAL;
  memset(out, 0, sizeof *out);
  out->workers = rt->nworkers;
  out->spawned = atomic_load_explicit(&rt->xspawned, memory_order_relaxed);
  out->stopped = atomic_load_explicit(&rt->xstopped, memory_order_relaxed);
  out->failed = atomic_load_explicit(&rt->xfailed, memory_order_relaxed);
  out->dead_letters =
      atomic_load_explicit(&rt->xdead_letters, memory_order_relaxed);
  out->stalls = atomic_load_explicit(&rt->xstalls, memory_order_relaxed);
  for (unsigned i = 0; i < rt->nworkers; i++) {
    isle__worker_t *w = &rt->workers[i];
    out->messages += atomic_load_explicit(&w->xmessages, memory_order_relaxed);
    out->turns += atomic_load_explicit(&w->xturns, memory_order_relaxed);
    out->steals += atomic_load_explicit(&w->xsteals, memory_order_relaxed);
    out->parks += atomic_load_explicit(&w->xparks, memory_order_relaxed);
    out->spawned += atomic_load_explicit(&w->xspawned, memory_order_relaxed);
    out->stopped += atomic_load_explicit(&w->xstopped, memory_order_relaxed);
    out->failed += atomic_load_explicit(&w->xfailed, memory_order_relaxed);
  }
  /* Read apart from each other while actors come and go: never below 0. */
  uint64_t ended = out->stopped + out->failed;
  out->actors_live = out->spawned > ended ? out->spawned - ended : 0;
  return 0;
}

/* ===== The layer above and end-of-actor hooks ========================== */

int isle__end_hook_add(isle_runtime_t *rt, isle__end_fn fn, uint32_t *bit) {
  pthread_mutex_lock(&rt->hooks_lock);
  uint32_t n = atomic_load_explicit(&rt->xnend_hooks, memory_order_relaxed);
  if (n < ISLE__END_HOOKS) {
    rt->end_hooks[n] = fn;
    /* Release: the ending actor's acquire load of the count sees fn. */
    atomic_store_explicit(&rt->xnend_hooks, n + 1, memory_order_release);
    *bit = UINT32_C(1) << n;
  }
  pthread_mutex_unlock(&rt->hooks_lock);
  return n < ISLE__END_HOOKS ? 0 : ISLE_ENOMEM;
}

bool isle__upper_closed(isle_runtime_t *rt) {
  pthread_mutex_lock(&rt->upper_lock);
  bool closed = rt->freeing;
  pthread_mutex_unlock(&rt->upper_lock);
  return closed;
}

void *isle__upper(isle_runtime_t *rt) {
  return atomic_load_explicit(&rt->xupper, memory_order_acquire);
}

void *isle__upper_attach(isle_runtime_t *rt,
                         void *(*create)(isle_runtime_t *rt, void *arg),
                         void *arg, const isle__upper_ops_t *ops) {
  void *state = isle__upper(rt);
  if (state)
    return state;
  pthread_mutex_lock(&rt->upper_lock);
  state = atomic_load_explicit(&rt->xupper, memory_order_relaxed);
  if (!state && !rt->freeing && (state = create(rt, arg)) != NULL) {
    /* The state before the operations (release each): a worker that sees
     * the operations finds the state they use. seq_cst for the
     * operations: see the sleeping argument in worker_park. */
    atomic_store_explicit(&rt->xupper, state, memory_order_release);
    atomic_store_explicit(&rt->xupper_ops, ops, memory_order_seq_cst);
    /* Workers asleep on their futexes move into the layer's sleep. */
    for (unsigned i = 0; i < rt->nworkers; i++) {
      uint32_t one = 1;
      if (atomic_compare_exchange_strong_explicit(&rt->workers[i].xsleep, &one,
                                                  0, memory_order_seq_cst,
                                                  memory_order_relaxed))
        isle__worker_wake(&rt->workers[i]);
    }
  }
  pthread_mutex_unlock(&rt->upper_lock);
  return state;
}
