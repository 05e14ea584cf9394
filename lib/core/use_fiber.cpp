// What use_fiber and the other waits on Asio operations share out of line.

#include <weft/use_fiber.hpp>

#include <string>

namespace weft::lowlevel {

void throw_abandoned(const char* what) {
  throw abandoned_error(std::string(what) +
                        ": the operation was destroyed without completing (the executor or execution context that "
                        "was to complete it shut down first); its result is lost");
}

}  // namespace weft::lowlevel
