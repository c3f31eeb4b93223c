// Test support: zip archives built in memory as np.savez (stored) and
// np.savez_compressed (deflated) write them, optionally with zip64 fields.
// Header-only; used by the zip, npy and conversion tests.
#ifndef MESHTRAIN_TESTS_UNIT_DATA_ZIP_FILES_H_
#define MESHTRAIN_TESTS_UNIT_DATA_ZIP_FILES_H_

#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshtrain::testing {

inline void Put(std::string& out, uint64_t value, int width) {
  for (int i = 0; i < width; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

inline std::string RawDeflate(const std::string& data) {
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&stream, data.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

struct ZipFileMember {
  std::string name;
  std::string data;
  bool deflate = false;
};

// A zip of `members`; zip64 puts every size and offset in zip64 fields and
// ends with the zip64 end record and locator, as np.savez does past 4 GiB.
inline std::string Zip(const std::vector<ZipFileMember>& members, bool zip64 = false) {
  std::string out;
  std::string central;
  for (const ZipFileMember& m : members) {
    const std::string stored = m.deflate ? RawDeflate(m.data) : m.data;
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(m.data.data()), static_cast<uInt>(m.data.size())));
    const uint64_t offset = out.size();
    std::string local_extra;
    std::string central_extra;
    if (zip64) {
      Put(local_extra, 1, 2);
      Put(local_extra, 16, 2);
      Put(local_extra, m.data.size(), 8);
      Put(local_extra, stored.size(), 8);
      Put(central_extra, 1, 2);
      Put(central_extra, 24, 2);
      Put(central_extra, m.data.size(), 8);
      Put(central_extra, stored.size(), 8);
      Put(central_extra, offset, 8);
    }
    const uint64_t marker = 0xffffffff;
    Put(out, 0x04034b50, 4);
    Put(out, zip64 ? 45 : 20, 2);
    Put(out, 0, 2);                  // flags
    Put(out, m.deflate ? 8 : 0, 2);  // method
    Put(out, 0, 4);                  // time, date
    Put(out, crc, 4);
    Put(out, zip64 ? marker : stored.size(), 4);
    Put(out, zip64 ? marker : m.data.size(), 4);
    Put(out, m.name.size(), 2);
    Put(out, local_extra.size(), 2);
    out += m.name + local_extra + stored;
    Put(central, 0x02014b50, 4);
    Put(central, zip64 ? 45 : 20, 2);
    Put(central, zip64 ? 45 : 20, 2);
    Put(central, 0, 2);
    Put(central, m.deflate ? 8 : 0, 2);
    Put(central, 0, 4);
    Put(central, crc, 4);
    Put(central, zip64 ? marker : stored.size(), 4);
    Put(central, zip64 ? marker : m.data.size(), 4);
    Put(central, m.name.size(), 2);
    Put(central, central_extra.size(), 2);
    Put(central, 0, 2 + 2 + 2 + 4);  // comment, disk, attributes
    Put(central, zip64 ? marker : offset, 4);
    central += m.name + central_extra;
  }
  const uint64_t central_at = out.size();
  out += central;
  if (zip64) {
    const uint64_t end64_at = out.size();
    Put(out, 0x06064b50, 4);
    Put(out, 44, 8);
    Put(out, 45, 2);
    Put(out, 45, 2);
    Put(out, 0, 4 + 4);
    Put(out, members.size(), 8);
    Put(out, members.size(), 8);
    Put(out, central.size(), 8);
    Put(out, central_at, 8);
    Put(out, 0x07064b50, 4);
    Put(out, 0, 4);
    Put(out, end64_at, 8);
    Put(out, 1, 4);
  }
  Put(out, 0x06054b50, 4);
  Put(out, 0, 2 + 2);
  Put(out, zip64 ? 0xffff : members.size(), 2);
  Put(out, zip64 ? 0xffff : members.size(), 2);
  Put(out, zip64 ? 0xffffffff : central.size(), 4);
  Put(out, zip64 ? 0xffffffff : central_at, 4);
  Put(out, 0, 2);
  return out;
}

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_DATA_ZIP_FILES_H_
