/* isle — MIT licensed. */
/*
 * The commands of samples/kv against a keyspace, through kv_exec: every
 * command with its replies and Redis's error texts, expiry driven by an
 * injected clock, the active expiry sweep, table growth, the reply buffer,
 * out-of-memory answers at the heap limit, and the shard helpers (a split
 * and merged run over three keyspaces must answer as one keyspace does).
 * Each test frees what it made; one checks that the heap is back where it
 * was afterwards.
 */
#include <setjmp.h> /* cmocka needs it first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>  /* fprintf, snprintf */
#include <stdlib.h> /* malloc */
#include <string.h> /* strlen */

#include <cmocka.h>

#include <isle.h>

#include "kv_cmd.h"
#include "resp.h"

/* ===== Helpers =========================================================== */

#define MAX_ARGS 64

typedef struct ctx_s {
  kv_keyspace_t *ks;
  kv_env_t env;
  kv_buf_t out;
  char reply[4096]; /* the last reply, NUL-terminated */
} ctx_t;

static int setup(void **state) {
  ctx_t *c = calloc(1, sizeof *c);
  assert_non_null(c);
  c->ks = kv_keyspace_new();
  assert_non_null(c->ks);
  c->env.now_ms = 1000000;
  kv_buf_init(&c->out);
  *state = c;
  return 0;
}

static int teardown(void **state) {
  ctx_t *c = *state;
  kv_keyspace_free(c->ks);
  kv_buf_deinit(&c->out);
  free(c);
  return 0;
}

/* Splits `line` on spaces (no quoting: tests needing spaces in arguments
 * build argv themselves) and runs it. Returns the reply as a string. */
static const char *run_on(ctx_t *c, kv_keyspace_t *ks, const char *line) {
  static char copy[4096];
  resp_arg_t argv[MAX_ARGS];
  size_t argc = 0;
  snprintf(copy, sizeof copy, "%s", line);
  for (char *tok = strtok(copy, " "); tok != NULL; tok = strtok(NULL, " ")) {
    assert_true(argc < MAX_ARGS);
    argv[argc++] = (resp_arg_t){tok, strlen(tok), 0};
  }
  c->out.len = 0;
  kv_exec(ks, argv, argc, &c->env, &c->out);
  assert_false(c->out.failed);
  assert_true(c->out.len < sizeof c->reply);
  memcpy(c->reply, c->out.data, c->out.len);
  c->reply[c->out.len] = '\0';
  return c->reply;
}

static const char *run(ctx_t *c, const char *line) {
  return run_on(c, c->ks, line);
}

#define EXPECT(c, line, want) assert_string_equal(run((c), (line)), (want))

/* ===== Connection and generic commands =================================== */

static void test_kv_ping_echo_select(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "PING", "+PONG\r\n");
  EXPECT(c, "ping hello", "$5\r\nhello\r\n");
  EXPECT(c, "PING a b",
         "-ERR wrong number of arguments for 'ping' command\r\n");
  EXPECT(c, "ECHO hi", "$2\r\nhi\r\n");
  EXPECT(c, "ECHO", "-ERR wrong number of arguments for 'echo' command\r\n");
  EXPECT(c, "SELECT 0", "+OK\r\n");
  EXPECT(c, "SELECT 1", "-ERR DB index is out of range\r\n");
  EXPECT(c, "SELECT x", "-ERR value is not an integer or out of range\r\n");
}

static void test_kv_unknown_command_and_arity_errors(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "FOO",
         "-ERR unknown command 'FOO', with args beginning with: \r\n");
  EXPECT(c, "foo a bc",
         "-ERR unknown command 'foo', with args beginning with: 'a' 'bc' \r\n");
  EXPECT(c, "GET", "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT(c, "gEt a b", "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT(c, "SET k", "-ERR wrong number of arguments for 'set' command\r\n");
  EXPECT(c, "DEL", "-ERR wrong number of arguments for 'del' command\r\n");
  EXPECT(c, "MSET a", "-ERR wrong number of arguments for 'mset' command\r\n");
  EXPECT(c, "MSET a 1 b",
         "-ERR wrong number of arguments for 'mset' command\r\n");
  EXPECT(c, "DBSIZE x",
         "-ERR wrong number of arguments for 'dbsize' command\r\n");
  /* Line breaks in a name cannot break the reply's framing, and long
   * arguments are cut so the list stays near 128 bytes. */
  resp_arg_t argv[4] = {{"a\r\nb", 4, 0}};
  char big[300];
  memset(big, 'x', sizeof big);
  argv[1] = (resp_arg_t){big, 100, 0};
  argv[2] = (resp_arg_t){big, 300, 0};
  argv[3] = (resp_arg_t){"never", 5, 0};
  c->out.len = 0;
  kv_exec(c->ks, argv, 4, &c->env, &c->out);
  char want[512];
  int n = snprintf(want, sizeof want,
                   "-ERR unknown command 'a  b', with args beginning with: "
                   "'%.100s' '%.25s' \r\n",
                   big, big);
  assert_int_equal(c->out.len, (size_t)n);
  assert_memory_equal(c->out.data, want, c->out.len);
}

