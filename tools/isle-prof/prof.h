/* isle — MIT licensed. */
/*
 * isle-prof: reads a profile written by isle's sampler (JSON lines, see
 * docs/profiling.md) and reports on it. This header is the model the files
 * share: load.c fills it from a profile (validating every line), report.c
 * prints the summary tables, svg.c draws the pictures.
 *
 * Threads are keyed by heap id: a heap record outlives its thread and may
 * be taken over by a later one, whose figures then continue the series.
 * The label shown is the last non-empty name the record carried.
 */
#ifndef ISLE_PROF_H
#define ISLE_PROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* isle has 72 classes; a profile may name up to this many. */
#define PROF_MAX_CLASSES 128

typedef struct prof_thread_s {
  uint64_t heap_id;
  uint64_t tid;   /* kernel tid in the last snapshot that had it awake */
  char name[64];  /* last non-empty name; "" when never named */
  char label[96]; /* what tables and pictures show */
  uint64_t *live; /* live bytes per snapshot (0 where absent) */
  uint64_t *held; /* held bytes per snapshot */
  uint64_t peak_live;
  size_t peak_at;     /* snapshot index of peak_live */
  uint64_t peak_held; /* the heap's own peak_held_bytes, last seen */
  /* Live bytes per class and in large blocks at peak_live. */
  uint64_t peak_classes[PROF_MAX_CLASSES];
  uint64_t peak_large;
  /* From the last snapshot that had this heap. */
  uint64_t final_live;
  uint64_t spans, refills, os_refills, spans_returned, spans_adopted;
  uint64_t os_returned_bytes;
  uint64_t remote_sent, remote_sent_bytes;
  uint64_t remote_received, remote_received_bytes;
  bool retired;
} prof_thread_t;

typedef struct prof_flow_s {
  uint64_t from, to; /* heap ids; from 0: unknown owner */
  uint64_t bytes, blocks;
} prof_flow_t;

typedef struct prof_s {
  const char *path;
  long pid;
  unsigned interval_ms;
  size_t nclasses;
  uint64_t class_size[PROF_MAX_CLASSES];
  size_t nsnap, capsnap;
  uint64_t *t_ms; /* per snapshot */
  prof_thread_t *threads;
  size_t nthreads, capthreads;
  prof_flow_t *flow; /* the last snapshot's matrix */
  size_t nflow;
  bool has_final;
} prof_t;

/* ===== load.c ========================================================== */

/* Reads the profile at `path` into *p (zeroed by the caller). A profile
 * without its final snapshot is an error unless `partial`. Returns 0, or
 * -1 with a message naming the file and line in err[0..errlen). On error
 * *p may hold part of the profile; prof_free releases it either way. */
int prof_load(prof_t *p, const char *path, bool partial, char *err,
              size_t errlen);
void prof_free(prof_t *p);
/* The thread with `heap_id`, or NULL. */
const prof_thread_t *prof_thread(const prof_t *p, uint64_t heap_id);

/* ===== report.c ======================================================== */

/* Human-readable bytes ("12.3 KiB") into buf; returns buf. */
const char *prof_bytes(uint64_t bytes, char *buf, size_t len);
/* The per-thread summary and the flow table, as plain text. */
void prof_print_summary(const prof_t *p, FILE *out, unsigned top_classes);
/* The same as HTML tables, for the report page. */
void prof_print_html_tables(const prof_t *p, FILE *out, unsigned top_classes);

/* ===== svg.c =========================================================== */

/* Writes `text` with XML's special characters escaped (control
 * characters, which XML 1.0 cannot carry, become '?'). */
void prof_xml_text(FILE *out, const char *text);
/* The pictures, each a complete <svg> element with one <g class="series">
 * per thread. */
void prof_svg_memory(const prof_t *p, FILE *out);
void prof_svg_classes(const prof_t *p, FILE *out);
void prof_svg_flow(const prof_t *p, FILE *out);

#endif /* ISLE_PROF_H */
