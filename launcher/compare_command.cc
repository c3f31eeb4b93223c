#include "launcher/compare_command.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "launcher/flag_set.h"
#include "launcher/local_cluster.h"
#include "launcher/process_group.h"
#include "launcher/train_flags.h"
#include "reports/compare_plan.h"
#include "reports/compare_report.h"
#include "reports/machine_info.h"
#include "reports/report_format.h"
#include "reports/report_html.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/json_reader.h"
#include "summaries/trace_files.h"
#include "training/summary.h"

namespace meshtrain {
namespace {

constexpr char kUsage[] =
    "meshtrain compare --config JOB.json --out DIR [--strategies a,b,...] [--workers N] [--ps M] "
    "[--devices D] [train flags]";
constexpr char kDescription[] =
    "Trains the same job under each strategy on this machine, one after the other, with the\n"
    "same data, seed and global batch, and writes DIR/report.json, DIR/report.html (charts,\n"
    "no network needed) and a table on stdout. one_device, mirrored and central_storage run\n"
    "as one process (the last two with --devices, default 2); multi_worker_mirrored as a\n"
    "local cluster of --workers; parameter_server with --workers and --ps. Every flag of\n"
    "'meshtrain train' (--epochs, --max-steps, ...) applies to every run. Each strategy's\n"
    "model directory, TensorBoard events, trace and output are in DIR/<strategy>/.\n"
    "Exit status: 0 all finished, 3 report written but a strategy failed, 2 bad flags.";

// The flags compare sets itself for every run.
constexpr const char* kControlledFlags[] = {"model-dir", "strategy", "trace"};

// A log line without its "E 19:42:43.040 [worker:0] " prefix.
std::string LogMessage(absl::string_view line) {
  absl::string_view rest = line.substr(2);  // severity letter and space
  const size_t time_end = rest.find(' ');
  if (time_end != absl::string_view::npos) rest.remove_prefix(time_end + 1);
  if (absl::StartsWith(rest, "[")) {
    const size_t tag_end = rest.find("] ");
    if (tag_end != absl::string_view::npos) rest.remove_prefix(tag_end + 2);
  }
  return std::string(rest);
}

// Follows one strategy's run: every line to DIR/<strategy>/output.log, the
// chief's epoch lines as progress on stdout, and each process's last lines
// for the error message. Called on ProcessGroup::Run's thread.
class RunMonitor {
 public:
  RunMonitor(std::string label, std::string chief, std::ofstream* log)
      : label_(std::move(label)), chief_(std::move(chief)), log_(log), start_(absl::Now()) {}

  void OnLine(const std::string& process, absl::string_view line, bool is_stderr) {
    *log_ << "[" << process << "] " << line << "\n";
    std::deque<std::string>& tail = tails_[process];
    tail.emplace_back(line);
    if (tail.size() > 8) tail.pop_front();
    if (absl::StartsWith(line, "E ") || absl::StartsWith(line, "F "))
      last_error_[process] = LogMessage(line);
    if (process != chief_) return;
    long long epoch = 0, epochs = 0, step = 0, steps = 0;
    double loss = 0, acc = 0, test_loss = 0, test_acc = 0, samples = 0;
    const std::string text(line);
    const double elapsed = absl::ToDoubleSeconds(absl::Now() - start_);
    if (std::sscanf(text.c_str(),
                    "epoch %lld/%lld loss %lf acc %lf test_loss %lf test_acc %lf %lf samples/s",
                    &epoch, &epochs, &loss, &acc, &test_loss, &test_acc, &samples) == 7) {
      std::printf("%s  epoch %lld/%lld  loss %.4f  test acc %.4f  %s samples/s  [%s]\n",
                  label_.c_str(), epoch, epochs, loss, test_acc, FormatThousands(samples).c_str(),
                  FormatSeconds(elapsed).c_str());
      std::fflush(stdout);
    } else if (std::sscanf(text.c_str(), " epoch %lld: step %lld/%lld", &epoch, &step, &steps) ==
               3) {
      std::printf("%s  epoch %lld  step %lld/%lld  [%s]\n", label_.c_str(), epoch, step, steps,
                  FormatSeconds(elapsed).c_str());
      std::fflush(stdout);
    }
  }