static void test_kv_command_and_config_satisfy_clients(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "COMMAND", "*0\r\n");
  EXPECT(c, "COMMAND DOCS", "*0\r\n");
  char want[32];
  snprintf(want, sizeof want, ":%zu\r\n", kv_command_count());
  EXPECT(c, "command count", want);
  EXPECT(c, "COMMAND FOO",
         "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n");
  /* What redis-benchmark asks before it starts. */
  EXPECT(c, "CONFIG GET save", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  EXPECT(c, "CONFIG GET appendonly", "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
  EXPECT(c, "config get nothing-here", "*0\r\n");
  EXPECT(c, "CONFIG GET",
         "-ERR wrong number of arguments for 'config|get' "
         "command\r\n");
  EXPECT(c, "CONFIG SET save x",
         "-ERR CONFIG SET is not supported by this server\r\n");
  EXPECT(c, "CONFIG RESETSTAT", "+OK\r\n");
  EXPECT(c, "CONFIG X", "-ERR unknown subcommand 'X'. Try CONFIG HELP.\r\n");
  EXPECT(c, "CONFIG",
         "-ERR wrong number of arguments for 'config' command\r\n");
}

static void info_hook(void *arg, kv_buf_t *text) {
  const char *line = arg;
  kv_buf_append(text, line, strlen(line));
}

static void test_kv_info_has_keyspace_and_hook(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "SET a 1", "+OK\r\n");
  EXPECT(c, "SET b 2 EX 10", "+OK\r\n");
  c->env.info = info_hook;
  c->env.info_arg = "# Threads\r\nworker0_heap_bytes:123\r\n";
  const char *r = run(c, "INFO");
  assert_true(r[0] == '$');
  assert_non_null(strstr(r, "redis_version:"));
  assert_non_null(strstr(r, "# Threads\r\nworker0_heap_bytes:123\r\n"));
  assert_non_null(strstr(r, "db0:keys=2,expires=1,avg_ttl=0\r\n"));
  /* The bulk length is that of the text. */
  size_t len = (size_t)atol(r + 1);
  const char *body = strstr(r, "\r\n") + 2;
  assert_int_equal(strlen(body), len + 2);
}

/* ===== Strings =========================================================== */

static void test_kv_set_get_overwrite(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "GET k", "$-1\r\n");
  EXPECT(c, "SET k v1", "+OK\r\n");
  EXPECT(c, "GET k", "$2\r\nv1\r\n");
  /* Longer, then shorter again: both the new-block and in-place paths. */
  EXPECT(c, "SET k a-much-longer-value-than-before-to-need-a-bigger-block",
         "+OK\r\n");
  EXPECT(c, "GET k",
         "$54\r\na-much-longer-value-than-before-to-need-a-bigger-block\r\n");
  EXPECT(c, "SET k s", "+OK\r\n");
  EXPECT(c, "GET k", "$1\r\ns\r\n");
  EXPECT(c, "DBSIZE", ":1\r\n");
  /* Binary keys and values, and an empty value. */
  resp_arg_t argv[3] = {{"SET", 3, 0}, {"k\0\r\n", 4, 0}, {"", 0, 0}};
  c->out.len = 0;
  kv_exec(c->ks, argv, 3, &c->env, &c->out);
  argv[0] = (resp_arg_t){"GET", 3, 0};
  c->out.len = 0;
  kv_exec(c->ks, argv, 2, &c->env, &c->out);
  assert_int_equal(c->out.len, 6);
  assert_memory_equal(c->out.data, "$0\r\n\r\n", 6);
}

