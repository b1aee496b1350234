// End-to-end test harness: runs the real `bulwark` binary as a subprocess in a
// temporary directory, with the password in a file (never argv).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bulwark::testing {

struct RunResult {
  int exit_code = -1;  // -signal if killed
  std::string out, err;
  nlohmann::json Json() const;  // parses the last non-empty stdout line
};

// Runs argv (argv[0] resolved via PATH unless absolute), feeding `input` on
// stdin, with extra environment `env` ("K=V"). Waits for exit.
RunResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              const std::string& input = "");

// A scratch directory with a password file and a repository path, removed at
// destruction (read-only directories made writable first).
class Scratch {
 public:
  Scratch();
  ~Scratch();
  const std::string& dir() const { return dir_; }
  std::string repo() const { return dir_ + "/repo"; }
  std::string Path(const std::string& rel) const { return dir_ + "/" + rel; }
  std::vector<std::string> Env() const;  // BULWARK_PASSWORD_FILE=...
  // Runs `bulwark --repo <repo> args...`.
  RunResult Bw(std::vector<std::string> args, const std::string& input = "") const;
  // The start of a bulwark.yaml naming this scratch repository ("main", the
  // default) and its password file; append "sources:\n..." to it.
  std::string ConfigPrelude() const;
  // Runs `bulwark --config <config> args...` without --repo or password
  // environment: the configuration file names both.
  RunResult BwConfig(const std::string& config, std::vector<std::string> args) const;
  // init with cheap KDF parameters (tests only).
  void Init() const;

 private:
  std::string dir_;
};

std::string BulwarkBin();
std::string WriteFile(const std::string& path, const std::string& content);
std::string ReadFileOrDie(const std::string& path);

}  // namespace bulwark::testing
