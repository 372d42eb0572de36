/* isle — MIT licensed. */
/*
 * A Promela model of parking, holds and quiescence (actor/runtime.c:
 * worker_main, worker_park, run_quiescent, isle_runtime_hold and
 * isle_runtime_release; actor/sched.c: isle__wake_one, isle__sched_local,
 * isle__sched_requeue, isle__sched_global, isle__sched_next and
 * isle__sched_any_work), checked with spin by tests/models/spin_check.sh
 * (ctest: models_quiescence*, label spin).
 *
 * The run: N workers (2; 3 with -DWORKERS=3) and two actors, A and B, fed
 * by three event sources as the runtime has them:
 *   (a) an outside thread: hold, send to A, release. It may start at any
 *       moment, even once the run is over (its send is then simply late);
 *   (b) an I/O connection on worker IOW (the last), whose hold is taken
 *       before the run: its one callback runs on IOW, either inside IOW's
 *       park (IOW still counted as parked: uv_run(UV_RUN_ONCE)) or in
 *       poll_io between turns; it sends to A (A goes into IOW's runnext),
 *       then releases the hold (the connection closes);
 *   (c) a one-shot timer armed by A's first turn (its hold is taken on the
 *       worker, during the turn); the timer thread fires it: send to A,
 *       then release.
 * A's first turn also sends to B (into that worker's runnext). A turn
 * takes one message, so an actor with more waiting is requeued (ring,
 * then wake_one) and runs again.
 *
 * What spin checks, over every interleaving:
 *   - the run ends only when it may: at the deciding worker's last load
 *     (the linearisation point of the decision), every mailbox is empty,
 *     no actor is queued, in a runnext, running or in flight (scheduled by
 *     a sender that has not placed it yet), and no hold is taken (no
 *     timer armed, no connection open); assertion on
 *     quiescent_with_work_left;
 *   - no deadlock: a state where every thread is blocked and the run has
 *     not ended (workers asleep for ever next to a message, or nobody
 *     left to decide) is an invalid end state;
 *   - a release always has a hold to release (ISLE_ESTATE never happens);
 *   - with -DLIVE (spin_check.sh --live: acceptance cycles, weak
 *     fairness): every run ends (ltl <> done), so no livelock of workers
 *     parking and unparking for ever.
 *
 * How it maps to the C code (one Promela step per shared access):
 *   where[a], msgs[a]  an actor's state as its mailbox decides it: IDLE
 *               (idle mailbox), INFLIGHT (a push returned was_idle, the
 *               sender has not placed it yet), GLOBAL, RING+w, RUNNEXT+w,
 *               RUNNING+w; msgs[a] messages queued. The mailbox is one
 *               step (tests/mailbox/ checks it): a push adds a message and
 *               reports was_idle iff the actor was idle; try_idle succeeds
 *               iff no message is queued.
 *   queues      sets: a worker takes any actor from its runnext, its ring,
 *               the global queue or another's ring (a steal), in every
 *               order the real queues allow, and more.
 *   xsleep[w], nparked, holds, done  the atomics of the same names; holds
 *               is runtime.c's word: the count in the low 4 bits, holds
 *               ever taken above them (HOLD_ONE = 1 + 16).
 *   park        worker_park after its spin: store xsleep = 1, fetch_add
 *               nparked, any_work(false) (the global queue, each ring);
 *               if nothing and parked == N, run_quiescent: load H1, give
 *               up if a hold is taken, any_work(true) (the same, then each
 *               runnext), load nparked and give up unless N, load H2 and
 *               give up unless H1 (see the variants for other orders).
 *               Quiescent: done, wake all. Otherwise, if nothing was seen
 *               and not done, sleep until xsleep is cleared or done
 *               (futex; IOW: one uv_run round, a wake or the callback),
 *               or, with -DSPURIOUS, at any moment (a worker's uv_run
 *               returns after any event of its loop, a timer of its own
 *               for one). Then store xsleep = 0, nparked--.
 *   wake_one    isle__wake_one: (the fence) load nparked, nothing if 0,
 *               else CAS xsleep 1 -> 0 on the first worker that has it,
 *               one step per worker; the CAS is the wake (a sleeper waits
 *               on xsleep, as futex_wait on a changed word returns).
 *   release     isle_runtime_release: the CAS loop as one RMW (refused at
 *               0); the last hold clears the first xsleep found at 1 (a
 *               load, then a store: two steps, as in C).
 *   send(a, w)  isle__send: the push, then, if was_idle, isle__sched_local
 *               (worker w: into runnext; a displaced actor to the ring and
 *               wake_one) or isle__sched_global (the global queue, then
 *               wake_one).
 *   worker      worker_main: done ends it; else run the turn of an actor it
 *               can take; else, with its runnext and ring empty (as after
 *               sched_next returned NULL), poll_io, then park. The spin
 *               before parking only delays and is left out.
 *
 * What is abstracted:
 *   - Memory order: Promela is sequentially consistent. In C every access
 *     of this protocol is seq_cst (xsleep, nparked, holds, the scan's
 *     loads, wake_one's fence) except runnext's (a relaxed store of an
 *     actor, a release store of NULL), whose argument runtime.c gives and
 *     this model does not check.
 *   - The mailbox, the internals of the rings and the global queue, and
 *     the patient thief (a steal may happen at any time, or never).
 *   - Flow control (a worker with muted actors never parks), ring overflow
 *     into the global queue, isle_runtime_stop.
 *
 * Variants (spin -D...), each one ctest check:
 *   (default)              no error.
 *   -DSPURIOUS             sleeps may end at any moment: no error. (A
 *                          sleeper then never blocks, so this run checks
 *                          the assertions only; the default run and LIVE
 *                          check deadlock and termination.)
 *   -DWORKERS=3 -DNO_OUTSIDE  three workers: no error.
 *   -DLIVE                 the liveness check: no acceptance cycle.
 *   -DWITNESS_END          must fail (all_sources_then_end): a run that
 *                          ends after all three sources did their part
 *                          exists, so the default's pass is not vacuous.
 *   -DBUG_HOLDS_AFTER_SCAN the old check: scan (runnexts included), nparked,
 *                          then the hold count alone (no H1, no sequence).
 *                          With only the outside thread (-DNO_IO
 *                          -DNO_TIMER) it must fail: hold -> send -> release
 *                          fits between the scan and the count.
 *   -DBUG_NO_RUNNEXT       the old scan, without runnext. With only the I/O
 *                          source (-DNO_OUTSIDE -DNO_TIMER) it must fail:
 *                          the callback puts A in IOW's runnext and
 *                          releases inside IOW's park, and the other
 *                          worker, parking last, sees nothing.
 *   -DNO_PARKED_RECHECK    no look at nparked after the scan (H1, scan,
 *                          H2). With only the I/O source it must fail: a
 *                          worker woken but still counted as parked
 *                          unparks and takes A after the scan.
 *   -DH2_THEN_PARKED       H1, scan, H2, then nparked: H2 is not the last
 *                          load. With I/O and the timer (-DNO_OUTSIDE) it
 *                          must fail: the woken-but-counted worker unparks
 *                          after the scan, runs A, whose turn arms the
 *                          timer (a hold taken after H2) and sends to B,
 *                          runs B and parks again, all before the nparked
 *                          load: the count is N again, the run ends, and
 *                          the timer fires into a finished run. Loading
 *                          nparked before H2 closes that: a hold taken by
 *                          any turn that ran between H1 and H2 changes H2.
 *   -DBUG_RELEASE_NO_WAKE  the last release wakes nobody. It must fail as
 *                          an invalid end state (the last worker to park
 *                          saw the hold and sleeps for ever), and with
 *                          -DLIVE as an acceptance cycle: the deadlock
 *                          and liveness checks can fail.
 *   -DNO_OUTSIDE, -DNO_IO, -DNO_TIMER  leave a source out.
 * Search: exhaustive and complete: spin's partial order reduction, no
 * bitstate or hash compaction (the 3-worker run uses -DCOLLAPSE, which is
 * lossless); pan -DSAFETY for the safety checks; a depth limit of 200,000
 * that spin_check.sh fails on if reached. One CPU: the default 5.9 M
 * states, depth 1,368, ~5 s; SPURIOUS 6.0 M, depth 4,369, ~5 s; 3 workers
 * 19 M states, depth 7,429, ~20 s; LIVE 5.3 M states (51 M visited under
 * fairness), ~20 s; each known-bad variant fails within 140 k states.
 */

