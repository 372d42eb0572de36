/* isle — MIT licensed. */
/*
 * isle-prof, run as a program on profiles: one made here by the sampler
 * from three named threads, and broken ones (truncated, malformed,
 * inconsistent, empty, missing). A good profile gives exit 0, a summary
 * naming every thread, and pictures that are well-formed XML with one
 * series per thread; a bad one gives a non-zero exit and a message saying
 * what is wrong and where.
 *
 * Well-formedness is checked by a small XML checker in this file (tags
 * balanced, attributes quoted, entities known, one root), itself tested on
 * malformed samples so that it is known to fail; xmllint, when installed,
 * checks the same files again.
 */
#define _GNU_SOURCE /* mkdtemp */

#include <ctype.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "isle/heap.h"
#include "tests/heap/support.h"

#ifndef ISLE_PROF_EXE
#error "the build gives the path of isle-prof"
#endif

static char tmpdir[256];
static char profile[512]; /* the good profile, made once */

/* ===== Running the tool ================================================= */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = '\0';
  fclose(f);
  return buf;
}

static void spit(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

typedef struct run_s {
  int status; /* exit status */
  char *out;  /* stdout, malloc'd */
  char *err;  /* stderr, malloc'd */
} run_t;

/* Runs isle-prof with `args` (shell words, already quoted as needed). */
static run_t run_prof(const char *args) {
  char out[600], err[600], cmd[2048];
  snprintf(out, sizeof out, "%s/stdout", tmpdir);
  snprintf(err, sizeof err, "%s/stderr", tmpdir);
  snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", ISLE_PROF_EXE, args, out,
           err);
  int rc = system(cmd);
  assert_true(rc != -1 && WIFEXITED(rc));
  run_t r = {WEXITSTATUS(rc), slurp(out), slurp(err)};
  assert_non_null(r.out);
  assert_non_null(r.err);
  return r;
}

static void run_free(run_t *r) {
  free(r->out);
  free(r->err);
}

/* A broken profile must be refused with a non-zero exit and a message
 * containing `expect`. */
static void assert_refused(const char *name, const char *text, size_t len,
                           const char *expect) {
  char path[600], args[700];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  spit(path, text, len);
  snprintf(args, sizeof args, "'%s'", path);
  run_t r = run_prof(args);
  if (r.status == 0 || !strstr(r.err, expect))
    fprintf(stderr, "%s: exit %d, stderr: %s(expected \"%s\")\n", name,
            r.status, r.err, expect);
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.err, expect));
  assert_non_null(strstr(r.err, "isle-prof: "));
  run_free(&r);
}

/* ===== A small XML well-formedness checker ============================== */

