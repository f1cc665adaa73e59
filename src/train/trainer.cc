// trainer.cc — see trainer.h.
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
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/engine.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/io.h"
#include "core/kernels.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "mpi/comm.h"
#include "mpi/reducer.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/options.h"
#include "train/progress.h"

namespace manylm {

namespace {

std::atomic<int> g_stop_signal{0};  // the one global: written by the signal handler only
extern "C" void on_stop_signal(int sig) { g_stop_signal.store(sig); }

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string default_run_dir(const Config& c) {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&now));
  return fmt::format("runs/{}-{}", c.cell, buf);
}

// The config as the run directory records it: the data directory actually used (default search included)
// and explicit corpus files as absolute paths, so that --resume and eval work from any directory; on
// another machine --data (or --train/--valid/--test) on the command line overrides them.
Config with_absolute_data_paths(Config c) {
  auto absolute = [](const std::string& p) { return std::filesystem::absolute(p).lexically_normal().string(); };
  if (c.train.empty() || c.valid.empty() || c.test.empty()) c.data = absolute(resolve_data_dir(c.data));
  for (std::string* f : {&c.train, &c.valid, &c.test, &c.init_from})
    if (!f->empty()) *f = absolute(*f);
  return c;
}

// Settings that define the trajectory of a run: --resume must not change them.
void check_resume_compatible(const Config& saved, const Config& now, const std::string& path) {
  auto same = [&](const char* opt, auto a, auto b) {
    if (a != b) fail("--{}: {} was trained with a different value; a resumed run keeps its settings", opt, path);
  };
  same("cell", saved.cell, now.cell);
  same("activation", saved.activation, now.activation);
  same("layers", saved.layers, now.layers);
  same("hidden", saved.hidden, now.hidden);
  same("embed", saved.embed, now.embed);
  same("tokens", saved.tokens, now.tokens);
  same("batch", saved.batch, now.batch);
  same("bptt", saved.bptt, now.bptt);
  same("seed", saved.seed, now.seed);
  same("dropout", saved.dropout, now.dropout);
  same("dropout-mask", saved.dropout_mask, now.dropout_mask);
  same("vocab-size", saved.vocab_size, now.vocab_size);
  same("min-count", saved.min_count, now.min_count);
  same("optimizer", saved.optimizer, now.optimizer);
  same("tied", saved.tied, now.tied);
  // The current rate is part of the checkpointed schedule state; a new --lr would apply to some schedules
  // and not others, at once or only from the next epoch.
  same("lr", saved.lr, now.lr);
  same("average-nonmono", saved.average_nonmono, now.average_nonmono);  // its trigger depends on the history
}

}  // namespace

double train_step(const Engine& e, const ModelShape& s, Arena& params, Arena& grads, Arena& hidden, Workspace& ws,
                  Optimizer& opt, DropoutConfig drop, const int32_t* x, const int32_t* y, int64_t len, int64_t B,
                  double clip, double lr, int64_t step, PhaseTimes* times, GradReducer* reducer) {
  drop.step = static_cast<uint64_t>(step);  // grads are zero: the previous update cleared them
  const double loss = model_forward(e, s, params, ws, x, y, len, B, hidden, true, nullptr, &drop, times);
  if (!std::isfinite(loss)) fail("training diverged at step {} (loss is {}): lower --lr or set --clip", step + 1, loss);
  model_backward(e, s, params, ws, x, len, B, grads, &drop, times);  // launches reducer buckets as they finish
  const auto t0 = Clock::now();
  if (reducer) reducer->finish();  // grads: the sum over ranks, the same on every rank
  // One rank, untied embedding, SGD without decay: the embedding's gradient is zero outside the window's
  // tokens, so clipping and the update skip its other rows. (With ranks, other ranks' tokens and compression
  // residuals make other rows nonzero.)
  SparseRows* sparse = nullptr;
  thread_local SparseRows rows;  // its vector's storage is reused from step to step
  if (!reducer && !s.tied && opt.sparse_ok()) {
    rows.offset = static_cast<int64_t>(params.offset(static_cast<size_t>(ws.ix.encoder)));
    rows.count = s.vocab, rows.width = s.embed;
    rows.set_rows(x, len * B);
    sparse = &rows;
  }
  const double norm = std::sqrt(grad_sum_squares(grads, sparse));
  opt.update(e, params, grads, lr, step + 1, clip_factor(norm, clip), sparse);
  if (times) times->update += seconds_since(t0);
  return loss;
}

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

