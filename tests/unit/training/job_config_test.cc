#include "training/job_config.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

TEST(JobConfigTest, ReadsEverySection) {
  auto job = ParseJobConfig(R"({
    "name": "x",
    "data": {"dataset": "synthetic", "train_examples": 100, "features": 8, "num_classes": 3},
    "model": {"type": "mlp", "hidden_units": [16, 8]},
    "optimizer": {"type": "adam", "learning_rate": 0.001},
    "training": {"global_batch_size": 32, "epochs": 2, "seed": 9},
    "strategy": {"name": "mirrored", "devices": 2, "cross_device_ops": "ring"}
  })",
                            "x.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->data.train_examples, 100);
  EXPECT_THAT(job->model.hidden_units, ::testing::ElementsAre(16, 8));
  EXPECT_EQ(job->optimizer.type, "adam");
  EXPECT_EQ(job->training.seed, 9u);
  EXPECT_EQ(job->strategy.devices, "2");
  EXPECT_EQ(job->strategy.cross_device_ops, "ring");
}

TEST(JobConfigTest, UnknownKeyNamesItsPathAndTheChoices) {
  auto job = ParseJobConfig(R"({"optimizer": {"learning_rat": 0.1}})", "job.json");
  ASSERT_FALSE(job.ok());
  EXPECT_THAT(std::string(job.status().message()), HasSubstr("job.json: optimizer.learning_rat"));
  EXPECT_THAT(std::string(job.status().message()), HasSubstr("learning_rate"));
}

TEST(JobConfigTest, CommunicationIsAStringOrOptionsWithTheWireDtype) {
  auto plain = ParseJobConfig(R"({"strategy": {"communication": "ring"}})", "j.json");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->strategy.communication, "ring");
  EXPECT_EQ(plain->strategy.wire_dtype, "float32");
  auto options = ParseJobConfig(
      R"({"strategy": {"communication": {"implementation": "ring", "wire_dtype": "bfloat16"}}})",
      "j.json");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->strategy.communication, "ring");
  EXPECT_EQ(options->strategy.wire_dtype, "bfloat16");
  auto typo =
      ParseJobConfig(R"({"strategy": {"communication": {"wire_type": "bfloat16"}}})", "j.json");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(std::string(typo.status().message()), HasSubstr("strategy.communication.wire_type"));
}

TEST(JobConfigTest, TheElasticSectionTurnsElasticTrainingOn) {
  auto none = ParseJobConfig(R"({})", "j.json");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->elastic.enabled);
  auto elastic = ParseJobConfig(
      R"({"elastic": {"rejoin_grace": "500ms", "min_workers": 2, "max_workers": 4}})", "j.json");
  ASSERT_TRUE(elastic.ok()) << elastic.status();
  EXPECT_TRUE(elastic->elastic.enabled);
  EXPECT_EQ(elastic->elastic.rejoin_grace, absl::Milliseconds(500));
  EXPECT_EQ(elastic->elastic.min_workers, 2);
  EXPECT_EQ(elastic->elastic.max_workers, 4);
  auto off = ParseJobConfig(R"({"elastic": {"enabled": false}})", "j.json");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->elastic.enabled);
  EXPECT_EQ(elastic->elastic.keep, "global_batch");
  auto keep = ParseJobConfig(R"({"elastic": {"keep": "per_replica_batch"}})", "j.json");
  ASSERT_TRUE(keep.ok()) << keep.status();
  EXPECT_EQ(keep->elastic.keep, "per_replica_batch");
  auto typo = ParseJobConfig(R"({"elastic": {"keep": "batch"}})", "j.json");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(std::string(typo.status().message()), HasSubstr("elastic.keep: 'batch'"));
  auto bad = ParseJobConfig(R"({"elastic": {"rejoin_grace": "soon"}})", "j.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("elastic.rejoin_grace: 'soon'"));
}

TEST(JobConfigTest, WrongTypeAndMalformedJson) {
  auto wrong = ParseJobConfig(R"({"training": {"epochs": "ten"}})", "j.json");
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("training.epochs must be an integer"));
  auto malformed = ParseJobConfig("{\"training\": ", "j.json");
  EXPECT_EQ(malformed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(malformed.status().message()), HasSubstr("j.json"));
  auto batch = ParseJobConfig(R"({"training": {"global_batch_size": 0}})", "j.json");
  EXPECT_THAT(std::string(batch.status().message()), HasSubstr("global_batch_size"));
}

