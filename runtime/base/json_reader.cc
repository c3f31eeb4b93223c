#include "runtime/base/json_reader.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/quote.h"

namespace meshtrain {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxDetailBytes = 200;

// An integer that fits int64_t (nlohmann keeps large ones as unsigned).
bool AsInt64(const Json& v, int64_t* out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (!v.is_number_integer()) return false;
  *out = v.get<int64_t>();
  return true;
}

// The byte offset where arrays and objects in `text` first nest deeper than
// `max_depth`, or -1. Brackets inside strings do not count; the text need not
// be valid JSON (the parser judges that).
int64_t FindTooDeep(absl::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return static_cast<int64_t>(i);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return -1;
}

// An exception's what() without its "[json.exception...] " tag. Its "last
// read: '...'" may hold a whole 100 KB token: keep a prefix, printable ASCII only.
std::string ExceptionDetail(const Json::exception& e) {
  absl::string_view detail = e.what();
  const size_t bracket = detail.find("] ");
  if (bracket != absl::string_view::npos) detail.remove_prefix(bracket + 2);
  std::string bounded(detail.substr(0, kMaxDetailBytes));
  for (char& c : bounded) {
    if (!IsPlainForMessage(absl::string_view(&c, 1)) && c != '\'' && c != '"') c = '?';
  }
  if (detail.size() > kMaxDetailBytes) bounded += "...";
  return bounded;
}

}  // namespace

std::string JsonFieldMessage(absl::string_view field, absl::string_view problem) {
  if (field.empty()) return absl::StrCat("the JSON ", problem);
  return absl::StrCat(field, " ", problem);
}

JsonErrorFn InvalidJsonIn(std::string source) {
  return [source = std::move(source)](absl::string_view field, absl::string_view problem) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", JsonFieldMessage(field, problem)));
  };
}

absl::StatusOr<Json> ParseJson(absl::string_view text, int max_depth) {
  if (const int64_t at = FindTooDeep(text, max_depth); at >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the JSON nests arrays and objects deeper than ", max_depth,
                     " levels at byte ", at, " (no configuration or checkpoint needs that many)"));
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    // what() is "[json.exception.parse_error.101] parse error at line 1, column 7: ...".
    return absl::InvalidArgumentError(
        absl::StrCat("not valid JSON at byte ", e.byte, ": ", ExceptionDetail(e)));
  } catch (const Json::exception& e) {
    // A number beyond a double's range: "[json.exception.out_of_range.406]
    // number overflow parsing '1e400'".
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", ExceptionDetail(e)));
  }
}

std::string DescribeJson(const Json& value) {
  if (value.is_null()) return "null";
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace);
  if (text.size() > 48) text = absl::StrCat(text.substr(0, 45), "...");
  return absl::StrCat(value.type_name(), " ", text);
}

JsonReader::JsonReader(const Json& value, JsonErrorFn error, std::string path)
    : value_(&value), error_(std::move(error)), path_(std::move(path)) {}

std::string JsonReader::PathOf(absl::string_view key) const {
  const std::string name = IsPlainForMessage(key) && key.size() <= kMaxQuotedBytes
                               ? std::string(key)
                               : QuoteForMessage(key);
  return path_.empty() ? name : absl::StrCat(path_, ".", name);
}

absl::Status JsonReader::Error(absl::string_view field, absl::string_view problem) const {
  return error_(field, problem);
}

absl::Status JsonReader::Mistyped(absl::string_view field, absl::string_view expected,
                                  const Json& value) const {
  return Error(field, absl::StrCat("must be ", expected, ", got ", DescribeJson(value)));
}

absl::Status JsonReader::CheckObject() const {
  if (value_->is_object()) return absl::OkStatus();
  return Mistyped(path_, "a JSON object", *value_);
}

const Json* JsonReader::Find(absl::string_view key) {
  known_.emplace(key);
  if (!value_->is_object()) return nullptr;
  auto it = value_->find(key);
  return it == value_->end() ? nullptr : &*it;
}

absl::Status JsonReader::MissingOrNotObject(absl::string_view key) const {
  if (!value_->is_object()) return CheckObject();
  return Error(PathOf(key), "is missing");
}

absl::Status JsonReader::ReadAtLeast(absl::string_view key, int64_t min, int64_t* out) {
  int64_t value = 0;
  if (absl::Status s = Read(key, &value); !s.ok()) return s;
  if (value < min) return Mistyped(PathOf(key), absl::StrCat("an integer >= ", min), *Find(key));
  *out = value;
  return absl::OkStatus();
}

absl::Status JsonReader::ReadDimensions(absl::string_view key, std::vector<int64_t>* out) {
  const Json* member = Find(key);
  if (member == nullptr) return MissingOrNotObject(key);
  std::vector<int64_t> dims;
  if (!Convert(*member, PathOf(key), &dims).ok() ||
      std::any_of(dims.begin(), dims.end(), [](int64_t d) { return d < 0; })) {
    return Mistyped(PathOf(key), "an array of integers >= 0 (it has a bad dimension)", *member);
  }
  *out = std::move(dims);
  return absl::OkStatus();
}

