// dropout.h — dropout masks from the counter-based generator (rng.h): element (t, lane, d) of site s at
// update `step` is kept iff uniform(seed, stream(step, s), index) ≥ p, where index = (t·lanes + lane)·D + d
// (or lane·D + d for variational dropout: one mask per window, shared by every time step). A mask
// depends only on (seed, step, site, position): never on thread count, rank count or evaluation order,
// and a test can recompute any element. Kept values are scaled by 1/(1−p) (inverted dropout).
// Not the model: callers decide where dropout sits.
#pragma once
#include <cstdint>

namespace manylm {

struct DropoutSite {
  uint64_t seed;
  uint64_t step;
  uint32_t site;
  float p;           // drop probability, 0 ≤ p < 1
  bool variational;  // same mask for every time step of the window
};

// Draws the mask of a (T, B, D) block whose lanes are lane0..lane0+B−1 of `lanes` in all, writes it
// to mask (1 keep, 0 drop) and multiplies x by mask/(1−p) in place.
void dropout_forward(const DropoutSite& s, int64_t T, int64_t B, int64_t D, int64_t lane0, int64_t lanes, float* x,
                     uint8_t* mask);
// dx *= mask/(1−p).
void dropout_backward(float p, const uint8_t* mask, int64_t n, float* dx);
// Whether element (t, lane, d) is kept: the definition, for tests.
bool dropout_keep(const DropoutSite& s, int64_t t, int64_t lane, int64_t D, int64_t d, int64_t lanes);

}  // namespace manylm
