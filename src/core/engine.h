// engine.h — what multiplies: the thread team (its size and pinning), the GEMM backend and Auto's plan, the
// precision of the products with the bf16 copy of the parameter block, and GEMM profiling. Built once from
// EngineOptions (by the CLI from the configuration, by a test, by a bench) and passed as `const Engine&` to
// everything that multiplies: the model and its cells, evaluation, the training step, the benches. No
// setting lives in a global: two engines built one after the other (a bench's rows, a test's cases) each
// run as built.
// Its caches (oneDNN's primitives and streams, Auto's plan, the bf16 copy, the profile counters) are memo
// caches, mutable behind the const reference; each says in gemm_backends.h how it stays thread-safe.
// The OpenMP team itself is the process's (one runtime): building an Engine sizes and pins it, so one
// Engine serves a process at a time; an older one must not be used after a newer one is built unless
// activate() makes it the current one again.
// Not a scheduler (parallel.h) and not a tensor library.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/gemm.h"
#include "core/parallel.h"

namespace manylm {

struct EngineOptions {
  int threads = 0;                          // <= 0: every CPU this process may use
  GemmBackend backend = GemmBackend::Blas;  // what gemm() runs
  Precision precision = Precision::Fp32;    // Bf16: with the onednn backend, on a CPU with AVX512_BF16
  std::string plan_path;                    // Auto's plan file; "": <cache dir>/gemm-plan.json
  bool pin = true;  // thread i on the i-th CPU (parallel.h: pin_plan), unless MANYLM_PIN=0 or OMP_PROC_BIND /
                    // GOMP_CPU_AFFINITY is set (the user binds)
  bool packed_recurrent = true;  // recurrent products on manylm's packed kernel (packed_gemm.h) where it
                                 // applies; false: gemm() per step (A/B measurements, tests)
};

// Per call signature: calls and seconds spent in gemm() while profiling is on (bench train --gemm-profile).
struct GemmProfileEntry {
  std::string signature;  // e.g. "NT 20x2600x650"
  int64_t M, N, K;
  int64_t calls;
  double seconds;
  std::string variant;  // what ran: a backend name, or Auto's choice
};

class Engine {
 public:
  explicit Engine(const EngineOptions& o = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Makes this engine's team the process's again (its size and pinning) after another Engine was built: for
  // a bench that alternates engines in one process. Its caches and settings were never shared.
  void activate() const;

  const EngineOptions& options() const { return opt_; }  // as asked
  int threads() const { return threads_; }
  PinState pin_state() const { return pin_; }
  GemmBackend backend() const { return opt_.backend; }
  // What runs: Fp32 when Bf16 was asked on a CPU without AVX512_BF16 (callers compare with options()).
  Precision precision() const { return precision_; }
  // Whether the recurrent layers use gemm_packed: asked for, fp32, and a backend other than Reference.
  bool packed_recurrent() const;

  // Bf16: operands inside [base, base + n) — the parameter block — are read from a bf16 copy made at the
  // first product that needs it instead of being converted at every product (a recurrent weight is used
  // 2T times per step). The model declares the block it reads (a different block makes the copy stale);
  // whatever writes the block declares the copy stale: the optimizer's update, and evaluate() on entry
  // (weights loaded or averaged into the block since). Both are no-ops in fp32. The block is known by its
  // address and size: another block allocated where a freed one was needs constants_changed() too.
  void use_constants(const float* base, size_t n) const;
  void constants_changed() const;

  // Profiling of gemm() (bench train --gemm-profile); on: clears the counters.
  void profile(bool on) const;
  std::vector<GemmProfileEntry> profile_entries() const;  // largest total time first

  // Auto: the choice for a signature is made by timing every available backend, each both with the whole
  // team inside the library and with manylm's split (the team divides C's columns, each thread runs the
  // backend alone on its slice), on the call's own operands; it is kept per machine (CPU model, thread
  // count) in the plan file and reused by later runs.
  std::string plan_path() const;
  std::string auto_choice(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc,
                          float alpha, float beta) const;  // "" when not yet tuned

  struct State;  // the caches, defined in gemm_backends.h (core/ only)
  State& state() const { return *state_; }

 private:
  EngineOptions opt_;
  int threads_ = 1;
  PinState pin_ = PinState::Off;
  Precision precision_ = Precision::Fp32;
  std::unique_ptr<State> state_;
};

}  // namespace manylm
