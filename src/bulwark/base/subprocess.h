// Child processes whose output bulwark reads or whose input it writes
// (pg_dump, pg_restore, a source's command): posix_spawnp with pipes, the
// child's stderr captured (the last 8 KiB kept for error messages), waited
// for and killed on destruction.
//
// Thread-safety: one Subprocess is used by one thread at a time; the
// stderr reader is an internal thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace bulwark {

struct SpawnOptions {
  bool pipe_stdin = false;   // else /dev/null
  bool pipe_stdout = false;  // else inherited
  // Else inherited. Captured stderr is kept (last 8 KiB, StderrTail) and,
  // when `forward_stderr`, also written line by line to our log (warn).
  bool capture_stderr = true;
  bool forward_stderr = false;
  // The child's stdout goes where its stderr goes (a hook's output is kept
  // for its error message and never mixes with our --json stdout). Ignored
  // with pipe_stdout.
  bool stdout_to_stderr = false;
  // The child leads a new process group, and Kill signals the whole group:
  // a hook run through a shell (`sh -c "..."`) is killed with the commands it
  // started, which would otherwise keep running and hold the stderr pipe open
  // (Wait would then block until they end).
  bool own_process_group = false;
  std::string cwd;  // "" = ours
};

class Subprocess {
 public:
  // Starts `argv` (argv[0] looked up in PATH unless it has a '/'). Throws
  // Error(kSourceFailed) "cannot start 'PROGRAM': <strerror>".
  Subprocess(const std::vector<std::string>& argv, const SpawnOptions& options);
  // Closes the pipes; a child not yet waited for gets SIGTERM and is reaped.
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  int stdin_fd() const { return in_; }    // -1 unless pipe_stdin
  int stdout_fd() const { return out_; }  // -1 unless pipe_stdout
  void CloseStdin();                      // EOF for the child
  // Waits for the child (closing our ends of its stdin and stdout first) and
  // the stderr reader; returns the wait status. Idempotent.
  int Wait();
  // Waits up to `timeout_seconds` (polling every 10 ms); returns the wait
  // status, or nullopt if the child still runs then (it is left running:
  // Kill it, then Wait).
  std::optional<int> WaitFor(double timeout_seconds);
  // Sends `signal` to the child (with own_process_group: to its process
  // group) unless it was already reaped.
  void Kill(int signal);
  // "exited with status 1" / "was killed by signal 9" for a wait status.
  static std::string Describe(int status);
  static bool Succeeded(int status);
  // The last lines of the child's stderr (up to 8 KiB), trailing newline
  // removed; "" when not captured.
  std::string StderrTail() const;
  // Waits; throws Error(kSourceFailed) "PROGRAM exited with status N: <stderr
  // tail>" unless the child exited with 0.
  void WaitOrThrow();
  const std::string& program() const { return program_; }

 private:
  std::string program_;
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  bool reaped_ = false;
  bool own_group_ = false;
  int status_ = 0;
  mutable std::mutex mu_;
  std::string tail_;
  std::thread reader_;
};

}  // namespace bulwark
