#include "runtime/transport/shm_transport.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/unit/transport/run_on_ranks.h"
#include "tests/unit/transport/transport_meshes.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::AsBytes;
using ::meshtrain::testing::RunOnRanks;

// Names under /dev/shm that start with "meshtrain-<prefix>-".
std::vector<std::string> SegmentsLeft(const std::string& prefix) {
  std::vector<std::string> left;
  std::string start = absl::StrCat("meshtrain-", prefix, "-");
  if (DIR* dir = opendir("/dev/shm")) {
    while (dirent* e = readdir(dir)) {
      if (absl::StartsWith(e->d_name, start)) left.push_back(e->d_name);
    }
    closedir(dir);
  }
  return left;
}

// Connects world_size ranks on threads of this process with small rings.
std::vector<std::unique_ptr<ShmTransport>> Connect(const std::string& prefix, int world_size,
                                                   size_t ring_bytes,
                                                   AbortSignal* abort = nullptr) {
  return testing::ConnectShm(prefix, world_size, [&](ShmTransportOptions& o) {
    o.ring_bytes = ring_bytes;
    o.piece_bytes = std::min<size_t>(o.piece_bytes, ring_bytes / 2);
    o.abort = abort;
  });
}

TEST(ShmTransportTest, NeighbourListsAreSortedAndUnique) {
  EXPECT_EQ(RingNeighbours(0, 1), std::vector<int>{});
  EXPECT_EQ(RingNeighbours(0, 2), std::vector<int>{1});
  EXPECT_EQ(RingNeighbours(0, 4), (std::vector<int>{1, 3}));
  EXPECT_EQ(AllPeers(1, 3), (std::vector<int>{0, 2}));
}

TEST(ShmTransportTest, MessagesLargerThanTheRingStreamThroughAndNothingLeaks) {
  std::string prefix = testing::UniqueShmPrefix();
  auto t = Connect(prefix, 2, 4096);
  ASSERT_NE(t[1], nullptr);
  EXPECT_EQ(SegmentsLeft(prefix), std::vector<std::string>{});
  for (size_t n : {size_t{0}, size_t{1}, size_t{1001}, size_t{300000}}) {
    auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
      std::vector<float> mine = testing::RankData(r, n), got = testing::RankData(r + 5, n);
      std::vector<float> expect = got;
      std::vector<float> theirs = testing::RankData(1 - r, n);
      for (size_t i = 0; i < n; ++i) expect[i] += theirs[i];
      if (auto s = t[r]->SendRecv({.send_to = 1 - r,
                                   .send = AsBytes(mine),
                                   .recv_from = 1 - r,
                                   .recv = AsBytes(got),
                                   .action = RecvAction::kAddFloat32});
          !s.ok()) {
        return s;
      }
      if (got != expect) return absl::InternalError(absl::StrCat("bad sum for n=", n));
      if (auto s = t[r]->SendRecv(
              {.send_to = 1 - r, .send = AsBytes(mine), .recv_from = 1 - r, .recv = AsBytes(got)});
          !s.ok()) {
        return s;
      }
      return got == theirs ? absl::OkStatus() : absl::InternalError("bad copy");
    });
    for (const auto& s : statuses) EXPECT_TRUE(s.ok()) << s;
  }
}

TEST(ShmTransportTest, EitherSideMayCreateTheSegment) {
  for (int first : {0, 1}) {
    std::string prefix = testing::UniqueShmPrefix();
    std::unique_ptr<ShmTransport> t[2];
    absl::Status status[2];
    std::thread early([&] {
      auto r = ShmTransport::Create(testing::ShmTestOptions(prefix, first, 2));
      status[first] = r.status();
      if (r.ok()) t[first] = *std::move(r);
    });
    // The early side has created the segment once its name shows up.
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (SegmentsLeft(prefix).empty() && absl::Now() < give_up)
      absl::SleepFor(absl::Microseconds(200));
    auto r = ShmTransport::Create(testing::ShmTestOptions(prefix, 1 - first, 2));
    status[1 - first] = r.status();
    early.join();
    EXPECT_TRUE(status[0].ok()) << status[0];
    EXPECT_TRUE(status[1].ok()) << status[1];
    EXPECT_EQ(SegmentsLeft(prefix), std::vector<std::string>{});
  }
}

