/* isle — MIT licensed. */
/*
 * The protocol core of the HTTP/1.1 sample server: an incremental request
 * parser, a router for the sample's three paths, and response
 * serialization. Pure functions over byte buffers: no I/O, no allocation,
 * no global state, so that the connection actor can call them on whatever
 * its reads delivered and the fuzzer can call them on anything.
 *
 * Parsing. The caller keeps the bytes it has received and not yet consumed
 * at the front of a buffer and calls http_parse_request after each read.
 * The answer is one of:
 *   > 0  one complete request: the return value is the number of bytes it
 *        took (request line, headers, body); the next request, if the
 *        client pipelined one, starts right after;
 *   0    (HTTP_PARSE_INCOMPLETE) the bytes so far are a valid beginning:
 *        read more and call again with all of them;
 *   < 0  the negated HTTP status to answer with before closing the
 *        connection (-400, -413, -431, -501, -505).
 * The request's strings point into the caller's buffer and stay valid while
 * those bytes do. The parser state (http_parser_t) remembers how far the
 * search for the end of the headers got, so feeding a request byte by byte
 * costs linear time; it holds offsets, not pointers, so the caller may move
 * or grow its buffer between calls.
 *
 * Decisions (RFC 9112 section numbers in brackets):
 * - Versions HTTP/1.0 and HTTP/1.1 only; any other HTTP/d.d is 505, anything
 *   else 400.
 * - Lines end in CRLF; a bare LF is accepted too [2.2]; a bare CR is 400.
 *   Empty lines before the request line are skipped [2.2].
 * - Header folding (obs-fold) is rejected with 400 [5.2]; so is whitespace
 *   between a field name and its colon [5.1].
 * - Bodies: Content-Length only. A request with Transfer-Encoding is
 *   answered 501 Not Implemented and the connection closed [6.1: "A server
 *   that receives a request message with a transfer coding it does not
 *   understand SHOULD respond with 501"]. Nothing in the sample servers
 *   needs request bodies, and not parsing chunked framing removes the
 *   classic smuggling surface (Transfer-Encoding against Content-Length).
 * - Content-Length: digits only; repeated fields must agree, else 400
 *   [6.3]; a length above the body limit is 413 at once, before the body
 *   arrives.
 * - HTTP/1.1 requests must carry exactly one Host field, else 400 [3.2].
 * - Head (request line + fields + blank line) larger than the header limit,
 *   or more fields than the caller's array holds: 431.
 * - Keep-alive: HTTP/1.1 keeps the connection unless a Connection field
 *   lists "close"; HTTP/1.0 closes unless it lists "keep-alive" [9.3].
 * - Every error status means the connection is closed after the reply: the
 *   parser no longer knows where the next request would start.
 *
 * Threads: every function is reentrant; a parser state belongs to one
 * connection.
 */
#ifndef ISLE_SAMPLES_HTTP_PARSE_H
#define ISLE_SAMPLES_HTTP_PARSE_H

#include <stdbool.h> /* bool */
#include <stddef.h>  /* size_t */

