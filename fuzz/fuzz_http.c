/* isle — MIT licensed. */
/*
 * libFuzzer target for the HTTP/1.1 request parser of samples/http.
 *
 * Each input is a connection's byte stream. It is parsed twice: whole
 * (request after pipelined request, as a server loop would), and in two
 * pieces split at a point the input's first byte chooses, each piece in a
 * buffer of its own exact size so that ASan sees any read past the bytes
 * received. Both runs must agree on every answer; every complete request
 * must lie inside the bytes it claims, and its response must serialize to
 * the length the sizing call announced. A disagreement aborts: that is a
 * bug the sanitizers alone would not see.
 */
#include <stdint.h> /* uint8_t */
#include <stdlib.h> /* malloc, abort */
#include <string.h> /* memcpy */

#include "http_parse.h"

#define FIELDS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok)
    abort();
}

/* Parses the requests at the front of buf[0..len); returns the answer that
 * ended the loop and the bytes consumed before it. */
static int parse_all(const char *buf, size_t len, const http_limits_t *lim,
                     size_t *consumed, unsigned *requests) {
  http_parser_t p;
  http_parser_init(&p);
  http_header_t fields[FIELDS];
  http_request_t req = {.headers = fields, .headers_cap = FIELDS};
  size_t off = 0;
  *requests = 0;
  for (;;) {
    int n = http_parse_request(&p, buf + off, len - off, lim, &req);
    if (n <= 0) {
      *consumed = off;
      return n;
    }
    check((size_t)n <= len - off);
    const char *lo = buf + off, *hi = buf + off + n;
    check(req.method >= lo && req.method + req.method_len <= hi);
    check(req.target >= lo && req.target + req.target_len <= hi);
    check(req.header_count <= FIELDS);
    for (size_t i = 0; i < req.header_count; i++)
      check(fields[i].name >= lo &&
            fields[i].value + fields[i].value_len <= hi);
    if (req.content_length != 0)
      check(req.body >= lo && req.body + req.content_length == hi);
    http_route_t route = http_route(&req);
    size_t need = http_respond(&req, route, NULL, 0);
    char *out = malloc(need + 1);
    check(out != NULL);
    check(http_respond(&req, route, out, need) == need);
    free(out);
    off += (size_t)n;
    (*requests)++;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  /* Small limits so that the 431 and 413 paths are reached. */
  http_limits_t lim = {.max_header_bytes = 64 + data[0] * 4u,
                       .max_body_bytes = 1 + data[0]};
  size_t len = size - 1;
  char *whole = malloc(len + 1);
  check(whole != NULL);
  memcpy(whole, data + 1, len);
  size_t consumed;
  unsigned requests;
  int rc = parse_all(whole, len, &lim, &consumed, &requests);
  check(rc <= 0 && rc >= -505);
  if (rc < 0) {
    char out[512];
    size_t n = http_respond_error(-rc, out, sizeof out);
    check(n > 0 && n <= sizeof out);
  }

  /* The first request again, in two reads split at `cut`. */
  size_t cut = len != 0 ? data[0] % (len + 1) : 0;
  http_parser_t p;
  http_parser_init(&p);
  http_header_t fields[FIELDS];
  http_request_t req = {.headers = fields, .headers_cap = FIELDS};
  char *first = malloc(cut + 1);
  check(first != NULL);
  memcpy(first, whole, cut);
  int r1 = http_parse_request(&p, first, cut, &lim, &req);
  free(first);
  http_parser_t fresh;
  http_parser_init(&fresh);
  http_header_t fresh_fields[FIELDS];
  http_request_t fresh_req = {.headers = fresh_fields, .headers_cap = FIELDS};
  int r3 = http_parse_request(&fresh, whole, len, &lim, &fresh_req);
  if (r1 == 0) {
    /* Waiting was right, and the rest gives what the whole gives. */
    check(http_parse_request(&p, whole, len, &lim, &req) == r3);
  } else {
    /* A verdict on a prefix (a request, or an error found early) must be
     * the verdict on the whole. */
    check(r1 == r3);
  }
  free(whole);
  return 0;
}
