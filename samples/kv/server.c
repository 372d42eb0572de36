/* isle — MIT licensed. */
/*
 * kv: a key-value server speaking the Redis protocol (RESP2), its keyspace
 * sharded across shard actors (one per worker).
 *
 *   samples/kv [--port N] [--host ADDR] [--workers N] [--max-conns N]
 *              [--max-output BYTES] [--read-size BYTES] [--idle-ms MS]
 *              [--max-bulk BYTES]
 *
 * A connection actor parses commands (resp.c) and sends each to the shard
 * that owns its key, or splits a multi-key command (DEL, EXISTS, MGET,
 * MSET, DBSIZE, FLUSHALL) across the shards and merges their replies
 * (kv_cmd.c); commands without keys (PING, ECHO, INFO, ...) it runs
 * itself. Replies go out in request order however the shards interleave:
 * each command has a slot in a queue, filled when its replies are in, and
 * the filled head of the queue is written out. A protocol error is
 * answered ("-ERR Protocol error: ...") and the connection closed.
 *
 * Messages between a connection and a shard:
 *   COMMAND  seq, part, the sub-command's arguments and, for a split
 *            command, the positions of its keys in the original;
 *   REPLY    seq, part, the positions back, and the reply bytes.
 */
#include <isle.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../server_common.h"
#include "kv_cmd.h"
#include "resp.h"

enum { MSG_COMMAND = 1, MSG_REPLY };

#define MAX_ARGS 1024   /* arguments of one command */
#define MAX_PENDING 256 /* commands awaiting replies, per connection */
#define MAX_SHARDS 64
#define FLUSH_BYTES (16 * 1024) /* write early past this much output */
/* A scratch buffer (input, output, a shard's reply) that grew past this
 * for one large request is freed once empty, not kept: else every
 * connection and shard would hold the largest it ever saw. */
#define KEEP_BYTES (64 * 1024)

static isle_ref_t shards[MAX_SHARDS];
static size_t nshards;
static resp_limits_t limits;
static size_t max_input; /* bytes of unparsed input per connection */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ----- Wire format of COMMAND and REPLY ---------------------------------- */

typedef struct wire_s {
  uint64_t seq;
  uint32_t part, argc; /* REPLY: argc = number of positions */
  uint64_t reply_len;  /* REPLY only */
} wire_t;
/* Then: argc lengths (uint64_t) and positions (uint64_t each), then the
 * bytes (COMMAND: the arguments one after another; REPLY: the reply). */

static isle_msg_t *command_msg(uint64_t seq, uint32_t part,
                               const resp_arg_t *argv, size_t argc,
                               const size_t *positions, size_t npos) {
  size_t bytes = 0;
  for (size_t i = 0; i < argc; i++)
    bytes += argv[i].len;
  size_t size = sizeof(wire_t) + 8 * (argc + 1 + npos) + bytes;
  isle_msg_t *m = isle_msg_new(MSG_COMMAND, size);
  if (!m)
    return NULL;
  char *p = isle_msg_data(m);
  wire_t w = {seq, part, (uint32_t)argc, npos};
  memcpy(p, &w, sizeof w);
  uint64_t *words = (uint64_t *)(p + sizeof w);
  for (size_t i = 0; i < argc; i++)
    words[i] = argv[i].len;
  for (size_t i = 0; i < npos; i++)
    words[argc + i] = positions[i];
  char *b = (char *)(words + argc + npos);
  for (size_t i = 0; i < argc; i++) {
    memcpy(b, argv[i].ptr, argv[i].len);
    b += argv[i].len;
  }
  return m;
}

/* ----- Shards ------------------------------------------------------------ */

typedef struct shard_s {
  kv_keyspace_t *ks;
  kv_buf_t out;
  uint64_t commands;
} shard_t;

static int shard_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  (void)arg;
  shard_t *s = state;
  s->ks = kv_keyspace_new();
  kv_buf_init(&s->out);
  return s->ks ? 0 : ISLE_ENOMEM;
}

