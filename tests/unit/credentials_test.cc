// Tests for src/bulwark/storage/s3/credentials.h: the AWS shared-file parser
// and credential/region resolution, with temporary files and an injected
// environment (plus one test of the process environment).
#include "bulwark/storage/s3/credentials.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "bulwark/base/error.h"
#include "test_util.h"

namespace bulwark::storage::s3 {
namespace {

// A marker no message may contain (unlike "SECRET", part of AWS_SECRET_ACCESS_KEY).
constexpr char kSecret[] = "s3cr3tMarker/K7MDENG+bPxRfiCYEXAMPLEKEY";

class CredentialsTest : public ::testing::Test {
 protected:
  CredentialsTest() { env_["HOME"] = home_.path(); }

  EnvLookup Env() const {
    return [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
  }
  void Write(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << text;
  }
  std::string CredsPath() const { return home_.path() + "/.aws/credentials"; }
  std::string ConfigPath() const { return home_.path() + "/.aws/config"; }
  void WriteCreds(const std::string& text) { Write(CredsPath(), text); }
  void WriteConfig(const std::string& text) { Write(ConfigPath(), text); }

  // The error LoadCredentials throws; checks it never shows the secret.
  Error LoadError(const std::string& profile = "") {
    try {
      LoadCredentials(profile, Env());
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find("s3cr3tMarker"), std::string::npos) << e.what();
      return e;
    }
    ADD_FAILURE() << "LoadCredentials did not throw";
    return Error(ErrorCode::kInternal, "");
  }

  TempDir home_;
  std::map<std::string, std::string> env_;
};

TEST_F(CredentialsTest, EnvironmentKeys) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  env_["AWS_SECRET_ACCESS_KEY"] = kSecret;
  Credentials c = LoadCredentials("", Env());
  EXPECT_EQ(c.access_key_id, "AKIDENV");
  EXPECT_EQ(c.secret_access_key, kSecret);
  EXPECT_EQ(c.session_token, "");
  EXPECT_EQ(c.source, "environment");
  env_["AWS_SESSION_TOKEN"] = "TOKEN";
  EXPECT_EQ(LoadCredentials("", Env()).session_token, "TOKEN");
}

TEST_F(CredentialsTest, EnvironmentBeatsFilesAndAwsProfileButNotANamedProfile) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  env_["AWS_SECRET_ACCESS_KEY"] = kSecret;
  WriteCreds(
      "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n"
      "[work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = s2\n");
  EXPECT_EQ(LoadCredentials("", Env()).access_key_id, "AKIDENV");
  env_["AWS_PROFILE"] = "work";  // as in the AWS CLI: environment keys still win
  EXPECT_EQ(LoadCredentials("", Env()).access_key_id, "AKIDENV");
  // An explicitly named profile (like `aws --profile work`) ignores them.
  Credentials c = LoadCredentials("work", Env());
  EXPECT_EQ(c.access_key_id, "AKIDWORK");
  EXPECT_EQ(c.source, CredsPath() + " [profile work]");
}

TEST_F(CredentialsTest, HalfSetEnvironmentIsAnError) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  Error e = LoadError();
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(e.what()).find("AWS_SECRET_ACCESS_KEY is not"), std::string::npos) << e.what();
  env_.erase("AWS_ACCESS_KEY_ID");
  env_["AWS_SECRET_ACCESS_KEY"] = kSecret;
  EXPECT_EQ(LoadError().code(), ErrorCode::kInvalidArgument);
  env_["AWS_ACCESS_KEY_ID"] = "";  // empty counts as unset
  EXPECT_EQ(LoadError().code(), ErrorCode::kInvalidArgument);
}

TEST_F(CredentialsTest, CredentialsFileDefaultProfile) {
  WriteCreds("# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = " + std::string(kSecret) +
             "\naws_session_token = TOKEN\n");
  Credentials c = LoadCredentials("", Env());
  EXPECT_EQ(c.access_key_id, "AKIDDEFAULT");
  EXPECT_EQ(c.secret_access_key, kSecret);
  EXPECT_EQ(c.session_token, "TOKEN");
  EXPECT_EQ(c.source, CredsPath() + " [profile default]");
}

