package dev.danlu.data.sft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** prep-pairs' records: both field layouts, and every kind of bad pair named by position. */
class PairRecordReaderTest {
  static List<SftRecordReader.Item> read(String text) throws IOException {
    List<SftRecordReader.Item> out = new ArrayList<>();
    try (SftRecordReader r =
        SftRecordReader.openPairs(
            new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)), "p.jsonl")) {
      for (SftRecordReader.Item i = r.next(); i != null; i = r.next()) {
        out.add(i);
      }
    }
    return out;
  }

  @Test
  void chosenRejectedAndLlamaFactoryOutputArray() throws IOException {
    List<SftRecordReader.Item> items =
        read(
            "{\"instruction\":\"a\",\"input\":\"b\",\"chosen\":\"c\",\"rejected\":\"d\"}\n"
                + "{\"instruction\":\"e\",\"input\":null,\"output\":[\"f\",\"g\"]}\n");
    assertEquals(new PairRecord("a", "b", "c", "d"), items.get(0).pair());
    assertEquals(new PairRecord("e", "", "f", "g"), items.get(1).pair());
    assertNull(items.get(0).record());
    assertEquals(new SftRecord("a", "b", "d"), items.get(0).pair().as("d"));
  }

  @Test
  void badPairsAreNamed() throws IOException {
    List<SftRecordReader.Item> items =
        read(
            String.join(
                "\n",
                "{\"instruction\":\"a\",\"chosen\":\"same\",\"rejected\":\"same\"}",
                "{\"instruction\":\"a\",\"chosen\":\"c\"}",
                "{\"instruction\":\"a\",\"output\":[\"only one\"]}",
                "{\"instruction\":\"a\",\"output\":\"not an array\"}",
                "{\"input\":\"x\",\"chosen\":\"c\",\"rejected\":\"d\"}",
                "{\"instruction\":\"a\",\"chosen\":1,\"rejected\":\"d\"}",
                "{\"instruction\":\"a\",\"output\":[\"x\",\"x\"]}"));
    assertEquals(7, items.size());
    for (SftRecordReader.Item i : items) {
      assertTrue(i.bad(), String.valueOf(i));
    }
    assertTrue(
        items.get(0).error().startsWith("p.jsonl: line 1: chosen and rejected are identical"));
    assertTrue(items.get(1).error().contains("line 2: missing \"rejected\""), items.get(1).error());
    assertTrue(items.get(2).error().contains("an array of 1"), items.get(2).error());
    assertTrue(items.get(3).error().contains("found a string"), items.get(3).error());
    assertTrue(items.get(4).error().contains("missing \"instruction\""), items.get(4).error());
    assertTrue(items.get(5).error().contains("\"chosen\" is a number"), items.get(5).error());
    assertTrue(items.get(6).error().contains("identical"), items.get(6).error());
  }
}
