// MachineInfo: what a report says about the machine it was measured on (host,
// cores, CPU model, memory, OS, load average), read from /proc and
// /etc/os-release. Fields that cannot be read are "?" or 0. Thread-safe.
#ifndef MESHTRAIN_REPORTS_MACHINE_INFO_H_
#define MESHTRAIN_REPORTS_MACHINE_INFO_H_

#include <cstdint>
#include <string>

namespace meshtrain {

struct MachineInfo {
  std::string host;
  int cores = 0;
  std::string cpu;
  int64_t memory_bytes = 0;
  std::string os;
};

MachineInfo ReadMachineInfo();
// The one-minute load average (/proc/loadavg), or -1.
double LoadAverage();

}  // namespace meshtrain

#endif  // MESHTRAIN_REPORTS_MACHINE_INFO_H_
