# CTest actors_interfaces_test: compiles tests/actors/interfaces_check.cpp
# (-fsyntax-only) once as is, which must succeed, and once per mismatch,
# which must fail with CAF's "does not accept" static assertion.
# Inputs: CXX, SRC (the source dir), BIN (the build dir).
set(flags -std=c++20 -fsyntax-only -I${SRC} -I${BIN}/proto ${SRC}/tests/actors/interfaces_check.cpp)
execute_process(COMMAND ${CXX} ${flags} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the well-typed sends do not compile:\n${err}")
endif()
foreach(n 1 2 3)
  execute_process(COMMAND ${CXX} ${flags} -DYANTRA_MISMATCH=${n} RESULT_VARIABLE rc
                  ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(FATAL_ERROR "mismatch ${n} compiled: an actor accepts a message it does not declare")
  endif()
  string(FIND "${err}" "does not accept" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "mismatch ${n} failed for another reason:\n${err}")
  endif()
  message(STATUS "mismatch ${n}: refused at build time")
endforeach()
