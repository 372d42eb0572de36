// isle — MIT licensed.
//
// actors/caf/fjthrput: the CAF peer of bench/actors/fjthrput.c. A driver
// sends round-robin to 64 workers, 100,000 messages per worker, and each
// worker does a tiny computation per message; reports msgs/s.
//
// As in the isle version: the driver spawns the 64 workers and sends itself
// (continue); each (continue) sends one chunk of 1,000 (work, k) messages,
// message k to worker k mod 64, then another (continue). A worker folds
// each value into an accumulator with fj_step and, after its last message,
// sends (done, index, count, accumulator) to the driver and quits. Checks:
// every worker's count and accumulator against main's precomputed values,
// each worker reports once. Timing from the driver's first (continue) to
// its 64th (done), inside the driver.
#include "caf_common.hpp"

#include <vector>

using namespace caf;

namespace {

constexpr uint64_t workers = 64;
constexpr uint64_t per_worker_default = 100000;
constexpr uint64_t chunk = 1000;

using work_atom = atom_constant<atom("work")>;
using continue_atom = atom_constant<atom("continue")>;
using done_atom = atom_constant<atom("done")>;

// The tiny computation, as in the isle version.
inline uint64_t fj_step(uint64_t acc, uint64_t v) {
  uint64_t x = acc ^ (v * 0x9E3779B97F4A7C15ULL);
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ULL;
}

struct worker_state {
  uint64_t count = 0;
  uint64_t acc = 0;
};

behavior worker(stateful_actor<worker_state> *self, uint64_t index, uint64_t n,
                actor driver) {
  return {
      [=](work_atom, uint64_t v) {
        auto &st = self->state;
        st.acc = fj_step(st.acc, v);
        if (++st.count < n)
          return;
        self->send(driver, done_atom::value, index, st.count, st.acc);
        self->quit();
      },
  };
}

struct driver_state {
  std::vector<actor> workers;
  uint64_t sent = 0;
  uint64_t dones = 0;
  uint64_t continues = 0;
  uint64_t reported = 0; // bit i: worker i reported
  uint64_t t0 = 0;
};

behavior driver(stateful_actor<driver_state> *self, uint64_t per,
                const std::vector<uint64_t> *expect, actor reporter) {
  const uint64_t total = per * workers;
  for (uint64_t i = 0; i < workers; i++)
    self->state.workers.push_back(
        self->spawn(worker, i, per, actor_cast<actor>(self)));
  self->send(self, continue_atom::value);
  return {
      [=](continue_atom) {
        auto &st = self->state;
        if (st.sent == 0)
          st.t0 = bench::now_ns();
        st.continues++;
        uint64_t end = st.sent + chunk < total ? st.sent + chunk : total;
        for (; st.sent < end; st.sent++)
          self->send(st.workers[st.sent % workers], work_atom::value, st.sent);
        if (st.sent < total)
          self->send(self, continue_atom::value);
      },
      [=](done_atom, uint64_t i, uint64_t count, uint64_t acc) {
        auto &st = self->state;
        if (i >= workers || ((st.reported >> i) & 1) || count != per ||
            acc != (*expect)[i])
          bench::fail("done from worker %llu: count %llu acc %016llx",
                      static_cast<unsigned long long>(i),
                      static_cast<unsigned long long>(count),
                      static_cast<unsigned long long>(acc));
        st.reported |= uint64_t{1} << i;
        if (++st.dones == workers) {
          self->send(reporter, done_atom::value, st.t0, bench::now_ns(),
                     st.continues);
          st.workers.clear();
          self->quit();
        }
      },
  };
}

} // namespace

int main(int argc, char **argv) {
  auto args = bench::parse(argc, argv);
  const uint64_t per = bench::scaled(per_worker_default, args.scale);
  const uint64_t total = per * workers;
  std::vector<uint64_t> expect(workers, 0);
  for (uint64_t k = 0; k < total; k++)
    expect[k % workers] = fj_step(expect[k % workers], k);
  actor_system_config cfg;
  bench::configure(cfg, args);
  actor_system sys{cfg};
  uint64_t t0 = 0, t1 = 0, continues = 0;
  {
    scoped_actor self{sys};
    sys.spawn(driver, per, &expect, actor_cast<actor>(self));
    self->receive([&](done_atom, uint64_t a, uint64_t b, uint64_t k) {
      t0 = a;
      t1 = b;
      continues = k;
    });
  }
  if (continues != (total + chunk - 1) / chunk)
    bench::fail("%llu chunks, expected %llu",
                static_cast<unsigned long long>(continues),
                static_cast<unsigned long long>((total + chunk - 1) / chunk));
  bench::describe("fjthrput", sys);
  std::fprintf(stderr,
               "caf fjthrput: %llu workers x %llu messages, round-robin in "
               "chunks of %llu with a (continue) to itself between chunks\n",
               static_cast<unsigned long long>(workers),
               static_cast<unsigned long long>(per),
               static_cast<unsigned long long>(chunk));
  bench::report(static_cast<double>(total) /
                    (static_cast<double>(t1 - t0) * 1e-9),
                "msgs/s", bench::peak_rss_kb());
  return 0;
}
