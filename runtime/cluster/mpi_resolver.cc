#include "runtime/cluster/mpi_resolver.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"
#include "runtime/cluster/mpi_library.h"

namespace meshtrain {
namespace {

// The variables one family of MPI launchers sets.
struct MpiVariables {
  const char* rank;
  const char* size;
  const char* local_rank;
  const char* local_size;
};

constexpr MpiVariables kOpenMpi = {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                                   "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"};
constexpr MpiVariables kHydra = {"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"};

constexpr absl::string_view kSetByMpirun = "mpirun sets these variables; do not set them by hand";

const char* GetEnv(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

bool HasRankAndSize(const MpiVariables& vars) {
  return GetEnv(vars.rank) != nullptr && GetEnv(vars.size) != nullptr;
}

absl::StatusOr<int> ReadInt(const char* name) {
  const char* text = GetEnv(name);
  int value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("MPI environment: ", name, "=",
                                                   QuoteForMessage(text), " is not an integer; ",
                                                   kSetByMpirun));
  }
  return value;
}

absl::StatusOr<MpiPlacement> ReadPlacement(const MpiVariables& vars) {
  MpiPlacement p;
  MESHTRAIN_ASSIGN_OR_RETURN(p.rank, ReadInt(vars.rank));
  MESHTRAIN_ASSIGN_OR_RETURN(p.size, ReadInt(vars.size));
  if (p.size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("MPI environment: ", vars.size, "=", p.size,
                                                   " must be at least 1; ", kSetByMpirun));
  }
  if (p.rank < 0 || p.rank >= p.size) {
    return absl::InvalidArgumentError(absl::StrCat("MPI environment: ", vars.rank, "=", p.rank,
                                                   " is out of range for ", vars.size, "=", p.size,
                                                   " (ranks 0..", p.size - 1, "); ", kSetByMpirun));
  }
  const bool has_local_rank = GetEnv(vars.local_rank) != nullptr;
  const bool has_local_size = GetEnv(vars.local_size) != nullptr;
  if (!has_local_rank && !has_local_size) {
    // Unknown neighbours: assume none, so peers are given the hostname, which
    // works on one host and on many.
    p.local_rank = 0;
    p.local_size = 1;
    return p;
  }
  if (has_local_rank != has_local_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MPI environment: ", has_local_rank ? vars.local_rank : vars.local_size, " is set but ",
        has_local_rank ? vars.local_size : vars.local_rank, " is not; ", kSetByMpirun));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(p.local_rank, ReadInt(vars.local_rank));
  MESHTRAIN_ASSIGN_OR_RETURN(p.local_size, ReadInt(vars.local_size));
  if (p.local_size < 1 || p.local_size > p.size) {
    return absl::InvalidArgumentError(absl::StrCat("MPI environment: ", vars.local_size, "=",
                                                   p.local_size, " must be in 1..", vars.size, " (",
                                                   p.size, "); ", kSetByMpirun));
  }
  if (p.local_rank < 0 || p.local_rank >= p.local_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("MPI environment: ", vars.local_rank, "=", p.local_rank,
                     " is out of range for ", vars.local_size, "=", p.local_size,
                     " (local ranks 0..", p.local_size - 1, "); ", kSetByMpirun));
  }
  return p;
}

std::string MpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return absl::StrCat("MPI error ", code);
  return std::string(text, length);
}

absl::Status MpiError(absl::string_view operation, int code) {
  return absl::InternalError(absl::StrCat(operation, " failed: ", MpiErrorText(code),
                                          "; another rank may have failed: see its log"));
}

// Polls `request` until it completes or `timeout` from `start` passes. MPI collectives take
// no deadline, so the wait is MPI_Test with a short back-off (Open MPI makes
// progress inside MPI_Test).
absl::Status Wait(MPI_Request* request, absl::Time start, absl::Duration timeout,
                  absl::string_view what, int rank, int size) {
  const absl::Time deadline = start + timeout;
  absl::Duration pause = absl::Microseconds(50);
  while (true) {
    int done = 0;
    const int rc = MPI_Test(request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return MpiError(what, rc);
    if (done) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          what, ": rank ", rank, " of ", size, " waited ", absl::FormatDuration(timeout),
          " for the other ranks; ",
          "one may have failed or be stuck before the rendezvous: see the other ranks' logs"));
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(2));
  }
}

}  // namespace

bool RunningUnderMpi() { return HasRankAndSize(kOpenMpi) || HasRankAndSize(kHydra); }

