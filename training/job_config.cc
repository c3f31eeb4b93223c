#include "training/job_config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

using json = nlohmann::json;

// Reads the fields of one JSON object, checking types, and afterwards reports
// any key it was not asked about.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path, absl::string_view source)
      : object_(object), path_(std::move(path)), source_(source) {}

  absl::Status CheckObject() const {
    if (!object_.is_object()) return Error(path_, "must be an object");
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Read(const char* key, T* out) {
    known_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end()) return absl::OkStatus();
    const std::string path = absl::StrCat(path_, ".", key);
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) return Error(path, "must be true or false");
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) return Error(path, "must be an integer");
      if (std::is_unsigned_v<T> && it->template get<int64_t>() < 0) {
        return Error(path, "must not be negative");
      }
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!it->is_number()) return Error(path, "must be a number");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (it->is_number_integer() && std::string(key) == "devices") {
        *out = std::to_string(it->template get<int64_t>());
        return absl::OkStatus();
      }
      if (!it->is_string()) return Error(path, "must be a string");
    } else {
      static_assert(std::is_same_v<T, std::vector<int64_t>>);
      if (!it->is_array()) return Error(path, "must be a list of integers");
      for (const json& v : *it) {
        if (!v.is_number_integer()) return Error(path, "must be a list of integers");
      }
    }
    *out = it->template get<T>();
    return absl::OkStatus();
  }

  // Sub-object `key`, or null if absent.
  const json* Child(const char* key) {
    known_.insert(key);
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  absl::Status CheckNoUnknownKeys() const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (!known_.count(it.key())) {
        return Error(absl::StrCat(path_, ".", it.key()),
                     absl::StrCat("is not a known key; ", path_, " takes: ",
                                  absl::StrJoin(known_, ", ")));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Error(absl::string_view path, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", path, " ", what));
  }

 private:
  const json& object_;
  std::string path_;
  absl::string_view source_;
  std::set<std::string> known_;
};

template <typename Fn>
absl::Status ReadSection(ObjectReader& parent, const char* key, absl::string_view source, Fn fn) {
  const json* child = parent.Child(key);
  if (child == nullptr) return absl::OkStatus();
  ObjectReader reader(*child, key, source);
  MESHTRAIN_RETURN_IF_ERROR(reader.CheckObject());
  MESHTRAIN_RETURN_IF_ERROR(fn(reader));
  return reader.CheckNoUnknownKeys();
}

absl::Status ParseSections(const json& root, absl::string_view source, JobConfig& c) {
  ObjectReader top(root, "config", source);
  MESHTRAIN_RETURN_IF_ERROR(top.CheckObject());
  MESHTRAIN_RETURN_IF_ERROR(top.Read("name", &c.name));
  MESHTRAIN_RETURN_IF_ERROR(ReadSection(top, "data", source, [&](ObjectReader& r) {
    DataConfig& d = c.data;
    MESHTRAIN_RETURN_IF_ERROR(r.Read("dataset", &d.dataset));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("dir", &d.dir));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("shuffle", &d.shuffle));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("drop_remainder", &d.drop_remainder));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("train_examples", &d.train_examples));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("test_examples", &d.test_examples));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("features", &d.features));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("vocabulary", &d.vocabulary));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("hash_buckets", &d.hash_buckets));
    return r.Read("num_classes", &d.num_classes);
  }));
  MESHTRAIN_RETURN_IF_ERROR(ReadSection(top, "model", source, [&](ObjectReader& r) {
    ModelConfig& m = c.model;
    MESHTRAIN_RETURN_IF_ERROR(r.Read("type", &m.type));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("hidden_units", &m.hidden_units));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("kernel_initializer", &m.kernel_initializer));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("bias_initializer", &m.bias_initializer));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("embedding_rows", &m.embedding_rows));
    return r.Read("embedding_dim", &m.embedding_dim);
  }));
  MESHTRAIN_RETURN_IF_ERROR(ReadSection(top, "optimizer", source, [&](ObjectReader& r) {
    OptimizerConfig& o = c.optimizer;
    MESHTRAIN_RETURN_IF_ERROR(r.Read("type", &o.type));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("learning_rate", &o.learning_rate));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("momentum", &o.momentum));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("nesterov", &o.nesterov));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("beta1", &o.beta1));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("beta2", &o.beta2));
    return r.Read("epsilon", &o.epsilon);
  }));
  MESHTRAIN_RETURN_IF_ERROR(ReadSection(top, "training", source, [&](ObjectReader& r) {
    TrainingConfig& t = c.training;
    MESHTRAIN_RETURN_IF_ERROR(r.Read("global_batch_size", &t.global_batch_size));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("epochs", &t.epochs));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("max_steps", &t.max_steps));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("seed", &t.seed));
    return r.Read("target_accuracy", &t.target_accuracy);
  }));
  MESHTRAIN_RETURN_IF_ERROR(ReadSection(top, "strategy", source, [&](ObjectReader& r) {
    StrategyConfig& s = c.strategy;
    MESHTRAIN_RETURN_IF_ERROR(r.Read("name", &s.name));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("devices", &s.devices));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("cross_device_ops", &s.cross_device_ops));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("communication", &s.communication));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("bytes_per_pack", &s.bytes_per_pack));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("overlap", &s.overlap));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("parameter_device", &s.parameter_device));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("placement", &s.placement));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("fixed_shards", &s.fixed_shards));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("min_shard_bytes", &s.min_shard_bytes));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("max_shard_bytes", &s.max_shard_bytes));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("max_staleness", &s.max_staleness));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("staleness_scaling", &s.staleness_scaling));
    MESHTRAIN_RETURN_IF_ERROR(r.Read("warmup_steps", &s.warmup_steps));
    return r.Read("sync_replicas", &s.sync_replicas);
  }));
  return top.CheckNoUnknownKeys();
}

}  // namespace

absl::StatusOr<JobConfig> ParseJobConfig(absl::string_view text, absl::string_view source) {
  json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    // Parse again, with exceptions, only to learn where it failed.
    std::string where = "the JSON is malformed";
    try {
      (void)json::parse(text.begin(), text.end());
    } catch (const json::parse_error& e) {
      where = e.what();
    }
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", where));
  }
  JobConfig config;
  MESHTRAIN_RETURN_IF_ERROR(ParseSections(root, source, config));
  if (config.training.global_batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": training.global_batch_size must be at least 1 (the reference job uses 256)"));
  }
  if (config.training.epochs < 1 && config.training.max_steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": set training.epochs or training.max_steps to at least 1"));
  }
  if (config.training.max_steps < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": training.max_steps must be >= 0 (0 means no limit)"));
  }
  return config;
}

absl::StatusOr<JobConfig> LoadJobConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("job config ", path,
                                            " cannot be read; pass --config with a file such as "
                                            "configs/fashion_mnist_mlp.json"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseJobConfig(text.str(), path);
}

}  // namespace meshtrain
