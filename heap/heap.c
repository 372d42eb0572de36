/* isle — MIT licensed. */
/*
 * Thread heaps: allocation and freeing of small and large blocks.
 *
 * Each thread that allocates gets a heap record (isle__heap_t) reached
 * through a thread-local pointer. For each of the 72 size classes the heap
 * owns a ring of spans and allocates from one of them, `cur`. The fast
 * paths are a few loads and stores on memory only the owner writes:
 *
 *   alloc: class of size -> cur span -> pop its free list, used++.
 *   free:  span of pointer (two loads) -> owned by me? push, used--.
 *
 * Until a thread allocates, its pointer names a static empty heap whose
 * spans have no blocks, so the first allocation simply falls into the slow
 * path, which creates the heap; the fast path needs no NULL test.
 *
 * Remote frees. A block freed by a thread that does not own its span is
 * added to a batch the freeing thread keeps for that span (32 slots,
 * direct-mapped by span address). A full batch (ISLE_REMOTE_BATCH blocks),
 * an evicted one, or any batch at a flush point (the freeing thread's
 * allocation slow path, isle_heap_collect, thread exit) goes to the span's
 * atomic list `xfree` with one CAS. The owner takes a whole list with one
 * exchange when its span runs dry. Batching per span needs no knowledge of
 * the owner, so a span can change owner (abandonment, adoption) while
 * blocks of it travel. docs/heap.md gives the figures against the
 * unbatched design (one CAS per block; build with -DISLE_REMOTE_BATCH=1).
 *
 * Thread exit. A pthread key destructor retires the heap: batches are
 * flushed, remote frees taken in, empty spans go to the page pool, and the
 * spans still holding live blocks are abandoned to the global chain, one
 * list per class. A thread that needs a span of that class adopts one
 * before taking fresh pages; isle_heap_collect also sweeps the lists so
 * that spans emptied by later frees go back to the pool. The retired
 * record itself is reused by the next new thread; its large blocks stay
 * accounted to it until freed.
 *
 * Threads: isle_* functions here may be called by any thread; every
 * static function whose name ends in _local runs on the heap's owner.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>    /* mmap for heap records */
#include <sys/syscall.h> /* SYS_gettid */
#include <unistd.h>

#include "internal.h"
#include "track.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Blocks carved from fresh span memory per refill: about 8 KiB, so a span
 * is touched page by page as it fills, not all at once. */
#define CARVE_BYTES 8192
#define META_CHUNK ((size_t)256 << 10)

/* ===== Process state ==================================================== */

isle__span_t isle__empty_span; /* no blocks; never written */
isle__heap_t isle__empty_heap = {
    .cls = {[0 ... ISLE__CLASSES - 1] = {.cur = &isle__empty_span}},
};
_Atomic(isle__heap_t *) isle__heaps;
_Atomic uint64_t isle__heap_count;
_Atomic uint64_t isle__abandoned_spans;
_Atomic uint64_t isle__abandoned_live_bytes;

/* The chain: abandoned spans per class and retired heap records, under one
 * lock taken only at thread start and exit, on adoption and on sweeps. */
static struct {
  pthread_mutex_t lock;
  isle__span_t *abandoned[ISLE__CLASSES]; /* singly linked by next */
  isle__heap_t *retired;
  char *meta; /* bump region for heap records */
  size_t meta_left;
  pthread_key_t key;
  pthread_once_t once;
} chain = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .once = PTHREAD_ONCE_INIT,
};

static __thread isle__heap_t *tl_heap
    __attribute__((tls_model("initial-exec"))) = &isle__empty_heap;

/* ===== Helpers ========================================================= */

_Noreturn void isle__heap_abort(const char *what, const void *ptr) {
  /* fprintf to stderr does not allocate for an unbuffered stream. */
  fprintf(stderr, "isle heap: %s: %p\n", what, ptr);
  abort();
}