absl::StatusOr<JsonReader> JsonReader::Object(absl::string_view key) {
  const Json* member = Find(key);
  if (member == nullptr) return MissingOrNotObject(key);
  JsonReader child(*member, error_, PathOf(key));
  if (absl::Status s = child.CheckObject(); !s.ok()) return s;
  return child;
}

absl::Status JsonReader::ForEach(absl::string_view key,
                                 const std::function<absl::Status(JsonReader&)>& fn) {
  const Json* member = Find(key);
  if (member == nullptr) return MissingOrNotObject(key);
  const std::string field = PathOf(key);
  if (!member->is_array()) return Mistyped(field, "an array", *member);
  for (size_t i = 0; i < member->size(); ++i) {
    JsonReader element((*member)[i], error_, absl::StrCat(field, "[", i, "]"));
    if (absl::Status s = fn(element); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status JsonReader::ForEachMember(
    absl::string_view key, const std::function<absl::Status(const std::string&, JsonReader&)>& fn) {
  absl::StatusOr<JsonReader> object = Object(key);
  if (!object.ok()) return object.status();
  for (auto it = object->value().begin(); it != object->value().end(); ++it) {
    JsonReader member(it.value(), error_, object->PathOf(it.key()));
    if (absl::Status s = fn(it.key(), member); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status JsonReader::CheckNoUnknownKeys() const {
  if (!value_->is_object()) return absl::OkStatus();
  for (auto it = value_->begin(); it != value_->end(); ++it) {
    if (known_.count(it.key()) == 0) {
      return Error(PathOf(it.key()),
                   absl::StrCat("is not a known key; ", path_.empty() ? "the JSON" : path_,
                                " takes: ", absl::StrJoin(known_, ", ")));
    }
  }
  return absl::OkStatus();
}

absl::Status JsonReader::Convert(const Json& v, absl::string_view field, bool* out) const {
  if (!v.is_boolean()) return Mistyped(field, "true or false", v);
  *out = v.get<bool>();
  return absl::OkStatus();
}

absl::Status JsonReader::Convert(const Json& v, absl::string_view field, int* out) const {
  int64_t value = 0;
  if (!AsInt64(v, &value) || value < std::numeric_limits<int>::min() ||
      value > std::numeric_limits<int>::max()) {
    return Mistyped(field, "an integer that fits 32 bits", v);
  }
  *out = static_cast<int>(value);
  return absl::OkStatus();
}

absl::Status JsonReader::Convert(const Json& v, absl::string_view field, int64_t* out) const {
  if (!AsInt64(v, out)) return Mistyped(field, "an integer", v);
  return absl::OkStatus();
}

absl::Status JsonReader::Convert(const Json& v, absl::string_view field, uint64_t* out) const {
  if (!v.is_number_unsigned()) return Mistyped(field, "an integer >= 0", v);
  *out = v.get<uint64_t>();
  return absl::OkStatus();
}

absl::Status JsonReader::Convert(const Json& v, absl::string_view field, float* out) const {
  if (!v.is_number()) return Mistyped(field, "a number", v);
  *out = v.get<float>();
  return absl::OkStatus();
}

absl::Status JsonReader::Convert(const Json& v, absl::string_view field, double* out) const {
  if (!v.is_number()) return Mistyped(field, "a number", v);
  *out = v.get<double>();
  return absl::OkStatus();
}

absl::Status JsonReader::Convert(const Json& v, absl::string_view field, std::string* out) const {
  if (!v.is_string()) return Mistyped(field, "a string", v);
  *out = v.get<std::string>();
  return absl::OkStatus();
}

absl::Status JsonReader::Convert(const Json& v, absl::string_view field,
                                 std::vector<int64_t>* out) const {
  std::vector<int64_t> values(v.is_array() ? v.size() : 0);
  for (size_t i = 0; i < values.size(); ++i) {
    if (!AsInt64(v[i], &values[i])) return Mistyped(field, "an array of integers", v);
  }
  if (!v.is_array()) return Mistyped(field, "an array of integers", v);
  *out = std::move(values);
  return absl::OkStatus();
}

absl::Status JsonReader::Convert(const Json& v, absl::string_view field,
                                 std::vector<std::string>* out) const {
  if (!v.is_array()) return Mistyped(field, "an array of strings", v);
  std::vector<std::string> values;
  for (const Json& element : v) {
    if (!element.is_string()) return Mistyped(field, "an array of strings", v);
    values.push_back(element.get<std::string>());
  }
  *out = std::move(values);
  return absl::OkStatus();
}

absl::Status JsonReader::Convert(const Json& v, absl::string_view field,
                                 std::map<std::string, std::string>* out) const {
  if (!v.is_object()) return Mistyped(field, "an object of strings", v);
  std::map<std::string, std::string> values;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_string()) {
      return Mistyped(field.empty() ? it.key() : absl::StrCat(field, ".", it.key()), "a string",
                      it.value());
    }
    values[it.key()] = it.value().get<std::string>();
  }
  *out = std::move(values);
  return absl::OkStatus();
}

}  // namespace meshtrain
