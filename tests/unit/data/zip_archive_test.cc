// Zip archives as np.savez and np.savez_compressed write them (two archives
// NumPy wrote, kept as bytes) and as a test builds them (stored, deflated,
// zip64), each member's sizes and CRC checked; every malformation names the
// archive, the member and the problem.
#include "runtime/data/zip_archive.h"

#include <zlib.h>

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/data/test_files.h"
#include "tests/unit/data/zip_files.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WritePlainFile;
using testing::Zip;

// np.savez / np.savez_compressed (NumPy 1.24) of x = uint8 [[1, 2], [3, 255]]
// and y = int64 [0, 1]: members x.npy and y.npy, local headers with a zip64
// extra field (NumPy forces it).
const std::string kSavez(
    "\x50\x4b\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x21\x00\x16\x74\x37\xc1\x84\x00\x00\x00"
    "\x84\x00\x00\x00\x05\x00\x14\x00\x78\x2e\x6e\x70\x79\x01\x00\x10\x00\x84\x00\x00\x00\x00"
    "\x00\x00\x00\x84\x00\x00\x00\x00\x00\x00\x00\x93\x4e\x55\x4d\x50\x59\x01\x00\x76\x00\x7b"
    "\x27\x64\x65\x73\x63\x72\x27\x3a\x20\x27\x7c\x75\x31\x27\x2c\x20\x27\x66\x6f\x72\x74\x72"
    "\x61\x6e\x5f\x6f\x72\x64\x65\x72\x27\x3a\x20\x46\x61\x6c\x73\x65\x2c\x20\x27\x73\x68\x61"
    "\x70\x65\x27\x3a\x20\x28\x32\x2c\x20\x32\x29\x2c\x20\x7d\x20\x20\x20\x20\x20\x20\x20\x20"
    "\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20"
    "\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20"
    "\x20\x20\x20\x20\x20\x20\x0a\x01\x02\x03\xff\x50\x4b\x03\x04\x14\x00\x00\x00\x00\x00\x00"
    "\x00\x21\x00\x7e\x6a\xfb\xc9\x90\x00\x00\x00\x90\x00\x00\x00\x05\x00\x14\x00\x79\x2e\x6e"
    "\x70\x79\x01\x00\x10\x00\x90\x00\x00\x00\x00\x00\x00\x00\x90\x00\x00\x00\x00\x00\x00\x00"
    "\x93\x4e\x55\x4d\x50\x59\x01\x00\x76\x00\x7b\x27\x64\x65\x73\x63\x72\x27\x3a\x20\x27\x3c"
    "\x69\x38\x27\x2c\x20\x27\x66\x6f\x72\x74\x72\x61\x6e\x5f\x6f\x72\x64\x65\x72\x27\x3a\x20"
    "\x46\x61\x6c\x73\x65\x2c\x20\x27\x73\x68\x61\x70\x65\x27\x3a\x20\x28\x32\x2c\x29\x2c\x20"
    "\x7d\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20"
    "\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20"
    "\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x0a\x00\x00\x00\x00"
    "\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x50\x4b\x01\x02\x14\x03\x14\x00\x00\x00"
    "\x00\x00\x00\x00\x21\x00\x16\x74\x37\xc1\x84\x00\x00\x00\x84\x00\x00\x00\x05\x00\x00\x00"
    "\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x00\x00\x00\x00\x78\x2e\x6e\x70\x79\x50\x4b\x01"
    "\x02\x14\x03\x14\x00\x00\x00\x00\x00\x00\x00\x21\x00\x7e\x6a\xfb\xc9\x90\x00\x00\x00\x90"
    "\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\xbb\x00\x00\x00\x79"
    "\x2e\x6e\x70\x79\x50\x4b\x05\x06\x00\x00\x00\x00\x02\x00\x02\x00\x66\x00\x00\x00\x82\x01"
    "\x00\x00\x00\x00",
    510);
