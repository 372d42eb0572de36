/* isle — MIT licensed. */
/*
 * The command side of the key-value sample: a keyspace (strings only, with
 * optional expiry in milliseconds), the command table, execution of a
 * parsed command (resp.h) against one keyspace with the reply written into
 * a growable buffer, and the helpers that let the server shard the
 * keyspace across actors.
 *
 * Sharding. The server runs one shard actor per worker, each owning one
 * keyspace; a key belongs to shard kv_key_shard(key, nshards). The command
 * table says where each command goes (kv_command_t.keys):
 *   KV_KEYS_NONE   no key (PING, ECHO, INFO, ...): run it anywhere;
 *   KV_KEYS_ONE    one key at argv[1] (GET, SET, INCR, TTL, ...): run it
 *                  on that key's shard, unchanged;
 *   KV_KEYS_EACH   every argument from argv[1] is a key (DEL, EXISTS,
 *                  MGET), and KV_KEYS_PAIRS key-value pairs from argv[1]
 *                  (MSET): kv_split builds each shard's sub-command (the
 *                  same command on that shard's keys), the shards run it
 *                  with kv_exec as any other, and kv_merge puts the partial
 *                  replies together (counts summed, MGET values placed back
 *                  by position, OK if every part is OK);
 *   KV_KEYS_ALL    the whole keyspace (DBSIZE, FLUSHALL): run it on every
 *                  shard and merge the same way.
 * A split command is not atomic across shards: another client may see part
 * of an MSET. Check the command (kv_command_check) before splitting, so
 * that arity errors are answered once, not per shard.
 *
 * Time. Nothing here reads a clock: every execution takes the time in
 * kv_env_t.now_ms (milliseconds, >= 0), so the server reads it once per
 * batch and the tests drive expiry by hand. Expired keys are removed when
 * touched, and kv_keyspace_expire_some sweeps a bounded number of buckets
 * per call (for a periodic timer).
 *
 * Memory. Keys, values and the table come from isle_malloc (isle/heap.h),
 * so a keyspace's memory shows in its owner thread's heap statistics and
 * obeys the heap limit. When an allocation fails the command answers
 * Redis's "-OOM ..." error and the keyspace is left as it was before that
 * key's write (an MSET may have written earlier pairs).
 *
 * Threads: a keyspace belongs to one thread at a time (its shard actor);
 * nothing here locks. Everything else is reentrant.
 */
#ifndef ISLE_SAMPLES_KV_CMD_H
#define ISLE_SAMPLES_KV_CMD_H

#include <stdbool.h> /* bool */
#include <stddef.h>  /* size_t */
#include <stdint.h>  /* int64_t, uint64_t */

#include "resp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ===== Reply buffer ====================================================== */

/* A growable byte buffer for replies. Public fields, read-only to the
 * caller: `data[0..len)` holds the replies written so far. After a failed
 * allocation `failed` is set and further writes are dropped, so a caller
 * checks once after a batch (and closes the connection: a reply is lost). */
typedef struct kv_buf_s {
  char *data; /* from isle_malloc; NULL while empty */
  size_t len;
  size_t cap;
  bool failed;
} kv_buf_t;

/* An empty buffer. Can't fail; allocates nothing. */
void kv_buf_init(kv_buf_t *b);

/* Frees the storage and empties the buffer. */
void kv_buf_deinit(kv_buf_t *b);

/* Hands the storage to the caller (to give to a write, which frees it with
 * isle_free) and empties the buffer. Returns NULL when it is empty.
 * Ownership: the returned block is the caller's. */
char *kv_buf_take(kv_buf_t *b, size_t *len);

/* Appends n bytes; false (and `failed` set) when memory ran out. */
bool kv_buf_append(kv_buf_t *b, const void *bytes, size_t n);

/* RESP2 replies. Error and status texts have CR and LF turned into spaces,
 * as Redis does, so a reply can never break the framing. */
void kv_reply_status(kv_buf_t *b, const char *text); /* "+text\r\n" */
void kv_reply_error(kv_buf_t *b, const char *text);  /* "-text\r\n" */
void kv_reply_int(kv_buf_t *b, long long v);         /* ":v\r\n" */
void kv_reply_bulk(kv_buf_t *b, const char *s, size_t n);
void kv_reply_null(kv_buf_t *b);                /* "$-1\r\n" */
void kv_reply_array(kv_buf_t *b, size_t count); /* "*count\r\n" */

/* The reply to a RESP_ERROR from resp_parse: "-ERR Protocol error: ...". */
void kv_reply_protocol_error(kv_buf_t *b, const resp_parser_t *p);

/* ===== Keyspace — owner thread only ====================================== */

typedef struct kv_keyspace_s kv_keyspace_t;

/* An empty keyspace, or NULL when memory ran out. Ownership: the caller's;
 * free with kv_keyspace_free. */
kv_keyspace_t *kv_keyspace_new(void);

/* Frees the keyspace and every key in it. NULL is ignored. */
void kv_keyspace_free(kv_keyspace_t *ks);

/* Keys stored, counting expired keys not yet removed (as Redis's DBSIZE). */
size_t kv_keyspace_size(const kv_keyspace_t *ks);

/* Of those, keys with an expiry. */
size_t kv_keyspace_expires(const kv_keyspace_t *ks);

/* Removes expired keys from up to `buckets` buckets, resuming where the
 * last call stopped and wrapping around. Returns how many it removed.
 * Can't fail. */
size_t kv_keyspace_expire_some(kv_keyspace_t *ks, int64_t now_ms,
                               size_t buckets);

/* ===== Hashing and shards — any thread =================================== */

/* A 64-bit hash of the key's bytes. The same in every process and shard
 * (no random seed: shards must agree; the sample does not defend against
 * keys chosen to collide). */
