/* isle — MIT licensed. */
/*
 * Timers (include/isle/lifecycle.h): a one-shot fires once and never
 * before its delay; a periodic one fires until cancelled and never after
 * the cancel returned; a cancel either wins (0, nothing delivered) or
 * loses (ISLE_ENOENT, delivered once); a timer whose target is gone or
 * full is dropped and counted and lets the runtime quiesce; a pending
 * timer keeps the run going; timers started before the run, from inside
 * an actor, or left pending when the runtime is freed; and the errors.
 *
 * Accuracy is checked as behaviour, not speed: never early, and late by
 * no more than a loose bound (more under sanitizers on a loaded two-core
 * machine). Sleeps here only let time pass for timers to expire; what
 * happened is told by messages and counters. Every test ends with the heap
 * as it began (support_assert_heap_quiet).
 */
#define _GNU_SOURCE /* pthread, nanosleep under -std=c11 */

#include "../actor/support.h"

#include "isle/lifecycle.h"

#if defined(SUPPORT_UNDER_TSAN) || defined(SUPPORT_UNDER_ASAN)
#define LATE_MS 1500u /* how late a timer may fire, at most */
#else
#define LATE_MS 200u
#endif

/* ===== A clock actor ==================================================== */

enum {
  T_TICK = 1,  /* a timer's message; payload a: the timer's index */
  T_MARK = 2,  /* sent after a cancel returned: no tick may follow */
  T_START = 3, /* start a periodic timer to itself (payload a: period) */
  T_STOP = 4,  /* return ISLE_STOP */
};

enum { MAX_TIMERS = 100000 };

/* What a clock saw. Written by the clock only; read by the test after the
 * run, or through the atomic fields while it runs. */
typedef struct clock_s {
  _Atomic uint64_t ticks;
  _Atomic uint64_t marks;
  uint64_t first_ns, last_ns;
  uint64_t ticks_after_mark; /* must stay 0 */
  uint64_t stop_after;       /* ISLE_STOP at this many ticks; 0: never */
  uint64_t cancel_after;     /* cancel `timer` at this many ticks; 0: no */
  uint64_t timer;            /* its own timer's id */
  int cancel_rc;
  int start_rc;
  _Atomic uint8_t *delivered; /* per timer index, when set */
  size_t ndelivered;
} clock_t_;

static int clock_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(clock_t_ **)state = (clock_t_ *)arg;
  return 0;
}

static int clock_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  clock_t_ *c = *(clock_t_ **)state;
  isle_runtime_t *rt = isle_ctx_runtime(ctx);
  switch (isle_msg_type(msg)) {
  case T_TICK: {
    uint64_t now = support_now_ns();
    uint64_t n = atomic_fetch_add(&c->ticks, 1) + 1;
    if (n == 1)
      c->first_ns = now;
    c->last_ns = now;
    if (atomic_load(&c->marks))
      c->ticks_after_mark++;
    if (c->delivered) {
      uint64_t i = support_payload(msg)->a;
      if (WORKER_CHECK(i < c->ndelivered))
        atomic_fetch_add(&c->delivered[i], 1);
    }
    if (c->cancel_after && n == c->cancel_after) {
      c->cancel_rc = isle_timer_cancel(rt, c->timer);
      /* Whatever the timer sends from now on comes after this mark. */
      isle_msg_t *m = support_msg(T_MARK, 0, 0);
      if (!m || isle_ctx_send(ctx, isle_ctx_self(ctx), m) != 0) {
        WORKER_CHECK(!"mark not sent");
        isle_msg_free(m);
      }
    }
    if (c->stop_after && n == c->stop_after)
      return ISLE_STOP;
    break;
  }
  case T_MARK:
    atomic_fetch_add(&c->marks, 1);
    break;
  case T_START: {
    uint64_t period = support_payload(msg)->a;
    isle_msg_t *m = support_msg(T_TICK, 0, 0);
    c->start_rc = m ? isle_timer_start(rt, isle_ctx_self(ctx), m, period,
                                       period, &c->timer)
                    : ISLE_ENOMEM;
    if (c->start_rc)
      isle_msg_free(m);
    break;
  }
  case T_STOP:
    return ISLE_STOP;
  }
  return ISLE_CONTINUE;
}

