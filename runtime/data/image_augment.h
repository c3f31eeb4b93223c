// ImageAugment: random left-right flips and random crops of image inputs,
// applied to a training batch as it is gathered (tf.image's
// random_flip_left_right; zero padding then a random crop back to the size,
// as Keras' ZeroPadding2D + RandomCrop). Inputs are images [height, width,
// channels] flattened row-major (NHWC, Keras' channels_last).
//
// Each example's draws are a pure function of (seed, epoch, its row in the
// global batch), never of the thread or the replica that gathers it: every
// strategy and every --input-threads sees the same augmented batches, so runs
// stay bit-identical across strategies. Evaluation is never augmented.
// Stateless; thread-safe.
#ifndef MESHTRAIN_RUNTIME_DATA_IMAGE_AUGMENT_H_
#define MESHTRAIN_RUNTIME_DATA_IMAGE_AUGMENT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace meshtrain {

struct AugmentOptions {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 1;
  bool flip_left_right = false;
  int64_t crop_padding = 0;  // 0: no crop

  bool enabled() const { return flip_left_right || crop_padding > 0; }
};

// OK when the image shape is positive and holds `row_elements` values and
// crop_padding is in [0, min(height, width)]; InvalidArgument naming
// data.augment and the fix otherwise.
absl::Status ValidateAugment(const AugmentOptions& options, int64_t row_elements);

// The seed of the draws for the example at `global_row` of epoch `epoch`'s
// step `step` in a run seeded `seed`.
uint64_t AugmentSeed(uint64_t seed, int64_t epoch, int64_t step, int64_t global_row);

// Augments one image in place: a flip with probability 1/2, then a crop at an
// offset drawn uniformly from [0, 2 * crop_padding] in each direction of the
// zero-padded image. `scratch` holds at least one image.
void AugmentImage(const AugmentOptions& options, uint64_t draw_seed, absl::Span<float> image,
                  absl::Span<float> scratch);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_IMAGE_AUGMENT_H_