absl::StatusOr<MpiPlacement> MpiPlacementFromEnvironment() {
  for (const MpiVariables* vars : {&kOpenMpi, &kHydra}) {
    if (HasRankAndSize(*vars)) return ReadPlacement(*vars);
  }
  for (const MpiVariables* vars : {&kOpenMpi, &kHydra}) {
    const bool has_rank = GetEnv(vars->rank) != nullptr;
    if (has_rank || GetEnv(vars->size) != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("MPI environment: ", has_rank ? vars->rank : vars->size, " is set but ",
                       has_rank ? vars->size : vars->rank, " is not; ", kSetByMpirun));
    }
  }
  return absl::FailedPreconditionError(
      "MPI environment: not started by mpirun (neither OMPI_COMM_WORLD_RANK/SIZE nor "
      "PMI_RANK/SIZE is set); start with 'mpirun -np N meshtrain ...' or set TF_CONFIG");
}

std::string MpiHostForPeers(const MpiPlacement& placement) {
  if (const char* host = GetEnv("MESHTRAIN_HOST")) return host;
  if (placement.local_size == placement.size) return "127.0.0.1";
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    MESHTRAIN_LOG(ERROR) << "MPI rank " << placement.rank
                         << ": gethostname failed; peers on other hosts will not reach "
                            "127.0.0.1: set MESHTRAIN_HOST to this host's address";
    return "127.0.0.1";
  }
  return name;
}

struct MpiSession::State {
  MpiHandles mpi;
  MPI_Comm comm{};  // this session's duplicate of MPI_COMM_WORLD
  // Buffers of the latest collective: they outlive a collective that timed out,
  // which MPI may still write into.
  std::string send;
  std::vector<int> lengths;
  std::vector<int> offsets;
  std::string received;
};

MpiSession::MpiSession(std::unique_ptr<State> state, int rank, int size)
    : state_(std::move(state)), rank_(rank), size_(size) {}

absl::StatusOr<std::unique_ptr<MpiSession>> MpiSession::Init() {
  absl::StatusOr<MpiHandles> mpi = LoadMpi();
  if (!mpi.ok()) return Annotate(mpi.status(), "MPI session");
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized || finalized) {
    return absl::FailedPreconditionError(
        absl::StrCat("MPI session: MPI was already ", finalized ? "finalized" : "initialized",
                     " in this process; create one MpiSession per process and keep it alive"));
  }
  int provided = 0;
  int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  if (rc != MPI_SUCCESS) return MpiError("MPI_Init_thread", rc);
  auto state = std::make_unique<State>();
  state->mpi = *mpi;
  rc = MPI_Comm_dup(mpi->comm_world, &state->comm);
  if (rc != MPI_SUCCESS) {
    MPI_Finalize();
    return MpiError("MPI_Comm_dup", rc);
  }
  MPI_Comm_set_errhandler(state->comm, mpi->errors_return);
  int rank = 0;
  int size = 0;
  MPI_Comm_rank(state->comm, &rank);
  MPI_Comm_size(state->comm, &size);
  if (provided < MPI_THREAD_SERIALIZED) {
    MESHTRAIN_LOG(WARNING) << "MPI rank " << rank << ": MPI gives thread level " << provided
                           << " < MPI_THREAD_SERIALIZED; call MpiSession from the main thread only";
  }
  return std::unique_ptr<MpiSession>(new MpiSession(std::move(state), rank, size));
}

MpiSession::~MpiSession() {
  if (stuck_) {
    MESHTRAIN_LOG(WARNING) << "MPI rank " << rank_
                           << ": skipping MPI_Finalize after a timed-out collective";
    return;
  }
  MPI_Comm_free(&state_->comm);
  MPI_Finalize();
}

