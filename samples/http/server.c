/* isle — MIT licensed. */
/*
 * http: an HTTP/1.1 server, one actor per connection.
 *
 *   samples/http [--port N] [--host ADDR] [--workers N] [--max-conns N]
 *                [--max-output BYTES] [--read-size BYTES] [--idle-ms MS]
 *                [--max-header BYTES] [--max-body BYTES]
 *
 *   GET /       200 "Hello, World!"
 *   GET /stats  the runtime's and every thread heap's figures, as JSON
 *   other paths 404; other methods on these paths 405 (with Allow);
 *   bad requests 400, 413 (body over --max-body), 431 (head over
 *   --max-header), 501 (Transfer-Encoding), 505; then the connection is
 *   closed.
 *
 * Keep-alive and pipelining: the connection actor parses every complete
 * request in what it has received, answers them in order with one write,
 * and keeps the unfinished tail for the next read. The protocol itself is
 * in http_parse.c (tests/samples, fuzz/).
 */
#include <isle.h>
#include <stdio.h>
#include <string.h>

#include "../server_common.h"
#include "http_parse.h"

#define MAX_FIELDS 64
/* An input or output buffer that grew past this for one large burst
 * (pipelined requests, a body) is freed once empty, not kept: else every
 * keep-alive connection would hold the largest burst it ever saw. */
#define KEEP_BYTES (64 * 1024)

static http_limits_t limits;

typedef struct conn_s {
  isle_conn_t conn;
  http_parser_t parser;
  char *in; /* received bytes not yet consumed (isle_malloc) */
  size_t in_len, in_cap;
  char *out; /* responses of this read, written at its end */
  size_t out_len, out_cap;
  bool closing, closed;
} conn_t;

/* ----- Buffers ----------------------------------------------------------- */

static bool reserve(char **buf, size_t *cap, size_t need) {
  if (need <= *cap)
    return true;
  size_t n = *cap ? *cap : 1024;
  while (n < need)
    n *= 2;
  char *p = isle_realloc(*buf, n);
  if (!p)
    return false;
  *buf = p;
  *cap = n;
  return true;
}

/* Frees *buf if it is empty and larger than KEEP_BYTES. */
static void trim(char **buf, size_t len, size_t *cap) {
  if (len == 0 && *cap > KEEP_BYTES) {
    isle_free(*buf);
    *buf = NULL;
    *cap = 0;
  }
}

/* Appends n bytes to the output of this read. */
static bool out_add_bytes(conn_t *c, const char *p, size_t n) {
  if (!reserve(&c->out, &c->out_cap, c->out_len + n))
    return false;
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  return true;
}

/* ----- /stats ------------------------------------------------------------ */

/* The figures as JSON into `b` (a scratch buffer); its length. */
static size_t stats_json(isle_runtime_t *rt, char **b, size_t *cap) {
  size_t n;
  isle_heap_stats_t *hs = server_heap_stats(&n); /* a stats request is rare */
  if (!hs)
    return 0;
  isle_runtime_stats_t st;
  isle_runtime_stats(rt, &st);
  isle_io_stats_t io;
  isle_io_stats(rt, &io);
  size_t len = 0;
  for (int pass = 0; pass < 2; pass++) {
    char *p = pass ? *b : NULL;
    size_t room = pass ? *cap : 0;
#define PUT(...)                                                               \
  len += (size_t)snprintf(p ? p + len : NULL, p ? room - len : 0, __VA_ARGS__)
    len = 0;
    PUT("{\"runtime\":{\"workers\":%u,\"actors_live\":%llu,\"messages\":%llu,"
        "\"tcp_accepted\":%llu,\"tcp_open\":%llu,\"tcp_refused\":%llu},"
        "\"threads\":[",
        st.workers, (unsigned long long)st.actors_live,
        (unsigned long long)st.messages, (unsigned long long)io.tcp_accepted,
        (unsigned long long)io.tcp_open, (unsigned long long)io.tcp_refused);
    for (size_t i = 0; i < n; i++)
      PUT("%s{\"name\":\"%s\",\"retired\":%s,\"live_bytes\":%llu,"
          "\"live_objects\":%llu,\"held_bytes\":%llu,\"refills\":%llu,"
          "\"remote_frees_sent\":%llu,\"remote_frees_received\":%llu}",
          i ? "," : "", hs[i].name[0] ? hs[i].name : "?",
          hs[i].retired ? "true" : "false",
          (unsigned long long)hs[i].live_bytes,
          (unsigned long long)hs[i].live_objects,
          (unsigned long long)hs[i].held_bytes,
          (unsigned long long)hs[i].refills,
          (unsigned long long)hs[i].remote_frees_sent,
          (unsigned long long)hs[i].remote_frees_received);
    PUT("]}\n");
#undef PUT
    if (pass == 0 && !reserve(b, cap, len + 1)) {
      len = 0;
      break;
    }
  }
  isle_free(hs);
  return len;
}

/* ----- Requests ---------------------------------------------------------- */

/* Appends the response to `req`; false when out of memory. */
static bool respond(isle_ctx_t *ctx, conn_t *c, const http_request_t *req) {
  http_route_t route = http_route(req);
  if (route == HTTP_ROUTE_STATS) {
    static _Thread_local char *json;
    static _Thread_local size_t json_cap;
    size_t n = stats_json(isle_ctx_runtime(ctx), &json, &json_cap);
    if (!n)
      return false;
    size_t len = http_response_write(NULL, 0, 200, "application/json", json, n,
                                     req->keep_alive, NULL,
                                     req->method_id == HTTP_METHOD_HEAD);
    if (!reserve(&c->out, &c->out_cap, c->out_len + len))
      return false;
    c->out_len += http_response_write(
        c->out + c->out_len, len, 200, "application/json", json, n,
        req->keep_alive, NULL, req->method_id == HTTP_METHOD_HEAD);
    return true;
  }
  size_t len = http_respond(req, route, NULL, 0);
  if (!reserve(&c->out, &c->out_cap, c->out_len + len))
    return false;
  c->out_len += http_respond(req, route, c->out + c->out_len, len);
  return true;
}

