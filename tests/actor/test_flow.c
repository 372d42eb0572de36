/* isle — MIT licensed. */
/*
 * Flow control (actor/mute.c, docs/runtime.md): a sender that outruns its
 * receiver is held back, so the receiver's backlog stays bounded; floods
 * in both directions still finish; a sender muted on a receiver that ends
 * is let go; a stop while actors are muted loses none of them.
 *
 * The flooder sends CHUNK messages per receive to its target and a
 * CONTINUE to itself, until it has sent `total`; the sink counts what it
 * gets (in order) and may stop after `stop_after`. The bound tests below
 * have producers and sinks of their own that measure the backlog.
 */
#define _GNU_SOURCE
#include <unistd.h> /* usleep */

#include "support.h"
#include "actor/internal.h" /* a sink reads its own mailbox count */

#define CHUNK 1000u

enum { MSG_GO = 1, MSG_ITEM };

typedef struct flood_s {
  uint64_t total;      /* messages the flooder sends */
  uint64_t stop_after; /* the sink stops after this many (0: never) */
  unsigned sink_busy_us;
  _Atomic uint64_t sent, refused, received;
  _Atomic uint64_t out_of_order;
  isle_ref_t sink;
} flood_t;

/* Sends the actor itself the next GO (the chunked sender's CONTINUE). */
static int go_on(isle_ctx_t *ctx) {
  isle_msg_t *go = support_msg(MSG_GO, 0, 0);
  if (!WORKER_CHECK(go != NULL))
    return ISLE_ENOMEM;
  if (!WORKER_CHECK(isle_ctx_send(ctx, isle_ctx_self(ctx), go) == 0)) {
    isle_msg_free(go);
    return ISLE_EPROTO;
  }
  return ISLE_CONTINUE;
}

typedef struct flooder_s {
  flood_t *f;
  uint64_t next;
} flooder_t;

static int flooder_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((flooder_t *)state)->f = (flood_t *)arg;
  return 0;
}

static int flooder_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  flooder_t *fl = state;
  flood_t *f = fl->f;
  if (!WORKER_CHECK(isle_msg_type(msg) == MSG_GO))
    return ISLE_EPROTO;
  for (unsigned i = 0; i < CHUNK && fl->next < f->total; i++, fl->next++) {
    isle_msg_t *m = support_msg(MSG_ITEM, fl->next, 0);
    if (!WORKER_CHECK(m != NULL))
      return ISLE_ENOMEM;
    int rc = isle_ctx_send(ctx, f->sink, m);
    if (rc == 0) {
      atomic_fetch_add(&f->sent, 1);
    } else {
      WORKER_CHECK(rc == ISLE_EDEAD); /* the sink may have ended */
      isle_msg_free(m);
      atomic_fetch_add(&f->refused, 1);
    }
  }
  if (fl->next == f->total)
    return ISLE_STOP;
  return go_on(ctx);
}

static int sink_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  flood_t *f = *(flood_t **)state;
  if (!WORKER_CHECK(isle_msg_type(msg) == MSG_ITEM))
    return ISLE_EPROTO;
  uint64_t n = atomic_load(&f->received);
  if (support_payload(msg)->a != n)
    atomic_fetch_add(&f->out_of_order, 1);
  atomic_store(&f->received, n + 1);
  if (f->sink_busy_us)
    support_busy_us(f->sink_busy_us);
  if (f->stop_after && n + 1 == f->stop_after)
    return ISLE_STOP;
  return ISLE_CONTINUE;
}

static int sink_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(flood_t **)state = (flood_t *)arg;
  return 0;
}

static const isle_actor_type_t flooder_type = {
    .name = "flooder",
    .state_size = sizeof(flooder_t),
    .init = flooder_init,
    .receive = flooder_receive,
};

static const isle_actor_type_t sink_type = {
    .name = "sink",
    .state_size = sizeof(flood_t *),
    .init = sink_init,
    .receive = sink_receive,
};

/* Spawns the sink and a flooder aimed at it, and starts the flooder. */
static void flood_start(isle_runtime_t *rt, flood_t *f) {
  assert_int_equal(isle_runtime_spawn(rt, &sink_type, f, &f->sink), 0);
  isle_ref_t flooder = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &flooder_type, f, &flooder), 0);
  support_send(rt, flooder, MSG_GO, 0, 0);
}

