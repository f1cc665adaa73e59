// trainer.cc — see trainer.h. A run is the type Run: its constructor builds everything (the run directory
// opened or resumed, the engine, the data, the model, the optimizer, the reducer); train() is the loop, read
// top-down: epochs of steps, the end of each epoch, the final scores. Resuming is resume.h's, the lines and
// records progress.h's; what is left here is the order of things.
#include "train/trainer.h"

#include <fmt/format.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "core/engine.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/io.h"
#include "core/kernels.h"
#include "core/parallel.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/shuffle.h"
#include "model/model.h"
#include "mpi/comm.h"
#include "mpi/reducer.h"
#include "mpi/watchdog.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/guard.h"
#include "train/memory.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/resume.h"

namespace manylm {

namespace {

std::atomic<int> g_stop_signal{0};  // the one global: written by the signal handler only
extern "C" void on_stop_signal(int sig) { g_stop_signal.store(sig); }

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

void install_stop_signals() {
  // The handler stays for threads that already exist with the signals unblocked (none in manylm; a library's
  // maybe). Every thread created from here on — the OpenMP team, the libraries' threads, MPI's, the reducer's
  // — inherits the signals blocked, and one thread takes them with sigwait: a handler never runs on a
  // compute thread's stack. (With the handler alone, Ctrl-C on a 2-rank mpirun crashed 1 to 4 runs in 10
  // inside oneDNN's matmul — heap corruption or a segfault; never with OpenBLAS, never without the signal:
  // consistent with JIT code keeping data below the stack pointer, where a signal frame lands.)
  // A second signal (2 s or more after the first) before the run has stopped exits at once, status 128 + signal.
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    std::chrono::steady_clock::time_point first;
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      const auto now = std::chrono::steady_clock::now();
      if (g_stop_signal.load() == 0) first = now;
      // A second one, at least 2 s after the first (a launcher may relay one Ctrl-C as two signals): leave
      // now; an interrupted save is recovered on resume.
      if (g_stop_signal.exchange(sig) != 0 && now - first >= std::chrono::seconds(2)) {
        constexpr char msg[] = "manylm: second signal: exiting without saving\n";
        [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
        std::_Exit(128 + sig);
      }
    }
  }).detach();
}

