/* isle — MIT licensed. */
/*
 * The keyspace of the key-value sample and the key hash that also picks a
 * key's shard (see kv_cmd.h for the contracts; the entry layout and the
 * functions the commands use are in kv_internal.h).
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
 * Threads: a keyspace is its owner's; kv_hash and kv_key_shard are
 * reentrant.
 */
#include <string.h> /* memcpy, memcmp */

#include <isle.h>

#include "kv_internal.h"

/* ===== Constants and types =============================================== */

#define INITIAL_BUCKETS 16

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
void kv__keyspace_flush(kv_keyspace_t *ks) {
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

entry_t *kv__lookup(kv_keyspace_t *ks, const resp_arg_t *key, int64_t now) {
  entry_t **link =
      find(ks, key->ptr, key->len, kv_hash(key->ptr, key->len), now);
  return link != NULL ? *link : NULL;
}

void kv__set_expiry(kv_keyspace_t *ks, entry_t *e, int64_t when) {
  if ((e->expire_ms != 0) != (when != 0))
    ks->expires += when != 0 ? 1 : (size_t)-1;
  e->expire_ms = when;
}

/* Stores key = value with expiry `when` (0: none). Returns the entry, or
 * NULL when memory ran out (the old value, if any, stays). */
entry_t *kv__store(kv_keyspace_t *ks, const char *key, size_t klen,
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
    kv__set_expiry(ks, e, when);
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
  kv__set_expiry(ks, e, when);
  if (ks->count > ks->mask + 1)
    grow(ks);
  return e;
}

/* Removes key; returns whether it was there (and live). */
bool kv__delete_key(kv_keyspace_t *ks, const resp_arg_t *key, int64_t now) {
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
