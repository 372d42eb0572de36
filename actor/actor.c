/* isle — MIT licensed. */
/*
 * Actors: the slot table behind handles, spawn, send, a turn, and the
 * callbacks' context.
 *
 * A handle is (generation << 32) | (slot index + 1). The slot keeps the
 * mailbox core for all its occupants and reopens it for each new one with
 * the new generation as its epoch, so a send names the generation it means
 * and the mailbox refuses it (ISLE_EDEAD) if that actor is gone, before
 * the message touches the queue. Slots are never freed while the runtime
 * lives, so a stale handle never reaches freed memory; the actor block
 * (type and state) is freed when the actor ends.
 *
 * An actor is scheduled exactly when a push finds its mailbox idle (see
 * mailbox.c); it then belongs to one run queue or one worker until its
 * turn ends with the mailbox marked idle again. It can only end during its
 * own turn, so the sender that scheduled it always finds it alive.
 *
 * Threads: spawn and send from any thread; a turn on its worker.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "isle/heap.h"
#include "isle/lifecycle.h"

/* ===== Helpers ========================================================= */

static inline isle_ref_t make_ref(uint32_t index, uint32_t gen) {
  return ((uint64_t)gen << 32) | ((uint64_t)index + 1);
}

static void counter_inc(_Atomic uint64_t *c, uint64_t n) {
  /* Relaxed: statistics only. */
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Counts one spawn or end: on w's own counter when a worker counts (no
 * shared line on the spawn and end paths), else on the runtime's. */
#define COUNT(rt, w, field)                                                    \
  ((w) ? isle__owner_add(&(w)->field, 1) : counter_inc(&(rt)->field, 1))

/* ----- Slots ----------------------------------------------------------- */

/* Claims up to `want` never-used slots from the bump index: returns the
 * first and sets *got (0 when every slot has been handed out). */
static uint32_t fresh_claim(isle_runtime_t *rt, uint32_t want, uint32_t *got) {
  uint32_t used = atomic_load_explicit(&rt->xslots_used, memory_order_relaxed);
  for (;;) {
    if (used >= rt->cfg.max_actors) {
      *got = 0;
      return 0;
    }
    uint32_t n =
        rt->cfg.max_actors - used < want ? rt->cfg.max_actors - used : want;
    /* Relaxed: the slots are zeroed memory until the spawn that takes one
     * sets it up and publishes it with the release store of xgen. */
    if (atomic_compare_exchange_weak_explicit(&rt->xslots_used, &used, used + n,
                                              memory_order_relaxed,
                                              memory_order_relaxed)) {
      *got = n;
      return used;
    }
  }
}

/* Takes one slot from a reserve (next << 32 | end); false when empty. Its
 * owner and, once the bump index is used up, any spawning thread. */
static bool fresh_take(_Atomic uint64_t *reserve, uint32_t *index) {
  uint64_t v = atomic_load_explicit(reserve, memory_order_relaxed);
  while ((uint32_t)(v >> 32) < (uint32_t)v) {
    if (atomic_compare_exchange_weak_explicit(
            reserve, &v, v + (UINT64_C(1) << 32), memory_order_relaxed,
            memory_order_relaxed)) {
      *index = (uint32_t)(v >> 32);
      return true;
    }
  }
  return false;
}

/* A never-used slot for a spawn on worker w (NULL: not a worker). Workers
 * take them from reserves of FRESH_CHUNK claimed at once, so that spawns
 * on different workers do not all hit the bump index's line; when it is
 * used up, what is left in any worker's reserve is still handed out, so
 * max_actors is exact. */
#define FRESH_CHUNK 64u
static bool fresh_slot(isle_runtime_t *rt, isle__worker_t *w, uint32_t *index) {
  if (w && fresh_take(&w->xfresh, index))
    return true;
  uint32_t got;
  uint32_t first = fresh_claim(rt, w ? FRESH_CHUNK : 1, &got);
  if (got) {
    /* The rest refills w's reserve, which is empty: only its owner fills
     * it. */
    if (got > 1)
      atomic_store_explicit(&w->xfresh,
                            (uint64_t)(first + 1) << 32 | (first + got),
                            memory_order_relaxed);
    *index = first;
    return true;
  }
  for (unsigned i = 0; i < rt->nworkers; i++)
    if (fresh_take(&rt->workers[i].xfresh, index))
      return true;
  return false;
}