static void test_kv_set_nx_xx_get(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "SET k v XX", "$-1\r\n");
  EXPECT(c, "EXISTS k", ":0\r\n");
  EXPECT(c, "SET k v NX", "+OK\r\n");
  EXPECT(c, "SET k w NX", "$-1\r\n");
  EXPECT(c, "GET k", "$1\r\nv\r\n");
  EXPECT(c, "SET k w xx", "+OK\r\n");
  EXPECT(c, "GET k", "$1\r\nw\r\n");
  EXPECT(c, "SET k x GET", "$1\r\nw\r\n");
  EXPECT(c, "SET new y GET", "$-1\r\n");
  EXPECT(c, "GET new", "$1\r\ny\r\n");
  /* NX with GET on an existing key: the old value, nothing written. */
  EXPECT(c, "SET k z NX GET", "$1\r\nx\r\n");
  EXPECT(c, "GET k", "$1\r\nx\r\n");
}

static void test_kv_set_syntax_and_expire_errors(void **state) {
  ctx_t *c = *state;
  static const char *syntax[] = {
      "SET k v NX XX",     "SET k v XX NX",        "SET k v EX",
      "SET k v EX 1 PX 1", "SET k v KEEPTTL EX 1", "SET k v EX 1 KEEPTTL",
      "SET k v FOO",       "SET k v EXAT 5 EX 1",
  };
  for (size_t i = 0; i < sizeof syntax / sizeof syntax[0]; i++)
    EXPECT(c, syntax[i], "-ERR syntax error\r\n");
  EXPECT(c, "SET k v EX x", "-ERR value is not an integer or out of range\r\n");
  EXPECT(c, "SET k v PX 1.5",
         "-ERR value is not an integer or out of range\r\n");
  EXPECT(c, "SET k v EX 0", "-ERR invalid expire time in 'set' command\r\n");
  EXPECT(c, "SET k v PX -5", "-ERR invalid expire time in 'set' command\r\n");
  EXPECT(c, "SET k v EX 9223372036854775807",
         "-ERR invalid expire time in 'set' command\r\n");
  EXPECT(c, "SET k v PX 9223372036854775000",
         "-ERR invalid expire time in 'set' command\r\n");
  EXPECT(c, "DBSIZE", ":0\r\n"); /* none of them wrote */
}

static void test_kv_set_expiry_with_injected_clock(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "SET a 1 EX 10", "+OK\r\n");
  EXPECT(c, "SET b 1 PX 1500", "+OK\r\n");
  EXPECT(c, "SET c 1 PXAT 1002000", "+OK\r\n"); /* now is 1,000,000 ms */
  EXPECT(c, "SET d 1 EXAT 1003", "+OK\r\n");
  EXPECT(c, "SET e 1 exat 999", "+OK\r\n"); /* in the past: gone at once */
  EXPECT(c, "EXISTS e", ":0\r\n");
  EXPECT(c, "TTL a", ":10\r\n");
  EXPECT(c, "PTTL b", ":1500\r\n");
  EXPECT(c, "TTL b", ":2\r\n"); /* 1.5 s rounds to 2, as in Redis */
  EXPECT(c, "PTTL c", ":2000\r\n");
  EXPECT(c, "PTTL d", ":3000\r\n");
  c->env.now_ms += 1499;
  EXPECT(c, "GET b", "$1\r\n1\r\n");
  EXPECT(c, "TTL b", ":0\r\n");
  c->env.now_ms += 1;
  EXPECT(c, "GET b", "$-1\r\n");
  EXPECT(c, "TTL b", ":-2\r\n");
  c->env.now_ms += 500;
  EXPECT(c, "EXISTS c", ":0\r\n");
  EXPECT(c, "EXISTS a d", ":2\r\n");
  /* KEEPTTL keeps it; a plain SET drops it. */
  EXPECT(c, "SET a 2 KEEPTTL", "+OK\r\n");
  EXPECT(c, "TTL a", ":8\r\n");
  EXPECT(c, "SET a 3", "+OK\r\n");
  EXPECT(c, "TTL a", ":-1\r\n");
  EXPECT(c, "TTL missing", ":-2\r\n");
}