TrainResult run_training(const Config& given, const Comm& comm) {
  const auto wall_start = Clock::now();
  // A signal from here on (while the data loads, say) is kept, and ends the run after its next step.
  g_stop_signal.store(0);
  Config c = given;
  RunPaths run;
  Config saved;  // --resume: the run's config.json
  if (!c.resume.empty()) {
    run.dir = c.resume;
    if (!is_directory(run.dir)) fail("--resume: {} is not a directory", run.dir);
    if (!c.out.empty() && c.out != c.resume) fail("--out: not with --resume (a resumed run stays in {})", c.resume);
    saved = config_from_json_file(run.config());
    check_resume_compatible(saved, c, run.config());
  } else {
    run.dir = comm.broadcast(c.out.empty() ? default_run_dir(c) : c.out);  // one clock decides the name
    if (comm.root() && RunPaths{run.dir}.holds_run())
      fail("--out: {} already holds a run; continue it with --resume {} or choose another --out", run.dir, run.dir);
  }
  c.validate();
  if (c.batch < comm.size())
    fail("--batch: {} lanes cannot be split over {} ranks (each rank needs at least one lane)", c.batch, comm.size());
  const bool bf16 = parse_precision(c.precision) == Precision::Bf16;
  EngineOptions eo;
  eo.threads = c.threads;
  eo.backend = parse_gemm_backend(c.gemm);
  eo.precision = parse_precision(c.precision);
  const Engine engine(eo);
  const bool bf16_ok = engine.precision() == Precision::Bf16;
  const TokenMode mode = parse_token_mode(c.tokens);
  const std::string cache = c.cache_dir.empty() ? default_cache_dir() : c.cache_dir;
  // This rank's lanes of the global batch (all of them with one rank).
  const auto [lane0, lane1] = static_range(c.batch, comm.rank(), comm.size());
  const int64_t B = lane1 - lane0;

  // Everything that can fail on bad input happens before the run directory is touched. Rank 0 builds
  // the vocabulary and the token cache; the others receive the one and map the other.
  const std::string train_path = c.train_path(), valid_path = c.valid_path(), test_path = c.test_path();
  for (const auto& p : {train_path, valid_path, test_path}) require_regular_file(p, "corpus");
  Vocab vocab;
  if (!c.resume.empty()) {
    vocab = Vocab::from_json(read_file(run.vocab(), "vocabulary"), run.vocab());
  } else {
    std::string text;
    if (comm.root()) text = build_vocab(train_path, mode, c.vocab_size, c.min_count).to_json();
    vocab = Vocab::from_json(comm.broadcast(text), "vocabulary from rank 0");
  }
  if (vocab.mode() != mode) fail("{}: vocabulary is in {} mode but --tokens is {}", run.vocab(), token_mode_name(vocab.mode()), c.tokens);
  auto load_ids = [&](const std::string& path) {
    if (!comm.root()) comm.barrier();  // wait until rank 0 has written the cache
    TokenIds ids = TokenIds::load(path, vocab, cache);
    if (comm.root()) comm.barrier();
    return ids;
  };
  TokenIds train_ids = load_ids(train_path);
  TokenIds valid_ids = load_ids(valid_path);
  TokenIds test_ids = load_ids(test_path);
  if (train_ids.size() == 0) fail("{}: empty corpus: no tokens", train_path);
  Batcher batcher(train_ids.ids(), c.batch, c.bptt, train_path);
  Batcher(valid_ids.ids(), c.eval_batch, c.bptt, valid_path, "--eval-batch");
  Batcher(test_ids.ids(), c.eval_batch, c.bptt, test_path, "--eval-batch");

  const ModelShape shape = c.model_shape(vocab.size());
  Arena params(param_table(shape)), grads(param_table(shape)), hidden(state_table(shape, B));
  Arena all_hidden(state_table(shape, c.batch));  // every lane's carried state, as checkpoints hold it
  Optimizer optimizer(c, params.table());
  std::vector<Arena*> state = {&all_hidden};
  for (Arena* a : optimizer.state()) state.push_back(a);
  // --average-from: the running mean of the weights (checkpointed with the state once it has begun).
  Arena average;
  const bool averaging = c.average_from > 0 || c.average_nonmono > 0;
  if (averaging) average = Arena(prefixed_table(params.table(), "average."));
  TrainState st;
  // The model the weights files describe ("manylm" metadata).
  const std::string meta = nlohmann::json{{"cell", c.cell}, {"activation", c.activation}, {"tokens", c.tokens},
                                          {"vocab", vocab.size()}, {"embed", c.embed}, {"hidden", c.hidden},
                                          {"layers", c.layers}}.dump();
  // Resuming: rank 0 first completes or discards a save that was interrupted. A run that stopped before its
  // first checkpoint (config and vocabulary only) starts again from step 0.
  std::string resume_note;
  bool from_checkpoint = false;
  if (!c.resume.empty()) {
    if (comm.root()) {
      resume_note = recover_checkpoint(run);
      from_checkpoint = run.has_checkpoint();
      if (!from_checkpoint)
        resume_note = fmt::format("note: {} has no checkpoint yet (the run stopped before its first); starting at step 0",
                                  run.dir);
    }
    from_checkpoint = comm.broadcast(from_checkpoint ? "1" : "0") == "1";
  }
  if (from_checkpoint) {
    st = load_checkpoint(run, params, state, averaging ? &average : nullptr);
    st.finished = st.epoch >= c.epochs || st.sched.stop;  // a larger --epochs continues a finished run
    for (size_t k = 0; k < hidden.table().size(); ++k)  // this rank's lanes of the carried state
      std::memcpy(hidden[k].data, all_hidden[k].data + lane0 * shape.hidden, hidden[k].numel() * sizeof(float));
    // --average-from may change on resume while it has averaged nothing and would not have yet: the run is
    // then the one it would have been with the new setting from the start. config.json records it.
    if (c.average_from != saved.average_from) {
      const bool before = c.average_from == 0 || c.average_from - 1 > st.epoch || (c.average_from - 1 == st.epoch && st.window == 0);
      if (st.average_count > 0 || !before)
        fail("--average-from: {} was trained with {} and is in epoch {}; the setting can change only before averaging "
             "starts", run.config(), saved.average_from, st.epoch + 1);
      resume_note += fmt::format("{}note: --average-from {} (was {}), recorded in {}", resume_note.empty() ? "" : "\n",
                                 c.average_from, saved.average_from, run.config());
      if (comm.root()) {
        saved.average_from = c.average_from;
        write_file_atomic(run.config(), config_to_json(saved));
      }
    }
    comm.barrier();  // every rank has read the checkpoint before rank 0 touches the metrics
    if (comm.root()) truncate_metrics(run, st.step);
  } else {
    init_uniform(params, c.seed, c.init);
    if (!c.init_from.empty()) {  // every rank reads it, as a checkpoint (a shared file system)
      require_regular_file(c.init_from, "weights (--init-from)");
      const SafeTensorsFile f = load_safetensors(c.init_from);
      if (const std::string d = described_model(f); !d.empty() && d != meta)  // equal shapes are not enough
        fail("--init-from: {} holds another model ({}; this run: {})", c.init_from, d, meta);
      fill_arena(f, params, c.init_from);
    }
    st.sched.lr = c.lr;
    if (comm.root()) {
      if (!c.resume.empty()) truncate_metrics(run, 0);
      make_directories(run.dir);
      write_file_atomic(run.config(), config_to_json(with_absolute_data_paths(c)));
      write_file_atomic(run.vocab(), vocab.to_json());
    }
  }
  Progress progress(c.progress_seconds, run.metrics(), !comm.root());
  progress.line(fmt::format("manylm: {} {}x{} ({}), vocab {}, {} parameters, {} threads{}, train {} tokens{}; run {}", c.cell,
                            c.layers, c.hidden, c.activation, vocab.size(), param_count(shape), engine.threads(),
                            comm.distributed() ? fmt::format(" x {} ranks (gradients: {})", comm.size(), c.grad_compress) : "",
                            train_ids.size(), train_ids.from_cache() ? " (cached ids)" : "", run.dir));
  if (!resume_note.empty()) progress.line(resume_note);
  if (!from_checkpoint && !c.init_from.empty()) progress.line(fmt::format("weights from {} (--init-from)", c.init_from));
  if (from_checkpoint) progress.line(fmt::format("resumed at step {} (epoch {}, window {})", st.step, st.epoch + 1, st.window));
  if (bf16 && !bf16_ok) progress.line("note: --precision bf16: this CPU has no AVX512_BF16; training in fp32");
  else if (bf16) progress.line("precision: bf16 products (fp32 accumulation, fp32 master weights)");

  Workspace ws(shape, c.bptt, B, c.dropout > 0);
  ReduceOptions ro;
  ro.codec = parse_compress(c.grad_compress);
  ro.bucket_floats = std::max<int64_t>(1, static_cast<int64_t>(c.bucket_mb * (1 << 20) / sizeof(float)));
  ro.tau = static_cast<float>(c.threshold_tau);
  ro.density = c.threshold_density;
  ro.deterministic = c.deterministic;
  ro.progress_thread = c.comm_thread;
  GradReducer reducer(comm, grads.flat(), ro);
  if (comm.distributed()) {
    ws.objective_lanes = c.batch;  // the mean over the global batch: rank gradients sum to the global one
    ws.grads_ready = [&reducer](size_t from) { reducer.ready(from); };
  }
  // Error feedback of a lossy --grad-compress: each rank's residuals in its own file, so that a resume on
  // the same number of ranks is bit-identical; on another rank count, scheme or bucket size (the tag: what
  // gives the residuals their meaning) they restart at zero.
  const NamedSpans feedback = reducer.feedback_state();
  const std::string residual_tag =
      fmt::format("{} ranks, {}, buckets of {} floats", comm.size(), c.grad_compress, ro.bucket_floats);
  if (from_checkpoint && !feedback.empty()) {
    int64_t restored[1] = {load_residuals(run.residuals(comm.rank()), feedback, st.step, residual_tag)};
    comm.sum(restored);
    if (restored[0] != comm.size()) {  // all ranks or none
      for (const auto& [name, span] : feedback) std::fill(span.begin(), span.end(), 0.0f);
      progress.line("note: gradient residuals restart at zero (saved for another rank count, scheme, bucket size or step)");
    }
  }
  DropoutConfig drop{static_cast<float>(c.dropout), c.dropout_mask == "variational", c.seed, 0, lane0, c.batch};
  std::vector<int32_t> x, y;
  auto last_ckpt = Clock::now();
  auto save = [&] {  // collective: every rank calls it at the same step
    for (size_t k = 0; k < hidden.table().size(); ++k)
      comm.gather_rows(hidden[k].data, lane0, lane1, shape.hidden, all_hidden[k].data);
    comm.check_same(params.flat(), "parameters");
    if (!feedback.empty()) save_residuals(run.residuals(comm.rank()), feedback, st.step, residual_tag);
    if (comm.root()) {
      std::vector<const Arena*> saved_state(state.begin(), state.end());
      if (st.average_count > 0) saved_state.push_back(&average);
      save_checkpoint(run, params, saved_state, st, meta, shape.tied);
    }
    comm.barrier();
    last_ckpt = Clock::now();
  };
  // Evaluation splits the lanes over the ranks and sums.
  auto eval = [&](const Arena& weights, const TokenIds& ids, const std::string& path) {
    auto [e0, e1] = static_range(c.eval_batch, comm.rank(), comm.size());
    EvalResult e = evaluate(engine, shape, weights, ids.ids(), c.eval_batch, c.bptt, path, nullptr, e0, e1);
    double v[2] = {e.loss_sum, static_cast<double>(e.tokens)};
    comm.sum(v);
    return EvalResult{v[0], static_cast<int64_t>(v[1])};
  };
  TrainResult r;
  r.run_dir = run.dir;
  r.eval_batch = c.eval_batch;
  r.bptt = c.bptt;
  r.params = param_count(shape);
  r.ranks = comm.size();
  bool stop_steps = c.max_steps > 0 && st.step >= c.max_steps;
  // Speeds shown are this process's, over the current epoch: the checkpointed totals also hold the time of
  // earlier sessions (and whatever else shared the machine then), which would hide the present rate.
  double run_seconds = 0, epoch_seconds = 0;
  int64_t run_tokens = 0, epoch_tokens = 0;
  auto rate = [](double tokens, double seconds) { return tokens / std::max(seconds, 1e-9); };
  auto fill_totals = [&] {  // what the result reports about the training, interrupted or not
    r.steps = st.step;
    r.epochs = st.epoch;
    r.tokens_per_sec = run_tokens > 0 ? rate(run_tokens, run_seconds) : rate(st.train_tokens, st.train_seconds);
    r.train_seconds = st.train_seconds;
    r.wall_seconds = seconds_since(wall_start);
  };
  Arena averaged;  // --average-from: the running mean under the parameters' names, at epoch ends
  // The epoch (1-based) from which the weights are averaged: fixed, or once --average-nonmono has fired; 0: not.
  auto average_from = [&] { return c.average_from > 0 ? c.average_from : st.average_start; };
  while (!st.finished && !stop_steps) {
    if (st.window == 0) hidden.zero();  // each epoch starts from a zero state (Zaremba et al.)
    const int64_t windows = batcher.windows();
    epoch_seconds = 0;
    epoch_tokens = 0;
    while (st.window < windows) {
      const auto t0 = Clock::now();
      const int64_t len = batcher.window(st.window, lane0, lane1, x, y);
      double v[3] = {train_step(engine, shape, params, grads, hidden, ws, optimizer, drop, x.data(), y.data(), len, B,
                                c.clip, st.sched.lr, st.step, nullptr, comm.distributed() ? &reducer : nullptr),
                     static_cast<double>(g_stop_signal.load()),
                     comm.root() && seconds_since(last_ckpt) >= 60.0 * c.checkpoint_minutes ? 1.0 : 0.0};
      comm.sum(v);  // the global loss, and whether any rank was signalled or rank 0's clock says save
      const double loss = v[0];
      if (average_from() > 0 && st.epoch + 1 >= average_from())  // the same on every rank: the weights are
        running_mean(average.data(), params.data(), static_cast<int64_t>(params.size()), ++st.average_count);
      st.step++;
      st.window++;
      st.epoch_loss += loss;
      st.epoch_tokens += len * c.batch;
      const double dt = seconds_since(t0);
      st.train_tokens += len * c.batch;
      st.train_seconds += dt;
      st.epoch_seconds += dt;
      run_tokens += len * c.batch;
      run_seconds += dt;
      epoch_tokens += len * c.batch;
      epoch_seconds += dt;
      const double tps = rate(epoch_tokens, epoch_seconds);
      const double per_window = static_cast<double>(c.bptt * c.batch) / std::max(tps, 1e-9);  // seconds
      int64_t epoch_left = windows - st.window;
      int64_t left = epoch_left + std::max<int64_t>(0, c.epochs - st.epoch - 1) * windows;
      if (c.max_steps > 0) epoch_left = std::min(epoch_left, c.max_steps - st.step), left = std::min(left, c.max_steps - st.step);
      const double eta = static_cast<double>(epoch_left) * per_window;
      progress.step({.epoch = st.epoch, .epochs = c.epochs, .window = st.window, .windows = windows, .step = st.step,
                     .lr = st.sched.lr, .loss = loss, .tokens = len * c.batch,
                     .epoch_ppl = std::exp(st.epoch_loss / st.epoch_tokens), .tokens_per_sec = tps,
                     .epoch_eta_seconds = eta, .run_eta_seconds = static_cast<double>(left) * per_window});
      if (v[1] > 0) {
        const int sig = std::max(1, g_stop_signal.load());
        save();
        progress.line(fmt::format("manylm: signal at step {}: checkpoint saved in {}; continue with --resume {}",
                                  st.step, run.dir, run.dir));
        r.interrupted = true;
        r.signal = g_stop_signal.load() ? sig : SIGTERM;
        // No evaluation on the way out: report the last epoch's validation and this epoch's training so far.
        if (std::isfinite(st.sched.last_valid)) r.valid_ppl = std::exp(st.sched.last_valid);
        if (st.epoch_tokens > 0) r.train_ppl = std::exp(st.epoch_loss / st.epoch_tokens);
        fill_totals();
        return r;
      }
      if (c.max_steps > 0 && st.step >= c.max_steps) {
        stop_steps = true;
        break;
      }
      if ((c.checkpoint_steps > 0 && st.step % c.checkpoint_steps == 0) || v[2] > 0) save();
    }
    if (stop_steps && st.window < windows) break;
    // End of epoch: validate (the averaged weights once averaging has begun), schedule, checkpoint.
    const double train_ppl = std::exp(st.epoch_loss / st.epoch_tokens);
    if (st.average_count > 0) {
      if (averaged.size() == 0) averaged = Arena(params.table());
      std::memcpy(averaged.data(), average.data(), params.size() * sizeof(float));
      if (comm.root()) save_average(run, averaged, st, average_from(), meta, shape.tied);
    }
    const Arena& scored = st.average_count > 0 ? averaged : params;
    const EvalResult v = eval(scored, valid_ids, valid_path);
    const double lr_used = st.sched.lr;
    const bool best = schedule_after_epoch(c, st.epoch + 1, v.mean_loss(), st.sched);
    if (c.average_nonmono > 0 && st.average_start == 0 && st.epoch + 1 - st.sched.best_epoch >= c.average_nonmono) {
      st.average_start = st.epoch + 2;
      progress.line(fmt::format("averaging the weights from epoch {} on: the best validation loss (epoch {}) is {} "
                                "epochs old (--average-nonmono {})", st.average_start, st.sched.best_epoch,
                                st.epoch + 1 - st.sched.best_epoch, c.average_nonmono));
    }
    if (best && c.keep_best && comm.root()) save_best(run, scored, st, v.perplexity(), meta, shape.tied);
    progress.line(fmt::format("epoch {:3d} | lr {:.4g} | train ppl {:8.2f} | valid ppl {:8.2f}{} | {:.0f} tok/s", st.epoch + 1,
                              lr_used, train_ppl, v.perplexity(), st.average_count > 0 ? " (averaged)" : "",
                              rate(epoch_tokens, epoch_seconds)));
    nlohmann::json record{{"type", "valid"}, {"step", st.step}, {"epoch", st.epoch + 1}, {"lr", lr_used},
                          {"train_ppl", train_ppl}, {"valid_ppl", v.perplexity()},
                          {"epoch_train_seconds", st.epoch_seconds}, {"train_seconds", st.train_seconds}};
    if (st.average_count > 0) record["averaged_updates"] = st.average_count;  // valid_ppl is the average's
    progress.record(record.dump());
    r.train_ppl = train_ppl;
    st.epoch++;
    st.window = 0;
    st.epoch_loss = 0;
    st.epoch_tokens = 0;
    st.epoch_seconds = 0;
    if (st.epoch >= c.epochs || st.sched.stop) st.finished = true;
    save();
  }
  if (stop_steps) save();
  // Results: perplexities of the final weights, of their running mean with --average-from, or of the best
  // epoch's with --keep-best. Rank 0 reads the file (other ranks may not share its disk) and sends the weights.
  // The checkpoint is saved: the parameters are free to hold the weights scored.
  r.averaged_updates = st.average_count;
  if (c.keep_best && comm.broadcast(comm.root() && path_exists(run.best()) ? "1" : "0") == "1") {
    if (comm.root()) load_best(run, params);
    comm.broadcast(params.flat());
    r.best_epoch = st.sched.best_epoch;  // save_best wrote the file when the state's best last changed
    progress.line(fmt::format("scoring the weights of epoch {}, the best on validation ({})", r.best_epoch, run.best()));
  } else if (st.average_count > 0) {
    std::memcpy(params.data(), average.data(), params.size() * sizeof(float));
    progress.line(fmt::format("scoring the mean of the weights after each of the {} updates since epoch {}",
                              st.average_count, average_from()));
  }
  const EvalResult v = eval(params, valid_ids, valid_path);
  const EvalResult t = eval(params, test_ids, test_path);
  if (r.train_ppl == 0 && st.epoch_tokens > 0) r.train_ppl = std::exp(st.epoch_loss / st.epoch_tokens);
  r.valid_ppl = v.perplexity();
  r.test_ppl = t.perplexity();
  fill_totals();
  if (const ReduceStats& rs = reducer.stats(); rs.steps > 0) {  // the mean rank
    double v[5] = {rs.raw_bytes, rs.payload_bytes, rs.wire_bytes, rs.comm_seconds, rs.wait_seconds};
    comm.sum(v);
    const double n = static_cast<double>(rs.steps) * comm.size();
    r.raw_bytes_per_step = v[0] / n;
    r.payload_bytes_per_step = v[1] / n;
    r.wire_bytes_per_step = v[2] / n;
    r.comm_ms_per_step = 1e3 * v[3] / n;
    r.wait_ms_per_step = 1e3 * v[4] / n;
  }
  progress.record(nlohmann::json{{"type", "test"}, {"step", st.step}, {"valid_ppl", r.valid_ppl}, {"test_ppl", r.test_ppl},
                                 {"best_epoch", r.best_epoch}}.dump());
  progress.line(fmt::format("done: {} steps, {} epochs | valid ppl {:.2f} | test ppl {:.2f}{} | {:.0f} tok/s | {:.1f} s",
                            r.steps, r.epochs, r.valid_ppl, r.test_ppl,
                            r.best_epoch > 0 ? fmt::format(" (epoch {})", r.best_epoch) : "", r.tokens_per_sec,
                            r.wall_seconds));
  if (comm.distributed())
    progress.line(fmt::format("gradients ({}): {:.2f} MB sent per step per rank ({:.1f}x less than fp32 all-reduce), "
                              "{:.1f} ms per step in flight, {:.1f} ms exposed",
                              c.grad_compress, r.wire_bytes_per_step / 1e6,
                              2.0 * (comm.size() - 1) / comm.size() * r.raw_bytes_per_step / std::max(r.wire_bytes_per_step, 1.0),
                              r.comm_ms_per_step, r.wait_ms_per_step));
  return r;
}

}  // namespace manylm
