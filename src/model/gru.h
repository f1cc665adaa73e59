// gru.h — one GRU layer over a window in PyTorch's convention (gate order r, z, n; r applied to the
// hidden projection including its bias), forward and backward through time side by side:
//   Gi = X[t]·W_ihᵀ + b_ih,  Gh = h[t-1]·W_hhᵀ + b_hh                  (B, 3H) each
//   r = σ(Gi_r + Gh_r),  z = σ(Gi_z + Gh_z),  n = tanh(Gi_n + r ⊙ Gh_n)
//   h[t] = (1 − z) ⊙ n + z ⊙ h[t-1]
// The input projection of all T steps is one GEMM; only h[t-1]·W_hhᵀ is sequential. With a PackedB
// (Engine::packed_recurrent()), the time loop runs in one parallel region as the LSTM's (lstm.h).
#pragma once
#include <cstdint>

#include "model/elman.h"

namespace manylm {

// S (T+1, B, H), index 0 the carried state. Gi (T, B, 3H) receives the activated gates [r z n];
// Gh (T, B, 3H) the hidden projections (with b_hh), which backward needs.
void gru_forward(const Engine& e, int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w,
                 float* S, float* Gi, float* Gh, PackedB* wp = nullptr);

// dA (T, B, H): dE/dh[t] from above (overwritten). dGi, dGh (T, B, 3H): scratch. dX (T, B, In): written.
void gru_backward(const Engine& e, int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w,
                  const float* S, const float* Gi, const float* Gh, float* dA, float* dGi, float* dGh, ElmanGrads& g,
                  float* dX, PackedB* wp = nullptr);

}  // namespace manylm
