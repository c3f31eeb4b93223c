# Third-party dependencies, all from Debian packages (scripts/install-deps.sh).
find_package(Threads REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(MPI REQUIRED COMPONENTS C)
find_package(PkgConfig REQUIRED)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
# oneDNN (convolutions on the CPU). Debian ships no dnnl.pc, and its
# dnnl-config.cmake drags in OpenCL, so the header and library are found
# directly. Headers only: runtime/tensor/dnnl_library.cc opens libdnnl on the
# first convolution.
find_path(MESHTRAIN_DNNL_INCLUDE oneapi/dnnl/dnnl.hpp)
find_library(MESHTRAIN_DNNL_LIBRARY dnnl)
if(NOT MESHTRAIN_DNNL_INCLUDE OR NOT MESHTRAIN_DNNL_LIBRARY)
  message(FATAL_ERROR "oneDNN (oneapi/dnnl/dnnl.hpp, libdnnl) was not found: install Debian's "
                      "libdnnl-dev (scripts/install-deps.sh)")
endif()
add_library(meshtrain_dnnl_dep INTERFACE)
target_include_directories(meshtrain_dnnl_dep SYSTEM INTERFACE ${MESHTRAIN_DNNL_INCLUDE})

find_program(MESHTRAIN_PROTOC protoc REQUIRED)
find_program(MESHTRAIN_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

if(MESHTRAIN_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
