// train_test.cc — the training loop as a whole, on slices of the real Penn Treebank: a resumed run is
// bit-identical to an uninterrupted one (stopped mid-epoch and at an epoch end), SIGINT saves a
// checkpoint that resumes, the schedules, the optimizers against their formulas, and the safetensors
// file round trip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <stdlib.h>
#include <sys/wait.h>
#include "test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/gemm.h"
#include "core/io.h"
#include "core/kernels.h"
#include "core/safetensors.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/memory.h"
#include "train/optimizer.h"
#include "train/options.h"
#include "train/trainer.h"

namespace manylm {
namespace {

using test_util::ptb_path;

// A temporary directory with the first `lines` lines of PTB's train/valid/test.
struct Corpus {
  std::string dir;
  explicit Corpus(int lines) {
    char tmpl[] = "/tmp/manylm-train-test-XXXXXX";
    dir = mkdtemp(tmpl);
    test_util::write_ptb_slice(dir, lines, lines / 4);
  }
  ~Corpus() { std::system(("rm -rf " + dir).c_str()); }
  Config config(const std::string& out) const {
    Config c = test_util::slice_config(dir, out);
    c.hidden = c.embed = 16;
    c.layers = 2;
    c.batch = 4;
    c.bptt = 7;
    c.eval_batch = 3;
    c.epochs = 3;
    c.lr = 0.5;
    c.decay_after = 1;
    c.threads = 1;
    c.progress_seconds = 1000;
    return c;
  }
};

std::map<std::string, SafeTensor> tensors(const std::string& path) { return load_safetensors(path).tensors; }

void expect_bit_identical(const std::string& a, const std::string& b) {
  auto ta = tensors(a), tb = tensors(b);
  ASSERT_EQ(ta.size(), tb.size());
  for (auto& [name, t] : ta) {
    ASSERT_EQ(t.shape, tb[name].shape) << name;
    ASSERT_EQ(0, std::memcmp(t.values.data(), tb[name].values.data(), t.values.size() * 4)) << name << " differs";
  }
}

// A slice small enough to overfit within a few epochs at a constant rate (the best validation epoch comes
// before the last).
Config overfitting_config(const Corpus& corpus, const std::string& out) {
  Config c = corpus.config(out);
  c.cell = Cell::Lstm;
  c.hidden = c.embed = 64;
  c.schedule = Schedule::Constant;
  c.lr = 1.0;
  return c;
}

class Train : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ptb_path("train.txt").empty()) GTEST_SKIP() << "PTB not found in ./data or ../shared/data";
  }
};

struct ResumeCase {
  const char* cell;
  const char* optimizer;
  double dropout;
  double lr;
  const char* schedule = "step";  // plateau: with --keep-best, and a validation loss that rises in epoch 2
  bool shuffle = false;           // --shuffle sentences (blocks of at least 40 tokens: a new order each epoch)
};
class Resume : public Train, public ::testing::WithParamInterface<ResumeCase> {
 protected:
  Config config(const Corpus& corpus, const std::string& out) {
    Config c = corpus.config(out);
    c.cell = parse_cell(GetParam().cell);
    c.optimizer = parse_name<OptimizerKind>(GetParam().optimizer, "--optimizer");
    c.dropout = GetParam().dropout;
    c.lr = GetParam().lr;
    c.weight_decay = c.optimizer == OptimizerKind::Sgd ? 0.0 : 0.01;
    c.schedule = parse_name<Schedule>(GetParam().schedule, "--schedule");
    c.keep_best = c.schedule == Schedule::Plateau;
    if (GetParam().shuffle) c.shuffle = Shuffle::Sentences, c.shuffle_block = 40;
    return c;
  }
};

TEST_P(Resume, IsBitIdentical) {
  Corpus corpus(300);
  Config full = config(corpus, "full");
  const TrainResult rf = run_training(full);
  ASSERT_GT(rf.steps, 20);
  const int64_t per_epoch = rf.steps / full.epochs;
  if (full.keep_best) {  // the resumed runs must restore the best loss: it divides the rate here
    std::ifstream metrics(RunPaths{full.out}.metrics());
    std::vector<double> lrs;
    for (std::string line; std::getline(metrics, line);)
      if (const auto j = nlohmann::json::parse(line); j.at("type") == "valid") lrs.push_back(j.at("lr").get<double>());
    ASSERT_EQ(lrs.size(), 3u);
    ASSERT_EQ(lrs[1], full.lr);
    ASSERT_LT(lrs[2], full.lr) << "epoch 2 must not be a new best for this case to test the plateau's state";
  }
  // Stop mid-epoch (step 5 of epoch 2) and exactly at the end of epoch 1, then resume to the end.
  for (int64_t stop : {per_epoch + 5, per_epoch}) {
    Config part = config(corpus, "part" + std::to_string(stop));
    part.max_steps = stop;
    const TrainResult rp = run_training(part);
    EXPECT_EQ(rp.steps, stop);
    Config resumed = config_from_json_file(part.out + "/config.json");
    resumed.resume = part.out;
    resumed.max_steps = 0;
    const TrainResult rr = run_training(resumed);
    EXPECT_EQ(rr.steps, rf.steps);
    expect_bit_identical(full.out + "/model.safetensors", part.out + "/model.safetensors");
    expect_bit_identical(full.out + "/state.safetensors", part.out + "/state.safetensors");
    if (full.keep_best) expect_bit_identical(RunPaths{full.out}.best(), RunPaths{part.out}.best());
    EXPECT_EQ(rr.test_ppl, rf.test_ppl);
    EXPECT_EQ(rr.valid_ppl, rf.valid_ppl);
    // Time accounting survives the resume: each epoch's training seconds (the epoch cut by the stop included)
    // add up to the run's total, which is more than the resumed process spent on its own steps.
    std::ifstream metrics(RunPaths{part.out}.metrics());
    double epochs_sum = 0, total = 0;
    int valid_records = 0;
    for (std::string line; std::getline(metrics, line);) {
      const auto j = nlohmann::json::parse(line);
      if (j.at("type") != "valid") continue;
      ++valid_records;
      EXPECT_GT(j.at("epoch_train_seconds").get<double>(), 0.0);
      epochs_sum += j.at("epoch_train_seconds").get<double>();
      total = j.at("train_seconds").get<double>();
    }
    EXPECT_EQ(valid_records, full.epochs);
    EXPECT_NEAR(epochs_sum, total, 1e-9 * total);
    EXPECT_NEAR(rr.train_seconds, total, 1e-9 * total);
    EXPECT_GT(rr.train_seconds, rp.train_seconds);
  }
}

