/* isle — MIT licensed. */
/*
 * The mailbox (include/isle/mailbox.h) on one thread: argument checks;
 * FIFO order, the was_empty / now_empty flags on every transition (by fixed
 * patterns and against a reference queue), batches, the deferred count,
 * capacity, close and free. The producer window is in
 * test_mailbox_window.c, the multi-threaded stress tests in
 * test_mailbox_stress.c.
 *
 * Every test checks that it leaves the heap as it found it: messages are
 * counted through the heap statistics, so a message that close or free
 * fails to free, or that a stress test strands in some thread's heap,
 * shows up as a live object.
 */
#define _GNU_SOURCE /* pthread under -std=c11 (tests/heap/support.h) */

#include "support.h"

#include "mailbox/internal.h" /* the deferred count, a message's link */

/* ===== Creation and arguments ========================================== */

static void
test_mailbox_new_rejects_null_out_and_capacity_above_max(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  assert_int_equal(isle_mailbox_new(0, NULL), ISLE_EINVAL);
  isle_mailbox_t *mb = (isle_mailbox_t *)(uintptr_t)0x1234;
  assert_int_equal(isle_mailbox_new(ISLE_MAILBOX_MAX_CAPACITY + 1, &mb),
                   ISLE_EINVAL);
  assert_int_equal(isle_mailbox_new(SIZE_MAX, &mb), ISLE_EINVAL);
  assert_ptr_equal(mb, (isle_mailbox_t *)(uintptr_t)0x1234);
  assert_int_equal(live_objects_self(), before);
}

/* Capacities 0 (none), 1 and the maximum are accepted; a new mailbox is
 * open, empty, and its pops find nothing without reporting "now empty". */
static void test_mailbox_new_is_open_and_empty(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  static const size_t caps[] = {0, 1, 2, ISLE_MAILBOX_MAX_CAPACITY};
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    isle_mailbox_t *mb = new_mailbox(caps[i]);
    assert_int_equal(isle_mailbox_count(mb), 0);
    assert_false(isle_mailbox_is_closed(mb));
    pop_nothing(mb);
    assert_null(isle_mailbox_pop_local(mb, NULL));
    isle_msg_t *out[4] = {NULL};
    bool now_empty = true;
    assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 4, &now_empty), 0);
    assert_false(now_empty);
    assert_null(out[0]);
    isle_mailbox_free(mb);
  }
  assert_int_equal(live_objects_self(), before);
}

static void test_mailbox_free_ignores_null(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_mailbox_free(NULL);
  assert_int_equal(live_objects_self(), before);
}

/* NULL arguments are refused and leave the message (and was_empty) as
 * they were. */
static void test_mailbox_push_rejects_null_arguments(void **state) {
  (void)state;
  isle_mailbox_t *mb = new_mailbox(0);
  isle_msg_t *m = msg_with(0, 5);
  assert_non_null(m);
  bool was_empty = false;
  assert_int_equal(isle_mailbox_push_mpsc(NULL, m, &was_empty), ISLE_EINVAL);
  assert_int_equal(isle_mailbox_push_mpsc(mb, NULL, &was_empty), ISLE_EINVAL);
  assert_int_equal(isle_mailbox_push_mpsc(NULL, NULL, NULL), ISLE_EINVAL);
  assert_false(was_empty);
  assert_true(msg_is(m, 0, 5));
  assert_int_equal(isle_mailbox_count(mb), 0);
  /* The refused message is still the caller's: it can be pushed. */
  assert_int_equal(isle_mailbox_push_mpsc(mb, m, NULL), 0);
  pop_ok(mb, 5, true);
  isle_mailbox_free(mb);
}

/* ===== One thread: order, transitions, batches ========================= */

