/* isle — MIT licensed. */
/*
 * Actors (include/isle/actor.h) as their callbacks see them: the context
 * (self, runtime, worker, reply, keep, forwarding, isle_msg_sender), the
 * order of one sender's messages from outside and from inside an actor,
 * and a storm of actors spawning actors.
 *
 * Callbacks run on workers: they record what they see in a probe_t the
 * test owns (support_actor.h), and check with WORKER_CHECK; the test
 * asserts after the run. Every test ends with the heap as it began
 * (support_assert_heap_quiet): a message the runtime neither delivered nor
 * freed shows up there.
 */
#define _GNU_SOURCE /* pthread, nanosleep under -std=c11 */

#include "support_actor.h"

/* ===== The context ====================================================== */

/* A parent that, on its message, spawns a probe child from inside, checks
 * the child's init saw this worker, and sends it a message. */
typedef struct parent_state_s {
  probe_t *child_probe;
} parent_state_t;

static int parent_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((parent_state_t *)state)->child_probe = (probe_t *)arg;
  return 0;
}

static int parent_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)msg;
  probe_t *cp = ((parent_state_t *)state)->child_probe;
  isle_ref_t child = ISLE_REF_NONE;
  if (!WORKER_CHECK(isle_ctx_spawn(ctx, &probe_type, cp, &child) == 0))
    return ISLE_STOP;
  WORKER_CHECK(atomic_load(&cp->self_in_init) == child);
  WORKER_CHECK(atomic_load(&cp->worker_in_init) == isle_ctx_worker(ctx));
  isle_msg_t *m = support_msg(1, 5, 0);
  if (WORKER_CHECK(m != NULL) &&
      !WORKER_CHECK(isle_ctx_send(ctx, child, m) == 0))
    isle_msg_free(m);
  return ISLE_STOP;
}

static const isle_actor_type_t parent_type = {
    .name = "parent",
    .state_size = sizeof(parent_state_t),
    .init = parent_init,
    .receive = parent_receive,
};

static void test_actor_ctx_names_self_runtime_and_worker(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  probe_t p;
  memset(&p, 0, sizeof p);
  atomic_store(&p.worker_in_init, 99);
  atomic_store(&p.worker_in_receive, 99);
  isle_ref_t ref = spawn_probe(rt, &p);
  /* init ran inside the spawn call, on this (outside) thread. */
  assert_int_equal(atomic_load(&p.inits), 1);
  assert_int_equal(atomic_load(&p.self_in_init), ref);
  assert_int_equal(atomic_load(&p.worker_in_init), -1);
  support_send(rt, ref, 1, 1, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&p.self_in_receive), ref);
  int w = atomic_load(&p.worker_in_receive);
  assert_true(w >= 0 && w < 2);
  assert_int_equal(atomic_load(&p.last_sender), ISLE_REF_NONE);

  /* Spawned from inside: init runs on the spawning worker. */
  probe_t child;
  memset(&child, 0, sizeof child);
  child.rt = rt;
  atomic_store(&child.worker_in_init, 99);
  isle_ref_t parent = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &parent_type, &child, &parent), 0);
  support_send(rt, parent, 1, 1, 0);
  run_ok(rt);
  w = atomic_load(&child.worker_in_init);
  assert_true(w >= 0 && w < 2);
  assert_int_equal(atomic_load(&child.received), 1);
  assert_int_equal(atomic_load(&child.last_sender), parent);
  assert_int_equal(atomic_load(&child.last_a), 5);
  isle_runtime_free(rt);
  assert_int_equal(atomic_load(&p.finalized), 1);
  assert_int_equal(atomic_load(&child.finalized), 1);
  support_assert_heap_quiet();
}

/* init may send to the actor it sets up: the messages are delivered once
 * the spawn is done. */
static int self_sending_init(isle_ctx_t *ctx, void *state, const void *arg) {
  int rc = probe_init(ctx, state, arg);
  for (uint64_t i = 1; i <= 3; i++) {
    isle_msg_t *m = support_msg(1, i, 0);
    if (WORKER_CHECK(m != NULL) &&
        !WORKER_CHECK(isle_ctx_send(ctx, isle_ctx_self(ctx), m) == 0))
      isle_msg_free(m);
  }
  return rc;
}

static const isle_actor_type_t self_sending_type = {
    .name = "self-sending",
    .state_size = sizeof(probe_state_t),
    .init = self_sending_init,
    .receive = probe_receive,
    .finalize = probe_finalize,
};

