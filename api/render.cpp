#include "api/render.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <vector>

namespace vpcguard::api {
namespace {

[[nodiscard]] bool isScalar(const Json& v) { return !v.is_object() && !v.is_array(); }

// How the AWS CLI prints a scalar in text and table output (Python's str()).
std::string scalarText(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_null()) return "None";
  return v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Sorted names of the keys holding scalars in any of the objects of `list`.
std::vector<std::string> scalarKeys(const Json& list) {
  std::set<std::string> keys;
  for (const auto& element : list) {
    if (!element.is_object()) continue;
    for (const auto& [key, value] : element.items()) {
      if (isScalar(value)) keys.insert(key);
    }
  }
  return {keys.begin(), keys.end()};
}

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

// ---- text ---------------------------------------------------------------------------------

void textItem(const Json& item, const std::string* identifier,
              const std::vector<std::string>* keys, std::string& out);

void textScalarLine(std::vector<std::string> cells, const std::string* identifier,
                    std::string& out) {
  if (identifier != nullptr) cells.insert(cells.begin(), upper(*identifier));
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) out += '\t';
    out += cells[i];
  }
  out += '\n';
}

void textObject(const Json& object, const std::string* identifier,
                const std::vector<std::string>* keys, std::string& out) {
  std::vector<std::string> scalars;
  std::vector<std::pair<std::string, const Json*>> nested;
  if (keys != nullptr) {
    // A member of a list: one column per scalar key of the whole list, so the lines align.
    for (const auto& key : *keys) {
      auto it = object.find(key);
      scalars.push_back(it == object.end() ? std::string() : scalarText(*it));
    }
    for (const auto& [key, value] : object.items()) {
      if (!std::binary_search(keys->begin(), keys->end(), key)) nested.emplace_back(key, &value);
    }
  } else {
    for (const auto& [key, value] : object.items()) {
      if (isScalar(value)) {
        scalars.push_back(scalarText(value));
      } else {
        nested.emplace_back(key, &value);
      }
    }
  }
  if (!scalars.empty()) textScalarLine(std::move(scalars), identifier, out);
  for (const auto& [key, value] : nested) textItem(*value, &key, nullptr, out);
}

void textList(const Json& list, const std::string* identifier, std::string& out) {
  if (list.empty()) return;
  bool has_object = std::any_of(list.begin(), list.end(), [](const Json& e) { return e.is_object(); });
  if (has_object) {
    auto keys = scalarKeys(list);
    for (const auto& element : list) textItem(element, identifier, &keys, out);
    return;
  }
  std::vector<std::string> scalars;
  std::vector<const Json*> nested;
  for (const auto& element : list) {
    if (isScalar(element)) {
      scalars.push_back(scalarText(element));
    } else {
      nested.push_back(&element);
    }
  }
  if (!scalars.empty()) {
    if (identifier != nullptr) {
      // One line per value, each named: "GROUPS\tsg-1".
      for (const auto& s : scalars) textScalarLine({s}, identifier, out);
    } else {
      textScalarLine(std::move(scalars), nullptr, out);
    }
  }
  for (const Json* n : nested) textItem(*n, identifier, nullptr, out);
}

void textItem(const Json& item, const std::string* identifier,
              const std::vector<std::string>* keys, std::string& out) {
  if (item.is_object()) {
    textObject(item, identifier, keys, out);
  } else if (item.is_array()) {
    textList(item, identifier, out);
  } else {
    out += scalarText(item);
    out += '\n';
  }
}

// ---- table --------------------------------------------------------------------------------

