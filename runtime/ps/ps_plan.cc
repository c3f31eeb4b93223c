#include "runtime/ps/ps_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/json_reader.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

using json = nlohmann::json;

json SpecToJson(const VariableSpec& spec) {
  json dims = json::array();
  for (int64_t d : spec.shape.dims()) dims.push_back(d);
  return {{"name", spec.name},
          {"shape", dims},
          {"dtype", std::string(DTypeName(spec.dtype))},
          {"initializer", spec.initializer.ToString()},
          {"sparse", spec.sparse},
          {"trainable", spec.trainable},
          {"moving_average_momentum", spec.moving_average_momentum}};
}

absl::Status ReadSpec(JsonReader& r, VariableSpec* spec) {
  MESHTRAIN_RETURN_IF_ERROR(r.CheckObject());
  std::vector<int64_t> dims;
  std::string dtype, initializer;
  MESHTRAIN_RETURN_IF_ERROR(r.Read("name", &spec->name));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadDimensions("shape", &dims));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("dtype", &dtype));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("initializer", &initializer));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("sparse", &spec->sparse));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("trainable", &spec->trainable));
  MESHTRAIN_RETURN_IF_ERROR(
      r.ReadOptional("moving_average_momentum", &spec->moving_average_momentum));
  spec->shape = Shape(absl::MakeConstSpan(dims));
  MESHTRAIN_ASSIGN_OR_RETURN(spec->dtype, ParseDType(dtype));
  MESHTRAIN_ASSIGN_OR_RETURN(spec->initializer, Initializer::Parse(initializer));
  return absl::OkStatus();
}

absl::Status ReadPartition(JsonReader& r, Partition* p) {
  MESHTRAIN_RETURN_IF_ERROR(r.CheckObject());
  MESHTRAIN_RETURN_IF_ERROR(r.Read("variable", &p->variable));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("index", &p->index));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("row_begin", &p->row_begin));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("rows", &p->rows));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("bytes", &p->bytes));
  return r.Read("ps", &p->ps);
}

absl::Status ReadOptimizer(JsonReader& o, OptimizerConfig* out) {
  MESHTRAIN_RETURN_IF_ERROR(o.Read("type", &out->type));
  MESHTRAIN_RETURN_IF_ERROR(o.Read("learning_rate", &out->learning_rate));
  MESHTRAIN_RETURN_IF_ERROR(o.Read("momentum", &out->momentum));
  MESHTRAIN_RETURN_IF_ERROR(o.Read("nesterov", &out->nesterov));
  MESHTRAIN_RETURN_IF_ERROR(o.Read("beta1", &out->beta1));
  MESHTRAIN_RETURN_IF_ERROR(o.Read("beta2", &out->beta2));
  MESHTRAIN_RETURN_IF_ERROR(o.Read("epsilon", &out->epsilon));
  MESHTRAIN_RETURN_IF_ERROR(o.Read("exclude_from_weight_decay", &out->exclude_from_weight_decay));
  if (const json* wd = o.Find("weight_decay"); wd != nullptr && !wd->is_null()) {
    float weight_decay = 0.0f;
    MESHTRAIN_RETURN_IF_ERROR(o.Read("weight_decay", &weight_decay));
    out->weight_decay = weight_decay;
  }
  MESHTRAIN_ASSIGN_OR_RETURN(JsonReader s, o.Object("schedule"));
  return ReadLearningRateScheduleFields(s, &out->schedule);
}

absl::Status ReadRules(JsonReader& r, UpdateRules* out) {
  MESHTRAIN_RETURN_IF_ERROR(r.Read("num_workers", &out->num_workers));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("max_staleness", &out->max_staleness));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("staleness_scaling", &out->staleness_scaling));
  MESHTRAIN_RETURN_IF_ERROR(r.Read("warmup_steps", &out->warmup_steps));
  return r.Read("sync_replicas", &out->sync_replicas);
}