static void test_mailbox_pop_keeps_fifo_order(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_mailbox_t *mb = new_mailbox(0);
  const uint64_t n = 1000;
  for (uint64_t i = 0; i < n; i++) {
    push_ok(mb, i, i == 0);
    assert_int_equal(isle_mailbox_count(mb), i + 1);
  }
  for (uint64_t i = 0; i < n; i++) {
    pop_ok(mb, i, i == n - 1);
    assert_int_equal(isle_mailbox_count(mb), n - i - 1);
  }
  pop_nothing(mb);
  /* Again after the stub went round once, with NULL flag pointers. */
  for (uint64_t i = 0; i < 3; i++)
    assert_int_equal(isle_mailbox_push_mpsc(mb, msg_with(0, i), NULL), 0);
  for (uint64_t i = 0; i < 3; i++) {
    isle_msg_t *m = isle_mailbox_pop_local(mb, NULL);
    assert_non_null(m);
    assert_true(msg_is(m, 0, i));
    isle_msg_free(m);
  }
  assert_null(isle_mailbox_pop_local(mb, NULL));
  isle_mailbox_free(mb);
  assert_int_equal(live_objects_self(), before);
}

/* was_empty is true on exactly the push that finds the mailbox empty, and
 * now_empty on exactly the pop that leaves it empty, whatever the pattern
 * of pushes and pops. */
static void test_mailbox_flags_mark_each_transition_exactly_once(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_mailbox_t *mb = new_mailbox(0);
  /* Push one, pop one, many times: every push and every pop is a
   * transition. */
  for (uint64_t i = 0; i < 50; i++) {
    push_ok(mb, i, true);
    pop_ok(mb, i, true);
    pop_nothing(mb);
  }
  /* Push three, pop three. */
  push_ok(mb, 0, true);
  push_ok(mb, 1, false);
  push_ok(mb, 2, false);
  pop_ok(mb, 0, false);
  pop_ok(mb, 1, false);
  pop_ok(mb, 2, true);
  /* Interleaved: push 2, pop 1, push 1, pop 2. */
  push_ok(mb, 10, true);
  push_ok(mb, 11, false);
  pop_ok(mb, 10, false);
  push_ok(mb, 12, false);
  pop_ok(mb, 11, false);
  pop_ok(mb, 12, true);
  pop_nothing(mb);
  /* A batch that empties the mailbox reports it once; one that does not,
   * does not. */
  isle_msg_t *out[8];
  bool now_empty = true;
  push_ok(mb, 20, true);
  push_ok(mb, 21, false);
  push_ok(mb, 22, false);
  assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 2, &now_empty), 2);
  assert_false(now_empty);
  assert_true(msg_is(out[0], 0, 20) && msg_is(out[1], 0, 21));
  isle_msg_free(out[0]);
  isle_msg_free(out[1]);
  push_ok(mb, 23, false);
  assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 8, &now_empty), 2);
  assert_true(now_empty);
  assert_true(msg_is(out[0], 0, 22) && msg_is(out[1], 0, 23));
  isle_msg_free(out[0]);
  isle_msg_free(out[1]);
  assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 8, &now_empty), 0);
  assert_false(now_empty);
  push_ok(mb, 24, true);
  pop_ok(mb, 24, true);
  isle_mailbox_free(mb);
  assert_int_equal(live_objects_self(), before);
}

/* Random pushes, pops and batches on one thread agree with a reference
 * queue in every result: order, counts, ISLE_EFULL exactly when the
 * reference is full (with a capacity), and the flags. The reference for
 * the flags is the mailbox's idle state: a push reports was_empty when it
 * ends an idle period; a pop reports now_empty when it starts one, which
 * a pop does when it leaves nothing queued, and a batch when it also
 * returned fewer than `max` (a full batch leaves that to the next pop). */
