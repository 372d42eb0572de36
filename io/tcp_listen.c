/* isle — MIT licensed. */
/*
 * TCP listeners, on the io thread's loop (tcp.h: the table). A listener
 * accepts, counts the connection against max_conns, and hands it to a
 * loop: its own (ISLE_IO_THREAD) or, by default (ISLE_IO_WORKERS), the
 * workers' in turn, as a duplicated socket that worker's loop adopts.
 * Listeners and their counters are shared by the loops their connections
 * live on: counted references (xrefs, xopen). Each open listener holds
 * the runtime until it has closed.
 *
 * Threads: isle_tcp_listen and isle_tcp_unlisten from any thread; a
 * listener on the io thread; the dealt socket's adoption on the worker
 * loop it goes to.
 */
#define _GNU_SOURCE
#include <string.h>
#include <uv.h>

#include "tcp.h"

#define DEFAULT_OUTPUT (1024 * 1024)
#define DEFAULT_MAX_CONNS 10000

/* ===== Accepting ======================================================= */

/* ISLE_IO_WORKERS: a worker's loop takes over an accepted socket. */
static void cmd_adopt(isle__cmd_t *base, isle__loop_t *l) {
  io_cmd_t *a = (io_cmd_t *)base;
  uv_tcp_t *tcp = isle_malloc(sizeof *tcp);
  if (tcp && uv_tcp_init(&l->uv, tcp) == 0) {
    if (uv_tcp_open(tcp, a->fd) == 0) {
      isle__tcp_adopt(l, tcp, a->listener);
      isle_free(a);
      return;
    }
    /* a->fd is still ours: closed below. */
    uv_close((uv_handle_t *)tcp, isle__tcp_free_closed);
  } else {
    isle_free(tcp);
  }
  close(a->fd);
  atomic_fetch_sub_explicit(&a->listener->xopen, 1, memory_order_relaxed);
  listener_unref(a->listener);
  isle_runtime_release(l->rt);
  isle_free(a);
}

static void on_connection(uv_stream_t *server, int status) {
  listener_t *ls = server->data;
  isle__loop_t *l = loop_of(server->loop);
  isle_runtime_t *rt = l->rt;
  if (status < 0)
    return;
  uv_tcp_t *tcp = isle_malloc(sizeof *tcp);
  if (!tcp || uv_tcp_init(server->loop, tcp) != 0) {
    isle_free(tcp);
    return;
  }
  if (uv_accept(server, (uv_stream_t *)tcp) != 0) {
    uv_close((uv_handle_t *)tcp, isle__tcp_free_closed);
    return;
  }
  /* Counted before it is handed on, so max_conns holds across loops. */
  if (atomic_fetch_add_explicit(&ls->xopen, 1, memory_order_relaxed) >=
      ls->opts.max_conns) {
    atomic_fetch_sub_explicit(&ls->xopen, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->io->xtcp_refused, 1, memory_order_relaxed);
    uv_close((uv_handle_t *)tcp, isle__tcp_free_closed);
    return;
  }
  atomic_fetch_add_explicit(&ls->xrefs, 1, memory_order_relaxed);
  isle_runtime_hold(rt); /* from here until the connection closes */
  if (!l->io->worker_loops) {
    isle__tcp_adopt(l, tcp, ls);
    return;
  }
  /* Deal it to the next worker: a copy of the socket goes to its loop
   * (libuv handles cannot move between loops), this handle closes. */
  isle__loop_t *to = &l->io->worker_loops[ls->next_worker++ % rt->nworkers];
  uv_os_fd_t fd;
  io_cmd_t *a = isle_malloc(sizeof *a);
  int dup_fd = -1;
  if (a && uv_fileno((uv_handle_t *)tcp, &fd) == 0)
    dup_fd = dup(fd);
  uv_close((uv_handle_t *)tcp, isle__tcp_free_closed);
  if (dup_fd < 0) {
    isle_free(a);
    atomic_fetch_sub_explicit(&ls->xopen, 1, memory_order_relaxed);
    listener_unref(ls);
    isle_runtime_release(rt);
    return;
  }
  a->base.run = cmd_adopt;
  a->fd = dup_fd;
  a->listener = ls;
  ISLE__CHAOS("io.deal"); /* a shutdown's commands may reach `to` first */
  isle__loop_post(to, &a->base);
}

/* ===== Listening ======================================================= */

typedef struct listen_cmd_s {
  isle__cmd_t base;
  isle_tcp_opts_t opts;
  char host[64];
  isle_ref_t acceptor;
  /* The answer, under done_lock. */
  pthread_mutex_t done_lock;
  pthread_cond_t done_cond;
  bool done;
  int rc;
  isle_listener_t listener;
  uint16_t port;
} listen_cmd_t;

static void listener_closed(uv_handle_t *h) {
  listener_t *ls = h->data;
  isle_runtime_release(loop_rt(h->loop));
  listener_unref(ls); /* the handle's; its connections hold theirs */
}

void isle__tcp_listener_close(struct isle__tcp_s *tab, listener_t *ls) {
  if (ls->closing)
    return;
  ls->closing = true;
  tab->listeners[handle_index(ls->self)] = NULL;
  atomic_store_explicit(&tab->xlistening[handle_index(ls->self)], 0,
                        memory_order_relaxed);
  uv_close((uv_handle_t *)&ls->tcp, listener_closed);
}

