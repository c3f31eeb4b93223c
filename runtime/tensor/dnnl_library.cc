// Forwarding definitions of the oneDNN C functions dnnl.hpp calls for
// DnnlConv2D. A function missing here is a link error naming it: add it.
#include "runtime/tensor/dnnl_library.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>

#include "runtime/base/lazy_library.h"

namespace meshtrain {
namespace {

LazyLibrary& Dnnl() {
  static LazyLibrary* const library = [] {
    // Before libgomp loads with libdnnl; overwrite=0 keeps the user's choice.
    // The first convolution calls this, possibly beside other threads: none of
    // ours reads OMP_WAIT_POLICY.
    setenv("OMP_WAIT_POLICY", "passive", 0);
    return new LazyLibrary(
        {MESHTRAIN_DNNL_SONAME, MESHTRAIN_DNNL_DIR, "install Debian's libdnnl2"});
  }();
  return *library;
}

}  // namespace

const absl::Status& LoadDnnl() { return Dnnl().Load(); }

void SetDnnlThreads(int threads) {
  using Fn = void (*)(int);
  // dlsym through libdnnl's handle finds libgomp's, which it depends on.
  static const Fn set = reinterpret_cast<Fn>(Dnnl().Symbol("omp_set_num_threads"));
  if (set != nullptr) set(threads);
}

}  // namespace meshtrain

