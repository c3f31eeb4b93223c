#include "runtime/rpc/proto_convert.h"

namespace meshtrain {

void ToProto(const TaskId& task, proto::TaskRef* out) {
  out->set_job(task.job);
  out->set_index(task.index);
}

TaskId FromProto(const proto::TaskRef& task) { return TaskId{task.job(), task.index()}; }

namespace {

proto::TaskState ToProto(TaskState state) {
  switch (state) {
    case TaskState::kUnregistered:
      return proto::TASK_STATE_UNREGISTERED;
    case TaskState::kConnected:
      return proto::TASK_STATE_CONNECTED;
    case TaskState::kDead:
      return proto::TASK_STATE_DEAD;
    case TaskState::kLeft:
      return proto::TASK_STATE_LEFT;
  }
  return proto::TASK_STATE_UNSPECIFIED;
}

TaskState FromProto(proto::TaskState state) {
  switch (state) {
    case proto::TASK_STATE_CONNECTED:
      return TaskState::kConnected;
    case proto::TASK_STATE_DEAD:
      return TaskState::kDead;
    case proto::TASK_STATE_LEFT:
      return TaskState::kLeft;
    default:
      return TaskState::kUnregistered;
  }
}

}  // namespace

void ToProto(const PeerInfo& info, proto::TaskInfo* out) {
  ToProto(info.task, out->mutable_task());
  out->set_incarnation(info.incarnation);
  out->set_address(info.address);
  out->set_host_identity(info.host_identity);
  out->set_state(ToProto(info.state));
}

PeerInfo FromProto(const proto::TaskInfo& info) {
  PeerInfo out;
  out.task = FromProto(info.task());
  out.incarnation = info.incarnation();
  out.address = info.address();
  out.host_identity = info.host_identity();
  out.state = FromProto(info.state());
  return out;
}

std::vector<PeerInfo> FromProto(const google::protobuf::RepeatedPtrField<proto::TaskInfo>& infos) {
  std::vector<PeerInfo> out;
  out.reserve(infos.size());
  for (const proto::TaskInfo& info : infos) out.push_back(FromProto(info));
  return out;
}

}  // namespace meshtrain
