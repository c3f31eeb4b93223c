#include "runtime/security/openssl_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace meshtrain {
namespace {

OpenSslPtr<BIO> MemoryBio(absl::string_view data) {
  return OpenSslPtr<BIO>(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

absl::StatusOr<std::string> BioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  if (size < 0 || data == nullptr) return absl::InternalError("openssl: empty memory buffer");
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace

std::string DrainOpenSslErrors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text;
}

absl::StatusOr<std::vector<OpenSslPtr<X509>>> ParseCertificates(absl::string_view pem,
                                                                absl::string_view what) {
  OpenSslPtr<BIO> bio = MemoryBio(pem);
  std::vector<OpenSslPtr<X509>> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // the read that ended the loop failed on purpose
  if (certs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     ": no PEM certificate in it (\"-----BEGIN CERTIFICATE-----\"); "
                     "make credentials with `meshtrain certs --out DIR`"));
  }
  return certs;
}

absl::StatusOr<OpenSslPtr<EVP_PKEY>> ParsePrivateKey(absl::string_view pem,
                                                     absl::string_view what) {
  OpenSslPtr<BIO> bio = MemoryBio(pem);
  OpenSslPtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not an unencrypted PEM private key (", DrainOpenSslErrors(),
                     "); make credentials with `meshtrain certs --out DIR`"));
  }
  return key;
}

absl::StatusOr<std::string> CertificateToPem(X509* cert) {
  OpenSslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return absl::InternalError(
        absl::StrCat("openssl: writing a certificate: ", DrainOpenSslErrors()));
  }
  return BioContents(bio.get());
}

absl::StatusOr<std::string> PrivateKeyToPem(EVP_PKEY* key) {
  OpenSslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return absl::InternalError(absl::StrCat("openssl: writing a key: ", DrainOpenSslErrors()));
  }
  return BioContents(bio.get());
}

}  // namespace meshtrain
