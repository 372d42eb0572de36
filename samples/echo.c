/* isle — MIT licensed. */
/*
 * echo: a TCP echo server, one actor per connection.
 *
 *   samples/echo [--port N] [--host ADDR] [--workers N] [--max-conns N]
 *                [--max-output BYTES] [--idle-ms MS]
 *
 * An acceptor actor gets each new connection and spawns a connection
 * actor for it. The connection actor writes every DATA message straight
 * back (isle_tcp_write takes the received message itself: no copy), closes
 * gracefully when the peer is done (EOF), and ends when the connection is
 * closed. A peer that does not read its echo fills its output backlog
 * (max_output) and is closed. SIGINT or SIGTERM: stop accepting, let
 * connections finish (2 s at most), free everything and exit.
 */
#include <isle.h>
#include <stdio.h>

#include "server_common.h"

typedef struct conn_s {
  isle_conn_t conn;
  bool closed;
} conn_t;

static int conn_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((conn_t *)state)->conn = *(const isle_conn_t *)arg;
  return 0;
}

static int conn_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  conn_t *c = state;
  isle_runtime_t *rt = isle_ctx_runtime(ctx);
  if (isle_tcp_data(msg, NULL, NULL)) {
    int rc = isle_tcp_write(rt, c->conn, msg);
    if (rc == 0)
      isle_ctx_keep(ctx); /* the io thread's now */
    else
      isle_tcp_close(rt, c->conn, false); /* not reading its echo */
    return ISLE_CONTINUE;
  }
  switch (isle_msg_type(msg)) {
  case ISLE_MSG_TCP_EOF:
    isle_tcp_close(rt, c->conn, true); /* after the echo is written */
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
}

static const isle_actor_type_t conn_type = {
    .name = "echo-conn",
    .state_size = sizeof(conn_t),
    .init = conn_init,
    .receive = conn_receive,
    .finalize = conn_finalize,
    .mailbox_capacity = 64, /* a slow actor pauses its socket's reads */
};

int main(int argc, char **argv) {
  server_opts_t o;
  if (server_parse(argc, argv, "echo", 7000, &o) != 0)
    return 2;
  return server_main("echo", &o, &conn_type, NULL);
}