#ifndef WORKERS
#define WORKERS 2
#endif
#define N WORKERS
#define IOW (N - 1) /* the connection's worker */

#define NONE 255 /* send() from a thread that is not a worker */

/* where[a] */
#define IDLE 0
#define INFLIGHT 1
#define GLOBAL 2
#define RING 3          /* + w */
#define RUNNEXT (3 + N) /* + w */
#define RUNNING (3 + 2 * N)

#define A 1
#define B 2
#define NA 2

#define HOLD_ONE 17
#define HCOUNT(h) ((h) & 15)

/* ----- Shared state ------------------------------------------------------ */

byte where[NA + 1];
byte msgs[NA + 1];
bit xsleep[N];
byte nparked = 0;
byte holds = 0;
bool done = false;

/* ----- Ghost state -------------------------------------------------------- */

bool quiescent_with_work_left = false; /* set only to fail the assertion */
bool all_sources_then_end = false;     /* WITNESS_END's, likewise */
bool timer_armed = false;
byte after_h2 = 0;      /* H2_THEN_PARKED: deciders between H2 and nparked */
bool o_late = false;    /* the outside thread's hold came after such an H2 */
bool a_sent = false;    /* A's first turn has sent and armed */
byte sources_done = 0;  /* sources that have done their part */

#define NSOURCES 3

