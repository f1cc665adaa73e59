// progress.h — what a run tells the person watching: on a terminal one live status line on stderr
// (epoch, percent, tokens/s, train perplexity, ETA); otherwise a plain line every --progress-seconds.
// Also appends metrics.jsonl records. Not the JSON result on stdout (that is the CLI's).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace manylm {

// Where training stands after one step, as the trainer tells Progress.
struct StepReport {
  int64_t epoch = 0, epochs = 0;    // epoch counts from 0
  int64_t window = 0, windows = 0;  // BPTT windows done in this epoch, and in all of it
  int64_t step = 0;
  double lr = 0;
  double loss = 0;                   // this step's summed loss (nats) ...
  int64_t tokens = 0;                // ... over this many tokens
  double epoch_ppl = 0;              // the epoch's train perplexity so far
  double tokens_per_sec = 0;         // this process's rate over the current epoch
  double epoch_eta_seconds = 0, run_eta_seconds = 0;
};

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
