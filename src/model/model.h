// model.h — the whole network over one window: embedding → L recurrent layers → decoder → softmax
// cross-entropy, forward and backward. Parameters and gradients are Arenas carved from param_table();
// activations live in a Workspace, one Arena sized for (T, B) once, reused every step (no allocation in
// the time loop). Objective (Zaremba et al.): Σ over the T steps of the mean over the B lanes, so a
// learning rate of 1 and clip 5 mean what they mean in the paper. Not training logic (train/).
#pragma once
#include <cstdint>
#include <functional>

#include "core/arena.h"
#include "core/engine.h"
#include "core/packed_gemm.h"
#include "core/row_grad.h"
#include "model/adaptive.h"
#include "model/shape.h"

namespace manylm {

// Dropout of the non-recurrent connections (Zaremba et al.): site 0 after the embedding, site l+1 on the
// output of layer l (the last one before the softmax). Masks come from core/dropout.h.
struct DropoutConfig {
  float p = 0;
  bool variational = false;
  uint64_t seed = 0;
  uint64_t step = 0;             // the update number: a new mask every step
  int64_t lane0 = 0, lanes = 0;  // this worker's first lane, and lanes in all (0: B)
};

// Wall seconds per phase of a step, accumulated (+=) when a PhaseTimes is passed (bench train).
struct PhaseTimes {
  double embed = 0, recurrent_fwd = 0, output_fwd = 0, output_bwd = 0, recurrent_bwd = 0, embed_bwd = 0, update = 0;
  double update_rows = 0;  // the part of `update` that applies the embedding's rows (sparse updates)
};

// The workspace's buffers, {name, shape}, for (T, B) windows; and its bytes (masks included), for estimates.
// logit_rows: rows of the output layer's buffer (−1: T·B; scoring under the full softmax needs none: 1).
std::vector<TensorSpec> workspace_table(const ModelShape& s, int64_t T, int64_t B, bool dropout,
                                        int64_t logit_rows = -1);
int64_t workspace_bytes(const ModelShape& s, int64_t T, int64_t B, bool dropout);

class Workspace {
 public:
  Workspace(const ModelShape& s, int64_t T, int64_t B, bool dropout = false, int64_t logit_rows = -1);
  int64_t T, B;
  ParamIndex ix;  // tensor indices, computed once (no allocation in the time loop)
  // Data parallelism: the B of the objective's mean over lanes when this worker holds only some of
  // the lanes (0: the window's own B), and a hook model_backward calls, after the output layer, after
  // each recurrent layer and after the embedding, with the offset from which the gradient block is
  // final (the all-reduce launches those buckets while backward goes on). Both are set by train/.
  int64_t objective_lanes = 0;
  std::function<void(size_t)> grads_ready;
  // When set, model_backward writes the embedding's gradient here as the rows the window touched (overwriting
  // it), and grads' encoder.weight is not touched (train/ gives it no storage: optimizer.h).
  RowGrad* sparse_embedding = nullptr;
  // x0 (T,B,E) | S_l (T+1,B,H) per layer | dA (T,B,H) | dX (T,B,max(E,H)) | logits (T·B,V), adaptive: (T·B,C1+n)
  // | LSTM: C_l (T+1,B,H), G_l (T,B,4H) per layer, dG (T,B,4H), dC (B,H)
  // | GRU: G_l (T,B,3H), Gh_l (T,B,3H) per layer, dG, dGh (T,B,3H)
  // | with dropout: D_l (T,B,H) per layer, the dropped copy of layer l's output
  Arena acts;
  int x0, dA, dX, logits, dG = -1, dGh = -1, dC = -1;
  std::vector<int> S, D, C, G, Gh;
  std::vector<std::vector<uint8_t>> masks;  // per site, (T,B,E) then (T,B,H)
  PackedB packed;                           // the current layer's recurrent weight, packed for the time loop
  AdaptiveWork adaptive;                    // --output adaptive: routing and the tails' blocks
};

// Runs the window. x, y: (T, B) token ids, time-major. state (one (B,H) per layer) is read as the
// initial hidden state and receives the final one. Returns Σ loss in nats over the T·B targets.
// If `for_backward`, the logits buffer keeps dE/dlogits for model_backward. If logp is non-null it
// receives log p(y) per target, (T, B).
// `drop` (null or p = 0: none) needs a Workspace made with dropout = true. Every product runs on `e`,
// which is told that `params` is the parameter block (bf16: read from its copy; engine.h).
double model_forward(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, const int32_t* x,
                     const int32_t* y, int64_t T, int64_t B, Arena& state, bool for_backward, float* logp,
                     const DropoutConfig* drop = nullptr, PhaseTimes* times = nullptr);

// Accumulates (+=) the gradient of the objective into grads. Must follow model_forward(for_backward).
void model_backward(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, const int32_t* x,
                    int64_t T, int64_t B, Arena& grads, const DropoutConfig* drop = nullptr,
                    PhaseTimes* times = nullptr);

// Logits of the next token for lane 0 after feeding `x` (T=1, B=1 workspace); with an adaptive softmax, the
// log-probabilities (the same distribution under softmax). Used by sampling.
const float* model_step_logits(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, int32_t x,
                               Arena& state);

// Scoring (sentence scores, n-best rescoring): the window as model_forward runs it, but only the R positions `rows`
// (indices t·B + b into the (T, B) window, ascending) reach the output layer, so padded positions of lanes shorter
// than the window cost no output-layer work. y (R): their targets; logp (R) receives log p(y). Returns Σ −log p(y)
// in nats. ws may have been made for more steps or lanes than T and B. rep: null, or (R) rep[r] ≤ r, the scored
// row whose input history row r repeats (lanes that started from the same state and read the same tokens so
// far; rep[r] = r: none): the full softmax's normalizer is then computed once for them (full_score.h).
double model_score_rows(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, const int32_t* x,
                        int64_t T, int64_t B, Arena& state, const int32_t* rows, int64_t R, const int32_t* y,
                        float* logp, const int32_t* rep = nullptr);

// Lane b's state after step t (0 ≤ t ≤ T; t = 0: the state the window started from) of the last window run on ws
// with B lanes, copied into lane `to` of `out` (a state_table arena): a lane that ends inside a window.
void window_state(const ModelShape& s, const Workspace& ws, int64_t t, int64_t B, int64_t b, Arena& out, int64_t to);

// One step of B lanes (ws made for at least 1 step and B lanes): feeds x (B) and writes log p(w) for every word w
// of the vocabulary, (B, V), into out.
void model_step_log_probs(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, const int32_t* x,
                          int64_t B, Arena& state, float* out);

}  // namespace manylm
