// What both native runners (pte_runner, tflite_runner) share with se_edge/runner.py: the command line, the
// clock, peak memory and writing the statistics. The runners differ only in the runtime they drive.
#pragma once

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <sstream>
#include <string>
#include <vector>

namespace runner_cli {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string model, inputs, outputs, json;
  int runs = 50, warmup = 10, threads = 1;
};

inline int to_int(const std::string& flag, const std::string& value, int minimum) {
  try {
    size_t used = 0;
    int v = std::stoi(value, &used);
    if (used == value.size() && v >= minimum) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(flag + " must be an integer >= " + std::to_string(minimum) + ", got '" + value + "'");
}

// runner.py's options; executor_runner's (--num_executions, --cpu_threads) and benchmark_model's (--num_runs,
// --warmup_runs, --num_threads) spellings too. --help prints `usage` and exits 0.
inline Options parse_args(int argc, char** argv, const char* usage) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    auto eq = arg.find('=');
    bool is_flag = arg.rfind("--", 0) == 0;
    if (is_flag && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (is_flag) {
      if (arg == "--help" || arg == "-h") {
        std::cout << usage << "\n";
        std::exit(0);
      }
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      value = argv[++i];
    }
    if (!is_flag) {
      if (!o.model.empty()) throw std::invalid_argument("more than one model given: " + arg);
      o.model = arg;
    } else if (arg == "--inputs") {
      o.inputs = value;
    } else if (arg == "--outputs") {
      o.outputs = value;
    } else if (arg == "--json") {
      o.json = value;
    } else if (arg == "--runs" || arg == "--num_executions" || arg == "--num_runs") {
      o.runs = to_int(arg, value, 1);
    } else if (arg == "--warmup" || arg == "--warmup_runs") {
      o.warmup = to_int(arg, value, 0);
    } else if (arg == "--threads" || arg == "--cpu_threads" || arg == "--num_threads") {
      o.threads = to_int(arg, value, 1);
    } else {
      throw std::invalid_argument("unknown option " + arg + "; valid: --inputs --outputs --runs --warmup --threads --json");
    }
  }
  if (o.model.empty()) throw std::invalid_argument(usage);
  return o;
}

// Takes FILE_FLAG (pte_runner's --etdump, tflite_runner's --profile) and --profile-runs (`--flag VALUE` or
// `--flag=VALUE`) out of argv into *path and *runs, and returns the rest for parse_args, walked as parse_args walks
// it (the word after any other --flag but --help is that flag's value). --profile-runs without FILE_FLAG is an error.
inline std::vector<char*> take_profile_options(int argc, char** argv, const std::string& file_flag, std::string* path,
                                               int* runs) {
  std::vector<char*> rest{argv[0]};
  bool runs_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool is_flag = arg.rfind("--", 0) == 0;
    const auto eq = arg.find('=');
    const std::string name = is_flag && eq != std::string::npos ? arg.substr(0, eq) : arg;
    if (name != file_flag && name != "--profile-runs") {
      rest.push_back(argv[i]);
      if (is_flag && eq == std::string::npos && arg != "--help" && i + 1 < argc) rest.push_back(argv[++i]);
      continue;
    }
    std::string value;
    if (eq != std::string::npos) value = arg.substr(eq + 1);
    else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) value = argv[++i];
    else throw std::invalid_argument(name + " needs a value");
    if (name == file_flag) {
      if (value.empty()) throw std::invalid_argument(file_flag + " needs a file path");
      *path = value;
    } else {
      *runs = to_int(name, value, 1);
      runs_given = true;
    }
  }
  if (runs_given && path->empty()) throw std::invalid_argument("--profile-runs needs " + file_flag + " FILE");
  return rest;
}

inline double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// This program's own peak resident memory. VmHWM where there is /proc (Linux, Android): ru_maxrss
// also counts the parent's RSS at fork, which Linux keeps across exec.
inline double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // kilobytes on Linux
}

// `text` as a JSON string's content.
inline std::string json_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += std::string("\\") + c;
    else if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

