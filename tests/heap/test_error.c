/* isle — MIT licensed. */
/*
 * Error codes: the values (negated errno where one exists, a private range
 * otherwise), isle_strerror and isle_err_name for every code of
 * ISLE_ERRNO_MAP, for unknown codes, and for 0. Single-threaded.
 */
#include <errno.h>  /* the E* values the codes negate */
#include <limits.h> /* INT_MIN, INT_MAX */
#include <string.h> /* strerror, strncmp */

#include "isle/error.h"
#include "support.h"

/* ===== The map, as the tests see it ===================================== */

typedef struct code_s {
  int value;
  const char *name;
  const char *message;
} code_t;

#define CODE_ENTRY(name, value, msg) {value, #name, msg},
static const code_t codes[] = {ISLE_ERRNO_MAP(CODE_ENTRY)};
#undef CODE_ENTRY

#define CODE_COUNT (sizeof codes / sizeof codes[0])

/* ===== Tests ============================================================ */

static void
test_error_strerror_gives_the_map_message_for_every_code(void **state) {
  (void)state;
  for (size_t i = 0; i < CODE_COUNT; i++) {
    const char *msg = isle_strerror(codes[i].value);
    assert_non_null(msg);
    assert_string_equal(msg, codes[i].message);
  }
}

static void
test_error_err_name_gives_the_map_name_for_every_code(void **state) {
  (void)state;
  for (size_t i = 0; i < CODE_COUNT; i++) {
    const char *name = isle_err_name(codes[i].value);
    assert_non_null(name);
    assert_string_equal(name, codes[i].name);
  }
}

static void test_error_codes_are_negative_and_distinct(void **state) {
  (void)state;
  assert_true(CODE_COUNT > 0);
  for (size_t i = 0; i < CODE_COUNT; i++) {
    assert_true(codes[i].value < 0);
    for (size_t j = i + 1; j < CODE_COUNT; j++) {
      assert_int_not_equal(codes[i].value, codes[j].value);
      assert_string_not_equal(codes[i].name, codes[j].name);
      assert_string_not_equal(codes[i].message, codes[j].message);
    }
  }
}

/* A code with an errno twin is that errno negated (ISLE_ENOMEM ==
 * -ENOMEM), as libuv's are, so callers can mix isle's results with system
 * calls'. */
static void test_error_codes_are_negated_errno_values(void **state) {
  (void)state;
  assert_int_equal(ISLE_OK, 0);
  assert_int_equal(ISLE_ENOMEM, -ENOMEM);
  assert_int_equal(ISLE_EINVAL, -EINVAL);
  assert_int_equal(ISLE_EBUSY, -EBUSY);
  assert_int_equal(ISLE_EIO, -EIO);
  assert_int_equal(ISLE_ENOENT, -ENOENT);
  assert_int_equal(ISLE_EPROTO, -EPROTO);
  assert_int_equal(ISLE_ESHUTDOWN, -ESHUTDOWN);
  /* The nearest errno in meaning: a full bounded queue, an ended actor. */
  assert_int_equal(ISLE_EFULL, -ENOBUFS);
  assert_int_equal(ISLE_EDEAD, -ESRCH);
}

/* The codes with no errno twin are pinned too: users store and compare
 * them, and their range is below every errno and libuv code. */
static void test_error_codes_without_errno_twin_are_private(void **state) {
  (void)state;
  assert_int_equal(ISLE_ESTATE, -5001);
  assert_int_equal(ISLE_ERESTARTS, -5002);
  assert_int_equal(ISLE_EKILLED, -5003);
  for (size_t i = 0; i < CODE_COUNT; i++) {
    if (codes[i].value <= -5001)
      continue;
    /* Every other code is an errno value, so strerror knows it. */
    assert_true(codes[i].value > -4096);
    assert_true(strncmp(strerror(-codes[i].value), "Unknown error", 13) != 0);
  }
}

/* Every code of the enum is in the map, so both functions name it. */
static void test_error_every_enum_code_is_named(void **state) {
  (void)state;
  const int all[] = {ISLE_ENOMEM, ISLE_EINVAL,    ISLE_EFULL,     ISLE_EDEAD,
                     ISLE_EBUSY,  ISLE_ESTATE,    ISLE_EPROTO,    ISLE_EIO,
                     ISLE_ENOENT, ISLE_ESHUTDOWN, ISLE_ERESTARTS, ISLE_EKILLED};
  assert_int_equal(sizeof all / sizeof all[0], CODE_COUNT);
  for (size_t i = 0; i < CODE_COUNT; i++) {
    assert_string_not_equal(isle_strerror(all[i]), "unknown error");
    assert_string_not_equal(isle_err_name(all[i]), "UNKNOWN");
  }
}

static void
test_error_strerror_says_unknown_error_for_unknown_codes(void **state) {
  (void)state;
  const int unknown[] = {-1,    -4,    -11,     -13, -100,   -4095,
                         -5000, -5004, INT_MIN, 1,   ENOMEM, INT_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *msg = isle_strerror(unknown[i]);
    assert_non_null(msg);
    assert_string_equal(msg, "unknown error");
  }
}

static void test_error_err_name_says_unknown_for_unknown_codes(void **state) {
  (void)state;
  const int unknown[] = {-1,    -4,    -11,     -13, -100,   -4095,
                         -5000, -5004, INT_MIN, 1,   ENOMEM, INT_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *name = isle_err_name(unknown[i]);
    assert_non_null(name);
    assert_string_equal(name, "UNKNOWN");
  }
}

/* 0 is ISLE_OK, not an error: whatever it is called, it must be a real
 * string and must not be mistaken for one of the errors. */
static void test_error_zero_gets_a_string_that_names_no_error(void **state) {
  (void)state;
  const char *msg = isle_strerror(0);
  const char *name = isle_err_name(0);
  assert_non_null(msg);
  assert_non_null(name);
  assert_true(msg[0] != '\0');
  assert_true(name[0] != '\0');
  for (size_t i = 0; i < CODE_COUNT; i++) {
    assert_string_not_equal(msg, codes[i].message);
    assert_string_not_equal(name, codes[i].name);
  }
}

/* The strings are static: the same pointer comes back every time, and it
 * stays valid (a caller may keep it). */
static void test_error_strings_are_static(void **state) {
  (void)state;
  for (size_t i = 0; i < CODE_COUNT; i++) {
    assert_ptr_equal(isle_strerror(codes[i].value),
                     isle_strerror(codes[i].value));
    assert_ptr_equal(isle_err_name(codes[i].value),
                     isle_err_name(codes[i].value));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          test_error_strerror_gives_the_map_message_for_every_code),
      cmocka_unit_test(test_error_err_name_gives_the_map_name_for_every_code),
      cmocka_unit_test(test_error_codes_are_negative_and_distinct),
      cmocka_unit_test(test_error_codes_are_negated_errno_values),
      cmocka_unit_test(test_error_codes_without_errno_twin_are_private),
      cmocka_unit_test(test_error_every_enum_code_is_named),
      cmocka_unit_test(
          test_error_strerror_says_unknown_error_for_unknown_codes),
      cmocka_unit_test(test_error_err_name_says_unknown_for_unknown_codes),
      cmocka_unit_test(test_error_zero_gets_a_string_that_names_no_error),
      cmocka_unit_test(test_error_strings_are_static),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
