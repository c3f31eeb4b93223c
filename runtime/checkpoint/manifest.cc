#include "runtime/checkpoint/manifest.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

using Json = nlohmann::json;

Json VariableToJson(const VariableRecord& v) {
  Json partitions = Json::array();
  for (const PartitionRecord& p : v.partitions) {
    partitions.push_back({{"file", p.file},
                          {"key", p.key},
                          {"row_offset", p.row_offset},
                          {"rows", p.rows},
                          {"updates", p.updates},
                          {"slots", p.slots}});
  }
  return {{"name", v.name},
          {"dtype", std::string(SafetensorsDTypeName(v.dtype))},
          {"shape", v.shape},
          {"partitions", partitions}};
}

Json FileToJson(const FileRecord& f) {
  return {{"name", f.name}, {"bytes", f.bytes}, {"crc32c", absl::StrFormat("%08x", f.crc32c)}};
}

// Reads JSON fields with exact types; the first problem becomes `error`
// (prefixed by the caller with the file or peer it came from).
class Reader {
 public:
  explicit Reader(std::string* error) : error_(error) {}

  bool Fail(const std::string& what) {
    if (error_->empty()) *error_ = what;
    return false;
  }
  bool Object(const Json& j, absl::string_view where) {
    return j.is_object() || Fail(absl::StrCat(where, " is not an object"));
  }
  const Json* Field(const Json& j, absl::string_view key, absl::string_view where) {
    if (!j.is_object()) {
      Fail(absl::StrCat(where, " is not an object"));
      return nullptr;
    }
    auto it = j.find(std::string(key));
    if (it == j.end()) {
      Fail(absl::StrCat(where, " has no '", key, "'"));
      return nullptr;
    }
    return &*it;
  }
  bool Int(const Json& j, absl::string_view key, absl::string_view where, int64_t* out,
           int64_t min = 0) {
    const Json* f = Field(j, key, where);
    if (f == nullptr) return false;
    if (!f->is_number_integer() || f->get<int64_t>() < min) {
      return Fail(absl::StrCat(where, ".", key, " = ", f->dump(), " is not an integer >= ", min));
    }
    *out = f->get<int64_t>();
    return true;
  }
  bool String(const Json& j, absl::string_view key, absl::string_view where, std::string* out) {
    const Json* f = Field(j, key, where);
    if (f == nullptr) return false;
    if (!f->is_string()) return Fail(absl::StrCat(where, ".", key, " is not a string"));
    *out = f->get<std::string>();
    return true;
  }
  bool Shape(const Json& j, absl::string_view where, std::vector<int64_t>* out) {
    const Json* f = Field(j, "shape", where);
    if (f == nullptr) return false;
    if (!f->is_array()) return Fail(absl::StrCat(where, ".shape is not an array"));
    for (const Json& d : *f) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        return Fail(absl::StrCat(where, ".shape ", f->dump(), " has a bad dimension"));
      }
      out->push_back(d.get<int64_t>());
    }
    return true;
  }
  bool Input(const Json& j, absl::string_view where, InputRecord* out) {
    return Int(j, "epoch", where, &out->epoch) && Int(j, "step", where, &out->step);
  }
  bool File(const Json& j, absl::string_view where, FileRecord* out) {
    std::string crc;
    if (!String(j, "name", where, &out->name) || !Int(j, "bytes", where, &out->bytes) ||
        !String(j, "crc32c", where, &crc)) {
      return false;
    }
    if (out->name.empty() || out->name.find('/') != std::string::npos || out->name == "." ||
        out->name == "..") {
      return Fail(absl::StrCat(where, ".name '", out->name, "' is not a plain file name"));
    }
    uint32_t value = 0;
    if (crc.size() != 8 || !absl::SimpleHexAtoi(crc, &value)) {
      return Fail(absl::StrCat(where, ".crc32c '", crc, "' is not 8 hex digits"));
    }
    out->crc32c = value;
    return true;
  }
  bool Variable(const Json& j, absl::string_view where, VariableRecord* out) {
    std::string dtype;
    if (!String(j, "name", where, &out->name) || !String(j, "dtype", where, &dtype) ||
        !Shape(j, where, &out->shape)) {
      return false;
    }
    absl::StatusOr<DType> parsed = ParseDType(dtype);
    if (!parsed.ok()) return Fail(absl::StrCat(where, ".dtype '", dtype, "' is unknown"));
    out->dtype = *parsed;
    const Json* partitions = Field(j, "partitions", where);
    if (partitions == nullptr) return false;
    if (!partitions->is_array()) return Fail(absl::StrCat(where, ".partitions is not an array"));
    for (size_t i = 0; i < partitions->size(); ++i) {
      const Json& pj = (*partitions)[i];
      const std::string pw = absl::StrCat(where, ".partitions[", i, "]");
      PartitionRecord p;
      if (!String(pj, "file", pw, &p.file) || !String(pj, "key", pw, &p.key) ||
          !Int(pj, "row_offset", pw, &p.row_offset) || !Int(pj, "rows", pw, &p.rows) ||
          !Int(pj, "updates", pw, &p.updates)) {
        return false;
      }
      const Json* slots = Field(pj, "slots", pw);
      if (slots == nullptr || !Object(*slots, absl::StrCat(pw, ".slots"))) return false;
      for (auto it = slots->begin(); it != slots->end(); ++it) {
        if (!it.value().is_string()) return Fail(absl::StrCat(pw, ".slots.", it.key(), " is not a string"));
        p.slots[it.key()] = it.value().get<std::string>();
      }
      out->partitions.push_back(std::move(p));
    }
    return true;
  }

 private:
  std::string* error_;
};

