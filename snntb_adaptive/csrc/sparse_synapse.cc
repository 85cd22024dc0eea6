// Event-driven synapses: a layer's input impulse computed from its nonzero
// inputs only.
//
// A spiking layer's input is mostly zeros (spikes of amplitude V_max, or
// the few values of linear pooling and burst spikes).  Instead of a dense
// convolution over every input, each nonzero input x[b, h, w, ci] adds
// x * W[kh, kw, ci, :] into every output position it reaches, vectorised
// over the output channels; samples run in parallel.  The cost is
// proportional to the number of nonzero inputs, not to the layer's size.
//
//   x:      (N, H, W, Ci)        NHWC (a Dense layer is 1 x 1 x Ci, a Conv1D
//                                1 x L x Ci)
//   kernel: (KH, KW, Ci, Co)     HWIO; with depthwise = true (KH, KW, C, 1)
//                                and Co = C: channel c reaches channel c only
//                                (average pooling as a depthwise window sum)
//   out:    (N, OH, OW, Co)      out[b, oh, ow, :] = sum over (kh, kw, ci)
//                                with h = oh * sh - pad_top + kh * dh (and
//                                the same for w) inside the input of
//                                x[b, h, w, ci] * kernel[kh, kw, ci, :]:
//                                TensorFlow's convolution (cross-correlation)
//                                with explicit padding, without the bias.
//
// Each output is summed in a fixed order (inputs in (h, w, ci) order),
// whatever the thread count, so results are reproducible; that order is not
// oneDNN's, so a sum may differ from the dense convolution's in the last
// bits (docs/performance.md counts the spikes this flips).
//
// Built with if_step.cc into one library by snntb_adaptive/kernel.py.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;

// out[0:n] += v * w[0:n]; restrict so the loop vectorises.
inline void Axpy(float* __restrict__ out, const float* __restrict__ w,
                 float v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += v * w[i];
}

