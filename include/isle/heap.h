/* isle — MIT licensed. */
/*
 * The isle heap: a malloc-compatible allocator in which every thread owns a
 * private heap. Allocation and freeing by the owning thread take no lock and
 * no atomic read-modify-write instruction. A block freed by another thread
 * (a "remote free", the normal fate of a message) is batched by the freeing
 * thread and handed back to the owning heap a batch at a time.
 *
 * Threads: every function may be called from any thread. A thread gets a
 * heap of its own on its first allocation and gives it up when it exits:
 * its empty spans go back to the page pool and the others wait, still
 * holding their live blocks, until a thread adopts them or
 * isle_heap_collect sweeps them.
 *
 * Ownership: isle_malloc and friends return a block the caller owns; the
 * caller gives it back with isle_free, from any thread.
 *
 * Errors: the allocation functions keep malloc's contract, not the ISLE_E*
 * one of the rest of the API: they return NULL and set errno (ENOMEM, or
 * EINVAL for a bad alignment). Their declarations carry the compiler's
 * malloc, alloc_size and warn_unused_result attributes (include/isle/api.h),
 * so a result left unused is a warning.
 */
#ifndef ISLE_HEAP_H
#define ISLE_HEAP_H

#include <stddef.h> /* size_t */
#include <stdint.h> /* uint64_t */

#include "isle/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ===== Allocation — any thread ======================================== */

/* The attributes (include/isle/api.h) stand on a line of their own above
 * each allocator. */
/* clang-format off */

/* A block of at least `size` bytes, aligned to 16 bytes, or NULL (errno
 * ENOMEM) when the heap limit is reached or the OS refuses memory.
 * isle_malloc(0) returns a unique minimal block. Ownership: the caller's. */
ISLE_API ISLE_MALLOC_ATTR ISLE_ALLOC_SIZE(1)
void *isle_malloc(size_t size);

/* Like isle_malloc for `count * size` bytes, zero-filled; NULL (errno
 * ENOMEM) also when the product overflows. Ownership: the caller's. */
ISLE_API ISLE_MALLOC_ATTR ISLE_ALLOC_SIZE2(1, 2)
void *isle_calloc(size_t count, size_t size);

/* Resizes `ptr` to `size` bytes, keeping the common prefix. NULL `ptr`
 * behaves like isle_malloc; size 0 frees `ptr` and returns NULL. On failure
 * returns NULL and `ptr` is left untouched and still owned by the caller.
 * Ownership: on success the old block is consumed, the new one is the
 * caller's. */
ISLE_API ISLE_NODISCARD ISLE_ALLOC_SIZE(2)
void *isle_realloc(void *ptr, size_t size);

/* A block of `size` bytes aligned to `alignment`, which must be a power of
 * two (up to 16 MiB); otherwise NULL with errno EINVAL. NULL with errno
 * ENOMEM at the heap limit. Ownership: the caller's; free with isle_free. */
ISLE_API ISLE_MALLOC_ATTR ISLE_ALLOC_SIZE(2) ISLE_ALLOC_ALIGN(1)
void *isle_aligned_alloc(size_t alignment, size_t size);

/* clang-format on */

/* Gives a block back. NULL is ignored. Any thread may free any block.
 * Debug builds (ISLE_DEBUG) abort with a message naming the pointer on a
 * double free or a pointer the heap never gave out. */
ISLE_API void isle_free(void *ptr);

/* The number of bytes usable in the block (>= the size asked for).
 * `ptr` must be a live block from this heap; NULL gives 0. */
ISLE_API size_t isle_usable_size(const void *ptr);

/* ===== Limits and maintenance — any thread ============================ */

/* Caps the bytes the heap holds in spans (all threads together, including
 * blocks cached for reuse). At the cap, allocation returns NULL; it works
 * again once frees bring the total below. 0 removes the cap (the default;
 * the environment variable ISLE_HEAP_LIMIT, in bytes, sets it at start).
 * Lowering the cap below current use is allowed: allocations needing new
 * spans fail until use falls. Can't fail. */
ISLE_API void isle_heap_set_limit(size_t bytes);

/* The current cap, 0 when none. */
ISLE_API size_t isle_heap_limit(void);

/* Sets how long free spans stay mapped before their pages go back to the OS
 * (madvise), in milliseconds; 0 returns them at once. Default 100 ms, or
 * the environment variable ISLE_HEAP_PURGE_DELAY_MS. Can't fail. */
ISLE_API void isle_heap_set_purge_delay(uint64_t ms);

