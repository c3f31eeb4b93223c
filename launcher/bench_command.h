// `meshtrain bench allreduce`: the ring AllReduce between real meshtrain
// processes over the mesh's data path, with the method of the peer benchmarks
// (barrier; t0; allreduce; t1; max over ranks; median), printing time, algbw
// and busbw per size. Without TF_CONFIG it starts --workers local tasks (as
// `launch` does); with TF_CONFIG it is one of those tasks.
#ifndef MESHTRAIN_LAUNCHER_BENCH_COMMAND_H_
#define MESHTRAIN_LAUNCHER_BENCH_COMMAND_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

int RunBenchCommand(const std::vector<std::string>& args);

// "4K,64K,1M" -> bytes (K, M, G are powers of 1024; plain numbers are bytes).
absl::StatusOr<std::vector<size_t>> ParseByteSizes(absl::string_view text);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_BENCH_COMMAND_H_
