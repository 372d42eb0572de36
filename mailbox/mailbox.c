/* isle — MIT licensed. */
/*
 * The mailbox: an intrusive multi-producer single-consumer queue (Dmitry
 * Vyukov's node-based design with an embedded stub), whose head word also
 * says when the consumer is idle (as in Pony's message queue), plus one
 * atomic count for capacity, closing and epochs.
 *
 * Push (any thread):
 *   1. c = fetch_add(count, 1). Closed or another epoch -> take the 1 back,
 *      ISLE_EDEAD; at capacity -> take it back, ISLE_EFULL. The message is
 *      untouched and still the caller's.
 *   2. msg->next = NULL; prev = exchange(head, msg); prev->next = msg.
 *      If prev carried the IDLE bit, this push ended the idle period: the
 *      caller schedules the consumer (was_idle / was_empty).
 * Take (consumer): follow `tail` along the links; when the last linked
 * message is also the head, push the stub behind it so the message can be
 * detached. After a batch, subtract what was taken from the count.
 * Idle (consumer): when the stub is the tail and nothing is linked behind
 * it, CAS the head from stub to stub|IDLE. The CAS fails if any producer
 * has swapped the head since: then there is a message, or one coming, and
 * the consumer must run again.
 *
 * Exactly one was_idle per idle period: the IDLE bit is set by one CAS and
 * cleared by the first exchange after it; every exchange reads the value
 * the previous one wrote, so only that first producer sees the bit.
 *
 * The window. Between a producer's exchange and its store to prev->next,
 * its message is the head but cannot be reached from the tail: the
 * consumer sees next == NULL while tail != head. Take then returns "nothing
 * now" (NULL) instead of spinning, and the idle CAS fails (the head is not
 * the stub), so the consumer stays scheduled and takes the message on a
 * later turn, when the link is there. Nothing is lost. Nothing is
 * reordered: the list order is the order of the exchanges on the head, a
 * total order containing each producer's program order, and a message is
 * reached only through its predecessor's link. Only close must wait in
 * the window (pause, then yield), for producers it already accepted.
 *
 * Closing: fetch_or(count, CLOSED); pushes after it refuse. Every accepted
 * message holds 1 in the count until it is taken, and refused pushes take
 * theirs back, so close takes and frees messages until the count is zero.
 *
 * Epochs let a runtime reuse one mailbox for successive actors in a slot
 * (isle__mbox_reopen): a push names the epoch it means, and a push for an
 * older epoch is refused at step 1, before it touches the queue.
 *
 * Atomics are C11 (the same xchg / lock xadd / cmpxchg as ck_pr_*), so
 * that ThreadSanitizer sees every ordering; the tsan build tests this.
 */
#include <sched.h> /* sched_yield, while close waits for a producer */
#include <stdlib.h>

#include "isle/heap.h"
#include "internal.h"

#define IDLE ISLE__MB_IDLE
#define CLOSED ISLE__MB_CLOSED
#define COUNT(c) ((c)&ISLE__MB_COUNT_MASK)
#define EPOCH(c) (((c) >> ISLE__MB_EPOCH_SHIFT) & ISLE__MB_EPOCH_MASK)

/* ===== Helpers ========================================================== */

/* Swaps `node` in as the head and links the previous head to it; returns
 * the previous head word (with its IDLE bit). */
static uintptr_t link_at_head(isle__mbox_t *mb, isle__mb_node_t *node) {
  /* Relaxed: published by the exchange below. */
  atomic_store_explicit(&node->xnext, NULL, memory_order_relaxed);
  /* acq_rel: release publishes node->xnext = NULL (and the payload) to the
   * next producer, whose exchange reads node and then writes node->xnext;
   * acquire pairs with the previous producer's release, so our store to
   * prev->xnext follows its NULL store, and with the consumer's release
   * CAS in isle__mbox_try_idle when we read the IDLE bit. */
  uintptr_t prev = atomic_exchange_explicit(&mb->xhead, (uintptr_t)node,
                                            memory_order_acq_rel);
  isle__mb_node_t *p = (isle__mb_node_t *)(prev & ~IDLE);
  /* The window (see above): the message is the head, not yet linked. */
  ISLE__CHAOS("mailbox.push_window");
  /* Release: pairs with the consumer's acquire load of p->xnext, which
   * then sees node's header and payload. */
  atomic_store_explicit(&p->xnext, node, memory_order_release);
  return prev;
}

