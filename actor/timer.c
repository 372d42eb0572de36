/* isle — MIT licensed. */
/*
 * Timers, on a libuv loop in the runtime's "io" thread (started by the
 * first timer, stopped by isle_runtime_free).
 *
 * Other threads never touch the loop: they queue commands (start, cancel,
 * "this target ended") under timers_lock and wake the loop with
 * uv_async_send, the one libuv call that is thread-safe. The same lock
 * guards the table of live timers by id, which decides every race:
 *   - cancel vs fire: whoever removes the timer from the table first wins;
 *     a cancelled timer is never sent, a fired one-shot cannot be
 *     cancelled (ISLE_ENOENT);
 *   - a target that ended: the send fails with ISLE_EDEAD (handles carry
 *     generations), so a timer never reaches freed memory; the message is
 *     freed and counted as dropped, and the timer ends. When the ending
 *     actor had timers (the slot's TIMED bit), it also tells the loop,
 *     which drops them at once instead of at their next expiry, so a
 *     periodic timer does not keep a finished runtime alive.
 * Every live timer holds the runtime (isle_runtime_hold): it is pending
 * work for quiescence.
 *
 * Threads: isle_timer_* from any thread; the rest on the io thread.
 */
#define _GNU_SOURCE
#include <string.h>
#include <uv.h>

#include "internal.h"
#include "isle/heap.h"
#include "isle/lifecycle.h"

typedef struct timer_s {
  uv_timer_t uv;             /* first: a uv handle pointer is a timer pointer */
  struct timer_s *next_live; /* in the table's bucket */
  uint64_t id;
  isle_ref_t target;
  isle_msg_t *msg; /* sent (one-shot) or copied (periodic) when it fires */
  uint64_t due_ns; /* first expiry, on uv_hrtime's clock */
  uint64_t period_ms;
  bool live; /* in the table (under timers_lock) */
} timer_t_;

enum cmd_kind { CMD_START, CMD_CANCEL, CMD_FORGET, CMD_QUIT };

typedef struct cmd_s {
  struct cmd_s *next;
  enum cmd_kind kind;
  timer_t_ *timer;   /* START, CANCEL */
  isle_ref_t target; /* FORGET */
} cmd_t;

struct isle__timers_s {
  isle_runtime_t *rt;
  uv_loop_t loop;
  uv_async_t wake;
  pthread_t thread;
  cmd_t *quit; /* allocated up front: stopping cannot fail */
  /* Under timers_lock: */
  cmd_t *cmds, *cmds_tail;
  timer_t_ **table; /* live timers by id */
  size_t nbuckets;  /* power of two */
  size_t count;
};

/* ===== The table (under timers_lock) =================================== */

static timer_t_ **bucket(struct isle__timers_s *t, uint64_t id) {
  return &t->table[(id * 0x9e3779b97f4a7c15u >> 32) & (t->nbuckets - 1)];
}

static int table_grow(struct isle__timers_s *t) {
  if (t->count < t->nbuckets)
    return 0;
  size_t old_n = t->nbuckets;
  timer_t_ **old = t->table;
  timer_t_ **nt = isle_calloc(old_n * 2, sizeof *nt);
  if (!nt)
    return ISLE_ENOMEM;
  t->table = nt;
  t->nbuckets = old_n * 2;
  for (size_t i = 0; i < old_n; i++)
    for (timer_t_ *e = old[i], *next; e; e = next) {
      next = e->next_live;
      timer_t_ **b = bucket(t, e->id);
      e->next_live = *b;
      *b = e;
    }
  isle_free(old);
  return 0;
}

/* Takes `id` out of the table; returns it, or NULL if it was not live. */
static timer_t_ *table_take(struct isle__timers_s *t, uint64_t id) {
  for (timer_t_ **p = bucket(t, id); *p; p = &(*p)->next_live) {
    if ((*p)->id == id) {
      timer_t_ *e = *p;
      *p = e->next_live;
      e->live = false;
      t->count--;
      return e;
    }
  }
  return NULL;
}

/* ===== The io thread =================================================== */

static void timer_closed(uv_handle_t *h) {
  timer_t_ *tm = (timer_t_ *)h;
  isle_runtime_t *rt = ((struct isle__timers_s *)h->loop->data)->rt;
  isle_free(tm->msg);
  isle_free(tm);
  isle_runtime_release(rt); /* the hold taken at start */
}

/* Ends a timer that is out of the table: stops and frees it. */
static void timer_end(timer_t_ *tm) {
  uv_timer_stop(&tm->uv);
  uv_close((uv_handle_t *)&tm->uv, timer_closed);
}

static void dropped(isle_runtime_t *rt) {
  /* Relaxed: statistics. */
  atomic_fetch_add_explicit(&rt->xtimers_dropped, 1, memory_order_relaxed);
}

