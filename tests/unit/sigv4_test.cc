// Tests for src/bulwark/storage/s3/sigv4.h against published vectors:
//   - AWS's SigV4 test suite (aws-sig-v4-test-suite, 2015-08-30 edition, as in
//     the AWS General Reference "Signature Version 4 test suite"): for each
//     case the canonical request (.creq), string to sign (.sts) and
//     Authorization header (.authz);
//   - the four examples of the S3 API Reference page "Signature Calculations
//     for the Authorization Header: Transferring Payload in a Single Chunk";
//   - the signing-key derivation example of the AWS General Reference.
#include "bulwark/storage/s3/sigv4.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "bulwark/base/bytes.h"
#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"
#include "test_util.h"

namespace bulwark::storage::s3 {
namespace {

// ------------------------------------------------- the generic test suite

constexpr int64_t kSuiteTime = 1440938160;  // 2015-08-30T12:36:00Z
constexpr char kSuiteScope[] = "20150830/us-east-1/service/aws4_request";
// The session token of the suite's post-sts-* cases.
constexpr char kSuiteToken[] =
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwth"
    "Ax7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAk"
    "iY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

Credentials SuiteCredentials(bool with_token = false) {
  return {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", with_token ? kSuiteToken : "", "test"};
}

struct SuiteCase {
  const char* name;
  const char* method;
  const char* path;  // raw, as on the .req request line
  std::vector<std::pair<std::string, std::string>> query;
  HeaderList headers;  // besides Host and X-Amz-Date, which SignV4 adds
  std::string body;
  bool double_encode;  // see sigv4.h: false for the cases whose raw path needs encoding
  bool session_token;
  const char* creq;
  const char* sts_hash;        // last line of the .sts
  const char* signed_headers;  // from the .authz
  const char* signature;       // from the .authz
};

// The canonical request of a suite case without extra headers or query.
#define SUITE_CREQ(method, uri)                                                             \
  method "\n" uri                                                                           \
         "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" \
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SUITE_CREQ_QUERY(method, query)                                                   \
  method "\n/\n" query                                                                    \
         "\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" \
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SUITE_CREQ_HEADERS(method, headers, signed) \
  method "\n/\n\nhost:example.amazonaws.com\n" headers "x-amz-date:20150830T123600Z\n\n" signed "\n" \
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

constexpr char kUnreserved[] = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const std::vector<SuiteCase>& SuiteCases() {
  static const std::vector<SuiteCase> cases = {
      {"get-header-key-duplicate",
       "GET",
       "/",
       {},
       {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
       "",
       true,
       false,
       SUITE_CREQ_HEADERS("GET", "my-header1:value2,value2,value1\n", "host;my-header1;x-amz-date"),
       "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
       "host;my-header1;x-amz-date",
       "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      // The .req folds the header over three lines (obsolete line folding);
      // an HTTP stack hands those over as three values of one header.
      {"get-header-value-multiline",
       "GET",
       "/",
       {},
       {{"My-Header1", "value1"}, {"My-Header1", "  value2"}, {"My-Header1", "     value3"}},
       "",
       true,
       false,
       SUITE_CREQ_HEADERS("GET", "my-header1:value1,value2,value3\n", "host;my-header1;x-amz-date"),
       "b7b6cbfd8a0430b78891e986784da2630c8a135a8595cec25b26ea94f926ee55",
       "host;my-header1;x-amz-date",
       "ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790"},
      {"get-header-value-order",
       "GET",
       "/",
       {},
       {{"My-Header1", "value4"}, {"My-Header1", "value1"}, {"My-Header1", "value3"}, {"My-Header1", "value2"}},
       "",
       true,
       false,
       SUITE_CREQ_HEADERS("GET", "my-header1:value4,value1,value3,value2\n", "host;my-header1;x-amz-date"),
       "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
       "host;my-header1;x-amz-date",
       "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
      {"get-header-value-trim",
       "GET",
       "/",
       {},
       {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
       "",
       true,
       false,
       SUITE_CREQ_HEADERS("GET", "my-header1:value1\nmy-header2:\"a b c\"\n", "host;my-header1;my-header2;x-amz-date"),
       "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
       "host;my-header1;my-header2;x-amz-date",
       "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"get-unreserved",
       "GET",
       "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       {},
       {},
       "",
       true,
       false,
       SUITE_CREQ("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
       "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
       "host;x-amz-date",
       "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"get-utf8",
       "GET",
       "/\xE1\x88\xB4",
       {},
       {},
       "",
       false,
       false,
       SUITE_CREQ("GET", "/%E1%88%B4"),
       "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
       "host;x-amz-date",
       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-vanilla",
       "GET",
       "/",
       {},
       {},
       "",
       true,
       false,
       SUITE_CREQ("GET", "/"),
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-vanilla-empty-query-key",
       "GET",
       "/",
       {{"Param1", "value1"}},
       {},
       "",
       true,
       false,
       SUITE_CREQ_QUERY("GET", "Param1=value1"),
       "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
       "host;x-amz-date",
       "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
      {"get-vanilla-query",
       "GET",
       "/",
       {},
       {},
       "",
       true,
       false,
       SUITE_CREQ("GET", "/"),
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-vanilla-query-order-key",
       "GET",
       "/",
       {{"Param1", "value2"}, {"Param1", "Value1"}},
       {},
       "",
       true,
       false,
       SUITE_CREQ_QUERY("GET", "Param1=Value1&Param1=value2"),
       "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
       "host;x-amz-date",
       "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
      {"get-vanilla-query-order-key-case",
       "GET",
       "/",
       {{"Param2", "value2"}, {"Param1", "value1"}},
       {},
       "",
       true,
       false,
       SUITE_CREQ_QUERY("GET", "Param1=value1&Param2=value2"),
       "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
       "host;x-amz-date",
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-query-order-value",
       "GET",
       "/",
       {{"Param1", "value2"}, {"Param1", "value1"}},
       {},
       "",
       true,
       false,
       SUITE_CREQ_QUERY("GET", "Param1=value1&Param1=value2"),
       "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
       "host;x-amz-date",
       "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
      {"get-vanilla-query-unreserved",
       "GET",
       "/",
       {{kUnreserved, kUnreserved}},
       {},
       "",
       true,
       false,
       SUITE_CREQ_QUERY("GET",
                        "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
                        "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
       "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
       "host;x-amz-date",
       "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
      {"get-vanilla-utf8-query",
       "GET",
       "/",
       {{"\xE1\x88\xB4", "bar"}},
       {},
       "",
       true,
       false,
       SUITE_CREQ_QUERY("GET", "%E1%88%B4=bar"),
       "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
       "host;x-amz-date",
       "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {"post-header-key-case",
       "POST",
       "/",
       {},
       {},
       "",
       true,
       false,
       SUITE_CREQ("POST", "/"),
       "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
       "host;x-amz-date",
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post-header-key-sort",
       "POST",
       "/",
       {},
       {{"My-Header1", "value1"}},
       "",
       true,
       false,
       SUITE_CREQ_HEADERS("POST", "my-header1:value1\n", "host;my-header1;x-amz-date"),
       "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
       "host;my-header1;x-amz-date",
       "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
      {"post-header-value-case",
       "POST",
       "/",
       {},
       {{"My-Header1", "VALUE1"}},
       "",
       true,
       false,
       SUITE_CREQ_HEADERS("POST", "my-header1:VALUE1\n", "host;my-header1;x-amz-date"),
       "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
       "host;my-header1;x-amz-date",
       "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
      {"post-vanilla",
       "POST",
       "/",
       {},
       {},
       "",
       true,
       false,
       SUITE_CREQ("POST", "/"),
       "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
       "host;x-amz-date",
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post-vanilla-empty-query-value",
       "POST",
       "/",
       {{"Param1", "value1"}},
       {},
       "",
       true,
       false,
       SUITE_CREQ_QUERY("POST", "Param1=value1"),
       "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
       "host;x-amz-date",
       "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
      {"post-vanilla-query",
       "POST",
       "/",
       {{"Param1", "value1"}},
       {},
       "",
       true,
       false,
       SUITE_CREQ_QUERY("POST", "Param1=value1"),
       "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
       "host;x-amz-date",
       "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
      // post-x-www-form-urlencoded*: the suite's .req files also carry
      // Content-Length, which its .creq/.sts/.authz do not sign.
      {"post-x-www-form-urlencoded",
       "POST",
       "/",
       {},
       {{"Content-Type", "application/x-www-form-urlencoded"}},
       "Param1=value1",
       true,
       false,
       "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
       "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
       "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
       "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
       "content-type;host;x-amz-date",
       "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
      {"post-x-www-form-urlencoded-parameters",
       "POST",
       "/",
       {},
       {{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}},
       "Param1=value1",
       true,
       false,
       "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\nhost:example.amazonaws.com\n"
       "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
       "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
       "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
       "content-type;host;x-amz-date",
       "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
      // normalize-path/: the generic (non-S3) path rules.
      {"get-relative",
       "GET",
       "/example/..",
       {},
       {},
       "",
       true,
       false,
       SUITE_CREQ("GET", "/"),
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-relative-relative",
       "GET",
       "/example1/example2/../..",
       {},
       {},
       "",
       true,
       false,
       SUITE_CREQ("GET", "/"),
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-slash",
       "GET",
       "//",
       {},
       {},
       "",
       true,
       false,
       SUITE_CREQ("GET", "/"),
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-slash-dot-slash",
       "GET",
       "/./",
       {},
       {},
       "",
       true,
       false,
       SUITE_CREQ("GET", "/"),
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-slash-pointless-dot",
       "GET",
       "/./example",
       {},
       {},
       "",
       true,
       false,
       SUITE_CREQ("GET", "/example"),
       "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
       "host;x-amz-date",
       "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
      {"get-slashes",
       "GET",
       "//example//",
       {},
       {},
       "",
       true,
       false,
       SUITE_CREQ("GET", "/example/"),
       "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
       "host;x-amz-date",
       "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
      {"get-space",
       "GET",
       "/example space/",
       {},
       {},
       "",
       false,
       false,
       SUITE_CREQ("GET", "/example%20space/"),
       "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
       "host;x-amz-date",
       "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
      // post-sts-token/: the session token signed as x-amz-security-token.
      {"post-sts-header-before",
       "POST",
       "/",
       {},
       {},
       "",
       true,
       true,
       "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:AQoDYXdzEPT//////////"
       "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/"
       "kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT"
       "38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n\n"
       "host;x-amz-date;x-amz-security-token\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
       "host;x-amz-date;x-amz-security-token",
       "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
  };
  return cases;
}

std::string Sha256Hex(std::string_view s) { return crypto::Sha256(AsBytes(s)).Hex(); }

// What gtest prints for a parameter (and so the ctest test name shows).
void PrintTo(const SuiteCase& c, std::ostream* os) { *os << c.name; }

// gtest names allow only [A-Za-z0-9_].
std::string TestName(std::string_view name) {
  std::string out;
  for (char c : name) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return out;
}

class AwsTestSuite : public ::testing::TestWithParam<SuiteCase> {};

TEST_P(AwsTestSuite, CanonicalRequestStringToSignAndAuthorization) {
  const SuiteCase& tc = GetParam();
  SignableRequest req;
  req.method = tc.method;
  req.host = "example.amazonaws.com";
  req.path = tc.path;
  req.query = tc.query;
  req.headers = tc.headers;
  req.payload_sha256_hex = Sha256Hex(tc.body);
  req.double_encode_path = tc.double_encode;
  const SigV4Result r = SignV4Detailed(req, SuiteCredentials(tc.session_token), "us-east-1", "service", kSuiteTime);
  EXPECT_EQ(r.canonical_request, tc.creq);
  EXPECT_EQ(r.string_to_sign, std::string("AWS4-HMAC-SHA256\n20150830T123600Z\n") + kSuiteScope + "\n" + tc.sts_hash);
  EXPECT_EQ(r.signature, tc.signature);
  // Not S3: no x-amz-content-sha256.
  HeaderList want = {{"authorization", std::string("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") + kSuiteScope +
                                           ", SignedHeaders=" + tc.signed_headers + ", Signature=" + tc.signature},
                     {"x-amz-date", "20150830T123600Z"}};
  if (tc.session_token) want.emplace_back("x-amz-security-token", kSuiteToken);
  want.emplace_back("host", "example.amazonaws.com");
  EXPECT_EQ(r.headers, want);
}

INSTANTIATE_TEST_SUITE_P(SigV4, AwsTestSuite, ::testing::ValuesIn(SuiteCases()),
                         [](const ::testing::TestParamInfo<SuiteCase>& info) { return TestName(info.param.name); });

TEST(SigV4Generic, NonS3ServicesDefaultToNormalizedDoubleEncodedPaths) {
  SignableRequest req;
  req.method = "GET";
  req.host = "example.amazonaws.com";
  req.path = "//example//";
  req.payload_sha256_hex = std::string(kEmptyPayloadSha256);
  // double_encode_path unset: "service" is not S3, so get-slashes' result.
  EXPECT_EQ(SignV4Detailed(req, SuiteCredentials(), "us-east-1", "service", kSuiteTime).signature,
            "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84");
}

// ------------------------------------------ S3 API Reference, single chunk

constexpr int64_t kS3DocTime = 1369353600;  // 2013-05-24T00:00:00Z
constexpr char kS3DocHost[] = "examplebucket.s3.amazonaws.com";

Credentials S3DocCredentials() {
  return {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "", "test"};
}

struct S3DocCase {
  const char* name;
  SignableRequest req;
  const char* creq;
  const char* sts_hash;
  const char* signed_headers;
  const char* signature;
};

const std::vector<S3DocCase>& S3DocCases() {
  static const std::vector<S3DocCase> cases = {
      {"GET Object",
       {"GET", kS3DocHost, "/test.txt", {}, {{"Range", "bytes=0-9"}}, std::string(kEmptyPayloadSha256), {}},
       "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
       "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
       "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
       "host;range;x-amz-content-sha256;x-amz-date",
       "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
      {"PUT Object",
       {"PUT",
        kS3DocHost,
        "/test$file.text",
        {},
        {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        {}},
       "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\nhost:examplebucket.s3.amazonaws.com\n"
       "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
       "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
       "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
       "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
       "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
       "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
       "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
      {"GET Bucket Lifecycle",
       {"GET", kS3DocHost, "/", {{"lifecycle", ""}}, {}, std::string(kEmptyPayloadSha256), {}},
       "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\n"
       "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
       "x-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
       "host;x-amz-content-sha256;x-amz-date",
       "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
      {"Get Bucket (List Objects)",
       {"GET", kS3DocHost, "/", {{"prefix", "J"}, {"max-keys", "2"}}, {}, std::string(kEmptyPayloadSha256), {}},
       "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\n"
       "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
       "x-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
       "host;x-amz-content-sha256;x-amz-date",
       "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
  };
  return cases;
}

void PrintTo(const S3DocCase& c, std::ostream* os) { *os << c.name; }

class S3SingleChunk : public ::testing::TestWithParam<S3DocCase> {};

TEST_P(S3SingleChunk, DocumentationExample) {
  const S3DocCase& tc = GetParam();
  const SigV4Result r = SignV4Detailed(tc.req, S3DocCredentials(), "us-east-1", "s3", kS3DocTime);
  EXPECT_EQ(r.canonical_request, tc.creq);
  EXPECT_EQ(r.string_to_sign,
            std::string("AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n") + tc.sts_hash);
  EXPECT_EQ(r.signature, tc.signature);
  const HeaderList want = {
      {"authorization", std::string("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                                    "aws4_request, SignedHeaders=") +
                            tc.signed_headers + ", Signature=" + tc.signature},
      {"x-amz-date", "20130524T000000Z"},
      {"x-amz-content-sha256", tc.req.payload_sha256_hex},
      {"host", kS3DocHost},
  };
  EXPECT_EQ(r.headers, want);
  EXPECT_EQ(SignV4(tc.req, S3DocCredentials(), "us-east-1", "s3", kS3DocTime), want);
}

INSTANTIATE_TEST_SUITE_P(SigV4, S3SingleChunk, ::testing::ValuesIn(S3DocCases()),
                         [](const ::testing::TestParamInfo<S3DocCase>& info) { return TestName(info.param.name); });

TEST(SigV4S3Docs, WirePathAndQueryMatchTheExamples) {
  const auto& cases = S3DocCases();
  EXPECT_EQ(EncodedPathAndQuery(cases[0].req), "/test.txt");
  EXPECT_EQ(EncodedPathAndQuery(cases[1].req), "/test%24file.text");
  EXPECT_EQ(EncodedPathAndQuery(cases[2].req), "/?lifecycle=");
  EXPECT_EQ(EncodedPathAndQuery(cases[3].req), "/?max-keys=2&prefix=J");
}

TEST(SigV4SigningKey, DerivationExample) {
  // AWS General Reference, "Examples of how to derive a signing key for
  // Signature Version 4": 20120215 / us-east-1 / iam.
  const std::string key = SigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
  EXPECT_EQ(ToHex(AsBytes(key)), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

// --------------------------------------------------------------- details

TEST(SigV4Encoding, UriEncode) {
  EXPECT_EQ(UriEncode("", true), "");
  EXPECT_EQ(UriEncode(kUnreserved, true), kUnreserved);
  EXPECT_EQ(UriEncode("a b+c", true), "a%20b%2Bc");
  EXPECT_EQ(UriEncode("a/b", false), "a/b");
  EXPECT_EQ(UriEncode("a/b", true), "a%2Fb");
  EXPECT_EQ(UriEncode("100%", true), "100%25");
  EXPECT_EQ(UriEncode("=&?#:@!$'()*,;", true), "%3D%26%3F%23%3A%40%21%24%27%28%29%2A%2C%3B");
  EXPECT_EQ(UriEncode("\xE1\x88\xB4", true), "%E1%88%B4");
  EXPECT_EQ(UriEncode(std::string_view("\0\x7f\xff", 3), true), "%00%7F%FF");
}

TEST(SigV4Encoding, CanonicalUriS3KeepsTheKeyAsIs) {
  // S3 object keys are not paths: "." / ".." / "//" are part of the key.
  EXPECT_EQ(CanonicalUri("/b/a//c/./d/../e", false), "/b/a//c/./d/../e");
  EXPECT_EQ(CanonicalUri("/b/my key+1", false), "/b/my%20key%2B1");
  EXPECT_EQ(CanonicalUri("", false), "/");
  EXPECT_EQ(CanonicalUri("", true), "/");
}

TEST(SigV4Encoding, CanonicalUriGenericNormalizesAndDoubleEncodes) {
  // AWS General Reference, "Create a canonical request".
  EXPECT_EQ(CanonicalUri("/documents and settings/", true), "/documents%2520and%2520settings/");
  EXPECT_EQ(CanonicalUri("/a/b/.", true), "/a/b/");
  EXPECT_EQ(CanonicalUri("/a/b/..", true), "/a/");
  EXPECT_EQ(CanonicalUri("/..", true), "/");
  EXPECT_EQ(CanonicalUri("/a/../../b", true), "/b");
  EXPECT_EQ(CanonicalUri("/a/.b/..c", true), "/a/.b/..c");
}

TEST(SigV4Encoding, CanonicalQueryString) {
  // Sorted by encoded name, then value; '+' is not a space; empty values kept.
  EXPECT_EQ(CanonicalQueryString({{"b", "2"}, {"a", "x y"}, {"a", "+"}, {"c", ""}}), "a=%2B&a=x%20y&b=2&c=");
  // Sorting is by the encoded bytes: "%2F" < "A" < "a".
  EXPECT_EQ(CanonicalQueryString({{"a", "1"}, {"A", "2"}, {"/", "3"}}), "%2F=3&A=2&a=1");
  EXPECT_EQ(CanonicalQueryString({{"prefix", "data/ab/"}, {"list-type", "2"}, {"continuation-token", "a+b/c=d"}}),
            "continuation-token=a%2Bb%2Fc%3Dd&list-type=2&prefix=data%2Fab%2F");
  EXPECT_EQ(CanonicalQueryString({}), "");
}

TEST(SigV4Encoding, EncodedPathAndQuery) {
  SignableRequest req;
  req.path = "/bucket/data/ab/a b+c";
  EXPECT_EQ(EncodedPathAndQuery(req), "/bucket/data/ab/a%20b%2Bc");
  req.query = {{"prefix", "x/"}, {"list-type", "2"}};
  EXPECT_EQ(EncodedPathAndQuery(req), "/bucket/data/ab/a%20b%2Bc?list-type=2&prefix=x%2F");
  req.path = "";
  req.query.clear();
  EXPECT_EQ(EncodedPathAndQuery(req), "/");
}

TEST(SigV4Encoding, CanonicalHeaders) {
  const HeaderList got = CanonicalHeaders(
      {{"X-B", "  two\t\t words  "}, {"x-a", "1"}, {"X-A", " 2 "}, {"x-c", ""}, {"Content-MD5", "abc=="}});
  const HeaderList want = {{"content-md5", "abc=="}, {"x-a", "1,2"}, {"x-b", "two words"}, {"x-c", ""}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(CanonicalHeaders(got), got);  // idempotent
}

TEST(SigV4Encoding, AmzDate) {
  EXPECT_EQ(AmzDate(0), "19700101T000000Z");
  EXPECT_EQ(AmzDate(kS3DocTime), "20130524T000000Z");
  EXPECT_EQ(AmzDate(1709164799), "20240228T235959Z");
  EXPECT_EQ(AmzDate(1709164800), "20240229T000000Z");
  EXPECT_EQ(AmzDate(253402300799), "99991231T235959Z");
  EXPECT_EQ(CodeOf([] { AmzDate(-1); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([] { AmzDate(253402300800); }), ErrorCode::kInvalidArgument);
}

SignableRequest MinioPut() {
  SignableRequest req;
  req.method = "PUT";
  req.host = "127.0.0.1:9000";
  req.path = "/bucket/data/ab/ab12";
  req.headers = {{"Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="}, {"x-amz-object-lock-mode", "COMPLIANCE"}};
  req.payload_sha256_hex = std::string(kEmptyPayloadSha256);
  return req;
}

TEST(SigV4Sign, HeaderCaseAndOrderDoNotMatter) {
  SignableRequest a = MinioPut();
  SignableRequest b = MinioPut();
  b.headers = {{"X-AMZ-OBJECT-LOCK-MODE", " COMPLIANCE"}, {"content-md5", "1B2M2Y8AsgTpgAmY7PhCfg== "}};
  const auto sa = SignV4Detailed(a, S3DocCredentials(), "us-east-1", "s3", kS3DocTime);
  const auto sb = SignV4Detailed(b, S3DocCredentials(), "us-east-1", "s3", kS3DocTime);
  EXPECT_EQ(sa.signature, sb.signature);
  EXPECT_NE(sa.headers[0].second.find("SignedHeaders=content-md5;host;x-amz-content-sha256;x-amz-date;"
                                      "x-amz-object-lock-mode,"),
            std::string::npos);
}

TEST(SigV4Sign, EverySignedInputChangesTheSignature) {
  const SignableRequest base = MinioPut();
  const std::string sig = SignV4Detailed(base, S3DocCredentials(), "us-east-1", "s3", kS3DocTime).signature;
  auto differs = [&](SignableRequest r, const std::string& region = "us-east-1", int64_t t = kS3DocTime) {
    return SignV4Detailed(r, S3DocCredentials(), region, "s3", t).signature != sig;
  };
  SignableRequest r = base;
  r.method = "POST";
  EXPECT_TRUE(differs(r));
  r = base;
  r.host = "127.0.0.1:9001";
  EXPECT_TRUE(differs(r));
  r = base;
  r.path += "3";
  EXPECT_TRUE(differs(r));
  r = base;
  r.query = {{"uploads", ""}};
  EXPECT_TRUE(differs(r));
  r = base;
  r.headers[1].second = "GOVERNANCE";
  EXPECT_TRUE(differs(r));
  r = base;
  r.payload_sha256_hex = std::string(kUnsignedPayload);
  EXPECT_TRUE(differs(r));
  EXPECT_TRUE(differs(base, "eu-west-1"));
  EXPECT_TRUE(differs(base, "us-east-1", kS3DocTime + 1));
}

TEST(SigV4Sign, UnsignedPayload) {
  SignableRequest req = MinioPut();
  req.payload_sha256_hex = std::string(kUnsignedPayload);
  const auto r = SignV4Detailed(req, S3DocCredentials(), "us-east-1", "s3", kS3DocTime);
  EXPECT_TRUE(r.canonical_request.ends_with("\nUNSIGNED-PAYLOAD"));
  EXPECT_NE(std::find(r.headers.begin(), r.headers.end(),
                      std::pair<std::string, std::string>("x-amz-content-sha256", "UNSIGNED-PAYLOAD")),
            r.headers.end());
}

TEST(SigV4Sign, SessionTokenIsSentAndSigned) {
  Credentials c = S3DocCredentials();
  c.session_token = "FQoGZXIvYXdzEXAMPLE/token+==";
  const auto r = SignV4Detailed(MinioPut(), c, "us-east-1", "s3", kS3DocTime);
  EXPECT_NE(r.canonical_request.find("\nx-amz-security-token:FQoGZXIvYXdzEXAMPLE/token+==\n"), std::string::npos);
  EXPECT_NE(r.headers[0].second.find(";x-amz-security-token, Signature="), std::string::npos);
  const HeaderList want = {r.headers[0],
                           {"x-amz-date", "20130524T000000Z"},
                           {"x-amz-content-sha256", std::string(kEmptyPayloadSha256)},
                           {"x-amz-security-token", "FQoGZXIvYXdzEXAMPLE/token+=="},
                           {"host", "127.0.0.1:9000"}};
  EXPECT_EQ(r.headers, want);
  EXPECT_NE(r.signature, SignV4Detailed(MinioPut(), S3DocCredentials(), "us-east-1", "s3", kS3DocTime).signature);
}

TEST(SigV4Sign, ExplicitPathModeOverridesTheServiceDefault) {
  SignableRequest req = MinioPut();
  req.path = "/bucket/a//b";
  const auto s3 = SignV4Detailed(req, S3DocCredentials(), "us-east-1", "s3", kS3DocTime);
  EXPECT_NE(s3.canonical_request.find("\n/bucket/a//b\n"), std::string::npos);
  req.double_encode_path = true;
  const auto generic = SignV4Detailed(req, S3DocCredentials(), "us-east-1", "s3", kS3DocTime);
  EXPECT_NE(generic.canonical_request.find("\n/bucket/a/b\n"), std::string::npos);
}

TEST(SigV4Sign, RejectsBadInputWithoutLeakingTheSecret) {
  Credentials c = S3DocCredentials();
  c.secret_access_key = "SECRETVALUE-never-printed";
  auto fails = [&](SignableRequest req, Credentials creds, const std::string& region = "us-east-1",
                   int64_t t = kS3DocTime) {
    try {
      SignV4(req, creds, region, "s3", t);
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find("SECRETVALUE"), std::string::npos) << e.what();
      return e.code() == ErrorCode::kInvalidArgument;
    }
    return false;
  };
  const SignableRequest ok = MinioPut();
  EXPECT_NO_THROW(SignV4(ok, c, "us-east-1", "s3", kS3DocTime));
  for (const char* name : {"Host", "x-amz-date", "X-Amz-Content-Sha256", "x-amz-security-token", "Authorization"}) {
    SignableRequest r = ok;
    r.headers.emplace_back(name, "x");
    EXPECT_TRUE(fails(r, c)) << name;
  }
  for (const char* name : {"", "bad name", "colon:", "new\nline"}) {
    SignableRequest r = ok;
    r.headers.emplace_back(name, "x");
    EXPECT_TRUE(fails(r, c)) << name;
  }
  for (const std::string& value : {std::string("a\r\nx-evil: 1"), std::string("a\nb"), std::string("a\0b", 3)}) {
    SignableRequest r = ok;
    r.headers.emplace_back("x-amz-meta-a", value);
    EXPECT_TRUE(fails(r, c));
  }
  const std::vector<std::pair<const char*, std::function<void(SignableRequest&)>>> bad_requests = {
      {"empty host", [](SignableRequest& r) { r.host = ""; }},
      {"CRLF in host", [](SignableRequest& r) { r.host = "h\r\nx: y"; }},
      {"relative path", [](SignableRequest& r) { r.path = "bucket/key"; }},
      {"empty method", [](SignableRequest& r) { r.method = ""; }},
      {"method with a space", [](SignableRequest& r) { r.method = "GET /x"; }},
      {"empty payload hash", [](SignableRequest& r) { r.payload_sha256_hex = ""; }},
      {"CRLF in payload hash", [](SignableRequest& r) { r.payload_sha256_hex = "abc\r\nx: y"; }},
  };
  for (const auto& [what, mutate] : bad_requests) {
    SignableRequest r = ok;
    mutate(r);
    EXPECT_TRUE(fails(r, c)) << what;
  }
  EXPECT_TRUE(fails(ok, c, "us/east"));
  EXPECT_TRUE(fails(ok, c, "us-east-1\n"));
  EXPECT_TRUE(fails(ok, c, ""));
  EXPECT_TRUE(fails(ok, c, "us-east-1", -5));
  Credentials no_secret = c;
  no_secret.secret_access_key = "";
  EXPECT_TRUE(fails(ok, no_secret));
  Credentials no_id = c;
  no_id.access_key_id = "";
  EXPECT_TRUE(fails(ok, no_id));
  no_id.access_key_id = "AKID, Signature=x";
  EXPECT_TRUE(fails(ok, no_id));
  Credentials bad_token = c;
  bad_token.session_token = "tok\nen";
  EXPECT_TRUE(fails(ok, bad_token));
}

}  // namespace
}  // namespace bulwark::storage::s3
