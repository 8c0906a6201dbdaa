package dev.danlu.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** conf/gpu-discovery.sh against a fake nvidia-smi on PATH. */
class GpuDiscoveryScriptTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  static Path script() {
    return Path.of(System.getProperty("danlu.repo.dir", ".."), "conf", "gpu-discovery.sh");
  }

  /** Writes {@code bin/nvidia-smi} that checks its arguments and prints {@code lines}. */
  static Path fakeNvidiaSmi(Path dir, String lines) throws Exception {
    Path bin = Files.createDirectories(dir.resolve("bin"));
    Path smi = bin.resolve("nvidia-smi");
    Files.writeString(
        smi,
        "#!/bin/sh\n"
            + "[ \"$1\" = \"--query-gpu=index\" ] && [ \"$2\" = \"--format=csv,noheader\" ]"
            + " || { echo \"unexpected args $*\" >&2; exit 9; }\n"
            + "printf '"
            + lines
            + "'\n");
    Files.setPosixFilePermissions(smi, PosixFilePermissions.fromString("rwxr-xr-x"));
    return bin;
  }

  private record Out(int exit, String stdout, String stderr) {}

  private static Out run(Path bin, Map<String, String> env) throws Exception {
    ProcessBuilder pb = new ProcessBuilder("bash", script().toString());
    pb.environment().put("PATH", (bin == null ? "" : bin + ":") + "/usr/bin:/bin");
    pb.environment().remove("DANLU_GPU_DISCOVERY_ONLY");
    pb.environment().putAll(env);
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    return new Out(p.waitFor(), out, err);
  }

  private static List<String> addresses(String json) throws Exception {
    JsonNode n = JSON.readTree(json);
    assertEquals("gpu", n.get("name").asText());
    return JSON.convertValue(
        n.get("addresses"),
        JSON.getTypeFactory().constructCollectionType(List.class, String.class));
  }

  @Test
  void printsSparkResourceJsonWithStringAddresses() throws Exception {
    Out o = run(fakeNvidiaSmi(tmp, "0\\n1\\n 3 \\n"), Map.of());
    assertEquals(0, o.exit, o.stderr);
    assertEquals("{\"name\":\"gpu\",\"addresses\":[\"0\",\"1\",\"3\"]}", o.stdout.trim());
    assertEquals(List.of("0", "1", "3"), addresses(o.stdout));
  }

  @Test
  void restrictsToTheIndicesThisWorkerOwns() throws Exception {
    Out o = run(fakeNvidiaSmi(tmp, "0\\n1\\n2\\n3\\n"), Map.of("DANLU_GPU_DISCOVERY_ONLY", "1,3"));
    assertEquals(0, o.exit, o.stderr);
    assertEquals(List.of("1", "3"), addresses(o.stdout));
  }

  @Test
  void noGpusIsAnEmptyList() throws Exception {
    Out o = run(fakeNvidiaSmi(tmp, ""), Map.of());
    assertEquals(0, o.exit, o.stderr);
    assertEquals(List.of(), addresses(o.stdout));
  }

  @Test
  void missingNvidiaSmiFailsWithAReason() throws Exception {
    Out o = run(null, Map.of());
    assertTrue(o.exit != 0);
    assertTrue(o.stderr.contains("nvidia-smi not found on PATH"), o.stderr);
  }

  @Test
  void garbageFromNvidiaSmiIsRejected() throws Exception {
    Out o = run(fakeNvidiaSmi(tmp, "NVIDIA-SMI has failed\\n"), Map.of());
    assertTrue(o.exit != 0);
    assertTrue(o.stderr.contains("unexpected nvidia-smi output line"), o.stderr);
  }
}
