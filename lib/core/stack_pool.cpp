#include "core/stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

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
}  // namespace

std::size_t normalize_stack_size(std::size_t requested) noexcept {
  const std::size_t page = page_size();
  if (requested < min_stack_size) requested = min_stack_size;
  return (requested + page - 1) / page * page;
}

stack_pool::stack_pool(std::size_t default_size, stack_kind kind, std::size_t keep)
    : default_size_(normalize_stack_size(default_size)), kind_(kind), keep_(keep) {}

stack_pool::~stack_pool() {
  for (void* bottom : free_) ::munmap(bottom, mapping_size(default_size_));
}

void stack_pool::release() noexcept {
  if (--refs_ == 0) delete this;
}

std::size_t stack_pool::mapping_size(std::size_t size) const noexcept {
  return kind_ == stack_kind::guarded ? size + page_size() : size;
}

std::size_t stack_pool::stacks_in_use() noexcept { return g_stacks_in_use.load(std::memory_order_relaxed); }

boost::context::stack_context stack_pool::allocate(std::size_t size) {
  size = size == 0 ? default_size_ : normalize_stack_size(size);
  void* bottom = nullptr;
  if (size == default_size_ && !free_.empty()) {
    bottom = free_.back();
    free_.pop_back();
  } else {
    const std::size_t len = mapping_size(size);
    // MAP_NORESERVE: only touched pages count; a parked task touches a few.
    bottom = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                    -1, 0);
    if (bottom == MAP_FAILED) throw std::bad_alloc();
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
  if (sctx.size == default_size_ && free_.size() < keep_) {
    free_.push_back(bottom);
  } else {
    ::munmap(bottom, len);
  }
  g_stacks_in_use.fetch_sub(1, std::memory_order_relaxed);
  release();
}

}  // namespace weft::detail
