// guard_test.cc — nothing lost, nothing silently wrong (issue 21): the divergence guard's rule, a diverging run
// that rolls back (to its last checkpoint, or before the first to its initial weights derived again, which is
// the run started at the halved rate bit for bit) or stops with one line, never writing weights that are not
// finite or that failed the guard; a run that rolled back resumes bit-identically. On slices of the real Penn
// Treebank, in process and through the real binary.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_fixture.h"
#include "core/error.h"
#include "core/io.h"
#include "core/kernels.h"
#include "core/safetensors.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/guard.h"
#include "train/options.h"
#include "train/trainer.h"

namespace manylm {
namespace {

namespace fs = std::filesystem;
using test_util::ptb_path;

TEST(Guard, RuleRefusesNonFiniteAndFarAboveTheRunningLossAndLnV) {
  const double lnv = std::log(10000.0);  // 9.21
  EXPECT_NE(loss_verdict(NAN, 5.0, lnv, 3.0), "");
  EXPECT_NE(loss_verdict(INFINITY, 5.0, lnv, 3.0), "");
  EXPECT_NE(loss_verdict(NAN, 0.0, lnv, 0.0), "") << "non-finite is refused with the ratio off";
  double ratio = 0;
  EXPECT_EQ(loss_verdict(27.0, 5.0, lnv, 3.0, &ratio), "") << "below 3 x ln V";
  EXPECT_DOUBLE_EQ(ratio, 27.0 / lnv);
  const std::string why = loss_verdict(28.0, 5.0, lnv, 3.0, &ratio);
  EXPECT_NE(why.find("--diverge-ratio 3"), std::string::npos) << why;
  EXPECT_NE(loss_verdict(28.0, 0.0, lnv, 3.0), "") << "the first step: against ln V alone";
  EXPECT_EQ(loss_verdict(29.0, 9.7, lnv, 3.0, &ratio), "") << "a running loss above ln V is the reference";
  EXPECT_DOUBLE_EQ(ratio, 29.0 / 9.7);
  EXPECT_NE(loss_verdict(29.2, 9.7, lnv, 3.0), "");
  EXPECT_EQ(loss_verdict(1e6, 5.0, lnv, 0.0), "") << "--diverge-ratio 0: only non-finite losses";
  // A model that knows its text by heart (running 0.05) is held to 3 x ln V, not to 3 x 0.05.
  EXPECT_EQ(loss_verdict(6.0, 0.05, lnv, 3.0), "");
}

TEST(Guard, RunningLossIsAnExponentialAverage) {
  EXPECT_EQ(running_loss_after(0.0, 7.0), 7.0);  // the first step starts it
  EXPECT_DOUBLE_EQ(running_loss_after(5.0, 7.0), 5.0 + kRunningWeight * 2.0);
}

// Every weights file in the run directory (checkpoint, best, average) holds finite numbers only.
void expect_only_finite_weights(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".safetensors") continue;
    SCOPED_TRACE(e.path().string());
    for (const auto& [name, t] : load_safetensors(e.path().string()).tensors)
      EXPECT_TRUE(all_finite(t.values.data(), static_cast<int64_t>(t.values.size()))) << name;
  }
}

std::vector<nlohmann::json> records(const std::string& run, const std::string& type) {
  std::vector<nlohmann::json> out;
  std::istringstream in(path_exists(RunPaths{run}.metrics()) ? read_file(RunPaths{run}.metrics(), "metrics") : "");
  for (std::string line; std::getline(in, line);)
    if (auto j = nlohmann::json::parse(line); j.at("type") == type) out.push_back(j);
  return out;
}

class Diverging : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found in ./data or ../shared/data";
    dir_ = test_util::make_temp_dir("guard-test");
    test_util::write_ptb_slice(dir_, 300, 60);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  // A tiny LSTM at a rate that explodes its weights within a step or two (no clipping).
  Config config(const std::string& out) const {
    Config c = test_util::slice_config(dir_, out);
    c.cell = Cell::Lstm;
    c.hidden = c.embed = 16;
    c.batch = 4;
    c.bptt = 7;
    c.eval_batch = 3;
    c.epochs = 1;
    c.lr = 1e6;
    c.clip = 0;
    c.threads = 1;
    c.progress_seconds = 1000;
    return c;
  }
  std::string dir_;
};

