#include "core/stack_pool.hpp"

#include "core/stack_guard.hpp"

#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <weft/detail/core.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <new>

namespace weft::detail {

namespace {
std::atomic<std::size_t> g_stacks_in_use{0};
std::atomic<std::size_t> g_mapped_bytes{0};
std::atomic<std::size_t> g_slabs_mapped{0};

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

constexpr std::size_t min_stack_size = 16 * 1024;
// At most this many stacks per slab mapping, and at most this much address
// space per slab (large stacks come a few per slab); and how far a warm list
// may overshoot `keep` before a trim (so that trims are batched).
constexpr std::size_t max_slab_stacks = 64;
constexpr std::size_t max_slab_bytes = 16 * 1024 * 1024;
constexpr std::size_t trim_batch = 256;

// Room for `n` more elements, growing geometrically (a reserve() of the
// exact size would copy the whole vector every time).
template <class V>
void reserve_more(V& v, std::size_t n) {
  if (v.capacity() - v.size() < n) v.reserve(std::max(v.size() + n, 2 * v.capacity()));
}

// Slabs that outlive their runtime. When a pool ends, up to
// max_cached_slabs of its slabs that hold warm stacks stay mapped, with
// their guards and the top cached_warm_bytes of each warm stack's memory,
// for the next pool of the process with the same stack layout: a program
// that runs runtimes one after another (tests, a runtime per thread or per
// job) does not fault its stacks in again each time, as freed heap memory
// is reused by malloc. The oldest slab makes room for a newer one.
constexpr std::size_t max_cached_slabs = 4;
constexpr std::size_t cached_warm_bytes = 32 * 1024;

struct cached_slab {
  char* base = nullptr;
  std::size_t size = 0;      // of each stack
  std::size_t stride = 0;    // from one stack to the next
  std::size_t per_slab = 0;  // stacks
  stack_guard wanted{};      // the pool's guard mode
  stack_guard got{};         // what the slab's stacks have
};

struct slab_cache {
  std::mutex mutex;
  std::array<cached_slab, max_cached_slabs> slabs;  // oldest first
  std::size_t count = 0;
};

slab_cache& the_slab_cache() {
  static slab_cache* cache = new slab_cache;  // never destroyed: pools may end at exit
  return *cache;
}

void unmap_cached(const cached_slab& s) noexcept {
  ::munmap(s.base, s.stride * s.per_slab);
  if (s.got == stack_guard::mprotect) release_mprotect_guards(s.per_slab);
  g_mapped_bytes.fetch_sub(s.stride * s.per_slab, std::memory_order_relaxed);
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
      keep_(options.stack_pool_size) {
  if (kind_ == stack_kind::pooled) (void)class_of(default_size_);
}

stack_pool::~stack_pool() {
  for (auto& c : classes_) {
    cache_slabs(*c);
    unmap_slabs(*c, [](const slab& s) { return s.base != nullptr; });
  }
}

void stack_pool::cache_slabs(size_class& c) noexcept {
  // The slabs with warm stacks (every stack is free now), most first.
  std::array<slab*, max_cached_slabs> chosen{};
  std::size_t n = 0;
  for (slab& s : c.slabs) {
    if (s.busy == 0) continue;
    if (n < max_cached_slabs) {
      chosen[n++] = &s;
    } else {
      auto least = std::min_element(chosen.begin(), chosen.end(), [](slab* a, slab* b) { return a->busy < b->busy; });
      if ((*least)->busy < s.busy) *least = &s;
    }
  }
  if (n == 0) return;
  // Deep stack memory goes back (one call per slab where the kernel can);
  // the top of each stack, where tasks mostly live, stays.
  if (c.size > cached_warm_bytes)
    for (std::size_t i = 0; i < n; ++i)
      (void)madvise_strided(chosen[i]->base + gap_, c.stride, c.size - cached_warm_bytes, c.per_slab, MADV_DONTNEED);
  std::array<cached_slab, max_cached_slabs> evicted{};
  std::size_t n_evicted = 0;
  {
    slab_cache& cache = the_slab_cache();
    std::lock_guard lock(cache.mutex);
    for (std::size_t i = 0; i < n; ++i) {
      if (cache.count == max_cached_slabs) {
        evicted[n_evicted++] = cache.slabs[0];
        std::move(cache.slabs.begin() + 1, cache.slabs.end(), cache.slabs.begin());
        --cache.count;
      }
      cache.slabs[cache.count++] = cached_slab{chosen[i]->base, c.size, c.stride, c.per_slab, guard_, chosen[i]->guard};
      chosen[i]->base = nullptr;  // not unmapped below
    }
  }
  for (std::size_t i = 0; i < n_evicted; ++i) unmap_cached(evicted[i]);
}

bool stack_pool::reuse_cached_slab(size_class& c) noexcept {
  cached_slab found;
  {
    slab_cache& cache = the_slab_cache();
    std::lock_guard lock(cache.mutex);
    for (std::size_t i = cache.count; i-- > 0;) {  // the newest first
      const cached_slab& s = cache.slabs[i];
      if (s.size != c.size || s.stride != c.stride || s.per_slab != c.per_slab || s.wanted != guard_) continue;
      found = s;
      std::move(cache.slabs.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                cache.slabs.begin() + static_cast<std::ptrdiff_t>(cache.count),
                cache.slabs.begin() + static_cast<std::ptrdiff_t>(i));
      --cache.count;
      break;
    }
  }
  if (found.base == nullptr) return false;
  // Every stack counts as warm (holding memory): handed out lowest first,
  // as in its first life, so the stacks that were used come first.
  c.slabs.insert(std::upper_bound(c.slabs.begin(), c.slabs.end(), found.base,
                                  [](const char* b, const slab& s) { return b < s.base; }),
                 slab{found.base, found.got, c.per_slab});
  if (found.got == stack_guard::canary) ++c.canary_slabs;
  for (std::size_t i = c.per_slab; i-- > 0;) c.warm.push_back(found.base + i * c.stride + gap_);
  return true;
}

void release_cached_stacks() noexcept {
  std::array<cached_slab, max_cached_slabs> slabs{};
  std::size_t n = 0;
  {
    slab_cache& cache = the_slab_cache();
    std::lock_guard lock(cache.mutex);
    n = std::exchange(cache.count, 0);
    std::copy_n(cache.slabs.begin(), n, slabs.begin());
  }
  for (std::size_t i = 0; i < n; ++i) unmap_cached(slabs[i]);
}

void stack_pool::release() noexcept {
  if (--refs_ == 0) delete this;
}

std::size_t stack_pool::stacks_in_use() noexcept { return g_stacks_in_use.load(std::memory_order_relaxed); }
std::size_t stack_pool::mapped_bytes() noexcept { return g_mapped_bytes.load(std::memory_order_relaxed); }
std::size_t stack_pool::slabs_mapped() noexcept { return g_slabs_mapped.load(std::memory_order_relaxed); }

stack_pool::slab& stack_pool::size_class::slab_of(const void* bottom) noexcept {
  auto it = std::upper_bound(slabs.begin(), slabs.end(), static_cast<const char*>(bottom),
                             [](const char* b, const slab& s) { return b < s.base; });
  WEFT_INVARIANT(it != slabs.begin());
  return *(it - 1);
}

stack_pool::size_class& stack_pool::class_of(std::size_t size) {
  // Few sizes per program: a linear search, the default size first.
  for (auto& c : classes_)
    if (c->size == size) return *c;
  auto c = std::make_unique<size_class>();
  c->size = size;
  c->stride = size + gap_;
  c->per_slab = std::clamp<std::size_t>(max_slab_bytes / c->stride, 1, max_slab_stacks);
  reserve_more(classes_, 1);
  classes_.push_back(std::move(c));
  return *classes_.back();
}

void stack_pool::map_slab(size_class& c) {
  // A slab: [gap][stack][gap][stack]...; the guards go in the gaps, all at
  // once (the address space is all that guards cost).
  // Room first, so that nothing throws once the slab is mapped. warm and
  // cold can each come to hold every stack of the class: with room for all
  // of them, deallocate() and trim() (noexcept) never allocate.
  reserve_more(c.slabs, 1);
  const std::size_t all = (c.slabs.size() + 1) * c.per_slab;
  reserve_more(c.cold, all - c.cold.size());
  reserve_more(c.warm, all - c.warm.size());
  if (reuse_cached_slab(c)) return;
  const std::size_t len = c.slab_bytes();
  char* base = static_cast<char*>(map_stack_memory(len));
  const stack_guard got = guard_ == stack_guard::madvise || guard_ == stack_guard::mprotect
                              ? install_stack_guards(base, c.stride, c.per_slab, guard_)
                              : guard_;
  c.slabs.insert(std::upper_bound(c.slabs.begin(), c.slabs.end(), base,
                                  [](const char* b, const slab& s) { return b < s.base; }),
                 slab{base, got, 0});
  if (got == stack_guard::canary) ++c.canary_slabs;
  g_mapped_bytes.fetch_add(len, std::memory_order_relaxed);
  g_slabs_mapped.fetch_add(1, std::memory_order_relaxed);
  // Handed out from its start: the lowest stack is taken first.
  for (std::size_t i = c.per_slab; i-- > 0;) c.cold.push_back(base + i * c.stride + gap_);
}

template <class Pred>
void stack_pool::unmap_slabs(size_class& c, Pred which) noexcept {
  // Slabs mapped one after another usually lie next to each other (the
  // kernel hands out addresses downwards): one munmap per run of adjacent
  // slabs, not one per slab, at the end of a burst.
  const std::size_t len = c.slab_bytes();
  char* run = nullptr;
  std::size_t run_len = 0;
  for (const slab& s : c.slabs) {
    if (!which(s)) continue;
    if (s.guard == stack_guard::mprotect) release_mprotect_guards(c.per_slab);
    g_mapped_bytes.fetch_sub(len, std::memory_order_relaxed);
    if (run != nullptr && run + run_len == s.base) {
      run_len += len;
      continue;
    }
    if (run != nullptr) ::munmap(run, run_len);
    run = s.base;
    run_len = len;
  }
  if (run != nullptr) ::munmap(run, run_len);
}

void* stack_pool::take_pooled(size_class& c) {
  if (c.warm.empty() && c.cold.empty()) map_slab(c);  // warm stacks if it reused a cached slab
  if (!c.warm.empty()) {
    void* bottom = c.warm.back();
    c.warm.pop_back();
    return bottom;
  }
  void* bottom = c.cold.back();
  c.cold.pop_back();
  ++c.slab_of(bottom).busy;
  return bottom;
}

void* stack_pool::map_own(std::size_t size, bool* canary) {
  // [gap][stack] in a mapping of its own (stack_kind::guarded), always with
  // a real guard, even beyond the mprotect budget.
  const std::size_t len = gap_ + size;
  char* base = static_cast<char*>(map_stack_memory(len));
  stack_guard want = guard_;
  if (want == stack_guard::canary || want == stack_guard::none) want = resolve_stack_guard(stack_guard::automatic);
  const stack_guard got = install_stack_guards(base, len, 1, want, /*forced=*/true);
  if (got == stack_guard::none) {
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
  *canary = false;
  return base + gap_;
}

void stack_pool::unmap_own(void* bottom, std::size_t size) noexcept {
  ::munmap(static_cast<char*>(bottom) - gap_, gap_ + size);
  if (!own_mprotected_.empty() && own_mprotected_.erase(bottom) != 0) release_mprotect_guards(1);
}

boost::context::stack_context stack_pool::allocate(std::size_t size, bool* canary) {
  size = size == 0 ? default_size_ : normalize_stack_size(size);
  void* bottom = nullptr;
  if (kind_ == stack_kind::pooled) {
    size_class& c = class_of(size);
    bottom = take_pooled(c);
    // Mixed classes (the mprotect budget ran out while the class grew) are
    // rare: the common cases answer without a search.
    *canary = c.canary_slabs != 0 &&
              (c.canary_slabs == c.slabs.size() || c.slab_of(bottom).guard == stack_guard::canary);
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
  if (kind_ == stack_kind::pooled) {
    // Its class exists (it was allocated from it): found without allocating.
    size_class* c = nullptr;
    for (auto& k : classes_)
      if (k->size == sctx.size) c = k.get();
    WEFT_INVARIANT(c != nullptr);
    c->warm.push_back(bottom);  // within the capacity reserved per slab
    if (c->warm.size() > keep_ + trim_batch) trim(*c);
  } else {
    unmap_own(bottom, sctx.size);
  }
  release();
}

void stack_pool::trim(size_class& c) noexcept {
  // Give back the memory of the oldest warm stacks. A slab left with no
  // stack in use or warm is unmapped whole; the other stacks are trimmed
  // with madvise, coalescing neighbours (stacks of one slab usually finish
  // together) into few calls. A range spans the gaps between its stacks:
  // MADV_DONTNEED keeps guard markers and mprotect'ed pages as they are.
  // Sorted in place and moved within reserved capacity: no allocation.
  const auto n = static_cast<std::ptrdiff_t>(c.warm.size() - keep_);
  const auto old = c.warm.begin() + n;
  std::sort(c.warm.begin(), old);
  bool emptied = false;
  for (auto i = c.warm.begin(); i != old; ++i) emptied |= --c.slab_of(*i).busy == 0;
  for (auto i = c.warm.begin(); i != old;) {
    char* start = static_cast<char*>(*i);
    if (c.slab_of(start).busy == 0) {  // unmapped below
      ++i;
      continue;
    }
    auto j = i + 1;
    while (j != old && static_cast<char*>(*j) == start + static_cast<std::size_t>(j - i) * c.stride) ++j;
    ::madvise(start, static_cast<std::size_t>(j - i - 1) * c.stride + c.size, MADV_DONTNEED);
    i = j;
  }
  c.cold.insert(c.cold.end(), c.warm.begin(), old);  // within the capacity reserved per slab
  c.warm.erase(c.warm.begin(), old);
  if (!emptied) return;
  // Drop the stacks of emptied slabs (all cold now), then the slabs.
  c.cold.erase(std::remove_if(c.cold.begin(), c.cold.end(), [&c](void* b) { return c.slab_of(b).busy == 0; }),
               c.cold.end());
  for (const slab& s : c.slabs)
    if (s.busy == 0 && s.guard == stack_guard::canary) --c.canary_slabs;
  unmap_slabs(c, [](const slab& s) { return s.busy == 0; });
  c.slabs.erase(std::remove_if(c.slabs.begin(), c.slabs.end(), [](const slab& s) { return s.busy == 0; }),
                c.slabs.end());
}

}  // namespace weft::detail

namespace weft {
void release_cached_stacks() noexcept { detail::release_cached_stacks(); }
}  // namespace weft