static int listen_on(isle__loop_t *l, listen_cmd_t *cmd, listener_t **out) {
  struct isle__tcp_s *tab = l->io->tcp;
  uint32_t slot = 0;
  while (slot < MAX_LISTENERS && tab->listeners[slot])
    slot++;
  if (slot == MAX_LISTENERS)
    return ISLE_ENOMEM;
  struct sockaddr_storage addr;
  if (uv_ip4_addr(cmd->host, cmd->opts.port, (struct sockaddr_in *)&addr) &&
      uv_ip6_addr(cmd->host, cmd->opts.port, (struct sockaddr_in6 *)&addr))
    return ISLE_EINVAL;
  listener_t *ls = isle_calloc(1, sizeof *ls);
  if (!ls)
    return ISLE_ENOMEM;
  atomic_init(&ls->xrefs, 1);
  uv_tcp_init(&l->uv, &ls->tcp);
  ls->tcp.data = ls;
  if (uv_tcp_bind(&ls->tcp, (struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&ls->tcp, cmd->opts.backlog, on_connection) !=
          0) {
    ls->closing = true;
    isle_runtime_hold(l->rt); /* listener_closed releases one */
    uv_close((uv_handle_t *)&ls->tcp, listener_closed);
    return ISLE_EIO;
  }
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&ls->tcp, (struct sockaddr *)&bound, &len);
  cmd->port = ntohs(bound.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&bound)->sin6_port
                        : ((struct sockaddr_in *)&bound)->sin_port);
  ls->opts = cmd->opts;
  ls->opts.host = NULL;
  ls->acceptor = cmd->acceptor;
  ls->self = (uint64_t)++tab->listener_gen[slot] << 32 | (slot + 1);
  tab->listeners[slot] = ls;
  atomic_store_explicit(&tab->xlistening[slot], ls->self, memory_order_relaxed);
  isle_runtime_hold(l->rt);
  *out = ls;
  return 0;
}

static void cmd_listen(isle__cmd_t *base, isle__loop_t *l) {
  listen_cmd_t *cmd = (listen_cmd_t *)base;
  listener_t *ls = NULL;
  int rc = listen_on(l, cmd, &ls);
  pthread_mutex_lock(&cmd->done_lock);
  cmd->rc = rc;
  cmd->listener = ls ? ls->self : 0;
  cmd->done = true;
  pthread_cond_signal(&cmd->done_cond);
  pthread_mutex_unlock(&cmd->done_lock);
}

static void cmd_unlisten(isle__cmd_t *base, isle__loop_t *l) {
  io_cmd_t *s = (io_cmd_t *)base;
  struct isle__tcp_s *tab = l->io->tcp;
  uint32_t slot = handle_index(s->conn);
  listener_t *ls = slot < MAX_LISTENERS ? tab->listeners[slot] : NULL;
  if (ls && ls->self == s->conn)
    isle__tcp_listener_close(tab, ls);
  isle_free(s);
}

/* ===== Public functions ================================================ */

int isle_tcp_listen(isle_runtime_t *rt, const isle_tcp_opts_t *opts,
                    isle_ref_t acceptor, isle_listener_t *out,
                    uint16_t *port_out) {
  if (!rt || !opts || isle__ref_check(rt, acceptor))
    return ISLE_EINVAL;
  const char *host = opts->host ? opts->host : "127.0.0.1";
  if (strlen(host) >= 64 || opts->backlog < 0 ||
      opts->read_size > (64u << 20) || opts->max_conns > MAX_CONNS_TOTAL)
    return ISLE_EINVAL;
  isle__loop_t *l = isle__tcp_io_loop(rt);
  if (!l)
    return ISLE_ENOMEM;
  listen_cmd_t *cmd = isle_calloc(1, sizeof *cmd);
  if (!cmd)
    return ISLE_ENOMEM;
  cmd->base.run = cmd_listen;
  cmd->opts = *opts;
  strcpy(cmd->host, host);
  if (!cmd->opts.backlog)
    cmd->opts.backlog = 511;
  if (!cmd->opts.max_conns)
    cmd->opts.max_conns = DEFAULT_MAX_CONNS;
  if (!cmd->opts.max_output)
    cmd->opts.max_output = DEFAULT_OUTPUT;
  if (!cmd->opts.read_size)
    cmd->opts.read_size = DEFAULT_READ;
  cmd->acceptor = acceptor;
  pthread_mutex_init(&cmd->done_lock, NULL);
  pthread_cond_init(&cmd->done_cond, NULL);
  isle__loop_post(l, &cmd->base);
  pthread_mutex_lock(&cmd->done_lock);
  while (!cmd->done)
    pthread_cond_wait(&cmd->done_cond, &cmd->done_lock);
  pthread_mutex_unlock(&cmd->done_lock);
  int rc = cmd->rc;
  if (rc == 0) {
    if (out)
      *out = cmd->listener;
    if (port_out)
      *port_out = cmd->port;
  }
  pthread_mutex_destroy(&cmd->done_lock);
  pthread_cond_destroy(&cmd->done_cond);
  isle_free(cmd);
  return rc;
}

int isle_tcp_unlisten(isle_runtime_t *rt, isle_listener_t listener) {
  if (!rt || (uint32_t)listener == 0 || handle_index(listener) >= MAX_LISTENERS)
    return ISLE_EINVAL;
  isle__io_t *io = isle__io_peek(rt);
  isle__loop_t *l =
      io ? atomic_load_explicit(&io->xloop, memory_order_acquire) : NULL;
  /* Refused here, as documented: the command alone would answer 0 for a
   * listener closed long ago. Relaxed: advisory, the io thread checks
   * again (a racing unlisten or shutdown may close it first). */
  if (!io || !io->tcp || !l ||
      atomic_load_explicit(&io->tcp->xlistening[handle_index(listener)],
                           memory_order_relaxed) != listener)
    return ISLE_EDEAD;
  ISLE__CHAOS("io.unlisten_check"); /* a shutdown may close it first */
  return isle__tcp_post(l, listener, cmd_unlisten, 0, false);
}
