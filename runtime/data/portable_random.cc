#include "runtime/data/portable_random.h"

#include <utility>

#include "runtime/base/check.h"

namespace meshtrain {

uint64_t MixBits(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t DeriveSeed(uint64_t seed, uint64_t stream) { return MixBits(MixBits(seed) ^ stream); }

uint64_t PortableRandom::UniformBelow(uint64_t bound) {
  MESHTRAIN_CHECK(bound >= 1) << "UniformBelow(" << bound << ")";
  // (2^64 - bound) % bound == 2^64 % bound, computed without 128-bit arithmetic.
  const uint64_t threshold = (0 - bound) % bound;
  uint64_t x;
  do {
    x = engine_();
  } while (x < threshold);
  return x % bound;
}

float PortableRandom::UniformFloat() {
  return static_cast<float>(engine_() >> 40) * (1.0f / 16777216.0f);
}

float PortableRandom::NormalApprox() {
  // Var(U[0,1)) = 1/12, so four of them sum to mean 2 and variance 1/3.
  // Separate statements: the evaluation order of `a() + b()` is unspecified.
  float sum = UniformFloat();
  sum += UniformFloat();
  sum += UniformFloat();
  sum += UniformFloat();
  return (sum - 2.0f) * 1.7320508f;  // sqrt(3)
}

void PortableRandom::Shuffle(absl::Span<int64_t> values) {
  for (size_t i = values.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(UniformBelow(i));
    std::swap(values[i - 1], values[j]);
  }
}

}  // namespace meshtrain
