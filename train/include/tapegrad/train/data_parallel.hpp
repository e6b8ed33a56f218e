// What the training loop asks of a group of processes that train one model together, each on
// its share of every batch (data parallelism). The trainer sees only this interface;
// tapegrad::Distributed (distributed.hpp, built when MPI is found) implements it over MPI.
//
// Every call is collective: every process of the group makes the same calls in the same order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tapegrad/layers/module.hpp"

namespace tapegrad {

// Thrown on every process of the group when the processes disagree (a different model, other
// data, other options); the message names what differs and which process.
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class DataParallel {
 public:
  virtual ~DataParallel() = default;

  // This process's index in [0, world_size()); process 0 prints and writes files.
  virtual std::size_t rank() const = 0;
  virtual std::size_t world_size() const = 0;

  // Throws DistributedError on every process, naming `what` (e.g. "the model") and the first
  // process whose `values` differ from process 0's, unless all pass equal values. At most 7
  // values.
  virtual void require_same(const std::string& what, const std::vector<std::uint64_t>& values) = 0;

  // Checks that every process holds a model of the same parameter and buffer names and shapes
  // (require_same), copies process 0's parameters and buffers to every process, gives each
  // process > 0 random streams (Dropout's) of its own, drawn from its current ones, and
  // prepares the gradient buckets of its parameters. Once, before training; the model must
  // outlive this.
  virtual void attach(nn::Module<float>& model) = 0;

  // Copies process 0's buffers (BatchNorm's running statistics) of the attached model to every
  // process.
  virtual void broadcast_buffers() = 0;

  // One training step's gradient averaging. begin_step(local, global) before backward, with
  // this process's samples of the step's global batch of `global` samples; end_step() after
  // backward (or without one, when `local` is 0): afterwards every process's parameter
  // gradients hold Σ_p local_p / global · gradient_p, the global batch's mean gradient when each
  // process's loss is the mean over its own samples.
  virtual void begin_step(std::size_t local, std::size_t global) = 0;
  virtual void end_step() = 0;

  // values ← their sums over the processes (the same on every process).
  virtual void sum(std::vector<double>& values) = 0;
};

// The number of processes an MPI launcher (mpirun, srun) started this one among, read from its
// environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE); 1 when none did.
std::size_t launcher_world_size();

}  // namespace tapegrad