static int shard_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  shard_t *s = state;
  if (isle_msg_type(msg) != MSG_COMMAND)
    return ISLE_CONTINUE;
  char *p = isle_msg_data(msg);
  wire_t w;
  memcpy(&w, p, sizeof w);
  const uint64_t *words = (const uint64_t *)(p + sizeof w);
  size_t npos = w.reply_len; /* COMMAND: the count of positions */
  resp_arg_t argv[MAX_ARGS];
  char *b = (char *)(words + w.argc + npos);
  for (uint32_t i = 0; i < w.argc && i < MAX_ARGS; i++) {
    argv[i].ptr = b;
    argv[i].len = words[i];
    argv[i].off = 0;
    b += words[i];
  }
  int64_t now = now_ms();
  kv_env_t env = {.now_ms = now};
  s->out.len = 0;
  s->out.failed = false;
  kv_exec(s->ks, argv, w.argc, &env, &s->out);
  /* Active expiry, a little per command (Redis does it on a timer). */
  if (++s->commands % 64 == 0)
    kv_keyspace_expire_some(s->ks, now, 4);
  if (s->out.failed) {
    s->out.len = 0;
    s->out.failed = false;
    kv_reply_error(&s->out, "OOM command not allowed when used memory > "
                            "'maxmemory'.");
  }
  size_t size = sizeof(wire_t) + 8 * npos + s->out.len;
  isle_msg_t *r = isle_msg_new(MSG_REPLY, size);
  if (!r)
    return ISLE_CONTINUE; /* the connection times out that command */
  char *q = isle_msg_data(r);
  wire_t rw = {w.seq, w.part, (uint32_t)npos, s->out.len};
  memcpy(q, &rw, sizeof rw);
  memcpy(q + sizeof rw, words + w.argc, 8 * npos);
  memcpy(q + sizeof rw + 8 * npos, s->out.data, s->out.len);
  if (isle_ctx_reply(ctx, r) != 0)
    isle_msg_free(r); /* the connection has gone */
  if (s->out.cap > KEEP_BYTES)
    kv_buf_deinit(&s->out);
  return ISLE_CONTINUE;
}

static void shard_finalize(isle_ctx_t *ctx, void *state) {
  (void)ctx;
  shard_t *s = state;
  kv_keyspace_free(s->ks);
  kv_buf_deinit(&s->out);
}

static const isle_actor_type_t shard_type = {
    .name = "kv-shard",
    .state_size = sizeof(shard_t),
    .init = shard_init,
    .receive = shard_receive,
    .finalize = shard_finalize,
};

/* ----- INFO's figures ---------------------------------------------------- */

static void append(kv_buf_t *t, const char *s) {
  kv_buf_append(t, s, strlen(s));
}

/* Per-thread heap figures (the live view of docs/profiling.md). */
static void info_hook(void *arg, kv_buf_t *t) {
  isle_runtime_t *rt = arg;
  isle_runtime_stats_t st;
  isle_runtime_stats(rt, &st);
  isle_io_stats_t io;
  isle_io_stats(rt, &io);
  char line[256];
  snprintf(line, sizeof line,
           "# Isle\r\nworkers:%u\r\nactors_live:%llu\r\nmessages:%llu\r\n"
           "connected_clients:%llu\r\ntotal_connections_received:%llu\r\n"
           "rejected_connections:%llu\r\n# Threads\r\n",
           st.workers, (unsigned long long)st.actors_live,
           (unsigned long long)st.messages, (unsigned long long)io.tcp_open,
           (unsigned long long)io.tcp_accepted,
           (unsigned long long)io.tcp_refused);
  append(t, line);
  size_t n;
  isle_heap_stats_t *hs = server_heap_stats(&n);
  if (!hs)
    return;
  for (size_t i = 0; i < n; i++) {
    snprintf(line, sizeof line,
             "thread_%s:live_bytes=%llu,live_objects=%llu,held_bytes=%llu,"
             "refills=%llu,remote_frees_sent=%llu,remote_frees_received="
             "%llu,retired=%d\r\n",
             hs[i].name[0] ? hs[i].name : "unnamed",
             (unsigned long long)hs[i].live_bytes,
             (unsigned long long)hs[i].live_objects,
             (unsigned long long)hs[i].held_bytes,
             (unsigned long long)hs[i].refills,
             (unsigned long long)hs[i].remote_frees_sent,
             (unsigned long long)hs[i].remote_frees_received, hs[i].retired);
    append(t, line);
  }
  isle_free(hs);
}

