#include "training/job_data.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/csv_dataset.h"
#include "runtime/data/fashion_mnist.h"
#include "runtime/data/npy_file.h"
#include "runtime/data/synthetic.h"
#include "runtime/data/tfrecord_dataset.h"

namespace meshtrain {
namespace {

bool IsFileDataset(const DataConfig& config) {
  return config.dataset == "tfrecord" || config.dataset == "csv";
}

// The files of one split of a dataset of files (tfrecord, csv):
// data.train_files or data.test_files expanded, in name order.
absl::StatusOr<std::vector<std::string>> SplitFiles(const DataConfig& config, Split split) {
  const bool train = split == Split::kTrain;
  const std::string& pattern = train ? config.train_files : config.test_files;
  const char* key = train ? "data.train_files" : "data.test_files";
  if (pattern.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("data.dataset ", config.dataset, " needs ", key, ": a glob of its files"));
  }
  absl::StatusOr<std::vector<std::string>> files = ExpandFilePattern(pattern);
  if (!files.ok()) return Annotate(files.status(), key);
  return files;
}

absl::StatusOr<Dataset> LoadFiles(const DataConfig& config, absl::Span<const std::string> files,
                                  Split split) {
  const std::string name = absl::StrCat(config.dataset, "/", SplitName(split));
  if (config.dataset == "csv") {
    CsvSpec spec;
    spec.label_column = config.label_column;
    spec.divisor = static_cast<float>(config.divisor);
    spec.num_classes = config.num_classes;
    return LoadCsvDataset(files, spec, name);
  }
  ExampleSpec spec;
  spec.input_feature = config.input_feature;
  spec.label_feature = config.label_feature;
  spec.divisor = static_cast<float>(config.divisor);
  spec.num_classes = config.num_classes;
  spec.cache_dir = config.cache_dir;
  return LoadTfRecordDataset(files, spec, name);
}

// Both splits of a dataset of files; under the file policy the train split
// holds only this input worker's files.
absl::Status LoadFileDataset(const DataConfig& config, AutoShardPolicy requested, JobData& data) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<std::string> train_files,
                             SplitFiles(config, Split::kTrain));
  TrainSharding& sharding = data.sharding;
  sharding.total_files = static_cast<int64_t>(train_files.size());
  MESHTRAIN_ASSIGN_OR_RETURN(sharding.decision,
                             ChooseShardPolicy(requested, config.dataset, sharding.total_files,
                                               sharding.worker.num_workers));
  if (sharding.decision.policy == AutoShardPolicy::kFile) {
    sharding.files = AssignFiles(train_files, sharding.worker.num_workers, sharding.worker.index);
    train_files = sharding.files;
  }
  MESHTRAIN_ASSIGN_OR_RETURN(data.train, LoadFiles(config, train_files, Split::kTrain));
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<std::string> test_files, SplitFiles(config, Split::kTest));
  MESHTRAIN_ASSIGN_OR_RETURN(data.test, LoadFiles(config, test_files, Split::kTest));
  return absl::OkStatus();
}

// How many file names the start-up line lists before "and N more".
constexpr size_t kFilesNamed = 8;

}  // namespace

std::string TrainSharding::Describe(int64_t train_examples) const {
  std::string line =
      absl::StrCat("data: auto_shard ", AutoShardPolicyName(decision.policy), " (", decision.reason,
                   "): input worker ", worker.index, " of ", worker.num_workers);
  if (decision.policy != AutoShardPolicy::kFile) {
    absl::StrAppend(&line, " loads all ", train_examples,
                    " train examples and reads its part of each global batch");
    return line;
  }
  absl::StrAppend(&line, " reads ", files.size(), " of ", total_files, " files (", train_examples,
                  " examples): ");
  for (size_t i = 0; i < files.size() && i < kFilesNamed; ++i) {
    absl::StrAppend(&line, i > 0 ? ", " : "", std::filesystem::path(files[i]).filename().string());
  }
  if (files.size() > kFilesNamed) {
    absl::StrAppend(&line, " and ", files.size() - kFilesNamed, " more");
  }
  return line;
}