TEST(JobConfigTest, AutoShardIsOneOfThePolicies) {
  auto default_policy = ParseJobConfig(R"({"data": {"dataset": "tfrecord"}})", "j.json");
  ASSERT_TRUE(default_policy.ok()) << default_policy.status();
  EXPECT_EQ(default_policy->data.auto_shard, "auto");
  for (const char* policy : {"auto", "file", "data"}) {
    auto job =
        ParseJobConfig(absl::StrCat(R"({"data": {"auto_shard": ")", policy, R"("}})"), "j.json");
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->data.auto_shard, policy);
  }
  auto typo = ParseJobConfig(R"({"data": {"auto_shard": "files"}})", "j.json");
  EXPECT_EQ(typo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(typo.status().message()),
              HasSubstr("j.json: data.auto_shard 'files' is not one of auto, file, data"));
  auto number = ParseJobConfig(R"({"data": {"auto_shard": 1}})", "j.json");
  EXPECT_THAT(std::string(number.status().message()), HasSubstr("data.auto_shard"));
  auto misspelt = ParseJobConfig(R"({"data": {"autoshard": "file"}})", "j.json");
  EXPECT_THAT(std::string(misspelt.status().message()), HasSubstr("data.autoshard"));
}

TEST(JobConfigTest, ReferenceConfigIsTheReferenceJob) {
  auto job = LoadJobConfig(std::string(MESHTRAIN_SOURCE_DIR) + "/configs/fashion_mnist_mlp.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->model.type, "mlp");
  EXPECT_THAT(job->model.hidden_units, ::testing::ElementsAre(300, 100));
  EXPECT_EQ(job->optimizer.type, "sgd");
  EXPECT_FLOAT_EQ(job->optimizer.learning_rate, 0.05f);
  EXPECT_FLOAT_EQ(job->optimizer.momentum, 0.9f);
  EXPECT_EQ(job->training.global_batch_size, 256);
  EXPECT_EQ(job->training.epochs, 10);
}

// The sparse job of the parameter-server strategy: a 2^20 x 16 embedding
// table over hashed ids, partitioned over the ps tasks.
TEST(JobConfigTest, SparseCtrConfigIsTheSparseJob) {
  auto job = LoadJobConfig(std::string(MESHTRAIN_SOURCE_DIR) + "/configs/sparse_ctr.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->data.dataset, "synthetic_ctr");
  EXPECT_EQ(job->data.hash_buckets, 1 << 20);
  EXPECT_EQ(job->model.type, "embedding_ctr");
  EXPECT_GE(job->model.embedding_rows, 1 << 20);
  EXPECT_GE(job->model.embedding_dim, 16);
  EXPECT_EQ(job->strategy.name, "parameter_server");
  EXPECT_GT(job->strategy.max_shard_bytes, 0);
  EXPECT_LT(job->strategy.max_shard_bytes,
            job->model.embedding_rows * job->model.embedding_dim * 4);
}

TEST(JobConfigTest, SequentialLayersAreShapeCheckedWhenLoaded) {
  auto job = ParseJobConfig(R"({
    "model": {"type": "sequential", "input_shape": [28, 28, 1], "loss": "sparse_categorical_crossentropy",
              "layers": [{"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"},
                         {"type": "dropout", "rate": 0.2}, {"type": "dense", "units": 10}]}
  })",
                            "seq.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->model.layers.size(), 4u);
  EXPECT_THAT(job->model.input_shape, ::testing::ElementsAre(28, 28, 1));

  auto bad = ParseJobConfig(R"({
    "model": {"type": "sequential", "input_shape": [28, 28, 1],
              "layers": [{"type": "dense", "units": 32}, {"type": "flatten"},
                         {"type": "reshape", "target_shape": [5, 5]}, {"type": "dense", "units": 10}]}
  })",
                            "seq.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("seq.json: model.layers[2] (reshape): target_shape [5, 5] cannot hold the "
                        "input [25088]"));

  auto unknown = ParseJobConfig(
      R"({"model": {"type": "sequential", "layers": [{"type": "dense", "unit": 3}]}})", "seq.json");
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("model.layers[0].unit"));

  auto misplaced =
      ParseJobConfig(R"({"model": {"type": "mlp", "layers": [{"type": "flatten"}]}})", "m.json");
  EXPECT_THAT(std::string(misplaced.status().message()),
              HasSubstr("for model.type \"sequential\""));
}

