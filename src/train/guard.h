// guard.h — the divergence guard's rule, as plain arithmetic the trainer applies to every step's global loss
// (summed over the ranks, so every rank decides alike) and to the weights of every checkpoint before it is
// written. A step's mean loss per token is refused when
//   it is not finite, or
//   ratio = loss / max(running, ln V) exceeds --diverge-ratio (default 3; 0: only non-finite losses count),
// where `running` is an exponential average of the accepted steps' losses (weight kRunningWeight per step;
// none before the first step) and ln V the loss of a uniform guess over the V words: a step is refused when it
// is R times worse than both the recent steps and knowing nothing. (The floor keeps a model that has learnt its
// text nearly by heart, running loss near 0, from tripping on an ordinary window.) The gradient norm is refused
// when not finite.
// What the trainer then does (roll back, or stop) is --on-diverge, in trainer.cc. Not the trainer.
#pragma once
#include <cstdint>
#include <string>

#include "core/names.h"

namespace manylm {

enum class OnDiverge { Rollback, Stop };
inline constexpr Named<OnDiverge> kOnDivergeNames[] = {{OnDiverge::Rollback, "rollback"}, {OnDiverge::Stop, "stop"}};
constexpr std::span<const Named<OnDiverge>> enum_names(OnDiverge) { return kOnDivergeNames; }

inline constexpr double kRunningWeight = 0.1;  // of the newest step in the running loss

// The running loss after a step of mean loss `loss` per token was accepted (`running` 0: none yet).
double running_loss_after(double running, double loss);

// Why a step of mean loss `loss` per token is refused, or "" when it is accepted; `uniform` is ln V. `ratio`
// (optional) receives loss / max(running, uniform).
std::string loss_verdict(double loss, double running, double uniform, double max_ratio, double* ratio = nullptr);

}  // namespace manylm
