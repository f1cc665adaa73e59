// optimizer.h — the update on the flat parameter block: global-norm gradient clipping, then SGD.
// One loop over one buffer, whatever the model. Not the schedule (schedule.h).
#pragma once
#include "core/arena.h"

namespace manylm {

// Returns the gradient's global L2 norm before clipping. clip <= 0: no clipping.
double clip_grad_norm(Arena& grads, double clip);
void sgd_update(Arena& params, const Arena& grads, double lr);

}  // namespace manylm
