// YAML and JSON text to the one JSON model, and back.
//
// yaml-cpp only gives strings; typing plain scalars is ours. We follow the
// YAML 1.2 core schema, not YAML 1.1 ("yes", "on", "0777" stay strings and
// integers), because a definition must mean the same thing whichever spelling
// the tenant used. Quoted and block scalars are always strings.
//
// Both parsers read untrusted text: nesting depth and the size of what
// aliases expand to are bounded (an alias bomb is a few hundred bytes of YAML
// that would expand to billions of nodes), strings must be UTF-8 (yaml-cpp
// passes invalid bytes through, and they would make every later dump()
// throw), and no exception escapes: errors are Status values with a position.
//
// json_to_yaml quotes every string that would read back as another type, so
// yaml_to_json(json_to_yaml(x)) == x for any JSON x (tests/fuzz checks it).
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "base/utf8.hpp"
#include "runtime/errc.hpp"
#include "runtime/flow.hpp"

namespace yantra {
namespace {

constexpr int kMaxDepth = 128;
constexpr size_t kMaxNodes = 1'000'000;
constexpr size_t kMaxBytes = size_t{64} << 20;  // of scalars and keys, after alias expansion

// ---- plain scalars (YAML 1.2 core schema)

enum class Plain { kNull, kBool, kInt, kFloat, kNonFinite, kString };

bool all_chars(std::string_view s, bool (*pred)(char)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}
bool dec(char c) {
  return c >= '0' && c <= '9';
}
bool hex(char c) {
  return dec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool oct(char c) {
  return c >= '0' && c <= '7';
}

std::string_view unsigned_part(std::string_view s) {
  return !s.empty() && (s[0] == '+' || s[0] == '-') ? s.substr(1) : s;
}

// [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool is_core_float(std::string_view s) {
  s = unsigned_part(s);
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && dec(s[i])) ++i;
    return i - start;
  };
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  } else {
    if (digits() == 0) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

Plain classify(std::string_view s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Plain::kNull;
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE") {
    return Plain::kBool;
  }
  if (all_chars(unsigned_part(s), dec)) return Plain::kInt;
  if (s.size() > 2 && s[0] == '0' && s[1] == 'x' && all_chars(s.substr(2), hex)) return Plain::kInt;
  if (s.size() > 2 && s[0] == '0' && s[1] == 'o' && all_chars(s.substr(2), oct)) return Plain::kInt;
  if (is_core_float(s)) return Plain::kFloat;
  std::string_view u = unsigned_part(s);
  if (u == ".inf" || u == ".Inf" || u == ".INF" || s == ".nan" || s == ".NaN" || s == ".NAN") {
    return Plain::kNonFinite;
  }
  return Plain::kString;
}

// The value of a plain scalar, or an error message.
struct Resolved {
  json value;
  std::string error;
};

Resolved parse_float(std::string_view s) {
  std::string_view digits = s[0] == '+' ? s.substr(1) : s;  // from_chars takes no '+'
  double d = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), d);
  if (ec == std::errc::result_out_of_range) {
    // Underflow is a tiny number, not an error; overflow has no JSON value.
    size_t e = digits.find_first_of("eE");
    if (e != std::string_view::npos && e + 1 < digits.size() && digits[e + 1] == '-') {
      return {digits[0] == '-' ? -0.0 : 0.0, {}};
    }
    return {nullptr, "number '" + std::string(s) + "' is out of range"};
  }
  if (ec != std::errc() || end != digits.data() + digits.size() || !std::isfinite(d)) {
    return {nullptr, "invalid number '" + std::string(s) + "'"};
  }
  return {d, {}};
}

Resolved resolve_plain(std::string_view s) {
  switch (classify(s)) {
    case Plain::kNull: return {nullptr, {}};
    case Plain::kBool: return {s[0] == 't' || s[0] == 'T', {}};
    case Plain::kInt: {
      int base = 10;
      std::string_view digits = s;
      if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        base = s[1] == 'x' ? 16 : 8;
        digits = s.substr(2);
      } else if (s[0] == '+') {
        digits = s.substr(1);
      }
      // Like nlohmann's parser: non-negative integers are unsigned, negative
      // ones signed, and a decimal too large for 64 bits becomes a double.
      const char* first = digits.data();
      const char* last = first + digits.size();
      if (digits[0] == '-') {
        int64_t v = 0;
        if (std::from_chars(first, last, v).ec == std::errc()) return {v, {}};
      } else {
        uint64_t v = 0;
        if (std::from_chars(first, last, v, base).ec == std::errc()) return {v, {}};
      }
      if (base == 10) return parse_float(s);
      return {nullptr, "integer '" + std::string(s) + "' is out of range"};
    }
    case Plain::kFloat: return parse_float(s);
    case Plain::kNonFinite: return {nullptr, "'" + std::string(s) + "' is not a valid JSON number"};
    case Plain::kString: break;
  }
  return {std::string(s), {}};
}

// ---- YAML -> JSON

struct ConvertError {
  YAML::Mark mark;
  std::string message;
};

std::string position(const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1) +
         ": ";
}

