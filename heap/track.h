/* isle — MIT licensed. */
/*
 * Tool hooks of the heap, in one place: AddressSanitizer poisoning,
 * Valgrind client requests, and debug checks. Each expands to nothing when
 * its tool is off, so call sites carry no #if.
 *
 * A free block is poisoned whole; the heap reads and writes the free-list
 * link in its first word through isle__link_get / isle__link_set, which
 * open that word for the moment of the access.
 */
#ifndef ISLE_HEAP_TRACK_H
#define ISLE_HEAP_TRACK_H

#include <stddef.h>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define ISLE__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ISLE__ASAN 1
#endif
#endif
#ifndef ISLE__ASAN
#define ISLE__ASAN 0
#endif

#ifndef ISLE_DEBUG
#define ISLE_DEBUG 0
#endif

/* Valgrind client requests cost a few instructions and a stack frame on
 * every call even outside Valgrind: debug builds only. */
#if defined(__has_include) && ISLE_DEBUG
#if __has_include(<valgrind/memcheck.h>) && !ISLE__ASAN
#include <valgrind/memcheck.h> /* client requests: free blocks */
#define ISLE__VALGRIND 1
#endif
#endif
#ifndef ISLE__VALGRIND
#define ISLE__VALGRIND 0
#endif

#if ISLE__ASAN
#include <sanitizer/asan_interface.h> /* manual poisoning */
#endif

/* Blocks handed to the user. */
static inline void isle__track_alloc(void *p, size_t size) {
#if ISLE__ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, size);
#endif
#if ISLE__VALGRIND
  VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, 0);
#endif
  (void)p;
  (void)size;
}

/* Blocks taken back from the user. */
static inline void isle__track_free(void *p, size_t size) {
#if ISLE__ASAN
  ASAN_POISON_MEMORY_REGION(p, size);
#endif
#if ISLE__VALGRIND
  VALGRIND_FREELIKE_BLOCK(p, 0);
#endif
  (void)p;
  (void)size;
}

/* Fresh span memory the heap has not handed out yet. */
static inline void isle__track_fresh(void *p, size_t size) {
#if ISLE__ASAN
  ASAN_POISON_MEMORY_REGION(p, size);
#endif
  (void)p;
  (void)size;
}

/* Pages going back to the pool: open them again for whoever comes next. */
static inline void isle__track_pages_free(void *p, size_t size) {
#if ISLE__ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, size);
#endif
#if ISLE__VALGRIND
  VALGRIND_MAKE_MEM_UNDEFINED(p, size);
#endif
  (void)p;
  (void)size;
}

static inline isle__block_t *isle__link_get(isle__block_t *b) {
#if ISLE__ASAN
  ASAN_UNPOISON_MEMORY_REGION(b, sizeof *b);
  isle__block_t *n = b->next;
  ASAN_POISON_MEMORY_REGION(b, sizeof *b);
  return n;
#elif ISLE__VALGRIND
  VALGRIND_MAKE_MEM_DEFINED(b, sizeof *b);
  isle__block_t *n = b->next;
  VALGRIND_MAKE_MEM_NOACCESS(b, sizeof *b);
  return n;
#else
  return b->next;
#endif
}

static inline void isle__link_set(isle__block_t *b, isle__block_t *next) {
#if ISLE__ASAN
  ASAN_UNPOISON_MEMORY_REGION(b, sizeof *b);
  b->next = next;
  ASAN_POISON_MEMORY_REGION(b, sizeof *b);
#elif ISLE__VALGRIND
  VALGRIND_MAKE_MEM_UNDEFINED(b, sizeof *b);
  b->next = next;
  VALGRIND_MAKE_MEM_NOACCESS(b, sizeof *b);
#else
  b->next = next;
#endif
}

/* ----- Debug checks (ISLE_DEBUG): double free ----------------------------
 * A freed small block carries a mark in its second word (the first is the
 * free-list link); a free that finds the mark is a double free. Under ASan
 * the poisoning itself tells: a free block's first byte is poisoned. */
#define ISLE__FREE_MARK UINT64_C(0x1f5eb10cdeadf4ee)

static inline void isle__debug_on_alloc(void *p) {
#if ISLE_DEBUG && !ISLE__ASAN
  ((uint64_t *)p)[1] = 0;
#endif
  (void)p;
}

static inline void isle__debug_on_free(void *p) {
#if ISLE_DEBUG && !ISLE__ASAN
  ((uint64_t *)p)[1] = ISLE__FREE_MARK ^ (uint64_t)(uintptr_t)p;
#endif
  (void)p;
}

/* Whether `p` (the start of a small block) is already free. */
static inline bool isle__debug_is_free(const void *p) {
#if ISLE_DEBUG && ISLE__ASAN
  return __asan_address_is_poisoned(p) != 0;
#elif ISLE_DEBUG
  /* Under Valgrind this read of a free block is itself reported too. */
  return ((const uint64_t *)p)[1] == (ISLE__FREE_MARK ^ (uint64_t)(uintptr_t)p);
#else
  (void)p;
  return false;
#endif
}

/* ----- Debug checks (ISLE_DEBUG): validators -----------------------------
 * The validators of validate.c, run where the heap touches a whole span
 * anyway: a span refilled (remote frees taken in, or blocks carved), swept
 * (collection, sweeps of abandoned spans), abandoned at thread exit or
 * given back to the pool; and a remote-free list as soon as its owner takes
 * it. Each walk is bounded by the span's capacity. */
static inline void isle__debug_check_span(const isle__span_t *s) {
#if ISLE_DEBUG
  isle__span_validate(s);
#endif
  (void)s;
}

static inline void isle__debug_check_taken(const isle__span_t *s,
                                           const isle__block_t *list) {
#if ISLE_DEBUG
  isle__remote_list_validate(s, list);
#endif
  (void)s;
  (void)list;
}

#endif /* ISLE_HEAP_TRACK_H */
