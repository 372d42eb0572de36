/* isle — MIT licensed. */
/*
 * The size classes of small blocks (<= ISLE_HEAP_SMALL_MAX = 32 KiB).
 *
 * 16 to 128 bytes step by 16 (the minimum alignment), then eight classes
 * per doubling: 144, 160, ... 256, 288, ... 512, ... 32768. 72 classes.
 * Internal waste, (class - request) / class, is at most 1/9 (11.1%) for
 * every request above 128 bytes; below, the 16-byte granularity that
 * alignment imposes bounds it (worst: 17 bytes in a 32-byte block).
 *
 * A class's spans have max(8, ceil(8 * size / page)) pages of 8 KiB: at
 * least 64 KiB and at least 8 blocks, so the tail a span cannot use is
 * below one block, at most 1/8 of the span.
 *
 * tests/heap/test_classes.c checks the tables against each other and
 * against isle__size_class, which computes the mapping above 1 KiB.
 */
#include "internal.h"

const uint32_t isle__class_size[ISLE__CLASSES] = {
    16,    32,    48,    64,    80,    96,    112,   128,   144,   160,   176,
    192,   208,   224,   240,   256,   288,   320,   352,   384,   416,   448,
    480,   512,   576,   640,   704,   768,   832,   896,   960,   1024,  1152,
    1280,  1408,  1536,  1664,  1792,  1920,  2048,  2304,  2560,  2816,  3072,
    3328,  3584,  3840,  4096,  4608,  5120,  5632,  6144,  6656,  7168,  7680,
    8192,  9216,  10240, 11264, 12288, 13312, 14336, 15360, 16384, 18432, 20480,
    22528, 24576, 26624, 28672, 30720, 32768,
};

const uint8_t isle__class_pages[ISLE__CLASSES] = {
    8, 8, 8, 8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    8, 8, 8, 8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    8, 8, 8, 8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    8, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 26, 28, 30, 32,
};

/* Class of sizes 0..1024, indexed by (size + 15) / 16. */
const uint8_t isle__small_class[(1024 / 16) + 1] = {
    0,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23, 23, 24,
    24, 24, 24, 25, 25, 25, 25, 26, 26, 26, 26, 27, 27, 27, 27, 28, 28,
    28, 28, 29, 29, 29, 29, 30, 30, 30, 30, 31, 31, 31, 31,
};