uint64_t kv_hash(const char *key, size_t len);

/* The shard in [0, nshards) that owns `key`. Uses the hash's high bits;
 * the keyspace's buckets use the low ones, so keys of one shard still
 * spread over all its buckets. nshards must be >= 1. */
size_t kv_key_shard(const char *key, size_t len, size_t nshards);

/* ===== Commands ========================================================== */

/* Where a command's keys are: see "Sharding" at the top of this file. */
typedef enum kv_keys_e {
  KV_KEYS_NONE,
  KV_KEYS_ONE,
  KV_KEYS_EACH,
  KV_KEYS_PAIRS,
  KV_KEYS_ALL
} kv_keys_t;

/* How kv_merge joins the shards' replies to a split command. */
typedef enum kv_merge_kind_e {
  KV_MERGE_NONE, /* not split */
  KV_MERGE_SUM,  /* integers, summed (DEL, EXISTS, DBSIZE) */
  KV_MERGE_OK,   /* +OK if every part is (MSET, FLUSHALL) */
  KV_MERGE_ARRAY /* one element per key, by position (MGET) */
} kv_merge_kind_t;

/* What the server needs besides the keyspace. */
typedef struct kv_env_s {
  int64_t now_ms; /* the clock, milliseconds, >= 0 */
  /* INFO: appends lines ("name:value\r\n", "# Section\r\n") with the
   * runtime's per-thread figures; NULL for none. INFO run with a NULL
   * keyspace (KV_KEYS_NONE commands may be) leaves the Keyspace section
   * to this hook. */
  void (*info)(void *arg, kv_buf_t *text);
  void *info_arg;
} kv_env_t;

typedef struct kv_command_s kv_command_t;

/* One entry of the command table. Public, read-only. */
struct kv_command_s {
  const char *name; /* lower case, as Redis names it in errors */
  int arity;        /* Redis's: n exactly, or -n for at least n (name too) */
  kv_keys_t keys;
  kv_merge_kind_t merge;
  void (*exec)(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
               const kv_env_t *env, kv_buf_t *out);
};

/* The command named argv-style by name[0..len), any case, or NULL. */
const kv_command_t *kv_command_lookup(const char *name, size_t len);

/* The command argv names when it exists and its argument count fits;
 * otherwise writes Redis's error ("-ERR unknown command 'x', with args
 * beginning with: ...", "-ERR wrong number of arguments for 'get' command")
 * into `out` and returns NULL. argc must be >= 1. */
const kv_command_t *kv_command_check(const resp_arg_t *argv, size_t argc,
                                     kv_buf_t *out);

/* Checks and runs argv against `ks`, writing one reply into `out`. This is
 * both the single-shard path and what a shard runs for its part of a split
 * command. argc must be >= 1. */
void kv_exec(kv_keyspace_t *ks, const resp_arg_t *argv, size_t argc,
             const kv_env_t *env, kv_buf_t *out);

/* The number of keyed commands the table holds (COMMAND COUNT). */
size_t kv_command_count(void);

/* ===== Splitting and merging — any thread ================================ */

/* The shard that runs a KV_KEYS_ONE command (that of argv[1]); 0 for
 * KV_KEYS_NONE, which may run anywhere. Not for split commands. */
size_t kv_command_shard(const kv_command_t *cmd, const resp_arg_t *argv,
                        size_t argc, size_t nshards);

/* For a KV_KEYS_EACH, KV_KEYS_PAIRS or KV_KEYS_ALL command that passed
 * kv_command_check: writes into sub_argv (room for argc entries) the
 * command shard `shard` runs, and returns its argc, or 0 when none of the
 * keys belong to that shard. For each key put in the sub-command,
 * positions[j] (room for argc entries) receives the key's position in the
 * original command (0 for the first key), which kv_merge_add needs for
 * MGET. KV_KEYS_ALL commands go to every shard unchanged. Ownership:
 * sub_argv borrows argv's bytes. */
size_t kv_split(const kv_command_t *cmd, const resp_arg_t *argv, size_t argc,
                size_t nshards, size_t shard, resp_arg_t *sub_argv,
                size_t *positions);

/* Joins the shards' replies to one split command. */
typedef struct kv_merge_s {
  /* private */
  kv_merge_kind_t kind;
  size_t keys;       /* MGET: the number of keys */
  long long sum;     /* KV_MERGE_SUM */
  const char **elem; /* MGET: per key, its element inside a part */
  size_t *elem_len;
  const char *error; /* the first error part, whole */
  size_t error_len;
  bool bad;    /* a part was not what the command replies */
  bool failed; /* allocation failed */
} kv_merge_t;

/* Starts a merge for `cmd` with argv's argc. Returns 0, or ISLE_ENOMEM
 * (MGET needs two arrays of one pointer per key) leaving nothing to free. */
int kv_merge_init(kv_merge_t *m, const kv_command_t *cmd, size_t argc);

/* Adds one shard's reply (exactly one RESP reply, as kv_exec wrote it)
 * and, for MGET, the positions kv_split gave that shard (n of them).
 * Returns 0, or ISLE_EPROTO when the reply is malformed (kv_merge_finish
 * then answers an error). Ownership: borrows `reply` until
 * kv_merge_finish. */
int kv_merge_add(kv_merge_t *m, const char *reply, size_t len,
                 const size_t *positions, size_t n);

/* Writes the merged reply into `out` and frees the merge's storage: the
 * first error part if any, else the sum, +OK, or the MGET array (keys no
 * part answered for reply null). */
void kv_merge_finish(kv_merge_t *m, kv_buf_t *out);

#ifdef __cplusplus
}
#endif
#endif /* ISLE_SAMPLES_KV_CMD_H */