TEST(ShmTransportTest, SegmentIsPrivateToItsUser) {
  std::string prefix = testing::UniqueShmPrefix();
  absl::Status status[2];
  std::thread early(
      [&] { status[0] = ShmTransport::Create(testing::ShmTestOptions(prefix, 0, 2)).status(); });
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (SegmentsLeft(prefix).empty() && absl::Now() < give_up)
    absl::SleepFor(absl::Microseconds(200));
  struct stat st;
  ASSERT_EQ(stat(absl::StrCat("/dev/shm/meshtrain-", prefix, "-0-1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());
  status[1] = ShmTransport::Create(testing::ShmTestOptions(prefix, 1, 2)).status();
  early.join();
  EXPECT_TRUE(status[0].ok()) << status[0];
  EXPECT_TRUE(status[1].ok()) << status[1];
}

TEST(ShmTransportTest, SegmentOthersCanOpenIsRefused) {
  std::string prefix = testing::UniqueShmPrefix();
  std::string name = absl::StrCat("/meshtrain-", prefix, "-0-1");
  int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  fchmod(fd, 0666);  // planted by someone who wants to read the gradients
  ShmTransportOptions o = testing::ShmTestOptions(prefix, 1, 2);
  o.connect_deadline = absl::Now() + absl::Seconds(5);
  auto t = ShmTransport::Create(o);
  shm_unlink(name.c_str());
  close(fd);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kPermissionDenied) << t.status();
  EXPECT_TRUE(absl::StrContains(t.status().message(), "0666")) << t.status();
}

TEST(ShmTransportTest, MissingPeerIsADeadlineAndLeavesNoSegment) {
  std::string prefix = testing::UniqueShmPrefix();
  ShmTransportOptions o = testing::ShmTestOptions(prefix, 0, 2);
  o.connect_deadline = absl::Now() + absl::Milliseconds(50);
  auto t = ShmTransport::Create(o);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(t.status().message(), "worker:1")) << t.status();
  EXPECT_EQ(SegmentsLeft(prefix), std::vector<std::string>{});
}

TEST(ShmTransportTest, MismatchedRingSizeIsInvalidArgument) {
  std::string prefix = testing::UniqueShmPrefix();
  absl::Status status[2];
  RunOnRanks(2, [&](int r) -> absl::Status {
    ShmTransportOptions o = testing::ShmTestOptions(prefix, r, 2);
    o.ring_bytes = r == 0 ? 4096 : 8192;
    o.connect_deadline = absl::Now() + absl::Milliseconds(500);
    status[r] = ShmTransport::Create(o).status();
    return absl::OkStatus();
  });
  // Whichever side attached second sees the mismatch; the other times out.
  EXPECT_TRUE(status[0].code() == absl::StatusCode::kInvalidArgument ||
              status[1].code() == absl::StatusCode::kInvalidArgument)
      << status[0] << " / " << status[1];
  EXPECT_EQ(SegmentsLeft(prefix), std::vector<std::string>{});
}

TEST(ShmTransportTest, DeadlineNamesThePeer) {
  auto t = Connect(testing::UniqueShmPrefix(), 2, 4096);
  ASSERT_NE(t[0], nullptr);
  std::vector<float> buf(10);
  absl::Time start = absl::Now();
  absl::Status s = t[0]->Recv(1, AsBytes(buf), absl::Now() + absl::Milliseconds(30));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "worker:1")) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  // The transport is broken after an error.
  EXPECT_EQ(t[0]->Recv(1, AsBytes(buf), absl::InfiniteFuture()).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ShmTransportTest, AbortWakesASleepingReceiver) {
  AbortSignal abort;
  auto t = Connect(testing::UniqueShmPrefix(), 2, 4096, &abort);
  ASSERT_NE(t[0], nullptr);
  std::vector<float> buf(10);
  absl::Notification receiving;
  std::thread aborter([&] {
    receiving.WaitForNotification();
    abort.Abort(absl::AbortedError("worker:1 failed at step 7"));
  });
  receiving.Notify();
  absl::Status s = t[0]->Recv(1, AsBytes(buf), absl::InfiniteFuture());
  aborter.join();
  EXPECT_EQ(s, absl::AbortedError("worker:1 failed at step 7"));
}

