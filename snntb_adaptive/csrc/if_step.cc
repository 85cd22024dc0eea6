// One time step of a layer of adaptive-threshold IF neurons, in one kernel.
//
// The same arithmetic as snntb_adaptive.dynamics.layer_step (the readable
// reference, see docs/spec.md Phase 2), fused into one pass over the layer so the
// compiled simulation loop does not make five elementwise passes per layer
// and step.  Every result is bit-identical to the TensorFlow ops of
// layer_step (tests/test_kernel.py):
//
//   z         = max of `impulse` per sample (theta of shape (B,)) or over the
//               whole batch (theta a scalar); taken from input `z` instead
//               when `given_z` is true
//   new_theta = clamp : min(max(theta, z), v_max)
//               window: z where v_init < z < v_max, else theta
//               none  : theta
//   v         = mem + impulse
//   fired     = v >= new_theta
//   spikes    = fired * v_max,   new_mem = v - spikes
//   count     = number of neurons that fired, per sample (float)
//
// Equal to the TensorFlow ops for NaN-free inputs (the plugin's checks
// reject NaN weights and data) and spike counts below 2^24 per sample and
// layer (float sums stay exact).
//
// Built on first use by snntb_adaptive/kernel.py with the compiler and flags
// TensorFlow reports (tf.sysconfig).

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
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

enum Update { kClamp, kWindow, kNone };

// Elements per parallel task: large enough to amortise scheduling, small
// enough to split one sample of a large layer across threads.
constexpr int64_t kChunk = 16384;
// Rough cycles per neuron, for the thread pool's cost model (it runs small
// work in the calling thread): the fire pass reads two floats and writes two;
// a maximum reads one, kMaxPerCycle per cycle.
constexpr int64_t kFireCycles = 1;
constexpr int64_t kMaxPerCycle = 4;

// Integrate, fire and reset n neurons at threshold thr; returns how many
// fired.  kInPlace: the membrane is read from and written to new_mem (mem is
// not used), for when TensorFlow forwarded the membrane buffer.  Every
// pointer is restrict, so the loop vectorises without runtime overlap checks
// (which fail, and fall back to a branchy scalar loop, on in-place updates).
template <bool kInPlace>
int64_t FireRange(const float* __restrict__ mem,
                  const float* __restrict__ impulse,
                  float* __restrict__ spikes, float* __restrict__ new_mem,
                  int64_t n, float thr, float v_max) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = (kInPlace ? new_mem[i] : mem[i]) + impulse[i];
    const float s = v >= thr ? v_max : 0.0f;
    spikes[i] = s;
    new_mem[i] = v - s;
    k += v >= thr ? 1 : 0;
  }
  return k;
}

