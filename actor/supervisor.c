/* isle — MIT licensed. */
/*
 * The supervisor: an ordinary actor, written against the public API only,
 * that starts children from specifications, links them, traps their exits
 * and restarts them by strategy (OTP's one_for_one, one_for_all,
 * rest_for_one), within a restart intensity.
 *
 * When one child's exit means others must be restarted too, the
 * supervisor asks those to exit and waits for each one's EXIT before
 * starting anything, so a restarted child never meets its previous
 * incarnation (its registered name, for one, is free by then: an actor's
 * name is released before its links hear of its end).
 *
 * Threads: its callbacks run on the workers, like any actor's.
 */
#include <time.h>

#include "isle/error.h"
#include "isle/heap.h"
#include "isle/lifecycle.h"

enum child_state { CHILD_DOWN, CHILD_RUNNING, CHILD_STOPPING };

typedef struct child_s {
  isle_ref_t ref;
  enum child_state state;
  bool restart; /* start again once nothing is stopping */
} child_t;

typedef struct sup_s {
  const isle_sup_spec_t *spec;
  child_t *children;
  uint64_t *restarts; /* ring of the last max_restarts restart times, ms */
  unsigned nrestarts, restart_head;
  size_t stopping; /* children asked to exit, EXIT not yet seen */
} sup_t;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Records a restart; false when it is one too many for the intensity. */
static bool restart_allowed(sup_t *s) {
  const isle_sup_spec_t *sp = s->spec;
  uint64_t now = now_ms();
  if (sp->max_restarts == 0)
    return false;
  if (s->nrestarts == sp->max_restarts) {
    /* The oldest of the last max_restarts: too recent means too many. */
    if (now - s->restarts[s->restart_head] <= sp->within_ms)
      return false;
    s->restarts[s->restart_head] = now;
    s->restart_head = (s->restart_head + 1) % sp->max_restarts;
    return true;
  }
  s->restarts[(s->restart_head + s->nrestarts) % sp->max_restarts] = now;
  s->nrestarts++;
  return true;
}

static int start_child(isle_ctx_t *ctx, sup_t *s, size_t i) {
  const isle_child_spec_t *c = &s->spec->children[i];
  isle_ref_t ref;
  int rc = isle_ctx_spawn_link(ctx, c->type, c->arg, &ref);
  if (rc)
    return rc;
  if (c->name) {
    rc = isle_name_register(isle_ctx_runtime(ctx), c->name, ref);
    /* EDEAD: it ended already; its EXIT is on the way and handled as any. */
    if (rc && rc != ISLE_EDEAD) {
      isle_unlink(ctx, ref);
      isle_exit(ctx, ref, ISLE_ESHUTDOWN);
      return rc;
    }
  }
  s->children[i].ref = ref;
  s->children[i].state = CHILD_RUNNING;
  s->children[i].restart = false;
  return 0;
}

static void stop_child(isle_ctx_t *ctx, sup_t *s, size_t i) {
  child_t *c = &s->children[i];
  if (c->state != CHILD_RUNNING)
    return;
  c->state = CHILD_STOPPING;
  s->stopping++;
  /* EDEAD: it is ending anyway; its EXIT still comes (the link). */
  isle_exit(ctx, c->ref, ISLE_ESHUTDOWN);
}

/* Starts every child marked for restart, in order; a start that fails
 * counts as one more restart. 0, or the supervisor's exit reason. */
static int start_pending(isle_ctx_t *ctx, sup_t *s) {
  for (size_t i = 0; i < s->spec->nchildren; i++) {
    while (s->children[i].restart) {
      if (start_child(ctx, s, i) == 0)
        break;
      if (!restart_allowed(s))
        return ISLE_ERESTARTS;
    }
  }
  return 0;
}

static bool wants_restart(isle_restart_t r, int reason) {
  return r == ISLE_PERMANENT ||
         (r == ISLE_TRANSIENT && reason != ISLE_EXIT_NORMAL);
}

