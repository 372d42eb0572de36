/* isle — MIT licensed. */
/*
 * A program outside the isle tree, built against an installed isle (by
 * tests/install/run.sh) to prove that the headers, libraries, isle.pc and
 * the CMake package work for a user, and that the library it runs with has
 * the headers' version.
 */
#include <isle.h>

#include <stdio.h>  /* puts */
#include <string.h> /* memset */

int main(void) {
  /* The library it runs with is the one it was built against. */
  if (isle_version() != ISLE_VERSION_HEX)
    return 1;
  char *p = isle_malloc(100);

  if (p == NULL)
    return 1;
  memset(p, 0x5a, 100);
  if (p[99] != 0x5a)
    return 1;
  isle_free(p);
  puts("ok");
  return 0;
}
