// The ring AllReduce schedule as pure functions, so it is tested without any
// network. World of n ranks, each sends to its right neighbour (rank + 1) and
// receives from its left (rank - 1); the buffer is cut into n chunks.
//   Steps [0, n-1), reduce-scatter: at step s rank r sends chunk (r - s) and
//     adds the received chunk (r - s - 1) into its own. After them rank r holds
//     the full sum of chunk (r + 1).
//   Steps [n-1, 2n-2), all-gather: at step n-1+t rank r sends chunk (r + 1 - t)
//     and copies the received chunk (r - t) over its own.
// All indices mod n. Every chunk's sum is formed once, on one rank, and copied
// to the others, so every rank ends with bitwise identical results.
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_RING_SCHEDULE_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_RING_SCHEDULE_H_

#include <cstddef>

namespace meshtrain {

struct RingStep {
  int send_chunk;
  int recv_chunk;
  bool accumulate;  // add the received chunk (reduce-scatter) or copy it (all-gather)
};

// 2 (n - 1) steps; 0 for n = 1.
int RingSteps(int world_size);

// Steps [0, n-1) reduce-scatter; [n-1, 2n-2) all-gather. Pure.
RingStep PlanRingStep(int rank, int world_size, int step);

// Elements [begin, end) of one chunk.
struct ChunkRange {
  size_t begin;
  size_t end;
  size_t size() const { return end - begin; }
};

// Chunk `chunk` of `length` elements cut into `num_chunks` chunks: boundaries
// fall on multiples of kChunkAlignElements (64 bytes of floats) and the chunks
// differ by at most that many elements; trailing chunks may be empty when
// length < num_chunks * kChunkAlignElements. Together they tile [0, length).
inline constexpr size_t kChunkAlignElements = 16;
ChunkRange RingChunk(size_t length, int num_chunks, int chunk);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_RING_SCHEDULE_H_
