#include "runtime/ps/ps_plan.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
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
          {"sparse", spec.sparse}};
}

absl::StatusOr<VariableSpec> SpecFromJson(const json& j) {
  VariableSpec spec;
  spec.name = j.at("name").get<std::string>();
  std::vector<int64_t> dims = j.at("shape").get<std::vector<int64_t>>();
  for (int64_t d : dims) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("variable ", spec.name, ": negative dimension"));
  }
  spec.shape = Shape(absl::MakeConstSpan(dims));
  MESHTRAIN_ASSIGN_OR_RETURN(spec.dtype, ParseDType(j.at("dtype").get<std::string>()));
  MESHTRAIN_ASSIGN_OR_RETURN(spec.initializer,
                             Initializer::Parse(j.at("initializer").get<std::string>()));
  spec.sparse = j.at("sparse").get<bool>();
  return spec;
}

absl::StatusOr<PsPlan> ParsePlan(const json& root) {
  PsPlan plan;
  for (const json& s : root.at("variables")) {
    MESHTRAIN_ASSIGN_OR_RETURN(VariableSpec spec, SpecFromJson(s));
    plan.specs.push_back(std::move(spec));
  }
  std::vector<Partition> partitions;
  for (const json& p : root.at("partitions")) {
    partitions.push_back(Partition{p.at("variable").get<int>(), p.at("index").get<int>(),
                                   p.at("row_begin").get<int64_t>(), p.at("rows").get<int64_t>(),
                                   p.at("bytes").get<int64_t>(), p.at("ps").get<int>()});
  }
  MESHTRAIN_ASSIGN_OR_RETURN(plan.placement, Placement::Create(plan.specs, root.at("num_ps").get<int>(),
                                                               std::move(partitions)));
  const json& o = root.at("optimizer");
  plan.optimizer.type = o.at("type").get<std::string>();
  plan.optimizer.learning_rate = o.at("learning_rate").get<float>();
  plan.optimizer.momentum = o.at("momentum").get<float>();
  plan.optimizer.nesterov = o.at("nesterov").get<bool>();
  plan.optimizer.beta1 = o.at("beta1").get<float>();
  plan.optimizer.beta2 = o.at("beta2").get<float>();
  plan.optimizer.epsilon = o.at("epsilon").get<float>();
  plan.seed = root.at("seed").get<uint64_t>();
  plan.data_path = root.at("data_path").get<std::string>();
  const json& r = root.at("rules");
  plan.rules.num_workers = r.at("num_workers").get<int>();
  plan.rules.max_staleness = r.at("max_staleness").get<int>();
  plan.rules.staleness_scaling = r.at("staleness_scaling").get<bool>();
  plan.rules.warmup_steps = r.at("warmup_steps").get<int64_t>();
  plan.rules.sync_replicas = r.at("sync_replicas").get<int>();
  MESHTRAIN_RETURN_IF_ERROR(ValidateUpdateRules(plan.rules));
  return plan;
}

}  // namespace

absl::Status ValidateUpdateRules(const UpdateRules& r) {
  if (r.num_workers < 1) {
    return absl::InvalidArgumentError("parameter_server needs at least one training worker");
  }
  if (r.max_staleness < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("strategy.max_staleness: ", r.max_staleness, " (use -1 for no bound, or >= 0)"));
  }
  if (r.warmup_steps < 0) {
    return absl::InvalidArgumentError(absl::StrCat("strategy.warmup_steps: ", r.warmup_steps, " < 0"));
  }
  if (r.sync_replicas < 0 || r.sync_replicas > r.num_workers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "strategy.sync_replicas: ", r.sync_replicas, " with ", r.num_workers,
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
               {"partitions", partitions},
               {"optimizer",
                {{"type", optimizer.type},
                 {"learning_rate", optimizer.learning_rate},
                 {"momentum", optimizer.momentum},
                 {"nesterov", optimizer.nesterov},
                 {"beta1", optimizer.beta1},
                 {"beta2", optimizer.beta2},
                 {"epsilon", optimizer.epsilon}}},
               {"seed", seed},
               {"data_path", data_path},
               {"rules",
                {{"num_workers", rules.num_workers},
                 {"max_staleness", rules.max_staleness},
                 {"staleness_scaling", rules.staleness_scaling},
                 {"warmup_steps", rules.warmup_steps},
                 {"sync_replicas", rules.sync_replicas}}}};
  return root.dump();
}

absl::StatusOr<PsPlan> PsPlan::FromJson(absl::string_view text) {
  json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError("ps plan: the JSON is malformed");
  try {
    absl::StatusOr<PsPlan> plan = ParsePlan(root);
    if (!plan.ok()) return Annotate(plan.status(), "ps plan");
    return plan;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("ps plan: ", e.what()));
  }
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
    if (a.name != b.name || a.shape != b.shape || a.dtype != b.dtype || a.sparse != b.sparse) {
      return absl::FailedPreconditionError(
          absl::StrCat("variable ", i, ": this worker has ", a.name, a.shape.ToString(),
                       ", the chief's plan ", b.name, b.shape.ToString(), fix));
    }
  }
  return absl::OkStatus();
}

}  // namespace meshtrain
