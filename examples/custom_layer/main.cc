// custom_layer_trainer: the meshtrain commands `train` and `launch`, in a
// program that also holds a layer of its own (residual_dense_layer.cc, which
// registers itself when the program starts). `launch` starts every task of a
// local cluster from this same program, so every task knows the layer.
#include <cstdio>
#include <string>
#include <vector>

#include "launcher/launch_command.h"
#include "launcher/train_command.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const std::string command = args.empty() ? "" : args[0];
  if (!args.empty()) args.erase(args.begin());
  if (command == "train") return meshtrain::RunTrainCommand(args);
  if (command == "launch") return meshtrain::RunLaunchCommand(args);
  std::fputs(
      "usage: custom_layer_trainer train|launch [meshtrain flags]\n"
      "  custom_layer_trainer train --config examples/custom_layer/residual_mlp.json "
      "--model-dir /tmp/run\n",
      stderr);
  return 2;
}
