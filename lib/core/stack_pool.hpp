// Task stacks: a per-runtime pool of fixed-size mmap'ed stacks with guards
// below them, or stacks in their own mappings for debugging.
#pragma once

#include <weft/run.hpp>

#include <boost/context/stack_context.hpp>

#include <cstddef>
#include <unordered_set>
#include <vector>

namespace weft::detail {

/// Pooled stacks are carved from slabs (one mmap per `slab_stacks` stacks) and
/// reused LIFO, so that the hot stacks stay in cache. At most `keep` free
/// stacks keep their memory; beyond that, the oldest free stacks give their
/// memory back to the system in batches (madvise over adjacent ranges) and
/// are reused last. Address space is returned when the pool is destroyed.
///
/// Below every stack lie stack_guard_size() bytes for its guard (see
/// stack_guard.hpp), installed once, when the slab is mapped: guard markers
/// and mprotect'ed pages both survive the trimming. Where neither can be
/// had, the stack has a canary instead, which its task checks when it parks.
///
/// Reference-counted: the runtime holds one reference and every stack in use
/// holds one, because Boost.Fiber frees a finished fiber's stack lazily (the
/// next time its dispatcher runs), possibly after the runtime is gone.
class stack_pool {
 public:
  /// @throws std::system_error if options.stack_guard cannot be had here.
  explicit stack_pool(const run_options& options);
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;

  /// A stack of `size` bytes (0: the default size); `*canary` tells whether
  /// it has a canary (written at its lowest address) instead of a guard.
  /// @throws std::bad_alloc.
  boost::context::stack_context allocate(std::size_t size, bool* canary);
  void deallocate(boost::context::stack_context& sctx) noexcept;

  std::size_t default_size() const noexcept { return default_size_; }

  void add_ref() noexcept { ++refs_; }
  void release() noexcept;

  /// Stacks currently handed out, over all pools of the process.
  static std::size_t stacks_in_use() noexcept;

 private:
  ~stack_pool();
  struct slab {
    char* base;
    stack_guard guard;  // what its stacks got: madvise, mprotect, canary or none
  };
  void* take_pooled();
  bool pooled_has_canary(const void* bottom) const noexcept;
  void* map_own(std::size_t size, bool* canary);
  void unmap_own(void* bottom, std::size_t size) noexcept;
  void trim() noexcept;

  std::size_t default_size_;
  stack_kind kind_;
  stack_guard guard_;   // resolved: madvise, mprotect, canary or none
  std::size_t gap_;     // bytes below each stack for its guard (0 with stack_guard::none)
  std::size_t stride_;  // from one pooled stack to the next in a slab
  std::size_t keep_;
  std::vector<void*> warm_;  // free pooled stacks (bottoms) whose memory is kept, oldest first
  std::vector<void*> cold_;  // free pooled stacks whose memory was given back
  std::vector<slab> slabs_;
  std::vector<char*> canary_slabs_;  // bases of slabs whose stacks have canaries, sorted
  std::unordered_set<void*> own_mprotected_;  // own mappings (bottoms) with an mprotect guard
  std::size_t refs_ = 1;
};

/// Rounds a requested stack size to whole pages, at least the minimum.
std::size_t normalize_stack_size(std::size_t requested) noexcept;

}  // namespace weft::detail
