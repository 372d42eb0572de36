/* isle — MIT licensed. */
/*
 * The command table of the key-value sample and its dispatch (lookup,
 * arity check, kv_exec), the helpers every command shares (arguments,
 * common error replies, expiry arithmetic), and the shard split/merge of
 * multi-key commands (see kv_cmd.h for the contracts). The commands
 * themselves are in kv_cmd_string.c (connection and string commands),
 * kv_cmd_keys.c (expiry and the whole keyspace) and kv_cmd_server.c
 * (COMMAND, CONFIG, INFO, SELECT).
 *
 * Threads: reentrant; a command runs on its keyspace's owner.
 */
#include <limits.h> /* LLONG_MAX, LLONG_MIN */
#include <string.h> /* memcpy, memcmp, strlen */

#include <isle.h>

#include "kv_internal.h"

const char kv__oom_error[] =
    "OOM command not allowed when used memory > 'maxmemory'.";

/* ===== Command helpers =================================================== */

bool kv__arg_is(const resp_arg_t *a, const char *lit) {
  size_t n = strlen(lit);
  if (a->len != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = a->ptr[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != lit[i])
      return false;
  }
  return true;
}

void kv__reply_wrong_arity(kv_buf_t *out, const char *name) {
  kv_buf_append(out, "-ERR wrong number of arguments for '", 36);
  kv__append_str(out, name);
  kv_buf_append(out, "' command\r\n", 11);
}

void kv__reply_not_integer(kv_buf_t *out) {
  kv_reply_error(out, "ERR value is not an integer or out of range");
}

void kv__reply_syntax(kv_buf_t *out) {
  kv_reply_error(out, "ERR syntax error");
}

void kv__reply_invalid_expire(kv_buf_t *out, const char *name) {
  kv_buf_append(out, "-ERR invalid expire time in '", 29);
  kv__append_str(out, name);
  kv_buf_append(out, "' command\r\n", 11);
}

/* now + amount * unit, as an absolute expiry: 1 and *when, or 0 when it
 * overflows or is not positive (Redis's "invalid expire time"). */
int kv__expiry_at(long long amount, long long unit, int64_t now, bool absolute,
                  int64_t *when) {
  if (amount > LLONG_MAX / unit || amount < LLONG_MIN / unit)
    return 0;
  long long ms = amount * unit;
  if (!absolute) {
    if (ms > LLONG_MAX - now)
      return 0;
    ms += now;
  }
  *when = ms;
  return 1;
}

/* ===== The table ========================================================= */

static const kv_command_t commands[] = {
    {"get", 2, KV_KEYS_ONE, KV_MERGE_NONE, kv__cmd_get},
    {"set", -3, KV_KEYS_ONE, KV_MERGE_NONE, kv__cmd_set},
    {"ping", -1, KV_KEYS_NONE, KV_MERGE_NONE, kv__cmd_ping},
    {"echo", 2, KV_KEYS_NONE, KV_MERGE_NONE, kv__cmd_echo},
    {"del", -2, KV_KEYS_EACH, KV_MERGE_SUM, kv__cmd_del},
    {"unlink", -2, KV_KEYS_EACH, KV_MERGE_SUM, kv__cmd_del},
    {"exists", -2, KV_KEYS_EACH, KV_MERGE_SUM, kv__cmd_exists},
    {"incr", 2, KV_KEYS_ONE, KV_MERGE_NONE, kv__cmd_incr},
    {"decr", 2, KV_KEYS_ONE, KV_MERGE_NONE, kv__cmd_decr},
    {"incrby", 3, KV_KEYS_ONE, KV_MERGE_NONE, kv__cmd_incrby},
    {"decrby", 3, KV_KEYS_ONE, KV_MERGE_NONE, kv__cmd_decrby},
    {"mget", -2, KV_KEYS_EACH, KV_MERGE_ARRAY, kv__cmd_mget},
    {"mset", -3, KV_KEYS_PAIRS, KV_MERGE_OK, kv__cmd_mset},
    {"expire", -3, KV_KEYS_ONE, KV_MERGE_NONE, kv__cmd_expire},
    {"pexpire", -3, KV_KEYS_ONE, KV_MERGE_NONE, kv__cmd_pexpire},
    {"ttl", 2, KV_KEYS_ONE, KV_MERGE_NONE, kv__cmd_ttl},
    {"pttl", 2, KV_KEYS_ONE, KV_MERGE_NONE, kv__cmd_pttl},
    {"dbsize", 1, KV_KEYS_ALL, KV_MERGE_SUM, kv__cmd_dbsize},
    {"flushall", -1, KV_KEYS_ALL, KV_MERGE_OK, kv__cmd_flushall},
    {"flushdb", -1, KV_KEYS_ALL, KV_MERGE_OK, kv__cmd_flushall},
    {"command", -1, KV_KEYS_NONE, KV_MERGE_NONE, kv__cmd_command},
    {"config", -2, KV_KEYS_NONE, KV_MERGE_NONE, kv__cmd_config},
    {"info", -1, KV_KEYS_NONE, KV_MERGE_NONE, kv__cmd_info},
    {"select", 2, KV_KEYS_NONE, KV_MERGE_NONE, kv__cmd_select},
};

