/* isle — MIT licensed. */
/*
 * Run queues, stealing and waking.
 *
 * Each worker has a ring of 256 runnable actors (Go's runq): the owner
 * appends at the tail (a plain store and a release store of the tail) and
 * takes from the head with a CAS, since thieves take from the head too: a
 * thief copies up to half of the ring and claims it with one CAS on the
 * head. The ring is FIFO, so an actor requeued after its batch waits
 * behind the others: no actor starves the rest. A full ring moves half of
 * itself to the global queue.
 *
 * Locality: an actor woken by a send goes to the sender's worker, into
 * `runnext`, the slot the worker runs right after the current turn, so a
 * request and its reply stay on one core and in its cache. runnext is never
 * stolen; the actor it displaces goes to the ring, where others can take it.
 * Only work placed where others can take it wakes a sleeping worker.
 * Why not another placement (a home worker's inbox, holding displaced or
 * emptied actors back): docs/decisions/0001-wake-into-the-senders-runnext.md.
 *
 * The patient thief: a thief leaves a victim's queued actors to their
 * owner until one of them has waited STEAL_AGE_NS (100 µs). It marks the
 * victim's tail and the time when it starts watching; once the head has
 * passed the mark, the owner took everything queued before it and the
 * watch starts again. Why: a steal costs several cache-line transfers
 * (the ring, the actor, its mailbox, then its messages), worth it for an
 * actor with many messages but not for one, and a receiver left alone
 * gathers messages. The cost: an actor queued behind a long turn starts
 * up to 100 µs later than it could. A watching thief looks every
 * WATCH_PAUSES pauses (~3 µs), not after each: its looks read the ring
 * lines the owner writes. Figures: docs/decisions/0005-the-patient-thief.md
 * and 0008-a-watching-thief-looks-every-128-pauses.md.
 *
 * The global queue (a mutex and an intrusive list) takes actors woken from
 * outside threads and ring overflow; workers look at it when their own
 * queue is empty and every 61st turn, so it is never starved.
 *
 * Waking (lost-wakeup argument): a worker about to sleep sets its xsleep
 * word and increments xnparked, then looks for work once more; a thread
 * that queued work issues a full fence and then reads xnparked. With both
 * sides sequentially consistent, either the sleeper's last look sees the
 * work, or the waker sees xnparked > 0, finds the sleeper's xsleep = 1,
 * clears it and calls futex wake (the sleeper's futex_wait returns at once
 * if its word is already 0).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <linux/futex.h> /* FUTEX_WAIT, FUTEX_WAKE: async-signal-safe */
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MASK (ISLE__RUNQ - 1)

/* ===== Futex =========================================================== */

void isle__futex_wait(_Atomic uint32_t *word, uint32_t expect,
                      uint32_t timeout_ms) {
  struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expect,
          timeout_ms ? &ts : NULL, NULL, 0);
}

void isle__futex_wake(_Atomic uint32_t *word, int n) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* ===== Waking ========================================================== */

void isle__wake_one(isle_runtime_t *rt) {
  /* Pairs with the sequentially consistent increment of xnparked in the
   * worker's park (see the argument above). */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&rt->xnparked, memory_order_relaxed) == 0)
    return;
  for (unsigned i = 0; i < rt->nworkers; i++) {
    isle__worker_t *w = &rt->workers[i];
    uint32_t one = 1;
    if (atomic_compare_exchange_strong_explicit(
            &w->xsleep, &one, 0, memory_order_seq_cst, memory_order_relaxed)) {
      isle__worker_wake(w);
      return;
    }
  }
}

void isle__worker_wake(isle__worker_t *w) {
  /* Both, when the layer above is attached: the worker may have looked
   * before it was (worker_park says why that is enough). seq_cst load,
   * after the caller's seq_cst clear of xsleep. Both calls are
   * async-signal-safe (isle_runtime_stop). */
  isle__futex_wake(&w->xsleep, 1);
  const isle__upper_ops_t *ops =
      atomic_load_explicit(&w->rt->xupper_ops, memory_order_seq_cst);
  if (ops && ops->wake)
    ops->wake(w);
}

void isle__wake_all(isle_runtime_t *rt) {
  for (unsigned i = 0; i < rt->nworkers; i++) {
    isle__worker_t *w = &rt->workers[i];
    atomic_store_explicit(&w->xsleep, 0, memory_order_seq_cst);
    isle__worker_wake(w);
  }
}

/* ===== The global queue ================================================ */