static void test_kv_del_exists_count_arguments(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "MSET a 1 b 2 c 3", "+OK\r\n");
  EXPECT(c, "EXISTS a b missing", ":2\r\n");
  EXPECT(c, "EXISTS a a a", ":3\r\n"); /* each argument counts, as in Redis */
  EXPECT(c, "DEL a missing a", ":1\r\n");
  EXPECT(c, "DEL b c", ":2\r\n");
  EXPECT(c, "DBSIZE", ":0\r\n");
}

static void test_kv_incr_decr(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "INCR n", ":1\r\n");
  EXPECT(c, "INCR n", ":2\r\n");
  EXPECT(c, "DECR n", ":1\r\n");
  EXPECT(c, "DECR m", ":-1\r\n");
  EXPECT(c, "INCRBY n 41", ":42\r\n");
  EXPECT(c, "INCRBY n -50", ":-8\r\n");
  EXPECT(c, "DECRBY n -8", ":0\r\n");
  EXPECT(c, "GET n", "$1\r\n0\r\n");
  EXPECT(c, "INCRBY n x", "-ERR value is not an integer or out of range\r\n");
  EXPECT(c, "INCRBY n",
         "-ERR wrong number of arguments for 'incrby' "
         "command\r\n");
  EXPECT(c, "SET s abc", "+OK\r\n");
  EXPECT(c, "INCR s", "-ERR value is not an integer or out of range\r\n");
  EXPECT(c, "SET s 007", "+OK\r\n");
  EXPECT(c, "INCR s", "-ERR value is not an integer or out of range\r\n");
  EXPECT(c, "SET big 9223372036854775807", "+OK\r\n");
  EXPECT(c, "INCR big", "-ERR increment or decrement would overflow\r\n");
  EXPECT(c, "INCRBY big -9223372036854775807", ":0\r\n");
  EXPECT(c, "DECRBY big -9223372036854775808",
         "-ERR decrement would overflow\r\n");
  EXPECT(c, "SET low -9223372036854775808", "+OK\r\n");
  EXPECT(c, "DECR low", "-ERR increment or decrement would overflow\r\n");
  /* INCR keeps the key's expiry. */
  EXPECT(c, "SET t 5 EX 100", "+OK\r\n");
  EXPECT(c, "INCR t", ":6\r\n");
  EXPECT(c, "TTL t", ":100\r\n");
}

static void test_kv_mget_mset(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "MSET a 1 b 22", "+OK\r\n");
  EXPECT(c, "MGET a missing b", "*3\r\n$1\r\n1\r\n$-1\r\n$2\r\n22\r\n");
  EXPECT(c, "SET x 1 EX 5", "+OK\r\n");
  EXPECT(c, "MSET x 2", "+OK\r\n");
  EXPECT(c, "TTL x", ":-1\r\n"); /* MSET drops expiries like SET */
}

static void test_kv_expire_ttl_and_options(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "EXPIRE missing 10", ":0\r\n");
  EXPECT(c, "SET k v", "+OK\r\n");
  EXPECT(c, "TTL k", ":-1\r\n");
  EXPECT(c, "EXPIRE k 10 XX", ":0\r\n");
  EXPECT(c, "EXPIRE k 10 GT", ":0\r\n"); /* none counts as infinite */
  EXPECT(c, "EXPIRE k 10 NX", ":1\r\n");
  EXPECT(c, "EXPIRE k 20 NX", ":0\r\n");
  EXPECT(c, "EXPIRE k 20 LT", ":0\r\n");
  EXPECT(c, "EXPIRE k 5 LT", ":1\r\n");
  EXPECT(c, "TTL k", ":5\r\n");
  EXPECT(c, "EXPIRE k 30 gt", ":1\r\n");
  EXPECT(c, "PEXPIRE k 2500 XX", ":1\r\n");
  EXPECT(c, "PTTL k", ":2500\r\n");
  EXPECT(c, "EXPIRE k 1 NX XX",
         "-ERR NX and XX, GT or LT options at the "
         "same time are not compatible\r\n");
  EXPECT(c, "EXPIRE k 1 GT LT",
         "-ERR GT and LT options at the same time are not compatible\r\n");
  EXPECT(c, "EXPIRE k 1 FOO", "-ERR Unsupported option FOO\r\n");
  EXPECT(c, "EXPIRE k x", "-ERR value is not an integer or out of range\r\n");
  EXPECT(c, "EXPIRE k 9223372036854775807",
         "-ERR invalid expire time in 'expire' command\r\n");
  EXPECT(c, "PEXPIRE k 9223372036854775807",
         "-ERR invalid expire time in 'pexpire' command\r\n");
  EXPECT(c, "EXPIRE k",
         "-ERR wrong number of arguments for 'expire' "
         "command\r\n");
  /* A time not in the future deletes the key. */
  EXPECT(c, "EXPIRE k 0", ":1\r\n");
  EXPECT(c, "EXISTS k", ":0\r\n");
  EXPECT(c, "SET k v", "+OK\r\n");
  EXPECT(c, "EXPIRE k -10", ":1\r\n");
  EXPECT(c, "TTL k", ":-2\r\n");
}

