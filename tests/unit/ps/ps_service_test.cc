// The ParameterServer gRPC service on a real in-process gRPC server: malformed
// requests get clear errors, change nothing, and the ps keeps serving; the ps
// saves its shards into a checkpoint and restores them, and refuses bad file
// names, missing directories, corrupt checkpoints and any directory that is
// not a checkpoint of its model directory.
#include "runtime/ps/ps_service.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/ps.grpc.pb.h"
#include "runtime/base/file_system.h"
#include "runtime/checkpoint/checkpoint_commit.h"
#include "tests/unit/checkpoint/temp_dir.h"
#include "tests/unit/ps/ps_test_cluster.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::CommitShards;
using ::meshtrain::testing::Spec;

using ::meshtrain::testing::PsTestCluster;
using ::meshtrain::testing::TempDir;
using ::testing::HasSubstr;

// One ps holding a dense [3, 2] kernel and a sparse [8, 2] table.
PsPlan OnePsPlan() {
  PsPlan plan;
  plan.specs = {Spec("kernel", {3, 2}), Spec("table", {8, 2}, /*sparse=*/true)};
  PlacementOptions placement;
  plan.placement = *PlaceVariables(plan.specs, placement);
  plan.optimizer.learning_rate = 0.5f;
  plan.rules.num_workers = 2;
  return plan;
}

class PsServiceTest : public ::testing::Test {
 protected:
  PsServiceTest() : cluster_(OnePsPlan()) {
    stub_ = proto::ParameterServer::NewStub(
        grpc::CreateChannel(cluster_.address(0), grpc::InsecureChannelCredentials()));
  }

  template <typename Request, typename Response, typename Method>
  grpc::Status Call(Method method, const Request& request, Response* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    return (stub_.get()->*method)(&context, request, response);
  }

