// adaptive.h — the adaptive softmax output layer (Grave et al. 2017) with the semantics of PyTorch's
// nn.AdaptiveLogSoftmaxWithLoss, forward and backward side by side:
//   head:   zh = A·Whᵀ (+ bh)                        (R, C1 + n)  words [0, C1) and one logit per tail cluster
//   tail i: p = A_i·Pᵢᵀ (R_i, H/D^(i+1));  z = p·Oᵢᵀ   (R_i, |cluster i|)
//   log p(w) = log softmax(zh)[w]                      for w < C1
//            = log softmax(zh)[C1 + i] + log softmax(z)[w − C_i]   for w in cluster i
// A tail runs only on the rows A_i whose target falls in it: gathered into a block, its two products run on
// the block, the gradient scattered back. A large tail's logits (rows × up to 10⁶ words) never exist whole: its
// threads take column blocks of its output weight, and each block's logits stay in cache — forward keeps a
// running logsumexp per row, backward recomputes the block's logits, forms its gradient and applies both products.
// Block row counts are padded (zero rows) to a few sizes so GEMM plans and oneDNN primitives are made once, not per
// step. Probabilities are exact and normalized (perplexities compare with the full softmax). Not the recurrent layers
// or the full softmax (softmax.h).
#pragma once
#include <cstdint>
#include <vector>

#include "core/arena.h"
#include "core/engine.h"
#include "model/shape.h"

namespace manylm {

// The per-step routing and the tails' blocks; buffers grow to the largest step seen and are then reused.
struct AdaptiveWork {
  struct Cluster {
    std::vector<int32_t> rows, target;  // (R_i): the rows routed here, ascending; their word − C_i
    int64_t padded = 0;                 // R_i rounded up to a block size (0 when R_i = 0)
    std::vector<float> x;               // (padded, H) the gathered input; after backward, its gradient
    std::vector<float> p, dp;           // (padded, H/D^(i+1)) projection and its gradient
    std::vector<float> z;               // (padded, size) logits; after the forward pass with a scale, dz
    std::vector<float> logp;            // (R_i) log p(word | cluster)
    // A large cluster runs fused (tail_fused_*): its logits exist one column block at a time, in cache; the
    // forward keeps each row's logsumexp and target logit, the backward recomputes each block.
    bool fused = false;
    float scale = 0;             // the forward's grad_scale
    std::vector<float> lse, tz;  // (R_i)
  };
  // Per thread of the fused tails: one block of logits (padded rows × block), running max and sum, a dp part.
  struct Scratch {
    std::vector<float> z, m, s, dp;
  };
  std::vector<Scratch> scratch;
  std::vector<int32_t> head_target;  // (R) the word, or C1 + i for a word of cluster i
  std::vector<Cluster> clusters;
  std::vector<float> full;  // (V) every word's log-probability for one row (sampling)
  // Whether cluster i had rows in the last forward pass (no rows: no gradient, its weights are left alone).
  bool touched(int64_t i) const { return !clusters[static_cast<size_t>(i)].rows.empty(); }
};

// Rows are padded to these block sizes: multiples of 8 up to 256, of 64 above.
// Clusters of at least kFusedTail words run fused, in column blocks of kTailBlock words.
inline constexpr int64_t kFusedTail = 16384, kTailBlock = 1024;
int64_t adaptive_block_rows(int64_t r);

// Loss over R rows of `top` (R, H) with targets y: Σ −log p(y_r) in nats. zh (R, C1 + n) receives the head's
// logits, and with grad_scale ≠ 0 both zh and the tails' z are overwritten by the gradient of the loss times
// grad_scale (kept for adaptive_backward). If logp is non-null, logp[r] = log p(y_r).
double adaptive_forward(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix,
                        const float* top, int64_t R, const int32_t* y, float* zh, AdaptiveWork& w, float grad_scale,
                        float* logp);

// Accumulates (+=) the output layer's weight gradients into grads (tails with no rows untouched) and writes
// dtop (R, H) = dE/d top. Must follow adaptive_forward with a grad_scale on the same rows.
void adaptive_backward(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix,
                       const float* top, int64_t R, const float* dzh, AdaptiveWork& w, Arena& grads, float* dtop);

// log p(w) for every word w of the vocabulary, for one row `top` (H); zh (C1 + n) is scratch. Returns w.full.
const float* adaptive_log_probs(const Engine& e, const ModelShape& s, const Arena& params, const ParamIndex& ix,
                                const float* top, float* zh, AdaptiveWork& w);

}  // namespace manylm
