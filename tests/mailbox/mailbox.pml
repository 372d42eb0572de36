/* isle — MIT licensed. */
/*
 * A Promela model of the mailbox's push, pop and close (mailbox/mailbox.c:
 * isle__mbox_push, isle__mbox_take, isle__mbox_taken, isle__mbox_try_idle,
 * isle__mbox_close and the public pop / pop_batch over them), checked with
 * spin by tests/models/spin_check.sh (ctest: mailbox_spin*).
 *
 * The run: NPROD producers push NMSG messages each; one consumer behaves
 * as the runtime will: it is scheduled by the push that reports was_empty
 * (the exchange that found IDLE), then pops, one at a time or in batches
 * of up to BATCH, until a pop reports now_empty (its CAS set IDLE), and
 * waits to be scheduled again. At any point of a turn, or while idle, it
 * may close the mailbox instead (an actor that stops); once the producers
 * are done and it is idle and unscheduled, it closes.
 *
 * What spin checks, over every interleaving:
 *   - no message lost: every accepted push is popped or drained exactly
 *     once, and no refused one ever (assertions in init, at the end);
 *   - no duplicate, nothing delivered that was refused (deliver);
 *   - per-producer FIFO: a producer's messages come out in its order, none
 *     skipped (deliver);
 *   - scheduling: a push reports was_empty only while the consumer is
 *     neither running nor already scheduled (never two consumers); a pop
 *     reports now_empty only when every message swapped into the list has
 *     been delivered; was_empty and now_empty alternate, matching the
 *     IDLE bit (INV); and when the producers are done and the consumer is
 *     idle and unscheduled, nothing is left undelivered (no lost wakeup);
 *   - termination: close's drain never waits for ever (a wait that is never
 *     satisfied leaves the consumer blocked, and pan reports an invalid end
 *     state), and at the end the count is exactly CLOSED: every refused
 *     push took its increment back.
 *
 * How it maps to the C code (one Promela step per shared access, so every
 * interleaving of them is explored; consumer-local work rides along):
 *   count        mb->xcount; bit 7 of a byte stands for CLOSED (bit 63);
 *                the epoch is always 0 (the public API's) and left out.
 *   head         mb->xhead; bit 7 stands for ISLE__MB_IDLE (bit 0); node
 *                STUB is mb->stub, nodes 1..NM the messages, NIL is NULL;
 *                next[i] is node i's xnext.
 *   tail         mb->tail (consumer only).
 *   producer()   isle__mbox_push: the plain load that refuses a closed
 *                mailbox untouched, the fetch_add with the decision it
 *                implies (CLOSED -> ISLE_EDEAD, COUNT >= CAPACITY ->
 *                ISLE_EFULL, else accepted), the undo fetch_sub of a
 *                refused push, and link_at_head: the store next[m] = NIL,
 *                the exchange on head (was_empty = the IDLE bit read), the
 *                store to the previous node's link.
 *   take_one()   isle__mbox_take, step for step: the load of tail->xnext,
 *                the stub skip, the window check (tail != head -> nothing
 *                now), the stub re-push through link_at_head and the
 *                reload of tail->xnext.
 *   try_idle()   isle__mbox_try_idle: tail == stub, the load of
 *                stub.xnext, the CAS of head from STUB to STUB|IDLE.
 *   pop_one()    isle_mailbox_pop_local: take, taken(1) if a message,
 *                try_idle.
 *   pop_batch()  isle_mailbox_pop_batch_local(max = BATCH): up to BATCH
 *                takes, one taken(k), then try_idle.
 *   close()      isle__mbox_close: fetch_or(CLOSED), then take and free
 *                (taken(1) each) until a take finds nothing and the count
 *                reads 0.
 *
 * What is abstracted:
 *   - Memory order: Promela is sequentially consistent, so this checks the
 *     algorithm, not the C11 orders; the tsan build of the tests checks
 *     those.
 *   - close's spin-wait (pause, then sched_yield) is a blocking guard. After
 *     a take that finds nothing, tail sits at a node whose link is NIL, and
 *     a retry can only find something once that link is stored; the count
 *     check can only end the loop once the count reads 0. So close waits
 *     for (next[tail] != NIL || COUNT(count) == 0) and then retries; the
 *     iterations it skips would change nothing. A livelock in which
 *     endless refused pushes keep the count above 0 is outside the model
 *     (producers here push a bounded number of messages).
 *   - A pop that finds nothing while the consumer is running (a producer in
 *     its window) is simply repeated, as the runtime will re-run the actor.
 *   - Producers do not retry a refused push; with CAPACITY > 0 a refused
 *     message is not sent and FIFO is checked as "increasing".
 *   - Payloads, types, epochs and isle__mbox_reopen, the heap (a drained
 *     message counts as delivered, which is what freeing it needs) and
 *     isle_mailbox_free are left out.
 *
 * Configurations (spin -D...): the default is 2 producers x 2 messages;
 * -DTHREE is 3 producers x 1 message; -DCAPACITY=k adds a capacity.
 * tests/mailbox/CMakeLists.txt checks the default, -DTHREE and -DCAPACITY=1.
 */

