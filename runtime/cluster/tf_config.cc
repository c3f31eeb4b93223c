#include "runtime/cluster/tf_config.h"

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/json_reader.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"

namespace meshtrain {
namespace {

using Json = nlohmann::json;

constexpr absl::string_view kFromArgument = "TF_CONFIG";
constexpr absl::string_view kFromEnvironment = "environment variable TF_CONFIG";
constexpr absl::string_view kJobsInOrder[] = {kChiefJob, kWorkerJob, kPsJob, kEvaluatorJob};

// Makes the one-line errors: "<source> <field>: <message>".
JsonErrorFn TfConfigErrors(absl::string_view source) {
  return [source](absl::string_view field, absl::string_view message) {
    if (field.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": ", message));
    return absl::InvalidArgumentError(absl::StrCat(source, " ", field, ": ", message));
  };
}

bool IsKnownJob(absl::string_view job) {
  for (absl::string_view known : kJobsInOrder) {
    if (job == known) return true;
  }
  return false;
}

std::string UnknownJobMessage(absl::string_view job) {
  std::string message = absl::StrCat("unknown job type ", QuoteForMessage(job),
                                     "; allowed job types are ", kAllowedJobs);
  if (job == "master") {
    absl::StrAppend(&message,
                    " ('master' is TensorFlow 1's name for the chief: rename it 'chief')");
  }
  return message;
}

// The cluster's jobs in the order chief, worker, ps, evaluator: "chief, worker".
std::string JobList(const ClusterSpec& spec) {
  std::vector<absl::string_view> jobs;
  for (absl::string_view job : kJobsInOrder) {
    if (spec.has_job(job)) jobs.push_back(job);
  }
  return absl::StrJoin(jobs, ", ");
}

// "2 tasks, indices 0..1" or "1 task, index 0".
std::string IndexRange(int num_tasks) {
  if (num_tasks == 1) return "1 task, index 0";
  return absl::StrCat(num_tasks, " tasks, indices 0..", num_tasks - 1);
}

// An integer as TensorFlow's int() accepts it: a JSON integer or a string of
// one ("1"). Floats, booleans and other strings are not integers.
bool ReadInteger(const Json& value, int64_t* out) {
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    *out = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? std::numeric_limits<int64_t>::max()
               : static_cast<int64_t>(u);
    return true;
  }
  if (value.is_number_integer()) {
    *out = value.get<int64_t>();
    return true;
  }
  if (value.is_string()) return absl::SimpleAtoi(value.get<std::string>(), out);
  return false;
}

absl::Status ParseJob(const JsonErrorFn& error, const std::string& job, const Json& value,
                      std::vector<std::string>* addresses) {
  const std::string field = absl::StrCat("cluster.", job);
  if (!value.is_array()) {
    std::string fix = absl::StrCat("write \"", job, "\": [\"host:port\", ...] in task index order");
    if (value.is_object()) absl::StrAppend(&fix, " (maps of index to address are not supported)");
    return error(field, absl::StrCat("expected a list of \"host:port\" strings, got ",
                                     DescribeJson(value), "; ", fix));
  }
  if (value.empty()) {
    return error(field, "is an empty list; list at least one \"host:port\" or remove the job");
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string element_field = absl::StrCat(field, "[", i, "]");
    const Json& element = value[i];
    if (!element.is_string()) {
      return error(element_field,
                   absl::StrCat("expected a \"host:port\" string, got ", DescribeJson(element),
                                "; quote the address, e.g. \"localhost:2222\""));
    }
    const std::string address = element.get<std::string>();
    absl::StatusOr<HostPort> parsed = ParseHostPort(address);
    if (!parsed.ok()) return error(element_field, parsed.status().message());
    addresses->push_back(address);
  }
  return absl::OkStatus();
}

