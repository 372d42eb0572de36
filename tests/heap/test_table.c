/* isle — MIT licensed. */
/*
 * The intrusive hash table (heap/table.h), white-box: a zeroed table is
 * empty; inserts, finds and removes keep the invariants table.h states
 * (power-of-two buckets, each link in the bucket its hash picks, chains
 * doubly linked, count right, at most one entry per bucket after a
 * reserve); links that share a hash or a bucket come out in any order; a
 * reserve that cannot allocate leaves the table as it was. A failure
 * means names (actor/names.c) or timers (io/timer.c) would lose or
 * misfile entries. Single-threaded; entries come from the C library.
 */
#include "heap/table.h"
#include "isle/error.h"
#include "support.h"

typedef struct item_s {
  uint64_t key;
  isle__tlink_t link;
} item_t;

static item_t *of_link(isle__tlink_t *l) {
  return (item_t *)((char *)l - offsetof(item_t, link));
}

/* The item with `key` (hashed by `hash`), or NULL. */
static item_t *find(const isle__table_t *t, uint64_t key, uint64_t hash) {
  for (isle__tlink_t *l = isle__table_bucket(t, hash); l; l = l->next)
    if (l->hash == hash && of_link(l)->key == key)
      return of_link(l);
  return NULL;
}

/* table.h's invariants, walked; returns the longest chain. */
static size_t check_table(const isle__table_t *t) {
  if (t->nbuckets == 0) {
    assert_null(t->buckets);
    assert_int_equal(t->count, 0);
    return 0;
  }
  assert_int_equal(t->nbuckets & (t->nbuckets - 1), 0);
  size_t n = 0, longest = 0;
  for (size_t i = 0; i < t->nbuckets; i++) {
    size_t chain = 0;
    isle__tlink_t *const *pp = &t->buckets[i];
    for (isle__tlink_t *l = isle__table_at(t, i); l; l = l->next) {
      assert_int_equal(l->hash & (t->nbuckets - 1), i);
      assert_ptr_equal(l->pprev, pp);
      pp = &l->next;
      chain++;
      assert_true(chain <= t->count); /* a cycle is reported, not looped on */
    }
    n += chain;
    if (chain > longest)
      longest = chain;
  }
  assert_int_equal(n, t->count);
  return longest;
}

static item_t *items_new(size_t n) {
  item_t *items = calloc(n, sizeof *items);
  assert_non_null(items);
  for (size_t i = 0; i < n; i++)
    items[i].key = i + 1;
  return items;
}

/* ===== Tests ============================================================ */

static void test_table_zeroed_is_empty_and_finds_nothing(void **state) {
  isle__table_t t = {0};
  assert_null(isle__table_bucket(&t, 0));
  assert_null(isle__table_bucket(&t, isle__hash_u64(42)));
  assert_null(find(&t, 42, isle__hash_u64(42)));
  check_table(&t);
  isle__table_deinit(&t);
  check_table(&t);
}

static void
test_table_reserve_gives_min_buckets_then_doubles_when_full(void **state) {
  isle__table_t t = {0};
  enum { N = ISLE__TABLE_MIN * 4 + 1 };
  item_t *items = items_new(N);
  for (size_t i = 0; i < N; i++) {
    size_t before = t.nbuckets;
    assert_int_equal(isle__table_reserve(&t), 0);
    if (i == 0)
      assert_int_equal(t.nbuckets, ISLE__TABLE_MIN);
    else if (i == before)
      assert_int_equal(t.nbuckets, 2 * before); /* full: doubled */
    else
      assert_int_equal(t.nbuckets, before);
    isle__table_insert(&t, &items[i].link, isle__hash_u64(items[i].key));
    assert_true(t.count <= t.nbuckets);
    check_table(&t);
  }
  assert_int_equal(t.nbuckets, ISLE__TABLE_MIN * 8);
  for (size_t i = 0; i < N; i++)
    assert_ptr_equal(find(&t, items[i].key, isle__hash_u64(items[i].key)),
                     &items[i]);
  isle__table_deinit(&t);
  free(items);
}

