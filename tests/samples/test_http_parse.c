/* isle — MIT licensed. */
/*
 * The HTTP/1.1 protocol core of samples/http: every answer of
 * http_parse_request (incomplete, complete with its byte count, and each
 * error status), fed whole, byte by byte and pipelined; the keep-alive
 * rules; 100-continue; the router; and the exact bytes of the responses.
 * Pure functions: nothing to free.
 */
#include <setjmp.h> /* cmocka needs it first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>  /* snprintf */
#include <stdlib.h> /* malloc for moved-buffer copies */
#include <string.h> /* memcpy, strlen */

#include <cmocka.h>

#include "http_parse.h"

/* ===== Helpers =========================================================== */

#define MAX_FIELDS 16

typedef struct parsed_s {
  http_parser_t p;
  http_request_t req;
  http_header_t fields[MAX_FIELDS];
} parsed_t;

static void parsed_init(parsed_t *t) {
  memset(t, 0, sizeof *t);
  http_parser_init(&t->p);
  t->req.headers = t->fields;
  t->req.headers_cap = MAX_FIELDS;
}

/* One call over the whole string with the default limits. */
static int parse_str(parsed_t *t, const char *s) {
  return http_parse_request(&t->p, s, strlen(s), NULL, &t->req);
}

static int parse_fresh(const char *s) {
  parsed_t t;
  parsed_init(&t);
  return parse_str(&t, s);
}

/* Feeds `s` one byte more per call, each time from a freshly allocated
 * copy so that a parser keeping pointers into an old buffer would read
 * freed memory (and ASan would say so). Every proper prefix must answer
 * "incomplete"; returns the answer to the whole. */
static int parse_byte_by_byte(parsed_t *t, const char *s, size_t len,
                              const http_limits_t *lim, char **keep) {
  int rc = HTTP_PARSE_INCOMPLETE;
  for (size_t n = 1; n <= len; n++) {
    char *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, s, n);
    rc = http_parse_request(&t->p, copy, n, lim, &t->req);
    if (n < len && rc != HTTP_PARSE_INCOMPLETE) {
      fprintf(stderr, "prefix of %zu bytes answered %d\n", n, rc);
      free(copy);
      fail();
    }
    if (n == len) {
      *keep = copy; /* the request points into it */
    } else {
      free(copy);
    }
  }
  return rc;
}

static bool field_is(const http_header_t *f, const char *value) {
  return f != NULL && f->value_len == strlen(value) &&
         memcmp(f->value, value, f->value_len) == 0;
}

static bool span_is(const char *p, size_t n, const char *s) {
  return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* ===== Complete requests ================================================= */

static void test_http_parse_get_fills_the_request(void **state) {
  static const char req[] = "GET /index.html?q=1 HTTP/1.1\r\n"
                            "Host: example.com\r\n"
                            "User-Agent:  curl/8.0 \t\r\n"
                            "Accept: */*\r\n"
                            "\r\n";
  parsed_t t;
  parsed_init(&t);
  assert_int_equal(parse_str(&t, req), (int)strlen(req));
  assert_true(span_is(t.req.method, t.req.method_len, "GET"));
  assert_int_equal(t.req.method_id, HTTP_METHOD_GET);
  assert_true(span_is(t.req.target, t.req.target_len, "/index.html?q=1"));
  assert_int_equal(t.req.minor_version, 1);
  assert_int_equal(t.req.header_count, 3);
  assert_true(span_is(t.fields[1].name, t.fields[1].name_len, "User-Agent"));
  /* Leading and trailing whitespace of a value are not part of it. */
  assert_true(field_is(&t.fields[1], "curl/8.0"));
  assert_true(field_is(http_request_header(&t.req, "HOST"), "example.com"));
  assert_null(http_request_header(&t.req, "Cookie"));
  assert_null(t.req.body);
  assert_int_equal(t.req.content_length, 0);
  assert_true(t.req.keep_alive);
  assert_false(t.req.expect_continue);
}

static void test_http_parse_post_with_body(void **state) {
  static const char req[] = "POST /submit HTTP/1.1\r\nHost: h\r\n"
                            "Content-Length: 11\r\n\r\nhello world";
  parsed_t t;
  parsed_init(&t);
  assert_int_equal(parse_str(&t, req), (int)strlen(req));
  assert_int_equal(t.req.method_id, HTTP_METHOD_POST);
  assert_int_equal(t.req.content_length, 11);
  assert_true(span_is(t.req.body, t.req.content_length, "hello world"));
}

static void test_http_parse_knows_the_common_methods(void **state) {
  static const struct {
    const char *name;
    http_method_t id;
  } cases[] = {
      {"GET", HTTP_METHOD_GET},       {"HEAD", HTTP_METHOD_HEAD},
      {"POST", HTTP_METHOD_POST},     {"PUT", HTTP_METHOD_PUT},
      {"DELETE", HTTP_METHOD_DELETE}, {"OPTIONS", HTTP_METHOD_OPTIONS},
      {"PATCH", HTTP_METHOD_PATCH},   {"CONNECT", HTTP_METHOD_CONNECT},
      {"TRACE", HTTP_METHOD_TRACE},   {"BREW", HTTP_METHOD_OTHER},
      {"get", HTTP_METHOD_OTHER}, /* methods are case-sensitive */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s / HTTP/1.1\r\nHost: h\r\n\r\n",
             cases[i].name);
    parsed_t t;
    parsed_init(&t);
    assert_int_equal(parse_str(&t, buf), (int)strlen(buf));
    assert_int_equal(t.req.method_id, cases[i].id);
  }
}