namespace {

// The end of the line the watchdog prints when a rank hangs or dies: where the last intact checkpoint is and the
// command that resumes it (on any number of ranks).
std::string resume_note(const std::string& dir, int64_t saved_step, int ranks) {
  if (saved_step < 0) return fmt::format("{} holds no checkpoint yet: start the run again", dir);
  std::error_code ec;
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  return fmt::format("the last intact checkpoint is {} (step {}): resume with mpirun -np {} {} train --resume {}", dir,
                     saved_step, ranks, ec ? "manylm" : exe, dir);
}

// The engine as a run builds it: threads, GEMM backend, precision (the bf16 copy of the parameters is the
// engine's own: the model declares the block, the optimizer's update and evaluate() make the copy stale).
// More threads than the CPUs this process may use run many times slower (the team waits at every barrier for
// threads that are not running): capped, with a note, unless --threads-force.
int thread_count(const Config& c) { return c.threads > cpu_count() && !c.threads_force ? cpu_count() : c.threads; }

std::string threads_note(const Config& c) {
  if (thread_count(c) == c.threads) return "";
  return fmt::format("note: --threads {} capped at the {} CPUs this process may use (--threads-force keeps it)",
                     c.threads, cpu_count());
}

// The model of the run, refused before anything is allocated or written when it cannot fit in memory.
ModelShape checked_shape(const Config& c, int64_t vocab, int64_t lanes) {
  const ModelShape s = c.model_shape(vocab);
  check_run_memory(c, s, lanes, ranks_on_this_node());
  return s;
}

EngineOptions engine_options(const Config& c) {
  EngineOptions eo;
  eo.threads = thread_count(c);
  eo.backend = c.gemm;
  eo.precision = c.precision;
  return eo;
}

// A large embedding table updated densely every step (Adam, weight decay or averaging keep it dense under auto).
std::string dense_table_note(const Config& c, const ModelShape& s, const Optimizer& opt) {
  if (opt.sparse() || s.tied || s.vocab * s.embed < (int64_t{1} << 25)) return "";
  return fmt::format(
      "note: every step visits all {} x {} embedding rows ({} --sparse-updates {}); --sparse-updates on "
      "visits only the rows a step uses",
      s.vocab, s.embed, name_of(c.optimizer), name_of(c.sparse_updates));
}

std::string precision_note(const Config& c, const Engine& e) {
  if (c.precision != Precision::Bf16) return "";
  if (e.precision() != Precision::Bf16) return "note: --precision bf16: this CPU has no AVX512_BF16; training in fp32";
  return "precision: bf16 products (fp32 accumulation, fp32 master weights)";
}

// The run's text: the vocabulary and the ids of its three parts (each a file, or shards). Rank 0 builds the
// vocabulary (or reads the run's) and the id caches; the others receive the one and map the others. Every
// check of the data happens here, before the run directory is touched: also that a resumed run reads the text
// it was trained on.
struct RunData {
  Vocab vocab;
  std::string train_path, valid_path, test_path;
  CorpusIds train, valid, test;
  std::string fingerprint() const {  // corpus.json
    return fmt::format("{{\"train\": {}, \"valid\": {}, \"test\": {}}}\n", train.fingerprint(), valid.fingerprint(),
                       test.fingerprint());
  }
};

// The token that ends a sentence: <eos> (words) or the newline (characters); -1 if the vocabulary has none.
int32_t sentence_end(const Vocab& v) { return v.mode() == TokenMode::Word ? v.eos() : v.find("\n"); }

RunData load_data(const RunOpening& o, const Comm& comm) {
  const Config& c = o.config;
  RunData d{{}, c.train_path(), c.valid_path(), c.test_path(), {}, {}, {}};
  const std::vector<std::string> train = corpus_paths(d.train_path, "--train"),
                                 valid = corpus_paths(d.valid_path, "--valid"),
                                 test = corpus_paths(d.test_path, "--test");
  if (o.resuming()) {
    d.vocab = Vocab::from_json(read_file(o.run.vocab(), "vocabulary"), o.run.vocab());
  } else if (!comm.distributed()) {
    d.vocab = run_vocabulary(c);  // (800k words: a JSON round trip costs seconds)
  } else {
    std::string text;
    if (comm.root()) text = run_vocabulary(c).to_json();
    d.vocab = Vocab::from_json(comm.broadcast(text), "vocabulary from rank 0");
  }
  if (d.vocab.mode() != c.tokens)
    fail("{}: vocabulary is in {} mode but --tokens is {}", o.run.vocab(), name_of(d.vocab.mode()), name_of(c.tokens));
  auto load_ids = [&](const std::vector<std::string>& files, const char* what) {
    if (!comm.root()) comm.barrier();  // wait until rank 0 has written the cache
    CorpusIds ids = CorpusIds::load(files, d.vocab, c.cache_path(), comm.root() ? what : "");
    if (comm.root()) comm.barrier();
    return ids;
  };
  d.train = load_ids(train, "encoding the training text");
  d.valid = load_ids(valid, "encoding the validation text");
  d.test = load_ids(test, "encoding the test text");
  if (d.train.size() == 0) fail("{}: empty corpus: no tokens", d.train_path);
  Batcher(TokenSequence(d.train.pieces()), c.batch, c.bptt, d.train_path);
  if (c.shuffle == Shuffle::Sentences && sentence_end(d.vocab) < 0)
    fail("--shuffle sentences: the vocabulary of {} has no line end to cut sentences at", d.train_path);
  Batcher(TokenSequence(d.valid.pieces()), c.eval_batch, c.bptt, d.valid_path, "--eval-batch");
  Batcher(TokenSequence(d.test.pieces()), c.eval_batch, c.bptt, d.test_path, "--eval-batch");
  if (o.resuming()) check_corpus_unchanged(o, d.fingerprint());
  return d;
}

// --shuffle sentences: the training text's blocks of whole sentences, cut once; each epoch permutes them.
SentenceBlocks sentence_blocks(const Config& c, const RunData& d) {
  if (c.shuffle == Shuffle::None) return {};
  return SentenceBlocks(TokenSequence(d.train.pieces()), sentence_end(d.vocab), c.shuffle_block);
}

ReduceOptions reduce_options(const Config& c) {
  ReduceOptions ro;
  ro.codec = c.grad_compress;
  ro.bucket_floats = std::max<int64_t>(1, static_cast<int64_t>(c.bucket_mb * (1 << 20) / sizeof(float)));
  ro.tau = static_cast<float>(c.threshold_tau);
  ro.density = c.threshold_density;
  ro.deterministic = c.deterministic;
  ro.progress_thread = c.comm_thread;
  return ro;
}

// One training run, from its Config to its result. Data parallel over the ranks of `comm`: each holds its
// lanes [lane0_, lane1_) of the global batch; every collective is called by every rank at the same step.
class Run {
 public:
  Run(const Config& given, const Comm& comm);
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;
  TrainResult train();
  void discard_unsaved() noexcept;

