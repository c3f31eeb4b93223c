#include "runtime/tensor/dnnl_conv.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "runtime/base/check.h"
#include "runtime/tensor/cpu_kernels.h"
#include "runtime/tensor/dnnl_library.h"

namespace meshtrain {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr memory::data_type kF32 = memory::data_type::f32;

// NHWC. With one channel it is NCHW byte for byte; saying so lets oneDNN pick
// its kernels for a plain single-channel input (the first layer's image).
memory::desc Activations(int64_t n, int64_t c, int64_t h, int64_t w) {
  return memory::desc({n, c, h, w}, kF32, c == 1 ? Tag::nchw : Tag::nhwc);
}

// A primitive's argument: the caller's buffer in the API layout and, where the
// primitive wants another layout, its own buffer and the reorder between them.
class Operand {
 public:
  Operand() = default;
  Operand(const memory::desc& user, const memory::desc& wanted, const dnnl::engine& engine,
          bool input)
      : user_(user, engine, DNNL_MEMORY_NONE) {
    if (user == wanted) {
      internal_ = user_;
      return;
    }
    internal_ = memory(wanted, engine);
    reorder_ = input ? dnnl::reorder(user_, internal_) : dnnl::reorder(internal_, user_);
  }

  // For an input: the primitive's view of `data`.
  memory& In(const void* data, dnnl::stream& stream) {
    user_.set_data_handle(const_cast<void*>(data));
    if (reorder_) reorder_->execute(stream, user_, internal_);
    return internal_;
  }
  // For an output: where the primitive writes; Finish() moves it to `data`.
  memory& Out(void* data) {
    user_.set_data_handle(data);
    return internal_;
  }
  void Finish(dnnl::stream& stream) {
    if (reorder_) reorder_->execute(stream, internal_, user_);
  }
  bool reorders() const { return reorder_.has_value(); }

 private:
  memory user_;
  memory internal_;
  std::optional<dnnl::reorder> reorder_;
};

struct ForwardPrims {
  bool has_bias = false;
  Activation act = Activation::kNone;
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward primitive;
  Operand src, weights, bias, dst;
};

struct BackwardDataPrims {
  dnnl::convolution_backward_data::primitive_desc pd;
  dnnl::convolution_backward_data primitive;
  Operand diff_dst, weights, diff_src;
};

struct BackwardFilterPrims {
  dnnl::convolution_backward_weights::primitive_desc pd;
  dnnl::convolution_backward_weights primitive;
  Operand src, diff_dst, diff_weights, diff_bias;
  std::vector<float> unused_bias_grad;  // where the bias gradient goes when not asked for
};

// One geometry's primitives, each created on first use.
struct Entry {
  Conv2DGeometry g;
  int threads = 0;                       // oneDNN sizes its work split when a primitive is created
  memory::desc src, weights, bias, dst;  // the caller's layouts
  memory::desc src_want, dst_want;       // the primitives'
  memory::dims strides, pad_l, pad_r;
  std::optional<dnnl::convolution_forward::primitive_desc> hint;
  std::vector<ForwardPrims> forwards;
  std::optional<BackwardDataPrims> backward_data;
  std::optional<BackwardFilterPrims> backward_filter;
};

}  // namespace

struct DnnlConv2D::Impl {
  Options options;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::vector<std::unique_ptr<Entry>> entries;

  Entry& Find(const Conv2DGeometry& g) {
    const int threads = BlasThreads();
    SetDnnlThreads(threads);
    for (auto& e : entries) {
      if (e->g == g && e->threads == threads) return *e;
    }
    auto e = std::make_unique<Entry>();
    const Conv2DParams& p = g.params;
    e->g = g;
    e->threads = threads;
    e->src = Activations(p.batch, p.in_channels, p.height, p.width);
    e->dst = Activations(p.batch, p.out_channels, g.rows.out, g.cols.out);
    e->weights = memory::desc({p.out_channels, p.in_channels, p.filter_height, p.filter_width},
                              kF32, Tag::hwio);
    e->bias = memory::desc({p.out_channels}, kF32, Tag::x);
    e->src_want = e->src;
    e->dst_want = e->dst;
    if (options.layout == Layout::kBlocked) Block(*e);
    e->strides = {p.stride_height, p.stride_width};
    e->pad_l = {g.rows.pad_before, g.cols.pad_before};
    e->pad_r = {g.rows.pad_after, g.cols.pad_after};
    ChooseLayout(*e);
    entries.push_back(std::move(e));
    return *entries.back();
  }

  memory::desc AnyWeights(const Entry& e) { return memory::desc(e.weights.dims(), kF32, Tag::any); }

  static void Block(Entry& e) {
    e.src_want = memory::desc(e.src.dims(), kF32, Tag::any);
    e.dst_want = memory::desc(e.dst.dims(), kF32, Tag::any);
  }