  // What `process` said last: its last error line, else its last lines.
  std::string LastWords(const std::string& process) const {
    auto error = last_error_.find(process);
    if (error != last_error_.end()) return error->second;
    auto tail = tails_.find(process);
    if (tail == tails_.end() || tail->second.empty()) return "(no output)";
    return absl::StrJoin(tail->second, "\n");
  }

 private:
  const std::string label_;
  const std::string chief_;
  std::ofstream* const log_;
  const absl::Time start_;
  std::map<std::string, std::deque<std::string>> tails_;
  std::map<std::string, std::string> last_error_;
};

struct CompareSettings {
  std::string out;
  std::vector<std::string> strategies;
  CompareShape shape;
  absl::Duration run_timeout = absl::Minutes(30);
  bool timelines = true;
  std::vector<std::string> forwarded;  // train flags for every run
};

absl::StatusOr<nlohmann::json> ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<nlohmann::json> value = ParseJson(text.str());
  if (!value.ok()) return absl::DataLossError(absl::StrCat(path, " is ", value.status().message()));
  return value;
}

// The `meshtrain train` arguments of one strategy's run, writing into `dir`.
std::vector<std::string> TrainArgs(const CompareSettings& settings, const StrategyLaunch& launch,
                                   const std::string& dir) {
  std::vector<std::string> args = {"train"};
  args.insert(args.end(), settings.forwarded.begin(), settings.forwarded.end());
  args.push_back(absl::StrCat("--strategy=", launch.strategy));
  args.push_back(absl::StrCat("--model-dir=", dir));
  if (!launch.devices.empty()) args.push_back(absl::StrCat("--devices=", launch.devices));
  if (settings.timelines) args.push_back(absl::StrCat("--trace=", dir, "/trace.json"));
  return args;
}

// The processes of one run: a local cluster's tasks, or one lone process.
struct RunProcesses {
  std::vector<ProcessSpec> specs;
  ClusterSpec cluster;
  std::string chief = "local";
};

absl::StatusOr<RunProcesses> MakeRunProcesses(const StrategyLaunch& launch, const std::string& exe,
                                              const std::vector<std::string>& args) {
  RunProcesses out;
  if (launch.cluster) {
    absl::StatusOr<ClusterSpec> made = MakeLocalCluster({launch.workers, launch.ps, false, false});
    if (!made.ok()) return made.status();
    out.cluster = *std::move(made);
    out.chief = out.cluster.Chief().ToString();
    out.specs = MakeTaskProcesses(out.cluster, exe, args, /*max_restarts=*/0);
    return out;
  }
  ProcessSpec spec;
  spec.name = out.chief;
  spec.argv = {exe};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {{"TF_CONFIG", ""}};  // a lone process, whatever compare's environment says
  out.specs.push_back(std::move(spec));
  return out;
}

// How a finished run went: the timeout or the first failure, else its summary.
void DescribeOutcome(const CompareSettings& settings, const GroupResult& result,
                     const RunMonitor& monitor, const std::string& chief, const std::string& dir,
                     CompareRun* run) {
  if (result.timed_out) {
    run->error =
        absl::StrCat("stopped after --run-timeout ", absl::FormatDuration(settings.run_timeout),
                     "; the chief's last words:\n", monitor.LastWords(chief));
    return;
  }
  if (result.exit_code != 0) {
    const std::string failed = result.first_failure.empty() ? chief : result.first_failure;
    run->error = absl::StrCat(failed, " exited with status ", result.exit_code, ": ",
                              monitor.LastWords(failed));
    if (failed != chief) absl::StrAppend(&run->error, "\n", chief, ": ", monitor.LastWords(chief));
    return;
  }
  absl::StatusOr<nlohmann::json> summary = ReadJson(dir + "/summary.json");
  if (!summary.ok()) {
    run->error = absl::StrCat("every process finished, but ", summary.status().message());
    return;
  }
  run->summary = *std::move(summary);
  run->ok = true;
}

// Runs one strategy to the end and describes how it went.
// `interrupted` is set when Ctrl-C or SIGTERM reached the run (and so compare).
CompareRun RunStrategy(const CompareSettings& settings, const std::string& exe,
                       const StrategyLaunch& launch, const std::string& label, bool* interrupted) {
  CompareRun run;
  run.strategy = launch.strategy;
  run.launch = launch.description;
  run.model_dir = launch.strategy;
  const std::string dir = absl::StrCat(settings.out, "/", launch.strategy);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // no stale summary, events or trace from an earlier run
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    run.error = absl::StrCat("cannot create ", dir, ": ", ec.message());
    return run;
  }
  absl::StatusOr<RunProcesses> processes =
      MakeRunProcesses(launch, exe, TrainArgs(settings, launch, dir));
  if (!processes.ok()) {
    run.error = std::string(processes.status().message());
    return run;
  }
  run.processes = static_cast<int>(processes->specs.size());