TEST(JobConfigTest, SequentialReferenceConfigIsTheMlp) {
  auto job = LoadJobConfig(
      absl::StrCat(MESHTRAIN_SOURCE_DIR, "/configs/fashion_mnist_mlp_sequential.json"));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->model.type, "sequential");
  EXPECT_EQ(job->model.layers.size(), 3u);
}

TEST(JobConfigTest, MissingFileSaysWhatToPass) {
  auto job = LoadJobConfig("/nonexistent/job.json");
  EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(job.status().message()), HasSubstr("--config"));
}

TEST(JobConfigTest, ReadsAScheduleWeightDecayAndTheScalingRule) {
  auto job = ParseJobConfig(R"({
    "optimizer": {"type": "adamw", "weight_decay": 0.01, "exclude_from_weight_decay": ["bias"],
                  "learning_rate": {"schedule": "cosine", "initial": 0.1, "decay_steps": 500,
                                    "alpha": 0.1, "warmup_steps": 50, "warmup_initial": 0.01},
                  "scale_learning_rate_with_batch": {"reference_batch": 128}}
  })",
                            "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  const OptimizerConfig& o = job->optimizer;
  EXPECT_EQ(o.type, "adamw");
  EXPECT_FLOAT_EQ(o.learning_rate, 0.1f);
  EXPECT_EQ(o.schedule.schedule, "cosine");
  EXPECT_EQ(o.schedule.decay_steps, 500);
  EXPECT_DOUBLE_EQ(o.schedule.alpha, 0.1);
  EXPECT_EQ(o.schedule.warmup_steps, 50);
  EXPECT_DOUBLE_EQ(o.schedule.warmup_initial, 0.01);
  EXPECT_FLOAT_EQ(o.weight_decay.value_or(-1), 0.01f);
  EXPECT_THAT(o.exclude_from_weight_decay, ::testing::ElementsAre("bias"));
  EXPECT_EQ(o.reference_batch, 128);
  auto plain = ParseJobConfig(R"({"optimizer": {"learning_rate": 0.2}})", "job.json");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->optimizer.schedule.schedule, "constant");
  EXPECT_FALSE(plain->optimizer.weight_decay.has_value());
}

TEST(JobConfigTest, ScheduleErrorsNameTheFileTheFieldAndTheFix) {
  auto error = [](const std::string& optimizer) {
    return std::string(ParseJobConfig(absl::StrCat(R"({"optimizer": )", optimizer, "}"), "job.json")
                           .status()
                           .message());
  };
  EXPECT_THAT(error(R"({"learning_rate": {"schedule": "cosine", "initial": 0.1}})"),
              HasSubstr("job.json: optimizer.learning_rate.decay_steps: 0 is out of range"));
  EXPECT_THAT(error(R"({"learning_rate": {"schedule": "cosine"}})"),
              HasSubstr("optimizer.learning_rate.initial is missing"));
  EXPECT_THAT(error(R"({"learning_rate": {"initial": 0.1, "warmup": 5}})"),
              HasSubstr("optimizer.learning_rate.warmup is not a known key"));
  EXPECT_THAT(error(R"({"learning_rate": {"schedule": "linear", "initial": 0.1}})"),
              HasSubstr("use constant, step or cosine"));
  EXPECT_THAT(error(R"({"weight_decay": -1})"),
              HasSubstr("job.json: optimizer.weight_decay: -1 is out of range"));
  EXPECT_THAT(error(R"({"scale_learning_rate_with_batch": {"reference_batch": -8}})"),
              HasSubstr("reference_batch: -8 is negative"));
  EXPECT_THAT(error(R"({"scale_learning_rate_with_batch": {"batch": 8}})"),
              HasSubstr("optimizer.scale_learning_rate_with_batch.reference_batch is missing"));
}

}  // namespace
}  // namespace meshtrain
