// Embedding (Keras's): int64 ids [...] -> rows of a table [input_dim,
// output_dim], output [..., output_dim]. The table is a dense variable (as in
// Keras), so every strategy trains it alike; its gradient is the scatter-sum
// of d_output into a zeroed table. Ids are not differentiable: an embedding
// is the first layer of a model.
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/model/builtin_layers.h"

namespace meshtrain {
namespace {

class EmbeddingLayer final : public Layer {
 public:
  EmbeddingLayer(int64_t input_dim, int64_t output_dim, Initializer init)
      : input_dim_(input_dim), output_dim_(output_dim), init_(init) {}

  absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) override {
    if (input.dtype != DType::kInt64) {
      return builder.Error(absl::StrCat(
          "embedding takes int64 ids, got ", input.ToString(),
          ": make it the first layer and set model.input_dtype to \"int64\" for a dataset of ids "
          "(synthetic_ctr)"));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(
        table_, builder.AddVariable("embeddings", Shape{input_dim_, output_dim_}, init_));
    ExampleShape output{DType::kFloat32, input.dims};
    output.dims.push_back(output_dim_);
    return output;
  }

  int workspace_buffers() const override { return 1; }

  absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input,
                                 bool training) const override {
    const int64_t n = input.num_elements();
    const Tensor ids = input.Reshaped(Shape{n});
    // Host ids (CPU replicas) are checked here; a GPU replica's kernel reports
    // a bad id at the step's synchronisation.
    if (ids.device().is_cpu()) {
      for (int64_t id : ids.flat<int64_t>()) {
        if (id < 0 || id >= input_dim_) {
          return absl::InvalidArgumentError(
              absl::StrCat("embedding: id ", id, " is out of range for input_dim ", input_dim_,
                           "; raise input_dim above the largest id"));
        }
      }
    }
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor out, ctx.Buffer(0, DType::kFloat32, Shape{n, output_dim_}));
    ctx.kernels().GatherRows(ctx.Value(table_), ids, out);
    std::vector<int64_t> dims(input.shape().dims().begin(), input.shape().dims().end());
    dims.push_back(output_dim_);
    return out.Reshaped(Shape(absl::MakeConstSpan(dims)));
  }

  absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor& input, const Tensor& output,
                                  Tensor& d_output, bool need_d_input) const override {
    const int64_t n = input.num_elements();
    Tensor& grad = ctx.Gradient(table_);
    ctx.kernels().Fill(0.0f, grad);
    ctx.kernels().ScatterAddRows(d_output.Reshaped(Shape{n, output_dim_}), input.Reshaped(Shape{n}),
                                 grad);
    ctx.GradientReady(table_);
    return Tensor();
  }

 private:
  const int64_t input_dim_;
  const int64_t output_dim_;
  const Initializer init_;
  VariableId table_ = -1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateEmbeddingLayer(JsonReader& args) {
  int64_t input_dim = 0, output_dim = 0;
  MESHTRAIN_RETURN_IF_ERROR(args.ReadAtLeast("input_dim", 1, &input_dim));
  MESHTRAIN_RETURN_IF_ERROR(args.ReadAtLeast("output_dim", 1, &output_dim));
  Initializer init;
  MESHTRAIN_RETURN_IF_ERROR(ReadInitializer(args, "embeddings_initializer", "uniform:0.05", &init));
  return std::make_unique<EmbeddingLayer>(input_dim, output_dim, init);
}

}  // namespace meshtrain