  // Under kAuto the forward decides for the geometry: oneDNN 2.6 has no fast
  // NHWC kernel for some shapes (one input channel), and its reference kernel
  // is a hundred times slower than the reorders to its blocked layout.
  void ChooseLayout(Entry& e) {
    if (options.layout != Layout::kAuto) return;
    if (!absl::StartsWith(Hint(e).impl_info_str(), "ref")) return;
    Block(e);
    e.hint.reset();
  }

  const dnnl::convolution_forward::primitive_desc& Hint(Entry& e) {
    if (!e.hint) {
      dnnl::convolution_forward::desc d(
          dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, e.src_want,
          AnyWeights(e), e.bias, e.dst_want, e.strides, e.pad_l, e.pad_r);
      e.hint.emplace(d, engine);
    }
    return *e.hint;
  }

  ForwardPrims& GetForward(Entry& e, bool has_bias, Activation act) {
    for (ForwardPrims& f : e.forwards) {
      if (f.has_bias == has_bias && f.act == act) return f;
    }
    ForwardPrims f;
    f.has_bias = has_bias;
    f.act = act;
    const auto prop = dnnl::prop_kind::forward_training;
    const auto algo = dnnl::algorithm::convolution_direct;
    std::optional<dnnl::convolution_forward::desc> d;
    if (has_bias) {
      d.emplace(prop, algo, e.src_want, AnyWeights(e), e.bias, e.dst_want, e.strides, e.pad_l,
                e.pad_r);
    } else {
      d.emplace(prop, algo, e.src_want, AnyWeights(e), e.dst_want, e.strides, e.pad_l, e.pad_r);
    }
    dnnl::primitive_attr attr;
    if (act == Activation::kRelu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      attr.set_post_ops(ops);
    }
    f.pd = dnnl::convolution_forward::primitive_desc(*d, attr, engine);
    f.primitive = dnnl::convolution_forward(f.pd);
    f.src = Operand(e.src, f.pd.src_desc(), engine, true);
    f.weights = Operand(e.weights, f.pd.weights_desc(), engine, true);
    if (has_bias) f.bias = Operand(e.bias, f.pd.bias_desc(), engine, true);
    f.dst = Operand(e.dst, f.pd.dst_desc(), engine, false);
    e.forwards.push_back(std::move(f));
    return e.forwards.back();
  }

  BackwardDataPrims& GetBackwardData(Entry& e) {
    if (!e.backward_data) {
      BackwardDataPrims b;
      dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, e.src_want,
                                              AnyWeights(e), e.dst_want, e.strides, e.pad_l,
                                              e.pad_r);
      b.pd = dnnl::convolution_backward_data::primitive_desc(d, engine, Hint(e));
      b.primitive = dnnl::convolution_backward_data(b.pd);
      b.diff_dst = Operand(e.dst, b.pd.diff_dst_desc(), engine, true);
      b.weights = Operand(e.weights, b.pd.weights_desc(), engine, true);
      b.diff_src = Operand(e.src, b.pd.diff_src_desc(), engine, false);
      e.backward_data = std::move(b);
    }
    return *e.backward_data;
  }

  BackwardFilterPrims& GetBackwardFilter(Entry& e) {
    if (!e.backward_filter) {
      BackwardFilterPrims b;
      dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, e.src_want,
                                                 AnyWeights(e), e.bias, e.dst_want, e.strides,
                                                 e.pad_l, e.pad_r);
      b.pd = dnnl::convolution_backward_weights::primitive_desc(d, engine, Hint(e));
      b.primitive = dnnl::convolution_backward_weights(b.pd);
      b.src = Operand(e.src, b.pd.src_desc(), engine, true);
      b.diff_dst = Operand(e.dst, b.pd.diff_dst_desc(), engine, true);
      b.diff_weights = Operand(e.weights, b.pd.diff_weights_desc(), engine, false);
      b.diff_bias = Operand(e.bias, b.pd.diff_bias_desc(), engine, false);
      b.unused_bias_grad.resize(static_cast<size_t>(e.g.params.out_channels));
      e.backward_filter = std::move(b);
    }
    return *e.backward_filter;
  }
};

DnnlConv2D::DnnlConv2D(Options options) : options_(options) {}
DnnlConv2D::~DnnlConv2D() = default;

DnnlConv2D::Impl& DnnlConv2D::impl() {
  if (impl_ == nullptr) {
    // libdnnl is a dependency of the build (libdnnl-dev brings libdnnl2):
    // without it the installation is broken.
    const absl::Status& loaded = LoadDnnl();
    MESHTRAIN_CHECK(loaded.ok()) << "conv2d on the CPU: " << loaded.message();
    impl_ = std::make_unique<Impl>();
    impl_->options = options_;
  }
  return *impl_;
}