static void test_kv_dbsize_flushall(void **state) {
  ctx_t *c = *state;
  char line[64];
  for (int i = 0; i < 100; i++) {
    snprintf(line, sizeof line, "SET key:%d %d", i, i);
    EXPECT(c, line, "+OK\r\n");
  }
  EXPECT(c, "DBSIZE", ":100\r\n");
  EXPECT(c, "FLUSHALL", "+OK\r\n");
  EXPECT(c, "DBSIZE", ":0\r\n");
  EXPECT(c, "GET key:1", "$-1\r\n");
  EXPECT(c, "SET a 1", "+OK\r\n");
  EXPECT(c, "FLUSHALL ASYNC", "+OK\r\n");
  EXPECT(c, "FLUSHDB sync", "+OK\r\n");
  EXPECT(c, "FLUSHALL NOW", "-ERR syntax error\r\n");
  EXPECT(c, "FLUSHALL SYNC ASYNC", "-ERR syntax error\r\n");
}

/* ===== Keyspace ========================================================== */

static void test_kv_keyspace_grows_and_finds_every_key(void **state) {
  ctx_t *c = *state;
  char line[64], want[64];
  const int n = 20000;
  for (int i = 0; i < n; i++) {
    snprintf(line, sizeof line, "SET k%d v%d", i, i * 7);
    EXPECT(c, line, "+OK\r\n");
  }
  assert_int_equal(kv_keyspace_size(c->ks), n);
  for (int i = 0; i < n; i++) {
    snprintf(line, sizeof line, "GET k%d", i);
    int len = snprintf(want, sizeof want, "v%d", i * 7);
    char full[80];
    snprintf(full, sizeof full, "$%d\r\n%s\r\n", len, want);
    EXPECT(c, line, full);
  }
  for (int i = 0; i < n; i += 2) {
    snprintf(line, sizeof line, "DEL k%d", i);
    EXPECT(c, line, ":1\r\n");
  }
  assert_int_equal(kv_keyspace_size(c->ks), n / 2);
  EXPECT(c, "EXISTS k1 k2 k3", ":2\r\n");
}

static void test_kv_expire_some_sweeps_expired_keys(void **state) {
  ctx_t *c = *state;
  char line[64];
  for (int i = 0; i < 1000; i++) {
    snprintf(line, sizeof line, "SET k%d v PX %d", i, i < 600 ? 10 : 100000);
    EXPECT(c, line, "+OK\r\n");
  }
  EXPECT(c, "SET forever v", "+OK\r\n");
  assert_int_equal(kv_keyspace_expires(c->ks), 1000);
  c->env.now_ms += 10;
  /* Nothing is removed before it is touched or swept. */
  EXPECT(c, "DBSIZE", ":1001\r\n");
  size_t removed = 0;
  for (int round = 0; round < 10000 && removed < 600; round++)
    removed += kv_keyspace_expire_some(c->ks, c->env.now_ms, 8);
  assert_int_equal(removed, 600);
  EXPECT(c, "DBSIZE", ":401\r\n");
  assert_int_equal(kv_keyspace_expires(c->ks), 400);
  /* Another full sweep finds nothing more. */
  assert_int_equal(kv_keyspace_expire_some(c->ks, c->env.now_ms, 1u << 20), 0);
}

