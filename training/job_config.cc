#include "training/job_config.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/json_reader.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/file_sharding.h"
#include "runtime/model/layer_registry.h"
#include "runtime/model/sequential_model.h"

namespace meshtrain {
namespace {

using json = nlohmann::json;

// Section `key` of the config, if present: `fn` reads its fields, and any key it
// did not ask for is an error.
template <typename Fn>
absl::Status ReadSection(JsonReader& top, const char* key, Fn fn) {
  if (top.Find(key) == nullptr) return absl::OkStatus();
  MESHTRAIN_ASSIGN_OR_RETURN(JsonReader reader, top.Object(key));
  MESHTRAIN_RETURN_IF_ERROR(fn(reader));
  return reader.CheckNoUnknownKeys();
}

// data.augment: {"image_shape": [h, w, c], "flip_left_right": bool,
// "crop_padding": n}; checked against the inputs when the pipeline starts.
absl::Status ReadAugment(JsonReader& r, AugmentOptions* out) {
  std::vector<int64_t> shape;
  MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("image_shape", &shape));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("flip_left_right", &out->flip_left_right));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("crop_padding", &out->crop_padding));
  if (shape.size() != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data.augment.image_shape: give the images' [height, width, channels] (3 numbers), got ",
        shape.size()));
  }
  out->height = shape[0];
  out->width = shape[1];
  out->channels = shape[2];
  return absl::OkStatus();
}

// optimizer.learning_rate as an object: {"schedule": ..., "initial": rate, ...};
// the values are checked when the optimizer is made (LearningRateSchedule).
absl::Status ReadSchedule(JsonReader& r, OptimizerConfig* out) {
  MESHTRAIN_RETURN_IF_ERROR(r.Read("initial", &out->learning_rate));
  return ReadLearningRateScheduleFields(r, &out->schedule);
}

// strategy.devices: a list ("cpu:0,cpu:1") or a count, which may be written as a number.
absl::Status ReadDevices(JsonReader& r, std::string* out) {
  const json* devices = r.Find("devices");
  if (devices != nullptr && devices->is_number_integer()) {
    *out = std::to_string(devices->get<int64_t>());
    return absl::OkStatus();
  }
  return r.ReadOptional("devices", out);
}

// strategy.communication: the implementation as a string ("ring"), or an
// object in the shape of TensorFlow's CommunicationOptions:
// {"implementation": "ring", "wire_dtype": "bfloat16"}.
absl::Status ReadCommunication(JsonReader& r, StrategyConfig* out) {
  if (const json* c = r.Find("communication"); c != nullptr && c->is_object()) {
    return ReadSection(r, "communication", [&](JsonReader& section) {
      MESHTRAIN_RETURN_IF_ERROR(section.ReadOptional("implementation", &out->communication));
      return section.ReadOptional("wire_dtype", &out->wire_dtype);
    });
  }
  return r.ReadOptional("communication", &out->communication);
}

absl::Status CheckOptimizer(const JobConfig& job) {
  MESHTRAIN_ASSIGN_OR_RETURN(
      const OptimizerConfig scaled,
      ScaleLearningRateForBatch(job.optimizer, job.training.global_batch_size));
  return Optimizer::Create(scaled).status();
}