size_t kv_command_count(void) {
  return sizeof commands / sizeof commands[0];
}

const kv_command_t *kv_command_lookup(const char *name, size_t len) {
  /* A linear scan of two dozen names, most frequent first (GET, SET):
   * shorter than a hash for this table. */
  resp_arg_t a = {name, len, 0};
  for (size_t i = 0; i < kv_command_count(); i++)
    if (kv__arg_is(&a, commands[i].name))
      return &commands[i];
  return NULL;
}

const kv_command_t *kv_command_check(const resp_arg_t *argv, size_t argc,
                                     kv_buf_t *out) {
  const kv_command_t *cmd = kv_command_lookup(argv[0].ptr, argv[0].len);
  if (cmd == NULL) {
    /* Redis 7: the name cut at 128 bytes, then each argument quoted and
     * followed by a space while the list is under 128 bytes (each cut to
     * what is left of them). */
    kv_buf_append(out, "-ERR unknown command '", 22);
    kv__append_line_text(out, argv[0].ptr,
                         argv[0].len < 128 ? argv[0].len : 128);
    kv_buf_append(out, "', with args beginning with: ", 29);
    size_t used = 0;
    for (size_t i = 1; i < argc && used < 128; i++) {
      size_t n = argv[i].len < 128 - used ? argv[i].len : 128 - used;
      kv_buf_append(out, "'", 1);
      kv__append_line_text(out, argv[i].ptr, n);
      kv_buf_append(out, "' ", 2);
      used += n + 3;
    }
    kv_buf_append(out, "\r\n", 2);
    return NULL;
  }
  if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
      (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
    kv__reply_wrong_arity(out, cmd->name);
    return NULL;
  }
  return cmd;
}

void kv_exec(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
             const kv_env_t *env, kv_buf_t *out) {
  const kv_command_t *cmd = kv_command_check(argv, argc, out);
  if (cmd != NULL)
    cmd->exec(ks, argv, argc, env, out);
}

/* ===== Splitting and merging ============================================= */

size_t kv_command_shard(const kv_command_t *cmd, const resp_arg_t *argv,
                        size_t argc, size_t nshards) {
  if (cmd->keys != KV_KEYS_ONE || argc < 2)
    return 0;
  return kv_key_shard(argv[1].ptr, argv[1].len, nshards);
}

size_t kv_split(const kv_command_t *cmd, const resp_arg_t *argv, size_t argc,
                size_t nshards, size_t shard, resp_arg_t *sub_argv,
                size_t *positions) {
  if (cmd->keys == KV_KEYS_ALL) {
    memcpy(sub_argv, argv, argc * sizeof *argv);
    return argc;
  }
  size_t step = cmd->keys == KV_KEYS_PAIRS ? 2 : 1;
  size_t n = 1, keys = 0;
  sub_argv[0] = argv[0];
  for (size_t i = 1; i + step - 1 < argc; i += step) {
    if (kv_key_shard(argv[i].ptr, argv[i].len, nshards) == shard) {
      positions[keys++] = (i - 1) / step;
      for (size_t k = 0; k < step; k++)
        sub_argv[n++] = argv[i + k];
    }
  }
  return keys != 0 ? n : 0;
}

