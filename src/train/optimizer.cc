// optimizer.cc — see optimizer.h.
#include "train/optimizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "core/error.h"
#include "core/kernels.h"
#include "core/parallel.h"
#include "train/config.h"

namespace manylm {

double clip_factor(double norm, double clip) { return clip > 0 && norm > clip ? clip / norm : 1.0; }

bool use_sparse_updates(const Config& c) {
  const bool averaging = c.average_from > 0 || c.average_nonmono > 0;
  if (c.sparse_updates == SparseUpdates::Off) return false;
  if (c.sparse_updates == SparseUpdates::Auto)
    return !c.tied && c.optimizer == OptimizerKind::Sgd && c.weight_decay == 0 && !averaging;
  if (c.tied) fail("--sparse-updates on: not with --tied (the tied decoder's gradient covers every embedding row)");
  if (c.weight_decay != 0)
    fail("--sparse-updates on: not with --weight-decay (decay would change every row every step); use one of them");
  if (averaging)
    fail(
        "--sparse-updates on: not with --average-from/--average-nonmono (the running mean would visit every row "
        "every step); use one of them");
  return true;
}

namespace {

// The ranges of [0, n) that `sp` does not leave out: all of it, or what lies between its idle ranges.
template <class F>
void for_dense_ranges(int64_t n, const SparseGrad* sp, F&& f) {
  int64_t b = 0;
  if (sp)
    for (const auto& [ib, ie] : sp->idle) {
      if (ib > b) f(b, ib);
      b = std::max(b, ie);
    }
  if (n > b) f(b, n);
}

}  // namespace

double grad_sum_squares(const Arena& grads, const SparseGrad* sp) {
  const float* g = grads.data();
  double s = 0.0;
  for_dense_ranges(static_cast<int64_t>(grads.size()), sp,
                   [&](int64_t b, int64_t e) { s += sum_squares(g + b, e - b); });
  if (!sp || !sp->rows) return s;
  const RowGrad& rg = *sp->rows;
  const int64_t nr = rg.rows(), w = rg.width;
  // Per thread in row order, the threads' sums in thread order: the same bits every run.
  const double rs = parallel_sum(nr, w > 0 ? (1 << 15) / w + 1 : nr + 1, [&rg, w](int64_t r0, int64_t r1) {
    double part = 0.0;
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = rg.row(r);
      float f = 0.0f;
#pragma omp simd reduction(+ : f)
      for (int64_t i = 0; i < w; ++i) f += row[i] * row[i];
      part += f;
    }
    return part;
  });
  return s + rs;
}

double clip_grad_norm(Arena& grads, double clip) {
  const double norm = std::sqrt(sum_squares(grads.data(), static_cast<int64_t>(grads.size())));
  const double f = clip_factor(norm, clip);
  if (f != 1.0) scale(grads.data(), static_cast<int64_t>(grads.size()), static_cast<float>(f));
  return norm;
}

void sgd_update(Arena& params, const Arena& grads, double lr) {
  // θ ← θ − lr · g
  axpy(params.data(), grads.data(), static_cast<int64_t>(params.size()), static_cast<float>(-lr));
}

Optimizer::Optimizer(const Config& c, const std::vector<TensorSpec>& table)
    : kind_(c.optimizer),
      sparse_(use_sparse_updates(c)),
      weight_decay_(c.weight_decay),
      beta1_(c.beta1),
      beta2_(c.beta2),
      eps_(c.eps) {
  if (kind_ != OptimizerKind::Sgd) {
    m_ = Arena(prefixed_table(table, "adam.m."));
    v_ = Arena(prefixed_table(table, "adam.v."));
  }
}

std::vector<Arena*> Optimizer::state() {
  if (kind_ == OptimizerKind::Sgd) return {};
  return {&m_, &v_};
}

