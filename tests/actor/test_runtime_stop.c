/* isle — MIT licensed. */
/*
 * The runtime (include/isle/actor.h), how a run ends: stop (before a run,
 * from another thread, from a signal handler), quiescence with messages in
 * flight, and outside threads sending while it runs.
 *
 * Callbacks run on workers: they count into structures the test owns and
 * check with WORKER_CHECK; the test asserts after the run. Every test ends
 * with the heap as it began (support_assert_heap_quiet). Sizes: stress
 * tests take ISLE_TEST_ITERS.
 */
#define _GNU_SOURCE /* pthread_barrier_t, sigaction, nanosleep */

#include "support_runtime.h"

/* ===== Stop ============================================================= */

static void
test_runtime_stop_before_run_makes_the_next_run_return(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  counts_t c;
  memset(&c, 0, sizeof c);
  isle_ref_t ref = spawn_counter(rt, &c, MODE_CONTINUE);
  support_send(rt, ref, 1, 0, 0);
  isle_runtime_stop(rt);
  isle_runtime_stop(rt); /* not counted: one stop, one run */
  uint64_t t0 = support_now_ns();
  run_ok(rt);
  assert_true(support_now_ns() - t0 < 2000000000u);
  assert_int_equal(atomic_load(&c.received), 0);
  assert_int_equal(support_stats(rt).messages, 0);
  /* The stop is used up: this run does the work. */
  run_ok(rt);
  assert_int_equal(atomic_load(&c.received), 1);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* 16 tokens of 1,000 hops, 50 µs of work each (0.4 s on two workers), on a
 * held runtime that only a stop can end: the test's thread stops it after
 * 200 hops. The run returns with the tokens still queued, nothing runs
 * after it, and a later run (released) finishes every token exactly. */
static void
test_runtime_stop_from_another_thread_leaves_queued_messages(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  relay_t *relay = malloc(sizeof *relay);
  assert_non_null(relay);
  const uint64_t tokens = 16, hops = 1000, total = tokens * (hops + 1);
  relay_start(rt, relay, 8, 50, tokens, hops);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  assert_true(support_wait_u64(&relay->hops, 200, 10000));
  isle_runtime_stop(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  uint64_t at_return = atomic_load(&relay->hops);
  fprintf(stderr, "stopped after %" PRIu64 " of %" PRIu64 " hops\n", at_return,
          total);
  assert_true(at_return < total);
  assert_true(atomic_load(&relay->done) < tokens);
  support_sleep_ms(20);
  assert_int_equal(atomic_load(&relay->hops), at_return);
  assert_int_equal(support_stats(rt).messages, at_return);
  assert_int_equal(support_stats(rt).dead_letters, 0);

  isle_runtime_release(rt);
  run_ok(rt);
  assert_int_equal(atomic_load(&relay->done), tokens);
  assert_int_equal(atomic_load(&relay->hops), total);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.messages, total);
  assert_int_equal(s.dead_letters, 0);
  assert_int_equal(s.actors_live, 8);
  isle_runtime_free(rt);
  free(relay);
  support_assert_heap_quiet();
}

/* ----- From a signal handler -------------------------------------------- */

/* An actor that keeps itself busy forever, forwarding its message to
 * itself, until told to stop; it may raise SIGALRM (on its worker) at a
 * given count. */
typedef struct spinner_s {
  _Atomic uint64_t received;
  _Atomic uint64_t raise_at; /* 0: never */
  atomic_bool stop;
  _Atomic uint64_t signals;
} spinner_t;

static _Atomic(isle_runtime_t *) signal_rt;
static spinner_t *signal_spinner;

static void on_sigalrm(int sig) {
  (void)sig;
  atomic_fetch_add(&signal_spinner->signals, 1);
  isle_runtime_stop(atomic_load(&signal_rt));
}

static int spinner_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  spinner_t *s = *(spinner_t **)state;
  uint64_t n = atomic_fetch_add(&s->received, 1) + 1;
  if (n == atomic_load(&s->raise_at))
    raise(SIGALRM);
  if (atomic_load(&s->stop))
    return ISLE_STOP;
  WORKER_CHECK(isle_ctx_send(ctx, isle_ctx_self(ctx), msg) == 0);
  return ISLE_CONTINUE;
}

static int spinner_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(spinner_t **)state = (spinner_t *)arg;
  return 0;
}

