/* isle — MIT licensed. */
/*
 * Keyspace, commands, replies, and the shard split/merge helpers of the
 * key-value sample (see kv_cmd.h for the contracts).
 *
 * The keyspace is a chained hash table: a power-of-two bucket array and one
 * allocation per key holding the entry header, the key and the value, so a
 * GET touches one block after the bucket. A SET whose new value fits the
 * block (isle_usable_size) rewrites it in place, so the steady state of a
 * SET benchmark allocates nothing. The table doubles when keys outnumber
 * buckets, all at once (a sample; Redis rehashes incrementally), and keeps
 * working overloaded if that allocation fails. Entries are 0-terminated
 * nowhere: keys and values are byte strings.
 *
 * Invariant: ks->count == the entries in all chains, ks->expires == those
 * with expire_ms != 0.
 *
 * Threads: a keyspace is its owner's; the rest is reentrant.
 */
#include <limits.h> /* LLONG_MAX, LLONG_MIN */
#include <string.h> /* memcpy, memcmp */

#include <isle.h>

#include "kv_cmd.h"

/* ===== Constants and types =============================================== */

#define INITIAL_BUCKETS 16

typedef struct entry_s {
  struct entry_s *next;
  uint64_t hash;
  int64_t expire_ms; /* absolute; 0: none */
  size_t klen;
  size_t vlen;
  char data[]; /* key, then value */
} entry_t;

struct kv_keyspace_s {
  entry_t **buckets;
  size_t mask; /* bucket count - 1 */
  size_t count;
  size_t expires;
  size_t cursor; /* kv_keyspace_expire_some resumes here */
};

static const char oom_error[] =
    "OOM command not allowed when used memory > 'maxmemory'.";

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

static void append_str(kv_buf_t *b, const char *s) {
  kv_buf_append(b, s, strlen(s));
}

/* Text of a status or error line, with CR and LF as spaces. */
static void append_line_text(kv_buf_t *b, const char *s, size_t n) {
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

static void append_ll(kv_buf_t *b, long long v) {
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
  append_line_text(b, text, strlen(text));
  kv_buf_append(b, "\r\n", 2);
}

void kv_reply_error(kv_buf_t *b, const char *text) {
  kv_buf_append(b, "-", 1);
  append_line_text(b, text, strlen(text));
  kv_buf_append(b, "\r\n", 2);
}

void kv_reply_int(kv_buf_t *b, long long v) {
  kv_buf_append(b, ":", 1);
  append_ll(b, v);
  kv_buf_append(b, "\r\n", 2);
}

void kv_reply_bulk(kv_buf_t *b, const char *s, size_t n) {
  kv_buf_append(b, "$", 1);
  append_ll(b, (long long)n);
  kv_buf_append(b, "\r\n", 2);
  kv_buf_append(b, s, n);
  kv_buf_append(b, "\r\n", 2);
}

void kv_reply_null(kv_buf_t *b) {
  kv_buf_append(b, "$-1\r\n", 5);
}

void kv_reply_array(kv_buf_t *b, size_t count) {
  kv_buf_append(b, "*", 1);
  append_ll(b, (long long)count);
  kv_buf_append(b, "\r\n", 2);
}

void kv_reply_protocol_error(kv_buf_t *b, const resp_parser_t *p) {
  kv_buf_append(b, "-ERR ", 5);
  const char *e = resp_parser_error(p);
  append_line_text(b, e, strlen(e));
  kv_buf_append(b, "\r\n", 2);
}

/* ===== Hashing =========================================================== */

static uint64_t fmix64(uint64_t h) {
  /* MurmurHash3's finaliser: every input bit reaches every output bit. */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

uint64_t kv_hash(const char *key, size_t len) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0xbf58476d1ce4e5b9ull);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, key + i, 8);
    h = (h ^ fmix64(w)) * 0x94d049bb133111ebull;
    h = (h << 31) | (h >> 33);
  }
  uint64_t tail = 0;
  for (size_t k = 0; i + k < len; k++)
    tail |= (uint64_t)(unsigned char)key[i + k] << (8 * k);
  return fmix64(h ^ tail);
}

