/* isle — MIT licensed. */
/*
 * Timers, on the libuv loop of the io layer's "io" thread (started by the
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
 *     actor had timers (its slot's bit of this module's end hook), it also
 * tells the loop, which drops them at once instead of at their next expiry, so
 * a periodic timer does not keep a finished runtime alive. Every live timer
 * holds the runtime (isle_runtime_hold): it is pending work for quiescence.
 *
 * Threads: isle_timer_* from any thread; the rest on the io thread.
 */
#define _GNU_SOURCE
#include <stddef.h> /* offsetof: a timer from its links */
#include <string.h>
#include <uv.h>

#include "heap/table.h"
#include "internal.h"
#include "isle/heap.h"
#include "isle/lifecycle.h"

typedef struct timer_s {
  uv_timer_t uv;             /* first: a uv handle pointer is a timer pointer */
  isle__tlink_t by_id;       /* hash: isle__hash_u64(id) */
  isle__tlink_t by_target;   /* hash: isle__hash_u64(target) */
  struct timer_s *next_gone; /* drop_timers' list, once out of the table */
  uint64_t id;
  isle_ref_t target;
  isle_msg_t *msg; /* sent (one-shot) or copied (periodic) when it fires */
  uint64_t due_ns; /* first expiry, isle__now_ns (libuv's loop clock too) */
  uint64_t period_ms;
  bool live; /* in the table (under timers_lock) */
  /* The io thread's: its start command ran (the libuv handle exists);
   * dropped before that (its target ended first), so the start frees it. */
  bool started, orphan;
} timer_t_;

typedef struct cmd_s {
  isle__cmd_t base;
  timer_t_ *timer;   /* start, cancel */
  isle_ref_t target; /* forget */
} cmd_t;

/* Under timers_lock. Live timers by id, and by target: an ending actor's
 * timers are found without a scan of every timer. */
struct isle__timers_s {
  isle__table_t by_id;
  isle__table_t by_target; /* the same timers */
};

/* ===== The table (under timers_lock) =================================== */

static timer_t_ *of_id_link(isle__tlink_t *l) {
  return (timer_t_ *)((char *)l - offsetof(timer_t_, by_id));
}

static timer_t_ *of_target_link(isle__tlink_t *l) {
  return (timer_t_ *)((char *)l - offsetof(timer_t_, by_target));
}

/* Makes room in both indexes for one more timer. 0 or ISLE_ENOMEM. */
static int table_reserve(struct isle__timers_s *t) {
  int rc = isle__table_reserve(&t->by_id);
  return rc ? rc : isle__table_reserve(&t->by_target);
}

/* Links a timer into both indexes (which have room). */
static void table_link(struct isle__timers_s *t, timer_t_ *e) {
  isle__table_insert(&t->by_id, &e->by_id, isle__hash_u64(e->id));
  isle__table_insert(&t->by_target, &e->by_target, isle__hash_u64(e->target));
}

/* Takes live timer `e` out of both indexes. */
static void table_unlink(struct isle__timers_s *t, timer_t_ *e) {
  isle__table_remove(&t->by_id, &e->by_id);
  isle__table_remove(&t->by_target, &e->by_target);
  e->live = false;
}

/* Takes `id` out of the table; returns it, or NULL if it was not live. */
static timer_t_ *table_take(struct isle__timers_s *t, uint64_t id) {
  uint64_t h = isle__hash_u64(id);
  for (isle__tlink_t *l = isle__table_bucket(&t->by_id, h); l; l = l->next) {
    timer_t_ *e = of_id_link(l);
    if (l->hash == h && e->id == id) {
      table_unlink(t, e);
      return e;
    }
  }
  return NULL;
}

/* ===== The io thread =================================================== */

static void timer_free(timer_t_ *tm, isle_runtime_t *rt) {
  isle_free(tm->msg);
  isle_free(tm);
  isle_runtime_release(rt); /* the hold taken at start */
}

static void timer_closed(uv_handle_t *h) {
  timer_free((timer_t_ *)h, ((isle__loop_t *)h->loop->data)->rt);
}

/* Ends a timer that is out of the table: stops and frees it. */
static void timer_end(timer_t_ *tm) {
  uv_timer_stop(&tm->uv);
  uv_close((uv_handle_t *)&tm->uv, timer_closed);
}

