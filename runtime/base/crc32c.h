// CRC32C (Castagnoli), as checkpoints and TFRecord framing use it. The SSE4.2
// instruction is used where the CPU has it, a table otherwise; both give the same
// values (tests check the RFC 3720 vectors). Debian 12 packages no CRC32C library.
#ifndef MESHTRAIN_RUNTIME_BASE_CRC32C_H_
#define MESHTRAIN_RUNTIME_BASE_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace meshtrain::crc32c {

// Returns the CRC32C of `data` continued from `crc` (0 for a fresh checksum).
uint32_t Extend(uint32_t crc, const void* data, size_t size);
inline uint32_t Value(const void* data, size_t size) { return Extend(0, data, size); }

// TFRecord's masked CRC: rotate right by 15 bits and add a constant, so that a
// CRC stored inside checksummed data does not checksum to a fixed point.
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace meshtrain::crc32c

#endif  // MESHTRAIN_RUNTIME_BASE_CRC32C_H_
