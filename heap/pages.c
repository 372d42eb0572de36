/* isle — MIT licensed. */
/*
 * The global page pool: arenas from the OS, cut into spans.
 *
 * Memory comes from mmap in arenas of 64 MiB aligned to their size, so the
 * arena of any pointer is the pointer with its low 26 bits cleared. An
 * arena's header holds one 128-byte descriptor per 8 KiB page (1 MiB of
 * address space, touched only where used). Free pages form free runs: the
 * head and tail descriptors of a run say it is free and how long it is, so
 * a released span merges with free neighbours in O(1). Runs wait in 134
 * bins by length (exact up to 127 pages, then one bin per power of two), and a
 * bitmap of non-empty bins makes the best-fit search a few word scans.
 *
 * Free runs keep their memory (dirty) for the purge delay, so a span that
 * is freed and soon reused costs no page faults; older dirty runs go back
 * to the OS with madvise(MADV_DONTNEED) whenever the pool is used next, or
 * at once on isle_heap_trim.
 *
 * Threads: every function may be called by any thread. One mutex, the pool
 * lock, guards bins, runs and arena list; it is taken only when a thread
 * heap needs or returns a whole span (once per thousands of small blocks)
 * or a large block. The byte counters are atomics so statistics read them
 * without the lock. Huge blocks (> 16 MiB) get a mapping of their own and
 * never touch the lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h> /* mmap, munmap, madvise */

#include "clock.h"
#include "internal.h"
#include "track.h"

/* ===== Constants ======================================================= */

#define EXACT_BINS 128
#define BINS (EXACT_BINS + 6) /* then 128..255, ..., 4096..8191 pages */
#define BITMAP_WORDS ((BINS + 63) / 64)
/* One bit per possible arena in a 48-bit address space (512 KiB of zero
 * pages, touched only where arenas are). */
#define KNOWN_WORDS (((size_t)1 << (48 - ISLE__ARENA_SHIFT)) / 64)

/* ===== Process state: the pool ========================================= */

static struct {
  pthread_mutex_t lock;
  isle__span_t *bins[BINS];      /* free runs, doubly linked */
  uint64_t bitmap[BITMAP_WORDS]; /* bit b: bins[b] is not empty */
  isle__arena_t *arenas;         /* regular arenas, newest first */
  uint64_t last_purge_ms;
  uint64_t dirty_pages; /* pages in dirty free runs */
  /* Read without the lock by statistics. */
  _Atomic uint64_t xmapped;     /* bytes reserved from the OS */
  _Atomic uint64_t xin_use;     /* bytes in spans held by heaps */
  _Atomic uint64_t xfree_pages; /* pages in free runs */
  _Atomic uint64_t xpurges;
  _Atomic uint64_t xlimit;       /* cap on xin_use, 0 for none */
  _Atomic uint64_t xpurge_delay; /* ms */
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .xpurge_delay = 100,
};

/* Arenas the heap mapped: the debug check of foreign pointers and the
 * span lookup of the test hooks read it. Bits are set (release) before a
 * pointer in the arena is handed out, so any thread holding such a pointer
 * sees the bit with an acquire load. */
static _Atomic uint64_t known[KNOWN_WORDS];

/* ===== Helpers ========================================================= */

/* Milliseconds of the coarse monotonic clock: the purge delay's unit. */
static uint64_t now_ms(void) {
  return isle__now_coarse_ns() / 1000000u;
}

static pthread_once_t configured = PTHREAD_ONCE_INIT;

static void configure(void) {
  const char *v = getenv("ISLE_HEAP_LIMIT");
  if (v && *v)
    atomic_store_explicit(&pool.xlimit, strtoull(v, NULL, 10),
                          memory_order_relaxed);
  v = getenv("ISLE_HEAP_PURGE_DELAY_MS");
  if (v && *v)
    atomic_store_explicit(&pool.xpurge_delay, strtoull(v, NULL, 10),
                          memory_order_relaxed);
}

/* Reads the environment once, before any setter or allocation can run:
 * pthread_once makes a racing isle_heap_set_limit wait for it, so the
 * environment never overwrites a value set in code. */
static void configure_once(void) {
  pthread_once(&configured, configure);
}

