// What both native runners (pte_runner, tflite_runner) share with se_edge/runner.py: the command line, the
// clock, peak memory and writing the statistics. The runners differ only in the runtime they drive.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>

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

// The model's file name as a JSON string's content.
inline std::string json_name(const std::string& model) {
  std::string name = model.substr(model.find_last_of('/') + 1), escaped;
  for (char c : name) escaped += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return escaped;
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
