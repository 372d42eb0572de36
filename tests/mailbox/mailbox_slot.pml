/* isle — MIT licensed. */
/*
 * A Promela model of one actor slot's mailbox as the actor layer uses it
 * (actor/actor.c: isle__spawn, isle__send, isle__actor_turn, actor_end,
 * isle__actors_end_all; mailbox/mailbox.c: isle__mbox_push with its epoch,
 * isle__mbox_take, isle__mbox_taken, isle__mbox_try_idle, isle__mbox_close
 * and isle__mbox_reopen), checked with spin by tests/models/spin_check.sh
 * (ctest: mailbox_slot_spin*, label spin). mailbox.pml checks the queue
 * itself with more messages per producer; this model adds what a slot
 * reused by successive actors relies on.
 *
 * The run: one slot, occupied by two actors in turn (epochs 1 and 2; a
 * never-used slot starts closed at epoch 0). NPROD senders send NMSG
 * messages each; a message names an epoch whose handle a sender can have
 * (the newest actor's, or the one before: a stale handle), and a refused
 * one may be sent once more, the same message, to the newest. The slot's
 * thread does what the runtime does:
 *   spawn   isle__mbox_reopen(e): empty, open, NOT idle, the count of
 *           refused pushes not yet taken back kept; then init, which may
 *           send the actor a message of its own and may fail or stop it
 *           (the actor ends at once); then try_idle, and if it fails (a
 *           message came during init) the spawner schedules the actor;
 *   turns   scheduled by the push that found the mailbox idle, by the
 *           spawner, or requeued after a failed try_idle: a turn takes up
 *           to BATCH messages, records them taken, then ends the actor
 *           (only right after a message: a receive returned a stop) or
 *           tries to idle, requeueing itself when that fails;
 *   end     isle__mbox_close with a drain (each message still queued goes
 *           to the drain), and the slot is free for the next spawn. Once
 *           the senders are done, an idle actor ends at teardown
 *           (isle__actors_end_all).
 *
 * What spin checks, over every interleaving (each assertion is on a flag
 * named for the property, so that pan's report names it):
 *   - epochs: a push is accepted only while the epoch it names is open
 *     (pushed_to_wrong_epoch) and refused as dead only when it is not
 *     (live_epoch_refused); a message is taken or drained only by the
 *     actor of the epoch it was accepted for (wrong_epoch_delivery);
 *   - nothing lost or duplicated: every accepted message is taken by a
 *     turn or drained by close, once (duplicate_delivery; at the end,
 *     left_in_mailbox); an idle, unscheduled actor never has an accepted
 *     message left behind (stranded); at the end every refused push has
 *     taken its count back (count_not_restored);
 *   - a refused push leaves the message with its sender: it is never
 *     linked and is still the sender's, who may send it again (asserted
 *     on each refusal, and WITNESS=5 shows such a message accepted);
 *   - scheduling: while an epoch is open, exactly one of {the spawner in
 *     init, a scheduling not yet picked up, a running turn} owns the
 *     actor when its mailbox is not idle, and none when it is idle
 *     (two_owners, checked at every change of the head or of an owner):
 *     a push during init never schedules, a push that reports was_idle
 *     finds no owner, the spawner schedules only when its try_idle fails;
 *   - reuse: no push of the previous epoch is between its exchange and its
 *     link when the slot is reopened (reopened_while_linking);
 *   - capacity: a message flagged NOCAP (message 1, with -DCAPACITY=1) is
 *     never refused as full (nocap_refused_full); WITNESS=1 shows it
 *     accepted past the capacity;
 *   - termination: close's wait for the producers it accepted always ends
 *     (a wait never satisfied is an invalid end state).
 *
 * How it maps to the C code (one Promela step per shared access):
 *   count   mb->xcount: bit 7 CLOSED (bit 63), bits 5..6 the epoch (bits
 *           32..62), bits 0..4 the count (bits 0..31), so carries and
 *           borrows between the fields are the C word's.
 *   head    mb->xhead, bit 7 standing for ISLE__MB_IDLE; STUB is mb->stub,
 *           nodes 1..NM the messages, next[i] node i's xnext.
 *   push    isle__mbox_push: the plain look (closed or another epoch:
 *           refused, untouched), the fetch_add with its decision (closed
 *           or another epoch: EDEAD; count >= capacity and not NOCAP:
 *           EFULL), the undo fetch_sub, link_at_head (store next = NIL,
 *           exchange the head, store the old head's link).
 *   reopen  isle__mbox_reopen: its plain stores and its CAS loop are one
 *           step (no other thread reads the queue before the CAS opens
 *           the mailbox, and the loop's effect is one RMW: keep the count,
 *           set the epoch, clear CLOSED). A sender learns the new handle
 *           after it (spawn returns it, or init sends it).
 *   take, try_idle, taken, close  step for step, as in mailbox.pml (close's
 *           spin-wait is the same blocking guard).
 * What is abstracted: memory order (Promela is sequentially consistent;
 * the tsan build checks the orders); payloads and message types; the name
 * registry, timers, monitors and flow control that a real turn and
 * actor_end also deal with (a muted actor is an owner that requeues
 * later); a turn does not send to its own actor.
 *
 * Configurations (spin -D...): the default is 2 senders x 1 message with
 * retries; -DCAPACITY=1 adds a capacity of 1, message 1 flagged NOCAP;
 * -DNMSG=2, -DNPROD=3 with -DNO_RETRY (no second sends) keep the search
 * within a minute. Known-bad variants, which must produce a counterexample:
 *   -DBUG_REOPEN_IDLE         reopen marks the mailbox idle: a send during
 *                             init schedules the actor (two_owners);
 *   -DBUG_NO_EPOCH_RECHECK    the fetch_add's decision ignores the epoch: a
 *                             push that passed the plain look before the
 *                             close lands in the next actor's mailbox
 *                             (pushed_to_wrong_epoch);
 *   -DBUG_REOPEN_CLEARS_COUNT reopen drops the count of refused pushes not
 *                             yet taken back: their undo borrows from the
 *                             epoch (live_epoch_refused or
 *                             count_not_restored).
 * Witnesses, also expected to fail (assertion `witness`), showing that the
 * search reaches the hard cases: -DWITNESS=1 a NOCAP message accepted past
 * the capacity (with -DCAPACITY=1); 2 the second actor takes a message;
 * 3 the spawner's try_idle fails because of a send during init; 4 a reopen
 * keeps a refused push's count; 5 a refused message accepted when sent
 * again.
 * Search: exhaustive and complete (no bitstate or hash compaction; the
 * two larger runs use -DCOLLAPSE, which is lossless), pan -DSAFETY
 * (assertions and invalid end states), a depth limit of 200,000 that
 * spin_check.sh fails on if reached. One CPU: the default 1.24 M states,
 * depth 348, ~1 s; -DCAPACITY=1 1.12 M; -DCAPACITY=1 -DNMSG=2 -DNO_RETRY
 * 7.4 M, ~5 s; -DNMSG=2 -DNO_RETRY 22.6 M, depth 563, ~20 s; -DNPROD=3
 * -DNO_RETRY 15.4 M, ~14 s; each variant and witness fails within 0.5 M.
 */

