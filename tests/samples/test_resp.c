/* isle — MIT licensed. */
/*
 * The RESP2 request parser of samples/kv: multibulk and inline commands,
 * whole, byte by byte (from a moving buffer) and pipelined; every protocol
 * error with Redis's message; the integer rule; the protocol error reply.
 */
#include <setjmp.h> /* cmocka needs it first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h> /* LLONG_MAX, LLONG_MIN */
#include <stdio.h>  /* fprintf */
#include <stdlib.h> /* malloc */
#include <string.h> /* memcpy, strlen */

#include <cmocka.h>

#include <isle.h>

#include "kv_cmd.h"
#include "resp.h"

/* ===== Helpers =========================================================== */

#define ARGV_CAP 8

typedef struct parse_s {
  resp_parser_t p;
  resp_arg_t argv[ARGV_CAP];
  size_t argc;
  size_t consumed;
  char buf[512]; /* a writable copy: inline parsing unescapes in place */
} parse_t;

static resp_status_t parse_n(parse_t *t, const char *s, size_t n,
                             const resp_limits_t *lim) {
  resp_parser_init(&t->p);
  assert_true(n <= sizeof t->buf);
  memcpy(t->buf, s, n);
  return resp_parse(&t->p, t->buf, n, lim, t->argv, ARGV_CAP, &t->argc,
                    &t->consumed);
}

static resp_status_t parse(parse_t *t, const char *s) {
  return parse_n(t, s, strlen(s), NULL);
}

static bool arg_is(const resp_arg_t *a, const char *s, size_t n) {
  return a->len == n && memcmp(a->ptr, s, n) == 0;
}
#define ARG_IS(a, lit) arg_is((a), (lit), sizeof(lit) - 1)

/* Expects RESP_ERROR with exactly this message. */
static void expect_error(const char *input, size_t n, const char *msg,
                         const resp_limits_t *lim) {
  parse_t t;
  resp_status_t rc = parse_n(&t, input, n, lim);
  if (rc != RESP_ERROR || strcmp(resp_parser_error(&t.p), msg) != 0) {
    fprintf(stderr, "input %.*s: status %d, error \"%s\", wanted \"%s\"\n",
            (int)n, input, rc, resp_parser_error(&t.p), msg);
    fail();
  }
}
#define EXPECT_ERROR(lit, msg) expect_error((lit), sizeof(lit) - 1, (msg), NULL)

/* ===== Multibulk ========================================================= */

static void test_resp_multibulk_command(void **state) {
  static const char in[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\n\0x\r\n";
  parse_t t;
  assert_int_equal(parse_n(&t, in, sizeof in - 1, NULL), RESP_COMMAND);
  assert_int_equal(t.argc, 3);
  assert_int_equal(t.consumed, sizeof in - 1);
  assert_true(ARG_IS(&t.argv[0], "SET"));
  assert_true(ARG_IS(&t.argv[1], "k"));
  /* Bulk strings are binary: CR, LF and NUL inside are data. */
  assert_true(ARG_IS(&t.argv[2], "v\r\n\0x"));
}

static void test_resp_empty_bulk_and_empty_arrays(void **state) {
  parse_t t;
  assert_int_equal(parse(&t, "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"), RESP_COMMAND);
  assert_int_equal(t.argc, 2);
  assert_int_equal(t.argv[1].len, 0);
  /* "*0" and "*-1" are nothing to run, taken whole. */
  assert_int_equal(parse(&t, "*0\r\n*1\r\n"), RESP_COMMAND);
  assert_int_equal(t.argc, 0);
  assert_int_equal(t.consumed, 4);
  assert_int_equal(parse(&t, "*-1\r\n"), RESP_COMMAND);
  assert_int_equal(t.argc, 0);
  assert_int_equal(t.consumed, 5);
}

static void test_resp_byte_by_byte_from_a_moving_buffer(void **state) {
  static const char in[] = "*3\r\n$4\r\nMSET\r\n$10\r\nkey:000001\r\n"
                           "$12\r\nhello\r\nworld\r\n";
  size_t len = sizeof in - 1;
  resp_parser_t p;
  resp_parser_init(&p);
  resp_arg_t argv[ARGV_CAP];
  size_t argc = 0, consumed = 0;
  for (size_t n = 0; n <= len; n++) {
    /* A fresh block each time: a parser holding pointers into the old
     * one would read freed memory, which ASan reports. */
    char *copy = malloc(n + 1);
    assert_non_null(copy);
    memcpy(copy, in, n);
    resp_status_t rc =
        resp_parse(&p, copy, n, NULL, argv, ARGV_CAP, &argc, &consumed);
    if (n < len) {
      assert_int_equal(rc, RESP_INCOMPLETE);
    } else {
      assert_int_equal(rc, RESP_COMMAND);
      assert_int_equal(argc, 3);
      assert_int_equal(consumed, len);
      assert_true(ARG_IS(&argv[0], "MSET"));
      assert_true(ARG_IS(&argv[1], "key:000001"));
      assert_true(ARG_IS(&argv[2], "hello\r\nworld"));
    }
    free(copy);
  }
}

static void test_resp_pipelined_commands(void **state) {
  static const char in[] = "*1\r\n$4\r\nPING\r\n"
                           "PING\r\n"
                           "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                           "*2\r\n$3\r\nGET\r\n$1";
  static const char *names[] = {"PING", "PING", "GET"};
  parse_t t;
  memcpy(t.buf, in, sizeof in - 1);
  resp_parser_init(&t.p);
  size_t off = 0, len = sizeof in - 1;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(resp_parse(&t.p, t.buf + off, len - off, NULL, t.argv,
                                ARGV_CAP, &t.argc, &t.consumed),
                     RESP_COMMAND);
    assert_true(arg_is(&t.argv[0], names[i], strlen(names[i])));
    off += t.consumed;
  }
  assert_int_equal(resp_parse(&t.p, t.buf + off, len - off, NULL, t.argv,
                              ARGV_CAP, &t.argc, &t.consumed),
                   RESP_INCOMPLETE);
}

