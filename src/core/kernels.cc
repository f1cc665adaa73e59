// kernels.cc — see kernels.h.
#include "core/kernels.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "core/vmath.h"

namespace manylm {

Activation parse_activation(const std::string& s) { return parse_name<Activation>(s, "--activation"); }
const char* activation_name(Activation a) { return name_of(a); }

namespace {
constexpr int64_t kParallelMin = 1 << 14;  // below this many elements one thread is faster
}

void activation_forward(Activation a, float* y, int64_t n) {
  switch (a) {
    case Activation::Sigmoid:
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_fast(y[i]);
      break;
    case Activation::Tanh:
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) y[i] = tanh_fast(y[i]);
      break;
    case Activation::Relu:
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
      break;
  }
}

void activation_backward(Activation a, const float* h, float* dy, int64_t n) {
  switch (a) {
    case Activation::Sigmoid:
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) dy[i] *= h[i] * (1.0f - h[i]);
      break;
    case Activation::Tanh:
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) dy[i] *= 1.0f - h[i] * h[i];
      break;
    case Activation::Relu:
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) dy[i] = h[i] > 0.0f ? dy[i] : 0.0f;
      break;
  }
}

void activation_forward_cols(Activation a, float* y, int64_t rows, int64_t ld, int64_t j0, int64_t j1) {
  for (int64_t r = 0; r < rows; ++r) {
    float* x = y + r * ld;
    switch (a) {
      case Activation::Sigmoid:
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) x[j] = sigmoid_fast(x[j]);
        break;
      case Activation::Tanh:
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) x[j] = tanh_fast(x[j]);
        break;
      case Activation::Relu:
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) x[j] = x[j] > 0.0f ? x[j] : 0.0f;
        break;
    }
  }
}

void activation_backward_cols(Activation a, const float* h, float* dy, int64_t rows, int64_t ld, int64_t j0, int64_t j1) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = h + r * ld;
    float* d = dy + r * ld;
    switch (a) {
      case Activation::Sigmoid:
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) d[j] *= x[j] * (1.0f - x[j]);
        break;
      case Activation::Tanh:
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) d[j] *= 1.0f - x[j] * x[j];
        break;
      case Activation::Relu:
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) d[j] = x[j] > 0.0f ? d[j] : 0.0f;
        break;
    }
  }
}

void add_bias_rows(float* c, int64_t rows, int64_t cols, const float* b1, const float* b2) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    float* row = c + r * cols;
    if (b2) {
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) row[j] += b1[j] + b2[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) row[j] += b1[j];
    }
  }
}

void colsum_add(float* dst, const float* src, int64_t rows, int64_t cols) {
  // Each thread owns a range of columns and sums its rows in order: deterministic and race-free.
#pragma omp parallel if (rows * cols > kParallelMin)
  {
    auto [j0, j1] = static_range(cols, omp_get_thread_num(), omp_get_num_threads());
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = src + r * cols;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) dst[j] += row[j];
    }
  }
}

double sum_squares(const float* x, int64_t n) {
  int nt = num_threads();
  // Reused across calls; workers write through the caller's pointer, not their own thread_local copy.
  thread_local std::vector<double> scratch;
  scratch.assign(static_cast<size_t>(nt), 0.0);
  double* part = scratch.data();
#pragma omp parallel num_threads(nt) if (n > kParallelMin)
  {
    int tid = omp_get_thread_num(), cnt = omp_get_num_threads();
    auto [b, e] = static_range(n, tid, cnt);
    // Blocks of 1024 summed in float (a vectorized loop), the block sums in double: accurate to ~1e-7
    // relative for any length, without a double conversion per element.
    double s = 0.0;
    for (int64_t i0 = b; i0 < e; i0 += 1024) {
      const int64_t i1 = std::min<int64_t>(e, i0 + 1024);
      float f = 0.0f;
#pragma omp simd reduction(+ : f)
      for (int64_t i = i0; i < i1; ++i) f += x[i] * x[i];
      s += f;
    }
    part[static_cast<size_t>(tid)] = s;
  }
  double s = 0.0;
  for (int t = 0; t < nt; ++t) s += part[t];
  return s;
}

void scale(float* x, int64_t n, float s) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void axpy(float* y, const float* x, int64_t n, float a) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void running_mean(float* mean, const float* x, int64_t n, int64_t count) {
  if (count <= 1) {
    std::memcpy(mean, x, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  const float w = 1.0f / static_cast<float>(count);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) mean[i] += w * (x[i] - mean[i]);
}

}  // namespace manylm