// The partitions of `v` sorted, covering [0, rows) exactly once; else a reason.
std::string CheckCoverage(VariableRecord& v) {
  std::sort(v.partitions.begin(), v.partitions.end(),
            [](const PartitionRecord& a, const PartitionRecord& b) { return a.row_offset < b.row_offset; });
  const int64_t rows = RowsOf(v.shape);
  int64_t covered = 0;
  for (const PartitionRecord& p : v.partitions) {
    if (p.row_offset != covered || p.rows < 0) {
      return absl::StrCat("variable ", v.name, ": partition at row ", p.row_offset,
                          p.row_offset < covered ? " overlaps rows before " : " leaves rows unheld from ",
                          covered);
    }
    covered += p.rows;
  }
  if (covered != rows) {
    return absl::StrCat("variable ", v.name, ": partitions hold ", covered, " of its ", rows, " rows");
  }
  return "";
}

}  // namespace

int64_t RowsOf(const std::vector<int64_t>& shape) { return shape.empty() ? 1 : shape[0]; }

std::string ManifestToJson(const Manifest& m) {
  Json tasks = Json::object();
  for (const auto& [task, input] : m.task_inputs) tasks[task] = {{"epoch", input.epoch}, {"step", input.step}};
  Json variables = Json::array();
  for (const VariableRecord& v : m.variables) variables.push_back(VariableToJson(v));
  Json files = Json::array();
  for (const FileRecord& f : m.files) files.push_back(FileToJson(f));
  Json j = {{"format", std::string(kManifestFormat)},
            {"version", kManifestVersion},
            {"step", m.step},
            {"final", m.final},
            {"input", {{"epoch", m.input.epoch}, {"step", m.input.step}, {"tasks", tasks}}},
            {"rng", {{"seed", m.seed},
                     {"data_order", "per epoch a Fisher-Yates shuffle from mt19937_64(DeriveSeed(seed, epoch))"},
                     {"initial_values", "a pure function of (seed, variable name, element index)"}}},
            {"strategy", {{"name", m.strategy},
                          {"num_workers", m.num_workers},
                          {"num_ps", m.num_ps},
                          {"replicas_in_sync", m.replicas_in_sync}}},
            {"optimizer", {{"type", m.optimizer}, {"slots", m.slot_names}}},
            {"variables", variables},
            {"files", files},
            {"unix_micros", m.unix_micros},
            {"meta", m.meta}};
  return j.dump(2) + "\n";
}

