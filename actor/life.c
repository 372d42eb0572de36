/* isle — MIT licensed. */
/*
 * Exits, monitors and links: Erlang's signals, as system messages.
 *
 * Every request travels to its target as a message flagged SYSTEM (and
 * NOCAP: a full mailbox takes it), so it is ordered with the sender's other
 * messages and handled by the target's own worker in its turn: an actor's
 * monitor and link lists (its `life`) are touched only by that worker, with
 * no lock. The races with death all resolve at one point, the target's
 * mailbox close (actor.c):
 *   - a request pushed before the close is drained by the dying actor,
 *     which answers it as if it had been alive (a MONITOR gets its DOWN, a
 *     LINK gets an EXIT, both with the real reason);
 *   - a request pushed after it fails with ISLE_EDEAD at the requester,
 *     which answers itself (isle_monitor queues a DOWN to its own
 *     mailbox; isle_link returns ISLE_EDEAD).
 * So a monitor yields exactly one DOWN, and both ends of a link agree.
 *
 * The watcher keeps its own list of monitors it holds (`watching`); a DOWN
 * whose id is no longer there (isle_demonitor ran) is dropped on arrival.
 * Likewise an EXIT from an actor no longer in `links` (isle_unlink ran) is
 * dropped. Messages are built by the sending thread from its heap.
 *
 * Threads: the public functions run inside the calling actor's callback;
 * the isle__life_* hooks on the worker running (or ending) the actor.
 */
#include <stddef.h> /* offsetof: the lists' keys */
#include <string.h>

#include "internal.h"
#include "isle/heap.h"
#include "isle/lifecycle.h"

/* System message types (the public DOWN and EXIT are system messages too
 * until delivered). */
enum {
  SIG_EXIT = ISLE_MSG_RESERVED + 0x100, /* payload: isle_exit_t */
  SIG_MONITOR,                          /* payload: monitor_req_t */
  SIG_DEMONITOR,                        /* payload: monitor id */
  SIG_LINK,   /* payload: the EXIT for the sender (the sender links) */
  SIG_UNLINK, /* the sender unlinks */
};

/* Notices are allocated when a monitor or link is made, never when an
 * actor ends: the death path cannot run out of memory, and a DOWN or EXIT
 * promised is a DOWN or EXIT delivered. */
typedef struct monitor_req_s {
  uint64_t id;
  isle_msg_t *down; /* the DOWN the target will send, reason to fill in */
} monitor_req_t;

/* Each list's key comes first, where vec_find looks. */
typedef struct watcher_s {
  uint64_t id;    /* key */
  isle_ref_t ref; /* who monitors this actor */
  isle_msg_t *down;
} watcher_t;

typedef struct watching_s {
  uint64_t id;       /* key */
  isle_ref_t target; /* whom this actor monitors */
  isle_msg_t *demon; /* the DEMONITOR for isle_demonitor, or for our end */
} watching_t;

typedef struct link_s {
  isle_ref_t ref;   /* key */
  isle_msg_t *exit; /* the EXIT to send it when this actor ends */
} link_t;

_Static_assert(offsetof(watcher_t, id) == 0 && offsetof(watching_t, id) == 0 &&
                   offsetof(link_t, ref) == 0,
               "vec_find reads the key at the start of an item");

/* A small array; lists stay short in practice (a supervisor's links are
 * its children), so lookups scan. */
typedef struct vec_s {
  void *items;
  uint32_t n, cap;
} vec_t;

struct isle__life_s {
  vec_t watchers; /* watcher_t */
  vec_t watching; /* watching_t */
  vec_t links;    /* link_t */
  bool trap_exits;
};

/* ===== Helpers ========================================================= */

/* Room for one more item. */
static int vec_reserve(vec_t *v, size_t size) {
  if (v->n < v->cap)
    return 0;
  uint32_t cap = v->cap ? v->cap * 2 : 4;
  void *items = isle_realloc(v->items, (size_t)cap * size);
  if (!items)
    return ISLE_ENOMEM;
  v->items = items;
  v->cap = cap;
  return 0;
}

/* Appends after a successful vec_reserve. */
static void vec_add(vec_t *v, const void *item, size_t size) {
  memcpy((char *)v->items + (size_t)v->n * size, item, size);
  v->n++;
}

