/* isle — MIT licensed. */
/*
 * The HTTP/1.1 request parser, router and response writer of the sample
 * server (see http_parse.h for the contract and the protocol decisions).
 *
 * How a call goes: skip empty lines before the request; look for the end
 * of the head (a line feed followed by an empty line), resuming where the
 * previous call stopped; while it is missing, check what can already be
 * checked (the method's characters, then the whole request line once its
 * line feed is there) so that garbage is refused early rather than after
 * the header limit; once the head is there, parse it in one pass, apply
 * the limits, and wait for Content-Length bytes of body. The head is parsed
 * again when the body completes, so that the state holds no pointers into
 * a buffer the caller may have moved.
 *
 * Threads: none of its own; no globals.
 */
#include <string.h> /* memcpy, strlen */

#include "http_parse.h"

/* ===== Character classes ================================================= */

/* tchar of RFC 9110 5.6.2: the characters of methods and field names. */
static bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
      (c >= 'A' && c <= 'Z'))
    return true;
  switch (c) {
  case '!':
  case '#':
  case '$':
  case '%':
  case '&':
  case '\'':
  case '*':
  case '+':
  case '-':
  case '.':
  case '^':
  case '_':
  case '`':
  case '|':
  case '~':
    return true;
  default:
    return false;
  }
}

/* Field values may hold visible ASCII, space, tab and obs-text (0x80 and
 * up, passed through uninterpreted); every other control is refused. */
static bool is_value_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* `s[0..n)` equals the lower-case literal `lit`, ignoring ASCII case. */
static bool eq_nocase(const char *s, size_t n, const char *lit) {
  size_t m = strlen(lit);
  if (n != m)
    return false;
  for (size_t i = 0; i < n; i++)
    if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
      return false;
  return true;
}

/* ===== Head parsing ====================================================== */

/* What one pass over a complete head found. */
typedef struct head_s {
  size_t content_length; /* saturates at HTTP_LIMIT_CEILING + 1 */
  bool has_length;
  bool has_te;
  bool conn_close;
  bool conn_keep_alive;
  bool expect_continue;
  unsigned hosts;
} head_t;

/* The end of the line starting at `i` in buf[0..len): sets *next to the
 * index after its line feed and returns the index of its CR or LF. A CR not
 * followed by LF is a bare CR: returns len + 1 to say "malformed". Returns
 * len when the line has no end within the buffer. */
static size_t line_end(const char *buf, size_t len, size_t i, size_t *next) {
  for (; i < len; i++) {
    if (buf[i] == '\n') {
      *next = i + 1;
      return i;
    }
    if (buf[i] == '\r') {
      if (i + 1 == len)
        return len;
      if (buf[i + 1] != '\n')
        return len + 1;
      *next = i + 2;
      return i;
    }
  }
  return len;
}

static http_method_t method_id(const char *m, size_t n) {
  static const struct {
    const char *name;
    http_method_t id;
  } known[] = {
      {"GET", HTTP_METHOD_GET},       {"HEAD", HTTP_METHOD_HEAD},
      {"POST", HTTP_METHOD_POST},     {"PUT", HTTP_METHOD_PUT},
      {"DELETE", HTTP_METHOD_DELETE}, {"OPTIONS", HTTP_METHOD_OPTIONS},
      {"PATCH", HTTP_METHOD_PATCH},   {"CONNECT", HTTP_METHOD_CONNECT},
      {"TRACE", HTTP_METHOD_TRACE},
  };
  /* Methods are case-sensitive (RFC 9110 9.1): "get" is some other one. */
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strlen(known[i].name) == n && memcmp(known[i].name, m, n) == 0)
      return known[i].id;
  return HTTP_METHOD_OTHER;
}

/* Checks the request line starting at buf[start], which ends (CR or LF) at
 * `eol`; fills the request-line fields of `req` when it is given. Returns
 * 0 or a negated status. */
static int parse_request_line(const char *buf, size_t start, size_t eol,
                              http_request_t *req) {
  size_t i = start;
  while (i < eol && is_tchar((unsigned char)buf[i]))
    i++;
  if (i == start || i == eol || buf[i] != ' ')
    return -400;
  size_t method_end = i++;
  size_t target_start = i;
  while (i < eol && (unsigned char)buf[i] > 0x20 &&
         (unsigned char)buf[i] < 0x7f)
    i++;
  if (i == target_start || i == eol || buf[i] != ' ')
    return -400;
  size_t target_end = i++;
  /* "HTTP/" DIGIT "." DIGIT and nothing after it. */
  if (eol - i != 8 || memcmp(buf + i, "HTTP/", 5) != 0 || buf[i + 6] != '.')
    return -400;
  char major = buf[i + 5], minor = buf[i + 7];
  if (major < '0' || major > '9' || minor < '0' || minor > '9')
    return -400;
  if (major != '1' || (minor != '0' && minor != '1'))
    return -505;
  if (req != NULL) {
    req->method = buf + start;
    req->method_len = method_end - start;
    req->method_id = method_id(req->method, req->method_len);
    req->target = buf + target_start;
    req->target_len = target_end - target_start;
    req->minor_version = minor - '0';
  }
  return 0;
}

