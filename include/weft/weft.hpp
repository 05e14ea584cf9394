// weft: stackful fibers with structured concurrency on Asio (umbrella header).
#pragma once

#include <weft/backend.hpp>
#include <weft/cancel_scope.hpp>
#include <weft/checkpoint.hpp>
#include <weft/errors.hpp>
#include <weft/run.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/condition_variable.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/lock.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/sync/single_flight.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>
#include <weft/time.hpp>
