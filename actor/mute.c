/* isle — MIT licensed. */
/*
 * Flow control: a sender that outruns its receiver is held back until the
 * receiver has caught up. The bound is on the backlog, not on time.
 *
 * Without it, an actor that sends more per turn than its receiver takes
 * per turn (a turn takes at most `batch` messages) grows the receiver's
 * mailbox without bound: counting's producer sends 1,000 increments per
 * turn, its counter takes 64, and with one worker the run peaked at
 * 448 MB. Pony mutes such senders; Erlang charges them reductions.
 *
 * The rule, from Pony's. H = ISLE__MUTE_HIGH x batch, L = ISLE__MUTE_LOW x
 * batch. When a send by a running actor leaves its receiver R with a
 * backlog of H or more, the sender's turn ends after the current receive,
 * and instead of going back to the run queue (or idling) the sender waits
 * in its worker's muted list. The worker looks at the list before each
 * turn (one load of each receiver's mailbox count) and lets a sender go
 * when every receiver R it found at H in that turn (up to ISLE__MUTE_ON,
 * 4, of them) has caught up:
 *   (a) R's backlog is down to L, or R has ended;
 *   (b) R is muted itself and its backlog is below H (R waits on another
 *       actor; this sender may add to R until the high mark again);
 * or when
 *   (c) the sender's own backlog has reached H (others wait on it).
 * There is no time limit: a sender stays muted for as long as R is slow.
 *
 * The bound (docs/runtime.md): a sender whose own backlog is below H adds
 * to R, past H, at most what one of its receives sends to R, and nothing
 * while muted; released by (a) or (b) it starts again below H. So R's
 * backlog stays below H + the sum over its senders of what one receive of
 * each sends to R, whatever the run length, the worker count or the
 * machine's speed (R's messages of its current turn still count toward
 * the mark, which can only make a sender stop sooner), for a receive that
 * finds at most four receivers at H at once (a fifth is not recorded, so
 * it may gain one receive's sends per mute while the others drain). Sends
 * from outside the workers are not flow-controlled (mailbox capacity
 * bounds them), nor are a sender's while its own backlog is at H (rule
 * (c): its own senders are then muted instead).
 *
 * Why this cannot deadlock: a muted sender X waits on R only while R has
 * messages, so R is scheduled. If R is running or queued, it runs and
 * drains. If R is muted on S and below H, X goes by (b); if R is muted at
 * H or more, R goes by (c). So in any cycle of waits someone runs. A
 * receiver always drains: isle has no selective receive.
 *
 * Muted actors are still scheduled as far as their mailboxes know: a
 * worker with muted actors does not park, and a stopping worker hands
 * them to the global queue. Only the actor running on a worker notes and
 * is muted there, so the list needs no lock; the slot's MUTED flag, which
 * others read for (b), is a hint set and cleared by that worker.
 */
#include "internal.h"
#include "isle/heap.h"

static uint64_t high_mark(const isle__worker_t *w) {
  return (uint64_t)ISLE__MUTE_HIGH * w->rt->cfg.batch;
}

void isle__mute_note(isle__worker_t *w, isle_ref_t to, isle__mbox_t *mb) {
  uint64_t n = isle__mbox_backlog(mb, to >> 32);
  if (n == UINT64_MAX || n < high_mark(w))
    return;
  isle_ctx_t *ctx = &w->ctx;
  for (unsigned i = 0; i < ctx->noverloaded; i++)
    if (ctx->overloaded[i] == to)
      return;
  if (ctx->noverloaded < ISLE__MUTE_ON)
    ctx->overloaded[ctx->noverloaded++] = to;
}

/* Sets or clears a's MUTED flag. Relaxed: a hint for rule (b), re-read
 * before every turn of the worker that muted the sender. */
static void muted_flag(isle__worker_t *w, isle__actor_t *a, bool on) {
  _Atomic uint32_t *flags = &isle__slot_of(w->rt, a->self)->xflags;
  if (on)
    atomic_fetch_or_explicit(flags, ISLE__SLOT_MUTED, memory_order_relaxed);
  else
    atomic_fetch_and_explicit(flags, ~ISLE__SLOT_MUTED, memory_order_relaxed);
}

bool isle__mute(isle__worker_t *w, isle__actor_t *a, isle__mbox_t *own) {
  if (isle__mbox_backlog(own, a->self >> 32) >= high_mark(w))
    return false; /* others wait on a: rule (c) */
  if (w->nmuted == w->muted_cap) {
    unsigned cap = w->muted_cap ? 2 * w->muted_cap : 16;
    isle__muted_t *grown = isle_realloc(w->muted, sizeof *grown * cap);
    if (!grown)
      return false; /* no memory: the sender goes on unmuted */
    w->muted = grown;
    w->muted_cap = cap;
  }
  isle__muted_t *m = &w->muted[w->nmuted++];
  m->actor = a;
  m->non = w->ctx.noverloaded;
  for (unsigned i = 0; i < m->non; i++)
    m->on[i] = w->ctx.overloaded[i];
  muted_flag(w, a, true);
  return true;
}

/* Whether receiver `on` no longer holds a sender back: rules (a), (b). */
static bool caught_up(isle__worker_t *w, isle_ref_t on) {
  isle__slot_t *r = isle__slot_of(w->rt, on);
  uint64_t n = isle__mbox_backlog(&r->mbox, on >> 32);
  if (n == UINT64_MAX || n <= (uint64_t)ISLE__MUTE_LOW * w->rt->cfg.batch)
    return true;
  return n < high_mark(w) &&
         (atomic_load_explicit(&r->xflags, memory_order_relaxed) &
          ISLE__SLOT_MUTED);
}

/* Whether the muted sender m may go: every receiver it was muted on has
 * caught up, or rule (c). */
static bool may_go(isle__worker_t *w, const isle__muted_t *m) {
  unsigned i = 0;
  while (i < m->non && caught_up(w, m->on[i]))
    i++;
  if (i == m->non)
    return true;
  isle__mbox_t *own = &isle__slot_of(w->rt, m->actor->self)->mbox;
  return isle__mbox_backlog(own, m->actor->self >> 32) >= high_mark(w);
}

void isle__mute_release(isle__worker_t *w, bool all) {
  for (unsigned i = 0; i < w->nmuted;) {
    isle__muted_t *m = &w->muted[i];
    if (!all && !may_go(w, m)) {
      i++;
      continue;
    }
    isle__actor_t *a = m->actor;
    *m = w->muted[--w->nmuted];
    muted_flag(w, a, false);
    ISLE__CHAOS("mute.release");
    if (all)
      isle__sched_global(w->rt, a);
    else
      isle__sched_requeue(w, a);
  }
}
