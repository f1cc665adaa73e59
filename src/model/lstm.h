// lstm.h — one LSTM layer over a window (PyTorch's gate order i, f, g, o in one fused weight matrix, so
// rnn.weight_ih_l{k} etc. load into torch.nn.LSTM), forward and backward through time side by side:
//   G[t] = X[t]·W_ihᵀ + b_ih + b_hh + h[t-1]·W_hhᵀ           (B, 4H)
//   i, f, o = σ(G_i, G_f, G_o),  g = tanh(G_g)
//   c[t] = f ⊙ c[t-1] + i ⊙ g,   h[t] = o ⊙ tanh(c[t])
// The input projection of all T steps is one GEMM; only h[t-1]·W_hhᵀ is sequential. With a PackedB
// (Engine::packed_recurrent()), the time loop runs in one parallel region: W_hh is packed once per window,
// each thread owns a static range of its panels (the per-step product) and of the hidden units (the
// gate math, in blocks of the panel width), two barriers per step forward and one backward (there a
// thread's units are its own panels' columns); otherwise every step calls gemm().
// Not a whole model (model.h) and not a reference (reference.h).
#pragma once
#include <cstdint>

#include "core/engine.h"
#include "core/packed_gemm.h"
#include "model/elman.h"

namespace manylm {

// S (T+1, B, H) hidden states and C (T+1, B, H) cell states, index 0 holds the carried state on entry.
// Gt (T, B, 4H) receives the activated gates [i f g o].
void lstm_forward(const Engine& e, int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w,
                  float* S, float* C, float* Gt, PackedB* wp = nullptr);

// dA (T, B, H): dE/dh[t] from above (overwritten). dG (T, B, 4H): scratch for dE/dG. dC (B, H): scratch
// for dE/dc carried back in time. dX (T, B, In): written.
void lstm_backward(const Engine& e, int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w,
                   const float* S, const float* C, const float* Gt, float* dA, float* dG, float* dC, ElmanGrads& g,
                   float* dX, PackedB* wp = nullptr);

}  // namespace manylm