absl::StatusOr<std::vector<std::string>> MpiSession::AllGather(const std::string& mine,
                                                               absl::Duration timeout) {
  if (stuck_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "MPI allgather: rank ", rank_, ": an earlier collective timed out; restart the job"));
  }
  if (mine.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat("MPI allgather: rank ", rank_, " sends ",
                                                   mine.size(), " bytes, more than MPI's 2^31-1"));
  }
  const absl::Time start = absl::Now();
  State& s = *state_;
  s.send = mine;
  s.lengths.assign(size_, 0);
  const int my_length = static_cast<int>(s.send.size());

  // 1. Every rank learns every length; 2. every rank gathers the bytes.
  MPI_Request request;
  int rc = MPI_Iallgather(&my_length, 1, s.mpi.int_type, s.lengths.data(), 1, s.mpi.int_type,
                          s.comm, &request);
  if (rc != MPI_SUCCESS) return MpiError("MPI allgather of lengths", rc);
  absl::Status waited = Wait(&request, start, timeout, "MPI allgather of lengths", rank_, size_);
  if (!waited.ok()) {
    stuck_ = absl::IsDeadlineExceeded(waited);
    return waited;
  }
  s.offsets.assign(size_, 0);
  int64_t total = 0;
  for (int r = 0; r < size_; ++r) {
    s.offsets[r] = static_cast<int>(std::min<int64_t>(total, INT_MAX));
    total += s.lengths[r];
  }
  if (total > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("MPI allgather: ", total, " bytes in all, more than MPI's 2^31-1"));
  }
  s.received.assign(static_cast<size_t>(total), '\0');
  rc = MPI_Iallgatherv(s.send.data(), my_length, s.mpi.char_type, s.received.data(),
                       s.lengths.data(), s.offsets.data(), s.mpi.char_type, s.comm, &request);
  if (rc != MPI_SUCCESS) return MpiError("MPI allgather of strings", rc);
  waited = Wait(&request, start, timeout, "MPI allgather of strings", rank_, size_);
  if (!waited.ok()) {
    stuck_ = absl::IsDeadlineExceeded(waited);
    return waited;
  }
  std::vector<std::string> result;
  result.reserve(size_);
  for (int r = 0; r < size_; ++r) result.push_back(s.received.substr(s.offsets[r], s.lengths[r]));
  return result;
}

absl::StatusOr<ClusterConfig> ClusterConfigFromRankAddresses(
    absl::Span<const std::string> addresses, int rank, int num_ps) {
  const int size = static_cast<int>(addresses.size());
  if (rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("MPI cluster: rank ", rank, " is out of range for ", size, " addresses"));
  }
  if (num_ps < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("MPI cluster: num_ps ", num_ps, " is negative; use 0 or more"));
  }
  if (num_ps >= size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MPI cluster: num_ps ", num_ps, " leaves no worker among ", size,
        size == 1 ? " rank" : " ranks", "; use at most ", size - 1, " or start more ranks"));
  }
  std::map<std::string, int> owner;  // canonical address -> first rank reporting it
  for (int r = 0; r < size; ++r) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(addresses[r]);
    if (!parsed.ok()) return Annotate(parsed.status(), absl::StrCat("MPI cluster: rank ", r));
    auto [where, inserted] = owner.emplace(parsed->EndpointKey(), r);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          "MPI cluster: ranks ", where->second, " and ", r, " both reported address ",
          QuoteForMessage(parsed->Canonical()),
          "; every rank needs its own host:port (set MESHTRAIN_HOST per host, or let each rank "
          "bind its own port)"));
    }
  }
  const int num_workers = size - num_ps;
  std::map<std::string, std::vector<std::string>> jobs;
  jobs[std::string(kWorkerJob)].assign(addresses.begin(), addresses.begin() + num_workers);
  if (num_ps > 0)
    jobs[std::string(kPsJob)].assign(addresses.begin() + num_workers, addresses.end());
  ClusterConfig config;
  config.cluster = ClusterSpec(std::move(jobs));
  config.task = rank < num_workers ? TaskId{std::string(kWorkerJob), rank}
                                   : TaskId{std::string(kPsJob), rank - num_workers};
  return config;
}

absl::StatusOr<ClusterConfig> ClusterConfigFromMpi(MpiSession& mpi, absl::string_view my_address,
                                                   int num_ps, absl::Duration timeout) {
  // Gather before validating anything, so that every rank judges the same data
  // and none is left waiting in the collective.
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<std::string> gathered,
                             mpi.AllGather(absl::StrCat(num_ps, " ", my_address), timeout));
  std::vector<std::string> addresses;
  int rank0_num_ps = 0;
  for (int r = 0; r < static_cast<int>(gathered.size()); ++r) {
    const size_t space = gathered[r].find(' ');
    int their_num_ps = 0;
    if (space == std::string::npos ||
        !absl::SimpleAtoi(absl::string_view(gathered[r]).substr(0, space), &their_num_ps)) {
      return absl::InternalError(absl::StrCat("MPI cluster: rank ", r, " sent ",
                                              QuoteForMessage(gathered[r]),
                                              ", not \"<num_ps> <host:port>\"; is every rank the "
                                              "same meshtrain binary?"));
    }
    if (r == 0) rank0_num_ps = their_num_ps;
    if (their_num_ps != rank0_num_ps) {
      return absl::InvalidArgumentError(absl::StrCat(
          "MPI cluster: rank ", r, " was started with num_ps ", their_num_ps, " but rank 0 with ",
          rank0_num_ps, "; start every rank with the same number of parameter servers"));
    }
    addresses.push_back(gathered[r].substr(space + 1));
  }
  return ClusterConfigFromRankAddresses(addresses, mpi.rank(), num_ps);
}

}  // namespace meshtrain