static void run_against_reference(size_t capacity, uint64_t seed,
                                  size_t steps) {
  isle_mailbox_t *mb = new_mailbox(capacity);
  uint64_t rng = seed;
  /* The reference queue: seqs [next_pop, next_push). */
  uint64_t next_push = 0, next_pop = 0;
  bool idle = true;
  size_t transitions_in = 0, transitions_out = 0, full_batches = 0;
  isle_msg_t *out[16];
  for (size_t step = 0; step < steps; step++) {
    const size_t size = (size_t)(next_push - next_pop);
    const uint64_t r = support_rand(&rng);
    /* Lean towards pushes while small, pops while large, so the queue
     * keeps crossing empty. */
    const bool do_push = (r % 8) >= (size < 4 ? 2u : 5u);
    if (do_push) {
      isle_msg_t *m = msg_with(0, next_push);
      assert_non_null(m);
      bool was_empty = !idle;
      int rc = isle_mailbox_push_mpsc(mb, m, &was_empty);
      if (capacity && size == capacity) {
        assert_int_equal(rc, ISLE_EFULL);
        assert_int_equal(was_empty, !idle); /* untouched */
        assert_true(msg_is(m, 0, next_push));
        isle_msg_free(m);
      } else {
        assert_int_equal(rc, 0);
        assert_int_equal(was_empty, idle);
        /* In one thread, an idle mailbox is an empty one. */
        assert_true(!idle || size == 0);
        transitions_in += was_empty;
        idle = false;
        next_push++;
      }
    } else if ((r >> 8) % 2 == 0) {
      bool now_empty = idle;
      isle_msg_t *m = isle_mailbox_pop_local(mb, &now_empty);
      if (size == 0) {
        assert_null(m);
      } else {
        assert_non_null(m);
        assert_true(msg_is(m, 0, next_pop));
        next_pop++;
        isle_msg_free(m);
      }
      const bool want = !idle && next_push == next_pop;
      assert_int_equal(now_empty, want);
      transitions_out += now_empty;
      idle = idle || want;
    } else {
      const size_t max = (size_t)((r >> 16) % 17); /* 0 .. 16 */
      bool now_empty = idle;
      size_t got = isle_mailbox_pop_batch_local(mb, out, max, &now_empty);
      const size_t want_got = size < max ? size : max;
      assert_int_equal(got, want_got);
      for (size_t i = 0; i < got; i++) {
        assert_true(msg_is(out[i], 0, next_pop));
        next_pop++;
        isle_msg_free(out[i]);
      }
      /* Any batch that leaves nothing, full or not, makes it idle. */
      const bool want = !idle && next_push == next_pop;
      full_batches += got > 0 && got == max && next_push == next_pop;
      assert_int_equal(now_empty, want);
      transitions_out += now_empty;
      idle = idle || want;
    }
    assert_int_equal(isle_mailbox_count(mb), next_push - next_pop);
  }
  /* Every idle period a pop started was ended by a push, and one more push
   * ended the first (the mailbox starts idle) unless it is idle now. */
  assert_int_equal(transitions_in, transitions_out + (idle ? 0 : 1));
  assert_true(transitions_in > steps / 20); /* the walk did cross empty */
  assert_true(full_batches > 0); /* and did empty it by a full batch */
  isle_mailbox_free(mb);
}

static void test_mailbox_flags_follow_a_reference_queue(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  run_against_reference(0, 0x1234567, 20000);
  run_against_reference(1, 0x89abcde, 20000);
  run_against_reference(5, 0xf00dfeed, 20000);
  assert_int_equal(live_objects_self(), before);
}

/* pop_batch takes min(max, available), oldest first, and one update of
 * the count covers them all; max 0 takes nothing and touches nothing. */