static bool name_start(char c) {
  return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool name_char(char c) {
  return name_start(c) || isdigit((unsigned char)c) || c == '-' || c == '.';
}

/* An entity or character reference at s ('&'); its length, or 0. */
static size_t entity(const char *s) {
  static const char *const known[] = {"&amp;", "&lt;", "&gt;", "&quot;",
                                      "&apos;"};
  for (size_t i = 0; i < 5; i++)
    if (strncmp(s, known[i], strlen(known[i])) == 0)
      return strlen(known[i]);
  if (s[1] != '#')
    return 0;
  size_t i = 2;
  bool hex = s[2] == 'x';
  if (hex)
    i++;
  size_t digits = 0;
  while (hex ? isxdigit((unsigned char)s[i]) : isdigit((unsigned char)s[i])) {
    i++;
    digits++;
  }
  return digits && s[i] == ';' ? i + 1 : 0;
}

/* Whether `s` is one well-formed XML element (an optional <!DOCTYPE> and
 * comments around it); on failure `why` says where. */
static bool xml_ok(const char *s, char *why, size_t len) {
  enum { DEPTH = 256 };
  const char *stack[DEPTH];
  size_t stack_len[DEPTH];
  size_t depth = 0, roots = 0;
  const char *p = s;
#define BAD(msg)                                                               \
  do {                                                                         \
    snprintf(why, len, "%s at byte %zu", msg, (size_t)(p - s));                \
    return false;                                                              \
  } while (0)
  while (*p) {
    if (*p != '<') {
      if (*p == '&') {
        size_t n = entity(p);
        if (!n)
          BAD("bad entity");
        p += n;
        continue;
      }
      if (depth == 0 && !isspace((unsigned char)*p))
        BAD("text outside the root element");
      p++;
      continue;
    }
    if (strncmp(p, "<!--", 4) == 0) {
      const char *e = strstr(p + 4, "-->");
      if (!e)
        BAD("unclosed comment");
      p = e + 3;
      continue;
    }
    if (strncmp(p, "<!DOCTYPE", 9) == 0) {
      if (depth || roots)
        BAD("DOCTYPE inside the document");
      const char *e = strchr(p, '>');
      if (!e)
        BAD("unclosed DOCTYPE");
      p = e + 1;
      continue;
    }
    if (p[1] == '/') {
      const char *n = p + 2, *e = n;
      while (name_char(*e))
        e++;
      if (depth == 0)
        BAD("end tag without a start tag");
      depth--;
      if ((size_t)(e - n) != stack_len[depth] ||
          strncmp(n, stack[depth], stack_len[depth]) != 0)
        BAD("end tag does not match the open element");
      while (isspace((unsigned char)*e))
        e++;
      if (*e != '>')
        BAD("unterminated end tag");
      p = e + 1;
      continue;
    }
    /* A start tag. */
    const char *n = p + 1, *e = n;
    if (!name_start(*e))
      BAD("'<' not starting a tag");
    while (name_char(*e))
      e++;
    if (depth == 0 && roots++)
      BAD("a second root element");
    p = e;
    for (;;) {
      bool space = false;
      while (isspace((unsigned char)*p)) {
        p++;
        space = true;
      }
      if (*p == '>' || (p[0] == '/' && p[1] == '>'))
        break;
      if (!space || !name_start(*p))
        BAD("bad attribute");
      while (name_char(*p))
        p++;
      if (*p++ != '=')
        BAD("attribute without '='");
      char q = *p++;
      if (q != '"' && q != '\'')
        BAD("unquoted attribute value");
      while (*p && *p != q) {
        if (*p == '<')
          BAD("'<' in an attribute value");
        if (*p == '&') {
          size_t k = entity(p);
          if (!k)
            BAD("bad entity in an attribute");
          p += k;
        } else {
          p++;
        }
      }
      if (*p++ != q)
        BAD("unclosed attribute value");
    }
    if (*p == '/') {
      p += 2; /* empty element */
      continue;
    }
    if (depth == DEPTH)
      BAD("nesting too deep");
    stack[depth] = n;
    stack_len[depth] = (size_t)(e - n);
    depth++;
    p++;
  }
  if (depth)
    BAD("unclosed element");
  if (roots != 1)
    BAD("no root element");
  return true;
#undef BAD
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

/* The checker must fail on malformed documents, or the picture tests
 * below prove nothing. */
static void test_isle_prof_xml_checker_rejects_malformed_documents(void **s) {
  static const char *const bad[] = {
      "<svg><g></svg>", "<svg><g></g>", "<a b=c/>", "<a b=\"c/>",
      "<a>&foo;</a>",   "<a>x < y</a>", "<a/><b/>", "text<a/>",
      "<a b=\"<\"/>",   "<a></b>",      "",
  };
  char why[128];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    bool ok = xml_ok(bad[i], why, sizeof why);
    if (ok)
      fprintf(stderr, "accepted: %s\n", bad[i]);
    assert_false(ok);
  }
  assert_true(xml_ok("<!DOCTYPE html>\n<a x=\"1\" y='&amp;'><b/>t &#8594; "
                     "&#x41;<!-- c --></a>\n",
                     why, sizeof why));
}

/* ===== The good profile ================================================= */

enum { BLOCKS = 2000 };

typedef struct prog_s {
  pthread_barrier_t made, freed;
  void *blocks[2][BLOCKS];
} prog_t;

typedef struct who_s {
  prog_t *pg;
  int index; /* 0, 1: producers; 2: consumer */
} who_t;

static void *worker(void *arg) {
  who_t *w = arg;
  static const char *const names[] = {"tool-p0", "tool-p1", "c<&\"x>"};
  isle_heap_set_thread_name(names[w->index]);
  if (w->index < 2)
    for (size_t i = 0; i < BLOCKS; i++)
      WORKER_CHECK((w->pg->blocks[w->index][i] =
                        isle_malloc(32 + 200 * (size_t)w->index)) != NULL);
  pthread_barrier_wait(&w->pg->made);
  usleep(20000); /* a few snapshots with everything live */
  if (w->index == 2) {
    for (size_t k = 0; k < 2; k++)
      for (size_t i = 0; i < BLOCKS; i++)
        isle_free(w->pg->blocks[k][i]);
    isle_heap_collect();
  }
  pthread_barrier_wait(&w->pg->freed);
  if (w->index < 2)
    isle_heap_collect();
  return NULL;
}

static int make_profile(void **state) {
  snprintf(profile, sizeof profile, "%s/good.jsonl", tmpdir);
  if (isle_profile_start(profile, 2) != 0)
    return -1;
  prog_t *pg = calloc(1, sizeof *pg);
  void *mine = isle_malloc(1000); /* the main thread takes part too */
  if (!pg || !mine)
    return -1;
  pthread_barrier_init(&pg->made, NULL, 3);
  pthread_barrier_init(&pg->freed, NULL, 3);
  pthread_t t[3];
  who_t w[3];
  for (int i = 0; i < 3; i++) {
    w[i] = (who_t){pg, i};
    pthread_create(&t[i], NULL, worker, &w[i]);
  }
  for (int i = 0; i < 3; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&pg->made);
  pthread_barrier_destroy(&pg->freed);
  free(pg);
  isle_free(mine);
  return isle_profile_stop();
}

/* The heap ids of every thread in the profile (all snapshots). */
static size_t profile_heaps(uint64_t *ids, size_t max) {
  FILE *f = fopen(profile, "r");
  assert_non_null(f);
  char *line = NULL;
  size_t cap = 0, n = 0;
  while (getline(&line, &cap, f) >= 0) {
    json_t *v = json_loads(line, 0, NULL);
    assert_non_null(v);
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(v, "threads"), i, t) {
      uint64_t id = (uint64_t)json_integer_value(json_object_get(t, "heap"));
      bool seen = false;
      for (size_t k = 0; k < n; k++)
        seen |= ids[k] == id;
      if (!seen && n < max)
        ids[n++] = id;
    }
    json_decref(v);
  }
  free(line);
  fclose(f);
  return n;
}

