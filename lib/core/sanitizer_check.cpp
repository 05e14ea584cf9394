#include "core/sanitizer_check.hpp"

#if !defined(__SANITIZE_ADDRESS__)
#include <atomic>
#include <cstdio>

// Defined by the AddressSanitizer runtime, whether it is linked statically
// (-static-libasan, Clang's default) or dynamically (GCC's default), or
// preloaded. The reference is weak: null in a process without ASan. A weak
// reference sees the static runtime, which dlsym(RTLD_DEFAULT) does not
// (that copy is not in the dynamic symbol table of the executable).
extern "C" void __asan_init() __attribute__((weak));
#endif

namespace weft::detail {

#if defined(__SANITIZE_ADDRESS__)
// This weft annotates its switches (runtime.cpp): nothing to warn about.
void warn_if_unannotated_asan() noexcept {}
#else
void warn_if_unannotated_asan() noexcept {
  if (__asan_init == nullptr) return;
  static std::atomic<bool> warned{false};
  if (warned.exchange(true, std::memory_order_relaxed)) return;
  std::fputs(
      "weft: warning: this program runs under AddressSanitizer but uses a weft built without it, which does not tell "
      "ASan about switches between task stacks, so exceptions thrown in tasks can give false stack-use-after-scope "
      "or stack-buffer-overflow reports; link weft::weft_asan (and weft::greenback_asan) instead of weft::weft "
      "(and weft::greenback)\n",
      stderr);
}
#endif

}  // namespace weft::detail
