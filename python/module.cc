// module.cc — the Python module `manylm` (pybind11): a trained run loaded once, then sentence scores (log10, as
// KenLM's model.score), the perplexity of a text (as `manylm eval`), a stateful step over B lanes returning
// log-probabilities over the vocabulary (numpy), and sampling. Every call computes with the GIL released. The
// OpenMP team is the process's, so calls that compute are serialized by one lock (safe from several Python threads,
// each with its own states; a call waits for the one computing). Threads are never pinned (the interpreter's
// threads stay where they were) and MPI is never initialized. Not the command line (src/cli/).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/engine.h"
#include "core/error.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/generate.h"
#include "train/sentences.h"

namespace py = pybind11;

namespace manylm {
namespace {

constexpr double kLog10E = 0.43429448190325182765;

// One lock for every model of the process: the OpenMP team (and OpenBLAS's thread count) is process-wide.
std::mutex& compute_lock() {
  static std::mutex m;
  return m;
}

class Model {
 public:
  Model(const std::string& run, const std::string& weights, int threads) : m_(load_run_model(run, weights)) {
    EngineOptions eo;  // the run's backend and precision: the numbers `manylm eval` gives
    eo.threads = threads;
    eo.backend = m_.config.gemm;
    eo.precision = m_.config.precision;
    eo.pin = false;
    std::lock_guard lock(compute_lock());
    engine_ = std::make_unique<Engine>(eo);
    current() = engine_.get();
  }

  std::vector<std::string> vocab() const {
    std::vector<std::string> v;
    for (int64_t i = 0; i < m_.vocab.size(); ++i) v.push_back(m_.vocab.word(static_cast<int32_t>(i)));
    return v;
  }

  // log10 p(words, </s>) of each sentence from the start state: `manylm eval --sentences`' scores.
  std::vector<double> score(const std::vector<std::string>& sentences) {
    if (m_.vocab.eos() < 0) throw py::value_error("score: needs a word-level model (sentences end with <eos>)");
    std::vector<std::vector<int32_t>> ids;
    for (const std::string& s : sentences) {
      ids.push_back({});
      for (const std::string& w : prompt_tokens(s, TokenMode::Word, Vocab::kEos)) ids.back().push_back(m_.vocab.id(w));
      ids.back().push_back(m_.vocab.eos());
    }
    std::vector<double> out;
    py::gil_scoped_release release;
    auto lock = use();
    if (!scorer_) scorer_ = std::make_unique<SentenceScorer>(*engine_, m_.shape, m_.params, m_.vocab.start());
    constexpr size_t kLanes = 32;
    for (size_t i = 0; i < ids.size(); i += kLanes) {
      std::vector<std::span<const int32_t>> batch;
      for (size_t j = i; j < std::min(ids.size(), i + kLanes); ++j) batch.emplace_back(ids[j]);
      for (double lp : scorer_->score(batch)) out.push_back(lp * kLog10E);
    }
    return out;
  }

  // `manylm eval`'s perplexity of a text (lines end with <eos> in word mode), batch lanes and bptt as given (0: the
  // run's --eval-batch and --bptt).
  double perplexity(const std::string& text, int64_t batch, int64_t bptt) {
    const bool words = m_.vocab.mode() == TokenMode::Word;
    const bool eol = !text.empty() && (text.back() == '\n' || text.back() == '\r');
    std::vector<int32_t> ids;
    for (const std::string& w :
         prompt_tokens(words && !eol ? text + "\n" : text, m_.vocab.mode(), words ? Vocab::kEos : ""))
      ids.push_back(m_.vocab.id(w));
    const int64_t B = batch > 0 ? batch : m_.config.eval_batch, T = bptt > 0 ? bptt : m_.config.bptt;
    py::gil_scoped_release release;
    auto lock = use();
    return evaluate(*engine_, m_.shape, m_.params, ids, B, T, "text").perplexity();
  }

  // The zero state of `batch` lanes: (K, L, B, H) float32, K = 2 (h, c) for an LSTM, else 1 (h).
  py::array_t<float> initial_state(int64_t batch) const {
    if (batch <= 0) throw py::value_error("initial_state: batch must be positive");
    py::array_t<float> a({kinds(), m_.shape.layers, batch, m_.shape.hidden});
    std::memset(a.mutable_data(), 0, static_cast<size_t>(a.size()) * sizeof(float));
    return a;
  }

