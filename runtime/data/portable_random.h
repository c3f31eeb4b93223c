// PortableRandom: random draws that are bit-identical on every platform and
// standard library, so that every process of a cluster derives the same epoch
// order and the same synthetic data from a seed. std::mt19937_64's seeding and
// output sequence are fixed by the C++ standard; std::uniform_int_distribution,
// std::normal_distribution and std::shuffle are not, so we write our own on top.
// Not thread-safe: one generator per thread.
#ifndef MESHTRAIN_RUNTIME_DATA_PORTABLE_RANDOM_H_
#define MESHTRAIN_RUNTIME_DATA_PORTABLE_RANDOM_H_

#include <cstdint>
#include <random>

#include "absl/types/span.h"

namespace meshtrain {

// SplitMix64's finaliser: a bijective mix of 64 bits (Steele et al., 2014).
uint64_t MixBits(uint64_t x);

// A seed for stream `stream` of `seed` (epoch e of a run, a dataset's split):
// distinct streams of one seed give unrelated sequences.
uint64_t DeriveSeed(uint64_t seed, uint64_t stream);

class PortableRandom {
 public:
  explicit PortableRandom(uint64_t seed) : engine_(seed) {}

  uint64_t Next64() { return engine_(); }

  // Uniform in [0, bound), bound >= 1, exactly unbiased: draws below
  // 2^64 mod bound are rejected, so the accepted range is a whole number of
  // copies of [0, bound) and `x % bound` is uniform (the OpenBSD
  // arc4random_uniform method). At most one draw in two is rejected, and for
  // bounds far below 2^64 (all of ours) almost none are.
  uint64_t UniformBelow(uint64_t bound);

  // Uniform in [0, 1) with 24 random bits (exact in float32).
  float UniformFloat();

  // Approximately standard normal: the sum of four UniformFloat draws,
  // centred and scaled to unit variance (Irwin-Hall, bounded to +-3.46).
  // Integer draws and IEEE arithmetic only, hence identical everywhere.
  float NormalApprox();

  // Fisher-Yates: every permutation of `values` equally likely.
  void Shuffle(absl::Span<int64_t> values);

 private:
  std::mt19937_64 engine_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_PORTABLE_RANDOM_H_
