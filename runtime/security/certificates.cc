#include "runtime/security/certificates.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/file_system.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/security/openssl_util.h"
#include "runtime/security/tls_credentials.h"

namespace meshtrain {
namespace {

constexpr int kMaxDays = 36500;

absl::Status OpenSslFailure(absl::string_view what) {
  return absl::InternalError(absl::StrCat("openssl: ", what, ": ", DrainOpenSslErrors()));
}

absl::StatusOr<OpenSslPtr<EVP_PKEY>> NewKey() {
  OpenSslPtr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpenSslFailure("making an ECDSA P-256 key");
  return key;
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr)
    return OpenSslFailure(absl::StrCat("extension ", OBJ_nid2sn(nid), "=", value));
  const int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (added != 1) return OpenSslFailure("adding an extension");
  return absl::OkStatus();
}

// A certificate for `key` named `common_name`, signed by `issuer_key` (the
// issuer is the certificate itself when `issuer` is null).
absl::StatusOr<OpenSslPtr<X509>> NewCertificate(EVP_PKEY* key, const std::string& common_name,
                                                X509* issuer, EVP_PKEY* issuer_key, int days) {
  OpenSslPtr<X509> cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), 2) != 1) {
    return OpenSslFailure("making a certificate");
  }
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return OpenSslFailure("a random serial number");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  const bool serial_set =
      bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  if (!serial_set) return OpenSslFailure("setting the serial number");
  // An hour of slack for clocks that differ between hosts.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("meshtrain"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  if (X509_set_pubkey(cert.get(), key) != 1) return OpenSslFailure("setting the public key");
  return cert;
}

absl::Status Sign(X509* cert, EVP_PKEY* issuer_key) {
  if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0) return OpenSslFailure("signing");
  return absl::OkStatus();
}

bool IsIpAddress(const std::string& host) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

// Host names as a certificate may carry them: letters, digits, '-', '.', and
// ':' (IPv6); anything else would also break the extension's syntax.
absl::Status CheckHost(const std::string& host) {
  const bool ok =
      !host.empty() && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
               c == ':';
      });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("host ", QuoteForMessage(host),
                   " cannot be a certificate name (letters, digits, '-', '.' and ':' only)"));
}

absl::Status CheckSubjectName(const std::string& name) {
  const bool ok =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
               c == '-';
      });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("certificate subject ", QuoteForMessage(name),
                   " is not a task name (\"worker:0\") or \"cluster\""));
}

