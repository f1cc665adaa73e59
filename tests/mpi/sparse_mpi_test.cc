// sparse_mpi_test.cc — sparse updates on real MPI ranks: an LSTM with an adaptive softmax whose embedding
// gradient is exchanged as rows (GradReducer::reduce_rows) and whose idle tail clusters are skipped. N ranks
// train what one process trains — per-step losses within 1e-5 relative, and after 50 steps every tensor of the
// weights and of the optimizer state within ‖a − b‖ ≤ 1e-5 ‖b‖ — for SGD, SGD with --deterministic and lazy
// Adam, on a PTB slice whose last tail cluster (the rarest third of the vocabulary) is, at some steps, reached on
// one rank and not on another (its `touched` flag must be OR'ed over the ranks, or the ranks diverge) and at
// others on none (skipped everywhere); the rows' bytes per step are what the ring model gives for the windows'
// ids. A run stopped and resumed on the same ranks equals the uninterrupted one bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../test_util.h"
#include "core/io.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/vocab.h"
#include "mpi/comm.h"
#include "mpi_corpus.h"
#include "train/trainer.h"

namespace manylm {
namespace {

using mpi_test::Corpus;
using mpi_test::step_ppl;
using test_util::ptb_path;

// The small LSTM of the MPI tests with an adaptive softmax of three tail clusters, the last one the rarest
// third of the vocabulary (words seen once or twice in the slice: ≈ 3 % of the targets), and sparse updates.
Config sparse_config(const Corpus& corpus, const std::string& out) {
  Config c = corpus.config(out);
  const int64_t V = build_vocab(c.train, c.tokens, c.vocab_size, c.min_count).size();
  c.output = Output::Adaptive;
  c.cutoffs = {100, 1000, 2 * V / 3};
  c.div_value = 2;  // tail projections of 12, 6 and 3 units
  c.head_bias = true;
  c.sparse_updates = SparseUpdates::On;
  c.max_steps = 50;
  return c;
}

// Over the first `steps` windows of a run on `ranks` ranks: at how many the last tail cluster had targets on
// some ranks but not on all (`split`), and on none (`none`); and the bytes per step each rank sends for the
// embedding's rows by reduce_rows' ring model (the ids of every rank gathered, then the union's rows all-reduced
// in fp32, or with --deterministic every rank's rows gathered).
struct WindowStats {
  int split = 0, none = 0;
  double row_bytes_per_step = 0;
};
WindowStats window_stats(const Config& c, int ranks, int steps) {
  const Vocab vocab = build_vocab(c.train, c.tokens, c.vocab_size, c.min_count);
  const TokenIds ids = TokenIds::load(c.train, vocab, c.cache_dir);
  const Batcher batcher(ids.ids(), c.batch, c.bptt, c.train);
  const double ring = (ranks - 1.0) / ranks;
  std::vector<int32_t> x, y;
  WindowStats n;
  for (int k = 0; k < steps; ++k) {
    int reached = 0;
    std::vector<int32_t> all, mine;
    double gathered = 0;  // ids of every rank
    for (int r = 0; r < ranks; ++r) {
      const auto [lane0, lane1] = static_range(c.batch, r, ranks);
      batcher.window(k, lane0, lane1, x, y);
      reached += std::any_of(y.begin(), y.end(), [&](int32_t t) { return t >= c.cutoffs.back(); });
      mine.assign(x.begin(), x.end());
      std::sort(mine.begin(), mine.end());
      mine.erase(std::unique(mine.begin(), mine.end()), mine.end());
      gathered += static_cast<double>(mine.size());
      all.insert(all.end(), mine.begin(), mine.end());
    }
    std::sort(all.begin(), all.end());
    const double U = static_cast<double>(std::unique(all.begin(), all.end()) - all.begin());
    const double values = c.deterministic ? 4.0 * ring * gathered * c.embed : 2.0 * ring * 4.0 * U * c.embed;
    n.row_bytes_per_step += (4.0 * ring * gathered + values) / steps;
    n.split += reached > 0 && reached < ranks;
    n.none += reached == 0;
  }
  return n;
}

// Every tensor of `file` in run a against run b: ‖a − b‖ ≤ tol · ‖b‖ (L2 norms over the tensor). Returns the
// largest ‖a − b‖ / ‖b‖ seen and, in `max_abs`, the largest |a − b| of an element over the largest |b| of its
// tensor (for the record: a single element of Adam's update can amplify a rounding difference).
double expect_same_tensors(const std::string& a, const std::string& b, const std::string& file, double tol,
                           double* max_abs = nullptr) {
  const SafeTensorsFile fa = load_safetensors(a + "/" + file), fb = load_safetensors(b + "/" + file);
  EXPECT_EQ(fa.tensors.size(), fb.tensors.size()) << file;
  double worst = 0;
  for (const auto& [name, ta] : fa.tensors) {
    const auto it = fb.tensors.find(name);
    if (it == fb.tensors.end()) {
      ADD_FAILURE() << file << ": " << name << " only in " << a;
      continue;
    }
    const SafeTensor& tb = it->second;
    EXPECT_EQ(ta.shape, tb.shape) << name;
    if (ta.values.size() != tb.values.size()) continue;
    double d2 = 0, b2 = 0, dmax = 0, bmax = 0;
    for (size_t i = 0; i < ta.values.size(); ++i) {
      const double d = double{ta.values[i]} - double{tb.values[i]}, v = tb.values[i];
      d2 += d * d, b2 += v * v;
      dmax = std::max(dmax, std::abs(d)), bmax = std::max(bmax, std::abs(v));
    }
    EXPECT_LE(std::sqrt(d2), tol * std::sqrt(b2)) << file << ": " << name;
    if (b2 > 0) worst = std::max(worst, std::sqrt(d2 / b2));
    if (max_abs && bmax > 0) *max_abs = std::max(*max_abs, dmax / bmax);
  }
  return worst;
}

// The run `c` on every rank, then on rank 0 alone (Comm{}) with the whole batch: the same per-step losses and,
// after the last step, the same weights and optimizer state within 1e-5 relative.
void expect_ranks_equal_one_process(const Config& c, const std::string& what) {
  const Comm comm = Comm::world();
  const TrainResult r = run_training(c, comm);
  EXPECT_EQ(r.steps, c.max_steps);
  if (comm.root()) {
    Config one = c;
    one.out = c.out + "-one";
    run_training(one, Comm{});
    const auto a = step_ppl(c.out), b = step_ppl(one.out);
    ASSERT_EQ(a.size(), static_cast<size_t>(c.max_steps));
    ASSERT_EQ(b.size(), a.size());
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_NEAR(std::log(a[i]), std::log(b[i]), 1e-5 * std::log(b[i])) << what << ": step " << i + 1;
    double max_abs = 0;
    const double worst = std::max(expect_same_tensors(c.out, one.out, "model.safetensors", 1e-5, &max_abs),
                                  expect_same_tensors(c.out, one.out, "state.safetensors", 1e-5, &max_abs));
    std::printf(
        "[ %s ] %d ranks vs one process, %lld steps: largest |a-b|/|b| of a tensor %.2e (of an element, "
        "over the tensor's largest: %.2e)\n",
        what.c_str(), comm.size(), static_cast<long long>(c.max_steps), worst, max_abs);
    if (comm.distributed()) {  // the case the test is about happened, and its rows were counted
      const WindowStats w = window_stats(c, comm.size(), static_cast<int>(c.max_steps));
      EXPECT_GT(w.split, 0) << "the last cluster never reached on one rank and not on another";
      EXPECT_GT(w.none, 0) << "the last cluster never idle on every rank";
      EXPECT_NEAR(r.row_bytes_per_step, w.row_bytes_per_step, 1e-9 * w.row_bytes_per_step);
      std::printf(
          "[ %s ] last tail cluster: reached on some ranks only at %d steps, on none at %d; %.0f row bytes "
          "per step\n",
          what.c_str(), w.split, w.none, r.row_bytes_per_step);
    }
  }
  comm.barrier();
}

TEST(MpiSparse, AdaptiveSgdSameWeightsAsOneProcess) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  Corpus corpus;
  expect_ranks_equal_one_process(sparse_config(corpus, "sgd"), "sgd");
}

TEST(MpiSparse, DeterministicSameWeightsAsOneProcess) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  Corpus corpus;
  Config c = sparse_config(corpus, "deterministic");
  c.deterministic = true;
  c.clip = 0.25;  // clipping active: the norm takes the rows summed over the ranks
  expect_ranks_equal_one_process(c, "sgd --deterministic, clip 0.25");
}

