#include "tapegrad/train/distributed.hpp"

#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "tapegrad/autodiff/tape.hpp"

namespace tapegrad {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t unused = std::numeric_limits<std::size_t>::max();
constexpr int max_same_values = 7;

// FNV-1a over bytes.
std::uint64_t hash_bytes(std::uint64_t h, const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

std::uint64_t hash_name_shape(std::uint64_t h, const std::string& name, const Shape& shape) {
  h = hash_bytes(h, name.data(), name.size() + 1);
  for (std::size_t d = 0; d < shape.rank(); ++d) {
    const std::uint64_t extent = shape[d];
    h = hash_bytes(h, &extent, sizeof extent);
  }
  return h;
}

std::string values_text(const std::uint64_t* v) {
  std::string out;
  const std::uint64_t n = std::min<std::uint64_t>(v[0], max_same_values);
  for (std::uint64_t i = 0; i < n; ++i) out += (i ? ", " : "") + std::to_string(v[1 + i]);
  return out;
}

}  // namespace

struct Distributed::Impl {
  struct Bucket {
    std::vector<std::size_t> params;  // indices into `params`, in the order packed
    std::vector<float> values;
    std::size_t ready_at = unused;  // the lowest first use among its parameters
    MPI_Request request = MPI_REQUEST_NULL;
  };

  DistributedOptions options;
  bool owns_mpi = false;
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 1;
  nn::Module<float>* model = nullptr;
  std::vector<Var<float>> params;
  std::vector<std::pair<const detail::Node<float>*, std::size_t>> lookup;  // sorted by node
  std::vector<std::size_t> first_use;  // per parameter: the lowest record using it, or unused
  std::vector<Bucket> buckets;
  std::vector<float> buffer_values;
  std::size_t next_bucket = 0;  // buckets [0, next_bucket) are launched
  std::size_t progressed = 0;   // buckets [0, progressed) have completed
  std::size_t overlapped = 0;   // buckets of this step launched before backward's last record
  float weight = 1;
  bool in_step = false;
  bool hook_began = false;
  bool layout_final = false;  // the buckets follow a step's order (settle_layout)
  detail::LeafReadyHook<float> hook{};

  [[noreturn]] void fail(const std::string& message, int code) const {
    std::fprintf(stderr, "tapegrad: rank %d of %d: %s\n", rank, size, message.c_str());
    std::fflush(stderr);
    MPI_Abort(comm == MPI_COMM_NULL ? MPI_COMM_WORLD : comm, code);
    std::abort();  // MPI_Abort does not return
  }

  // Waits for `request`, at most options.timeout_seconds, calling MPI_Test (which also makes
  // progress on every other operation in flight) and yielding the core between tests.
  void wait(MPI_Request& request, const char* what) const {
    // (At most 10⁹ s, some 30 years: longer limits would overflow the clock's count.)
    const double limit = std::min(options.timeout_seconds, 1e9);
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(limit));
    for (;;) {
      int done = 0;
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (done) return;
      if (Clock::now() > deadline) {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%g", options.timeout_seconds);
        fail(std::string(what) + " did not complete within " + seconds +
                 " s: another rank has died, hangs, or runs a different step; ending every rank "
                 "(the limit is --mpi-timeout / DistributedOptions::timeout_seconds)",
             3);
      }
      sched_yield();
    }
  }

  void launch(Bucket& b) {
    std::size_t offset = 0;
    const float w = weight;
    for (std::size_t p : b.params) {
      const Tensor<float>& g = params[p].grad();
      const std::size_t n = params[p].numel();
      float* out = b.values.data() + offset;
      if (g.defined()) {
        const float* src = g.data();
        for (std::size_t k = 0; k < n; ++k) out[k] = w * src[k];
      } else {
        std::fill(out, out + n, 0.0f);
      }
      offset += n;
    }
    MPI_Iallreduce(MPI_IN_PLACE, b.values.data(), static_cast<int>(b.values.size()), MPI_FLOAT,
                   MPI_SUM, comm, &b.request);
  }

