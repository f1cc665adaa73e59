// memory.h — what a training run will hold in memory, estimated from its shapes before anything is allocated,
// and the refusal of a run that cannot fit (`--allow-oversize` runs it anyway). Not an allocator; the token
// caches are memory-mapped files and are not counted.
#pragma once
#include <cstdint>
#include <string>

#include "model/shape.h"
#include "train/config.h"

namespace manylm {

struct MemoryEstimate {
  double params = 0, grads = 0, optimizer = 0, averaging = 0, activations = 0;  // bytes, one rank
  double checkpoint = 0;  // rank 0's buffer while it writes a checkpoint (the file is built before it is written)
  double per_rank() const { return params + grads + optimizer + averaging + activations; }
};

// One rank of `lanes` batch lanes.
MemoryEstimate estimate_run_memory(const Config& c, const ModelShape& s, int64_t lanes);

// UserError `memory: the run needs ~N GB …, M GB available (…)` when `ranks_here` ranks of the estimate (plus
// rank 0's checkpoint buffer) exceed what this process may use, unless c.allow_oversize.
void check_run_memory(const Config& c, const ModelShape& s, int64_t lanes, int ranks_here);

// The ranks of this job on this node (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE; 1 without it).
int ranks_on_this_node();

}  // namespace manylm
