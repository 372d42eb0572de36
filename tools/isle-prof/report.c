/* isle — MIT licensed. */
/*
 * The summary tables: one row per thread (peak and final live bytes, the
 * heap's peak held bytes, its top size classes at its peak, spans and
 * refills, remote frees out and in) and the flow matrix (bytes allocated
 * by the row's thread and freed by the column's), as text for the terminal
 * and as HTML for the report page.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "prof.h"

const char *prof_bytes(uint64_t bytes, char *buf, size_t len) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)bytes;
  unsigned u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, len, "%" PRIu64 " B", bytes);
  else
    snprintf(buf, len, "%.1f %s", v, unit[u]);
  return buf;
}

/* The `top` classes holding the most bytes at the thread's peak, as
 * "112 B 78%, large 20%" into buf. */
static void top_classes(const prof_t *p, const prof_thread_t *th, unsigned top,
                        char *buf, size_t len) {
  buf[0] = '\0';
  if (th->peak_live == 0) {
    snprintf(buf, len, "-");
    return;
  }
  bool used[PROF_MAX_CLASSES + 1] = {false};
  size_t off = 0;
  for (unsigned k = 0; k < top; k++) {
    int best = -1;
    uint64_t best_bytes = 0;
    for (size_t c = 0; c <= p->nclasses; c++) {
      uint64_t b = c < p->nclasses ? th->peak_classes[c] : th->peak_large;
      if (!used[c] && b > best_bytes) {
        best = (int)c;
        best_bytes = b;
      }
    }
    if (best < 0)
      break;
    used[best] = true;
    unsigned pct =
        (unsigned)(100.0 * (double)best_bytes / (double)th->peak_live + 0.5);
    int n;
    if ((size_t)best < p->nclasses)
      n = snprintf(buf + off, len - off, "%s%" PRIu64 " B %u%%", k ? ", " : "",
                   p->class_size[best], pct);
    else
      n = snprintf(buf + off, len - off, "%slarge %u%%", k ? ", " : "", pct);
    if (n < 0 || (size_t)n >= len - off)
      break;
    off += (size_t)n;
  }
}

static const char *label_of(const prof_t *p, uint64_t heap_id, char *buf,
                            size_t len) {
  const prof_thread_t *th = prof_thread(p, heap_id);
  if (th)
    return th->label;
  if (heap_id == 0)
    return "(exited)";
  snprintf(buf, len, "heap-%" PRIu64, heap_id);
  return buf;
}

/* Ids of the rows and columns of the flow matrix: every thread, plus 0
 * (blocks whose owner had exited) when some cell has it. */
static size_t flow_ids(const prof_t *p, uint64_t *ids) {
  size_t n = 0;
  for (size_t i = 0; i < p->nflow; i++)
    if (p->flow[i].from == 0) {
      ids[n++] = 0;
      break;
    }
  for (size_t i = 0; i < p->nthreads; i++)
    ids[n++] = p->threads[i].heap_id;
  return n;
}

static uint64_t flow_cell(const prof_t *p, uint64_t from, uint64_t to) {
  for (size_t i = 0; i < p->nflow; i++)
    if (p->flow[i].from == from && p->flow[i].to == to)
      return p->flow[i].bytes;
  return 0;
}

void prof_print_summary(const prof_t *p, FILE *out, unsigned top) {
  double secs = p->nsnap ? (double)p->t_ms[p->nsnap - 1] / 1000.0 : 0.0;
  fprintf(out,
          "%s: pid %ld, %zu snapshots over %.2f s (every %u ms), %zu "
          "thread heaps%s\n\n",
          p->path, p->pid, p->nsnap, secs, p->interval_ms, p->nthreads,
          p->has_final ? "" : " (partial: no final snapshot)");
  fprintf(out, "%-20s %5s %10s %10s %10s %6s %7s %21s %21s  %s\n", "thread",
          "heap", "peak live", "final live", "peak held", "spans", "refills",
          "remote out (blk/B)", "remote in (blk/B)", "top classes at peak");
  for (size_t i = 0; i < p->nthreads; i++) {
    const prof_thread_t *th = &p->threads[i];
    char a[32], b[32], c[32], so[32], ri[32], tops[160];
    char out_s[48], in_s[48];
    top_classes(p, th, top, tops, sizeof tops);
    snprintf(out_s, sizeof out_s, "%" PRIu64 " / %s", th->remote_sent,
             prof_bytes(th->remote_sent_bytes, so, sizeof so));
    snprintf(in_s, sizeof in_s, "%" PRIu64 " / %s", th->remote_received,
             prof_bytes(th->remote_received_bytes, ri, sizeof ri));
    fprintf(out,
            "%-20s %5" PRIu64 " %10s %10s %10s %6" PRIu64 " %7" PRIu64
            " %21s %21s  %s%s\n",
            th->label, th->heap_id, prof_bytes(th->peak_live, a, sizeof a),
            prof_bytes(th->final_live, b, sizeof b),
            prof_bytes(th->peak_held, c, sizeof c), th->spans, th->refills,
            out_s, in_s, tops, th->retired ? "  (exited)" : "");
  }
  uint64_t *ids = calloc(p->nthreads + 1, sizeof *ids);
  if (!ids)
    return;
  size_t n = flow_ids(p, ids);
  fprintf(out, "\nflow: bytes allocated by the row's thread and freed by "
               "the column's (final snapshot)\n");
  fprintf(out, "%-20s", "from \\ to");
  char buf[32];
  for (size_t j = 0; j < n; j++)
    if (ids[j] != 0)
      fprintf(out, " %12.12s", label_of(p, ids[j], buf, sizeof buf));
  fputc('\n', out);
  for (size_t i = 0; i < n; i++) {
    fprintf(out, "%-20.20s", label_of(p, ids[i], buf, sizeof buf));
    for (size_t j = 0; j < n; j++) {
      if (ids[j] == 0)
        continue;
      uint64_t bytes = flow_cell(p, ids[i], ids[j]);
      fprintf(out, " %12s", bytes ? prof_bytes(bytes, buf, sizeof buf) : ".");
    }
    fputc('\n', out);
  }
  free(ids);
}

void prof_print_html_tables(const prof_t *p, FILE *out, unsigned top) {
  char a[32], b[32], c[32], d[32], e[32], tops[160];
  fputs("<table><tr><th>thread</th><th>heap</th><th>peak live</th>"
        "<th>final live</th><th>peak held</th><th>spans</th><th>refills</th>"
        "<th>remote out</th><th>remote in</th><th>top classes at peak</th>"
        "</tr>\n",
        out);
  for (size_t i = 0; i < p->nthreads; i++) {
    const prof_thread_t *th = &p->threads[i];
    top_classes(p, th, top, tops, sizeof tops);
    fputs("<tr><td>", out);
    prof_xml_text(out, th->label);
    fprintf(out,
            "</td><td>%" PRIu64 "</td><td>%s</td><td>%s</td><td>%s</td>"
            "<td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
            " blocks, %s</td><td>%" PRIu64 " blocks, %s</td><td>%s</td></tr>\n",
            th->heap_id, prof_bytes(th->peak_live, a, sizeof a),
            prof_bytes(th->final_live, b, sizeof b),
            prof_bytes(th->peak_held, c, sizeof c), th->spans, th->refills,
            th->remote_sent, prof_bytes(th->remote_sent_bytes, d, sizeof d),
            th->remote_received,
            prof_bytes(th->remote_received_bytes, e, sizeof e), tops);
  }
  fputs("</table>\n", out);
}
