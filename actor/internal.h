/* isle — MIT licensed. */
/*
 * Private declarations of the actor layer. Never installed.
 *
 * Map of the layer (the core, on heap/ and mailbox/; it knows no libuv)
 *   runtime.c  the runtime: config, workers, parking, quiescence, stop,
 *              the stall monitor, statistics; the layer above's plug
 *              (isle__upper_ops_t) and the end-of-actor hooks
 *   sched.c    run queues, runnext, stealing, the global queue, waking
 *   actor.c    slots and handles, spawn, send, a turn, an actor's end
 *   mute.c     flow control: muting a sender of a backlogged receiver
 *   life.c     exits, monitors, links
 *   names.c    registered names
 *
 * Who touches what
 * - A slot (the table entry behind a handle) lives as long as the runtime:
 *   senders touch only its mailbox core and read its actor pointer, so a
 *   send to a dead or replaced actor never touches freed memory.
 * - An actor block (type, state) is touched only by the worker running its
 *   turn, or by the spawning thread during init.
 * - A worker's run queue: the owner pushes and pops, thieves steal with a
 *   CAS on its head (sched.c). runnext is written by the owner only and
 *   read by others only for the quiescence check (runtime.c).
 */
#ifndef ISLE_ACTOR_INTERNAL_H
#define ISLE_ACTOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "isle/actor.h"
#include "heap/clock.h" /* isle__now_ns */
#include "isle/error.h"
#include "mailbox/internal.h"

#define ISLE__CACHE 64
#define ISLE__RUNQ 256 /* actors per worker ring (power of two) */
#define ISLE__DEFAULT_BATCH 64
#define ISLE__DEFAULT_MAX_ACTORS (UINT32_C(1) << 22)
#define ISLE__MAX_WORKERS 1024

typedef struct isle__actor_s isle__actor_t;
typedef struct isle__worker_s isle__worker_t;

/* One handle's table entry, one cache line. */
typedef struct isle__slot_s {
  isle__mbox_t mbox;               /* the mailbox core, reused by occupants */
  _Atomic(isle__actor_t *) xactor; /* current occupant, NULL when free */
  _Atomic uint32_t xgen;           /* generation of the last occupant */
  _Atomic uint32_t xnext_free;     /* free stack link: index + 1 */
  /* One bit per end-of-actor hook (isle__end_hook_add) that wants to
   * hear when the occupant ends; set by any thread, cleared at spawn
   * (names.c and io/timer.c say why in the slot, not the actor block). */
  _Atomic uint32_t xflags;
  uint32_t spare;
} isle__slot_t;

/* Message flags of the actor layer (above the mailbox's bits 0..7):
 * SYSTEM marks the runtime's own messages (life.c), which the turn looks
 * at before a receive function may see them. */
#define ISLE__MSG_F_SYSTEM 0x100u

_Static_assert(sizeof(isle__slot_t) == ISLE__CACHE, "a slot is one line");

typedef struct isle__life_s isle__life_t;

/* 32 bytes before the state: the runtime's whole per-actor block cost. */
struct isle__actor_s {
  const isle_actor_type_t *type;
  isle__life_t *life; /* monitors and links (life.c); NULL until used */
  isle_ref_t self;
  isle__actor_t *global_next; /* global queue link, under its lock */
  _Alignas(16) char state[];
};

#define ISLE__MUTE_ON 4u /* backlogged receivers a turn records (mute.c) */

struct isle_ctx_s {
  isle_runtime_t *rt;
  isle__worker_t *worker; /* NULL outside the workers */
  isle__actor_t *actor;
  isle_msg_t *current;  /* the message being received, or NULL */
  bool stop;            /* the actor ends after this callback */
  bool self_sent;       /* the actor sent itself a message this turn */
  unsigned noverloaded; /* backlogged actors it sent to (mute.c) */
  isle_ref_t overloaded[ISLE__MUTE_ON];
  int stop_reason; /* with this reason (0: normal) */
};

/* Flow control (mute.c): an actor that sent to one whose backlog reached
 * ISLE__MUTE_HIGH turns ends its turn and is held back until the backlog
 * falls to ISLE__MUTE_LOW turns (or the receiver is gone, or the
 * sender's own backlog reaches the high mark). */
#define ISLE__MUTE_HIGH 16u /* x batch messages */
#define ISLE__MUTE_LOW 4u   /* x batch messages */