  // Launches, in bucket order, every bucket whose parameters are final after record i.
  void launch_ready(std::size_t i) {
    while (next_bucket < buckets.size() && buckets[next_bucket].ready_at >= i) {
      launch(buckets[next_bucket++]);
      if (i > 0) ++overlapped;  // records remain to be walked
    }
    // Open MPI progresses non-blocking collectives only inside MPI calls: test the oldest.
    while (progressed < next_bucket) {
      int done = 0;
      MPI_Test(&buckets[progressed].request, &done, MPI_STATUS_IGNORE);
      if (!done) break;
      ++progressed;
    }
  }

  // The first use of each parameter among records [0, count).
  void scan(const Record<float>* records, std::size_t count) {
    std::fill(first_use.begin(), first_use.end(), unused);
    for (std::size_t i = 0; i < count; ++i) {
      const Record<float>& r = records[i];
      for (std::size_t k = 0; k < r.input_count; ++k) {
        const detail::Node<float>* node = r.inputs[k].get();
        if (!node || !node->is_leaf) continue;
        const auto it =
            std::lower_bound(lookup.begin(), lookup.end(), node,
                             [](const std::pair<const detail::Node<float>*, std::size_t>& e,
                                const detail::Node<float>* n) {
                               return std::less<const detail::Node<float>*>()(e.first, n);
                             });
        if (it != lookup.end() && it->first == node && first_use[it->second] == unused)
          first_use[it->second] = i;
      }
    }
    for (Bucket& b : buckets) {
      b.ready_at = unused;
      for (std::size_t p : b.params) b.ready_at = std::min(b.ready_at, first_use[p]);
    }
  }

  // Buckets of the parameters in `order`; a bucket closes before a parameter that would take it
  // past options.bucket_bytes, and, with `finish` (each parameter's first use), before one that
  // backward finishes later than the bucket's last once the bucket holds an eighth of that (so
  // that a bucket full enough leaves without waiting for the next layer's backward).
  void build_buckets(const std::vector<std::size_t>& order,
                     const std::vector<std::size_t>* finish = nullptr) {
    buckets.clear();
    const std::size_t per_bucket = std::max<std::size_t>(1, options.bucket_bytes / sizeof(float));
    std::size_t last = 0;
    for (std::size_t i : order) {
      const bool later = finish && !buckets.empty() && (*finish)[i] != (*finish)[last] &&
                         8 * buckets.back().values.size() >= per_bucket;
      last = i;
      if (buckets.empty() || later || buckets.back().values.size() + params[i].numel() > per_bucket)
        buckets.emplace_back();
      Bucket& b = buckets.back();
      b.params.push_back(i);
      b.values.resize(b.values.size() + params[i].numel());
    }
  }

  // After the first step whose backward rank 0 ran: every rank takes rank 0's order of the
  // parameters by when backward finished them (latest first use first), and rebuilds the buckets
  // in it (a weight and its bias, used by one record, finish together; parameters in
  // registration order need not).
  void settle_layout() {
    std::vector<std::int64_t> proposal(2 * params.size() + 1, 0);
    if (rank == 0 && hook_began) {
      std::vector<std::size_t> order(params.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return first_use[a] != first_use[b] ? first_use[a] > first_use[b] : a > b;
      });
      proposal[0] = 1;
      for (std::size_t i = 0; i < order.size(); ++i) {
        proposal[1 + i] = static_cast<std::int64_t>(order[i]);
        proposal[1 + params.size() + i] =
            first_use[i] == unused ? -1 : static_cast<std::int64_t>(first_use[i]);
      }
    }
    MPI_Request request;
    MPI_Ibcast(proposal.data(), static_cast<int>(proposal.size()), MPI_INT64_T, 0, comm, &request);
    wait(request, "broadcasting rank 0's gradient buckets");
    if (proposal[0] == 0) return;  // rank 0 ran no backward: again after the next step
    std::vector<std::size_t> order(params.size()), finish(params.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
      order[i] = static_cast<std::size_t>(proposal[1 + i]);
      const std::int64_t f = proposal[1 + params.size() + i];
      finish[i] = f < 0 ? unused : static_cast<std::size_t>(f);
    }
    build_buckets(order, &finish);
    layout_final = true;
  }

  void pack_buffers(bool unpack) {
    std::size_t offset = 0;
    for (const auto& [name, buffer] : model->named_buffers()) {
      Tensor<float>& t = *buffer.tensor;
      if (unpack)
        std::memcpy(t.data(), buffer_values.data() + offset, t.numel() * sizeof(float));
      else
        std::memcpy(buffer_values.data() + offset, t.data(), t.numel() * sizeof(float));
      offset += t.numel();
    }
  }

  void broadcast(std::vector<float>& values, const char* what) const {
    MPI_Request request;
    MPI_Ibcast(values.data(), static_cast<int>(values.size()), MPI_FLOAT, 0, comm, &request);
    wait(request, what);
  }
};

