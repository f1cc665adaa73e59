// shape.h — what a model is (cell, activation, sizes) and its ONE parameter table. Tensor names and
// layouts follow PyTorch's state_dict of pytorch/examples word_language_model's RNNModel
// (encoder.weight, rnn.weight_ih_l{k}, rnn.weight_hh_l{k}, rnn.bias_ih_l{k}, rnn.bias_hh_l{k},
// decoder.weight, decoder.bias), so torch's load_state_dict reads model.safetensors as it is. With an adaptive
// softmax the decoder is PyTorch's nn.AdaptiveLogSoftmaxWithLoss held as `decoder`: decoder.head.weight,
// decoder.head.bias (--head-bias), decoder.tail.{i}.0.weight (H → H/D^(i+1)), decoder.tail.{i}.1.weight.
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

// The output layer: a full softmax over V, or an adaptive softmax (Grave et al. 2017) whose head covers the
// first C1 words and one logit per tail cluster, tail cluster i the words [C_i, C_{i+1}) through a projection to
// H / D^(i+1) (ids are in descending count order, so the head holds the frequent words).
enum class Output { Full, Adaptive };
inline constexpr Named<Output> kOutputNames[] = {{Output::Full, "full"}, {Output::Adaptive, "adaptive"}};
constexpr std::span<const Named<Output>> enum_names(Output) { return kOutputNames; }

struct ModelShape {
  Cell cell = Cell::Elman;
  Activation activation = Activation::Tanh;
  int64_t vocab = 0;   // V
  int64_t embed = 0;   // E
  int64_t hidden = 0;  // H
  int64_t layers = 1;  // L
  bool tied = false;   // decoder.weight is encoder.weight (Press & Wolf); needs E = H
  Output output = Output::Full;
  std::vector<int64_t> cutoffs;  // adaptive: C1 < C2 < … < V (V itself not listed)
  double div_value = 4.0;        // adaptive: D
  bool head_bias = false;        // adaptive: the head has a bias
  int64_t gates() const { return cell == Cell::Lstm ? 4 : cell == Cell::Gru ? 3 : 1; }  // weight rows per unit
  int64_t layer_input(int64_t l) const { return l == 0 ? embed : hidden; }
  bool adaptive() const { return output == Output::Adaptive; }
  int64_t clusters() const { return adaptive() ? static_cast<int64_t>(cutoffs.size()) : 0; }
  int64_t shortlist() const { return adaptive() ? cutoffs[0] : vocab; }
  int64_t head_size() const { return shortlist() + clusters(); }  // the head's outputs
  int64_t tail_begin(int64_t i) const { return cutoffs[static_cast<size_t>(i)]; }
  int64_t tail_end(int64_t i) const { return i + 1 < clusters() ? cutoffs[static_cast<size_t>(i + 1)] : vocab; }
  int64_t tail_size(int64_t i) const { return tail_end(i) - tail_begin(i); }
  int64_t tail_hidden(int64_t i) const;  // PyTorch's int(H // D ** (i + 1))
};

// UserError naming --cutoffs / --div-value when the adaptive softmax's settings do not fit vocabulary V.
void check_adaptive(const ModelShape& s);

// Index of each tensor in the table, so hot loops never look names up.
struct ParamIndex {
  int encoder = 0;
  std::vector<int> w_ih, w_hh, b_ih, b_hh;  // one per layer
  int decoder_w = 0, decoder_b = 0;         // full softmax (-1 with an adaptive one)
  int head_w = -1, head_b = -1;             // adaptive (head_b -1 without --head-bias)
  std::vector<int> tail_proj, tail_out;     // adaptive: per cluster, (H/D^(i+1), H) and (size, H/D^(i+1))
  int first_decoder = 0;                    // the output layer's first tensor (the table ends with it)
};

// With tied weights the table has no decoder.weight; ParamIndex::decoder_w points at encoder.weight.
std::vector<TensorSpec> param_table(const ModelShape& s);
ParamIndex param_index(const ModelShape& s);
// The gradient block's table: param_table, with encoder.weight given no storage ({0, E}) when its gradient is
// kept as rows (sparse updates, Workspace::sparse_embedding); indices stay param_index's.
std::vector<TensorSpec> grad_table(const ModelShape& s, bool sparse_embedding);
int64_t param_count(const ModelShape& s);

// The carried state: h, one (B, H) tensor per layer (index l), then for LSTM c per layer (index L + l).
std::vector<TensorSpec> state_table(const ModelShape& s, int64_t B);

}  // namespace manylm

namespace manylm {
// Every parameter uniform in [-r, r]; element i of tensor k is a pure function of (seed, k, i).
void init_uniform(Arena& params, uint64_t seed, double r);
}  // namespace manylm
