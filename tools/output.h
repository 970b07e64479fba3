// credvaultctl — what commands print: one model (rows of typed cells), three formats.
//
//   json  the SuperOffice names (PublicValue, ValidTo, …), one object or an array; written
//         with base::JsonWriter, so every string is escaped.
//   tsv   a header line of the same names, then one line per row; a backslash, tab, newline
//         or carriage return inside a value is written \\, \t, \n, \r, so every row is one
//         line and every column one field.
//   text  for people: on a terminal, upper-case headers and columns aligned; otherwise the
//         rows as in tsv without the header (the shape `get` always printed). Values are
//         escaped as in tsv, so a comment with a newline cannot forge a row.
//
// Rows may hold secrets (`get`): every string is wiped when the row is destroyed.

#pragma once

#include <stdint.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <stdio.h>

namespace credvault::ctl {

enum class Format { TEXT, JSON, TSV };

class Row {
 public:
  Row() = default;
  Row(Row&&) = default;
  Row& operator=(Row&&) = default;
  ~Row();

  // `key` is the JSON member and TSV header, `header` the text header; both must be
  // literals (they are kept as pointers).
  Row& str(kj::StringPtr key, kj::StringPtr header, kj::ArrayPtr<const char> value);
  Row& str(kj::StringPtr key, kj::StringPtr header, const char* value) {
    return str(key, header, kj::StringPtr(value));
  }
  // A string that JSON shows as null and text as `shown` when absent.
  Row& maybeStr(kj::StringPtr key, kj::StringPtr header, kj::Maybe<kj::ArrayPtr<const char>> value,
                kj::StringPtr shown);
  Row& num(kj::StringPtr key, kj::StringPtr header, int64_t value);
  Row& boolean(kj::StringPtr key, kj::StringPtr header, bool value);
  // A date in .NET ticks: JSON always the ISO 8601 UTC text ("0001-01-01T00:00:00Z" when open,
  // as SuperOffice writes DateTime.MinValue), text and TSV "-" when open.
  Row& date(kj::StringPtr key, kj::StringPtr header, int64_t ticks);
  // A time that may be absent (token expiry "never"): JSON null, text `shown`.
  Row& maybeDate(kj::StringPtr key, kj::StringPtr header, int64_t ticks, kj::StringPtr shown);

  struct Cell {
    kj::StringPtr key;
    kj::StringPtr header;
    enum class Kind : uint8_t { STRING, NUMBER, BOOLEAN, NUL } kind;
    kj::String json;  // STRING: the raw value; otherwise the JSON literal
    kj::String text;  // raw (unescaped) text for text and TSV
  };
  kj::ArrayPtr<const Cell> cells() const { return cells_; }

 private:
  kj::Vector<Cell> cells_;
};

// Backslash, tab, newline and carriage return escaped (and other control characters as \xHH).
kj::String escapeField(kj::ArrayPtr<const char> value);

// Prints `rows` to `out`. `single`: JSON prints the one row as an object, not an array.
// `terminal`: whether `out` is a terminal (text format only).
void printRows(FILE* out, Format format, bool terminal, kj::ArrayPtr<const Row> rows,
               bool single = false);

}  // namespace credvault::ctl