  std::ofstream log(dir + "/output.log");
  RunMonitor monitor(label, processes->chief, &log);
  ProcessGroupOptions options;
  options.deadline = absl::Now() + settings.run_timeout;
  options.on_line = [&monitor](const std::string& name, absl::string_view line, bool is_stderr) {
    monitor.OnLine(name, line, is_stderr);
  };
  ProcessGroup group(std::move(options));
  const absl::Time start = absl::Now();
  absl::StatusOr<GroupResult> result = group.Run(processes->specs);
  run.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!result.ok()) {
    run.error = std::string(result.status().message());
    return run;
  }
  for (const ProcessOutcome& p : result->processes) run.peak_rss_bytes[p.name] = p.peak_rss_bytes;
  *interrupted = result->signal != 0;
  if (settings.timelines) {
    const std::string trace = absl::StrCat(dir, "/trace.json");
    if (launch.cluster)
      (void)MergeTaskTraces(trace, processes->cluster);  // a failed run may leave no parts
    if (std::filesystem::exists(trace, ec))
      run.trace = absl::StrCat(launch.strategy, "/trace.json");
  }
  DescribeOutcome(settings, *result, monitor, processes->chief, dir, &run);
  return run;
}

nlohmann::json JobHeader(const JobConfig& job, const std::string& config_path) {
  std::string model = job.model.type;
  if (job.model.type == "mlp") {
    absl::StrAppend(&model, " ", absl::StrJoin(job.model.hidden_units, "-"), " hidden");
  }
  std::string optimizer =
      absl::StrFormat("%s, learning rate %g", job.optimizer.type, job.optimizer.learning_rate);
  if (job.optimizer.type == "sgd" && job.optimizer.momentum > 0) {
    absl::StrAppend(&optimizer, absl::StrFormat(", momentum %g", job.optimizer.momentum));
  }
  return {{"name", job.name.empty() ? config_path : job.name},
          {"config", config_path},
          {"dataset", job.data.dataset},
          {"model", model},
          {"optimizer", optimizer},
          {"epochs", job.training.epochs},
          {"max_steps", job.training.max_steps},
          {"global_batch_size", job.training.global_batch_size},
          {"seed", job.training.seed},
          {"target_accuracy", job.training.target_accuracy}};
}

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "meshtrain compare: %s\n", message.c_str());
  return code;
}

