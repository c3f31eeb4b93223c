#include "runtime/data/npy_file.h"

#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/mapped_file.h"
#include "runtime/data/zip_archive.h"

namespace meshtrain {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

// The text after 'key': in a header dict literal, up to the next top-level
// comma (a shape's tuple counts as one value).
bool DictValue(absl::string_view header, absl::string_view key, absl::string_view* value) {
  for (const char quote : {'\'', '"'}) {
    const std::string quoted = absl::StrCat(std::string(1, quote), key, std::string(1, quote));
    size_t at = header.find(quoted);
    if (at == absl::string_view::npos) continue;
    at = header.find(':', at + quoted.size());
    if (at == absl::string_view::npos) return false;
    absl::string_view rest = header.substr(at + 1);
    int depth = 0;
    size_t end = 0;
    for (; end < rest.size(); ++end) {
      const char c = rest[end];
      if (c == '(' || c == '[') ++depth;
      if (c == ')' || c == ']') --depth;
      if ((c == ',' && depth == 0) || c == '}') break;
    }
    *value = absl::StripAsciiWhitespace(rest.substr(0, end));
    return true;
  }
  return false;
}

size_t ItemSize(absl::string_view dtype) {
  if (dtype.size() != 2) return 0;
  const char kind = dtype[0];
  const char bytes = dtype[1];
  if (kind == 'b' && bytes == '1') return 1;
  if (kind == 'u' || kind == 'i') {
    return bytes == '1' || bytes == '2' || bytes == '4' || bytes == '8' ? bytes - '0' : 0;
  }
  if (kind == 'f') return bytes == '4' || bytes == '8' ? bytes - '0' : 0;
  return 0;
}

// "ARCHIVE.npz:MEMBER" names a member of a .npz; the last ".npz:" splits it
// (a member name holds no ".npz:", a directory might).
bool SplitArchivePath(const std::string& path, std::string* archive, std::string* member) {
  const size_t at = path.rfind(".npz:");
  if (at == std::string::npos) return false;
  *archive = path.substr(0, at + 4);
  *member = path.substr(at + 5);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NpyFile>> NpyFile::Open(const std::string& path) {
  std::string archive_path, member;
  if (SplitArchivePath(path, &archive_path, &member)) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<ZipArchive> archive, ZipArchive::Open(archive_path));
    // np.savez stores array `x` as member "x.npy"; either spelling names it.
    const ZipEntry* entry = archive->Find(absl::StrCat(member, ".npy"));
    if (entry == nullptr) entry = archive->Find(member);
    if (entry == nullptr) {
      return absl::NotFoundError(absl::StrCat(archive_path, ": no array ", QuoteForMessage(member),
                                              " (members: ", archive->MemberNames(),
                                              "); name one as ", archive_path, ":NAME"));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(ZipMemberBytes bytes, archive->Read(*entry));
    return Parse(path, bytes.bytes, std::move(bytes.owner));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::Open(path));
  const absl::Span<const uint8_t> bytes = file->bytes();
  if (bytes.size() >= 2 && std::memcmp(bytes.data(), "PK", 2) == 0) {
    absl::StatusOr<std::unique_ptr<ZipArchive>> archive = ZipArchive::Open(path);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": it is a zip archive (.npz)",
                     archive.ok() ? absl::StrCat(" of ", (*archive)->MemberNames()) : "",
                     "; name an array inside as ", path,
                     absl::EndsWith(path, ".npz") ? "" : " (renamed to end in .npz)", ":NAME"));
  }
  return Parse(path, bytes, std::move(file));
}

absl::StatusOr<std::unique_ptr<NpyFile>> NpyFile::Parse(const std::string& name,
                                                        absl::Span<const uint8_t> data,
                                                        std::shared_ptr<const void> owner) {
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(name, ": not a .npy file we read: ", why));
  };
  if (data.size() < 10) return bad("too short for a .npy header");
  const unsigned char* bytes = data.data();
  if (std::memcmp(bytes, kMagic, 6) != 0) return bad("no \\x93NUMPY magic");
  auto file = std::unique_ptr<NpyFile>(new NpyFile());
  file->path_ = name;
  file->owner_ = std::move(owner);
  const int major = bytes[6];
  size_t header_len = 0;
  size_t header_start = 0;
  if (major == 1) {
    header_len = bytes[8] | (bytes[9] << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (data.size() < 12) return bad("truncated header");
    header_len = static_cast<size_t>(bytes[8]) | (static_cast<size_t>(bytes[9]) << 8) |
                 (static_cast<size_t>(bytes[10]) << 16) | (static_cast<size_t>(bytes[11]) << 24);
    header_start = 12;
  } else {
    return bad(absl::StrCat("format version ", major, " (1 to 3 are read)"));
  }
  if (header_len > data.size() - header_start) return bad("the header runs past the end");
  const absl::string_view header(reinterpret_cast<const char*>(bytes) + header_start, header_len);
  absl::string_view descr, fortran, shape;
  if (!DictValue(header, "descr", &descr) || !DictValue(header, "fortran_order", &fortran) ||
      !DictValue(header, "shape", &shape)) {
    return bad(absl::StrCat("the header ", QuoteForMessage(header),
                            " lacks descr, fortran_order or shape"));
  }
  if (fortran != "False") return bad("Fortran order (save it with np.ascontiguousarray)");
  descr = absl::StripPrefix(absl::StripSuffix(descr, "'"), "'");
  descr = absl::StripPrefix(absl::StripSuffix(descr, "\""), "\"");
  if (descr.size() != 3 || (descr[0] != '<' && descr[0] != '|' && descr[0] != '=')) {
    return bad(absl::StrCat("dtype ", QuoteForMessage(descr),
                            " (little-endian or single-byte numbers only)"));
  }
  file->dtype_ = std::string(descr.substr(1));
  const size_t item = ItemSize(file->dtype_);
  if (item == 0) return bad(absl::StrCat("dtype ", QuoteForMessage(descr), " is not numeric"));
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') {
    return bad(absl::StrCat("shape ", QuoteForMessage(shape)));
  }
  int64_t count = 1;
  for (absl::string_view dim :
       absl::StrSplit(shape.substr(1, shape.size() - 2), ',', absl::SkipWhitespace())) {
    int64_t d = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(dim), &d) || d < 0 ||
        (d > 0 && count > (int64_t{1} << 40) / d)) {
      return bad(absl::StrCat("shape ", QuoteForMessage(shape)));
    }
    file->shape_.push_back(d);
    count *= d;
  }
  const size_t data_start = header_start + header_len;
  if (static_cast<size_t>(count) * item != data.size() - data_start) {
    return bad(absl::StrCat("the shape ", QuoteForMessage(shape), " of ", file->dtype_, " needs ",
                            static_cast<size_t>(count) * item, " bytes, the file holds ",
                            data.size() - data_start));
  }
  file->num_values_ = count;
  file->data_ = bytes + data_start;
  return file;
}