/* Removes item i (order is not kept). */
static void vec_del(vec_t *v, uint32_t i, size_t size) {
  v->n--;
  if (i != v->n)
    memcpy((char *)v->items + (size_t)i * size,
           (char *)v->items + (size_t)v->n * size, size);
}

/* The index of the item of `size` bytes whose key (its first 64 bits: a
 * watcher's or a watching's id, a link's ref) is `key`; -1 when none is. */
static int64_t vec_find(const vec_t *v, size_t size, uint64_t key) {
  const char *item = v->items;
  for (uint32_t i = 0; i < v->n; i++, item += size) {
    uint64_t k;
    memcpy(&k, item, sizeof k);
    if (k == key)
      return i;
  }
  return -1;
}

static isle__life_t *life_of(isle__actor_t *a) {
  if (!a->life)
    a->life = isle_calloc(1, sizeof *a->life);
  return a->life;
}

/* A system message of `type` with `size` payload bytes, zeroed. */
static isle_msg_t *sig_new(uint32_t type, size_t size) {
  isle_msg_t *m = isle_msg_new(type, size);
  if (m) {
    m->flags = ISLE__MSG_F_SYSTEM | ISLE__MSG_F_NOCAP;
    memset(isle_msg_data(m), 0, size);
  }
  return m;
}

static isle_msg_t *down_new(isle_ref_t ref, uint64_t id) {
  isle_msg_t *m = sig_new(ISLE_MSG_DOWN, sizeof(isle_down_t));
  if (m) {
    isle_down_t *d = isle_msg_data(m);
    d->ref = ref;
    d->monitor = id;
  }
  return m;
}

static isle_msg_t *exit_new(isle_ref_t from) {
  isle_msg_t *m = sig_new(ISLE_MSG_EXIT, sizeof(isle_exit_t));
  if (m) {
    isle_exit_t *e = isle_msg_data(m);
    e->from = from;
    e->ended = true;
  }
  return m;
}

/* Sends a system message as ctx's actor; a refused one is freed (its
 * target is gone, which is all the sender needed to know). */
static int sig_send(isle_ctx_t *ctx, isle_ref_t to, isle_msg_t *m) {
  isle_ref_t self = ctx->actor ? ctx->actor->self : ISLE_REF_NONE;
  int rc = isle__send(ctx->rt, ctx->worker, self, to, m);
  if (rc)
    isle_free(m);
  return rc;
}

/* Sends a prepared DOWN or EXIT with its reason. */
static void note_send(isle_ctx_t *ctx, isle_ref_t to, isle_msg_t *note,
                      int reason) {
  if (isle_msg_type(note) == ISLE_MSG_DOWN)
    ((isle_down_t *)isle_msg_data(note))->reason = reason;
  else
    ((isle_exit_t *)isle_msg_data(note))->reason = reason;
  sig_send(ctx, to, note);
}

/* ===== The turn's hooks ================================================ */