static isle_msg_t *msg_copy(const isle_msg_t *m) {
  size_t size = isle_msg_size(m);
  isle_msg_t *c = isle_msg_new(isle_msg_type(m), size);
  if (c)
    memcpy(isle_msg_data(c), isle_msg_data((isle_msg_t *)m), size);
  return c;
}

static void timer_fired(uv_timer_t *h) {
  timer_t_ *tm = (timer_t_ *)h;
  struct isle__timers_s *t = h->loop->data;
  isle_runtime_t *rt = t->rt;
  bool periodic = tm->period_ms != 0;
  pthread_mutex_lock(&rt->timers_lock);
  bool live = tm->live;
  if (live && !periodic)
    table_take(t, tm->id); /* a fired one-shot can no longer be cancelled */
  pthread_mutex_unlock(&rt->timers_lock);
  if (!live)
    return; /* cancelled; the queued CANCEL ends it */
  isle_msg_t *m = periodic ? msg_copy(tm->msg) : tm->msg;
  int rc = m ? isle__send(rt, NULL, ISLE_REF_NONE, tm->target, m) : ISLE_ENOMEM;
  if (rc == 0) {
    atomic_fetch_add_explicit(&rt->xtimers_fired, 1, memory_order_relaxed);
    if (!periodic)
      tm->msg = NULL; /* sent: the runtime's now */
  } else {
    dropped(rt);
    if (periodic)
      isle_free(m);
  }
  if (!periodic) {
    timer_end(tm);
  } else if (rc == ISLE_EDEAD || rc == ISLE_EINVAL) {
    /* The target is gone for good: so is the timer, unless a cancel got
     * it first (then its CANCEL ends it). */
    pthread_mutex_lock(&rt->timers_lock);
    bool mine = table_take(t, tm->id) != NULL;
    pthread_mutex_unlock(&rt->timers_lock);
    if (mine)
      timer_end(tm);
  }
}

static void forget_target(struct isle__timers_s *t, isle_ref_t target) {
  isle_runtime_t *rt = t->rt;
  timer_t_ *gone = NULL;
  pthread_mutex_lock(&rt->timers_lock);
  for (size_t i = 0; i < t->nbuckets; i++)
    for (timer_t_ *e = t->table[i], *next; e; e = next) {
      next = e->next_live;
      if (e->target == target) {
        table_take(t, e->id);
        e->next_live = gone; /* reuse the link: out of the table now */
        gone = e;
      }
    }
  pthread_mutex_unlock(&rt->timers_lock);
  for (timer_t_ *e = gone, *next; e; e = next) {
    next = e->next_live;
    dropped(rt);
    timer_end(e);
  }
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) {
    if (h->type == UV_TIMER)
      timer_end((timer_t_ *)h);
    else
      uv_close(h, NULL);
  }
}

static void run_commands(uv_async_t *a) {
  struct isle__timers_s *t = a->data;
  isle_runtime_t *rt = t->rt;
  pthread_mutex_lock(&rt->timers_lock);
  cmd_t *c = t->cmds;
  t->cmds = t->cmds_tail = NULL;
  pthread_mutex_unlock(&rt->timers_lock);
  while (c) {
    cmd_t *next = c->next;
    switch (c->kind) {
    case CMD_START: {
      /* libuv counts in whole milliseconds of a clock it truncates: a plain
       * delay would fire up to 1 ms early. So aim at the first loop time
       * not before the due time taken when the timer was started (that
       * also leaves out the time the command waited here). */
      uv_update_time(&t->loop);
      uint64_t loop_ns = uv_now(&t->loop) * 1000000u;
      uint64_t due = c->timer->due_ns;
      uint64_t ms = due > loop_ns ? (due - loop_ns + 999999u) / 1000000u : 0;
      uv_timer_init(&t->loop, &c->timer->uv);
      uv_timer_start(&c->timer->uv, timer_fired, ms, c->timer->period_ms);
      break;
    }
    case CMD_CANCEL:
      timer_end(c->timer);
      break;
    case CMD_FORGET:
      forget_target(t, c->target);
      break;
    case CMD_QUIT:
      /* Every handle, live or not, is closed; the loop then runs out. */
      uv_walk(&t->loop, close_any, NULL);
      break;
    }
    isle_free(c);
    c = next;
  }
}

static void *io_main(void *arg) {
  struct isle__timers_s *t = arg;
  isle_heap_set_thread_name("io");
  pthread_setname_np(pthread_self(), "io");
  uv_run(&t->loop, UV_RUN_DEFAULT);
  isle_heap_collect();
  return NULL;
}

/* ===== Commands ======================================================== */

/* Queues a command (under timers_lock) and wakes the loop. */
static void post(struct isle__timers_s *t, cmd_t *c) {
  c->next = NULL;
  if (t->cmds_tail)
    t->cmds_tail->next = c;
  else
    t->cmds = c;
  t->cmds_tail = c;
  uv_async_send(&t->wake);
}

