// Minimal NumPy .npy (format 1.0/2.0/3.0) reader and writer for C-ordered arrays of little-endian float32
// ('<f4') or uint8 ('|u1', an app file's pixels; read as exact floats, `uint8` set): what se_edge's Python
// runner reads and writes, so the runners share input and output files. Bounded by the file: the data the
// header declares must be there before anything is allocated for it.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace npy {

struct Array {
  std::vector<int64_t> shape;
  std::vector<float> data;
  bool uint8 = false;  // read from a uint8 array: every value a whole number 0..255
};

inline std::string header_value(const std::string& header, const std::string& key) {
  auto at = header.find("'" + key + "'");
  if (at == std::string::npos) throw std::runtime_error("no '" + key + "' in .npy header");
  at = header.find(':', at) + 1;
  while (at < header.size() && header[at] == ' ') ++at;
  return header.substr(at);
}

inline Array load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  char magic[8];
  f.read(magic, 8);
  if (!f || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error(path + " is not a .npy file");
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    f.read(reinterpret_cast<char*>(b), 2);
    header_len = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    f.read(reinterpret_cast<char*>(b), 4);
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  std::string header(header_len, '\0');
  f.read(header.data(), header_len);
  const std::string descr = header_value(header, "descr");
  const bool u8 = descr.rfind("'|u1'", 0) == 0;
  if (!u8 && descr.rfind("'<f4'", 0) != 0)
    throw std::runtime_error(path + ": only little-endian float32 ('<f4') and uint8 ('|u1') arrays are supported");
  if (header_value(header, "fortran_order").rfind("False", 0) != 0)
    throw std::runtime_error(path + ": Fortran-ordered arrays are not supported");
  std::string shape_text = header_value(header, "shape");
  Array a;
  std::stringstream dims(shape_text.substr(1, shape_text.find(')') - 1));
  for (std::string d; std::getline(dims, d, ',');)
    if (d.find_first_not_of(' ') != std::string::npos) a.shape.push_back(std::stoll(d));
  int64_t n = 1;
  for (auto d : a.shape) {
    if (d < 0 || (d > 0 && n > (int64_t{1} << 40) / d)) throw std::runtime_error(path + ": implausible shape");
    n *= d;
  }
  const std::streamoff start = f.tellg();
  f.seekg(0, std::ios::end);
  const std::streamoff have = f.tellg() - start;
  f.seekg(start);
  const int64_t bytes = n * (u8 ? 1 : static_cast<int64_t>(sizeof(float)));
  if (have < bytes) throw std::runtime_error(path + ": truncated data (the header declares more than the file holds)");
  a.uint8 = u8;
  a.data.resize(static_cast<size_t>(n));
  if (u8) {
    std::vector<unsigned char> raw(static_cast<size_t>(n));
    f.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(n));
    for (size_t i = 0; i < raw.size(); ++i) a.data[i] = static_cast<float>(raw[i]);
  } else {
    f.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(n * sizeof(float)));
  }
  if (!f) throw std::runtime_error(path + ": truncated data");
  return a;
}

inline void save(const std::string& path, const Array& a) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < a.shape.size(); ++i) header += std::to_string(a.shape[i]) + (a.shape.size() == 1 ? "," : (i + 1 < a.shape.size() ? ", " : ""));
  header += "), }";
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot write " + path);
  const uint16_t len = static_cast<uint16_t>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  const char len_le[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  f.write(len_le, 2);
  f << header;
  f.write(reinterpret_cast<const char*>(a.data.data()), static_cast<std::streamsize>(a.data.size() * sizeof(float)));
  if (!f) throw std::runtime_error("cannot write " + path);
}

}  // namespace npy