// Two tasks may not name one endpoint: the same host:port, or two loopback
// spellings (localhost, 127.x, ::1) with one port. One of them could not bind,
// and the other would wait out the whole startup timeout for it.
absl::Status CheckDistinctEndpoints(const JsonErrorFn& error, const ClusterSpec& spec) {
  std::map<std::string, TaskId> owner;  // endpoint key -> first task using it
  for (const TaskId& task : spec.AllTasks()) {
    const std::string& address = spec.address(task);
    const HostPort parsed = *ParseHostPort(address);  // ParseJob checked it
    auto [where, inserted] = owner.emplace(parsed.EndpointKey(), task);
    if (inserted) continue;
    const std::string& first = spec.address(where->second);
    std::string problem =
        first == address
            ? absl::StrCat("address ", QuoteForMessage(address), " is also ",
                           where->second.ToString(), "'s")
            : absl::StrCat("address ", QuoteForMessage(address), " names the same endpoint as ",
                           where->second.ToString(), " (", QuoteForMessage(first), ")");
    if (first != address && parsed.IsLoopback()) {
      absl::StrAppend(&problem, ": both are this host's loopback on port ", parsed.port);
    }
    return error(absl::StrCat("cluster.", task.job, "[", task.index, "]"),
                 absl::StrCat(problem, "; give every task its own host:port"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ClusterSpec> ParseCluster(const JsonErrorFn& error, const Json& root) {
  auto it = root.find("cluster");
  if (it == root.end()) {
    return error("cluster",
                 "missing; add \"cluster\": {\"worker\": [\"host:port\", ...]} "
                 "listing every task's address");
  }
  if (!it->is_object()) {
    return error(
        "cluster",
        absl::StrCat("expected an object mapping job names to address lists, "
                     "got ",
                     DescribeJson(*it), "; write \"cluster\": {\"worker\": [\"host:port\", ...]}"));
  }
  std::map<std::string, std::vector<std::string>> jobs;
  for (const auto& [job, value] : it->items()) {
    if (!IsKnownJob(job)) return error("cluster", UnknownJobMessage(job));
    absl::Status status = ParseJob(error, job, value, &jobs[job]);
    if (!status.ok()) return status;
  }
  ClusterSpec spec(std::move(jobs));
  if (spec.num_tasks(kChiefJob) > 1) {
    return error("cluster.chief", absl::StrCat(spec.num_tasks(kChiefJob),
                                               " addresses, but a cluster has at most one chief; "
                                               "keep one and move the others to \"worker\""));
  }
  if (spec.num_tasks(kEvaluatorJob) > 1) {
    return error("cluster.evaluator",
                 absl::StrCat(spec.num_tasks(kEvaluatorJob),
                              " addresses, but a cluster has at most one evaluator; keep one"));
  }
  if (spec.num_training_workers() == 0) {
    return error("cluster",
                 "no \"chief\" or \"worker\" job, so no task would train; "
                 "add \"worker\": [\"host:port\", ...]");
  }
  MESHTRAIN_RETURN_IF_ERROR(CheckDistinctEndpoints(error, spec));
  return spec;
}

absl::StatusOr<TaskId> ParseTask(const JsonErrorFn& error, const Json& task_json,
                                 const ClusterSpec& spec) {
  const std::string jobs = JobList(spec);
  auto type_it = task_json.find("type");
  if (type_it == task_json.end()) {
    return error("task.type", absl::StrCat("missing; set it to this process's job, one of the "
                                           "cluster's jobs: ",
                                           jobs));
  }
  if (!type_it->is_string()) {
    return error("task.type", absl::StrCat("expected a string, got ", DescribeJson(*type_it),
                                           "; set it to one of the cluster's jobs: ", jobs));
  }
  TaskId task;
  task.job = type_it->get<std::string>();
  if (!IsKnownJob(task.job)) return error("task.type", UnknownJobMessage(task.job));
  // An evaluator outside the cluster is legal (it joins no mesh): index 0 only.
  const bool listed = spec.has_job(task.job);
  if (!listed && task.job != kEvaluatorJob) {
    return error(
        "task.type",
        absl::StrCat(QuoteForMessage(task.job), " is not a job in cluster (jobs: ", jobs,
                     "); set task.type to one of them or add \"", task.job, "\" to cluster"));
  }
  const int num_tasks = listed ? spec.num_tasks(task.job) : 1;
  const std::string range = listed ? IndexRange(num_tasks) : "not in cluster, so index 0";
  const std::string fix = num_tasks == 1 ? "set task.index to 0" : "set task.index to one of them";

  auto index_it = task_json.find("index");
  if (index_it == task_json.end()) {
    return error("task.index", absl::StrCat("missing; set it to this task's position in job ",
                                            QuoteForMessage(task.job), " (", range, ")"));
  }
  int64_t index = 0;
  if (!ReadInteger(*index_it, &index)) {
    return error("task.index",
                 absl::StrCat("expected an integer, got ", DescribeJson(*index_it), "; job ",
                              QuoteForMessage(task.job), " has ", range, "; ", fix));
  }
  if (index < 0) {
    return error("task.index", absl::StrCat(index, " is negative; job ", QuoteForMessage(task.job),
                                            " has ", range, "; ", fix));
  }
  if (index >= num_tasks) {
    return error("task.index", absl::StrCat(index, " is out of range for job ",
                                            QuoteForMessage(task.job), " (", range, "); ", fix));
  }
  task.index = static_cast<int>(index);
  return task;
}

// An optional top-level string ("rpc_layer", "environment").
absl::Status ReadOptionalString(const JsonErrorFn& error, const Json& root, const char* key,
                                absl::string_view example, std::string* out) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) {
    return error(key, absl::StrCat("expected a string, got ", DescribeJson(*it), "; set it to ",
                                   example, " or remove it"));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::StatusOr<ClusterConfig> ParseFromJson(const JsonErrorFn& error, const Json& root) {
  if (!root.is_object()) {
    return error("", absl::StrCat("expected a JSON object, got ", DescribeJson(root),
                                  "; write {\"cluster\": {...}, \"task\": {\"type\": ..., "
                                  "\"index\": ...}}"));
  }
  ClusterConfig config;
  MESHTRAIN_ASSIGN_OR_RETURN(config.cluster, ParseCluster(error, root));

  auto task_it = root.find("task");
  if (task_it == root.end()) {
    return error("task",
                 "missing; add \"task\": {\"type\": \"worker\", \"index\": 0} naming "
                 "this process's task");
  }
  if (!task_it->is_object()) {
    return error("task", absl::StrCat("expected an object, got ", DescribeJson(*task_it),
                                      "; write \"task\": {\"type\": \"worker\", \"index\": 0}"));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(config.task, ParseTask(error, *task_it, config.cluster));

  auto trial_it = task_it->find("trial");
  if (trial_it != task_it->end() && !trial_it->is_null() &&
      !(trial_it->is_string() && trial_it->get<std::string>().empty())) {
    int64_t trial = 0;
    if (!ReadInteger(*trial_it, &trial) || trial < std::numeric_limits<int>::min() ||
        trial > std::numeric_limits<int>::max()) {
      return error("task.trial", absl::StrCat("expected an integer, got ", DescribeJson(*trial_it),
                                              "; set it to a number or remove it"));
    }
    config.trial = static_cast<int>(trial);
  }
  MESHTRAIN_RETURN_IF_ERROR(
      ReadOptionalString(error, root, "rpc_layer", "\"grpc\"", &config.rpc_layer));
  MESHTRAIN_RETURN_IF_ERROR(ReadOptionalString(error, root, "environment",
                                               "a string such as \"cloud\"", &config.environment));
  return config;
}

absl::StatusOr<ClusterConfig> Parse(absl::string_view json, absl::string_view source) {
  const JsonErrorFn error = TfConfigErrors(source);
  if (absl::StripAsciiWhitespace(json).empty()) {
    return error("",
                 "empty; set it to a JSON object such as "
                 "{\"cluster\": {\"worker\": [\"localhost:2222\"]}, "
                 "\"task\": {\"type\": \"worker\", \"index\": 0}}");
  }
  absl::StatusOr<Json> root = ParseJson(json);
  if (!root.ok()) {
    return error("", absl::StrCat(root.status().message(),
                                  "; fix the JSON there (keys and strings in double quotes, "
                                  "no trailing commas)"));
  }
  // Every access below checks the type first; this guards against a slip.
  try {
    return ParseFromJson(error, *root);
  } catch (const Json::exception& e) {
    return error("", absl::StrCat("cannot read: ", e.what()));
  }
}

// The role of `task` in words: "chief", "worker", "parameter server", ...
std::string RoleOf(const TaskId& task, const ClusterSpec& spec) {
  if (task.job == kChiefJob) return "chief";
  if (task.job == kWorkerJob) return task == spec.Chief() ? "chief (implicit: worker 0)" : "worker";
  if (task.job == kPsJob) return "parameter server";
  return "evaluator";
}

std::string TaskNames(const std::vector<TaskId>& tasks) {
  return absl::StrJoin(tasks, ", ",
                       [](std::string* out, const TaskId& t) { out->append(t.ToString()); });
}

// "cluster: 5 tasks (...)", a line per task, and the chief.
void DescribeTasks(const ClusterConfig& config, std::string* out) {
  const ClusterSpec& spec = config.cluster;
  const std::vector<TaskId> tasks = spec.AllTasks();
  std::vector<std::string> counts;
  for (absl::string_view job : kJobsInOrder) {
    if (spec.has_job(job)) counts.push_back(absl::StrCat(job, " ", spec.num_tasks(job)));
  }
  absl::StrAppend(out, "cluster: ", tasks.size(), tasks.size() == 1 ? " task" : " tasks", " (",
                  absl::StrJoin(counts, ", "), ")\n");
  for (const TaskId& task : tasks) {
    std::string note = RoleOf(task, spec);
    const int rank = spec.TrainingRank(task);
    if (rank >= 0) absl::StrAppend(&note, ", training rank ", rank);
    if (task == config.task) absl::StrAppend(&note, "  <- this process");
    absl::StrAppend(
        out, absl::StrFormat("  %-13s %-24s %s\n", task.ToString(), spec.address(task), note));
  }
  if (!spec.has_job(config.task.job)) {
    absl::StrAppend(out, absl::StrFormat("  %-13s %-24s %s\n", config.task.ToString(),
                                         "(not listed)", "evaluator  <- this process"));
  }
  const TaskId chief = spec.Chief();
  absl::StrAppend(out, "chief: ", chief.ToString(), " at ", spec.address(chief));
  if (chief.job == kWorkerJob) {
    absl::StrAppend(out, " (implicit: no \"chief\" job, so worker 0 is the chief)");
  }
  absl::StrAppend(out, "\n");
}

// "this process: worker:1 at h2:2222; role worker, training rank 2 of 3".
void DescribeThisProcess(const ClusterConfig& config, std::string* out) {
  const ClusterSpec& spec = config.cluster;
  const bool listed = spec.has_job(config.task.job);
  absl::StrAppend(out, "this process: ", config.task.ToString(),
                  listed ? absl::StrCat(" at ", spec.address(config.task))
                         : " (not listed in cluster, no address)",
                  "; role ", RoleOf(config.task, spec));
  const int my_rank = spec.TrainingRank(config.task);
  if (my_rank >= 0) {
    absl::StrAppend(out, ", training rank ", my_rank, " of ", spec.TrainingWorkers().size());
  } else if (config.task.job == kPsJob) {
    absl::StrAppend(out, ", holds variables and does not train");
  } else {
    absl::StrAppend(out, listed ? ", evaluates checkpoints and does not train"
                                : ", evaluates checkpoints, does not train and joins no mesh");
  }
  absl::StrAppend(out, "\n");
}

// The training workers, parameter servers, evaluator, rpc_layer and the rest.
void DescribeServices(const ClusterConfig& config, std::string* out) {
  const ClusterSpec& spec = config.cluster;
  const std::vector<TaskId> trainers = spec.TrainingWorkers();
  absl::StrAppend(out, "training workers: ", trainers.size(), " (rank order: ", TaskNames(trainers),
                  ")\n");
  std::vector<TaskId> servers;
  for (int i = 0; i < spec.num_tasks(kPsJob); ++i) {
    servers.push_back(TaskId{std::string(kPsJob), i});
  }
  if (servers.empty()) {
    absl::StrAppend(out, "parameter servers: none\n");
  } else {
    absl::StrAppend(out, "parameter servers: ", servers.size(), " (", TaskNames(servers), ")\n");
  }
  if (spec.has_job(kEvaluatorJob)) {
    const TaskId evaluator{std::string(kEvaluatorJob), 0};
    absl::StrAppend(out, "evaluator: evaluator:0 at ", spec.address(evaluator), "\n");
  } else if (!spec.has_job(config.task.job)) {
    absl::StrAppend(out, "evaluator: evaluator:0 (this process, outside the cluster)\n");
  } else {
    absl::StrAppend(out, "evaluator: none\n");
  }
  absl::StrAppend(out, "rpc_layer: ",
                  config.rpc_layer.empty() ? "(default) gRPC with the fast same-host data path"
                                           : config.rpc_layer,
                  "\n");
  if (!config.environment.empty()) absl::StrAppend(out, "environment: ", config.environment, "\n");
  if (config.trial != 0) absl::StrAppend(out, "trial: ", config.trial, "\n");
}

}  // namespace

absl::StatusOr<ClusterConfig> ParseTfConfig(absl::string_view json) {
  return Parse(json, kFromArgument);
}

absl::StatusOr<ClusterConfig> ClusterConfigFromEnvironment() {
  const char* value = std::getenv("TF_CONFIG");
  if (value == nullptr || *value == '\0') return ClusterConfig::Local();
  return Parse(value, kFromEnvironment);
}

std::string ToTfConfigJson(const ClusterConfig& config) {
  Json root = Json::object();
  Json cluster = Json::object();
  for (const auto& [job, addresses] : config.cluster.jobs()) cluster[job] = addresses;
  root["cluster"] = std::move(cluster);
  Json task = {{"type", config.task.job}, {"index", config.task.index}};
  if (config.trial != 0) task["trial"] = config.trial;
  root["task"] = std::move(task);
  if (!config.rpc_layer.empty()) root["rpc_layer"] = config.rpc_layer;
  if (!config.environment.empty()) root["environment"] = config.environment;
  return root.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string DescribeCluster(const ClusterConfig& config) {
  if (config.is_local()) {
    return "local: no TF_CONFIG; a single process that serves nothing and joins no mesh\n"
           "this process: worker:0, role chief (implicit: worker 0), training rank 0 of 1\n";
  }
  std::string out;
  DescribeTasks(config, &out);
  DescribeThisProcess(config, &out);
  DescribeServices(config, &out);
  return out;
}

}  // namespace meshtrain
