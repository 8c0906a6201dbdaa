package dev.danlu.data.tokenizer;

import ai.djl.sentencepiece.SpProcessor;
import ai.djl.sentencepiece.SpTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A SentencePiece {@code tokenizer.model} run by the SentencePiece C++ library through DJL's JNI
 * binding, so ids are the library's own. The piece table is read from the model file in Java
 * ({@link SentencePieceModel}) because the binding exposes no vocabulary size and aborts the JVM on
 * an out-of-range id; every id is range-checked here before it reaches native code.
 *
 * <p>Encoding of LLaMA-style BPE models runs in Java ({@link SentencePieceBpe}, ~1.7x faster than
 * {@code spm_encode}, id-identical); decoding always does ({@link SentencePieceDecoder}).
 *
 * <p>Thread-safety: the Java encoder and decoder are immutable. The C++ {@code
 * SentencePieceProcessor::Encode} is {@code const} and keeps no per-call state, so concurrent JNI
 * calls are safe (a test hammers it from 4 threads); a read-write lock only keeps {@link #close()}
 * from freeing the processor under a running call.
 */
public final class SentencePieceTokenizer implements TextTokenizer {
  private final Path path;
  private final SentencePieceModel model;
  private final String sha256;
  private final SpTokenizer native_;
  private final SpProcessor processor;
  private final SentencePieceBpe bpe; // null: the model needs the C++ encoder
  private final SentencePieceDecoder decoder;
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private volatile boolean closed;

  private SentencePieceTokenizer(
      Path path, SentencePieceModel model, String sha256, SpTokenizer nativeTokenizer) {
    this.path = path;
    this.model = model;
    this.sha256 = sha256;
    this.native_ = nativeTokenizer;
    this.processor = nativeTokenizer.getProcessor();
    boolean forceNative = Boolean.getBoolean("danlu.tokenizer.native");
    this.decoder = new SentencePieceDecoder(model);
    this.bpe =
        !forceNative && SentencePieceBpe.supports(model) == null
            ? new SentencePieceBpe(model)
            : null;
  }

  /** Loads a SentencePiece model file; errors name the path. */
  public static SentencePieceTokenizer load(Path path) throws IOException {
    byte[] bytes = Files.readAllBytes(path);
    SentencePieceModel model = SentencePieceModel.parse(bytes, path.toString());
    NativeLibs.configure();
    SpTokenizer tokenizer;
    try {
      tokenizer = new SpTokenizer(bytes);
    } catch (RuntimeException e) {
      throw new IOException("SentencePiece could not load " + path + ": " + e.getMessage(), e);
    }
    return new SentencePieceTokenizer(path, model, Hashing.sha256Hex(bytes), tokenizer);
  }

  /** Whether {@link #encode} runs in Java ({@link SentencePieceBpe}) rather than through JNI. */
  public boolean encodesInJava() {
    return bpe != null;
  }

  /** The parsed model (piece table, special ids, normalizer flags). */
  public SentencePieceModel model() {
    return model;
  }

  /**
   * Ids of {@code text}. LLaMA-style BPE models (all three LLaMA tokenizers danlu uses) are encoded
   * by {@link SentencePieceBpe} in Java, others by the C++ library; both give {@code spm_encode}'s
   * ids. {@code -Ddanlu.tokenizer.native=true} forces the C++ path.
   */
  @Override
  public int[] encode(String text) {
    if (bpe != null) {
      ensureOpen();
      return bpe.encode(text);
    }
    return encodeNative(text);
  }

  /** Ids from the SentencePiece C++ library itself (one JNI call), the reference path. */
  public int[] encodeNative(String text) {
    lock.readLock().lock();
    try {
      ensureOpen();
      return processor.encode(text);
    } finally {
      lock.readLock().unlock();
    }
  }

  /** Decoded in Java by {@link SentencePieceDecoder}: DJL's JNI decode mangles emoji. */
  @Override
  public String decode(int[] ids) {
    for (int i = 0; i < ids.length; i++) {
      checkId(ids[i], "ids[" + i + "]");
    }
    ensureOpen();
    return decoder.decode(ids);
  }

  @Override
  public String piece(int id) {
    checkId(id, "id");
    return model.piece(id);
  }

  @Override
  public int vocabSize() {
    return model.size();
  }

  @Override
  public int bosId() {
    return model.bosId();
  }

  @Override
  public int eosId() {
    return model.eosId();
  }

  @Override
  public int padId() {
    return model.padId();
  }

  @Override
  public String sha256() {
    return sha256;
  }

  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      if (!closed) {
        closed = true;
        native_.close();
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  @Override
  public String toString() {
    return "SentencePieceTokenizer(" + path + ", " + model.size() + " pieces)";
  }

  private void checkId(int id, String what) {
    if (id < 0 || id >= model.size()) {
      throw new IllegalArgumentException(
          what + " = " + id + " is outside [0, " + model.size() + ") of " + path);
    }
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException("tokenizer " + path + " is closed");
    }
  }
}
