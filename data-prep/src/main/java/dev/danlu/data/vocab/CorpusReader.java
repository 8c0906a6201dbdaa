package dev.danlu.data.vocab;

import dev.danlu.data.cli.UserError;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.LongConsumer;

/**
 * Reads one corpus file as {@code spm_train} reads its inputs: a sentence per '\n'-terminated line,
 * empty lines, lines over max_sentence_length bytes and lines holding U+2585 skipped. Unlike
 * spm_train, bytes that are not UTF-8 stop the run with the file and byte offset instead of being
 * read as U+FFFD. A big file is read in byte ranges by several tasks: a range holds the lines that
 * start in it. Lines can be sampled: a line is kept when its key ({@link #lineKey}, from the seed,
 * the file's key and the byte offset the line starts at) is at most a threshold, so the sample
 * depends on neither the task count, the ranges, nor the order files are read in.
 */
public final class CorpusReader {
  /** A file that is not valid UTF-8: names the file and the byte offset. */
  public static final class NotUtf8Exception extends IOException implements UserError {
    public NotUtf8Exception(String file, long offset) {
      super(
          file
              + ": bytes at offset "
              + offset
              + " are not valid UTF-8; convert the file to UTF-8 (e.g. iconv) or remove it from"
              + " --input");
    }
  }

  /** Line counters of one read. */
  public static final class Counts {
    public long lines;
    public long tooLong;
    public long reserved;
    public long kept;

    public void add(Counts o) {
      lines += o.lines;
      tooLong += o.tooLong;
      reserved += o.reserved;
      kept += o.kept;
    }
  }

  private final BpeSpec spec;
  private final SpmText text;

  /** A reader normalizing with the rules of {@code spec.normalization()} built in this JVM. */
  public CorpusReader(BpeSpec spec) {
    this(spec, Charsmap.forRule(spec.normalization()));
  }

  /**
   * @param charsmap the compiled rules to normalize with (the blob the model will carry)
   */
  public CorpusReader(BpeSpec spec, byte[] charsmap) {
    this.spec = spec;
    this.text = new SpmText(spec, charsmap);
  }

  /** The sampling key of a line: uniform over longs, keyed by seed, file key and line offset. */
  public static long lineKey(long seed, String fileKey, long lineOffset) {
    long h = 0xcbf29ce484222325L;
    for (byte b : fileKey.getBytes(StandardCharsets.UTF_8)) {
      h = (h ^ (b & 0xff)) * 0x100000001b3L;
    }
    return mix(mix(seed ^ h) + lineOffset);
  }

  private static long mix(long z) {
    z += 0x9e3779b97f4a7c15L;
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  /** Line callback: the decoded line and its key. */
  public interface LineSink {
    void accept(String line, long key);
  }

  /**
   * Calls {@code sink} for every line spm_train would read from {@code file}.
   *
   * @param fileKey the file's stable name for sampling (its path relative to the corpus root)
   */
  public Counts read(Path file, String fileKey, LineSink sink) throws IOException {
    return read(file, fileKey, 0, Long.MAX_VALUE, sink);
  }

  /**
   * Like {@link #read(Path, String, LineSink)} for the lines that start at a byte offset in {@code
   * [start, end)}: a line running past {@code end} is read whole, one starting before {@code start}
   * is left to the range before.
   */
  public Counts read(Path file, String fileKey, long start, long end, LineSink sink)
      throws IOException {
    Counts c = new Counts();
    CharsetDecoder dec =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    ByteArrayOutputStream line = new ByteArrayOutputStream(256);
    try (SeekableByteChannel ch = Files.newByteChannel(file)) {
      long offset = 0;
      if (start > 0) {
        // the line holding byte start-1 belongs to the range before; ours start after its '\n'
        ch.position(start - 1);
        offset = start - 1;
      }
      boolean skipping = start > 0;
      long lineStart = start;
      InputStream in = new BufferedInputStream(Channels.newInputStream(ch), 1 << 16);
      byte[] buf = new byte[1 << 16];
      int n;
      reading:
      while ((n = in.read(buf)) > 0) {
        int from = 0;
        for (int i = 0; i < n; i++) {
          if (buf[i] != '\n') {
            continue;
          }
          if (skipping) {
            skipping = false;
          } else {
            line.write(buf, from, i - from);
            emit(line, file, lineStart, fileKey, dec, c, sink);
            line.reset();
          }
          from = i + 1;
          lineStart = offset + i + 1;
          if (lineStart >= end) {
            break reading;
          }
        }
        if (!skipping) {
          line.write(buf, from, n - from);
        }
        offset += n;
      }
      if (line.size() > 0 && !skipping && lineStart < end) {
        emit(line, file, lineStart, fileKey, dec, c, sink);
      }
    }
    return c;
  }

  private void emit(
      ByteArrayOutputStream bytes,
      Path file,
      long lineStart,
      String fileKey,
      CharsetDecoder dec,
      Counts c,
      LineSink sink)
      throws IOException {
    byte[] b = bytes.toByteArray();
    ByteBuffer in = ByteBuffer.wrap(b);
    CharBuffer out = CharBuffer.allocate(b.length);
    dec.reset();
    CoderResult r = dec.decode(in, out, true);
    if (r.isError()) {
      throw new NotUtf8Exception(file.toString(), lineStart + in.position());
    }
    dec.flush(out);
    String s = out.flip().toString();
    if (s.isEmpty()) {
      return;
    }
    c.lines++;
    if (b.length > spec.maxSentenceLength()) {
      c.tooLong++;
      return;
    }
    if (!text.accepts(s, b.length)) {
      c.reserved++;
      return;
    }
    c.kept++;
    sink.accept(s, lineKey(spec.seed(), fileKey, lineStart));
  }

  /** Adds the words of {@code line} to {@code counts} (normalized as spm_train normalizes). */
  public void countWords(String line, Map<String, Long> counts) {
    String norm = text.normalize(line);
    SpmText.words(norm, w -> counts.merge(w, 1L, Long::sum));
  }

  /** Every kept line's sampling key in a byte range of {@code file} goes to {@code keys}. */
  public Counts keys(Path file, String fileKey, long start, long end, LongConsumer keys)
      throws IOException {
    return read(file, fileKey, start, end, (l, k) -> keys.accept(k));
  }
}
