// rescore_test.cc — `manylm rescore` end to end with the real binary: its costs are `eval --sentences`' scores for
// every cell and output layer, whatever the batching (an utterance, --batch lines, one line); --carry-state gives each
// utterance the costs of running text that continues the previous utterance's first hypothesis (eval --per-word on
// that text), reset where --conversation-regex or --utt2spk says the conversation changes; stdin, unknown words
// and the user errors. PyTorch's agreement is rescore_pytorch.sh's.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli_fixture.h"
#include "test_util.h"

namespace manylm {
namespace {

using namespace cli_test;  // NOLINT: the fixture's helpers

class Rescore : public CliTest {
 protected:
  // Hypotheses as an n-best list has them, sharing prefixes: utterance u{i / 3} (keys u{i / 3}-{i % 3 + 1}) is the
  // test file's line u, the same with its last word replaced, and the same with a word added; line 4 gains an
  // unknown word and line 7 has no words. Writes the same lines (without keys) to `text` for eval --sentences.
  std::string nbest(const std::string& text, int* oov) {
    std::istringstream in(read_bytes(suite_ + "/test.txt"));
    std::vector<std::string> base;
    for (std::string line; base.size() < 8 && std::getline(in, line);)
      base.push_back(line.substr(0, line.find_last_not_of(' ') + 1));
    std::string keyed, plain;
    for (int i = 0; i < 24; ++i) {
      std::string line = base[static_cast<size_t>(i / 3)];
      const size_t last = line.find_last_of(' ');
      if (i % 3 == 1 && last != std::string::npos) line = line.substr(0, last) + " the";
      if (i % 3 == 2) line += " the";
      if (i == 4) line += " zzzunknown";
      if (i == 7) line.clear();
      keyed += "u" + std::to_string(i / 3) + "-" + std::to_string(i % 3 + 1) + (line.empty() ? "" : " ") + line + "\n";
      plain += line + "\n";
    }
    *oov = 1;
    write_bytes(text, plain);
    return write("nbest.txt", keyed);
  }
  // KEY cost lines → costs in order.
  static std::vector<std::pair<std::string, double>> costs(const Result& r) {
    EXPECT_EQ(r.status, 0) << r.err;
    std::vector<std::pair<std::string, double>> out;
    std::istringstream in(r.out);
    std::string key;
    for (double c; in >> key >> c;) out.push_back({key, c});
    return out;
  }
  static std::vector<double> numbers(const std::string& text) {
    std::vector<double> v;
    std::istringstream in(text);
    for (double x; in >> x;) v.push_back(x);
    return v;
  }
  std::string train(const std::string& name, const Opts& extra) {
    const std::string out = dir_ + "/" + name;
    const Result r = run("train", with(with(train_opts(suite_), extra), {{"--out", out}}));
    EXPECT_EQ(r.status, 0) << r.err;
    return out;
  }
};

void expect_close(double a, double b, double rel) {
  EXPECT_LE(std::abs(a - b), std::max(rel * std::abs(b), 2e-6)) << a << " vs " << b;
}

TEST_F(Rescore, CostsAreEvalSentencesScoresForEveryCellAndBatching) {
  const Opts adaptive = {{"--output", "adaptive"}, {"--cutoffs", "4,9"}, {"--div-value", "2"}};
  for (auto [cell, extra] : std::vector<std::pair<std::string, Opts>>{
           {"elman", {}}, {"lstm", {}}, {"gru", {}}, {"lstm", adaptive}, {"gru", adaptive}}) {
    SCOPED_TRACE(cell + (extra.empty() ? "" : " adaptive"));
    const std::string model = train(cell + (extra.empty() ? "" : "-ad"), with(extra, {{"--cell", cell}}));
    int oov = 0;
    const std::string text = dir_ + "/plain.txt", nb = nbest(text, &oov);
    ASSERT_EQ(run("eval", {{"--model", model}, {"--text", text}, {"--sentences", dir_ + "/s.txt"}}).status, 0);
    const std::vector<double> ref = numbers(read_bytes(dir_ + "/s.txt"));  // log10 p per line
    for (const Opts& how : std::vector<Opts>{{}, {{"--batch", "1"}}, {{"--batch", "5"}}}) {
      SCOPED_TRACE(how.empty() ? "per utterance" : "--batch " + how[0].second);
      const Result r = run("rescore", with({{"--model", model}, {"--nbest", nb}, {"--log10", ""}}, how));
      const auto c = costs(r);
      ASSERT_EQ(c.size(), ref.size());
      for (size_t i = 0; i < c.size(); ++i) {
        EXPECT_EQ(c[i].first, "u" + std::to_string(i / 3) + "-" + std::to_string(i % 3 + 1));
        expect_close(-c[i].second, ref[i], 1e-5);
      }
      EXPECT_NE(r.err.find("24 hypotheses of 8 utterances; " + std::to_string(oov) + " of "), std::string::npos)
          << r.err;
    }
    const auto ln = costs(run("rescore", {{"--model", model}, {"--nbest", "-"}}, nb));  // stdin, natural log
    ASSERT_EQ(ln.size(), ref.size());
    for (size_t i = 0; i < ln.size(); ++i) expect_close(ln[i].second, -ref[i] * std::log(10.0), 1e-5);
  }
}

// With --carry-state an utterance's hypotheses continue the text of the previous utterance's first hypothesis:
// their costs are the per-word log-probabilities of the last line of the text of those first hypotheses.
TEST_F(Rescore, CarriedStateIsRunningTextWithinAConversation) {
  const std::string model = train("lstm", {{"--cell", "lstm"}});
  const std::string nb = write("nb.txt",
                               "s1_a-1 the cat sat\ns1_a-2 the dog\ns2_b-1 a big house\ns2_b-2 on the mat\n"
                               "s2_c-1 the small cat ran\n");
  auto per_word_tail = [&](const std::string& two_lines, int n) {  // ln p of the last n tokens, summed
    write_bytes(dir_ + "/two.txt", two_lines);
    EXPECT_EQ(run("eval", {{"--model", model}, {"--text", dir_ + "/two.txt"}, {"--per-word", dir_ + "/pw.tsv"}}).status,
              0);
    std::istringstream in(read_bytes(dir_ + "/pw.tsv"));
    std::vector<double> lp;
    std::string w;
    for (double ln, lg; in >> w >> ln >> lg;) lp.push_back(ln);
    double s = 0;
    for (size_t i = lp.size() - n; i < lp.size(); ++i) s += lp[i];
    return -s;
  };
  std::map<std::string, double> plain, carried, reset;
  for (auto& [k, v] : costs(run("rescore", {{"--model", model}, {"--nbest", nb}}))) plain[k] = v;
  for (auto& [k, v] : costs(run("rescore", {{"--model", model}, {"--nbest", nb}, {"--carry-state", ""}})))
    carried[k] = v;
  expect_close(carried["s1_a-2"], plain["s1_a-2"], 1e-6);  // the first utterance starts from the zero state
  expect_close(carried["s2_b-2"], per_word_tail("the cat sat\non the mat\n", 4), 1e-5);
  expect_close(carried["s2_c-1"], per_word_tail("the cat sat\na big house\nthe small cat ran\n", 5), 1e-5);
  EXPECT_GT(std::abs(carried["s2_b-2"] - plain["s2_b-2"]), 1e-4);
  // Conversations: b starts a new one (regex on the key, or utt2spk), so b is scored from the zero state.
  const std::string u2s = write("utt2spk", "s1_a s1\ns2_b s2\ns2_c s2\n");
  for (const Opts& conv : std::vector<Opts>{{{"--conversation-regex", "^(s[0-9]+)_"}}, {{"--utt2spk", u2s}}}) {
    SCOPED_TRACE(conv[0].first);
    for (auto& [k, v] : costs(run("rescore", with({{"--model", model}, {"--nbest", nb}, {"--carry-state", ""}}, conv))))
      reset[k] = v;
    expect_close(reset["s2_b-2"], plain["s2_b-2"], 1e-6);
    expect_close(reset["s2_c-1"], per_word_tail("a big house\nthe small cat ran\n", 5), 1e-5);
  }
}

TEST_F(Rescore, BadInputIsOneErrorLine) {
  const std::string model = suite_ + "/word8", nb = write("nb.txt", "x-1 the cat\n");
  expect_user_error(run("rescore", {{"--model", model}, {"--nbest", dir_ + "/none.txt"}}), {"--nbest", "none.txt"});
  expect_user_error(run("rescore", {{"--model", model}, {"--nbest", dir_}}), {"--nbest", "directory"});
  expect_user_error(run("rescore", {{"--model", model}, {"--nbest", nb}, {"--key-regex", "(["}}), {"--key-regex"});
  expect_user_error(run("rescore", {{"--model", model}, {"--nbest", nb}, {"--key-regex", "^y"}}),
                    {"--key-regex", "x-1", "line 1"});
  expect_user_error(run("rescore", {{"--model", model}, {"--nbest", nb}, {"--utt2spk", nb}}),
                    {"--utt2spk", "--carry-state"});
  expect_user_error(
      run("rescore", {{"--model", model}, {"--nbest", nb}, {"--carry-state", ""}, {"--utt2spk", write("u", "y s\n")}}),
      {"--utt2spk", "'x'"});
  expect_user_error(run("rescore", {{"--model", model}, {"--nbest", nb}, {"--batch", "-1"}}), {"--batch"});
  expect_user_error(run("rescore", {{"--model", suite_ + "/char8"}, {"--nbest", nb}}), {"word-level"});
}

}  // namespace
}  // namespace manylm
