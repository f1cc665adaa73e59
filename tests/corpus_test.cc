// corpus_test.cc — `manylm corpus synth | stats`: the synthetic corpus generator (data/synth_corpus.h) on a small
// corpus written once per suite — its layout and exact token counts, every type present, determinism across
// thread counts, an exactly Zipf(1) marginal, the sequential structure (a bigram model fitted on the training
// text beats the unigram on valid.txt by far), the printed perplexities against the text — the word counts of
// `corpus stats` (data/corpus_stats.h) on a hand-made directory, and the errors of both commands through the real
// binary (one line, exit 2, nothing written). Not the trainer's reading of corpora (data_test.cc).
#include <gtest/gtest.h>
#include <omp.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "data/corpus_stats.h"
#include "data/synth_corpus.h"
#include "data/text_reader.h"
#include "test_util.h"

namespace manylm {
namespace {

namespace fs = std::filesystem;
using test_util::user_error;

std::string make_temp_dir() { return test_util::make_temp_dir("corpus-test"); }
using test_util::read_bytes;
using test_util::write_bytes;

// Every regular file under `dir` (relative path → bytes).
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = read_bytes(e.path().string());
  return out;
}

// A file's tokens as generator ids, V standing for <eos> (one per line).
std::vector<int32_t> read_ids(const std::string& path, int64_t V) {
  std::vector<int32_t> ids;
  read_tokens(
      path, TokenMode::Word,
      [&](std::string_view w) {
        const int64_t id = synth_word_id(w);
        if (id < 0 || id >= V) throw std::runtime_error("not a word of the generator: " + std::string(w));
        ids.push_back(static_cast<int32_t>(id));
      },
      [&] { ids.push_back(static_cast<int32_t>(V)); });
  return ids;
}

class SynthCorpus : public ::testing::Test {
 protected:
  static constexpr int64_t kV = 1000, kTokens = 400'000, kShards = 3;
  static inline std::string dir_;
  static inline SynthSummary summary_;
  static inline SynthModel* model_ = nullptr;
  static inline std::vector<int32_t> train_;  // the shards' ids, in order

