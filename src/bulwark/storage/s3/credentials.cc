#include "bulwark/storage/s3/credentials.h"

#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/base/sys.h"

namespace bulwark::storage::s3 {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\f' || c == '\v'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

[[noreturn]] void Malformed(std::string_view file_name, size_t line, std::string_view what) {
  throw Error(ErrorCode::kInvalidArgument,
              std::string(file_name) + ":" + std::to_string(line) + ": " + std::string(what));
}

// An environment variable, empty treated as unset.
std::optional<std::string> EnvValue(const EnvLookup& env, const std::string& name) {
  std::optional<std::string> v = env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

std::string HomeDirectory(const EnvLookup& env) {
  if (auto home = EnvValue(env, "HOME")) return *home;
  // Like Python's os.path.expanduser: the password database when HOME is unset.
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* result = nullptr;
  if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &result) == 0 && result && result->pw_dir)
    return result->pw_dir;
  throw Error(ErrorCode::kNotFound, "cannot find the home directory for ~/.aws: HOME is not set");
}

// AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE, with a leading "~/" expanded
// as botocore does; else ~/.aws/<default_name>.
std::string AwsFilePath(const EnvLookup& env, const std::string& variable, const std::string& default_name) {
  if (auto p = EnvValue(env, variable)) {
    if (*p == "~" || p->starts_with("~/")) return HomeDirectory(env) + p->substr(1);
    return *p;
  }
  return HomeDirectory(env) + "/.aws/" + default_name;
}

// A parsed AWS file, or nullopt when it does not exist.
std::optional<IniFile> LoadIni(const std::string& path) {
  std::string text;
  try {
    text = sys::ReadFile(path);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) return std::nullopt;
    throw;
  }
  return ParseAwsIni(text, path);
}

// The config-file section of `profile`: "[profile NAME]", or for "default"
// also "[default]" ("[profile default]" wins when both exist).
const std::map<std::string, std::string>* ConfigProfile(const IniFile& config, const std::string& profile) {
  const std::map<std::string, std::string>* bare_default = nullptr;
  for (const auto& [name, keys] : config.sections) {
    std::optional<std::string> p = ConfigSectionProfile(name);
    if (!p || *p != profile) continue;
    if (name == "default") {
      bare_default = &keys;
      continue;
    }
    return &keys;
  }
  return bare_default;
}

std::optional<std::string> ValueOf(const std::map<std::string, std::string>* section, const std::string& key) {
  if (!section) return std::nullopt;
  auto it = section->find(key);
  if (it == section->end() || it->second.empty()) return std::nullopt;
  return it->second;
}

std::string Describe(const std::string& path, const std::string& profile) {
  return path + " [profile " + profile + "]";
}

// Static keys in one profile section, or nullopt if it has neither key.
std::optional<Credentials> StaticKeys(const std::map<std::string, std::string>* section, const std::string& path,
                                      const std::string& profile) {
  auto id = ValueOf(section, "aws_access_key_id");
  auto secret = ValueOf(section, "aws_secret_access_key");
  if (!id && !secret) return std::nullopt;
  if (!id || !secret)
    throw Error(ErrorCode::kInvalidArgument, Describe(path, profile) + ": has " +
                                                 (id ? "aws_access_key_id but no aws_secret_access_key"
                                                     : "aws_secret_access_key but no aws_access_key_id"));
  Credentials c;
  c.access_key_id = *id;
  c.secret_access_key = *secret;
  c.session_token = ValueOf(section, "aws_session_token").value_or("");
  c.source = Describe(path, profile);
  return c;
}

