package dev.danlu.train.eval;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A benchmark CSV read the way the reference scripts see it through {@code pandas.read_csv} with
 * its defaults, and each cell as the text {@code f"{line[col]}"} puts into the prompt:
 *
 * <ul>
 *   <li>RFC 4180 fields (quotes, doubled quotes, newlines inside quotes), blank lines skipped, a
 *       UTF-8 byte-order mark dropped; the first line is the header;
 *   <li>pandas' NA strings ({@code "", "NA", "N/A", "NaN", "null", ...}) become NaN, which a prompt
 *       shows as {@code nan} — even in a text column;
 *   <li>per column, type inference over all rows: all integers (no NaN) stay integers ({@code
 *       "007"} → {@code 7}); integers and floats, or integers with NaN, become float64 and print as
 *       Python's {@code repr} ({@code "1.50"} → {@code 1.5}, {@code "3"} → {@code 3.0}, {@code
 *       1e-05}, {@code 1e+16}); all {@code True}/{@code False} spellings become {@code True} /
 *       {@code False}; anything else stays text.
 * </ul>
 *
 * Not reproduced: integers beyond int64 (pandas makes them uint64 or text; here text), and
 * whitespace around numbers (pandas' C parser tolerates some; here such a cell is text).
 */
public final class McCsv {
  /**
   * pandas 1.5's default {@code na_values} (Debian 12's python3-pandas, the oracle of the tests);
   * pandas 2.0 added {@code "None"}, which this list leaves as text.
   */
  static final Set<String> NA =
      Set.of(
          "",
          "#N/A",
          "#N/A N/A",
          "#NA",
          "-1.#IND",
          "-1.#QNAN",
          "-NaN",
          "-nan",
          "1.#IND",
          "1.#QNAN",
          "<NA>",
          "N/A",
          "NA",
          "NULL",
          "NaN",
          "n/a",
          "nan",
          "null");

  private static final Pattern INT = Pattern.compile("[+-]?[0-9]+");
  private static final Pattern FLOAT =
      Pattern.compile(
          "[+-]?([0-9]+\\.?[0-9]*([eE][+-]?[0-9]+)?|\\.[0-9]+([eE][+-]?[0-9]+)?"
              + "|(?i:inf|infinity))");
  private static final Set<String> TRUE = Set.of("True", "TRUE", "true");
  private static final Set<String> FALSE = Set.of("False", "FALSE", "false");

  private final Path file;
  private final List<String> header;
  private final List<String[]> rows; // formatted cells
  private final List<Integer> lines; // 1-based line of each row in the file

  private McCsv(Path file, List<String> header, List<String[]> rows, List<Integer> lines) {
    this.file = file;
    this.header = header;
    this.rows = rows;
    this.lines = lines;
  }

  public Path file() {
    return file;
  }

  public List<String> header() {
    return header;
  }

  public int rows() {
    return rows.size();
  }

  /** The file line a data row starts on (1-based; the header is line 1). */
  public int line(int row) {
    return lines.get(row);
  }

  /** Index of {@code name} in the header, -1 if absent. */
  public int column(String name) {
    return header.indexOf(name);
  }

  /** Cell (row, col) as the prompt shows it. */
  public String cell(int row, int col) {
    return rows.get(row)[col];
  }

  /** Reads and formats {@code file}; a malformed file fails naming it and the line. */
  public static McCsv read(Path file) throws IOException {
    String text = Files.readString(file, StandardCharsets.UTF_8);
    if (text.startsWith("\uFEFF")) {
      text = text.substring(1);
    }
    List<List<String>> records = new ArrayList<>();
    List<Integer> lineOf = new ArrayList<>();
    parse(file, text, records, lineOf);
    if (records.isEmpty()) {
      throw new IOException(file + ": empty file (no header line)");
    }
    List<String> header = records.get(0);
    int width = header.size();
    List<String[]> raw = new ArrayList<>();
    List<Integer> lines = new ArrayList<>();
    for (int r = 1; r < records.size(); r++) {
      List<String> rec = records.get(r);
      if (rec.size() > width) {
        throw new IOException(
            file
                + " line "
                + lineOf.get(r)
                + ": "
                + rec.size()
                + " fields but the header has "
                + width);
      }
      String[] cells = new String[width];
      for (int c = 0; c < width; c++) {
        cells[c] = c < rec.size() ? rec.get(c) : ""; // pandas fills short rows with NaN
      }
      raw.add(cells);
      lines.add(lineOf.get(r));
    }
    List<String[]> formatted = new ArrayList<>();
    for (int r = 0; r < raw.size(); r++) {
      formatted.add(new String[width]);
    }
    for (int c = 0; c < width; c++) {
      formatColumn(raw, c, formatted);
    }
    return new McCsv(file, List.copyOf(header), formatted, lines);
  }

  /** Infers column {@code c}'s dtype as pandas does and writes each cell's text. */
  private static void formatColumn(List<String[]> raw, int c, List<String[]> out) {
    boolean anyNa = false;
    boolean allInt = true;
    boolean allNumber = true;
    boolean allBool = true;
    int values = 0;
    for (String[] row : raw) {
      String v = row[c];
      if (NA.contains(v)) {
        anyNa = true;
        continue;
      }
      values++;
      boolean isInt = INT.matcher(v).matches() && fitsLong(v);
      allInt &= isInt;
      allNumber &= isInt || FLOAT.matcher(v).matches();
      allBool &= TRUE.contains(v) || FALSE.contains(v);
    }
    for (int r = 0; r < raw.size(); r++) {
      String v = raw.get(r)[c];
      String text;
      if (NA.contains(v)) {
        text = "nan";
      } else if (values > 0 && allInt && !anyNa) {
        text = Long.toString(Long.parseLong(v.startsWith("+") ? v.substring(1) : v));
      } else if (values > 0 && allNumber) {
        text = pythonRepr(Double.parseDouble(v));
      } else if (values > 0 && allBool) {
        text = TRUE.contains(v) ? "True" : "False";
      } else {
        text = v;
      }
      out.get(r)[c] = text;
    }
  }

  private static boolean fitsLong(String v) {
    try {
      Long.parseLong(v.startsWith("+") ? v.substring(1) : v);
      return true;
    } catch (NumberFormatException e) {
      return false;
    }
  }

  /**
   * Python's {@code repr(float)}: the shortest digits that read back to the same double, in fixed
   * notation when the exponent is in [-4, 16), else scientific with a signed two-digit exponent.
   */
  static String pythonRepr(double d) {
    if (Double.isNaN(d)) {
      return "nan";
    }
    if (Double.isInfinite(d)) {
      return d > 0 ? "inf" : "-inf";
    }
    if (d == 0) {
      return (1 / d < 0) ? "-0.0" : "0.0";
    }
    BigDecimal b = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
    String digits = b.unscaledValue().toString();
    int exp = digits.length() - 1 - b.scale(); // decimal exponent of the first digit
    String sign = d < 0 ? "-" : "";
    if (exp >= -4 && exp < 16) {
      String plain = b.toPlainString();
      return sign + (plain.contains(".") ? plain : plain + ".0");
    }
    String mant = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
    String e = String.format("%02d", Math.abs(exp));
    return sign + mant + "e" + (exp < 0 ? "-" : "+") + e;
  }

  /** RFC 4180 records with the line each starts on; blank lines are skipped. */
  private static void parse(
      Path file, String text, List<List<String>> records, List<Integer> lineOf) throws IOException {
    int i = 0;
    int line = 1;
    int n = text.length();
    while (i < n) {
      // a blank line (pandas skip_blank_lines)
      if (text.charAt(i) == '\n' || text.charAt(i) == '\r') {
        i += text.startsWith("\r\n", i) ? 2 : 1;
        line++;
        continue;
      }
      int startLine = line;
      List<String> rec = new ArrayList<>();
      StringBuilder field = new StringBuilder();
      boolean quoted = false;
      boolean fieldStart = true;
      while (true) {
        if (i >= n) {
          if (quoted) {
            throw new IOException(
                file + " line " + startLine + ": a quoted field is not closed before the end");
          }
          rec.add(field.toString());
          break;
        }
        char ch = text.charAt(i);
        if (quoted) {
          if (ch == '"') {
            if (i + 1 < n && text.charAt(i + 1) == '"') {
              field.append('"');
              i += 2;
            } else {
              quoted = false;
              i++;
            }
          } else {
            if (ch == '\n') {
              line++;
            }
            field.append(ch);
            i++;
          }
          continue;
        }
        if (ch == '"' && fieldStart) {
          quoted = true;
          fieldStart = false;
          i++;
        } else if (ch == ',') {
          rec.add(field.toString());
          field.setLength(0);
          fieldStart = true;
          i++;
        } else if (ch == '\n' || ch == '\r') {
          rec.add(field.toString());
          i += text.startsWith("\r\n", i) ? 2 : 1;
          line++;
          break;
        } else {
          field.append(ch);
          fieldStart = false;
          i++;
        }
      }
      records.add(rec);
      lineOf.add(startLine);
    }
  }
}