static void spin_or_yield(unsigned *spins) {
  if (++*spins < 64) {
    isle__cpu_relax(); /* a producer is between its two steps */
  } else {
    *spins = 0;
    sched_yield(); /* ... and was preempted there */
  }
}

/* ===== The core ========================================================= */

void isle__mbox_init(isle__mbox_t *mb, uint64_t capacity) {
  atomic_store_explicit(&mb->stub.xnext, NULL, memory_order_relaxed);
  mb->tail = &mb->stub;
  /* Relaxed: the mailbox reaches other threads through whatever hands
   * them its address, which orders these stores. */
  atomic_store_explicit(&mb->xhead, (uintptr_t)&mb->stub | IDLE,
                        memory_order_relaxed);
  atomic_store_explicit(&mb->xcount, 0, memory_order_relaxed);
  atomic_store_explicit(&mb->xcapacity, (uint32_t)capacity,
                        memory_order_relaxed);
  atomic_store_explicit(&mb->xuntaken, 0, memory_order_relaxed);
}

int isle__mbox_push(isle__mbox_t *mb, isle_msg_t *msg, uint64_t epoch,
                    bool *was_idle) {
  /* A plain look first: a mailbox already closed (or reopened for another
   * actor) refuses without touching the count, so close never waits for
   * pushes that came after it. Relaxed: a stale "open" only means the
   * fetch_add below decides. */
  uint64_t seen = atomic_load_explicit(&mb->xcount, memory_order_relaxed);
  if ((seen & CLOSED) || EPOCH(seen) != (epoch & ISLE__MB_EPOCH_MASK))
    return ISLE_EDEAD;
  /* Acquire: pairs with the release CAS of isle__mbox_reopen, so an
   * accepted push sees the reopened queue. */
  ISLE__CHAOS("mailbox.push_count");
  uint64_t before =
      atomic_fetch_add_explicit(&mb->xcount, 1, memory_order_acquire);
  bool dead =
      (before & CLOSED) || EPOCH(before) != (epoch & ISLE__MB_EPOCH_MASK);
  /* Relaxed: the capacity came with the acquire above. */
  uint32_t cap = atomic_load_explicit(&mb->xcapacity, memory_order_relaxed);
  if (dead ||
      (cap && COUNT(before) >= cap && !(msg->flags & ISLE__MSG_F_NOCAP))) {
    /* Release: close waits for this to see the count at zero, and may then
     * free or reuse the mailbox; our reads of it come before. */
    atomic_fetch_sub_explicit(&mb->xcount, 1, memory_order_release);
    return dead ? ISLE_EDEAD : ISLE_EFULL;
  }
  isle__msg_handed_on(msg); /* accepted: the consumer's from the link on */
  uintptr_t prev = link_at_head(mb, &msg->link);
  if (was_idle)
    *was_idle = prev & IDLE;
  return 0;
}

isle_msg_t *isle__mbox_take(isle__mbox_t *mb) {
  isle__mb_node_t *tail = mb->tail;
  /* Acquire: pairs with the release store of the link in link_at_head. */
  isle__mb_node_t *next =
      atomic_load_explicit(&tail->xnext, memory_order_acquire);
  if (tail == &mb->stub) {
    if (!next)
      return NULL;
    mb->tail = next;
    tail = next;
    next = atomic_load_explicit(&tail->xnext, memory_order_acquire);
  }
  if (next) {
    mb->tail = next;
    return (isle_msg_t *)tail;
  }
  /* `tail` is the last linked message. If a producer has already swapped
   * the head past it, its link is coming: try later (the window). The
   * head cannot carry IDLE here: we are consuming. */
  if ((uintptr_t)tail != atomic_load_explicit(&mb->xhead, memory_order_acquire))
    return NULL;
  /* `tail` is the head: put the stub behind it, then take it. */
  link_at_head(mb, &mb->stub);
  next = atomic_load_explicit(&tail->xnext, memory_order_acquire);
  if (next) {
    mb->tail = next;
    return (isle_msg_t *)tail;
  }
  /* A producer slipped in between: `tail` is linked to it soon. */
  return NULL;
}

