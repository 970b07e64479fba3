// Tests for frontends/config: gateway.conf parsing and command-line precedence.

#include "frontends/config.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/filesystem.h>

namespace credvault::frontends {
namespace {

kj::String errorOf(kj::StringPtr text) {
  auto r = parseSettings(text);
  KJ_IF_MAYBE(e, r.tryGet<kj::String>()) { return kj::mv(*e); }
  return kj::str();
}

TEST(GatewayConfig, ParsesThePackagedFormat) {
  auto r = parseSettings(
      "# comment\n"
      "vault_socket = /run/x.sock   # trailing comment\n"
      "\n"
      "listen = 127.0.0.1:8080\n"
      "listen=[::1]:8081\r\n"
      "prefix = /Cust12345\n"
      "max_body = 2048\n"
      "max_connections = 10\n"
      "idle_timeout = 5\n"
      "header_timeout = 3\n"
      "access_log = no\n");
  ASSERT_TRUE(r.is<GatewaySettings>()) << errorOf("").cStr();
  auto& s = r.get<GatewaySettings>();
  EXPECT_EQ(KJ_ASSERT_NONNULL(s.vaultSocket), "/run/x.sock");
  ASSERT_EQ(s.listen.size(), 2u);
  EXPECT_EQ(s.listen[1], "[::1]:8081");
  EXPECT_EQ(KJ_ASSERT_NONNULL(s.prefix), "/Cust12345");
  http::HttpLimits limits;
  s.applyTo(limits);
  EXPECT_EQ(limits.maxBodyBytes, 2048u);
  EXPECT_EQ(limits.maxConnections, 10u);
  EXPECT_EQ(limits.idleTimeout, 5 * kj::SECONDS);
  EXPECT_EQ(limits.headerTimeout, 3 * kj::SECONDS);
  EXPECT_FALSE(KJ_ASSERT_NONNULL(s.accessLog));
}

TEST(GatewayConfig, RejectsUnknownKeysAndBadValuesWithTheLine) {
  EXPECT_EQ(errorOf("\nlisten_on = x\n"),
            "gateway.conf:2: unknown setting 'listen_on' (did you mean 'listen'?)");
  EXPECT_EQ(errorOf("max_body\n"), "gateway.conf:1: expected `key = value`");
  EXPECT_EQ(errorOf("log_level = info\n"), "gateway.conf:1: unknown setting 'log_level'");
  EXPECT_EQ(errorOf("max_body = 1023\n"),
            "gateway.conf:1: max_body must be a number of bytes from 1024 to 1073741824");
  EXPECT_EQ(errorOf("max_body = 1024\n"), "");
  EXPECT_EQ(errorOf("max_body = 1073741825\n"),
            "gateway.conf:1: max_body must be a number of bytes from 1024 to 1073741824");
  EXPECT_EQ(errorOf("prefix = /a b\n"),
            "gateway.conf:1: prefix may contain letters, digits, '/', '-', '_', '.'");
  EXPECT_EQ(errorOf("access_log = maybe\n"), "gateway.conf:1: access_log must be yes or no");
}

TEST(GatewayConfig, CommandLineWins) {
  auto parsed = parseSettings("listen = a:1\nlisten = b:2\nprefix = /x\nmax_body = 4096\n");
  auto file = kj::mv(parsed.get<GatewaySettings>());
  GatewaySettings cli;
  EXPECT_TRUE(cli.set("listen", "c:3") == nullptr);
  EXPECT_TRUE(cli.set("max_body", "8192") == nullptr);
  file.overrideWith(kj::mv(cli));
  ASSERT_EQ(file.listen.size(), 1u);
  EXPECT_EQ(file.listen[0], "c:3");
  EXPECT_EQ(KJ_ASSERT_NONNULL(file.prefix), "/x");
  EXPECT_EQ(KJ_ASSERT_NONNULL(file.maxBody), 8192u);
}

kj::String publicUrlError(kj::StringPtr url) {
  GatewaySettings s;
  KJ_IF_MAYBE(e, s.set("public_url", url)) { return kj::mv(*e); }
  return kj::str();
}

kj::String publicUrlOf(kj::StringPtr url) {
  GatewaySettings s;
  KJ_IF_MAYBE(e, s.set("public_url", url)) { return kj::str("error: ", *e); }
  return kj::heapString(KJ_ASSERT_NONNULL(s.publicUrl));
}

TEST(GatewayConfig, PublicUrlIsNormalised) {
  EXPECT_EQ(publicUrlOf("https://vault.example.com"), "https://vault.example.com");
  EXPECT_EQ(publicUrlOf("HTTPS://Vault.Example.COM/"), "https://vault.example.com");
  EXPECT_EQ(publicUrlOf("http://vault.example.com:8443/Base/cv~1//"),
            "http://vault.example.com:8443/Base/cv~1");
  EXPECT_EQ(publicUrlOf("http://192.0.2.1:80"), "http://192.0.2.1:80");
  EXPECT_EQ(publicUrlOf("https://[2001:DB8::1]:65535/x"), "https://[2001:db8::1]:65535/x");
  EXPECT_EQ(publicUrlOf(""), "");  // not set
  auto r = parseSettings("public_url = https://vault.example.com/cv  # behind nginx\n");
  ASSERT_TRUE(r.is<GatewaySettings>());
  EXPECT_EQ(KJ_ASSERT_NONNULL(r.get<GatewaySettings>().publicUrl), "https://vault.example.com/cv");
}

TEST(GatewayConfig, PublicUrlRefusesWhatIsNotABaseUrlWithoutEchoingIt) {
  EXPECT_EQ(publicUrlError("vault.example.com"), "public_url must start with http:// or https://");
  EXPECT_EQ(publicUrlError("ftp://vault.example.com"),
            "public_url must start with http:// or https://");
  EXPECT_EQ(publicUrlError("https://"), "public_url needs a host name after the scheme");
  EXPECT_EQ(publicUrlError("https:///path"), "public_url needs a host name after the scheme");
  EXPECT_EQ(publicUrlError("https://.example.com"), "public_url has a malformed host name");
  EXPECT_EQ(publicUrlError("https://[]"), "public_url has a malformed [IPv6] host");
  EXPECT_EQ(publicUrlError("https://[::1"), "public_url has a malformed [IPv6] host");
  EXPECT_EQ(publicUrlError("https://vault_x.example.com"),
            "public_url has a character a host name may not contain");
  for (auto port : {"0"_kj, "65536"_kj, "123456"_kj, "x"_kj, ""_kj, "80x"_kj}) {
    EXPECT_EQ(publicUrlError(kj::str("https://h:", port, "/")),
              "public_url has a port that is not a number from 1 to 65535")
        << port.cStr();
  }
  EXPECT_EQ(publicUrlError("https://h/a?b=c"), "public_url must not have a query or fragment");
  EXPECT_EQ(publicUrlError("https://h/#top"), "public_url must not have a query or fragment");
  // A user name and password: refused, and the message does not repeat them.
  EXPECT_EQ(publicUrlError("https://user:s3cret@h/"),
            "public_url must not contain a user name or password");
  EXPECT_EQ(publicUrlError("https://h/a b"),
            "public_url's path may contain letters, digits, '/', '-', '_', '.', '~'");
  EXPECT_EQ(publicUrlError("https://h/%2e"),
            "public_url's path may contain letters, digits, '/', '-', '_', '.', '~'");
  EXPECT_EQ(publicUrlError("https://h/\"x\""),
            "public_url's path may contain letters, digits, '/', '-', '_', '.', '~'");
  auto longest = kj::str("https://h/", kj::repeat('a', 190));
  EXPECT_EQ(longest.size(), 200u);
  EXPECT_EQ(publicUrlError(longest), "");
  EXPECT_EQ(publicUrlError(kj::str(longest, "a")), "public_url is longer than 200 bytes");
  EXPECT_EQ(errorOf("public_url = vault.example.com\n"),
            "gateway.conf:1: public_url must start with http:// or https://");
}

TEST(GatewayConfig, CommandLinePublicUrlWins) {
  auto parsed = parseSettings("public_url = https://a.example\n");
  auto file = kj::mv(parsed.get<GatewaySettings>());
  GatewaySettings cli;
  EXPECT_TRUE(cli.set("public_url", "https://b.example") == nullptr);
  file.overrideWith(kj::mv(cli));
  EXPECT_EQ(KJ_ASSERT_NONNULL(file.publicUrl), "https://b.example");
}

TEST(GatewayConfig, SetOptionReadsAsAFileLineDoes) {
  GatewaySettings s;
  EXPECT_TRUE(s.setOption("--set", "max_body = 4096  # small") == nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(s.maxBody), 4096u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(s.setOption("--set", "max_bdy=4096")),
            "--set: unknown setting 'max_bdy' (did you mean 'max_body'?)");
  EXPECT_EQ(KJ_ASSERT_NONNULL(s.setOption("--set", "max_body")), "--set: expected key=value");
  EXPECT_EQ(KJ_ASSERT_NONNULL(s.setOption("--set", "max_body=1")),
            "--set: max_body must be a number of bytes from 1024 to 1073741824");
  EXPECT_EQ(KJ_ASSERT_NONNULL(s.maxBody), 4096u);  // a refused value changes nothing
}

TEST(GatewayConfig, ErrorsNameTheFile) {
  auto r = parseSettings("listen = 127.0.0.1:1\nmax_body = x\n", "/etc/credvault/gateway.conf");
  EXPECT_EQ(KJ_ASSERT_NONNULL(r.tryGet<kj::String>()),
            "/etc/credvault/gateway.conf:2: max_body must be a number of bytes from 1024 to "
            "1073741824");
}

TEST(GatewayConfig, ThePackagedFileParsesAlsoWithEveryDefaultUncommented) {
  auto fs = kj::newDiskFilesystem();
  auto text = fs->getRoot()
                  .openFile(kj::Path::parse(kj::StringPtr(PACKAGED_GATEWAY_CONF).slice(1)))
                  ->readAllText();
  EXPECT_TRUE(parseSettings(text).is<GatewaySettings>());
  // "#key = value" lines are the documented defaults; "#key =" (empty) means unset.
  kj::Vector<kj::String> lines;
  size_t uncommented = 0;
  const char* p = text.begin();
  while (p < text.end()) {
    const char* eol = p;
    while (eol < text.end() && *eol != '\n') ++eol;
    kj::String l = kj::heapString(p, eol - p);
    p = eol < text.end() ? eol + 1 : eol;
    if (l.size() > 1 && l[0] == '#' && l[1] >= 'a' && l[1] <= 'z' && l.findFirst('=') != nullptr) {
      l = kj::heapString(l.slice(1));
      ++uncommented;
    }
    lines.add(kj::mv(l));
  }
  EXPECT_EQ(uncommented, gatewayKeys().size());  // every key
  auto r = parseSettings(kj::strArray(lines, "\n"));
  KJ_IF_MAYBE(e, r.tryGet<kj::String>()) { ADD_FAILURE() << e->cStr(); }
  // ... and the documented defaults are the built-in ones.
  KJ_IF_MAYBE(s, r.tryGet<GatewaySettings>()) {
    http::HttpLimits built, documented;
    s->applyTo(documented);
    EXPECT_EQ(documented.maxConnectionsPerAddress, built.maxConnectionsPerAddress);
    EXPECT_EQ(documented.maxBufferedBodyBytes, built.maxBufferedBodyBytes);
    EXPECT_EQ(documented.maxBufferedAnswerBytes, built.maxBufferedAnswerBytes);
    EXPECT_EQ(documented.bodyTimeout, built.bodyTimeout);
    EXPECT_EQ(documented.writeTimeout, built.writeTimeout);
    EXPECT_EQ(KJ_ASSERT_NONNULL(s->maxSoapBody), DEFAULT_MAX_SOAP_BODY_BYTES);
    EXPECT_TRUE(s->trusted().empty());
  }
}

TEST(GatewayConfig, FairShareSettingsAtTheirLimitsAndOnePast) {
  struct Case {
    const char* key;
    const char* atLowest;
    const char* belowLowest;
    const char* atHighest;
    const char* aboveHighest;
  };
  const Case cases[] = {
      {"max_connections_per_address", "1", "0", "1000000", "1000001"},
      {"max_body_buffer", "65536", "65535", "68719476736", "68719476737"},
      {"max_answer_buffer", "65536", "65535", "68719476736", "68719476737"},
      {"max_soap_body", "1024", "1023", "1073741824", "1073741825"},
      {"body_timeout", "1", "0", "3600", "3601"},
      {"write_timeout", "1", "0", "3600", "3601"},
  };
  for (auto& c : cases) {
    EXPECT_EQ(errorOf(kj::str(c.key, " = ", c.atLowest)), "") << c.key;
    EXPECT_EQ(errorOf(kj::str(c.key, " = ", c.atHighest)), "") << c.key;
    EXPECT_TRUE(errorOf(kj::str(c.key, " = ", c.belowLowest)).startsWith("gateway.conf:1: "))
        << c.key;
    EXPECT_TRUE(errorOf(kj::str(c.key, " = ", c.aboveHighest)).startsWith("gateway.conf:1: "))
        << c.key;
  }
  auto r = parseSettings(
      "max_connections_per_address = 8\nmax_body_buffer = 100000\nmax_answer_buffer = 200000\n"
      "body_timeout = 7\nwrite_timeout = 9\n");
  http::HttpLimits limits;
  r.get<GatewaySettings>().applyTo(limits);
  EXPECT_EQ(limits.maxConnectionsPerAddress, 8u);
  EXPECT_EQ(limits.maxBufferedBodyBytes, 100000u);
  EXPECT_EQ(limits.maxBufferedAnswerBytes, 200000u);
  EXPECT_EQ(limits.bodyTimeout, 7 * kj::SECONDS);
  EXPECT_EQ(limits.writeTimeout, 9 * kj::SECONDS);
}

TEST(GatewayConfig, TrustedProxiesAddUpAndRefuseWhatIsNotACidr) {
  auto r = parseSettings("trusted_proxies = 10.0.0.0/8 ::1\ntrusted_proxies = 2001:db8::/32\n");
  ASSERT_TRUE(r.is<GatewaySettings>());
  auto trusted = r.get<GatewaySettings>().trusted();
  EXPECT_TRUE(trusted.contains("10.1.2.3"));
  EXPECT_TRUE(trusted.contains("::1"));
  EXPECT_TRUE(trusted.contains("2001:db8:ffff::1"));
  EXPECT_FALSE(trusted.contains("11.0.0.1"));
  EXPECT_FALSE(trusted.contains("2001:db9::1"));
  EXPECT_EQ(errorOf("trusted_proxies = 10.0.0.0/33"),
            "gateway.conf:1: trusted_proxies: '10.0.0.0/33' is not an address or ADDR/PREFIX");
  EXPECT_NE(errorOf("trusted_proxies = ::1/129"), "");
  EXPECT_NE(errorOf("trusted_proxies = example.com"), "");
  EXPECT_NE(errorOf("trusted_proxies = 10.0.0.1/"), "");
  // The command line's list replaces the file's; an empty value trusts no one.
  auto file = parseSettings("trusted_proxies = 10.0.0.0/8\n");
  auto cli = parseSettings("trusted_proxies =\n");
  auto merged = kj::mv(file.get<GatewaySettings>());
  merged.overrideWith(kj::mv(cli.get<GatewaySettings>()));
  EXPECT_TRUE(merged.trusted().empty());
}

}  // namespace
}  // namespace credvault::frontends
