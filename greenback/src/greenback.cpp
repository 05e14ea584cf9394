// greenback portal queries.

#include <weft/greenback/greenback.hpp>
#include <weft/lowlevel/park.hpp>

namespace greenback {

no_portal_error::no_portal_error()
    : std::logic_error(
          "greenback: this code has no portal (it is not running on a weft task); call it from a task, or reach a "
          "task first with greenback::ensure_portal() / greenback::with_portal_run()") {}

bool has_portal() noexcept { return weft::detail::current_task() != nullptr; }

}  // namespace greenback