static const isle_actor_type_t clock_type = {
    .name = "clock",
    .state_size = sizeof(clock_t_ *),
    .init = clock_init,
    .receive = clock_receive,
};

static const isle_actor_type_t small_clock_type = {
    .name = "small-clock",
    .state_size = sizeof(clock_t_ *),
    .init = clock_init,
    .receive = clock_receive,
    .mailbox_capacity = 1,
};

static isle_ref_t spawn_clock(isle_runtime_t *rt, clock_t_ *c) {
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &clock_type, c, &ref), 0);
  return ref;
}

static clock_t_ *clock_new(void) {
  clock_t_ *c = calloc(1, sizeof *c);
  assert_non_null(c);
  return c;
}

/* Starts a timer sending T_TICK(a) and asserts it was accepted. */
static uint64_t start(isle_runtime_t *rt, isle_ref_t to, uint64_t a,
                      uint64_t delay_ms, uint64_t period_ms) {
  isle_msg_t *m = support_msg(T_TICK, a, 0);
  assert_non_null(m);
  uint64_t id = 0;
  assert_int_equal(isle_timer_start(rt, to, m, delay_ms, period_ms, &id), 0);
  assert_int_not_equal(id, 0);
  return id;
}

static void run_ok(isle_runtime_t *rt) {
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
}

static const isle_ref_t BAD_REF = ((uint64_t)0x7ffffff0 << 32) | 1;

/* ===== One-shot timers ================================================== */

/* Started before the run, a one-shot keeps the run going until it fires,
 * fires once, not before its delay and not much after. */
static void test_timer_one_shot_fires_once_after_its_delay(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  static const uint64_t delays[] = {0, 1, 20, 120};
  for (size_t k = 0; k < sizeof delays / sizeof delays[0]; k++) {
    clock_t_ *c = clock_new();
    isle_ref_t ref = spawn_clock(rt, c);
    uint64_t t0 = support_now_ns();
    start(rt, ref, 0, delays[k], 0);
    run_ok(rt); /* returns only once the timer fired */
    uint64_t t1 = support_now_ns();
    assert_int_equal(atomic_load(&c->ticks), 1);
    uint64_t late = c->first_ns - t0;
    assert_true(late >= delays[k] * 1000000u);
    assert_true(late <= (delays[k] + LATE_MS) * 1000000u);
    assert_true(t1 - t0 >= delays[k] * 1000000u);
    print_message("one-shot %" PRIu64 " ms: fired after %.2f ms\n", delays[k],
                  (double)late / 1e6);
    run_ok(rt); /* nothing more to come */
    assert_int_equal(atomic_load(&c->ticks), 1);
    free(c);
  }
  isle_io_stats_t s = support_io_stats(rt);
  assert_int_equal(s.timers_fired, 4);
  assert_int_equal(s.timers_dropped, 0);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* A cancelled one-shot never delivers, and its message is freed; a second
 * cancel, a cancel after it fired and a made-up id are ISLE_ENOENT. */
static void test_timer_cancel_before_and_after_firing(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  clock_t_ *c = clock_new();
  isle_ref_t ref = spawn_clock(rt, c);
  uint64_t id = start(rt, ref, 0, 60000, 0);
  assert_int_equal(isle_timer_cancel(rt, id), 0);
  assert_int_equal(isle_timer_cancel(rt, id), ISLE_ENOENT);
  uint64_t t0 = support_now_ns();
  run_ok(rt); /* no hold left: returns at once, not in a minute */
  assert_true(support_now_ns() - t0 < 30000000000u);
  assert_int_equal(atomic_load(&c->ticks), 0);

  id = start(rt, ref, 0, 1, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&c->ticks), 1);
  assert_int_equal(isle_timer_cancel(rt, id), ISLE_ENOENT);
  assert_int_equal(isle_timer_cancel(rt, id + 1000), ISLE_ENOENT);
  assert_int_equal(isle_timer_cancel(rt, 0), ISLE_ENOENT);
  isle_io_stats_t s = support_io_stats(rt);
  assert_int_equal(s.timers_fired, 1);
  assert_int_equal(s.timers_dropped, 0);
  isle_runtime_free(rt);
  free(c);
  support_assert_heap_quiet();
}

