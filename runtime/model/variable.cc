#include "runtime/model/variable.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/base/check.h"

namespace meshtrain {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t Fnv1a(absl::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : text) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  return h;
}

// A uniform draw in (0, 1) that is a pure function of (key, counter).
double Uniform(uint64_t key, uint64_t counter) {
  const uint64_t bits = SplitMix64(key ^ SplitMix64(counter));
  return (static_cast<double>(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

double StandardNormal(uint64_t key, uint64_t index) {
  // Box-Muller on two draws reserved for this element.
  const double u1 = Uniform(key, 2 * index), u2 = Uniform(key, 2 * index + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Fans as Keras computes them: a 2-D kernel [in, out]; a convolution kernel
// [kh, kw, in, out] counts its receptive field kh * kw on both sides.
void Fans(const Shape& shape, double* fan_in, double* fan_out) {
  if (shape.rank() == 0) {
    *fan_in = *fan_out = 1;
  } else if (shape.rank() == 1) {
    *fan_in = *fan_out = static_cast<double>(shape.dim(0));
  } else {
    double receptive_field = 1;
    for (int i = 0; i + 2 < shape.rank(); ++i) receptive_field *= static_cast<double>(shape.dim(i));
    *fan_in = receptive_field * static_cast<double>(shape.dim(shape.rank() - 2));
    *fan_out = receptive_field * static_cast<double>(shape.dim(shape.rank() - 1));
  }
}

}  // namespace

absl::StatusOr<Initializer> Initializer::Parse(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits(':', 1));
  Initializer init;
  if (parts[0] == "zeros") {
    init.kind = Kind::kZeros;
  } else if (parts[0] == "ones") {
    init.kind = Kind::kOnes;
  } else if (parts[0] == "glorot_uniform") {
    init.kind = Kind::kGlorotUniform;
  } else if (parts[0] == "glorot_normal") {
    init.kind = Kind::kGlorotNormal;
  } else if (parts[0] == "he_normal") {
    init.kind = Kind::kHeNormal;
  } else if (parts[0] == "he_uniform") {
    init.kind = Kind::kHeUniform;
  } else if (parts[0] == "normal" || parts[0] == "uniform") {
    init.kind = parts[0] == "normal" ? Kind::kNormal : Kind::kUniform;
    if (parts.size() != 2 || !absl::SimpleAtof(parts[1], &init.scale) || !(init.scale > 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "initializer '", text, "': give the scale, for example ", parts[0], ":0.05"));
    }
    return init;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown initializer '", text,
                     "': use zeros, ones, glorot_uniform, glorot_normal, he_normal, he_uniform, "
                     "normal:STDDEV or uniform:LIMIT"));
  }
  if (parts.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("initializer '", text, "': ", parts[0], " takes no parameter"));
  }
  return init;
}

std::string Initializer::ToString() const {
  switch (kind) {
    case Kind::kZeros:
      return "zeros";
    case Kind::kGlorotUniform:
      return "glorot_uniform";
    case Kind::kHeNormal:
      return "he_normal";
    case Kind::kOnes:
      return "ones";
    case Kind::kGlorotNormal:
      return "glorot_normal";
    case Kind::kHeUniform:
      return "he_uniform";
    case Kind::kNormal:
      return absl::StrCat("normal:", scale);
    case Kind::kUniform:
      return absl::StrCat("uniform:", scale);
  }
  return "?";
}

void InitializeVariable(const VariableSpec& spec, uint64_t seed, int64_t row_begin, Tensor& out) {
  MESHTRAIN_CHECK(out.dtype() == DType::kFloat32 && out.device().is_cpu())
      << "initialising " << spec.name << " into " << out.DebugString();
  const int64_t row_elements = spec.shape.row_elements();
  MESHTRAIN_CHECK(out.shape().row_elements() == row_elements &&
                  row_begin + out.rows() <= (spec.shape.rank() == 0 ? 1 : spec.shape.dim(0)))
      << spec.name << spec.shape.ToString() << " rows from " << row_begin << " into "
      << out.DebugString();
  const uint64_t key = SplitMix64(seed) ^ Fnv1a(spec.name);
  const uint64_t first = static_cast<uint64_t>(row_begin * row_elements);
  float* v = out.data<float>();
  const int64_t n = out.num_elements();
  double fan_in = 1, fan_out = 1;
  Fans(spec.shape, &fan_in, &fan_out);
  switch (spec.initializer.kind) {
    case Initializer::Kind::kZeros:
    case Initializer::Kind::kOnes: {
      const float value = spec.initializer.kind == Initializer::Kind::kOnes ? 1.0f : 0.0f;
      for (int64_t i = 0; i < n; ++i) v[i] = value;
      break;
    }
    case Initializer::Kind::kGlorotUniform:
    case Initializer::Kind::kHeUniform:
    case Initializer::Kind::kUniform: {
      const Initializer::Kind kind = spec.initializer.kind;
      const double limit = kind == Initializer::Kind::kUniform ? spec.initializer.scale
                           : kind == Initializer::Kind::kHeUniform
                               ? std::sqrt(6.0 / fan_in)
                               : std::sqrt(6.0 / (fan_in + fan_out));
      for (int64_t i = 0; i < n; ++i) {
        v[i] = static_cast<float>((2.0 * Uniform(key, first + i) - 1.0) * limit);
      }
      break;
    }
    case Initializer::Kind::kHeNormal:
    case Initializer::Kind::kGlorotNormal:
    case Initializer::Kind::kNormal: {
      const Initializer::Kind kind = spec.initializer.kind;
      const double stddev = kind == Initializer::Kind::kNormal ? spec.initializer.scale
                            : kind == Initializer::Kind::kHeNormal
                                ? std::sqrt(2.0 / fan_in)
                                : std::sqrt(2.0 / (fan_in + fan_out));
      for (int64_t i = 0; i < n; ++i) {
        v[i] = static_cast<float>(StandardNormal(key, first + i) * stddev);
      }
      break;
    }
  }
}

}  // namespace meshtrain
