#include "runtime/checkpoint/manifest.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/json_reader.h"
#include "runtime/base/quote.h"
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

absl::Status ReadInput(JsonReader& r, InputRecord* out) {
  MESHTRAIN_RETURN_IF_ERROR(r.ReadAtLeast("epoch", 0, &out->epoch));
  return r.ReadAtLeast("step", 0, &out->step);
}

absl::Status ReadFile(JsonReader& r, FileRecord* out) {
  MESHTRAIN_RETURN_IF_ERROR(r.CheckObject());
  std::string crc;
  MESHTRAIN_RETURN_IF_ERROR(r.Read("name", &out->name));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadAtLeast("bytes", 0, &out->bytes));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("crc32c", &crc));
  if (out->name.empty() || out->name.find('/') != std::string::npos || out->name == "." ||
      out->name == "..") {
    return r.Error(r.PathOf("name"),
                   absl::StrCat(QuoteForMessage(out->name), " is not a plain file name"));
  }
  uint32_t value = 0;
  if (crc.size() != 8 || !absl::SimpleHexAtoi(crc, &value)) {
    return r.Error(r.PathOf("crc32c"), absl::StrCat(QuoteForMessage(crc), " is not 8 hex digits"));
  }
  out->crc32c = value;
  return absl::OkStatus();
}

absl::Status ReadPartition(JsonReader& r, PartitionRecord* out) {
  MESHTRAIN_RETURN_IF_ERROR(r.CheckObject());
  MESHTRAIN_RETURN_IF_ERROR(r.Read("file", &out->file));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("key", &out->key));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadAtLeast("row_offset", 0, &out->row_offset));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadAtLeast("rows", 0, &out->rows));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadAtLeast("updates", 0, &out->updates));
  return r.Read("slots", &out->slots);
}

absl::Status ReadVariable(JsonReader& r, VariableRecord* out) {
  MESHTRAIN_RETURN_IF_ERROR(r.CheckObject());
  std::string dtype;
  MESHTRAIN_RETURN_IF_ERROR(r.Read("name", &out->name));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("dtype", &dtype));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadDimensions("shape", &out->shape));
  absl::StatusOr<DType> parsed = ParseDType(dtype);
  if (!parsed.ok())
    return r.Error(r.PathOf("dtype"), absl::StrCat(QuoteForMessage(dtype), " is unknown"));
  out->dtype = *parsed;
  return r.ForEach("partitions", [&](JsonReader& p) {
    MESHTRAIN_RETURN_IF_ERROR(ReadPartition(p, &out->partitions.emplace_back()));
    return absl::OkStatus();
  });
}

// The partitions of `v` sorted, covering [0, rows) exactly once; else a reason.
std::string CheckCoverage(VariableRecord& v) {
  std::sort(v.partitions.begin(), v.partitions.end(),
            [](const PartitionRecord& a, const PartitionRecord& b) {
              return a.row_offset < b.row_offset;
            });
  const int64_t rows = RowsOf(v.shape);
  int64_t covered = 0;
  for (const PartitionRecord& p : v.partitions) {
    if (p.row_offset != covered || p.rows < 0) {
      return absl::StrCat(
          "variable ", QuoteForMessage(v.name), ": partition at row ", p.row_offset,
          p.row_offset < covered ? " overlaps rows before " : " leaves rows unheld from ", covered);
    }
    covered += p.rows;
  }
  if (covered != rows) {
    return absl::StrCat("variable ", QuoteForMessage(v.name), ": partitions hold ", covered,
                        " of its ", rows, " rows");
  }
  return "";
}

// The format and version, which must be this code's.
absl::Status CheckFormat(JsonReader& r) {
  std::string format;
  int64_t version = 0;
  MESHTRAIN_RETURN_IF_ERROR(r.CheckObject());
  MESHTRAIN_RETURN_IF_ERROR(r.Read("format", &format));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadAtLeast("version", 0, &version));
  if (format != kManifestFormat || version != kManifestVersion) {
    return r.Error("", absl::StrCat("has format ", QuoteForMessage(format), " version ", version,
                                    ", not ", kManifestFormat, " version ", kManifestVersion));
  }
  return absl::OkStatus();
}

// Where training stands: step, final, input positions, seed, commit time.
absl::Status ReadProgress(JsonReader& r, Manifest* m) {
  MESHTRAIN_RETURN_IF_ERROR(r.ReadAtLeast("step", 0, &m->step));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("final", &m->final));
  MESHTRAIN_ASSIGN_OR_RETURN(JsonReader input, r.Object("input"));
  MESHTRAIN_RETURN_IF_ERROR(ReadInput(input, &m->input));
  MESHTRAIN_RETURN_IF_ERROR(input.ForEachMember(
      "tasks",
      [&](const std::string& task, JsonReader& t) { return ReadInput(t, &m->task_inputs[task]); }));
  if (const Json* global = input.Find("global"); global != nullptr) m->input_global = *global;
  if (const Json* layout = input.Find("layout"); layout != nullptr) m->input_layout = *layout;
  MESHTRAIN_ASSIGN_OR_RETURN(JsonReader rng, r.Object("rng"));
  int64_t seed = 0;
  MESHTRAIN_RETURN_IF_ERROR(rng.ReadAtLeast("seed", 0, &seed));
  m->seed = static_cast<uint64_t>(seed);
  return r.ReadAtLeast("unix_micros", 0, &m->unix_micros);
}

