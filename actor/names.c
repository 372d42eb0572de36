/* isle — MIT licensed. */
/*
 * Registered names: a hash table from name to handle, and back (an actor
 * has at most one name, found by handle when it ends), under one mutex.
 * Names are looked up when a program starts or an actor restarts, not per
 * message, so a lock is the simple and right tool.
 *
 * A name must never outlive its actor. Register and the ending actor
 * meet without the ending actor taking the lock every time: register sets
 * the slot's bit of this module's end hook, then looks whether the mailbox is closed; the
 * ending actor closes its mailbox, then looks at the bit (all four
 * sequentially consistent). Either register sees the close and refuses, or
 * the ending actor sees the bit and removes the name under the lock.
 *
 * Threads: any.
 */
#include <string.h>

#include "internal.h"
#include "isle/heap.h"
#include "isle/lifecycle.h"

typedef struct entry_s {
  struct entry_s *next_by_name;
  struct entry_s *next_by_ref;
  isle_ref_t ref;
  uint64_t hash;
  char name[];
} entry_t;

struct isle__names_s {
  entry_t **by_name;
  entry_t **by_ref;
  size_t nbuckets; /* power of two, for both tables */
  size_t count;
};

/* ===== Helpers ========================================================= */

static uint64_t hash_name(const char *s) {
  uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3u;
  return h;
}

static uint64_t hash_ref(isle_ref_t r) {
  r ^= r >> 33;
  r *= 0xff51afd7ed558ccdu;
  return r ^ (r >> 33);
}

/* NULL name, empty or too long: ISLE_EINVAL. */
static int name_check(const char *name) {
  if (!name || !name[0] || strnlen(name, ISLE_NAME_MAX) == ISLE_NAME_MAX)
    return ISLE_EINVAL;
  return 0;
}

static entry_t **find_name(struct isle__names_s *t, const char *name,
                           uint64_t h) {
  entry_t **p = &t->by_name[h & (t->nbuckets - 1)];
  while (*p && ((*p)->hash != h || strcmp((*p)->name, name) != 0))
    p = &(*p)->next_by_name;
  return p;
}

static entry_t **find_ref(struct isle__names_s *t, isle_ref_t r) {
  entry_t **p = &t->by_ref[hash_ref(r) & (t->nbuckets - 1)];
  while (*p && (*p)->ref != r)
    p = &(*p)->next_by_ref;
  return p;
}

/* Doubles both tables when they hold more than one entry per bucket. */
static int grow(struct isle__names_s *t) {
  if (t->count < t->nbuckets)
    return 0;
  size_t n = t->nbuckets * 2;
  entry_t **bn = isle_calloc(n, sizeof *bn);
  entry_t **br = isle_calloc(n, sizeof *br);
  if (!bn || !br) {
    isle_free(bn);
    isle_free(br);
    return ISLE_ENOMEM;
  }
  for (size_t i = 0; i < t->nbuckets; i++) {
    for (entry_t *e = t->by_name[i], *next; e; e = next) {
      next = e->next_by_name;
      e->next_by_name = bn[e->hash & (n - 1)];
      bn[e->hash & (n - 1)] = e;
    }
    for (entry_t *e = t->by_ref[i], *next; e; e = next) {
      next = e->next_by_ref;
      e->next_by_ref = br[hash_ref(e->ref) & (n - 1)];
      br[hash_ref(e->ref) & (n - 1)] = e;
    }
  }
  isle_free(t->by_name);
  isle_free(t->by_ref);
  t->by_name = bn;
  t->by_ref = br;
  t->nbuckets = n;
  return 0;
}

/* The table, created on first use. Under names_lock. */
static struct isle__names_s *table(isle_runtime_t *rt) {
  if (!rt->names) {
    struct isle__names_s *t = isle_calloc(1, sizeof *t);
    if (!t)
      return NULL;
    t->nbuckets = 16;
    t->by_name = isle_calloc(t->nbuckets, sizeof *t->by_name);
    t->by_ref = isle_calloc(t->nbuckets, sizeof *t->by_ref);
    if (!t->by_name || !t->by_ref) {
      isle_free(t->by_name);
      isle_free(t->by_ref);
      isle_free(t);
      return NULL;
    }
    rt->names = t;
  }
  return rt->names;
}

/* Unlinks `e` from both tables and frees it. Under names_lock. */
static void remove_entry(struct isle__names_s *t, entry_t *e) {
  entry_t **p = find_name(t, e->name, e->hash);
  *p = e->next_by_name;
  p = find_ref(t, e->ref);
  *p = e->next_by_ref;
  t->count--;
  isle_free(e);
}

/* ===== Internal functions ============================================== */

/* The end hook: the actor `self` ended; frees its name, if it has one. */
static void names_forget(isle_runtime_t *rt, isle_ref_t self) {
  pthread_mutex_lock(&rt->names_lock);
  if (rt->names) {
    entry_t *e = *find_ref(rt->names, self);
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
  for (size_t i = 0; i < t->nbuckets; i++)
    for (entry_t *e = t->by_name[i], *next; e; e = next) {
      next = e->next_by_name;
      isle_free(e);
    }
  isle_free(t->by_name);
  isle_free(t->by_ref);
  isle_free(t);
  rt->names = NULL;
}

/* ===== Public functions ================================================ */

int isle_name_register(isle_runtime_t *rt, const char *name, isle_ref_t ref) {
  if (!rt || name_check(name) || isle__ref_check(rt, ref))
    return ISLE_EINVAL;
  isle__slot_t *s = isle__slot_of(rt, ref);
  size_t len = strlen(name);
  uint64_t h = hash_name(name);
  int rc = 0;
  pthread_mutex_lock(&rt->names_lock);
  struct isle__names_s *t = table(rt);
  if (!t || grow(t) != 0) {
    rc = ISLE_ENOMEM;
  } else if (*find_name(t, name, h) || *find_ref(t, ref)) {
    rc = ISLE_EBUSY;
  } else {
    /* seq_cst, then the seq_cst look at the mailbox: see the top. A
     * handle of an older generation finds the slot's epoch moved on. */
    atomic_fetch_or_explicit(&s->xflags, rt->names_hook,
                             memory_order_seq_cst);
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
        e->hash = h;
        memcpy(e->name, name, len + 1);
        entry_t **bn = &t->by_name[h & (t->nbuckets - 1)];
        entry_t **br = &t->by_ref[hash_ref(ref) & (t->nbuckets - 1)];
        e->next_by_name = *bn;
        e->next_by_ref = *br;
        *bn = e;
        *br = e;
        t->count++;
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
    entry_t *e = *find_name(rt->names, name, hash_name(name));
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
    entry_t *e = *find_name(rt->names, name, hash_name(name));
    if (e) {
      *out = e->ref;
      rc = 0;
    }
  }
  pthread_mutex_unlock(&rt->names_lock);
  return rc;
}
