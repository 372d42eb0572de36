/* isle — MIT licensed. */
/*
 * The io layer's libuv loops: the "io" thread's, where timers (timer.c)
 * and listeners live, and everything TCP with ISLE_IO_THREAD (started on
 * first use, stopped by isle_runtime_free); and with ISLE_IO_WORKERS one
 * per worker, which the worker polls between turns and sleeps in (the
 * park operations at the end, which the core calls), for the connections
 * it owns (tcp_*.c).
 *
 * Only a loop's own thread touches it. Other threads hand it commands: a
 * locked list and uv_async_send, the one thread-safe libuv call (it
 * coalesces: many posts, one wake-up, and the loop then runs every command
 * queued). A command is a function and its own memory, freed by it.
 *
 * Threads: isle__loop_get and isle__loop_post from any thread;
 * isle__loop_free and isle__loop_close_worker from the thread freeing the
 * runtime.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "isle/heap.h"

static void run_commands(uv_async_t *a) {
  isle__loop_t *l = a->data;
  pthread_mutex_lock(&l->lock);
  isle__cmd_t *c = l->head;
  l->head = l->tail = NULL;
  pthread_mutex_unlock(&l->lock);
  ISLE__CHAOS("loop.run"); /* posts go on meanwhile: the next round's */
  while (c) {
    isle__cmd_t *next = c->next;
    c->run(c, l);
    c = next;
  }
}

static void close_rest(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* The io thread's last command: every module lets go of its handles,
 * then whatever is left (the async) closes and uv_run runs out. */
static void quit(isle__cmd_t *c, isle__loop_t *l) {
  (void)c; /* l->quit, freed with the loop */
  isle__timers_quit(l);
  isle__tcp_quit(l);
  uv_walk(&l->uv, close_rest, NULL);
}

static void *io_main(void *arg) {
  isle__loop_t *l = arg;
  isle_heap_set_thread_name("io");
  pthread_setname_np(pthread_self(), "io");
  uv_run(&l->uv, UV_RUN_DEFAULT);
  isle_heap_collect();
  return NULL;
}

int isle__loop_init(isle__loop_t *l, isle__io_t *io, isle__worker_t *w) {
  memset(l, 0, sizeof *l);
  if (uv_loop_init(&l->uv) != 0)
    return ISLE_ENOMEM;
  l->rt = io->rt;
  l->io = io;
  l->worker = w;
  pthread_mutex_init(&l->lock, NULL);
  l->uv.data = l;
  l->wake.data = l;
  l->quit.run = quit;
  uv_async_init(&l->uv, &l->wake, run_commands);
  return 0;
}

bool isle__loop_mine(const isle__loop_t *l) {
  /* Only worker loops are ever run from the caller's own turn. */
  return l->worker && l->worker == isle__tls_worker;
}

void isle__loop_close_worker(isle__loop_t *l) {
  run_commands(&l->wake); /* what was posted and never run */
  isle__tcp_quit(l);
  uv_walk(&l->uv, close_rest, NULL);
  uv_run(&l->uv, UV_RUN_DEFAULT);
  uv_loop_close(&l->uv);
  pthread_mutex_destroy(&l->lock);
}

isle__loop_t *isle__loop_get(isle__io_t *io) {
  /* Acquire: pairs with the release store below; the fast path once the
   * loop runs. */
  isle__loop_t *l = atomic_load_explicit(&io->xloop, memory_order_acquire);
  if (l)
    return l;
  pthread_mutex_lock(&io->loop_lock);
  l = atomic_load_explicit(&io->xloop, memory_order_relaxed);
  if (!l && (l = isle_calloc(1, sizeof *l)) != NULL) {
    if (isle__loop_init(l, io, NULL) != 0) {
      isle_free(l);
      l = NULL;
    } else {
      if (pthread_create(&l->thread, NULL, io_main, l) != 0) {
        uv_close((uv_handle_t *)&l->wake, NULL);
        uv_run(&l->uv, UV_RUN_DEFAULT);
        uv_loop_close(&l->uv);
        pthread_mutex_destroy(&l->lock);
        isle_free(l);
        l = NULL;
      } else {
        atomic_store_explicit(&io->xloop, l, memory_order_release);
      }
    }
  }
  pthread_mutex_unlock(&io->loop_lock);
  return l;
}

void isle__loop_post(isle__loop_t *l, isle__cmd_t *c) {
  c->next = NULL;
  pthread_mutex_lock(&l->lock);
  if (l->tail)
    l->tail->next = c;
  else
    l->head = c;
  l->tail = c;
  pthread_mutex_unlock(&l->lock);
  /* The loop may run the command before the wake-up (a round already
   * under way takes it): the async send then only costs a round. */
  ISLE__CHAOS("loop.post");
  uv_async_send(&l->wake);
}

void isle__loop_free(isle__io_t *io) {
  isle__loop_t *l = atomic_load_explicit(&io->xloop, memory_order_acquire);
  if (!l)
    return;
  isle__loop_post(l, &l->quit);
  pthread_join(l->thread, NULL);
  uv_loop_close(&l->uv);
  pthread_mutex_destroy(&l->lock);
  isle_free(l);
  atomic_store_explicit(&io->xloop, NULL, memory_order_relaxed);
}

/* ===== Park operations (ISLE_IO_WORKERS) =============================== */

static isle__loop_t *worker_loop(isle__worker_t *w) {
  isle__io_t *io = isle__io_peek(w->rt);
  return &io->worker_loops[w->index];
}

bool isle__loop_poll(isle__worker_t *w) {
  /* Only with connections open on it: a worker without them never makes
   * the system call (an epoll_wait with no timeout). */
  isle__loop_t *l = worker_loop(w);
  if (!l->conns)
    return false;
  uv_run(&l->uv, UV_RUN_NOWAIT);
  return true;
}

void isle__loop_sleep(isle__worker_t *w) {
  /* Sleeps in epoll: I/O on this worker's connections wakes it as well as
   * isle__loop_wake. One round. */
  uv_run(&worker_loop(w)->uv, UV_RUN_ONCE);
}

void isle__loop_wake(isle__worker_t *w) {
  uv_async_send(&worker_loop(w)->wake); /* async-signal-safe */
}