/* ----- The bound, for 1, 2 and 4 producers, N and 10 N messages, 1 and 2
 * workers ----------------------------------------------------------------
 *
 * Producers send CHUNK messages per receive to one slow sink (about 200 ns
 * a message) and a CONTINUE to themselves. docs/runtime.md states the bound
 * on the sink's backlog: 16 x batch + CHUNK per producer. The sink samples
 * its own mailbox count at each receive and the heap's bytes in use every
 * 256, and the peaks must stay under bounds that depend only on the
 * producer count: not on the run length, nor on the worker count. Before
 * flow control was bounded by backlog (a muted sender was let go after
 * 1 ms whatever the backlog, and ran a whole batch of chunks before being
 * muted), this failed with 2 workers: one producer, 1 M messages, a
 * backlog of 266,530 and 17 MB of heap growth. */
#define MAX_PRODUCERS 4

typedef struct crowd_s {
  unsigned producers;
  uint64_t per_producer;
  isle_runtime_t *rt;
  isle_ref_t sink;
  _Atomic uint64_t received;
  uint64_t next[MAX_PRODUCERS]; /* sink only: per-producer order */
  uint64_t out_of_order;        /* sink only */
  uint64_t peak_backlog;        /* sink only */
  uint64_t peak_in_use;         /* sink only: heap bytes in spans */
} crowd_t;

typedef struct producer_s {
  crowd_t *c;
  unsigned index;
  uint64_t sent;
} producer_t;

static int producer_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(producer_t *)state = *(const producer_t *)arg;
  return 0;
}

static int producer_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)msg;
  producer_t *p = state;
  crowd_t *c = p->c;
  for (unsigned i = 0; i < CHUNK && p->sent < c->per_producer; i++) {
    isle_msg_t *m = support_msg(MSG_ITEM, p->sent, p->index);
    if (!WORKER_CHECK(m != NULL))
      return ISLE_ENOMEM;
    if (!WORKER_CHECK(isle_ctx_send(ctx, c->sink, m) == 0)) {
      isle_msg_free(m);
      return ISLE_EPROTO;
    }
    p->sent++;
  }
  if (p->sent == c->per_producer)
    return ISLE_STOP;
  return go_on(ctx);
}

static int crowd_sink_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  crowd_t *c = *(crowd_t **)state;
  if (!WORKER_CHECK(isle_msg_type(msg) == MSG_ITEM))
    return ISLE_EPROTO;
  support_payload_t *pl = support_payload(msg);
  if (pl->b >= MAX_PRODUCERS || pl->a != c->next[pl->b]++)
    c->out_of_order++;
  isle__mbox_t *mb = &isle__slot_of(c->rt, c->sink)->mbox;
  uint64_t backlog = isle__mbox_backlog(mb, c->sink >> 32);
  if (backlog > c->peak_backlog)
    c->peak_backlog = backlog;
  uint64_t n = atomic_fetch_add(&c->received, 1) + 1;
  if (n % 256 == 0) {
    isle_heap_global_stats_t g;
    isle_heap_stats_global(&g);
    if (g.in_use_bytes > c->peak_in_use)
      c->peak_in_use = g.in_use_bytes;
  }
  uint64_t until = support_now_ns() + 200;
  while (support_now_ns() < until)
    ;
  (void)ctx;
  return ISLE_CONTINUE;
}

static const isle_actor_type_t producer_type = {
    .name = "producer",
    .state_size = sizeof(producer_t),
    .init = producer_init,
    .receive = producer_receive,
};

static const isle_actor_type_t crowd_sink_type = {
    .name = "crowd sink",
    .state_size = sizeof(crowd_t *),
    .init = sink_init,
    .receive = crowd_sink_receive,
};

/* One flood; returns its crowd's figures in *c. */
static void crowd_run(crowd_t *c, unsigned workers, unsigned producers,
                      uint64_t total) {
  memset(c, 0, sizeof *c);
  c->producers = producers;
  c->per_producer = total / producers;
  c->rt = support_runtime(workers, 0);
  assert_int_equal(isle_runtime_spawn(c->rt, &crowd_sink_type, c, &c->sink), 0);
  for (unsigned i = 0; i < producers; i++) {
    producer_t p = {.c = c, .index = i};
    isle_ref_t r = ISLE_REF_NONE;
    assert_int_equal(isle_runtime_spawn(c->rt, &producer_type, &p, &r), 0);
    support_send(c->rt, r, MSG_GO, 0, 0);
  }
  isle_heap_global_stats_t g;
  isle_heap_stats_global(&g);
  uint64_t in_use_before = g.in_use_bytes;
  assert_int_equal(isle_runtime_run(c->rt), 0);
  support_assert_workers_ok();
  assert_int_equal(atomic_load(&c->received), c->per_producer * producers);
  assert_int_equal(c->out_of_order, 0);
  c->peak_in_use =
      c->peak_in_use > in_use_before ? c->peak_in_use - in_use_before : 0;
  isle_runtime_free(c->rt);
}