typedef struct isle__muted_s {
  isle__actor_t *actor;
  unsigned non;
  isle_ref_t on[ISLE__MUTE_ON]; /* the backlogged receivers */
} isle__muted_t;

/* A thief's view of one victim's ring (sched.c): its tail when the thief
 * began watching, and since when (ns). */
typedef struct isle__watch_s {
  uint32_t mark;
  uint64_t since;
} isle__watch_t;

struct isle__worker_s {
  /* Run queue: a ring the owner fills at the tail and empties at the head;
   * thieves take up to half from the head with one CAS (Go's runq). */
  _Alignas(ISLE__CACHE) _Atomic uint32_t xhead;
  _Atomic uint32_t xtail;
  _Atomic(isle__actor_t *) ring[ISLE__RUNQ];
  /* Runs next, never stolen (locality). The owner's; others load it only
   * to decide quiescence: see the argument in runtime.c. */
  _Atomic(isle__actor_t *) xrunnext;
  /* Parking: 1 while the worker sleeps (or is about to). */
  _Alignas(ISLE__CACHE) _Atomic uint32_t xsleep;
  /* Owner-written counters (relaxed stores), read by statistics and the
   * stall monitor. */
  _Atomic uint64_t xturns;
  _Atomic uint64_t xmessages;
  _Atomic uint64_t xsteals;
  _Atomic uint64_t xparks;
  _Atomic uint64_t xspawned; /* actors this worker spawned, stopped, */
  _Atomic uint64_t xstopped; /* and failed (the runtime's counters of */
  _Atomic uint64_t xfailed;  /* the same names take other threads') */
  /* Never-used slots claimed for this worker's spawns: next << 32 | end
   * (actor.c). The owner takes from it; others only once all are out. */
  _Atomic uint64_t xfresh;
  _Atomic uint64_t xturn_seq;       /* +1 at each turn start */
  _Atomic(const char *) xturn_type; /* type name during a turn, else NULL */
  isle_ctx_t ctx;
  isle_runtime_t *rt;
  pthread_t thread;
  unsigned index;
  unsigned tick;
  unsigned io_tick;
  uint64_t rng;
  isle__watch_t *watch; /* as a thief, one per victim (sched.c) */
  /* Actors muted for sending to a backlogged actor (mute.c): an array
   * grown on the worker's heap, `nmuted` of `muted_cap` in use. */
  unsigned nmuted;
  unsigned muted_cap;
  isle__muted_t *muted;
};

/* The layer above the core (io/: loops, timers, TCP) plugs in here, so
 * that the core knows nothing of libuv. It is attached on its first use
 * (isle__upper_attach) and gives the workers a way to wait for its events
 * and the runtime a way to free it. poll, sleep and wake may be NULL
 * (the layer has no events of the workers' own: they sleep on futexes). */
typedef struct isle__upper_ops_s {
  /* Runs w's ready events without blocking; true when w has event
   * sources at all (it then spins less before it sleeps and polls every
   * 32 turns while busy). w's own thread. */
  bool (*poll)(isle__worker_t *w);
  /* Blocks w until one of its events or `wake`; may return early. w's
   * own thread, with w->xsleep set. */
  void (*sleep)(isle__worker_t *w);
  /* Makes a `sleep` of w return. Any thread, async-signal-safe. */
  void (*wake)(isle__worker_t *w);
  /* isle_runtime_free, first: stops the layer's threads, closes what is
   * open and frees its state. The freeing thread, no worker running. */
  void (*free)(isle_runtime_t *rt, void *state);
} isle__upper_ops_t;

/* End-of-actor hooks: modules that keep per-actor records outside the
 * actor (names, timers) register one and set its bit in the slot of an
 * actor they keep a record for; an ending actor calls the hooks whose bit
 * is set, after its mailbox closed and before finalize. */
typedef void (*isle__end_fn)(isle_runtime_t *rt, isle_ref_t self);
#define ISLE__END_HOOKS 8u

