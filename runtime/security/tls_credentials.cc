#include "runtime/security/tls_credentials.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "runtime/base/file_system.h"
#include "runtime/base/status_macros.h"
#include "runtime/security/openssl_util.h"

namespace meshtrain {
namespace {

constexpr int64_t kMaxPemBytes = 1 << 20;

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (st.st_size > kMaxPemBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", st.st_size, " bytes is no PEM credential (at most ", kMaxPemBytes, ")"));
  }
  absl::StatusOr<std::string> contents = DefaultFileSystem().ReadFile(path);
  if (!contents.ok()) {
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot read it (",
                                                    contents.status().message(),
                                                    "); check the file's owner and mode"));
  }
  return contents;
}

std::string CertificateText(X509_STORE_CTX* ctx) {
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
}

}  // namespace

std::string TaskCertificateStem(absl::string_view task_name) {
  return absl::StrReplaceAll(task_name, {{":", "-"}});
}

absl::StatusOr<TlsCredentials> LoadTlsCredentials(const std::string& dir,
                                                  absl::string_view task_name) {
  const std::string fix =
      absl::StrCat("; make credentials with `meshtrain certs --out ", dir,
                   "` (or mount the cluster's), then pass --tls-dir or MESHTRAIN_TLS_DIR");
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(
        absl::StrCat("tls: credentials directory ", dir, " does not exist", fix));
  }
  TlsCredentials creds;
  const std::string ca_path = absl::StrCat(dir, "/ca.crt");
  if (!IsFile(ca_path)) {
    return absl::NotFoundError(absl::StrCat("tls: ", ca_path, " is missing", fix));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(creds.ca_pem, ReadPem(ca_path));
  const std::string own = absl::StrCat(dir, "/", TaskCertificateStem(task_name));
  const std::string shared = absl::StrCat(dir, "/", kSharedCertificateStem);
  std::string stem;
  if (!task_name.empty() && IsFile(own + ".crt")) {
    stem = own;
  } else if (IsFile(shared + ".crt")) {
    stem = shared;
  } else if (task_name.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "tls: ", dir, " holds no ", shared,
        ".crt, the pair shared by every task, which a task uses when it serves before it "
        "knows its name (mpirun, torchrun-style launches); make it with `meshtrain certs --out ",
        dir, " --add` (without --tasks)"));
  } else {
    return absl::NotFoundError(absl::StrCat("tls: ", dir, " holds neither ", own,
                                            ".crt (this task's) nor ", shared,
                                            ".crt (the shared one)", fix));
  }
  creds.source = stem + ".crt";
  MESHTRAIN_ASSIGN_OR_RETURN(creds.cert_pem, ReadPem(stem + ".crt"));
  MESHTRAIN_ASSIGN_OR_RETURN(creds.key_pem, ReadPem(stem + ".key"));

  // The checks a handshake would make, done once here with clear reasons.
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<OpenSslPtr<X509>> cas,
                             ParseCertificates(creds.ca_pem, ca_path));
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<OpenSslPtr<X509>> chain,
                             ParseCertificates(creds.cert_pem, creds.source));
  MESHTRAIN_ASSIGN_OR_RETURN(OpenSslPtr<EVP_PKEY> key,
                             ParsePrivateKey(creds.key_pem, stem + ".key"));
  if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("tls: ", stem, ".key is not the key of ",
                                                   creds.source, "; restore the pair", fix));
  }
  OpenSslPtr<X509_STORE> store(X509_STORE_new());
  for (const auto& ca : cas) X509_STORE_add_cert(store.get(), ca.get());
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted, chain[i].get());
  OpenSslPtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted);
  const bool verified = X509_verify_cert(ctx.get()) == 1;
  const std::string reason = verified ? "" : CertificateText(ctx.get());
  sk_X509_free(untrusted);
  ERR_clear_error();
  if (!verified) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls: ", creds.source, " does not verify against ", ca_path, " (", reason, ")", fix));
  }
  if (X509_check_host(chain[0].get(), kClusterServerName.data(), kClusterServerName.size(), 0,
                      nullptr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: ", creds.source, " does not carry the DNS name \"", kClusterServerName,
                     "\" that peers check; add it to the certificate's subjectAltName", fix));
  }
  return creds;
}

}  // namespace meshtrain
