// shape.h — what a model is (cell, activation, sizes) and its ONE parameter table. Tensor names and
// layouts follow PyTorch's state_dict of pytorch/examples word_language_model's RNNModel
// (encoder.weight, rnn.weight_ih_l{k}, rnn.weight_hh_l{k}, rnn.bias_ih_l{k}, rnn.bias_hh_l{k},
// decoder.weight, decoder.bias), so torch's load_state_dict reads model.safetensors as it is.
// Not the forward pass (model.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/kernels.h"
#include "core/names.h"

namespace manylm {

enum class Cell { Elman, Lstm, Gru };
inline constexpr Named<Cell> kCellNames[] = {{Cell::Elman, "elman"}, {Cell::Lstm, "lstm"}, {Cell::Gru, "gru"}};
constexpr std::span<const Named<Cell>> enum_names(Cell) { return kCellNames; }
Cell parse_cell(const std::string& s);  // UserError naming --cell and the choices
const char* cell_name(Cell c);

struct ModelShape {
  Cell cell = Cell::Elman;
  Activation activation = Activation::Tanh;
  int64_t vocab = 0;   // V
  int64_t embed = 0;   // E
  int64_t hidden = 0;  // H
  int64_t layers = 1;  // L
  bool tied = false;   // decoder.weight is encoder.weight (Press & Wolf); needs E = H
  int64_t gates() const { return cell == Cell::Lstm ? 4 : cell == Cell::Gru ? 3 : 1; }  // weight rows per unit
  int64_t layer_input(int64_t l) const { return l == 0 ? embed : hidden; }
};

// Index of each tensor in the table, so hot loops never look names up.
struct ParamIndex {
  int encoder = 0;
  std::vector<int> w_ih, w_hh, b_ih, b_hh;  // one per layer
  int decoder_w = 0, decoder_b = 0;
};

// With tied weights the table has no decoder.weight; ParamIndex::decoder_w points at encoder.weight.
std::vector<TensorSpec> param_table(const ModelShape& s);
ParamIndex param_index(const ModelShape& s);
int64_t param_count(const ModelShape& s);

// The carried state: h, one (B, H) tensor per layer (index l), then for LSTM c per layer (index L + l).
std::vector<TensorSpec> state_table(const ModelShape& s, int64_t B);

}  // namespace manylm

namespace manylm {
// Every parameter uniform in [-r, r]; element i of tensor k is a pure function of (seed, k, i).
void init_uniform(Arena& params, uint64_t seed, double r);
}  // namespace manylm