static void test_timer_errors(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  clock_t_ *c = clock_new();
  isle_ref_t ref = spawn_clock(rt, c);
  isle_msg_t *m = support_msg(T_TICK, 0, 0);
  uint64_t id = 77;
  assert_int_equal(isle_timer_start(NULL, ref, m, 1, 0, &id), ISLE_EINVAL);
  assert_int_equal(isle_timer_start(rt, ref, NULL, 1, 0, &id), ISLE_EINVAL);
  assert_int_equal(isle_timer_start(rt, ISLE_REF_NONE, m, 1, 0, &id),
                   ISLE_EINVAL);
  assert_int_equal(isle_timer_start(rt, BAD_REF, m, 1, 0, &id), ISLE_EINVAL);
  assert_int_equal(id, 77);
  assert_int_equal(isle_timer_cancel(NULL, 1), ISLE_EINVAL);
  assert_int_equal(isle_timer_cancel(rt, 1), ISLE_ENOENT); /* none yet */
  /* Refused: `m` is still ours; a NULL id is fine. */
  assert_int_equal(isle_timer_start(rt, ref, m, 0, 0, NULL), 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&c->ticks), 1);
  isle_runtime_free(rt);
  free(c);
  support_assert_heap_quiet();
}

/* ===== Periodic timers ================================================== */

/* An actor starts a periodic timer to itself and cancels it at the fifth
 * tick: no tick after the cancel returned, ticks no closer than the
 * period, and the run ends (the timer no longer holds it). */
static void test_timer_periodic_fires_until_cancelled(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  clock_t_ *c = clock_new();
  c->cancel_after = 5;
  isle_ref_t ref = spawn_clock(rt, c);
  uint64_t t0 = support_now_ns();
  support_send(rt, ref, T_START, 10, 0);
  run_ok(rt);
  assert_int_equal(c->start_rc, 0);
  assert_int_equal(c->cancel_rc, 0);
  assert_int_equal(atomic_load(&c->marks), 1);
  assert_int_equal(c->ticks_after_mark, 0);
  uint64_t n = atomic_load(&c->ticks);
  assert_true(n >= 5);
  /* Five expiries 10 ms apart, each counted from the one before (libuv's
   * millisecond clock may round each by under a millisecond). */
  assert_true(c->first_ns - t0 >= 10000000u);
  assert_true(c->last_ns - t0 >= 5 * 9000000u);
  assert_int_equal(isle_timer_cancel(rt, c->timer), ISLE_ENOENT);
  isle_io_stats_t s = support_io_stats(rt);
  assert_int_equal(s.timers_fired, n);
  assert_int_equal(s.timers_dropped, 0);
  isle_runtime_free(rt);
  free(c);
  support_assert_heap_quiet();
}

/*
 * Cancel from another thread, in a loop: a periodic 1 ms timer is
 * cancelled after a tick or two, then this thread sends a mark. A tick the
 * timer sent after the cancel returned would arrive behind the mark (one
 * mailbox, pushes in order): the cancel then did not stop the timer "for
 * good", as lifecycle.h promises.
 */
