#include "runtime/model/layer_registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/check.h"
#include "runtime/model/builtin_layers.h"

namespace meshtrain {

LayerRegistry::LayerRegistry() {
  for (auto& [type, factory] : BuiltinLayerFactories()) {
    factories_.emplace(type, std::move(factory));
  }
}

LayerRegistry& LayerRegistry::Global() {
  static LayerRegistry* registry = new LayerRegistry;
  return *registry;
}

absl::Status LayerRegistry::Register(std::string type, LayerFactory factory) {
  if (type.empty() || !factory) {
    return absl::InvalidArgumentError("a layer needs a type name and a factory");
  }
  absl::MutexLock lock(&mutex_);
  if (factories_.count(type) > 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("layer type '", type, "' is already registered; choose another name"));
  }
  factories_.emplace(std::move(type), std::move(factory));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Layer>> LayerRegistry::Create(absl::string_view type,
                                                             JsonReader& args,
                                                             absl::string_view where) const {
  LayerFactory factory;
  {
    absl::MutexLock lock(&mutex_);
    auto it = factories_.find(type);
    if (it != factories_.end()) factory = it->second;
  }
  if (!factory) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": unknown layer type '", type, "'; known types: ", absl::StrJoin(types(), ", "),
        " (a C++ layer must be registered with LayerRegistry, docs/models.md)"));
  }
  return factory(args);
}

std::vector<std::string> LayerRegistry::types() const {
  absl::MutexLock lock(&mutex_);
  std::vector<std::string> names;
  for (const auto& [type, factory] : factories_) names.push_back(type);
  return names;
}

namespace internal {

bool RegisterLayerAtStartup(const char* type, LayerFactory factory) {
  absl::Status status = LayerRegistry::Global().Register(type, std::move(factory));
  MESHTRAIN_CHECK(status.ok()) << status;
  return true;
}

}  // namespace internal
}  // namespace meshtrain
