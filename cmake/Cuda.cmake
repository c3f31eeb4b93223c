# CUDA is optional: AUTO builds the CUDA device and NCCL collectives when nvcc is
# found (by default under /usr/local/cuda), ON requires it, OFF skips it. Nothing
# needs a GPU at build or test time; GPU tests skip themselves at run time.
set(MESHTRAIN_HAVE_CUDA OFF)
if(NOT MESHTRAIN_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # "90" emits sm_90 machine code plus compute_90 PTX for newer GPUs.
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    # CMake 3.25 knows no C++20 flag for nvcc; the .cu files need only C++17.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    find_library(MESHTRAIN_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
    find_path(MESHTRAIN_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
    if(MESHTRAIN_NCCL_LIBRARY AND MESHTRAIN_NCCL_INCLUDE)
      # nccl.h only: runtime/collective/nccl/nccl_library.cc opens libnccl on
      # first use.
      add_library(meshtrain_nccl_dep INTERFACE)
      target_include_directories(meshtrain_nccl_dep SYSTEM INTERFACE ${MESHTRAIN_NCCL_INCLUDE})
      set(MESHTRAIN_HAVE_CUDA ON)
    elseif(MESHTRAIN_CUDA STREQUAL "ON")
      message(FATAL_ERROR "MESHTRAIN_CUDA=ON but NCCL (nccl.h, libnccl) was not found under ${CUDAToolkit_LIBRARY_DIR}")
    endif()
  elseif(MESHTRAIN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MESHTRAIN_CUDA=ON but no CUDA compiler was found; set CMAKE_CUDA_COMPILER or install the CUDA toolkit")
  endif()
endif()
message(STATUS "meshtrain: CUDA device and NCCL ${MESHTRAIN_HAVE_CUDA}")