// --lr 1e6 --clip 0: rolls back --max-rollbacks times to the start (no weights pass the guard, so no checkpoint
// is ever written), then stops with one line; the new run's directory goes with it.
TEST_F(Diverging, RollsBackThenStopsLeavingNothing) {
  Config c = config("run");
  c.checkpoint_steps = 1;
  const std::string err = test_util::user_error([&] { run_training(c); });
  EXPECT_NE(err.find("training diverged at step 2"), std::string::npos) << err;
  EXPECT_NE(err.find("after 3 rollbacks (--max-rollbacks 3)"), std::string::npos) << err;
  EXPECT_NE(err.find("no checkpoint was written (the run's files in " + c.out + " are removed)"), std::string::npos)
      << err;
  EXPECT_FALSE(path_exists(c.out));
}

// A rate that trains a step or two before it explodes (1e6 / 2^16): with a checkpoint every step, the guard
// refuses the save of the weights whose next loss is far above the running loss.
TEST_F(Diverging, StopNamesTheStepAndTheLastGoodCheckpoint) {
  Config c = config("run");
  c.lr = std::ldexp(1e6, -16);
  c.checkpoint_steps = 1;
  c.on_diverge = OnDiverge::Stop;
  const std::string err = test_util::user_error([&] { run_training(c); });
  EXPECT_NE(err.find("training diverged at step 3"), std::string::npos) << err;
  EXPECT_NE(err.find("--on-diverge stop"), std::string::npos) << err;
  EXPECT_NE(err.find(c.out + " holds the last good checkpoint, of step 1"), std::string::npos) << err;
  EXPECT_EQ(load_safetensors(RunPaths{c.out}.model()).metadata.at("manylm.step"), "1");
  EXPECT_TRUE(records(c.out, "rollback").empty());
  expect_only_finite_weights(c.out);
}

// The same rate with rollbacks allowed: back to the checkpoint of step 1 at half the rate (and again if need be),
// recorded in metrics.jsonl and in the state; stopped after the rollback and resumed, the run ends bit-identical to
// the uninterrupted one.
TEST_F(Diverging, RollsBackToTheLastCheckpointAndResumesBitIdentically) {
  Config full = config("full");
  full.lr = std::ldexp(1e6, -16);
  full.checkpoint_steps = 1;
  full.max_rollbacks = 40;
  full.max_steps = 30;
  const TrainResult rf = run_training(full);
  ASSERT_GE(rf.rollbacks, 1);
  const auto rb = records(full.out, "rollback");
  ASSERT_EQ(static_cast<int64_t>(rb.size()), rf.rollbacks);
  EXPECT_EQ(rb[0].at("step").get<int64_t>(), 1) << rb[0].dump();
  EXPECT_EQ(rb[0].at("diverged_at").get<int64_t>(), 3) << rb[0].dump();
  EXPECT_EQ(rb[0].at("lr").get<double>(), full.lr / 2);
  expect_only_finite_weights(full.out);
  Config part = full;
  part.out = dir_ + "/part";
  part.max_steps = 15;
  const TrainResult rp = run_training(part);
  ASSERT_EQ(rp.rollbacks, rf.rollbacks) << "the test needs every rollback before step 15";
  Config resumed = config_from_json_file(part.out + "/config.json");
  resumed.resume = part.out;
  resumed.max_steps = 30;
  const TrainResult rr = run_training(resumed);
  EXPECT_EQ(rr.rollbacks, rf.rollbacks);
  EXPECT_EQ(rr.steps, 30);
  EXPECT_EQ(rr.test_ppl, rf.test_ppl);
  for (const char* f : {"model.safetensors", "state.safetensors"}) {
    const auto a = load_safetensors(full.out + "/" + f), b = load_safetensors(part.out + "/" + f);
    for (const auto& [name, t] : a.tensors)
      EXPECT_EQ(0, std::memcmp(t.values.data(), b.tensors.at(name).values.data(), t.values.size() * sizeof(float)))
          << f << " " << name;
    if (!a.metadata.count("manylm.train_state")) continue;
    auto sa = nlohmann::json::parse(a.metadata.at("manylm.train_state"));
    auto sb = nlohmann::json::parse(b.metadata.at("manylm.train_state"));
    for (const char* timed : {"epoch_seconds", "train_seconds"}) sa.erase(timed), sb.erase(timed);
    EXPECT_EQ(sa, sb);
    EXPECT_EQ(sa.at("rollbacks").get<int64_t>(), rf.rollbacks);
  }
}

