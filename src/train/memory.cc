// memory.cc — see memory.h.
#include "train/memory.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "core/machine.h"
#include "model/adaptive.h"
#include "model/model.h"
#include "train/optimizer.h"

namespace manylm {

namespace {
double table_bytes(const std::vector<TensorSpec>& t) {
  double n = 0;
  for (const TensorSpec& x : t) n += 4.0 * static_cast<double>(x.numel());
  return n;
}
}  // namespace

MemoryEstimate estimate_run_memory(const Config& c, const ModelShape& s, int64_t lanes) {
  MemoryEstimate m;
  m.params = table_bytes(param_table(s));
  m.grads = table_bytes(grad_table(s, use_sparse_updates(c)));
  if (c.optimizer != OptimizerKind::Sgd) m.optimizer = 2 * m.params;
  if (c.average_from > 0 || c.average_nonmono > 0) m.averaging = 2 * m.params;
  const double T = static_cast<double>(c.bptt);
  m.activations = static_cast<double>(workspace_bytes(s, c.bptt, lanes, c.dropout > 0)) +
                  static_cast<double>(workspace_bytes(s, c.bptt, c.eval_batch, false));
  for (int64_t i = 0; i < s.clusters(); ++i)  // a tail's block of logits, whole below kFusedTail words
    if (s.tail_size(i) < kFusedTail) m.activations += 4.0 * T * static_cast<double>(lanes * s.tail_size(i));
  m.checkpoint = 2 * m.params;
  return m;
}

int ranks_on_this_node() {
  const char* v = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int n = v ? std::atoi(v) : 1;
  return std::max(n, 1);
}

void check_run_memory(const Config& c, const ModelShape& s, int64_t lanes, int ranks_here) {
  const MemoryEstimate m = estimate_run_memory(c, s, lanes);
  const double need = ranks_here * m.per_rank() + m.checkpoint;
  std::string source;
  const double have = memory_limit_bytes(&source);
  if (c.allow_oversize || have <= 0 || need <= have) return;
  const double G = 1e9;
  fail(
      "memory: the run needs ~{:.1f} GB ({} rank{} here, each: parameters {:.1f}, gradients {:.1f}, optimizer "
      "{:.1f}, averaging {:.1f}, activations {:.1f} GB; rank 0 also {:.1f} GB to write a checkpoint), {:.1f} GB "
      "available ({}); make the model or --batch smaller, or give --allow-oversize",
      need / G, ranks_here, ranks_here > 1 ? "s" : "", m.params / G, m.grads / G, m.optimizer / G, m.averaging / G,
      m.activations / G, m.checkpoint / G, have / G, source);
}

}  // namespace manylm
