// rescore_cmd.cc — `manylm rescore`: n-best rescoring in Kaldi's text formats. Reads `KEY word word …` lines (a
// file, or stdin as `-`), writes `KEY cost` lines, cost = −ln p(words, sentence end) (−log10 p with --log10), each
// hypothesis scored from the start state as `eval --sentences` scores a line (train/sentences.h, shared with it).
// The hypotheses of one utterance (or --batch lines) run as the lanes of one batch; --carry-state starts every
// hypothesis of an utterance from the state its predecessor's first hypothesis ended in, within a conversation.
// Streams: memory holds one batch, whatever the input's length. Not lattice rescoring.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cli/commands.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/io.h"
#include "train/checkpoint.h"
#include "train/sentences.h"

namespace manylm {

namespace {
struct RescoreOptions {
  std::string model, nbest, key_regex, conversation_regex, utt2spk;
  std::string weights = "auto";
  int64_t batch = 0;
  int threads = 0;
  bool log10 = false, carry_state = false;
};
constexpr double kLog10E = 0.43429448190325182765;

// The first field of a line and the rest, split on spaces and tabs.
std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// The part of `s` a regular expression names: its first group when it has one, else the whole match.
std::optional<std::string> regex_part(const std::regex& re, const std::string& s) {
  std::smatch m;
  if (!std::regex_search(s, m, re)) return std::nullopt;
  return m.size() > 1 && m[1].matched ? m[1].str() : m[0].str();
}

std::regex compile(const std::string& re, const char* option) {
  try {
    return std::regex(re, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    fail("{} '{}': not a regular expression ({})", option, re, e.what());
  }
}

// Which utterance a key belongs to and which conversation an utterance belongs to.
class Keys {
 public:
  explicit Keys(const RescoreOptions& o) : o_(o) {
    if (!o.key_regex.empty()) key_re_ = compile(o.key_regex, "--key-regex");
    if (!o.conversation_regex.empty()) conv_re_ = compile(o.conversation_regex, "--conversation-regex");
    if (!o.utt2spk.empty()) read_utt2spk(o.utt2spk);
  }
  std::string utterance(const std::string& key, int64_t line) const {
    if (!key_re_) {  // Kaldi's uttid-N: the key up to its last '-'
      const size_t dash = key.rfind('-');
      return dash == std::string::npos || dash == 0 ? key : key.substr(0, dash);
    }
    if (auto u = regex_part(*key_re_, key)) return *u;
    fail("--key-regex '{}': the key '{}' on line {} of {} does not match", o_.key_regex, key, line, o_.nbest);
  }
  std::string conversation(const std::string& key, const std::string& utt, int64_t line) const {
    if (conv_re_) {
      if (auto c = regex_part(*conv_re_, key)) return *c;
      fail("--conversation-regex '{}': the key '{}' on line {} of {} does not match", o_.conversation_regex, key, line,
           o_.nbest);
    }
    if (!o_.utt2spk.empty()) {
      const auto it = spk_.find(utt);
      if (it == spk_.end())
        fail("--utt2spk {}: has no line for utterance '{}' (line {} of {})", o_.utt2spk, utt, line, o_.nbest);
      return it->second;
    }
    return "";  // one conversation
  }

 private:
  void read_utt2spk(const std::string& path) {
    std::ifstream in(path);
    if (!in || is_directory(path)) fail("--utt2spk {}: cannot read the file", path);
    int64_t n = 0;
    for (std::string line; std::getline(in, line);) {
      ++n;
      const auto f = fields(line);
      if (f.empty()) continue;
      if (f.size() != 2) fail("--utt2spk {}: line {} is not 'UTTERANCE SPEAKER'", path, n);
      spk_[std::string(f[0])] = std::string(f[1]);
    }
  }
  const RescoreOptions& o_;
  std::optional<std::regex> key_re_, conv_re_;
  std::unordered_map<std::string, std::string> spk_;
};

struct Hypothesis {
  std::string key;
  std::vector<int32_t> ids;  // the words' ids and the sentence end
};

}  // namespace

namespace {

// Scores batches of hypotheses and prints their costs, carrying state between utterances when asked.
class Rescorer {
 public:
  Rescorer(const RescoreOptions& o, const LoadedModel& m, const Engine& e)
      : o_(o), scorer_(e, m.shape, m.params, m.vocab.start()) {
    if (o.carry_state) {
      init_ = std::make_unique<Arena>(state_table(m.shape, 1));
      final_ = std::make_unique<Arena>(state_table(m.shape, 1));
      init_->zero();
    }
  }
  // Called before the first hypothesis of each utterance: whether its conversation continues the last one.
  void new_utterance(bool same_conversation) {
    flush();
    if (!o_.carry_state) return;
    if (same_conversation && scored_any_)
      std::memcpy(init_->data(), final_->data(), init_->size() * sizeof(float));
    else
      init_->zero();
    first_of_utterance_ = true;
  }
  void add(Hypothesis h) {
    if (o_.batch > 0 && static_cast<int64_t>(batch_.size()) == o_.batch) flush();
    batch_.push_back(std::move(h));
  }
  void flush() {
    if (batch_.empty()) return;
    std::vector<std::span<const int32_t>> seqs;
    for (const Hypothesis& h : batch_) seqs.emplace_back(h.ids);
    const bool keep = o_.carry_state && first_of_utterance_;
    const std::vector<double> lp = scorer_.score(seqs, init_.get(), keep ? final_.get() : nullptr);
    scored_any_ = scored_any_ || keep;
    first_of_utterance_ = false;
    out_.clear();
    for (size_t i = 0; i < batch_.size(); ++i)
      fmt::format_to(std::back_inserter(out_), "{} {:.6f}\n", batch_[i].key, -lp[i] * (o_.log10 ? kLog10E : 1.0));
    std::fwrite(out_.data(), 1, out_.size(), stdout);
    batch_.clear();
  }

