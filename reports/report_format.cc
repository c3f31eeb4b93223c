#include "reports/report_format.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace meshtrain {

std::string FormatThousands(double value) {
  const bool negative = value < 0;
  std::string digits = absl::StrFormat("%.0f", std::fabs(value));
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return negative ? "-" + out : out;
}

std::string FormatShort(double value) {
  const double a = std::fabs(value);
  auto trim = [](double v, const char* suffix) {
    return v >= 99.5 ? absl::StrFormat("%.0f%s", v, suffix) : absl::StrFormat("%.3g%s", v, suffix);
  };
  if (a >= 1e9) return trim(value / 1e9, "G");
  if (a >= 1e6) return trim(value / 1e6, "M");
  if (a >= 1e3) return trim(value / 1e3, "k");
  return absl::StrFormat("%.3g", value);
}

std::string FormatBytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  double v = bytes;
  while (std::fabs(v) >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  if (unit == 0) return absl::StrFormat("%.0f B", v);
  return absl::StrFormat(std::fabs(v) >= 100 ? "%.0f %s" : "%.1f %s", v, kUnits[unit]);
}

std::string FormatSeconds(double seconds) {
  if (seconds < 1) return absl::StrFormat("%.0f ms", seconds * 1000);
  if (seconds < 100) return absl::StrFormat("%.1f s", seconds);
  if (seconds < 3600)
    return absl::StrFormat("%dm %02ds", static_cast<int>(seconds) / 60,
                           static_cast<int>(seconds) % 60);
  return absl::StrFormat("%.1f h", seconds / 3600);
}

std::string FormatPercent(double fraction) { return absl::StrFormat("%.1f%%", fraction * 100); }

}  // namespace meshtrain