#ifdef THREE
#define NPROD 3
#define NMSG 1
#else
#define NPROD 2
#define NMSG 2
#endif
#ifndef CAPACITY
#define CAPACITY 0
#endif
#define BATCH 2

#define NM (NPROD * NMSG)
#define NIL 0
#define STUB (NM + 1)
#define CLOSED 128
#define COUNT(c) ((c) & 127)
#define IDLE 128
#define NODE(h) ((h) & 127)

/* status[m] */
#define UNSENT 0
#define ACCEPTED 1
#define REFUSED_DEAD 2
#define REFUSED_FULL 3

/* ----- The mailbox (isle__mbox_init: empty, open, idle) ---------------- */

byte next[NM + 2]; /* next[0] unused (NIL) */
byte head = STUB | IDLE;
byte tail = STUB;
byte count = 0;

/* ----- Ghost state for the properties ----------------------------------- */

byte status[NM + 1];
byte delivered[NM + 1];
byte expected[NPROD]; /* per producer: the lowest seq it may deliver next */
byte linked_n = 0;    /* messages swapped into the list */
byte delivered_n = 0; /* messages popped or drained */
byte was_empty_n = 0; /* pushes that read IDLE */
byte now_empty_n = 0; /* CASes that set IDLE */
byte tokens = 0;      /* schedulings not yet picked up by the consumer */
bool running = false; /* the consumer is in a turn */
byte producers_done = 0;

#define PRODUCER_OF(m) (((m) - 1) / NMSG)
#define SEQ_OF(m) (((m) - 1) % NMSG)

/* was_empty and now_empty alternate, in step with the IDLE bit. */
#define INV                                                                    \
  assert(was_empty_n == now_empty_n + ((head & IDLE) -> 0 : 1))

inline deliver(m) {
  d_step {
    assert(m >= 1 && m <= NM);
    assert(status[m] == ACCEPTED);
    assert(delivered[m] == 0);
    delivered[m] = 1;
    delivered_n++;
#if CAPACITY == 0
    assert(SEQ_OF(m) == expected[PRODUCER_OF(m)]);
#else
    assert(SEQ_OF(m) >= expected[PRODUCER_OF(m)]);
#endif
    expected[PRODUCER_OF(m)] = SEQ_OF(m) + 1
  }
}

/* ----- Producers: isle__mbox_push --------------------------------------- */

proctype producer(byte p) {
  byte s = 0;
  byte m, before, prev;
  do
  :: s < NMSG ->
    m = p * NMSG + s + 1;
    /* The plain look before the fetch_add: closed -> refuse untouched. */
    if
    :: (count & CLOSED) -> status[m] = REFUSED_DEAD
    :: else ->
      /* fetch_add(count, 1), and the decision it implies */
      atomic {
        before = count;
        count++;
        if
        :: (before & CLOSED) -> status[m] = REFUSED_DEAD
        :: !(before & CLOSED) && CAPACITY > 0 && COUNT(before) >= CAPACITY ->
          status[m] = REFUSED_FULL
        :: else -> status[m] = ACCEPTED
        fi;
        before = 0
      }
      if
      :: status[m] != ACCEPTED ->
        count-- /* the undo: fetch_sub(count, 1) */
      :: else ->
        /* link_at_head(mb, &msg->link) */
        next[m] = NIL;
        atomic {
          prev = head;
          head = m;
          linked_n++;
          if
          :: (prev & IDLE) ->
            /* was_empty: this caller schedules the consumer */
            assert(!running && tokens == 0);
            was_empty_n++;
            tokens++
          :: else -> skip
          fi;
          INV
        };
        next[NODE(prev)] = m
      fi;
    fi;
    d_step { s++; prev = 0; m = 0 }
  :: else -> break
  od;
  producers_done++
}

