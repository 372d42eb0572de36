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
#include <string.h>

#include "heap/clock.h"
#include "isle/error.h"
#include "isle/heap.h"
#include "isle/lifecycle.h"

enum child_state { CHILD_DOWN, CHILD_RUNNING, CHILD_STOPPING };

/* The supervisor's own timer message: kill the children still stopping. */
#define SUP_KILL (ISLE_MSG_RESERVED + 0x200)
#define DEFAULT_SHUTDOWN_MS 5000

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
  uint64_t kill_timer, kill_round; /* the armed SUP_KILL timer, its round */
  bool kill_armed;
  bool shutting_down; /* ends with `reason` once no child runs */
  int reason;
} sup_t;

static uint64_t now_ms(void) {
  return isle__now_ns() / 1000000u;
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
      isle_exit(ctx, ref, ISLE_EKILLED);
      return rc;
    }
  }
  s->children[i].ref = ref;
  s->children[i].state = CHILD_RUNNING;
  s->children[i].restart = false;
  return 0;
}

/* Children asked to exit get shutdown_ms; then SUP_KILL ends them. */
static void arm_kill_timer(isle_ctx_t *ctx, sup_t *s) {
  if (s->kill_armed)
    return;
  isle_msg_t *m = isle_msg_new(SUP_KILL, sizeof s->kill_round);
  if (!m)
    return; /* no deadline then: the children are still asked to exit */
  s->kill_round++;
  memcpy(isle_msg_data(m), &s->kill_round, sizeof s->kill_round);
  uint32_t ms =
      s->spec->shutdown_ms ? s->spec->shutdown_ms : DEFAULT_SHUTDOWN_MS;
  if (isle_timer_start(isle_ctx_runtime(ctx), isle_ctx_self(ctx), m, ms, 0,
                       &s->kill_timer) == 0)
    s->kill_armed = true;
  else
    isle_msg_free(m);
}

static void disarm_kill_timer(isle_ctx_t *ctx, sup_t *s) {
  if (s->kill_armed)
    isle_timer_cancel(isle_ctx_runtime(ctx), s->kill_timer);
  s->kill_armed = false; /* a SUP_KILL of this round may still come */
  s->kill_round++;
}

static void stop_child(isle_ctx_t *ctx, sup_t *s, size_t i) {
  child_t *c = &s->children[i];
  if (c->state != CHILD_RUNNING)
    return;
  c->state = CHILD_STOPPING;
  s->stopping++;
  /* EDEAD: it is ending anyway; its EXIT still comes (the link). */
  isle_exit(ctx, c->ref, ISLE_ESHUTDOWN);
  arm_kill_timer(ctx, s);
}

/* What receive returns to end with `reason`. A normal exit is ISLE_STOP:
 * returning the reason itself, 0, would be ISLE_CONTINUE, and a supervisor
 * asked to exit normally (or whose own supervisor ended normally) would
 * stop its children and then live on. */
static int ending(int reason) {
  return reason == ISLE_EXIT_NORMAL ? ISLE_STOP : reason;
}

/* Stops every child, then ends with `reason` (see the header). Returns
 * what receive should return. */
static int shut_down(isle_ctx_t *ctx, sup_t *s, int reason) {
  if (!s->shutting_down) {
    s->shutting_down = true;
    s->reason = reason;
    for (size_t i = 0; i < s->spec->nchildren; i++) {
      s->children[i].restart = false;
      stop_child(ctx, s, i);
    }
  }
  return s->stopping ? ISLE_CONTINUE : ending(s->reason);
}

/* Starts every child marked for restart, in order; a start that fails
 * counts as one more restart. 0, or ISLE_ERESTARTS. */
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
  } else if (!s->shutting_down &&
             wants_restart(sp->children[i].restart, reason)) {
    if (!restart_allowed(s)) {
      c->state = CHILD_DOWN;
      return shut_down(ctx, s, ISLE_ERESTARTS);
    }
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
  if (s->stopping)
    return ISLE_CONTINUE;
  disarm_kill_timer(ctx, s);
  if (s->shutting_down)
    return ending(s->reason);
  return start_pending(ctx, s) == 0 ? ISLE_CONTINUE
                                    : shut_down(ctx, s, ISLE_ERESTARTS);
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
    /* Those started end with us: killed, as there is no one to wait. */
    for (size_t i = 0; s->children && i < sp->nchildren; i++)
      if (s->children[i].state == CHILD_RUNNING)
        isle_exit(ctx, s->children[i].ref, ISLE_EKILLED);
    free_state(s);
  }
  return rc;
}

static int sup_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  sup_t *s = state;
  if (isle_msg_type(msg) == SUP_KILL && isle_msg_sender(msg) == ISLE_REF_NONE) {
    uint64_t round;
    memcpy(&round, isle_msg_data(msg), sizeof round);
    if (!s->kill_armed || round != s->kill_round)
      return ISLE_CONTINUE; /* a deadline met already */
    s->kill_armed = false;
    for (size_t i = 0; i < s->spec->nchildren; i++)
      if (s->children[i].state == CHILD_STOPPING)
        isle_exit(ctx, s->children[i].ref, ISLE_EKILLED);
    return ISLE_CONTINUE;
  }
  const isle_exit_t *e = isle_msg_exit(msg);
  if (!e)
    return ISLE_CONTINUE; /* supervisors take no other messages */
  if (e->ended)
    for (size_t i = 0; i < s->spec->nchildren; i++)
      if (s->children[i].state != CHILD_DOWN && s->children[i].ref == e->from)
        return child_exited(ctx, s, i, e->reason);
  /* A request to exit, or the end of a link that is not a child (our own
   * supervisor): stop the children, then end with that reason. */
  return shut_down(ctx, s, e->reason);
}

static void sup_finalize(isle_ctx_t *ctx, void *state) {
  sup_t *s = state;
  /* Only when killed (or the runtime is freed) are children left here. */
  for (size_t i = 0; s->children && i < s->spec->nchildren; i++)
    if (s->children[i].state != CHILD_DOWN)
      isle_exit(ctx, s->children[i].ref, ISLE_EKILLED);
  disarm_kill_timer(ctx, s);
  free_state(s);
}

const isle_actor_type_t isle_supervisor_type = {
    .name = "isle-supervisor",
    .state_size = sizeof(sup_t),
    .init = sup_init,
    .receive = sup_receive,
    .finalize = sup_finalize,
};
