// Metrics of a binary (click-through) model on its test set beyond loss and
// accuracy: the area under the ROC curve, and the test loss of the constant
// predictor of the training base rate — the loss a model must beat to have
// learned anything from the features. Pure functions, plus one that runs the
// model through a strategy (on the calling thread).
#ifndef MESHTRAIN_TRAINING_BINARY_METRICS_H_
#define MESHTRAIN_TRAINING_BINARY_METRICS_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/data/dataset.h"
#include "runtime/model/model.h"
#include "strategies/strategy.h"

namespace meshtrain {

struct BinaryMetrics {
  double auc = 0.5;
  double base_rate = 0;           // of the training labels
  double baseline_test_loss = 0;  // mean log loss of predicting base_rate on the test set
};

// P(score of a random positive > score of a random negative), ties counting
// half; 0.5 when either class is absent. Labels are 0 or 1.
double AreaUnderRoc(absl::Span<const float> scores, absl::Span<const float> labels);

// Mean log loss of predicting `p` for every example (p clamped to [1e-7, 1 - 1e-7]).
double ConstantLogLoss(double p, absl::Span<const float> labels);

// Runs `model` (binary) over `test` through `strategy` for the AUC; the base
// rate comes from `train`'s labels.
absl::StatusOr<BinaryMetrics> EvaluateBinary(Strategy& strategy, const Model& model,
                                             const Dataset& train, const Dataset& test);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_BINARY_METRICS_H_