/* Content-Length: 1*DIGIT, saturating above the ceiling (any value there
 * is over every body limit, so its exact size does not matter). */
static bool parse_length(const char *v, size_t n, size_t *out) {
  if (n == 0)
    return false;
  size_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return false;
    if (x <= HTTP_LIMIT_CEILING)
      x = x * 10 + (size_t)(v[i] - '0');
  }
  *out = x > HTTP_LIMIT_CEILING ? (size_t)HTTP_LIMIT_CEILING + 1 : x;
  return true;
}

/* Connection: a comma-separated list of tokens; only two matter here. */
static void parse_connection(const char *v, size_t n, head_t *h) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    size_t s = i;
    while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
      i++;
    if (eq_nocase(v + s, i - s, "close"))
      h->conn_close = true;
    else if (eq_nocase(v + s, i - s, "keep-alive"))
      h->conn_keep_alive = true;
  }
}

/* Records what a field means for framing and the connection. Returns 0 or
 * a negated status. */
static int apply_header(const http_header_t *f, head_t *h) {
  if (eq_nocase(f->name, f->name_len, "content-length")) {
    size_t n;
    if (!parse_length(f->value, f->value_len, &n))
      return -400;
    if (h->has_length && n != h->content_length)
      return -400;
    h->has_length = true;
    h->content_length = n;
  } else if (eq_nocase(f->name, f->name_len, "transfer-encoding")) {
    h->has_te = true;
  } else if (eq_nocase(f->name, f->name_len, "host")) {
    h->hosts++;
  } else if (eq_nocase(f->name, f->name_len, "connection")) {
    parse_connection(f->value, f->value_len, h);
  } else if (eq_nocase(f->name, f->name_len, "expect")) {
    if (eq_nocase(f->value, f->value_len, "100-continue"))
      h->expect_continue = true;
  }
  return 0;
}

/* Parses the complete head buf[start..head_len) (the request line, fields
 * and the blank line) into `req`. Returns 0 or a negated status. */
static int parse_head(const char *buf, size_t start, size_t head_len,
                      http_request_t *req, head_t *h) {
  size_t next = 0;
  size_t eol = line_end(buf, head_len, start, &next);
  if (eol >= head_len)
    return -400;
  int rc = parse_request_line(buf, start, eol, req);
  if (rc != 0)
    return rc;
  *h = (head_t){0};
  req->header_count = 0;
  for (;;) {
    size_t i = next;
    eol = line_end(buf, head_len, i, &next);
    if (eol >= head_len)
      return -400; /* a bare CR: head_len itself ends with a line feed */
    if (eol == i)
      break; /* the blank line */
    /* A field line starting with whitespace is obs-fold (RFC 9112 5.2). */
    size_t name_end = i;
    while (name_end < eol && is_tchar((unsigned char)buf[name_end]))
      name_end++;
    if (name_end == i || name_end == eol || buf[name_end] != ':')
      return -400;
    size_t v = name_end + 1;
    while (v < eol && (buf[v] == ' ' || buf[v] == '\t'))
      v++;
    size_t vend = eol;
    for (size_t k = v; k < eol; k++)
      if (!is_value_char((unsigned char)buf[k]))
        return -400;
    while (vend > v && (buf[vend - 1] == ' ' || buf[vend - 1] == '\t'))
      vend--;
    if (req->header_count == req->headers_cap)
      return -431;
    http_header_t *f = &req->headers[req->header_count++];
    f->name = buf + i;
    f->name_len = name_end - i;
    f->value = buf + v;
    f->value_len = vend - v;
    rc = apply_header(f, h);
    if (rc != 0)
      return rc;
  }
  if (req->minor_version == 1 ? h->hosts != 1 : h->hosts > 1)
    return -400;
  if (h->has_te)
    return -501;
  req->content_length = h->content_length;
  req->expect_continue = h->expect_continue;
  req->keep_alive = req->minor_version == 1
                        ? !h->conn_close
                        : h->conn_keep_alive && !h->conn_close;
  return 0;
}

