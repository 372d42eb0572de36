// isle — MIT licensed.
//
// actors/caf/ring: the CAF peer of bench/actors/ring.c. 1,000 actors in a
// ring pass one token 10,000,000 hops; reports msgs/s.
//
// Each member learns its successor from a (next, actor) message. The token
// is (token, hops left); a member with hops left sends (token, left - 1) to
// its successor: a new message per hop, CAF's way (the isle version
// forwards the same message). The member that gets it at 0 reports to main.
// Timing from the first member's first sight of the token to the last
// member's, inside the actors; checks as in the isle version (forwards add
// up to N, the token stops at member N mod 1,000).
#include "caf_common.hpp"

#include <vector>

using namespace caf;

namespace {

constexpr uint32_t members = 1000;
constexpr uint64_t default_hops = 10000000;

using next_atom = atom_constant<atom("next")>;
using token_atom = atom_constant<atom("token")>;
using done_atom = atom_constant<atom("done")>;

struct shared {
  uint64_t hops = 0;
  uint64_t t0 = 0;
  std::vector<uint64_t> forwards; // one per member, written by it alone
};

struct member_state {
  actor next;
};

behavior member(stateful_actor<member_state> *self, uint32_t index, shared *sh,
                actor reporter) {
  return {
      [=](next_atom, actor next) { self->state.next = std::move(next); },
      [=](token_atom, uint64_t left) {
        if (left == sh->hops && sh->t0 == 0)
          sh->t0 = bench::now_ns();
        if (left == 0) {
          self->send(reporter, done_atom::value, bench::now_ns(), index);
          return;
        }
        sh->forwards[index]++;
        self->send(self->state.next, token_atom::value, left - 1);
      },
  };
}

} // namespace

int main(int argc, char **argv) {
  auto args = bench::parse(argc, argv);
  shared sh;
  sh.hops = bench::scaled(default_hops, args.scale);
  sh.forwards.assign(members, 0);
  actor_system_config cfg;
  bench::configure(cfg, args);
  actor_system sys{cfg};
  uint64_t t1 = 0;
  uint32_t stopped_at = members;
  {
    scoped_actor self{sys};
    std::vector<actor> ring;
    ring.reserve(members);
    for (uint32_t i = 0; i < members; i++)
      ring.push_back(sys.spawn(member, i, &sh, actor_cast<actor>(self)));
    for (uint32_t i = 0; i < members; i++)
      self->send(ring[i], next_atom::value, ring[(i + 1) % members]);
    self->send(ring[0], token_atom::value, sh.hops);
    self->receive([&](done_atom, uint64_t t, uint32_t at) {
      t1 = t;
      stopped_at = at;
    });
    for (auto &m : ring)
      self->send_exit(m, exit_reason::user_shutdown);
  }
  uint64_t total = 0;
  for (auto f : sh.forwards)
    total += f;
  if (total != sh.hops || stopped_at != sh.hops % members)
    bench::fail("token forwarded %llu times (expected %llu), stopped at "
                "member %u (expected %llu)",
                static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(sh.hops), stopped_at,
                static_cast<unsigned long long>(sh.hops % members));
  bench::describe("ring", sys);
  std::fprintf(stderr,
               "caf ring: %u members, %llu hops, a new token message "
               "per hop\n",
               members, static_cast<unsigned long long>(sh.hops));
  bench::report(static_cast<double>(sh.hops) /
                    (static_cast<double>(t1 - sh.t0) * 1e-9),
                "msgs/s", bench::peak_rss_kb());
  return 0;
}