Distributed::Distributed(int* argc, char*** argv, const DistributedOptions& options)
    : impl_(std::make_unique<Impl>()) {
  if (!(options.timeout_seconds > 0) || !std::isfinite(options.timeout_seconds))
    throw std::invalid_argument(
        "Distributed: the time limit of a collective operation must be a "
        "finite number of seconds > 0");
  if (options.bucket_bytes == 0)
    throw std::invalid_argument("Distributed: the bucket size must be > 0 bytes");
  impl_->options = options;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    impl_->owns_mpi = true;
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &impl_->comm);
  MPI_Comm_rank(impl_->comm, &impl_->rank);
  MPI_Comm_size(impl_->comm, &impl_->size);
  impl_->hook.context = impl_.get();
  impl_->hook.begin = [](void* c, const Record<float>* records, std::size_t count) {
    Impl& d = *static_cast<Impl*>(c);
    if (d.hook_began)
      d.fail("a second backward pass inside one Distributed step (begin_step ... end_step)", 4);
    d.hook_began = true;
    d.scan(records, count);
  };
  impl_->hook.done = [](void* c, std::size_t record) {
    static_cast<Impl*>(c)->launch_ready(record);
  };
}

Distributed::~Distributed() {
  if (detail::leaf_ready_hook<float> == &impl_->hook) detail::leaf_ready_hook<float> = nullptr;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  MPI_Comm_free(&impl_->comm);
  if (impl_->owns_mpi) MPI_Finalize();
}

std::size_t Distributed::rank() const {
  return static_cast<std::size_t>(impl_->rank);
}

std::size_t Distributed::world_size() const {
  return static_cast<std::size_t>(impl_->size);
}

std::size_t Distributed::bucket_count() const {
  return impl_->buckets.size();
}

std::size_t Distributed::overlapped_buckets() const {
  return impl_->overlapped;
}

void Distributed::abort(const std::string& message, int exit_code) const {
  impl_->fail(message, exit_code);
}

void Distributed::require_same(const std::string& what, const std::vector<std::uint64_t>& values) {
  if (values.size() > static_cast<std::size_t>(max_same_values))
    throw std::invalid_argument("Distributed::require_same: more than 7 values");
  std::array<std::uint64_t, max_same_values + 1> mine{};
  mine[0] = values.size();
  std::copy(values.begin(), values.end(), mine.begin() + 1);
  const int n = max_same_values + 1;
  std::vector<std::uint64_t> all(static_cast<std::size_t>(n) * impl_->size);
  MPI_Request request;
  MPI_Iallgather(mine.data(), n, MPI_UINT64_T, all.data(), n, MPI_UINT64_T, impl_->comm, &request);
  const std::string waiting = "comparing " + what + " between ranks";
  impl_->wait(request, waiting.c_str());
  const std::uint64_t* first = all.data();
  for (int r = 1; r < impl_->size; ++r) {
    const std::uint64_t* theirs = all.data() + static_cast<std::size_t>(r) * n;
    if (!std::equal(first, first + n, theirs))
      throw DistributedError("the ranks disagree on " + what + ": rank " + std::to_string(r) +
                             " has " + values_text(theirs) + ", rank 0 has " + values_text(first));
  }
}

