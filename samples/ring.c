/* isle — MIT licensed. */
/*
 * ring: N actors in a ring pass one token M times around.
 *
 *   samples/ring [actors] [hops] [workers]      (defaults 1000 1000000 0)
 *
 * Shows: spawning many actors, wiring them with a setup message, and
 * forwarding one message around without copying it (isle_ctx_send of the
 * message being received hands it on; the runtime does not free it).
 */
#include <isle.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MSG_NEXT = 1, MSG_TOKEN = 2 };

typedef struct member_s {
  isle_ref_t next;    /* where the token goes */
  uint64_t *arrivals; /* shared tally, written by the last member only */
} member_t;

/* The token carries the hops still to go. */
static int member_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  member_t *m = state;
  if (isle_msg_type(msg) == MSG_NEXT) {
    memcpy(&m->next, isle_msg_data(msg), sizeof m->next);
    return ISLE_CONTINUE;
  }
  uint64_t *left = isle_msg_data(msg);
  if (*left == 0)
    return ISLE_CONTINUE; /* done: the runtime frees the token */
  (*left)--;
  /* Forward the token itself: zero-copy, ownership moves on. */
  int rc = isle_ctx_send(ctx, m->next, msg);
  return rc == 0 ? ISLE_CONTINUE : rc;
}

static const isle_actor_type_t member_type = {
    .name = "ring-member",
    .state_size = sizeof(member_t),
    .receive = member_receive,
};

static int send_value(isle_runtime_t *rt, isle_ref_t to, uint32_t type,
                      const void *value, size_t size) {
  isle_msg_t *msg = isle_msg_new(type, size);
  if (!msg)
    return ISLE_ENOMEM;
  memcpy(isle_msg_data(msg), value, size);
  int rc = isle_runtime_send(rt, to, msg);
  if (rc)
    isle_msg_free(msg); /* a failed send leaves the message with us */
  return rc;
}

int main(int argc, char **argv) {
  unsigned actors = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000;
  uint64_t hops = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 0;
  if (actors < 1) {
    fprintf(stderr, "ring: need at least one actor\n");
    return 2;
  }

  isle_runtime_t *rt;
  int rc = isle_runtime_new(&cfg, &rt);
  if (rc) {
    fprintf(stderr, "ring: %s\n", isle_strerror(rc));
    return 1;
  }
  isle_ref_t *refs = malloc(sizeof *refs * actors);
  for (unsigned i = 0; i < actors && rc == 0; i++)
    rc = isle_runtime_spawn(rt, &member_type, NULL, &refs[i]);
  for (unsigned i = 0; i < actors && rc == 0; i++)
    rc = send_value(rt, refs[i], MSG_NEXT, &refs[(i + 1) % actors],
                    sizeof(isle_ref_t));
  if (rc == 0)
    rc = send_value(rt, refs[0], MSG_TOKEN, &hops, sizeof hops);
  if (rc) {
    fprintf(stderr, "ring: setup failed: %s\n", isle_strerror(rc));
    return 1;
  }

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  isle_runtime_run(rt); /* returns when the token has stopped */
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;

  isle_runtime_stats_t st;
  isle_runtime_stats(rt, &st);
  printf("ring: %u actors, %llu hops in %.3f s (%.1f M hops/s), %u workers,"
         " %llu messages handled\n",
         actors, (unsigned long long)hops, s, (double)hops / s / 1e6,
         st.workers, (unsigned long long)st.messages);
  isle_runtime_free(rt);
  free(refs);
  return st.messages == hops + 1 + actors ? 0 : 1;
}