/* Nothing queued, in flight or running; every mailbox empty. */
#define ALL_QUIET                                                              \
  (where[A] == IDLE && where[B] == IDLE && msgs[A] == 0 && msgs[B] == 0)

/* ----- Holds --------------------------------------------------------------- */

inline hold() {
  holds = holds + HOLD_ONE
}

/* isle_runtime_release: the CAS loop as one RMW; the last hold wakes the
 * first worker found with xsleep == 1 (a load, then a store of 0, as the
 * C code does: not a CAS). */
inline release() {
  atomic {
    assert(HCOUNT(holds) > 0); /* never refused: every release has a hold */
    holds--;
    last = (HCOUNT(holds) == 0)
  };
  if
#ifdef BUG_RELEASE_NO_WAKE
  :: atomic { last -> last = false }; i = N; /* looks at no worker */
    do
#else
  :: atomic { last -> last = false };
    do
#endif
    :: i < N && xsleep[i] == 1 -> atomic { xsleep[i] = 0; i = 0 }; break
    :: i < N && xsleep[i] == 0 -> i++
    :: atomic { i == N -> i = 0 }; break
    od
  :: else -> skip
  fi
}

/* ----- Waking and scheduling ------------------------------------------------ */

/* isle__wake_one: after the fence, nothing to do when no worker parks;
 * else clear the first xsleep found at 1 (CAS). */
inline wake_one() {
  if
  :: nparked == 0 -> skip
  :: else ->
    do
    :: atomic { i < N && xsleep[i] == 1 -> xsleep[i] = 0; i = 0 }; break
    :: atomic { i < N && xsleep[i] == 0 -> i++ }
    :: atomic { i == N -> i = 0 }; break
    od
  fi
}

/* isle__send(rt, w, ..., a): the push (the mailbox in one step), then
 * isle__sched_local or isle__sched_global when it reported was_idle. */
inline send(a, w) {
  atomic {
    msgs[a]++;
    if
    :: where[a] == IDLE -> where[a] = INFLIGHT; was_idle = true
    :: else -> was_idle = false
    fi
  };
  if
  :: atomic { was_idle && w != NONE ->
      /* isle__sched_local: into runnext; a displaced actor to the ring. */
      was_idle = false;
      if
      :: where[A] == RUNNEXT + w -> other = A
      :: where[B] == RUNNEXT + w -> other = B
      :: else -> skip
      fi;
      where[a] = RUNNEXT + w;
      if
      :: other != 0 -> where[other] = RING + w
      :: else -> skip
      fi
    };
    if
    :: atomic { other != 0 -> other = 0 }; wake_one()
    :: else -> skip
    fi
  :: atomic { was_idle && w == NONE ->
      /* isle__sched_global: the push, then wake_one */
      was_idle = false;
      where[a] = GLOBAL
    };
    wake_one()
  :: else -> skip
  fi
}

