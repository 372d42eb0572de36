/* isle — MIT licensed. */
/*
 * The allocation and free paths of the thread heaps: small blocks from the
 * calling thread's spans, large blocks from the page pool, and the public
 * malloc-like API.
 *
 * Each thread that allocates gets a heap record (isle__heap_t, heap.c)
 * reached through a thread-local pointer. For each of the 72 size classes
 * the heap owns a ring of spans and allocates from one of them, `cur`. The
 * fast paths are a few loads and stores on memory only the owner writes:
 *
 *   alloc: class of size -> cur span -> pop its free list, used++.
 *   free:  span of pointer (two loads) -> owned by me? push, used--.
 *
 * Until a thread allocates, its pointer names a static empty heap whose
 * spans have no blocks, so the first allocation simply falls into the slow
 * path, which creates the heap; the fast path needs no NULL test.
 *
 * When `cur` runs dry, the slow path takes in its remote frees (remote.c),
 * carves fresh blocks, tries the rest of the ring, adopts a span abandoned
 * by an exited thread (the chain, heap.c), and only then asks the page pool
 * (pages.c). A free of a block the calling thread does not own leaves for
 * remote.c by a tail call.
 *
 * Threads: isle_* functions here may be called by any thread; every
 * function whose name ends in _local runs on the heap's owner.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "track.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Blocks carved from fresh span memory per refill: about 8 KiB, so a span
 * is touched page by page as it fills, not all at once. */
#define CARVE_BYTES 8192

/* ===== Span rings (owner) ============================================== */

static void ring_insert_local(isle__heap_t *h, isle__span_t *s) {
  isle__heap_class_t *hc = &h->cls[s->cls];
  isle__span_t *cur = hc->cur;
  if (cur == &isle__empty_span) {
    s->next = s->prev = s;
    hc->cur = s;
  } else {
    s->next = cur->next;
    s->prev = cur;
    cur->next->prev = s;
    cur->next = s;
  }
  s->in_ring = 1;
  hc->spans++;
}

void isle__span_ring_remove_local(isle__heap_t *h, isle__span_t *s) {
  isle__heap_class_t *hc = &h->cls[s->cls];
  if (s->next == s) {
    hc->cur = &isle__empty_span;
  } else {
    s->prev->next = s->next;
    s->next->prev = s->prev;
    if (hc->cur == s)
      hc->cur = s->next;
  }
  s->next = s->prev = NULL;
  s->in_ring = 0;
  hc->spans--;
}

static uint64_t large_live_bytes(isle__heap_t *h) {
  uint64_t freed =
      isle__counter_get(&h->xlarge_free_bytes) +
      atomic_load_explicit(&h->xlarge_remote_free_bytes, memory_order_relaxed);
  uint64_t alloc = isle__counter_get(&h->xlarge_alloc_bytes);
  return alloc > freed ? alloc - freed : 0;
}

static void note_held_local(isle__heap_t *h) {
  uint64_t held =
      isle__counter_get(&h->xsmall_span_bytes) + large_live_bytes(h);
  if (held > isle__counter_get(&h->xpeak_held))
    atomic_store_explicit(&h->xpeak_held, held, memory_order_relaxed);
}

/* ===== Spans of a class (owner) ======================================== */

void isle__span_release_local(isle__heap_t *h, isle__span_t *s) {
  /* Debug builds: a span going back must hold all its blocks. */
  isle__debug_check_span(s);
  isle__span_ring_remove_local(h, s);
  size_t bytes = (size_t)s->npages * ISLE__PAGE_SIZE;
  isle__counter_add(&h->xsmall_span_bytes, -(uint64_t)bytes);
  isle__counter_add(&h->xspans, -(uint64_t)1);
  isle__counter_add(&h->xspans_returned, 1);
  isle__pages_free(s);
}

/* Makes blocks available in `s` if it can: takes in remote frees, else
 * carves fresh blocks. Returns whether s->free is now non-empty. */
