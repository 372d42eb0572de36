/* isle — MIT licensed. */
/*
 * Private to samples/kv/kv_*.c: the keyspace's layout and the functions the
 * command files share, grouped by the file that defines them. Never
 * included by the server, the tests or the fuzzer, which use kv_cmd.h.
 *
 * Threads: as kv_cmd.h says; a keyspace and everything that takes one is
 * its owner's.
 */
#ifndef ISLE_SAMPLES_KV_INTERNAL_H
#define ISLE_SAMPLES_KV_INTERNAL_H

#include "kv_cmd.h"

/* ===== The keyspace's layout ============================================= */

/* One key: the entry header, the key and the value in one allocation, so a
 * GET touches one block after the bucket. Neither is 0-terminated. */
typedef struct entry_s {
  struct entry_s *next;
  uint64_t hash;
  int64_t expire_ms; /* absolute; 0: none */
  size_t klen;
  size_t vlen;
  char data[]; /* key, then value */
} entry_t;

/* A chained hash table. Invariant: count == the entries in all chains,
 * expires == those with expire_ms != 0. */
struct kv_keyspace_s {
  entry_t **buckets;
  size_t mask; /* bucket count - 1 */
  size_t count;
  size_t expires;
  size_t cursor; /* kv_keyspace_expire_some resumes here */
};

/* ===== kv_reply.c ======================================================== */

/* Append to `b` (dropped once it has failed, as kv_buf_append). */
void kv__append_str(kv_buf_t *b, const char *s);
/* Text of a status or error line, with CR and LF as spaces. */
void kv__append_line_text(kv_buf_t *b, const char *s, size_t n);
void kv__append_ll(kv_buf_t *b, long long v);

/* ===== kv_keyspace.c ===================================================== */

/* Empties the keyspace and shrinks it back to its first size. */
void kv__keyspace_flush(kv_keyspace_t *ks);
/* The live entry for `key` at `now`, or NULL; an expired one met on the way
 * is removed. */
entry_t *kv__lookup(kv_keyspace_t *ks, const resp_arg_t *key, int64_t now);
/* Sets `e`'s absolute expiry (0: none), keeping ks->expires right. */
void kv__set_expiry(kv_keyspace_t *ks, entry_t *e, int64_t when);
/* Stores key = value with expiry `when` (0: none). Returns the entry, or
 * NULL when memory ran out (the old value, if any, stays). */
entry_t *kv__store(kv_keyspace_t *ks, const char *key, size_t klen,
                   const char *val, size_t vlen, int64_t when, int64_t now);
/* Removes key; returns whether it was there (and live). */
bool kv__delete_key(kv_keyspace_t *ks, const resp_arg_t *key, int64_t now);

/* ===== kv_cmd.c: what every command shares =============================== */

extern const char kv__oom_error[];

/* Whether `a` is `lit` (lower case), ignoring ASCII case. */
bool kv__arg_is(const resp_arg_t *a, const char *lit);
void kv__reply_wrong_arity(kv_buf_t *out, const char *name);
void kv__reply_not_integer(kv_buf_t *out);
void kv__reply_syntax(kv_buf_t *out);
void kv__reply_invalid_expire(kv_buf_t *out, const char *name);
/* now + amount * unit, as an absolute expiry: 1 and *when, or 0 when it
 * overflows or is not positive (Redis's "invalid expire time"). */
int kv__expiry_at(long long amount, long long unit, int64_t now, bool absolute,
                  int64_t *when);

/* ===== kv_cmd_string.c: commands, as kv_command_t.exec =================== */

void kv__cmd_ping(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out);
void kv__cmd_echo(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out);
void kv__cmd_get(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                 const kv_env_t *env, kv_buf_t *out);
void kv__cmd_set(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                 const kv_env_t *env, kv_buf_t *out);
void kv__cmd_del(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                 const kv_env_t *env, kv_buf_t *out);
void kv__cmd_exists(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out);
void kv__cmd_incr(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out);
void kv__cmd_decr(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out);
void kv__cmd_incrby(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out);
void kv__cmd_decrby(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out);
void kv__cmd_mget(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out);
void kv__cmd_mset(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out);

/* ===== kv_cmd_keys.c: commands, as kv_command_t.exec ===================== */

void kv__cmd_expire(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out);
void kv__cmd_pexpire(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out);
void kv__cmd_ttl(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                 const kv_env_t *env, kv_buf_t *out);
void kv__cmd_pttl(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out);
void kv__cmd_dbsize(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out);
void kv__cmd_flushall(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                      const kv_env_t *env, kv_buf_t *out);

/* ===== kv_cmd_server.c: commands, as kv_command_t.exec =================== */

void kv__cmd_command(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out);
void kv__cmd_config(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out);
void kv__cmd_info(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out);
void kv__cmd_select(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out);

#endif /* ISLE_SAMPLES_KV_INTERNAL_H */