static void test_flow_backlog_bound_holds_for_any_run(void **state) {
  /* 20,000 and 200,000 messages in the sanitizer builds, 100,000 and
   * 1,000,000 otherwise. */
#if defined(SUPPORT_UNDER_TSAN) || defined(SUPPORT_UNDER_ASAN)
  uint64_t n = support_iters(20000);
#else
  uint64_t n = support_iters(100000);
#endif
  static const unsigned producer_counts[] = {1, 2, 4};
  for (unsigned pi = 0; pi < 3; pi++) {
    unsigned producers = producer_counts[pi];
    uint64_t bound = 16 * 64 + (uint64_t)producers * CHUNK;
    /* A message is a 64-byte block (48 of header and payload); spans
     * come in 64 KiB and a heap may hold a few more than it uses. */
    uint64_t bytes_bound = bound * 64 + (1u << 20);
    for (unsigned workers = 1; workers <= 2; workers++) {
      for (uint64_t total = n; total <= 10 * n; total *= 10) {
        crowd_t c;
        crowd_run(&c, workers, producers, total);
        fprintf(stderr,
                "%u producer(s), %u worker(s), %" PRIu64
                " messages: peak backlog %" PRIu64 " (bound %" PRIu64
                "), peak heap growth %" PRIu64 " B (bound %" PRIu64 ")\n",
                producers, workers, total, c.peak_backlog, bound, c.peak_in_use,
                bytes_bound);
        assert_true(c.peak_backlog <= bound);
        assert_true(c.peak_in_use <= bytes_bound);
      }
    }
  }
  support_assert_heap_quiet();
}

/* ----- One receive that overloads two receivers -------------------------
 *
 * X's receive sends one message to a slow R1 (held at the high mark) and
 * then a burst past the mark to a fast R2. Muted on R2 alone (as before
 * the fix, which recorded only the last backlogged receiver), X was let
 * go whenever R2 drained and added one more to R1 each time: R1 grew to
 * 2,957 of 3,000 with H = 64. Muted on both, R1 stays at H + 1. */
#define DUO_BATCH 4u
#define DUO_H (16u * DUO_BATCH)
#define DUO_SENDS 1000u

typedef struct duo_s {
  isle_ref_t r1, r2;
  _Atomic uint64_t sent1, recv1, peak1;
} duo_t;

static int duo_slow_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)msg;
  usleep(100); /* sleeping: its worker is free for X and R2 meanwhile */
  atomic_fetch_add(&(*(duo_t **)state)->recv1, 1);
  return ISLE_CONTINUE;
}

static int duo_x_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)msg;
  duo_t *d = *(duo_t **)state;
  if (atomic_load(&d->sent1) >= DUO_SENDS)
    return ISLE_STOP;
  isle_msg_t *a = support_msg(MSG_ITEM, 0, 0);
  if (!WORKER_CHECK(a != NULL && isle_ctx_send(ctx, d->r1, a) == 0))
    return ISLE_EPROTO;
  uint64_t backlog =
      atomic_fetch_add(&d->sent1, 1) + 1 - atomic_load(&d->recv1);
  if (backlog > atomic_load(&d->peak1))
    atomic_store(&d->peak1, backlog);
  for (unsigned i = 0; i < DUO_H + 8; i++) {
    isle_msg_t *q = support_msg(MSG_ITEM, 0, 0);
    if (!WORKER_CHECK(q != NULL && isle_ctx_send(ctx, d->r2, q) == 0))
      return ISLE_EPROTO;
  }
  return go_on(ctx);
}

static int duo_fast_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return ISLE_CONTINUE;
}

