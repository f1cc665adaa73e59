// eval_cmd.cc — `manylm eval`: perplexity of a text under a trained model; optionally every token's
// log-probability (--per-word) or one score per line for n-best rescoring (--sentences).
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/io.h"
#include "core/parallel.h"
#include "data/corpus.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/sentences.h"

namespace manylm {

namespace {
struct EvalOptions {
  std::string model, text, per_word, sentences, data, cache_dir;
  std::string weights = "auto";
  int64_t batch = 0, bptt = 0;
  int threads = 0;
  bool json = false;
};
constexpr double kLog10E = 0.43429448190325182765;
}  // namespace

namespace {

struct Scores {
  double loss = 0;  // nats
  int64_t tokens = 0;
};

// The output files must not be the text being scored, a file of the run (or the weights read), nor each other.
void check_outputs(const EvalOptions& o, const std::string& text, const std::string& weights) {
  auto same_file = [](const std::string& a, const std::string& b) {
    std::error_code ec;
    return a == b || std::filesystem::equivalent(a, b, ec);
  };
  const RunPaths run{o.model};
  const std::vector<std::string> run_files = {run.config(), run.vocab(),   run.model(),   run.state(),
                                              run.best(),   run.average(), run.metrics(), weights};
  for (const auto& [opt, out] : {std::pair{"--per-word", o.per_word}, std::pair{"--sentences", o.sentences}}) {
    if (out.empty()) continue;
    if (same_file(out, text)) fail("{} {}: is the text being scored; choose another file", opt, out);
    const std::filesystem::path p(out);
    bool of_run = p.filename().string().rfind("residual.rank", 0) == 0 &&
                  same_file(p.parent_path().empty() ? "." : p.parent_path().string(), o.model);
    for (const std::string& f : run_files) of_run = of_run || same_file(out, f);
    if (of_run) fail("{} {}: is a file of the run {}; choose another file", opt, out, o.model);
  }
  if (!o.per_word.empty() && same_file(o.per_word, o.sentences))
    fail("--sentences {}: is also the --per-word file; choose another file", o.sentences);
}

// --per-word, --sentences: every token scored, one lane, from the start-of-text context; with --sentences
// each line (up to its <eos>) on its own. Several files (shards): each from the start-of-text context.
Scores score_each_token(const Engine& engine, const EvalOptions& o, const LoadedModel& m, const CorpusIds& ids,
                        int64_t T) {
  Scores sc;
  std::string per_word, sentences;
  SentenceScorer scorer(engine, m.shape, m.params, m.vocab.start(), T);  // what rescore scores with, one lane
  std::vector<float> lp;
  auto emit = [&](std::span<const int32_t> seq) {
    const std::span<const int32_t> one[] = {seq};
    scorer.score(one, nullptr, nullptr, &lp);
    double s = 0;
    for (size_t i = 0; i < lp.size(); ++i) {
      s += lp[i];
      if (!o.per_word.empty())
        per_word += fmt::format("{}\t{:.6f}\t{:.6f}\n", m.vocab.word(seq[i]) == "\n" ? "\\n" : m.vocab.word(seq[i]),
                                lp[i], lp[i] * kLog10E);
    }
    sc.loss -= s;
    sc.tokens += static_cast<int64_t>(lp.size());
    if (!o.sentences.empty()) sentences += fmt::format("{:.6f}\n", s * kLog10E);
  };
  if (!o.sentences.empty() && m.vocab.eos() < 0) fail("--sentences: needs a word-level model (lines end with <eos>)");
  for (const std::span<const int32_t> all : ids.pieces()) {
    if (o.sentences.empty()) {
      emit(all);
      continue;
    }
    size_t b = 0;
    for (size_t i = 0; i < all.size(); ++i)
      if (all[i] == m.vocab.eos()) {  // one sentence per line, scored independently with its <eos>
        emit(all.subspan(b, i + 1 - b));
        b = i + 1;
      }
    if (b < all.size()) emit(all.subspan(b));
  }
  if (!o.per_word.empty()) write_file_atomic(o.per_word, per_word);
  if (!o.sentences.empty()) write_file_atomic(o.sentences, sentences);
  return sc;
}

int run_eval(const EvalOptions& o) {
  LoadedModel m = load_run_model(o.model, o.weights);
  if (o.batch < 0 || o.bptt < 0) fail("--batch/--bptt: must be positive");
  EngineOptions eo;  // the run's backend and precision: the same numbers as training
  eo.threads = o.threads;
  eo.backend = m.config.gemm;
  eo.precision = m.config.precision;
  const Engine engine(eo);
  Config paths = m.config;
  if (!o.data.empty()) paths.data = o.data;
  const std::string text = o.text.empty() ? paths.test_path() : o.text;
  const int64_t B = o.batch > 0 ? o.batch : m.config.eval_batch;
  const int64_t T = o.bptt > 0 ? o.bptt : m.config.bptt;
  check_outputs(o, text, m.weights);
  const CorpusIds ids = CorpusIds::load(corpus_paths(text, "eval"), m.vocab,
                                        o.cache_dir.empty() ? default_cache_dir() : o.cache_dir, "encoding the text");
  if (ids.size() == 0) fail("{}: empty: no tokens to score", text);
  Scores sc;
  if (!o.per_word.empty() || !o.sentences.empty()) {
    sc = score_each_token(engine, o, m, ids, T);
  } else {
    const EvalResult r = evaluate(engine, m.shape, m.params, TokenSequence(ids.pieces()), B, T, text);
    sc = {r.loss_sum, r.tokens};
  }
  const double ppl = std::exp(sc.loss / static_cast<double>(sc.tokens));
  if (o.json) {
    fmt::print("{}\n", nlohmann::json{{"command", "eval"},
                                      {"text", text},
                                      {"perplexity", ppl},
                                      {"tokens", sc.tokens},
                                      {"oov", ids.oov()},
                                      {"batch", B},
                                      {"bptt", T},
                                      {"weights", m.weights}}
                           .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("{}: perplexity {:.2f} over {} tokens ({} out of vocabulary); weights {}{}\n", text, ppl, sc.tokens,
               ids.oov(), std::filesystem::path(m.weights).filename().string(),
               m.epoch > 0 ? fmt::format(" (epoch {})", m.epoch) : "");
  }
  return 0;
}

}  // namespace

Runner add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto* sub = app.add_subcommand("eval", "Perplexity of a text file under a trained model");
  sub->add_option("--model", o->model, "Run directory of a trained model")->required();
  sub->add_option("--weights", o->weights, kWeightsHelp)->capture_default_str();
  sub->add_option("--text", o->text, "Text file to score (default: the test file of the model's corpus)");
  sub->add_option("--data", o->data, "Data directory (to find the default test file)");
  sub->add_option("--batch", o->batch, "Batch lanes (default: the run's --eval-batch)");
  sub->add_option("--bptt", o->bptt, "Steps per window (default: the run's --bptt)");
  sub->add_option("--per-word", o->per_word, "Write each token with its ln and log10 probability (TSV) to FILE");
  sub->add_option("--sentences", o->sentences, "Write one log10 probability per input line (n-best rescoring) to FILE");
  sub->add_option("--cache-dir", o->cache_dir, "Token-id cache directory");
  sub->add_option("--threads", o->threads, "Threads (0: all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65536));
  sub->add_flag("--json", o->json, "Print one JSON object with the results on stdout");
  return [o] { return run_eval(*o); };
}

}  // namespace manylm