bool isle__life_signal(isle_ctx_t *ctx, isle_msg_t *m) {
  isle__actor_t *a = ctx->actor;
  isle_ref_t from = m->sender;
  isle__life_t *l = a->life;
  switch (m->type) {
  case SIG_EXIT: {
    isle_exit_t *e = isle_msg_data(m);
    if (l && l->trap_exits && e->reason != ISLE_EKILLED) {
      m->type = ISLE_MSG_EXIT; /* the actor decides */
      m->flags &= ~ISLE__MSG_F_SYSTEM;
      return true;
    }
    ctx->stop = true;
    ctx->stop_reason = e->reason;
    break;
  }
  case SIG_MONITOR: {
    const monitor_req_t *r = isle_msg_data(m);
    watcher_t w = {.id = r->id, .ref = from, .down = r->down};
    l = life_of(a);
    if (l && vec_reserve(&l->watchers, sizeof w) == 0)
      vec_add(&l->watchers, &w, sizeof w);
    else /* cannot keep it: answer at once rather than never */
      note_send(ctx, from, r->down, ISLE_ENOMEM);
    break;
  }
  case SIG_DEMONITOR: {
    int64_t i = l ? vec_find(&l->watchers, sizeof(watcher_t),
                             *(uint64_t *)isle_msg_data(m))
                  : -1;
    if (i >= 0) {
      isle_free(((watcher_t *)l->watchers.items)[i].down);
      vec_del(&l->watchers, (uint32_t)i, sizeof(watcher_t));
    }
    break;
  }
  case SIG_LINK: {
    isle_msg_t *back = *(isle_msg_t **)isle_msg_data(m);
    l = life_of(a);
    if (l && vec_find(&l->links, sizeof(link_t), from) >= 0) {
      isle_free(back); /* linked already */
      break;
    }
    link_t k = {from, exit_new(a->self)};
    if (l && k.exit && vec_reserve(&l->links, sizeof k) == 0) {
      vec_add(&l->links, &k, sizeof k);
      isle_free(back);
    } else {
      /* The linker believes in the link: end it from this side. */
      isle_free(k.exit);
      note_send(ctx, from, back, ISLE_ENOMEM);
    }
    break;
  }
  case SIG_UNLINK: {
    int64_t i = l ? vec_find(&l->links, sizeof(link_t), from) : -1;
    if (i >= 0) {
      isle_free(((link_t *)l->links.items)[i].exit);
      vec_del(&l->links, (uint32_t)i, sizeof(link_t));
    }
    break;
  }
  case ISLE_MSG_DOWN: {
    const isle_down_t *d = isle_msg_data(m);
    int64_t i = l ? vec_find(&l->watching, sizeof(watching_t), d->monitor) : -1;
    if (i < 0)
      break; /* demonitored: dropped */
    isle_free(((watching_t *)l->watching.items)[i].demon);
    vec_del(&l->watching, (uint32_t)i, sizeof(watching_t));
    m->flags &= ~ISLE__MSG_F_SYSTEM;
    return true;
  }
  case ISLE_MSG_EXIT: {
    const isle_exit_t *e = isle_msg_data(m);
    int64_t i = l ? vec_find(&l->links, sizeof(link_t), e->from) : -1;
    if (i < 0)
      break; /* unlinked: dropped */
    isle_free(((link_t *)l->links.items)[i].exit);
    vec_del(&l->links, (uint32_t)i, sizeof(link_t));
    if (l->trap_exits) {
      m->flags &= ~ISLE__MSG_F_SYSTEM;
      return true;
    }
    if (e->reason != ISLE_EXIT_NORMAL) {
      ctx->stop = true;
      ctx->stop_reason = e->reason;
    }
    break;
  }
  default:
    break;
  }
  isle_free(m);
  return false;
}

bool isle__life_drained(isle_ctx_t *ctx, isle_msg_t *m, int reason,
                        bool notify) {
  bool ordinary = !(m->flags & ISLE__MSG_F_SYSTEM);
  if (!ordinary) {
    isle_msg_t *note = NULL;
    if (m->type == SIG_MONITOR)
      note = ((monitor_req_t *)isle_msg_data(m))->down;
    else if (m->type == SIG_LINK)
      note = *(isle_msg_t **)isle_msg_data(m);
    if (note && notify)
      note_send(ctx, m->sender, note, reason);
    else
      isle_free(note);
  }
  isle_free(m);
  return ordinary;
}

void isle__life_end(isle_ctx_t *ctx, int reason, bool notify) {
  isle__actor_t *a = ctx->actor;
  isle__life_t *l = a->life;
  if (!l)
    return;
  const watcher_t *w = l->watchers.items;
  for (uint32_t i = 0; i < l->watchers.n; i++) {
    if (notify)
      note_send(ctx, w[i].ref, w[i].down, reason);
    else
      isle_free(w[i].down);
  }
  const link_t *k = l->links.items;
  for (uint32_t i = 0; i < l->links.n; i++) {
    if (notify)
      note_send(ctx, k[i].ref, k[i].exit, reason);
    else
      isle_free(k[i].exit);
  }
  /* The monitors this actor holds end with it: their targets forget them
   * now, rather than keep a DOWN for a dead watcher until they end. */
  const watching_t *m = l->watching.items;
  for (uint32_t i = 0; i < l->watching.n; i++) {
    if (notify)
      sig_send(ctx, m[i].target, m[i].demon);
    else
      isle_free(m[i].demon);
  }
  isle_free(l->watchers.items);
  isle_free(l->watching.items);
  isle_free(l->links.items);
  isle_free(l);
  a->life = NULL;
}