INSTANTIATE_TEST_SUITE_P(Train, Resume,
                         ::testing::Values(ResumeCase{"elman", "sgd", 0.0, 0.5},
                                           ResumeCase{"lstm", "adamw", 0.3, 0.003},
                                           ResumeCase{"gru", "adam", 0.2, 0.003},
                                           ResumeCase{"lstm", "sgd", 0.0, 3.0, "plateau"},
                                           ResumeCase{"lstm", "sgd", 0.2, 1.0, "step", true}),
                         [](const auto& info) {
                           return std::string(info.param.cell) + "_" + info.param.optimizer + "_" +
                                  info.param.schedule + (info.param.shuffle ? "_shuffled" : "");
                         });

// --shuffle sentences reads the same tokens as the text as it is, in another order every epoch: the same steps, other
// losses and weights; the seed picks the order (two seeds' runs differ even from the same weights, --init-from).
TEST_F(Train, ShuffleSentencesReadsTheSameTokensInAnotherOrder) {
  Corpus corpus(300);
  auto config = [&](const std::string& out) {
    Config c = corpus.config(out);
    c.epochs = 2;
    c.shuffle = Shuffle::Sentences;
    c.shuffle_block = 30;
    return c;
  };
  Config plain = config("plain");
  plain.shuffle = Shuffle::None;
  const TrainResult rp = run_training(plain);
  const Config shuffled = config("shuffled");
  const TrainResult rs = run_training(shuffled);
  EXPECT_EQ(rs.steps, rp.steps);
  EXPECT_NE(rs.train_ppl, rp.train_ppl);
  EXPECT_NE(read_file(plain.out + "/model.safetensors", "a"), read_file(shuffled.out + "/model.safetensors", "b"));
  EXPECT_GT(rs.input_seconds, 0);
  EXPECT_LT(rs.input_share, 0.5);
  Config seed1 = config("seed1"), seed2 = config("seed2");
  seed1.init_from = seed2.init_from = plain.out + "/model.safetensors";
  seed2.seed = seed1.seed + 1;
  EXPECT_NE(run_training(seed1).train_ppl, run_training(seed2).train_ppl);
  // Character mode cuts sentences at newlines; a text without one has no sentence to shuffle (one clear line).
  Config chars = config("chars");
  chars.tokens = TokenMode::Char;
  chars.max_steps = 3;
  EXPECT_EQ(run_training(chars).steps, 3);
  const std::string flat = corpus.dir + "/flat.txt";
  write_file_atomic(flat, std::string(5000, 'a') + "b");
  chars.train = chars.valid = chars.test = flat;
  chars.out = corpus.dir + "/flat";
  try {
    run_training(chars);
    ADD_FAILURE() << "a text without line ends was shuffled";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--shuffle sentences"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(flat), std::string::npos) << e.what();
  }
  EXPECT_FALSE(path_exists(chars.out)) << "nothing written";
}

TEST_F(Train, SigintSavesACheckpointThatResumes) {
  Corpus corpus(3000);
  Config c = corpus.config("sig");
  c.epochs = 50;
  const std::string out = c.out;
  std::string cmd = std::string("timeout -s INT 2 ") + MANYLM_BINARY + " train --train " + c.train + " --valid " +
                    c.valid + " --test " + c.test + " --cache-dir " + c.cache_dir + " --out " + out +
                    " --hidden 16 --embed 16 --batch 4 --bptt 7 --epochs 50 --threads 1 --json > " + out +
                    ".json 2>/dev/null";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 124) << "timeout should have interrupted the run";
  RunPaths run{out};
  ASSERT_TRUE(path_exists(run.model()));
  ASSERT_TRUE(path_exists(run.state()));
  const std::string step = load_safetensors(run.state()).metadata.at("manylm.step");
  EXPECT_GT(std::stoll(step), 0);
  EXPECT_EQ(step, load_safetensors(run.model()).metadata.at("manylm.step"));
  // Its result says so, with the validation perplexity of the last finished epoch (the last "valid" record of
  // metrics.jsonl; epochs take milliseconds here, but on a loaded machine none may have finished: then 0).
  const auto interrupted = nlohmann::json::parse(read_file(out + ".json", "result"));
  EXPECT_TRUE(interrupted.at("interrupted").get<bool>());
  EXPECT_EQ(interrupted.at("steps").get<int64_t>(), std::stoll(step));
  double last_valid = 0;
  int64_t valid_records = 0;
  std::istringstream metrics(path_exists(run.metrics()) ? read_file(run.metrics(), "metrics") : "");
  for (std::string line; std::getline(metrics, line);)
    if (const auto j = nlohmann::json::parse(line); j.at("type") == "valid") {
      last_valid = j.at("valid_ppl").get<double>();
      ++valid_records;
    }
  EXPECT_EQ(interrupted.at("epochs").get<int64_t>(), valid_records);
  EXPECT_NEAR(interrupted.at("valid_ppl").get<double>(), last_valid, 1e-9 * last_valid);
  if (valid_records > 0) {
    EXPECT_GT(interrupted.at("train_ppl").get<double>(), 1.0);
  }
  // The interrupted run continues with --resume for a few more steps.
  std::string resume = std::string(MANYLM_BINARY) + " train --resume " + out + " --max-steps " +
                       std::to_string(std::stoll(step) + 3) + " --json > " + out + "/result.json 2>/dev/null";
  ASSERT_EQ(0, std::system(resume.c_str()));
  EXPECT_NE(read_file(out + "/result.json", "result").find("\"steps\":" + std::to_string(std::stoll(step) + 3)),
            std::string::npos);
}

