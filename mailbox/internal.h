/* isle — MIT licensed. */
/*
 * Private layout of messages and mailboxes, for mailbox/ and the layers
 * above it (the actor layer embeds a mailbox in each actor). Never
 * installed.
 */
#ifndef ISLE_MAILBOX_INTERNAL_H
#define ISLE_MAILBOX_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "isle/error.h"
#include "isle/mailbox.h"

#define ISLE__MB_CACHE_LINE 64

/* The message header. `xnext` is the mailbox link: written by the producer
 * that queues the message (NULL) and by the next producer (the successor),
 * read by the consumer. Everything else belongs to whoever owns the
 * message. */
struct isle_msg_s {
  _Atomic(struct isle_msg_s *) xnext;
  uint64_t sender;  /* the sending actor's handle, 0 for none (actor layer) */
  uint32_t type;
  uint32_t size;    /* payload bytes */
  uint32_t flags;   /* ISLE__MSG_* */
  uint32_t reserved;
};

_Static_assert(sizeof(struct isle_msg_s) == ISLE_MSG_HEADER_SIZE,
               "the header size is part of the API");
_Static_assert(ISLE_MSG_HEADER_SIZE % 16 == 0,
               "payloads keep the heap's 16-byte alignment");

/* Bit 63 of the count: the mailbox is closed. */
#define ISLE__MB_CLOSED (UINT64_C(1) << 63)

/*
 * Producers' fields and the consumer's on separate cache lines.
 *
 * xcount: messages pushed and not yet popped, plus ISLE__MB_CLOSED. A push
 *   adds 1 before it links its message (and takes it back if it must
 *   fail), a pop subtracts what it took after taking it. So the count is
 *   never below the number of messages linked or about to be, and a push
 *   that finds 0 is the one that made the mailbox non-empty.
 * xhead: the last message pushed (or the stub); producers swap themselves
 *   in with one exchange, then link the previous head to themselves.
 * tail:  the consumer's next message (or the stub). Consumer only.
 */
struct isle_mailbox_s {
  _Alignas(ISLE__MB_CACHE_LINE) _Atomic(struct isle_msg_s *) xhead;
  _Atomic uint64_t xcount;
  uint64_t capacity; /* 0: none; read-only after creation */
  _Alignas(ISLE__MB_CACHE_LINE) struct isle_msg_s *tail;
  struct isle_msg_s stub; /* stands in when the mailbox is drained */
};

/* Sets up caller storage as an empty open mailbox (0 or ISLE_EINVAL). */
int isle__mailbox_init(struct isle_mailbox_s *mb, size_t capacity);
/* Closes (if open) and leaves the storage to the caller. Consumer. */
void isle__mailbox_deinit(struct isle_mailbox_s *mb);

#endif /* ISLE_MAILBOX_INTERNAL_H */
