// `meshtrain launch`: a whole cluster on this machine, one process per task,
// each with its own TF_CONFIG (free ports on 127.0.0.1), their output prefixed
// with their task, Ctrl-C/SIGTERM forwarded, failed tasks restarted up to
// --max-restarts, and the exit status of the first task that failed.
#ifndef MESHTRAIN_LAUNCHER_LAUNCH_COMMAND_H_
#define MESHTRAIN_LAUNCHER_LAUNCH_COMMAND_H_

#include <string>
#include <vector>

namespace meshtrain {

int RunLaunchCommand(const std::vector<std::string>& args);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_LAUNCH_COMMAND_H_
