# yantra_library(NAME <folder> SOURCES ... DEPS ...): one static library per
# top-level folder, exported as yantra::<folder>. Include paths are rooted at
# the repository, so code includes "runtime/flow.hpp", and the DEPS list is the
# only way a folder reaches another one: the link graph enforces ARCHITECTURE.md.
function(yantra_library)
  cmake_parse_arguments(Y "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(yantra_${Y_NAME} STATIC ${Y_SOURCES})
  add_library(yantra::${Y_NAME} ALIAS yantra_${Y_NAME})
  target_include_directories(yantra_${Y_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(yantra_${Y_NAME} PUBLIC ${Y_DEPS} PRIVATE ${Y_PRIVATE_DEPS} yantra_warnings)
endfunction()

# yantra_test(NAME <suite> SOURCES ... DEPS ...): one GoogleTest binary and one
# CTest entry per suite, so ctest -j2 runs suites in parallel.
function(yantra_test)
  cmake_parse_arguments(Y "" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${Y_NAME} ${Y_SOURCES})
  target_link_libraries(${Y_NAME} PRIVATE ${Y_DEPS} GTest::gtest_main yantra_warnings
                        yantra_sanitizer_options)
  add_test(NAME ${Y_NAME} COMMAND ${Y_NAME})
  if(NOT Y_TIMEOUT)
    set(Y_TIMEOUT 300)
  endif()
  if(YANTRA_SANITIZE)
    # Instrumented code runs 2-15x slower (cmake/Sanitizers.cmake).
    math(EXPR Y_TIMEOUT "${Y_TIMEOUT} * 3")
  endif()
  set_tests_properties(${Y_NAME} PROPERTIES TIMEOUT ${Y_TIMEOUT} LABELS "${Y_LABELS}")
endfunction()
