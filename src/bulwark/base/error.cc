#include "bulwark/base/error.h"

#include <cstring>
#include <string>

namespace bulwark {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kAlreadyExists: return "already_exists";
    case ErrorCode::kCorrupt: return "corrupt";
    case ErrorCode::kWrongPassword: return "wrong_password";
    case ErrorCode::kIo: return "io";
    case ErrorCode::kNoSpace: return "no_space";
    case ErrorCode::kPermission: return "permission";
    case ErrorCode::kLocked: return "locked";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kSourceFailed: return "source_failed";
    case ErrorCode::kNoRepository: return "no_repository";
    case ErrorCode::kCancelled: return "cancelled";
  }
  return "unknown";
}

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 2;
    case ErrorCode::kCorrupt: return 4;
    case ErrorCode::kNoRepository: return 10;
    case ErrorCode::kLocked: return 11;
    case ErrorCode::kWrongPassword: return 12;
    case ErrorCode::kCancelled: return 130;
    default: return 1;
  }
}

Error Error::WithContext(std::string_view context) const {
  return Error(code_, std::string(context) + ": " + what());
}

Error ErrnoError(std::string_view what, std::string_view path, int err) {
  ErrorCode code = ErrorCode::kIo;
  if (err == ENOSPC || err == EDQUOT) code = ErrorCode::kNoSpace;
  else if (err == EACCES || err == EPERM) code = ErrorCode::kPermission;
  else if (err == ENOENT) code = ErrorCode::kNotFound;
  std::string msg(what);
  if (!path.empty()) msg += ": " + std::string(path);
  msg += ": ";
  msg += std::strerror(err);
  return Error(code, std::move(msg));
}

}  // namespace bulwark
