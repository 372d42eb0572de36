/* isle — MIT licensed. */
/*
 * Private declarations of the heap, shared by the files of heap/ (and by
 * white-box tests). Never installed.
 *
 * Map of the layer (the bottom one: it uses only the OS)
 *   pages.c     the global page pool: arenas, spans, purging to the OS
 *   classes.c   the size classes
 *   alloc.c     allocation and free, fast and slow paths; the public API
 *   remote.c    remote frees: batches back to the owning heap
 *   heap.c      thread heap records, the abandoned-span chain, sweeps
 *   stats.c     statistics and the flow matrix; profile.c the sampler
 *   validate.c  the ISLE_DEBUG validators
 *   table.c/.h  an intrusive hash table (names, timers); clock.h the clock;
 *               chaos.c/.h the chaos points; error.c, version.c
 *
 * Vocabulary
 * - page:  ISLE__PAGE_SIZE bytes, the unit the global page pool hands out.
 * - arena: ISLE__ARENA_SIZE bytes of address space, aligned to its size,
 *          mapped from the OS at once. Its first pages hold the arena header
 *          and one span descriptor per page; the rest are data pages.
 * - span:  a run of data pages with one job: the blocks of one size class
 *          (small), one large block, or free (in the pool). Its descriptor is
 *          the one of its first page; a per-page array says how far back
 *          the first page is (head_off), so a pointer into a small span or
 *          to the first byte of a large block finds its span with two loads:
 * arena = p & ~(ARENA_SIZE-1), i = (p - arena) / PAGE, then desc[i -
 * head_off[i]].
 * - heap:  the per-thread allocator (isle__heap_t): for each size class a
 *          ring of spans it owns and the span it allocates from now.
 *
 * Who touches what
 * - A span's local fields (free, used, extended) belong to its owning heap's
 *   thread. Other threads reach a span only through its atomic xfree list
 *   (remote frees) and its atomic xowner (to learn it is not theirs).
 * - Page descriptors of free runs and the bins belong to the page pool,
 *   under pool lock (pages.c).
 * - Abandoned spans and retired heap records live in lists under the chain
 *   lock (heap.c). Both locks guard short critical sections on slow paths
 *   only; the alloc/free fast paths take no lock and make no atomic RMW.
 */
#ifndef ISLE_HEAP_INTERNAL_H
#define ISLE_HEAP_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chaos.h"
#include "isle/error.h"
#include "isle/heap.h"

/* ===== Geometry ========================================================= */

#define ISLE__PAGE_SHIFT 13
#define ISLE__PAGE_SIZE ((size_t)1 << ISLE__PAGE_SHIFT) /* 8 KiB */
#define ISLE__ARENA_SHIFT 26
#define ISLE__ARENA_SIZE ((size_t)1 << ISLE__ARENA_SHIFT) /* 64 MiB */
#define ISLE__ARENA_PAGES (ISLE__ARENA_SIZE / ISLE__PAGE_SIZE)
/* Large blocks above this get an arena of their own ("huge"). */
#define ISLE__LARGE_MAX ((size_t)16 << 20)
#define ISLE__CLASSES ISLE_HEAP_CLASS_COUNT
#define ISLE__SMALL_MAX ((size_t)ISLE_HEAP_SMALL_MAX)
#define ISLE__MIN_ALIGN 16
/* Largest alignment isle_aligned_alloc accepts. */
#define ISLE__MAX_ALIGN ((size_t)16 << 20)
/* Remote frees travel in batches of at most this many blocks. 1 turns
 * batching off (one CAS per freed block, as mimalloc does). */
#ifndef ISLE_REMOTE_BATCH
#define ISLE_REMOTE_BATCH 64
#endif
#define ISLE__REMOTE_SLOTS_LOG2 5
/* Spans a thread batches remote frees for at once. */
#define ISLE__REMOTE_SLOTS (1u << ISLE__REMOTE_SLOTS_LOG2)

#define ISLE__CACHE_LINE 64

/* Columns of a heap's flow row (see isle__heap_s): column 0 collects the
 * blocks whose owner was unknown or had an id past the last column. */
#define ISLE__FLOW_COLS (ISLE_HEAP_FLOW_MAX_ID + 1)

/* ===== Types ============================================================ */

typedef struct isle__block_s {
  struct isle__block_s *next;
} isle__block_t;