// Enough rollbacks let the rate fall to one whose steps pass the guard (not necessarily one that trains well: the
// rule refuses jumps). Before any checkpoint each went back to the initial weights, derived again: the run is
// then, bit for bit, the run started at the rate it ended with.
TEST_F(Diverging, RollbacksBeforeTheFirstCheckpointEqualTheRunAtTheHalvedRate) {
  Config c = config("rolled");
  c.max_rollbacks = 40;
  const TrainResult r = run_training(c);
  ASSERT_GT(r.rollbacks, 3);
  EXPECT_TRUE(std::isfinite(r.test_ppl));
  const auto rb = records(c.out, "rollback");
  ASSERT_EQ(static_cast<int64_t>(rb.size()), r.rollbacks);
  for (const auto& j : rb) EXPECT_EQ(j.at("step").get<int64_t>(), 0) << j.dump();
  expect_only_finite_weights(c.out);
  Config ref = config("ref");
  ref.lr = std::ldexp(c.lr, static_cast<int>(-r.rollbacks));
  const TrainResult rr = run_training(ref);
  EXPECT_EQ(rr.rollbacks, 0);
  EXPECT_EQ(rr.test_ppl, r.test_ppl);
  EXPECT_EQ(rr.steps, r.steps);
  const auto a = load_safetensors(RunPaths{c.out}.model()).tensors,
             b = load_safetensors(RunPaths{ref.out}.model()).tensors;
  for (const auto& [name, t] : a)
    EXPECT_EQ(0, std::memcmp(t.values.data(), b.at(name).values.data(), t.values.size() * sizeof(float))) << name;
}

// Through the binary: `train --lr 1e6 --clip 0` on a tiny LSTM ends with exit 2, the rollbacks on stderr and the
// error as the last line, nothing on stdout, no run directory; eval of a run with a NaN weight is refused (exit 2,
// one line) by cli_test.cc's NonFiniteWeightsAreRefused.
class CliGuard : public cli_test::CliTest {
 public:
  cli_test::Result run_cmd(const std::string& command, const cli_test::Opts& opts) const { return run(command, opts); }
};
using test_util::read_bytes;
using test_util::write_bytes;

TEST_F(CliGuard, HugeRateRollsBackThenExits2) {
  const std::string out = dir_ + "/run";
  const cli_test::Result r =
      run("train",
          with(train_opts(suite_),
               {{"--cell", "lstm"}, {"--lr", "1e6"}, {"--clip", "0"}, {"--checkpoint-steps", "1"}, {"--out", out}}));
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(r.out, "");
  std::vector<std::string> lines;
  std::istringstream err(r.err);
  for (std::string l; std::getline(err, l);) lines.push_back(l);
  ASSERT_FALSE(lines.empty());
  int rollbacks = 0;
  for (const auto& l : lines) rollbacks += l.rfind("diverged at step 2", 0) == 0;
  EXPECT_EQ(rollbacks, 3) << r.err;
  EXPECT_EQ(lines.back().rfind("manylm: error: training diverged at step 2", 0), 0u) << r.err;
  EXPECT_NE(lines.back().find("after 3 rollbacks"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out)) << "a run that never passed the guard left its directory";
  // --on-diverge stop: the one error line and nothing else after the run's first line.
  const cli_test::Result s = run(
      "train", with(train_opts(suite_),
                    {{"--cell", "lstm"}, {"--lr", "1e6"}, {"--clip", "0"}, {"--on-diverge", "stop"}, {"--out", out}}));
  EXPECT_EQ(s.status, 2) << s.err;
  EXPECT_NE(s.err.find("\nmanylm: error: training diverged at step 2"), std::string::npos) << s.err;
  EXPECT_EQ(s.err.find("diverged at step 2 ("), std::string::npos) << "no rollback with stop: " << s.err;
  EXPECT_FALSE(fs::exists(out));
}

