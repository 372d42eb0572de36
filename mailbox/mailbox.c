/* isle — MIT licensed. */
/*
 * The mailbox: an intrusive multi-producer single-consumer queue (Dmitry
 * Vyukov's node-based design with an embedded stub), plus one atomic count
 * that tells a runtime when to schedule the consumer and carries capacity
 * and closing.
 *
 * Push (any thread):
 *   1. c = fetch_add(count, 1). Closed -> undo, ISLE_EDEAD; c >= capacity
 *      -> undo, ISLE_EFULL. c == 0 -> this push makes the mailbox
 *      non-empty (was_empty).
 *   2. msg->next = NULL; prev = exchange(head, msg); prev->next = msg.
 * Pop (consumer): follow `tail` along the next links; when the last linked
 * message is also the head, push the stub behind it so it can be detached.
 * Then fetch_sub(count, taken); reaching 0 is "now empty".
 *
 * The window. Between a producer's exchange and its store to prev->next,
 * the message is the head but not reachable from tail: the consumer sees
 * next == NULL while tail != head. It then returns "nothing now" (NULL)
 * instead of spinning: it never waits on a producer. Nothing is lost: the
 * producer counted its message in step 1, so the count stays above zero,
 * the consumer is not told "empty", and it (or the runtime, which keeps
 * the receiver scheduled while the count is above zero) pops again later
 * and finds the link. Nothing is reordered: the list order is the order of
 * the exchanges on head, a total order that contains each producer's
 * program order, and a message is only ever reached through its
 * predecessor's link. Only close must have every counted message, so only
 * close waits in the window (pause, then yield), for at most the
 * producers that were between steps 1 and 2 when it closed.
 *
 * Exactly one "was empty" per transition: the count's read-modify-writes
 * are totally ordered; the push that moves it from 0 to 1 is the only one
 * that reads 0 until a pop brings it back to 0, and that pop is the only
 * one told "now empty".
 *
 * Closing: fetch_or(count, CLOSED) returns n, the messages counted before
 * the close; every later push sees CLOSED and fails with the message still
 * its own. The consumer then pops exactly n messages and frees them.
 *
 * Atomics are C11 (the same xchg / lock add instructions as ck_pr_*), so
 * ThreadSanitizer sees every ordering; the tsan build tests this file.
 */
#include <sched.h> /* sched_yield, while close waits for a producer */
#include <stdlib.h>

#include "isle/heap.h"
#include "internal.h"

#define CLOSED ISLE__MB_CLOSED
#define COUNT(c) ((c) & ~CLOSED)

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* ===== Helpers (consumer) ============================================== */

/* Links `msg` at the head. Used for the stub; producers inline it. */
static void link_at_head(isle_mailbox_t *mb, isle_msg_t *msg) {
  /* Relaxed: published by the exchange below. */
  atomic_store_explicit(&msg->xnext, NULL, memory_order_relaxed);
  /* acq_rel: release publishes msg->xnext = NULL (and the payload) to the
   * next producer, whose exchange reads msg and then writes msg->xnext;
   * acquire pairs with the previous producer's release so our store to
   * prev->xnext comes after its NULL store. */
  isle_msg_t *prev =
      atomic_exchange_explicit(&mb->xhead, msg, memory_order_acq_rel);
  /* Release: pairs with the consumer's acquire load of prev->xnext, which
   * then sees msg's header and payload. */
  atomic_store_explicit(&prev->xnext, msg, memory_order_release);
}

/* The oldest message if one is linked, detached; NULL otherwise. Leaves
 * the count alone. */
static isle_msg_t *take_one(isle_mailbox_t *mb) {
  isle_msg_t *tail = mb->tail;
  /* Acquire: pairs with the release store of the link in link_at_head. */
  isle_msg_t *next = atomic_load_explicit(&tail->xnext, memory_order_acquire);
  if (tail == &mb->stub) {
    if (!next)
      return NULL;
    mb->tail = next;
    tail = next;
    next = atomic_load_explicit(&tail->xnext, memory_order_acquire);
  }
  if (next) {
    mb->tail = next;
    return tail;
  }
  /* `tail` is the last linked message. If a producer has already swapped
   * the head past it, its link is coming: try later (the window). */
  /* Acquire: orders this load after the one of tail->xnext above. */
  if (tail != atomic_load_explicit(&mb->xhead, memory_order_acquire))
    return NULL;
  /* `tail` is the head: put the stub behind it, then take it. */
  link_at_head(mb, &mb->stub);
  next = atomic_load_explicit(&tail->xnext, memory_order_acquire);
  if (next) {
    mb->tail = next;
    return tail;
  }
  /* A producer slipped in between: `tail` is linked to it soon. */
  return NULL;
}

/* Subtracts `n` taken messages; returns whether that emptied the mailbox. */
static bool count_taken(isle_mailbox_t *mb, uint64_t n) {
  /* acq_rel: release makes the consumer's work before this point visible
   * to the producer whose fetch_add then reads 0 and schedules the
   * consumer again; acquire is for symmetry with that producer. */
  uint64_t before =
      atomic_fetch_sub_explicit(&mb->xcount, n, memory_order_acq_rel);
  return COUNT(before) == n;
}