// Rejects a profile whose credentials the AWS CLI would get from a flow we
// do not implement. `keys` lists the settings that select such a flow.
void RejectUnsupported(const std::map<std::string, std::string>* section, const std::string& path,
                       const std::string& profile, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (!ValueOf(section, key)) continue;
    throw Error(ErrorCode::kInvalidArgument,
                Describe(path, profile) + ": gets its credentials through '" + key +
                    "', which bulwark does not support; use a profile with aws_access_key_id and "
                    "aws_secret_access_key, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
}

std::string ProfileName(const std::string& profile, const EnvLookup& env) {
  if (!profile.empty()) return profile;
  return EnvValue(env, "AWS_PROFILE").value_or("default");
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = ::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::optional<std::string> IniFile::Get(const std::string& section, const std::string& key) const {
  auto it = sections.find(section);
  return ValueOf(it == sections.end() ? nullptr : &it->second, key);
}

IniFile ParseAwsIni(std::string_view text, std::string_view file_name) {
  IniFile ini;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  std::map<std::string, std::string>* section = nullptr;
  std::string* value = nullptr;  // the last key's value, for continuation lines
  // Line of each key's first occurrence, per section, to name both lines of a
  // repeated key.
  std::map<std::pair<const void*, std::string>, size_t> key_lines;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t end = text.find('\n');
    std::string_view raw = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (raw.ends_with('\r')) raw.remove_suffix(1);
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (IsBlank(raw.front()) && value) {  // continuation of the previous value
      value->append("\n").append(line);
      continue;
    }
    if (line.front() == '[') {
      size_t close = line.rfind(']');
      if (close == std::string_view::npos) Malformed(file_name, line_no, "section header without a closing ']'");
      std::string_view name = Trim(line.substr(1, close - 1));
      if (name.empty()) Malformed(file_name, line_no, "empty section name");
      section = &ini.sections[std::string(name)];
      value = nullptr;
      continue;
    }
    size_t split = line.find_first_of("=:");
    if (split == std::string_view::npos)
      Malformed(file_name, line_no, "expected '[section]', 'key = value' or a comment");
    std::string key = Lower(Trim(line.substr(0, split)));
    if (key.empty()) Malformed(file_name, line_no, "a value without a key");
    if (!section) Malformed(file_name, line_no, "a setting before the first [section]");
    auto [pos, inserted] = key_lines.emplace(std::make_pair(static_cast<const void*>(section), key), line_no);
    if (!inserted)
      Malformed(file_name, line_no,
                "a key repeated in its section (first set on line " + std::to_string(pos->second) + ")");
    value = &(*section)[key];
    *value = std::string(Trim(line.substr(split + 1)));
  }
  return ini;
}

std::optional<std::string> ConfigSectionProfile(std::string_view section) {
  if (section == "default") return std::string(section);
  if (!section.starts_with("profile") || section.size() == 7 || !IsBlank(section[7])) return std::nullopt;
  std::string_view name = Trim(section.substr(7));
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
  if (name.empty()) return std::nullopt;
  return std::string(name);
}

Credentials LoadCredentials(const std::string& profile) { return LoadCredentials(profile, ProcessEnvironment()); }

Credentials LoadCredentials(const std::string& profile_arg, const EnvLookup& env) {
  std::vector<std::string> tried;
  if (profile_arg.empty()) {
    auto id = EnvValue(env, "AWS_ACCESS_KEY_ID");
    auto secret = EnvValue(env, "AWS_SECRET_ACCESS_KEY");
    if (id && secret) {
      Credentials c;
      c.access_key_id = *id;
      c.secret_access_key = *secret;
      c.session_token = EnvValue(env, "AWS_SESSION_TOKEN").value_or("");
      c.source = "environment";
      return c;
    }
    if (id || secret)
      throw Error(ErrorCode::kInvalidArgument,
                  std::string(id ? "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
                                 : "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"));
    tried.push_back("environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set");
  } else {
    tried.push_back("environment: not consulted, a profile was named");
  }

  const std::string profile = ProfileName(profile_arg, env);
  AwsFile creds{AwsFilePath(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"), std::nullopt};
  AwsFile config{AwsFilePath(env, "AWS_CONFIG_FILE", "config"), std::nullopt};
  creds.ini = LoadIni(creds.path);
  config.ini = LoadIni(config.path);
  return CredentialsFromFiles(profile, creds, config, tried);
}

Credentials CredentialsFromFiles(const std::string& profile, const AwsFile& creds, const AwsFile& config,
                                 const std::vector<std::string>& tried_before) {
  const std::map<std::string, std::string>* creds_section = nullptr;
  if (creds.ini) {
    auto it = creds.ini->sections.find(profile);
    if (it != creds.ini->sections.end()) creds_section = &it->second;
  }
  const std::map<std::string, std::string>* config_section = config.ini ? ConfigProfile(*config.ini, profile) : nullptr;

  // Flows the AWS CLI tries before the credentials file (botocore merges the
  // credentials file's profiles into the config's for them).
  const auto kBeforeStaticKeys = {"role_arn", "web_identity_token_file", "sso_session", "sso_start_url"};
  RejectUnsupported(creds_section, creds.path, profile, kBeforeStaticKeys);
  RejectUnsupported(config_section, config.path, profile, kBeforeStaticKeys);
  if (auto c = StaticKeys(creds_section, creds.path, profile)) return *c;
  RejectUnsupported(creds_section, creds.path, profile, {"credential_process"});
  RejectUnsupported(config_section, config.path, profile, {"credential_process"});
  if (auto c = StaticKeys(config_section, config.path, profile)) return *c;

  auto describe = [&](const AwsFile& file, bool has_section) {
    if (!file.ini) return file.path + ": no such file";
    if (!has_section) return file.path + ": no section for profile '" + profile + "'";
    return file.path + ": profile '" + profile + "' has no aws_access_key_id";
  };
  std::vector<std::string> tried = tried_before;
  tried.push_back(describe(creds, creds_section != nullptr));
  tried.push_back(describe(config, config_section != nullptr));
  std::string message = "no AWS credentials for profile '" + profile + "' (";
  for (size_t i = 0; i < tried.size(); ++i) message += (i ? "; " : "") + tried[i];
  throw Error(ErrorCode::kNotFound, message + ")");
}

std::string ResolveRegion(const std::string& profile) { return ResolveRegion(profile, ProcessEnvironment()); }

std::string ResolveRegion(const std::string& profile_arg, const EnvLookup& env) {
  if (auto r = EnvValue(env, "AWS_REGION")) return *r;
  if (auto r = EnvValue(env, "AWS_DEFAULT_REGION")) return *r;
  const std::string config_path = AwsFilePath(env, "AWS_CONFIG_FILE", "config");
  if (std::optional<IniFile> config = LoadIni(config_path)) {
    if (auto r = ValueOf(ConfigProfile(*config, ProfileName(profile_arg, env)), "region")) return *r;
  }
  return "us-east-1";
}

}  // namespace bulwark::storage::s3
