// HOST:PORT as every address flag and setting takes it (--listen,
// --cluster-listen, --advertise-http, the addresses peers advertise in
// etcd): one parser, so the same text is accepted or refused — with the
// same reason — everywhere. IPv6 hosts are bracketed ("[::1]:8080"; the
// brackets are dropped from `host`); the port is decimal digits only,
// 1..65535 (0 too when `allow_port_zero`: a listener that takes any free
// port); the host is not resolved or checked beyond being non-empty and
// free of spaces.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace yantra {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// kInvalidArgument naming the text and what is wrong with it.
Result<HostPort> parse_host_port(std::string_view text, bool allow_port_zero = false);

}  // namespace yantra
