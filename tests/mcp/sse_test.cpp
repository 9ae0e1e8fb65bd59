// The SSE parser and the JSON-RPC helpers of mcp/ (pure code): framing
// split at every byte boundary, CR/LF/CRLF line ends, comments, multi-line
// data, the reference server's empty priming event; message classes,
// error results, and the matcher's answers, deadlines, cancellation and
// failures from another thread.
#include <gtest/gtest.h>

#include <thread>

#include "base/errc.hpp"
#include "mcp/jsonrpc.hpp"
#include "mcp/sse.hpp"
#include "mcp/transport.hpp"

namespace yantra::mcp {
namespace {

std::vector<SseEvent> parse_in_pieces(const std::string& text, size_t piece) {
  SseParser p;
  std::vector<SseEvent> out;
  for (size_t i = 0; i < text.size(); i += piece) p.feed(text.substr(i, piece), out);
  return out;
}

TEST(Sse, ReferenceServerAnswerInAnyPieces) {
  const std::string text =
      "id: 0423e143\ndata: \n\n"
      "event: message\nid: ebdb8bee\ndata: {\"result\":{},\"jsonrpc\":\"2.0\",\"id\":1}\n\n";
  for (size_t piece = 1; piece <= text.size(); ++piece) {
    auto events = parse_in_pieces(text, piece);
    ASSERT_EQ(events.size(), 1u) << "piece " << piece;  // the empty priming event is dropped
    EXPECT_EQ(events[0].event, "message");
    EXPECT_EQ(events[0].id, "ebdb8bee");
    EXPECT_EQ(events[0].data, "{\"result\":{},\"jsonrpc\":\"2.0\",\"id\":1}");
  }
}

TEST(Sse, LineEndsCommentsAndMultiLineData) {
  const std::string text =
      ": keep-alive\r\ndata: a\r\ndata:b\rdata:  c\n\nevent: other\ndata: x\n\n";
  for (size_t piece = 1; piece <= text.size(); ++piece) {
    auto events = parse_in_pieces(text, piece);
    ASSERT_EQ(events.size(), 2u) << "piece " << piece;
    EXPECT_EQ(events[0].data, "a\nb\n c");
    EXPECT_EQ(events[0].event, "message");
    EXPECT_EQ(events[1].event, "other");
    EXPECT_EQ(events[1].data, "x");
  }
}

TEST(Sse, UnfinishedEventIsHeld) {
  SseParser p;
  std::vector<SseEvent> out;
  p.feed("data: {\"a\":1}\n", out);
  EXPECT_TRUE(out.empty());
  EXPECT_GT(p.pending_bytes(), 0u);
  p.feed("\n", out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data, "{\"a\":1}");
}

TEST(JsonRpc, Classify) {
  EXPECT_EQ(classify(make_request(3, "tools/list", json::object())), MessageKind::kRequest);
  EXPECT_EQ(classify(make_notification("notifications/tools/list_changed", nullptr)),
            MessageKind::kNotification);
  EXPECT_EQ(classify(json{{"jsonrpc", "2.0"}, {"id", 3}, {"result", {}}}), MessageKind::kResponse);
  EXPECT_EQ(classify(json{{"jsonrpc", "2.0"}, {"id", 3}}), MessageKind::kInvalid);
  EXPECT_EQ(classify(json::array()), MessageKind::kInvalid);
  EXPECT_EQ(response_id(json{{"id", 7}, {"result", 1}}), 7);
  EXPECT_EQ(response_id(json{{"id", "7"}, {"result", 1}}), std::nullopt);
}

TEST(JsonRpc, ErrorResults) {
  auto ok = response_result(json{{"id", 1}, {"result", {{"x", 1}}}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value()["x"], 1);
  auto bad = response_result(
      json{{"id", 1}, {"error", {{"code", -32602}, {"message", "Invalid params"}}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().is(Errc::kInvalidArgument));
  EXPECT_NE(bad.status().message().find("Invalid params"), std::string::npos);
  auto other = response_result(json{{"id", 1}, {"error", {{"code", -32603}, {"message", "x"}}}});
  EXPECT_TRUE(other.status().is(Errc::kUnavailable));
}

TEST(Matcher, AnswersGoToTheirWaiters) {
  Matcher m;
  m.expect(1);
  m.expect(2);
  std::thread t([&] {
    EXPECT_FALSE(m.deliver(json{{"id", 9}, {"result", 0}}));  // nobody waits for 9
    EXPECT_TRUE(m.deliver(json{{"id", 2}, {"result", "two"}}));
    EXPECT_TRUE(m.deliver(json{{"id", 1}, {"result", "one"}}));
  });
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  auto one = m.wait(1, deadline, nullptr);
  auto two = m.wait(2, deadline, nullptr);
  t.join();
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(one.value()["result"], "one");
  EXPECT_EQ(two.value()["result"], "two");
  EXPECT_EQ(m.waiting(), 0u);
  EXPECT_FALSE(m.deliver(json{{"id", 1}, {"result", "late"}}));  // a late answer is dropped
}

TEST(Matcher, DeadlineCancelAndFailure) {
  Matcher m;
  m.expect(1);
  const auto t0 = Clock::now();
  auto r = m.wait(1, t0 + std::chrono::milliseconds(60), nullptr);
  EXPECT_TRUE(r.status().is(Errc::kTimeout));
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(60));

  CancelFlag cancel;
  m.expect(2);
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    cancel.cancelled = true;
  });
  auto c = m.wait(2, Clock::now() + std::chrono::seconds(5), &cancel);
  t.join();
  EXPECT_TRUE(c.status().is(Errc::kUnavailable));
  EXPECT_EQ(c.status().message(), "cancelled");

  m.expect(3);
  std::thread f([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    m.fail_all(Status(Errc::kUnavailable, "the process died"));
  });
  auto d = m.wait(3, Clock::now() + std::chrono::seconds(5), nullptr);
  f.join();
  EXPECT_EQ(d.status().message(), "the process died");
  EXPECT_EQ(m.waiting(), 0u);
}

TEST(HttpUrl, Parse) {
  HttpUrl u;
  EXPECT_EQ(parse_http_url("http://127.0.0.1:3001/mcp", &u), "");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, "3001");
  EXPECT_EQ(u.target, "/mcp");
  EXPECT_EQ(parse_http_url("https://Example.com", &u), "");
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.port, "443");
  EXPECT_EQ(u.target, "/");
  EXPECT_NE(parse_http_url("ftp://x/", &u), "");
  EXPECT_NE(parse_http_url("http://:80/", &u), "");
  EXPECT_NE(parse_http_url("http://a:99999/", &u), "");
  EXPECT_NE(parse_http_url("http://u:p@a/", &u), "");
  EXPECT_NE(parse_http_url("http://a b/", &u), "");
}

}  // namespace
}  // namespace yantra::mcp
