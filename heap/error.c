/* isle — MIT licensed. */
/*
 * Error names and messages, generated from ISLE_ERRNO_MAP. Any thread.
 * It lives in heap/ because the heap is the bottom layer every other layer
 * links against.
 */
#include "isle/error.h"

const char *isle_strerror(int err) {
  switch (err) {
  case ISLE_OK:
    return "success";
#define ISLE__ERRNO_MSG(name, value, msg)                                      \
  case ISLE_##name:                                                            \
    return msg;
    ISLE_ERRNO_MAP(ISLE__ERRNO_MSG)
#undef ISLE__ERRNO_MSG
  default:
    return "unknown error";
  }
}

const char *isle_err_name(int err) {
  switch (err) {
  case ISLE_OK:
    return "OK";
#define ISLE__ERRNO_NAME(name, value, msg)                                     \
  case ISLE_##name:                                                            \
    return #name;
    ISLE_ERRNO_MAP(ISLE__ERRNO_NAME)
#undef ISLE__ERRNO_NAME
  default:
    return "UNKNOWN";
  }
}
