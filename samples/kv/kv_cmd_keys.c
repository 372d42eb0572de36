/* isle — MIT licensed. */
/*
 * The expiry and whole-keyspace commands of the key-value sample: EXPIRE
 * and PEXPIRE (with NX, XX, GT and LT), TTL, PTTL, DBSIZE and
 * FLUSHALL/FLUSHDB (see kv_cmd.h; the table is in kv_cmd.c).
 *
 * Threads: each runs on its keyspace's owner.
 */
#include <isle.h>

#include "kv_internal.h"

static void expire_generic(kv_keyspace_t *ks, const resp_arg_t *argv,
                           size_t argc, const kv_env_t *env, kv_buf_t *out,
                           long long unit, const char *name) {
  enum { NX = 1, XX = 2, GT = 4, LT = 8 };
  unsigned flags = 0;
  for (size_t j = 3; j < argc; j++) {
    if (kv__arg_is(&argv[j], "nx"))
      flags |= NX;
    else if (kv__arg_is(&argv[j], "xx"))
      flags |= XX;
    else if (kv__arg_is(&argv[j], "gt"))
      flags |= GT;
    else if (kv__arg_is(&argv[j], "lt"))
      flags |= LT;
    else {
      kv_buf_append(out, "-ERR Unsupported option ", 24);
      kv__append_line_text(out, argv[j].ptr, argv[j].len);
      kv_buf_append(out, "\r\n", 2);
      return;
    }
  }
  if ((flags & NX) && (flags & (XX | GT | LT))) {
    kv_reply_error(out, "ERR NX and XX, GT or LT options at the same time "
                        "are not compatible");
    return;
  }
  if ((flags & GT) && (flags & LT)) {
    kv_reply_error(out,
                   "ERR GT and LT options at the same time are not compatible");
    return;
  }
  long long amount;
  if (!resp_parse_ll(argv[2].ptr, argv[2].len, &amount)) {
    kv__reply_not_integer(out);
    return;
  }
  int64_t when;
  if (!kv__expiry_at(amount, unit, env->now_ms, false, &when)) {
    kv__reply_invalid_expire(out, name);
    return;
  }
  entry_t *e = kv__lookup(ks, &argv[1], env->now_ms);
  if (e == NULL) {
    kv_reply_int(out, 0);
    return;
  }
  /* No expiry counts as an infinite one for GT and LT. */
  bool has = e->expire_ms != 0;
  if (((flags & NX) && has) || ((flags & XX) && !has) ||
      ((flags & GT) && (!has || when <= e->expire_ms)) ||
      ((flags & LT) && has && when >= e->expire_ms)) {
    kv_reply_int(out, 0);
    return;
  }
  if (when <= env->now_ms)
    kv__delete_key(ks, &argv[1], env->now_ms);
  else
    kv__set_expiry(ks, e, when);
  kv_reply_int(out, 1);
}

void kv__cmd_expire(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out) {
  expire_generic(ks, argv, argc, env, out, 1000, "expire");
}

void kv__cmd_pexpire(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out) {
  expire_generic(ks, argv, argc, env, out, 1, "pexpire");
}

static void ttl_generic(kv_keyspace_t *ks, const resp_arg_t *key,
                        const kv_env_t *env, kv_buf_t *out, bool ms) {
  entry_t *e = kv__lookup(ks, key, env->now_ms);
  if (e == NULL)
    kv_reply_int(out, -2);
  else if (e->expire_ms == 0)
    kv_reply_int(out, -1);
  else {
    long long left = e->expire_ms - env->now_ms;
    /* Redis rounds seconds to the nearest. */
    kv_reply_int(out, ms ? left : (left + 500) / 1000);
  }
}

void kv__cmd_ttl(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                 const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  ttl_generic(ks, &argv[1], env, out, false);
}

void kv__cmd_pttl(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  ttl_generic(ks, &argv[1], env, out, true);
}

void kv__cmd_dbsize(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out) {
  (void)argv;
  (void)argc;
  (void)env;
  kv_reply_int(out, (long long)ks->count);
}

void kv__cmd_flushall(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                      const kv_env_t *env, kv_buf_t *out) {
  (void)env;
  if (argc > 2 || (argc == 2 && !kv__arg_is(&argv[1], "sync") &&
                   !kv__arg_is(&argv[1], "async"))) {
    kv__reply_syntax(out);
    return;
  }
  kv__keyspace_flush(ks);
  kv_reply_status(out, "OK");
}
