// packed_gemm.h — manylm's own kernel for the recurrent products, the seed's first bottleneck: at every
// time step a skinny product C(B rows) += A(B, K) · W with the same weight W, T times per window and in
// both directions. W is packed once per window into panels of 16 columns with K contiguous (aligned, zero
// padded), and K is blocked so that a slice of a panel stays in L1 for all row tiles; the caller's persistent
// team splits the panels statically and calls gemm_packed from inside its own parallel region — no
// library call, no fork/join and no re-planning inside the time loop.
// Row-major, like gemm.h. Not a general GEMM: alpha is 1 and beta is 0 or 1.
#pragma once
#include <cstdint>
#include <memory>

#include "core/gemm.h"

namespace manylm {

class PackedB {
 public:
  static constexpr int64_t kPanel = 16;  // columns per panel
  // W = op(B): (K, N). B is stored (K, N) with ldb for Trans::N, (N, K) for Trans::T. Uses the team.
  void pack(Trans tb, const float* B, int64_t ldb, int64_t K, int64_t N);
  int64_t K() const { return K_; }
  int64_t N() const { return N_; }
  int64_t panels() const { return (N_ + kPanel - 1) / kPanel; }
  const float* panel(int64_t p) const { return data_.get() + p * K_ * kPanel; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> data_;
  int64_t cap_ = 0, K_ = 0, N_ = 0;
};

// C[:, 16·p0 .. min(N, 16·p1)) = beta·C + A · W for panels [p0, p1), on the calling thread. A is (M, K)
// with lda; C has ldc; beta is 0 or 1.
void gemm_packed(int64_t M, const float* A, int64_t lda, const PackedB& W, int64_t p0, int64_t p1, float beta, float* C,
                 int64_t ldc);

// The calling team thread's share of a time loop over a packed W (inside the parallel region): panels
// [p0, p1) of W, split statically, and hidden units [j0, j1) of H in whole panels (static_range_aligned), so
// that when W's columns are the H units a thread's units are its own panels' columns.
struct TeamShare {
  int64_t p0, p1, j0, j1;
};
TeamShare team_share(const PackedB& w, int64_t H);

// Whether the recurrent layers use gemm_packed or gemm() per step is the Engine's
// (Engine::packed_recurrent(), from EngineOptions::packed_recurrent).

}  // namespace manylm