/* ===== Parsing =========================================================== */

void http_parser_init(http_parser_t *p) {
  *p = (http_parser_t){0};
}

/* The index after the empty lines at the front of buf, or len + 1 when
 * they hold a bare CR; a trailing lone CR stays (its LF may come next). */
static size_t skip_empty_lines(const char *buf, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (buf[i] == '\n') {
      i++;
    } else if (buf[i] == '\r') {
      if (i + 1 == len)
        break;
      if (buf[i + 1] != '\n')
        return len + 1;
      i += 2;
    } else {
      break;
    }
  }
  return i;
}

/* The end of the head: the index after the line feed of its blank line, or
 * 0 when buf[from..len) does not hold it. `from` is past the request's
 * first character, so the request line is never taken for a blank line. */
static size_t find_head_end(const char *buf, size_t len, size_t from) {
  for (size_t i = from; i < len; i++) {
    if (buf[i] != '\n')
      continue;
    if (i + 1 < len && buf[i + 1] == '\n')
      return i + 2;
    if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
      return i + 3;
  }
  return 0;
}

/* While the head is incomplete: refuses what is already wrong. */
static int check_partial(http_parser_t *p, const char *buf, size_t len,
                         size_t start) {
  if (p->line_checked)
    return 0;
  size_t next;
  size_t eol = line_end(buf, len, start, &next);
  if (eol > len)
    return -400;
  if (eol == len) {
    /* No line end yet: the method so far must be a token, and the line
     * must not start with whitespace. */
    for (size_t i = start; i < len && buf[i] != ' '; i++)
      if (!is_tchar((unsigned char)buf[i]))
        return -400;
    if (start < len && buf[start] == ' ')
      return -400;
    return 0;
  }
  int rc = parse_request_line(buf, start, eol, NULL);
  if (rc == 0)
    p->line_checked = true;
  return rc;
}

int http_parse_request(http_parser_t *p, const char *buf, size_t len,
                       const http_limits_t *limits, http_request_t *req) {
  size_t max_head = HTTP_DEFAULT_MAX_HEADER_BYTES;
  size_t max_body = HTTP_DEFAULT_MAX_BODY_BYTES;
  if (limits != NULL && limits->max_header_bytes != 0)
    max_head = limits->max_header_bytes;
  if (limits != NULL && limits->max_body_bytes != 0)
    max_body = limits->max_body_bytes;
  if (max_head > HTTP_LIMIT_CEILING)
    max_head = HTTP_LIMIT_CEILING;
  if (max_body > HTTP_LIMIT_CEILING)
    max_body = HTTP_LIMIT_CEILING;

  /* The head was complete and valid at an earlier call: only the body is
   * awaited, and the head need not be looked at until it is all there. */
  if (p->head_len != 0 && len < p->head_len + p->body_len)
    return HTTP_PARSE_INCOMPLETE;

  size_t start = skip_empty_lines(buf, len);
  if (start > len)
    return -400;
  /* A lone CR after the empty lines may be the start of one more. */
  if (start + 1 == len && buf[start] == '\r')
    return len >= max_head ? -431 : HTTP_PARSE_INCOMPLETE;
  size_t head_len = p->head_len;
  if (head_len == 0) {
    size_t from = p->scanned > start ? p->scanned : start;
    head_len = start < len ? find_head_end(buf, len, from) : 0;
    if (head_len == 0) {
      /* Resume two bytes back: a "\n\r" pair may be completed by the next
       * byte. */
      p->scanned = len >= 2 ? len - 2 : 0;
      int rc = check_partial(p, buf, len, start);
      if (rc != 0)
        return rc;
      if (len >= max_head)
        return -431;
      return HTTP_PARSE_INCOMPLETE;
    }
    if (head_len > max_head) {
      /* Report what a shorter read would have: a bad request line is
       * found before the size, whichever read brings the excess. */
      int rc = check_partial(p, buf, len, start);
      return rc != 0 ? rc : -431;
    }
  }

  head_t h;
  int rc = parse_head(buf, start, head_len, req, &h);
  if (rc != 0)
    return rc;
  if (h.content_length > max_body)
    return -413;
  if (len - head_len < h.content_length) {
    p->head_len = head_len;
    p->body_len = h.content_length;
    p->expect = h.expect_continue;
    return HTTP_PARSE_INCOMPLETE;
  }
  req->body = h.content_length != 0 ? buf + head_len : NULL;
  size_t total = head_len + h.content_length;
  http_parser_init(p);
  return (int)total; /* at most 2 * HTTP_LIMIT_CEILING, below INT_MAX */
}