static void test_flow_one_receive_overloading_two_receivers(void **state) {
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = 2;
  cfg.batch = DUO_BATCH;
  isle_runtime_t *rt = NULL;
  assert_int_equal(isle_runtime_new(&cfg, &rt), 0);
  duo_t d;
  memset(&d, 0, sizeof d);
  static const isle_actor_type_t slow = {.name = "slow",
                                         .state_size = sizeof(duo_t *),
                                         .init = sink_init,
                                         .receive = duo_slow_receive};
  static const isle_actor_type_t fast = {.name = "fast",
                                         .receive = duo_fast_receive};
  static const isle_actor_type_t x = {.name = "x",
                                      .state_size = sizeof(duo_t *),
                                      .init = sink_init,
                                      .receive = duo_x_receive};
  assert_int_equal(isle_runtime_spawn(rt, &slow, &d, &d.r1), 0);
  assert_int_equal(isle_runtime_spawn(rt, &fast, NULL, &d.r2), 0);
  isle_ref_t xr = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &x, &d, &xr), 0);
  for (unsigned i = 0; i < DUO_H / 2; i++) { /* R1 starts backlogged */
    support_send(rt, d.r1, MSG_ITEM, 0, 0);
    atomic_fetch_add(&d.sent1, 1);
  }
  support_send(rt, xr, MSG_GO, 0, 0);
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
  fprintf(stderr, "R1's peak backlog %" PRIu64 " (bound %u)\n",
          atomic_load(&d.peak1), DUO_H + 1);
  assert_true(atomic_load(&d.peak1) <= DUO_H + 1);
  assert_int_equal(isle_runtime_free(rt), 0);
  support_assert_heap_quiet();
}

/* ----- A relay: X -> R -> S ---------------------------------------------
 *
 * X sends 8 per receive to R, R forwards each with one more to a slow S.
 * R's own backlog reaching H lets it go on sending to S (rule (b) of
 * mute.c), a receive at a time, until it is below H again: S's bound is
 * H + 2 x (R's excess over H, at most X's 8, + 1). A rule that let X go
 * whenever R was muted below H (found by review, removed) let X and R
 * release each other, and S grew with the run: 9,244 for 5,000 messages,
 * 39,313 for 20,000. */
#define RELAY_H (16u * DUO_BATCH)

typedef struct relay_s {
  isle_ref_t r, s;
  uint64_t total;
  _Atomic uint64_t forwarded, received, peak;
} relay_t;

static int relay_x_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)msg;
  relay_t *d = *(relay_t **)state;
  for (unsigned k = 0; k < 8; k++) {
    if (d->total == 0)
      return ISLE_STOP;
    isle_msg_t *m = support_msg(MSG_ITEM, 0, 0);
    if (!WORKER_CHECK(m != NULL && isle_ctx_send(ctx, d->r, m) == 0))
      return ISLE_EPROTO;
    d->total--;
  }
  return go_on(ctx);
}

/* Counts each message before it is sent: S may receive it before the send
 * returns, and its backlog (forwarded - received) must not go below 0
 * (counted after both sends, a run read 2^64 - 1 under TSan). */
static int relay_r_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  relay_t *d = *(relay_t **)state;
  atomic_fetch_add(&d->forwarded, 1);
  if (!WORKER_CHECK(isle_ctx_send(ctx, d->s, msg) == 0))
    return ISLE_EPROTO;
  isle_msg_t *m = support_msg(MSG_ITEM, 0, 0);
  atomic_fetch_add(&d->forwarded, 1);
  if (!WORKER_CHECK(m != NULL && isle_ctx_send(ctx, d->s, m) == 0))
    return ISLE_EPROTO;
  return ISLE_CONTINUE;
}

static int relay_s_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)msg;
  relay_t *d = *(relay_t **)state;
  uint64_t n = atomic_fetch_add(&d->received, 1) + 1;
  uint64_t backlog = atomic_load(&d->forwarded) - n + 1; /* >= 1 */
  if (backlog > atomic_load(&d->peak))
    atomic_store(&d->peak, backlog);
  support_busy_us(20);
  return ISLE_CONTINUE;
}

