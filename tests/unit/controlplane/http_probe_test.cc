// The text side of `http` health probes (http_probe.h): the request, and
// which status lines count. Linked into health_test, whose probes drive the
// same functions over real sockets.
#include "l4lb/controlplane/http_probe.h"

#include <gtest/gtest.h>

#include <string>

namespace l4lb::controlplane {
namespace {

TEST(HttpProbe, RequestIsOneHttp10GetWithTheBackendAsHost) {
  EXPECT_EQ(http_probe_request(0x0a630015, "/healthz?deep=1"),
            "GET /healthz?deep=1 HTTP/1.0\r\nHost: 10.99.0.21\r\nUser-Agent: l4lb-health\r\n"
            "Connection: close\r\n\r\n");
}

TEST(HttpProbe, StatusCodesOfWellFormedLines) {
  EXPECT_EQ(parse_http_status_code("HTTP/1.1 200 OK"), 200);
  EXPECT_EQ(parse_http_status_code("HTTP/1.0 503 Service Unavailable"), 503);
  EXPECT_EQ(parse_http_status_code("HTTP/1.1 204"), 204);            // no reason phrase
  EXPECT_EQ(parse_http_status_code("HTTP/2 404 Not Found"), 404);    // any version text
  EXPECT_EQ(parse_http_status_code("HTTP/1.1   302 Found"), 302);    // extra spaces before the code
  EXPECT_EQ(parse_http_status_code("HTTP/1.1 000 zero"), 0);         // three digits, whatever they say
}

TEST(HttpProbe, MalformedLinesAreRefused) {
  for (const char* line : {"", "HTTP/1.1", "HTTP/1.1 ", "HTTP/1.1 20", "HTTP/1.1 2000 OK", "HTTP/1.1 20x OK",
                           "HTTP/1.1 -20 OK", "http/1.1 200 OK", "SSH-2.0-OpenSSH_9.2", "HTTP/1.1 200OK",
                           " HTTP/1.1 200 OK"}) {
    SCOPED_TRACE(std::string("line '") + line + "'");
    EXPECT_EQ(parse_http_status_code(line), -1);
  }
}

TEST(HttpProbe, FirstLineDropsTheLineEnd) {
  EXPECT_EQ(http_first_line("HTTP/1.1 200 OK\r\nServer: x\r\n"), "HTTP/1.1 200 OK");
  EXPECT_EQ(http_first_line("HTTP/1.1 200 OK\nServer: x\n"), "HTTP/1.1 200 OK");
  EXPECT_EQ(http_first_line("HTTP/1.1 200 OK"), "HTTP/1.1 200 OK");  // the peer closed after it
  EXPECT_EQ(http_first_line("\r\n"), "");
  EXPECT_EQ(http_first_line(""), "");
}

TEST(HttpProbe, ExcerptIsShortAndPrintable) {
  EXPECT_EQ(printable_excerpt("SSH-2.0\r\n\x01\xff"), "SSH-2.0????");
  EXPECT_EQ(printable_excerpt(std::string(100, 'x')).size(), 40u);
}

}  // namespace
}  // namespace l4lb::controlplane
