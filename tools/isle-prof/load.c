/* isle — MIT licensed. */
/*
 * Loading a profile: one JSON object per line, parsed with jansson and
 * checked field by field, so that a bad profile is refused with the line
 * and the field that is wrong rather than turned into a wrong picture.
 *
 * What counts as bad: an empty file, a first line that is not the isle
 * profile header, a line that is not JSON (a last line without its newline
 * is reported as truncated: the program was killed or is still writing),
 * a field missing or of the wrong type, a snapshot after the final one,
 * and (unless --partial) no final snapshot at all.
 */
#define _GNU_SOURCE /* getline */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "prof.h"

/* ===== Errors =========================================================== */

typedef struct loader_s {
  prof_t *p;
  char *err;
  size_t errlen;
  size_t line; /* 1-based line being read */
} loader_t;

__attribute__((format(printf, 2, 3))) static int fail(loader_t *ld,
                                                      const char *fmt, ...) {
  int n = snprintf(ld->err, ld->errlen, "%s:%zu: ", ld->p->path, ld->line);
  if (n < 0 || (size_t)n >= ld->errlen)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}

/* ===== Typed fields ===================================================== */

static int get_u64(loader_t *ld, json_t *obj, const char *what, const char *key,
                   uint64_t *out) {
  json_t *v = json_object_get(obj, key);
  if (!v)
    return fail(ld, "%s has no field \"%s\"", what, key);
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return fail(ld, "%s field \"%s\" is not a non-negative integer", what, key);
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

static int get_bool(loader_t *ld, json_t *obj, const char *what,
                    const char *key, bool *out) {
  json_t *v = json_object_get(obj, key);
  if (!v || !json_is_boolean(v))
    return fail(ld, "%s field \"%s\" is missing or not true/false", what, key);
  *out = json_is_true(v);
  return 0;
}

static json_t *get_array(loader_t *ld, json_t *obj, const char *what,
                         const char *key) {
  json_t *v = json_object_get(obj, key);
  if (!v || !json_is_array(v)) {
    fail(ld, "%s field \"%s\" is missing or not an array", what, key);
    return NULL;
  }
  return v;
}

/* ===== The model ======================================================== */

static int grow_snapshots(loader_t *ld) {
  prof_t *p = ld->p;
  if (p->nsnap < p->capsnap)
    return 0;
  size_t cap = p->capsnap ? 2 * p->capsnap : 64;
  uint64_t *t = realloc(p->t_ms, cap * sizeof *t);
  if (!t)
    return fail(ld, "out of memory");
  p->t_ms = t;
  for (size_t i = 0; i < p->nthreads; i++) {
    prof_thread_t *th = &p->threads[i];
    uint64_t *live = realloc(th->live, cap * sizeof *live);
    if (live)
      th->live = live;
    uint64_t *held = realloc(th->held, cap * sizeof *held);
    if (held)
      th->held = held;
    if (!live || !held)
      return fail(ld, "out of memory");
    memset(th->live + p->capsnap, 0, (cap - p->capsnap) * sizeof *live);
    memset(th->held + p->capsnap, 0, (cap - p->capsnap) * sizeof *held);
  }
  p->capsnap = cap;
  return 0;
}

static prof_thread_t *thread_get(loader_t *ld, uint64_t heap_id) {
  prof_t *p = ld->p;
  for (size_t i = 0; i < p->nthreads; i++)
    if (p->threads[i].heap_id == heap_id)
      return &p->threads[i];
  if (p->nthreads == p->capthreads) {
    size_t cap = p->capthreads ? 2 * p->capthreads : 16;
    prof_thread_t *t = realloc(p->threads, cap * sizeof *t);
    if (!t) {
      fail(ld, "out of memory");
      return NULL;
    }
    p->threads = t;
    p->capthreads = cap;
  }
  prof_thread_t *th = &p->threads[p->nthreads];
  memset(th, 0, sizeof *th);
  th->heap_id = heap_id;
  th->live = calloc(p->capsnap, sizeof *th->live);
  th->held = calloc(p->capsnap, sizeof *th->held);
  if (!th->live || !th->held) {
    free(th->live);
    free(th->held);
    fail(ld, "out of memory");
    return NULL;
  }
  p->nthreads++;
  return th;
}

static int class_index(const prof_t *p, uint64_t size) {
  for (size_t c = 0; c < p->nclasses; c++)
    if (p->class_size[c] == size)
      return (int)c;
  return -1;
}

/* ===== Lines ============================================================ */

static int load_header(loader_t *ld, json_t *h) {
  prof_t *p = ld->p;
  uint64_t version = 0, pid = 0, interval = 0;
  if (!json_is_object(h) || !json_object_get(h, "isle_profile"))
    return fail(ld, "not an isle profile (the first line must be the "
                    "{\"isle_profile\":1,...} header)");
  if (get_u64(ld, h, "header", "isle_profile", &version))
    return -1;
  if (version != 1)
    return fail(ld, "profile format version %llu; this isle-prof reads 1",
                (unsigned long long)version);
  if (get_u64(ld, h, "header", "pid", &pid) ||
      get_u64(ld, h, "header", "interval_ms", &interval))
    return -1;
  p->pid = (long)pid;
  p->interval_ms = (unsigned)interval;
  json_t *sizes = get_array(ld, h, "header", "class_sizes");
  if (!sizes)
    return -1;
  if (json_array_size(sizes) == 0 || json_array_size(sizes) > PROF_MAX_CLASSES)
    return fail(ld, "header has %zu class sizes (1..%d expected)",
                json_array_size(sizes), PROF_MAX_CLASSES);
  size_t i;
  json_t *v;
  json_array_foreach(sizes, i, v) {
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
      return fail(ld, "header class size %zu is not a positive integer", i);
    p->class_size[i] = (uint64_t)json_integer_value(v);
  }
  p->nclasses = json_array_size(sizes);
  return 0;
}

static int load_thread(loader_t *ld, json_t *t, size_t snap) {
  const char *what = "thread";
  if (!json_is_object(t))
    return fail(ld, "a \"threads\" entry is not an object");
  uint64_t heap_id = 0, tid = 0, live = 0, held = 0, peak_held = 0, large = 0;
  if (get_u64(ld, t, what, "heap", &heap_id) ||
      get_u64(ld, t, what, "tid", &tid) ||
      get_u64(ld, t, what, "live_bytes", &live) ||
      get_u64(ld, t, what, "held_bytes", &held) ||
      get_u64(ld, t, what, "peak_held_bytes", &peak_held) ||
      get_u64(ld, t, what, "large_live_bytes", &large))
    return -1;
  json_t *name = json_object_get(t, "name");
  if (!name || !json_is_string(name))
    return fail(ld, "thread field \"name\" is missing or not a string");
  prof_thread_t *th = thread_get(ld, heap_id);
  if (!th)
    return -1;
  uint64_t f[11];
  static const char *const keys[11] = {
      "spans",           "refills",
      "os_refills",      "spans_returned",
      "spans_adopted",   "os_returned_bytes",
      "remote_sent",     "remote_sent_bytes",
      "remote_received", "remote_received_bytes",
      "live_objects"};
  for (int k = 0; k < 11; k++)
    if (get_u64(ld, t, what, keys[k], &f[k]))
      return -1;
  bool retired = false;
  if (get_bool(ld, t, what, "retired", &retired))
    return -1;
  json_t *classes = get_array(ld, t, what, "classes");
  if (!classes)
    return -1;
  uint64_t by_class[PROF_MAX_CLASSES] = {0};
  uint64_t class_sum = 0;
  size_t i;
  json_t *c;
  json_array_foreach(classes, i, c) {
    if (!json_is_array(c) || json_array_size(c) != 3)
      return fail(ld, "heap %llu class entry %zu is not [size,objects,bytes]",
                  (unsigned long long)heap_id, i);
    json_t *sz = json_array_get(c, 0), *by = json_array_get(c, 2);
    if (!json_is_integer(sz) || !json_is_integer(by) ||
        !json_is_integer(json_array_get(c, 1)) || json_integer_value(by) < 0)
      return fail(ld, "heap %llu class entry %zu has a non-integer field",
                  (unsigned long long)heap_id, i);
    int idx = class_index(ld->p, (uint64_t)json_integer_value(sz));
    if (idx < 0)
      return fail(ld, "heap %llu names class size %lld, not in the header",
                  (unsigned long long)heap_id,
                  (long long)json_integer_value(sz));
    by_class[idx] = (uint64_t)json_integer_value(by);
    class_sum += by_class[idx];
  }
  if (class_sum + large != live)
    return fail(ld,
                "heap %llu: live_bytes %llu is not its classes (%llu) plus "
                "large blocks (%llu)",
                (unsigned long long)heap_id, (unsigned long long)live,
                (unsigned long long)class_sum, (unsigned long long)large);
  if (json_string_length(name) > 0)
    snprintf(th->name, sizeof th->name, "%s", json_string_value(name));
  th->tid = tid ? tid : th->tid;
  th->live[snap] = live;
  th->held[snap] = held;
  if (live > th->peak_live) {
    th->peak_live = live;
    th->peak_at = snap;
    memcpy(th->peak_classes, by_class, sizeof by_class);
    th->peak_large = large;
  }
  th->peak_held = peak_held;
  th->final_live = live;
  th->spans = f[0];
  th->refills = f[1];
  th->os_refills = f[2];
  th->spans_returned = f[3];
  th->spans_adopted = f[4];
  th->os_returned_bytes = f[5];
  th->remote_sent = f[6];
  th->remote_sent_bytes = f[7];
  th->remote_received = f[8];
  th->remote_received_bytes = f[9];
  th->retired = retired;
  return 0;
}

static int load_flow(loader_t *ld, json_t *flow) {
  prof_t *p = ld->p;
  size_t n = json_array_size(flow);
  prof_flow_t *cells = n ? calloc(n, sizeof *cells) : NULL;
  if (n && !cells)
    return fail(ld, "out of memory");
  size_t i;
  json_t *c;
  json_array_foreach(flow, i, c) {
    if (!json_is_object(c)) {
      free(cells);
      return fail(ld, "a \"flow\" entry is not an object");
    }
    if (get_u64(ld, c, "flow entry", "from", &cells[i].from) ||
        get_u64(ld, c, "flow entry", "to", &cells[i].to) ||
        get_u64(ld, c, "flow entry", "bytes", &cells[i].bytes) ||
        get_u64(ld, c, "flow entry", "blocks", &cells[i].blocks)) {
      free(cells);
      return -1;
    }
  }
  free(p->flow);
  p->flow = cells;
  p->nflow = n;
  return 0;
}

static int load_snapshot(loader_t *ld, json_t *s) {
  prof_t *p = ld->p;
  if (!json_is_object(s))
    return fail(ld, "a snapshot line is not a JSON object");
  if (p->has_final)
    return fail(ld, "a snapshot follows the final one");
  uint64_t seq = 0, t = 0;
  bool final = false;
  if (get_u64(ld, s, "snapshot", "seq", &seq) ||
      get_u64(ld, s, "snapshot", "t_ms", &t) ||
      get_bool(ld, s, "snapshot", "final", &final))
    return -1;
  if (seq != p->nsnap)
    return fail(ld, "snapshot seq %llu where %zu was expected (lines lost?)",
                (unsigned long long)seq, p->nsnap);
  if (p->nsnap && t < p->t_ms[p->nsnap - 1])
    return fail(ld, "snapshot time goes backwards");
  json_t *threads = get_array(ld, s, "snapshot", "threads");
  json_t *flow = get_array(ld, s, "snapshot", "flow");
  if (!threads || !flow)
    return -1;
  if (grow_snapshots(ld))
    return -1;
  size_t snap = p->nsnap;
  p->t_ms[snap] = t;
  for (size_t i = 0; i < p->nthreads; i++)
    p->threads[i].live[snap] = p->threads[i].held[snap] = 0;
  size_t i;
  json_t *th;
  json_array_foreach(threads, i, th) {
    if (load_thread(ld, th, snap))
      return -1;
  }
  if (load_flow(ld, flow))
    return -1;
  p->nsnap++;
  p->has_final = final;
  return 0;
}

static int by_heap_id(const void *a, const void *b) {
  const prof_thread_t *x = a, *y = b;
  return x->heap_id < y->heap_id ? -1 : x->heap_id > y->heap_id;
}

/* Threads in heap-id order (the order they first allocated); labels: the
 * name, "heap-N" when unnamed, the heap id added when two threads share a
 * name. */
static void make_labels(prof_t *p) {
  if (p->nthreads > 1)
    qsort(p->threads, p->nthreads, sizeof *p->threads, by_heap_id);
  for (size_t i = 0; i < p->nthreads; i++) {
    prof_thread_t *th = &p->threads[i];
    bool shared = false;
    for (size_t j = 0; j < p->nthreads && th->name[0]; j++)
      if (j != i && strcmp(p->threads[j].name, th->name) == 0)
        shared = true;
    if (!th->name[0])
      snprintf(th->label, sizeof th->label, "heap-%llu",
               (unsigned long long)th->heap_id);
    else if (shared)
      snprintf(th->label, sizeof th->label, "%s (heap %llu)", th->name,
               (unsigned long long)th->heap_id);
    else
      snprintf(th->label, sizeof th->label, "%s", th->name);
  }
}

/* ===== Public =========================================================== */

int prof_load(prof_t *p, const char *path, bool partial, char *err,
              size_t errlen) {
  p->path = path;
  loader_t ld = {.p = p, .err = err, .errlen = errlen, .line = 0};
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = 0;
  while (rc == 0 && (len = getline(&buf, &cap, f)) >= 0) {
    ld.line++;
    bool has_newline = len > 0 && buf[len - 1] == '\n';
    json_error_t jerr;
    json_t *v = json_loadb(buf, (size_t)len, 0, &jerr);
    if (!v) {
      if (!has_newline)
        rc = fail(&ld,
                  "truncated: the last line ends without a newline and is "
                  "not complete JSON (%s); the program was killed or is "
                  "still writing",
                  jerr.text);
      else
        rc = fail(&ld, "malformed JSON at column %d: %s", jerr.column,
                  jerr.text);
      break;
    }
    if (!has_newline) {
      json_decref(v);
      rc = fail(&ld, "truncated: the last line ends without a newline");
      break;
    }
    rc = ld.line == 1 ? load_header(&ld, v) : load_snapshot(&ld, v);
    json_decref(v);
  }
  if (rc == 0 && ferror(f)) {
    snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
    rc = -1;
  }
  free(buf);
  fclose(f);
  if (rc)
    return rc;
  if (ld.line == 0) {
    snprintf(err, errlen, "%s: empty file, not a profile", path);
    return -1;
  }
  if (p->nsnap == 0) {
    snprintf(err, errlen, "%s: no snapshot after the header", path);
    return -1;
  }
  if (!p->has_final && !partial) {
    snprintf(err, errlen,
             "%s: no final snapshot: the program was killed or is still "
             "running (--partial reads it anyway)",
             path);
    return -1;
  }
  make_labels(p);
  return 0;
}

void prof_free(prof_t *p) {
  for (size_t i = 0; i < p->nthreads; i++) {
    free(p->threads[i].live);
    free(p->threads[i].held);
  }
  free(p->threads);
  free(p->t_ms);
  free(p->flow);
  memset(p, 0, sizeof *p);
}

const prof_thread_t *prof_thread(const prof_t *p, uint64_t heap_id) {
  for (size_t i = 0; i < p->nthreads; i++)
    if (p->threads[i].heap_id == heap_id)
      return &p->threads[i];
  return NULL;
}
