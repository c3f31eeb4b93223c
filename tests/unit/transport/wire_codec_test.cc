#include "runtime/transport/wire_codec.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

float Bits(uint32_t b) { return std::bit_cast<float>(b); }
uint32_t BitsOf(float f) { return std::bit_cast<uint32_t>(f); }

uint16_t ToBf16(float x) {
  uint16_t h;
  FloatToBfloat16(&x, &h, 1);
  return h;
}
float FromBf16(uint16_t h) {
  float x;
  Bfloat16ToFloat(&h, &x, 1);
  return x;
}
uint16_t ToF16(float x) {
  uint16_t h;
  FloatToFloat16(&x, 1.0f, &h, 1);
  return h;
}
float FromF16(uint16_t h) {
  float x;
  Float16ToFloat(&h, 1.0f, &x, 1);
  return x;
}

// binary16's value of bits h, from its definition.
double F16Reference(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  double magnitude;
  if (exponent == 0x1f) {
    magnitude = mantissa ? std::numeric_limits<double>::quiet_NaN()
                         : std::numeric_limits<double>::infinity();
  } else if (exponent == 0) {
    magnitude = std::ldexp(mantissa, -24);
  } else {
    magnitude = std::ldexp(1024 + mantissa, exponent - 25);
  }
  return sign ? -magnitude : magnitude;
}

// Round to nearest-even onto the upper 16 bits, by comparing distances in double.
uint16_t Bf16Reference(float x) {
  const uint32_t b = BitsOf(x);
  const uint16_t down = static_cast<uint16_t>(b >> 16);
  const uint16_t up = static_cast<uint16_t>(down + 1);
  const double d_down = std::fabs(static_cast<double>(x) - Bits(uint32_t{down} << 16));
  const double d_up = std::fabs(static_cast<double>(Bits(uint32_t{up} << 16)) - x);
  if (d_down < d_up) return down;
  if (d_up < d_down) return up;
  return (down & 1) ? up : down;
}

std::vector<float> MixedMagnitudes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-30, 2);
  std::vector<float> v(n);
  for (float& x : v) x = std::ldexp(mantissa(gen), exponent(gen));
  return v;
}

TEST(WireDtypeTest, NamesRoundTripAndUnknownIsRejected) {
  for (WireDtype d : {WireDtype::kFloat32, WireDtype::kBFloat16, WireDtype::kFloat16}) {
    EXPECT_EQ(*ParseWireDtype(WireDtypeName(d)), d);
  }
  absl::StatusOr<WireDtype> bad = ParseWireDtype("fp8");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "float32, bfloat16 or float16"));
  EXPECT_EQ(WireBytes(WireDtype::kFloat32, 3), 12u);
  EXPECT_EQ(WireBytes(WireDtype::kBFloat16, 3), 6u);
  EXPECT_EQ(WireBytes(WireDtype::kFloat16, 3), 10u);
  EXPECT_EQ(WireBytes(WireDtype::kFloat16, 0), 4u);
}

TEST(Bfloat16Test, EveryValueRoundTrips) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float x = FromBf16(static_cast<uint16_t>(h));
    EXPECT_EQ(BitsOf(x), h << 16);
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(FromBf16(ToBf16(x))));
      EXPECT_EQ(ToBf16(x) & 0x8000, h & 0x8000) << "the sign of a NaN is kept";
    } else {
      EXPECT_EQ(ToBf16(x), h);
    }
  }
}

