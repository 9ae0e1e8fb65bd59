// An incremental parser of Server-Sent Events (the WHATWG "event stream"
// format) for MCP's Streamable HTTP transport, whose POST answers may be an
// SSE stream of JSON-RPC messages (`event: message`, `data: {...}`).
//
// Bytes arrive in whatever pieces the socket hands out, so feed() keeps the
// unfinished line and the event being built between calls. Lines end with
// LF, CR LF or CR; a blank line dispatches the event; `data` lines are joined
// with "\n"; lines starting with ':' are comments; an event whose data is
// empty is dropped, as the standard says (the reference server's priming
// event `id: ...\ndata: \n\n` is one). Pure code, unit-tested
// (tests/mcp/sse_test.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace yantra::mcp {

struct SseEvent {
  std::string event = "message";  // the `event` field, "message" when absent
  std::string data;
  std::string id;
};

class SseParser {
 public:
  // Appends the events completed by `bytes` to out.
  void feed(std::string_view bytes, std::vector<SseEvent>& out);
  // Bytes held for an unfinished line or event (bounded by the caller).
  size_t pending_bytes() const { return line_.size() + data_.size(); }

 private:
  void line(std::string_view l, std::vector<SseEvent>& out);

  std::string line_;
  bool after_cr_ = false;  // the last byte was CR: a following LF ends nothing
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  std::string id_;
};

}  // namespace yantra::mcp
