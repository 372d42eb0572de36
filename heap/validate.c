/* isle — MIT licensed. */
/*
 * Heap validators (ISLE_DEBUG builds): the invariants written on
 * isle__span_s and isle__heap_s (internal.h), checked by walking the lists
 * they constrain, as mimalloc's mi_page_is_valid does.
 *
 * Per small span: used + |free| == extended <= capacity (the invariant on
 * the struct, the capacity - extended uncarved blocks cancelled out); every
 * block on `free` and on `xfree` lies in the span's carved part, on a block
 * boundary, and appears once in the two lists together (a block waiting on
 * `xfree` still counts in `used`, so it is in neither term of the sum).
 * Per heap: each class ring is a well-linked circle of `spans` spans of
 * that class, owned by the heap and tagged with its thread; each pending
 * remote batch is a chain of `count` blocks of its span ending at `tail`.
 *
 * Every walk is bounded: a link is followed only once the block holding it
 * was found inside the span and not seen before, so a walk takes at most
 * capacity + 1 steps, and a cycle or a pointer out of the span is reported
 * as corruption rather than looped on or dereferenced.
 *
 * On corruption: "isle heap: corrupt span <span> (...): <what>: <block>"
 * (or "corrupt heap") on stderr, then abort(), like isle__heap_abort.
 *
 * Threads: the caller owns the spans it checks, or holds them alone (a
 * sweep of abandoned spans). Other threads may push onto `xfree` meanwhile:
 * the walk starts from one acquire load of its head (pairing with the
 * release CAS in remote.c's xfree_push), and the blocks reachable from that
 * head are written by nobody until the owner takes them, since a pusher
 * writes only its own batch's tail link, before the CAS publishes it.
 *
 * Cost: O(capacity) per check, at span granularity (a refill, a sweep, a
 * release), so on the order of one step per block handed out, plus a
 * bitmap of capacity bits on the stack. Without ISLE_DEBUG this file
 * compiles to isle__heap_validate returning 0, and the hooks in track.h to
 * nothing.
 */
#include <stdio.h>  /* fprintf to stderr */
#include <stdlib.h> /* abort */
#include <string.h>

#include "internal.h"
#include "track.h"

#if ISLE_DEBUG

/* One bit per block of a span (capacity is a uint16_t). */
#define SEEN_WORDS (((size_t)UINT16_MAX + 1) / 64)

typedef struct walk_s {
  const isle__span_t *s;
  size_t limit;              /* blocks that may be on a list: carved ones */
  uint64_t seen[SEEN_WORDS]; /* blocks met on a list so far */
} walk_t;

/* ===== Reporting ======================================================== */

_Noreturn static void span_corrupt(const isle__span_t *s, const char *list,
                                   const char *what, const void *where) {
  fprintf(stderr,
          "isle heap: corrupt span %p (class %u, %u-byte blocks, used %u, "
          "carved %u of %u): %s%s%s: %p\n",
          (const void *)s, (unsigned)s->cls, (unsigned)s->block_size,
          (unsigned)s->used, (unsigned)s->extended, (unsigned)s->capacity,
          list ? list : "", list ? ": " : "", what, where);
  abort();
}

_Noreturn static void heap_corrupt(const isle__heap_t *h, unsigned cls,
                                   const char *what, const void *where) {
  fprintf(stderr, "isle heap: corrupt heap %p (class %u): %s: %p\n",
          (const void *)h, cls, what, where);
  abort();
}

/* ===== Walks ============================================================ */

static void walk_init(walk_t *w, const isle__span_t *s, size_t limit) {
  w->s = s;
  w->limit = limit;
  memset(w->seen, 0, ((limit + 63) / 64) * sizeof w->seen[0]);
}

/* Marks `b` as met on `list`, aborting unless it is one of the first
 * w->limit blocks of the span, on a boundary, and met for the first time. */
static void walk_mark(walk_t *w, const isle__block_t *b, const char *list) {
  const isle__span_t *s = w->s;
  const char *p = (const char *)b;
  if (p < s->start || p >= s->start + w->limit * s->block_size)
    span_corrupt(s, list, "a link points outside the span's blocks", b);
  size_t off = (size_t)(p - s->start);
  if (off % s->block_size != 0)
    span_corrupt(s, list, "a link points inside a block", b);
  size_t i = off / s->block_size;
  uint64_t bit = UINT64_C(1) << (i % 64);
  if (w->seen[i / 64] & bit)
    span_corrupt(s, list, "a block is listed twice (a cycle, or a double free)",
                 b);
  w->seen[i / 64] |= bit;
}

/* Walks the list from `b`, marking every block; returns its length. */
static uint32_t walk_list(walk_t *w, const isle__block_t *b, const char *list) {
  uint32_t n = 0;
  while (b) {
    walk_mark(w, b, list);
    n++;
    b = isle__link_get((isle__block_t *)b);
  }
  return n;
}

/* ===== Span validators ================================================== */

/* The fields a span's owner sets when it takes the span: class, block size,
 * capacity, carved and used counts agree with one another. */
