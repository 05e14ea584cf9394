// Task stacks: a per-runtime pool of fixed-size mmap'ed stacks with guards
// below them, or stacks in their own mappings for debugging.
#pragma once

#include <weft/run.hpp>

#include <boost/context/stack_context.hpp>

#include <cstddef>
#include <memory>
#include <unordered_set>
#include <vector>

namespace weft::detail {

/// Pooled stacks are carved from slabs (one mmap per slab of up to 64
/// stacks) and reused LIFO, so that the hot stacks stay in cache. Each
/// stack size has its own pool (a size class: the runtime's default size,
/// and every size tasks ask for with task_options::stack_size). Per size,
/// at most `keep` free stacks keep their memory; beyond that, the oldest
/// free stacks give their memory back to the system in batches (madvise
/// over adjacent ranges) and are reused last. A slab whose stacks are all
/// free and have given their memory back is unmapped at that moment, so
/// that the address space of a burst is returned too. When the pool ends, a
/// few slabs with warm stacks go to a process-wide cache instead, for the
/// next pool with the same layout (see cache_slabs in stack_pool.cpp).
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
  /// Bytes of address space mapped for pooled stacks (guards included),
  /// over all pools of the process.
  static std::size_t mapped_bytes() noexcept;
  /// Slabs mapped so far, over all pools of the process.
  static std::size_t slabs_mapped() noexcept;

 private:
  ~stack_pool();
  struct slab {
    char* base;
    stack_guard guard;  // what its stacks got: madvise, mprotect, canary or none
    std::size_t busy;   // its stacks in use or free with their memory (not cold)
  };
  /// The pool of one stack size.
  struct size_class {
    std::size_t size;
    std::size_t stride;    // from one stack to the next in a slab
    std::size_t per_slab;  // stacks per slab
    std::vector<void*> warm;  // free stacks (bottoms) whose memory is kept, oldest first
    std::vector<void*> cold;  // free stacks whose memory was given back (or never touched)
    std::vector<slab> slabs;  // sorted by base
    std::size_t canary_slabs = 0;
    std::size_t slab_bytes() const noexcept { return stride * per_slab; }
    slab& slab_of(const void* bottom) noexcept;
  };
  size_class& class_of(std::size_t size);
  void* take_pooled(size_class& c);
  void map_slab(size_class& c);
  /// Unmaps the slabs of `c` for which `which(slab)` holds (the caller
  /// drops them from c.slabs).
  template <class Pred>
  void unmap_slabs(size_class& c, Pred which) noexcept;
  void* map_own(std::size_t size, bool* canary);
  void unmap_own(void* bottom, std::size_t size) noexcept;
  void trim(size_class& c) noexcept;
  /// Hands slabs with warm stacks to the process's cache (~stack_pool),
  /// marking them (base = nullptr) so that they are not unmapped.
  void cache_slabs(size_class& c) noexcept;
  /// Takes a slab of c's layout from the cache, its stacks warm. Needs the
  /// room map_slab reserves.
  bool reuse_cached_slab(size_class& c) noexcept;

  std::size_t default_size_;
  stack_kind kind_;
  stack_guard guard_;  // resolved: madvise, mprotect, canary or none
  std::size_t gap_;    // bytes below each stack for its guard (0 with stack_guard::none)
  std::size_t keep_;
  std::vector<std::unique_ptr<size_class>> classes_;  // [0]: the default size
  std::unordered_set<void*> own_mprotected_;  // own mappings (bottoms) with an mprotect guard
  std::size_t refs_ = 1;
};

/// Unmaps the slabs that ended pools left for later ones (weft::release_cached_stacks).
void release_cached_stacks() noexcept;

/// Rounds a requested stack size to whole pages, at least the minimum.
std::size_t normalize_stack_size(std::size_t requested) noexcept;

}  // namespace weft::detail
