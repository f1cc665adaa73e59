// checkpoint.h — a run directory on disk:
//   config.json        every option of the run (loadable with --config)
//   vocab.json         the vocabulary
//   model.safetensors  parameters under PyTorch state_dict names (torch load_state_dict reads it as is)
//   state.safetensors  what resuming needs beyond the weights: carried hidden state, optimizer moments,
//                      and the training state (step, epoch, data position, schedule) as JSON metadata
//   best.safetensors   with --keep-best: the weights of the best validation epoch so far (eval and sample
//                      use them when present); its metadata names the epoch and validation perplexity
//   average.safetensors with --average-from: the mean of the weights after every update since that epoch,
//                      as of the last epoch end (eval and sample use it when there is no best.safetensors);
//                      the running mean itself is checkpointed in state.safetensors (tensors "average.*")
//   metrics.jsonl      one JSON object per progress report, validation and test
// Every file is written to a temporary name, fsynced and renamed. The model and the state record the same
// step and are replaced as a pair (save_checkpoint), so a crash or a full disk at any point leaves a
// resumable checkpoint. Not the training loop.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/arena.h"
#include "core/safetensors.h"
#include "train/json_fields.h"
#include "train/schedule.h"

namespace manylm {

struct TrainState {
  int64_t step = 0;    // updates done
  int64_t epoch = 0;   // current epoch, 0-based
  int64_t window = 0;  // next window of the current epoch
  ScheduleState sched;
  double epoch_loss = 0;  // Σ nats over this epoch's windows so far
  int64_t epoch_tokens = 0;
  double epoch_seconds = 0;   // wall time spent in this epoch's training steps so far (across resumes)
  double train_seconds = 0;   // wall time spent in training steps so far
  int64_t train_tokens = 0;   // tokens trained on so far
  int64_t average_count = 0;  // --average-from: updates averaged so far
  int64_t average_start = 0;  // --average-nonmono: the epoch (1-based) averaging starts, once triggered
  double running_loss = 0;    // the divergence guard's running loss per token (train/guard.h; 0: none yet)
  bool finished = false;

