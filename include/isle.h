/* isle — MIT licensed. */
/*
 * isle: a message-passing actor runtime with thread-owned heaps.
 * This umbrella header is the whole public API; include only this one.
 */
#ifndef ISLE_H
#define ISLE_H

#define ISLE_VERSION_MAJOR 0
#define ISLE_VERSION_MINOR 1
#define ISLE_VERSION_PATCH 0

#include "isle/error.h"
#include "isle/heap.h"
#include "isle/mailbox.h"
#include "isle/actor.h"
#include "isle/lifecycle.h"
#include "isle/io.h"

#endif /* ISLE_H */
