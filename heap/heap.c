/* isle — MIT licensed. */
/*
 * Thread heap records and the global chain: creating, naming and retiring
 * the per-thread heap records, and the lists that outlive a thread
 * (abandoned spans, retired records), with the collections and sweeps that
 * give emptied spans back to the page pool.
 *
 * The heap is split by job: alloc.c holds the allocation and free paths
 * (the fast paths and their slow paths), remote.c the remote frees, this
 * file what happens to a heap when a thread starts and exits, and
 * validate.c the debug validators.
 *
 * Thread start. A thread's first allocation (or a first free of a foreign
 * block that needs a batch) finds the static empty heap in its
 * thread-local pointer, falls into the slow path and gets a record here:
 * a retired one if any, else a fresh one from a mapping of its own (never
 * malloc, so the heap could serve as the process's malloc), published in
 * the registry that statistics walk.
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
 * function whose name ends in _local runs on the heap's owner. The chain
 * lock guards the abandoned lists, the retired list and the record
 * mappings; it is taken at thread start and exit, on adoption and on
 * sweeps, never on a fast path.
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

__thread isle__heap_t *isle__tl_heap
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

/* ===== Thread start ==================================================== */

isle__heap_t *isle__heap_init_local(void) {
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
  isle__tl_heap = h;
  pthread_setspecific(chain.key, h);
  /* After the heap is installed: the sampler it may start reads the
   * registry, and this thread must be able to allocate meanwhile. */
  isle__profile_autostart();
  return h;
}

/* ===== Collection, retirement, sweeping ================================ */

void isle__heap_collect_local(isle__heap_t *h) {
  isle__batches_flush_local(h);
  for (unsigned c = 0; c < ISLE__CLASSES; c++) {
    isle__span_t *cur = h->cls[c].cur;
    if (cur == &isle__empty_span)
      continue;
    /* Walk a snapshot of the ring: releasing unlinks spans. */
    uint32_t n = h->cls[c].spans;
    isle__span_t *s = cur;
    while (n--) {
      isle__span_t *next = s->next;
      isle__note_collected_local(h, s, isle__span_collect(s));
      isle__debug_check_span(s);
      if (s->used == 0)
        isle__span_release_local(h, s);
      s = next;
    }
  }
}

static void abandon_span_locked(isle__span_t *s) {
  s->next = chain.abandoned[s->cls];
  chain.abandoned[s->cls] = s;
}

isle__span_t *isle__chain_pop_abandoned(unsigned c) {
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
  return s;
}

/* The pthread key destructor: the thread is exiting. */
static void heap_retire(void *arg) {
  isle__heap_t *h = arg;
  /* Debug builds: the collection validates every span it abandons below. */
  isle__heap_collect_local(h);
  for (unsigned c = 0; c < ISLE__CLASSES; c++) {
    while (h->cls[c].cur != &isle__empty_span) {
      isle__span_t *s = h->cls[c].cur;
      isle__span_ring_remove_local(h, s);
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
      /* Relaxed: see span_own_local (alloc.c). */
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
  isle__tl_heap = &isle__empty_heap;
}

void isle__heap_sweep_abandoned(void) {
  for (unsigned c = 0; c < ISLE__CLASSES; c++) {
    pthread_mutex_lock(&chain.lock);
    isle__span_t *list = chain.abandoned[c];
    chain.abandoned[c] = NULL;
    pthread_mutex_unlock(&chain.lock);
    while (list) {
      isle__span_t *s = list;
      list = s->next;
      /* We hold the span exclusively: it is on no list now. */
      uint32_t n = isle__span_collect(s);
      isle__debug_check_span(s);
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
  isle__heap_t *h = isle__tl_heap;
  if (h == &isle__empty_heap)
    return;
  isle__counter_add(&h->xos_returned_bytes, bytes);
  isle__counter_add(&h->xos_returns, 1);
}

/* ===== Public functions ================================================ */

void isle_heap_collect(void) {
  isle__heap_t *h = isle__tl_heap;
  if (h != &isle__empty_heap)
    isle__heap_collect_local(h);
  isle__heap_sweep_abandoned();
  isle__pages_purge(false);
}

void isle_heap_trim(void) {
  isle__heap_t *h = isle__tl_heap;
  if (h != &isle__empty_heap)
    isle__heap_collect_local(h);
  isle__heap_sweep_abandoned();
  isle__pages_purge(true);
}

int isle_heap_set_thread_name(const char *name) {
  if (!name)
    return ISLE_EINVAL;
  isle__heap_t *h = isle__heap_local();
  if (!h)
    return ISLE_ENOMEM;
  set_name_local(h, name);
  return 0;
}

/* ===== Test hooks ====================================================== */

const void *isle__heap_self(void) {
  return isle__heap_local();
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
  out->block_size = isle__span_usable(s);
  out->cls = s->kind == ISLE__SPAN_SMALL ? (int)s->cls : -1;
  out->owner = atomic_load_explicit(&s->xowner, memory_order_relaxed);
  return 0;
}
