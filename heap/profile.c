/* isle — MIT licensed. */
/*
 * The profile sampler: a thread that writes the statistics of every thread
 * heap and the flow matrix to a file, one JSON object per line (JSON
 * lines), every interval, and a last one when it stops.
 *
 * Why a thread of its own. The counters are already kept by the heaps
 * (stats.c reads them without stopping their owners), so sampling adds no
 * work to any allocation or free: when the sampler is off, nothing in the
 * heap knows it exists; when it is on, its cost is one reader walking the
 * heap records every interval and formatting a line.
 *
 * The sampler never allocates from the isle heap (its buffers come from
 * the C library's malloc) and never creates a heap record, so it does not
 * appear in the profiles it writes and does not disturb what it measures.
 *
 * Starting. isle_profile_start from any thread, or by itself: the first
 * thread heap's creation calls isle__profile_autostart, which starts a
 * sampler when the environment variable ISLE_PROFILE names a file. That
 * point is reached by every program that allocates, whether it links the
 * static or the shared library (a constructor in this file would be left
 * out of a static link that names nothing of it), and before any block
 * exists, so the profile sees the program from its first allocation.
 *
 * Stopping. isle_profile_stop, or an atexit handler registered by the
 * first start, which writes the final snapshot when the process exits
 * normally. A child made by fork has no sampler thread: the handler
 * checks the process id and leaves the parent's file alone.
 *
 * Format (docs/profiling.md is the reference): a header line
 *   {"isle_profile":1,"pid":..,"interval_ms":..,"start_unix_ms":..,
 *    "class_sizes":[16,32,...]}
 * then one line per snapshot
 *   {"seq":n,"t_ms":..,"final":false,"threads":[...],"flow":[...],
 *    "global":{...}}
 *
 * Threads: the public functions may be called from any thread; start and
 * stop are serialised by the profile lock. The sampler thread is the only
 * writer of the file while it runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h> /* PRIu64 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h> /* getenv, malloc for the sampler's own buffers */
#include <string.h>
#include <time.h>   /* clock_gettime: the wall clock */
#include <unistd.h> /* getpid */

#include "clock.h"
#include "internal.h"

#define DEFAULT_INTERVAL_MS 10u
/* An interval longer than a day is a typo, not a plan. */
#define MAX_INTERVAL_MS (24u * 3600u * 1000u)

/* ===== Process state ==================================================== */

/* The one sampler of the process. `lock` guards every field but `xrunning`
 * and the buffers, which only the sampler thread touches while it runs. */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake; /* signalled by stop; waits use CLOCK_MONOTONIC */
  pthread_once_t cond_once;
  pthread_once_t auto_once;
  pthread_once_t atexit_once;
  _Atomic int xrunning; /* 1 from a successful start until stop returns */
  bool stopping;        /* a stop is under way: the thread must finish */
  pid_t pid;            /* the process that started the sampler */
  pthread_t thread;
  FILE *file;
  unsigned interval_ms;
  uint64_t start_ns; /* CLOCK_MONOTONIC at start */
  uint64_t seq;
  bool write_failed;
  /* The sampler thread's buffers (C library heap). */
  isle_heap_stats_t *stats;
  size_t stats_cap;
  isle_heap_flow_t *flow;
  size_t flow_cap;
} prof = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond_once = PTHREAD_ONCE_INIT,
    .auto_once = PTHREAD_ONCE_INIT,
    .atexit_once = PTHREAD_ONCE_INIT,
};

/* ===== Helpers ========================================================== */

/* Wall-clock time, for the profile header only (intervals use
 * isle__now_ns, which a clock step does not move). */
static uint64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void cond_init(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  /* Monotonic: a wall-clock step must not stall or rush the sampler. */
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&prof.wake, &attr);
  pthread_condattr_destroy(&attr);
}

/* Writes a thread name as a JSON string. Names are up to 15 bytes cut
 * anywhere, so a multi-byte UTF-8 character may be cut in two: bytes that
 * do not form valid UTF-8 become '?', keeping the line valid JSON. */
