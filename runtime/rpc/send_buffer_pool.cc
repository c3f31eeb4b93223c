#include "runtime/rpc/send_buffer_pool.h"

#include <cstring>
#include <utility>

namespace meshtrain {

struct SendBufferPool::Lease {
  std::weak_ptr<SendBufferPool> pool;
  std::vector<std::byte> buffer;
};

std::shared_ptr<SendBufferPool> SendBufferPool::Create(size_t max_cached_bytes) {
  return std::shared_ptr<SendBufferPool>(new SendBufferPool(max_cached_bytes));
}

grpc::Slice SendBufferPool::Copy(absl::Span<const std::byte> bytes) {
  auto lease = std::make_unique<Lease>();
  lease->pool = weak_from_this();
  {
    absl::MutexLock lock(&mu_);
    // The smallest cached buffer that fits; pieces of one transport mostly
    // share one size, so this is nearly always the last one.
    size_t best = free_.size();
    for (size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].size() >= bytes.size() &&
          (best == free_.size() || free_[i].size() < free_[best].size())) {
        best = i;
      }
    }
    if (best < free_.size()) {
      lease->buffer = std::move(free_[best]);
      free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
      cached_bytes_ -= lease->buffer.size();
    }
  }
  if (lease->buffer.size() < bytes.size()) lease->buffer.resize(bytes.size());
  if (!bytes.empty()) std::memcpy(lease->buffer.data(), bytes.data(), bytes.size());
  void* data = lease->buffer.data();
  return grpc::Slice(data, bytes.size(), &SendBufferPool::Return, lease.release());
}

void SendBufferPool::Return(void* raw) {
  std::unique_ptr<Lease> lease(static_cast<Lease*>(raw));
  std::shared_ptr<SendBufferPool> pool = lease->pool.lock();
  if (pool == nullptr) return;
  absl::MutexLock lock(&pool->mu_);
  if (pool->cached_bytes_ + lease->buffer.size() > pool->max_cached_bytes_) return;
  pool->cached_bytes_ += lease->buffer.size();
  pool->free_.push_back(std::move(lease->buffer));
}

size_t SendBufferPool::cached_bytes() const {
  absl::MutexLock lock(&mu_);
  return cached_bytes_;
}

}  // namespace meshtrain