// A file-size limit (RLIMIT_FSIZE, its signal ignored) for the commands run while it lives: a write beyond `bytes`
// fails (EFBIG), as on a full disk (ENOSPC).
struct FileSizeLimit {
  rlimit old{};
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit l{bytes, old.rlim_max};
    ::setrlimit(RLIMIT_FSIZE, &l);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, SIG_DFL);
  }
};

// Names in `dir` that a failed or dead writer would leave: temporary files, .next halves, set-up directories.
std::vector<std::string> leftovers(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.find(".tmp.") != std::string::npos || n.ends_with(".next") || n.find(".setup-") != std::string::npos)
      out.push_back(n);
  }
  return out;
}

// A run directory is made whole or not at all: set-up failing while writing config.json (a disk that is full)
// leaves no directory (a new one) or the directory as it was (one that existed), and nothing temporary.
TEST_F(CliGuard, FailedSetUpLeavesNoHalfMadeRun) {
  const std::string config = read_bytes(suite_ + "/word8/config.json");
  ASSERT_GT(config.size(), 1200u);
  const std::string fresh = dir_ + "/fresh", existing = dir_ + "/existing";
  fs::create_directories(existing);
  for (const std::string& out : {fresh, existing}) {
    SCOPED_TRACE(out);
    cli_test::Result r;
    {
      FileSizeLimit limit(1000);  // vocab.json (12 words) fits, config.json does not
      r = run("train", with(train_opts(suite_), {{"--out", out}}));
    }
    cli_test::expect_user_error(r, {"config.json", "write error"});
    EXPECT_EQ(fs::exists(out), out == existing);
    if (out == existing) EXPECT_TRUE(cli_test::snapshot(out).empty()) << "files left in " << out;
    EXPECT_TRUE(leftovers(dir_).empty()) << leftovers(dir_).front();
    EXPECT_EQ(run("train", with(train_opts(suite_), {{"--out", out}})).status, 0) << "the same --out works after";
  }
}

// A save that fails half-way (the state file does not fit) leaves the previous checkpoint as it was and no .next
// file; leftovers of a dead writer (temporary files, a stale .next) are removed when the run is resumed, and when
// a new run starts in a directory holding only such leftovers.
TEST_F(CliGuard, FailedSaveAndDeadWritersLeaveNothingBehind) {
  const std::string r = dir_ + "/adam";
  ASSERT_EQ(run("train", with(train_opts(suite_), {{"--optimizer", "adam"}, {"--lr", "0.01"}, {"--out", r}})).status,
            0);
  const std::string model = read_bytes(r + "/model.safetensors"), state = read_bytes(r + "/state.safetensors");
  ASSERT_GT(state.size(), model.size() + 2048) << "Adam's moments make the state larger than the weights";
  cli_test::Result failed;
  {
    FileSizeLimit limit(model.size() + 1024);
    failed = run("train", {{"--resume", r}, {"--epochs", "2"}});
  }
  EXPECT_EQ(failed.status, 2) << failed.err;
  EXPECT_NE(failed.err.find("state.safetensors"), std::string::npos) << failed.err;
  EXPECT_EQ(read_bytes(r + "/model.safetensors"), model);
  EXPECT_EQ(read_bytes(r + "/state.safetensors"), state);
  EXPECT_TRUE(leftovers(r).empty()) << leftovers(r).front();
  for (const char* f : {"model.safetensors.tmp.99999", "metrics.jsonl.tmp.7", "state.safetensors.next"})
    write_bytes(r + "/" + f, "left by a writer that died");
  EXPECT_EQ(run("train", {{"--resume", r}, {"--epochs", "2"}}).status, 0);
  EXPECT_TRUE(leftovers(r).empty()) << leftovers(r).front();
  const std::string dead = dir_ + "/dead";
  fs::create_directories(dead);
  for (const char* f : {".lock", "vocab.json", "model.safetensors.next", "config.json.tmp.12"})
    write_bytes(dead + "/" + f, "left by a set-up that died");
  EXPECT_EQ(run("train", with(train_opts(suite_), {{"--out", dead}})).status, 0);
  EXPECT_TRUE(leftovers(dead).empty()) << leftovers(dead).front();
  EXPECT_TRUE(fs::exists(dead + "/model.safetensors"));
}