static void test_actor_messages_sent_by_init_are_delivered(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  probe_t p;
  memset(&p, 0, sizeof p);
  p.rt = rt;
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &self_sending_type, &p, &ref), 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&p.received), 3);
  assert_int_equal(atomic_load(&p.last_a), 3);
  assert_int_equal(atomic_load(&p.last_sender), ref);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ----- Reply ------------------------------------------------------------ */

enum { MSG_REQUEST = 10, MSG_REPLY = 11, MSG_KICK = 12 };

typedef struct talk_s {
  isle_runtime_t *rt;
  isle_ref_t asker, answerer, dead;
  _Atomic int reply_rc_outside; /* reply to a message from outside */
  _Atomic int reply_rc_actor;   /* reply to the asker's request */
  _Atomic int forward_rc;       /* a failed forward (to a dead actor) */
  _Atomic uint64_t sender_after_failed_forward;
  _Atomic uint64_t replies;      /* replies the asker got */
  _Atomic uint64_t reply_sender; /* isle_msg_sender of the reply */
  _Atomic uint64_t answerer_got; /* messages the answerer got */
} talk_t;

typedef struct talk_state_s {
  talk_t *talk;
} talk_state_t;

static int talk_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((talk_state_t *)state)->talk = (talk_t *)arg;
  return 0;
}

/* The asker: a kick from outside makes it send a request to the answerer;
 * replies are counted. Replies to itself (a misdirected one) count too. */
static int asker_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  talk_t *t = ((talk_state_t *)state)->talk;
  if (isle_msg_type(msg) == MSG_KICK) {
    isle_msg_t *req = support_msg(MSG_REQUEST, 1, 0);
    if (WORKER_CHECK(req != NULL) &&
        !WORKER_CHECK(isle_ctx_send(ctx, t->answerer, req) == 0))
      isle_msg_free(req);
  } else {
    WORKER_CHECK(isle_msg_type(msg) == MSG_REPLY);
    atomic_store(&t->reply_sender, isle_msg_sender(msg));
    atomic_fetch_add(&t->replies, 1);
  }
  return ISLE_CONTINUE;
}

/* The answerer: to a message from outside, a reply fails (no sender); to
 * the asker's request it first tries to forward the request to a dead
 * actor (which fails and leaves the request with it, unchanged), then
 * replies. A misdirected reply (to itself) is counted and dropped. */
static int answerer_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  talk_t *t = ((talk_state_t *)state)->talk;
  atomic_fetch_add(&t->answerer_got, 1);
  if (isle_msg_type(msg) == MSG_REPLY)
    return ISLE_CONTINUE; /* should not happen: counted above */
  isle_msg_t *reply = support_msg(MSG_REPLY, 2, 0);
  if (!WORKER_CHECK(reply != NULL))
    return ISLE_CONTINUE;
  if (isle_msg_sender(msg) == ISLE_REF_NONE) {
    int rc = isle_ctx_reply(ctx, reply);
    atomic_store(&t->reply_rc_outside, rc);
    if (rc != 0)
      isle_msg_free(reply);
    return ISLE_CONTINUE;
  }
  atomic_store(&t->forward_rc, isle_ctx_send(ctx, t->dead, msg));
  atomic_store(&t->sender_after_failed_forward, isle_msg_sender(msg));
  int rc = isle_ctx_reply(ctx, reply);
  atomic_store(&t->reply_rc_actor, rc);
  if (rc != 0)
    isle_msg_free(reply);
  return ISLE_CONTINUE;
}

static const isle_actor_type_t asker_type = {
    .name = "asker",
    .state_size = sizeof(talk_state_t),
    .init = talk_init,
    .receive = asker_receive,
};

static const isle_actor_type_t answerer_type = {
    .name = "answerer",
    .state_size = sizeof(talk_state_t),
    .init = talk_init,
    .receive = answerer_receive,
};

