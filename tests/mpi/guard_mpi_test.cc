// guard_mpi_test.cc — the divergence guard on real MPI ranks: every rank takes the same decisions (they come from
// the loss summed over the ranks and the reduced gradient's norm), rolls back to the same checkpoint with its
// error-feedback residuals (int8: lossy), and ends with the same weights; the last rollback allowed stops every
// rank with the same error (no rank left waiting in a collective).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "../test_util.h"
#include "core/error.h"
#include "core/io.h"
#include "core/safetensors.h"
#include "mpi/comm.h"
#include "mpi_corpus.h"
#include "train/trainer.h"

namespace manylm {
namespace {

using mpi_test::Corpus;
using test_util::ptb_path;

Config diverging(const Corpus& corpus, const std::string& out) {
  Config c = corpus.config(out);
  c.lr = 1e6;
  c.clip = 0;
  c.grad_compress = Compress::Int8;
  c.checkpoint_steps = 1;
  c.max_steps = 25;
  c.max_rollbacks = 40;
  c.progress_seconds = 1000;
  return c;
}

TEST(MpiGuard, EveryRankRollsBackAlike) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  const Comm comm = Comm::world();
  Corpus corpus;
  const Config c = diverging(corpus, "rolled");
  const TrainResult r = run_training(c, comm);
  ASSERT_GT(r.rollbacks, 3);
  EXPECT_EQ(r.steps, 25);
  EXPECT_TRUE(std::isfinite(r.test_ppl));
  double v[3] = {static_cast<double>(r.rollbacks), static_cast<double>(r.steps), r.test_ppl};
  double mine[3] = {v[0], v[1], v[2]};
  comm.sum(v);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(v[k], comm.size() * mine[k]) << "rank " << comm.rank() << ", value " << k;
  if (comm.root()) {
    const SafeTensorsFile m = load_safetensors(c.out + "/model.safetensors");
    for (const auto& [name, t] : m.tensors)
      for (float x : t.values) ASSERT_TRUE(std::isfinite(x)) << name;
  }
  comm.barrier();
}

TEST(MpiGuard, TheLastRollbackStopsEveryRank) {
  if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found";
  const Comm comm = Comm::world();
  Corpus corpus;
  Config c = diverging(corpus, "stopped");
  c.max_rollbacks = 1;
  const std::string err = test_util::user_error([&] { run_training(c, comm); });
  EXPECT_NE(err.find("after 1 rollbacks (--max-rollbacks 1)"), std::string::npos) << "rank " << comm.rank() << err;
  comm.barrier();
  if (comm.root()) EXPECT_FALSE(path_exists(c.out)) << "no checkpoint passed the guard: nothing is left";
}

}  // namespace
}  // namespace manylm