/* ----- Connections ------------------------------------------------------- */

typedef struct pending_s {
  uint64_t seq;
  uint32_t waiting; /* shard replies still to come */
  bool merged;      /* split: replies go through `merge` */
  kv_merge_t merge;
  /* The shard replies `merge` points into (kv_merge_add borrows them
   * until kv_merge_finish): kept, not freed after their receive. */
  isle_msg_t **kept;
  uint32_t nkept;
  kv_buf_t reply; /* the finished reply */
} pending_t;

typedef struct conn_s {
  isle_conn_t conn;
  resp_parser_t parser;
  char *in;
  size_t in_len, in_cap;
  pending_t q[MAX_PENDING]; /* ring: head .. head + count */
  size_t head, count;
  uint64_t next_seq;
  kv_buf_t out;
  bool closing, closed, eof;
} conn_t;

static pending_t *pending_of(conn_t *c, uint64_t seq) {
  uint64_t first = c->next_seq - c->count;
  if (seq < first || seq >= c->next_seq)
    return NULL;
  return &c->q[(c->head + (seq - first)) % MAX_PENDING];
}

/* Frees the shard replies a finished (or abandoned) merge borrowed. */
static void pending_free_kept(pending_t *p) {
  for (uint32_t i = 0; i < p->nkept; i++)
    isle_msg_free(p->kept[i]);
  isle_free(p->kept);
  p->kept = NULL;
  p->nkept = 0;
}

/* Moves every finished reply at the head of the queue to the output. */
static void drain_ready(conn_t *c) {
  while (c->count) {
    pending_t *p = &c->q[c->head];
    if (p->waiting)
      break;
    if (p->merged) {
      kv_merge_finish(&p->merge, &p->reply);
      p->merged = false;
      pending_free_kept(p);
    }
    kv_buf_append(&c->out, p->reply.data, p->reply.len);
    kv_buf_deinit(&p->reply);
    c->head = (c->head + 1) % MAX_PENDING;
    c->count--;
  }
}

/* Writes the output once every pending command is answered (one write
 * for a whole pipelined batch), or when it has grown large (a client
 * that pipelines without pause), or when closing. */
static void flush(isle_ctx_t *ctx, conn_t *c) {
  isle_runtime_t *rt = isle_ctx_runtime(ctx);
  if (c->count && c->out.len < FLUSH_BYTES && !c->closing && !c->eof)
    return;
  if (c->out.len && !c->closed) {
    if (server_write(rt, c->conn, c->out.data, c->out.len) != 0) {
      /* not reading its replies, or no memory */
      isle_tcp_close(rt, c->conn, false);
      c->closing = true;
    }
  }
  c->out.len = 0;
  if (c->out.cap > KEEP_BYTES)
    kv_buf_deinit(&c->out);
  if ((c->closing || c->eof) && c->count == 0 && !c->closed) {
    isle_tcp_close(rt, c->conn, true); /* after what is written */
    c->closed = true;                  /* CLOSED will end the actor */
  }
}