// Display width: UTF-8 continuation bytes take no column.
size_t displayWidth(std::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string cellText(const Json& v) {
  std::string s = scalarText(v);
  std::replace_if(s.begin(), s.end(), [](char c) { return c == '\n' || c == '\t' || c == '\r'; },
                  ' ');
  return s;
}

// One box of the table: a title row, then optionally a header row and rows of cells.
struct Section {
  std::string title;
  int level = 0;
  std::vector<std::string> headers;              // column table when not empty
  std::vector<std::vector<std::string>> rows;    // each of headers.size() cells, or key|value
  // Rows that size the columns besides `rows`: the other members of the same list, so that the
  // boxes of one list (one per member when members have nested parts) line up.
  std::vector<std::vector<std::string>> sizing_rows;
};

constexpr size_t kCellPadding = 2;  // spaces before a cell's text (and at least after it)

void buildSections(const std::string& title, const Json& value, int level,
                   std::vector<Section>& sections);

void buildObject(const std::string& title, const Json& object, int level,
                 std::vector<Section>& sections) {
  Section s{title, level, {}, {}, {}};
  std::vector<std::pair<std::string, const Json*>> nested;
  for (const auto& [key, v] : object.items()) {
    if (isScalar(v)) {
      s.rows.push_back({key, cellText(v)});
    } else {
      nested.emplace_back(key, &v);
    }
  }
  sections.push_back(std::move(s));
  for (const auto& [key, v] : nested) buildSections(key, *v, level + 1, sections);
}

void buildSections(const std::string& title, const Json& value, int level,
                   std::vector<Section>& sections) {
  if (value.is_object()) {
    buildObject(title, value, level, sections);
    return;
  }
  if (!value.is_array()) {
    sections.push_back(Section{title, level, {}, {{cellText(value)}}, {}});
    return;
  }
  if (value.empty()) return;
  bool has_object =
      std::any_of(value.begin(), value.end(), [](const Json& e) { return e.is_object(); });
  if (!has_object) {
    Section s{title, level, {}, {}, {}};
    for (const auto& element : value) {
      if (isScalar(element)) s.rows.push_back({cellText(element)});
    }
    if (!s.rows.empty()) sections.push_back(std::move(s));
    for (const auto& element : value) {
      if (!isScalar(element)) buildSections(title, element, level + 1, sections);
    }
    return;
  }
  auto keys = scalarKeys(value);
  auto rowOf = [&](const Json& element) {
    std::vector<std::string> row;
    for (const auto& key : keys) {
      auto it = element.find(key);
      row.push_back(it == element.end() || !isScalar(*it) ? std::string() : cellText(*it));
    }
    return row;
  };
  bool has_nested = std::any_of(value.begin(), value.end(), [](const Json& e) {
    return e.is_object() && std::any_of(e.begin(), e.end(), [](const Json& v) {
             return !isScalar(v);
           });
  });
  if (!has_nested) {
    // All rows in one box under one header row.
    Section s{title, level, keys, {}, {}};
    for (const auto& element : value) {
      if (element.is_object()) s.rows.push_back(rowOf(element));
    }
    sections.push_back(std::move(s));
    return;
  }
  // Members with nested parts: one box per member, its nested parts right below it.
  std::vector<std::vector<std::string>> all_rows;
  for (const auto& element : value) {
    if (element.is_object() && !keys.empty()) all_rows.push_back(rowOf(element));
  }
  for (const auto& element : value) {
    if (!element.is_object()) continue;
    Section s{title, level, keys, {}, all_rows};
    if (!keys.empty()) s.rows.push_back(rowOf(element));
    sections.push_back(std::move(s));
    for (const auto& [key, v] : element.items()) {
      if (!isScalar(v)) buildSections(key, v, level + 1, sections);
    }
  }
}

// The natural width of each column of a section (cell text plus padding on both sides).
std::vector<size_t> naturalWidths(const Section& s) {
  size_t columns = s.headers.empty() ? (s.rows.empty() ? 0 : s.rows.front().size())
                                     : s.headers.size();
  std::vector<size_t> widths(columns, 0);
  for (size_t i = 0; i < columns; ++i) {
    if (!s.headers.empty()) widths[i] = displayWidth(s.headers[i]);
    for (const auto* rows : {&s.rows, &s.sizing_rows}) {
      for (const auto& row : *rows) {
        if (i < row.size()) widths[i] = std::max(widths[i], displayWidth(row[i]));
      }
    }
    widths[i] += 2 * kCellPadding;
  }
  return widths;
}

// Width (inside the section's own borders) the section needs.
size_t neededInner(const Section& s) {
  size_t title = displayWidth(s.title) + 2 * kCellPadding;
  auto widths = naturalWidths(s);
  size_t cells = 0;
  for (size_t w : widths) cells += w;
  if (!widths.empty()) cells += widths.size() - 1;  // inner separators
  return std::max(title, cells);
}

// Spreads `inner` over the columns: each its natural width, the rest shared evenly (the first
// columns get the remainder), so the layout depends only on the content.
std::vector<size_t> layoutColumns(const Section& s, size_t inner) {
  auto widths = naturalWidths(s);
  if (widths.empty()) return widths;
  size_t used = widths.size() - 1;
  for (size_t w : widths) used += w;
  size_t extra = inner - used;
  for (size_t i = 0; i < widths.size(); ++i) {
    widths[i] += extra / widths.size() + (i < extra % widths.size() ? 1 : 0);
  }
  return widths;
}

std::string pad(std::string_view text, size_t width) {
  std::string out(text);
  size_t w = displayWidth(text);
  if (w < width) out.append(width - w, ' ');
  return out;
}

std::string center(std::string_view text, size_t width) {
  size_t w = displayWidth(text);
  if (w >= width) return std::string(text);
  size_t left = (width - w) / 2;
  return std::string(left, ' ') + std::string(text) + std::string(width - w - left, ' ');
}

class TableWriter {
 public:
  TableWriter(size_t total, std::string& out) : total_(total), out_(out) {}

  void write(const Section& s) {
    size_t inner = total_ - 2 * static_cast<size_t>(s.level) - 2;
    auto widths = layoutColumns(s, inner);
    if (s.level == 0 && first_) out_ += std::string(total_, '-') + "\n";
    first_ = false;
    line(s.level, '|', center(s.title, inner), '|');
    bool has_cells = !s.rows.empty() || !s.headers.empty();
    separator(s.level, has_cells ? widths : std::vector<size_t>{inner});
    if (!s.headers.empty()) {
      cellsRow(s.level, s.headers, widths, true);
      separator(s.level, widths);
    }
    if (!s.rows.empty()) {
      for (const auto& row : s.rows) cellsRow(s.level, row, widths, false);
      separator(s.level, widths);
    }
  }

 private:
  void line(int level, char left, const std::string& body, char right) {
    std::string bars(static_cast<size_t>(level), '|');
    out_ += bars;
    out_ += left;
    out_ += body;
    out_ += right;
    out_ += bars;
    out_ += '\n';
  }

  void separator(int level, const std::vector<size_t>& widths) {
    std::string body;
    for (size_t i = 0; i < widths.size(); ++i) {
      if (i > 0) body += '+';
      body.append(widths[i], '-');
    }
    line(level, '+', body, '+');
  }

  void cellsRow(int level, const std::vector<std::string>& cells,
                const std::vector<size_t>& widths, bool header) {
    std::string body;
    for (size_t i = 0; i < widths.size(); ++i) {
      if (i > 0) body += '|';
      const std::string& text = i < cells.size() ? cells[i] : std::string();
      body += header ? center(text, widths[i])
                     : std::string(kCellPadding, ' ') + pad(text, widths[i] - kCellPadding);
    }
    line(level, '|', body, '|');
  }

  size_t total_;
  std::string& out_;
  bool first_ = true;
};

bool isEmptyResult(const Json& result) {
  return result.is_null() || (result.is_object() && result.empty());
}

}  // namespace