/* Delivers this thread's pending remote frees to their owners, takes in the
 * blocks other threads freed for this thread's heap, gives this thread's
 * empty spans back to the page pool, and sweeps spans abandoned by
 * exited threads. Threads that free other threads' blocks and then stop
 * allocating should call this (the actor runtime does so when a worker goes
 * idle). Can't fail. */
ISLE_API void isle_heap_collect(void);

/* Returns every free span that has stayed unused to the OS now, whatever
 * the purge delay. Can't fail. */
ISLE_API void isle_heap_trim(void);

/* ===== Statistics — any thread, without stopping the owner ============ */

/* The number of small size classes; isle_heap_stats_t has one entry each. */
#define ISLE_HEAP_CLASS_COUNT 72
/* Requests above this many bytes are "large": they get whole spans. */
#define ISLE_HEAP_SMALL_MAX 32768

typedef struct isle_heap_class_stats_s {
  size_t block_size;     /* bytes per block in this class */
  uint64_t live_objects; /* blocks allocated and not yet freed back */
  uint64_t live_bytes;   /* live_objects * block_size */
} isle_heap_class_stats_t;

/* Counters of one thread heap. Each field is read atomically but the set is
 * not a single snapshot: a reader racing the owner may see one counter a
 * few operations ahead of another. Frees travelling back from other threads
 * count as live until the owner takes them in. A heap record outlives its
 * thread: a later thread may take the retired record over, and its
 * counters (refills, remote frees, ...) go on from where they were. */
typedef struct isle_heap_stats_s {
  uint64_t heap_id;    /* stable id of this heap record, from 1 */
  uint64_t thread_id;  /* kernel tid of the owning thread; 0 when retired */
  char name[16];       /* thread name given by isle_heap_set_thread_name */
  int retired;         /* 1 when the owning thread has exited */
  uint64_t live_bytes; /* small live bytes (by class) + large live bytes */
  uint64_t live_objects;
  uint64_t large_live_bytes; /* of which in large blocks */
  uint64_t large_live_objects;
  uint64_t held_bytes;      /* bytes of the spans this heap holds */
  uint64_t peak_held_bytes; /* the highest held_bytes so far */
  uint64_t spans_held;
  uint64_t refills;        /* spans taken from the global chain */
  uint64_t os_refills;     /* spans carved from fresh OS memory */
  uint64_t spans_returned; /* empty spans given back to the chain */
  uint64_t spans_adopted;  /* spans adopted from exited threads */
  /* Blocks (small and large) of other heaps this thread freed, counted
   * when handed over: a small block when its batch leaves (a full or
   * evicted batch, the allocation slow path, isle_heap_collect, thread
   * exit), a large one at once. */
  uint64_t remote_frees_sent;
  uint64_t remote_bytes_sent;
  /* Blocks of this heap other threads freed: small ones once this heap has
   * taken them in (slow path or isle_heap_collect), large ones at once. */
  uint64_t remote_frees_received;
  uint64_t remote_bytes_received;
  uint64_t remote_batches_sent; /* batches the small blocks travelled in */
  /* Bytes this thread's calls gave back to the OS (purges of free pages it
   * ran, huge blocks it unmapped) and how many madvise/munmap calls. The
   * page pool is shared, so this says who returned memory, not whose. */
  uint64_t os_returned_bytes;
  uint64_t os_returns;
  isle_heap_class_stats_t classes[ISLE_HEAP_CLASS_COUNT];
  uint64_t reserved_[17]; /* zero: room to grow (docs/guide.md, ABI) */
} isle_heap_stats_t;

/* Process-wide figures. */
typedef struct isle_heap_global_stats_s {
  uint64_t mapped_bytes; /* address space reserved from the OS */
  uint64_t in_use_bytes; /* bytes in spans held by heaps, counted by the cap */
  uint64_t free_bytes;   /* bytes in free spans of the global chain */
  uint64_t purged_bytes; /* of free_bytes, those returned to the OS */
  uint64_t abandoned_spans;      /* spans waiting for adoption */
  uint64_t abandoned_live_bytes; /* bytes live in those spans */
  uint64_t limit_bytes;          /* the cap, 0 when none */
  uint64_t heaps;        /* heap records ever created (live + retired) */
  uint64_t purges;       /* madvise calls made */
  uint64_t reserved_[7]; /* zero: room to grow (docs/guide.md, ABI) */
} isle_heap_global_stats_t;

/* Copies the calling thread's heap counters into *out (creating the heap if
 * the thread has none). Returns 0, ISLE_EINVAL for a NULL `out`, or
 * ISLE_ENOMEM when no heap record could be mapped. */
ISLE_API int isle_heap_stats_self(isle_heap_stats_t *out);