// Who wrote it: the strategy, the cluster shape and the optimizer.
absl::Status ReadStrategy(JsonReader& r, Manifest* m) {
  MESHTRAIN_ASSIGN_OR_RETURN(JsonReader strategy, r.Object("strategy"));
  int64_t workers = 0, ps = 0, replicas = 0;
  MESHTRAIN_RETURN_IF_ERROR(strategy.Read("name", &m->strategy));
  MESHTRAIN_RETURN_IF_ERROR(strategy.ReadAtLeast("num_workers", 1, &workers));
  MESHTRAIN_RETURN_IF_ERROR(strategy.ReadAtLeast("num_ps", 0, &ps));
  MESHTRAIN_RETURN_IF_ERROR(strategy.ReadAtLeast("replicas_in_sync", 1, &replicas));
  m->num_workers = static_cast<int>(workers);
  m->num_ps = static_cast<int>(ps);
  m->replicas_in_sync = static_cast<int>(replicas);
  MESHTRAIN_ASSIGN_OR_RETURN(JsonReader optimizer, r.Object("optimizer"));
  MESHTRAIN_RETURN_IF_ERROR(optimizer.Read("type", &m->optimizer));
  return optimizer.Read("slots", &m->slot_names);
}

// `v`'s partitions cover its rows once, lie in listed files and hold every slot;
// else a reason.
std::string CheckVariable(const Manifest& m, VariableRecord& v) {
  if (std::string why = CheckCoverage(v); !why.empty()) return why;
  for (const PartitionRecord& p : v.partitions) {
    const bool listed = std::any_of(m.files.begin(), m.files.end(),
                                    [&](const FileRecord& f) { return f.name == p.file; });
    if (!listed) {
      return absl::StrCat("variable ", QuoteForMessage(v.name), " names file ",
                          QuoteForMessage(p.file), ", which the manifest does not list");
    }
    for (const std::string& slot : m.slot_names) {
      if (p.slots.count(slot) == 0) {
        return absl::StrCat("variable ", QuoteForMessage(v.name), " rows from ", p.row_offset,
                            " have no ", QuoteForMessage(slot), " slot");
      }
    }
  }
  return "";
}

}  // namespace

int64_t RowsOf(const std::vector<int64_t>& shape) { return shape.empty() ? 1 : shape[0]; }

std::string ManifestToJson(const Manifest& m) {
  Json tasks = Json::object();
  for (const auto& [task, input] : m.task_inputs)
    tasks[task] = {{"epoch", input.epoch}, {"step", input.step}};
  Json input = {{"epoch", m.input.epoch}, {"step", m.input.step}, {"tasks", tasks}};
  if (!m.input_global.is_null()) input["global"] = m.input_global;
  if (!m.input_layout.is_null()) input["layout"] = m.input_layout;
  Json variables = Json::array();
  for (const VariableRecord& v : m.variables) variables.push_back(VariableToJson(v));
  Json files = Json::array();
  for (const FileRecord& f : m.files) files.push_back(FileToJson(f));
  Json j = {
      {"format", std::string(kManifestFormat)},
      {"version", kManifestVersion},
      {"step", m.step},
      {"final", m.final},
      {"input", std::move(input)},
      {"rng",
       {{"seed", m.seed},
        {"data_order", "per epoch a Fisher-Yates shuffle from mt19937_64(DeriveSeed(seed, epoch))"},
        {"initial_values", "a pure function of (seed, variable name, element index)"}}},
      {"strategy",
       {{"name", m.strategy},
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
  auto corrupt = [path = std::string(path)](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("checkpoint manifest ", path, " is corrupt: ", what,
                                            "; the checkpoint will not be restored"));
  };
  absl::StatusOr<Json> j = ParseJson(text);
  if (!j.ok()) return corrupt(absl::StrCat("it does not parse: ", j.status().message()));
  JsonReader r(*j, [corrupt](absl::string_view field, absl::string_view problem) {
    return corrupt(JsonFieldMessage(field, problem));
  });
  Manifest m;
  MESHTRAIN_RETURN_IF_ERROR(CheckFormat(r));
  MESHTRAIN_RETURN_IF_ERROR(ReadProgress(r, &m));
  MESHTRAIN_RETURN_IF_ERROR(ReadStrategy(r, &m));
  MESHTRAIN_RETURN_IF_ERROR(
      r.ForEach("files", [&](JsonReader& f) { return ReadFile(f, &m.files.emplace_back()); }));
  MESHTRAIN_RETURN_IF_ERROR(r.ForEach("variables", [&](JsonReader& v) {
    MESHTRAIN_RETURN_IF_ERROR(ReadVariable(v, &m.variables.emplace_back()));
    if (std::string why = CheckVariable(m, m.variables.back()); !why.empty()) return corrupt(why);
    return absl::OkStatus();
  }));
  if (const Json* meta = r.Find("meta"); meta != nullptr) m.meta = *meta;
  return m;
}

nlohmann::json PartRecordToJson(const PartRecord& part) {
  Json variables = Json::array();
  for (const VariableRecord& v : part.variables) variables.push_back(VariableToJson(v));
  return {{"file", FileToJson(part.file)}, {"variables", variables}};
}

absl::StatusOr<PartRecord> PartRecordFromJson(const nlohmann::json& j) {
  JsonReader r(j, InvalidJsonIn("checkpoint part record"), "part");
  PartRecord part;
  MESHTRAIN_RETURN_IF_ERROR(r.CheckObject());
  MESHTRAIN_ASSIGN_OR_RETURN(JsonReader file, r.Object("file"));
  MESHTRAIN_RETURN_IF_ERROR(ReadFile(file, &part.file));
  MESHTRAIN_RETURN_IF_ERROR(r.ForEach(
      "variables", [&](JsonReader& v) { return ReadVariable(v, &part.variables.emplace_back()); }));
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
            "checkpoint: variable ", QuoteForMessage(v.name), " is ", DTypeName(v.dtype), " in ",
            QuoteForMessage(part.file.name), " but another part has it as ", DTypeName(m.dtype),
            " with another shape"));
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