static const isle_actor_type_t spinner_type = {
    .name = "spinner",
    .state_size = sizeof(spinner_t *),
    .init = spinner_init,
    .receive = spinner_receive,
};

typedef struct killer_s {
  pthread_t target;
  spinner_t *spinner;
} killer_t;

/* Sends SIGALRM to the thread blocked in isle_runtime_run once the
 * spinner is busy. */
static void *killer_main(void *arg) {
  killer_t *k = arg;
  if (WORKER_CHECK(support_wait_u64(&k->spinner->received, 100, 10000)))
    pthread_kill(k->target, SIGALRM);
  return NULL;
}

/* Stops a busy runtime from a SIGALRM handler, twice: the signal sent to
 * the thread in isle_runtime_run (from another thread), then raised on a
 * worker inside a receive. Each time the run returns with the spinner's
 * message still queued; a last run lets it finish. */
static void test_runtime_stop_from_a_signal_handler(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  spinner_t sp;
  memset(&sp, 0, sizeof sp);
  signal_spinner = &sp;
  atomic_store(&signal_rt, rt);
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigalrm;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &spinner_type, &sp, &ref), 0);
  support_send(rt, ref, 1, 0, 0);

  /* 1. From another thread, to the thread in run. */
  killer_t k = {pthread_self(), &sp};
  pthread_t killer;
  assert_int_equal(pthread_create(&killer, NULL, killer_main, &k), 0);
  run_ok(rt);
  assert_int_equal(pthread_join(killer, NULL), 0);
  support_assert_workers_ok();
  assert_int_equal(atomic_load(&sp.signals), 1);
  uint64_t after = atomic_load(&sp.received);
  assert_true(after >= 100);
  support_sleep_ms(10);
  assert_int_equal(atomic_load(&sp.received), after);

  /* 2. Raised on a worker, inside a receive. */
  atomic_store(&sp.raise_at, after + 100);
  run_ok(rt);
  assert_int_equal(atomic_load(&sp.signals), 2);
  after = atomic_load(&sp.received);
  assert_true(after >= atomic_load(&sp.raise_at));
  assert_int_equal(support_stats(rt).actors_live, 1);

  /* The message was still queued: the spinner gets it and stops. */
  atomic_store(&sp.stop, true);
  run_ok(rt);
  assert_int_equal(atomic_load(&sp.received), after + 1);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.actors_live, 0);
  assert_int_equal(s.dead_letters, 0);
  assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
  atomic_store(&signal_rt, NULL);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== Quiescence ======================================================= */

/* 64 tokens of support_iters(2000) hops around 16 actors: the run may only
 * return once every token is done, since each hop is a message in flight
 * (queued, or being forwarded). */
static void
test_runtime_run_returns_only_when_in_flight_messages_are_done(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  relay_t *relay = malloc(sizeof *relay);
  assert_non_null(relay);
  const uint64_t tokens = 64, hops = support_iters(2000);
  relay_start(rt, relay, 16, 0, tokens, hops);
  run_ok(rt);
  assert_int_equal(atomic_load(&relay->done), tokens);
  assert_int_equal(atomic_load(&relay->hops), tokens * (hops + 1));
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.messages, tokens * (hops + 1));
  assert_int_equal(s.dead_letters, 0);
  /* Again, from where it stopped: new tokens on the same ring. */
  for (uint64_t t = 0; t < tokens; t++)
    support_send(rt, relay->refs[t % relay->n], 1, 10, t);
  run_ok(rt);
  assert_int_equal(atomic_load(&relay->done), 2 * tokens);
  isle_runtime_free(rt);
  free(relay);
  support_assert_heap_quiet();
}

/* ===== Outside threads ================================================== */

/*
 * SENDERS threads, started on a barrier while the runtime runs, each spawn
 * a private receiver and send it, and a shared receiver, `per_sender`
 * numbered messages each; each holds the runtime (taken for it before the
 * run) until done. Receivers check every sender's messages come in its
 * order. A failure means a message from an outside thread was lost,
 * duplicated or reordered, or the run ended while a sender held it.
 */
enum { SENDERS = 4 };

typedef struct seq_s {
  _Atomic uint64_t received;
  _Atomic uint64_t out_of_order;
} seq_t;

typedef struct seq_state_s {
  seq_t *seq;
  uint64_t next[SENDERS];
} seq_state_t;