static void known_set(const void *base, bool on) {
  size_t i = (uintptr_t)base >> ISLE__ARENA_SHIFT;
  if (i / 64 >= KNOWN_WORDS)
    return;
  uint64_t bit = UINT64_C(1) << (i % 64);
  if (on)
    atomic_fetch_or_explicit(&known[i / 64], bit, memory_order_release);
  else
    atomic_fetch_and_explicit(&known[i / 64], ~bit, memory_order_release);
}

bool isle__arena_known(const void *p) {
  size_t i = (uintptr_t)p >> ISLE__ARENA_SHIFT;
  if (i / 64 >= KNOWN_WORDS)
    return false;
  /* Acquire: pairs with the release in known_set. */
  return (atomic_load_explicit(&known[i / 64], memory_order_acquire) >>
          (i % 64)) &
         1;
}

/* `size` bytes aligned to `align` (a multiple of the page size) from mmap,
 * address space only (MAP_NORESERVE): pages commit when touched. */
static void *map_aligned(size_t size, size_t align) {
  size_t total = size + align;
  char *raw = mmap(NULL, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED)
    return NULL;
  char *p = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  if (p > raw)
    munmap(raw, (size_t)(p - raw));
  size_t tail = (size_t)(raw + total - (p + size));
  if (tail)
    munmap(p + size, tail);
  return p;
}

static size_t arena_first_data(void) {
  size_t header =
      offsetof(isle__arena_t, desc) + sizeof(isle__span_t) * ISLE__ARENA_PAGES;
  return (header + ISLE__PAGE_SIZE - 1) >> ISLE__PAGE_SHIFT;
}

static inline isle__arena_t *arena_of(const isle__span_t *s) {
  return (isle__arena_t *)((uintptr_t)s & ~(uintptr_t)(ISLE__ARENA_SIZE - 1));
}

static inline size_t page_index(const isle__span_t *s) {
  return (size_t)(s - arena_of(s)->desc);
}

static unsigned bin_of(size_t npages) {
  if (npages <= EXACT_BINS - 1)
    return (unsigned)npages - 1u; /* bins 0..126: exactly 1..127 pages */
  unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)npages);
  return EXACT_BINS - 1u + (b - 7u); /* 127: 128..255, 128: 256..511 ... */
}

/* ===== Free runs (pool lock held) ======================================= */

static void bin_insert(isle__span_t *run) {
  unsigned b = bin_of(run->npages);
  run->prev = NULL;
  run->next = pool.bins[b];
  if (run->next)
    run->next->prev = run;
  pool.bins[b] = run;
  pool.bitmap[b / 64] |= UINT64_C(1) << (b % 64);
}

static void bin_remove(isle__span_t *run) {
  unsigned b = bin_of(run->npages);
  if (run->prev)
    run->prev->next = run->next;
  else
    pool.bins[b] = run->next;
  if (run->next)
    run->next->prev = run->prev;
  if (!pool.bins[b])
    pool.bitmap[b / 64] &= ~(UINT64_C(1) << (b % 64));
}

/* Writes the head (and tail) descriptors of a free run and bins it. */
static void run_make(isle__span_t *head, size_t npages, bool dirty,
                     uint64_t since) {
  head->kind = ISLE__SPAN_FREE;
  head->npages = (uint16_t)npages;
  isle__head_offs(head)[0] = 0;
  head->dirty = dirty;
  head->free_since = since;
  atomic_store_explicit(&head->xowner, NULL, memory_order_relaxed);
  atomic_store_explicit(&head->xowner_tag, 0, memory_order_relaxed);
  head->start = (char *)arena_of(head) + page_index(head) * ISLE__PAGE_SIZE;
  if (npages > 1) {
    isle__span_t *tail = head + npages - 1;
    tail->kind = ISLE__SPAN_FREE;
    isle__head_offs(tail)[0] = (uint16_t)(npages - 1);
  }
  if (dirty)
    pool.dirty_pages += npages;
  bin_insert(head);
}

static void run_take(isle__span_t *run) {
  bin_remove(run);
  if (run->dirty)
    pool.dirty_pages -= run->npages;
}

/* The smallest free run of at least `npages` pages, taken out of its bin;
 * NULL when none. */