// The model and state files are replaced as a pair: a save interrupted between its two renames is completed
// on resume, one interrupted earlier is discarded (the previous pair is whole), a stale state.next goes.
TEST(Checkpoint, InterruptedSaveIsCompletedOrDiscardedOnResume) {
  char tmpl[] = "/tmp/manylm-ckpt-test-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const RunPaths run{dir}, other{dir + "/other"};
  make_directories(other.dir);
  ModelShape s;
  s.vocab = 7, s.embed = 3, s.hidden = 4, s.layers = 1;
  Arena p(param_table(s)), h(state_table(s, 2));
  auto save = [&](const RunPaths& r, int64_t step, float value) {
    std::fill(p.flat().begin(), p.flat().end(), value);
    std::fill(h.flat().begin(), h.flat().end(), -value);
    TrainState st;
    st.step = step;
    save_checkpoint(r, p, {&h}, st, "{}", false);
  };
  auto load = [&] {
    const TrainState st = load_checkpoint(run, p, {&h});
    EXPECT_EQ(p.flat()[0], static_cast<float>(st.step));
    EXPECT_EQ(h.flat()[0], -static_cast<float>(st.step));
    return st.step;
  };
  auto copy = [](const std::string& from, const std::string& to) { write_file_atomic(to, read_file(from, "copy")); };
  save(run, 5, 5.0f);
  EXPECT_FALSE(path_exists(run.model() + ".next"));
  EXPECT_FALSE(path_exists(run.state() + ".next"));
  EXPECT_EQ(recover_checkpoint(run), "");
  // Step 9's save, stopped after the model's rename: model at 9, state at 5, state.next at 9.
  save(other, 9, 9.0f);
  copy(other.model(), run.model());
  copy(other.state(), run.state() + ".next");
  EXPECT_THROW(load_checkpoint(run, p, {&h}), UserError) << "a mismatched pair must not load";
  EXPECT_NE(recover_checkpoint(run).find("completed"), std::string::npos);
  EXPECT_FALSE(path_exists(run.state() + ".next"));
  EXPECT_EQ(load(), 9);
  // A later save stopped before the first rename (a partial state.next): both .next files go.
  write_file_atomic(run.model() + ".next", "partial");
  write_file_atomic(run.state() + ".next", "part");
  EXPECT_NE(recover_checkpoint(run).find("discarded"), std::string::npos);
  EXPECT_FALSE(path_exists(run.model() + ".next"));
  EXPECT_FALSE(path_exists(run.state() + ".next"));
  EXPECT_EQ(load(), 9);
  // A state.next of another step than the model's (stale) is removed.
  save(other, 4, 4.0f);
  copy(other.state(), run.state() + ".next");
  EXPECT_EQ(recover_checkpoint(run), "");
  EXPECT_FALSE(path_exists(run.state() + ".next"));
  EXPECT_EQ(load(), 9);
  std::system(("rm -rf " + dir).c_str());
}

// A run that stopped before its first checkpoint (config and vocabulary only) resumes from step 0, to the
// same weights as the uninterrupted run; --lr cannot change and --out cannot be given on resume.
TEST_F(Train, ResumeBeforeTheFirstCheckpointStartsAtStepZero) {
  Corpus corpus(400);
  Config c = corpus.config("run");
  c.epochs = 1;
  const TrainResult full = run_training(c);
  const RunPaths run{c.out};
  const std::string model = read_file(run.model(), "model");
  std::remove(run.model().c_str());
  std::remove(run.state().c_str());
  Config resumed = config_from_json_file(run.config());
  resumed.resume = c.out;
  const TrainResult r = run_training(resumed);
  EXPECT_EQ(r.steps, full.steps);
  EXPECT_EQ(read_file(run.model(), "model"), model);
  EXPECT_EQ(r.test_ppl, full.test_ppl);
  Config lr = resumed;
  lr.lr = 2 * c.lr;
  EXPECT_THROW(run_training(lr), UserError);
  Config out = resumed;
  out.out = corpus.dir + "/elsewhere";
  EXPECT_THROW(run_training(out), UserError);
  EXPECT_FALSE(path_exists(out.out));
}

// --average-from: average.safetensors holds the mean of the weights after each update since that epoch —
// checked against the same run without averaging, stopped after each of those updates in turn (a chain of
// resumes, each bit-identical) — and the run scores it; the raw trajectory is not touched.
TEST_F(Train, AverageIsTheMeanOfTheWeightsAfterEachUpdate) {
  Corpus corpus(60);
  Config c = corpus.config("avg");
  c.cell = Cell::Lstm;
  c.dropout = 0.2;
  c.epochs = 2;
  c.average_from = 2;
  const TrainResult r = run_training(c);
  const int64_t per_epoch = r.steps / 2;
  ASSERT_GE(per_epoch, 5);
  EXPECT_EQ(r.averaged_updates, per_epoch);
  const RunPaths run{c.out};
  EXPECT_EQ(load_run_model(c.out).weights, run.average());
  EXPECT_EQ(load_run_model(c.out, "average").weights, run.average());
  double last_valid = 0;
  std::istringstream metrics(read_file(run.metrics(), "metrics"));
  for (std::string line; std::getline(metrics, line);)
    if (auto j = nlohmann::json::parse(line); j["type"] == "valid") {
      EXPECT_EQ(j.contains("averaged_updates"), j["epoch"] == 2);
      last_valid = j["valid_ppl"].get<double>();
    }
  EXPECT_EQ(r.valid_ppl, last_valid) << "the result scores the averaged weights that epoch 2 validated";

  Config chain = c;  // the same run without averaging
  chain.out = corpus.dir + "/chain";
  chain.average_from = 0;
  chain.max_steps = per_epoch;
  run_training(chain);
  std::map<std::string, std::vector<double>> sum;
  for (int64_t k = per_epoch + 1; k <= 2 * per_epoch; ++k) {
    Config next = config_from_json_file(chain.out + "/config.json");
    next.resume = chain.out;
    next.max_steps = k;
    ASSERT_EQ(run_training(next).steps, k);
    for (auto& [name, t] : tensors(RunPaths{chain.out}.model())) {
      auto& s = sum[name];
      s.resize(t.values.size());
      for (size_t i = 0; i < s.size(); ++i) s[i] += t.values[i];
    }
  }
  expect_bit_identical(run.model(), RunPaths{chain.out}.model());
  double worst = 0;
  for (auto& [name, t] : tensors(run.average())) {
    ASSERT_EQ(sum[name].size(), t.values.size()) << name;
    for (size_t i = 0; i < t.values.size(); ++i)
      worst = std::max(worst, std::abs(t.values[i] - sum[name][i] / static_cast<double>(per_epoch)));
  }
  EXPECT_LT(worst, 1e-6);
  EXPECT_FALSE(path_exists(RunPaths{chain.out}.average()));
}

