package dev.danlu.data.tokenizer;

import ai.djl.sentencepiece.SpProcessor;
import ai.djl.sentencepiece.SpTokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A SentencePiece {@code tokenizer.model} with {@code spm_encode}'s ids. The piece table, scores
 * and special ids are read from the model file in Java ({@link SentencePieceModel}); DJL's binding
 * exposes no vocabulary size and aborts the JVM on an out-of-range id.
 *
 * <p>LLaMA-style BPE models (Chinese-LLaMA-2, LLaMA-2, stories260K) are encoded in Java by {@link
 * SentencePieceBpe}: id-identical to spm_encode on the whole Chinese and English test corpora and
 * 9-13x less CPU per token (docs/benchmarks.md). Other models, and {@link #encodeNative}, use the
 * C++ library through DJL's JNI binding. Decoding is always Java ({@link SentencePieceDecoder}),
 * because DJL's JNI decode mangles characters outside the BMP.
 *
 * <p>Thread-safety: the Java encoder and decoder are immutable (the word cache is per thread). The
 * C++ {@code SentencePieceProcessor::Encode} is {@code const} and keeps no per-call state, so
 * concurrent JNI calls are safe (a test runs it from 4 threads); a read-write lock only keeps
 * {@link #close()} from freeing the processor under a running call.
 */
public final class SentencePieceTokenizer implements TextTokenizer {
  private final Path path;
  private final byte[] modelBytes;
  private final SentencePieceModel model;
  private final String sha256;
  private final SentencePieceBpe bpe; // null: the model needs the C++ encoder
  private final SentencePieceDecoder decoder;
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  // Loaded on first use: with the Java encoder the native library is never needed (and DJL's
  // platform probing stays out of the CLI's stderr and the executors' start-up).
  private SpTokenizer nativeTokenizer;
  private SpProcessor processor;
  private volatile boolean closed;

  private SentencePieceTokenizer(Path path, byte[] modelBytes, SentencePieceModel model) {
    this.path = path;
    this.modelBytes = modelBytes;
    this.model = model;
    this.sha256 = Hashing.sha256Hex(modelBytes);
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
    SentencePieceTokenizer tokenizer = new SentencePieceTokenizer(path, bytes, model);
    if (tokenizer.bpe == null) {
      tokenizer.nativeProcessor(); // the only encoder: fail now if the library rejects the model
    }
    return tokenizer;
  }

  /** The C++ processor, loaded on first call; callers hold the read lock. */
  private SpProcessor nativeProcessor() throws IOException {
    synchronized (modelBytes) {
      if (processor == null) {
        NativeLibs.configure();
        try {
          nativeTokenizer = new SpTokenizer(modelBytes);
        } catch (RuntimeException e) {
          throw new IOException("SentencePiece could not load " + path + ": " + e.getMessage(), e);
        }
        processor = nativeTokenizer.getProcessor();
      }
      return processor;
    }
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
      return nativeProcessor().encode(text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
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
        synchronized (modelBytes) {
          if (nativeTokenizer != null) {
            nativeTokenizer.close();
          }
        }
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
