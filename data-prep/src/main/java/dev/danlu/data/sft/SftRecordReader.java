package dev.danlu.data.sft;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PushbackInputStream;
import java.nio.charset.StandardCharsets;

/**
 * Streams {@code {instruction, input, output}} records from one file, in either layout:
 *
 * <ul>
 *   <li>a JSON array of objects (records are numbered by their 0-based index in the array);
 *   <li>JSON lines, one object per line (records are numbered by their 1-based line number; blank
 *       lines are ignored).
 * </ul>
 *
 * The layout is told by content, not by the file name: the first non-blank character {@code [}
 * means an array, anything else JSON lines (Hugging Face's {@code load_dataset("json")} also takes
 * both under either extension). Memory is one record at a time.
 *
 * <p>A record is <em>bad</em> when it is not an object, lacks {@code instruction} or {@code
 * output}, or has a non-string {@code instruction}, {@code input} or {@code output} ({@code input}
 * may be absent or null: empty). A JSON line that is not valid JSON is also a bad record. Bad
 * records come back from {@link #next()} with their error, so a caller may skip them; invalid JSON
 * inside an array cannot be skipped (the rest of the array cannot be found) and throws.
 */
public final class SftRecordReader implements Closeable {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * One record or one bad record.
   *
   * @param index 0-based index in the JSON array, or 1-based line number for JSON lines
   * @param record null for a bad record
   * @param error why the record is bad, naming file and position; null for a good record
   */
  public record Item(long index, SftRecord record, String error, PairRecord pair) {
    public Item(long index, SftRecord record, String error) {
      this(index, record, error, null);
    }

    public boolean bad() {
      return error != null;
    }
  }

  private final String name;
  private final boolean pairs; // preference pairs (prep-pairs) instead of instruction records
  private final boolean array;
  private final JsonParser parser; // array layout
  private final BufferedReader lines; // JSON lines layout
  private long index = -1;
  private boolean done;

  private SftRecordReader(String name, InputStream in, boolean pairs) throws IOException {
    this.name = name;
    this.pairs = pairs;
    PushbackInputStream pin = new PushbackInputStream(in, 4096);
    int first = firstNonBlank(pin);
    this.array = first == '[';
    if (array) {
      parser = JSON.getFactory().createParser(pin);
      lines = null;
      JsonToken t = next(parser);
      if (t != JsonToken.START_ARRAY) {
        throw new SftFormatException(name + ": expected a JSON array of records");
      }
    } else {
      parser = null;
      lines = new BufferedReader(new InputStreamReader(pin, StandardCharsets.UTF_8));
      index = 0;
    }
  }

  /** Reads records from {@code in} (closed with the reader); {@code name} is used in messages. */
  public static SftRecordReader open(InputStream in, String name) throws IOException {
    return open(in, name, false);
  }

  /**
   * Reads preference pairs ({@link Item#pair()}): {@code {instruction, input, chosen, rejected}} or
   * LLaMA-Factory's {@code {instruction, input, output: [chosen, rejected]}}. A pair is bad,
   * besides the instruction record's rules, when a response is missing or not a string, when {@code
   * output} is not an array of exactly two strings, or when chosen equals rejected (nothing to
   * prefer).
   */
  public static SftRecordReader openPairs(InputStream in, String name) throws IOException {
    return open(in, name, true);
  }

  private static SftRecordReader open(InputStream in, String name, boolean pairs)
      throws IOException {
    try {
      return new SftRecordReader(name, in, pairs);
    } catch (IOException | RuntimeException e) {
      in.close();
      throw e;
    }
  }

  /** True for the JSON array layout, false for JSON lines. */
  public boolean isArray() {
    return array;
  }

  /** How records of this file are numbered, e.g. {@code record 3} or {@code line 4}. */
  public String position(long index) {
    return (array ? "record " : "line ") + index;
  }

  /**
   * The next record, a bad record (with its error), or null at the end.
   *
   * @throws SftFormatException for invalid JSON inside a JSON array (not skippable)
   */
  public Item next() throws IOException {
    if (done) {
      return null;
    }
    return array ? nextInArray() : nextLine();
  }

  private Item nextInArray() throws IOException {
    long i = index + 1;
    JsonToken t = next(parser);
    if (t == JsonToken.END_ARRAY) {
      done = true;
      if (next(parser) != null) {
        throw new SftFormatException(
            name + ": invalid JSON: content after the end of the array" + at(parser));
      }
      return null;
    }
    if (t == null) {
      throw new SftFormatException(
          name + ": invalid JSON: the array is not closed (after record " + index + ")");
    }
    JsonNode node;
    try {
      node = parser.readValueAsTree();
    } catch (JsonProcessingException e) {
      throw new SftFormatException(
          name + ": record " + i + ": invalid JSON" + at(parser) + ": " + e.getOriginalMessage());
    }
    index = i;
    return check(node, i);
  }

  private Item nextLine() throws IOException {
    String line;
    do {
      line = lines.readLine();
      index++;
      if (line == null) {
        done = true;
        return null;
      }
    } while (line.isBlank());
    JsonNode node;
    try {
      node = JSON.readTree(line);
    } catch (JsonProcessingException e) {
      return new Item(
          index, null, name + ": line " + index + ": invalid JSON: " + e.getOriginalMessage());
    }
    return check(node, index);
  }

