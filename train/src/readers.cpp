#include "tapegrad/train/readers.hpp"

#include <zlib.h>

#include <sys/stat.h>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace tapegrad {
namespace {

std::runtime_error file_error(const std::string& path, const std::string& what) {
  return std::runtime_error(path + ": " + what);
}

// Reads the whole (possibly gzip-compressed) file; zlib passes plain files through unchanged.
std::vector<unsigned char> read_all(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw file_error(path, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw file_error(path, "is a directory, not an IDX file");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) throw file_error(path, std::strerror(errno));
  std::vector<unsigned char> bytes;
  unsigned char chunk[1 << 16];
  for (;;) {
    const int n = gzread(file.get(), chunk, sizeof chunk);
    if (n < 0) {
      int code = 0;
      const char* msg = gzerror(file.get(), &code);
      throw file_error(path, std::string("cannot decompress: ") + msg);
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  return bytes;
}

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
  const std::vector<unsigned char> bytes = read_all(path);
  if (bytes.size() < 4)
    throw file_error(path,
                     "too short for an IDX header (" + std::to_string(bytes.size()) + " bytes)");
  if (bytes[0] != 0 || bytes[1] != 0)
    throw file_error(path, "not an IDX file (magic must start with two zero bytes)");
  const unsigned char type = bytes[2], rank = bytes[3];
  const std::size_t esize = element_size(type);
  if (esize == 0)
    throw file_error(path, "unknown IDX element type 0x" + std::to_string(static_cast<int>(type)));
  if (rank == 0) throw file_error(path, "IDX file with no dimensions");
  const std::size_t header = 4 + 4 * std::size_t(rank);
  if (bytes.size() < header) throw file_error(path, "truncated IDX header");
  IdxArray a;
  std::size_t count = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    a.dims.push_back(big_endian_u32(&bytes[4 + 4 * i]));
    count *= a.dims.back();
  }
  const std::size_t expected = header + count * esize;
  if (bytes.size() < expected)
    throw file_error(path, "truncated: the header promises " + std::to_string(count) + " values (" +
                               std::to_string(expected) + " bytes) but the file has " +
                               std::to_string(bytes.size()) + " bytes");
  if (bytes.size() > expected)
    throw file_error(path, std::to_string(bytes.size() - expected) +
                               " bytes of trailing data after the values the header declares");
  a.values.resize(count);
  for (std::size_t i = 0; i < count; ++i) a.values[i] = decode(type, &bytes[header + i * esize]);
  return a;
}

Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         std::size_t classes) {
  IdxArray images = read_idx(images_path);
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
    if (!trim(line).empty()) {
      header = split_fields(line, options.delimiter);
      break;
    }
  }
  if (header.empty()) throw file_error(path, "empty file: expected a header row");
  std::size_t label_col = header.size() - 1;
  if (!options.label_column.empty()) {
    label_col = header.size();
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == options.label_column) label_col = i;
    if (label_col == header.size()) {
      std::string names;
      for (const std::string& h : header) names += (names.empty() ? "" : ", ") + h;
      throw file_error(
          path, "no column named \"" + options.label_column + "\" in the header (" + names + ")");
    }
  }
  if (header.size() < 2) throw file_error(path, "needs a label column and at least one feature");
  const std::size_t features = header.size() - 1;
  std::vector<float> values;
  std::vector<std::int64_t> labels;
  std::int64_t max_label = -1;
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
      if (!parse_double(fields[c], v))
        throw std::runtime_error(where + "column \"" + header[c] + "\": \"" + fields[c] +
                                 "\" is not a number");
      if (c == label_col) {
        if (v < 0 || v != std::floor(v))
          throw std::runtime_error(where + "label \"" + fields[c] +
                                   "\" is not a class index (a whole number >= 0)");
        if (options.classes && v >= static_cast<double>(options.classes))
          throw std::runtime_error(where + "label " + fields[c] + " is outside [0, " +
                                   std::to_string(options.classes) + ")");
        labels.push_back(static_cast<std::int64_t>(v));
        max_label = std::max(max_label, labels.back());
      } else {
        values.push_back(static_cast<float>(v));
      }
    }
  }
  if (labels.empty()) throw file_error(path, "no data rows after the header");
  Dataset d;
  d.inputs = Tensor<float>::from(Shape{labels.size(), features}, values);
  d.labels = std::move(labels);
  d.classes = options.classes ? options.classes : static_cast<std::size_t>(max_label + 1);
  return d;
}

}  // namespace tapegrad
