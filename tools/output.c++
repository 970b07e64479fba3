#include "output.h"
#include "dates.h"
#include "base/json-writer.h"

#include <kj/debug.h>
#include <stdlib.h>
#include <string.h>

namespace credvault::ctl {

namespace {

void wipe(kj::String& s) {
  if (s.size() > 0) explicit_bzero(s.begin(), s.size());
}

// Columns a string takes on a terminal: UTF-8 continuation bytes take none.
size_t displayWidth(kj::StringPtr s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
  }
  return n;
}

}  // namespace

Row::~Row() {
  for (auto& c : cells_) {
    wipe(c.json);
    wipe(c.text);
  }
}

Row& Row::str(kj::StringPtr key, kj::StringPtr header, kj::ArrayPtr<const char> value) {
  cells_.add(Cell{key, header, Cell::Kind::STRING, kj::heapString(value), kj::heapString(value)});
  return *this;
}

Row& Row::maybeStr(kj::StringPtr key, kj::StringPtr header,
                   kj::Maybe<kj::ArrayPtr<const char>> value, kj::StringPtr shown) {
  KJ_IF_MAYBE(v, value) { return str(key, header, *v); }
  cells_.add(Cell{key, header, Cell::Kind::NUL, kj::str("null"), kj::heapString(shown)});
  return *this;
}

Row& Row::num(kj::StringPtr key, kj::StringPtr header, int64_t value) {
  cells_.add(Cell{key, header, Cell::Kind::NUMBER, kj::str(value), kj::str(value)});
  return *this;
}

Row& Row::boolean(kj::StringPtr key, kj::StringPtr header, bool value) {
  kj::StringPtr v = value ? "true" : "false";
  cells_.add(Cell{key, header, Cell::Kind::BOOLEAN, kj::heapString(v), kj::heapString(v)});
  return *this;
}

Row& Row::date(kj::StringPtr key, kj::StringPtr header, int64_t ticks) {
  cells_.add(Cell{key, header, Cell::Kind::STRING, formatDate(ticks, "0001-01-01T00:00:00Z"),
                  formatDate(ticks)});
  return *this;
}

Row& Row::maybeDate(kj::StringPtr key, kj::StringPtr header, int64_t ticks, kj::StringPtr shown) {
  if (ticks == 0) {
    cells_.add(Cell{key, header, Cell::Kind::NUL, kj::str("null"), kj::heapString(shown)});
  } else {
    auto d = formatDate(ticks);
    cells_.add(Cell{key, header, Cell::Kind::STRING, kj::heapString(d), kj::mv(d)});
  }
  return *this;
}

kj::String escapeField(kj::ArrayPtr<const char> value) {
  kj::Vector<char> out(value.size() + 1);
  for (char c : value) {
    switch (c) {
      case '\\':
        out.addAll(kj::StringPtr("\\\\"));
        break;
      case '\t':
        out.addAll(kj::StringPtr("\\t"));
        break;
      case '\n':
        out.addAll(kj::StringPtr("\\n"));
        break;
      case '\r':
        out.addAll(kj::StringPtr("\\r"));
        break;
      default:
        if ((c >= 0 && c < 0x20) || c == 0x7f) {
          static const char HEX[] = "0123456789abcdef";
          out.add('\\');
          out.add('x');
          out.add(HEX[(c >> 4) & 15]);
          out.add(HEX[c & 15]);
        } else {
          out.add(c);
        }
    }
  }
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

void printRows(FILE* out, Format format, bool terminal, kj::ArrayPtr<const Row> rows, bool single) {
  if (format == Format::JSON) {
    base::JsonWriter w;
    if (!single) w.beginArray();
    for (auto& row : rows) {
      w.beginObject();
      for (auto& c : row.cells()) {
        w.key(c.key);
        switch (c.kind) {
          case Row::Cell::Kind::STRING:
            w.string(c.json);
            break;
          case Row::Cell::Kind::NUMBER:
            w.integer(strtoll(c.json.cStr(), nullptr, 10));
            break;
          case Row::Cell::Kind::BOOLEAN:
            w.boolean(c.json == "true");
            break;
          case Row::Cell::Kind::NUL:
            w.null();
            break;
        }
      }
      w.endObject();
    }
    if (!single) w.endArray();
    KJ_ASSERT(w.complete() || (single && rows.size() == 0));
    fwrite(w.text().begin(), 1, w.text().size(), out);
    fputc('\n', out);
    return;
  }
  // Escaped cells, then the layout.
  kj::Vector<kj::Array<kj::String>> table;
  for (auto& row : rows) {
    table.add(KJ_MAP(c, row.cells()) { return escapeField(c.text); });
  }
  KJ_DEFER(for (auto& r : table) for (auto& s : r) wipe(s));
  if (format == Format::TSV || !terminal) {
    if (format == Format::TSV && rows.size() > 0) {
      auto cells = rows[0].cells();
      for (auto i : kj::indices(cells)) fprintf(out, "%s%s", i ? "\t" : "", cells[i].key.cStr());
      fputc('\n', out);
    }
    for (auto& r : table) {
      for (auto i : kj::indices(r)) fprintf(out, "%s%s", i ? "\t" : "", r[i].cStr());
      fputc('\n', out);
    }
    return;
  }
  if (rows.size() == 0) return;
  auto cells = rows[0].cells();
  auto widths = KJ_MAP(c, cells) {
    return displayWidth(c.header);
  };
  for (auto& r : table) {
    for (auto i : kj::indices(r)) widths[i] = kj::max(widths[i], displayWidth(r[i]));
  }
  auto line = [&](auto&& at) {
    for (auto i : kj::indices(widths)) {
      kj::StringPtr s = at(i);
      bool last = i + 1 == widths.size();
      fputs(s.cStr(), out);
      if (!last) {
        for (size_t k = displayWidth(s); k < widths[i] + 2; k++) fputc(' ', out);
      }
    }
    fputc('\n', out);
  };
  line([&](size_t i) { return cells[i].header; });
  for (auto& r : table) line([&](size_t i) -> kj::StringPtr { return r[i]; });
}

}  // namespace credvault::ctl