static void put_name(FILE *f, const char *name) {
  fputc('"', f);
  const unsigned char *p = (const unsigned char *)name;
  while (*p) {
    unsigned char c = *p;
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc(c, f);
      p++;
    } else if (c < 0x20) {
      fprintf(f, "\\u%04x", c);
      p++;
    } else if (c < 0x80) {
      fputc(c, f);
      p++;
    } else {
      size_t len = c >= 0xF0 && c <= 0xF4  ? 4
                   : c >= 0xE0             ? 3
                   : c >= 0xC2 && c < 0xE0 ? 2
                                           : 0;
      size_t i = 1;
      while (len && i < len && (p[i] & 0xC0) == 0x80)
        i++;
      if (len && i == len) {
        fwrite(p, 1, len, f);
        p += len;
      } else {
        fputc('?', f);
        p++;
      }
    }
  }
  fputc('"', f);
}

static void put_header(FILE *f) {
  fprintf(f,
          "{\"isle_profile\":1,\"pid\":%ld,\"interval_ms\":%u,"
          "\"start_unix_ms\":%" PRIu64 ",\"class_sizes\":[",
          (long)prof.pid, prof.interval_ms, wall_ns() / 1000000u);
  for (unsigned c = 0; c < ISLE_HEAP_CLASS_COUNT; c++)
    fprintf(f, "%s%zu", c ? "," : "", isle_heap_class_size(c));
  fputs("]}\n", f);
}

static void put_thread(FILE *f, const isle_heap_stats_t *s) {
  fprintf(f, "{\"heap\":%" PRIu64 ",\"tid\":%" PRIu64 ",\"name\":", s->heap_id,
          s->thread_id);
  put_name(f, s->name);
  fprintf(f,
          ",\"retired\":%s,\"live_bytes\":%" PRIu64 ",\"live_objects\":%" PRIu64
          ",\"large_live_bytes\":%" PRIu64 ",\"large_live_objects\":%" PRIu64
          ",\"held_bytes\":%" PRIu64 ",\"peak_held_bytes\":%" PRIu64
          ",\"spans\":%" PRIu64 ",\"refills\":%" PRIu64
          ",\"os_refills\":%" PRIu64 ",\"spans_returned\":%" PRIu64
          ",\"spans_adopted\":%" PRIu64 ",\"os_returned_bytes\":%" PRIu64
          ",\"remote_sent\":%" PRIu64 ",\"remote_sent_bytes\":%" PRIu64
          ",\"remote_batches\":%" PRIu64 ",\"remote_received\":%" PRIu64
          ",\"remote_received_bytes\":%" PRIu64 ",\"classes\":[",
          s->retired ? "true" : "false", s->live_bytes, s->live_objects,
          s->large_live_bytes, s->large_live_objects, s->held_bytes,
          s->peak_held_bytes, s->spans_held, s->refills, s->os_refills,
          s->spans_returned, s->spans_adopted, s->os_returned_bytes,
          s->remote_frees_sent, s->remote_bytes_sent, s->remote_batches_sent,
          s->remote_frees_received, s->remote_bytes_received);
  /* Only the classes that hold something: most threads use a few. */
  bool first = true;
  for (unsigned c = 0; c < ISLE_HEAP_CLASS_COUNT; c++) {
    const isle_heap_class_stats_t *k = &s->classes[c];
    if (k->live_objects == 0)
      continue;
    fprintf(f, "%s[%zu,%" PRIu64 ",%" PRIu64 "]", first ? "" : ",",
            k->block_size, k->live_objects, k->live_bytes);
    first = false;
  }
  fputs("]}", f);
}

/* Copies every heap's statistics and the flow matrix into the sampler's
 * buffers, growing them as threads come; false when malloc fails. */
static bool gather(size_t *nstats, size_t *nflow) {
  for (;;) {
    size_t n = isle_heap_stats_all(prof.stats, prof.stats_cap);
    if (n <= prof.stats_cap) {
      *nstats = n;
      break;
    }
    size_t cap = n + 8;
    isle_heap_stats_t *grown = realloc(prof.stats, cap * sizeof *grown);
    if (!grown)
      return false;
    prof.stats = grown;
    prof.stats_cap = cap;
  }
  for (;;) {
    size_t n = isle_heap_flow(prof.flow, prof.flow_cap);
    if (n <= prof.flow_cap) {
      *nflow = n;
      return true;
    }
    size_t cap = n + 16;
    isle_heap_flow_t *grown = realloc(prof.flow, cap * sizeof *grown);
    if (!grown)
      return false;
    prof.flow = grown;
    prof.flow_cap = cap;
  }
}

