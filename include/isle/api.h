/* isle — MIT licensed. */
/*
 * Declaration attributes of the public API, included by every public
 * header (users need not include it themselves).
 *
 * ISLE_API marks a function or object that libisle.so exports. The library
 * is compiled with -fvisibility=hidden, so everything not marked, the isle__*
 * internals among them, stays inside it: users cannot come to depend on them,
 * and calls between the library's own files need no PLT indirection.
 *
 * ISLE_MALLOC_ATTR, ISLE_ALLOC_SIZE(n), ISLE_ALLOC_SIZE2(n, m) and
 * ISLE_ALLOC_ALIGN(n) tell the compiler what an allocation function
 * returns, as mimalloc.h does: a fresh block that aliases nothing (malloc)
 * and that the caller must keep (warn_unused_result), of the size in
 * argument n (or n * m), aligned as argument n says. ISLE_NODISCARD is
 * warn_unused_result alone, for realloc, whose result may alias its
 * argument. They let the compiler's object-size checks (_FORTIFY_SOURCE,
 * -Warray-bounds, __builtin_object_size) see through isle_malloc. Each
 * expands to nothing on a compiler that lacks the attribute.
 */
#ifndef ISLE_API_H
#define ISLE_API_H

#if defined(__has_attribute)
#define ISLE__HAS_ATTRIBUTE(x) __has_attribute(x)
#else
#define ISLE__HAS_ATTRIBUTE(x) 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ISLE_API __attribute__((visibility("default")))
#else
#define ISLE_API
#endif

#if ISLE__HAS_ATTRIBUTE(warn_unused_result)
#define ISLE_NODISCARD __attribute__((warn_unused_result))
#else
#define ISLE_NODISCARD
#endif

#if ISLE__HAS_ATTRIBUTE(malloc)
#define ISLE_MALLOC_ATTR __attribute__((malloc)) ISLE_NODISCARD
#else
#define ISLE_MALLOC_ATTR ISLE_NODISCARD
#endif

#if ISLE__HAS_ATTRIBUTE(alloc_size)
#define ISLE_ALLOC_SIZE(n) __attribute__((alloc_size(n)))
#define ISLE_ALLOC_SIZE2(n, m) __attribute__((alloc_size(n, m)))
#else
#define ISLE_ALLOC_SIZE(n)
#define ISLE_ALLOC_SIZE2(n, m)
#endif

#if ISLE__HAS_ATTRIBUTE(alloc_align)
#define ISLE_ALLOC_ALIGN(n) __attribute__((alloc_align(n)))
#else
#define ISLE_ALLOC_ALIGN(n)
#endif

#endif /* ISLE_API_H */