typedef struct isle__heap_s isle__heap_t;
typedef struct isle__span_s isle__span_t;

enum isle__span_kind_e {
  ISLE__SPAN_NONE = 0, /* never used, or interior of a free run */
  ISLE__SPAN_FREE,     /* head or tail page of a free run in the pool */
  ISLE__SPAN_SMALL,    /* blocks of one size class */
  ISLE__SPAN_LARGE,    /* one large block from the pool */
  ISLE__SPAN_HUGE,     /* one block in an arena of its own */
  ISLE__SPAN_INTERIOR  /* debug builds: an interior page of a large span */
};

/*
 * A span descriptor: 128 bytes, two cache lines. The first holds what the
 * owner and the pool use; the second the remote-free list, so that other
 * threads' pushes do not bounce the owner's line.
 *
 * Invariant (small span): used + |free| + (capacity - extended) == capacity,
 *   where `used` counts every block not in `free`: blocks the user holds,
 *   blocks in another thread's batch, and blocks in `xfree` until the owner
 *   takes them in. A span is released to the pool only when used == 0, so
 *   a block in flight keeps its span alive. Debug builds check it with
 *   isle__span_validate (validate.c).
 */
struct isle__span_s {
  /* -- first line: what the free fast path reads, owner-written -- */
  union {
    isle__block_t *free; /* small, owner: blocks ready to hand out */
    uint64_t free_since; /* free run, pool: ms when it became free */
  };
  /* The owning thread's tag (isle__thread_tag) while a heap owns this
   * small span, else 0: the free fast path compares it with its own tag
   * without reading its heap pointer. */
  _Atomic uintptr_t xowner_tag;
  _Atomic(isle__heap_t *) xowner; /* owning heap, NULL when abandoned */
  _Atomic uint64_t *frees;        /* small: the owner's free counter */
  uint32_t block_size;            /* small: class size; large: usable bytes */
  uint16_t used;                  /* owner: blocks out (see invariant) */
  uint16_t capacity;              /* blocks that fit in the span */
  uint16_t extended; /* blocks carved from the span so far (lazily) */
  uint16_t npages;   /* pages in the span or free run (huge: 1) */
  uint8_t kind;      /* enum isle__span_kind_e */
  uint8_t cls;       /* small: size class */
  uint8_t dirty;     /* free run: some page may hold memory */
  uint8_t in_ring;   /* small: linked in its heap's class ring */
  /* -- second line: remote frees, and what only slow paths read -- */
  _Alignas(ISLE__CACHE_LINE) _Atomic(isle__block_t *) xfree;
  char *start;        /* first byte of the span */
  isle__span_t *next; /* class ring, free bin or abandoned list */
  isle__span_t *prev;
  char pad[ISLE__CACHE_LINE - 4 * sizeof(void *)];
};

_Static_assert(sizeof(isle__span_t) == 2 * ISLE__CACHE_LINE,
               "span descriptor is two cache lines");

typedef struct isle__arena_s {
  uint64_t magic;
  uint32_t first_data; /* index of the first data page */
  uint32_t npages;     /* pages covered by the descriptors (huge: 1 used) */
  size_t map_bytes;    /* bytes mapped for this arena (huge: the mapping) */
  struct isle__arena_s *next; /* pool's list of regular arenas */
  /* Per page: how many pages back its span's first page is. Kept apart
   * from the descriptors so that the first load of a lookup hits a dense
   * 16 KiB array rather than one 128-byte descriptor line per page. */
  uint16_t head_off[ISLE__ARENA_PAGES];
  _Alignas(ISLE__CACHE_LINE) isle__span_t desc[ISLE__ARENA_PAGES];
} isle__arena_t;

#define ISLE__ARENA_MAGIC UINT64_C(0x69736c6561726e61) /* "islearna" */

/* Per-class state of a heap. Counters are written only by the owner, with
 * relaxed stores (no RMW), and read by anyone with relaxed loads. */
typedef struct isle__heap_class_s {
  isle__span_t *cur;        /* span allocating now; never NULL */
  _Atomic uint64_t xallocs; /* blocks handed out (+ adopted) */
  _Atomic uint64_t xfrees;  /* blocks taken back (+ abandoned) */
  uint32_t spans;           /* spans in the ring */
  uint32_t reserved;
} isle__heap_class_t;