// The CPU as /proc/cpuinfo names it: x86's "model name", or an ARM core from its implementer and part numbers.
inline std::string cpu_model() {
  std::ifstream info("/proc/cpuinfo");
  std::string implementer, part, hardware;
  for (std::string line; std::getline(info, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1), value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    if (key == "model name") return value;
    if (key == "CPU implementer" && implementer.empty()) implementer = value;
    if (key == "CPU part" && part.empty()) part = value;
    if (key == "Hardware") hardware = value;
  }
  static const std::pair<const char*, const char*> arm[] = {
      {"0xd03", "Cortex-A53"}, {"0xd04", "Cortex-A35"}, {"0xd05", "Cortex-A55"}, {"0xd07", "Cortex-A57"},
      {"0xd08", "Cortex-A72"}, {"0xd09", "Cortex-A73"}, {"0xd0a", "Cortex-A75"}, {"0xd0b", "Cortex-A76"},
      {"0xd0c", "Neoverse-N1"}, {"0xd0d", "Cortex-A77"}, {"0xd41", "Cortex-A78"}, {"0xd44", "Cortex-X1"},
      {"0xd46", "Cortex-A510"}, {"0xd47", "Cortex-A710"}, {"0xd48", "Cortex-X2"}, {"0xd4d", "Cortex-A715"},
      {"0xd4e", "Cortex-X3"}, {"0xd80", "Cortex-A520"}, {"0xd81", "Cortex-A720"}, {"0xd82", "Cortex-X4"}};
  std::string name;
  if (implementer == "0x41")
    for (auto& [number, core] : arm)
      if (part == number) name = std::string("ARM ") + core;
  if (implementer == "0x46" && part == "0x001") name = "Fujitsu A64FX";
  if (name.empty() && !part.empty()) name = "implementer " + implementer + " part " + part;
  if (!hardware.empty()) name += (name.empty() ? "" : ", ") + hardware;
  return name.empty() ? "unknown" : name;
}

// The ISA features int8 speed depends on, as this process sees them (the kernel's HWCAPs on arm64: under QEMU,
// the emulated model's).
inline std::vector<std::string> int8_features() {
  std::vector<std::string> found;
#if defined(__aarch64__) && defined(__linux__)
  unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  if (hw & (1UL << 1)) found.push_back("asimd");
  if (hw & (1UL << 20)) found.push_back("asimddp");
  if (hw2 & (1UL << 13)) found.push_back("i8mm");
  if (hw & (1UL << 22)) found.push_back("sve");
  if (hw2 & (1UL << 1)) found.push_back("sve2");
  if (hw2 & (1UL << 23)) found.push_back("sme");
#elif defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) found.push_back("avx2");
  if (__builtin_cpu_supports("avx512f")) found.push_back("avx512f");
  if (__builtin_cpu_supports("avx512vnni")) found.push_back("avx512_vnni");
#if __GNUC__ >= 11 || defined(__clang__)
  if (__builtin_cpu_supports("avxvnni")) found.push_back("avxvnni");
#endif
#endif
  return found;
}

// The ISA features of fp16 arithmetic (ARMv8.2 FEAT_FP16; AVX512-FP16): without them XNNPACK's fp16 kernels convert to
// fp32 for every op.
inline std::vector<std::string> fp16_features() {
  std::vector<std::string> found;
#if defined(__aarch64__) && defined(__linux__)
  if (getauxval(AT_HWCAP) & (1UL << 10)) found.push_back("asimdhp");
#elif defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 12 || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512fp16")) found.push_back("avx512_fp16");
#endif
  return found;
}

inline void json_list(std::ostringstream& j, const std::vector<std::string>& items) {
  j << "[";
  for (size_t i = 0; i < items.size(); ++i) j << (i ? ", " : "") << '"' << items[i] << '"';
  j << "]";
}

// The machine the runner ran on, as the stats JSON's "device" object: architecture, CPU model, online cores, the
// int8 and fp16 ISA features and the load average when it started (a busy device times slower).
inline std::string device_json() {
  struct utsname u {};
  uname(&u);
  double load[3] = {-1, -1, -1};
  getloadavg(load, 3);
  std::ostringstream j;
  j << "{\"machine\": \"" << json_escape(u.machine) << "\", \"system\": \"" << json_escape(u.sysname) << " "
    << json_escape(u.release) << "\", \"cpu_model\": \"" << json_escape(cpu_model())
    << "\", \"cores\": " << sysconf(_SC_NPROCESSORS_ONLN) << ", \"int8_features\": ";
  json_list(j, int8_features());
  j << ", \"fp16_features\": ";
  json_list(j, fp16_features());
  j << ", \"load_average\": [" << load[0] << ", " << load[1] << ", " << load[2] << "]}";
  return j.str();
}

#ifndef SE_EDGE_RUNTIME_VERSION
#define SE_EDGE_RUNTIME_VERSION "unknown"
#endif

// The model's file name as a JSON string's content.
inline std::string json_name(const std::string& model) {
  return json_escape(model.substr(model.find_last_of('/') + 1));
}

// `text` to stdout, or atomically to `path`.
inline void write_stats(const std::string& path, const std::string& text) {
  if (path.empty()) {
    std::cout << text;
    return;
  }
  std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot write " + path);
}

}  // namespace runner_cli
