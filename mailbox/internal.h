/* isle — MIT licensed. */
/*
 * Private layout of messages and mailboxes, for mailbox/ and the layers
 * above it (the actor layer embeds a mailbox in each actor). Never
 * installed.
 *
 * Map of the layer (on heap/)
 *   msg.c      messages: a heap block with a header (type, size, flags,
 *              sender, the mailbox link); ownership on receive
 *              (isle__msg_handed_on)
 *   mailbox.c  the intrusive MPSC mailbox: one exchange per push, the
 *              consumer's take, counts, capacity, epochs for slot reuse,
 *              close and reopen; the public isle_mailbox_t
 * Who touches what: producers only the tail exchange and their message's
 * link; the one consumer everything else (mailbox.c says why that is
 * enough). The SPIN models in tests/mailbox/ check it.
 */
#ifndef ISLE_MAILBOX_INTERNAL_H
#define ISLE_MAILBOX_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "heap/chaos.h"
#include "isle/error.h"
#include "isle/mailbox.h"

#define ISLE__MB_CACHE_LINE 64

/* The link a mailbox threads through its messages (and its stub). */
typedef struct isle__mb_node_s {
  _Atomic(struct isle__mb_node_s *) xnext;
} isle__mb_node_t;

/* The message header. `link` is the mailbox's: written by the producer
 * that queues the message (NULL) and by the next producer (the successor),
 * read by the consumer. Everything else belongs to whoever owns the
 * message. */
struct isle_msg_s {
  isle__mb_node_t link; /* first: a node pointer is a message pointer */
  uint64_t sender;      /* the sending actor's handle, 0 for none */
  uint32_t type;
  uint32_t size; /* payload bytes */
  uint32_t flags;
  uint32_t reserved;
};

_Static_assert(sizeof(struct isle_msg_s) == ISLE_MSG_HEADER_SIZE,
               "the header size is part of the API");
_Static_assert(ISLE_MSG_HEADER_SIZE % 16 == 0,
               "payloads keep the heap's 16-byte alignment");

/*
 * The queue core, 40 bytes, embedded in each actor's slot (compactness
 * matters more there than keeping producers' and consumer's fields on
 * separate lines).
 *
 * xhead:  the last node pushed, or the stub; bit 0 (ISLE__MB_IDLE) set
 *         means "drained and not scheduled": the producer whose exchange
 *         returns it is the one that makes the mailbox non-empty.
 * xcount: messages accepted and not yet taken (bits 0..31), the epoch
 *         (bits 32..62) and ISLE__MB_CLOSED (bit 63). A push adds 1, then
 *         checks closed, epoch and capacity and takes its 1 back if it
 *         must refuse. Refused pushes can inflate the count for a moment;
 *         nothing waits for it to be exact except close, which waits for
 *         those increments to be taken back.
 * tail:   the consumer's next node (or the stub). Consumer only.
 * xuntaken: see below; COUNT(xcount) - xuntaken is the true count.
 */
typedef struct isle__mbox_s {
  _Atomic(uintptr_t) xhead;
  _Atomic uint64_t xcount;
  isle__mb_node_t *tail;
  isle__mb_node_t stub;
  _Atomic uint32_t xcapacity; /* 0: none; set at (re)open */
  /* Consumer-written (relaxed stores): messages taken but not yet
   * subtracted from xcount. Without a capacity the count matters only to
   * close, so the consumer subtracts in bulk (at 2^24, or when closing)
   * and spares the producers' line one RMW per turn. */
  _Atomic uint32_t xuntaken;
} isle__mbox_t;

_Static_assert(sizeof(isle__mbox_t) == 40, "the core is 40 bytes");

/* The message the calling thread's running receive borrows (the actor
 * layer sets it around each receive), or NULL. isle_msg_free clears it
 * when it frees that message, so the runtime knows not to free it again:
 * a receive may free its message itself, e.g. after a failed send of it. */
extern _Thread_local isle_msg_t *isle__msg_borrowed;

/* `m` now belongs to someone else (sent, kept, queued for a timer or a
 * write): if it is the borrowed message, the runtime must not free it.
 * Call before handing it over, while it is still the caller's. */
static inline void isle__msg_handed_on(isle_msg_t *m) {
  if (m == isle__msg_borrowed)
    isle__msg_borrowed = NULL;
}

