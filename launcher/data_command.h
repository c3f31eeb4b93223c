// `meshtrain data`: the data tools (docs/data.md).
//   convert  IDX files (MNIST-like: train-images-idx3-ubyte[.gz] and the rest)
//            to sharded TFRecord files of tf.train.Example;
//   inspect  the features of the first records of a TFRecord file.
#ifndef MESHTRAIN_LAUNCHER_DATA_COMMAND_H_
#define MESHTRAIN_LAUNCHER_DATA_COMMAND_H_

#include <string>
#include <vector>

namespace meshtrain {

int RunDataCommand(const std::vector<std::string>& args);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_DATA_COMMAND_H_