// n elements of the block: parameters p, gradient g (cleared), Adam's moments m, v (null for SGD).
void Optimizer::dense_range(float* p, float* g, float* m, float* v, int64_t n, float a, float gs, float c1,
                            float c2) const {
  const float wd = static_cast<float>(weight_decay_);
  if (kind_ == OptimizerKind::Sgd) {
    // θ ← θ − lr · (s·g + wd·θ);  g ← 0
    // Not parallel_for: over ptb-small's parameter block this OpenMP loop runs the update phase in 1.65 ms,
    // the same loop through parallel_for (same partition and instructions) in 2.15 ms (2 threads, GCC 12,
    // bench train; equal when timed alone). The exception is measured, not understood.
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      p[i] -= a * (gs * g[i] + wd * p[i]);
      g[i] = 0.0f;
    }
    return;
  }
  // Adam: m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  θ ← θ − lr · m̂ / (√v̂ + ε)
  const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_), eps = static_cast<float>(eps_);
  const bool decoupled = kind_ == OptimizerKind::AdamW;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float gi = gs * g[i];
    g[i] = 0.0f;
    if (!decoupled) gi += wd * p[i];
    m[i] = b1 * m[i] + (1.0f - b1) * gi;
    v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
    float u = (m[i] * c1) / (std::sqrt(v[i] * c2) + eps);
    if (decoupled) u += wd * p[i];
    p[i] -= a * u;
  }
}

// The embedding's rows (the parameter block's first tensor): SGD, or Adam on those rows' moments only.
void Optimizer::rows_update(float* p, const RowGrad& rows, float a, float gs, float c1, float c2) {
  const int64_t nr = rows.rows(), w = rows.width;
  const bool adam = kind_ != OptimizerKind::Sgd;
  float* m = adam ? m_.data() : nullptr;
  float* v = adam ? v_.data() : nullptr;
  const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_), eps = static_cast<float>(eps_);
  parallel_for(nr, w > 0 ? (1 << 15) / w + 1 : nr + 1, [&, m, v](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = int64_t{rows.ids[static_cast<size_t>(r)]} * w;
      const float* g = rows.row(r);
      float* pr = p + o;
      if (!adam) {
#pragma omp simd
        for (int64_t i = 0; i < w; ++i) pr[i] -= a * (gs * g[i]);
        continue;
      }
      float *mr = m + o, *vr = v + o;
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) {
        const float gi = gs * g[i];
        mr[i] = b1 * mr[i] + (1.0f - b1) * gi;
        vr[i] = b2 * vr[i] + (1.0f - b2) * gi * gi;
        pr[i] -= a * ((mr[i] * c1) / (std::sqrt(vr[i] * c2) + eps));
      }
    }
  });
}

void Optimizer::update(const Engine& engine, Arena& params, Arena& grads, double lr, int64_t step, double grad_scale,
                       const SparseGrad* sparse) {
  engine.constants_changed();  // bf16: the copy is remade at the next product
  if (sparse && !sparse_) throw std::logic_error("Optimizer::update: sparse gradients without sparse updates");
  // With the embedding as rows the gradient block starts after encoder.weight: element i of it is element
  // i + skip of the parameter block (and of the moments).
  const int64_t skip = static_cast<int64_t>(params.size() - grads.size());
  if (skip != 0 && !(sparse && sparse->rows))
    throw std::logic_error("Optimizer::update: the embedding's rows are missing");
  const float a = static_cast<float>(lr), gs = static_cast<float>(grad_scale);
  const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(beta1_, static_cast<double>(step))));
  const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(beta2_, static_cast<double>(step))));
  const bool adam = kind_ != OptimizerKind::Sgd;
  float* p = params.data() + skip;
  float* g = grads.data();
  float* m = adam ? m_.data() + skip : nullptr;
  float* v = adam ? v_.data() + skip : nullptr;
  for_dense_ranges(static_cast<int64_t>(grads.size()), sparse, [&](int64_t b, int64_t e) {
    dense_range(p + b, g + b, adam ? m + b : nullptr, adam ? v + b : nullptr, e - b, a, gs, c1, c2);
  });
  if (!sparse || !sparse->rows) return;
  const auto t0 = std::chrono::steady_clock::now();
  rows_update(params.data(), *sparse->rows, a, gs, c1, c2);
  rows_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace manylm