#ifndef NPROD
#define NPROD 2
#endif
#ifndef NMSG
#define NMSG 1
#endif
#ifndef CAPACITY
#define CAPACITY 0
#endif
#ifndef WITNESS
#define WITNESS 0
#endif
#ifdef NO_RETRY
#define RETRY false
#else
#define RETRY true
#endif
#define NEPOCH 2
#define BATCH 2

#define NSENT (NPROD * NMSG)
#define SELF(e) (NSENT + (e))  /* the message init sends itself */
#define NM (NSENT + NEPOCH)
#define NIL 0
#define STUB (NM + 1)

#define CLOSED 128
#define EPOCH_SHIFT 32 /* stands for 2^5: the epoch is bits 5..6 */
#define EPOCH(c) (((c) >> 5) & 3)
#define COUNT(c) ((c) & 31)
#define IDLE 128
#define NODE(h) ((h) & 127)

/* owner[m] */
#define SENDER 0
#define MAILBOX 1
#define CONSUMER 2

/* ----- The slot's mailbox: never used, closed at epoch 0 ---------------- */

byte next[NM + 2];
byte head = STUB | IDLE;
byte tail = STUB;
byte count = CLOSED;
byte untaken = 0;

/* ----- Ghost state ------------------------------------------------------- */

byte cur = 0;          /* the newest actor's epoch: handles up to it exist */
bool open = false;     /* from reopen's CAS to close's fetch_or */
bool live = false;     /* from reopen to the end of close */
bool initing = false;  /* the spawner owns the actor (init) */
byte tokens = 0;       /* schedulings not yet picked up */
bool running = false;  /* a turn (or the close it ends with) owns it */
byte owner[NM + 1];
byte tgt[NM + 1];      /* the epoch a message was accepted for */
bool given_up[NM + 1]; /* refused, and the sender kept it */
byte linking = 0;      /* accepted pushes between exchange and link */
byte linked_n = 0;     /* messages swapped into the list, all epochs */
byte delivered_n = 0;  /* messages taken or drained, all epochs */
byte producers_done = 0;

