// dropout.cc — see dropout.h.
#include "core/dropout.h"

#include <cstddef>
#include <vector>

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
#pragma omp parallel if (rows * D > (1 << 14))
  {
    // Random words for one row: whole Philox blocks covering [base, base + D), generated in a loop the
    // compiler vectorizes (independent counters), then compared and applied in a second simple loop.
    thread_local std::vector<uint32_t> words;  // per thread, reused across calls
    if (words.size() < static_cast<size_t>(D + 8)) words.resize(static_cast<size_t>(D + 8));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t t = r / B, lane = lane0 + r % B;
      const uint64_t base = static_cast<uint64_t>(s.variational ? lane * D : (t * lanes + lane) * D);
      const uint64_t b0 = base >> 2, nb = ((base + static_cast<uint64_t>(D) + 3) >> 2) - b0;
      uint32_t* w = words.data();
#pragma omp simd
      for (uint64_t k = 0; k < nb; ++k) {
        const Philox4 u = rng.block(b0 + k);
        w[4 * k] = u[0];
        w[4 * k + 1] = u[1];
        w[4 * k + 2] = u[2];
        w[4 * k + 3] = u[3];
      }
      const uint32_t* u = w + (base & 3);
      uint8_t* m = mask + r * D;
      float* xr = x + r * D;
#pragma omp simd
      for (int64_t i = 0; i < D; ++i) {
        const uint8_t keep = (u[i] >> 8) >= thr;
        m[i] = keep;
        xr[i] = keep ? xr[i] * scale : 0.0f;
      }
    }
  }
}

void dropout_backward(float p, const uint8_t* mask, int64_t n, float* dx) {
  const float scale = 1.0f / (1.0f - p);
#pragma omp parallel for simd schedule(static) if (n > (1 << 14))
  for (int64_t i = 0; i < n; ++i) dx[i] = mask[i] ? dx[i] * scale : 0.0f;
}

}  // namespace manylm