int kv_merge_init(kv_merge_t *m, const kv_command_t *cmd, size_t argc) {
  *m = (kv_merge_t){0};
  m->kind = cmd->merge;
  if (m->kind == KV_MERGE_ARRAY) {
    m->keys = argc - 1;
    m->elem = isle_calloc(m->keys + 1, sizeof *m->elem);
    m->elem_len = isle_calloc(m->keys + 1, sizeof *m->elem_len);
    if (m->elem == NULL || m->elem_len == NULL) {
      isle_free(m->elem);
      isle_free(m->elem_len);
      return ISLE_ENOMEM;
    }
  }
  return 0;
}

/* The length of the line starting at s[0..len) up to its CRLF, or 0 if it
 * has none. */
static size_t line_len(const char *s, size_t len) {
  for (size_t i = 0; i + 1 < len; i++)
    if (s[i] == '\r')
      return s[i + 1] == '\n' ? i : 0;
  return 0;
}

int kv_merge_add(kv_merge_t *m, const char *reply, size_t len,
                 const size_t *positions, size_t n) {
  size_t l = line_len(reply, len);
  if (len == 0 || l == 0) {
    m->bad = true;
    return ISLE_EPROTO;
  }
  if (reply[0] == '-') {
    if (m->error == NULL) {
      m->error = reply;
      m->error_len = l + 2;
    }
    return 0;
  }
  long long v;
  switch (m->kind) {
  case KV_MERGE_SUM:
    if (reply[0] != ':' || !resp_parse_ll(reply + 1, l - 1, &v) || l + 2 != len)
      break;
    m->sum += v;
    return 0;
  case KV_MERGE_OK:
    if (l + 2 != len || l != 3 || memcmp(reply, "+OK", 3) != 0)
      break;
    return 0;
  case KV_MERGE_ARRAY: {
    if (reply[0] != '*' || !resp_parse_ll(reply + 1, l - 1, &v) || v < 0 ||
        (size_t)v != n)
      break;
    size_t at = l + 2;
    size_t k = 0;
    for (; k < n; k++) {
      const char *e = reply + at;
      size_t el = line_len(e, len - at);
      long long blen;
      if (el < 2 || e[0] != '$' || !resp_parse_ll(e + 1, el - 1, &blen) ||
          blen < -1 || positions[k] >= m->keys)
        break;
      size_t total = el + 2;
      if (blen >= 0) {
        if ((size_t)blen + 2 > len - at - total)
          break;
        total += (size_t)blen + 2;
      }
      m->elem[positions[k]] = e;
      m->elem_len[positions[k]] = total;
      at += total;
    }
    if (k != n || at != len)
      break;
    return 0;
  }
  default:
    break;
  }
  m->bad = true;
  return ISLE_EPROTO;
}

void kv_merge_finish(kv_merge_t *m, kv_buf_t *out) {
  if (m->error != NULL) {
    kv_buf_append(out, m->error, m->error_len);
  } else if (m->bad) {
    kv_reply_error(out, "ERR internal error: a shard's reply was malformed");
  } else if (m->kind == KV_MERGE_SUM) {
    kv_reply_int(out, m->sum);
  } else if (m->kind == KV_MERGE_OK) {
    kv_reply_status(out, "OK");
  } else if (m->kind == KV_MERGE_ARRAY) {
    kv_reply_array(out, m->keys);
    for (size_t i = 0; i < m->keys; i++) {
      if (m->elem[i] != NULL)
        kv_buf_append(out, m->elem[i], m->elem_len[i]);
      else
        kv_reply_null(out);
    }
  }
  isle_free(m->elem);
  isle_free(m->elem_len);
  *m = (kv_merge_t){0};
}