static int child_exited(isle_ctx_t *ctx, sup_t *s, size_t i, int reason) {
  child_t *c = &s->children[i];
  const isle_sup_spec_t *sp = s->spec;
  if (c->state == CHILD_STOPPING) {
    s->stopping--; /* one we stopped; c->restart says what next */
  } else if (wants_restart(sp->children[i].restart, reason)) {
    if (!restart_allowed(s))
      return ISLE_ERESTARTS;
    c->restart = true;
    size_t from = sp->strategy == ISLE_ONE_FOR_ALL    ? 0
                  : sp->strategy == ISLE_REST_FOR_ONE ? i + 1
                                                      : sp->nchildren;
    for (size_t j = from; j < sp->nchildren; j++) {
      if (j == i || s->children[j].state != CHILD_RUNNING)
        continue;
      s->children[j].restart = sp->children[j].restart != ISLE_TEMPORARY;
      stop_child(ctx, s, j);
    }
  }
  c->state = CHILD_DOWN;
  return s->stopping ? 0 : start_pending(ctx, s);
}

static void free_state(sup_t *s) {
  isle_free(s->children);
  isle_free(s->restarts);
  s->children = NULL;
  s->restarts = NULL;
}

static int sup_init(isle_ctx_t *ctx, void *state, const void *arg) {
  sup_t *s = state;
  const isle_sup_spec_t *sp = arg;
  if (!sp || (sp->nchildren && !sp->children) ||
      (unsigned)sp->strategy > ISLE_REST_FOR_ONE)
    return ISLE_EINVAL;
  for (size_t i = 0; i < sp->nchildren; i++)
    if (!sp->children[i].type ||
        (unsigned)sp->children[i].restart > ISLE_TEMPORARY)
      return ISLE_EINVAL;
  s->spec = sp;
  s->children =
      isle_calloc(sp->nchildren ? sp->nchildren : 1, sizeof *s->children);
  s->restarts =
      isle_calloc(sp->max_restarts ? sp->max_restarts : 1, sizeof *s->restarts);
  int rc =
      s->children && s->restarts ? isle_trap_exits(ctx, true) : ISLE_ENOMEM;
  for (size_t i = 0; rc == 0 && i < sp->nchildren; i++)
    rc = start_child(ctx, s, i);
  if (rc) {
    /* Those started end with us (linked, and told so explicitly in case
     * they trap exits). */
    for (size_t i = 0; s->children && i < sp->nchildren; i++)
      if (s->children[i].state == CHILD_RUNNING)
        isle_exit(ctx, s->children[i].ref, ISLE_ESHUTDOWN);
    free_state(s);
  }
  return rc;
}

static int sup_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  sup_t *s = state;
  const isle_exit_t *e = isle_msg_exit(msg);
  if (!e)
    return ISLE_CONTINUE; /* supervisors take no other messages */
  for (size_t i = 0; i < s->spec->nchildren; i++)
    if (s->children[i].state != CHILD_DOWN && s->children[i].ref == e->from)
      return child_exited(ctx, s, i, e->reason);
  /* Another link (our own supervisor, say): an abnormal exit ends us. */
  return e->reason == ISLE_EXIT_NORMAL ? ISLE_CONTINUE : e->reason;
}

static void sup_finalize(isle_ctx_t *ctx, void *state) {
  sup_t *s = state;
  for (size_t i = 0; s->children && i < s->spec->nchildren; i++)
    if (s->children[i].state == CHILD_RUNNING)
      isle_exit(ctx, s->children[i].ref, ISLE_ESHUTDOWN);
  free_state(s);
}

const isle_actor_type_t isle_supervisor_type = {
    .name = "isle-supervisor",
    .state_size = sizeof(sup_t),
    .init = sup_init,
    .receive = sup_receive,
    .finalize = sup_finalize,
};
