// kernels.h — element-wise and reduction kernels on float rows: activations and their derivatives, bias
// broadcast, column sums, norms. Plain loops written for the compiler to vectorize; every reduction is
// deterministic (static partitions, partial sums combined in a fixed order), so results do not depend on
// thread timing. Not GEMM (gemm.h) and not model logic.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "core/names.h"

namespace manylm {

enum class Activation { Sigmoid, Tanh, Relu };
inline constexpr Named<Activation> kActivationNames[] = {
    {Activation::Sigmoid, "sigmoid"}, {Activation::Tanh, "tanh"}, {Activation::Relu, "relu"}};
constexpr std::span<const Named<Activation>> enum_names(Activation) { return kActivationNames; }
Activation parse_activation(const std::string& s);  // UserError naming --activation and the choices
const char* activation_name(Activation a);

// Scalar definitions, templated so the reference model and gradient checks share them.
template <typename T>
T activate(Activation a, T y) {
  using std::exp;
  using std::tanh;
  switch (a) {
    case Activation::Sigmoid: return T(1) / (T(1) + exp(-y));
    case Activation::Tanh: return tanh(y);
    case Activation::Relu: return y > T(0) ? y : T(0);
  }
  return y;
}
// dσ/dy written in terms of the output h = σ(y).
template <typename T>
T activate_grad_from_output(Activation a, T h) {
  switch (a) {
    case Activation::Sigmoid: return h * (T(1) - h);
    case Activation::Tanh: return T(1) - h * h;
    case Activation::Relu: return h > T(0) ? T(1) : T(0);
  }
  return T(1);
}

// y[r, :] = σ(y[r, :]) for n contiguous values.
void activation_forward(Activation a, float* y, int64_t n);
// dy[i] *= σ'(h[i]).
void activation_backward(Activation a, const float* h, float* dy, int64_t n);
// The same on columns [j0, j1) of `rows` rows with leading dimension ld, on the calling thread only (for a
// caller's own team: no parallel region inside).
void activation_forward_cols(Activation a, float* y, int64_t rows, int64_t ld, int64_t j0, int64_t j1);
void activation_backward_cols(Activation a, const float* h, float* dy, int64_t rows, int64_t ld, int64_t j0,
                              int64_t j1);
// c[r, j] += b1[j] + b2[j] for rows x cols (b2 may be null).
void add_bias_rows(float* c, int64_t rows, int64_t cols, const float* b1, const float* b2);
// dst[j] += sum_r src[r, j].
void colsum_add(float* dst, const float* src, int64_t rows, int64_t cols);
// Sum of squares in double, deterministic for a fixed thread count.
double sum_squares(const float* x, int64_t n);
// Whether every x[i] is finite (no NaN, no ±inf): checked before weights are written or used.
bool all_finite(const float* x, int64_t n);
// x *= s.
void scale(float* x, int64_t n, float s);
// y += a * x.
void axpy(float* y, const float* x, int64_t n, float a);
// The running mean of `count` samples, x the newest: mean += (x - mean) / count (count 1: mean = x).
void running_mean(float* mean, const float* x, int64_t n, int64_t count);

}  // namespace manylm