static void
test_http_parse_accepts_bare_lf_and_leading_empty_lines(void **state) {
  static const char req[] = "\r\n\nGET / HTTP/1.0\nX-A: 1\n\n";
  parsed_t t;
  parsed_init(&t);
  /* The empty lines before the request are consumed with it. */
  assert_int_equal(parse_str(&t, req), (int)strlen(req));
  assert_int_equal(t.req.minor_version, 0);
  assert_true(field_is(http_request_header(&t.req, "x-a"), "1"));
  /* Empty lines alone, or ending in a lone CR, wait for more. */
  assert_int_equal(parse_fresh("\r\n\r\n"), HTTP_PARSE_INCOMPLETE);
  assert_int_equal(parse_fresh("\r\n\r"), HTTP_PARSE_INCOMPLETE);
  assert_int_equal(parse_fresh("\r"), HTTP_PARSE_INCOMPLETE);
  assert_int_equal(parse_fresh(""), HTTP_PARSE_INCOMPLETE);
}

static void
test_http_parse_equal_repeated_content_lengths_are_one(void **state) {
  static const char req[] =
      "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
      "Content-Length: 2\r\n\r\nok";
  parsed_t t;
  parsed_init(&t);
  assert_int_equal(parse_str(&t, req), (int)strlen(req));
  assert_int_equal(t.req.content_length, 2);
}

static void test_http_parse_http10_needs_no_host(void **state) {
  assert_int_equal(parse_fresh("GET / HTTP/1.0\r\n\r\n"), 18);
}

/* ===== Incremental input ================================================= */

static void test_http_parse_byte_by_byte_without_body(void **state) {
  static const char req[] = "GET /stats HTTP/1.1\r\nHost: localhost:8080\r\n"
                            "Connection: close\r\n\r\n";
  parsed_t t;
  parsed_init(&t);
  char *kept = NULL;
  assert_int_equal(parse_byte_by_byte(&t, req, strlen(req), NULL, &kept),
                   (int)strlen(req));
  assert_true(span_is(t.req.target, t.req.target_len, "/stats"));
  assert_true(field_is(http_request_header(&t.req, "host"), "localhost:8080"));
  assert_false(t.req.keep_alive);
  free(kept);
}

static void test_http_parse_byte_by_byte_with_body(void **state) {
  static const char req[] = "POST / HTTP/1.1\r\nHost: h\r\n"
                            "Content-Length: 5\r\n\r\nabcde";
  parsed_t t;
  parsed_init(&t);
  char *kept = NULL;
  assert_int_equal(parse_byte_by_byte(&t, req, strlen(req), NULL, &kept),
                   (int)strlen(req));
  assert_true(span_is(t.req.body, t.req.content_length, "abcde"));
  free(kept);
}