static void test_flow_relay_keeps_the_last_receiver_bounded(void **state) {
  static const isle_actor_type_t x = {.name = "x",
                                      .state_size = sizeof(relay_t *),
                                      .init = sink_init,
                                      .receive = relay_x_receive};
  static const isle_actor_type_t r = {.name = "relay",
                                      .state_size = sizeof(relay_t *),
                                      .init = sink_init,
                                      .receive = relay_r_receive};
  static const isle_actor_type_t s = {.name = "slow",
                                      .state_size = sizeof(relay_t *),
                                      .init = sink_init,
                                      .receive = relay_s_receive};
  const uint64_t bound = RELAY_H + 2 * (8 + 1) + 2;
  for (uint64_t total = 2000; total <= 20000; total *= 10) {
    isle_runtime_config_t cfg;
    isle_runtime_config_init(&cfg);
    cfg.workers = 2;
    cfg.batch = DUO_BATCH;
    isle_runtime_t *rt = NULL;
    assert_int_equal(isle_runtime_new(&cfg, &rt), 0);
    relay_t d;
    memset(&d, 0, sizeof d);
    d.total = total;
    isle_ref_t xr = ISLE_REF_NONE;
    assert_int_equal(isle_runtime_spawn(rt, &s, &d, &d.s), 0);
    assert_int_equal(isle_runtime_spawn(rt, &r, &d, &d.r), 0);
    assert_int_equal(isle_runtime_spawn(rt, &x, &d, &xr), 0);
    support_send(rt, xr, MSG_GO, 0, 0);
    assert_int_equal(isle_runtime_run(rt), 0);
    support_assert_workers_ok();
    assert_int_equal(atomic_load(&d.received), 2 * total);
    fprintf(stderr,
            "relay, %" PRIu64 " messages: S's peak %" PRIu64 " (bound %" PRIu64
            ")\n",
            total, atomic_load(&d.peak), bound);
    assert_true(atomic_load(&d.peak) <= bound);
    assert_int_equal(isle_runtime_free(rt), 0);
  }
  support_assert_heap_quiet();
}

/* ----- Two actors muting on each other at once -------------------------
 *
 * Each of two actors forwards its message to the other, seeded with H - 1
 * each (the total never changes). Both turns push the other to H and mute
 * at the same moment; without a fence between a turn's taken count and
 * its look at the receiver, both read the other's backlog from before its
 * turn and both stay muted below H for ever: 6 of 6 runs hung with batch
 * 4 on two workers (review). A deadline catches a hang. */
#define PAIR_ROUNDS 200000u

typedef struct pair_s {
  isle_ref_t peer[2];
  _Atomic uint64_t receives;
} pair_t;

static int pair_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  pair_t *p = *(pair_t **)state;
  if (atomic_fetch_add(&p->receives, 1) >= PAIR_ROUNDS)
    return ISLE_CONTINUE; /* freed: the ring winds down */
  isle_ref_t self = isle_ctx_self(ctx);
  isle_ref_t to = self == p->peer[0] ? p->peer[1] : p->peer[0];
  if (!WORKER_CHECK(isle_ctx_send(ctx, to, msg) == 0))
    return ISLE_EPROTO;
  return ISLE_CONTINUE;
}

static void test_flow_two_actors_muting_on_each_other_go_on(void **state) {
  static const isle_actor_type_t pair_type = {.name = "pair",
                                              .state_size = sizeof(pair_t *),
                                              .init = sink_init,
                                              .receive = pair_receive};
  for (unsigned round = 0; round < 4; round++) {
    isle_runtime_config_t cfg;
    isle_runtime_config_init(&cfg);
    cfg.workers = 2;
    cfg.batch = DUO_BATCH;
    isle_runtime_t *rt = NULL;
    assert_int_equal(isle_runtime_new(&cfg, &rt), 0);
    pair_t p;
    memset(&p, 0, sizeof p);
    for (int i = 0; i < 2; i++)
      assert_int_equal(isle_runtime_spawn(rt, &pair_type, &p, &p.peer[i]), 0);
    for (int i = 0; i < 2; i++)
      for (unsigned k = 0; k + 1 < 16 * DUO_BATCH; k++)
        support_send(rt, p.peer[i], MSG_ITEM, k, 0);
    support_runner_t r;
    support_runner_start(&r, rt);
    assert_true(support_runner_wait(&r, 60000));
    assert_int_equal(support_runner_join(&r), 0);
    support_assert_workers_ok();
    assert_true(atomic_load(&p.receives) >= PAIR_ROUNDS);
    assert_int_equal(isle_runtime_free(rt), 0);
  }
  support_assert_heap_quiet();
}

/* Two flooders aimed at each other's sinks is not a cycle; this is: each
 * actor floods the other and is flooded by it. Both are backlogged, so
 * neither is muted for long; the run must end with every message
 * delivered. A deadline catches a hang. */
typedef struct duel_side_s {
  struct duel_side_s *peer;
  isle_ref_t self;
  uint64_t total;
  uint64_t next;
  _Atomic uint64_t received;
} duel_side_t;