struct isle_runtime_s {
  isle_runtime_config_t cfg;
  unsigned nworkers;
  isle__worker_t *workers;
  /* Slots: a table mapped once (pages commit as used), a bump index for
   * never-used slots and a free stack (index + 1, tagged against ABA). */
  isle__slot_t *slots;
  _Atomic uint32_t xslots_used;
  _Atomic uint64_t xfree_top; /* tag << 32 | (index + 1) */
  /* The global queue: outside threads' wake-ups and run queue overflow. */
  _Alignas(ISLE__CACHE) pthread_mutex_t global_lock;
  isle__actor_t *global_head;
  isle__actor_t *global_tail;
  _Atomic uint64_t xglobal_len;
  /* Run state. */
  _Alignas(ISLE__CACHE) _Atomic uint32_t xnparked;
  /* Holds: the count (low 32 bits) and, above it, how many were ever
   * taken, so that a hold taken and released between two loads still
   * changes the word (runtime.c, quiescence). */
  _Atomic uint64_t xholds;
  _Atomic uint32_t xdone; /* futex word: 1 when the run is over */
  _Atomic uint32_t xstop;
  _Atomic uint32_t xrunning;
  pthread_t monitor;
  bool monitor_started;
  bool profiling; /* this runtime started the heap profile */
  /* Counters written by many threads (relaxed fetch_add); spawned,
   * stopped and failed only by threads that are not workers, which count
   * their own (actors live = spawned - stopped - failed). */
  _Alignas(ISLE__CACHE) _Atomic uint64_t xspawned;
  _Atomic uint64_t xstopped;
  _Atomic uint64_t xfailed;
  _Atomic uint64_t xdead_letters;
  _Atomic uint64_t xstalls;
  _Atomic uint64_t xnext_id; /* monitor and timer ids */
  /* Names (names.c): created on first use. */
  pthread_mutex_t names_lock;
  struct isle__names_s *names;
  /* End-of-actor hooks: `xnend_hooks` of them, each written once before
   * the count that covers it is published (release; the ending actor's
   * acquire load). Bit i of a slot's xflags asks for hook i. */
  pthread_mutex_t hooks_lock; /* adders, one at a time */
  isle__end_fn end_hooks[ISLE__END_HOOKS];
  _Atomic uint32_t xnend_hooks;
  uint32_t names_hook; /* names.c's bit */
  /* The layer above (see isle__upper_ops_t): its state and operations,
   * published together by isle__upper_attach under upper_lock (release
   * stores; acquire loads in isle__upper and the workers). */
  pthread_mutex_t upper_lock;
  bool freeing; /* isle_runtime_free began: no attach (under upper_lock) */
  _Atomic(void *) xupper;
  _Atomic(const isle__upper_ops_t *) xupper_ops;
};

static inline isle__slot_t *isle__slot_of(isle_runtime_t *rt, isle_ref_t r) {
  return &rt->slots[(uint32_t)r - 1];
}

/* Owner-written counter: a relaxed load and store, no RMW; readers only
 * want a recent value. */
static inline void isle__owner_add(_Atomic uint64_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                        memory_order_relaxed);
}

/* The worker the calling thread is (NULL outside the workers). */
extern _Thread_local isle__worker_t *isle__tls_worker;

/* ----- sched.c --------------------------------------------------------- */

/* `a` became runnable through a send from worker `w` (the sender's): it
 * runs next there; the actor it displaces goes to the run queue. */
void isle__sched_local(isle__worker_t *w, isle__actor_t *a);
/* `a` still has messages after its turn on `w`: back of w's queue. */
void isle__sched_requeue(isle__worker_t *w, isle__actor_t *a);
/* `a` became runnable from outside the workers: the global queue. */
void isle__sched_global(isle_runtime_t *rt, isle__actor_t *a);
/* Takes w's runnext actor (NULL if none); whether it has one. Owner. */
isle__actor_t *isle__sched_take_runnext(isle__worker_t *w);
bool isle__sched_has_runnext(const isle__worker_t *w);
/* The next actor for `w` to run, or NULL. Owner. */
isle__actor_t *isle__sched_next(isle__worker_t *w);
/* Flow control (mute.c). isle__mute_note: a send by the actor running on
 * w queued a message at `to`, whose mailbox is `mb`. isle__mute: at the
 * end of a's turn, holds a back instead of requeuing or idling it when it
 * sent to a backlogged actor; false when it should go on as usual.
 * isle__mute_release: requeues the muted actors whose reason is over;
 * `all`: every one, to the global queue (a stopping worker). */
void isle__mute_note(isle__worker_t *w, isle_ref_t to, isle__mbox_t *mb);
bool isle__mute(isle__worker_t *w, isle__actor_t *a, isle__mbox_t *own);
void isle__mute_release(isle__worker_t *w, bool all);

/* True when other actors wait to run on w (owner), or in the global
 * queue. */