static void span_check_fields(const isle__span_t *s) {
  if (s->kind != ISLE__SPAN_SMALL)
    span_corrupt(s, NULL, "not a small span", s->start);
  if (s->cls >= ISLE__CLASSES || s->block_size != isle__class_size[s->cls])
    span_corrupt(s, NULL, "block size is not its class's", s->start);
  if (s->capacity != ((size_t)s->npages * ISLE__PAGE_SIZE) / s->block_size)
    span_corrupt(s, NULL, "capacity does not match the span's pages", s->start);
  if (s->extended > s->capacity)
    span_corrupt(s, NULL, "more blocks carved than fit", s->start);
  if (s->used > s->extended)
    span_corrupt(s, NULL, "more blocks out than carved", s->start);
}

void isle__span_validate(const isle__span_t *s) {
  if (s == &isle__empty_span)
    return;
  span_check_fields(s);
  walk_t w;
  walk_init(&w, s, s->extended);
  uint32_t nfree = walk_list(&w, s->free, "free list");
  /* Acquire: see the file comment; the pushed links must be visible. */
  const isle__block_t *x =
      atomic_load_explicit(&s->xfree, memory_order_acquire);
  walk_list(&w, x, "remote-free list");
  /* The remote blocks count in `used`; with no block on both lists (the
   * walk checked that) this also bounds them by `used`. */
  if (nfree + (uint32_t)s->used != s->extended)
    span_corrupt(s, "free list", "used + free blocks is not the number carved",
                 s->free);
}

void isle__remote_list_validate(const isle__span_t *s,
                                const isle__block_t *list) {
  span_check_fields(s);
  walk_t w;
  walk_init(&w, s, s->extended);
  uint32_t n = walk_list(&w, list, "remote-free list");
  if (n > s->used)
    span_corrupt(s, "remote-free list", "more blocks than the span has out",
                 list);
}

/* ===== Heap validator =================================================== */

/* The ring of class `c`: a circle of hc->spans spans, linked both ways,
 * each a small span of class c owned and tagged by this thread. Returns
 * how many spans it checked. */
static size_t ring_validate(const isle__heap_t *h, unsigned c) {
  const isle__heap_class_t *hc = &h->cls[c];
  const isle__span_t *cur = hc->cur;
  if (cur == &isle__empty_span) {
    if (hc->spans != 0)
      heap_corrupt(h, c, "an empty ring counts spans", cur);
    return 0;
  }
  uintptr_t tag = isle__thread_tag();
  uint32_t n = 0;
  const isle__span_t *s = cur;
  do {
    if (n == hc->spans)
      heap_corrupt(h, c, "the ring holds more spans than it counts", s);
    if (!isle__arena_known(s) || s->kind != ISLE__SPAN_SMALL || s->cls != c)
      heap_corrupt(h, c, "the ring holds a span not of its class", s);
    if (!s->in_ring || !isle__arena_known(s->next) || s->next->prev != s)
      heap_corrupt(h, c, "the ring's links are broken", s);
    if (atomic_load_explicit(&s->xowner, memory_order_relaxed) != h ||
        atomic_load_explicit(&s->xowner_tag, memory_order_relaxed) != tag ||
        s->frees != &hc->xfrees)
      heap_corrupt(h, c, "the ring holds a span this heap does not own", s);
    isle__span_validate(s);
    n++;
    s = s->next;
  } while (s != cur);
  if (n != hc->spans)
    heap_corrupt(h, c, "the ring holds fewer spans than it counts", cur);
  return n;
}

/* A pending batch: `count` (1..ISLE_REMOTE_BATCH) blocks of its span from
 * head to tail, the tail's link NULL. The span belongs to another thread,
 * which may be carving it: only its start, size and capacity are read,
 * which stay put while blocks of the span are out. */
static void batch_validate(const isle__heap_t *h,
                           const isle__remote_batch_t *rb) {
  const isle__span_t *s = rb->span;
  if (!s) {
    if (rb->head || rb->tail || rb->count)
      heap_corrupt(h, 0, "an empty remote batch holds blocks", rb->head);
    return;
  }
  if (!isle__arena_known(s) || s->kind != ISLE__SPAN_SMALL)
    heap_corrupt(h, 0, "a remote batch names no small span", s);
  if (rb->count == 0 || rb->count > ISLE_REMOTE_BATCH)
    heap_corrupt(h, s->cls, "a remote batch's count is out of range", s);
  walk_t w;
  walk_init(&w, s, s->capacity);
  const isle__block_t *b = rb->head;
  for (uint32_t i = 0; i < rb->count; i++) {
    if (!b)
      span_corrupt(s, "remote batch", "the chain ends before its count",
                   rb->head);
    walk_mark(&w, b, "remote batch");
    if (i + 1 == rb->count && b != rb->tail)
      span_corrupt(s, "remote batch", "the chain's last block is not its tail",
                   b);
    b = isle__link_get((isle__block_t *)b);
  }
  if (b)
    span_corrupt(s, "remote batch", "the chain runs past its tail", b);
}

size_t isle__heap_validate(void) {
  const isle__heap_t *h = isle__tl_heap;
  if (h == &isle__empty_heap)
    return 0;
  size_t checked = 0;
  for (unsigned c = 0; c < ISLE__CLASSES; c++)
    checked += ring_validate(h, c);
  for (unsigned i = 0; i < ISLE__REMOTE_SLOTS; i++)
    batch_validate(h, &h->remote[i]);
  return checked;
}

#else /* !ISLE_DEBUG */

size_t isle__heap_validate(void) {
  return 0;
}

#endif /* ISLE_DEBUG */
