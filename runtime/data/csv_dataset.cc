#include "runtime/data/csv_dataset.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

constexpr size_t kMaxLineBytes = size_t{1} << 24;

// Calls `fn(line, number)` for each line of `path` (number from 1; the line
// without its end), plain or GZIP.
absl::Status ForEachLine(const std::string& path,
                         const std::function<absl::Status(absl::string_view, int64_t)>& fn) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open it (", std::strerror(errno), "); check the path"));
  }
  gzbuffer(file, 1 << 17);
  std::string line;
  std::vector<char> chunk(1 << 16);
  int64_t number = 0;
  absl::Status status;
  while (status.ok()) {
    const char* got = gzgets(file, chunk.data(), static_cast<int>(chunk.size()));
    if (got == nullptr) {
      int code = 0;
      const char* message = gzerror(file, &code);
      if (code != Z_OK && code != Z_BUF_ERROR) {
        status = absl::DataLossError(absl::StrCat(path, ": after line ", number, ": ", message));
      } else if (!line.empty()) {
        status = fn(line, ++number);  // a last line without its newline
      }
      break;
    }
    line.append(got);
    if (line.size() > kMaxLineBytes) {
      status = absl::InvalidArgumentError(
          absl::StrCat(path, ": line ", number + 1, " is longer than ", kMaxLineBytes, " bytes"));
      break;
    }
    if (line.back() != '\n') continue;  // the rest of a long line follows
    line.pop_back();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    status = fn(line, ++number);
    line.clear();
  }
  gzclose(file);
  return status;
}

std::vector<absl::string_view> Fields(absl::string_view line) { return absl::StrSplit(line, ','); }

// The header's columns and where the label is, or an error naming the file.
struct Header {
  std::vector<std::string> columns;
  int label = -1;
};

absl::StatusOr<Header> ParseHeader(absl::string_view line, const std::string& path,
                                   const CsvSpec& spec) {
  Header header;
  for (absl::string_view field : Fields(line)) {
    header.columns.emplace_back(absl::StripAsciiWhitespace(field));
  }
  for (int i = 0; i < static_cast<int>(header.columns.size()); ++i) {
    if (header.columns[i] == spec.label_column) header.label = i;
  }
  if (header.label < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": line 1: no column ", QuoteForMessage(spec.label_column), " in the header (",
        QuoteForMessage(absl::StrJoin(header.columns, ",")), "); set data.label_column"));
  }
  if (header.columns.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": line 1: the header names no input column beside the label"));
  }
  return header;
}

}  // namespace

absl::StatusOr<Dataset> LoadCsvDataset(absl::Span<const std::string> files, const CsvSpec& spec,
                                       const std::string& name) {
  MESHTRAIN_RETURN_IF_ERROR(CheckClassesAndDivisor(name, spec.num_classes, spec.divisor));
  // Pass 1: the header of each file (all alike) and the number of examples.
  std::optional<Header> header;
  int64_t n = 0;
  for (const std::string& path : files) {
    MESHTRAIN_RETURN_IF_ERROR(
        ForEachLine(path, [&](absl::string_view line, int64_t number) -> absl::Status {
          if (number > 1) {
            if (!absl::StripAsciiWhitespace(line).empty()) ++n;
            return absl::OkStatus();
          }
          MESHTRAIN_ASSIGN_OR_RETURN(Header h, ParseHeader(line, path, spec));
          if (header.has_value() && h.columns != header->columns) {
            return absl::InvalidArgumentError(
                absl::StrCat(path, ": line 1: the header differs from ", files[0], "'s"));
          }
          header = std::move(h);
          return absl::OkStatus();
        }));
  }
  if (!header.has_value() || n == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": the ", files.size(), " CSV file(s) hold no example"));
  }
  const int64_t width = static_cast<int64_t>(header->columns.size()) - 1;
  Dataset dataset;
  dataset.name = name;
  dataset.num_classes = spec.num_classes;
  dataset.inputs = Tensor(DType::kFloat32, Shape{n, width});
  dataset.labels = Tensor(DType::kInt32, Shape{n});
  float* inputs = dataset.inputs.data<float>();
  int32_t* labels = dataset.labels.data<int32_t>();
  int64_t row = 0;
  // Pass 2: the values, straight into the tensors.
  for (const std::string& path : files) {
    MESHTRAIN_RETURN_IF_ERROR(
        ForEachLine(path, [&](absl::string_view line, int64_t number) -> absl::Status {
          if (number == 1 || absl::StripAsciiWhitespace(line).empty()) return absl::OkStatus();
          const std::string where = absl::StrCat(path, ": line ", number);
          if (row == n) return absl::DataLossError(where + ": the file changed while being read");
          const std::vector<absl::string_view> fields = Fields(line);
          if (fields.size() != header->columns.size()) {
            return absl::InvalidArgumentError(absl::StrCat(
                where, ": ", fields.size(), " fields, the header names ", header->columns.size()));
          }
          float* out = inputs + row * width;
          for (int c = 0; c < static_cast<int>(fields.size()); ++c) {
            const absl::string_view field = absl::StripAsciiWhitespace(fields[c]);
            if (c == header->label) {
              int64_t label = 0;
              if (!absl::SimpleAtoi(field, &label) || label < 0 || label >= spec.num_classes) {
                return absl::InvalidArgumentError(absl::StrCat(
                    where, ": label ", QuoteForMessage(field), " is not a class in [0, ",
                    spec.num_classes, "); set data.num_classes"));
              }
              labels[row] = static_cast<int32_t>(label);
              continue;
            }
            float value = 0;
            if (!absl::SimpleAtof(field, &value)) {
              return absl::InvalidArgumentError(absl::StrCat(
                  where, ": column ", QuoteForMessage(header->columns[c]), ": ",
                  QuoteForMessage(field), " is not a number",
                  absl::StrContains(field, "\"") ? " (quoted fields are not read)" : ""));
            }
            *out++ = value / spec.divisor;
          }
          ++row;
          return absl::OkStatus();
        }));
  }
  if (row != n)
    return absl::DataLossError(absl::StrCat(name, ": the files changed while being read"));
  return dataset;
}

}  // namespace meshtrain