/* Named only for pan's report: each is set just before the assertion
 * that it is false, so a failure names the property. */
bool two_owners, wrong_epoch_delivery, duplicate_delivery;
bool pushed_to_wrong_epoch, live_epoch_refused, nocap_refused_full;
bool stranded, reopened_while_linking, count_not_restored, left_in_mailbox;
bool witness;

#define OWNERS (initing + tokens + running)
/* While an epoch is open: one owner when not idle, none when idle. */
#define INV                                                                    \
  two_owners = live && OWNERS != ((head & IDLE) -> 0 : 1);                     \
  assert(!two_owners)

#define WITNESS_IF(n, cond)                                                    \
  witness = (WITNESS == n && (cond));                                          \
  assert(!witness)

#define OK 0
#define DEAD 1 /* refused by the fetch_add's decision: take the 1 back */
#define FULL 2
#define DEAD_LOOK 3 /* refused by the plain look: the count untouched */

/* ----- Push: isle__mbox_push(mb, m, e, &was_idle) ----------------------- */

/* The epoch check of a refusal: the epoch named is not the open one. */
#define REFUSED_DEAD(e)                                                        \
  live_epoch_refused = (open && (e) == cur);                                   \
  assert(!live_epoch_refused)

inline push(m, e, res) {
  atomic {
    if
    :: (count & CLOSED) || EPOCH(count) != e -> REFUSED_DEAD(e); res = DEAD_LOOK
    :: else -> res = OK
    fi
  };
  if
  :: res == OK ->
    /* fetch_add(count, 1) and the decision it implies */
    atomic {
      before = count;
      count++;
      if
#ifdef BUG_NO_EPOCH_RECHECK
      :: (before & CLOSED) -> REFUSED_DEAD(e); res = DEAD
#else
      :: (before & CLOSED) || EPOCH(before) != e -> REFUSED_DEAD(e); res = DEAD
#endif
      :: else ->
        if
        :: CAPACITY > 0 && COUNT(before) >= CAPACITY && m != 1 -> res = FULL
        :: else ->
          pushed_to_wrong_epoch = (!open || e != cur);
          assert(!pushed_to_wrong_epoch);
          WITNESS_IF(1, CAPACITY > 0 && COUNT(before) >= CAPACITY);
          WITNESS_IF(5, retried);
          owner[m] = MAILBOX;
          tgt[m] = e;
          linking++
        fi
      fi;
      nocap_refused_full = (res == FULL && m == 1);
      assert(!nocap_refused_full);
      before = 0
    };
    if
    :: res != OK -> count-- /* the undo: fetch_sub(count, 1) */
    :: else ->
      /* link_at_head */
      next[m] = NIL;
      atomic {
        prev = head;
        head = m;
        linked_n++;
        if
        :: (prev & IDLE) ->
          /* was_idle: this sender schedules the actor */
          two_owners = (OWNERS != 0);
          assert(!two_owners);
          tokens++
        :: else -> skip
        fi;
        INV
      };
      atomic { next[NODE(prev)] = m; linking--; prev = 0 }
    fi
  :: else -> skip
  fi
}

