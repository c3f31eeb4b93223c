#include "launcher/bench_command.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "launcher/flag_set.h"
#include "launcher/local_cluster.h"
#include "launcher/process_group.h"
#include "nlohmann/json.hpp"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/tf_config.h"
#include "runtime/collective/allreduce_benchmark.h"
#include "runtime/collective/ring_communicator.h"
#include "runtime/rpc/fast_data_paths.h"
#include "runtime/rpc/mesh.h"
#include "runtime/transport/wire_codec.h"
#include "training/summary.h"

namespace meshtrain {
namespace {

constexpr char kUsage[] =
    "meshtrain bench allreduce [--workers N] [--sizes 4K,64K,1M,16M,64M] [--rpc-layer "
    "auto|grpc|shm|tcp|shm+tcp] "
    "[--wire-dtype float32|bfloat16|float16] [--json FILE]";
constexpr char kDescription[] =
    "Measures the ring AllReduce (sum of float32) between --workers meshtrain processes on\n"
    "this machine, over the data path --rpc-layer selects (auto: shared memory between tasks\n"
    "of one host). Per size: warm-up, then barrier; t0; allreduce; t1, the time being the\n"
    "slowest rank's, median over iterations. busbw = bytes / time x 2(n-1)/n, as nccl-tests\n"
    "and the peer scripts report it. Sizes and bandwidths count the float32 buffer summed,\n"
    "also with --wire-dtype bfloat16/float16, which moves half as many bytes.";

struct BenchFlags {
  int64_t workers = 2;
  std::string sizes = "4K,64K,1M,16M,64M";
  std::string rpc_layer = "auto";
  std::string wire_dtype = "float32";
  std::string json;
  absl::Duration min_time = absl::Seconds(2);
  absl::Duration startup_timeout = absl::Seconds(60);
};

void Register(FlagSet& f, BenchFlags& v) {
  f.AddInt("workers", &v.workers, "tasks taking part (local cluster)");
  f.AddString("sizes", &v.sizes, "message sizes, bytes with K/M/G suffixes");
  f.AddString("rpc-layer", &v.rpc_layer, "data path: auto, grpc, shm, tcp or shm+tcp");
  f.AddString("wire-dtype", &v.wire_dtype,
              "how chunks travel: float32, bfloat16 or float16 (summed in float32)");
  f.AddString("json", &v.json, "also write the rows as JSON to this file");
  f.AddDuration("min-time", &v.min_time, "timed iterations per size fill at least this long");
  f.AddDuration("startup-timeout", &v.startup_timeout, "how long tasks wait for each other");
}

nlohmann::json RowsAsJson(const std::vector<AllReduceBenchmarkRow>& rows, int workers,
                          const std::string& path, const std::string& wire_dtype) {
  nlohmann::json out = nlohmann::json::array();
  for (const AllReduceBenchmarkRow& r : rows) {
    out.push_back({{"size_bytes", r.bytes},
                   {"time_s", r.median_s},
                   {"algbw_gbps", r.algbw_gbps},
                   {"busbw_gbps", r.busbw_gbps},
                   {"p99_s", r.p99_s},
                   {"iters", r.iters},
                   {"workers", workers},
                   {"data_path", path},
                   {"wire_dtype", wire_dtype}});
  }
  return out;
}

// One task of the benchmark cluster.
absl::Status RunBenchTask(const BenchFlags& flags, const std::vector<size_t>& sizes,
                          const ClusterConfig& cluster) {
  SetLogTag(cluster.task.ToString());
  AbortSignal abort;
  MeshOptions options;
  options.config = cluster;
  options.startup_timeout = flags.startup_timeout;
  options.abort = &abort;
  MESHTRAIN_RETURN_IF_ERROR(RegisterFastDataPaths(options.data_paths));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Mesh> mesh, Mesh::Create(std::move(options)));
  MESHTRAIN_RETURN_IF_ERROR(mesh->Start());
  const std::vector<TaskId> workers = cluster.cluster.TrainingWorkers();
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Transport> transport,
                             mesh->CreateTransport(workers, flags.rpc_layer, "bench"));
  MESHTRAIN_ASSIGN_OR_RETURN(const WireDtype wire_dtype, ParseWireDtype(flags.wire_dtype));
  RingCommunicator comm(transport.get(), {.wire_dtype = wire_dtype});
  AllReduceBenchmarkOptions bench;
  bench.sizes_bytes = sizes;
  bench.min_time = flags.min_time;
  const bool chief = cluster.is_chief();
  if (chief) {
    std::printf("ring allreduce, %zu workers, data path %s, %s on the wire\n%s\n", workers.size(),
                std::string(transport->kind()).c_str(), flags.wire_dtype.c_str(),
                AllReduceBenchmarkHeader().c_str());
    std::fflush(stdout);
  }
  absl::StatusOr<std::vector<AllReduceBenchmarkRow>> rows =
      RunAllReduceBenchmark(comm, bench, [&](const AllReduceBenchmarkRow& row) {
        if (!chief) return;
        std::printf("%s\n", FormatAllReduceBenchmarkRow(row).c_str());
        std::fflush(stdout);
      });
  absl::Status status = rows.status();
  if (status.ok() && chief && !flags.json.empty()) {
    status =
        WriteJsonFile(flags.json, RowsAsJson(*rows, static_cast<int>(workers.size()),
                                             std::string(transport->kind()), flags.wire_dtype));
  }
  transport.reset();
  if (status.ok() && chief) status = mesh->coordination().RequestShutdown();
  if (status.ok() && !chief)
    status = mesh->coordination().WaitForShutdown(absl::Now() + absl::Minutes(2));
  if (!status.ok() && !abort.aborted()) (void)mesh->coordination().ReportError(status);
  mesh->Stop();
  return status;
}

}  // namespace