static void test_actor_reply_without_sender_fails_with_einval(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  talk_t t;
  memset(&t, 0, sizeof t);
  atomic_store(&t.reply_rc_outside, 1);
  assert_int_equal(isle_runtime_spawn(rt, &answerer_type, &t, &t.answerer), 0);
  support_send(rt, t.answerer, MSG_REQUEST, 0, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&t.reply_rc_outside), ISLE_EINVAL);
  assert_int_equal(atomic_load(&t.answerer_got), 1);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* A request from the asker: the reply reaches the asker with the answerer
 * as its sender. Before replying the answerer tries to forward the request
 * to a dead actor: that fails with ISLE_EDEAD and must leave the request
 * as it was (the caller's, its sender still the asker), so the reply still
 * goes to the asker and not back to the answerer. */
static void
test_actor_reply_reaches_the_sender_after_a_failed_forward(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  talk_t t;
  memset(&t, 0, sizeof t);
  atomic_store(&t.forward_rc, 1);
  atomic_store(&t.reply_rc_actor, 1);
  probe_t dead_p;
  memset(&dead_p, 0, sizeof dead_p);
  dead_p.stop_after = 1;
  t.dead = spawn_probe(rt, &dead_p);
  support_send(rt, t.dead, 1, 0, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&dead_p.finalized), 1);

  assert_int_equal(isle_runtime_spawn(rt, &asker_type, &t, &t.asker), 0);
  assert_int_equal(isle_runtime_spawn(rt, &answerer_type, &t, &t.answerer), 0);
  support_send(rt, t.asker, MSG_KICK, 0, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&t.forward_rc), ISLE_EDEAD);
  assert_int_equal(atomic_load(&t.reply_rc_actor), 0);
  assert_int_equal(atomic_load(&t.sender_after_failed_forward), t.asker);
  assert_int_equal(atomic_load(&t.replies), 1);
  assert_int_equal(atomic_load(&t.reply_sender), t.answerer);
  assert_int_equal(atomic_load(&t.answerer_got), 1);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ----- Forwarding and keeping ------------------------------------------- */

typedef struct relay_probe_s {
  isle_runtime_t *rt;
  isle_ref_t target;
  _Atomic(isle_msg_t *) forwarded;
  _Atomic int forward_rc;
  _Atomic uint64_t forwarder;
} relay_probe_t;

static int forwarder_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(relay_probe_t **)state = (relay_probe_t *)arg;
  return 0;
}

static int forwarder_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  relay_probe_t *r = *(relay_probe_t **)state;
  atomic_store(&r->forwarded, msg);
  atomic_store(&r->forwarder, isle_ctx_self(ctx));
  int rc = isle_ctx_send(ctx, r->target, msg);
  atomic_store(&r->forward_rc, rc);
  /* After a successful forward the message is the target's: not touched
   * again here, and the runtime must not free it (ASan would see it). */
  return ISLE_CONTINUE;
}

static const isle_actor_type_t forwarder_type = {
    .name = "forwarder",
    .state_size = sizeof(relay_probe_t *),
    .init = forwarder_init,
    .receive = forwarder_receive,
};

static void test_actor_forwarding_sends_the_same_message(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  probe_t p;
  memset(&p, 0, sizeof p);
  relay_probe_t r;
  memset(&r, 0, sizeof r);
  r.rt = rt;
  r.target = spawn_probe(rt, &p);
  atomic_store(&r.forward_rc, 1);
  isle_ref_t fwd = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &forwarder_type, &r, &fwd), 0);
  isle_msg_t *m = support_msg(1, 31, 0);
  assert_non_null(m);
  assert_int_equal(isle_runtime_send(rt, fwd, m), 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&r.forward_rc), 0);
  assert_ptr_equal(atomic_load(&r.forwarded), m);
  assert_int_equal(atomic_load(&p.received), 1);
  assert_ptr_equal(atomic_load(&p.last_msg), m); /* zero-copy */
  assert_int_equal(atomic_load(&p.last_a), 31);
  assert_int_equal(atomic_load(&p.last_sender), fwd);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* A keeper keeps the first message it gets; on the second it checks the
 * kept one is intact and frees it; the third it keeps until finalize. */
typedef struct keeper_state_s {
  isle_msg_t *kept;
  uint64_t n;
  _Atomic uint64_t *checked;
} keeper_state_t;

static int keeper_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((keeper_state_t *)state)->checked = (_Atomic uint64_t *)arg;
  return 0;
}

