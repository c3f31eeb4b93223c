// LazyLibrary: a shared library opened with dlopen on first use, so that a
// process pays for cuBLAS, NCCL or MPI (hundreds of megabytes mapped and
// relocated, most of a second) only when it asks for a GPU or runs under mpirun,
// as TensorFlow's DSO loader does. Each such library has a shim beside the code
// that converts its errors (runtime/tensor/cuda, runtime/collective/nccl,
// runtime/cluster) which defines the library's functions we call, each
// forwarding through Symbol(); the binary does not link the library itself.
//
// A missing library is not a crash: Load() says which file was looked for and
// what to install, logged once, and the shims return the library's own error
// code, which the error conversion turns into that message.
//
// Each shim keeps its LazyLibrary in a function-local static, never destroyed
// (the library's code may run until the process exits): the one process-wide
// handle of a library, like the dynamic linker's own. Thread-safe: the first
// Load() opens the library once; later calls return its result.
#ifndef MESHTRAIN_RUNTIME_BASE_LAZY_LIBRARY_H_
#define MESHTRAIN_RUNTIME_BASE_LAZY_LIBRARY_H_

#include <string>
#include <utility>

#include "absl/base/call_once.h"
#include "absl/status/status.h"

namespace meshtrain {

class LazyLibrary {
 public:
  struct Options {
    // What dlopen is given first, through the loader's search path
    // (LD_LIBRARY_PATH, ld.so.cache): "libcublas.so.13".
    std::string soname;
    // Tried next: the folder the build found the library in ("" for none), so
    // a toolkit outside the search path still loads, as when it was linked.
    std::string fallback_dir;
    // What to do when neither loads: "install the CUDA toolkit".
    std::string install_hint;
    // RTLD_GLOBAL: the library opens plugins that need its symbols (Open MPI's
    // components); otherwise RTLD_LOCAL.
    bool global = false;
  };

  explicit LazyLibrary(Options options) : options_(std::move(options)) {}
  LazyLibrary(const LazyLibrary&) = delete;
  LazyLibrary& operator=(const LazyLibrary&) = delete;

  // OK once the library is loaded; else kFailedPrecondition, e.g.
  // "libcublas.so.13 could not be loaded (<dlerror>): install the CUDA
  // toolkit's cuBLAS, or add its lib folder to LD_LIBRARY_PATH". The first
  // call opens the library.
  const absl::Status& Load();

  // The address of the library's `name`, or nullptr when the library did not
  // load or lacks the symbol (logged: a library older than the headers).
  // Loads the library first.
  void* Symbol(const char* name);

  const std::string& soname() const { return options_.soname; }

 private:
  void Open();

  const Options options_;
  absl::once_flag once_;
  void* handle_ = nullptr;  // written once, under once_
  absl::Status status_;     // written once, under once_
};

}  // namespace meshtrain

// Defines the library function `name` (declared by the library's own header)
// to forward to the library's, resolved through `library` (a LazyLibrary&) on
// its first call; returns `missing` when the library or the symbol is absent.
// `params` and `args` are the parenthesised parameter and argument lists. Use
// at global scope.
#define MESHTRAIN_LAZY_FORWARD(library, missing, ret, name, params, args)          \
  extern "C" ret name params {                                                     \
    using Fn = ret(*) params;                                                      \
    static const Fn meshtrain_fn_ = reinterpret_cast<Fn>((library).Symbol(#name)); \
    if (meshtrain_fn_ == nullptr) return (missing);                                \
    return meshtrain_fn_ args;                                                     \
  }

#endif  // MESHTRAIN_RUNTIME_BASE_LAZY_LIBRARY_H_
