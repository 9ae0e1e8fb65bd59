// SseParser (sse.hpp): a line splitter and the field rules of the WHATWG
// event-stream interpretation, nothing else (no retry, no reconnection: MCP
// POST answers are read once).
#include "mcp/sse.hpp"

namespace yantra::mcp {

void SseParser::feed(std::string_view bytes, std::vector<SseEvent>& out) {
  for (char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // CR LF: the CR ended the line already
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      std::string l;
      l.swap(line_);
      line(l, out);
      continue;
    }
    line_.push_back(c);
  }
}

void SseParser::line(std::string_view l, std::vector<SseEvent>& out) {
  if (l.empty()) {
    if (has_data_) {
      SseEvent e;
      e.event = event_.empty() ? "message" : event_;
      e.data = std::move(data_);
      e.id = id_;
      out.push_back(std::move(e));
    }
    event_.clear();
    data_.clear();
    has_data_ = false;
    return;
  }
  if (l.front() == ':') return;  // a comment (keep-alive)
  std::string_view field = l;
  std::string_view value;
  if (size_t colon = l.find(':'); colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    // "data:" with nothing after it still makes a (blank) data buffer; the
    // standard drops an event whose buffer is empty at dispatch time.
    has_data_ = !data_.empty() || has_data_;
    if (data_.empty()) has_data_ = false;
  } else if (field == "event") {
    event_ = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) id_ = std::string(value);
  }
  // "retry" and unknown fields are ignored.
}

}  // namespace yantra::mcp
