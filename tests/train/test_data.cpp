// Datasets, the batch loader, preprocessing, and the IDX / CSV readers on small files.
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <set>

#include "helpers.hpp"
#include "tapegrad/train/dataset.hpp"
#include "tapegrad/train/readers.hpp"

using namespace tapegrad;

namespace {
Dataset counting_dataset(std::size_t n) {
  Dataset d;
  d.inputs = Tensor<float>({n, 2});
  for (std::size_t i = 0; i < n; ++i) {
    d.inputs[2 * i] = static_cast<float>(i);
    d.inputs[2 * i + 1] = -static_cast<float>(i);
    d.labels.push_back(static_cast<std::int64_t>(i % 3));
  }
  d.classes = 3;
  return d;
}

std::string temp_path(const std::string& name) {
  return std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/tapegrad_test_" +
         name;
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size()));
  }
}

std::vector<unsigned char> idx_bytes(unsigned char type, std::vector<std::uint32_t> dims,
                                     std::vector<unsigned char> payload) {
  std::vector<unsigned char> b = {0, 0, type, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

std::vector<std::size_t> epoch_order(DataLoader& loader) {
  std::vector<std::size_t> seen;
  Batch batch;
  loader.start_epoch();
  while (loader.next(batch))
    for (std::size_t i = 0; i < batch.size(); ++i)
      seen.push_back(static_cast<std::size_t>(batch.inputs[2 * i]));
  return seen;
}
}  // namespace

TEST_CASE("loader: batches cover every sample once, the short batch is kept or dropped") {
  const Dataset d = counting_dataset(10);
  DataLoader keep(d, {4, true, 7, false});
  CHECK(keep.batches() == 3);
  std::vector<std::size_t> order = epoch_order(keep);
  REQUIRE(order.size() == 10);
  std::set<std::size_t> unique(order.begin(), order.end());
  CHECK(unique.size() == 10);
  DataLoader drop(d, {4, false, 7, true});
  CHECK(drop.batches() == 2);
  const std::vector<std::size_t> in_order = epoch_order(drop);
  CHECK(in_order == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("loader: the same seed gives the same order; epochs differ; labels follow inputs") {
  const Dataset d = counting_dataset(50);
  DataLoader a(d, {8, true, 123, false}), b(d, {8, true, 123, false}), c(d, {8, true, 124, false});
  const auto a1 = epoch_order(a), a2 = epoch_order(a);
  CHECK(a1 == epoch_order(b));
  CHECK(a2 == epoch_order(b));
  CHECK(a1 != a2);
  CHECK(a1 != epoch_order(c));
  Batch batch;
  a.start_epoch();
  while (a.next(batch))
    for (std::size_t i = 0; i < batch.size(); ++i)
      CHECK(batch.labels[i] == static_cast<std::int64_t>(batch.inputs[2 * i]) % 3);
}

TEST_CASE("loader: the shuffle stream's state restores the same next epoch") {
  const Dataset d = counting_dataset(30);
  DataLoader a(d, {5, true, 9, false});
  epoch_order(a);
  const std::string state = a.rng().state();
  const auto next = epoch_order(a);
  DataLoader b(d, {5, true, 0, false});
  b.rng().set_state(state);
  CHECK(epoch_order(b) == next);
  CHECK(test::error_of([&] { b.rng().set_state("garbage"); }).find("malformed") !=
        std::string::npos);
}

TEST_CASE("preprocessing: validation split, scaling, standardisation fitted on train only") {
  const Dataset d = counting_dataset(20);
  auto [train, val] = split_validation(d, 0.25, 3);
  CHECK(train.size() == 15);
  CHECK(val.size() == 5);
  std::set<float> all;
  for (const Dataset* part : {&train, &val})
    for (std::size_t i = 0; i < part->size(); ++i) all.insert(part->inputs[2 * i]);
  CHECK(all.size() == 20);
  const Standardizer s = Standardizer::fit(train);
  Dataset t2 = train;
  s.apply(t2);
  double mean = 0, sq = 0;
  for (std::size_t i = 0; i < t2.size(); ++i) {
    mean += t2.inputs[2 * i];
    sq += t2.inputs[2 * i] * t2.inputs[2 * i];
  }
  CHECK(mean / 15 == doctest::Approx(0).scale(1));
  CHECK(sq / 15 == doctest::Approx(1));
  Dataset v2 = val;
  s.apply(v2);  // uses the training statistics
  CHECK(v2.inputs[0] == doctest::Approx((val.inputs[0] - s.mean[0]) / s.stddev[0]));
  scale_inputs(v2, 0.f);
  for (float v : v2.inputs) CHECK(v == 0.f);
  CHECK(test::error_of([&] { split_validation(d, 1.5, 0); }).find("1.5") != std::string::npos);
}

TEST_CASE("idx: images and labels, raw and gzip, round-trip through the reader") {
  for (bool gz : {false, true}) {
    const std::string images = temp_path(gz ? "img.gz" : "img"), labels = temp_path("lbl");
    write_bytes(images, idx_bytes(0x08, {3, 2, 2}, {0, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), gz);
    write_bytes(labels, idx_bytes(0x08, {3}, {2, 0, 9}), false);
    const Dataset d = read_idx_dataset(images, labels, 10);
    CHECK(d.inputs.shape() == Shape{3, 2, 2});
    CHECK(d.inputs[1] == 255.f);
    CHECK(d.inputs[11] == 10.f);
    CHECK(d.labels == std::vector<std::int64_t>{2, 0, 9});
    std::remove(images.c_str());
    std::remove(labels.c_str());
  }
}

TEST_CASE("idx: bad files are refused with the file and the problem named") {
  const std::string p = temp_path("bad"), lbl = temp_path("bad_lbl");
  write_bytes(p, {1, 2, 8, 1, 0, 0, 0, 1, 5}, false);
  CHECK(test::error_of([&] { read_idx(p); }).find(p + ": not an IDX file") != std::string::npos);
  write_bytes(p, idx_bytes(0x08, {2, 2}, {1, 2, 3}), false);
  CHECK(test::error_of([&] { read_idx(p); }).find("truncated") != std::string::npos);
  write_bytes(p, idx_bytes(0x08, {2}, {1, 2, 3}), false);
  CHECK(test::error_of([&] { read_idx(p); }).find("trailing") != std::string::npos);
  write_bytes(p, idx_bytes(0x07, {1}, {1}), false);
  CHECK(test::error_of([&] { read_idx(p); }).find("unknown IDX element type") != std::string::npos);
  write_bytes(p, idx_bytes(0x08, {2, 1}, {1, 2}), false);
  write_bytes(lbl, idx_bytes(0x08, {3}, {1, 2, 3}), false);
  CHECK(test::error_of([&] { read_idx_dataset(p, lbl); }).find("2 images but") !=
        std::string::npos);
  write_bytes(lbl, idx_bytes(0x08, {2}, {1, 12}), false);
  CHECK(test::error_of([&] {
          read_idx_dataset(p, lbl);
        }).find("label 12.000000 of sample 1 is outside [0, 10)") != std::string::npos);
  CHECK(test::error_of([] { read_idx("/nonexistent/file"); }).find("/nonexistent/file") !=
        std::string::npos);
  CHECK(test::error_of([] {
          load_mnist_folder("/nonexistent", "train");
        }).find("train-images-idx3-ubyte") != std::string::npos);
  std::remove(p.c_str());
  std::remove(lbl.c_str());
}

TEST_CASE("csv: header, chosen label column, numeric features; errors carry the line") {
  const std::string p = temp_path("data.csv");
  std::ofstream(p) << "a,label,b\n1.5,2,-3\n\n0,0,4e2\r\n";
  Dataset d = read_csv(p, {"label", ',', 0});
  CHECK(d.inputs.shape() == Shape{2, 2});
  test::check_close(d.inputs, Tensor<float>({2, 2}, {1.5f, -3.f, 0.f, 400.f}));
  CHECK(d.labels == std::vector<std::int64_t>{2, 0});
  CHECK(d.classes == 3);
  d = read_csv(p, {"", ',', 0});  // last column is the label
  CHECK(d.labels == std::vector<std::int64_t>{-3 + 3, 400});
}

TEST_CASE("csv: every kind of bad row is named with file and line") {
  const std::string p = temp_path("bad.csv");
  auto error_for = [&](const std::string& text, const CsvOptions& o = {"y", ',', 0}) {
    std::ofstream(p) << text;
    return test::error_of([&] { read_csv(p, o); });
  };
  CHECK(error_for("x,y\n1,2\n3\n").find(p + ":3: expected 2 fields, found 1") != std::string::npos);
  CHECK(error_for("x,y\n1,2\nabc,1\n").find(p + ":3: column \"x\": \"abc\" is not a number") !=
        std::string::npos);
  CHECK(error_for("x,y\n1,2.5\n").find(":2: label \"2.5\" is not a class index") !=
        std::string::npos);
  CHECK(error_for("x,y\n1,7\n", {"y", ',', 5}).find(":2: label 7 is outside [0, 5)") !=
        std::string::npos);
  CHECK(error_for("x,y\n1,2\n", {"z", ',', 0}).find("no column named \"z\"") != std::string::npos);
  CHECK(error_for("").find("empty file") != std::string::npos);
  CHECK(error_for("x,y\n").find("no data rows") != std::string::npos);
  std::remove(p.c_str());
}

TEST_CASE("idx: the Fashion-MNIST test split from the dataset-fashion-mnist package") {
  const Dataset d = load_mnist_folder(fashion_mnist_folder, "test");
  CHECK(d.inputs.shape() == Shape{10000, 28, 28});
  CHECK(d.classes == 10);
  std::vector<std::size_t> per_class(10, 0);
  for (std::int64_t y : d.labels) ++per_class[static_cast<std::size_t>(y)];
  for (std::size_t c = 0; c < 10; ++c) CHECK(per_class[c] == 1000);
  const auto [lo, hi] = std::minmax_element(d.inputs.begin(), d.inputs.end());
  CHECK(*lo == 0.f);
  CHECK(*hi == 1.f);
}

namespace {
// Deflates `bytes` as a gzip member; `flush` Z_FULL_FLUSH leaves the stream open and
// byte-aligned (so the output can be repeated), Z_FINISH ends it with the CRC-32 and ISIZE.
std::vector<unsigned char> deflate_part(z_stream& z, const std::vector<unsigned char>& bytes,
                                        int flush) {
  std::vector<unsigned char> out(bytes.size() + 1024);
  z.next_in = const_cast<unsigned char*>(bytes.data());
  z.avail_in = static_cast<unsigned>(bytes.size());
  z.next_out = out.data();
  z.avail_out = static_cast<unsigned>(out.size());
  REQUIRE(deflate(&z, flush) != Z_STREAM_ERROR);
  REQUIRE(z.avail_in == 0);
  out.resize(out.size() - z.avail_out);
  return out;
}
}  // namespace

TEST_CASE("idx: sizes whose product overflows 64 bits are refused before anything is allocated") {
  const std::string p = temp_path("overflow");
  // 2¹⁶ · 2¹⁶ · 2¹⁶ · 2¹⁶ · 2 values wrap to 0 in 64 bits.
  write_bytes(p, idx_bytes(0x08, {65536, 65536, 65536, 65536, 2}, {}), false);
  CHECK(test::error_of([&] { read_idx(p); }) ==
        p + ": the dimensions [65536, 65536, 65536, 65536, 2] overflow 64-bit sizes");
  // 2³¹ · 2³¹ floats of 4 bytes: the byte count wraps to 0.
  write_bytes(p, idx_bytes(0x0D, {1u << 31, 1u << 31}, {}), false);
  CHECK(test::error_of([&] { read_idx(p); }) ==
        p + ": the dimensions [2147483648, 2147483648] overflow 64-bit sizes");
  // 2⁶¹ bytes fit in 64 bits but no gzip file of a few bytes inflates to them: refused from
  // the file's size.
  write_bytes(p, idx_bytes(0x08, {1u << 31, 1u << 30}, {}), true);
  CHECK(test::error_of([&] { read_idx(p); }).find(p + ": truncated: the header promises") !=
        std::string::npos);
  std::remove(p.c_str());
}

TEST_CASE(
    "idx: a gzip stream is inflated only as far as its header needs; CRC-32 and size are checked") {
  const std::string p = temp_path("bomb.gz");
  const std::vector<unsigned char> valid = idx_bytes(0x08, {4}, {1, 2, 3, 4});
  z_stream z{};
  REQUIRE(deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<unsigned char> file = deflate_part(z, valid, Z_FULL_FLUSH);
  // 4096 copies of a deflated MiB of zeros: 4 GiB of trailing data in about 4 MB, with an ISIZE
  // forged to the header's 12 bytes (ISIZE is the length mod 2³²).
  const std::vector<unsigned char> mib =
      deflate_part(z, std::vector<unsigned char>(1 << 20, 0), Z_FULL_FLUSH);
  for (int i = 0; i < 4096; ++i) file.insert(file.end(), mib.begin(), mib.end());
  std::vector<unsigned char> tail = deflate_part(z, {}, Z_FINISH);
  deflateEnd(&z);
  for (int i = 0; i < 4; ++i) tail[tail.size() - 4 + i] = static_cast<unsigned char>(12 >> (8 * i));
  file.insert(file.end(), tail.begin(), tail.end());
  write_bytes(p, file, false);
  CHECK(test::error_of([&] { read_idx(p); }) ==
        p + ": trailing data after the values the header declares");

  // A valid gzip file, then the same truncated inside its 8-byte trailer, then with a wrong CRC.
  write_bytes(p, valid, true);
  const std::string good_text = test::read_file(p);
  const std::vector<unsigned char> good(good_text.begin(), good_text.end());
  CHECK(read_idx(p).values == std::vector<float>{1, 2, 3, 4});
  std::vector<unsigned char> cut(good.begin(), good.end() - 3);
  write_bytes(p, cut, false);
  CHECK(test::error_of([&] { read_idx(p); }) ==
        p + ": truncated gzip stream (it ends before its CRC-32 and length)");
  std::vector<unsigned char> bad_crc = good;
  bad_crc[bad_crc.size() - 8] ^= 1;
  write_bytes(p, bad_crc, false);
  CHECK(test::error_of([&] { read_idx(p); }) == p + ": corrupt gzip stream: incorrect data check");
  std::remove(p.c_str());
}

TEST_CASE("idx: an empty image set, a non-finite pixel and a non-file are refused by name") {
  const std::string images = temp_path("img0"), labels = temp_path("lbl0");
  write_bytes(images, idx_bytes(0x08, {0, 2}, {}), false);
  write_bytes(labels, idx_bytes(0x08, {0}, {}), false);
  CHECK(test::error_of([&] { read_idx_dataset(images, labels); }) == images + ": holds no images");
  // Float images; image 1's second value is NaN (0x7fc00000).
  write_bytes(images,
              idx_bytes(0x0D, {2, 2}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xc0, 0, 0}),
              false);
  write_bytes(labels, idx_bytes(0x08, {2}, {0, 1}), false);
  CHECK(test::error_of([&] { read_idx_dataset(images, labels); }) ==
        images + ": image 1 holds a non-finite value (nan)");
  CHECK(test::error_of([] { read_idx("/dev/zero"); }) ==
        "/dev/zero: not a regular file (an IDX file must be one)");
  std::remove(images.c_str());
  std::remove(labels.c_str());
}

TEST_CASE("csv: out-of-range numbers, a byte-order mark, and huge labels") {
  const std::string p = temp_path("range.csv");
  auto error_for = [&](const std::string& text, const CsvOptions& o = {"label", ',', 0}) {
    std::ofstream(p) << text;
    return test::error_of([&] { read_csv(p, o); });
  };
  CHECK(error_for("a,label\n1e39,1\n") ==
        p + ":2: column \"a\": \"1e39\" is outside the range of float");
  CHECK(error_for("a,label\n1,1e19\n").find(p + ":2: label \"1e19\" is not a class index") !=
        std::string::npos);
  std::ofstream(p) << "\xEF\xBB\xBFlabel,a\n1,2\n0,3\n";
  const Dataset d = read_csv(p, {"label", ',', 0});
  CHECK(d.labels == std::vector<std::int64_t>{1, 0});
  std::remove(p.c_str());
}
