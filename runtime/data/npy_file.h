// NumPy's .npy arrays (format versions 1 to 3): the header (magic, version, a
// dict literal giving 'descr', 'fortran_order' and 'shape') and the values,
// viewed where they lie, never copied whole: a memory-mapped .npy file, or a
// member of a .npz archive ("ARCHIVE.npz:NAME"), in the archive's mapping when
// stored (np.savez) or inflated into memory when deflated
// (np.savez_compressed). Little-endian or single-byte numeric dtypes in C
// order: u1 i1 u2 i2 u4 i4 u8 i8 f4 f8 (and bool).
// Errors name the file (and member): NotFound, DataLoss for a malformed
// header, a shape that does not match the size, or an unsupported dtype, and
// the archive's errors (zip_archive.h). Immutable: safe to read from any thread.
#ifndef MESHTRAIN_RUNTIME_DATA_NPY_FILE_H_
#define MESHTRAIN_RUNTIME_DATA_NPY_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "runtime/data/dataset.h"

namespace meshtrain {

class NpyFile {
 public:
  // `path` is a .npy file or "ARCHIVE.npz:NAME", the member NAME.npy (or
  // NAME) of the archive, as keras' mnist.npz holds x_train.npy.
  static absl::StatusOr<std::unique_ptr<NpyFile>> Open(const std::string& path);
  // The .npy bytes `bytes`, valid while `owner` lives (which this keeps);
  // `name` names them in errors.
  static absl::StatusOr<std::unique_ptr<NpyFile>> Parse(const std::string& name,
                                                        absl::Span<const uint8_t> bytes,
                                                        std::shared_ptr<const void> owner);
  NpyFile(const NpyFile&) = delete;
  NpyFile& operator=(const NpyFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t num_values() const { return num_values_; }
  const std::string& dtype() const { return dtype_; }  // "f4", "u1", ... ("b1": bool)
  // The values as stored (num_values() of dtype()), valid while this lives.
  const void* data() const { return data_; }
  // Value i as float (i < num_values()).
  float FloatAt(int64_t i) const;
  // Value i as an integer; false for a float that is not integral.
  bool IntegerAt(int64_t i, int64_t* out) const;

 private:
  NpyFile() = default;
  std::string path_;
  std::vector<int64_t> shape_;
  int64_t num_values_ = 0;
  std::string dtype_;
  std::shared_ptr<const void> owner_;  // the mapping or inflated buffer data_ lies in
  const unsigned char* data_ = nullptr;
};

// A version 1.0 .npy header for `descr` ("|u1", "<f4", "<i4") and `shape`
// (C order), padded so the data that follows starts 64-byte aligned.
std::string EncodeNpyHeader(absl::string_view descr, absl::Span<const int64_t> shape);

// A Dataset from an inputs array [n, ...] (each example flattened) and a
// labels array [n] of integers in [0, num_classes), as x_train.npy and
// y_train.npy are saved (paths as NpyFile::Open takes them). uint8 inputs, and
// float32 ones with divisor 1, stay in the mapped file (the dataset keeps it
// mapped, or the inflated member; uint8 is divided per batch); other dtypes
// are converted to value / divisor as float32.
absl::StatusOr<Dataset> LoadNpyDataset(const std::string& inputs_path,
                                       const std::string& labels_path, float divisor,
                                       int num_classes, const std::string& name);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_NPY_FILE_H_
