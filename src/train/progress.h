// progress.h — what a run tells the person watching: on a terminal one live status line on stderr
// (epoch, percent, tokens/s, train perplexity, ETA); otherwise a plain line every --progress-seconds. Also
// the run's other lines (its start, each epoch's end, the final scores) and the metrics.jsonl records, and
// the arithmetic behind them (rates, times left). Not the JSON result on stdout (that is the CLI's).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

namespace manylm {

struct Config;
struct TrainResult;

// Tokens over seconds of training: this process's rate (a resumed run's earlier sessions are not in it).
struct Pace {
  double tokens = 0, seconds = 0;
  void add(double t, double s) { tokens += t, seconds += s; }
  double rate() const { return tokens / std::max(seconds, 1e-9); }
};

// Where training stands after one step, as the trainer tells Progress.
struct StepReport {
  int64_t epoch = 0, epochs = 0;    // epoch counts from 0
  int64_t window = 0, windows = 0;  // BPTT windows done in this epoch, and in all of it
  int64_t step = 0;
  double lr = 0;
  double loss = 0;            // this step's summed loss (nats) ...
  int64_t tokens = 0;         // ... over this many tokens
  double epoch_ppl = 0;       // the epoch's train perplexity so far
  double tokens_per_sec = 0;  // this process's rate over the current epoch
  double epoch_eta_seconds = 0, run_eta_seconds = 0;

  // Sets the times left at tokens_per_sec: the rest of this epoch and of the run (--epochs, or --max-steps
  // when it comes first; 0: none), each window holding `window_tokens` tokens.
  void set_eta(int64_t window_tokens, int64_t max_steps);
};

// An epoch's end: its line on stderr and its "valid" record in metrics.jsonl.
struct EpochReport {
  int64_t epoch = 0;  // 1-based
  int64_t step = 0;
  double lr = 0;  // the rate the epoch trained with
  double train_ppl = 0, valid_ppl = 0;
  double tokens_per_sec = 0;                          // this process's, over the epoch
  double epoch_train_seconds = 0, train_seconds = 0;  // the run's, resumes included
  int64_t averaged_updates = 0;                       // > 0: valid_ppl scores the running mean of the weights
};

// A run's first line: the model, threads and ranks, the training text, the run directory.
std::string start_line(const Config& c, int64_t vocab, int64_t params, int threads, int ranks, int64_t train_tokens,
                       bool cached_ids, const std::string& run_dir);

class Progress {
 public:
  // silent: prints and records nothing (data-parallel ranks other than 0).
  Progress(double every_seconds, std::string metrics_path, bool silent = false);
  // Called after every step; prints and records only when due. Records carry the perplexity since the
  // previous record; the live line the epoch's so far, and the time left in this epoch and (when longer)
  // in the whole run.
  void step(const StepReport& r);
  void line(const std::string& text);  // a permanent line (clears a live line first)
  void record(const std::string& json_line);
  void epoch_end(const EpochReport& r);
  void resumed(int64_t step, int64_t epoch, int64_t window);  // epoch counts from 0
  void stopped_by_signal(int64_t step, const std::string& run_dir);
  // --average-nonmono fired: averaging from epoch `from` (1-based), the best being `best_epoch`'s.
  void averaging_starts(int64_t from, int64_t best_epoch, int64_t nonmono);
  // What the final scores score: the best epoch's weights (--keep-best) or the running mean (--average-from).
  void scoring_best(int64_t epoch, const std::string& path);
  void scoring_average(int64_t updates, int64_t from_epoch);
  // The end of a run: its "test" record and the done line (with ranks, the gradient traffic too).
  void finish(const TrainResult& r, int64_t step, const char* codec);
  bool tty() const { return tty_; }

 private:
  double every_;
  std::string metrics_;
  bool tty_;
  bool silent_;
  bool live_ = false;
  double interval_loss_ = 0;
  int64_t interval_tokens_ = 0;
  std::chrono::steady_clock::time_point last_print_, last_record_;
};

}  // namespace manylm
