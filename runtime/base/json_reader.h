// JsonReader: reads the typed fields of one JSON value (nested objects,
// arrays, maps) and turns a missing or mistyped field into a Status naming its
// path and what it held: `variables[3].shape must be an array of integers >= 0,
// got string "x"`. The caller's JsonErrorFn decides the source and the code,
// so a checkpoint's errors are kDataLoss naming its file and a config's are
// kInvalidArgument naming the config. ParseJson is the one place nlohmann's
// parse exceptions become a Status, and the one place every JSON the program
// reads (TF_CONFIG, job configs, checkpoint manifests and headers, ps plans,
// reports) is parsed: it refuses nesting deeper than kMaxJsonDepth before
// nlohmann builds anything, so no recursive walk (dump, compare, destroy) of
// a hostile document can overflow the stack. Messages never quote more than
// a bounded, escaped prefix of the input.
//
// A reader borrows its value, which must outlive it. Thread-compatible: it
// records the keys asked for, for CheckNoUnknownKeys.
#ifndef MESHTRAIN_RUNTIME_BASE_JSON_READER_H_
#define MESHTRAIN_RUNTIME_BASE_JSON_READER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace meshtrain {

// Makes the Status for a problem with `field` ("a.b[2].c"; empty for the
// whole document). `problem` reads after the field: "is missing",
// "must be a string, got number 1".
using JsonErrorFn = std::function<absl::Status(absl::string_view field, absl::string_view problem)>;

// "<field> <problem>", or "the JSON <problem>" for the whole document.
std::string JsonFieldMessage(absl::string_view field, absl::string_view problem);

// InvalidArgument "<source>: <field> <problem>".
JsonErrorFn InvalidJsonIn(std::string source);

// The deepest nesting of arrays and objects ParseJson accepts: ours need 6.
inline constexpr int kMaxJsonDepth = 64;

// The parsed document, or InvalidArgument "not valid JSON at byte 31:
// parse error at line 1, column 31: syntax error ...", for the caller to prefix
// with the source. Arrays and objects nested deeper than `max_depth` are
// refused ("nests arrays and objects deeper than 64 levels at byte 65")
// before parsing.
absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, int max_depth = kMaxJsonDepth);

// A value's type and (a prefix of) its text on one line, control characters
// and non-ASCII escaped: `number 1.5`, `string "1a"`, `array ["a",...]`, `null`.
std::string DescribeJson(const nlohmann::json& value);

class JsonReader {
 public:
  // `path` names `value` in errors ("" for the whole document).
  JsonReader(const nlohmann::json& value, JsonErrorFn error, std::string path = "");

  const nlohmann::json& value() const { return *value_; }
  const std::string& path() const { return path_; }
  // The path of member `key`: "key" at the top, else "<path>.key"; a key that
  // is not plain printable ASCII appears quoted and bounded (QuoteForMessage).
  std::string PathOf(absl::string_view key) const;
  absl::Status Error(absl::string_view field, absl::string_view problem) const;

  // "<path> must be a JSON object, got ..." unless the value is an object.
  absl::Status CheckObject() const;
  // Member `key`, or null if absent or the value is not an object. Marks `key` known.
  const nlohmann::json* Find(absl::string_view key);

  // Required member `key`: "is missing" when absent. T is bool, int, int64_t,
  // uint64_t, float, double, std::string, std::vector<int64_t>,
  // std::vector<std::string> or std::map<std::string, std::string>.
  template <typename T>
  absl::Status Read(absl::string_view key, T* out) {
    const nlohmann::json* member = Find(key);
    if (member == nullptr) return MissingOrNotObject(key);
    return Convert(*member, PathOf(key), out);
  }
  // Optional member `key`: absent or null leaves `*out` as it is.
  template <typename T>
  absl::Status ReadOptional(absl::string_view key, T* out) {
    const nlohmann::json* member = Find(key);
    if (member == nullptr || member->is_null()) return absl::OkStatus();
    return Convert(*member, PathOf(key), out);
  }
  // This reader's own value (an array element, a map value).
  template <typename T>
  absl::Status Get(T* out) const {
    return Convert(*value_, path_, out);
  }
  // A required integer member of at least `min`.
  absl::Status ReadAtLeast(absl::string_view key, int64_t min, int64_t* out);
  // A required array of integers >= 0 (a tensor shape).
  absl::Status ReadDimensions(absl::string_view key, std::vector<int64_t>* out);

  // Required object member `key`.
  absl::StatusOr<JsonReader> Object(absl::string_view key);
  // Required array member `key`: `fn` for each element, whose path is "key[i]".
  absl::Status ForEach(absl::string_view key, const std::function<absl::Status(JsonReader&)>& fn);
  // Required object member `key`: `fn` for each of its members, path "key.name".
  absl::Status ForEachMember(
      absl::string_view key,
      const std::function<absl::Status(const std::string&, JsonReader&)>& fn);

  // "<path>.<key> is not a known key; <path> takes: a, b" for a member never
  // asked for through Find, Read, Object or ForEach.
  absl::Status CheckNoUnknownKeys() const;

 private:
  absl::Status MissingOrNotObject(absl::string_view key) const;
  absl::Status Mistyped(absl::string_view field, absl::string_view expected,
                        const nlohmann::json& value) const;

  absl::Status Convert(const nlohmann::json& v, absl::string_view field, bool* out) const;
  absl::Status Convert(const nlohmann::json& v, absl::string_view field, int* out) const;
  absl::Status Convert(const nlohmann::json& v, absl::string_view field, int64_t* out) const;
  absl::Status Convert(const nlohmann::json& v, absl::string_view field, uint64_t* out) const;
  absl::Status Convert(const nlohmann::json& v, absl::string_view field, float* out) const;
  absl::Status Convert(const nlohmann::json& v, absl::string_view field, double* out) const;
  absl::Status Convert(const nlohmann::json& v, absl::string_view field, std::string* out) const;
  absl::Status Convert(const nlohmann::json& v, absl::string_view field,
                       std::vector<int64_t>* out) const;
  absl::Status Convert(const nlohmann::json& v, absl::string_view field,
                       std::vector<std::string>* out) const;
  absl::Status Convert(const nlohmann::json& v, absl::string_view field,
                       std::map<std::string, std::string>* out) const;

  const nlohmann::json* value_;
  JsonErrorFn error_;
  std::string path_;
  std::set<std::string, std::less<>> known_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_JSON_READER_H_
