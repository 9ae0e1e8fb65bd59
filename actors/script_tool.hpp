// The built-in `script` tool: one action, "run", that runs the JavaScript of
// a `script` step (runtime/steps/script.cpp records its parameters: the
// source and the parts of the execution it names) in the sandbox of
// script/sandbox.hpp. docs/scripts.md is the user's view.
//
// Why a blocking Tool: a call holds its thread for up to its time cap, so it
// runs on the tool pool's own threads (actors/tools.cpp), never on a CAF
// scheduler thread, at most `concurrency` at a time; further calls queue.
//
// Compiled once: bytecode is cached by the SHA-256 of the source (an LRU of
// `cache_entries`), so every execution of a flow version, and every version
// that keeps the script unchanged, shares one compile; each call then gets a
// fresh heap under the caps.
//
// Failures (never retriable: the same script fails the same way):
// script_timeout, script_memory, script_error (a throw, with its line),
// script_result (a value JSON cannot hold), script_syntax, and
// invalid_parameters when called without a source.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "actors/tools.hpp"

namespace yantra {

struct ScriptToolOptions {
  size_t concurrency = 2;  // scripts running at once (= tool threads)
  // The time cap of a call is the step's timeout_ms (default 50), at most this.
  int64_t max_timeout_ms = 1000;
  size_t memory_bytes = 16u << 20;  // the memory cap of every call
  size_t cache_entries = 1024;      // compiled scripts kept
};

std::shared_ptr<Tool> make_script_tool(const ScriptToolOptions& options = {});

}  // namespace yantra
