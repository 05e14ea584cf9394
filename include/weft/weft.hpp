// weft: stackful fibers with structured concurrency on Asio (umbrella header).
//
// Includes every public header of the weft::weft library a program uses:
// the runtime, tasks and task groups, cancel scopes, time, errors, the
// backend interface, coroutines (coro, async_generator, the awaitable
// concept), use_fiber, function_ref, the synchronization primitives,
// networking (weft/net.hpp), and threads (futures, run_in_thread, capacity
// limiters, async executors, report_error). Not included, by design:
// weft/testing/*.hpp (test helpers: manual clock, wait_all_tasks_blocked,
// sequencer, leak checks) and weft/lowlevel/*.hpp (the extension interface
// for new blocking primitives); include those by name. greenback is a library of its own
// (target weft::greenback, header <weft/greenback/greenback.hpp>).
#pragma once

#include <weft/async_generator.hpp>
#include <weft/awaitable.hpp>
#include <weft/backend.hpp>
#include <weft/cancel_scope.hpp>
#include <weft/checkpoint.hpp>
#include <weft/coro.hpp>
#include <weft/errors.hpp>
#include <weft/function_ref.hpp>
#include <weft/net.hpp>
#include <weft/report_error.hpp>
#include <weft/run.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/condition_variable.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/lock.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/sync/single_flight.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>
#include <weft/threads/async_executor.hpp>
#include <weft/threads/caller.hpp>
#include <weft/threads/capacity_limiter.hpp>
#include <weft/threads/errors.hpp>
#include <weft/threads/future.hpp>
#include <weft/threads/future_sets.hpp>
#include <weft/threads/run_in_thread.hpp>
#include <weft/threads/threads_portal.hpp>
#include <weft/threads/unwrap_future.hpp>
#include <weft/time.hpp>
#include <weft/use_fiber.hpp>