// One distinct ps task index per slot.
absl::Status CheckPsTasks(const std::vector<int>& ps_tasks, int num_ps) {
  if (static_cast<int>(ps_tasks.size()) != num_ps) {
    return absl::InvalidArgumentError(
        absl::StrCat("ps_tasks: ", ps_tasks.size(), " tasks for ", num_ps, " ps slots"));
  }
  for (size_t i = 0; i < ps_tasks.size(); ++i) {
    if (ps_tasks[i] < 0 || std::count(ps_tasks.begin(), ps_tasks.end(), ps_tasks[i]) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("ps_tasks: ps:", ps_tasks[i], " is negative or holds two slots"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PsPlan> ParsePlan(JsonReader& root) {
  PsPlan plan;
  MESHTRAIN_RETURN_IF_ERROR(root.CheckObject());
  MESHTRAIN_RETURN_IF_ERROR(root.ForEach(
      "variables", [&](JsonReader& s) { return ReadSpec(s, &plan.specs.emplace_back()); }));
  std::vector<Partition> partitions;
  MESHTRAIN_RETURN_IF_ERROR(root.ForEach(
      "partitions", [&](JsonReader& p) { return ReadPartition(p, &partitions.emplace_back()); }));
  int num_ps = 0;
  MESHTRAIN_RETURN_IF_ERROR(root.Read("num_ps", &num_ps));
  MESHTRAIN_ASSIGN_OR_RETURN(plan.placement,
                             Placement::Create(plan.specs, num_ps, std::move(partitions)));
  std::vector<int64_t> ps_tasks;
  for (int ps = 0; ps < num_ps; ++ps) ps_tasks.push_back(ps);
  MESHTRAIN_RETURN_IF_ERROR(root.ReadOptional("ps_tasks", &ps_tasks));
  for (int64_t ps : ps_tasks) {
    plan.ps_tasks.push_back(static_cast<int>(std::clamp<int64_t>(ps, -1, 1 << 20)));
  }
  MESHTRAIN_RETURN_IF_ERROR(CheckPsTasks(plan.ps_tasks, num_ps));
  MESHTRAIN_ASSIGN_OR_RETURN(JsonReader optimizer, root.Object("optimizer"));
  MESHTRAIN_RETURN_IF_ERROR(ReadOptimizer(optimizer, &plan.optimizer));
  MESHTRAIN_RETURN_IF_ERROR(root.Read("seed", &plan.seed));
  MESHTRAIN_RETURN_IF_ERROR(root.Read("data_path", &plan.data_path));
  std::string wire_dtype = "float32";
  MESHTRAIN_RETURN_IF_ERROR(root.ReadOptional("wire_dtype", &wire_dtype));
  MESHTRAIN_ASSIGN_OR_RETURN(plan.wire_dtype, ParseWireDtype(wire_dtype));
  MESHTRAIN_ASSIGN_OR_RETURN(JsonReader rules, root.Object("rules"));
  MESHTRAIN_RETURN_IF_ERROR(ReadRules(rules, &plan.rules));
  MESHTRAIN_RETURN_IF_ERROR(ValidateUpdateRules(plan.rules));
  return plan;
}

}  // namespace

absl::Status ValidateUpdateRules(const UpdateRules& r) {
  if (r.num_workers < 1) {
    return absl::InvalidArgumentError("parameter_server needs at least one training worker");
  }
  if (r.max_staleness < -1) {
    return absl::InvalidArgumentError(absl::StrCat("strategy.max_staleness: ", r.max_staleness,
                                                   " (use -1 for no bound, or >= 0)"));
  }
  if (r.warmup_steps < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("strategy.warmup_steps: ", r.warmup_steps, " < 0"));
  }
  if (r.sync_replicas < 0 || r.sync_replicas > r.num_workers) {
    return absl::InvalidArgumentError(
        absl::StrCat("strategy.sync_replicas: ", r.sync_replicas, " with ", r.num_workers,
                     " training workers; use 0 (asynchronous) or 1..", r.num_workers,
                     " (workers minus the backup workers)"));
  }
  if (r.sync_replicas > 0 && (r.max_staleness >= 0 || r.staleness_scaling || r.warmup_steps > 0)) {
    return absl::InvalidArgumentError(
        "strategy.sync_replicas: synchronous steps have no stale gradients to bound, scale or warm "
        "up; drop max_staleness, staleness_scaling and warmup_steps, or set sync_replicas to 0");
  }
  return absl::OkStatus();
}

std::string PsPlan::ToJson() const {
  json variables = json::array();
  for (const VariableSpec& spec : specs) variables.push_back(SpecToJson(spec));
  json partitions = json::array();
  for (const Partition& p : placement.partitions()) {
    partitions.push_back({{"variable", p.variable},
                          {"index", p.index},
                          {"row_begin", p.row_begin},
                          {"rows", p.rows},
                          {"bytes", p.bytes},
                          {"ps", p.ps}});
  }
  json root = {{"variables", variables},
               {"num_ps", placement.num_ps()},
               {"ps_tasks", Tasks()},
               {"partitions", partitions},
               {"optimizer",
                {{"type", optimizer.type},
                 {"learning_rate", optimizer.learning_rate},
                 {"momentum", optimizer.momentum},
                 {"nesterov", optimizer.nesterov},
                 {"beta1", optimizer.beta1},
                 {"beta2", optimizer.beta2},
                 {"epsilon", optimizer.epsilon},
                 {"weight_decay",
                  optimizer.weight_decay.has_value() ? json(*optimizer.weight_decay) : json()},
                 {"exclude_from_weight_decay", optimizer.exclude_from_weight_decay},
                 {"schedule",
                  {{"schedule", optimizer.schedule.schedule},
                   {"decay_steps", optimizer.schedule.decay_steps},
                   {"decay_rate", optimizer.schedule.decay_rate},
                   {"staircase", optimizer.schedule.staircase},
                   {"alpha", optimizer.schedule.alpha},
                   {"warmup_steps", optimizer.schedule.warmup_steps},
                   {"warmup_initial", optimizer.schedule.warmup_initial}}}}},
               {"seed", seed},
               {"data_path", data_path},
               {"wire_dtype", WireDtypeName(wire_dtype)},
               {"rules",
                {{"num_workers", rules.num_workers},
                 {"max_staleness", rules.max_staleness},
                 {"staleness_scaling", rules.staleness_scaling},
                 {"warmup_steps", rules.warmup_steps},
                 {"sync_replicas", rules.sync_replicas}}}};
  return root.dump();
}

absl::StatusOr<PsPlan> PsPlan::FromJson(absl::string_view text) {
  absl::StatusOr<json> root = ParseJson(text);
  if (!root.ok()) return Annotate(root.status(), "ps plan");
  // Annotate names the source of every error, the reader's and the checks'.
  JsonReader reader(*root, [](absl::string_view field, absl::string_view problem) {
    return absl::InvalidArgumentError(JsonFieldMessage(field, problem));
  });
  absl::StatusOr<PsPlan> plan = ParsePlan(reader);
  if (!plan.ok()) return Annotate(plan.status(), "ps plan");
  return plan;
}

absl::Status PsPlan::CheckModel(const std::vector<VariableSpec>& model) const {
  const std::string fix =
      "; every task must run the same job config (the chief's plan is what the ps tasks hold)";
  if (model.size() != specs.size()) {
    return absl::FailedPreconditionError(absl::StrCat("this worker's model has ", model.size(),
                                                      " variables, the chief's plan ", specs.size(),
                                                      fix));
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    const VariableSpec& a = model[i];
    const VariableSpec& b = specs[i];
    if (a.name != b.name || a.shape != b.shape || a.dtype != b.dtype || a.sparse != b.sparse ||
        a.trainable != b.trainable) {
      return absl::FailedPreconditionError(
          absl::StrCat("variable ", i, ": this worker has ", a.name, a.shape.ToString(),
                       ", the chief's plan ", b.name, b.shape.ToString(), fix));
    }
  }
  return absl::OkStatus();
}

int PsPlan::SlotOf(int ps_task) const {
  if (ps_tasks.empty()) return ps_task >= 0 && ps_task < placement.num_ps() ? ps_task : -1;
  auto it = std::find(ps_tasks.begin(), ps_tasks.end(), ps_task);
  return it == ps_tasks.end() ? -1 : static_cast<int>(it - ps_tasks.begin());
}

int PsPlan::TaskOf(int slot) const { return ps_tasks.empty() ? slot : ps_tasks.at(slot); }

std::vector<int> PsPlan::Tasks() const {
  std::vector<int> tasks;
  for (int slot = 0; slot < placement.num_ps(); ++slot) tasks.push_back(TaskOf(slot));
  return tasks;
}

}  // namespace meshtrain
