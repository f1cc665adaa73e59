// config.h — the one typed configuration of a training run, parsed once (train/options.h is the table
// that names every field's --long-option, also its key in JSON config files and in the run's config.json),
// validated once, then passed by const reference. Enum-like settings are enums, each with its one name
// table beside it (core/names.h). Not a parser.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/gemm.h"
#include "core/names.h"
#include "data/shuffle.h"
#include "data/text_reader.h"
#include "data/vocab.h"
#include "data/vocab_file.h"
#include "model/shape.h"
#include "mpi/compress.h"
#include "train/guard.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace manylm {

// --dropout-mask: a new mask every step, or one per window shared by its steps (Gal & Ghahramani).
enum class DropoutMask { Standard, Variational };
inline constexpr Named<DropoutMask> kDropoutMaskNames[] = {{DropoutMask::Standard, "standard"},
                                                           {DropoutMask::Variational, "variational"}};
constexpr std::span<const Named<DropoutMask>> enum_names(DropoutMask) { return kDropoutMaskNames; }

struct Config {
  // data
  std::string data;  // corpus root; the corpus is data/<corpus>
  std::string corpus = "ptb";
  std::string train, valid, test;  // override data/<corpus>/{train,valid,test}.txt
  TokenMode tokens = TokenMode::Word;
  int64_t vocab_size = 0;  // 0: every word seen
  int64_t min_count = 1;
  std::string vocab_file;  // a fixed vocabulary (data/vocab_file.h) instead of one counted from the training text
  VocabFormat vocab_format = VocabFormat::Auto;
  std::string unk_token = "<unk>", eos_token = "<eos>";  // the vocabulary file's unknown and line-end words
  std::string cache_dir;                                 // empty: default_cache_dir()
  Shuffle shuffle = Shuffle::None;  // the order each epoch reads the training text in (data/shuffle.h)
  int64_t shuffle_block = 1024;     // sentences: a block holds whole sentences, at least this many tokens
  // model
  Cell cell = Cell::Elman;
  Activation activation = Activation::Tanh;
  int64_t layers = 1, hidden = 200, embed = 200;
  double init = 0.1;             // uniform ±init
  std::string init_from;         // start from these weights (a safetensors file of this model) instead of ±init
  bool tied = false;             // tie decoder.weight to encoder.weight
  Output output = Output::Full;  // full softmax, or adaptive (cutoffs, div_value, head_bias: model/shape.h)
  std::vector<int64_t> cutoffs;
  double div_value = 4.0;
  bool head_bias = false;
  double dropout = 0;  // on the non-recurrent connections (Zaremba et al.)
  DropoutMask dropout_mask = DropoutMask::Standard;
  // training
  int64_t batch = 20, bptt = 20, eval_batch = 10;
  int64_t epochs = 13;
  double lr = 1.0, clip = 5.0;
  OptimizerKind optimizer = OptimizerKind::Sgd;
  SparseUpdates sparse_updates = SparseUpdates::Auto;
  double weight_decay = 0;  // sgd, adam: L2 added to the gradient; adamw: decoupled
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  Schedule schedule = Schedule::Step;
  double decay = 2.0;  // step: divide lr by this each epoch after decay_after; newbob: by this when halving;
                       // plateau: by this after an epoch without a new best validation loss
  int64_t decay_after = 4;
  int64_t patience = 0;         // plateau: epochs without a new best tolerated before dividing
  double newbob_ratio = 1.003;  // newbob: start (then stop) decaying when valid improves by less than this ratio
  bool keep_best = false;       // keep the best-validating weights (best.safetensors); the result scores them
  int64_t average_from = 0;     // from this epoch (1-based) on, validate and score the mean of the weights after
                                // every update (Polyak averaging, as AWD-LSTM's ASGD); 0: off
  int64_t average_nonmono = 0;  // or start averaging once the best validation loss is this many epochs old
                                // (AWD-LSTM's non-monotone trigger, NT-ASGD); 0: off
  uint64_t seed = 1;
  int threads = 0;              // 0: all cores
  bool allow_oversize = false;  // run even where the memory estimate exceeds what this process may use
  bool threads_force = false;   // keep a --threads above the CPUs this process may use (else capped, with a note)
  GemmBackend gemm = GemmBackend::OneDnn;
  Precision precision = Precision::Fp32;  // bf16: bf16 operands, fp32 accumulation, fp32 master weights
  int64_t max_steps = 0;                  // 0: no limit
  // divergence guard (train/guard.h): what a refused step does, how many rollbacks a run may take, the rule
  OnDiverge on_diverge = OnDiverge::Rollback;
  int64_t max_rollbacks = 3;
  double diverge_ratio = 3.0;  // 0: only a non-finite loss or gradient norm counts
  // data parallelism (mpirun): --batch is global; each rank takes a disjoint range of lanes
  Compress grad_compress = Compress::None;
  double bucket_mb = 4;             // gradient all-reduce bucket size, MiB of fp32
  double threshold_tau = 0;         // threshold: fixed τ; 0: adaptive
  double threshold_density = 0.01;  // threshold, adaptive τ: fraction of the gradient sent per step
  bool deterministic = false;       // sum gradients in rank order: bitwise reproducible for any MPI algorithm
  bool comm_thread = true;          // a progress thread drives MPI while backward computes
  double comm_timeout = 300;        // seconds a rank may wait in a step's collectives (watchdog); 0: off
  double checkpoint_minutes = 10.0;
  int64_t checkpoint_steps = 0;  // 0: only by time and at epoch ends
  double progress_seconds = 10.0;
  std::string out;
  std::string resume;
  bool json = false;

  void validate() const;  // UserError naming the first bad option
  void check_vocab_file() const;
  ModelShape model_shape(int64_t vocab) const;
  // What names each part: a file, a folder of shards or a glob (data/corpus.h corpus_paths).
  std::string train_path() const;
  std::string valid_path() const;
  std::string test_path() const;
  std::string cache_path() const;  // --cache-dir, else default_cache_dir()
};

// A new run's vocabulary: --vocab-file's, or counted from the training text (--vocab-size, --min-count).
Vocab run_vocabulary(const Config& c);

}  // namespace manylm