/* Writes one snapshot line and flushes it, so that a reader (or a crash)
 * sees whole lines. Sampler thread only. */
static void snapshot(bool final) {
  FILE *f = prof.file;
  size_t nstats = 0, nflow = 0;
  if (!gather(&nstats, &nflow)) {
    prof.write_failed = true;
    return;
  }
  isle_heap_global_stats_t g;
  isle_heap_stats_global(&g);
  uint64_t t_ms = (isle__now_ns() - prof.start_ns) / 1000000u;
  fprintf(f,
          "{\"seq\":%" PRIu64 ",\"t_ms\":%" PRIu64 ",\"final\":%s,"
          "\"threads\":[",
          prof.seq++, t_ms, final ? "true" : "false");
  for (size_t i = 0; i < nstats; i++) {
    if (i)
      fputc(',', f);
    put_thread(f, &prof.stats[i]);
  }
  fputs("],\"flow\":[", f);
  for (size_t i = 0; i < nflow; i++) {
    const isle_heap_flow_t *c = &prof.flow[i];
    fprintf(f,
            "%s{\"from\":%" PRIu64 ",\"to\":%" PRIu64 ",\"bytes\":%" PRIu64
            ",\"blocks\":%" PRIu64 "}",
            i ? "," : "", c->from_heap_id, c->to_heap_id, c->bytes, c->blocks);
  }
  fprintf(f,
          "],\"global\":{\"mapped_bytes\":%" PRIu64 ",\"in_use_bytes\":%" PRIu64
          ",\"free_bytes\":%" PRIu64 ",\"purged_bytes\":%" PRIu64
          ",\"abandoned_spans\":%" PRIu64 ",\"abandoned_live_bytes\":%" PRIu64
          ",\"limit_bytes\":%" PRIu64 ",\"heaps\":%" PRIu64
          ",\"purges\":%" PRIu64 "}}\n",
          g.mapped_bytes, g.in_use_bytes, g.free_bytes, g.purged_bytes,
          g.abandoned_spans, g.abandoned_live_bytes, g.limit_bytes, g.heaps,
          g.purges);
  if (fflush(f) != 0 || ferror(f))
    prof.write_failed = true;
}

static void *sampler_main(void *arg) {
  (void)arg;
  /* Named for top, perf and the like (not a heap name: it has no heap). */
  pthread_setname_np(pthread_self(), "isle-profile");
  uint64_t interval_ns = (uint64_t)prof.interval_ms * 1000000u;
  uint64_t next = prof.start_ns + interval_ns;
  pthread_mutex_lock(&prof.lock);
  while (!prof.stopping) {
    struct timespec ts = {.tv_sec = (time_t)(next / 1000000000u),
                          .tv_nsec = (long)(next % 1000000000u)};
    int rc = pthread_cond_timedwait(&prof.wake, &prof.lock, &ts);
    if (prof.stopping)
      break;
    if (rc != ETIMEDOUT)
      continue; /* spurious wake-up: the deadline stands */
    pthread_mutex_unlock(&prof.lock);
    snapshot(false);
    /* A snapshot that overran the interval does not queue up catch-ups:
     * the next one is an interval from now. */
    uint64_t now = isle__now_ns();
    next += interval_ns;
    if (next <= now)
      next = now + interval_ns;
    pthread_mutex_lock(&prof.lock);
  }
  pthread_mutex_unlock(&prof.lock);
  snapshot(true);
  return NULL;
}

static void at_exit(void) {
  /* Not in a forked child, whose sampler thread did not come along. */
  if (atomic_load_explicit(&prof.xrunning, memory_order_acquire) &&
      prof.pid == getpid())
    isle_profile_stop();
}

static void register_at_exit(void) {
  atexit(at_exit);
}

/* Parses ISLE_PROFILE_INTERVAL_MS; a bad value is reported and replaced by
 * the default rather than silently profiling at some other rate. */