static int seq_init(isle_ctx_t *ctx, void *state, const void *arg) {
  ((seq_state_t *)state)->seq = (seq_t *)arg;
  WORKER_CHECK(isle_ctx_worker(ctx) == -1);
  return 0;
}

static int seq_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  seq_state_t *s = state;
  support_payload_t *p = support_payload(msg);
  if (!WORKER_CHECK(p->b < SENDERS))
    return ISLE_CONTINUE;
  if (p->a != s->next[p->b] || isle_msg_sender(msg) != ISLE_REF_NONE)
    atomic_fetch_add(&s->seq->out_of_order, 1);
  s->next[p->b] = p->a + 1;
  atomic_fetch_add(&s->seq->received, 1);
  return ISLE_CONTINUE;
}

static const isle_actor_type_t seq_type = {
    .name = "seq",
    .state_size = sizeof(seq_state_t),
    .init = seq_init,
    .receive = seq_receive,
};

typedef struct senders_s {
  isle_runtime_t *rt;
  pthread_barrier_t start;
  isle_ref_t shared;
  seq_t shared_seq;
  seq_t private_seq[SENDERS];
  uint64_t per_sender;
} senders_t;

typedef struct sender_arg_s {
  senders_t *s;
  unsigned index;
} sender_arg_t;

static void *sender_main(void *arg) {
  sender_arg_t *me = arg;
  senders_t *s = me->s;
  pthread_barrier_wait(&s->start);
  isle_ref_t mine = ISLE_REF_NONE;
  if (WORKER_CHECK(isle_runtime_spawn(s->rt, &seq_type,
                                      &s->private_seq[me->index],
                                      &mine) == 0)) {
    for (uint64_t i = 0; i < s->per_sender; i++) {
      isle_ref_t to[2] = {mine, s->shared};
      for (int k = 0; k < 2; k++) {
        isle_msg_t *m = support_msg(1, i, me->index);
        if (!WORKER_CHECK(m != NULL))
          break;
        if (!WORKER_CHECK(isle_runtime_send(s->rt, to[k], m) == 0))
          isle_msg_free(m);
      }
    }
  }
  isle_runtime_release(s->rt);
  return NULL;
}

static void test_runtime_outside_threads_send_while_it_runs(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  senders_t *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->rt = rt;
  s->per_sender = support_iters(5000);
  assert_int_equal(pthread_barrier_init(&s->start, NULL, SENDERS), 0);
  assert_int_equal(
      isle_runtime_spawn(rt, &seq_type, &s->shared_seq, &s->shared), 0);
  for (unsigned i = 0; i < SENDERS; i++)
    isle_runtime_hold(rt); /* each sender releases one */
  support_runner_t r;
  support_runner_start(&r, rt);
  pthread_t t[SENDERS];
  sender_arg_t args[SENDERS];
  for (unsigned i = 0; i < SENDERS; i++) {
    args[i] = (sender_arg_t){s, i};
    assert_int_equal(pthread_create(&t[i], NULL, sender_main, &args[i]), 0);
  }
  assert_int_equal(support_runner_join(&r), 0);
  for (unsigned i = 0; i < SENDERS; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  support_assert_workers_ok();
  /* Everything sent was handled before the run returned. */
  assert_int_equal(atomic_load(&s->shared_seq.received),
                   SENDERS * s->per_sender);
  assert_int_equal(atomic_load(&s->shared_seq.out_of_order), 0);
  for (unsigned i = 0; i < SENDERS; i++) {
    assert_int_equal(atomic_load(&s->private_seq[i].received), s->per_sender);
    assert_int_equal(atomic_load(&s->private_seq[i].out_of_order), 0);
  }
  isle_runtime_stats_t st = support_stats(rt);
  assert_int_equal(st.spawned, SENDERS + 1);
  assert_int_equal(st.messages, 2 * SENDERS * s->per_sender);
  pthread_barrier_destroy(&s->start);
  free(s);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_runtime_stop_before_run_makes_the_next_run_return),
      T(test_runtime_stop_from_another_thread_leaves_queued_messages),
      T(test_runtime_stop_from_a_signal_handler),
      T(test_runtime_run_returns_only_when_in_flight_messages_are_done),
      T(test_runtime_outside_threads_send_while_it_runs),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
