/* isle — MIT licensed. */
/*
 * Error codes. Every function that can fail returns an int: 0 on success or
 * a negative ISLE_E* code from the map below. isle_strerror() names a code.
 * Allocation functions return NULL instead (and set errno to ENOMEM), like
 * malloc; the layers above turn that NULL into ISLE_ENOMEM, which is
 * -ENOMEM.
 *
 * Thread safety: everything here may be called from any thread.
 */
#ifndef ISLE_ERROR_H
#define ISLE_ERROR_H

#include "isle/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, value, message). A code with an errno twin is that errno
 * negated, as libuv's UV_E* are: ISLE_ENOMEM == -ENOMEM, so a code can be
 * compared with, or returned beside, a system call's -errno without a
 * table. Two are the nearest errno in meaning: ISLE_EFULL is -ENOBUFS ("no
 * buffer space": a bounded queue is full; not -EAGAIN, which the socket
 * calls under the io layer return for "nothing now, try again", so that
 * the two stay apart), ISLE_EDEAD is -ESRCH ("no such process", as kill(2)
 * says of an ended one). Codes with no errno twin count down from -5001,
 * far below every errno (Linux's end at 133) and clear of libuv's own
 * codes (-3000 to -3014, and -4000 to -4095 on Windows, UV_EOF -4095).
 * The numbers are Linux's, written out so that this header need not
 * include <errno.h>; heap/error.c checks them against <errno.h> at build
 * time. The values were renumbered once, in 0.x (they were -1 to -12 in
 * this order); they are stable from here on: never renumber one. */
#define ISLE_ERRNO_MAP(XX)                                                     \
  XX(ENOMEM, -12, "out of memory (heap limit reached or the OS refused)")      \
  XX(EINVAL, -22, "invalid argument")                                          \
  XX(EFULL, -105, "mailbox is full")                                           \
  XX(EDEAD, -3, "actor is dead or mailbox is closed")                          \
  XX(EBUSY, -16, "resource busy")                                              \
  XX(ESTATE, -5001, "operation not allowed in the current state")              \
  XX(EPROTO, -71, "protocol error")                                            \
  XX(EIO, -5, "input/output error")                                            \
  XX(ENOENT, -2, "no such name, monitor, link or timer")                       \
  XX(ESHUTDOWN, -108, "actor was shut down by its supervisor")                 \
  XX(ERESTARTS, -5002, "supervisor gave up: too many restarts")                \
  XX(EKILLED, -5003, "actor was killed")

typedef enum isle_errno_e {
  ISLE_OK = 0,
#define ISLE__ERRNO_ENUM(name, value, msg) ISLE_##name = (value),
  ISLE_ERRNO_MAP(ISLE__ERRNO_ENUM)
#undef ISLE__ERRNO_ENUM
} isle_errno_t;

/* A short English message for an error code; 0 gives "success", unknown
 * codes (including positive ones) "unknown error". Ownership: the string
 * is static. */
ISLE_API const char *isle_strerror(int err);

/* The code's name without the prefix ("ENOMEM"); 0 gives "OK", unknown
 * codes "UNKNOWN". Ownership: the string is static. */
ISLE_API const char *isle_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif /* ISLE_ERROR_H */
