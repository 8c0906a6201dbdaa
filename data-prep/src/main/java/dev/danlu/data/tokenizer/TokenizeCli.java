package dev.danlu.data.tokenizer;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * {@code danlu tokenize}: stdin to stdout one line at a time, like {@code spm_encode} (and with
 * {@code --decode} like {@code spm_decode}), so its output can be diffed against the reference.
 * Lines end at '\n' only (a '\r' stays in the line) and invalid UTF-8 bytes become U+FFFD one byte
 * at a time, both as SentencePiece reads its input.
 */
public final class TokenizeCli {
  static final String USAGE =
      "usage: danlu tokenize --tokenizer <tokenizer.model|tokenizer.json> [--bos] [--eos]"
          + " [--ids|--pieces] [--decode]\n"
          + "  reads stdin line by line and writes one line per input line:\n"
          + "  --ids      token ids separated by spaces (default; = spm_encode --output_format=id)\n"
          + "  --pieces   pieces instead of ids (= spm_encode --output_format=piece)\n"
          + "  --bos/--eos  add the BOS/EOS id (pretraining encodes <s> line </s>)\n"
          + "  --decode   input lines are ids; write their text (= spm_decode --input_format=id)";

  private TokenizeCli() {}

  /** Runs on the process's stdin/stdout/stderr; returns the exit code. */
  public static int run(String[] args) throws IOException {
    return run(args, System.in, System.out, System.err);
  }

  /** Returns 0 on success, 1 on a runtime error, 2 on a usage error. */
  public static int run(String[] args, InputStream in, OutputStream stdout, PrintStream err)
      throws IOException {
    Path tokenizerPath = null;
    boolean bos = false;
    boolean eos = false;
    boolean pieces = false;
    boolean decode = false;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--tokenizer" -> {
          if (i + 1 == args.length) {
            return usage(err, "--tokenizer needs a path");
          }
          tokenizerPath = Path.of(args[++i]);
        }
        case "--bos" -> bos = true;
        case "--eos" -> eos = true;
        case "--ids" -> pieces = false;
        case "--pieces" -> pieces = true;
        case "--decode" -> decode = true;
        case "-h", "--help" -> {
          err.println(USAGE);
          return 0;
        }
        default -> {
          return usage(err, "unknown option '" + args[i] + "'");
        }
      }
    }
    if (tokenizerPath == null) {
      return usage(err, "--tokenizer is required");
    }
    TextTokenizer tokenizer;
    try {
      tokenizer = TextTokenizer.load(tokenizerPath);
    } catch (IOException e) {
      err.println("danlu tokenize: " + e.getMessage());
      return 1;
    }
    try (tokenizer) {
      OutputStream out = new BufferedOutputStream(stdout, 1 << 16);
      LineReader lines = new LineReader(in);
      StringBuilder sb = new StringBuilder();
      long lineNo = 0;
      for (String line = lines.next(); line != null; line = lines.next()) {
        lineNo++;
        sb.setLength(0);
        if (decode) {
          int[] ids;
          try {
            ids = parseIds(line);
            sb.append(tokenizer.decode(ids));
          } catch (IllegalArgumentException e) {
            out.flush();
            err.println("danlu tokenize: stdin line " + lineNo + ": " + e.getMessage());
            return 1;
          }
        } else {
          int[] ids = tokenizer.encode(line);
          if (bos) {
            append(sb, tokenizer, tokenizer.bosId(), pieces);
          }
          for (int id : ids) {
            append(sb, tokenizer, id, pieces);
          }
          if (eos) {
            append(sb, tokenizer, tokenizer.eosId(), pieces);
          }
        }
        sb.append('\n');
        out.write(sb.toString().getBytes(StandardCharsets.UTF_8));
      }
      out.flush();
    }
    return 0;
  }

  private static void append(StringBuilder sb, TextTokenizer tok, int id, boolean pieces) {
    if (sb.length() > 0) {
      sb.append(' ');
    }
    if (pieces) {
      sb.append(tok.piece(id));
    } else {
      sb.append(id);
    }
  }

  private static int[] parseIds(String line) {
    String trimmed = line.strip();
    if (trimmed.isEmpty()) {
      return new int[0];
    }
    try {
      return Arrays.stream(trimmed.split("\\s+")).mapToInt(Integer::parseInt).toArray();
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a list of token ids: " + e.getMessage(), e);
    }
  }

  private static int usage(PrintStream err, String problem) {
    err.println("danlu tokenize: " + problem);
    err.println(USAGE);
    return 2;
  }

  /** Splits a byte stream at '\n' and decodes each line with SentencePiece's UTF-8 rules. */
  static final class LineReader {
    private final InputStream in;
    private final byte[] buf = new byte[1 << 16];
    private int pos;
    private int limit;
    private boolean eof;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream();

    LineReader(InputStream in) {
      this.in = in;
    }

    /** The next line without its '\n', or null at the end of the input. */
    String next() throws IOException {
      line.reset();
      while (true) {
        if (pos == limit) {
          if (eof) {
            return line.size() > 0 ? decode(line.toByteArray(), line.size()) : null;
          }
          limit = in.read(buf);
          pos = 0;
          if (limit <= 0) {
            limit = 0;
            eof = true;
            continue;
          }
        }
        for (int i = pos; i < limit; i++) {
          if (buf[i] == '\n') {
            line.write(buf, pos, i - pos);
            pos = i + 1;
            return decode(line.toByteArray(), line.size());
          }
        }
        line.write(buf, pos, limit - pos);
        pos = limit;
      }
    }

    private static String decode(byte[] bytes, int len) {
      StringBuilder sb = new StringBuilder(len);
      SentencePieceDecoder.appendUtf8(bytes, len, sb);
      return sb.toString();
    }
  }
}