  private Item check(JsonNode node, long i) {
    String where = name + ": " + position(i) + ": ";
    if (node == null || !node.isObject()) {
      return new Item(
          i, null, where + "expected a JSON object, found " + kind(node) + " (record skipped)");
    }
    if (pairs) {
      return checkPair(node, i, where);
    }
    String instruction = node.has("instruction") ? null : "missing \"instruction\"";
    String output = node.has("output") ? null : "missing \"output\"";
    if (instruction != null || output != null) {
      return new Item(
          i, null, where + (instruction != null ? instruction : output) + " " + keys(node));
    }
    for (String field : new String[] {"instruction", "input", "output"}) {
      JsonNode v = node.get(field);
      boolean ok = v == null || v.isTextual() || (field.equals("input") && v.isNull());
      if (!ok) {
        return new Item(i, null, where + "\"" + field + "\" is " + kind(v) + ", not a string");
      }
    }
    JsonNode input = node.get("input");
    return new Item(
        i,
        new SftRecord(
            node.get("instruction").textValue(),
            input == null || input.isNull() ? "" : input.textValue(),
            node.get("output").textValue()),
        null);
  }

  private Item checkPair(JsonNode node, long i, String where) {
    if (!node.has("instruction")) {
      return new Item(i, null, where + "missing \"instruction\" " + keys(node));
    }
    for (String field : new String[] {"instruction", "input", "chosen", "rejected"}) {
      JsonNode v = node.get(field);
      boolean ok = v == null || v.isTextual() || (field.equals("input") && v.isNull());
      if (!ok) {
        return new Item(i, null, where + "\"" + field + "\" is " + kind(v) + ", not a string");
      }
    }
    String chosen;
    String rejected;
    if (node.has("chosen") || node.has("rejected")) {
      if (!node.has("chosen") || !node.has("rejected")) {
        return new Item(
            i,
            null,
            where
                + "missing \""
                + (node.has("chosen") ? "rejected" : "chosen")
                + "\": a pair needs both responses "
                + keys(node));
      }
      chosen = node.get("chosen").textValue();
      rejected = node.get("rejected").textValue();
    } else {
      JsonNode out = node.get("output");
      if (out == null) {
        return new Item(
            i,
            null,
            where
                + "missing \"chosen\"/\"rejected\" (or LLaMA-Factory's \"output\": [chosen,"
                + " rejected]) "
                + keys(node));
      }
      if (!out.isArray() || out.size() != 2 || !out.get(0).isTextual() || !out.get(1).isTextual()) {
        return new Item(
            i,
            null,
            where
                + "\"output\" must be an array of two strings [chosen, rejected], found "
                + (out.isArray() ? "an array of " + out.size() : kind(out)));
      }
      chosen = out.get(0).textValue();
      rejected = out.get(1).textValue();
    }
    if (chosen.equals(rejected)) {
      return new Item(i, null, where + "chosen and rejected are identical: nothing to prefer");
    }
    JsonNode input = node.get("input");
    return new Item(
        i,
        null,
        null,
        new PairRecord(
            node.get("instruction").textValue(),
            input == null || input.isNull() ? "" : input.textValue(),
            chosen,
            rejected));
  }

  private static String keys(JsonNode node) {
    StringBuilder sb = new StringBuilder("(keys:");
    node.fieldNames().forEachRemaining(k -> sb.append(' ').append(k));
    return sb.append(')').toString();
  }

  private static String kind(JsonNode v) {
    if (v == null || v.isMissingNode()) {
      return "nothing";
    }
    return switch (v.getNodeType()) {
      case NULL -> "null";
      case NUMBER -> "a number";
      case BOOLEAN -> "a boolean";
      case ARRAY -> "an array";
      case OBJECT -> "an object";
      case STRING -> "a string";
      default -> v.getNodeType().toString().toLowerCase(java.util.Locale.ROOT);
    };
  }

  private JsonToken next(JsonParser p) throws SftFormatException {
    try {
      return p.nextToken();
    } catch (JsonProcessingException e) {
      throw new SftFormatException(
          name
              + ": "
              + (index >= 0 ? "record " + (index + 1) + ": " : "")
              + "invalid JSON"
              + at(p)
              + ": "
              + e.getOriginalMessage());
    } catch (IOException e) {
      throw new SftFormatException(name + ": cannot read: " + e.getMessage());
    }
  }

  private static String at(JsonParser p) {
    JsonLocation l = p.currentLocation();
    return " at line " + l.getLineNr() + " column " + l.getColumnNr();
  }

  private static int firstNonBlank(PushbackInputStream in) throws IOException {
    byte[] buf = new byte[4096];
    int n = in.read(buf);
    if (n <= 0) {
      return -1;
    }
    in.unread(buf, 0, n);
    int i = 0;
    // UTF-8 byte order mark
    if (n >= 3 && (buf[0] & 0xff) == 0xEF && (buf[1] & 0xff) == 0xBB && (buf[2] & 0xff) == 0xBF) {
      in.skip(3);
      i = 3;
    }
    for (; i < n; i++) {
      int b = buf[i] & 0xff;
      if (b != ' ' && b != '\n' && b != '\r' && b != '\t') {
        return b;
      }
    }
    return ' ';
  }

  @Override
  public void close() throws IOException {
    if (parser != null) {
      parser.close();
    }
    if (lines != null) {
      lines.close();
    }
  }
}
