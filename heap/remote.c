/* isle — MIT licensed. */
/*
 * Remote frees: a small block freed by a thread that does not own its span.
 *
 * The freeing thread adds the block to a batch it keeps for that span (32
 * slots in its heap record, direct-mapped by span address). A full batch
 * (ISLE_REMOTE_BATCH blocks), an evicted one, or any batch at a flush point
 * (the freeing thread's allocation slow path, isle_heap_collect, thread
 * exit) goes to the span's atomic list `xfree` with one CAS. The owner
 * takes a whole list with one exchange when its span runs dry
 * (isle__span_collect). Batching per span needs no knowledge of the owner,
 * so a span can change owner (abandonment, adoption) while blocks of it
 * travel. docs/heap.md gives the figures against the unbatched design (one
 * CAS per block; build with -DISLE_REMOTE_BATCH=1).
 *
 * Invariant: a block in a batch or on `xfree` still counts in its span's
 * `used` (internal.h), so a span with blocks in flight is never released.
 *
 * Threads: a heap's batches belong to its owner (functions ending in
 * _local); `xfree` is pushed by any thread and emptied by the span's owner
 * or by the one thread that holds an abandoned span (a sweep).
 */
#include "internal.h"
#include "track.h"

/* ===== Taking remote frees in (owner) ================================== */

uint32_t isle__span_collect(isle__span_t *s) {
  /* Relaxed peek first: the exchange would take the line exclusive even
   * when there is nothing to take. */
  if (!atomic_load_explicit(&s->xfree, memory_order_relaxed))
    return 0;
  /* Acquire: pairs with the release CAS in xfree_push, making the links
   * the freeing thread wrote visible here. */
  ISLE__CHAOS("heap.remote_collect");
  isle__block_t *list =
      atomic_exchange_explicit(&s->xfree, NULL, memory_order_acquire);
  /* Debug builds: a bounded walk first, so that a cycle or a foreign
   * pointer is reported instead of looped on below. */
  isle__debug_check_taken(s, list);
  /* The walk (to count and find the tail) also pulls the blocks into this
   * core's cache in one tight loop, ahead of the allocations that will
   * write them; adopting the list without a walk (its count carried
   * beside it) only moves those misses into the owner's writes to the
   * blocks it allocates.
   * Figures: docs/decisions/0002-remote-frees-taken-in-by-a-walk.md. */
  uint32_t n = 0;
  isle__block_t *tail = list;
  for (isle__block_t *b = list; b; b = isle__link_get(b)) {
    tail = b;
    n++;
  }
  if (tail) {
    isle__link_set(tail, s->free);
    s->free = list;
  }
  s->used = (uint16_t)(s->used - n);
  return n;
}

void isle__note_collected_local(isle__heap_t *h, isle__span_t *s, uint32_t n) {
  if (!n)
    return;
  isle__counter_add(&h->cls[s->cls].xfrees, n);
  isle__counter_add(&h->xremote_received, n);
  isle__counter_add(&h->xremote_received_bytes, (uint64_t)n * s->block_size);
}

/* ===== Sending (the freeing thread) ==================================== */

/* The flow-matrix column of blocks owned by `owner` (NULL: abandoned). */
static unsigned flow_col(isle__heap_t *owner) {
  if (!owner)
    return 0;
  /* Relaxed: see xid in internal.h; records are never unmapped, so the
   * pointer stays readable even if the span changes owner meanwhile. */
  uint64_t id = atomic_load_explicit(&owner->xid, memory_order_relaxed);
  return id <= ISLE_HEAP_FLOW_MAX_ID ? (unsigned)id : 0;
}

void isle__note_sent_local(isle__heap_t *h, isle__heap_t *owner,
                           uint64_t blocks, uint64_t bytes) {
  unsigned col = flow_col(owner);
  isle__counter_add(&h->xremote_sent, blocks);
  isle__counter_add(&h->xremote_sent_bytes, bytes);
  isle__counter_add(&h->xflow_blocks[col], blocks);
  isle__counter_add(&h->xflow_bytes[col], bytes);
}

/* Pushes the chain head..tail (linked by the caller) onto s's remote list
 * with one CAS. Any thread. */
static void xfree_push(isle__span_t *s, isle__block_t *head,
                       isle__block_t *tail) {
  isle__block_t *old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
  do {
    ISLE__CHAOS("heap.remote_push");
    isle__link_set(tail, old);
    /* Release: pairs with the acquire exchange in isle__span_collect; the
     * owner must see the links written before. */
  } while (!atomic_compare_exchange_weak_explicit(
      &s->xfree, &old, head, memory_order_release, memory_order_relaxed));
}

static void batch_flush(isle__heap_t *h, isle__remote_batch_t *rb) {
  isle__span_t *s = rb->span;
  if (!s)
    return;
  /* Before the push: once the blocks are on xfree the owner may take them
   * in and give the span back. Relaxed: only the id is wanted, and an
   * owner that changes meanwhile (abandonment, adoption) is still a heap
   * that held these blocks. */
  isle__note_sent_local(h,
                        atomic_load_explicit(&s->xowner, memory_order_relaxed),
                        rb->count, (uint64_t)rb->count * s->block_size);
  xfree_push(s, rb->head, rb->tail);
  isle__counter_add(&h->xremote_batches, 1);
  rb->span = NULL;
  rb->head = rb->tail = NULL;
  rb->count = 0;
}

void isle__batches_flush_local(isle__heap_t *h) {
  for (unsigned i = 0; i < ISLE__REMOTE_SLOTS; i++)
    if (h->remote[i].span)
      batch_flush(h, &h->remote[i]);
}

static void free_remote_local(isle__heap_t *h, isle__span_t *s,
                              isle__block_t *b) {
  /* Fibonacci hashing: span descriptors sit at regular strides (128 bytes
   * times the span's pages), which a plain modulo would fold together. */
  uint64_t k = ((uint64_t)(uintptr_t)s >> 7) * UINT64_C(0x9e3779b97f4a7c15);
  isle__remote_batch_t *rb = &h->remote[k >> (64 - ISLE__REMOTE_SLOTS_LOG2)];
  if (rb->span != s) {
    batch_flush(h, rb);
    rb->span = s;
    rb->tail = b;
    isle__link_set(b, NULL);
  } else {
    isle__link_set(b, rb->head);
  }
  rb->head = b;
  rb->count++;
  if (rb->count >= ISLE_REMOTE_BATCH)
    batch_flush(h, rb);
}

/* A small block of another heap (or of an abandoned span): the tail of
 * isle_free's slow path, reached by a tail call. */
void isle__free_remote(isle__heap_t *h, isle__span_t *s, void *p) {
  isle__debug_on_free(p);
  isle__track_free(p, s->block_size);
  if (h == &isle__empty_heap) {
    /* This thread has no heap: it never allocated, or it is exiting and
     * its heap is already retired (a later thread-exit destructor). Do not
     * make one just to batch: a heap made that late might never be
     * retired. Push the block alone; it counts in `used` until its owner
     * takes it in, like any remote free. */
    xfree_push(s, p, p);
    return;
  }
  free_remote_local(h, s, (isle__block_t *)p);
}