static isle__slot_t *slot_alloc(isle_runtime_t *rt, isle__worker_t *w,
                                uint32_t *index) {
  uint64_t top = atomic_load_explicit(&rt->xfree_top, memory_order_acquire);
  while ((uint32_t)top != 0) {
    uint32_t i = (uint32_t)top - 1;
    uint32_t next =
        atomic_load_explicit(&rt->slots[i].xnext_free, memory_order_relaxed);
    uint64_t nt = ((top >> 32) + 1) << 32 | next;
    /* acq_rel: acquire pairs with the release of slot_free (the slot's
     * last use is over); the tag makes a stale `next` fail the CAS. */
    if (atomic_compare_exchange_weak_explicit(&rt->xfree_top, &top, nt,
                                              memory_order_acq_rel,
                                              memory_order_acquire)) {
      *index = i;
      return &rt->slots[i];
    }
  }
  uint32_t i;
  if (!fresh_slot(rt, w, &i))
    return NULL;
  /* A never-used slot: its mailbox starts closed, so sends with a made-up
     handle that lands here are refused until the first occupant. */
  isle__slot_t *s = &rt->slots[i];
  isle__mbox_init(&s->mbox, 0);
  /* A plain store, not a read-modify-write: the line is new to this core
   * (often to memory), and a store lets the miss overlap what follows.
   * No other thread looks at the slot before its generation is set. */
  atomic_store_explicit(&s->mbox.xcount, ISLE__MB_CLOSED, memory_order_relaxed);
  *index = i;
  return s;
}

static void slot_free(isle_runtime_t *rt, isle__slot_t *s) {
  /* A slot that has used up its generations (2^31 - 1 occupants) retires:
   * reusing it would give out an old handle again. */
  if (atomic_load_explicit(&s->xgen, memory_order_relaxed) >=
      ISLE__MB_EPOCH_MASK)
    return;
  uint32_t i = (uint32_t)(s - rt->slots);
  uint64_t top = atomic_load_explicit(&rt->xfree_top, memory_order_relaxed);
  for (;;) {
    atomic_store_explicit(&s->xnext_free, (uint32_t)top, memory_order_relaxed);
    uint64_t nt = ((top >> 32) + 1) << 32 | (i + 1);
    /* Release: pairs with the acquire CAS in slot_alloc. */
    if (atomic_compare_exchange_weak_explicit(&rt->xfree_top, &top, nt,
                                              memory_order_release,
                                              memory_order_relaxed))
      return;
  }
}

/* ----- Sending --------------------------------------------------------- */

static void schedule(isle_runtime_t *rt, isle__worker_t *w, isle__actor_t *a) {
  if (w)
    isle__sched_local(w, a);
  else
    isle__sched_global(rt, a);
}

int isle__ref_check(isle_runtime_t *rt, isle_ref_t to) {
  uint32_t index = (uint32_t)to - 1;
  uint32_t gen = (uint32_t)(to >> 32);
  /* No look at xslots_used (a line spawns write): a slot never used has
   * generation 0 (the table is mapped zeroed), so the check below refuses
   * it before its mailbox is touched. */
  if ((uint32_t)to == 0 || gen == 0 || index >= rt->cfg.max_actors)
    return ISLE_EINVAL;
  /* A generation the slot has not reached was never given out. Acquire:
   * pairs with the release store in spawn, which follows the slot's
   * setup; the generation only grows, so a stale read can only say "not
   * yet", for a handle the caller cannot have obtained from that spawn. */
  if (gen > atomic_load_explicit(&rt->slots[index].xgen, memory_order_acquire))
    return ISLE_EINVAL;
  return 0;
}

