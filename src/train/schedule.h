// schedule.h — learning-rate schedules, applied at epoch ends:
//   constant;  step (Zaremba et al.): lr = lr0 / decay^max(0, epoch − decay_after);
//   newbob (Mikolov's RNNLM): once the validation loss improves by less than the ratio, divide the rate
//   by `decay` every epoch; when that happens again while decaying, stop.
// The state is plain data so a checkpoint holds it exactly. Not the optimizer.
#pragma once
#include <cstdint>
#include <limits>

#include "train/config.h"

namespace manylm {

struct ScheduleState {
  double lr = 0;
  double last_valid = std::numeric_limits<double>::infinity();  // mean loss per token
  bool decaying = false;
  bool stop = false;
};

// Called after epoch `epoch` (1-based) finished with mean validation loss `valid`; updates lr and stop.
void schedule_after_epoch(const Config& c, int64_t epoch, double valid, ScheduleState& s);

}  // namespace manylm
