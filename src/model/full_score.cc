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
  std::vector<float> rows, z, m, s, target;
};

// Folds one chunk of logits z (n, nv), words [v0, v0 + nv), into the rows' running max m and Σ exp s (scaled to
// the running max), and picks each row's target logit when it falls in the chunk.
void fold_chunk(float* __restrict z, int64_t n, int64_t nv, int64_t v0, const float* __restrict bias, const int32_t* y,
                float* m, float* s, float* target) {
  for (int64_t r = 0; r < n; ++r) {
    float* zr = z + r * nv;
#pragma omp simd
    for (int64_t j = 0; j < nv; ++j) zr[j] += bias[j];
    const float bm = max_of(zr, nv);
    float bs = 0.0f;
#pragma omp simd reduction(+ : bs)
    for (int64_t j = 0; j < nv; ++j) bs += exp_fast(zr[j] - bm);
    const float nm = std::max(m[r], bm);
    s[r] = (m[r] == -INFINITY ? 0.0f : s[r] * std::exp(m[r] - nm)) + bs * std::exp(bm - nm);
    m[r] = nm;
    if (y[r] >= v0 && y[r] < v0 + nv) target[r] = zr[y[r] - v0];
  }
}

// Rows [0, n) of top (a block): logp and each row's loss. Runs its products on the calling thread when called
// from a parallel region, on the team otherwise.
void score_block(const Engine& e, const float* top, int64_t n, int64_t H, const float* W, const float* bias, int64_t V,
                 const int32_t* y, float* logp, double* loss, BlockScratch& b) {
  const int64_t np = (n + kRowAlign - 1) / kRowAlign * kRowAlign;
  b.rows.assign(static_cast<size_t>(np * H), 0.0f);
  std::memcpy(b.rows.data(), top, static_cast<size_t>(n * H) * sizeof(float));
  b.z.resize(static_cast<size_t>(np * kChunk));
  b.m.assign(static_cast<size_t>(n), -INFINITY);
  b.s.assign(static_cast<size_t>(n), 0.0f);
  b.target.assign(static_cast<size_t>(n), 0.0f);
  for (int64_t v0 = 0; v0 < V; v0 += kChunk) {
    const int64_t nv = std::min(kChunk, V - v0);
    gemm(e, Trans::N, Trans::T, np, nv, H, 1.0f, b.rows.data(), H, W + v0 * H, H, 0.0f, b.z.data(), nv);
    fold_chunk(b.z.data(), n, nv, v0, bias + v0, y, b.m.data(), b.s.data(), b.target.data());
  }
  for (int64_t r = 0; r < n; ++r) {
    const float lse = b.m[r] + std::log(b.s[r]);
    logp[r] = b.target[r] - lse;
    loss[r] = double(lse) - double(b.target[r]);
  }
}

}  // namespace

double full_softmax_score(const Engine& e, const float* top, int64_t R, int64_t H, const float* W, const float* bias,
                          int64_t V, const int32_t* y, float* logp) {
  if (R == 0) return 0.0;
  // Blocks of at most kRowBlock rows, a multiple of the team's size when there are rows enough to share.
  const int64_t nt = omp_get_max_threads();
  int64_t blocks = (R + kRowBlock - 1) / kRowBlock;
  if (R >= nt * kRowAlign) blocks = (blocks + nt - 1) / nt * nt;
  const int64_t per = (R + blocks - 1) / blocks;
  blocks = (R + per - 1) / per;
  std::vector<double> loss(static_cast<size_t>(R));
  parallel_for(blocks, 2, [&](int64_t b0, int64_t b1) {
    thread_local BlockScratch scratch;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * per, n = std::min(per, R - r0);
      score_block(e, top + r0 * H, n, H, W, bias, V, y + r0, logp + r0, loss.data() + r0, scratch);
    }
  });
  double total = 0.0;
  for (int64_t r = 0; r < R; ++r) total += loss[static_cast<size_t>(r)];
  return total;
}

}  // namespace manylm