 private:
  struct StepOutcome {
    bool signalled = false;    // on any rank: save and stop
    bool save_due = false;     // --checkpoint-steps, or rank 0's --checkpoint-minutes
    bool rolled_back = false;  // the step diverged: nothing applied, the run went back to its last checkpoint
  };
  void restore();  // from the checkpoint of a resumed run
  void start();    // from ±init or --init-from
  void load_last_checkpoint();
  void initial_weights();
  void announce();
  void connect_reducer();
  void order_epoch();
  StepOutcome step();
  void report_step(double loss, int64_t tokens);
  void end_epoch();
  const Arena& epoch_weights();
  bool save();
  void write_checkpoint();
  bool weights_finite() const;
  std::string weights_verdict();
  void diverged(const std::string& why);
  void roll_back(const std::string& why);
  TrainResult interrupted();
  TrainResult final_scores();
  void load_scored_weights();
  void gradient_traffic();
  void fill_totals();
  EvalResult eval(const Arena& weights, const CorpusIds& ids, const std::string& path);
  double uniform_loss() const { return std::log(static_cast<double>(shape_.vocab)); }  // ln V, the guard's floor
  bool averaging() const { return c_.average_from > 0 || c_.average_nonmono > 0; }
  // The epoch (1-based) from which the weights are averaged: fixed, or once --average-nonmono has fired; 0: not.
  int64_t average_from() const { return c_.average_from > 0 ? c_.average_from : st_.average_start; }