  proto::PsTensor KernelGradient(float value = 1.0f) {
    proto::PsTensor g;
    g.mutable_ref()->set_variable("kernel");
    g.set_dtype("float32");
    g.add_shape(3);
    g.add_shape(2);
    std::vector<float> data(6, value);
    g.set_data(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
    return g;
  }

  grpc::Status Push(const proto::PsTensor& g, int worker = 0) {
    proto::PushDenseRequest request;
    request.set_worker(worker);
    *request.add_gradients() = g;
    proto::PushDenseResponse response;
    return Call(&proto::ParameterServer::Stub::PushDense, request, &response);
  }

  grpc::Status Save(const std::string& checkpoint_dir, const std::string& file) {
    proto::SaveShardsRequest request;
    request.set_checkpoint_dir(checkpoint_dir);
    request.set_file_name(file);
    proto::SaveShardsResponse response;
    return Call(&proto::ParameterServer::Stub::SaveShards, request, &response);
  }

  grpc::Status Restore(const std::string& checkpoint_dir) {
    proto::RestoreShardsRequest request;
    request.set_checkpoint_dir(checkpoint_dir);
    proto::RestoreShardsResponse response;
    return Call(&proto::ParameterServer::Stub::RestoreShards, request, &response);
  }

  PsTestCluster cluster_;
  std::unique_ptr<proto::ParameterServer::Stub> stub_;
};

TEST_F(PsServiceTest, MalformedRequestsGetClearErrorsAndTheServerKeepsServing) {
  const std::string checksum = cluster_.shards(0).Checksum();
  // Unknown partition.
  proto::PullDenseRequest pull;
  pull.add_refs()->set_variable("nope");
  proto::PullDenseResponse pulled;
  grpc::Status status = Call(&proto::ParameterServer::Stub::PullDense, pull, &pulled);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("no partition 0 of variable 'nope'"));
  // Wrong shape, dtype, byte count, worker, version; a sparse table pushed whole.
  proto::PsTensor g = KernelGradient();
  g.set_shape(1, 3);
  status = Push(g);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("shape [3, 3], the partition is [3, 2]"));
  g = KernelGradient();
  g.set_dtype("int8");
  EXPECT_THAT(Push(g).error_message(), HasSubstr("dtype 'int8'"));
  // A 16-bit wire dtype is known, but its message is 2 bytes per element.
  g.set_dtype("float16");
  EXPECT_THAT(Push(g).error_message(), HasSubstr("24 bytes for 6 float16 elements"));
  g = KernelGradient();
  g.mutable_data()->resize(5);
  EXPECT_THAT(Push(g).error_message(), HasSubstr("5 bytes for 6 float32 elements"));
  EXPECT_THAT(Push(KernelGradient(), 7).error_message(), HasSubstr("worker rank 7"));
  g = KernelGradient();
  g.set_version(4);
  EXPECT_THAT(Push(g).error_message(), HasSubstr("read version 4"));
  g = KernelGradient();
  g.mutable_ref()->set_variable("table");
  EXPECT_THAT(Push(g).error_message(), HasSubstr("sparse"));
  // Rows out of range, repeated, or not whole floats.
  proto::PullRowsRequest rows;
  rows.mutable_ref()->set_variable("table");
  rows.add_ids(8);
  proto::PullRowsResponse got_rows;
  status = Call(&proto::ParameterServer::Stub::PullRows, rows, &got_rows);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("row 8 is outside the partition's rows [0, 8)"));
  proto::PushRowsRequest push_rows;
  push_rows.mutable_ref()->set_variable("table");
  push_rows.add_ids(1);
  push_rows.add_ids(1);
  push_rows.mutable_rows()->resize(16);
  proto::PushRowsResponse pushed_rows;
  EXPECT_THAT(
      Call(&proto::ParameterServer::Stub::PushRows, push_rows, &pushed_rows).error_message(),
      HasSubstr("appears twice"));
  push_rows.clear_ids();
  push_rows.add_ids(1);
  push_rows.mutable_rows()->resize(7);
  EXPECT_THAT(
      Call(&proto::ParameterServer::Stub::PushRows, push_rows, &pushed_rows).error_message(),
      HasSubstr("not whole float32"));
  // A request with one bad gradient among good ones applies none of them.
  proto::PushDenseRequest mixed;
  *mixed.add_gradients() = KernelGradient();
  proto::PsTensor bad = KernelGradient();
  bad.mutable_ref()->set_partition(3);
  *mixed.add_gradients() = bad;
  proto::PushDenseResponse mixed_response;
  EXPECT_FALSE(Call(&proto::ParameterServer::Stub::PushDense, mixed, &mixed_response).ok());
  EXPECT_EQ(cluster_.shards(0).Checksum(), checksum);
  EXPECT_EQ(cluster_.shards(0).stats().counts.pushes, 0);

  // Still serving: a good push applies and a pull sees it.
  proto::PushDenseRequest good;
  *good.add_gradients() = KernelGradient(2.0f);
  good.set_return_values(true);
  proto::PushDenseResponse response;
  ASSERT_TRUE(Call(&proto::ParameterServer::Stub::PushDense, good, &response).ok());
  ASSERT_EQ(response.outcomes_size(), 1);
  EXPECT_TRUE(response.outcomes(0).applied());
  EXPECT_EQ(response.outcomes(0).reason(), "applied");
  ASSERT_EQ(response.values_size(), 1);
  EXPECT_EQ(response.values(0).version(), 1);
  pull.clear_refs();
  pull.add_refs()->set_variable("kernel");
  ASSERT_TRUE(Call(&proto::ParameterServer::Stub::PullDense, pull, &pulled).ok());
  EXPECT_EQ(pulled.values(0).data(), response.values(0).data());
  EXPECT_NE(cluster_.shards(0).Checksum(), checksum);
}

TEST_F(PsServiceTest, SavesItsShardsAndRestoresThem) {
  FileSystem& fs = DefaultFileSystem();
  ASSERT_TRUE(Push(KernelGradient(1.0f)).ok());
  const std::string saved_checksum = cluster_.shards(0).Checksum();
  const std::string dir = *PrepareCheckpointDir(fs, cluster_.model_dir(), 1);
  proto::SaveShardsRequest save;
  save.set_checkpoint_dir(dir);
  save.set_file_name("ps-00000-of-00001.safetensors");
  proto::SaveShardsResponse saved;
  grpc::Status status = Call(&proto::ParameterServer::Stub::SaveShards, save, &saved);
  ASSERT_TRUE(status.ok()) << status.error_message();
  absl::StatusOr<PartRecord> part = PartRecordFromJson(nlohmann::json::parse(saved.part_json()));
  ASSERT_TRUE(part.ok()) << part.status();
  EXPECT_EQ(part->file.name, "ps-00000-of-00001.safetensors");
  EXPECT_GT(part->file.bytes, (6 + 16) * 4);
  ASSERT_EQ(part->variables.size(), 2u);
  EXPECT_TRUE(fs.Exists(JoinPath(dir, part->file.name)));
  Manifest manifest;
  manifest.step = 1;
  ASSERT_TRUE(CommitCheckpoint(fs, cluster_.model_dir(), manifest, {*part}, 0).ok());

  ASSERT_TRUE(Push(KernelGradient(3.0f), 1).ok());
  EXPECT_NE(cluster_.shards(0).Checksum(), saved_checksum);
  proto::RestoreShardsRequest restore;
  restore.set_checkpoint_dir(dir);
  proto::RestoreShardsResponse restored;
  status = Call(&proto::ParameterServer::Stub::RestoreShards, restore, &restored);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(restored.step(), 1);
  EXPECT_EQ(cluster_.shards(0).Checksum(), saved_checksum);
  EXPECT_EQ(cluster_.shards(0).version(0), 1);
}