int isle__send(isle_runtime_t *rt, isle__worker_t *w, isle_ref_t from,
               isle_ref_t to, isle_msg_t *msg) {
  if (!rt || !msg)
    return ISLE_EINVAL;
  int bad = isle__ref_check(rt, to);
  if (bad)
    return bad;
  isle__slot_t *s = isle__slot_of(rt, to);
  uint32_t gen = (uint32_t)(to >> 32);
  uint64_t old_sender = msg->sender;
  msg->sender = from;
  bool was_idle = false;
  int rc = isle__mbox_push(&s->mbox, msg, gen, &was_idle);
  if (rc) {
    msg->sender = old_sender; /* a refused message is returned untouched */
    if (rc == ISLE_EDEAD)
      counter_inc(&rt->xdead_letters, 1);
    return rc;
  }
  if (w && from != ISLE_REF_NONE) {
    if (from == to)
      w->ctx.self_sent = true;
    else if (!was_idle)
      isle__mute_note(w, to, &s->mbox);
  }
  if (was_idle) {
    /* Relaxed: the occupant was stored before the mailbox was reopened
     * (release), and our push's acquire read that. It is alive: an idle
     * actor cannot end. */
    schedule(rt, w, atomic_load_explicit(&s->xactor, memory_order_relaxed));
  }
  return 0;
}

/* ----- Ending ---------------------------------------------------------- */

typedef struct drain_arg_s {
  isle_ctx_t *ctx;
  int reason;
  bool notify;
  uint64_t dead;
} drain_arg_t;

static void drain_one(isle_msg_t *m, void *arg) {
  drain_arg_t *d = arg;
  if (isle__life_drained(d->ctx, m, d->reason, d->notify))
    d->dead++;
}

/* Ends `a` with `reason`. `notify`: tell monitors and links (not at
 * teardown, when nothing will run again). `counted`: it was counted
 * live (spawn finished). */
static void actor_end(isle_runtime_t *rt, isle__worker_t *w, isle__actor_t *a,
                      int reason, bool notify, bool counted) {
  isle__slot_t *s = isle__slot_of(rt, a->self);
  isle_ctx_t ctx = {.rt = rt, .worker = w, .actor = a};
  drain_arg_t d = {.ctx = &ctx, .reason = reason, .notify = notify};
  /* Closing first: from here on, requests to this actor fail with
   * ISLE_EDEAD at their sender, and the drain answers those that got in. */
  isle__mbox_close(&s->mbox, drain_one, &d);
  if (d.dead)
    counter_inc(&rt->xdead_letters, d.dead);
  /* seq_cst load, after the seq_cst close: a module that sets its bit
   * and then looks at the mailbox, both seq_cst, either sees the close or
   * has its bit seen here (names.c). Acquire on the count: the hooks it
   * covers were written before it (isle__end_hook_add). Before links hear
   * of the end: a supervisor restarting the actor can register its name
   * again. */
  uint32_t flags = atomic_load_explicit(&s->xflags, memory_order_seq_cst);
  if (flags) {
    uint32_t n = atomic_load_explicit(&rt->xnend_hooks, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++)
      if (flags & (UINT32_C(1) << i))
        rt->end_hooks[i](rt, a->self);
  }
  if (counted && a->type->finalize)
    a->type->finalize(&ctx, a->state);
  isle__life_end(&ctx, reason, notify);
  atomic_store_explicit(&s->xactor, NULL, memory_order_relaxed);
  isle_free(a);
  slot_free(rt, s);
  if (counted) {
    if (reason < 0)
      COUNT(rt, w, xfailed);
    else
      COUNT(rt, w, xstopped);
  }
}

/* ----- Spawning -------------------------------------------------------- */

