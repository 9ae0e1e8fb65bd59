// Linear matching over a few dozen routes is faster than any clever structure
// at this size and keeps the table readable in one place (app.cpp).
#include "api/router.hpp"

namespace yantra::api {
namespace {

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

int role_rank(const std::string& role) {
  if (role == "viewer") return 1;
  if (role == "editor") return 2;
  if (role == "admin") return 3;
  if (role == "owner") return 4;
  return 0;
}

const char* to_string(Access access) {
  switch (access) {
    case Access::kPublic: return "public";
    case Access::kViewer: return "viewer";
    case Access::kEditor: return "editor";
    case Access::kAdmin: return "admin";
    case Access::kOwner: return "owner";
    case Access::kOperator: return "operator";
  }
  return "?";
}

bool Router::set_action(const std::string& method, const std::string& pattern, std::string action) {
  for (auto& r : routes_) {
    if (r.method == method && r.pattern == pattern) {
      r.action = std::move(action);
      return true;
    }
  }
  return false;
}

void Router::add(std::string method, std::string pattern, Access access, RouteFn fn) {
  Route r;
  r.method = std::move(method);
  r.segments = split(pattern);
  r.pattern = std::move(pattern);
  r.access = access;
  r.fn = std::move(fn);
  routes_.push_back(std::move(r));
}

Router::Match Router::match(const std::string& method, const std::string& path) const {
  Match m;
  const auto parts = split(path);
  for (const auto& r : routes_) {
    if (r.segments.size() != parts.size()) continue;
    std::unordered_map<std::string, std::string> params;
    bool ok = true;
    for (size_t i = 0; i < parts.size() && ok; ++i) {
      const std::string& seg = r.segments[i];
      if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
        params[seg.substr(1, seg.size() - 2)] = parts[i];
      } else {
        ok = seg == parts[i];
      }
    }
    if (!ok) continue;
    if (r.method == method) {
      m.route = &r;
      m.params = std::move(params);
      return m;
    }
    if (m.allow.find(r.method) == std::string::npos) {
      m.allow += (m.allow.empty() ? "" : ", ") + r.method;
    }
  }
  return m;
}

}  // namespace yantra::api