// Rewrites a safetensors file's JSON header with `edit`, keeping its data section.
template <class F>
void rewrite_header(const std::string& path, F&& edit) {
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
  edit(h);
  const std::string text = h.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  write_bytes(path, out + text + bytes.substr(8 + n));
}

// Resume, eval and sample refuse the run with exit 2, one line naming each needle, and change nothing in it.
void expect_refused(CliGuard& t, const std::string& run_dir, std::initializer_list<std::string> needles) {
  const cli_test::Files before = cli_test::snapshot(run_dir);
  for (const auto& [cmd, opts] :
       std::vector<std::pair<std::string, cli_test::Opts>>{{"train", {{"--resume", run_dir}, {"--epochs", "2"}}},
                                                           {"eval", {{"--model", run_dir}}},
                                                           {"sample", {{"--model", run_dir}, {"--length", "5"}}}}) {
    SCOPED_TRACE(cmd);
    cli_test::expect_user_error(t.run_cmd(cmd, opts), needles);
    EXPECT_EQ(cli_test::snapshot(run_dir), before);
  }
}

// Checkpoints are checked, not trusted: a flipped byte, swapped vocabulary words, a relu model's weights in a tanh
// run, a shape of 2^62+1 and a training state out of range are each one error line (exit 2); a file written
// before checksums loads with one warning line.
TEST_F(CliGuard, DamagedOrForeignCheckpointsAreRefused) {
  const std::string r = copy_run("word8"), model = r + "/model.safetensors", state = r + "/state.safetensors";
  const std::string good_model = read_bytes(model), good_state = read_bytes(state);
  std::string flipped = good_model;
  flipped[flipped.size() - 9] ^= 0x10;
  write_bytes(model, flipped);
  expect_refused(*this, r, {model, "does not match its CRC-32C"});
  write_bytes(model, good_model);
  // Two words of the vocabulary swapped.
  const std::string good_vocab = read_bytes(r + "/vocab.json");
  nlohmann::json v = nlohmann::json::parse(good_vocab);
  std::swap(v["words"][3], v["words"][4]);
  write_bytes(r + "/vocab.json", v.dump());
  expect_refused(*this, r, {model, "another vocabulary"});
  write_bytes(r + "/vocab.json", good_vocab);
  // The weights of a relu run (same shapes) in this tanh run.
  const std::string relu = dir_ + "/relu";
  ASSERT_EQ(run("train", with(train_opts(suite_), {{"--activation", "relu"}, {"--out", relu}})).status, 0);
  fs::copy_file(relu + "/model.safetensors", model, fs::copy_options::overwrite_existing);
  expect_refused(*this, r, {model, "another model (activation \"relu\""});
  write_bytes(model, good_model);
  // A shape of 2^62 + 1 (its byte count wraps to 4 in 64 bits).
  rewrite_header(model, [](nlohmann::json& h) { h["decoder.bias"]["shape"] = {4611686018427387905ull}; });
  expect_refused(*this, r, {model, "decoder.bias", "larger than the file's data"});
  write_bytes(model, good_model);
  // A training state out of range, in a file without checksums (as an older manylm wrote them).
  rewrite_header(state, [](nlohmann::json& h) {
    auto st = nlohmann::json::parse(h["__metadata__"]["manylm.train_state"].get<std::string>());
    st["window"] = 99999999;
    h["__metadata__"]["manylm.train_state"] = st.dump();
    h["__metadata__"].erase("manylm.checksums");
  });
  cli_test::expect_user_error(run("train", {{"--resume", r}, {"--epochs", "2"}}), {state, "'window' is 99999999"});
  write_bytes(state, good_state);
  // Files without checksums (an older manylm's) load, with one warning line.
  rewrite_header(model, [](nlohmann::json& h) { h["__metadata__"].erase("manylm.checksums"); });
  const cli_test::Result e = run("eval", {{"--model", r}});
  EXPECT_EQ(e.status, 0) << e.err;
  EXPECT_EQ(e.err,
            "manylm: warning: " + model + ": written without checksums (by an older manylm): loaded unverified\n");
}

}  // namespace
}  // namespace manylm
