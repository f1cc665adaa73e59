// row_grad.cc — see row_grad.h.
#include "core/row_grad.h"

#include <algorithm>

#include "core/parallel.h"

namespace manylm {

void RowGrad::assign(const int32_t* idx, int64_t n, std::vector<int32_t>& slot) {
  ids.assign(idx, idx + n);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  values.assign(ids.size() * static_cast<size_t>(width), 0.0f);
  slot.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    slot[static_cast<size_t>(i)] = static_cast<int32_t>(std::lower_bound(ids.begin(), ids.end(), idx[i]) - ids.begin());
}

void RowGrad::assign_ids(std::vector<int32_t> rows) {
  ids = std::move(rows);
  values.assign(ids.size() * static_cast<size_t>(width), 0.0f);
}

void scatter_rows(RowGrad& g, const int32_t* idx, int64_t n, const float* src) {
  thread_local std::vector<int32_t> slot;  // reused from step to step
  g.assign(idx, n, slot);
  const int64_t w = g.width;
  float* dst = g.values.data();
  const int32_t* sl = slot.data();
  parallel_for(w, n > 0 ? (1 << 14) / n + 1 : w + 1, [=](int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < n; ++i) {
      float* d = dst + int64_t{sl[i]} * w;
      const float* s = src + i * w;
      for (int64_t c = c0; c < c1; ++c) d[c] += s[c];
    }
  });
}

}  // namespace manylm