int isle__life_link_child(isle_ctx_t *ctx, isle__actor_t *child) {
  isle__life_t *pl = life_of(ctx->actor);
  isle__life_t *cl = life_of(child);
  if (!pl || !cl || vec_reserve(&pl->links, sizeof(link_t)) ||
      vec_reserve(&cl->links, sizeof(link_t)))
    return ISLE_ENOMEM;
  link_t to_child = {child->self, exit_new(ctx->actor->self)};
  link_t to_parent = {ctx->actor->self, exit_new(child->self)};
  if (!to_child.exit || !to_parent.exit) {
    isle_free(to_child.exit);
    isle_free(to_parent.exit);
    return ISLE_ENOMEM;
  }
  vec_add(&pl->links, &to_child, sizeof to_child);
  vec_add(&cl->links, &to_parent, sizeof to_parent);
  return 0;
}

/* ===== Public functions ================================================ */

static int exit_from(isle_runtime_t *rt, isle_ctx_t *ctx, isle_ref_t ref,
                     int reason) {
  if (!rt || reason > 0)
    return ISLE_EINVAL;
  int bad = isle__ref_check(rt, ref);
  if (bad)
    return bad;
  if (ctx && ctx->actor && ctx->actor->self == ref) {
    ctx->stop = true;
    ctx->stop_reason = reason;
    return 0;
  }
  isle_msg_t *m = sig_new(SIG_EXIT, sizeof(isle_exit_t));
  if (!m)
    return ISLE_ENOMEM;
  isle_exit_t *e = isle_msg_data(m);
  e->from = ctx && ctx->actor ? ctx->actor->self : ISLE_REF_NONE;
  e->reason = reason;
  if (ctx)
    return sig_send(ctx, ref, m);
  int rc = isle__send(rt, NULL, ISLE_REF_NONE, ref, m);
  if (rc)
    isle_free(m);
  return rc;
}

int isle_exit(isle_ctx_t *ctx, isle_ref_t ref, int reason) {
  return ctx ? exit_from(ctx->rt, ctx, ref, reason) : ISLE_EINVAL;
}

int isle_runtime_exit(isle_runtime_t *rt, isle_ref_t ref, int reason) {
  return exit_from(rt, NULL, ref, reason);
}

int isle_monitor(isle_ctx_t *ctx, isle_ref_t target, uint64_t *id) {
  if (!ctx || !ctx->actor)
    return ISLE_EINVAL;
  int bad = isle__ref_check(ctx->rt, target);
  if (bad)
    return bad;
  isle__life_t *l = life_of(ctx->actor);
  if (!l || vec_reserve(&l->watching, sizeof(watching_t)))
    return ISLE_ENOMEM;
  /* Relaxed: ids need only be unique. */
  watching_t w = {
      .target = target,
      .id = atomic_fetch_add_explicit(&ctx->rt->xnext_id, 1,
                                      memory_order_relaxed) +
            1,
      .demon = sig_new(SIG_DEMONITOR, sizeof(uint64_t)),
  };
  isle_msg_t *m = sig_new(SIG_MONITOR, sizeof(monitor_req_t));
  isle_msg_t *down = down_new(target, w.id);
  if (!m || !down || !w.demon) {
    isle_free(m);
    isle_free(down);
    isle_free(w.demon);
    return ISLE_ENOMEM;
  }
  *(uint64_t *)isle_msg_data(w.demon) = w.id;
  monitor_req_t *r = isle_msg_data(m);
  r->id = w.id;
  r->down = down;
  int rc = isle__send(ctx->rt, ctx->worker, ctx->actor->self, target, m);
  if (rc) {
    /* Gone before the request got in: the DOWN comes from here, into our
     * own mailbox (open: we are running), after what is queued there. */
    isle_free(m);
    ((isle_down_t *)isle_msg_data(down))->reason = ISLE_EDEAD;
    rc = isle__send(ctx->rt, ctx->worker, ctx->actor->self, ctx->actor->self,
                    down);
    if (rc) {
      /* Only while the runtime is being freed, when nothing runs again. */
      isle_free(down);
      isle_free(w.demon);
      return rc;
    }
  }
  vec_add(&l->watching, &w, sizeof w);
  if (id)
    *id = w.id;
  return 0;
}

