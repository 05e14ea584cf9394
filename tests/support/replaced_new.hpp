// A replacement of the global operator new for the test programs that
// watch allocations: it counts the calling thread's allocations
// (weft_test::t_allocations) and fails them with std::bad_alloc while
// weft_test::t_fail_allocations is set.
//
// It defines the replacement functions: include it in exactly one file of
// a test program.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace weft_test {
inline thread_local std::size_t t_allocations = 0;
inline thread_local bool t_fail_allocations = false;

inline void* counted_allocate(std::size_t n) {
  if (t_fail_allocations) throw std::bad_alloc();
  ++t_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
}  // namespace weft_test

void* operator new(std::size_t n) { return weft_test::counted_allocate(n); }
void* operator new[](std::size_t n) { return weft_test::counted_allocate(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
