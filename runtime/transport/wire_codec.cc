#include "runtime/transport/wire_codec.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/base/vectorize.h"
#include "runtime/transport/reduce_kernel.h"

namespace meshtrain {
namespace {

// The range of k: both 2^k and 2^-k are normal floats.
constexpr int kMinScaleExponent = -113;  // a message whose largest is near FLT_MAX
constexpr int kMaxScaleExponent = 126;   // a message of subnormals only

// 2^k as a float, k in [-126, 127].
float PowerOfTwo(int k) { return std::bit_cast<float>(static_cast<uint32_t>(k + 127) << 23); }

// Round to nearest-even into the upper half; NaN becomes a quiet NaN (a NaN
// whose payload lives in the low bits alone would otherwise round to Inf).
inline uint16_t Bfloat16Bits(float x) {
  const uint32_t b = std::bit_cast<uint32_t>(x);
  const uint32_t rounded = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (b >> 16) | 0x40u;
  return static_cast<uint16_t>((b & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

inline float Bfloat16Value(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

// IEEE binary16 with round to nearest-even, written branch-free so the loop
// vectorises (F. Giesen's float_to_half_fast3_rtne).
inline uint16_t Float16Bits(float x) {
  const uint32_t b = std::bit_cast<uint32_t>(x);
  const uint32_t sign = b & 0x80000000u;
  const uint32_t a = b ^ sign;  // |x|
  // |x| >= 65536 (after rounding anything >= 65520 is Inf too, below): Inf or NaN.
  const uint32_t special = a > 0x7f800000u ? 0x7e00u : 0x7c00u;
  // Subnormal or zero in binary16 (|x| < 2^-14): let the float adder round,
  // by adding 0.5 so the 10 mantissa bits land at the bottom.
  constexpr uint32_t kDenormMagicBits = ((127 - 15) + (23 - 10) + 1) << 23;
  const float denorm_sum = std::bit_cast<float>(a) + std::bit_cast<float>(kDenormMagicBits);
  const uint32_t denormal = std::bit_cast<uint32_t>(denorm_sum) - kDenormMagicBits;
  // Normal: rebias the exponent and round on bit 13.
  const uint32_t normal = (a + ((15u - 127u) << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
  uint32_t h = a >= (143u << 23) ? special : (a < (113u << 23) ? denormal : normal);
  return static_cast<uint16_t>(h | (sign >> 16));
}

// Exact widening (F. Giesen's half_to_float with the specials as selects).
inline float Float16Value(uint16_t h) {
  constexpr uint32_t kShiftedExponent = 0x7c00u << 13;
  const uint32_t bits = (static_cast<uint32_t>(h) & 0x7fffu) << 13;
  const uint32_t exponent = bits & kShiftedExponent;
  const uint32_t rebiased = bits + ((127u - 15u) << 23);
  const uint32_t special = rebiased + ((128u - 16u) << 23);  // Inf, NaN
  // Subnormal or zero: give it an exponent, then subtract the implicit one.
  const float subnormal =
      std::bit_cast<float>(rebiased + (1u << 23)) - std::bit_cast<float>(113u << 23);
  const uint32_t magnitude = exponent == kShiftedExponent
                                 ? special
                                 : (exponent == 0 ? std::bit_cast<uint32_t>(subnormal) : rebiased);
  return std::bit_cast<float>(magnitude | ((static_cast<uint32_t>(h) & 0x8000u) << 16));
}

absl::Span<const uint16_t> Halves(absl::Span<const std::byte> bytes) {
  MESHTRAIN_CHECK(reinterpret_cast<uintptr_t>(bytes.data()) % alignof(uint16_t) == 0)
      << "wire codec: a 16-bit message must be 2-byte aligned";
  return {reinterpret_cast<const uint16_t*>(bytes.data()), bytes.size() / sizeof(uint16_t)};
}

uint16_t* MutableHalves(absl::Span<std::byte> bytes) {
  MESHTRAIN_CHECK(reinterpret_cast<uintptr_t>(bytes.data()) % alignof(uint16_t) == 0)
      << "wire codec: a 16-bit message must be 2-byte aligned";
  return reinterpret_cast<uint16_t*>(bytes.data());
}

absl::Status WrongSize(WireDtype dtype, size_t got, size_t elements) {
  return absl::InternalError(absl::StrCat("wire codec: a ", WireDtypeName(dtype), " message of ",
                                          elements, " elements has ", WireBytes(dtype, elements),
                                          " bytes, got ", got));
}

}  // namespace

absl::string_view WireDtypeName(WireDtype dtype) {
  switch (dtype) {
    case WireDtype::kFloat32:
      return "float32";
    case WireDtype::kBFloat16:
      return "bfloat16";
    case WireDtype::kFloat16:
      return "float16";
  }
  return "unknown";
}

absl::StatusOr<WireDtype> ParseWireDtype(absl::string_view name) {
  for (WireDtype dtype : {WireDtype::kFloat32, WireDtype::kBFloat16, WireDtype::kFloat16}) {
    if (name == WireDtypeName(dtype)) return dtype;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("wire_dtype '", name, "' is unknown: use float32, bfloat16 or float16"));
}

size_t WireBytes(WireDtype dtype, size_t elements) {
  switch (dtype) {
    case WireDtype::kFloat32:
      return elements * sizeof(float);
    case WireDtype::kBFloat16:
      return elements * sizeof(uint16_t);
    case WireDtype::kFloat16:
      return kFloat16HeaderBytes + elements * sizeof(uint16_t);
  }
  return 0;
}

MESHTRAIN_VECTORIZED
void FloatToBfloat16(const float* __restrict src, uint16_t* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = Bfloat16Bits(src[i]);
}

MESHTRAIN_VECTORIZED
void Bfloat16ToFloat(const uint16_t* __restrict src, float* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = Bfloat16Value(src[i]);
}

MESHTRAIN_VECTORIZED
void AddBfloat16(const uint16_t* __restrict src, float* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] += Bfloat16Value(src[i]);
}

MESHTRAIN_VECTORIZED
void FloatToFloat16(const float* __restrict src, float scale, uint16_t* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = Float16Bits(src[i] * scale);
}

MESHTRAIN_VECTORIZED
void Float16ToFloat(const uint16_t* __restrict src, float scale, float* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = Float16Value(src[i]) * scale;
}

MESHTRAIN_VECTORIZED
void AddFloat16(const uint16_t* __restrict src, float scale, float* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] += Float16Value(src[i]) * scale;
}

MESHTRAIN_VECTORIZED
uint32_t MaxAbsBits(const float* __restrict src, size_t n) {
  uint32_t m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::bit_cast<uint32_t>(src[i]) & 0x7fffffffu);
  return m;
}

int Float16ScaleExponent(uint32_t max_abs_bits) {
  if (max_abs_bits == 0 || max_abs_bits >= 0x7f800000u) return 0;
  // m in [2^(e-127), 2^(e-126)) for a normal m, so m * 2^(141-e) is in [2^14, 2^15).
  const int e = std::max<int>(1, static_cast<int>(max_abs_bits >> 23));
  return std::clamp(141 - e, kMinScaleExponent, kMaxScaleExponent);
}

void EncodeWire(WireDtype dtype, absl::Span<const float> values, absl::Span<std::byte> out) {
  MESHTRAIN_CHECK(out.size() == WireBytes(dtype, values.size()))
      << "wire codec: " << out.size() << " bytes for " << values.size() << " elements";
  switch (dtype) {
    case WireDtype::kFloat32:
      if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
      return;
    case WireDtype::kBFloat16:
      FloatToBfloat16(values.data(), MutableHalves(out), values.size());
      return;
    case WireDtype::kFloat16: {
      const int32_t k = Float16ScaleExponent(MaxAbsBits(values.data(), values.size()));
      std::memcpy(out.data(), &k, sizeof(k));
      FloatToFloat16(values.data(), PowerOfTwo(k), MutableHalves(out.subspan(kFloat16HeaderBytes)),
                     values.size());
      return;
    }
  }
}

absl::Status DecodeWire(WireDtype dtype, absl::Span<const std::byte> in, absl::Span<float> out,
                        bool accumulate) {
  if (in.size() != WireBytes(dtype, out.size())) return WrongSize(dtype, in.size(), out.size());
  switch (dtype) {
    case WireDtype::kFloat32: {
      MESHTRAIN_CHECK(reinterpret_cast<uintptr_t>(in.data()) % alignof(float) == 0)
          << "wire codec: a float32 message must be 4-byte aligned";
      const float* src = reinterpret_cast<const float*>(in.data());
      if (accumulate) {
        AddFloat32(out.data(), src, out.size());
      } else if (!out.empty()) {
        std::memcpy(out.data(), src, in.size());
      }
      return absl::OkStatus();
    }
    case WireDtype::kBFloat16: {
      const uint16_t* src = Halves(in).data();
      if (accumulate) {
        AddBfloat16(src, out.data(), out.size());
      } else {
        Bfloat16ToFloat(src, out.data(), out.size());
      }
      return absl::OkStatus();
    }
    case WireDtype::kFloat16: {
      int32_t k;
      std::memcpy(&k, in.data(), sizeof(k));
      if (k < kMinScaleExponent || k > kMaxScaleExponent) {
        return absl::InternalError(absl::StrCat("wire codec: a float16 message's scale exponent ",
                                                k, " is outside [", kMinScaleExponent, ", ",
                                                kMaxScaleExponent, "]"));
      }
      const uint16_t* src = Halves(in.subspan(kFloat16HeaderBytes)).data();
      if (accumulate) {
        AddFloat16(src, PowerOfTwo(-k), out.data(), out.size());
      } else {
        Float16ToFloat(src, PowerOfTwo(-k), out.data(), out.size());
      }
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("wire codec: unknown dtype");
}

}  // namespace meshtrain