TEST(ShmTransportTest, PeerThatClosedItsTransportIsUnavailable) {
  auto t = Connect(testing::UniqueShmPrefix(), 2, 4096);
  ASSERT_NE(t[0], nullptr);
  t[1].reset();
  std::vector<float> buf(10);
  absl::Status s = t[0]->Recv(1, AsBytes(buf), absl::Now() + absl::Seconds(20));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "worker:1")) << s;
}

// Two processes: the child sends one message, then is killed while the parent
// waits for the second. The parent must hear of it long before its deadline.
TEST(ShmTransportTest, KilledPeerProcessIsUnavailableWithinMilliseconds) {
  std::string prefix = testing::UniqueShmPrefix();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto t = ShmTransport::Create(testing::ShmTestOptions(prefix, 1, 2));
    if (!t.ok()) _exit(1);
    std::vector<float> one(1000, 7.0f);
    if (!(*t)->Send(0, AsBytes(one), absl::InfiniteFuture()).ok()) _exit(2);
    while (true) pause();
  }
  auto t = ShmTransport::Create(testing::ShmTestOptions(prefix, 0, 2));
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<float> got(1000);
  ASSERT_TRUE((*t)->Recv(1, AsBytes(got), absl::Now() + absl::Seconds(20)).ok());
  EXPECT_EQ(got[999], 7.0f);
  EXPECT_EQ(SegmentsLeft(prefix), std::vector<std::string>{});
  kill(child, SIGKILL);
  absl::Time start = absl::Now();
  absl::Status s = (*t)->Recv(1, AsBytes(got), absl::Now() + absl::Seconds(30));
  absl::Duration took = absl::Now() - start;
  int wstatus;
  waitpid(child, &wstatus, 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "worker:1")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "exited")) << s;
  EXPECT_LT(took, absl::Seconds(1)) << s;
}

// A process killed before its peer attached leaves a named segment behind; the
// next run with the same name removes it and connects.
TEST(ShmTransportTest, StaleSegmentOfAKilledRunIsReplaced) {
  std::string prefix = testing::UniqueShmPrefix();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    (void)ShmTransport::Create(testing::ShmTestOptions(prefix, 0, 2));  // waits for rank 1 forever
    _exit(0);
  }
  // Kill it once it is waiting for its peer: the segment is marked ready (the
  // first word of the header).
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  std::string path = absl::StrCat("/dev/shm/meshtrain-", prefix, "-0-1");
  uint32_t ready = 0;
  while (ready != 1 && absl::Now() < give_up) {
    int fd = open(path.c_str(), O_RDONLY);
    if (fd >= 0) {
      if (pread(fd, &ready, sizeof(ready), 0) != sizeof(ready)) ready = 0;
      close(fd);
    }
    if (ready != 1) absl::SleepFor(absl::Microseconds(200));
  }
  ASSERT_EQ(ready, 1u);
  kill(child, SIGKILL);
  int wstatus;
  waitpid(child, &wstatus, 0);
  ASSERT_EQ(SegmentsLeft(prefix).size(), 1u);
  absl::Time start = absl::Now();
  auto t = Connect(prefix, 2, size_t{1} << 20);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));  // the dead creator is seen at once
  ASSERT_NE(t[1], nullptr);
  std::vector<float> a{1.0f}, b{0.0f};
  auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
    return r == 0 ? t[0]->Send(1, AsBytes(a), absl::InfiniteFuture())
                  : t[1]->Recv(0, AsBytes(b), absl::Now() + absl::Seconds(10));
  });
  EXPECT_TRUE(statuses[1].ok()) << statuses[1];
  EXPECT_EQ(b[0], 1.0f);
  EXPECT_EQ(SegmentsLeft(prefix), std::vector<std::string>{});
}

TEST(ShmTransportTest, RejectsBadOptionsAndOps) {
  ShmTransportOptions o = testing::ShmTestOptions("bad/prefix", 0, 2);
  EXPECT_EQ(ShmTransport::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = testing::ShmTestOptions(testing::UniqueShmPrefix(), 0, 2);
  o.ring_bytes = 5000;
  EXPECT_EQ(ShmTransport::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  auto t = Connect(testing::UniqueShmPrefix(), 4, 4096);
  ASSERT_NE(t[0], nullptr);
  std::vector<float> buf(4);
  // Rank 2 is not a ring neighbour of rank 0.
  absl::Status s = t[0]->Send(2, AsBytes(buf), absl::InfiniteFuture());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

}  // namespace
}  // namespace meshtrain
