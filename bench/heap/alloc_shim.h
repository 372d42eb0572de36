/* isle — MIT licensed. */
/*
 * The allocator under test, chosen at compile time. Every heap workload
 * allocates through BENCH_MALLOC / BENCH_FREE only, so one source file
 * measures every implementation:
 *
 *   -DBENCH_ISLE                   isle_malloc / isle_free (libisle, static)
 *   (nothing)                      malloc / free, i.e. whatever the link
 *                                  made `malloc` resolve to: glibc, or
 *                                  mimalloc / jemalloc / tcmalloc when that
 *                                  library is linked ahead of libc.
 *   -DBENCH_EXPECT_LIB="libfoo"    the shared object `malloc` must resolve
 *                                  to; bench_impl_check() exits non-zero
 *                                  otherwise, so a link that silently fell
 *                                  back to glibc never reports figures.
 *
 * Workloads are compiled with -fno-builtin-malloc -fno-builtin-free for
 * every implementation, so the compiler treats malloc exactly as it treats
 * isle_malloc (an opaque call it can neither elide nor fold).
 */
#ifndef BENCH_ALLOC_SHIM_H
#define BENCH_ALLOC_SHIM_H

#include <dlfcn.h>  /* dlsym, dladdr: which library `malloc` resolved to */
#include <stdint.h> /* uint64_t */
#include <stdio.h>  /* fprintf */
#include <stdlib.h> /* malloc, free, exit */
#include <string.h> /* strstr */

#ifdef BENCH_ISLE
#include <isle.h>
#define BENCH_MALLOC(n) isle_malloc(n)
#define BENCH_FREE(p) isle_free(p)
#define BENCH_IMPL "isle"
#else
#define BENCH_MALLOC(n) malloc(n)
#define BENCH_FREE(p) free(p)
#define BENCH_IMPL "libc-malloc"
#endif

/* Called by every thread of a two-thread workload just before it exits.
 * The isle heap batches the frees of other threads' blocks; collecting
 * delivers the last partial batch so no block is left in flight. */
static inline void bench_thread_done(void) {
#ifdef BENCH_ISLE
  isle_heap_collect();
#endif
}

/* Called by main once every block is freed and every worker joined: for
 * isle, the heaps' own counters must agree that nothing is live (after a
 * collect, which takes in the last remote frees and sweeps the spans of
 * exited threads). A block lost in transit between heaps fails the run.
 * Other allocators have no such counters; nothing to check. */
static inline void bench_check_all_freed(void) {
#ifdef BENCH_ISLE
  isle_heap_collect();
  size_t n = isle_heap_stats_all(NULL, 0);
  /* plain malloc is glibc's here: the stats buffer is not measured. */
  isle_heap_stats_t *st = calloc(n ? n : 1, sizeof *st);
  if (st == NULL) {
    fprintf(stderr, "all-freed check: out of memory\n");
    exit(1);
  }
  n = isle_heap_stats_all(st, n);
  uint64_t objects = 0, bytes = 0;
  for (size_t i = 0; i < n; i++) {
    objects += st[i].live_objects;
    bytes += st[i].live_bytes;
  }
  free(st);
  isle_heap_global_stats_t g;
  isle_heap_stats_global(&g);
  if (objects != 0 || g.abandoned_live_bytes != 0) {
    fprintf(stderr,
            "FAIL: isle heaps report %llu live blocks (%llu B) and %llu B "
            "live in abandoned spans after every block was freed\n",
            (unsigned long long)objects, (unsigned long long)bytes,
            (unsigned long long)g.abandoned_live_bytes);
    exit(1);
  }
#endif
}

/* Proves, at run time, that the implementation measured is the one named:
 * `malloc` must come from BENCH_EXPECT_LIB, and the library's own entry
 * points must answer. Prints what it found on stderr. */
static inline void bench_impl_check(void) {
#ifdef BENCH_ISLE
  void *p = isle_malloc(24);
  if (p == NULL || isle_usable_size(p) < 24) {
    fprintf(stderr, "impl check: isle_malloc does not answer\n");
    exit(3);
  }
  isle_free(p);
  fprintf(stderr, "impl check: isle_malloc (libisle, static)\n");
#else
  Dl_info info;
  void *sym = dlsym(RTLD_DEFAULT, "malloc");
  if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL) {
    fprintf(stderr, "impl check: cannot resolve malloc\n");
    exit(3);
  }
#ifdef BENCH_EXPECT_LIB
  if (strstr(info.dli_fname, BENCH_EXPECT_LIB) == NULL) {
    fprintf(stderr, "impl check: malloc comes from %s, expected %s\n",
            info.dli_fname, BENCH_EXPECT_LIB);
    exit(3);
  }
#endif
  /* A library-specific probe: a block from malloc must be one of theirs. */
  void *p = malloc(24);
  const char *extra = "";
  char buf[64] = "";
  int (*mi_version)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "mi_version");
  _Bool (*mi_in_heap)(const void *) =
      (_Bool(*)(const void *))dlsym(RTLD_DEFAULT, "mi_is_in_heap_region");
  const char *(*tc_version)(int *, int *, const char **) =
      (const char *(*)(int *, int *, const char **))dlsym(RTLD_DEFAULT,
                                                          "tc_version");
  int (*mallctl)(const char *, void *, size_t *, void *, size_t) =
      (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(
          RTLD_DEFAULT, "mallctl");
  if (strstr(info.dli_fname, "mimalloc") != NULL) {
    if (mi_version == NULL || mi_in_heap == NULL || !mi_in_heap(p)) {
      fprintf(stderr, "impl check: malloc'd block is not mimalloc's\n");
      exit(3);
    }
    snprintf(buf, sizeof buf, " (mi_version %d, block in mimalloc heap)",
             mi_version());
    extra = buf;
  } else if (strstr(info.dli_fname, "jemalloc") != NULL) {
    const char *v = NULL;
    size_t len = sizeof v;
    if (mallctl == NULL || mallctl("version", &v, &len, NULL, 0) != 0) {
      fprintf(stderr, "impl check: jemalloc mallctl does not answer\n");
      exit(3);
    }
    snprintf(buf, sizeof buf, " (jemalloc %.40s)", v);
    extra = buf;
  } else if (strstr(info.dli_fname, "tcmalloc") != NULL) {
    if (tc_version == NULL) {
      fprintf(stderr, "impl check: tc_version missing\n");
      exit(3);
    }
    snprintf(buf, sizeof buf, " (%.40s)", tc_version(NULL, NULL, NULL));
    extra = buf;
  }
  free(p);
  fprintf(stderr, "impl check: malloc from %s%s\n", info.dli_fname, extra);
#endif
}

#endif /* BENCH_ALLOC_SHIM_H */