/* A batch of blocks freed by this thread for one foreign span. */
typedef struct isle__remote_batch_s {
  isle__span_t *span;
  isle__block_t *head;
  isle__block_t *tail;
  uint32_t count;
} isle__remote_batch_t;

struct isle__heap_s {
  isle__heap_class_t cls[ISLE__CLASSES];
  isle__remote_batch_t remote[ISLE__REMOTE_SLOTS];
  /* Owner-written counters (relaxed stores), readable by anyone. */
  _Atomic uint64_t xlarge_alloc_bytes;
  _Atomic uint64_t xlarge_alloc_count;
  _Atomic uint64_t xlarge_free_bytes; /* freed by the owner */
  _Atomic uint64_t xlarge_free_count;
  _Atomic uint64_t xsmall_span_bytes; /* bytes of small spans held */
  _Atomic uint64_t xpeak_held;
  _Atomic uint64_t xspans; /* small spans held */
  _Atomic uint64_t xrefills;
  _Atomic uint64_t xos_refills;
  _Atomic uint64_t xspans_returned;
  _Atomic uint64_t xspans_adopted;
  _Atomic uint64_t xremote_sent; /* counted when a batch is handed over */
  _Atomic uint64_t xremote_sent_bytes;
  _Atomic uint64_t xremote_received; /* small blocks taken in */
  _Atomic uint64_t xremote_received_bytes;
  _Atomic uint64_t xremote_batches;
  _Atomic uint64_t xos_returned_bytes; /* purged or unmapped by this thread */
  _Atomic uint64_t xos_returns;
  /* Written by other threads (fetch_add): large blocks of this heap they
   * freed. Relaxed: pure counters, nothing is published through them. */
  _Atomic uint64_t xlarge_remote_free_bytes;
  _Atomic uint64_t xlarge_remote_free_count;
  /* The flow row: blocks of heap j (column j, by heap id) this thread
   * freed, counted when their batch is handed over (large blocks at the
   * free). Owner-written, relaxed, like the counters above. */
  _Atomic uint64_t xflow_bytes[ISLE__FLOW_COLS];
  _Atomic uint64_t xflow_blocks[ISLE__FLOW_COLS];
  /* Identity. Atomic (relaxed) because a thread that frees a block reads
   * its owner's id without having synchronised with the owner's creation
   * (an adopter it never met); written once, before the record is
   * published. */
  _Atomic uint64_t xid;
  _Atomic uint64_t xtid; /* kernel tid of the owner, 0 when retired */
  _Atomic int xretired;
  _Atomic uint64_t xname[2]; /* 15 chars + NUL, owner-written, relaxed */
  _Atomic(isle__heap_t *) xall_next; /* registry of every heap record */
  isle__heap_t *retired_next;        /* under the chain lock */
  /* The span rings: one circular doubly linked list per class, reached
   * from cls[c].cur (the empty span when the ring is empty). */
};

/* ===== classes.c ======================================================= */

extern const uint32_t isle__class_size[ISLE__CLASSES];
extern const uint8_t isle__class_pages[ISLE__CLASSES];
extern const uint8_t isle__small_class[(1024 / 16) + 1];

/* Size class of a small request (size <= ISLE__SMALL_MAX). */
static inline unsigned isle__size_class(size_t size) {
  if (size <= 1024)
    return isle__small_class[(size + 15) >> 4];
  size_t m = size - 1;
  unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)m);
  return 8u + (b - 7u) * 8u + (unsigned)((m >> (b - 3u)) & 7u);
}

/* ===== pages.c: the global page pool =================================== */

/* The span holding `p`: two loads, no check. `p` must come from the heap. */
static inline isle__span_t *isle__span_of(const void *p) {
  uintptr_t a = (uintptr_t)p & ~(uintptr_t)(ISLE__ARENA_SIZE - 1);
  isle__arena_t *arena = (isle__arena_t *)a;
  size_t i = ((uintptr_t)p - a) >> ISLE__PAGE_SHIFT;
  return &arena->desc[i - arena->head_off[i]];
}

/* The head_off entry of descriptor `d`; index it to reach d + 1, d + 2. */
static inline uint16_t *isle__head_offs(isle__span_t *d) {
  isle__arena_t *arena =
      (isle__arena_t *)((uintptr_t)d & ~(uintptr_t)(ISLE__ARENA_SIZE - 1));
  return &arena->head_off[d - arena->desc];
}

