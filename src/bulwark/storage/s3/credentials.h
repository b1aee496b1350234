// AWS credentials and region for the S3 backend, found the way the AWS CLI
// and SDKs find them, and the parser of the AWS shared config/credentials
// files (an INI dialect).
//
// Supported sources, in this order (botocore's credential chain, restricted
// to static keys):
//   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) from the
//      environment, unless a profile was named explicitly (the `profile`
//      argument): as in the AWS CLI, `--profile x` ignores environment keys,
//      while AWS_PROFILE does not.
//   2. The shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
//      ~/.aws/credentials), section "[NAME]".
//   3. The config file (AWS_CONFIG_FILE, else ~/.aws/config), section
//      "[profile NAME]" ("[default]" also names the default profile).
// Keys read: aws_access_key_id, aws_secret_access_key, aws_session_token
// (region: `region`). Profiles that get credentials some other way (role_arn,
// web_identity_token_file, sso_*, credential_process) are rejected with an
// error saying so: the AWS CLI would use another identity than the static
// keys bulwark could find, and bulwark implements none of those flows.
// Instance metadata (IMDS) and container credentials are not consulted.
//
// Error messages name files, line numbers and profiles, never a key value, a
// secret or a session token, and never echo a line of a file (a malformed
// line may hold a secret).
//
// Thread-safety: all functions are safe to call concurrently, provided no
// thread modifies the environment meanwhile (getenv).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::storage::s3 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty: long-term keys, no x-amz-security-token
  // Where they came from, for messages: "environment",
  // "/root/.aws/credentials [profile default]". Never the secret.
  std::string source;
};

// Looks up an environment variable; nullopt when unset. An empty value is
// treated like an unset one by everything here, as botocore does.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
// The process environment (getenv).
EnvLookup ProcessEnvironment();

// Finds credentials for `profile` ("" = AWS_PROFILE, else "default") as
// described above. Throws Error:
//   kNotFound         no source has credentials; the message lists what was
//                     tried (environment, each file and whether it exists,
//                     the profile).
//   kInvalidArgument  a half-configured source (an access key without a
//                     secret, in the environment or a profile), a profile
//                     that needs an unsupported flow, or a malformed file
//                     ("path:line: ...").
//   kPermission/kIo   a file exists but cannot be read.
Credentials LoadCredentials(const std::string& profile = "");
Credentials LoadCredentials(const std::string& profile, const EnvLookup& env);

// The region: AWS_REGION, AWS_DEFAULT_REGION, the profile's `region` in the
// config file, else "us-east-1". A missing config file is not an error; a
// malformed one is (kInvalidArgument, "path:line: ...").
std::string ResolveRegion(const std::string& profile = "");
std::string ResolveRegion(const std::string& profile, const EnvLookup& env);

// ---------------------------------------------------------------------------
// The INI dialect of ~/.aws/config and ~/.aws/credentials, as botocore reads
// it (Python configparser with its defaults):
//   - "[name]" starts a section; whitespace around the name is trimmed and
//     text after the closing ']' is ignored. A section repeated later in the
//     file continues the earlier one.
//   - "key = value" or "key: value" (the first '=' or ':' splits); keys are
//     trimmed and lower-cased, values trimmed. A key repeated within a
//     section is an error.
//   - Lines whose first non-blank character is '#' or ';' are comments; there
//     are no inline comments ("a = b # c" has the value "b # c").
//   - An indented line after a key continues that key's value (appended after
//     a '\n'), which is how nested settings ("s3 =\n  max_concurrent_requests
//     = 10") are written; bulwark reads no nested setting.
//   - Blank lines are ignored; "\r\n" line ends and a UTF-8 BOM are accepted.
struct IniFile {
  // section name -> key -> value
  std::map<std::string, std::map<std::string, std::string>> sections;

  // The section's value for `key`, or nullopt if the section or key is
  // missing or the value is empty.
  std::optional<std::string> Get(const std::string& section, const std::string& key) const;
};

// Parses `text`; throws Error(kInvalidArgument, "<file_name>:<line>: ...")
// on a malformed line. Messages never contain bytes of `text`.
IniFile ParseAwsIni(std::string_view text, std::string_view file_name);

// The profile a config-file section names: "profile NAME" -> NAME (NAME may
// be double-quoted), "default" -> "default"; nullopt for other sections
// ("sso-session x", "services y", "profilex"). Credentials-file sections name
// profiles directly and need no mapping.
std::optional<std::string> ConfigSectionProfile(std::string_view section);

// One AWS shared file as read: its path (for messages and `source`) and its
// parsed content, or nullopt if the file does not exist.
struct AwsFile {
  std::string path;
  std::optional<IniFile> ini;
};

// Steps 2 and 3 of the resolution above for `profile` (a resolved name, not
// ""), from files already read; LoadCredentials is the environment plus this.
// Throws as LoadCredentials does; a kNotFound message starts "no AWS
// credentials for profile 'NAME' (" and lists `tried_before` first.
Credentials CredentialsFromFiles(const std::string& profile, const AwsFile& credentials, const AwsFile& config,
                                 const std::vector<std::string>& tried_before = {});

}  // namespace bulwark::storage::s3