static void global_push_list(isle_runtime_t *rt, isle__actor_t *first,
                             isle__actor_t *last, uint64_t n) {
  last->global_next = NULL;
  pthread_mutex_lock(&rt->global_lock);
  if (rt->global_tail)
    rt->global_tail->global_next = first;
  else
    rt->global_head = first;
  rt->global_tail = last;
  /* Relaxed: a hint for lock-free emptiness checks; the list itself is
   * read under the lock. */
  atomic_fetch_add_explicit(&rt->xglobal_len, n, memory_order_relaxed);
  pthread_mutex_unlock(&rt->global_lock);
}

static isle__actor_t *global_pop(isle_runtime_t *rt) {
  if (atomic_load_explicit(&rt->xglobal_len, memory_order_relaxed) == 0)
    return NULL;
  pthread_mutex_lock(&rt->global_lock);
  isle__actor_t *a = rt->global_head;
  if (a) {
    rt->global_head = a->global_next;
    if (!rt->global_head)
      rt->global_tail = NULL;
    atomic_fetch_sub_explicit(&rt->xglobal_len, 1, memory_order_relaxed);
  }
  pthread_mutex_unlock(&rt->global_lock);
  return a;
}

void isle__sched_global(isle_runtime_t *rt, isle__actor_t *a) {
  global_push_list(rt, a, a, 1);
  isle__wake_one(rt);
}

/* ===== The ring ======================================================== */

/* Copies the n actors of w's ring from position h into batch. Relaxed:
 * the owner wrote the slots, or a thief's acquire load of the tail made
 * them visible; the caller's CAS on the head then decides whether the copy
 * counts. */
static void ring_copy(isle__worker_t *w, uint32_t h, uint32_t n,
                      isle__actor_t **batch) {
  for (uint32_t i = 0; i < n; i++)
    batch[i] =
        atomic_load_explicit(&w->ring[(h + i) & MASK], memory_order_relaxed);
}

/* Appends `a` to w's ring (owner); overflow goes to the global queue. */
static void ring_put(isle__worker_t *w, isle__actor_t *a) {
  for (;;) {
    /* Acquire: pairs with the release CAS of thieves and of ring_get, so
     * the slots they freed may be reused. */
    uint32_t h = atomic_load_explicit(&w->xhead, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&w->xtail, memory_order_relaxed);
    if (t - h < ISLE__RUNQ) {
      /* Relaxed: published by the release store of the tail. */
      atomic_store_explicit(&w->ring[t & MASK], a, memory_order_relaxed);
      atomic_store_explicit(&w->xtail, t + 1, memory_order_release);
      return;
    }
    /* Full: move the older half, and `a`, to the global queue. */
    uint32_t n = (t - h) / 2;
    isle__actor_t *batch[ISLE__RUNQ / 2];
    ring_copy(w, h, n, batch);
    if (!atomic_compare_exchange_strong_explicit(
            &w->xhead, &h, h + n, memory_order_acq_rel, memory_order_relaxed))
      continue; /* a thief took some: there is room now */
    for (uint32_t i = 0; i + 1 < n; i++)
      batch[i]->global_next = batch[i + 1];
    batch[n - 1]->global_next = a;
    global_push_list(w->rt, batch[0], a, n + 1);
    return;
  }
}

static isle__actor_t *ring_get(isle__worker_t *w) {
  for (;;) {
    uint32_t h = atomic_load_explicit(&w->xhead, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&w->xtail, memory_order_relaxed);
    if (t == h)
      return NULL;
    isle__actor_t *a =
        atomic_load_explicit(&w->ring[h & MASK], memory_order_relaxed);
    /* Release: the slot may be refilled by the owner after this. */
    if (atomic_compare_exchange_weak_explicit(
            &w->xhead, &h, h + 1, memory_order_release, memory_order_relaxed))
      return a;
  }
}

#define STEAL_AGE_NS 100000 /* see the patient thief, above */
/* Pauses between a watching thief's looks (~3 µs here): every look reads
 * lines the owner writes, and each read costs the owner a transfer. */
#define WATCH_PAUSES 128

/* True when thief should leave v's queued actors [h, t) to their owner for
 * now: the thief marks v's tail and the time, and steals only once an
 * actor queued before the mark has waited STEAL_AGE_NS. */
static bool steal_wait(isle__worker_t *thief, const isle__worker_t *v,
                       uint32_t h, uint32_t t) {
  isle__watch_t *watch = &thief->watch[v->index];
  uint64_t now = isle__now_ns();
  if (watch->since == 0 || (int32_t)(h - watch->mark) >= 0) {
    /* Not watching yet, or all that was queued before the mark is gone:
     * (re)start with what is queued now. */
    watch->mark = t;
    watch->since = now;
    return true;
  }
  return now - watch->since < STEAL_AGE_NS;
}

/* Takes up to half of victim's ring into thief's (which is empty), and
 * returns one of them to run; NULL when there was nothing,
 * or only work too young to steal (steal_wait). */