/* ===== A good profile =================================================== */

static void test_isle_prof_summarises_a_profile(void **state) {
  char args[700];
  snprintf(args, sizeof args, "--top 2 '%s'", profile);
  run_t r = run_prof(args);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.err, "");
  assert_non_null(strstr(r.out, "tool-p0"));
  assert_non_null(strstr(r.out, "tool-p1"));
  assert_non_null(strstr(r.out, "c<&\"x>"));
  assert_non_null(strstr(r.out, "main"));
  assert_non_null(strstr(r.out, "flow:"));
  /* tool-p0's blocks were freed by the consumer: 2000 blocks out there. */
  assert_non_null(strstr(r.out, "4000 / "));
  run_free(&r);
}

static void
test_isle_prof_pictures_are_well_formed_with_a_series_per_thread(void **state) {
  char dir[600], args[1400];
  snprintf(dir, sizeof dir, "%s/pictures", tmpdir);
  snprintf(args, sizeof args, "-o '%s' '%s'", dir, profile);
  run_t r = run_prof(args);
  assert_int_equal(r.status, 0);
  run_free(&r);
  uint64_t ids[256];
  size_t nids = profile_heaps(ids, 256);
  assert_true(nids >= 4);
  static const char *const files[] = {"memory.svg", "classes.svg", "flow.svg",
                                      "report.html"};
  bool xmllint = system("command -v xmllint >/dev/null 2>&1") == 0;
  for (size_t f = 0; f < 4; f++) {
    char path[700], why[128];
    snprintf(path, sizeof path, "%s/%s", dir, files[f]);
    char *doc = slurp(path);
    assert_non_null(doc);
    if (!xml_ok(doc, why, sizeof why))
      fprintf(stderr, "%s: %s\n", path, why);
    assert_true(xml_ok(doc, why, sizeof why));
    if (xmllint) {
      char cmd[800];
      snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", path);
      assert_int_equal(system(cmd), 0);
    }
    /* One series per thread of the profile, each named by its heap id
     * (the report holds the three pictures). */
    size_t pictures = f == 3 ? 3 : 1;
    assert_int_equal(count(doc, "<g class=\"series\""), nids * pictures);
    for (size_t i = 0; i < nids; i++) {
      char needle[64];
      snprintf(needle, sizeof needle,
               "<g class=\"series\" data-heap=\"%" PRIu64 "\">", ids[i]);
      assert_int_equal(count(doc, needle), pictures);
    }
    /* The odd name arrives escaped. */
    assert_non_null(strstr(doc, "c&lt;&amp;&quot;x&gt;"));
    free(doc);
  }
}