absl::StatusOr<Manifest> ParseManifest(absl::string_view text, absl::string_view path) {
  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("checkpoint manifest ", path, " is corrupt: ", what,
                                            "; the checkpoint will not be restored"));
  };
  Json j;
  try {
    j = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return corrupt(absl::StrCat("it does not parse as JSON: ", e.what()));
  }
  std::string error;
  Reader r(&error);
  Manifest m;
  std::string format;
  int64_t version = 0;
  if (!r.String(j, "format", "manifest", &format) || !r.Int(j, "version", "manifest", &version)) {
    return corrupt(error);
  }
  if (format != kManifestFormat || version != kManifestVersion) {
    return corrupt(absl::StrCat("format ", format, " version ", version, " is not ",
                                kManifestFormat, " version ", kManifestVersion));
  }
  const Json* input = r.Field(j, "input", "manifest");
  const Json* rng = r.Field(j, "rng", "manifest");
  const Json* strategy = r.Field(j, "strategy", "manifest");
  const Json* optimizer = r.Field(j, "optimizer", "manifest");
  const Json* variables = r.Field(j, "variables", "manifest");
  const Json* files = r.Field(j, "files", "manifest");
  const Json* final = r.Field(j, "final", "manifest");
  if (input == nullptr || rng == nullptr || strategy == nullptr || optimizer == nullptr ||
      variables == nullptr || files == nullptr || final == nullptr) {
    return corrupt(error);
  }
  int64_t seed = 0, workers = 0, ps = 0, replicas = 0;
  if (!r.Int(j, "step", "manifest", &m.step) || !r.Input(*input, "input", &m.input) ||
      !r.Int(*rng, "seed", "rng", &seed) || !r.String(*strategy, "name", "strategy", &m.strategy) ||
      !r.Int(*strategy, "num_workers", "strategy", &workers, 1) ||
      !r.Int(*strategy, "num_ps", "strategy", &ps) ||
      !r.Int(*strategy, "replicas_in_sync", "strategy", &replicas, 1) ||
      !r.String(*optimizer, "type", "optimizer", &m.optimizer) ||
      !r.Int(j, "unix_micros", "manifest", &m.unix_micros)) {
    return corrupt(error);
  }
  if (!final->is_boolean()) return corrupt("manifest.final is not a boolean");
  m.final = final->get<bool>();
  m.seed = static_cast<uint64_t>(seed);
  m.num_workers = static_cast<int>(workers);
  m.num_ps = static_cast<int>(ps);
  m.replicas_in_sync = static_cast<int>(replicas);
  const Json* tasks = r.Field(*input, "tasks", "input");
  const Json* slots = r.Field(*optimizer, "slots", "optimizer");
  if (tasks == nullptr || slots == nullptr || !r.Object(*tasks, "input.tasks")) return corrupt(error);
  for (auto it = tasks->begin(); it != tasks->end(); ++it) {
    if (!r.Input(it.value(), absl::StrCat("input.tasks.", it.key()), &m.task_inputs[it.key()])) {
      return corrupt(error);
    }
  }
  if (!slots->is_array()) return corrupt("optimizer.slots is not an array");
  for (const Json& s : *slots) {
    if (!s.is_string()) return corrupt("optimizer.slots holds a non-string");
    m.slot_names.push_back(s.get<std::string>());
  }
  if (!files->is_array()) return corrupt("manifest.files is not an array");
  for (size_t i = 0; i < files->size(); ++i) {
    FileRecord f;
    if (!r.File((*files)[i], absl::StrCat("files[", i, "]"), &f)) return corrupt(error);
    m.files.push_back(std::move(f));
  }
  if (!variables->is_array()) return corrupt("manifest.variables is not an array");
  for (size_t i = 0; i < variables->size(); ++i) {
    VariableRecord v;
    if (!r.Variable((*variables)[i], absl::StrCat("variables[", i, "]"), &v)) return corrupt(error);
    if (std::string why = CheckCoverage(v); !why.empty()) return corrupt(why);
    for (const PartitionRecord& p : v.partitions) {
      const bool listed = std::any_of(m.files.begin(), m.files.end(),
                                      [&](const FileRecord& f) { return f.name == p.file; });
      if (!listed) {
        return corrupt(absl::StrCat("variable ", v.name, " names file ", p.file,
                                    ", which the manifest does not list"));
      }
      for (const std::string& slot : m.slot_names) {
        if (p.slots.count(slot) == 0) {
          return corrupt(absl::StrCat("variable ", v.name, " rows from ", p.row_offset,
                                      " have no '", slot, "' slot"));
        }
      }
    }
    m.variables.push_back(std::move(v));
  }
  if (j.contains("meta")) m.meta = j["meta"];
  return m;
}

nlohmann::json PartRecordToJson(const PartRecord& part) {
  Json variables = Json::array();
  for (const VariableRecord& v : part.variables) variables.push_back(VariableToJson(v));
  return {{"file", FileToJson(part.file)}, {"variables", variables}};
}

absl::StatusOr<PartRecord> PartRecordFromJson(const nlohmann::json& j) {
  std::string error;
  Reader r(&error);
  PartRecord part;
  const Json* file = r.Field(j, "file", "part");
  const Json* variables = r.Field(j, "variables", "part");
  if (file == nullptr || variables == nullptr || !r.File(*file, "part.file", &part.file)) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint part record: ", error));
  }
  if (!variables->is_array()) {
    return absl::InvalidArgumentError("checkpoint part record: variables is not an array");
  }
  for (size_t i = 0; i < variables->size(); ++i) {
    VariableRecord v;
    if (!r.Variable((*variables)[i], absl::StrCat("part.variables[", i, "]"), &v)) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint part record: ", error));
    }
    part.variables.push_back(std::move(v));
  }
  return part;
}

absl::StatusOr<std::vector<VariableRecord>> MergeParts(const std::vector<PartRecord>& parts) {
  std::map<std::string, VariableRecord> merged;
  for (const PartRecord& part : parts) {
    for (const VariableRecord& v : part.variables) {
      auto [it, inserted] = merged.try_emplace(v.name, v);
      if (inserted) continue;
      VariableRecord& m = it->second;
      if (m.dtype != v.dtype || m.shape != v.shape) {
        return absl::InvalidArgumentError(absl::StrCat(
            "checkpoint: variable ", v.name, " is ", DTypeName(v.dtype), " in ", part.file.name,
            " but another part has it as ", DTypeName(m.dtype), " with another shape"));
      }
      m.partitions.insert(m.partitions.end(), v.partitions.begin(), v.partitions.end());
    }
  }
  std::vector<VariableRecord> out;
  for (auto& [name, v] : merged) {
    if (std::string why = CheckCoverage(v); !why.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint parts: ", why));
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace meshtrain