static void dropped(isle__io_t *io) {
  /* Relaxed: statistics. */
  atomic_fetch_add_explicit(&io->xtimers_dropped, 1, memory_order_relaxed);
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
  isle__loop_t *l = h->loop->data;
  isle_runtime_t *rt = l->rt;
  isle__io_t *io = l->io;
  struct isle__timers_s *t = io->timers;
  bool periodic = tm->period_ms != 0;
  isle_msg_t *m = NULL;
  int rc = 0;
  ISLE__CHAOS("timer.fire"); /* a cancel may take it first */
  pthread_mutex_lock(&io->timers_lock);
  bool live = tm->live;
  if (live && !periodic)
    table_take(t, tm->id); /* a fired one-shot can no longer be cancelled */
  if (live && periodic) {
    /* Sent under the lock: a cancel takes the timer out of the table under
     * it, so once isle_timer_cancel has returned 0 no copy goes out. Sent
     * after unlocking, a copy that passed the live check could reach the
     * target after the cancel had returned.
     * Why: docs/decisions/0004-periodic-timer-sends-under-its-lock.md. */
    m = msg_copy(tm->msg);
    rc = m ? isle__send(rt, NULL, ISLE_REF_NONE, tm->target, m) : ISLE_ENOMEM;
  }
  pthread_mutex_unlock(&io->timers_lock);
  if (!live)
    return; /* cancelled; the queued CANCEL ends it */
  if (!periodic) {
    /* Out of the table: a cancel from here on answers ISLE_ENOENT. */
    ISLE__CHAOS("timer.fire_send");
    m = tm->msg;
    rc = isle__send(rt, NULL, ISLE_REF_NONE, tm->target, m);
  }
  if (rc == 0) {
    atomic_fetch_add_explicit(&io->xtimers_fired, 1, memory_order_relaxed);
    if (!periodic)
      tm->msg = NULL; /* sent: the runtime's now */
  } else {
    dropped(io);
    if (periodic)
      isle_free(m);
  }
  if (!periodic) {
    timer_end(tm);
  } else if (rc == ISLE_EDEAD || rc == ISLE_EINVAL) {
    /* The target is gone for good: so is the timer, unless a cancel got
     * it first (then its CANCEL ends it). */
    ISLE__CHAOS("timer.fire_gone");
    pthread_mutex_lock(&io->timers_lock);
    bool mine = table_take(t, tm->id) != NULL;
    pthread_mutex_unlock(&io->timers_lock);
    if (mine)
      timer_end(tm);
  }
}

/* Drops the live timers aimed at `target` (every live timer for
 * ISLE_REF_NONE): never fired, counted as dropped. Cancelled ones are out
 * of the table and already closing. */
static void drop_timers(isle__io_t *io, isle_ref_t target) {
  timer_t_ *gone = NULL;
  pthread_mutex_lock(&io->timers_lock);
  struct isle__timers_s *t = io->timers;
  if (t && target != ISLE_REF_NONE) {
    uint64_t h = isle__hash_u64(target);
    for (isle__tlink_t *l = isle__table_bucket(&t->by_target, h), *next; l;
         l = next) {
      next = l->next;
      timer_t_ *e = of_target_link(l);
      if (e->target == target) {
        table_unlink(t, e);
        e->next_gone = gone;
        gone = e;
      }
    }
  } else {
    for (size_t i = 0; t && i < t->by_id.nbuckets; i++)
      for (isle__tlink_t *l; (l = isle__table_at(&t->by_id, i));) {
        timer_t_ *e = of_id_link(l);
        table_unlink(t, e);
        e->next_gone = gone;
        gone = e;
      }
  }
  pthread_mutex_unlock(&io->timers_lock);
  ISLE__CHAOS("timer.drop"); /* out of the table: cancels now fail */
  /* A timer whose start command has not run yet (started at a target
   * whose end had already posted this drop: from another thread, or from
   * its own finalize) has no libuv handle: its start frees it. */
  for (timer_t_ *e = gone, *next; e; e = next) {
    next = e->next_gone;
    dropped(io);
    if (e->started)
      timer_end(e);
    else
      e->orphan = true;
  }
}

static void cmd_start(isle__cmd_t *base, isle__loop_t *l) {
  cmd_t *c = (cmd_t *)base;
  if (c->timer->orphan) { /* dropped already (drop_timers), and counted */
    timer_free(c->timer, l->rt);
    isle_free(c);
    return;
  }
  c->timer->started = true;
  /* libuv counts in whole milliseconds of a clock it truncates: a plain
   * delay would fire up to 1 ms early. So aim at the first loop time not
   * before the due time taken when the timer was started (that also
   * leaves out the time the command waited here). */
  uv_update_time(&l->uv);
  uint64_t loop_ns = uv_now(&l->uv) * 1000000u;
  uint64_t due = c->timer->due_ns;
  uint64_t ms = due > loop_ns ? (due - loop_ns + 999999u) / 1000000u : 0;
  uv_timer_init(&l->uv, &c->timer->uv);
  uv_timer_start(&c->timer->uv, timer_fired, ms, c->timer->period_ms);
  isle_free(c);
}

static void cmd_cancel(isle__cmd_t *base, isle__loop_t *l) {
  (void)l;
  cmd_t *c = (cmd_t *)base;
  timer_end(c->timer);
  isle_free(c);
}

