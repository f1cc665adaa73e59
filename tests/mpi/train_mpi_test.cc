// train_mpi_test.cc — data-parallel training on real MPI ranks against one process, on a slice of the
// real Penn Treebank: the same global batch gives the same losses step by step (within 1e-5 relative
// over 50 steps, dropout on, so the masks must be the same for 1 and N ranks); --deterministic runs are
// bitwise reproducible; a checkpoint written by N ranks resumes on one rank and continues the same run;
// every codec trains (loss falls).
#include <gtest/gtest.h>

#include <mpi.h>
#include "../test_util.h"
#include "mpi_corpus.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/io.h"
#include "mpi/comm.h"
#include "train/trainer.h"

namespace manylm {
namespace {

using mpi_test::Corpus;
using mpi_test::step_ppl;
using test_util::ptb_path;

TEST(MpiTrain, SameLossesAsOneRankAndResumesOnOneRank) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  const Comm comm = Comm::world();
  Corpus corpus;
  Config c = corpus.config("n-ranks");
  c.max_steps = 50;
  run_training(c, comm);
  if (comm.root()) {  // the reference: one process, the whole batch
    Config one = corpus.config("one-rank");
    one.max_steps = 50;
    run_training(one, Comm{});
    const auto a = step_ppl(c.out), b = step_ppl(one.out);
    ASSERT_EQ(a.size(), 50u);
    ASSERT_EQ(b.size(), 50u);
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_NEAR(std::log(a[i]), std::log(b[i]), 1e-5 * std::log(b[i]))
          << "step " << i + 1 << " on " << comm.size() << " ranks";
    // The N-rank checkpoint continues on one rank like the one-rank run continues itself.
    Config more = c;
    more.resume = c.out;
    more.max_steps = 70;
    run_training(more, Comm{});
    Config one_more = one;
    one_more.resume = one.out;
    one_more.max_steps = 70;
    run_training(one_more, Comm{});
    const auto a2 = step_ppl(c.out), b2 = step_ppl(one.out);
    ASSERT_EQ(a2.size(), 70u);
    for (size_t i = 50; i < a2.size(); ++i)
      EXPECT_NEAR(std::log(a2[i]), std::log(b2[i]), 1e-5 * std::log(b2[i])) << "resumed step " << i + 1;
  }
  comm.barrier();
}

TEST(MpiTrain, OneRankCheckpointResumesOnAllRanks) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  const Comm comm = Comm::world();
  Corpus corpus;
  Config c = corpus.config("start-one");
  c.max_steps = 20;
  if (comm.root()) run_training(c, Comm{});
  comm.barrier();
  Config more = c;
  more.resume = c.out;
  more.max_steps = 40;
  const TrainResult r = run_training(more, comm);
  EXPECT_EQ(r.steps, 40);
  EXPECT_TRUE(std::isfinite(r.test_ppl));
  if (comm.root()) {
    Config ref = corpus.config("ref-one");
    ref.max_steps = 40;
    run_training(ref, Comm{});
    const auto a = step_ppl(c.out), b = step_ppl(ref.out);
    ASSERT_EQ(a.size(), 40u);
    for (size_t i = 20; i < a.size(); ++i)
      EXPECT_NEAR(std::log(a[i]), std::log(b[i]), 1e-5 * std::log(b[i])) << "step " << i + 1;
  }
  comm.barrier();
}

TEST(MpiTrain, DeterministicRunsAreBitwiseEqual) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  const Comm comm = Comm::world();
  Corpus corpus;
  std::string model[2];
  for (int k = 0; k < 2; ++k) {
    Config c = corpus.config("det" + std::to_string(k));
    c.max_steps = 30;
    c.deterministic = true;
    c.comm_thread = k == 0;  // how the buckets progress must not matter
    run_training(c, comm);
    if (comm.root()) model[k] = read_file(c.out + "/model.safetensors", "model");
  }
  if (comm.root()) {
    EXPECT_TRUE(model[0] == model[1]) << "two --deterministic runs gave different weights";
  }
}

