/* isle — MIT licensed. */
/*
 * The connection and string commands of the key-value sample: PING, ECHO,
 * GET, SET (with Redis 7's options), DEL/UNLINK, EXISTS, INCR, DECR,
 * INCRBY, DECRBY, MGET and MSET (see kv_cmd.h; the table is in kv_cmd.c).
 *
 * Threads: each runs on its keyspace's owner.
 */
#include <limits.h> /* LLONG_MAX, LLONG_MIN */

#include <isle.h>

#include "kv_internal.h"

/* ===== Commands ========================================================== */

void kv__cmd_ping(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out) {
  (void)ks;
  (void)env;
  if (argc > 2)
    kv__reply_wrong_arity(out, "ping");
  else if (argc == 2)
    kv_reply_bulk(out, argv[1].ptr, argv[1].len);
  else
    kv_reply_status(out, "PONG");
}

void kv__cmd_echo(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out) {
  (void)ks;
  (void)env;
  (void)argc;
  kv_reply_bulk(out, argv[1].ptr, argv[1].len);
}

void kv__cmd_get(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                 const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  entry_t *e = kv__lookup(ks, &argv[1], env->now_ms);
  if (e == NULL)
    kv_reply_null(out);
  else
    kv_reply_bulk(out, e->data + e->klen, e->vlen);
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL], with
 * Redis 7's rules for which options combine. */
void kv__cmd_set(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                 const kv_env_t *env, kv_buf_t *out) {
  enum { NX = 1, XX = 2, GET = 4, KEEPTTL = 8, EXPIRE = 16 };
  unsigned flags = 0;
  const resp_arg_t *amount_arg = NULL;
  long long unit = 1;
  bool absolute = false;
  for (size_t j = 3; j < argc; j++) {
    const resp_arg_t *a = &argv[j];
    bool has_next = j + 1 < argc;
    if (kv__arg_is(a, "nx") && !(flags & XX)) {
      flags |= NX;
    } else if (kv__arg_is(a, "xx") && !(flags & NX)) {
      flags |= XX;
    } else if (kv__arg_is(a, "get")) {
      flags |= GET;
    } else if (kv__arg_is(a, "keepttl") && !(flags & EXPIRE)) {
      flags |= KEEPTTL;
    } else if (has_next && !(flags & (KEEPTTL | EXPIRE)) &&
               (kv__arg_is(a, "ex") || kv__arg_is(a, "px") ||
                kv__arg_is(a, "exat") || kv__arg_is(a, "pxat"))) {
      flags |= EXPIRE;
      unit = (kv__arg_is(a, "ex") || kv__arg_is(a, "exat")) ? 1000 : 1;
      absolute = kv__arg_is(a, "exat") || kv__arg_is(a, "pxat");
      amount_arg = &argv[++j];
    } else {
      kv__reply_syntax(out);
      return;
    }
  }
  int64_t when = 0;
  if (flags & EXPIRE) {
    long long amount;
    if (!resp_parse_ll(amount_arg->ptr, amount_arg->len, &amount)) {
      kv__reply_not_integer(out);
      return;
    }
    if (amount <= 0 ||
        !kv__expiry_at(amount, unit, env->now_ms, absolute, &when)) {
      kv__reply_invalid_expire(out, "set");
      return;
    }
  }
  entry_t *old = kv__lookup(ks, &argv[1], env->now_ms);
  /* With GET the old value is the reply; write it now, before the store
   * overwrites it, and take it back if the store fails. */
  size_t mark = out->len;
  if (flags & GET) {
    if (old == NULL)
      kv_reply_null(out);
    else
      kv_reply_bulk(out, old->data + old->klen, old->vlen);
  }
  if (((flags & NX) && old != NULL) || ((flags & XX) && old == NULL)) {
    if (!(flags & GET))
      kv_reply_null(out);
    return;
  }
  if ((flags & KEEPTTL) && old != NULL)
    when = old->expire_ms;
  if (kv__store(ks, argv[1].ptr, argv[1].len, argv[2].ptr, argv[2].len, when,
                env->now_ms) == NULL) {
    if (!out->failed)
      out->len = mark;
    kv_reply_error(out, kv__oom_error);
    return;
  }
  /* An absolute expiry in the past: set, then gone at once, as in Redis.
   * The lookup finds it expired and removes it. */
  if (when != 0 && when <= env->now_ms)
    (void)kv__lookup(ks, &argv[1], env->now_ms);
  if (!(flags & GET))
    kv_reply_status(out, "OK");
}