absl::StatusOr<JobData> LoadJobData(const DataConfig& config, uint64_t seed, InputWorker worker) {
  MESHTRAIN_ASSIGN_OR_RETURN(const AutoShardPolicy requested,
                             ParseAutoShardPolicy(config.auto_shard));
  if (!config.cache_dir.empty() && config.dataset != "tfrecord") {
    return absl::InvalidArgumentError(absl::StrCat(
        "data.cache_dir: the ", config.dataset,
        " dataset has no cache (tfrecord has; .npy arrays are mapped already); convert the data "
        "to TFRecord (meshtrain data convert) or remove data.cache_dir"));
  }
  JobData data;
  data.sharding.worker = worker;
  if (config.dataset == "fashion_mnist") {
    const std::string dir = config.dir.empty() ? std::string(kFashionMnistDir) : config.dir;
    MESHTRAIN_ASSIGN_OR_RETURN(data.train, LoadFashionMnist(dir, Split::kTrain));
    MESHTRAIN_ASSIGN_OR_RETURN(data.test, LoadFashionMnist(dir, Split::kTest));
  } else if (IsFileDataset(config)) {
    MESHTRAIN_RETURN_IF_ERROR(LoadFileDataset(config, requested, data));
  } else if (config.dataset == "npy") {
    for (const auto& [key, value] : {std::pair{"train_inputs", &config.train_inputs},
                                     {"train_labels", &config.train_labels},
                                     {"test_inputs", &config.test_inputs},
                                     {"test_labels", &config.test_labels}}) {
      if (value->empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("data.dataset npy needs data.", key,
                         ": the .npy files (or ARCHIVE.npz:NAME members) of each split's inputs "
                         "and labels (x_train.npy, mnist.npz:x_train, ...)"));
      }
    }
    const float divisor = static_cast<float>(config.divisor);
    MESHTRAIN_ASSIGN_OR_RETURN(data.train,
                               LoadNpyDataset(config.train_inputs, config.train_labels, divisor,
                                              config.num_classes, "npy/train"));
    MESHTRAIN_ASSIGN_OR_RETURN(data.test, LoadNpyDataset(config.test_inputs, config.test_labels,
                                                         divisor, config.num_classes, "npy/test"));
  } else if (config.dataset == "synthetic") {
    SyntheticOptions options;
    options.num_examples = config.train_examples + config.test_examples;
    options.num_features = config.features;
    options.num_classes = config.num_classes;
    options.seed = seed;
    Dataset all = MakeSyntheticClassification(options);
    data.train = Dataset{"synthetic/train", all.inputs.Slice(0, config.train_examples),
                         all.labels.Slice(0, config.train_examples), all.num_classes};
    data.test = Dataset{"synthetic/test", all.inputs.Slice(config.train_examples, all.size()),
                        all.labels.Slice(config.train_examples, all.size()), all.num_classes};
  } else if (config.dataset == "synthetic_ctr") {
    SyntheticCtrOptions options;
    options.num_fields = static_cast<int>(config.features);
    options.vocabulary = config.vocabulary;
    options.hash_buckets = config.hash_buckets;
    options.seed = seed;
    options.num_examples = config.train_examples;
    MESHTRAIN_RETURN_IF_ERROR(ValidateSyntheticCtrOptions(options));
    data.train = MakeSyntheticCtr(options);
    options.num_examples = config.test_examples;
    options.split = Split::kTest;
    data.test = MakeSyntheticCtr(options);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("data.dataset '", config.dataset,
                     "' is unknown: use fashion_mnist, tfrecord, csv, npy, "
                     "synthetic or synthetic_ctr"));
  }
  if (!IsFileDataset(config)) {
    // Arrays and generated data are one piece each: every worker holds them whole.
    MESHTRAIN_ASSIGN_OR_RETURN(
        data.sharding.decision,
        ChooseShardPolicy(requested, config.dataset, /*num_files=*/-1, worker.num_workers));
  }
  data.shape.input_features = data.train.inputs.shape().row_elements();
  data.shape.num_classes = data.train.num_classes;
  // What a batch holds: uint8 pixels arrive as float32 (dataset.h).
  data.shape.input_dtype =
      data.train.inputs.dtype() == DType::kInt64 ? DType::kInt64 : DType::kFloat32;
  return data;
}

}  // namespace meshtrain
