package dev.danlu.data.shard;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** Counts and sha256-hashes the bytes written through it, so a shard is hashed while written. */
public final class DigestingChannel implements WritableByteChannel {
  private final WritableByteChannel out;
  private final MessageDigest sha;
  private long bytes;

  public DigestingChannel(WritableByteChannel out) {
    this.out = out;
    try {
      this.sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    ByteBuffer view = src.duplicate();
    int n = out.write(src);
    view.limit(view.position() + n);
    sha.update(view);
    bytes += n;
    return n;
  }

  public long bytes() {
    return bytes;
  }

  /** Hex sha256 of everything written; call once, after the last write. */
  public String sha256() {
    return HexFormat.of().formatHex(sha.digest());
  }

  @Override
  public boolean isOpen() {
    return out.isOpen();
  }

  @Override
  public void close() throws IOException {
    out.close();
  }
}
