/* isle — MIT licensed. */
/*
 * libFuzzer target for the RESP2 parser and the commands of samples/kv.
 *
 * Each input is a connection's byte stream: commands are parsed one after
 * another (from a buffer of the input's exact size, so ASan sees any read
 * past it) and every command is run against one keyspace, with the clock
 * moving by an amount the input chooses, so that expiry paths are taken.
 * Each command is also parsed a second time, fed in two pieces, and must
 * parse the same. At the end the keyspace is freed and the thread's isle
 * heap must hold exactly what it held before: LeakSanitizer does not see
 * isle_malloc blocks, so this is the leak check for keys, values, tables
 * and reply buffers.
 */
#include <stdint.h> /* uint8_t */
#include <stdlib.h> /* malloc, abort */
#include <string.h> /* memcpy, memcmp */

#include <isle.h>

#include "kv_cmd.h"
#include "resp.h"

#define ARGS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok)
    abort();
}

/* Parses the front of a private copy of buf[0..len) in two calls, the
 * first seeing `cut` bytes; compares with the whole parse. */
static void check_split(const char *orig, size_t len, size_t cut,
                        resp_status_t want, size_t want_argc,
                        size_t want_consumed, const resp_arg_t *want_argv,
                        const resp_limits_t *lim) {
  char *a = malloc(cut + 1), *b = malloc(len + 1);
  check(a != NULL && b != NULL);
  memcpy(a, orig, cut);
  memcpy(b, orig, len);
  resp_parser_t p;
  resp_parser_init(&p);
  resp_arg_t argv[ARGS];
  size_t argc = 0, consumed = 0;
  resp_status_t rc = resp_parse(&p, a, cut, lim, argv, ARGS, &argc, &consumed);
  if (rc == RESP_INCOMPLETE)
    rc = resp_parse(&p, b, len, lim, argv, ARGS, &argc, &consumed);
  /* The first piece alone may already hold a whole command or an error,
   * and that must then be the same command or error. */
  check(rc == want);
  if (rc == RESP_COMMAND) {
    check(argc == want_argc && consumed == want_consumed);
    for (size_t i = 0; i < argc; i++)
      check(argv[i].len == want_argv[i].len &&
            memcmp(argv[i].ptr, want_argv[i].ptr, argv[i].len) == 0);
  }
  free(a);
  free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  isle_heap_stats_t before, after;
  check(isle_heap_stats_self(&before) == 0);
  resp_limits_t lim = {.max_bulk_len = 256, .max_inline_len = 512};
  uint8_t tick = data[0], cut_seed = data[1];
  size_t len = size - 2;
  char *buf = malloc(len + 1);
  char *pristine = malloc(len + 1);
  check(buf != NULL && pristine != NULL);
  memcpy(buf, data + 2, len);
  memcpy(pristine, data + 2, len);

  kv_keyspace_t *ks = kv_keyspace_new();
  check(ks != NULL);
  kv_env_t env = {.now_ms = 1000};
  kv_buf_t out;
  kv_buf_init(&out);
  resp_parser_t p;
  resp_parser_init(&p);
  resp_arg_t argv[ARGS];
  size_t off = 0;
  for (int guard = 0; guard < 10000; guard++) {
    size_t argc = 0, consumed = 0;
    size_t left = len - off;
    resp_status_t rc =
        resp_parse(&p, buf + off, left, &lim, argv, ARGS, &argc, &consumed);
    size_t cut = left != 0 ? cut_seed % (left + 1) : 0;
    /* The split parse starts from the unmodified bytes: inline parsing
     * unescapes in place. */
    check_split(pristine + off, left, cut, rc, argc, consumed, argv, &lim);
    if (rc == RESP_ERROR) {
      kv_reply_protocol_error(&out, &p);
      break;
    }
    if (rc == RESP_INCOMPLETE)
      break;
    check(consumed > 0 && consumed <= left && argc <= ARGS);
    for (size_t i = 0; i < argc; i++)
      check(argv[i].ptr >= buf + off &&
            argv[i].ptr + argv[i].len <= buf + off + consumed);
    if (argc > 0) {
      size_t mark = out.len;
      kv_exec(ks, argv, argc, &env, &out);
      check(out.failed || out.len > mark); /* one reply per command */
    }
    kv_keyspace_expire_some(ks, env.now_ms, 4);
    env.now_ms += tick;
    off += consumed;
  }
  kv_buf_deinit(&out);
  kv_keyspace_free(ks);
  free(buf);
  free(pristine);
  check(isle_heap_stats_self(&after) == 0);
  check(after.live_bytes == before.live_bytes &&
        after.live_objects == before.live_objects);
  return 0;
}