// --average-from can be set or changed by a resume while it has averaged nothing (the run is then the one
// it would have been with that setting from the start, bit for bit, and config.json records it), not
// afterwards; a run resumed mid-averaging is bit-identical, the running mean included.
TEST_F(Train, AverageFromChangesOnResumeOnlyBeforeAveragingStarts) {
  Corpus corpus(60);
  Config full = corpus.config("full");
  full.average_from = 2;
  const TrainResult rf = run_training(full);
  const int64_t per_epoch = rf.steps / full.epochs;
  ASSERT_GE(per_epoch, 5);
  EXPECT_EQ(rf.averaged_updates, 2 * per_epoch);
  auto resume = [&](const Config& part, int64_t average_from) {
    Config r = config_from_json_file(part.out + "/config.json");
    r.resume = part.out;
    r.max_steps = 0;
    r.average_from = average_from;
    return r;
  };
  for (int64_t stop : {per_epoch, per_epoch + 3}) {
    Config part = corpus.config("part" + std::to_string(stop));
    part.average_from = stop == per_epoch ? 0 : 2;  // at the end of epoch 1: not averaging yet
    part.max_steps = stop;
    run_training(part);
    if (stop > per_epoch) {
      EXPECT_THROW(run_training(resume(part, 3)), UserError);
      EXPECT_THROW(run_training(resume(part, 0)), UserError);
    }
    const TrainResult rr = run_training(resume(part, 2));
    EXPECT_EQ(rr.test_ppl, rf.test_ppl);
    EXPECT_EQ(rr.averaged_updates, rf.averaged_updates);
    EXPECT_EQ(config_from_json_file(part.out + "/config.json").average_from, 2);
    for (auto f : {&RunPaths::model, &RunPaths::state, &RunPaths::average})
      expect_bit_identical((RunPaths{full.out}.*f)(), (RunPaths{part.out}.*f)());
  }
}

// --average-nonmono N: averaging starts after the first epoch whose best validation loss is N epochs old
// (on a slice that overfits), and a run stopped at the end of that epoch resumes bit-identically (the
// trigger's epoch is in the checkpoint).
TEST_F(Train, AverageNonmonoStartsOnceTheBestIsOldEnough) {
  Corpus corpus(400);
  Config c = overfitting_config(corpus, "run");
  c.epochs = 6;  // the trigger fires after epoch 4 here: averaging in epochs 5 and 6
  c.average_nonmono = 2;
  const TrainResult r = run_training(c);
  const int64_t per_epoch = r.steps / c.epochs;
  std::vector<double> raw;  // validation of the weights themselves, before averaging starts
  int64_t first_averaged = 0;
  std::istringstream metrics(read_file(RunPaths{c.out}.metrics(), "metrics"));
  for (std::string line; std::getline(metrics, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] != "valid") continue;
    if (j.contains("averaged_updates")) {
      if (first_averaged == 0) first_averaged = j["epoch"];
      EXPECT_EQ(j["averaged_updates"].get<int64_t>(), (j["epoch"].get<int64_t>() - first_averaged + 1) * per_epoch);
    } else {
      raw.push_back(j["valid_ppl"].get<double>());
    }
  }
  int64_t expected = 0;  // the epoch after the first whose best is 2 epochs old
  for (size_t e = 1; e <= raw.size() && expected == 0; ++e)
    if (e - (std::min_element(raw.begin(), raw.begin() + e) - raw.begin() + 1) >= 2) expected = e + 1;
  ASSERT_GT(expected, 0) << "the slice must overfit for the test to mean something";
  ASSERT_LE(expected, c.epochs);
  EXPECT_EQ(first_averaged, expected);
  EXPECT_EQ(raw.size(), static_cast<size_t>(expected - 1));
  EXPECT_EQ(r.averaged_updates, (c.epochs - expected + 1) * per_epoch);
  Config part = c;
  part.out = corpus.dir + "/part";
  part.max_steps = (expected - 1) * per_epoch;  // stopped at the end of the epoch that fired the trigger
  run_training(part);
  Config resumed = config_from_json_file(part.out + "/config.json");
  resumed.resume = part.out;
  resumed.max_steps = 0;
  EXPECT_EQ(run_training(resumed).test_ppl, r.test_ppl);
  for (auto f : {&RunPaths::model, &RunPaths::state, &RunPaths::average})
    expect_bit_identical((RunPaths{c.out}.*f)(), (RunPaths{part.out}.*f)());
  resumed.average_nonmono = 3;
  EXPECT_THROW(run_training(resumed), UserError);
}

// --init-from: a run that starts from another run's weights starts from exactly them (a rate of 1e-30
// leaves them bit for bit), records the file in config.json, and refuses another model's weights before
// creating its directory.
TEST_F(Train, InitFromStartsFromTheGivenWeights) {
  Corpus corpus(60);
  Config a = corpus.config("a");
  a.epochs = 1;
  run_training(a);
  Config b = corpus.config("b");
  b.epochs = 1;
  b.seed = 7;  // another random init, overwritten
  b.schedule = Schedule::Constant;
  b.lr = 1e-30;
  b.init_from = RunPaths{a.out}.model();
  run_training(b);
  expect_bit_identical(RunPaths{a.out}.model(), RunPaths{b.out}.model());
  EXPECT_EQ(config_from_json_file(RunPaths{b.out}.config()).init_from, std::filesystem::absolute(b.init_from).string());
  Config wrong = corpus.config("wrong");
  wrong.hidden = wrong.embed = 12;
  wrong.init_from = RunPaths{a.out}.model();
  EXPECT_THROW(run_training(wrong), UserError);
  EXPECT_FALSE(path_exists(wrong.out));
  Config relu = corpus.config("relu");
  relu.activation = Activation::Relu;
  relu.init_from = RunPaths{a.out}.model();
  EXPECT_THROW(run_training(relu), UserError);
  EXPECT_FALSE(path_exists(relu.out));
}