/* Relaxed RMWs on the count: it only bounds capacity and tells close when
 * the accepted messages are all taken; scheduling rides on the head. */
static void untaken_flush(isle__mbox_t *mb) {
  uint32_t u = atomic_load_explicit(&mb->xuntaken, memory_order_relaxed);
  if (u) {
    atomic_fetch_sub_explicit(&mb->xcount, u, memory_order_relaxed);
    atomic_store_explicit(&mb->xuntaken, 0, memory_order_relaxed);
  }
}

void isle__mbox_taken(isle__mbox_t *mb, uint64_t n) {
  if (!n)
    return;
  if (atomic_load_explicit(&mb->xcapacity, memory_order_relaxed)) {
    atomic_fetch_sub_explicit(&mb->xcount, n, memory_order_relaxed);
    return;
  }
  /* No capacity: defer (the count has 32 bits; flush well before). */
  uint32_t u =
      atomic_load_explicit(&mb->xuntaken, memory_order_relaxed) + (uint32_t)n;
  atomic_store_explicit(&mb->xuntaken, u, memory_order_relaxed);
  if (u >= (UINT32_C(1) << 24))
    untaken_flush(mb);
}

bool isle__mbox_try_idle(isle__mbox_t *mb) {
  if (mb->tail != &mb->stub)
    return false; /* a message waits at the tail */
  if (atomic_load_explicit(&mb->stub.xnext, memory_order_acquire))
    return false; /* one is linked behind the stub */
  uintptr_t stub = (uintptr_t)&mb->stub;
  /* acq_rel: release pairs with the acquire exchange of the producer that
   * reads IDLE and schedules the consumer again: whoever runs it next sees
   * everything the consumer did. Fails when a producer swapped the head
   * (it is mid-push: the consumer must run again). */
  return atomic_compare_exchange_strong_explicit(&mb->xhead, &stub, stub | IDLE,
                                                 memory_order_acq_rel,
                                                 memory_order_relaxed);
}

uint64_t isle__mbox_close(isle__mbox_t *mb,
                          void (*drain)(isle_msg_t *msg, void *arg),
                          void *arg) {
  untaken_flush(mb); /* close waits for the true count to reach zero */
  /* seq_cst: pushes ordered after this RMW see CLOSED and refuse; and see
   * the header on the Dekker pattern callers build on it. */
  atomic_fetch_or_explicit(&mb->xcount, CLOSED, memory_order_seq_cst);
  uint64_t drained = 0;
  unsigned spins = 0;
  for (;;) {
    isle_msg_t *m = isle__mbox_take(mb);
    if (m) {
      drained++;
      /* Relaxed: see untaken_flush. Before the drain, which may send
       * (and so push) elsewhere; the count is ours either way. */
      atomic_fetch_sub_explicit(&mb->xcount, 1, memory_order_relaxed);
      if (drain)
        drain(m, arg);
      else
        isle_free(m);
      spins = 0;
      continue;
    }
    /* Each accepted message holds 1 in the count until taken; refused
     * pushes take theirs back. Zero: nothing accepted is left. */
    if (COUNT(atomic_load_explicit(&mb->xcount, memory_order_acquire)) == 0)
      return drained;
    spin_or_yield(&spins);
  }
}