static int duel_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(duel_side_t **)state = (duel_side_t *)arg;
  return 0;
}

static int duel_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  duel_side_t *d = *(duel_side_t **)state;
  if (isle_msg_type(msg) == MSG_ITEM) {
    atomic_fetch_add(&d->received, 1);
    return ISLE_CONTINUE;
  }
  for (unsigned i = 0; i < CHUNK && d->next < d->total; i++, d->next++) {
    isle_msg_t *m = support_msg(MSG_ITEM, d->next, 0);
    if (!WORKER_CHECK(m != NULL))
      return ISLE_ENOMEM;
    if (!WORKER_CHECK(isle_ctx_send(ctx, d->peer->self, m) == 0))
      isle_msg_free(m);
  }
  if (d->next < d->total) {
    isle_msg_t *go = support_msg(MSG_GO, 0, 0);
    if (WORKER_CHECK(go != NULL) &&
        !WORKER_CHECK(isle_ctx_send(ctx, d->self, go) == 0))
      isle_msg_free(go);
  }
  return ISLE_CONTINUE;
}

static const isle_actor_type_t duel_type = {
    .name = "duel",
    .state_size = sizeof(duel_side_t *),
    .init = duel_init,
    .receive = duel_receive,
};

static void test_flow_actors_flooding_each_other_finish(void **state) {
  for (unsigned workers = 1; workers <= 2; workers++) {
    isle_runtime_t *rt = support_runtime(workers, 0);
    duel_side_t side[2];
    memset(side, 0, sizeof side);
    for (int i = 0; i < 2; i++) {
      side[i].peer = &side[1 - i];
      side[i].total = support_iters(100000);
      assert_int_equal(
          isle_runtime_spawn(rt, &duel_type, &side[i], &side[i].self), 0);
    }
    for (int i = 0; i < 2; i++)
      support_send(rt, side[i].self, MSG_GO, 0, 0);
    support_runner_t r;
    support_runner_start(&r, rt);
    assert_true(support_runner_wait(&r, 60000));
    assert_int_equal(support_runner_join(&r), 0);
    support_assert_workers_ok();
    for (int i = 0; i < 2; i++)
      assert_int_equal(atomic_load(&side[i].received), side[1 - i].total);
    isle_runtime_free(rt);
  }
  support_assert_heap_quiet();
}

/* The sink ends after a fifth of the flood while the flooder is muted on
 * it: the flooder is let go, its later sends fail with ISLE_EDEAD and it
 * finishes. What the sink had queued when it ended is dropped as dead
 * letters. */
static void test_flow_sender_muted_on_an_ending_sink_goes_on(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  flood_t f;
  memset(&f, 0, sizeof f);
  f.total = support_iters(100000);
  f.stop_after = f.total / 5;
  flood_start(rt, &f);
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
  assert_int_equal(atomic_load(&f.received), f.stop_after);
  assert_int_equal(atomic_load(&f.sent) + atomic_load(&f.refused), f.total);
  assert_true(atomic_load(&f.refused) > 0);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.dead_letters, atomic_load(&f.sent) - f.stop_after +
                                       atomic_load(&f.refused));
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* A stop while the flooder is muted (the sink is slow: 20 µs a message)
 * loses nothing: the next run picks everything up where it was and
 * finishes the flood. */
static void test_flow_stop_while_muted_loses_nothing(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  flood_t f;
  memset(&f, 0, sizeof f);
  f.total = 20000;
  f.sink_busy_us = 20;
  flood_start(rt, &f);
  support_runner_t r;
  support_runner_start(&r, rt);
  assert_true(support_wait_u64(&f.received, 2000, 30000));
  isle_runtime_stop(rt);
  assert_int_equal(support_runner_join(&r), 0);
  uint64_t at_stop = atomic_load(&f.received);
  assert_true(at_stop < f.total);
  f.sink_busy_us = 0;
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
  assert_int_equal(atomic_load(&f.received), f.total);
  assert_int_equal(atomic_load(&f.out_of_order), 0);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_flow_backlog_bound_holds_for_any_run),
      T(test_flow_one_receive_overloading_two_receivers),
      T(test_flow_relay_keeps_the_last_receiver_bounded),
      T(test_flow_two_actors_muting_on_each_other_go_on),
      T(test_flow_actors_flooding_each_other_finish),
      T(test_flow_sender_muted_on_an_ending_sink_goes_on),
      T(test_flow_stop_while_muted_loses_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
