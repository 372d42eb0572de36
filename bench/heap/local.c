/* isle — MIT licensed. */
/*
 * heap/local: one thread keeps 10,000 live blocks and replaces a random one
 * per op (free it, allocate a new one), sizes uniform in 16..512 B;
 * 50,000,000 ops. Reports ns/op (one op = one free + one malloc).
 *
 * Every block carries its tag k in its first 8 bytes and a byte derived
 * from k in its last byte; both are checked before the block is freed (an
 * allocator handing out overlapping blocks fails here), and the sum of tags
 * read back must equal the sum of tags written.
 */
#include "alloc_shim.h"
#include "bench_common.h"

#define SLOTS 10000
#define OPS 50000000ULL
#define MIN_SIZE 16
#define MAX_SIZE 512

static unsigned char **slot;
static uint32_t *size;
static uint64_t sum_written, sum_read;

static inline void fill(uint32_t i, uint64_t k, uint32_t sz) {
  unsigned char *p = BENCH_MALLOC(sz);
  if (p == NULL)
    bench_fail("allocation of %u B failed", sz);
  memcpy(p, &k, sizeof k);
  p[sz - 1] = bench_tail_byte(k);
  slot[i] = p;
  size[i] = sz;
  sum_written += k;
}

static inline void drop(uint32_t i) {
  unsigned char *p = slot[i];
  uint64_t k;
  memcpy(&k, p, sizeof k);
  if (p[size[i] - 1] != bench_tail_byte(k))
    bench_fail("block in slot %u (tag %llu) was overwritten", i,
               (unsigned long long)k);
  sum_read += k;
  BENCH_FREE(p);
}

int main(int argc, char **argv) {
  uint64_t ops = bench_scaled(OPS, bench_parse_scale(argc, argv));
  bench_impl_check();
  slot = bench_map(SLOTS * sizeof *slot);
  size = bench_map(SLOTS * sizeof *size);

  bench_rng_t rng;
  bench_rng_seed(&rng, BENCH_SEED);
  uint64_t k = 1;
  for (uint32_t i = 0; i < SLOTS; i++)
    fill(i, k++, bench_rng_range(&rng, MIN_SIZE, MAX_SIZE));

  uint64_t t0 = bench_now_ns();
  for (uint64_t n = 0; n < ops; n++) {
    uint32_t i = bench_rng_below(&rng, SLOTS);
    drop(i);
    fill(i, k++, bench_rng_range(&rng, MIN_SIZE, MAX_SIZE));
  }
  uint64_t t1 = bench_now_ns();

  for (uint32_t i = 0; i < SLOTS; i++)
    drop(i);
  if (sum_read != sum_written)
    bench_fail("tags read back sum to %llu, written %llu",
               (unsigned long long)sum_read, (unsigned long long)sum_written);

  bench_check_all_freed();
  bench_report((double)(t1 - t0) / (double)ops, "ns/op", "");
  return 0;
}
