#include "tapegrad/train/readers.hpp"

#include <zlib.h>

#include <sys/stat.h>
#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <new>
#include <stdexcept>

#include "tapegrad/layers/safetensors.hpp"  // InputFile
#include "text.hpp"

namespace tapegrad {
namespace {

std::runtime_error file_error(const std::string& path, const std::string& what) {
  return std::runtime_error(path + ": " + what);
}

// The bytes of an IDX file, raw or gzip-compressed, read on demand: nothing is read (or
// inflated) beyond what the caller asks for.
class IdxStream {
 public:
  explicit IdxStream(const std::string& path) : file_(path, "an IDX file") {
    unsigned char magic[2] = {0, 0};
    gzip_ = file_.read_some(0, magic, 2) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (gzip_ && inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw std::bad_alloc();
  }
  ~IdxStream() {
    if (gzip_) inflateEnd(&z_);
  }
  IdxStream(const IdxStream&) = delete;
  IdxStream& operator=(const IdxStream&) = delete;

  const std::string& path() const { return file_.path(); }
  bool gzip() const { return gzip_; }
  std::uint64_t file_size() const { return file_.size(); }

  // Reads up to `n` bytes; fewer only where the data end.
  std::size_t read(unsigned char* out, std::size_t n) {
    if (!gzip_) {
      std::size_t done = 0;
      while (done < n) {
        const std::size_t got = file_.read_some(offset_, out + done, n - done);
        if (got == 0) break;
        offset_ += got, done += got;
      }
      return done;
    }
    z_.next_out = out;
    z_.avail_out = static_cast<uInt>(n);  // callers read in chunks below 4 GiB
    while (z_.avail_out > 0 && !ended_) {
      if (z_.avail_in == 0) {
        const std::size_t got = file_.read_some(offset_, in_, sizeof in_);
        if (got == 0) break;  // the input ends before the gzip stream does
        offset_ += got;
        z_.next_in = in_;
        z_.avail_in = static_cast<uInt>(got);
      }
      // Z_STREAM_END comes only after zlib has checked the trailer's CRC-32 and length.
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END)
        ended_ = true;
      else if (rc == Z_MEM_ERROR)
        throw std::bad_alloc();
      else if (rc != Z_OK && rc != Z_BUF_ERROR)
        throw file_error(path(), std::string("corrupt gzip stream: ") +
                                     (z_.msg ? z_.msg : "error " + std::to_string(rc)));
    }
    return n - z_.avail_out;
  }

  // Throws unless the data end here: no byte is left and, for gzip, the stream ends with its
  // CRC-32 and length verified and nothing after it.
  void expect_end() {
    unsigned char extra;
    if (read(&extra, 1) != 0)
      throw file_error(path(), "trailing data after the values the header declares");
    if (gzip_ && !ended_)
      throw file_error(path(), "truncated gzip stream (it ends before its CRC-32 and length)");
    if (gzip_ && (z_.avail_in > 0 || offset_ < file_.size()))
      throw file_error(path(), "data after the end of the gzip stream");
  }