/* Starts one parsed command: runs it here, or sends it to its shard(s). */
static void start_command(isle_ctx_t *ctx, conn_t *c, resp_arg_t *argv,
                          size_t argc) {
  pending_t *p = &c->q[(c->head + c->count) % MAX_PENDING];
  memset(p, 0, sizeof *p);
  kv_buf_init(&p->reply);
  p->seq = c->next_seq++;
  c->count++;
  const kv_command_t *cmd = kv_command_check(argv, argc, &p->reply);
  if (!cmd)
    return; /* the error is the reply */
  if (cmd->keys == KV_KEYS_NONE) {
    kv_env_t env = {.now_ms = now_ms(),
                    .info = info_hook,
                    .info_arg = isle_ctx_runtime(ctx)};
    cmd->exec(NULL, argv, argc, &env, &p->reply);
    return;
  }
  if (cmd->keys == KV_KEYS_ONE) {
    size_t s = kv_command_shard(cmd, argv, argc, nshards);
    isle_msg_t *m = command_msg(p->seq, 0, argv, argc, NULL, 0);
    if (m && isle_ctx_send(ctx, shards[s], m) == 0) {
      p->waiting = 1;
      return;
    }
    isle_msg_free(m);
    kv_reply_error(&p->reply, "ERR shard unavailable");
    return;
  }
  /* Split across the shards. */
  if (kv_merge_init(&p->merge, cmd, argc) != 0) {
    kv_reply_error(&p->reply, "OOM command not allowed");
    return;
  }
  p->merged = true;
  static _Thread_local resp_arg_t sub[MAX_ARGS];
  static _Thread_local size_t pos[MAX_ARGS];
  for (size_t s = 0; s < nshards; s++) {
    size_t n = kv_split(cmd, argv, argc, nshards, s, sub, pos);
    if (n == 0)
      continue; /* no key of this command on shard s */
    size_t npos = cmd->keys == KV_KEYS_ALL ? 0 : n - 1;
    if (cmd->keys == KV_KEYS_PAIRS)
      npos = (n - 1) / 2;
    isle_msg_t *m = command_msg(p->seq, (uint32_t)s, sub, n, pos, npos);
    if (m && isle_ctx_send(ctx, shards[s], m) == 0)
      p->waiting++;
    else
      isle_msg_free(m);
  }
}

static void on_reply(isle_ctx_t *ctx, conn_t *c, isle_msg_t *msg) {
  char *q = isle_msg_data(msg);
  wire_t w;
  memcpy(&w, q, sizeof w);
  pending_t *p = pending_of(c, w.seq);
  if (!p || !p->waiting)
    return;
  const char *reply = q + sizeof w + 8 * (size_t)w.argc;
  if (p->merged) {
    /* kv_merge_add borrows the reply until kv_merge_finish: keep the
     * message. (Freed after this receive, it left MGET answering with the
     * bytes of whatever reused its memory.) */
    if (!p->kept)
      p->kept = isle_malloc(nshards * sizeof *p->kept);
    if (!p->kept || p->nkept >= nshards) {
      p->merge.bad = true; /* answered with an error */
    } else {
      p->kept[p->nkept++] = msg;
      isle_ctx_keep(ctx);
      static _Thread_local size_t pos[MAX_ARGS];
      for (uint32_t i = 0; i < w.argc && i < MAX_ARGS; i++)
        memcpy(&pos[i], q + sizeof w + 8 * (size_t)i, 8);
      kv_merge_add(&p->merge, reply, w.reply_len, pos, w.argc);
    }
  } else {
    kv_buf_append(&p->reply, reply, w.reply_len);
  }
  p->waiting--;
}

/* Parses and starts every complete command in c->in, as far as the
 * pending queue has room; keeps the rest. */
static void serve(isle_ctx_t *ctx, conn_t *c) {
  static _Thread_local resp_arg_t argv[MAX_ARGS];
  size_t used = 0;
  while (!c->closing && c->count < MAX_PENDING && used < c->in_len) {
    size_t argc = 0, consumed = 0;
    resp_status_t st = resp_parse(&c->parser, c->in + used, c->in_len - used,
                                  &limits, argv, MAX_ARGS, &argc, &consumed);
    if (st == RESP_INCOMPLETE)
      break;
    if (st == RESP_ERROR) {
      drain_ready(c);
      kv_reply_protocol_error(&c->out, &c->parser);
      c->closing = true; /* Redis closes after a protocol error */
      used = c->in_len;
      break;
    }
    used += consumed;
    if (argc)
      start_command(ctx, c, argv, argc);
  }
  if (used) { /* c->in may be NULL (nothing received since its trim) */
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
  }
  if (c->in_len == 0 && c->in_cap > KEEP_BYTES) {
    isle_free(c->in);
    c->in = NULL;
    c->in_cap = 0;
  }
}

