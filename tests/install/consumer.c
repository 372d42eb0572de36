/* isle — MIT licensed. */
/*
 * A program outside the isle tree, built against an installed isle (by
 * tests/install/run.sh) to prove that the headers, libraries, isle.pc and
 * the CMake package work for a user.
 */
#include <isle.h>

#include <stdio.h>  /* puts */
#include <string.h> /* memset */

int main(void) {
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