  // The ONE list of what a checkpoint records (state.safetensors' "manylm.train_state" JSON), under these
  // keys; S is TrainState, const or not (train/json_fields.h). kOptional: absent in checkpoints written
  // before the field was kept.
  template <class S, class F>
  static void fields(S& s, F&& f) {
    f("step", s.step);
    f("epoch", s.epoch);
    f("window", s.window);
    f("lr", s.sched.lr);
    f("last_valid", s.sched.last_valid);
    f("best_valid", s.sched.best_valid, kOptional);
    f("best_epoch", s.sched.best_epoch, kOptional);
    f("decaying", s.sched.decaying);
    f("stop", s.sched.stop);
    f("epoch_loss", s.epoch_loss);
    f("epoch_tokens", s.epoch_tokens);
    f("epoch_seconds", s.epoch_seconds, kOptional);
    f("train_seconds", s.train_seconds);
    f("train_tokens", s.train_tokens);
    f("average_count", s.average_count, kOptional);
    f("average_start", s.average_start, kOptional);
    f("running_loss", s.running_loss, kOptional);
    f("rollbacks", s.sched.rollbacks, kOptional);
    f("finished", s.finished);
  }
  std::string to_json() const;
  static TrainState from_json(const std::string& text, const std::string& path);
  // After the last window of an epoch: the next one starts (none after --epochs or a schedule's stop).
  void start_next_epoch(int64_t epochs);
};

struct RunPaths {
  std::string dir;
  std::string config() const { return dir + "/config.json"; }
  std::string vocab() const { return dir + "/vocab.json"; }
  std::string corpus() const { return dir + "/corpus.json"; }  // the text's files, sizes and content hashes
  std::string model() const { return dir + "/model.safetensors"; }
  std::string state() const { return dir + "/state.safetensors"; }
  std::string best() const { return dir + "/best.safetensors"; }
  std::string average() const { return dir + "/average.safetensors"; }
  std::string metrics() const { return dir + "/metrics.jsonl"; }
  std::string residuals(int rank) const { return dir + "/residual.rank" + std::to_string(rank) + ".safetensors"; }
  bool holds_run() const;       // config.json or a weights or state file exists (vocab.json alone: a failed start)
  bool has_checkpoint() const;  // a checkpoint was saved (ask after recover_checkpoint)
};

// `state` holds the arenas of state.safetensors: the carried hidden state and optimizer moments.
void save_checkpoint(const RunPaths& run, const Arena& params, const std::vector<const Arena*>& state,
                     const TrainState& st, const std::string& model_meta_json, bool tied);
// Before resuming (on one process, the writer): completes a save interrupted between its two renames, or
// discards one interrupted earlier. Returns a note saying which, or "" when there was none.
std::string recover_checkpoint(const RunPaths& run);
// Removes what dead writers left in the run directory (the caller holds its lock): temporary files of atomic writes
// (NAME.tmp.PID) and, with `next` (a new run in a directory that exists), the .next halves of a checkpoint.
void remove_temporaries(const RunPaths& run, bool next);
// Loads the weights, and the training state into `state` unless it is empty (then returns {}). A
// checkpoint that has averaged updates (--average-from) also fills `average` (its tensors are "average.*"
// in state.safetensors; the caller passes it in `state` when saving); without `average`, a UserError.
// `description` (model_description; "" skips the check): the model file's recorded one must match, key by key
// (check_described_model). `note` receives one warning line when a file has no checksums (an older manylm's).
TrainState load_checkpoint(const RunPaths& run, Arena& params, const std::vector<Arena*>& state,
                           Arena* average = nullptr, const std::string& description = {}, std::string* note = nullptr);

// --keep-best: the weights of epoch st.sched.best_epoch, scoring valid_ppl. load_best returns that epoch.
void save_best(const RunPaths& run, const Arena& params, const TrainState& st, double valid_ppl,
               const std::string& model_meta_json, bool tied);
int64_t load_best(const RunPaths& run, Arena& params, const std::string& description = {}, std::string* note = nullptr);
// A weights file of the model `description` describes into `params` (as load_checkpoint's model file).
SafeTensorsFile load_weights(const std::string& path, Arena& params, const std::string& description,
                             std::string* note = nullptr);
// The model a manylm weights file describes (its "manylm" metadata: cell, sizes, vocabulary), "" if none.
// Files of equal tensor shapes may hold different models (a tanh and a relu cell).
std::string described_model(const SafeTensorsFile& f);
// UserError naming `path` when its recorded description differs from `expected` in a key both have (a file of an
// older manylm lacks some: vocab_crc32c); a file without one (PyTorch's) passes.
void check_described_model(const SafeTensorsFile& f, const std::string& path, const std::string& expected);

// --average-from: the running mean of the weights at an epoch end (`average` has the parameters' table).
void save_average(const RunPaths& run, const Arena& average, const TrainState& st, int64_t from_epoch,
                  const std::string& model_meta_json, bool tied);

// A data-parallel rank's error-feedback residuals (mpi/reducer.h), one file per rank beside the
// checkpoint, recording the step and a tag (rank count and scheme). Loading returns false, having
// filled nothing reliable, when the file is absent or was written at another step or for another tag.
using NamedSpans = std::vector<std::pair<std::string, std::span<float>>>;
void save_residuals(const std::string& path, const NamedSpans& state, int64_t step, const std::string& tag);
bool load_residuals(const std::string& path, const NamedSpans& state, int64_t step, const std::string& tag);

// Keeps only the metrics lines whose "step" is <= step, without "test" records (used when resuming). Atomic.
void truncate_metrics(const RunPaths& run, int64_t step);

}  // namespace manylm

#include "data/vocab.h"
#include "model/shape.h"
#include "train/config.h"

namespace manylm {
// A trained model ready for eval or sampling: config, vocabulary, shape and weights of a run directory
// (its best epoch's weights when it kept them, else the last checkpoint's).
struct LoadedModel {
  Config config;
  Vocab vocab;
  ModelShape shape;
  Arena params;
  std::string weights;  // the file read
  int64_t epoch = 0;    // best.safetensors: the epoch it holds
};
// `weights`: "auto" (best.safetensors when present, else average.safetensors, else the checkpoint), "best" or
// "average" (UserError without it), "last" (the checkpoint's model.safetensors), or the path of a weights
// file of this model (`manylm average`).
LoadedModel load_run_model(const std::string& run_dir, const std::string& weights = "auto");
// The model a run's weights files describe (their "manylm" metadata): cell, activation, token unit, sizes, and the
// vocabulary's size and CRC-32C (of its vocab.json text), so that a file of another model or vocabulary is refused.
std::string model_description(const Config& c, const Vocab& vocab);
// UserError naming `path` for a training state outside what the run's config and its training text of `windows`
// windows per epoch allow: step, epoch, window (and step = epoch x windows + window), rate, losses, token counts,
// times, averaging, rollbacks.
void check_train_state(const TrainState& st, const Config& c, int64_t windows, const std::string& path);
// The help of eval's and sample's --weights.
inline constexpr const char* kWeightsHelp =
    "auto (the best validation epoch's when the run kept them, else the averaged ones of --average-from, else the "
    "last), best, average, last, or a weights file of this model (e.g. from manylm average)";
}  // namespace manylm