static unsigned env_interval(void) {
  const char *v = getenv("ISLE_PROFILE_INTERVAL_MS");
  if (!v || !*v)
    return DEFAULT_INTERVAL_MS;
  char *end = NULL;
  errno = 0;
  unsigned long ms = strtoul(v, &end, 10);
  if (errno || end == v || *end || ms == 0 || ms > MAX_INTERVAL_MS) {
    fprintf(stderr,
            "isle: ISLE_PROFILE_INTERVAL_MS=%s is not a number of "
            "milliseconds in 1..%u; using %u\n",
            v, MAX_INTERVAL_MS, DEFAULT_INTERVAL_MS);
    return DEFAULT_INTERVAL_MS;
  }
  return (unsigned)ms;
}

static void autostart_once(void) {
  const char *path = getenv("ISLE_PROFILE");
  if (!path || !*path)
    return;
  int rc = isle_profile_start(path, env_interval());
  /* The program runs on unprofiled rather than failing for a profiler. */
  if (rc != 0)
    fprintf(stderr, "isle: ISLE_PROFILE=%s: cannot profile: %s\n", path,
            isle_strerror(rc));
}

/* ===== Internal functions =============================================== */

void isle__profile_autostart(void) {
  pthread_once(&prof.auto_once, autostart_once);
}

/* ===== Public functions ================================================= */

int isle_profile_start(const char *path, unsigned interval_ms) {
  if (!path || !*path || interval_ms == 0 || interval_ms > MAX_INTERVAL_MS)
    return ISLE_EINVAL;
  pthread_once(&prof.cond_once, cond_init);
  pthread_once(&prof.atexit_once, register_at_exit);
  pthread_mutex_lock(&prof.lock);
  if (atomic_load_explicit(&prof.xrunning, memory_order_relaxed)) {
    pthread_mutex_unlock(&prof.lock);
    return ISLE_EBUSY;
  }
  /* "e": the descriptor must not leak into programs the process execs. */
  FILE *f = fopen(path, "we");
  if (!f) {
    pthread_mutex_unlock(&prof.lock);
    return ISLE_EIO;
  }
  prof.file = f;
  prof.interval_ms = interval_ms;
  prof.pid = getpid();
  prof.seq = 0;
  prof.stopping = false;
  prof.write_failed = false;
  prof.start_ns = isle__now_ns();
  put_header(f);
  if (fflush(f) != 0)
    prof.write_failed = true;
  if (pthread_create(&prof.thread, NULL, sampler_main, NULL) != 0) {
    fclose(f);
    prof.file = NULL;
    pthread_mutex_unlock(&prof.lock);
    return ISLE_ENOMEM;
  }
  /* Release: pairs with the acquire in at_exit and isle_profile_running;
   * the fields above are set before anyone sees the sampler running. */
  atomic_store_explicit(&prof.xrunning, 1, memory_order_release);
  pthread_mutex_unlock(&prof.lock);
  return 0;
}

int isle_profile_stop(void) {
  pthread_mutex_lock(&prof.lock);
  /* A forked child inherits the state but not the thread: nothing to
   * join there, and the file is the parent's. */
  if (!atomic_load_explicit(&prof.xrunning, memory_order_relaxed) ||
      prof.stopping || prof.pid != getpid()) {
    pthread_mutex_unlock(&prof.lock);
    return ISLE_ESTATE;
  }
  prof.stopping = true;
  pthread_cond_signal(&prof.wake);
  pthread_t thread = prof.thread;
  pthread_mutex_unlock(&prof.lock);
  /* The thread writes the final snapshot before it ends. */
  pthread_join(thread, NULL);
  pthread_mutex_lock(&prof.lock);
  bool failed = prof.write_failed;
  if (fclose(prof.file) != 0)
    failed = true;
  prof.file = NULL;
  free(prof.stats);
  free(prof.flow);
  prof.stats = NULL;
  prof.flow = NULL;
  prof.stats_cap = prof.flow_cap = 0;
  prof.stopping = false;
  /* Relaxed: readers only learn that no sampler runs; the lock orders the
   * fields for the next start. */
  atomic_store_explicit(&prof.xrunning, 0, memory_order_relaxed);
  pthread_mutex_unlock(&prof.lock);
  return failed ? ISLE_EIO : 0;
}

int isle_profile_running(void) {
  return atomic_load_explicit(&prof.xrunning, memory_order_acquire);
}