static void
test_kv_out_of_memory_answers_oom_and_keeps_the_old_value(void **state) {
  ctx_t *c = *state;
  EXPECT(c, "SET k small", "+OK\r\n");
  size_t big = 8u * 1024 * 1024;
  char *value = malloc(big);
  assert_non_null(value);
  memset(value, 'v', big);
  isle_heap_global_stats_t g;
  assert_int_equal(isle_heap_stats_global(&g), 0);
  /* A cap at current use: the 8 MiB block needs new spans and fails. */
  isle_heap_set_limit(g.in_use_bytes + 64 * 1024);
  resp_arg_t argv[4] = {
      {"SET", 3, 0}, {"k", 1, 0}, {value, big, 0}, {"GET", 3, 0}};
  c->out.len = 0;
  kv_exec(c->ks, argv, 4, &c->env, &c->out);
  static const char oom[] =
      "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
  bool oom_reply =
      c->out.len == sizeof oom - 1 && memcmp(c->out.data, oom, c->out.len) == 0;
  c->out.len = 0;
  kv_exec(c->ks,
          (resp_arg_t[]){{"MSET", 4, 0},
                         {"a", 1, 0},
                         {"1", 1, 0},
                         {"k", 1, 0},
                         {value, big, 0}},
          5, &c->env, &c->out);
  bool mset_oom =
      c->out.len == sizeof oom - 1 && memcmp(c->out.data, oom, c->out.len) == 0;
  isle_heap_set_limit(0);
  free(value);
  assert_true(oom_reply);
  assert_true(mset_oom);
  EXPECT(c, "GET k", "$5\r\nsmall\r\n");
  EXPECT(c, "GET a", "$1\r\n1\r\n"); /* pairs before the failure stay */
}

static void test_kv_reply_buffer(void **state) {
  kv_buf_t b;
  kv_buf_init(&b);
  size_t len = 1;
  assert_null(kv_buf_take(&b, &len));
  assert_int_equal(len, 0);
  kv_reply_status(&b, "OK\r\nX");
  kv_reply_error(&b, "ERR a\nb");
  kv_reply_int(&b, -9223372036854775807LL - 1);
  kv_reply_bulk(&b, "ab", 2);
  kv_reply_null(&b);
  kv_reply_array(&b, 3);
  for (int i = 0; i < 1000; i++) /* grows past its first block */
    kv_reply_int(&b, i);
  static const char want[] = "+OK  X\r\n-ERR a b\r\n:-9223372036854775808\r\n"
                             "$2\r\nab\r\n$-1\r\n*3\r\n:0\r\n";
  assert_memory_equal(b.data, want, sizeof want - 1);
  char *d = kv_buf_take(&b, &len);
  assert_non_null(d);
  assert_true(len > 1000 * 4);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  isle_free(d);
  kv_buf_deinit(&b);
}

static void test_kv_everything_is_freed(void **state) {
  (void)state;
  isle_heap_stats_t before, after;
  assert_int_equal(isle_heap_stats_self(&before), 0);
  ctx_t *c;
  setup((void **)&c);
  char line[64];
  for (int i = 0; i < 5000; i++) {
    snprintf(line, sizeof line, "SET k%d %0*d EX 100", i, i % 200, 1);
    run(c, line);
  }
  run(c, "INFO");
  run(c, "FLUSHALL");
  for (int i = 0; i < 100; i++) {
    snprintf(line, sizeof line, "INCR k%d", i);
    run(c, line);
  }
  teardown((void **)&c);
  assert_int_equal(isle_heap_stats_self(&after), 0);
  assert_int_equal(after.live_objects, before.live_objects);
  assert_int_equal(after.live_bytes, before.live_bytes);
}

/* ===== Shards ============================================================ */

static void test_kv_key_shard_is_stable_and_spread(void **state) {
  (void)state;
  enum { SHARDS = 4, KEYS = 40000 };
  size_t count[SHARDS] = {0};
  char key[32];
  for (int i = 0; i < KEYS; i++) {
    int n = snprintf(key, sizeof key, "key:%012d", i);
    size_t s = kv_key_shard(key, (size_t)n, SHARDS);
    assert_true(s < SHARDS);
    assert_int_equal(s, kv_key_shard(key, (size_t)n, SHARDS));
    count[s]++;
    assert_int_equal(kv_key_shard(key, (size_t)n, 1), 0);
  }
  /* Each shard within 5% of a quarter: a bad hash puts far more in one. */
  for (int s = 0; s < SHARDS; s++)
    assert_true(count[s] > KEYS / 4 * 95 / 100 &&
                count[s] < KEYS / 4 * 105 / 100);
  assert_int_not_equal(kv_hash("a", 1), kv_hash("b", 1));
  assert_int_not_equal(kv_hash("", 0), kv_hash("\0", 1));
}