 private:
  const RescoreOptions& o_;
  SentenceScorer scorer_;
  std::unique_ptr<Arena> init_, final_;  // --carry-state: the state an utterance starts from; its first's end
  bool first_of_utterance_ = true, scored_any_ = false;
  std::vector<Hypothesis> batch_;
  fmt::memory_buffer out_;
};

}  // namespace

namespace {

void check_options(const RescoreOptions& o, const LoadedModel& m) {
  if (o.batch < 0) fail("--batch: must be 0 (one utterance per batch) or positive (got {})", o.batch);
  if (m.vocab.eos() < 0) fail("--model {}: rescoring needs a word-level model (sentences end with <eos>)", o.model);
  if (!o.conversation_regex.empty() && !o.utt2spk.empty())
    fail("--conversation-regex and --utt2spk: give one of them, not both");
  if ((!o.conversation_regex.empty() || !o.utt2spk.empty()) && !o.carry_state)
    fail("{}: only with --carry-state (it says where the carried state is reset)",
         o.utt2spk.empty() ? "--conversation-regex" : "--utt2spk");
}

int run_rescore(const RescoreOptions& o) {
  LoadedModel m = load_run_model(o.model, o.weights);
  check_options(o, m);
  const Keys keys(o);
  std::ifstream file;
  if (o.nbest != "-") {
    if (is_directory(o.nbest)) fail("--nbest {}: is a directory, not a file", o.nbest);
    file.open(o.nbest);
    if (!file) fail("--nbest {}: cannot open the file", o.nbest);
  }
  std::ios::sync_with_stdio(false);
  std::istream& in = o.nbest == "-" ? std::cin : file;
  EngineOptions eo;  // the run's backend and precision: the same numbers as eval
  eo.threads = o.threads;
  eo.backend = m.config.gemm;
  eo.precision = m.config.precision;
  const Engine engine(eo);
  Rescorer rescorer(o, m, engine);
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t c0 = std::clock();
  std::string utt, conv, line;
  int64_t n = 0, hyps = 0, utterances = 0, words = 0, oov = 0;
  for (; std::getline(in, line);) {
    ++n;
    const auto f = fields(line);
    if (f.empty()) continue;
    Hypothesis h{std::string(f[0]), {}};
    const std::string u = keys.utterance(h.key, n);
    // Without --carry-state, --batch N groups any N lines; otherwise each utterance starts a batch.
    if (utterances == 0 || (u != utt && (o.carry_state || o.batch == 0))) {
      const std::string c = keys.conversation(h.key, u, n);
      rescorer.new_utterance(utterances > 0 && c == conv);
      conv = c;
    }
    if (utterances == 0 || u != utt) ++utterances, utt = u;
    for (size_t i = 1; i < f.size(); ++i) {
      const int32_t id = m.vocab.find(f[i]);
      oov += id < 0;
      h.ids.push_back(id < 0 ? m.vocab.unk() : id);
    }
    words += static_cast<int64_t>(f.size()) - 1;
    h.ids.push_back(m.vocab.eos());
    rescorer.add(std::move(h));
    ++hyps;
  }
  if (in.bad()) fail("--nbest {}: read error", o.nbest);
  rescorer.flush();
  std::fflush(stdout);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print(stderr,
             "rescore: {} hypotheses of {} utterances; {} of {} words out of vocabulary (scored as {}); {:.3f} s, "
             "{:.1f} hypotheses/s ({:.3f} s of CPU)\n",
             hyps, utterances, oov, words, Vocab::kUnk, sec, static_cast<double>(hyps) / std::max(sec, 1e-9),
             static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
  return 0;
}

}  // namespace

Runner add_rescore_command(CLI::App& app) {
  auto o = std::make_shared<RescoreOptions>();
  auto* sub = app.add_subcommand("rescore", "Score n-best hypotheses (Kaldi's text format): one cost per line");
  sub->add_option("--model", o->model, "Run directory of a trained model")->required();
  sub->add_option("--weights", o->weights, kWeightsHelp)->capture_default_str();
  sub->add_option("--nbest", o->nbest, "Hypotheses, 'KEY word word ...' a line; - reads stdin")->required();
  sub->add_flag("--log10", o->log10, "Costs as -log10 p (default: -ln p)");
  sub->add_option("--key-regex", o->key_regex,
                  "Utterance of a key: its first group, else the whole match (default: the key up to its last -)");
  sub->add_option("--batch", o->batch, "Lines per batch (0: the hypotheses of one utterance)")->capture_default_str();
  sub->add_flag("--carry-state", o->carry_state,
                "Start each utterance from the state the first hypothesis of the one before ended in");
  sub->add_option("--conversation-regex", o->conversation_regex,
                  "With --carry-state: the conversation of a key (first group, else the match); a new one resets");
  sub->add_option("--utt2spk", o->utt2spk, "With --carry-state: Kaldi's utt2spk file naming each conversation");
  sub->add_option("--threads", o->threads, "Threads (0: all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65536));
  return [o] { return run_rescore(*o); };
}

}  // namespace manylm
