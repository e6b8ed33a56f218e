// Data-parallel training over MPI: tapegrad::Distributed, the DataParallel (data_parallel.hpp)
// of the processes mpirun started. Built (target tapegrad::distributed) only when CMake finds
// MPI. In a training loop of one's own, per process:
// clang-format off
//   tapegrad::Distributed dist(&argc, &argv, {/*timeout_seconds*/ 60});
//   dist.attach(model);  // same model on every process; rank 0's weights broadcast
//   DataLoader loader(data, {global_batch, true, seed, false, dist.rank(), dist.world_size()});
//   loader.start_epoch();
//   while (loader.next(batch)) {
//     dist.begin_step(batch.size(), batch.global_size);
//     if (batch.size() > 0) {  // a share is empty when the batch has fewer samples than ranks
//       Var<float> loss = softmax_cross_entropy(model(Var<float>(batch.inputs)), batch.labels);
//       loss.backward();  // buckets of gradients are all-reduced while backward goes on
//     }
//     dist.end_step();    // every process now holds the global batch's mean gradient
//     optimizer.step();
//     optimizer.zero_grad();
//   }
// clang-format on
// Gradients travel in buckets of about options.bucket_bytes, the parameters taken last to first
// (the order in which backward finishes them). A bucket's all-reduce (MPI_Iallreduce, sum) starts
// once backward has passed the lowest-index tape record that uses each of its parameters, and
// the buckets start in one fixed order on every process; each process first multiplies its
// gradients by its share of the global batch (local / global), so the sum is the global mean.
//
// The tape's hook (detail::leaf_ready_hook) is per thread: begin_step, backward and end_step run
// on one thread, the one whose tape records the step. One backward per step (a second one in a
// step ends every rank with an error).
//
// Every collective operation waits at most options.timeout_seconds: past that, the process
// prints which operation did not complete and calls MPI_Abort, which ends every process (a
// process that died or hangs, or processes running different steps, end the run with an error
// rather than a hang).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad/train/data_parallel.hpp"

namespace tapegrad {

struct DistributedOptions {
  // Longest wait for any one collective operation (a finite number > 0).
  double timeout_seconds = 300;
  // Gradients per all-reduce, in bytes: a bucket takes parameters (last to first) while they fit,
  // and holds at least one whole parameter.
  std::size_t bucket_bytes = 256 * 1024;
};

class Distributed final : public DataParallel {
 public:
  // Initialises MPI unless it already is (and then finalises it in the destructor), and works
  // on a duplicate of MPI_COMM_WORLD. Throws std::invalid_argument on bad options.
  Distributed(int* argc, char*** argv, const DistributedOptions& options = {});
  ~Distributed() override;
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  std::size_t rank() const override;
  std::size_t world_size() const override;
  void require_same(const std::string& what, const std::vector<std::uint64_t>& values) override;
  void attach(nn::Module<float>& model) override;
  void broadcast_buffers() override;
  void begin_step(std::size_t local, std::size_t global) override;
  void end_step() override;
  void sum(std::vector<double>& values) override;

  // The number of gradient buckets of the attached model.
  std::size_t bucket_count() const;
  // Of the last step's buckets, those whose all-reduce started while backward still had records
  // to walk.
  std::size_t overlapped_buckets() const;

  // Ends every process: prints "tapegrad: rank R of N: <message>" on stderr, then MPI_Abort.
  [[noreturn]] void abort(const std::string& message, int exit_code = 1) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tapegrad