enum { NSHARDS = 3 };

/* Runs `line` the way the sharded server will: check, then the single
 * key's shard, or split over the shards and merge. Returns the reply. */
static const char *run_sharded(ctx_t *c, kv_keyspace_t **shards,
                               const char *line) {
  static char copy[1024];
  resp_arg_t argv[MAX_ARGS], sub[MAX_ARGS];
  size_t positions[MAX_ARGS];
  size_t argc = 0;
  snprintf(copy, sizeof copy, "%s", line);
  for (char *tok = strtok(copy, " "); tok != NULL; tok = strtok(NULL, " "))
    argv[argc++] = (resp_arg_t){tok, strlen(tok), 0};
  c->out.len = 0;
  const kv_command_t *cmd = kv_command_check(argv, argc, &c->out);
  if (cmd != NULL && (cmd->keys == KV_KEYS_ONE || cmd->keys == KV_KEYS_NONE)) {
    size_t s = kv_command_shard(cmd, argv, argc, NSHARDS);
    cmd->exec(shards[s], argv, argc, &c->env, &c->out);
  } else if (cmd != NULL) {
    kv_merge_t m;
    assert_int_equal(kv_merge_init(&m, cmd, argc), 0);
    kv_buf_t parts[NSHARDS];
    for (size_t s = 0; s < NSHARDS; s++) {
      kv_buf_init(&parts[s]);
      size_t n = kv_split(cmd, argv, argc, NSHARDS, s, sub, positions);
      if (n == 0)
        continue;
      kv_exec(shards[s], sub, n, &c->env, &parts[s]);
      size_t keys = cmd->keys == KV_KEYS_PAIRS ? (n - 1) / 2 : n - 1;
      assert_int_equal(
          kv_merge_add(&m, parts[s].data, parts[s].len, positions, keys), 0);
    }
    kv_merge_finish(&m, &c->out);
    for (size_t s = 0; s < NSHARDS; s++)
      kv_buf_deinit(&parts[s]);
  }
  memcpy(c->reply, c->out.data, c->out.len);
  c->reply[c->out.len] = '\0';
  return c->reply;
}

static void test_kv_split_and_merge_answer_as_one_keyspace(void **state) {
  ctx_t *c = *state;
  kv_keyspace_t *shards[NSHARDS];
  for (int s = 0; s < NSHARDS; s++) {
    shards[s] = kv_keyspace_new();
    assert_non_null(shards[s]);
  }
  static const char *script[] = {
      "MSET a 1 b 2 c 3 d 4 e 5 f 6 g 7 h 8",
      "MGET h g f e d c b a nope",
      "DEL a c nope e",
      "EXISTS a b c d e f g h a b",
      "DBSIZE",
      "MGET a b c d e f g h",
      "INCR b",
      "SET z 1 EX 1",
      "DBSIZE",
      "GET z",
      "PING",
      "MSET a x",
      "MGET a",
      "MSET a",
      "FLUSHALL",
      "DBSIZE",
      "MGET a b",
  };
  char want[1024];
  for (size_t i = 0; i < sizeof script / sizeof script[0]; i++) {
    snprintf(want, sizeof want, "%s", run(c, script[i]));
    const char *got = run_sharded(c, shards, script[i]);
    if (strcmp(got, want) != 0) {
      fprintf(stderr, "%s: sharded %s, single %s\n", script[i], got, want);
      fail();
    }
  }
  /* The keys did spread: more than one shard held some of them. */
  run_sharded(c, shards, "MSET a 1 b 2 c 3 d 4 e 5 f 6 g 7 h 8");
  int used = 0;
  for (int s = 0; s < NSHARDS; s++)
    used += kv_keyspace_size(shards[s]) != 0;
  assert_true(used > 1);
  for (int s = 0; s < NSHARDS; s++)
    kv_keyspace_free(shards[s]);
}

