// shuffle_mpi_test.cc — --shuffle sentences on real MPI ranks (2, 3 and 4 under ctest): every rank builds the
// epoch's order on its own and reads its lanes of it; together the ranks read every sentence of the epoch once,
// each sentence by one rank except where a rank's lanes end mid-sentence (counted, summed over the ranks); a
// shuffled run on N ranks takes the same steps as on one process across an epoch boundary (so the ranks read the
// one-process run's windows, in each epoch's order), and stopped mid-epoch and resumed on the same ranks it is
// bit-identical to the run that was not stopped.
#include <gtest/gtest.h>

#include "../test_util.h"
#include "mpi_corpus.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/io.h"
#include "core/parallel.h"
#include "data/batcher.h"
#include "data/shuffle.h"
#include "mpi/comm.h"
#include "train/trainer.h"

namespace manylm {
namespace {

using mpi_test::Corpus;
using mpi_test::step_ppl;
using test_util::ptb_path;

TEST(MpiShuffle, RanksReadDisjointSentencesCoveringTheEpochOnce) {
  const Comm comm = Comm::world();
  constexpr int32_t kEnd = 0, S = 2000;  // sentence s: words of id s + 1, then kEnd
  std::vector<int32_t> ids;
  std::vector<int64_t> length(S + 1, 0);
  for (int32_t s = 1; s <= S; ++s) {
    length[static_cast<size_t>(s)] = 1 + (s * 5 + s / 7) % 17;
    ids.insert(ids.end(), static_cast<size_t>(length[static_cast<size_t>(s)]), s);
    ids.push_back(kEnd);
  }
  const int64_t B = 12, T = 9;
  for (int64_t epoch : {0, 1}) {
    const SentenceBlocks blocks(TokenSequence(std::span<const int32_t>(ids)), kEnd, 25);
    const Batcher batcher(blocks.epoch_order(11, epoch), B, T, "sentences");
    const auto [lane0, lane1] = static_range(B, comm.rank(), comm.size());
    // words[s]: words of sentence s this rank read; words[0]: sentence ends. Each lane reads its L positions:
    // the first x of window 0, then every y.
    std::vector<int64_t> words(S + 1, 0), readers(S + 1, 0);
    std::vector<int32_t> x, y;
    for (int64_t k = 0; k < batcher.windows(); ++k) {
      batcher.window(k, lane0, lane1, x, y);
      if (k == 0)
        for (int64_t b = 0; b < lane1 - lane0; ++b) ++words[static_cast<size_t>(x[static_cast<size_t>(b)])];
      for (int32_t id : y) ++words[static_cast<size_t>(id)];
    }
    for (int32_t s = 1; s <= S; ++s) readers[static_cast<size_t>(s)] = words[static_cast<size_t>(s)] > 0;
    comm.sum(words);
    comm.sum(readers);
    const int64_t L = batcher.stream_length(), N = static_cast<int64_t>(ids.size());
    std::vector<bool> in_tail(S + 1, false);  // sentences with words in [B·L, N), which the stream cut drops
    for (int64_t p = B * L; p < N; ++p) in_tail[static_cast<size_t>(batcher.sequence().at(p))] = true;
    int64_t total = 0, shared = 0;
    for (int32_t s = 0; s <= S; ++s) total += words[static_cast<size_t>(s)];
    EXPECT_EQ(total, B * L) << "every position of the epoch's streams once, over all ranks";
    for (int32_t s = 1; s <= S; ++s) {
      if (!in_tail[static_cast<size_t>(s)]) {
        EXPECT_EQ(words[static_cast<size_t>(s)], length[static_cast<size_t>(s)]) << "sentence " << s << " read once";
      }
      EXPECT_LE(readers[static_cast<size_t>(s)], 2) << "sentence " << s;
      shared += readers[static_cast<size_t>(s)] == 2;
    }
    EXPECT_LE(shared, comm.size() - 1) << "only where a rank's lanes end mid-sentence";
    EXPECT_LT(N - B * L, B);
  }
}

// The number of training windows of an epoch of `c`'s text.
int64_t windows_per_epoch(const Config& c) {
  int64_t tokens = 0;  // words and one <eos> per line
  std::ifstream text(c.train);
  for (std::string line; std::getline(text, line); ++tokens) {
    std::istringstream words(line);
    for (std::string w; words >> w;) ++tokens;
  }
  return (tokens / c.batch - 1 + c.bptt - 1) / c.bptt;
}

// Epoch 1 from the start and epoch 2 from epoch 1's checkpoint (written by one process), on N ranks and on one:
// the same losses step by step (the ranks read the one process's windows, in each epoch's order); stopped
// mid-epoch 2 and resumed on the same ranks, bit-identical to the run that was not stopped.
TEST(MpiShuffle, SameStepsAsOneRankAndResumeIsBitIdentical) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  const Comm comm = Comm::world();
  Corpus corpus;
  const std::string short_train = corpus.dir + "/short.txt";  // the first 700 lines: an epoch of about 50 windows
  if (comm.root()) {
    std::ifstream in(corpus.dir + "/train.txt");
    std::ofstream out(short_train);
    std::string line;
    for (int i = 0; i < 700 && std::getline(in, line); ++i) out << line << "\n";
  }
  comm.barrier();
  auto config = [&](const std::string& out, int64_t max_steps) {
    Config c = corpus.config(out);
    c.train = short_train;
    c.shuffle = Shuffle::Sentences;
    c.shuffle_block = 100;
    c.bptt = 35;
    c.max_steps = max_steps;
    return c;
  };
  auto expect_same_steps = [](const std::string& a_run, const std::string& b_run, size_t from, size_t to) {
    const auto a = step_ppl(a_run), b = step_ppl(b_run);
    ASSERT_EQ(a.size(), to);
    ASSERT_EQ(b.size(), to);
    for (size_t i = from; i < to; ++i)
      EXPECT_NEAR(std::log(a[i]), std::log(b[i]), 1e-5 * std::log(b[i])) << "step " << i + 1;
  };
  const Config n_ranks = config("n-ranks", 30);
  run_training(n_ranks, comm);
  const int64_t windows = windows_per_epoch(n_ranks);
  const Config epoch1 = config("epoch1", windows);
  std::string copies;
  if (comm.root()) {
    run_training(config("one-rank", 30), Comm{});
    expect_same_steps(n_ranks.out, corpus.dir + "/one-rank", 0, 30);
    run_training(epoch1, Comm{});
    for (const char* copy : {"-n", "-one", "-part"})
      EXPECT_EQ(0, std::system(("cp -r " + epoch1.out + " " + epoch1.out + copy).c_str()));
  }
  comm.barrier();
  auto resume = [&](const std::string& dir, int64_t max_steps) {
    Config c = config("", max_steps);
    c.out.clear();
    c.resume = dir;
    return c;
  };
  const int64_t end = windows + 10;
  run_training(resume(epoch1.out + "-n", end), comm);
  run_training(resume(epoch1.out + "-part", windows + 4), comm);
  run_training(resume(epoch1.out + "-part", end), comm);
  if (comm.root()) {
    run_training(resume(epoch1.out + "-one", end), Comm{});
    expect_same_steps(epoch1.out + "-n", epoch1.out + "-one", static_cast<size_t>(windows), static_cast<size_t>(end));
    EXPECT_TRUE(read_file(epoch1.out + "-n/model.safetensors", "a") ==
                read_file(epoch1.out + "-part/model.safetensors", "b"))
        << "a shuffled run resumed mid-epoch differs from the one that was not stopped";
  }
  comm.barrier();
}

}  // namespace
}  // namespace manylm
