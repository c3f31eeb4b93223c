#include "launcher/data_command.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "launcher/flag_set.h"
#include "proto/example.pb.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/idx_file.h"
#include "runtime/data/tfrecord.h"
#include "runtime/data/tfrecord_dataset.h"

namespace meshtrain {
namespace {

constexpr char kUsage[] =
    "usage: meshtrain data <convert|inspect> [flags]\n"
    "  convert  --from idx --dir DIR --out DIR [--shards N] [--gzip]\n"
    "           MNIST-like IDX files to TFRecord shards of tf.train.Example\n"
    "  inspect  FILE [--records N]: the features of a TFRecord file's first records\n";

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "meshtrain data: %s\n", std::string(status.message()).c_str());
  return 1;
}

// One split's images and labels into `shards` files "OUT/<split>-i-of-N".
absl::Status ConvertIdxSplit(const std::string& dir, const std::string& prefix,
                             const std::string& split, const std::string& out, int shards,
                             bool gzip) {
  MESHTRAIN_ASSIGN_OR_RETURN(const std::string images_path,
                             FindIdxFile(dir, prefix + "-images-idx3-ubyte"));
  MESHTRAIN_ASSIGN_OR_RETURN(const std::string labels_path,
                             FindIdxFile(dir, prefix + "-labels-idx1-ubyte"));
  MESHTRAIN_ASSIGN_OR_RETURN(IdxArray images, ReadIdxFile(images_path));
  MESHTRAIN_ASSIGN_OR_RETURN(IdxArray labels, ReadIdxFile(labels_path));
  if (images.dims.empty() || labels.dims.size() != 1 || images.dims[0] != labels.dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat(
        images_path, " [", absl::StrJoin(images.dims, ", "), "] and ", labels_path, " [",
        absl::StrJoin(labels.dims, ", "), "] do not hold one label per example"));
  }
  const int64_t n = images.dims[0];
  std::vector<int32_t> label_values(labels.values.get(), labels.values.get() + n);
  ExampleSpec spec;
  MESHTRAIN_ASSIGN_OR_RETURN(
      std::vector<std::string> paths,
      WriteTfRecordShards(images.span(), label_values, n == 0 ? 1 : images.num_values / n, spec,
                          absl::StrCat(out, "/", split), shards, gzip));
  std::printf("%s: %lld examples into %zu shards (%s ... %s)\n", split.c_str(),
              static_cast<long long>(n), paths.size(), paths.front().c_str(), paths.back().c_str());
  return absl::OkStatus();
}

int Convert(const std::vector<std::string>& args) {
  std::string from;
  std::string dir;
  std::string out;
  int64_t shards = 8;
  bool gzip = false;
  FlagSet flags(
      "data convert", "meshtrain data convert --from idx --dir DIR --out DIR [--shards N] [--gzip]",
      "Writes the train and test splits of MNIST-like IDX files (train-images-idx3-ubyte,\n"
      "train-labels-idx1-ubyte, t10k-...; gzipped or not) as TFRecord files of\n"
      "tf.train.Example: the pixels as the bytes feature \"image\", the class as the int64\n"
      "feature \"label\", each shard a contiguous run of examples. Train on them with\n"
      "data.dataset \"tfrecord\" (docs/data.md).");
  flags.AddString("from", &from, "the input format: idx");
  flags.AddString("dir", &dir, "the folder of the IDX files");
  flags.AddString("out", &out, "the folder to write the shards into (made if absent)");
  flags.AddInt("shards", &shards, "files per split");
  flags.AddBool("gzip", &gzip, "GZIP-compress the files (TFRecordOptions(compression_type=GZIP))");
  if (std::optional<int> exit = ParseCommandFlags(flags, args)) return *exit;
  if (from != "idx") {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--from ", QuoteForMessage(from), ": the converter reads idx (MNIST-like IDX files)")));
  }
  if (dir.empty() || out.empty()) {
    return Fail(absl::InvalidArgumentError("--dir (the IDX files) and --out are required"));
  }
  if (shards < 1 || shards > 99999) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("--shards ", shards, ": 1 to 99999")));
  }
  ::mkdir(out.c_str(), 0755);
  for (const auto& [prefix, split] : {std::pair{"train", "train"}, std::pair{"t10k", "test"}}) {
    absl::Status converted =
        ConvertIdxSplit(dir, prefix, split, out, static_cast<int>(shards), gzip);
    if (!converted.ok()) return Fail(converted);
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
