// softmax.cc — see softmax.h.
#include "model/softmax.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "core/vmath.h"

namespace manylm {

namespace {

// Rows longer than this (a large tail cluster: 600,000 words is 2.4 MB, more than a core's L2) are read in
// blocks that stay in L1: the block's max, then Σ exp over the block, merged into the row's running (max, sum)
// with one exp per block — one pass over the row in memory instead of two.
constexpr int64_t kLongRow = 1 << 16, kBlock = 2048;

// logsumexp of one row.
float row_lse(const float* zr, int64_t V) {
  float m = -INFINITY, s = 0.0f;
  for (int64_t b = 0; b < V; b += (V > kLongRow ? kBlock : V)) {
    const int64_t e = V > kLongRow ? std::min(V, b + kBlock) : V;
    const float bm = max_of(zr + b, e - b);
    float bs = 0.0f;
#pragma omp simd reduction(+ : bs)
    for (int64_t j = b; j < e; ++j) bs += exp_fast(zr[j] - bm);
    const float nm = std::max(m, bm);
    s = s * exp_fast(m - nm) + bs * exp_fast(bm - nm);
    m = nm;
  }
  return m + std::log(s);
}

// One row of at most kLongRow: max, then e = exp(z − max) kept in z (one exp per element) and scaled into the
// gradient. Returns the row's loss.
double short_row(float* zr, int64_t V, int32_t y, float grad_scale, float* logp) {
  const float m = max_of(zr, V);
  float s = 0.0f;
  const float target = zr[y];
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < V; ++j) {
    const float e = exp_fast(zr[j] - m);
    zr[j] = e;
    s += e;
  }
  const float lse = m + std::log(s);
  if (logp) *logp = target - lse;
  if (grad_scale != 0.0f) {
    const float inv = grad_scale / s;
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) zr[j] *= inv;
    zr[y] -= grad_scale;
  }
  return double(lse) - double(target);
}

// A long row: its logsumexp in one blocked pass, then the gradient with exp recomputed (cheaper than another
// pass over memory); without a gradient the row is only read.
double long_row(float* zr, int64_t V, int32_t y, float grad_scale, float* logp) {
  const float target = zr[y];
  const float lse = row_lse(zr, V);
  if (logp) *logp = target - lse;
  if (grad_scale != 0.0f) {
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) zr[j] = exp_fast(zr[j] - lse) * grad_scale;
    zr[y] -= grad_scale;
  }
  return double(lse) - double(target);
}

}  // namespace

double softmax_xent(float* z, int64_t R, int64_t V, const int32_t* y, float grad_scale, float* logp) {
  // Reused across calls (no allocation per step). Worker threads must see the caller's buffer, not their
  // own thread_local one, hence the plain pointer.
  thread_local std::vector<double> scratch;
  scratch.resize(static_cast<size_t>(R));
  double* row_loss = scratch.data();
  parallel_for(R, 0, [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      row_loss[static_cast<size_t>(r)] =
          (V > kLongRow ? long_row : short_row)(z + r * V, V, y[r], grad_scale, logp ? logp + r : nullptr);
  });
  double total = 0.0;  // fixed order: deterministic for any thread count
  for (int64_t r = 0; r < R; ++r) total += row_loss[r];
  return total;
}

double softmax_logp(const float* z, int64_t R, int64_t V, const int32_t* y, float* logp) {
  thread_local std::vector<double> scratch;  // as softmax_xent: the caller's buffer, rows added in order
  scratch.resize(static_cast<size_t>(R));
  double* row_loss = scratch.data();
  parallel_for(R, 0, [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float lse = row_lse(z + r * V, V), target = z[r * V + y[r]];
      logp[r] = target - lse;
      row_loss[r] = double(lse) - double(target);
    }
  });
  double total = 0.0;
  for (int64_t r = 0; r < R; ++r) total += row_loss[r];
  return total;
}

void log_softmax_rows(float* z, int64_t R, int64_t V) {
  parallel_for(R, 0, [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* zr = z + r * V;
      const float lse = row_lse(zr, V);
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) zr[j] -= lse;
    }
  });
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