/* ----- Sources -------------------------------------------------------------- */

/* (a) An outside thread: hold, send, release. */
proctype outside() {
  byte i, other;
  bool was_idle, last;
  atomic { hold(); o_late = (after_h2 > 0) };
  send(A, NONE);
  release();
  sources_done++
}

/* (c) The timer thread: the hold was taken when A's turn armed it. */
proctype timer() {
  byte i, other;
  bool was_idle, last;
end_unarmed:
  timer_armed;
  send(A, NONE);
  release();
  sources_done++
}

/* (b) The I/O callback, on worker IOW: send to A from that worker (into
 * its runnext), then release the connection's hold. */
inline io_callback() {
  io_pending = false;
  send(A, IOW);
  release();
  sources_done++
}

/* ----- Workers -------------------------------------------------------------- */

/* What any_work(false) would see: the global queue and the rings, one
 * step per queue. */
inline look_rings() {
  atomic { work = (where[A] == GLOBAL || where[B] == GLOBAL) };
  do
  :: atomic { !work && k < N ->
      work = (where[A] == RING + k || where[B] == RING + k); k++ }
  :: atomic { (work || k == N) -> k = 0 }; break
  od
}

/* The runnext slots, one step each (any_work(true) adds them). */
inline look_runnexts() {
  do
  :: atomic { !work && k < N ->
      work = (where[A] == RUNNEXT + k || where[B] == RUNNEXT + k); k++ }
  :: atomic { (work || k == N) -> k = 0 }; break
  od
}

/* The decision, at its linearisation point: the run is quiescent. The
 * ghost flags only name the assertions in pan's report. */
#ifdef WITNESS_END
#define WITNESS all_sources_then_end = (sources_done == NSOURCES);            \
  assert(!all_sources_then_end)
#else
#define WITNESS skip
#endif
#define DECIDE                                                                 \
  quiescent_with_work_left = !(ALL_QUIET && HCOUNT(holds) == 0);              \
  assert(!quiescent_with_work_left);                                           \
  WITNESS;                                                                     \
  q = true

/* run_quiescent, after the caller found nothing with parked == N: `q`
 * says whether the run is over. */
inline run_quiescent() {
  q = false;
#ifdef BUG_HOLDS_AFTER_SCAN
  /* The old check: the queues (runnexts included), every worker still
   * parked, then the hold count alone. */
  look_rings();
  look_runnexts();
  if
  :: !work && nparked == N ->
    atomic {
      if
      :: HCOUNT(holds) == 0 -> DECIDE
      :: else -> skip
      fi
    }
  :: else -> skip
  fi
#else
  h1 = holds;
  if
  :: HCOUNT(h1) == 0 ->
    look_rings();
#ifndef BUG_NO_RUNNEXT
    look_runnexts();
#endif
#if defined(NO_PARKED_RECHECK)
    /* H2 last, and no look at nparked. */
    atomic {
      if
      :: !work && holds == h1 -> DECIDE
      :: else -> skip
      fi
    }
#elif defined(H2_THEN_PARKED)
    /* H2, then nparked == N last. A hold taken between the two is the
     * outside thread's own race with the end (o_late), not a fault. */
    if
    :: atomic { !work && holds == h1 -> after_h2++ };
      atomic {
        after_h2--;
        if
        :: nparked == N ->
          if
          :: o_late -> q = true
          :: else -> DECIDE
          fi
        :: else -> skip
        fi
      }
    :: else -> skip
    fi
#else
    /* nparked == N, then H2 last: the decision's linearisation point. */
    if
    :: !work && nparked == N ->
      atomic {
        if
        :: holds == h1 -> DECIDE
        :: else -> skip
        fi
      }
    :: else -> skip
    fi
#endif
  :: else -> skip
  fi;
  h1 = 0
#endif
}

