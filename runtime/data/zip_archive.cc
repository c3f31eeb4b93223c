#include "runtime/data/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr size_t kLocalHeaderBytes = 30;
constexpr size_t kCentralHeaderBytes = 46;
constexpr size_t kEndBytes = 22;
constexpr size_t kZip64EndBytes = 56;
constexpr size_t kZip64LocatorBytes = 20;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kFlagDataDescriptor = 0x0008;
constexpr uint16_t kMethodStored = 0;
constexpr uint16_t kMethodDeflate = 8;
constexpr uint32_t kZip64Marker = 0xffffffff;
// Deflate cannot shrink data by more than about 1032:1, so a larger claimed
// size is corruption, not a reason to allocate it.
constexpr uint64_t kMaxDeflateRatio = 1032;

// Little-endian fields at `at` of `bytes`; the caller checks the bounds.
uint64_t Le(absl::Span<const uint8_t> bytes, size_t at, int width) {
  uint64_t value = 0;
  for (int i = width - 1; i >= 0; --i) value = (value << 8) | bytes[at + i];
  return value;
}

// The sizes (and offset) that a 32-bit field marks as 0xffffffff are in the
// zip64 extra field, in this order: uncompressed, compressed, offset.
bool ApplyZip64Extra(absl::Span<const uint8_t> extra, uint64_t* uncompressed, uint64_t* compressed,
                     uint64_t* offset) {
  size_t at = 0;
  while (at + 4 <= extra.size()) {
    const uint16_t id = static_cast<uint16_t>(Le(extra, at, 2));
    const size_t size = static_cast<size_t>(Le(extra, at + 2, 2));
    at += 4;
    if (at + size > extra.size()) return false;
    if (id == kZip64ExtraId) {
      size_t field = at;
      for (uint64_t* value : {uncompressed, compressed, offset}) {
        if (value == nullptr || *value != kZip64Marker) continue;
        if (field + 8 > at + size) return false;
        *value = Le(extra, field, 8);
        field += 8;
      }
      return true;
    }
    at += size;
  }
  // No zip64 field: only right when no value is marked.
  for (uint64_t* value : {uncompressed, compressed, offset}) {
    if (value != nullptr && *value == kZip64Marker) return false;
  }
  return true;
}

// Where the central directory lies and how many entries it holds.
struct Directory {
  uint64_t offset = 0;
  uint64_t bytes = 0;
  uint64_t entries = 0;
};

absl::StatusOr<Directory> FindDirectory(absl::Span<const uint8_t> bytes, const std::string& path) {
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(path, ": not a zip archive we read: ", why));
  };
  if (bytes.size() < kEndBytes) return bad("too short (truncated?)");
  // The end record is the last 22 bytes plus a comment of at most 64 KiB.
  size_t end = bytes.size() - kEndBytes;
  const size_t lowest = end > 0xffff ? end - 0xffff : 0;
  while (Le(bytes, end, 4) != kEndSignature ||
         end + kEndBytes + Le(bytes, end + 20, 2) > bytes.size()) {
    if (end == lowest) {
      return bad("no end-of-central-directory record (not a zip file, or truncated)");
    }
    --end;
  }
  if (Le(bytes, end + 4, 2) != 0 || Le(bytes, end + 6, 2) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": a zip archive spanning several files; join it into one"));
  }
  Directory dir{Le(bytes, end + 16, 4), Le(bytes, end + 12, 4), Le(bytes, end + 10, 2)};
  if (end >= kZip64LocatorBytes &&
      Le(bytes, end - kZip64LocatorBytes, 4) == kZip64LocatorSignature) {
    const uint64_t at = Le(bytes, end - kZip64LocatorBytes + 8, 8);
    if (at > bytes.size() - kZip64EndBytes || Le(bytes, at, 4) != kZip64EndSignature) {
      return bad("the zip64 end record is missing where its locator points");
    }
    dir = Directory{Le(bytes, at + 48, 8), Le(bytes, at + 40, 8), Le(bytes, at + 32, 8)};
  }
  if (dir.offset > bytes.size() || dir.bytes > bytes.size() - dir.offset) {
    return bad(absl::StrCat("the central directory (", dir.bytes, " bytes at ", dir.offset,
                            ") runs past the end of the file's ", bytes.size(),
                            " bytes (truncated?)"));
  }
  return dir;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ZipArchive>> ZipArchive::Open(const std::string& path) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  const absl::Span<const uint8_t> bytes = file->bytes();
  MESHTRAIN_ASSIGN_OR_RETURN(const Directory dir, FindDirectory(bytes, path));
  auto archive = std::unique_ptr<ZipArchive>(new ZipArchive());
  archive->file_ = std::move(file);
  size_t at = static_cast<size_t>(dir.offset);
  const size_t end = static_cast<size_t>(dir.offset + dir.bytes);
  for (uint64_t i = 0; i < dir.entries; ++i) {
    auto bad = [&](absl::string_view why) {
      return absl::DataLossError(
          absl::StrCat(path, ": central directory entry ", i, " (at byte ", at, "): ", why));
    };
    if (at + kCentralHeaderBytes > end || Le(bytes, at, 4) != kCentralHeaderSignature) {
      return bad("no central directory header here (corrupt or truncated)");
    }
    const size_t name_bytes = static_cast<size_t>(Le(bytes, at + 28, 2));
    const size_t extra_bytes = static_cast<size_t>(Le(bytes, at + 30, 2));
    const size_t comment_bytes = static_cast<size_t>(Le(bytes, at + 32, 2));
    const size_t next = at + kCentralHeaderBytes + name_bytes + extra_bytes + comment_bytes;
    if (next > end) return bad("it runs past the central directory");
    ZipEntry entry;
    entry.flags = static_cast<uint16_t>(Le(bytes, at + 8, 2));
    entry.method = static_cast<uint16_t>(Le(bytes, at + 10, 2));
    entry.crc32 = static_cast<uint32_t>(Le(bytes, at + 16, 4));
    entry.compressed_bytes = Le(bytes, at + 20, 4);
    entry.uncompressed_bytes = Le(bytes, at + 24, 4);
    entry.local_header_offset = Le(bytes, at + 42, 4);
    entry.name.assign(reinterpret_cast<const char*>(bytes.data()) + at + kCentralHeaderBytes,
                      name_bytes);
    if (!ApplyZip64Extra(bytes.subspan(at + kCentralHeaderBytes + name_bytes, extra_bytes),
                         &entry.uncompressed_bytes, &entry.compressed_bytes,
                         &entry.local_header_offset)) {
      return bad(
          absl::StrCat("member ", QuoteForMessage(entry.name), ": a malformed zip64 extra field"));
    }
    archive->entries_.push_back(std::move(entry));
    at = next;
  }
  return archive;
}

