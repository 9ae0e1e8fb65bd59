// The JavaScript sandbox of `script` steps (docs/scripts.md): Duktape 2.7,
// ES5.1 plus a few ES2015 parts. This header is the whole surface; no
// Duktape type appears in it, so only sandbox.cpp compiles against Duktape.
//
// Lifecycle: compile() turns a step's source (a function body) into
// bytecode once; run() executes bytecode in a fresh heap per call — nothing
// survives a call, so one call cannot see or poison another's globals, and
// the heap's whole memory is under that call's cap. A fresh heap costs
// ~0.1 ms (bench/run script); reusing one would save that but needs a reset
// we would have to trust. Both are plain functions, safe on any thread,
// blocking for at most the time cap: callers keep them off CAF scheduler
// threads (actors/script_tool.cpp runs them on tool threads).
//
// Sandbox: the function sees its arguments (input, steps, item, index) and
// the ECMAScript built-ins, nothing of the host: no require, print, file,
// socket or timer, and the `Duktape` object is removed. A memory cap (our
// allocator refuses beyond it) and a time cap (Duktape's interrupt hook)
// stop any call; both leave the process unharmed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace yantra::script {

// Error codes, as steps report them (docs/scripts.md, docs/errors.md).
inline constexpr std::string_view kSyntaxError = "script_syntax";  // does not compile
inline constexpr std::string_view kRuntimeError = "script_error";  // threw
inline constexpr std::string_view kTimeout = "script_timeout";     // time cap
inline constexpr std::string_view kMemory = "script_memory";       // memory cap
inline constexpr std::string_view kBadResult = "script_result";    // returned non-JSON

struct Error {
  std::string code;
  std::string message;  // includes the position when known
  int line = 0;         // 1-based in the step's source; 0 = unknown
  int column = 0;       // 1-based; 0 = unknown (Duktape records lines only)
};

struct Limits {
  int64_t timeout_ms = 50;
  size_t memory_bytes = 16u << 20;
};

// Compiled bytecode of one source (duk_dump_function output).
struct Program {
  std::string bytecode;
};

struct Compiled {
  std::shared_ptr<const Program> program;  // null on error
  Error error;
};

// Compiles `source`, the body of `function (input, steps, item, index)`.
// Deterministic; runs no script code. A syntax error Duktape lacks support
// for (arrow functions, let, template strings, classes, destructuring,
// spread, ...) gets a message that names the construct and its line and
// column.
Compiled compile(std::string_view source);

struct Outcome {
  bool ok = false;
  nlohmann::json value;  // the returned value (undefined -> null)
  Error error;
};

// Runs `program` with `args` (an object: input, steps, item, index; missing
// members are undefined) under `limits`.
Outcome run(const Program& program, const nlohmann::json& args, const Limits& limits);

}  // namespace yantra::script