/* One turn of `a` on worker w: one message, what A's first turn does,
 * then try_idle, or requeue and wake_one. */
inline turn(a) {
  atomic { assert(msgs[a] > 0); msgs[a]-- };
  if
  :: a == A && !a_sent ->
    a_sent = true;
#ifndef NO_TIMER
    hold(); /* isle_timer_after: the timer holds the runtime */
    timer_armed = true;
#endif
    send(B, w)
  :: else -> skip
  fi;
  atomic {
    if
    :: msgs[a] == 0 -> where[a] = IDLE
    :: else -> where[a] = RING + w; requeue = true
    fi
  };
  if
  :: atomic { requeue -> requeue = false }; wake_one()
  :: else -> skip
  fi
}

/* A worker may take `a` from its runnext or ring, the global queue or
 * another worker's ring. */
#define TAKEABLE(a)                                                            \
  (where[a] == RUNNEXT + w || where[a] == GLOBAL ||                            \
   (where[a] >= RING && where[a] < RING + N))

/* For the safety checks a worker may park while the global queue holds an
 * actor (its relaxed look at the queue's length was stale); for -DLIVE it
 * takes it instead, as it does once the push is visible to it: without
 * that, a worker could choose to park and unpark for ever next to work
 * it would in fact take, which is not a livelock of the protocol. */
#ifdef LIVE
#define GLOBAL_SEEN_EMPTY (where[A] != GLOBAL && where[B] != GLOBAL)
#else
#define GLOBAL_SEEN_EMPTY true
#endif

proctype worker(byte w) {
  byte i, k, other, h1;
  bool parked, was_idle, last, work, q, requeue;
  bool io_pending = (w == IOW);
#ifdef NO_IO
  io_pending = false;
#endif
  do
  :: done -> break
  :: atomic { !done && TAKEABLE(A) -> where[A] = RUNNING + w };
    turn(A)
  :: atomic { !done && TAKEABLE(B) -> where[B] = RUNNING + w };
    turn(B)
  :: !done && where[A] != RUNNEXT + w && where[B] != RUNNEXT + w &&
     where[A] != RING + w && where[B] != RING + w && GLOBAL_SEEN_EMPTY ->
    /* sched_next found nothing: poll_io (the callback, not parked) ... */
    if
    :: io_pending -> io_callback()
    :: true /* or not this time */
    fi;
    /* ... then, with nothing in hand, worker_park. */
    if
    :: where[A] == RUNNEXT + w || where[B] == RUNNEXT + w -> skip
    :: else ->
      xsleep[w] = 1;
      atomic { nparked++; parked = (nparked == N) };
      look_rings();
      if
      :: atomic { !work && parked -> parked = false }; run_quiescent()
      :: else -> parked = false
      fi;
      if
      :: q ->
        q = false;
        done = true;
        /* isle__wake_all */
        k = 0;
        do
        :: k < N -> xsleep[k] = 0; k++
        :: k == N -> break
        od;
        k = 0
      :: !q && !work ->
        if
        :: done -> skip
        :: else ->
          /* Asleep: futex until xsleep is cleared or done; IOW in
           * uv_run(UV_RUN_ONCE), which also returns after the callback. */
          if
          :: xsleep[w] == 0 || done -> skip
          :: io_pending -> io_callback()
#ifdef SPURIOUS
          :: true /* uv_run returned for another event of its loop */
#endif
          fi
        fi
      :: else -> work = false
      fi;
      xsleep[w] = 0;
      nparked--
    fi
  od
}

/* ----- The run -------------------------------------------------------------- */

init {
  byte w;
  atomic {
#ifndef NO_IO
    holds = HOLD_ONE; /* the connection's, taken before the run */
#else
    sources_done++;
#endif
#ifdef NO_TIMER
    sources_done++;
#endif
#ifndef NO_OUTSIDE
    run outside();
#else
    sources_done++;
#endif
#ifndef NO_TIMER
    run timer();
#endif
    w = 0;
    do
    :: w < N -> run worker(w); w++
    :: w == N -> break
    od
  }
}

#ifdef LIVE
/* Under weak fairness, every run ends. */
ltl run_ends { <> done }
#endif