size_t kv_key_shard(const char *key, size_t len, size_t nshards) {
  /* Lemire's multiply-shift maps the high 32 bits onto [0, nshards). */
  uint64_t hi = kv_hash(key, len) >> 32;
  return (size_t)((hi * (uint64_t)nshards) >> 32);
}

/* ===== Keyspace ========================================================== */

kv_keyspace_t *kv_keyspace_new(void) {
  kv_keyspace_t *ks = isle_calloc(1, sizeof *ks);
  if (ks == NULL)
    return NULL;
  ks->buckets = isle_calloc(INITIAL_BUCKETS, sizeof *ks->buckets);
  if (ks->buckets == NULL) {
    isle_free(ks);
    return NULL;
  }
  ks->mask = INITIAL_BUCKETS - 1;
  return ks;
}

static void free_chains(kv_keyspace_t *ks) {
  for (size_t i = 0; i <= ks->mask; i++) {
    entry_t *e = ks->buckets[i];
    while (e != NULL) {
      entry_t *next = e->next;
      isle_free(e);
      e = next;
    }
    ks->buckets[i] = NULL;
  }
  ks->count = 0;
  ks->expires = 0;
}

void kv_keyspace_free(kv_keyspace_t *ks) {
  if (ks == NULL)
    return;
  free_chains(ks);
  isle_free(ks->buckets);
  isle_free(ks);
}

size_t kv_keyspace_size(const kv_keyspace_t *ks) {
  return ks->count;
}

size_t kv_keyspace_expires(const kv_keyspace_t *ks) {
  return ks->expires;
}

/* Empties the keyspace and shrinks it back to its first size. */
static void flush(kv_keyspace_t *ks) {
  free_chains(ks);
  if (ks->mask + 1 > INITIAL_BUCKETS) {
    entry_t **b = isle_calloc(INITIAL_BUCKETS, sizeof *b);
    if (b != NULL) { /* else keep the big, now empty, array */
      isle_free(ks->buckets);
      ks->buckets = b;
      ks->mask = INITIAL_BUCKETS - 1;
    }
  }
  ks->cursor = 0;
}

static void grow(kv_keyspace_t *ks) {
  size_t n = (ks->mask + 1) * 2;
  entry_t **b = isle_calloc(n, sizeof *b);
  if (b == NULL)
    return; /* longer chains, still correct */
  for (size_t i = 0; i <= ks->mask; i++) {
    entry_t *e = ks->buckets[i];
    while (e != NULL) {
      entry_t *next = e->next;
      entry_t **slot = &b[e->hash & (n - 1)];
      e->next = *slot;
      *slot = e;
      e = next;
    }
  }
  isle_free(ks->buckets);
  ks->buckets = b;
  ks->mask = n - 1;
  ks->cursor = 0;
}

static void unlink_entry(kv_keyspace_t *ks, entry_t **link) {
  entry_t *e = *link;
  *link = e->next;
  ks->count--;
  if (e->expire_ms != 0)
    ks->expires--;
  isle_free(e);
}

static bool expired(const entry_t *e, int64_t now) {
  return e->expire_ms != 0 && e->expire_ms <= now;
}

/* The link pointing at the live entry for key, or NULL; an expired entry
 * met on the way is removed. */
static entry_t **find(kv_keyspace_t *ks, const char *key, size_t klen,
                      uint64_t h, int64_t now) {
  entry_t **link = &ks->buckets[h & ks->mask];
  while (*link != NULL) {
    entry_t *e = *link;
    if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0) {
      if (expired(e, now)) {
        unlink_entry(ks, link);
        return NULL;
      }
      return link;
    }
    link = &e->next;
  }
  return NULL;
}

static entry_t *lookup(kv_keyspace_t *ks, const resp_arg_t *key, int64_t now) {
  entry_t **link =
      find(ks, key->ptr, key->len, kv_hash(key->ptr, key->len), now);
  return link != NULL ? *link : NULL;
}