static void test_isle_prof_rejects_an_unwritable_picture_folder(void **s) {
  char file[600], args[1400];
  snprintf(file, sizeof file, "%s/a-file", tmpdir);
  spit(file, "x", 1);
  snprintf(args, sizeof args, "-o '%s/sub' '%s'", file, profile);
  run_t r = run_prof(args);
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.err, "a-file/sub"));
  run_free(&r);
}

/* ===== Broken profiles ================================================== */

static void test_isle_prof_rejects_a_truncated_last_line(void **state) {
  char *text = slurp(profile);
  assert_non_null(text);
  size_t len = strlen(text);
  /* Cut the final snapshot in the middle. */
  const char *last = text + len - 2;
  while (last > text && *last != '\n')
    last--;
  size_t cut = (size_t)(last - text) + (len - (size_t)(last - text)) / 2;
  assert_refused("truncated.jsonl", text, cut, "truncated");
  free(text);
}

static void test_isle_prof_wants_the_final_snapshot_unless_partial(void **s) {
  char *text = slurp(profile);
  assert_non_null(text);
  size_t len = strlen(text);
  const char *last = text + len - 2;
  while (last > text && *last != '\n')
    last--;
  size_t cut = (size_t)(last - text) + 1; /* whole lines, final dropped */
  assert_refused("no-final.jsonl", text, cut, "no final snapshot");
  char args[700];
  snprintf(args, sizeof args, "--partial '%s/no-final.jsonl'", tmpdir);
  run_t r = run_prof(args);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "partial"));
  run_free(&r);
  free(text);
}

static void test_isle_prof_rejects_malformed_json_naming_the_line(void **s) {
  char *text = slurp(profile);
  assert_non_null(text);
  /* Garbage as the third line. */
  char *second_end = strchr(strchr(text, '\n') + 1, '\n');
  assert_non_null(second_end);
  size_t head = (size_t)(second_end - text) + 1;
  size_t len = strlen(text);
  char *bad = malloc(len + 32);
  assert_non_null(bad);
  memcpy(bad, text, head);
  const char *junk = "{\"seq\": oops}\n";
  memcpy(bad + head, junk, strlen(junk));
  memcpy(bad + head + strlen(junk), text + head, len - head);
  assert_refused("junk.jsonl", bad, len + strlen(junk), ":3: malformed JSON");
  free(bad);
  free(text);
}

#define HEADER                                                                 \
  "{\"isle_profile\":1,\"pid\":1,\"interval_ms\":10,\"start_unix_ms\":0,"      \
  "\"class_sizes\":[16,32]}\n"
#define THREAD(live, classes)                                                  \
  "{\"heap\":1,\"tid\":5,\"name\":\"main\",\"retired\":false,"                 \
  "\"live_bytes\":" live ",\"live_objects\":1,\"large_live_bytes\":0,"         \
  "\"large_live_objects\":0,\"held_bytes\":0,\"peak_held_bytes\":0,"           \
  "\"spans\":0,\"refills\":0,\"os_refills\":0,\"spans_returned\":0,"           \
  "\"spans_adopted\":0,\"os_returned_bytes\":0,\"remote_sent\":0,"             \
  "\"remote_sent_bytes\":0,\"remote_batches\":0,\"remote_received\":0,"        \
  "\"remote_received_bytes\":0,\"classes\":" classes "}"
#define SNAP(seq, final, threads, flow)                                        \
  "{\"seq\":" seq ",\"t_ms\":1,\"final\":" final ",\"threads\":" threads       \
  ",\"flow\":" flow ",\"global\":{}}\n"