TEST_F(CredentialsTest, AwsProfileSelectsTheProfile) {
  WriteCreds(
      "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n"
      "[work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = s2\n");
  env_["AWS_PROFILE"] = "work";
  EXPECT_EQ(LoadCredentials("", Env()).access_key_id, "AKIDWORK");
  EXPECT_EQ(LoadCredentials("default", Env()).access_key_id, "AKIDDEFAULT");
}

TEST_F(CredentialsTest, ConfigFileUsesProfilePrefixCredentialsFileDoesNot) {
  WriteConfig(
      "[profile backup]\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = s\nregion = eu-west-1\n"
      "[other]\naws_access_key_id = AKIDBARE\naws_secret_access_key = s\n");
  WriteCreds("[profile other]\naws_access_key_id = AKIDPREFIXED\naws_secret_access_key = s\n");
  Credentials c = LoadCredentials("backup", Env());
  EXPECT_EQ(c.access_key_id, "AKIDCONFIG");
  EXPECT_EQ(c.source, ConfigPath() + " [profile backup]");
  // "[other]" in config and "[profile other]" in credentials do not name "other".
  Error e = LoadError("other");
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  // ... but "[profile other]" in the credentials file names "profile other".
  EXPECT_EQ(LoadCredentials("profile other", Env()).access_key_id, "AKIDPREFIXED");
}

TEST_F(CredentialsTest, ConfigDefaultSection) {
  WriteConfig("[default]\naws_access_key_id = AKIDCFGDEFAULT\naws_secret_access_key = s\n");
  EXPECT_EQ(LoadCredentials("", Env()).access_key_id, "AKIDCFGDEFAULT");
  WriteConfig(
      "[default]\naws_access_key_id = AKIDBARE\naws_secret_access_key = s\n"
      "[profile default]\naws_access_key_id = AKIDPREFIXED\naws_secret_access_key = s\n");
  EXPECT_EQ(LoadCredentials("", Env()).access_key_id, "AKIDPREFIXED");
}

TEST_F(CredentialsTest, CredentialsFileBeatsConfigFile) {
  WriteCreds("[p]\naws_access_key_id = AKIDCREDS\naws_secret_access_key = s\n");
  WriteConfig("[profile p]\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = s\n");
  EXPECT_EQ(LoadCredentials("p", Env()).access_key_id, "AKIDCREDS");
}

TEST_F(CredentialsTest, FileLocationsFromEnvironment) {
  Write(home_.path() + "/elsewhere/creds", "[default]\naws_access_key_id = AKIDELSEWHERE\naws_secret_access_key = s\n");
  env_["AWS_SHARED_CREDENTIALS_FILE"] = "~/elsewhere/creds";
  Credentials c = LoadCredentials("", Env());
  EXPECT_EQ(c.access_key_id, "AKIDELSEWHERE");
  EXPECT_EQ(c.source, home_.path() + "/elsewhere/creds [profile default]");

  Write(home_.path() + "/cfg", "[profile x]\naws_access_key_id = AKIDCFG\naws_secret_access_key = s\n");
  env_["AWS_CONFIG_FILE"] = home_.path() + "/cfg";
  EXPECT_EQ(LoadCredentials("x", Env()).access_key_id, "AKIDCFG");
}

