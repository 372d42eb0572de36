/* isle — MIT licensed. */
/*
 * The pictures, as SVG written by hand (no library: three charts of lines,
 * bars and squares). Each is one <svg> element, readable alone (.svg
 * files) or inline in the HTML report, with one <g class="series"> per
 * thread carrying data-heap="id" and a <title> that browsers show on hover.
 *
 * - memory: live bytes of each thread heap over time, one line each.
 * - classes: for each thread, live bytes per size class at its peak.
 * - flow: the flow matrix as a heat map, rows allocating, columns freeing,
 *   colour on a log scale so a small flow still shows beside a big one.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prof.h"

/* Tableau's ten: distinct and readable on white. */
static const char *const palette[] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define PALETTE_N (sizeof palette / sizeof palette[0])

/* A line past this many points is thinned to the maximum of each run of
 * snapshots, which keeps peaks where a plain stride would lose them. */
#define MAX_POINTS 1200

void prof_xml_text(FILE *out, const char *text) {
  for (const unsigned char *s = (const unsigned char *)text; *s; s++) {
    switch (*s) {
    case '&':
      fputs("&amp;", out);
      break;
    case '<':
      fputs("&lt;", out);
      break;
    case '>':
      fputs("&gt;", out);
      break;
    case '"':
      fputs("&quot;", out);
      break;
    case '\'':
      fputs("&apos;", out);
      break;
    default:
      fputc(*s < 0x20 ? '?' : *s, out);
    }
  }
}

static void svg_open(FILE *out, int w, int h, const char *title) {
  fprintf(out,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
          "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
          "font-size=\"12\">\n<rect width=\"%d\" height=\"%d\" "
          "fill=\"white\"/>\n<text x=\"%d\" y=\"22\" font-size=\"15\" "
          "text-anchor=\"middle\">",
          w, h, w, h, w, h, w / 2);
  prof_xml_text(out, title);
  fputs("</text>\n", out);
}

/* ===== Memory over time ================================================= */

void prof_svg_memory(const prof_t *p, FILE *out) {
  const int w = 960, left = 80, right = 210, top = 40, bottom = 50;
  int h = 480;
  int pw = w - left - right, ph = h - top - bottom;
  uint64_t tmax = p->nsnap ? p->t_ms[p->nsnap - 1] : 0;
  if (tmax == 0)
    tmax = 1;
  uint64_t ymax = 0;
  for (size_t i = 0; i < p->nthreads; i++)
    if (p->threads[i].peak_live > ymax)
      ymax = p->threads[i].peak_live;
  ymax = ymax ? ymax + ymax / 20 : 1024;
  svg_open(out, w, h, "Live bytes per thread heap over time");
  /* Axes and grid. */
  fprintf(out,
          "<g class=\"axes\" stroke=\"#999\">"
          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/></g>\n",
          left, top, left, top + ph, left, top + ph, left + pw, top + ph);
  char buf[32];
  for (int k = 0; k <= 4; k++) {
    double y = top + ph - (double)ph * k / 4.0;
    uint64_t v = (uint64_t)((double)ymax * k / 4.0);
    fprintf(out,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
            "stroke=\"#eee\"/><text x=\"%d\" y=\"%.1f\" "
            "text-anchor=\"end\">%s</text>\n",
            left, y, left + pw, y, left - 6, y + 4,
            prof_bytes(v, buf, sizeof buf));
    double x = left + (double)pw * k / 4.0;
    fprintf(out,
            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.2f s</text>\n",
            x, top + ph + 18, (double)tmax * k / 4.0 / 1000.0);
  }
  fprintf(out,
          "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time since the "
          "profile started</text>\n",
          left + pw / 2, h - 8);
  size_t stride = (p->nsnap + MAX_POINTS - 1) / MAX_POINTS;
  if (stride == 0)
    stride = 1;
  for (size_t i = 0; i < p->nthreads; i++) {
    const prof_thread_t *th = &p->threads[i];
    const char *colour = palette[i % PALETTE_N];
    fprintf(out, "<g class=\"series\" data-heap=\"%" PRIu64 "\"><title>",
            th->heap_id);
    prof_xml_text(out, th->label);
    fprintf(out,
            "</title><polyline fill=\"none\" stroke=\"%s\" "
            "stroke-width=\"1.5\" points=\"",
            colour);
    for (size_t s = 0; s < p->nsnap; s += stride) {
      uint64_t v = 0;
      size_t at = s;
      for (size_t k = s; k < s + stride && k < p->nsnap; k++)
        if (th->live[k] >= v) {
          v = th->live[k];
          at = k;
        }
      double x = left + (double)pw * (double)p->t_ms[at] / (double)tmax;
      double y = top + ph - (double)ph * (double)v / (double)ymax;
      fprintf(out, "%s%.1f,%.1f", s ? " " : "", x, y);
    }
    fputs("\"/></g>\n", out);
  }
  /* Legend: as many entries as fit, then a count of the rest. */
  int lx = left + pw + 16, per = 18, fit = (ph - per) / per;
  fputs("<g class=\"legend\">\n", out);
  for (size_t i = 0; i < p->nthreads; i++) {
    if ((int)i == fit) {
      fprintf(out, "<text x=\"%d\" y=\"%d\">+%zu more</text>\n", lx,
              top + per * fit + 12, p->nthreads - i);
      break;
    }
    int y = top + per * (int)i;
    fprintf(out,
            "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" "
            "fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
            lx, y, palette[i % PALETTE_N], lx + 18, y + 11);
    prof_xml_text(out, p->threads[i].label);
    fprintf(out, " (%s)</text>\n",
            prof_bytes(p->threads[i].peak_live, buf, sizeof buf));
  }
  fputs("</g>\n</svg>\n", out);
}