static bool span_refresh_local(isle__heap_t *h, isle__span_t *s) {
  if (s->free)
    return true;
  isle__note_collected_local(h, s, isle__span_collect(s));
  if (s->free) {
    isle__debug_check_span(s);
    return true;
  }
  if (s->extended < s->capacity) {
    uint32_t bs = s->block_size;
    uint32_t n = CARVE_BYTES / bs;
    if (n == 0)
      n = 1;
    if (n > (uint32_t)(s->capacity - s->extended))
      n = (uint32_t)(s->capacity - s->extended);
    char *first = s->start + (size_t)s->extended * bs;
    isle__track_fresh(first, (size_t)n * bs);
    for (uint32_t i = 0; i + 1 < n; i++)
      isle__link_set((isle__block_t *)(first + (size_t)i * bs),
                     (isle__block_t *)(first + (size_t)(i + 1) * bs));
    isle__link_set((isle__block_t *)(first + (size_t)(n - 1) * bs), NULL);
    s->free = (isle__block_t *)first;
    s->extended = (uint16_t)(s->extended + n);
    isle__debug_check_span(s);
    return true;
  }
  return false;
}

/* Makes `h`, the calling thread's heap, the owner of small span `s`.
 * Relaxed stores: other threads only compare the tag with their own and
 * the heap pointer with theirs, and neither the old nor the new value is
 * theirs; the span's other fields reached us with a lock (pool or chain). */
static void span_own_local(isle__heap_t *h, isle__span_t *s) {
  s->frees = &h->cls[s->cls].xfrees;
  atomic_store_explicit(&s->xowner, h, memory_order_relaxed);
  atomic_store_explicit(&s->xowner_tag, isle__thread_tag(),
                        memory_order_relaxed);
}

/* Adopts spans of class `c` abandoned by exited threads until one has
 * room; returns it (in the ring) or NULL. */
static isle__span_t *span_adopt_local(isle__heap_t *h, unsigned c) {
  for (;;) {
    isle__span_t *s = isle__chain_pop_abandoned(c);
    if (!s)
      return NULL;
    span_own_local(h, s);
    isle__counter_add(&h->cls[c].xallocs, s->used);
    isle__counter_add(&h->xspans_adopted, 1);
    isle__counter_add(&h->xrefills, 1);
    isle__counter_add(&h->xspans, 1);
    isle__counter_add(&h->xsmall_span_bytes,
                      (uint64_t)s->npages * ISLE__PAGE_SIZE);
    note_held_local(h);
    ring_insert_local(h, s);
    if (span_refresh_local(h, s))
      return s;
  }
}

/* A fresh span of class `c` from the page pool, in the ring; NULL at the
 * limit or when the OS refuses. */
static isle__span_t *span_new_local(isle__heap_t *h, unsigned c) {
  isle__span_t *s = isle__pages_alloc(isle__class_pages[c], 1, true);
  if (!s)
    return NULL;
  s->cls = (uint8_t)c;
  s->block_size = isle__class_size[c];
  s->capacity =
      (uint16_t)(((size_t)s->npages * ISLE__PAGE_SIZE) / s->block_size);
  span_own_local(h, s);
  isle__counter_add(&h->xrefills, 1);
  if (!s->dirty)
    isle__counter_add(&h->xos_refills, 1);
  isle__counter_add(&h->xspans, 1);
  isle__counter_add(&h->xsmall_span_bytes,
                    (uint64_t)s->npages * ISLE__PAGE_SIZE);
  note_held_local(h);
  ring_insert_local(h, s);
  return s;
}

/* ===== Allocation ====================================================== */

/* The allocation slow path: cur has no free block. */
static void *alloc_small_slow(isle__heap_t *h, unsigned c);

static inline void *alloc_small_local(isle__heap_t *h, unsigned c) {
  isle__span_t *s = h->cls[c].cur;
  isle__block_t *b = s->free;
  if (likely(b != NULL)) {
    s->free = isle__link_get(b);
    s->used++;
    isle__counter_add(&h->cls[c].xallocs, 1);
    isle__track_alloc(b, s->block_size);
    isle__debug_on_alloc(b);
    return b;
  }
  return alloc_small_slow(h, c);
}