static void test_http_parse_body_split_across_reads(void **state) {
  static const char head[] = "POST / HTTP/1.1\r\nHost: h\r\n"
                             "Content-Length: 6\r\n\r\n";
  char buf[128];
  size_t n = strlen(head);
  memcpy(buf, head, n);
  parsed_t t;
  parsed_init(&t);
  assert_int_equal(http_parse_request(&t.p, buf, n, NULL, &t.req),
                   HTTP_PARSE_INCOMPLETE);
  memcpy(buf + n, "abc", 3);
  assert_int_equal(http_parse_request(&t.p, buf, n + 3, NULL, &t.req),
                   HTTP_PARSE_INCOMPLETE);
  /* The next pipelined request's first bytes arrive with the body's end. */
  memcpy(buf + n + 3, "defGET", 6);
  assert_int_equal(http_parse_request(&t.p, buf, n + 9, NULL, &t.req),
                   (int)(n + 6));
  assert_true(span_is(t.req.body, 6, "abcdef"));
}

static void test_http_parse_pipelined_requests_one_at_a_time(void **state) {
  static const char reqs[] =
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /p HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nxyz"
      "GET /last HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n"
      "GET /partial HTT";
  static const char *targets[] = {"/", "/p", "/last"};
  parsed_t t;
  parsed_init(&t);
  size_t off = 0, len = strlen(reqs);
  for (int i = 0; i < 3; i++) {
    int n = http_parse_request(&t.p, reqs + off, len - off, NULL, &t.req);
    assert_true(n > 0);
    assert_true(span_is(t.req.target, t.req.target_len, targets[i]));
    off += (size_t)n;
  }
  assert_false(t.req.keep_alive);
  assert_int_equal(
      http_parse_request(&t.p, reqs + off, len - off, NULL, &t.req),
      HTTP_PARSE_INCOMPLETE);
}

/* ===== Errors ============================================================ */

static void test_http_parse_bad_syntax_is_400(void **state) {
  static const char *bad[] = {
      " GET / HTTP/1.1\r\nHost: h\r\n\r\n",        /* leading space */
      "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",        /* two spaces */
      "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",        /* trailing space */
      "GET /\r\nHost: h\r\n\r\n",                  /* no version */
      "GET / HTTP/1.1\rHost: h\r\n\r\n",           /* bare CR */
      "\rGET / HTTP/1.1\r\nHost: h\r\n\r\n",       /* bare CR before */
      "G@T / HTTP/1.1\r\nHost: h\r\n\r\n",         /* not a token */
      "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n",    /* control in target */
      "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", /* raw UTF-8 target */
      "GET / HTTPS/1.1\r\nHost: h\r\n\r\n",        /* not HTTP */
      "GET / HTTP/1.x\r\nHost: h\r\n\r\n",         /* not a digit */
      "GET / HTTP/1.10\r\nHost: h\r\n\r\n",        /* too long */
      "GET / HTTP/1.1\r\nHost : h\r\n\r\n",        /* space before colon */
      "GET / HTTP/1.1\r\nHost\r\n\r\n",            /* no colon */
      "GET / HTTP/1.1\r\n: v\r\nHost: h\r\n\r\n",  /* empty name */
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", /* obs-fold */
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n",   /* DEL in value */
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",    /* bare CR */
      "GET / HTTP/1.1\r\n\r\n",                          /* no Host */
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",    /* two Hosts */
      "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",    /* two, 1.0 */
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
      "Content-Length: 2\r\n\r\nab",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = parse_fresh(bad[i]);
    if (rc != -400) {
      fprintf(stderr, "case %zu answered %d, not -400\n", i, rc);
      fail();
    }
  }
  /* A NUL in a value, which a C string could not carry. */
  static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
  parsed_t t;
  parsed_init(&t);
  assert_int_equal(http_parse_request(&t.p, nul, sizeof nul - 1, NULL, &t.req),
                   -400);
}

static void
test_http_parse_garbage_is_refused_before_the_head_ends(void **state) {
  /* No line end yet, but the method is already impossible. */
  assert_int_equal(parse_fresh("\x16\x03\x01\x02"), -400); /* TLS hello */
  assert_int_equal(parse_fresh("GE{"), -400);
  assert_int_equal(parse_fresh(" "), -400);
  /* A complete but bad request line, headers still to come. */
  assert_int_equal(parse_fresh("GET / FTP/1.1\r\nHost"), -400);
  assert_int_equal(parse_fresh("GET / HTTP/2.0\r\nHost"), -505);
  /* A valid beginning waits. */
  assert_int_equal(parse_fresh("GET / HTTP/1.1\r\nHost"),
                   HTTP_PARSE_INCOMPLETE);
  assert_int_equal(parse_fresh("GET /x"), HTTP_PARSE_INCOMPLETE);
}

