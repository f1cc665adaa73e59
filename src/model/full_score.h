// full_score.h — log p(y) under the full softmax for scoring (sentence scores, n-best rescoring), without the
// (R, V) logits: rows in blocks, each block's logits made one vocabulary chunk at a time (the chunk's weights and
// logits stay in a core's L2) and folded into each row's running (max, Σ exp) while they are in cache. The
// decoder's weights are read once per row block instead of once per few rows. Not training (softmax.h keeps the
// logits for their gradient) and not the adaptive output (adaptive.h).
#pragma once
#include <cstdint>

#include "core/engine.h"

namespace manylm {

// top (R, H) rows; W (V, H) and bias (V) the decoder; y (R) targets. logp[r] = log softmax(W·top_r + bias)[y_r].
// rep: null, or (R) rep[r] ≤ r naming the row whose hidden state row r shares (rep[r] = r: its own), as positions
// of several sequences after the same prefix do: the normalizer is computed once per distinct row. Returns
// Σ_r −logp[r] in nats (in double, rows added in order: the same for any thread count).
double full_softmax_score(const Engine& e, const float* top, int64_t R, int64_t H, const float* W, const float* bias,
                          int64_t V, const int32_t* y, float* logp, const int32_t* rep = nullptr);

}  // namespace manylm
