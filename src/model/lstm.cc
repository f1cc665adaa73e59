// lstm.cc — see lstm.h.
#include "model/lstm.h"

#include <omp.h>

#include "core/engine.h"
#include "core/gemm.h"
#include "core/kernels.h"
#include "core/parallel.h"
#include "core/vmath.h"

namespace manylm {

namespace {

// Gate math of step t for lanes [0, B) and hidden units [j0, j1): g holds the pre-activations (B, 4H) on
// entry and the activated gates on exit.
inline void cell_forward(int64_t B, int64_t H, int64_t j0, int64_t j1, float* g, const float* cp, float* cn,
                         float* hn) {
  const int64_t G = 4 * H;
  for (int64_t b = 0; b < B; ++b) {
    float* gb = g + b * G;
#pragma omp simd
    for (int64_t j = j0; j < j1; ++j) {
      const float i = sigmoid_fast(gb[j]), f = sigmoid_fast(gb[H + j]), gg = tanh_fast(gb[2 * H + j]),
                  o = sigmoid_fast(gb[3 * H + j]);
      const float c = f * cp[b * H + j] + i * gg;
      gb[j] = i;
      gb[H + j] = f;
      gb[2 * H + j] = gg;
      gb[3 * H + j] = o;
      cn[b * H + j] = c;
      hn[b * H + j] = o * tanh_fast(c);
    }
  }
}

// dE/dG of step t for hidden units [j0, j1), and the cell gradient carried to t-1.
inline void cell_backward(int64_t B, int64_t H, int64_t j0, int64_t j1, const float* gt, const float* cp,
                          const float* cn, const float* dh, float* dg, float* dCarry) {
  const int64_t G = 4 * H;
  for (int64_t b = 0; b < B; ++b) {
    const float* gb = gt + b * G;
    float* db = dg + b * G;
#pragma omp simd
    for (int64_t j = j0; j < j1; ++j) {
      const float i = gb[j], f = gb[H + j], gg = gb[2 * H + j], o = gb[3 * H + j];
      const float tc = tanh_fast(cn[b * H + j]);
      const float d = dh[b * H + j];
      const float dc = d * o * (1.0f - tc * tc) + dCarry[b * H + j];
      db[j] = dc * gg * i * (1.0f - i);                 // d G_i
      db[H + j] = dc * cp[b * H + j] * f * (1.0f - f);  // d G_f
      db[2 * H + j] = dc * i * (1.0f - gg * gg);        // d G_g
      db[3 * H + j] = d * tc * o * (1.0f - o);          // d G_o
      dCarry[b * H + j] = dc * f;
    }
  }
}

}  // namespace

void lstm_forward(const Engine& e, int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w,
                  float* S, float* C, float* Gt, PackedB* wp) {
  const int64_t G = 4 * H;
  gemm(e, Trans::N, Trans::T, T * B, G, In, 1.0f, X, In, w.w_ih, In, 0.0f, Gt, G);  // (T·B, 4H)
  add_bias_rows(Gt, T * B, G, w.b_ih, w.b_hh);
  if (wp) {
    wp->pack(Trans::T, w.w_hh, H, H, G);  // W_hhᵀ: (H, 4H)
#pragma omp parallel
    {
      const auto [p0, p1, j0, j1] = team_share(*wp, H);
      for (int64_t t = 0; t < T; ++t) {
        float* g = Gt + t * B * G;
        gemm_packed(B, S + t * B * H, H, *wp, p0, p1, 1.0f, g, G);
#pragma omp barrier
        cell_forward(B, H, j0, j1, g, C + t * B * H, C + (t + 1) * B * H, S + (t + 1) * B * H);
#pragma omp barrier
      }
    }
    return;
  }
  for (int64_t t = 0; t < T; ++t) {
    float* g = Gt + t * B * G;
    gemm(e, Trans::N, Trans::T, B, G, H, 1.0f, S + t * B * H, H, w.w_hh, H, 1.0f, g, G);
    const bool par = B * H > (1 << 13);
#pragma omp parallel if (par)
    {
      const auto [j0, j1] = static_range_aligned(H, omp_get_thread_num(), omp_get_num_threads(), PackedB::kPanel);
      cell_forward(B, H, j0, j1, g, C + t * B * H, C + (t + 1) * B * H, S + (t + 1) * B * H);
    }
  }
}

void lstm_backward(const Engine& e, int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w,
                   const float* S, const float* C, const float* Gt, float* dA, float* dG, float* dC, ElmanGrads& g,
                   float* dX, PackedB* wp) {
  const int64_t G = 4 * H;
  // dE/dc carried from t+1 to t; it starts at 0 (truncated BPTT).
  float* dCarry = dC;
  for (int64_t i = 0; i < B * H; ++i) dCarry[i] = 0.0f;
  if (wp) {
    wp->pack(Trans::N, w.w_hh, H, G, H);  // W_hh: (4H, H)
#pragma omp parallel
    {
      const auto [p0, p1, j0, j1] = team_share(*wp, H);
      for (int64_t t = T - 1; t >= 0; --t) {
        float* dg = dG + t * B * G;
        // Units [j0, j1) of dh[t] are final: they are the columns of this thread's panels, which its own
        // product of step t+1 wrote; so one barrier per step.
        cell_backward(B, H, j0, j1, Gt + t * B * G, C + t * B * H, C + (t + 1) * B * H, dA + t * B * H, dg, dCarry);
#pragma omp barrier
        // dh[t-1] += dG[t] · W_hh
        if (t > 0) gemm_packed(B, dg, G, *wp, p0, p1, 1.0f, dA + (t - 1) * B * H, H);
      }
    }
  } else {
    for (int64_t t = T - 1; t >= 0; --t) {
      float* dg = dG + t * B * G;
      const bool par = B * H > (1 << 13);
#pragma omp parallel if (par)
      {
        const auto [j0, j1] = static_range_aligned(H, omp_get_thread_num(), omp_get_num_threads(), PackedB::kPanel);
        cell_backward(B, H, j0, j1, Gt + t * B * G, C + t * B * H, C + (t + 1) * B * H, dA + t * B * H, dg, dCarry);
      }
      // dh[t-1] += dG[t] · W_hh
      if (t > 0) gemm(e, Trans::N, Trans::N, B, H, G, 1.0f, dg, G, w.w_hh, H, 1.0f, dA + (t - 1) * B * H, H);
    }
  }
  recurrent_weight_grads(e, T, B, In, H, G, X, S, dG, dG, w, g, dX);
}

}  // namespace manylm