static void cmd_forget(isle__cmd_t *base, isle__loop_t *l) {
  cmd_t *c = (cmd_t *)base;
  drop_timers(l->io, c->target);
  isle_free(c);
}

/* The timers, created on first use (both indexes empty, without buckets
 * until the first start). Under timers_lock. */
static struct isle__timers_s *timers(isle__io_t *io) {
  if (!io->timers)
    io->timers = isle_calloc(1, sizeof *io->timers);
  return io->timers;
}

/* ===== Internal functions ============================================== */

/* The end hook: the actor `self` ended and had timers (the hook's bit):
 * the loop drops them. After isle_runtime_free freed the layer, nothing
 * is left to drop. */
static void timers_forget(isle_runtime_t *rt, isle_ref_t self) {
  isle__io_t *io = isle__io_peek(rt);
  isle__loop_t *l =
      io ? atomic_load_explicit(&io->xloop, memory_order_acquire) : NULL;
  cmd_t *c = l ? isle_malloc(sizeof *c) : NULL;
  /* Without memory for the command, the timers still end at their next
   * expiry (the send fails); this only hastens it. */
  if (c) {
    c->base.run = cmd_forget;
    c->target = self;
    ISLE__CHAOS("timer.forget"); /* a start for it may be under way */
    /* Under timers_lock, like start and cancel: the hook's bit we saw may
     * have been set by an isle_timer_start still inside its critical
     * section, whose start command is not posted yet. Posted before it,
     * this forget would take the timer and close its handle before
     * uv_timer_init, and the start would then init a freed timer. */
    pthread_mutex_lock(&io->timers_lock);
    isle__loop_post(l, &c->base);
    pthread_mutex_unlock(&io->timers_lock);
  }
}

int isle__timers_init(isle__io_t *io) {
  return isle__end_hook_add(io->rt, timers_forget, &io->timers_hook);
}

void isle__timers_quit(isle__loop_t *l) {
  drop_timers(l->io, ISLE_REF_NONE);
}

void isle__timers_free(isle__io_t *io) {
  if (io->timers) {
    isle__table_deinit(&io->timers->by_id);
    isle__table_deinit(&io->timers->by_target);
    isle_free(io->timers);
    io->timers = NULL;
  }
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
  tm->due_ns = isle__now_ns() + delay_ms * 1000000u;
  tm->period_ms = period_ms;
  c->base.run = cmd_start;
  c->timer = tm;
  uint64_t my_id = tm->id; /* tm may fire and be freed once posted */
  int rc = 0;
  /* Pending work from now: before the timer can fire and release it. */
  isle_runtime_hold(rt);
  ISLE__CHAOS("timer.start"); /* the target may end, its forget posted */
  isle__io_t *io = isle__io_get(rt);
  isle__loop_t *l = io ? isle__loop_get(io) : NULL;
  if (!l) {
    /* ISLE_ESTATE: the first timer of a runtime being freed (from a
     * finalize isle_runtime_free runs), which attaches no layer. */
    rc = !io && isle__upper_closed(rt) ? ISLE_ESTATE : ISLE_ENOMEM;
    goto out;
  }
  pthread_mutex_lock(&io->timers_lock);
  struct isle__timers_s *t = timers(io);
  if (!t || table_reserve(t) != 0) {
    rc = ISLE_ENOMEM;
  } else {
    table_link(t, tm);
    tm->live = true;
    /* seq_cst: see names.c; here a missed bit only delays the drop to
     * the timer's next expiry. */
    atomic_fetch_or_explicit(&isle__slot_of(rt, target)->xflags,
                             io->timers_hook, memory_order_seq_cst);
    isle__msg_handed_on(msg); /* the timer's now, also if it is received */
    /* Under the lock: a cancel (or forget) is posted after this start. */
    isle__loop_post(l, &c->base);
  }
  pthread_mutex_unlock(&io->timers_lock);
out:
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
  ISLE__CHAOS("timer.cancel"); /* the timer may fire first */
  isle__io_t *io = isle__io_peek(rt);
  if (!io) {
    isle_free(c);
    return ISLE_ENOENT; /* no timer was ever started */
  }
  pthread_mutex_lock(&io->timers_lock);
  timer_t_ *tm = io->timers ? table_take(io->timers, id) : NULL;
  if (tm) {
    c->base.run = cmd_cancel;
    c->timer = tm;
    /* Under the lock: after the start command, which posted under it. */
    isle__loop_post(atomic_load_explicit(&io->xloop, memory_order_acquire),
                    &c->base);
    c = NULL;
    rc = 0;
  }
  pthread_mutex_unlock(&io->timers_lock);
  isle_free(c);
  return rc;
}
