#include "training/binary_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

constexpr int64_t kEvalChunk = 4096;

}  // namespace

double AreaUnderRoc(absl::Span<const float> scores, absl::Span<const float> labels) {
  const size_t n = std::min(scores.size(), labels.size());
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Mann-Whitney: the sum of the positives' ranks (ties get their mean rank).
  double positive_rank_sum = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double mean_rank = (static_cast<double>(i) + static_cast<double>(j) + 1.0) / 2.0;
    for (size_t k = i; k < j; ++k) {
      if (labels[order[k]] > 0.5f) {
        positive_rank_sum += mean_rank;
        ++positives;
      }
    }
    i = j;
  }
  const int64_t negatives = static_cast<int64_t>(n) - positives;
  if (positives == 0 || negatives == 0) return 0.5;
  const double p = static_cast<double>(positives);
  return (positive_rank_sum - p * (p + 1.0) / 2.0) / (p * static_cast<double>(negatives));
}

double ConstantLogLoss(double p, absl::Span<const float> labels) {
  if (labels.empty()) return 0;
  p = std::clamp(p, 1e-7, 1.0 - 1e-7);
  double sum = 0;
  for (float y : labels) sum -= y > 0.5f ? std::log(p) : std::log(1.0 - p);
  return sum / static_cast<double>(labels.size());
}

absl::StatusOr<BinaryMetrics> EvaluateBinary(Strategy& strategy, const Model& model,
                                             const Dataset& train, const Dataset& test) {
  if (train.num_classes != 0 || test.num_classes != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("binary metrics of ", test.name, ": the labels are classes, not clicks"));
  }
  BinaryMetrics metrics;
  absl::Span<const float> train_labels = train.labels.flat<float>();
  metrics.base_rate = train_labels.empty()
                          ? 0.5
                          : std::accumulate(train_labels.begin(), train_labels.end(), 0.0) /
                                static_cast<double>(train_labels.size());
  absl::Span<const float> test_labels = test.labels.flat<float>();
  metrics.baseline_test_loss = ConstantLogLoss(metrics.base_rate, test_labels);
  Tensor scores(DType::kFloat32, Shape{test.size()});
  MESHTRAIN_RETURN_IF_ERROR(strategy.Read([&](ReplicaContext& ctx) -> absl::Status {
    for (int64_t begin = 0; begin < test.size(); begin += kEvalChunk) {
      const int64_t end = std::min(test.size(), begin + kEvalChunk);
      const Batch chunk = DatasetRows(test, begin, end);
      Tensor probabilities = scores.Slice(begin, end);
      MESHTRAIN_RETURN_IF_ERROR(model.Evaluate(ctx, chunk, &probabilities).status());
    }
    return absl::OkStatus();
  }));
  metrics.auc = AreaUnderRoc(scores.flat<float>(), test_labels);
  return metrics;
}

}  // namespace meshtrain
