#include "runtime/rpc/chunk_codec.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proto/collective.pb.h"

namespace meshtrain {
namespace {

// Field tags of message Chunk: field 1 (header) and 2 (payload), both
// length-delimited (wire type 2).
constexpr uint8_t kHeaderTag = (1 << 3) | 2;
constexpr uint8_t kPayloadTag = (2 << 3) | 2;

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Reads forward through a list of slices as if they were one buffer.
class SliceCursor {
 public:
  explicit SliceCursor(const std::vector<grpc::Slice>& slices) : slices_(slices) {
    for (const grpc::Slice& s : slices_) remaining_ += s.size();
    SkipEmpty();
  }

  size_t position() const { return position_; }
  size_t remaining() const { return remaining_; }

  bool ReadByte(uint8_t* byte) {
    if (remaining_ == 0) return false;
    *byte = slices_[slice_].begin()[in_slice_];
    Advance(1);
    return true;
  }

  bool ReadVarint(uint64_t* value) {
    *value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t byte;
      if (!ReadByte(&byte)) return false;
      *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  bool ReadString(size_t n, std::string* out) {
    if (n > remaining_) return false;
    out->clear();
    out->reserve(n);
    while (n > 0) {
      const size_t take = std::min(n, slices_[slice_].size() - in_slice_);
      out->append(reinterpret_cast<const char*>(slices_[slice_].begin() + in_slice_), take);
      Advance(take);
      n -= take;
    }
    return true;
  }

  // Calls fn(pointer, length) for the next `n` bytes, slice by slice.
  template <typename Fn>
  void Visit(size_t n, Fn fn) {
    while (n > 0) {
      const size_t take = std::min(n, slices_[slice_].size() - in_slice_);
      fn(reinterpret_cast<const std::byte*>(slices_[slice_].begin() + in_slice_), take);
      Advance(take);
      n -= take;
    }
  }

  void Skip(size_t n) {
    Visit(n, [](const std::byte*, size_t) {});
  }

 private:
  void Advance(size_t n) {
    in_slice_ += n;
    position_ += n;
    remaining_ -= n;
    SkipEmpty();
  }
  void SkipEmpty() {
    while (slice_ < slices_.size() && in_slice_ == slices_[slice_].size()) {
      ++slice_;
      in_slice_ = 0;
    }
  }

  const std::vector<grpc::Slice>& slices_;
  size_t slice_ = 0;
  size_t in_slice_ = 0;
  size_t position_ = 0;
  size_t remaining_ = 0;
};

void AddFloats(std::byte* dest, const std::byte* src, size_t count) {
  // memcpy keeps unaligned buffers legal; the compiler turns it into vector loads.
  for (size_t i = 0; i < count; ++i) {
    float a;
    float b;
    std::memcpy(&a, dest + 4 * i, 4);
    std::memcpy(&b, src + 4 * i, 4);
    a += b;
    std::memcpy(dest + 4 * i, &a, 4);
  }
}

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed chunk: ", what));
}

}  // namespace

grpc::ByteBuffer EncodeChunk(ChunkMeta meta, absl::Span<const std::byte> payload) {
  return EncodeChunk(std::move(meta),
                     payload.empty() ? grpc::Slice() : grpc::Slice(payload.data(), payload.size()));
}

grpc::ByteBuffer EncodeChunk(ChunkMeta meta, grpc::Slice payload) {
  meta.payload_bytes = payload.size();
  proto::ChunkHeader header;
  header.set_transport(meta.transport);
  header.mutable_source()->set_job(meta.source.job);
  header.mutable_source()->set_index(meta.source.index);
  header.set_source_incarnation(meta.source_incarnation);
  header.mutable_destination()->set_job(meta.destination.job);
  header.mutable_destination()->set_index(meta.destination.index);
  header.set_destination_incarnation(meta.destination_incarnation);
  header.set_seq(meta.seq);
  header.set_offset(meta.offset);
  header.set_total_bytes(meta.total_bytes);
  header.set_payload_bytes(meta.payload_bytes);
  const std::string header_bytes = header.SerializeAsString();

  std::string prefix;
  prefix.push_back(static_cast<char>(kHeaderTag));
  AppendVarint(header_bytes.size(), &prefix);
  prefix.append(header_bytes);
  if (payload.size() == 0) {
    grpc::Slice slice(prefix);
    return grpc::ByteBuffer(&slice, 1);
  }
  prefix.push_back(static_cast<char>(kPayloadTag));
  AppendVarint(payload.size(), &prefix);
  grpc::Slice slices[2] = {grpc::Slice(prefix), std::move(payload)};
  return grpc::ByteBuffer(slices, 2);
}

absl::StatusOr<ReceivedChunk> DecodeChunk(const grpc::ByteBuffer& buffer) {
  ReceivedChunk chunk;
  if (buffer.Valid()) {
    grpc::Status dumped = buffer.Dump(&chunk.slices);
    if (!dumped.ok()) return Malformed(dumped.error_message());
  }
  SliceCursor cursor(chunk.slices);
  uint64_t tag = 0;
  uint64_t length = 0;
  if (!cursor.ReadVarint(&tag) || tag != kHeaderTag) return Malformed("no header first");
  std::string header_bytes;
  if (!cursor.ReadVarint(&length) || !cursor.ReadString(length, &header_bytes)) {
    return Malformed("truncated header");
  }
  proto::ChunkHeader header;
  if (!header.ParseFromString(header_bytes)) return Malformed("unparsable header");

  uint64_t carried = 0;
  if (cursor.remaining() > 0) {
    if (!cursor.ReadVarint(&tag) || tag != kPayloadTag) {
      return Malformed("expected the payload field after the header");
    }
    if (!cursor.ReadVarint(&carried)) return Malformed("truncated payload length");
    if (carried != cursor.remaining()) {
      return Malformed(absl::StrCat("payload field says ", carried, " bytes but ",
                                    cursor.remaining(), " follow"));
    }
  }
  if (carried != header.payload_bytes()) {
    return absl::InvalidArgumentError(absl::StrCat("bad payload size: header says ",
                                                   header.payload_bytes(), " bytes, chunk carries ",
                                                   carried));
  }
  if (header.offset() > header.total_bytes() ||
      header.payload_bytes() > header.total_bytes() - header.offset()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad payload size: ", header.payload_bytes(), " bytes at offset ",
                     header.offset(), " overrun a ", header.total_bytes(), "-byte message"));
  }
  chunk.payload_offset = cursor.position();
  ChunkMeta& meta = chunk.meta;
  meta.transport = header.transport();
  meta.source = TaskId{header.source().job(), header.source().index()};
  meta.source_incarnation = header.source_incarnation();
  meta.destination = TaskId{header.destination().job(), header.destination().index()};
  meta.destination_incarnation = header.destination_incarnation();
  meta.seq = header.seq();
  meta.offset = header.offset();
  meta.total_bytes = header.total_bytes();
  meta.payload_bytes = header.payload_bytes();
  return chunk;
}

