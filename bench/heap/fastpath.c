/* isle — MIT licensed. */
/*
 * heap/fastpath: malloc + free of 32 B in a tight loop, one thread;
 * 100,000,000 pairs. Reports ns/pair.
 *
 * Each block gets one byte written and read back (summed into a checksum)
 * so neither the compiler nor the allocator can skip the block; the sum is
 * checked against its closed form.
 */
#include "alloc_shim.h"
#include "bench_common.h"

#define PAIRS 100000000ULL
#define SIZE 32
#define WARMUP 10000

int main(int argc, char **argv) {
  uint64_t pairs = bench_scaled(PAIRS, bench_parse_scale(argc, argv));
  bench_impl_check();

  for (int i = 0; i < WARMUP; i++) {
    void *p = BENCH_MALLOC(SIZE);
    if (p == NULL)
      bench_fail("allocation failed in warm-up");
    bench_escape(p);
    BENCH_FREE(p);
  }

  uint64_t sum = 0;
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < pairs; i++) {
    unsigned char *p = BENCH_MALLOC(SIZE);
    if (p == NULL)
      bench_fail("allocation %llu failed", (unsigned long long)i);
    p[0] = (unsigned char)i;
    p[SIZE - 1] = (unsigned char)(i >> 8);
    bench_escape(p);
    sum += p[0] + p[SIZE - 1];
    BENCH_FREE(p);
  }
  uint64_t t1 = bench_now_ns();

  /* sum over i < pairs of (i & 255) + ((i >> 8) & 255), in closed form. */
  uint64_t expect = 0;
  uint64_t full = pairs / 256, rest = pairs % 256;
  expect += full * (255 * 256 / 2) + rest * (rest - 1) / 2;
  uint64_t full2 = pairs / 65536, rest2 = pairs % 65536;
  expect += full2 * 256 * (255 * 256 / 2);
  /* the partial 64 Ki block: rest2 / 256 complete runs of each high byte
   * value, then rest2 % 256 more of value rest2 / 256. */
  uint64_t hi = rest2 / 256;
  expect += 256 * (hi * (hi - 1) / 2) + (rest2 % 256) * hi;
  if (sum != expect)
    bench_fail("checksum %llu, expected %llu", (unsigned long long)sum,
               (unsigned long long)expect);

  bench_check_all_freed();
  bench_report((double)(t1 - t0) / (double)pairs, "ns/pair", "");
  return 0;
}