/* Writes what this read produced, as one message. */
static void flush(isle_ctx_t *ctx, conn_t *c) {
  if (!c->out_len)
    return;
  isle_runtime_t *rt = isle_ctx_runtime(ctx);
  int rc = server_write(rt, c->conn, c->out, c->out_len);
  c->out_len = 0;
  trim(&c->out, c->out_len, &c->out_cap);
  if (rc) { /* not reading its answers (EFULL), or no memory: give up */
    isle_tcp_close(rt, c->conn, false);
    c->closing = true;
  }
}

/* Parses and answers every complete request in buf[0..len); returns how
 * many bytes were consumed. Sets c->closing when the connection must end
 * after the answers. */
static size_t serve(isle_ctx_t *ctx, conn_t *c, const char *buf, size_t len) {
  size_t used = 0;
  http_header_t fields[MAX_FIELDS];
  while (!c->closing && used < len) {
    http_request_t req = {.headers = fields, .headers_cap = MAX_FIELDS};
    int n =
        http_parse_request(&c->parser, buf + used, len - used, &limits, &req);
    if (n == HTTP_PARSE_INCOMPLETE) {
      if (http_parser_take_continue(&c->parser))
        out_add_bytes(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
      break;
    }
    if (n < 0) {
      char err[256];
      size_t e = http_respond_error(-n, err, sizeof err);
      out_add_bytes(c, err, e < sizeof err ? e : 0);
      c->closing = true;
      used = len;
      break;
    }
    used += (size_t)n;
    if (!respond(ctx, c, &req))
      c->closing = true;
    else if (!req.keep_alive)
      c->closing = true;
  }
  return used;
}

static void on_data(isle_ctx_t *ctx, conn_t *c, const char *p, size_t n) {
  size_t used;
  if (c->in_len == 0) {
    used = serve(ctx, c, p, n); /* most reads hold whole requests */
    p += used;
    n -= used;
    if (n && !c->closing) {
      if (!reserve(&c->in, &c->in_cap, n)) {
        c->closing = true;
      } else {
        memcpy(c->in, p, n);
        c->in_len = n;
      }
    }
  } else if (!reserve(&c->in, &c->in_cap, c->in_len + n)) {
    c->closing = true;
  } else {
    memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    used = serve(ctx, c, c->in, c->in_len);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    trim(&c->in, c->in_len, &c->in_cap);
  }
  flush(ctx, c);
  if (c->closing)
    isle_tcp_close(isle_ctx_runtime(ctx), c->conn, true);
}

/* ----- The connection actor --------------------------------------------- */

static int conn_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  conn_t *c = state;
  c->conn = *(const isle_conn_t *)arg;
  http_parser_init(&c->parser);
  return 0;
}

static int conn_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  conn_t *c = state;
  size_t n;
  const char *p = isle_tcp_data(msg, &n, NULL);
  if (p) {
    if (!c->closing)
      on_data(ctx, c, p, n);
    return ISLE_CONTINUE;
  }
  switch (isle_msg_type(msg)) {
  case ISLE_MSG_TCP_EOF: /* the client is done: answer what is complete */
    if (!c->closing) {
      c->closing = true;
      isle_tcp_close(isle_ctx_runtime(ctx), c->conn, true);
    }
    return ISLE_CONTINUE;
  case ISLE_MSG_TCP_CLOSED:
    c->closed = true;
    return ISLE_STOP;
  default:
    return ISLE_CONTINUE;
  }
}

static void conn_finalize(isle_ctx_t *ctx, void *state) {
  conn_t *c = state;
  if (!c->closed)
    isle_tcp_close(isle_ctx_runtime(ctx), c->conn, false);
  isle_free(c->in);
  isle_free(c->out);
}

static const isle_actor_type_t conn_type = {
    .name = "http-conn",
    .state_size = sizeof(conn_t),
    .init = conn_init,
    .receive = conn_receive,
    .finalize = conn_finalize,
    .mailbox_capacity = 64, /* a slow actor pauses its socket's reads */
};

int main(int argc, char **argv) {
  /* The two HTTP limits first, then the common options. */
  char *rest[64];
  int nrest = 0;
  for (int i = 0; i < argc && nrest < 64; i++) {
    if (i + 1 < argc && strcmp(argv[i], "--max-header") == 0)
      limits.max_header_bytes = strtoull(argv[++i], NULL, 10);
    else if (i + 1 < argc && strcmp(argv[i], "--max-body") == 0)
      limits.max_body_bytes = strtoull(argv[++i], NULL, 10);
    else
      rest[nrest++] = argv[i];
  }
  if (limits.max_header_bytes > HTTP_LIMIT_CEILING ||
      limits.max_body_bytes > HTTP_LIMIT_CEILING) {
    fprintf(stderr, "http: limits above %d bytes\n", HTTP_LIMIT_CEILING);
    return 2;
  }
  server_opts_t o;
  if (server_parse(nrest, rest, "http", 8080, &o) != 0)
    return 2;
  return server_main("http", &o, &conn_type, NULL);
}
