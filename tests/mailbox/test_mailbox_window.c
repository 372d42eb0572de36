/* isle — MIT licensed. */
/*
 * The mailbox's producer window (include/isle/mailbox.h, through the
 * private layout of mailbox/internal.h): a push between its exchange and
 * its link hides its message until linked, and close waits both for a
 * producer in its window and for a refused push to take its message back.
 *
 * Every test checks that it leaves the heap as it found it: messages are
 * counted through the heap statistics, so a message that close or free
 * fails to free, or that a stress test strands in some thread's heap,
 * shows up as a live object.
 *
 * The closer thread never calls cmocka's assertions; the test asserts
 * after joining it.
 */
#define _GNU_SOURCE /* nanosleep under -std=c11 */

#include <pthread.h> /* the closer thread */
#include <sched.h>   /* sched_yield while a push is refused */
#include <time.h>    /* nanosleep: the close watchdog */
#include <unistd.h>  /* _exit when close never returns */

#include "support.h"

#include "mailbox/internal.h" /* the producer window, simulated */

/* ===== The producer window (private layout) ============================ */

/* A push stopped between its two steps, as a preempted producer would be:
 * its increment is in the count and its message swapped in as the head,
 * but the previous head does not link to it yet. Returns the previous head
 * word. These are the steps of isle__mbox_push for an open mailbox of
 * epoch 0 without capacity. */
static uintptr_t push_until_window(isle_mailbox_t *mb, isle_msg_t *m,
                                   bool *was_empty) {
  atomic_fetch_add(&mb->core.xcount, 1);
  atomic_store(&m->link.xnext, NULL);
  uintptr_t prev = atomic_exchange(&mb->core.xhead, (uintptr_t)&m->link);
  *was_empty = prev & ISLE__MB_IDLE;
  return prev;
}

static void push_finish(uintptr_t prev, isle_msg_t *m) {
  isle__mb_node_t *p = (isle__mb_node_t *)(prev & ~ISLE__MB_IDLE);
  atomic_store(&p->xnext, &m->link);
}

/* While a producer is in its window, pops return NULL without saying
 * "now empty" (even for a complete message ahead of it, which the
 * consumer cannot tell from the last one), the count keeps both, and a
 * push after it is not told "was empty". Once it links, everything comes
 * out in order and the last pop reports empty. */
static void test_mailbox_window_hides_messages_until_linked(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_mailbox_t *mb = new_mailbox(0);
  push_ok(mb, 0, true);
  isle_msg_t *m1 = msg_with(0, 1);
  assert_non_null(m1);
  bool was_empty = true;
  uintptr_t prev = push_until_window(mb, m1, &was_empty);
  assert_false(was_empty);
  pop_nothing(mb);
  pop_nothing(mb);
  isle_msg_t *out[4];
  bool now_empty = true;
  assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 4, &now_empty), 0);
  assert_false(now_empty);
  assert_int_equal(isle_mailbox_count(mb), 2);
  push_ok(mb, 2, false); /* links behind m1, whose own link is missing */
  pop_nothing(mb);
  push_finish(prev, m1);
  pop_ok(mb, 0, false);
  pop_ok(mb, 1, false);
  pop_ok(mb, 2, true);
  pop_nothing(mb);

  /* The window of the push that made the mailbox non-empty: nothing to
   * take, nothing reported, until the stub links to it. */
  isle_msg_t *m3 = msg_with(0, 3);
  assert_non_null(m3);
  prev = push_until_window(mb, m3, &was_empty);
  assert_true(was_empty);
  pop_nothing(mb);
  assert_int_equal(isle_mailbox_count(mb), 1);
  push_finish(prev, m3);
  pop_ok(mb, 3, true);
  isle_mailbox_free(mb);
  assert_int_equal(live_objects_self(), before);
}

typedef struct closer_s {
  isle_mailbox_t *mb;
  size_t drained;
  int rc;
  atomic_bool done;
} closer_t;

static void *closer_thread(void *arg) {
  closer_t *c = arg;
  c->rc = isle_mailbox_close_local(c->mb, &c->drained);
  atomic_store(&c->done, true);
  return NULL;
}

/* Joins a closer that has nothing left to wait for. If it has not
 * returned within 10 s it never will (it waits for a message or an undo
 * that is not coming); its thread cannot be recovered, so the test
 * reports and ends the process rather than hang until ctest's timeout. */
static void join_closer(pthread_t t, closer_t *c) {
  for (int i = 0; i < 1000 && !atomic_load(&c->done); i++) {
    struct timespec tick = {0, 10 * 1000 * 1000};
    nanosleep(&tick, NULL);
  }
  if (!atomic_load(&c->done)) {
    fprintf(stderr, "[  ERROR   ] isle_mailbox_close_local has not returned "
                    "for 10 s with nothing left to wait for\n");
    fflush(stderr);
    _exit(EXIT_FAILURE);
  }
  assert_int_equal(pthread_join(t, NULL), 0);
}

/* Close must have every message counted before it: it waits for a
 * producer in its window, then drains that message too. */
static void
test_mailbox_close_waits_for_a_producer_in_its_window(void **state) {
  (void)state;
  isle_heap_collect();
  const uint64_t before = live_objects_self();
  isle_mailbox_t *mb = new_mailbox(0);
  push_ok(mb, 0, true);
  isle_msg_t *m1 = msg_with(0, 1);
  assert_non_null(m1);
  bool was_empty;
  uintptr_t prev = push_until_window(mb, m1, &was_empty);

  closer_t c = {.mb = mb, .drained = 0, .rc = -100};
  atomic_init(&c.done, false);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, closer_thread, &c), 0);
  while (!isle_mailbox_is_closed(mb))
    sched_yield();
  /* Closed, and still waiting for m1's link. */
  struct timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, NULL);
  assert_false(atomic_load(&c.done));
  push_finish(prev, m1);
  join_closer(t, &c);
  assert_int_equal(c.rc, 0);
  assert_int_equal(c.drained, 2);
  isle_mailbox_free(mb);
  isle_heap_collect(); /* the closer's frees have come back */
  assert_int_equal(live_objects_self(), before);
}

/* A refused push holds an increment of the count until it takes it back,
 * and close (which drains until the count is zero) waits for that too:
 * it returns, with the right count, once the increment is gone. */
static void
test_mailbox_close_waits_for_a_refused_push_to_take_back(void **state) {
  (void)state;
  isle_heap_collect();
  const uint64_t before = live_objects_self();
  isle_mailbox_t *mb = new_mailbox(1);
  push_ok(mb, 0, true);
  /* The first step of a push that will be refused with ISLE_EFULL. */
  atomic_fetch_add(&mb->core.xcount, 1);

  closer_t c = {.mb = mb, .drained = 0, .rc = -100};
  atomic_init(&c.done, false);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, closer_thread, &c), 0);
  while (!isle_mailbox_is_closed(mb))
    sched_yield();
  struct timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, NULL);
  assert_false(atomic_load(&c.done));
  /* ... and its undo. */
  atomic_fetch_sub(&mb->core.xcount, 1);
  join_closer(t, &c);
  assert_int_equal(c.rc, 0);
  assert_int_equal(c.drained, 1);
  assert_int_equal(isle_mailbox_count(mb), 0);
  isle_mailbox_free(mb);
  isle_heap_collect();
  assert_int_equal(live_objects_self(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mailbox_window_hides_messages_until_linked),
      cmocka_unit_test(test_mailbox_close_waits_for_a_producer_in_its_window),
      cmocka_unit_test(
          test_mailbox_close_waits_for_a_refused_push_to_take_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
