#include "runtime/data/dataset_cache.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "runtime/base/file_system.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/npy_file.h"

namespace meshtrain {
namespace {

// Rows are gathered into pieces of this size before they reach the file.
constexpr size_t kWriteChunkBytes = size_t{1} << 20;
// Written pages are synced this often, so that a cache larger than memory
// leaves clean pages the kernel can drop, not dirty ones it must write back
// first (under a memory limit the latter can end in the OOM killer).
constexpr int64_t kSyncEveryBytes = int64_t{64} << 20;

// FNV-1a, 64 bits: a stable name for a source across processes and runs.
uint64_t Fnv1a(absl::string_view text, uint64_t hash = 14695981039346656037ull) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

// "tfrecord/train" -> "tfrecord-train": a file name part.
std::string FileNamePart(absl::string_view name) {
  std::string out;
  for (char c : name) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  return out;
}

// What identifies a source: the spec and each file's path, size and time.
absl::StatusOr<nlohmann::json> DescribeSource(absl::Span<const std::string> files,
                                              const std::string& spec) {
  nlohmann::json described = nlohmann::json::array();
  for (const std::string& path : files) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return absl::NotFoundError(
          absl::StrCat("dataset cache: cannot stat ", path, ": ", std::strerror(errno)));
    }
    described.push_back(
        {{"path", path},
         {"size", static_cast<int64_t>(st.st_size)},
         {"mtime_ns", static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec}});
  }
  return nlohmann::json{{"spec", spec}, {"files", std::move(described)}};
}

absl::Span<const std::byte> AsBytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Buffers rows of both arrays and hands them to the files in large pieces.
class RowWriter : public CacheRowWriter {
 public:
  RowWriter(WritableFile& inputs, WritableFile& labels, size_t row_bytes)
      : inputs_(inputs), labels_(labels), row_bytes_(row_bytes) {}

  absl::Status Append(const void* inputs, int32_t label) override {
    const auto* bytes = static_cast<const char*>(inputs);
    input_buffer_.append(bytes, row_bytes_);
    label_buffer_.append(reinterpret_cast<const char*>(&label), sizeof(label));
    ++rows_;
    if (input_buffer_.size() >= kWriteChunkBytes) return Flush();
    return absl::OkStatus();
  }

  absl::Status Flush() {
    MESHTRAIN_RETURN_IF_ERROR(inputs_.Append(AsBytes(input_buffer_)));
    MESHTRAIN_RETURN_IF_ERROR(labels_.Append(AsBytes(label_buffer_)));
    unsynced_bytes_ += static_cast<int64_t>(input_buffer_.size() + label_buffer_.size());
    input_buffer_.clear();
    label_buffer_.clear();
    if (unsynced_bytes_ >= kSyncEveryBytes) {
      MESHTRAIN_RETURN_IF_ERROR(inputs_.Sync());
      MESHTRAIN_RETURN_IF_ERROR(labels_.Sync());
      unsynced_bytes_ = 0;
    }
    return absl::OkStatus();
  }

  int64_t rows() const { return rows_; }

 private:
  WritableFile& inputs_;
  WritableFile& labels_;
  const size_t row_bytes_;
  std::string input_buffer_;
  std::string label_buffer_;
  int64_t rows_ = 0;
  int64_t unsynced_bytes_ = 0;
};

}  // namespace

absl::StatusOr<DatasetCache> DatasetCache::Open(const std::string& dir, const std::string& name,
                                                absl::Span<const std::string> files,
                                                const std::string& spec) {
  if (dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": the dataset cache needs a directory (data.cache_dir)"));
  }
  FileSystem& fs = DefaultFileSystem();
  MESHTRAIN_RETURN_IF_ERROR(fs.CreateDir(dir));
  MESHTRAIN_ASSIGN_OR_RETURN(nlohmann::json source, DescribeSource(files, spec));
  uint64_t hash = Fnv1a(spec);
  for (const std::string& path : files) hash = Fnv1a(path, Fnv1a("\n", hash));
  const std::string base = JoinPath(dir, absl::StrFormat("%s-%016x", FileNamePart(name), hash));
  DatasetCache cache;
  cache.name_ = name;
  cache.inputs_path_ = base + ".inputs.npy";
  cache.labels_path_ = base + ".labels.npy";
  cache.manifest_path_ = base + ".json";
  cache.manifest_ = source.dump();
  if (fs.Exists(cache.manifest_path_) && fs.Exists(cache.inputs_path_) &&
      fs.Exists(cache.labels_path_)) {
    absl::StatusOr<std::string> manifest = fs.ReadFile(cache.manifest_path_);
    cache.complete_ = manifest.ok() && *manifest == cache.manifest_;
  }
  return cache;
}

absl::Status DatasetCache::Build(DType input_dtype, int64_t n, int64_t width,
                                 const std::function<absl::Status(CacheRowWriter&)>& decode) {
  const size_t row_bytes = static_cast<size_t>(width) * DTypeSize(input_dtype);
  const std::string input_header =
      EncodeNpyHeader(input_dtype == DType::kUInt8 ? "|u1" : "<f4", {n, width});
  const std::string label_header = EncodeNpyHeader("<i4", {n});
  FileSystem& fs = DefaultFileSystem();
  // Both arrays in one pass over the records, each through the atomic write
  // (a temporary file renamed over the name): the labels land first, the
  // inputs second, the manifest that makes the cache complete last.
  MESHTRAIN_RETURN_IF_ERROR(
      WriteFileAtomically(fs, inputs_path_, [&](WritableFile& inputs) -> absl::Status {
        return WriteFileAtomically(fs, labels_path_, [&](WritableFile& labels) -> absl::Status {
          MESHTRAIN_RETURN_IF_ERROR(inputs.Append(AsBytes(input_header)));
          MESHTRAIN_RETURN_IF_ERROR(labels.Append(AsBytes(label_header)));
          RowWriter writer(inputs, labels, row_bytes);
          MESHTRAIN_RETURN_IF_ERROR(decode(writer));
          if (writer.rows() != n) {
            return absl::DataLossError(
                absl::StrCat(name_, ": ", writer.rows(), " records decoded for the cache, ", n,
                             " counted: the files changed while being read"));
          }
          return writer.Flush();
        });
      }));
  MESHTRAIN_RETURN_IF_ERROR(WriteFileAtomically(fs, manifest_path_, {manifest_}));
  complete_ = true;
  return absl::OkStatus();
}

absl::StatusOr<Dataset> DatasetCache::Load(float divisor, int num_classes) const {
  if (!complete_) {
    return absl::FailedPreconditionError(absl::StrCat(name_, ": the dataset cache is not built"));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<NpyFile> inputs, NpyFile::Open(inputs_path_));
  // float32 inputs were divided when cached.
  const float load_divisor = inputs->dtype() == "u1" ? divisor : 1.0f;
  inputs.reset();
  MESHTRAIN_ASSIGN_OR_RETURN(Dataset dataset, LoadNpyDataset(inputs_path_, labels_path_,
                                                             load_divisor, num_classes, name_));
  // Batches read shuffled rows. Without this hint each row that is not in
  // memory faults in the kernel's read-ahead window (32 pages and more), so a
  // set larger than memory reads tens of MB from disk per batch of 256 rows
  // instead of one page a row.
  const auto start = reinterpret_cast<uintptr_t>(dataset.inputs.raw_data());
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t aligned = start & ~(page - 1);
  ::madvise(reinterpret_cast<void*>(aligned), dataset.inputs.bytes() + (start - aligned),
            MADV_RANDOM);
  return dataset;
}

}  // namespace meshtrain
