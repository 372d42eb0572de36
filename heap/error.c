/* isle — MIT licensed. */
/*
 * Error names and messages, generated from ISLE_ERRNO_MAP. Any thread.
 * It lives in heap/ because the heap is the bottom layer every other layer
 * links against.
 */
#include <errno.h> /* the E* values the codes negate */

#include "isle/error.h"

/* include/isle/error.h writes the errno twins out as Linux's numbers; a
 * platform whose <errno.h> disagrees must not build a library whose codes
 * silently differ from -errno. */
_Static_assert(ISLE_ENOMEM == -ENOMEM, "ISLE_ENOMEM is -ENOMEM");
_Static_assert(ISLE_EINVAL == -EINVAL, "ISLE_EINVAL is -EINVAL");
_Static_assert(ISLE_EFULL == -ENOBUFS, "ISLE_EFULL is -ENOBUFS");
_Static_assert(ISLE_EDEAD == -ESRCH, "ISLE_EDEAD is -ESRCH");
_Static_assert(ISLE_EBUSY == -EBUSY, "ISLE_EBUSY is -EBUSY");
_Static_assert(ISLE_EPROTO == -EPROTO, "ISLE_EPROTO is -EPROTO");
_Static_assert(ISLE_EIO == -EIO, "ISLE_EIO is -EIO");
_Static_assert(ISLE_ENOENT == -ENOENT, "ISLE_ENOENT is -ENOENT");
_Static_assert(ISLE_ESHUTDOWN == -ESHUTDOWN, "ISLE_ESHUTDOWN is -ESHUTDOWN");

/* The codes without an errno twin lie below every errno value and below
 * libuv's codes (UV_EOF is -4095), so none can be mistaken for another. */
_Static_assert(ISLE_ESTATE <= -5001 && ISLE_ERESTARTS <= -5001 &&
                   ISLE_EKILLED <= -5001,
               "codes with no errno twin are in the private range");

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