  const Comm& comm_;
  const Clock::time_point wall_start_ = Clock::now();
  RunOpening open_;
  const Config& c_ = open_.config;
  const RunPaths& run_ = open_.run;
  RunLock lock_;  // rank 0: the run directory's one writer (--resume: from here; a new run: once it exists)
  const int64_t lane0_, lane1_, B_;  // this rank's lanes of the global batch (all of them with one rank)
  Engine engine_;
  RunData data_;
  Batcher batcher_;             // the training text in this epoch's order
  SentenceBlocks blocks_;       // --shuffle sentences: what each epoch's order permutes
  double blocks_seconds_ = 0;   // the time cutting them took
  int64_t ordered_epoch_ = -1;  // the epoch batcher_ holds the order of (-1: the text as it is)
  ModelShape shape_;
  Arena params_, grads_, hidden_;
  Arena probe_hidden_;  // the carried state of the guard's look at the weights before a save (weights_verdict)
  RowGrad embed_rows_;  // sparse updates: the embedding's gradient, as the rows a step touched
  Arena all_hidden_;    // every lane's carried state, as checkpoints hold it
  Optimizer optimizer_;
  std::vector<Arena*> state_;  // what state.safetensors holds: the carried state, the optimizer's moments
  Arena average_;              // --average-from: the running mean of the weights (checkpointed once it has begun)
  Arena averaged_;             // the running mean under the parameters' names, at epoch ends
  std::string meta_;
  TrainState st_;
  Recovery recovery_;
  Progress progress_;
  Workspace ws_;
  ReduceOptions reduce_options_;
  GradReducer reducer_;
  Watchdog watchdog_;    // --comm-timeout: ends a job whose step collectives hang, naming the checkpoint to resume
  NamedSpans feedback_;  // the reducer's error-feedback residuals
  std::string residual_tag_;
  DropoutConfig drop_;
  std::vector<int32_t> x_, y_;
  Clock::time_point last_checkpoint_;
  // Speeds shown are this process's: the checkpointed totals also hold the time of earlier sessions (and
  // whatever else shared the machine then), which would hide the present rate.
  Pace run_pace_, epoch_pace_;
  double input_seconds_ = 0;  // this process's time making windows and epoch orders
  bool stop_steps_ = false;   // --max-steps reached
  int64_t saved_step_ = -1;   // the step of the last checkpoint in the run directory (-1: none yet)
  bool created_ = false;      // rank 0 made the run directory (write_run_start)
  double max_ratio_ = 0;      // the divergence guard's largest loss ratio among this process's accepted steps
  TrainResult r_;
};

Run::Run(const Config& given, const Comm& comm)
    : comm_(comm),
      open_(open_run(given, comm)),
      lock_(open_, comm),
      lane0_(static_range(c_.batch, comm.rank(), comm.size()).first),
      lane1_(static_range(c_.batch, comm.rank(), comm.size()).second),
      B_(lane1_ - lane0_),
      engine_(engine_options(c_)),
      data_(load_data(open_, comm)),
      batcher_(TokenSequence(data_.train.pieces()), c_.batch, c_.bptt, data_.train_path),
      shape_(checked_shape(c_, data_.vocab.size(), B_)),
      params_(param_table(shape_)),
      grads_(grad_table(shape_, use_sparse_updates(c_))),
      hidden_(state_table(shape_, B_)),
      probe_hidden_(state_table(shape_, B_)),
      all_hidden_(state_table(shape_, c_.batch)),
      optimizer_(c_, params_.table()),
      meta_(model_description(c_, data_.vocab)),
      progress_(c_.progress_seconds, run_.metrics(), !comm.root()),
      ws_(shape_, c_.bptt, B_, c_.dropout > 0),
      reduce_options_(reduce_options(c_)),
      reducer_(comm, grads_.flat(), reduce_options_),
      watchdog_(comm, WatchdogOptions{.timeout = c_.comm_timeout}),
      drop_{static_cast<float>(c_.dropout), c_.dropout_mask == DropoutMask::Variational, c_.seed, 0, lane0_, c_.batch} {
  const auto t0 = Clock::now();
  blocks_ = sentence_blocks(c_, data_);
  blocks_seconds_ = seconds_since(t0);
  state_.push_back(&all_hidden_);
  for (Arena* a : optimizer_.state()) state_.push_back(a);
  if (averaging()) average_ = Arena(prefixed_table(params_.table(), "average."));
  recovery_ = recover_run(open_, comm_);
  if (recovery_.from_checkpoint) {
    restore();
    saved_step_ = st_.step;
  } else {
    start();
  }
  announce();
  connect_reducer();
  reducer_.watch(&watchdog_);
  watchdog_.set_note(resume_note(run_.dir, saved_step_, comm_.size()));
  r_.run_dir = run_.dir;
  r_.eval_batch = c_.eval_batch;
  r_.bptt = c_.bptt;
  r_.params = param_count(shape_);
  r_.ranks = comm_.size();
  last_checkpoint_ = Clock::now();
}

// The run directory's checkpoint: weights, training state, optimizer moments, this rank's lanes of the carried
// state. Every rank reads the files (a shared file system, as for --resume).
void Run::load_last_checkpoint() {
  std::string note;
  st_ = load_checkpoint(run_, params_, state_, averaging() ? &average_ : nullptr, meta_, &note);
  check_train_state(st_, c_, batcher_.windows(), run_.state());
  if (!note.empty() && recovery_.note.find(note) == std::string::npos)
    recovery_.note += (recovery_.note.empty() ? "" : "\n") + note;
  if (!all_finite(params_.data(), static_cast<int64_t>(params_.size())))
    fail(
        "{}: holds weights that are not finite (NaN or inf); resume from a copy of an earlier checkpoint or "
        "retrain with a lower --lr",
        run_.model());
  for (size_t k = 0; k < hidden_.table().size(); ++k)  // this rank's lanes of the carried state
    std::memcpy(hidden_[k].data, all_hidden_[k].data + lane0_ * shape_.hidden, hidden_[k].numel() * sizeof(float));
  engine_.constants_changed();
}

void Run::restore() {
  load_last_checkpoint();
  if (c_.max_steps > 0 && st_.step >= c_.max_steps)  // before anything is printed or changed
    fail(
        "--max-steps: {} is at or below the step {} of the run resumed from {}: nothing would be trained (give a "
        "larger --max-steps, or leave it out)",
        c_.max_steps, st_.step, run_.dir);
  st_.finished = st_.epoch >= c_.epochs || st_.sched.stop;  // a larger --epochs continues a finished run
  if (const std::string note = reconcile_average_from(open_, st_, comm_); !note.empty())
    recovery_.note += (recovery_.note.empty() ? "" : "\n") + note;
  comm_.barrier();  // every rank has read the checkpoint before rank 0 touches the metrics
  if (comm_.root()) truncate_metrics(run_, st_.step);
}

void Run::start() {
  initial_weights();
  if (comm_.root()) created_ = write_run_start(open_, data_.vocab, data_.fingerprint(), lock_.lock);
}

// The run's step 0, derived again as often as asked: ±init from the seed, or the --init-from file.
void Run::initial_weights() {
  init_uniform(params_, c_.seed, c_.init);
  // Every rank reads the --init-from file, as a checkpoint (a shared file system).
  if (!c_.init_from.empty()) load_initial_weights(c_.init_from, params_, meta_);
  engine_.constants_changed();
  st_ = TrainState{};
  st_.sched.lr = c_.lr;
}

void Run::announce() {
  progress_.line(start_line(c_, data_.vocab.size(), param_count(shape_), engine_.threads(), comm_.size(),
                            data_.train.size(), data_.train.from_cache(), run_.dir));
  if (!recovery_.note.empty()) progress_.line(recovery_.note);
  if (!recovery_.from_checkpoint && !c_.init_from.empty())
    progress_.line(fmt::format("weights from {} (--init-from)", c_.init_from));
  if (recovery_.from_checkpoint) progress_.resumed(st_.step, st_.epoch, st_.window);
  if (const std::string note = precision_note(c_, engine_); !note.empty()) progress_.line(note);
  if (const std::string note = threads_note(c_); !note.empty()) progress_.line(note);
  if (const std::string note = dense_table_note(c_, shape_, optimizer_); !note.empty()) progress_.line(note);
  if (c_.shuffle == Shuffle::Sentences)
    progress_.line(
        fmt::format("shuffle: {} blocks of whole sentences (at least {} tokens each, cut in {:.2f} s), a new order "
                    "every epoch",
                    blocks_.blocks(), c_.shuffle_block, blocks_seconds_));
}

void Run::connect_reducer() {
  if (optimizer_.sparse()) ws_.sparse_embedding = &embed_rows_;
  if (comm_.distributed()) {
    ws_.objective_lanes = c_.batch;  // the mean over the global batch: rank gradients sum to the global one
    ws_.grads_ready = [this](size_t from) { reducer_.ready(from); };
  }
  feedback_ = reducer_.feedback_state();
  residual_tag_ = residual_tag(comm_.size(), c_.grad_compress, reduce_options_.bucket_floats);
  if (recovery_.from_checkpoint && !feedback_.empty() &&
      !restore_residuals(run_, feedback_, st_.step, residual_tag_, comm_))
    progress_.line(
        "note: gradient residuals restart at zero (saved for another rank count, scheme, bucket size or step)");
}

// The run, top-down: epochs of steps (each epoch from a zero state, Zaremba et al.), each epoch's end,
// the final scores. A signal saves and returns at once; --max-steps saves and scores.
// A step or a save that the divergence guard refuses rolls the run back (roll_back): the loops carry on from
// the restored position.
TrainResult Run::train() {
  for (;;) {
    while (!st_.finished && !stop_steps_) {
      if (st_.window == 0) hidden_.zero();
      order_epoch();
      epoch_pace_ = {};
      while (st_.window < batcher_.windows()) {
        const StepOutcome s = step();
        if (s.signalled) return interrupted();
        if (s.rolled_back) continue;
        if (c_.max_steps > 0 && st_.step >= c_.max_steps) {
          stop_steps_ = true;
          break;
        }
        if (s.save_due) save();
      }
      if (stop_steps_ && st_.window < batcher_.windows()) break;  // stopped inside the epoch
      end_epoch();
    }
    if (!stop_steps_ || save()) break;
    stop_steps_ = false;  // the last weights failed the guard: rolled back, the training goes on
  }
  return final_scores();
}

// --shuffle sentences: the epoch's order of the blocks, a pure function of (seed, epoch): a resumed run builds the
// order of the epoch it stopped in, and every rank the same one (each reads its lanes of it).
void Run::order_epoch() {
  if (c_.shuffle == Shuffle::None || ordered_epoch_ == st_.epoch) return;
  const auto t0 = Clock::now();
  batcher_ = Batcher(blocks_.epoch_order(c_.seed, st_.epoch), c_.batch, c_.bptt, data_.train_path);
  ordered_epoch_ = st_.epoch;
  input_seconds_ += seconds_since(t0);
}

// One update, unless the divergence guard refuses it (from the loss summed over the ranks, then from the
// reduced gradient's norm: every rank decides alike), in which case nothing of it is applied.
Run::StepOutcome Run::step() {
  const auto t0 = Clock::now();
  const int64_t len = batcher_.window(st_.window, lane0_, lane1_, x_, y_);
  input_seconds_ += seconds_since(t0);
  watchdog_.set_step(st_.step);
  const int64_t tokens = len * c_.batch;
  double v[3] = {step_forward(engine_, shape_, params_, hidden_, ws_, drop_, x_.data(), y_.data(), len, B_, st_.step),
                 static_cast<double>(g_stop_signal.load()),
                 comm_.root() && seconds_since(last_checkpoint_) >= 60.0 * c_.checkpoint_minutes ? 1.0 : 0.0};
  {
    const Watchdog::Armed armed = watchdog_.arm("the loss sum");
    comm_.sum(v);  // the global loss, and whether any rank was signalled or rank 0's clock says save
  }
  watchdog_.start_watching();  // from the session's second step: the first one tunes GEMMs
  double ratio = 0;
  std::string why =
      loss_verdict(v[0] / static_cast<double>(tokens), st_.running_loss, uniform_loss(), c_.diverge_ratio, &ratio);
  StepGradient g;
  if (why.empty()) {
    g = step_backward(engine_, shape_, params_, grads_, ws_, optimizer_, drop_, x_.data(), len, B_, st_.step, nullptr,
                      comm_.distributed() ? &reducer_ : nullptr);
    if (!std::isfinite(g.norm)) why = fmt::format("the gradient norm is {}", g.norm);
  }
  if (!why.empty()) {
    diverged(why);
    return {v[1] > 0, false, true};
  }
  step_update(engine_, params_, grads_, optimizer_, g, c_.clip, st_.sched.lr, st_.step);
  max_ratio_ = std::max(max_ratio_, ratio);
  st_.running_loss = running_loss_after(st_.running_loss, v[0] / static_cast<double>(tokens));
  if (average_from() > 0 && st_.epoch + 1 >= average_from())  // the same on every rank: the weights are
    running_mean(average_.data(), params_.data(), static_cast<int64_t>(params_.size()), ++st_.average_count);
  const double dt = seconds_since(t0);
  st_.step++;
  st_.window++;
  st_.epoch_loss += v[0];
  st_.epoch_tokens += tokens;
  st_.train_tokens += tokens;
  st_.train_seconds += dt;
  st_.epoch_seconds += dt;
  run_pace_.add(static_cast<double>(tokens), dt);
  epoch_pace_.add(static_cast<double>(tokens), dt);
  report_step(v[0], tokens);
  return {v[1] > 0, (c_.checkpoint_steps > 0 && st_.step % c_.checkpoint_steps == 0) || v[2] > 0};
}

void Run::report_step(double loss, int64_t tokens) {
  StepReport r{.epoch = st_.epoch,
               .epochs = c_.epochs,
               .window = st_.window,
               .windows = batcher_.windows(),
               .step = st_.step,
               .lr = st_.sched.lr,
               .loss = loss,
               .tokens = tokens,
               .epoch_ppl = std::exp(st_.epoch_loss / static_cast<double>(st_.epoch_tokens)),
               .tokens_per_sec = epoch_pace_.rate()};
  r.set_eta(c_.bptt * c_.batch, c_.max_steps);
  progress_.step(r);
}

// End of epoch: validate (the averaged weights once averaging has begun), schedule, keep the best, checkpoint.
void Run::end_epoch() {
  // The weights pass the guard before anything of the epoch's end is written (best, average, the checkpoint).
  if (const std::string why = weights_verdict(); !why.empty()) return diverged(why);
  const double train_ppl = std::exp(st_.epoch_loss / static_cast<double>(st_.epoch_tokens));
  const Arena& scored = epoch_weights();
  const EvalResult v = eval(scored, data_.valid, data_.valid_path);
  const double lr_used = st_.sched.lr;
  const bool best = schedule_after_epoch(c_, st_.epoch + 1, v.mean_loss(), st_.sched);
  if (c_.average_nonmono > 0 && st_.average_start == 0 && st_.epoch + 1 - st_.sched.best_epoch >= c_.average_nonmono) {
    st_.average_start = st_.epoch + 2;
    progress_.averaging_starts(st_.average_start, st_.sched.best_epoch, c_.average_nonmono);
  }
  if (best && c_.keep_best && comm_.root()) save_best(run_, scored, st_, v.perplexity(), meta_, shape_.tied);
  progress_.epoch_end({.epoch = st_.epoch + 1,
                       .step = st_.step,
                       .lr = lr_used,
                       .train_ppl = train_ppl,
                       .valid_ppl = v.perplexity(),
                       .tokens_per_sec = epoch_pace_.rate(),
                       .epoch_train_seconds = st_.epoch_seconds,
                       .train_seconds = st_.train_seconds,
                       .averaged_updates = st_.average_count});
  r_.train_ppl = train_ppl;
  st_.start_next_epoch(c_.epochs);
  write_checkpoint();  // the weights passed the guard above
}

// The weights an epoch's end validates: the parameters, or once averaging has begun their running mean
// (then also written to average.safetensors).
const Arena& Run::epoch_weights() {
  if (st_.average_count == 0) return params_;
  if (averaged_.size() == 0) averaged_ = Arena(params_.table());
  std::memcpy(averaged_.data(), average_.data(), params_.size() * sizeof(float));
  if (comm_.root()) save_average(run_, averaged_, st_, average_from(), meta_, shape_.tied);
  return averaged_;
}

// A checkpoint of the weights as they are, once they pass the guard (weights_verdict); false when they did not:
// the run went back to its last checkpoint instead (or stopped), and nothing was written. Collective.
bool Run::save() {
  if (const std::string why = weights_verdict(); !why.empty()) {
    diverged(why);
    return false;
  }
  write_checkpoint();
  return true;
}

void Run::write_checkpoint() {  // collective: every rank calls it at the same step
  if (!weights_finite()) throw std::logic_error("write_checkpoint: weights that are not finite");
  for (size_t k = 0; k < hidden_.table().size(); ++k)
    comm_.gather_rows(hidden_[k].data, lane0_, lane1_, shape_.hidden, all_hidden_[k].data);
  comm_.check_same(params_.flat(), "parameters");
  if (!feedback_.empty()) save_residuals(run_.residuals(comm_.rank()), feedback_, st_.step, residual_tag_);
  if (comm_.root()) {
    std::vector<const Arena*> saved(state_.begin(), state_.end());
    if (st_.average_count > 0) saved.push_back(&average_);
    save_checkpoint(run_, params_, saved, st_, meta_, shape_.tied);
  }
  comm_.barrier();
  last_checkpoint_ = Clock::now();
  saved_step_ = st_.step;
  watchdog_.set_note(resume_note(run_.dir, saved_step_, comm_.size()));
}

// The same on every rank (the parameters are).
bool Run::weights_finite() const {
  return all_finite(params_.data(), static_cast<int64_t>(params_.size())) &&
         (st_.average_count == 0 || all_finite(average_.data(), static_cast<int64_t>(average_.size())));
}

// The guard on the weights a checkpoint would hold: finite, and the loss of the step that would follow (its
// window, carried state and dropout masks: the very number that step computes, so that a run checkpointed here
// and resumed takes the decisions of the run that went on), summed over the ranks. "" when they pass.
std::string Run::weights_verdict() {
  if (!weights_finite()) return "the weights hold NaN or inf";
  int64_t e = st_.epoch, w = st_.window;
  if (w >= batcher_.windows()) e += 1, w = 0;  // after an epoch's last window: the next epoch's first
  if (w == 0)
    probe_hidden_.zero();
  else
    std::memcpy(probe_hidden_.data(), hidden_.data(), hidden_.size() * sizeof(float));
  std::optional<Batcher> next;  // --shuffle sentences: that epoch's order, when batcher_ holds another's
  if (c_.shuffle != Shuffle::None && ordered_epoch_ != e)
    next.emplace(blocks_.epoch_order(c_.seed, e), c_.batch, c_.bptt, data_.train_path);
  const int64_t len = (next ? *next : batcher_).window(w, lane0_, lane1_, x_, y_);
  double v[1] = {
      step_forward(engine_, shape_, params_, probe_hidden_, ws_, drop_, x_.data(), y_.data(), len, B_, st_.step)};
  {
    const Watchdog::Armed armed = watchdog_.arm("the guard's loss sum");
    comm_.sum(v);
  }
  return loss_verdict(v[0] / static_cast<double>(len * c_.batch), st_.running_loss, uniform_loss(), c_.diverge_ratio);
}

// A step, or the weights of a save, refused by the guard (`why`): --on-diverge stop, or the last rollback
// allowed taken, end the run with one line; otherwise it rolls back.
void Run::diverged(const std::string& why) {
  const std::string kept =
      saved_step_ >= 0   ? fmt::format("{} holds the last good checkpoint, of step {}", run_.dir, saved_step_)
      : open_.resuming() ? fmt::format("{} has no checkpoint yet", run_.dir)
                         : fmt::format("no checkpoint was written (the run's files in {} are removed)", run_.dir);
  if (c_.on_diverge == OnDiverge::Stop)
    fail("training diverged at step {}: {}; nothing of it was applied or saved (--on-diverge stop); {}", st_.step + 1,
         why, kept);
  if (st_.sched.rollbacks >= c_.max_rollbacks)
    fail("training diverged at step {}: {}, after {} rollbacks (--max-rollbacks {}); {}; lower --lr or set --clip",
         st_.step + 1, why, st_.sched.rollbacks, c_.max_rollbacks, kept);
  roll_back(why);
}

// Back to the last checkpoint (before the first: to the run's initial weights, derived again), with the rate halved
// once more; the count of rollbacks goes into the state, so the next checkpoint resumes with it.
void Run::roll_back(const std::string& why) {
  const int64_t at = st_.step + 1, rollbacks = st_.sched.rollbacks + 1;
  grads_.zero();  // a refused gradient is never applied
  if (saved_step_ >= 0) {
    load_last_checkpoint();
    if (!feedback_.empty()) restore_residuals(run_, feedback_, st_.step, residual_tag_, comm_);
  } else {
    for (Arena* a : state_) a->zero();
    hidden_.zero();
    for (auto& [name, span] : feedback_) std::fill(span.begin(), span.end(), 0.0f);
    initial_weights();
  }
  st_.sched.lr = std::ldexp(st_.sched.lr, static_cast<int>(st_.sched.rollbacks - rollbacks));
  st_.sched.rollbacks = rollbacks;
  st_.finished = st_.epoch >= c_.epochs || st_.sched.stop;
  if (st_.window == 0) hidden_.zero();
  order_epoch();
  if (comm_.root()) truncate_metrics(run_, st_.step);
  progress_.line(fmt::format("diverged at step {} ({}): back to {}, lr {:.6g} (rollback {} of {})", at, why,
                             saved_step_ >= 0 ? fmt::format("the checkpoint of step {}", st_.step) : "the start",
                             st_.sched.lr, rollbacks, c_.max_rollbacks));
  progress_.record(nlohmann::json{
      {"type", "rollback"},
      {"step", st_.step},
      {"diverged_at", at},
      {"lr", st_.sched.lr},
      {"rollbacks", rollbacks},
      {"reason", why}}.dump());
}

// Stopped by SIGINT/SIGTERM: checkpoint, and no evaluation on the way out — the result reports the last
// epoch's validation and this epoch's training so far.
TrainResult Run::interrupted() {
  const int sig = std::max(1, g_stop_signal.load());
  if (!save()) write_checkpoint();  // refused by the guard: the rolled-back run, with its rollback recorded
  progress_.stopped_by_signal(st_.step, run_.dir);
  r_.interrupted = true;
  r_.signal = g_stop_signal.load() ? sig : SIGTERM;
  if (std::isfinite(st_.sched.last_valid)) r_.valid_ppl = std::exp(st_.sched.last_valid);
  if (st_.epoch_tokens > 0) r_.train_ppl = std::exp(st_.epoch_loss / static_cast<double>(st_.epoch_tokens));
  fill_totals();
  return r_;
}

TrainResult Run::final_scores() {
  load_scored_weights();
  const EvalResult v = eval(params_, data_.valid, data_.valid_path);
  const EvalResult t = eval(params_, data_.test, data_.test_path);
  if (r_.train_ppl == 0 && st_.epoch_tokens > 0)
    r_.train_ppl = std::exp(st_.epoch_loss / static_cast<double>(st_.epoch_tokens));
  r_.valid_ppl = v.perplexity();
  r_.test_ppl = t.perplexity();
  fill_totals();
  gradient_traffic();
  progress_.finish(r_, st_.step, name_of(c_.grad_compress));
  return r_;
}

// The weights the final scores are of: the last ones, their running mean with --average-from, or the best
// epoch's with --keep-best. Rank 0 reads the file (other ranks may not share its disk) and sends the weights.
// The checkpoint is saved: the parameters are free to hold the weights scored.
void Run::load_scored_weights() {
  r_.averaged_updates = st_.average_count;
  if (c_.keep_best && comm_.broadcast(comm_.root() && path_exists(run_.best()) ? "1" : "0") == "1") {
    if (comm_.root()) load_best(run_, params_);
    comm_.broadcast(params_.flat());
    engine_.constants_changed();
    r_.best_epoch = st_.sched.best_epoch;  // save_best wrote the file when the state's best last changed
    progress_.scoring_best(r_.best_epoch, run_.best());
  } else if (st_.average_count > 0) {
    std::memcpy(params_.data(), average_.data(), params_.size() * sizeof(float));
    engine_.constants_changed();
    progress_.scoring_average(st_.average_count, average_from());
  }
}

void Run::gradient_traffic() {  // per step, of the mean rank
  const ReduceStats& rs = reducer_.stats();
  if (rs.steps == 0) return;
  double v[6] = {rs.raw_bytes, rs.payload_bytes, rs.wire_bytes, rs.row_bytes, rs.comm_seconds, rs.wait_seconds};
  comm_.sum(v);
  const double n = static_cast<double>(rs.steps) * comm_.size();
  r_.raw_bytes_per_step = v[0] / n;
  r_.payload_bytes_per_step = v[1] / n;
  r_.wire_bytes_per_step = v[2] / n;
  r_.row_bytes_per_step = v[3] / n;
  r_.comm_ms_per_step = 1e3 * v[4] / n;
  r_.wait_ms_per_step = 1e3 * v[5] / n;
}

void Run::fill_totals() {  // what the result reports about the training, interrupted or not
  r_.steps = st_.step;
  r_.epochs = st_.epoch;
  r_.rollbacks = st_.sched.rollbacks;
  r_.max_loss_ratio = max_ratio_;
  const Pace whole_run{static_cast<double>(st_.train_tokens), st_.train_seconds};  // all sessions
  r_.tokens_per_sec = run_pace_.tokens > 0 ? run_pace_.rate() : whole_run.rate();
  r_.train_seconds = st_.train_seconds;
  r_.input_seconds = input_seconds_;
  r_.input_share = input_seconds_ / std::max(run_pace_.seconds, 1e-9);
  r_.wall_seconds = seconds_since(wall_start_);
}

// Evaluation splits the lanes over the ranks and sums.
EvalResult Run::eval(const Arena& weights, const CorpusIds& ids, const std::string& path) {
  auto [e0, e1] = static_range(c_.eval_batch, comm_.rank(), comm_.size());
  EvalResult e =
      evaluate(engine_, shape_, weights, TokenSequence(ids.pieces()), c_.eval_batch, c_.bptt, path, nullptr, e0, e1);
  double v[2] = {e.loss_sum, static_cast<double>(e.tokens)};
  comm_.sum(v);
  return EvalResult{v[0], static_cast<int64_t>(v[1])};
}

}  // namespace

// A new run that fails before its first checkpoint leaves nothing: the directory it created goes (in one that
// existed, the files it wrote). Rank 0.
void Run::discard_unsaved() noexcept {
  if (!comm_.root() || saved_step_ >= 0 || open_.resuming()) return;
  std::error_code ec;
  if (created_) {
    std::filesystem::remove_all(run_.dir, ec);
    return;
  }
  for (const std::string& f : {run_.config(), run_.vocab(), run_.metrics()}) std::filesystem::remove(f, ec);
}

TrainResult run_training(const Config& c, const Comm& comm) {
  g_stop_signal.store(0);  // a signal from here on (while the data loads, say) ends the run after its next step
  Run run(c, comm);
  try {
    return run.train();
  } catch (...) {
    run.discard_unsaved();
    throw;
  }
}

}  // namespace manylm