// The functions returning dnnl_status_t: name, (parameters), (arguments).
#define MESHTRAIN_DNNL_FUNCTIONS(X)                                                              \
  X(dnnl_convolution_backward_data_desc_init,                                                    \
    (dnnl_convolution_desc_t * conv_desc, dnnl_alg_kind_t alg_kind,                              \
     const dnnl_memory_desc_t* diff_src_desc, const dnnl_memory_desc_t* weights_desc,            \
     const dnnl_memory_desc_t* diff_dst_desc, const dnnl_dims_t strides,                         \
     const dnnl_dims_t padding_l, const dnnl_dims_t padding_r),                                  \
    (conv_desc, alg_kind, diff_src_desc, weights_desc, diff_dst_desc, strides, padding_l,        \
     padding_r))                                                                                 \
  X(dnnl_convolution_backward_weights_desc_init,                                                 \
    (dnnl_convolution_desc_t * conv_desc, dnnl_alg_kind_t alg_kind,                              \
     const dnnl_memory_desc_t* src_desc, const dnnl_memory_desc_t* diff_weights_desc,            \
     const dnnl_memory_desc_t* diff_bias_desc, const dnnl_memory_desc_t* diff_dst_desc,          \
     const dnnl_dims_t strides, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r),       \
    (conv_desc, alg_kind, src_desc, diff_weights_desc, diff_bias_desc, diff_dst_desc, strides,   \
     padding_l, padding_r))                                                                      \
  X(dnnl_convolution_forward_desc_init,                                                          \
    (dnnl_convolution_desc_t * conv_desc, dnnl_prop_kind_t prop_kind, dnnl_alg_kind_t alg_kind,  \
     const dnnl_memory_desc_t* src_desc, const dnnl_memory_desc_t* weights_desc,                 \
     const dnnl_memory_desc_t* bias_desc, const dnnl_memory_desc_t* dst_desc,                    \
     const dnnl_dims_t strides, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r),       \
    (conv_desc, prop_kind, alg_kind, src_desc, weights_desc, bias_desc, dst_desc, strides,       \
     padding_l, padding_r))                                                                      \
  X(dnnl_engine_create, (dnnl_engine_t * engine, dnnl_engine_kind_t kind, size_t index),         \
    (engine, kind, index))                                                                       \
  X(dnnl_engine_destroy, (dnnl_engine_t engine), (engine))                                       \
  X(dnnl_memory_create,                                                                          \
    (dnnl_memory_t * memory, const dnnl_memory_desc_t* memory_desc, dnnl_engine_t engine,        \
     void* handle),                                                                              \
    (memory, memory_desc, engine, handle))                                                       \
  X(dnnl_memory_desc_init_by_tag,                                                                \
    (dnnl_memory_desc_t * memory_desc, int ndims, const dnnl_dims_t dims,                        \
     dnnl_data_type_t data_type, dnnl_format_tag_t tag),                                         \
    (memory_desc, ndims, dims, data_type, tag))                                                  \
  X(dnnl_memory_destroy, (dnnl_memory_t memory), (memory))                                       \
  X(dnnl_memory_get_engine, (const_dnnl_memory_t memory, dnnl_engine_t * engine),                \
    (memory, engine))                                                                            \
  X(dnnl_memory_get_memory_desc,                                                                 \
    (const_dnnl_memory_t memory, const dnnl_memory_desc_t** memory_desc), (memory, memory_desc)) \
  X(dnnl_memory_set_data_handle_v2, (dnnl_memory_t memory, void* handle, dnnl_stream_t stream),  \
    (memory, handle, stream))                                                                    \
  X(dnnl_post_ops_append_eltwise,                                                                \
    (dnnl_post_ops_t post_ops, float scale, dnnl_alg_kind_t alg_kind, float alpha, float beta),  \
    (post_ops, scale, alg_kind, alpha, beta))                                                    \
  X(dnnl_post_ops_create, (dnnl_post_ops_t * post_ops), (post_ops))                              \
  X(dnnl_post_ops_destroy, (dnnl_post_ops_t post_ops), (post_ops))                               \
  X(dnnl_primitive_attr_create, (dnnl_primitive_attr_t * attr), (attr))                          \
  X(dnnl_primitive_attr_destroy, (dnnl_primitive_attr_t attr), (attr))                           \
  X(dnnl_primitive_attr_set_post_ops,                                                            \
    (dnnl_primitive_attr_t attr, const_dnnl_post_ops_t post_ops), (attr, post_ops))              \
  X(dnnl_primitive_create,                                                                       \
    (dnnl_primitive_t * primitive, const_dnnl_primitive_desc_t primitive_desc),                  \
    (primitive, primitive_desc))                                                                 \
  X(dnnl_primitive_desc_destroy, (dnnl_primitive_desc_t primitive_desc), (primitive_desc))       \
  X(dnnl_primitive_desc_iterator_create,                                                         \
    (dnnl_primitive_desc_iterator_t * iterator, const_dnnl_op_desc_t op_desc,                    \
     const_dnnl_primitive_attr_t attr, dnnl_engine_t engine,                                     \
     const_dnnl_primitive_desc_t hint_forward_primitive_desc),                                   \
    (iterator, op_desc, attr, engine, hint_forward_primitive_desc))                              \
  X(dnnl_primitive_desc_iterator_destroy, (dnnl_primitive_desc_iterator_t iterator), (iterator)) \
  X(dnnl_primitive_desc_query,                                                                   \
    (const_dnnl_primitive_desc_t primitive_desc, dnnl_query_t what, int index, void* result),    \
    (primitive_desc, what, index, result))                                                       \
  X(dnnl_primitive_destroy, (dnnl_primitive_t primitive), (primitive))                           \
  X(dnnl_primitive_execute,                                                                      \
    (const_dnnl_primitive_t primitive, dnnl_stream_t stream, int nargs,                          \
     const dnnl_exec_arg_t* args),                                                               \
    (primitive, stream, nargs, args))                                                            \
  X(dnnl_reorder_primitive_desc_create,                                                          \
    (dnnl_primitive_desc_t * reorder_primitive_desc, const dnnl_memory_desc_t* src_desc,         \
     dnnl_engine_t src_engine, const dnnl_memory_desc_t* dst_desc, dnnl_engine_t dst_engine,     \
     const_dnnl_primitive_attr_t attr),                                                          \
    (reorder_primitive_desc, src_desc, src_engine, dst_desc, dst_engine, attr))                  \
  X(dnnl_stream_create, (dnnl_stream_t * stream, dnnl_engine_t engine, unsigned flags),          \
    (stream, engine, flags))                                                                     \
  X(dnnl_stream_destroy, (dnnl_stream_t stream), (stream))                                       \
  X(dnnl_stream_wait, (dnnl_stream_t stream), (stream))

#define MESHTRAIN_DNNL_FORWARD(name, params, args) \
  MESHTRAIN_LAZY_FORWARD(meshtrain::Dnnl(), dnnl_runtime_error, dnnl_status_t, name, params, args)
MESHTRAIN_DNNL_FUNCTIONS(MESHTRAIN_DNNL_FORWARD)

MESHTRAIN_LAZY_FORWARD(meshtrain::Dnnl(), 0, int, dnnl_memory_desc_equal,
                       (const dnnl_memory_desc_t* lhs, const dnnl_memory_desc_t* rhs), (lhs, rhs))
MESHTRAIN_LAZY_FORWARD(meshtrain::Dnnl(), nullptr, dnnl_primitive_desc_t,
                       dnnl_primitive_desc_iterator_fetch,
                       (const_dnnl_primitive_desc_iterator_t iterator), (iterator))
MESHTRAIN_LAZY_FORWARD(meshtrain::Dnnl(), nullptr, const dnnl_memory_desc_t*,
                       dnnl_primitive_desc_query_md,
                       (const_dnnl_primitive_desc_t primitive_desc, dnnl_query_t what, int index),
                       (primitive_desc, what, index))
