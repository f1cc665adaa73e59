// adaptive.cc — see adaptive.h.
#include "model/adaptive.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/gemm.h"
#include "core/kernels.h"
#include "core/parallel.h"
#include "model/softmax.h"

namespace manylm {

int64_t adaptive_block_rows(int64_t r) {
  if (r <= 0) return 0;
  const int64_t q = r <= 256 ? 8 : 64;
  return (r + q - 1) / q * q;
}

namespace {

template <class T>
T* grown(std::vector<T>& v, int64_t n) {  // at least n elements; never shrinks (no allocation once warm)
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// Each row's head target, and per cluster the rows whose word falls in it (ascending) and the word − C_i.
void route(const ModelShape& s, const int32_t* y, int64_t R, AdaptiveWork& w) {
  const int64_t C1 = s.shortlist();
  w.clusters.resize(static_cast<size_t>(s.clusters()));
  for (auto& c : w.clusters) c.rows.clear(), c.target.clear();
  w.head_target.resize(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    const int64_t word = y[r];
    if (word < C1) {
      w.head_target[static_cast<size_t>(r)] = static_cast<int32_t>(word);
      continue;
    }
    const int64_t i = std::upper_bound(s.cutoffs.begin(), s.cutoffs.end(), word) - s.cutoffs.begin() - 1;
    w.head_target[static_cast<size_t>(r)] = static_cast<int32_t>(C1 + i);
    auto& c = w.clusters[static_cast<size_t>(i)];
    c.rows.push_back(static_cast<int32_t>(r));
    c.target.push_back(static_cast<int32_t>(word - s.tail_begin(i)));
  }
}

// x (padded, H) = top[rows], the rows past R_i zero.
void gather_rows(const float* top, int64_t H, AdaptiveWork::Cluster& c) {
  const int64_t n = static_cast<int64_t>(c.rows.size());
  c.padded = adaptive_block_rows(n);
  float* x = grown(c.x, c.padded * H);
  const int32_t* rows = c.rows.data();
  parallel_for(n, (1 << 14) / H + 1, [=](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) std::memcpy(x + k * H, top + int64_t{rows[k]} * H, H * sizeof(float));
  });
  std::memset(x + n * H, 0, static_cast<size_t>((c.padded - n) * H) * sizeof(float));
}

// Tail i over its gathered block: p = x·Pᵀ, z = p·Oᵀ; returns Σ −log p(word | cluster) over its rows.
double tail_forward(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix, int64_t i,
                    AdaptiveWork::Cluster& c, float grad_scale, bool want_logp) {
  const int64_t H = s.hidden, h = s.tail_hidden(i), n = s.tail_size(i), Rp = c.padded;
  const int64_t R = static_cast<int64_t>(c.rows.size());
  float* p = grown(c.p, Rp * h);  // (Rp, h)
  float* z = grown(c.z, Rp * n);  // (Rp, n); rows past R stay 0: x, hence p and z, are 0 there
  gemm(e, Trans::N, Trans::T, Rp, h, H, 1.0f, c.x.data(), H, params[ix.tail_proj[i]].data, H, 0.0f, p, h);
  gemm(e, Trans::N, Trans::T, Rp, n, h, 1.0f, p, h, params[ix.tail_out[i]].data, h, 0.0f, z, n);
  return softmax_xent(z, R, n, c.target.data(), grad_scale, want_logp ? grown(c.logp, R) : nullptr);
}

}  // namespace

double adaptive_forward(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix,
                        const float* top, int64_t R, const int32_t* y, float* zh, AdaptiveWork& w, float grad_scale,
                        float* logp) {
  const int64_t H = s.hidden, Hs = s.head_size();
  gemm(e, Trans::N, Trans::T, R, Hs, H, 1.0f, top, H, params[ix.head_w].data, H, 0.0f, zh, Hs);  // (R, C1 + n)
  if (ix.head_b >= 0) add_bias_rows(zh, R, Hs, params[ix.head_b].data, nullptr);
  route(s, y, R, w);
  double loss = softmax_xent(zh, R, Hs, w.head_target.data(), grad_scale, logp);
  for (int64_t i = 0; i < s.clusters(); ++i) {  // in cluster order: the same sum every run
    AdaptiveWork::Cluster& c = w.clusters[static_cast<size_t>(i)];
    if (c.rows.empty()) continue;
    gather_rows(top, H, c);
    loss += tail_forward(e, s, params, ix, i, c, grad_scale, logp != nullptr);
    if (logp)
      for (size_t k = 0; k < c.rows.size(); ++k) logp[c.rows[k]] += c.logp[k];
  }
  return loss;
}

void adaptive_backward(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix,
                       const float* top, int64_t R, const float* dzh, AdaptiveWork& w, Arena& grads, float* dtop) {
  const int64_t H = s.hidden, Hs = s.head_size();
  // d head.weight += dzhᵀ · top;  d head.bias += Σ dzh;  dtop = dzh · head.weight
  gemm(e, Trans::T, Trans::N, Hs, H, R, 1.0f, dzh, Hs, top, H, 1.0f, grads[ix.head_w].data, H);
  if (ix.head_b >= 0) colsum_add(grads[ix.head_b].data, dzh, R, Hs);
  gemm(e, Trans::N, Trans::N, R, H, Hs, 1.0f, dzh, Hs, params[ix.head_w].data, H, 0.0f, dtop, H);
  for (int64_t i = 0; i < s.clusters(); ++i) {
    AdaptiveWork::Cluster& c = w.clusters[static_cast<size_t>(i)];
    if (c.rows.empty()) continue;
    const int64_t h = s.tail_hidden(i), n = s.tail_size(i), Rp = c.padded;
    const float* O = params[ix.tail_out[i]].data;   // (n, h)
    const float* P = params[ix.tail_proj[i]].data;  // (h, H)
    float* dp = grown(c.dp, Rp * h);
    // dO += dzᵀ·p;  dp = dz·O;  dP += dpᵀ·x;  dx = dp·P (into x, which is not needed after dP)
    gemm(e, Trans::T, Trans::N, n, h, Rp, 1.0f, c.z.data(), n, c.p.data(), h, 1.0f, grads[ix.tail_out[i]].data, h);
    gemm(e, Trans::N, Trans::N, Rp, h, n, 1.0f, c.z.data(), n, O, h, 0.0f, dp, h);
    gemm(e, Trans::T, Trans::N, h, H, Rp, 1.0f, dp, h, c.x.data(), H, 1.0f, grads[ix.tail_proj[i]].data, H);
    gemm(e, Trans::N, Trans::N, Rp, H, h, 1.0f, dp, h, P, H, 0.0f, c.x.data(), H);
    // dtop[rows] += dx: every row is in one cluster at most, so the rows are distinct — no conflicts.
    const int32_t* rows = c.rows.data();
    const float* dx = c.x.data();
    parallel_for(static_cast<int64_t>(c.rows.size()), (1 << 14) / H + 1, [=](int64_t b, int64_t en) {
      for (int64_t k = b; k < en; ++k) {
        float* d = dtop + int64_t{rows[k]} * H;
        const float* g = dx + k * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) d[j] += g[j];
      }
    });
  }
}