/* Whether `p` lies in an arena the heap mapped (one bit test). */
bool isle__arena_known(const void *p);

/* A span of `npages` pages aligned to `align_pages` pages (power of two),
 * with kind, npages, start and head_off set; NULL at the heap limit or when
 * the OS refuses. `small` spans get head_off on every page. Any thread. */
isle__span_t *isle__pages_alloc(size_t npages, size_t align_pages, bool small);

/* Gives a span's pages back to the pool (coalescing). Any thread. */
void isle__pages_free(isle__span_t *s);

/* A huge block of `size` bytes aligned to `align` in an arena of its own;
 * returns its span (start = the block), or NULL. Any thread. */
isle__span_t *isle__huge_alloc(size_t size, size_t align);
void isle__huge_free(isle__span_t *s);
size_t isle__huge_usable(const isle__span_t *s);

/* Returns dirty free runs older than the purge delay to the OS; `force`
 * ignores the delay. Any thread. */
void isle__pages_purge(bool force);
void isle__pages_global_stats(isle_heap_global_stats_t *out);

/* Usable bytes of the block of a large or huge span, or of one block of a
 * small span. Inline: alloc.c (isle_usable_size, large frees) and the span
 * test hook in heap.c both need it; it was an inlined static before the
 * split. */
static inline size_t isle__span_usable(const isle__span_t *s) {
  return s->kind == ISLE__SPAN_HUGE ? isle__huge_usable(s) : s->block_size;
}

/* ===== heap.c: thread heap records and the global chain ================ */

extern isle__heap_t isle__empty_heap;
extern isle__span_t isle__empty_span;
/* The registry of every heap record (never shrinks; records are reused). */
extern _Atomic(isle__heap_t *) isle__heaps;
extern _Atomic uint64_t isle__heap_count;
extern _Atomic uint64_t isle__abandoned_spans;
extern _Atomic uint64_t isle__abandoned_live_bytes;

/* The calling thread's heap: &isle__empty_heap until it allocates (so the
 * fast paths need no NULL test) and again once it is retired. Shared by
 * heap.c, which installs and retires records, and alloc.c, whose fast
 * paths read it. Initial-exec, so a read is one %fs-relative load, as it
 * was when the variable was file-static. */
extern __thread isle__heap_t *isle__tl_heap
    __attribute__((tls_model("initial-exec")));

/* Creates (or reuses a retired) heap record for the calling thread and
 * installs it; NULL (errno ENOMEM) when no memory is left for records. */
isle__heap_t *isle__heap_init_local(void);

/* The calling thread's heap, created if needed; NULL when that fails.
 * Inline, as before the split: the common case is one TLS load and a
 * compare, on the large-allocation path (alloc.c) and the naming and test
 * hooks (heap.c). */
static inline isle__heap_t *isle__heap_local(void) {
  isle__heap_t *h = isle__tl_heap;
  if (__builtin_expect(h == &isle__empty_heap, 0))
    h = isle__heap_init_local();
  return h;
}

/* Takes in every remote free of the heap's spans and gives the empty spans
 * back, the current ones included. Owner thread. */
void isle__heap_collect_local(isle__heap_t *h);
/* Takes in the remote frees of abandoned spans and gives the emptied ones
 * back to the pool. Any thread. */
void isle__heap_sweep_abandoned(void);
/* Pops a span of class `c` abandoned by an exited thread (and takes it out
 * of the abandoned counters), or NULL; the caller then holds it alone and
 * adopts it. Any thread; takes the chain lock. */
isle__span_t *isle__chain_pop_abandoned(unsigned c);

/* Counts `bytes` given back to the OS (madvise or munmap) by the calling
 * thread against its heap, if it has one. Called by pages.c. */
void isle__heap_note_os_return(uint64_t bytes);

/* Aborts with a message (naming the pointer when one is given). */
_Noreturn void isle__heap_abort(const char *what, const void *ptr);

/* A word that identifies the calling thread while it lives: the thread
 * pointer (on x86-64 glibc, the TCB's self pointer at %fs:0). One load, no
 * TLS offset lookup. */
static inline uintptr_t isle__thread_tag(void) {
#if defined(__x86_64__)
  uintptr_t tp;
  __asm__("mov %%fs:0, %0" : "=r"(tp));
  return tp;
#else
  return (uintptr_t)__builtin_thread_pointer();
#endif
}

