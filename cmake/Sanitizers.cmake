# Sanitizer and fuzzer builds (docs/testing.md; scripts/sanitize.sh and
# scripts/fuzz.sh drive them in CI). Clang only: Debian's GCC has no libFuzzer
# and clang's runtimes (libclang-rt-14-dev) are the ones CI installs.
#
#   -DYANTRA_SANITIZE=address  AddressSanitizer + UndefinedBehaviorSanitizer
#   -DYANTRA_SANITIZE=thread   ThreadSanitizer
#   -DYANTRA_FUZZ=ON           the libFuzzer targets of tests/fuzz; the whole
#                              build gets -fsanitize=fuzzer-no-link (coverage
#                              feedback) so one ASan build serves the test
#                              suites and the fuzzers.
#
# The flags apply to every target (add_compile_options), so our libraries,
# tests and the `yantra` binary are all instrumented; Debian's CAF, RocksDB,
# protobuf and yaml-cpp are not (see tests/sanitizers/README.md for what that
# means and the suppression files). Sanitizers bring their own allocator, so a
# sanitizer build never links jemalloc (yantra_malloc, top CMakeLists.txt).
set(YANTRA_SANITIZE "" CACHE STRING "Sanitizer build: empty, 'address' (ASan+UBSan) or 'thread' (TSan)")
set_property(CACHE YANTRA_SANITIZE PROPERTY STRINGS "" address thread)
option(YANTRA_FUZZ "Build the libFuzzer targets of tests/fuzz (clang; implies YANTRA_SANITIZE=address)" OFF)

if(YANTRA_FUZZ AND NOT YANTRA_SANITIZE)
  set(YANTRA_SANITIZE address CACHE STRING "" FORCE)
endif()
if(YANTRA_FUZZ AND NOT YANTRA_SANITIZE STREQUAL "address")
  message(FATAL_ERROR "YANTRA_FUZZ=ON needs YANTRA_SANITIZE=address (the fuzzers share that build)")
endif()
if((YANTRA_SANITIZE OR YANTRA_FUZZ) AND NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "YANTRA_SANITIZE/YANTRA_FUZZ need clang: configure with "
                      "-DCMAKE_CXX_COMPILER=clang++-14 (scripts/sanitize.sh does)")
endif()

if(YANTRA_SANITIZE STREQUAL "address")
  # UBSan stays recoverable at compile time so that its runtime suppressions
  # work (a -fno-sanitize-recover check dies even when suppressed);
  # halt_on_error=1 in tests/sanitizers/sanitizer_options.cpp makes every
  # report that is not suppressed fatal all the same.
  set(YANTRA_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer)
  if(YANTRA_FUZZ)
    list(APPEND YANTRA_SANITIZER_FLAGS -fsanitize=fuzzer-no-link)
  endif()
elseif(YANTRA_SANITIZE STREQUAL "thread")
  set(YANTRA_SANITIZER_FLAGS -fsanitize=thread)
elseif(YANTRA_SANITIZE)
  message(FATAL_ERROR "YANTRA_SANITIZE must be empty, 'address' or 'thread', not '${YANTRA_SANITIZE}'")
endif()

# Linked by every executable (yantra_test, yantra_malloc, the fuzzers): the
# sanitizers' default options and suppression files, compiled in so that a
# test binary or the node run by hand behaves as it does in CI. Empty in a
# normal build.
add_library(yantra_sanitizer_options INTERFACE)
if(YANTRA_SANITIZE)
  add_compile_options(${YANTRA_SANITIZER_FLAGS})
  add_link_options(${YANTRA_SANITIZER_FLAGS})
  target_sources(yantra_sanitizer_options INTERFACE
                 ${PROJECT_SOURCE_DIR}/tests/sanitizers/sanitizer_options.cpp)
  target_compile_definitions(yantra_sanitizer_options INTERFACE
                             YANTRA_SANITIZER_DIR="${PROJECT_SOURCE_DIR}/tests/sanitizers")
endif()