/* The timers and their thread, started on first use. Under timers_lock. */
static struct isle__timers_s *service(isle_runtime_t *rt) {
  if (rt->timers)
    return rt->timers;
  struct isle__timers_s *t = isle_calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->rt = rt;
  t->nbuckets = 16;
  t->table = isle_calloc(t->nbuckets, sizeof *t->table);
  t->quit = isle_malloc(sizeof *t->quit);
  if (!t->table || !t->quit || uv_loop_init(&t->loop) != 0) {
    isle_free(t->table);
    isle_free(t->quit);
    isle_free(t);
    return NULL;
  }
  t->loop.data = t;
  t->wake.data = t;
  uv_async_init(&t->loop, &t->wake, run_commands);
  if (pthread_create(&t->thread, NULL, io_main, t) != 0) {
    uv_close((uv_handle_t *)&t->wake, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    isle_free(t->table);
    isle_free(t->quit);
    isle_free(t);
    return NULL;
  }
  rt->timers = t;
  return t;
}

/* ===== Internal functions ============================================== */

void isle__timers_forget(isle_runtime_t *rt, isle_ref_t self) {
  cmd_t *c = isle_malloc(sizeof *c);
  pthread_mutex_lock(&rt->timers_lock);
  if (rt->timers && c) {
    c->kind = CMD_FORGET;
    c->target = self;
    post(rt->timers, c);
    c = NULL;
  }
  pthread_mutex_unlock(&rt->timers_lock);
  /* Without memory for the command, the timers still end at their next
   * expiry (the send fails); this only hastens it. */
  isle_free(c);
}

void isle__timers_free(isle_runtime_t *rt) {
  struct isle__timers_s *t = rt->timers;
  if (!t)
    return;
  cmd_t *c = t->quit;
  c->kind = CMD_QUIT;
  pthread_mutex_lock(&rt->timers_lock);
  /* Timers still live count as dropped: they never fired. */
  for (size_t i = 0; i < t->nbuckets; i++)
    for (timer_t_ *e = t->table[i]; e; e = e->next_live) {
      e->live = false;
      dropped(rt);
    }
  post(t, c);
  pthread_mutex_unlock(&rt->timers_lock);
  pthread_join(t->thread, NULL);
  uv_loop_close(&t->loop);
  isle_free(t->table);
  isle_free(t);
  rt->timers = NULL;
}

/* ===== Public functions ================================================ */

int isle_timer_start(isle_runtime_t *rt, isle_ref_t target, isle_msg_t *msg,
                     uint64_t delay_ms, uint64_t period_ms, uint64_t *id) {
  if (!rt || !msg || isle__ref_check(rt, target))
    return ISLE_EINVAL;
  timer_t_ *tm = isle_calloc(1, sizeof *tm);
  cmd_t *c = isle_malloc(sizeof *c);
  if (!tm || !c) {
    isle_free(tm);
    isle_free(c);
    return ISLE_ENOMEM;
  }
  /* Relaxed: ids need only be unique. */
  tm->id =
      atomic_fetch_add_explicit(&rt->xnext_id, 1, memory_order_relaxed) + 1;
  tm->target = target;
  tm->msg = msg;
  tm->due_ns = uv_hrtime() + delay_ms * 1000000u;
  tm->period_ms = period_ms;
  c->kind = CMD_START;
  c->timer = tm;
  uint64_t my_id = tm->id; /* tm may fire and be freed once posted */
  int rc = 0;
  /* Pending work from now: before the timer can fire and release it. */
  isle_runtime_hold(rt);
  pthread_mutex_lock(&rt->timers_lock);
  struct isle__timers_s *t = service(rt);
  if (!t || table_grow(t) != 0) {
    rc = ISLE_ENOMEM;
  } else {
    timer_t_ **b = bucket(t, tm->id);
    tm->next_live = *b;
    *b = tm;
    tm->live = true;
    t->count++;
    /* seq_cst: see names.c; here a missed bit only delays the drop to
     * the timer's next expiry. */
    atomic_fetch_or_explicit(&isle__slot_of(rt, target)->xflags,
                             ISLE__SLOT_TIMED, memory_order_seq_cst);
    post(t, c);
  }
  pthread_mutex_unlock(&rt->timers_lock);
  if (rc) {
    isle_runtime_release(rt);
    isle_free(tm);
    isle_free(c);
    return rc;
  }
  if (id)
    *id = my_id;
  return 0;
}

int isle_timer_cancel(isle_runtime_t *rt, uint64_t id) {
  if (!rt)
    return ISLE_EINVAL;
  cmd_t *c = isle_malloc(sizeof *c);
  if (!c)
    return ISLE_ENOMEM;
  int rc = ISLE_ENOENT;
  pthread_mutex_lock(&rt->timers_lock);
  timer_t_ *tm = rt->timers ? table_take(rt->timers, id) : NULL;
  if (tm) {
    c->kind = CMD_CANCEL;
    c->timer = tm;
    post(rt->timers, c);
    c = NULL;
    rc = 0;
  }
  pthread_mutex_unlock(&rt->timers_lock);
  isle_free(c);
  return rc;
}