namespace {

template <typename T>
T Load(const unsigned char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

}  // namespace

float NpyFile::FloatAt(int64_t i) const {
  const char kind = dtype_[0];
  const int bytes = dtype_[1] - '0';
  const unsigned char* p = data_ + i * bytes;
  if (kind == 'f') return bytes == 4 ? Load<float>(p) : static_cast<float>(Load<double>(p));
  int64_t value = 0;
  IntegerAt(i, &value);
  if (kind == 'u' && bytes == 8) return static_cast<float>(Load<uint64_t>(p));
  return static_cast<float>(value);
}

bool NpyFile::IntegerAt(int64_t i, int64_t* out) const {
  const char kind = dtype_[0];
  const int bytes = dtype_[1] - '0';
  const unsigned char* p = data_ + i * bytes;
  switch (kind) {
    case 'b':
    case 'u':
      *out = bytes == 1   ? p[0]
             : bytes == 2 ? Load<uint16_t>(p)
             : bytes == 4 ? Load<uint32_t>(p)
                          : static_cast<int64_t>(Load<uint64_t>(p));
      return true;
    case 'i':
      *out = bytes == 1   ? Load<int8_t>(p)
             : bytes == 2 ? Load<int16_t>(p)
             : bytes == 4 ? Load<int32_t>(p)
                          : Load<int64_t>(p);
      return true;
    default: {
      const double v = bytes == 4 ? Load<float>(p) : Load<double>(p);
      *out = static_cast<int64_t>(v);
      return static_cast<double>(*out) == v;
    }
  }
}

std::string EncodeNpyHeader(absl::string_view descr, absl::Span<const int64_t> shape) {
  std::string dims = absl::StrJoin(shape, ", ");
  if (shape.size() == 1) dims += ",";
  std::string header =
      absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (", dims, "), }");
  // Magic (6) + version (2) + length (2) + header + '\n', a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out(kMagic, 6);
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  return out + header;
}

absl::StatusOr<Dataset> LoadNpyDataset(const std::string& inputs_path,
                                       const std::string& labels_path, float divisor,
                                       int num_classes, const std::string& name) {
  MESHTRAIN_RETURN_IF_ERROR(CheckClassesAndDivisor(name, num_classes, divisor));
  MESHTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<NpyFile> inputs, NpyFile::Open(inputs_path));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<NpyFile> labels, NpyFile::Open(labels_path));
  if (inputs->shape().empty() || labels->shape().size() != 1 ||
      inputs->shape()[0] != labels->shape()[0] || inputs->shape()[0] == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": ", inputs_path, " [", absl::StrJoin(inputs->shape(), ", "), "] and ", labels_path,
        " [", absl::StrJoin(labels->shape(), ", "), "] are not n examples and n labels (n > 0)"));
  }
  const int64_t n = inputs->shape()[0];
  const int64_t width = inputs->num_values() / n;
  if (width == 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", inputs_path, " holds no values"));
  }
  Dataset dataset;
  dataset.name = name;
  dataset.num_classes = num_classes;
  if (inputs->dtype() == "u1") {
    // Bytes (pixels) are trained from the mapping itself: nothing is copied,
    // and pages the kernel drops are read again from the file. A batch
    // divides them (Dataset::input_divisor).
    dataset.inputs = Tensor::WrapHost(DType::kUInt8, Shape{n, width}, inputs->data(), inputs);
    dataset.input_divisor = divisor;
  } else if (inputs->dtype() == "f4" && divisor == 1.0f) {
    // Already what a batch holds (a dataset cache's float inputs).
    dataset.inputs = Tensor::WrapHost(DType::kFloat32, Shape{n, width}, inputs->data(), inputs);
  } else {
    dataset.inputs = Tensor(DType::kFloat32, Shape{n, width});
    float* x = dataset.inputs.data<float>();
    for (int64_t i = 0; i < n * width; ++i) x[i] = inputs->FloatAt(i) / divisor;
  }
  dataset.labels = Tensor(DType::kInt32, Shape{n});
  int32_t* y = dataset.labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t label = 0;
    if (!labels->IntegerAt(i, &label) || label < 0 || label >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(labels_path, ": label ", i, " (",
                                                     labels->FloatAt(i), ") is not a class in [0, ",
                                                     num_classes, "); set data.num_classes"));
    }
    y[i] = static_cast<int32_t>(label);
  }
  return dataset;
}

}  // namespace meshtrain
