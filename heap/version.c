/* isle — MIT licensed. */
/*
 * The library's version at run time (include/isle.h), so that a program
 * can tell which libisle.so it was loaded with. Any thread. It lives in
 * heap/, the bottom layer, so that every build of the library has it.
 */
#include "isle.h"

unsigned int isle_version(void) {
  return ISLE_VERSION_HEX;
}

const char *isle_version_string(void) {
  return ISLE_VERSION_STRING;
}