/* ===== remote.c: remote frees ========================================== */

/* Moves the blocks other threads freed into the span's free list; returns
 * how many. The caller owns the span (or holds it exclusively). */
uint32_t isle__span_collect(isle__span_t *s);
/* Owner bookkeeping after isle__span_collect took `n` blocks of `s`. */
void isle__note_collected_local(isle__heap_t *h, isle__span_t *s, uint32_t n);
/* Counts `blocks` blocks (`bytes` bytes) of `owner`'s heap as freed by
 * `h`, the calling thread's heap: its sent counters and its flow row.
 * Called once per batch (or large block), never per small block. */
void isle__note_sent_local(isle__heap_t *h, isle__heap_t *owner,
                           uint64_t blocks, uint64_t bytes);
/* Hands every batch that `h`, the calling thread's heap, holds to the
 * batch's span. */
void isle__batches_flush_local(isle__heap_t *h);
/* Frees small block `p` of span `s`, which the calling thread (heap `h`,
 * possibly &isle__empty_heap) does not own: into a batch, or alone onto
 * the span's xfree list when the thread has no heap. */
void isle__free_remote(isle__heap_t *h, isle__span_t *s, void *p);

/* ===== alloc.c: the allocation and free paths ========================== */

/* Unlinks small span `s` from its heap's class ring. Owner thread. */
void isle__span_ring_remove_local(isle__heap_t *h, isle__span_t *s);
/* Unlinks span `s` (used == 0) from its ring and gives its pages back to
 * the pool. Owner thread. */
void isle__span_release_local(isle__heap_t *h, isle__span_t *s);

/* ===== validate.c: debug validators (ISLE_DEBUG) ======================= */

/* Checks small span `s` against the invariant on isle__span_s, walking its
 * local free list and its pending remote frees (each walk bounded, so a
 * cycle is reported, not looped on); on a broken invariant prints
 * "isle heap: corrupt span ..." on stderr and aborts. The caller owns the
 * span or holds it exclusively. Defined only in ISLE_DEBUG builds: call it
 * through isle__debug_check_span (track.h), which vanishes otherwise. */
void isle__span_validate(const isle__span_t *s);
/* Checks a remote-free list just taken from s->xfree (so held by the
 * caller alone) before it is walked without a bound: every block inside
 * `s`, on a block boundary, at most once, and no more blocks than `s` has
 * out. Aborts like isle__span_validate. ISLE_DEBUG builds only: call it
 * through isle__debug_check_taken (track.h). */
void isle__remote_list_validate(const isle__span_t *s,
                                const isle__block_t *list);
/* Walks the calling thread's heap: every span of every class ring (ring
 * links, owner, isle__span_validate) and every pending remote-free batch;
 * aborts on corruption as above. Returns how many spans it checked: 0 in
 * builds without ISLE_DEBUG, where it checks nothing. */
size_t isle__heap_validate(void);

/* ===== Relaxed counter helpers (owner-written, anyone-read) ============ */

/* Owner-only increment: a relaxed load and store, no RMW instruction;
 * relaxed is enough because readers only want a recent value. */
static inline void isle__counter_add(_Atomic uint64_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                        memory_order_relaxed);
}
static inline uint64_t isle__counter_get(_Atomic uint64_t *c) {
  return atomic_load_explicit(c, memory_order_relaxed);
}

/* ===== profile.c ======================================================= */

/* Starts the sampler once per process when ISLE_PROFILE names a file.
 * Called by the first thread heap's creation; cheap after the first call. */
void isle__profile_autostart(void);

/* ===== Test hooks ====================================================== */

typedef struct isle__span_info_s {
  void *start;       /* first byte of the span's memory */
  size_t bytes;      /* span size in bytes (multiple of ISLE__PAGE_SIZE) */
  size_t block_size; /* small: class block size; large: usable bytes */
  int cls;           /* small class index, or -1 for a large/huge span */
  const void *owner; /* owning heap record, NULL when abandoned */
} isle__span_info_t;

/* 0 and fills *out when `p` lies in a live span the heap knows;
 * ISLE_EINVAL otherwise. */
int isle__heap_span_info(const void *p, isle__span_info_t *out);
/* The calling thread's heap record (created if needed). */
const void *isle__heap_self(void);

#endif /* ISLE_HEAP_INTERNAL_H */
