# meshtrain_library(NAME SRCS ... DEPS ...): one static library per folder. Sources
# include headers by their path from the repository root.
function(meshtrain_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# meshtrain_test(NAME SRCS ... DEPS ... LABELS ...): a GoogleTest binary whose cases
# are registered with CTest one by one, carrying the given labels.
function(meshtrain_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()

# meshtrain_lazy_library(SOURCE PREFIX LIBRARY): SOURCE is the shim that opens
# the shared library LIBRARY on first use (runtime/base/lazy_library.h) instead
# of the binaries linking it. It is compiled with PREFIX_SONAME, the name dlopen
# is given (LIBRARY's SONAME, e.g. "libcudart.so.13"), and PREFIX_DIR, the
# folder the build found it in, tried when the loader's search path lacks it:
# that of the file LIBRARY links to, where the SONAME link lives beside it
# (libmpi.so in openmpi/lib links to ../../libmpi.so.40.*).
function(meshtrain_lazy_library source prefix library)
  get_filename_component(real "${library}" REALPATH)
  get_filename_component(dir "${real}" DIRECTORY)
  get_filename_component(soname "${library}" NAME)
  execute_process(COMMAND "${CMAKE_OBJDUMP}" -p "${library}"
                  OUTPUT_VARIABLE dump ERROR_QUIET RESULT_VARIABLE failed)
  if(NOT failed AND dump MATCHES "SONAME +([^ \r\n]+)")
    set(soname "${CMAKE_MATCH_1}")
  else()
    message(WARNING "meshtrain: no SONAME read from ${library}; dlopen will look for ${soname}")
  endif()
  set_property(SOURCE ${source} APPEND PROPERTY COMPILE_DEFINITIONS
               ${prefix}_SONAME="${soname}" ${prefix}_DIR="${dir}")
  message(STATUS "meshtrain: ${source} opens ${soname} on first use (else ${dir})")
endfunction()
