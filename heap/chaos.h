/* isle — MIT licensed. */
/*
 * Chaos points: named places on concurrent paths where, in the chaos build
 * (-DISLE_CHAOS=ON, the `chaos` preset), a thread may be made to yield or
 * sleep for a few microseconds, so that interleavings a normal run almost
 * never shows come up in every test run. Elsewhere ISLE__CHAOS(name)
 * compiles to nothing.
 *
 * A point goes where another thread acting in between would matter: between
 * two loads a decision rests on, after a check and before the use, between
 * the two steps of a publication. Its name says where ("park.after_holds").
 *
 * Hot and cold points: a window a few instructions wide is hit only when
 * its point acts nearly every time, and the whole suite cannot run that
 * slowly, so each seed makes a third of the points hot: a point is hot
 * when (hash of its name + seed) % 3 == 0. Three consecutive seeds make
 * every point hot once; tools/check.sh runs seeds 1, 2 and 3.
 *
 * Environment (read once, at the first point a process reaches):
 *   ISLE_CHAOS_SEED   the seed (default: from the clock); printed to stderr
 *                     as "isle chaos: seed N" so a failing run replays
 *   ISLE_CHAOS_HOT    per mille of the visits to a hot point that act
 *                     (default 300)
 *   ISLE_CHAOS_RATE   the same for the other points (default 5)
 *   ISLE_CHAOS_ONLY   act only at points whose name contains this string
 * Each thread draws from its own generator, seeded from the seed and the
 * order in which threads first reach a point; the same seed gives each
 * thread the same decisions (the OS scheduler still adds its own).
 *
 * Threads: any. Points never allocate, lock or touch errno; not for signal
 * handlers.
 */
#ifndef ISLE_HEAP_CHAOS_H
#define ISLE_HEAP_CHAOS_H

#ifdef ISLE_CHAOS
#include <stdatomic.h>
#include <stdint.h>
/* `site`: the point's own word, 0 until its first visit works out whether
 * it is hot for this seed. */
void isle__chaos(const char *point, _Atomic uint32_t *site);
#define ISLE__CHAOS(point)                                                     \
  do {                                                                         \
    static _Atomic uint32_t isle__chaos_site;                                  \
    isle__chaos(point, &isle__chaos_site);                                     \
  } while (0)
#else
#define ISLE__CHAOS(point) ((void)0)
#endif

#endif /* ISLE_HEAP_CHAOS_H */