/* Copies the counters of up to `max` thread heaps (live and retired) into
 * out[0..max). Returns how many heaps exist, which may exceed `max`: call
 * again with a larger array to see them all. `out` may be NULL when `max`
 * is 0. Can't fail. */
ISLE_API size_t isle_heap_stats_all(isle_heap_stats_t *out, size_t max);

/* Copies the process-wide figures into *out. Returns 0, or ISLE_EINVAL for
 * a NULL `out`. */
ISLE_API int isle_heap_stats_global(isle_heap_global_stats_t *out);

/* Block size of small class `cls` (0 <= cls < ISLE_HEAP_CLASS_COUNT), or 0
 * when out of range. */
ISLE_API size_t isle_heap_class_size(unsigned cls);

/* The class a request of `size` bytes is served from, or -1 (as int) when
 * the request is large (> ISLE_HEAP_SMALL_MAX). */
ISLE_API int isle_heap_size_class(size_t size);

/* Names the calling thread's heap in statistics and profiles ("worker-0").
 * Longer names are cut to 15 bytes. A heap starts unnamed (""), except the
 * process's main thread's, which starts as "main". Returns 0, ISLE_EINVAL
 * for NULL, or ISLE_ENOMEM when no heap record could be mapped. */
ISLE_API int isle_heap_set_thread_name(const char *name);

/* ===== Flow matrix — any thread, without stopping the owners ========== */

/* Heap ids up to this get a column of their own in the flow matrix; blocks
 * of heaps with larger ids count under from_heap_id 0. Records of exited
 * threads are reused, so ids stay near the most threads alive at once. */
#define ISLE_HEAP_FLOW_MAX_ID 127

/* One cell of the flow matrix: blocks allocated from heap `from_heap_id`
 * and freed by the thread of heap `to_heap_id` (a remote free). */
typedef struct isle_heap_flow_s {
  uint64_t from_heap_id; /* the blocks' heap; 0: unknown (its thread had
                            exited and no heap owned the span) or an id
                            past ISLE_HEAP_FLOW_MAX_ID */
  uint64_t to_heap_id;   /* the heap of the freeing thread */
  uint64_t bytes;        /* block sizes (class size or usable bytes) */
  uint64_t blocks;
  uint64_t reserved_[4]; /* zero: room to grow (docs/guide.md, ABI) */
} isle_heap_flow_t;

/* Copies up to `max` non-zero cells of the flow matrix into out[0..max),
 * rows (to_heap_id) in registry order, columns by increasing from_heap_id.
 * Returns how many non-zero cells exist, which may exceed `max`: call again
 * with a larger array. A cell grows when the freeing thread hands its
 * blocks over (see remote_frees_sent), so a row sums to that heap's
 * remote_bytes_sent and remote_frees_sent. Frees by a thread that has no
 * heap (it never allocated nor named itself) are in no row. `out` may be
 * NULL when `max` is 0. Can't fail. Ownership: `out` is the caller's;
 * nothing is allocated. */
ISLE_API size_t isle_heap_flow(isle_heap_flow_t *out, size_t max);

/* ===== Profiling — any thread ========================================= */

/* Starts the sampler: a thread that writes a snapshot of every heap's
 * statistics and the flow matrix to `path` (created or truncated) every
 * `interval_ms` milliseconds, one JSON object per line, and a final one
 * at isle_profile_stop or process exit (docs/profiling.md gives the
 * format). The environment variable ISLE_PROFILE=path starts it by itself
 * when the first thread heap is created, with ISLE_PROFILE_INTERVAL_MS
 * (default 10). The sampler never allocates from the isle heap and owns
 * no heap record. Returns 0; ISLE_EINVAL for a NULL or empty path or an
 * interval of 0; ISLE_EBUSY when a sampler is already running; ISLE_EIO
 * when the file cannot be opened; ISLE_ENOMEM when the thread cannot be
 * started. On failure nothing runs and no file is left open. Ownership:
 * `path` is copied; the file belongs to the sampler until stop. */
ISLE_API int isle_profile_start(const char *path, unsigned interval_ms);

/* Stops the sampler: writes the final snapshot, closes the file and joins
 * the thread. Returns 0; ISLE_ESTATE when no sampler runs (in a child made
 * by fork, the parent's sampler counts as not running); ISLE_EIO when a
 * write failed at any point (the file is closed all the same). */
ISLE_API int isle_profile_stop(void);

/* Whether a sampler is running. Can't fail. */
ISLE_API int isle_profile_running(void);

#ifdef __cplusplus
}
#endif
#endif /* ISLE_HEAP_H */