/* A spin-wait hint (pause on x86), for loops that wait on another thread. */
static inline void isle__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Message flags (isle_msg_s.flags). Bits 0..7 are the mailbox's, the
 * layers above use the rest. NOCAP: accepted beyond the capacity (the
 * runtime's control messages must never be lost to a full mailbox). */
#define ISLE__MSG_F_NOCAP 1u

#define ISLE__MB_IDLE ((uintptr_t)1)
#define ISLE__MB_CLOSED (UINT64_C(1) << 63)
#define ISLE__MB_EPOCH_SHIFT 32
#define ISLE__MB_EPOCH_MASK ((UINT64_C(1) << 31) - 1)
#define ISLE__MB_COUNT_MASK ((UINT64_C(1) << ISLE__MB_EPOCH_SHIFT) - 1)

/* The public mailbox: a core at the start of its own cache line. */
struct isle_mailbox_s {
  _Alignas(64) isle__mbox_t core;
};

/* ----- mailbox.c: the core, for the layers above ------------------------ */

/* An empty, open, idle mailbox of epoch 0. */
void isle__mbox_init(isle__mbox_t *mb, uint64_t capacity);

/* Appends `msg` if the mailbox is open and its epoch is `epoch` (masked
 * with ISLE__MB_EPOCH_MASK). 0: queued; *was_idle tells whether this push
 * ended the idle state (exactly one push per idle period sees true: that
 * caller schedules the consumer). ISLE_EDEAD: closed or another epoch;
 * ISLE_EFULL: at capacity; `msg` stays the caller's either way. Any thread. */
int isle__mbox_push(isle__mbox_t *mb, isle_msg_t *msg, uint64_t epoch,
                    bool *was_idle);

/* About how many messages wait in `mb` if it is open at `epoch`, else
 * UINT64_MAX (closed or reused). A hint for flow control: relaxed loads,
 * the consumer's deferred count may lag by a turn. Any thread. */
static inline uint64_t isle__mbox_backlog(const isle__mbox_t *mb,
                                          uint64_t epoch) {
  uint64_t c = atomic_load_explicit(&mb->xcount, memory_order_relaxed);
  if ((c & ISLE__MB_CLOSED) ||
      (c >> ISLE__MB_EPOCH_SHIFT & ISLE__MB_EPOCH_MASK) !=
          (epoch & ISLE__MB_EPOCH_MASK))
    return UINT64_MAX;
  uint64_t n = c & ISLE__MB_COUNT_MASK;
  uint32_t u = atomic_load_explicit(&mb->xuntaken, memory_order_relaxed);
  return n > u ? n - u : 0;
}

/* The oldest linked message, detached, or NULL (empty, or a producer is
 * between its exchange and its link). Does not touch the count: call
 * isle__mbox_taken after a batch. Consumer. */
isle_msg_t *isle__mbox_take(isle__mbox_t *mb);

/* Records `n` taken messages: subtracts them from the count at once when
 * the mailbox has a capacity, in bulk otherwise. Consumer. */
void isle__mbox_taken(isle__mbox_t *mb, uint64_t n);

/* If nothing is queued, marks the mailbox idle and returns true: the next
 * push will report was_idle. Returns false when messages are queued or a
 * producer is mid-push (the consumer must run again). Consumer. */
bool isle__mbox_try_idle(isle__mbox_t *mb);

/* Closes: later pushes fail with ISLE_EDEAD. Hands every message accepted
 * before to `drain(msg, arg)`, which owns it (NULL drain: the message is
 * freed), waiting for producers between their steps; returns how many.
 * The caller must have called isle__mbox_taken for what it took. The
 * closing RMW is sequentially consistent, so a thread that sets a flag and
 * then sees the mailbox open is seen by a closer that reads the flag after
 * closing (the actor layer's name registry relies on it). Consumer. */
uint64_t isle__mbox_close(isle__mbox_t *mb,
                          void (*drain)(isle_msg_t *msg, void *arg), void *arg);

/* Reopens a closed, drained mailbox, empty, with a new epoch and capacity,
 * and NOT idle: pushes queue without scheduling anyone until the caller,
 * done with its setup, calls isle__mbox_try_idle (and schedules the
 * consumer itself if that fails). Release: a producer whose push is
 * accepted sees everything the caller wrote before. Consumer. */
void isle__mbox_reopen(isle__mbox_t *mb, uint64_t epoch, uint64_t capacity);

bool isle__mbox_is_closed(const isle__mbox_t *mb);
uint64_t isle__mbox_count(const isle__mbox_t *mb);

#endif /* ISLE_MAILBOX_INTERNAL_H */
