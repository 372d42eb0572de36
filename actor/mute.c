/* isle — MIT licensed. */
/*
 * Flow control: a sender that outruns its receiver is held back.
 *
 * Without it, an actor that sends more per turn than its receiver takes
 * per turn (a turn takes at most `batch` messages) grows the receiver's
 * mailbox without bound: counting's producer sends 1,000 increments per
 * turn, its counter takes 64, and with one worker the run peaked at
 * 448 MB. Pony mutes such senders; Erlang charges them reductions.
 *
 * The rule, from Pony's: when a send leaves the receiver with a backlog of
 * ISLE__MUTE_HIGH turns (16 x batch messages) or more, the sender is
 * "muted" at the end of its turn: instead of going back to the run queue
 * it waits in its worker's muted list until the receiver's backlog is down
 * to ISLE__MUTE_LOW turns (4 x batch), the receiver has ended, or 1 ms has
 * passed. The worker looks at its list before each turn (one load of each
 * receiver's mailbox count) and requeues those whose reason is over.
 *
 * Why this cannot deadlock: an actor whose own backlog is at or above the
 * high mark is never muted (others are waiting on it), and every mute ends
 * after 1 ms at the latest, so a cycle of actors flooding each other costs
 * at most that. A receiver always drains: isle has no selective receive.
 * An actor with nothing left to run is never muted (it idles instead).
 *
 * Muted actors are still runnable for the rest of the runtime: their
 * mailboxes are not idle, a worker with muted actors does not park, and
 * a stopping worker hands them to the global queue. Only the actor running
 * on a worker notes and is muted there, so the list needs no lock.
 */
#include "internal.h"

void isle__mute_note(isle__worker_t *w, isle_ref_t to, isle__mbox_t *mb) {
  uint64_t n = isle__mbox_backlog(mb, to >> 32);
  if (n != UINT64_MAX && n >= (uint64_t)ISLE__MUTE_HIGH * w->rt->cfg.batch)
    w->ctx.overloaded = to;
}

bool isle__mute(isle__worker_t *w, isle__actor_t *a, isle__mbox_t *own) {
  uint64_t high = (uint64_t)ISLE__MUTE_HIGH * w->rt->cfg.batch;
  if (w->nmuted == ISLE__MUTED_MAX ||
      isle__mbox_backlog(own, a->self >> 32) >= high)
    return false;
  w->muted[w->nmuted++] = (struct isle__muted_s){
      .actor = a, .on = w->ctx.overloaded, .since = isle__now_ns()};
  return true;
}

/* True when the receiver of m has ended or is down to the low mark. */
static bool receiver_caught_up(isle__worker_t *w,
                               const struct isle__muted_s *m) {
  uint64_t n =
      isle__mbox_backlog(&isle__slot_of(w->rt, m->on)->mbox, m->on >> 32);
  return n == UINT64_MAX || n <= (uint64_t)ISLE__MUTE_LOW * w->rt->cfg.batch;
}

void isle__mute_release(isle__worker_t *w, bool all) {
  uint64_t now = 0;
  for (unsigned i = 0; i < w->nmuted;) {
    struct isle__muted_s *m = &w->muted[i];
    bool go = all || receiver_caught_up(w, m);
    if (!go) {
      if (!now)
        now = isle__now_ns();
      go = now - m->since >= ISLE__MUTE_MAX_NS;
    }
    if (!go) {
      i++;
      continue;
    }
    isle__actor_t *a = m->actor;
    *m = w->muted[--w->nmuted];
    if (all)
      isle__sched_global(w->rt, a);
    else
      isle__sched_requeue(w, a);
  }
}