/* ===== Internal functions ============================================== */

int isle__mailbox_init(isle_mailbox_t *mb, size_t capacity) {
  if (!mb || capacity > ISLE_MAILBOX_MAX_CAPACITY)
    return ISLE_EINVAL;
  atomic_store_explicit(&mb->stub.xnext, NULL, memory_order_relaxed);
  mb->stub.sender = 0;
  mb->stub.type = 0;
  mb->stub.size = 0;
  mb->stub.flags = 0;
  mb->stub.reserved = 0;
  /* Relaxed: the mailbox is published to other threads by whatever hands
   * them its address. */
  atomic_store_explicit(&mb->xhead, &mb->stub, memory_order_relaxed);
  atomic_store_explicit(&mb->xcount, 0, memory_order_relaxed);
  mb->capacity = capacity;
  mb->tail = &mb->stub;
  return 0;
}

void isle__mailbox_deinit(isle_mailbox_t *mb) {
  if (!isle_mailbox_is_closed(mb))
    isle_mailbox_close_local(mb, NULL);
}

/* ===== Public functions ================================================ */

int isle_mailbox_new(size_t capacity, isle_mailbox_t **out) {
  if (!out || capacity > ISLE_MAILBOX_MAX_CAPACITY)
    return ISLE_EINVAL;
  isle_mailbox_t *mb = isle_aligned_alloc(ISLE__MB_CACHE_LINE, sizeof *mb);
  if (!mb)
    return ISLE_ENOMEM;
  isle__mailbox_init(mb, capacity);
  *out = mb;
  return 0;
}

void isle_mailbox_free(isle_mailbox_t *mb) {
  if (!mb)
    return;
  isle__mailbox_deinit(mb);
  isle_free(mb);
}

int isle_mailbox_push_mpsc(isle_mailbox_t *mb, isle_msg_t *msg,
                           bool *was_empty) {
  if (!mb || !msg)
    return ISLE_EINVAL;
  /* acq_rel: acquire pairs with the consumer's release in count_taken
   * (a push that reads 0 may schedule the consumer, which must see the
   * consumer's last state); release orders nothing we need but is free. */
  uint64_t before =
      atomic_fetch_add_explicit(&mb->xcount, 1, memory_order_acq_rel);
  if ((before & CLOSED) || (mb->capacity && before >= mb->capacity)) {
    /* Relaxed: undoing our own increment; no one waits on it. */
    atomic_fetch_sub_explicit(&mb->xcount, 1, memory_order_relaxed);
    return (before & CLOSED) ? ISLE_EDEAD : ISLE_EFULL;
  }
  link_at_head(mb, msg);
  if (was_empty)
    *was_empty = before == 0;
  return 0;
}

isle_msg_t *isle_mailbox_pop_local(isle_mailbox_t *mb, bool *now_empty) {
  isle_msg_t *m = take_one(mb);
  bool empty = m ? count_taken(mb, 1) : false;
  if (now_empty)
    *now_empty = empty;
  return m;
}

size_t isle_mailbox_pop_batch_local(isle_mailbox_t *mb, isle_msg_t **out,
                                    size_t max, bool *now_empty) {
  size_t n = 0;
  while (n < max) {
    isle_msg_t *m = take_one(mb);
    if (!m)
      break;
    out[n++] = m;
  }
  bool empty = n ? count_taken(mb, n) : false;
  if (now_empty)
    *now_empty = empty;
  return n;
}

int isle_mailbox_close_local(isle_mailbox_t *mb, size_t *drained) {
  /* acq_rel: the closed bit is a decision other threads act on; acquire
   * keeps the drain below after it. */
  uint64_t before =
      atomic_fetch_or_explicit(&mb->xcount, CLOSED, memory_order_acq_rel);
  if (before & CLOSED)
    return ISLE_ESTATE;
  uint64_t n = COUNT(before);
  unsigned spins = 0;
  for (uint64_t done = 0; done < n;) {
    isle_msg_t *m = take_one(mb);
    if (m) {
      isle_msg_free(m);
      done++;
      spins = 0;
    } else if (++spins < 64) {
      cpu_relax(); /* a producer is between its two steps */
    } else {
      spins = 0;
      sched_yield(); /* ... and was preempted there */
    }
  }
  /* Relaxed: after the close only failed pushes touch the count (and take
   * their increments back); the drained messages leave it. */
  atomic_fetch_sub_explicit(&mb->xcount, n, memory_order_relaxed);
  if (drained)
    *drained = (size_t)n;
  return 0;
}

size_t isle_mailbox_count(const isle_mailbox_t *mb) {
  /* Relaxed: a recent value is all the caller is promised. */
  uint64_t c = atomic_load_explicit(&((isle_mailbox_t *)mb)->xcount,
                                    memory_order_relaxed);
  return (size_t)COUNT(c);
}

bool isle_mailbox_is_closed(const isle_mailbox_t *mb) {
  /* Acquire: a caller that sees "closed" sees what the closer did before. */
  return atomic_load_explicit(&((isle_mailbox_t *)mb)->xcount,
                              memory_order_acquire) & CLOSED;
}
