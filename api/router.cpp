// Linear matching over a few dozen routes is faster than any clever structure
// at this size and keeps the table readable in one place (app.cpp).
#include "api/router.hpp"

#include <algorithm>
#include <exception>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "api/errc.hpp"
#include "api/errors.hpp"
#include "base/metrics.hpp"

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

bool role_allows(const std::string& role, Access access) {
  switch (access) {
    case Access::kPublic: return true;
    case Access::kViewer: return role_rank(role) >= 1;
    case Access::kEditor: return role_rank(role) >= 2;
    case Access::kAdmin: return role_rank(role) >= 3;
    case Access::kOwner: return role_rank(role) >= 4;
    case Access::kWorker: return role == "worker" || role_rank(role) >= 3;
    case Access::kOperator: return false;
  }
  return false;
}

const char* to_string(Access access) {
  switch (access) {
    case Access::kPublic: return "public";
    case Access::kViewer: return "viewer";
    case Access::kEditor: return "editor";
    case Access::kAdmin: return "admin";
    case Access::kOwner: return "owner";
    case Access::kOperator: return "operator";
    case Access::kWorker: return "worker";
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

bool Router::set_placement(const std::string& method, const std::string& pattern,
                           Placement placement) {
  for (auto& r : routes_) {
    if (r.method == method && r.pattern == pattern) {
      r.placement = placement;
      return true;
    }
  }
  return false;
}

bool Router::set_query(const std::string& method, const std::string& pattern,
                       std::vector<std::string> names) {
  for (auto& r : routes_) {
    if (r.method == method && r.pattern == pattern) {
      r.query = std::move(names);
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

Status check_query(const Route& route, const HttpRequest& req) {
  if (!route.query) return {};
  const auto& known = *route.query;
  for (const auto& [name, value] : req.query) {
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string accepted;
    for (const auto& k : known) accepted += (accepted.empty() ? "" : ", ") + k;
    // The name is client input: quote it, but not too much of it.
    const std::string shown = name.size() > 64 ? name.substr(0, 64) + "..." : name;
    return Status(ApiErrc::kInvalidParameter,
                  "unknown query parameter '" + shown + "' (" + route.method + " " + route.pattern +
                      (accepted.empty() ? " takes none)" : " takes: " + accepted + ")"));
  }
  return {};
}

Status declare_query_params(Router& router, const std::string& openapi_json) {
  using json = nlohmann::json;
  const json doc = json::parse(openapi_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("paths") ||
      !doc["paths"].is_object()) {
    return Status(Errc::kInvalidArgument, "the OpenAPI document has no 'paths' object");
  }
  const json* shared = nullptr;  // components/parameters
  if (auto c = doc.find("components"); c != doc.end() && c->is_object()) {
    if (auto p = c->find("parameters"); p != c->end() && p->is_object()) shared = &*p;
  }
  // Appends the names of the query parameters in `list` to `out`.
  auto collect = [&](const json& list, std::vector<std::string>& out) -> Status {
    if (!list.is_array()) return Status(Errc::kInvalidArgument, "'parameters' must be an array");
    for (const json& item : list) {
      const json* p = &item;
      if (item.is_object() && item.contains("$ref") && item["$ref"].is_string()) {
        const std::string ref = item["$ref"];
        const std::string prefix = "#/components/parameters/";
        if (ref.rfind(prefix, 0) != 0 || shared == nullptr ||
            !shared->contains(ref.substr(prefix.size()))) {
          return Status(Errc::kInvalidArgument, "unresolvable parameter $ref '" + ref + "'");
        }
        p = &(*shared)[ref.substr(prefix.size())];
      }
      if (!p->is_object() || !p->contains("in") || !p->contains("name") ||
          !(*p)["name"].is_string()) {
        return Status(Errc::kInvalidArgument, "a parameter without 'in' and 'name'");
      }
      if ((*p)["in"] == "query") out.push_back((*p)["name"].get<std::string>());
    }
    return {};
  };
  static const char* kMethods[] = {"get", "put", "post", "delete", "patch", "head", "options"};
  for (const auto& [path, item] : doc["paths"].items()) {
    if (!item.is_object()) continue;
    std::vector<std::string> common;
    if (auto it = item.find("parameters"); it != item.end()) {
      if (Status s = collect(*it, common); !s.is_ok())
        return s.with_message(path + ": " + s.message());
    }
    for (const char* method : kMethods) {
      auto op = item.find(method);
      if (op == item.end() || !op->is_object()) continue;
      std::string upper(method);
      for (char& ch : upper) ch = static_cast<char>(ch - 'a' + 'A');
      const std::string where = upper + " " + path;
      if (auto any = op->find("x-yantra-any-query"); any != op->end() && *any == true) continue;
      std::vector<std::string> names = common;
      if (auto it = op->find("parameters"); it != op->end()) {
        if (Status s = collect(*it, names); !s.is_ok()) {
          return s.with_message(where + ": " + s.message());
        }
      }
      if (!router.set_query(upper, path, std::move(names))) {
        return Status(Errc::kInvalidArgument,
                      "the OpenAPI document describes " + where + ", which has no route");
      }
    }
  }
  return {};
}

namespace {

void on_handler_exception(const Route& route, const std::shared_ptr<RouteCtx>& ctx,
                          const std::string& what) {
  spdlog::error("http: handler of {} {} threw (request {}): {}", route.method, route.pattern,
                ctx->request_id, what);
  metrics::global()
      .counter("yantra_http_handler_exceptions_total",
               "Exceptions escaping route handlers (each logged with its request id)",
               {{"route", route.pattern}})
      .inc();
  // Ignored if the handler answered before it threw (see the wrapper).
  ctx->respond(error_response(Status(
      ApiErrc::kInternal, "internal error (request " + ctx->request_id + "; see the node's log)")));
}

}  // namespace

void run_route(const Route& route, const std::shared_ptr<RouteCtx>& ctx) {
  // weak_ptr, not shared_ptr: ctx owns this Responder, a strong reference
  // would be a cycle. When ctx is gone nobody can call the exception path.
  ctx->respond = [inner = std::move(ctx->respond),
                  weak = std::weak_ptr<RouteCtx>(ctx)](HttpResponse r) {
    if (auto c = weak.lock(); c && c->answered.exchange(true, std::memory_order_acq_rel)) return;
    inner(std::move(r));
  };
  try {
    route.fn(ctx);
  } catch (const std::exception& e) {
    on_handler_exception(route, ctx, e.what());
  } catch (...) {
    on_handler_exception(route, ctx, "an exception not derived from std::exception");
  }
}

}  // namespace yantra::api