TEST(Bfloat16Test, RoundsToNearestEven) {
  EXPECT_EQ(ToBf16(Bits(0x3f808000)), 0x3f80);                   // 1 + 2^-8: a tie, to even (down)
  EXPECT_EQ(ToBf16(Bits(0x3f818000)), 0x3f82);                   // a tie, to even (up)
  EXPECT_EQ(ToBf16(Bits(0x3f808001)), 0x3f81);                   // just above the tie
  EXPECT_EQ(ToBf16(Bits(0x3f807fff)), 0x3f80);                   // just below
  EXPECT_EQ(ToBf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to Inf
  EXPECT_EQ(ToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(ToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_TRUE(std::isnan(FromBf16(ToBf16(Bits(0x7f800001)))))
      << "a NaN with only low payload bits must not become Inf";
  EXPECT_EQ(ToBf16(-0.0f), 0x8000);
  std::mt19937 gen(7);
  for (int i = 0; i < 200000; ++i) {
    const float x = Bits(static_cast<uint32_t>(gen()));
    if (std::isnan(x) || std::isinf(x) || std::fabs(x) > 3.3e38f) continue;
    ASSERT_EQ(ToBf16(x), Bf16Reference(x)) << std::hex << BitsOf(x);
  }
}

TEST(Float16Test, EveryValueWidensExactlyAndRoundTrips) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float x = FromF16(static_cast<uint16_t>(h));
    const double expect = F16Reference(static_cast<uint16_t>(h));
    if (std::isnan(expect)) {
      EXPECT_TRUE(std::isnan(x)) << h;
      EXPECT_TRUE(std::isnan(FromF16(ToF16(x))));
      continue;
    }
    EXPECT_EQ(static_cast<double>(x), expect) << std::hex << h;
    EXPECT_EQ(ToF16(x), h) << std::hex << h;
  }
}

TEST(Float16Test, RoundsToNearestEvenLikeTheCompiler) {
  EXPECT_EQ(ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(ToF16(65519.0f), 0x7bff);  // below the halfway point to 2^16
  EXPECT_EQ(ToF16(65520.0f), 0x7c00);  // the tie rounds to even: Inf
  EXPECT_EQ(ToF16(1e30f), 0x7c00);
  EXPECT_EQ(ToF16(-1e30f), 0xfc00);
  EXPECT_EQ(ToF16(std::ldexp(1.0f, -25)), 0x0000);  // half the smallest subnormal: to even
  EXPECT_EQ(ToF16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(ToF16(std::ldexp(3.0f, -25)), 0x0002);         // 1.5 subnormal units: a tie, to even
  EXPECT_EQ(ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // a tie, to even
  EXPECT_EQ(ToF16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);
#if defined(__FLT16_MAX__)
  std::mt19937 gen(11);
  for (int i = 0; i < 200000; ++i) {
    const float x = Bits(static_cast<uint32_t>(gen()) & 0xc7ffffffu);  // |x| < 2^17 mostly
    if (std::isnan(x)) continue;
    _Float16 reference = static_cast<_Float16>(x);
    uint16_t bits;
    std::memcpy(&bits, &reference, sizeof(bits));
    ASSERT_EQ(ToF16(x), bits) << std::hex << BitsOf(x);
  }
#endif
}

TEST(Float16ScaleTest, ScaleKeepsTheLargestInRangeAndIsExact) {
  EXPECT_EQ(Float16ScaleExponent(0), 0);
  EXPECT_EQ(Float16ScaleExponent(BitsOf(std::numeric_limits<float>::infinity())), 0);
  EXPECT_EQ(Float16ScaleExponent(0x7fc00000), 0);
  for (float m : {1e-30f, 3e-8f, 1e-3f, 0.75f, 1.0f, 1000.0f, 65504.0f, 1e20f,
                  std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min()}) {
    const int k = Float16ScaleExponent(BitsOf(m));
    const double scaled = std::ldexp(static_cast<double>(m), k);
    EXPECT_LT(scaled, 32768.0) << m;
    if (std::isnormal(m)) {
      EXPECT_GE(scaled, 16384.0) << m;
    }
  }
}

class WireCodecTest : public ::testing::TestWithParam<std::tuple<WireDtype, size_t>> {};

// Encode then decode: float32 is exact; 16 bits are within half a unit in the
// last place of the format (2^-8 relative for bfloat16; for float16 2^-11
// relative, or the scaled subnormal spacing for elements 2^14 times smaller
// than the message's largest).
TEST_P(WireCodecTest, RoundTripWithinHalfAnUlp) {
  auto [dtype, n] = GetParam();
  const std::vector<float> x = MixedMagnitudes(n, static_cast<uint32_t>(n) + 3);
  std::vector<std::byte> wire(WireBytes(dtype, n));
  EncodeWire(dtype, x, absl::MakeSpan(wire));
  std::vector<float> y(n, -1.0f);
  ASSERT_TRUE(DecodeWire(dtype, wire, absl::MakeSpan(y), false).ok());
  float max_abs = 0;
  for (float v : x) max_abs = std::max(max_abs, std::fabs(v));
  const double unit = dtype == WireDtype::kBFloat16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
  const double floor16 = dtype == WireDtype::kFloat16
                             ? std::ldexp(1.0, -25 - Float16ScaleExponent(BitsOf(max_abs)))
                             : 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (dtype == WireDtype::kFloat32) {
      ASSERT_EQ(BitsOf(y[i]), BitsOf(x[i]));
      continue;
    }
    const double err = std::fabs(static_cast<double>(y[i]) - x[i]);
    ASSERT_LE(err, std::max(unit * std::fabs(x[i]), floor16)) << i << " " << x[i];
  }
  // Decoding again with accumulate adds the same values.
  std::vector<float> z(n, 0.5f);
  ASSERT_TRUE(DecodeWire(dtype, wire, absl::MakeSpan(z), true).ok());
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(z[i], 0.5f + y[i]) << i;
  // Re-encoding decoded values is the identity on the wire bytes (float16's
  // scale may change when the largest value rounded up to a power of two).
  if (dtype == WireDtype::kFloat16) return;
  std::vector<std::byte> again(wire.size());
  EncodeWire(dtype, y, absl::MakeSpan(again));
  EXPECT_EQ(again, wire);
}

INSTANTIATE_TEST_SUITE_P(DtypesAndLengths, WireCodecTest,
                         ::testing::Combine(::testing::Values(WireDtype::kFloat32,
                                                              WireDtype::kBFloat16,
                                                              WireDtype::kFloat16),
                                            ::testing::Values(size_t{0}, size_t{1}, size_t{7},
                                                              size_t{1001}, size_t{1} << 20)));

TEST(WireCodecTest, Float16MessagesDoNotOverflowAndKeepSpecials) {
  std::vector<float> big = {3e38f, -1e30f, 1.0f, 0.0f};
  std::vector<std::byte> wire(WireBytes(WireDtype::kFloat16, big.size()));
  EncodeWire(WireDtype::kFloat16, big, absl::MakeSpan(wire));
  std::vector<float> out(big.size());
  ASSERT_TRUE(DecodeWire(WireDtype::kFloat16, wire, absl::MakeSpan(out), false).ok());
  EXPECT_NEAR(out[0] / 3e38f, 1.0, 1e-3);
  EXPECT_NEAR(out[1] / -1e30f, 1.0, 1e-3);
  EXPECT_EQ(out[3], 0.0f);

  std::vector<float> special = {std::numeric_limits<float>::infinity(), 1.0f,
                                std::numeric_limits<float>::quiet_NaN(), -2.0f};
  EncodeWire(WireDtype::kFloat16, special, absl::MakeSpan(wire));
  ASSERT_TRUE(DecodeWire(WireDtype::kFloat16, wire, absl::MakeSpan(out), false).ok());
  EXPECT_TRUE(std::isinf(out[0]));
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(out[3], -2.0f);

  // Gradient-sized values that binary16 alone would flush to zero survive.
  std::vector<float> tiny = {3e-9f, -7e-10f, 1e-12f, 0.0f};
  EncodeWire(WireDtype::kFloat16, tiny, absl::MakeSpan(wire));
  ASSERT_TRUE(DecodeWire(WireDtype::kFloat16, wire, absl::MakeSpan(out), false).ok());
  EXPECT_NEAR(out[0], 3e-9f, 3e-9f * 1e-3);
  EXPECT_NEAR(out[1], -7e-10f, 7e-10f * 1e-3);
}

TEST(WireCodecTest, MalformedMessagesAreErrorsAndLeaveTheOutputAlone) {
  std::vector<float> out = {1.0f, 2.0f};
  std::vector<std::byte> short_message(3);
  absl::Status s = DecodeWire(WireDtype::kBFloat16, short_message, absl::MakeSpan(out), true);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(s.message(), "bfloat16 message of 2 elements has 4 bytes, got 3"))
      << s;
  std::vector<std::byte> wire(WireBytes(WireDtype::kFloat16, 2));
  const int32_t bad_k = 1000;
  std::memcpy(wire.data(), &bad_k, sizeof(bad_k));
  s = DecodeWire(WireDtype::kFloat16, wire, absl::MakeSpan(out), false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(s.message(), "scale exponent 1000")) << s;
  EXPECT_EQ(out, (std::vector<float>{1.0f, 2.0f}));
}

}  // namespace
}  // namespace meshtrain
