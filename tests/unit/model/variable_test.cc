#include "runtime/model/variable.h"

#include <cmath>

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

TEST(InitializeVariableTest, PartitionsReproduceTheWhole) {
  VariableSpec spec{"dense_0/kernel", Shape{10, 6}, DType::kFloat32,
                    Initializer{Initializer::Kind::kHeNormal}};
  Tensor whole(DType::kFloat32, spec.shape);
  InitializeVariable(spec, 42, 0, whole);
  Tensor part(DType::kFloat32, Shape{4, 6});
  InitializeVariable(spec, 42, 3, part);
  for (int64_t i = 0; i < part.num_elements(); ++i) {
    EXPECT_EQ(part.data<float>()[i], whole.data<float>()[18 + i]);
  }
}

TEST(InitializeVariableTest, DependsOnSeedAndName) {
  VariableSpec a{"a", Shape{100}, DType::kFloat32, Initializer{Initializer::Kind::kGlorotUniform}};
  VariableSpec b = a;
  b.name = "b";
  Tensor ta(DType::kFloat32, a.shape), tb(DType::kFloat32, a.shape), tc(DType::kFloat32, a.shape);
  InitializeVariable(a, 1, 0, ta);
  InitializeVariable(b, 1, 0, tb);
  InitializeVariable(a, 2, 0, tc);
  int same_name = 0, same_seed = 0;
  for (int i = 0; i < 100; ++i) {
    same_name += ta.data<float>()[i] == tb.data<float>()[i];
    same_seed += ta.data<float>()[i] == tc.data<float>()[i];
  }
  EXPECT_LT(same_name, 3);
  EXPECT_LT(same_seed, 3);
}

TEST(InitializeVariableTest, GlorotAndHeHaveTheirScales) {
  const Shape shape{784, 300};
  VariableSpec glorot{"g", shape, DType::kFloat32, Initializer{Initializer::Kind::kGlorotUniform}};
  VariableSpec he{"h", shape, DType::kFloat32, Initializer{Initializer::Kind::kHeNormal}};
  Tensor tg(DType::kFloat32, shape), th(DType::kFloat32, shape);
  InitializeVariable(glorot, 3, 0, tg);
  InitializeVariable(he, 3, 0, th);
  const double limit = std::sqrt(6.0 / (784 + 300));
  double max_abs = 0, sum_sq = 0, mean = 0;
  for (float v : tg.flat<float>()) max_abs = std::max(max_abs, std::fabs(static_cast<double>(v)));
  for (float v : th.flat<float>()) {
    sum_sq += static_cast<double>(v) * v;
    mean += v;
  }
  const double n = static_cast<double>(shape.num_elements());
  EXPECT_LE(max_abs, limit);
  EXPECT_GT(max_abs, 0.99 * limit);
  EXPECT_NEAR(std::sqrt(sum_sq / n), std::sqrt(2.0 / 784), 0.002);
  EXPECT_NEAR(mean / n, 0.0, 0.001);
}

TEST(InitializerTest, ParsesAndRejects) {
  EXPECT_EQ(Initializer::Parse("he_normal")->kind, Initializer::Kind::kHeNormal);
  EXPECT_FLOAT_EQ(Initializer::Parse("normal:0.01")->scale, 0.01f);
  EXPECT_EQ(Initializer::Parse("normal").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Initializer::Parse("xavier").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Initializer::Parse("zeros:1").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace meshtrain