std::optional<OutputFormat> parseOutputFormat(std::string_view name) {
  if (name == "json") return OutputFormat::kJson;
  if (name == "table") return OutputFormat::kTable;
  if (name == "text") return OutputFormat::kText;
  return std::nullopt;
}

std::string renderJson(const Json& result) {
  return result.dump(4, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string renderText(const Json& result) {
  std::string out;
  if (isEmptyResult(result)) return out;
  textItem(result, nullptr, nullptr, out);
  return out;
}

std::string renderTable(const Json& result, std::string_view operation) {
  std::string out;
  if (isEmptyResult(result)) return out;
  std::vector<Section> sections;
  buildSections(std::string(operation), result, 0, sections);
  size_t total = 0;
  for (const auto& s : sections) {
    total = std::max(total, neededInner(s) + 2 * static_cast<size_t>(s.level) + 2);
  }
  TableWriter writer(total, out);
  for (const auto& s : sections) writer.write(s);
  return out;
}

void render(const Json& result, std::string_view operation, OutputFormat format,
            std::ostream& out) {
  switch (format) {
    case OutputFormat::kJson:
      out << renderJson(result);
      return;
    case OutputFormat::kText:
      out << renderText(result);
      return;
    case OutputFormat::kTable:
      out << renderTable(result, operation);
      return;
  }
}

}  // namespace vpcguard::api