static void set_expiry(kv_keyspace_t *ks, entry_t *e, int64_t when) {
  if ((e->expire_ms != 0) != (when != 0))
    ks->expires += when != 0 ? 1 : (size_t)-1;
  e->expire_ms = when;
}

/* Stores key = value with expiry `when` (0: none). Returns the entry, or
 * NULL when memory ran out (the old value, if any, stays). */
static entry_t *store(kv_keyspace_t *ks, const char *key, size_t klen,
                      const char *val, size_t vlen, int64_t when, int64_t now) {
  uint64_t h = kv_hash(key, klen);
  entry_t **link = find(ks, key, klen, h, now);
  size_t need = sizeof(entry_t) + klen + vlen;
  if (need < vlen) /* overflow: no such block */
    return NULL;
  if (link != NULL && isle_usable_size(*link) >= need) {
    entry_t *e = *link;
    memcpy(e->data + klen, val, vlen);
    e->vlen = vlen;
    set_expiry(ks, e, when);
    return e;
  }
  entry_t *e = isle_malloc(need);
  if (e == NULL)
    return NULL;
  e->hash = h;
  e->expire_ms = 0;
  e->klen = klen;
  e->vlen = vlen;
  memcpy(e->data, key, klen);
  memcpy(e->data + klen, val, vlen);
  if (link != NULL) {
    entry_t *old = *link;
    e->next = old->next;
    *link = e;
    if (old->expire_ms != 0)
      ks->expires--;
    isle_free(old);
  } else {
    entry_t **slot = &ks->buckets[h & ks->mask];
    e->next = *slot;
    *slot = e;
    ks->count++;
  }
  set_expiry(ks, e, when);
  if (ks->count > ks->mask + 1)
    grow(ks);
  return e;
}

/* Removes key; returns whether it was there (and live). */
static bool delete_key(kv_keyspace_t *ks, const resp_arg_t *key, int64_t now) {
  entry_t **link =
      find(ks, key->ptr, key->len, kv_hash(key->ptr, key->len), now);
  if (link == NULL)
    return false;
  unlink_entry(ks, link);
  return true;
}

size_t kv_keyspace_expire_some(kv_keyspace_t *ks, int64_t now_ms,
                               size_t buckets) {
  size_t removed = 0;
  for (size_t n = 0; n < buckets && n <= ks->mask; n++) {
    entry_t **link = &ks->buckets[ks->cursor];
    while (*link != NULL) {
      if (expired(*link, now_ms)) {
        unlink_entry(ks, link);
        removed++;
      } else {
        link = &(*link)->next;
      }
    }
    ks->cursor = (ks->cursor + 1) & ks->mask;
  }
  return removed;
}

/* ===== Command helpers =================================================== */

