// progress.h — what a run tells the person watching: on a terminal one live status line on stderr
// (epoch, percent, tokens/s, train perplexity, ETA); otherwise a plain line every --progress-seconds.
// Also appends metrics.jsonl records. Not the JSON result on stdout (that is the CLI's).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace manylm {

class Progress {
 public:
  // silent: prints and records nothing (data-parallel ranks other than 0).
  Progress(double every_seconds, std::string metrics_path, bool silent = false);
  // Called after every step with that step's loss (nats) and tokens; prints and records only when due.
  // Records carry the perplexity since the previous record; the live line the epoch's so far, and the
  // time left in this epoch and (when longer) in the whole run, at tokens_per_sec.
  void step(int64_t epoch, int64_t epochs, int64_t window, int64_t windows, int64_t step, double lr,
            double step_loss, int64_t step_tokens, double epoch_ppl, double tokens_per_sec, double eta_seconds,
            double run_eta_seconds);
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
