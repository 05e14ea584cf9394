// Recycled memory for the short-lived objects of one thread: coroutine
// frames, the state of Asio operations started from tasks, portal jobs.
//
// Contract: frame_allocate(n) returns at least n bytes aligned for any
// fundamental type (as operator new does); frame_deallocate(p, n) takes
// back memory from frame_allocate with the same n, on the same thread or
// another (memory simply moves to that thread's pool). Blocks up to 2 KiB
// are kept per thread in 64-byte size classes, at most 64 per class; the
// rest goes back to operator delete. Not a checkpoint.
#pragma once

#include <cstddef>

namespace weft::lowlevel {

/// @throws std::bad_alloc.
void* frame_allocate(std::size_t size);
void frame_deallocate(void* frame, std::size_t size) noexcept;

/// A standard allocator over frame_allocate, for Asio handler memory:
/// tasks start Asio operations outside io_context::run, where Asio's own
/// recycling allocator falls back to operator new.
template <class T>
struct recycling_allocator {
  using value_type = T;
  recycling_allocator() noexcept = default;
  template <class U>
  recycling_allocator(const recycling_allocator<U>&) noexcept {}
  /// @throws std::bad_alloc.
  T* allocate(std::size_t n) { return static_cast<T*>(frame_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { frame_deallocate(p, n * sizeof(T)); }
  template <class U>
  friend bool operator==(const recycling_allocator&, const recycling_allocator<U>&) noexcept {
    return true;
  }
};

}  // namespace weft::lowlevel