static void
test_timer_cancel_from_outside_stops_a_periodic_timer(void **state) {
  size_t rounds = support_iters(1000);
  isle_runtime_t *rt = support_runtime(2, 0);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  clock_t_ *cs = calloc(rounds, sizeof *cs);
  assert_non_null(cs);
  for (size_t i = 0; i < rounds; i++) {
    isle_ref_t ref = spawn_clock(rt, &cs[i]);
    uint64_t id = start(rt, ref, 0, 1, 1);
    assert_true(support_wait_u64(&cs[i].ticks, 1 + i % 2, 20000));
    assert_int_equal(isle_timer_cancel(rt, id), 0);
    support_send(rt, ref, T_MARK, 0, 0);
  }
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  uint64_t ticks = 0;
  for (size_t i = 0; i < rounds; i++) {
    assert_int_equal(atomic_load(&cs[i].marks), 1);
    assert_int_equal(cs[i].ticks_after_mark, 0);
    ticks += atomic_load(&cs[i].ticks);
  }
  isle_io_stats_t s = support_io_stats(rt);
  assert_int_equal(s.timers_fired, ticks);
  assert_int_equal(s.timers_dropped, 0);
  isle_runtime_free(rt);
  free(cs);
  support_assert_heap_quiet();
}

/* ===== The cancel / fire race ========================================== */

/*
 * Batches of short one-shots (1 to 3 ms) cancelled around their expiry:
 * each is either delivered once and its cancel says ISLE_ENOENT, or its
 * cancel says 0 and it is never delivered. Both, or neither, would be a
 * lost or doubled decision between the io thread and the canceller.
 */
static void test_timer_cancel_race_delivers_or_cancels(void **state) {
  size_t n = support_iters(3000);
  if (n > MAX_TIMERS)
    n = MAX_TIMERS;
  isle_runtime_t *rt = support_runtime(2, 0);
  clock_t_ *c = clock_new();
  c->delivered = calloc(n, sizeof *c->delivered);
  c->ndelivered = n;
  int *rcs = calloc(n, sizeof *rcs);
  uint64_t *ids = calloc(n, sizeof *ids);
  assert_non_null(c->delivered);
  assert_non_null(rcs);
  assert_non_null(ids);
  isle_ref_t ref = spawn_clock(rt, c);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  enum { BATCH = 50 };
  for (size_t b = 0; b < n; b += BATCH) {
    size_t end = b + BATCH < n ? b + BATCH : n;
    for (size_t i = b; i < end; i++)
      ids[i] = start(rt, ref, i, 1 + i % 3, 0);
    support_sleep_ms(1 + (unsigned)(b / BATCH) % 3);
    for (size_t i = b; i < end; i++) {
      rcs[i] = isle_timer_cancel(rt, ids[i]);
      assert_true(rcs[i] == 0 || rcs[i] == ISLE_ENOENT);
    }
  }
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  uint64_t cancelled = 0, fired = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t d = atomic_load(&c->delivered[i]);
    if (rcs[i] == 0) {
      assert_int_equal(d, 0);
      cancelled++;
    } else {
      assert_int_equal(d, 1);
      fired++;
    }
  }
  isle_io_stats_t s = support_io_stats(rt);
  assert_int_equal(s.timers_fired, fired);
  assert_int_equal(s.timers_dropped, 0);
  assert_int_equal(atomic_load(&c->ticks), fired);
  print_message("cancel race: %" PRIu64 " cancelled, %" PRIu64 " fired\n",
                cancelled, fired);
  isle_runtime_free(rt);
  free((void *)c->delivered);
  free(c);
  free(rcs);
  free(ids);
  support_assert_heap_quiet();
}

/* ===== Dropped timers =================================================== */

/* A timer whose target ended is dropped and counted, whether the target
 * ended before the timer started or while it was pending; a periodic timer
 * to an actor that stops does not keep the run from returning. */
