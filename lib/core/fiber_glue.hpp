// The Boost.Fiber glue shared by the runtime's sources: how a fiber finds
// its task, and the stack weft hands Boost.Fiber. Relies on Boost.Fiber
// behaviour checked against the pinned version (see boost_pin.hpp).
#pragma once

#include "core/boost_pin.hpp"
#include "core/stack_pool.hpp"

#include <weft/detail/core.hpp>

#include <boost/context/stack_context.hpp>
#include <boost/fiber/context.hpp>
#include <boost/fiber/properties.hpp>

#include <cstddef>

namespace weft::detail {

// Links a fiber's context to its task. Boost.Fiber deletes a context's
// properties when the context is destroyed; this object lives in a header
// at the top of the task's stack, so its deletion must not free anything.
struct task_link final : boost::fibers::fiber_properties {
  explicit task_link(task_base* t) noexcept : fiber_properties(nullptr), task(t) {}
  static void operator delete(void*) noexcept {}
  task_base* task;
};
constexpr std::size_t stack_header = 64;
static_assert(sizeof(task_link) <= stack_header);

inline task_base* task_of(boost::fibers::context* ctx) noexcept {
  auto* props = ctx->get_properties();
  return props ? static_cast<task_link*>(props)->task : nullptr;
}

// Hands Boost.Fiber the stack we already took from the pool (minus the header).
// Hands Boost.Fiber the part of a task's stack below what weft keeps at its
// top (the task_link, and the task object of an in-stack task).
struct fiber_stack_allocator {
  stack_pool* pool;
  boost::context::stack_context sctx;
  std::size_t header;
  boost::context::stack_context allocate() noexcept { return sctx; }
  void deallocate(boost::context::stack_context& s) noexcept {
    s.sp = static_cast<char*>(s.sp) + header;
    s.size += header;
    pool->deallocate(s);
  }
};

}  // namespace weft::detail
