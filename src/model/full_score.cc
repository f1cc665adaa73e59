// full_score.cc — see full_score.h.
#include "model/full_score.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/gemm.h"
#include "core/parallel.h"
#include "core/vmath.h"

namespace manylm {

namespace {

// Words per vocabulary chunk and rows per block: a block's chunk of logits (128 × 512 floats, 256 KB), the chunk's
// weights (512 × H) and the block's rows (128 × H) stay in a core's L2 for H up to ~1,000.
constexpr int64_t kChunk = 512, kRowBlock = 128;
// A block's row count is rounded up to this (padded rows are zeros, their results dropped), so the products
// take few distinct shapes (the GEMM backends cache per shape).
constexpr int64_t kRowAlign = 16;

struct BlockScratch {
  std::vector<float> rows, z, m;
  std::vector<double> s;  // Σ exp over the chunks so far: double, so a million words lose no precision
};

// Folds one chunk of logits z (n, nv) into the rows' running max m and Σ exp s (scaled to the running max).
// GCC prefers 256-bit vectors on Intel; the exp loop here is pure arithmetic on L2-resident data, where 512 bits
// are faster (no effect without AVX-512).
#if defined(__AVX512F__)
__attribute__((target("prefer-vector-width=512")))
#endif
void fold_chunk(float* __restrict z, int64_t n, int64_t nv, const float* __restrict bias, float* m, double* s) {
  for (int64_t r = 0; r < n; ++r) {
    float* zr = z + r * nv;
#pragma omp simd
    for (int64_t j = 0; j < nv; ++j) zr[j] += bias[j];
    const float bm = max_of(zr, nv);
    float bs = 0.0f;
#pragma omp simd reduction(+ : bs)
    for (int64_t j = 0; j < nv; ++j) bs += exp_fast(zr[j] - bm);
    const float nm = std::max(m[r], bm);
    s[r] = (m[r] == -INFINITY ? 0.0 : s[r] * std::exp(double(m[r]) - nm)) + double(bs) * std::exp(double(bm) - nm);
    m[r] = nm;
  }
}

// lse[r] = logsumexp(W·top_r + bias) for rows [0, n) of top (a block). Runs its products on the calling thread
// when called from a parallel region, on the team otherwise.
void block_lse(const Engine& e, const float* top, int64_t n, int64_t H, const float* W, const float* bias, int64_t V,
               float* lse, BlockScratch& b) {
  const int64_t np = (n + kRowAlign - 1) / kRowAlign * kRowAlign;
  b.rows.assign(static_cast<size_t>(np * H), 0.0f);
  std::memcpy(b.rows.data(), top, static_cast<size_t>(n * H) * sizeof(float));
  b.z.resize(static_cast<size_t>(np * kChunk));
  b.m.assign(static_cast<size_t>(n), -INFINITY);
  b.s.assign(static_cast<size_t>(n), 0.0);
  for (int64_t v0 = 0; v0 < V; v0 += kChunk) {
    const int64_t nv = std::min(kChunk, V - v0);
    gemm(e, Trans::N, Trans::T, np, nv, H, 1.0f, b.rows.data(), H, W + v0 * H, H, 0.0f, b.z.data(), nv);
    fold_chunk(b.z.data(), n, nv, bias + v0, b.m.data(), b.s.data());
  }
  for (int64_t r = 0; r < n; ++r) lse[r] = static_cast<float>(b.m[r] + std::log(b.s[r]));
}

// The target's logit: a dot product in fp32, or with both operands rounded to bfloat16 as a bf16 engine's products
// round them (so the logit and the normalizer come from the same arithmetic).
float dot(const float* a, const float* b, int64_t n) {
  float d = 0.0f;
#pragma omp simd reduction(+ : d)
  for (int64_t k = 0; k < n; ++k) d += a[k] * b[k];
  return d;
}
float dot_bf16(const float* a, const float* b, int64_t n) {
  thread_local std::vector<uint16_t> ra, rb;  // kept across calls: no allocation per scored row
  ra.resize(static_cast<size_t>(n)), rb.resize(static_cast<size_t>(n));
  to_bf16(a, n, ra.data()), to_bf16(b, n, rb.data());
  float d = 0.0f;
  for (int64_t k = 0; k < n; ++k) d += from_bf16(ra[static_cast<size_t>(k)]) * from_bf16(rb[static_cast<size_t>(k)]);
  return d;
}

// lse (R) of the rows of top (R, H): blocks of at most kRowBlock rows, a multiple of the team's size when there
// are rows enough to share, one block per thread at a time.
void rows_lse(const Engine& e, const float* top, int64_t R, int64_t H, const float* W, const float* bias, int64_t V,
              float* lse) {
  const int64_t nt = omp_get_max_threads();
  int64_t blocks = (R + kRowBlock - 1) / kRowBlock;
  if (R >= nt * kRowAlign) blocks = (blocks + nt - 1) / nt * nt;
  const int64_t per = (R + blocks - 1) / blocks;
  blocks = (R + per - 1) / per;
  parallel_for(blocks, 2, [&](int64_t b0, int64_t b1) {
    thread_local BlockScratch scratch;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * per, n = std::min(per, R - r0);
      block_lse(e, top + r0 * H, n, H, W, bias, V, lse + r0, scratch);
    }
  });
}

}  // namespace

double full_softmax_score(const Engine& e, const float* top, int64_t R, int64_t H, const float* W, const float* bias,
                          int64_t V, const int32_t* y, float* logp, const int32_t* rep) {
  if (R == 0) return 0.0;
  // The distinct rows (all without rep), gathered; slot[r]: row r's (or its representative's) place among them.
  thread_local std::vector<int32_t> slot;  // kept across calls: no allocation (and no page faults) per batch
  thread_local std::vector<float> distinct, lse;
  slot.resize(static_cast<size_t>(R));
  int64_t U = 0;
  for (int64_t r = 0; r < R; ++r) slot[r] = rep && rep[r] != r ? slot[rep[r]] : static_cast<int32_t>(U++);
  const float* rows = top;
  if (U < R) {
    distinct.resize(static_cast<size_t>(U * H));
    for (int64_t r = 0; r < R; ++r)
      if (rep[r] == r) std::memcpy(distinct.data() + slot[r] * H, top + r * H, H * sizeof(float));
    rows = distinct.data();
  }
  lse.resize(static_cast<size_t>(U));
  rows_lse(e, rows, U, H, W, bias, V, lse.data());
  const bool bf16 = e.precision() == Precision::Bf16;
  double total = 0.0;  // rows in order: the same for any thread count
  for (int64_t r = 0; r < R; ++r) {
    const float* h = rows + int64_t{slot[r]} * H;
    const float* w = W + int64_t{y[r]} * H;
    const float target = (bf16 ? dot_bf16(h, w, H) : dot(h, w, H)) + bias[y[r]];
    logp[r] = target - lse[slot[r]];
    total += double(lse[slot[r]]) - double(target);
  }
  return total;
}

}  // namespace manylm