// bf16 products (fp32 accumulation and master weights) train like fp32: same perplexities within 3 %
// after 3 epochs of an LSTM, but not the same bits (so bf16 was really used).
TEST_F(Train, Bf16TrainsLikeFp32) {
  if (!__builtin_cpu_supports("avx512bf16")) GTEST_SKIP() << "no AVX512_BF16";
  Corpus corpus(2000);
  Config a = corpus.config("fp32");
  a.cell = Cell::Lstm;
  a.gemm = GemmBackend::OneDnn;
  Config b = a;
  b.out = corpus.dir + "/bf16";
  b.precision = Precision::Bf16;
  const TrainResult ra = run_training(a), rb = run_training(b);
  EXPECT_NEAR(rb.valid_ppl, ra.valid_ppl, 0.03 * ra.valid_ppl);
  EXPECT_NE(rb.valid_ppl, ra.valid_ppl);
}

// config.json holds every option: a seed above 2^63 (--seed is unsigned) used to fail in std::stoll after
// the run directory had been created.
TEST(Options, SeedAboveInt64RoundTripsThroughConfigJson) {
  char tmpl[] = "/tmp/manylm-options-test-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  Config c;
  c.seed = 18446744073709551615ull;
  write_file_atomic(dir + "/config.json", config_to_json(c));
  EXPECT_EQ(config_from_json_file(dir + "/config.json").seed, c.seed);
  std::system(("rm -rf " + dir).c_str());
}

TEST(Schedule, StepDecayFollowsZaremba) {
  Config c;
  c.schedule = Schedule::Step;
  c.lr = 1.0;
  c.decay = 2.0;
  c.decay_after = 4;
  ScheduleState s{1.0};
  std::vector<double> lrs;
  for (int e = 1; e <= 7; ++e) {
    lrs.push_back(s.lr);  // rate used by epoch e
    schedule_after_epoch(c, e, 5.0, s);
  }
  EXPECT_EQ(lrs, (std::vector<double>{1, 1, 1, 1, 0.5, 0.25, 0.125}));
}

TEST(Schedule, NewbobHalvesThenStops) {
  Config c;
  c.schedule = Schedule::Newbob;
  c.lr = 0.4;
  c.decay = 2.0;
  c.newbob_ratio = 1.01;
  ScheduleState s{0.4};
  schedule_after_epoch(c, 1, 6.0, s);
  EXPECT_EQ(s.lr, 0.4);
  schedule_after_epoch(c, 2, 5.0, s);  // big gain
  EXPECT_EQ(s.lr, 0.4);
  schedule_after_epoch(c, 3, 4.999, s);  // gain < 1%: start halving
  EXPECT_EQ(s.lr, 0.2);
  EXPECT_FALSE(s.stop);
  schedule_after_epoch(c, 4, 4.9, s);  // decaying: halve every epoch
  EXPECT_EQ(s.lr, 0.1);
  schedule_after_epoch(c, 5, 4.8995, s);  // small gain again: stop
  EXPECT_TRUE(s.stop);
}

TEST(Schedule, PlateauDividesAfterAnEpochWithoutANewBest) {
  Config c;
  c.schedule = Schedule::Plateau;
  c.lr = 20;
  c.decay = 4.0;
  ScheduleState s{20};
  std::vector<double> lrs;
  std::vector<int64_t> bests;
  for (double valid : {6.0, 5.0, 5.0, 4.0, 4.5, 4.2, 3.9}) {
    const bool best = schedule_after_epoch(c, static_cast<int64_t>(lrs.size()) + 1, valid, s);
    lrs.push_back(s.lr);  // rate for the next epoch
    if (best) bests.push_back(s.best_epoch);
  }
  // Not below the best (a tie included): divide; 4.2 after the 4.5 divides again (the best is 4.0).
  EXPECT_EQ(lrs, (std::vector<double>{20, 20, 5, 5, 1.25, 0.3125, 0.3125}));
  EXPECT_EQ(bests, (std::vector<int64_t>{1, 2, 4, 7}));
  EXPECT_EQ(s.best_valid, 3.9);
  EXPECT_FALSE(s.stop);
}

// --patience 2: the third epoch in a row without a new best divides, and the count starts again (PyTorch's
// ReduceLROnPlateau with cooldown 0); a new best in between starts it again too.
TEST(Schedule, PlateauWithPatienceWaitsForThatManyEpochs) {
  Config c;
  c.schedule = Schedule::Plateau;
  c.lr = 8;
  c.decay = 2.0;
  c.patience = 2;
  ScheduleState s{8};
  std::vector<double> lrs;
  int64_t epoch = 0;
  for (double valid : {5.0, 5.1, 5.2, 5.3, 5.0, 5.0, 5.0, 5.0, 4.0, 4.1, 4.2, 4.3})
    schedule_after_epoch(c, ++epoch, valid, s), lrs.push_back(s.lr);
  EXPECT_EQ(lrs, (std::vector<double>{8, 8, 8, 4, 4, 4, 2, 2, 2, 2, 2, 1}));
  EXPECT_EQ(s.best_epoch, 9);
  c.patience = -1;
  EXPECT_THROW(c.validate(), UserError);
}