static void refuse(const char *name, const char *text, const char *expect) {
  assert_refused(name, text, strlen(text), expect);
}

static void test_isle_prof_rejects_wrong_shapes_and_values(void **state) {
  /* The hand-made good one is accepted: the others differ in one thing. */
  const char *good =
      HEADER SNAP("0", "true", "[" THREAD("32", "[[32,1,32]]") "]",
                  "[{\"from\":1,\"to\":1,\"bytes\":32,\"blocks\":1}]");
  char path[600], args[700];
  snprintf(path, sizeof path, "%s/good-by-hand.jsonl", tmpdir);
  spit(path, good, strlen(good));
  snprintf(args, sizeof args, "'%s'", path);
  run_t r = run_prof(args);
  assert_int_equal(r.status, 0);
  run_free(&r);

  refuse("empty.jsonl", "", "empty file");
  refuse("no-header.jsonl", SNAP("0", "true", "[]", "[]"),
         ":1: not an isle profile");
  refuse("version.jsonl",
         "{\"isle_profile\":2,\"pid\":1,\"interval_ms\":1,"
         "\"class_sizes\":[16]}\n",
         "version 2");
  refuse("header-only.jsonl", HEADER, "no snapshot");
  refuse("threads-not-array.jsonl", HEADER SNAP("0", "true", "5", "[]"),
         ":2: snapshot field \"threads\"");
  refuse("seq-gap.jsonl",
         HEADER SNAP("0", "false", "[]", "[]") SNAP("2", "true", "[]", "[]"),
         ":3: snapshot seq 2");
  refuse("after-final.jsonl",
         HEADER SNAP("0", "true", "[]", "[]") SNAP("1", "true", "[]", "[]"),
         "follows the final");
  refuse("sums.jsonl",
         HEADER SNAP("0", "true", "[" THREAD("99", "[[32,1,32]]") "]", "[]"),
         "live_bytes 99 is not its classes");
  refuse("unknown-class.jsonl",
         HEADER SNAP("0", "true", "[" THREAD("48", "[[48,1,48]]") "]", "[]"),
         "class size 48");
  refuse("negative.jsonl",
         HEADER SNAP("0", "true", "[" THREAD("-1", "[]") "]", "[]"),
         "\"live_bytes\" is not a non-negative integer");
  refuse("flow-shape.jsonl",
         HEADER SNAP("0", "true", "[]", "[{\"from\":1,\"to\":2}]"),
         "flow entry has no field \"bytes\"");
  refuse("not-object.jsonl", HEADER "[1,2]\n", "not a JSON object");
}

static void test_isle_prof_reports_a_missing_file_and_bad_usage(void **s) {
  run_t r = run_prof("/nonexistent/profile.jsonl");
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.err, "cannot open"));
  run_free(&r);
  r = run_prof("");
  assert_int_equal(r.status, 2);
  assert_non_null(strstr(r.err, "usage"));
  run_free(&r);
  r = run_prof("--top x a.jsonl");
  assert_int_equal(r.status, 2);
  run_free(&r);
  r = run_prof("--help");
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "usage"));
  run_free(&r);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/isle-test-prof-XXXXXX",
           base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("test_isle_prof: mkdtemp");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_isle_prof_xml_checker_rejects_malformed_documents),
      cmocka_unit_test(test_isle_prof_summarises_a_profile),
      cmocka_unit_test(
          test_isle_prof_pictures_are_well_formed_with_a_series_per_thread),
      cmocka_unit_test(test_isle_prof_rejects_an_unwritable_picture_folder),
      cmocka_unit_test(test_isle_prof_rejects_a_truncated_last_line),
      cmocka_unit_test(test_isle_prof_wants_the_final_snapshot_unless_partial),
      cmocka_unit_test(test_isle_prof_rejects_malformed_json_naming_the_line),
      cmocka_unit_test(test_isle_prof_rejects_wrong_shapes_and_values),
      cmocka_unit_test(test_isle_prof_reports_a_missing_file_and_bad_usage),
  };
  int failed = cmocka_run_group_tests(tests, make_profile, NULL);
  if (failed == 0) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      fprintf(stderr, "test_isle_prof: could not remove %s\n", tmpdir);
  }
  return failed;
}
