// weft::net: DNS, TCP/UDP/Unix transports, listeners and servers (umbrella header).
#pragma once

#include <weft/net/connect.hpp>
#include <weft/net/datagram.hpp>
#include <weft/net/endpoint.hpp>
#include <weft/net/errors.hpp>
#include <weft/net/listener.hpp>
#include <weft/net/server.hpp>
#include <weft/net/stream.hpp>
#include <weft/net/sync_stream.hpp>
#include <weft/net/tls.hpp>