__attribute__((noinline)) static void *alloc_small_slow(isle__heap_t *h,
                                                        unsigned c) {
  if (h == &isle__empty_heap) {
    h = isle__heap_init_local();
    if (!h)
      return NULL;
  }
  isle__span_t *cur = h->cls[c].cur;
  if (cur != &isle__empty_span) {
    if (span_refresh_local(h, cur))
      return alloc_small_local(h, c);
    for (isle__span_t *s = cur->next; s != cur; s = s->next)
      if (span_refresh_local(h, s)) {
        h->cls[c].cur = s;
        return alloc_small_local(h, c);
      }
  }
  /* A good moment to hand our pending remote frees to their owners. */
  isle__batches_flush_local(h);
  isle__span_t *s = span_adopt_local(h, c);
  if (!s)
    s = span_new_local(h, c);
  if (!s) {
    /* At the limit: give back what we can and try once more. */
    isle__heap_collect_local(h);
    isle__heap_sweep_abandoned();
    s = span_adopt_local(h, c);
    if (!s)
      s = span_new_local(h, c);
    if (!s) {
      errno = ENOMEM;
      return NULL;
    }
  }
  span_refresh_local(h, s);
  h->cls[c].cur = s;
  return alloc_small_local(h, c);
}

static void *alloc_large_local(isle__heap_t *h, size_t size, size_t align) {
  size_t npages = (size + ISLE__PAGE_SIZE - 1) >> ISLE__PAGE_SHIFT;
  size_t align_pages = align > ISLE__PAGE_SIZE ? align / ISLE__PAGE_SIZE : 1;
  isle__span_t *s;
  if (size > ISLE__LARGE_MAX) {
    s = isle__huge_alloc(size, align);
    if (!s) {
      isle__heap_collect_local(h);
      isle__heap_sweep_abandoned();
      s = isle__huge_alloc(size, align);
    }
  } else {
    s = isle__pages_alloc(npages, align_pages, false);
    if (!s) {
      isle__heap_collect_local(h);
      isle__heap_sweep_abandoned();
      s = isle__pages_alloc(npages, align_pages, false);
    }
    if (s)
      s->block_size = (uint32_t)(npages * ISLE__PAGE_SIZE);
  }
  if (!s) {
    errno = ENOMEM;
    return NULL;
  }
  atomic_store_explicit(&s->xowner, h, memory_order_relaxed);
  size_t usable =
      s->kind == ISLE__SPAN_HUGE ? isle__huge_usable(s) : s->block_size;
  isle__counter_add(&h->xlarge_alloc_bytes, usable);
  isle__counter_add(&h->xlarge_alloc_count, 1);
  note_held_local(h);
  isle__track_alloc(s->start, usable);
  return s->start;
}

static void *alloc_large_new(size_t size, size_t align) {
  isle__heap_t *h = isle__heap_local();
  if (!h) {
    errno = ENOMEM;
    return NULL;
  }
  return alloc_large_local(h, size, align);
}

/* ===== Freeing ========================================================= */

/* Debug builds: abort on pointers the heap never gave out or gave back. */
static void debug_check_free(const void *p) {
  if (!ISLE_DEBUG)
    return;
  if (!isle__arena_known(p))
    isle__heap_abort("free of a pointer isle never gave out", p);
  isle__span_t *s = isle__span_of(p);
  switch (s->kind) {
  case ISLE__SPAN_SMALL: {
    size_t off = (size_t)((const char *)p - s->start);
    if ((const char *)p < s->start || off % s->block_size != 0 ||
        off / s->block_size >= s->extended)
      isle__heap_abort("free of a pointer that is not the start of a block", p);
    if (isle__debug_is_free(p))
      isle__heap_abort("double free", p);
    return;
  }
  case ISLE__SPAN_LARGE:
  case ISLE__SPAN_HUGE:
    if (p != s->start)
      isle__heap_abort("free of a pointer inside a large block", p);
    return;
  default:
    isle__heap_abort("double free, or free of a pointer isle never gave out",
                     p);
  }
}

__attribute__((noinline)) static void span_emptied_local(isle__heap_t *h,
                                                         isle__span_t *s) {
  /* Keep the span we allocate from; give the others back at once, so a
   * heap holds at most one empty span per class. */
  if (h->cls[s->cls].cur != s)
    isle__span_release_local(h, s);
}

/* Not inlined: free_slow then saves no registers and reaches both this and
 * isle__free_remote (remote.c) by a tail jump. */
