// `meshtrain check-config`: resolves TF_CONFIG (or --tf-config) the way `train`
// would and prints the cluster, or the one-line error. Lets users check a
// TF_CONFIG before a long launch.
#ifndef MESHTRAIN_LAUNCHER_CHECK_CONFIG_COMMAND_H_
#define MESHTRAIN_LAUNCHER_CHECK_CONFIG_COMMAND_H_

#include <string>
#include <vector>

namespace meshtrain {

int RunCheckConfigCommand(const std::vector<std::string>& args);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_CHECK_CONFIG_COMMAND_H_