static void test_table_removes_in_any_order_keep_the_rest(void **state) {
  isle__table_t t = {0};
  size_t n = support_iters(2000);
  item_t *items = items_new(n);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(isle__table_reserve(&t), 0);
    isle__table_insert(&t, &items[i].link, isle__hash_u64(items[i].key));
  }
  check_table(&t);
  /* Every third, then the rest: heads, middles and tails of chains. */
  for (size_t pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < n; i++) {
      if ((i % 3 == 0) != (pass == 0))
        continue;
      isle__table_remove(&t, &items[i].link);
      assert_null(find(&t, items[i].key, isle__hash_u64(items[i].key)));
      if (i % 97 == 0)
        check_table(&t);
    }
  assert_int_equal(t.count, 0);
  check_table(&t);
  for (size_t i = 0; i < t.nbuckets; i++)
    assert_null(isle__table_at(&t, i));
  isle__table_deinit(&t);
  free(items);
}

/* One hash for every key: one chain, which the caller's key compare
 * sorts out; removing from its head, middle and tail keeps the others. */
static void
test_table_links_sharing_a_hash_are_told_apart_by_key(void **state) {
  isle__table_t t = {0};
  enum { N = 9 };
  item_t *items = items_new(N);
  for (size_t i = 0; i < N; i++) {
    assert_int_equal(isle__table_reserve(&t), 0);
    isle__table_insert(&t, &items[i].link, 7);
  }
  assert_int_equal(check_table(&t), N);
  size_t order[] = {0, N - 1, N / 2}; /* tail (first in), head, middle */
  for (size_t k = 0; k < 3; k++) {
    isle__table_remove(&t, &items[order[k]].link);
    check_table(&t);
    for (size_t i = 0; i < N; i++) {
      bool gone = i == order[0] || (k >= 1 && i == order[1]) ||
                  (k >= 2 && i == order[2]);
      assert_ptr_equal(find(&t, items[i].key, 7), gone ? NULL : &items[i]);
    }
  }
  isle__table_deinit(&t);
  free(items);
}

/* Sequential ids and handles (the timers' and names' keys) spread over
 * the buckets: no chain grows long. */
static void test_table_hash_spreads_sequential_keys(void **state) {
  isle__table_t t = {0};
  enum { N = 4096 };
  item_t *items = items_new(N);
  for (size_t i = 0; i < N; i++) {
    items[i].key = (uint64_t)(i / 64 + 1) << 32 | (i % 64 + 1); /* refs */
    assert_int_equal(isle__table_reserve(&t), 0);
    isle__table_insert(&t, &items[i].link, isle__hash_u64(items[i].key));
  }
  size_t longest = check_table(&t);
  assert_true(longest <= 12);
  assert_true(isle__hash_str("a") != isle__hash_str("b"));
  assert_true(isle__hash_str("") != isle__hash_str("a"));
  isle__table_deinit(&t);
  free(items);
}

/* The heap at its cap: the doubling cannot allocate, and the table is as
 * it was, every entry still found. */
static void test_table_reserve_without_memory_leaves_the_table(void **state) {
  isle__table_t t = {0};
  enum { N = 8192 }; /* doubling to 16,384 buckets wants 128 KiB */
  item_t *items = items_new(N);
  for (size_t i = 0; i < N; i++) {
    assert_int_equal(isle__table_reserve(&t), 0);
    isle__table_insert(&t, &items[i].link, isle__hash_u64(items[i].key));
  }
  assert_int_equal(t.count, t.nbuckets); /* full: the next reserve grows */
  isle__tlink_t **buckets = t.buckets;
  size_t nbuckets = t.nbuckets;
  isle_heap_collect();
  isle_heap_set_limit((size_t)support_global_stats().in_use_bytes);
  int rc = isle__table_reserve(&t);
  isle_heap_set_limit(0);
  assert_int_equal(rc, ISLE_ENOMEM);
  assert_ptr_equal(t.buckets, buckets);
  assert_int_equal(t.nbuckets, nbuckets);
  assert_int_equal(t.count, N);
  check_table(&t);
  for (size_t i = 0; i < N; i++)
    assert_ptr_equal(find(&t, items[i].key, isle__hash_u64(items[i].key)),
                     &items[i]);
  assert_int_equal(isle__table_reserve(&t), 0); /* memory again: it grows */
  assert_int_equal(t.nbuckets, 2 * nbuckets);
  check_table(&t);
  isle__table_deinit(&t);
  free(items);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table_zeroed_is_empty_and_finds_nothing),
      cmocka_unit_test(
          test_table_reserve_gives_min_buckets_then_doubles_when_full),
      cmocka_unit_test(test_table_removes_in_any_order_keep_the_rest),
      cmocka_unit_test(test_table_links_sharing_a_hash_are_told_apart_by_key),
      cmocka_unit_test(test_table_hash_spreads_sequential_keys),
      cmocka_unit_test(test_table_reserve_without_memory_leaves_the_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
