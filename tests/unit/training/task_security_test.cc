// LoadTaskSecurity and ExposureWarning: where a task's credentials come from
// (--tls-dir before MESHTRAIN_TLS_DIR), the shared pair when the task is not
// known yet, --require-tls, bad flag values, and when the warning is due.
#include "training/task_security.h"

#include <cstdlib>
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/security/certificates.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

class TaskSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/meshtrain-task-security-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    CertificateOptions options;
    options.out_dir = dir_;
    options.subjects = {{"worker:0", {}}, {"cluster", {}}};
    ASSERT_TRUE(WriteClusterCertificates(options).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TaskSecurityTest, TheFlagComesBeforeTheVariableAndNoneIsPlain) {
  const EnvLookup env = MapEnvironment({{"MESHTRAIN_TLS_DIR", dir_}});
  TaskSecurityOptions options;
  auto from_env = LoadTaskSecurity(options, env, "worker:0");
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  ASSERT_TRUE(from_env->enabled());
  EXPECT_EQ(from_env->credentials->source, dir_ + "/worker-0.crt");
  EXPECT_TRUE(from_env->data_path_encryption);
  EXPECT_NE(from_env->data_path_tls, nullptr);

  options.tls_dir = dir_ + "/absent";
  auto from_flag = LoadTaskSecurity(options, env, "worker:0");
  EXPECT_EQ(from_flag.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(from_flag.status().message(), HasSubstr("credentials from --tls-dir"));

  auto plain = LoadTaskSecurity(TaskSecurityOptions{}, MapEnvironment({}), "worker:0");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->enabled());
}

TEST_F(TaskSecurityTest, ATaskNotKnownYetUsesTheSharedPair) {
  TaskSecurityOptions options;
  options.tls_dir = dir_;
  options.data_path_encryption = "off";
  auto shared = LoadTaskSecurity(options, MapEnvironment({}), "");
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(shared->credentials->source, dir_ + "/cluster.crt");
  EXPECT_FALSE(shared->data_path_encryption);
  std::filesystem::remove(dir_ + "/cluster.crt");
  auto missing = LoadTaskSecurity(options, MapEnvironment({}), "");
  EXPECT_THAT(missing.status().message(), HasSubstr("before it knows its name"));
}

TEST_F(TaskSecurityTest, RequireTlsAndBadValuesAreRefusedWithTheFix) {
  TaskSecurityOptions options;
  options.require_tls = true;
  auto refused = LoadTaskSecurity(options, MapEnvironment({}), "worker:0");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("meshtrain certs --out DIR"));
  options.require_tls = false;
  options.data_path_encryption = "yes";
  EXPECT_EQ(LoadTaskSecurity(options, MapEnvironment({}), "worker:0").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TaskSecurityTest, OnlyAPlainTaskReachableFromOtherHostsIsWarned) {
  EXPECT_THAT(ExposureWarning(MeshSecurity{}, "0.0.0.0"), HasSubstr("without TLS"));
  EXPECT_THAT(ExposureWarning(MeshSecurity{}, "10.1.2.3"), HasSubstr("--require-tls"));
  EXPECT_EQ(ExposureWarning(MeshSecurity{}, "127.0.0.1"), "");
  EXPECT_EQ(ExposureWarning(MeshSecurity{}, "localhost"), "");
  TaskSecurityOptions options;
  options.tls_dir = dir_;
  auto secure = LoadTaskSecurity(options, MapEnvironment({}), "worker:0");
  ASSERT_TRUE(secure.ok());
  EXPECT_EQ(ExposureWarning(*secure, "0.0.0.0"), "");
}

}  // namespace
}  // namespace meshtrain
