// adaptive.cc — see adaptive.h.
#include "model/adaptive.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <omp.h>

#include "core/gemm.h"
#include "core/kernels.h"
#include "core/parallel.h"
#include "core/vmath.h"
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

double tail_fused_forward(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix, int64_t i,
                          AdaptiveWork& w, AdaptiveWork::Cluster& c);
void tail_fused_backward(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix, int64_t i,
                         AdaptiveWork& w, AdaptiveWork::Cluster& c, Arena& grads);

// Tail i over its gathered block: p = x·Pᵀ, z = p·Oᵀ; returns Σ −log p(word | cluster) over its rows.
double tail_forward(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix, int64_t i,
                    AdaptiveWork& w, AdaptiveWork::Cluster& c, float grad_scale, bool want_logp) {
  const int64_t H = s.hidden, h = s.tail_hidden(i), n = s.tail_size(i), Rp = c.padded;
  const int64_t R = static_cast<int64_t>(c.rows.size());
  float* p = grown(c.p, Rp * h);  // (Rp, h)
  gemm(e, Trans::N, Trans::T, Rp, h, H, 1.0f, c.x.data(), H, params[ix.tail_proj[i]].data, H, 0.0f, p, h);
  c.fused = n >= kFusedTail, c.scale = grad_scale;
  if (c.fused) {
    const double loss = tail_fused_forward(e, s, params, ix, i, w, c);
    if (want_logp)
      for (int64_t r = 0; r < R; ++r) grown(c.logp, R)[r] = c.tz[r] - c.lse[r];
    return loss;
  }
  float* z = grown(c.z, Rp * n);  // (Rp, n); rows past R stay 0: x, hence p and z, are 0 there
  gemm(e, Trans::N, Trans::T, Rp, n, h, 1.0f, p, h, params[ix.tail_out[i]].data, h, 0.0f, z, n);
  return softmax_xent(z, R, n, c.target.data(), grad_scale, want_logp ? grown(c.logp, R) : nullptr);
}

// The fused tail's per-thread scratch, sized for Rp rows (grown, never shrunk).
AdaptiveWork::Scratch& scratch_of(AdaptiveWork& w, int t, int64_t Rp, int64_t h) {
  AdaptiveWork::Scratch& sc = w.scratch[static_cast<size_t>(t)];
  grown(sc.z, Rp * kTailBlock);
  grown(sc.m, Rp);
  grown(sc.s, Rp);
  grown(sc.dp, Rp * h);
  return sc;
}

// Rows r < R of one block of logits zb (Rp, wb) covering words [b0, b0 + wb): each row's running (max, Σ exp)
// in (m, s), and the target's logit into tz where the target lies in the block.
void block_stats(const float* zb, int64_t R, int64_t wb, int64_t b0, const int32_t* target, float* m, float* s,
                 float* tz) {
  for (int64_t r = 0; r < R; ++r) {
    const float* z = zb + r * wb;
    const float bm = max_of(z, wb);
    float bs = 0.0f;
#pragma omp simd reduction(+ : bs)
    for (int64_t j = 0; j < wb; ++j) bs += exp_fast(z[j] - bm);
    const float nm = std::max(m[r], bm);
    s[r] = s[r] * exp_fast(m[r] - nm) + bs * exp_fast(bm - nm);
    m[r] = nm;
    const int64_t t = target[r] - b0;
    if (t >= 0 && t < wb) tz[r] = z[t];
  }
}