int isle_demonitor(isle_ctx_t *ctx, uint64_t id) {
  if (!ctx || !ctx->actor)
    return ISLE_EINVAL;
  isle__life_t *l = ctx->actor->life;
  int64_t i = l ? vec_find(&l->watching, sizeof(watching_t), id) : -1;
  if (i < 0)
    return ISLE_ENOENT;
  watching_t w = ((watching_t *)l->watching.items)[i];
  vec_del(&l->watching, (uint32_t)i, sizeof(watching_t));
  /* Tell the target, so that it frees its DOWN now rather than at its end
   * (a DOWN already on its way is dropped on arrival). */
  sig_send(ctx, w.target, w.demon);
  return 0;
}

const isle_down_t *isle_msg_down(isle_msg_t *msg) {
  return msg && isle_msg_type(msg) == ISLE_MSG_DOWN &&
                 isle_msg_size(msg) >= sizeof(isle_down_t)
             ? isle_msg_data(msg)
             : NULL;
}

const isle_exit_t *isle_msg_exit(isle_msg_t *msg) {
  return msg && isle_msg_type(msg) == ISLE_MSG_EXIT &&
                 isle_msg_size(msg) >= sizeof(isle_exit_t)
             ? isle_msg_data(msg)
             : NULL;
}

int isle_link(isle_ctx_t *ctx, isle_ref_t other) {
  if (!ctx || !ctx->actor || other == ctx->actor->self)
    return ISLE_EINVAL;
  int bad = isle__ref_check(ctx->rt, other);
  if (bad)
    return bad;
  isle__life_t *l = life_of(ctx->actor);
  if (!l || vec_reserve(&l->links, sizeof(link_t)))
    return ISLE_ENOMEM;
  if (vec_find(&l->links, sizeof(link_t), other) >= 0)
    return 0;
  /* Both notices now: ours for `other` if we end, and the one it sends us
   * if it ends (or if it is ending and drains this request). */
  link_t k = {other, exit_new(ctx->actor->self)};
  isle_msg_t *back = exit_new(other);
  isle_msg_t *m = sig_new(SIG_LINK, sizeof(isle_msg_t *));
  if (!k.exit || !back || !m) {
    isle_free(k.exit);
    isle_free(back);
    isle_free(m);
    return ISLE_ENOMEM;
  }
  *(isle_msg_t **)isle_msg_data(m) = back;
  int rc = isle__send(ctx->rt, ctx->worker, ctx->actor->self, other, m);
  if (rc) {
    isle_free(k.exit);
    isle_free(back);
    isle_free(m);
    return rc;
  }
  vec_add(&l->links, &k, sizeof k);
  return 0;
}

int isle_unlink(isle_ctx_t *ctx, isle_ref_t other) {
  if (!ctx || !ctx->actor)
    return ISLE_EINVAL;
  isle__life_t *l = ctx->actor->life;
  int64_t i = l ? vec_find(&l->links, sizeof(link_t), other) : -1;
  if (i < 0)
    return ISLE_ENOENT;
  /* The EXIT this link kept for `other` carries the request instead: an
   * unlink needs no allocation, so it always reaches the other side. */
  isle_msg_t *m = ((link_t *)l->links.items)[i].exit;
  vec_del(&l->links, (uint32_t)i, sizeof(link_t));
  m->type = SIG_UNLINK;
  sig_send(ctx, other, m);
  return 0;
}

int isle_trap_exits(isle_ctx_t *ctx, bool on) {
  if (!ctx || !ctx->actor)
    return ISLE_EINVAL;
  isle__life_t *l = life_of(ctx->actor);
  if (!l)
    return ISLE_ENOMEM;
  l->trap_exits = on;
  return 0;
}

int isle_ctx_spawn_link(isle_ctx_t *ctx, const isle_actor_type_t *type,
                        const void *arg, isle_ref_t *out) {
  if (!ctx)
    return ISLE_EINVAL;
  return isle__spawn(ctx->rt, ctx, type, arg, true, out);
}
