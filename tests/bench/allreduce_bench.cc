// Development benchmark (not a test): forks --nproc processes on this host that
// connect directly over shared memory or TCP (fixed local ports / segment names;
// the real negotiation goes through the mesh) and runs RunAllReduceBenchmark,
// the method of shared/peers/torch_gloo_allreduce.py and mpi_allreduce.c.
//
//   allreduce_bench --transport shm|tcp [--nproc 2] [--min-time 2] [--sizes 4096,65536]
//                   [--streams 1] [--ring-bytes 1048576] [--exchange-max 8192]
//                   [--socket-buffer 4194304] [--port 29650] [--spin-us 50] [--pin 1]
//                   [--tls off|on|auth] [--tls-dir DIR] [--tls-suites S] [--tls-write-buffer B]
//                   [--rank R --hosts A,B,...]
//   allreduce_bench --write-certs DIR
//
// --tls on: the tcp links handshake TLS and encrypt every frame; auth: they
// handshake and then move frames in the clear. The certificate is a shared
// "cluster" pair from --tls-dir (as `--write-certs DIR` writes it), or made in
// memory for this run. --rank R --hosts runs rank R alone, listening on the
// R-th host at --port and dialling the others' (one process per emulated host;
// every rank needs the same --tls-dir).
#include <openssl/ssl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/collective/allreduce_benchmark.h"
#include "runtime/collective/ring_communicator.h"
#include "runtime/security/certificates.h"
#include "runtime/security/tls_context.h"
#include "runtime/security/tls_credentials.h"
#include "runtime/transport/shm_transport.h"
#include "runtime/transport/tcp_transport.h"
#include "runtime/transport/wire_codec.h"

namespace meshtrain {
namespace {

struct Args {
  std::string transport = "shm";
  int nproc = 2;
  double min_time = 2.0;
  std::vector<size_t> sizes;
  int streams = 1;
  size_t ring_bytes = size_t{1} << 20;
  size_t piece_bytes = size_t{64} << 10;
  size_t exchange_max = RingCommunicatorOptions().exchange_max_bytes;
  WireDtype wire_dtype = WireDtype::kFloat32;
  int socket_buffer = TcpTransportOptions().socket_buffer_bytes;
  int port = 29650;
  int spin_us = 50;
  int pin = 1;  // bind rank r to CPU r mod cores, as mpirun binds ranks to cores by default
  std::string tls = "off";
  std::string tls_dir;
  std::string tls_suites;  // overrides the context's TLS 1.3 suite order
  size_t tls_write_buffer = TcpTransportOptions().tls_write_buffer_bytes;
  std::string write_certs;
  int rank = -1;                   // with hosts: the one rank this process runs
  std::vector<std::string> hosts;  // empty: every rank on 127.0.0.1, forked here
  std::shared_ptr<const TlsContext> tls_context;
};

bool ParseArgs(int argc, char** argv, Args* args) {
  std::map<std::string, std::string> kv;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strncmp(argv[i], "--", 2) != 0) return false;
    kv[argv[i] + 2] = argv[i + 1];
  }
  if ((argc - 1) % 2 != 0) return false;
  for (const auto& [k, v] : kv) {
    bool ok = true;
    if (k == "transport") {
      args->transport = v;
    } else if (k == "nproc") {
      ok = absl::SimpleAtoi(v, &args->nproc);
    } else if (k == "min-time") {
      ok = absl::SimpleAtod(v, &args->min_time);
    } else if (k == "sizes") {
      for (absl::string_view s : absl::StrSplit(v, ',')) {
        size_t b;
        ok &= absl::SimpleAtoi(s, &b);
        args->sizes.push_back(b);
      }
    } else if (k == "streams") {
      ok = absl::SimpleAtoi(v, &args->streams);
    } else if (k == "ring-bytes") {
      ok = absl::SimpleAtoi(v, &args->ring_bytes);
    } else if (k == "piece-bytes") {
      ok = absl::SimpleAtoi(v, &args->piece_bytes);
    } else if (k == "wire-dtype") {
      absl::StatusOr<WireDtype> dtype = ParseWireDtype(v);
      ok = dtype.ok();
      if (ok) args->wire_dtype = *dtype;
    } else if (k == "exchange-max") {
      ok = absl::SimpleAtoi(v, &args->exchange_max);
    } else if (k == "socket-buffer") {
      ok = absl::SimpleAtoi(v, &args->socket_buffer);
    } else if (k == "port") {
      ok = absl::SimpleAtoi(v, &args->port);
    } else if (k == "pin") {
      ok = absl::SimpleAtoi(v, &args->pin);
    } else if (k == "spin-us") {
      ok = absl::SimpleAtoi(v, &args->spin_us);
    } else if (k == "tls") {
      args->tls = v;
      ok = v == "off" || v == "on" || v == "auth";
    } else if (k == "tls-write-buffer") {
      ok = absl::SimpleAtoi(v, &args->tls_write_buffer);
    } else if (k == "tls-suites") {
      args->tls_suites = v;
    } else if (k == "tls-dir") {
      args->tls_dir = v;
    } else if (k == "write-certs") {
      args->write_certs = v;
    } else if (k == "rank") {
      ok = absl::SimpleAtoi(v, &args->rank);
    } else if (k == "hosts") {
      args->hosts = absl::StrSplit(v, ',');
    } else {
      ok = false;
    }
    if (!ok) {
      fprintf(stderr, "bad flag --%s %s\n", k.c_str(), v.c_str());
      return false;
    }
  }
  if (!args->hosts.empty()) {
    args->nproc = static_cast<int>(args->hosts.size());
    if (args->rank < 0 || args->rank >= args->nproc || args->transport != "tcp") return false;
  }
  return args->nproc >= 1 && (args->transport == "shm" || args->transport == "tcp");
}