static void test_mailbox_pop_batch_takes_at_most_max(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_mailbox_t *mb = new_mailbox(0);
  for (uint64_t i = 0; i < 10; i++)
    push_ok(mb, i, i == 0);
  isle_msg_t *out[16];
  memset(out, 0, sizeof out);
  bool now_empty = true;
  assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 0, &now_empty), 0);
  assert_false(now_empty);
  assert_null(out[0]);
  assert_int_equal(isle_mailbox_count(mb), 10);

  now_empty = true;
  assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 1, &now_empty), 1);
  assert_false(now_empty);
  assert_true(msg_is(out[0], 0, 0));
  assert_null(out[1]);
  isle_msg_free(out[0]);
  assert_int_equal(isle_mailbox_count(mb), 9);

  now_empty = true;
  assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 4, &now_empty), 4);
  assert_false(now_empty);
  for (uint64_t i = 0; i < 4; i++) {
    assert_true(msg_is(out[i], 0, 1 + i));
    isle_msg_free(out[i]);
  }
  assert_int_equal(isle_mailbox_count(mb), 5);

  /* More asked than there are: all five, and now empty; NULL flag. */
  out[5] = NULL;
  assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 16, NULL), 5);
  for (uint64_t i = 0; i < 5; i++) {
    assert_true(msg_is(out[i], 0, 5 + i));
    isle_msg_free(out[i]);
  }
  assert_null(out[5]);
  assert_int_equal(isle_mailbox_count(mb), 0);
  push_ok(mb, 100, true); /* the batch did report the mailbox empty */
  now_empty = false;
  assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 16, &now_empty), 1);
  assert_true(now_empty);
  isle_msg_free(out[0]);
  isle_mailbox_free(mb);
  assert_int_equal(live_objects_self(), before);
}

/* A batch that fills `out` does not look for the idle state: when it took
 * the last message, "now empty" comes from the next pop instead, even one
 * that finds nothing, and the next push reports was_empty only after it.
 * (The header's "true when this pop emptied the mailbox" is, for a batch,
 * "when it emptied the mailbox and returned fewer than max".) */
static void
test_mailbox_full_batch_that_takes_the_last_reports_now_empty(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_mailbox_t *mb = new_mailbox(0);
  isle_msg_t *out[4];
  bool now_empty = false;
  push_ok(mb, 0, true);
  push_ok(mb, 1, false);
  push_ok(mb, 2, false);
  /* A full batch that leaves messages behind: not empty. */
  assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 2, &now_empty), 2);
  assert_false(now_empty);
  isle_msg_free(out[0]);
  isle_msg_free(out[1]);
  /* A full batch that takes the last one: now empty, and the next push
   * sees it. */
  assert_int_equal(isle_mailbox_pop_batch_local(mb, out, 1, &now_empty), 1);
  assert_true(now_empty);
  isle_msg_free(out[0]);
  assert_int_equal(isle_mailbox_count(mb), 0);
  pop_nothing(mb);
  push_ok(mb, 3, true);
  pop_ok(mb, 3, true);
  push_ok(mb, 4, true);
  pop_ok(mb, 4, true);
  isle_mailbox_free(mb);
  assert_int_equal(live_objects_self(), before);
}

/* Without a capacity the consumer subtracts what it took from the shared
 * count in bulk; past 2^24 taken messages it must subtract them, or the
 * 32-bit count would run into the epoch bits. One message goes round and
 * round so that the test is quick in every build. */
static void test_mailbox_deferred_count_is_flushed_and_closes(void **state) {
#ifdef ISLE_CHAOS
  /* 2^24 single-threaded pushes: nothing to interleave, and at the chaos
   * build's hot push points it would run for an hour. */
  skip();
#endif
  (void)state;
  const uint64_t before = live_objects_self();
  isle_mailbox_t *mb = new_mailbox(0);
  isle_msg_t *m = isle_msg_new(7, 8);
  assert_non_null(m);
  const uint32_t rounds = (UINT32_C(1) << 24) + 100;
  for (uint32_t i = 0; i < rounds; i++) {
    assert_int_equal(isle_mailbox_push_mpsc(mb, m, NULL), 0);
    m = isle_mailbox_pop_local(mb, NULL);
    assert_non_null(m);
  }
  assert_int_equal(isle_mailbox_count(mb), 0);
  /* The deferred part stays below the bound: the flush happened. */
  assert_true(atomic_load(&mb->core.xuntaken) < (UINT32_C(1) << 24));
  assert_int_equal(isle_mailbox_push_mpsc(mb, m, NULL), 0);
  assert_int_equal(isle_mailbox_count(mb), 1);
  size_t drained = 0;
  assert_int_equal(isle_mailbox_close_local(mb, &drained), 0);
  assert_int_equal(drained, 1);
  assert_int_equal(isle_mailbox_count(mb), 0);
  isle_mailbox_free(mb);
  assert_int_equal(live_objects_self(), before);
}

