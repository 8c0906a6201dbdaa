package dev.danlu.data.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code danlu tokenize} byte for byte against spm_encode/spm_decode on the same stdin. */
class TokenizeCliTest {
  @TempDir Path tmp;

  private record Result(int code, String out, String err) {}

  private static Result run(byte[] stdin, String... args) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        TokenizeCli.run(
            args,
            new ByteArrayInputStream(stdin),
            out,
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  /** Real Chinese lines plus '\r', invalid UTF-8, an empty line and no final newline. */
  private static byte[] input() throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (String line : TestTexts.sample(TestTexts.cache("corpora/chinese"), 3, 30)) {
      b.write((line + "\n").getBytes(StandardCharsets.UTF_8));
    }
    b.write("crlf line\r\n\n  spaces  \n".getBytes(StandardCharsets.UTF_8));
    b.write(new byte[] {'a', (byte) 0xff, 'b', (byte) 0xe2, (byte) 0x82, 'c', '\n'});
    b.write("emoji 😀 and no final newline".getBytes(StandardCharsets.UTF_8));
    return b.toByteArray();
  }

  @Test
  void idsAndPiecesEqualSpmEncodeByteForByte() throws IOException {
    SpmReference.assumeInstalled();
    Path model = TestTexts.shared("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    byte[] in = input();
    for (String format : new String[] {"id", "piece"}) {
      String expected =
          new String(
              SpmReference.runRaw(
                  tmp, in, "spm_encode", "--model=" + model, "--output_format=" + format),
              StandardCharsets.UTF_8);
      Result r =
          run(in, "--tokenizer", model.toString(), format.equals("id") ? "--ids" : "--pieces");
      assertEquals(0, r.code(), r.err());
      assertEquals(expected, r.out(), format);
    }
  }

  @Test
  void bosEosAndDecodeRoundTripLikeSpmDecode() throws IOException {
    SpmReference.assumeInstalled();
    Path model = TestTexts.shared("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    byte[] in = "子曰：学而时习之\nHello  world\n".getBytes(StandardCharsets.UTF_8);
    Result ids = run(in, "--tokenizer", model.toString());
    Result wrapped = run(in, "--tokenizer", model.toString(), "--bos", "--eos");
    String[] plain = ids.out().split("\n");
    String[] framed = wrapped.out().split("\n");
    for (int i = 0; i < plain.length; i++) {
      assertEquals("1 " + plain[i] + " 2", framed[i]);
    }
    byte[] idBytes = wrapped.out().getBytes(StandardCharsets.UTF_8);
    String expected =
        new String(
            SpmReference.runRaw(
                tmp, idBytes, "spm_decode", "--model=" + model, "--input_format=id"),
            StandardCharsets.UTF_8);
    Result decoded = run(idBytes, "--tokenizer", model.toString(), "--decode");
    assertEquals(0, decoded.code(), decoded.err());
    assertEquals(expected, decoded.out());
    assertEquals("子曰：学而时习之\nHello  world\n", decoded.out());
  }

  @Test
  void usageAndInputErrorsAreClear() throws IOException {
    Result none = run(new byte[0]);
    assertEquals(2, none.code());
    assertTrue(none.err().contains("Missing required option: '--tokenizer"), none.err());
    assertTrue(none.err().contains("Usage: danlu tokenize"), none.err());
    assertTrue(none.out().isEmpty(), none.out());
    Result bad = run(new byte[0], "--tokenizer", "x.model", "--frobnicate");
    assertEquals(2, bad.code());
    assertTrue(bad.err().contains("danlu tokenize: Unknown option: '--frobnicate'"), bad.err());
    Result help = run(new byte[0], "--help");
    assertEquals(0, help.code(), help.err());
    assertTrue(help.out().startsWith("Usage: danlu tokenize"), help.out());
    assertTrue(help.out().contains("--pieces"), help.out());
    assertEquals("", help.err());
    Path missing = tmp.resolve("missing.model");
    Result gone = run(new byte[0], "--tokenizer", missing.toString());
    assertEquals(1, gone.code());
    assertTrue(gone.err().startsWith("danlu tokenize: "), gone.err());
    assertTrue(gone.err().contains(missing.toString()), gone.err());
    assertFalse(gone.err().contains("\tat "), "no stack trace:\n" + gone.err());
    Path model = TestTexts.shared("fixtures/stories260K/tokenizer.model");
    Result notIds =
        run(
            "1 2\n3 x\n".getBytes(StandardCharsets.UTF_8),
            "--tokenizer",
            model.toString(),
            "--decode");
    assertEquals(1, notIds.code());
    assertTrue(notIds.err().contains("stdin line 2"), notIds.err());
    Result outOfRange =
        run("9999\n".getBytes(StandardCharsets.UTF_8), "--tokenizer", model.toString(), "--decode");
    assertEquals(1, outOfRange.code());
    assertTrue(outOfRange.err().contains("9999"), outOfRange.err());
  }
}
