// Development benchmark (not a test): forward and backward of the reference
// CNN's convolution part (issue 16) on the CPU, per convolution implementation:
//   conv 3x3 1->32 same + bias + relu, max pool 2, conv 3x3 32->64 same + bias
//   + relu, max pool 2 (28x28x1 in, 7x7x64 out; the dense layers are not here).
// Backward: both pools, both relus (with the bias gradients), both filter
// gradients and the second conv's data gradient (the first has no use for it).
// Prints the median milliseconds per batch over --iters steps after a warm-up,
// split into convolution and pooling/activation time, for 1 and 2 threads at
// batch 128 and 256, and for two replica threads of one thread each at 128
// (global batch 256, as mirrored runs it on two cores).
//
//   conv_bench [--iters 30] [--impl dnnl,dnnl_blocked,im2col]
// dnnl is the default (DnnlConv2D's Layout::kAuto); dnnl_nhwc and dnnl_blocked
// force one layout; im2col is the OpenBLAS baseline.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "runtime/tensor/cpu_kernels.h"
#include "runtime/tensor/cpu_pool.h"
#include "runtime/tensor/dnnl_conv.h"
#include "runtime/tensor/im2col_conv.h"

namespace meshtrain {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point from) {
  return std::chrono::duration<double, std::milli>(Clock::now() - from).count();
}

std::unique_ptr<CpuConv2D> MakeConv(const std::string& name) {
  using Layout = DnnlConv2D::Layout;
  if (name == "dnnl") return std::make_unique<DnnlConv2D>(DnnlConv2D::Options{});
  if (name == "dnnl_nhwc") return std::make_unique<DnnlConv2D>(DnnlConv2D::Options{Layout::kNhwc});
  if (name == "dnnl_blocked") {
    return std::make_unique<DnnlConv2D>(DnnlConv2D::Options{Layout::kBlocked});
  }
  if (name == "im2col") return std::make_unique<Im2colConv2D>();
  return nullptr;
}

Tensor Random(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Tensor t(DType::kFloat32, shape);
  for (float& v : t.flat<float>()) v = u(rng);
  return t;
}

Conv2DGeometry ConvGeometry(int64_t batch, int64_t size, int64_t in, int64_t out) {
  return *InferConv2D({.batch = batch,
                       .height = size,
                       .width = size,
                       .in_channels = in,
                       .out_channels = out,
                       .filter_height = 3,
                       .filter_width = 3,
                       .padding = Padding::kSame});
}

Pool2DGeometry PoolGeometry(int64_t batch, int64_t size, int64_t channels) {
  return *InferPool2D({.batch = batch,
                       .height = size,
                       .width = size,
                       .channels = channels,
                       .window_height = 2,
                       .window_width = 2,
                       .stride_height = 2,
                       .stride_width = 2});
}

// The activations and gradients of one replica's step.
struct Step {
  explicit Step(int64_t batch)
      : c1(ConvGeometry(batch, 28, 1, 32)),
        p1(PoolGeometry(batch, 28, 32)),
        c2(ConvGeometry(batch, 14, 32, 64)),
        p2(PoolGeometry(batch, 14, 64)),
        x(Random(c1.input_shape(), 1)),
        w1(Random(c1.filter_shape(), 2)),
        b1(Random(c1.bias_shape(), 3)),
        w2(Random(c2.filter_shape(), 4)),
        b2(Random(c2.bias_shape(), 5)),
        y1(DType::kFloat32, c1.output_shape()),
        q1(DType::kFloat32, p1.output_shape()),
        y2(DType::kFloat32, c2.output_shape()),
        q2(DType::kFloat32, p2.output_shape()),
        dq2(Random(p2.output_shape(), 6)),
        dy2(DType::kFloat32, c2.output_shape()),
        dq1(DType::kFloat32, p1.output_shape()),
        dy1(DType::kFloat32, c1.output_shape()),
        dw1(DType::kFloat32, c1.filter_shape()),
        db1(DType::kFloat32, c1.bias_shape()),
        dw2(DType::kFloat32, c2.filter_shape()),
        db2(DType::kFloat32, c2.bias_shape()) {
    for (float& v : w1.flat<float>()) v *= 0.3f;
    for (float& v : w2.flat<float>()) v *= 0.06f;
  }

