// isle — MIT licensed.
//
// Helpers shared by the CAF versions of the actors workloads
// (bench/actors/caf/<name>.cpp), the peer of bench/actors/<name>.c. CAF
// 0.17 (Debian libcaf-dev), C++17, event-based actors with dynamically
// typed behaviors and atoms, as CAF's own examples write them.
//
//   prog [--scale X] [--workers N]
//
// The same arguments and the same one stdout line as the isle versions
// (actors_common.h): value=... unit=... rss_kb=... . --workers N sets CAF's
// "scheduler.max-threads" to N; 0 (the default) means one per CPU
// (std::thread::hardware_concurrency), as for isle. (CAF's own default would
// be max(CPUs, 4).)
//
// Results come back to main through a scoped_actor: the actor that sees
// the end of the workload sends it a done message with the timestamps
// taken inside the actors, so the time measured is the same span as in the
// isle version.
#ifndef BENCH_ACTORS_CAF_COMMON_HPP
#define BENCH_ACTORS_CAF_COMMON_HPP

#include <caf/all.hpp>

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <time.h>

namespace bench {

// Same seed as bench/heap/bench_common.h: the same random choices as isle.
constexpr uint64_t seed = 0x15e1f00dULL;

[[noreturn]] inline void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stderr, "FAIL: ");
  std::vfprintf(stderr, fmt, ap);
  std::fprintf(stderr, "\n");
  va_end(ap);
  std::exit(1);
}

struct args {
  double scale = 1.0;
  unsigned workers = 0; // resolved: never 0 after parse()
};

inline args parse(int argc, char **argv) {
  args a;
  for (int i = 1; i < argc; i++) {
    char *end;
    if (std::strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      a.scale = std::strtod(argv[++i], &end);
      if (*end != '\0' || !(a.scale > 0.0) || a.scale > 100.0)
        fail("bad --scale value '%s'", argv[i]);
    } else if (std::strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
      unsigned long w = std::strtoul(argv[++i], &end, 10);
      if (*end != '\0' || w > 1024)
        fail("bad --workers value '%s'", argv[i]);
      a.workers = static_cast<unsigned>(w);
    } else {
      std::fprintf(stderr, "usage: %s [--scale X] [--workers N]\n", argv[0]);
      std::exit(2);
    }
  }
  if (a.workers == 0) {
    unsigned n = std::thread::hardware_concurrency();
    a.workers = n ? n : 1;
  }
  return a;
}

inline uint64_t scaled(uint64_t n, double scale) {
  long long v = std::llround(static_cast<double>(n) * scale);
  return v < 1 ? 1 : static_cast<uint64_t>(v);
}

// The actor system's configuration: only the worker count differs from
// CAF's defaults.
inline void configure(caf::actor_system_config &cfg, const args &a) {
  cfg.set("scheduler.max-threads", static_cast<size_t>(a.workers));
}

inline uint64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<uint64_t>(ts.tv_nsec);
}

// A field of /proc/self/status in kB ("VmHWM" = peak RSS, "VmRSS" = now).
inline long status_kb(const char *field) {
  FILE *f = std::fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  size_t n = std::strlen(field);
  if (f == nullptr)
    return -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
      kb = std::strtol(line + n + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kb;
}

inline long peak_rss_kb() {
  return status_kb("VmHWM");
}
inline long rss_kb() {
  return status_kb("VmRSS");
}

// The one stdout line.
inline void report(double value, const char *unit, long rss,
                   const std::string &extra = "") {
  std::printf("value=%.6g unit=%s rss_kb=%ld%s%s\n", value, unit, rss,
              extra.empty() ? "" : " ", extra.c_str());
  std::fflush(stdout);
}

inline void describe(const char *what, caf::actor_system &sys) {
  std::fprintf(stderr, "caf %s: %zu worker(s) (scheduler.max-threads)\n", what,
               sys.scheduler().num_workers());
}

// xorshift64* seeded through splitmix64, as bench_rng_t in
// bench/heap/bench_common.h: the same streams for the same seeds.
struct rng {
  uint64_t s = 1;
  explicit rng(uint64_t seed_value = 1) {
    uint64_t z = seed_value + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    s = z ? z : 1;
  }
  uint64_t next() {
    uint64_t x = s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s = x;
    return x * 0x2545F4914F6CDD1DULL;
  }
  // Uniform in [0, n) for n < 2^32.
  uint32_t below(uint32_t n) {
    return static_cast<uint32_t>(((next() >> 32) * uint64_t{n}) >> 32);
  }
};

} // namespace bench

#endif // BENCH_ACTORS_CAF_COMMON_HPP