static void test_kv_merge_errors_and_malformed_parts(void **state) {
  ctx_t *c = *state;
  const kv_command_t *del = kv_command_lookup("DEL", 3);
  const kv_command_t *mget = kv_command_lookup("mget", 4);
  const kv_command_t *mset = kv_command_lookup("MSet", 4);
  assert_non_null(del);
  assert_non_null(mget);
  assert_non_null(mset);
  assert_null(kv_command_lookup("DELX", 4));
  kv_merge_t m;
  /* The first error part wins over sums. */
  assert_int_equal(kv_merge_init(&m, del, 4), 0);
  assert_int_equal(kv_merge_add(&m, ":2\r\n", 4, NULL, 0), 0);
  assert_int_equal(kv_merge_add(&m, "-OOM x\r\n", 8, NULL, 0), 0);
  assert_int_equal(kv_merge_add(&m, "-ERR y\r\n", 8, NULL, 0), 0);
  c->out.len = 0;
  kv_merge_finish(&m, &c->out);
  assert_int_equal(c->out.len, 8);
  assert_memory_equal(c->out.data, "-OOM x\r\n", 8);
  /* Malformed parts are refused and the merge answers an error. */
  assert_int_equal(kv_merge_init(&m, del, 3), 0);
  assert_int_equal(kv_merge_add(&m, ":x\r\n", 4, NULL, 0), ISLE_EPROTO);
  assert_int_equal(kv_merge_add(&m, ":1", 2, NULL, 0), ISLE_EPROTO);
  assert_int_equal(kv_merge_add(&m, "", 0, NULL, 0), ISLE_EPROTO);
  c->out.len = 0;
  kv_merge_finish(&m, &c->out);
  assert_true(c->out.len > 0 && c->out.data[0] == '-');
  assert_int_equal(kv_merge_init(&m, mset, 5), 0);
  assert_int_equal(kv_merge_add(&m, "+OK\r\n", 5, NULL, 0), 0);
  assert_int_equal(kv_merge_add(&m, "+NO\r\n", 5, NULL, 0), ISLE_EPROTO);
  kv_merge_finish(&m, &c->out);
  size_t pos[2] = {1, 0};
  assert_int_equal(kv_merge_init(&m, mget, 3), 0);
  /* Count disagreeing with positions, truncated bulk, bad position. */
  assert_int_equal(kv_merge_add(&m, "*1\r\n$1\r\na\r\n", 11, pos, 2),
                   ISLE_EPROTO);
  assert_int_equal(kv_merge_add(&m, "*1\r\n$5\r\na\r\n", 11, pos, 1),
                   ISLE_EPROTO);
  size_t far[1] = {7};
  assert_int_equal(kv_merge_add(&m, "*1\r\n$-1\r\n", 9, far, 1), ISLE_EPROTO);
  kv_merge_finish(&m, &c->out);
  /* A well-formed pair of parts lands by position. */
  assert_int_equal(kv_merge_init(&m, mget, 4), 0);
  size_t p0[2] = {2, 0}, p1[1] = {1};
  assert_int_equal(kv_merge_add(&m, "*2\r\n$1\r\nc\r\n$-1\r\n", 16, p0, 2), 0);
  assert_int_equal(kv_merge_add(&m, "*1\r\n$2\r\nbb\r\n", 12, p1, 1), 0);
  c->out.len = 0;
  kv_merge_finish(&m, &c->out);
  static const char want[] = "*3\r\n$-1\r\n$2\r\nbb\r\n$1\r\nc\r\n";
  assert_int_equal(c->out.len, sizeof want - 1);
  assert_memory_equal(c->out.data, want, c->out.len);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_kv_ping_echo_select),
      T(test_kv_unknown_command_and_arity_errors),
      T(test_kv_command_and_config_satisfy_clients),
      T(test_kv_info_has_keyspace_and_hook),
      T(test_kv_set_get_overwrite),
      T(test_kv_set_nx_xx_get),
      T(test_kv_set_syntax_and_expire_errors),
      T(test_kv_set_expiry_with_injected_clock),
      T(test_kv_del_exists_count_arguments),
      T(test_kv_incr_decr),
      T(test_kv_mget_mset),
      T(test_kv_expire_ttl_and_options),
      T(test_kv_dbsize_flushall),
      T(test_kv_keyspace_grows_and_finds_every_key),
      T(test_kv_expire_some_sweeps_expired_keys),
      T(test_kv_out_of_memory_answers_oom_and_keeps_the_old_value),
      cmocka_unit_test(test_kv_reply_buffer),
      cmocka_unit_test(test_kv_everything_is_freed),
      cmocka_unit_test(test_kv_key_shard_is_stable_and_spread),
      T(test_kv_split_and_merge_answer_as_one_keyspace),
      T(test_kv_merge_errors_and_malformed_parts),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
