// config.cc — see config.h.
#include "train/config.h"

#include <fmt/ranges.h>

#include <cmath>

#include "core/error.h"
#include "data/corpus.h"

namespace manylm {

namespace {
void positive(const char* opt, int64_t v) {
  if (v <= 0) fail("--{}: must be a positive integer (got {})", opt, v);
}
void positive_finite(const char* opt, double v) {
  if (!std::isfinite(v) || v <= 0) fail("--{}: must be a positive finite number (got {})", opt, v);
}
}  // namespace

void Config::validate() const {
  positive("layers", layers);
  positive("hidden", hidden);
  positive("embed", embed);
  positive("batch", batch);
  positive("bptt", bptt);
  positive("eval-batch", eval_batch);
  positive("epochs", epochs);
  positive("min-count", min_count);
  positive("shuffle-block", shuffle_block);
  if (vocab_size < 0 || vocab_size == 1 || vocab_size == 2)
    fail("--vocab-size: must be 0 (no limit) or at least 3 (got {})", vocab_size);
  check_vocab_file();
  if (max_steps < 0) fail("--max-steps: must be 0 (no limit) or positive (got {})", max_steps);
  if (max_rollbacks < 0 || max_rollbacks > 60)
    fail("--max-rollbacks: must be in 0..60 (each halves the rate; got {})", max_rollbacks);
  if (!std::isfinite(diverge_ratio) || (diverge_ratio != 0 && diverge_ratio <= 1))
    fail("--diverge-ratio: must be 0 (off) or a number above 1 (got {})", diverge_ratio);
  if (checkpoint_steps < 0) fail("--checkpoint-steps: must be 0 or positive (got {})", checkpoint_steps);
  if (!std::isfinite(dropout) || dropout < 0 || dropout >= 1) fail("--dropout: must be in [0, 1) (got {})", dropout);
  if (!std::isfinite(weight_decay) || weight_decay < 0) fail("--weight-decay: must be >= 0 (got {})", weight_decay);
  if (!(beta1 >= 0 && beta1 < 1)) fail("--beta1: must be in [0, 1) (got {})", beta1);
  if (!(beta2 >= 0 && beta2 < 1)) fail("--beta2: must be in [0, 1) (got {})", beta2);
  positive_finite("eps", eps);
  if (tied && output == Output::Adaptive)
    fail("--tied: not with --output adaptive (the adaptive softmax has no V x H decoder to tie); use one of them");
  if (output == Output::Full && !cutoffs.empty())
    fail("--cutoffs {}: only with --output adaptive (got --output full)", fmt::join(cutoffs, ","));
  use_sparse_updates(*this);  // its refusals
  if (tied && embed != hidden) fail("--tied: needs --embed equal to --hidden (got {} and {})", embed, hidden);
  if (std::string why; !gemm_backend_available(gemm, &why)) fail("--gemm {}: {}", name_of(gemm), why);
  if (precision == Precision::Bf16 && gemm != GemmBackend::OneDnn)
    fail("--precision bf16: needs --gemm onednn (got --gemm {})", name_of(gemm));
  positive_finite("lr", lr);
  positive_finite("init", init);
  positive_finite("checkpoint-minutes", checkpoint_minutes);
  positive_finite("progress-seconds", progress_seconds);
  if (!std::isfinite(clip) || clip < 0) fail("--clip: must be 0 (off) or a positive number (got {})", clip);
  if (!std::isfinite(decay) || decay < 1.0) fail("--decay: must be a number >= 1 (got {})", decay);
  if (decay_after < 0) fail("--decay-after: must be >= 0 (got {})", decay_after);
  if (patience < 0) fail("--patience: must be >= 0 (got {})", patience);
  if (average_from < 0) fail("--average-from: must be 0 (off) or an epoch number (got {})", average_from);
  if (average_nonmono < 0) fail("--average-nonmono: must be 0 (off) or a number of epochs (got {})", average_nonmono);
  if (average_nonmono > 0 && average_from > 0)
    fail("--average-nonmono: not with --average-from (one decides when averaging starts)");
  if (average_from > epochs)
    fail("--average-from: epoch {} is after the last one (--epochs {}): nothing would be averaged", average_from,
         epochs);
  if (!std::isfinite(newbob_ratio) || newbob_ratio < 1.0)
    fail("--newbob-ratio: must be a number >= 1 (got {})", newbob_ratio);
  positive_finite("bucket-mb", bucket_mb);
  if (bucket_mb > 1024) fail("--bucket-mb: at most 1024 (MPI counts are 32-bit; got {})", bucket_mb);
  if (!std::isfinite(threshold_tau) || threshold_tau < 0)
    fail("--threshold-tau: must be 0 (adaptive) or positive (got {})", threshold_tau);
  if (!(threshold_density > 0 && threshold_density <= 1))
    fail("--threshold-density: must be in (0, 1] (got {})", threshold_density);
  if (!std::isfinite(comm_timeout) || comm_timeout < 0)
    fail("--comm-timeout: must be 0 (no watchdog) or a number of seconds (got {})", comm_timeout);
  if (threads < 0) fail("--threads: must be 0 (all cores) or positive (got {})", threads);
}

void Config::check_vocab_file() const {
  if (vocab_file.empty()) return;
  if (vocab_size != 0) fail("--vocab-size: not with --vocab-file (the file fixes the vocabulary)");
  if (min_count != 1) fail("--min-count: not with --vocab-file (the file fixes the vocabulary)");
  if (tokens != TokenMode::Word) fail("--vocab-file: needs --tokens word (got --tokens {})", name_of(tokens));
  if (unk_token.empty() || eos_token.empty()) fail("--unk-token, --eos-token: must not be empty");
  if (unk_token == eos_token) fail("--unk-token and --eos-token: both name '{}'; they must differ", unk_token);
}

ModelShape Config::model_shape(int64_t vocab) const {
  ModelShape s;
  s.cell = cell;
  s.activation = activation;
  s.vocab = vocab;
  s.embed = embed;
  s.hidden = hidden;
  s.layers = layers;
  s.tied = tied;
  s.output = output;
  s.cutoffs = cutoffs;
  s.div_value = div_value;
  s.head_bias = head_bias;
  check_adaptive(s);
  return s;
}

Vocab run_vocabulary(const Config& c) {
  if (!c.vocab_file.empty()) return load_vocab_file(c.vocab_file, c.vocab_format, c.unk_token, c.eos_token);
  return count_vocabulary(corpus_paths(c.train_path(), "--train"), c.tokens, c.vocab_size, c.min_count, c.cache_path());
}

namespace {
// An explicit --train/--valid/--test, else the corpus's NAME.txt, else its folder NAME/ of shards.
std::string corpus_part(const Config& c, const std::string& given, const char* name) {
  if (!given.empty()) return given;
  const std::string base = resolve_data_dir(c.data) + "/" + c.corpus + "/" + name;
  return !path_exists(base + ".txt") && is_directory(base) ? base : base + ".txt";
}
}  // namespace

std::string Config::train_path() const { return corpus_part(*this, train, "train"); }
std::string Config::valid_path() const { return corpus_part(*this, valid, "valid"); }
std::string Config::test_path() const { return corpus_part(*this, test, "test"); }
std::string Config::cache_path() const { return cache_dir.empty() ? default_cache_dir() : cache_dir; }

}  // namespace manylm