namespace {

// oneDNN reports a failure by throwing dnnl::error. For a validated geometry
// that is a bug (or a oneDNN without a kernel for it): abort saying which.
template <typename Fn>
void CallDnnl(const char* op, const Conv2DGeometry& g, Fn fn) {
  try {
    fn();
  } catch (const dnnl::error& e) {
    MESHTRAIN_CHECK(false) << "oneDNN " << op << " for input " << g.input_shape().ToString()
                           << " filter " << g.filter_shape().ToString() << ": " << e.what();
  }
}

}  // namespace

void DnnlConv2D::Forward(const Conv2DGeometry& g, const Tensor& x, const Tensor& filter,
                         const Tensor* bias, Activation act, Tensor& y) {
  if (g.params.batch == 0) return;
  CallDnnl("conv2d forward", g, [&] {
    Entry& e = impl().Find(g);
    ForwardPrims& f = impl().GetForward(e, bias != nullptr, act);
    dnnl::stream& s = impl().stream;
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, f.src.In(x.raw_data(), s)},
                                            {DNNL_ARG_WEIGHTS, f.weights.In(filter.raw_data(), s)},
                                            {DNNL_ARG_DST, f.dst.Out(y.raw_data())}};
    if (bias != nullptr) args.emplace(DNNL_ARG_BIAS, f.bias.In(bias->raw_data(), s));
    f.primitive.execute(s, args);
    f.dst.Finish(s);
    s.wait();
  });
}

void DnnlConv2D::BackwardData(const Conv2DGeometry& g, const Tensor& dy, const Tensor& filter,
                              Tensor& dx) {
  if (g.params.batch == 0) return;
  CallDnnl("conv2d backward data", g, [&] {
    Entry& e = impl().Find(g);
    BackwardDataPrims& b = impl().GetBackwardData(e);
    dnnl::stream& s = impl().stream;
    b.primitive.execute(s, {{DNNL_ARG_DIFF_DST, b.diff_dst.In(dy.raw_data(), s)},
                            {DNNL_ARG_WEIGHTS, b.weights.In(filter.raw_data(), s)},
                            {DNNL_ARG_DIFF_SRC, b.diff_src.Out(dx.raw_data())}});
    b.diff_src.Finish(s);
    s.wait();
  });
}

void DnnlConv2D::BackwardFilter(const Conv2DGeometry& g, const Tensor& x, const Tensor& dy,
                                Tensor& dfilter, Tensor* bias_grad) {
  if (g.params.batch == 0) {
    std::fill_n(dfilter.data<float>(), dfilter.num_elements(), 0.0f);
    if (bias_grad != nullptr)
      std::fill_n(bias_grad->data<float>(), bias_grad->num_elements(), 0.0f);
    return;
  }
  CallDnnl("conv2d backward filter", g, [&] {
    Entry& e = impl().Find(g);
    BackwardFilterPrims& b = impl().GetBackwardFilter(e);
    dnnl::stream& s = impl().stream;
    void* db = bias_grad != nullptr ? bias_grad->raw_data() : b.unused_bias_grad.data();
    b.primitive.execute(s, {{DNNL_ARG_SRC, b.src.In(x.raw_data(), s)},
                            {DNNL_ARG_DIFF_DST, b.diff_dst.In(dy.raw_data(), s)},
                            {DNNL_ARG_DIFF_WEIGHTS, b.diff_weights.Out(dfilter.raw_data())},
                            {DNNL_ARG_DIFF_BIAS, b.diff_bias.Out(db)}});
    b.diff_weights.Finish(s);
    b.diff_bias.Finish(s);
    s.wait();
  });
}

std::string DnnlConv2D::Describe(const Conv2DGeometry& g) {
  std::string out;
  CallDnnl("describe", g, [&] {
    Entry& e = impl().Find(g);
    ForwardPrims& f = impl().GetForward(e, true, Activation::kRelu);
    BackwardDataPrims& d = impl().GetBackwardData(e);
    BackwardFilterPrims& w = impl().GetBackwardFilter(e);
    auto reorders = [](std::initializer_list<const Operand*> ops) {
      int n = 0;
      for (const Operand* op : ops) n += op->reorders();
      return n;
    };
    out = absl::StrCat("fwd ", f.pd.impl_info_str(), " (", reorders({&f.src, &f.dst}),
                       " activation reorders), bwd_data ", d.pd.impl_info_str(), " (",
                       reorders({&d.diff_dst, &d.diff_src}), "), bwd_filter ", w.pd.impl_info_str(),
                       " (", reorders({&w.src, &w.diff_dst}), ")");
  });
  return out;
}

}  // namespace meshtrain