absl::StatusOr<std::vector<size_t>> ParseByteSizes(absl::string_view text) {
  std::vector<size_t> sizes;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::string s = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(part));
    size_t unit = 1;
    if (!s.empty() && (s.back() == 'B')) s.pop_back();
    if (!s.empty() && (s.back() == 'I')) s.pop_back();  // "KiB"
    if (!s.empty() && s.back() == 'K') unit = size_t{1} << 10;
    if (!s.empty() && s.back() == 'M') unit = size_t{1} << 20;
    if (!s.empty() && s.back() == 'G') unit = size_t{1} << 30;
    if (unit != 1) s.pop_back();
    uint64_t value = 0;
    if (!absl::SimpleAtoi(s, &value) || value == 0 || (value * unit) % 4 != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--sizes: '", part, "' is not a size in bytes (a multiple of 4, e.g. 4K, 1M, 4096)"));
    }
    sizes.push_back(static_cast<size_t>(value) * unit);
  }
  if (sizes.empty()) return absl::InvalidArgumentError("--sizes is empty");
  return sizes;
}

int RunBenchCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "allreduce") {
    std::fprintf(stderr, "usage: %s\n(the benchmark to run: allreduce)\n", kUsage);
    return 2;
  }
  FlagSet flag_set("bench allreduce", kUsage, kDescription);
  BenchFlags flags;
  Register(flag_set, flags);
  if (std::optional<int> exit =
          ParseCommandFlags(flag_set, std::vector<std::string>(args.begin() + 1, args.end()))) {
    return *exit;
  }
  absl::StatusOr<std::vector<size_t>> sizes = ParseByteSizes(flags.sizes);
  absl::StatusOr<ClusterConfig> cluster = ClusterConfigFromEnvironment();
  if (!sizes.ok() || !cluster.ok()) {
    std::fprintf(stderr, "meshtrain bench allreduce: %s\n",
                 std::string((sizes.ok() ? cluster.status() : sizes.status()).message()).c_str());
    return 2;
  }
  if (absl::Status wire = ParseWireDtype(flags.wire_dtype).status(); !wire.ok()) {
    std::fprintf(stderr, "meshtrain bench allreduce: --wire-dtype: %s\n",
                 std::string(wire.message()).c_str());
    return 2;
  }
  if (!cluster->is_local()) {
    absl::Status status = RunBenchTask(flags, *sizes, *cluster);
    if (status.ok()) return 0;
    MESHTRAIN_LOG(ERROR) << status;
    return 1;
  }
  if (flags.workers < 1) {
    std::fprintf(stderr, "meshtrain bench allreduce: --workers must be at least 1\n");
    return 2;
  }
  absl::StatusOr<ClusterSpec> spec =
      MakeLocalCluster({static_cast<int>(flags.workers), 0, false, false});
  absl::StatusOr<std::string> exe = SelfExecutable();
  if (!spec.ok() || !exe.ok()) {
    std::fprintf(stderr, "meshtrain bench allreduce: %s\n",
                 std::string((spec.ok() ? exe.status() : spec.status()).message()).c_str());
    return 1;
  }
  std::vector<std::string> task_args = {"bench"};
  task_args.insert(task_args.end(), args.begin(), args.end());
  ProcessGroup group({.prefix_output = false});
  absl::StatusOr<GroupResult> result = group.Run(MakeTaskProcesses(*spec, *exe, task_args, 0));
  if (!result.ok()) {
    std::fprintf(stderr, "meshtrain bench allreduce: %s\n",
                 std::string(result.status().message()).c_str());
    return 1;
  }
  return result->exit_code;
}

}  // namespace meshtrain
