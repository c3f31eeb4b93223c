// Fashion-MNIST (Xiao et al., 2017): 28x28 grey images of 10 clothing classes,
// 60000 for training and 10000 for testing, as the four IDX files of the
// distribution ({train,t10k}-{images-idx3,labels-idx1}-ubyte, gzip-compressed or
// not). The loader returns inputs uint8 [n, 784], the pixels as stored, with
// input_divisor 255: a batch holds them scaled to [0, 1] (value / 255, as
// torchvision's ToTensor). Labels are int32 [n] in [0, 10).
// Stateless; safe to call from any thread.
#ifndef MESHTRAIN_RUNTIME_DATA_FASHION_MNIST_H_
#define MESHTRAIN_RUNTIME_DATA_FASHION_MNIST_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/data/dataset.h"

namespace meshtrain {

// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr absl::string_view kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int kFashionMnistClasses = 10;
inline constexpr int kFashionMnistPixels = 28 * 28;

// Loads `split` from `dir`, preferring NAME.gz to a plain NAME.
// NotFound when a file is missing: the message names the path and the fix
// ("install it with: apt-get install dataset-fashion-mnist").
// DataLoss naming the path and the fault when a file is malformed: bad magic,
// truncated, dimensions other than [n, 28, 28] / [n], image and label counts
// that differ, or a label outside [0, 10).
absl::StatusOr<Dataset> LoadFashionMnist(absl::string_view dir, Split split);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_FASHION_MNIST_H_
