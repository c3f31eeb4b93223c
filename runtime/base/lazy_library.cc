#include "runtime/base/lazy_library.h"

#include <dlfcn.h>

#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"

namespace meshtrain {
namespace {

std::string DlError() {
  const char* error = dlerror();
  return error != nullptr ? error : "dlopen failed";
}

// Opens the library from the loader's search path, else from the fallback
// folder. On failure `errors` holds dlerror's text of each try: it names the
// file and why (not found, or a library it needs missing).
void* OpenLibrary(const LazyLibrary::Options& options, std::string& errors) {
  // RTLD_NOW: a library whose own dependencies lack a symbol fails here, with
  // dlerror saying which, instead of aborting the process at some later call.
  const int flags = RTLD_NOW | (options.global ? RTLD_GLOBAL : RTLD_LOCAL);
  if (void* handle = dlopen(options.soname.c_str(), flags)) return handle;
  errors = DlError();
  if (options.fallback_dir.empty()) return nullptr;
  const std::string path = absl::StrCat(options.fallback_dir, "/", options.soname);
  if (void* handle = dlopen(path.c_str(), flags)) return handle;
  absl::StrAppend(&errors, "; ", DlError());
  return nullptr;
}

}  // namespace

const absl::Status& LazyLibrary::Load() {
  absl::call_once(once_, [this] { Open(); });
  return status_;
}

void LazyLibrary::Open() {
  std::string errors;
  handle_ = OpenLibrary(options_, errors);
  if (handle_ == nullptr) {
    status_ = absl::FailedPreconditionError(
        absl::StrCat(options_.soname, " could not be loaded (", errors,
                     "): ", options_.install_hint, ", or add its lib folder to LD_LIBRARY_PATH"));
    MESHTRAIN_LOG(WARNING) << status_.message();
  }
}

void* LazyLibrary::Symbol(const char* name) {
  if (!Load().ok()) return nullptr;
  void* symbol = dlsym(handle_, name);
  if (symbol == nullptr) {
    MESHTRAIN_LOG(ERROR) << options_.soname << " has no " << name
                         << ": is it older than the headers meshtrain was built with?";
  }
  return symbol;
}

}  // namespace meshtrain
