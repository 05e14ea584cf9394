// greenback for weft: portals between synchronous task code and C++
// coroutines. This header includes all of greenback:
//   portal.hpp           portals (has_portal, ensure_portal, no_portal_error)
//   await.hpp            await_ for weft::coro, asio::awaitable, Asio operations, any awaitable
//   with_portal_run.hpp  with_portal_run_sync / with_portal_run from portal-less coroutines
//   decorate.hpp         autoawait, decorate_as_sync
//   async_context.hpp    async_context, async_cm
//   async_iter.hpp       async_iter
#pragma once

#include <weft/greenback/async_context.hpp>
#include <weft/greenback/async_iter.hpp>
#include <weft/greenback/await.hpp>
#include <weft/greenback/decorate.hpp>
#include <weft/greenback/portal.hpp>
#include <weft/greenback/with_portal_run.hpp>
