package dev.danlu.data.chunk;

/**
 * Concatenates tokenized lines and cuts them into fixed-size blocks, group by group.
 *
 * <p>Equivalent to the reference's group_texts (concatenate a group's examples, keep {@code
 * floor(total / blockSize) * blockSize} tokens, cut), but streaming: only the block being filled is
 * held, so a group's size does not matter. A group ends after {@code groupLines} counted lines or
 * at {@link #endGroup()}; its partial block is dropped and counted.
 */
public final class BlockChunker {
  /** Receives each full block; {@code unit} is the validation-split unit (see {@link #unit}). */
  @FunctionalInterface
  public interface BlockSink {
    void accept(int[] block, long unit) throws java.io.IOException;
  }

  private final int blockSize;
  private final ChunkingMode mode;
  private final long groupLines;
  private final BlockSink sink;
  private final int[] block;
  private int fill;
  private long lineIndex;
  private long blocksInFile;

  private long lines;
  private long tokens;
  private long blocks;
  private long droppedTokens;

  /**
   * @param firstLineIndex index (among counted lines of the file) of the first line that will be
   *     added; in group mode it must start a group
   */
  public BlockChunker(int blockSize, ChunkingMode mode, long firstLineIndex, BlockSink sink) {
    if (blockSize <= 0) {
      throw new IllegalArgumentException("block size must be positive, got " + blockSize);
    }
    this.blockSize = blockSize;
    this.mode = mode;
    this.groupLines = mode.groupLines();
    if (firstLineIndex % groupLines != 0) {
      throw new IllegalArgumentException(
          "first line " + firstLineIndex + " does not start a group of " + groupLines);
    }
    this.sink = sink;
    this.block = new int[blockSize];
    this.lineIndex = firstLineIndex;
  }

  /** Adds one example: {@code bos + body + eos}. */
  public void addLine(int bos, int[] body, int eos) throws java.io.IOException {
    put(bos);
    for (int id : body) {
      put(id);
    }
    put(eos);
    lines++;
    tokens += body.length + 2L;
    lineIndex++;
    if (lineIndex % groupLines == 0) {
      endGroup();
    }
  }

  private void put(int id) throws java.io.IOException {
    block[fill++] = id;
    if (fill == blockSize) {
      sink.accept(block.clone(), unit());
      blocks++;
      blocksInFile++;
      fill = 0;
    }
  }

  /**
   * The validation-split unit of the block being emitted: the group index in group mode (a group
   * goes wholly to one split), the block index within the file in file mode.
   */
  private long unit() {
    return mode == ChunkingMode.FILE ? blocksInFile : (lineIndex / groupLines);
  }

  /** Ends the current group (or file): its partial block is dropped. Idempotent. */
  public void endGroup() {
    droppedTokens += fill;
    fill = 0;
  }

  public long lines() {
    return lines;
  }

  public long tokens() {
    return tokens;
  }

  public long blocks() {
    return blocks;
  }

  public long droppedTokens() {
    return droppedTokens;
  }
}
