#include "launcher/check_config_command.h"

#include <cstdio>

#include "launcher/flag_set.h"
#include "runtime/cluster/tf_config.h"

namespace meshtrain {

int RunCheckConfigCommand(const std::vector<std::string>& args) {
  std::string tf_config;
  FlagSet flags("check-config", "meshtrain check-config [--tf-config JSON]",
                "Prints the cluster TF_CONFIG describes: every task and address, who is chief,\n"
                "and this process's role; or the error, naming the field and the fix (exit 1).");
  flags.AddString("tf-config", &tf_config, "check this JSON instead of the TF_CONFIG variable");
  if (std::optional<int> exit = ParseCommandFlags(flags, args)) return *exit;
  absl::StatusOr<ClusterConfig> config =
      flags.IsSet("tf-config") ? ParseTfConfig(tf_config) : ClusterConfigFromEnvironment();
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  if (config->is_local()) {
    std::printf("TF_CONFIG is not set: meshtrain train runs alone, as worker:0 (the chief).\n");
    return 0;
  }
  std::fputs(DescribeCluster(*config).c_str(), stdout);
  return 0;
}

}  // namespace meshtrain
