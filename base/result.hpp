// Expected failures as values. Every layer returns Status / Result<T> instead
// of throwing, so nothing unexpected crosses an actor or thread boundary. The
// error code is typed: an enumerator of one layer's error enum (errc.hpp),
// carried as (domain, value) together with its stable wire string
// ("invalid_flow", "not_found", ...) that clients see; the API maps codes to
// HTTP statuses in one place (api/errors.cpp), by an exhaustive switch.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/errc.hpp"

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
  template <ErrorCodeEnum E>
  Status(E code, std::string message, std::vector<Problem> details = {})
      : domain_(ErrcTraits<E>::kDomain),
        value_(static_cast<uint16_t>(code)),
        code_(ErrcTraits<E>::wire(code)),
        message_(std::move(message)),
        details_(std::move(details)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return domain_ == ErrorDomain::kOk; }
  explicit operator bool() const { return is_ok(); }
  // The wire string ("" when ok): for JSON, logs and audit records. Decide
  // with is(), never by comparing this text.
  const std::string& code() const { return code_; }
  template <ErrorCodeEnum E>
  bool is(E code) const {
    return domain_ == ErrcTraits<E>::kDomain && value_ == static_cast<uint16_t>(code);
  }
  ErrorDomain domain() const { return domain_; }
  // The enumerator, for a switch over one domain; only when domain() is E's.
  template <ErrorCodeEnum E>
  E code_as() const {
    assert(domain_ == ErrcTraits<E>::kDomain);
    return static_cast<E>(value_);
  }
  // The same code with a new message and details (e.g. prefixed with where
  // the error was found); the retry-after hint is not carried over.
  Status with_message(std::string message, std::vector<Problem> details = {}) const {
    Status s;
    s.domain_ = domain_;
    s.value_ = value_;
    s.code_ = code_;
    s.message_ = std::move(message);
    s.details_ = std::move(details);
    return s;
  }
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
  ErrorDomain domain_ = ErrorDomain::kOk;
  uint16_t value_ = 0;
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
