// Expected failures as values. Every layer returns Status / Result<T> instead
// of throwing, so nothing unexpected crosses an actor or thread boundary. The
// error code is a short stable string ("invalid_flow", "not_found", ...); the
// API maps codes to HTTP statuses in one place.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace yantra {

// One problem found in a document, located by a JSON pointer (RFC 6901).
struct Problem {
  std::string path;
  std::string message;
  bool operator==(const Problem&) const = default;
};

class Status {
 public:
  Status() = default;  // ok
  Status(std::string code, std::string message, std::vector<Problem> details = {})
      : code_(std::move(code)), message_(std::move(message)), details_(std::move(details)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_.empty(); }
  explicit operator bool() const { return is_ok(); }
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<Problem>& details() const { return details_; }
  std::string to_string() const { return is_ok() ? "ok" : code_ + ": " + message_; }
  // For refusals that end by themselves (rate limits, quotas): when the
  // caller may try again. The API turns it into a Retry-After header.
  Status&& with_retry_after_ms(int64_t ms) && {
    retry_after_ms_ = ms;
    return std::move(*this);
  }
  int64_t retry_after_ms() const { return retry_after_ms_; }

 private:
  std::string code_;
  std::string message_;
  std::vector<Problem> details_;
  int64_t retry_after_ms_ = 0;
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status error) : v_(std::move(error)) { assert(!std::get<Status>(v_).is_ok()); }

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  // By value: `for (auto& x : f().value())` must not dangle.
  T value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace yantra