static int conn_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  conn_t *c = state;
  c->conn = *(const isle_conn_t *)arg;
  resp_parser_init(&c->parser);
  kv_buf_init(&c->out);
  return 0;
}

static int conn_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  conn_t *c = state;
  size_t n;
  const char *data = isle_tcp_data(msg, &n, NULL);
  if (data) {
    if (c->closing)
      return ISLE_CONTINUE;
    if (c->in_len + n > max_input) {
      /* A command larger than any allowed, or a client that pipelines
       * without reading: bounded memory, like Redis's query buffer. */
      kv_reply_error(&c->out, "ERR Protocol error: too big inline request "
                              "or query buffer");
      c->closing = true;
      drain_ready(c);
      flush(ctx, c);
      return ISLE_CONTINUE;
    }
    if (c->in_len + n > c->in_cap) {
      size_t cap = c->in_cap ? c->in_cap : 4096;
      while (cap < c->in_len + n)
        cap *= 2;
      char *in = isle_realloc(c->in, cap);
      if (!in) {
        isle_tcp_close(isle_ctx_runtime(ctx), c->conn, false);
        c->closing = c->closed = true;
        return ISLE_CONTINUE;
      }
      c->in = in;
      c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, n);
    c->in_len += n;
    serve(ctx, c);
  } else if (isle_msg_type(msg) == MSG_REPLY) {
    on_reply(ctx, c, msg);
    serve(ctx, c); /* room in the queue again */
  } else if (isle_msg_type(msg) == ISLE_MSG_TCP_EOF) {
    c->eof = true;
  } else if (isle_msg_type(msg) == ISLE_MSG_TCP_CLOSED) {
    c->closed = true;
    return ISLE_STOP;
  } else {
    return ISLE_CONTINUE;
  }
  drain_ready(c);
  flush(ctx, c);
  return ISLE_CONTINUE;
}

static void conn_finalize(isle_ctx_t *ctx, void *state) {
  conn_t *c = state;
  if (!c->closed)
    isle_tcp_close(isle_ctx_runtime(ctx), c->conn, false);
  for (size_t i = 0; i < c->count; i++) {
    pending_t *p = &c->q[(c->head + i) % MAX_PENDING];
    if (p->merged)
      kv_merge_finish(&p->merge, &p->reply); /* frees its arrays */
    pending_free_kept(p);
    kv_buf_deinit(&p->reply);
  }
  kv_buf_deinit(&c->out);
  isle_free(c->in);
}

static const isle_actor_type_t conn_type = {
    .name = "kv-conn",
    .state_size = sizeof(conn_t),
    .init = conn_init,
    .receive = conn_receive,
    .finalize = conn_finalize,
    /* No mailbox capacity: a shard's reply must never be refused. Input
     * is bounded by MAX_PENDING and max_input instead. */
};

/* ----- Main -------------------------------------------------------------- */

static int setup(isle_runtime_t *rt) {
  isle_runtime_stats_t st;
  isle_runtime_stats(rt, &st);
  nshards = st.workers < MAX_SHARDS ? st.workers : MAX_SHARDS;
  for (size_t i = 0; i < nshards; i++) {
    int rc = isle_runtime_spawn(rt, &shard_type, NULL, &shards[i]);
    if (rc)
      return rc;
  }
  return 0;
}

int main(int argc, char **argv) {
  char *rest[64];
  int nrest = 0;
  for (int i = 0; i < argc && nrest < 64; i++) {
    if (i + 1 < argc && strcmp(argv[i], "--max-bulk") == 0)
      limits.max_bulk_len = strtoull(argv[++i], NULL, 10);
    else
      rest[nrest++] = argv[i];
  }
  server_opts_t o;
  if (server_parse(nrest, rest, "kv", 6380, &o) != 0)
    return 2;
  max_input =
      (limits.max_bulk_len ? limits.max_bulk_len : RESP_DEFAULT_MAX_BULK_LEN) +
      (1u << 20);
  return server_main("kv", &o, &conn_type, setup);
}