class Converter {
 public:
  // `depth` counts the collections around `node`.
  json convert(const YAML::Node& node, int depth) {
    if (depth >= kMaxDepth && (node.IsSequence() || node.IsMap())) {
      throw ConvertError{node.Mark(), "nesting deeper than " + std::to_string(kMaxDepth) +
                                          " levels (or an alias that contains itself)"};
    }
    if (++nodes_ > kMaxNodes) {
      throw ConvertError{node.Mark(), "document expands to more than " + std::to_string(kMaxNodes) +
                                          " values through aliases"};
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return node.Tag() == "tag:yaml.org,2002:str" ? json("") : json(nullptr);
      case YAML::NodeType::Scalar: return scalar(node);
      case YAML::NodeType::Sequence: {
        check_collection_tag(node, "tag:yaml.org,2002:seq");
        json array = json::array();
        for (const YAML::Node& item : node) array.push_back(convert(item, depth + 1));
        return array;
      }
      case YAML::NodeType::Map: {
        check_collection_tag(node, "tag:yaml.org,2002:map");
        json object = json::object();
        for (const auto& entry : node) {
          const YAML::Node& key = entry.first;
          if (!key.IsScalar()) {
            throw ConvertError{key.Mark(), "a mapping key must be a string"};
          }
          const std::string& name = key.Scalar();
          count_bytes(key, name);
          if (object.contains(name)) {
            throw ConvertError{key.Mark(), "duplicate key '" + name + "'"};
          }
          object[name] = convert(entry.second, depth + 1);
        }
        return object;
      }
    }
    return nullptr;
  }

 private:
  json scalar(const YAML::Node& node) {
    const std::string& tag = node.Tag();
    const std::string& text = node.Scalar();
    count_bytes(node, text);
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return text;
    bool plain = tag == "?" || tag.empty();
    std::optional<Plain> want;
    if (tag == "tag:yaml.org,2002:null") want = Plain::kNull;
    if (tag == "tag:yaml.org,2002:bool") want = Plain::kBool;
    if (tag == "tag:yaml.org,2002:int") want = Plain::kInt;
    if (tag == "tag:yaml.org,2002:float") want = Plain::kFloat;
    if (!plain && !want) throw ConvertError{node.Mark(), "unsupported tag '" + tag + "'"};
    Plain kind = classify(text);
    if (want && kind != *want && !(want == Plain::kFloat && kind == Plain::kInt)) {
      throw ConvertError{node.Mark(), "'" + text + "' does not match its tag '" + tag + "'"};
    }
    Resolved r = resolve_plain(text);
    if (!r.error.empty()) throw ConvertError{node.Mark(), r.error};
    if (want == Plain::kFloat && r.value.is_number_integer()) return r.value.get<double>();
    return std::move(r.value);
  }

  static void check_collection_tag(const YAML::Node& node, std::string_view own) {
    const std::string& tag = node.Tag();
    if (tag != "?" && tag != "!" && !tag.empty() && tag != own) {
      throw ConvertError{node.Mark(), "unsupported tag '" + tag + "'"};
    }
  }

  void count_bytes(const YAML::Node& node, const std::string& text) {
    if (!utf8::is_valid(text)) throw ConvertError{node.Mark(), "invalid UTF-8"};
    bytes_ += text.size();
    if (bytes_ > kMaxBytes) {
      throw ConvertError{node.Mark(), "document expands to more than " +
                                          std::to_string(kMaxBytes >> 20) + " MiB of text"};
    }
  }

  size_t nodes_ = 0;
  size_t bytes_ = 0;
};

// Counts documents without building them. YAML::LoadAll cannot be used: on a
// stray ',' yaml-cpp 0.7 reports an endless run of empty documents and
// LoadAll allocates until the process dies (jbeder/yaml-cpp#1040), so we
// stop at the second document and load the first with YAML::Load.
struct DocumentCounter : YAML::EventHandler {
  int documents = 0;
  YAML::Mark last_start;

