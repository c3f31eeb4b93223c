// Development benchmark (not a test): how fast the checkpoint commit protocol
// writes, against `dd ... conv=fsync` on the same disk. Each repetition writes
// one checkpoint of --mb MB of float32 tensors (a value and a momentum slot per
// variable, like the reference model's, in variables of --variable-mb MB) with
// WriteCheckpoint (part file, fsync, rename, manifest, pointer, fsync of the
// directories) and prints the time and MB/s; then the same bytes through one
// plain write + fsync (what dd measures), for the ratio.
//
//   checkpoint_bench --dir /tmp/ckpt-bench [--mb 256] [--variable-mb 4] [--repeat 3]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/checkpoint/checkpoint_commit.h"
#include "runtime/checkpoint/model_dir.h"

namespace meshtrain {
namespace {

struct Args {
  std::string dir = "/tmp/meshtrain-checkpoint-bench";
  double mb = 256;
  double variable_mb = 4;
  int repeat = 3;
};

bool Parse(int argc, char** argv, Args* args) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--dir") {
      args->dir = value;
    } else if (flag == "--mb") {
      if (!absl::SimpleAtod(value, &args->mb)) return false;
    } else if (flag == "--variable-mb") {
      if (!absl::SimpleAtod(value, &args->variable_mb)) return false;
    } else if (flag == "--repeat") {
      if (!absl::SimpleAtoi(value, &args->repeat)) return false;
    } else {
      return false;
    }
  }
  return args->mb > 0 && args->variable_mb > 0 && args->repeat > 0;
}

CheckpointSnapshot MakeSnapshot(const Args& args) {
  CheckpointSnapshot s;
  s.slot_names = {"momentum"};
  // Half the bytes in values, half in the slot.
  const int64_t cols = 256;
  const int64_t rows =
      std::max<int64_t>(1, static_cast<int64_t>(args.variable_mb * 1e6 / 2 / 4 / cols));
  const int variables = std::max(1, static_cast<int>(args.mb / args.variable_mb));
  for (int v = 0; v < variables; ++v) {
    Tensor value(DType::kFloat32, Shape{rows, cols});
    Tensor slot(DType::kFloat32, Shape{rows, cols});
    for (int64_t i = 0; i < value.num_elements(); ++i) {
      value.data<float>()[i] = static_cast<float>(i % 977) * 0.001f;
      slot.data<float>()[i] = static_cast<float>(i % 613) * -0.002f;
    }
    s.entries.push_back(
        {absl::StrCat("layer_", v, "/kernel"), Shape{rows, cols}, 0, value, {slot}, 1});
  }
  return s;
}

// One write + fsync of `bytes` bytes: the speed dd reports.
double PlainWriteSeconds(const std::string& path, const std::vector<char>& buffer) {
  const absl::Time start = absl::Now();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  size_t done = 0;
  while (fd >= 0 && done < buffer.size()) {
    const ssize_t n =
        ::write(fd, buffer.data() + done, std::min<size_t>(buffer.size() - done, 1 << 20));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  ::unlink(path.c_str());
  return seconds;
}

int Main(int argc, char** argv) {
  Args args;
  if (!Parse(argc, argv, &args)) {
    std::fprintf(stderr,
                 "usage: checkpoint_bench --dir DIR [--mb 256] [--variable-mb 4] [--repeat 3]\n");
    return 2;
  }
  std::filesystem::remove_all(args.dir);
  std::filesystem::create_directories(args.dir);
  const CheckpointSnapshot snapshot = MakeSnapshot(args);
  const double mb = static_cast<double>(snapshot.bytes()) / 1e6;
  std::printf("checkpoint of %.1f MB (%zu variables with a momentum slot) in %s\n", mb,
              snapshot.entries.size(), args.dir.c_str());
  std::vector<char> plain(static_cast<size_t>(snapshot.bytes()), 1);
  for (int r = 0; r < args.repeat; ++r) {
    LocalSnapshotJob job(snapshot);
    Manifest manifest;
    manifest.step = r + 1;
    manifest.optimizer = "sgd";
    const absl::Time start = absl::Now();
    const absl::Status status = WriteCheckpoint(DefaultFileSystem(), args.dir, manifest, job, 2);
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (!status.ok()) {
      std::fprintf(stderr, "%s\n", status.ToString().c_str());
      return 1;
    }
    const double dd = PlainWriteSeconds(args.dir + "/plain.bin", plain);
    std::printf(
        "run %d: checkpoint %.3f s = %.0f MB/s; plain write+fsync %.3f s = %.0f MB/s; ratio %.2f\n",
        r + 1, seconds, mb / seconds, dd, mb / dd, (mb / seconds) / (mb / dd));
  }
  std::filesystem::remove_all(args.dir);
  return 0;
}

}  // namespace
}  // namespace meshtrain

int main(int argc, char** argv) { return meshtrain::Main(argc, argv); }
