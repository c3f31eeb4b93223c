// The click-through model: analytic gradients (dense and sparse) against
// finite differences, distinct ids, and checks of what it is given.
#include "runtime/model/embedding_ctr.h"

#include <cmath>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/model/fake_replica_context.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::FakeReplicaContext;
using ::testing::HasSubstr;

ModelConfig CtrConfig(int64_t rows = 50, int64_t dim = 4) {
  ModelConfig config;
  config.type = "embedding_ctr";
  config.embedding_rows = rows;
  config.embedding_dim = dim;
  return config;
}

// 5 examples of 3 fields; ids repeat within and across examples.
Batch CtrBatch() {
  Batch batch{Tensor(DType::kInt64, Shape{5, 3}), Tensor(DType::kFloat32, Shape{5})};
  const int64_t ids[] = {3, 7, 3, 49, 0, 7, 12, 12, 12, 0, 1, 2, 7, 3, 49};
  std::copy(std::begin(ids), std::end(ids), batch.inputs.data<int64_t>());
  const float labels[] = {1, 0, 1, 0, 0};
  std::copy(std::begin(labels), std::end(labels), batch.labels.data<float>());
  return batch;
}

double LossSum(const Model& model, FakeReplicaContext& ctx, const Batch& batch) {
  auto stats = model.Evaluate(ctx, batch, nullptr);
  EXPECT_TRUE(stats.ok()) << stats.status();
  return stats->loss_sum;
}

TEST(EmbeddingCtrTest, GradientsMatchFiniteDifferences) {
  FakeReplicaContext ctx;
  auto model = CreateModel(CtrConfig(), ModelShape{3, 0}, ctx);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(ctx.specs().size(), 3u);
  EXPECT_TRUE(ctx.specs()[0].sparse);
  EXPECT_EQ(ctx.specs()[0].shape, (Shape{50, 4}));
  ctx.mutable_value(2).data<float>()[0] = -0.3f;  // a non-zero bias
  const Batch batch = CtrBatch();
  auto stats = (*model)->ComputeGradients(ctx, batch, 1.0f);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_NEAR(stats->loss_sum, LossSum(**model, ctx, batch), 1e-5);
  // Dense ones announced, the table's rows handed over for the distinct ids.
  EXPECT_EQ(ctx.ready_order, (std::vector<VariableId>{2, 1}));
  const Tensor& ids = ctx.sparse_ids[0];
  EXPECT_EQ(std::vector<int64_t>(ids.flat<int64_t>().begin(), ids.flat<int64_t>().end()),
            (std::vector<int64_t>{0, 1, 2, 3, 7, 12, 49}));
  const Tensor& rows = ctx.sparse_rows[0];
  ASSERT_EQ(rows.shape(), (Shape{7, 4}));

  const float eps = 1e-3f;
  auto check = [&](VariableId id, int64_t element, double analytic) {
    float* value = ctx.mutable_value(id).data<float>();
    const float saved = value[element];
    value[element] = saved + eps;
    const double plus = LossSum(**model, ctx, batch);
    value[element] = saved - eps;
    const double minus = LossSum(**model, ctx, batch);
    value[element] = saved;
    const double numeric = (plus - minus) / (2.0 * eps);
    EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::fabs(numeric))
        << ctx.specs()[id].name << " element " << element;
  };
  for (VariableId id : {1, 2}) {
    for (int64_t i = 0; i < ctx.Gradient(id).num_elements(); ++i) {
      check(id, i, ctx.Gradient(id).data<float>()[i]);
    }
  }
  for (int64_t r = 0; r < ids.num_elements(); ++r) {
    for (int64_t d = 0; d < 4; ++d) {
      check(0, ids.data<int64_t>()[r] * 4 + d, rows.data<float>()[r * 4 + d]);
    }
  }
  // A row no example uses has no gradient: perturbing it changes nothing.
  check(0, 20 * 4, 0.0);
}

TEST(EmbeddingCtrTest, EvaluateGivesProbabilities) {
  FakeReplicaContext ctx;
  auto model = CreateModel(CtrConfig(), ModelShape{3, 0}, ctx);
  ASSERT_TRUE(model.ok());
  Tensor p(DType::kFloat32, Shape{5});
  auto stats = (*model)->Evaluate(ctx, CtrBatch(), &p);
  ASSERT_TRUE(stats.ok());
  for (float x : p.flat<float>()) {
    EXPECT_GT(x, 0.0f);
    EXPECT_LT(x, 1.0f);
  }
}

TEST(EmbeddingCtrTest, RejectsWhatItCannotTrain) {
  FakeReplicaContext ctx;
  EXPECT_THAT(CreateModel(CtrConfig(), ModelShape{3, 10}, ctx).status().message(),
              HasSubstr("binary target"));
  EXPECT_FALSE(CreateModel(CtrConfig(0), ModelShape{3, 0}, ctx).ok());
  FakeReplicaContext ctx2;
  auto model = CreateModel(CtrConfig(), ModelShape{3, 0}, ctx2);
  ASSERT_TRUE(model.ok());
  Batch floats{Tensor(DType::kFloat32, Shape{2, 3}), Tensor(DType::kFloat32, Shape{2})};
  EXPECT_THAT((*model)->ComputeGradients(ctx2, floats, 1.0f).status().message(),
              HasSubstr("expected int64[n, 3]"));
}

}  // namespace
}  // namespace meshtrain
