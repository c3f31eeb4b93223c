// oneDNN (libdnnl), opened on first use instead of linked, so a process that
// runs no convolution never maps it (39 MB, with libgomp and libOpenCL) and so
// libgomp's wait policy can be chosen before it loads (runtime/base/
// lazy_library.h). dnnl_library.cc defines every oneDNN C function dnnl.hpp
// calls for DnnlConv2D, each forwarding to libdnnl and returning
// dnnl_runtime_error (or null) when it cannot be loaded; dnnl.hpp then throws
// and DnnlConv2D's check names LoadDnnl()'s message. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_TENSOR_DNNL_LIBRARY_H_
#define MESHTRAIN_RUNTIME_TENSOR_DNNL_LIBRARY_H_

#include "absl/status/status.h"

namespace meshtrain {

// OK once libdnnl is loaded; else kFailedPrecondition naming the file and the
// package. The first call loads it, after setting OMP_WAIT_POLICY=passive
// unless the environment already sets it: libgomp reads it once, when it
// loads, and its default spinning after each parallel region takes the core
// another replica or OpenBLAS needs on small machines (docs/benchmarks.md).
const absl::Status& LoadDnnl();

// omp_set_num_threads of the libgomp libdnnl runs on, for the calling thread;
// nothing when libdnnl cannot be loaded.
void SetDnnlThreads(int threads);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_DNNL_LIBRARY_H_
