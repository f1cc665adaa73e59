// gemm_backends.h — core/'s private view behind the GEMM seam: the backends gemm() dispatches to, and the
// Engine's caches they use. Included by src/core/*.cc only; everything above core/ goes through gemm.h
// and engine.h. Not a public API: signatures here change with the backends.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/engine.h"
#include "core/gemm.h"

namespace manylm {

struct OneDnnState;  // gemm_onednn.cc: oneDNN's engine, streams, primitive cache, bf16 scratch
struct AutoPlan;     // gemm_tune.cc: Auto's plan file and choices
struct StateDeleter {
  void operator()(OneDnnState* p) const;  // gemm_onednn.cc
  void operator()(AutoPlan* p) const;     // gemm_tune.cc
};
std::unique_ptr<OneDnnState, StateDeleter> make_onednn_state();
std::unique_ptr<AutoPlan, StateDeleter> make_auto_plan(const std::string& path);  // "": the default path

// Bf16: the parameter block and its bf16 copy (engine.h: use_constants).
struct Bf16Constants {
  const float* base = nullptr;
  size_t n = 0;
  bool fresh = false;  // the copy holds the block's current values
  std::vector<uint16_t> copy;
};

struct GemmProfileCounter {
  int64_t M = 0, N = 0, K = 0;
  int64_t calls = 0;
  double seconds = 0;
  std::string variant;
};

// The Engine's memo caches. Thread-safety, cache by cache:
//   onednn:    its primitive cache and the per-thread streams are behind its own mutex (oneDNN runs inside
//              manylm's split, one call per team thread at once);
//   plan:      read and written by Auto outside parallel regions only (inside one, Auto runs oneDNN and
//              never looks at the plan), i.e. by one thread;
//   constants, profile: by gemm() with bf16 / profiling on, which no code calls from inside a parallel
//              region (the split schedules call the backends, not the seam), i.e. by one thread.
struct Engine::State {
  std::unique_ptr<OneDnnState, StateDeleter> onednn;
  std::unique_ptr<AutoPlan, StateDeleter> plan;
  Bf16Constants constants;
  bool profiling = false;
  std::map<std::string, GemmProfileCounter> profile;
};

void gemm_onednn(OneDnnState& d, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_onednn_bf16(OneDnnState& d, Bf16Constants& k, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K,
                      float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                      int64_t ldc);
void gemm_libxsmm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_blis(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
bool blis_available(std::string* why);
// Auto (gemm_tune.cc): the engine's plan, its backends through gemm_with.
void gemm_auto(const Engine& e, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
std::string auto_plan_path(AutoPlan& p);
std::string auto_choice(AutoPlan& p, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                        int64_t ldc, float alpha, float beta);

}  // namespace manylm
