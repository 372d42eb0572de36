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
  isle_runtime_t *rt;
  uint32_t shutdown_ms;
  sigset_t set;
} server_signals_t;

/* Waits for SIGINT or SIGTERM (blocked in every thread) and shuts the
 * server down: a thread, since isle_io_shutdown is not for handlers. */
static void *server_signal_thread(void *arg) {
  server_signals_t *s = arg;
  int sig;
  sigwait(&s->set, &sig);
  if (sig == SIGUSR1)
    return NULL; /* main says the run is over */
  fprintf(stderr, "shutting down (signal %d)\n", sig);
  isle_io_shutdown(s->rt, s->shutdown_ms);
  return NULL;
}

/* ----- Main -------------------------------------------------------------- */

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
  /* Before any thread starts, so that every thread inherits the mask. */
  pthread_sigmask(SIG_BLOCK, &sig.set, NULL);
  signal(SIGPIPE, SIG_IGN);

  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = o->workers;
  cfg.io_mode = o->io_mode;
  isle_runtime_t *rt;
  isle_ref_t acceptor;
  int rc = isle_runtime_new(&cfg, &rt);
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
  sig.rt = rt;
  sig.shutdown_ms = o->shutdown_ms;
  pthread_t sig_thread;
  pthread_create(&sig_thread, NULL, server_signal_thread, &sig);
  rc = isle_runtime_run(rt);
  pthread_kill(sig_thread, SIGUSR1); /* if no signal came, end its wait */
  pthread_join(sig_thread, NULL);
  isle_runtime_stats_t st;
  isle_runtime_stats(rt, &st);
  isle_runtime_free(rt);
  fprintf(stderr,
          "%s: %llu connections (%llu refused), %llu messages, %llu actors; "
          "bye\n",
          name, (unsigned long long)st.tcp_accepted,
          (unsigned long long)st.tcp_refused, (unsigned long long)st.messages,
          (unsigned long long)st.spawned);
  return rc ? 1 : 0;
}

#endif /* ISLE_SAMPLES_SERVER_COMMON_H */