__attribute__((noinline)) static void free_large(isle__heap_t *h,
                                                 isle__span_t *s) {
  isle__heap_t *owner = atomic_load_explicit(&s->xowner, memory_order_relaxed);
  size_t usable = isle__span_usable(s);
  isle__track_free(s->start, usable);
  if (owner == h) {
    isle__counter_add(&h->xlarge_free_bytes, usable);
    isle__counter_add(&h->xlarge_free_count, 1);
  } else if (owner) {
    /* Relaxed: counters only; the pages go back under the pool lock. */
    atomic_fetch_add_explicit(&owner->xlarge_remote_free_bytes, usable,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&owner->xlarge_remote_free_count, 1,
                              memory_order_relaxed);
    /* The static empty heap is shared by every heapless thread: it keeps
     * no counters. */
    if (h != &isle__empty_heap)
      isle__note_sent_local(h, owner, 1, usable);
  }
  if (s->kind == ISLE__SPAN_HUGE)
    isle__huge_free(s);
  else
    isle__pages_free(s);
}

__attribute__((noinline)) static void free_slow(isle__heap_t *h,
                                                isle__span_t *s, void *p) {
  if (s->kind != ISLE__SPAN_SMALL) {
    free_large(h, s);
    return;
  }
  /* A small block of another heap (or of an abandoned span). */
  isle__free_remote(h, s, p);
}

/* ===== Public functions ================================================ */

void *isle_malloc(size_t size) {
  if (likely(size <= 1024))
    return alloc_small_local(isle__tl_heap,
                             isle__small_class[(size + 15) >> 4]);
  if (likely(size <= ISLE__SMALL_MAX))
    return alloc_small_local(isle__tl_heap, isle__size_class(size));
  return alloc_large_new(size, ISLE__PAGE_SIZE);
}

void isle_free(void *p) {
  if (!p)
    return;
  debug_check_free(p);
  isle__span_t *s = isle__span_of(p);
  /* Relaxed: only this thread ever stores its own tag into a span, so
   * equality is exact; any other value (0, another thread's) is "not
   * mine". Only small spans owned by a heap carry a tag. */
  if (likely(atomic_load_explicit(&s->xowner_tag, memory_order_relaxed) ==
             isle__thread_tag())) {
    isle__block_t *b = p;
    isle__debug_on_free(b);
    isle__track_free(b, s->block_size);
    isle__link_set(b, s->free);
    s->free = b;
    isle__counter_add(s->frees, 1);
    if (unlikely(--s->used == 0))
      span_emptied_local(isle__tl_heap, s);
    return;
  }
  free_slow(isle__tl_heap, s, p);
}

void *isle_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = isle_malloc(total);
  if (p)
    memset(p, 0, total);
  return p;
}

size_t isle_usable_size(const void *p) {
  if (!p)
    return 0;
  return isle__span_usable(isle__span_of(p));
}

void *isle_realloc(void *p, size_t size) {
  if (!p)
    return isle_malloc(size);
  if (size == 0) {
    isle_free(p);
    return NULL;
  }
  size_t have = isle_usable_size(p);
  /* Keep the block when the new size fits and wastes at most half. */
  if (size <= have && size >= have / 2)
    return p;
  void *q = isle_malloc(size);
  if (!q)
    return NULL;
  memcpy(q, p, size < have ? size : have);
  isle_free(p);
  return q;
}

void *isle_aligned_alloc(size_t align, size_t size) {
  if (align == 0 || (align & (align - 1)) || align > ISLE__MAX_ALIGN) {
    errno = EINVAL;
    return NULL;
  }
  if (align <= ISLE__MIN_ALIGN)
    return isle_malloc(size);
  if (size <= ISLE__SMALL_MAX && align <= ISLE__PAGE_SIZE) {
    /* Spans start on a page, so a class whose size is a multiple of the
     * alignment gives aligned blocks. */
    for (unsigned c = isle__size_class(size ? size : 1); c < ISLE__CLASSES; c++)
      if (isle__class_size[c] % align == 0)
        return alloc_small_local(isle__tl_heap, c);
  }
  return alloc_large_new(size ? size : 1, align);
}
