// synthetic.cc — see synthetic.h.
#include "data/synthetic.h"

#include <algorithm>

#include "core/parallel.h"
#include "core/rng.h"

namespace manylm {

std::vector<int32_t> zipf_ids(int64_t V, int64_t n, uint64_t seed) {
  std::vector<double> cdf(static_cast<size_t>(V));  // cdf[v] = Σ_{u ≤ v} 1/(u+1), normalized below
  double s = 0;
  for (int64_t v = 0; v < V; ++v) cdf[static_cast<size_t>(v)] = s += 1.0 / static_cast<double>(v + 1);
  for (double& c : cdf) c /= s;
  std::vector<int32_t> ids(static_cast<size_t>(n));
  const CounterRng rng{seed, 0x21bf};
  parallel_for(n, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {  // a 53-bit uniform from two words of one Philox block
      const Philox4 w = rng.block(static_cast<uint64_t>(i) >> 1);
      const int k = static_cast<int>(i & 1) * 2;
      const double u = (static_cast<double>(w[k] >> 5) * 67108864.0 + static_cast<double>(w[k + 1] >> 6)) *
                       (1.0 / 9007199254740992.0);
      const int64_t v = std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
      ids[static_cast<size_t>(i)] = static_cast<int32_t>(std::min(v, V - 1));
    }
  });
  return ids;
}

}  // namespace manylm
