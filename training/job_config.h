// JobConfig: one training job as a JSON file (configs/*.json): data, model,
// optimizer, training schedule and strategy. The same file runs under every
// strategy; flags on the command line override single fields. Parsing is strict:
// an unknown key is an error naming its path and the keys allowed there, since a
// typo ("learning_rat") would otherwise silently train the wrong job.
#ifndef MESHTRAIN_TRAINING_JOB_CONFIG_H_
#define MESHTRAIN_TRAINING_JOB_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/data/image_augment.h"
#include "runtime/model/model.h"
#include "runtime/optim/optimizer.h"
#include "strategies/strategy_config.h"

namespace meshtrain {

struct DataConfig {
  std::string dataset =
      "fashion_mnist";  // fashion_mnist | tfrecord | csv | npy | synthetic | synthetic_ctr
  std::string dir;      // fashion_mnist: IDX files ("" = the Debian path)
  // tfrecord: globs of files of tf.train.Example (GZIP or not), the feature
  // holding the input (bytes of uint8 values, or a float or int64 list) and
  // the one holding the class label (int64), and what inputs are divided by
  // (255 for pixel bytes); num_classes below says how many classes.
  // csv: the same globs, of CSV files with a header; label_column names the
  // class column, every other column is an input (divided by `divisor`).
  std::string train_files;
  std::string test_files;
  std::string input_feature = "image";
  std::string label_feature = "label";
  std::string label_column = "label";
  // npy: the inputs and labels arrays of each split: .npy files or members of a
  // .npz as "ARCHIVE.npz:NAME" (x_train.npy, mnist.npz:x_train).
  std::string train_inputs;
  std::string train_labels;
  std::string test_inputs;
  std::string test_labels;
  double divisor = 1.0;
  bool shuffle = true;
  bool drop_remainder = false;
  // How input workers split the train set (runtime/data/file_sharding.h):
  // auto | file | data.
  std::string auto_shard = "auto";
  // tfrecord: "" decodes the files into memory; a directory decodes them once
  // into a cache there and trains from the mapped arrays
  // (runtime/data/dataset_cache.h): for sets larger than memory.
  std::string cache_dir;
  // Random flips and crops of the training images (runtime/data/image_augment.h).
  AugmentOptions augment;
  // synthetic datasets
  int64_t train_examples = 6000;
  int64_t test_examples = 1000;
  int64_t features = 32;           // synthetic: input features; synthetic_ctr: categorical fields
  int num_classes = 4;             // synthetic, tfrecord, csv and npy
  int64_t vocabulary = 10000;      // synthetic_ctr: values per field
  int64_t hash_buckets = 1 << 20;  // synthetic_ctr: ids are hashed into [0, hash_buckets)
};

struct TrainingConfig {
  int64_t global_batch_size = 256;
  int64_t epochs = 10;
  int64_t max_steps = 0;  // 0: no limit beyond epochs
  uint64_t seed = 1234;
  double target_accuracy = 0.0;  // 0: none; otherwise time to it is reported
};

// Elastic membership (docs/fault_tolerance.md 5.9): multi_worker_mirrored
// goes on without a worker that does not come back within the grace, from the
// state the survivors hold, and grows back when it returns. By default the
// global batch is kept (each replica's share grows; a batch that no longer
// splits evenly is split unevenly, every replica's gradient weighted by its
// rows).
struct ElasticConfig {
  bool enabled = false;
  absl::Duration rejoin_grace = absl::Seconds(3);
  int64_t min_workers = 1;
  int64_t max_workers = 0;  // 0: every training worker of the cluster
  // > 0: the cluster starts once the first this many training workers
  // (TF_CONFIG order: chief, then workers) are in; the others join later
  // (`meshtrain launch --join`). 0: it starts with every one.
  int64_t initial_workers = 0;
  // On fewer workers: "global_batch" (kept; each replica's share grows) or
  // "per_replica_batch" (kept; the global batch and the learning rate scale
  // with the workers, the linear scaling rule).
  std::string keep = "global_batch";
};

struct JobConfig {
  std::string name;
  DataConfig data;
  ModelConfig model;
  OptimizerConfig optimizer;
  TrainingConfig training;
  StrategyConfig strategy;
  ElasticConfig elastic;
};

// `source` names the file in errors.
absl::StatusOr<JobConfig> ParseJobConfig(absl::string_view json, absl::string_view source);
absl::StatusOr<JobConfig> LoadJobConfig(const std::string& path);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_JOB_CONFIG_H_
