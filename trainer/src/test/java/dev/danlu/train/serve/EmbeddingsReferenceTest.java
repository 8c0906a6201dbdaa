package dev.danlu.train.serve;

import static dev.danlu.train.serve.ServeFixture.JSON;
import static dev.danlu.train.serve.ServeFixture.json;
import static dev.danlu.train.serve.ServeFixture.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.testkit.Prereq;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code /v1/embeddings} on the real stories260K model against {@code embed_reference.py}: the
 * reference server's get_embedding() in plain float64 PyTorch with the SentencePiece tokenizer
 * (final-norm hidden states of BOS + the text, mean over tokens, L2-normalized).
 *
 * <p>Tolerance: danlu runs the forward in float32; one float32 dot product of K ≤ 172 terms rounds
 * by at most about K·2^-24 ≈ 1e-5 of its terms' scale (typically far less: errors of random sign
 * grow like √K), and the mean over tokens and the normalization only average and rescale, so 2e-5
 * absolute per component (the components are at most 1) bounds rounding (observed: ~1e-7), while a
 * wrong pooling (BOS left out, no normalization, the pre-norm state) moves them by 1e-2 or more.
 */
class EmbeddingsReferenceTest {
  @Test
  void embeddingsEqualTheReferenceServersInFloat64() throws Exception {
    Prereq.python("torch", "sentencepiece", "numpy", "pandas");
    Path dir = ServeFixture.modelDir();
    List<String> texts = List.of("Once upon a time", "The cat sat on the mat.", "小猫 ran");
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "/usr/bin/python3",
                Path.of("src/test/python/embed_reference.py").toAbsolutePath().toString(),
                "--model",
                dir.toString(),
                "--tokenizer",
                dir.resolve("tokenizer.model").toString()));
    cmd.addAll(texts);
    Path err = Files.createTempFile("embed-reference", ".err");
    Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
    JsonNode ref;
    try {
      byte[] out = p.getInputStream().readAllBytes();
      assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, Files.readString(err));
      ref = JSON.readTree(new String(out, StandardCharsets.UTF_8));
    } finally {
      p.destroyForcibly();
    }
    try (ApiServer s = ServeFixture.start(null, 2, 4, 512, 1 << 20)) {
      ObjectNode b = JSON.createObjectNode();
      texts.forEach(b.putArray("input")::add);
      JsonNode got = json(post(s, "/v1/embeddings", b.toString(), null));
      for (int i = 0; i < texts.size(); i++) {
        JsonNode e = got.at("/data/" + i + "/embedding");
        assertEquals(ref.get(i).size(), e.size());
        double worst = 0;
        for (int k = 0; k < e.size(); k++) {
          worst = Math.max(worst, Math.abs(ref.get(i).get(k).asDouble() - e.get(k).asDouble()));
        }
        assertTrue(worst < 2e-5, texts.get(i) + ": max difference " + worst);
        System.out.printf("embedding of %s: max |danlu - reference| %.2e%n", texts.get(i), worst);
      }
    }
  }
}