/* ===== Size classes per thread ========================================== */

void prof_svg_classes(const prof_t *p, FILE *out) {
  /* Columns: every class live at some thread's peak, then large blocks. */
  int cols[PROF_MAX_CLASSES + 1];
  int ncols = 0;
  bool any_large = false;
  for (size_t c = 0; c < p->nclasses; c++)
    for (size_t i = 0; i < p->nthreads; i++)
      if (p->threads[i].peak_classes[c]) {
        cols[ncols++] = (int)c;
        break;
      }
  for (size_t i = 0; i < p->nthreads; i++)
    if (p->threads[i].peak_large)
      any_large = true;
  if (any_large)
    cols[ncols++] = -1;
  const int w = 960, left = 180, right = 20, top = 40, panel = 90, gap = 14;
  const int bottom = 70;
  int pw = w - left - right;
  int h = top + (int)p->nthreads * (panel + gap) + bottom;
  svg_open(out, w, h, "Live bytes per size class, each thread at its peak");
  double bw = ncols ? (double)pw / ncols : pw;
  char buf[32];
  for (size_t i = 0; i < p->nthreads; i++) {
    const prof_thread_t *th = &p->threads[i];
    int y0 = top + (int)i * (panel + gap);
    uint64_t vmax = 0;
    for (int k = 0; k < ncols; k++) {
      uint64_t v = cols[k] < 0 ? th->peak_large : th->peak_classes[cols[k]];
      if (v > vmax)
        vmax = v;
    }
    fprintf(out, "<g class=\"series\" data-heap=\"%" PRIu64 "\"><title>",
            th->heap_id);
    prof_xml_text(out, th->label);
    fprintf(out,
            "</title><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
            "fill=\"none\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%d\" "
            "text-anchor=\"end\">",
            left, y0, pw, panel, left - 8, y0 + panel / 2);
    prof_xml_text(out, th->label);
    fprintf(out,
            "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\" "
            "fill=\"#666\">peak %s at %.2f s</text>\n",
            left - 8, y0 + panel / 2 + 15,
            prof_bytes(th->peak_live, buf, sizeof buf),
            p->nsnap ? (double)p->t_ms[th->peak_at] / 1000.0 : 0.0);
    for (int k = 0; k < ncols && vmax; k++) {
      uint64_t v = cols[k] < 0 ? th->peak_large : th->peak_classes[cols[k]];
      if (!v)
        continue;
      double bh = (double)(panel - 4) * (double)v / (double)vmax;
      fprintf(out,
              "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
              "fill=\"%s\"><title>%s: %s</title></rect>\n",
              left + k * bw + 1, y0 + panel - bh, bw > 3 ? bw - 2 : bw, bh,
              palette[i % PALETTE_N], cols[k] < 0 ? "large" : "class",
              prof_bytes(v, buf, sizeof buf));
    }
    fputs("</g>\n", out);
  }
  /* Class labels once, under the last panel. */
  int ly = top + (int)p->nthreads * (panel + gap) + 4;
  for (int k = 0; k < ncols; k++) {
    double x = left + k * bw + bw / 2;
    if (cols[k] < 0)
      fprintf(out,
              "<text x=\"%.1f\" y=\"%d\" text-anchor=\"end\" "
              "transform=\"rotate(-60 %.1f %d)\">large</text>\n",
              x, ly, x, ly);
    else
      fprintf(out,
              "<text x=\"%.1f\" y=\"%d\" text-anchor=\"end\" "
              "transform=\"rotate(-60 %.1f %d)\">%" PRIu64 "</text>\n",
              x, ly, x, ly, p->class_size[cols[k]]);
  }
  if (ncols == 0)
    fprintf(out,
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">no block was "
            "live at any snapshot</text>\n",
            w / 2, ly + 10);
  fputs("</svg>\n", out);
}

