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
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/io.h"
#include "data/nbest.h"
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
  const UtteranceKeys keys({o.key_regex, o.conversation_regex, o.utt2spk, o.nbest});
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
    std::optional<Hypothesis> h = parse_hypothesis(line, m.vocab);
    if (!h) continue;
    const std::string u = keys.utterance(h->key, n);
    // Without --carry-state, --batch N groups any N lines; otherwise each utterance starts a batch.
    if (utterances == 0 || (u != utt && (o.carry_state || o.batch == 0))) {
      const std::string c = keys.conversation(h->key, u, n);
      rescorer.new_utterance(utterances > 0 && c == conv);
      conv = c;
    }
    if (utterances == 0 || u != utt) ++utterances, utt = u;
    words += h->words;
    oov += h->oov;
    rescorer.add(std::move(*h));
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