static int keeper_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  keeper_state_t *k = state;
  k->n++;
  if (k->n == 2 && WORKER_CHECK(k->kept != NULL)) {
    WORKER_CHECK(support_payload(k->kept)->a == 1);
    WORKER_CHECK(isle_msg_type(k->kept) == 1);
    WORKER_CHECK(isle_msg_size(k->kept) == sizeof(support_payload_t));
    isle_msg_free(k->kept);
    k->kept = NULL;
    atomic_fetch_add(k->checked, 1);
    return ISLE_CONTINUE;
  }
  isle_ctx_keep(ctx);
  k->kept = msg;
  return ISLE_CONTINUE;
}

static void keeper_finalize(isle_ctx_t *ctx, void *state) {
  (void)ctx;
  keeper_state_t *k = state;
  if (WORKER_CHECK(k->kept != NULL) &&
      WORKER_CHECK(support_payload(k->kept)->a == 3))
    atomic_fetch_add(k->checked, 1);
  isle_msg_free(k->kept);
}

static const isle_actor_type_t keeper_type = {
    .name = "keeper",
    .state_size = sizeof(keeper_state_t),
    .init = keeper_init,
    .receive = keeper_receive,
    .finalize = keeper_finalize,
};

static void test_actor_kept_message_outlives_receive(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  _Atomic uint64_t checked = 0;
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &keeper_type, &checked, &ref), 0);
  support_send(rt, ref, 1, 1, 0);
  run_ok(rt); /* the first kept across the end of a run */
  support_send(rt, ref, 1, 2, 0);
  support_send(rt, ref, 1, 3, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&checked), 1);
  isle_runtime_free(rt);
  assert_int_equal(atomic_load(&checked), 2);
  support_assert_heap_quiet();
}

/* ===== Order ============================================================ */

/* Checks that messages arrive in sequence from one sender. */
typedef struct order_s {
  isle_runtime_t *rt;
  isle_ref_t producer; /* expected sender; ISLE_REF_NONE from outside */
  isle_ref_t consumer;
  uint64_t total;
  uint64_t chunk;
  _Atomic uint64_t received;
  _Atomic uint64_t out_of_order;
} order_t;

typedef struct order_state_s {
  order_t *o;
  uint64_t next; /* consumer: expected; producer: next to send */
} order_state_t;

static int order_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((order_state_t *)state)->o = (order_t *)arg;
  return 0;
}

static int consumer_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  order_state_t *s = state;
  uint64_t seq = support_payload(msg)->a;
  if (seq != s->next || isle_msg_sender(msg) != s->o->producer) {
    if (atomic_fetch_add(&s->o->out_of_order, 1) < 5)
      fprintf(stderr,
              "expected %" PRIu64 " from %#" PRIx64 ", got %" PRIu64
              " from %#" PRIx64 "\n",
              s->next, s->o->producer, seq, isle_msg_sender(msg));
  }
  s->next = seq + 1;
  atomic_fetch_add(&s->o->received, 1);
  return ISLE_CONTINUE;
}

/* On each message (from outside, or its own "go on"), sends the next chunk
 * to the consumer, then "go on" to itself, so that its turns interleave
 * with the consumer's, on either worker. */
static int producer_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)msg;
  order_state_t *s = state;
  order_t *o = s->o;
  for (uint64_t i = 0; i < o->chunk && s->next < o->total; i++) {
    isle_msg_t *m = support_msg(1, s->next, 0);
    if (!WORKER_CHECK(m != NULL))
      return ISLE_STOP;
    if (!WORKER_CHECK(isle_ctx_send(ctx, o->consumer, m) == 0)) {
      isle_msg_free(m);
      return ISLE_STOP;
    }
    s->next++;
  }
  if (s->next < o->total) {
    isle_msg_t *m = support_msg(2, 0, 0);
    if (WORKER_CHECK(m != NULL) &&
        !WORKER_CHECK(isle_ctx_send(ctx, isle_ctx_self(ctx), m) == 0))
      isle_msg_free(m);
  }
  return ISLE_CONTINUE;
}

static const isle_actor_type_t consumer_type = {
    .name = "consumer",
    .state_size = sizeof(order_state_t),
    .init = order_init,
    .receive = consumer_receive,
};

static const isle_actor_type_t producer_type = {
    .name = "producer",
    .state_size = sizeof(order_state_t),
    .init = order_init,
    .receive = producer_receive,
};

/* From outside: some messages before the run, the rest while it runs (the
 * sender holds the runtime meanwhile), all in order. */