// A compressed run stopped and resumed on the same ranks equals the uninterrupted run bit for bit: the
// residuals (error feedback) are part of the checkpoint.
TEST(MpiTrain, CompressedResumeIsBitIdentical) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  const Comm comm = Comm::world();
  Corpus corpus;
  Config whole = corpus.config("whole");
  whole.grad_compress = Compress::Int8;
  whole.max_steps = 30;
  run_training(whole, comm);
  Config part = corpus.config("part");
  part.grad_compress = Compress::Int8;
  part.max_steps = 12;
  run_training(part, comm);
  part.resume = part.out;
  part.max_steps = 30;
  run_training(part, comm);
  if (comm.root()) {
    EXPECT_TRUE(read_file(whole.out + "/model.safetensors", "a") == read_file(part.out + "/model.safetensors", "b"))
        << "resumed int8 run differs from the uninterrupted one";
  }
}

// --keep-best on N ranks: a run stopped halfway through epoch 2 scores epoch 1's weights, which rank 0 reads
// and sends (the other ranks may not share its disk): the result is epoch 1's validation perplexity.
TEST(MpiTrain, KeepBestScoresTheBestEpochOnEveryRank) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  const Comm comm = Comm::world();
  Corpus corpus;
  Config c = corpus.config("keep-best");
  c.keep_best = true;
  c.progress_seconds = 1e9;
  c.bptt = 30;         // fewer steps per epoch
  int64_t tokens = 0;  // words and one <eos> per line
  std::ifstream text(c.train);
  for (std::string line; std::getline(text, line); ++tokens) {
    std::istringstream words(line);
    for (std::string w; words >> w;) ++tokens;
  }
  const int64_t windows = (tokens / c.batch - 1 + c.bptt - 1) / c.bptt;
  c.max_steps = windows + windows / 2;
  const TrainResult r = run_training(c, comm);
  EXPECT_EQ(r.best_epoch, 1);
  double epoch1 = 0;
  std::ifstream metrics(c.out + "/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);)
    if (auto j = nlohmann::json::parse(line); j["type"] == "valid" && j["epoch"] == 1)
      epoch1 = j["valid_ppl"].get<double>();
  EXPECT_NEAR(r.valid_ppl, epoch1, 1e-6 * epoch1) << "rank " << comm.rank();
}

class Codec : public ::testing::TestWithParam<std::string> {};

TEST_P(Codec, Trains) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  const Comm comm = Comm::world();
  Corpus corpus;
  Config c = corpus.config("codec-" + GetParam());
  c.grad_compress = parse_compress(GetParam());
  c.max_steps = 120;
  c.progress_seconds = 1e9;
  c.threshold_density = 0.05;
  const TrainResult r = run_training(c, comm);
  Config none = corpus.config("codec-none");
  none.max_steps = 120;
  none.progress_seconds = 1e9;
  const TrainResult ref = run_training(none, comm);
  EXPECT_LT(r.valid_ppl, 1.1 * ref.valid_ppl) << GetParam() << " vs uncompressed";
  EXPECT_LT(r.valid_ppl, 0.5 * 10000) << "did not learn";
  if (comm.distributed()) {
    EXPECT_GT(2.0 * (comm.size() - 1) / comm.size() * r.raw_bytes_per_step / r.wire_bytes_per_step,
              GetParam() == "fp16" ? 1.9 : 3.9);
    EXPECT_GT(r.row_bytes_per_step, 0) << "SGD (sparse updates, auto): the embedding's rows travel apart";
    EXPECT_LT(r.row_bytes_per_step, 0.05 * r.raw_bytes_per_step) << "a window's rows, not the table";
  }
}

INSTANTIATE_TEST_SUITE_P(Mpi, Codec, ::testing::Values("fp16", "int8", "dyn8", "threshold"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace manylm