#ifdef __cplusplus
extern "C" {
#endif

/* ===== Constants and types ============================================== */

/* http_parse_request's "read more" answer. */
#define HTTP_PARSE_INCOMPLETE 0

/* Defaults of http_limits_t, and the ceiling for either limit: above it the
 * byte count of a request might not fit the int return value. */
#define HTTP_DEFAULT_MAX_HEADER_BYTES 8192
#define HTTP_DEFAULT_MAX_BODY_BYTES (1024 * 1024)
#define HTTP_LIMIT_CEILING (1 << 29)

typedef struct http_limits_s {
  size_t max_header_bytes; /* head size, blank line included; 0: default */
  size_t max_body_bytes;   /* Content-Length ceiling; 0: default */
} http_limits_t;

typedef enum http_method_e {
  HTTP_METHOD_OTHER = 0, /* a valid token the sample does not know */
  HTTP_METHOD_GET,
  HTTP_METHOD_HEAD,
  HTTP_METHOD_POST,
  HTTP_METHOD_PUT,
  HTTP_METHOD_DELETE,
  HTTP_METHOD_OPTIONS,
  HTTP_METHOD_PATCH,
  HTTP_METHOD_CONNECT,
  HTTP_METHOD_TRACE
} http_method_t;

/* A field, pointing into the caller's buffer. The value has no leading or
 * trailing whitespace. */
typedef struct http_header_s {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} http_header_t;

/* A parsed request. The caller sets `headers` and `headers_cap` (storage
 * for the fields, which the parser fills) before parsing; every other
 * field is the parser's output, read-only for the caller, and valid only
 * after a positive return. */
typedef struct http_request_s {
  /* public, set by the caller */
  http_header_t *headers; /* may be NULL when headers_cap is 0 */
  size_t headers_cap;
  /* read-only, set by the parser */
  size_t header_count;
  const char *method;
  size_t method_len;
  http_method_t method_id;
  const char *target; /* request-target as sent, query included */
  size_t target_len;
  int minor_version; /* 0 or 1 (HTTP/1.x) */
  const char *body;  /* content_length bytes; NULL when 0 */
  size_t content_length;
  bool keep_alive;      /* false: close the connection after the answer */
  bool expect_continue; /* Expect: 100-continue was sent */
} http_request_t;

/* Per-connection state between calls. Zero it (or http_parser_init) before
 * the first call; a complete request resets it for the next one. Private:
 * the caller only initialises it. */
typedef struct http_parser_s {
  size_t scanned;     /* bytes searched for the end of the head so far */
  size_t head_len;    /* length of the valid head once found, 0 before */
  size_t body_len;    /* its Content-Length, once head_len is set */
  bool line_checked;  /* the request line was found valid */
  bool expect;        /* the head asked for 100-continue */
  bool continue_sent; /* http_parser_take_continue said so already */
} http_parser_t;

/* The routes of the sample server. */
typedef enum http_route_e {
  HTTP_ROUTE_HELLO,     /* GET or HEAD / : 200 "Hello, World!" */
  HTTP_ROUTE_STATS,     /* GET or HEAD /stats : the caller's JSON */
  HTTP_ROUTE_NOT_FOUND, /* any other path: 404 */
  HTTP_ROUTE_BAD_METHOD /* a known path, another method: 405 + Allow */
} http_route_t;

/* ===== Parsing — any thread, one parser per connection ================== */

/* Resets `p` for a new connection. Can't fail. */
void http_parser_init(http_parser_t *p);

/* Parses the request at the front of buf[0..len), as described at the top
 * of this file: returns the bytes of one complete request (> 0),
 * HTTP_PARSE_INCOMPLETE, or a negated status. `limits` may be NULL for the
 * defaults. On a positive return `req` is filled and `p` reset; otherwise
 * `req`'s outputs are unspecified. Ownership: `req`'s pointers borrow
 * `buf`. */
int http_parse_request(http_parser_t *p, const char *buf, size_t len,
                       const http_limits_t *limits, http_request_t *req);

/* True once per request when the head is complete and valid, the client
 * sent "Expect: 100-continue" and the body has not all arrived: the caller
 * should then write "HTTP/1.1 100 Continue\r\n\r\n" so that the client
 * (curl, for one) sends the body without first waiting a second. Call it
 * after an HTTP_PARSE_INCOMPLETE answer. */
bool http_parser_take_continue(http_parser_t *p);

/* The field named `name` (case-insensitive), or NULL. */
const http_header_t *http_request_header(const http_request_t *req,
                                         const char *name);

/* ===== Routing and responses — any thread =============================== */

/* Which route answers `req`. Only the path counts: a query string is
 * ignored. Can't fail. */
http_route_t http_route(const http_request_t *req);

/* The reason phrase of `status` ("Not Found"), "Unknown" for a status this
 * file does not use. Ownership: static. */
const char *http_status_reason(int status);

/* Writes a whole response into out[0..cap): status line, Content-Type (when
 * `content_type` is not NULL), Content-Length, Connection ("keep-alive" or
 * "close"), the optional `extra_headers` (complete lines, each ending in
 * CRLF, or NULL), a blank line and, unless `head_only`, the body. Returns
 * the length of the response whether or not it fitted; when it exceeds
 * `cap`, out's contents are unspecified, and the caller may size a buffer
 * by calling with cap 0 first. Ownership: borrows everything. */
size_t http_response_write(char *out, size_t cap, int status,
                           const char *content_type, const char *body,
                           size_t body_len, bool keep_alive,
                           const char *extra_headers, bool head_only);

/* The response to `req` for the routes the protocol core can answer
 * itself (hello, not found, bad method), written as http_response_write
 * does; for HTTP_ROUTE_STATS it writes nothing and returns 0 — the caller
 * builds the JSON and calls http_response_write. */
size_t http_respond(const http_request_t *req, http_route_t route, char *out,
                    size_t cap);

/* The response to a parse error: `status` is the negated return of
 * http_parse_request; a short text body naming the status and
 * "Connection: close". Written as http_response_write does. */
size_t http_respond_error(int status, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* ISLE_SAMPLES_HTTP_PARSE_H */
