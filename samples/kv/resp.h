/* isle — MIT licensed. */
/*
 * The request side of RESP2, the Redis protocol, for the key-value sample:
 * an incremental parser of commands, which clients send either as arrays of
 * bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", what redis-cli and
 * redis-benchmark send) or as inline lines ("GET k\r\n", what a person
 * types into telnet; quoting as redis-cli's and Redis's sdssplitargs).
 *
 * The caller keeps the received, unconsumed bytes at the front of a buffer
 * and calls resp_parse after each read, with the same parser and the same
 * argv array each time. The answer is one of:
 *   RESP_COMMAND     one command: *argc arguments in argv, *consumed bytes
 *                    taken; argc may be 0 (an empty line, "*0"), which the
 *                    caller skips as Redis does;
 *   RESP_INCOMPLETE  read more and call again with all the bytes;
 *   RESP_ERROR       a protocol error: reply "-ERR " resp_parser_error(p)
 *                    and close the connection, as Redis does.
 * Arguments point into the caller's buffer. The parser remembers the
 * offsets of the arguments already parsed, not pointers, so the caller may
 * move or grow its buffer between calls, and a command arriving a byte at a
 * time costs linear time. Inline commands are unescaped in place, so the
 * buffer is not const.
 *
 * Limits, with Redis's messages: more arguments than argv holds ("invalid
 * multibulk length"), a bulk string longer than max_bulk_len ("invalid bulk
 * length"), an inline line longer than max_inline_len ("too big inline
 * request"). So one command never needs more than about argv_cap *
 * (max_bulk_len + 32) bytes of buffer.
 *
 * Threads: reentrant; a parser belongs to one connection.
 */
#ifndef ISLE_SAMPLES_RESP_H
#define ISLE_SAMPLES_RESP_H

#include <stddef.h> /* size_t */

#ifdef __cplusplus
extern "C" {
#endif

/* ===== Constants and types ============================================== */

#define RESP_DEFAULT_MAX_BULK_LEN (16u * 1024 * 1024)
#define RESP_DEFAULT_MAX_INLINE_LEN (64u * 1024) /* Redis's as well */

typedef enum resp_status_e {
  RESP_ERROR = -1,
  RESP_INCOMPLETE = 0,
  RESP_COMMAND = 1
} resp_status_t;

/* One argument. `ptr` and `len` are public (read-only) once resp_parse
 * answered RESP_COMMAND; `off` is the parser's. Callers that build an argv
 * by hand (tests, the sharding helpers) set ptr and len only. */
typedef struct resp_arg_s {
  const char *ptr;
  size_t len;
  size_t off; /* private: offset of the bytes in the buffer */
} resp_arg_t;

typedef struct resp_limits_s {
  size_t max_bulk_len;   /* 0: RESP_DEFAULT_MAX_BULK_LEN */
  size_t max_inline_len; /* 0: RESP_DEFAULT_MAX_INLINE_LEN */
} resp_limits_t;

/* Per-connection state. Private but for the error text; resp_parser_init
 * before the first call; a complete command resets it. */
typedef struct resp_parser_s {
  size_t pos;      /* bytes of the current command parsed so far */
  size_t argc;     /* arguments of a multibulk command parsed so far */
  long long nargs; /* its announced count; -1 before the "*" line */
  size_t scanned;  /* inline: bytes searched for the line feed so far */
  char error[80];  /* after RESP_ERROR: "Protocol error: ..." */
} resp_parser_t;

/* ===== Parsing — any thread, one parser per connection ================== */

/* Resets `p` for a new connection. Can't fail. */
void resp_parser_init(resp_parser_t *p);

/* Parses the command at the front of buf[0..len) into argv[0..argv_cap)
 * (argv_cap >= 1), as described at the top of this file. `limits` may be
 * NULL for the defaults. On RESP_COMMAND sets *argc and *consumed and
 * resets `p`; on the other answers they are unspecified. Ownership:
 * argv's pointers borrow `buf`. */
resp_status_t resp_parse(resp_parser_t *p, char *buf, size_t len,
                         const resp_limits_t *limits, resp_arg_t *argv,
                         size_t argv_cap, size_t *argc, size_t *consumed);

/* After RESP_ERROR: the message, "Protocol error: ..." without "-ERR" or
 * line end. Ownership: inside `p`. */
const char *resp_parser_error(const resp_parser_t *p);

/* Redis's string2ll: an optional '-', then digits with no leading zero (or
 * "0" alone), no spaces, no '+', within long long. The rule every integer
 * argument of the protocol and the commands obeys. Returns 1 and sets *out,
 * or 0. */
int resp_parse_ll(const char *s, size_t len, long long *out);

#ifdef __cplusplus
}
#endif
#endif /* ISLE_SAMPLES_RESP_H */
