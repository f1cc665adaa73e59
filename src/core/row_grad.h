// row_grad.h — a row-sparse gradient of a (rows, width) table: the distinct rows a step touched, ascending,
// and their values. A token embedding's gradient is one: a 20 × 35 window touches at most 700 of the V rows,
// so zeroing, clipping, updating and exchanging it visit those rows only, never the V × E table.
// Not the update (train/optimizer.h) or the exchange across ranks (GradReducer::reduce_rows, mpi/reducer.h).
#pragma once
#include <cstdint>
#include <vector>

namespace manylm {

struct RowGrad {
  int64_t width = 0;          // floats per row (E)
  std::vector<int32_t> ids;   // ascending, distinct
  std::vector<float> values;  // (ids.size(), width)

  int64_t rows() const { return static_cast<int64_t>(ids.size()); }
  float* row(int64_t k) { return values.data() + k * width; }
  const float* row(int64_t k) const { return values.data() + k * width; }
  // ids := the distinct values of idx[0..n), values := 0; slot[i] := the position of idx[i] in ids.
  void assign(const int32_t* idx, int64_t n, std::vector<int32_t>& slot);
  // ids := the given ascending distinct rows, values := 0.
  void assign_ids(std::vector<int32_t> rows);
};

// grad[idx[i]] += src[i] for i < n (src (n, width)), into g after g.assign(idx, n): threads own column
// ranges and add the positions in order, so the sums are the same for any thread count.
void scatter_rows(RowGrad& g, const int32_t* idx, int64_t n, const float* src);

}  // namespace manylm
