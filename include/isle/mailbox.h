/* isle — MIT licensed. */
/*
 * Messages and mailboxes.
 *
 * A message is one heap block: a 32-byte header (mailbox link, sender,
 * type, payload size, flags) followed by the payload, aligned to 16 bytes.
 * It is allocated from the calling thread's heap and freed, usually by
 * another thread, back to it.
 *
 * A mailbox is a lock-free queue with many producers and one consumer. A
 * push never blocks and never loops: one atomic add (the message count,
 * which also carries capacity and closing) and one atomic exchange. It
 * reports whether the mailbox went from empty to non-empty, exactly once
 * per such transition, so a runtime knows when to schedule the receiver.
 * Messages from one producer come out in the order that producer pushed
 * them.
 *
 * Ownership: a successful push hands the message to the mailbox; a failed
 * push (ISLE_EFULL, ISLE_EDEAD) leaves it with the caller, untouched. A pop
 * hands the message to the consumer, who frees it (isle_msg_free) or passes
 * it on. Closing frees every message still queued.
 *
 * Threads: functions ending in _mpsc may be called by any thread at once;
 * functions ending in _local only by the mailbox's single consumer, one
 * call at a time; the others by any thread.
 */
#ifndef ISLE_MAILBOX_H
#define ISLE_MAILBOX_H

#include <stdbool.h> /* bool */
#include <stddef.h>  /* size_t */
#include <stdint.h>  /* uint32_t */

#include "isle/api.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ===== Messages — any thread ========================================== */

typedef struct isle_msg_s isle_msg_t;

/* Bytes in front of the payload. */
#define ISLE_MSG_HEADER_SIZE 32
/* Largest payload of one message. */
#define ISLE_MSG_MAX_SIZE ((size_t)UINT32_MAX - ISLE_MSG_HEADER_SIZE)

/* A message of type `type` with `size` payload bytes (uninitialised), from
 * the calling thread's heap; NULL with errno ENOMEM at the heap limit, or
 * EINVAL when `size` > ISLE_MSG_MAX_SIZE. Ownership: the caller's. */
ISLE_API isle_msg_t *isle_msg_new(uint32_t type, size_t size);

/* Frees a message the caller owns (a popped one, or one a push refused).
 * NULL is ignored. Any thread. */
ISLE_API void isle_msg_free(isle_msg_t *msg);

/* The payload: ISLE_MSG_HEADER_SIZE bytes past the header, aligned to 16.
 * Ownership: borrowed from the message. */
static inline void *isle_msg_data(isle_msg_t *msg) {
  return (char *)msg + ISLE_MSG_HEADER_SIZE;
}

/* The payload size and the type given to isle_msg_new. */
ISLE_API size_t isle_msg_size(const isle_msg_t *msg);
ISLE_API uint32_t isle_msg_type(const isle_msg_t *msg);

/* ===== Mailboxes ======================================================= */

typedef struct isle_mailbox_s isle_mailbox_t;

/* Largest capacity a mailbox accepts. */
#define ISLE_MAILBOX_MAX_CAPACITY ((size_t)1 << 30)

/* A new, empty, open mailbox holding at most `capacity` messages (0: no
 * limit). Returns 0 and stores it in *out, ISLE_EINVAL for a NULL `out` or
 * a capacity above ISLE_MAILBOX_MAX_CAPACITY, or ISLE_ENOMEM. Ownership:
 * the caller's; free with isle_mailbox_free. Any thread. */
ISLE_API int isle_mailbox_new(size_t capacity, isle_mailbox_t **out);

/* Closes the mailbox if it is open (freeing what is queued) and frees it.
 * No producer may use it any more. NULL is ignored. Consumer thread. */
ISLE_API void isle_mailbox_free(isle_mailbox_t *mb);

/* Appends `msg` (which the caller owns and must not have queued
 * elsewhere). Returns 0: the mailbox owns it now, and *was_empty (when not
 * NULL) tells whether this push made the mailbox non-empty: exactly one
 * push per transition sees true. ISLE_EFULL: the mailbox holds `capacity`
 * messages; ISLE_EDEAD: it is closed; ISLE_EINVAL: NULL argument. On any
 * error `msg` stays the caller's, untouched. Never blocks. Any thread. */
ISLE_API int isle_mailbox_push_mpsc(isle_mailbox_t *mb, isle_msg_t *msg,
                                    bool *was_empty);

/* The oldest message, or NULL when none can be taken now (the mailbox is
 * empty, or a producer is between its two steps: then a later pop gets the
 * message). *now_empty (when not NULL) is true when this call made the
 * mailbox idle, so that the next push will report was_empty: the call that
 * takes the last message, or, if a producer was mid-push then, the first
 * later call that finds the mailbox empty. Exactly one call per idle
 * period reports it. Ownership: the message is the caller's. Consumer. */
ISLE_API isle_msg_t *isle_mailbox_pop_local(isle_mailbox_t *mb,
                                            bool *now_empty);

/* Up to `max` messages into out[0..), oldest first, with one update of
 * the shared count; returns how many. *now_empty as for
 * isle_mailbox_pop_local. Ownership: the messages are the caller's.
 * Consumer thread. */
ISLE_API size_t isle_mailbox_pop_batch_local(isle_mailbox_t *mb,
                                             isle_msg_t **out, size_t max,
                                             bool *now_empty);

/* Closes the mailbox: later pushes fail with ISLE_EDEAD; every message
 * pushed before the close is freed (waiting, briefly, for producers that
 * are between their two steps). *drained (when not NULL) gets how many.
 * Returns 0, or ISLE_ESTATE when it was already closed. Consumer thread. */
ISLE_API int isle_mailbox_close_local(isle_mailbox_t *mb, size_t *drained);

/* Messages pushed and not yet popped; exact when no one is pushing or
 * popping, a recent value otherwise. Any thread. */
ISLE_API size_t isle_mailbox_count(const isle_mailbox_t *mb);

/* Whether isle_mailbox_close_local was called. Any thread. */
ISLE_API bool isle_mailbox_is_closed(const isle_mailbox_t *mb);

#ifdef __cplusplus
}
#endif
#endif /* ISLE_MAILBOX_H */
