// softmax.h — full softmax over the vocabulary fused with cross-entropy:
//   loss_r = logsumexp(z_r) − z_r[y_r];   dz_r = (softmax(z_r) − onehot(y_r)) · scale
// One pass per row (two for rows longer than L2 holds) computes the loss and overwrites the logits with their
// gradient. Not the output GEMM.
#pragma once
#include <cstdint>

namespace manylm {

// z (R, V) logits. Returns Σ_r loss_r (nats, in double). If logp is non-null, logp[r] = −loss_r.
// If grad_scale != 0, z is overwritten with dz scaled by grad_scale.
double softmax_xent(float* z, int64_t R, int64_t V, const int32_t* y, float grad_scale, float* logp);

// Scoring only: logp[r] = log softmax(z_r)[y_r], z only read (one pass for the max, one for Σ exp, in cache for
// rows that fit it). Returns Σ_r −logp[r] (nats, in double).
double softmax_logp(const float* z, int64_t R, int64_t V, const int32_t* y, float* logp);

// z (R, V) logits → log-probabilities, row by row (in place; rows in parallel).
void log_softmax_rows(float* z, int64_t R, int64_t V);

// z (V) logits → probabilities at temperature tau (in place).
void softmax_inplace(float* z, int64_t V, float tau);

}  // namespace manylm
