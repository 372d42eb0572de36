// isle — MIT licensed.
//
// actors/caf/counting: the CAF peer of bench/actors/counting.c. One
// producer sends 10,000,000 increments to one counter, then asks for the
// total; reports msgs/s.
//
// As in the isle version the producer sends in chunks of 1,000 (inc, i)
// messages per handler call and sends itself (continue) between chunks;
// after the last chunk it sends (get) and the counter's handler returns
// (total, count, sum), which CAF delivers to the producer. Checks: the
// counter saw the increments in order, count N and sum N(N-1)/2. Timing
// from the producer's first (continue) to the total, inside the producer.
#include "caf_common.hpp"

using namespace caf;

namespace {

constexpr uint64_t increments = 10000000;
constexpr uint64_t chunk = 1000;

using inc_atom = atom_constant<atom("inc")>;
using get_atom_ = atom_constant<atom("get")>;
using total_atom = atom_constant<atom("total")>;
using continue_atom = atom_constant<atom("continue")>;
using done_atom = atom_constant<atom("done")>;

struct counter_state {
  uint64_t count = 0;
  uint64_t sum = 0;
};

behavior counter(stateful_actor<counter_state> *self) {
  return {
      [=](inc_atom, uint64_t v) {
        auto &st = self->state;
        if (v != st.count)
          bench::fail("counter: increment %llu arrived as number %llu",
                      static_cast<unsigned long long>(v),
                      static_cast<unsigned long long>(st.count));
        st.count++;
        st.sum += v;
      },
      [=](get_atom_) -> result<total_atom, uint64_t, uint64_t> {
        self->quit();
        return {total_atom::value, self->state.count, self->state.sum};
      },
  };
}

struct producer_state {
  actor counter;
  uint64_t sent = 0;
  uint64_t continues = 0;
  uint64_t t0 = 0;
};

behavior producer(stateful_actor<producer_state> *self, uint64_t n,
                  actor reporter) {
  self->state.counter = self->spawn(counter);
  self->send(self, continue_atom::value);
  return {
      [=](continue_atom) {
        auto &st = self->state;
        if (st.sent == 0)
          st.t0 = bench::now_ns();
        st.continues++;
        uint64_t end = st.sent + chunk < n ? st.sent + chunk : n;
        for (; st.sent < end; st.sent++)
          self->send(st.counter, inc_atom::value, st.sent);
        if (st.sent < n)
          self->send(self, continue_atom::value);
        else
          self->send(st.counter, get_atom_::value);
      },
      [=](total_atom, uint64_t count, uint64_t sum) {
        auto &st = self->state;
        self->send(reporter, done_atom::value, st.t0, bench::now_ns(), count,
                   sum, st.continues);
        self->quit();
      },
  };
}

} // namespace

int main(int argc, char **argv) {
  auto args = bench::parse(argc, argv);
  const uint64_t n = bench::scaled(increments, args.scale);
  actor_system_config cfg;
  bench::configure(cfg, args);
  actor_system sys{cfg};
  uint64_t t0 = 0, t1 = 0, count = 0, sum = 0, continues = 0;
  {
    scoped_actor self{sys};
    sys.spawn(producer, n, actor_cast<actor>(self));
    self->receive([&](done_atom, uint64_t a, uint64_t b, uint64_t c, uint64_t s,
                      uint64_t k) {
      t0 = a;
      t1 = b;
      count = c;
      sum = s;
      continues = k;
    });
  }
  if (count != n || sum != n * (n - 1) / 2)
    bench::fail("total: count %llu sum %llu, expected %llu and %llu",
                static_cast<unsigned long long>(count),
                static_cast<unsigned long long>(sum),
                static_cast<unsigned long long>(n),
                static_cast<unsigned long long>(n * (n - 1) / 2));
  if (continues != (n + chunk - 1) / chunk)
    bench::fail("%llu chunks, expected %llu",
                static_cast<unsigned long long>(continues),
                static_cast<unsigned long long>((n + chunk - 1) / chunk));
  bench::describe("counting", sys);
  std::fprintf(stderr,
               "caf counting: %llu increments in chunks of %llu, the producer "
               "re-sending itself (continue) between chunks\n",
               static_cast<unsigned long long>(n),
               static_cast<unsigned long long>(chunk));
  bench::report(static_cast<double>(n) / (static_cast<double>(t1 - t0) * 1e-9),
                "msgs/s", bench::peak_rss_kb());
  return 0;
}
