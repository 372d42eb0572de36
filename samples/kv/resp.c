/* isle — MIT licensed. */
/*
 * RESP2 request parser (see resp.h for the contract).
 *
 * A multibulk command is parsed one element at a time: the state records
 * how far the parse got (`pos`) and how many arguments it has, and each
 * argument's offset goes into the caller's argv as it is parsed, so a call
 * resumes at the first unparsed element instead of starting over. Pointers
 * are filled in only when the command is complete, from the buffer of that
 * last call. Count lines ("*3", "$5") longer than any valid integer are
 * refused at once rather than searched to the end, so garbage costs O(1)
 * per call there. An inline command is handled only once its line feed is
 * there; the search resumes where the last call stopped.
 *
 * The checks follow Redis 7's processMultibulkBuffer/processInlineBuffer
 * and their messages, except that the two bytes after a bulk string must
 * be CRLF (Redis skips them unread): a client that gets this wrong is out
 * of step with the protocol, and saying so early is kinder than executing
 * its misaligned bytes.
 *
 * Threads: none of its own; no globals.
 */
#include <limits.h> /* INT_MAX, LLONG_MAX */
#include <stdio.h>  /* snprintf */
#include <string.h> /* memchr */

#include "resp.h"

/* ===== Constants ========================================================= */

/* The longest count line worth reading: "-" and 19 digits, with room. */
#define COUNT_LINE_MAX 32

/* ===== Helpers =========================================================== */

static resp_status_t fail(resp_parser_t *p, const char *msg) {
  snprintf(p->error, sizeof p->error, "Protocol error: %s", msg);
  return RESP_ERROR;
}

int resp_parse_ll(const char *s, size_t len, long long *out) {
  if (len == 0 || len > 20)
    return 0;
  size_t i = 0;
  int neg = 0;
  if (s[0] == '-') {
    neg = 1;
    i = 1;
    if (len == 1)
      return 0;
  }
  if (s[i] == '0') {
    if (len == 1) {
      *out = 0;
      return 1;
    }
    return 0; /* leading zero, or "-0" */
  }
  /* Accumulate as a negative number: its range holds LLONG_MIN. */
  long long v = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
    int d = s[i] - '0';
    if (v < (LLONG_MIN + d) / 10)
      return 0;
    v = v * 10 - d;
  }
  if (!neg) {
    if (v == LLONG_MIN)
      return 0;
    v = -v;
  }
  *out = v;
  return 1;
}

/* The count line starting at buf[from] (just after '*' or '$'): on success
 * returns 1 with the value in *value and the index after its CRLF in *next;
 * 0 when the line is not complete yet; -1 when it is too long or does not
 * end in CRLF ("bad"), -2 when its text is not an integer. */
static int count_line(const char *buf, size_t len, size_t from,
                      long long *value, size_t *next) {
  size_t end = from;
  while (end < len && buf[end] != '\r' && buf[end] != '\n') {
    if (end - from >= COUNT_LINE_MAX)
      return -1;
    end++;
  }
  if (end == len)
    return len - from > COUNT_LINE_MAX ? -1 : 0;
  if (buf[end] == '\n')
    return -2; /* bare LF: not a RESP line */
  if (end + 1 == len)
    return 0;
  if (buf[end + 1] != '\n')
    return -2;
  if (!resp_parse_ll(buf + from, end - from, value))
    return -2;
  *next = end + 2;
  return 1;
}

/* sdssplitargs's notion of space (C isspace in the C locale). */
static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