// --keep-best on a slice small enough to overfit: best.safetensors holds the epoch of the lowest validation
// perplexity in metrics.jsonl, the result scores those weights (not the last), and eval reads them.
TEST_F(Train, KeepBestScoresTheBestEpoch) {
  Corpus corpus(400);
  Config c = overfitting_config(corpus, "run");
  c.epochs = 12;
  c.keep_best = true;
  const TrainResult r = run_training(c);
  const RunPaths run{c.out};
  std::vector<double> valid;
  std::istringstream metrics(read_file(run.metrics(), "metrics"));
  for (std::string line; std::getline(metrics, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == "valid") valid.push_back(j["valid_ppl"].get<double>());
  }
  ASSERT_EQ(valid.size(), 12u);
  const int64_t best = std::min_element(valid.begin(), valid.end()) - valid.begin() + 1;
  ASSERT_LT(best, 12) << "the slice must overfit for the test to mean something";
  EXPECT_GT(valid.back(), valid[best - 1] * 1.01);
  EXPECT_EQ(r.best_epoch, best);
  EXPECT_NEAR(r.valid_ppl, valid[best - 1], 1e-9 * valid[best - 1]);
  const LoadedModel m = load_run_model(c.out);
  EXPECT_EQ(m.weights, run.best());
  EXPECT_EQ(m.epoch, best);
  // The checkpoint keeps the last weights, for --resume.
  Arena last(m.params.table());
  load_checkpoint(run, last, {});
  EXPECT_NE(0, std::memcmp(last.data(), m.params.data(), last.size() * sizeof(float)));
  const LoadedModel l = load_run_model(c.out, "last");  // eval/sample --weights last
  EXPECT_EQ(l.weights, run.model());
  EXPECT_EQ(0, std::memcmp(last.data(), l.params.data(), last.size() * sizeof(float)));
  std::remove(run.best().c_str());
  EXPECT_EQ(load_run_model(c.out).weights, run.model());
  EXPECT_THROW(load_run_model(c.out, "best"), UserError);
  EXPECT_THROW(load_run_model(c.out, "newest"), UserError);
}

// Adam and AdamW against their textbook formulas in double, over 4 steps with weight decay.
TEST(Optimizer, AdamAndAdamWMatchTheirFormulas) {
  const Engine e(test_util::engine_options());
  for (std::string kind : {"adam", "adamw"}) {
    Config c;
    c.optimizer = parse_name<OptimizerKind>(kind, "--optimizer");
    c.weight_decay = 0.1;
    std::vector<TensorSpec> table = {{"w", {3, 5}}, {"b", {7}}};
    Arena p(table), g(table);
    Optimizer opt(c, table);
    std::vector<double> P(p.size()), M(p.size(), 0), V(p.size(), 0);
    for (size_t i = 0; i < p.size(); ++i) P[i] = p.data()[i] = 0.1f * static_cast<float>(i % 9) - 0.4f;
    for (int step = 1; step <= 4; ++step) {
      for (size_t i = 0; i < g.size(); ++i) g.data()[i] = std::sin(static_cast<float>(i * step));
      const double lr = 0.01;
      for (size_t i = 0; i < p.size(); ++i) {
        double gi = g.data()[i] + (kind == "adam" ? c.weight_decay * P[i] : 0.0);
        M[i] = c.beta1 * M[i] + (1 - c.beta1) * gi;
        V[i] = c.beta2 * V[i] + (1 - c.beta2) * gi * gi;
        const double mh = M[i] / (1 - std::pow(c.beta1, step)), vh = V[i] / (1 - std::pow(c.beta2, step));
        P[i] -= lr * (mh / (std::sqrt(vh) + c.eps) + (kind == "adamw" ? c.weight_decay * P[i] : 0.0));
      }
      opt.update(e, p, g, lr, step);
      for (size_t i = 0; i < p.size(); ++i)
        ASSERT_NEAR(p.data()[i], P[i], 1e-6) << kind << " step " << step << " [" << i << "]";
    }
  }
}

// Sparse updates against dense ones: the trainer's train_step, whose gradient block has no storage for
// encoder.weight (its gradient is the window's rows) and which skips tail clusters no row reached, against
// forward, backward, a dense norm and a dense update, over 6 steps with clipping active; for SGD (where auto
// turns sparse updates on) on a full and an adaptive softmax the weights are the same bit for bit (a resume that
// sets --average-from turns auto's sparse updates off mid-run). The gradient block is all zero after each step.
void expect_sparse_step_equals_dense(ModelShape s, Config c, bool some_cluster_idle) {
  const Engine e(test_util::engine_options());
  const int64_t T = 7, B = 5;
  ASSERT_TRUE(use_sparse_updates(c));
  Config dense_c = c;
  dense_c.sparse_updates = SparseUpdates::Off;
  Arena pa(param_table(s)), ga(grad_table(s, true)), pb(param_table(s)), gb(param_table(s));
  ASSERT_LT(ga.size() + static_cast<size_t>(s.vocab * s.embed), pa.size() + 16) << "no dense embedding gradient";
  Arena ha(state_table(s, B)), hb(state_table(s, B));
  init_uniform(pa, 3, 0.1);
  init_uniform(pb, 3, 0.1);
  Optimizer oa(c, pa.table()), ob(dense_c, pb.table());
  Workspace wa(s, T, B, true), wb(s, T, B, true);
  RowGrad rows;
  wa.sparse_embedding = &rows;
  const DropoutConfig drop{0.3f, false, 11, 0, 0, B};
  const double clip = 0.5, lr = 0.7;
  std::vector<int32_t> x(T * B), y(T * B);
  bool idle_seen = false;
  for (int step = 0; step < 6; ++step) {
    for (int64_t i = 0; i < T * B; ++i) {  // a few tokens of the 300, so most embedding rows are untouched
      x[i] = static_cast<int32_t>((i * 37 + step * 11) % 23 * 13);
      // targets: with some_cluster_idle, none in the last cluster at even steps
      const int64_t top = some_cluster_idle && step % 2 == 0 ? s.cutoffs.back() : s.vocab;
      y[i] = static_cast<int32_t>((i * 7 + step * 131) % top);
    }
    train_step(e, s, pa, ga, ha, wa, oa, drop, x.data(), y.data(), T, B, clip, lr, step);
    for (int64_t i = 0; i < s.clusters(); ++i) idle_seen |= !wa.adaptive.touched(i);

    DropoutConfig d = drop;
    d.step = static_cast<uint64_t>(step);
    model_forward(e, s, pb, wb, x.data(), y.data(), T, B, hb, true, nullptr, &d);
    model_backward(e, s, pb, wb, x.data(), T, B, gb, &d);
    const double norm = std::sqrt(grad_sum_squares(gb));  // as train_step does without sparse updates
    ASSERT_GT(norm, clip) << "clipping must be active for the test to cover the norm";
    ob.update(e, pb, gb, lr, step + 1, clip_factor(norm, clip));

    for (size_t i = 0; i < pa.size(); ++i)  // bit for bit: a run may switch (auto) between them on a resume
      ASSERT_EQ(pa.data()[i], pb.data()[i]) << "step " << step << " [" << i << "]";
    for (size_t i = 0; i < ga.size(); ++i) ASSERT_EQ(ga.data()[i], 0.0f) << "step " << step << ": not cleared";
  }
  EXPECT_EQ(idle_seen, some_cluster_idle);
}

