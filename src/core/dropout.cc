// dropout.cc — see dropout.h.
#include "core/dropout.h"

#include <bit>
#include <cstddef>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"

namespace manylm {

namespace {
CounterRng site_rng(const DropoutSite& s) { return {s.seed, (s.step << 8) | s.site}; }
uint32_t threshold(float p) { return static_cast<uint32_t>(static_cast<double>(p) * 16777216.0); }
}  // namespace

bool dropout_keep(const DropoutSite& s, int64_t t, int64_t lane, int64_t D, int64_t d, int64_t lanes) {
  const uint64_t index = static_cast<uint64_t>(s.variational ? lane * D + d : (t * lanes + lane) * D + d);
  return (site_rng(s).block(index >> 2)[index & 3] >> 8) >= threshold(s.p);
}

void dropout_forward(const DropoutSite& s, int64_t T, int64_t B, int64_t D, int64_t lane0, int64_t lanes, float* x,
                     uint8_t* mask) {
  const CounterRng rng = site_rng(s);
  const uint32_t thr = threshold(s.p);
  const float scale = 1.0f / (1.0f - s.p);
  const int64_t rows = T * B;
  parallel_for(rows, D > 0 ? (1 << 14) / D + 1 : rows + 1, [&](int64_t r0, int64_t r1) {
    // Random words for one row: whole Philox blocks covering [base, base + D), generated eight blocks at
    // a time (philox_blocks), then compared and applied in a second simple loop.
    thread_local std::vector<uint32_t> words;  // per team thread, reused across calls (scratch only)
    if (words.size() < static_cast<size_t>(D + 8)) words.resize(static_cast<size_t>(D + 8));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = r / B, lane = lane0 + r % B;
      const uint64_t base = static_cast<uint64_t>(s.variational ? lane * D : (t * lanes + lane) * D);
      const uint64_t b0 = base >> 2, nb = ((base + static_cast<uint64_t>(D) + 3) >> 2) - b0;
      uint32_t* w = words.data();
      philox_blocks(rng, b0, nb, w);
      const uint32_t* u = w + (base & 3);
      uint8_t* m = mask + r * D;
      float* xr = x + r * D;
#pragma omp simd
      for (int64_t i = 0; i < D; ++i) {
        // Branch-free (a branch on a coin flip mispredicts half the time): the scaled value AND-ed with
        // an all-ones or all-zeros word; a dropped value is +0.
        const uint32_t keep = 0u - static_cast<uint32_t>((u[i] >> 8) >= thr);
        m[i] = static_cast<uint8_t>(keep & 1u);
        xr[i] = std::bit_cast<float>(std::bit_cast<uint32_t>(xr[i] * scale) & keep);
      }
    }
  });
}

void dropout_backward(float p, const uint8_t* mask, int64_t n, float* dx) {
  const float scale = 1.0f / (1.0f - p);
  parallel_for(n, (1 << 14) + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i)
      dx[i] = std::bit_cast<float>(std::bit_cast<uint32_t>(dx[i] * scale) & (0u - static_cast<uint32_t>(mask[i])));
  });
}

}  // namespace manylm
