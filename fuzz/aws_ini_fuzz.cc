// Fuzzes the AWS shared config/credentials file parser and the profile
// resolution over it: any input must either parse or throw
// bulwark::Error(kInvalidArgument) with a "file:line: " message; resolution
// must return complete credentials or throw kInvalidArgument / kNotFound; and
// no message may ever contain a value from the files (the seeds put the marker
// "s3cr3t" in secrets and tokens, so a message echoing one is caught).
//
// Input: the credentials file, a NUL byte, the config file; the first byte
// chooses the profile.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bulwark/base/error.h"
#include "bulwark/storage/s3/credentials.h"

namespace {

using bulwark::Error;
using bulwark::ErrorCode;
namespace s3 = bulwark::storage::s3;

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\f' || c == '\v'; }

// Parses `text`, checking the parser's invariants; nullopt if it is malformed.
std::optional<s3::IniFile> Parse(std::string_view text, const char* name) {
  try {
    s3::IniFile ini = s3::ParseAwsIni(text, name);
    for (const auto& [section, keys] : ini.sections) {
      if (section.empty() || IsBlank(section.front()) || IsBlank(section.back())) __builtin_trap();
      if (auto p = s3::ConfigSectionProfile(section); p && p->empty()) __builtin_trap();
      for (const auto& [key, value] : keys) {
        if (key.empty() || IsBlank(key.front()) || IsBlank(key.back())) __builtin_trap();
        if (key.find_first_of("=:\n") != std::string::npos) __builtin_trap();
        for (char c : key)
          if (c >= 'A' && c <= 'Z') __builtin_trap();
        if (!value.empty() && (IsBlank(value.front()) || IsBlank(value.back()))) __builtin_trap();
        if (ini.Get(section, key).value_or("") != value) __builtin_trap();
      }
    }
    return ini;
  } catch (const Error& e) {
    const std::string_view msg = e.what();
    if (e.code() != ErrorCode::kInvalidArgument) __builtin_trap();
    if (!msg.starts_with(std::string(name) + ":")) __builtin_trap();
    if (msg.find("s3cr3t") != std::string_view::npos) __builtin_trap();
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* const kProfiles[] = {"default", "a", "b", "profile a", "two words"};
  const std::string profile = kProfiles[data[0] % 5];
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t nul = input.find('\0');
  const std::string_view creds_text = input.substr(0, nul);
  const std::string_view config_text = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);

  s3::AwsFile creds{"credentials", Parse(creds_text, "credentials")};
  s3::AwsFile config{"config", Parse(config_text, "config")};
  try {
    const s3::Credentials c = s3::CredentialsFromFiles(profile, creds, config);
    if (c.access_key_id.empty() || c.secret_access_key.empty()) __builtin_trap();
    if (c.source != "credentials [profile " + profile + "]" && c.source != "config [profile " + profile + "]")
      __builtin_trap();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument && e.code() != ErrorCode::kNotFound) __builtin_trap();
    if (std::string_view(e.what()).find("s3cr3t") != std::string_view::npos) __builtin_trap();
  }
  return 0;
}