TEST(Optimizer, SparseStepEqualsTheDenseStep) {
  ModelShape s;
  s.cell = Cell::Lstm, s.vocab = 300, s.embed = 24, s.hidden = 32, s.layers = 2;
  expect_sparse_step_equals_dense(s, Config{}, false);
  s.output = Output::Adaptive, s.cutoffs = {40, 120}, s.head_bias = true;
  expect_sparse_step_equals_dense(s, Config{}, true);
}

// Adam with sparse updates is lazy (PyTorch's SparseAdam): a row's moments and weights move only at the steps
// whose window uses it; the rows that are used follow Adam's formula with the global step's bias correction.
TEST(Optimizer, SparseAdamIsLazyOnRows) {
  const Engine e(test_util::engine_options());
  Config c;
  c.optimizer = OptimizerKind::Adam, c.sparse_updates = SparseUpdates::On;
  ModelShape s;
  s.vocab = 10, s.embed = 3, s.hidden = 4;
  Arena p(param_table(s)), g(grad_table(s, true));
  Optimizer opt(c, p.table());
  for (size_t i = 0; i < p.size(); ++i) p.data()[i] = 0.01f * static_cast<float>(i % 17);
  for (size_t i = 0; i < g.size(); ++i) g.data()[i] = 0.5f;
  const std::vector<float> p0(p.data(), p.data() + p.size());
  std::vector<double> M(3, 0), V(3, 0), P(p0.begin() + 2 * 3, p0.begin() + 3 * 3);  // row 2's
  SparseGrad sg;
  RowGrad rows;
  rows.width = 3;
  sg.rows = &rows;
  for (int step = 1; step <= 3; ++step) {
    rows.assign_ids({2, 7});
    for (size_t i = 0; i < rows.values.size(); ++i) rows.values[i] = std::sin(static_cast<float>(i + step));
    for (int k = 0; k < 3; ++k) {
      const double gi = rows.values[static_cast<size_t>(k)];
      M[k] = c.beta1 * M[k] + (1 - c.beta1) * gi;
      V[k] = c.beta2 * V[k] + (1 - c.beta2) * gi * gi;
      P[k] -= 0.01 * (M[k] / (1 - std::pow(c.beta1, step))) / (std::sqrt(V[k] / (1 - std::pow(c.beta2, step))) + c.eps);
    }
    opt.update(e, p, g, 0.01, step, 1.0, &sg);
  }
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(p[0].data[2 * 3 + k], P[k], 1e-6);
  for (int r : {0, 1, 3, 9})
    for (int k = 0; k < 3; ++k) EXPECT_EQ(p[0].data[r * 3 + k], p0[static_cast<size_t>(r * 3 + k)]) << "row " << r;
  EXPECT_NE(p[1].data[0], p0[static_cast<size_t>(p.offset(1))]) << "the dense tensors are updated";
}

TEST(Optimizer, SparseRefusals) {
  Config c;
  c.sparse_updates = SparseUpdates::On;
  c.weight_decay = 0.1;
  EXPECT_NE(test_util::user_error([&] { c.validate(); }).find("--sparse-updates on: not with --weight-decay"),
            std::string::npos);
  c.weight_decay = 0, c.average_from = 2;
  EXPECT_NE(test_util::user_error([&] { c.validate(); }).find("--average-from"), std::string::npos);
  c.average_from = 0, c.tied = true;
  EXPECT_NE(test_util::user_error([&] { c.validate(); }).find("--tied"), std::string::npos);
  Config a;  // auto: on for plain SGD only
  EXPECT_TRUE(use_sparse_updates(a));
  a.optimizer = OptimizerKind::Adam;
  EXPECT_FALSE(use_sparse_updates(a));
  a.optimizer = OptimizerKind::Sgd, a.average_from = 3;
  EXPECT_FALSE(use_sparse_updates(a));
}

TEST(Optimizer, SparseSumOfSquares) {
  std::vector<TensorSpec> table = {{"w", {4, 6}}, {"t", {5}}, {"u", {3}}};
  Arena g(table);
  for (size_t k = 0; k < 3; ++k)
    for (int64_t i = 0; i < g[k].numel(); ++i) g[k].data[i] = 0.1f * static_cast<float>((i + 5 * k) % 23);
  RowGrad rows;
  rows.width = 9;
  std::vector<int32_t> slot;
  const int32_t ids[] = {7, 3, 7, 49, 0, 3};
  rows.assign(ids, 6, slot);
  EXPECT_EQ(rows.ids, (std::vector<int32_t>{0, 3, 7, 49}));
  EXPECT_EQ(slot, (std::vector<int32_t>{2, 1, 2, 3, 0, 1}));
  double want = 0;
  for (size_t i = 0; i < rows.values.size(); ++i) {
    rows.values[i] = std::cos(static_cast<float>(i));
    want += double(rows.values[i]) * rows.values[i];
  }
  SparseGrad sp;
  sp.rows = &rows;
  sp.idle = {{static_cast<int64_t>(g.offset(1)), static_cast<int64_t>(g.offset(1)) + 5}};  // "t" left out
  for (int64_t i = 0; i < 24; ++i) want += double(g[0].data[i]) * g[0].data[i];
  for (int64_t i = 0; i < 3; ++i) want += double(g[2].data[i]) * g[2].data[i];
  EXPECT_NEAR(grad_sum_squares(g, &sp), want, 2e-7 * want);
  const double all = sum_squares(g.data(), static_cast<int64_t>(g.size()));
  EXPECT_NEAR(grad_sum_squares(g), all, 2e-7 * all);
}

