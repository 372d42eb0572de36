/* isle — MIT licensed. */
/*
 * Actors and the runtime that runs them.
 *
 * An actor is state plus a receive function, behind a handle (isle_ref_t).
 * The runtime runs actors on worker threads (one per CPU by default), each
 * with its own heap and run queue; an actor runs on one worker at a time
 * and handles up to `batch` messages per turn (fewer after a receive
 * that sent the actor itself a message while others wait).
 *
 * Ownership, everywhere: a successful send hands the message to the
 * runtime; a failed send (ISLE_EDEAD, ISLE_EFULL, ...) leaves it with the
 * caller, who may retry, redirect or free it. A receive function borrows
 * its message until it returns; the runtime then frees it, unless the
 * function sent it on (by any send, or a push into an isle_mailbox_t;
 * forwarding is zero-copy), handed it to a timer or a TCP write, kept it
 * (isle_ctx_keep) or freed it (isle_msg_free). So when a send of the message
 * being received fails, the receive may retry, redirect, free it or leave it:
 * each is correct, none frees it twice.
 *
 * Threads: isle_runtime_* functions may be called from any thread, also
 * while the runtime runs (isle_runtime_stop also from a signal handler);
 * isle_ctx_* functions only from inside an actor's callbacks, with the ctx
 * they were given.
 */
#ifndef ISLE_ACTOR_H
#define ISLE_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isle/api.h"
#include "isle/mailbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ===== Types ============================================================ */

/* An actor's handle: safe to keep, copy and send to after the actor is
 * gone (the send then fails with ISLE_EDEAD). 0 is no actor. */
typedef uint64_t isle_ref_t;
#define ISLE_REF_NONE ((isle_ref_t)0)

typedef struct isle_runtime_s isle_runtime_t;
/* What a callback gets to act with: its actor, its worker, its message. */
typedef struct isle_ctx_s isle_ctx_t;

/* What a receive function returns. A negative ISLE_E* code also stops the
 * actor (an abnormal exit, counted in isle_runtime_stats_t.failed). */
#define ISLE_CONTINUE 0
#define ISLE_STOP 1

typedef struct isle_actor_type_s {
  const char *name;  /* for stall reports and statistics */
  size_t state_size; /* bytes of state, zeroed, 16-byte aligned */
  /* Runs inside the spawn call, on the spawning thread; `arg` is the
   * spawn argument. Non-zero fails the spawn (a negative code is
   * returned as is, a positive one as ISLE_EINVAL); then finalize does
   * not run (init undoes what it did, as a C constructor does), the
   * actors init linked to hear of the exit with that error (an actor it
   * spawned with isle_ctx_spawn_link ends with it unless it traps exits)
   * and those it spawned unlinked live on. An init that calls
   * isle_ctx_stop or isle_exit on itself succeeds: the spawn returns 0
   * and the handle of an actor that has already ended (its links and
   * monitors hear of it). May be NULL. */
  int (*init)(isle_ctx_t *ctx, void *state, const void *arg);
  /* Handles one message; returns ISLE_CONTINUE, ISLE_STOP or an error.
   * Required. */
  int (*receive)(isle_ctx_t *ctx, void *state, isle_msg_t *msg);
  /* Runs once when the actor ends (it stopped, or the runtime is freed).
   * May be NULL. */
  void (*finalize)(isle_ctx_t *ctx, void *state);
  /* Mailbox capacity: sends beyond it fail with ISLE_EFULL. 0: none. The
   * count drops at the end of each turn, so the messages of the turn
   * being run still count until it ends. */
  size_t mailbox_capacity;
  uint64_t reserved_[2]; /* zero: room to grow (docs/guide.md, ABI) */
} isle_actor_type_t;

/* Called (on the runtime's monitor thread) when one receive has run for
 * longer than the configured stall time; once per turn. */
typedef void (*isle_stall_fn)(const char *type_name, unsigned worker,
                              uint64_t ms, void *arg);

typedef struct isle_runtime_config_s {
  unsigned workers;       /* worker threads; 0: one per online CPU */
  unsigned batch;         /* messages per actor turn; 0: 64 */
  size_t heap_limit;      /* if not 0, isle_heap_set_limit(heap_limit) */
  bool pin_workers;       /* pin worker i to CPU i (mod CPUs) */
  uint32_t stall_ms;      /* stall report threshold; 0: 1000; UINT32_MAX: off */
  isle_stall_fn on_stall; /* NULL: a line on stderr */
  void *stall_arg;
  uint32_t max_actors; /* live actors at once; 0: 4,194,304 */
  /* Heap profile (docs/profiling.md): if set, isle_runtime_new starts
   * the sampler writing to this path (isle_profile_start) unless one runs
   * already (ISLE_PROFILE), and isle_runtime_free stops it, writing the
   * final snapshot. */
  const char *profile_path;
  unsigned profile_interval_ms; /* 0: 10 */
  uint64_t reserved_[8];        /* zero: room to grow (docs/guide.md, ABI) */
} isle_runtime_config_t;

typedef struct isle_runtime_stats_s {
  unsigned workers;
  uint64_t actors_live;
  uint64_t spawned;
  uint64_t stopped;      /* ended by ISLE_STOP or isle_ctx_stop */
  uint64_t failed;       /* ended by an error code */
  uint64_t dead_letters; /* sends refused as ISLE_EDEAD, and messages
                            freed unread when their actor ended */
  uint64_t messages;     /* receive calls */
  uint64_t turns;
  uint64_t steals;        /* actors taken from another worker's queue */
  uint64_t parks;         /* times a worker went to sleep */
  uint64_t stalls;        /* stall reports */
  uint64_t reserved_[21]; /* zero: room to grow (docs/guide.md, ABI) */
} isle_runtime_stats_t;