// Fused forward of tail i: each thread takes a static range of column blocks, z_block = p·O_blockᵀ in its
// scratch, folded into its rows' running (max, sum); the threads' (max, sum) merged in thread order give lse.
// Returns Σ (lse − z_target) over the rows.
double tail_fused_forward(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix, int64_t i,
                          AdaptiveWork& w, AdaptiveWork::Cluster& c) {
  const int64_t h = s.tail_hidden(i), n = s.tail_size(i), Rp = c.padded, R = static_cast<int64_t>(c.rows.size());
  const int64_t blocks = (n + kTailBlock - 1) / kTailBlock;
  const float* O = params[ix.tail_out[i]].data;  // (n, h)
  float* tz = grown(c.tz, R);
  const int nt = num_threads();
  w.scratch.resize(static_cast<size_t>(std::max(nt, 1)));
  for (int t = 0; t < nt; ++t) {
    AdaptiveWork::Scratch& sc = scratch_of(w, t, Rp, h);
    std::fill_n(sc.m.data(), R, -INFINITY);
    std::fill_n(sc.s.data(), R, 0.0f);
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    AdaptiveWork::Scratch& sc = w.scratch[static_cast<size_t>(t)];
    const auto [k0, k1] = static_range(blocks, t, omp_get_num_threads());
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t b0 = k * kTailBlock, wb = std::min(kTailBlock, n - b0);
      gemm(e, Trans::N, Trans::T, Rp, wb, h, 1.0f, c.p.data(), h, O + b0 * h, h, 0.0f, sc.z.data(), wb);
      block_stats(sc.z.data(), R, wb, b0, c.target.data(), sc.m.data(), sc.s.data(), tz);
    }
  }
  float* lse = grown(c.lse, R);
  double loss = 0;
  for (int64_t r = 0; r < R; ++r) {
    float m = -INFINITY, sum = 0.0f;
    for (const auto& sc : w.scratch) {  // thread order: the same bits every run at this thread count
      const float nm = std::max(m, sc.m[r]);
      if (nm == -INFINITY) continue;
      sum = sum * exp_fast(m - nm) + sc.s[r] * exp_fast(sc.m[r] - nm);
      m = nm;
    }
    lse[r] = m + std::log(sum);
    loss += double(lse[r]) - double(tz[r]);
  }
  return loss;
}

// Fused backward of tail i: each thread recomputes its column blocks' logits, turns them into
// dz = (softmax − onehot)·scale (rows past R: 0), adds dO_block += dzᵀ·p (its own rows of dO) and its part of
// dp = dz·O_block; the parts are added in thread order into c.dp.
void tail_fused_backward(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix, int64_t i,
                         AdaptiveWork& w, AdaptiveWork::Cluster& c, Arena& grads) {
  const int64_t h = s.tail_hidden(i), n = s.tail_size(i), Rp = c.padded, R = static_cast<int64_t>(c.rows.size());
  const int64_t blocks = (n + kTailBlock - 1) / kTailBlock;
  const float* O = params[ix.tail_out[i]].data;
  float* dO = grads[ix.tail_out[i]].data;
  const int nt = static_cast<int>(w.scratch.size());
  for (auto& sc : w.scratch) std::fill_n(sc.dp.data(), Rp * h, 0.0f);
#pragma omp parallel num_threads(nt)
  {
    AdaptiveWork::Scratch& sc = w.scratch[static_cast<size_t>(omp_get_thread_num())];
    const auto [k0, k1] = static_range(blocks, omp_get_thread_num(), omp_get_num_threads());
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t b0 = k * kTailBlock, wb = std::min(kTailBlock, n - b0);
      float* z = sc.z.data();
      gemm(e, Trans::N, Trans::T, Rp, wb, h, 1.0f, c.p.data(), h, O + b0 * h, h, 0.0f, z, wb);
      for (int64_t r = 0; r < R; ++r) {
        float* zr = z + r * wb;
        const float l = c.lse[r], sc_ = c.scale;
#pragma omp simd
        for (int64_t j = 0; j < wb; ++j) zr[j] = exp_fast(zr[j] - l) * sc_;
        const int64_t t = c.target[r] - b0;
        if (t >= 0 && t < wb) zr[t] -= sc_;
      }
      std::fill(z + R * wb, z + Rp * wb, 0.0f);
      gemm(e, Trans::T, Trans::N, wb, h, Rp, 1.0f, z, wb, c.p.data(), h, 1.0f, dO + b0 * h, h);
      gemm(e, Trans::N, Trans::N, Rp, h, wb, 1.0f, z, wb, O + b0 * h, h, 1.0f, sc.dp.data(), h);
    }
  }
  float* dp = grown(c.dp, Rp * h);
  std::fill_n(dp, Rp * h, 0.0f);
  for (const auto& sc : w.scratch)
    for (int64_t q = 0; q < Rp * h; ++q) dp[q] += sc.dp[q];
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
    loss += tail_forward(e, s, params, ix, i, w, c, grad_scale, logp != nullptr);
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
    if (c.fused) {
      tail_fused_backward(e, s, params, ix, i, w, c, grads);
      dp = c.dp.data();
    } else {
      gemm(e, Trans::T, Trans::N, n, h, Rp, 1.0f, c.z.data(), n, c.p.data(), h, 1.0f, grads[ix.tail_out[i]].data, h);
      gemm(e, Trans::N, Trans::N, Rp, h, n, 1.0f, c.z.data(), n, O, h, 0.0f, dp, h);
    }
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
  const float m = max_of(z, n);
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
