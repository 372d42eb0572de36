/* isle — MIT licensed. */
/*
 * Helpers shared by the mailbox suites (tests/mailbox/test_mailbox*.c), on
 * top of tests/heap/support.h: test messages that carry their producer and
 * sequence number, a mailbox made with asserted arguments, and pushes and
 * pops that assert the was_empty / now_empty flags. Static inline so that
 * each suite compiles only what it uses.
 */
#ifndef ISLE_TESTS_MAILBOX_SUPPORT_H
#define ISLE_TESTS_MAILBOX_SUPPORT_H

#include "../heap/support.h"
#include "isle/error.h"
#include "isle/heap.h"
#include "isle/mailbox.h"

/* ===== Helpers ========================================================== */

/* The payload every test message carries: who sent it and its place in
 * that sender's sequence. The type repeats the producer, the size is
 * checked, so a message damaged or mixed up with another shows. */
typedef struct payload_s {
  uint64_t producer;
  uint64_t seq;
} payload_t;

#define MSG_TYPE_BASE 0x1500u

static inline isle_msg_t *msg_with(uint64_t producer, uint64_t seq) {
  isle_msg_t *m =
      isle_msg_new(MSG_TYPE_BASE + (uint32_t)producer, sizeof(payload_t));
  if (m) {
    payload_t *p = isle_msg_data(m);
    p->producer = producer;
    p->seq = seq;
  }
  return m;
}

/* Whether `m` is the message msg_with(producer, seq) made, intact. */
static inline bool msg_is(isle_msg_t *m, uint64_t producer, uint64_t seq) {
  const payload_t *p = isle_msg_data(m);
  return isle_msg_type(m) == MSG_TYPE_BASE + producer &&
         isle_msg_size(m) == sizeof(payload_t) && p->producer == producer &&
         p->seq == seq;
}

static inline uint64_t seq_of(isle_msg_t *m) {
  return ((const payload_t *)isle_msg_data(m))->seq;
}

static inline uint64_t live_objects_self(void) {
  return support_self_stats().live_objects;
}

static inline isle_mailbox_t *new_mailbox(size_t capacity) {
  isle_mailbox_t *mb = NULL;
  assert_int_equal(isle_mailbox_new(capacity, &mb), 0);
  assert_non_null(mb);
  return mb;
}

/* Pushes msg_with(0, seq) and checks the push succeeds and what it says
 * about the transition. */
static inline void push_ok(isle_mailbox_t *mb, uint64_t seq,
                           bool expect_was_empty) {
  isle_msg_t *m = msg_with(0, seq);
  assert_non_null(m);
  bool was_empty = !expect_was_empty;
  assert_int_equal(isle_mailbox_push_mpsc(mb, m, &was_empty), 0);
  assert_int_equal(was_empty, expect_was_empty);
}

/* Pops one message, checks it is msg_with(0, seq) and what the pop says
 * about the transition, and frees it. */
static inline void pop_ok(isle_mailbox_t *mb, uint64_t seq,
                          bool expect_now_empty) {
  bool now_empty = !expect_now_empty;
  isle_msg_t *m = isle_mailbox_pop_local(mb, &now_empty);
  assert_non_null(m);
  assert_true(msg_is(m, 0, seq));
  assert_int_equal(now_empty, expect_now_empty);
  isle_msg_free(m);
}

static inline void pop_nothing(isle_mailbox_t *mb) {
  bool now_empty = true;
  assert_null(isle_mailbox_pop_local(mb, &now_empty));
  assert_false(now_empty);
}

#endif /* ISLE_TESTS_MAILBOX_SUPPORT_H */
