package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.comm.RankThreads;
import dev.danlu.train.comm.TcpRingCommunicator;
import dev.danlu.train.comm.TcpRingOptions;
import dev.danlu.train.config.TrainConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * overlap_comm on (gradients reduce-scattered region by region during the last micro-batch's
 * backward) trains bit-identically to overlap_comm off (one reduce-scatter after backward), on
 * in-process ranks and on a real TCP ring, with embed_tokens and lm_head trained so the regions are
 * uneven and cut the partitions.
 *
 * <p>Bitwise holds on any CPU: both runs make the same products on the same shapes with the same
 * thread count, and every collective combines each element in an order fixed by the ring (rank
 * order), not by timing; overlap changes only when a region is sent.
 */
class OverlapCommTest {
  @TempDir static Path tmp;
  static Path model;
  static Path data;

  @BeforeAll
  static void setUp() throws Exception {
    model = TinyRun.writeModel(tmp.resolve("model"), TinyRun.tinyConfig(), 11);
    data = TinyRun.writeTinyDataset(tmp.resolve("data"), 40, 4);
  }

  /** overlap_comm on is the default: only "off" is spelled out. */
  private static TrainConfig cfg(String name, boolean overlap) {
    List<String> o =
        new java.util.ArrayList<>(
            List.of("max_steps=4", "gradient_accumulation_steps=2", "reduce_bucket_mb=1"));
    if (!overlap) {
      o.add("overlap_comm=false");
    }
    return TinyRun.config(model, data, tmp.resolve(name), o.toArray(new String[0]));
  }

  private static Map<String, float[]> adapter(String name) {
    return Ranks.tensors(tmp.resolve(name).resolve("pt_lora_model/adapter_model.safetensors"));
  }

  /** Whether the run's closing line reports regions reduced while backward ran. */
  private static boolean engaged(String log) {
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile("overlap_comm: (\\d+) gradient regions").matcher(log);
    return m.find() && Long.parseLong(m.group(1)) > 0;
  }

  private static void assertSameBits(Map<String, float[]> a, Map<String, float[]> b) {
    assertEquals(a.keySet(), b.keySet());
    for (String k : a.keySet()) {
      assertArrayEquals(a.get(k), b.get(k), k + " differs between overlap_comm on and off");
    }
  }

  @Test
  void overlapOnEqualsOffBitwiseOnThreeLocalRanks() throws Exception {
    String log = Ranks.run(3, cfg("local-on", true));
    assertTrue(log.contains("overlap_comm true"), log);
    assertTrue(engaged(log), "no region was reduced during backward: " + log);
    String offLog = Ranks.run(3, cfg("local-off", false));
    assertTrue(offLog.contains("overlap_comm false"), offLog);
    assertSameBits(adapter("local-on"), adapter("local-off"));
  }

  @Test
  void overlapOnEqualsOffBitwiseOnTwoTcpRanks() throws Exception {
    TcpRingOptions opts = TcpRingOptions.defaults().withSliceBytes(256).withOpTimeoutMillis(60_000);
    for (boolean overlap : new boolean[] {true, false}) {
      String name = "tcp-" + overlap;
      TrainConfig c = cfg(name, overlap);
      List<TcpRingCommunicator> ring =
          RankThreads.tcpRing(2, "t".getBytes(StandardCharsets.UTF_8), opts);
      try {
        String text = Ranks.run(ring, c, null, TrainLoop.NO_HOOK);
        // the ring's zero-copy path: gradients in a direct buffer
        assertTrue(text.contains("overlap_comm " + overlap + ", direct gradients"), text);
        assertEquals(overlap, engaged(text), text);
      } finally {
        ring.forEach(TcpRingCommunicator::close);
      }
    }
    assertSameBits(adapter("tcp-true"), adapter("tcp-false"));
  }
}