/* A popped message is the caller's again: it can be pushed to another
 * mailbox, or back to the same one, and keeps its contents. */
static void test_mailbox_popped_message_can_be_pushed_again(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_mailbox_t *a = new_mailbox(0), *b = new_mailbox(0);
  push_ok(a, 1, true);
  push_ok(a, 2, false);
  isle_msg_t *m = isle_mailbox_pop_local(a, NULL);
  assert_true(msg_is(m, 0, 1));
  assert_int_equal(isle_mailbox_push_mpsc(b, m, NULL), 0);
  m = isle_mailbox_pop_local(a, NULL);
  assert_true(msg_is(m, 0, 2));
  assert_int_equal(isle_mailbox_push_mpsc(a, m, NULL), 0); /* same one */
  pop_ok(a, 2, true);
  m = isle_mailbox_pop_local(b, NULL);
  assert_true(msg_is(m, 0, 1));
  assert_int_equal(isle_mailbox_push_mpsc(b, m, NULL), 0); /* same one */
  pop_ok(b, 1, true);
  isle_mailbox_free(a);
  isle_mailbox_free(b);
  assert_int_equal(live_objects_self(), before);
}

/* ===== Capacity ========================================================= */

/* At capacity a push fails with ISLE_EFULL, leaves the message and the
 * flag untouched, and the caller still owns (and here frees or retries)
 * the message; after a pop, a push works again. */
static void check_capacity(size_t capacity) {
  isle_mailbox_t *mb = new_mailbox(capacity);
  for (uint64_t i = 0; i < capacity; i++)
    push_ok(mb, i, i == 0);
  assert_int_equal(isle_mailbox_count(mb), capacity);
  for (int k = 0; k < 3; k++) {
    isle_msg_t *extra = msg_with(0, 999);
    assert_non_null(extra);
    bool was_empty = true;
    assert_int_equal(isle_mailbox_push_mpsc(mb, extra, &was_empty), ISLE_EFULL);
    assert_true(was_empty); /* untouched */
    assert_true(msg_is(extra, 0, 999));
    assert_null(atomic_load(&extra->link.xnext)); /* not linked */
    assert_int_equal(isle_mailbox_count(mb), capacity);
    isle_msg_free(extra);
  }
  /* A refused message can be pushed once there is room. */
  isle_msg_t *retry = msg_with(0, capacity);
  assert_non_null(retry);
  assert_int_equal(isle_mailbox_push_mpsc(mb, retry, NULL), ISLE_EFULL);
  pop_ok(mb, 0, capacity == 1);
  bool was_empty = false;
  assert_int_equal(isle_mailbox_push_mpsc(mb, retry, &was_empty), 0);
  assert_int_equal(was_empty, capacity == 1);
  for (uint64_t i = 1; i <= capacity; i++)
    pop_ok(mb, i, i == capacity);
  pop_nothing(mb);
  isle_mailbox_free(mb);
}

static void test_mailbox_push_fails_with_efull_at_capacity(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  check_capacity(1);
  check_capacity(2);
  check_capacity(7);
  assert_int_equal(live_objects_self(), before);
}

/* ===== Close and free =================================================== */

/* Close reports how many messages were queued and frees them all (the
 * heap shows them gone), including after partial pops. */
