/* isle — MIT licensed. */
/*
 * pingpong: two actors bounce one message back and forth.
 *
 *   samples/pingpong [round-trips] [workers]      (defaults 1000000 0)
 *
 * Shows: actors spawning actors (init receives the spawn argument), replies
 * to the sender, and forwarding the received message itself (no copy: the
 * same block travels the whole time).
 */
#include <isle.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct player_s {
  uint64_t left; /* round trips still to play (the pinger counts) */
} player_t;

/* The ponger answers whatever it gets, to whoever sent it. */
static int ponger_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)state;
  int rc = isle_ctx_reply(ctx, msg); /* sends `msg` itself back */
  return rc == 0 ? ISLE_CONTINUE : rc;
}

static const isle_actor_type_t ponger = {
    .name = "ponger",
    .receive = ponger_receive,
};

/* The pinger spawns its ponger and serves the ball in init. */
static int pinger_init(isle_ctx_t *ctx, void *state, const void *arg) {
  player_t *p = state;
  p->left = *(const uint64_t *)arg;
  isle_ref_t partner;
  int rc = isle_ctx_spawn(ctx, &ponger, NULL, &partner);
  if (rc)
    return rc;
  isle_msg_t *ball = isle_msg_new(1, 0);
  if (!ball)
    return ISLE_ENOMEM;
  rc = isle_ctx_send(ctx, partner, ball);
  if (rc)
    isle_msg_free(ball);
  return rc;
}

static int pinger_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  player_t *p = state;
  if (--p->left == 0)
    return ISLE_STOP; /* the runtime frees the ball; the ponger idles */
  int rc = isle_ctx_reply(ctx, msg);
  return rc == 0 ? ISLE_CONTINUE : rc;
}

static const isle_actor_type_t pinger = {
    .name = "pinger",
    .state_size = sizeof(player_t),
    .init = pinger_init,
    .receive = pinger_receive,
};

int main(int argc, char **argv) {
  uint64_t trips = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 0;
  if (trips == 0)
    trips = 1;
  isle_runtime_t *rt;
  int rc = isle_runtime_new(&cfg, &rt);
  if (rc == 0)
    rc = isle_runtime_spawn(rt, &pinger, &trips, NULL);
  if (rc) {
    fprintf(stderr, "pingpong: %s\n", isle_strerror(rc));
    return 1;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  isle_runtime_run(rt);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
               (double)(t1.tv_nsec - t0.tv_nsec)) /
              (double)trips;
  isle_runtime_stats_t st;
  isle_runtime_stats(rt, &st);
  printf("pingpong: %llu round trips, %.0f ns per round trip, %u workers\n",
         (unsigned long long)trips, ns, st.workers);
  isle_runtime_free(rt);
  return st.messages == 2 * trips ? 0 : 1;
}