static void
test_actor_messages_from_outside_arrive_in_send_order(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  order_t o;
  memset(&o, 0, sizeof o);
  o.total = support_iters(20000);
  assert_int_equal(isle_runtime_spawn(rt, &consumer_type, &o, &o.consumer), 0);
  uint64_t before = o.total / 2;
  for (uint64_t i = 0; i < before; i++)
    support_send(rt, o.consumer, 1, i, 0);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  for (uint64_t i = before; i < o.total; i++)
    support_send(rt, o.consumer, 1, i, 0);
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  assert_int_equal(atomic_load(&o.received), o.total);
  assert_int_equal(atomic_load(&o.out_of_order), 0);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

static void
test_actor_messages_from_an_actor_arrive_in_send_order(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  order_t o;
  memset(&o, 0, sizeof o);
  o.total = support_iters(20000);
  o.chunk = 100;
  assert_int_equal(isle_runtime_spawn(rt, &consumer_type, &o, &o.consumer), 0);
  assert_int_equal(isle_runtime_spawn(rt, &producer_type, &o, &o.producer), 0);
  support_send(rt, o.producer, 2, 0, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&o.received), o.total);
  assert_int_equal(atomic_load(&o.out_of_order), 0);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== A spawn storm ==================================================== */

/*
 * A binary tree of actors: node i, on its message, spawns nodes 2i+1 and
 * 2i+2 (when below the tree's size) from inside, sends each a message, and
 * stops. Every node must run exactly once; the run returns only when the
 * whole tree is done. A failure means a spawn from inside lost its actor or
 * its first message (never run), or ran one twice.
 */
typedef struct tree_s {
  uint64_t size;
  _Atomic uint8_t *seen;
  _Atomic uint64_t visited;
} tree_t;

typedef struct tree_arg_s {
  tree_t *tree;
  uint64_t index;
} tree_arg_t;

static int node_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(tree_arg_t *)state = *(const tree_arg_t *)arg;
  return 0;
}

static const isle_actor_type_t node_type;

static int node_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  tree_arg_t *me = state;
  tree_t *t = me->tree;
  WORKER_CHECK(support_payload(msg)->a == me->index);
  WORKER_CHECK(atomic_fetch_add(&t->seen[me->index], 1) == 0);
  atomic_fetch_add(&t->visited, 1);
  for (uint64_t c = 2 * me->index + 1; c <= 2 * me->index + 2; c++) {
    if (c >= t->size)
      break;
    tree_arg_t arg = {t, c};
    isle_ref_t child = ISLE_REF_NONE;
    if (!WORKER_CHECK(isle_ctx_spawn(ctx, &node_type, &arg, &child) == 0))
      continue;
    isle_msg_t *m = support_msg(1, c, 0);
    if (WORKER_CHECK(m != NULL) &&
        !WORKER_CHECK(isle_ctx_send(ctx, child, m) == 0))
      isle_msg_free(m);
  }
  return ISLE_STOP;
}

static const isle_actor_type_t node_type = {
    .name = "node",
    .state_size = sizeof(tree_arg_t),
    .init = node_init,
    .receive = node_receive,
};

static void
test_actor_spawn_storm_runs_a_tree_of_actors_once_each(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  tree_t t;
  memset(&t, 0, sizeof t);
  t.size = support_iters(10000);
  t.seen = calloc(t.size, sizeof *t.seen);
  assert_non_null(t.seen);
  tree_arg_t root = {&t, 0};
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &node_type, &root, &ref), 0);
  support_send(rt, ref, 1, 0, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&t.visited), t.size);
  for (uint64_t i = 0; i < t.size; i++)
    assert_int_equal(atomic_load(&t.seen[i]), 1);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.spawned, t.size);
  assert_int_equal(s.stopped, t.size);
  assert_int_equal(s.actors_live, 0);
  assert_int_equal(s.messages, t.size);
  assert_int_equal(s.dead_letters, 0);
  free(t.seen);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_actor_ctx_names_self_runtime_and_worker),
      T(test_actor_messages_sent_by_init_are_delivered),
      T(test_actor_reply_without_sender_fails_with_einval),
      T(test_actor_reply_reaches_the_sender_after_a_failed_forward),
      T(test_actor_forwarding_sends_the_same_message),
      T(test_actor_kept_message_outlives_receive),
      T(test_actor_messages_from_outside_arrive_in_send_order),
      T(test_actor_messages_from_an_actor_arrive_in_send_order),
      T(test_actor_spawn_storm_runs_a_tree_of_actors_once_each),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
