/* isle — MIT licensed. */
/*
 * mailbox/spsc: one producer thread sends 20,000,000 messages through the
 * queue to one consumer thread, which checks and frees each. Reports ns/msg
 * (wall time from the start barrier to the consumer's last free, divided by
 * the message count).
 *
 * Placement: producer pinned to CPU 0, consumer to CPU 1 (one thread per
 * CPU). The queue, the payload, the checks and the three implementations
 * (isle, ck, mutex) are described in mailbox_bench.h.
 */
#define MB_PRODUCERS 1
#define MB_PER_PRODUCER 20000000ULL

#include "mailbox_bench.h"