// Writes `contents` to `path` with `mode`, through a temporary file and a
// rename, so that a reader never sees half a key.
absl::Status WriteWithMode(const std::string& path, const std::string& contents, mode_t mode) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("certs: cannot create ", tmp, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::DataLossError(absl::StrCat("certs: writing ", tmp, ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);  // the umask may have narrowed it; never widened
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return absl::DataLossError(absl::StrCat("certs: writing ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

absl::StatusOr<PemPair> MakeCertificateAuthority(int days) {
  if (days < 1 || days > kMaxDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("certs: validity of ", days, " days; choose 1 to ", kMaxDays));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(OpenSslPtr<EVP_PKEY> key, NewKey());
  MESHTRAIN_ASSIGN_OR_RETURN(
      OpenSslPtr<X509> cert,
      NewCertificate(key.get(), "meshtrain cluster CA", nullptr, key.get(), days));
  MESHTRAIN_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  MESHTRAIN_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  MESHTRAIN_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  MESHTRAIN_RETURN_IF_ERROR(Sign(cert.get(), key.get()));
  PemPair pair;
  MESHTRAIN_ASSIGN_OR_RETURN(pair.cert_pem, CertificateToPem(cert.get()));
  MESHTRAIN_ASSIGN_OR_RETURN(pair.key_pem, PrivateKeyToPem(key.get()));
  return pair;
}

absl::StatusOr<PemPair> MakeTaskCertificate(const PemPair& ca, const CertificateSubject& subject,
                                            int days) {
  if (days < 1 || days > kMaxDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("certs: validity of ", days, " days; choose 1 to ", kMaxDays));
  }
  MESHTRAIN_RETURN_IF_ERROR(CheckSubjectName(subject.name));
  std::vector<std::string> alt_names = {absl::StrCat("DNS:", kClusterServerName)};
  std::set<std::string> seen = {std::string(kClusterServerName)};
  for (const std::string& host : subject.hosts) {
    MESHTRAIN_RETURN_IF_ERROR(CheckHost(host));
    if (!seen.insert(host).second) continue;
    alt_names.push_back(absl::StrCat(IsIpAddress(host) ? "IP:" : "DNS:", host));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<OpenSslPtr<X509>> ca_certs,
                             ParseCertificates(ca.cert_pem, "ca.crt"));
  MESHTRAIN_ASSIGN_OR_RETURN(OpenSslPtr<EVP_PKEY> ca_key, ParsePrivateKey(ca.key_pem, "ca.key"));
  if (X509_check_private_key(ca_certs[0].get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "certs: ca.key is not the key of ca.crt; restore the pair, or make a new CA in an "
        "empty directory (every task then needs new certificates)");
  }
  MESHTRAIN_ASSIGN_OR_RETURN(OpenSslPtr<EVP_PKEY> key, NewKey());
  MESHTRAIN_ASSIGN_OR_RETURN(
      OpenSslPtr<X509> cert,
      NewCertificate(key.get(), subject.name, ca_certs[0].get(), ca_key.get(), days));
  X509* issuer = ca_certs[0].get();
  MESHTRAIN_RETURN_IF_ERROR(
      AddExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE"));
  MESHTRAIN_RETURN_IF_ERROR(
      AddExtension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature,keyAgreement"));
  MESHTRAIN_RETURN_IF_ERROR(
      AddExtension(cert.get(), issuer, NID_ext_key_usage, "serverAuth,clientAuth"));
  MESHTRAIN_RETURN_IF_ERROR(
      AddExtension(cert.get(), issuer, NID_subject_alt_name, absl::StrJoin(alt_names, ",")));
  MESHTRAIN_RETURN_IF_ERROR(
      AddExtension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always"));
  MESHTRAIN_RETURN_IF_ERROR(Sign(cert.get(), ca_key.get()));
  PemPair pair;
  MESHTRAIN_ASSIGN_OR_RETURN(pair.cert_pem, CertificateToPem(cert.get()));
  MESHTRAIN_ASSIGN_OR_RETURN(pair.key_pem, PrivateKeyToPem(key.get()));
  return pair;
}

absl::StatusOr<std::vector<std::string>> WriteClusterCertificates(
    const CertificateOptions& options) {
  if (options.subjects.empty()) {
    return absl::InvalidArgumentError("certs: no task to make a certificate for");
  }
  if (options.days < 1 || options.days > kMaxDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("certs: validity of ", options.days, " days; choose 1 to ", kMaxDays));
  }
  // Everything is checked before the first file is written.
  std::set<std::string> stems;
  for (const CertificateSubject& subject : options.subjects) {
    MESHTRAIN_RETURN_IF_ERROR(CheckSubjectName(subject.name));
    for (const std::string& host : subject.hosts) MESHTRAIN_RETURN_IF_ERROR(CheckHost(host));
    if (!stems.insert(TaskCertificateStem(subject.name)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("certs: ", QuoteForMessage(subject.name), " is listed twice"));
    }
  }
  struct stat st;
  if (::stat(options.out_dir.c_str(), &st) != 0) {
    if (::mkdir(options.out_dir.c_str(), 0700) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("certs: cannot create ", options.out_dir, ": ", std::strerror(errno)));
    }
  } else if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("certs: ", options.out_dir, " is not a directory; name a directory"));
  }
  const std::string ca_crt = absl::StrCat(options.out_dir, "/ca.crt");
  const std::string ca_key = absl::StrCat(options.out_dir, "/ca.key");
  std::vector<std::string> written;
  PemPair ca;
  if (Exists(ca_crt) || Exists(ca_key)) {
    if (!options.reuse_ca) {
      return absl::AlreadyExistsError(absl::StrCat(
          "certs: ", options.out_dir,
          " already holds a cluster CA (ca.crt); pass --add to sign more task certificates "
          "with it, or choose an empty directory for a new cluster"));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(ca.cert_pem, DefaultFileSystem().ReadFile(ca_crt));
    MESHTRAIN_ASSIGN_OR_RETURN(ca.key_pem, DefaultFileSystem().ReadFile(ca_key));
  } else {
    MESHTRAIN_ASSIGN_OR_RETURN(ca, MakeCertificateAuthority(std::min(kMaxDays, options.days * 10)));
    MESHTRAIN_RETURN_IF_ERROR(WriteWithMode(ca_key, ca.key_pem, 0600));
    MESHTRAIN_RETURN_IF_ERROR(WriteWithMode(ca_crt, ca.cert_pem, 0644));
    written.push_back(ca_crt);
    written.push_back(ca_key);
  }
  for (const CertificateSubject& subject : options.subjects) {
    MESHTRAIN_ASSIGN_OR_RETURN(PemPair pair, MakeTaskCertificate(ca, subject, options.days));
    const std::string stem = absl::StrCat(options.out_dir, "/", TaskCertificateStem(subject.name));
    MESHTRAIN_RETURN_IF_ERROR(WriteWithMode(stem + ".key", pair.key_pem, 0600));
    MESHTRAIN_RETURN_IF_ERROR(WriteWithMode(stem + ".crt", pair.cert_pem, 0644));
    written.push_back(stem + ".crt");
    written.push_back(stem + ".key");
  }
  return written;
}

}  // namespace meshtrain