// Adam divides by √v: where a row's gradient sums terms that nearly cancel, the ranks' other summation order
// moves single elements by up to ≈ 2e-5 of their tensor's largest value (dense Adam on this run: 5–7e-5), while
// every tensor as a whole stays within 1e-5.
TEST(MpiSparse, LazyAdamSameWeightsAsOneProcess) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  Corpus corpus;
  Config c = sparse_config(corpus, "adam");
  c.optimizer = OptimizerKind::Adam;
  c.lr = 0.01;
  expect_ranks_equal_one_process(c, "adam, lazy rows");
}

// Stopped after 12 steps and resumed to 30 on the same ranks: the weights and the optimizer state (Adam's lazy
// moments; with int8, the error-feedback residuals are in their own files) equal the uninterrupted run's bit for
// bit.
struct ResumeCase {
  const char* name;
  OptimizerKind optimizer;
  Compress codec;
  bool deterministic;
};

class SparseResume : public ::testing::TestWithParam<ResumeCase> {};

TEST_P(SparseResume, IsBitIdentical) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  const Comm comm = Comm::world();
  Corpus corpus;
  auto config = [&](const std::string& out) {
    Config c = sparse_config(corpus, out);
    c.optimizer = GetParam().optimizer;
    if (c.optimizer != OptimizerKind::Sgd) c.lr = 0.01;
    c.grad_compress = GetParam().codec;
    c.deterministic = GetParam().deterministic;
    c.max_steps = 30;
    return c;
  };
  const Config whole = config("whole");
  run_training(whole, comm);
  Config part = config("part");
  part.max_steps = 12;
  run_training(part, comm);
  part.resume = part.out;
  part.max_steps = 30;
  run_training(part, comm);
  if (comm.root()) {
    EXPECT_TRUE(read_file(whole.out + "/model.safetensors", "a") == read_file(part.out + "/model.safetensors", "b"))
        << GetParam().name << ": the resumed run's weights differ from the uninterrupted run's";
    double max_abs = 0;
    expect_same_tensors(whole.out, part.out, "state.safetensors", 0.0, &max_abs);
    EXPECT_EQ(max_abs, 0.0) << GetParam().name << ": the resumed run's optimizer or carried state differs";
  }
  comm.barrier();
}

INSTANTIATE_TEST_SUITE_P(Mpi, SparseResume,
                         ::testing::Values(ResumeCase{"sgd", OptimizerKind::Sgd, Compress::None, false},
                                           ResumeCase{"adam", OptimizerKind::Adam, Compress::None, true},
                                           ResumeCase{"sgd_int8", OptimizerKind::Sgd, Compress::Int8, false}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace manylm
