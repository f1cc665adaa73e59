// optimizer.h — the update on the flat parameter block, one loop over one buffer whatever the model:
// global-norm gradient clipping, then SGD (weight decay as L2 in the gradient), Adam (L2 in the gradient)
// or AdamW (decoupled weight decay, Loshchilov & Hutter). Moments are Arenas carved from the parameter
// table (names prefixed "adam.m." / "adam.v."), so checkpoints hold them under their own names.
// Not the schedule (schedule.h).
#pragma once
#include <string>
#include <vector>

#include "core/arena.h"

namespace manylm {

struct Config;

// Returns the gradient's global L2 norm before clipping. clip <= 0: no clipping.
double clip_grad_norm(Arena& grads, double clip);
// The factor clipping to `clip` applies to a gradient of norm `norm` (1 when no clipping is needed).
double clip_factor(double norm, double clip);
void sgd_update(Arena& params, const Arena& grads, double lr);

class Optimizer {
 public:
  Optimizer(const Config& c, const std::vector<TensorSpec>& table);
  // One update with learning rate lr of the gradient times grad_scale (the clipping factor); `step` is
  // the 1-based update number (Adam's bias correction). The same loop leaves grads zeroed for the next
  // step, so clipping, update and zeroing cost one pass over the parameters.
  void update(Arena& params, Arena& grads, double lr, int64_t step, double grad_scale = 1.0);
  // The arenas a checkpoint must hold to resume bit-identically (empty for SGD).
  std::vector<Arena*> state();

 private:
  std::string kind_;
  double weight_decay_, beta1_, beta2_, eps_;
  Arena m_, v_;
};

}  // namespace manylm
