// corpus_cmd.cc — `manylm corpus synth | stats`: write a synthetic corpus (data/synth_corpus.h) and report what
// a corpus holds (data/corpus_stats.h). Options, checks and printing only; the thread team comes from an
// Engine as for every command. Not the generator, not the trainer's reading of corpora.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/engine.h"
#include "core/error.h"
#include "data/corpus_stats.h"
#include "data/synth_corpus.h"
#include "data/vocab.h"

namespace manylm {

namespace {
struct CorpusOptions {
  SynthSpec spec;
  std::string out;
  std::vector<std::string> paths;
  int64_t vocab_size = 0;
  int threads = 0;
  bool json = false;
};

int run_synth(const CorpusOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  check_synth_spec(o.spec);  // before the tables are built
  const SynthModel model(o.spec.vocab, o.spec.seed);
  const SynthEntropy h = model.entropy();
  const SynthSummary s = write_synth_corpus(model, o.spec, o.out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t all_tokens = s.tokens[0] + s.tokens[1] + s.tokens[2];
  if (s.types < o.spec.vocab)
    fmt::print(stderr, "corpus synth: note: {} of {} types in the training text; all appear from --tokens {} (3·V)\n",
               s.types, o.spec.vocab, 3 * o.spec.vocab);
  if (o.json) {
    nlohmann::json j{{"command", "corpus synth"},
                     {"out", o.out},
                     {"seed", o.spec.seed},
                     {"vocab", o.spec.vocab},
                     {"shards", o.spec.shards},
                     {"types", s.types},
                     {"planted", s.planted},
                     {"unigram_ppl", std::exp(h.unigram)},
                     {"bigram_ppl", std::exp(h.bigram)},
                     {"floor_ppl", std::exp(h.rate)},
                     {"seconds", seconds},
                     {"tokens_per_second", static_cast<double>(all_tokens) / seconds},
                     {"threads", num_threads()}};
    const char* names[3] = {"train", "valid", "test"};
    for (int i = 0; i < 3; ++i)
      j[names[i]] = {{"tokens", s.tokens[i]}, {"words", s.words[i]}, {"lines", s.lines[i]}, {"bytes", s.bytes[i]}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print(
      "{}: {} training tokens in {} shard{} ({} words, {} lines, {:.1f} MB); valid.txt and test.txt {} tokens "
      "each\n",
      o.out, s.tokens[0], o.spec.shards, o.spec.shards == 1 ? "" : "s", s.words[0], s.lines[0], s.bytes[0] / 1e6,
      s.tokens[1]);
  fmt::print("{} of {} word types in the training shards ({} of the rarest planted once)\n", s.types, o.spec.vocab,
             s.planted);
  fmt::print(
      "perplexity per token (<eos> included) of the generator: unigram {:.1f} (what a model must beat), "
      "bigram {:.1f}, floor {:.1f} (its entropy rate)\n",
      std::exp(h.unigram), std::exp(h.bigram), std::exp(h.rate));
  fmt::print("{:.1f} s, {:.2f} M tokens/s on {} threads\n", seconds, static_cast<double>(all_tokens) / seconds / 1e6,
             num_threads());
  return 0;
}

int run_stats(const CorpusOptions& o) {
  if (o.vocab_size < 0) fail("--vocab-size: must be 0 (every type) or positive (got {})", o.vocab_size);
  std::vector<std::string> files, skipped;
  for (const std::string& p : o.paths) {
    const std::vector<std::string> f = corpus_files(p, &skipped);
    files.insert(files.end(), f.begin(), f.end());
  }
  for (const std::string& d : skipped)
    fmt::print(stderr, "corpus stats: note: {} skipped (a directory; name it to include it)\n", d);
  const CorpusCounts c = count_corpus(files);
  const Vocab vocab = vocab_from_counts(c.counts, c.lines, TokenMode::Word, o.vocab_size, 1);
  int64_t oov = 0;  // as the token cache counts it: tokens that become <unk> without being "<unk>"
  for (const auto& [w, n] : c.counts)
    if (w != Vocab::kUnk && vocab.find(w) < 0) oov += n;
  const double rate = c.tokens() > 0 ? static_cast<double>(oov) / static_cast<double>(c.tokens()) : 0.0;
  const auto types = static_cast<int64_t>(c.counts.size());
  if (o.json) {
    fmt::print("{}\n", nlohmann::json{{"command", "corpus stats"},
                                      {"paths", o.paths},
                                      {"files", c.files},
                                      {"bytes", c.bytes},
                                      {"lines", c.lines},
                                      {"words", c.words},
                                      {"tokens", c.tokens()},
                                      {"types", types},
                                      {"vocab_size", o.vocab_size},
                                      {"vocab_entries", vocab.size()},
                                      {"oov_tokens", oov},
                                      {"oov_rate", rate}}
                           .dump());
    return 0;
  }
  fmt::print("{} files, {} bytes: {} lines, {} words, {} tokens (words + one <eos> per line), {} types\n", c.files,
             c.bytes, c.lines, c.words, c.tokens(), types);
  fmt::print("--vocab-size {}: {} vocabulary entries with <eos> and <unk>; {} tokens out of vocabulary ({:.4f}%)\n",
             o.vocab_size, vocab.size(), oov, 100 * rate);
  return 0;
}
}  // namespace

Runner add_corpus_command(CLI::App& app) {
  auto o = std::make_shared<CorpusOptions>();
  auto* sub = app.add_subcommand("corpus", "Corpora: write a synthetic one (synth), count what one holds (stats)");
  sub->require_subcommand(1);
  auto* synth = sub->add_subcommand(
      "synth", "Write a seeded word corpus (Zipf(1) frequencies, bigram structure): DIR/train/NNNNN.txt, valid, test");
  synth->add_option("--tokens", o->spec.tokens, "Training tokens: words plus one <eos> per line")->required();
  synth->add_option("--vocab", o->spec.vocab, "Word types")->required();
  synth->add_option("--shards", o->spec.shards, "Training shards (files)")->capture_default_str();
  synth->add_option("--out", o->out, "The corpus directory to write (must not exist, or be empty)")->required();
  synth->add_option("--seed", o->spec.seed, "Seed: the corpus is a function of seed, vocab, tokens and shards")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            return v.rfind('-', 0) == 0 ? "must be a non-negative integer (got " + v + ")" : "";
          },
          "", "non-negative"));
  auto* stats = sub->add_subcommand("stats", "Tokens, types, bytes and out-of-vocabulary rate of text files");
  stats->add_option("paths", o->paths, "Files, or directories of files (their regular files, sorted)")->required();
  stats
      ->add_option("--vocab-size", o->vocab_size,
                   "As train's: keep at most N entries, <eos> and <unk> included (0: all)")
      ->capture_default_str();
  for (CLI::App* s : {synth, stats}) {
    s->add_option("--threads", o->threads, "Threads (0: all cores)")
        ->capture_default_str()
        ->check(CLI::Range(0, 65536));
    s->add_flag("--json", o->json, "Print one JSON object with the results on stdout");
  }
  return [o, synth] {
    EngineOptions eo;
    eo.threads = o->threads;
    const Engine engine(eo);  // sizes the thread team
    return synth->parsed() ? run_synth(*o) : run_stats(*o);
  };
}

}  // namespace manylm