static void test_mailbox_close_frees_queued_messages(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_mailbox_t *mb = new_mailbox(0);
  const uint64_t with_mailbox = live_objects_self();
  for (uint64_t i = 0; i < 5; i++)
    push_ok(mb, i, i == 0);
  pop_ok(mb, 0, false);
  pop_ok(mb, 1, false);
  for (uint64_t i = 5; i < 9; i++)
    push_ok(mb, i, false);
  assert_int_equal(live_objects_self(), with_mailbox + 7);
  size_t drained = 12345;
  assert_int_equal(isle_mailbox_close_local(mb, &drained), 0);
  assert_int_equal(drained, 7);
  assert_true(isle_mailbox_is_closed(mb));
  assert_int_equal(isle_mailbox_count(mb), 0);
  assert_int_equal(live_objects_self(), with_mailbox);
  isle_mailbox_free(mb);
  assert_int_equal(live_objects_self(), before);

  /* Empty mailboxes, fresh and drained by pops (the stub pushed back
   * behind the last message), drain nothing; `drained` may be NULL. */
  mb = new_mailbox(3);
  drained = 12345;
  assert_int_equal(isle_mailbox_close_local(mb, &drained), 0);
  assert_int_equal(drained, 0);
  isle_mailbox_free(mb);
  mb = new_mailbox(0);
  push_ok(mb, 0, true);
  pop_ok(mb, 0, true);
  push_ok(mb, 1, true);
  push_ok(mb, 2, false);
  assert_int_equal(isle_mailbox_close_local(mb, NULL), 0);
  assert_true(isle_mailbox_is_closed(mb));
  isle_mailbox_free(mb);
  assert_int_equal(live_objects_self(), before);
}

/* After close a push fails with ISLE_EDEAD and leaves the message (and
 * the flag) untouched and the caller's; a second close fails with
 * ISLE_ESTATE; free of the closed mailbox frees only the mailbox. */
static void test_mailbox_push_after_close_fails_with_edead(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_mailbox_t *mb = new_mailbox(2);
  push_ok(mb, 0, true);
  assert_int_equal(isle_mailbox_close_local(mb, NULL), 0);
  for (int k = 0; k < 3; k++) {
    isle_msg_t *m = msg_with(0, 7);
    assert_non_null(m);
    bool was_empty = true;
    assert_int_equal(isle_mailbox_push_mpsc(mb, m, &was_empty), ISLE_EDEAD);
    assert_true(was_empty);
    assert_true(msg_is(m, 0, 7));
    assert_null(atomic_load(&m->link.xnext));
    assert_int_equal(isle_mailbox_count(mb), 0);
    isle_msg_free(m);
  }
  assert_null(isle_mailbox_pop_local(mb, NULL));
  size_t drained = 12345;
  assert_int_equal(isle_mailbox_close_local(mb, &drained), ISLE_ESTATE);
  assert_true(isle_mailbox_is_closed(mb));
  isle_mailbox_free(mb);
  assert_int_equal(live_objects_self(), before);
}

/* Freeing an open mailbox closes it first: its messages are freed. */
static void test_mailbox_free_of_an_open_mailbox_drains_it(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_mailbox_t *mb = new_mailbox(0);
  for (uint64_t i = 0; i < 20; i++)
    push_ok(mb, i, i == 0);
  pop_ok(mb, 0, false);
  assert_int_equal(live_objects_self(), before + 1 + 19);
  isle_mailbox_free(mb);
  assert_int_equal(live_objects_self(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          test_mailbox_new_rejects_null_out_and_capacity_above_max),
      cmocka_unit_test(test_mailbox_new_is_open_and_empty),
      cmocka_unit_test(test_mailbox_free_ignores_null),
      cmocka_unit_test(test_mailbox_push_rejects_null_arguments),
      cmocka_unit_test(test_mailbox_pop_keeps_fifo_order),
      cmocka_unit_test(test_mailbox_flags_mark_each_transition_exactly_once),
      cmocka_unit_test(test_mailbox_flags_follow_a_reference_queue),
      cmocka_unit_test(test_mailbox_pop_batch_takes_at_most_max),
      cmocka_unit_test(
          test_mailbox_full_batch_that_takes_the_last_reports_now_empty),
      cmocka_unit_test(test_mailbox_popped_message_can_be_pushed_again),
      cmocka_unit_test(test_mailbox_deferred_count_is_flushed_and_closes),
      cmocka_unit_test(test_mailbox_push_fails_with_efull_at_capacity),
      cmocka_unit_test(test_mailbox_close_frees_queued_messages),
      cmocka_unit_test(test_mailbox_push_after_close_fails_with_edead),
      cmocka_unit_test(test_mailbox_free_of_an_open_mailbox_drains_it),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