 private:
  InputFile file_;
  bool gzip_ = false, ended_ = false;
  std::uint64_t offset_ = 0;
  z_stream z_{};
  unsigned char in_[1 << 16];
};

std::string dims_text(const std::vector<std::size_t>& dims) {
  std::string out = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}

// The most bytes a deflate stream of `compressed` bytes can inflate to (deflate's ratio is at
// most 1032 : 1).
constexpr std::uint64_t max_inflated_per_byte = 1032;

std::uint32_t big_endian_u32(const unsigned char* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         std::uint32_t(p[3]);
}

// Size in bytes and decoder of each IDX element type.
std::size_t element_size(unsigned char type) {
  switch (type) {
    case 0x08:
    case 0x09:
      return 1;
    case 0x0B:
      return 2;
    case 0x0C:
    case 0x0D:
      return 4;
    case 0x0E:
      return 8;
    default:
      return 0;
  }
}

float decode(unsigned char type, const unsigned char* p) {
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < element_size(type); ++i) bits = (bits << 8) | p[i];
  switch (type) {
    case 0x08:
      return static_cast<float>(p[0]);
    case 0x09:
      return static_cast<float>(static_cast<std::int8_t>(p[0]));
    case 0x0B:
      return static_cast<float>(static_cast<std::int16_t>(bits));
    case 0x0C:
      return static_cast<float>(static_cast<std::int32_t>(bits));
    case 0x0D: {
      float f;
      const std::uint32_t b = static_cast<std::uint32_t>(bits);
      std::memcpy(&f, &b, 4);
      return f;
    }
    default: {
      double d;
      std::memcpy(&d, &bits, 8);
      return static_cast<float>(d);
    }
  }
}

std::string trim(const std::string& s) {
  std::size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r')) --b;
  std::string t = s.substr(a, b - a);
  if (t.size() >= 2 && t.front() == '"' && t.back() == '"') t = t.substr(1, t.size() - 2);
  return t;
}

std::vector<std::string> split_fields(const std::string& line, char delimiter) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') quoted = !quoted;
    if (c == delimiter && !quoted) {
      fields.push_back(trim(field));
      field.clear();
    } else {
      field += c;
    }
  }
  fields.push_back(trim(field));
  return fields;
}

bool parse_double(const std::string& text, double& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && errno != ERANGE && std::isfinite(out);
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  IdxStream in(path);
  unsigned char head[4 + 4 * 255];
  const std::size_t got = in.read(head, 4);
  if (got < 4)
    throw file_error(path, "too short for an IDX header (" + std::to_string(got) + " bytes)");
  if (head[0] != 0 || head[1] != 0)
    throw file_error(path, "not an IDX file (magic must start with two zero bytes)");
  const unsigned char type = head[2], rank = head[3];
  const std::size_t esize = element_size(type);
  if (esize == 0)
    throw file_error(path, "unknown IDX element type 0x" + std::to_string(static_cast<int>(type)));
  if (rank == 0) throw file_error(path, "IDX file with no dimensions");
  const std::size_t header = 4 + 4 * std::size_t(rank);
  if (in.read(head + 4, header - 4) < header - 4) throw file_error(path, "truncated IDX header");
  IdxArray a;
  for (std::size_t i = 0; i < rank; ++i) a.dims.push_back(big_endian_u32(&head[4 + 4 * i]));
  // Sizes are checked for overflow and against the file before anything is allocated.
  std::size_t count = 1, expected = 0;
  bool overflow = false;
  for (std::size_t d : a.dims) overflow |= __builtin_mul_overflow(count, d, &count);
  overflow |= __builtin_mul_overflow(count, esize, &expected);
  overflow |= __builtin_add_overflow(expected, header, &expected);
  if (overflow)
    throw file_error(path, "the dimensions " + dims_text(a.dims) + " overflow 64-bit sizes");
  const std::string promise = "truncated: the header promises " + std::to_string(count) +
                              " values (" + std::to_string(expected) + " bytes) but ";
  const std::uint64_t size = in.file_size();
  if (!in.gzip() && size < expected)
    throw file_error(path, promise + "the file has " + std::to_string(size) + " bytes");
  if (!in.gzip() && size > expected)
    throw file_error(path, std::to_string(size - expected) +
                               " bytes of trailing data after the values the header declares");
  if (in.gzip() && expected / max_inflated_per_byte > size)
    throw file_error(path, promise + "a gzip file of " + std::to_string(size) +
                               " bytes cannot inflate to that many");
  a.values.resize(count);
  unsigned char chunk[1 << 16];
  const std::size_t per_chunk = sizeof chunk / esize;
  for (std::size_t i = 0; i < count; i += per_chunk) {
    const std::size_t n = std::min(per_chunk, count - i);
    const std::size_t have = in.read(chunk, n * esize);
    if (have < n * esize)
      throw file_error(path, promise + "the data end after " +
                                 std::to_string(header + i * esize + have) + " bytes");
    for (std::size_t k = 0; k < n; ++k) a.values[i + k] = decode(type, chunk + k * esize);
  }
  in.expect_end();
  return a;
}

Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         std::size_t classes) {
  IdxArray images = read_idx(images_path);
  if (images.dims[0] == 0) throw file_error(images_path, "holds no images");
  const std::size_t per_image = images.values.size() / images.dims[0];
  for (std::size_t i = 0; i < images.values.size(); ++i)
    if (!std::isfinite(images.values[i]))
      throw file_error(images_path, "image " + std::to_string(i / per_image) +
                                        " holds a non-finite value (" +
                                        detail::non_finite_text(images.values[i]) + ")");
  const IdxArray labels = read_idx(labels_path);
  if (labels.dims.size() != 1)
    throw file_error(labels_path, "labels must be one-dimensional, found " +
                                      std::to_string(labels.dims.size()) + " dimensions");
  if (images.dims[0] != labels.dims[0])
    throw std::runtime_error(images_path + " has " + std::to_string(images.dims[0]) +
                             " images but " + labels_path + " has " +
                             std::to_string(labels.dims[0]) + " labels");
  Dataset d;
  d.inputs = Tensor<float>::from(Shape(images.dims.begin(), images.dims.end()), images.values);
  d.classes = classes;
  d.labels.resize(labels.values.size());
  for (std::size_t i = 0; i < labels.values.size(); ++i) {
    const float v = labels.values[i];
    if (v < 0 || v != std::floor(v) || v >= static_cast<float>(classes))
      throw file_error(labels_path, "label " + std::to_string(v) + " of sample " +
                                        std::to_string(i) + " is outside [0, " +
                                        std::to_string(classes) + ")");
    d.labels[i] = static_cast<std::int64_t>(v);
  }
  return d;
}

