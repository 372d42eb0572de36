/* isle — MIT licensed. */
/*
 * The version at run time: isle_version() and isle_version_string() agree
 * with the headers' ISLE_VERSION_* and with each other. Single-threaded.
 */
#include <setjmp.h> /* cmocka.h needs jmp_buf */
#include <stdarg.h> /* cmocka.h needs va_list */
#include <stddef.h> /* cmocka.h needs size_t */
#include <stdio.h>  /* snprintf */
#include <string.h> /* strlen */

#include <cmocka.h>

#include "isle.h"

static void test_version_number_is_the_headers(void **state) {
  (void)state;
  assert_int_equal(isle_version(), ISLE_VERSION_HEX);
  assert_int_equal(isle_version() >> 16, ISLE_VERSION_MAJOR);
  assert_int_equal((isle_version() >> 8) & 0xff, ISLE_VERSION_MINOR);
  assert_int_equal(isle_version() & 0xff, ISLE_VERSION_PATCH);
}

static void test_version_string_is_major_minor_patch(void **state) {
  (void)state;
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", ISLE_VERSION_MAJOR,
           ISLE_VERSION_MINOR, ISLE_VERSION_PATCH);
  assert_string_equal(isle_version_string(), want);
  assert_string_equal(isle_version_string(), ISLE_VERSION_STRING);
}

/* The string is static: the same pointer every time, never empty. */
static void test_version_string_is_static(void **state) {
  (void)state;
  assert_ptr_equal(isle_version_string(), isle_version_string());
  assert_true(strlen(isle_version_string()) >= 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_number_is_the_headers),
      cmocka_unit_test(test_version_string_is_major_minor_patch),
      cmocka_unit_test(test_version_string_is_static),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
