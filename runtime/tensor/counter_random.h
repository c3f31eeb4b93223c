// Counter-based random numbers shared by the CPU and CUDA kernels: a draw is a
// pure function of (key, index), so a dropout mask is the same on every device,
// needs no state, and the backward pass recomputes it instead of storing it.
// Header-only (host and device); thread-safe.
#ifndef MESHTRAIN_RUNTIME_TENSOR_COUNTER_RANDOM_H_
#define MESHTRAIN_RUNTIME_TENSOR_COUNTER_RANDOM_H_

#include <cstdint>

#if defined(__CUDACC__)
#define MESHTRAIN_HOST_DEVICE __host__ __device__
#else
#define MESHTRAIN_HOST_DEVICE
#endif

namespace meshtrain {

MESHTRAIN_HOST_DEVICE inline uint64_t CounterMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A uniform float in [0, 1) from 24 random bits of (key, index).
MESHTRAIN_HOST_DEVICE inline float CounterUniform(uint64_t key, uint64_t index) {
  return static_cast<float>(CounterMix64(key ^ CounterMix64(index)) >> 40) * (1.0f / 16777216.0f);
}

// Whether dropout keeps element `index` (probability 1 - rate).
MESHTRAIN_HOST_DEVICE inline bool DropoutKeeps(uint64_t key, uint64_t index, float rate) {
  return CounterUniform(key, index) >= rate;
}

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_COUNTER_RANDOM_H_
