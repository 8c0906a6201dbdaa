package dev.danlu.data.shard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reads a shard with an independent Arrow implementation (the {@code apache-arrow} npm package,
 * installed by scripts/fetch-corpora.sh) and checks rows, values and metadata.
 */
class NodeArrowReadBackTest {
  @TempDir Path dir;

  /** Path of node_modules holding apache-arrow, or a skip naming what is missing. */
  static Path nodeModules() {
    dev.danlu.testkit.Prereq.commands("nodejs", "node");
    return dev.danlu.testkit.Prereq.cached("corpora/node/node_modules/apache-arrow").getParent();
  }

  /** Runs node on {@code script} with arguments; returns stdout parsed as JSON. */
  static JsonNode node(Path nodeModules, String script, Path dir, String... args) throws Exception {
    Path js = dir.resolve("read.js");
    Files.writeString(js, script);
    List<String> cmd = new java.util.ArrayList<>(List.of("node", js.toString()));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(false);
    pb.environment().put("NODE_PATH", nodeModules.toString());
    Process p;
    try {
      p = pb.start();
    } catch (java.io.IOException e) {
      assumeTrue(false, dev.danlu.testkit.Prereq.SETUP + " node not runnable: " + e.getMessage());
      throw e;
    }
    try {
      byte[] out = p.getInputStream().readAllBytes();
      byte[] err = p.getErrorStream().readAllBytes();
      assertEquals(true, p.waitFor(60, TimeUnit.SECONDS), "node timed out");
      assertEquals(0, p.exitValue(), "node failed: " + new String(err, StandardCharsets.UTF_8));
      return new ObjectMapper().readTree(out);
    } finally {
      p.destroyForcibly();
    }
  }

  static final String READER_JS =
      """
      const fs = require("fs");
      const { tableFromIPC } = require("apache-arrow");
      const t = tableFromIPC(fs.readFileSync(process.argv[2]));
      const col = t.getChild("input_ids");
      const rows = [];
      for (let i = 0; i < t.numRows; i++) rows.push(Array.from(col.get(i).toArray()));
      const md = {};
      for (const [k, v] of t.schema.metadata) md[k] = v;
      const f = t.schema.fields[0];
      console.log(JSON.stringify({ numRows: t.numRows, listSize: f.type.listSize,
        childType: String(f.type.children[0].type), metadata: md, rows }));
      """;

  @Test
  void nodeApacheArrowReadsTheSameRowsAndMetadata() throws Exception {
    Path nm = nodeModules();
    ShardMeta meta = new ShardMeta(32, "ab".repeat(32), 1, 2, 7, Map.of("split", "train"));
    List<int[]> blocks = ShardRoundTripTest.randomBlocks(50, 32, 11);
    try (BufferAllocator root = new RootAllocator()) {
      ShardRoundTripTest.write(root, dir, "n", meta, blocks, 1000);
    }
    JsonNode r = node(nm, READER_JS, dir, dir.resolve("n-p000.arrow").toString());
    assertEquals(50, r.get("numRows").asInt());
    assertEquals(32, r.get("listSize").asInt());
    assertEquals("Int32", r.get("childType").asText());
    assertEquals("danlu-blocks", r.get("metadata").get("danlu.format").asText());
    assertEquals("32", r.get("metadata").get("danlu.block_size").asText());
    assertEquals("ab".repeat(32), r.get("metadata").get("danlu.tokenizer_sha256").asText());
    assertEquals("1", r.get("metadata").get("danlu.bos_id").asText());
    assertEquals("train", r.get("metadata").get("danlu.split").asText());
    for (int i = 0; i < 50; i++) {
      for (int j = 0; j < 32; j++) {
        assertEquals(
            blocks.get(i)[j], r.get("rows").get(i).get(j).asInt(), "row " + i + " col " + j);
      }
    }
  }
}