static void test_resp_multibulk_errors(void **state) {
  EXPECT_ERROR("*x\r\n", "Protocol error: invalid multibulk length");
  EXPECT_ERROR("*01\r\n", "Protocol error: invalid multibulk length");
  EXPECT_ERROR("*1\n$1\r\na\r\n", "Protocol error: invalid multibulk length");
  EXPECT_ERROR("*1\rx", "Protocol error: invalid multibulk length");
  EXPECT_ERROR("*9\r\n", "Protocol error: invalid multibulk length");
  EXPECT_ERROR("*99999999999\r\n", "Protocol error: invalid multibulk length");
  EXPECT_ERROR("*123456789012345678901234567890123\r\n",
               "Protocol error: too big mbulk count string");
  EXPECT_ERROR("*123456789012345678901234567890123",
               "Protocol error: too big mbulk count string");
  EXPECT_ERROR("*2\r\n$3\r\nGET\r\n:1\r\n",
               "Protocol error: expected '$', got ':'");
  EXPECT_ERROR("*1\r\n\r\n", "Protocol error: expected '$', got ' '");
  EXPECT_ERROR("*1\r\n$-1\r\n", "Protocol error: invalid bulk length");
  EXPECT_ERROR("*1\r\n$a\r\n", "Protocol error: invalid bulk length");
  EXPECT_ERROR("*1\r\n$123456789012345678901234567890123\r\n",
               "Protocol error: too big bulk count string");
  EXPECT_ERROR("*1\r\n$3\r\nGETxx",
               "Protocol error: bulk string not followed by CRLF");
  /* A bulk over the limit is refused before its bytes arrive. */
  resp_limits_t lim = {.max_bulk_len = 4};
  expect_error("*1\r\n$5\r\n", 8, "Protocol error: invalid bulk length", &lim);
  parse_t t;
  assert_int_equal(parse_n(&t, "*1\r\n$4\r\nabcd\r\n", 14, &lim), RESP_COMMAND);
}

static void test_resp_incomplete_prefixes_wait(void **state) {
  static const char *partial[] = {"*",
                                  "*2",
                                  "*2\r",
                                  "*2\r\n$",
                                  "*2\r\n$3\r",
                                  "*2\r\n$3\r\nGE",
                                  "*2\r\n$3\r\nGET\r"};
  for (size_t i = 0; i < sizeof partial / sizeof partial[0]; i++) {
    parse_t t;
    assert_int_equal(parse(&t, partial[i]), RESP_INCOMPLETE);
  }
  parse_t t;
  assert_int_equal(parse_n(&t, "", 0, NULL), RESP_INCOMPLETE);
}

/* ===== Inline ============================================================ */

static void test_resp_inline_commands(void **state) {
  parse_t t;
  assert_int_equal(parse(&t, "SET  key\tvalue \r\nGET"), RESP_COMMAND);
  assert_int_equal(t.argc, 3);
  assert_int_equal(t.consumed, 17);
  assert_true(ARG_IS(&t.argv[0], "SET"));
  assert_true(ARG_IS(&t.argv[1], "key"));
  assert_true(ARG_IS(&t.argv[2], "value"));
  /* A bare LF ends a line too. */
  assert_int_equal(parse(&t, "PING\n"), RESP_COMMAND);
  assert_int_equal(t.argc, 1);
  assert_int_equal(t.consumed, 5);
  /* An empty line is nothing to run. */
  assert_int_equal(parse(&t, "\r\n"), RESP_COMMAND);
  assert_int_equal(t.argc, 0);
  assert_int_equal(t.consumed, 2);
  assert_int_equal(parse(&t, "   \n"), RESP_COMMAND);
  assert_int_equal(t.argc, 0);
}