class IfStepOp : public OpKernel {
 public:
  explicit IfStepOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::string update;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("update", &update));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("v_init", &v_init_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("v_max", &v_max_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("given_z", &given_z_));
    if (update == "clamp") {
      update_ = kClamp;
    } else if (update == "window") {
      update_ = kWindow;
    } else if (update == "none") {
      update_ = kNone;
    } else {
      ctx->CtxFailure(absl::InvalidArgumentError(absl::StrCat(
          "update must be clamp, window or none, not ", update)));
    }
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& mem = ctx->input(0);
    const Tensor& impulse = ctx->input(1);
    const Tensor& theta = ctx->input(2);
    const Tensor& z_in = ctx->input(3);
    OP_REQUIRES(ctx, mem.shape() == impulse.shape(),
                absl::InvalidArgumentError(absl::StrCat(
                    "mem and impulse differ in shape: ",
                    mem.shape().DebugString(), " vs ",
                    impulse.shape().DebugString())));
    OP_REQUIRES(ctx, impulse.dims() >= 1,
                absl::InvalidArgumentError("impulse needs a batch axis"));
    const int64_t batch = impulse.dim_size(0);
    const int64_t per = batch > 0 ? impulse.NumElements() / batch : 0;
    const bool per_sample = theta.dims() == 1;
    OP_REQUIRES(
        ctx, per_sample ? theta.dim_size(0) == batch : theta.dims() == 0,
        absl::InvalidArgumentError("theta must be (batch,) or a scalar"));
    const int64_t nt = theta.NumElements();
    OP_REQUIRES(ctx, !given_z_ || z_in.NumElements() == nt,
                absl::InvalidArgumentError("z must have the shape of theta"));

    Tensor* spikes = nullptr;
    Tensor* new_mem = nullptr;
    Tensor* new_theta = nullptr;
    Tensor* count = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, impulse.shape(), &spikes));
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output(
                            {0}, 1, mem.shape(), &new_mem));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, theta.shape(), &new_theta));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({batch}), &count));

    const float* m = mem.flat<float>().data();
    const float* in = impulse.flat<float>().data();
    const float* th = theta.flat<float>().data();
    float* sp = spikes->flat<float>().data();
    float* nm = new_mem->flat<float>().data();
    float* nth = new_theta->flat<float>().data();
    float* cnt = count->flat<float>().data();

    const int64_t chunks = per > 0 ? (per + kChunk - 1) / kChunk : 0;
    const int64_t tasks = batch * chunks;
    const int64_t chunk = std::min(kChunk, per);
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    // Task t of the chunked passes: chunk t % chunks of sample t / chunks,
    // as (offset, length).
    auto span = [=](int64_t t) {
      const int64_t c = t % chunks;
      return std::make_pair((t / chunks) * per + c * kChunk,
                            std::min(kChunk, per - c * kChunk));
    };

    const float v_max = v_max_;
    std::vector<int64_t> fired(tasks);

    // new_mem is mem when TensorFlow forwarded the input buffer.
    const bool in_place = nm == m;
    auto fire = [=](int64_t off, int64_t n, float thr) {
      return in_place ? FireRange<true>(nullptr, in + off, sp + off,
                                        nm + off, n, thr, v_max)
                      : FireRange<false>(m + off, in + off, sp + off,
                                         nm + off, n, thr, v_max);
    };
    // The largest of n >= 1 values from off, in 64 independent lanes so the
    // compiler vectorises it over several registers, the lanes then folded
    // in halves (the order does not change a maximum).
    auto max_of = [=](int64_t off, int64_t n) {
      constexpr int kLanes = 64;
      const float* p = in + off;
      float mx = p[0];
      int64_t i = 0;
      if (n >= kLanes) {
        float lane[kLanes];
        for (int j = 0; j < kLanes; ++j) lane[j] = p[j];
        for (i = kLanes; i + kLanes <= n; i += kLanes) {
          for (int j = 0; j < kLanes; ++j) {
            lane[j] = p[i + j] > lane[j] ? p[i + j] : lane[j];
          }
        }
        for (int w = kLanes / 2; w >= 1; w /= 2) {
          for (int j = 0; j < w; ++j) {
            lane[j] = lane[j + w] > lane[j] ? lane[j + w] : lane[j];
          }
        }
        mx = lane[0];
      }
      for (; i < n; ++i) mx = p[i] > mx ? p[i] : mx;
      return mx;
    };
    // Under clamp, a threshold at V_max stays there whatever z is
    // (min(max(V_max, z), V_max) = V_max): no maximum is needed.
    auto settled = [this](float theta) {
      return update_ == kClamp && theta == v_max_;
    };
    auto rule = [this](float theta, float z) {
      if (update_ == kClamp) {
        const float up = z > theta ? z : theta;
        return up < v_max_ ? up : v_max_;
      }
      return (z > v_init_ && z < v_max_) ? z : theta;
    };

    if (update_ != kNone && per_sample && !given_z_ && per > 0) {
      // One task per sample: its maximum, its threshold, then its neurons
      // while they are still in cache.
      const int64_t cost = kFireCycles * per + per / kMaxPerCycle;
      pool->ParallelFor(batch, cost, [&](int64_t first, int64_t last) {
        for (int64_t b = first; b < last; ++b) {
          nth[b] = settled(th[b]) ? th[b]
                                  : rule(th[b], max_of(b * per, per));
          fired[b] = fire(b * per, per, nth[b]);
        }
      });
      for (int64_t b = 0; b < batch; ++b) {
        cnt[b] = static_cast<float>(fired[b]);
      }
      return;
    }

    // Threshold update first (maxima of chunks in parallel), then the
    // neurons in chunks.
    if (update_ == kNone) {
      std::copy(th, th + nt, nth);
    } else if (given_z_) {
      const float* zp = z_in.flat<float>().data();
      for (int64_t j = 0; j < nt; ++j) nth[j] = rule(th[j], zp[j]);
    } else if (tasks > 0 && !per_sample && settled(th[0])) {
      nth[0] = th[0];
    } else if (tasks > 0) {
      std::vector<float> part(tasks);
      const int64_t cost = chunk / kMaxPerCycle + 1;
      pool->ParallelFor(tasks, cost, [&](int64_t first, int64_t last) {
        for (int64_t t = first; t < last; ++t) {
          const auto [off, n] = span(t);
          part[t] = max_of(off, n);
        }
      });
      for (int64_t j = 0; j < nt; ++j) {
        const int64_t lo = per_sample ? j * chunks : 0;
        const int64_t hi = per_sample ? lo + chunks : tasks;
        float mx = part[lo];
        for (int64_t t = lo + 1; t < hi; ++t) {
          mx = part[t] > mx ? part[t] : mx;
        }
        nth[j] = rule(th[j], mx);
      }
    } else {
      std::copy(th, th + nt, nth);   // an empty layer: no maximum to take
    }
    pool->ParallelFor(tasks, kFireCycles * chunk,
                      [&](int64_t first, int64_t last) {
      for (int64_t t = first; t < last; ++t) {
        const auto [off, n] = span(t);
        fired[t] = fire(off, n, nth[per_sample ? t / chunks : 0]);
      }
    });
    for (int64_t b = 0; b < batch; ++b) {
      int64_t k = 0;
      for (int64_t c = 0; c < chunks; ++c) k += fired[b * chunks + c];
      cnt[b] = static_cast<float>(k);
    }
  }

 private:
  Update update_ = kNone;
  float v_init_ = 0.f;
  float v_max_ = 1.f;
  bool given_z_ = false;
};

}  // namespace

REGISTER_OP("SnntbAdaptiveIfStep")
    .Input("mem: float")
    .Input("impulse: float")
    .Input("theta: float")
    .Input("z: float")
    .Output("spikes: float")
    .Output("new_mem: float")
    .Output("new_theta: float")
    .Output("count: float")
    .Attr("update: string")
    .Attr("v_init: float")
    .Attr("v_max: float")
    .Attr("given_z: bool")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(1));
      c->set_output(2, c->input(2));
      c->set_output(3, c->Vector(c->Dim(c->input(1), 0)));
      return absl::OkStatus();
    });

REGISTER_KERNEL_BUILDER(
    Name("SnntbAdaptiveIfStep").Device(tensorflow::DEVICE_CPU), IfStepOp);
