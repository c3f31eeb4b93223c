// Conversions between the generated proto messages and meshtrain's own types,
// so that no other file of runtime/rpc builds or reads proto fields by hand.
// Internal to runtime/rpc (it includes generated headers). Pure functions.
#ifndef MESHTRAIN_RUNTIME_RPC_PROTO_CONVERT_H_
#define MESHTRAIN_RUNTIME_RPC_PROTO_CONVERT_H_

#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "proto/coordination.pb.h"
#include "proto/task.pb.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/peer_directory.h"

namespace meshtrain {

void ToProto(const TaskId& task, proto::TaskRef* out);
TaskId FromProto(const proto::TaskRef& task);

void ToProto(const PeerInfo& info, proto::TaskInfo* out);
PeerInfo FromProto(const proto::TaskInfo& info);
std::vector<PeerInfo> FromProto(const google::protobuf::RepeatedPtrField<proto::TaskInfo>& infos);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_PROTO_CONVERT_H_
