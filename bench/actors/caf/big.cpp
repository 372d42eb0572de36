// isle — MIT licensed.
//
// actors/caf/big: the CAF peer of bench/actors/big.c. 1,000 actors; each
// sends 2,000 pings, one at a time, to actors picked at random among the
// others and waits for the pong before the next; reports roundtrips/s.
//
// As in the isle version: a sink gets (start) from main, sends (start) to
// the 1,000 actors and counts their (done). An actor's (ping) handler
// returns (pong), which CAF sends back to the pinger; after its 2,000th
// pong an actor sends (done) to the sink and keeps answering pings. The
// same xorshift streams (seeded by index) pick the same targets. Checks:
// each pong comes from the actor pinged, 1,000 dones, 2,000,000 pings
// answered in all. Timing from the sink's (start) to its last (done).
#include "caf_common.hpp"

#include <vector>

using namespace caf;

namespace {

constexpr uint32_t actors = 1000;
constexpr uint64_t pings_default = 2000;

using start_atom = atom_constant<atom("start")>;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using done_atom = atom_constant<atom("done")>;

struct big_state {
  uint64_t got = 0;
  uint32_t target = 0;
  bench::rng rng;
};

behavior big(stateful_actor<big_state> *self, uint32_t index, uint64_t pings,
             const std::vector<actor> *refs, actor sink, uint64_t *answered) {
  self->state.rng = bench::rng(bench::seed + index);
  auto ping_next = [=] {
    auto &st = self->state;
    uint32_t t = st.rng.below(actors - 1);
    if (t >= index)
      t++; // anyone but itself
    st.target = t;
    self->send((*refs)[t], ping_atom::value);
  };
  return {
      [=](ping_atom) {
        (*answered)++;
        return pong_atom::value;
      },
      [=](pong_atom) {
        auto &st = self->state;
        if (self->current_sender() !=
            actor_cast<strong_actor_ptr>((*refs)[st.target]))
          bench::fail("actor %u: pong from another actor than %u", index,
                      st.target);
        if (++st.got == pings)
          self->send(sink, done_atom::value);
        else
          ping_next();
      },
      [=](start_atom) { ping_next(); },
  };
}

struct sink_state {
  uint64_t dones = 0;
  uint64_t t0 = 0;
};

behavior sink(stateful_actor<sink_state> *self, const std::vector<actor> *refs,
              actor reporter) {
  return {
      [=](start_atom) {
        self->state.t0 = bench::now_ns();
        for (auto &a : *refs)
          self->send(a, start_atom::value);
      },
      [=](done_atom) {
        auto &st = self->state;
        if (++st.dones == refs->size()) {
          self->send(reporter, done_atom::value, st.t0, bench::now_ns(),
                     st.dones);
          self->quit();
        }
      },
  };
}

} // namespace

int main(int argc, char **argv) {
  auto args = bench::parse(argc, argv);
  const uint64_t pings = bench::scaled(pings_default, args.scale);
  const uint64_t total = pings * actors;
  std::vector<uint64_t> answered(actors, 0);
  std::vector<actor> refs;
  refs.reserve(actors);
  actor_system_config cfg;
  bench::configure(cfg, args);
  actor_system sys{cfg};
  uint64_t t0 = 0, t1 = 0, dones = 0;
  {
    scoped_actor self{sys};
    auto s = sys.spawn(sink, &refs, actor_cast<actor>(self));
    for (uint32_t i = 0; i < actors; i++)
      refs.push_back(sys.spawn(big, i, pings, &refs, s, &answered[i]));
    self->send(s, start_atom::value);
    self->receive([&](done_atom, uint64_t a, uint64_t b, uint64_t d) {
      t0 = a;
      t1 = b;
      dones = d;
    });
    for (auto &a : refs)
      self->send_exit(a, exit_reason::user_shutdown);
  }
  uint64_t sum = 0;
  for (auto x : answered)
    sum += x;
  if (dones != actors || sum != total)
    bench::fail("%llu dones, %llu pings answered; expected %u, %llu",
                static_cast<unsigned long long>(dones),
                static_cast<unsigned long long>(sum), actors,
                static_cast<unsigned long long>(total));
  bench::describe("big", sys);
  std::fprintf(stderr, "caf big: %u actors x %llu pings to random others\n",
               actors, static_cast<unsigned long long>(pings));
  bench::report(static_cast<double>(total) /
                    (static_cast<double>(t1 - t0) * 1e-9),
                "roundtrips/s", bench::peak_rss_kb());
  return 0;
}
