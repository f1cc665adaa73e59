// schedule.cc — see schedule.h.
#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "train/config.h"

namespace manylm {

bool schedule_after_epoch(const Config& c, int64_t epoch, double valid, ScheduleState& s) {
  const bool best = valid < s.best_valid;
  if (c.schedule == Schedule::Step) {
    s.lr = std::ldexp(c.lr, static_cast<int>(-s.rollbacks)) /
           std::pow(c.decay, static_cast<double>(std::max<int64_t>(0, epoch + 1 - c.decay_after)));
  } else if (c.schedule == Schedule::Newbob) {
    // Improvement ratio of perplexities, exp(last − valid), as Mikolov's min_improvement.
    const bool small_gain = std::isfinite(s.last_valid) && std::exp(s.last_valid - valid) < c.newbob_ratio;
    if (small_gain) {
      if (s.decaying) s.stop = true;
      s.decaying = true;
    }
    if (s.decaying && !s.stop) s.lr /= c.decay;
  } else if (c.schedule == Schedule::Plateau) {
    // As PyTorch's ReduceLROnPlateau: after `patience` epochs without a new best, the next one without divides,
    // and the count starts again. Epochs since the best say it all, so the checkpoint needs nothing more.
    const int64_t bad = epoch - s.best_epoch;
    if (!best && bad % (c.patience + 1) == 0) s.lr /= c.decay;
  }
  s.last_valid = valid;
  if (best) s.best_valid = valid, s.best_epoch = epoch;
  return best;
}

}  // namespace manylm
