package dev.danlu.data.tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs the reference SentencePiece C++ tools ({@code spm_encode}/{@code spm_decode}, Debian package
 * {@code sentencepiece}) as subprocesses. They read line by line (split on '\n' only), so inputs
 * here are lists of lines without '\n'.
 */
final class SpmReference {
  private SpmReference() {}

  static void assumeInstalled() {
    dev.danlu.testkit.Prereq.commands("sentencepiece", "spm_encode", "spm_decode");
  }

  static boolean onPath(String tool) {
    return dev.danlu.testkit.Prereq.onPath(tool);
  }

  /** {@code spm_encode --output_format=id}: one int[] per input line. */
  static List<int[]> encode(Path model, List<String> lines, Path workDir) {
    List<String> out = run(workDir, lines, "spm_encode", "--model=" + model, "--output_format=id");
    if (out.size() != lines.size()) {
      throw new IllegalStateException(
          "spm_encode wrote " + out.size() + " lines for " + lines.size() + " input lines");
    }
    List<int[]> ids = new ArrayList<>(out.size());
    for (String line : out) {
      ids.add(
          line.isEmpty()
              ? new int[0]
              : java.util.Arrays.stream(line.split(" ")).mapToInt(Integer::parseInt).toArray());
    }
    return ids;
  }

  /** {@code spm_decode --input_format=id}: one string per id sequence. */
  static List<String> decode(Path model, List<int[]> ids, Path workDir) {
    List<String> lines = new ArrayList<>();
    for (int[] seq : ids) {
      StringBuilder sb = new StringBuilder();
      for (int id : seq) {
        sb.append(sb.length() == 0 ? "" : " ").append(id);
      }
      lines.add(sb.toString());
    }
    return run(workDir, lines, "spm_decode", "--model=" + model, "--input_format=id");
  }

  private static List<String> run(Path workDir, List<String> lines, String... command) {
    byte[] in = (String.join("\n", lines) + "\n").getBytes(StandardCharsets.UTF_8);
    return splitLines(new String(runRaw(workDir, in, command), StandardCharsets.UTF_8));
  }

  /** Runs {@code command} with {@code input} as stdin and returns its stdout bytes. */
  static byte[] runRaw(Path workDir, byte[] input, String... command) {
    try {
      Path in = Files.createTempFile(workDir, "spm-in", ".txt");
      Path out = Files.createTempFile(workDir, "spm-out", ".txt");
      Path err = Files.createTempFile(workDir, "spm-err", ".txt");
      Files.write(in, input);
      Process p =
          new ProcessBuilder(command)
              .redirectInput(in.toFile())
              .redirectOutput(out.toFile())
              .redirectError(err.toFile())
              .start();
      try {
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
          throw new IllegalStateException(command[0] + " did not finish in 120 s");
        }
      } finally {
        p.destroyForcibly();
      }
      if (p.exitValue() != 0) {
        throw new IllegalStateException(
            command[0] + " failed (" + p.exitValue() + "): " + Files.readString(err));
      }
      return Files.readAllBytes(out);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Splits on '\n' only (a lone '\r' is part of a line for spm_encode). */
  static List<String> splitLines(String text) {
    List<String> lines = new ArrayList<>();
    int start = 0;
    for (int i = 0; i < text.length(); i++) {
      if (text.charAt(i) == '\n') {
        lines.add(text.substring(start, i));
        start = i + 1;
      }
    }
    if (start < text.length()) {
      lines.add(text.substring(start));
    }
    return lines;
  }
}