static void heap_retire(void *arg);

static void chain_init(void) {
  if (pthread_key_create(&chain.key, heap_retire) != 0)
    isle__heap_abort("cannot create the thread-exit key", NULL);
}

/* Heap records come from their own mappings, never from malloc, so the
 * heap could serve as the process's malloc. Chain lock held. */
static isle__heap_t *record_new_locked(void) {
  size_t size = (sizeof(isle__heap_t) + ISLE__CACHE_LINE - 1) &
                ~(size_t)(ISLE__CACHE_LINE - 1);
  if (chain.meta_left < size) {
    void *m = mmap(NULL, META_CHUNK, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
      return NULL;
    chain.meta = m;
    chain.meta_left = META_CHUNK;
  }
  isle__heap_t *h = (isle__heap_t *)chain.meta;
  chain.meta += size;
  chain.meta_left -= size;
  return h;
}

static void set_name_local(isle__heap_t *h, const char *name) {
  char buf[16] = {0};
  strncpy(buf, name, sizeof buf - 1);
  uint64_t w[2];
  memcpy(w, buf, sizeof w);
  atomic_store_explicit(&h->xname[0], w[0], memory_order_relaxed);
  atomic_store_explicit(&h->xname[1], w[1], memory_order_relaxed);
}

/* Creates (or reuses a retired) heap for the calling thread. */
static isle__heap_t *heap_init_local(void) {
  pthread_once(&chain.once, chain_init);
  pthread_mutex_lock(&chain.lock);
  isle__heap_t *h = chain.retired;
  if (h) {
    chain.retired = h->retired_next;
    pthread_mutex_unlock(&chain.lock);
  } else {
    h = record_new_locked();
    pthread_mutex_unlock(&chain.lock);
    if (!h) {
      errno = ENOMEM;
      return NULL;
    }
    /* The mapping is zeroed: every counter starts at 0. */
    for (unsigned c = 0; c < ISLE__CLASSES; c++)
      h->cls[c].cur = &isle__empty_span;
    /* Relaxed: published with the record by the release CAS below. */
    atomic_store_explicit(
        &h->xid,
        atomic_fetch_add_explicit(&isle__heap_count, 1, memory_order_relaxed) +
            1,
        memory_order_relaxed);
    /* Release: publishes the initialised record to registry walkers,
     * which load the list head with acquire. */
    isle__heap_t *head =
        atomic_load_explicit(&isle__heaps, memory_order_relaxed);
    do {
      atomic_store_explicit(&h->xall_next, head, memory_order_relaxed);
    } while (!atomic_compare_exchange_weak_explicit(
        &isle__heaps, &head, h, memory_order_release, memory_order_relaxed));
  }
  uint64_t tid = (uint64_t)syscall(SYS_gettid);
  atomic_store_explicit(&h->xtid, tid, memory_order_relaxed);
  atomic_store_explicit(&h->xretired, 0, memory_order_relaxed);
  /* The main thread's tid is the process id: name it, so that profiles
   * read naturally without the program naming it. */
  set_name_local(h, tid == (uint64_t)getpid() ? "main" : "");
  tl_heap = h;
  pthread_setspecific(chain.key, h);
  /* After the heap is installed: the sampler it may start reads the
   * registry, and this thread must be able to allocate meanwhile. */
  isle__profile_autostart();
  return h;
}

static inline isle__heap_t *heap_local(void) {
  isle__heap_t *h = tl_heap;
  if (unlikely(h == &isle__empty_heap))
    h = heap_init_local();
  return h;
}

/* ----- Span rings (owner) ---------------------------------------------- */

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

static void ring_remove_local(isle__heap_t *h, isle__span_t *s) {
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

/* ----- Remote frees ---------------------------------------------------- */

/* Moves the blocks other threads freed into the span's free list; returns
 * how many. The caller owns the span (or holds it exclusively). */
static uint32_t span_collect(isle__span_t *s) {
  /* Relaxed peek first: the exchange would take the line exclusive even
   * when there is nothing to take. */
  if (!atomic_load_explicit(&s->xfree, memory_order_relaxed))
    return 0;
  /* Acquire: pairs with the release CAS in batch_flush, making the links
   * the freeing thread wrote visible here. */
  ISLE__CHAOS("heap.remote_collect");
  isle__block_t *list =
      atomic_exchange_explicit(&s->xfree, NULL, memory_order_acquire);
  /* The walk (to count and find the tail) also pulls the blocks into this
   * core's cache in one tight loop, ahead of the allocations that will
   * write them. Carrying the count beside the list instead and adopting
   * the list without a walk was measured: prodcons went from 27 to 75-88
   * ns/msg, the misses moving into the producer's writes. */
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

/* Owner bookkeeping after span_collect. */
static void note_collected_local(isle__heap_t *h, isle__span_t *s, uint32_t n) {
  if (!n)
    return;
  isle__counter_add(&h->cls[s->cls].xfrees, n);
  isle__counter_add(&h->xremote_received, n);
  isle__counter_add(&h->xremote_received_bytes, (uint64_t)n * s->block_size);
}

/* The flow-matrix column of blocks owned by `owner` (NULL: abandoned). */
static unsigned flow_col(isle__heap_t *owner) {
  if (!owner)
    return 0;
  /* Relaxed: see xid in internal.h; records are never unmapped, so the
   * pointer stays readable even if the span changes owner meanwhile. */
  uint64_t id = atomic_load_explicit(&owner->xid, memory_order_relaxed);
  return id <= ISLE_HEAP_FLOW_MAX_ID ? (unsigned)id : 0;
}

/* Counts `blocks` blocks (`bytes` bytes) of `owner`'s heap as freed by
 * `h`, the calling thread's heap: its sent counters and its flow row.
 * Called once per batch (or large block), never per small block. */
static void note_sent_local(isle__heap_t *h, isle__heap_t *owner,
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
    /* Release: pairs with the acquire exchange in span_collect; the owner
     * must see the links written before. */
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
  note_sent_local(h, atomic_load_explicit(&s->xowner, memory_order_relaxed),
                  rb->count, (uint64_t)rb->count * s->block_size);
  xfree_push(s, rb->head, rb->tail);
  isle__counter_add(&h->xremote_batches, 1);
  rb->span = NULL;
  rb->head = rb->tail = NULL;
  rb->count = 0;
}

static void batches_flush_local(isle__heap_t *h) {
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

/* ----- Spans of a class (owner) ---------------------------------------- */

static void span_release_local(isle__heap_t *h, isle__span_t *s) {
  ring_remove_local(h, s);
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
  note_collected_local(h, s, span_collect(s));
  if (s->free)
    return true;
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
    pthread_mutex_lock(&chain.lock);
    isle__span_t *s = chain.abandoned[c];
    if (s)
      chain.abandoned[c] = s->next;
    pthread_mutex_unlock(&chain.lock);
    if (!s)
      return NULL;
    atomic_fetch_sub_explicit(&isle__abandoned_spans, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&isle__abandoned_live_bytes,
                              (uint64_t)s->used * s->block_size,
                              memory_order_relaxed);
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

static void heap_collect_local(isle__heap_t *h);
static void sweep_abandoned(void);

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
    h = heap_init_local();
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
  batches_flush_local(h);
  isle__span_t *s = span_adopt_local(h, c);
  if (!s)
    s = span_new_local(h, c);
  if (!s) {
    /* At the limit: give back what we can and try once more. */
    heap_collect_local(h);
    sweep_abandoned();
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
      heap_collect_local(h);
      sweep_abandoned();
      s = isle__huge_alloc(size, align);
    }
  } else {
    s = isle__pages_alloc(npages, align_pages, false);
    if (!s) {
      heap_collect_local(h);
      sweep_abandoned();
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

/* ----- Freeing --------------------------------------------------------- */

static size_t block_usable(const isle__span_t *s) {
  return s->kind == ISLE__SPAN_HUGE ? isle__huge_usable(s) : s->block_size;
}

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
    span_release_local(h, s);
}

static void free_large(isle__heap_t *h, isle__span_t *s) {
  isle__heap_t *owner = atomic_load_explicit(&s->xowner, memory_order_relaxed);
  size_t usable = block_usable(s);
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
      note_sent_local(h, owner, 1, usable);
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

/* ----- Collection, retirement, sweeping -------------------------------- */

/* Takes in every remote free of the heap's spans and gives the empty spans
 * back, the current ones included. */
static void heap_collect_local(isle__heap_t *h) {
  batches_flush_local(h);
  for (unsigned c = 0; c < ISLE__CLASSES; c++) {
    isle__span_t *cur = h->cls[c].cur;
    if (cur == &isle__empty_span)
      continue;
    /* Walk a snapshot of the ring: releasing unlinks spans. */
    uint32_t n = h->cls[c].spans;
    isle__span_t *s = cur;
    while (n--) {
      isle__span_t *next = s->next;
      note_collected_local(h, s, span_collect(s));
      if (s->used == 0)
        span_release_local(h, s);
      s = next;
    }
  }
}

static void abandon_span_locked(isle__span_t *s) {
  s->next = chain.abandoned[s->cls];
  chain.abandoned[s->cls] = s;
}

/* The pthread key destructor: the thread is exiting. */
static void heap_retire(void *arg) {
  isle__heap_t *h = arg;
  heap_collect_local(h);
  for (unsigned c = 0; c < ISLE__CLASSES; c++) {
    while (h->cls[c].cur != &isle__empty_span) {
      isle__span_t *s = h->cls[c].cur;
      ring_remove_local(h, s);
      /* Its live blocks now belong to no heap: count them out here and
       * in again at the adopter. */
      isle__counter_add(&h->cls[c].xfrees, s->used);
      isle__counter_add(&h->xspans, -(uint64_t)1);
      isle__counter_add(&h->xsmall_span_bytes,
                        -(uint64_t)s->npages * ISLE__PAGE_SIZE);
      atomic_fetch_add_explicit(&isle__abandoned_spans, 1,
                                memory_order_relaxed);
      atomic_fetch_add_explicit(&isle__abandoned_live_bytes,
                                (uint64_t)s->used * s->block_size,
                                memory_order_relaxed);
      /* Relaxed: see span_own_local. */
      atomic_store_explicit(&s->xowner_tag, 0, memory_order_relaxed);
      atomic_store_explicit(&s->xowner, NULL, memory_order_relaxed);
      pthread_mutex_lock(&chain.lock);
      abandon_span_locked(s);
      pthread_mutex_unlock(&chain.lock);
    }
  }
  atomic_store_explicit(&h->xtid, 0, memory_order_relaxed);
  atomic_store_explicit(&h->xretired, 1, memory_order_relaxed);
  pthread_mutex_lock(&chain.lock);
  h->retired_next = chain.retired;
  chain.retired = h;
  pthread_mutex_unlock(&chain.lock);
  tl_heap = &isle__empty_heap;
}

/* Takes in the remote frees of abandoned spans and gives the emptied ones
 * back to the pool. Any thread. */
static void sweep_abandoned(void) {
  for (unsigned c = 0; c < ISLE__CLASSES; c++) {
    pthread_mutex_lock(&chain.lock);
    isle__span_t *list = chain.abandoned[c];
    chain.abandoned[c] = NULL;
    pthread_mutex_unlock(&chain.lock);
    while (list) {
      isle__span_t *s = list;
      list = s->next;
      /* We hold the span exclusively: it is on no list now. */
      uint32_t n = span_collect(s);
      atomic_fetch_sub_explicit(&isle__abandoned_live_bytes,
                                (uint64_t)n * s->block_size,
                                memory_order_relaxed);
      if (s->used == 0) {
        atomic_fetch_sub_explicit(&isle__abandoned_spans, 1,
                                  memory_order_relaxed);
        isle__pages_free(s);
      } else {
        pthread_mutex_lock(&chain.lock);
        abandon_span_locked(s);
        pthread_mutex_unlock(&chain.lock);
      }
    }
  }
}

void isle__heap_note_os_return(uint64_t bytes) {
  isle__heap_t *h = tl_heap;
  if (h == &isle__empty_heap)
    return;
  isle__counter_add(&h->xos_returned_bytes, bytes);
  isle__counter_add(&h->xos_returns, 1);
}

/* ===== Public functions ================================================ */

static void *alloc_large_new(size_t size, size_t align) {
  isle__heap_t *h = heap_local();
  if (!h) {
    errno = ENOMEM;
    return NULL;
  }
  return alloc_large_local(h, size, align);
}

void *isle_malloc(size_t size) {
  if (likely(size <= 1024))
    return alloc_small_local(tl_heap, isle__small_class[(size + 15) >> 4]);
  if (likely(size <= ISLE__SMALL_MAX))
    return alloc_small_local(tl_heap, isle__size_class(size));
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
      span_emptied_local(tl_heap, s);
    return;
  }
  free_slow(tl_heap, s, p);
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
  return block_usable(isle__span_of(p));
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
        return alloc_small_local(tl_heap, c);
  }
  return alloc_large_new(size ? size : 1, align);
}

void isle_heap_collect(void) {
  isle__heap_t *h = tl_heap;
  if (h != &isle__empty_heap)
    heap_collect_local(h);
  sweep_abandoned();
  isle__pages_purge(false);
}

void isle_heap_trim(void) {
  isle__heap_t *h = tl_heap;
  if (h != &isle__empty_heap)
    heap_collect_local(h);
  sweep_abandoned();
  isle__pages_purge(true);
}

int isle_heap_set_thread_name(const char *name) {
  if (!name)
    return ISLE_EINVAL;
  isle__heap_t *h = heap_local();
  if (!h)
    return ISLE_ENOMEM;
  set_name_local(h, name);
  return 0;
}

/* ===== Test hooks ====================================================== */

const void *isle__heap_self(void) {
  return heap_local();
}

int isle__heap_span_info(const void *p, isle__span_info_t *out) {
  if (!p || !out || !isle__arena_known(p))
    return ISLE_EINVAL;
  uintptr_t a = (uintptr_t)p & ~(uintptr_t)(ISLE__ARENA_SIZE - 1);
  const isle__arena_t *arena = (const isle__arena_t *)a;
  if ((((uintptr_t)p - a) >> ISLE__PAGE_SHIFT) < arena->first_data)
    return ISLE_EINVAL;
  isle__span_t *s = isle__span_of(p);
  const char *cp = p;
  size_t bytes;
  switch (s->kind) {
  case ISLE__SPAN_SMALL:
    bytes = (size_t)s->npages * ISLE__PAGE_SIZE;
    break;
  case ISLE__SPAN_LARGE:
    bytes = (size_t)s->npages * ISLE__PAGE_SIZE;
    break;
  case ISLE__SPAN_HUGE:
    bytes = isle__huge_usable(s);
    break;
  default:
    return ISLE_EINVAL;
  }
  if (cp < s->start || cp >= s->start + bytes)
    return ISLE_EINVAL;
  out->start = s->start;
  out->bytes = bytes;
  out->block_size = block_usable(s);
  out->cls = s->kind == ISLE__SPAN_SMALL ? (int)s->cls : -1;
  out->owner = atomic_load_explicit(&s->xowner, memory_order_relaxed);
  return 0;
}
