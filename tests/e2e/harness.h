// End-to-end test harness: runs the real `bulwark` binary as a subprocess in a
// temporary directory, with the password in a file (never argv).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bulwark::testing {

struct RunResult {
  int exit_code = -1;  // -signal if killed
  std::string out, err;
  nlohmann::json Json() const;  // parses the last non-empty stdout line
  // The last stdout line (--json) whose message_type is `type`; null if none.
  nlohmann::json JsonLine(const std::string& type) const;
};

// Runs argv (argv[0] resolved via PATH unless absolute), feeding `input` on
// stdin, with extra environment `env` ("K=V"). Waits for exit.
RunResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              const std::string& input = "");

// Starts argv in the background like Run (environment: the test's without
// BULWARK_*, plus `env`), with stdin, stdout and stderr on /dev/null; returns
// its pid, which the caller must reap (waitpid).
int StartBackground(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});

// Polls `cond` every `poll_ms` milliseconds until it holds (true) or
// `seconds` have passed (false): tests wait for events, never a fixed time.
bool WaitFor(const std::function<bool()>& cond, int seconds, int poll_ms = 20);

// A scratch directory with a password file and a repository path, removed at
// destruction (read-only directories made writable first).
class Scratch {
 public:
  Scratch();
  ~Scratch();
  const std::string& dir() const { return dir_; }
  std::string repo() const { return dir_ + "/repo"; }
  std::string Path(const std::string& rel) const { return dir_ + "/" + rel; }
  // BULWARK_PASSWORD_FILE=<dir>/password, BULWARK_CACHE_DIR=<dir>/cache (so
  // tests never write the user's ~/.cache).
  std::vector<std::string> Env() const;
  std::string CacheDir() const { return dir_ + "/cache"; }
  // Runs `bulwark --repo <repo> args...`.
  RunResult Bw(std::vector<std::string> args, const std::string& input = "") const;
  // The start of a bulwark.yaml naming this scratch repository ("main", the
  // default) and its password file; append "sources:\n..." to it.
  std::string ConfigPrelude() const;
  // Runs `bulwark --config <config> args...` without --repo or password
  // environment: the configuration file names both (BULWARK_CACHE_DIR is
  // this scratch's).
  RunResult BwConfig(const std::string& config, std::vector<std::string> args) const;
  // init with cheap KDF parameters (tests only).
  void Init() const;

 private:
  std::string dir_;
};

std::string BulwarkBin();
// True when the environment variable CI is set (and not "false" or "0"):
// test servers that cannot be installed are then failures, not skips.
bool InCi();
// `s` without trailing newlines/spaces and leading spaces.
std::string Trim(std::string s);
std::string WriteFile(const std::string& path, const std::string& content);
std::string ReadFileOrDie(const std::string& path);
// The file's content, or `fallback` if it cannot be read.
std::string ReadFileOr(const std::string& path, const std::string& fallback);
// The last stdout line of `r` that is a JSON object with this message_type
// (e.g. "storage_requests", "summary"); null if there is none.
nlohmann::json JsonLine(const RunResult& r, const std::string& message_type);

// Runs `bulwark --config <config> args...` with no BULWARK_* environment:
// repositories and passwords come from the configuration file.
RunResult BwConfig(const std::string& config, std::vector<std::string> args);
// One entry of a bulwark.yaml `repositories:` map (indented for it).
std::string YamlRepository(const std::string& name, const std::string& url, const std::string& password_file);

// `n` pseudo-random (incompressible) bytes, the same for the same seed.
std::string RandomBytes(size_t n, uint64_t seed);
// Expects (gtest) that the trees at `a` and `b` are identical (CompareTrees)
// and hold at least one file; prints the first differences.
void ExpectIdentical(const std::string& a, const std::string& b);
// Flips one byte in the middle (plus `offset_from_middle`) of an object file.
void Corrupt(const std::string& path, long offset_from_middle = 0);
// The object files below `dir` (e.g. <repo>/data), sorted; writers' temp
// files (".tmp-...") are not objects until renamed into place.
std::vector<std::string> Objects(const std::string& dir);
// The largest object file below `dir` ("" if none): in a repository's data/,
// the pack holding a big file's chunks.
std::string LargestObject(const std::string& dir);

}  // namespace bulwark::testing
