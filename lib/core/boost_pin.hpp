// The Boost versions weft's uses of Boost implementation details were
// checked against. Every source that relies on Boost behaviour beyond the
// documented interfaces includes this header; docs/internals.md lists
// those uses ("Boost internals").
//
//  - lib/core/fiber_algorithm.cpp: the scheduling algorithm relies on how
//    Boost.Fiber's dispatcher calls it (suspend_until() right after the
//    dispatch loop released finished fibers and took in remote ones), on
//    context::ready_link/ready_queue_type, and on the dispatcher context
//    living at the top of its default-size stack (ASan stack bounds).
//    No fallback: another Boost version must be checked and added here.
//  - lib/core/asio_handler.cpp: run_as_asio_handler pushes io_context's
//    scheduler onto Asio's call stack, as io_context::run does; asio_thread
//    runs handlers through the scheduler's private do_poll_one/do_run_one,
//    mutex_ and outstanding_work_ with a thread_info of its own, reads and
//    reorders op_queue_ around task_operation_ (the reactor's turn), and keeps
//    that thread_info on the call stack under a key of its own for Asio's
//    memory recycling. Fallback: WEFT_PORTABLE_ASIO (public Asio API only,
//    same behaviour), chosen automatically for other versions.
//  - lib/core/read_readiness.cpp: the epoll reactor's per-socket read flag
//    (try_speculative_), last reported events (task_result_) and
//    registration (registered_events_, epoll_fd_), reached through a
//    socket's private impl_, and a reactor_op of weft's own queued with
//    start_op. Fallback: WEFT_PORTABLE_ASIO or a reactor other than epoll
//    (public API, same behaviour, a syscall more per wait).
#pragma once

#include <boost/version.hpp>

#define WEFT_BOOST_CHECKED(version) ((version) / 100 == 1081)

static_assert(WEFT_BOOST_CHECKED(BOOST_VERSION),
              "weft relies on Boost.Fiber implementation details checked against Boost 1.81 only "
              "(see lib/core/boost_pin.hpp): check them against this Boost version, then extend WEFT_BOOST_CHECKED");

#if !defined(WEFT_PORTABLE_ASIO) && !WEFT_BOOST_CHECKED(BOOST_VERSION)
#define WEFT_PORTABLE_ASIO 1
#endif
