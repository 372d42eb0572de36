/* isle — MIT licensed. */
/*
 * Failure handling and time: exits, monitors, links, supervisors, names
 * and timers (Erlang/OTP's model, in C). docs/failures.md is the guide.
 *
 * Exit reasons: 0 (ISLE_EXIT_NORMAL) is a normal exit; a negative ISLE_E*
 * code is an abnormal one. An actor exits when its receive returns
 * ISLE_STOP (normal) or a negative code (that code), when it calls
 * isle_ctx_stop (normal) or isle_exit on itself, when another thread
 * calls isle_exit / isle_runtime_exit on it, or when a linked actor exits
 * abnormally and it does not trap exits.
 *
 * The runtime's messages. Types from ISLE_MSG_RESERVED up are the
 * runtime's; a receive function sees two of them:
 *   ISLE_MSG_DOWN  payload isle_down_t: a monitored actor ended.
 *   ISLE_MSG_EXIT  payload isle_exit_t: a linked actor ended, or someone
 *                  called isle_exit on this one (only for actors that
 *                  trap exits).
 * They are ordinary messages once delivered: the receiver owns them for
 * the receive call like any other (keep, forward or let the runtime free
 * them). Monitor, link and exit requests travel to their target as
 * messages too, in order with the sender's other messages, and pass a
 * mailbox's capacity: a full mailbox never loses one.
 *
 * Threads: isle_ctx_* and isle_exit / isle_monitor / isle_link ... take
 * the ctx of the calling callback and run only inside it; isle_runtime_*,
 * isle_name_*, isle_timer_* may be called from any thread.
 */
#ifndef ISLE_LIFECYCLE_H
#define ISLE_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isle/actor.h"
#include "isle/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ===== Exits ============================================================ */

#define ISLE_EXIT_NORMAL 0

/* Asks actor `ref` to exit with `reason` (0 or a negative ISLE_E* code).
 * An actor that does not trap exits ends with that reason (also a normal
 * one): its finalize runs, its monitors get DOWN, its links the reason.
 * One that traps exits receives ISLE_MSG_EXIT {from: the caller, reason}
 * instead and decides (a supervisor stops its children first), except for
 * ISLE_EKILLED, which ends any actor. The request is a message: messages
 * queued before it are handled first. On itself, the actor ends when the
 * current callback returns. Returns 0, ISLE_EINVAL (positive reason, bad
 * handle), ISLE_EDEAD (already gone) or ISLE_ENOMEM. Inside a callback. */
ISLE_API int isle_exit(isle_ctx_t *ctx, isle_ref_t ref, int reason);

/* Same, from any thread (the request has no sender). */
ISLE_API int isle_runtime_exit(isle_runtime_t *rt, isle_ref_t ref, int reason);

/* ===== Monitors ========================================================= */

#define ISLE_MSG_RESERVED 0xFFFF0000u
#define ISLE_MSG_DOWN 0xFFFF0001u
#define ISLE_MSG_EXIT 0xFFFF0002u

/* Payload of ISLE_MSG_DOWN. reason is ISLE_EDEAD when the actor was gone
 * before the monitor reached it. */
typedef struct isle_down_s {
  isle_ref_t ref;   /* the actor that ended */
  uint64_t monitor; /* the id isle_monitor returned */
  int reason;
} isle_down_t;

/* Payload of ISLE_MSG_EXIT. */
typedef struct isle_exit_s {
  isle_ref_t from; /* the linked actor that ended, or isle_exit's caller
                      (ISLE_REF_NONE from outside the actors) */
  int reason;
  bool ended; /* true: `from` has ended (a link); false: a request */
} isle_exit_t;

/* Monitors `target` on behalf of the calling actor, which will receive
 * exactly one ISLE_MSG_DOWN for it (at once if target is already gone),
 * unless it calls isle_demonitor first. The id goes to *id (may be NULL).
 * Returns 0 or ISLE_EINVAL (no calling actor, bad handle) or ISLE_ENOMEM.
 * Inside a callback. */
ISLE_API int isle_monitor(isle_ctx_t *ctx, isle_ref_t target, uint64_t *id);

/* Cancels a monitor: no DOWN for it is delivered after this returns,
 * even one already queued. 0, or ISLE_ENOENT (no such monitor of this
 * actor: already delivered or never made). Inside a callback. */
ISLE_API int isle_demonitor(isle_ctx_t *ctx, uint64_t id);

/* Payload of a DOWN message (NULL if `msg` is not one). */
ISLE_API const isle_down_t *isle_msg_down(isle_msg_t *msg);
/* Payload of an EXIT message (NULL if `msg` is not one). */
ISLE_API const isle_exit_t *isle_msg_exit(isle_msg_t *msg);

/* ===== Links ============================================================ */

/* Links the calling actor and `other`, both ways (linking twice is one
 * link). When either ends abnormally the other ends with the same reason,
 * unless it traps exits: then it receives ISLE_MSG_EXIT. Normal exits end
 * no one (trapping actors still get ISLE_MSG_EXIT). Returns 0,
 * ISLE_EINVAL (no calling actor, bad handle, itself), ISLE_EDEAD (other is
 * already gone: no link is made) or ISLE_ENOMEM. Inside a callback. */
ISLE_API int isle_link(isle_ctx_t *ctx, isle_ref_t other);

/* Removes the link (both ways); an exit of `other` already on its way is
 * ignored. 0, or ISLE_ENOENT (not linked). Inside a callback. */
ISLE_API int isle_unlink(isle_ctx_t *ctx, isle_ref_t other);

