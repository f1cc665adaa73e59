// golden_test.cc — end to end against PyTorch: tests/golden/{elman_tanh,elman_relu,lstm,gru,lstm_adaptive}.bin
// hold a tiny 2-layer model's weights, inputs, loss and every gradient, then 5 SGD steps' losses and final
// weights, written by tests/golden/make_golden.py with torch.nn.RNN, nn.LSTM and nn.GRU (lstm_adaptive: with
// nn.AdaptiveLogSoftmaxWithLoss as the decoder, i.e. --output adaptive). The real model, clipping and SGD must
// match tensor by tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include "core/engine.h"
#include "model/model.h"
#include "test_util.h"
#include "train/optimizer.h"

namespace manylm {
namespace {

struct GoldTensor {
  std::vector<int64_t> shape;
  std::vector<float> f;
  std::vector<int32_t> i;
};

std::map<std::string, GoldTensor> read_golden(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  char magic[8];
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic, 8), "MLMGOLD1");
  uint32_t count = 0;
  in.read(reinterpret_cast<char*>(&count), 4);
  std::map<std::string, GoldTensor> out;
  for (uint32_t k = 0; k < count && in; ++k) {
    uint32_t n = 0, nd = 0;
    in.read(reinterpret_cast<char*>(&n), 4);
    std::string name(n, '\0');
    in.read(name.data(), n);
    in.read(reinterpret_cast<char*>(&nd), 4);
    GoldTensor t;
    t.shape.resize(nd);
    in.read(reinterpret_cast<char*>(t.shape.data()), nd * 8);
    int64_t numel = 1;
    for (auto d : t.shape) numel *= d;
    if (name.rfind("int:", 0) == 0) {
      t.i.resize(static_cast<size_t>(numel));
      in.read(reinterpret_cast<char*>(t.i.data()), numel * 4);
      name = name.substr(4);
    } else {
      t.f.resize(static_cast<size_t>(numel));
      in.read(reinterpret_cast<char*>(t.f.data()), numel * 4);
    }
    out[name] = std::move(t);
  }
  EXPECT_TRUE(in) << path << " is truncated";
  return out;
}

void expect_close(const float* got, const std::vector<float>& want, const std::string& what, double rtol) {
  double scale = 1e-3;
  for (float w : want) scale = std::max(scale, double(std::abs(w)));
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], rtol * scale) << what << "[" << i << "]";
}

// The model a golden file holds: cell and activation from its name, sizes from its tensors, and the adaptive
// softmax's settings when the file has them (int:cutoffs, div_value, int:head_bias).
ModelShape golden_shape(const std::string& name, std::map<std::string, GoldTensor>& g) {
  ModelShape s;
  s.cell = parse_cell(name.substr(0, name.find('_')));
  s.activation = name == "elman_relu" ? Activation::Relu : Activation::Tanh;
  s.vocab = g["encoder.weight"].shape[0];
  s.embed = g["encoder.weight"].shape[1];
  s.hidden = g["rnn.weight_hh_l0"].shape[1];
  s.layers = g["h0"].shape[0];
  if (g.count("cutoffs")) {
    s.output = Output::Adaptive;
    s.cutoffs.assign(g["cutoffs"].i.begin(), g["cutoffs"].i.end());
    s.div_value = g["div_value"].f[0];
    s.head_bias = g["head_bias"].i[0] != 0;
    check_adaptive(s);
  }
  return s;
}

class Golden : public ::testing::TestWithParam<const char*> {};

TEST_P(Golden, MatchesPyTorch) {
  const Engine e(test_util::engine_options());
  const std::string name = GetParam();
  auto g = read_golden(std::string(MANYLM_SOURCE_DIR) + "/tests/golden/" + name + ".bin");
  const ModelShape s = golden_shape(name, g);
  const int64_t T = g["x"].shape[0], B = g["x"].shape[1];
  Arena params(param_table(s)), grads(param_table(s)), state(state_table(s, B));
  // Every weight of the file is in the table and vice versa (the loop below finds the table's in the file).
  size_t in_file = 0;
  for (const auto& [k, t] : g) in_file += k.rfind("after.", 0) == 0;
  ASSERT_EQ(in_file, params.table().size());
  for (size_t k = 0; k < params.table().size(); ++k) {
    const auto& want = g.at(params.table()[k].name);
    ASSERT_EQ(want.shape, params.table()[k].shape) << params.table()[k].name;
    std::memcpy(params[k].data, want.f.data(), want.f.size() * 4);
  }
  auto load_state = [&] {
    for (int64_t l = 0; l < s.layers; ++l) {
      std::memcpy(state[l].data, g["h0"].f.data() + l * B * s.hidden, B * s.hidden * 4);
      if (s.cell == Cell::Lstm)
        std::memcpy(state[s.layers + l].data, g["c0"].f.data() + l * B * s.hidden, B * s.hidden * 4);
    }
  };
  load_state();
  Workspace ws(s, T, B);
  const double loss = model_forward(e, s, params, ws, g["x"].i.data(), g["y"].i.data(), T, B, state, true, nullptr) / B;
  model_backward(e, s, params, ws, g["x"].i.data(), T, B, grads);
  EXPECT_NEAR(loss, g["loss"].f[0], 1e-5 * std::abs(g["loss"].f[0]));
  for (size_t k = 0; k < params.table().size(); ++k)
    expect_close(grads[k].data, g.at("grad." + params.table()[k].name).f, "grad." + params.table()[k].name, 1e-5);

  // 5 SGD steps with clipping over consecutive windows, state carried.
  load_state();
  const float lr = g["steps.lr"].f[0], clip = g["steps.clip"].f[0];
  for (int64_t st = 0; st < g["steps.loss"].shape[0]; ++st) {
    grads.zero();
    const int32_t* x = g["steps.x"].i.data() + st * T * B;
    const int32_t* y = g["steps.y"].i.data() + st * T * B;
    const double l = model_forward(e, s, params, ws, x, y, T, B, state, true, nullptr) / B;
    model_backward(e, s, params, ws, x, T, B, grads);
    clip_grad_norm(grads, clip);
    sgd_update(params, grads, lr);
    EXPECT_NEAR(l, g["steps.loss"].f[static_cast<size_t>(st)], 1e-5 * l) << "step " << st;
  }
  for (size_t k = 0; k < params.table().size(); ++k)
    expect_close(params[k].data, g.at("after." + params.table()[k].name).f, "after." + params.table()[k].name, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Cells, Golden, ::testing::Values("elman_tanh", "elman_relu", "lstm", "gru", "lstm_adaptive"));

}  // namespace
}  // namespace manylm