  // Returns {conv ms, other ms}.
  std::pair<double, double> Run(CpuConv2D& conv, Kernels& k) {
    double conv_ms = 0, other_ms = 0;
    auto t = Clock::now();
    conv.Forward(c1, x, w1, &b1, Activation::kRelu, y1);
    conv_ms += Ms(t);
    t = Clock::now();
    CpuMaxPool2DForward(p1, y1.data<float>(), q1.data<float>());
    other_ms += Ms(t);
    t = Clock::now();
    conv.Forward(c2, q1, w2, &b2, Activation::kRelu, y2);
    conv_ms += Ms(t);
    t = Clock::now();
    CpuMaxPool2DForward(p2, y2.data<float>(), q2.data<float>());
    CpuMaxPool2DBackward(p2, y2.data<float>(), dq2.data<float>(), dy2.data<float>());
    Tensor dy2_rows = dy2.Reshaped(Shape{dy2.num_elements() / 64, 64});
    k.BiasActivationGrad(y2.Reshaped(dy2_rows.shape()), Activation::kRelu, dy2_rows, db2);
    other_ms += Ms(t);
    t = Clock::now();
    conv.BackwardFilter(c2, q1, dy2, dw2, nullptr);
    conv.BackwardData(c2, dy2, w2, dq1);
    conv_ms += Ms(t);
    t = Clock::now();
    CpuMaxPool2DBackward(p1, y1.data<float>(), dq1.data<float>(), dy1.data<float>());
    Tensor dy1_rows = dy1.Reshaped(Shape{dy1.num_elements() / 32, 32});
    k.BiasActivationGrad(y1.Reshaped(dy1_rows.shape()), Activation::kRelu, dy1_rows, db1);
    other_ms += Ms(t);
    t = Clock::now();
    conv.BackwardFilter(c1, x, dy1, dw1, nullptr);
    conv_ms += Ms(t);
    return {conv_ms, other_ms};
  }

  Conv2DGeometry c1;
  Pool2DGeometry p1;
  Conv2DGeometry c2;
  Pool2DGeometry p2;
  Tensor x, w1, b1, w2, b2, y1, q1, y2, q2, dq2, dy2, dq1, dy1, dw1, db1, dw2, db2;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `replicas` threads each run `batch` with their own objects; times are the
// slowest replica's per step.
void Measure(const std::string& impl, int threads, int replicas, int64_t batch, int iters) {
  SetBlasThreads(threads);
  std::vector<std::vector<double>> total(replicas), conv(replicas), other(replicas);
  std::vector<std::thread> workers;
  for (int r = 0; r < replicas; ++r) {
    workers.emplace_back([&, r] {
      std::unique_ptr<CpuConv2D> c = MakeConv(impl);
      std::unique_ptr<Kernels> k = CreateCpuKernels(Device::Cpu(r));
      Step step(batch);
      for (int i = 0; i < iters + 3; ++i) {
        const auto t = Clock::now();
        const auto [conv_ms, other_ms] = step.Run(*c, *k);
        if (i < 3) continue;  // primitives are created and caches warmed
        total[r].push_back(Ms(t));
        conv[r].push_back(conv_ms);
        other[r].push_back(other_ms);
      }
    });
  }
  for (auto& w : workers) w.join();
  std::vector<double> slowest(iters, 0.0);
  for (int i = 0; i < iters; ++i) {
    for (int r = 0; r < replicas; ++r) slowest[i] = std::max(slowest[i], total[r][i]);
  }
  const double ms = Median(slowest);
  printf("%-13s %7d %8d %6lld %10.2f %9.2f %9.2f %12.0f\n", impl.c_str(), threads, replicas,
         static_cast<long long>(batch), ms, Median(conv[0]), Median(other[0]),
         1000.0 * static_cast<double>(batch * replicas) / ms);
  fflush(stdout);
}

int Main(int argc, char** argv) {
  int iters = 30;
  std::vector<std::string> impls = {"dnnl", "dnnl_blocked", "im2col"};  // dnnl_nhwc: slow conv1
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--iters") == 0 && absl::SimpleAtoi(argv[i + 1], &iters) && iters > 0) {
      continue;
    }
    if (strcmp(argv[i], "--impl") == 0) {
      impls = absl::StrSplit(argv[i + 1], ',');
      continue;
    }
    fprintf(stderr, "usage: conv_bench [--iters 30] [--impl dnnl,dnnl_nhwc,dnnl_blocked,im2col]\n");
    return 2;
  }
  for (const std::string& impl : impls) {
    std::unique_ptr<CpuConv2D> conv = MakeConv(impl);
    if (conv == nullptr) {
      fprintf(stderr, "conv_bench: unknown --impl %s\n", impl.c_str());
      return 2;
    }
    if (auto* dnnl = dynamic_cast<DnnlConv2D*>(conv.get())) {
      printf("%s: conv1 %s\n%s: conv2 %s\n", impl.c_str(),
             dnnl->Describe(ConvGeometry(128, 28, 1, 32)).c_str(), impl.c_str(),
             dnnl->Describe(ConvGeometry(128, 14, 32, 64)).c_str());
    }
  }
  printf("conv+pool part of the reference CNN, forward + backward, median of %d steps\n", iters);
  printf("%-13s %7s %8s %6s %10s %9s %9s %12s\n", "impl", "threads", "replicas", "batch",
         "ms/batch", "conv_ms", "other_ms", "samples/s");
  for (const std::string& impl : impls) {
    for (int threads : {1, 2}) {
      for (int64_t batch : {128, 256}) Measure(impl, threads, 1, batch, iters);
    }
    Measure(impl, 1, 2, 128, iters);
  }
  return 0;
}

}  // namespace
}  // namespace meshtrain

int main(int argc, char** argv) { return meshtrain::Main(argc, argv); }
