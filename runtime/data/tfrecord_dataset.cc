#include "runtime/data/tfrecord_dataset.h"

#include <glob.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "proto/example.pb.h"
#include "runtime/base/logging.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/dataset_cache.h"
#include "runtime/data/tfrecord.h"

namespace meshtrain {
namespace {

using example::Example;
using example::Feature;

// The feature `name` of `example`, or an error naming the file and record.
absl::StatusOr<const Feature*> FindFeature(const Example& example, const std::string& name,
                                           const std::string& where) {
  const auto& features = example.features().feature();
  auto it = features.find(name);
  if (it == features.end()) {
    std::string held;
    for (const auto& [key, value] : features) {
      if (held.size() > 80) break;
      absl::StrAppend(&held, held.empty() ? "" : ", ", QuoteForMessage(key));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": no feature ", QuoteForMessage(name), " (it has: ", held.empty() ? "none" : held,
        "); name the right one in data.input_feature / data.label_feature"));
  }
  return &it->second;
}

// How many input values `feature` holds (a bytes feature: the bytes of its
// one string; -1 for several strings).
int64_t ValueCount(const Feature& feature) {
  switch (feature.kind_case()) {
    case Feature::kBytesList:
      return feature.bytes_list().value_size() == 1
                 ? static_cast<int64_t>(feature.bytes_list().value(0).size())
                 : -1;
    case Feature::kFloatList:
      return feature.float_list().value_size();
    case Feature::kInt64List:
      return feature.int64_list().value_size();
    default:
      return 0;
  }
}

// Writes the input_size values of one example to row `row` of `inputs`: the
// bytes as they are into uint8 inputs (a batch divides them), value / divisor
// into float32 ones. The first record decided the dtype; a record whose input
// is of another kind is an error naming it.
absl::Status DecodeInput(const Feature& feature, const ExampleSpec& spec, const std::string& where,
                         Tensor& inputs, int64_t row) {
  const int64_t count = ValueCount(feature);
  if (count != spec.input_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": feature ", QuoteForMessage(spec.input_feature), " holds ",
                     count < 0 ? "several byte strings" : absl::StrCat(count, " values"),
                     "; the first record holds ", spec.input_size));
  }
  const bool bytes = feature.kind_case() == Feature::kBytesList;
  if (bytes != (inputs.dtype() == DType::kUInt8)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": feature ", QuoteForMessage(spec.input_feature), " is ",
        bytes ? "a bytes" : "a number list", " feature, but in the first record it is ",
        bytes ? "a number list" : "a bytes feature", "; every record must hold the same kind"));
  }
  if (bytes) {
    const std::string& values = feature.bytes_list().value(0);
    std::memcpy(inputs.data<uint8_t>() + row * spec.input_size, values.data(), values.size());
    return absl::OkStatus();
  }
  float* out = inputs.data<float>() + row * spec.input_size;
  if (feature.kind_case() == Feature::kFloatList) {
    for (float v : feature.float_list().value()) *out++ = v / spec.divisor;
  } else {
    for (int64_t v : feature.int64_list().value()) *out++ = static_cast<float>(v) / spec.divisor;
  }
  return absl::OkStatus();
}

// Reads `files` record by record: `fn(example, where)` for each parsed one.
absl::Status ForEachExample(
    absl::Span<const std::string> files,
    const std::function<absl::Status(const Example&, const std::string&)>& fn) {
  std::string record;
  Example example;
  for (const std::string& file : files) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<TfRecordFileReader> reader,
                               TfRecordFileReader::Open(file));
    while (true) {
      MESHTRAIN_ASSIGN_OR_RETURN(bool more, reader->Next(&record));
      if (!more) break;
      const std::string where = absl::StrCat(file, ": record ", reader->records_read() - 1);
      if (!example.ParseFromString(record)) {
        return absl::DataLossError(
            absl::StrCat(where, ": not a tf.train.Example (the protobuf does not parse)"));
      }
      MESHTRAIN_RETURN_IF_ERROR(fn(example, where));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int32_t> ReadLabel(const Feature& feature, const ExampleSpec& spec,
                                  const std::string& where) {
  if (feature.kind_case() != Feature::kInt64List || feature.int64_list().value_size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": feature ", QuoteForMessage(spec.label_feature),
                     " is not an int64 list of one value (the class label)"));
  }
  const int64_t label = feature.int64_list().value(0);
  if (label < 0 || label >= spec.num_classes) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": label ", label,
                                                   " is not a class in [0, ", spec.num_classes,
                                                   "); set data.num_classes"));
  }
  return static_cast<int32_t>(label);
}

// What pass 1 learns: the record count and the input's size and kind.
struct Layout {
  ExampleSpec spec;  // input_size filled in
  int64_t n = 0;
  bool bytes_input = false;
};

