/* isle — MIT licensed. */
/*
 * isle-prof: the command line. Reads a profile written by isle's sampler
 * (ISLE_PROFILE=path or isle_profile_start), prints the summary tables,
 * and with -o DIR writes the pictures: DIR/memory.svg, DIR/classes.svg,
 * DIR/flow.svg and DIR/report.html (the tables and the three pictures in
 * one page). Exit status: 0, 1 for a bad or unreadable profile or a
 * picture that could not be written, 2 for bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h> /* mkdir */

#include "prof.h"

static void usage(FILE *out) {
  fputs("usage: isle-prof [-o DIR] [--top N] [--partial] PROFILE\n"
        "  Prints per-thread heap figures from an isle profile (JSON lines\n"
        "  written with ISLE_PROFILE=PROFILE) and the thread-to-thread flow.\n"
        "  -o DIR      also write memory.svg, classes.svg, flow.svg and\n"
        "              report.html into DIR (created if missing)\n"
        "  --top N     size classes listed per thread (default 3)\n"
        "  --partial   read a profile without its final snapshot\n",
        out);
}

typedef void (*picture_fn)(const prof_t *, FILE *);

/* Writes one picture to DIR/NAME; returns 0 or -1 with a message. */
static int write_picture(const prof_t *p, const char *dir, const char *name,
                         picture_fn draw) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "isle-prof: %s: %s\n", path, strerror(errno));
    return -1;
  }
  draw(p, f);
  if (ferror(f) | fclose(f)) {
    fprintf(stderr, "isle-prof: %s: write failed\n", path);
    return -1;
  }
  return 0;
}

static void report_html(const prof_t *p, FILE *f, unsigned top) {
  fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"/>"
        "<title>isle profile</title><style>body{font-family:sans-serif}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;text-align:right}</style></head><body>\n<h1>",
        f);
  prof_xml_text(f, p->path);
  fputs("</h1>\n", f);
  prof_print_html_tables(p, f, top);
  prof_svg_memory(p, f);
  prof_svg_classes(p, f);
  prof_svg_flow(p, f);
  fputs("</body></html>\n", f);
}

static unsigned html_top;
static void report_html_default(const prof_t *p, FILE *f) {
  report_html(p, f, html_top);
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"partial", no_argument, NULL, 'p'},
      {"top", required_argument, NULL, 't'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *dir = NULL;
  bool partial = false;
  unsigned top = 3;
  int opt;
  while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'o':
      dir = optarg;
      break;
    case 'p':
      partial = true;
      break;
    case 't': {
      char *end = NULL;
      unsigned long v = strtoul(optarg, &end, 10);
      if (end == optarg || *end || v > 20) {
        fprintf(stderr, "isle-prof: --top wants a number 0..20\n");
        return 2;
      }
      top = (unsigned)v;
      break;
    }
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  prof_t p;
  memset(&p, 0, sizeof p);
  char err[512];
  if (prof_load(&p, argv[optind], partial, err, sizeof err) != 0) {
    fprintf(stderr, "isle-prof: %s\n", err);
    prof_free(&p);
    return 1;
  }
  prof_print_summary(&p, stdout, top);
  int rc = 0;
  if (dir) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
      fprintf(stderr, "isle-prof: %s: %s\n", dir, strerror(errno));
      prof_free(&p);
      return 1;
    }
    html_top = top;
    if (write_picture(&p, dir, "memory.svg", prof_svg_memory) ||
        write_picture(&p, dir, "classes.svg", prof_svg_classes) ||
        write_picture(&p, dir, "flow.svg", prof_svg_flow) ||
        write_picture(&p, dir, "report.html", report_html_default))
      rc = 1;
    else
      printf("\npictures: %s/memory.svg, %s/classes.svg, %s/flow.svg, "
             "%s/report.html\n",
             dir, dir, dir, dir);
  }
  if (fflush(stdout) != 0) {
    fprintf(stderr, "isle-prof: cannot write the summary\n");
    rc = 1;
  }
  prof_free(&p);
  return rc;
}
