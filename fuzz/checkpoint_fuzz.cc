// checkpoint_fuzz.cc — libFuzzer target: loading a checkpoint as --resume does (train/checkpoint.h), after the
// recovery of an interrupted save (recover_checkpoint), into the model of fuzz/make_seeds.sh's tiny run (LSTM
// 1x8, vocabulary 40, Adam, batch 4, averaging). The input is up to four files joined by kSep: model.safetensors,
// state.safetensors, state.safetensors.next, model.safetensors.next (an empty part: the file is absent).
// A checkpoint it accepts must save and load again to the same weights, state and training state, bit for bit.
#include <cstring>

#include "fuzz/fuzz_util.h"
#include "model/shape.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/optimizer.h"

using namespace manylm;

namespace {
constexpr std::string_view kSep = "\n--manylm-fuzz-next-file--\n";

// The arenas a resumed run loads into.
struct Model {
  Config c;
  ModelShape shape;
  Arena params, hidden, average;
  std::unique_ptr<Optimizer> opt;
  std::vector<Arena*> state;
  Model() {
    c.cell = Cell::Lstm;
    c.layers = 1;
    c.hidden = c.embed = 8;
    c.optimizer = OptimizerKind::Adam;
    c.batch = 4;
    shape = c.model_shape(40);
    params = Arena(param_table(shape));
    hidden = Arena(state_table(shape, c.batch));
    average = Arena(prefixed_table(params.table(), "average."));
    opt = std::make_unique<Optimizer>(c, params.table());
    state.push_back(&hidden);
    for (Arena* a : opt->state()) state.push_back(a);
  }
  std::vector<const Arena*> saved(const TrainState& st) const {
    std::vector<const Arena*> s(state.begin(), state.end());
    if (st.average_count > 0) s.push_back(&average);
    return s;
  }
};

bool same_arena(const Arena& a, const Arena& b) {
  for (size_t k = 0; k < a.table().size(); ++k)
    if (std::memcmp(a[k].data, b[k].data, static_cast<size_t>(a[k].numel()) * sizeof(float)) != 0) return false;
  return true;
}

void put_or_remove(const std::string& path, std::string_view part) {
  if (part.empty())
    std::remove(path.c_str());
  else
    fuzz::put_file(path, part);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Model m, again;
  const RunPaths run{fuzz::scratch_dir()}, run2{fuzz::scratch_dir() + "/again"};
  const auto parts = fuzz::split(fuzz::bytes(data, size), kSep, 4);
  put_or_remove(run.model(), parts[0]);
  put_or_remove(run.state(), parts[1]);
  put_or_remove(run.state() + ".next", parts[2]);
  put_or_remove(run.model() + ".next", parts[3]);
  if (!fuzz::accepts([&] { recover_checkpoint(run); }) || !run.has_checkpoint()) return 0;
  TrainState st;
  if (!fuzz::accepts([&] { st = load_checkpoint(run, m.params, m.state, &m.average); })) return 0;
  std::string meta;
  fuzz::accepts([&] { meta = described_model(load_safetensors(run.model())); });
  std::filesystem::create_directories(run2.dir);
  save_checkpoint(run2, m.params, m.saved(st), st, meta, false);
  TrainState st2;
  fuzz::check(fuzz::accepts([&] { st2 = load_checkpoint(run2, again.params, again.state, &again.average); }),
              "a saved checkpoint loads");
  fuzz::check(st.to_json() == st2.to_json(), "the training state saves and loads unchanged");
  fuzz::check(same_arena(m.params, again.params), "the weights save and load unchanged");
  for (size_t i = 0; i < m.state.size(); ++i)
    fuzz::check(same_arena(*m.state[i], *again.state[i]), "the state saves and loads unchanged");
  if (st.average_count > 0) fuzz::check(same_arena(m.average, again.average), "the average saves and loads unchanged");
  return 0;
}