// The norm of a sparse step has the dense step's bits: the rows of a V × E table given as a RowGrad (and a
// tensor left out as idle) sum to exactly what the dense table (zero elsewhere, the idle tensor zero) sums to,
// for rows whose width is not a multiple of the vector length and ids spread over several groups.
TEST(Optimizer, SparseSumOfSquaresIsTheDenseOneBitForBit) {
  for (int64_t E : {7, 16, 45, 2048}) {  // 2048: groups summed on several threads
    const int64_t V = 300;
    std::vector<TensorSpec> dense_table = {{"encoder.weight", {V, E}}, {"t", {33}}, {"u", {50}}};
    std::vector<TensorSpec> sparse_table = dense_table;
    sparse_table[0].shape = {0, E};
    Arena dense(dense_table), sparse(sparse_table);
    RowGrad rows;
    rows.width = E;
    rows.assign_ids({0, 3, 63, 64, 65, 130, 299});
    for (size_t i = 0; i < rows.values.size(); ++i) rows.values[i] = std::sin(0.37f * static_cast<float>(i)) * 1e-2f;
    for (int64_t k = 0; k < rows.rows(); ++k)
      std::copy(rows.row(k), rows.row(k) + E, dense[0].data + int64_t{rows.ids[static_cast<size_t>(k)]} * E);
    for (int64_t i = 0; i < 50; ++i) dense[2].data[i] = sparse[2].data[i] = 0.1f * std::cos(static_cast<float>(i));
    SparseGrad sp;  // "t" is zero: idle
    sp.rows = &rows;
    sp.idle = {{static_cast<int64_t>(sparse.offset(1)), static_cast<int64_t>(sparse.offset(1)) + 33}};
    EXPECT_EQ(grad_sum_squares(sparse, &sp), grad_sum_squares(dense)) << "E " << E;
  }
}

TEST(SafeTensors, RoundTripAndRejectTruncation) {
  char tmpl[] = "/tmp/manylm-st-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  Arena a({{"a.weight", {2, 3}}, {"b", {5}}});
  for (size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<float>(i) * 0.5f - 1.0f;
  save_safetensors(dir + "/m.safetensors", {&a}, {{"k", "v"}});
  auto f = load_safetensors(dir + "/m.safetensors");
  EXPECT_EQ(f.metadata.at("k"), "v");
  Arena b({{"a.weight", {2, 3}}, {"b", {5}}});
  fill_arena(f, b, "m");
  EXPECT_EQ(0, std::memcmp(a[0].data, b[0].data, 6 * 4));
  EXPECT_EQ(0, std::memcmp(a[1].data, b[1].data, 5 * 4));
  // Header length must be 8-byte aligned data start, as the format recommends.
  std::string bytes = read_file(dir + "/m.safetensors", "t");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  write_file_atomic(dir + "/t.safetensors", bytes.substr(0, bytes.size() - 4));
  EXPECT_THROW(load_safetensors(dir + "/t.safetensors"), UserError);
  Arena wrong({{"a.weight", {3, 2}}, {"b", {5}}});
  EXPECT_THROW(fill_arena(f, wrong, "m"), UserError);
  std::system(("rm -rf " + dir).c_str());
}

// DirLock: a second holder (another open file description, as another process would have) is refused with the
// holder's PID; once the first is gone the lock is free again.
TEST(Files, DirLockKeepsASecondHolderOut) {
  char tmpl[] = "/tmp/manylm-lock-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  {
    DirLock a;
    a.acquire(dir, "--out", "choose another");
    EXPECT_TRUE(a.held());
    EXPECT_EQ(read_file(dir + "/.lock", "lock"), std::to_string(::getpid()) + "\n");
    DirLock b;
    try {
      b.acquire(dir, "--out", "choose another");
      ADD_FAILURE() << "a second holder got the lock";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("--out: " + dir + " is in use by process " + std::to_string(::getpid()) +
                                           " (a trainer is writing it); choose another"),
                std::string::npos)
          << e.what();
    }
    EXPECT_FALSE(b.held());
  }
  DirLock c;
  c.acquire(dir, "--out", "");
  EXPECT_TRUE(c.held());
  std::system(("rm -rf " + dir).c_str());
}

// write_file_new (average --out): creates, never replaces, and leaves no temporary behind either way.
TEST(Files, WriteFileNewNeverReplaces) {
  char tmpl[] = "/tmp/manylm-new-XXXXXX";
  const std::string dir = mkdtemp(tmpl), path = dir + "/avg.safetensors";
  write_file_new(path, "first");
  EXPECT_EQ(read_file(path, "t"), "first");
  try {
    write_file_new(path, "second");
    ADD_FAILURE() << "replaced " << path;
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": exists"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(path, "t"), "first");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 1);
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace manylm

namespace manylm {
namespace {

// The up-front memory estimate: parameters, gradients (none for a sparse embedding), Adam's moments and the
// workspaces from the same tables the run allocates; a run that cannot fit is refused before anything is made.
TEST(Memory, EstimateFollowsTheTablesAndRefusesWhatCannotFit) {
  Config c;
  c.cell = Cell::Lstm, c.hidden = 64, c.embed = 32, c.layers = 2, c.batch = 4, c.bptt = 5;
  const ModelShape s = c.model_shape(1000);
  const MemoryEstimate sgd = estimate_run_memory(c, s, c.batch);
  EXPECT_NEAR(sgd.params, 4.0 * static_cast<double>(param_count(s)), 64.0 * 20);
  EXPECT_NEAR(sgd.params - sgd.grads, 4.0 * 1000 * 32, 64.0);  // sparse updates: no embedding gradient
  EXPECT_EQ(sgd.optimizer, 0.0);
  EXPECT_NEAR(sgd.activations, static_cast<double>(workspace_bytes(s, 5, 4, false) + workspace_bytes(s, 5, 10, false)),
              1.0);
  c.optimizer = OptimizerKind::Adam;
  const MemoryEstimate adam = estimate_run_memory(c, s, c.batch);
  EXPECT_EQ(adam.optimizer, 2 * adam.params);
  EXPECT_EQ(adam.grads, adam.params);  // dense under auto
  EXPECT_NO_THROW(check_run_memory(c, s, c.batch, 1));
  const ModelShape huge = c.model_shape(int64_t{1} << 34);  // 2^34 words × 32: 2 TiB of embedding
  const std::string msg = test_util::user_error([&] { check_run_memory(c, huge, c.batch, 1); });
  for (const char* needle : {"memory: the run needs ~", "GB available", "--allow-oversize"})
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  c.allow_oversize = true;
  EXPECT_NO_THROW(check_run_memory(c, huge, c.batch, 1));
}

}  // namespace
}  // namespace manylm