  // Feeds token_ids (B) to the B lanes of `state`: log-probabilities (B, V) of the next token, and the new state.
  py::tuple step(const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& tokens,
                 const py::array_t<float, py::array::c_style | py::array::forcecast>& state) {
    const ModelShape& s = m_.shape;
    if (tokens.ndim() != 1) throw py::value_error("step: token_ids must be one-dimensional (B,)");
    const int64_t B = tokens.shape(0), H = s.hidden, L = s.layers;
    if (state.ndim() != 4 || state.shape(0) != kinds() || state.shape(1) != L || state.shape(2) != B ||
        state.shape(3) != H)
      throw py::value_error(
          fmt::format("step: state must have shape ({}, {}, {}, {}) for {} token ids", kinds(), L, B, H, B));
    std::vector<int32_t> x(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t t = tokens.at(b);
      if (t < 0 || t >= s.vocab) throw py::value_error(fmt::format("step: token id {} outside [0, {})", t, s.vocab));
      x[static_cast<size_t>(b)] = static_cast<int32_t>(t);
    }
    py::array_t<float> logp({B, s.vocab});
    py::array_t<float> next({kinds(), L, B, H});
    const float* in = state.data();
    float* lp = logp.mutable_data();
    float* out = next.mutable_data();
    {
      py::gil_scoped_release release;
      auto lock = use();
      if (!step_ws_ || step_ws_->B < B) step_ws_ = std::make_unique<Workspace>(s, 1, B);
      Arena st(state_table(s, B));  // tensor k = layer l of kind k / L: (B, H), as the numpy array's [k / L, l]
      for (size_t k = 0; k < st.table().size(); ++k) std::memcpy(st[k].data, in + k * B * H, B * H * sizeof(float));
      model_step_log_probs(*engine_, s, m_.params, *step_ws_, x.data(), B, st, lp);
      for (size_t k = 0; k < st.table().size(); ++k) std::memcpy(out + k * B * H, st[k].data, B * H * sizeof(float));
    }
    return py::make_tuple(logp, next);
  }

  std::string sample(const std::string& prompt, int64_t length, double temperature, int64_t top_k, uint64_t seed) {
    if (length <= 0) throw py::value_error("sample: length must be positive");
    if (!(temperature > 0)) throw py::value_error("sample: temperature must be positive");
    if (top_k < 0) throw py::value_error("sample: top_k must be 0 or positive");
    py::gil_scoped_release release;
    auto lock = use();
    return generate(*engine_, m_, {prompt, length, temperature, top_k, seed});
  }

  const LoadedModel& loaded() const { return m_; }

 private:
  int64_t kinds() const { return m_.shape.cell == Cell::Lstm ? 2 : 1; }
  // The compute lock, with this model's engine made the team's (another model's may have been used last).
  std::unique_lock<std::mutex> use() {
    std::unique_lock lock(compute_lock());
    if (current() != engine_.get()) engine_->activate(), current() = engine_.get();
    return lock;
  }
  static const Engine*& current() {
    static const Engine* e = nullptr;
    return e;
  }

  LoadedModel m_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<SentenceScorer> scorer_;
  std::unique_ptr<Workspace> step_ws_;
};

}  // namespace
}  // namespace manylm

PYBIND11_MODULE(_manylm, mod) {
  using manylm::Model;
  mod.doc() = "manylm: recurrent neural network language models trained by manylm, from Python";
  py::register_exception<manylm::UserError>(mod, "Error", PyExc_ValueError);
  py::class_<Model>(mod, "Model")
      .def(py::init<const std::string&, const std::string&, int>(), py::arg("run_dir"), py::arg("weights") = "auto",
           py::arg("threads") = 0)
      .def_property_readonly("vocab", &Model::vocab, "The vocabulary: word of each id")
      .def_property_readonly("cell", [](const Model& m) { return manylm::cell_name(m.loaded().shape.cell); })
      .def_property_readonly("layers", [](const Model& m) { return m.loaded().shape.layers; })
      .def_property_readonly("hidden", [](const Model& m) { return m.loaded().shape.hidden; })
      .def_property_readonly("eos", [](const Model& m) { return m.loaded().vocab.eos(); })
      .def_property_readonly("unk", [](const Model& m) { return m.loaded().vocab.unk(); })
      .def_property_readonly("start", [](const Model& m) { return m.loaded().vocab.start(); })
      .def_property_readonly("weights", [](const Model& m) { return m.loaded().weights; })
      .def("score", &Model::score, py::arg("sentences"),
           "log10 p(sentence, </s>) of each sentence (words split on whitespace), from the start state")
      .def("perplexity", &Model::perplexity, py::arg("text"), py::arg("batch") = 0, py::arg("bptt") = 0,
           "Perplexity of a text as manylm eval computes it (batch, bptt: 0 for the run's)")
      .def("initial_state", &Model::initial_state, py::arg("batch"), "Zero state of `batch` lanes, (K, L, B, H)")
      .def("step", &Model::step, py::arg("token_ids"), py::arg("state"),
           "Feeds token_ids (B,) to the lanes of state: (log-probabilities (B, V), new state)")
      .def("sample", &Model::sample, py::arg("prompt") = "", py::arg("length") = 50, py::arg("temperature") = 1.0,
           py::arg("top_k") = 0, py::arg("seed") = 1, "Text continuing prompt, as manylm sample");
}
