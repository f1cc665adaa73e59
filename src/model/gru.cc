// gru.cc — see gru.h.
#include "model/gru.h"

#include <omp.h>

#include "core/engine.h"
#include "core/gemm.h"
#include "core/kernels.h"
#include "core/parallel.h"
#include "core/vmath.h"

namespace manylm {

namespace {

// Gate math of step t for lanes [0, B) and hidden units [j0, j1): on entry gi holds the input projections
// (b_ih included) and gh h[t-1]·W_hhᵀ; b_hh is added to gh (backward needs Gh_n with it) and gi receives
// the activated gates [r z n].
inline void gate_forward(int64_t B, int64_t H, int64_t j0, int64_t j1, float* gi, float* gh, const float* b_hh,
                         const float* hp, float* hn) {
  const int64_t G = 3 * H;
  for (int64_t b = 0; b < B; ++b) {
    float* a = gi + b * G;
    float* c = gh + b * G;
#pragma omp simd
    for (int64_t j = j0; j < j1; ++j) {
      const float cr = c[j] + b_hh[j], cz = c[H + j] + b_hh[H + j], cn = c[2 * H + j] + b_hh[2 * H + j];
      const float r = sigmoid_fast(a[j] + cr), z = sigmoid_fast(a[H + j] + cz);
      const float n = tanh_fast(a[2 * H + j] + r * cn);
      c[j] = cr;
      c[H + j] = cz;
      c[2 * H + j] = cn;
      a[j] = r;
      a[H + j] = z;
      a[2 * H + j] = n;
      hn[b * H + j] = (1.0f - z) * n + z * hp[b * H + j];
    }
  }
}

// dE/dGi and dE/dGh of step t for hidden units [j0, j1), and the direct path's share of dE/dh[t-1].
inline void gate_backward(int64_t B, int64_t H, int64_t j0, int64_t j1, const float* gi, const float* gh,
                          const float* hp, const float* dh, float* di, float* dd, float* dprev) {
  const int64_t G = 3 * H;
  for (int64_t b = 0; b < B; ++b) {
    const float* a = gi + b * G;
    const float* c = gh + b * G;
#pragma omp simd
    for (int64_t j = j0; j < j1; ++j) {
      const float r = a[j], z = a[H + j], n = a[2 * H + j], d = dh[b * H + j];
      const float dn = d * (1.0f - z) * (1.0f - n * n);           // dE/d(pre-tanh of n)
      const float dz = d * (hp[b * H + j] - n) * z * (1.0f - z);  // dE/d(pre-σ of z)
      const float dr = dn * c[2 * H + j] * r * (1.0f - r);        // dE/d(pre-σ of r)
      di[b * G + j] = dr;
      di[b * G + H + j] = dz;
      di[b * G + 2 * H + j] = dn;
      dd[b * G + j] = dr;
      dd[b * G + H + j] = dz;
      dd[b * G + 2 * H + j] = dn * r;
      if (dprev) dprev[b * H + j] += d * z;  // the direct path h[t-1] → h[t]
    }
  }
}

}  // namespace

void gru_forward(const Engine& e, int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w,
                 float* S, float* Gi, float* Gh, PackedB* wp) {
  const int64_t G = 3 * H;
  gemm(e, Trans::N, Trans::T, T * B, G, In, 1.0f, X, In, w.w_ih, In, 0.0f, Gi, G);
  add_bias_rows(Gi, T * B, G, w.b_ih, nullptr);
  if (wp) {
    wp->pack(Trans::T, w.w_hh, H, H, G);  // W_hhᵀ: (H, 3H)
#pragma omp parallel
    {
      const auto [p0, p1, j0, j1] = team_share(*wp, H);
      for (int64_t t = 0; t < T; ++t) {
        float* gh = Gh + t * B * G;
        gemm_packed(B, S + t * B * H, H, *wp, p0, p1, 0.0f, gh, G);
#pragma omp barrier
        gate_forward(B, H, j0, j1, Gi + t * B * G, gh, w.b_hh, S + t * B * H, S + (t + 1) * B * H);
#pragma omp barrier
      }
    }
    return;
  }
  for (int64_t t = 0; t < T; ++t) {
    float* gh = Gh + t * B * G;
    gemm(e, Trans::N, Trans::T, B, G, H, 1.0f, S + t * B * H, H, w.w_hh, H, 0.0f, gh, G);
#pragma omp parallel if (B * H > (1 << 13))
    {
      const auto [j0, j1] = static_range_aligned(H, omp_get_thread_num(), omp_get_num_threads(), PackedB::kPanel);
      gate_forward(B, H, j0, j1, Gi + t * B * G, gh, w.b_hh, S + t * B * H, S + (t + 1) * B * H);
    }
  }
}

void gru_backward(const Engine& e, int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w,
                  const float* S, const float* Gi, const float* Gh, float* dA, float* dGi, float* dGh, ElmanGrads& g,
                  float* dX, PackedB* wp) {
  const int64_t G = 3 * H;
  auto step = [&](int64_t t, int64_t j0, int64_t j1) {
    gate_backward(B, H, j0, j1, Gi + t * B * G, Gh + t * B * G, S + t * B * H, dA + t * B * H, dGi + t * B * G,
                  dGh + t * B * G, t > 0 ? dA + (t - 1) * B * H : nullptr);
  };
  if (wp) {
    wp->pack(Trans::N, w.w_hh, H, G, H);  // W_hh: (3H, H)
#pragma omp parallel
    {
      const auto [p0, p1, j0, j1] = team_share(*wp, H);  // the columns of those panels
      for (int64_t t = T - 1; t >= 0; --t) {
        // Units [j0, j1) of dh[t] are final: this thread's own product of step t+1 wrote them.
        step(t, j0, j1);
#pragma omp barrier
        // dh[t-1] += dGh[t] · W_hh
        if (t > 0) gemm_packed(B, dGh + t * B * G, G, *wp, p0, p1, 1.0f, dA + (t - 1) * B * H, H);
      }
    }
  } else {
    for (int64_t t = T - 1; t >= 0; --t) {
#pragma omp parallel if (B * H > (1 << 13))
      {
        const auto [j0, j1] = static_range_aligned(H, omp_get_thread_num(), omp_get_num_threads(), PackedB::kPanel);
        step(t, j0, j1);
      }
      // dh[t-1] += dGh[t] · W_hh
      if (t > 0)
        gemm(e, Trans::N, Trans::N, B, H, G, 1.0f, dGh + t * B * G, G, w.w_hh, H, 1.0f, dA + (t - 1) * B * H, H);
    }
  }
  recurrent_weight_grads(e, T, B, In, H, G, X, S, dGi, dGh, w, g, dX);
}

}  // namespace manylm
