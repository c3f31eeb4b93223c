// PsService: the ParameterServer gRPC service (proto/ps.proto) of a ps task,
// a thin front end over ParameterShards. It is served on the task's own gRPC
// server (the mesh's): register grpc_service() in ServerOptions::services
// before the server starts. Until Activate() every call answers Unavailable
// ("not serving variables yet"), which clients retry; after Deactivate() too.
// A request is checked in full (partitions known, dtype float32, shapes and
// byte counts, ids in range and distinct) before any of it is applied, so a
// malformed request changes nothing and the service keeps serving.
// SaveShards and RestoreShards write and read checkpoint files with the
// ps's own file system (DefaultFileSystem), in the directory the request
// names, and log one line each (bytes, time). That directory must resolve to
// MODEL_DIR/ckpt-STEP of the ps's own model directory (ResolveCheckpointDir:
// no "..", no symlink out; PermissionDenied names both paths); a save writes
// only a .safetensors part into a directory not yet committed, a restore reads
// only a committed checkpoint (index.json, every file verified). Without a
// model directory both are refused.
// Thread-safe; must outlive the server it is registered on.
#ifndef MESHTRAIN_RUNTIME_PS_PS_SERVICE_H_
#define MESHTRAIN_RUNTIME_PS_PS_SERVICE_H_

#include <memory>
#include <string>

#include "runtime/ps/parameter_shards.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace meshtrain {

struct PsServiceOptions {
  // The job's model directory (--model-dir, absolute or relative to the ps's
  // working directory); "": saving and restoring are refused.
  std::string model_dir;
};

class PsService {
 public:
  explicit PsService(PsServiceOptions options = {});
  ~PsService();
  PsService(const PsService&) = delete;
  PsService& operator=(const PsService&) = delete;

  // The service to register on the gRPC server.
  grpc::Service* grpc_service();

  // From now on requests are answered from `shards`.
  void Activate(std::shared_ptr<ParameterShards> shards);
  // Back to Unavailable (calls in flight finish with the shards they hold).
  void Deactivate();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_PS_PS_SERVICE_H_