static int hex_val(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Splits buf[0..end) into arguments as Redis's sdssplitargs does
 * (whitespace-separated; "double quotes" with \n \r \t \b \a \\ \" \xHH
 * escapes; 'single quotes' with \' only; a closing quote must be followed
 * by space or the end), unescaping in place: the write index never passes
 * the read index. Returns the argument count, -1 for unbalanced quotes, -2
 * for more than argv_cap arguments. */
static long split_inline(char *buf, size_t end, resp_arg_t *argv,
                         size_t argv_cap) {
  size_t r = 0, argc = 0;
  for (;;) {
    while (r < end && is_space(buf[r]))
      r++;
    if (r == end)
      return (long)argc;
    if (argc == argv_cap)
      return -2;
    size_t w = r, start = r;
    int inq = 0, insq = 0, done = 0;
    while (!done) {
      if (inq) {
        if (r == end)
          return -1;
        if (buf[r] == '\\' && r + 3 < end && buf[r + 1] == 'x' &&
            hex_val(buf[r + 2]) >= 0 && hex_val(buf[r + 3]) >= 0) {
          buf[w++] = (char)(hex_val(buf[r + 2]) * 16 + hex_val(buf[r + 3]));
          r += 3;
        } else if (buf[r] == '\\' && r + 1 < end) {
          r++;
          char c = buf[r];
          switch (c) {
          case 'n':
            c = '\n';
            break;
          case 'r':
            c = '\r';
            break;
          case 't':
            c = '\t';
            break;
          case 'b':
            c = '\b';
            break;
          case 'a':
            c = '\a';
            break;
          default:
            break;
          }
          buf[w++] = c;
        } else if (buf[r] == '"') {
          if (r + 1 < end && !is_space(buf[r + 1]))
            return -1;
          done = 1;
        } else {
          buf[w++] = buf[r];
        }
      } else if (insq) {
        if (r == end)
          return -1;
        if (buf[r] == '\\' && r + 1 < end && buf[r + 1] == '\'') {
          r++;
          buf[w++] = '\'';
        } else if (buf[r] == '\'') {
          if (r + 1 < end && !is_space(buf[r + 1]))
            return -1;
          done = 1;
        } else {
          buf[w++] = buf[r];
        }
      } else {
        if (r == end)
          break;
        if (is_space(buf[r]))
          done = 1;
        else if (buf[r] == '"')
          inq = 1;
        else if (buf[r] == '\'')
          insq = 1;
        else
          buf[w++] = buf[r];
      }
      if (r < end)
        r++;
    }
    argv[argc].ptr = buf + start;
    argv[argc].off = start;
    argv[argc].len = w - start;
    argc++;
  }
}

/* ===== Parsing =========================================================== */

void resp_parser_init(resp_parser_t *p) {
  p->pos = 0;
  p->argc = 0;
  p->nargs = -1;
  p->scanned = 0;
  p->error[0] = '\0';
}

const char *resp_parser_error(const resp_parser_t *p) {
  return p->error;
}

static resp_status_t parse_inline(resp_parser_t *p, char *buf, size_t len,
                                  size_t max_inline, resp_arg_t *argv,
                                  size_t argv_cap, size_t *argc,
                                  size_t *consumed) {
  const char *nl = memchr(buf + p->scanned, '\n', len - p->scanned);
  if (nl == NULL) {
    if (len > max_inline)
      return fail(p, "too big inline request");
    p->scanned = len;
    return RESP_INCOMPLETE;
  }
  size_t at = (size_t)(nl - buf);
  size_t end = at > 0 && buf[at - 1] == '\r' ? at - 1 : at;
  if (end > max_inline)
    return fail(p, "too big inline request");
  long n = split_inline(buf, end, argv, argv_cap);
  if (n == -1)
    return fail(p, "unbalanced quotes in request");
  if (n < 0)
    return fail(p, "too many arguments in inline request");
  *argc = (size_t)n;
  *consumed = at + 1;
  resp_parser_init(p);
  return RESP_COMMAND;
}

resp_status_t resp_parse(resp_parser_t *p, char *buf, size_t len,
                         const resp_limits_t *limits, resp_arg_t *argv,
                         size_t argv_cap, size_t *argc, size_t *consumed) {
  size_t max_bulk = RESP_DEFAULT_MAX_BULK_LEN;
  size_t max_inline = RESP_DEFAULT_MAX_INLINE_LEN;
  if (limits != NULL && limits->max_bulk_len != 0)
    max_bulk = limits->max_bulk_len;
  if (limits != NULL && limits->max_inline_len != 0)
    max_inline = limits->max_inline_len;

  if (p->nargs < 0) {
    if (len == 0)
      return RESP_INCOMPLETE;
    if (buf[0] != '*')
      return parse_inline(p, buf, len, max_inline, argv, argv_cap, argc,
                          consumed);
    long long n;
    size_t next;
    int rc = count_line(buf, len, 1, &n, &next);
    if (rc == 0)
      return RESP_INCOMPLETE;
    if (rc == -1)
      return fail(p, "too big mbulk count string");
    if (rc < 0 || n > INT_MAX || (n > 0 && (size_t)n > argv_cap))
      return fail(p, "invalid multibulk length");
    if (n <= 0) {
      /* "*0" and "*-1": nothing to run, as in Redis. */
      *argc = 0;
      *consumed = next;
      resp_parser_init(p);
      return RESP_COMMAND;
    }
    p->nargs = n;
    p->argc = 0;
    p->pos = next;
  }

  while (p->argc < (size_t)p->nargs) {
    size_t pos = p->pos;
    if (pos >= len)
      return RESP_INCOMPLETE;
    if (buf[pos] != '$') {
      char msg[40];
      char c = buf[pos];
      /* Redis turns line breaks in error text into spaces; a NUL would
       * end the text. */
      snprintf(msg, sizeof msg, "expected '$', got '%c'",
               c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
      return fail(p, msg);
    }
    long long blen;
    size_t data;
    int rc = count_line(buf, len, pos + 1, &blen, &data);
    if (rc == 0)
      return RESP_INCOMPLETE;
    if (rc == -1)
      return fail(p, "too big bulk count string");
    if (rc < 0 || blen < 0 || (unsigned long long)blen > max_bulk)
      return fail(p, "invalid bulk length");
    if (len - data < (size_t)blen + 2)
      return RESP_INCOMPLETE;
    if (buf[data + blen] != '\r' || buf[data + blen + 1] != '\n')
      return fail(p, "bulk string not followed by CRLF");
    argv[p->argc].off = data;
    argv[p->argc].len = (size_t)blen;
    p->argc++;
    p->pos = data + (size_t)blen + 2;
  }
  for (size_t i = 0; i < p->argc; i++)
    argv[i].ptr = buf + argv[i].off;
  *argc = p->argc;
  *consumed = p->pos;
  resp_parser_init(p);
  return RESP_COMMAND;
}