const std::string kSavezCompressed(
    "\x50\x4b\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x21\x00\x16\x74\x37\xc1\x4a\x00\x00\x00"
    "\x84\x00\x00\x00\x05\x00\x14\x00\x78\x2e\x6e\x70\x79\x01\x00\x10\x00\x84\x00\x00\x00\x00"
    "\x00\x00\x00\x4a\x00\x00\x00\x00\x00\x00\x00\x9b\xec\x17\xea\x1b\x10\xc9\xc8\x50\xc6\x50"
    "\xad\x9e\x92\x5a\x9c\x5c\xa4\x6e\xa5\xa0\x5e\x53\x6a\xa8\xae\xa3\xa0\x9e\x96\x5f\x54\x52"
    "\x94\x98\x17\x9f\x5f\x94\x92\x0a\x12\x77\x4b\xcc\x29\x4e\x05\x8a\x17\x67\x24\x16\xa4\x02"
    "\xf9\x1a\x46\x3a\x0a\x46\x9a\x3a\x0a\xb5\x0a\x64\x03\x2e\x46\x26\xe6\xff\x00\x50\x4b\x03"
    "\x04\x14\x00\x00\x00\x08\x00\x00\x00\x21\x00\x7e\x6a\xfb\xc9\x49\x00\x00\x00\x90\x00\x00"
    "\x00\x05\x00\x14\x00\x79\x2e\x6e\x70\x79\x01\x00\x10\x00\x90\x00\x00\x00\x00\x00\x00\x00"
    "\x49\x00\x00\x00\x00\x00\x00\x00\x9b\xec\x17\xea\x1b\x10\xc9\xc8\x50\xc6\x50\xad\x9e\x92"
    "\x5a\x9c\x5c\xa4\x6e\xa5\xa0\x6e\x93\x69\xa1\xae\xa3\xa0\x9e\x96\x5f\x54\x52\x94\x98\x17"
    "\x9f\x5f\x94\x92\x0a\x12\x77\x4b\xcc\x29\x4e\x05\x8a\x17\x67\x24\x16\xa4\x02\xf9\x1a\x46"
    "\x3a\x9a\x3a\x0a\xb5\x0a\x14\x00\x2e\x06\x28\x60\x84\xd2\x00\x50\x4b\x01\x02\x14\x03\x14"
    "\x00\x00\x00\x08\x00\x00\x00\x21\x00\x16\x74\x37\xc1\x4a\x00\x00\x00\x84\x00\x00\x00\x05"
    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x00\x00\x00\x00\x78\x2e\x6e\x70\x79"
    "\x50\x4b\x01\x02\x14\x03\x14\x00\x00\x00\x08\x00\x00\x00\x21\x00\x7e\x6a\xfb\xc9\x49\x00"
    "\x00\x00\x90\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x81\x00"
    "\x00\x00\x79\x2e\x6e\x70\x79\x50\x4b\x05\x06\x00\x00\x00\x00\x02\x00\x02\x00\x66\x00\x00"
    "\x00\x01\x01\x00\x00\x00\x00",
    381);

std::string AsString(const ZipMemberBytes& member) {
  return std::string(reinterpret_cast<const char*>(member.bytes.data()), member.bytes.size());
}

// Writes `bytes` as "a.npz", opens it and reads `member`: the error's message.
std::string ReadError(const std::string& bytes, const std::string& member = "x.npy") {
  TempDir dir;
  WritePlainFile(dir.File("a.npz"), bytes);
  auto archive = ZipArchive::Open(dir.File("a.npz"));
  if (!archive.ok()) return std::string(archive.status().message());
  auto read = (*archive)->Read(member);
  EXPECT_FALSE(read.ok());
  return std::string(read.status().message());
}

TEST(ZipArchiveTest, ReadsWhatNumPyWrites) {
  TempDir dir;
  for (const std::string* bytes : {&kSavez, &kSavezCompressed}) {
    WritePlainFile(dir.File("a.npz"), *bytes);
    auto archive = ZipArchive::Open(dir.File("a.npz"));
    ASSERT_TRUE(archive.ok()) << archive.status();
    ASSERT_EQ((*archive)->entries().size(), 2u);
    EXPECT_EQ((*archive)->entries()[0].name, "x.npy");
    EXPECT_EQ((*archive)->MemberNames(), "x.npy, y.npy");
    auto x = (*archive)->Read("x.npy");
    ASSERT_TRUE(x.ok()) << x.status();
    EXPECT_EQ(x->stored, bytes == &kSavez);
    EXPECT_EQ(AsString(*x).substr(0, 6), "\x93NUMPY");
    // The last value, 255, is the member's last byte.
    EXPECT_EQ(x->bytes.back(), 255);
    if (x->stored) {
      // In place: the bytes lie inside the archive's mapping, not in a copy.
      EXPECT_EQ(std::memcmp(x->bytes.data() - 5 - 20, "x.npy", 5), 0);
    }
  }
}

