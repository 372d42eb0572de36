/* isle — MIT licensed. */
/*
 * Heap statistics: copies of the counters of every thread heap, read from
 * any thread while the owners keep running.
 *
 * Every counter is written by one thread with relaxed stores and read here
 * with relaxed loads: each value is exact for some recent moment, the set
 * is not one snapshot, and a live count (allocs - frees) is approximate
 * while its owner works, clamped at 0.
 */
#include <string.h>

#include "internal.h"

/* The public structs keep their size across 0.x releases that add fields
 * (they take from reserved_, docs/guide.md, ABI): a field added without
 * taking from it changes the size and fails here. LP64 sizes. */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(isle_heap_stats_t) == 2048,
               "isle_heap_stats_t: keep the size, take from reserved_");
_Static_assert(sizeof(isle_heap_global_stats_t) == 128,
               "isle_heap_global_stats_t: keep the size, take from reserved_");
_Static_assert(sizeof(isle_heap_flow_t) == 64,
               "isle_heap_flow_t: keep the size, take from reserved_");
#endif

static uint64_t load(_Atomic uint64_t *c) {
  return atomic_load_explicit(c, memory_order_relaxed);
}

/* allocs - frees for counters the owner may be updating: frees is read on
 * both sides of allocs and the pair retried until it held still, so a
 * reader paused between the loads does not count blocks freed meanwhile
 * as live. The owner's stores are relaxed, so on weakly ordered machines
 * this narrows the window rather than closing it; on x86 (TSO) the loads
 * and stores stay in program order and the pair is consistent. */
static uint64_t live_count(_Atomic uint64_t *allocs, _Atomic uint64_t *frees) {
  uint64_t a, f;
  for (int tries = 0;; tries++) {
    f = atomic_load_explicit(frees, memory_order_acquire);
    a = atomic_load_explicit(allocs, memory_order_acquire);
    if (atomic_load_explicit(frees, memory_order_acquire) == f || tries == 8)
      break;
  }
  return a > f ? a - f : 0;
}

static void heap_stats(isle__heap_t *h, isle_heap_stats_t *out) {
  memset(out, 0, sizeof *out);
  out->heap_id = load(&h->xid);
  out->thread_id = load(&h->xtid);
  out->retired = atomic_load_explicit(&h->xretired, memory_order_relaxed);
  uint64_t name[2] = {load(&h->xname[0]), load(&h->xname[1])};
  memcpy(out->name, name, sizeof out->name);
  out->name[sizeof out->name - 1] = '\0';
  for (unsigned c = 0; c < ISLE__CLASSES; c++) {
    uint64_t live = live_count(&h->cls[c].xallocs, &h->cls[c].xfrees);
    out->classes[c].block_size = isle__class_size[c];
    out->classes[c].live_objects = live;
    out->classes[c].live_bytes = live * isle__class_size[c];
    out->live_objects += live;
    out->live_bytes += live * isle__class_size[c];
  }
  /* Large blocks: owner frees and remote frees, the same way. */
  uint64_t remote_bytes = load(&h->xlarge_remote_free_bytes);
  uint64_t remote_count = load(&h->xlarge_remote_free_count);
  uint64_t live_bytes =
      live_count(&h->xlarge_alloc_bytes, &h->xlarge_free_bytes);
  uint64_t live_objects =
      live_count(&h->xlarge_alloc_count, &h->xlarge_free_count);
  out->large_live_bytes =
      live_bytes > remote_bytes ? live_bytes - remote_bytes : 0;
  out->large_live_objects =
      live_objects > remote_count ? live_objects - remote_count : 0;
  out->live_bytes += out->large_live_bytes;
  out->live_objects += out->large_live_objects;
  out->spans_held = load(&h->xspans);
  out->held_bytes = load(&h->xsmall_span_bytes) + out->large_live_bytes;
  /* As the owner keeps it: monotonic, updated when it takes memory. */
  out->peak_held_bytes = load(&h->xpeak_held);
  out->refills = load(&h->xrefills);
  out->os_refills = load(&h->xos_refills);
  out->spans_returned = load(&h->xspans_returned);
  out->spans_adopted = load(&h->xspans_adopted);
  out->remote_frees_sent = load(&h->xremote_sent);
  out->remote_bytes_sent = load(&h->xremote_sent_bytes);
  out->remote_frees_received = load(&h->xremote_received) + remote_count;
  out->remote_bytes_received = load(&h->xremote_received_bytes) + remote_bytes;
  out->remote_batches_sent = load(&h->xremote_batches);
  out->os_returned_bytes = load(&h->xos_returned_bytes);
  out->os_returns = load(&h->xos_returns);
}

/* The first heap record of the registry. Acquire: pairs with the release
 * CAS that published each record, so its id and counters' addresses are
 * seen initialised. */
static isle__heap_t *registry_first(void) {
  return atomic_load_explicit(&isle__heaps, memory_order_acquire);
}

static isle__heap_t *registry_next(isle__heap_t *h) {
  return atomic_load_explicit(&h->xall_next, memory_order_relaxed);
}

int isle_heap_stats_self(isle_heap_stats_t *out) {
  if (!out)
    return ISLE_EINVAL;
  isle__heap_t *h = (isle__heap_t *)isle__heap_self();
  if (!h)
    return ISLE_ENOMEM;
  heap_stats(h, out);
  return 0;
}

size_t isle_heap_stats_all(isle_heap_stats_t *out, size_t max) {
  size_t n = 0;
  for (isle__heap_t *h = registry_first(); h; h = registry_next(h)) {
    if (out && n < max)
      heap_stats(h, &out[n]);
    n++;
  }
  return n;
}

size_t isle_heap_flow(isle_heap_flow_t *out, size_t max) {
  size_t n = 0;
  for (isle__heap_t *h = registry_first(); h; h = registry_next(h)) {
    uint64_t to = load(&h->xid);
    for (unsigned col = 0; col < ISLE__FLOW_COLS; col++) {
      /* Like every counter here, each value is exact for a recent
       * moment; while the row's owner frees, blocks and bytes may be one
       * batch apart. */
      uint64_t blocks = load(&h->xflow_blocks[col]);
      uint64_t bytes = load(&h->xflow_bytes[col]);
      if (blocks == 0 && bytes == 0)
        continue;
      if (out && n < max)
        out[n] = (isle_heap_flow_t){.from_heap_id = col,
                                    .to_heap_id = to,
                                    .bytes = bytes,
                                    .blocks = blocks};
      n++;
    }
  }
  return n;
}

int isle_heap_stats_global(isle_heap_global_stats_t *out) {
  if (!out)
    return ISLE_EINVAL;
  memset(out, 0, sizeof *out);
  isle__pages_global_stats(out);
  out->abandoned_spans =
      atomic_load_explicit(&isle__abandoned_spans, memory_order_relaxed);
  out->abandoned_live_bytes =
      atomic_load_explicit(&isle__abandoned_live_bytes, memory_order_relaxed);
  out->heaps = atomic_load_explicit(&isle__heap_count, memory_order_relaxed);
  return 0;
}

size_t isle_heap_class_size(unsigned cls) {
  return cls < ISLE__CLASSES ? isle__class_size[cls] : 0;
}

int isle_heap_size_class(size_t size) {
  if (size > ISLE__SMALL_MAX)
    return -1;
  return (int)isle__size_class(size);
}