Dataset load_mnist_folder(const std::string& folder, const std::string& split) {
  if (split != "train" && split != "test")
    throw std::invalid_argument("load_mnist_folder: split must be \"train\" or \"test\", not \"" +
                                split + "\"");
  const std::string prefix = split == "train" ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    for (const std::string& name : {stem, stem + ".gz"}) {
      const std::string path = folder + "/" + name;
      struct stat st;
      if (::stat(path.c_str(), &st) == 0) return path;
    }
    throw std::runtime_error(folder + ": no " + stem + " or " + stem +
                             ".gz (is this an MNIST-layout folder? Fashion-MNIST is in the "
                             "dataset-fashion-mnist package)");
  };
  const std::string images = find(prefix + "-images-idx3-ubyte");
  const std::string labels = find(prefix + "-labels-idx1-ubyte");
  Dataset d = read_idx_dataset(images, labels, 10);
  scale_inputs(d, 1.0f / 255.0f);
  return d;
}

Dataset read_csv(const std::string& path, const CsvOptions& options) {
  std::ifstream in(path);
  if (!in) throw file_error(path, std::strerror(errno));
  std::string line;
  std::size_t line_no = 0;
  std::vector<std::string> header;
  while (std::getline(in, line)) {
    ++line_no;
    // A UTF-8 byte-order mark (spreadsheets write one) is not part of the first name.
    if (line_no == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (!trim(line).empty()) {
      header = split_fields(line, options.delimiter);
      break;
    }
  }
  if (header.empty()) throw file_error(path, "empty file: expected a header row");
  std::string names;  // the header, for messages
  for (const std::string& h : header) names += (names.empty() ? "" : ", ") + h;
  auto column_named = [&](const std::string& name) {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    throw file_error(path, "no column named \"" + name + "\" in the header (" + names + ")");
  };
  if (options.regression && (!options.label_column.empty() || options.classes))
    throw std::invalid_argument(path +
                                ": a label column or a class count does not apply to "
                                "regression (name its targets instead)");
  // is_target[c]: column c is the label (classification) or a target (regression).
  std::vector<bool> is_target(header.size(), false);
  std::vector<std::size_t> target_cols;  // regression: in the order of target_columns
  if (!options.regression) {
    const std::size_t label_col =
        options.label_column.empty() ? header.size() - 1 : column_named(options.label_column);
    is_target[label_col] = true;
    if (header.size() < 2) throw file_error(path, "needs a label column and at least one feature");
  } else {
    if (options.target_columns.empty()) target_cols.push_back(header.size() - 1);
    for (const std::string& name : options.target_columns) {
      const std::size_t c = column_named(name);
      if (is_target[c]) throw file_error(path, "target column \"" + name + "\" is named twice");
      target_cols.push_back(c);
      is_target[c] = true;
    }
    is_target[target_cols.front()] = true;
    if (target_cols.size() >= header.size())
      throw file_error(path, "every column is a target: at least one feature column is needed");
  }
  const std::size_t features = header.size() - (options.regression ? target_cols.size() : 1);
  std::vector<float> values, targets(target_cols.size());
  std::vector<float> target_values;
  std::vector<std::int64_t> labels;
  std::int64_t max_label = -1;
  std::size_t rows = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    const std::vector<std::string> fields = split_fields(line, options.delimiter);
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (fields.size() != header.size())
      throw std::runtime_error(where + "expected " + std::to_string(header.size()) +
                               " fields, found " + std::to_string(fields.size()));
    for (std::size_t c = 0; c < fields.size(); ++c) {
      double v = 0;
      if (!parse_double(fields[c], v)) {
        char* end = nullptr;
        const double parsed = std::strtod(fields[c].c_str(), &end);
        if (options.regression && is_target[c] && !fields[c].empty() &&
            end == fields[c].c_str() + fields[c].size() && !std::isfinite(parsed))
          throw std::runtime_error(where + "column \"" + header[c] + "\": target \"" + fields[c] +
                                   "\" is not finite");
        throw std::runtime_error(where + "column \"" + header[c] + "\": \"" + fields[c] +
                                 "\" is not a number");
      }
      if (is_target[c] && !options.regression) {
        if (v < 0 || v != std::floor(v) || v >= 0x1p63)
          throw std::runtime_error(where + "label \"" + fields[c] +
                                   "\" is not a class index (a whole number in [0, 2^63))");
        if (options.classes && v >= static_cast<double>(options.classes))
          throw std::runtime_error(where + "label " + fields[c] + " is outside [0, " +
                                   std::to_string(options.classes) + ")");
        labels.push_back(static_cast<std::int64_t>(v));
        max_label = std::max(max_label, labels.back());
      } else {
        if (std::fabs(v) > FLT_MAX)
          throw std::runtime_error(where + "column \"" + header[c] + "\": \"" + fields[c] +
                                   "\" is outside the range of float");
        if (is_target[c])
          targets[static_cast<std::size_t>(std::find(target_cols.begin(), target_cols.end(), c) -
                                           target_cols.begin())] = static_cast<float>(v);
        else
          values.push_back(static_cast<float>(v));
      }
    }
    target_values.insert(target_values.end(), targets.begin(), targets.end());
    ++rows;
  }
  if (rows == 0) throw file_error(path, "no data rows after the header");
  Dataset d;
  d.inputs = Tensor<float>::from(Shape{rows, features}, values);
  if (options.regression) {
    d.targets = Tensor<float>::from(Shape{rows, target_cols.size()}, target_values);
    for (std::size_t c : target_cols) d.target_names.push_back(header[c]);
    return d;
  }
  d.labels = std::move(labels);
  d.classes = options.classes ? options.classes : static_cast<std::size_t>(max_label + 1);
  return d;
}

}  // namespace tapegrad
