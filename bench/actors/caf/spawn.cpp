// isle — MIT licensed.
//
// actors/caf/spawn: the CAF peer of bench/actors/spawn.c. A 10-ary tree of
// actors, the root at depth 0 and the leaves at depth 6: 1,111,111
// actors. Leaves reply a number, parents sum upward, the root checks the
// total. Reports ns/actor, peak rss_kb and bytes_per_actor = (peak RSS -
// RSS before the first spawn) / actors.
//
// A node's function body runs when CAF starts the actor: an inner node
// spawns its 10 children (passing itself as their parent) and keeps their
// handles; a leaf sends (result, 1, leaf number) to its parent. An inner
// node adds up its children's results and, when all 10 are in, sends
// (result, subtree size, leaf-number sum) to its parent and drops its
// parent's handle; the root's parent is main's scoped_actor. No actor quits:
// at the end all are alive and idle, as in the isle version. They stay
// alive because their parents hold their handles (CAF ends an idle actor
// nobody references), so the children's handles (8 bytes each, plus a
// vector per parent) are part of CAF's per-actor figure; main releases the
// root after the measurement and the tree goes down with it.
//
// Timing from the start of the root's body to its last result, inside the
// root. Checks as in the isle version: 1,111,111 actors and a leaf-number sum
// of L(L-1)/2. --scale X makes the depth 6 + round(log10 X).
#include "caf_common.hpp"

#include <vector>

using namespace caf;

namespace {

constexpr uint32_t fanout = 10;
constexpr int default_depth = 6;

using result_atom = atom_constant<atom("result")>;

struct node_state {
  actor parent;
  std::vector<actor> children;
  uint64_t count = 0;
  uint64_t sum = 0;
  uint32_t replies = 0;
};

struct shared {
  uint32_t max_depth = 0;
  uint64_t t0 = 0, t1 = 0; // written by the root
};

behavior node(stateful_actor<node_state> *self, actor parent, uint32_t depth,
              uint64_t index, shared *sh) {
  if (depth == 0)
    sh->t0 = bench::now_ns();
  if (depth == sh->max_depth) {
    self->send(parent, result_atom::value, uint64_t{1}, index);
    return {
        [=](result_atom, uint64_t, uint64_t) {
          bench::fail("leaf %llu got a result",
                      static_cast<unsigned long long>(index));
        },
    };
  }
  auto &st = self->state;
  st.parent = std::move(parent);
  st.children.reserve(fanout);
  for (uint32_t i = 0; i < fanout; i++)
    st.children.push_back(self->spawn(node, actor_cast<actor>(self), depth + 1,
                                      index * fanout + i, sh));
  return {
      [=](result_atom, uint64_t count, uint64_t sum) {
        auto &s = self->state;
        s.count += count;
        s.sum += sum;
        if (++s.replies < fanout)
          return;
        if (depth == 0)
          sh->t1 = bench::now_ns();
        self->send(s.parent, result_atom::value, s.count + 1, s.sum);
        s.parent = nullptr;
      },
  };
}

} // namespace

int main(int argc, char **argv) {
  auto args = bench::parse(argc, argv);
  long d = default_depth + std::lround(std::log10(args.scale));
  shared sh;
  sh.max_depth = static_cast<uint32_t>(d < 1 ? 1 : d > 7 ? 7 : d);
  uint64_t leaves = 1, actors = 0;
  for (uint32_t i = 0; i <= sh.max_depth; i++) {
    actors += leaves;
    if (i < sh.max_depth)
      leaves *= fanout;
  }
  actor_system_config cfg;
  bench::configure(cfg, args);
  actor_system sys{cfg};
  uint64_t count = 0, sum = 0;
  long base_kb = 0, peak_kb = 0;
  {
    scoped_actor self{sys};
    base_kb = bench::rss_kb();
    auto root = sys.spawn(node, actor_cast<actor>(self), 0u, uint64_t{0}, &sh);
    self->receive([&](result_atom, uint64_t c, uint64_t s) {
      count = c;
      sum = s;
    });
    peak_kb = bench::peak_rss_kb();
    root = nullptr; // the tree goes down with its root
  }
  sys.await_all_actors_done();
  long peak2 = bench::peak_rss_kb();
  if (peak2 > peak_kb)
    peak_kb = peak2;
  if (count != actors || sum != leaves * (leaves - 1) / 2)
    bench::fail("root total: %llu actors, leaf sum %llu; expected %llu and "
                "%llu",
                static_cast<unsigned long long>(count),
                static_cast<unsigned long long>(sum),
                static_cast<unsigned long long>(actors),
                static_cast<unsigned long long>(leaves * (leaves - 1) / 2));
  double per_actor = static_cast<double>(peak_kb - base_kb) * 1024.0 /
                     static_cast<double>(actors);
  bench::describe("spawn", sys);
  std::fprintf(stderr,
               "caf spawn: depth %u, %llu actors alive and idle at the end; "
               "RSS %ld kB before the first spawn, peak %ld kB: %.1f "
               "bytes/actor, of which %zu are the actor's own state (and 8 "
               "its handle in its parent)\n",
               sh.max_depth, static_cast<unsigned long long>(actors), base_kb,
               peak_kb, per_actor, sizeof(node_state));
  char extra[64];
  std::snprintf(extra, sizeof extra, "bytes_per_actor=%.1f", per_actor);
  bench::report(static_cast<double>(sh.t1 - sh.t0) /
                    static_cast<double>(actors),
                "ns/actor", peak_kb, extra);
  return 0;
}