  void OnDocumentStart(const YAML::Mark& mark) override { last_start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// ---- JSON -> YAML

// The emitter quotes what it knows YAML syntax needs, but not what our typing
// would read back as a number, bool or null ("123", "true"), nor a few things
// it gets wrong: a plain carriage return or Unicode line break reads back as
// a line break, and a key "---" at the start of a line ends the document for
// other YAML readers. Double quotes escape all of them.
bool needs_quotes(std::string_view s) {
  if (classify(s) != Plain::kString) return true;
  if (s.substr(0, 3) == "---" || s.substr(0, 3) == "...") return true;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  for (std::string_view special : {"\xc2\x85", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xef\xbb\xbf"}) {
    if (s.find(special) != std::string_view::npos) return true;  // NEL, LS, PS, BOM
  }
  return false;
}

void emit_string(YAML::Emitter& out, const std::string& s) {
  if (needs_quotes(s)) out << YAML::DoubleQuoted;
  out << s;
}

constexpr size_t kLongKeyBytes = 128;

void emit(YAML::Emitter& out, const json& v) {
  switch (v.type()) {
    case json::value_t::null:
    case json::value_t::discarded:
    case json::value_t::binary:  // never produced by a parser; no JSON spelling
      out << YAML::Null;
      return;
    case json::value_t::boolean: out << v.get<bool>(); return;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      // nlohmann prints the shortest text that reads back to the same double,
      // and always with a '.' or exponent, so it stays a float in YAML.
      out << v.dump();
      return;
    case json::value_t::string: emit_string(out, v.get_ref<const std::string&>()); return;
    case json::value_t::array:
      if (v.empty()) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const json& item : v) emit(out, item);
      out << YAML::EndSeq;
      return;
    case json::value_t::object:
      if (v.empty()) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const auto& [key, value] : v.items()) {
        // YAML caps an implicit key at 1024 characters of its spelling (an
        // escaped control byte takes four): a long key is written as an
        // explicit one ("? key"), which has no cap, or the YAML would not
        // read back (tests/fuzz found a 1,270-character key).
        if (key.size() > kLongKeyBytes) out << YAML::LongKey;
        out << YAML::Key;
        emit_string(out, key);
        out << YAML::Value;
        emit(out, value);
      }
      out << YAML::EndMap;
      return;
  }
}

// Depth of [ and { outside strings; nlohmann's parser itself is iterative,
// but everything that later walks the value (templates, dump) recurses.
std::optional<size_t> too_deep_at(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::nullopt;
}

std::string line_column(std::string_view text, size_t offset) {
  size_t line = 1;
  size_t column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

}  // namespace

Result<json> yaml_to_json(std::string_view text) {
  try {
    std::string input(text);
    DocumentCounter counter;
    {
      std::istringstream stream(input);
      YAML::Parser parser(stream);
      while (counter.documents < 2 && parser.HandleNextDocument(counter)) ++counter.documents;
    }
    if (counter.documents == 0) return json(nullptr);  // empty text or only comments
    if (counter.documents > 1) {
      const YAML::Mark& at = counter.last_start;
      char c = at.pos >= 0 && static_cast<size_t>(at.pos) < input.size() ? input[at.pos] : '\0';
      bool stray = c == ',' || c == ']' || c == '}';
      return Status(RuntimeErrc::kInvalidYaml,
                    position(at) + (stray ? std::string("unexpected '") + c + "'"
                                          : "expected one YAML document"));
    }
    return Converter().convert(YAML::Load(input), 0);
  } catch (const ConvertError& e) {
    return Status(RuntimeErrc::kInvalidYaml, position(e.mark) + e.message);
  } catch (const YAML::Exception& e) {
    return Status(RuntimeErrc::kInvalidYaml, position(e.mark) + e.msg);
  } catch (const std::exception& e) {
    return Status(RuntimeErrc::kInvalidYaml, e.what());
  }
}

Result<json> parse_json_text(std::string_view text) {
  if (auto at = too_deep_at(text)) {
    return Status(RuntimeErrc::kInvalidJson,
                  line_column(text, *at) + " (byte " + std::to_string(*at + 1) +
                      "): nesting deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // what() is "[json.exception.parse_error.101] parse error at line 1,
    // column 5: syntax error while parsing ..."; keep the reason only and
    // give the position in our own format.
    std::string what = e.what();
    size_t colon = what.find(": ", what.find("parse error"));
    std::string reason = colon == std::string::npos ? what : what.substr(colon + 2);
    size_t offset = e.byte == 0 ? 0 : e.byte - 1;
    return Status(RuntimeErrc::kInvalidJson,
                  line_column(text, offset) + " (byte " + std::to_string(e.byte) + "): " + reason);
  } catch (const std::exception& e) {
    return Status(RuntimeErrc::kInvalidJson, e.what());
  }
}

namespace {

// Unicode noncharacters (U+FDD0-U+FDEF and the last two code points of every
// plane) are valid in JSON strings, but yaml-cpp's emitter writes U+FFFD
// instead of them in every quoted or block scalar (tests/fuzz found it), so a
// flow fetched as YAML would come back changed.
bool has_noncharacter(std::string_view utf8) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(utf8[i]); };
  for (size_t i = 0; i < utf8.size(); ++i) {
    if (byte(i) == 0xEF && i + 2 < utf8.size()) {
      if (byte(i + 1) == 0xB7 && byte(i + 2) >= 0x90 && byte(i + 2) <= 0xAF) return true;
      if (byte(i + 1) == 0xBF && (byte(i + 2) == 0xBE || byte(i + 2) == 0xBF)) return true;
    } else if (byte(i) >= 0xF0 && i + 3 < utf8.size()) {
      if ((byte(i + 1) & 0x0F) == 0x0F && byte(i + 2) == 0xBF &&
          (byte(i + 3) == 0xBE || byte(i + 3) == 0xBF)) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

std::string json_to_yaml(const json& doc) {
  // JSON text is YAML too (flow style), and yaml_to_json reads it back
  // unchanged: the spelling for the rare document yaml-cpp cannot write.
  std::string as_json = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  if (has_noncharacter(as_json)) return as_json + "\n";
  YAML::Emitter out;
  emit(out, doc);
  return std::string(out.c_str()) + "\n";
}

}  // namespace yantra
