// Task stacks: a per-runtime pool of fixed-size mmap'ed stacks, or guarded
// stacks for debugging.
#pragma once

#include <weft/run.hpp>

#include <boost/context/stack_context.hpp>

#include <cstddef>
#include <vector>

namespace weft::detail {

/// Pooled stacks are carved from slabs (one mmap per `slab_stacks` stacks) and
/// reused LIFO, so that the hot stacks stay in cache. At most `keep` free
/// stacks keep their memory; beyond that, the oldest free stacks give their
/// memory back to the system in batches (madvise over adjacent ranges) and
/// are reused last. Address space is returned when the pool is destroyed.
///
/// Reference-counted: the runtime holds one reference and every stack in use
/// holds one, because Boost.Fiber frees a finished fiber's stack lazily (the
/// next time its dispatcher runs), possibly after the runtime is gone.
class stack_pool {
 public:
  stack_pool(std::size_t default_size, stack_kind kind, std::size_t keep);
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;

  /// A stack of `size` bytes (0: the default size). @throws std::bad_alloc.
  boost::context::stack_context allocate(std::size_t size);
  void deallocate(boost::context::stack_context& sctx) noexcept;

  std::size_t default_size() const noexcept { return default_size_; }

  void add_ref() noexcept { ++refs_; }
  void release() noexcept;

  /// Stacks currently handed out, over all pools of the process.
  static std::size_t stacks_in_use() noexcept;

 private:
  ~stack_pool();
  std::size_t mapping_size(std::size_t size) const noexcept;
  void* take_pooled();
  void trim() noexcept;

  std::size_t default_size_;
  stack_kind kind_;
  std::size_t keep_;
  std::vector<void*> warm_;  // free pooled stacks (bottoms) whose memory is kept, oldest first
  std::vector<void*> cold_;  // free pooled stacks whose memory was given back
  std::vector<std::pair<void*, std::size_t>> slabs_;
  std::size_t refs_ = 1;
};

/// Rounds a requested stack size to whole pages, at least the minimum.
std::size_t normalize_stack_size(std::size_t requested) noexcept;

}  // namespace weft::detail
