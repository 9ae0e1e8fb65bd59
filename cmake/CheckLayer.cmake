# cmake -DDIR=<folder> -DFORBIDDEN=<folder> -DSTAMP=<file> -P CheckLayer.cmake
# Fails when a C++ file under DIR includes a header of FORBIDDEN/ (a layer it
# must not depend on, docs/architecture.md); writes STAMP when none does.
file(GLOB_RECURSE files ${DIR}/*.cpp ${DIR}/*.hpp ${DIR}/*.in)
set(bad "")
foreach(f ${files})
  file(STRINGS ${f} hits REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]${FORBIDDEN}/")
  if(hits)
    string(APPEND bad "\n  ${f}: ${hits}")
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "layer rule broken: ${DIR} must not include ${FORBIDDEN}/ headers:${bad}")
endif()
file(WRITE ${STAMP} "ok\n")