TEST_F(CredentialsTest, NothingFoundNamesEveryPlaceTried) {
  Error e = LoadError();
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  const std::string msg = e.what();
  EXPECT_NE(msg.find("profile 'default'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("AWS_ACCESS_KEY_ID"), std::string::npos) << msg;
  EXPECT_NE(msg.find(CredsPath() + ": no such file"), std::string::npos) << msg;
  EXPECT_NE(msg.find(ConfigPath() + ": no such file"), std::string::npos) << msg;

  WriteCreds("[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = " + std::string(kSecret) + "\n");
  WriteConfig("[profile nokeys]\nregion = eu-west-1\n");
  e = LoadError("missing");
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_NE(std::string(e.what()).find(CredsPath() + ": no section for profile 'missing'"), std::string::npos)
      << e.what();
  EXPECT_NE(std::string(e.what()).find("not consulted"), std::string::npos) << e.what();
  e = LoadError("nokeys");
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_NE(std::string(e.what()).find(ConfigPath() + ": profile 'nokeys' has no aws_access_key_id"), std::string::npos)
      << e.what();
}

TEST_F(CredentialsTest, HalfConfiguredProfileIsAnError) {
  WriteCreds("[default]\naws_access_key_id = AKIDDEFAULT\n[other]\naws_secret_access_key = " + std::string(kSecret) +
             "\n");
  Error e = LoadError();
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(e.what()).find(CredsPath() + " [profile default]: has aws_access_key_id but no "
                                                     "aws_secret_access_key"),
            std::string::npos)
      << e.what();
  EXPECT_EQ(LoadError("other").code(), ErrorCode::kInvalidArgument);
}

TEST_F(CredentialsTest, UnsupportedFlowsAreNamed) {
  WriteConfig(
      "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/backup\nsource_profile = default\n"
      "[profile sso]\nsso_session = corp\n"
      "[profile proc]\ncredential_process = /usr/bin/get-creds\n");
  WriteCreds(
      "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s\n"
      "[proc]\naws_access_key_id = AKIDPROC\naws_secret_access_key = s\n");
  Error e = LoadError("role");
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(e.what()).find("'role_arn', which bulwark does not support"), std::string::npos) << e.what();
  EXPECT_NE(std::string(LoadError("sso").what()).find("'sso_session'"), std::string::npos);
  // The AWS CLI tries static keys in the credentials file before
  // credential_process, so they are used.
  EXPECT_EQ(LoadCredentials("proc", Env()).access_key_id, "AKIDPROC");
  WriteCreds("[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s\n");
  EXPECT_NE(std::string(LoadError("proc").what()).find("'credential_process'"), std::string::npos);
}

TEST_F(CredentialsTest, MalformedFileNamesLineNotContent) {
  WriteCreds("[default]\naws_access_key_id = AKIDDEFAULT\n" + std::string(kSecret) + "\n");
  Error e = LoadError();
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(std::string(e.what()).rfind(CredsPath() + ":3: ", 0), 0u) << e.what();
}

TEST_F(CredentialsTest, UnreadableFileIsNotTreatedAsMissing) {
  std::filesystem::create_directories(CredsPath());  // a directory: reading fails with EISDIR
  Error e = LoadError();
  EXPECT_EQ(e.code(), ErrorCode::kIo);
  EXPECT_NE(std::string(e.what()).find(CredsPath()), std::string::npos) << e.what();
}

TEST_F(CredentialsTest, Region) {
  EXPECT_EQ(ResolveRegion("", Env()), "us-east-1");
  WriteConfig("[default]\nregion = eu-central-1\n[profile x]\nregion = ap-south-1\n");
  EXPECT_EQ(ResolveRegion("", Env()), "eu-central-1");
  EXPECT_EQ(ResolveRegion("x", Env()), "ap-south-1");
  EXPECT_EQ(ResolveRegion("nothing", Env()), "us-east-1");
  env_["AWS_PROFILE"] = "x";
  EXPECT_EQ(ResolveRegion("", Env()), "ap-south-1");
  env_["AWS_DEFAULT_REGION"] = "sa-east-1";
  EXPECT_EQ(ResolveRegion("x", Env()), "sa-east-1");
  env_["AWS_REGION"] = "us-west-2";
  EXPECT_EQ(ResolveRegion("x", Env()), "us-west-2");
  env_.erase("AWS_REGION");
  env_.erase("AWS_DEFAULT_REGION");
  WriteConfig("[default\nregion = eu-central-1\n");
  EXPECT_EQ(CodeOf([&] { ResolveRegion("", Env()); }), ErrorCode::kInvalidArgument);
}

