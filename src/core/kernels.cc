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
      parallel_for(n, kParallelMin + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
        for (int64_t i = b; i < e; ++i) y[i] = sigmoid_fast(y[i]);
      });
      break;
    case Activation::Tanh:
      parallel_for(n, kParallelMin + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
        for (int64_t i = b; i < e; ++i) y[i] = tanh_fast(y[i]);
      });
      break;
    case Activation::Relu:
      parallel_for(n, kParallelMin + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
        for (int64_t i = b; i < e; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
      });
      break;
  }
}

void activation_backward(Activation a, const float* h, float* dy, int64_t n) {
  switch (a) {
    case Activation::Sigmoid:
      parallel_for(n, kParallelMin + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
        for (int64_t i = b; i < e; ++i) dy[i] *= h[i] * (1.0f - h[i]);
      });
      break;
    case Activation::Tanh:
      parallel_for(n, kParallelMin + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
        for (int64_t i = b; i < e; ++i) dy[i] *= 1.0f - h[i] * h[i];
      });
      break;
    case Activation::Relu:
      parallel_for(n, kParallelMin + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
        for (int64_t i = b; i < e; ++i) dy[i] = h[i] > 0.0f ? dy[i] : 0.0f;
      });
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

void activation_backward_cols(Activation a, const float* h, float* dy, int64_t rows, int64_t ld, int64_t j0,
                              int64_t j1) {
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
  parallel_for(rows, cols > 0 ? kParallelMin / cols + 1 : rows + 1, [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = c + r * cols;
      if (b2) {
#pragma omp simd
        for (int64_t j = 0; j < cols; ++j) row[j] += b1[j] + b2[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < cols; ++j) row[j] += b1[j];
      }
    }
  });
}

void colsum_add(float* dst, const float* src, int64_t rows, int64_t cols) {
  // Each thread owns a range of columns and sums its rows in order: deterministic and race-free.
  parallel_for(cols, rows > 0 ? kParallelMin / rows + 1 : cols + 1, [=](int64_t j0, int64_t j1) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = src + r * cols;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) dst[j] += row[j];
    }
  });
}

bool all_finite(const float* x, int64_t n) {
  const double bad = parallel_sum(n, kParallelMin + 1, [=](int64_t b, int64_t e) {
    const float* v = x;
    int64_t k = 0;
    for (int64_t i = b; i < e; ++i) k += !std::isfinite(v[i]);
    return static_cast<double>(k);
  });
  return bad == 0;
}

double sum_squares(const float* x, int64_t n) {
  // Per thread: blocks of 1024 summed in float (a vectorized loop), the block sums in double: accurate to
  // ~1e-7 relative for any length, without a double conversion per element. The threads' sums are added in
  // thread order.
  return parallel_sum(n, kParallelMin + 1, [=](int64_t b, int64_t e) {
    // A local copy, not the closure's member: GCC 12 reloads a captured pointer in every iteration of a
    // simd reduction (2.7x slower).
    const float* v = x;
    double s = 0.0;
    for (int64_t i0 = b; i0 < e; i0 += 1024) {
      const int64_t i1 = std::min<int64_t>(e, i0 + 1024);
      float f = 0.0f;
#pragma omp simd reduction(+ : f)
      for (int64_t i = i0; i < i1; ++i) f += v[i] * v[i];
      s += f;
    }
    return s;
  });
}

void scale(float* x, int64_t n, float s) {
  parallel_for(n, kParallelMin + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) x[i] *= s;
  });
}

void axpy(float* y, const float* x, int64_t n, float a) {
  parallel_for(n, kParallelMin + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) y[i] += a * x[i];
  });
}

void running_mean(float* mean, const float* x, int64_t n, int64_t count) {
  if (count <= 1) {
    std::memcpy(mean, x, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  const float w = 1.0f / static_cast<float>(count);
  parallel_for(n, kParallelMin + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) mean[i] += w * (x[i] - mean[i]);
  });
}

}  // namespace manylm
