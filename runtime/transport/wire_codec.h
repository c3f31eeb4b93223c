// Wire codec: how float32 gradients and values look on the wire when a job
// asks for 16 bits (`strategy.communication.wire_dtype`, `--wire-dtype`). The
// ring AllReduce (runtime/collective) and the parameter-server links
// (runtime/ps) encode while they pack a message and decode (copy, or widen and
// add into a float32 accumulator) when it arrives; nothing is ever summed in
// 16 bits.
//
// One message of n elements:
//   float32:  n x 4 bytes, the floats themselves;
//   bfloat16: n x 2 bytes, each float rounded to nearest-even to its upper 16
//             bits (8 significant bits, float32's range; Inf stays Inf, NaN
//             stays a quiet NaN of the same sign);
//   float16:  a 4-byte scale exponent k (int32), then n x 2 bytes of IEEE
//             binary16 holding x * 2^k rounded to nearest-even. k is chosen per
//             message from its largest magnitude m so that m * 2^k lies in
//             [2^14, 2^15): nothing overflows binary16 (max 65504), and small
//             gradients (1e-6 and below, which binary16's 2^-24 would flush)
//             keep 11 significant bits relative to the message's largest. A
//             power of two scales exactly. A message holding Inf or NaN, or
//             only zeros, has k = 0 and its specials pass through.
// Byte order: the host's, as the rest of the data path (same build at both ends).
// Decoding checks the message's size and k (input from a peer) and never
// CHECK-fails on them. Pure functions, thread-safe; the loops are compiled per
// instruction set (runtime/base/vectorize.h).
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_WIRE_CODEC_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_WIRE_CODEC_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace meshtrain {

enum class WireDtype : uint8_t { kFloat32, kBFloat16, kFloat16 };

// "float32", "bfloat16", "float16".
absl::string_view WireDtypeName(WireDtype dtype);
// The names above; InvalidArgument naming the choices otherwise.
absl::StatusOr<WireDtype> ParseWireDtype(absl::string_view name);

// The float16 message's header: the scale exponent k.
inline constexpr size_t kFloat16HeaderBytes = 4;

// Bytes of one message of `elements` floats.
size_t WireBytes(WireDtype dtype, size_t elements);

// Encodes `values` into `out`, which holds exactly WireBytes(dtype,
// values.size()) bytes, 4-byte aligned for float32 and 2-byte aligned
// otherwise (programmer errors, checked).
void EncodeWire(WireDtype dtype, absl::Span<const float> values, absl::Span<std::byte> out);

// out = the message's values (kCopy) or out += them, widened to float32 before
// the add (accumulate). Internal naming the problem when `in` is not a message
// of out.size() elements or a float16 message's k is out of range; `out` is
// untouched then. Alignment as for EncodeWire.
absl::Status DecodeWire(WireDtype dtype, absl::Span<const std::byte> in, absl::Span<float> out,
                        bool accumulate);

// The kernels underneath, for tests and benchmarks. n elements each; the
// arrays must not overlap.
void FloatToBfloat16(const float* src, uint16_t* dst, size_t n);
void Bfloat16ToFloat(const uint16_t* src, float* dst, size_t n);
void AddBfloat16(const uint16_t* src, float* dst, size_t n);  // dst += widen(src)
// dst = binary16(src * scale); scale a power of two.
void FloatToFloat16(const float* src, float scale, uint16_t* dst, size_t n);
// dst = widen(src) * scale, or dst += widen(src) * scale.
void Float16ToFloat(const uint16_t* src, float scale, float* dst, size_t n);
void AddFloat16(const uint16_t* src, float scale, float* dst, size_t n);
// The largest |src[i]| as float32 bits without the sign (a NaN compares above
// Inf, Inf above every finite value); 0 for n == 0.
uint32_t MaxAbsBits(const float* src, size_t n);
// The float16 scale exponent k for a message whose MaxAbsBits is `max_abs_bits`.
int Float16ScaleExponent(uint32_t max_abs_bits);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_WIRE_CODEC_H_
