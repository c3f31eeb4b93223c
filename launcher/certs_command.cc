#include "launcher/certs_command.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "launcher/flag_set.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"
#include "runtime/cluster/tf_config.h"
#include "runtime/security/certificates.h"
#include "runtime/security/tls_credentials.h"

namespace meshtrain {
namespace {

constexpr char kDescription[] =
    "Makes the TLS credentials of a cluster in DIR: ca.crt and ca.key (the cluster's CA; keep\n"
    "ca.key off the tasks), and cluster.crt/.key, a pair every task shares; or, with --tasks\n"
    "or --from-tf-config, one pair per task (worker-0.crt/.key). Give every task\n"
    "--tls-dir DIR (or MESHTRAIN_TLS_DIR=DIR): its gRPC server and channels and its tcp data\n"
    "path then speak mutual TLS, and peers without a certificate of this CA are refused.\n"
    "A Kubernetes Secret made from the files mounts as such a directory (docs/security.md).";

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    items.emplace_back(absl::StripAsciiWhitespace(item));
  }
  return items;
}

// Every task of TF_CONFIG's cluster, its host among its certificate's names.
absl::StatusOr<std::vector<CertificateSubject>> SubjectsFromTfConfig() {
  MESHTRAIN_ASSIGN_OR_RETURN(ClusterConfig config, ClusterConfigFromEnvironment());
  std::vector<CertificateSubject> subjects;
  for (const TaskId& task : config.cluster.AllTasks()) {
    CertificateSubject subject{task.ToString(), {}};
    absl::StatusOr<HostPort> address = ParseHostPort(config.cluster.address(task));
    if (address.ok()) subject.hosts.push_back(address->host);
    subjects.push_back(std::move(subject));
  }
  return subjects;
}

}  // namespace

int RunCertsCommand(const std::vector<std::string>& args) {
  std::string out;
  std::string tasks;
  std::string hosts;
  bool from_tf_config = false;
  bool add = false;
  int64_t days = 365;
  FlagSet flags("certs",
                "meshtrain certs --out DIR [--tasks chief:0,worker:0,... | --from-tf-config] "
                "[--hosts a,b] [--days N] [--add]",
                kDescription);
  flags.AddString("out", &out, "directory to write the credentials into (made if absent)");
  flags.AddString("tasks", &tasks, "one pair per task of this list (default: one shared pair)");
  flags.AddBool("from-tf-config", &from_tf_config,
                "one pair per task of TF_CONFIG's cluster, each naming its task's host");
  flags.AddString("hosts", &hosts, "more DNS names or IP addresses every certificate names");
  flags.AddInt("days", &days, "validity of the task certificates (the CA's: 10 times it)");
  flags.AddBool("add", &add, "sign with the CA already in DIR (adding tasks to a cluster)");
  if (std::optional<int> exit = ParseCommandFlags(flags, args)) return *exit;
  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "meshtrain certs: %s\n", message.c_str());
    return 1;
  };
  if (out.empty()) return fail("--out DIR is required: where to write the credentials");
  if (!tasks.empty() && from_tf_config) {
    return fail("--tasks and --from-tf-config both name the tasks; give one of them");
  }
  if (days < 1 || days > 3650) return fail(absl::StrCat("--days ", days, ": choose 1 to 3650"));

  CertificateOptions options;
  options.out_dir = out;
  options.days = static_cast<int>(days);
  options.reuse_ca = add;
  if (from_tf_config) {
    absl::StatusOr<std::vector<CertificateSubject>> subjects = SubjectsFromTfConfig();
    if (!subjects.ok()) return fail(std::string(subjects.status().message()));
    options.subjects = std::move(*subjects);
  } else if (!tasks.empty()) {
    for (std::string& task : SplitList(tasks)) options.subjects.push_back({std::move(task), {}});
  } else {
    options.subjects.push_back({std::string(kSharedCertificateStem), {}});
  }
  for (CertificateSubject& subject : options.subjects) {
    for (std::string& host : SplitList(hosts)) subject.hosts.push_back(host);
  }
  absl::StatusOr<std::vector<std::string>> written = WriteClusterCertificates(options);
  if (!written.ok()) return fail(std::string(written.status().message()));
  for (const std::string& path : *written) std::printf("wrote %s\n", path.c_str());
  std::printf("give every task --tls-dir %s (or MESHTRAIN_TLS_DIR=%s); keep ca.key off them\n",
              out.c_str(), out.c_str());
  return 0;
}

}  // namespace meshtrain
