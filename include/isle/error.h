/* isle — MIT licensed. */
/*
 * Error codes. Every function that can fail returns an int: 0 on success or
 * a negative ISLE_E* code from the map below. isle_strerror() names a code.
 * Allocation functions return NULL instead (and set errno to ENOMEM), like
 * malloc; the layers above turn that NULL into ISLE_ENOMEM.
 *
 * Thread safety: everything here may be called from any thread.
 */
#ifndef ISLE_ERROR_H
#define ISLE_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, value, message). Values are stable: never renumber one. */
#define ISLE_ERRNO_MAP(XX)                                                     \
  XX(ENOMEM, -1, "out of memory (heap limit reached or the OS refused)")       \
  XX(EINVAL, -2, "invalid argument")                                           \
  XX(EFULL, -3, "mailbox is full")                                             \
  XX(EDEAD, -4, "actor is dead or mailbox is closed")                          \
  XX(EBUSY, -5, "resource busy")                                               \
  XX(ESTATE, -6, "operation not allowed in the current state")                 \
  XX(EPROTO, -7, "protocol error")                                             \
  XX(EIO, -8, "input/output error")                                            \
  XX(ENOENT, -9, "no such name, monitor, link or timer")                       \
  XX(ESHUTDOWN, -10, "actor was shut down by its supervisor")                  \
  XX(ERESTARTS, -11, "supervisor gave up: too many restarts")                  \
  XX(EKILLED, -12, "actor was killed")

typedef enum isle_errno_e {
  ISLE_OK = 0,
#define ISLE__ERRNO_ENUM(name, value, msg) ISLE_##name = (value),
  ISLE_ERRNO_MAP(ISLE__ERRNO_ENUM)
#undef ISLE__ERRNO_ENUM
} isle_errno_t;

/* A short English message for an error code; 0 gives "success", unknown
 * codes (including positive ones) "unknown error". Ownership: the string
 * is static. */
const char *isle_strerror(int err);

/* The code's name without the prefix ("ENOMEM"); 0 gives "OK", unknown
 * codes "UNKNOWN". Ownership: the string is static. */
const char *isle_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif /* ISLE_ERROR_H */
