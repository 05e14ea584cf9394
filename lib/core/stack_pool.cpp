#include "core/stack_pool.hpp"

#include "core/stack_guard.hpp"

#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <algorithm>
#include <atomic>
#include <new>

namespace weft::detail {

namespace {
std::atomic<std::size_t> g_stacks_in_use{0};

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

constexpr std::size_t min_stack_size = 16 * 1024;
// Stacks per slab mapping, and how far the warm list may overshoot `keep`
// before a trim (so that trims are batched).
constexpr std::size_t slab_stacks = 64;
constexpr std::size_t trim_batch = 256;

// Room for `n` more elements, growing geometrically (a reserve() of the
// exact size would copy the whole vector every time).
template <class V>
void reserve_more(V& v, std::size_t n) {
  if (v.capacity() - v.size() < n) v.reserve(std::max(v.size() + n, 2 * v.capacity()));
}

void* map_stack_memory(std::size_t len) {
  // MAP_NORESERVE: only touched pages count; a parked task touches a few.
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1,
                   0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}
}  // namespace

std::size_t normalize_stack_size(std::size_t requested) noexcept {
  const std::size_t page = page_size();
  if (requested < min_stack_size) requested = min_stack_size;
  return (requested + page - 1) / page * page;
}

stack_pool::stack_pool(const run_options& options)
    : default_size_(normalize_stack_size(options.stack_size)),
      kind_(options.stacks),
      guard_(resolve_stack_guard(options.stack_guard)),
      gap_(guard_ == stack_guard::none && kind_ == stack_kind::pooled ? 0 : stack_guard_size()),
      stride_(default_size_ + gap_),
      keep_(options.stack_pool_size) {}

stack_pool::~stack_pool() {
  for (const slab& s : slabs_) {
    ::munmap(s.base, stride_ * slab_stacks);
    if (s.guard == stack_guard::mprotect) release_mprotect_guards(slab_stacks);
  }
}

void stack_pool::release() noexcept {
  if (--refs_ == 0) delete this;
}

std::size_t stack_pool::stacks_in_use() noexcept { return g_stacks_in_use.load(std::memory_order_relaxed); }

void* stack_pool::take_pooled() {
  if (!warm_.empty()) {
    void* bottom = warm_.back();
    warm_.pop_back();
    return bottom;
  }
  if (cold_.empty()) {
    // A slab: [gap][stack][gap][stack]...; the guards go in the gaps, all
    // at once (the address space is all that guards cost).
    // Room first, so that nothing throws once the slab is mapped.
    // warm_ and cold_ can each come to hold every pooled stack: with room
    // for all of them, deallocate() and trim() (noexcept) never allocate.
    reserve_more(slabs_, 1);
    reserve_more(canary_slabs_, 1);
    const std::size_t all = (slabs_.size() + 1) * slab_stacks;
    reserve_more(cold_, all - cold_.size());
    reserve_more(warm_, all - warm_.size());
    const std::size_t len = stride_ * slab_stacks;
    char* base = static_cast<char*>(map_stack_memory(len));
    const stack_guard got = guard_ == stack_guard::madvise || guard_ == stack_guard::mprotect
                                ? install_stack_guards(base, stride_, slab_stacks, guard_)
                                : guard_;
    slabs_.push_back({base, got});
    if (got == stack_guard::canary)
      canary_slabs_.insert(std::upper_bound(canary_slabs_.begin(), canary_slabs_.end(), base), base);
    // Hand out the slab from its start; the rest becomes cold (untouched).
    for (std::size_t i = slab_stacks; i-- > 1;) cold_.push_back(base + i * stride_ + gap_);
    return base + gap_;
  }
  void* bottom = cold_.back();
  cold_.pop_back();
  return bottom;
}

bool stack_pool::pooled_has_canary(const void* bottom) const noexcept {
  // Mixed pools (the mprotect budget ran out while this pool grew) are rare:
  // the common cases answer without a search.
  if (canary_slabs_.empty()) return false;
  if (canary_slabs_.size() == slabs_.size()) return true;
  auto it = std::upper_bound(canary_slabs_.begin(), canary_slabs_.end(), static_cast<const char*>(bottom),
                             [](const char* b, const char* s) { return b < s; });
  return it != canary_slabs_.begin() && static_cast<const char*>(bottom) < *(it - 1) + stride_ * slab_stacks;
}

void* stack_pool::map_own(std::size_t size, bool* canary) {
  // [gap][stack] in a mapping of its own. stack_kind::guarded always gets a
  // real guard, even beyond the mprotect budget.
  const bool debug = kind_ == stack_kind::guarded;
  const std::size_t len = gap_ + size;
  char* base = static_cast<char*>(map_stack_memory(len));
  stack_guard want = guard_;
  if (debug && (want == stack_guard::canary || want == stack_guard::none))
    want = resolve_stack_guard(stack_guard::automatic);
  const stack_guard got = want == stack_guard::madvise || want == stack_guard::mprotect
                              ? install_stack_guards(base, len, 1, want, /*forced=*/debug)
                              : want;
  if (got == stack_guard::none && debug) {
    ::munmap(base, len);
    throw std::bad_alloc();
  }
  if (got == stack_guard::mprotect) {
    try {
      own_mprotected_.insert(base + gap_);
    } catch (...) {
      ::munmap(base, len);
      release_mprotect_guards(1);
      throw;
    }
  }
  *canary = got == stack_guard::canary;
  return base + gap_;
}

void stack_pool::unmap_own(void* bottom, std::size_t size) noexcept {
  ::munmap(static_cast<char*>(bottom) - gap_, gap_ + size);
  if (!own_mprotected_.empty() && own_mprotected_.erase(bottom) != 0) release_mprotect_guards(1);
}

boost::context::stack_context stack_pool::allocate(std::size_t size, bool* canary) {
  size = size == 0 ? default_size_ : normalize_stack_size(size);
  void* bottom = nullptr;
  if (size == default_size_ && kind_ == stack_kind::pooled) {
    bottom = take_pooled();
    *canary = pooled_has_canary(bottom);
  } else {
    bottom = map_own(size, canary);
  }
  // Written at every use: trimming zeroes it, and so may the last task.
  if (*canary) write_stack_canary(bottom);
  add_ref();
  g_stacks_in_use.fetch_add(1, std::memory_order_relaxed);
  boost::context::stack_context sctx;
  sctx.size = size;
  sctx.sp = static_cast<char*>(bottom) + size;
  return sctx;
}

void stack_pool::deallocate(boost::context::stack_context& sctx) noexcept {
  void* bottom = static_cast<char*>(sctx.sp) - sctx.size;
#if defined(__SANITIZE_ADDRESS__)
  // A finished fiber leaves the redzones of its last frames poisoned: clear
  // them, or they stay on whatever later reuses this memory.
  ASAN_UNPOISON_MEMORY_REGION(bottom, sctx.size);
#endif
  g_stacks_in_use.fetch_sub(1, std::memory_order_relaxed);
  if (sctx.size == default_size_ && kind_ == stack_kind::pooled) {
    warm_.push_back(bottom);  // within the capacity reserved per slab
    if (warm_.size() > keep_ + trim_batch) trim();
  } else {
    unmap_own(bottom, sctx.size);
  }
  release();
}

void stack_pool::trim() noexcept {
  // Give back the memory of the oldest warm stacks, coalescing neighbours
  // (stacks of one slab usually finish together) into few madvise calls.
  // A range spans the gaps between its stacks: MADV_DONTNEED keeps guard
  // markers and mprotect'ed pages as they are.
  // Sorted in place and moved within reserved capacity: no allocation.
  const auto n = static_cast<std::ptrdiff_t>(warm_.size() - keep_);
  const auto old = warm_.begin() + n;
  std::sort(warm_.begin(), old);
  for (auto i = warm_.begin(); i != old;) {
    char* start = static_cast<char*>(*i);
    auto j = i + 1;
    while (j != old && static_cast<char*>(*j) == start + static_cast<std::size_t>(j - i) * stride_) ++j;
    ::madvise(start, static_cast<std::size_t>(j - i - 1) * stride_ + default_size_, MADV_DONTNEED);
    i = j;
  }
  cold_.insert(cold_.end(), warm_.begin(), old);  // within the capacity reserved per slab
  warm_.erase(warm_.begin(), old);
}

}  // namespace weft::detail
