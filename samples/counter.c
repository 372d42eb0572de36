/* isle — MIT licensed. */
/*
 * counter: a producer sends increments to a counter, then asks it for the
 * total, which comes back as a reply.
 *
 *   samples/counter [increments] [workers]        (defaults 10000000 0)
 *
 * Shows: typed messages (the type field), a request/reply exchange, and a
 * producer that sends in chunks, re-sending itself a "continue" message
 * between chunks, so that no single receive runs for long: a turn handles
 * at most `batch` messages (64 by default, its own "continue" messages
 * included), and then the actor goes to the back of the run queue and
 * other actors (the counter) run.
 */
#include <isle.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { INCREMENT = 1, GET_TOTAL, TOTAL, CONTINUE };
#define CHUNK 1000

typedef struct counter_s {
  uint64_t total;
} counter_t;

static int counter_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  counter_t *c = state;
  switch (isle_msg_type(msg)) {
  case INCREMENT:
    c->total += *(const uint32_t *)isle_msg_data(msg);
    return ISLE_CONTINUE;
  case GET_TOTAL: {
    isle_msg_t *reply = isle_msg_new(TOTAL, sizeof c->total);
    if (!reply)
      return ISLE_ENOMEM;
    memcpy(isle_msg_data(reply), &c->total, sizeof c->total);
    int rc = isle_ctx_reply(ctx, reply);
    if (rc)
      isle_msg_free(reply);
    return rc ? rc : ISLE_STOP;
  }
  default:
    return ISLE_EPROTO;
  }
}

static const isle_actor_type_t counter_type = {
    .name = "counter",
    .state_size = sizeof(counter_t),
    .receive = counter_receive,
};

typedef struct producer_s {
  isle_ref_t counter;
  uint64_t to_send, sent;
  uint64_t *result; /* where main reads the total */
} producer_t;

static int send_typed(isle_ctx_t *ctx, isle_ref_t to, uint32_t type,
                      uint32_t value) {
  isle_msg_t *m = isle_msg_new(type, sizeof value);
  if (!m)
    return ISLE_ENOMEM;
  memcpy(isle_msg_data(m), &value, sizeof value);
  int rc = isle_ctx_send(ctx, to, m);
  if (rc)
    isle_msg_free(m);
  return rc;
}

static int producer_init(isle_ctx_t *ctx, void *state, const void *arg) {
  producer_t *p = state;
  *p = *(const producer_t *)arg;
  int rc = isle_ctx_spawn(ctx, &counter_type, NULL, &p->counter);
  return rc ? rc : send_typed(ctx, isle_ctx_self(ctx), CONTINUE, 0);
}

static int producer_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  producer_t *p = state;
  if (isle_msg_type(msg) == TOTAL) {
    memcpy(p->result, isle_msg_data(msg), sizeof *p->result);
    return ISLE_STOP;
  }
  /* CONTINUE: one chunk of increments, then either another CONTINUE to
   * ourselves or the question. */
  for (int i = 0; i < CHUNK && p->sent < p->to_send; i++, p->sent++) {
    int rc = send_typed(ctx, p->counter, INCREMENT, 1);
    if (rc)
      return rc;
  }
  if (p->sent < p->to_send)
    return send_typed(ctx, isle_ctx_self(ctx), CONTINUE, 0);
  return send_typed(ctx, p->counter, GET_TOTAL, 0);
}

static const isle_actor_type_t producer_type = {
    .name = "producer",
    .state_size = sizeof(producer_t),
    .init = producer_init,
    .receive = producer_receive,
};

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 0;
  uint64_t total = 0;
  producer_t args = {.to_send = n, .result = &total};
  isle_runtime_t *rt;
  int rc = isle_runtime_new(&cfg, &rt);
  if (rc == 0)
    rc = isle_runtime_spawn(rt, &producer_type, &args, NULL);
  if (rc) {
    fprintf(stderr, "counter: %s\n", isle_strerror(rc));
    return 1;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  isle_runtime_run(rt);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
  printf("counter: total %llu of %llu increments, %.1f M msgs/s\n",
         (unsigned long long)total, (unsigned long long)n, (double)n / s / 1e6);
  isle_runtime_free(rt);
  return total == n ? 0 : 1;
}
