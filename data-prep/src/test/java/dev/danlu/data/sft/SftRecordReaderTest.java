package dev.danlu.data.sft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Both layouts, and every kind of bad record named by file and position. */
class SftRecordReaderTest {
  static List<SftRecordReader.Item> read(String text, String name) throws IOException {
    List<SftRecordReader.Item> out = new ArrayList<>();
    try (SftRecordReader r =
        SftRecordReader.open(
            new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)), name)) {
      for (SftRecordReader.Item i = r.next(); i != null; i = r.next()) {
        out.add(i);
      }
    }
    return out;
  }

  @Test
  void jsonArrayWithOptionalInput() throws IOException {
    List<SftRecordReader.Item> items =
        read(
            "\uFEFF [ {\"instruction\":\"a\",\"input\":\"b\",\"output\":\"c\"},\n"
                + " {\"instruction\":\"d\",\"output\":\"e\",\"extra\":1},"
                + " {\"instruction\":\"f\",\"input\":null,\"output\":\"\"} ]\n",
            "x.json");
    assertEquals(3, items.size());
    assertEquals(new SftRecord("a", "b", "c"), items.get(0).record());
    assertEquals(new SftRecord("d", "", "e"), items.get(1).record());
    assertEquals(new SftRecord("f", "", ""), items.get(2).record());
    assertEquals(List.of(0L, 1L, 2L), items.stream().map(SftRecordReader.Item::index).toList());
  }

  @Test
  void jsonLinesNumberedByLineSkippingBlankLines() throws IOException {
    List<SftRecordReader.Item> items =
        read(
            "{\"instruction\":\"a\",\"output\":\"b\"}\n\n  \n{\"instruction\":\"c\",\"output\":\"d\"}",
            "x.json");
    assertEquals(2, items.size());
    assertEquals(1, items.get(0).index());
    assertEquals(4, items.get(1).index());
    assertEquals(new SftRecord("c", "", "d"), items.get(1).record());
  }

  @Test
  void badRecordsInJsonLinesAreNamedAndSkippable() throws IOException {
    List<SftRecordReader.Item> items =
        read(
            String.join(
                "\n",
                "{\"instruction\":\"ok\",\"output\":\"ok\"}",
                "{\"instruction\":\"no output\"}",
                "{\"output\":\"no instruction\"}",
                "{\"instruction\":3,\"output\":\"x\"}",
                "{\"instruction\":\"x\",\"input\":[1],\"output\":\"x\"}",
                "{\"instruction\":\"x\",\"output\":null}",
                "{\"instruction\": \"broken",
                "[1,2]",
                "{\"instruction\":\"last\",\"output\":\"ok\"}"),
            "data/a.jsonl");
    assertEquals(9, items.size());
    assertEquals(null, items.get(0).error());
    assertEquals(
        "data/a.jsonl: line 2: missing \"output\" (keys: instruction)", items.get(1).error());
    assertTrue(items.get(2).error().startsWith("data/a.jsonl: line 3: missing \"instruction\""));
    assertEquals(
        "data/a.jsonl: line 4: \"instruction\" is a number, not a string", items.get(3).error());
    assertEquals("data/a.jsonl: line 5: \"input\" is an array, not a string", items.get(4).error());
    assertEquals("data/a.jsonl: line 6: \"output\" is null, not a string", items.get(5).error());
    assertTrue(
        items.get(6).error().startsWith("data/a.jsonl: line 7: invalid JSON"),
        items.get(6).error());
    assertTrue(items.get(7).error().contains("line 8: expected a JSON object, found an array"));
    assertEquals(new SftRecord("last", "", "ok"), items.get(8).record());
  }

  @Test
  void badRecordInArrayNamesItsIndex() throws IOException {
    List<SftRecordReader.Item> items =
        read(
            "[{\"instruction\":\"a\",\"output\":\"b\"}, {\"instruction\":\"a\",\"output\":7}]",
            "b.json");
    assertEquals("b.json: record 1: \"output\" is a number, not a string", items.get(1).error());
  }

  @Test
  void invalidJsonInsideAnArrayIsFatalAndNamesTheRecord() {
    SftFormatException e =
        assertThrows(
            SftFormatException.class,
            () ->
                read(
                    "[{\"instruction\":\"a\",\"output\":\"b\"},\n"
                        + " {\"instruction\":\"a\",\"output\":\"b\"},\n"
                        + " {\"instruction\":\"a\" \"output\":\"b\"}]",
                    "c.json"));
    assertTrue(
        e.getMessage().startsWith("c.json: record 2: invalid JSON at line 3"), e.getMessage());
    e =
        assertThrows(
            SftFormatException.class,
            () -> read("[{\"instruction\":\"a\",\"output\":\"b\"}", "d.json"));
    assertTrue(e.getMessage().startsWith("d.json: record 1: invalid JSON"), e.getMessage());
  }

  @Test
  void emptyFileHasNoRecords() throws IOException {
    assertEquals(0, read("", "e.jsonl").size());
    assertEquals(0, read("[]", "e.json").size());
  }
}
