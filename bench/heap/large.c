/* isle — MIT licensed. */
/*
 * heap/large: one thread keeps 16 live blocks and replaces a random one per
 * op (free it, allocate a new one), sizes uniform in 32 KiB..4 MiB, the
 * first and last byte of each new block written; 1,000,000 pairs. Reports
 * ops/s (one op = one free + one malloc).
 *
 * Touching both ends makes the allocator's choice between reusing mapped
 * memory and mapping fresh pages show up as page faults. Both bytes hold a
 * value derived from the block's tag and are checked before the free; the
 * sum of the bytes read back must equal the sum written.
 */
#include "alloc_shim.h"
#include "bench_common.h"

#define SLOTS 16
#define PAIRS 1000000ULL
#define MIN_SIZE (32u << 10)
#define MAX_SIZE (4u << 20)

static unsigned char *slot[SLOTS];
static uint32_t size[SLOTS];
static uint64_t tag[SLOTS];
static uint64_t sum_written, sum_read;

static inline void fill(uint32_t i, uint64_t k, uint32_t sz) {
  unsigned char *p = BENCH_MALLOC(sz);
  if (p == NULL)
    bench_fail("allocation of %u B failed", sz);
  uint8_t b = bench_tail_byte(k);
  p[0] = b;
  p[sz - 1] = (uint8_t)~b;
  slot[i] = p;
  size[i] = sz;
  tag[i] = k;
  sum_written += 255;
}

static inline void drop(uint32_t i) {
  unsigned char *p = slot[i];
  uint8_t b = bench_tail_byte(tag[i]);
  if (p[0] != b || p[size[i] - 1] != (uint8_t)~b)
    bench_fail("block in slot %u (tag %llu) was overwritten", i,
               (unsigned long long)tag[i]);
  sum_read += (uint64_t)(p[0] + p[size[i] - 1]);
  BENCH_FREE(p);
}

int main(int argc, char **argv) {
  uint64_t pairs = bench_scaled(PAIRS, bench_parse_scale(argc, argv));
  bench_impl_check();

  bench_rng_t rng;
  bench_rng_seed(&rng, BENCH_SEED);
  uint64_t k = 1;
  for (uint32_t i = 0; i < SLOTS; i++)
    fill(i, k++, bench_rng_range(&rng, MIN_SIZE, MAX_SIZE));

  uint64_t t0 = bench_now_ns();
  for (uint64_t n = 0; n < pairs; n++) {
    uint32_t i = bench_rng_below(&rng, SLOTS);
    drop(i);
    fill(i, k++, bench_rng_range(&rng, MIN_SIZE, MAX_SIZE));
  }
  uint64_t t1 = bench_now_ns();

  for (uint32_t i = 0; i < SLOTS; i++)
    drop(i);
  if (sum_read != sum_written)
    bench_fail("bytes read back sum to %llu, written %llu",
               (unsigned long long)sum_read, (unsigned long long)sum_written);

  bench_check_all_freed();
  bench_report((double)pairs * 1e9 / (double)(t1 - t0), "ops/s", "");
  return 0;
}