int isle__spawn(isle_runtime_t *rt, isle_ctx_t *parent,
                const isle_actor_type_t *type, const void *arg, bool link,
                isle_ref_t *out) {
  if (!rt || !type || !type->receive ||
      type->mailbox_capacity > ISLE_MAILBOX_MAX_CAPACITY ||
      (link && (!parent || !parent->actor)))
    return ISLE_EINVAL;
  isle__worker_t *w = parent ? parent->worker : NULL;
  uint32_t index;
  isle__slot_t *s = slot_alloc(rt, w, &index);
  if (!s)
    return ISLE_ENOMEM;
  isle__actor_t *a = isle_malloc(sizeof *a + type->state_size);
  if (!a) {
    slot_free(rt, s);
    return ISLE_ENOMEM;
  }
  memset(a->state, 0, type->state_size);
  /* Below ISLE__MB_EPOCH_MASK: slot_free retires a slot at the last
   * generation, so a handle is never given out twice. */
  uint32_t gen = atomic_load_explicit(&s->xgen, memory_order_relaxed) + 1;
  atomic_store_explicit(&s->xgen, gen, memory_order_release);
  a->type = type;
  a->life = NULL;
  a->self = make_ref(index, gen);
  a->global_next = NULL;
  atomic_store_explicit(&s->xflags, 0, memory_order_relaxed);
  atomic_store_explicit(&s->xactor, a, memory_order_relaxed);
  /* Open for sends, but not idle: a send during init queues without
   * scheduling the actor, which is not runnable until init is done. */
  isle__mbox_reopen(&s->mbox, gen, type->mailbox_capacity);
  isle_ctx_t ctx = {.rt = rt, .worker = w, .actor = a};
  if (type->init) {
    int rc = type->init(&ctx, a->state, arg);
    if (rc != 0) {
      /* Never seen alive: whoever it monitored or linked to in init hears
       * of it as of any exit, with init's error. notify must be true for
       * that: with false, a link made in init would dangle on the other
       * side, and a monitor request that reached this mailbox during init
       * would never get its DOWN.
       * Why: docs/decisions/0003-init-ends-like-any-exit.md. */
      actor_end(rt, w, a, rc < 0 ? rc : ISLE_EINVAL, true, false);
      return rc < 0 ? rc : ISLE_EINVAL;
    }
  }
  COUNT(rt, w, xspawned);
  if (link) {
    int rc = isle__life_link_child(parent, a);
    if (rc != 0) {
      actor_end(rt, w, a, rc, true, true);
      return rc;
    }
  }
  if (out)
    *out = a->self;
  if (ctx.stop) {
    /* init ended the actor (isle_ctx_stop, or isle_exit on itself): like
     * any callback, it ends when init returns. The spawn succeeded, and
     * after the link, so a spawn_link's caller hears of this end. */
    actor_end(rt, w, a, ctx.stop_reason, true, true);
    return 0;
  }
  /* Messages sent during init: run them; else the actor idles. */
  if (!isle__mbox_try_idle(&s->mbox))
    schedule(rt, w, a);
  return 0;
}

/* ===== Internal functions ============================================== */

void isle__actor_turn(isle__worker_t *w, isle__actor_t *a) {
  isle_runtime_t *rt = w->rt;
  isle_ctx_t *ctx = &w->ctx;
  isle__mbox_t *mb = &isle__slot_of(rt, a->self)->mbox;
  unsigned batch = rt->cfg.batch;
  ctx->actor = a;
  ctx->stop = false;
  ctx->stop_reason = 0;
  ctx->self_sent = false;
  ctx->noverloaded = 0;
  isle__owner_add(&w->xturn_seq, 1);
  /* Relaxed: the stall monitor only wants a recent value. */
  atomic_store_explicit(&w->xturn_type, a->type->name ? a->type->name : "?",
                        memory_order_relaxed);
  unsigned n = 0;
  int reason = ISLE_CONTINUE;
  while (n < batch) {
    isle_msg_t *m = isle__mbox_take(mb);
    if (!m)
      break;
    n++;
    if (n > 1)
      isle__owner_add(&w->xturn_seq, 1); /* the stall monitor times receives */
    /* The runtime's messages first (one flag test on a line the take
     * just read): most are handled here and never reach receive. */
    if ((m->flags & ISLE__MSG_F_SYSTEM) && !isle__life_signal(ctx, m)) {
      if (ctx->stop || ctx->noverloaded)
        break;
      continue;
    }
    ctx->current = m;
    isle__msg_borrowed = m;
    reason = a->type->receive(ctx, a->state, m);
    /* Not sent on (by any send), kept, handed to a timer or a write, or
     * freed by the receive: the runtime frees it. */
    if (isle__msg_borrowed == m)
      isle_free(m);
    isle__msg_borrowed = NULL;
    if (reason != ISLE_CONTINUE || ctx->stop)
      break;
    /* It sent to a backlogged actor: no more receives this turn, so that
     * what it adds past the high mark is one receive's sends (mute.c). */
    if (ctx->noverloaded)
      break;
    /* An actor that works in chunks, a CONTINUE to itself between them,
     * gives way after each chunk when others wait (docs/runtime.md,
     * Turns): otherwise `batch` chunks run per turn.
     * docs/decisions/0006-a-self-send-ends-the-turn-when-others-wait.md */
    if (ctx->self_sent && isle__sched_waiting(w))
      break;
  }
  ctx->current = NULL;
  isle__mbox_taken(mb, n);
  isle__owner_add(&w->xmessages, n);
  isle__owner_add(&w->xturns, 1);
  atomic_store_explicit(&w->xturn_type, NULL, memory_order_relaxed);
  if (reason < 0)
    actor_end(rt, w, a, reason, true, true); /* an error wins */
  else if (ctx->stop)
    actor_end(rt, w, a, ctx->stop_reason, true, true);
  else if (reason != ISLE_CONTINUE)
    actor_end(rt, w, a, ISLE_EXIT_NORMAL, true, true);
  /* Muted: held back even with nothing queued (a send to it must not
   * schedule it meanwhile, so it is not marked idle). Else it idles or,
   * with more messages (or one being linked), goes back to the queue. */
  else if (!(ctx->noverloaded && isle__mute(w, a, mb)) &&
           !isle__mbox_try_idle(mb))
    isle__sched_requeue(w, a);
  ctx->actor = NULL;
}

