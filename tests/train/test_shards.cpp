// Sharded loading for data-parallel training: shard_range and a DataLoader's share of each batch.
#include <doctest/doctest.h>

#include <numeric>

#include "tapegrad/train/dataset.hpp"

using namespace tapegrad;

TEST_CASE("shard_range: consecutive shares covering 0 to count, the first count % shards longer") {
  for (std::size_t count : {0u, 1u, 2u, 7u, 10u, 64u}) {
    for (std::size_t shards : {1u, 2u, 3u, 4u, 11u}) {
      std::size_t next = 0;
      for (std::size_t s = 0; s < shards; ++s) {
        const auto [first, last] = shard_range(count, s, shards);
        CHECK(first == next);
        CHECK(last - first == count / shards + (s < count % shards ? 1 : 0));
        next = last;
      }
      CHECK(next == count);
    }
  }
  CHECK(shard_range(10, 0, 3) == std::pair<std::size_t, std::size_t>{0, 4});
  CHECK(shard_range(10, 2, 3) == std::pair<std::size_t, std::size_t>{7, 10});
  CHECK(shard_range(2, 2, 3).first == shard_range(2, 2, 3).second);  // an empty share
  CHECK_THROWS_AS(shard_range(10, 3, 3), std::invalid_argument);
  CHECK_THROWS_AS(shard_range(10, 0, 0), std::invalid_argument);
}

TEST_CASE("DataLoader shards: the shares of every batch, in shard order, are the whole batch") {
  Dataset data;
  const std::size_t n = 23;
  data.inputs = Tensor<float>::zeros({n, 2});
  for (std::size_t i = 0; i < n; ++i) {
    data.inputs[2 * i] = static_cast<float>(i);
    data.inputs[2 * i + 1] = -static_cast<float>(i);
    data.labels.push_back(static_cast<std::int64_t>(i % 3));
  }
  data.classes = 3;
  for (std::size_t shards : {1u, 2u, 3u, 5u}) {
    DataLoader whole(data, {7, true, 42, false});
    std::vector<DataLoader> parts;
    for (std::size_t s = 0; s < shards; ++s)
      parts.emplace_back(data, LoaderOptions{7, true, 42, false, s, shards});
    CHECK(parts[0].batches() == whole.batches());
    for (int epoch = 0; epoch < 2; ++epoch) {
      whole.start_epoch();
      for (DataLoader& p : parts) p.start_epoch();
      Batch all, share;
      while (whole.next(all)) {
        CHECK(all.global_size == all.size());
        std::vector<float> joined;
        std::vector<std::int64_t> labels;
        for (std::size_t s = 0; s < shards; ++s) {
          REQUIRE(parts[s].next(share));
          CHECK(share.global_size == all.size());
          const auto [first, last] = shard_range(all.size(), s, shards);
          CHECK(share.size() == last - first);
          CHECK(share.labels.size() == last - first);
          if (share.size() > 0)
            joined.insert(joined.end(), share.inputs.data(),
                          share.inputs.data() + share.inputs.numel());
          labels.insert(labels.end(), share.labels.begin(), share.labels.end());
        }
        CHECK(joined ==
              std::vector<float>(all.inputs.data(), all.inputs.data() + all.inputs.numel()));
        CHECK(labels == all.labels);
      }
      for (DataLoader& p : parts) CHECK_FALSE(p.next(share));
    }
  }
  CHECK_THROWS_AS(DataLoader(data, LoaderOptions{7, true, 0, false, 2, 2}), std::invalid_argument);
  CHECK_THROWS_AS(DataLoader(data, LoaderOptions{7, true, 0, false, 0, 0}), std::invalid_argument);
}