/* ===== The runtime — any thread ========================================== */

/* Fills *cfg with the defaults (all zero: every field's default). */
ISLE_API void isle_runtime_config_init(isle_runtime_config_t *cfg);

/* A runtime, not yet running; `cfg` NULL means defaults. Returns 0,
 * ISLE_EINVAL (NULL `out`, more than 1024 workers, max_actors above 2^30,
 * a bad profile interval), ISLE_ENOMEM, or what isle_profile_start
 * returned for profile_path (ISLE_EIO: cannot write it). Ownership: the
 * caller's; free with isle_runtime_free. */
ISLE_API int isle_runtime_new(const isle_runtime_config_t *cfg,
                              isle_runtime_t **out);

/* Starts the workers and blocks until the runtime is quiescent (no actor
 * has a message, no hold is taken) or isle_runtime_stop is called; then
 * joins the workers and returns 0. May be called again later. ISLE_ESTATE
 * if it is already running; ISLE_ENOMEM if threads cannot be started. */
ISLE_API int isle_runtime_run(isle_runtime_t *rt);

/* Asks a running runtime to stop: workers finish the turn they are in and
 * exit; queued messages stay queued. Async-signal-safe. A stop requested
 * while the runtime is not running makes the next run return at once. */
ISLE_API void isle_runtime_stop(isle_runtime_t *rt);

/* Keeps the runtime from being quiescent while an outside thread may still
 * send (or until some outside event is due): take the hold before the
 * runtime could end without you (before run, or from a thread the running
 * runtime already serves), send, then release. A run that is in progress
 * does not end while a hold is taken, nor end with a message sent under a
 * hold still queued. Release undoes one hold: 0, ISLE_ESTATE when none is
 * taken (the count is left alone), ISLE_EINVAL for NULL. Any thread. */
ISLE_API void isle_runtime_hold(isle_runtime_t *rt);
ISLE_API int isle_runtime_release(isle_runtime_t *rt);

/* Ends every remaining actor (finalize runs, queued messages are freed and
 * counted as dead letters) and frees the runtime: 0. ISLE_EBUSY, and
 * nothing is freed, while isle_runtime_run is running it (stop it and
 * let run return first). NULL is ignored (0). */
ISLE_API int isle_runtime_free(isle_runtime_t *rt);

/* Spawns an actor from outside the runtime (before or during run).
 * Returns 0 and its handle in *out (may be NULL), ISLE_EINVAL (NULL rt or
 * type, no receive, mailbox_capacity above ISLE_MAILBOX_MAX_CAPACITY),
 * ISLE_ENOMEM (heap, or max_actors reached), or what init returned. */
ISLE_API int isle_runtime_spawn(isle_runtime_t *rt,
                                const isle_actor_type_t *type, const void *arg,
                                isle_ref_t *out);

/* Sends from outside the runtime (the message has no sender). Returns 0
 * (the runtime owns `msg`), ISLE_EDEAD (no such actor any more), ISLE_EFULL
 * (its mailbox is full), ISLE_EINVAL (NULL argument, or a handle this
 * runtime never gave out); on error `msg` stays the caller's. */
ISLE_API int isle_runtime_send(isle_runtime_t *rt, isle_ref_t to,
                               isle_msg_t *msg);

/* Copies the runtime's counters. 0, or ISLE_EINVAL for NULL. */
ISLE_API int isle_runtime_stats(isle_runtime_t *rt, isle_runtime_stats_t *out);

/* ===== Inside an actor — the callback's thread, with its ctx ============= */

/* Like isle_runtime_spawn; the new actor's sends may run on this worker. */
ISLE_API int isle_ctx_spawn(isle_ctx_t *ctx, const isle_actor_type_t *type,
                            const void *arg, isle_ref_t *out);

/* Sends `msg` to `to`, with this actor as its sender. Sending the message
 * being received forwards it without a copy. Errors as isle_runtime_send. */
ISLE_API int isle_ctx_send(isle_ctx_t *ctx, isle_ref_t to, isle_msg_t *msg);

/* Sends `msg` to the sender of the message being received. ISLE_EINVAL
 * when that message has no sender (it came from outside). */
ISLE_API int isle_ctx_reply(isle_ctx_t *ctx, isle_msg_t *msg);

/* Keeps the message being received: the runtime will not free it; it is
 * the caller's (to free or send later). Can't fail. */
ISLE_API void isle_ctx_keep(isle_ctx_t *ctx);

/* Ends this actor after the current callback returns. Can't fail. */
ISLE_API void isle_ctx_stop(isle_ctx_t *ctx);

ISLE_API isle_ref_t isle_ctx_self(const isle_ctx_t *ctx);
ISLE_API isle_runtime_t *isle_ctx_runtime(const isle_ctx_t *ctx);
/* The worker running the callback, or -1 outside a worker (init of an
 * actor spawned from outside). */
ISLE_API int isle_ctx_worker(const isle_ctx_t *ctx);

/* The actor that sent `msg`, ISLE_REF_NONE if it came from outside. */
ISLE_API isle_ref_t isle_msg_sender(const isle_msg_t *msg);

#ifdef __cplusplus
}
#endif
#endif /* ISLE_ACTOR_H */
