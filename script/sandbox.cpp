// The one translation unit that talks to Duktape (see sandbox.hpp for the
// contract, script/CMakeLists.txt for how Duktape is built).
//
// Why a fresh heap per call: measured ~0.1 ms to create, which keeps "fresh
// sandbox + load + call" for a small snippet near 0.1 ms (bench/run
// script); a reused heap would need a reset of globals and prototypes that a
// script may have changed, and its memory would carry over between calls.
//
// Why our own allocator: the cap is per heap, so a call's cap is exactly its
// heap's size; Duktape answers a refused allocation with a garbage
// collection and then a catchable RangeError ("alloc failed"), so the host
// survives any script. Each block carries its size in a 16-byte header (the
// free callback is not told the size).
//
// Why a deadline checked from Duktape's interrupt hook: the hook runs every
// ~256k bytecode instructions (DUK_HTHREAD_INTCTR_DEFAULT), so the check
// costs nothing measurable and a `for (;;) {}` stops within ~1 ms of the
// cap. Once past the deadline the hook keeps answering "timeout", so a
// script that catches the RangeError is thrown at again until it unwinds.
//
// Errors: Duktape is compiled with DUK_USE_CPP_EXCEPTIONS, so its errors
// unwind through our frames as C++ exceptions and destructors run; every
// call into Duktape that can throw happens inside duk_safe_call.
#include "script/sandbox.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "base/utf8.hpp"
#include "duktape.h"

namespace yantra::script {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct HeapCtx {
  size_t cap = 0;
  size_t used = 0;
  bool refused = false;  // an allocation was refused for the cap
  bool timing = false;
  bool timed_out = false;
  Clock::time_point deadline;
};

constexpr size_t kHeader = 16;  // keeps max_align_t alignment

void* cap_alloc(void* udata, duk_size_t size) {
  auto* h = static_cast<HeapCtx*>(udata);
  if (size == 0) return nullptr;
  if (size > h->cap - h->used) {
    h->refused = true;
    return nullptr;
  }
  void* block = std::malloc(size + kHeader);
  if (block == nullptr) {
    h->refused = true;
    return nullptr;
  }
  std::memcpy(block, &size, sizeof(size));
  h->used += size;
  return static_cast<char*>(block) + kHeader;
}

void cap_free(void* udata, void* ptr) {
  if (ptr == nullptr) return;
  auto* h = static_cast<HeapCtx*>(udata);
  char* block = static_cast<char*>(ptr) - kHeader;
  size_t size = 0;
  std::memcpy(&size, block, sizeof(size));
  h->used -= size;
  std::free(block);
}

void* cap_realloc(void* udata, void* ptr, duk_size_t size) {
  if (ptr == nullptr) return cap_alloc(udata, size);
  if (size == 0) {
    cap_free(udata, ptr);
    return nullptr;
  }
  auto* h = static_cast<HeapCtx*>(udata);
  char* block = static_cast<char*>(ptr) - kHeader;
  size_t old = 0;
  std::memcpy(&old, block, sizeof(old));
  if (size > old && size - old > h->cap - h->used) {
    h->refused = true;
    return nullptr;
  }
  void* grown = std::realloc(block, size + kHeader);
  if (grown == nullptr) {
    h->refused = true;
    return nullptr;
  }
  std::memcpy(grown, &size, sizeof(size));
  h->used = h->used - old + size;
  return static_cast<char*>(grown) + kHeader;
}

// Only reached for an error outside any protected call, which this file
// never makes: a bug, not a script's doing.
[[noreturn]] void on_fatal(void*, const char* msg) {
  std::fprintf(stderr, "yantra: duktape fatal error: %s\n", msg != nullptr ? msg : "?");
  std::abort();
}

// A heap under a cap, destroyed with its owner.
class Heap {
 public:
  explicit Heap(size_t cap) {
    hc_.cap = cap;
    ctx_ = duk_create_heap(cap_alloc, cap_realloc, cap_free, &hc_, on_fatal);
  }
  ~Heap() {
    if (ctx_ != nullptr) duk_destroy_heap(ctx_);
  }
  Heap(const Heap&) = delete;
  Heap& operator=(const Heap&) = delete;

  duk_context* ctx() const { return ctx_; }
  HeapCtx& hc() { return hc_; }