bool isle__sched_waiting(const isle__worker_t *w);
/* Whether any ring or the global queue holds an actor (for parking);
 * `runnext`: every worker's runnext slot too (for quiescence). */
bool isle__sched_any_work(isle_runtime_t *rt, bool runnext);
/* Wakes one sleeping worker if there is one. Any thread. */
void isle__wake_one(isle_runtime_t *rt);
void isle__wake_all(isle_runtime_t *rt);
/* Wakes `w` whose xsleep the caller has cleared: its futex and, with the
 * layer above attached, that layer's wake. */
void isle__worker_wake(isle__worker_t *w);
void isle__futex_wait(_Atomic uint32_t *word, uint32_t expect,
                      uint32_t timeout_ms);
void isle__futex_wake(_Atomic uint32_t *word, int n);

/* ----- actor.c --------------------------------------------------------- */

/* Runs one turn of `a` on `w`. */
void isle__actor_turn(isle__worker_t *w, isle__actor_t *a);
/* Ends every live actor (runtime teardown, calling thread). */
void isle__actors_end_all(isle_runtime_t *rt);
/* Sends as actor `from` (ISLE_REF_NONE: no sender) from worker `w` (NULL
 * outside the workers). Errors and ownership as isle_runtime_send. */
int isle__send(isle_runtime_t *rt, isle__worker_t *w, isle_ref_t from,
               isle_ref_t to, isle_msg_t *msg);
/* Whether `r` could name an actor of this runtime (0, or ISLE_EINVAL). */
int isle__ref_check(isle_runtime_t *rt, isle_ref_t r);
/* Spawns; with `link` set, links the new actor and ctx's before it runs. */
int isle__spawn(isle_runtime_t *rt, isle_ctx_t *ctx,
                const isle_actor_type_t *type, const void *arg, bool link,
                isle_ref_t *out);

/* ----- life.c: exits, monitors, links ------------------------------------ */

/* A system message taken in a turn: acts on it. Returns true when the
 * receive function must see it (a DOWN or a trapped EXIT, its flag
 * cleared); otherwise the message was consumed. May set ctx->stop. */
bool isle__life_signal(isle_ctx_t *ctx, isle_msg_t *msg);
/* The actor in ctx ends with `reason`: a message drained from its closed
 * mailbox. Answers monitor and link requests (DOWN, EXIT) when `notify`
 * and frees the rest; returns true if it was an ordinary message (a dead
 * letter). */
bool isle__life_drained(isle_ctx_t *ctx, isle_msg_t *msg, int reason,
                        bool notify);
/* Tells monitors and links that the actor in ctx ended, frees its life. */
void isle__life_end(isle_ctx_t *ctx, int reason, bool notify);
/* Links the actors of ctx (running) and `child` (being spawned). */
int isle__life_link_child(isle_ctx_t *ctx, isle__actor_t *child);

/* ----- names.c ----------------------------------------------------------- */

/* Registers names.c's end hook (isle_runtime_new). */
void isle__names_init(isle_runtime_t *rt);
void isle__names_free(isle_runtime_t *rt);

/* ----- runtime.c: the layer above and end-of-actor hooks ------------------ */

/* Adds an end-of-actor hook; its slot bit goes to *bit. 0, or ISLE_ENOMEM
 * when all ISLE__END_HOOKS are taken. Any thread; a hook stays until the
 * runtime is freed. */
int isle__end_hook_add(isle_runtime_t *rt, isle__end_fn fn, uint32_t *bit);
/* The state of the layer above, NULL until it is attached (and again once
 * isle_runtime_free freed it). Any thread. */
void *isle__upper(isle_runtime_t *rt);
/* Attaches the layer above on its first use: under a lock, if none is
 * attached yet, calls create(rt, arg) and, when it returns state, publishes it
 * with `ops` and wakes every sleeping worker so that it sleeps in the
 * layer's `sleep` from then on. Returns the state; NULL when create
 * failed, or when isle_runtime_free has begun (isle__upper_closed: a
 * finalize run by the teardown must not attach a new layer to a runtime
 * about to be freed). Any thread, also while the runtime runs. */
void *isle__upper_attach(isle_runtime_t *rt,
                         void *(*create)(isle_runtime_t *rt, void *arg),
                         void *arg, const isle__upper_ops_t *ops);
/* Whether isle_runtime_free has begun (attaching is refused). */
bool isle__upper_closed(isle_runtime_t *rt);

#endif /* ISLE_ACTOR_INTERNAL_H */
