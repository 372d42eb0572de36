/* isle — MIT licensed. */
/*
 * I/O as actor messages: TCP on libuv loops, run by the workers
 * themselves (ISLE_IO_WORKERS, the default: each worker polls its own
 * connections between turns and sleeps in epoll) or by one "io" thread
 * (ISLE_IO_THREAD); docs/io.md compares the two with figures. Listeners
 * and timers live on the io thread's loop. Nothing of this exists until
 * a runtime first uses it (a timer, a listener, isle_io_config): a
 * program of actors alone has no loop and no io thread.
 *
 * A listener hands each new connection to an acceptor actor
 * (ISLE_MSG_TCP_ACCEPT); the acceptor gives it an owner actor with
 * isle_tcp_start, which then receives the connection's events:
 *   ISLE_MSG_TCP_DATA     bytes read (isle_tcp_data), at most read_size
 *   ISLE_MSG_TCP_EOF      the peer finished sending, or isle_io_shutdown
 *                         asks the owner to finish up
 *   ISLE_MSG_TCP_DRAINED  the write backlog fell to half of max_output
 *                         after a write was refused with ISLE_EFULL
 *   ISLE_MSG_TCP_CLOSED   the connection is gone (isle_tcp_close, a read
 *                         or write error, the idle timeout, shutdown);
 *                         the last event, with a reason
 * Every event but DATA carries an isle_tcp_event_t (isle_tcp_event).
 *
 * Ownership. Received bytes are read straight into a message the owner
 * then owns like any other (no copy after the read). isle_tcp_write takes
 * a message whose payload is the bytes to write: on success the runtime
 * owns it and frees it (back to the heap it came from) when the write has
 * completed; on failure the caller keeps it.
 *
 * Limits (isle_tcp_opts_t): connections per listener (beyond it new ones
 * are closed at once, counted in tcp_refused), bytes buffered for output
 * per connection (beyond it writes fail with ISLE_EFULL: the owner stops
 * reading or closes), bytes per read, an idle timeout. A slow owner does
 * not make the runtime buffer without bound: when its mailbox is full
 * (give owner types a mailbox_capacity), reading from that connection
 * pauses until the owner catches up.
 *
 * A connection whose owner ends is closed by the next event that cannot
 * be delivered; an owner should close its connection in finalize.
 *
 * Threads: every function here from any thread (inside actors too).
 */
#ifndef ISLE_IO_H
#define ISLE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isle/actor.h"
#include "isle/api.h"
#include "isle/lifecycle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Handles of connections and listeners; 0 is none. Like actor handles,
 * safe to use after the connection is gone (ISLE_EDEAD). */
typedef uint64_t isle_conn_t;
typedef uint64_t isle_listener_t;

#define ISLE_MSG_TCP_ACCEPT (ISLE_MSG_RESERVED + 0x10)
#define ISLE_MSG_TCP_DATA (ISLE_MSG_RESERVED + 0x11)
#define ISLE_MSG_TCP_EOF (ISLE_MSG_RESERVED + 0x12)
#define ISLE_MSG_TCP_DRAINED (ISLE_MSG_RESERVED + 0x13)
#define ISLE_MSG_TCP_CLOSED (ISLE_MSG_RESERVED + 0x14)

typedef struct isle_tcp_event_s {
  isle_conn_t conn;
  isle_listener_t listener;
  int reason; /* CLOSED: 0 (closed by isle_tcp_close), ISLE_EIO (error),
                 ISLE_ESHUTDOWN (idle timeout, shutdown); else 0 */
} isle_tcp_event_t;

typedef struct isle_tcp_opts_s {
  const char *host;   /* address to bind; NULL: "127.0.0.1" */
  uint16_t port;      /* 0: any free port (see *port_out) */
  int backlog;        /* 0: 511 */
  uint32_t max_conns; /* open at once; 0: 10,000 */
  size_t max_output;  /* bytes queued for writing per connection; 0: 1 MiB */
  size_t read_size;   /* bytes per read (and DATA message); 0: 16 KiB */
  uint32_t idle_ms;   /* close after this long without input; 0: never */
  uint64_t reserved_[10]; /* zero: room to grow (docs/guide.md, ABI) */
} isle_tcp_opts_t;

typedef enum isle_io_mode_e {
  ISLE_IO_DEFAULT = 0, /* ISLE_IO_WORKERS */
  ISLE_IO_WORKERS,     /* each worker runs a libuv loop for its connections */
  ISLE_IO_THREAD,      /* one dedicated io thread runs every connection */
} isle_io_mode_t;

typedef struct isle_io_config_s {
  isle_io_mode_t mode; /* where connections run; docs/io.md has figures */
  uint32_t reserved32_;
  uint64_t reserved_[7]; /* zero: room to grow (docs/guide.md, ABI) */
} isle_io_config_t;