/* ----- Consumer --------------------------------------------------------- */

/* isle__mbox_take: the oldest linked message, detached, in `got` (NIL:
 * none now). */
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

/* isle__mbox_try_idle: `now` is whether the CAS set IDLE (now_empty). */
inline try_idle(now) {
  now = false;
  if
  :: tail != STUB -> skip /* a message waits at the tail */
  :: else ->
    if
    :: next[STUB] != NIL -> skip /* one is linked behind the stub */
    :: else ->
      atomic {
        if
        :: head == STUB ->
          head = STUB | IDLE;
          now = true;
          now_empty_n++;
          /* Idle only when everything swapped in has been delivered. */
          assert(delivered_n == linked_n);
          running = false
        :: else -> skip /* a producer swapped the head: run again */
        fi;
        INV
      }
    fi
  fi
}

/* isle__mbox_taken: at once with a capacity, deferred (into `untaken`,
 * subtracted by close) without one. The C code also flushes at 2^24
 * deferred messages, a bound the model never reaches. */
inline taken(n) {
  if
  :: CAPACITY > 0 -> count = count - n
  :: else -> untaken = untaken + n
  fi
}

proctype consumer() {
  byte t, nx, prev, got, k, before, untaken;
  bool now;
  do
  :: atomic { tokens > 0 -> tokens--; running = true };
    /* One turn: pop until a pop reports now_empty, or stop. */
    do
    :: /* isle_mailbox_pop_local */
      take_one(got);
      if
      :: got != NIL -> deliver(got); taken(1); got = NIL
      :: else -> skip
      fi;
      try_idle(now);
      if
      :: now -> break
      :: else -> skip
      fi
    :: /* isle_mailbox_pop_batch_local(max = BATCH) */
      k = 0;
      do
      :: k < BATCH ->
        take_one(got);
        if
        :: got != NIL -> deliver(got); d_step { k++; got = NIL }
        :: else -> break
        fi
      :: else -> break
      od;
      if
      :: k > 0 -> taken(k)
      :: else -> skip
      fi;
      k = 0;
      try_idle(now);
      if
      :: now -> break
      :: else -> skip
      fi
    :: goto closing /* the actor stops itself mid-turn */
    od;
    now = false
  :: !running -> goto closing /* closed while idle */
  :: atomic {
      producers_done == NPROD && tokens == 0 && !running ->
      /* Quiescent: no message may be stranded in an idle mailbox. */
      assert(delivered_n == linked_n)
    };
    break
  od;
closing:
  /* isle__mbox_close: first the deferred subtraction, then the bit */
  count = count - untaken;
  untaken = 0;
  atomic {
    before = count;
    count = count | CLOSED;
    assert(!(before & CLOSED));
    before = 0
  };
  do
  :: take_one(got);
    if
    :: got != NIL -> deliver(got); count--; got = NIL /* free, taken(1) */
    :: else ->
      if
      :: COUNT(count) == 0 -> break
      :: else ->
        /* spin-wait, abstracted: until a retry can change anything */
        (next[tail] != NIL || COUNT(count) == 0)
      fi
    fi
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
    run consumer()
  };
  (_nr_pr == 1); /* every producer and the consumer have ended */
  d_step {
    assert(count == CLOSED); /* every refused push took its 1 back */
    INV;
    i = 1;
    do
    :: i <= NM ->
      assert(status[i] != UNSENT);
      assert(delivered[i] == (status[i] == ACCEPTED -> 1 : 0));
      i++
    :: else -> break
    od
  }
}