absl::Status ParseSections(const json& root, absl::string_view source, JobConfig& c) {
  JsonReader top(root, InvalidJsonIn(std::string(source)));
  MESHTRAIN_RETURN_IF_ERROR(top.CheckObject());
  MESHTRAIN_RETURN_IF_ERROR(top.ReadOptional("name", &c.name));
  MESHTRAIN_RETURN_IF_ERROR(ReadSection(top, "data", [&](JsonReader& r) {
    DataConfig& d = c.data;
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("dataset", &d.dataset));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("dir", &d.dir));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("train_files", &d.train_files));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("test_files", &d.test_files));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("input_feature", &d.input_feature));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("label_feature", &d.label_feature));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("label_column", &d.label_column));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("train_inputs", &d.train_inputs));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("train_labels", &d.train_labels));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("test_inputs", &d.test_inputs));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("test_labels", &d.test_labels));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("divisor", &d.divisor));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("shuffle", &d.shuffle));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("drop_remainder", &d.drop_remainder));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("auto_shard", &d.auto_shard));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("cache_dir", &d.cache_dir));
    MESHTRAIN_RETURN_IF_ERROR(
        ReadSection(r, "augment", [&](JsonReader& a) { return ReadAugment(a, &d.augment); }));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("train_examples", &d.train_examples));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("test_examples", &d.test_examples));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("features", &d.features));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("vocabulary", &d.vocabulary));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("hash_buckets", &d.hash_buckets));
    return r.ReadOptional("num_classes", &d.num_classes);
  }));
  MESHTRAIN_RETURN_IF_ERROR(ReadSection(top, "model", [&](JsonReader& r) {
    ModelConfig& m = c.model;
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("type", &m.type));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("hidden_units", &m.hidden_units));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("kernel_initializer", &m.kernel_initializer));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("bias_initializer", &m.bias_initializer));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("embedding_rows", &m.embedding_rows));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("embedding_dim", &m.embedding_dim));
    // sequential: the layers are checked as a whole once the section is read.
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("input_shape", &m.input_shape));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("input_dtype", &m.input_dtype));
    if (const json* layers = r.Find("layers"); layers != nullptr) m.layers = *layers;
    return r.ReadOptional("loss", &m.loss);
  }));
  MESHTRAIN_RETURN_IF_ERROR(ReadSection(top, "optimizer", [&](JsonReader& r) {
    OptimizerConfig& o = c.optimizer;
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("type", &o.type));
    if (const json* lr = r.Find("learning_rate"); lr != nullptr && lr->is_object()) {
      MESHTRAIN_RETURN_IF_ERROR(
          ReadSection(r, "learning_rate", [&](JsonReader& s) { return ReadSchedule(s, &o); }));
    } else {
      MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("learning_rate", &o.learning_rate));
    }
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("momentum", &o.momentum));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("nesterov", &o.nesterov));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("beta1", &o.beta1));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("beta2", &o.beta2));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("epsilon", &o.epsilon));
    if (const json* wd = r.Find("weight_decay"); wd != nullptr && !wd->is_null()) {
      float weight_decay = 0.0f;
      MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("weight_decay", &weight_decay));
      o.weight_decay = weight_decay;
    }
    MESHTRAIN_RETURN_IF_ERROR(
        r.ReadOptional("exclude_from_weight_decay", &o.exclude_from_weight_decay));
    return ReadSection(r, "scale_learning_rate_with_batch", [&](JsonReader& s) {
      return s.Read("reference_batch", &o.reference_batch);
    });
  }));
  MESHTRAIN_RETURN_IF_ERROR(ReadSection(top, "training", [&](JsonReader& r) {
    TrainingConfig& t = c.training;
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("global_batch_size", &t.global_batch_size));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("epochs", &t.epochs));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("max_steps", &t.max_steps));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("seed", &t.seed));
    return r.ReadOptional("target_accuracy", &t.target_accuracy);
  }));
  MESHTRAIN_RETURN_IF_ERROR(ReadSection(top, "strategy", [&](JsonReader& r) {
    StrategyConfig& s = c.strategy;
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("name", &s.name));
    MESHTRAIN_RETURN_IF_ERROR(ReadDevices(r, &s.devices));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("cross_device_ops", &s.cross_device_ops));
    MESHTRAIN_RETURN_IF_ERROR(ReadCommunication(r, &s));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("bytes_per_pack", &s.bytes_per_pack));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("overlap", &s.overlap));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("parameter_device", &s.parameter_device));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("placement", &s.placement));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("fixed_shards", &s.fixed_shards));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("min_shard_bytes", &s.min_shard_bytes));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("max_shard_bytes", &s.max_shard_bytes));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("max_staleness", &s.max_staleness));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("staleness_scaling", &s.staleness_scaling));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("warmup_steps", &s.warmup_steps));
    return r.ReadOptional("sync_replicas", &s.sync_replicas);
  }));
  MESHTRAIN_RETURN_IF_ERROR(ReadSection(top, "elastic", [&](JsonReader& r) {
    ElasticConfig& e = c.elastic;
    e.enabled = true;  // the section turns it on unless it says otherwise
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("enabled", &e.enabled));
    std::string grace;
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("rejoin_grace", &grace));
    if (!grace.empty() && !absl::ParseDuration(grace, &e.rejoin_grace)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "elastic.rejoin_grace: '", grace, "' is not a duration; write e.g. \"3s\" or \"500ms\""));
    }
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("min_workers", &e.min_workers));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("max_workers", &e.max_workers));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("initial_workers", &e.initial_workers));
    MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("keep", &e.keep));
    if (e.keep != "global_batch" && e.keep != "per_replica_batch") {
      return absl::InvalidArgumentError(absl::StrCat(
          "elastic.keep: '", e.keep,
          "' is not one of global_batch (each replica's share grows when workers leave), "
          "per_replica_batch (the global batch and the learning rate shrink with the workers)"));
    }
    return absl::OkStatus();
  }));
  return top.CheckNoUnknownKeys();
}

}  // namespace

absl::StatusOr<JobConfig> ParseJobConfig(absl::string_view text, absl::string_view source) {
  absl::StatusOr<json> root = ParseJson(text);
  if (!root.ok())
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", root.status().message()));
  JobConfig config;
  MESHTRAIN_RETURN_IF_ERROR(ParseSections(*root, source, config));
  if (absl::Status policy = ParseAutoShardPolicy(config.data.auto_shard).status(); !policy.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", policy.message()));
  }
  // A layer list's shapes are inferred now, before any data is read.
  if (config.model.type == "sequential") {
    if (absl::Status layers = CheckSequentialConfig(config.model, LayerRegistry::Global());
        !layers.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": ", layers.message()));
    }
  } else if (!config.model.layers.is_null() || !config.model.input_shape.empty() ||
             !config.model.loss.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ": model.layers, input_shape and loss are for model.type "
                     "\"sequential\", not \"",
                     config.model.type, "\""));
  }
  if (config.training.global_batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": training.global_batch_size must be at least 1 (the reference job uses 256)"));
  }
  // The optimizer's fields are checked now, so a bad schedule fails before any
  // data is read (and again, with flag overrides, when training makes it).
  if (absl::Status optimizer = CheckOptimizer(config); !optimizer.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", optimizer.message()));
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
