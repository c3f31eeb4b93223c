// `meshtrain train`: run this process's task of a training job. With no
// TF_CONFIG (and not under mpirun) the process is a one-worker cluster and trains
// alone; otherwise it takes the role TF_CONFIG gives it.
#ifndef MESHTRAIN_LAUNCHER_TRAIN_COMMAND_H_
#define MESHTRAIN_LAUNCHER_TRAIN_COMMAND_H_

#include <string>
#include <vector>

namespace meshtrain {

// Returns the process exit status.
int RunTrainCommand(const std::vector<std::string>& args);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_TRAIN_COMMAND_H_