/* ===== Flow heat map ==================================================== */

static void flow_colour(double t, char *buf, size_t len) {
  /* White to dark red. */
  int r = (int)(255 - t * (255 - 165)), g = (int)(255 - t * 255),
      b = (int)(255 - t * (255 - 38));
  snprintf(buf, len, "#%02x%02x%02x", r, g, b);
}

void prof_svg_flow(const prof_t *p, FILE *out) {
  size_t n = 0;
  uint64_t *ids = calloc(p->nthreads + 1, sizeof *ids);
  if (!ids)
    return;
  for (size_t i = 0; i < p->nflow; i++)
    if (p->flow[i].from == 0) {
      ids[n++] = 0;
      break;
    }
  size_t first_thread = n;
  for (size_t i = 0; i < p->nthreads; i++)
    ids[n++] = p->threads[i].heap_id;
  size_t ncols = n - first_thread;
  int cell = n ? 600 / (int)n : 60;
  cell = cell > 60 ? 60 : cell < 14 ? 14 : cell;
  const int left = 180, top = 170;
  int w = left + (int)ncols * cell + 40, h = top + (int)n * cell + 60;
  if (w < 640)
    w = 640; /* room for the title */
  svg_open(out, w, h,
           "Flow: bytes allocated by the row's thread, freed by the "
           "column's");
  uint64_t vmax = 0;
  for (size_t i = 0; i < p->nflow; i++)
    if (p->flow[i].bytes > vmax)
      vmax = p->flow[i].bytes;
  double lmax = log1p((double)vmax);
  char buf[32], colour[16];
  /* Column labels: the freeing threads. */
  for (size_t j = 0; j < ncols; j++) {
    const prof_thread_t *th = prof_thread(p, ids[first_thread + j]);
    double x = left + (double)j * cell + cell / 2.0;
    fprintf(out, "<text x=\"%.1f\" y=\"%d\" transform=\"rotate(-45 %.1f %d)\">",
            x, top - 6, x, top - 6);
    prof_xml_text(out, th->label);
    fputs("</text>\n", out);
  }
  fprintf(out,
          "<text x=\"%d\" y=\"%d\" fill=\"#666\">freed by &#8594;</text>\n",
          left, 44);
  for (size_t i = 0; i < n; i++) {
    const prof_thread_t *row = ids[i] ? prof_thread(p, ids[i]) : NULL;
    const char *label = row ? row->label : "(owner exited)";
    int y = top + (int)i * cell;
    if (row)
      fprintf(out, "<g class=\"series\" data-heap=\"%" PRIu64 "\"><title>",
              ids[i]);
    else
      fputs("<g class=\"other\"><title>", out);
    prof_xml_text(out, label);
    fprintf(out, "</title><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
            left - 8, y + cell / 2.0 + 4);
    prof_xml_text(out, label);
    fputs("</text>\n", out);
    for (size_t j = 0; j < ncols; j++) {
      uint64_t to = ids[first_thread + j], bytes = 0, blocks = 0;
      for (size_t k = 0; k < p->nflow; k++)
        if (p->flow[k].from == ids[i] && p->flow[k].to == to) {
          bytes = p->flow[k].bytes;
          blocks = p->flow[k].blocks;
        }
      double t = lmax > 0 ? log1p((double)bytes) / lmax : 0.0;
      flow_colour(t, colour, sizeof colour);
      int x = left + (int)j * cell;
      fprintf(out,
              "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
              "fill=\"%s\" stroke=\"#ccc\"><title>",
              x, y, cell, cell, colour);
      prof_xml_text(out, label);
      fputs(" &#8594; ", out);
      prof_xml_text(out, prof_thread(p, to)->label);
      fprintf(out, ": %s in %" PRIu64 " blocks</title></rect>\n",
              prof_bytes(bytes, buf, sizeof buf), blocks);
      if (bytes && cell >= 44)
        fprintf(out,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                "font-size=\"9\" fill=\"%s\">%s</text>\n",
                x + cell / 2.0, y + cell / 2.0 + 3, t > 0.6 ? "white" : "black",
                prof_bytes(bytes, buf, sizeof buf));
    }
    fputs("</g>\n", out);
  }
  fprintf(out,
          "<text x=\"%d\" y=\"%d\" fill=\"#666\">rows: allocated by; colour: "
          "log scale up to %s</text>\n",
          left, h - 20, prof_bytes(vmax, buf, sizeof buf));
  fputs("</svg>\n", out);
  free(ids);
}
