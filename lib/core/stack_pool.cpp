#include "core/stack_pool.hpp"

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

stack_pool::stack_pool(std::size_t default_size, stack_kind kind, std::size_t keep)
    : default_size_(normalize_stack_size(default_size)), kind_(kind), keep_(keep) {}

stack_pool::~stack_pool() {
  for (auto [base, len] : slabs_) ::munmap(base, len);
}

void stack_pool::release() noexcept {
  if (--refs_ == 0) delete this;
}

std::size_t stack_pool::mapping_size(std::size_t size) const noexcept {
  return kind_ == stack_kind::guarded ? size + page_size() : size;
}

std::size_t stack_pool::stacks_in_use() noexcept { return g_stacks_in_use.load(std::memory_order_relaxed); }

void* stack_pool::take_pooled() {
  if (!warm_.empty()) {
    void* bottom = warm_.back();
    warm_.pop_back();
    return bottom;
  }
  if (cold_.empty()) {
    const std::size_t len = default_size_ * slab_stacks;
    char* base = static_cast<char*>(map_stack_memory(len));
    slabs_.emplace_back(base, len);
    // Hand out the slab from its start; the rest becomes cold (untouched).
    for (std::size_t i = slab_stacks; i-- > 1;) cold_.push_back(base + i * default_size_);
    return base;
  }
  void* bottom = cold_.back();
  cold_.pop_back();
  return bottom;
}

boost::context::stack_context stack_pool::allocate(std::size_t size) {
  size = size == 0 ? default_size_ : normalize_stack_size(size);
  void* bottom = nullptr;
  if (size == default_size_ && kind_ == stack_kind::pooled) {
    bottom = take_pooled();
  } else {
    const std::size_t len = mapping_size(size);
    bottom = map_stack_memory(len);
    if (kind_ == stack_kind::guarded && ::mprotect(bottom, page_size(), PROT_NONE) != 0) {
      ::munmap(bottom, len);
      throw std::bad_alloc();
    }
  }
  add_ref();
  g_stacks_in_use.fetch_add(1, std::memory_order_relaxed);
  boost::context::stack_context sctx;
  sctx.size = size;
  sctx.sp = static_cast<char*>(bottom) + mapping_size(size);
  return sctx;
}

void stack_pool::deallocate(boost::context::stack_context& sctx) noexcept {
  const std::size_t len = mapping_size(sctx.size);
  void* bottom = static_cast<char*>(sctx.sp) - len;
#if defined(__SANITIZE_ADDRESS__)
  // A finished fiber leaves the redzones of its last frames poisoned: clear
  // them, or they stay on whatever later reuses this memory.
  ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(sctx.sp) - sctx.size, sctx.size);
#endif
  g_stacks_in_use.fetch_sub(1, std::memory_order_relaxed);
  if (sctx.size == default_size_ && kind_ == stack_kind::pooled) {
    warm_.push_back(bottom);
    if (warm_.size() > keep_ + trim_batch) trim();
  } else {
    ::munmap(bottom, len);
  }
  release();
}

void stack_pool::trim() noexcept {
  // Give back the memory of the oldest warm stacks, coalescing neighbours
  // (stacks of one slab usually finish together) into few madvise calls.
  const std::size_t n = warm_.size() - keep_;
  std::vector<void*> old(warm_.begin(), warm_.begin() + static_cast<std::ptrdiff_t>(n));
  warm_.erase(warm_.begin(), warm_.begin() + static_cast<std::ptrdiff_t>(n));
  std::sort(old.begin(), old.end());
  for (std::size_t i = 0; i < old.size();) {
    char* start = static_cast<char*>(old[i]);
    std::size_t j = i + 1;
    while (j < old.size() && static_cast<char*>(old[j]) == start + (j - i) * default_size_) ++j;
    ::madvise(start, (j - i) * default_size_, MADV_DONTNEED);
    i = j;
  }
  cold_.insert(cold_.end(), old.begin(), old.end());
}

}  // namespace weft::detail