static void test_timer_to_a_gone_target_is_dropped(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  clock_t_ *c = clock_new();
  /* Ends while the timer is pending (its end drops the timer at once). */
  isle_ref_t a = spawn_clock(rt, c);
  start(rt, a, 0, 60000, 0);
  support_send(rt, a, T_STOP, 0, 0);
  uint64_t t0 = support_now_ns();
  run_ok(rt);
  assert_true(support_now_ns() - t0 < 30000000000u); /* not the minute */
  isle_io_stats_t s = support_io_stats(rt);
  assert_int_equal(s.timers_dropped, 1);
  assert_int_equal(s.timers_fired, 0);

  /* Gone before the timer started: it fires into nothing. */
  start(rt, a, 0, 5, 0);
  start(rt, a, 0, 5, 5); /* a periodic one ends there too */
  run_ok(rt);
  s = support_io_stats(rt);
  assert_int_equal(s.timers_dropped, 3);
  assert_int_equal(s.timers_fired, 0);
  assert_int_equal(atomic_load(&c->ticks), 0);

  /* A periodic timer to an actor that stops at its third tick. */
  clock_t_ *c2 = clock_new();
  c2->stop_after = 3;
  isle_ref_t b = spawn_clock(rt, c2);
  start(rt, b, 0, 2, 2);
  run_ok(rt);
  s = support_io_stats(rt);
  assert_int_equal(atomic_load(&c2->ticks), 3);
  assert_int_equal(s.timers_dropped, 4);
  assert_true(s.timers_fired >= 3); /* more may have died in its mailbox */
  assert_int_equal(support_stats(rt).actors_live, 0);
  isle_runtime_free(rt);
  free(c);
  free(c2);
  support_assert_heap_quiet();
}

/*
 * Timers started from this thread at actors that end meanwhile on the
 * workers. A one-shot is either sent (into a mailbox about to close: a
 * dead letter) or dropped, exactly once; a periodic one is dropped exactly
 * once, by the end (which tells the io thread) or at an expiry that finds
 * the target gone. No tick is ever received (each actor's stop is queued
 * before its timer starts), and the run returns: every timer ended. The
 * end's "drop this target's timers" must reach the io thread after the
 * timer's own start: handled before it, it closed a libuv handle never
 * initialised (an abort in uv_close) and started one already freed.
 */
static void starts_at_dying_actors(isle_runtime_t *rt, clock_t_ *c, size_t n,
                                   uint64_t period_ms) {
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  for (size_t i = 0; i < n; i++) {
    isle_ref_t ref = spawn_clock(rt, c);
    support_send(rt, ref, T_STOP, 0, 0);
    if (i % 2)
      support_busy_us(1); /* lands the start at another moment of the end */
    start(rt, ref, 0, 2, period_ms);
  }
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
}

static void test_timer_started_while_its_target_ends(void **state) {
  size_t n = support_iters(20000);
  isle_runtime_t *rt = support_runtime(2, 0);
  clock_t_ *c = clock_new();
  starts_at_dying_actors(rt, c, n, 0);
  isle_io_stats_t s = support_io_stats(rt);
  assert_int_equal(s.timers_dropped + s.timers_fired, n);
  starts_at_dying_actors(rt, c, n, 2);
  isle_io_stats_t s2 = support_io_stats(rt);
  assert_int_equal(s2.timers_dropped - s.timers_dropped, n);
  assert_int_equal(atomic_load(&c->ticks), 0);
  assert_int_equal(support_stats(rt).actors_live, 0);
  print_message("timers at dying actors: one-shots %" PRIu64
                " dropped, %" PRIu64 " sent\n",
                s.timers_dropped, s.timers_fired);
  isle_runtime_free(rt);
  free(c);
  support_assert_heap_quiet();
}

/*
 * The same with actors that already had a timer, so that their end tells
 * the io thread to drop their timers before a start that comes after the
 * end began (from this thread, or from the actor's own finalize) has run
 * its command there: the drop must leave such a timer to its start, which
 * then drops it (the drop had closed a handle never initialised: an abort
 * in uv_close, review finding). Every timer is dropped or delivered (as a
 * dead letter) exactly once, and the run returns.
 */
static int late_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)state;
  (void)arg;
  /* A far timer: the slot now has the timers' end-hook bit. */
  return isle_timer_start(isle_ctx_runtime(ctx), isle_ctx_self(ctx),
                          support_msg(T_TICK, 0, 0), 100000, 0, NULL);
}

static int late_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return ISLE_STOP;
}

static _Atomic uint64_t late_finalize_starts;