/* Whether linked actors' exits arrive as ISLE_MSG_EXIT messages (true) or
 * end this actor when abnormal (false, the default). 0, ISLE_EINVAL (no
 * calling actor) or ISLE_ENOMEM. Inside a callback. */
ISLE_API int isle_trap_exits(isle_ctx_t *ctx, bool on);

/* Spawns an actor linked to the calling one before it can run, so even
 * an init that ends it at once is seen. Errors as isle_ctx_spawn, and
 * ISLE_EINVAL without a calling actor. Inside a callback. */
ISLE_API int isle_ctx_spawn_link(isle_ctx_t *ctx, const isle_actor_type_t *type,
                                 const void *arg, isle_ref_t *out);

/* ===== Names ============================================================ */

#define ISLE_NAME_MAX 64 /* bytes, with the terminating NUL */

/* Registers `name` for live actor `ref`; the name is freed when the actor
 * ends (before its monitors and links hear of it). One name per actor.
 * Returns 0, ISLE_EINVAL (NULL, empty or too long name, bad handle),
 * ISLE_EBUSY (name taken, or the actor has one), ISLE_EDEAD (actor gone)
 * or ISLE_ENOMEM. The name is copied. Any thread. */
ISLE_API int isle_name_register(isle_runtime_t *rt, const char *name,
                                isle_ref_t ref);

/* Frees `name`. 0 or ISLE_ENOENT (not registered), ISLE_EINVAL. Any
 * thread. */
ISLE_API int isle_name_unregister(isle_runtime_t *rt, const char *name);

/* The actor registered as `name` in *out. 0, ISLE_ENOENT, ISLE_EINVAL.
 * The answer may be stale as soon as it is given (the actor may end):
 * sends to it then fail with ISLE_EDEAD. Any thread. */
ISLE_API int isle_name_lookup(isle_runtime_t *rt, const char *name,
                              isle_ref_t *out);

/* ===== Timers =========================================================== */

/* Sends `msg` to `target` after delay_ms (never before: the delay counts
 * from this call), then, if period_ms is not 0, a copy of it every
 * period_ms (counted from the previous expiry) until cancelled. On success the
 * timer owns `msg` and its id goes to *id (may be NULL). A pending timer keeps
 * the runtime from being quiescent. A timer whose target is gone when it fires
 * ends there: the message is freed and counted in timers_dropped, as is a
 * message its target's full mailbox refused. Delays are in milliseconds on
 * a libuv loop in the runtime's "io" thread; docs/failures.md gives the
 * measured error. Returns 0, ISLE_EINVAL (NULL rt or msg, bad handle),
 * ISLE_ESTATE (the first timer of a runtime that isle_runtime_free is
 * freeing: from a finalize it runs) or ISLE_ENOMEM; on error `msg` stays
 * the caller's. Any thread. */
ISLE_API int isle_timer_start(isle_runtime_t *rt, isle_ref_t target,
                              isle_msg_t *msg, uint64_t delay_ms,
                              uint64_t period_ms, uint64_t *id);

/* Cancels a timer: it will not fire after this returns, and its message is
 * freed. 0, or ISLE_ENOENT (fired already, as a one-shot, or cancelled,
 * or unknown). Any thread. */
ISLE_API int isle_timer_cancel(isle_runtime_t *rt, uint64_t id);

/* ===== Supervisors ====================================================== */

typedef enum isle_sup_strategy_e {
  ISLE_ONE_FOR_ONE,  /* restart the child that ended */
  ISLE_ONE_FOR_ALL,  /* stop every other child, restart them all */
  ISLE_REST_FOR_ONE, /* stop the children started after it, restart those */
} isle_sup_strategy_t;

typedef enum isle_restart_e {
  ISLE_PERMANENT, /* always restarted */
  ISLE_TRANSIENT, /* restarted after an abnormal exit only */
  ISLE_TEMPORARY, /* never restarted */
} isle_restart_t;

typedef struct isle_child_spec_s {
  const char *name; /* registered for each incarnation; NULL: none */
  const isle_actor_type_t *type;
  const void *arg; /* passed to init at every (re)start */
  isle_restart_t restart;
  uint64_t reserved_[4]; /* zero: room to grow (docs/guide.md, ABI) */
} isle_child_spec_t;

typedef struct isle_sup_spec_s {
  isle_sup_strategy_t strategy;
  /* Intensity: more than max_restarts restarts within within_ms and the
   * supervisor gives up: it ends with ISLE_ERESTARTS, which ends its
   * children (linked) and tells its own supervisor. */
  unsigned max_restarts;
  uint32_t within_ms;
  const isle_child_spec_t *children; /* started in order */
  size_t nchildren;
  /* How long a child asked to exit may take before it is killed; 0: 5000. */
  uint32_t shutdown_ms;
  uint64_t reserved_[3]; /* zero: room to grow (docs/guide.md, ABI) */
} isle_sup_spec_t;

/* The supervisor actor type: spawn it (from anywhere, also as a child of
 * another supervisor) with a `const isle_sup_spec_t *` argument that
 * outlives it. It traps exits and links its children. It ends only after
 * its children have: when it gives up (ISLE_ERESTARTS), or is asked to
 * exit (isle_exit, or the exit of a linked actor that is not its child,
 * such as its own supervisor), it asks every child to exit with
 * ISLE_ESHUTDOWN, waits for their ends (killing, with ISLE_EKILLED, those
 * still running after shutdown_ms), then ends with the reason. So by the
 * time its own supervisor hears of its end, its children's names are
 * free again. An init that fails stops the children already started and
 * fails the spawn with its error. */
ISLE_API extern const isle_actor_type_t isle_supervisor_type;

#ifdef __cplusplus
}
#endif
#endif /* ISLE_LIFECYCLE_H */
