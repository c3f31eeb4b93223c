// The plain mutation harness: what a fuzz target links in the normal (GCC)
// build instead of libFuzzer. It replays every seed, then runs a seeded,
// bounded mutation loop over the seeds (bit flips, interesting bytes, byte
// insertion and deletion, duplicated runs, truncation, splices of two seeds),
// calling the target's LLVMFuzzerTestOneInput on each input.
//
//   fuzz_<target> [--runs N] [--seconds S] [--seed K] PATH...
//
// A PATH is a file or a directory of seed files. The loop stops after N
// mutated inputs or S seconds, whichever comes first; the same K and seeds
// give the same inputs. On a crash (a signal) the input is written to
// ./fuzz-crash-input before the process dies, so `fuzz_<target>
// fuzz-crash-input` replays it. Single-threaded.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr char kCrashFile[] = "fuzz-crash-input";
// Mutated inputs never grow past this (the largest seeds are ~110 KB).
constexpr size_t kMaxInputBytes = 256 * 1024;

// The input being run, for the crash handler.
const uint8_t* volatile current_data = nullptr;
volatile size_t current_size = 0;

void WriteCrashInput(int signal_number) {
  int fd = open(kCrashFile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    size_t done = 0;
    while (done < current_size) {
      ssize_t n = write(fd, current_data + done, current_size - done);
      if (n <= 0) break;
      done += n;
    }
    close(fd);
  }
  static const char kMessage[] = "fuzz: crashed; the input is in ./fuzz-crash-input\n";
  ssize_t ignored = write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  (void)ignored;
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

void InstallCrashHandlers() {
  for (int s : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) signal(s, WriteCrashInput);
}

int Run(const std::string& input) {
  current_data = reinterpret_cast<const uint8_t*>(input.data());
  current_size = input.size();
  return LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

bool ReadFile(const std::filesystem::path& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

// Seed files of `arg`, sorted, so runs are reproducible.
bool CollectSeeds(const std::string& arg, std::vector<std::filesystem::path>* paths) {
  std::error_code error;
  if (std::filesystem::is_directory(arg, error)) {
    std::vector<std::filesystem::path> found;
    for (const auto& entry : std::filesystem::directory_iterator(arg, error)) {
      if (entry.is_regular_file()) found.push_back(entry.path());
    }
    std::sort(found.begin(), found.end());
    paths->insert(paths->end(), found.begin(), found.end());
    return !error;
  }
  if (std::filesystem::is_regular_file(arg, error)) {
    paths->push_back(arg);
    return true;
  }
  return false;
}

class Mutator {
 public:
  Mutator(uint64_t seed, const std::vector<std::string>& seeds) : rng_(seed), seeds_(seeds) {}

  std::string Next() {
    std::string input = seeds_.empty() ? std::string() : seeds_[Below(seeds_.size())];
    const int mutations = 1 + static_cast<int>(Below(4));
    for (int i = 0; i < mutations; ++i) MutateOnce(input);
    if (input.size() > kMaxInputBytes) input.resize(kMaxInputBytes);
    return input;
  }

 private:
  size_t Below(size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  }

  char InterestingByte() {
    static constexpr char kBytes[] = {'\0', '\x01', '\x7f', '\x80', '\xff', '"', '\\', '[', ']',
                                      '{',  '}',    ',',    ':',    '-',    '0', '9',  'e', '\n'};
    return kBytes[Below(sizeof(kBytes))];
  }

  void MutateOnce(std::string& s) {
    switch (Below(s.empty() ? 2 : 8)) {
      case 0:  // insert a byte
        s.insert(s.begin() + Below(s.size() + 1),
                 Below(2) ? InterestingByte() : static_cast<char>(Below(256)));
        break;
      case 1:  // splice: a run of another seed replaces the tail
        if (!seeds_.empty()) {
          const std::string& other = seeds_[Below(seeds_.size())];
          const size_t from = Below(other.size() + 1);
          s = s.substr(0, Below(s.size() + 1)) + other.substr(from, Below(other.size() - from + 1));
        }
        break;
      case 2:  // flip a bit
        s[Below(s.size())] ^= static_cast<char>(1 << Below(8));
        break;
      case 3:  // set a byte
        s[Below(s.size())] = Below(2) ? InterestingByte() : static_cast<char>(Below(256));
        break;
      case 4: {  // delete a run
        const size_t at = Below(s.size());
        s.erase(at, 1 + Below(std::min<size_t>(s.size() - at, 16)));
        break;
      }
      case 5:  // truncate
        s.resize(Below(s.size()));
        break;
      case 6: {  // duplicate a run in place
        const size_t at = Below(s.size());
        s.insert(at, s.substr(at, 1 + Below(std::min<size_t>(s.size() - at, 64))));
        break;
      }
      case 7: {  // overwrite 1, 2, 4 or 8 bytes with an extreme integer
        static constexpr uint64_t kValues[] = {
            0, 1, 0x7f, 0x80, 0xff, 0x7fffffff, 0x80000000, 0xffffffff, 0x7fffffffffffffff, ~0ull};
        const uint64_t v = kValues[Below(std::size(kValues))];
        const size_t width = size_t{1} << Below(4);
        if (s.size() >= width) std::memcpy(&s[Below(s.size() - width + 1)], &v, width);
        break;
      }
    }
  }

  std::mt19937_64 rng_;
  const std::vector<std::string>& seeds_;
};

int Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--runs N] [--seconds S] [--seed K] PATH...\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  long long runs = 10000;
  double seconds = 10;
  uint64_t seed = 1;
  std::vector<std::filesystem::path> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--runs" || arg == "--seconds" || arg == "--seed") && i + 1 < argc) {
      const char* value = argv[++i];
      if (arg == "--runs") runs = std::atoll(value);
      if (arg == "--seconds") seconds = std::atof(value);
      if (arg == "--seed") seed = std::strtoull(value, nullptr, 10);
    } else if (arg.rfind("--", 0) == 0) {
      return Usage(argv[0]);
    } else if (!CollectSeeds(arg, &paths)) {
      std::fprintf(stderr, "%s: %s is neither a file nor a directory\n", argv[0], arg.c_str());
      return 2;
    }
  }
  if (paths.empty()) return Usage(argv[0]);
  InstallCrashHandlers();

  std::vector<std::string> seeds;
  for (const auto& path : paths) {
    std::string input;
    if (!ReadFile(path, &input)) {
      std::fprintf(stderr, "%s: cannot read %s\n", argv[0], path.c_str());
      return 2;
    }
    Run(input);
    seeds.push_back(std::move(input));
  }

  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  Mutator mutator(seed, seeds);
  long long done = 0;
  while (done < runs && std::chrono::steady_clock::now() < end) {
    Run(mutator.Next());
    ++done;
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: %zu seeds replayed, %lld mutated inputs in %.1f s (%.0f/s), seed %llu\n",
              argv[0], seeds.size(), done, took, took > 0 ? done / took : 0.0,
              static_cast<unsigned long long>(seed));
  return 0;
}