namespace {
void log_softmax_inplace(float* z, int64_t n) {
  float m = z[0];
  for (int64_t j = 1; j < n; ++j) m = std::max(m, z[j]);
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(double(z[j]) - m);
  const float lse = m + static_cast<float>(std::log(sum));
  for (int64_t j = 0; j < n; ++j) z[j] -= lse;
}
}  // namespace

const float* adaptive_log_probs(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix,
                                const float* top, float* zh, AdaptiveWork& w) {
  const int64_t H = s.hidden, Hs = s.head_size(), C1 = s.shortlist();
  gemm(e, Trans::N, Trans::T, 1, Hs, H, 1.0f, top, H, params[ix.head_w].data, H, 0.0f, zh, Hs);
  if (ix.head_b >= 0) add_bias_rows(zh, 1, Hs, params[ix.head_b].data, nullptr);
  log_softmax_inplace(zh, Hs);
  float* out = grown(w.full, s.vocab);
  std::memcpy(out, zh, static_cast<size_t>(C1) * sizeof(float));
  w.clusters.resize(static_cast<size_t>(s.clusters()));
  for (int64_t i = 0; i < s.clusters(); ++i) {
    const int64_t h = s.tail_hidden(i);
    float* p = grown(w.clusters[static_cast<size_t>(i)].p, h);
    float* z = out + s.tail_begin(i);
    gemm(e, Trans::N, Trans::T, 1, h, H, 1.0f, top, H, params[ix.tail_proj[i]].data, H, 0.0f, p, h);
    gemm(e, Trans::N, Trans::T, 1, s.tail_size(i), h, 1.0f, p, h, params[ix.tail_out[i]].data, h, 0.0f, z,
         s.tail_size(i));
    log_softmax_inplace(z, s.tail_size(i));
    for (int64_t j = 0; j < s.tail_size(i); ++j) z[j] += zh[C1 + i];
  }
  return out;
}

}  // namespace manylm
