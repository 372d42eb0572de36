/* isle — MIT licensed. */
/*
 * Flow control: a sender that outruns its receiver is held back until the
 * receiver has caught up. The bound is on the backlog, not on time.
 *
 * Without it, an actor that sends more per turn than its receiver takes
 * per turn (a turn takes at most `batch` messages) grows the receiver's
 * mailbox without bound. Pony mutes such senders; Erlang charges them
 * reductions. Why, and what it cost without:
 * docs/decisions/0007-flow-control-mutes-senders.md.
 *
 * The rule, from Pony's. H = ISLE__MUTE_HIGH x batch, L = ISLE__MUTE_LOW x
 * batch. When a send by a running actor leaves its receiver R with a
 * backlog of H or more, the sender's turn ends after the current receive,
 * and instead of going back to the run queue (or idling) the sender waits
 * in its worker's muted list. The worker looks at the list before each
 * turn (one load of each receiver's mailbox count) and lets a sender go
 * when
 *   (a) every receiver R it found at H in that turn (up to ISLE__MUTE_ON,
 *       4, of them) is down to L or has ended; or
 *   (b) the sender's own backlog has reached H (others wait on it).
 * There is no time limit: a sender stays muted for as long as R is slow.
 *
 * The bound (docs/runtime.md): a sender whose own backlog is below H adds
 * to R, past H, at most what one of its receives sends to R, and nothing
 * while muted; released by (a) it starts again at L. So R's
 * backlog stays below H + the sum over its senders of what one receive of
 * each sends to R, whatever the run length, the worker count or the
 * machine's speed (R's messages of its current turn still count toward
 * the mark, which can only make a sender stop sooner), for a receive that
 * finds at most four receivers at H at once (a fifth is not recorded, so
 * it may gain one receive's sends per mute while the others drain). Sends
 * from outside the workers are not flow-controlled (mailbox capacity
 * bounds them), nor are a sender's while its own backlog is at H (rule
 * (b): its own senders stay muted until it is down to L).
 *
 * Why this cannot deadlock: X is muted only on receivers whose backlog
 * is at H or more when the mute is decided (isle__mute looks again: one
 * that was at H at the send may have drained since, and be muted on X),
 * and only R's own turns lower it (a seq_cst fence at each mute puts the
 * mutes in one order, in which a later one sees an earlier one's turn).
 * Take the muted actor X whose mute is the latest. Each of its receivers R has
 * not run since (had it run and then been muted, that mute would be later), so
 * R is still at H or more: it is queued or running (an actor at H is never
 * muted, and one muted before reaching H goes by rule (b)), or it has ended and
 * X goes by (a). So someone always runs, and a receiver always drains: isle has
 * no selective receive. A rule that let X go while R is muted below H
 * would break the bound in a relay X -> R -> S: X refills R to H, which
 * lets R go by (b), and R feeds S a receive's worth each round for as long
 * as the run lasts (such a rule was tried first:
 * docs/decisions/0010-no-release-while-the-receiver-is-muted.md).
 *
 * Muted actors are still scheduled as far as their mailboxes know: a
 * worker with muted actors does not park, and a stopping worker hands
 * them to the global queue. Only the actor running on a worker notes and
 * is muted there, so the list needs no lock.
 */
#include "internal.h"
#include "isle/heap.h"

static uint64_t high_mark(const isle__worker_t *w) {
  return (uint64_t)ISLE__MUTE_HIGH * w->rt->cfg.batch;
}

static uint64_t low_mark(const isle__worker_t *w) {
  return (uint64_t)ISLE__MUTE_LOW * w->rt->cfg.batch;
}

/* The backlog of actor `r` (UINT64_MAX: it has ended). */
static uint64_t backlog_of(const isle__worker_t *w, isle_ref_t r) {
  return isle__mbox_backlog(&isle__slot_of(w->rt, r)->mbox, r >> 32);
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

bool isle__mute(isle__worker_t *w, isle__actor_t *a, isle__mbox_t *own) {
  /* Pairs with the same fence in a receiver's isle__mute: its turn's
   * taken count (a plain store) comes before its look at us, ours before
   * our look at it, so two actors muting on each other at once cannot
   * both read the other's backlog from before its turn (Dekker). The
   * no-deadlock argument needs the mutes in one order. */
  atomic_thread_fence(memory_order_seq_cst);
  if (isle__mbox_backlog(own, a->self >> 32) >= high_mark(w))
    return false; /* others wait on a: rule (b) */
  if (w->nmuted == w->muted_cap) {
    unsigned cap = w->muted_cap ? 2 * w->muted_cap : 16;
    isle__muted_t *grown = isle_realloc(w->muted, sizeof *grown * cap);
    if (!grown)
      return false; /* no memory: the sender goes on unmuted */
    w->muted = grown;
    w->muted_cap = cap;
  }
  /* Only the receivers still at H now: one that drained since the send
   * may already be muted on a (see why this cannot deadlock, above). */
  isle__muted_t *m = &w->muted[w->nmuted];
  m->actor = a;
  m->non = 0;
  for (unsigned i = 0; i < w->ctx.noverloaded; i++) {
    isle_ref_t r = w->ctx.overloaded[i];
    uint64_t n = backlog_of(w, r);
    if (n != UINT64_MAX && n >= high_mark(w))
      m->on[m->non++] = r;
  }
  if (!m->non)
    return false;
  w->nmuted++;
  return true;
}

/* Whether receiver `on` is down to L or has ended. */
static bool caught_up(isle__worker_t *w, isle_ref_t on) {
  uint64_t n = backlog_of(w, on);
  return n == UINT64_MAX || n <= low_mark(w);
}

/* Whether the muted sender m may go: rule (a) or (b). */
static bool may_go(isle__worker_t *w, const isle__muted_t *m) {
  unsigned i = 0;
  while (i < m->non && caught_up(w, m->on[i]))
    i++;
  if (i == m->non)
    return true;
  return backlog_of(w, m->actor->self) >= high_mark(w);
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
    ISLE__CHAOS("mute.release");
    if (all)
      isle__sched_global(w->rt, a);
    else
      isle__sched_requeue(w, a);
  }
}