 private:
  HeapCtx hc_;
  duk_context* ctx_ = nullptr;
};

// The wrapper the body is compiled in: on the body's first line, so
// Duktape's line numbers are the body's. Compiled as eval code whose value
// is the function (not with DUK_COMPILE_FUNCTION, which stops after the
// function and ignores whatever follows: "return 1; } junk(" compiled).
constexpr std::string_view kPrologue = "(function (input, steps, item, index) {";
constexpr std::string_view kEpilogue = "\n})";

// "... (line 3)" / "... (line 3, end of input)" -> 3.
int line_in_message(std::string_view msg) {
  size_t at = msg.rfind("(line ");
  if (at == std::string_view::npos) return 0;
  int line = 0;
  for (size_t i = at + 6; i < msg.size() && msg[i] >= '0' && msg[i] <= '9'; ++i) {
    line = line * 10 + (msg[i] - '0');
    if (line > 100000000) return 0;
  }
  return line;
}

// ---------------------------------------------------------------- ES2015 scan

// What a failed compile most likely tripped on, when it is ES2015+ syntax
// Duktape lacks. A rough tokenizer (strings, comments, regular expressions
// skipped); only consulted after Duktape refused the source, so it never
// rejects valid code, it only names the construct.
struct Unsupported {
  std::string what;
  int line = 0;
  int column = 0;
};

bool ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool ident_char(char c) {
  return ident_start(c) || (c >= '0' && c <= '9');
}

std::optional<Unsupported> find_unsupported(std::string_view s) {
  struct Tok {
    std::string_view text;
    int line;
    int column;
    bool ident;
  };
  std::vector<Tok> toks;
  int line = 1;
  size_t line_start = 0;
  auto col = [&](size_t i) { return static_cast<int>(i - line_start) + 1; };
  auto newline = [&](size_t i) {
    ++line;
    line_start = i + 1;
  };
  // Whether a '/' here starts a regular expression (no value before it).
  auto regex_allowed = [&] {
    if (toks.empty()) return true;
    const Tok& t = toks.back();
    if (t.ident) {
      return t.text == "return" || t.text == "typeof" || t.text == "case" || t.text == "in" ||
             t.text == "of" || t.text == "new" || t.text == "delete" || t.text == "void" ||
             t.text == "throw" || t.text == "instanceof";
    }
    char c = t.text.back();
    return !(c == ')' || c == ']' || c == '}' || (c >= '0' && c <= '9') || c == '"' || c == '\'');
  };
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '\n') {
      newline(i);
      ++i;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '/') {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      i += 2;
      while (i + 1 < s.size() && !(s[i] == '*' && s[i + 1] == '/')) {
        if (s[i] == '\n') newline(i);
        ++i;
      }
      i += 2;
    } else if (c == '`') {
      return Unsupported{"template strings (`...`)", line, col(i)};
    } else if (c == '"' || c == '\'') {
      size_t start = i++;
      while (i < s.size() && s[i] != c && s[i] != '\n') i += s[i] == '\\' ? 2 : 1;
      ++i;
      toks.push_back({s.substr(start, 1), line, col(start), false});
    } else if (c == '/' && regex_allowed()) {
      size_t start = i++;
      bool in_class = false;
      while (i < s.size() && s[i] != '\n' && (in_class || s[i] != '/')) {
        if (s[i] == '\\')
          ++i;
        else if (s[i] == '[')
          in_class = true;
        else if (s[i] == ']')
          in_class = false;
        ++i;
      }
      ++i;
      while (i < s.size() && ident_char(s[i])) ++i;
      toks.push_back({"0", line, col(start), false});  // a value
    } else if (ident_start(c)) {
      size_t start = i;
      while (i < s.size() && ident_char(s[i])) ++i;
      toks.push_back({s.substr(start, i - start), line, col(start), true});
    } else if (c >= '0' && c <= '9') {
      size_t start = i;
      while (i < s.size() && (ident_char(s[i]) || s[i] == '.')) ++i;
      toks.push_back({s.substr(start, i - start), line, col(start), false});
    } else {
      if (s.substr(i, 2) == "=>") return Unsupported{"arrow functions (=>)", line, col(i)};
      if (s.substr(i, 3) == "...") return Unsupported{"spread and rest (...)", line, col(i)};
      toks.push_back({s.substr(i, 1), line, col(i), false});
      ++i;
    }
    // Keyword patterns, looked at once their second token is read.
    if (toks.size() >= 2) {
      const Tok& a = toks[toks.size() - 2];
      const Tok& b = toks.back();
      if (a.ident && (a.text == "var" || a.text == "const" || a.text == "let") &&
          (b.text == "{" || b.text == "[")) {
        return Unsupported{"destructuring", a.line, a.column};
      }
      if (a.ident && a.text == "let" && b.ident) {
        return Unsupported{"let declarations (use var)", a.line, a.column};
      }
      if (a.ident && a.text == "class" && (b.ident || b.text == "{")) {
        return Unsupported{"classes", a.line, a.column};
      }
      if (a.ident && a.text == "function" && b.text == "*") {
        return Unsupported{"generators (function*)", a.line, a.column};
      }
      if (a.ident && a.text == "async" && b.ident && b.text == "function") {
        return Unsupported{"async functions", a.line, a.column};
      }
      if (a.ident && a.text == "await" && (b.ident || b.text == "(")) {
        return Unsupported{"await", a.line, a.column};
      }
      if (b.ident && b.text == "of" && toks.size() >= 4) {
        // for ( [var|let|const] x of
        size_t n = toks.size();
        bool decl = toks[n - 3].ident && (toks[n - 3].text == "var" || toks[n - 3].text == "let" ||
                                          toks[n - 3].text == "const");
        size_t open = decl ? n - 4 : n - 3;
        if (a.ident && toks[open].text == "(" && open >= 1 && toks[open - 1].text == "for") {
          return Unsupported{"for...of loops", toks[open - 1].line, toks[open - 1].column};
        }
      }
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- compile

struct CompileJob {
  std::string_view source;
  std::string bytecode;
};

duk_ret_t do_compile(duk_context* ctx, void* udata) {
  auto* job = static_cast<CompileJob*>(udata);
  std::string text;
  text.reserve(kPrologue.size() + job->source.size() + kEpilogue.size());
  text.append(kPrologue).append(job->source).append(kEpilogue);
  duk_push_string(ctx, "script");
  duk_compile_lstring_filename(ctx, DUK_COMPILE_EVAL, text.data(), text.size());
  duk_dump_function(ctx);
  duk_size_t n = 0;
  const void* bytes = duk_get_buffer_data(ctx, -1, &n);
  job->bytecode.assign(static_cast<const char*>(bytes), n);
  return 0;
}

// The error at the top of the stack, as text, without running any script
// code that could loop (the deadline still guards what does run).
std::string error_text(duk_context* ctx) {
  duk_dup(ctx, -1);  // duk_safe_to_string replaces its operand
  std::string out = duk_safe_to_string(ctx, -1);
  duk_pop(ctx);
  return utf8::replace_invalid(out);
}

int error_line(duk_context* ctx) {
  if (!duk_is_error(ctx, -1)) return 0;
  if (!duk_get_prop_string(ctx, -1, "lineNumber")) {
    duk_pop(ctx);
    return 0;
  }
  int line = duk_is_number(ctx, -1) ? static_cast<int>(duk_get_number(ctx, -1)) : 0;
  duk_pop(ctx);
  return line;
}

// ---------------------------------------------------------------- results

// Duktape keeps strings as extended UTF-8 with surrogate pairs encoded one
// half at a time (CESU-8) when a script builds them from escapes; JSON wants
// UTF-8. Pairs are joined; lone halves become U+FFFD.
std::string to_utf8(const char* p, size_t n) {
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto b = [&](size_t k) { return static_cast<unsigned char>(p[k]); };
    if (i + 5 < n && b(i) == 0xED && b(i + 1) >= 0xA0 && b(i + 1) <= 0xAF && b(i + 3) == 0xED &&
        b(i + 4) >= 0xB0 && b(i + 4) <= 0xBF) {
      char32_t hi = 0xD000 | ((b(i + 1) & 0x3F) << 6) | (b(i + 2) & 0x3F);
      char32_t lo = 0xD000 | ((b(i + 4) & 0x3F) << 6) | (b(i + 5) & 0x3F);
      utf8::append_code_point(out, 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
      i += 5;
      continue;
    }
    out.push_back(p[i]);
  }
  return utf8::is_valid(out) ? out : utf8::replace_invalid(out);
}

struct Converter {
  duk_context* ctx;
  size_t budget;  // bytes the value may take (the memory cap)
  Error error;

  bool fail(const std::string& path, const std::string& what) {
    error.code = std::string(kBadResult);
    error.message = (path.empty() ? std::string("the returned value") : "the value at " + path) +
                    " " + what + ": a script returns JSON (objects, arrays, strings, finite " +
                    "numbers, booleans, null)";
    return false;
  }

  bool charge(size_t n, const std::string& path) {
    if (n > budget) return fail(path, "makes the result too large");
    budget -= n;
    return true;
  }

  // The value at `idx` into `out`; `undefined` reports through `skip` (an
  // object member to leave out, as JSON.stringify does).
  bool convert(duk_idx_t idx, const std::string& path, int depth, json& out, bool* skip) {
    idx = duk_normalize_index(ctx, idx);
    if (depth > 64) return fail(path, "is nested deeper than 64 levels (a cycle?)");
    if (!charge(16, path)) return false;
    switch (duk_get_type(ctx, idx)) {
      case DUK_TYPE_UNDEFINED:
        if (skip != nullptr) *skip = true;
        out = nullptr;
        return true;
      case DUK_TYPE_NULL: out = nullptr; return true;
      case DUK_TYPE_BOOLEAN: out = static_cast<bool>(duk_get_boolean(ctx, idx)); return true;
      case DUK_TYPE_NUMBER: {
        double d = duk_get_number(ctx, idx);
        if (!std::isfinite(d)) return fail(path, std::isnan(d) ? "is NaN" : "is infinite");
        if (d == std::floor(d) && std::fabs(d) <= 9007199254740992.0) {
          out = static_cast<int64_t>(d);
        } else {
          out = d;
        }
        return true;
      }
      case DUK_TYPE_STRING: {
        if (duk_is_symbol(ctx, idx)) return fail(path, "is a Symbol");
        duk_size_t n = 0;
        const char* p = duk_get_lstring(ctx, idx, &n);
        if (!charge(n, path)) return false;
        out = to_utf8(p, n);
        return true;
      }
      case DUK_TYPE_OBJECT: return convert_object(idx, path, depth, out);
      case DUK_TYPE_BUFFER: return fail(path, "is a buffer");
      case DUK_TYPE_POINTER: return fail(path, "is a pointer");
      case DUK_TYPE_LIGHTFUNC: return fail(path, "is a function");
      default: return fail(path, "has a type JSON cannot hold");
    }
  }

  bool convert_object(duk_idx_t idx, const std::string& path, int depth, json& out) {
    if (duk_is_function(ctx, idx)) return fail(path, "is a function");
    duk_require_stack(ctx, 8);  // each level holds an enumerator, a key and a value
    if (duk_is_buffer_data(ctx, idx)) return fail(path, "is a buffer");
    // toJSON (Date and the like), as JSON.stringify calls it.
    duk_get_prop_string(ctx, idx, "toJSON");
    if (duk_is_function(ctx, -1)) {
      duk_dup(ctx, idx);
      duk_call_method(ctx, 0);
      bool ok = convert(-1, path, depth + 1, out, nullptr);
      duk_pop(ctx);
      return ok;
    }
    duk_pop(ctx);
    if (duk_is_array(ctx, idx)) {
      out = json::array();
      const duk_size_t n = duk_get_length(ctx, idx);
      for (duk_size_t i = 0; i < n; ++i) {
        duk_get_prop_index(ctx, idx, static_cast<duk_uarridx_t>(i));
        json item;
        bool ok = convert(-1, path + "/" + std::to_string(i), depth + 1, item, nullptr);
        duk_pop(ctx);
        if (!ok) return false;
        out.push_back(std::move(item));
      }
      return true;
    }
    out = json::object();
    duk_enum(ctx, idx, DUK_ENUM_OWN_PROPERTIES_ONLY);
    while (duk_next(ctx, -1, 1)) {
      duk_size_t kn = 0;
      const char* kp = duk_get_lstring(ctx, -2, &kn);
      std::string key = to_utf8(kp, kn);
      if (!charge(key.size(), path)) return false;
      json value;
      bool skip = false;
      std::string child = path + "/" + key;
      bool ok = convert(-1, child, depth + 1, value, &skip);
      duk_pop_2(ctx);
      if (!ok) return false;
      if (!skip) out[key] = std::move(value);
    }
    duk_pop(ctx);  // the enumerator
    return true;
  }
};

// ---------------------------------------------------------------- run

struct RunJob {
  const Program* program;
  const json* args;
  size_t budget;
  Outcome* outcome;
};

duk_ret_t do_run(duk_context* ctx, void* udata) {
  auto* job = static_cast<RunJob*>(udata);
  // No host access: Duktape's own object (gc, act, enc/dec, ...) goes.
  duk_push_global_object(ctx);
  duk_del_prop_string(ctx, -1, "Duktape");
  duk_pop(ctx);

  const std::string& bc = job->program->bytecode;
  void* buf = duk_push_fixed_buffer(ctx, bc.size());
  std::memcpy(buf, bc.data(), bc.size());
  duk_load_function(ctx);
  duk_call(ctx, 0);  // the eval code's value: the step's function
  if (!duk_is_function(ctx, -1)) {
    job->outcome->error = {std::string(kSyntaxError), "the source is not a function body", 0, 0};
    return 0;
  }
  for (const char* name : {"input", "steps", "item", "index"}) {
    auto it = job->args->find(name);
    if (it == job->args->end()) {
      duk_push_undefined(ctx);
    } else {
      std::string text = it->dump();
      duk_push_lstring(ctx, text.data(), text.size());
      duk_json_decode(ctx, -1);
    }
  }
  duk_call(ctx, 4);
  Converter conv{ctx, job->budget, {}};
  json value;
  if (conv.convert(-1, "", 0, value, nullptr)) {
    job->outcome->ok = true;
    job->outcome->value = std::move(value);
  } else {
    job->outcome->error = std::move(conv.error);
  }
  return 0;
}

std::string mib(size_t bytes) {
  if (bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace

Compiled compile(std::string_view source) {
  Compiled out;
  Heap heap(16u << 20);
  if (heap.ctx() == nullptr) {
    out.error = {std::string(kMemory), "could not create a JavaScript heap", 0, 0};
    return out;
  }
  CompileJob job{source, {}};
  if (duk_safe_call(heap.ctx(), do_compile, &job, 0, 1) == DUK_EXEC_SUCCESS) {
    auto program = std::make_shared<Program>();
    program->bytecode = std::move(job.bytecode);
    out.program = std::move(program);
    return out;
  }
  std::string msg = error_text(heap.ctx());
  out.error.code = std::string(kSyntaxError);
  out.error.line = line_in_message(msg);
  if (out.error.line == 0) out.error.line = error_line(heap.ctx());
  if (auto u = find_unsupported(source)) {
    out.error.line = u->line;
    out.error.column = u->column;
    out.error.message = "line " + std::to_string(u->line) + ", column " +
                        std::to_string(u->column) + ": " + u->what +
                        " not supported: scripts run on Duktape, which is ES5.1 with a few "
                        "ES2015 parts (docs/scripts.md)";
  } else {
    out.error.message = msg;
  }
  return out;
}

Outcome run(const Program& program, const json& args, const Limits& limits) {
  Outcome out;
  Heap heap(limits.memory_bytes);
  if (heap.ctx() == nullptr) {
    out.error = {std::string(kMemory),
                 "a JavaScript heap does not fit in the memory cap of " + mib(limits.memory_bytes),
                 0, 0};
    return out;
  }
  HeapCtx& hc = heap.hc();
  hc.deadline = Clock::now() + std::chrono::milliseconds(limits.timeout_ms);
  hc.timing = true;
  RunJob job{&program, &args, limits.memory_bytes, &out};
  if (duk_safe_call(heap.ctx(), do_run, &job, 0, 1) == DUK_EXEC_SUCCESS) return out;
  std::string msg = error_text(heap.ctx());
  out.ok = false;
  if (hc.timed_out) {
    out.error = {
        std::string(kTimeout),
        "the script ran longer than its time cap of " + std::to_string(limits.timeout_ms) + " ms",
        0, 0};
  } else if (hc.refused && msg.find("alloc failed") != std::string::npos) {
    out.error = {std::string(kMemory),
                 "the script needed more than its memory cap of " + mib(limits.memory_bytes), 0, 0};
  } else {
    out.error.code = std::string(kRuntimeError);
    out.error.line = error_line(heap.ctx());
    out.error.message = utf8::truncate(msg, 2000);
    if (out.error.line > 0) out.error.message += " (line " + std::to_string(out.error.line) + ")";
  }
  return out;
}

}  // namespace yantra::script

// Duktape's DUK_USE_EXEC_TIMEOUT_CHECK (patched into duk_config.h): called
// from the bytecode executor's interrupt with the heap's udata.
int yantra_duk_exec_timeout(void* udata) {
  auto* h = static_cast<yantra::script::HeapCtx*>(udata);
  if (h == nullptr || !h->timing) return 0;
  if (h->timed_out) return 1;
  if (yantra::script::Clock::now() >= h->deadline) {
    h->timed_out = true;
    return 1;
  }
  return 0;
}
