// Test support: .npy bytes as np.save writes them. Header-only; used by the
// npy and conversion tests.
#ifndef MESHTRAIN_TESTS_UNIT_DATA_NPY_FILES_H_
#define MESHTRAIN_TESTS_UNIT_DATA_NPY_FILES_H_

#include <initializer_list>
#include <string>

#include "absl/strings/string_view.h"

namespace meshtrain::testing {

// A file as np.save writes it: magic, version, header length, the dict
// padded with spaces to a multiple of 64 bytes and ended by a newline, data.
inline std::string Npy(const std::string& dict, absl::string_view data, int major = 1) {
  std::string header = dict;
  const size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t i = 0; i < prefix - 8; ++i)
    out.push_back(static_cast<char>(header.size() >> (8 * i)));
  return out + header + std::string(data);
}

template <typename T>
std::string Bytes(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  return out;
}

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_DATA_NPY_FILES_H_
