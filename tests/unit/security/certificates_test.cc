// `meshtrain certs`'s library: the files it writes, their modes, and what
// LoadTlsCredentials accepts and refuses (with the reason) from them.
#include "runtime/security/certificates.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/security/tls_credentials.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

class CertificatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/meshtrain-certs-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CertificateOptions Options(std::vector<std::string> names) {
    CertificateOptions options;
    options.out_dir = dir_;
    for (std::string& name : names) options.subjects.push_back({std::move(name), {}});
    return options;
  }
  static int Mode(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
  }
  static void Write(const std::string& path, const std::string& contents) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::string dir_;
};

TEST_F(CertificatesTest, WritesACaAndOnePairPerTaskWithPrivateKeys) {
  auto written = WriteClusterCertificates(Options({"chief:0", "worker:0", "ps:1"}));
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->size(), 8u);
  EXPECT_EQ(Mode(dir_ + "/ca.key"), 0600);
  EXPECT_EQ(Mode(dir_ + "/ca.crt"), 0644);
  EXPECT_EQ(Mode(dir_ + "/worker-0.key"), 0600);
  EXPECT_EQ(Mode(dir_ + "/ps-1.crt"), 0644);
  for (const char* task : {"chief:0", "worker:0", "ps:1"}) {
    auto creds = LoadTlsCredentials(dir_, task);
    ASSERT_TRUE(creds.ok()) << task << ": " << creds.status();
    EXPECT_EQ(creds->source, dir_ + "/" + TaskCertificateStem(task) + ".crt");
  }
  // A task with no pair of its own and no shared one is told how to fix it.
  auto missing = LoadTlsCredentials(dir_, "worker:7");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("worker-7.crt"));
  EXPECT_THAT(missing.status().message(), HasSubstr("meshtrain certs --out"));
}

TEST_F(CertificatesTest, EveryTaskFallsBackToTheSharedPair) {
  CertificateOptions options = Options({"cluster"});
  options.subjects[0].hosts = {"node-1", "198.18.0.1", "node-1"};
  ASSERT_TRUE(WriteClusterCertificates(options).ok());
  auto creds = LoadTlsCredentials(dir_, "worker:3");
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ(creds->source, dir_ + "/cluster.crt");
}

TEST_F(CertificatesTest, AnExistingCaIsKeptOnlyWhenAsked) {
  ASSERT_TRUE(WriteClusterCertificates(Options({"worker:0"})).ok());
  const std::string ca = Read(dir_ + "/ca.crt");
  auto again = WriteClusterCertificates(Options({"worker:1"}));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr("--add"));
  CertificateOptions add = Options({"worker:1"});
  add.reuse_ca = true;
  auto added = WriteClusterCertificates(add);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->size(), 2u);
  EXPECT_EQ(Read(dir_ + "/ca.crt"), ca);
  EXPECT_TRUE(LoadTlsCredentials(dir_, "worker:1").ok());
}

TEST_F(CertificatesTest, BadSubjectsAndHostsAreRefused) {
  EXPECT_EQ(WriteClusterCertificates(Options({})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteClusterCertificates(Options({"worker:0", "worker:0"})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteClusterCertificates(Options({"../etc/passwd"})).status().code(),
            absl::StatusCode::kInvalidArgument);
  CertificateOptions options = Options({"worker:0"});
  options.subjects[0].hosts = {"a,DNS:evil"};
  auto injected = WriteClusterCertificates(options);
  EXPECT_EQ(injected.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(injected.status().message(), HasSubstr("cannot be a certificate name"));
  options.subjects[0].hosts = {};
  options.days = 0;
  EXPECT_EQ(WriteClusterCertificates(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CertificatesTest, LoadingRefusesWrongMountsWithTheirReason) {
  EXPECT_THAT(LoadTlsCredentials(dir_ + "/absent", "worker:0").status().message(),
              HasSubstr("does not exist"));
  EXPECT_THAT(LoadTlsCredentials(dir_, "worker:0").status().message(), HasSubstr("ca.crt"));
  ASSERT_TRUE(WriteClusterCertificates(Options({"worker:0", "worker:1"})).ok());

  // A key that belongs to another certificate.
  const std::string key0 = Read(dir_ + "/worker-0.key");
  Write(dir_ + "/worker-0.key", Read(dir_ + "/worker-1.key"));
  EXPECT_THAT(LoadTlsCredentials(dir_, "worker:0").status().message(),
              HasSubstr("is not the key of"));
  Write(dir_ + "/worker-0.key", key0);

  // A certificate of another cluster's CA.
  auto other_ca = MakeCertificateAuthority(1);
  ASSERT_TRUE(other_ca.ok());
  auto foreign = MakeTaskCertificate(*other_ca, {"worker:0", {}}, 1);
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  Write(dir_ + "/worker-0.crt", foreign->cert_pem);
  Write(dir_ + "/worker-0.key", foreign->key_pem);
  auto wrong_ca = LoadTlsCredentials(dir_, "worker:0");
  EXPECT_EQ(wrong_ca.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_ca.status().message(), HasSubstr("does not verify against"));

  // Not PEM at all.
  Write(dir_ + "/worker-0.crt", std::string(100, '\x01'));
  EXPECT_THAT(LoadTlsCredentials(dir_, "worker:0").status().message(),
              HasSubstr("no PEM certificate"));
  Write(dir_ + "/worker-1.key", "-----BEGIN PRIVATE KEY-----\ngarbage\n");
  EXPECT_THAT(LoadTlsCredentials(dir_, "worker:1").status().message(),
              HasSubstr("not an unencrypted PEM private key"));
}

}  // namespace
}  // namespace meshtrain
