/* isle — MIT licensed. */
/*
 * The server commands of the key-value sample: COMMAND and CONFIG (as
 * much as redis-cli and redis-benchmark ask for), INFO and SELECT (see
 * kv_cmd.h; the table is in kv_cmd.c).
 *
 * Threads: each runs on its keyspace's owner (INFO also without one).
 */
#include <string.h> /* strlen */

#include <isle.h>

#include "kv_internal.h"

static void reply_unknown_subcommand(kv_buf_t *out, const resp_arg_t *sub,
                                     const char *cmd) {
  kv_buf_append(out, "-ERR unknown subcommand '", 25);
  kv__append_line_text(out, sub->ptr, sub->len < 128 ? sub->len : 128);
  kv_buf_append(out, "'. Try ", 7);
  kv__append_str(out, cmd);
  kv_buf_append(out, " HELP.\r\n", 8);
}

/* COMMAND: redis-cli asks "COMMAND DOCS" on connect for its hints and
 * takes an empty array as "no hints". */
void kv__cmd_command(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                     const kv_env_t *env, kv_buf_t *out) {
  (void)ks;
  (void)env;
  if (argc == 1 || kv__arg_is(&argv[1], "docs") ||
      kv__arg_is(&argv[1], "info") || kv__arg_is(&argv[1], "list"))
    kv_reply_array(out, 0);
  else if (kv__arg_is(&argv[1], "count"))
    kv_reply_int(out, (long long)kv_command_count());
  else
    reply_unknown_subcommand(out, &argv[1], "COMMAND");
}

/* CONFIG GET: redis-benchmark reads "save" and "appendonly" before it
 * starts and warns when the answer is not a name/value array. */
void kv__cmd_config(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out) {
  static const struct {
    const char *name, *value;
  } params[] = {{"save", ""}, {"appendonly", "no"}, {"databases", "1"}};
  enum { NPARAMS = sizeof params / sizeof params[0] };
  (void)ks;
  (void)env;
  if (kv__arg_is(&argv[1], "get")) {
    if (argc < 3) {
      kv__reply_wrong_arity(out, "config|get");
      return;
    }
    bool hit[NPARAMS] = {false};
    size_t n = 0;
    for (size_t j = 2; j < argc; j++)
      for (size_t k = 0; k < NPARAMS; k++)
        if (!hit[k] && ((argv[j].len == 1 && argv[j].ptr[0] == '*') ||
                        kv__arg_is(&argv[j], params[k].name))) {
          hit[k] = true;
          n++;
        }
    kv_reply_array(out, 2 * n);
    for (size_t k = 0; k < NPARAMS; k++)
      if (hit[k]) {
        kv_reply_bulk(out, params[k].name, strlen(params[k].name));
        kv_reply_bulk(out, params[k].value, strlen(params[k].value));
      }
  } else if (kv__arg_is(&argv[1], "resetstat")) {
    kv_reply_status(out, "OK"); /* no statistics of its own to reset */
  } else if (kv__arg_is(&argv[1], "set")) {
    kv_reply_error(out, "ERR CONFIG SET is not supported by this server");
  } else {
    reply_unknown_subcommand(out, &argv[1], "CONFIG");
  }
}

void kv__cmd_info(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                  const kv_env_t *env, kv_buf_t *out) {
  (void)argv;
  (void)argc;
  kv_buf_t text;
  kv_buf_init(&text);
  kv__append_str(&text, "# Server\r\nredis_version:7.0.0\r\n"
                        "server_name:isle-kv\r\nisle_version:");
  kv__append_ll(&text, ISLE_VERSION_MAJOR);
  kv_buf_append(&text, ".", 1);
  kv__append_ll(&text, ISLE_VERSION_MINOR);
  kv_buf_append(&text, ".", 1);
  kv__append_ll(&text, ISLE_VERSION_PATCH);
  kv__append_str(&text, "\r\n");
  if (env->info != NULL)
    env->info(env->info_arg, &text);
  /* Without a keyspace (a sharded server runs INFO outside its shards),
   * the info hook writes the Keyspace section. */
  if (ks != NULL) {
    kv__append_str(&text, "# Keyspace\r\ndb0:keys=");
    kv__append_ll(&text, (long long)ks->count);
    kv__append_str(&text, ",expires=");
    kv__append_ll(&text, (long long)ks->expires);
    kv__append_str(&text, ",avg_ttl=0\r\n");
  }
  if (text.failed)
    kv_reply_error(out, kv__oom_error);
  else
    kv_reply_bulk(out, text.data, text.len);
  kv_buf_deinit(&text);
}

void kv__cmd_select(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
                    const kv_env_t *env, kv_buf_t *out) {
  (void)ks;
  (void)argc;
  (void)env;
  long long db;
  if (!resp_parse_ll(argv[1].ptr, argv[1].len, &db))
    kv__reply_not_integer(out);
  else if (db != 0)
    kv_reply_error(out, "ERR DB index is out of range");
  else
    kv_reply_status(out, "OK");
}
