// Tests for frontends/config: gateway.conf parsing and command-line precedence.

#include "frontends/config.h"

#include <gtest/gtest.h>
#include <kj/debug.h>

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
  EXPECT_EQ(errorOf("\nlisten_on = x\n"), "line 2: unknown key 'listen_on'");
  EXPECT_EQ(errorOf("max_body\n"), "line 1: expected \"key = value\"");
  EXPECT_EQ(errorOf("max_body = 1023\n"),
            "line 1: max_body must be a number of bytes from 1024 to 1073741824");
  EXPECT_EQ(errorOf("max_body = 1024\n"), "");
  EXPECT_EQ(errorOf("max_body = 1073741825\n"),
            "line 1: max_body must be a number of bytes from 1024 to 1073741824");
  EXPECT_EQ(errorOf("prefix = /a b\n"),
            "line 1: prefix may contain letters, digits, '/', '-', '_', '.'");
  EXPECT_EQ(errorOf("access_log = maybe\n"), "line 1: access_log must be yes or no");
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

}  // namespace
}  // namespace credvault::frontends