absl::Status ApplyPayload(const ReceivedChunk& chunk, absl::Span<std::byte> dest,
                          RecvAction action) {
  if (dest.size() != chunk.meta.payload_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk of ", chunk.meta.payload_bytes, " bytes for a ", dest.size(), "-byte destination"));
  }
  SliceCursor cursor(chunk.slices);
  cursor.Skip(chunk.payload_offset);
  std::byte* out = dest.data();
  if (action == RecvAction::kCopy) {
    cursor.Visit(dest.size(), [&out](const std::byte* p, size_t n) {
      std::memcpy(out, p, n);
      out += n;
    });
    return absl::OkStatus();
  }
  if (dest.size() % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("float32 sum over ", dest.size(), " bytes, not a multiple of 4"));
  }
  // A float may straddle two slices: its bytes wait in `carry` until complete.
  std::byte carry[4];
  size_t carried = 0;
  cursor.Visit(dest.size(), [&](const std::byte* p, size_t n) {
    if (carried > 0) {
      const size_t take = std::min(n, 4 - carried);
      std::memcpy(carry + carried, p, take);
      carried += take;
      p += take;
      n -= take;
      if (carried < 4) return;
      AddFloats(out, carry, 1);
      out += 4;
      carried = 0;
    }
    const size_t whole = n / 4;
    AddFloats(out, p, whole);
    out += 4 * whole;
    carried = n - 4 * whole;
    std::memcpy(carry, p + 4 * whole, carried);
  });
  return absl::OkStatus();
}

}  // namespace meshtrain