/* ----- Senders ---------------------------------------------------------- */

proctype producer(byte p) {
  byte s = 0;
  byte m, e, res, before, prev;
  bool retried;
  do
  :: s < NMSG ->
    m = p * NMSG + s + 1;
    /* A handle the sender can have: the newest actor's (given out by
     * its spawn or its init, after the reopen), or the one before. */
    atomic {
      cur > 0 ->
      if
      :: e = cur
      :: cur > 1 -> e = cur - 1
      fi
    };
again:
    push(m, e, res);
    if
    :: res != OK && !retried && RETRY ->
      /* Still the sender's: the very same message, to the newest. */
      atomic { assert(owner[m] == SENDER); retried = true; e = cur };
      goto again
    :: res != OK -> d_step { assert(owner[m] == SENDER); given_up[m] = true }
    :: res == OK -> skip
    fi;
    d_step { s++; m = 0; e = 0; res = 0 }
  :: else -> break
  od;
  producers_done++
}

/* ----- The slot's thread: spawn, turns, end ----------------------------- */

inline deliver(m, e) {
  d_step {
    duplicate_delivery = (owner[m] != MAILBOX);
    assert(!duplicate_delivery);
    wrong_epoch_delivery = (tgt[m] != e);
    assert(!wrong_epoch_delivery);
    owner[m] = CONSUMER;
    delivered_n++
  }
}

/* isle__mbox_take: as in mailbox.pml. */
inline take_one(got) {
  atomic { got = NIL; t = tail; nx = next[t] };
  if
  :: t == STUB && nx == NIL -> skip /* empty */
  :: else ->
    if
    :: t == STUB -> atomic { tail = nx; t = nx; nx = next[t] }
    :: else -> skip
    fi;
    if
    :: nx != NIL -> d_step { tail = nx; got = t }
    :: else ->
      if
      :: t != head -> skip /* the window: the link is coming */
      :: else ->
        /* link_at_head(mb, &mb->stub) */
        next[STUB] = NIL;
        atomic {
          prev = head;
          head = STUB;
          assert(!(prev & IDLE)); /* we are consuming */
          INV
        };
        next[NODE(prev)] = STUB;
        nx = next[t];
        if
        :: nx != NIL -> d_step { tail = nx; got = t }
        :: else -> skip /* a producer slipped in */
        fi
      fi
    fi
  fi;
  d_step { t = 0; nx = 0; prev = 0 }
}

/* isle__mbox_try_idle, and what the caller does when it fails: the
 * spawner schedules the actor (isle__spawn), a turn requeues it
 * (isle__actor_turn). Either way the owner hands over in one step. */
inline try_idle_or_schedule() {
  now = false;
  if
  :: tail == STUB && next[STUB] == NIL ->
    atomic {
      if
      :: head == STUB ->
        head = STUB | IDLE;
        now = true;
        stranded = (delivered_n != linked_n);
        assert(!stranded);
        initing = false;
        running = false
      :: else -> skip
      fi;
      INV
    }
  :: else -> skip
  fi;
  if
  :: !now ->
    atomic {
      WITNESS_IF(3, initing);
      initing = false;
      running = false;
      tokens++;
      INV
    }
  :: else -> now = false
  fi
}

/* isle__mbox_taken */
inline taken(n) {
  if
  :: CAPACITY > 0 -> count = count - n
  :: else -> untaken = untaken + n
  fi
}

