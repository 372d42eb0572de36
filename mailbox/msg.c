/* isle — MIT licensed. */
/*
 * Message blocks: a header in front of the payload, in one heap block from
 * the calling thread's heap. Any thread.
 */
#include <errno.h>
#include <stddef.h>

#include "isle/heap.h"
#include "internal.h"

isle_msg_t *isle_msg_new(uint32_t type, size_t size) {
  if (size > ISLE_MSG_MAX_SIZE) {
    errno = EINVAL;
    return NULL;
  }
  isle_msg_t *m = isle_malloc(ISLE_MSG_HEADER_SIZE + size);
  if (!m)
    return NULL;
  /* Relaxed: the message is private until a push publishes it. */
  atomic_store_explicit(&m->link.xnext, NULL, memory_order_relaxed);
  m->sender = 0;
  m->type = type;
  m->size = (uint32_t)size;
  m->flags = 0;
  m->reserved = 0;
  return m;
}

_Thread_local isle_msg_t *isle__msg_borrowed
    __attribute__((tls_model("initial-exec")));

void isle_msg_free(isle_msg_t *msg) {
  if (msg && msg == isle__msg_borrowed)
    isle__msg_borrowed = NULL; /* freed by the borrower: not again */
  isle_free(msg);
}

size_t isle_msg_size(const isle_msg_t *msg) {
  return msg->size;
}

uint32_t isle_msg_type(const isle_msg_t *msg) {
  return msg->type;
}
