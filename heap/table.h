/* isle — MIT licensed. */
/*
 * An intrusive chained hash table: the entry embeds an isle__tlink_t (one
 * per table it is in), the table holds only the bucket array. Here in the
 * bottom layer, beside the allocator it uses, so that every layer may
 * index its records with it (actor/names.c: names by name and by handle;
 * io/timer.c: timers by id and by target).
 *
 * Invariants: the bucket count is zero or a power of two; every link in
 * bucket i has (hash & (nbuckets - 1)) == i; each chain is doubly linked
 * (`pprev` points at the pointer that points at the link), so a remove
 * needs no search; `count` is the number of links in the table. A zeroed
 * table is a valid empty one with no buckets: lookups find nothing, and
 * the first isle__table_reserve gives it ISLE__TABLE_MIN buckets. It
 * doubles when it would hold more than one entry per bucket.
 *
 * The table knows no keys: a link carries its key's hash, and the caller
 * walks a bucket (isle__table_bucket, then `next`) comparing the hash and
 * then its own key. Nothing here locks: the caller serialises every use.
 *
 * Threads: whichever the caller's lock allows, one at a time.
 */
#ifndef ISLE_HEAP_TABLE_H
#define ISLE_HEAP_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define ISLE__TABLE_MIN 16 /* buckets of a table's first allocation */

/* Embedded in an entry, one per table. Private to the table but for
 * `next` (to walk a bucket) and `hash` (read-only). */
typedef struct isle__tlink_s {
  struct isle__tlink_s *next;   /* the bucket's next link, or NULL */
  struct isle__tlink_s **pprev; /* the pointer that points here */
  uint64_t hash;                /* the entry's key, hashed */
} isle__tlink_t;

typedef struct isle__table_s {
  isle__tlink_t **buckets; /* NULL while nbuckets is 0 */
  size_t nbuckets;         /* zero or a power of two */
  size_t count;            /* links in the table (read-only) */
} isle__table_t;

/* ===== Hashes ========================================================== */

/* A 64-bit integer (an id, a handle), mixed so that its low bits, which
 * pick the bucket, depend on all of it (murmur3's finaliser). */
static inline uint64_t isle__hash_u64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdu;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53u;
  return x ^ (x >> 33);
}

/* A NUL-terminated string (FNV-1a). */
static inline uint64_t isle__hash_str(const char *s) {
  uint64_t h = 0xcbf29ce484222325u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3u;
  return h;
}

/* ===== Functions ======================================================= */

/* The first link of the bucket for `hash` (NULL: none). Walk on with
 * `next`; links of other hashes share buckets, so compare `hash`, then the
 * key. Can't fail. */
static inline isle__tlink_t *isle__table_bucket(const isle__table_t *t,
                                                uint64_t hash) {
  return t->nbuckets ? t->buckets[hash & (t->nbuckets - 1)] : NULL;
}

/* The first link of bucket `i` < nbuckets, for a walk over every entry. */
static inline isle__tlink_t *isle__table_at(const isle__table_t *t, size_t i) {
  return t->buckets[i];
}

/* Makes room for one more link: allocates the first buckets, or doubles
 * them once count reaches nbuckets. 0, or ISLE_ENOMEM with the table as it
 * was. */
int isle__table_reserve(isle__table_t *t);

/* Links `l` with `hash` into t, which must have buckets (a reserve
 * succeeded since it was created). Can't fail. Ownership: the entry stays
 * the caller's; the table only points at it until it is removed. */
void isle__table_insert(isle__table_t *t, isle__tlink_t *l, uint64_t hash);

/* Unlinks `l`, which is in t. Can't fail. */
void isle__table_remove(isle__table_t *t, isle__tlink_t *l);

/* Frees the bucket array and leaves t zeroed (empty, valid). The entries
 * are the caller's: free them first, walking with isle__table_at. */
void isle__table_deinit(isle__table_t *t);

#endif /* ISLE_HEAP_TABLE_H */