static void late_finalize(isle_ctx_t *ctx, void *state) {
  (void)state;
  isle_msg_t *m = support_msg(T_TICK, 0, 0);
  if (isle_timer_start(isle_ctx_runtime(ctx), isle_ctx_self(ctx), m, 1, 0,
                       NULL) == 0)
    atomic_fetch_add(&late_finalize_starts, 1);
  else
    isle_msg_free(m);
}

static void test_timer_started_after_its_target_began_to_end(void **state) {
  static const isle_actor_type_t late = {.name = "late",
                                         .init = late_init,
                                         .receive = late_receive,
                                         .finalize = late_finalize};
  size_t n = support_iters(2000);
  atomic_store(&late_finalize_starts, 0);
  isle_runtime_t *rt = support_runtime(2, 0);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  uint64_t outside = 0;
  for (size_t i = 0; i < n; i++) {
    isle_ref_t x;
    assert_int_equal(isle_runtime_spawn(rt, &late, NULL, &x), 0);
    support_send(rt, x, T_STOP, 0, 0);
    for (unsigned k = 0; k < 20; k++) {
      isle_msg_t *m = support_msg(T_TICK, 0, 0);
      /* Short: one that starts after the drop fires soon, into a closed
       * mailbox, and is dropped then. */
      if (isle_timer_start(rt, x, m, 5, 0, NULL) == 0)
        outside++;
      else
        isle_msg_free(m); /* the actor is gone already */
    }
  }
  assert_int_equal(isle_runtime_release(rt), 0);
  assert_int_equal(support_runner_join(&r), 0); /* every timer ended */
  isle_io_stats_t s = support_io_stats(rt);
  uint64_t started = n + atomic_load(&late_finalize_starts) + outside;
  assert_int_equal(s.timers_dropped + s.timers_fired, started);
  print_message("timers started after their target began to end: %" PRIu64
                " from outside, %" PRIu64 " from finalize\n",
                outside, atomic_load(&late_finalize_starts));
  assert_int_equal(isle_runtime_free(rt), 0);
  support_assert_heap_quiet();
}

/* A full mailbox refuses the timer's message: dropped and counted. */
static void test_timer_into_a_full_mailbox_is_dropped(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  clock_t_ *c = clock_new();
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &small_clock_type, c, &ref), 0);
  support_send(rt, ref, T_MARK, 0, 0); /* fills it: not running */
  start(rt, ref, 0, 1, 0);
  /* Nothing runs to tell us the timer is done: watch the counters. */
  uint64_t deadline = support_now_ns() + 20000000000u;
  isle_io_stats_t s = support_io_stats(rt);
  while (s.timers_dropped + s.timers_fired == 0 &&
         support_now_ns() < deadline) {
    support_sleep_ms(1);
    s = support_io_stats(rt);
  }
  assert_int_equal(s.timers_dropped, 1);
  assert_int_equal(s.timers_fired, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&c->marks), 1);
  assert_int_equal(atomic_load(&c->ticks), 0);
  isle_runtime_free(rt);
  free(c);
  support_assert_heap_quiet();
}

/* Timers still pending when the runtime is freed: their messages are
 * freed with it (the heap check), whichever actor they were for. */
static void test_timer_pending_at_free_is_freed(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  clock_t_ *c = clock_new();
  isle_ref_t ref = spawn_clock(rt, c);
  start(rt, ref, 0, 60000, 0);
  start(rt, ref, 0, 60000, 1000);
  start(rt, ref, 0, 0, 0); /* may fire before the free, or not */
  isle_runtime_free(rt);
  free(c);
  support_assert_heap_quiet();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_timer_one_shot_fires_once_after_its_delay),
      T(test_timer_cancel_before_and_after_firing),
      T(test_timer_errors),
      T(test_timer_periodic_fires_until_cancelled),
      T(test_timer_cancel_from_outside_stops_a_periodic_timer),
      T(test_timer_cancel_race_delivers_or_cancels),
      T(test_timer_to_a_gone_target_is_dropped),
      T(test_timer_started_while_its_target_ends),
      T(test_timer_started_after_its_target_began_to_end),
      T(test_timer_into_a_full_mailbox_is_dropped),
      T(test_timer_pending_at_free_is_freed),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
