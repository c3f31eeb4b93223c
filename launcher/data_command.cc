#include "launcher/data_command.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "launcher/flag_set.h"
#include "proto/example.pb.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/tfrecord.h"
#include "runtime/data/tfrecord_conversion.h"

namespace meshtrain {
namespace {

constexpr char kUsage[] =
    "usage: meshtrain data <convert|inspect> [flags]\n"
    "  convert  --from idx|csv|npy ... --to tfrecord --out DIR [--shards N] [--gzip]\n"
    "           IDX, CSV or NumPy (.npy/.npz) data to TFRecord shards of tf.train.Example\n"
    "  inspect  FILE [--records N]: the features of a TFRecord file's first records\n";

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "meshtrain data: %s\n", std::string(status.message()).c_str());
  return 1;
}

int Convert(const std::vector<std::string>& args) {
  ConversionSource source;
  std::string to = "tfrecord";
  TfRecordOutput output;
  int64_t shards = output.shards;
  int64_t num_classes = 0;
  FlagSet flags(
      "data convert",
      "meshtrain data convert --from idx|csv|npy [source flags] --to tfrecord --out DIR "
      "[--shards N] [--gzip]",
      "Writes a dataset's train and test splits as TFRecord files of tf.train.Example: the\n"
      "inputs as the feature \"image\" (one bytes value for uint8 data: IDX pixels, u1 arrays,\n"
      "CSV whose inputs are all integers in 0..255; else a float list of the raw values), the\n"
      "class as the int64 feature \"label\", each shard a contiguous run of examples. Train on\n"
      "them with data.dataset \"tfrecord\" and the source's divisor (docs/data.md).");
  flags.AddString("from", &source.format, "the input format: idx, csv or npy");
  flags.AddString("to", &to, "the output format: tfrecord");
  flags.AddString("dir", &source.dir, "idx: the folder of the IDX files");
  flags.AddString("train-files", &source.train_files, "csv: the train files (a glob)");
  flags.AddString("test-files", &source.test_files, "csv: the test files (a glob; optional)");
  flags.AddString("label-column", &source.label_column, "csv: the label column's name");
  flags.AddString("train-inputs", &source.train_inputs,
                  "npy: the train inputs, a .npy file or ARCHIVE.npz:NAME");
  flags.AddString("train-labels", &source.train_labels, "npy: the train labels");
  flags.AddString("test-inputs", &source.test_inputs, "npy: the test inputs (optional)");
  flags.AddString("test-labels", &source.test_labels, "npy: the test labels (optional)");
  flags.AddInt("num-classes", &num_classes,
               "csv, npy: labels must lie in [0, N) (0: any non-negative label)");
  flags.AddString("out", &output.dir, "the folder to write the shards into (made if absent)");
  flags.AddInt("shards", &shards, "files per split");
  flags.AddBool("gzip", &output.gzip,
                "GZIP-compress the files (TFRecordOptions(compression_type=GZIP))");
  if (std::optional<int> exit = ParseCommandFlags(flags, args)) return *exit;
  if (to != "tfrecord") {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--to ", QuoteForMessage(to), ": the converter writes tfrecord")));
  }
  if (shards < 1 || shards > 99999) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("--shards ", shards, ": 1 to 99999")));
  }
  if (num_classes < 0 || num_classes > std::numeric_limits<int32_t>::max()) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--num-classes ", num_classes, ": 0 (any) or a class count")));
  }
  output.shards = static_cast<int>(shards);
  source.num_classes = static_cast<int>(num_classes);
  absl::StatusOr<std::vector<ConvertedSplit>> converted = ConvertToTfRecord(source, output);
  if (!converted.ok()) return Fail(converted.status());
  for (const ConvertedSplit& split : *converted) {
    std::printf("%s: %lld examples into %zu shards, input as %s (%s ... %s)\n",
                std::string(SplitName(split.split)).c_str(), static_cast<long long>(split.examples),
                split.paths.size(), split.bytes_input ? "bytes" : "float list",
                split.paths.front().c_str(), split.paths.back().c_str());
  }
  return 0;
}

// A feature's kind, size and first values, on one line.
std::string DescribeFeature(const example::Feature& f) {
  switch (f.kind_case()) {
    case example::Feature::kBytesList: {
      std::string text = absl::StrCat("bytes x", f.bytes_list().value_size());
      if (f.bytes_list().value_size() > 0) {
        absl::StrAppend(&text, " (first: ", f.bytes_list().value(0).size(), " bytes)");
      }
      return text;
    }
    case example::Feature::kFloatList: {
      const auto& v = f.float_list().value();
      return absl::StrCat("float x", v.size(), " [",
                          absl::StrJoin(v.begin(), v.begin() + std::min(v.size(), 8), ", "),
                          v.size() > 8 ? ", ..." : "", "]");
    }
    case example::Feature::kInt64List: {
      const auto& v = f.int64_list().value();
      return absl::StrCat("int64 x", v.size(), " [",
                          absl::StrJoin(v.begin(), v.begin() + std::min(v.size(), 8), ", "),
                          v.size() > 8 ? ", ..." : "", "]");
    }
    default:
      return "empty";
  }
}

int Inspect(const std::vector<std::string>& args) {
  int64_t records = 3;
  FlagSet flags("data inspect", "meshtrain data inspect FILE [--records N]",
                "Prints the features of the first records of a TFRecord file of tf.train.Example\n"
                "(GZIP or not), checking every record's CRCs, and how many records it holds.");
  flags.AddInt("records", &records, "records to print");
  std::vector<std::string> rest;
  std::string file;
  for (const std::string& arg : args) {
    if (file.empty() && !arg.empty() && arg[0] != '-') {
      file = arg;
    } else {
      rest.push_back(arg);
    }
  }
  if (std::optional<int> exit = ParseCommandFlags(flags, rest)) return *exit;
  if (file.empty()) return Fail(absl::InvalidArgumentError("name the TFRecord file to inspect"));
  absl::StatusOr<std::unique_ptr<TfRecordFileReader>> reader = TfRecordFileReader::Open(file);
  if (!reader.ok()) return Fail(reader.status());
  std::string record;
  example::Example example;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&record);
    if (!more.ok()) return Fail(more.status());
    if (!*more) break;
    const int64_t index = (*reader)->records_read() - 1;
    if (index >= records) continue;
    if (!example.ParseFromString(record)) {
      std::printf("record %lld: %zu bytes, not a tf.train.Example\n", static_cast<long long>(index),
                  record.size());
      continue;
    }
    std::printf("record %lld:\n", static_cast<long long>(index));
    std::map<std::string, std::string> sorted;
    for (const auto& [name, feature] : example.features().feature()) {
      sorted[name] = DescribeFeature(feature);
    }
    for (const auto& [name, text] : sorted) {
      std::printf("  %s: %s\n", QuoteForMessage(name).c_str(), text.c_str());
    }
  }
  std::printf("%s: %lld records\n", file.c_str(),
              static_cast<long long>((*reader)->records_read()));
  return 0;
}

}  // namespace

int RunDataCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "convert") return Convert(rest);
  if (args[0] == "inspect") return Inspect(rest);
  std::fprintf(stderr, "meshtrain data: unknown tool %s\n%s", QuoteForMessage(args[0]).c_str(),
               kUsage);
  return 2;
}

}  // namespace meshtrain