static isle__span_t *run_find(size_t npages) {
  unsigned b = bin_of(npages);
  if (b >= EXACT_BINS - 1) {
    /* A power-of-two bin mixes lengths: first fit inside it. */
    for (isle__span_t *r = pool.bins[b]; r; r = r->next)
      if (r->npages >= npages) {
        run_take(r);
        return r;
      }
    b++;
  }
  for (unsigned w = b / 64; w < BITMAP_WORDS; w++) {
    uint64_t bits = pool.bitmap[w];
    if (w == b / 64)
      bits &= ~UINT64_C(0) << (b % 64);
    if (bits) {
      isle__span_t *r = pool.bins[w * 64 + (unsigned)__builtin_ctzll(bits)];
      run_take(r);
      return r;
    }
  }
  return NULL;
}

static void purge_locked(bool force) {
  uint64_t now = now_ms();
  uint64_t delay =
      atomic_load_explicit(&pool.xpurge_delay, memory_order_relaxed);
  pool.last_purge_ms = now;
  if (pool.dirty_pages == 0)
    return;
  for (unsigned b = 0; b < BINS; b++)
    for (isle__span_t *r = pool.bins[b]; r; r = r->next) {
      if (!r->dirty || (!force && now - r->free_since < delay))
        continue;
      madvise(r->start, (size_t)r->npages * ISLE__PAGE_SIZE, MADV_DONTNEED);
      isle__heap_note_os_return((uint64_t)r->npages * ISLE__PAGE_SIZE);
      r->dirty = 0;
      pool.dirty_pages -= r->npages;
      atomic_fetch_add_explicit(&pool.xpurges, 1, memory_order_relaxed);
    }
}

static void maybe_purge_locked(void) {
  uint64_t delay =
      atomic_load_explicit(&pool.xpurge_delay, memory_order_relaxed);
  if (pool.dirty_pages && now_ms() - pool.last_purge_ms >= delay / 2)
    purge_locked(false);
}

static bool arena_grow_locked(void) {
  isle__arena_t *a = map_aligned(ISLE__ARENA_SIZE, ISLE__ARENA_SIZE);
  if (!a)
    return false;
  size_t first = arena_first_data();
  a->magic = ISLE__ARENA_MAGIC;
  a->first_data = (uint32_t)first;
  a->npages = (uint32_t)ISLE__ARENA_PAGES;
  a->map_bytes = ISLE__ARENA_SIZE;
  a->next = pool.arenas;
  pool.arenas = a;
  atomic_fetch_add_explicit(&pool.xmapped, ISLE__ARENA_SIZE,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&pool.xfree_pages, ISLE__ARENA_PAGES - first,
                            memory_order_relaxed);
  known_set(a, true);
  run_make(&a->desc[first], ISLE__ARENA_PAGES - first, false, 0);
  return true;
}

/* ===== Internal functions ============================================== */

/* Reserves `bytes` against the limit; false when that would pass it.
 * A CAS loop so that racing threads cannot overshoot together. */
static bool in_use_reserve(size_t bytes) {
  uint64_t limit = atomic_load_explicit(&pool.xlimit, memory_order_relaxed);
  uint64_t cur = atomic_load_explicit(&pool.xin_use, memory_order_relaxed);
  do {
    if (limit && cur + bytes > limit)
      return false;
    /* Relaxed: a counter; the memory itself is published by the lock. */
  } while (!atomic_compare_exchange_weak_explicit(
      &pool.xin_use, &cur, cur + bytes, memory_order_relaxed,
      memory_order_relaxed));
  return true;
}

static void in_use_release(size_t bytes) {
  atomic_fetch_sub_explicit(&pool.xin_use, bytes, memory_order_relaxed);
}

