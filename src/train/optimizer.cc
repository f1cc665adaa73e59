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

namespace {

// Σ x² over one row in float, as 16 interleaved partial sums added in a fixed order: the order is the code's,
// not the vectorizer's, so a row gives the same bits wherever it lies (in the V × E table or in a RowGrad).
float row_sum_squares(const float* row, int64_t w) {
  float lane[16] = {};
  int64_t i = 0;
  for (; i + 16 <= w; i += 16) {
#pragma omp simd
    for (int k = 0; k < 16; ++k) lane[k] += row[i + k] * row[i + k];
  }
  for (int k = 0; i < w; ++i, ++k) lane[k] += row[i] * row[i];
  float s = 0.0f;
  for (float v : lane) s += v;
  return s;
}

// Σ g² of a table's gradient given as n rows, ids ascending (row k is id(k), at ptr(k), w floats): the row sums
// added in double in id order within each group of 64 ids, the groups' sums in group order. A row that is
// absent, or zero, adds exactly nothing, so the dense table (every row) and its touched rows give the same bits,
// for any thread count.
template <class Id, class Ptr>
double rows_sum_squares(int64_t n, int64_t w, Id id, Ptr ptr) {
  constexpr int64_t kGroupRows = 64;
  // The first row of each group, then n; each group's sum. The caller's, reused from step to step: the team's
  // threads reach them through these references (a thread_local named in the loop would be each thread's own).
  thread_local std::vector<int64_t> first_storage;
  thread_local std::vector<double> group_storage;
  std::vector<int64_t>& first = first_storage;
  std::vector<double>& group = group_storage;
  first.clear();
  for (int64_t k = 0; k < n; ++k)
    if (k == 0 || id(k) / kGroupRows != id(k - 1) / kGroupRows) first.push_back(k);
  first.push_back(n);
  const int64_t groups = static_cast<int64_t>(first.size()) - 1;
  group.assign(static_cast<size_t>(std::max<int64_t>(groups, 0)), 0.0);
  parallel_for(groups, w > 0 ? (1 << 15) / (kGroupRows * w) + 1 : groups + 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      double s = 0.0;
      for (int64_t k = first[static_cast<size_t>(g)]; k < first[static_cast<size_t>(g + 1)]; ++k)
        s += row_sum_squares(ptr(k), w);
      group[static_cast<size_t>(g)] = s;
    }
  });
  double s = 0.0;
  for (double v : group) s += v;
  return s;
}

bool inside_idle(int64_t b, int64_t e, const SparseGrad* sp) {
  if (sp)
    for (const auto& [ib, ie] : sp->idle)
      if (b >= ib && e <= ie) return true;
  return false;
}

}  // namespace

// Tensor by tensor in table order; the first tensor (the embedding: its V × E gradient, or its rows) by rows.
// What `sp` leaves out is zero in the dense gradient of the same step and each skipped part would add exactly
// 0, so a sparse step's norm has the dense step's bits: sparse SGD is the dense update bit for bit.
double grad_sum_squares(const Arena& grads, const SparseGrad* sp) {
  double s = 0.0;
  for (size_t k = 0; k < grads.table().size(); ++k) {
    const TensorView t = grads[k];
    const int64_t b = static_cast<int64_t>(grads.offset(k)), n = t.numel();
    if (k == 0 && t.spec->shape.size() == 2) {  // no rows with sparse updates (grad_table)
      const int64_t w = t.spec->shape[1];
      const float* d = t.data;
      s += rows_sum_squares(
          w > 0 ? n / w : 0, w, [](int64_t r) { return r; }, [d, w](int64_t r) { return d + r * w; });
    } else if (n > 0 && !inside_idle(b, b + n, sp)) {
      s += sum_squares(t.data, n);
    }
    if (k == 0 && sp && sp->rows) {
      const RowGrad& rg = *sp->rows;
      s += rows_sum_squares(
          rg.rows(), rg.width, [&rg](int64_t r) { return int64_t{rg.ids[static_cast<size_t>(r)]}; },
          [&rg](int64_t r) { return rg.row(r); });
    }
  }
  return s;
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