// Parses compare's flags (and the train flags it forwards) into `settings`
// and `train`; an exit code when compare stops here (0 for --help, 2 for bad flags).
std::optional<int> ParseCompareFlags(const std::vector<std::string>& args, FlagSet& flag_set,
                                     CompareSettings& settings, TrainFlags& train) {
  std::string strategies = absl::StrJoin(CompareStrategyNames(), ",");
  int64_t workers = settings.shape.workers, ps = settings.shape.ps;
  const std::string group = "compare";
  flag_set.AddString("out", &settings.out,
                     "directory for report.json, report.html and DIR/<strategy>/", group);
  flag_set.AddString("strategies", &strategies, "comma-separated strategies to run, in this order",
                     group);
  flag_set.AddInt("workers", &workers, "workers of multi_worker_mirrored and parameter_server",
                  group);
  flag_set.AddInt("ps", &ps, "ps tasks of parameter_server", group);
  flag_set.AddDuration("run-timeout", &settings.run_timeout,
                       "stop a strategy that runs longer than this", group);
  flag_set.AddBool("timelines", &settings.timelines,
                   "write DIR/<strategy>/trace.json (Chrome trace) per run", group);
  RegisterTrainFlags(flag_set, train);
  absl::StatusOr<std::vector<std::string>> rest = flag_set.Parse(args);
  if (!rest.ok()) return Fail(std::string(rest.status().message()), 2);
  if (flag_set.help_requested()) {
    std::fputs(flag_set.Help().c_str(), stdout);
    std::fputs(
        "\n--devices: for compare, the replicas of mirrored and central_storage (default 2).\n",
        stdout);
    return 0;
  }
  if (!rest->empty())
    return Fail(absl::StrCat("unexpected argument '", (*rest)[0], "'; see --help"), 2);
  if (settings.out.empty()) return Fail("--out DIR is required (where the report goes)", 2);
  for (const char* flag : kControlledFlags) {
    if (flag_set.IsSet(flag)) {
      return Fail(absl::StrCat("--", flag,
                               " is set by compare for each run (DIR/<strategy>/; "
                               "--strategies picks the strategies, --timelines the traces)"),
                  2);
    }
  }
  absl::StatusOr<std::vector<std::string>> names = ParseStrategyList(strategies);
  if (!names.ok()) return Fail(std::string(names.status().message()), 2);
  settings.strategies = *names;
  settings.shape.workers = static_cast<int>(workers);
  settings.shape.ps = static_cast<int>(ps);
  if (flag_set.IsSet("devices")) settings.shape.devices = train.devices;
  return std::nullopt;
}

// The train flags every run gets (the config as an absolute path, since every
// run reads the job from its own working directory), and an absolute --out.
absl::Status PrepareRuns(const FlagSet& flag_set, const TrainFlags& train,
                         CompareSettings& settings) {
  std::set<std::string> forwarded = TrainFlagNames();
  forwarded.erase("devices");
  for (const char* flag : kControlledFlags) forwarded.erase(flag);
  settings.forwarded = flag_set.SetFlagsAsArgs(forwarded);
  std::error_code ec;
  for (std::string& arg : settings.forwarded) {
    if (absl::StartsWith(arg, "--config=")) {
      arg = absl::StrCat("--config=", std::filesystem::absolute(train.config, ec).string());
    }
  }
  std::filesystem::create_directories(settings.out, ec);
  if (ec)
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create --out ", settings.out, ": ", ec.message()));
  settings.out = std::filesystem::absolute(settings.out, ec).string();
  return absl::OkStatus();
}

nlohmann::json ReportHeader(const std::vector<std::string>& args, const JobConfig& job,
                            const TrainFlags& train, const CompareSettings& settings) {
  const MachineInfo machine = ReadMachineInfo();
  nlohmann::json header;
  header["created"] = absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", absl::Now(), absl::LocalTimeZone());
  header["command"] = absl::StrCat("meshtrain compare ", absl::StrJoin(args, " "));
  header["job"] = JobHeader(job, train.config);
  header["machine"] = {{"host", machine.host}, {"cores", machine.cores},
                       {"cpu", machine.cpu},   {"memory_bytes", machine.memory_bytes},
                       {"os", machine.os},     {"load_average_start", LoadAverage()}};
  header["settings"] = {{"strategies", settings.strategies},
                        {"workers", settings.shape.workers},
                        {"ps", settings.shape.ps},
                        {"devices", settings.shape.devices}};
  return header;
}

