/* isle — MIT licensed. */
/*
 * heap/frag: allocate 2,000,000 × 24 B and 1,000,000 × 100 B (interleaved:
 * 24, 24, 100, 24, 24, 100, ...), free every other one of those 3,000,000
 * blocks (the odd-numbered), then allocate 1,000,000 × 48 B. Every block is
 * filled completely, so the pages it occupies are resident.
 *
 * Reports:
 *   value  = rss_kb: peak RSS of the process (VmHWM), which includes the
 *            bench's own ~32 MB of pointer arrays (mmap'd, not from the
 *            allocator, identical for every implementation) and the
 *            process baseline;
 *   ratio  = (RSS at the end - RSS just before the first allocation)
 *            / bytes live at the end (1,000,000 × 24 + 500,000 × 100
 *            + 1,000,000 × 48 = 122,000,000 B at full size):
 *            the memory the allocator needs per byte the program holds
 *            after freeing holes it cannot reuse for the new size.
 *
 * Every live block's first, middle and last byte are checked at the end
 * against the block's fill byte, and their sum against the sum written.
 */
#include "alloc_shim.h"
#include "bench_common.h"

#define SMALL_COUNT 2000000ULL  /* 24 B */
#define MEDIUM_COUNT 1000000ULL /* 100 B */
#define NEW_COUNT 1000000ULL    /* 48 B */

static inline uint32_t first_size(uint64_t i) {
  return i % 3 == 2 ? 100 : 24;
}
static inline uint8_t fill_byte(uint64_t i) {
  return (uint8_t)(i * 7 + 1);
}

static uint64_t sum_written;

static unsigned char *make(uint64_t i, uint32_t sz) {
  unsigned char *p = BENCH_MALLOC(sz);
  if (p == NULL)
    bench_fail("allocation %llu of %u B failed", (unsigned long long)i, sz);
  memset(p, fill_byte(i), sz);
  sum_written += 3u * fill_byte(i);
  return p;
}

static uint64_t check(unsigned char *p, uint64_t i, uint32_t sz) {
  uint8_t b = fill_byte(i);
  if (p[0] != b || p[sz / 2] != b || p[sz - 1] != b)
    bench_fail("block %llu (%u B) was overwritten", (unsigned long long)i, sz);
  return (uint64_t)p[0] + p[sz / 2] + p[sz - 1];
}

int main(int argc, char **argv) {
  double scale = bench_parse_scale(argc, argv);
  /* Keep the 2:1 mix exact: scale the 100 B count, derive the rest. */
  uint64_t medium = bench_scaled(MEDIUM_COUNT, scale);
  uint64_t first = 3 * medium; /* = small + medium, small = 2 * medium */
  uint64_t fresh = bench_scaled(NEW_COUNT, scale);
  bench_impl_check();

  unsigned char **old = bench_map(first * sizeof *old);
  unsigned char **neu = bench_map(fresh * sizeof *neu);
  /* Let the allocator set itself up before the baseline is read. */
  void *warm = BENCH_MALLOC(24);
  if (warm == NULL)
    bench_fail("warm-up allocation failed");
  bench_escape(warm);
  BENCH_FREE(warm);
  long base_kb = bench_rss_kb();

  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < first; i++)
    old[i] = make(i, first_size(i));
  uint64_t sum_freed = 0;
  for (uint64_t i = 1; i < first; i += 2) {
    sum_freed += check(old[i], i, first_size(i));
    BENCH_FREE(old[i]);
    old[i] = NULL;
  }
  for (uint64_t j = 0; j < fresh; j++)
    neu[j] = make(first + j, 48);
  uint64_t t1 = bench_now_ns();

  long end_kb = bench_rss_kb();
  uint64_t live = 0;
  for (uint64_t i = 0; i < first; i += 2)
    live += first_size(i);
  live += 48 * fresh;

  uint64_t sum_read = sum_freed;
  for (uint64_t i = 0; i < first; i += 2) {
    sum_read += check(old[i], i, first_size(i));
    BENCH_FREE(old[i]);
  }
  for (uint64_t j = 0; j < fresh; j++) {
    sum_read += check(neu[j], first + j, 48);
    BENCH_FREE(neu[j]);
  }
  if (sum_read != sum_written)
    bench_fail("bytes read back sum to %llu, written %llu",
               (unsigned long long)sum_read, (unsigned long long)sum_written);

  double ratio = (double)(end_kb - base_kb) * 1024.0 / (double)live;
  fprintf(stderr, "frag: baseline %ld kB, end %ld kB, live %llu B, %.1f ms\n",
          base_kb, end_kb, (unsigned long long)live, (double)(t1 - t0) / 1e6);
  char extra[128];
  snprintf(extra, sizeof extra, "ratio=%.4f live_bytes=%llu end_rss_kb=%ld",
           ratio, (unsigned long long)live, end_kb);
  bench_check_all_freed();
  bench_report((double)bench_peak_rss_kb(), "rss_kb", extra);
  return 0;
}
