// elman.cc — see elman.h.
#include "model/elman.h"

#include "core/engine.h"
#include "core/gemm.h"

namespace manylm {

void elman_forward(const Engine& e, Activation act, int64_t T, int64_t B, int64_t In, int64_t H, const float* X,
                   const ElmanWeights& w, float* S, PackedB* wp) {
  float* Y = S + B * H;  // (T, B, H) pre-activations, then activations, in place
  // Y = X · W_ihᵀ + b_ih + b_hh for all T·B rows at once.
  gemm(e, Trans::N, Trans::T, T * B, H, In, 1.0f, X, In, w.w_ih, In, 0.0f, Y, H);
  add_bias_rows(Y, T * B, H, w.b_ih, w.b_hh);
  if (wp) {
    wp->pack(Trans::T, w.w_hh, H, H, H);  // W_hhᵀ: (H, H)
#pragma omp parallel
    {
      const auto [p0, p1, j0, j1] = team_share(*wp, H);  // the columns of those panels
      for (int64_t t = 0; t < T; ++t) {
        float* y = Y + t * B * H;
        gemm_packed(B, S + t * B * H, H, *wp, p0, p1, 1.0f, y, H);
        activation_forward_cols(act, y, B, H, j0, j1);
#pragma omp barrier
      }
    }
    return;
  }
  for (int64_t t = 0; t < T; ++t) {
    // Y[t] += A[t-1] · W_hhᵀ;  A[t] = σ(Y[t])
    gemm(e, Trans::N, Trans::T, B, H, H, 1.0f, S + t * B * H, H, w.w_hh, H, 1.0f, Y + t * B * H, H);
    activation_forward(act, Y + t * B * H, B * H);
  }
}

void elman_backward(const Engine& e, Activation act, int64_t T, int64_t B, int64_t In, int64_t H, const float* X,
                    const ElmanWeights& w, const float* S, float* dA, ElmanGrads& g, float* dX, PackedB* wp) {
  const float* A = S + B * H;  // (T, B, H)
  if (wp) {
    wp->pack(Trans::N, w.w_hh, H, H, H);  // W_hh: (H, H)
#pragma omp parallel
    {
      const auto [p0, p1, j0, j1] = team_share(*wp, H);
      for (int64_t t = T - 1; t >= 0; --t) {
        float* dYt = dA + t * B * H;
        // Columns [j0, j1) of dA[t] are final: this thread's own product of step t+1 wrote them.
        activation_backward_cols(act, A + t * B * H, dYt, B, H, j0, j1);
#pragma omp barrier
        if (t > 0) gemm_packed(B, dYt, H, *wp, p0, p1, 1.0f, dA + (t - 1) * B * H, H);
      }
    }
    recurrent_weight_grads(e, T, B, In, H, H, X, S, dA, dA, w, g, dX);
    return;
  }
  for (int64_t t = T - 1; t >= 0; --t) {
    float* dYt = dA + t * B * H;
    // dY[t] = dA[t] ⊙ σ'(A[t]);  dA[t-1] += dY[t] · W_hh
    activation_backward(act, A + t * B * H, dYt, B * H);
    if (t > 0) gemm(e, Trans::N, Trans::N, B, H, H, 1.0f, dYt, H, w.w_hh, H, 1.0f, dA + (t - 1) * B * H, H);
  }
  const float* dY = dA;  // (T, B, H)
  // dW_hh += dYᵀ · A[-1..T-2];  dW_ih += dYᵀ · X;  db += Σ_rows dY
  recurrent_weight_grads(e, T, B, In, H, H, X, S, dY, dY, w, g, dX);
}

void recurrent_weight_grads(const Engine& e, int64_t T, int64_t B, int64_t In, int64_t H, int64_t G, const float* X,
                            const float* S, const float* dGi, const float* dGh, const ElmanWeights& w, ElmanGrads& g,
                            float* dX) {
  gemm(e, Trans::T, Trans::N, G, H, T * B, 1.0f, dGh, G, S, H, 1.0f, g.w_hh, H);
  gemm(e, Trans::T, Trans::N, G, In, T * B, 1.0f, dGi, G, X, In, 1.0f, g.w_ih, In);
  colsum_add(g.b_ih, dGi, T * B, G);
  colsum_add(g.b_hh, dGh, T * B, G);
  if (dX) gemm(e, Trans::N, Trans::N, T * B, In, G, 1.0f, dGi, G, w.w_ih, In, 0.0f, dX, In);
}

}  // namespace manylm
