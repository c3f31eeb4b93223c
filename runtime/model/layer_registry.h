// LayerRegistry: layer type ("dense", "conv2d", a user's "scaled_tanh") to the
// factory that makes a layer from its JSON arguments. SequentialModel looks up
// each entry of a config's layer list here. The built-in layers are in every
// registry from its creation; users add theirs with Register, or with
// MESHTRAIN_REGISTER_LAYER in a file linked into their program.
//
// Global() is the one registry the job config and `meshtrain` use; tests may
// make their own. Thread-safe: Register and Create may be called from any
// thread (a mutex guards the map; factories run outside it).
#ifndef MESHTRAIN_RUNTIME_MODEL_LAYER_REGISTRY_H_
#define MESHTRAIN_RUNTIME_MODEL_LAYER_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "runtime/base/json_reader.h"
#include "runtime/model/layer.h"

namespace meshtrain {

// Makes a layer from its arguments: `args` is the layer's JSON object (its
// "type" and "name" already read). The factory reads its arguments with
// ReadOptional/Read, applying Keras's defaults; the caller then rejects any
// key the factory did not read. Must be thread-safe (called concurrently).
using LayerFactory = std::function<absl::StatusOr<std::unique_ptr<Layer>>(JsonReader& args)>;

class LayerRegistry {
 public:
  // A registry holding the built-in layers (builtin_layers.h).
  LayerRegistry();

  // The process's registry, made on first use.
  static LayerRegistry& Global();

  // AlreadyExists if `type` is taken; InvalidArgument for an empty type.
  absl::Status Register(std::string type, LayerFactory factory) ABSL_LOCKS_EXCLUDED(mutex_);
  // InvalidArgument naming `where` and the known types for an unknown type.
  absl::StatusOr<std::unique_ptr<Layer>> Create(absl::string_view type, JsonReader& args,
                                                absl::string_view where) const
      ABSL_LOCKS_EXCLUDED(mutex_);
  std::vector<std::string> types() const ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  mutable absl::Mutex mutex_;
  std::map<std::string, LayerFactory, std::less<>> factories_ ABSL_GUARDED_BY(mutex_);
};

// Registers a layer type in LayerRegistry::Global() when the program starts:
//   MESHTRAIN_REGISTER_LAYER(scaled_tanh, CreateScaledTanh);
// Put it in a file of the executable itself: a static library's object file
// that nothing references is left out by the linker, registration and all.
// A failed registration (a taken name) is fatal at start-up.
#define MESHTRAIN_REGISTER_LAYER(type, factory)                          \
  static const bool meshtrain_layer_registered_##type [[maybe_unused]] = \
      ::meshtrain::internal::RegisterLayerAtStartup(#type, factory)

namespace internal {
bool RegisterLayerAtStartup(const char* type, LayerFactory factory);
}  // namespace internal

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_MODEL_LAYER_REGISTRY_H_