TEST(ZipArchiveTest, StoredDeflatedAndZip64MembersReadBack) {
  std::string big(100000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 / 7);
  for (bool zip64 : {false, true}) {
    TempDir dir;
    WritePlainFile(dir.File("a.zip"),
                   Zip({{"s", "stored bytes"}, {"d", big, true}, {"e", "", false}}, zip64));
    auto archive = ZipArchive::Open(dir.File("a.zip"));
    ASSERT_TRUE(archive.ok()) << archive.status();
    auto stored = (*archive)->Read("s");
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(AsString(*stored), "stored bytes");
    EXPECT_TRUE(stored->stored);
    auto deflated = (*archive)->Read("d");
    ASSERT_TRUE(deflated.ok()) << deflated.status();
    EXPECT_FALSE(deflated->stored);
    EXPECT_EQ(AsString(*deflated), big);
    EXPECT_LT((*archive)->entries()[1].compressed_bytes, big.size());
    auto empty = (*archive)->Read("e");
    ASSERT_TRUE(empty.ok()) << empty.status();
    EXPECT_TRUE(empty->bytes.empty());
  }
}

TEST(ZipArchiveTest, AMissingMemberListsTheMembers) {
  TempDir dir;
  WritePlainFile(dir.File("a.npz"), kSavez);
  auto archive = ZipArchive::Open(dir.File("a.npz"));
  ASSERT_TRUE(archive.ok());
  const absl::Status missing = (*archive)->Read("z.npy").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("a.npz: no member 'z.npy' (members: x.npy, y.npy)"));
  EXPECT_EQ(ZipArchive::Open(dir.File("none.npz")).status().code(), absl::StatusCode::kNotFound);
}

TEST(ZipArchiveTest, ABadCrcNamesTheMember) {
  for (bool deflate : {false, true}) {
    std::string zip = Zip({{"x.npy", "some array bytes", deflate}});
    // The CRC-32 in the local header and the central directory both.
    zip[14] ^= 1;
    const size_t central = zip.find("PK\x01\x02", 0);
    zip[central + 16] ^= 1;
    EXPECT_THAT(ReadError(zip), HasSubstr("a.npz: member 'x.npy': CRC-32 "));
    EXPECT_THAT(ReadError(zip), HasSubstr("(the archive is corrupt)"));
  }
  // The local header disagreeing with the central directory.
  std::string zip = Zip({{"x.npy", "some array bytes"}});
  zip[14] ^= 1;
  EXPECT_THAT(ReadError(zip), HasSubstr("member 'x.npy': the local header"));
}

TEST(ZipArchiveTest, CorruptDeflateDataIsDataLoss) {
  std::string zip = Zip({{"x.npy", std::string(1000, 'a') + "bcd", true}});
  zip[30 + 5] = '\xff';  // the first byte of the deflate stream: an invalid block type
  EXPECT_THAT(ReadError(zip), HasSubstr("member 'x.npy': the deflated data is corrupt"));
}

TEST(ZipArchiveTest, TruncatedArchivesSayWhere) {
  const std::string zip = Zip({{"x.npy", std::string(300, 'v')}});
  // Cut inside the central directory: the end record is gone.
  EXPECT_THAT(ReadError(zip.substr(0, zip.size() - 30)),
              HasSubstr("no end-of-central-directory record (not a zip file, or truncated)"));
  EXPECT_THAT(ReadError("PK"), HasSubstr("too short (truncated?)"));
  // Cut inside the member's data, the directory kept (a partial download
  // glued to its end is the same to the reader).
  const size_t central = zip.find("PK\x01\x02");
  std::string cut = zip.substr(0, 100) + zip.substr(central);
  // Point the directory at its new place.
  const uint32_t at = 100;
  std::memcpy(&cut[cut.size() - 6], &at, 4);
  EXPECT_THAT(ReadError(cut), HasSubstr("member 'x.npy': truncated: its 300 bytes at byte 35"));
  EXPECT_THAT(ReadError(std::string(100, 'x')), HasSubstr("not a zip archive we read"));
}

TEST(ZipArchiveTest, RefusesWhatItDoesNotRead) {
  std::string zip = Zip({{"x.npy", "abc"}});
  const size_t central = zip.find("PK\x01\x02");
  std::string encrypted = zip;
  encrypted[central + 8] = 1;
  EXPECT_THAT(ReadError(encrypted), HasSubstr("member 'x.npy' is encrypted"));
  std::string bzip2 = zip;
  bzip2[central + 10] = 12;
  EXPECT_THAT(ReadError(bzip2), HasSubstr("compressed with method 12; only stored"));
}

}  // namespace
}  // namespace meshtrain
