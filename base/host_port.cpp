// parse_host_port (base/host_port.hpp).
#include "base/host_port.hpp"

#include <charconv>

#include "base/errc.hpp"

namespace yantra {

Result<HostPort> parse_host_port(std::string_view text, bool allow_port_zero) {
  auto refuse = [&](const std::string& why) {
    return Status(Errc::kInvalidArgument, "'" + std::string(text) + "' is not HOST:PORT: " + why);
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return refuse("no ':PORT'");
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return refuse("an IPv6 host needs '[...]'");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return refuse("an IPv6 host must be bracketed, as in [::1]:8080");
  }
  if (host.empty()) return refuse("the host is empty");
  for (char c : host) {
    if (c == ' ' || c == '\t' || c == '/' || c == '[' || c == ']') {
      return refuse("the host has a character no host name or address has");
    }
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  const unsigned lowest = allow_port_zero ? 0 : 1;
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < lowest ||
      value > 65535 || port.front() == '+' || port.front() == '-') {
    return refuse("the port must be a number " + std::to_string(lowest) + "..65535");
  }
  return HostPort{std::string(host), static_cast<uint16_t>(value)};
}

}  // namespace yantra
