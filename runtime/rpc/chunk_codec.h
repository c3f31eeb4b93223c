// Chunk codec: the wire format of the collective service's chunks (the
// messages of SendChunk and StreamChunks, each a meshtrain.proto.Chunk, see
// proto/collective.proto) written and read without copying the payload
// through a protobuf `bytes` field.
//
// Encoding copies the payload once, into the gRPC slice that goes on the wire
// (the caller's buffer may be reused as soon as SendRecv returns, whatever the
// RPC's fate), or takes a slice the caller filled (the gRPC transport's pooled
// buffers). Decoding keeps the payload in the slices gRPC received it in;
// ApplyPayload then copies or adds it straight into the destination tensor.
// Pure functions; a ReceivedChunk is a value (slices are reference-counted).
#ifndef MESHTRAIN_RUNTIME_RPC_CHUNK_CODEC_H_
#define MESHTRAIN_RUNTIME_RPC_CHUNK_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/transport/transport.h"

namespace meshtrain {

// The header of one chunk (proto ChunkHeader as a plain struct).
struct ChunkMeta {
  std::string transport;
  TaskId source;
  uint64_t source_incarnation = 0;
  TaskId destination;
  uint64_t destination_incarnation = 0;
  uint64_t seq = 0;
  uint64_t offset = 0;       // where the payload goes in the whole message
  uint64_t total_bytes = 0;  // size of the whole message
  uint64_t payload_bytes = 0;
};

struct ReceivedChunk {
  ChunkMeta meta;
  std::vector<grpc::Slice> slices;
  size_t payload_offset = 0;  // where the payload starts in the concatenated slices
};

// `meta.payload_bytes` is set from `payload`.
grpc::ByteBuffer EncodeChunk(ChunkMeta meta, absl::Span<const std::byte> payload);
// As above with the payload already in a slice (SendBufferPool), not copied again.
grpc::ByteBuffer EncodeChunk(ChunkMeta meta, grpc::Slice payload);

// InvalidArgument for anything but a header followed by a payload of exactly
// header.payload_bytes bytes lying within [0, total_bytes).
absl::StatusOr<ReceivedChunk> DecodeChunk(const grpc::ByteBuffer& buffer);

// Writes the payload into `dest` (dest.size() == payload_bytes): a copy, or an
// element-wise float32 sum (payload and dest sizes multiples of 4).
absl::Status ApplyPayload(const ReceivedChunk& chunk, absl::Span<std::byte> dest,
                          RecvAction action);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_CHUNK_CODEC_H_