// Runs the strategies one after the other, printing a line as each starts and
// ends; stops early when `*interrupted`.
std::vector<CompareRun> RunAll(const CompareSettings& settings, const std::string& exe,
                               const std::vector<StrategyLaunch>& launches, bool* interrupted) {
  std::vector<CompareRun> runs;
  for (size_t i = 0; i < launches.size() && !*interrupted; ++i) {
    const StrategyLaunch& launch = launches[i];
    const std::string label =
        absl::StrFormat("[%zu/%zu] %-22s", i + 1, launches.size(), launch.strategy);
    std::printf("%s  starting: %s\n", label.c_str(), launch.description.c_str());
    std::fflush(stdout);
    CompareRun run = RunStrategy(settings, exe, launch, label, interrupted);
    if (run.ok) {
      std::printf("%s  done in %s: test accuracy %.4f, %s samples/s\n", label.c_str(),
                  FormatSeconds(run.wall_seconds).c_str(),
                  JsonNumber(run.summary, "test_accuracy", 0),
                  FormatThousands(JsonNumber(run.summary, "samples_per_sec", 0)).c_str());
    } else {
      std::string first_line = run.error.substr(0, run.error.find('\n'));
      std::printf("%s  FAILED after %s: %s\n", label.c_str(),
                  FormatSeconds(run.wall_seconds).c_str(), first_line.c_str());
    }
    if (*interrupted) std::printf("meshtrain compare: interrupted; reporting what ran\n");
    std::fflush(stdout);
    runs.push_back(std::move(run));
  }
  return runs;
}

}  // namespace

int RunCompareCommand(const std::vector<std::string>& args) {
  FlagSet flag_set("compare", kUsage, kDescription);
  CompareSettings settings;
  TrainFlags train;
  if (std::optional<int> code = ParseCompareFlags(args, flag_set, settings, train)) return *code;
  std::vector<StrategyLaunch> launches;
  for (const std::string& name : settings.strategies) {
    absl::StatusOr<StrategyLaunch> launch = PlanStrategyLaunch(name, settings.shape);
    if (!launch.ok()) return Fail(std::string(launch.status().message()), 2);
    launches.push_back(*launch);
  }
  absl::StatusOr<JobConfig> job = LoadJobWithOverrides(flag_set, train);
  if (!job.ok()) return Fail(std::string(job.status().message()), 2);
  if (absl::Status prepared = PrepareRuns(flag_set, train, settings); !prepared.ok()) {
    return Fail(std::string(prepared.message()), 1);
  }
  absl::StatusOr<std::string> exe = SelfExecutable();
  if (!exe.ok()) return Fail(std::string(exe.status().message()), 1);

  nlohmann::json header = ReportHeader(args, *job, train, settings);
  std::printf("meshtrain compare: %s under %zu strategies, one after the other; output in %s\n",
              header["job"]["name"].get<std::string>().c_str(), launches.size(),
              settings.out.c_str());
  std::fflush(stdout);
  bool interrupted = false;
  const std::vector<CompareRun> runs = RunAll(settings, *exe, launches, &interrupted);
  header["machine"]["load_average_end"] = LoadAverage();
  const nlohmann::json report = BuildCompareReport(std::move(header), runs);
  absl::Status status = WriteJsonFile(settings.out + "/report.json", report);
  if (status.ok())
    status = WriteFileAtomically(settings.out + "/report.html", RenderCompareHtml(report));
  if (!status.ok()) return Fail(std::string(status.message()), 1);
  std::printf("\n%s\nreport: %s/report.html (figures in report.json)\n",
              RenderCompareTable(report).c_str(), settings.out.c_str());
  std::fflush(stdout);
  const bool all_ok =
      std::all_of(runs.begin(), runs.end(), [](const CompareRun& r) { return r.ok; });
  return all_ok && !interrupted ? 0 : 3;
}

}  // namespace meshtrain
