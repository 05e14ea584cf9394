// greenback::await_ for Asio: asio::awaitable<T> and Asio async operations.
//
//   std::string body = greenback::await_(client.fetch(url));         // asio::awaitable<std::string>
//   greenback::await_(timer.async_wait(boost::asio::deferred));        // a deferred operation
//
// These overloads live in <weft/greenback/greenback.hpp> (so that helpers such
// as autoawait find them); this header is kept for code that includes it.
#pragma once

#include <weft/greenback/greenback.hpp>
