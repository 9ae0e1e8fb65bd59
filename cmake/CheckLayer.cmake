# cmake -DDIR=<folder> -DFORBIDDEN=<folder> [-DALLOWED=<header;...>] -DSTAMP=<file> -P CheckLayer.cmake
# Fails when a C++ file under DIR includes a header of FORBIDDEN/ (a layer it
# must not depend on, docs/architecture.md); writes STAMP when none does.
# ALLOWED lists header-only exceptions (e.g. storage/errc.hpp: the error enum
# api/errors.cpp maps to HTTP statuses, no RocksDB, no link edge).
file(GLOB_RECURSE files ${DIR}/*.cpp ${DIR}/*.hpp ${DIR}/*.in)
set(bad "")
foreach(f ${files})
  file(STRINGS ${f} hits REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]${FORBIDDEN}/")
  foreach(hit ${hits})
    set(allowed_hit FALSE)
    foreach(a ${ALLOWED})
      string(FIND "${hit}" "${a}" pos)
      if(NOT pos EQUAL -1)
        set(allowed_hit TRUE)
      endif()
    endforeach()
    if(NOT allowed_hit)
      string(APPEND bad "\n  ${f}: ${hit}")
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "layer rule broken: ${DIR} must not include ${FORBIDDEN}/ headers:${bad}")
endif()
file(WRITE ${STAMP} "ok\n")