// Sets environment variables for one test and restores them afterwards.
class ScopedEnv {
 public:
  void Set(const std::string& name, const char* value) {
    if (!saved_.count(name)) {
      const char* old = ::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) {
      ::setenv(name.c_str(), value, 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST(CredentialsProcessEnv, ReadsTheRealEnvironment) {
  TempDir home;
  ScopedEnv env;
  env.Set("HOME", home.path().c_str());
  for (const char* v :
       {"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_DEFAULT_REGION"})
    env.Set(v, nullptr);
  env.Set("AWS_ACCESS_KEY_ID", "AKIDPROCESS");
  env.Set("AWS_SECRET_ACCESS_KEY", kSecret);
  env.Set("AWS_REGION", "eu-north-1");
  Credentials c = LoadCredentials();
  EXPECT_EQ(c.access_key_id, "AKIDPROCESS");
  EXPECT_EQ(c.source, "environment");
  EXPECT_EQ(ResolveRegion(), "eu-north-1");
  env.Set("AWS_ACCESS_KEY_ID", nullptr);
  env.Set("AWS_SECRET_ACCESS_KEY", nullptr);
  env.Set("AWS_REGION", nullptr);
  EXPECT_EQ(CodeOf([] { LoadCredentials(); }), ErrorCode::kNotFound);
  EXPECT_EQ(ResolveRegion(), "us-east-1");
}

// ------------------------------------------------------------- INI parser

TEST(CredentialsIni, Dialect) {
  const IniFile ini = ParseAwsIni(
      "\xEF\xBB\xBF# comment\r\n"
      "; another\r\n"
      "[ default ]  ; trailing text ignored\r\n"
      "AWS_Access_Key_ID=AKID\r\n"
      "aws_secret_access_key : with = and : inside \r\n"
      "  # indented comment\n"
      "\n"
      "s3 =\n"
      "  max_concurrent_requests = 20\n"
      "  addressing_style = path\n"
      "note = a # not a comment\n"
      "[profile \"two words\"]\n"
      "  region = eu-west-1\n"
      "[default]\n"
      "region = us-west-2\n"
      "empty =\n",
      "f");
  EXPECT_EQ(ini.Get("default", "aws_access_key_id"), "AKID");
  EXPECT_EQ(ini.Get("default", "aws_secret_access_key"), "with = and : inside");
  EXPECT_EQ(ini.Get("default", "s3"), "\nmax_concurrent_requests = 20\naddressing_style = path");
  EXPECT_EQ(ini.Get("default", "note"), "a # not a comment");
  EXPECT_EQ(ini.Get("default", "region"), "us-west-2");  // repeated section continues
  EXPECT_EQ(ini.Get("default", "empty"), std::nullopt);
  EXPECT_EQ(ini.Get("default", "missing"), std::nullopt);
  EXPECT_EQ(ini.Get("nosuch", "region"), std::nullopt);
  EXPECT_EQ(ini.Get("profile \"two words\"", "region"), "eu-west-1");
  EXPECT_EQ(ini.sections.size(), 2u);
}

TEST(CredentialsIni, ErrorsNameFileAndLineOnly) {
  struct Case {
    const char* text;
    const char* prefix;
  };
  for (const Case& c : {Case{"[default\nx = 1\n", "f.ini:1: "}, Case{"[]\n", "f.ini:1: "}, Case{"[ ]\n", "f.ini:1: "},
                        Case{"\nkey = SECRET1\n", "f.ini:2: "}, Case{"[a]\nSECRET2\n", "f.ini:2: "},
                        Case{"[a]\n = SECRET3\n", "f.ini:2: "}, Case{"[a]\nk = SECRET4\nk = SECRET5\n", "f.ini:3: "},
                        Case{"[a]\nk = 1\n[b]\n[a]\nK = SECRET6\n", "f.ini:5: "}}) {
    SCOPED_TRACE(c.text);
    try {
      ParseAwsIni(c.text, "f.ini");
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(std::string(e.what()).rfind(c.prefix, 0), 0u) << e.what();
      EXPECT_EQ(std::string(e.what()).find("SECRET"), std::string::npos) << e.what();
    }
  }
  try {
    ParseAwsIni("[a]\nk = 1\n\nk = 2\n", "f.ini");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "f.ini:4: a key repeated in its section (first set on line 2)");
  }
}

TEST(CredentialsIni, ConfigSectionProfile) {
  EXPECT_EQ(ConfigSectionProfile("default"), "default");
  EXPECT_EQ(ConfigSectionProfile("profile default"), "default");
  EXPECT_EQ(ConfigSectionProfile("profile backup"), "backup");
  EXPECT_EQ(ConfigSectionProfile("profile\t  backup "), "backup");
  EXPECT_EQ(ConfigSectionProfile("profile \"two words\""), "two words");
  EXPECT_EQ(ConfigSectionProfile("profile"), std::nullopt);
  EXPECT_EQ(ConfigSectionProfile("profile "), std::nullopt);
  EXPECT_EQ(ConfigSectionProfile("profilex"), std::nullopt);
  EXPECT_EQ(ConfigSectionProfile("backup"), std::nullopt);
  EXPECT_EQ(ConfigSectionProfile("sso-session corp"), std::nullopt);
}

}  // namespace
}  // namespace bulwark::storage::s3
