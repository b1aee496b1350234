// Errors: one exception type carrying a stable code, a message with a context
// chain, and the exit code the CLI maps it to.
//
// Why exceptions and not Result<T>: every failure in bulwark aborts the
// operation in progress (a backup, a restore, a check step); RAII objects
// (temp files, locks, child processes) clean up on unwind. Code that wants to
// continue after a failure (a file that vanished mid-backup, a damaged blob in
// a restore) catches `Error` at that point and records it. Library exceptions
// (yaml-cpp, nlohmann-json, std::system_error) are caught in their adapter and
// re-thrown as `Error`, so callers see one type.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bulwark {

// Stable error codes. Their numeric values never change: they appear in JSON
// output (`"code": "wrong_password"`) and map to exit codes (docs in README).
enum class ErrorCode {
  kInternal = 1,         // a bug
  kInvalidArgument = 2,  // bad flag, bad config, unparsable id -> exit 2
  kNotFound = 3,         // object, snapshot, path missing
  kAlreadyExists = 4,    // init on an existing repository, non-empty target
  kCorrupt = 5,          // authentication failed, bad magic, truncated object
  kWrongPassword = 6,    // no key slot opens with this password -> exit 12
  kIo = 7,               // an OS call failed (errno in message)
  kNoSpace = 8,          // ENOSPC / EDQUOT
  kPermission = 9,       // EACCES / EPERM
  kLocked = 10,          // the repository is locked by someone else -> exit 11
  kUnsupported = 11,     // a format version or feature we do not know
  kSourceFailed = 12,    // a producer (command, dump) failed -> exit 1
  kNoRepository = 13,    // no repository at that location -> exit 10
  kCancelled = 14,       // interrupted by a signal
};

// Returns the snake_case name used in JSON ("wrong_password").
std::string_view ErrorCodeName(ErrorCode code);

// The process exit code for an error (documented in README "Exit codes").
int ExitCodeFor(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message)
      : std::runtime_error(std::move(message)), code_(code) {}
  ErrorCode code() const { return code_; }

  // Returns a copy whose message is "context: original message".
  Error WithContext(std::string_view context) const;

 private:
  ErrorCode code_;
};

// Builds an Error from errno: ENOSPC/EDQUOT -> kNoSpace, EACCES/EPERM ->
// kPermission, ENOENT -> kNotFound, else kIo. Message: "what: path: strerror".
Error ErrnoError(std::string_view what, std::string_view path, int err = errno);

// Runs `fn`; if it throws Error, rethrows it with `context` prepended.
template <typename Fn>
auto WithContext(std::string_view context, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    throw e.WithContext(context);
  }
}

}  // namespace bulwark
