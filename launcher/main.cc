// The meshtrain binary: one process of a training cluster. Subcommands:
// train, launch, check-config, certs, data, bench, compare (see `meshtrain --help`).
#include <cstdio>
#include <string>
#include <vector>

#include "launcher/bench_command.h"
#include "launcher/certs_command.h"
#include "launcher/check_config_command.h"
#include "launcher/compare_command.h"
#include "launcher/data_command.h"
#include "launcher/launch_command.h"
#include "launcher/train_command.h"

namespace {

constexpr char kUsage[] =
    "usage: meshtrain <command> [flags]\n"
    "\n"
    "meshtrain trains neural networks on a cluster of processes, in the manner of\n"
    "TensorFlow's distribution strategies. Each process reads TF_CONFIG to learn its role.\n"
    "\n"
    "commands:\n"
    "  train          run this process's task of a job (alone without TF_CONFIG)\n"
    "  launch         start a whole cluster on this machine, one process per task\n"
    "  check-config   print the cluster TF_CONFIG describes, or what is wrong with it\n"
    "  certs          make a cluster's TLS credentials (CA and task certificates)\n"
    "  data           data tools: 'convert' (IDX to TFRecord shards), 'inspect' (a TFRecord file)\n"
    "  bench          benchmarks: 'meshtrain bench allreduce' (ring AllReduce between processes)\n"
    "  compare        train one job under several strategies; report with charts\n"
    "  --help         this text; 'meshtrain <command> --help' explains a command's flags\n"
    "\n"
    "example:\n"
    "  meshtrain train --config configs/fashion_mnist_mlp.json --model-dir /tmp/run\n"
    "  meshtrain launch --workers 2 --config configs/fashion_mnist_mlp.json --model-dir /tmp/run\n"
    "  meshtrain compare --config configs/fashion_mnist_mlp.json --epochs 3 --out /tmp/compare\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "train") return meshtrain::RunTrainCommand(args);
  if (command == "launch") return meshtrain::RunLaunchCommand(args);
  if (command == "bench") return meshtrain::RunBenchCommand(args);
  if (command == "check-config") return meshtrain::RunCheckConfigCommand(args);
  if (command == "certs") return meshtrain::RunCertsCommand(args);
  if (command == "data") return meshtrain::RunDataCommand(args);
  if (command == "compare") return meshtrain::RunCompareCommand(args);
  std::fprintf(stderr, "meshtrain: unknown command '%s'\n\n%s", command.c_str(), kUsage);
  return 2;
}
