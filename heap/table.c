/* isle — MIT licensed. */
/*
 * The intrusive chained hash table (table.h says what it is and its
 * invariants): growing, linking, unlinking. Allocates only its bucket
 * arrays, from the calling thread's heap.
 *
 * Threads: the caller's lock serialises every call on one table.
 */
#include "table.h"

#include "isle/error.h"
#include "isle/heap.h"

/* Links `l` at the head of bucket `b`. */
static void link_at(isle__tlink_t **b, isle__tlink_t *l) {
  l->next = *b;
  l->pprev = b;
  if (*b)
    (*b)->pprev = &l->next;
  *b = l;
}

int isle__table_reserve(isle__table_t *t) {
  if (t->count < t->nbuckets)
    return 0;
  size_t n = t->nbuckets ? t->nbuckets * 2 : ISLE__TABLE_MIN;
  isle__tlink_t **nb = isle_calloc(n, sizeof *nb);
  if (!nb)
    return ISLE_ENOMEM;
  /* Every link moves to the bucket its hash picks among n. */
  for (size_t i = 0; i < t->nbuckets; i++)
    for (isle__tlink_t *l = t->buckets[i], *next; l; l = next) {
      next = l->next;
      link_at(&nb[l->hash & (n - 1)], l);
    }
  isle_free(t->buckets);
  t->buckets = nb;
  t->nbuckets = n;
  return 0;
}

void isle__table_insert(isle__table_t *t, isle__tlink_t *l, uint64_t hash) {
  l->hash = hash;
  link_at(&t->buckets[hash & (t->nbuckets - 1)], l);
  t->count++;
}

void isle__table_remove(isle__table_t *t, isle__tlink_t *l) {
  *l->pprev = l->next;
  if (l->next)
    l->next->pprev = l->pprev;
  l->next = NULL;
  l->pprev = NULL;
  t->count--;
}

void isle__table_deinit(isle__table_t *t) {
  isle_free(t->buckets);
  t->buckets = NULL;
  t->nbuckets = 0;
  t->count = 0;
}
