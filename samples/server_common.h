/* isle — MIT licensed. */
/*
 * What the sample servers (echo, http, kv) share: their options, an
 * acceptor actor that spawns one connection actor per connection, and a
 * main that listens, runs until SIGINT or SIGTERM, shuts down cleanly and
 * prints the runtime's figures. Public API only.
 */
#ifndef ISLE_SAMPLES_SERVER_COMMON_H
#define ISLE_SAMPLES_SERVER_COMMON_H

#include <isle.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h> /* setrlimit: a descriptor per connection */

typedef struct server_opts_s {
  isle_tcp_opts_t tcp;
  unsigned workers;
  isle_io_mode_t io_mode;
  uint32_t shutdown_ms;
} server_opts_t;

static inline void server_usage(const char *name) {
  fprintf(stderr,
          "usage: %s [--port N] [--host ADDR] [--workers N] [--max-conns N]\n"
          "       [--max-output BYTES] [--read-size BYTES] [--idle-ms MS]\n"
          "       [--io workers|thread]\n",
          name);
}

/* Parses the common options; returns 0, or prints usage and returns -1. */
static inline int server_parse(int argc, char **argv, const char *name,
                               uint16_t port, server_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->tcp.port = port;
  o->tcp.idle_ms = 60000;
  o->shutdown_ms = 2000;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) {
      server_usage(name);
      return -1;
    }
    const char *v = argv[++i];
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    bool num = *v && !*end;
    if (strcmp(a, "--host") == 0)
      o->tcp.host = v;
    else if (strcmp(a, "--port") == 0 && num && n < 65536)
      o->tcp.port = (uint16_t)n;
    else if (strcmp(a, "--workers") == 0 && num)
      o->workers = (unsigned)n;
    else if (strcmp(a, "--max-conns") == 0 && num)
      o->tcp.max_conns = (uint32_t)n;
    else if (strcmp(a, "--max-output") == 0 && num)
      o->tcp.max_output = (size_t)n;
    else if (strcmp(a, "--read-size") == 0 && num)
      o->tcp.read_size = (size_t)n;
    else if (strcmp(a, "--idle-ms") == 0 && num)
      o->tcp.idle_ms = (uint32_t)n;
    else if (strcmp(a, "--io") == 0 && strcmp(v, "workers") == 0)
      o->io_mode = ISLE_IO_WORKERS;
    else if (strcmp(a, "--io") == 0 && strcmp(v, "thread") == 0)
      o->io_mode = ISLE_IO_THREAD;
    else {
      server_usage(name);
      return -1;
    }
  }
  return 0;
}

/* ----- Helpers for connection actors ----------------------------------- */

/* Writes len bytes to `conn` in a message of their own. 0, or the error
 * (ISLE_EFULL: the peer does not read; ISLE_ENOMEM; ISLE_EDEAD): the
 * caller then closes. */
static inline int server_write(isle_runtime_t *rt, isle_conn_t conn,
                               const void *bytes, size_t len) {
  isle_msg_t *m = isle_msg_new(0, len);
  if (!m)
    return ISLE_ENOMEM;
  memcpy(isle_msg_data(m), bytes, len);
  int rc = isle_tcp_write(rt, conn, m);
  if (rc)
    isle_msg_free(m); /* refused: still ours */
  return rc;
}

/* Every thread heap's figures (the live view of docs/profiling.md), in a
 * block to isle_free; *n gets how many. NULL without memory. */
static inline isle_heap_stats_t *server_heap_stats(size_t *n) {
  size_t room = isle_heap_stats_all(NULL, 0) + 4; /* threads may come */
  isle_heap_stats_t *hs = isle_malloc(room * sizeof *hs);
  if (!hs)
    return NULL;
  size_t got = isle_heap_stats_all(hs, room);
  *n = got < room ? got : room;
  return hs;
}

/* The heaps' live and held bytes and live objects, summed over every
 * thread heap (a remote free still on its way counts as live), leaving
 * out the block these figures were read into. False without memory. */