// The context --tls asks for, from --tls-dir or a CA made now.
absl::StatusOr<std::shared_ptr<const TlsContext>> MakeTlsContext(const Args& args) {
  if (!args.tls_dir.empty()) {
    absl::StatusOr<TlsCredentials> creds = LoadTlsCredentials(args.tls_dir, "cluster");
    if (!creds.ok()) return creds.status();
    return TlsContext::Create(*creds);
  }
  absl::StatusOr<PemPair> ca = MakeCertificateAuthority(1);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<PemPair> pair = MakeTaskCertificate(*ca, {"cluster", {}}, 1);
  if (!pair.ok()) return pair.status();
  return TlsContext::Create({ca->cert_pem, pair->cert_pem, pair->key_pem, "in memory"});
}

absl::StatusOr<std::unique_ptr<Transport>> Connect(const Args& args, int rank,
                                                   const std::string& job) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  if (args.transport == "shm") {
    ShmTransportOptions o;
    o.rank = rank;
    o.world_size = args.nproc;
    o.job_prefix = job;
    o.peers = RingNeighbours(rank, args.nproc);
    o.ring_bytes = args.ring_bytes;
    o.piece_bytes = args.piece_bytes;
    o.spin = absl::Microseconds(args.spin_us);
    o.connect_deadline = deadline;
    auto t = ShmTransport::Create(o);
    if (!t.ok()) return t.status();
    return std::unique_ptr<Transport>(std::move(*t));
  }
  // One host: ports port + rank on 127.0.0.1; --hosts: --port on each.
  auto host = [&](int r) { return args.hosts.empty() ? std::string("127.0.0.1") : args.hosts[r]; };
  auto port = [&](int r) { return args.hosts.empty() ? args.port + r : args.port; };
  std::unique_ptr<TcpListener> listener;
  auto l = TcpListener::Create(host(rank), port(rank));
  if (!l.ok()) return l.status();
  listener = std::move(*l);
  TcpTransportOptions o;
  o.rank = rank;
  o.world_size = args.nproc;
  o.job_id = job;
  for (int r : RingNeighbours(rank, args.nproc)) o.peers.push_back({r, host(r), port(r)});
  o.tls = args.tls_context;
  o.encrypt = args.tls == "on";
  o.tls_write_buffer_bytes = args.tls_write_buffer;
  o.streams = args.streams;
  o.socket_buffer_bytes = args.socket_buffer;
  o.spin = absl::Microseconds(args.spin_us);
  o.connect_deadline = deadline;
  auto t = TcpTransport::Create(std::move(listener), o);
  if (!t.ok()) return t.status();
  return std::unique_ptr<Transport>(std::move(*t));
}