  static SynthSpec spec(int64_t shards = kShards) { return {kTokens, kV, shards, 5}; }
  static void SetUpTestSuite() {
    dir_ = make_temp_dir();
    model_ = new SynthModel(kV, 5);
    summary_ = write_synth_corpus(*model_, spec(), dir_ + "/corpus");
    for (int s = 0; s < kShards; ++s) {
      const std::vector<int32_t> ids = read_ids(fmt::format("{}/corpus/train/{:05d}.txt", dir_, s), kV);
      train_.insert(train_.end(), ids.begin(), ids.end());
    }
  }
  static void TearDownTestSuite() {
    delete model_;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
};

TEST(SynthWords, NamesAreABijectionOnIdsShortForFrequentWords) {
  for (const int64_t v :
       std::initializer_list<int64_t>{0, 1, 79, 80, 81, 6'479, 6'480, 518'479, 518'480, 799'999, kSynthMaxVocab - 1}) {
    const std::string w = synth_word(v);
    EXPECT_EQ(synth_word_id(w), v) << w;
    EXPECT_EQ(w.size(), v < 80 ? 2u : v < 6'480 ? 4u : v < 518'480 ? 6u : 8u) << v;
  }
  std::set<std::string> names;
  for (int64_t v = 0; v < 20'000; ++v) names.insert(synth_word(v));
  EXPECT_EQ(names.size(), 20'000u);
  EXPECT_EQ(synth_word(0), "ba");
  for (const char* bad : {"", "b", "ab", "bax", "<unk>", "<eos>", "bababababa", "bx"})
    EXPECT_EQ(synth_word_id(bad), -1) << bad;
}

TEST(SynthModelTables, SuccessorsPreserveTheZipfMarginalExactly) {
  for (const int64_t V : {1, 2, 7, 30, 300, 5'000}) {
    const SynthModel m(V, 3);
    std::vector<double> next(static_cast<size_t>(V), 0.0);  // Σ_w z(w)·p(v | w)
    for (int32_t w = 0; w < V; ++w) {
      double total = 0;
      for (const auto& [v, q] : m.successors(w)) {
        total += q;
        if (V >= 30) {
          EXPECT_NE(v, w) << "a word is its own successor";
        }
        next[static_cast<size_t>(v)] += m.unigram(w) * q;
      }
      ASSERT_NEAR(total, 1.0, 1e-9) << "V " << V << " word " << w;
    }
    for (int64_t v = 0; v < V; ++v) ASSERT_NEAR(next[static_cast<size_t>(v)], m.unigram(v), 1e-12) << V << " " << v;
  }
}

TEST_F(SynthCorpus, FilesHoldExactlyTheTokensAskedForAndNothingElse) {
  std::set<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir_ + "/corpus"))
    names.insert(fs::relative(e.path(), dir_ + "/corpus").string());
  EXPECT_EQ(names, (std::set<std::string>{"train", "train/00000.txt", "train/00001.txt", "train/00002.txt", "valid.txt",
                                          "test.txt"}));
  EXPECT_FALSE(fs::exists(dir_ + "/corpus.tmp." + std::to_string(::getpid())));
  EXPECT_EQ(static_cast<int64_t>(train_.size()), kTokens);
  EXPECT_EQ(summary_.tokens[0], kTokens);
  EXPECT_EQ(summary_.words[0] + summary_.lines[0], kTokens);
  for (int i : {1, 2}) {
    const std::string f = dir_ + (i == 1 ? "/corpus/valid.txt" : "/corpus/test.txt");
    EXPECT_EQ(static_cast<int64_t>(read_ids(f, kV).size()), synth_heldout_tokens(kTokens));
    EXPECT_EQ(summary_.bytes[i], static_cast<int64_t>(fs::file_size(f)));
  }
  EXPECT_EQ(synth_heldout_tokens(kTokens), 20'000);
  EXPECT_EQ(synth_heldout_tokens(100), 1'000);
  EXPECT_EQ(synth_heldout_tokens(1'000'000'000), 1'000'000);
  // Lines are sentences: words separated by one space, no empty line, a newline at the end.
  const std::string text = read_bytes(dir_ + "/corpus/train/00001.txt");
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find("  "), std::string::npos);
  EXPECT_EQ(text.find("\n\n"), std::string::npos);
  EXPECT_EQ(text.find(" \n"), std::string::npos);
}

TEST_F(SynthCorpus, EveryTypeAppearsInTheTrainingShards) {
  std::vector<int64_t> count(kV + 1, 0);
  for (const int32_t id : train_) ++count[static_cast<size_t>(id)];
  EXPECT_EQ(std::count(count.begin(), count.end() - 1, 0), 0);
  EXPECT_EQ(summary_.types, kV);
  EXPECT_EQ(summary_.planted, 0);  // the rarest word is expected 51 times: none is planted
  // corpus stats on the shards: V types (and so a vocabulary of V + 2 with <eos> and <unk>).
  std::vector<std::string> skipped;
  const CorpusCounts c = count_corpus(corpus_files(dir_ + "/corpus/train", &skipped));
  EXPECT_EQ(static_cast<int64_t>(c.counts.size()), kV);
  EXPECT_EQ(c.tokens(), kTokens);
  EXPECT_TRUE(skipped.empty());
}

TEST_F(SynthCorpus, TypesExpectedFewerThan40TimesArePlantedSoEveryTypeAppearsFrom3V) {
  constexpr int64_t V = 5'000;
  const SynthModel m(V, 2);
  for (const int64_t tokens : {3 * V, 10 * V, V}) {
    const std::string out = fmt::format("{}/planted{}", dir_, tokens);
    const SynthSummary s = write_synth_corpus(m, {tokens, V, 2, 2}, out);
    std::vector<std::string> skipped;
    const CorpusCounts c = count_corpus(corpus_files(out + "/train", &skipped));
    EXPECT_EQ(static_cast<int64_t>(c.counts.size()), s.types);
    EXPECT_EQ(c.tokens(), tokens);
    if (tokens >= 3 * V) {
      EXPECT_EQ(s.types, V) << tokens;
      EXPECT_GT(s.planted, V / 2) << tokens;
    } else {
      EXPECT_LT(s.types, V);  // too few words for V types: a note, not an error
    }
  }
}

TEST_F(SynthCorpus, WordFrequenciesFollowZipf) {
  std::vector<double> count(kV, 0);
  int64_t words = 0;
  for (const int32_t id : train_)
    if (id < kV) ++count[static_cast<size_t>(id)], ++words;
  // Rank 1 against rank 10, and every one of the first 100 ranks against its expectation (±5 standard deviations).
  EXPECT_NEAR(count[0] / count[9], 10.0, 1.0);
  for (int64_t v = 0; v < 100; ++v) {
    const double expect = static_cast<double>(words) * model_->unigram(v);
    EXPECT_NEAR(count[static_cast<size_t>(v)], expect, 5 * std::sqrt(expect) + 2) << "rank " << v + 1;
  }
  // The slope of log count against log rank over ranks 1–300 (where counts are large): −1.
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const int n = 300;
  for (int v = 0; v < n; ++v) {
    const double x = std::log(v + 1.0), y = std::log(count[static_cast<size_t>(v)]);
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  EXPECT_NEAR((n * sxy - sx * sy) / (n * sxx - sx * sx), -1.0, 0.05);
}

// −mean ln p over `ids` of a model fitted on the training ids: the unigram (add-one) and the Witten–Bell
// interpolated bigram.
std::pair<double, double> heldout_entropies(const std::vector<int32_t>& train, const std::vector<int32_t>& ids,
                                            int64_t V) {
  std::vector<double> uni(static_cast<size_t>(V + 1), 1.0);
  std::unordered_map<int64_t, double> pair;
  std::vector<double> from(static_cast<size_t>(V + 1), 0.0), kinds(static_cast<size_t>(V + 1), 0.0);
  for (size_t i = 0; i < train.size(); ++i) {
    ++uni[static_cast<size_t>(train[i])];
    const int32_t prev = i > 0 ? train[i - 1] : static_cast<int32_t>(V);
    if (pair[prev * (V + 1) + train[i]]++ == 0) ++kinds[static_cast<size_t>(prev)];
    ++from[static_cast<size_t>(prev)];
  }
  const double total = static_cast<double>(train.size() + static_cast<size_t>(V) + 1);
  double h1 = 0, h2 = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t prev = i > 0 ? ids[i - 1] : static_cast<int32_t>(V), v = ids[i];
    const double pu = uni[static_cast<size_t>(v)] / total;
    const auto it = pair.find(prev * (V + 1) + v);
    const double c = it == pair.end() ? 0.0 : it->second, t = kinds[static_cast<size_t>(prev)];
    h1 -= std::log(pu);
    h2 -= std::log((c + t * pu) / (from[static_cast<size_t>(prev)] + t));
  }
  return {h1 / static_cast<double>(ids.size()), h2 / static_cast<double>(ids.size())};
}

TEST_F(SynthCorpus, ABigramModelBeatsTheUnigramByFarOnValid) {
  const std::vector<int32_t> valid = read_ids(dir_ + "/corpus/valid.txt", kV);
  const auto [h1, h2] = heldout_entropies(train_, valid, kV);
  const SynthEntropy h = model_->entropy();
  EXPECT_NEAR(std::exp(h1), std::exp(h.unigram), 0.05 * std::exp(h.unigram));
  EXPECT_LT(std::exp(h2), 0.5 * std::exp(h1)) << "unigram " << std::exp(h1) << ", bigram " << std::exp(h2);
  EXPECT_GT(h2, h.rate - 0.02) << "no model beats the generator's entropy rate";
  EXPECT_LT(h.rate, h.bigram);
  EXPECT_LT(h.bigram, h.unigram);
}

TEST_F(SynthCorpus, PrintedEntropiesAreThoseOfTheText) {
  // The plug-in unigram entropy of the training tokens, and the generator's own bigram on them.
  std::vector<double> count(kV + 1, 0);
  for (const int32_t id : train_) ++count[static_cast<size_t>(id)];
  double h1 = 0, h2 = 0;
  const double n = static_cast<double>(train_.size());
  for (const double c : count)
    if (c > 0) h1 -= c / n * std::log(c / n);
  const double L = (SynthModel::kMinLength + SynthModel::kMaxLength) / 2.0;
  for (size_t i = 0; i < train_.size(); ++i) {
    const int32_t prev = i > 0 ? train_[i - 1] : static_cast<int32_t>(kV), v = train_[i];
    const double p = prev == kV ? model_->unigram(v) : v == kV ? 1 / L : (1 - 1 / L) * model_->next_prob(prev, v);
    h2 -= std::log(p);
  }
  const SynthEntropy h = model_->entropy();
  EXPECT_NEAR(h1, h.unigram, 0.025);  // the chain's words are correlated: ±0.003 nats between seeds at 4 M tokens
  EXPECT_NEAR(h2 / n, h.bigram, 0.02);
}

TEST_F(SynthCorpus, TheSameBytesForAnyThreadCountAndHeldOutTextForAnyShardCount) {
  const int saved = omp_get_max_threads();
  std::map<std::string, std::string> first;
  for (const int threads : {1, 3}) {
    omp_set_num_threads(threads);
    const std::string out = fmt::format("{}/threads{}", dir_, threads);
    write_synth_corpus(*model_, spec(), out);
    const auto files = snapshot(out);
    if (threads == 1) first = files;
    EXPECT_EQ(files, first) << threads << " threads";
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(first, snapshot(dir_ + "/corpus"));
  write_synth_corpus(*model_, spec(2), dir_ + "/shards2");
  EXPECT_EQ(read_bytes(dir_ + "/shards2/valid.txt"), first["valid.txt"]);
  EXPECT_EQ(read_bytes(dir_ + "/shards2/test.txt"), first["test.txt"]);
  EXPECT_NE(read_bytes(dir_ + "/shards2/valid.txt"), read_bytes(dir_ + "/shards2/test.txt"));
  const SynthModel other(kV, 6);
  write_synth_corpus(other, spec(), dir_ + "/seed6");
  EXPECT_NE(read_bytes(dir_ + "/seed6/train/00000.txt"), first["train/00000.txt"]);
}

TEST_F(SynthCorpus, OutMustBeNewOrAnEmptyDirectoryAndNothingIsHalfWritten) {
  const std::string full = dir_ + "/full", file = dir_ + "/file", empty = dir_ + "/empty";
  fs::create_directories(full);
  write_bytes(full + "/keep.txt", "mine\n");
  write_bytes(file, "a file\n");
  fs::create_directories(empty);
  const SynthModel m(50, 1);
  EXPECT_NE(user_error([&] {
              write_synth_corpus(m, {2000, 50, 1, 1}, full);
            }).find("--out: " + full),
            std::string::npos);
  EXPECT_EQ(snapshot(full), (std::map<std::string, std::string>{{"keep.txt", "mine\n"}}));
  EXPECT_NE(user_error([&] {
              write_synth_corpus(m, {2000, 50, 1, 1}, file);
            }).find("not a directory"),
            std::string::npos);
  EXPECT_EQ(read_bytes(file), "a file\n");
  const SynthSummary s = write_synth_corpus(m, {2000, 50, 1, 1}, empty + "/");
  EXPECT_EQ(s.tokens[0], 2000);
  EXPECT_TRUE(fs::exists(empty + "/train/00000.txt"));
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(SynthSpecCheck, BadNumbersNameTheirOption) {
  EXPECT_NE(user_error([] { check_synth_spec({1000, 0, 1, 1}); }).find("--vocab"), std::string::npos);
  EXPECT_NE(user_error([] { check_synth_spec({1000, kSynthMaxVocab + 1, 1, 1}); }).find("--vocab"), std::string::npos);
  EXPECT_NE(user_error([] { check_synth_spec({1000, 10, 0, 1}); }).find("--shards"), std::string::npos);
  EXPECT_NE(user_error([] {
              check_synth_spec({1000, 10, kSynthMaxShards + 1, 1});
            }).find("--shards"),
            std::string::npos);
  EXPECT_NE(user_error([] { check_synth_spec({5, 10, 3, 1}); }).find("--tokens"), std::string::npos);
  EXPECT_NE(user_error([] { check_synth_spec({-1, 10, 1, 1}); }).find("--tokens"), std::string::npos);
  check_synth_spec({6, 1, 3, 1});  // 2 tokens per shard and a single word are allowed
}

// ---------------------------------------------------------------------------------------------
// corpus stats, and both commands through the binary

struct Result {
  int status;
  std::string out, err;
};

Result manylm(const std::string& dir, const std::string& args) {
  const std::string cmd =
      "cd '" + dir + "' && OMP_NUM_THREADS=2 '" + MANYLM_BINARY + "' " + args + " >.stdout 2>.stderr </dev/null";
  const int st = std::system(cmd.c_str());
  Result r{WIFEXITED(st) ? WEXITSTATUS(st) : -1, read_bytes(dir + "/.stdout"), read_bytes(dir + "/.stderr")};
  fs::remove(dir + "/.stdout");
  fs::remove(dir + "/.stderr");
  return r;
}

void expect_user_error(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("manylm: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "'" << needle << "' missing from: " << r.err;
}

class CorpusCli : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(CorpusCli, StatsCountsAHandMadeDirectory) {
  fs::create_directories(dir_ + "/c/sub");
  write_bytes(dir_ + "/c/a.txt", "the cat sat\nthe dog\n");
  write_bytes(dir_ + "/c/b.txt", "a cat\n\n<unk> cat");  // an empty line, a last line without newline
  write_bytes(dir_ + "/c/.hidden", "not counted\n");
  write_bytes(dir_ + "/c/sub/x.txt", "not counted\n");
  const Result r = manylm(dir_, "corpus stats c --vocab-size 4 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("c/sub skipped"), std::string::npos) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["files"], 2);
  EXPECT_EQ(j["bytes"], 20 + 16);
  EXPECT_EQ(j["lines"], 5);
  EXPECT_EQ(j["words"], 9);
  EXPECT_EQ(j["tokens"], 14);
  EXPECT_EQ(j["types"], 6);  // the cat sat dog a <unk>
  // --vocab-size 4: <eos>, <unk> and the two most frequent words (cat 3, the 2); sat, dog, a are out of vocabulary
  // (the text's own "<unk>" is not counted, as the token cache does not count it).
  EXPECT_EQ(j["vocab_entries"], 4);
  EXPECT_EQ(j["oov_tokens"], 3);
  EXPECT_DOUBLE_EQ(j["oov_rate"].get<double>(), 3.0 / 14);
  const auto all = nlohmann::json::parse(manylm(dir_, "corpus stats c/a.txt c/b.txt --json").out);
  EXPECT_EQ(all["tokens"], 14);
  EXPECT_EQ(all["vocab_entries"], 7);  // every type, <eos>; <unk> is one of the types
  EXPECT_EQ(all["oov_tokens"], 0);
  const Result text = manylm(dir_, "corpus stats c/a.txt");
  EXPECT_NE(text.out.find("1 files, 20 bytes: 2 lines, 5 words, 7 tokens"), std::string::npos) << text.out;
}

TEST_F(CorpusCli, SynthPrintsItsCorpusAndStatsAgrees) {
  const Result r = manylm(dir_, "corpus synth --tokens 30000 --vocab 500 --shards 2 --out syn --seed 3 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["train"]["tokens"], 30000);
  EXPECT_EQ(j["valid"]["tokens"], 1500);
  EXPECT_EQ(j["types"], 500);
  EXPECT_GT(j["unigram_ppl"].get<double>(), 2 * j["bigram_ppl"].get<double>());
  const auto s = nlohmann::json::parse(manylm(dir_, "corpus stats syn/train --json").out);
  EXPECT_EQ(s["tokens"], 30000);
  EXPECT_EQ(s["types"], 500);
  EXPECT_EQ(s["files"], 2);
  EXPECT_EQ(s["bytes"], j["train"]["bytes"]);
  const Result text = manylm(dir_, "corpus synth --tokens 30000 --vocab 500 --out syn2 --seed 3");
  EXPECT_NE(text.out.find("unigram"), std::string::npos) << text.out;
}

TEST_F(CorpusCli, ErrorsAreOneLineExit2AndWriteNothing) {
  fs::create_directories(dir_ + "/full");
  write_bytes(dir_ + "/full/x", "x\n");
  const std::string ok = "corpus synth --tokens 5000 --vocab 100 --out ";
  expect_user_error(manylm(dir_, ok + "full"), "--out");
  expect_user_error(manylm(dir_, "corpus synth --tokens -5 --vocab 100 --out new"), "--tokens");
  expect_user_error(manylm(dir_, "corpus synth --tokens 5k --vocab 100 --out new"), "--tokens");
  expect_user_error(manylm(dir_, "corpus synth --tokens 5000 --vocab 0 --out new"), "--vocab");
  expect_user_error(manylm(dir_, "corpus synth --tokens 5000 --vocab 100 --shards 0 --out new"), "--shards");
  expect_user_error(manylm(dir_, "corpus synth --tokens 5000 --vocab 100 --shards 3000 --out new"), "--tokens");
  expect_user_error(manylm(dir_, "corpus synth --tokens 5000 --vocab 100"), "--out");
  expect_user_error(manylm(dir_, "corpus synth --tokens 10000000000000 --vocab 100 --out new"), "GB free");
  expect_user_error(manylm(dir_, "corpus synth --tokens 5000 --vocab 100 --seed -1 --out new"), "--seed");
  expect_user_error(manylm(dir_, "corpus stats missing.txt"), "missing.txt");
  expect_user_error(manylm(dir_, "corpus stats full --vocab-size -1"), "--vocab-size");
  expect_user_error(manylm(dir_, "corpus"), "subcommand");
  fs::create_directories(dir_ + "/nofiles/sub");
  expect_user_error(manylm(dir_, "corpus stats nofiles"), "nofiles");
  write_bytes(dir_ + "/bin.txt", std::string("a\0b\n", 4));
  expect_user_error(manylm(dir_, "corpus stats bin.txt"), "bin.txt");
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(dir_)) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"full", "nofiles", "bin.txt"}));
  EXPECT_EQ(snapshot(dir_ + "/full").size(), 1u);
}

}  // namespace
}  // namespace manylm