static inline bool server_heap_totals(uint64_t *live_bytes,
                                      uint64_t *live_objects,
                                      uint64_t *held_bytes) {
  size_t n;
  isle_heap_stats_t *hs = server_heap_stats(&n);
  if (!hs)
    return false;
  uint64_t bytes = 0, objects = 0, held = 0;
  for (size_t i = 0; i < n; i++) {
    bytes += hs[i].live_bytes;
    objects += hs[i].live_objects;
    held += hs[i].held_bytes;
  }
  size_t own = isle_usable_size(hs);
  *live_bytes = bytes >= own ? bytes - own : 0;
  *live_objects = objects ? objects - 1 : 0;
  *held_bytes = held;
  isle_free(hs);
  return true;
}

/* ----- The acceptor ------------------------------------------------------ */

static const isle_actor_type_t *server_conn_type;

static int acceptor_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)state;
  const isle_tcp_event_t *e = isle_tcp_event(msg);
  if (!e || isle_msg_type(msg) != ISLE_MSG_TCP_ACCEPT)
    return ISLE_CONTINUE;
  isle_runtime_t *rt = isle_ctx_runtime(ctx);
  isle_ref_t owner;
  if (isle_ctx_spawn(ctx, server_conn_type, &e->conn, &owner) != 0 ||
      isle_tcp_start(rt, e->conn, owner) != 0)
    isle_tcp_close(rt, e->conn, false); /* no memory: refuse it */
  return ISLE_CONTINUE;
}

static const isle_actor_type_t server_acceptor_type = {
    .name = "acceptor",
    .receive = acceptor_receive,
};

/* ----- Signals ----------------------------------------------------------- */

typedef struct server_signals_s {
  const char *name;
  isle_runtime_t *rt;
  uint32_t shutdown_ms;
  sigset_t set;
} server_signals_t;

/* Prints the "stats" line (see the top of this file). */
static inline void server_print_stats(const char *name, isle_runtime_t *rt) {
  isle_runtime_stats_t st;
  isle_runtime_stats(rt, &st);
  isle_io_stats_t io;
  isle_io_stats(rt, &io);
  uint64_t live = 0, objects = 0, held = 0;
  server_heap_totals(&live, &objects, &held);
  fprintf(stderr,
          "%s: stats actors_live=%llu tcp_open=%llu tcp_accepted=%llu "
          "messages=%llu live_bytes=%llu live_objects=%llu held_bytes=%llu\n",
          name, (unsigned long long)st.actors_live,
          (unsigned long long)io.tcp_open, (unsigned long long)io.tcp_accepted,
          (unsigned long long)st.messages, (unsigned long long)live,
          (unsigned long long)objects, (unsigned long long)held);
}

/* Waits for signals (blocked in every thread): SIGINT or SIGTERM shuts
 * the server down (once), SIGUSR2 prints the stats line, SIGUSR1 (from
 * main, once the run is over) ends the wait. A thread, since neither
 * isle_io_shutdown nor stdio is for handlers. */
static void *server_signal_thread(void *arg) {
  server_signals_t *s = arg;
  bool shutting_down = false;
  for (;;) {
    int sig;
    if (sigwait(&s->set, &sig) != 0)
      return NULL;
    if (sig == SIGUSR1)
      return NULL;
    if (sig == SIGUSR2) {
      server_print_stats(s->name, s->rt);
    } else if (!shutting_down) {
      shutting_down = true;
      fprintf(stderr, "shutting down (signal %d)\n", sig);
      isle_io_shutdown(s->rt, s->shutdown_ms);
    }
  }
}

/* ----- Main -------------------------------------------------------------- */

/* Raises the soft limit on open descriptors to what max_conns needs (as
 * far as the hard limit allows), as Redis does for maxclients: at the
 * usual 1,024 the server would run out at about a thousand connections
 * (libuv then accepts and drops them). A failure leaves the limit as it
 * was, which only lowers how many connections can be open. */
