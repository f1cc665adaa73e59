// schedule.h — learning-rate schedules, applied at epoch ends:
//   constant;  step (Zaremba et al.): lr = lr0 / decay^max(0, epoch − decay_after);
//   newbob (after Mikolov's RNNLM): once the validation perplexity improves by a factor below the ratio
//   (RNNLM compares log-probabilities: its 1.003 is ≈ 1.015 here at perplexity 130), divide the rate
//   by `decay` every epoch; when that happens again while decaying, stop;
//   plateau (PyTorch's word_language_model example): divide the rate by `decay` after every epoch whose
//   validation loss is not below the best so far; with `patience` P, after every (P+1)-th such epoch in a row
//   (PyTorch's ReduceLROnPlateau).
// Every schedule tracks the best validation loss and its epoch (for --keep-best). A divergence rollback halves
// the rate (train/guard.h): the relative schedules keep it as it is, the step schedule as a factor 2^-rollbacks.
// The state is plain data so a checkpoint holds it exactly. Not the optimizer.
#pragma once
#include <cstdint>
#include <limits>

#include "core/names.h"

namespace manylm {

struct Config;

enum class Schedule { Constant, Step, Newbob, Plateau };
inline constexpr Named<Schedule> kScheduleNames[] = {{Schedule::Constant, "constant"},
                                                     {Schedule::Step, "step"},
                                                     {Schedule::Newbob, "newbob"},
                                                     {Schedule::Plateau, "plateau"}};
constexpr std::span<const Named<Schedule>> enum_names(Schedule) { return kScheduleNames; }

struct ScheduleState {
  double lr = 0;
  double last_valid = std::numeric_limits<double>::infinity();  // mean loss per token
  double best_valid = std::numeric_limits<double>::infinity();  // mean loss per token
  int64_t best_epoch = 0;                                       // 1-based; 0: none yet
  bool decaying = false;
  bool stop = false;
  int64_t rollbacks = 0;  // divergence rollbacks so far: each halved the rate (the step schedule keeps the factor)
};

// Called after epoch `epoch` (1-based) finished with mean validation loss `valid`; updates lr, stop and the
// best. Returns whether `valid` is a new best.
bool schedule_after_epoch(const Config& c, int64_t epoch, double valid, ScheduleState& s);

}  // namespace manylm
