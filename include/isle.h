/* isle — MIT licensed. */
/*
 * isle: a message-passing actor runtime with thread-owned heaps.
 * This umbrella header is the whole public API; include only this one.
 */
#ifndef ISLE_H
#define ISLE_H

/* The version of these headers; the build reads the three numbers from
 * here. A 0.x minor release may change the API and the ABI (the shared
 * library's soname is libisle.so.0.MINOR); a patch release changes
 * neither. */
#define ISLE_VERSION_MAJOR 0
#define ISLE_VERSION_MINOR 1
#define ISLE_VERSION_PATCH 0

/* The same as one number, (MAJOR << 16) | (MINOR << 8) | PATCH, which
 * grows with every release, and as a string ("0.1.0"). */
#define ISLE_VERSION_HEX                                                       \
  ((ISLE_VERSION_MAJOR << 16) | (ISLE_VERSION_MINOR << 8) | ISLE_VERSION_PATCH)
#define ISLE__VERSION_STR_(a, b, c) #a "." #b "." #c
#define ISLE__VERSION_STR(a, b, c) ISLE__VERSION_STR_(a, b, c)
#define ISLE_VERSION_STRING                                                    \
  ISLE__VERSION_STR(ISLE_VERSION_MAJOR, ISLE_VERSION_MINOR, ISLE_VERSION_PATCH)

#include "isle/api.h"
#include "isle/error.h"
#include "isle/heap.h"
#include "isle/mailbox.h"
#include "isle/actor.h"
#include "isle/lifecycle.h"
#include "isle/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ===== Version — any thread ============================================= */

/* The version of the library the program runs with, as ISLE_VERSION_HEX
 * is that of the headers it was compiled with: (MAJOR << 16) |
 * (MINOR << 8) | PATCH, so 0.1.0 is 0x000100. A program built against
 * 0.MINOR runs only with a 0.MINOR library (the soname sees to that), so
 * the two differ at most in PATCH. Can't fail. */
ISLE_API unsigned int isle_version(void);

/* The same as "MAJOR.MINOR.PATCH" ("0.1.0"). Can't fail. Ownership: the
 * string is static. */
ISLE_API const char *isle_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* ISLE_H */
