// The builtin backend.

#include "core/runtime.hpp"

#include <weft/backend.hpp>

#include <stdexcept>
#include <string>

namespace weft {

async_backend::~async_backend() = default;

namespace {

class fiber_backend final : public async_backend {
 public:
  std::string_view name() const noexcept override { return "weft"; }
  void bootstrap(function_ref<void()> fn, const run_options& options) override {
    weft::run(options, [fn] { fn(); });
  }
  void coro_yield() override { weft::coro_yield(); }
  void cancel_shielded_coro_yield() override { weft::cancel_shielded_coro_yield(); }
  void sleep(duration d) override { weft::sleep(d); }
  void sleep_until(time_point t) override { weft::sleep_until(t); }
  [[noreturn]] void sleep_forever() override { weft::sleep_forever(); }
  time_point current_time() override { return weft::current_time(); }
  void ignore_cancellation(function_ref<void()> fn) override { weft::ignore_cancellation(fn); }
  task_info get_current_task() override { return weft::get_current_task(); }
  void with_task_group(function_ref<void(task_group&)> body) override { open_task_group(body); }
};

constexpr std::string_view supported = "\"weft\"";

}  // namespace

async_backend& builtin_backend() noexcept {
  static fiber_backend backend;
  return backend;
}

std::unique_ptr<async_backend> new_builtin_backend(std::string_view name) {
  if (name == "weft") return std::make_unique<fiber_backend>();
  throw std::invalid_argument("weft::new_builtin_backend: unknown backend \"" + std::string(name) +
                              "\"; supported: " + std::string(supported));
}

async_backend& ensure_backend(async_backend* backend) {
  if (backend != nullptr) return *backend;
  return current_backend();
}

async_backend& ensure_backend(std::string_view name) {
  if (name == "weft") return builtin_backend();
  throw std::invalid_argument("weft::ensure_backend: unknown backend \"" + std::string(name) +
                              "\"; supported: " + std::string(supported));
}

async_backend& current_backend() {
  if (detail::runtime::current() == nullptr)
    throw std::logic_error("weft::current_backend: no weft runtime runs on this thread");
  return builtin_backend();
}

}  // namespace weft