static void test_http_parse_other_versions_are_505(void **state) {
  assert_int_equal(parse_fresh("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), -505);
  assert_int_equal(parse_fresh("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), -505);
  assert_int_equal(parse_fresh("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), -505);
  assert_int_equal(parse_fresh("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), -505);
}

static void test_http_parse_transfer_encoding_is_501(void **state) {
  assert_int_equal(parse_fresh("POST / HTTP/1.1\r\nHost: h\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n"
                               "5\r\nhello\r\n0\r\n\r\n"),
                   -501);
  /* Also beside a Content-Length: no guessing which one frames it. */
  assert_int_equal(parse_fresh("POST / HTTP/1.1\r\nHost: h\r\n"
                               "Content-Length: 3\r\n"
                               "transfer-encoding: gzip\r\n\r\nabc"),
                   -501);
}

static void test_http_parse_oversized_head_is_431(void **state) {
  http_limits_t lim = {.max_header_bytes = 64};
  char buf[256];
  /* Head of exactly 64 bytes: accepted. */
  const char *base = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  size_t n = strlen(base);
  memcpy(buf, base, n);
  while (n < 64 - 4)
    buf[n++] = 'a';
  memcpy(buf + n, "\r\n\r\n", 4);
  n += 4;
  parsed_t t;
  parsed_init(&t);
  assert_int_equal(http_parse_request(&t.p, buf, n, &lim, &t.req), 64);
  /* One more byte in the value: refused when complete... */
  memmove(buf + 61, buf + 60, 4);
  buf[60] = 'a';
  parsed_init(&t);
  assert_int_equal(http_parse_request(&t.p, buf, 65, &lim, &t.req), -431);
  /* ...and as soon as 64 bytes have come without the head's end. */
  parsed_init(&t);
  assert_int_equal(http_parse_request(&t.p, buf, 63, &lim, &t.req),
                   HTTP_PARSE_INCOMPLETE);
  assert_int_equal(http_parse_request(&t.p, buf, 64, &lim, &t.req), -431);
  /* A bad request line is reported before the size, in one read as in
   * many (the fuzzer found the two disagreeing). */
  static const char bad_line[] = "\x01GET / HTTP/1.1\r\nHost: h\r\nX: "
                                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                 "\r\n\r\n";
  assert_true(strlen(bad_line) > 64);
  parsed_init(&t);
  assert_int_equal(
      http_parse_request(&t.p, bad_line, strlen(bad_line), &lim, &t.req), -400);
  parsed_init(&t);
  assert_int_equal(http_parse_request(&t.p, buf, 65, &lim, &t.req), -431);
  /* The default limit applies with no limits given. */
  char *big = malloc(HTTP_DEFAULT_MAX_HEADER_BYTES + 64);
  assert_non_null(big);
  n = (size_t)snprintf(big, 64, "GET / HTTP/1.1\r\nHost: h\r\nX: ");
  memset(big + n, 'b', HTTP_DEFAULT_MAX_HEADER_BYTES);
  parsed_init(&t);
  assert_int_equal(http_parse_request(&t.p, big,
                                      n + HTTP_DEFAULT_MAX_HEADER_BYTES, NULL,
                                      &t.req),
                   -431);
  free(big);
}

static void test_http_parse_too_many_fields_is_431(void **state) {
  char buf[1024];
  size_t n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\n");
  for (int i = 0; i < MAX_FIELDS; i++)
    n += (size_t)snprintf(buf + n, sizeof buf - n, "X-%d: v\r\n", i);
  n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
  parsed_t t;
  parsed_init(&t);
  assert_int_equal(http_parse_request(&t.p, buf, n, NULL, &t.req), -431);
  /* No field storage at all: any field is one too many. */
  parsed_init(&t);
  t.req.headers = NULL;
  t.req.headers_cap = 0;
  assert_int_equal(parse_str(&t, "GET / HTTP/1.0\r\nA: b\r\n\r\n"), -431);
  parsed_init(&t);
  t.req.headers = NULL;
  t.req.headers_cap = 0;
  assert_int_equal(parse_str(&t, "GET / HTTP/1.0\r\n\r\n"), 18);
}

static void
test_http_parse_oversized_body_is_413_before_it_arrives(void **state) {
  http_limits_t lim = {.max_body_bytes = 10};
  static const char ok[] = "POST / HTTP/1.1\r\nHost: h\r\n"
                           "Content-Length: 10\r\n\r\n0123456789";
  static const char big[] = "POST / HTTP/1.1\r\nHost: h\r\n"
                            "Content-Length: 11\r\n\r\n";
  static const char huge[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "
                             "99999999999999999999999999\r\n\r\n";
  parsed_t t;
  parsed_init(&t);
  assert_int_equal(http_parse_request(&t.p, ok, strlen(ok), &lim, &t.req),
                   (int)strlen(ok));
  parsed_init(&t);
  assert_int_equal(http_parse_request(&t.p, big, strlen(big), &lim, &t.req),
                   -413);
  parsed_init(&t);
  assert_int_equal(parse_str(&t, huge), -413);
}

/* ===== Keep-alive and 100-continue ======================================= */

static bool keeps_alive(const char *req) {
  parsed_t t;
  parsed_init(&t);
  assert_int_equal(parse_str(&t, req), (int)strlen(req));
  return t.req.keep_alive;
}

static void test_http_parse_keep_alive_rules(void **state) {
  assert_true(keeps_alive("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  assert_false(keeps_alive("GET / HTTP/1.1\r\nHost: h\r\n"
                           "Connection: close\r\n\r\n"));
  assert_false(keeps_alive("GET / HTTP/1.1\r\nHost: h\r\n"
                           "Connection: Upgrade, CLOSE\r\n\r\n"));
  assert_true(keeps_alive("GET / HTTP/1.1\r\nHost: h\r\n"
                          "Connection: closed\r\n\r\n"));
  assert_false(keeps_alive("GET / HTTP/1.0\r\n\r\n"));
  assert_true(keeps_alive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  /* Both named: close wins. */
  assert_false(keeps_alive("GET / HTTP/1.0\r\n"
                           "Connection: keep-alive,close\r\n\r\n"));
  assert_false(keeps_alive("GET / HTTP/1.1\r\nHost: h\r\n"
                           "Connection: keep-alive\r\nConnection: close\r\n"
                           "\r\n"));
}

static void test_http_parse_expect_continue_is_offered_once(void **state) {
  static const char req[] = "PUT /u HTTP/1.1\r\nHost: h\r\n"
                            "Expect: 100-Continue\r\nContent-Length: 4\r\n"
                            "\r\nbody";
  size_t head = strlen(req) - 4;
  parsed_t t;
  parsed_init(&t);
  /* Not before the head is complete. */
  assert_int_equal(http_parse_request(&t.p, req, head - 1, NULL, &t.req),
                   HTTP_PARSE_INCOMPLETE);
  assert_false(http_parser_take_continue(&t.p));
  assert_int_equal(http_parse_request(&t.p, req, head, NULL, &t.req),
                   HTTP_PARSE_INCOMPLETE);
  assert_true(http_parser_take_continue(&t.p));
  assert_false(http_parser_take_continue(&t.p));
  assert_int_equal(http_parse_request(&t.p, req, head + 2, NULL, &t.req),
                   HTTP_PARSE_INCOMPLETE);
  assert_false(http_parser_take_continue(&t.p));
  assert_int_equal(http_parse_request(&t.p, req, head + 4, NULL, &t.req),
                   (int)head + 4);
  assert_true(t.req.expect_continue);
  /* Without the field there is nothing to offer. */
  parsed_init(&t);
  assert_int_equal(parse_str(&t, "PUT / HTTP/1.1\r\nHost: h\r\n"
                                 "Content-Length: 4\r\n\r\n"),
                   HTTP_PARSE_INCOMPLETE);
  assert_false(http_parser_take_continue(&t.p));
}

/* ===== Routing and responses ============================================= */

static http_route_t route_of(const char *req) {
  parsed_t t;
  parsed_init(&t);
  assert_int_equal(parse_str(&t, req), (int)strlen(req));
  return http_route(&t.req);
}

static void test_http_route_paths_and_methods(void **state) {
  assert_int_equal(route_of("GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
                   HTTP_ROUTE_HELLO);
  assert_int_equal(route_of("HEAD /?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"),
                   HTTP_ROUTE_HELLO);
  assert_int_equal(route_of("GET /stats HTTP/1.1\r\nHost: h\r\n\r\n"),
                   HTTP_ROUTE_STATS);
  assert_int_equal(route_of("GET /stats?pretty HTTP/1.0\r\n\r\n"),
                   HTTP_ROUTE_STATS);
  assert_int_equal(route_of("GET /statsx HTTP/1.1\r\nHost: h\r\n\r\n"),
                   HTTP_ROUTE_NOT_FOUND);
  assert_int_equal(route_of("GET // HTTP/1.1\r\nHost: h\r\n\r\n"),
                   HTTP_ROUTE_NOT_FOUND);
  assert_int_equal(route_of("DELETE /nothing HTTP/1.1\r\nHost: h\r\n\r\n"),
                   HTTP_ROUTE_NOT_FOUND);
  assert_int_equal(route_of("POST / HTTP/1.1\r\nHost: h\r\n\r\n"),
                   HTTP_ROUTE_BAD_METHOD);
  assert_int_equal(route_of("get /stats HTTP/1.1\r\nHost: h\r\n\r\n"),
                   HTTP_ROUTE_BAD_METHOD);
}

static void test_http_respond_hello_exact_bytes(void **state) {
  static const char want[] = "HTTP/1.1 200 OK\r\nServer: isle\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 13\r\n"
                             "Connection: keep-alive\r\n\r\n"
                             "Hello, World!";
  parsed_t t;
  parsed_init(&t);
  assert_true(parse_str(&t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n") > 0);
  char out[256];
  /* Sizing call first, as a caller with no buffer yet would. */
  size_t n = http_respond(&t.req, HTTP_ROUTE_HELLO, NULL, 0);
  assert_int_equal(n, strlen(want));
  assert_int_equal(http_respond(&t.req, HTTP_ROUTE_HELLO, out, sizeof out), n);
  assert_memory_equal(out, want, n);
  /* A buffer one byte short is not overrun. */
  memset(out, '#', sizeof out);
  assert_int_equal(http_respond(&t.req, HTTP_ROUTE_HELLO, out, n - 1), n);
  assert_int_equal(out[n - 1], '#');
}

static void test_http_respond_head_has_length_but_no_body(void **state) {
  static const char want[] = "HTTP/1.1 200 OK\r\nServer: isle\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 13\r\n"
                             "Connection: close\r\n\r\n";
  parsed_t t;
  parsed_init(&t);
  assert_true(parse_str(&t, "HEAD / HTTP/1.0\r\n\r\n") > 0);
  char out[256];
  size_t n = http_respond(&t.req, http_route(&t.req), out, sizeof out);
  assert_int_equal(n, strlen(want));
  assert_memory_equal(out, want, n);
}

static void test_http_respond_404_and_405(void **state) {
  static const char want404[] = "HTTP/1.1 404 Not Found\r\nServer: isle\r\n"
                                "Content-Type: text/plain\r\n"
                                "Content-Length: 10\r\n"
                                "Connection: keep-alive\r\n\r\n"
                                "Not Found\n";
  static const char want405[] = "HTTP/1.1 405 Method Not Allowed\r\n"
                                "Server: isle\r\n"
                                "Content-Type: text/plain\r\n"
                                "Content-Length: 19\r\n"
                                "Connection: close\r\n"
                                "Allow: GET, HEAD\r\n\r\n"
                                "Method Not Allowed\n";
  char out[512];
  parsed_t t;
  parsed_init(&t);
  assert_true(parse_str(&t, "GET /nope HTTP/1.1\r\nHost: h\r\n\r\n") > 0);
  size_t n = http_respond(&t.req, http_route(&t.req), out, sizeof out);
  assert_int_equal(n, strlen(want404));
  assert_memory_equal(out, want404, n);
  parsed_init(&t);
  assert_true(parse_str(&t, "POST / HTTP/1.1\r\nHost: h\r\n"
                            "Connection: close\r\n\r\n") > 0);
  n = http_respond(&t.req, http_route(&t.req), out, sizeof out);
  assert_int_equal(n, strlen(want405));
  assert_memory_equal(out, want405, n);
  /* Stats is the caller's to answer. */
  assert_int_equal(http_respond(&t.req, HTTP_ROUTE_STATS, out, sizeof out), 0);
}

static void test_http_respond_error_closes(void **state) {
  static const struct {
    int status;
    const char *want;
  } cases[] = {
      {400, "HTTP/1.1 400 Bad Request\r\nServer: isle\r\n"
            "Content-Type: text/plain\r\nContent-Length: 12\r\n"
            "Connection: close\r\n\r\nBad Request\n"},
      {431, "HTTP/1.1 431 Request Header Fields Too Large\r\nServer: isle\r\n"
            "Content-Type: text/plain\r\nContent-Length: 32\r\n"
            "Connection: close\r\n\r\nRequest Header Fields Too Large\n"},
  };
  char out[512];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = http_respond_error(cases[i].status, out, sizeof out);
    assert_int_equal(n, strlen(cases[i].want));
    assert_memory_equal(out, cases[i].want, n);
  }
  /* Every status the parser returns has a reason of its own. */
  static const int statuses[] = {400, 413, 431, 501, 505};
  for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
    assert_string_not_equal(http_status_reason(statuses[i]), "Unknown");
  assert_string_equal(http_status_reason(299), "Unknown");
}

static void test_http_response_write_custom(void **state) {
  static const char body[] = "{\"workers\":2}";
  static const char want[] = "HTTP/1.1 200 OK\r\nServer: isle\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: 13\r\n"
                             "Connection: keep-alive\r\n"
                             "Cache-Control: no-store\r\n\r\n"
                             "{\"workers\":2}";
  char out[256];
  size_t n = http_response_write(out, sizeof out, 200, "application/json", body,
                                 strlen(body), true,
                                 "Cache-Control: no-store\r\n", false);
  assert_int_equal(n, strlen(want));
  assert_memory_equal(out, want, n);
  /* No content type, no body. */
  n = http_response_write(out, sizeof out, 200, NULL, NULL, 0, true, NULL,
                          false);
  static const char bare[] = "HTTP/1.1 200 OK\r\nServer: isle\r\n"
                             "Content-Length: 0\r\n"
                             "Connection: keep-alive\r\n\r\n";
  assert_int_equal(n, strlen(bare));
  assert_memory_equal(out, bare, n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_http_parse_get_fills_the_request),
      cmocka_unit_test(test_http_parse_post_with_body),
      cmocka_unit_test(test_http_parse_knows_the_common_methods),
      cmocka_unit_test(test_http_parse_accepts_bare_lf_and_leading_empty_lines),
      cmocka_unit_test(test_http_parse_equal_repeated_content_lengths_are_one),
      cmocka_unit_test(test_http_parse_http10_needs_no_host),
      cmocka_unit_test(test_http_parse_byte_by_byte_without_body),
      cmocka_unit_test(test_http_parse_byte_by_byte_with_body),
      cmocka_unit_test(test_http_parse_body_split_across_reads),
      cmocka_unit_test(test_http_parse_pipelined_requests_one_at_a_time),
      cmocka_unit_test(test_http_parse_bad_syntax_is_400),
      cmocka_unit_test(test_http_parse_garbage_is_refused_before_the_head_ends),
      cmocka_unit_test(test_http_parse_other_versions_are_505),
      cmocka_unit_test(test_http_parse_transfer_encoding_is_501),
      cmocka_unit_test(test_http_parse_oversized_head_is_431),
      cmocka_unit_test(test_http_parse_too_many_fields_is_431),
      cmocka_unit_test(test_http_parse_oversized_body_is_413_before_it_arrives),
      cmocka_unit_test(test_http_parse_keep_alive_rules),
      cmocka_unit_test(test_http_parse_expect_continue_is_offered_once),
      cmocka_unit_test(test_http_route_paths_and_methods),
      cmocka_unit_test(test_http_respond_hello_exact_bytes),
      cmocka_unit_test(test_http_respond_head_has_length_but_no_body),
      cmocka_unit_test(test_http_respond_404_and_405),
      cmocka_unit_test(test_http_respond_error_closes),
      cmocka_unit_test(test_http_response_write_custom),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