int RunRank(const Args& args, int rank, const std::string& job) {
  if (args.pin) {
    int cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(rank % std::max(cores, 1), &set);
    sched_setaffinity(0, sizeof(set), &set);
  }
  auto transport = Connect(args, rank, job);
  if (!transport.ok()) {
    fprintf(stderr, "rank %d: %s\n", rank, transport.status().ToString().c_str());
    return 1;
  }
  RingCommunicator comm(transport->get(),
                        {.exchange_max_bytes = args.exchange_max, .wire_dtype = args.wire_dtype});
  AllReduceBenchmarkOptions options;
  if (!args.sizes.empty()) options.sizes_bytes = args.sizes;
  options.min_time = absl::Seconds(args.min_time);
  if (rank == 0) {
    printf(
        "meshtrain ring allreduce SUM float32 (%s on the wire), %d ranks, "
        "transport %s (streams %d, ring %zu, "
        "exchange <= %zu, pinned %d, tls %s%s)\n%s\n",
        std::string(WireDtypeName(args.wire_dtype)).c_str(), args.nproc, args.transport.c_str(),
        args.streams, args.ring_bytes, args.exchange_max, args.pin, args.tls.c_str(),
        args.tls_context != nullptr ? (" " + args.tls_context->cipher_suites()).c_str() : "",
        AllReduceBenchmarkHeader().c_str());
    fflush(stdout);
  }
  auto rows = RunAllReduceBenchmark(comm, options, [&](const AllReduceBenchmarkRow& row) {
    if (rank == 0) {
      printf("%s\n", FormatAllReduceBenchmarkRow(row).c_str());
      fflush(stdout);
    }
  });
  if (!rows.ok()) {
    fprintf(stderr, "rank %d: %s\n", rank, rows.status().ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace meshtrain

int main(int argc, char** argv) {
  meshtrain::Args args;
  if (!meshtrain::ParseArgs(argc, argv, &args)) {
    fprintf(stderr,
            "usage: allreduce_bench --transport shm|tcp [--nproc N] [--min-time S] [--sizes B,B]\n"
            "  [--streams N] [--ring-bytes B] [--piece-bytes B] [--exchange-max B]\n"
            "  [--wire-dtype float32|bfloat16|float16]\n"
            "  [--socket-buffer B] [--port P] [--spin-us U] [--pin 0|1]\n"
            "  [--tls off|on|auth] [--tls-dir DIR] [--tls-suites S] [--tls-write-buffer B]\n"
            "  [--rank R --hosts A,B,...]\n"
            "       allreduce_bench --write-certs DIR\n");
    return 2;
  }
  if (!args.write_certs.empty()) {
    auto written = meshtrain::WriteClusterCertificates(
        {.out_dir = args.write_certs, .subjects = {{"cluster", {}}}});
    if (!written.ok()) {
      fprintf(stderr, "%s\n", written.status().ToString().c_str());
      return 1;
    }
    return 0;
  }
  if (args.tls != "off") {
    auto context = meshtrain::MakeTlsContext(args);
    if (!context.ok()) {
      fprintf(stderr, "--tls %s: %s\n", args.tls.c_str(), context.status().ToString().c_str());
      return 1;
    }
    args.tls_context = *std::move(context);
    if (!args.tls_suites.empty() &&
        SSL_CTX_set_ciphersuites(args.tls_context->get(), args.tls_suites.c_str()) != 1) {
      fprintf(stderr, "--tls-suites %s: not a TLS 1.3 suite list\n", args.tls_suites.c_str());
      return 1;
    }
  }
  if (!args.hosts.empty()) return meshtrain::RunRank(args, args.rank, "bench-hosts");
  std::string job = absl::StrCat("bench", getpid());
  std::vector<pid_t> children;
  for (int r = 0; r < args.nproc; ++r) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) _exit(meshtrain::RunRank(args, r, job));
    children.push_back(pid);
  }
  int failures = 0;
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
  }
  return failures == 0 ? 0 : 1;
}