static bool arg_is(const resp_arg_t *a, const char *lit) {
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

static void reply_wrong_arity(kv_buf_t *out, const char *name) {
  kv_buf_append(out, "-ERR wrong number of arguments for '", 36);
  append_str(out, name);
  kv_buf_append(out, "' command\r\n", 11);
}

static void reply_not_integer(kv_buf_t *out) {
  kv_reply_error(out, "ERR value is not an integer or out of range");
}

static void reply_syntax(kv_buf_t *out) {
  kv_reply_error(out, "ERR syntax error");
}

static void reply_invalid_expire(kv_buf_t *out, const char *name) {
  kv_buf_append(out, "-ERR invalid expire time in '", 29);
  append_str(out, name);
  kv_buf_append(out, "' command\r\n", 11);
}

/* now + amount * unit, as an absolute expiry: 1 and *when, or 0 when it
 * overflows or is not positive (Redis's "invalid expire time"). */
static int expiry_at(long long amount, long long unit, int64_t now,
                     bool absolute, int64_t *when) {
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

/* ===== Commands ========================================================== */

static void cmd_ping(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out) {
  (void)ks;
  (void)env;
  if (argc > 2)
    reply_wrong_arity(out, "ping");
  else if (argc == 2)
    kv_reply_bulk(out, argv[1].ptr, argv[1].len);
  else
    kv_reply_status(out, "PONG");
}

static void cmd_echo(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out) {
  (void)ks;
  (void)env;
  (void)argc;
  kv_reply_bulk(out, argv[1].ptr, argv[1].len);
}

static void cmd_get(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  entry_t *e = lookup(ks, &argv[1], env->now_ms);
  if (e == NULL)
    kv_reply_null(out);
  else
    kv_reply_bulk(out, e->data + e->klen, e->vlen);
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL], with
 * Redis 7's rules for which options combine. */
static void cmd_set(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out) {
  enum { NX = 1, XX = 2, GET = 4, KEEPTTL = 8, EXPIRE = 16 };
  unsigned flags = 0;
  const resp_arg_t *amount_arg = NULL;
  long long unit = 1;
  bool absolute = false;
  for (size_t j = 3; j < argc; j++) {
    const resp_arg_t *a = &argv[j];
    bool has_next = j + 1 < argc;
    if (arg_is(a, "nx") && !(flags & XX)) {
      flags |= NX;
    } else if (arg_is(a, "xx") && !(flags & NX)) {
      flags |= XX;
    } else if (arg_is(a, "get")) {
      flags |= GET;
    } else if (arg_is(a, "keepttl") && !(flags & EXPIRE)) {
      flags |= KEEPTTL;
    } else if (has_next && !(flags & (KEEPTTL | EXPIRE)) &&
               (arg_is(a, "ex") || arg_is(a, "px") || arg_is(a, "exat") ||
                arg_is(a, "pxat"))) {
      flags |= EXPIRE;
      unit = (arg_is(a, "ex") || arg_is(a, "exat")) ? 1000 : 1;
      absolute = arg_is(a, "exat") || arg_is(a, "pxat");
      amount_arg = &argv[++j];
    } else {
      reply_syntax(out);
      return;
    }
  }
  int64_t when = 0;
  if (flags & EXPIRE) {
    long long amount;
    if (!resp_parse_ll(amount_arg->ptr, amount_arg->len, &amount)) {
      reply_not_integer(out);
      return;
    }
    if (amount <= 0 || !expiry_at(amount, unit, env->now_ms, absolute, &when)) {
      reply_invalid_expire(out, "set");
      return;
    }
  }
  entry_t *old = lookup(ks, &argv[1], env->now_ms);
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
  if (store(ks, argv[1].ptr, argv[1].len, argv[2].ptr, argv[2].len, when,
            env->now_ms) == NULL) {
    if (!out->failed)
      out->len = mark;
    kv_reply_error(out, oom_error);
    return;
  }
  /* An absolute expiry in the past: set, then gone at once, as in Redis.
   * The lookup finds it expired and removes it. */
  if (when != 0 && when <= env->now_ms)
    (void)lookup(ks, &argv[1], env->now_ms);
  if (!(flags & GET))
    kv_reply_status(out, "OK");
}

static void cmd_del(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out) {
  long long n = 0;
  for (size_t i = 1; i < argc; i++)
    n += delete_key(ks, &argv[i], env->now_ms);
  kv_reply_int(out, n);
}

static void cmd_exists(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                       const kv_env_t *env, kv_buf_t *out) {
  long long n = 0;
  for (size_t i = 1; i < argc; i++)
    n += lookup(ks, &argv[i], env->now_ms) != NULL;
  kv_reply_int(out, n);
}

static void incr_by(kv_keyspace_t *ks, const resp_arg_t *key, long long by,
                    const kv_env_t *env, kv_buf_t *out) {
  entry_t *e = lookup(ks, key, env->now_ms);
  long long v = 0;
  int64_t when = 0;
  if (e != NULL) {
    if (!resp_parse_ll(e->data + e->klen, e->vlen, &v)) {
      reply_not_integer(out);
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
  if (store(ks, key->ptr, key->len, tmp + i, sizeof tmp - i, when,
            env->now_ms) == NULL) {
    kv_reply_error(out, oom_error);
    return;
  }
  kv_reply_int(out, v);
}

static void cmd_incr(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  incr_by(ks, &argv[1], 1, env, out);
}

static void cmd_decr(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  incr_by(ks, &argv[1], -1, env, out);
}

static void cmd_incrby(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                       const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  long long by;
  if (!resp_parse_ll(argv[2].ptr, argv[2].len, &by)) {
    reply_not_integer(out);
    return;
  }
  incr_by(ks, &argv[1], by, env, out);
}

static void cmd_decrby(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                       const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  long long by;
  if (!resp_parse_ll(argv[2].ptr, argv[2].len, &by)) {
    reply_not_integer(out);
    return;
  }
  if (by == LLONG_MIN) {
    kv_reply_error(out, "ERR decrement would overflow");
    return;
  }
  incr_by(ks, &argv[1], -by, env, out);
}

static void cmd_mget(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out) {
  kv_reply_array(out, argc - 1);
  for (size_t i = 1; i < argc; i++) {
    entry_t *e = lookup(ks, &argv[i], env->now_ms);
    if (e == NULL)
      kv_reply_null(out);
    else
      kv_reply_bulk(out, e->data + e->klen, e->vlen);
  }
}

static void cmd_mset(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out) {
  if (argc % 2 == 0) {
    reply_wrong_arity(out, "mset");
    return;
  }
  for (size_t i = 1; i + 1 < argc; i += 2) {
    if (store(ks, argv[i].ptr, argv[i].len, argv[i + 1].ptr, argv[i + 1].len, 0,
              env->now_ms) == NULL) {
      kv_reply_error(out, oom_error);
      return;
    }
  }
  kv_reply_status(out, "OK");
}

/* EXPIRE/PEXPIRE key amount [NX|XX|GT|LT]. */
static void expire_generic(kv_keyspace_t *ks, const resp_arg_t *argv,
                           size_t argc, const kv_env_t *env, kv_buf_t *out,
                           long long unit, const char *name) {
  enum { NX = 1, XX = 2, GT = 4, LT = 8 };
  unsigned flags = 0;
  for (size_t j = 3; j < argc; j++) {
    if (arg_is(&argv[j], "nx"))
      flags |= NX;
    else if (arg_is(&argv[j], "xx"))
      flags |= XX;
    else if (arg_is(&argv[j], "gt"))
      flags |= GT;
    else if (arg_is(&argv[j], "lt"))
      flags |= LT;
    else {
      kv_buf_append(out, "-ERR Unsupported option ", 24);
      append_line_text(out, argv[j].ptr, argv[j].len);
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
    reply_not_integer(out);
    return;
  }
  int64_t when;
  if (!expiry_at(amount, unit, env->now_ms, false, &when)) {
    reply_invalid_expire(out, name);
    return;
  }
  entry_t *e = lookup(ks, &argv[1], env->now_ms);
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
    delete_key(ks, &argv[1], env->now_ms);
  else
    set_expiry(ks, e, when);
  kv_reply_int(out, 1);
}

static void cmd_expire(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                       const kv_env_t *env, kv_buf_t *out) {
  expire_generic(ks, argv, argc, env, out, 1000, "expire");
}

static void cmd_pexpire(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                        const kv_env_t *env, kv_buf_t *out) {
  expire_generic(ks, argv, argc, env, out, 1, "pexpire");
}

static void ttl_generic(kv_keyspace_t *ks, const resp_arg_t *key,
                        const kv_env_t *env, kv_buf_t *out, bool ms) {
  entry_t *e = lookup(ks, key, env->now_ms);
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

static void cmd_ttl(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  ttl_generic(ks, &argv[1], env, out, false);
}

static void cmd_pttl(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out) {
  (void)argc;
  ttl_generic(ks, &argv[1], env, out, true);
}

static void cmd_dbsize(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                       const kv_env_t *env, kv_buf_t *out) {
  (void)argv;
  (void)argc;
  (void)env;
  kv_reply_int(out, (long long)ks->count);
}

static void cmd_flushall(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                         const kv_env_t *env, kv_buf_t *out) {
  (void)env;
  if (argc > 2 ||
      (argc == 2 && !arg_is(&argv[1], "sync") && !arg_is(&argv[1], "async"))) {
    reply_syntax(out);
    return;
  }
  flush(ks);
  kv_reply_status(out, "OK");
}

static void reply_unknown_subcommand(kv_buf_t *out, const resp_arg_t *sub,
                                     const char *cmd) {
  kv_buf_append(out, "-ERR unknown subcommand '", 25);
  append_line_text(out, sub->ptr, sub->len < 128 ? sub->len : 128);
  kv_buf_append(out, "'. Try ", 7);
  append_str(out, cmd);
  kv_buf_append(out, " HELP.\r\n", 8);
}

/* COMMAND: redis-cli asks "COMMAND DOCS" on connect for its hints and
 * takes an empty array as "no hints". */
static void cmd_command(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                        const kv_env_t *env, kv_buf_t *out) {
  (void)ks;
  (void)env;
  if (argc == 1 || arg_is(&argv[1], "docs") || arg_is(&argv[1], "info") ||
      arg_is(&argv[1], "list"))
    kv_reply_array(out, 0);
  else if (arg_is(&argv[1], "count"))
    kv_reply_int(out, (long long)kv_command_count());
  else
    reply_unknown_subcommand(out, &argv[1], "COMMAND");
}

/* CONFIG GET: redis-benchmark reads "save" and "appendonly" before it
 * starts and warns when the answer is not a name/value array. */
static void cmd_config(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                       const kv_env_t *env, kv_buf_t *out) {
  static const struct {
    const char *name, *value;
  } params[] = {{"save", ""}, {"appendonly", "no"}, {"databases", "1"}};
  enum { NPARAMS = sizeof params / sizeof params[0] };
  (void)ks;
  (void)env;
  if (arg_is(&argv[1], "get")) {
    if (argc < 3) {
      reply_wrong_arity(out, "config|get");
      return;
    }
    bool hit[NPARAMS] = {false};
    size_t n = 0;
    for (size_t j = 2; j < argc; j++)
      for (size_t k = 0; k < NPARAMS; k++)
        if (!hit[k] && ((argv[j].len == 1 && argv[j].ptr[0] == '*') ||
                        arg_is(&argv[j], params[k].name))) {
          hit[k] = true;
          n++;
        }
    kv_reply_array(out, 2 * n);
    for (size_t k = 0; k < NPARAMS; k++)
      if (hit[k]) {
        kv_reply_bulk(out, params[k].name, strlen(params[k].name));
        kv_reply_bulk(out, params[k].value, strlen(params[k].value));
      }
  } else if (arg_is(&argv[1], "resetstat")) {
    kv_reply_status(out, "OK"); /* no statistics of its own to reset */
  } else if (arg_is(&argv[1], "set")) {
    kv_reply_error(out, "ERR CONFIG SET is not supported by this server");
  } else {
    reply_unknown_subcommand(out, &argv[1], "CONFIG");
  }
}

static void cmd_info(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out) {
  (void)argv;
  (void)argc;
  kv_buf_t text;
  kv_buf_init(&text);
  append_str(&text, "# Server\r\nredis_version:7.0.0\r\n"
                    "server_name:isle-kv\r\nisle_version:");
  append_ll(&text, ISLE_VERSION_MAJOR);
  kv_buf_append(&text, ".", 1);
  append_ll(&text, ISLE_VERSION_MINOR);
  kv_buf_append(&text, ".", 1);
  append_ll(&text, ISLE_VERSION_PATCH);
  append_str(&text, "\r\n");
  if (env->info != NULL)
    env->info(env->info_arg, &text);
  /* Without a keyspace (a sharded server runs INFO outside its shards),
   * the info hook writes the Keyspace section. */
  if (ks != NULL) {
    append_str(&text, "# Keyspace\r\ndb0:keys=");
    append_ll(&text, (long long)ks->count);
    append_str(&text, ",expires=");
    append_ll(&text, (long long)ks->expires);
    append_str(&text, ",avg_ttl=0\r\n");
  }
  if (text.failed)
    kv_reply_error(out, oom_error);
  else
    kv_reply_bulk(out, text.data, text.len);
  kv_buf_deinit(&text);
}

static void cmd_select(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                       const kv_env_t *env, kv_buf_t *out) {
  (void)ks;
  (void)argc;
  (void)env;
  long long db;
  if (!resp_parse_ll(argv[1].ptr, argv[1].len, &db))
    reply_not_integer(out);
  else if (db != 0)
    kv_reply_error(out, "ERR DB index is out of range");
  else
    kv_reply_status(out, "OK");
}

/* ===== The table ========================================================= */

static const kv_command_t commands[] = {
    {"get", 2, KV_KEYS_ONE, KV_MERGE_NONE, cmd_get},
    {"set", -3, KV_KEYS_ONE, KV_MERGE_NONE, cmd_set},
    {"ping", -1, KV_KEYS_NONE, KV_MERGE_NONE, cmd_ping},
    {"echo", 2, KV_KEYS_NONE, KV_MERGE_NONE, cmd_echo},
    {"del", -2, KV_KEYS_EACH, KV_MERGE_SUM, cmd_del},
    {"unlink", -2, KV_KEYS_EACH, KV_MERGE_SUM, cmd_del},
    {"exists", -2, KV_KEYS_EACH, KV_MERGE_SUM, cmd_exists},
    {"incr", 2, KV_KEYS_ONE, KV_MERGE_NONE, cmd_incr},
    {"decr", 2, KV_KEYS_ONE, KV_MERGE_NONE, cmd_decr},
    {"incrby", 3, KV_KEYS_ONE, KV_MERGE_NONE, cmd_incrby},
    {"decrby", 3, KV_KEYS_ONE, KV_MERGE_NONE, cmd_decrby},
    {"mget", -2, KV_KEYS_EACH, KV_MERGE_ARRAY, cmd_mget},
    {"mset", -3, KV_KEYS_PAIRS, KV_MERGE_OK, cmd_mset},
    {"expire", -3, KV_KEYS_ONE, KV_MERGE_NONE, cmd_expire},
    {"pexpire", -3, KV_KEYS_ONE, KV_MERGE_NONE, cmd_pexpire},
    {"ttl", 2, KV_KEYS_ONE, KV_MERGE_NONE, cmd_ttl},
    {"pttl", 2, KV_KEYS_ONE, KV_MERGE_NONE, cmd_pttl},
    {"dbsize", 1, KV_KEYS_ALL, KV_MERGE_SUM, cmd_dbsize},
    {"flushall", -1, KV_KEYS_ALL, KV_MERGE_OK, cmd_flushall},
    {"flushdb", -1, KV_KEYS_ALL, KV_MERGE_OK, cmd_flushall},
    {"command", -1, KV_KEYS_NONE, KV_MERGE_NONE, cmd_command},
    {"config", -2, KV_KEYS_NONE, KV_MERGE_NONE, cmd_config},
    {"info", -1, KV_KEYS_NONE, KV_MERGE_NONE, cmd_info},
    {"select", 2, KV_KEYS_NONE, KV_MERGE_NONE, cmd_select},
};

size_t kv_command_count(void) {
  return sizeof commands / sizeof commands[0];
}

const kv_command_t *kv_command_lookup(const char *name, size_t len) {
  /* A linear scan of two dozen names, most frequent first (GET, SET):
   * shorter than a hash for this table. */
  resp_arg_t a = {name, len, 0};
  for (size_t i = 0; i < kv_command_count(); i++)
    if (arg_is(&a, commands[i].name))
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
    append_line_text(out, argv[0].ptr, argv[0].len < 128 ? argv[0].len : 128);
    kv_buf_append(out, "', with args beginning with: ", 29);
    size_t used = 0;
    for (size_t i = 1; i < argc && used < 128; i++) {
      size_t n = argv[i].len < 128 - used ? argv[i].len : 128 - used;
      kv_buf_append(out, "'", 1);
      append_line_text(out, argv[i].ptr, n);
      kv_buf_append(out, "' ", 2);
      used += n + 3;
    }
    kv_buf_append(out, "\r\n", 2);
    return NULL;
  }
  if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
      (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
    reply_wrong_arity(out, cmd->name);
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
