// optimizer.cc — see optimizer.h.
#include "train/optimizer.h"

#include <cmath>

#include "core/kernels.h"
#include "train/config.h"

namespace manylm {

double clip_factor(double norm, double clip) { return clip > 0 && norm > clip ? clip / norm : 1.0; }

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

namespace {
std::vector<TensorSpec> prefixed(const std::vector<TensorSpec>& t, const std::string& prefix) {
  std::vector<TensorSpec> out = t;
  for (auto& s : out) s.name = prefix + s.name;
  return out;
}
}  // namespace

Optimizer::Optimizer(const Config& c, const std::vector<TensorSpec>& table)
    : kind_(c.optimizer), weight_decay_(c.weight_decay), beta1_(c.beta1), beta2_(c.beta2), eps_(c.eps) {
  if (kind_ != "sgd") {
    m_ = Arena(prefixed(table, "adam.m."));
    v_ = Arena(prefixed(table, "adam.v."));
  }
}

std::vector<Arena*> Optimizer::state() {
  if (kind_ == "sgd") return {};
  return {&m_, &v_};
}

void Optimizer::update(Arena& params, Arena& grads, double lr, int64_t step, double grad_scale) {
  const int64_t n = static_cast<int64_t>(params.size());
  float* p = params.data();
  float* g = grads.data();
  const float wd = static_cast<float>(weight_decay_), gs = static_cast<float>(grad_scale);
  if (kind_ == "sgd") {
    // θ ← θ − lr · (s·g + wd·θ);  g ← 0
    const float a = static_cast<float>(lr);
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      p[i] -= a * (gs * g[i] + wd * p[i]);
      g[i] = 0.0f;
    }
    return;
  }
  // Adam: m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  θ ← θ − lr · m̂ / (√v̂ + ε)
  const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_), eps = static_cast<float>(eps_);
  const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(beta1_, static_cast<double>(step))));
  const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(beta2_, static_cast<double>(step))));
  const float a = static_cast<float>(lr);
  const bool decoupled = kind_ == "adamw";
  float* m = m_.data();
  float* v = v_.data();
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

}  // namespace manylm