static void test_resp_inline_quotes_and_escapes(void **state) {
  parse_t t;
  assert_int_equal(parse(&t, "SET \"a b\" 'c\\'d' \"\\x41\\n\\t\\\"\\q\" "
                             "'\\n' \"\"\r\n"),
                   RESP_COMMAND);
  assert_int_equal(t.argc, 6);
  assert_true(ARG_IS(&t.argv[1], "a b"));
  assert_true(ARG_IS(&t.argv[2], "c'd"));
  assert_true(ARG_IS(&t.argv[3], "A\n\t\"q"));
  assert_true(ARG_IS(&t.argv[4], "\\n")); /* single quotes keep backslashes */
  assert_true(ARG_IS(&t.argv[5], ""));
  EXPECT_ERROR("SET \"abc\r\n", "Protocol error: unbalanced quotes in request");
  EXPECT_ERROR("SET 'abc\r\n", "Protocol error: unbalanced quotes in request");
  EXPECT_ERROR("SET \"a\"b\r\n",
               "Protocol error: unbalanced quotes in request");
  EXPECT_ERROR("SET 'a'b\r\n", "Protocol error: unbalanced quotes in request");
}

static void test_resp_inline_limits(void **state) {
  resp_limits_t lim = {.max_inline_len = 8};
  parse_t t;
  assert_int_equal(parse_n(&t, "GET abc", 7, &lim), RESP_INCOMPLETE);
  assert_int_equal(parse_n(&t, "GET abcd\r\n", 10, &lim), RESP_COMMAND);
  expect_error("GET abcde", 9, "Protocol error: too big inline request", &lim);
  expect_error("GET abcde\r\n", 11, "Protocol error: too big inline request",
               &lim);
  EXPECT_ERROR("a b c d e f g h i\r\n",
               "Protocol error: too many arguments in inline request");
  /* Resuming the search: the line feed arrives later. */
  resp_parser_init(&t.p);
  memcpy(t.buf, "ECHO hi\r\n", 9);
  assert_int_equal(
      resp_parse(&t.p, t.buf, 5, NULL, t.argv, ARGV_CAP, &t.argc, &t.consumed),
      RESP_INCOMPLETE);
  assert_int_equal(
      resp_parse(&t.p, t.buf, 9, NULL, t.argv, ARGV_CAP, &t.argc, &t.consumed),
      RESP_COMMAND);
  assert_int_equal(t.argc, 2);
}

/* ===== Integers and the error reply ====================================== */

static void test_resp_parse_ll_follows_string2ll(void **state) {
  static const struct {
    const char *s;
    int ok;
    long long v;
  } cases[] = {
      {"0", 1, 0},
      {"7", 1, 7},
      {"-12", 1, -12},
      {"9223372036854775807", 1, LLONG_MAX},
      {"-9223372036854775808", 1, LLONG_MIN},
      {"9223372036854775808", 0, 0},
      {"-9223372036854775809", 0, 0},
      {"99999999999999999999", 0, 0},
      {"", 0, 0},
      {"-", 0, 0},
      {"-0", 0, 0},
      {"01", 0, 0},
      {"+1", 0, 0},
      {" 1", 0, 0},
      {"1 ", 0, 0},
      {"1a", 0, 0},
      {"123456789012345678901", 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    long long v = 42;
    int ok = resp_parse_ll(cases[i].s, strlen(cases[i].s), &v);
    if (ok != cases[i].ok || (ok && v != cases[i].v)) {
      fprintf(stderr, "\"%s\": ok %d v %lld\n", cases[i].s, ok, v);
      fail();
    }
  }
}

static void test_resp_protocol_error_reply(void **state) {
  parse_t t;
  assert_int_equal(parse(&t, "*1\r\n$3\r\nabc!!"), RESP_ERROR);
  kv_buf_t b;
  kv_buf_init(&b);
  kv_reply_protocol_error(&b, &t.p);
  static const char want[] =
      "-ERR Protocol error: bulk string not followed by CRLF\r\n";
  assert_int_equal(b.len, sizeof want - 1);
  assert_memory_equal(b.data, want, b.len);
  kv_buf_deinit(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resp_multibulk_command),
      cmocka_unit_test(test_resp_empty_bulk_and_empty_arrays),
      cmocka_unit_test(test_resp_byte_by_byte_from_a_moving_buffer),
      cmocka_unit_test(test_resp_pipelined_commands),
      cmocka_unit_test(test_resp_multibulk_errors),
      cmocka_unit_test(test_resp_incomplete_prefixes_wait),
      cmocka_unit_test(test_resp_inline_commands),
      cmocka_unit_test(test_resp_inline_quotes_and_escapes),
      cmocka_unit_test(test_resp_inline_limits),
      cmocka_unit_test(test_resp_parse_ll_follows_string2ll),
      cmocka_unit_test(test_resp_protocol_error_reply),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
