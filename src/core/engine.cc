// engine.cc — see engine.h.
#include "core/engine.h"

#include <algorithm>

#include "core/gemm_backends.h"

namespace manylm {

Engine::Engine(const EngineOptions& o) : opt_(o), state_(std::make_unique<State>()) {
  const Team team = start_team(o.threads, o.pin);
  threads_ = team.threads;
  pin_ = team.pin;
  precision_ = o.precision == Precision::Bf16 && bf16_supported() ? Precision::Bf16 : Precision::Fp32;
  state_->onednn = make_onednn_state();
  state_->plan = make_auto_plan(o.plan_path);
}

Engine::~Engine() = default;

void Engine::activate() const { start_team(threads_, opt_.pin); }

bool Engine::packed_recurrent() const {
  return opt_.packed_recurrent && precision_ == Precision::Fp32 && opt_.backend != GemmBackend::Reference;
}

void Engine::use_constants(const float* base, size_t n) const {
  Bf16Constants& k = state_->constants;
  if (precision_ != Precision::Bf16 || (k.base == base && k.n == n)) return;
  k.base = base;
  k.n = base ? n : 0;
  k.fresh = false;
}

void Engine::constants_changed() const { state_->constants.fresh = false; }

void Engine::profile(bool on) const {
  state_->profiling = on;
  state_->profile.clear();
}

std::vector<GemmProfileEntry> Engine::profile_entries() const {
  std::vector<GemmProfileEntry> v;
  for (const auto& [sig, p] : state_->profile) v.push_back({sig, p.M, p.N, p.K, p.calls, p.seconds, p.variant});
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
  return v;
}

std::string Engine::plan_path() const { return auto_plan_path(*state_->plan); }

std::string Engine::auto_choice(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                                int64_t ldc, float alpha, float beta) const {
  return manylm::auto_choice(*state_->plan, ta, tb, M, N, K, lda, ldb, ldc, alpha, beta);
}

}  // namespace manylm