static inline void server_raise_fd_limit(const char *name, uint32_t max_conns) {
  struct rlimit rl;
  rlim_t want = (rlim_t)(max_conns ? max_conns : 10000) + 64; /* io.h default */
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
    return;
  rlim_t cur = rl.rlim_cur;
  rl.rlim_cur =
      rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
  if (rl.rlim_cur > cur && setrlimit(RLIMIT_NOFILE, &rl) != 0)
    rl.rlim_cur = cur;
  if (rl.rlim_cur < want)
    fprintf(stderr, "%s: at most %llu open descriptors (hard limit)\n", name,
            (unsigned long long)rl.rlim_cur);
}

/* Runs a server whose connections are actors of `conn_type` (spawned with
 * a `const isle_conn_t *` argument); `setup`, if not NULL, runs before
 * listening (the kv server spawns its shards there). */
static inline int server_main(const char *name, const server_opts_t *o,
                              const isle_actor_type_t *conn_type,
                              int (*setup)(isle_runtime_t *rt)) {
  static server_signals_t sig;
  sigemptyset(&sig.set);
  sigaddset(&sig.set, SIGINT);
  sigaddset(&sig.set, SIGTERM);
  sigaddset(&sig.set, SIGUSR1);
  sigaddset(&sig.set, SIGUSR2);
  /* Before any thread starts, so that every thread inherits the mask. */
  pthread_sigmask(SIG_BLOCK, &sig.set, NULL);
  signal(SIGPIPE, SIG_IGN);
  server_raise_fd_limit(name, o->tcp.max_conns);

  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = o->workers;
  isle_runtime_t *rt;
  isle_ref_t acceptor;
  int rc = isle_runtime_new(&cfg, &rt);
  if (rc == 0) {
    isle_io_config_t io;
    isle_io_config_init(&io);
    io.mode = o->io_mode;
    rc = isle_io_config(rt, &io);
    if (rc)
      isle_runtime_free(rt);
  }
  if (rc) {
    fprintf(stderr, "%s: %s\n", name, isle_strerror(rc));
    return 1;
  }
  server_conn_type = conn_type;
  isle_listener_t listener;
  uint16_t port = 0;
  if ((rc = setup ? setup(rt) : 0) != 0 ||
      (rc = isle_runtime_spawn(rt, &server_acceptor_type, NULL, &acceptor)) !=
          0 ||
      (rc = isle_tcp_listen(rt, &o->tcp, acceptor, &listener, &port)) != 0) {
    fprintf(stderr, "%s: cannot listen on %s:%u: %s\n", name,
            o->tcp.host ? o->tcp.host : "127.0.0.1", o->tcp.port,
            isle_strerror(rc));
    isle_runtime_free(rt);
    return 1;
  }
  printf("%s: listening on %s:%u\n", name,
         o->tcp.host ? o->tcp.host : "127.0.0.1", port);
  fflush(stdout);
  sig.name = name;
  sig.rt = rt;
  sig.shutdown_ms = o->shutdown_ms;
  pthread_t sig_thread;
  pthread_create(&sig_thread, NULL, server_signal_thread, &sig);
  rc = isle_runtime_run(rt);
  pthread_kill(sig_thread, SIGUSR1); /* if no signal came, end its wait */
  pthread_join(sig_thread, NULL);
  isle_runtime_stats_t st;
  isle_runtime_stats(rt, &st);
  isle_io_stats_t io;
  isle_io_stats(rt, &io);
  isle_runtime_free(rt);
  /* What the threads freed for each other is taken in first. */
  isle_heap_collect();
  uint64_t live = 0, objects = 0, held = 0;
  server_heap_totals(&live, &objects, &held);
  fprintf(stderr,
          "%s: %llu connections (%llu refused), %llu messages, %llu actors; "
          "heap %llu bytes in %llu objects live; bye\n",
          name, (unsigned long long)io.tcp_accepted,
          (unsigned long long)io.tcp_refused, (unsigned long long)st.messages,
          (unsigned long long)st.spawned, (unsigned long long)live,
          (unsigned long long)objects);
  return rc ? 1 : 0;
}

#endif /* ISLE_SAMPLES_SERVER_COMMON_H */