isle__span_t *isle__pages_alloc(size_t npages, size_t align_pages, bool small) {
  configure_once();
  size_t bytes = npages * ISLE__PAGE_SIZE;
  if (!in_use_reserve(bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t want = npages + (align_pages > 1 ? align_pages - 1 : 0);
  pthread_mutex_lock(&pool.lock);
  isle__span_t *run = run_find(want);
  if (!run && arena_grow_locked())
    run = run_find(want);
  if (!run) {
    pthread_mutex_unlock(&pool.lock);
    in_use_release(bytes);
    errno = ENOMEM;
    return NULL;
  }
  size_t have = run->npages;
  bool dirty = run->dirty;
  uint64_t since = run->free_since;
  size_t idx = page_index(run);
  isle__arena_t *a = arena_of(run);
  /* Align the start: give the pages before it back as a run of their own. */
  size_t lead = 0;
  if (align_pages > 1) {
    lead = (align_pages - idx % align_pages) % align_pages;
    if (lead)
      run_make(run, lead, dirty, since);
  }
  isle__span_t *s = &a->desc[idx + lead];
  size_t rest = have - lead - npages;
  if (rest)
    run_make(s + npages, rest, dirty, since);
  /* The head and tail descriptors are what a neighbour's release reads,
   * under the lock, to merge free runs: mark them in use before unlocking. */
  uint8_t kind = small ? ISLE__SPAN_SMALL : ISLE__SPAN_LARGE;
  s->kind = kind;
  s->npages = (uint16_t)npages;
  isle__head_offs(s)[0] = 0;
  if (npages > 1) {
    s[npages - 1].kind = kind;
    isle__head_offs(s)[npages - 1] = (uint16_t)(npages - 1);
  }
  atomic_fetch_sub_explicit(&pool.xfree_pages, npages, memory_order_relaxed);
  maybe_purge_locked();
  pthread_mutex_unlock(&pool.lock);

  /* The span is ours now: set the rest of it outside the lock. */
  s->dirty = dirty; /* tells the heap whether the OS must supply pages */
  atomic_store_explicit(&s->xowner_tag, 0, memory_order_relaxed);
  atomic_store_explicit(&s->xowner, NULL, memory_order_relaxed);
  s->free = NULL;
  s->used = s->capacity = s->extended = 0;
  s->in_ring = 0;
  s->next = s->prev = NULL;
  s->start = (char *)a + (idx + lead) * ISLE__PAGE_SIZE;
  atomic_store_explicit(&s->xfree, NULL, memory_order_relaxed);
  /* Every page of a small span resolves to it; of a large span only the
   * first, which holds the only pointer ever freed, and the last, which
   * the pool reads when merging neighbours. */
  if (small) {
    for (size_t i = 1; i + 1 < npages; i++) {
      isle__head_offs(s)[i] = (uint16_t)i;
      s[i].kind = ISLE__SPAN_SMALL;
    }
  } else if (npages > 1) {
    if (ISLE_DEBUG)
      for (size_t i = 1; i + 1 < npages; i++) {
        s[i].kind = ISLE__SPAN_INTERIOR;
        isle__head_offs(s)[i] = 0;
      }
  }
  return s;
}

void isle__pages_free(isle__span_t *s) {
  size_t npages = s->npages;
  isle__track_pages_free(s->start, npages * ISLE__PAGE_SIZE);
  isle__arena_t *a = arena_of(s);
  size_t idx = page_index(s);
  /* The interior pages of a small span stop resolving to it (catches
   * frees of stale pointers in debug builds). Head and tail are read by
   * neighbours' releases, so they change under the lock below. */
  if (s->kind == ISLE__SPAN_SMALL)
    for (size_t i = 1; i + 1 < npages; i++)
      s[i].kind = ISLE__SPAN_NONE;
  atomic_store_explicit(&s->xowner, NULL, memory_order_relaxed);
  atomic_store_explicit(&s->xowner_tag, 0, memory_order_relaxed);
  uint64_t now = now_ms();

  pthread_mutex_lock(&pool.lock);
  s->kind = ISLE__SPAN_NONE;
  s[npages - 1].kind = ISLE__SPAN_NONE;
  isle__span_t *head = s;
  size_t total = npages;
  if (idx > a->first_data) {
    isle__span_t *prev = &a->desc[idx - 1];
    if (prev->kind == ISLE__SPAN_FREE) {
      prev -= isle__head_offs(prev)[0];
      run_take(prev);
      total += prev->npages;
      head = prev;
    }
  }
  if (idx + npages < ISLE__ARENA_PAGES) {
    isle__span_t *next = &a->desc[idx + npages];
    if (next->kind == ISLE__SPAN_FREE && isle__head_offs(next)[0] == 0) {
      run_take(next);
      total += next->npages;
      next->kind = ISLE__SPAN_NONE;
    }
  }
  if (head != s) {
    /* The old tail of the run before us becomes an interior page. */
    isle__span_t *old_tail = s - 1;
    old_tail->kind = ISLE__SPAN_NONE;
  }
  run_make(head, total, true, now);
  atomic_fetch_add_explicit(&pool.xfree_pages, npages, memory_order_relaxed);
  in_use_release(npages * ISLE__PAGE_SIZE);
  if (atomic_load_explicit(&pool.xpurge_delay, memory_order_relaxed) == 0)
    purge_locked(true);
  else
    maybe_purge_locked();
  pthread_mutex_unlock(&pool.lock);
}

void isle__pages_purge(bool force) {
  pthread_mutex_lock(&pool.lock);
  purge_locked(force);
  pthread_mutex_unlock(&pool.lock);
}

/* ===== Huge blocks ===================================================== */

isle__span_t *isle__huge_alloc(size_t size, size_t align) {
  configure_once();
  size_t first = arena_first_data() * ISLE__PAGE_SIZE;
  if (align < ISLE__PAGE_SIZE)
    align = ISLE__PAGE_SIZE;
  size_t offset = (first + align - 1) & ~(align - 1);
  if (size > SIZE_MAX - offset - ISLE__ARENA_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t usable = (size + ISLE__PAGE_SIZE - 1) & ~(ISLE__PAGE_SIZE - 1);
  size_t map_bytes = offset + usable;
  if (!in_use_reserve(map_bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  isle__arena_t *a = map_aligned(map_bytes, ISLE__ARENA_SIZE);
  if (!a) {
    in_use_release(map_bytes);
    errno = ENOMEM;
    return NULL;
  }
  a->magic = ISLE__ARENA_MAGIC;
  a->first_data = (uint32_t)(offset >> ISLE__PAGE_SHIFT);
  a->npages = 1;
  a->map_bytes = map_bytes;
  isle__span_t *s = &a->desc[offset >> ISLE__PAGE_SHIFT];
  s->kind = ISLE__SPAN_HUGE;
  s->npages = 1;
  isle__head_offs(s)[0] = 0;
  s->start = (char *)a + offset;
  s->block_size = usable > UINT32_MAX ? UINT32_MAX : (uint32_t)usable;
  atomic_fetch_add_explicit(&pool.xmapped, map_bytes, memory_order_relaxed);
  known_set(a, true);
  return s;
}

void isle__huge_free(isle__span_t *s) {
  isle__arena_t *a = arena_of(s);
  size_t map_bytes = a->map_bytes;
  s->kind = ISLE__SPAN_NONE;
  known_set(a, false);
  /* Tools keep their view of the range past munmap: clear it, or the next
   * mapping at this address would inherit the freed block's poison. */
  isle__track_pages_free(a, map_bytes);
  munmap(a, map_bytes);
  isle__heap_note_os_return(map_bytes);
  atomic_fetch_sub_explicit(&pool.xmapped, map_bytes, memory_order_relaxed);
  in_use_release(map_bytes);
}

/* Usable bytes of a huge block: its mapping minus the header. */
size_t isle__huge_usable(const isle__span_t *s) {
  const isle__arena_t *a = arena_of(s);
  return a->map_bytes - (size_t)(s->start - (const char *)a);
}

/* ===== Public functions ================================================ */

void isle_heap_set_limit(size_t bytes) {
  configure_once();
  atomic_store_explicit(&pool.xlimit, bytes, memory_order_relaxed);
}

size_t isle_heap_limit(void) {
  configure_once();
  return (size_t)atomic_load_explicit(&pool.xlimit, memory_order_relaxed);
}

void isle_heap_set_purge_delay(uint64_t ms) {
  configure_once();
  atomic_store_explicit(&pool.xpurge_delay, ms, memory_order_relaxed);
}

void isle__pages_global_stats(isle_heap_global_stats_t *out) {
  configure_once();
  out->mapped_bytes = atomic_load_explicit(&pool.xmapped, memory_order_relaxed);
  out->in_use_bytes = atomic_load_explicit(&pool.xin_use, memory_order_relaxed);
  pthread_mutex_lock(&pool.lock);
  out->free_bytes =
      atomic_load_explicit(&pool.xfree_pages, memory_order_relaxed) *
      ISLE__PAGE_SIZE;
  out->purged_bytes = out->free_bytes - pool.dirty_pages * ISLE__PAGE_SIZE;
  pthread_mutex_unlock(&pool.lock);
  out->purges = atomic_load_explicit(&pool.xpurges, memory_order_relaxed);
  out->limit_bytes = atomic_load_explicit(&pool.xlimit, memory_order_relaxed);
}
