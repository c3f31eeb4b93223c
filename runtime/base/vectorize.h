// MESHTRAIN_VECTORIZED: compile a hot loop once per instruction set (AVX-512,
// AVX2, baseline SSE2) and pick the clone when the process starts, so one binary
// runs everywhere and uses the widest vectors the CPU has.
#ifndef MESHTRAIN_RUNTIME_BASE_VECTORIZE_H_
#define MESHTRAIN_RUNTIME_BASE_VECTORIZE_H_

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MESHTRAIN_VECTORIZED \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MESHTRAIN_VECTORIZED
#endif

#endif  // MESHTRAIN_RUNTIME_BASE_VECTORIZE_H_