absl::StatusOr<Layout> CountRecords(absl::Span<const std::string> files, const ExampleSpec& spec,
                                    const std::string& name) {
  Layout layout{spec};
  MESHTRAIN_RETURN_IF_ERROR(
      ForEachExample(files, [&](const Example& example, const std::string& where) -> absl::Status {
        if (layout.spec.input_size == 0) {
          MESHTRAIN_ASSIGN_OR_RETURN(const Feature* input,
                                     FindFeature(example, layout.spec.input_feature, where));
          layout.spec.input_size = ValueCount(*input);
          layout.bytes_input = input->kind_case() == Feature::kBytesList;
          if (layout.spec.input_size <= 0) {
            return absl::InvalidArgumentError(absl::StrCat(
                where, ": feature ", QuoteForMessage(layout.spec.input_feature),
                " holds no values (or several byte strings); the input is one list of values"));
          }
        }
        ++layout.n;
        return absl::OkStatus();
      }));
  if (layout.n == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": the ", files.size(), " file(s) hold no record"));
  }
  return layout;
}

// Pass 2: decodes each record's input into `row` (one row of the input
// dtype) and hands it on with its index and label.
absl::Status DecodeRecords(absl::Span<const std::string> files, const Layout& layout, Tensor& row,
                           const std::function<absl::Status(int64_t, int32_t)>& take) {
  int64_t index = 0;
  MESHTRAIN_RETURN_IF_ERROR(
      ForEachExample(files, [&](const Example& example, const std::string& where) -> absl::Status {
        if (index == layout.n) {
          return absl::DataLossError(absl::StrCat(where, ": the files changed while being read"));
        }
        MESHTRAIN_ASSIGN_OR_RETURN(const Feature* input,
                                   FindFeature(example, layout.spec.input_feature, where));
        MESHTRAIN_ASSIGN_OR_RETURN(const Feature* label,
                                   FindFeature(example, layout.spec.label_feature, where));
        MESHTRAIN_RETURN_IF_ERROR(DecodeInput(*input, layout.spec, where, row, 0));
        MESHTRAIN_ASSIGN_OR_RETURN(const int32_t value, ReadLabel(*label, layout.spec, where));
        MESHTRAIN_RETURN_IF_ERROR(take(index, value));
        ++index;
        return absl::OkStatus();
      }));
  if (index != layout.n) {
    return absl::DataLossError(
        absl::StrCat(files.empty() ? "" : files.front(), ": the files changed while being read"));
  }
  return absl::OkStatus();
}

// The settings that change what a cache holds (DatasetCache's spec).
std::string DescribeSpec(const ExampleSpec& spec) {
  return absl::StrCat("tfrecord input_feature=", spec.input_feature,
                      " label_feature=", spec.label_feature, " input_size=", spec.input_size,
                      " divisor=", spec.divisor, " num_classes=", spec.num_classes);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ExpandFilePattern(const std::string& pattern) {
  glob_t matches{};
  const int rc = ::glob(pattern.c_str(), GLOB_ERR, nullptr, &matches);
  std::vector<std::string> files;
  if (rc == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) files.emplace_back(matches.gl_pathv[i]);
  }
  ::globfree(&matches);
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat("no file matches ", QuoteForMessage(pattern),
                                            "; check the path (a glob such as "
                                            "/data/train-*.tfrecord)"));
  }
  std::sort(files.begin(), files.end());
  return files;
}

