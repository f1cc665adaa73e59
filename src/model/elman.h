// elman.h — one Elman layer over a window of T steps and B lanes, the seed's equations (1)–(2):
//   Y[t] = X[t] · W_ihᵀ + b_ih + A[t-1] · W_hhᵀ + b_hh,   A[t] = σ(Y[t])
// and its backward through time (3), side by side. The input projection of all T steps is one
// (T·B)×In·In×H GEMM; only A[t-1] · W_hhᵀ stays sequential. Weight gradients are one GEMM each over
// all T·B rows. With a PackedB (Engine::packed_recurrent()), the time loop runs in one parallel region: W_hh is
// packed once per window, each thread computes its panels of A[t-1] · W_hhᵀ and activates the same columns,
// one barrier per step (likewise backward). Not a whole model (model.h) and not a reference (reference.h).
#pragma once
#include <cstdint>

#include "core/engine.h"
#include "core/kernels.h"
#include "core/packed_gemm.h"

namespace manylm {

struct ElmanWeights {
  const float* w_ih;  // (H, In)
  const float* w_hh;  // (H, H)
  const float* b_ih;  // (H)
  const float* b_hh;  // (H)
};
struct ElmanGrads {
  float* w_ih;  // (H, In)  accumulated (+=)
  float* w_hh;  // (H, H)
  float* b_ih;  // (H)
  float* b_hh;  // (H)
};

// S (T+1, B, H): S[0] holds the carried state on entry; S[1..T] receive A[0..T-1].
void elman_forward(const Engine& e, Activation act, int64_t T, int64_t B, int64_t In, int64_t H, const float* X,
                   const ElmanWeights& w, float* S, PackedB* wp = nullptr);

// dA (T, B, H): on entry dE/dA[t] from above; on exit dE/dY[t]. dX (T, B, In): written (may be null).
// Truncated BPTT: no gradient flows into S[0].
void elman_backward(const Engine& e, Activation act, int64_t T, int64_t B, int64_t In, int64_t H, const float* X,
                    const ElmanWeights& w, const float* S, float* dA, ElmanGrads& g, float* dX, PackedB* wp = nullptr);

// The part of backward every cell shares, all T·B rows at once (G = gates·H):
//   dW_hh += dGhᵀ · S[0..T−1];  dW_ih += dGiᵀ · X;  db_ih += Σ dGi;  db_hh += Σ dGh;  dX = dGi · W_ih
// dGi, dGh (T, B, G): gradients of the input and hidden pre-activations (the same buffer for Elman and
// LSTM). dX may be null.
void recurrent_weight_grads(const Engine& e, int64_t T, int64_t B, int64_t In, int64_t H, int64_t G, const float* X,
                            const float* S, const float* dGi, const float* dGh, const ElmanWeights& w, ElmanGrads& g,
                            float* dX);

}  // namespace manylm
