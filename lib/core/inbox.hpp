// A runtime's inbox: how other threads hand work to a runtime.
//
// Any thread may submit a remote_call; it runs on the runtime's thread,
// outside any task, at the runtime's next chance. Calls are batched: only
// the submit that finds the inbox empty posts to the runtime's io_context
// (one asio::post per batch, into memory the inbox keeps for it, so a
// submit never allocates); the posted drain runs every call queued until
// then, in submission order.
//
// When the runtime ends it closes its inbox: a call queued or submitted
// after that runs with `open == false`, on whichever thread finds it (the
// runtime's own, or the submitter's), so that it can release what it
// holds. Nothing is lost and nothing is posted to a destroyed io_context.
// A submitter that may outlive the runtime holds a reference (add_ref) for
// as long as it may submit.
#pragma once

#include <weft/detail/core.hpp>

#include <atomic>
#include <cstddef>
#include <mutex>

namespace boost::asio {
class io_context;
}

namespace weft::detail {

class inbox {
 public:
  /// An inbox posting to `io`, with one reference (the runtime's, released
  /// only once `io` is destroyed: a drain still queued there is destroyed
  /// with it and gives its memory back to the inbox). Other holders (a
  /// thread that may submit after the runtime ended) take references.
  explicit inbox(boost::asio::io_context& io) noexcept : io_(&io) {}
  inbox(const inbox&) = delete;
  inbox& operator=(const inbox&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  /// Any thread: queues `call`; see the header comment. Thread-safe.
  void submit(remote_call& call) noexcept;
  /// The runtime's thread: runs every queued call.
  void drain() noexcept;
  /// The runtime's thread, once, before its io_context goes: later calls
  /// run with open == false.
  void close() noexcept;

  /// Memory for the one drain that can be posted at a time.
  void* take_slot(std::size_t size) noexcept;
  bool give_back_slot(void* p) noexcept;

 private:
  ~inbox() = default;
  void run_all(remote_call* list, bool open) noexcept;

  std::atomic<remote_call*> head_{nullptr};  // newest first
  std::atomic<std::size_t> refs_{1};
  std::mutex mu_;                          // guards io_ against close()
  boost::asio::io_context* io_ = nullptr;  // null once closed
  bool closed_ = false;                    // the runtime's thread only
  std::atomic<bool> slot_used_{false};
  static constexpr std::size_t slot_size = 64;
  alignas(std::max_align_t) unsigned char slot_[slot_size];
};

}  // namespace weft::detail