absl::StatusOr<Dataset> LoadTfRecordDataset(absl::Span<const std::string> files,
                                            const ExampleSpec& spec, const std::string& name) {
  MESHTRAIN_RETURN_IF_ERROR(CheckClassesAndDivisor(name, spec.num_classes, spec.divisor));
  std::optional<DatasetCache> cache;
  if (!spec.cache_dir.empty()) {
    MESHTRAIN_ASSIGN_OR_RETURN(cache,
                               DatasetCache::Open(spec.cache_dir, name, files, DescribeSpec(spec)));
    if (cache->complete()) {
      absl::StatusOr<Dataset> cached = cache->Load(spec.divisor, spec.num_classes);
      if (cached.ok()) {
        MESHTRAIN_LOG(INFO) << "data: " << name << " trains from its cache "
                            << cache->inputs_path();
        return cached;
      }
      // A damaged cache (a truncated or overwritten array) is rebuilt from
      // the files, which are the truth.
      MESHTRAIN_LOG(WARNING) << "data: " << name << ": the cache cannot be read ("
                             << cached.status().message() << "); decoding the files again";
    }
  }
  // Pass 1 counts the records (and takes the input size and kind from the
  // first), so that pass 2 decodes straight into arrays of the final size:
  // the dataset is held once, not twice (or, with a cache, not at all).
  MESHTRAIN_ASSIGN_OR_RETURN(const Layout layout, CountRecords(files, spec, name));
  const DType input_dtype = layout.bytes_input ? DType::kUInt8 : DType::kFloat32;
  if (cache.has_value()) {
    const absl::Time begin = absl::Now();
    MESHTRAIN_RETURN_IF_ERROR(
        cache->Build(input_dtype, layout.n, layout.spec.input_size, [&](CacheRowWriter& writer) {
          Tensor row(input_dtype, Shape{1, layout.spec.input_size});
          return DecodeRecords(files, layout, row, [&](int64_t, int32_t label) {
            return writer.Append(row.raw_data(), label);
          });
        }));
    MESHTRAIN_LOG(INFO) << "data: " << name << ": " << layout.n << " records of " << files.size()
                        << " file(s) decoded into the cache " << cache->inputs_path() << " in "
                        << absl::FormatDuration(
                               absl::Trunc(absl::Now() - begin, absl::Milliseconds(1)));
    return cache->Load(spec.divisor, spec.num_classes);
  }
  Dataset dataset;
  dataset.name = name;
  dataset.num_classes = spec.num_classes;
  // Pixel bytes stay bytes (a quarter of float32's memory); a batch divides them.
  dataset.inputs = Tensor(input_dtype, Shape{layout.n, layout.spec.input_size});
  dataset.input_divisor = spec.divisor;
  dataset.labels = Tensor(DType::kInt32, Shape{layout.n});
  int32_t* labels = dataset.labels.data<int32_t>();
  const int64_t width = layout.spec.input_size;
  const size_t row_bytes = static_cast<size_t>(width) * DTypeSize(input_dtype);
  Tensor row(input_dtype, Shape{1, width});
  MESHTRAIN_RETURN_IF_ERROR(
      DecodeRecords(files, layout, row, [&](int64_t index, int32_t label) -> absl::Status {
        std::memcpy(static_cast<char*>(dataset.inputs.raw_data()) + index * row_bytes,
                    row.raw_data(), row_bytes);
        labels[index] = label;
        return absl::OkStatus();
      }));
  return dataset;
}

absl::StatusOr<std::vector<std::string>> WriteTfRecordShards(const Dataset& dataset,
                                                             const ExampleSpec& spec,
                                                             const std::string& prefix, int shards,
                                                             bool gzip) {
  const Tensor& inputs = dataset.inputs;
  const int64_t n = dataset.size();
  const int64_t width = inputs.shape().row_elements();
  const bool bytes = inputs.dtype() == DType::kUInt8;
  if (shards < 1 || shards > 99999 || n < 1 || width < 1 || inputs.rows() != n ||
      dataset.labels.dtype() != DType::kInt32 || (!bytes && inputs.dtype() != DType::kFloat32)) {
    return absl::InvalidArgumentError(absl::StrCat(
        dataset.name, ": ", shards, " TFRecord shards of ", inputs.DebugString(), " and labels ",
        dataset.labels.DebugString(), ": need 1 to 99999 shards, n > 0 rows of uint8 or float32 ",
        "inputs and n int32 class labels"));
  }
  std::vector<std::string> paths;
  std::vector<std::unique_ptr<TfRecordFileWriter>> writers;
  for (int s = 0; s < shards; ++s) {
    paths.push_back(
        absl::StrFormat("%s-%05d-of-%05d.tfrecord%s", prefix, s, shards, gzip ? ".gz" : ""));
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<TfRecordFileWriter> writer,
                               TfRecordFileWriter::Open(paths.back(), gzip));
    writers.push_back(std::move(writer));
  }
  Example example;
  auto& features = *example.mutable_features()->mutable_feature();
  Feature& input = features[spec.input_feature];
  Feature& label = features[spec.label_feature];
  const int32_t* labels = dataset.labels.data<int32_t>();
  std::string record;
  for (int64_t e = 0; e < n; ++e) {
    if (bytes) {
      input.mutable_bytes_list()->Clear();
      input.mutable_bytes_list()->add_value(static_cast<const char*>(inputs.raw_data()) + e * width,
                                            width);
    } else {
      const float* row = inputs.data<float>() + e * width;
      input.mutable_float_list()->mutable_value()->Assign(row, row + width);
    }
    label.mutable_int64_list()->Clear();
    label.mutable_int64_list()->add_value(labels[e]);
    record.clear();
    example.SerializeToString(&record);
    MESHTRAIN_RETURN_IF_ERROR(writers[e * shards / n]->Write(record));
  }
  for (auto& writer : writers) MESHTRAIN_RETURN_IF_ERROR(writer->Close());
  return paths;
}

}  // namespace meshtrain
