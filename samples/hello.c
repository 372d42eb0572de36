/* isle — MIT licensed. */
/*
 * hello: the smallest isle program. One actor type, one actor, one
 * message from outside; run() returns when there is nothing left to do.
 *
 *   samples/hello [name]
 */
#include <isle.h>
#include <stdio.h>
#include <string.h>

/* A receive function borrows its message; the runtime frees it after. */
static int greeter_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)state;
  printf("hello, %.*s (from actor %llx on worker %d)\n",
         (int)isle_msg_size(msg), (const char *)isle_msg_data(msg),
         (unsigned long long)isle_ctx_self(ctx), isle_ctx_worker(ctx));
  return ISLE_STOP; /* one greeting, then this actor ends */
}

static const isle_actor_type_t greeter = {
    .name = "greeter",
    .receive = greeter_receive,
};

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "world";
  isle_runtime_t *rt;
  int rc = isle_runtime_new(NULL, &rt); /* defaults: a worker per CPU */
  if (rc) {
    fprintf(stderr, "hello: %s\n", isle_strerror(rc));
    return 1;
  }
  isle_ref_t who;
  rc = isle_runtime_spawn(rt, &greeter, NULL, &who);
  isle_msg_t *msg = rc ? NULL : isle_msg_new(0, strlen(name));
  if (msg) {
    memcpy(isle_msg_data(msg), name, strlen(name));
    rc = isle_runtime_send(rt, who, msg);
    if (rc)
      isle_msg_free(msg); /* a failed send leaves the message with us */
  }
  if (rc || !msg) {
    fprintf(stderr, "hello: %s\n", isle_strerror(rc ? rc : ISLE_ENOMEM));
    isle_runtime_free(rt);
    return 1;
  }
  isle_runtime_run(rt);
  isle_runtime_free(rt);
  return 0;
}