void isle__mbox_reopen(isle__mbox_t *mb, uint64_t epoch, uint64_t capacity) {
  atomic_store_explicit(&mb->stub.xnext, NULL, memory_order_relaxed);
  mb->tail = &mb->stub;
  /* Not idle: pushes queue without scheduling until the caller, done with
   * its setup, calls isle__mbox_try_idle. */
  atomic_store_explicit(&mb->xhead, (uintptr_t)&mb->stub, memory_order_relaxed);
  atomic_store_explicit(&mb->xcapacity, (uint32_t)capacity,
                        memory_order_relaxed);
  atomic_store_explicit(&mb->xuntaken, 0, memory_order_relaxed);
  /* Keep the increments refused pushes have yet to take back; clear
   * CLOSED; set the epoch. Release: pairs with the acquire fetch_add of
   * the pushes this reopening lets in (the stores above come first). */
  uint64_t v = atomic_load_explicit(&mb->xcount, memory_order_relaxed);
  uint64_t nv;
  do {
    nv = ((epoch & ISLE__MB_EPOCH_MASK) << ISLE__MB_EPOCH_SHIFT) | COUNT(v);
  } while (!atomic_compare_exchange_weak_explicit(
      &mb->xcount, &v, nv, memory_order_release, memory_order_relaxed));
}

bool isle__mbox_is_closed(const isle__mbox_t *mb) {
  /* Acquire: a caller that sees "closed" sees what the closer did before. */
  return atomic_load_explicit(&((isle__mbox_t *)mb)->xcount,
                              memory_order_acquire) &
         CLOSED;
}

uint64_t isle__mbox_count(const isle__mbox_t *mb) {
  /* Relaxed: a recent value is all the caller is promised. */
  isle__mbox_t *m = (isle__mbox_t *)mb;
  uint64_t c = COUNT(atomic_load_explicit(&m->xcount, memory_order_relaxed));
  uint64_t u = atomic_load_explicit(&m->xuntaken, memory_order_relaxed);
  return c > u ? c - u : 0;
}

/* ===== Public functions ================================================ */

int isle_mailbox_new(size_t capacity, isle_mailbox_t **out) {
  if (!out || capacity > ISLE_MAILBOX_MAX_CAPACITY)
    return ISLE_EINVAL;
  isle_mailbox_t *mb = isle_aligned_alloc(64, sizeof *mb);
  if (!mb)
    return ISLE_ENOMEM;
  isle__mbox_init(&mb->core, capacity);
  *out = mb;
  return 0;
}

void isle_mailbox_free(isle_mailbox_t *mb) {
  if (!mb)
    return;
  if (!isle__mbox_is_closed(&mb->core))
    isle__mbox_close(&mb->core, NULL, NULL);
  isle_free(mb);
}

int isle_mailbox_push_mpsc(isle_mailbox_t *mb, isle_msg_t *msg,
                           bool *was_empty) {
  if (!mb || !msg)
    return ISLE_EINVAL;
  return isle__mbox_push(&mb->core, msg, 0, was_empty);
}

isle_msg_t *isle_mailbox_pop_local(isle_mailbox_t *mb, bool *now_empty) {
  isle_msg_t *m = isle__mbox_take(&mb->core);
  if (m)
    isle__mbox_taken(&mb->core, 1);
  bool idle = isle__mbox_try_idle(&mb->core);
  if (now_empty)
    *now_empty = idle;
  return m;
}

size_t isle_mailbox_pop_batch_local(isle_mailbox_t *mb, isle_msg_t **out,
                                    size_t max, bool *now_empty) {
  size_t n = 0;
  while (n < max) {
    isle_msg_t *m = isle__mbox_take(&mb->core);
    if (!m)
      break;
    out[n++] = m;
  }
  isle__mbox_taken(&mb->core, n);
  bool idle = isle__mbox_try_idle(&mb->core);
  if (now_empty)
    *now_empty = idle;
  return n;
}

int isle_mailbox_close_local(isle_mailbox_t *mb, size_t *drained) {
  if (isle__mbox_is_closed(&mb->core))
    return ISLE_ESTATE;
  uint64_t n = isle__mbox_close(&mb->core, NULL, NULL);
  if (drained)
    *drained = (size_t)n;
  return 0;
}

size_t isle_mailbox_count(const isle_mailbox_t *mb) {
  return (size_t)isle__mbox_count(&mb->core);
}

bool isle_mailbox_is_closed(const isle_mailbox_t *mb) {
  return isle__mbox_is_closed(&mb->core);
}
