package dev.danlu.data.tokenizer;

import dev.danlu.data.cli.CliSupport;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code danlu tokenize}: stdin to stdout one line at a time, like {@code spm_encode} (and with
 * {@code --decode} like {@code spm_decode}), so its output can be diffed against the reference.
 * Lines end at '\n' only (a '\r' stays in the line) and invalid UTF-8 bytes become U+FFFD one byte
 * at a time, both as SentencePiece reads its input.
 */
@Command(
    name = "tokenize",
    sortOptions = false,
    description = {
      "Stdin lines to token ids like spm_encode (or pieces; --decode: ids to text).",
      "Reads stdin line by line and writes one line per input line: token ids (like spm_encode),"
          + " pieces, or with --decode the text of lines of ids (like spm_decode).",
      ""
    })
public final class TokenizeCli implements Callable<Integer> {
  @Option(
      names = "--tokenizer",
      required = true,
      paramLabel = "<tokenizer.model|tokenizer.json>",
      description = "SentencePiece model or Hugging Face tokenizer.json.")
  private Path tokenizerPath;

  @Option(names = "--bos", description = "Add the BOS id (pretraining encodes <s> line </s>).")
  private boolean bos;

  @Option(names = "--eos", description = "Add the EOS id.")
  private boolean eos;

  private boolean pieces;

  @Option(names = "--decode", description = "Input lines are ids; write their text.")
  private boolean decode;

  private final InputStream in;
  private final OutputStream stdout;
  private final PrintStream err;

  /** On the process's stdin/stdout/stderr. */
  public TokenizeCli() {
    this(System.in, System.out, System.err);
  }

  public TokenizeCli(InputStream in, OutputStream stdout, PrintStream err) {
    this.in = in;
    this.stdout = stdout;
    this.err = err;
  }

  @Option(
      names = "--ids",
      description = "Token ids separated by spaces (the default; = spm_encode --output_format=id).")
  void ids(boolean unused) {
    pieces = false; // the last of --ids/--pieces wins
  }

  @Option(
      names = "--pieces",
      description = "Pieces instead of ids (= spm_encode --output_format=piece).")
  void pieces(boolean unused) {
    pieces = true;
  }

  /** Runs on the process's stdin/stdout/stderr; returns the exit code. */
  public static int run(String[] args) {
    return run(args, System.in, System.out, System.err);
  }

  /** Returns 0 on success, 1 on a runtime error, 2 on a usage error. */
  public static int run(String[] args, InputStream in, OutputStream stdout, PrintStream err) {
    PrintStream out =
        stdout instanceof PrintStream p ? p : new PrintStream(stdout, true, StandardCharsets.UTF_8);
    return CliSupport.execute(new TokenizeCli(in, stdout, err), args, out, err);
  }

  @Override
  public Integer call() throws IOException {
    try (TextTokenizer tokenizer = TextTokenizer.load(tokenizerPath)) {
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
            return CliSupport.FAILED;
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
    return CliSupport.OK;
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