static isle__actor_t *ring_steal(isle__worker_t *thief, isle__worker_t *v) {
  isle__actor_t *batch[ISLE__RUNQ / 2];
  uint32_t n;
  for (;;) {
    /* Acquire on both: pairs with the owner's release store of the tail,
     * so the slots below hold the actors it published. */
    uint32_t h = atomic_load_explicit(&v->xhead, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&v->xtail, memory_order_acquire);
    n = t - h;
    if (n == 0)
      return NULL;
    if (steal_wait(thief, v, h, t)) {
      for (unsigned i = 0; i < WATCH_PAUSES; i++)
        isle__cpu_relax();
      return NULL;
    }
    n -= n / 2;
    if (n > ISLE__RUNQ / 2)
      continue; /* read h and t at different moments: retry */
    ring_copy(v, h, n, batch);
    /* acq_rel: claims the slots read above (they were valid if the head
     * did not move). */
    if (atomic_compare_exchange_strong_explicit(
            &v->xhead, &h, h + n, memory_order_acq_rel, memory_order_relaxed))
      break;
  }
  for (uint32_t i = 1; i < n; i++)
    ring_put(thief, batch[i]);
  isle__owner_add(&thief->xsteals, n);
  return batch[0];
}

/* ===== Scheduling ====================================================== */

/* runnext's owner-side accessors. Relaxed loads: only the owner stores.
 * A store of an actor is relaxed: a quiescence check that must see it
 * reaches it through the release of the hold the storing thread had
 * (runtime.c); taking it out is a release store, so that a check that
 * reads the NULL also sees the taker's unparking before it. */
static inline isle__actor_t *runnext_get(const isle__worker_t *w) {
  return atomic_load_explicit(&((isle__worker_t *)w)->xrunnext,
                              memory_order_relaxed);
}

isle__actor_t *isle__sched_take_runnext(isle__worker_t *w) {
  isle__actor_t *a = runnext_get(w);
  if (a)
    atomic_store_explicit(&w->xrunnext, NULL, memory_order_release);
  return a;
}

bool isle__sched_has_runnext(const isle__worker_t *w) {
  return runnext_get(w) != NULL;
}

void isle__sched_local(isle__worker_t *w, isle__actor_t *a) {
  isle__actor_t *old = runnext_get(w);
  atomic_store_explicit(&w->xrunnext, a, memory_order_relaxed);
  ISLE__CHAOS("sched.runnext_set");
  if (old) {
    ring_put(w, old);
    isle__wake_one(w->rt);
  }
}

void isle__sched_requeue(isle__worker_t *w, isle__actor_t *a) {
  ring_put(w, a);
  isle__wake_one(w->rt);
}

isle__actor_t *isle__sched_next(isle__worker_t *w) {
  isle_runtime_t *rt = w->rt;
  if (w->nmuted)
    isle__mute_release(w, false);
  /* Every 61st turn, the global queue first: it is never starved. */
  if (++w->tick % 61 == 0) {
    isle__actor_t *a = global_pop(rt);
    if (a)
      return a;
  }
  isle__actor_t *a = isle__sched_take_runnext(w);
  if (a)
    return a;
  if ((a = ring_get(w)) || (a = global_pop(rt)))
    return a;
  /* Steal, starting at a random victim. */
  unsigned n = rt->nworkers;
  if (n > 1) {
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    unsigned start = (unsigned)(w->rng % n);
    for (unsigned i = 0; i < n; i++) {
      isle__worker_t *v = &rt->workers[(start + i) % n];
      if (v != w && (a = ring_steal(w, v)))
        return a;
    }
  }
  return NULL;
}

bool isle__sched_waiting(const isle__worker_t *w) {
  /* Relaxed: a hint; a stale answer costs one turn more or less. */
  return runnext_get(w) ||
         atomic_load_explicit(&w->xtail, memory_order_relaxed) !=
             atomic_load_explicit(&w->xhead, memory_order_relaxed) ||
         atomic_load_explicit(&w->rt->xglobal_len, memory_order_relaxed);
}

bool isle__sched_any_work(isle_runtime_t *rt, bool runnext) {
  if (atomic_load_explicit(&rt->xglobal_len, memory_order_seq_cst))
    return true;
  for (unsigned i = 0; i < rt->nworkers; i++) {
    isle__worker_t *v = &rt->workers[i];
    if (atomic_load_explicit(&v->xtail, memory_order_seq_cst) !=
        atomic_load_explicit(&v->xhead, memory_order_seq_cst))
      return true;
    if (!runnext)
      continue;
    /* Only in the quiescence scan: the parking spin calls this thousands
     * of times, and a point there would only slow it. */
    ISLE__CHAOS("sched.scan");
    if (atomic_load_explicit(&v->xrunnext, memory_order_seq_cst))
      return true;
  }
  return false;
}