class SparseConvOp : public OpKernel {
 public:
  explicit SparseConvOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::vector<int> strides, dilations, pads, out_size;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("strides", &strides));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dilations", &dilations));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pads", &pads));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("out_size", &out_size));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("depthwise", &depthwise_));
    OP_REQUIRES(ctx, strides.size() == 2 && dilations.size() == 2 &&
                         pads.size() == 2 && out_size.size() == 2,
                tensorflow::errors::InvalidArgument(
                    "strides, dilations, pads and out_size take 2 values"));
    OP_REQUIRES(ctx, strides[0] > 0 && strides[1] > 0 && dilations[0] > 0 &&
                         dilations[1] > 0 && out_size[0] > 0 &&
                         out_size[1] > 0 && pads[0] >= 0 && pads[1] >= 0,
                tensorflow::errors::InvalidArgument(
                    "strides, dilations and out_size must be positive, "
                    "pads non-negative"));
    sh_ = strides[0];
    sw_ = strides[1];
    dh_ = dilations[0];
    dw_ = dilations[1];
    pt_ = pads[0];
    pl_ = pads[1];
    oh_ = out_size[0];
    ow_ = out_size[1];
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& k = ctx->input(1);
    OP_REQUIRES(ctx, x.dims() == 4 && k.dims() == 4,
                tensorflow::errors::InvalidArgument(
                    "x must be (N, H, W, C) and kernel (KH, KW, Ci, Co)"));
    const int64_t batch = x.dim_size(0), h_in = x.dim_size(1),
                  w_in = x.dim_size(2), ci = x.dim_size(3);
    const int64_t kh = k.dim_size(0), kw = k.dim_size(1);
    OP_REQUIRES(ctx, k.dim_size(2) == ci &&
                         (!depthwise_ || k.dim_size(3) == 1),
                tensorflow::errors::InvalidArgument(
                    "kernel's input channels must match x's (and be one "
                    "per channel when depthwise)"));
    const int64_t co = depthwise_ ? ci : k.dim_size(3);
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({batch, oh_, ow_, co}), &out));
    const float* xp = x.flat<float>().data();
    const float* kp = k.flat<float>().data();
    float* op = out->flat<float>().data();
    const int64_t out_per_sample = oh_ * ow_ * co;
    const int64_t in_per_sample = h_in * w_in * ci;
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    // cost per sample: a pass over the input and the output, and the
    // additions of a few percent of the inputs (the cost model only decides
    // how finely to split; a spike reaches kh * kw * co outputs)
    const int64_t cost = in_per_sample + out_per_sample +
                         in_per_sample / 16 * kh * kw * (depthwise_ ? 1 : co);
    pool->ParallelFor(batch, cost, [&](int64_t first, int64_t last) {
      std::vector<int32_t> nz(ci);
      for (int64_t b = first; b < last; ++b) {
        float* o = op + b * out_per_sample;
        std::memset(o, 0, sizeof(float) * out_per_sample);
        const float* xb = xp + b * in_per_sample;
        for (int64_t h = 0; h < h_in; ++h) {
          for (int64_t w = 0; w < w_in; ++w) {
            const float* xv = xb + (h * w_in + w) * ci;
            int64_t n = 0;
            for (int64_t c = 0; c < ci; ++c) {
              nz[n] = static_cast<int32_t>(c);
              n += xv[c] != 0.0f;
            }
            if (n == 0) continue;
            for (int64_t i = 0; i < kh; ++i) {
              const int64_t num = h + pt_ - i * dh_;
              if (num < 0) break;       // larger i only go further out
              if (num % sh_ != 0) continue;
              const int64_t y = num / sh_;
              if (y >= oh_) continue;
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t numw = w + pl_ - j * dw_;
                if (numw < 0) break;
                if (numw % sw_ != 0) continue;
                const int64_t xo = numw / sw_;
                if (xo >= ow_) continue;
                float* orow = o + (y * ow_ + xo) * co;
                const float* krow = kp + (i * kw + j) * ci *
                                             (depthwise_ ? 1 : co);
                if (depthwise_) {
                  for (int64_t m = 0; m < n; ++m) {
                    const int32_t c = nz[m];
                    orow[c] += xv[c] * krow[c];
                  }
                } else {
                  for (int64_t m = 0; m < n; ++m) {
                    const int32_t c = nz[m];
                    Axpy(orow, krow + c * co, xv[c], co);
                  }
                }
              }
            }
          }
        }
      }
    });
  }

 private:
  int64_t sh_ = 1, sw_ = 1, dh_ = 1, dw_ = 1, pt_ = 0, pl_ = 0, oh_ = 1,
          ow_ = 1;
  bool depthwise_ = false;
};

}  // namespace

REGISTER_OP("SnntbAdaptiveSparseConv")
    .Input("x: float")
    .Input("kernel: float")
    .Output("out: float")
    .Attr("strides: list(int)")
    .Attr("dilations: list(int)")
    .Attr("pads: list(int)")
    .Attr("out_size: list(int)")
    .Attr("depthwise: bool")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      std::vector<int> out_size;
      bool depthwise = false;
      TF_RETURN_IF_ERROR(c->GetAttr("out_size", &out_size));
      TF_RETURN_IF_ERROR(c->GetAttr("depthwise", &depthwise));
      auto x = c->input(0);
      auto k = c->input(1);
      auto channels = depthwise ? c->Dim(x, 3) : c->Dim(k, 3);
      if (out_size.size() != 2) {
        return tensorflow::errors::InvalidArgument("out_size takes 2 values");
      }
      c->set_output(0, c->MakeShape({c->Dim(x, 0), out_size[0], out_size[1],
                                     channels}));
      return absl::OkStatus();
    });

REGISTER_KERNEL_BUILDER(
    Name("SnntbAdaptiveSparseConv").Device(tensorflow::DEVICE_CPU),
    SparseConvOp);