void kv__cmd_del(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                 const kv_env_t *env, kv_buf_t *out) {
  long long n = 0;
  for (size_t i = 1; i < argc; i++)
    n += kv__delete_key(ks, &argv[i], env->now_ms);
  kv_reply_int(out, n);
}

void kv__cmd_exists(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out) {
  long long n = 0;
  for (size_t i = 1; i < argc; i++)
    n += kv__lookup(ks, &argv[i], env->now_ms) != NULL;
  kv_reply_int(out, n);
}

static void incr_by(kv_keyspace_t *ks, const resp_arg_t *key, long long by,
                    const kv_env_t *env, kv_buf_t *out) {
  entry_t *e = kv__lookup(ks, key, env->now_ms);
  long long v = 0;
  int64_t when = 0;
  if (e != NULL) {
    if (!resp_parse_ll(e->data + e->klen, e->vlen, &v)) {
      kv__reply_not_integer(out);
      return;
    }
    when = e->expire_ms; /* INCR keeps the key's expiry */
  }
  if ((by > 0 && v > LLONG_MAX - by) || (by < 0 && v < LLONG_MIN - by)) {
    kv_reply_error(out, "ERR increment or decrement would overflow");
    return;
  }
  v += by;
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
  if (kv__store(ks, key->ptr, key->len, tmp + i, sizeof tmp - i, when,
                env->now_ms) == NULL) {
    kv_reply_error(out, kv__oom_error);
    return;
  }
  kv_reply_int(out, v);
}

void kv__cmd_incr(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  incr_by(ks, &argv[1], 1, env, out);
}

void kv__cmd_decr(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  incr_by(ks, &argv[1], -1, env, out);
}

void kv__cmd_incrby(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  long long by;
  if (!resp_parse_ll(argv[2].ptr, argv[2].len, &by)) {
    kv__reply_not_integer(out);
    return;
  }
  incr_by(ks, &argv[1], by, env, out);
}

void kv__cmd_decrby(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  long long by;
  if (!resp_parse_ll(argv[2].ptr, argv[2].len, &by)) {
    kv__reply_not_integer(out);
    return;
  }
  if (by == LLONG_MIN) {
    kv_reply_error(out, "ERR decrement would overflow");
    return;
  }
  incr_by(ks, &argv[1], -by, env, out);
}

void kv__cmd_mget(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out) {
  kv_reply_array(out, argc - 1);
  for (size_t i = 1; i < argc; i++) {
    entry_t *e = kv__lookup(ks, &argv[i], env->now_ms);
    if (e == NULL)
      kv_reply_null(out);
    else
      kv_reply_bulk(out, e->data + e->klen, e->vlen);
  }
}

void kv__cmd_mset(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out) {
  if (argc % 2 == 0) {
    kv__reply_wrong_arity(out, "mset");
    return;
  }
  for (size_t i = 1; i + 1 < argc; i += 2) {
    if (kv__store(ks, argv[i].ptr, argv[i].len, argv[i + 1].ptr,
                  argv[i + 1].len, 0, env->now_ms) == NULL) {
      kv_reply_error(out, kv__oom_error);
      return;
    }
  }
  kv_reply_status(out, "OK");
}

/* EXPIRE/PEXPIRE key amount [NX|XX|GT|LT]. */