TEST_F(PsServiceTest, BadSaveAndRestoreRequestsGetErrorsAndTheServerKeepsServing) {
  FileSystem& fs = DefaultFileSystem();
  const std::string dir = *PrepareCheckpointDir(fs, cluster_.model_dir(), 1);
  for (const std::string& file : {std::string(""), std::string("../x.safetensors"),
                                  std::string("a/b.safetensors"), std::string("..")}) {
    grpc::Status status = Save(dir, file);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << file;
    EXPECT_THAT(status.error_message(), HasSubstr("not a plain file name"));
  }
  grpc::Status status = Save("relative/ckpt-1", "p.safetensors");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("not an absolute path"));
  EXPECT_EQ(Save("", "p.safetensors").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Restore("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const std::string missing = JoinPath(cluster_.model_dir(), "ckpt-9");
  status = Save(missing, "p.safetensors");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr(missing));
  EXPECT_EQ(Restore(missing).error_code(), grpc::StatusCode::NOT_FOUND);
  // Written but not committed (no index.json): not a checkpoint yet.
  ASSERT_TRUE(Save(dir, "p.safetensors").ok());
  status = Restore(dir);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  // Committed, then one byte of the tensor file flipped: DataLoss naming the file.
  Manifest manifest;
  manifest.step = 1;
  {
    proto::SaveShardsRequest request;
    request.set_checkpoint_dir(dir);
    request.set_file_name("p.safetensors");
    proto::SaveShardsResponse response;
    ASSERT_TRUE(Call(&proto::ParameterServer::Stub::SaveShards, request, &response).ok());
    ASSERT_TRUE(CommitCheckpoint(fs, cluster_.model_dir(), manifest,
                                 {*PartRecordFromJson(nlohmann::json::parse(response.part_json()))},
                                 0)
                    .ok());
  }
  const std::string file = JoinPath(dir, "p.safetensors");
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-3, std::ios::end);
    char byte = 0;
    f.get(byte);
    f.seekp(-3, std::ios::end);
    f.put(static_cast<char>(byte ^ 0x40));
  }
  const std::string checksum = cluster_.shards(0).Checksum();
  ASSERT_TRUE(Push(KernelGradient(1.0f)).ok());
  const std::string pushed = cluster_.shards(0).Checksum();
  EXPECT_NE(pushed, checksum);
  status = Restore(dir);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(status.error_message(), HasSubstr("p.safetensors"));
  EXPECT_EQ(cluster_.shards(0).Checksum(), pushed);  // nothing restored
  // Still serving: another push applies.
  ASSERT_TRUE(Push(KernelGradient(1.0f), 1).ok());
  EXPECT_NE(cluster_.shards(0).Checksum(), pushed);
  EXPECT_EQ(cluster_.shards(0).version(0), 2);
}

