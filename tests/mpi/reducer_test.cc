// reducer_test.cc — the bucketed gradient reduction on real MPI ranks: the uncompressed sum is exact
// (and, with --deterministic, bitwise the rank-order sum), every codec leaves the same result on every
// rank, and error feedback conserves the gradient: Σ steps of the reduced result + every residual held
// = Σ steps Σ ranks of the gradients fed in. Buckets are released at several offsets, with and without
// the progress thread. A row-sparse gradient (reduce_rows) comes back as the union of the ranks' rows with
// their exact sums.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "mpi/reducer.h"

namespace manylm {
namespace {

// Rank r's gradient at step t: a smooth random field (so codecs see realistic blocks), some exact zeros.
std::vector<float> gradient(int r, int t, size_t n) {
  CounterRng g{static_cast<uint64_t>(1000 + 17 * r), static_cast<uint64_t>(t)};
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const float u = g.uniform(i);
    v[i] = (i % 97 == 0) ? 0.0f : (u - 0.5f) * 1e-2f * (1.0f + static_cast<float>(i % 1000) / 100.0f);
  }
  return v;
}

// Releases buckets the way backward does: from the end of the block towards its start.
void reduce(GradReducer& red, std::vector<float>& g) {
  for (size_t from : {g.size() * 3 / 4, g.size() / 2, g.size() / 5}) red.ready(from);
  red.finish();
}

struct Case {
  Compress codec;
  bool deterministic, thread;
};

class Reduce : public ::testing::TestWithParam<Case> {};

TEST_P(Reduce, ConservesAndAgreesAcrossRanks) {
  const Comm comm = Comm::world();
  const int N = comm.size();
  const size_t n = 3 * kBlock * 7 + 123;  // several buckets, a ragged tail
  ReduceOptions o;
  o.codec = GetParam().codec;
  o.deterministic = GetParam().deterministic;
  o.progress_thread = GetParam().thread;
  o.bucket_floats = 5 * kBlock;
  o.density = 0.05;
  std::vector<float> g(n);
  GradReducer red(comm, g, o);
  std::vector<double> fed(n, 0.0), got(n, 0.0);
  const int steps = 8;
  for (int t = 0; t < steps; ++t) {
    const std::vector<float> mine = gradient(comm.rank(), t, n);
    std::copy(mine.begin(), mine.end(), g.begin());  // in place: the reducer holds a view of g
    for (int r = 0; r < N; ++r) {
      const std::vector<float> gr = gradient(r, t, n);
      for (size_t i = 0; i < n; ++i) fed[i] += gr[i];
    }
    std::vector<float> sequential(n, 0.0f);  // the rank-order fp32 sum
    for (int r = 0; r < N; ++r) {
      const std::vector<float> gr = gradient(r, t, n);
      for (size_t i = 0; i < n; ++i) sequential[i] += gr[i];
    }
    reduce(red, g);
    comm.check_same(g, "reduced gradients");  // throws if any rank holds other bytes
    if (o.codec == Compress::None) {
      double worst = 0;
      for (size_t i = 0; i < n; ++i) worst = std::max(worst, double(std::abs(g[i] - sequential[i])));
      EXPECT_LE(worst, o.deterministic ? 0.0 : 1e-7) << "deterministic: the sum must be the rank-order sum";
    }
    for (size_t i = 0; i < n; ++i) got[i] += g[i];
  }
  // Conservation: what was delivered plus every residual on every rank equals what was fed in.
  std::vector<double> held(n, 0.0);
  for (auto res : {red.residual(), red.owner_residual()})
    if (!res.empty())
      for (size_t i = 0; i < n; ++i) held[i] += res[i];
  MPI_Allreduce(MPI_IN_PLACE, held.data(), static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  double worst = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    worst = std::max(worst, std::abs(got[i] + held[i] - fed[i]));
    scale = std::max(scale, std::abs(fed[i]));
  }
  EXPECT_LT(worst, 1e-5 * scale) << compress_name(o.codec) << ": the residuals do not account for what was not sent";
  const ReduceStats& s = red.stats();
  EXPECT_EQ(s.steps, steps);
  if (N > 1) {
    EXPECT_GT(s.wire_bytes, 0);
    double bytes[2] = {s.raw_bytes, s.wire_bytes};  // chunks differ by a block: compare the mean rank
    comm.sum(bytes);
    const double ratio = 2.0 * (N - 1) / N * bytes[0] / bytes[1];
    const double want = o.codec == Compress::Int8 || o.codec == Compress::Dyn8 ? 3.9
                        : o.codec == Compress::Fp16                            ? 1.95
                        : o.codec == Compress::Threshold                       ? 4.0  // density 5 %
                                                                               : 0.99;
    EXPECT_GT(ratio, want) << compress_name(o.codec);
  }
}

INSTANTIATE_TEST_SUITE_P(Mpi, Reduce,
                         ::testing::Values(Case{Compress::None, false, true}, Case{Compress::None, false, false},
                                           Case{Compress::None, true, true}, Case{Compress::Fp16, false, true},
                                           Case{Compress::Int8, false, true}, Case{Compress::Int8, false, false},
                                           Case{Compress::Dyn8, false, true}, Case{Compress::Threshold, false, true},
                                           Case{Compress::Threshold, false, false}),
                         [](const auto& info) {
                           return std::string(compress_name(info.param.codec)) +
                                  (info.param.deterministic ? "_deterministic" : "") +
                                  (info.param.thread ? "_thread" : "_polled");
                         });

TEST(Mpi, FixedThresholdSendsOnlyTauMultiples) {
  const Comm comm = Comm::world();
  if (!comm.distributed()) GTEST_SKIP() << "needs several ranks (one rank bypasses the reducer)";
  const size_t n = 10000;
  ReduceOptions o;
  o.codec = Compress::Threshold;
  o.tau = 0.25f;
  std::vector<float> g(n, 0.0f);
  GradReducer red(comm, g, o);
  for (size_t i = 0; i < n; ++i) g[i] = (i % 3 == 0) ? 0.3f : (i % 3 == 1 ? -0.1f : 0.0f);
  red.finish();
  for (size_t i = 0; i < n; ++i) {
    const float want = (i % 3 == 0) ? 0.25f * comm.size() : 0.0f;  // 0.3 ≥ τ is sent as τ; −0.1 waits
    ASSERT_FLOAT_EQ(g[i], want) << i;
    ASSERT_NEAR(red.residual()[i], (i % 3 == 0) ? 0.05f : (i % 3 == 1 ? -0.1f : 0.0f), 1e-6) << i;
  }
}

// A non-finite gradient reaching a codec inside the progress thread comes back to the trainer's thread
// as the codec's UserError (here every rank has it, so no rank waits for another).
TEST(Mpi, NonFiniteGradientIsAUserErrorFromFinish) {
  const Comm comm = Comm::world();
  if (!comm.distributed()) GTEST_SKIP() << "needs several ranks (one rank bypasses the reducer)";
  std::vector<float> g(3 * kBlock, 1e-3f);
  g[kBlock + 5] = std::nanf("");
  ReduceOptions o;
  o.codec = Compress::Int8;
  GradReducer red(comm, g, o);
  try {
    red.finish();
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
}

// The embedding's rows across ranks (reduce_rows): rank r < N−1 holds rows {r, 100 + 2r, 1000} (1000 on every
// one of them), the last rank none. The result on every rank is the ascending union and each row's sum over the
// ranks that hold it — exact (values are multiples of 1/4, so any order sums them exactly) and, with
// --deterministic, also bitwise the rank-order sum of values that do round; a cluster flag set on one rank is set
// on all; row_bytes counts the ids and values by the ring model and row_count the rows of the union.
RowGrad hand_made_rows(int rank, int ranks, int step, bool rounding) {
  RowGrad g;
  g.width = 3;
  if (rank == ranks - 1) return g;  // no rows at all (a rank whose window has no tokens of these ids)
  g.assign_ids({rank, 100 + 2 * rank, 1000});
  for (int64_t k = 0; k < g.rows(); ++k)
    for (int64_t c = 0; c < g.width; ++c) {
      const double base = (rank + 1) * 0.25 * (k + 1) + c + step;
      g.row(k)[c] = static_cast<float>(rounding ? std::sin(base) / 3.0 : base);
    }
  return g;
}

TEST(Mpi, ReduceRowsSumsTheUnionOfTheRanksRows) {
  const Comm comm = Comm::world();
  if (!comm.distributed()) GTEST_SKIP() << "needs several ranks (one rank bypasses the reducer)";
  const int N = comm.size(), me = comm.rank();
  for (bool deterministic : {false, true}) {
    std::vector<float> dense(kBlock, 0.0f);  // the reducer's dense block: not used by reduce_rows
    ReduceOptions o;
    o.deterministic = deterministic;
    GradReducer red(comm, dense, o);
    for (int step = 0; step < 2; ++step) {
      RowGrad g = hand_made_rows(me, N, step, deterministic);
      std::vector<uint8_t> touched = {static_cast<uint8_t>(me == 0), 0, static_cast<uint8_t>(me == N - 1)};
      red.reduce_rows(g, touched);
      // The expected result, summed here in rank order from every rank's hand-made rows.
      std::map<int32_t, std::vector<float>> want;
      for (int r = 0; r < N; ++r) {
        const RowGrad gr = hand_made_rows(r, N, step, deterministic);
        for (int64_t k = 0; k < gr.rows(); ++k) {
          auto& row = want.try_emplace(gr.ids[static_cast<size_t>(k)], 3, 0.0f).first->second;
          for (int c = 0; c < 3; ++c) row[static_cast<size_t>(c)] += gr.row(k)[c];
        }
      }
      ASSERT_EQ(g.rows(), static_cast<int64_t>(want.size())) << "rank " << me;
      ASSERT_EQ(g.values.size(), want.size() * 3);
      int64_t k = 0;
      for (const auto& [id, row] : want) {
        ASSERT_EQ(g.ids[static_cast<size_t>(k)], id) << "row " << k << ": the union must be ascending";
        for (int c = 0; c < 3; ++c) ASSERT_EQ(g.row(k)[c], row[static_cast<size_t>(c)]) << "row " << id << "," << c;
        ++k;
      }
      EXPECT_EQ(touched, (std::vector<uint8_t>{1, 0, 1})) << "rank " << me << ": the flags are OR'ed";
      comm.check_same(g.values, "reduced rows");
    }
    // Per step: ids 3(N−1) in all, the union 2(N−1) + 1 rows of 3 floats.
    const double ids = 3.0 * (N - 1), U = 2.0 * (N - 1) + 1, ring = (N - 1.0) / N;
    const double values = deterministic ? 4.0 * ring * ids * 3 : 2.0 * ring * 4.0 * U * 3;
    EXPECT_DOUBLE_EQ(red.stats().row_bytes, 2 * (4.0 * ring * ids + values));
    EXPECT_EQ(red.stats().row_count, 2 * U);
    EXPECT_EQ(red.stats().steps, 0) << "rows are not a step of the dense reduction";
  }
}

}  // namespace
}  // namespace manylm