typedef struct isle_io_stats_s {
  isle_io_mode_t mode;     /* ISLE_IO_DEFAULT while I/O was never used */
  uint64_t timers_fired;   /* timer messages delivered */
  uint64_t timers_dropped; /* timers whose target was gone or full, or
                              that never fired (runtime freed) */
  uint64_t tcp_accepted;   /* connections accepted */
  uint64_t tcp_refused;    /* ... closed at once: over max_conns */
  uint64_t tcp_open;       /* open now */
  uint64_t reserved_[10];  /* zero: room to grow (docs/guide.md, ABI) */
} isle_io_stats_t;

/* Fills *cfg with the defaults (all zero). */
ISLE_API void isle_io_config_init(isle_io_config_t *cfg);

/* Sets up I/O for `rt` with `cfg` (NULL: defaults) before its first use;
 * without this call the first timer or listener sets it up with the
 * defaults. 0; ISLE_ESTATE when I/O is set up already in another mode
 * (the same mode again is 0), or from a finalize that isle_runtime_free
 * runs (as the first timer or listener there: the runtime is going);
 * ISLE_EINVAL (NULL rt, bad mode); ISLE_ENOMEM. Any thread, also while
 * the runtime runs. */
ISLE_API int isle_io_config(isle_runtime_t *rt, const isle_io_config_t *cfg);

/* Copies the I/O and timer counters (zeros while I/O was never used). 0,
 * or ISLE_EINVAL for NULL. Any thread. */
ISLE_API int isle_io_stats(isle_runtime_t *rt, isle_io_stats_t *out);

/* Listens; new connections go to `acceptor` as ISLE_MSG_TCP_ACCEPT. An
 * open listener keeps the runtime from being quiescent. The listener's
 * handle goes to *out and its port to *port_out (both may be NULL).
 * Returns 0, ISLE_EINVAL (bad options or handle), ISLE_EIO (bind or listen
 * failed: address in use, ...), ISLE_ENOMEM. Waits for the io thread. */
ISLE_API int isle_tcp_listen(isle_runtime_t *rt, const isle_tcp_opts_t *opts,
                             isle_ref_t acceptor, isle_listener_t *out,
                             uint16_t *port_out);

/* Stops listening (open connections stay). 0, ISLE_EDEAD (not open). */
ISLE_API int isle_tcp_unlisten(isle_runtime_t *rt, isle_listener_t listener);

/* Gives an accepted connection its owner and starts reading. 0,
 * ISLE_EDEAD (gone), ISLE_ESTATE (started already), ISLE_EINVAL. */
ISLE_API int isle_tcp_start(isle_runtime_t *rt, isle_conn_t conn,
                            isle_ref_t owner);

/* Writes the payload of `msg` (isle_msg_size bytes; for a received
 * ISLE_MSG_TCP_DATA message, its bytes: an echo needs no copy). 0: the io
 * thread
 * owns `msg`; ISLE_EFULL: more than max_output would be queued (an
 * ISLE_MSG_TCP_DRAINED follows when half of it is written); ISLE_EDEAD:
 * closed or closing; ISLE_EINVAL. On error `msg` stays the caller's. */
ISLE_API int isle_tcp_write(isle_runtime_t *rt, isle_conn_t conn,
                            isle_msg_t *msg);

/* Closes: `graceful` writes what is queued first and then sends FIN;
 * otherwise queued output is dropped, also what the kernel still holds,
 * and the peer then gets a reset (RST; FIN when nothing was queued). The
 * owner gets ISLE_MSG_TCP_CLOSED.
 * A graceful close is bounded in time: if the peer has not taken the
 * output within the listener's idle_ms (10 s when idle_ms is 0), or by an
 * isle_io_shutdown deadline, or at isle_runtime_free, the connection is
 * reset and CLOSED says ISLE_ESHUTDOWN. 0, ISLE_EDEAD (closed or closing
 * already, or it ended while the call ran), ISLE_EINVAL, ISLE_ENOMEM. */
ISLE_API int isle_tcp_close(isle_runtime_t *rt, isle_conn_t conn,
                            bool graceful);

/* Clean shutdown (say on SIGTERM, from a thread, not the handler): closes
 * every listener, tells every connection's owner ISLE_MSG_TCP_EOF (stop
 * reading; finish, then close; after any DATA still on its way), and
 * closes every connection still open after deadline_ms, graceful closes in
 * progress included. The runtime then becomes quiescent once the actors
 * are idle. 0 or ISLE_ENOMEM. */
ISLE_API int isle_io_shutdown(isle_runtime_t *rt, uint32_t deadline_ms);

/* The bytes of an ISLE_MSG_TCP_DATA message (NULL if it is not one);
 * *len and *conn (may be NULL) get their length and connection. */
ISLE_API char *isle_tcp_data(isle_msg_t *msg, size_t *len, isle_conn_t *conn);

/* The event of any other ISLE_MSG_TCP_* message (NULL if not one). */
ISLE_API const isle_tcp_event_t *isle_tcp_event(isle_msg_t *msg);

#ifdef __cplusplus
}
#endif
#endif /* ISLE_IO_H */