// Issue 20, item 2: a peer cannot make the ps write or read outside the job's
// model directory, nor restore a checkpoint the chief did not commit.
TEST_F(PsServiceTest, SavesAndRestoresStayInsideTheModelDirectory) {
  FileSystem& fs = DefaultFileSystem();
  TempDir elsewhere;
  const std::string model_dir = cluster_.model_dir();
  const std::string outside = *PrepareCheckpointDir(fs, elsewhere.path(), 1);
  const std::string sibling = std::filesystem::path(elsewhere.path()).filename().string();
  const std::string link = JoinPath(model_dir, "ckpt-5");
  std::filesystem::create_directory_symlink(outside, link);
  ASSERT_TRUE(fs.CreateDir(JoinPath(model_dir, "sub/ckpt-1")).ok());
  const std::vector<std::string> escapes = {
      outside,                                                       // another directory
      JoinPath(model_dir, absl::StrCat("../", sibling, "/ckpt-1")),  // ".." out of it
      JoinPath(model_dir, "ckpt-1/../../x"),
      link,       // a symlink out of it
      model_dir,  // not a checkpoint
      JoinPath(model_dir, "sub/ckpt-1"),
  };
  for (const std::string& dir : escapes) {
    grpc::Status status = Save(dir, "ps-00000-of-00001.safetensors");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << dir;
    EXPECT_THAT(status.error_message(), HasSubstr(dir));
    EXPECT_THAT(status.error_message(), HasSubstr(model_dir));
  }
  EXPECT_TRUE(std::filesystem::is_empty(outside));  // nothing written outside
  EXPECT_FALSE(fs.Exists(JoinPath(elsewhere.path(), "x")));

  // A committed checkpoint outside, or through the symlink, is not restored.
  ASSERT_TRUE(Push(KernelGradient(2.0f)).ok());
  const std::string elsewhere_ckpt = CommitShards(elsewhere.path(), 2, {&cluster_.shards(0)});
  ASSERT_TRUE(Push(KernelGradient(1.0f)).ok());
  const std::string checksum = cluster_.shards(0).Checksum();
  const std::string committed_link = JoinPath(model_dir, "ckpt-6");
  std::filesystem::create_directory_symlink(elsewhere_ckpt, committed_link);
  for (const std::string& dir : {elsewhere_ckpt, link, committed_link}) {
    grpc::Status status = Restore(dir);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << dir;
    EXPECT_THAT(status.error_message(), HasSubstr(model_dir));
  }
  EXPECT_EQ(cluster_.shards(0).Checksum(), checksum);

  // Inside: no manifest forged, no committed checkpoint written again.
  const std::string committed = CommitShards(model_dir, 3, {&cluster_.shards(0)});
  EXPECT_EQ(Save(JoinPath(model_dir, "ckpt-4"), "index.json").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Save(committed, "ps-00000-of-00001.safetensors").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(Restore(committed).ok());
}

TEST(PsServiceUnavailableTest, AnswersUnavailableUntilActivated) {
  PsService service;
  ServerOptions options;
  options.services.push_back(service.grpc_service());
  std::unique_ptr<Server> server = *Server::Create(options);
  const int port = *server->Start("127.0.0.1:0");
  auto stub = proto::ParameterServer::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  proto::PsStatsResponse response;
  grpc::Status status = stub->Stats(&context, proto::PsStatsRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("not serving variables yet"));
  for (int call = 0; call < 2; ++call) {
    grpc::ClientContext checkpoint_context;
    if (call == 0) {
      proto::SaveShardsRequest request;
      request.set_checkpoint_dir("/tmp");
      request.set_file_name("p.safetensors");
      proto::SaveShardsResponse saved;
      status = stub->SaveShards(&checkpoint_context, request, &saved);
    } else {
      proto::RestoreShardsRequest request;
      request.set_checkpoint_dir("/tmp");
      proto::RestoreShardsResponse restored;
      status = stub->RestoreShards(&checkpoint_context, request, &restored);
    }
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << call;
  }
  auto shards = std::shared_ptr<ParameterShards>(*ParameterShards::Create(OnePsPlan(), 0, nullptr));
  service.Activate(shards);
  grpc::ClientContext again;
  ASSERT_TRUE(stub->Stats(&again, proto::PsStatsRequest(), &response).ok());
  EXPECT_EQ(response.partitions(), 2);
  EXPECT_EQ(response.value_bytes(), (6 + 16) * 4);
  // Serving, but with no model directory: it saves nowhere.
  TempDir tmp;
  const std::string dir = *PrepareCheckpointDir(DefaultFileSystem(), tmp.path(), 1);
  grpc::ClientContext save_context;
  proto::SaveShardsRequest save;
  save.set_checkpoint_dir(dir);
  save.set_file_name("p.safetensors");
  proto::SaveShardsResponse saved;
  status = stub->SaveShards(&save_context, save, &saved);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("no model directory"));
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  server->Stop();
}

}  // namespace
}  // namespace meshtrain
