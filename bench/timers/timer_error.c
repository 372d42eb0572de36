/* isle — MIT licensed. */
/*
 * timer_error: how late (or early) isle's timers deliver, per delay.
 *
 *   bench/timer_error [timers-per-delay]      (default 200)
 *
 * For each delay (1, 2, 5, 10, 20, 50, 100 ms) it starts the timers from
 * outside the runtime, a few hundred microseconds apart, each carrying its
 * start time; a receiver actor records delivery time - start - delay. The
 * error includes the send to the receiver (its mailbox and a worker's
 * wake-up), which is what a user sees. Prints one line per delay:
 *   delay_ms=10 n=200 min_us=... median_us=... p99_us=... max_us=...
 * Not part of bench/run (BENCH.md fixes those suites); docs/failures.md
 * quotes its output.
 */
#include <isle.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct stamp_s {
  uint64_t start_ns, delay_ms;
  size_t slot;
} stamp_t;

typedef struct rx_s {
  int64_t *errors_ns;
} rx_t;

static int rx_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((rx_t *)state)->errors_ns = (int64_t *)arg;
  return 0;
}

static int rx_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  stamp_t s;
  memcpy(&s, isle_msg_data(msg), sizeof s);
  ((rx_t *)state)->errors_ns[s.slot] =
      (int64_t)(now_ns() - s.start_ns) - (int64_t)(s.delay_ms * 1000000u);
  return ISLE_CONTINUE;
}

static const isle_actor_type_t rx_type = {
    .name = "timer-rx",
    .state_size = sizeof(rx_t),
    .init = rx_init,
    .receive = rx_receive,
};

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  static const uint64_t delays[] = {1, 2, 5, 10, 20, 50, 100};
  const size_t nd = sizeof delays / sizeof delays[0];
  size_t per = argc > 1 ? strtoul(argv[1], NULL, 10) : 200;
  if (per == 0)
    per = 1;
  int64_t *errors = calloc(nd * per, sizeof *errors);
  isle_runtime_t *rt;
  isle_ref_t rx;
  if (!errors || isle_runtime_new(NULL, &rt) != 0 ||
      isle_runtime_spawn(rt, &rx_type, errors, &rx) != 0) {
    fprintf(stderr, "timer_error: setup failed\n");
    return 1;
  }
  /* Started before the run: the pending timers hold it open. */
  for (size_t i = 0; i < per; i++) {
    for (size_t d = 0; d < nd; d++) {
      isle_msg_t *m = isle_msg_new(1, sizeof(stamp_t));
      stamp_t s = {now_ns(), delays[d], d * per + i};
      memcpy(isle_msg_data(m), &s, sizeof s);
      if (isle_timer_start(rt, rx, m, delays[d], 0, NULL) != 0) {
        fprintf(stderr, "timer_error: isle_timer_start failed\n");
        return 1;
      }
    }
  }
  isle_runtime_run(rt);
  isle_io_stats_t st;
  isle_io_stats(rt, &st);
  isle_runtime_free(rt);
  if (st.timers_fired != nd * per) {
    fprintf(stderr, "timer_error: %llu of %zu fired\n",
            (unsigned long long)st.timers_fired, nd * per);
    return 1;
  }
  for (size_t d = 0; d < nd; d++) {
    int64_t *e = errors + d * per;
    qsort(e, per, sizeof *e, cmp_i64);
    printf("delay_ms=%llu n=%zu min_us=%.0f median_us=%.0f p99_us=%.0f "
           "max_us=%.0f\n",
           (unsigned long long)delays[d], per, e[0] / 1e3, e[per / 2] / 1e3,
           e[per * 99 / 100] / 1e3, e[per - 1] / 1e3);
  }
  free(errors);
  return 0;
}