void isle__actors_end_all(isle_runtime_t *rt) {
  uint32_t used = atomic_load_explicit(&rt->xslots_used, memory_order_acquire);
  for (uint32_t i = 0; i < used; i++) {
    isle__actor_t *a =
        atomic_load_explicit(&rt->slots[i].xactor, memory_order_acquire);
    if (a)
      actor_end(rt, NULL, a, ISLE_EXIT_NORMAL, false, true);
  }
}

/* ===== Public functions ================================================ */

int isle_runtime_spawn(isle_runtime_t *rt, const isle_actor_type_t *type,
                       const void *arg, isle_ref_t *out) {
  return isle__spawn(rt, NULL, type, arg, false, out);
}

int isle_runtime_send(isle_runtime_t *rt, isle_ref_t to, isle_msg_t *msg) {
  return isle__send(rt, NULL, ISLE_REF_NONE, to, msg);
}

int isle_ctx_spawn(isle_ctx_t *ctx, const isle_actor_type_t *type,
                   const void *arg, isle_ref_t *out) {
  return isle__spawn(ctx->rt, ctx, type, arg, false, out);
}

int isle_ctx_send(isle_ctx_t *ctx, isle_ref_t to, isle_msg_t *msg) {
  isle_ref_t self = ctx->actor ? ctx->actor->self : ISLE_REF_NONE;
  return isle__send(ctx->rt, ctx->worker, self, to, msg);
}

int isle_ctx_reply(isle_ctx_t *ctx, isle_msg_t *msg) {
  if (!ctx->current || ctx->current->sender == ISLE_REF_NONE)
    return ISLE_EINVAL;
  return isle_ctx_send(ctx, ctx->current->sender, msg);
}

void isle_ctx_keep(isle_ctx_t *ctx) {
  if (ctx->current)
    isle__msg_handed_on(ctx->current);
}

void isle_ctx_stop(isle_ctx_t *ctx) {
  ctx->stop = true;
  ctx->stop_reason = ISLE_EXIT_NORMAL;
}

isle_ref_t isle_ctx_self(const isle_ctx_t *ctx) {
  return ctx->actor ? ctx->actor->self : ISLE_REF_NONE;
}

isle_runtime_t *isle_ctx_runtime(const isle_ctx_t *ctx) {
  return ctx->rt;
}

int isle_ctx_worker(const isle_ctx_t *ctx) {
  return ctx->worker ? (int)ctx->worker->index : -1;
}

isle_ref_t isle_msg_sender(const isle_msg_t *msg) {
  return msg->sender;
}
