// Development benchmark (not a test): how many samples/s the input pipeline
// alone delivers on Fashion-MNIST, beside what the reference job consumes
// (issue 19's goal: >= 5x with 1 thread). Each configuration walks the
// training set in shuffled global batches (one shard, as one process of the
// reference job reads it) for --seconds and prints samples/s and the mean
// time per batch: the uint8 store converted per batch (what training does),
// and the same rows stored as float32 up front (the old layout), for the
// cost of the conversion.
//
//   input_pipeline_bench [--dir /usr/share/datasets/fashion-mnist] [--batch 256]
//                        [--threads 1,2] [--prefetch 2] [--seconds 2]
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "runtime/data/dataset.h"
#include "runtime/data/fashion_mnist.h"
#include "runtime/data/input_pipeline.h"

namespace meshtrain {
namespace {

struct Args {
  std::string dir = std::string(kFashionMnistDir);
  int64_t batch = 256;
  std::vector<int> threads = {1, 2};
  int prefetch = 2;
  double seconds = 2;
};

bool Parse(int argc, char** argv, Args* args) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--dir") {
      args->dir = value;
    } else if (flag == "--batch") {
      if (!absl::SimpleAtoi(value, &args->batch) || args->batch < 1) return false;
    } else if (flag == "--threads") {
      args->threads.clear();
      for (absl::string_view t : absl::StrSplit(value, ',')) {
        int n = 0;
        if (!absl::SimpleAtoi(t, &n) || n < 1) return false;
        args->threads.push_back(n);
      }
    } else if (flag == "--prefetch") {
      if (!absl::SimpleAtoi(value, &args->prefetch) || args->prefetch < 0) return false;
    } else if (flag == "--seconds") {
      if (!absl::SimpleAtod(value, &args->seconds) || !(args->seconds > 0)) return false;
    } else {
      return false;
    }
  }
  return true;
}

// The old layout: every input converted to float32 when loaded.
Dataset AsFloat32(const Dataset& bytes) {
  Dataset floats = bytes;
  floats.inputs = DatasetRows(bytes, 0, bytes.size()).inputs;
  floats.input_divisor = 1.0f;
  return floats;
}

int Run(const Dataset& dataset, const char* layout, const Args& args, int threads) {
  const BatchScheduleOptions options{
      .num_examples = dataset.size(), .global_batch_size = args.batch, .seed = 1234};
  absl::StatusOr<std::unique_ptr<InputPipeline>> pipeline = InputPipeline::Create(
      &dataset, options, {}, {.prefetch_depth = args.prefetch, .num_threads = threads});
  if (!pipeline.ok()) {
    std::fprintf(stderr, "input_pipeline_bench: %s\n", pipeline.status().ToString().c_str());
    return 1;
  }
  (*pipeline)->Start();
  const absl::Time begin = absl::Now();
  const absl::Time end = begin + absl::Seconds(args.seconds);
  int64_t samples = 0;
  int64_t batches = 0;
  while (absl::Now() < end) {
    auto next = (*pipeline)->Next(absl::Now() + absl::Seconds(30));
    if (!next.ok()) {
      std::fprintf(stderr, "input_pipeline_bench: %s\n", next.status().ToString().c_str());
      return 1;
    }
    samples += next->first.size();
    ++batches;
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  (*pipeline)->Stop();
  std::printf("%-8s %7d %8d %14.0f %12.1f\n", layout, threads, args.prefetch, samples / seconds,
              1e6 * seconds / static_cast<double>(batches));
  return 0;
}

int Main(int argc, char** argv) {
  Args args;
  if (!Parse(argc, argv, &args)) {
    std::fprintf(stderr,
                 "usage: input_pipeline_bench [--dir D] [--batch N] [--threads 1,2] "
                 "[--prefetch N] [--seconds S]\n");
    return 2;
  }
  absl::StatusOr<Dataset> train = LoadFashionMnist(args.dir, Split::kTrain);
  if (!train.ok()) {
    std::fprintf(stderr, "input_pipeline_bench: %s\n", train.status().ToString().c_str());
    return 1;
  }
  const Dataset floats = AsFloat32(*train);
  std::printf("Fashion-MNIST train (%lld examples), batch %lld\n",
              static_cast<long long>(train->size()), static_cast<long long>(args.batch));
  std::printf("%-8s %7s %8s %14s %12s\n", "layout", "threads", "prefetch", "samples/s", "us/batch");
  for (int threads : args.threads) {
    if (Run(*train, "uint8", args, threads) != 0) return 1;
    if (Run(floats, "float32", args, threads) != 0) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace meshtrain

int main(int argc, char** argv) { return meshtrain::Main(argc, argv); }
