// isle — MIT licensed.
//
// actors/caf/pingpong: the CAF peer of bench/actors/pingpong.c. Two actors
// exchange 1,000,000 round trips; reports ns/roundtrip.
//
// `ping` sends (ping, seq) to `pong`, whose handler returns (pong, seq):
// CAF sends a handler's result back to the sender as a new message. ping
// checks the sequence number and sends the next ping. Timing from ping's
// start message to its last pong, inside ping; checks as in the isle
// version (sequence numbers in order, N pings seen by pong, N pongs by
// ping).
#include "caf_common.hpp"

using namespace caf;

namespace {

constexpr uint64_t roundtrips = 1000000;

using start_atom = atom_constant<atom("start")>;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using done_atom = atom_constant<atom("done")>;
using count_atom = atom_constant<atom("count")>;

struct pong_state {
  uint64_t expect = 0;
};

behavior pong(stateful_actor<pong_state> *self) {
  return {
      [=](ping_atom, uint64_t seq) -> result<pong_atom, uint64_t> {
        if (seq != self->state.expect)
          bench::fail("pong: ping %llu, expected %llu",
                      static_cast<unsigned long long>(seq),
                      static_cast<unsigned long long>(self->state.expect));
        ++self->state.expect;
        return {pong_atom::value, seq};
      },
      [=](count_atom) { return self->state.expect; },
  };
}

struct ping_state {
  uint64_t got = 0;
  uint64_t t0 = 0;
};

behavior ping(stateful_actor<ping_state> *self, actor partner, uint64_t n,
              actor reporter) {
  return {
      [=](start_atom) {
        self->state.t0 = bench::now_ns();
        self->send(partner, ping_atom::value, uint64_t{0});
      },
      [=](pong_atom, uint64_t seq) {
        auto &st = self->state;
        if (seq != st.got)
          bench::fail("ping: pong %llu, expected %llu",
                      static_cast<unsigned long long>(seq),
                      static_cast<unsigned long long>(st.got));
        if (++st.got == n) {
          self->send(reporter, done_atom::value, st.t0, bench::now_ns(),
                     st.got);
          self->quit();
          return;
        }
        self->send(partner, ping_atom::value, st.got);
      },
  };
}

} // namespace

int main(int argc, char **argv) {
  auto args = bench::parse(argc, argv);
  const uint64_t n = bench::scaled(roundtrips, args.scale);
  actor_system_config cfg;
  bench::configure(cfg, args);
  actor_system sys{cfg};
  uint64_t t0 = 0, t1 = 0, pongs = 0, pings = 0;
  {
    scoped_actor self{sys};
    auto pg = sys.spawn(pong);
    auto pi = sys.spawn(ping, pg, n, actor_cast<actor>(self));
    self->send(pi, start_atom::value);
    self->receive([&](done_atom, uint64_t a, uint64_t b, uint64_t got) {
      t0 = a;
      t1 = b;
      pongs = got;
    });
    self->request(pg, infinite, count_atom::value)
        .receive(
            [&](uint64_t seen) { pings = seen; },
            [&](error &e) { bench::fail("pong: %s", to_string(e).c_str()); });
    self->send_exit(pg, exit_reason::user_shutdown);
  }
  if (pongs != n || pings != n)
    bench::fail("ping saw %llu pongs, pong %llu pings, expected %llu each",
                static_cast<unsigned long long>(pongs),
                static_cast<unsigned long long>(pings),
                static_cast<unsigned long long>(n));
  bench::describe("pingpong", sys);
  std::fprintf(stderr, "caf pingpong: %llu round trips, new message each way\n",
               static_cast<unsigned long long>(n));
  bench::report(static_cast<double>(t1 - t0) / static_cast<double>(n),
                "ns/roundtrip", bench::peak_rss_kb());
  return 0;
}
