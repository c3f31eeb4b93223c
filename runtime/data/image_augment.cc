#include "runtime/data/image_augment.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/data/portable_random.h"

namespace meshtrain {

absl::Status ValidateAugment(const AugmentOptions& options, int64_t row_elements) {
  if (options.height <= 0 || options.width <= 0 || options.channels <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data.augment.image_shape [", options.height, ", ", options.width, ", ", options.channels,
        "] must be positive: [height, width, channels] of each input"));
  }
  if (options.height * options.width * options.channels != row_elements) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data.augment.image_shape [", options.height, ", ", options.width, ", ", options.channels,
        "] holds ", options.height * options.width * options.channels,
        " values but each input has ", row_elements,
        "; give the images' [height, width, channels]"));
  }
  if (options.crop_padding < 0 || options.crop_padding > std::min(options.height, options.width)) {
    return absl::InvalidArgumentError(absl::StrCat("data.augment.crop_padding ",
                                                   options.crop_padding, " must be in [0, ",
                                                   std::min(options.height, options.width), "]"));
  }
  return absl::OkStatus();
}

uint64_t AugmentSeed(uint64_t seed, int64_t epoch, int64_t step, int64_t global_row) {
  // A stream of its own, apart from the epoch permutations DeriveSeed(seed, e).
  constexpr uint64_t kAugmentStream = 0x61756700;  // "aug"
  uint64_t s = DeriveSeed(DeriveSeed(seed, kAugmentStream), static_cast<uint64_t>(epoch));
  s = DeriveSeed(s, static_cast<uint64_t>(step));
  return DeriveSeed(s, static_cast<uint64_t>(global_row));
}

void AugmentImage(const AugmentOptions& options, uint64_t draw_seed, absl::Span<float> image,
                  absl::Span<float> scratch) {
  const int64_t h = options.height;
  const int64_t w = options.width;
  const int64_t c = options.channels;
  MESHTRAIN_CHECK(static_cast<int64_t>(image.size()) == h * w * c && scratch.size() >= image.size())
      << "augment of " << image.size() << " values as [" << h << ", " << w << ", " << c << "]";
  PortableRandom random(draw_seed);
  // Both draws are made whichever are used, so that turning one option on
  // does not change the other's draws.
  const bool flip = random.UniformBelow(2) == 1;
  const int64_t p = options.crop_padding;
  const int64_t dy = static_cast<int64_t>(random.UniformBelow(2 * p + 1)) - p;
  const int64_t dx = static_cast<int64_t>(random.UniformBelow(2 * p + 1)) - p;
  if (!(options.flip_left_right && flip) && (p == 0 || (dy == 0 && dx == 0))) return;
  const bool do_flip = options.flip_left_right && flip;
  std::memcpy(scratch.data(), image.data(), image.size() * sizeof(float));
  // Output pixel (y, x) is input pixel (y + dy, x') of the flipped image,
  // where x' = x + dx; outside the image it is the zero padding.
  for (int64_t y = 0; y < h; ++y) {
    const int64_t sy = y + dy;
    for (int64_t x = 0; x < w; ++x) {
      float* out = image.data() + (y * w + x) * c;
      int64_t sx = x + dx;
      if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
        std::fill(out, out + c, 0.0f);
        continue;
      }
      if (do_flip) sx = w - 1 - sx;
      std::memcpy(out, scratch.data() + (sy * w + sx) * c, c * sizeof(float));
    }
  }
}

}  // namespace meshtrain