bool http_parser_take_continue(http_parser_t *p) {
  if (p->head_len == 0 || !p->expect || p->continue_sent)
    return false;
  p->continue_sent = true;
  return true;
}

const http_header_t *http_request_header(const http_request_t *req,
                                         const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < req->header_count; i++) {
    const http_header_t *f = &req->headers[i];
    if (f->name_len != n)
      continue;
    size_t k = 0;
    while (k < n &&
           lower((unsigned char)f->name[k]) == lower((unsigned char)name[k]))
      k++;
    if (k == n)
      return f;
  }
  return NULL;
}

/* ===== Routing and responses ============================================= */

http_route_t http_route(const http_request_t *req) {
  size_t n = 0;
  while (n < req->target_len && req->target[n] != '?')
    n++;
  bool hello = n == 1 && req->target[0] == '/';
  bool stats = n == 6 && memcmp(req->target, "/stats", 6) == 0;
  if (!hello && !stats)
    return HTTP_ROUTE_NOT_FOUND;
  if (req->method_id != HTTP_METHOD_GET && req->method_id != HTTP_METHOD_HEAD)
    return HTTP_ROUTE_BAD_METHOD;
  return hello ? HTTP_ROUTE_HELLO : HTTP_ROUTE_STATS;
}

const char *http_status_reason(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 413:
    return "Content Too Large";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 503:
    return "Service Unavailable";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Unknown";
  }
}

/* Appends to out[0..cap), counting what would not fit. */
typedef struct writer_s {
  char *out;
  size_t cap;
  size_t len;
} writer_t;

static void put(writer_t *w, const char *s, size_t n) {
  if (w->len <= w->cap && n <= w->cap - w->len)
    memcpy(w->out + w->len, s, n);
  w->len += n;
}

static void puts_(writer_t *w, const char *s) {
  put(w, s, strlen(s));
}

static void put_uint(writer_t *w, size_t v) {
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  put(w, tmp + i, sizeof tmp - i);
}

size_t http_response_write(char *out, size_t cap, int status,
                           const char *content_type, const char *body,
                           size_t body_len, bool keep_alive,
                           const char *extra_headers, bool head_only) {
  writer_t w = {out, cap, 0};
  puts_(&w, "HTTP/1.1 ");
  put_uint(&w, (size_t)(status >= 0 ? status : 500));
  puts_(&w, " ");
  puts_(&w, http_status_reason(status));
  puts_(&w, "\r\nServer: isle\r\n");
  if (content_type != NULL) {
    puts_(&w, "Content-Type: ");
    puts_(&w, content_type);
    puts_(&w, "\r\n");
  }
  /* HEAD answers carry the length the GET body would have (RFC 9110 9.3.2). */
  puts_(&w, "Content-Length: ");
  put_uint(&w, body_len);
  puts_(&w, keep_alive ? "\r\nConnection: keep-alive\r\n"
                       : "\r\nConnection: close\r\n");
  if (extra_headers != NULL)
    puts_(&w, extra_headers);
  puts_(&w, "\r\n");
  if (!head_only && body_len != 0)
    put(&w, body, body_len);
  return w.len;
}

size_t http_respond(const http_request_t *req, http_route_t route, char *out,
                    size_t cap) {
  static const char hello[] = "Hello, World!";
  static const char not_found[] = "Not Found\n";
  static const char bad_method[] = "Method Not Allowed\n";
  bool head = req->method_id == HTTP_METHOD_HEAD;
  switch (route) {
  case HTTP_ROUTE_HELLO:
    return http_response_write(out, cap, 200, "text/plain", hello,
                               sizeof hello - 1, req->keep_alive, NULL, head);
  case HTTP_ROUTE_NOT_FOUND:
    return http_response_write(out, cap, 404, "text/plain", not_found,
                               sizeof not_found - 1, req->keep_alive, NULL,
                               head);
  case HTTP_ROUTE_BAD_METHOD:
    return http_response_write(out, cap, 405, "text/plain", bad_method,
                               sizeof bad_method - 1, req->keep_alive,
                               "Allow: GET, HEAD\r\n", head);
  case HTTP_ROUTE_STATS:
  default:
    return 0;
  }
}

size_t http_respond_error(int status, char *out, size_t cap) {
  const char *reason = http_status_reason(status);
  char body[64];
  writer_t w = {body, sizeof body, 0};
  puts_(&w, reason);
  puts_(&w, "\n");
  /* The longest reason is 31 bytes: the body always fits. */
  return http_response_write(out, cap, status, "text/plain", body, w.len, false,
                             NULL, false);
}
