/* isle — MIT licensed. */
/*
 * Registered names: a hash table (heap/table.h) from name to handle, and
 * back (an actor has at most one name, found by handle when it ends),
 * under one mutex.
 * Names are looked up when a program starts or an actor restarts, not per
 * message, so a lock is the simple and right tool.
 *
 * A name must never outlive its actor. Register and the ending actor
 * meet without the ending actor taking the lock every time: register sets
 * the slot's bit of this module's end hook, then looks whether the mailbox is
 * closed; the ending actor closes its mailbox, then looks at the bit (all four
 * sequentially consistent). Either register sees the close and refuses, or
 * the ending actor sees the bit and removes the name under the lock.
 *
 * Threads: any.
 */
#include <stddef.h> /* offsetof: an entry from its links */
#include <string.h>

#include "heap/table.h"
#include "internal.h"
#include "isle/heap.h"
#include "isle/lifecycle.h"

typedef struct entry_s {
  isle__tlink_t by_name; /* hash: isle__hash_str(name) */
  isle__tlink_t by_ref;  /* hash: isle__hash_u64(ref) */
  isle_ref_t ref;
  char name[];
} entry_t;

/* Two indexes of the same entries, so they hold the same count. */
struct isle__names_s {
  isle__table_t by_name;
  isle__table_t by_ref;
};

/* ===== Helpers ========================================================= */

static entry_t *of_name_link(isle__tlink_t *l) {
  return (entry_t *)((char *)l - offsetof(entry_t, by_name));
}

static entry_t *of_ref_link(isle__tlink_t *l) {
  return (entry_t *)((char *)l - offsetof(entry_t, by_ref));
}

/* NULL name, empty or too long: ISLE_EINVAL. */
static int name_check(const char *name) {
  if (!name || !name[0] || strnlen(name, ISLE_NAME_MAX) == ISLE_NAME_MAX)
    return ISLE_EINVAL;
  return 0;
}

static entry_t *find_name(struct isle__names_s *t, const char *name,
                          uint64_t h) {
  for (isle__tlink_t *l = isle__table_bucket(&t->by_name, h); l; l = l->next)
    if (l->hash == h && strcmp(of_name_link(l)->name, name) == 0)
      return of_name_link(l);
  return NULL;
}

static entry_t *find_ref(struct isle__names_s *t, isle_ref_t r) {
  uint64_t h = isle__hash_u64(r);
  for (isle__tlink_t *l = isle__table_bucket(&t->by_ref, h); l; l = l->next)
    if (l->hash == h && of_ref_link(l)->ref == r)
      return of_ref_link(l);
  return NULL;
}

/* The table, created on first use (both indexes empty, without buckets
 * until the first register). Under names_lock. */
static struct isle__names_s *table(isle_runtime_t *rt) {
  if (!rt->names)
    rt->names = isle_calloc(1, sizeof *rt->names);
  return rt->names;
}

/* Unlinks `e` from both indexes and frees it. Under names_lock. */
static void remove_entry(struct isle__names_s *t, entry_t *e) {
  isle__table_remove(&t->by_name, &e->by_name);
  isle__table_remove(&t->by_ref, &e->by_ref);
  isle_free(e);
}

/* ===== Internal functions ============================================== */

/* The end hook: the actor `self` ended; frees its name, if it has one. */
static void names_forget(isle_runtime_t *rt, isle_ref_t self) {
  pthread_mutex_lock(&rt->names_lock);
  if (rt->names) {
    entry_t *e = find_ref(rt->names, self);
    if (e)
      remove_entry(rt->names, e);
  }
  pthread_mutex_unlock(&rt->names_lock);
}

void isle__names_init(isle_runtime_t *rt) {
  /* The first hook of a new runtime: there is always room for it. */
  int rc = isle__end_hook_add(rt, names_forget, &rt->names_hook);
  (void)rc;
}

void isle__names_free(isle_runtime_t *rt) {
  struct isle__names_s *t = rt->names;
  if (!t)
    return;
  for (size_t i = 0; i < t->by_name.nbuckets; i++)
    for (isle__tlink_t *l = isle__table_at(&t->by_name, i), *next; l;
         l = next) {
      next = l->next;
      isle_free(of_name_link(l));
    }
  isle__table_deinit(&t->by_name);
  isle__table_deinit(&t->by_ref);
  isle_free(t);
  rt->names = NULL;
}

/* ===== Public functions ================================================ */

int isle_name_register(isle_runtime_t *rt, const char *name, isle_ref_t ref) {
  if (!rt || name_check(name) || isle__ref_check(rt, ref))
    return ISLE_EINVAL;
  isle__slot_t *s = isle__slot_of(rt, ref);
  size_t len = strlen(name);
  uint64_t h = isle__hash_str(name);
  int rc = 0;
  pthread_mutex_lock(&rt->names_lock);
  struct isle__names_s *t = table(rt);
  if (!t || isle__table_reserve(&t->by_name) != 0 ||
      isle__table_reserve(&t->by_ref) != 0) {
    rc = ISLE_ENOMEM;
  } else if (find_name(t, name, h) || find_ref(t, ref)) {
    rc = ISLE_EBUSY;
  } else {
    /* seq_cst, then the seq_cst look at the mailbox: see the top. A
     * handle of an older generation finds the slot's epoch moved on. */
    atomic_fetch_or_explicit(&s->xflags, rt->names_hook, memory_order_seq_cst);
    uint64_t c = atomic_load_explicit(&s->mbox.xcount, memory_order_seq_cst);
    if ((c & ISLE__MB_CLOSED) ||
        ((c >> ISLE__MB_EPOCH_SHIFT) & ISLE__MB_EPOCH_MASK) !=
            (uint32_t)(ref >> 32)) {
      rc = ISLE_EDEAD;
    } else {
      entry_t *e = isle_malloc(sizeof *e + len + 1);
      if (!e) {
        rc = ISLE_ENOMEM;
      } else {
        e->ref = ref;
        memcpy(e->name, name, len + 1);
        isle__table_insert(&t->by_name, &e->by_name, h);
        isle__table_insert(&t->by_ref, &e->by_ref, isle__hash_u64(ref));
      }
    }
  }
  pthread_mutex_unlock(&rt->names_lock);
  return rc;
}

int isle_name_unregister(isle_runtime_t *rt, const char *name) {
  if (!rt || name_check(name))
    return ISLE_EINVAL;
  int rc = ISLE_ENOENT;
  pthread_mutex_lock(&rt->names_lock);
  if (rt->names) {
    entry_t *e = find_name(rt->names, name, isle__hash_str(name));
    if (e) {
      remove_entry(rt->names, e);
      rc = 0;
    }
  }
  pthread_mutex_unlock(&rt->names_lock);
  return rc;
}

int isle_name_lookup(isle_runtime_t *rt, const char *name, isle_ref_t *out) {
  if (!rt || !out || name_check(name))
    return ISLE_EINVAL;
  int rc = ISLE_ENOENT;
  pthread_mutex_lock(&rt->names_lock);
  if (rt->names) {
    entry_t *e = find_name(rt->names, name, isle__hash_str(name));
    if (e) {
      *out = e->ref;
      rc = 0;
    }
  }
  pthread_mutex_unlock(&rt->names_lock);
  return rc;
}
