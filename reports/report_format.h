// How the compare report prints numbers: counts with thousands separators or
// k/M suffixes, bytes in binary units, seconds and percentages. Pure; thread-safe.
#ifndef MESHTRAIN_REPORTS_REPORT_FORMAT_H_
#define MESHTRAIN_REPORTS_REPORT_FORMAT_H_

#include <string>

namespace meshtrain {

std::string FormatThousands(double value);   // 121251 -> "121,251"
std::string FormatShort(double value);       // 121251 -> "121k", 1.5e6 -> "1.5M", 12 -> "12"
std::string FormatBytes(double bytes);       // 1536 -> "1.5 KiB", 0 -> "0 B"
std::string FormatSeconds(double seconds);   // 3.14159 -> "3.1 s", 0.0123 -> "12 ms"
std::string FormatPercent(double fraction);  // 0.1234 -> "12.3%"

}  // namespace meshtrain

#endif  // MESHTRAIN_REPORTS_REPORT_FORMAT_H_
