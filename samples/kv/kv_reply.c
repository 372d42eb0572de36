/* isle — MIT licensed. */
/*
 * The reply buffer of the key-value sample and the RESP2 replies written
 * into it (see kv_cmd.h for the contracts), with the small appenders the
 * commands share (kv_internal.h).
 *
 * Threads: reentrant; a buffer is its caller's.
 */
#include <string.h> /* memcpy, strlen */

#include <isle.h>

#include "kv_internal.h"

/* ===== Reply buffer ====================================================== */

void kv_buf_init(kv_buf_t *b) {
  *b = (kv_buf_t){0};
}

void kv_buf_deinit(kv_buf_t *b) {
  isle_free(b->data);
  kv_buf_init(b);
}

char *kv_buf_take(kv_buf_t *b, size_t *len) {
  char *d = b->len != 0 ? b->data : NULL;
  *len = b->len;
  if (d == NULL)
    isle_free(b->data);
  kv_buf_init(b);
  return d;
}

bool kv_buf_append(kv_buf_t *b, const void *bytes, size_t n) {
  if (b->failed)
    return false;
  if (n > b->cap - b->len) {
    size_t cap = b->cap != 0 ? b->cap : 64;
    while (cap - b->len < n) {
      if (cap > SIZE_MAX / 2) {
        b->failed = true;
        return false;
      }
      cap *= 2;
    }
    char *d = isle_realloc(b->data, cap);
    if (d == NULL) {
      b->failed = true;
      return false;
    }
    b->data = d;
    b->cap = cap;
  }
  if (n != 0)
    memcpy(b->data + b->len, bytes, n);
  b->len += n;
  return true;
}

void kv__append_str(kv_buf_t *b, const char *s) {
  kv_buf_append(b, s, strlen(s));
}

/* Text of a status or error line, with CR and LF as spaces. */
void kv__append_line_text(kv_buf_t *b, const char *s, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\r' || s[i] == '\n') {
      kv_buf_append(b, s + start, i - start);
      kv_buf_append(b, " ", 1);
      start = i + 1;
    }
  }
  kv_buf_append(b, s + start, n - start);
}

void kv__append_ll(kv_buf_t *b, long long v) {
  char tmp[24];
  size_t i = sizeof tmp;
  unsigned long long u =
      v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do {
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0)
    tmp[--i] = '-';
  kv_buf_append(b, tmp + i, sizeof tmp - i);
}

void kv_reply_status(kv_buf_t *b, const char *text) {
  kv_buf_append(b, "+", 1);
  kv__append_line_text(b, text, strlen(text));
  kv_buf_append(b, "\r\n", 2);
}

void kv_reply_error(kv_buf_t *b, const char *text) {
  kv_buf_append(b, "-", 1);
  kv__append_line_text(b, text, strlen(text));
  kv_buf_append(b, "\r\n", 2);
}

void kv_reply_int(kv_buf_t *b, long long v) {
  kv_buf_append(b, ":", 1);
  kv__append_ll(b, v);
  kv_buf_append(b, "\r\n", 2);
}

void kv_reply_bulk(kv_buf_t *b, const char *s, size_t n) {
  kv_buf_append(b, "$", 1);
  kv__append_ll(b, (long long)n);
  kv_buf_append(b, "\r\n", 2);
  kv_buf_append(b, s, n);
  kv_buf_append(b, "\r\n", 2);
}

void kv_reply_null(kv_buf_t *b) {
  kv_buf_append(b, "$-1\r\n", 5);
}

void kv_reply_array(kv_buf_t *b, size_t count) {
  kv_buf_append(b, "*", 1);
  kv__append_ll(b, (long long)count);
  kv_buf_append(b, "\r\n", 2);
}

void kv_reply_protocol_error(kv_buf_t *b, const resp_parser_t *p) {
  kv_buf_append(b, "-ERR ", 5);
  const char *e = resp_parser_error(p);
  kv__append_line_text(b, e, strlen(e));
  kv_buf_append(b, "\r\n", 2);
}
