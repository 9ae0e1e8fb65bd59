// The sanitizers' default options, compiled into every executable of a
// sanitizer build (yantra_sanitizer_options in cmake/Sanitizers.cmake), so a
// test binary, a fuzzer or the `yantra` node started by hand behaves exactly
// as in CI. The *_OPTIONS environment variables still override any of them
// (scripts/sanitize.sh adds log_path so that reports of child processes, such
// as the nodes the e2e suites start, are collected and printed).
//
// Why these options:
// - UBSan halt_on_error=1: the code is compiled with recoverable UBSan checks
//   so that ubsan.supp can silence reports inside Debian's uninstrumented
//   libraries' headers, and every other report is fatal, so it fails its test.
// - print_stacktrace=1: a UBSan report without a stack names only a line.
// - TSan second_deadlock_stack=1: both stacks of a lock-order inversion.
// Each suppression file documents every entry it holds.
#ifndef YANTRA_SANITIZER_DIR
#error "YANTRA_SANITIZER_DIR is set by cmake/Sanitizers.cmake"
#endif

extern "C" {

// NOLINTBEGIN: the names are the sanitizer runtimes' hooks.
const char* __asan_default_options() {
  return "check_initialization_order=1:strict_init_order=1:detect_leaks=1";
}

const char* __lsan_default_options() {
  return "suppressions=" YANTRA_SANITIZER_DIR "/lsan.supp";
}

const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1:suppressions=" YANTRA_SANITIZER_DIR "/ubsan.supp";
}

const char* __tsan_default_options() {
  return "second_deadlock_stack=1:suppressions=" YANTRA_SANITIZER_DIR "/tsan.supp";
}
// NOLINTEND

}  // extern "C"