void Distributed::attach(nn::Module<float>& model) {
  Impl& d = *impl_;
  std::uint64_t hash = 1469598103934665603ULL, values = 0, buffer_values = 0;
  const auto named = model.named_parameters();
  for (const auto& [name, p] : named) {
    hash = hash_name_shape(hash, name, p.shape());
    values += p.numel();
  }
  const auto buffers = model.named_buffers();
  for (const auto& [name, b] : buffers) {
    hash = hash_name_shape(hash, name, b.tensor->shape());
    buffer_values += b.tensor->numel();
  }
  require_same(
      "the model (parameter tensors, parameter values, buffer tensors, buffer values, hash of "
      "their names and shapes)",
      {named.size(), values, buffers.size(), buffer_values, hash});
  if (values > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
    throw std::invalid_argument("Distributed: a model of more than 2^31 - 1 parameter values");

  d.model = &model;
  d.params.clear();
  for (const auto& np : named) d.params.push_back(np.second);
  // Rank 0's parameters and buffers, to every rank.
  std::vector<float> all;
  all.reserve(values);
  for (const Var<float>& p : d.params)
    all.insert(all.end(), p.value().data(), p.value().data() + p.numel());
  d.broadcast(all, "broadcasting rank 0's parameters");
  std::size_t offset = 0;
  for (Var<float>& p : d.params) {
    std::memcpy(p.value().data(), all.data() + offset, p.numel() * sizeof(float));
    offset += p.numel();
  }
  d.buffer_values.assign(buffer_values, 0.0f);
  broadcast_buffers();
  // Random streams (Dropout's) start equal on every rank; rank r > 0 moves each to a stream of
  // its own, so that the ranks' shares of a batch draw different masks.
  if (d.rank > 0)
    for (const auto& [name, generator] : model.named_generators())
      *generator = nn::Generator(generator->bits() ^ (0x9E3779B97F4A7C15ULL * d.rank));

  d.lookup.clear();
  for (std::size_t i = 0; i < d.params.size(); ++i) d.lookup.emplace_back(d.params[i].node(), i);
  std::sort(d.lookup.begin(), d.lookup.end(), [](const auto& a, const auto& b) {
    return std::less<const detail::Node<float>*>()(a.first, b.first);
  });
  d.first_use.assign(d.params.size(), unused);
  // Until a step has shown the order in which backward finishes them: the last parameter first.
  std::vector<std::size_t> order(d.params.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = order.size() - 1 - i;
  d.build_buckets(order);
  d.layout_final = false;
}

void Distributed::broadcast_buffers() {
  Impl& d = *impl_;
  if (!d.model) throw std::logic_error("Distributed: no model attached");
  if (d.buffer_values.empty()) return;
  d.pack_buffers(false);
  d.broadcast(d.buffer_values, "broadcasting rank 0's buffers");
  d.pack_buffers(true);
}

void Distributed::begin_step(std::size_t local, std::size_t global) {
  Impl& d = *impl_;
  if (!d.model) throw std::logic_error("Distributed::begin_step: no model attached");
  if (d.in_step) throw std::logic_error("Distributed::begin_step: the last step has not ended");
  if (global == 0 || local > global)
    throw std::invalid_argument("Distributed::begin_step: " + std::to_string(local) +
                                " samples of a global batch of " + std::to_string(global));
  d.weight = static_cast<float>(static_cast<double>(local) / static_cast<double>(global));
  d.next_bucket = d.progressed = d.overlapped = 0;
  d.hook_began = false;
  for (Impl::Bucket& b : d.buckets) b.ready_at = unused;
  d.in_step = true;
  detail::leaf_ready_hook<float> = &d.hook;
}

void Distributed::end_step() {
  Impl& d = *impl_;
  if (!d.in_step) throw std::logic_error("Distributed::end_step: no step begun");
  detail::leaf_ready_hook<float> = nullptr;
  d.in_step = false;
  while (d.next_bucket < d.buckets.size()) d.launch(d.buckets[d.next_bucket++]);
  for (Impl::Bucket& b : d.buckets) {
    d.wait(b.request, "the all-reduce of a gradient bucket");
    std::size_t offset = 0;
    for (std::size_t p : b.params) {
      Tensor<float>& g = d.params[p].grad();
      if (!g.defined()) g.resize(d.params[p].shape());
      std::memcpy(g.data(), b.values.data() + offset, g.numel() * sizeof(float));
      offset += g.numel();
    }
  }
  if (!d.layout_final) d.settle_layout();
}

void Distributed::sum(std::vector<double>& values) {
  MPI_Request request;
  MPI_Iallreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM,
                 impl_->comm, &request);
  impl_->wait(request, "the sum of the metrics over the ranks");
}

}  // namespace tapegrad