/* isle__mbox_reopen(mb, e, CAPACITY), after spawn stored the generation. */
inline reopen(e) {
  d_step {
    reopened_while_linking = (linking != 0);
    assert(!reopened_while_linking);
    next[STUB] = NIL;
    tail = STUB;
#ifdef BUG_REOPEN_IDLE
    head = STUB | IDLE;
#else
    head = STUB; /* not idle: the spawner owns the actor until try_idle */
#endif
    untaken = 0;
    WITNESS_IF(4, COUNT(count) > 0);
#ifdef BUG_REOPEN_CLEARS_COUNT
    count = e << 5;
#else
    count = (e << 5) | COUNT(count); /* keep the count, clear CLOSED */
#endif
    cur = e;
    open = true;
    live = true;
    initing = true
  }
}

/* isle__mbox_close with a drain, by the actor's owner (actor_end). */
inline close(e) {
  count = count - untaken; /* untaken_flush */
  untaken = 0;
  atomic {
    before = count;
    count = count | CLOSED;
    open = false;
    assert(!(before & CLOSED));
    before = 0
  };
  do
  :: take_one(got);
    if
    :: got != NIL -> count--; deliver(got, e); got = NIL /* drained */
    :: else ->
      if
      :: COUNT(count) == 0 -> break
      :: else ->
        /* spin-wait, abstracted as in mailbox.pml */
        (next[tail] != NIL || COUNT(count) == 0)
      fi
    fi
  od;
  atomic { live = false; initing = false; running = false }
}

proctype slot() {
  byte e = 0;
  byte t, nx, prev, got, k, before, res;
  bool now, stop, retried, teardown;
  do
  :: e < NEPOCH ->
    e++;
    /* isle__spawn: the generation, then reopen. */
    reopen(e);
    /* init may send the actor a message: queued, never scheduling. */
    if
    :: push(SELF(e), e, res);
      assert(res == OK || res == FULL);
      if
      :: res != OK -> given_up[SELF(e)] = true
      :: else -> skip
      fi;
      res = 0
    :: skip
    fi;
    if
    :: true -> goto ending /* init failed, or stopped the actor */
    :: true -> try_idle_or_schedule()
    fi;
    /* The actor's turns. */
    do
    :: atomic { tokens > 0 -> tokens--; running = true };
      k = 0;
      do
      :: k < BATCH ->
        take_one(got);
        if
        :: got != NIL ->
          deliver(got, e);
          WITNESS_IF(2, e == 2);
          d_step { k++; got = NIL };
          if
          :: stop = true; break /* the receive ended the actor */
          :: skip
          fi
        :: else -> break
        fi
      :: else -> break
      od;
      taken(k);
      k = 0;
      if
      :: stop -> stop = false; goto ending
      :: else -> try_idle_or_schedule()
      fi
    :: atomic { producers_done == NPROD && OWNERS == 0 ->
        stranded = (delivered_n != linked_n);
        assert(!stranded);
        teardown = true
      };
      /* isle__actors_end_all: the idle actor ends with the runtime */
      running = true;
      goto ending
    od;
ending:
    close(e);
    if
    :: teardown -> break
    :: else -> skip
    fi
  :: else -> break
  od
}

/* ----- The run and the final checks ------------------------------------- */

init {
  byte i;
  atomic {
    i = 0;
    do
    :: i < NPROD -> run producer(i); i++
    :: else -> break
    od;
    run slot()
  };
  (_nr_pr == 1);
  d_step {
    assert(count & CLOSED); /* the last actor ended */
    count_not_restored = (COUNT(count) != 0 || untaken != 0);
    assert(!count_not_restored); /* every refused push took its 1 back */
    assert(linking == 0 && delivered_n == linked_n);
    i = 1;
    do
    :: i <= NM ->
      left_in_mailbox = (owner[i] == MAILBOX);
      assert(!left_in_mailbox); /* taken or drained */
      assert(i > NSENT || (owner[i] == SENDER) == given_up[i]);
      i++
    :: else -> break
    od
  }
}
