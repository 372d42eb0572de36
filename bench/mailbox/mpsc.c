/* isle — MIT licensed. */
/*
 * mailbox/mpsc: two producer threads each send 10,000,000 messages through
 * the one queue to one consumer thread, which checks every producer's order
 * and frees each message. Reports ns/msg (wall time from the start barrier
 * to the consumer's last free, divided by all 20,000,000 messages).
 *
 * Placement (two CPUs): producer 0 pinned to CPU 0, producer 1 and the
 * consumer to CPU 1, so the producers run one per core and push at the
 * same time, and the consumer shares a CPU with one of them (yielding it
 * when the queue is empty). The queue, the payload, the checks and the
 * three implementations (isle, ck, mutex) are described in
 * mailbox_bench.h.
 */
#define MB_PRODUCERS 2
#define MB_PER_PRODUCER 10000000ULL

#include "mailbox_bench.h"
