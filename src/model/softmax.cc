// softmax.cc — see softmax.h.
#include "model/softmax.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "core/vmath.h"

namespace manylm {

double softmax_xent(float* z, int64_t R, int64_t V, const int32_t* y, float grad_scale, float* logp) {
  // Reused across calls (no allocation per step). Worker threads must see the caller's buffer, not their
  // own thread_local one, hence the plain pointer.
  thread_local std::vector<double> scratch;
  scratch.resize(static_cast<size_t>(R));
  double* row_loss = scratch.data();
  parallel_for(R, 0, [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* zr = z + r * V;
      float m = zr[0];
#pragma omp simd reduction(max : m)
      for (int64_t j = 1; j < V; ++j) m = std::max(m, zr[j]);
      // One exp per element: e = exp(z − max) is kept in z until the gradient pass scales it.
      float s = 0.0f;
      const float target = zr[y[r]];
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < V; ++j) {
        const float e = exp_fast(zr[j] - m);
        zr[j] = e;
        s += e;
      }
      const float lse = m + std::log(s);
      row_loss[static_cast<size_t>(r)] = double(lse) - double(target);
      if (logp) logp[r] = target - lse;
      if (grad_scale != 0.0f) {
        const float inv = grad_scale / s;
#pragma omp simd
        for (int64_t j = 0; j < V; ++j) zr[j] *= inv;
        zr[y[r]] -= grad_scale;
      }
    }
  });
  double total = 0.0;  // fixed order: deterministic for any thread count
  for (int64_t r = 0; r < R; ++r) total += row_loss[r];
  return total;
}

void softmax_inplace(float* z, int64_t V, float tau) {
  float m = z[0] / tau;
  for (int64_t j = 0; j < V; ++j) m = std::max(m, z[j] / tau);
  double s = 0.0;
  for (int64_t j = 0; j < V; ++j) {
    z[j] = std::exp(z[j] / tau - m);
    s += z[j];
  }
  for (int64_t j = 0; j < V; ++j) z[j] = static_cast<float>(z[j] / s);
}

}  // namespace manylm