const ZipEntry* ZipArchive::Find(absl::string_view name) const {
  for (const ZipEntry& entry : entries_) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

std::string ZipArchive::MemberNames() const {
  constexpr size_t kNamed = 16;
  std::string names;
  for (size_t i = 0; i < entries_.size() && i < kNamed; ++i) {
    absl::StrAppend(&names, i > 0 ? ", " : "", entries_[i].name);
  }
  if (entries_.size() > kNamed) absl::StrAppend(&names, " and ", entries_.size() - kNamed, " more");
  return names.empty() ? "none" : names;
}

absl::StatusOr<ZipMemberBytes> ZipArchive::Read(absl::string_view name) const {
  const ZipEntry* entry = Find(name);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat(path(), ": no member ", QuoteForMessage(name),
                                            " (members: ", MemberNames(), ")"));
  }
  return Read(*entry);
}

absl::StatusOr<ZipMemberBytes> ZipArchive::Read(const ZipEntry& entry) const {
  const absl::Span<const uint8_t> bytes = file_->bytes();
  const uint64_t at = entry.local_header_offset;
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat(path(), ": member ", QuoteForMessage(entry.name), ": ", why));
  };
  if ((entry.flags & kFlagEncrypted) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path(), ": member ", QuoteForMessage(entry.name),
                                                   " is encrypted; save it unencrypted"));
  }
  if (entry.method != kMethodStored && entry.method != kMethodDeflate) {
    return absl::InvalidArgumentError(absl::StrCat(
        path(), ": member ", QuoteForMessage(entry.name), " is compressed with method ",
        entry.method, "; only stored (np.savez) and deflate (np.savez_compressed) are read"));
  }
  // 1. The local header: where the data starts, and the same member as the
  //    central directory says (name, method; sizes and CRC unless a data
  //    descriptor after the data carries them).
  if (at > bytes.size() || bytes.size() - at < kLocalHeaderBytes ||
      Le(bytes, at, 4) != kLocalHeaderSignature) {
    return bad(absl::StrCat("no local header at byte ", at, " (corrupt or truncated)"));
  }
  const size_t name_bytes = static_cast<size_t>(Le(bytes, at + 26, 2));
  const size_t extra_bytes = static_cast<size_t>(Le(bytes, at + 28, 2));
  const uint64_t data_at = at + kLocalHeaderBytes + name_bytes + extra_bytes;
  if (data_at > bytes.size()) return bad("the local header runs past the end (truncated?)");
  const absl::string_view local_name(
      reinterpret_cast<const char*>(bytes.data()) + at + kLocalHeaderBytes, name_bytes);
  if (local_name != entry.name || Le(bytes, at + 8, 2) != entry.method) {
    return bad(absl::StrCat("the local header (name ", QuoteForMessage(local_name), ", method ",
                            Le(bytes, at + 8, 2), ") differs from the central directory"));
  }
  if ((Le(bytes, at + 6, 2) & kFlagDataDescriptor) == 0) {
    uint64_t compressed = Le(bytes, at + 18, 4);
    uint64_t uncompressed = Le(bytes, at + 22, 4);
    if (!ApplyZip64Extra(bytes.subspan(at + kLocalHeaderBytes + name_bytes, extra_bytes),
                         &uncompressed, &compressed, nullptr)) {
      return bad("a malformed zip64 extra field in the local header");
    }
    if (Le(bytes, at + 14, 4) != entry.crc32 || compressed != entry.compressed_bytes ||
        uncompressed != entry.uncompressed_bytes) {
      return bad(absl::StrCat("the local header (", compressed, " -> ", uncompressed,
                              " bytes) differs from the central directory (",
                              entry.compressed_bytes, " -> ", entry.uncompressed_bytes, ")"));
    }
  }
  // 2. The data lies inside the file.
  if (entry.compressed_bytes > bytes.size() - data_at) {
    return bad(absl::StrCat("truncated: its ", entry.compressed_bytes, " bytes at byte ", data_at,
                            " run past the end of the archive's ", bytes.size(), " bytes"));
  }
  const absl::Span<const uint8_t> data =
      bytes.subspan(static_cast<size_t>(data_at), static_cast<size_t>(entry.compressed_bytes));
  // 3. Stored: the bytes in place. Deflated: inflated into memory.
  ZipMemberBytes member;
  if (entry.method == kMethodStored) {
    if (entry.compressed_bytes != entry.uncompressed_bytes) {
      return bad(absl::StrCat("stored, yet ", entry.compressed_bytes, " bytes hold ",
                              entry.uncompressed_bytes));
    }
    member.bytes = data;
    member.owner = file_;
    member.stored = true;
  } else {
    if (entry.uncompressed_bytes > (entry.compressed_bytes + 1) * kMaxDeflateRatio) {
      return bad(absl::StrCat(entry.compressed_bytes, " deflated bytes cannot hold the ",
                              entry.uncompressed_bytes, " the directory claims"));
    }
    const size_t size = static_cast<size_t>(entry.uncompressed_bytes);
    std::shared_ptr<uint8_t[]> buffer(new uint8_t[std::max<size_t>(size, 1)]);
    z_stream stream{};
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) {
      return absl::ResourceExhaustedError(
          absl::StrCat(path(), ": member ", QuoteForMessage(entry.name), ": inflateInit failed"));
    }
    // avail_in and avail_out are 32-bit: feed and drain at most 1 GiB at a time.
    constexpr size_t kStep = size_t{1} << 30;
    size_t in = 0;
    size_t out = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
      stream.next_in = const_cast<Bytef*>(data.data() + in);
      stream.avail_in = static_cast<uInt>(std::min(kStep, data.size() - in));
      stream.next_out = buffer.get() + out;
      stream.avail_out = static_cast<uInt>(std::min(kStep, size - out));
      const uInt given_in = stream.avail_in;
      const uInt given_out = stream.avail_out;
      rc = inflate(&stream, Z_NO_FLUSH);
      in += given_in - stream.avail_in;
      out += given_out - stream.avail_out;
      if (rc == Z_BUF_ERROR && (in == data.size() || out == size)) break;
      if (rc == Z_BUF_ERROR) rc = Z_OK;  // no progress this round, more to give
    }
    const std::string message = stream.msg != nullptr ? stream.msg : "";
    inflateEnd(&stream);
    if (rc != Z_STREAM_END) {
      return bad(rc == Z_DATA_ERROR || rc == Z_NEED_DICT
                     ? absl::StrCat("the deflated data is corrupt (", message, ")")
                     : absl::StrCat("the deflated data ends early or holds more than the ", size,
                                    " bytes the directory says (truncated or corrupt)"));
    }
    if (out != size) {
      return bad(absl::StrCat("inflates to ", out, " bytes, the directory says ", size));
    }
    member.bytes = absl::MakeConstSpan(buffer.get(), size);
    member.owner = std::move(buffer);
  }
  // 4. The CRC-32 of what was read, against the directory's.
  const uint32_t crc = static_cast<uint32_t>(
      crc32_z(crc32_z(0, nullptr, 0), member.bytes.data(), member.bytes.size()));
  if (crc != entry.crc32) {
    return bad(absl::StrCat("CRC-32 ", absl::Hex(crc, absl::kZeroPad8),
                            " of its data, the archive says ",
                            absl::Hex(entry.crc32, absl::kZeroPad8), " (the archive is corrupt)"));
  }
  return member;
}

}  // namespace meshtrain
